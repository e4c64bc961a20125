//! Quantization core for `ascend-ptq calibration` (issue 5): the AMCT integer convention
//! and deploy parameter packing (§2.1, §1.3), ARQ weight quantization (§2.3), the IFMR and
//! HFMG activation observers (§2.2, §2.3), Conv+BatchNormalization folding (§2.6) and the
//! choice of quantizable layers (§2.5), and the `--calibration_config` file (§2.4, read by
//! [`config`] on the protobuf-text reader [`pbtext`]). Section numbers refer to
//! `../shared/spec/ascend-facts.md`. Pure library code: no I/O besides the ONNX protos.
//!
//! Intended order in the calibration pipeline:
//! 1. [`fold::fold_batch_norms`] (unless `do_fusion: false`), honouring skip_fusion_layers;
//! 2. [`select::select_layers`] with skip_layers / skip_layer_types: the layers to quantize,
//!    their weight/bias tensors and data input, and a reason for each layer left in float;
//! 3. [`arq::quantize_weights`] on each weight ([`consts::constant_f32`] reads it, wherever it
//!    is stored);
//! 4. one [`ifmr::IfmrObserver`] (or [`hfmg::HfmgObserver`]) per distinct data input, fed
//!    through `Session::run_observed`: IFMR needs the element count up front (shape ×
//!    batch_num) and the batches twice (pass 1, `finish_pass1`, pass 2), HFMG once;
//! 5. [`arq::quantize_bias`] with scale_d, then the deploy parameters of [`scale`]
//!    (`quant_attr_scale`/`quant_attr_offset`, `dequant_params`).

pub mod arq;
pub mod calibrate;
pub mod config;
pub mod consts;
pub mod deploy;
pub mod equalize;
pub mod error;
pub mod eval;
pub mod fake;
pub mod fold;
pub mod hfmg;
pub mod ifmr;
pub mod observe;
pub mod options;
pub mod pbtext;
pub mod record;
pub mod report;
pub mod scale;
pub mod select;

pub use error::{QuantError, Result};

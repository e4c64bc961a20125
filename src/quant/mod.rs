//! Quantization core for `ascend-ptq calibration` (issue 5): the AMCT integer convention
//! and deploy parameter packing (§3, §2), ARQ weight quantization (§4.3), the IFMR and
//! HFMG activation observers (§4.1, §4.2), Conv+BatchNormalization folding (§5.2) and the
//! choice of quantizable layers (§5.1), and the `--calibration_config` file (§8, read by
//! [`config`] on the protobuf-text reader [`pbtext`]). Section numbers refer to
//! `docs/ascend-formats.md`. Pure library code: no I/O besides the ONNX protos.
//!
//! Intended order in the calibration pipeline:
//! 1. [`fold::fold_batch_norms`] (unless `do_fusion: false`), honouring skip_fusion_layers;
//! 2. [`select::select_layers`] with skip_layers / skip_layer_types: the layers to quantize,
//!    their weight/bias tensors and data input, and a reason for each layer left in float;
//! 3. [`arq::quantize_weights`] on each weight ([`consts::constant_f32`] reads it, wherever it
//!    is stored);
//! 4. one activation observer per distinct (data input, algorithm) — [`ifmr::IfmrObserver`] or
//!    [`hfmg::HfmgObserver`], chosen by [`act_algos::act_spec`] and driven by
//!    [`observe::ActivationCalibrator`] through `Session::run_observed`: IFMR needs the element
//!    count up front (shape × batch_num) and the batches twice (pass 1, `finish_pass1`, pass 2),
//!    HFMG once;
//! 5. [`arq::quantize_bias`] with scale_d, then the deploy parameters of [`scale`]
//!    (`quant_attr_scale`/`quant_attr_offset`, `dequant_params`).

pub mod act_algos;
pub mod arq;
pub mod bias_correction;
pub mod calibrate;
pub mod cmdline;
pub mod config;
pub mod consts;
pub mod convert;
pub mod deploy;
pub mod equalize;
pub mod error;
pub mod eval;
pub mod fake;
pub mod fallback;
pub mod fold;
pub mod fusion_rule;
pub mod gptq;
pub mod hfmg;
pub mod ifmr;
pub mod observe;
pub mod options;
pub mod output_clip;
pub mod pbtext;
pub mod record;
pub mod report;
pub mod report_html;
pub mod scale;
pub mod select;
pub mod sensitivity;
pub mod trials;
mod unread_weights;

pub use error::{QuantError, Result};

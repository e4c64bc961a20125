//! Quantization core for `ascend-ptq calibration` (issue 5): the AMCT integer convention
//! and deploy parameter packing (§2.1, §1.3), ARQ weight quantization (§2.3), the IFMR and
//! HFMG activation observers (§2.2, §2.3), Conv+BatchNormalization folding (§2.6) and the
//! choice of quantizable layers (§2.5). Section numbers refer to
//! `../shared/spec/ascend-facts.md`. Pure library code: no I/O besides the ONNX protos.

pub mod arq;
pub mod consts;
pub mod error;
pub mod fold;
pub mod hfmg;
pub mod ifmr;
pub mod scale;
pub mod select;

pub use error::{QuantError, Result};

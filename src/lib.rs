//! ascend-ptq: INT8 post-training quantization for Huawei Ascend NPUs.
//!
//! Module dependencies point one way: `capi` (and the CLI) → `quant` / `device` / `data` / `compare` →
//! `engine` → `onnx`.

pub mod capi;
pub mod compare;
pub mod data;
pub mod device;
pub mod engine;
pub mod flow;
pub mod onnx;
pub mod quant;
pub mod tasks;

/// The crate version, as reported by `ascend-ptq --version` and `aptq_version()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

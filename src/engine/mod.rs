//! CPU executor for ONNX graphs: a tensor type, an op registry keyed by op type (one file
//! per op family under `ops/`), and a session that plans and runs a model. The engine
//! knows no quantizer: Ascend quant ops are just ops.

pub mod awake;
pub mod bench;
pub mod cancel;
pub mod error;
pub mod files;
pub mod fp16;
mod fuse;
pub mod int8;
pub mod kernels;
pub mod ops;
pub mod registry;
pub mod session;
pub mod tensor;

pub use awake::with_workers_awake;
pub use error::{EngineError, OpError, OpResult, Result};
pub use registry::{BuildContext, Op, Registry};
pub use session::{InputSpec, RunOptions, Session};
pub use tensor::Tensor;

use std::path::PathBuf;

use crate::data::calib_set::CalibError;
use crate::data::preprocess::PreprocessError;
use crate::device::aipp::AippError;
use crate::engine::EngineError;

/// Why a comparison could not run. Every variant names the model, input, output or file.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A runner (the ACL layer, the simulator, a test runner) failed to run a model.
    #[error("{model}: {detail}")]
    Run { model: String, detail: String },
    /// The int8 and fp16 models do not have the same interface.
    #[error("the int8 and fp16 models cannot be compared: {0}")]
    ModelMismatch(String),
    /// A runner returned something other than its description promises.
    #[error("{model}: output '{output}' has {found} bytes, but the model description says {expected}")]
    OutputSize { model: String, output: String, expected: usize, found: usize },
    /// An input set cannot be built for a model input.
    #[error("input '{input}': {detail}")]
    Input { input: String, detail: String },
    #[error(transparent)]
    Calib(#[from] CalibError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("input '{input}': AIPP: {source}")]
    Aipp {
        input: String,
        #[source]
        source: AippError,
    },
    /// The fp32 reference model (our engine) failed or does not fit the OMs.
    #[error("--reference: {0}")]
    Reference(String),
    #[error("--reference: {0}")]
    Engine(#[from] EngineError),
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    /// AscendCL (or the simulator) could not be opened or refused a call.
    #[error(transparent)]
    Acl(#[from] crate::device::acl::Error),
    /// The caller's cancel token was set (C API progress callback): stopped before the next
    /// input set; the models and ACL objects were released, no report was written.
    #[error("cancelled after {done} of {total} input sets")]
    Cancelled { done: usize, total: usize },
}

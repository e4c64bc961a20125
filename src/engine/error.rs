use crate::onnx::OnnxError;

/// Engine errors name the node (and its op type) or the tensor they are about.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("node '{node}': op {op_type} (domain '{domain}', opset {opset}) is not supported by the engine")]
    UnsupportedOp { node: String, op_type: String, domain: String, opset: i64 },
    #[error("node '{node}' ({op_type}): {detail}")]
    Node { node: String, op_type: String, detail: String },
    #[error("input '{name}': {detail}")]
    Input { name: String, detail: String },
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The caller's cancel token was set ([`super::cancel`]).
    #[error("cancelled by the caller")]
    Cancelled,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// An op's own error before the executor adds which node it happened in.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpError(pub String);

impl From<OnnxError> for OpError {
    fn from(e: OnnxError) -> Self {
        OpError(e.to_string())
    }
}

/// `bail!`-style helper for op implementations.
#[macro_export]
macro_rules! op_err {
    ($($arg:tt)*) => { $crate::engine::error::OpError(format!($($arg)*)) };
}

pub type OpResult<T> = std::result::Result<T, OpError>;

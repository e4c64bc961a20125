use std::path::PathBuf;

/// Errors of model I/O and graph access. Every variant names the file, tensor, node or
/// attribute it is about and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is empty, expected a serialized ONNX ModelProto")]
    EmptyFile { path: PathBuf },
    #[error("{path}: not a valid ONNX model (protobuf decoding failed: {reason}); the file may be truncated or of another format")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: not an ONNX model: {reason}")]
    NotAModel { path: PathBuf, reason: String },
    #[error("{path}: tensor '{tensor}': external data {detail}")]
    ExternalData { path: PathBuf, tensor: String, detail: String },
    #[error("{path}: {source}")]
    InModel {
        path: PathBuf,
        #[source]
        source: Box<OnnxError>,
    },
    #[error("tensor '{tensor}': {detail}")]
    Tensor { tensor: String, detail: String },
    #[error("tensor '{tensor}': unknown data type {data_type} (expected one of the TensorProto.DataType values 1..=26)")]
    UnknownDataType { tensor: String, data_type: i32 },
    #[error("node '{node}' ({op_type}): attribute '{attr}': {detail}")]
    Attribute { node: String, op_type: String, attr: String, detail: String },
    #[error("{flag}: {detail}")]
    Argument { flag: String, detail: String },
    #[error("graph '{graph}': {detail}")]
    Graph { graph: String, detail: String },
}

pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

impl OnnxError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OnnxError::Io { path: path.into(), source }
    }
    pub(crate) fn tensor(tensor: &str, detail: impl Into<String>) -> Self {
        OnnxError::Tensor { tensor: tensor.to_string(), detail: detail.into() }
    }
}

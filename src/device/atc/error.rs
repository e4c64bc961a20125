use std::path::PathBuf;

use crate::device::aipp::AippError;
use crate::device::om::OmError;
use crate::onnx::OnnxError;

/// Why `build` could not plan, check or run ATC. Messages name the flag, file or tensor.
#[derive(Debug, thiserror::Error)]
pub enum AtcError {
    /// No `atc` executable was found; the message says where we looked and how to load CANN.
    #[error("{0}")]
    NotFound(String),
    #[error("{flag}: {detail}")]
    Argument { flag: String, detail: String },
    #[error("{flag} {}: {detail}", path.display())]
    Model { flag: String, path: PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start ATC ({}): {source}", atc.display())]
    Spawn {
        atc: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", om.display())]
    BadOutput { om: PathBuf, detail: String },
    /// ATC ran but the build failed (exit status, timeout, interrupt or no valid OM).
    #[error("{}\nfull log: {}\nto rerun by hand: {}", .0.message, .0.log, .0.command)]
    Failed(Box<AtcFailure>),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Aipp(#[from] AippError),
    #[error(transparent)]
    Om(#[from] OmError),
}

/// What a failed ATC build leaves for the user: why, ATC's last output lines, its log and the
/// shell line to rerun it.
#[derive(Debug, Clone)]
pub struct AtcFailure {
    pub message: String,
    pub tail: Vec<String>,
    pub log: String,
    pub command: String,
}

impl AtcError {
    pub fn arg(flag: &str, detail: impl Into<String>) -> Self {
        AtcError::Argument { flag: flag.to_string(), detail: detail.into() }
    }

    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AtcError::Io { path: path.to_path_buf(), source }
    }
}

use std::path::{Path, PathBuf};

/// Why the flow stopped. A failed step names itself and, where there is one, its log.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The flow file (or an option overriding it) is wrong.
    #[error("{}: {detail}", path.display())]
    Params { path: PathBuf, detail: String },
    /// An option of the flow command itself.
    #[error("{flag}: {detail}")]
    Argument { flag: &'static str, detail: String },
    /// A step failed; the earlier steps' outputs stay, flow.json records it.
    #[error("step {step} failed: {message}{}", log.as_ref().map(|l| format!("\nlog: {}", l.display())).unwrap_or_default())]
    Step { step: &'static str, message: String, log: Option<PathBuf> },
    /// The caller's cancel token was set (C API progress callback): the step that was running
    /// wrote no outputs; flow.json records it as cancelled and the earlier steps as done.
    #[error("cancelled during step {step}")]
    Cancelled { step: &'static str },
    /// flow.json or a log could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FlowError {
    pub fn params(path: &Path, detail: impl Into<String>) -> Self {
        FlowError::Params { path: path.to_path_buf(), detail: detail.into() }
    }
}

//! Errors of the AscendCL layer: opening the library, failed calls, and misuse the safe layer
//! catches before ACL sees it (wrong input count or size, a missing model file).

use std::fmt;
use std::path::PathBuf;

pub use super::result::AclError;

/// One place the library search looked at, and why it was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub place: String,
    pub origin: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", NotFound(.tried))]
    LibraryNotFound { tried: Vec<Tried> },
    #[error(
        "{}: lacks the required AscendCL function(s) {} — not a libascendcl.so usable by ascend-ptq (too old a CANN, or another library)",
        .file.display(), .symbols.join(", ")
    )]
    MissingSymbols { file: PathBuf, symbols: Vec<&'static str> },
    #[error(transparent)]
    Call(#[from] AclError),
    #[error("model file {}: {source}", .path.display())]
    ModelFile { path: PathBuf, source: std::io::Error },
    #[error("loading model {}: {source}", .path.display())]
    LoadModel { path: PathBuf, source: AclError },
    #[error("model {model}: {given} input(s) given, the model has {expected} ({names})")]
    InputCount { model: String, expected: usize, given: usize, names: String },
    #[error("model {model}: input {index} `{name}` needs {expected} bytes, {given} given")]
    InputSize { model: String, index: usize, name: String, expected: usize, given: usize },
    #[error("copy of {given} bytes into or out of a {len}-byte device buffer")]
    BufferTooSmall { len: usize, given: usize },
    #[error("{what} {value:?} contains a NUL byte")]
    Nul { what: &'static str, value: String },
}

impl Error {
    /// The failed ACL call, when this error is one.
    pub fn acl(&self) -> Option<&AclError> {
        match self {
            Error::Call(source) | Error::LoadModel { source, .. } => Some(source),
            _ => None,
        }
    }
}

struct NotFound<'a>(&'a [Tried]);

impl fmt::Display for NotFound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "AscendCL runtime library (libascendcl.so) not found or not loadable; tried:")?;
        for t in self.0 {
            writeln!(f, "  {} ({}): {}", t.place, t.origin, t.reason)?;
        }
        write!(
            f,
            "Install CANN (ascend-toolkit or nnrt) and load its environment, e.g. \
             `source /usr/local/Ascend/ascend-toolkit/set_env.sh` ($HOME/Ascend/ascend-toolkit/set_env.sh \
             for a user install), or name the library with --acl-lib PATH / ASCEND_PTQ_ACL_LIB"
        )
    }
}

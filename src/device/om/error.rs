use std::path::PathBuf;

/// Why an OM file could not be read. Every variant names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum OmError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is empty, expected an Ascend OM model")]
    Empty { path: PathBuf },
    #[error("{path}: not an Ascend OM model: the first 4 bytes are {found}, expected 49 4D 4F 44 (\"IMOD\")")]
    BadMagic { path: PathBuf, found: String },
    #[error("{path}: truncated OM file: {len} bytes, shorter than the 256-byte OM header")]
    TruncatedHeader { path: PathBuf, len: usize },
    #[error("{path}: OM header size field is {found}, expected 256")]
    HeaderSize { path: PathBuf, found: u32 },
    #[error("{path}: OM header length field says {declared} bytes follow the header ({field}), but the file has {actual} ({hint})")]
    LengthMismatch { path: PathBuf, field: &'static str, declared: u64, actual: u64, hint: &'static str },
    #[error("{path}: the OM model is encrypted (is_encrypt = {flag}); only plain models can be read")]
    Encrypted { path: PathBuf, flag: u8 },
    #[error("{path}: the partition table fits neither known layout; old layout (u32 entries): {old}; new layout (u64 entries): {new}")]
    PartitionTable { path: PathBuf, old: String, new: String },
    #[error("{path}: model {model} has no MODEL_DEF partition (type 0)")]
    NoModelDef { path: PathBuf, model: usize },
    #[error("{path}: model {model}: the MODEL_DEF partition ({size} bytes at offset {offset}) is not a ge.proto.ModelDef: {reason}")]
    ModelDef { path: PathBuf, model: usize, offset: u64, size: u64, reason: String },
    #[error("{path} is a real Ascend OM built by ATC; the ACL simulator only runs simulated OMs written by `ascend-ptq build --simulate`")]
    NotSimulated { path: PathBuf },
    #[error("{path}: malformed simulated OM: {detail}")]
    BadSimulated { path: PathBuf, detail: String },
    #[error("{path}: cannot build a simulated OM: {detail}")]
    SimulateBuild { path: PathBuf, detail: String },
    #[error("{path}: cannot write the OM: {detail}")]
    Write { path: PathBuf, detail: String },
}

//! `flow.json` and how a rerun decides that a step is already done.
//!
//! Every step records a fingerprint: SHA-256 over the tool version, the step's name, its
//! command line (every option that changes its result) and the stamp — path, size and
//! modification time in nanoseconds — of every input file. It also records the stamps of its
//! outputs. On a rerun a step is skipped ("up_to_date") when the previous flow.json holds it
//! as finished with the same fingerprint and every recorded output still has its recorded
//! stamp. A step that is redone rewrites its outputs, which changes the stamps the next step
//! fingerprints, so everything after it is redone too. Contents are not hashed: the bins of a
//! 640×640 batch-12 set are 59 MB each, and size + mtime is what make(1) trusts as well.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::FlowError;

/// A file as a step saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub path: String,
    pub bytes: u64,
    pub mtime_ns: u64,
}

impl FileStamp {
    /// The stamp of `path`, or None when it is not a readable file.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let mtime_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos() as u64;
        Some(FileStamp { path: path.to_string_lossy().into_owned(), bytes: meta.len(), mtime_ns })
    }

    /// Whether the file is still as stamped.
    pub fn unchanged(&self) -> bool {
        FileStamp::of(Path::new(&self.path)).as_ref() == Some(self)
    }
}

/// The stamps of `paths`; a directory stands for the files directly in it (sorted by name).
pub fn stamps(paths: &[PathBuf]) -> Vec<FileStamp> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> =
                std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path()).filter(|f| f.is_file()).collect();
            files.sort();
            out.extend(files.iter().filter_map(|f| FileStamp::of(f)));
        } else if let Some(s) = FileStamp::of(p) {
            out.push(s);
        } else {
            // A missing input still changes the fingerprint (it may appear later).
            out.push(FileStamp { path: p.to_string_lossy().into_owned(), bytes: 0, mtime_ns: 0 });
        }
    }
    out
}

/// See the module docs.
pub fn fingerprint(step: &str, command: &str, inputs: &[FileStamp]) -> String {
    let canonical = serde_json::json!([crate::VERSION, step, command, inputs]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran now and finished.
    Done,
    /// Finished by an earlier run with the same inputs; not redone.
    UpToDate,
    /// Not applicable to this flow file or machine (see `note`).
    Skipped,
    Failed,
    /// Stopped by the caller (C API progress callback); its outputs were not written.
    Cancelled,
    /// Not reached because an earlier step failed or the flow was cancelled.
    NotRun,
}

/// One step in flow.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub status: StepStatus,
    /// The equivalent command line (ascend-ptq's, or ATC's exact one).
    pub command: String,
    pub duration_s: f64,
    pub outputs: Vec<FileStamp>,
    pub fingerprint: String,
    #[serde(default)]
    pub log: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// The step's own summary (calibration summary, build entry, compare verdict, ...).
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

impl StepRecord {
    pub fn finished(&self) -> bool {
        matches!(self.status, StepStatus::Done | StepStatus::UpToDate)
    }
}

/// The whole of flow.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowReport {
    pub version: u32,
    pub tool: String,
    pub params: String,
    pub output_root_dir: String,
    /// OMs from the simulated-OM writer and the ACL simulator: never a hardware result.
    pub simulated: bool,
    pub steps: Vec<StepRecord>,
    /// The int8-vs-fp16 verdict of the compare step, when it ran.
    #[serde(default)]
    pub verdict_pass: Option<bool>,
    #[serde(default)]
    pub warnings: Vec<String>,
    pub wall_seconds: f64,
}

impl FlowReport {
    pub fn read(path: &Path) -> Option<FlowReport> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Writes it atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), FlowError> {
        let mut text = serde_json::to_string_pretty(self).expect("plain data serializes");
        text.push('\n');
        crate::onnx::io::write_atomically(path, text.as_bytes())
            .map_err(|e| FlowError::Io { path: path.into(), source: std::io::Error::other(e.to_string()) })
    }

    /// The earlier record of `step` when it still holds: finished, same fingerprint, outputs
    /// unchanged.
    pub fn up_to_date(&self, step: &str, fingerprint: &str) -> Option<&StepRecord> {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .filter(|s| s.finished() && s.fingerprint == fingerprint && !s.outputs.is_empty() && s.outputs.iter().all(FileStamp::unchanged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_input_or_output_makes_the_step_stale() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.bin");
        let output = dir.path().join("out.bin");
        std::fs::write(&input, b"abc").unwrap();
        std::fs::write(&output, b"xyz").unwrap();
        let fp = fingerprint("step", "cmd", &stamps(std::slice::from_ref(&input)));
        let record = StepRecord {
            name: "step".into(),
            status: StepStatus::Done,
            command: "cmd".into(),
            duration_s: 0.0,
            outputs: stamps(std::slice::from_ref(&output)),
            fingerprint: fp.clone(),
            log: None,
            note: None,
            error: None,
            details: None,
        };
        let report = FlowReport {
            version: 1,
            tool: String::new(),
            params: String::new(),
            output_root_dir: String::new(),
            simulated: false,
            steps: vec![record],
            verdict_pass: None,
            warnings: vec![],
            wall_seconds: 0.0,
        };
        assert!(report.up_to_date("step", &fp).is_some());
        assert_ne!(fingerprint("step", "cmd --other", &stamps(std::slice::from_ref(&input))), fp);
        std::fs::write(&input, b"abcd").unwrap();
        assert_ne!(fingerprint("step", "cmd", &stamps(std::slice::from_ref(&input))), fp);
        std::fs::write(&output, b"changed").unwrap();
        assert!(report.up_to_date("step", &fp).is_none());
    }
}

//! `build.json` (what ran, how to rerun it, how it ended) and the check of ATC's output.

use std::path::Path;

use serde::Serialize;

use super::error::AtcError;
use super::plan::{AtcInvocation, Precision, shell_command};
use super::run::{AtcOutcome, RunEnd};
use crate::device::om::{OmInfo, om_info_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildStatus {
    /// ATC exited 0 and wrote a readable OM.
    Success,
    /// ATC exited non-zero, or its OM is missing or invalid (see `error`).
    Failed,
    TimedOut,
    Interrupted,
    /// Not started because an earlier build failed.
    NotRun,
}

/// One ATC run in `build.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildEntry {
    pub name: String,
    pub precision: Precision,
    pub source_model: String,
    pub status: BuildStatus,
    /// The exact argv, program first.
    pub argv: Vec<String>,
    /// ATC's working directory.
    pub cwd: String,
    /// Shell line to rerun it: `cd <cwd> && <argv, quoted>`.
    pub command: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_s: Option<f64>,
    pub log: String,
    /// The OM, only when it was written and reads back as a valid OM.
    pub om: Option<String>,
    /// One-line `om-info` summary of the OM.
    pub summary: Option<String>,
    pub error: Option<String>,
}

impl BuildEntry {
    pub fn planned(atc: &Path, inv: &AtcInvocation) -> Self {
        let cwd = inv.output.parent().unwrap_or(Path::new("."));
        let mut argv = vec![atc.to_string_lossy().into_owned()];
        argv.extend(inv.args.iter().cloned());
        BuildEntry {
            name: inv.name.clone(),
            precision: inv.precision,
            source_model: inv.source_model.to_string_lossy().into_owned(),
            status: BuildStatus::NotRun,
            argv,
            cwd: cwd.to_string_lossy().into_owned(),
            command: shell_command(atc, &inv.args, cwd),
            exit_code: None,
            signal: None,
            duration_s: None,
            log: inv.log_path.to_string_lossy().into_owned(),
            om: None,
            summary: None,
            error: None,
        }
    }

    /// Records how ATC ended (the OM check comes after, through [`BuildEntry::set_om`]).
    pub fn set_outcome(&mut self, outcome: &AtcOutcome) {
        self.exit_code = outcome.exit.code;
        self.signal = outcome.exit.signal;
        self.duration_s = Some((outcome.duration.as_secs_f64() * 1000.0).round() / 1000.0);
        self.status = match outcome.end {
            RunEnd::Exited if outcome.exited_ok() => BuildStatus::Success,
            RunEnd::Exited => BuildStatus::Failed,
            RunEnd::TimedOut => BuildStatus::TimedOut,
            RunEnd::Interrupted => BuildStatus::Interrupted,
        };
    }
}

/// The whole of `build.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub ascend_ptq_version: String,
    pub atc: String,
    pub atc_found_by: String,
    pub soc_version: String,
    pub input_shape: String,
    pub aipp: Option<String>,
    pub output_type: Option<String>,
    pub precision_mode: Option<String>,
    pub builds: Vec<BuildEntry>,
}

impl BuildReport {
    /// Writes the report atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), AtcError> {
        let mut text = serde_json::to_string_pretty(self).expect("plain data serializes");
        text.push('\n');
        crate::onnx::io::write_atomically(path, text.as_bytes()).map_err(AtcError::from)
    }
}

/// After ATC exited 0: the OM must exist and read back (header, partitions, ModelDef).
pub fn verify_om(inv: &AtcInvocation) -> Result<OmInfo, AtcError> {
    if !inv.om_path.is_file() {
        return Err(AtcError::BadOutput { om: inv.om_path.clone(), detail: "ATC exited with status 0 but did not write this file".into() });
    }
    om_info_file(&inv.om_path).map_err(|e| AtcError::BadOutput { om: inv.om_path.clone(), detail: format!("ATC wrote an invalid OM: {e}") })
}

/// One line per model: file, size, SoC, inputs, outputs, AIPP, INT8 evidence.
pub fn om_summary(info: &OmInfo) -> String {
    let file = Path::new(&info.file).file_name().map_or(info.file.clone(), |n| n.to_string_lossy().into_owned());
    let Some(m) = info.models.first() else { return format!("{file}: {} bytes, no model definition", info.file_size) };
    let tensors = |ts: &[crate::device::om::info::TensorInfo]| {
        ts.iter()
            .map(|t| format!("{} {}[{}] {}", t.name, t.dtype, t.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(","), t.format))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let q = &m.quantization;
    let quant = if let Some(sim) = &info.simulated {
        format!("simulated {} (runs only in the ascend-ptq ACL simulator)", sim.precision)
    } else if q.quantized {
        format!("INT8 ({} quant ops, {} int8 cube ops)", q.quant_ops.len(), q.int8_cube_ops.len())
    } else {
        "not quantized".into()
    };
    let aipp = if m.aipp.static_aipp { ", static AIPP" } else { "" };
    format!(
        "{file}: {} bytes, soc {}, inputs: {}; outputs: {}{aipp}, {quant}",
        info.file_size,
        m.soc_version.as_deref().unwrap_or("?"),
        tensors(&m.inputs),
        m.outputs.len()
    )
}

//! One OM build, end to end: run ATC for a planned invocation (or write the simulated OM that
//! only the ascend-ptq ACL simulator runs), record how it ended in its `build.json` entry, and
//! check that the OM reads back. Shared by `ascend-ptq build` and `ascend-ptq flow`.

use std::collections::HashMap;
use std::path::Path;

use super::error::{AtcError, AtcFailure};
use super::plan::{AtcInvocation, BuildRequest, Precision};
use super::precheck::Precheck;
use super::report::{BuildEntry, BuildStatus, om_summary, verify_om};
use super::run::{RunOptions, run_atc};
use crate::device::om::{OmInfo, SimPrecision, SimulatedBuild, write_simulated_om};

/// Runs ATC for `inv` and fills `entry` (status, exit, duration, OM, summary, error). A build
/// that fails, times out, is interrupted or leaves no valid OM is [`AtcError::Failed`] with
/// the last lines of ATC's output, its log and the line to rerun it by hand.
pub fn build_with_atc(
    atc: &Path,
    inv: &AtcInvocation,
    opts: &RunOptions,
    entry: &mut BuildEntry,
    on_line: &mut dyn FnMut(&str),
) -> Result<OmInfo, AtcError> {
    let outcome = match run_atc(atc, inv, opts, on_line) {
        Ok(o) => o,
        Err(e) => {
            entry.status = BuildStatus::Failed;
            entry.error = Some(e.to_string());
            return Err(e);
        }
    };
    entry.set_outcome(&outcome);
    let message = match entry.status {
        BuildStatus::Success => match verify_om(inv) {
            Ok(info) => {
                entry.om = Some(inv.om_path.to_string_lossy().into_owned());
                entry.summary = Some(om_summary(&info));
                return Ok(info);
            }
            Err(e) => {
                entry.status = BuildStatus::Failed;
                e.to_string()
            }
        },
        BuildStatus::TimedOut => format!(
            "ATC ({}) did not finish within --timeout {} s; its process group was killed ({})",
            inv.name,
            opts.timeout.as_secs(),
            outcome.exit
        ),
        BuildStatus::Interrupted => format!("interrupted: ATC ({}) and its process group were killed", inv.name),
        BuildStatus::Failed | BuildStatus::NotRun => format!("ATC failed building {} ({})", inv.om_path.display(), outcome.exit),
    };
    entry.error = Some(message.clone());
    Err(AtcError::Failed(Box::new(AtcFailure { message, tail: outcome.tail, log: entry.log.clone(), command: entry.command.clone() })))
}

/// `--simulate`: writes the simulated OM of `inv` (the real container layout carrying the
/// ONNX model, precision and AIPP; never a hardware result) and reads it back.
pub fn build_simulated(inv: &AtcInvocation, req: &BuildRequest, checks: &Precheck, cmdline: &str) -> Result<OmInfo, AtcError> {
    let shapes: HashMap<String, Vec<i64>> = req.input_shapes.iter().map(|s| (s.name.clone(), s.dims.clone())).collect();
    let precision = match inv.precision {
        Precision::Int8 => SimPrecision::Int8,
        Precision::Fp16 => SimPrecision::Fp16,
    };
    let build = SimulatedBuild {
        onnx_path: &inv.source_model,
        precision,
        input_shapes: &shapes,
        soc_version: &req.soc_version,
        aipp: checks.aipp.as_ref(),
        output_type_fp16: req.output_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("FP16")),
        cmdline: cmdline.to_string(),
    };
    write_simulated_om(&inv.om_path, &build)?;
    verify_om(inv)
}

use std::ffi::c_char;

use super::boundary::{guard, str_arg, to_json, write_string_out};
use super::callbacks::{Reporter, aptq_callbacks};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::flow::{FlowArgs, FlowEvent, run_flow};

/// Runs `ascend-ptq flow PARAMS.json`: the guide's whole flow from one JSON (preprocess,
/// calibration, ATC int8 and fp16, compare), files named as the reference scripts name them
/// under the file's outputRootDir / output_root_dir, and `flow.json` there. Steps whose
/// inputs did not change since the last run are not redone. Relative paths in the file are
/// resolved as the command resolves them (the file's folder, else the current directory).
///
/// `params_json_path` is the flow JSON (either dialect). `options_json` is NULL or an object
/// with the options of `ascend-ptq flow --help`, each key spelled as its flag without the
/// dashes: "simulate" (boolean), "soc_version" (string), "atc", "acl_lib" (paths), "timeout"
/// (seconds, default 1800) and "force" (boolean), all optional; documented once, on
/// `ascend_ptq::flow::FlowArgs`. An unknown key or a value of the wrong type is
/// `APTQ_INVALID_ARGUMENT` naming the key.
///
/// On success `*summary_json` receives flow.json's content ("steps": name, status, command,
/// duration_s, outputs, note, details; "verdict_pass" when compare ran; a failing verdict is
/// still `APTQ_OK`); free it with `aptq_string_free`. A failed step is `APTQ_STEP_FAILED` with
/// a message naming the step and its log (flow.json records it too).
///
/// # Safety
/// `params_json_path` and `options_json` must be NULL or NUL-terminated strings;
/// `summary_json` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_flow(
    params_json_path: *const c_char,
    options_json: *const c_char,
    summary_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| unsafe { flow_call(params_json_path, options_json, std::ptr::null(), summary_json) })
}

/// `aptq_flow` with a progress callback that can cancel it (`aptq_progress_fn`). Phases: "step"
/// when a step starts (`done` = the steps before it, `total` = the flow's steps), then the
/// step's name ("preprocess", "calibration", "atc_int8", "atc_fp16", "compare") with the
/// work inside it (images, batches, input sets). Cancelling stops the running step (a running
/// ATC build's process group is killed and its partial OM removed; calibration and compare
/// write nothing) and returns `APTQ_CANCELLED`; the steps finished before stay, and flow.json
/// records the step as "cancelled" and the later ones as "not_run", so the next run redoes
/// only those. `callbacks` may be NULL (then it is `aptq_flow`).
///
/// # Safety
/// As `aptq_flow`; `callbacks` must be NULL or point to a valid `aptq_callbacks` for the
/// duration of the call, and its `progress` (if not NULL) must be safe to call with `user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_flow_with_callbacks(
    params_json_path: *const c_char,
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    summary_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| unsafe { flow_call(params_json_path, options_json, callbacks, summary_json) })
}

/// The body of both flow functions (`callbacks` may be NULL).
unsafe fn flow_call(
    params_json_path: *const c_char,
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    summary_json: *mut *mut c_char,
) -> Result<(), CapiError> {
    let params = unsafe { str_arg(params_json_path, "params_json_path") }?;
    let options = if options_json.is_null() { "{}" } else { unsafe { str_arg(options_json, "options_json") }? };
    if summary_json.is_null() {
        return Err(CapiError::invalid_argument("summary_json is NULL"));
    }
    let mut args: FlowArgs = from_json(options)?;
    args.params = params.into();
    let reporter = unsafe { Reporter::new(callbacks) };
    let mut step = "step";
    let mut on_event = |event: FlowEvent| match event {
        FlowEvent::Start { index, total, step: name, .. } => {
            step = name;
            reporter.report("step", index as u64, total as u64);
        }
        FlowEvent::Progress { done, total } => reporter.report(step, done as u64, total as u64),
        FlowEvent::Line(_) | FlowEvent::End { .. } => {}
    };
    let report = reporter.scope(|| run_flow(&args.into_options(), &mut on_event))?;
    unsafe { write_string_out(summary_json, "summary_json", to_json(&report)?) }
}

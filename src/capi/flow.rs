use std::ffi::c_char;

use super::boundary::{guard, str_arg, to_json, write_string_out};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::flow::{FlowArgs, run_flow};

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
    guard(|| {
        let params = unsafe { str_arg(params_json_path, "params_json_path") }?;
        let options = if options_json.is_null() { "{}" } else { unsafe { str_arg(options_json, "options_json") }? };
        if summary_json.is_null() {
            return Err(CapiError::invalid_argument("summary_json is NULL"));
        }
        let mut args: FlowArgs = from_json(options)?;
        args.params = params.into();
        let report = run_flow(&args.into_options(), &mut |_| {})?;
        unsafe { write_string_out(summary_json, "summary_json", to_json(&report)?) }
    })
}

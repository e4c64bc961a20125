use std::ffi::c_char;

use super::boundary::{guard, str_arg, write_string_out};
use super::callbacks::{Reporter, aptq_callbacks};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::compare::{CompareArgs, compare_oms};

/// Runs `ascend-ptq compare`: the int8 and the fp16 OM on the same inputs through AscendCL
/// (or the ascend-ptq simulator), msaccucmp's ten metrics per input and output, and a verdict
/// against the cosine threshold.
///
/// `options_json` is an object with the options of `ascend-ptq compare --help`, each key
/// spelled as its flag without the dashes: "int8", "fp16" (OM paths, required); the inputs,
/// either "data_dir", "data_types" (strings) and "batch_num" (integer ≥ 1), or "images" and
/// "params" (paths) with an optional "section"; optional "reference" (the fp32 ONNX model),
/// "device" (integer, default 0), "acl_lib" (path; default: discovery), "task" (raw, db,
/// cls, ctc, yolov5, yolov8, yolox, picodet, centerface, auto: task metrics beside the
/// tensor metrics; auto's pick is the report's task.picked), "threshold" (a
/// cosine as a number, default 0.99, or a string "cosine>=0.99" / "f1>=0.95" / "top1>=0.99")
/// and "report" (writes REPORT.json and REPORT.html; unlike the CLI, no report
/// file is written without it) with "csv" (true: also REPORT.csv, msaccucmp's metric names). The meanings are documented once, on
/// `ascend_ptq::compare::options::CompareArgs`. An unknown key, a missing required key, a
/// value of the wrong type or inputs given both ways or incompletely is
/// `APTQ_INVALID_ARGUMENT` with a message naming the key; null counts as absent.
///
/// On success `*report_json` receives the report (the same document as REPORT.json; its
/// "pass" field is the verdict: a failing verdict is still `APTQ_OK`); free it with
/// `aptq_string_free`. AscendCL missing is `APTQ_ACL_LIBRARY_ERROR`, a failed ACL call
/// `APTQ_ACL_ERROR`, a missing file `APTQ_IO_ERROR`.
///
/// # Safety
/// `options_json` must be NULL or a NUL-terminated string; `report_json` must be NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_compare(options_json: *const c_char, report_json: *mut *mut c_char) -> aptq_status {
    guard(|| unsafe { compare_call(options_json, std::ptr::null(), report_json) })
}

/// `aptq_compare` with a progress callback that can cancel it (`aptq_progress_fn`): phase
/// "compare", `done` of `total` input sets. A cancelled comparison returns `APTQ_CANCELLED`
/// after releasing both models and every AscendCL object it created, and writes no report.
/// `callbacks` may be NULL (then it is `aptq_compare`).
///
/// # Safety
/// As `aptq_compare`; `callbacks` must be NULL or point to a valid `aptq_callbacks` for the
/// duration of the call, and its `progress` (if not NULL) must be safe to call with `user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_compare_with_callbacks(
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    report_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| unsafe { compare_call(options_json, callbacks, report_json) })
}

/// The body of both compare functions (`callbacks` may be NULL).
unsafe fn compare_call(
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    report_json: *mut *mut c_char,
) -> Result<(), CapiError> {
    let text = unsafe { str_arg(options_json, "options_json") }?;
    if report_json.is_null() {
        return Err(CapiError::invalid_argument("report_json is NULL"));
    }
    let args: CompareArgs = from_json(text)?;
    let reporter = unsafe { Reporter::new(callbacks) };
    let json = reporter.scope(|| run_compare(args, &mut |done, total| reporter.report("compare", done as u64, total as u64)))?;
    unsafe { write_string_out(report_json, "report_json", json) }
}

/// Compares, writes the report files the options ask for, and returns the report's JSON.
fn run_compare(args: CompareArgs, progress: &mut dyn FnMut(usize, usize)) -> Result<String, CapiError> {
    let report_path = args.report.clone();
    let csv = args.csv;
    let report = compare_oms(&args.into_options()?, progress)?;
    if let Some(path) = report_path {
        report.write(&path)?;
        if csv {
            report.write_csv(&path)?;
        }
    }
    Ok(report.to_json())
}

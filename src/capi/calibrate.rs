use std::ffi::c_char;

use super::boundary::{guard, str_arg, to_json, write_string_out};
use super::callbacks::{Reporter, aptq_callbacks};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::quant::calibrate::{Progress, calibrate};
use crate::quant::options::CalibrationArgs;

/// Runs `ascend-ptq calibration` (amct_onnx-compatible post-training INT8 quantization):
/// writes PREFIX_deploy_model.onnx, PREFIX_fake_quant_model.onnx, PREFIX_record.txt,
/// PREFIX_quant.json (the quant fusion rule for msaccucmp `-q`), PREFIX_quant_report.json
/// (per-layer scales, algorithms and cosines) and PREFIX_report.html (the same for a person,
/// with charts; self-contained) for `save_path` "DIR/PREFIX".
///
/// `options_json` is an object with the options of `ascend-ptq calibration --help`, each key
/// spelled as its flag without the dashes: "model", "save_path", "data_dir" (strings,
/// required); "input_shape" (default: the model's own shapes when all are static),
/// "data_types" (default: float32 for every input), "eval_data_dir" (held-out bins for the
/// fake-quant vs float evaluation), "batch_num", "eval_batches" (non-negative integers), "calibration_config" (a path), "equalize" (true or false, default true; the
/// flag `--no_equalize` is `"equalize": false`) and "weight_rounding" ("nearest", the
/// default, or "compensated") and "task" ("db", "yolov5", "yolov8", "yolox", "cls", "ctc",
/// "picodet", "centerface", "auto" or "raw": the fake-quant vs float agreement in the task's
/// terms; auto's pick is among the "warnings") and "sensitivity" (true or
/// false: also write PREFIX_sensitivity.json, listed as "sensitivity" in "outputs") and
/// "accuracy_target" (e.g. "f1>=0.99,cosine>=0.995": leave the fewest MACs float that meet
/// it; writes PREFIX_fallback.cfg, "fallback_cfg" in "outputs"), optional; "evaluator" is refused as on the
/// command line. The meanings are documented once, on
/// `ascend_ptq::quant::options::CalibrationArgs`. An unknown key, a missing required key or a
/// value of the wrong type is `APTQ_INVALID_ARGUMENT` naming the key; null counts as absent.
///
/// On success `*summary_json` receives the summary: "outputs" (the six paths: "deploy_model",
/// "fake_quant_model", "record", "quant_json", "quant_report", "report_html"), "quantized",
/// "left_float" (layers kept in float, with the reason), "output_agreement" (fake-quant vs
/// float on the first "eval_batches" calibration batches), "task_agreement" (with "task": mean
/// and worst of each task metric, null otherwise), "fallback" (with "accuracy_target": the
/// layers left float, "int8_mac_share", the all-int8 and final trials; null otherwise),
/// "warnings", "phase_seconds", "wall_seconds"; free it with `aptq_string_free`. A failed
/// call writes none of the six
/// files (the save_path folder may have been created).
///
/// # Safety
/// `options_json` must be NULL or a NUL-terminated string; `summary_json` must be NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_calibrate(options_json: *const c_char, summary_json: *mut *mut c_char) -> aptq_status {
    guard(|| unsafe { calibrate_call(options_json, std::ptr::null(), summary_json) })
}

/// `aptq_calibrate` with a progress callback that can cancel it (`aptq_progress_fn`).
/// `callbacks` may be NULL (then it is `aptq_calibrate`). A call whose callback asked to cancel
/// but that had already finished its last model run completes normally (`APTQ_OK`, all files
/// written).
///
/// # Safety
/// As `aptq_calibrate`; `callbacks` must be NULL or point to a valid `aptq_callbacks` for the
/// duration of the call, and its `progress` (if not NULL) must be safe to call with `user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_calibrate_with_callbacks(
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    summary_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| unsafe { calibrate_call(options_json, callbacks, summary_json) })
}

/// The body of both calibrate functions (`callbacks` may be NULL).
unsafe fn calibrate_call(
    options_json: *const c_char,
    callbacks: *const aptq_callbacks,
    summary_json: *mut *mut c_char,
) -> Result<(), CapiError> {
    let text = unsafe { str_arg(options_json, "options_json") }?;
    if summary_json.is_null() {
        // Checked before the work, so a long calibration is not wasted on a NULL out-pointer.
        return Err(CapiError::invalid_argument("summary_json is NULL"));
    }
    let args: CalibrationArgs = from_json(text)?;
    let reporter = unsafe { Reporter::new(callbacks) };
    let mut report = |progress: Progress| match progress {
        Progress::Batch { pass, done, total } => reporter.report(pass, done as u64, total as u64),
        Progress::Writing => reporter.report("writing", 0, 1),
    };
    let summary = reporter.scope(|| calibrate(&args.into_options(), &mut report))?;
    unsafe { write_string_out(summary_json, "summary_json", to_json(&summary)?) }
}

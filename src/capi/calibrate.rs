use std::ffi::c_char;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::error::{CapiError, aptq_status, guard, onnx_status, str_arg, write_string_out};
use crate::data::calib_set::CalibError;
use crate::engine::EngineError;
use crate::quant::QuantError;
use crate::quant::calibrate::{CalibrateError, CalibrationOptions, calibrate};

const REQUIRED_STRINGS: [&str; 5] = ["model", "save_path", "input_shape", "data_dir", "data_types"];
const OPTIONAL_KEYS: [&str; 3] = ["batch_num", "calibration_config", "eval_batches"];

/// Runs `ascend-ptq calibration` (amct_onnx-compatible post-training INT8 quantization):
/// writes PREFIX_deploy_model.onnx, PREFIX_fake_quant_model.onnx, PREFIX_record.txt and
/// PREFIX_quant.json for `save_path` "DIR/PREFIX".
///
/// `options_json` is an object whose keys mirror the command-line flags: "model",
/// "save_path", "input_shape", "data_dir", "data_types" (strings, required), "batch_num"
/// (integer, optional), "calibration_config" (path of the .cfg file, optional; not
/// together with "batch_num") and "eval_batches" (integer, optional, default 4: how many
/// batches the fake-quant model is compared with float on; 0 skips it). An unknown key or a value of the wrong type is
/// `APTQ_INVALID_ARGUMENT` naming the key. On success `*summary_json` receives the summary:
/// "outputs" (the four paths), "quantized", "left_float" (layers kept in float, with the
/// reason), "output_agreement" (fake-quant vs float on the first "eval_batches" calibration
/// batches), "warnings", "phase_seconds", "wall_seconds"; free it with `aptq_string_free`. A failed call writes none of the four
/// files (the save_path folder may have been created).
///
/// # Safety
/// `options_json` must be NULL or a NUL-terminated string; `summary_json` must be NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_calibrate(options_json: *const c_char, summary_json: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let text = unsafe { str_arg(options_json, "options_json") }?;
        if summary_json.is_null() {
            // Checked before the work, so a long calibration is not wasted on a NULL out-pointer.
            return Err(CapiError::invalid_argument("summary_json is NULL"));
        }
        let opts = parse_options(text)?;
        let summary = calibrate(&opts, &mut |_| {}).map_err(calibrate_error)?;
        let json =
            serde_json::to_string_pretty(&summary).map_err(|e| CapiError { status: aptq_status::APTQ_PANIC, message: e.to_string() })?;
        unsafe { write_string_out(summary_json, "summary_json", json) }
    })
}

fn parse_options(text: &str) -> Result<CalibrationOptions, CapiError> {
    let value: Value = serde_json::from_str(text).map_err(|e| CapiError::invalid_argument(format!("options_json: not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(CapiError::invalid_argument(format!("options_json: expected a JSON object, found {}", kind(&value))));
    };
    if let Some(key) = map.keys().find(|k| !REQUIRED_STRINGS.contains(&k.as_str()) && !OPTIONAL_KEYS.contains(&k.as_str())) {
        let known: Vec<&str> = REQUIRED_STRINGS.iter().chain(&OPTIONAL_KEYS).copied().collect();
        return Err(CapiError::invalid_argument(format!("options_json: unknown key \"{key}\"; expected one of: {}", known.join(", "))));
    }
    let required = |key: &str| optional_string(&map, key)?.ok_or_else(|| missing(key));
    let count = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or_else(|| {
            CapiError::invalid_argument(format!("options_json: \"{key}\" must be a non-negative integer, found {}", kind(v)))
        }),
    };
    let batch_num = count("batch_num")?;
    Ok(CalibrationOptions {
        model: PathBuf::from(required("model")?),
        save_path: required("save_path")?,
        input_shape: required("input_shape")?,
        data_dir: required("data_dir")?,
        data_types: required("data_types")?,
        batch_num,
        calibration_config: optional_string(&map, "calibration_config")?.map(PathBuf::from),
        eval_batches: count("eval_batches")?,
    })
}

fn missing(key: &str) -> CapiError {
    CapiError::invalid_argument(format!("options_json: missing required key \"{key}\" (a string)"))
}

/// A string value; absent or null is `None`.
fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, CapiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(CapiError::invalid_argument(format!("options_json: \"{key}\" must be a string, found {}", kind(v)))),
    }
}

/// The JSON value's kind and, for scalars, the value itself, for error messages.
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn calibrate_error(e: CalibrateError) -> CapiError {
    use aptq_status::*;
    let status = match &e {
        CalibrateError::Argument { .. } => APTQ_INVALID_ARGUMENT,
        CalibrateError::SavePath { .. } => APTQ_IO_ERROR,
        // No position: the config file could not be read at all.
        CalibrateError::Config(c) if c.pos.is_none() => APTQ_IO_ERROR,
        CalibrateError::Config(_) => APTQ_INVALID_ARGUMENT,
        CalibrateError::Data(CalibError::Io { .. } | CalibError::Dir { .. }) => APTQ_IO_ERROR,
        CalibrateError::Data(_) => APTQ_INVALID_ARGUMENT,
        CalibrateError::Quant(QuantError::Onnx(o)) | CalibrateError::Onnx(o) => onnx_status(o),
        CalibrateError::Quant(QuantError::Param { param, .. }) if param == "--model" => APTQ_INVALID_MODEL,
        // Weights or data the quantization cannot represent; skip_layers in the config fixes it.
        CalibrateError::Quant(_) => APTQ_INVALID_ARGUMENT,
        CalibrateError::Engine { source: EngineError::UnsupportedOp { .. }, .. } => APTQ_UNSUPPORTED,
        CalibrateError::Engine { source: EngineError::Input { .. }, .. } => APTQ_INVALID_ARGUMENT,
        CalibrateError::Engine { source: EngineError::Onnx(o), .. } => onnx_status(o),
        CalibrateError::Engine { .. } => APTQ_INVALID_MODEL,
    };
    CapiError { status, message: e.to_string() }
}

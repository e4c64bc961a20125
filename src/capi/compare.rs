use std::ffi::c_char;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::error::{CapiError, aptq_status, guard, str_arg, write_string_out};
use crate::compare::{CompareError, CompareOptions, DEFAULT_THRESHOLD, InputSource, compare_oms};
use crate::data::calib_set::CalibError;

const KEYS: [&str; 13] = [
    "int8",
    "fp16",
    "data_dir",
    "data_types",
    "batch_num",
    "images",
    "params",
    "section",
    "reference",
    "device",
    "acl_lib",
    "threshold",
    "report",
];

/// Runs `ascend-ptq compare`: the int8 and the fp16 OM on the same inputs through AscendCL
/// (or the ascend-ptq simulator), msaccucmp's ten metrics per input and output, and a verdict
/// against the cosine threshold.
///
/// `options_json` is an object whose keys mirror the command-line flags: "int8", "fp16" (OM
/// paths, required); the inputs, either "data_dir", "data_types" (strings) and "batch_num"
/// (integer ≥ 1), or "images" and "params" (paths) with an optional "section"; optional
/// "reference" (the fp32 ONNX model: our CPU engine becomes a third column), "device"
/// (integer, default 0), "acl_lib" (libascendcl.so or the simulator; default: discovery),
/// "threshold" (number, default 0.99) and "report" (writes REPORT.json and REPORT.html).
/// An unknown key or a value of the wrong type is `APTQ_INVALID_ARGUMENT` naming the key.
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
    guard(|| {
        let text = unsafe { str_arg(options_json, "options_json") }?;
        if report_json.is_null() {
            return Err(CapiError::invalid_argument("report_json is NULL"));
        }
        let (opts, report_path) = parse_options(text)?;
        let report = compare_oms(&opts, &mut |_, _| {}).map_err(compare_error)?;
        if let Some(path) = report_path {
            report.write(&path).map_err(compare_error)?;
        }
        unsafe { write_string_out(report_json, "report_json", report.to_json()) }
    })
}

fn bad(message: String) -> CapiError {
    CapiError::invalid_argument(format!("options_json: {message}"))
}

fn parse_options(text: &str) -> Result<(CompareOptions, Option<PathBuf>), CapiError> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(format!("expected a JSON object, found {}", kind(&value))));
    };
    if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(bad(format!("unknown key \"{key}\"; expected one of: {}", KEYS.join(", "))));
    }
    let string = |key: &str| optional_string(&map, key);
    let path = |key: &str| Ok::<_, CapiError>(string(key)?.map(PathBuf::from));
    let required = |key: &str| path(key)?.ok_or_else(|| bad(format!("missing required key \"{key}\" (a string)")));
    let inputs = match (string("data_dir")?, path("images")?) {
        (Some(_), Some(_)) => return Err(bad("\"data_dir\" and \"images\" are alternatives: give one".into())),
        (Some(data_dir), None) => {
            let data_types = string("data_types")?.ok_or_else(|| bad("\"data_dir\" needs \"data_types\" (e.g. \"float32\")".into()))?;
            let batch_num = match map.get("batch_num") {
                None | Some(Value::Null) => return Err(bad("\"data_dir\" needs \"batch_num\" (an integer ≥ 1)".into())),
                Some(v) => v
                    .as_u64()
                    .filter(|&n| n >= 1)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| bad(format!("\"batch_num\" must be an integer ≥ 1, found {}", kind(v))))?,
            };
            InputSource::Calib { data_dir, data_types, batch_num }
        }
        (None, Some(dir)) => {
            let params = path("params")?.ok_or_else(|| bad("\"images\" needs \"params\" (the preprocessing parameter file)".into()))?;
            InputSource::Images { dir, params, section: string("section")? }
        }
        (None, None) => {
            return Err(bad("give the inputs: \"data_dir\", \"data_types\", \"batch_num\", or \"images\" and \"params\"".into()));
        }
    };
    let device = match map.get("device") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .ok_or_else(|| bad(format!("\"device\" must be an integer, found {}", kind(v))))?,
    };
    let threshold = match map.get("threshold") {
        None | Some(Value::Null) => DEFAULT_THRESHOLD,
        Some(v) => v.as_f64().ok_or_else(|| bad(format!("\"threshold\" must be a number, found {}", kind(v))))?,
    };
    let opts = CompareOptions {
        int8_om: required("int8")?,
        fp16_om: required("fp16")?,
        inputs,
        reference: path("reference")?,
        device,
        acl_lib: path("acl_lib")?,
        threshold,
    };
    Ok((opts, path("report")?))
}

/// A string value; absent or null is `None`.
fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, CapiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(format!("\"{key}\" must be a string, found {}", kind(v)))),
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

fn compare_error(e: CompareError) -> CapiError {
    use aptq_status::*;
    let status = match e {
        CompareError::Acl(acl) => return acl.into(),
        CompareError::Io { .. } | CompareError::Calib(CalibError::Io { .. } | CalibError::Dir { .. }) => APTQ_IO_ERROR,
        // From the ACL runner only for an element type compare cannot read (ACL failures are `Acl`).
        CompareError::Run { .. } => APTQ_UNSUPPORTED,
        CompareError::ModelMismatch(_) | CompareError::OutputSize { .. } => APTQ_INVALID_MODEL,
        CompareError::Engine(ref engine) if matches!(engine, crate::engine::EngineError::UnsupportedOp { .. }) => APTQ_UNSUPPORTED,
        _ => APTQ_INVALID_ARGUMENT,
    };
    CapiError { status, message: e.to_string() }
}

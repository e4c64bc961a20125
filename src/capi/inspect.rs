use std::ffi::c_char;
use std::path::Path;

use super::error::{CapiError, aptq_status, guard, opt_str_arg, str_arg, write_string_out};
use crate::onnx::input_shape::parse_input_shapes;
use crate::onnx::inspect::inspect_file;

/// Summarizes an ONNX model as JSON (the same document as `ascend-ptq inspect --json`).
///
/// `input_shape` may be NULL; otherwise it uses the `--input_shape` syntax
/// (`"name:n,c,h,w;name2:..."`) to fix dynamic inputs for MAC counting.
/// On success `*json_out` receives a string to release with `aptq_string_free`.
///
/// # Safety
/// `model_path` and `input_shape` must be NULL or NUL-terminated strings; `json_out`
/// must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_inspect(model_path: *const c_char, input_shape: *const c_char, json_out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let path = unsafe { str_arg(model_path, "model_path") }?;
        let shapes = match unsafe { opt_str_arg(input_shape, "input_shape") }? {
            Some(arg) => parse_input_shapes(arg)?,
            None => Vec::new(),
        };
        let summary = inspect_file(Path::new(path), &shapes)?;
        let json =
            serde_json::to_string_pretty(&summary).map_err(|e| CapiError { status: aptq_status::APTQ_PANIC, message: e.to_string() })?;
        unsafe { write_string_out(json_out, "json_out", json) }
    })
}

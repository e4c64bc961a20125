use std::ffi::c_char;
use std::path::Path;

use super::boundary::{guard, opt_str_arg, str_arg, to_json, write_string_out};
use super::error::aptq_status;
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
        unsafe { write_string_out(json_out, "json_out", to_json(&summary)?) }
    })
}

use std::ffi::c_char;
use std::path::Path;

use super::boundary::{guard, str_arg, to_json, write_string_out};
use super::error::aptq_status;
use crate::device::om::om_info_file;

/// Summarizes an Ascend OM model without CANN, as JSON (the same document as
/// `ascend-ptq om-info --json`): header, partitions, and per model its inputs, outputs,
/// SoC version, ATC command line, AIPP and INT8 quantization evidence.
///
/// A truncated, corrupt or non-OM file returns `APTQ_INVALID_MODEL` with the reason in
/// `aptq_last_error()`. On success `*json_out` receives a string to release with
/// `aptq_string_free`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `json_out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_om_info(path: *const c_char, json_out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let path = unsafe { str_arg(path, "path") }?;
        let info = om_info_file(Path::new(path))?;
        unsafe { write_string_out(json_out, "json_out", to_json(&info)?) }
    })
}

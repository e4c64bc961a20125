use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::onnx::OnnxError;
use crate::onnx::input_shape::InputShapeError;

/// Result of every fallible `aptq_*` call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aptq_status {
    APTQ_OK = 0,
    /// A null pointer, invalid UTF-8, or a malformed argument such as `input_shape`.
    APTQ_INVALID_ARGUMENT = 1,
    /// A file could not be read or written.
    APTQ_IO_ERROR = 2,
    /// The model file (ONNX, or OM for `aptq_om_info`) is empty, truncated, of another format,
    /// or internally inconsistent.
    APTQ_INVALID_MODEL = 3,
    /// The model uses an operator the library cannot execute.
    APTQ_UNSUPPORTED = 4,
    /// The AscendCL library (or the simulator) was not found, could not be loaded, or lacks a
    /// required function. The message lists the places searched or the missing functions.
    APTQ_ACL_LIBRARY_ERROR = 5,
    /// An AscendCL call failed. The message names the call, ACL's numeric code and its name
    /// (e.g. `aclmdlLoadFromFile failed: 100003 ACL_ERROR_INVALID_FILE`).
    APTQ_ACL_ERROR = 6,
    /// A bug: the library panicked. The message says where.
    APTQ_PANIC = 99,
}

/// An error on its way to C: a status and the message for `aptq_last_error`.
pub(crate) struct CapiError {
    pub status: aptq_status,
    pub message: String,
}

impl CapiError {
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        CapiError { status: aptq_status::APTQ_INVALID_ARGUMENT, message: message.into() }
    }
}

/// The status of a model I/O error (also when it is wrapped in another error).
pub(crate) fn onnx_status(e: &OnnxError) -> aptq_status {
    match e {
        OnnxError::Io { .. } => aptq_status::APTQ_IO_ERROR,
        OnnxError::Argument { .. } => aptq_status::APTQ_INVALID_ARGUMENT,
        _ => aptq_status::APTQ_INVALID_MODEL,
    }
}

impl From<OnnxError> for CapiError {
    fn from(e: OnnxError) -> Self {
        CapiError { status: onnx_status(&e), message: e.to_string() }
    }
}

impl From<InputShapeError> for CapiError {
    fn from(e: InputShapeError) -> Self {
        CapiError::invalid_argument(e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; replace them so nothing is lost silently.
    let c = CString::new(message.replace('\0', "\\0")).expect("NULs replaced");
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Runs `f` behind the panic boundary and turns its outcome into a status.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), CapiError>) -> aptq_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => aptq_status::APTQ_OK,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            set_last_error(&format!("internal error (panic): {what}"));
            aptq_status::APTQ_PANIC
        }
    }
}

/// Borrows a C string argument; null or non-UTF-8 is an error naming the parameter.
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, param: &str) -> Result<&'a str, CapiError> {
    if ptr.is_null() {
        return Err(CapiError::invalid_argument(format!("{param} is NULL")));
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| CapiError::invalid_argument(format!("{param} is not valid UTF-8")))
}

/// Like [`str_arg`], but NULL means "not given".
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, param: &str) -> Result<Option<&'a str>, CapiError> {
    if ptr.is_null() { Ok(None) } else { unsafe { str_arg(ptr, param) }.map(Some) }
}

/// Hands a Rust string to C through an out-pointer; C frees it with `aptq_string_free`.
///
/// # Safety
/// `out` must be null (checked) or valid for a pointer write.
pub(crate) unsafe fn write_string_out(out: *mut *mut c_char, param: &str, value: String) -> Result<(), CapiError> {
    if out.is_null() {
        return Err(CapiError::invalid_argument(format!("{param} is NULL")));
    }
    let c = CString::new(value).map_err(|_| CapiError::invalid_argument(format!("{param}: result contains NUL")))?;
    // SAFETY: checked non-null; the caller provides a writable pointer slot.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// The message of the last failed `aptq_*` call on this thread, or NULL if none failed.
/// The pointer stays valid until the next failing call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn aptq_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))).unwrap_or(std::ptr::null())
}

/// Frees a string returned by an `aptq_*` call. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the contract, `s` came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }));
}

static VERSION_C: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("version contains NUL"),
};

/// The library version ("MAJOR.MINOR.PATCH"), a static string: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn aptq_version() -> *const c_char {
    VERSION_C.as_ptr()
}

//! The boundary every export goes through: the panic guard ([`guard`], [`guard_or`]), the
//! calling thread's last error message, and the C string arguments and results. Also the
//! exports of the conventions themselves: `aptq_last_error`, `aptq_string_free`,
//! `aptq_version`.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error::{CapiError, aptq_status};

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; replace them so nothing is lost silently.
    let c = CString::new(message.replace('\0', "\\0")).expect("NULs replaced");
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Runs `f` behind the panic boundary and returns its value; a panic returns `default` and
/// leaves its message in `aptq_last_error`. For exports that return a value, not a status.
pub(crate) fn guard_or<T>(default: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            set_last_error(&format!("internal error (panic): {what}"));
            default
        }
    }
}

/// Runs `f` behind the panic boundary and turns its outcome into a status (a panic is
/// `APTQ_PANIC`); an error's message goes to `aptq_last_error`.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), CapiError>) -> aptq_status {
    guard_or(aptq_status::APTQ_PANIC, || match f() {
        Ok(()) => aptq_status::APTQ_OK,
        Err(e) => {
            set_last_error(&e.message);
            e.status
        }
    })
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

/// A handle argument: `param is NULL` when it is.
///
/// # Safety
/// `ptr` must be NULL or point to a live `T`.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, param: &str) -> Result<&'a T, CapiError> {
    unsafe { ptr.as_ref() }.ok_or_else(|| CapiError::invalid_argument(format!("{param} is NULL")))
}

/// An out-pointer for a new handle, checked before any work is done.
pub(crate) fn check_out<T>(out: *mut *mut T, param: &str) -> Result<(), CapiError> {
    if out.is_null() { Err(CapiError::invalid_argument(format!("{param} is NULL"))) } else { Ok(()) }
}

/// The `n` caller buffers of a run (`inputs[i]`, `sizes[i]` bytes), borrowed.
///
/// # Safety
/// `inputs` and `sizes` must be NULL or arrays of `n` entries, each `inputs[i]` readable for
/// `sizes[i]` bytes for `'a`.
pub(crate) unsafe fn input_buffers<'a>(inputs: *const *const c_void, sizes: *const usize, n: usize) -> Result<Vec<&'a [u8]>, CapiError> {
    if n > 0 && (inputs.is_null() || sizes.is_null()) {
        return Err(CapiError::invalid_argument(format!("inputs or sizes is NULL with n = {n}")));
    }
    let mut buffers: Vec<&[u8]> = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: both arrays hold n entries per the contract.
        let (ptr, size) = unsafe { (*inputs.add(i), *sizes.add(i)) };
        if ptr.is_null() && size > 0 {
            return Err(CapiError::invalid_argument(format!("inputs[{i}] is NULL with sizes[{i}] = {size}")));
        }
        // SAFETY: readable for `size` bytes per the contract (a zero-size input needs no data).
        buffers.push(if size == 0 { &[] } else { unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size) } });
    }
    Ok(buffers)
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

/// Serializes a result document for C (pretty-printed JSON).
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, CapiError> {
    serde_json::to_string_pretty(value).map_err(CapiError::internal)
}

/// The message of the last failed `aptq_*` call on this thread, or NULL if none failed.
/// The pointer stays valid until the next failing call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn aptq_last_error() -> *const c_char {
    guard_or(std::ptr::null(), || LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr())))
}

/// Frees a string returned by an `aptq_*` call. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_string_free(s: *mut c_char) {
    guard_or((), || {
        if !s.is_null() {
            // SAFETY: per the contract, `s` came from CString::into_raw in this library.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

static VERSION_C: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("version contains NUL"),
};

/// The library version ("MAJOR.MINOR.PATCH"), a static string: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn aptq_version() -> *const c_char {
    guard_or(std::ptr::null(), || VERSION_C.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: aptq_last_error returns NULL or a live NUL-terminated string.
        unsafe { CStr::from_ptr(aptq_last_error()) }.to_str().unwrap().to_string()
    }

    #[test]
    fn guard_or_turns_a_panic_into_the_default_and_a_message() {
        assert_eq!(guard_or(7usize, || 3), 3);
        assert_eq!(guard_or(7usize, || panic!("accessor broke")), 7);
        assert_eq!(last_error(), "internal error (panic): accessor broke");
    }

    #[test]
    fn guard_reports_errors_and_panics_as_statuses() {
        assert_eq!(guard(|| Ok(())), aptq_status::APTQ_OK);
        assert_eq!(guard(|| Err(CapiError::invalid_argument("x is NULL"))), aptq_status::APTQ_INVALID_ARGUMENT);
        assert_eq!(last_error(), "x is NULL");
        assert_eq!(guard(|| panic!("{} broke", "run")), aptq_status::APTQ_PANIC);
        assert_eq!(last_error(), "internal error (panic): run broke");
    }
}

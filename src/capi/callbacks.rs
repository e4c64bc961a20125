//! The progress callback of the long calls (`*_with_callbacks`) and the cancel token it sets.

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::cancel::with_cancel_token;

/// Reports progress of a long call: `phase` names the pass or step (e.g. "statistics",
/// "evaluation", "compare", "atc_int8"; valid during the call only), `done` of `total` steps
/// of it. Return 0 to go on, non-zero to cancel: the call then stops at its next check (before
/// the next model run, input set, flow step, or within 100 ms of a running ATC build) and
/// returns `APTQ_CANCELLED` without leaving a partial output file or a live AscendCL object.
/// Callbacks may come from any thread the library uses, never from two threads at once for
/// one call; today every call reports from the thread that made it, but do not rely on that:
/// make the callback thread-safe.
#[allow(non_camel_case_types)]
pub type aptq_progress_fn = Option<unsafe extern "C" fn(user: *mut c_void, phase: *const c_char, done: u64, total: u64) -> c_int>;

/// Callbacks for the long calls; every field may be NULL.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct aptq_callbacks {
    pub progress: aptq_progress_fn,
    /// Passed back as the callback's first argument.
    pub user: *mut c_void,
}

/// Calls the caller's progress callback and keeps the cancel token it controls.
pub(crate) struct Reporter<'a> {
    callbacks: Option<&'a aptq_callbacks>,
    token: Arc<AtomicBool>,
    /// Held while the callback runs: never two calls at once, whichever threads report.
    calling: Mutex<()>,
}

// SAFETY: the C contract (aptq_progress_fn) lets the library call the callback with `user`
// from any of its threads; `calling` keeps the calls one at a time.
unsafe impl Sync for Reporter<'_> {}

impl<'a> Reporter<'a> {
    /// # Safety
    /// `callbacks` must be NULL or valid for the reporter's life, its `progress` callable
    /// with its `user`.
    pub(crate) unsafe fn new(callbacks: *const aptq_callbacks) -> Self {
        Reporter { callbacks: unsafe { callbacks.as_ref() }, token: Arc::new(AtomicBool::new(false)), calling: Mutex::new(()) }
    }

    /// Reports `(phase, done, total)`; a non-zero answer sets the cancel token.
    pub(crate) fn report(&self, phase: &str, done: u64, total: u64) {
        let Some((f, user)) = self.callbacks.and_then(|c| c.progress.map(|f| (f, c.user))) else { return };
        let phase = CString::new(phase.replace('\0', " ")).unwrap_or_default();
        let _one_at_a_time = self.calling.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the caller vouches for the callback and its user pointer (see `new`).
        if unsafe { f(user, phase.as_ptr(), done, total) } != 0 {
            self.token.store(true, Ordering::SeqCst);
        }
    }

    /// Runs `f` with this reporter's token as the thread's cancel token.
    pub(crate) fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        with_cancel_token(Arc::clone(&self.token), f)
    }
}

//! Errors of ACL calls that release objects (`aclrtFree`, `aclmdlUnload`, `aclrtDestroy*`, ...),
//! which run in `Drop` where nothing can be returned.
//!
//! Design, after cudarc's `record_err` / `check_err`: every [`Acl`](super::Acl) from
//! `Acl::open` owns one [`TeardownLog`], shared by its clones and by every handle made from it
//! (device, context, stream, buffers, datasets, models). Each `Drop` records a failed release
//! there instead of discarding it. Two ways out:
//! - **the next call**: every public fallible method of the safe layer first checks the log
//!   and, when something was recorded since the last check, returns the oldest new error as
//!   `Error::Call` without doing its own work (the error's `call` names the release that
//!   failed, not the method that returned it). One call reports a whole batch: the call after
//!   it runs normally again.
//! - **draining**: `Acl::take_teardown_errors()` returns every error recorded since the last
//!   drain, whether or not a call already reported it, for callers that finish (the compare
//!   runner puts them in its report) — after the last drop there is no next call.
//!
//! The log lives with the `Acl` handle rather than the process-wide runtime, so two users of
//! one library (two C API sessions, parallel tests) never see each other's teardown errors.

use std::sync::{Mutex, MutexGuard};

use super::result::AclError;

#[derive(Default)]
pub(super) struct TeardownLog {
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// Since the last drain, oldest first.
    errors: Vec<AclError>,
    /// How many of `errors` a call has already reported.
    reported: usize,
}

impl TeardownLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // Called from Drop: a poisoned lock must not become a panic there.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the error of a release call; `Ok` is ignored.
    pub(super) fn record(&self, result: Result<(), AclError>) {
        if let Err(e) = result {
            self.lock().errors.push(e);
        }
    }

    /// The oldest error recorded since the last check, marking every recorded error reported.
    pub(super) fn check(&self) -> Result<(), AclError> {
        let mut state = self.lock();
        let first_new = state.errors.get(state.reported).cloned();
        state.reported = state.errors.len();
        first_new.map_or(Ok(()), Err)
    }

    /// Every error recorded since the last drain, oldest first; the log is then empty.
    pub(super) fn take(&self) -> Vec<AclError> {
        let mut state = self.lock();
        state.reported = 0;
        std::mem::take(&mut state.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::acl::error_name;

    fn err(call: &'static str, code: i32) -> AclError {
        AclError { call, code, name: error_name(code), recent: None }
    }

    #[test]
    fn one_check_reports_a_batch_and_the_drain_keeps_everything() {
        let log = TeardownLog::default();
        assert_eq!(log.check(), Ok(()));
        log.record(Ok(()));
        log.record(Err(err("aclrtFree", 500001)));
        log.record(Err(err("aclmdlUnload", 100011)));
        assert_eq!(log.check(), Err(err("aclrtFree", 500001)));
        assert_eq!(log.check(), Ok(()), "a batch fails one call");
        log.record(Err(err("aclrtDestroyStream", 507000)));
        assert_eq!(log.check(), Err(err("aclrtDestroyStream", 507000)));
        let all = log.take();
        assert_eq!(all, vec![err("aclrtFree", 500001), err("aclmdlUnload", 100011), err("aclrtDestroyStream", 507000)]);
        assert_eq!(log.take(), Vec::new());
        log.record(Err(err("aclrtResetDevice", 107001)));
        assert_eq!(log.check(), Err(err("aclrtResetDevice", 107001)), "a drain resets what was reported");
    }
}

//! Cooperative cancellation of long work: a caller runs code inside [`with_cancel_token`], and
//! every model run on that thread checks the token before each node, ending with
//! [`EngineError::Cancelled`](super::EngineError::Cancelled) once it is set. Like ONNX
//! Runtime's `RunOptions::terminate`, but reaching the runs that a calibration or a comparison
//! makes internally. Per thread: other threads' runs are not affected.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static TOKEN: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` with `token` as this thread's cancel token (the previous one is restored after).
pub fn with_cancel_token<T>(token: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            TOKEN.with(|t| *t.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(TOKEN.with(|t| t.borrow_mut().replace(token)));
    f()
}

/// Whether this thread's token (if any) has been set.
pub fn cancelled() -> bool {
    TOKEN.with(|t| t.borrow().as_ref().is_some_and(|t| t.load(Ordering::SeqCst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_applies_inside_the_scope_only() {
        let token = Arc::new(AtomicBool::new(true));
        assert!(!cancelled());
        assert!(with_cancel_token(Arc::clone(&token), cancelled));
        assert!(!cancelled(), "restored after the scope");
        token.store(false, Ordering::SeqCst);
        assert!(!with_cancel_token(token, cancelled));
    }
}

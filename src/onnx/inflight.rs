//! Temp files being written right now, so that Ctrl-C leaves none behind.
//!
//! [`super::io::write_atomically`] writes every output to a hidden temp file next to it and
//! renames it into place; killed in between, the temp file would stay. The CLI installs
//! [`install_cleanup_on_interrupt`]: on SIGINT / SIGTERM its handler unlinks every registered
//! temp file and exits with 128 + the signal number. Files already renamed into place are
//! complete; the one being written is removed; nothing half-written remains.
//!
//! The handler may only make async-signal-safe calls and must not allocate or lock, so the
//! registry is a fixed table of path buffers with an atomic state per slot: a writer claims a
//! free slot, copies its NUL-terminated path in, then publishes it; the handler unlinks the
//! published paths. A path too long for a slot, or more concurrent writes than slots, is
//! simply not registered (the write itself is unaffected).

use std::cell::UnsafeCell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

const SLOTS: usize = 32;
const PATH_MAX: usize = 4096;

const FREE: u8 = 0;
const FILLING: u8 = 1;
const PUBLISHED: u8 = 2;

struct Slot {
    state: AtomicU8,
    path: UnsafeCell<[u8; PATH_MAX]>,
}

// SAFETY: `path` is written only by the writer that moved `state` FREE → FILLING, and read
// (by the signal handler) only while `state` is PUBLISHED.
unsafe impl Sync for Slot {}

struct Registry {
    slots: [Slot; SLOTS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot { state: AtomicU8::new(FREE), path: UnsafeCell::new([0; PATH_MAX]) };
static REGISTRY: Registry = Registry::new();

/// A registered temp file; unregistered when dropped (after the rename, or on error).
pub struct Registration<'a> {
    slot: Option<&'a Slot>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot.state.store(FREE, Ordering::SeqCst);
        }
    }
}

impl Registry {
    const fn new() -> Registry {
        Registry { slots: [EMPTY; SLOTS] }
    }

    fn register(&self, path: &Path) -> Registration<'_> {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return Registration { slot: None } };
        let bytes = c.as_bytes_with_nul();
        if bytes.len() > PATH_MAX {
            return Registration { slot: None };
        }
        for slot in &self.slots {
            if slot.state.compare_exchange(FREE, FILLING, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                // SAFETY: this writer owns the slot while it is FILLING (see `Slot`).
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), slot.path.get() as *mut u8, bytes.len()) };
                slot.state.store(PUBLISHED, Ordering::SeqCst);
                return Registration { slot: Some(slot) };
            }
        }
        Registration { slot: None }
    }

    /// Unlinks every registered temp file (async-signal-safe: atomics and unlink only).
    fn remove_registered(&self) {
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) == PUBLISHED {
                // SAFETY: a PUBLISHED slot holds a NUL-terminated path (see `register`).
                unsafe { libc::unlink(slot.path.get() as *const libc::c_char) };
            }
        }
    }
}

/// Registers `path` (a temp file about to be created) for removal on interrupt.
pub fn register(path: &Path) -> Registration<'static> {
    REGISTRY.register(path)
}

extern "C" fn on_interrupt(signal: libc::c_int) {
    REGISTRY.remove_registered();
    // SAFETY: _exit is async-signal-safe; no destructor or buffered I/O runs.
    unsafe { libc::_exit(128 + signal) };
}

/// For the CLI: SIGINT and SIGTERM remove the temp files being written and exit with
/// 128 + signal. (A C application embedding the library keeps its own signal handling.)
pub fn install_cleanup_on_interrupt() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only makes async-signal-safe calls (atomics, unlink, _exit).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_files_are_removed_and_released_slots_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tmp"), dir.path().join("b.tmp"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"y").unwrap();
        // A registry of its own: the global one serves the other tests' writes.
        let registry = Registry::new();
        let keep_a = registry.register(&a);
        drop(registry.register(&b));
        registry.remove_registered();
        assert!(!a.exists(), "a registered file is removed");
        assert!(b.exists(), "a released registration removes nothing");
        drop(keep_a);
    }
}

//! The `extern "C"` surface, and nothing else: every function converts C arguments,
//! calls the library, and converts the result back.
//!
//! Conventions (every export follows them):
//! - names start with `aptq_`; fallible calls return [`aptq_status`] (`APTQ_OK` = 0);
//! - on failure, `aptq_last_error()` returns a message for the calling thread;
//! - strings handed to C are freed with `aptq_string_free`;
//! - null pointers are rejected with `APTQ_INVALID_ARGUMENT`, never dereferenced;
//! - no panic crosses the boundary: it becomes `APTQ_PANIC` with its message.

mod calibrate;
mod data;
mod error;
mod inspect;
mod om;

pub use calibrate::aptq_calibrate;
pub use data::{aptq_aipp, aptq_preprocess};
pub use error::{aptq_last_error, aptq_status, aptq_string_free, aptq_version};
pub use inspect::aptq_inspect;
pub use om::aptq_om_info;

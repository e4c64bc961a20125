//! The `extern "C"` surface, and nothing else: every function converts C arguments,
//! calls the library, and converts the result back.
//!
//! Conventions (every export follows them):
//! - names start with `aptq_`; fallible calls return [`aptq_status`] (`APTQ_OK` = 0);
//! - on failure, `aptq_last_error()` returns a message for the calling thread;
//! - strings handed to C are freed with `aptq_string_free`;
//! - null pointers are rejected with `APTQ_INVALID_ARGUMENT`, never dereferenced;
//! - no panic crosses the boundary: every export's body runs in `guard` (a panic becomes
//!   `APTQ_PANIC` with its message) or, when it returns a value, `guard_or` (a panic returns
//!   the documented default: 0 or NULL); `tests/capi_guard.rs` checks every export;
//! - options JSON objects are the command's options struct (the one clap also fills), read
//!   by `options.rs`; every library error's status is decided in `error.rs`.

mod acl;
mod boundary;
mod calibrate;
mod callbacks;
mod compare;
mod convert;
mod data;
mod engine;
mod error;
mod flow;
mod inspect;
mod om;
mod options;

pub use acl::{
    aptq_acl, aptq_acl_free, aptq_acl_is_simulator, aptq_acl_open, aptq_acl_soc_name, aptq_model, aptq_model_free, aptq_model_input_info,
    aptq_model_input_size, aptq_model_load, aptq_model_num_inputs, aptq_model_num_outputs, aptq_model_output_info, aptq_model_output_size,
    aptq_model_run, aptq_outputs, aptq_outputs_count, aptq_outputs_data, aptq_outputs_free, aptq_outputs_name,
};
pub use boundary::{aptq_last_error, aptq_string_free, aptq_version};
pub use calibrate::{aptq_calibrate, aptq_calibrate_with_callbacks};
pub use callbacks::{aptq_callbacks, aptq_progress_fn};
pub use compare::{aptq_compare, aptq_compare_with_callbacks};
pub use convert::aptq_convert;
pub use data::{aptq_aipp, aptq_preprocess, aptq_preprocess_with_callbacks};
pub use engine::{
    aptq_engine, aptq_engine_free, aptq_engine_input_info, aptq_engine_num_inputs, aptq_engine_open, aptq_engine_run, aptq_run,
};
pub use error::aptq_status;
pub use flow::{aptq_flow, aptq_flow_with_callbacks};
pub use inspect::aptq_inspect;
pub use om::aptq_om_info;

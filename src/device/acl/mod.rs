//! AscendCL (`libascendcl.so`) at run time, in three layers as in cudarc: `sys` (bindgen, dynamic
//! loading, generated from `ffi/acl/acl_api.h`), `result` (every call → `Result<T, AclError>`)
//! and `safe` (RAII handles). `discover` finds and checks the library. `teardown` keeps the
//! errors of releases made in `Drop` for the next call and for `Acl::take_teardown_errors`.
//! The same code drives the real library and the ascend-ptq simulator (`ffi/acl-sim`), which
//! identifies itself.

pub mod discover;
pub mod error;
pub mod result;
pub mod safe;
#[rustfmt::skip]
pub mod sys;
mod teardown;

pub use discover::{ENV_LIB, LIB_NAME, LibrarySearch, OPTIONAL_SYMBOLS, REQUIRED_SYMBOLS};
pub use error::{Error, Tried};
pub use result::{AclError, error_name};
pub use safe::{Acl, AippType, Context, DataType, Dataset, Device, DeviceBuffer, Format, IoDesc, Model, ModelDesc, RunMode, Stream};

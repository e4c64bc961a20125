//! A small session API over AscendCL for C/C++ callers running an OM themselves: open the
//! library (or the ascend-ptq simulator), load a model, run it on host buffers, read the
//! outputs. Handles are opaque and freed with their `_free` function; a model keeps the
//! library, device and context it was loaded on alive, so handles may be freed in any order.

// C type names: aptq_acl, aptq_model, aptq_outputs.
#![allow(non_camel_case_types)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::Path;

use serde_json::json;

use super::boundary::{check_out, guard, guard_or, handle, input_buffers, opt_str_arg, str_arg, write_string_out};
use super::error::{CapiError, aptq_status};
use crate::device::acl::{Acl, AippType, Context, DataType, Device, Format, IoDesc, Model};

/// An opened AscendCL library with one device set and a context on it.
pub struct aptq_acl {
    acl: Acl,
    // Kept for their lifetime: the device stays set and the context alive while the handle lives.
    _device: Device,
    context: Context,
}

/// A model loaded from an OM file, with its input and output description.
pub struct aptq_model {
    model: Model,
}

/// The outputs of one `aptq_model_run` or `aptq_engine_run`, in model order.
pub struct aptq_outputs {
    items: Vec<(CString, Vec<u8>)>,
}

impl aptq_outputs {
    /// (name, bytes) per output, in model order.
    pub(crate) fn new(items: Vec<(CString, Vec<u8>)>) -> Self {
        aptq_outputs { items }
    }
}

/// Opens AscendCL, sets `device` and creates a context on it.
///
/// `lib_path` names `libascendcl.so` (or the simulator `libascendcl_sim.so`), or a folder
/// holding it; NULL searches `$ASCEND_PTQ_ACL_LIB`, the CANN folders
/// (`$ASCEND_TOOLKIT_HOME/lib64`, `$ASCEND_HOME_PATH/lib64`, `/usr/local/Ascend/...`) and the
/// loader path. `aclInit` runs once per library per process. Errors: the library missing or
/// lacking a required function is `APTQ_ACL_LIBRARY_ERROR` (the message lists where it looked);
/// a failing ACL call is `APTQ_ACL_ERROR` (the message has the call, code and code name).
/// On success `*out` receives a handle to release with `aptq_acl_free`.
///
/// # Safety
/// `lib_path` must be NULL or a NUL-terminated string; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_acl_open(lib_path: *const c_char, device: c_int, out: *mut *mut aptq_acl) -> aptq_status {
    guard(|| {
        let lib = unsafe { opt_str_arg(lib_path, "lib_path") }?;
        check_out(out, "out")?;
        let acl = Acl::open(lib.map(Path::new))?;
        let dev = acl.device(device)?;
        let context = dev.create_context()?;
        let handle = Box::new(aptq_acl { acl, _device: dev, context });
        // SAFETY: checked non-null above.
        unsafe { *out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Releases a handle from `aptq_acl_open` (models loaded through it stay usable). NULL is ignored.
///
/// # Safety
/// `acl` must be NULL or a handle from `aptq_acl_open` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_acl_free(acl: *mut aptq_acl) {
    guard_or((), || {
        if !acl.is_null() {
            // SAFETY: per the contract, `acl` came from Box::into_raw in aptq_acl_open.
            drop(unsafe { Box::from_raw(acl) });
        }
    })
}

/// The SoC name (`aclrtGetSocName`), e.g. "Ascend310P3"; the simulator adds "-sim". A library
/// without that function (older CANN) gives `APTQ_UNSUPPORTED`. On success `*out` receives a
/// string to release with `aptq_string_free`.
///
/// # Safety
/// `acl` must be NULL or a live handle; `out` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_acl_soc_name(acl: *const aptq_acl, out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let acl = unsafe { handle(acl, "acl") }?;
        let name = acl.acl.soc_name().ok_or_else(|| CapiError {
            status: aptq_status::APTQ_UNSUPPORTED,
            message: format!("{}: aclrtGetSocName is not available (older CANN)", acl.acl.library().display()),
        })?;
        unsafe { write_string_out(out, "out", name) }
    })
}

/// 1 when the opened library is the ascend-ptq ACL simulator (results are not from an NPU),
/// 0 when it is a real AscendCL, or when `acl` is NULL.
///
/// # Safety
/// `acl` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_acl_is_simulator(acl: *const aptq_acl) -> c_int {
    // SAFETY: NULL or live per the contract.
    guard_or(0, || unsafe { acl.as_ref() }.map_or(0, |a| c_int::from(a.acl.simulator_identity().is_some())))
}

/// Loads an OM file on the handle's context (`aclmdlLoadFromFile`) and allocates its input
/// and output buffers. A missing file is `APTQ_IO_ERROR`; a file ACL refuses is
/// `APTQ_ACL_ERROR` with ACL's code. On success `*out` receives a handle to release with
/// `aptq_model_free`.
///
/// # Safety
/// `acl` must be NULL or a live handle; `om_path` NULL or a NUL-terminated string; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_load(acl: *mut aptq_acl, om_path: *const c_char, out: *mut *mut aptq_model) -> aptq_status {
    guard(|| {
        let acl = unsafe { handle(acl, "acl") }?;
        let path = unsafe { str_arg(om_path, "om_path") }?;
        check_out(out, "out")?;
        let model = acl.context.load_model(Path::new(path))?;
        // SAFETY: checked non-null above.
        unsafe { *out = Box::into_raw(Box::new(aptq_model { model })) };
        Ok(())
    })
}

/// Unloads a model and frees its buffers. NULL is ignored.
///
/// # Safety
/// `model` must be NULL or a handle from `aptq_model_load` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_free(model: *mut aptq_model) {
    guard_or((), || {
        if !model.is_null() {
            // SAFETY: per the contract, `model` came from Box::into_raw in aptq_model_load.
            drop(unsafe { Box::from_raw(model) });
        }
    })
}

/// Number of model inputs (0 for NULL).
///
/// # Safety
/// `model` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_num_inputs(model: *const aptq_model) -> usize {
    guard_or(0, || unsafe { model.as_ref() }.map_or(0, |m| m.model.desc().inputs().len()))
}

/// Number of model outputs (0 for NULL).
///
/// # Safety
/// `model` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_num_outputs(model: *const aptq_model) -> usize {
    guard_or(0, || unsafe { model.as_ref() }.map_or(0, |m| m.model.desc().outputs().len()))
}

/// Bytes input `i` takes (what `aptq_model_run` expects in `sizes[i]`); 0 when out of range.
///
/// # Safety
/// `model` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_input_size(model: *const aptq_model, i: usize) -> usize {
    guard_or(0, || unsafe { model.as_ref() }.and_then(|m| m.model.desc().inputs().get(i)).map_or(0, |io| io.size))
}

/// Bytes output `i` holds; 0 when out of range.
///
/// # Safety
/// `model` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_output_size(model: *const aptq_model, i: usize) -> usize {
    guard_or(0, || unsafe { model.as_ref() }.and_then(|m| m.model.desc().outputs().get(i)).map_or(0, |io| io.size))
}

/// Describes input `i` as JSON: {"name", "dims" (array), "dtype" ("float32", "float16",
/// "uint8", ...), "format" ("NCHW", "NHWC", "ND", ...), "size" (bytes), "aipp" ("none",
/// "static", "dynamic", ...)}; a static-AIPP input takes the raw uint8 frame. An index out of
/// range is `APTQ_INVALID_ARGUMENT`. Free the string with `aptq_string_free`.
///
/// # Safety
/// `model` must be NULL or a live handle; `json_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_input_info(model: *const aptq_model, i: usize, json_out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let m = unsafe { handle(model, "model") }?;
        let io = io_at(m.model.desc().inputs(), i, "input")?;
        unsafe { write_string_out(json_out, "json_out", io_json(io)) }
    })
}

/// Describes output `i` as JSON, with the keys of `aptq_model_input_info` ("aipp" is "none").
///
/// # Safety
/// `model` must be NULL or a live handle; `json_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_output_info(model: *const aptq_model, i: usize, json_out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let m = unsafe { handle(model, "model") }?;
        let io = io_at(m.model.desc().outputs(), i, "output")?;
        unsafe { write_string_out(json_out, "json_out", io_json(io)) }
    })
}

/// Runs the model once, synchronously: `n` must equal the number of inputs and `sizes[i]`
/// the exact byte size of input `i` (`aptq_model_input_size`); a mismatch is
/// `APTQ_INVALID_ARGUMENT` naming the input. Inputs are copied; the caller keeps them. On
/// success `*out` receives the outputs, to release with `aptq_outputs_free`.
///
/// # Safety
/// `model` must be NULL or a live handle, not used by another thread during the call;
/// `inputs` and `sizes` NULL or arrays of `n` entries, each `inputs[i]` readable for
/// `sizes[i]` bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_model_run(
    model: *mut aptq_model,
    inputs: *const *const c_void,
    sizes: *const usize,
    n: usize,
    out: *mut *mut aptq_outputs,
) -> aptq_status {
    guard(|| {
        // SAFETY: NULL or live and unshared per the contract.
        let m = unsafe { model.as_mut() }.ok_or_else(|| CapiError::invalid_argument("model is NULL"))?;
        check_out(out, "out")?;
        // SAFETY: arrays of n readable buffers per the contract.
        let buffers = unsafe { input_buffers(inputs, sizes, n) }?;
        let results = m.model.run(&buffers)?;
        let names = m.model.desc().outputs().iter().map(|io| CString::new(io.name.replace('\0', "\\0")).expect("NULs replaced"));
        let items = names.zip(results).collect();
        // SAFETY: checked non-null above.
        unsafe { *out = Box::into_raw(Box::new(aptq_outputs { items })) };
        Ok(())
    })
}

/// Number of outputs held (0 for NULL).
///
/// # Safety
/// `outputs` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_outputs_count(outputs: *const aptq_outputs) -> usize {
    guard_or(0, || unsafe { outputs.as_ref() }.map_or(0, |o| o.items.len()))
}

/// The bytes of output `i` (little-endian, the output's dtype), borrowed until
/// `aptq_outputs_free`; `*size_out` (when not NULL) receives their count. NULL and size 0 when
/// `i` is out of range.
///
/// # Safety
/// `outputs` must be NULL or a live handle; `size_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_outputs_data(outputs: *const aptq_outputs, i: usize, size_out: *mut usize) -> *const c_void {
    guard_or(std::ptr::null(), || {
        let item = unsafe { outputs.as_ref() }.and_then(|o| o.items.get(i));
        if !size_out.is_null() {
            // SAFETY: checked non-null; writable per the contract.
            unsafe { *size_out = item.map_or(0, |(_, data)| data.len()) };
        }
        item.map_or(std::ptr::null(), |(_, data)| data.as_ptr().cast())
    })
}

/// The name of output `i`, borrowed until `aptq_outputs_free`; NULL when out of range.
///
/// # Safety
/// `outputs` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_outputs_name(outputs: *const aptq_outputs, i: usize) -> *const c_char {
    guard_or(std::ptr::null(), || {
        unsafe { outputs.as_ref() }.and_then(|o| o.items.get(i)).map_or(std::ptr::null(), |(name, _)| name.as_ptr())
    })
}

/// Frees the outputs of `aptq_model_run` or `aptq_engine_run`. NULL is ignored.
///
/// # Safety
/// `outputs` must be NULL or a handle from `aptq_model_run` or `aptq_engine_run` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_outputs_free(outputs: *mut aptq_outputs) {
    guard_or((), || {
        if !outputs.is_null() {
            // SAFETY: per the contract, `outputs` came from Box::into_raw in aptq_model_run or aptq_engine_run.
            drop(unsafe { Box::from_raw(outputs) });
        }
    })
}

fn io_at<'a>(list: &'a [IoDesc], i: usize, what: &str) -> Result<&'a IoDesc, CapiError> {
    list.get(i).ok_or_else(|| CapiError::invalid_argument(format!("{what} index {i} out of range: the model has {} {what}(s)", list.len())))
}

fn io_json(io: &IoDesc) -> String {
    json!({
        "name": io.name,
        "dims": io.dims,
        "dtype": dtype_name(io.dtype),
        "format": format_name(io.format),
        "size": io.size,
        "aipp": aipp_name(io.aipp),
    })
    .to_string()
}

fn dtype_name(d: DataType) -> String {
    match d {
        DataType::Float => "float32".into(),
        DataType::Float16 => "float16".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int32 => "int32".into(),
        DataType::Uint8 => "uint8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Uint16 => "uint16".into(),
        DataType::Uint32 => "uint32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Uint64 => "uint64".into(),
        DataType::Double => "float64".into(),
        DataType::Bool => "bool".into(),
        DataType::Bf16 => "bfloat16".into(),
        DataType::Other(v) => format!("aclDataType({v})"),
    }
}

fn format_name(f: Format) -> String {
    match f {
        Format::Undefined => "UNDEFINED".into(),
        Format::Nchw => "NCHW".into(),
        Format::Nhwc => "NHWC".into(),
        Format::Nd => "ND".into(),
        Format::Nc1hwc0 => "NC1HWC0".into(),
        Format::Other(v) => format!("aclFormat({v})"),
    }
}

fn aipp_name(a: AippType) -> String {
    match a {
        AippType::None => "none".into(),
        AippType::Static => "static".into(),
        AippType::Dynamic => "dynamic".into(),
        AippType::DynamicNode => "dynamic_node".into(),
        AippType::Other(v) => format!("aclmdlInputAippType({v})"),
    }
}

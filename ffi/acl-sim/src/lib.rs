//! `libascendcl_sim.so`: a CPU simulator of the AscendCL C API (docs/ascend-formats.md §11) for machines
//! without an Ascend NPU. It exports the ACL symbols ascend-ptq uses, with the same
//! signatures, state rules and error codes, and executes **simulated OMs** (written by
//! `ascend-ptq build --simulate`) with the ascend-ptq engine: int8 OMs run the deploy model
//! (AscendQuant / int8 layers / AscendDequant), fp16 OMs run the float model with every op
//! output rounded to fp16. Real OMs built by ATC are refused. It is never a device:
//! `aclrtGetSocName` ends in `-sim` and `aclsimIdentity` names it.
//!
//! Error codes chosen where the ACL documentation leaves room (formats §11.2):
//! - `aclmdlLoadFromFile` / `aclmdlQuerySize` on a missing or unreadable file: 145002
//!   (ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, what GE's loader reports for a bad path); a
//!   file that is not a simulated OM (garbage, a real ATC OM, an engine-unsupported model):
//!   100013 (ACL_ERROR_PARSE_MODEL), with the reason in `aclGetRecentErrMsg`.
//! - `aclInit` with a config file that cannot be read: 100003 (INVALID_FILE); not JSON:
//!   100006 (PARSE_FILE).
//! - Bad pointers, unknown or destroyed handles, wrong memcpy kinds, sizes: 100000
//!   (INVALID_PARAM); device id other than 0: 107001; no current context: 107002.
//! - `aclmdlExecute`: wrong input count or size 100017, wrong output count or too small
//!   output buffer 100018, engine failure 500001.
//!
//! Simulator extras: `aclsimGetLiveCounts`, `aclsimIdentity`, and the environment variables
//! `ASCEND_PTQ_SIM_FAIL=<symbol>:<code>[,...]` (that call returns `<code>`),
//! `ASCEND_PTQ_SIM_RUN_MODE=device|host` (default host) and `ASCEND_PTQ_SIM_SOC` (SoC name
//! before a model with a `soc_version` is loaded; default Ascend310P3).
//!
//! Memory model: `aclrtMalloc` memory is "device" memory, `aclrtMallocHost` pinned host
//! memory, anything else plain host memory. In host run mode (the default, PCIe cards)
//! `aclrtMemcpy` checks its kind against where `dst` and `src` live; in device run mode (RC
//! boards, where the application's memory is device memory) any kind is accepted. Ranges are
//! always checked against the tracked allocations (overruns, use after free; freed memory is
//! quarantined so its address is not reused while that matters), and `aclmdlExecute`
//! requires aclrtMalloc buffers in both modes. The simulator cannot see a host-mode caller
//! writing device memory directly.
//!
//! State is process-wide (one mutex); `aclInit` is accepted again after `aclFinalize`
//! (tests initialise repeatedly in one process). Every export catches panics and returns
//! ACL_ERROR_INTERNAL_ERROR (500000) or a null/zero value instead of unwinding into C.
#![allow(non_snake_case, non_camel_case_types, clippy::missing_safety_doc)]

mod codes;
mod model;
mod state;

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use codes::*;
use model::{AclFail, LoadedModel, fail};
use state::{DataBuffer, DescInfo, IoInfo, Region, State, state};

pub type aclError = c_int;
pub type aclrtContext = *mut c_void;
pub type aclrtStream = *mut c_void;

const ACL_MAX_DIM_CNT: usize = 128;
const ACL_MAX_TENSOR_NAME_LEN: usize = 128;
const DEFAULT_SOC: &str = "Ascend310P3";

#[repr(C)]
pub struct aclmdlIODims {
    pub name: [c_char; ACL_MAX_TENSOR_NAME_LEN],
    pub dimCount: usize,
    pub dims: [i64; ACL_MAX_DIM_CNT],
}

/// Objects created and not yet destroyed / freed.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct aclsimLiveCounts {
    pub device_buffers: usize,
    pub host_buffers: usize,
    pub data_buffers: usize,
    pub datasets: usize,
    pub model_descs: usize,
    pub models: usize,
    pub contexts: usize,
    pub streams: usize,
    pub devices_set: usize,
}

thread_local! {
    static RECENT_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    static CURRENT_CONTEXT: Cell<usize> = const { Cell::new(0) };
}

fn set_error(msg: String) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    RECENT_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// `ASCEND_PTQ_SIM_FAIL=<symbol>:<code>[,<symbol>:<code>...]`.
fn injected(symbol: &str) -> Option<i32> {
    let spec = std::env::var("ASCEND_PTQ_SIM_FAIL").ok()?;
    spec.split(',').find_map(|item| {
        let (s, code) = item.trim().split_once(':')?;
        if s.trim() == symbol { code.trim().parse().ok() } else { None }
    })
}

fn guard<T>(symbol: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            set_error(format!("{symbol}: internal error in the ACL simulator (a panic was caught)"));
            on_panic
        }
    }
}

/// An export returning aclError: failure injection, the init check, the state lock, and
/// the recent-error message.
fn call(symbol: &'static str, needs_init: bool, f: impl FnOnce(&mut State) -> Result<(), AclFail>) -> aclError {
    guard(symbol, ACL_ERROR_INTERNAL_ERROR, || {
        if let Some(code) = injected(symbol) {
            set_error(format!("{symbol}: failure injected by ASCEND_PTQ_SIM_FAIL (code {code})"));
            return code;
        }
        let mut st = state();
        let result = if needs_init { st.require_init().and_then(|()| f(&mut st)) } else { f(&mut st) };
        match result {
            Ok(()) => ACL_SUCCESS,
            Err(e) => {
                set_error(format!("{symbol}: {}", e.msg));
                e.code
            }
        }
    })
}

/// An export returning a value (pointer, size, enum): failures give `default`.
fn query<T: Copy>(symbol: &'static str, default: T, f: impl FnOnce(&mut State) -> Result<T, AclFail>) -> T {
    guard(symbol, default, || {
        let mut st = state();
        match st.require_init().and_then(|()| f(&mut st)) {
            Ok(v) => v,
            Err(e) => {
                set_error(format!("{symbol}: {}", e.msg));
                default
            }
        }
    })
}

fn out_ptr<T>(p: *mut T, what: &str) -> Result<&'static mut T, AclFail> {
    // SAFETY: the caller passes a valid pointer or null (checked).
    unsafe { p.as_mut() }.ok_or_else(|| AclFail { code: ACL_ERROR_INVALID_PARAM, msg: format!("{what} is a null pointer") })
}

fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, AclFail> {
    if p.is_null() {
        return fail(ACL_ERROR_INVALID_PARAM, format!("{what} is a null pointer"));
    }
    // SAFETY: non-null, NUL-terminated per the API contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| AclFail { code: ACL_ERROR_INVALID_PARAM, msg: format!("{what} is not UTF-8") })
}

fn check_device(id: i32) -> Result<(), AclFail> {
    if id == 0 {
        Ok(())
    } else {
        fail(ACL_ERROR_RT_INVALID_DEVICEID, format!("device {id} does not exist (the simulator has one device, 0)"))
    }
}

fn run_mode() -> i32 {
    match std::env::var("ASCEND_PTQ_SIM_RUN_MODE").as_deref() {
        Ok("device") => ACL_DEVICE,
        _ => ACL_HOST,
    }
}

// ---- init / device / context / stream ---------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclInit(configPath: *const c_char) -> aclError {
    call("aclInit", false, |st| {
        if st.initialized {
            return fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit was already called in this process");
        }
        if !configPath.is_null() {
            let path = c_str(configPath, "configPath")?;
            if !path.is_empty() {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AclFail { code: 100003, msg: format!("cannot read the config file {path}: {e}") })?;
                if !text.trim().is_empty() {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| AclFail { code: 100006, msg: format!("the config file {path} is not JSON: {e}") })?;
                }
            }
        }
        st.initialized = true;
        st.finalized = false;
        let soc = std::env::var("ASCEND_PTQ_SIM_SOC").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_SOC.into());
        st.set_soc(&soc);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclFinalize() -> aclError {
    call("aclFinalize", false, |st| {
        if !st.initialized {
            return if st.finalized {
                fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize was already called")
            } else {
                fail(ACL_ERROR_UNINITIALIZE, "aclInit has not been called")
            };
        }
        st.initialized = false;
        st.finalized = true;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtGetVersion(major: *mut i32, minor: *mut i32, patch: *mut i32) -> aclError {
    call("aclrtGetVersion", false, |_| {
        let (a, b, c) = (out_ptr(major, "major")?, out_ptr(minor, "minor")?, out_ptr(patch, "patch")?);
        (*a, *b, *c) = (1, 0, 0);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclGetRecentErrMsg() -> *const c_char {
    guard("aclGetRecentErrMsg", std::ptr::null(), || RECENT_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr())))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtGetSocName() -> *const c_char {
    query("aclrtGetSocName", std::ptr::null(), |st| Ok(st.soc.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtGetDeviceCount(count: *mut u32) -> aclError {
    call("aclrtGetDeviceCount", true, |_| {
        *out_ptr(count, "count")? = 1;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtSetDevice(deviceId: i32) -> aclError {
    call("aclrtSetDevice", true, |st| {
        check_device(deviceId)?;
        *st.devices.entry(deviceId).or_default() += 1;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtResetDevice(deviceId: i32) -> aclError {
    call("aclrtResetDevice", true, |st| {
        check_device(deviceId)?;
        match st.devices.get_mut(&deviceId) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(())
            }
            _ => fail(ACL_ERROR_INVALID_PARAM, format!("device {deviceId} is not set (aclrtSetDevice was not called, or already reset)")),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtCreateContext(context: *mut aclrtContext, deviceId: i32) -> aclError {
    call("aclrtCreateContext", true, |st| {
        let out = out_ptr(context, "context")?;
        check_device(deviceId)?;
        let h = st.handle();
        st.contexts.insert(h, deviceId);
        CURRENT_CONTEXT.with(|c| c.set(h));
        *out = h as aclrtContext;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtDestroyContext(context: aclrtContext) -> aclError {
    call("aclrtDestroyContext", true, |st| {
        let h = context as usize;
        if st.contexts.remove(&h).is_none() {
            return Err(st.bad_handle(h, "aclrtDestroyContext", "context"));
        }
        st.destroyed.insert(h);
        CURRENT_CONTEXT.with(|c| {
            if c.get() == h {
                c.set(0);
            }
        });
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtSetCurrentContext(context: aclrtContext) -> aclError {
    call("aclrtSetCurrentContext", true, |st| {
        let h = context as usize;
        if !st.contexts.contains_key(&h) {
            return Err(st.bad_handle(h, "aclrtSetCurrentContext", "context"));
        }
        CURRENT_CONTEXT.with(|c| c.set(h));
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtGetCurrentContext(context: *mut aclrtContext) -> aclError {
    call("aclrtGetCurrentContext", true, |st| {
        let out = out_ptr(context, "context")?;
        let h = CURRENT_CONTEXT.with(Cell::get);
        if h == 0 || !st.contexts.contains_key(&h) {
            return fail(ACL_ERROR_RT_CONTEXT_NULL, "this thread has no current context");
        }
        *out = h as aclrtContext;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtCreateStream(stream: *mut aclrtStream) -> aclError {
    call("aclrtCreateStream", true, |st| {
        let out = out_ptr(stream, "stream")?;
        let h = st.handle();
        st.streams.insert(h);
        *out = h as aclrtStream;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtDestroyStream(stream: aclrtStream) -> aclError {
    call("aclrtDestroyStream", true, |st| {
        let h = stream as usize;
        if !st.streams.remove(&h) {
            return Err(st.bad_handle(h, "aclrtDestroyStream", "stream"));
        }
        st.destroyed.insert(h);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtSynchronizeStream(stream: aclrtStream) -> aclError {
    call("aclrtSynchronizeStream", true, |st| {
        // Everything is synchronous here; null is the default stream.
        let h = stream as usize;
        if h != 0 && !st.streams.contains(&h) {
            return Err(st.bad_handle(h, "aclrtSynchronizeStream", "stream"));
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtGetRunMode(runMode: *mut c_int) -> aclError {
    call("aclrtGetRunMode", true, |_| {
        *out_ptr(runMode, "runMode")? = run_mode();
        Ok(())
    })
}

// ---- memory -----------------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtMalloc(devPtr: *mut *mut c_void, size: usize, _policy: c_int) -> aclError {
    call("aclrtMalloc", true, |st| {
        let out = out_ptr(devPtr, "devPtr")?;
        *out = st.malloc(size, true)? as *mut c_void;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtFree(devPtr: *mut c_void) -> aclError {
    call("aclrtFree", true, |st| st.free(devPtr as usize, true))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtMallocHost(hostPtr: *mut *mut c_void, size: usize) -> aclError {
    call("aclrtMallocHost", true, |st| {
        let out = out_ptr(hostPtr, "hostPtr")?;
        *out = st.malloc(size, false)? as *mut c_void;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtFreeHost(hostPtr: *mut c_void) -> aclError {
    call("aclrtFreeHost", true, |st| st.free(hostPtr as usize, false))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtMemcpy(dst: *mut c_void, destMax: usize, src: *const c_void, count: usize, kind: c_int) -> aclError {
    call("aclrtMemcpy", true, |st| {
        if count > destMax {
            return fail(ACL_ERROR_INVALID_PARAM, format!("count {count} is larger than destMax {destMax}"));
        }
        let name = memcpy_kind_name(kind);
        let (want_dst, want_src) = match kind {
            ACL_MEMCPY_HOST_TO_HOST => (Some(false), Some(false)),
            ACL_MEMCPY_HOST_TO_DEVICE => (Some(true), Some(false)),
            ACL_MEMCPY_DEVICE_TO_HOST => (Some(false), Some(true)),
            ACL_MEMCPY_DEVICE_TO_DEVICE => (Some(true), Some(true)),
            ACL_MEMCPY_DEFAULT => (None, None),
            _ => return fail(ACL_ERROR_INVALID_PARAM, format!("kind {kind} is not supported (expected 0..=4)")),
        };
        let dst_region = st.region("dst", dst as usize, destMax.max(count))?;
        let src_region = st.region("src", src as usize, count)?;
        // On RC boards (ACL_DEVICE) the application's own memory is device memory: samples
        // copy from malloc'd buffers with ACL_MEMCPY_DEVICE_TO_DEVICE. Only ranges are checked.
        let (want_dst, want_src) = if run_mode() == ACL_DEVICE { (None, None) } else { (want_dst, want_src) };
        let where_ = |r: Region| if r == Region::Device { "device memory (aclrtMalloc)" } else { "host memory" };
        for (what, region, want) in [("dst", dst_region, want_dst), ("src", src_region, want_src)] {
            if let Some(want_device) = want
                && (region == Region::Device) != want_device
            {
                return fail(
                    ACL_ERROR_INVALID_PARAM,
                    format!(
                        "{name}: {what} is {}, the kind needs {}",
                        where_(region),
                        if want_device { "device memory" } else { "host memory" }
                    ),
                );
            }
        }
        if count > 0 {
            // SAFETY: both ranges were checked against the tracked allocations (or belong to
            // the caller's host memory, whose validity is the caller's contract).
            unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, count) };
        }
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclrtMemset(devPtr: *mut c_void, maxCount: usize, value: i32, count: usize) -> aclError {
    call("aclrtMemset", true, |st| {
        if count > maxCount {
            return fail(ACL_ERROR_INVALID_PARAM, format!("count {count} is larger than maxCount {maxCount}"));
        }
        if st.region("devPtr", devPtr as usize, maxCount.max(count))? == Region::Host {
            return fail(ACL_ERROR_INVALID_PARAM, "devPtr is not memory from aclrtMalloc or aclrtMallocHost");
        }
        // SAFETY: inside a tracked allocation (checked above).
        unsafe { (devPtr as *mut u8).write_bytes(value as u8, count) };
        Ok(())
    })
}

// ---- models -----------------------------------------------------------------------------

fn load_model(st: &mut State, label: &Path, bytes: &[u8]) -> Result<u32, AclFail> {
    let model = LoadedModel::load(label, bytes)?;
    let soc = model.sim.soc_version.clone();
    if !soc.is_empty() {
        st.set_soc(&soc);
    }
    let id = st.model_id();
    st.models.insert(id, Arc::new(model));
    Ok(id)
}

fn read_model_file(path: &str) -> Result<Vec<u8>, AclFail> {
    std::fs::read(path)
        .map_err(|e| AclFail { code: ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, msg: format!("cannot read the model file {path}: {e}") })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlLoadFromFile(modelPath: *const c_char, modelId: *mut u32) -> aclError {
    call("aclmdlLoadFromFile", true, |st| {
        let path = c_str(modelPath, "modelPath")?;
        let out = out_ptr(modelId, "modelId")?;
        let bytes = read_model_file(path)?;
        *out = load_model(st, Path::new(path), &bytes)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlLoadFromMem(model: *const c_void, modelSize: usize, modelId: *mut u32) -> aclError {
    call("aclmdlLoadFromMem", true, |st| {
        if model.is_null() || modelSize == 0 {
            return fail(ACL_ERROR_INVALID_PARAM, "model is null or modelSize is 0");
        }
        let out = out_ptr(modelId, "modelId")?;
        // SAFETY: the caller passes modelSize readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(model as *const u8, modelSize) };
        *out = load_model(st, Path::new("<model in memory>"), bytes)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlUnload(modelId: u32) -> aclError {
    call("aclmdlUnload", true, |st| {
        st.model(modelId)?;
        st.models.remove(&modelId);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlQuerySize(fileName: *const c_char, workSize: *mut usize, weightSize: *mut usize) -> aclError {
    call("aclmdlQuerySize", true, |_| {
        let path = c_str(fileName, "fileName")?;
        let (work, weight) = (out_ptr(workSize, "workSize")?, out_ptr(weightSize, "weightSize")?);
        let bytes = read_model_file(path)?;
        let model = LoadedModel::load(Path::new(path), &bytes)?;
        let io = model.sim.inputs.iter().map(|i| i.desc.size_bytes).chain(model.sim.outputs.iter().map(|o| o.size_bytes));
        *work = io.sum();
        *weight = model.sim.onnx.len();
        Ok(())
    })
}

fn io_info(desc: &ascend_ptq::device::om::SimTensorDesc) -> IoInfo {
    IoInfo {
        name: CString::new(desc.name.replace('\0', " ")).unwrap_or_default(),
        dtype: acl_dtype(desc.dtype),
        format: acl_format(&desc.format),
        dims: desc.dims.clone(),
        size: desc.size_bytes,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlCreateDesc() -> *mut c_void {
    query("aclmdlCreateDesc", std::ptr::null_mut(), |st| {
        let h = st.handle();
        st.descs.insert(h, None);
        Ok(h as *mut c_void)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlDestroyDesc(modelDesc: *mut c_void) -> aclError {
    call("aclmdlDestroyDesc", true, |st| {
        let h = modelDesc as usize;
        if st.descs.remove(&h).is_none() {
            return Err(st.bad_handle(h, "aclmdlDestroyDesc", "aclmdlDesc"));
        }
        st.destroyed.insert(h);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetDesc(modelDesc: *mut c_void, modelId: u32) -> aclError {
    call("aclmdlGetDesc", true, |st| {
        let h = modelDesc as usize;
        if !st.descs.contains_key(&h) {
            return Err(st.bad_handle(h, "aclmdlGetDesc", "aclmdlDesc"));
        }
        let model = st.model(modelId)?;
        let info = DescInfo {
            inputs: model.sim.inputs.iter().map(|i| io_info(&i.desc)).collect(),
            outputs: model.sim.outputs.iter().map(io_info).collect(),
        };
        st.descs.insert(h, Some(Arc::new(info)));
        Ok(())
    })
}

/// The filled description behind a handle.
fn desc_info(st: &State, desc: *const c_void, what: &str) -> Result<Arc<DescInfo>, AclFail> {
    let h = desc as usize;
    match st.descs.get(&h) {
        Some(Some(info)) => Ok(Arc::clone(info)),
        Some(None) => fail(ACL_ERROR_INVALID_PARAM, format!("{what}: the aclmdlDesc was not filled by aclmdlGetDesc")),
        None => Err(st.bad_handle(h, what, "aclmdlDesc")),
    }
}

/// Input (`output == false`) or output `index` of a description.
fn io_at<T>(desc: *const c_void, index: usize, output: bool, what: &'static str, f: impl FnOnce(&IoInfo) -> T) -> Result<T, AclFail> {
    let st = state();
    let info = desc_info(&st, desc, what)?;
    let list = if output { &info.outputs } else { &info.inputs };
    match list.get(index) {
        Some(io) => Ok(f(io)),
        None => fail(
            ACL_ERROR_INVALID_PARAM,
            format!("{what}: index {index} is out of range (the model has {} {})", list.len(), if output { "outputs" } else { "inputs" }),
        ),
    }
}

fn io_query<T: Copy>(symbol: &'static str, default: T, f: impl FnOnce() -> Result<T, AclFail>) -> T {
    guard(symbol, default, || {
        let init = state().require_init();
        match init.and_then(|()| f()) {
            Ok(v) => v,
            Err(e) => {
                set_error(format!("{symbol}: {}", e.msg));
                default
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetNumInputs(modelDesc: *mut c_void) -> usize {
    query("aclmdlGetNumInputs", 0, |st| Ok(desc_info(st, modelDesc, "aclmdlGetNumInputs")?.inputs.len()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetNumOutputs(modelDesc: *mut c_void) -> usize {
    query("aclmdlGetNumOutputs", 0, |st| Ok(desc_info(st, modelDesc, "aclmdlGetNumOutputs")?.outputs.len()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputSizeByIndex(modelDesc: *mut c_void, index: usize) -> usize {
    io_query("aclmdlGetInputSizeByIndex", 0, || io_at(modelDesc, index, false, "aclmdlGetInputSizeByIndex", |io| io.size))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetOutputSizeByIndex(modelDesc: *mut c_void, index: usize) -> usize {
    io_query("aclmdlGetOutputSizeByIndex", 0, || io_at(modelDesc, index, true, "aclmdlGetOutputSizeByIndex", |io| io.size))
}

fn fill_dims(io: &IoInfo, out: &mut aclmdlIODims) {
    out.name = [0; ACL_MAX_TENSOR_NAME_LEN];
    let name = io.name.as_bytes();
    for (d, &b) in out.name.iter_mut().zip(name.iter().take(ACL_MAX_TENSOR_NAME_LEN - 1)) {
        *d = b as c_char;
    }
    out.dimCount = io.dims.len().min(ACL_MAX_DIM_CNT);
    out.dims = [0; ACL_MAX_DIM_CNT];
    out.dims[..out.dimCount].copy_from_slice(&io.dims[..out.dimCount]);
}

fn get_dims(symbol: &'static str, desc: *const c_void, index: usize, dims: *mut aclmdlIODims, output: bool) -> aclError {
    guard(symbol, ACL_ERROR_INTERNAL_ERROR, || {
        if let Some(code) = injected(symbol) {
            set_error(format!("{symbol}: failure injected by ASCEND_PTQ_SIM_FAIL (code {code})"));
            return code;
        }
        let init = state().require_init();
        let result = init.and_then(|()| {
            let out = out_ptr(dims, "dims")?;
            io_at(desc, index, output, symbol, |io| fill_dims(io, out))
        });
        match result {
            Ok(()) => ACL_SUCCESS,
            Err(e) => {
                set_error(format!("{symbol}: {}", e.msg));
                e.code
            }
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputDims(modelDesc: *const c_void, index: usize, dims: *mut aclmdlIODims) -> aclError {
    get_dims("aclmdlGetInputDims", modelDesc, index, dims, false)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetOutputDims(modelDesc: *const c_void, index: usize, dims: *mut aclmdlIODims) -> aclError {
    get_dims("aclmdlGetOutputDims", modelDesc, index, dims, true)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputDataType(modelDesc: *const c_void, index: usize) -> c_int {
    io_query("aclmdlGetInputDataType", ACL_DT_UNDEFINED, || io_at(modelDesc, index, false, "aclmdlGetInputDataType", |io| io.dtype))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetOutputDataType(modelDesc: *const c_void, index: usize) -> c_int {
    io_query("aclmdlGetOutputDataType", ACL_DT_UNDEFINED, || io_at(modelDesc, index, true, "aclmdlGetOutputDataType", |io| io.dtype))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputFormat(modelDesc: *const c_void, index: usize) -> c_int {
    io_query("aclmdlGetInputFormat", ACL_FORMAT_UNDEFINED, || io_at(modelDesc, index, false, "aclmdlGetInputFormat", |io| io.format))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetOutputFormat(modelDesc: *const c_void, index: usize) -> c_int {
    io_query("aclmdlGetOutputFormat", ACL_FORMAT_UNDEFINED, || io_at(modelDesc, index, true, "aclmdlGetOutputFormat", |io| io.format))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputNameByIndex(modelDesc: *const c_void, index: usize) -> *const c_char {
    // The name lives as long as the description (DescInfo is kept in the state until
    // aclmdlDestroyDesc or the next aclmdlGetDesc on it).
    io_query("aclmdlGetInputNameByIndex", std::ptr::null(), || {
        io_at(modelDesc, index, false, "aclmdlGetInputNameByIndex", |io| io.name.as_ptr())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetOutputNameByIndex(modelDesc: *const c_void, index: usize) -> *const c_char {
    io_query("aclmdlGetOutputNameByIndex", std::ptr::null(), || {
        io_at(modelDesc, index, true, "aclmdlGetOutputNameByIndex", |io| io.name.as_ptr())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetInputIndexByName(modelDesc: *const c_void, name: *const c_char, index: *mut usize) -> aclError {
    call("aclmdlGetInputIndexByName", true, |st| {
        let info = desc_info(st, modelDesc, "aclmdlGetInputIndexByName")?;
        let name = c_str(name, "name")?;
        let out = out_ptr(index, "index")?;
        match info.inputs.iter().position(|io| io.name.to_bytes() == name.as_bytes()) {
            Some(i) => {
                *out = i;
                Ok(())
            }
            None => fail(ACL_ERROR_INVALID_PARAM, format!("the model has no input named '{name}'")),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetAippType(
    modelId: u32,
    index: usize,
    r#type: *mut c_int,
    dynamicAttachedDataIndex: *mut usize,
) -> aclError {
    call("aclmdlGetAippType", true, |st| {
        let model = st.model(modelId)?;
        let (ty, attached) = (out_ptr(r#type, "type")?, out_ptr(dynamicAttachedDataIndex, "dynamicAttachedDataIndex")?);
        let Some(input) = model.sim.inputs.get(index) else {
            return fail(
                ACL_ERROR_INVALID_PARAM,
                format!("index {index} is out of range (the model has {} inputs)", model.sim.inputs.len()),
            );
        };
        *ty = if input.static_aipp { ACL_DATA_WITH_STATIC_AIPP } else { ACL_DATA_WITHOUT_AIPP };
        *attached = ACL_INVALID_NODE_INDEX;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclDataTypeSize(dataType: c_int) -> usize {
    guard("aclDataTypeSize", 0, || acl_dtype_size(dataType))
}

// ---- data buffers and datasets ----------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclCreateDataBuffer(data: *mut c_void, size: usize) -> *mut c_void {
    query("aclCreateDataBuffer", std::ptr::null_mut(), |st| {
        let h = st.handle();
        st.data_buffers.insert(h, DataBuffer { data: data as usize, size });
        Ok(h as *mut c_void)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclDestroyDataBuffer(dataBuffer: *const c_void) -> aclError {
    call("aclDestroyDataBuffer", true, |st| {
        let h = dataBuffer as usize;
        if st.data_buffers.remove(&h).is_none() {
            return Err(st.bad_handle(h, "aclDestroyDataBuffer", "aclDataBuffer"));
        }
        st.destroyed.insert(h);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclGetDataBufferAddr(dataBuffer: *const c_void) -> *mut c_void {
    query("aclGetDataBufferAddr", std::ptr::null_mut(), |st| {
        Ok(st.data_buffer(dataBuffer as usize, "aclGetDataBufferAddr")?.data as *mut c_void)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclGetDataBufferSizeV2(dataBuffer: *const c_void) -> usize {
    query("aclGetDataBufferSizeV2", 0, |st| Ok(st.data_buffer(dataBuffer as usize, "aclGetDataBufferSizeV2")?.size))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlCreateDataset() -> *mut c_void {
    query("aclmdlCreateDataset", std::ptr::null_mut(), |st| {
        let h = st.handle();
        st.datasets.insert(h, Vec::new());
        Ok(h as *mut c_void)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlDestroyDataset(dataset: *const c_void) -> aclError {
    // Like ACL, destroying a dataset does not destroy its data buffers.
    call("aclmdlDestroyDataset", true, |st| {
        let h = dataset as usize;
        if st.datasets.remove(&h).is_none() {
            return Err(st.bad_handle(h, "aclmdlDestroyDataset", "aclmdlDataset"));
        }
        st.destroyed.insert(h);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlAddDatasetBuffer(dataset: *mut c_void, dataBuffer: *mut c_void) -> aclError {
    call("aclmdlAddDatasetBuffer", true, |st| {
        let (ds, buf) = (dataset as usize, dataBuffer as usize);
        st.data_buffer(buf, "aclmdlAddDatasetBuffer")?;
        match st.datasets.get_mut(&ds) {
            Some(list) => {
                list.push(buf);
                Ok(())
            }
            None => Err(st.bad_handle(ds, "aclmdlAddDatasetBuffer", "aclmdlDataset")),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetDatasetBuffer(dataset: *const c_void, index: usize) -> *mut c_void {
    query("aclmdlGetDatasetBuffer", std::ptr::null_mut(), |st| {
        let ds = dataset as usize;
        let list = st.datasets.get(&ds).ok_or_else(|| st.bad_handle(ds, "aclmdlGetDatasetBuffer", "aclmdlDataset"))?;
        match list.get(index) {
            Some(&b) => Ok(b as *mut c_void),
            None => fail(ACL_ERROR_INVALID_PARAM, format!("index {index} is out of range (the dataset has {} buffers)", list.len())),
        }
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlGetDatasetNumBuffers(dataset: *const c_void) -> usize {
    query("aclmdlGetDatasetNumBuffers", 0, |st| {
        let ds = dataset as usize;
        Ok(st.datasets.get(&ds).ok_or_else(|| st.bad_handle(ds, "aclmdlGetDatasetNumBuffers", "aclmdlDataset"))?.len())
    })
}

// ---- execution --------------------------------------------------------------------------

/// The (address, size) of every buffer of a dataset, checked to be live device memory.
fn dataset_buffers(st: &State, dataset: usize, role: &str) -> Result<Vec<(usize, usize)>, AclFail> {
    let list = st.datasets.get(&dataset).ok_or_else(|| st.bad_handle(dataset, &format!("the {role} dataset"), "aclmdlDataset"))?;
    let mut out = Vec::new();
    for (i, &h) in list.iter().enumerate() {
        let what = format!("{role} buffer {i}");
        let buf = st.data_buffer(h, &what)?;
        if st.region(&what, buf.data, buf.size)? != Region::Device {
            return fail(ACL_ERROR_INVALID_PARAM, format!("{what} at {:#x} is not device memory from aclrtMalloc", buf.data));
        }
        out.push((buf.data, buf.size));
    }
    Ok(out)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclmdlExecute(modelId: u32, input: *const c_void, output: *mut c_void) -> aclError {
    call("aclmdlExecute", true, |st| {
        let model = st.model(modelId)?;
        let sim = &model.sim;
        let ins = dataset_buffers(st, input as usize, "input")?;
        let outs = dataset_buffers(st, output as usize, "output")?;
        if ins.len() != sim.inputs.len() {
            return fail(
                ACL_ERROR_MODEL_INPUT_NOT_MATCH,
                format!("the input dataset has {} buffers, the model has {} inputs", ins.len(), sim.inputs.len()),
            );
        }
        for (i, (input, &(_, size))) in sim.inputs.iter().zip(&ins).enumerate() {
            if size != input.desc.size_bytes {
                return fail(
                    ACL_ERROR_MODEL_INPUT_NOT_MATCH,
                    format!(
                        "input {i} '{}': the buffer has {size} bytes, the model needs exactly {}",
                        input.desc.name, input.desc.size_bytes
                    ),
                );
            }
        }
        if outs.len() != sim.outputs.len() {
            return fail(
                ACL_ERROR_MODEL_OUTPUT_NOT_MATCH,
                format!("the output dataset has {} buffers, the model has {} outputs", outs.len(), sim.outputs.len()),
            );
        }
        for (k, (desc, &(_, size))) in sim.outputs.iter().zip(&outs).enumerate() {
            if size < desc.size_bytes {
                return fail(
                    ACL_ERROR_MODEL_OUTPUT_NOT_MATCH,
                    format!("output {k} '{}': the buffer has {size} bytes, the model writes {}", desc.name, desc.size_bytes),
                );
            }
        }
        // SAFETY: each range lies inside a live tracked device allocation (checked above).
        let data: Vec<Vec<u8>> =
            ins.iter().map(|&(addr, size)| unsafe { std::slice::from_raw_parts(addr as *const u8, size) }.to_vec()).collect();
        let results = model.execute(&data)?;
        for (bytes, &(addr, _)) in results.iter().zip(&outs) {
            // SAFETY: as above; the buffer is at least as large as the output.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
        }
        Ok(())
    })
}

// ---- simulator extras -------------------------------------------------------------------

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclsimGetLiveCounts(out: *mut aclsimLiveCounts) -> c_int {
    guard("aclsimGetLiveCounts", ACL_ERROR_INTERNAL_ERROR, || {
        // SAFETY: null-checked; the caller passes a valid struct.
        let Some(out) = (unsafe { out.as_mut() }) else { return ACL_ERROR_INVALID_PARAM };
        let st = state();
        *out = aclsimLiveCounts {
            device_buffers: st.device_mem.len(),
            host_buffers: st.host_mem.len(),
            data_buffers: st.data_buffers.len(),
            datasets: st.datasets.len(),
            model_descs: st.descs.len(),
            models: st.models.len(),
            contexts: st.contexts.len(),
            streams: st.streams.len(),
            devices_set: st.devices.values().sum(),
        };
        ACL_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aclsimIdentity() -> *const c_char {
    static IDENTITY: OnceLock<CString> = OnceLock::new();
    guard("aclsimIdentity", std::ptr::null(), || {
        IDENTITY.get_or_init(|| CString::new(format!("ascend-ptq ACL simulator {}", ascend_ptq::VERSION)).unwrap_or_default()).as_ptr()
    })
}

//! Layer 2 over the generated `sys` bindings: every ACL call returns `Result<T, AclError>`, where the
//! error carries the call, the numeric code, its name (docs/ascend-formats.md §11.2) and `aclGetRecentErrMsg()` when the
//! library has it. Calls taking raw ACL handles are `unsafe`: the caller guarantees the handle is
//! live and belongs to this library (the `safe` layer does).

// Each `unsafe fn` here is a one-call wrapper whose whole body is covered by its safety contract.
#![allow(unsafe_op_in_unsafe_fn)]

use std::ffi::{CStr, c_char, c_void};
use std::fmt;
use std::path::{Path, PathBuf};

use super::sys;

/// A failed ACL call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    pub call: &'static str,
    /// The returned `aclError`, or [`NULL_RETURNED`] for calls that report failure by returning NULL.
    pub code: i32,
    /// The code's name from formats §11.2 (`ACL_ERROR_INVALID_FILE`, ...), "UNKNOWN" otherwise.
    pub name: &'static str,
    /// `aclGetRecentErrMsg()` right after the failure, when the library exports it and has a message.
    pub recent: Option<String>,
}

/// `code` of an [`AclError`] for calls that return a pointer and returned NULL (no code exists).
pub const NULL_RETURNED: i32 = -1;

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code == NULL_RETURNED {
            write!(f, "{} failed: returned NULL", self.call)?;
        } else {
            write!(f, "{} failed: {} {}", self.call, self.code, self.name)?;
        }
        match &self.recent {
            Some(msg) => write!(f, " ({msg})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for AclError {}

/// The name of an `aclError` code (formats §11.2), "UNKNOWN" for codes it does not list.
pub fn error_name(code: i32) -> &'static str {
    match code {
        0 => "ACL_SUCCESS",
        NULL_RETURNED => "NULL_RETURNED",
        100000 => "ACL_ERROR_INVALID_PARAM",
        100001 => "ACL_ERROR_UNINITIALIZE",
        100002 => "ACL_ERROR_REPEAT_INITIALIZE",
        100003 => "ACL_ERROR_INVALID_FILE",
        100006 => "ACL_ERROR_PARSE_FILE",
        100011 => "ACL_ERROR_INVALID_MODEL_ID",
        100012 => "ACL_ERROR_DESERIALIZE_MODEL",
        100013 => "ACL_ERROR_PARSE_MODEL",
        100014 => "ACL_ERROR_READ_MODEL_FAILURE",
        100015 => "ACL_ERROR_MODEL_SIZE_INVALID",
        100017 => "ACL_ERROR_MODEL_INPUT_NOT_MATCH",
        100018 => "ACL_ERROR_MODEL_OUTPUT_NOT_MATCH",
        100026 => "ACL_ERROR_UNSUPPORTED_DATA_TYPE",
        100037 => "ACL_ERROR_REPEAT_FINALIZE",
        100038 => "ACL_ERROR_NOT_STATIC_AIPP",
        200000 => "ACL_ERROR_BAD_ALLOC",
        200001 => "ACL_ERROR_API_NOT_SUPPORT",
        200002 => "ACL_ERROR_INVALID_DEVICE",
        500000 => "ACL_ERROR_INTERNAL_ERROR",
        500001 => "ACL_ERROR_FAILURE",
        500002 => "ACL_ERROR_GE_FAILURE",
        500003 => "ACL_ERROR_RT_FAILURE",
        500004 => "ACL_ERROR_DRV_FAILURE",
        107000 => "ACL_ERROR_RT_PARAM_INVALID",
        107001 => "ACL_ERROR_RT_INVALID_DEVICEID",
        107002 => "ACL_ERROR_RT_CONTEXT_NULL",
        207000 => "ACL_ERROR_RT_FEATURE_NOT_SUPPORT",
        207001 => "ACL_ERROR_RT_MEMORY_ALLOCATION",
        207004 => "ACL_ERROR_RT_NO_DEVICE",
        507000 => "ACL_ERROR_RT_INTERNAL_ERROR",
        507008 => "ACL_ERROR_RT_SOC_VERSION",
        145000 => "ACL_ERROR_GE_PARAM_INVALID",
        145002 => "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID",
        145003 => "ACL_ERROR_GE_EXEC_MODEL_ID_INVALID",
        145006 => "ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID",
        145015 => "ACL_ERROR_GE_AIPP_NOT_EXIST",
        245000 => "ACL_ERROR_GE_MEMORY_ALLOCATION",
        _ => "UNKNOWN",
    }
}

pub type Result<T, E = AclError> = std::result::Result<T, E>;

/// An opened AscendCL library whose required symbols are all present (checked by `discover`).
pub struct Api {
    sys: sys::AclLib,
    file: PathBuf,
    simulator: Option<String>,
}

/// Copies a C string owned by the library; NULL → None.
pub(super) unsafe fn owned(ptr: *const c_char) -> Option<String> {
    (!ptr.is_null()).then(|| CStr::from_ptr(ptr).to_string_lossy().into_owned())
}

impl Api {
    /// Wraps bindings whose required symbols the caller has checked (every required `sys` method
    /// panics when its symbol is missing).
    pub(super) fn new(sys: sys::AclLib, file: PathBuf, simulator: Option<String>) -> Api {
        Api { sys, file, simulator }
    }

    /// `aclsimIdentity()` of the ascend-ptq ACL simulator (`"ascend-ptq ACL simulator <version>"`);
    /// None for a real AscendCL library. Reports name the device from this, never guess.
    pub fn simulator_identity(&self) -> Option<&str> {
        self.simulator.as_deref()
    }

    /// The library file (or the loader name) this API was opened from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The generated bindings, for calls this layer does not wrap.
    pub fn sys(&self) -> &sys::AclLib {
        &self.sys
    }

    fn error(&self, call: &'static str, code: i32) -> AclError {
        AclError { call, code, name: error_name(code), recent: self.recent_error() }
    }

    fn check(&self, call: &'static str, code: sys::aclError) -> Result<()> {
        if code == sys::ACL_SUCCESS { Ok(()) } else { Err(self.error(call, code)) }
    }

    fn non_null<T>(&self, call: &'static str, ptr: *mut T) -> Result<*mut T> {
        if ptr.is_null() { Err(self.error(call, NULL_RETURNED)) } else { Ok(ptr) }
    }

    /// `aclGetRecentErrMsg()` (optional symbol): None when absent, NULL or empty.
    pub fn recent_error(&self) -> Option<String> {
        let f = self.sys.aclGetRecentErrMsg.as_ref().ok()?;
        let msg = unsafe { owned(f()) }?;
        let msg = msg.trim();
        (!msg.is_empty()).then(|| msg.to_string())
    }

    /// `aclrtGetSocName()` (optional symbol): None when absent or NULL.
    pub fn soc_name(&self) -> Option<String> {
        let f = self.sys.aclrtGetSocName.as_ref().ok()?;
        unsafe { owned(f()) }
    }

    pub fn init(&self, config_path: Option<&CStr>) -> Result<()> {
        let code = unsafe { self.sys.aclInit(config_path.map_or(std::ptr::null(), CStr::as_ptr)) };
        self.check("aclInit", code)
    }

    pub fn finalize(&self) -> Result<()> {
        self.check("aclFinalize", unsafe { self.sys.aclFinalize() })
    }

    pub fn version(&self) -> Result<(i32, i32, i32)> {
        let (mut major, mut minor, mut patch) = (0, 0, 0);
        self.check("aclrtGetVersion", unsafe { self.sys.aclrtGetVersion(&mut major, &mut minor, &mut patch) })?;
        Ok((major, minor, patch))
    }

    pub fn device_count(&self) -> Result<u32> {
        let mut count = 0;
        self.check("aclrtGetDeviceCount", unsafe { self.sys.aclrtGetDeviceCount(&mut count) })?;
        Ok(count)
    }

    pub fn set_device(&self, device: i32) -> Result<()> {
        self.check("aclrtSetDevice", unsafe { self.sys.aclrtSetDevice(device) })
    }

    pub fn reset_device(&self, device: i32) -> Result<()> {
        self.check("aclrtResetDevice", unsafe { self.sys.aclrtResetDevice(device) })
    }

    pub fn create_context(&self, device: i32) -> Result<sys::aclrtContext> {
        let mut ctx = std::ptr::null_mut();
        self.check("aclrtCreateContext", unsafe { self.sys.aclrtCreateContext(&mut ctx, device) })?;
        self.non_null("aclrtCreateContext", ctx)
    }

    /// # Safety
    /// `ctx` is a live context of this library, not used afterwards.
    pub unsafe fn destroy_context(&self, ctx: sys::aclrtContext) -> Result<()> {
        self.check("aclrtDestroyContext", self.sys.aclrtDestroyContext(ctx))
    }

    /// # Safety
    /// `ctx` is a live context of this library.
    pub unsafe fn set_current_context(&self, ctx: sys::aclrtContext) -> Result<()> {
        self.check("aclrtSetCurrentContext", self.sys.aclrtSetCurrentContext(ctx))
    }

    pub fn current_context(&self) -> Result<sys::aclrtContext> {
        let mut ctx = std::ptr::null_mut();
        self.check("aclrtGetCurrentContext", unsafe { self.sys.aclrtGetCurrentContext(&mut ctx) })?;
        Ok(ctx)
    }

    pub fn create_stream(&self) -> Result<sys::aclrtStream> {
        let mut stream = std::ptr::null_mut();
        self.check("aclrtCreateStream", unsafe { self.sys.aclrtCreateStream(&mut stream) })?;
        self.non_null("aclrtCreateStream", stream)
    }

    /// # Safety
    /// `stream` is a live stream of this library, not used afterwards.
    pub unsafe fn destroy_stream(&self, stream: sys::aclrtStream) -> Result<()> {
        self.check("aclrtDestroyStream", self.sys.aclrtDestroyStream(stream))
    }

    /// # Safety
    /// `stream` is a live stream of this library.
    pub unsafe fn synchronize_stream(&self, stream: sys::aclrtStream) -> Result<()> {
        self.check("aclrtSynchronizeStream", self.sys.aclrtSynchronizeStream(stream))
    }

    pub fn run_mode(&self) -> Result<sys::aclrtRunMode> {
        let mut mode = sys::ACL_HOST;
        self.check("aclrtGetRunMode", unsafe { self.sys.aclrtGetRunMode(&mut mode) })?;
        Ok(mode)
    }

    pub fn malloc(&self, size: usize, policy: sys::aclrtMemMallocPolicy) -> Result<*mut c_void> {
        let mut ptr = std::ptr::null_mut();
        self.check("aclrtMalloc", unsafe { self.sys.aclrtMalloc(&mut ptr, size, policy) })?;
        self.non_null("aclrtMalloc", ptr)
    }

    /// # Safety
    /// `ptr` came from [`Api::malloc`] and is not used afterwards.
    pub unsafe fn free(&self, ptr: *mut c_void) -> Result<()> {
        self.check("aclrtFree", self.sys.aclrtFree(ptr))
    }

    pub fn malloc_host(&self, size: usize) -> Result<*mut c_void> {
        let mut ptr = std::ptr::null_mut();
        self.check("aclrtMallocHost", unsafe { self.sys.aclrtMallocHost(&mut ptr, size) })?;
        self.non_null("aclrtMallocHost", ptr)
    }

    /// # Safety
    /// `ptr` came from [`Api::malloc_host`] and is not used afterwards.
    pub unsafe fn free_host(&self, ptr: *mut c_void) -> Result<()> {
        self.check("aclrtFreeHost", self.sys.aclrtFreeHost(ptr))
    }

    /// Synchronous copy.
    /// # Safety
    /// `dst` holds `dst_max` bytes and `src` `count` bytes of the memory kinds `kind` names.
    pub unsafe fn memcpy(
        &self,
        dst: *mut c_void,
        dst_max: usize,
        src: *const c_void,
        count: usize,
        kind: sys::aclrtMemcpyKind,
    ) -> Result<()> {
        self.check("aclrtMemcpy", self.sys.aclrtMemcpy(dst, dst_max, src, count, kind))
    }

    /// # Safety
    /// `ptr` is device memory of at least `max` bytes.
    pub unsafe fn memset(&self, ptr: *mut c_void, max: usize, value: i32, count: usize) -> Result<()> {
        self.check("aclrtMemset", self.sys.aclrtMemset(ptr, max, value, count))
    }

    pub fn load_from_file(&self, path: &CStr) -> Result<u32> {
        let mut id = 0;
        self.check("aclmdlLoadFromFile", unsafe { self.sys.aclmdlLoadFromFile(path.as_ptr(), &mut id) })?;
        Ok(id)
    }

    pub fn load_from_mem(&self, model: &[u8]) -> Result<u32> {
        let mut id = 0;
        self.check("aclmdlLoadFromMem", unsafe { self.sys.aclmdlLoadFromMem(model.as_ptr().cast(), model.len(), &mut id) })?;
        Ok(id)
    }

    pub fn unload(&self, model_id: u32) -> Result<()> {
        self.check("aclmdlUnload", unsafe { self.sys.aclmdlUnload(model_id) })
    }

    /// (work size, weight size) in bytes of the model file.
    pub fn query_size(&self, path: &CStr) -> Result<(usize, usize)> {
        let (mut work, mut weight) = (0, 0);
        self.check("aclmdlQuerySize", unsafe { self.sys.aclmdlQuerySize(path.as_ptr(), &mut work, &mut weight) })?;
        Ok((work, weight))
    }

    /// Synchronous execution.
    /// # Safety
    /// `input`/`output` are live datasets of this library whose buffers are live device memory.
    pub unsafe fn execute(&self, model_id: u32, input: *const sys::aclmdlDataset, output: *mut sys::aclmdlDataset) -> Result<()> {
        self.check("aclmdlExecute", self.sys.aclmdlExecute(model_id, input, output))
    }

    pub fn create_desc(&self) -> Result<*mut sys::aclmdlDesc> {
        self.non_null("aclmdlCreateDesc", unsafe { self.sys.aclmdlCreateDesc() })
    }

    /// # Safety
    /// `desc` came from [`Api::create_desc`] and is not used afterwards.
    pub unsafe fn destroy_desc(&self, desc: *mut sys::aclmdlDesc) -> Result<()> {
        self.check("aclmdlDestroyDesc", self.sys.aclmdlDestroyDesc(desc))
    }

    /// # Safety
    /// `desc` is a live description of this library.
    pub unsafe fn get_desc(&self, desc: *mut sys::aclmdlDesc, model_id: u32) -> Result<()> {
        self.check("aclmdlGetDesc", self.sys.aclmdlGetDesc(desc, model_id))
    }

    /// # Safety
    /// `desc` is a live description filled by [`Api::get_desc`].
    pub unsafe fn num_inputs(&self, desc: *mut sys::aclmdlDesc) -> usize {
        self.sys.aclmdlGetNumInputs(desc)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn num_outputs(&self, desc: *mut sys::aclmdlDesc) -> usize {
        self.sys.aclmdlGetNumOutputs(desc)
    }

    /// Bytes of input `index` (the maximum for dynamic models).
    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_size(&self, desc: *mut sys::aclmdlDesc, index: usize) -> usize {
        self.sys.aclmdlGetInputSizeByIndex(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn output_size(&self, desc: *mut sys::aclmdlDesc, index: usize) -> usize {
        self.sys.aclmdlGetOutputSizeByIndex(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_dims(&self, desc: *const sys::aclmdlDesc, index: usize) -> Result<sys::aclmdlIODims> {
        let mut dims: sys::aclmdlIODims = std::mem::zeroed();
        self.check("aclmdlGetInputDims", self.sys.aclmdlGetInputDims(desc, index, &mut dims))?;
        Ok(dims)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn output_dims(&self, desc: *const sys::aclmdlDesc, index: usize) -> Result<sys::aclmdlIODims> {
        let mut dims: sys::aclmdlIODims = std::mem::zeroed();
        self.check("aclmdlGetOutputDims", self.sys.aclmdlGetOutputDims(desc, index, &mut dims))?;
        Ok(dims)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_data_type(&self, desc: *const sys::aclmdlDesc, index: usize) -> sys::aclDataType {
        self.sys.aclmdlGetInputDataType(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn output_data_type(&self, desc: *const sys::aclmdlDesc, index: usize) -> sys::aclDataType {
        self.sys.aclmdlGetOutputDataType(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_format(&self, desc: *const sys::aclmdlDesc, index: usize) -> sys::aclFormat {
        self.sys.aclmdlGetInputFormat(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn output_format(&self, desc: *const sys::aclmdlDesc, index: usize) -> sys::aclFormat {
        self.sys.aclmdlGetOutputFormat(desc, index)
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_name(&self, desc: *const sys::aclmdlDesc, index: usize) -> Result<String> {
        owned(self.sys.aclmdlGetInputNameByIndex(desc, index)).ok_or_else(|| self.error("aclmdlGetInputNameByIndex", NULL_RETURNED))
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn output_name(&self, desc: *const sys::aclmdlDesc, index: usize) -> Result<String> {
        owned(self.sys.aclmdlGetOutputNameByIndex(desc, index)).ok_or_else(|| self.error("aclmdlGetOutputNameByIndex", NULL_RETURNED))
    }

    /// # Safety
    /// As [`Api::num_inputs`].
    pub unsafe fn input_index_by_name(&self, desc: *const sys::aclmdlDesc, name: &CStr) -> Result<usize> {
        let mut index = 0;
        self.check("aclmdlGetInputIndexByName", self.sys.aclmdlGetInputIndexByName(desc, name.as_ptr(), &mut index))?;
        Ok(index)
    }

    /// (AIPP type, dynamic attached data index) of input `index`.
    pub fn aipp_type(&self, model_id: u32, index: usize) -> Result<(sys::aclmdlInputAippType, usize)> {
        let (mut kind, mut attached) = (sys::ACL_DATA_WITHOUT_AIPP, 0);
        self.check("aclmdlGetAippType", unsafe { self.sys.aclmdlGetAippType(model_id, index, &mut kind, &mut attached) })?;
        Ok((kind, attached))
    }

    pub fn create_dataset(&self) -> Result<*mut sys::aclmdlDataset> {
        self.non_null("aclmdlCreateDataset", unsafe { self.sys.aclmdlCreateDataset() })
    }

    /// Destroys the dataset only, not its data buffers.
    /// # Safety
    /// `dataset` came from [`Api::create_dataset`] and is not used afterwards.
    pub unsafe fn destroy_dataset(&self, dataset: *const sys::aclmdlDataset) -> Result<()> {
        self.check("aclmdlDestroyDataset", self.sys.aclmdlDestroyDataset(dataset))
    }

    /// # Safety
    /// Both are live objects of this library; the buffer outlives the dataset's use.
    pub unsafe fn add_dataset_buffer(&self, dataset: *mut sys::aclmdlDataset, buffer: *mut sys::aclDataBuffer) -> Result<()> {
        self.check("aclmdlAddDatasetBuffer", self.sys.aclmdlAddDatasetBuffer(dataset, buffer))
    }

    /// # Safety
    /// `dataset` is live.
    pub unsafe fn dataset_buffer(&self, dataset: *const sys::aclmdlDataset, index: usize) -> Result<*mut sys::aclDataBuffer> {
        self.non_null("aclmdlGetDatasetBuffer", self.sys.aclmdlGetDatasetBuffer(dataset, index))
    }

    /// # Safety
    /// `dataset` is live.
    pub unsafe fn dataset_num_buffers(&self, dataset: *const sys::aclmdlDataset) -> usize {
        self.sys.aclmdlGetDatasetNumBuffers(dataset)
    }

    /// # Safety
    /// `data` is device memory of `size` bytes that outlives the data buffer.
    pub unsafe fn create_data_buffer(&self, data: *mut c_void, size: usize) -> Result<*mut sys::aclDataBuffer> {
        self.non_null("aclCreateDataBuffer", self.sys.aclCreateDataBuffer(data, size))
    }

    /// # Safety
    /// `buffer` came from [`Api::create_data_buffer`] and is not used afterwards.
    pub unsafe fn destroy_data_buffer(&self, buffer: *const sys::aclDataBuffer) -> Result<()> {
        self.check("aclDestroyDataBuffer", self.sys.aclDestroyDataBuffer(buffer))
    }

    /// # Safety
    /// `buffer` is live.
    pub unsafe fn data_buffer_addr(&self, buffer: *const sys::aclDataBuffer) -> *mut c_void {
        self.sys.aclGetDataBufferAddr(buffer)
    }

    /// # Safety
    /// `buffer` is live.
    pub unsafe fn data_buffer_size(&self, buffer: *const sys::aclDataBuffer) -> usize {
        self.sys.aclGetDataBufferSizeV2(buffer)
    }

    /// Bytes per element, 0 for types without a fixed size.
    pub fn data_type_size(&self, dtype: sys::aclDataType) -> usize {
        unsafe { self.sys.aclDataTypeSize(dtype) }
    }
}

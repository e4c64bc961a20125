//! Layer 3: RAII handles over AscendCL, in the style of cudarc's `safe` module.
//!
//! Ownership runs one way: [`Model`], [`Dataset`], [`DeviceBuffer`] and [`Stream`] keep their
//! [`Context`] alive, a context keeps its [`Device`] (`aclrtSetDevice`/`aclrtResetDevice`) alive,
//! and a device keeps the process-wide [`Acl`] runtime alive. Each handle frees itself on drop,
//! children before parents; every call first makes the owning context current on the calling
//! thread, so handles may move between threads.
//!
//! `aclInit` runs once per library per process, on the first [`Acl::open`]. ACL refuses a second
//! `aclInit` after `aclFinalize` in one process (REPEAT_INITIALIZE / REPEAT_FINALIZE on real CANN),
//! so the runtime is never finalised when handles drop: it stays initialised for the process
//! lifetime and `aclFinalize` runs from an `atexit` hook. When someone else (a host application)
//! already called `aclInit`, ACL answers REPEAT_INITIALIZE: the runtime is then used as is and
//! not finalised by us.
//!
//! Releases that fail in `Drop` are recorded in the [`Acl`]'s teardown log and returned by the
//! next fallible call, or drained with [`Acl::take_teardown_errors`] (see `teardown`).

use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::discover::LibrarySearch;
use super::error::Error;
use super::result::{AclError, Api};
use super::sys;
use super::teardown::TeardownLog;

type Result<T, E = Error> = std::result::Result<T, E>;

/// One opened and initialised AscendCL library. Cheap to clone; clones and every handle made
/// from them share one teardown log (each [`Acl::open`] starts a new one).
#[derive(Clone)]
pub struct Acl {
    rt: Arc<Runtime>,
    teardown: Arc<TeardownLog>,
}

struct Runtime {
    api: Api,
    /// Whether our `aclInit` succeeded (and so `aclFinalize` at exit is ours to call).
    initialised_here: bool,
}

/// Runtimes opened in this process, kept until exit (see the module docs).
static RUNTIMES: Mutex<Vec<(PathBuf, Arc<Runtime>)>> = Mutex::new(Vec::new());

extern "C" fn finalize_at_exit() {
    // try_lock: exit() may run while another thread holds the lock; skipping beats deadlocking.
    if let Ok(runtimes) = RUNTIMES.try_lock() {
        for (_, rt) in runtimes.iter().filter(|(_, rt)| rt.initialised_here) {
            // The process is ending: there is no one left to report a failure to.
            let _ = rt.api.finalize();
        }
    }
}

impl Acl {
    /// Finds the library (`lib`, else `$ASCEND_PTQ_ACL_LIB`, else the CANN folders and the
    /// loader path: [`LibrarySearch::from_env`]) and initialises it once per process.
    pub fn open(lib: Option<&Path>) -> Result<Acl> {
        Acl::open_with(&LibrarySearch::from_env(lib))
    }

    /// As [`Acl::open`] with an explicit search.
    pub fn open_with(search: &LibrarySearch) -> Result<Acl> {
        let mut runtimes = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
        let api = search.open()?;
        let key = std::fs::canonicalize(api.file()).unwrap_or_else(|_| api.file().to_path_buf());
        if let Some((_, rt)) = runtimes.iter().find(|(k, _)| *k == key) {
            return Ok(Acl { rt: rt.clone(), teardown: Arc::default() });
        }
        let initialised_here = match api.init(None) {
            Ok(()) => true,
            Err(e) if e.code == sys::ACL_ERROR_REPEAT_INITIALIZE => false,
            Err(e) => return Err(e.into()),
        };
        if runtimes.is_empty() {
            // SAFETY: registering a plain extern "C" fn.
            unsafe { libc::atexit(finalize_at_exit) };
        }
        let rt = Arc::new(Runtime { api, initialised_here });
        runtimes.push((key, rt.clone()));
        Ok(Acl { rt, teardown: Arc::default() })
    }

    /// Every failed release (`aclrtFree`, `aclmdlUnload`, `aclrtDestroy*`, ...) of this handle's
    /// objects since the last call, oldest first, including those a call already returned.
    pub fn take_teardown_errors(&self) -> Vec<AclError> {
        self.teardown.take()
    }

    /// The first failed release not yet reported (what every fallible method checks first).
    fn check_teardown(&self) -> Result<(), AclError> {
        self.teardown.check()
    }

    /// Keeps the result of a release made in `Drop` or in cleanup after another error.
    fn record_teardown(&self, result: Result<(), AclError>) {
        self.teardown.record(result);
    }

    /// The raw call layer, for what the safe layer does not wrap.
    pub fn api(&self) -> &Api {
        &self.rt.api
    }

    /// The library file (or loader name) in use.
    pub fn library(&self) -> &Path {
        self.rt.api.file()
    }

    /// Set when the library is the ascend-ptq ACL simulator: its identity string.
    pub fn simulator_identity(&self) -> Option<&str> {
        self.rt.api.simulator_identity()
    }

    /// `aclrtGetVersion`: (major, minor, patch).
    pub fn version(&self) -> Result<(i32, i32, i32)> {
        self.check_teardown()?;
        Ok(self.rt.api.version()?)
    }

    pub fn device_count(&self) -> Result<u32> {
        self.check_teardown()?;
        Ok(self.rt.api.device_count()?)
    }

    /// `aclrtGetSocName()`; None when the library lacks it (older CANN) or returns NULL.
    pub fn soc_name(&self) -> Option<String> {
        self.rt.api.soc_name()
    }

    /// `aclrtSetDevice(id)`; the device is reset when the last handle using it drops.
    pub fn device(&self, id: i32) -> Result<Device> {
        self.check_teardown()?;
        self.rt.api.set_device(id)?;
        Ok(Device { inner: Arc::new(DeviceInner { acl: self.clone(), id }) })
    }
}

/// A device set for this process (`aclrtSetDevice`).
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

struct DeviceInner {
    acl: Acl,
    id: i32,
}

impl Drop for DeviceInner {
    fn drop(&mut self) {
        self.acl.record_teardown(self.acl.rt.api.reset_device(self.id));
    }
}

impl Device {
    pub fn id(&self) -> i32 {
        self.inner.id
    }

    pub fn acl(&self) -> &Acl {
        &self.inner.acl
    }

    /// `aclrtCreateContext` on this device; queries the run mode (docs/ascend-formats.md §11.1) once.
    pub fn create_context(&self) -> Result<Context> {
        self.inner.acl.check_teardown()?;
        let api = self.inner.acl.api();
        let raw = api.create_context(self.inner.id)?;
        // From here on the context is destroyed on every path, including the run-mode error.
        let mut inner = ContextInner { device: self.inner.clone(), raw, run_mode: RunMode::Host };
        inner.bind()?;
        inner.run_mode = RunMode::from_raw(api.run_mode()?);
        Ok(Context { inner: Arc::new(inner) })
    }
}

/// Where the application runs (`aclrtGetRunMode`, docs/ascend-formats.md §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// On the SoC's own CPU (Atlas 200 DK, OPi AIpro): host and device share memory, no copies.
    Device,
    /// On a host with a PCIe card: inputs and outputs are copied host↔device.
    Host,
}

impl RunMode {
    fn from_raw(raw: sys::aclrtRunMode) -> RunMode {
        if raw == sys::ACL_DEVICE { RunMode::Device } else { RunMode::Host }
    }
}

/// An ACL context (`aclrtCreateContext`).
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    device: Arc<DeviceInner>,
    raw: sys::aclrtContext,
    run_mode: RunMode,
}

// SAFETY: an ACL context may be used from any thread once made current there, which every
// operation does first (`bind`).
unsafe impl Send for ContextInner {}
unsafe impl Sync for ContextInner {}

impl ContextInner {
    fn api(&self) -> &Api {
        self.device.acl.api()
    }

    /// Makes this context current on the calling thread.
    fn bind(&self) -> Result<(), AclError> {
        // SAFETY: `raw` is live until this value drops.
        unsafe { self.api().set_current_context(self.raw) }
    }

    /// An earlier failed release not yet reported (see `teardown`).
    fn check_teardown(&self) -> Result<(), AclError> {
        self.device.acl.check_teardown()
    }

    /// Start of every public fallible method: an earlier failed release, then the binding.
    fn check_and_bind(&self) -> Result<(), AclError> {
        self.check_teardown()?;
        self.bind()
    }

    /// Records a release's failure (see `teardown`).
    fn record(&self, result: Result<(), AclError>) {
        self.device.acl.record_teardown(result);
    }
}

impl Drop for ContextInner {
    fn drop(&mut self) {
        // SAFETY: every child handle holds an Arc to this context, so none is left.
        self.record(unsafe { self.api().destroy_context(self.raw) });
    }
}

impl Context {
    pub fn device_id(&self) -> i32 {
        self.inner.device.id
    }

    pub fn run_mode(&self) -> RunMode {
        self.inner.run_mode
    }

    /// Makes this context current on the calling thread (every method does so itself).
    pub fn bind(&self) -> Result<()> {
        Ok(self.inner.check_and_bind()?)
    }

    pub fn create_stream(&self) -> Result<Stream> {
        self.inner.check_and_bind()?;
        let raw = self.inner.api().create_stream()?;
        Ok(Stream { ctx: self.inner.clone(), raw })
    }

    /// `aclrtMalloc(size, HUGE_FIRST)`.
    pub fn alloc(&self, size: usize) -> Result<DeviceBuffer> {
        self.inner.check_and_bind()?;
        let ptr = self.inner.api().malloc(size, sys::ACL_MEM_MALLOC_HUGE_FIRST)?;
        Ok(DeviceBuffer { ctx: self.inner.clone(), ptr, len: size })
    }

    pub fn create_dataset(&self) -> Result<Dataset> {
        self.inner.check_and_bind()?;
        let raw = self.inner.api().create_dataset()?;
        Ok(Dataset { ctx: self.inner.clone(), raw, data_buffers: Vec::new(), buffers: Vec::new() })
    }

    /// `aclmdlLoadFromFile`, then the model description and its input/output buffers.
    pub fn load_model(&self, path: &Path) -> Result<Model> {
        std::fs::metadata(path).map_err(|source| Error::ModelFile { path: path.to_path_buf(), source })?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Nul { what: "model path", value: path.display().to_string() })?;
        self.inner.check_and_bind()?;
        let id = self.inner.api().load_from_file(&c_path).map_err(|source| Error::LoadModel { path: path.to_path_buf(), source })?;
        self.finish_load(id, path.display().to_string())
    }

    /// `aclmdlLoadFromMem`; `label` names the model in errors.
    pub fn load_model_from_memory(&self, bytes: &[u8], label: &str) -> Result<Model> {
        self.inner.check_and_bind()?;
        let id = self.inner.api().load_from_mem(bytes).map_err(|source| Error::LoadModel { path: PathBuf::from(label), source })?;
        self.finish_load(id, label.to_string())
    }

    fn finish_load(&self, id: u32, label: String) -> Result<Model> {
        let loaded = LoadedModel { ctx: self.inner.clone(), id };
        let desc = ModelDesc::read(&self.inner, id)?;
        let mut inputs = self.create_dataset()?;
        for io in &desc.inputs {
            inputs.push(self.alloc(io.size)?)?;
        }
        let mut outputs = self.create_dataset()?;
        for io in &desc.outputs {
            outputs.push(self.alloc(io.size)?)?;
        }
        Ok(Model { io: Some((inputs, outputs)), loaded, desc, label })
    }
}

/// An ACL stream (`aclrtCreateStream`).
pub struct Stream {
    ctx: Arc<ContextInner>,
    raw: sys::aclrtStream,
}

// SAFETY: see ContextInner; the stream's context is bound before each use.
unsafe impl Send for Stream {}

impl Stream {
    pub fn synchronize(&self) -> Result<()> {
        self.ctx.check_and_bind()?;
        // SAFETY: `raw` is live until drop.
        Ok(unsafe { self.ctx.api().synchronize_stream(self.raw) }?)
    }

    pub fn as_raw(&self) -> sys::aclrtStream {
        self.raw
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.ctx.record(self.ctx.bind());
        // SAFETY: `raw` came from aclrtCreateStream and is not used afterwards.
        self.ctx.record(unsafe { self.ctx.api().destroy_stream(self.raw) });
    }
}

/// Device memory (`aclrtMalloc` / `aclrtFree`).
pub struct DeviceBuffer {
    ctx: Arc<ContextInner>,
    ptr: *mut c_void,
    len: usize,
}

// SAFETY: see ContextInner.
unsafe impl Send for DeviceBuffer {}

impl DeviceBuffer {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_ptr(&self) -> *mut c_void {
        self.ptr
    }

    /// Copies `data` (exactly [`DeviceBuffer::len`] bytes or fewer) to the start of the buffer:
    /// `aclrtMemcpy` host→device in host run mode; a plain CPU copy in device run mode, where
    /// `aclrtMalloc` memory is the CPU's own (docs/ascend-formats.md §11.1).
    pub fn copy_from_host(&mut self, data: &[u8]) -> Result<()> {
        if data.len() > self.len {
            return Err(Error::BufferTooSmall { len: self.len, given: data.len() });
        }
        self.ctx.check_and_bind()?;
        match self.ctx.run_mode {
            // SAFETY: the buffer holds `len` ≥ data.len() bytes of CPU-visible memory.
            RunMode::Device => unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.cast::<u8>(), data.len()) },
            RunMode::Host => unsafe {
                self.ctx.api().memcpy(self.ptr, self.len, data.as_ptr().cast(), data.len(), sys::ACL_MEMCPY_HOST_TO_DEVICE)?
            },
        }
        Ok(())
    }

    /// Copies the first `out.len()` bytes of the buffer to `out` (device→host, as above).
    pub fn copy_to_host(&self, out: &mut [u8]) -> Result<()> {
        if out.len() > self.len {
            return Err(Error::BufferTooSmall { len: self.len, given: out.len() });
        }
        self.ctx.check_and_bind()?;
        match self.ctx.run_mode {
            // SAFETY: as in copy_from_host.
            RunMode::Device => unsafe { std::ptr::copy_nonoverlapping(self.ptr.cast::<u8>(), out.as_mut_ptr(), out.len()) },
            RunMode::Host => unsafe {
                self.ctx.api().memcpy(out.as_mut_ptr().cast(), out.len(), self.ptr, out.len(), sys::ACL_MEMCPY_DEVICE_TO_HOST)?
            },
        }
        Ok(())
    }

    /// The whole buffer, copied to the host.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut out = vec![0; self.len];
        self.copy_to_host(&mut out)?;
        Ok(out)
    }

    /// `aclrtMemset` of the whole buffer.
    pub fn fill(&mut self, value: u8) -> Result<()> {
        self.ctx.check_and_bind()?;
        // SAFETY: the buffer holds `len` bytes.
        Ok(unsafe { self.ctx.api().memset(self.ptr, self.len, i32::from(value), self.len) }?)
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        self.ctx.record(self.ctx.bind());
        // SAFETY: `ptr` came from aclrtMalloc; datasets referring to it own it and drop first.
        self.ctx.record(unsafe { self.ctx.api().free(self.ptr) });
    }
}

/// A model input or output set (`aclmdlDataset`), owning its device buffers.
pub struct Dataset {
    ctx: Arc<ContextInner>,
    raw: *mut sys::aclmdlDataset,
    data_buffers: Vec<*mut sys::aclDataBuffer>,
    // Declared last: freed after the dataset and data buffers that point into them.
    buffers: Vec<DeviceBuffer>,
}

// SAFETY: see ContextInner.
unsafe impl Send for Dataset {}

impl Dataset {
    /// Appends `buffer` (`aclCreateDataBuffer` + `aclmdlAddDatasetBuffer`); the dataset owns it.
    pub fn push(&mut self, buffer: DeviceBuffer) -> Result<()> {
        self.ctx.check_and_bind()?;
        let api = self.ctx.api();
        // SAFETY: the device memory lives as long as the dataset (it owns the buffer).
        let data = unsafe { api.create_data_buffer(buffer.ptr, buffer.len) }?;
        if let Err(e) = unsafe { api.add_dataset_buffer(self.raw, data) } {
            self.ctx.record(unsafe { api.destroy_data_buffer(data) });
            return Err(e.into());
        }
        self.data_buffers.push(data);
        self.buffers.push(buffer);
        Ok(())
    }

    /// Number of buffers, as ACL counts them (`aclmdlGetDatasetNumBuffers`).
    pub fn len(&self) -> usize {
        // SAFETY: `raw` is live.
        unsafe { self.ctx.api().dataset_num_buffers(self.raw) }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn buffer(&self, index: usize) -> Option<&DeviceBuffer> {
        self.buffers.get(index)
    }

    pub fn buffer_mut(&mut self, index: usize) -> Option<&mut DeviceBuffer> {
        self.buffers.get_mut(index)
    }

    pub fn as_raw(&self) -> *mut sys::aclmdlDataset {
        self.raw
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        self.ctx.record(self.ctx.bind());
        let api = self.ctx.api();
        // aclmdlDestroyDataset does not destroy the data buffers; device memory goes after.
        // SAFETY: all came from this dataset's push / create and are not used afterwards.
        for &data in &self.data_buffers {
            self.ctx.record(unsafe { api.destroy_data_buffer(data) });
        }
        self.ctx.record(unsafe { api.destroy_dataset(self.raw) });
    }
}

/// Element type of a model input or output (`aclDataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Float,
    Float16,
    Int8,
    Int32,
    Uint8,
    Int16,
    Uint16,
    Uint32,
    Int64,
    Uint64,
    Double,
    Bool,
    Bf16,
    /// Any other `aclDataType` value, kept as is.
    Other(i32),
}

impl DataType {
    pub fn from_raw(raw: sys::aclDataType) -> DataType {
        match raw {
            sys::ACL_FLOAT => DataType::Float,
            sys::ACL_FLOAT16 => DataType::Float16,
            sys::ACL_INT8 => DataType::Int8,
            sys::ACL_INT32 => DataType::Int32,
            sys::ACL_UINT8 => DataType::Uint8,
            sys::ACL_INT16 => DataType::Int16,
            sys::ACL_UINT16 => DataType::Uint16,
            sys::ACL_UINT32 => DataType::Uint32,
            sys::ACL_INT64 => DataType::Int64,
            sys::ACL_UINT64 => DataType::Uint64,
            sys::ACL_DOUBLE => DataType::Double,
            sys::ACL_BOOL => DataType::Bool,
            sys::ACL_BF16 => DataType::Bf16,
            other => DataType::Other(other),
        }
    }

    /// Bytes per element; None for `Other`.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
            DataType::Float16 | DataType::Bf16 | DataType::Int16 | DataType::Uint16 => 2,
            DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
            DataType::Int64 | DataType::Uint64 | DataType::Double => 8,
            DataType::Other(_) => return None,
        })
    }
}

/// Memory layout of a model input or output (`aclFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Undefined,
    Nchw,
    Nhwc,
    Nd,
    Nc1hwc0,
    /// Any other `aclFormat` value, kept as is.
    Other(i32),
}

impl Format {
    pub fn from_raw(raw: sys::aclFormat) -> Format {
        match raw {
            sys::ACL_FORMAT_UNDEFINED => Format::Undefined,
            sys::ACL_FORMAT_NCHW => Format::Nchw,
            sys::ACL_FORMAT_NHWC => Format::Nhwc,
            sys::ACL_FORMAT_ND => Format::Nd,
            sys::ACL_FORMAT_NC1HWC0 => Format::Nc1hwc0,
            other => Format::Other(other),
        }
    }
}

/// How an input is fed (`aclmdlInputAippType`): static AIPP inputs take the raw uint8 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AippType {
    None,
    Static,
    Dynamic,
    DynamicNode,
    Other(u32),
}

impl AippType {
    fn from_raw(raw: sys::aclmdlInputAippType) -> AippType {
        match raw {
            sys::ACL_DATA_WITHOUT_AIPP => AippType::None,
            sys::ACL_DATA_WITH_STATIC_AIPP => AippType::Static,
            sys::ACL_DATA_WITH_DYNAMIC_AIPP => AippType::Dynamic,
            sys::ACL_DYNAMIC_AIPP_NODE => AippType::DynamicNode,
            other => AippType::Other(other),
        }
    }
}

/// One model input or output as the model description states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoDesc {
    pub name: String,
    pub dims: Vec<i64>,
    pub dtype: DataType,
    pub format: Format,
    /// Bytes (`aclmdlGet{In,Out}putSizeByIndex`).
    pub size: usize,
    /// Always `AippType::None` for outputs.
    pub aipp: AippType,
}

/// A model description (`aclmdlDesc`) and the inputs/outputs read from it.
pub struct ModelDesc {
    ctx: Arc<ContextInner>,
    raw: *mut sys::aclmdlDesc,
    inputs: Vec<IoDesc>,
    outputs: Vec<IoDesc>,
}

// SAFETY: see ContextInner.
unsafe impl Send for ModelDesc {}

fn dims_vec(dims: &sys::aclmdlIODims) -> Vec<i64> {
    dims.dims[..dims.dimCount.min(dims.dims.len())].to_vec()
}

impl ModelDesc {
    fn read(ctx: &Arc<ContextInner>, model_id: u32) -> Result<ModelDesc> {
        let api = ctx.api();
        let raw = api.create_desc()?;
        let mut desc = ModelDesc { ctx: ctx.clone(), raw, inputs: Vec::new(), outputs: Vec::new() };
        // SAFETY (all calls below): `raw` is live and filled by aclmdlGetDesc.
        unsafe {
            api.get_desc(raw, model_id)?;
            for i in 0..api.num_inputs(raw) {
                let aipp = match api.aipp_type(model_id, i) {
                    Ok((kind, _)) => AippType::from_raw(kind),
                    // Some CANN releases answer "no AIPP" for plain inputs with these codes.
                    Err(e) if e.code == sys::ACL_ERROR_GE_AIPP_NOT_EXIST || e.code == sys::ACL_ERROR_NOT_STATIC_AIPP => AippType::None,
                    Err(e) => return Err(e.into()),
                };
                desc.inputs.push(IoDesc {
                    name: api.input_name(raw, i)?,
                    dims: dims_vec(&api.input_dims(raw, i)?),
                    dtype: DataType::from_raw(api.input_data_type(raw, i)),
                    format: Format::from_raw(api.input_format(raw, i)),
                    size: api.input_size(raw, i),
                    aipp,
                });
            }
            for i in 0..api.num_outputs(raw) {
                desc.outputs.push(IoDesc {
                    name: api.output_name(raw, i)?,
                    dims: dims_vec(&api.output_dims(raw, i)?),
                    dtype: DataType::from_raw(api.output_data_type(raw, i)),
                    format: Format::from_raw(api.output_format(raw, i)),
                    size: api.output_size(raw, i),
                    aipp: AippType::None,
                });
            }
        }
        Ok(desc)
    }

    pub fn inputs(&self) -> &[IoDesc] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[IoDesc] {
        &self.outputs
    }

    /// `aclmdlGetInputIndexByName`; None when the model has no such input.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        let name = CString::new(name).ok()?;
        self.ctx.bind().ok()?;
        // SAFETY: `raw` is live.
        unsafe { self.ctx.api().input_index_by_name(self.raw, &name) }.ok()
    }
}

impl Drop for ModelDesc {
    fn drop(&mut self) {
        self.ctx.record(self.ctx.bind());
        // SAFETY: `raw` came from aclmdlCreateDesc and is not used afterwards.
        self.ctx.record(unsafe { self.ctx.api().destroy_desc(self.raw) });
    }
}

/// A model id from aclmdlLoadFrom*, unloaded on drop.
struct LoadedModel {
    ctx: Arc<ContextInner>,
    id: u32,
}

impl Drop for LoadedModel {
    fn drop(&mut self) {
        self.ctx.record(self.ctx.bind());
        self.ctx.record(self.ctx.api().unload(self.id));
    }
}

/// A loaded model with its description and input/output buffers (allocated once, at load).
pub struct Model {
    // Field order is drop order: buffers, then the model, then its description.
    io: Option<(Dataset, Dataset)>,
    loaded: LoadedModel,
    desc: ModelDesc,
    label: String,
}

impl Model {
    pub fn id(&self) -> u32 {
        self.loaded.id
    }

    /// The file path (or label) the model was loaded from.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn desc(&self) -> &ModelDesc {
        &self.desc
    }

    pub fn run_mode(&self) -> RunMode {
        self.loaded.ctx.run_mode
    }

    /// Synchronous `aclmdlExecute` on caller-made datasets.
    pub fn execute(&self, input: &Dataset, output: &mut Dataset) -> Result<()> {
        self.loaded.ctx.check_and_bind()?;
        // SAFETY: both datasets and their device buffers are live for the call.
        Ok(unsafe { self.loaded.ctx.api().execute(self.loaded.id, input.raw, output.raw) }?)
    }

    /// Runs the model once: checks every input against the description (count and exact byte
    /// size), copies the inputs in, executes, and returns each output's bytes in model order.
    pub fn run(&mut self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        self.loaded.ctx.check_teardown()?;
        let expected = &self.desc.inputs;
        if inputs.len() != expected.len() {
            let names = expected.iter().map(|io| io.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(Error::InputCount { model: self.label.clone(), expected: expected.len(), given: inputs.len(), names });
        }
        for (index, (data, io)) in inputs.iter().zip(expected).enumerate() {
            if data.len() != io.size {
                return Err(Error::InputSize {
                    model: self.label.clone(),
                    index,
                    name: io.name.clone(),
                    expected: io.size,
                    given: data.len(),
                });
            }
        }
        let (input_set, output_set) = self.io.as_mut().expect("buffers live until drop");
        for (i, data) in inputs.iter().enumerate() {
            input_set.buffer_mut(i).expect("one buffer per input").copy_from_host(data)?;
        }
        self.loaded.ctx.bind()?;
        // SAFETY: both datasets and their device buffers are live for the call.
        unsafe { self.loaded.ctx.api().execute(self.loaded.id, input_set.raw, output_set.raw) }?;
        (0..self.desc.outputs.len()).map(|i| output_set.buffer(i).expect("one buffer per output").to_vec()).collect()
    }
}

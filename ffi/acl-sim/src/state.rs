//! The simulator's process state: every ACL object created and not yet destroyed, and the
//! simulated device memory. Opaque handles (contexts, streams, data buffers, datasets,
//! model descriptions) are addresses that are never reused, so a destroyed handle passed
//! again is always detected; device memory is real host memory tracked by address.

use std::alloc::{Layout, alloc, dealloc};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::CString;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::codes::*;
use crate::model::{AclFail, LoadedModel, fail};

/// Device allocations are aligned like the runtime's (it guarantees at least 32 bytes).
const ALIGN: usize = 64;
/// Freed allocations are kept (not returned to the allocator) up to this many bytes, so
/// their addresses cannot come back as someone else's memory while a stale pointer to
/// them is still detected as use after free.
const QUARANTINE_BYTES: usize = 256 << 20;

pub struct Alloc {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the allocation is owned by the state and only touched under its mutex (or by the
// caller through the raw pointer, as with real device memory).
unsafe impl Send for Alloc {}

impl Alloc {
    fn new(size: usize, fill: u8) -> Option<Alloc> {
        let layout = Layout::from_size_align(size, ALIGN).ok()?;
        // SAFETY: size > 0 is checked by the callers.
        let ptr = unsafe { alloc(layout) };
        if ptr.is_null() {
            return None;
        }
        // Fresh device memory is not zeroed on hardware either; a pattern makes a missing
        // host-to-device copy visible in the outputs.
        unsafe { ptr.write_bytes(fill, size) };
        Some(Alloc { ptr, layout })
    }

    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    pub fn size(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for Alloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// Which memory a pointer range lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Device,
    /// Memory from aclrtMallocHost.
    PinnedHost,
    /// Anything else: ordinary host memory the simulator does not track.
    Host,
}

/// The interface of a loaded model as `aclmdlGetDesc` copies it into an `aclmdlDesc`.
pub struct IoInfo {
    pub name: CString,
    pub dtype: i32,
    pub format: i32,
    pub dims: Vec<i64>,
    pub size: usize,
}

pub struct DescInfo {
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
}

pub struct DataBuffer {
    pub data: usize,
    pub size: usize,
}

#[derive(Default)]
pub struct State {
    pub initialized: bool,
    /// aclFinalize succeeded and aclInit was not called again since.
    pub finalized: bool,
    pub soc: Option<CString>,
    /// Old SoC names stay alive: callers may still hold the pointers.
    pub old_socs: Vec<CString>,
    /// Device id → SetDevice count not yet reset.
    pub devices: HashMap<i32, usize>,
    pub contexts: HashMap<usize, i32>,
    pub streams: HashSet<usize>,
    pub device_mem: BTreeMap<usize, Alloc>,
    pub host_mem: BTreeMap<usize, Alloc>,
    /// Freed allocations in quarantine, by address, and their order of release.
    freed: BTreeMap<usize, Alloc>,
    freed_order: VecDeque<usize>,
    freed_bytes: usize,
    pub data_buffers: HashMap<usize, DataBuffer>,
    pub destroyed: HashSet<usize>,
    pub datasets: HashMap<usize, Vec<usize>>,
    pub descs: HashMap<usize, Option<Arc<DescInfo>>>,
    pub models: HashMap<u32, Arc<LoadedModel>>,
    next_model_id: u32,
    next_handle: usize,
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| Mutex::new(State::default()));

/// The process state; a panic while it was held does not make it unusable.
pub fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    pub fn require_init(&self) -> Result<(), AclFail> {
        if self.initialized { Ok(()) } else { fail(ACL_ERROR_UNINITIALIZE, "aclInit has not been called (or aclFinalize was called)") }
    }

    /// A fresh opaque handle (never reused in this process).
    pub fn handle(&mut self) -> usize {
        if self.next_handle == 0 {
            self.next_handle = 0x51A0_0000_0000;
        }
        self.next_handle += 0x40;
        self.next_handle
    }

    pub fn model_id(&mut self) -> u32 {
        self.next_model_id += 1;
        self.next_model_id
    }

    pub fn model(&self, id: u32) -> Result<Arc<LoadedModel>, AclFail> {
        match self.models.get(&id) {
            Some(m) => Ok(Arc::clone(m)),
            None => fail(ACL_ERROR_INVALID_MODEL_ID, format!("model id {id} is not loaded (or was unloaded)")),
        }
    }

    pub fn malloc(&mut self, size: usize, device: bool) -> Result<usize, AclFail> {
        let what = if device { "aclrtMalloc" } else { "aclrtMallocHost" };
        if size == 0 {
            return fail(ACL_ERROR_INVALID_PARAM, format!("{what}: size is 0"));
        }
        let a = Alloc::new(size, if device { 0xA5 } else { 0 })
            .ok_or_else(|| crate::model::AclFail { code: ACL_ERROR_BAD_ALLOC, msg: format!("{what}: cannot allocate {size} bytes") })?;
        let addr = a.addr();
        if device {
            self.device_mem.insert(addr, a)
        } else {
            self.host_mem.insert(addr, a)
        };
        Ok(addr)
    }

    pub fn free(&mut self, addr: usize, device: bool) -> Result<(), AclFail> {
        let (what, map) = if device { ("aclrtFree", &mut self.device_mem) } else { ("aclrtFreeHost", &mut self.host_mem) };
        if let Some(a) = map.remove(&addr) {
            // Scribble over it: a stale read shows garbage rather than the old data.
            unsafe { a.ptr.write_bytes(0xDD, a.size()) };
            self.freed_bytes += a.size();
            self.freed.insert(addr, a);
            self.freed_order.push_back(addr);
            while self.freed_bytes > QUARANTINE_BYTES
                && let Some(old) = self.freed_order.pop_front()
            {
                if let Some(a) = self.freed.remove(&old) {
                    self.freed_bytes -= a.size();
                }
            }
            return Ok(());
        }
        if self.freed.contains_key(&addr) {
            return fail(ACL_ERROR_INVALID_PARAM, format!("{what}: {addr:#x} was already freed"));
        }
        let kind = if device { "device memory from aclrtMalloc" } else { "host memory from aclrtMallocHost" };
        fail(ACL_ERROR_INVALID_PARAM, format!("{what}: {addr:#x} is not the start of {kind}"))
    }

    /// The tracked allocation containing `addr`, as (region, start, size).
    fn containing(&self, addr: usize) -> Option<(Region, usize, usize)> {
        let find = |map: &BTreeMap<usize, Alloc>, region| {
            map.range(..=addr).next_back().filter(|(start, a)| addr < *start + a.size()).map(|(start, a)| (region, *start, a.size()))
        };
        find(&self.device_mem, Region::Device).or_else(|| find(&self.host_mem, Region::PinnedHost))
    }

    /// Where `len` bytes at `addr` live; a range that starts in a tracked allocation must
    /// end inside it, and a freed allocation is reported as use after free.
    pub fn region(&self, what: &str, addr: usize, len: usize) -> Result<Region, AclFail> {
        if addr == 0 {
            return fail(ACL_ERROR_INVALID_PARAM, format!("{what} is a null pointer"));
        }
        if let Some((region, start, size)) = self.containing(addr) {
            let offset = addr - start;
            if len > size - offset {
                return fail(
                    ACL_ERROR_INVALID_PARAM,
                    format!("{what}: {len} bytes at offset {offset} overrun the {size}-byte buffer at {start:#x}"),
                );
            }
            return Ok(region);
        }
        let in_freed = self.freed.range(..=addr).next_back().is_some_and(|(start, a)| addr < start + a.size());
        if in_freed {
            return fail(ACL_ERROR_INVALID_PARAM, format!("{what} {addr:#x} points to freed memory (use after free)"));
        }
        Ok(Region::Host)
    }

    pub fn data_buffer(&self, handle: usize, what: &str) -> Result<&DataBuffer, AclFail> {
        self.data_buffers.get(&handle).ok_or_else(|| self.bad_handle(handle, what, "aclDataBuffer"))
    }

    pub fn bad_handle(&self, handle: usize, what: &str, kind: &str) -> AclFail {
        let msg = if handle == 0 {
            format!("{what}: the {kind} is null")
        } else if self.destroyed.contains(&handle) {
            format!("{what}: the {kind} {handle:#x} was already destroyed (use after free)")
        } else {
            format!("{what}: {handle:#x} is not a {kind} created by this library")
        };
        AclFail { code: ACL_ERROR_INVALID_PARAM, msg }
    }

    pub fn set_soc(&mut self, soc: &str) {
        let name = CString::new(format!("{soc}-sim")).unwrap_or_default();
        if self.soc.as_ref() != Some(&name)
            && let Some(old) = self.soc.replace(name)
        {
            self.old_socs.push(old);
        }
    }
}

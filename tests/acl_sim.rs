//! The ACL simulator (`ffi/acl-sim`, libascendcl_sim.so) driven through dlopen like a C
//! caller, on simulated OMs written by `write_simulated_om`:
//! - int8 OMs give our engine's output for the deploy model bit for bit;
//! - fp16 OMs give the hand-computed per-op fp16 reference (elementwise ops only, whose f32
//!   results are exactly rounded, so the reference is exact) and differ from fp32;
//! - static AIPP inputs take the uint8 frame through `apply_aipp`;
//! - ACL's state rules and error codes, and live objects return to zero after teardown.
//!
//! The library is built by this test with `cargo build -p ascend-acl-sim` (a no-op when
//! scripts/test.sh already built it); `ASCEND_PTQ_ACL_SIM_LIB` points to a prebuilt one.
//! A build failure fails the test. The simulator's state is process-wide, so the tests take
//! a lock and each one leaves the library finalized with no live objects.

mod common;

use common::LiveCounts;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use ascend_ptq::device::aipp::{AippConfig, InputFormat, apply_aipp};
use ascend_ptq::device::om::proto::ModelDef;
use ascend_ptq::device::om::simulated::om_container_bytes;
use ascend_ptq::device::om::{SimPrecision, SimulatedBuild, read_simulated_om_file, write_simulated_om};
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, ModelProto, SaveOptions, TensorData, save_model};
use common::graph::*;
use common::models::{C_IN, C_OUT, H, W, int8_conv_deploy_model as deploy_model};
use half::f16;
use prost::Message;

// ---- the library --------------------------------------------------------------------------

type E = c_int;
type Ptr = *mut c_void;

#[repr(C)]
struct IoDims {
    name: [c_char; 128],
    dim_count: usize,
    dims: [i64; 128],
}

/// The entry points the tests call, with the signatures of docs/ascend-formats.md §11.3.
struct Api {
    init: unsafe extern "C" fn(*const c_char) -> E,
    finalize: unsafe extern "C" fn() -> E,
    set_device: unsafe extern "C" fn(i32) -> E,
    reset_device: unsafe extern "C" fn(i32) -> E,
    create_context: unsafe extern "C" fn(*mut Ptr, i32) -> E,
    destroy_context: unsafe extern "C" fn(Ptr) -> E,
    create_stream: unsafe extern "C" fn(*mut Ptr) -> E,
    destroy_stream: unsafe extern "C" fn(Ptr) -> E,
    get_run_mode: unsafe extern "C" fn(*mut c_int) -> E,
    malloc: unsafe extern "C" fn(*mut Ptr, usize, c_int) -> E,
    free: unsafe extern "C" fn(Ptr) -> E,
    malloc_host: unsafe extern "C" fn(*mut Ptr, usize) -> E,
    free_host: unsafe extern "C" fn(Ptr) -> E,
    memcpy: unsafe extern "C" fn(Ptr, usize, *const c_void, usize, c_int) -> E,
    load_from_file: unsafe extern "C" fn(*const c_char, *mut u32) -> E,
    load_from_mem: unsafe extern "C" fn(*const c_void, usize, *mut u32) -> E,
    unload: unsafe extern "C" fn(u32) -> E,
    query_size: unsafe extern "C" fn(*const c_char, *mut usize, *mut usize) -> E,
    create_desc: unsafe extern "C" fn() -> Ptr,
    destroy_desc: unsafe extern "C" fn(Ptr) -> E,
    get_desc: unsafe extern "C" fn(Ptr, u32) -> E,
    num_inputs: unsafe extern "C" fn(Ptr) -> usize,
    num_outputs: unsafe extern "C" fn(Ptr) -> usize,
    input_size: unsafe extern "C" fn(Ptr, usize) -> usize,
    output_size: unsafe extern "C" fn(Ptr, usize) -> usize,
    input_dims: unsafe extern "C" fn(*const c_void, usize, *mut IoDims) -> E,
    input_dtype: unsafe extern "C" fn(*const c_void, usize) -> c_int,
    output_dtype: unsafe extern "C" fn(*const c_void, usize) -> c_int,
    input_format: unsafe extern "C" fn(*const c_void, usize) -> c_int,
    input_name: unsafe extern "C" fn(*const c_void, usize) -> *const c_char,
    aipp_type: unsafe extern "C" fn(u32, usize, *mut c_int, *mut usize) -> E,
    create_dataset: unsafe extern "C" fn() -> Ptr,
    destroy_dataset: unsafe extern "C" fn(*const c_void) -> E,
    add_dataset_buffer: unsafe extern "C" fn(Ptr, Ptr) -> E,
    create_data_buffer: unsafe extern "C" fn(Ptr, usize) -> Ptr,
    destroy_data_buffer: unsafe extern "C" fn(*const c_void) -> E,
    execute: unsafe extern "C" fn(u32, *const c_void, Ptr) -> E,
    recent_error: unsafe extern "C" fn() -> *const c_char,
    soc_name: unsafe extern "C" fn() -> *const c_char,
    live_counts: unsafe extern "C" fn(*mut LiveCounts) -> c_int,
    identity: unsafe extern "C" fn() -> *const c_char,
}

/// Every symbol of the contract (required, optional and simulator extras).
const CONTRACT_SYMBOLS: &[&str] = &[
    "aclInit",
    "aclFinalize",
    "aclrtGetVersion",
    "aclrtGetDeviceCount",
    "aclrtSetDevice",
    "aclrtResetDevice",
    "aclrtCreateContext",
    "aclrtDestroyContext",
    "aclrtSetCurrentContext",
    "aclrtGetCurrentContext",
    "aclrtCreateStream",
    "aclrtDestroyStream",
    "aclrtSynchronizeStream",
    "aclrtGetRunMode",
    "aclrtMalloc",
    "aclrtFree",
    "aclrtMallocHost",
    "aclrtFreeHost",
    "aclrtMemcpy",
    "aclrtMemset",
    "aclmdlLoadFromFile",
    "aclmdlLoadFromMem",
    "aclmdlUnload",
    "aclmdlQuerySize",
    "aclmdlCreateDesc",
    "aclmdlDestroyDesc",
    "aclmdlGetDesc",
    "aclmdlGetNumInputs",
    "aclmdlGetNumOutputs",
    "aclmdlGetInputSizeByIndex",
    "aclmdlGetOutputSizeByIndex",
    "aclmdlGetInputDims",
    "aclmdlGetOutputDims",
    "aclmdlGetInputDataType",
    "aclmdlGetOutputDataType",
    "aclmdlGetInputFormat",
    "aclmdlGetOutputFormat",
    "aclmdlGetInputNameByIndex",
    "aclmdlGetOutputNameByIndex",
    "aclmdlGetInputIndexByName",
    "aclmdlCreateDataset",
    "aclmdlDestroyDataset",
    "aclmdlAddDatasetBuffer",
    "aclmdlGetDatasetBuffer",
    "aclmdlGetDatasetNumBuffers",
    "aclCreateDataBuffer",
    "aclDestroyDataBuffer",
    "aclGetDataBufferAddr",
    "aclGetDataBufferSizeV2",
    "aclmdlExecute",
    "aclmdlGetAippType",
    "aclDataTypeSize",
    "aclGetRecentErrMsg",
    "aclrtGetSocName",
    "aclsimGetLiveCounts",
    "aclsimIdentity",
];

struct Sim {
    lib: libloading::Library,
    api: Api,
}

fn sim_path() -> PathBuf {
    common::acl_sim_lib()
}

/// The simulator file (built once per run).
fn sim_path_cached() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(sim_path).clone()
}

/// The loaded simulator, with the test lock held (the library's state is process-wide).
fn sim() -> (MutexGuard<'static, ()>, &'static Sim) {
    static LOCK: Mutex<()> = Mutex::new(());
    static SIM: OnceLock<Sim> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let sim = SIM.get_or_init(|| {
        let path = sim_path_cached();
        assert!(path.exists(), "the ACL simulator {} is missing", path.display());
        // SAFETY: our own library; its initialisers have no preconditions.
        let lib = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        macro_rules! f {
            ($name:literal) => {
                // SAFETY: the type is the ACL signature of this symbol.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.unwrap_or_else(|e| panic!("{}: {e}", $name))
            };
        }
        let api = Api {
            init: f!("aclInit"),
            finalize: f!("aclFinalize"),
            set_device: f!("aclrtSetDevice"),
            reset_device: f!("aclrtResetDevice"),
            create_context: f!("aclrtCreateContext"),
            destroy_context: f!("aclrtDestroyContext"),
            create_stream: f!("aclrtCreateStream"),
            destroy_stream: f!("aclrtDestroyStream"),
            get_run_mode: f!("aclrtGetRunMode"),
            malloc: f!("aclrtMalloc"),
            free: f!("aclrtFree"),
            malloc_host: f!("aclrtMallocHost"),
            free_host: f!("aclrtFreeHost"),
            memcpy: f!("aclrtMemcpy"),
            load_from_file: f!("aclmdlLoadFromFile"),
            load_from_mem: f!("aclmdlLoadFromMem"),
            unload: f!("aclmdlUnload"),
            query_size: f!("aclmdlQuerySize"),
            create_desc: f!("aclmdlCreateDesc"),
            destroy_desc: f!("aclmdlDestroyDesc"),
            get_desc: f!("aclmdlGetDesc"),
            num_inputs: f!("aclmdlGetNumInputs"),
            num_outputs: f!("aclmdlGetNumOutputs"),
            input_size: f!("aclmdlGetInputSizeByIndex"),
            output_size: f!("aclmdlGetOutputSizeByIndex"),
            input_dims: f!("aclmdlGetInputDims"),
            input_dtype: f!("aclmdlGetInputDataType"),
            output_dtype: f!("aclmdlGetOutputDataType"),
            input_format: f!("aclmdlGetInputFormat"),
            input_name: f!("aclmdlGetInputNameByIndex"),
            aipp_type: f!("aclmdlGetAippType"),
            create_dataset: f!("aclmdlCreateDataset"),
            destroy_dataset: f!("aclmdlDestroyDataset"),
            add_dataset_buffer: f!("aclmdlAddDatasetBuffer"),
            create_data_buffer: f!("aclCreateDataBuffer"),
            destroy_data_buffer: f!("aclDestroyDataBuffer"),
            execute: f!("aclmdlExecute"),
            recent_error: f!("aclGetRecentErrMsg"),
            soc_name: f!("aclrtGetSocName"),
            live_counts: f!("aclsimGetLiveCounts"),
            identity: f!("aclsimIdentity"),
        };
        Sim { lib, api }
    });
    // A test that failed half-way may have left the library initialised.
    unsafe { (sim.api.finalize)() };
    (guard, sim)
}

fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        return "<null>".into();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

impl Sim {
    fn recent_error(&self) -> String {
        c_string(unsafe { (self.api.recent_error)() })
    }

    fn live(&self) -> LiveCounts {
        let mut c = LiveCounts::default();
        assert_eq!(unsafe { (self.api.live_counts)(&mut c) }, 0);
        c
    }

    fn init(&self) {
        assert_eq!(unsafe { (self.api.init)(std::ptr::null()) }, 0, "aclInit: {}", self.recent_error());
    }

    fn finalize(&self) {
        assert_eq!(unsafe { (self.api.finalize)() }, 0, "aclFinalize: {}", self.recent_error());
    }

    fn dev_alloc(&self, size: usize) -> Ptr {
        let mut p = std::ptr::null_mut();
        assert_eq!(unsafe { (self.api.malloc)(&mut p, size, 0) }, 0, "aclrtMalloc: {}", self.recent_error());
        p
    }

    fn load(&self, om: &Path) -> u32 {
        let mut id = 0;
        let code = unsafe { (self.api.load_from_file)(cpath(om).as_ptr(), &mut id) };
        assert_eq!(code, 0, "aclmdlLoadFromFile: {}", self.recent_error());
        id
    }

    /// A dataset of device buffers of the given sizes: (dataset, [(data buffer, device ptr)]).
    fn dataset(&self, sizes: &[usize]) -> (Ptr, Vec<(Ptr, Ptr)>) {
        let ds = unsafe { (self.api.create_dataset)() };
        assert!(!ds.is_null());
        let bufs: Vec<(Ptr, Ptr)> = sizes
            .iter()
            .map(|&size| {
                let mem = self.dev_alloc(size);
                let buf = unsafe { (self.api.create_data_buffer)(mem, size) };
                assert_eq!(unsafe { (self.api.add_dataset_buffer)(ds, buf) }, 0, "{}", self.recent_error());
                (buf, mem)
            })
            .collect();
        (ds, bufs)
    }

    fn destroy_dataset(&self, (ds, bufs): (Ptr, Vec<(Ptr, Ptr)>)) {
        for (buf, mem) in bufs {
            assert_eq!(unsafe { (self.api.destroy_data_buffer)(buf) }, 0);
            assert_eq!(unsafe { (self.api.free)(mem) }, 0);
        }
        assert_eq!(unsafe { (self.api.destroy_dataset)(ds) }, 0);
    }

    /// The canonical flow of docs/ascend-formats.md §11.4 for one run, with full teardown; returns the outputs
    /// and the output aclDataTypes.
    fn run_om(&self, om: &Path, inputs: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<c_int>) {
        let a = &self.api;
        self.init();
        let (results, out_types) = unsafe {
            assert_eq!((a.set_device)(0), 0);
            let (mut ctx, mut stream) = (std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!((a.create_context)(&mut ctx, 0), 0);
            assert_eq!((a.create_stream)(&mut stream), 0);
            let mut mode = -1;
            assert_eq!((a.get_run_mode)(&mut mode), 0);
            assert_eq!(mode, 1, "default run mode is ACL_HOST");
            let id = self.load(om);
            let desc = (a.create_desc)();
            assert_eq!((a.get_desc)(desc, id), 0);
            assert_eq!((a.num_inputs)(desc), inputs.len());
            let in_sizes: Vec<usize> = (0..inputs.len()).map(|i| (a.input_size)(desc, i)).collect();
            let out_sizes: Vec<usize> = (0..(a.num_outputs)(desc)).map(|k| (a.output_size)(desc, k)).collect();
            let out_types: Vec<c_int> = (0..out_sizes.len()).map(|k| (a.output_dtype)(desc, k)).collect();
            let ins = self.dataset(&in_sizes);
            for (((_, mem), data), size) in ins.1.iter().zip(inputs).zip(&in_sizes) {
                assert_eq!(data.len(), *size, "input size");
                assert_eq!((a.memcpy)(*mem, data.len(), data.as_ptr().cast(), data.len(), 1), 0, "H2D: {}", self.recent_error());
            }
            let outs = self.dataset(&out_sizes);
            assert_eq!((a.execute)(id, ins.0, outs.0), 0, "aclmdlExecute: {}", self.recent_error());
            let results: Vec<Vec<u8>> = outs
                .1
                .iter()
                .zip(&out_sizes)
                .map(|((_, mem), &size)| {
                    let mut host = vec![0u8; size];
                    assert_eq!((a.memcpy)(host.as_mut_ptr().cast(), size, *mem, size, 2), 0, "D2H: {}", self.recent_error());
                    host
                })
                .collect();
            self.destroy_dataset(ins);
            self.destroy_dataset(outs);
            assert_eq!((a.unload)(id), 0);
            assert_eq!((a.destroy_desc)(desc), 0);
            assert_eq!((a.destroy_stream)(stream), 0);
            assert_eq!((a.destroy_context)(ctx), 0);
            assert_eq!((a.reset_device)(0), 0);
            (results, out_types)
        };
        self.finalize();
        assert_eq!(self.live(), LiveCounts::default(), "objects left alive after a full teardown");
        (results, out_types)
    }
}

// ---- models -------------------------------------------------------------------------------

const MUL: [f32; C_IN] = [0.1, 1.3, -0.7];
const ADD: [f32; C_IN] = [0.333, -2.2, 5.01];
const DIV: f32 = 3.0;

/// y = (x · m + a) / 3 − x, per channel, elementwise only (exactly rounded in f32).
fn float_model() -> ModelProto {
    let c = C_IN as i64;
    model(
        vec![
            node("Mul", "mul", &["x", "m"], &["t1"], vec![]),
            node("Add", "add", &["t1", "a"], &["t2"], vec![]),
            node("Div", "div", &["t2", "d"], &["t3"], vec![]),
            node("Sub", "sub", &["t3", "x"], &["y"], vec![]),
        ],
        vec![
            tensor("m", &[1, c, 1, 1], TensorData::F32(MUL.to_vec())),
            tensor("a", &[1, c, 1, 1], TensorData::F32(ADD.to_vec())),
            tensor("d", &[], TensorData::F32(vec![DIV])),
        ],
        vec![value_info("x", DataType::Float, &[-1, c, H as i64, W as i64])],
        vec![value_info("y", DataType::Float, &[-1, c, H as i64, W as i64])],
        13,
    )
}

/// The fp16 device computation of `float_model`, rounding the input, the weights and every
/// op output; `round: false` gives the fp32 result.
fn float_reference(x: &[f32], round: bool) -> Vec<f32> {
    let r = |v: f32| if round { f16::from_f32(v).to_f32() } else { v };
    let hw = H * W;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / hw) % C_IN;
            let xv = r(v);
            let t1 = r(xv * r(MUL[c]));
            let t2 = r(t1 + r(ADD[c]));
            let t3 = r(t2 / r(DIV));
            r(t3 - xv)
        })
        .collect()
}

fn input_values(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 1.3).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_from(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn save(dir: &Path, name: &str, m: &ModelProto) -> PathBuf {
    let p = dir.join(name);
    save_model(m, &p, &SaveOptions::default()).unwrap();
    p
}

fn build(dir: &Path, onnx: &Path, om: &str, precision: SimPrecision, aipp: Option<&AippConfig>, fp16_out: bool) -> PathBuf {
    let shapes = HashMap::from([("x".to_string(), vec![1, C_IN as i64, H as i64, W as i64])]);
    let out = dir.join(om);
    let b = SimulatedBuild {
        onnx_path: onnx,
        precision,
        input_shapes: &shapes,
        soc_version: "Ascend310P3",
        aipp,
        output_type_fp16: fp16_out,
        cmdline: format!("ascend-ptq build --simulate {}", onnx.display()),
    };
    write_simulated_om(&out, &b).unwrap();
    out
}

fn rgb_aipp() -> AippConfig {
    AippConfig {
        input_format: InputFormat::Rgb888U8,
        src_width: W,
        src_height: H,
        crop: None,
        csc_switch: false,
        rbuv_swap_switch: true,
        matrix: None,
        input_bias: None,
        mean_chn: vec![0, 0, 0],
        min_chn: vec![123.675, 116.28, 103.53],
        var_reci_chn: vec![0.0171248, 0.017507, 0.0174292],
    }
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn exports_every_contract_symbol_and_says_it_is_a_simulator() {
    let (_lock, sim) = sim();
    for name in CONTRACT_SYMBOLS {
        let sym = format!("{name}\0");
        // SAFETY: only the address is looked up.
        assert!(unsafe { sim.lib.get::<*const c_void>(sym.as_bytes()) }.is_ok(), "{name} is not exported");
    }
    assert_eq!(c_string(unsafe { (sim.api.identity)() }), format!("ascend-ptq ACL simulator {}", ascend_ptq::VERSION));
    sim.init();
    assert_eq!(c_string(unsafe { (sim.api.soc_name)() }), "Ascend310P3-sim");
    sim.finalize();
}

#[test]
fn int8_om_equals_the_engine_on_the_deploy_model_bit_for_bit() {
    let (_lock, sim) = sim();
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "deploy.onnx", &deploy_model());
    let om = build(dir.path(), &onnx, "net_int8.om", SimPrecision::Int8, None, false);

    let x = input_values(C_IN * H * W);
    let session = Session::new(&deploy_model(), &HashMap::new()).unwrap();
    let input = Tensor::from_le_bytes(DataType::Float, &[1, C_IN, H, W], &f32_bytes(&x), "x").unwrap();
    let expected = session.run(HashMap::from([("x".to_string(), input)])).unwrap().remove(0).1.to_le_bytes();

    let (outs, types) = sim.run_om(&om, &[f32_bytes(&x)]);
    assert_eq!(types, vec![0], "ACL_FLOAT output");
    assert_eq!(outs[0], expected, "simulator output differs from the engine");
    assert!(f32_from(&outs[0]).iter().any(|v| *v != 0.0));

    let m = read_simulated_om_file(&om).unwrap();
    assert_eq!((m.precision, m.soc_version.as_str(), m.inputs[0].desc.size_bytes), (SimPrecision::Int8, "Ascend310P3", 4 * C_IN * H * W));
}

#[test]
fn fp16_om_rounds_every_op_and_differs_from_fp32() {
    let (_lock, sim) = sim();
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "float.onnx", &float_model());
    let x = input_values(C_IN * H * W);
    let fp16 = float_reference(&x, true);
    let fp32 = float_reference(&x, false);
    assert_ne!(fp16, fp32);

    let om = build(dir.path(), &onnx, "net_fp16.om", SimPrecision::Fp16, None, false);
    let (outs, types) = sim.run_om(&om, &[f32_bytes(&x)]);
    assert_eq!(types, vec![0]);
    let got = f32_from(&outs[0]);
    let mismatches: Vec<usize> = (0..got.len()).filter(|&i| got[i].to_bits() != fp16[i].to_bits()).collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} values differ from the per-op fp16 reference, first at {:?}",
        mismatches.len(),
        got.len(),
        mismatches.first()
    );
    assert!(got.iter().zip(&fp32).filter(|(a, b)| a != b).count() > got.len() / 4, "fp16 emulation barely differs from fp32");

    // --output_type FP16: the same values, delivered as fp16.
    let om16 = build(dir.path(), &onnx, "net_fp16_out16.om", SimPrecision::Fp16, None, true);
    let (outs, types) = sim.run_om(&om16, &[f32_bytes(&x)]);
    assert_eq!(types, vec![1], "ACL_FLOAT16 output");
    let halves: Vec<u8> = fp16.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
    assert_eq!(outs[0], halves);
}

#[test]
fn static_aipp_input_takes_the_uint8_frame() {
    let (_lock, sim) = sim();
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "float.onnx", &float_model());
    let cfg = rgb_aipp();
    let om = build(dir.path(), &onnx, "net_aipp.om", SimPrecision::Fp16, Some(&cfg), false);
    let frame: Vec<u8> = (0..H * W * 3).map(|i| ((i * 97 + 13) % 256) as u8).collect();
    let expected = float_reference(&apply_aipp(&cfg, &frame), true);

    let a = &sim.api;
    sim.init();
    let id = sim.load(&om);
    let desc = unsafe { (a.create_desc)() };
    unsafe {
        assert_eq!((a.get_desc)(desc, id), 0);
        assert_eq!((a.input_size)(desc, 0), H * W * 3);
        assert_eq!((a.input_dtype)(desc, 0), 4, "ACL_UINT8");
        assert_eq!((a.input_format)(desc, 0), 1, "ACL_FORMAT_NHWC");
        let mut dims = IoDims { name: [0; 128], dim_count: 0, dims: [0; 128] };
        assert_eq!((a.input_dims)(desc, 0, &mut dims), 0);
        assert_eq!(&dims.dims[..dims.dim_count], &[1, H as i64, W as i64, 3]);
        assert_eq!(c_string(dims.name.as_ptr()), "x");
        assert_eq!(c_string((a.input_name)(desc, 0)), "x");
        let (mut ty, mut attached) = (-1, 0usize);
        assert_eq!((a.aipp_type)(id, 0, &mut ty, &mut attached), 0);
        assert_eq!(ty, 1, "ACL_DATA_WITH_STATIC_AIPP");
        assert_eq!((a.destroy_desc)(desc), 0);
        assert_eq!((a.unload)(id), 0);
    }
    sim.finalize();

    let (outs, _) = sim.run_om(&om, &[frame]);
    assert_eq!(f32_from(&outs[0]), expected);
}

/// Checks the code of one failing call and its aclGetRecentErrMsg.
fn expect_error(sim: &Sim, code: E, expected: E, needle: &str) {
    assert_eq!(code, expected, "message: {}", sim.recent_error());
    let msg = sim.recent_error();
    assert!(msg.contains(needle), "message {msg:?} should contain {needle:?}");
}

#[test]
fn state_rules_and_error_codes_match_acl() {
    let (_lock, sim) = sim();
    let a = &sim.api;
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "deploy.onnx", &deploy_model());
    let om = build(dir.path(), &onnx, "net.om", SimPrecision::Int8, None, false);
    let mut id = 0u32;
    unsafe {
        // Before aclInit.
        let mut p = std::ptr::null_mut();
        expect_error(sim, (a.malloc)(&mut p, 16, 0), 100001, "aclInit");
        // Init twice, finalize twice.
        sim.init();
        expect_error(sim, (a.init)(std::ptr::null()), 100002, "already");
        sim.finalize();
        expect_error(sim, (a.finalize)(), 100037, "already");
        // Injected failure.
        std::env::set_var("ASCEND_PTQ_SIM_FAIL", "aclInit:500001");
        let code = (a.init)(std::ptr::null());
        std::env::remove_var("ASCEND_PTQ_SIM_FAIL");
        expect_error(sim, code, 500001, "ASCEND_PTQ_SIM_FAIL");
        expect_error(sim, (a.set_device)(0), 100001, "aclInit");
        sim.init();
        expect_error(sim, (a.set_device)(3), 107001, "device 3");

        // Models: unknown id, missing file, garbage, a real OM.
        expect_error(sim, (a.unload)(4242), 100011, "4242");
        expect_error(sim, (a.execute)(4242, std::ptr::null(), std::ptr::null_mut()), 100011, "4242");
        let missing = dir.path().join("missing.om");
        expect_error(sim, (a.load_from_file)(cpath(&missing).as_ptr(), &mut id), 145002, "missing.om");
        let garbage = dir.path().join("garbage.om");
        std::fs::write(&garbage, b"not an om at all").unwrap();
        expect_error(sim, (a.load_from_file)(cpath(&garbage).as_ptr(), &mut id), 100013, "IMOD");
        let real = dir.path().join("real.om");
        std::fs::write(&real, real_om_bytes(&om)).unwrap();
        expect_error(sim, (a.load_from_file)(cpath(&real).as_ptr(), &mut id), 100013, "is a real Ascend OM built by ATC");
        let bytes = std::fs::read(&real).unwrap();
        expect_error(
            sim,
            (a.load_from_mem)(bytes.as_ptr().cast(), bytes.len(), &mut id),
            100013,
            "simulated OMs written by `ascend-ptq build --simulate`",
        );

        let (mut work, mut weight) = (0usize, 0usize);
        assert_eq!((a.query_size)(cpath(&om).as_ptr(), &mut work, &mut weight), 0);
        assert_eq!(work, 4 * (C_IN + C_OUT) * H * W, "input + output bytes");
        assert_eq!(weight, ascend_ptq::onnx::load_model(&onnx).unwrap().encoded_len(), "the embedded ONNX model");
        expect_error(sim, (a.query_size)(cpath(&real).as_ptr(), &mut work, &mut weight), 100013, "real Ascend OM");

        // The SoC name follows ASCEND_PTQ_SIM_SOC until a model carrying one is loaded.
        sim.finalize();
        std::env::set_var("ASCEND_PTQ_SIM_SOC", "Ascend310B4");
        sim.init();
        std::env::remove_var("ASCEND_PTQ_SIM_SOC");
        assert_eq!(c_string((a.soc_name)()), "Ascend310B4-sim");
        id = sim.load(&om);
        assert_eq!(c_string((a.soc_name)()), "Ascend310P3-sim");
        assert_eq!((a.unload)(id), 0);

        // Memory: sizes, kinds, double free.
        let dev = sim.dev_alloc(64);
        let mut host = [0u8; 64];
        expect_error(sim, (a.memcpy)(dev, 32, host.as_ptr().cast(), 64, 1), 100000, "destMax");
        expect_error(sim, (a.memcpy)(host.as_mut_ptr().cast(), 64, host.as_ptr().cast(), 64, 1), 100000, "dst is host memory");
        expect_error(sim, (a.memcpy)(host.as_mut_ptr().cast(), 64, host.as_ptr().cast(), 64, 2), 100000, "src is host memory");
        expect_error(sim, (a.memcpy)(dev, 128, host.as_ptr().cast(), 128, 1), 100000, "overrun");
        assert_eq!((a.memcpy)(dev, 64, host.as_ptr().cast(), 64, 1), 0);
        assert_eq!((a.free)(dev), 0);
        expect_error(sim, (a.free)(dev), 100000, "already freed");
        expect_error(sim, (a.memcpy)(host.as_mut_ptr().cast(), 64, dev, 64, 2), 100000, "use after free");
        expect_error(sim, (a.free)(host.as_mut_ptr().cast()), 100000, "not the start of device memory");
        let mut pinned = std::ptr::null_mut();
        assert_eq!((a.malloc_host)(&mut pinned, 8), 0);
        assert_eq!((a.free_host)(pinned), 0);

        // Execution: input count and size, destroyed buffers.
        id = sim.load(&om);
        let size = 4 * C_IN * H * W;
        let out_size = 4 * C_OUT * H * W;
        let outs = sim.dataset(&[out_size]);
        let wrong = sim.dataset(&[size - 4]);
        expect_error(
            sim,
            (a.execute)(id, wrong.0, outs.0),
            100017,
            &format!("input 0 'x': the buffer has {} bytes, the model needs exactly {size}", size - 4),
        );
        sim.destroy_dataset(wrong);
        let two = sim.dataset(&[size, size]);
        expect_error(sim, (a.execute)(id, two.0, outs.0), 100017, "2 buffers, the model has 1 inputs");
        sim.destroy_dataset(two);
        let ins = sim.dataset(&[size]);
        assert_eq!((a.execute)(id, ins.0, outs.0), 0, "{}", sim.recent_error());
        assert_eq!((a.destroy_data_buffer)(ins.1[0].0), 0);
        expect_error(sim, (a.execute)(id, ins.0, outs.0), 100000, "use after free");
        expect_error(sim, (a.destroy_data_buffer)(ins.1[0].0), 100000, "already destroyed");
        assert_eq!((a.free)(ins.1[0].1), 0);
        assert_eq!((a.destroy_dataset)(ins.0), 0);
        sim.destroy_dataset(outs);
        assert_eq!((a.unload)(id), 0);
        expect_error(sim, (a.unload)(id), 100011, "not loaded");

        // Run mode from the environment; in device mode (RC boards) the application's memory
        // is device memory, so a DEVICE_TO_DEVICE copy from it is fine there and only there.
        let dev = sim.dev_alloc(64);
        expect_error(sim, (a.memcpy)(dev, 64, host.as_ptr().cast(), 64, 3), 100000, "src is host memory");
        std::env::set_var("ASCEND_PTQ_SIM_RUN_MODE", "device");
        let mut mode = -1;
        assert_eq!((a.get_run_mode)(&mut mode), 0);
        let d2d = (a.memcpy)(dev, 64, host.as_ptr().cast(), 64, 3);
        std::env::remove_var("ASCEND_PTQ_SIM_RUN_MODE");
        assert_eq!(mode, 0, "ACL_DEVICE");
        assert_eq!(d2d, 0, "{}", sim.recent_error());
        assert_eq!((a.free)(dev), 0);
    }
    sim.finalize();
    assert_eq!(sim.live(), LiveCounts::default());
}

/// The same container with the simulated marker removed: what a real ATC OM looks like to
/// the loader (no `ascend_ptq_simulated` attribute).
fn real_om_bytes(simulated: &Path) -> Vec<u8> {
    let bytes = std::fs::read(simulated).unwrap();
    let info = ascend_ptq::device::om::om_info_from_bytes(simulated, &bytes).unwrap();
    let part = |kind: u32| {
        let p = info.partitions.iter().find(|p| p.kind == kind).unwrap();
        bytes[p.file_offset as usize..(p.file_offset + p.size) as usize].to_vec()
    };
    let mut def = ModelDef::decode(part(0).as_slice()).unwrap();
    def.attr.retain(|k, _| !k.starts_with("ascend_ptq"));
    om_container_bytes("real", &[(0, def.encode_to_vec()), (1, part(1))])
}

#[test]
fn om_info_reports_simulated_oms() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "float.onnx", &float_model());
    let om = build(dir.path(), &onnx, "net_aipp.om", SimPrecision::Fp16, Some(&rgb_aipp()), true);
    let out = common::cli().arg("om-info").arg(&om).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Simulated:   yes (precision fp16, ascend-ptq {})", ascend_ptq::VERSION)), "{text}");
    assert!(text.contains("AIPP:        static"), "{text}");
    assert!(text.contains("SoC version: Ascend310P3"), "{text}");

    let out = common::cli().arg("om-info").arg(&om).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["simulated"], serde_json::json!({"precision": "fp16", "output_type": "FP16", "version": ascend_ptq::VERSION}));
    let m = &v["models"][0];
    assert_eq!(m["inputs"][0]["dtype"], "UINT8");
    assert_eq!(m["inputs"][0]["shape"], serde_json::json!([1, H, W, 3]));
    assert_eq!(m["outputs"][0]["dtype"], "FLOAT16");

    let real = dir.path().join("real.om");
    std::fs::write(&real, real_om_bytes(&om)).unwrap();
    let out = common::cli().arg("om-info").arg(&real).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["simulated"], serde_json::Value::Null);
}

#[test]
fn simulated_om_build_refuses_mismatched_precision_and_dynamic_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let float = save(dir.path(), "float.onnx", &float_model());
    let deploy = save(dir.path(), "deploy.onnx", &deploy_model());
    let empty = HashMap::new();
    let b = |onnx: &Path, precision, shapes: &HashMap<String, Vec<i64>>| {
        let b = SimulatedBuild {
            onnx_path: onnx,
            precision,
            input_shapes: shapes,
            soc_version: "Ascend310",
            aipp: None,
            output_type_fp16: false,
            cmdline: String::new(),
        };
        write_simulated_om(&dir.path().join("x.om"), &b).unwrap_err().to_string()
    };
    let e = b(&float, SimPrecision::Int8, &empty);
    assert!(e.contains("float.onnx") && e.contains("no AscendQuant"), "{e}");
    let e = b(&deploy, SimPrecision::Fp16, &empty);
    assert!(e.contains("deploy model (1 AscendQuant ops)"), "{e}");
    let e = b(&float, SimPrecision::Fp16, &empty);
    assert!(e.contains("input 'x' has dynamic dimensions"), "{e}");
    assert!(!dir.path().join("x.om").exists());
}

/// PP-OCRv4 det as an fp16 simulated OM: the interface comes from shape inference, and the
/// fp16 emulation stays close to our fp32 engine output without being identical to it.
#[test]
fn real_detection_model_runs_in_fp16() {
    let Some(det) = common::asset(common::DET) else { return };
    let (_lock, sim) = sim();
    let dir = tempfile::tempdir().unwrap();
    let (h, w) = (96usize, 128usize);
    let shapes = HashMap::from([("x".to_string(), vec![1, 3, h as i64, w as i64])]);
    let om = dir.path().join("det_fp16.om");
    let b = SimulatedBuild {
        onnx_path: &det,
        precision: SimPrecision::Fp16,
        input_shapes: &shapes,
        soc_version: "Ascend310B1",
        aipp: None,
        output_type_fp16: false,
        cmdline: "test".into(),
    };
    write_simulated_om(&om, &b).unwrap();
    let m = read_simulated_om_file(&om).unwrap();
    assert_eq!(m.outputs.len(), 1);
    assert_eq!(m.outputs[0].dims, vec![1, 1, h as i64, w as i64]);

    let x: Vec<f32> = input_values(3 * h * w);
    let model = ascend_ptq::onnx::load_model(&det).unwrap();
    let session = Session::new(&model, &shapes).unwrap();
    let input = Tensor::from_le_bytes(DataType::Float, &[1, 3, h, w], &f32_bytes(&x), "x").unwrap();
    let fp32 = f32_from(&session.run(HashMap::from([("x".to_string(), input)])).unwrap().remove(0).1.to_le_bytes());

    let (outs, _) = sim.run_om(&om, &[f32_bytes(&x)]);
    let fp16 = f32_from(&outs[0]);
    let dot: f64 = fp16.iter().zip(&fp32).map(|(a, b)| *a as f64 * *b as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&fp16) * norm(&fp32));
    let max_abs = fp16.iter().zip(&fp32).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("PP-OCRv4 det {h}x{w}, simulated fp16 vs engine fp32: cosine {cosine:.6}, max abs error {max_abs:e}");
    assert!(cosine > 0.999, "cosine {cosine}");
    assert!(max_abs > 0.0 && max_abs < 0.1, "max abs error {max_abs}");
    assert_eq!(c_string(unsafe { (sim.api.soc_name)() }), "<null>", "after aclFinalize");
}

/// YUV420SP (NV12) frames: the input is N·H·W·1.5 bytes, described as [N, H·3/2, W, 1].
#[test]
fn static_aipp_yuv420sp_input_size_and_values() {
    let (_lock, sim) = sim();
    let dir = tempfile::tempdir().unwrap();
    let onnx = save(dir.path(), "float.onnx", &float_model());
    let cfg = AippConfig {
        input_format: InputFormat::Yuv420SpU8,
        csc_switch: true,
        rbuv_swap_switch: false,
        matrix: Some(ascend_ptq::device::aipp::YUV_TO_RGB_FULL),
        input_bias: Some(ascend_ptq::device::aipp::YUV_INPUT_BIAS),
        ..rgb_aipp()
    };
    let om = build(dir.path(), &onnx, "net_nv12.om", SimPrecision::Fp16, Some(&cfg), false);
    let m = read_simulated_om_file(&om).unwrap();
    assert_eq!(m.inputs[0].desc.size_bytes, H * W * 3 / 2);
    assert_eq!(m.inputs[0].desc.dims, vec![1, (H * 3 / 2) as i64, W as i64, 1]);
    assert_eq!(m.inputs[0].model_shape, vec![1, C_IN as i64, H as i64, W as i64]);
    let frame: Vec<u8> = (0..H * W * 3 / 2).map(|i| ((i * 53 + 7) % 256) as u8).collect();
    let expected = float_reference(&apply_aipp(&cfg, &frame), true);
    let (outs, _) = sim.run_om(&om, &[frame]);
    assert_eq!(f32_from(&outs[0]), expected);
}

/// The ACL bindings' safe layer (`ascend_ptq::device::acl`) over the simulator: a separate
/// copy of the library (its own state, as the safe layer initialises once per process),
/// the int8 OM and the AIPP OM run with the engine's results, and every object the safe
/// layer created is gone after the drops.
#[test]
fn safe_bindings_run_simulated_oms() {
    use ascend_ptq::device::acl::{Acl, AippType};
    let (_lock, sim) = sim();
    let _ = sim;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("libascendcl_sim_safe.so");
    std::fs::copy(sim_path_cached(), &copy).unwrap();
    let onnx = save(dir.path(), "deploy.onnx", &deploy_model());
    let om = build(dir.path(), &onnx, "net_int8.om", SimPrecision::Int8, None, false);
    let float = save(dir.path(), "float.onnx", &float_model());
    let cfg = rgb_aipp();
    let aipp_om = build(dir.path(), &float, "net_aipp.om", SimPrecision::Fp16, Some(&cfg), false);

    let x = input_values(C_IN * H * W);
    let session = Session::new(&deploy_model(), &HashMap::new()).unwrap();
    let input = Tensor::from_le_bytes(DataType::Float, &[1, C_IN, H, W], &f32_bytes(&x), "x").unwrap();
    let expected = session.run(HashMap::from([("x".to_string(), input)])).unwrap().remove(0).1.to_le_bytes();
    let frame: Vec<u8> = (0..H * W * 3).map(|i| ((i * 31 + 5) % 256) as u8).collect();
    let expected_aipp = f32_bytes(&float_reference(&apply_aipp(&cfg, &frame), true));
    {
        let acl = Acl::open(Some(&copy)).unwrap();
        assert_eq!(acl.simulator_identity(), Some(format!("ascend-ptq ACL simulator {}", ascend_ptq::VERSION).as_str()));
        let ctx = acl.device(0).unwrap().create_context().unwrap();
        let mut model = ctx.load_model(&om).unwrap();
        assert_eq!(acl.soc_name().as_deref(), Some("Ascend310P3-sim"));
        assert_eq!(model.run(&[&f32_bytes(&x)]).unwrap(), vec![expected]);
        let mut aipp = ctx.load_model(&aipp_om).unwrap();
        assert_eq!(aipp.desc().inputs()[0].aipp, AippType::Static);
        assert_eq!(aipp.desc().inputs()[0].size, H * W * 3);
        assert_eq!(aipp.run(&[&frame]).unwrap(), vec![expected_aipp]);
        let e = model.run(&[&frame]).unwrap_err().to_string();
        assert!(e.contains("x"), "{e}");
    }
    // The copy's own counters.
    let lib = unsafe { libloading::Library::new(&copy) }.unwrap();
    let counts: libloading::Symbol<unsafe extern "C" fn(*mut LiveCounts) -> c_int> = unsafe { lib.get(b"aclsimGetLiveCounts\0") }.unwrap();
    let mut c = LiveCounts::default();
    assert_eq!(unsafe { counts(&mut c) }, 0);
    assert_eq!(c, LiveCounts::default(), "objects the safe layer left alive");
}

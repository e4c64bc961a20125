//! The AscendCL layer (`ascend_ptq::device::acl`) against a tiny fake libascendcl.so built here
//! from ffi/tests/acl_fake.c: library discovery, missing symbols, failing calls, input checks,
//! and that every object the safe layer creates is destroyed (the fake's live-object counters,
//! read through the simulator's `aclsimGetLiveCounts`, are back to zero after the drops).
//! Each test loads its own copy of the fake (a different file is a separate library instance).

mod common;

use common::LiveCounts;
use std::ffi::{CString, c_char, c_int};
use std::path::{Path, PathBuf};

use ascend_ptq::device::acl::{Acl, AippType, DataType, Error, Format, LibrarySearch, RunMode};

/// Compiles the fake once per variant (`defines` are -D flags) and returns the shared object.
fn build_fake(variant: &str, defines: &[&str]) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, lib)) = built.iter().find(|(v, _)| v == variant) {
        return lib.clone();
    }
    let root = common::repo_root();
    let out_dir = common::target_dir().join("c-tests/acl-fake");
    std::fs::create_dir_all(&out_dir).unwrap();
    let lib = out_dir.join(format!("libacl_fake_{variant}.so"));
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .opt_level(0)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .get_compiler();
    let status = compiler
        .to_command()
        .args(["-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-I")
        .arg(root.join("ffi/acl"))
        .arg(root.join("ffi/tests/acl_fake.c"))
        .arg("-o")
        .arg(&lib)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling ffi/tests/acl_fake.c ({variant}) failed");
    built.push((variant.to_string(), lib.clone()));
    lib
}

/// A private copy of the fake, named libascendcl.so in `dir`, plus handles on its test controls.
struct Fake {
    path: PathBuf,
    lib: libloading::Library,
}

impl Fake {
    fn new(dir: &Path, variant: &str, defines: &[&str]) -> Fake {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("libascendcl.so");
        std::fs::copy(build_fake(variant, defines), &path).unwrap();
        let lib = unsafe { libloading::Library::new(&path) }.expect("load the fake");
        Fake { path, lib }
    }

    fn standard(dir: &Path) -> Fake {
        Fake::new(dir, "standard", &[])
    }

    fn search(&self) -> LibrarySearch {
        LibrarySearch { explicit: Some((self.path.clone(), "test".into())), dirs: Vec::new(), loader_default: false }
    }

    fn open(&self) -> Acl {
        Acl::open_with(&self.search()).expect("open the fake")
    }

    fn live(&self) -> LiveCounts {
        let mut counts = LiveCounts::default();
        let f = unsafe { self.lib.get::<unsafe extern "C" fn(*mut LiveCounts) -> c_int>(b"aclsimGetLiveCounts\0") }.unwrap();
        assert_eq!(unsafe { f(&mut counts) }, 0);
        counts
    }

    fn set_fail(&self, symbol: &str, code: i32) {
        let f = unsafe { self.lib.get::<unsafe extern "C" fn(*const c_char, c_int)>(b"aclfakeSetFail\0") }.unwrap();
        let symbol = CString::new(symbol).unwrap();
        unsafe { f(symbol.as_ptr(), code) };
    }

    fn set_run_mode(&self, mode: c_int) {
        let f = unsafe { self.lib.get::<unsafe extern "C" fn(c_int)>(b"aclfakeSetRunMode\0") }.unwrap();
        unsafe { f(mode) };
    }

    fn memcpy_calls(&self) -> usize {
        let f = unsafe { self.lib.get::<unsafe extern "C" fn() -> usize>(b"aclfakeMemcpyCount\0") }.unwrap();
        unsafe { f() }
    }
}

/// A fake model: input `x` f32 NCHW [1,3,2,2] (48 bytes) with static AIPP, input `y` u8 NHWC
/// [1,2,2,3] (12 bytes); outputs `o0` f32 [1,4] (16 bytes) and `o1` f16 ND [5] (10 bytes).
fn write_model(dir: &Path) -> PathBuf {
    let path = dir.join("model.om");
    std::fs::write(&path, "FAKEOM\nin x 0 0 1 4 1 3 2 2\nin y 4 1 0 4 1 2 2 3\nout o0 0 2 0 2 1 4\nout o1 1 2 0 1 5\n").unwrap();
    path
}

/// What the fake computes: byte j of output k = input0[j % len0] + k + 1.
fn expected_output(input0: &[u8], k: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| input0[j % input0.len()].wrapping_add(k as u8 + 1)).collect()
}

#[test]
fn library_not_found_lists_every_place_and_says_how_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let (toolkit, home) = (tmp.path().join("toolkit"), tmp.path().join("home"));
    let search = LibrarySearch::with_env(None, |name| match name {
        "ASCEND_TOOLKIT_HOME" => Some(toolkit.clone().into()),
        "ASCEND_HOME_PATH" => Some(home.clone().into()),
        _ => None,
    });
    let err = match Acl::open_with(&search) {
        Ok(acl) => {
            eprintln!("*** SKIPPED: a libascendcl.so is installed here ({}) ***", acl.library().display());
            return;
        }
        Err(e) => e,
    };
    assert!(matches!(err, Error::LibraryNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    let places = [
        format!("{}/lib64/libascendcl.so ($ASCEND_TOOLKIT_HOME/lib64)", toolkit.display()),
        format!("{}/lib64/libascendcl.so ($ASCEND_HOME_PATH/lib64)", home.display()),
        "/usr/local/Ascend/ascend-toolkit/latest/lib64/libascendcl.so".to_string(),
        "/usr/local/Ascend/nnrt/latest/lib64/libascendcl.so".to_string(),
        "libascendcl.so (dynamic loader search path)".to_string(),
    ];
    let mut last = 0;
    for place in &places {
        let at = msg.find(place.as_str()).unwrap_or_else(|| panic!("message lacks {place}:\n{msg}"));
        assert!(at >= last, "places out of search order:\n{msg}");
        last = at;
    }
    assert!(msg.contains("set_env.sh") && msg.contains("--acl-lib") && msg.contains("ASCEND_PTQ_ACL_LIB"), "{msg}");

    // An explicit path is used alone, and its failure says why.
    let missing = tmp.path().join("nowhere/libascendcl.so");
    let err = Acl::open(Some(&missing)).err().expect("no library there");
    let msg = err.to_string();
    assert!(msg.contains(&format!("{} (--acl-lib): no such file", missing.display())), "{msg}");
    assert_eq!(msg.lines().filter(|l| l.starts_with("  ")).count(), 1, "explicit path must not fall back:\n{msg}");

    // A file that exists but is no shared library: the loader's reason is kept.
    let junk = tmp.path().join("libascendcl.so");
    std::fs::write(&junk, "not ELF").unwrap();
    let msg = Acl::open(Some(&junk)).err().expect("not loadable").to_string();
    assert!(msg.contains(&format!("{} (--acl-lib): dlopen failed: ", junk.display())) && msg.contains("libascendcl.so"), "{msg}");
}

#[test]
fn search_order_and_explicit_sources() {
    let env = |name: &str| match name {
        "ASCEND_PTQ_ACL_LIB" => Some("/env/libascendcl.so".into()),
        "ASCEND_TOOLKIT_HOME" => Some("/tk".into()),
        _ => None,
    };
    let s = LibrarySearch::with_env(None, env);
    assert_eq!(s.explicit, Some((PathBuf::from("/env/libascendcl.so"), "$ASCEND_PTQ_ACL_LIB".into())));
    let s = LibrarySearch::with_env(Some(Path::new("/arg/lib.so")), env);
    assert_eq!(s.explicit, Some((PathBuf::from("/arg/lib.so"), "--acl-lib".into())), "the argument beats the variable");
    let s = LibrarySearch::with_env(None, |name| (name == "ASCEND_TOOLKIT_HOME").then(|| "/tk".into()));
    assert_eq!(s.explicit, None);
    let dirs: Vec<_> = s.dirs.iter().map(|(d, _)| d.to_str().unwrap()).collect();
    assert_eq!(dirs, ["/tk/lib64", "/usr/local/Ascend/ascend-toolkit/latest/lib64", "/usr/local/Ascend/nnrt/latest/lib64"]);
    assert!(s.loader_default);
}

#[test]
fn library_found_in_toolkit_dir_and_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let lib64 = tmp.path().join("toolkit/lib64");
    let fake = Fake::standard(&lib64);
    let toolkit = tmp.path().join("toolkit");
    let search = LibrarySearch::with_env(None, |name| (name == "ASCEND_TOOLKIT_HOME").then(|| toolkit.clone().into()));
    let acl = Acl::open_with(&search).expect("found through $ASCEND_TOOLKIT_HOME");
    assert_eq!(acl.library(), fake.path);
    assert_eq!(acl.version().unwrap(), (1, 2, 3));
    assert_eq!(acl.device_count().unwrap(), 1);
    assert_eq!(acl.soc_name().as_deref(), Some("FakeSoc"));
    assert_eq!(acl.simulator_identity(), None, "the fake is not the simulator");
    // An explicit folder means its libascendcl.so; the same library is initialised only once.
    let again = Acl::open(Some(&lib64)).expect("explicit folder");
    assert_eq!(again.library(), fake.path);
}

#[test]
fn missing_required_symbol_is_named_with_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::new(tmp.path(), "no_execute", &["FAKE_OMIT_EXECUTE"]);
    let err = Acl::open_with(&fake.search()).err().expect("a required symbol is missing");
    match &err {
        Error::MissingSymbols { file, symbols } => {
            assert_eq!(file, &fake.path);
            assert_eq!(symbols, &["aclmdlExecute"]);
        }
        other => panic!("wrong error: {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("aclmdlExecute") && msg.contains(&fake.path.display().to_string()), "{msg}");
}

#[test]
fn acl_init_failure_surfaces_code_name_and_recent_message() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(tmp.path());
    fake.set_fail("aclInit", 500001);
    let err = Acl::open_with(&fake.search()).err().expect("aclInit fails");
    let acl_err = err.acl().expect("an ACL call error").clone();
    assert_eq!((acl_err.call, acl_err.code, acl_err.name), ("aclInit", 500001, "ACL_ERROR_FAILURE"));
    assert_eq!(err.to_string(), "aclInit failed: 500001 ACL_ERROR_FAILURE (fake: injected failure of aclInit)");
    // A failed init is not remembered: the next open initialises for real.
    fake.set_fail("", 0);
    let acl = Acl::open_with(&fake.search()).expect("aclInit succeeds now");
    let dev = acl.device(0).unwrap();
    drop(dev);
    assert_eq!(fake.live(), LiveCounts::default());
}

#[test]
fn run_model_host_mode_checks_description_outputs_and_frees_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(&tmp.path().join("lib"));
    let model_path = write_model(tmp.path());
    {
        let acl = fake.open();
        let device = acl.device(0).unwrap();
        let ctx = device.create_context().unwrap();
        assert_eq!(ctx.run_mode(), RunMode::Host);
        let stream = ctx.create_stream().unwrap();
        stream.synchronize().unwrap();
        let mut model = ctx.load_model(&model_path).unwrap();

        let inputs = model.desc().inputs();
        assert_eq!(inputs.len(), 2);
        assert_eq!((inputs[0].name.as_str(), inputs[0].dims.as_slice(), inputs[0].size), ("x", &[1, 3, 2, 2][..], 48));
        assert_eq!((inputs[0].dtype, inputs[0].format, inputs[0].aipp), (DataType::Float, Format::Nchw, AippType::Static));
        assert_eq!(
            (inputs[1].name.as_str(), inputs[1].dtype, inputs[1].format, inputs[1].aipp),
            ("y", DataType::Uint8, Format::Nhwc, AippType::None)
        );
        let outputs = model.desc().outputs();
        assert_eq!(
            (outputs[0].name.as_str(), outputs[0].dims.as_slice(), outputs[0].size, outputs[0].format),
            ("o0", &[1, 4][..], 16, Format::Nd)
        );
        assert_eq!((outputs[1].name.as_str(), outputs[1].dtype, outputs[1].size), ("o1", DataType::Float16, 10));
        assert_eq!(model.desc().input_index("y"), Some(1));
        assert_eq!(model.desc().input_index("nope"), None);

        let live = fake.live();
        let expected_live = LiveCounts {
            device_buffers: 4,
            data_buffers: 4,
            datasets: 2,
            model_descs: 1,
            models: 1,
            contexts: 1,
            streams: 1,
            devices_set: 1,
            ..Default::default()
        };
        assert_eq!(live, expected_live);

        let x: Vec<u8> = (0..48).map(|i| i * 5).collect();
        let y = vec![9u8; 12];
        for round in 0..2 {
            let out = model.run(&[&x, &y]).unwrap();
            assert_eq!(out, vec![expected_output(&x, 0, 16), expected_output(&x, 1, 10)], "round {round}");
        }
        assert_eq!(fake.memcpy_calls(), 2 * (2 + 2), "host mode copies every input and output");
        assert_eq!(fake.live(), expected_live, "I/O buffers are allocated once, at load");

        let mut buf = ctx.alloc(8).unwrap();
        buf.fill(7).unwrap();
        assert_eq!(buf.to_vec().unwrap(), vec![7u8; 8]);
        buf.copy_from_host(&[1, 2, 3]).unwrap();
        assert_eq!(buf.to_vec().unwrap(), [1, 2, 3, 7, 7, 7, 7, 7]);
        assert!(matches!(buf.copy_from_host(&[0; 9]), Err(Error::BufferTooSmall { len: 8, given: 9 })));
        // Handles are dropped in an arbitrary order: each keeps what it needs alive.
        drop(ctx);
        drop(device);
        drop(stream);
        assert_eq!(fake.live().contexts, 1, "the model and buffer still hold the context");
        drop(buf);
        drop(model);
    }
    assert_eq!(fake.live(), LiveCounts::default(), "every ACL object is destroyed");
}

#[test]
fn device_run_mode_needs_no_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(&tmp.path().join("lib"));
    fake.set_run_mode(0); // ACL_DEVICE
    let model_path = write_model(tmp.path());
    let acl = fake.open();
    let ctx = acl.device(0).unwrap().create_context().unwrap();
    assert_eq!(ctx.run_mode(), RunMode::Device);
    let mut model = ctx.load_model(&model_path).unwrap();
    let x: Vec<u8> = (0..48).collect();
    let out = model.run(&[&x, &[0; 12]]).unwrap();
    assert_eq!(out, vec![expected_output(&x, 0, 16), expected_output(&x, 1, 10)]);
    assert_eq!(fake.memcpy_calls(), 0, "device mode shares memory: no aclrtMemcpy");
    drop((model, ctx));
    assert_eq!(fake.live(), LiveCounts::default());
}

#[test]
fn wrong_inputs_are_refused_naming_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(&tmp.path().join("lib"));
    let model_path = write_model(tmp.path());
    let acl = fake.open();
    let ctx = acl.device(0).unwrap().create_context().unwrap();
    let mut model = ctx.load_model(&model_path).unwrap();
    let err = model.run(&[&[0; 48], &[0; 11]]).unwrap_err();
    assert_eq!(err.to_string(), format!("model {}: input 1 `y` needs 12 bytes, 11 given", model_path.display()));
    let err = model.run(&[&[0; 48]]).unwrap_err();
    assert_eq!(err.to_string(), format!("model {}: 1 input(s) given, the model has 2 (x, y)", model_path.display()));
    assert_eq!(fake.memcpy_calls(), 0, "nothing is copied for refused inputs");
    // The model still runs afterwards.
    model.run(&[&[1; 48], &[0; 12]]).unwrap();
    drop((model, ctx));
    assert_eq!(fake.live(), LiveCounts::default());
}

#[test]
fn model_file_errors_name_the_file_and_leak_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(&tmp.path().join("lib"));
    let acl = fake.open();
    let ctx = acl.device(0).unwrap().create_context().unwrap();

    let missing = tmp.path().join("missing.om");
    let err = ctx.load_model(&missing).err().expect("no such file");
    assert!(matches!(err, Error::ModelFile { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("model file {}: ", missing.display())), "{err}");

    let bogus = tmp.path().join("bogus.om");
    std::fs::write(&bogus, "not a model").unwrap();
    let err = ctx.load_model(&bogus).err().expect("not a model");
    assert_eq!(
        err.to_string(),
        format!(
            "loading model {}: aclmdlLoadFromFile failed: 100013 ACL_ERROR_PARSE_MODEL (fake: not a fake model (no FAKEOM magic))",
            bogus.display()
        )
    );

    // Failures after the load undo what was done: the model is unloaded, buffers freed.
    let model_path = write_model(tmp.path());
    for (symbol, code) in [("aclmdlGetDesc", 100011), ("aclrtMalloc", 207001), ("aclmdlCreateDesc", 1), ("aclmdlCreateDataset", 1)] {
        fake.set_fail(symbol, code);
        let err = ctx.load_model(&model_path).err().unwrap_or_else(|| panic!("{symbol} fails"));
        assert_eq!(err.acl().map(|e| e.call), Some(symbol), "{err}");
        fake.set_fail("", 0);
        let live = fake.live();
        assert_eq!((live.models, live.model_descs, live.datasets, live.data_buffers, live.device_buffers), (0, 0, 0, 0, 0), "{symbol}");
    }
    let err = ctx.load_model(&model_path).map(|_| ()).err();
    assert!(err.is_none(), "loads once the failures are gone: {err:?}");
    drop(ctx);
    assert_eq!(fake.live(), LiveCounts::default());
}

#[test]
fn optional_symbols_may_be_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::new(&tmp.path().join("lib"), "no_optional", &["FAKE_NO_OPTIONAL"]);
    let model_path = write_model(tmp.path());
    let acl = fake.open();
    assert_eq!(acl.soc_name(), None);
    let ctx = acl.device(0).unwrap().create_context().unwrap();
    let err = ctx.load_model(&tmp.path().join("lib/libascendcl.so")).err().expect("not a model");
    let acl_err = err.acl().unwrap();
    assert_eq!((acl_err.code, acl_err.recent.as_deref()), (100013, None));
    let mut model = ctx.load_model(&model_path).unwrap();
    assert_eq!(model.run(&[&[3; 48], &[0; 12]]).unwrap()[0], vec![4; 16]);
    let err = acl.device(1).err().unwrap();
    assert_eq!(err.to_string(), "aclrtSetDevice failed: 107001 ACL_ERROR_RT_INVALID_DEVICEID");
}

#[test]
fn load_from_memory_query_size_and_threads() {
    fn send<T: Send>(_: &T) {}
    let tmp = tempfile::tempdir().unwrap();
    let fake = Fake::standard(&tmp.path().join("lib"));
    let model_path = write_model(tmp.path());
    let acl = fake.open();
    let c_path = CString::new(model_path.to_str().unwrap()).unwrap();
    let (work, weight) = acl.api().query_size(&c_path).unwrap();
    assert_eq!((work, weight), (0, std::fs::metadata(&model_path).unwrap().len() as usize));

    let ctx = acl.device(0).unwrap().create_context().unwrap();
    let bytes = std::fs::read(&model_path).unwrap();
    let mut model = ctx.load_model_from_memory(&bytes, "in-memory model").unwrap();
    assert_eq!(model.label(), "in-memory model");
    let err = model.run(&[&[0; 48]]).unwrap_err();
    assert!(err.to_string().starts_with("model in-memory model: 1 input(s) given"), "{err}");
    // A model moves to another thread, which makes the context current there before each call.
    send(&model);
    let out = std::thread::spawn(move || model.run(&[&[2; 48], &[0; 12]]).unwrap()).join().unwrap();
    assert_eq!(out[1], vec![4; 10]);
    drop(ctx);
    assert_eq!(fake.live(), LiveCounts::default());
}

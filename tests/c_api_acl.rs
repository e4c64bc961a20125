//! The AscendCL session API of the C header (`aptq_acl_open`, `aptq_model_load`,
//! `aptq_model_run`, ...) driven from C++ (ffi/examples/run_om.cpp) and C
//! (ffi/tests/acl_session_errors.c) through the ACL simulator, on simulated OMs:
//! - the int8 OM's outputs equal our engine's run of the deploy model, bit for bit;
//! - the fp16 OM's outputs equal our engine's run with every op output rounded to fp16;
//! - error paths give the documented statuses and messages;
//! - after every `_free`, the simulator counts no live ACL object.
//!
//! The simulator's state is process-wide, so each C/C++ program runs as its own process.

mod common;

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use ascend_ptq::capi::{aptq_compare, aptq_last_error, aptq_status, aptq_string_free};
use ascend_ptq::device::om::{SimPrecision, SimulatedBuild, write_simulated_om};
use ascend_ptq::engine::{RunOptions, Session, Tensor};
use ascend_ptq::onnx::{DataType, ModelProto, SaveOptions, TensorData, save_model};
use common::graph::*;
use common::models::{C_IN, C_OUT, H, W, int8_conv_deploy_model as deploy_model};

fn sim_path() -> PathBuf {
    common::acl_sim_lib()
}

/// Compiles one C or C++ source against include/ and the cdylib (once per test run: tests run
/// in parallel); returns the executable.
fn build_program(source: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(s, _)| s == source) {
        return exe.clone();
    }
    let root = common::repo_root();
    let out_dir = common::target_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(Path::new(source).file_stem().unwrap());
    let cpp = source.ends_with(".cpp");
    let compiler = cc::Build::new()
        .cpp(cpp)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .opt_level(0)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .get_compiler();
    let lib_dir = common::cdylib_dir();
    let status = compiler
        .to_command()
        .args([if cpp { "-std=c++17" } else { "-std=c99" }, "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lascend_ptq")
        .arg("-ldl")
        .arg("-pthread")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .status()
        .expect("run the C/C++ compiler");
    assert!(status.success(), "compiling {source} failed");
    built.push((source.to_string(), exe.clone()));
    exe
}

fn run(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    // The library this test run built comes first: cargo's LD_LIBRARY_PATH may also list a
    // target/debug/libascend_ptq.so left by an older `cargo build`.
    cmd.args(args).env_remove("ASCEND_PTQ_SIM_FAIL").env("LD_LIBRARY_PATH", common::cdylib_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the program")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---- models -------------------------------------------------------------------------------

/// y = (x · m + a) / 3 − x per channel. The constants and the inputs are exact in fp16, so the
/// device's fp16 rounding of inputs and weights changes nothing and only op outputs round.
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
            tensor("m", &[1, c, 1, 1], TensorData::F32(vec![0.125, 1.25, -0.75])),
            tensor("a", &[1, c, 1, 1], TensorData::F32(vec![0.5, -2.25, 5.0])),
            tensor("d", &[], TensorData::F32(vec![3.0])),
        ],
        vec![value_info("x", DataType::Float, &[1, c, H as i64, W as i64])],
        vec![value_info("y", DataType::Float, &[1, c, H as i64, W as i64])],
        13,
    )
}

/// Multiples of 1/64 in [-1.3, 2.7]: exact in fp16.
fn input_values() -> Vec<f32> {
    (0..C_IN * H * W).map(|i| ((i * 7919) % 256) as f32 / 64.0 - 1.3125).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn engine_output(m: &ModelProto, x: &[f32], options: &RunOptions) -> Vec<u8> {
    let session = Session::new(m, &HashMap::new()).unwrap();
    let input = Tensor::from_le_bytes(DataType::Float, &[1, C_IN, H, W], &f32_bytes(x), "x").unwrap();
    session.run_with(HashMap::from([("x".to_string(), input)]), options).unwrap().remove(0).1.to_le_bytes()
}

fn build_om(dir: &Path, m: &ModelProto, name: &str, precision: SimPrecision) -> PathBuf {
    let onnx = dir.join(format!("{name}.onnx"));
    save_model(m, &onnx, &SaveOptions::default()).unwrap();
    let shapes = HashMap::from([("x".to_string(), vec![1, C_IN as i64, H as i64, W as i64])]);
    let om = dir.join(format!("{name}.om"));
    let b = SimulatedBuild {
        onnx_path: &onnx,
        precision,
        input_shapes: &shapes,
        soc_version: "Ascend310P3",
        aipp: None,
        output_type_fp16: false,
        cmdline: format!("ascend-ptq build --simulate {}", onnx.display()),
    };
    write_simulated_om(&om, &b).unwrap();
    om
}

/// The int8 OM of the deploy model and the fp16 OM of its float twin (the compare pair).
fn om_pair(dir: &Path) -> (PathBuf, PathBuf) {
    (build_om(dir, &deploy_model(), "net_int8", SimPrecision::Int8), build_om(dir, &float_conv_model(), "net_fp16", SimPrecision::Fp16))
}

/// Runs run_om.cpp on `om` with the input `x`, checks what it prints and returns output `y`.
fn run_example(dir: &Path, om: &Path, x: &[f32]) -> Vec<u8> {
    let exe = build_program("ffi/examples/run_om.cpp");
    let sim = sim_path();
    let input = dir.join("x.bin");
    std::fs::write(&input, f32_bytes(x)).unwrap();
    let save = dir.join(format!("out-{}", om.file_stem().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&save).unwrap();
    let out = run(&exe, &[sim.to_str().unwrap(), om.to_str().unwrap(), "--save", save.to_str().unwrap(), input.to_str().unwrap()], &[]);
    let log = text(&out);
    assert!(out.status.success(), "run_om failed: {log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("soc: Ascend310P3-sim (simulator, not an NPU)"), "{log}");
    let input_line = stdout.lines().find(|l| l.starts_with("input 0: ")).expect("input description");
    let info: serde_json::Value = serde_json::from_str(&input_line["input 0: ".len()..]).unwrap();
    assert_eq!(
        info,
        serde_json::json!({"name": "x", "dims": [1, C_IN, H, W], "dtype": "float32", "format": "NCHW",
                           "size": 4 * C_IN * H * W, "aipp": "none"}),
        "{log}"
    );
    let y = std::fs::read(save.join("y.bin")).unwrap();
    // The printed first values are the saved bytes, decoded.
    let first: Vec<String> = y.chunks_exact(4).take(8).map(|c| format!("{:.9e}", f32::from_le_bytes(c.try_into().unwrap()))).collect();
    let line = stdout.lines().find(|l| l.starts_with("result y ")).expect("result line");
    let (head, values) = line.split_once(':').unwrap();
    assert_eq!(head, format!("result y {} bytes", y.len()), "{log}");
    let printed: Vec<String> = values.split_whitespace().map(|v| format!("{:.9e}", v.parse::<f32>().unwrap())).collect();
    assert_eq!(printed, first, "{log}");
    assert!(stdout.contains("simulator live objects after free: 0"), "ACL objects left alive: {log}");
    y
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn cpp_example_runs_int8_om_like_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let om = build_om(dir.path(), &deploy_model(), "net_int8", SimPrecision::Int8);
    let x = input_values();
    let got = run_example(dir.path(), &om, &x);
    let expected = engine_output(&deploy_model(), &x, &RunOptions::default());
    assert_eq!(got.len(), 4 * C_OUT * H * W);
    assert_eq!(got, expected, "the int8 OM's output differs from the engine's deploy-model output");
    assert!(got.chunks_exact(4).any(|c| f32::from_le_bytes(c.try_into().unwrap()) != 0.0));
}

#[test]
fn cpp_example_runs_fp16_om_like_the_engine_in_fp16() {
    let dir = tempfile::tempdir().unwrap();
    let om = build_om(dir.path(), &float_model(), "net_fp16", SimPrecision::Fp16);
    let x = input_values();
    let got = run_example(dir.path(), &om, &x);
    let fp16 = engine_output(&float_model(), &x, &RunOptions { round_outputs_to_f16: true });
    let fp32 = engine_output(&float_model(), &x, &RunOptions::default());
    assert_eq!(got, fp16, "the fp16 OM's output differs from the engine with fp16 rounding");
    let differing = got.chunks_exact(4).zip(fp32.chunks_exact(4)).filter(|(a, b)| a != b).count();
    assert!(differing > C_IN * H * W / 4, "only {differing} values differ from fp32: the OM is not computing in fp16");
}

#[test]
fn cpp_example_reports_errors() {
    let exe = build_program("ffi/examples/run_om.cpp");
    let sim = sim_path();
    let out = run(&exe, &["/nonexistent/libascendcl.so", "/nonexistent/m.om"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opening AscendCL: status 5") && stderr.contains("/nonexistent/libascendcl.so"), "{stderr}");

    let out = run(&exe, &[sim.to_str().unwrap(), "/nonexistent/m.om"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loading the model: status 2") && stderr.contains("/nonexistent/m.om"), "{stderr}");
}

#[test]
fn c_error_paths_give_statuses_and_messages() {
    let exe = build_program("ffi/tests/acl_session_errors.c");
    let sim = sim_path();
    let dir = tempfile::tempdir().unwrap();
    let om = build_om(dir.path(), &float_model(), "net_fp16", SimPrecision::Fp16);
    let not_om = dir.path().join("notes.om");
    std::fs::write(&not_om, "plain text, not an OM\n").unwrap();
    let out = run(&exe, &[sim.to_str().unwrap(), om.to_str().unwrap(), not_om.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");

    let out = run(&exe, &["--init-fails", sim.to_str().unwrap()], &[("ASCEND_PTQ_SIM_FAIL", "aclInit:500001")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// A float Conv with the deploy model's interface (3 → 5 channels), the fp16 twin to compare;
/// weights exact in fp16 (the device rounds them), so only op outputs round.
fn float_conv_model() -> ModelProto {
    let w: Vec<f32> = (0..C_OUT * C_IN * 9).map(|i| ((((i * 37 + 11) % 255) as i32 - 127) as f32) / 256.0).collect();
    let b: Vec<f32> = (0..C_OUT).map(|c| c as f32 * 0.0625 - 0.125).collect();
    model(
        vec![node("Conv", "conv", &["x", "w", "b"], &["y"], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])])],
        vec![tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], TensorData::F32(w)), tensor("b", &[C_OUT as i64], TensorData::F32(b))],
        vec![value_info("x", DataType::Float, &[1, C_IN as i64, H as i64, W as i64])],
        vec![value_info("y", DataType::Float, &[1, C_OUT as i64, H as i64, W as i64])],
        13,
    )
}

fn c_compare(options: &str) -> (aptq_status, String) {
    let opts = CString::new(options).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { aptq_compare(opts.as_ptr(), &mut out) };
    if status != aptq_status::APTQ_OK {
        // SAFETY: set by the failed call on this thread.
        return (status, unsafe { CStr::from_ptr(aptq_last_error()) }.to_string_lossy().into_owned());
    }
    let json = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
    unsafe { aptq_string_free(out) };
    (status, json)
}

fn cosine(a: &[u8], b: &[u8]) -> f64 {
    let f = |v: &[u8]| v.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap()))).collect::<Vec<f64>>();
    let (x, y) = (f(a), f(b));
    let dot: f64 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
    dot / (x.iter().map(|v| v * v).sum::<f64>().sqrt() * y.iter().map(|v| v * v).sum::<f64>().sqrt())
}

/// aptq_compare in this process (the only test here that loads the simulator in-process).
#[test]
fn c_compare_reports_the_engine_computed_cosine() {
    let sim = sim_path();
    let dir = tempfile::tempdir().unwrap();
    let (int8, fp16) = om_pair(dir.path());
    let data = dir.path().join("calib");
    std::fs::create_dir(&data).unwrap();
    let x = input_values();
    std::fs::write(data.join("batch0001.bin"), f32_bytes(&x)).unwrap();
    let report = dir.path().join("cmp");
    let options = serde_json::json!({
        "int8": int8, "fp16": fp16, "data_dir": data, "data_types": "float32", "batch_num": 1,
        "acl_lib": sim, "threshold": 0.5, "report": report,
    });
    let (status, json) = c_compare(&options.to_string());
    assert_eq!(status, aptq_status::APTQ_OK, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["int8_device"].as_str().unwrap().contains("simulator"), "{}", v["int8_device"]);
    let expected = cosine(
        &engine_output(&deploy_model(), &x, &RunOptions::default()),
        &engine_output(&float_conv_model(), &x, &RunOptions { round_outputs_to_f16: true }),
    );
    let got = v["outputs"][0]["int8_vs_fp16"]["cosine_similarity"]["mean"].as_f64().unwrap();
    assert!((got - expected).abs() < 1e-12, "report cosine {got}, engine-computed {expected}");
    assert_eq!(v["pass"], serde_json::json!(expected >= 0.5));
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("cmp.json")).unwrap()).unwrap();
    assert_eq!(written, v, "cmp.json is the returned report");
    assert!(dir.path().join("cmp.html").exists());

    // Errors name the key, the file or the library.
    let (status, msg) = c_compare(r#"{"int8": "a.om", "fp16": "b.om", "images": "d", "params": "p", "batchnum": 1}"#);
    assert_eq!((status, msg.contains("unknown key \"batchnum\"")), (aptq_status::APTQ_INVALID_ARGUMENT, true), "{msg}");
    let (status, msg) = c_compare(r#"{"fp16": "b.om", "images": "d", "params": "p"}"#);
    assert_eq!((status, msg.contains("missing required key \"int8\"")), (aptq_status::APTQ_INVALID_ARGUMENT, true), "{msg}");
    let missing = serde_json::json!({"int8": dir.path().join("nope.om"), "fp16": fp16, "data_dir": data, "data_types": "float32",
                                      "batch_num": 1, "acl_lib": sim});
    let (status, msg) = c_compare(&missing.to_string());
    assert_eq!((status, msg.contains("nope.om")), (aptq_status::APTQ_IO_ERROR, true), "{msg}");
    let no_lib = serde_json::json!({"int8": int8, "fp16": fp16, "data_dir": data, "data_types": "float32", "batch_num": 1,
                                     "acl_lib": "/nonexistent/libascendcl.so"});
    let (status, msg) = c_compare(&no_lib.to_string());
    assert_eq!((status, msg.contains("/nonexistent/libascendcl.so")), (aptq_status::APTQ_ACL_LIBRARY_ERROR, true), "{msg}");
}

/// The last line of a C test's stdout is "ok" (earlier lines may describe what it saw).
fn assert_ok(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.lines().last() == Some("ok"), "{what}: {}", text(out));
}

/// aptq_compare_with_callbacks through the simulator (ffi/tests/long_calls_cancel.c): progress
/// per input set; a comparison cancelled after its first set returns APTQ_CANCELLED, writes no
/// report and leaves no live ACL object.
#[test]
fn c_compare_progress_and_cancel_leave_no_acl_object_and_no_report() {
    let exe = build_program("ffi/tests/long_calls_cancel.c");
    let sim = sim_path();
    let dir = tempfile::tempdir().unwrap();
    let (int8, fp16) = om_pair(dir.path());
    let data = dir.path().join("calib");
    std::fs::create_dir(&data).unwrap();
    let x = input_values();
    for b in 1..=3 {
        let shifted: Vec<f32> = x.iter().map(|v| v + b as f32 / 16.0).collect();
        std::fs::write(data.join(format!("batch{b:04}.bin")), f32_bytes(&shifted)).unwrap();
    }
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let args = [
        "compare",
        sim.to_str().unwrap(),
        int8.to_str().unwrap(),
        fp16.to_str().unwrap(),
        data.to_str().unwrap(),
        "3",
        reports.to_str().unwrap(),
    ];
    let out = run(&exe, &args, &[]);
    assert_ok(&out, "long_calls_cancel compare");
    let written: Vec<String> =
        std::fs::read_dir(&reports).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(written.iter().all(|f| f.starts_with("full.")), "only the full run's report: {written:?}");
}

/// aptq_flow_with_callbacks on the guide's flow JSON with --simulate: cancelled in the
/// calibration (no calibration output, flow.json says "cancelled") and at the compare step's
/// start (ACL models loaded and released: no live object), then run to the end, redoing only
/// what the cancels left undone.
#[test]
fn c_flow_progress_and_cancel_keep_finished_steps_and_write_no_partial_outputs() {
    let exe = build_program("ffi/tests/long_calls_cancel.c");
    let sim = sim_path();
    let tmp = common::flow_files::user_folder();
    let root = tmp.path();
    let flow = |args: &[&str]| {
        let mut cmd = Command::new(&exe);
        cmd.current_dir(root).args(args).env_remove("ASCEND_PTQ_SIM_FAIL").env("LD_LIBRARY_PATH", common::cdylib_dir());
        cmd.output().expect("run long_calls_cancel")
    };
    let statuses = || -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("output_Ascend310P3/flow.json")).unwrap()).unwrap();
        v["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap().to_string()).collect()
    };
    let sim = sim.to_str().unwrap();
    let out_dir = root.join("output_Ascend310P3");

    let out = flow(&["flow", sim, "guide_params.json", "calibration", "1", "calibration"]);
    assert_ok(&out, "flow cancelled in calibration");
    assert_eq!(statuses(), ["done", "cancelled", "not_run", "not_run", "not_run"]);
    let left: Vec<String> = std::fs::read_dir(&out_dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|f| f == "flow.json"), "a cancelled calibration left {left:?}");

    // "step" reports the start of step 4 (compare): compare loads both OMs, then stops.
    let out = flow(&["flow", sim, "guide_params.json", "step", "4", "compare"]);
    assert_ok(&out, "flow cancelled at the compare step");
    assert_eq!(statuses(), ["up_to_date", "done", "done", "done", "cancelled"]);
    assert!(!out_dir.join("yolov6n_compare.json").exists() && !out_dir.join("yolov6n_compare.html").exists(), "no compare report");

    let out = flow(&["flow-full", sim, "guide_params.json"]);
    assert_ok(&out, "flow run to the end");
    assert_eq!(statuses(), ["up_to_date", "up_to_date", "up_to_date", "up_to_date", "done"]);
    assert!(out_dir.join("yolov6n_compare.json").exists());
}

/// aptq_preprocess_with_callbacks on 40 photos (two rounds of 32): progress up to 40; cancelled
/// at 32, the bins of the first round are removed and no manifest is written.
#[test]
fn c_preprocess_progress_and_cancel_remove_the_bins_written() {
    let exe = build_program("ffi/tests/long_calls_cancel.c");
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for i in 0..40u32 {
        let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 9 + i) as u8, (y * 13) as u8, (i * 5) as u8]));
        img.save(imgs.join(format!("p{i:02}.png"))).unwrap();
    }
    let params = dir.path().join("params.json");
    let json = r#"{"det_pre_params": {"img_root": "imgs", "fixed_scale": 1, "batch_size": 1, "des_channels": 3, "des_height": 16, "des_width": 16,
                   "is_BGR2RGB": 1, "means": [0, 0, 0], "stds": [1, 1, 1]}}"#;
    std::fs::write(&params, json).unwrap();
    let bins = |out: &Path| -> usize { std::fs::read_dir(out.join("imgs_batch1")).map(|d| d.flatten().count()).unwrap_or(0) };

    let full = dir.path().join("full");
    let out = run(&exe, &["preprocess", params.to_str().unwrap(), full.to_str().unwrap(), "0"], &[]);
    assert_ok(&out, "preprocess");
    assert!(String::from_utf8_lossy(&out.stdout).contains("progress reports: 2"), "{}", text(&out));
    assert_eq!(bins(&full), 41, "40 bins and the manifest");

    let cancelled = dir.path().join("cancelled");
    let out = run(&exe, &["preprocess", params.to_str().unwrap(), cancelled.to_str().unwrap(), "32"], &[]);
    assert_ok(&out, "preprocess cancelled");
    assert_eq!(bins(&cancelled), 0, "the cancelled run left files");
}

/// A flow cancelled while ATC runs (the stand-in ATC told to hang): ATC's process group is
/// killed, the call returns APTQ_CANCELLED, no OM is left and flow.json says where it stopped.
#[test]
fn c_flow_cancelled_during_atc_kills_it_and_leaves_no_om() {
    let exe = build_program("ffi/tests/long_calls_cancel.c");
    let tmp = common::flow_files::user_folder();
    let root = tmp.path();
    let atc = common::repo_root().join("tests/fixtures/atc-standin/atc");
    let record = root.join("atc-calls.jsonl");
    let started = std::time::Instant::now();
    let out = Command::new(&exe)
        .current_dir(root)
        .args(["flow-atc", atc.to_str().unwrap(), "models/yolov6_params.json"])
        .env("ATC_STANDIN_MODE", "hang")
        .env("ATC_STANDIN_RECORD", &record)
        .env("LD_LIBRARY_PATH", common::cdylib_dir())
        .env_remove("ASCEND_PTQ_ACL_LIB")
        .output()
        .unwrap();
    assert_ok(&out, "flow cancelled during ATC");
    // The hang would last forever: the cancel ended it (SIGTERM, then SIGKILL after the grace).
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "took {:?}", started.elapsed());
    let out_dir = root.join("quant_test");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("flow.json")).unwrap()).unwrap();
    let statuses: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["done", "done", "cancelled", "not_run", "not_run"], "{v:#}");
    let oms: Vec<_> = std::fs::read_dir(&out_dir).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "om")).collect();
    assert!(oms.is_empty(), "OMs left: {oms:?}");
    // The stand-in's grandchild (its compiler stand-in), if it got as far as starting one, was
    // killed with the group (the cancel may come before the stand-in wrote its record).
    let calls = std::fs::read_to_string(&record).unwrap_or_default();
    let pid = calls.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find_map(|c| c["grandchild_pid"].as_i64());
    if let Some(pid) = pid {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ");
        assert!(!alive, "ATC's grandchild {pid} outlived the cancel");
    }
}

/// The header's thread-safety contract (ffi/tests/threads.c): one aptq_acl shared by two
/// threads each running its own model through the simulator, every output bit-exact and no
/// live object after the frees; one aptq_engine run by two threads at once.
#[test]
fn c_two_models_on_two_threads_and_one_engine_on_two_threads() {
    let exe = build_program("ffi/tests/threads.c");
    let sim = sim_path();
    let dir = tempfile::tempdir().unwrap();
    let x = input_values();
    let input = dir.path().join("x.bin");
    std::fs::write(&input, f32_bytes(&x)).unwrap();
    let (int8, fp16) = om_pair(dir.path());
    let expected_int8 = dir.path().join("int8_y.bin");
    std::fs::write(&expected_int8, engine_output(&deploy_model(), &x, &RunOptions::default())).unwrap();
    let expected_fp16 = dir.path().join("fp16_y.bin");
    std::fs::write(&expected_fp16, engine_output(&float_conv_model(), &x, &RunOptions { round_outputs_to_f16: true })).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let args = ["acl", &p(&sim), &p(&int8), &p(&input), &p(&expected_int8), &p(&fp16), &p(&input), &p(&expected_fp16)];
    assert_ok(&run(&exe, &args, &[]), "two ACL models on two threads");

    let onnx = dir.path().join("net_fp32.onnx");
    save_model(&float_conv_model(), &onnx, &SaveOptions::default()).unwrap();
    let expected_fp32 = dir.path().join("fp32_y.bin");
    std::fs::write(&expected_fp32, engine_output(&float_conv_model(), &x, &RunOptions::default())).unwrap();
    let shape = format!("x:1,{C_IN},{H},{W}");
    let outputs = dir.path().join("run-out");
    let args = ["engine", &p(&onnx), &shape, &p(&input), &p(&expected_fp32), &p(&outputs)];
    assert_ok(&run(&exe, &args, &[]), "one engine on two threads");
}

/// ffi/examples/sdk_tour.cpp, the C++ walk through the long calls: a calibration of the real
/// PP-OCR cls model with progress, a second one cancelled halfway (APTQ_CANCELLED, nothing
/// written), and a compare through the simulator with progress.
#[test]
fn cpp_sdk_tour_calibrates_cancels_and_compares() {
    let Some(cls) = common::asset(common::CLS) else { return };
    let exe = build_program("ffi/examples/sdk_tour.cpp");
    let sim = sim_path();
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("cls-bins");
    std::fs::create_dir(&calib).unwrap();
    for b in 0..4 {
        let values: Vec<f32> = (0..3 * 48 * 192).map(|i| (((i * 7 + b * 13) % 255) as f32 / 127.5) - 1.0).collect();
        std::fs::write(calib.join(format!("batch{:04}.bin", b + 1)), f32_bytes(&values)).unwrap();
    }
    let (int8, fp16) = om_pair(dir.path());
    let cmp = dir.path().join("cmp-bins");
    std::fs::create_dir(&cmp).unwrap();
    for b in 1..=2 {
        std::fs::write(cmp.join(format!("batch{b:04}.bin")), f32_bytes(&input_values())).unwrap();
    }
    let save = dir.path().join("quant");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let args = [&p(&sim), &p(&cls), "x:1,3,48,192", &p(&calib), "4", &p(&save), &p(&int8), &p(&fp16), &p(&cmp), "2"];
    let out = run(&exe, &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.lines().last() == Some("sdk_tour: ok"), "{}", text(&out));
    assert!(stdout.contains("second calibration: status 8 ("), "APTQ_CANCELLED is 8: {}", text(&out));
    let left: Vec<_> = std::fs::read_dir(save.join("cancelled")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "the cancelled calibration left {left:?}");
    let cosine: f64 = stdout.split("int8 vs fp16 cosine ").nth(1).and_then(|s| s.split(',').next()).unwrap().parse().unwrap();
    let expected = cosine_of_outputs();
    assert!((cosine - expected).abs() < 1e-6, "printed cosine {cosine}, engine-computed {expected}");
}

/// The int8-vs-fp16 cosine of the synthetic OMs on `input_values()`, computed with our engine.
fn cosine_of_outputs() -> f64 {
    let x = input_values();
    cosine(
        &engine_output(&deploy_model(), &x, &RunOptions::default()),
        &engine_output(&float_conv_model(), &x, &RunOptions { round_outputs_to_f16: true }),
    )
}

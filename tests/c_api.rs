//! The C examples and C tests under ffi/, compiled with the system C compiler (found by the
//! `cc` crate), linked against the cdylib, and run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Compiles one C file against include/ and the cdylib, once per test run (tests run in
/// parallel and two of them use preprocess.c: recompiling it while the other test executes it
/// fails with EACCES / ETXTBSY); returns the executable.
fn build_c(source: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(s, _)| s == source) {
        return exe.clone();
    }
    let exe = compile_c(source);
    built.push((source.to_string(), exe.clone()));
    exe
}

fn compile_c(source: &str) -> PathBuf {
    let root = common::repo_root();
    let out_dir = common::target_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(Path::new(source).file_stem().unwrap());
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .opt_level(0)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .get_compiler();
    let lib_dir = common::cdylib_dir();
    let status = compiler
        .to_command()
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lascend_ptq")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling {source} failed");
    exe
}

fn run(exe: &Path, args: &[&str]) -> Output {
    // The library this test run built comes first: cargo's LD_LIBRARY_PATH may also list a
    // target/debug/libascend_ptq.so left by an older `cargo build`.
    Command::new(exe).args(args).env("LD_LIBRARY_PATH", common::cdylib_dir()).output().expect("run C program")
}

#[test]
fn c_conventions_hold() {
    let exe = build_c("ffi/tests/conventions.c");
    let tmp = tempfile::tempdir().unwrap();
    let not_a_model = tmp.path().join("notes.onnx");
    std::fs::write(&not_a_model, "plain text, not a model\n").unwrap();
    let out = run(&exe, &["/nonexistent/dir/model.onnx", not_a_model.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "conventions.c failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn c_inspect_example_on_real_model() {
    let Some(det) = common::asset(common::DET) else { return };
    let exe = build_c("ffi/examples/inspect.c");
    let out = run(&exe, &[det.to_str().unwrap(), "x:1,3,640,640"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "inspect.c failed: {}", String::from_utf8_lossy(&out.stderr));
    let (version, json) = stdout.split_once('\n').unwrap();
    assert_eq!(version, format!("ascend-ptq {}", env!("CARGO_PKG_VERSION")));
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON summary");
    assert_eq!(v["inputs"][0]["name"], "x");
    assert_eq!(v["macs"]["input_shapes"]["x"], serde_json::json!([1, 3, 640, 640]));
    assert!(v["macs"]["total"].as_u64().unwrap() > 1_000_000_000, "PP-OCRv4 det has >1 GMAC at 640²");
    assert!(v["macs"]["unresolved_nodes"].as_array().unwrap().is_empty());

    // A library error reaches C as a status and a message naming the file.
    let out = run(&exe, &["/nonexistent/det.onnx"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status 2") && stderr.contains("/nonexistent/det.onnx"), "{stderr}");
}

/// `ascend-ptq --version` and the cdylib's SONAME follow the Cargo package version (as
/// `aptq_version()` does: c_inspect_example_on_real_model); scripts/install.sh installs the
/// library under that SONAME and scripts/test-release.sh checks the same in the bundle.
#[test]
fn cli_version_library_version_and_soname_agree() {
    let version = env!("CARGO_PKG_VERSION");
    let cli = common::cli().arg("--version").output().unwrap();
    assert!(cli.status.success());
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), format!("ascend-ptq {version}"));

    let exe = build_c("ffi/tests/conventions.c");
    let needed = Command::new("readelf").arg("-d").arg(&exe).output().expect("run readelf (binutils)");
    let (major, minor) = (env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"));
    let soname = if major == "0" { format!("libascend_ptq.so.0.{minor}") } else { format!("libascend_ptq.so.{major}") };
    assert_eq!(env!("ASCEND_PTQ_SONAME"), soname);
    let dynamic = String::from_utf8_lossy(&needed.stdout);
    assert!(dynamic.contains(&format!("Shared library: [{soname}]")), "a program linked with -lascend_ptq must need {soname}:\n{dynamic}");
    let lib = common::cdylib_dir().join("libascend_ptq.so");
    let own = Command::new("readelf").arg("-d").arg(&lib).output().unwrap();
    assert!(
        String::from_utf8_lossy(&own.stdout).contains(&format!("Library soname: [{soname}]")),
        "{} has no SONAME {soname}",
        lib.display()
    );
    // The program runs: the loader finds the library by its SONAME (common::cdylib_dir links it).
    let tmp = tempfile::tempdir().unwrap();
    let not_a_model = tmp.path().join("notes.onnx");
    std::fs::write(&not_a_model, "plain text, not a model\n").unwrap();
    let out = run(&exe, &["/nonexistent/dir/model.onnx", not_a_model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn c_preprocess_example_on_real_photos() {
    let (Some(coffee), Some(rocket)) = (common::asset("images/coffee.png"), common::asset("images/rocket.jpg")) else { return };
    let exe = build_c("ffi/examples/preprocess.c");
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    std::fs::copy(coffee, imgs.join("coffee.png")).unwrap();
    std::fs::copy(rocket, imgs.join("rocket.jpg")).unwrap();
    let params = tmp.path().join("params.json");
    std::fs::write(
        &params,
        "{ \"det_pre_params\": { \"img_root\": \"imgs\", \"fixed_scale\": 1, \"batch_size\": 1, \"des_channels\": 3,\n\
         \"des_height\": 64, \"des_width\": 96, \"is_BGR2RGB\": 1, \"means\": [0, 0, 0], \"stds\": [255, 255, 255], \"extra\": 1 }, }\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("calib");
    let out = run(&exe, &[params.to_str().unwrap(), out_dir.to_str().unwrap(), r#"{"input_format": "YUV420SP_U8"}"#]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "preprocess.c failed: {}", String::from_utf8_lossy(&out.stderr));
    let (manifest, cfg) = stdout.split_once("\n----\n").expect("manifest, separator, config");
    let m: serde_json::Value = serde_json::from_str(manifest).expect("manifest JSON");
    assert_eq!(m["shape"], serde_json::json!([1, 3, 64, 96]));
    assert_eq!(m["files"][1]["images"], serde_json::json!(["rocket.jpg"]));
    assert!(m["warnings"][0].as_str().unwrap().contains("unknown key 'extra'"), "{m}");
    let bin = std::fs::read(out_dir.join("imgs_batch1/batch0002.bin")).unwrap();
    assert_eq!(bin.len(), 3 * 64 * 96 * 4);
    assert!(cfg.contains("input_format: YUV420SP_U8") && cfg.contains("csc_switch: true"), "{cfg}");

    // Errors reach C as a status and a message naming the key.
    std::fs::write(&params, "{\"det_pre_params\": {\"img_root\": \"imgs\"}}").unwrap();
    let out = run(&exe, &[params.to_str().unwrap(), out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status 1") && stderr.contains("missing required key 'des_channels'"), "{stderr}");
}

#[test]
fn c_calibrate_example_on_real_photos() {
    let Some(cls) = common::asset(common::CLS) else { return };
    let Some(images) = common::asset("images") else { return };
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Text-like and natural photos for the text-direction classifier (1×3×48×192).
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for name in ["text.png", "page.png", "coffee.png", "rocket.jpg"] {
        std::fs::copy(images.join(name), imgs.join(name)).unwrap();
    }
    let params = tmp.path().join("params.json");
    std::fs::write(
        &params,
        format!(
            "{{\"cls_pre_params\": {{\"img_root\": {:?}, \"batch_size\": 1, \"des_channels\": 3, \"des_height\": 48, \"des_width\": 192,\n\
             \"fixed_scale\": 0, \"is_BGR2RGB\": 1, \"means\": [127.5, 127.5, 127.5], \"stds\": [127.5, 127.5, 127.5]}}}}\n",
            imgs.to_str().unwrap()
        ),
    )
    .unwrap();
    let calib = tmp.path().join("calib");
    let out = run(&build_c("ffi/examples/preprocess.c"), &[params.to_str().unwrap(), calib.to_str().unwrap()]);
    assert!(out.status.success(), "preprocess.c failed: {}", String::from_utf8_lossy(&out.stderr));
    let data_dir = calib.join("imgs_batch1");

    let exe = build_c("ffi/examples/calibrate.c");
    let save_path = tmp.path().join("out/cls");
    let out = run(&exe, &[cls.to_str().unwrap(), save_path.to_str().unwrap(), "x:1,3,48,192", data_dir.to_str().unwrap(), "float32", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "calibrate.c failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(summary["batch_num"], 3);
    assert!(summary["quantized"].as_u64().unwrap() > 0, "{summary}");
    let out_dir = tmp.path().join("out");
    for (key, file) in [
        ("deploy_model", "cls_deploy_model.onnx"),
        ("fake_quant_model", "cls_fake_quant_model.onnx"),
        ("record", "cls_record.txt"),
        ("quant_json", "cls_quant.json"),
        ("quant_report", "cls_quant_report.json"),
        ("report_html", "cls_report.html"),
    ] {
        let path = out_dir.join(file);
        assert_eq!(summary["outputs"][key].as_str(), path.to_str(), "{summary}");
        assert!(path.metadata().is_ok_and(|m| m.len() > 0), "{} missing or empty", path.display());
    }
    let record = std::fs::read_to_string(out_dir.join("cls_record.txt")).unwrap();
    assert_eq!(record.matches("scale_d").count() as u64, summary["quantized"].as_u64().unwrap(), "one record entry per layer");
    assert_eq!(summary["output_agreement"].as_array().map(Vec::len), Some(1), "{summary}");

    // ONNX Runtime runs the fake-quant model and agrees with the float model.
    let fake = out_dir.join("cls_fake_quant_model.onnx");
    let bins: Vec<String> = (1..=3).map(|i| data_dir.join(format!("batch{i:04}.bin")).to_str().unwrap().to_string()).collect();
    let mut args = vec![fake.to_str().unwrap(), cls.to_str().unwrap(), "x:1,3,48,192"];
    args.extend(bins.iter().map(String::as_str));
    let (code, stdout, stderr) = common::run_oracle(&py, "ort_fake_quant_check.py", &args);
    eprintln!("ort_fake_quant_check: {stdout}");
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The agreement the library reports (its own engine) matches ONNX Runtime's.
    let ort_cosine: f64 = stdout.split("cosine=").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
    let reported = summary["output_agreement"][0]["cosine"].as_f64().unwrap();
    assert!((reported - ort_cosine).abs() < 1e-3, "summary cosine {reported} vs ONNX Runtime {ort_cosine}");

    // A library error reaches C as a status and a message: too few batches for batch_num.
    let out = run(
        &exe,
        &[cls.to_str().unwrap(), tmp.path().join("out2/cls").to_str().unwrap(), "x:1,3,48,192", data_dir.to_str().unwrap(), "float32", "9"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status 1") && stderr.contains("--batch_num"), "{stderr}");
}

#[test]
fn c_calibrate_rejects_bad_options() {
    let exe = build_c("ffi/tests/calibrate_errors.c");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let out = run(&exe, &[file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "calibrate_errors.c failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The smallest OM per docs/ascend-formats.md §12: a 256-byte header, an old-layout
/// table with one MODEL_DEF partition, and a ModelDef {name "tiny", graph {op {name "x",
/// type "Data"}}} encoded by hand (tags 0x0A = field 1, 0x3A = field 7, 0x32 = field 6).
fn tiny_om() -> Vec<u8> {
    let op = [&[0x0A, 1, b'x', 0x12, 4][..], b"Data"].concat();
    let graph = [&[0x32, op.len() as u8][..], &op].concat();
    let model_def = [&[0x0A, 4][..], b"tiny", &[0x3A, graph.len() as u8], &graph].concat();
    let mut table = Vec::new();
    for v in [1u32, 0, 0, model_def.len() as u32] {
        table.extend_from_slice(&v.to_le_bytes());
    }
    let body = [table, model_def].concat();
    let mut header = vec![0u8; 256];
    header[0..4].copy_from_slice(b"IMOD");
    header[4..8].copy_from_slice(&256u32.to_le_bytes());
    header[76..80].copy_from_slice(&(body.len() as u32).to_le_bytes());
    header[156..160].copy_from_slice(&1u32.to_le_bytes());
    [header, body].concat()
}

#[test]
fn c_om_info_example() {
    let exe = build_c("ffi/examples/om_info.c");
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("tiny.om");
    std::fs::write(&om, tiny_om()).unwrap();
    let out = run(&exe, &[om.to_str().unwrap()]);
    assert!(out.status.success(), "om_info.c failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(v["partition_layout"], "old");
    assert_eq!(v["models"][0]["name"], "tiny");
    assert_eq!(v["models"][0]["inputs"][0]["name"], "x");
    assert_eq!(v["models"][0]["op_histogram"], serde_json::json!({"Data": 1}));

    // A non-OM file reaches C as APTQ_INVALID_MODEL (3) with a message naming the file.
    let onnx = tmp.path().join("model.onnx");
    std::fs::write(&onnx, b"\x08\x07\x12\x04onnx").unwrap();
    let out = run(&exe, &[onnx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status 3") && stderr.contains("model.onnx") && stderr.contains("not an Ascend OM model"), "{stderr}");
}

/// ffi/examples/flow.c: `aptq_flow` on the repository's flow JSON (absolute paths, so the C
/// program's folder does not matter) with the simulator; then the summary, the files and a
/// bad option reach C.
#[test]
fn flow_example_runs_the_whole_flow() {
    let tmp = common::flow_files::user_folder();
    let params = common::flow_files::absolute_repo_json(tmp.path());
    let sim = common::acl_sim_lib();
    let exe = build_c("ffi/examples/flow.c");
    let options = serde_json::json!({ "simulate": true, "acl_lib": sim }).to_string();
    let out = run(&exe, &[params.to_str().unwrap(), &options]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "flow.c failed: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    let names: Vec<&str> = summary["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["preprocess", "calibration", "atc_int8", "atc_fp16", "compare"], "{summary}");
    assert!(summary["steps"].as_array().unwrap().iter().all(|s| s["status"] == "done"), "{summary}");
    assert!(tmp.path().join("quant_test/yolov6n_fp16_deploy_model_inc_pre.om").is_file());
    assert_eq!(
        summary,
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(tmp.path().join("quant_test/flow.json")).unwrap()).unwrap()
    );

    let out = run(&exe, &[params.to_str().unwrap(), r#"{"simulat": true}"#]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status 1") && stderr.contains("simulat"), "{stderr}");
}

/// `aptq_calibrate_with_callbacks` on the real cls model: progress for every pass, then a run
/// cancelled from the callback in the clip search ends with APTQ_CANCELLED and writes nothing
/// (ffi/tests/calibrate_cancel.c).
#[test]
fn c_calibrate_progress_and_cancel() {
    let Some(cls) = common::asset(common::CLS) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("bins");
    std::fs::create_dir(&data).unwrap();
    for b in 0..3 {
        let values: Vec<u8> = (0..3 * 48 * 192).flat_map(|i| ((((i * 7 + b * 13) % 255) as f32 / 127.5) - 1.0).to_le_bytes()).collect();
        std::fs::write(data.join(format!("{b}.bin")), values).unwrap();
    }
    let (full, cancel) = (tmp.path().join("full/m"), tmp.path().join("cancel/m"));
    let exe = build_c("ffi/tests/calibrate_cancel.c");
    let args = [cls.to_str().unwrap(), "x:1,3,48,192", data.to_str().unwrap(), full.to_str().unwrap(), cancel.to_str().unwrap()];
    let out = run(&exe, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.trim() == "ok", "calibrate_cancel.c failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(full.with_file_name("m_deploy_model.onnx").exists(), "the full run wrote its files");
    let written: Vec<_> = std::fs::read_dir(tmp.path().join("cancel")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(written.is_empty(), "the cancelled run wrote {written:?}");
}

//! The C examples and C tests under ffi/, compiled with the system C compiler (found by the
//! `cc` crate), linked against the cdylib, and run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cdylib_dir() -> PathBuf {
    let target = common::target_dir();
    for dir in [target.join("deps"), target.clone()] {
        if dir.join("libascend_ptq.so").exists() {
            return dir;
        }
    }
    panic!("libascend_ptq.so not found under {}", target.display());
}

/// Compiles one C file against include/ and the cdylib; returns the executable.
fn build_c(source: &str) -> PathBuf {
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
    let lib_dir = cdylib_dir();
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
    Command::new(exe).args(args).output().expect("run C program")
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

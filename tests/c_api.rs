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

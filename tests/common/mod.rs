//! Shared test helpers: real assets, the ONNX Runtime oracle, the built binaries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`; panics naming `what` with its status and output unless it succeeded. Returns stdout.
pub fn ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed ({}): {}\n{stdout}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

/// A path as the `&str` a command line takes.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn required(var: &str) -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") || std::env::var_os(var).is_some_and(|v| v == "1")
}

/// A fetched asset (relative to the assets folder). Missing assets fail the test under CI
/// or with ASCEND_PTQ_REQUIRE_ASSETS=1, and are skipped loudly otherwise.
pub fn asset(rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ASCEND_PTQ_ASSETS").map(PathBuf::from).unwrap_or_else(|| repo_root().join("assets"));
    let path = dir.join(rel);
    if path.exists() {
        return Some(path);
    }
    if required("ASCEND_PTQ_REQUIRE_ASSETS") {
        panic!("asset {} is missing: run scripts/fetch-assets.sh", path.display());
    }
    eprintln!("\n*** SKIPPED: asset {} is missing (run scripts/fetch-assets.sh) ***\n", path.display());
    None
}

pub const DET: &str = "models/ch_PP-OCRv4_det_infer.onnx";
pub const REC: &str = "models/ch_PP-OCRv4_rec_infer.onnx";
pub const CLS: &str = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

/// The project venv's python with onnx + onnxruntime (scripts/setup-venv.sh). Missing
/// fails under CI or with ASCEND_PTQ_REQUIRE_ORACLE=1, and is skipped loudly otherwise.
pub fn oracle_python() -> Option<PathBuf> {
    let py = repo_root().join(".venv/bin/python");
    let ok = py.exists() && Command::new(&py).args(["-c", "import onnx, onnxruntime, numpy"]).status().is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    if required("ASCEND_PTQ_REQUIRE_ORACLE") {
        panic!("the ONNX Runtime oracle is missing: run scripts/setup-venv.sh");
    }
    eprintln!("\n*** SKIPPED: ONNX Runtime oracle missing (.venv; run scripts/setup-venv.sh) ***\n");
    None
}

/// Runs an oracle script under tests/oracle/ and returns (exit code, stdout, stderr).
pub fn run_oracle(py: &Path, script: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(py).arg(repo_root().join("tests/oracle").join(script)).args(args).output().expect("start python");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Folder with the test binary; the cdylib and the CLI binary are near it.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    deps.parent().expect("profile dir").to_path_buf()
}

/// The `ascend-ptq` binary built for this test run.
pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ascend-ptq"))
}
pub mod browser;
pub mod flow_files;
pub mod graph;
pub mod models;

/// Where the cdylib `libascend_ptq.so` of this test run is (deps/ first: a top-level copy may
/// be left by an older `cargo build`). Programs linked with `-lascend_ptq` ask the loader for
/// the library's SONAME (build.rs: `libascend_ptq.so.0.<minor>`), which cargo does not create:
/// it is made here, a symlink to `libascend_ptq.so` in the same folder.
pub fn cdylib_dir() -> PathBuf {
    let target = target_dir();
    for dir in [target.join("deps"), target.clone()] {
        if dir.join("libascend_ptq.so").exists() {
            link_soname(&dir);
            return dir;
        }
    }
    panic!("libascend_ptq.so not found under {}", target.display());
}

/// `dir/<SONAME> -> libascend_ptq.so`, created atomically (tests run in parallel processes).
fn link_soname(dir: &Path) {
    let link = dir.join(env!("ASCEND_PTQ_SONAME"));
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("libascend_ptq.so")) {
        return;
    }
    let tmp = dir.join(format!(".{}.{}", env!("ASCEND_PTQ_SONAME"), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink("libascend_ptq.so", &tmp).unwrap_or_else(|e| panic!("symlink {}: {e}", tmp.display()));
    std::fs::rename(&tmp, &link).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), link.display()));
}

/// `aclsimGetLiveCounts`' struct (the simulator's, and the test fake's): objects created and
/// not yet destroyed.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LiveCounts {
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

/// The ACL simulator cdylib (`ffi/acl-sim`), built for this test run's profile with
/// `cargo build -p ascend-acl-sim` (a no-op when scripts/test.sh built it already).
/// `ASCEND_PTQ_ACL_SIM_LIB` overrides the path. A failed build fails the test.
pub fn acl_sim_lib() -> PathBuf {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("ASCEND_PTQ_ACL_SIM_LIB") {
        return PathBuf::from(p);
    }
    let profile_dir = target_dir();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--quiet", "-p", "ascend-acl-sim", "--manifest-path"]).arg(repo_root().join("Cargo.toml"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    cmd.env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"));
    let status = cmd.status().expect("run cargo build -p ascend-acl-sim");
    assert!(status.success(), "cargo build -p ascend-acl-sim failed");
    let path = profile_dir.join(format!("{}ascendcl_sim{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(path.exists(), "the ACL simulator {} is missing after building it", path.display());
    *built = Some(path.clone());
    path
}

/// The session's fused plan (element-wise tails folded into the convolutions at plan time)
/// gives bit-for-bit the outputs of the op-per-node plan: `outputs` is `session.run(inputs)`.
/// Also checks that something fused: every real model of the asset set has conv tails.
pub fn assert_fusion_exact(
    what: &str,
    session: &ascend_ptq::engine::Session,
    outputs: &[(String, ascend_ptq::engine::Tensor)],
    inputs: std::collections::HashMap<String, ascend_ptq::engine::Tensor>,
) {
    assert!(session.fused_step_count() < session.step_count(), "{what}: no element-wise tail was fused");
    let unfused = session.run_unfused(inputs).unwrap();
    assert_eq!(outputs.len(), unfused.len());
    for ((name, fused), (_, plain)) in outputs.iter().zip(&unfused) {
        let (a, b) = (fused.to_f64_vec(), plain.to_f64_vec());
        assert_eq!(a.len(), b.len(), "{what} {name}: length");
        let differ = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
        assert_eq!(differ, 0, "{what} {name}: {differ} of {} values differ between the fused and the unfused plan", a.len());
    }
}

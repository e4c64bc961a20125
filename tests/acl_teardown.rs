//! Failed ACL releases (`aclrtFree`, `aclmdlUnload`, `aclrtDestroy*`, ...) in the safe layer's
//! `Drop`s are recorded, returned by the next fallible call, drained by
//! `Acl::take_teardown_errors` and listed in the compare report, proven with the simulator's
//! failure injection `ASCEND_PTQ_SIM_FAIL`. The injection is process-wide, so every case runs
//! in a child process: this test binary re-run on `child_process_case`, or the CLI.

mod common;

use std::collections::HashMap;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::process::Command;

use ascend_ptq::device::acl::{Acl, AclError, Error};
use ascend_ptq::device::om::{SimPrecision, SimulatedBuild, write_simulated_om};
use ascend_ptq::onnx::{SaveOptions, save_model};
use common::LiveCounts;
use common::models::{C_IN, H, W, int8_conv_deploy_model};

/// Set in a child process: which case it runs.
const CASE_VAR: &str = "ASCEND_PTQ_TEST_TEARDOWN_CASE";
const INJECT_VAR: &str = "ASCEND_PTQ_SIM_FAIL";

/// A simulated int8 OM of the conv deploy model (input `x` [1,3,4,6] f32, output `y`).
fn int8_om(dir: &Path, name: &str) -> PathBuf {
    let onnx = dir.join("deploy.onnx");
    save_model(&int8_conv_deploy_model(), &onnx, &SaveOptions::default()).unwrap();
    let shapes = HashMap::from([("x".to_string(), vec![1, C_IN as i64, H as i64, W as i64])]);
    let om = dir.join(name);
    let build = SimulatedBuild {
        onnx_path: &onnx,
        precision: SimPrecision::Int8,
        input_shapes: &shapes,
        soc_version: "Ascend310P3",
        aipp: None,
        output_type_fp16: false,
        cmdline: "ascend-ptq build --simulate deploy.onnx".into(),
    };
    write_simulated_om(&om, &build).unwrap();
    om
}

fn injected(call: &'static str, code: i32) -> String {
    format!("{call}: failure injected by {INJECT_VAR} (code {code})")
}

/// (call, code, name, recent message) of each error.
fn parts(errors: &[AclError]) -> Vec<(&'static str, i32, &'static str, Option<String>)> {
    errors.iter().map(|e| (e.call, e.code, e.name, e.recent.clone())).collect()
}

/// Runs `case` in a child process with `ASCEND_PTQ_SIM_FAIL=inject`.
fn run_case(case: &str, inject: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_process_case", "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .env(INJECT_VAR, inject)
        .env("ASCEND_PTQ_ACL_SIM_LIB", common::acl_sim_lib())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "case {case} failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains(&format!("teardown case {case}: checked")), "case {case} did not run:\n{stdout}\n{stderr}");
}

/// The cases below, in the child processes `run_case` starts; a no-op in the normal run.
#[test]
fn child_process_case() {
    let Ok(case) = std::env::var(CASE_VAR) else { return };
    match case.as_str() {
        "every_drop" => every_drop_case(),
        "next_call" => next_call_case(),
        other => panic!("unknown case {other}"),
    }
    println!("teardown case {case}: checked");
}

const EVERY_RELEASE: [(&str, i32); 8] = [
    ("aclrtDestroyStream", 507000),
    ("aclrtFree", 500001),
    ("aclDestroyDataBuffer", 500002),
    ("aclmdlDestroyDataset", 500003),
    ("aclmdlUnload", 100011),
    ("aclmdlDestroyDesc", 500004),
    ("aclrtDestroyContext", 107002),
    ("aclrtResetDevice", 107001),
];

#[test]
fn every_drop_records_its_failed_release_with_call_and_code() {
    let inject = EVERY_RELEASE.iter().map(|(call, code)| format!("{call}:{code}")).collect::<Vec<_>>().join(",");
    run_case("every_drop", &inject);
}

/// Each of the seven `Drop`s with its release failing: the log holds every failure, in drop
/// order, with the call, code, code name and the simulator's message.
fn every_drop_case() {
    let tmp = tempfile::tempdir().unwrap();
    let om = int8_om(tmp.path(), "net.om");
    let acl = Acl::open(Some(&common::acl_sim_lib())).unwrap();
    let device = acl.device(0).unwrap();
    let ctx = device.create_context().unwrap();
    let stream = ctx.create_stream().unwrap();
    let buffer = ctx.alloc(64).unwrap();
    let model = ctx.load_model(&om).unwrap();
    assert_eq!(acl.take_teardown_errors(), Vec::new(), "nothing is released before the drops");
    drop(stream);
    drop(buffer);
    drop(model);
    drop(ctx);
    drop(device);

    let code = |call: &str| EVERY_RELEASE.iter().find(|(c, _)| *c == call).unwrap().1;
    let expect = |call: &'static str| (call, code(call), ascend_ptq::device::acl::error_name(code(call)), Some(injected(call, code(call))));
    let model_io = [
        // Input set, then output set: data buffer, dataset, device memory (one buffer each).
        expect("aclDestroyDataBuffer"),
        expect("aclmdlDestroyDataset"),
        expect("aclrtFree"),
        expect("aclDestroyDataBuffer"),
        expect("aclmdlDestroyDataset"),
        expect("aclrtFree"),
    ];
    let mut expected = vec![expect("aclrtDestroyStream"), expect("aclrtFree")];
    expected.extend(model_io);
    expected.extend([expect("aclmdlUnload"), expect("aclmdlDestroyDesc"), expect("aclrtDestroyContext"), expect("aclrtResetDevice")]);
    let errors = acl.take_teardown_errors();
    assert_eq!(parts(&errors), expected);
    assert_eq!(errors[1].name, "ACL_ERROR_FAILURE");
    assert_eq!(
        errors[1].to_string(),
        "aclrtFree failed: 500001 ACL_ERROR_FAILURE (aclrtFree: failure injected by ASCEND_PTQ_SIM_FAIL (code 500001))"
    );
    assert_eq!(acl.take_teardown_errors(), Vec::new(), "a drain empties the log");
}

#[test]
fn the_next_call_returns_a_failed_release_once() {
    run_case("next_call", "aclrtFree:500001");
}

/// The simulator's live objects (dlopen of the same file: the same library and state).
fn live() -> LiveCounts {
    let lib = unsafe { libloading::Library::new(common::acl_sim_lib()) }.unwrap();
    let f = unsafe { lib.get::<unsafe extern "C" fn(*mut LiveCounts) -> c_int>(b"aclsimGetLiveCounts\0") }.unwrap();
    let mut counts = LiveCounts::default();
    assert_eq!(unsafe { f(&mut counts) }, 0);
    counts
}

/// `aclrtFree` fails: the next fallible call on any handle of the same `Acl` returns that error
/// without doing its work, the call after it works, and another `Acl` is not affected.
fn next_call_case() {
    let acl = Acl::open(Some(&common::acl_sim_lib())).unwrap();
    let other = Acl::open(Some(&common::acl_sim_lib())).unwrap();
    let ctx = acl.device(0).unwrap().create_context().unwrap();
    drop(ctx.alloc(16).unwrap());
    let before = live();
    assert_eq!(before.device_buffers, 1, "the failed aclrtFree left the memory allocated");

    let err = ctx.alloc(16).err().expect("the next call reports the failed release");
    assert!(matches!(err, Error::Call(_)), "{err:?}");
    let e = err.acl().unwrap();
    assert_eq!((e.call, e.code, e.name), ("aclrtFree", 500001, "ACL_ERROR_FAILURE"));
    assert_eq!(e.recent.as_deref(), Some(injected("aclrtFree", 500001).as_str()));
    assert_eq!(live(), before, "the failing call allocated nothing");

    let mut buffer = ctx.alloc(16).expect("the call after it works");
    buffer.fill(3).unwrap();
    assert_eq!(buffer.to_vec().unwrap(), vec![3; 16]);
    drop(buffer);
    assert!(other.device_count().is_ok(), "another Acl::open has its own log");
    let err = acl.device_count().expect_err("any handle of the same Acl reports it");
    assert_eq!(err.acl().map(|e| (e.call, e.code)), Some(("aclrtFree", 500001)));
    assert_eq!(acl.device_count().unwrap(), 1);

    let drained = acl.take_teardown_errors();
    assert_eq!(drained.iter().map(|e| (e.call, e.code)).collect::<Vec<_>>(), vec![("aclrtFree", 500001); 2], "reported ones too");
    assert_eq!(other.take_teardown_errors(), Vec::new());
}

/// `ascend-ptq compare` through the simulator, clean and with failing releases: the same
/// report except `teardown_errors`, which lists every failure (JSON) and shows it (HTML).
#[test]
fn compare_report_lists_teardown_errors_in_json_and_html() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Both OMs are the int8 one: the accuracy is not what this test is about.
    let om = int8_om(t, "net.om");
    std::fs::create_dir(t.join("data")).unwrap();
    for k in 0..2 {
        let values: Vec<u8> = (0..C_IN * H * W).flat_map(|i| ((i * 7 + k * 13) as f32 / 50.0 - 0.7).to_le_bytes()).collect();
        std::fs::write(t.join(format!("data/{k}.bin")), values).unwrap();
    }
    let sim = common::acl_sim_lib();
    let run = |report: &str, inject: Option<&str>| -> (serde_json::Value, String) {
        let mut cmd = common::cli();
        cmd.arg("compare").arg("--int8").arg(&om).arg("--fp16").arg(&om);
        cmd.arg("--data_dir").arg(t.join("data")).args(["--data_types", "float32", "--batch_num", "2"]);
        cmd.arg("--acl-lib").arg(&sim).arg("--report").arg(t.join(report));
        match inject {
            Some(spec) => cmd.env(INJECT_VAR, spec),
            None => cmd.env_remove(INJECT_VAR),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "compare {inject:?}: {}", String::from_utf8_lossy(&out.stderr));
        let json = serde_json::from_slice(&std::fs::read(t.join(format!("{report}.json"))).unwrap()).unwrap();
        (json, std::fs::read_to_string(t.join(format!("{report}.html"))).unwrap())
    };
    let (mut clean, clean_html) = run("clean", None);
    let (mut failing, failing_html) = run("failing", Some("aclrtFree:507000,aclmdlUnload:100011"));

    assert_eq!(clean["teardown_errors"], serde_json::json!([]));
    assert!(!clean_html.contains("ACL teardown error"));
    let free = "aclrtFree failed: 507000 ACL_ERROR_RT_INTERNAL_ERROR (aclrtFree: failure injected by ASCEND_PTQ_SIM_FAIL (code 507000))";
    let unload =
        "aclmdlUnload failed: 100011 ACL_ERROR_INVALID_MODEL_ID (aclmdlUnload: failure injected by ASCEND_PTQ_SIM_FAIL (code 100011))";
    // The fp16 runner drops first, then the int8 one; each frees its input and output memory.
    assert_eq!(failing["teardown_errors"], serde_json::json!([free, free, unload, free, free, unload]));
    let line = |e: &str| format!("<p class=\"teardown\">ACL teardown error (not an accuracy result): {e}</p>");
    assert_eq!(failing_html.matches(&line(free)).count(), 4, "{failing_html}");
    assert_eq!(failing_html.matches(&line(unload)).count(), 2);
    assert_eq!(failing["pass"], serde_json::json!(true), "teardown errors are not an accuracy verdict");

    // Everything else is the same report (the paths differ only by the report name, not given).
    for report in [&mut clean, &mut failing] {
        report.as_object_mut().unwrap().remove("teardown_errors");
    }
    assert_eq!(clean, failing);
}

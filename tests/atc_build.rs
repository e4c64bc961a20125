//! `ascend-ptq build` against the stand-in ATC (tests/fixtures/atc-standin/atc, which records
//! its argv/cwd/environment and writes a small valid OM): the exact command lines of the
//! seed-like YOLO case, build.json, logs, om-info on the results, the timeout kill of the whole
//! process group, failure reports, the missing-ATC message and the prechecks.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use ascend_ptq::onnx::{DataType, SaveOptions, TensorData, save_model};
use common::graph::*;
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    deploy: PathBuf,
    aipp: PathBuf,
    record: PathBuf,
    out: PathBuf,
}

fn standin() -> PathBuf {
    common::repo_root().join("tests/fixtures/atc-standin/atc")
}

/// A YOLO-like float model with the `images` [1,3,640,640] input, and its deploy form with
/// AscendQuant → int8 Conv → AscendDequant (built directly: `build` only reads its graph).
fn write_models(dir: &Path) -> (PathBuf, PathBuf) {
    let conv_attrs = || vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])];
    let io = || {
        (vec![value_info("images", DataType::Float, &[1, 3, 640, 640])], vec![value_info("output0", DataType::Float, &[1, 4, 320, 320])])
    };
    let (inputs, outputs) = io();
    let float = model(
        vec![node("Conv", "conv1", &["images", "w", "b"], &["c"], conv_attrs()), node("Relu", "relu1", &["c"], &["output0"], vec![])],
        vec![tensor("w", &[4, 3, 3, 3], TensorData::F32(vec![0.01; 108])), tensor("b", &[4], TensorData::F32(vec![0.0; 4]))],
        inputs,
        outputs,
        13,
    );
    let (inputs, outputs) = io();
    let deploy = model(
        vec![
            node(
                "AscendQuant",
                "conv1.quant",
                &["images"],
                &["q"],
                vec![attr_f("scale", 127.0), attr_f("offset", 0.0), attr_s("dst_type", "INT8")],
            ),
            node("Conv", "conv1", &["q", "w", "b"], &["acc"], conv_attrs()),
            node("AscendDequant", "conv1.dequant", &["acc", "conv1.dequant.param"], &["c"], vec![attr_i("dtype", 0)]),
            node("Relu", "relu1", &["c"], &["output0"], vec![]),
        ],
        vec![
            tensor("w", &[4, 3, 3, 3], TensorData::I8(vec![1; 108])),
            tensor("b", &[4], TensorData::I32(vec![0; 4])),
            tensor("conv1.dequant.param", &[4], TensorData::U64(vec![(0.0001f32).to_bits() as u64; 4])),
        ],
        inputs,
        outputs,
        13,
    );
    let (m, d) = (dir.join("yolo.onnx"), dir.join("yolo_deploy_model.onnx"));
    save_model(&float, &m, &SaveOptions::default()).unwrap();
    save_model(&deploy, &d, &SaveOptions::default()).unwrap();
    (m, d)
}

/// The AIPP config our `aipp` command writes for YOLO preprocessing (x/255, RGB, 640x640).
fn write_aipp(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("imgs")).unwrap();
    let params = dir.join("params.json");
    let sec = json!({"img_root": "imgs", "fixed_scale": 1, "batch_size": 1, "des_channels": 3, "des_height": 640,
        "des_width": 640, "is_BGR2RGB": 1, "means": [0, 0, 0], "stds": [255, 255, 255]});
    std::fs::write(&params, json!({ "det_pre_params": sec }).to_string()).unwrap();
    let cfg = dir.join("model_aipp.cfg");
    let out = common::cli().arg("aipp").arg(&params).arg("--out").arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cfg
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (model, deploy) = write_models(&root);
    let aipp = write_aipp(&root);
    Fixture { record: root.join("atc-calls.jsonl"), out: root.join("om"), _dir: dir, root, model, deploy, aipp }
}

impl Fixture {
    /// `build` through the stand-in ATC in `mode`, with `--input_shape images:1,3,640,640` unless
    /// `args` give one.
    fn build(&self, mode: &str, args: &[&str]) -> Output {
        let mut cmd = common::cli();
        cmd.arg("build");
        if !args.contains(&"--input_shape") {
            cmd.args(["--input_shape", "images:1,3,640,640"]);
        }
        cmd.arg("--out_dir")
            .arg(&self.out)
            .arg("--atc")
            .arg(standin())
            .args(args)
            .env("ATC_STANDIN_MODE", mode)
            .env("ATC_STANDIN_RECORD", &self.record);
        cmd.output().unwrap()
    }

    fn seed_args(&self) -> Vec<String> {
        let s = |p: &Path| p.to_str().unwrap().to_string();
        [
            "--model",
            &s(&self.model),
            "--deploy",
            &s(&self.deploy),
            "--aipp",
            &s(&self.aipp),
            "--soc_version",
            "Ascend310P3",
            "--output_type",
            "FP32",
        ]
        .map(String::from)
        .to_vec()
    }

    fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn build_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.out.join("build.json")).expect("build.json written")).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn argv(rec: &Value) -> Vec<String> {
    rec["argv"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn om_info_json(om: &Path) -> Value {
    let out = common::cli().arg("om-info").arg(om).arg("--json").output().unwrap();
    assert!(out.status.success(), "om-info {}: {}", om.display(), text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn seed_like_build_runs_the_two_exact_atc_command_lines() {
    let f = fixture();
    let args = f.seed_args();
    let out = f.build("ok", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let (out_dir, deploy, model, aipp) = (f.out.display(), f.deploy.display(), f.model.display(), f.aipp.display());
    let expected = |source: &str, name: &str| {
        vec![
            format!("--model={source}"),
            "--framework=5".into(),
            format!("--output={out_dir}/{name}"),
            "--input_shape=images:1,3,640,640".into(),
            "--soc_version=Ascend310P3".into(),
            format!("--insert_op_conf={aipp}"),
            "--output_type=FP32".into(),
        ]
    };
    let recs = f.records();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(argv(&recs[0]), expected(&deploy.to_string(), "yolo_int8"));
    assert_eq!(argv(&recs[1]), expected(&model.to_string(), "yolo_fp16"));
    for r in &recs {
        assert_eq!(r["cwd"], json!(f.out.to_str().unwrap()), "ATC runs in the output directory");
        assert_eq!(r["pgid"], r["pid"], "ATC leads its own process group");
        assert!(r["env"]["PATH"].is_string(), "the environment is passed through");
    }

    for (name, quantized) in [("yolo_int8", true), ("yolo_fp16", false)] {
        let om = f.out.join(format!("{name}.om"));
        let info = om_info_json(&om);
        let m = &info["models"][0];
        assert_eq!(m["soc_version"], "Ascend310P3");
        assert_eq!(m["quantization"]["quantized"], json!(quantized), "{name}");
        assert_eq!(m["aipp"]["static_aipp"], json!(true));
        assert_eq!(m["inputs"][0]["dtype"], "UINT8");
        assert_eq!(m["inputs"][0]["shape"], json!([1, 640, 640, 3]));
        assert!(m["atc_cmdline"].as_str().unwrap().contains(&format!("--output={out_dir}/{name}")));
        assert!(stdout.lines().any(|l| l.starts_with(&format!("{name}.om: ")) && l.contains("soc Ascend310P3")), "{stdout}");

        let log = std::fs::read_to_string(f.out.join(format!("{name}.atc.log"))).unwrap();
        assert!(log.contains("ATC start working now, please wait for a moment."), "{log}");
        assert!(log.contains("ATC run success, welcome to the next use."), "{log}");
    }
    assert!(stdout.lines().find(|l| l.starts_with("yolo_int8.om")).unwrap().contains("INT8"));

    let report = f.build_json();
    assert_eq!(report["soc_version"], "Ascend310P3");
    assert_eq!(report["atc_found_by"], "--atc");
    let builds = report["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2);
    let atc = standin().to_str().unwrap().to_string();
    for (b, rec, name) in [(&builds[0], &recs[0], "yolo_int8"), (&builds[1], &recs[1], "yolo_fp16")] {
        assert_eq!(b["name"], name);
        assert_eq!(b["status"], "success");
        assert_eq!(b["exit_code"], 0);
        let mut full = vec![atc.clone()];
        full.extend(argv(rec));
        assert_eq!(b["argv"], json!(full));
        assert_eq!(b["command"], json!(format!("cd {out_dir} && {}", full.join(" "))));
        assert_eq!(b["om"], json!(format!("{out_dir}/{name}.om")));
        assert_eq!(b["log"], json!(format!("{out_dir}/{name}.atc.log")));
        assert!(b["duration_s"].as_f64().is_some());
        assert!(b["summary"].as_str().unwrap().starts_with(&format!("{name}.om: ")));
    }
    assert_eq!(builds[0]["precision"], "int8");
    assert_eq!(builds[1]["precision"], "fp16");
}

#[test]
fn only_fp16_needs_only_the_float_model_and_passes_extra_args() {
    let f = fixture();
    let m = f.model.to_str().unwrap();
    let out = f.build("ok", &["--model", m, "--soc_version", "Ascend310B1", "--only", "fp16", "--", "--log=info"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = f.records();
    assert_eq!(recs.len(), 1);
    let a = argv(&recs[0]);
    assert_eq!(a[0], format!("--model={m}"));
    assert_eq!(a[2], format!("--output={}/yolo_fp16", f.out.display()));
    assert_eq!(a.last().unwrap(), "--log=info");
    assert!(!a.iter().any(|x| x.starts_with("--insert_op_conf") || x.starts_with("--output_type")), "{a:?}");
    assert!(f.out.join("yolo_fp16.om").is_file() && !f.out.join("yolo_int8.om").exists());
    let report = f.build_json();
    assert_eq!(report["builds"].as_array().unwrap().len(), 1);
    assert_eq!(report["builds"][0]["status"], "success");

    // --only int8 names the deploy model as the one it needs.
    let out = f.build("ok", &["--model", m, "--soc_version", "Ascend310B1", "--only", "int8"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--deploy: missing"), "{}", text(&out.stderr));
}

/// State letter of /proc/<pid>/stat, None when the process is gone.
fn proc_state(pid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let f = fixture();
    let started = Instant::now();
    let d = f.deploy.to_str().unwrap();
    let out = f.build("hang", &["--deploy", d, "--soc_version", "Ascend310P3", "--only", "int8", "--timeout", "2"]);
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert!(stderr.contains("did not finish within --timeout 2 s") && stderr.contains("process group was killed"), "{stderr}");
    let recs = f.records();
    assert_eq!(recs.len(), 1);
    for key in ["pid", "grandchild_pid"] {
        let pid = recs[0][key].as_i64().unwrap();
        // Gone, or a zombie waiting for a container init that does not reap.
        let state = proc_state(pid);
        assert!(matches!(state, None | Some('Z')), "{key} {pid} still runs (state {state:?})");
    }
    let report = f.build_json();
    assert_eq!(report["builds"][0]["status"], "timed_out");
    assert_eq!(report["builds"][0]["signal"], 15, "SIGTERM ended the stand-in");
    assert_eq!(report["builds"][0]["om"], Value::Null);
    let log = std::fs::read_to_string(f.out.join("yolo_int8.atc.log")).unwrap();
    assert!(log.contains("ATC start working now") && log.contains("timed out after 2 s"), "{log}");
}

#[test]
fn failing_atc_reports_exit_status_and_log_tail() {
    let f = fixture();
    let args = f.seed_args();
    let out = f.build("fail", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ATC failed building") && stderr.contains("yolo_int8.om (exit status 1)"), "{stderr}");
    assert!(stderr.contains("last 20 lines of"), "{stderr}");
    let tail: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("  | ")).collect();
    assert_eq!(tail.len(), 20, "{stderr}");
    assert!(tail.contains(&"stand-in log line 25") && tail.iter().any(|l| l.starts_with("ATC run failed")), "{tail:?}");
    assert!(!tail.contains(&"stand-in log line 1"), "only the last lines: {tail:?}");
    assert!(stderr.contains("to rerun by hand: cd "), "{stderr}");
    assert_eq!(f.records().len(), 1, "the fp16 build is not started after a failure");
    let report = f.build_json();
    let b = &report["builds"];
    assert_eq!((b[0]["status"].as_str(), b[0]["exit_code"].as_i64(), &b[0]["om"]), (Some("failed"), Some(1), &Value::Null));
    assert_eq!(b[1]["status"], "not_run");
    assert!(!f.out.join("yolo_int8.om").exists());
    // stderr is in the log too (its order against stdout depends on the two pipes).
    let log = std::fs::read_to_string(f.out.join("yolo_int8.atc.log")).unwrap();
    assert!(log.contains("E19999: stand-in failure") && log.contains("# ATC ended: exit status 1"), "{log}");
}

#[test]
fn missing_atc_names_the_cann_toolkit_and_set_env() {
    if Path::new("/usr/local/Ascend/ascend-toolkit/latest/bin/atc").exists() {
        eprintln!("*** SKIPPED: a real CANN toolkit is installed here ***");
        return;
    }
    let f = fixture();
    let out = common::cli()
        .args(["build", "--input_shape", "images:1,3,640,640", "--soc_version", "Ascend310P3", "--only", "fp16", "--model"])
        .arg(&f.model)
        .arg("--out_dir")
        .arg(&f.out)
        .env("PATH", "")
        .env_remove("ASCEND_TOOLKIT_HOME")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: ATC (the `atc` model converter) was not found"), "{stderr}");
    for needle in ["CANN's toolkit", "source /usr/local/Ascend/ascend-toolkit/set_env.sh", "--atc", "ASCEND_TOOLKIT_HOME is not set"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn prechecks_stop_before_atc_runs() {
    let f = fixture();
    let (m, d) = (f.model.to_str().unwrap(), f.deploy.to_str().unwrap());
    let refused = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["--soc_version", "Ascend310P3"];
        args.extend_from_slice(extra);
        let out = f.build("ok", &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: expected {n:?} in {stderr}");
        }
        assert!(f.records().is_empty(), "{args:?}: ATC must not run");
    };
    let mut wrong_name = vec!["--model", m, "--deploy", d, "--input_shape", "image:1,3,640,640"];
    refused(&wrong_name, &["--input_shape: 'image' is not an input of", "its inputs are: images [1,3,640,640]"]);
    wrong_name[5] = "images:1,3,640";
    refused(&wrong_name, &["'images' is given rank 3 (1,3,640)", "declares rank 4 [1,3,640,640]"]);
    refused(&["--deploy", m, "--only", "int8"], &["--deploy", "yolo.onnx", "not a deploy model", "0 AscendQuant"]);
    refused(&["--model", d, "--only", "fp16"], &["this is a deploy model"]);
    let missing = f.root.join("nope.onnx");
    refused(&["--model", missing.to_str().unwrap(), "--only", "fp16"], &["--model", "nope.onnx: no such file"]);

    let bad_aipp = f.root.join("bad_aipp.cfg");
    std::fs::write(&bad_aipp, "aipp_op {\n  aipp_mode: dynamic\n  max_src_image_size: 1000\n}\n").unwrap();
    refused(&["--deploy", d, "--only", "int8", "--aipp", bad_aipp.to_str().unwrap()], &["bad_aipp.cfg:2: aipp_mode", "static AIPP only"]);
    std::fs::write(&bad_aipp, "aipp_op {\n  aipp_mode: static\n  input_fromat: RGB888_U8\n}\n").unwrap();
    refused(
        &["--deploy", d, "--only", "int8", "--aipp", bad_aipp.to_str().unwrap()],
        &["bad_aipp.cfg:3: input_fromat: unknown aipp_op field"],
    );

    // An unknown SoC only warns: CANN adds chips.
    let out = f.build("ok", &["--model", m, "--only", "fp16", "--soc_version", "Ascend999"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: --soc_version Ascend999: not a SoC name ascend-ptq knows"), "{stderr}");
    let recs = f.records();
    assert_eq!(recs.len(), 1);
    assert!(argv(&recs[0]).contains(&"--soc_version=Ascend999".to_string()));
}

#[test]
fn missing_or_invalid_om_is_a_failure_naming_the_file() {
    for (mode, needle) in [("no-om", "ATC exited with status 0 but did not write this file"), ("bad-om", "ATC wrote an invalid OM")] {
        let f = fixture();
        let out = f.build(mode, &["--model", f.model.to_str().unwrap(), "--only", "fp16", "--soc_version", "Ascend310P3"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {stderr}");
        let om = f.out.join("yolo_fp16.om");
        assert!(stderr.contains(&format!("error: {}: {needle}", om.display())), "{mode}: {stderr}");
        let report = f.build_json();
        assert_eq!(report["builds"][0]["status"], "failed", "{mode}");
        assert_eq!(report["builds"][0]["om"], Value::Null, "{mode}");
        assert!(report["builds"][0]["error"].as_str().unwrap().contains(needle), "{mode}");
    }
}

#[test]
fn ctrl_c_kills_the_atc_group_and_records_the_interruption() {
    let f = fixture();
    let child = common::cli()
        .args(["build", "--input_shape", "images:1,3,640,640", "--soc_version", "Ascend310P3", "--only", "fp16", "--model"])
        .arg(&f.model)
        .arg("--out_dir")
        .arg(&f.out)
        .arg("--atc")
        .arg(standin())
        .env("ATC_STANDIN_MODE", "hang")
        .env("ATC_STANDIN_RECORD", &f.record)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the stand-in has started (it records itself first), then press "Ctrl-C".
    let started = Instant::now();
    while f.records().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "the stand-in never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child we spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted: ATC (yolo_fp16) and its process group were killed"), "{stderr}");
    let rec = &f.records()[0];
    for key in ["pid", "grandchild_pid"] {
        let state = proc_state(rec[key].as_i64().unwrap());
        assert!(matches!(state, None | Some('Z')), "{key} still runs (state {state:?})");
    }
    assert_eq!(f.build_json()["builds"][0]["status"], "interrupted");
}

/// The deploy model written by our own `calibration` passes the prechecks and is what ATC gets.
#[test]
fn deploy_model_from_calibration_builds() {
    let f = fixture();
    let bins = f.root.join("bins");
    std::fs::create_dir(&bins).unwrap();
    for b in 0..2usize {
        let v: Vec<u8> = (0..3 * 640 * 640).flat_map(|i| (((i * 7919 + b * 104_729) % 1000) as f32 / 1000.0).to_le_bytes()).collect();
        std::fs::write(bins.join(format!("{b:02}.bin")), v).unwrap();
    }
    let prefix = f.root.join("results/yolo");
    let out = common::cli()
        .arg("calibration")
        .arg("--model")
        .arg(&f.model)
        .arg("--save_path")
        .arg(&prefix)
        .args(["--input_shape", "images:1,3,640,640", "--data_types", "float32", "--batch_num", "2", "--eval_batches", "0"])
        .arg("--data_dir")
        .arg(&bins)
        .output()
        .unwrap();
    assert!(out.status.success(), "calibration: {}", text(&out.stderr));
    let deploy = f.root.join("results/yolo_deploy_model.onnx");
    let out = f.build("ok", &["--deploy", deploy.to_str().unwrap(), "--only", "int8", "--soc_version", "Ascend310P3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = f.records();
    assert_eq!(argv(&recs[0])[0], format!("--model={}", deploy.display()));
    assert_eq!(argv(&recs[0])[2], format!("--output={}/yolo_int8", f.out.display()), "the OM is named after the deploy prefix");
    assert_eq!(om_info_json(&f.out.join("yolo_int8.om"))["models"][0]["quantization"]["quantized"], json!(true));
}

/// `build` reads what ATC wrote with the same reader as `om-info`: here a real CANN 5 OM (the
/// AutoEncoder of `../shared/fixtures/real-om/`, copied to the output by the stand-in), whose
/// SoC and input the summary and build.json report.
#[test]
fn build_reads_a_real_atc_om_with_the_om_info_reader() {
    let f = fixture();
    let real = common::repo_root().join("../shared/fixtures/real-om/autoencoder_ascend310_cann5.om");
    assert!(real.is_file(), "{} is missing", real.display());
    let m = f.model.to_str().unwrap();
    let mut cmd = common::cli();
    cmd.args(["build", "--input_shape", "images:1,3,640,640", "--soc_version", "Ascend310", "--only", "fp16", "--model", m])
        .arg("--out_dir")
        .arg(&f.out)
        .arg("--atc")
        .arg(standin())
        .env("ATC_STANDIN_MODE", "copy")
        .env("ATC_STANDIN_COPY", &real)
        .env("ATC_STANDIN_RECORD", &f.record);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("yolo_fp16.om: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("618993 bytes") && line.contains("soc Ascend310") && line.contains("input FLOAT[100,784] NHWC"), "{line}");
    assert!(line.contains("not quantized"), "{line}");
    let report = f.build_json();
    assert_eq!(report["builds"][0]["status"], "success");
    let summary = report["builds"][0]["summary"].as_str().unwrap();
    assert!(summary.contains("input FLOAT[100,784] NHWC") && line.starts_with(summary), "{summary} vs {line}");
}

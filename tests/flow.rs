//! `ascend-ptq flow` on both dialects of the guide's flow JSON — the repository's
//! `models/yolov6_params.json` and the guide's `scripts/model_pre_params_template.json`, their
//! text kept and only sizes, counts and paths substituted — with the stand-in ATC and with
//! `--simulate` (simulated OMs compared through the ACL simulator): the reference scripts'
//! file names, flow.json, reruns that skip finished steps, and a failed ATC step.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use common::flow_files::user_folder;

fn standin() -> PathBuf {
    common::repo_root().join("tests/fixtures/atc-standin/atc")
}

/// `ascend-ptq flow ARGS` in `root`, without any AscendCL library in the environment.
fn flow(root: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = common::cli();
    cmd.current_dir(root)
        .arg("flow")
        .args(args)
        .env_remove("ASCEND_PTQ_ACL_LIB")
        .env_remove("ASCEND_TOOLKIT_HOME")
        .env_remove("ASCEND_HOME_PATH");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run ascend-ptq flow")
}

fn text(out: &Output) -> String {
    format!("{:?}\nstdout:\n{}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn flow_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["steps"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().into(), s["status"].as_str().unwrap().into())).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const INT8_FILES: [&str; 7] = [
    "yolov6n_int8_deploy_model.onnx",
    "yolov6n_int8_fake_quant_model.onnx",
    "yolov6n_int8_record.txt",
    "yolov6n_int8_quant.json",
    "yolov6n_int8_quant_report.json",
    "yolov6n_int8_report.html",
    "yolov6n_int8_deploy_model_inc_pre.om",
];

#[test]
fn the_repository_json_with_the_standin_atc_names_files_as_the_scripts_and_reruns_nothing() {
    let tmp = user_folder();
    let root = tmp.path();
    let record = root.join("atc-calls.jsonl");
    let atc = standin();
    let args = ["models/yolov6_params.json", "--atc", atc.to_str().unwrap()];
    let out = flow(root, &args, &[("ATC_STANDIN_RECORD", &record)]);
    assert!(out.status.success(), "{}", text(&out));

    // The bins where preprocess_data.py puts them, the rest under outputRootDir.
    assert!(root.join("calibration_data/batch2/batch0001.bin").is_file() && root.join("calibration_data/batch2/batch0002.bin").is_file());
    let out_dir = root.join("quant_test");
    for f in INT8_FILES.iter().chain(&["yolov6n_fp16_deploy_model_inc_pre.om"]) {
        assert!(out_dir.join(f).is_file(), "{f} missing:\n{}", text(&out));
    }
    let report = flow_json(&out_dir.join("flow.json"));
    let expected = [("preprocess", "done"), ("calibration", "done"), ("atc_int8", "done"), ("atc_fp16", "done"), ("compare", "skipped")];
    assert_eq!(statuses(&report), pairs(&expected), "{report:#}");
    assert_eq!(report["simulated"], false);
    let calibration = &report["steps"][1];
    assert!(calibration["command"].as_str().unwrap().contains("--input_shape images:2,3,32,32 "), "{calibration:#}");
    assert!(calibration["command"].as_str().unwrap().ends_with("--batch_num 2"), "{calibration:#}");
    assert!(calibration["duration_s"].as_f64().unwrap() > 0.0);
    assert!(report["steps"][4]["note"].as_str().unwrap().contains("no AscendCL library"), "{report:#}");

    // ATC got what amct_onnx_act.sh / act.sh give it: the deploy model for int8, the float
    // model for fp16, inputShape without its shell quotes, the AIPP config, FP32 outputs.
    let calls: Vec<Value> = std::fs::read_to_string(&record).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(calls.len(), 2);
    let argv = |i: usize| -> Vec<String> { calls[i]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect() };
    let (int8, fp16) = (argv(0), argv(1));
    let has = |argv: &[String], prefix: &str, suffix: &str| argv.iter().any(|a| a.starts_with(prefix) && a.ends_with(suffix));
    assert!(has(&int8, "--model=", "quant_test/yolov6n_int8_deploy_model.onnx"), "{int8:?}");
    assert!(has(&int8, "--output=", "quant_test/yolov6n_int8_deploy_model_inc_pre"), "{int8:?}");
    assert!(
        has(&fp16, "--model=", "models/yolov6n.onnx") && has(&fp16, "--output=", "quant_test/yolov6n_fp16_deploy_model_inc_pre"),
        "{fp16:?}"
    );
    for a in [&int8, &fp16] {
        assert!(a.contains(&"--input_shape=images:2,3,32,32".to_string()) && a.contains(&"--output_type=FP32".to_string()), "{a:?}");
        assert!(a.contains(&"--soc_version=Ascend310P3".to_string()) && has(a, "--insert_op_conf=", "models/model_aipp.cfg"), "{a:?}");
    }

    // Rerun with the same inputs: nothing is redone, ATC is not called again.
    let out = flow(root, &args, &[("ATC_STANDIN_RECORD", &record)]);
    assert!(out.status.success(), "{}", text(&out));
    let report = flow_json(&out_dir.join("flow.json"));
    let expected = [
        ("preprocess", "up_to_date"),
        ("calibration", "up_to_date"),
        ("atc_int8", "up_to_date"),
        ("atc_fp16", "up_to_date"),
        ("compare", "skipped"),
    ];
    assert_eq!(statuses(&report), pairs(&expected), "{report:#}");
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 2);

    // A changed float model: calibration and both ATC builds are redone, preprocess is not.
    common::models::write_small_detector(&root.join("models/yolov6n.onnx"), Some(2));
    let out = flow(root, &args, &[("ATC_STANDIN_RECORD", &record)]);
    assert!(out.status.success(), "{}", text(&out));
    let report = flow_json(&out_dir.join("flow.json"));
    let expected =
        [("preprocess", "up_to_date"), ("calibration", "done"), ("atc_int8", "done"), ("atc_fp16", "done"), ("compare", "skipped")];
    assert_eq!(statuses(&report), pairs(&expected), "{report:#}");
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 4);
}

#[test]
fn the_guide_json_with_simulate_compares_through_the_simulator() {
    let tmp = user_folder();
    let root = tmp.path();
    let sim = common::acl_sim_lib();
    let out = flow(root, &["guide_params.json", "--simulate", "--acl-lib", sim.to_str().unwrap()], &[]);
    // Exit 0 (pass) or 3 (verdict below the threshold): both are finished flows.
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
    // The guide's dialect: bins in data/calibration/<img_root name>_batch<B>/, outputs in
    // output_<soc_version> as amct_onnx_act.sh names its folder.
    assert!(root.join("data/calibration/imgs_batch2/batch0001.bin").is_file());
    let out_dir = root.join("output_Ascend310P3");
    for f in INT8_FILES.iter().chain(&["yolov6n_fp16_deploy_model_inc_pre.om", "yolov6n_compare.json", "yolov6n_compare.html"]) {
        assert!(out_dir.join(f).is_file(), "{f} missing:\n{}", text(&out));
    }
    let report = flow_json(&out_dir.join("flow.json"));
    let expected = [("preprocess", "done"), ("calibration", "done"), ("atc_int8", "done"), ("atc_fp16", "done"), ("compare", "done")];
    assert_eq!(statuses(&report), pairs(&expected), "{report:#}");
    assert_eq!(report["simulated"], true);
    assert_eq!(report["verdict_pass"].as_bool(), Some(out.status.code() == Some(0)));
    assert!(report["steps"][2]["note"].as_str().unwrap().starts_with("SIMULATED OM"), "{report:#}");
    let compare = flow_json(&out_dir.join("yolov6n_compare.json"));
    let cos = compare["outputs"][0]["int8_vs_fp16"]["cosine_similarity"]["mean"].as_f64().unwrap();
    assert!(cos > 0.9, "int8 vs fp16 cosine {cos}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIMULATED"), "{}", text(&out));
    // compare --csv: msaccucmp's metric names, a row per input, output and pair, the JSON's values.
    let csv = std::fs::read_to_string(out_dir.join("yolov6n_compare.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "Index,Input,Output,Pair,CosineSimilarity,MaxAbsoluteError,AccumulatedRelativeError,RelativeEuclideanDistance,\
             KullbackLeiblerDivergence,StandardDeviation,MeanAbsoluteError,RootMeanSquareError,MaxRelativeError,MeanRelativeError"
        )
    );
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    let inputs = compare["inputs"].as_array().unwrap();
    assert_eq!(rows.len(), inputs.len() * 3, "{csv}");
    for (i, input) in inputs.iter().enumerate() {
        let row = &rows[i * 3];
        assert_eq!((row[0].as_str(), row[3].as_str()), (input["index"].to_string().as_str(), "int8_vs_fp16"), "{csv}");
        assert_eq!(row.len(), 14, "{row:?}");
        let want = input["outputs"][0]["int8_vs_fp16"]["cosine_similarity"].as_f64().unwrap();
        assert!((row[4].parse::<f64>().unwrap() - want).abs() <= 5e-7, "{csv}");
    }
}

#[test]
fn a_failed_atc_step_stops_the_flow_with_its_log() {
    let tmp = user_folder();
    let root = tmp.path();
    let atc = standin();
    let record = root.join("calls.jsonl");
    let mode = PathBuf::from("fail");
    let out = flow(
        root,
        &["models/yolov6_params.json", "--atc", atc.to_str().unwrap()],
        &[("ATC_STANDIN_RECORD", &record), ("ATC_STANDIN_MODE", &mode)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: step atc_int8 failed: ATC failed building"), "{stderr}");
    assert!(stderr.contains("log: ") && stderr.contains("yolov6n_int8_deploy_model_inc_pre.atc.log"), "{stderr}");
    let report = flow_json(&root.join("quant_test/flow.json"));
    let expected =
        [("preprocess", "done"), ("calibration", "done"), ("atc_int8", "failed"), ("atc_fp16", "not_run"), ("compare", "not_run")];
    assert_eq!(statuses(&report), pairs(&expected), "{report:#}");
    let step = &report["steps"][2];
    assert!(Path::new(step["log"].as_str().unwrap()).is_file(), "{step:#}");
    assert!(step["error"].as_str().unwrap().contains("to rerun by hand: cd "), "{step:#}");
    // A missing ATC is refused before any step runs.
    let out = flow(root, &["models/yolov6_params.json", "--atc", "/nonexistent/atc"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: --atc: "), "{}", text(&out));
    // So are bad task options (they would otherwise fail only at their step, minutes later).
    for (args, start) in [
        (["--accuracy_target", "f1>0.9"], "error: --accuracy_target: "),
        (["--task", "nonsense"], "error: --task/--threshold: "),
        (["--threshold", "mse>=1"], "error: --task/--threshold: "),
    ] {
        let out = flow(root, &["models/yolov6_params.json", "--atc", atc.to_str().unwrap(), args[0], args[1]], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).starts_with(start), "{args:?}: {}", text(&out));
    }
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

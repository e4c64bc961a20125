//! amct_onnx's command line as its users type it (the guide in ../shared/seed/README-seed.md
//! and the repository's scripts/amct_onnx_act.sh): argparse's unique-prefix abbreviations
//! (`--data_type`), only --model and --save_path required, --evaluator refused with what to
//! use instead, and the user's own shell script run unchanged with `amct_onnx` → ascend-ptq
//! and `atc` → the stand-in ATC.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SEED: &str = "../shared/seed";

fn write_model(path: &Path, batch: Option<i64>) {
    common::models::write_small_detector(path, batch);
}

/// `count` float32 bins of `batch` images each, as preprocess_data.py names them.
fn write_bins(dir: &Path, batch: usize, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 0..count {
        let bytes: Vec<u8> = (0..batch * 3 * 32 * 32).flat_map(|i| (((i as f32) * 0.013 + b as f32).sin() * 2.0).to_le_bytes()).collect();
        std::fs::write(dir.join(format!("batch{b}.bin")), bytes).unwrap();
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    common::cli().current_dir(dir).args(args).output().expect("run ascend-ptq")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{:?}\n{}\n{}", out.status, String::from_utf8_lossy(&out.stdout), stderr(out));
}

const OUTPUTS: [&str; 6] =
    ["_deploy_model.onnx", "_fake_quant_model.onnx", "_record.txt", "_quant.json", "_quant_report.json", "_report.html"];

fn assert_outputs(prefix: &Path) {
    for suffix in OUTPUTS {
        let p = PathBuf::from(format!("{}{suffix}", prefix.display()));
        assert!(p.is_file(), "{} missing", p.display());
    }
}

#[test]
fn the_guides_literal_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_model(&root.join("models/yolov6n.onnx"), None);
    write_bins(&root.join("data/calibration/imgs_batch1"), 12, 2);
    // The guide's line with only the image size substituted (640 → 32: a small test model).
    let line = r#"calibration --model models/yolov6n.onnx --input_shape "images:12,3,32,32" --data_type float32 --data_dir data/calibration/imgs_batch1 --save_path ./output_Ascend310P3/yolov6n_int8 --batch_num 2"#;
    let args = shell_words(line);
    let out = run_in(root, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ok(&out);
    assert_outputs(&root.join("output_Ascend310P3/yolov6n_int8"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 batch(es)"), "{stdout}");
}

#[test]
fn only_model_save_path_and_data_dir_are_needed_for_a_static_model() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_model(&root.join("m.onnx"), Some(1));
    write_bins(&root.join("bins"), 1, 1);
    // `--k=v` and `--k v` mixed, no --input_shape, no --data_types, abbreviated --data.
    let out = run_in(root, &["calibration", "--model=m.onnx", "--save_path", "out/m", "--data_d=bins"]);
    assert_ok(&out);
    assert_outputs(&root.join("out/m"));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(report_file(root, "out/m")).unwrap()).unwrap();
    assert_eq!(report["input_shape"], "images:1,3,32,32");
    assert_eq!(report["data_types"], "float32");

    // Without --data_dir: amct_onnx's own requirement, explained.
    let out = run_in(root, &["calibration", "--model", "m.onnx", "--save_path", "out2/m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: --data_dir: is required"), "{}", stderr(&out));
    assert!(!root.join("out2/m_deploy_model.onnx").exists());
}

/// The per-layer report (quant.json is the msaccucmp fusion rule).
fn report_file(root: &Path, prefix: &str) -> PathBuf {
    root.join(format!("{prefix}_quant_report.json"))
}

#[test]
fn a_dynamic_model_without_input_shape_names_its_dynamic_dims() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_model(&root.join("m.onnx"), None);
    write_bins(&root.join("bins"), 1, 1);
    let out = run_in(root, &["calibration", "--model", "m.onnx", "--save_path", "out/m", "--data_dir", "bins"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("--input_shape: not given, and the inputs of m.onnx are not all static"), "{err}");
    assert!(err.contains("'images' has dynamic dim 0 'batch' (\"images:?,3,32,32\")"), "{err}");
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates_and_evaluator_says_what_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = run_in(root, &["calibration", "--model", "m.onnx", "--save_path", "o/m", "--data", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), "error: ambiguous option: --data could match --data_dir, --data_types");

    write_model(&root.join("m.onnx"), Some(1));
    let out = run_in(root, &["calibration", "--model", "m.onnx", "--save_path", "o/m", "--evaluator", "evaluator.py"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: --evaluator: evaluator.py is a Python evaluator for amct_onnx; ascend-ptq runs no Python"), "{err}");
    assert!(err.contains("--data_dir") && err.contains("ascend-ptq preprocess"), "{err}");

    // `--h` (amct_onnx's spelling of --help): only --model and --save_path are required.
    let out = run_in(root, &["calibration", "--h"]);
    assert_ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: ascend-ptq calibration [OPTIONS] --model <MODEL> --save_path <DIR/PREFIX>\n"), "{help}");
}

/// The repository's scripts/amct_onnx_act.sh, unchanged, with `amct_onnx` resolving to
/// ascend-ptq (a symlink is all a user needs) and `atc` to the stand-in ATC.
#[test]
fn amct_onnx_act_sh_runs_unchanged() {
    let script = common::repo_root().join(SEED).join("scripts/amct_onnx_act.sh");
    let aipp = common::repo_root().join(SEED).join("models/model_aipp.cfg");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ascend-ptq"), bin.join("amct_onnx")).unwrap();
    std::os::unix::fs::symlink(common::repo_root().join("tests/fixtures/atc-standin/atc"), bin.join("atc")).unwrap();
    write_model(&root.join("models/yolov6n.onnx"), None);
    write_bins(&root.join("data/calibration/imgs_batch1"), 1, 2);
    let record = root.join("atc-calls.jsonl");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // quant_all_script.py's call: onnx, input_shape, data, prefix, batch_num, soc, aipp cfg.
    let out = Command::new("bash")
        .arg(&script)
        .args(["models/yolov6n.onnx", "images:1,3,32,32", "data/calibration/imgs_batch1", "yolov6n_int8", "2", "Ascend310P3"])
        .arg(&aipp)
        .current_dir(root)
        .env("PATH", path)
        .env("ATC_STANDIN_RECORD", &record)
        .output()
        .unwrap();
    assert_ok(&out);
    assert_outputs(&root.join("output_Ascend310P3/yolov6n_int8"));
    assert!(root.join("output_Ascend310P3/yolov6n_int8_deploy_model_inc_pre.om").is_file());
    let calls = std::fs::read_to_string(&record).unwrap();
    let call: serde_json::Value = serde_json::from_str(calls.lines().next().unwrap()).unwrap();
    let argv: Vec<String> = call["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    assert!(argv.contains(&"--model=./output_Ascend310P3/yolov6n_int8_deploy_model.onnx".to_string()), "{argv:?}");
    assert!(argv.contains(&"--input_shape=images:1,3,32,32".to_string()), "{argv:?}");
    // The deploy model really is the quantized one.
    let deploy = ascend_ptq::onnx::load_model(root.join("output_Ascend310P3/yolov6n_int8_deploy_model.onnx")).unwrap();
    let ops: Vec<&str> = deploy.graph.as_ref().unwrap().node.iter().map(|n| n.op_type()).collect();
    assert!(ops.contains(&"AscendQuant") && ops.contains(&"AscendDequant"), "{ops:?}");
}

/// Splits a command line as a POSIX shell does for these lines (double quotes only).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

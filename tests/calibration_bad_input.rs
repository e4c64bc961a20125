//! `ascend-ptq calibration` on bad input: each case exits with status 1 (never a panic's 101)
//! and an error naming the culprit, or succeeds with a warning naming it; a failed run leaves
//! no output file behind. Tiny hand-made models keep the debug-build runs fast.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use ascend_ptq::onnx::{DataType, ModelProto, TensorData, load_model, save_model};
use common::graph::{attr_ints, model, node, tensor, value_info};

const SHAPE: [i64; 4] = [1, 3, 8, 8];
const ELEMS: usize = 3 * 8 * 8;
const INPUT_SHAPE: &str = "x:1,3,8,8";
const OUTPUT_SUFFIXES: [&str; 6] =
    ["deploy_model.onnx", "fake_quant_model.onnx", "record.txt", "quant.json", "quant_report.json", "report.html"];

/// x[1,3,8,8] → Conv(4 filters 3×3, bias, pads 1) → Relu → y[1,4,8,8].
fn conv_model() -> ModelProto {
    let w: Vec<f32> = (0..4 * 3 * 3 * 3).map(|i| ((i as f32) * 0.7).sin() * 0.5).collect();
    model(
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "relu", &["c"], &["y"], vec![]),
        ],
        vec![tensor("w", &[4, 3, 3, 3], TensorData::F32(w)), tensor("b", &[4], TensorData::F32(vec![0.1, -0.2, 0.05, 0.0]))],
        vec![value_info("x", DataType::Float, &SHAPE)],
        vec![value_info("y", DataType::Float, &[1, 4, 8, 8])],
        13,
    )
}

/// x[1,3,8,8] → Relu → y: nothing to quantize.
fn relu_model() -> ModelProto {
    model(
        vec![node("Relu", "relu", &["x"], &["y"], vec![])],
        vec![],
        vec![value_info("x", DataType::Float, &SHAPE)],
        vec![value_info("y", DataType::Float, &SHAPE)],
        13,
    )
}

/// A temp dir with `model.onnx` and `data/batch000{1..=n}.bin` (float32, 1×3×8×8 each).
struct Setup {
    tmp: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
}

impl Setup {
    fn new(m: &ModelProto, batches: usize) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model.onnx");
        save_model(m, &model, &Default::default()).unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let setup = Setup { tmp, model, data };
        for b in 0..batches {
            setup.write_bin(b, &batch(b));
        }
        setup
    }

    fn bin(&self, index: usize) -> PathBuf {
        self.data.join(format!("batch{:04}.bin", index + 1))
    }

    fn write_bin(&self, index: usize, values: &[f32]) {
        std::fs::write(self.bin(index), values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    }

    fn out_dir(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn save_path(&self) -> String {
        format!("{}/m", self.out_dir().display())
    }

    /// Runs the CLI with the setup's model, data and save path, then `extra` flags.
    fn run(&self, extra: &[&str]) -> Output {
        run_with(&self.model, &self.save_path(), &self.data, extra)
    }
}

/// Deterministic values in [-1, 1], different for every batch.
fn batch(index: usize) -> Vec<f32> {
    (0..ELEMS).map(|i| ((i as f32) * 0.37 + index as f32 * 1.3).sin()).collect()
}

fn run_with(model: &Path, save_path: &str, data_dir: &Path, extra: &[&str]) -> Output {
    common::cli()
        .arg("calibration")
        .arg("--model")
        .arg(model)
        .args(["--save_path", save_path, "--input_shape", INPUT_SHAPE, "--data_dir"])
        .arg(data_dir)
        .args(["--data_types", "float32"])
        .args(extra)
        .output()
        .expect("run ascend-ptq")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status 1, an `error:` line containing every needle, and no output file in `out_dir`.
fn assert_fails(out: &Output, needles: &[&str], out_dir: &Path) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}:\n{err}", out.status);
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "error lacks {n:?}:\n{err}");
    }
    assert_no_outputs(out_dir);
    err
}

/// Neither an output file nor a temp file of one is left in `dir` (which may not exist);
/// directories there are the tests' own obstacles.
fn assert_no_outputs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let left: Vec<String> = entries
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| OUTPUT_SUFFIXES.iter().any(|s| n.ends_with(s)) || n.starts_with(".ascend-ptq-") || n.starts_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "a failed run left files in {}: {left:?}", dir.display());
}

fn assert_succeeds(out: &Output) -> (String, String) {
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout).into_owned(), stderr(out));
    assert!(out.status.success(), "calibration failed:\n{stdout}{err}");
    (stdout, err)
}

#[test]
fn no_quantizable_layer_keeps_the_models_and_says_so() {
    let s = Setup::new(&relu_model(), 2);
    let (stdout, err) = assert_succeeds(&s.run(&["--batch_num", "2"]));
    assert!(err.contains("warning: no layer is quantizable"), "{err}");
    assert!(stdout.contains("quantized 0 layer(s)"), "{stdout}");
    let input = relu_model();
    for suffix in ["deploy_model.onnx", "fake_quant_model.onnx"] {
        let written = load_model(s.out_dir().join(format!("m_{suffix}"))).unwrap();
        assert_eq!(written.graph, input.graph, "{suffix}: the graph must equal the input's");
    }
    for suffix in ["record.txt", "quant.json", "quant_report.json", "report.html"] {
        assert!(s.out_dir().join(format!("m_{suffix}")).exists(), "{suffix}");
    }
}

#[test]
fn unknown_skip_layer_is_a_warning_naming_it() {
    let s = Setup::new(&conv_model(), 2);
    let cfg = s.tmp.path().join("quant.cfg");
    std::fs::write(&cfg, "batch_num: 2\nskip_layers: \"no_such_conv\"\n").unwrap();
    let (stdout, err) = assert_succeeds(&s.run(&["--calibration_config", cfg.to_str().unwrap()]));
    assert!(err.contains("warning: skip_layers: no node named 'no_such_conv'"), "{err}");
    // The real layer is still quantized.
    assert!(stdout.contains("quantized 1 layer(s)") && stdout.contains("2 batch(es)"), "{stdout}");
    let deploy = load_model(s.out_dir().join("m_deploy_model.onnx")).unwrap();
    let ops: Vec<&str> = deploy.graph.as_ref().unwrap().node.iter().map(|n| n.op_type()).collect();
    assert!(ops.contains(&"AscendQuant") && ops.contains(&"AscendDequant"), "{ops:?}");
}

#[test]
fn batch_num_larger_than_the_number_of_bins() {
    let s = Setup::new(&conv_model(), 2);
    assert_fails(
        &s.run(&["--batch_num", "5"]),
        &["--data_dir", &s.data.display().to_string(), "holds 2 files", "--batch_num is 5"],
        &s.out_dir(),
    );
}

#[test]
fn bin_of_the_wrong_size_is_named() {
    let s = Setup::new(&conv_model(), 3);
    // A later file (checked when the set is opened, before any work).
    s.write_bin(1, &batch(1)[..ELEMS - 8]);
    let bad = s.bin(1).display().to_string();
    assert_fails(&s.run(&["--batch_num", "3"]), &["input 'x'", &bad], &s.out_dir());
    // The first file, which fixes the shape.
    s.write_bin(1, &batch(1));
    let mut longer = batch(0);
    longer.push(0.0);
    s.write_bin(0, &longer);
    assert_fails(&s.run(&["--batch_num", "3"]), &["input 'x'", &s.bin(0).display().to_string()], &s.out_dir());
}

#[test]
fn unwritable_save_path_fails_before_any_other_work() {
    let s = Setup::new(&conv_model(), 1);
    let file = s.tmp.path().join("a-file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let save_path = format!("{}/out/m", file.display());
    // The model and the data do not exist either: --save_path is checked first.
    let out = run_with(Path::new("/nonexistent/model.onnx"), &save_path, Path::new("/nonexistent/data"), &[]);
    let err = assert_fails(&out, &["--save_path", &file.display().to_string()], &file.join("out"));
    assert!(!err.contains("/nonexistent"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory\n");

    // An output name taken by a directory: refused up front, nothing written.
    std::fs::create_dir_all(s.out_dir().join("m_record.txt")).unwrap();
    assert_fails(&s.run(&[]), &["--save_path", "m_record.txt"], &s.out_dir());
    // The same for the HTML report, the last file written.
    std::fs::remove_dir(s.out_dir().join("m_record.txt")).unwrap();
    std::fs::create_dir_all(s.out_dir().join("m_report.html")).unwrap();
    assert_fails(&s.run(&[]), &["--save_path", "m_report.html"], &s.out_dir());
}

#[test]
fn non_finite_data_names_the_batch_and_the_input() {
    let s = Setup::new(&conv_model(), 3);
    let mut nan = batch(1);
    nan[70] = f32::NAN;
    s.write_bin(1, &nan);
    assert_fails(&s.run(&["--batch_num", "3"]), &["batch 1", "input 'x'", &s.bin(1).display().to_string(), "NaN"], &s.out_dir());
    let mut inf = batch(2);
    inf[0] = f32::NEG_INFINITY;
    s.write_bin(1, &batch(1));
    s.write_bin(2, &inf);
    assert_fails(&s.run(&["--batch_num", "3"]), &["batch 2", "input 'x'", &s.bin(2).display().to_string(), "inf"], &s.out_dir());
}

#[test]
fn batch_num_together_with_a_config_file() {
    let s = Setup::new(&conv_model(), 2);
    let cfg = s.tmp.path().join("quant.cfg");
    std::fs::write(&cfg, "batch_num: 2\n").unwrap();
    assert_fails(
        &s.run(&["--batch_num", "2", "--calibration_config", cfg.to_str().unwrap()]),
        &["--batch_num", "--calibration_config"],
        &s.out_dir(),
    );
}

#[test]
fn missing_model_file() {
    let s = Setup::new(&conv_model(), 1);
    let missing = s.tmp.path().join("no-such-model.onnx");
    let out = run_with(&missing, &s.save_path(), &s.data, &[]);
    assert_fails(&out, &[&missing.display().to_string(), "No such file"], &s.out_dir());
}

#[test]
fn input_shape_name_that_is_not_a_model_input() {
    let s = Setup::new(&conv_model(), 1);
    let out = common::cli()
        .arg("calibration")
        .arg("--model")
        .arg(&s.model)
        .args(["--save_path", &s.save_path(), "--input_shape", "image:1,3,8,8", "--data_dir"])
        .arg(&s.data)
        .args(["--data_types", "float32"])
        .output()
        .unwrap();
    assert_fails(&out, &["--input_shape", "'image' is not an input of", "its inputs are: x"], &s.out_dir());
}

//! `ascend-ptq run`: raw input files in, raw outputs + outputs.json out; bad inputs are
//! clear errors naming the input, the file and what was expected.

mod common;

use std::path::Path;

fn run(model: &Path, extra: &[&str], out_dir: &Path) -> std::process::Output {
    common::cli()
        .args(["run", "--model", model.to_str().unwrap(), "--input_shape", "x:1,3,48,192", "--output_dir", out_dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn writes_outputs_and_listing() {
    let Some(cls) = common::asset(common::CLS) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("x.bin");
    let values: Vec<u8> = (0..3 * 48 * 192).flat_map(|i| ((i % 255) as f32 / 127.5 - 1.0).to_le_bytes()).collect();
    std::fs::write(&input, &values).unwrap();
    let out_dir = tmp.path().join("out");
    let out = run(&cls, &["--input", &format!("x={}", input.display())], &out_dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let listing: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("outputs.json")).unwrap()).unwrap();
    let first = &listing["outputs"][0];
    assert_eq!(first["name"], "save_infer_model/scale_0.tmp_1");
    assert_eq!(first["file"], "save_infer_model_scale_0.tmp_1.bin");
    assert_eq!(first["dtype"], "float");
    assert_eq!(first["shape"], serde_json::json!([1, 2]));
    let probs: Vec<f32> = std::fs::read(out_dir.join("save_infer_model_scale_0.tmp_1.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(probs.len(), 2);
    assert!((probs[0] + probs[1] - 1.0).abs() < 1e-5, "softmax output sums to 1: {probs:?}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let Some(cls) = common::asset(common::CLS) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let short = tmp.path().join("short.bin");
    std::fs::write(&short, [0u8; 100]).unwrap();
    let out_dir = tmp.path().join("out");
    let short_arg = format!("x={}", short.display());
    for (extra, needle) in [
        (vec!["--input", short_arg.as_str()], "holds 100 bytes, expected 110592 (27648 elements of float for shape [1, 3, 48, 192])"),
        (vec![], "model input 'x' was not given"),
        (vec!["--input", short_arg.as_str(), "--input", "y=a.bin"], "'y' is not a model input"),
        (vec!["--input", "x=/nonexistent/x.bin"], "cannot read /nonexistent/x.bin"),
        (vec!["--input", "x"], "expected NAME=FILE.bin"),
    ] {
        let out = run(&cls, &extra, &out_dir);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert!(!out_dir.join("outputs.json").exists(), "no partial output on error");
    }
}

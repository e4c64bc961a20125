//! `ascend-ptq calibration` end to end on the real PP-OCR models and photos: preprocess →
//! calibration → our engine runs the int8 deploy model → tests/oracle/calib_check.py checks,
//! independently of our code, that the fake-quant model is standard ONNX that ONNX Runtime runs
//! and that it equals the deploy execution, that it stays close to float, and that the deploy
//! model, record and quant.json follow the spec (§1.3–§1.5, ARQ recomputed in numpy).

mod common;

use std::path::Path;

/// Calibration photos (in name order the first `CALIB` become batch0001…), then one held out.
const PHOTOS: [&str; 4] = ["astronaut.png", "chelsea.png", "coffee.png", "horse.png"];
const CALIB: usize = 3;

struct Case {
    model: &'static str,
    /// `des_height`, `des_width`, `fixed_scale`, means, stds of the preprocessing section.
    params: &'static str,
    input_shape: &'static str,
    /// Lowest acceptable fake-quant vs float cosine on the held-out photo.
    min_cosine: f64,
}

fn calibrate_and_check(case: &Case) {
    let Some(model) = common::asset(case.model) else { return };
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for p in PHOTOS {
        let Some(src) = common::asset(&format!("images/{p}")) else { return };
        std::fs::copy(src, imgs.join(p)).unwrap();
    }
    let params = tmp.path().join("params.json");
    std::fs::write(
        &params,
        format!(
            "{{\"calib_pre_params\": {{\"img_root\": \"imgs\", \"batch_size\": 1, \"des_channels\": 3, \"is_BGR2RGB\": 1, {}}}}}",
            case.params
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let out = common::cli().arg("preprocess").arg(&params).arg("--out").arg(&data).output().unwrap();
    assert!(out.status.success(), "preprocess: {}", String::from_utf8_lossy(&out.stderr));
    let bins = data.join("imgs_batch1");

    let prefix = tmp.path().join("out/model");
    let out = common::cli()
        .arg("calibration")
        .arg(format!("--model={}", model.display()))
        .args(["--save_path", prefix.to_str().unwrap(), "--input_shape", case.input_shape])
        .args(["--data_dir", bins.to_str().unwrap(), "--data_types=float32", "--batch_num", &CALIB.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "calibration failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{CALIB} batch(es)")) && stdout.contains("cosine"), "{stdout}");
    for suffix in ["deploy_model.onnx", "fake_quant_model.onnx", "record.txt", "quant.json"] {
        assert!(Path::new(&format!("{}_{suffix}", prefix.display())).exists(), "missing {suffix}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{}_quant.json", prefix.display())).unwrap()).unwrap();
    let layers = report["quantized_layers"].as_array().unwrap();
    assert!(!layers.is_empty(), "no layer quantized: {report}");
    for l in layers {
        let c = l["cosine"].as_f64().unwrap();
        assert!(c > 0.95 && c <= 1.0 + 1e-9, "layer {} has per-layer cosine {c}", l["name"]);
    }

    // Our engine runs the int8 deploy model on the held-out photo.
    let held_out = bins.join(format!("batch{:04}.bin", CALIB + 1));
    let run_dir = tmp.path().join("run");
    let input_name = case.input_shape.split(':').next().unwrap();
    let out = common::cli()
        .args(["run", "--model", &format!("{}_deploy_model.onnx", prefix.display())])
        .arg("--input")
        .arg(format!("{input_name}={}", held_out.display()))
        .arg("--output_dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "engine run of the deploy model: {}", String::from_utf8_lossy(&out.stderr));
    let engine_out =
        std::fs::read_dir(&run_dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "bin")).unwrap();

    let (code, stdout, stderr) = common::run_oracle(
        &py,
        "calib_check.py",
        &[
            model.to_str().unwrap(),
            prefix.to_str().unwrap(),
            input_name,
            held_out.to_str().unwrap(),
            engine_out.to_str().unwrap(),
            &case.min_cosine.to_string(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    eprintln!("{}: {stdout}", case.model);
}

#[test]
fn cls_calibrates_and_its_fake_quant_model_matches_the_deploy_model() {
    calibrate_and_check(&Case {
        model: common::CLS,
        params: "\"des_height\": 48, \"des_width\": 192, \"fixed_scale\": 0, \"means\": [127.5, 127.5, 127.5], \"stds\": [127.5, 127.5, 127.5]",
        input_shape: "x:1,3,48,192",
        min_cosine: 0.95,
    });
}

#[test]
fn det_calibrates_and_its_fake_quant_model_matches_the_deploy_model() {
    // int8 Conv (incl. depthwise) and ConvTranspose layers; letterboxed 640×640 ImageNet input.
    calibrate_and_check(&Case {
        model: common::DET,
        params: "\"des_height\": 640, \"des_width\": 640, \"fixed_scale\": 1, \"means\": [123.675, 116.28, 103.53], \"stds\": [58.395, 57.12, 57.375]",
        input_shape: "x:1,3,640,640",
        min_cosine: 0.95,
    });
}

#[test]
fn rec_calibrates_and_its_fake_quant_model_matches_the_deploy_model() {
    // int8 Conv, MatMul (with int32 bias Add) and AveragePool layers.
    calibrate_and_check(&Case {
        model: common::REC,
        params: "\"des_height\": 48, \"des_width\": 320, \"fixed_scale\": 0, \"means\": [127.5, 127.5, 127.5], \"stds\": [127.5, 127.5, 127.5]",
        input_shape: "x:1,3,48,320",
        min_cosine: 0.95,
    });
}

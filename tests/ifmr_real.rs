//! IFMR's clip search by bins (the default) against the per-element reference search
//! (`--exact_ifmr`) on real activations: for every real model of the asset set with a static
//! or fixable input, the calibration with each writes byte-identical deploy / fake-quant
//! models, record and quant.json — every calibrated tensor chose the same candidate clip
//! (different candidates have different scales, and the record holds every layer's scale_d
//! and offset_d). Real activations matter: the bins' exactness argument (src/quant/ifmr.rs,
//! `Binned`) is about the f32 arithmetic of the values the models really produce.

mod common;

/// Two photos and one page scan per model: calibrations of 3 batches.
const IMAGES: [&str; 3] = ["images/astronaut.png", "images/coffee.png", "text/linn.png"];

struct Case {
    model: &'static str,
    input_shape: &'static str,
    /// The preprocessing section's fields (as scripts/calib-params.json).
    params: &'static str,
}

const IMAGENET: &str = "\"means\": [123.675, 116.28, 103.53], \"stds\": [58.395, 57.12, 57.375]";

fn same_outputs_with_exact_search(case: &Case) {
    let Some(model) = common::asset(case.model) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for (i, rel) in IMAGES.iter().enumerate() {
        let Some(src) = common::asset(rel) else { return };
        let name = std::path::Path::new(rel).file_name().unwrap().to_str().unwrap();
        std::fs::copy(src, imgs.join(format!("{i}_{name}"))).unwrap();
    }
    let params = tmp.path().join("params.json");
    std::fs::write(&params, format!("{{\"pre\": {{\"img_root\": \"imgs\", \"batch_size\": 1, \"des_channels\": 3, {}}}}}", case.params))
        .unwrap();
    let data = tmp.path().join("data");
    let out = common::cli().arg("preprocess").arg(&params).args(["--section", "pre"]).arg("--out").arg(&data).output().unwrap();
    assert!(out.status.success(), "preprocess: {}", String::from_utf8_lossy(&out.stderr));
    let bins = data.join("imgs_batch1");
    let mut written = Vec::new();
    for (name, extra) in [("bins", None), ("exact", Some("--exact_ifmr"))] {
        let prefix = tmp.path().join(name).join("m");
        let mut cmd = common::cli();
        cmd.arg("calibration")
            .arg(format!("--model={}", model.display()))
            .args(["--save_path", prefix.to_str().unwrap(), "--input_shape", case.input_shape])
            .args(["--data_dir", bins.to_str().unwrap(), "--data_types=float32", "--batch_num", &IMAGES.len().to_string()])
            .args(["--eval_batches", "0"]);
        cmd.args(extra);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{} calibration ({name}): {}", case.model, String::from_utf8_lossy(&out.stderr));
        written.push(prefix);
    }
    for suffix in ["deploy_model.onnx", "fake_quant_model.onnx", "record.txt", "quant.json"] {
        let [a, b] = [&written[0], &written[1]].map(|p| std::fs::read(format!("{}_{suffix}", p.display())).unwrap());
        assert!(a == b, "{}: {suffix} differs between the binned and the per-element clip search", case.model);
    }
}

#[test]
fn det_binned_search_equals_the_exact_one() {
    same_outputs_with_exact_search(&Case {
        model: common::DET,
        input_shape: "x:1,3,640,640",
        params: const_format(&[
            "\"des_height\": 640, \"des_width\": 640, \"fixed_scale\": 1, \"pad_value\": 114, \"resize_input\": \"uint8\", \"is_BGR2RGB\": 1, ",
            IMAGENET,
        ]),
    });
}

#[test]
fn rec_and_cls_binned_search_equals_the_exact_one() {
    let text = "\"fixed_scale\": 1, \"pad_mode\": \"top_left\", \"pad_value\": 127, \"is_BGR2RGB\": 1, \"means\": [127.5, 127.5, 127.5], \"stds\": [127.5, 127.5, 127.5]";
    same_outputs_with_exact_search(&Case {
        model: common::REC,
        input_shape: "x:1,3,48,320",
        params: const_format(&["\"des_height\": 48, \"des_width\": 320, ", text]),
    });
    same_outputs_with_exact_search(&Case {
        model: common::CLS,
        input_shape: "x:1,3,48,192",
        params: const_format(&["\"des_height\": 48, \"des_width\": 192, ", text]),
    });
}

#[test]
fn detectors_binned_search_equals_the_exact_one() {
    same_outputs_with_exact_search(&Case {
        model: "models/ddddocr_common_det.onnx",
        input_shape: "images:1,3,416,416",
        params: "\"des_height\": 416, \"des_width\": 416, \"fixed_scale\": 1, \"pad_mode\": \"top_left\", \"pad_value\": 114, \"resize_input\": \"uint8\", \"is_BGR2RGB\": 0, \"means\": [0, 0, 0], \"stds\": [1, 1, 1]",
    });
    same_outputs_with_exact_search(&Case {
        model: "models/yolov8n-doclaynet.onnx",
        input_shape: "images:1,3,1024,1024",
        params: "\"des_height\": 1024, \"des_width\": 1024, \"fixed_scale\": 1, \"pad_value\": 114, \"resize_input\": \"uint8\", \"is_BGR2RGB\": 1, \"means\": [0, 0, 0], \"stds\": [255, 255, 255]",
    });
    same_outputs_with_exact_search(&Case {
        model: "models/layout_cdla.onnx",
        input_shape: "image:1,3,800,608",
        params: const_format(&[
            "\"des_height\": 800, \"des_width\": 608, \"fixed_scale\": 0, \"resize_input\": \"uint8\", \"is_BGR2RGB\": 0, ",
            IMAGENET,
        ]),
    });
}

/// The pieces joined (leaked: a handful of short strings per test run).
fn const_format(parts: &[&str]) -> &'static str {
    Box::leak(parts.concat().into_boxed_str())
}

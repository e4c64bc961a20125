//! The whole flow on PP-OCRv4 det and real photos, through the ACL simulator by dlopen:
//! preprocess → calibration → aipp → build --simulate → compare (int8 OM vs fp16 OM, static
//! AIPP uint8 frames, fp32 reference). tests/oracle/sim_flow_oracle.py then checks, without our
//! compare code, that the report's int8-vs-fp16 metrics are msaccucmp's metrics (numpy) of our
//! CPU engine's outputs: the deploy model and the fp16-emulated float model run by `ascend-ptq
//! run` on the AIPP output of OpenCV-made camera frames.

mod common;

use common::{ok, path};

#[test]
fn det_int8_vs_fp16_through_the_simulator_matches_cpu_outputs() {
    let Some(model) = common::asset(common::DET) else { return };
    let Some(py) = common::oracle_python() else { return };
    let sim = common::acl_sim_lib();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // Three photos calibrate; two others are compared on.
    for (dir, photos) in [("calib", &["astronaut.png", "chelsea.png", "coffee.png"][..]), ("eval", &["rocket.jpg", "text.png"][..])] {
        std::fs::create_dir(t.join(dir)).unwrap();
        for p in photos {
            let Some(src) = common::asset(&format!("images/{p}")) else { return };
            std::fs::copy(src, t.join(dir).join(p)).unwrap();
        }
    }
    let params = t.join("params.json");
    std::fs::write(
        &params,
        r#"{"det_pre_params": {"img_root": "calib", "fixed_scale": 0, "batch_size": 1, "des_channels": 3,
            "des_height": 640, "des_width": 640, "is_BGR2RGB": 1,
            "means": [123.675, 116.28, 103.53], "stds": [58.395, 57.12, 57.375]}}"#,
    )
    .unwrap();

    ok(common::cli().arg("preprocess").arg(&params).arg("--out").arg(t.join("data")), "preprocess");
    let prefix = t.join("q/det");
    ok(
        common::cli()
            .args(["calibration", "--model", path(&model), "--save_path", path(&prefix), "--input_shape", "x:1,3,640,640"])
            .args(["--data_dir", path(&t.join("data/imgs_batch1")), "--data_types", "float32", "--batch_num", "3", "--eval_batches", "1"]),
        "calibration",
    );
    let deploy = t.join("q/det_deploy_model.onnx");
    let cfg = t.join("det_aipp.cfg");
    ok(common::cli().arg("aipp").arg(&params).arg("--out").arg(&cfg), "aipp");
    let built = ok(
        common::cli()
            .args(["build", "--simulate", "--model", path(&model), "--deploy", path(&deploy), "--input_shape", "x:1,3,640,640"])
            .args(["--soc_version", "Ascend310P3", "--aipp", path(&cfg), "--output_type", "FP32", "--out_dir", path(&t.join("om"))]),
        "build --simulate",
    );
    assert!(built.contains("simulated int8") && built.contains("simulated fp16"), "{built}");
    let (int8_om, fp16_om) = (t.join("om/ch_PP-OCRv4_det_infer_int8.om"), t.join("om/ch_PP-OCRv4_det_infer_fp16.om"));

    let report = t.join("report");
    let out = common::cli()
        .args(["compare", "--int8", path(&int8_om), "--fp16", path(&fp16_om), "--images", path(&t.join("eval"))])
        .args(["--params", path(&params), "--reference", path(&model), "--acl-lib", path(&sim), "--report", path(&report)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 0 = pass, 3 = the verdict failed; both are a finished comparison.
    assert!(matches!(out.status.code(), Some(0 | 3)), "compare: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("device: simulator: Ascend310P3-sim"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(t.join("report.json")).unwrap()).unwrap();
    assert!(json["int8_device"].as_str().unwrap().contains("not an Ascend NPU"), "{}", json["int8_device"]);
    let html = std::fs::read_to_string(t.join("report.html")).unwrap();
    assert!(html.contains("simulator") && html.contains("<svg"), "the HTML report names the simulator and plots");
    let rows = json["inputs"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one row per compared photo");
    assert_eq!(json["pass"].as_bool().unwrap(), out.status.code() == Some(0));
    // Sanity of the device emulation: fp16 stays next to fp32, int8 is clearly different from both.
    let summary = &json["outputs"][0];
    let fp16_fp32 = summary["fp16_vs_fp32"]["cosine_similarity"]["worst"].as_f64().unwrap();
    let int8_fp16 = summary["int8_vs_fp16"]["cosine_similarity"]["mean"].as_f64().unwrap();
    assert!(fp16_fp32 > 0.998, "fp16 vs fp32 worst cosine {fp16_fp32}");
    assert!(int8_fp16 > 0.8 && int8_fp16 < 0.9999, "int8 vs fp16 mean cosine {int8_fp16}");

    // The independent side: camera frames and AIPP math from OpenCV/numpy, CPU engine outputs.
    let oracle = t.join("oracle");
    let (code, so, se) =
        common::run_oracle(&py, "sim_flow_oracle.py", &["frames", path(&t.join("eval")), "640", "640", path(&cfg), path(&oracle)]);
    assert_eq!(code, 0, "frames oracle: {se}\n{so}");
    for k in 0..2 {
        let input = format!("x={}", path(&oracle.join(format!("aipp_in/batch{:04}.bin", k + 1))));
        let int8_dir = oracle.join(format!("int8/{k}"));
        ok(common::cli().args(["run", "--model", path(&deploy), "--input", &input, "--output_dir", path(&int8_dir)]), "run deploy");
        let fp16_dir = oracle.join(format!("fp16/{k}"));
        ok(
            common::cli()
                .args(["run", "--model", path(&model), "--input_shape", "x:1,3,640,640", "--input", &input, "--emulate_fp16"])
                .args(["--output_dir", path(&fp16_dir)]),
            "run --emulate_fp16",
        );
    }
    let (code, so, se) = common::run_oracle(&py, "sim_flow_oracle.py", &["metrics", path(&t.join("report.json")), path(&oracle)]);
    assert_eq!(code, 0, "metrics oracle: {se}\n{so}");
    assert!(so.contains("checked 2 row(s)"), "{so}");

    // The same frames through `om-run` on the simulator equal the int8 CPU output bit for bit.
    let frame = format!("x={}", path(&oracle.join("frames/batch0001.bin")));
    let om_out = t.join("om_run");
    let printed = ok(
        common::cli().args(["om-run", "--om", path(&int8_om), "--input", &frame, "--output_dir", path(&om_out), "--acl-lib", path(&sim)]),
        "om-run",
    );
    assert!(printed.contains("simulator") && printed.contains("latency"), "{printed}");
    let name = "sigmoid_0.tmp_0.bin";
    assert_eq!(std::fs::read(om_out.join(name)).unwrap(), std::fs::read(oracle.join("int8/0").join(name)).unwrap());

    // compare --task db on text photos: text boxes of each side, F1 per pair, a verdict on F1.
    std::fs::create_dir(t.join("text")).unwrap();
    for p in ["page.png", "coffee.png"] {
        let Some(src) = common::asset(&format!("images/{p}")) else { return };
        std::fs::copy(src, t.join("text").join(p)).unwrap();
    }
    let report = t.join("task_report");
    let out = common::cli()
        .args(["compare", "--int8", path(&int8_om), "--fp16", path(&fp16_om), "--images", path(&t.join("text"))])
        .args(["--params", path(&params), "--reference", path(&model), "--acl-lib", path(&sim), "--report", path(&report)])
        .args(["--task", "db", "--threshold", "f1>=0.5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 3)), "compare --task: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(t.join("task_report.json")).unwrap()).unwrap();
    assert_eq!(json["criterion"], "f1>=0.5");
    assert_eq!(json["task"]["task"], "db");
    for row in json["inputs"].as_array().unwrap() {
        let task = &row["task"];
        let boxes = |side: &str| task["decoded"][side]["text_boxes"].as_array().map(Vec::len);
        assert!(boxes("int8").is_some() && boxes("fp16").is_some() && boxes("fp32").is_some(), "{task}");
        // fp16 finds what fp32 finds on these photos (page.png has several lines of text).
        assert_eq!(task["fp16_vs_fp32"]["count_candidate"], task["fp16_vs_fp32"]["count_reference"], "{task}");
        assert!(task["int8_vs_fp16"]["f1"].as_f64().is_some(), "{task}");
    }
    let page = &json["inputs"].as_array().unwrap().iter().find(|r| r["label"] == "page.png").unwrap()["task"];
    assert!(page["fp16_vs_fp32"]["count_reference"].as_u64().unwrap() >= 3, "{page}");
    assert!(page["fp16_vs_fp32"]["f1"].as_f64().unwrap() >= 0.99, "{page}");
    assert!(stdout.contains("(db) int8 vs fp16: f1 mean"), "{stdout}");
    let html = std::fs::read_to_string(t.join("task_report.html")).unwrap();
    assert!(
        html.contains("<h2>Task metrics (db, output sigmoid_0.tmp_0") && html.contains("<td>f1&gt;=0.5</td>"),
        "the HTML shows the task table"
    );
    // Pictures: per input the photo with each side's text boxes (one polygon per box), the
    // int8 and fp16 maps and their difference; the F1 plot beside the cosine plot.
    let rows = json["inputs"].as_array().unwrap();
    let blocks: Vec<&str> = html.split("<div class=\"pics\"").skip(1).collect();
    assert_eq!(blocks.len(), rows.len(), "one picture block per input");
    for (block, row) in blocks.iter().zip(rows) {
        let block = &block[..block.find("</div>\n<").unwrap_or(block.len())];
        assert!(block.starts_with(&format!(" data-input=\"{}\"", row["index"])), "{}", &block[..60.min(block.len())]);
        assert_eq!(block.matches("<img ").count(), 4, "thumbnail, int8 map, fp16 map, difference");
        assert_eq!(block.matches("<img src=\"data:image/").count(), 4, "inline images only");
        assert!(block.contains("<svg class=\"overlay\"") && block.contains("viewBox=\"0 0 640 640\""), "boxes in the model input's frame");
        let boxes: usize = ["int8", "fp16", "fp32"].iter().map(|s| row["task"]["decoded"][s]["text_boxes"].as_array().unwrap().len()).sum();
        assert_eq!(block.matches("<polygon ").count(), boxes, "one polygon per decoded box");
        assert!(block.contains("|int8 − fp16|, max "), "the difference map prints its maximum");
    }
    assert_eq!(html.matches("<circle class=\"mpt\"").count(), rows.len() * 3, "F1 per input and pair");
    // The page in a real browser: every image loads, no script error, something is drawn.
    if let Some(check) = common::browser::check_page_renders(&t.join("task_report.html")) {
        check.assert_rendered();
        assert_eq!(check.images_total, 4 * rows.len(), "{check:?}");
        assert!(
            check.screenshot_colours > 1000,
            "{} colours in {}: the photos are not drawn",
            check.screenshot_colours,
            check.screenshot.display()
        );
    }
    assert_eq!(json["pass"].as_bool().unwrap(), out.status.code() == Some(0));
    eprintln!("compare --task db: {}", json["task"]);
}

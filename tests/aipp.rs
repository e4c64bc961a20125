//! `ascend-ptq aipp`: the static AIPP block for a PARAMS.json, and a check that the NPU's
//! formula (evaluated in fp16 by `apply_aipp`) on the host-resized uint8 frame of a real photo
//! reproduces what `preprocess` wrote for the quantizer.

mod common;

use std::path::{Path, PathBuf};

use ascend_ptq::data::params::load_params;
use ascend_ptq::data::preprocess::prepare_image;
use ascend_ptq::device::aipp::{AippConfig, AippOptions, InputFormat, apply_aipp};
use half::f16;
use serde_json::{Value, json};

fn write_params(dir: &Path, img_root: &Path, bgr2rgb: u8, means: [f64; 3], stds: [f64; 3], fixed_scale: u8) -> PathBuf {
    let path = dir.join("params.json");
    let sec = json!({
        "img_root": img_root, "fixed_scale": fixed_scale, "batch_size": 1, "des_channels": 3, "des_height": 256,
        "des_width": 320, "is_BGR2RGB": bgr2rgb, "means": means, "stds": stds,
    });
    let text = format!("{{\n  # seed-style file\n  \"det_pre_params\": {},\n}}\n", serde_json::to_string_pretty(&sec).unwrap());
    std::fs::write(&path, text).unwrap();
    path
}

fn aipp_text(params: &Path, extra: &[&str]) -> (bool, String, String) {
    let out_file = params.with_file_name("model_aipp.cfg");
    let out = common::cli().arg("aipp").arg(params).arg("--out").arg(&out_file).args(extra).output().unwrap();
    let cfg = std::fs::read_to_string(&out_file).unwrap_or_default();
    (out.status.success(), cfg, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn has_line(cfg: &str, line: &str) -> bool {
    cfg.lines().any(|l| l.trim() == line)
}

#[test]
fn yolo_rgb_config() {
    let tmp = tempfile::tempdir().unwrap();
    let params = write_params(tmp.path(), Path::new("imgs"), 1, [0.0; 3], [255.0; 3], 1);
    let (ok, cfg, stderr) = aipp_text(&params, &[]);
    assert!(ok, "{stderr}");
    assert!(cfg.contains("AIPP does not letterbox"), "{cfg}");
    let block = &cfg[cfg.find("aipp_op {").expect("one aipp_op block")..];
    for line in [
        "aipp_mode: static",
        "input_format: RGB888_U8",
        "src_image_size_w: 320",
        "src_image_size_h: 256",
        "csc_switch: false",
        "rbuv_swap_switch: false",
        "mean_chn_0: 0",
        "mean_chn_2: 0",
        "min_chn_1: 0.0",
        "var_reci_chn_0: 0.003921569",
        "var_reci_chn_2: 0.003921569",
        "}",
    ] {
        assert!(has_line(block, line), "missing '{line}' in\n{cfg}");
    }
    assert!(!cfg.contains("matrix_r0c0") && !cfg.contains("crop:"), "{cfg}");
}

#[test]
fn imagenet_bgr_and_yuv_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let params = write_params(tmp.path(), Path::new("imgs"), 0, [123.675, 116.0, 103.53], [58.395, 57.12, 57.375], 1);
    let (ok, cfg, stderr) = aipp_text(&params, &[]);
    assert!(ok, "{stderr}");
    // RGB frames into a BGR model: swap; non-integer means go to min_chn, integer ones to mean_chn.
    for line in [
        "rbuv_swap_switch: true",
        "mean_chn_0: 0",
        "min_chn_0: 123.675",
        "mean_chn_1: 116",
        "min_chn_1: 0.0",
        "var_reci_chn_0: 0.017124753",
    ] {
        assert!(has_line(&cfg, line), "missing '{line}' in\n{cfg}");
    }
    let (ok, cfg, stderr) = aipp_text(&params, &["--input_format", "YUV420SP_U8", "--src_size", "330,260"]);
    assert!(ok, "{stderr}");
    // BGR model: rows B, G, R of the full-range BT.601 matrix.
    for line in [
        "input_format: YUV420SP_U8",
        "csc_switch: true",
        "rbuv_swap_switch: false",
        "matrix_r0c0: 256",
        "matrix_r0c1: 454",
        "matrix_r2c2: 359",
        "input_bias_1: 128",
        "src_image_size_w: 330",
        "crop: true",
        "load_start_pos_w: 4",
        "load_start_pos_h: 2",
        "crop_size_w: 320",
    ] {
        assert!(has_line(&cfg, line), "missing '{line}' in\n{cfg}");
    }
    let (ok, _, stderr) = aipp_text(&params, &["--input_format", "BGR888"]);
    assert!(!ok && stderr.contains("--input_format: unknown format 'BGR888' (expected RGB888_U8, YUV420SP_U8 or YUV400_U8)"), "{stderr}");
    let (ok, _, stderr) = aipp_text(&params, &["--input_format", "YUV420SP_U8", "--src_size", "321,256"]);
    assert!(!ok && stderr.contains("YUV420SP frames need an even width and height, got 321x256"), "{stderr}");
}

/// Bound of the fp16 pipeline: two roundings of the result plus the parameters' own fp16
/// rounding error propagated.
fn tolerance(reference: f32, min: f32, var: f32) -> f32 {
    let ulp = |v: f32| {
        let h = f16::from_f32(v.abs().max(f16::MIN_POSITIVE.to_f32()));
        f16::from_bits(h.to_bits() + 1).to_f32() - h.to_f32()
    };
    let d_min = (f16::from_f32(min).to_f32() - min).abs();
    let d_var = (f16::from_f32(var).to_f32() - var).abs() / var;
    2.0 * ulp(reference) + var * (d_min + 2.0 * ulp(255.0)) + reference.abs() * d_var
}

#[test]
fn aipp_formula_on_host_frames_matches_preprocess() {
    let (Some(coffee), Some(rocket)) = (common::asset("images/coffee.png"), common::asset("images/rocket.jpg")) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imgs");
    std::fs::create_dir(&root).unwrap();
    std::fs::copy(&coffee, root.join("coffee.png")).unwrap();
    std::fs::copy(&rocket, root.join("rocket.jpg")).unwrap();
    let cases =
        [(1u8, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375], 1u8), (0, [0.0; 3], [255.0; 3], 0), (0, [127.5; 3], [127.5; 3], 1)];
    for (bgr2rgb, means, stds, fixed_scale) in cases {
        let params = write_params(tmp.path(), &root, bgr2rgb, means, stds, fixed_scale);
        let out_dir = tmp.path().join("calib");
        let out = common::cli().arg("preprocess").arg(&params).arg("--out").arg(&out_dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let manifest: Value = serde_json::from_slice(&std::fs::read(out_dir.join("imgs_batch1/manifest.json")).unwrap()).unwrap();

        let loaded = load_params(&params, None).unwrap();
        let cfg = AippConfig::from_params(&loaded.params, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: None }).unwrap();
        // What the host feeds: the resized frame in R,G,B order, whatever the model wants.
        let mut host = loaded.params.clone();
        host.is_bgr2rgb = true;
        for file in manifest["files"].as_array().unwrap() {
            let name = file["images"][0].as_str().unwrap();
            let frame = prepare_image(&root.join(name), &host).unwrap();
            let npu = apply_aipp(&cfg, &frame.data);
            let bin: Vec<f32> = std::fs::read(out_dir.join("imgs_batch1").join(file["file"].as_str().unwrap()))
                .unwrap()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(npu.len(), bin.len());
            let plane = 320 * 256;
            let mut worst = 0f32;
            for (i, (a, b)) in npu.iter().zip(&bin).enumerate() {
                let c = i / plane;
                let tol = tolerance(*b, cfg.min_chn[c] + cfg.mean_chn[c] as f32, cfg.var_reci_chn[c]);
                assert!(
                    (a - b).abs() <= tol,
                    "{name} (is_BGR2RGB {bgr2rgb}): value {i} channel {c}: AIPP {a} vs preprocess {b}, tolerance {tol}"
                );
                worst = worst.max((a - b).abs());
            }
            eprintln!("{name} is_BGR2RGB={bgr2rgb} means={means:?}: max |AIPP − preprocess| = {worst:.5}");
        }
    }
}

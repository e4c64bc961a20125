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
        // Issue 14: frames in OpenCV's B,G,R order, swapped for this RGB model (was false
        // when frames were taken as R,G,B).
        "rbuv_swap_switch: true",
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
    assert!(cfg.contains("# Frames in OpenCV's B,G,R byte order"), "the cfg says which frame order it expects:\n{cfg}");
}

#[test]
fn imagenet_bgr_and_yuv_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let params = write_params(tmp.path(), Path::new("imgs"), 0, [123.675, 116.0, 103.53], [58.395, 57.12, 57.375], 1);
    let (ok, cfg, stderr) = aipp_text(&params, &[]);
    assert!(ok, "{stderr}");
    // B,G,R frames into a BGR model: no swap (issue 14; was a swap of R,G,B frames);
    // non-integer means go to min_chn, integer ones to mean_chn.
    for line in [
        "rbuv_swap_switch: false",
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
        // The host resizes 8-bit frames: exact to fp16 against the bins of the 8-bit resize
        // (issue 14 made the float resize the default; see float_bins_are_within_a_level_of_the_npu).
        let text = std::fs::read_to_string(&params).unwrap().replace("\"batch_size\"", "\"resize_input\": \"uint8\", \"batch_size\"");
        std::fs::write(&params, text).unwrap();
        let out_dir = tmp.path().join("calib");
        let out = common::cli().arg("preprocess").arg(&params).arg("--out").arg(&out_dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let manifest: Value = serde_json::from_slice(&std::fs::read(out_dir.join("imgs_batch1/manifest.json")).unwrap()).unwrap();

        let loaded = load_params(&params, None).unwrap();
        let cfg = AippConfig::from_params(&loaded.params, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: None }).unwrap();
        // What the host feeds: the resized frame in OpenCV's B,G,R order, whatever the model
        // wants (issue 14; was R,G,B).
        let mut host = loaded.params.clone();
        host.is_bgr2rgb = false;
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

/// The reference repository's `models/model_aipp.cfg` (static, RGB888_U8, B,G,R frames with
/// `rbuv_swap_switch: true`, 1/255) is what we write for its `yolov6_params.json`.
#[test]
fn reference_json_gives_the_reference_aipp_cfg() {
    let seed = common::repo_root().join("../shared/seed/models");
    let theirs =
        AippConfig::from_text(&std::fs::read_to_string(seed.join("model_aipp.cfg")).unwrap(), Path::new("model_aipp.cfg")).unwrap();
    let (ok, text, stderr) = aipp_text(&seed.join("yolov6_params.json"), &[]);
    assert!(ok, "{stderr}");
    let ours = AippConfig::from_text(&text, Path::new("ours.cfg")).unwrap();
    assert_eq!(
        (ours.input_format, ours.src_width, ours.src_height, ours.csc_switch, ours.rbuv_swap_switch, ours.crop),
        (theirs.input_format, theirs.src_width, theirs.src_height, theirs.csc_switch, theirs.rbuv_swap_switch, theirs.crop)
    );
    assert!(ours.rbuv_swap_switch, "isBGR2RGB with B,G,R frames");
    assert_eq!((&ours.mean_chn, &ours.min_chn), (&theirs.mean_chn, &theirs.min_chn));
    for (a, b) in ours.var_reci_chn.iter().zip(&theirs.var_reci_chn) {
        // scales 0.00392157 (the JSON) vs 1/255 (the cfg).
        assert!((a - b).abs() <= 1e-8, "var_reci {a} vs {b}");
    }
}

/// With the default float resize the bins are not 8-bit levels, so the NPU (8-bit frames)
/// can match them only to the interpolation's rounding: within one level, padding equal.
/// `compare` builds those frames in B,G,R order.
#[test]
fn float_bins_are_within_a_level_of_the_npu_and_compare_frames_are_bgr() {
    use ascend_ptq::compare::{CompareInputs, IoDType, IoDesc};
    let (Some(chelsea), Some(rocket)) = (common::asset("images/chelsea.png"), common::asset("images/rocket.jpg")) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imgs");
    std::fs::create_dir(&root).unwrap();
    std::fs::copy(&chelsea, root.join("chelsea.png")).unwrap();
    std::fs::copy(&rocket, root.join("rocket.jpg")).unwrap();
    let params = write_params(tmp.path(), &root, 1, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375], 1);
    let out_dir = tmp.path().join("calib");
    let out = common::cli().arg("preprocess").arg(&params).arg("--out").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let loaded = load_params(&params, None).unwrap();
    let cfg = AippConfig::from_params(&loaded.params, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: None }).unwrap();
    assert!(cfg.rbuv_swap_switch);
    let (w, h) = (320, 256);
    let desc =
        IoDesc { name: "images".into(), dtype: IoDType::U8, dims: vec![1, h, w, 3], size_bytes: (w * h * 3) as usize, static_aipp: true };
    let inputs = CompareInputs::from_images(&[desc], &root, &loaded.params, &Default::default()).unwrap();
    let mut bgr = loaded.params.clone();
    bgr.is_bgr2rgb = false;
    for (i, name) in ["chelsea.png", "rocket.jpg"].iter().enumerate() {
        let set = inputs.get(i).unwrap();
        assert_eq!(set.label, *name);
        assert_eq!(set.feeds[0], prepare_image(&root.join(name), &bgr).unwrap().data, "{name}: compare's frame is the B,G,R host frame");
        let npu = apply_aipp(&cfg, &set.feeds[0]);
        let bin: Vec<f32> = std::fs::read(out_dir.join(format!("imgs_batch1/batch{:04}.bin", i + 1)))
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let plane = (w * h) as usize;
        let mut worst_levels = 0f32;
        for (k, (a, b)) in npu.iter().zip(&bin).enumerate() {
            let c = k / plane;
            let var = cfg.var_reci_chn[c];
            let levels = ((a - b).abs() - tolerance(*b, cfg.min_chn[c] + cfg.mean_chn[c] as f32, var)).max(0.0) / var;
            assert!(levels <= 1.0, "{name}: value {k} channel {c}: AIPP {a} vs preprocess {b}: {levels} levels apart");
            worst_levels = worst_levels.max(levels);
        }
        eprintln!("{name}: AIPP of the 8-bit frame vs the float bins: at most {worst_levels:.3} levels beyond fp16 rounding");
    }
}

//! `ascend-ptq preprocess` on the real photos in assets/images against OpenCV
//! (tests/oracle/cv_preprocess.py: imread, letterbox/resize INTER_LINEAR, cvtColor,
//! normalise), and every error case with the message the user sees.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

const IMAGENET_MEANS: [f64; 3] = [123.675, 116.28, 103.53];
const IMAGENET_STDS: [f64; 3] = [58.395, 57.12, 57.375];

/// A params file with one `det_pre_params` section (plain JSON, as the oracle reads it too).
fn write_params(dir: &Path, section: &Value) -> PathBuf {
    let path = dir.join("params.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json!({ "det_pre_params": section })).unwrap()).unwrap();
    std::fs::write(dir.join("section.json"), section.to_string()).unwrap();
    path
}

fn section(img_root: &Path, fixed_scale: u8, batch: usize, channels: usize, w: usize, h: usize, bgr2rgb: u8) -> Value {
    let (means, stds) = if channels == 3 { (IMAGENET_MEANS.to_vec(), IMAGENET_STDS.to_vec()) } else { (vec![127.5], vec![127.5]) };
    // The OpenCV oracle here is the 8-bit pipeline with YOLO's pad 114 (the behaviour before
    // issue 14), selected by its documented keys; tests/preprocess_reference.rs checks the
    // defaults against preprocess_data.py.
    json!({
        "img_root": img_root, "fixed_scale": fixed_scale, "batch_size": batch, "des_channels": channels,
        "des_height": h, "des_width": w, "is_BGR2RGB": bgr2rgb, "means": means, "stds": stds,
        "resize_input": "uint8", "pad_value": 114,
    })
}

fn preprocess(params: &Path, out: &Path, extra: &[&str]) -> Output {
    common::cli().arg("preprocess").arg(params).arg("--out").arg(out).args(extra).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Runs our CLI and the OpenCV oracle on `images` (copied into a fresh img_root) and compares
/// every image: back in uint8 units (`v·std + mean`) the difference must be ≤ 1.
fn compare_with_opencv(images: &[&str], sec: Value, extra: &[&str]) {
    let sources: Option<Vec<PathBuf>> = images.iter().map(|i| common::asset(&format!("images/{i}"))).collect();
    let Some(sources) = sources else { return };
    compare_files_with_opencv(&sources, sec, extra);
}

fn compare_files_with_opencv(sources: &[PathBuf], mut sec: Value, extra: &[&str]) {
    let Some(py) = common::oracle_python() else { return };
    let images: Vec<String> = sources.iter().map(|s| s.file_name().unwrap().to_str().unwrap().to_string()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imgs");
    std::fs::create_dir(&root).unwrap();
    for s in sources {
        std::fs::copy(s, root.join(s.file_name().unwrap())).unwrap();
    }
    sec["img_root"] = json!(root);
    let params = write_params(tmp.path(), &sec);
    let out_dir = tmp.path().join("calib");
    let out = preprocess(&params, &out_dir, extra);
    assert!(out.status.success(), "preprocess failed: {}", text(&out.stderr));

    let cv_dir = tmp.path().join("cv");
    let mut args = vec![tmp.path().join("section.json").to_str().unwrap().to_string(), cv_dir.to_str().unwrap().to_string()];
    args.extend(sources.iter().map(|s| root.join(s.file_name().unwrap()).to_str().unwrap().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = common::run_oracle(&py, "cv_preprocess.py", &args);
    assert_eq!(code, 0, "OpenCV oracle failed: {stderr}");

    let batch = sec["batch_size"].as_u64().unwrap() as usize;
    let (c, h, w) = (
        sec["des_channels"].as_u64().unwrap() as usize,
        sec["des_height"].as_u64().unwrap() as usize,
        sec["des_width"].as_u64().unwrap() as usize,
    );
    let means: Vec<f64> = sec["means"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let stds: Vec<f64> = sec["stds"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let dir = out_dir.join(format!("imgs_batch{batch}"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["shape"], json!([batch, c, h, w]));
    let mut sorted = images.clone();
    sorted.sort();
    let mut seen = Vec::new();
    for (i, file) in manifest["files"].as_array().unwrap().iter().enumerate() {
        assert_eq!(file["file"], format!("batch{:04}.bin", i + 1), "zero-padded names from 0001");
        assert_eq!(file["dtype"], "float32");
        let ours = read_f32(&dir.join(file["file"].as_str().unwrap()));
        assert_eq!(ours.len(), batch * c * h * w, "{file}");
        for (k, name) in file["images"].as_array().unwrap().iter().enumerate() {
            let name = name.as_str().unwrap();
            seen.push(name.to_string());
            let cv = read_f32(&cv_dir.join(format!("{name}.f32")));
            let plane = h * w;
            let (mut max_diff, mut differing) = (0.0f64, 0usize);
            for ch in 0..c {
                for p in 0..plane {
                    let (a, b) = (ours[k * c * plane + ch * plane + p] as f64, cv[ch * plane + p] as f64);
                    let d = (a - b).abs() * stds[ch];
                    max_diff = max_diff.max(d);
                    differing += usize::from(d > 1e-3);
                    assert!(d <= 1.0 + 1e-3, "{name}: channel {ch} pixel {p}: ours {a} vs OpenCV {b} (mean {})", means[ch]);
                }
            }
            eprintln!("{name}: max |diff| {max_diff:.3} uint8 levels, {differing} of {} values differ", c * plane);
        }
    }
    assert_eq!(seen.len(), images.len() / batch * batch, "every full batch written");
    assert_eq!(seen[..], sorted[..seen.len()], "images in file-name order");
}

#[test]
fn letterbox_rgb_matches_opencv_on_all_photos() {
    let all = [
        "astronaut.png",
        "brick.png",
        "camera.png",
        "cell.png",
        "chelsea.png",
        "chessboard_GRAY.png",
        "chessboard_RGB.png",
        "clock_motion.png",
        "coffee.png",
        "coins.png",
        "color.png",
        "grass.png",
        "gravel.png",
        "horse.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "logo.png",
        "microaneurysms.png",
        "moon.png",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "multipage.tif",
        "page.png",
        "phantom.png",
        "retina.jpg",
        "rocket.jpg",
        "text.png",
    ];
    compare_with_opencv(&all, section(Path::new("-"), 1, 1, 3, 640, 640, 1), &[]);
}

#[test]
fn stretch_bgr_batches_match_opencv() {
    // Downscale and upscale, non-square target, two images per file, channel order kept BGR.
    let images = ["retina.jpg", "coffee.png", "chessboard_RGB.png", "microaneurysms.png", "horse.png", "multipage.tif"];
    compare_with_opencv(&images, section(Path::new("-"), 0, 2, 3, 320, 200, 0), &[]);
}

#[test]
fn exif_orientation_is_applied_like_opencv() {
    let Some(py) = common::oracle_python() else { return };
    let Some(rocket) = common::asset("images/rocket.jpg") else { return };
    let tmp = tempfile::tempdir().unwrap();
    // 6: rotate 90° clockwise, 3: 180°, 8: 90° counter-clockwise, 2: mirror.
    let mut files = Vec::new();
    for o in ["6", "3", "8", "2"] {
        let dst = tmp.path().join(format!("rocket_o{o}.jpg"));
        let (code, _, stderr) = common::run_oracle(&py, "exif_jpeg.py", &[rocket.to_str().unwrap(), dst.to_str().unwrap(), o]);
        assert_eq!(code, 0, "{stderr}");
        files.push(dst);
    }
    // Stretch to a non-square size: a missed rotation cannot hide behind symmetric padding.
    let sec = section(Path::new("-"), 0, 1, 3, 200, 300, 1);
    compare_files_with_opencv(&files, sec, &[]);
}

#[test]
fn gray_top_left_letterbox_matches_opencv() {
    let mut sec = section(Path::new("-"), 1, 1, 1, 224, 160, 0);
    sec["pad_value"] = json!(0);
    sec["pad_mode"] = json!("top_left");
    compare_with_opencv(&["rocket.jpg", "chessboard_GRAY.png", "chelsea.png", "page.png"], sec, &[]);
}

/// A folder with `n` small real photos (copies of one asset) and a params file for it.
fn small_set(tmp: &Path, names: &[&str], batch: usize) -> Option<PathBuf> {
    let src = common::asset("images/microaneurysms.png")?;
    let root = tmp.join("imgs");
    std::fs::create_dir_all(&root).unwrap();
    for n in names {
        std::fs::copy(&src, root.join(n)).unwrap();
    }
    Some(write_params(tmp, &section(&root, 1, batch, 3, 32, 32, 1)))
}

#[test]
fn partial_batch_is_dropped_with_a_warning_or_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(params) = small_set(tmp.path(), &["a.png", "b.PNG", "c.jpg.png", "d.png", "e.png", "notes.txt"], 2) else { return };
    let out_dir = tmp.path().join("calib");
    let out = preprocess(&params, &out_dir, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: dropped the last partial batch (1 of 2 images): e.png (use --keep-partial to keep them)"),
        "{stderr}"
    );
    let dir = out_dir.join("imgs_batch2");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["files"][0]["images"], json!(["a.png", "b.PNG"]));
    assert_eq!(manifest["dropped"], json!(["e.png"]));
    assert!(!dir.join("batch0003.bin").exists());

    let out = preprocess(&params, &out_dir, &["--keep-partial"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: last batch had 1 of 2 images (e.png): filled by repeating e.png 1 time(s)"), "{stderr}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"][2]["images"], json!(["e.png", "e.png"]));
    let last = read_f32(&dir.join("batch0003.bin"));
    assert_eq!(last.len(), 2 * 3 * 32 * 32);
    assert_eq!(last[..3 * 32 * 32], last[3 * 32 * 32..], "the repeat is the same image");
    assert_eq!(std::fs::metadata(dir.join("batch0001.bin")).unwrap().len(), 2 * 3 * 32 * 32 * 4);

    // A later run with fewer images removes the stale last file instead of leaving it for calibration.
    std::fs::remove_file(tmp.path().join("imgs/e.png")).unwrap();
    std::fs::remove_file(tmp.path().join("imgs/d.png")).unwrap();
    let out = preprocess(&params, &out_dir, &[]);
    assert!(out.status.success() && text(&out.stderr).contains("batch0003.bin left by an earlier run"), "{}", text(&out.stderr));
    assert!(!dir.join("batch0003.bin").exists() && !dir.join("batch0002.bin").exists());
}

#[test]
fn corrupt_image_is_an_error_or_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(params) = small_set(tmp.path(), &["a.png", "c.png"], 1) else { return };
    let bad = tmp.path().join("imgs/b.jpg");
    let Some(rocket) = common::asset("images/rocket.jpg") else { return };
    let bytes = std::fs::read(rocket).unwrap();
    std::fs::write(&bad, &bytes[..100]).unwrap(); // cut inside the headers: no image at all
    std::fs::write(tmp.path().join("imgs/d.png"), b"not a png at all").unwrap();
    let out_dir = tmp.path().join("calib");

    let out = preprocess(&params, &out_dir, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("error: {}: cannot decode image:", bad.display())), "{stderr}");
    assert!(stderr.contains("(use --skip-bad to skip unreadable images)"), "{stderr}");

    let out = preprocess(&params, &out_dir, &["--skip-bad"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("warning: skipped {}: cannot decode image:", bad.display())), "{stderr}");
    assert!(stderr.contains("d.png: cannot decode image"), "{stderr}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(out_dir.join("imgs_batch1/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["skipped"], json!(["b.jpg", "d.png"]));
    let files: Vec<&Value> = manifest["files"].as_array().unwrap().iter().map(|f| &f["images"][0]).collect();
    assert_eq!(files, [&json!("a.png"), &json!("c.png")]);
}

#[test]
fn params_errors_name_line_column_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let params = tmp.path().join("p.json");
    let out_dir = tmp.path().join("calib");
    let seed = "{\n    \"det_pre_params\":\n    {\n        \"img_root\":\"./imgs\",  # photos\n        \"fixed_scale\":1,\n        \"batch_size\":1,\n        \"des_channels\":3,\n        \"des_height\":640,\n        \"des_width\":640,\n        \"is_BGR2RGB\":1,\n        \"means\":[0, 0, 0],\n        \"stds\":[255, 255, 255],\n    },\n    // later steps\n}\n";

    // A missing comma on line 6 → "line 7, column 9" (where the next key starts).
    std::fs::write(&params, seed.replace("\"batch_size\":1,", "\"batch_size\":1")).unwrap();
    let out = preprocess(&params, &out_dir, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("error: {}:7:9: invalid JSON: expected `,` or `}}`", params.display())), "{stderr}");

    std::fs::write(&params, seed.replace("        \"des_width\":640,\n", "")).unwrap();
    let out = preprocess(&params, &out_dir, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("section 'det_pre_params': missing required key 'des_width' (expected an integer 1..=65536)"), "{stderr}");

    // Unknown keys are warnings; the run goes on (here to the img_root check).
    std::fs::write(&params, seed.replace("\"fixed_scale\":1,", "\"fixed_scale\":1, \"mean\": [1],")).unwrap();
    let out = preprocess(&params, &out_dir, &[]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("warning: {}: section 'det_pre_params': unknown key 'mean' ignored", params.display())), "{stderr}");
    assert!(stderr.contains("imgs is not a folder"), "then fails on the missing image folder: {stderr}");
}

#[test]
fn manifest_hash_tracks_the_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(params) = small_set(tmp.path(), &["a.png"], 1) else { return };
    let out_dir = tmp.path().join("calib");
    assert!(preprocess(&params, &out_dir, &[]).status.success());
    let read = || -> Value { serde_json::from_slice(&std::fs::read(out_dir.join("imgs_batch1/manifest.json")).unwrap()).unwrap() };
    let first = read()["params_hash"].clone();
    assert!(first.as_str().unwrap().starts_with("sha256:"));
    assert!(preprocess(&params, &out_dir, &[]).status.success());
    assert_eq!(read()["params_hash"], first, "same parameters, same hash");
    let mut sec: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("section.json")).unwrap()).unwrap();
    sec["stds"] = json!([1, 1, 1]);
    write_params(tmp.path(), &sec);
    assert!(preprocess(&params, &out_dir, &[]).status.success());
    assert_ne!(read()["params_hash"], first);
    assert_eq!(read()["params"]["stds"], json!([1.0, 1.0, 1.0]));
}

#[test]
fn fewer_images_than_one_batch_is_an_error_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(params) = small_set(tmp.path(), &["only.png"], 4) else { return };
    let out_dir = tmp.path().join("calib");
    let out = preprocess(&params, &out_dir, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("1 image(s) under") && stderr.contains("but batch_size is 4: no full batch (use --keep-partial"), "{stderr}");
    let out = preprocess(&params, &out_dir, &["--keep-partial"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(out_dir.join("imgs_batch4/batch0001.bin")).unwrap().len(), 4 * 3 * 32 * 32 * 4);
}

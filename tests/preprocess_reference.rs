//! `ascend-ptq preprocess` against the reference `preprocess_data.py` itself
//! (`../shared/seed/scripts/`, run with the venv's OpenCV): the same JSON (both dialects) and
//! the same real photos give the same floats (max |diff| ≤ 1e-6, padding included), for
//! letterbox and stretch, integer and non-integer scale ratios; the keys that bring back the
//! pre-issue-14 behaviour really change the result; grey follows its documented definition.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const TOLERANCE: f32 = 1e-6;

fn reference_script() -> PathBuf {
    let script = common::repo_root().join("../shared/seed/scripts/preprocess_data.py");
    assert!(script.exists(), "the reference script {} is missing (shared/ beside the repository)", script.display());
    script
}

/// The repository's own `models/yolov6_params.json`.
fn repository_json() -> Value {
    let path = common::repo_root().join("../shared/seed/models/yolov6_params.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A folder `imgs` under `dir` with copies of the named photos (nothing else: the script
/// reads every file of the folder).
fn image_folder(dir: &Path, photos: &[&str]) -> Option<PathBuf> {
    let root = dir.join("imgs");
    std::fs::create_dir_all(&root).unwrap();
    for p in photos {
        std::fs::copy(common::asset(&format!("images/{p}"))?, root.join(p)).unwrap();
    }
    Some(root)
}

/// Per image name, its tensor in the reference's output: the script processes images in
/// `os.listdir` order (it prints each path) and writes `batch0.bin`, `batch1.bin`, ... of
/// `batch` images each under `<cwd>/<calibrationDataRoot>/batch<B>/`.
fn run_reference(py: &Path, params: &Path, cwd: &Path) -> HashMap<String, Vec<f32>> {
    let out = Command::new(py).arg(reference_script()).arg(params).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "preprocess_data.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let sec = &serde_json::from_slice::<Value>(&std::fs::read(params).unwrap()).unwrap()["detPreParams"];
    let batch = sec["batchSize"].as_u64().unwrap() as usize;
    let per_image =
        ["netInputChannels", "netInputHeight", "netInputWidth"].iter().map(|k| sec[k].as_u64().unwrap() as usize).product::<usize>();
    let order: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Path::new(l.trim()).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let dir = cwd.join(sec["calibrationDataRoot"].as_str().unwrap()).join(format!("batch{batch}"));
    let mut tensors = HashMap::new();
    for (i, name) in order.iter().enumerate().take(order.len() / batch * batch) {
        let file = read_f32(&dir.join(format!("batch{}.bin", i / batch)));
        assert_eq!(file.len(), batch * per_image);
        let k = i % batch;
        tensors.insert(name.clone(), file[k * per_image..(k + 1) * per_image].to_vec());
    }
    tensors
}

/// Runs our CLI on `params` in `cwd` (no `--out`, unless given) and returns the bins folder
/// it reported and each image's tensor from the files listed in its manifest.
fn run_ours(params: &Path, cwd: &Path, expected_dir: &Path) -> HashMap<String, Vec<f32>> {
    std::fs::create_dir_all(cwd).unwrap();
    let out = common::cli().arg("preprocess").arg(params).current_dir(cwd).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "preprocess failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("in {} (", expected_dir.display())), "bins not in {}: {stdout}", expected_dir.display());
    let dir = cwd.join(expected_dir);
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut tensors = HashMap::new();
    for file in manifest["files"].as_array().unwrap() {
        let data = read_f32(&dir.join(file["file"].as_str().unwrap()));
        let names = file["images"].as_array().unwrap();
        let per_image = data.len() / names.len();
        for (k, name) in names.iter().enumerate() {
            tensors.insert(name.as_str().unwrap().to_string(), data[k * per_image..(k + 1) * per_image].to_vec());
        }
    }
    tensors
}

/// Largest |ours − reference| over every float of every image (both must have the same images).
fn max_diff(ours: &HashMap<String, Vec<f32>>, reference: &HashMap<String, Vec<f32>>) -> f32 {
    let mut names: Vec<&String> = reference.keys().collect();
    names.sort();
    assert_eq!(ours.len(), reference.len(), "ours {:?} vs reference {names:?}", ours.keys().collect::<Vec<_>>());
    let mut worst = 0f32;
    for name in names {
        let (a, b) = (&ours[name], &reference[name]);
        assert_eq!(a.len(), b.len(), "{name}");
        let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        eprintln!("{name}: max |ours − preprocess_data.py| = {d:e}");
        worst = worst.max(d);
    }
    worst
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The reference's JSON with `imgRoot` pointed at `root` and `changes` applied to the section.
fn repository_params(root: &Path, changes: Value) -> Value {
    let mut v = repository_json();
    v["detPreParams"]["imgRoot"] = json!(root);
    for (k, val) in changes.as_object().unwrap() {
        v["detPreParams"][k] = val.clone();
    }
    v
}

/// Runs both on `params` (in separate working directories: both write
/// `<calibrationDataRoot>/batch<B>/`), checks every float, and returns ours with the old keys.
fn check_repository_dialect(tmp: &Path, params: &Value) -> (HashMap<String, Vec<f32>>, HashMap<String, Vec<f32>>) {
    let py = common::oracle_python().expect("checked by the caller");
    let (ref_cwd, our_cwd) = (tmp.join("reference"), tmp.join("ours"));
    std::fs::create_dir_all(&ref_cwd).unwrap();
    std::fs::create_dir_all(&our_cwd).unwrap();
    let path = tmp.join("yolov6_params.json");
    write_json(&path, params);
    let reference = run_reference(&py, &path, &ref_cwd);
    let sec = &params["detPreParams"];
    let dir = Path::new(sec["calibrationDataRoot"].as_str().unwrap()).join(format!("batch{}", sec["batchSize"]));
    let ours = run_ours(&path, &our_cwd, &dir);
    let worst = max_diff(&ours, &reference);
    assert!(worst <= TOLERANCE, "max |diff| {worst:e} > {TOLERANCE:e}");
    (ours, reference)
}

/// The case: the repository's JSON verbatim (640×640 letterbox, batch 12, RGB, 1/255)
/// on twelve photos, non-integer ratios up and down, exact ratio 1 (pad only), wide and tall.
#[test]
fn repository_json_letterbox_equals_the_reference_float_for_float() {
    let Some(_) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let photos = [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "retina.jpg",
        "microaneurysms.png",
        "chessboard_RGB.png",
        "text.png",
        "page.png",
        "horse.png",
        "motorcycle_left.png",
        "hubble_deep_field.jpg",
    ];
    let Some(root) = image_folder(tmp.path(), &photos) else { return };
    let params = repository_params(&root, json!({}));
    let (_, reference) = check_repository_dialect(tmp.path(), &params);
    assert_eq!(reference.len(), 12);

    // The old behaviour (pad 114, 8-bit resize) is reachable and is not the reference: the
    // comparison above would fail with it.
    let old = repository_params(&root, json!({"padValue": 114, "resizeInput": "uint8"}));
    let path = tmp.path().join("old.json");
    write_json(&path, &old);
    let ours_old = run_ours(&path, &tmp.path().join("old"), Path::new("./calibration_data/batch12"));
    let worst = max_diff(&ours_old, &reference);
    assert!(worst > 0.4, "pad 114 vs 0 is 114/255 ≈ 0.447 of difference, got {worst}");
    // Only the 8-bit resize: rocket.jpg (ratio 1, never resized) agrees to the pad, the
    // resized photos do not.
    let uint8 = repository_params(&root, json!({"resizeInput": "uint8"}));
    write_json(&path, &uint8);
    let ours_uint8 = run_ours(&path, &tmp.path().join("uint8"), Path::new("./calibration_data/batch12"));
    let d = |name: &str| ours_uint8[name].iter().zip(&reference[name]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(d("rocket.jpg") <= TOLERANCE, "no resize, same values: {}", d("rocket.jpg"));
    assert!(d("chelsea.png") > 1e-3, "8-bit resize rounds to levels: {}", d("chelsea.png"));
}

/// Stretch (isFixResize 0) to 400×400, BGR kept, ImageNet means and scales = 1/std, two images
/// per file: exact 2× up (chessboard 200²), identity (phantom 400²), non-integer down.
#[test]
fn repository_json_stretch_bgr_imagenet_equals_the_reference() {
    let Some(_) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(root) = image_folder(tmp.path(), &["chessboard_RGB.png", "phantom.png", "astronaut.png", "coffee.png"]) else { return };
    let scales: Vec<f64> = [58.395, 57.12, 57.375].iter().map(|s| 1.0 / s).collect();
    let changes = json!({"isFixResize": 0, "batchSize": 2, "netInputHeight": 400, "netInputWidth": 400, "isBGR2RGB": 0,
        "means": [103.53, 116.28, 123.675], "scales": scales, "calibrationDataRoot": "calib/out"});
    let (ours, _) = check_repository_dialect(tmp.path(), &repository_params(&root, changes));
    assert_eq!(ours.len(), 4);
}

/// Letterbox to a non-square 320×256 with exact 2× down (astronaut 512² → 256²) and odd
/// padding splits, grey-free colour, batch 2.
#[test]
fn repository_json_non_square_letterbox_exact_halving_equals_the_reference() {
    let Some(_) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(root) = image_folder(tmp.path(), &["astronaut.png", "chelsea.png", "logo.png", "color.png"]) else { return };
    let changes = json!({"batchSize": 2, "netInputHeight": 256, "netInputWidth": 320});
    check_repository_dialect(tmp.path(), &repository_params(&root, changes));
}

/// The guide's dialect (det_pre_params, snake_case, stds) as the guide writes it: our bins
/// go to data/calibration/imgs_batch1/ and equal the reference run on the same parameters
/// (written in the dialect it reads, scales = 1/stds).
#[test]
fn guide_json_equals_the_reference_and_goes_where_the_guide_shows() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(root) = image_folder(tmp.path(), &["rocket.jpg", "coffee.png", "moon.png"]) else { return };
    let guide = format!(
        "{{\t\n\t\"det_pre_params\":\n\t{{\n\t\t\"img_root\":\"{}\",\n\t\t\"fixed_scale\":1, \n\t\t\"batch_size\":1, \n\t\t\"des_channels\":3, \n\
         \t\t\"des_height\":640, \n\t\t\"des_width\":640, \n\t\t\"is_BGR2RGB\":1, \n\t\t\"means\":[0, 0, 0], \n\t\t\"stds\":[255, 255, 255]\n\t}},\n\n\
         \t# the rest is not used for preprocessing\n\t\"onnx_path\":\"ONNX_MODEL_PATH\",\n\t\"quant_int8\": {{ \"cali_batch_size\":16 }}\n}}\n",
        root.display()
    );
    let guide_path = tmp.path().join("yolov6_pre_params.json");
    std::fs::write(&guide_path, guide).unwrap();
    let our_cwd = tmp.path().join("ours");
    std::fs::create_dir_all(&our_cwd).unwrap();
    let ours = run_ours(&guide_path, &our_cwd, Path::new("data/calibration/imgs_batch1"));

    let ref_cwd = tmp.path().join("reference");
    std::fs::create_dir_all(&ref_cwd).unwrap();
    let changes = json!({"batchSize": 1, "scales": [1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0]});
    let path = tmp.path().join("as_repository.json");
    write_json(&path, &repository_params(&root, changes));
    let reference = run_reference(&py, &path, &ref_cwd);
    let worst = max_diff(&ours, &reference);
    assert!(worst <= TOLERANCE, "max |diff| {worst:e}");
}

/// `pad_value: 114` (YOLOv5/v8's letterbox) with the float resize: the reference's own
/// pipeline with its letterbox colour set to 114.
#[test]
fn pad_value_114_is_the_reference_letterbox_with_colour_114() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let photos = ["chelsea.png", "retina.jpg", "text.png"];
    let Some(root) = image_folder(tmp.path(), &photos) else { return };
    let params = repository_params(&root, json!({"batchSize": 1, "padValue": 114}));
    let path = tmp.path().join("p.json");
    write_json(&path, &params);
    let ours = run_ours(&path, tmp.path(), Path::new("./calibration_data/batch1"));
    let reference = variants(&py, tmp.path(), &["pad", "114"], &params, &root, &photos);
    let worst = max_diff(&ours, &reference);
    assert!(worst <= TOLERANCE, "max |diff| {worst:e}");
    // The pad is really 114: the first value of chelsea (451×300, padded top) is 114/255.
    assert_eq!(ours["chelsea.png"][0], 114.0f32 / (1.0f64 / 0.00392157) as f32);
}

/// Grey, which the reference cannot do: cvtColor(BGR2GRAY) → float32 → the reference's
/// letterbox / resize → (x − mean) / std, for letterbox and stretch.
#[test]
fn gray_follows_its_definition_on_the_reference_letterbox() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let photos = ["rocket.jpg", "chessboard_GRAY.png", "chelsea.png", "page.png"];
    let Some(root) = image_folder(tmp.path(), &photos) else { return };
    for (fixed, h, w) in [(1, 224, 160), (0, 48, 320)] {
        let changes = json!({"isFixResize": fixed, "batchSize": 1, "netInputChannels": 1, "netInputHeight": h, "netInputWidth": w,
            "means": [127.5], "scales": [1.0 / 127.5], "calibrationDataRoot": format!("grey{fixed}")});
        let params = repository_params(&root, changes);
        let path = tmp.path().join("grey.json");
        write_json(&path, &params);
        let ours = run_ours(&path, tmp.path(), &Path::new(&format!("grey{fixed}")).join("batch1"));
        let reference = variants(&py, tmp.path(), &["gray"], &params, &root, &photos);
        let worst = max_diff(&ours, &reference);
        assert!(worst <= TOLERANCE, "fixed {fixed}: max |diff| {worst:e}");
    }
}

/// tests/oracle/reference_variants.py on `photos`: per image name, its tensor.
fn variants(py: &Path, tmp: &Path, mode: &[&str], params: &Value, root: &Path, photos: &[&str]) -> HashMap<String, Vec<f32>> {
    let section = tmp.join("section.json");
    write_json(&section, &params["detPreParams"]);
    let out = tmp.join("variants");
    let script = reference_script();
    let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
    args.extend([script.display().to_string(), section.display().to_string(), out.display().to_string()]);
    args.extend(photos.iter().map(|p| root.join(p).display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = common::run_oracle(py, "reference_variants.py", &args);
    assert_eq!(code, 0, "reference_variants.py: {stderr}");
    photos.iter().map(|p| (p.to_string(), read_f32(&out.join(format!("{p}.f32"))))).collect()
}

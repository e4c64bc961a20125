//! The user's folder for the flow tests: the guide's two flow JSON files with their text kept
//! (only sizes, counts and paths substituted), a small detector, the repository's AIPP config
//! and a few photos.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

const SEED: &str = "../shared/seed";

pub fn seed(rel: &str) -> String {
    std::fs::read_to_string(super::repo_root().join(SEED).join(rel)).unwrap()
}

/// The user's folder: models/yolov6n.onnx (a small stand-in detector), models/model_aipp.cfg
/// (the repository's, 640 → 32), imgs/ with 4 photos, and the flow JSON files.
pub fn user_folder() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    super::models::write_small_detector(&root.join("models/yolov6n.onnx"), None);
    std::fs::write(root.join("models/model_aipp.cfg"), seed("models/model_aipp.cfg").replace("640", "32")).unwrap();
    std::fs::create_dir_all(root.join("imgs")).unwrap();
    for i in 0..4u32 {
        let img = image::RgbImage::from_fn(40 + 8 * i, 30, |x, y| image::Rgb([(x * 7 + i * 40) as u8, (y * 9) as u8, ((x + y) * 3) as u8]));
        img.save(root.join(format!("imgs/photo{i}.png"))).unwrap();
    }
    let repo = seed("models/yolov6_params.json")
        .replace("640", "32")
        .replace("\"batchSize\":12", "\"batchSize\":2")
        .replace("\"calBatchSize\":16", "\"calBatchSize\":2")
        .replace("images:12", "images:2");
    std::fs::write(root.join("models/yolov6_params.json"), repo).unwrap();
    let guide = seed("scripts/model_pre_params_template.json")
        .replace("640", "32")
        .replace("\"batch_size\":12", "\"batch_size\":2")
        .replace("\"cali_batch_size\":16", "\"cali_batch_size\":2")
        .replace("INPUT_NAME:12", "images:2")
        .replace("QUANT_IMAGES_ROOT_DIR", "./imgs")
        .replace("ONNX_MODEL_PATH", "models/yolov6n.onnx")
        .replace("./model_aipp.cfg", "./models/model_aipp.cfg");
    std::fs::write(root.join("guide_params.json"), guide).unwrap();
    tmp
}

/// The repository-dialect file of [`user_folder`] with every path absolute, for callers whose
/// current directory is elsewhere (the C API test).
pub fn absolute_repo_json(root: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root.join("models/yolov6_params.json")).unwrap();
    let r = root.display().to_string();
    let text = text
        .replace("\"./imgs\"", &format!("\"{r}/imgs\""))
        .replace("\"./calibration_data\"", &format!("\"{r}/calibration_data\""))
        .replace("\"models/yolov6n.onnx\"", &format!("\"{r}/models/yolov6n.onnx\""))
        .replace("\"quant_test/\"", &format!("\"{r}/quant_test/\""))
        .replace("\"./models/model_aipp.cfg\"", &format!("\"{r}/models/model_aipp.cfg\""));
    let path = root.join("absolute_params.json");
    std::fs::write(&path, text).unwrap();
    path
}

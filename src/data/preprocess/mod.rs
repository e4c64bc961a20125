//! `preprocess`: a folder of images → calibration bins for the quantizer, equal float for
//! float to the reference `preprocess_data.py` by default.
//!
//! Per image, as the script does it: `cv2.imread` (BGR) → `astype(np.float32)` → letterbox
//! (`fixed_scale: 1`, pad `pad_value`, default 0) or stretch with `cv2.resize(...,
//! INTER_LINEAR)` on the float image ([`float_resize`]) → BGR→RGB when `is_BGR2RGB: 1` →
//! `(p − means[c]) / stds[c]` in float32 → CHW. With `resize_input: "uint8"` the 8-bit image
//! is resized instead (OpenCV's fixed point, [`resize`]) and normalised in f64, as before
//! issue 14. Grey (`des_channels: 1`, which the script cannot do: its `imread` returns three
//! channels) is defined here as `cv2.cvtColor(imread(...), COLOR_BGR2GRAY)` → float32 → the
//! same resize, letterbox and normalisation (uint8 mode keeps resize-then-grey).
//!
//! `batch_size` images make one file `batch{i:04}.bin`, numbered from 0001 so byte-wise file
//! order is numeric order; `manifest.json` beside them lists each file's images, shape, dtype
//! and the parameter hash. Images are taken in file-name order (the script takes
//! `os.listdir` order, which depends on the file system). Where the files go: [`bins_dir`].

pub mod decode;
pub mod float_resize;
pub mod pixels;
pub mod resize;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

pub use decode::decode_bgr;
pub use pixels::{F32Image, Image, U8Image};

use crate::data::params::{Dialect, LoadedParams, PreprocessParams, ResizeInput};

/// Extensions `preprocess` picks up (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"];

#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    // The I/O error is part of the message, not a `source`: `{:#}` would print it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("img_root {path} is not a folder (a relative img_root is resolved against the params file's folder)")]
    MissingRoot { path: PathBuf },
    #[error("img_root {path}: no images (expected files ending in .jpg, .jpeg, .png, .bmp, .tif, .tiff or .webp)")]
    NoImages { path: PathBuf },
    #[error("{path}: cannot decode image: {reason} (use --skip-bad to skip unreadable images)")]
    BadImage { path: PathBuf, reason: String },
    #[error(
        "{count} image(s) under {root} but batch_size is {batch_size}: no full batch (use --keep-partial to fill it by repeating the last image)"
    )]
    NoFullBatch { root: PathBuf, count: usize, batch_size: usize },
    /// The caller's cancel token was set (C API progress callback); the bins this run had
    /// written were removed.
    #[error("cancelled after {done} of {total} images")]
    Cancelled { done: usize, total: usize },
}

/// How to run [`preprocess`].
#[derive(Debug, Clone)]
pub struct PreprocessOptions {
    /// The folder the batch files and `manifest.json` are written to (see [`bins_dir`]).
    pub dir: PathBuf,
    /// Fill a final partial batch by repeating its last image instead of dropping it.
    pub keep_partial: bool,
    /// Unreadable images become warnings instead of errors.
    pub skip_bad: bool,
}

/// One written file, as listed in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct BatchFile {
    pub file: String,
    /// File names relative to `img_root`; a repeated name fills a partial batch.
    pub images: Vec<String>,
    pub shape: [usize; 4],
    pub dtype: &'static str,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub params_hash: String,
    pub params: PreprocessParams,
    pub img_root: PathBuf,
    pub shape: [usize; 4],
    pub dtype: &'static str,
    pub layout: &'static str,
    pub files: Vec<BatchFile>,
    /// Images left out of a dropped partial batch.
    pub dropped: Vec<String>,
    /// Images skipped with `--skip-bad`.
    pub skipped: Vec<String>,
}

/// What a run did; `warnings` are for the user (the CLI prints them).
#[derive(Debug, Clone)]
pub struct PreprocessReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// The images under `root` (not recursive) with a known extension, sorted by file name.
pub fn list_images(root: &Path) -> Result<Vec<PathBuf>, PreprocessError> {
    if !root.is_dir() {
        return Err(PreprocessError::MissingRoot { path: root.to_path_buf() });
    }
    let io = |error| PreprocessError::Io { path: root.to_path_buf(), error };
    let mut images = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let known = path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(e)));
        if known && path.is_file() {
            images.push(path);
        }
    }
    images.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if images.is_empty() {
        return Err(PreprocessError::NoImages { path: root.to_path_buf() });
    }
    Ok(images)
}

/// Where `preprocess` writes. With `--out DIR`: `DIR/imgs_batch{batch_size}/`. Without it,
/// where the reference puts them: for the repository's dialect
/// `<calibrationDataRoot>/batch<batchSize>/` (as `preprocess_data.py` does), for the guide's
/// `data/calibration/<img_root name>_batch<batch_size>/` (as the guide shows); both relative
/// to the current directory, as for the script. A repository file without
/// `calibrationDataRoot` falls back to the guide's folder.
pub fn bins_dir(loaded: &LoadedParams, out: Option<&Path>) -> PathBuf {
    let batch = loaded.params.batch_size;
    if let Some(out) = out {
        return out.join(format!("imgs_batch{batch}"));
    }
    match (loaded.dialect, &loaded.calibration_data_root) {
        (Dialect::Repository, Some(root)) => root.join(format!("batch{batch}")),
        _ => Path::new("data/calibration").join(format!("{}_batch{batch}", img_root_name(&loaded.params.img_root))),
    }
}

/// The last component of `img_root` (`./imgs` → `imgs`); `.` or `..` by the folder's real name.
fn img_root_name(root: &Path) -> String {
    let named = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    named(root).or_else(|| root.canonicalize().ok().as_deref().and_then(named)).unwrap_or_else(|| "imgs".into())
}

/// Decode + resize/letterbox + channel conversion in 8 bits: the uint8 HWC image in the
/// model's channel order, as a host resizing 8-bit frames feeds it to AIPP. With
/// `resize_input: "uint8"` the bins are exactly its normalisation ([`normalize_chw`]); with the
/// default float32 resize they differ from it by the rounding of the interpolation (< 1 level).
pub fn prepare_image(path: &Path, p: &PreprocessParams) -> Result<U8Image, PreprocessError> {
    Ok(prepare_decoded(&decode(path)?, p))
}

fn decode(path: &Path) -> Result<U8Image, PreprocessError> {
    decode_bgr(path).map_err(|reason| PreprocessError::BadImage { path: path.to_path_buf(), reason })
}

/// [`prepare_image`] on an already decoded BGR image.
pub fn prepare_decoded(bgr: &U8Image, p: &PreprocessParams) -> U8Image {
    let sized = if p.fixed_scale {
        resize::letterbox(bgr, p.des_width, p.des_height, p.pad_value, p.pad_mode)
    } else {
        resize::resize_linear(bgr, p.des_width, p.des_height)
    };
    if p.des_channels == 1 {
        return resize::bgr_to_gray(&sized);
    }
    let mut out = sized;
    if p.is_bgr2rgb {
        resize::swap_red_blue(&mut out);
    }
    out
}

/// The float32 path of `preprocess_data.py`: the image converted to float32, then resized /
/// letterboxed (pad `pad_value`) and put in model channel order; grey is converted first.
pub fn prepare_decoded_f32(bgr: &U8Image, p: &PreprocessParams) -> F32Image {
    let src = if p.des_channels == 1 { resize::bgr_to_gray(bgr).to_f32() } else { bgr.to_f32() };
    let mut sized = if p.fixed_scale {
        resize::letterbox_f32(&src, p.des_width, p.des_height, f32::from(p.pad_value), p.pad_mode)
    } else {
        float_resize::resize_linear_f32(&src, p.des_width, p.des_height)
    };
    if p.des_channels == 3 && p.is_bgr2rgb {
        resize::swap_red_blue(&mut sized);
    }
    sized
}

/// What one image contributes to a batch file: the normalised float32 CHW tensor.
pub fn image_tensor(path: &Path, p: &PreprocessParams) -> Result<Vec<f32>, PreprocessError> {
    Ok(tensor_from_decoded(&decode(path)?, p))
}

/// [`image_tensor`] on an already decoded BGR image.
pub fn tensor_from_decoded(bgr: &U8Image, p: &PreprocessParams) -> Vec<f32> {
    match p.resize_input {
        ResizeInput::Float32 => normalize_chw_f32(&prepare_decoded_f32(bgr, p), p),
        ResizeInput::Uint8 => normalize_chw(&prepare_decoded(bgr, p), p),
    }
}

/// `(p − means[c]) / stds[c]` into CHW float32 (computed in f64, as numpy does with Python
/// float means on a float64 image, then rounded once): the `resize_input: "uint8"` path.
pub fn normalize_chw(img: &U8Image, p: &PreprocessParams) -> Vec<f32> {
    let (hw, c) = (img.width * img.height, img.channels);
    let mut out = vec![0f32; hw * c];
    for ch in 0..c {
        let (mean, std) = (p.means[ch], p.stds[ch]);
        let plane = &mut out[ch * hw..(ch + 1) * hw];
        for (o, px) in plane.iter_mut().zip(img.data.iter().skip(ch).step_by(c)) {
            *o = ((*px as f64 - mean) / std) as f32;
        }
    }
    out
}

/// `(im[:, :, c] − means[c]) / stds[c]` on a float32 image into CHW, in float32 as numpy
/// computes it (the Python float mean and std are cast to float32 first).
pub fn normalize_chw_f32(img: &F32Image, p: &PreprocessParams) -> Vec<f32> {
    let (hw, c) = (img.width * img.height, img.channels);
    let mut out = vec![0f32; hw * c];
    for ch in 0..c {
        let (mean, std) = (p.means[ch] as f32, p.stds[ch] as f32);
        let plane = &mut out[ch * hw..(ch + 1) * hw];
        for (o, px) in plane.iter_mut().zip(img.data.iter().skip(ch).step_by(c)) {
            *o = (*px - mean) / std;
        }
    }
    out
}

/// Images processed in parallel per round: bounds memory to a few dozen decoded images.
const ROUND: usize = 32;

/// Runs the whole folder. `progress` is called with the number of images done so far.
pub fn preprocess(
    p: &PreprocessParams,
    opts: &PreprocessOptions,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<PreprocessReport, PreprocessError> {
    let images = list_images(&p.img_root)?;
    let dir = opts.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|error| PreprocessError::Io { path: dir.clone(), error })?;
    // A run that fails half way must not leave the previous manifest describing new files.
    let manifest_path = dir.join("manifest.json");
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path).map_err(|error| PreprocessError::Io { path: manifest_path.clone(), error })?;
    }
    let name_of = |path: &Path| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    let mut warnings = Vec::new();
    let mut skipped = Vec::new();
    let mut files: Vec<BatchFile> = Vec::new();
    // Normalised images waiting for a full batch, with their names.
    let mut pending: Vec<(String, Vec<f32>)> = Vec::new();
    let mut done = 0;
    for round in images.chunks(ROUND) {
        if crate::engine::cancel::cancelled() {
            // This run's bins go; an older run's files of the same names are already overwritten.
            for f in &files {
                let _ = std::fs::remove_file(dir.join(&f.file));
            }
            return Err(PreprocessError::Cancelled { done, total: images.len() });
        }
        let results: Vec<_> = round.par_iter().map(|path| image_tensor(path, p)).collect();
        for (path, result) in round.iter().zip(results) {
            match result {
                Ok(tensor) => pending.push((name_of(path), tensor)),
                Err(e) if opts.skip_bad => {
                    warnings.push(format!("skipped {e}").replace(" (use --skip-bad to skip unreadable images)", ""));
                    skipped.push(name_of(path));
                }
                Err(e) => return Err(e),
            }
        }
        while pending.len() >= p.batch_size {
            let batch: Vec<_> = pending.drain(..p.batch_size).collect();
            files.push(write_batch(&dir, files.len() + 1, batch, p)?);
        }
        done += round.len();
        if let Some(report) = progress {
            report(done, images.len());
        }
    }
    let mut dropped = Vec::new();
    if !pending.is_empty() {
        let names: Vec<String> = pending.iter().map(|(n, _)| n.clone()).collect();
        if opts.keep_partial {
            let last = pending.last().cloned().expect("non-empty");
            let repeats = p.batch_size - pending.len();
            pending.extend(std::iter::repeat_n(last.clone(), repeats));
            warnings.push(format!(
                "last batch had {} of {} images ({}): filled by repeating {} {repeats} time(s)",
                names.len(),
                p.batch_size,
                names.join(", "),
                last.0
            ));
            files.push(write_batch(&dir, files.len() + 1, pending, p)?);
        } else {
            warnings.push(format!(
                "dropped the last partial batch ({} of {} images): {} (use --keep-partial to keep them)",
                names.len(),
                p.batch_size,
                names.join(", ")
            ));
            dropped = names;
        }
    }
    if files.is_empty() {
        return Err(PreprocessError::NoFullBatch { root: p.img_root.clone(), count: dropped.len(), batch_size: p.batch_size });
    }
    warnings.extend(remove_stale_batches(&dir, files.len())?);
    let manifest = Manifest {
        params_hash: p.hash(),
        params: p.clone(),
        img_root: p.img_root.clone(),
        shape: p.batch_shape(),
        dtype: "float32",
        layout: "NCHW",
        files,
        dropped,
        skipped,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    write_file(&manifest_path, json.as_bytes())?;
    Ok(PreprocessReport { dir, manifest, warnings })
}

/// `batch0001.bin`, ...: four digits at least, so byte-wise order is numeric order.
pub fn batch_file_name(index: usize) -> String {
    format!("batch{index:04}.bin")
}

fn write_batch(dir: &Path, index: usize, batch: Vec<(String, Vec<f32>)>, p: &PreprocessParams) -> Result<BatchFile, PreprocessError> {
    let file = batch_file_name(index);
    let mut bytes = Vec::with_capacity(batch.iter().map(|(_, t)| t.len() * 4).sum());
    for (_, tensor) in &batch {
        tensor.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    }
    write_file(&dir.join(&file), &bytes)?;
    Ok(BatchFile { file, images: batch.into_iter().map(|(n, _)| n).collect(), shape: p.batch_shape(), dtype: "float32" })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PreprocessError> {
    crate::onnx::io::write_atomically(path, bytes).map_err(|e| match e {
        crate::onnx::OnnxError::Io { path, source } => PreprocessError::Io { path, error: source },
        other => PreprocessError::Io { path: path.to_path_buf(), error: std::io::Error::other(other.to_string()) },
    })
}

/// A previous run with more images left `batchNNNN.bin` files past the new last one, and the
/// reference script writes `batch0.bin`, `batch1.bin`, ... into the same folder: a
/// calibration run would read them as data. Remove every `batch<digits>.bin` this run did not
/// write, and say so.
fn remove_stale_batches(dir: &Path, count: usize) -> Result<Vec<String>, PreprocessError> {
    let io = |error| PreprocessError::Io { path: dir.to_path_buf(), error };
    let written: Vec<String> = (1..=count).map(batch_file_name).collect();
    let mut notes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let digits = name.strip_prefix("batch").and_then(|r| r.strip_suffix(".bin"));
        let is_batch = digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if is_batch && !written.contains(&name) {
            std::fs::remove_file(&path).map_err(|error| PreprocessError::Io { path: path.clone(), error })?;
            notes.push(format!("removed {} left by an earlier run", path.display()));
        }
    }
    notes.sort();
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::params::parse_params;

    fn loaded(text: &str) -> LoadedParams {
        parse_params(text, Path::new("p.json"), None).unwrap()
    }

    #[test]
    fn bins_go_where_the_reference_puts_them() {
        let guide = loaded(
            r#"{"det_pre_params": {"img_root": "./photos/", "fixed_scale": 1, "batch_size": 4, "des_channels": 3,
            "des_height": 8, "des_width": 8, "is_BGR2RGB": 1, "means": [0, 0, 0], "stds": [255, 255, 255]}}"#,
        );
        assert_eq!(bins_dir(&guide, None), Path::new("data/calibration/photos_batch4"));
        assert_eq!(bins_dir(&guide, Some(Path::new("out"))), Path::new("out/imgs_batch4"));
        let repo_text = r#"{"detPreParams": {"imgRoot": "./imgs", "calibrationDataRoot": "./calibration_data", "isFixResize": 1,
            "batchSize": 12, "netInputChannels": 3, "netInputHeight": 8, "netInputWidth": 8, "isBGR2RGB": 1,
            "means": [0, 0, 0], "scales": [0.00392157, 0.00392157, 0.00392157]}}"#;
        assert_eq!(bins_dir(&loaded(repo_text), None), Path::new("./calibration_data/batch12"));
        let without_root = loaded(&repo_text.replace("\"calibrationDataRoot\": \"./calibration_data\",", ""));
        assert_eq!(bins_dir(&without_root, None), Path::new("data/calibration/imgs_batch12"));
    }

    #[test]
    fn float_path_pads_with_the_pad_value_and_normalises_in_f32() {
        let p = loaded(
            r#"{"det_pre_params": {"img_root": "i", "fixed_scale": 1, "batch_size": 1, "des_channels": 3,
            "des_height": 4, "des_width": 4, "is_BGR2RGB": 1, "means": [0, 0, 0], "stds": [255, 255, 255]}}"#,
        )
        .params;
        // 4×2 of one BGR colour → 4×4 with a row of black above and below.
        let bgr = U8Image::new(4, 2, 3, [10u8, 20, 30].repeat(8));
        let t = tensor_from_decoded(&bgr, &p);
        let plane = |c: usize| &t[c * 16..(c + 1) * 16];
        assert!(plane(0)[..4].iter().chain(&plane(0)[12..]).all(|&v| v == 0.0), "{:?}", plane(0));
        // Channel 0 after BGR→RGB is red (30): 30f32 / 255f32.
        assert!(plane(0)[4..12].iter().all(|&v| v == 30.0f32 / 255.0f32));
        assert!(plane(2)[4..12].iter().all(|&v| v == 10.0f32 / 255.0f32));
        let mut old = p.clone();
        (old.pad_value, old.resize_input) = (114, ResizeInput::Uint8);
        assert_eq!(tensor_from_decoded(&bgr, &old)[0], (114.0f64 / 255.0) as f32);
    }
}

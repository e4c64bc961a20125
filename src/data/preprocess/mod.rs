//! `preprocess`: a folder of images → calibration bins for the quantizer.
//!
//! Per image (the order of the usual OpenCV calibration scripts): `cv2.imread` (BGR) →
//! letterbox (`fixed_scale: 1`) or stretch, bilinear `INTER_LINEAR` → BGR→grey for
//! `des_channels: 1`, else BGR→RGB when `is_BGR2RGB: 1` → `(p − means[c]) / stds[c]` →
//! float32 CHW. `batch_size` images make one file `imgs_batch{B}/batch{i:04}.bin`,
//! numbered from 0001 so byte-wise file order is numeric order; `manifest.json` beside them
//! lists each file's images, shape, dtype and the parameter hash.

pub mod decode;
pub mod resize;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

pub use decode::{U8Image, decode_bgr};

use crate::data::params::PreprocessParams;

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
}

/// How to run [`preprocess`].
#[derive(Debug, Clone)]
pub struct PreprocessOptions {
    /// Files go to `out_dir/imgs_batch{batch_size}/`.
    pub out_dir: PathBuf,
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

/// Decode + resize/letterbox + channel conversion: the uint8 HWC image in the model's channel
/// order, just before normalisation (what a host would feed to AIPP).
pub fn prepare_image(path: &Path, p: &PreprocessParams) -> Result<U8Image, PreprocessError> {
    let bgr = decode_bgr(path).map_err(|reason| PreprocessError::BadImage { path: path.to_path_buf(), reason })?;
    Ok(prepare_decoded(&bgr, p))
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

/// `(p − means[c]) / stds[c]` into CHW float32 (computed in f64, as numpy does with Python
/// float means, then rounded once).
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

/// Images processed in parallel per round: bounds memory to a few dozen decoded images.
const ROUND: usize = 32;

/// Runs the whole folder. `progress` is called with the number of images done so far.
pub fn preprocess(
    p: &PreprocessParams,
    opts: &PreprocessOptions,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<PreprocessReport, PreprocessError> {
    let images = list_images(&p.img_root)?;
    let dir = opts.out_dir.join(format!("imgs_batch{}", p.batch_size));
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
        let results: Vec<_> = round.par_iter().map(|path| prepare_image(path, p).map(|img| normalize_chw(&img, p))).collect();
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

/// A previous run with more images left `batchNNNN.bin` files past the new last one; a
/// calibration run would read them as data. Remove them and say so.
fn remove_stale_batches(dir: &Path, count: usize) -> Result<Vec<String>, PreprocessError> {
    let io = |error| PreprocessError::Io { path: dir.to_path_buf(), error };
    let mut notes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let index = name.strip_prefix("batch").and_then(|r| r.strip_suffix(".bin")).and_then(|d| d.parse::<usize>().ok());
        if index.is_some_and(|i| i == 0 || i > count) {
            std::fs::remove_file(&path).map_err(|error| PreprocessError::Io { path: path.clone(), error })?;
            notes.push(format!("removed {} left by an earlier run", path.display()));
        }
    }
    notes.sort();
    Ok(notes)
}

//! The input sets both OMs are run on, each with its float equivalent for the fp32
//! reference model:
//! - from a calibration set (`--data_dir --data_types --batch_num`, read by
//!   [`CalibrationSet`]): batch `i` of every input, converted to the input's element type;
//! - from images (`--images DIR --params PARAMS.json`): per batch of `N` images, for a
//!   static-AIPP input the uint8 HWC frame AIPP expects (decode + 8-bit resize/letterbox as a
//!   host does, in OpenCV's B,G,R order for `RGB888_U8` as `ascend-ptq aipp` configures it;
//!   no normalisation, AIPP normalises on the device), for a plain float input exactly the
//!   tensor `preprocess` writes to its bins.
//!
//! Sets are built one at a time ([`CompareInputs::get`]) so memory does not grow with the
//! number of batches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::error::CompareError;
use super::pictures::{Preview, minmax_preview};
use super::runner::{IoDType, IoDesc};
use crate::data::calib_set::CalibrationSet;
use crate::data::params::PreprocessParams;
use crate::data::preprocess::{U8Image, decode_bgr, image_tensor, list_images, prepare_decoded, prepare_image, tensor_from_decoded};
use crate::device::aipp::{AippConfig, AippOptions, Crop, InputFormat, apply_aipp};
use crate::engine::Tensor;

/// One run of both models.
#[derive(Debug, Clone)]
pub struct InputSet {
    /// What the set is made of ("batch 0 (batch0001.bin)", "coffee.png, rocket.jpg").
    pub label: String,
    /// One buffer per model input, in model order, of exactly the input's `size_bytes`.
    pub feeds: Vec<Vec<u8>>,
    /// The float equivalent per input for the fp32 reference model (`apply_aipp` of the
    /// frame for a static-AIPP input); `None` where it cannot be known (raw frames from a
    /// calibration set without an AIPP config).
    pub reference: Option<Vec<(String, Tensor)>>,
    /// What batch item 0 of the first input looks like, for the report's pictures.
    pub preview: Option<Preview>,
}

/// How the frames of a static-AIPP input are made from images.
#[derive(Debug, Clone)]
struct FramePlan {
    cfg: AippConfig,
    batch: usize,
}

// One value per comparison: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Source {
    Calib { set: CalibrationSet, aipp: Vec<Option<AippConfig>> },
    Images { params: PreprocessParams, batches: Vec<Vec<PathBuf>>, frame: Option<FramePlan>, batch: usize },
}

/// The input sets of one comparison, built on demand.
#[derive(Debug, Clone)]
pub struct CompareInputs {
    descs: Vec<IoDesc>,
    source: Source,
    notes: Vec<String>,
}

fn input_err(desc: &IoDesc, detail: impl Into<String>) -> CompareError {
    CompareError::Input { input: desc.name.clone(), detail: detail.into() }
}

fn dims_text(dims: &[i64]) -> String {
    dims.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// (N, H, W, C) of a static-AIPP input: NHWC as the model description gives it, checked
/// against the exact buffer size.
fn frame_dims(desc: &IoDesc) -> Result<(usize, usize, usize, usize), CompareError> {
    let dims: Vec<usize> = desc.dims.iter().filter_map(|&d| usize::try_from(d).ok()).collect();
    let (n, h, w, c) = match dims[..] {
        [n, h, w, c] if matches!(c, 1 | 3) => (n, h, w, c),
        // Some descriptions give the frame as NCHW; the buffer is packed HWC either way.
        [n, c, h, w] if matches!(c, 1 | 3) => (n, h, w, c),
        [_, _, _, c] => (0, 0, 0, c),
        _ => return Err(input_err(desc, format!("static AIPP input has dims {:?}; expected a known NHWC shape [N, H, W, C]", desc.dims))),
    };
    if !matches!(c, 1 | 3) {
        return Err(input_err(
            desc,
            format!(
                "static AIPP input has dims {:?}: {c} channels; only RGB888_U8 (3) and YUV400_U8 (1) frames can be built from images",
                desc.dims
            ),
        ));
    }
    let expected = n * h * w * c;
    if desc.dtype != IoDType::U8 || desc.size_bytes != expected {
        return Err(input_err(
            desc,
            format!(
                "static AIPP input is {} of {} bytes; a {} frame of {n}×{h}×{w} needs uint8 of exactly {expected} bytes (N·H·W·{c})",
                desc.dtype.name(),
                desc.size_bytes,
                if c == 3 { "RGB888_U8" } else { "YUV400_U8" }
            ),
        ));
    }
    Ok((n, h, w, c))
}

/// The AIPP config of a static-AIPP input: the one given (e.g. read from the OM), else the
/// one `ascend-ptq aipp` writes from the parameters for a frame of the input's size.
fn aipp_config(desc: &IoDesc, given: Option<&AippConfig>, params: &PreprocessParams) -> Result<(AippConfig, usize), CompareError> {
    let (n, h, w, c) = frame_dims(desc)?;
    let cfg = match given {
        Some(cfg) => cfg.clone(),
        None => {
            let format = if c == 3 { InputFormat::Rgb888U8 } else { InputFormat::Yuv400U8 };
            let opts = AippOptions { input_format: format, src_size: Some((w, h)) };
            AippConfig::from_params(params, &opts).map_err(|source| CompareError::Aipp { input: desc.name.clone(), source })?
        }
    };
    let format_channels = match cfg.input_format {
        InputFormat::Rgb888U8 => 3,
        InputFormat::Yuv400U8 => 1,
        InputFormat::Yuv420SpU8 => {
            return Err(input_err(desc, "the AIPP config takes YUV420SP_U8 frames; only RGB888_U8 and YUV400_U8 frames are built here"));
        }
    };
    if (cfg.src_width, cfg.src_height, format_channels) != (w, h, c) {
        return Err(input_err(
            desc,
            format!(
                "the model takes {w}×{h} frames with {c} channel(s) but the AIPP config takes {}×{} {}",
                cfg.src_width,
                cfg.src_height,
                cfg.input_format.name()
            ),
        ));
    }
    let crop = cfg.crop.unwrap_or(Crop { x: 0, y: 0, width: w, height: h });
    if (crop.width, crop.height) != (params.des_width, params.des_height) {
        return Err(input_err(
            desc,
            format!(
                "frames of {w}×{h} reach the model as {}×{} after AIPP, but the parameters resize images to {}×{} (des_width × des_height)",
                crop.width, crop.height, params.des_width, params.des_height
            ),
        ));
    }
    Ok((cfg, n))
}

/// The frame AIPP expects for one image: the preprocessed image (model channel order)
/// swapped back when the config swaps R/B (so B,G,R frames for the configs `ascend-ptq aipp`
/// writes), placed at the crop window of a frame of the source size (the rest padded with
/// `pad_value`).
fn build_frame(img: &U8Image, cfg: &AippConfig, pad: u8) -> Vec<u8> {
    let c = img.channels;
    let mut px = img.data.clone();
    if cfg.rbuv_swap_switch && c == 3 {
        px.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
    }
    let crop = cfg.crop.unwrap_or(Crop { x: 0, y: 0, width: img.width, height: img.height });
    if (cfg.src_width, cfg.src_height) == (img.width, img.height) {
        return px;
    }
    let mut frame = vec![pad; cfg.src_width * cfg.src_height * c];
    for y in 0..img.height {
        let row = &px[y * img.width * c..(y + 1) * img.width * c];
        let start = ((crop.y + y) * cfg.src_width + crop.x) * c;
        frame[start..start + row.len()].copy_from_slice(row);
    }
    frame
}

fn f32_tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), data).expect("shape matches data"))
}

impl CompareInputs {
    /// Opens a calibration set for models with inputs `descs`: one `--data_dir` directory
    /// and `--data_types` entry per input, in model order; shapes come from the model.
    /// A static-AIPP input takes raw uint8 frames of exactly its size; its reference input
    /// is `apply_aipp` of `aipp[name]` when given.
    pub fn open_calib(
        descs: &[IoDesc],
        data_dirs: &str,
        data_types: &str,
        batch_num: usize,
        aipp: &HashMap<String, AippConfig>,
    ) -> Result<Self, CompareError> {
        let mut shape_items = Vec::with_capacity(descs.len());
        for d in descs {
            if d.dims.iter().any(|&v| v < 1) {
                return Err(input_err(d, format!("the model has a dynamic shape {:?}; compare needs static shapes", d.dims)));
            }
            shape_items.push(format!("{}:{}", d.name, dims_text(&d.dims)));
        }
        let set = CalibrationSet::open(&shape_items.join(";"), data_dirs, data_types, batch_num)?;
        let mut configs = Vec::with_capacity(descs.len());
        for (d, input) in descs.iter().zip(set.inputs()) {
            let bytes = input.shape().iter().product::<usize>() * d.dtype.size();
            if bytes != d.size_bytes {
                return Err(input_err(
                    d,
                    format!(
                        "a batch of {:?} holds {bytes} bytes as {} but the model takes {} bytes",
                        input.shape(),
                        d.dtype.name(),
                        d.size_bytes
                    ),
                ));
            }
            if d.static_aipp && input.dtype().name() != "uint8" {
                return Err(input_err(
                    d,
                    format!(
                        "the model converts this input with static AIPP and takes uint8 frames, but --data_types says {}; \
                         give raw uint8 frames or use --images with --params",
                        input.dtype().name()
                    ),
                ));
            }
            let cfg = if d.static_aipp { aipp.get(&d.name) } else { None };
            if let Some(cfg) = cfg {
                let (_, h, w, _) = frame_dims(d)?;
                if (cfg.src_width, cfg.src_height) != (w, h) || cfg.input_format == InputFormat::Yuv420SpU8 {
                    return Err(input_err(
                        d,
                        format!(
                            "the model takes {w}×{h} frames but the AIPP config takes {}×{} {}",
                            cfg.src_width,
                            cfg.src_height,
                            cfg.input_format.name()
                        ),
                    ));
                }
            }
            configs.push(cfg.cloned());
        }
        Ok(CompareInputs { descs: descs.to_vec(), source: Source::Calib { set, aipp: configs }, notes: Vec::new() })
    }

    /// Images of `dir` (sorted by name, as `preprocess` lists them) for a single-input model,
    /// batched by the input's `N`; a trailing partial batch is left out (see [`Self::notes`]).
    /// `aipp` overrides the config of a static-AIPP input (default: what `ascend-ptq aipp`
    /// writes from `params` for RGB888_U8 / YUV400_U8 frames of the input's size).
    pub fn from_images(
        descs: &[IoDesc],
        dir: &Path,
        params: &PreprocessParams,
        aipp: &HashMap<String, AippConfig>,
    ) -> Result<Self, CompareError> {
        let [desc] = descs else {
            let names = descs.iter().map(|d| format!("'{}'", d.name)).collect::<Vec<_>>().join(", ");
            return Err(CompareError::Input {
                input: names,
                detail: format!(
                    "--images feeds models with one input, these models have {}; give one --data_dir per input instead",
                    descs.len()
                ),
            });
        };
        let (frame, batch) = if desc.static_aipp {
            let (cfg, n) = aipp_config(desc, aipp.get(&desc.name), params)?;
            (Some(FramePlan { cfg, batch: n }), n)
        } else {
            let want = [params.des_channels, params.des_height, params.des_width];
            let dims: Vec<usize> = desc.dims.iter().filter_map(|&d| usize::try_from(d).ok()).collect();
            let ok = dims.len() == 4 && dims[1..] == want && dims[0] >= 1;
            if !ok {
                return Err(input_err(
                    desc,
                    format!(
                        "the model input has dims {:?} but the parameters make {}×{}×{} images (des_channels × des_height × des_width, NCHW)",
                        desc.dims, want[0], want[1], want[2]
                    ),
                ));
            }
            if !matches!(desc.dtype, IoDType::F32 | IoDType::F16) {
                return Err(input_err(desc, format!("the model input is {}; images become float32 or float16 inputs", desc.dtype.name())));
            }
            let expected = dims.iter().product::<usize>() * desc.dtype.size();
            if desc.size_bytes != expected {
                return Err(input_err(
                    desc,
                    format!("the model takes {} bytes but {:?} of {} is {expected} bytes", desc.size_bytes, desc.dims, desc.dtype.name()),
                ));
            }
            (None, dims[0])
        };
        let images = list_images(dir)?;
        let mut notes = Vec::new();
        let full = images.len() / batch * batch;
        if full == 0 {
            return Err(input_err(
                desc,
                format!("{} holds {} image(s) but the model takes batches of {batch}", dir.display(), images.len()),
            ));
        }
        if full < images.len() {
            let left: Vec<String> = images[full..].iter().map(|p| file_name(p)).collect();
            notes.push(format!("left out the last partial batch ({} of {batch} images): {}", left.len(), left.join(", ")));
        }
        let batches = images[..full].chunks(batch).map(<[PathBuf]>::to_vec).collect();
        Ok(CompareInputs { descs: descs.to_vec(), source: Source::Images { params: params.clone(), batches, frame, batch }, notes })
    }

    /// The model inputs the sets are built for.
    pub fn descs(&self) -> &[IoDesc] {
        &self.descs
    }

    /// Number of input sets.
    pub fn len(&self) -> usize {
        match &self.source {
            Source::Calib { set, .. } => set.batch_num(),
            Source::Images { batches, .. } => batches.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Things the user should know (left-out images).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Builds input set `index` (reads and converts its files or images).
    pub fn get(&self, index: usize) -> Result<InputSet, CompareError> {
        if index >= self.len() {
            return Err(CompareError::Input {
                input: "(all)".into(),
                detail: format!("input set {index} requested, there are {}", self.len()),
            });
        }
        match &self.source {
            Source::Calib { set, aipp } => self.calib_set(set, aipp, index),
            Source::Images { params, batches, frame, batch } => self.image_set(params, &batches[index], frame.as_ref(), *batch),
        }
    }

    fn calib_set(&self, set: &CalibrationSet, aipp: &[Option<AippConfig>], index: usize) -> Result<InputSet, CompareError> {
        let batch = set.batch(index)?;
        let mut feeds = Vec::with_capacity(self.descs.len());
        let mut reference = Some(Vec::with_capacity(self.descs.len()));
        for ((desc, (_, tensor)), cfg) in self.descs.iter().zip(&batch.inputs).zip(aipp) {
            let Tensor::F32(a) = tensor else { unreachable!("calibration batches are f32") };
            let values: Vec<f32> = a.iter().copied().collect();
            let bytes = desc.dtype.from_f32(&values);
            let float = match (desc.static_aipp, cfg) {
                (false, _) => Some(tensor.clone()),
                (true, Some(cfg)) => Some(aipp_reference(cfg, &bytes, a.shape()[0])),
                (true, None) => None,
            };
            reference = reference.zip(float).map(|(mut r, f)| {
                r.push((desc.name.clone(), f));
                r
            });
            feeds.push(bytes);
        }
        let files: Vec<String> = set.inputs().iter().map(|i| file_name(&i.files()[index])).collect();
        let preview = match (self.descs.first(), batch.inputs.first(), feeds.first()) {
            (Some(d), _, Some(frame)) if d.static_aipp => frame_dims(d).ok().map(|(_, h, w, c)| Preview {
                image: U8Image::new(w, h, c, frame[..h * w * c].to_vec()),
                caption: format!("the raw uint8 frame of {} as stored (channels in the file's order)", files[0]),
            }),
            (Some(_), Some((_, Tensor::F32(a))), _) => match *a.shape() {
                [_, c, h, w] => a.as_slice().map(|v| {
                    minmax_preview(&v[..c * h * w], c, h, w, &format!("the float input tensor of {} (a --data_dir bin)", files[0]))
                }),
                _ => None,
            },
            _ => None,
        };
        Ok(InputSet { label: format!("batch {index} ({})", files.join(", ")), feeds, reference, preview })
    }

    fn image_set(
        &self,
        params: &PreprocessParams,
        paths: &[PathBuf],
        frame: Option<&FramePlan>,
        batch: usize,
    ) -> Result<InputSet, CompareError> {
        let desc = &self.descs[0];
        let label = paths.iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ");
        // The picture of item 0: the model-input image before normalisation, shown in R,G,B.
        let shown = |mut img: U8Image| {
            if img.channels == 3 && !params.is_bgr2rgb {
                img.data.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
            }
            Preview { image: img, caption: format!("{}, decoded and resized to the model input as preprocess does", file_name(&paths[0])) }
        };
        let (feed, float, preview) = match frame {
            Some(plan) => {
                let images = paths.iter().map(|p| prepare_image(p, params)).collect::<Result<Vec<_>, _>>()?;
                let bytes: Vec<u8> = images.iter().flat_map(|img| build_frame(img, &plan.cfg, params.pad_value)).collect();
                let float = aipp_reference(&plan.cfg, &bytes, plan.batch);
                // The frame in model channel order: the boxes are measured in the frame.
                let unswapped = AippConfig { rbuv_swap_switch: false, ..plan.cfg.clone() };
                let first = &images[0];
                let framed =
                    U8Image::new(plan.cfg.src_width, plan.cfg.src_height, first.channels, build_frame(first, &unswapped, params.pad_value));
                (bytes, float, shown(framed))
            }
            None => {
                let first = decode_bgr(&paths[0])
                    .map_err(|reason| crate::data::preprocess::PreprocessError::BadImage { path: paths[0].clone(), reason })?;
                let mut values = tensor_from_decoded(&first, params);
                let preview = shown(prepare_decoded(&first, params));
                for p in &paths[1..] {
                    values.extend(image_tensor(p, params)?);
                }
                let shape = vec![batch, params.des_channels, params.des_height, params.des_width];
                (desc.dtype.from_f32(&values), f32_tensor(shape, values), preview)
            }
        };
        debug_assert_eq!(feed.len(), desc.size_bytes);
        Ok(InputSet { label, feeds: vec![feed], reference: Some(vec![(desc.name.clone(), float)]), preview: Some(preview) })
    }
}

/// What the model after AIPP sees for `n` frames: `apply_aipp` per frame, as NCHW f32.
fn aipp_reference(cfg: &AippConfig, frames: &[u8], n: usize) -> Tensor {
    let per_frame = frames.len() / n.max(1);
    let mut values = Vec::new();
    for frame in frames.chunks_exact(per_frame.max(1)).take(n) {
        values.extend(apply_aipp(cfg, frame));
    }
    let crop = cfg.crop.unwrap_or(Crop { x: 0, y: 0, width: cfg.src_width, height: cfg.src_height });
    f32_tensor(vec![n, cfg.mean_chn.len(), crop.height, crop.width], values)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

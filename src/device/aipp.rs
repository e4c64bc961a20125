//! Static AIPP configuration (ATC `--insert_op_conf`, docs/ascend-formats.md §10) from the same preprocessing
//! parameters that made the calibration bins, so the NPU normalises camera frames exactly
//! as the quantizer saw them.
//!
//! **AIPP does not letterbox.** The generated block converts colour and normalises; the host
//! must feed frames already resized (and letterboxed, for `fixed_scale: 1`) to the model's
//! input size, or to `--src_size` when that is larger (AIPP then crops the centre).
//!
//! `RGB888_U8` frames are expected in OpenCV's B,G,R order (what `cv2.imread` and
//! `VideoCapture` give, and what `preprocess` starts from), so an `is_BGR2RGB` model gets
//! `rbuv_swap_switch: true`, as in the reference repository's `model_aipp.cfg`.

use std::path::PathBuf;

use half::f16;

use crate::data::params::PreprocessParams;

pub mod options;
mod parse;
pub use parse::{AippBlock, AippField, AippValue, GE_DEFAULT_YUV_INPUT_BIAS, GE_DEFAULT_YUV_TO_BGR, parse_aipp_blocks, read_aipp_file};

#[derive(Debug, thiserror::Error)]
pub enum AippError {
    #[error("--input_format: unknown format '{0}' (expected RGB888_U8, YUV420SP_U8 or YUV400_U8)")]
    UnknownFormat(String),
    #[error("--src_size: '{0}' is not W,H with positive integers")]
    BadSrcSize(String),
    #[error("--input_format {format}: {detail}")]
    Unsupported { format: &'static str, detail: String },
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", file.display())]
    Syntax { file: PathBuf, line: usize, message: String },
    #[error("{}:{line}: {field}: {message}", file.display())]
    Field { file: PathBuf, line: usize, field: String, message: String },
}

/// The frame format the application hands to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Packed 8-bit R,G,B.
    Rgb888U8,
    /// NV12: a Y plane, then interleaved U,V at half resolution (full-range BT.601).
    Yuv420SpU8,
    /// A Y plane only (for 1-channel models).
    Yuv400U8,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Rgb888U8 => "RGB888_U8",
            InputFormat::Yuv420SpU8 => "YUV420SP_U8",
            InputFormat::Yuv400U8 => "YUV400_U8",
        }
    }
}

impl std::str::FromStr for InputFormat {
    type Err = AippError;
    fn from_str(s: &str) -> Result<Self, AippError> {
        match s.to_ascii_uppercase().as_str() {
            "RGB888_U8" => Ok(InputFormat::Rgb888U8),
            "YUV420SP_U8" => Ok(InputFormat::Yuv420SpU8),
            "YUV400_U8" => Ok(InputFormat::Yuv400U8),
            _ => Err(AippError::UnknownFormat(s.to_string())),
        }
    }
}

/// Parses `--src_size "W,H"`.
pub fn parse_src_size(s: &str) -> Result<(usize, usize), AippError> {
    let bad = || AippError::BadSrcSize(s.to_string());
    let (w, h) = s.split_once(',').ok_or_else(bad)?;
    let w: usize = w.trim().parse().map_err(|_| bad())?;
    let h: usize = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Choices beyond the parameter file.
#[derive(Debug, Clone, Copy)]
pub struct AippOptions {
    pub input_format: InputFormat,
    /// The frame size the host feeds; default the model's `des_width × des_height`.
    pub src_size: Option<(usize, usize)>,
}

/// A centred crop of the fed frame down to the model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Full-range BT.601 YUV → RGB (Q8, rows R, G, B) and its input bias (JFIF; most samples).
pub const YUV_TO_RGB_FULL: [[i32; 3]; 3] = [[256, 0, 359], [256, -88, -183], [256, 454, 0]];
pub const YUV_INPUT_BIAS: [i32; 3] = [0, 128, 128];

/// One static `aipp_op` block.
#[derive(Debug, Clone, PartialEq)]
pub struct AippConfig {
    pub input_format: InputFormat,
    pub src_width: usize,
    pub src_height: usize,
    pub crop: Option<Crop>,
    pub csc_switch: bool,
    pub rbuv_swap_switch: bool,
    /// CSC rows in model channel order (present when `csc_switch`).
    pub matrix: Option<[[i32; 3]; 3]>,
    pub input_bias: Option<[i32; 3]>,
    pub mean_chn: Vec<i32>,
    pub min_chn: Vec<f32>,
    pub var_reci_chn: Vec<f32>,
}

impl AippConfig {
    /// The block that reproduces `preprocess`'s colour order and normalisation.
    /// `(in − means[c]) / stds[c]` becomes `(in − mean_chn − min_chn) · var_reci_chn`:
    /// integer means in 0..=255 go to `mean_chn`, others to `min_chn` (a float).
    pub fn from_params(p: &PreprocessParams, opts: &AippOptions) -> Result<Self, AippError> {
        let format = opts.input_format;
        let unsupported = |detail: String| AippError::Unsupported { format: format.name(), detail };
        match (format, p.des_channels) {
            (InputFormat::Yuv400U8, 1) | (InputFormat::Rgb888U8 | InputFormat::Yuv420SpU8, 3) => {}
            (_, c) => {
                let want = if c == 1 { "YUV400_U8" } else { "RGB888_U8 or YUV420SP_U8" };
                return Err(unsupported(format!("the parameters have des_channels {c}; use {want}")));
            }
        }
        let (src_width, src_height) = opts.src_size.unwrap_or((p.des_width, p.des_height));
        if src_width < p.des_width || src_height < p.des_height {
            return Err(unsupported(format!(
                "--src_size {src_width},{src_height} is smaller than the model input {}x{}: AIPP does not upscale here; resize on the host",
                p.des_width, p.des_height
            )));
        }
        if format == InputFormat::Yuv420SpU8 && (src_width % 2 == 1 || src_height % 2 == 1) {
            return Err(unsupported(format!("YUV420SP frames need an even width and height, got {src_width}x{src_height}")));
        }
        let crop = ((src_width, src_height) != (p.des_width, p.des_height)).then(|| {
            // YUV420 crops start on even coordinates (chroma is shared by 2×2 pixels).
            let even = |v: usize| if format == InputFormat::Yuv420SpU8 { v & !1 } else { v };
            Crop {
                x: even((src_width - p.des_width) / 2),
                y: even((src_height - p.des_height) / 2),
                width: p.des_width,
                height: p.des_height,
            }
        });
        let (csc_switch, rbuv_swap_switch, matrix, input_bias) = match format {
            // Frames arrive B,G,R (OpenCV order); an RGB model needs the swap.
            InputFormat::Rgb888U8 => (false, p.is_bgr2rgb, None, None),
            InputFormat::Yuv420SpU8 => {
                let mut m = YUV_TO_RGB_FULL;
                if !p.is_bgr2rgb {
                    m.reverse();
                }
                (true, false, Some(m), Some(YUV_INPUT_BIAS))
            }
            InputFormat::Yuv400U8 => (false, false, None, None),
        };
        let mut mean_chn = Vec::new();
        let mut min_chn = Vec::new();
        for &m in &p.means {
            if m.fract() == 0.0 && (0.0..=255.0).contains(&m) {
                mean_chn.push(m as i32);
                min_chn.push(0.0);
            } else {
                mean_chn.push(0);
                min_chn.push(m as f32);
            }
        }
        let var_reci_chn = p.stds.iter().map(|s| (1.0 / s) as f32).collect();
        Ok(AippConfig {
            input_format: format,
            src_width,
            src_height,
            crop,
            csc_switch,
            rbuv_swap_switch,
            matrix,
            input_bias,
            mean_chn,
            min_chn,
            var_reci_chn,
        })
    }

    /// The protobuf text for ATC's `--insert_op_conf`.
    pub fn to_text(&self, params_hash: &str) -> String {
        let mut t = String::new();
        let mut line = |s: String| {
            t.push_str(&s);
            t.push('\n');
        };
        line(format!("# Static AIPP generated by ascend-ptq {} from preprocessing parameters {params_hash}.", crate::VERSION));
        line("# AIPP does not letterbox or resize here: feed frames already resized to the model input".into());
        line(format!("# ({}x{} fed, {} layout).", self.src_width, self.src_height, self.input_format.name()));
        match self.input_format {
            InputFormat::Rgb888U8 => line(format!(
                "# Frames in OpenCV's B,G,R byte order (cv2.imread / VideoCapture); rbuv_swap_switch {} them for the model.",
                if self.rbuv_swap_switch { "swaps" } else { "keeps" }
            )),
            InputFormat::Yuv420SpU8 => line("# Frames NV12 (Y plane, then interleaved U,V), full-range BT.601.".into()),
            InputFormat::Yuv400U8 => line("# Frames a single Y (grey) plane.".into()),
        }
        line("aipp_op {".into());
        line("    aipp_mode: static".into());
        line(format!("    input_format: {}", self.input_format.name()));
        line(format!("    src_image_size_w: {}", self.src_width));
        line(format!("    src_image_size_h: {}", self.src_height));
        if let Some(c) = self.crop {
            line("    crop: true".into());
            line(format!("    load_start_pos_w: {}", c.x));
            line(format!("    load_start_pos_h: {}", c.y));
            line(format!("    crop_size_w: {}", c.width));
            line(format!("    crop_size_h: {}", c.height));
        }
        line(format!("    csc_switch: {}", self.csc_switch));
        line(format!("    rbuv_swap_switch: {}", self.rbuv_swap_switch));
        if let (Some(m), Some(bias)) = (self.matrix, self.input_bias) {
            for (r, row) in m.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    line(format!("    matrix_r{r}c{c}: {v}"));
                }
            }
            for (i, b) in bias.iter().enumerate() {
                line(format!("    input_bias_{i}: {b}"));
            }
        }
        for (i, m) in self.mean_chn.iter().enumerate() {
            line(format!("    mean_chn_{i}: {m}"));
        }
        for (i, m) in self.min_chn.iter().enumerate() {
            line(format!("    min_chn_{i}: {}", float_text(*m)));
        }
        for (i, v) in self.var_reci_chn.iter().enumerate() {
            line(format!("    var_reci_chn_{i}: {}", float_text(*v)));
        }
        line("}".into());
        t
    }
}

/// Shortest text that reads back as the same f32, always with a decimal point.
fn float_text(v: f32) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") }
}

/// What the NPU computes for one static block, for checking a config against `preprocess`:
/// `frame` is what the host feeds (`RGB888_U8`: packed R,G,B; `YUV420SP_U8`: NV12;
/// `YUV400_U8`: Y) of `src_width × src_height`. The result is the model input as float32
/// CHW. The per-channel parameters are rounded to fp16 and every step is computed in fp16, as
/// the AIPP unit outputs fp16; the CSC result is rounded to nearest and saturated to 0..=255
/// (the hardware rounding is not documented).
pub fn apply_aipp(cfg: &AippConfig, frame: &[u8]) -> Vec<f32> {
    let (w, h) = (cfg.src_width, cfg.src_height);
    let crop = cfg.crop.unwrap_or(Crop { x: 0, y: 0, width: w, height: h });
    let channels = cfg.mean_chn.len();
    let hw = crop.width * crop.height;
    let mut out = vec![0f32; channels * hw];
    let params: Vec<(f16, f16, f16)> = (0..channels)
        .map(|c| (f16::from_f32(cfg.mean_chn[c] as f32), f16::from_f32(cfg.min_chn[c]), f16::from_f32(cfg.var_reci_chn[c])))
        .collect();
    for y in 0..crop.height {
        for x in 0..crop.width {
            let (sx, sy) = (crop.x + x, crop.y + y);
            let px = source_pixel(cfg, frame, sx, sy);
            for (c, &(mean, min, var)) in params.iter().enumerate() {
                let v = f16::from_f32(px[c] as f32 - mean.to_f32());
                let v = f16::from_f32(v.to_f32() - min.to_f32());
                out[c * hw + y * crop.width + x] = f16::from_f32(v.to_f32() * var.to_f32()).to_f32();
            }
        }
    }
    out
}

/// The pixel after CSC / channel swap, in model channel order.
fn source_pixel(cfg: &AippConfig, frame: &[u8], x: usize, y: usize) -> [u8; 3] {
    let w = cfg.src_width;
    match cfg.input_format {
        InputFormat::Rgb888U8 => {
            let p = &frame[(y * w + x) * 3..][..3];
            if cfg.rbuv_swap_switch { [p[2], p[1], p[0]] } else { [p[0], p[1], p[2]] }
        }
        InputFormat::Yuv400U8 => [frame[y * w + x], 0, 0],
        InputFormat::Yuv420SpU8 => {
            let luma = frame[y * w + x] as i32;
            let uv = &frame[w * cfg.src_height + (y / 2) * w + (x / 2) * 2..][..2];
            let (mut u, mut v) = (uv[0] as i32, uv[1] as i32);
            if cfg.rbuv_swap_switch {
                std::mem::swap(&mut u, &mut v);
            }
            let m = cfg.matrix.unwrap_or(YUV_TO_RGB_FULL);
            let b = cfg.input_bias.unwrap_or(YUV_INPUT_BIAS);
            let yuv = [luma - b[0], u - b[1], v - b[2]];
            let row = |r: usize| {
                let s: i32 = (0..3).map(|k| m[r][k] * yuv[k]).sum();
                ((s as f64 / 256.0).round() as i32).clamp(0, 255) as u8
            };
            [row(0), row(1), row(2)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::params::{PadMode, ResizeInput};

    fn params(is_bgr2rgb: bool, means: [f64; 3], stds: [f64; 3]) -> PreprocessParams {
        PreprocessParams {
            img_root: "imgs".into(),
            fixed_scale: true,
            batch_size: 1,
            des_channels: 3,
            des_height: 4,
            des_width: 6,
            is_bgr2rgb,
            means: means.to_vec(),
            stds: stds.to_vec(),
            pad_value: 114,
            pad_mode: PadMode::Center,
            resize_input: ResizeInput::Uint8,
        }
    }

    #[test]
    fn yuv_matrix_follows_model_channel_order() {
        let opts = AippOptions { input_format: InputFormat::Yuv420SpU8, src_size: None };
        let rgb = AippConfig::from_params(&params(true, [0.0; 3], [1.0; 3]), &opts).unwrap();
        let bgr = AippConfig::from_params(&params(false, [0.0; 3], [1.0; 3]), &opts).unwrap();
        assert_eq!(rgb.matrix.unwrap()[0], [256, 0, 359]);
        assert_eq!(bgr.matrix.unwrap()[0], [256, 454, 0]);
        // Pure red in full-range YUV: Y=76, U=85, V=255 → R≈255, G≈0, B≈0.
        let mut nv12 = vec![76u8; 6 * 4];
        nv12.extend([85u8, 255].repeat(3 * 2));
        let out = apply_aipp(&rgb, &nv12);
        let hw = 24;
        assert!((out[0] - 255.0).abs() <= 2.0 && out[hw].abs() <= 2.0 && out[2 * hw].abs() <= 2.0, "{:?}", &out[..1]);
    }

    #[test]
    fn bigger_src_size_crops_the_centre_and_smaller_is_refused() {
        let p = params(true, [0.0; 3], [1.0; 3]);
        let opts = AippOptions { input_format: InputFormat::Yuv420SpU8, src_size: Some((12, 8)) };
        let cfg = AippConfig::from_params(&p, &opts).unwrap();
        assert_eq!(cfg.crop, Some(Crop { x: 2, y: 2, width: 6, height: 4 }));
        let e = AippConfig::from_params(&p, &AippOptions { src_size: Some((4, 4)), ..opts }).unwrap_err().to_string();
        assert!(e.contains("smaller than the model input 6x4"), "{e}");
        assert!(parse_src_size("640x640").is_err() && parse_src_size("640,0").is_err());
        assert_eq!(parse_src_size("640, 480").unwrap(), (640, 480));
    }
}

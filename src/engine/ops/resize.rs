//! Resize (opsets 10–19+) and Upsample (opsets 7–9).
//!
//! Interpolation is separable: every resized axis is processed in turn, each output
//! coordinate mapped to the input by `coordinate_transformation_mode` and reading a small
//! list of (input index, weight) taps. Nearest mode copies elements in the native type;
//! linear and cubic interpolate in f64. Out-of-range taps read the edge value (as the
//! ONNX reference does), unless `exclude_outside` drops them. A fast path handles 2-D
//! nearest integer upscales of NCHW tensors.

use half::f16;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::common::{Num, PAR_THRESHOLD};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    TfCropAndResize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Opset < 11 behaviour: truncate when upsampling, ceil when downsampling.
    Simple,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

#[derive(Debug)]
struct Resize {
    mode: Mode,
    coord: Coord,
    nearest: NearestMode,
    cubic_a: f64,
    exclude_outside: bool,
    extrapolation: f64,
    antialias: bool,
    axes: Option<Vec<i64>>,
    policy: AspectPolicy,
    /// Input indices of roi / scales / sizes (None where the op form has no such input).
    roi_input: Option<usize>,
    scales_input: Option<usize>,
    sizes_input: Option<usize>,
    /// Upsample-7 scales attribute.
    scales_attr: Option<Vec<f32>>,
}

/// Taps of one output coordinate along one axis.
#[derive(Debug, Clone, PartialEq)]
enum Taps {
    /// tf_crop_and_resize sample outside the input: the extrapolation value.
    Extrapolate,
    Points(Vec<(usize, f64)>),
}

fn opt_input<'a>(inputs: &[Option<&'a Tensor>], i: Option<usize>) -> Option<&'a Tensor> {
    i.and_then(|i| inputs.get(i).copied().flatten()).filter(|t| !t.is_empty())
}

fn floats(t: &Tensor, what: &str, i: usize) -> OpResult<Vec<f64>> {
    match t {
        Tensor::F32(_) | Tensor::F64(_) | Tensor::F16(_) => Ok(t.to_f64_vec()),
        other => Err(op_err!("input {i} ({what}) is {}, expected float", other.dtype_name())),
    }
}

impl Resize {
    /// Per-axis output sizes, scales and roi (start, end) for an input of `shape`.
    #[allow(clippy::type_complexity)]
    fn plan(&self, shape: &[usize], inputs: &[Option<&Tensor>]) -> OpResult<(Vec<usize>, Vec<f64>, Vec<(f64, f64)>)> {
        let rank = shape.len();
        let axes: Vec<usize> = match &self.axes {
            Some(a) => {
                let mut v = Vec::with_capacity(a.len());
                for &ax in a {
                    let n = super::reduce::norm_axis(ax, rank, "axes value")?;
                    if v.contains(&n) {
                        return Err(op_err!("attribute axes {a:?} names axis {n} twice"));
                    }
                    v.push(n);
                }
                v
            }
            None => (0..rank).collect(),
        };
        let k = axes.len();
        let mut roi = vec![(0.0, 1.0); rank];
        if let Some(t) = opt_input(inputs, self.roi_input) {
            let i = self.roi_input.unwrap_or(1);
            let v = floats(t, "roi", i)?;
            if v.len() != 2 * k {
                return Err(op_err!("input {i} (roi) has {} values, expected {} (starts and ends of {k} axes)", v.len(), 2 * k));
            }
            for (j, &ax) in axes.iter().enumerate() {
                roi[ax] = (v[j], v[j + k]);
            }
        }
        let scales_t = opt_input(inputs, self.scales_input);
        let sizes_t = opt_input(inputs, self.sizes_input);
        let mut out: Vec<usize> = shape.to_vec();
        let mut scales = vec![1.0f64; rank];
        let crop = self.coord == Coord::TfCropAndResize;
        match (scales_t, sizes_t, &self.scales_attr) {
            (Some(_), Some(_), _) => {
                return Err(op_err!("inputs scales and sizes are both given, only one may be"));
            }
            (None, Some(t), _) => {
                let i = self.sizes_input.unwrap_or(3);
                let v = t.to_i64_vec().ok_or_else(|| op_err!("input {i} (sizes) is {}, expected int64", t.dtype_name()))?;
                if v.len() != k || v.iter().any(|&s| s < 0) {
                    return Err(op_err!("input {i} (sizes) is {v:?}, expected {k} non-negative values"));
                }
                match self.policy {
                    AspectPolicy::Stretch => {
                        for (j, &ax) in axes.iter().enumerate() {
                            out[ax] = v[j] as usize;
                            scales[ax] = v[j] as f64 / shape[ax] as f64;
                        }
                    }
                    AspectPolicy::NotLarger | AspectPolicy::NotSmaller => {
                        let ratios = axes.iter().enumerate().map(|(j, &ax)| v[j] as f64 / shape[ax] as f64);
                        let s = if self.policy == AspectPolicy::NotLarger {
                            ratios.fold(f64::INFINITY, f64::min)
                        } else {
                            ratios.fold(f64::NEG_INFINITY, f64::max)
                        };
                        for &ax in &axes {
                            out[ax] = (s * shape[ax] as f64 + 0.5).floor() as usize;
                            scales[ax] = s;
                        }
                    }
                }
            }
            (s, None, attr) => {
                let (v, i) = match (s, attr) {
                    (Some(t), _) => {
                        let i = self.scales_input.unwrap_or(2);
                        (floats(t, "scales", i)?.into_iter().map(|x| x as f32 as f64).collect::<Vec<_>>(), i)
                    }
                    (None, Some(a)) => (a.iter().map(|&x| x as f64).collect(), 0),
                    (None, None) => return Err(op_err!("neither scales nor sizes is given")),
                };
                if v.len() != k || v.iter().any(|&s| s.is_nan() || s <= 0.0 || s.is_infinite()) {
                    return Err(op_err!("scales (input {i}) is {v:?}, expected {k} positive values"));
                }
                for (j, &ax) in axes.iter().enumerate() {
                    scales[ax] = v[j];
                    let extent = if crop { roi[ax].1 - roi[ax].0 } else { 1.0 };
                    out[ax] = (shape[ax] as f64 * extent * v[j]).floor().max(0.0) as usize;
                }
            }
        }
        Ok((out, scales, roi))
    }

    /// Input coordinate of output coordinate `x` on an axis of `n` -> `m` with `scale`.
    fn source_coord(&self, x: usize, n: usize, m: usize, scale: f64, roi: (f64, f64)) -> f64 {
        let xf = x as f64;
        match self.coord {
            Coord::HalfPixel => (xf + 0.5) / scale - 0.5,
            Coord::HalfPixelSymmetric => {
                let adjustment = m as f64 / (scale * n as f64);
                let center = n as f64 / 2.0;
                center * (1.0 - adjustment) + (xf + 0.5) / scale - 0.5
            }
            Coord::PytorchHalfPixel => {
                if m > 1 {
                    (xf + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            Coord::AlignCorners => {
                // As the ONNX reference: the resized length is `scale * n` (equal to `m`
                // when sizes are given; fractional for scales like 0.6 on 4).
                let lr = scale * n as f64;
                if m == 1 || lr == 1.0 { 0.0 } else { xf * (n as f64 - 1.0) / (lr - 1.0) }
            }
            Coord::Asymmetric => xf / scale,
            Coord::TfHalfPixelForNn => (xf + 0.5) / scale,
            Coord::TfCropAndResize => {
                let nf = n as f64 - 1.0;
                if m > 1 { roi.0 * nf + xf * (roi.1 - roi.0) * nf / (m as f64 - 1.0) } else { 0.5 * (roi.0 + roi.1) * nf }
            }
        }
    }

    fn axis_taps(&self, n: usize, m: usize, scale: f64, roi: (f64, f64)) -> Vec<Taps> {
        let last = n as i64 - 1;
        let clamp = |i: i64| i.clamp(0, last) as usize;
        (0..m)
            .map(|x| {
                let xo = self.source_coord(x, n, m, scale, roi);
                if self.coord == Coord::TfCropAndResize && (xo < 0.0 || xo > last as f64) {
                    return Taps::Extrapolate;
                }
                match self.mode {
                    Mode::Nearest => {
                        let fl = xo.floor();
                        let frac = xo - fl;
                        let i = match self.nearest {
                            NearestMode::RoundPreferFloor => {
                                if frac <= 0.5 {
                                    fl
                                } else {
                                    fl + 1.0
                                }
                            }
                            NearestMode::RoundPreferCeil => {
                                if frac < 0.5 {
                                    fl
                                } else {
                                    fl + 1.0
                                }
                            }
                            NearestMode::Floor => fl,
                            NearestMode::Ceil => xo.ceil(),
                            NearestMode::Simple => {
                                if scale < 1.0 {
                                    xo.ceil()
                                } else {
                                    xo.trunc()
                                }
                            }
                        };
                        Taps::Points(vec![(clamp(i as i64), 1.0)])
                    }
                    Mode::Linear | Mode::Cubic => {
                        let fl = xo.floor();
                        let ratio = xo - fl;
                        let base = fl as i64;
                        let s = if self.antialias { scale.min(1.0) } else { 1.0 };
                        let mut pts: Vec<(i64, f64)> = Vec::new();
                        if self.mode == Mode::Linear {
                            let start = (-1.0 / s).floor() as i64 + 1;
                            let footprint = 2 - 2 * start;
                            for k in start..start + footprint {
                                let w = (1.0 - ((k as f64 - ratio) * s).abs()).clamp(0.0, 1.0);
                                pts.push((base + k, w));
                            }
                        } else {
                            let a = self.cubic_a;
                            let start = (-2.0 / s).floor() as i64 + 1;
                            let end = 2 - start;
                            for k in start..end {
                                let t = ((k as f64 - ratio) * s).abs();
                                let w = if t <= 1.0 {
                                    ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
                                } else if t < 2.0 {
                                    ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
                                } else {
                                    0.0
                                };
                                pts.push((base + k, w));
                            }
                        }
                        if self.exclude_outside {
                            for p in pts.iter_mut() {
                                if p.0 < 0 || p.0 > last {
                                    p.1 = 0.0;
                                }
                            }
                        }
                        let sum: f64 = pts.iter().map(|p| p.1).sum();
                        let norm = if self.antialias || self.exclude_outside { sum } else { 1.0 };
                        Taps::Points(
                            pts.into_iter()
                                .filter(|p| p.1 != 0.0)
                                .map(|(i, w)| (clamp(i), if norm != 0.0 { w / norm } else { w }))
                                .collect(),
                        )
                    }
                }
            })
            .collect()
    }

    fn run_typed<T: Num>(&self, x: &ArrayD<T>, inputs: &[Option<&Tensor>]) -> OpResult<ArrayD<T>> {
        let shape = x.shape().to_vec();
        let (out_shape, scales, roi) = self.plan(&shape, inputs)?;
        let rank = shape.len();
        if out_shape.contains(&0) {
            return ArrayD::from_shape_vec(IxDyn(&out_shape), Vec::new()).map_err(|e| op_err!("{e}"));
        }
        if shape.contains(&0) {
            return Err(op_err!("input 0 has shape {shape:?} with no elements, cannot resize it to {out_shape:?}"));
        }
        let active: Vec<usize> =
            (0..rank).filter(|&a| !(out_shape[a] == shape[a] && scales[a] == 1.0 && self.coord != Coord::TfCropAndResize)).collect();
        let src = x.as_standard_layout();
        let src = src.as_slice().expect("standard layout");
        if active.is_empty() {
            return ArrayD::from_shape_vec(IxDyn(&shape), src.to_vec()).map_err(|e| op_err!("{e}"));
        }
        let taps: Vec<(usize, Vec<Taps>)> =
            active.iter().map(|&a| (a, self.axis_taps(shape[a], out_shape[a], scales[a], roi[a]))).collect();
        let extrap = self.extrapolation;
        let data: Vec<T> = if self.mode == Mode::Nearest {
            if let Some(v) = nearest_2d_int_fast(src, &shape, &out_shape, &taps) {
                v
            } else {
                let mut cur: Vec<T> = src.to_vec();
                let mut cur_shape = shape.clone();
                for (a, t) in &taps {
                    let idx: Vec<Option<usize>> = t
                        .iter()
                        .map(|p| match p {
                            Taps::Extrapolate => None,
                            Taps::Points(v) => Some(v[0].0),
                        })
                        .collect();
                    let fill = T::from_f64(extrap);
                    cur =
                        apply_axis(fill, &cur, &cur_shape, *a, idx.len(), |row: &[T], stride: usize, j: usize, dst: &mut [T]| {
                            match idx[j] {
                                Some(i) => dst.copy_from_slice(&row[i * stride..(i + 1) * stride]),
                                None => dst.fill(fill),
                            }
                        });
                    cur_shape[*a] = idx.len();
                }
                cur
            }
        } else if let Some(v) = linear_2d_fast(src, &shape, &out_shape, &taps) {
            v
        } else {
            let mut cur: Vec<f64> = src.iter().map(|v| v.to_f64()).collect();
            let mut cur_shape = shape.clone();
            for (a, t) in &taps {
                cur = apply_axis(0.0, &cur, &cur_shape, *a, t.len(), |row: &[f64], stride: usize, j: usize, dst: &mut [f64]| match &t[j] {
                    Taps::Extrapolate => dst.fill(extrap),
                    Taps::Points(pts) => {
                        dst.fill(0.0);
                        for &(i, w) in pts {
                            let s = &row[i * stride..(i + 1) * stride];
                            for (d, v) in dst.iter_mut().zip(s) {
                                *d += w * v;
                            }
                        }
                    }
                });
                cur_shape[*a] = t.len();
            }
            cur.into_iter().map(T::from_f64).collect()
        };
        ArrayD::from_shape_vec(IxDyn(&out_shape), data).map_err(|e| op_err!("{e}"))
    }
}

/// Resizes axis `a` of a row-major buffer of `shape` to `m`: for every outer index and
/// output coordinate `j`, `f(row, inner, j, dst)` fills the `inner` contiguous outputs
/// from the input `row` (`n * inner` values).
fn apply_axis<T: Copy + Send + Sync>(
    zero: T,
    src: &[T],
    shape: &[usize],
    a: usize,
    m: usize,
    f: impl Fn(&[T], usize, usize, &mut [T]) + Sync,
) -> Vec<T> {
    let n = shape[a];
    let inner: usize = shape[a + 1..].iter().product();
    let outer: usize = shape[..a].iter().product();
    let mut out = vec![zero; outer * m * inner];
    let block = m * inner;
    let work = |(o, dst): (usize, &mut [T])| {
        let row = &src[o * n * inner..(o + 1) * n * inner];
        for (j, d) in dst.chunks_mut(inner).enumerate() {
            f(row, inner, j, d);
        }
    };
    if block == 0 {
        return out;
    }
    if out.len() >= PAR_THRESHOLD && outer > 1 {
        out.par_chunks_mut(block).enumerate().for_each(work);
    } else {
        out.chunks_mut(block).enumerate().for_each(work);
    }
    out
}

/// Fast path: linear (2-tap) interpolation of exactly the last two axes, e.g. bilinear
/// upsampling of NCHW feature maps. Each plane is processed row by row: the two input rows
/// an output row needs are interpolated horizontally once (cached across output rows),
/// then blended vertically.
fn linear_2d_fast<T: Num>(src: &[T], shape: &[usize], out_shape: &[usize], taps: &[(usize, Vec<Taps>)]) -> Option<Vec<T>> {
    let rank = shape.len();
    if rank < 2 || taps.len() != 2 || taps[0].0 != rank - 2 || taps[1].0 != rank - 1 {
        return None;
    }
    let two = |t: &[Taps]| -> Option<Vec<(usize, usize, f64, f64)>> {
        t.iter()
            .map(|p| match p {
                Taps::Points(v) if v.len() == 1 => Some((v[0].0, v[0].0, v[0].1, 0.0)),
                Taps::Points(v) if v.len() == 2 => Some((v[0].0, v[1].0, v[0].1, v[1].1)),
                _ => None,
            })
            .collect()
    };
    let ty = two(&taps[0].1)?;
    let tx = two(&taps[1].1)?;
    let (h, w, oh, ow) = (shape[rank - 2], shape[rank - 1], out_shape[rank - 2], out_shape[rank - 1]);
    let planes: usize = shape[..rank - 2].iter().product();
    let mut out = vec![T::from_f64(0.0); planes * oh * ow];
    let work = |(p, dst): (usize, &mut [T])| {
        let plane = &src[p * h * w..(p + 1) * h * w];
        let hrow = |y: usize, buf: &mut Vec<f64>| {
            let r = &plane[y * w..(y + 1) * w];
            buf.clear();
            buf.extend(tx.iter().map(|&(a, b, wa, wb)| wa * r[a].to_f64() + wb * r[b].to_f64()));
        };
        let (mut r0, mut r1) = (Vec::with_capacity(ow), Vec::with_capacity(ow));
        let (mut y0c, mut y1c) = (usize::MAX, usize::MAX);
        for (oy, d) in dst.chunks_mut(ow).enumerate() {
            let (y0, y1, w0, w1) = ty[oy];
            if y0 != y0c {
                if y0 == y1c {
                    std::mem::swap(&mut r0, &mut r1);
                    y1c = usize::MAX;
                } else {
                    hrow(y0, &mut r0);
                }
                y0c = y0;
            }
            if w1 == 0.0 {
                for (o, &a) in d.iter_mut().zip(&r0) {
                    *o = T::from_f64(w0 * a);
                }
                continue;
            }
            if y1 != y1c {
                hrow(y1, &mut r1);
                y1c = y1;
            }
            for ((o, &a), &b) in d.iter_mut().zip(&r0).zip(&r1) {
                *o = T::from_f64(w0 * a + w1 * b);
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && planes > 1 {
        out.par_chunks_mut(oh * ow).enumerate().for_each(work);
    } else {
        out.chunks_mut(oh * ow).enumerate().for_each(work);
    }
    Some(out)
}

/// Fast path: nearest upscale of the last two axes by integer factors where every output
/// (y, x) reads input (y / fy, x / fx) (e.g. ×2 asymmetric / half_pixel in YOLO necks).
fn nearest_2d_int_fast<T: Num>(src: &[T], shape: &[usize], out_shape: &[usize], taps: &[(usize, Vec<Taps>)]) -> Option<Vec<T>> {
    let rank = shape.len();
    if rank < 2 || taps.len() != 2 || taps[0].0 != rank - 2 || taps[1].0 != rank - 1 {
        return None;
    }
    let (h, w, oh, ow) = (shape[rank - 2], shape[rank - 1], out_shape[rank - 2], out_shape[rank - 1]);
    if oh % h != 0 || ow % w != 0 {
        return None;
    }
    let (fy, fx) = (oh / h, ow / w);
    let matches = |t: &[Taps], f: usize| t.iter().enumerate().all(|(j, p)| matches!(p, Taps::Points(v) if v.len() == 1 && v[0].0 == j / f));
    if !matches(&taps[0].1, fy) || !matches(&taps[1].1, fx) {
        return None;
    }
    let planes: usize = shape[..rank - 2].iter().product();
    let mut out = vec![T::from_f64(0.0); planes * oh * ow];
    let work = |(p, dst): (usize, &mut [T])| {
        let plane = &src[p * h * w..(p + 1) * h * w];
        for y in 0..h {
            let srow = &plane[y * w..(y + 1) * w];
            let first = &mut dst[y * fy * ow..(y * fy + 1) * ow];
            for (x, &v) in srow.iter().enumerate() {
                first[x * fx..(x + 1) * fx].fill(v);
            }
            for r in 1..fy {
                let (done, rest) = dst[y * fy * ow..(y + 1) * fy * ow].split_at_mut(r * ow);
                rest[..ow].copy_from_slice(&done[..ow]);
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && planes > 1 {
        out.par_chunks_mut(oh * ow).enumerate().for_each(work);
    } else {
        out.chunks_mut(oh * ow).enumerate().for_each(work);
    }
    Some(out)
}

impl Op for Resize {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let out = match x {
            Tensor::F32(a) => Tensor::F32(self.run_typed(a, inputs)?),
            Tensor::F64(a) => Tensor::F64(self.run_typed(a, inputs)?),
            Tensor::F16(a) => Tensor::F16(self.run_typed::<f16>(a, inputs)?),
            Tensor::I8(a) => Tensor::I8(self.run_typed(a, inputs)?),
            Tensor::U8(a) => Tensor::U8(self.run_typed(a, inputs)?),
            Tensor::I32(a) => Tensor::I32(self.run_typed(a, inputs)?),
            Tensor::I64(a) => Tensor::I64(self.run_typed(a, inputs)?),
            other => return Err(op_err!("input 0 is {}, expected a float or integer tensor", other.dtype_name())),
        };
        Ok(vec![out])
    }
}

fn parse_mode(s: &str) -> OpResult<Mode> {
    Ok(match s {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" | "trilinear" => Mode::Linear,
        "cubic" | "bicubic" => Mode::Cubic,
        other => return Err(op_err!("attribute mode '{other}' is not one of nearest, linear, cubic")),
    })
}

fn build_resize(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let mode = parse_mode(&ctx.attr_s("mode", "nearest")?)?;
    let opset = ctx.opset;
    let (coord, nearest) = if opset < 11 {
        (Coord::Asymmetric, NearestMode::Simple)
    } else {
        let coord = match ctx.attr_s("coordinate_transformation_mode", "half_pixel")?.as_str() {
            "half_pixel" => Coord::HalfPixel,
            "half_pixel_symmetric" => Coord::HalfPixelSymmetric,
            "pytorch_half_pixel" => Coord::PytorchHalfPixel,
            "align_corners" => Coord::AlignCorners,
            "asymmetric" => Coord::Asymmetric,
            "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
            "tf_crop_and_resize" => Coord::TfCropAndResize,
            other => {
                return Err(op_err!(
                    "attribute coordinate_transformation_mode '{other}' is not one of half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize"
                ));
            }
        };
        let nearest = match ctx.attr_s("nearest_mode", "round_prefer_floor")?.as_str() {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => {
                return Err(op_err!("attribute nearest_mode '{other}' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil"));
            }
        };
        (coord, nearest)
    };
    let policy = match ctx.attr_s("keep_aspect_ratio_policy", "stretch")?.as_str() {
        "stretch" => AspectPolicy::Stretch,
        "not_larger" => AspectPolicy::NotLarger,
        "not_smaller" => AspectPolicy::NotSmaller,
        other => return Err(op_err!("attribute keep_aspect_ratio_policy '{other}' is not one of stretch, not_larger, not_smaller")),
    };
    let (roi_input, scales_input, sizes_input) = if opset < 11 { (None, Some(1), None) } else { (Some(1), Some(2), Some(3)) };
    Ok(Box::new(Resize {
        mode,
        coord,
        nearest,
        cubic_a: ctx.attr_f("cubic_coeff_a", -0.75)? as f64,
        exclude_outside: ctx.attr_i("exclude_outside", 0)? != 0,
        extrapolation: ctx.attr_f("extrapolation_value", 0.0)? as f64,
        antialias: ctx.attr_i("antialias", 0)? != 0,
        axes: ctx.opt_attr_ints("axes")?,
        policy,
        roi_input,
        scales_input,
        sizes_input,
        scales_attr: None,
    }))
}

fn build_upsample(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let mode = parse_mode(&ctx.attr_s("mode", "nearest")?)?;
    if mode == Mode::Cubic {
        return Err(op_err!("attribute mode 'cubic' is not supported by Upsample (expected nearest or linear)"));
    }
    let scales_attr = if ctx.opset < 9 {
        Some(ctx.attr_floats("scales", &[])?).filter(|v| !v.is_empty()).ok_or_else(|| op_err!("attribute scales is required")).map(Some)?
    } else {
        None
    };
    Ok(Box::new(Resize {
        mode,
        coord: Coord::Asymmetric,
        nearest: NearestMode::Simple,
        cubic_a: -0.75,
        exclude_outside: false,
        extrapolation: 0.0,
        antialias: false,
        axes: None,
        policy: AspectPolicy::Stretch,
        roi_input: None,
        scales_input: if scales_attr.is_none() { Some(1) } else { None },
        sizes_input: None,
        scales_attr,
    }))
}

pub fn register(r: &mut Registry) {
    r.register("Resize", build_resize);
    r.register("Upsample", build_upsample);
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::tests_support::op;

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
    }

    #[test]
    fn nearest_x2_fast_path() {
        // [[1,2],[3,4]] x2 asymmetric: each value becomes a 2x2 block.
        let x = f(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
        let s = f(&[4], &[1., 1., 2., 2.]);
        let y = op(Mode::Nearest, Coord::Asymmetric).run(&[Some(&x), None, Some(&s)]).unwrap();
        assert_eq!(y[0].shape(), &[1, 1, 4, 4]);
        assert_eq!(y[0].to_f64_vec(), vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
    }

    #[test]
    fn linear_half_pixel_and_align_corners() {
        // [1, 3] -> 4 with half_pixel: x_orig = (x+0.5)/2-0.5 = -0.25, 0.25, 0.75, 1.25
        // -> clamp edges: 1, 1+0.25*2 = 1.5, 1+0.75*2 = 2.5, 3.
        let x = f(&[1, 2], &[1., 3.]);
        let s = f(&[2], &[1., 2.]);
        let y = op(Mode::Linear, Coord::HalfPixel).run(&[Some(&x), None, Some(&s)]).unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![1., 1.5, 2.5, 3.]);
        // align_corners to 3: x_orig = 0, 0.5, 1 -> 1, 2, 3.
        let sizes = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1, 3]).unwrap());
        let y = op(Mode::Linear, Coord::AlignCorners).run(&[Some(&x), None, None, Some(&sizes)]).unwrap();
        assert_eq!(y[0].to_f64_vec(), vec![1., 2., 3.]);
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        // a = -0.75, ratio 0.5: weights -0.09375, 0.59375, 0.59375, -0.09375 (sum 1).
        let r = op(Mode::Cubic, Coord::Asymmetric);
        let t = r.axis_taps(8, 16, 2.0, (0.0, 1.0));
        let Taps::Points(p) = &t[5] else { panic!() };
        assert_eq!(p.len(), 4);
        assert!((p[0].1 + 0.09375).abs() < 1e-12 && (p[1].1 - 0.59375).abs() < 1e-12);
    }

    #[test]
    fn bilinear_fast_path_matches_separable_path() {
        // Resizing both trailing axes at once (fast path) must equal resizing one axis at a
        // time (generic separable path): 5x7 -> 9x4, half_pixel, edges included.
        let x = Tensor::F32(ArrayD::from_shape_fn(IxDyn(&[1, 2, 5, 7]), |i| ((i[1] * 31 + i[2] * 7 + i[3] * 3) % 11) as f32));
        let sz = |v: Vec<i64>| Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[4]), v).unwrap());
        let r = op(Mode::Linear, Coord::HalfPixel);
        let both = r.run(&[Some(&x), None, None, Some(&sz(vec![1, 2, 9, 4]))]).unwrap().remove(0);
        let w = r.run(&[Some(&x), None, None, Some(&sz(vec![1, 2, 5, 4]))]).unwrap().remove(0);
        let hw = r.run(&[Some(&w), None, None, Some(&sz(vec![1, 2, 9, 4]))]).unwrap().remove(0);
        assert_eq!(both.shape(), &[1, 2, 9, 4]);
        for (a, b) in both.to_f64_vec().iter().zip(hw.to_f64_vec()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn resize_errors() {
        let x = f(&[1, 2], &[1., 3.]);
        let s = f(&[3], &[1., 1., 2.]);
        let e = op(Mode::Linear, Coord::HalfPixel).run(&[Some(&x), None, Some(&s)]).unwrap_err().0;
        assert!(e.contains("expected 2 positive values"), "{e}");
        let e = op(Mode::Linear, Coord::HalfPixel).run(&[Some(&x)]).unwrap_err().0;
        assert!(e.contains("neither scales nor sizes"), "{e}");
        let b = Tensor::Bool(ArrayD::from_elem(IxDyn(&[1, 2]), true));
        assert!(op(Mode::Nearest, Coord::HalfPixel).run(&[Some(&b)]).unwrap_err().0.contains("input 0 is bool"));
    }
}

#[cfg(test)]
mod bench {
    use super::tests_support::op;
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn bench_resize() {
        let x = Tensor::F32(ArrayD::from_shape_fn(IxDyn(&[1, 256, 80, 80]), |i| (i[1] * 7 + i[2] * 3 + i[3]) as f32 * 0.01));
        let s = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[4]), vec![1., 1., 2., 2.]).unwrap());
        for (name, mode, coord) in [("nearest", Mode::Nearest, Coord::Asymmetric), ("bilinear", Mode::Linear, Coord::HalfPixel)] {
            let mut op = op(mode, coord);
            op.nearest = NearestMode::Floor;
            let t = Instant::now();
            for _ in 0..5 {
                op.run(&[Some(&x), None, Some(&s)]).unwrap();
            }
            eprintln!("{name}: {:?} per run", t.elapsed() / 5);
        }
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;
    pub fn op(mode: Mode, coord: Coord) -> Resize {
        Resize {
            mode,
            coord,
            nearest: NearestMode::RoundPreferFloor,
            cubic_a: -0.75,
            exclude_outside: false,
            extrapolation: 0.0,
            antialias: false,
            axes: None,
            policy: AspectPolicy::Stretch,
            roi_input: Some(1),
            scales_input: Some(2),
            sizes_input: Some(3),
            scales_attr: None,
        }
    }
}

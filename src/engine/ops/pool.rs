//! MaxPool (with optional Indices), AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool,
//! GlobalLpPool over 1-D/2-D/3-D spatial extents of `[N, C, spatial...]` inputs.
//!
//! Every pooling is run as 3-D (missing leading spatial axes get size 1, kernel 1); per
//! axis the input taps of each output position are precomputed once per call, so the
//! inner loops only visit valid (non-pad) taps.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use crate::engine::kernels::conv::valid_range;

use super::common::{Num, PAR_THRESHOLD};
use super::reduce::{Kind, reduce_array};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::onnx::window::{AxisWindow, Window, WindowAttrs};
use crate::op_err;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PoolKind {
    Max,
    Avg { count_include_pad: bool },
    Lp { p: f64 },
}

#[derive(Debug)]
pub(super) struct Pool {
    pub(super) kind: PoolKind,
    /// kernel_shape, strides, dilations, pads and auto_pad ([`crate::onnx::window`]).
    pub(super) window: Window,
    pub(super) ceil_mode: bool,
    storage_order: i64,
    /// MaxPool with its optional second output (Indices) connected.
    indices: bool,
}

/// Taps of one spatial axis: for every output position, the valid input coordinates and
/// how many window positions fall inside the padded extent.
pub(super) struct AxisTaps {
    pub(super) taps: Vec<Vec<usize>>,
    pub(super) padded_count: Vec<usize>,
}

impl Pool {
    pub(super) fn axis_taps(&self, i: usize, n: usize) -> OpResult<(usize, AxisTaps)> {
        let AxisWindow { out, pad_begin: pb, pad_end: pe } = self.window.axis(i, n, self.ceil_mode)?;
        let w = &self.window;
        let (k, s, d) = (w.kernel[i], w.strides[i], w.dilations[i]);
        let mut taps = Vec::with_capacity(out);
        let mut padded_count = Vec::with_capacity(out);
        for o in 0..out {
            let start = (o * s) as i64 - pb as i64;
            let mut t = Vec::with_capacity(k);
            let mut c = 0;
            for j in 0..k {
                let x = start + (j * d) as i64;
                if x >= -(pb as i64) && x < (n + pe) as i64 {
                    c += 1;
                }
                if x >= 0 && (x as usize) < n {
                    t.push(x as usize);
                }
            }
            taps.push(t);
            padded_count.push(c);
        }
        Ok((out, AxisTaps { taps, padded_count }))
    }

    fn run_typed<T: Num>(&self, x: &ArrayD<T>, want_indices: bool) -> OpResult<(ArrayD<T>, Option<ArrayD<i64>>)> {
        let shape = x.shape().to_vec();
        let sp = self.window.rank();
        if shape.len() != sp + 2 {
            return Err(op_err!(
                "input 0 has shape {shape:?}, expected rank {} ([N, C] + {sp} spatial axes for kernel_shape {:?})",
                sp + 2,
                self.window.kernel
            ));
        }
        // Pad to 3 spatial axes.
        let mut in_sp = vec![1usize; 3 - sp];
        in_sp.extend_from_slice(&shape[2..]);
        let mut axes: Vec<AxisTaps> = Vec::with_capacity(3);
        let mut out_sp = Vec::with_capacity(3);
        for _ in 0..3 - sp {
            axes.push(AxisTaps { taps: vec![vec![0]], padded_count: vec![1] });
            out_sp.push(1);
        }
        for i in 0..sp {
            let (o, t) = self.axis_taps(i, shape[2 + i])?;
            axes.push(t);
            out_sp.push(o);
        }
        let planes = shape[0] * shape[1];
        let in_plane: usize = in_sp.iter().product();
        let out_plane: usize = out_sp.iter().product();
        let src = x.as_standard_layout();
        let src = src.as_slice().expect("standard layout");
        let mut out = vec![T::from_f64(0.0); planes * out_plane];
        let mut idx = if want_indices { vec![0i64; planes * out_plane] } else { Vec::new() };
        let (ih, iw) = (in_sp[1], in_sp[2]);
        let (id_, _) = (in_sp[0], ());
        let kind = self.kind;
        let col_major = self.storage_order == 1;
        if T::FLOAT && kind == PoolKind::Max && !want_indices && in_sp[0] == 1 && out_sp[0] == 1 {
            let wi = sp - 1;
            let w = &self.window;
            let pad = w.axis(wi, iw, self.ceil_mode)?.pad_begin;
            let width = WidthWindow { k: w.kernel[wi], s: w.strides[wi], d: w.dilations[wi], pad };
            max_pool_2d(src, &mut out, planes, [ih, iw], [out_sp[1], out_sp[2]], [&axes[1].taps, &axes[2].taps], width);
            let mut out_shape = vec![shape[0], shape[1]];
            out_shape.extend_from_slice(&out_sp[3 - sp..]);
            return Ok((ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| op_err!("{e}"))?, None));
        }
        let work = |p: usize, dst: &mut [T], dst_idx: &mut [i64]| {
            let plane = &src[p * in_plane..(p + 1) * in_plane];
            let mut o = 0;
            for od in 0..out_sp[0] {
                for oh in 0..out_sp[1] {
                    for ow in 0..out_sp[2] {
                        let (td, th, tw) = (&axes[0].taps[od], &axes[1].taps[oh], &axes[2].taps[ow]);
                        match kind {
                            PoolKind::Max => {
                                let mut best = T::LOWEST;
                                let mut bi = 0usize;
                                let mut bpos = (0, 0, 0);
                                for &zd in td {
                                    for &zh in th {
                                        let row = (zd * ih + zh) * iw;
                                        for &zw in tw {
                                            let v = plane[row + zw].to_f64();
                                            if v > best {
                                                best = v;
                                                bi = row + zw;
                                                bpos = (zd, zh, zw);
                                            }
                                        }
                                    }
                                }
                                dst[o] = T::from_f64(best);
                                if !dst_idx.is_empty() {
                                    let local = if col_major { bpos.0 + bpos.1 * id_ + bpos.2 * id_ * ih } else { bi };
                                    dst_idx[o] = (p * in_plane + local) as i64;
                                }
                            }
                            PoolKind::Avg { count_include_pad } => {
                                let mut sum = 0f64;
                                let mut cnt = 0usize;
                                for &zd in td {
                                    for &zh in th {
                                        let row = (zd * ih + zh) * iw;
                                        for &zw in tw {
                                            sum += plane[row + zw].to_f64();
                                        }
                                        cnt += tw.len();
                                    }
                                }
                                let div = if count_include_pad {
                                    axes[0].padded_count[od] * axes[1].padded_count[oh] * axes[2].padded_count[ow]
                                } else {
                                    cnt
                                };
                                dst[o] = T::from_f64(if div == 0 { f64::NAN } else { sum / div as f64 });
                            }
                            PoolKind::Lp { p: pw } => {
                                let mut sum = 0f64;
                                for &zd in td {
                                    for &zh in th {
                                        let row = (zd * ih + zh) * iw;
                                        for &zw in tw {
                                            sum += plane[row + zw].to_f64().abs().powf(pw);
                                        }
                                    }
                                }
                                dst[o] = T::from_f64(sum.powf(1.0 / pw));
                            }
                        }
                        o += 1;
                    }
                }
            }
        };
        if out_plane > 0 {
            let par = planes > 1 && planes * in_plane.max(out_plane) >= PAR_THRESHOLD;
            match (want_indices, par) {
                (true, true) => {
                    out.par_chunks_mut(out_plane).zip(idx.par_chunks_mut(out_plane)).enumerate().for_each(|(p, (d, i))| work(p, d, i))
                }
                (true, false) => out.chunks_mut(out_plane).zip(idx.chunks_mut(out_plane)).enumerate().for_each(|(p, (d, i))| work(p, d, i)),
                (false, true) => out.par_chunks_mut(out_plane).enumerate().for_each(|(p, d)| work(p, d, &mut [])),
                (false, false) => out.chunks_mut(out_plane).enumerate().for_each(|(p, d)| work(p, d, &mut [])),
            }
        }
        let mut out_shape = vec![shape[0], shape[1]];
        out_shape.extend_from_slice(&out_sp[3 - sp..]);
        let y = ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| op_err!("{e}"))?;
        let i = if want_indices { Some(ArrayD::from_shape_vec(IxDyn(&out_shape), idx).map_err(|e| op_err!("{e}"))?) } else { None };
        Ok((y, i))
    }
}

/// 2-D MaxPool without indices, separably: the maximum over each window's columns for
/// every input row, then over its rows. The maximum of the same taps, compared in the
/// element type exactly like the general loop (NaN never wins, an all-NaN window gives the
/// type's lowest value), at a fraction of the comparisons for large kernels.
/// The width axis of a pooling window: kernel, stride, dilation, leading pad.
#[derive(Clone, Copy)]
struct WidthWindow {
    k: usize,
    s: usize,
    d: usize,
    pad: usize,
}

#[allow(clippy::too_many_arguments)]
fn max_pool_2d<T: Num>(
    src: &[T],
    out: &mut [T],
    planes: usize,
    [ih, iw]: [usize; 2],
    [oh, ow]: [usize; 2],
    taps: [&Vec<Vec<usize>>; 2],
    width: WidthWindow,
) {
    let (in_plane, out_plane) = (ih * iw, oh * ow);
    let lowest = T::from_f64(T::LOWEST);
    let work = |p: usize, dst: &mut [T], rows: &mut Vec<T>| {
        let plane = &src[p * in_plane..(p + 1) * in_plane];
        rows.clear();
        rows.resize(ih * ow, lowest);
        // Row maxima one kernel tap at a time over all outputs of the row: each output still
        // meets its taps (those of `taps[1]`, the in-range x·s − pad + j·d) in increasing j,
        // so the same comparisons in the same order as a per-output walk. Maxima are selects,
        // not conditional stores: those compiled to a data-dependent branch per element.
        let WidthWindow { k, s, d, pad } = width;
        for (y, r) in rows.chunks_exact_mut(ow).enumerate() {
            let line = &plane[y * iw..(y + 1) * iw];
            for j in 0..k {
                let off = (j * d) as isize - pad as isize;
                let (lo, hi) = valid_range(ow, s, off, iw);
                if lo >= hi {
                    continue;
                }
                let first = (lo as isize * s as isize + off) as usize;
                if s == 1 {
                    for (b, &v) in r[lo..hi].iter_mut().zip(&line[first..first + (hi - lo)]) {
                        *b = if v > *b { v } else { *b };
                    }
                } else {
                    for (b, &v) in r[lo..hi].iter_mut().zip(line[first..].iter().step_by(s)) {
                        *b = if v > *b { v } else { *b };
                    }
                }
            }
        }
        for (o, th) in dst.chunks_exact_mut(ow).zip(taps[0]) {
            o.fill(lowest);
            for &y in th {
                for (b, &v) in o.iter_mut().zip(&rows[y * ow..(y + 1) * ow]) {
                    *b = if v > *b { v } else { *b };
                }
            }
        }
    };
    if out_plane == 0 {
        return;
    }
    // Split by the comparisons, not the elements: YOLOX's SPP pools (up to 13×13 windows on
    // 13×13 planes) are few elements but many taps.
    let taps_per_output = width.k + taps[0].iter().map(Vec::len).max().unwrap_or(1);
    if planes > 1 && planes * in_plane.max(out_plane) * taps_per_output >= 4 * PAR_THRESHOLD {
        out.par_chunks_mut(out_plane).enumerate().for_each_init(Vec::new, |rows, (p, d)| work(p, d, rows));
    } else {
        let mut rows = Vec::new();
        out.chunks_mut(out_plane).enumerate().for_each(|(p, d)| work(p, d, &mut rows));
    }
}

impl Op for Pool {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let want = matches!(self.kind, PoolKind::Max) && self.indices;
        macro_rules! go {
            ($a:expr, $v:ident) => {{
                let (y, i) = self.run_typed($a, want)?;
                let mut v = vec![Tensor::$v(y)];
                if let Some(i) = i {
                    v.push(Tensor::I64(i));
                }
                v
            }};
        }
        Ok(match x {
            Tensor::F32(a) => go!(a, F32),
            Tensor::F64(a) => go!(a, F64),
            Tensor::F16(a) => go!(a, F16),
            Tensor::I8(a) if self.kind == PoolKind::Max => go!(a, I8),
            Tensor::U8(a) if self.kind == PoolKind::Max => go!(a, U8),
            other => {
                return Err(op_err!(
                    "input 0 is {}, expected float, double or float16{}",
                    other.dtype_name(),
                    if self.kind == PoolKind::Max { ", int8 or uint8" } else { "" }
                ));
            }
        })
    }
}

fn build_pool(ctx: &BuildContext, kind: PoolKind) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(parse_pool(ctx, kind)?))
}

/// An AveragePool fed by an AscendQuant is the int8 layer of a deploy model (int32 window
/// sums); any other is the float op.
fn build_average_pool(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let pool = parse_pool(ctx, PoolKind::Avg { count_include_pad: ctx.attr_i("count_include_pad", 0)? != 0 })?;
    if super::int8::fed_by_ascend_quant(ctx) {
        return super::int8::build_avg_pool(ctx, pool);
    }
    Ok(Box::new(pool))
}

fn parse_pool(ctx: &BuildContext, kind: PoolKind) -> OpResult<Pool> {
    let attrs = WindowAttrs::read(ctx.node)?;
    let kernel = attrs.kernel_shape.as_ref().ok_or_else(|| op_err!("attribute kernel_shape is required"))?;
    let sp = kernel.len();
    if !(1..=3).contains(&sp) {
        return Err(op_err!("attribute kernel_shape {kernel:?} has {sp} axes, expected 1 to 3"));
    }
    if let Some(s) = ctx.input_shapes.first().and_then(|s| s.as_ref())
        && s.len() != sp + 2
    {
        return Err(op_err!("input 0 has shape {s:?}, expected rank {} for kernel_shape {kernel:?}", sp + 2));
    }
    let window = attrs.window(sp, None)?;
    let storage_order = ctx.attr_i("storage_order", 0)?;
    if !(0..=1).contains(&storage_order) {
        return Err(op_err!("attribute storage_order {storage_order} must be 0 (row major) or 1 (column major)"));
    }
    let indices = kind == PoolKind::Max && ctx.node.output.get(1).is_some_and(|o| !o.is_empty());
    Ok(Pool { kind, window, ceil_mode: ctx.attr_i("ceil_mode", 0)? != 0, storage_order, indices })
}

#[derive(Debug)]
struct GlobalPool {
    kind: Kind,
    /// GlobalLpPool exponent.
    p: Option<f64>,
}

impl Op for GlobalPool {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let rank = x.shape().len();
        if rank < 2 {
            return Err(op_err!("input 0 has shape {:?}, expected [N, C, spatial...]", x.shape()));
        }
        let mask: Vec<bool> = (0..rank).map(|i| i >= 2).collect();
        let kind = self.kind;
        let lp = |a: &ArrayD<f64>, p: f64| -> OpResult<ArrayD<f64>> {
            let pw = a.mapv(|v| v.abs().powf(p));
            Ok(reduce_array(&pw, &mask, true, Kind::Sum)?.mapv(|v| v.powf(1.0 / p)))
        };
        let out = match (x, self.p) {
            (Tensor::F32(a), None) => Tensor::F32(reduce_array(a, &mask, true, kind)?),
            (Tensor::F64(a), None) => Tensor::F64(reduce_array(a, &mask, true, kind)?),
            (Tensor::F16(a), None) => Tensor::F16(reduce_array(a, &mask, true, kind)?),
            (Tensor::F32(a), Some(p)) => Tensor::F32(lp(&a.mapv(|v| v as f64), p)?.mapv(|v| v as f32)),
            (Tensor::F64(a), Some(p)) => Tensor::F64(lp(a, p)?),
            (Tensor::F16(a), Some(p)) => Tensor::F16(lp(&a.mapv(|v| v.to_f64()), p)?.mapv(half::f16::from_f64)),
            (other, _) => return Err(op_err!("input 0 is {}, expected float, double or float16", other.dtype_name())),
        };
        Ok(vec![out])
    }
}

pub fn register(r: &mut Registry) {
    r.register("MaxPool", |c| build_pool(c, PoolKind::Max));
    r.register("AveragePool", build_average_pool);
    r.register("LpPool", |c| {
        let p = c.attr_i("p", 2)? as f64;
        if p <= 0.0 {
            return Err(op_err!("attribute p {p} must be > 0"));
        }
        build_pool(c, PoolKind::Lp { p })
    });
    r.register("GlobalAveragePool", |_| Ok(Box::new(GlobalPool { kind: Kind::Mean, p: None })));
    r.register("GlobalMaxPool", |_| Ok(Box::new(GlobalPool { kind: Kind::Max, p: None })));
    r.register("GlobalLpPool", |c| Ok(Box::new(GlobalPool { kind: Kind::Sum, p: Some(c.attr_i("p", 2)? as f64) })));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::window::AutoPad;

    fn pool(kind: PoolKind, k: &[usize], s: &[usize], pads: &[usize], ceil: bool) -> Pool {
        let window =
            Window { kernel: k.to_vec(), strides: s.to_vec(), dilations: vec![1; k.len()], pads: pads.to_vec(), auto_pad: AutoPad::NotSet };
        Pool { kind, window, ceil_mode: ceil, storage_order: 0, indices: true }
    }
    fn x44() -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 1, 4, 4]), (1..=16).map(|v| v as f32).collect()).unwrap())
    }

    #[test]
    fn maxpool_2x2_with_indices() {
        // 4x4 of 1..16, 2x2 stride 2: maxima 6, 8, 14, 16 at flat indices 5, 7, 13, 15.
        let out = pool(PoolKind::Max, &[2, 2], &[2, 2], &[0; 4], false).run(&[Some(&x44())]).unwrap();
        assert_eq!(out[0].shape(), &[1, 1, 2, 2]);
        assert_eq!(out[0].to_f64_vec(), vec![6., 8., 14., 16.]);
        assert_eq!(out[1].to_f64_vec(), vec![5., 7., 13., 15.]);
    }

    #[test]
    fn avgpool_pads_and_ceil() {
        // 3x3 stride 1 pad 1, exclude pad: corner (0,0) averages 1,2,5,6 = 3.5;
        // include pad: 14/9.
        let p = pool(PoolKind::Avg { count_include_pad: false }, &[3, 3], &[1, 1], &[1, 1, 1, 1], false);
        let y = p.run(&[Some(&x44())]).unwrap()[0].to_f64_vec();
        assert_eq!(y.len(), 16);
        assert!((y[0] - 3.5).abs() < 1e-6);
        let p = pool(PoolKind::Avg { count_include_pad: true }, &[3, 3], &[1, 1], &[1, 1, 1, 1], false);
        assert!((p.run(&[Some(&x44())]).unwrap()[0].to_f64_vec()[0] - 14.0 / 9.0).abs() < 1e-6);
        // ceil_mode, k=3 s=2 on 4: (4-3)/2 ceil = 1, +1 = 2 outputs; last window (start 2)
        // covers 3,4 of row 1 -> rows {2,3} x cols {2,3}: avg(11,12,15,16) = 13.5.
        let p = pool(PoolKind::Avg { count_include_pad: false }, &[3, 3], &[2, 2], &[0; 4], true);
        let y = p.run(&[Some(&x44())]).unwrap();
        assert_eq!(y[0].shape(), &[1, 1, 2, 2]);
        assert!((y[0].to_f64_vec()[3] - 13.5).abs() < 1e-6);
    }

    #[test]
    fn pool_errors() {
        let p = pool(PoolKind::Max, &[2, 2], &[1, 1], &[0; 4], false);
        let bad = Tensor::F32(ArrayD::zeros(IxDyn(&[1, 4, 4])));
        assert!(p.run(&[Some(&bad)]).unwrap_err().0.contains("expected rank 4"));
        let big = pool(PoolKind::Max, &[5, 5], &[1, 1], &[0; 4], false);
        assert!(big.run(&[Some(&x44())]).unwrap_err().0.contains("smaller than the dilated kernel"));
        let i = Tensor::I64(ArrayD::zeros(IxDyn(&[1, 1, 4, 4])));
        assert!(p.run(&[Some(&i)]).unwrap_err().0.contains("input 0 is int64"));
    }

    #[test]
    fn global_average() {
        // mean(1..16) = 8.5
        let g = GlobalPool { kind: Kind::Mean, p: None };
        let y = g.run(&[Some(&x44())]).unwrap();
        assert_eq!(y[0].shape(), &[1, 1, 1, 1]);
        assert_eq!(y[0].to_f64_vec(), vec![8.5]);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::onnx::window::AutoPad;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn bench_pool() {
        let cases: [(&str, [usize; 4], usize, usize, usize); 2] =
            [("resnet 3x3s2", [1, 64, 112, 112], 3, 2, 1), ("sppf 5x5s1", [1, 256, 20, 20], 5, 1, 2)];
        for (name, shape, k, s, p) in cases {
            let x = Tensor::F32(ArrayD::from_shape_fn(IxDyn(&shape), |i| ((i[1] * 7 + i[2] * 3 + i[3]) % 17) as f32));
            let window =
                Window { kernel: vec![k, k], strides: vec![s, s], dilations: vec![1, 1], pads: vec![p; 4], auto_pad: AutoPad::NotSet };
            let op = Pool { kind: PoolKind::Max, window, ceil_mode: false, storage_order: 0, indices: false };
            let t = Instant::now();
            for _ in 0..5 {
                op.run(&[Some(&x)]).unwrap();
            }
            eprintln!("{name}: {:?} per run", t.elapsed() / 5);
        }
    }
}

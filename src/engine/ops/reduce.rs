//! Reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp), ArgMax/ArgMin,
//! Softmax/LogSoftmax/Hardmax and CumSum.
//!
//! Values are converted to f64 for the arithmetic (sums accumulate in f64, which keeps
//! ReduceMean over large spatial extents exact to float precision) and converted back to
//! the input element type.

use std::borrow::Cow;

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::common::{Num, PAR_THRESHOLD};
use crate::engine::error::OpResult;
use crate::engine::kernels::SendPtr;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

/// Applies a generic body to every numeric variant (not Bool), re-wrapping the resulting
/// array in the same variant. `$bool` is the expression used for Bool tensors.
macro_rules! map_num {
    ($t:expr, $a:ident => $body:expr, bool => $bool:expr) => {
        match $t {
            Tensor::F32($a) => Tensor::F32($body),
            Tensor::F64($a) => Tensor::F64($body),
            Tensor::F16($a) => Tensor::F16($body),
            Tensor::I8($a) => Tensor::I8($body),
            Tensor::U8($a) => Tensor::U8($body),
            Tensor::I16($a) => Tensor::I16($body),
            Tensor::U16($a) => Tensor::U16($body),
            Tensor::I32($a) => Tensor::I32($body),
            Tensor::U32($a) => Tensor::U32($body),
            Tensor::I64($a) => Tensor::I64($body),
            Tensor::U64($a) => Tensor::U64($body),
            Tensor::Bool(_) => $bool,
        }
    };
}

/// Normalizes a possibly negative axis against `rank`, naming `what` in the error.
pub(crate) fn norm_axis(axis: i64, rank: usize, what: &str) -> OpResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) || (rank == 0 && a != 0) {
        return Err(op_err!("{what} {axis} is out of range for a rank-{rank} input (expected [{}, {}])", -r, r - 1));
    }
    Ok(a as usize)
}

// ---------------------------------------------------------------------------------------
// Reduce*

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSum,
    LogSumExp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sum => "ReduceSum",
            Kind::Mean => "ReduceMean",
            Kind::Max => "ReduceMax",
            Kind::Min => "ReduceMin",
            Kind::Prod => "ReduceProd",
            Kind::L1 => "ReduceL1",
            Kind::L2 => "ReduceL2",
            Kind::SumSquare => "ReduceSumSquare",
            Kind::LogSum => "ReduceLogSum",
            Kind::LogSumExp => "ReduceLogSumExp",
        }
    }

    /// Opset from which `axes` is an input instead of an attribute.
    fn axes_input_opset(self) -> i64 {
        if self == Kind::Sum { 13 } else { 18 }
    }

    /// Reduces one contiguous run of values.
    fn apply<T: Num>(self, v: &[T]) -> f64 {
        match self {
            Kind::Sum => v.iter().map(|x| x.to_f64()).sum(),
            Kind::Mean => v.iter().map(|x| x.to_f64()).sum::<f64>() / v.len() as f64,
            Kind::Max => {
                let mut m = T::LOWEST;
                for x in v {
                    let x = x.to_f64();
                    if x.is_nan() {
                        return x;
                    }
                    if x > m {
                        m = x;
                    }
                }
                m
            }
            Kind::Min => {
                let mut m = T::HIGHEST;
                for x in v {
                    let x = x.to_f64();
                    if x.is_nan() {
                        return x;
                    }
                    if x < m {
                        m = x;
                    }
                }
                m
            }
            Kind::Prod => v.iter().map(|x| x.to_f64()).product(),
            Kind::L1 => v.iter().map(|x| x.to_f64().abs()).sum(),
            Kind::L2 => v.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>().sqrt(),
            Kind::SumSquare => v.iter().map(|x| x.to_f64() * x.to_f64()).sum(),
            Kind::LogSum => v.iter().map(|x| x.to_f64()).sum::<f64>().ln(),
            Kind::LogSumExp => {
                let m = v.iter().map(|x| x.to_f64()).fold(f64::NEG_INFINITY, f64::max);
                if v.is_empty() {
                    return f64::NEG_INFINITY;
                }
                if m.is_infinite() {
                    return v.iter().map(|x| x.to_f64().exp()).sum::<f64>().ln();
                }
                m + v.iter().map(|x| (x.to_f64() - m).exp()).sum::<f64>().ln()
            }
        }
    }
}

/// Lays `a` out as `[outer, reduced]` with the reduced axes (mask true) last and
/// contiguous; borrows when no copy is needed.
fn gather_reduced<'a, T: Copy>(a: &'a ArrayD<T>, mask: &[bool]) -> Cow<'a, [T]> {
    let mut perm: Vec<usize> = (0..mask.len()).filter(|&i| !mask[i]).collect();
    perm.extend((0..mask.len()).filter(|&i| mask[i]));
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    if let (true, Some(s)) = (identity, a.as_slice()) {
        return Cow::Borrowed(s);
    }
    let v = a.view().permuted_axes(IxDyn(&perm));
    Cow::Owned(v.iter().copied().collect())
}

/// Rows summed side by side by [`sum_rows`].
const SUM_LANES: usize = 8;

/// Sums (or means, when `mean`) each of the `out.len()` (at most [`SUM_LANES`]) rows of `r`
/// values in `src`, interleaved so that the rows' additions overlap. Each row is still summed
/// left to right from -0.0, as `Kind::apply`'s `Iterator::sum` does, so the results are
/// identical to it.
fn sum_rows<T: Num>(src: &[T], r: usize, mean: bool, out: &mut [T]) {
    let n = out.len();
    let mut acc = [-0.0f64; SUM_LANES];
    if n == SUM_LANES {
        for i in 0..r {
            for (l, a) in acc.iter_mut().enumerate() {
                *a += src[l * r + i].to_f64();
            }
        }
    } else {
        for i in 0..r {
            for (l, a) in acc[..n].iter_mut().enumerate() {
                *a += src[l * r + i].to_f64();
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = T::from_f64(if mean { a / r as f64 } else { a });
    }
}

/// Rows summed side by side by [`sum_rows_gathered`]: four chains of eight f64 lanes.
const GATHERED_LANES: usize = 32;

/// Whether f32 rows of `r` values are summed by [`sum_rows_gathered`] (AVX-512, and the
/// rows' offsets fit its 32-bit gather indices).
fn gathered_sums_apply<T: Num>(r: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
            && r.checked_mul(GATHERED_LANES).is_some_and(|n| n <= i32::MAX as usize)
            && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
        false
    }
}

/// [`sum_rows`] for up to [`GATHERED_LANES`] f32 rows (only where [`gathered_sums_apply`]):
/// one gather loads value i of 16 rows, so each lane of an f64 vector adds its row's values
/// left to right from -0.0 — the same sums — and four such chains overlap their latencies.
/// On cls's GlobalAveragePools (rows of 48–1152 values) it takes under half the time of the
/// scalar interleave.
fn sum_rows_gathered<T: Num>(src: &[T], r: usize, mean: bool, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        assert!(gathered_sums_apply::<T>(r) && out.len() <= GATHERED_LANES && src.len() >= out.len() * r);
        // SAFETY: T is f32 (checked above), so the slice is the same memory as &[f32].
        let src32 = unsafe { std::slice::from_raw_parts(src.as_ptr() as *const f32, src.len()) };
        let mut sums = [0.0f64; GATHERED_LANES];
        // SAFETY: AVX-512F was detected; the gathers read rows < out.len() only (masked),
        // each at offsets row·r + i < src.len().
        unsafe { gathered_avx512(src32, r, out.len(), &mut sums) };
        for (o, s) in out.iter_mut().zip(sums) {
            *o = T::from_f64(if mean { s / r as f64 } else { s });
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    sum_rows(src, r, mean, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gathered_avx512(src: &[f32], r: usize, rows: usize, sums: &mut [f64; GATHERED_LANES]) {
    use std::arch::x86_64::*;
    let half_mask = |h: usize| -> __mmask16 {
        let n = rows.saturating_sub(16 * h).min(16);
        ((1u32 << n) - 1) as u16
    };
    let masks = [half_mask(0), half_mask(1)];
    let offsets: [__m512i; 2] = std::array::from_fn(|h| {
        let rows: [i32; 16] = std::array::from_fn(|l| ((16 * h + l) * r) as i32);
        // SAFETY: an unaligned load of 16 i32 from a local array.
        unsafe { _mm512_loadu_si512(rows.as_ptr() as *const _) }
    });
    let mut acc = [_mm512_set1_pd(-0.0); 4];
    let halves = rows.div_ceil(16);
    let base = src.as_ptr();
    for i in 0..r {
        for h in 0..halves {
            // SAFETY: (from the caller) lanes of rows ≥ `rows` are masked off.
            let v = unsafe { _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), masks[h], offsets[h], base.add(i)) };
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))));
            acc[2 * h] = _mm512_add_pd(acc[2 * h], lo);
            acc[2 * h + 1] = _mm512_add_pd(acc[2 * h + 1], hi);
        }
    }
    for (k, a) in acc.iter().enumerate() {
        // SAFETY: 8 f64 into sums[8k..8k + 8].
        unsafe { _mm512_storeu_pd(sums.as_mut_ptr().add(8 * k), *a) };
    }
}

pub(crate) fn reduce_array<T: Num>(a: &ArrayD<T>, mask: &[bool], keepdims: bool, kind: Kind) -> OpResult<ArrayD<T>> {
    let shape = a.shape();
    let r: usize = shape.iter().zip(mask).filter(|(_, m)| **m).map(|(d, _)| *d).product();
    let outer: usize = shape.iter().zip(mask).filter(|(_, m)| !**m).map(|(d, _)| *d).product();
    let out_shape: Vec<usize> = if keepdims {
        shape.iter().zip(mask).map(|(&d, &m)| if m { 1 } else { d }).collect()
    } else {
        shape.iter().zip(mask).filter(|(_, m)| !**m).map(|(d, _)| *d).collect()
    };
    let data = if r == 0 {
        vec![T::from_f64(kind.apply::<T>(&[])); outer]
    } else {
        let src = gather_reduced(a, mask);
        if matches!(kind, Kind::Sum | Kind::Mean) && outer > 1 {
            // Several rows at once, each still summed in order: the same sums, without one
            // add's latency per element.
            let mut data = vec![T::from_f64(0.0); outer];
            let mean = kind == Kind::Mean;
            let gathered = gathered_sums_apply::<T>(r);
            let lanes = if gathered { GATHERED_LANES } else { SUM_LANES };
            let block = |(s, o): (&[T], &mut [T])| {
                if gathered { sum_rows_gathered(s, r, mean, o) } else { sum_rows(s, r, mean, o) }
            };
            if src.len() >= PAR_THRESHOLD {
                src.par_chunks(r * lanes).zip(data.par_chunks_mut(lanes)).for_each(block);
            } else {
                src.chunks(r * lanes).zip(data.chunks_mut(lanes)).for_each(block);
            }
            data
        } else if src.len() >= PAR_THRESHOLD && outer > 1 {
            src.par_chunks(r).map(|c| T::from_f64(kind.apply(c))).collect()
        } else {
            src.chunks(r).map(|c| T::from_f64(kind.apply(c))).collect()
        }
    };
    ArrayD::from_shape_vec(IxDyn(&out_shape), data).map_err(|e| op_err!("{}: {e}", kind.name()))
}

#[derive(Debug)]
struct Reduce {
    kind: Kind,
    keepdims: bool,
    noop_with_empty_axes: bool,
    /// Axes from the attribute or a constant input; None = read input 1 at run time.
    axes: Option<Vec<i64>>,
    axes_from_input: bool,
}

impl Reduce {
    fn mask(&self, rank: usize, axes: &[i64]) -> OpResult<Option<Vec<bool>>> {
        if axes.is_empty() {
            if self.noop_with_empty_axes {
                return Ok(None);
            }
            return Ok(Some(vec![true; rank]));
        }
        let mut mask = vec![false; rank];
        for &ax in axes {
            let a = norm_axis(ax, rank, "axes value")?;
            if rank == 0 {
                continue;
            }
            if mask[a] {
                return Err(op_err!("{}: axes {axes:?} name axis {a} twice", self.kind.name()));
            }
            mask[a] = true;
        }
        Ok(Some(mask))
    }
}

impl Op for Reduce {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let axes: Vec<i64> = match (&self.axes, self.axes_from_input) {
            (Some(a), _) => a.clone(),
            (None, true) => match inputs.get(1).copied().flatten() {
                Some(t) => t.to_i64_vec().ok_or_else(|| op_err!("input 1 (axes) is {}, expected int64", t.dtype_name()))?,
                None => Vec::new(),
            },
            (None, false) => Vec::new(),
        };
        let rank = x.shape().len();
        let Some(mask) = self.mask(rank, &axes)? else {
            return Ok(vec![x.clone()]);
        };
        let kind = self.kind;
        let keep = self.keepdims;
        let out = map_num!(x, a => reduce_array(a, &mask, keep, kind)?, bool => {
            let Tensor::Bool(b) = x else { unreachable!() };
            if !matches!(kind, Kind::Max | Kind::Min) {
                return Err(op_err!("input 0 is bool, {} expects a numeric tensor", kind.name()));
            }
            let u = b.mapv(|v| v as u8);
            Tensor::Bool(reduce_array(&u, &mask, keep, kind)?.mapv(|v| v != 0))
        });
        Ok(vec![out])
    }
}

fn build_reduce(ctx: &BuildContext, kind: Kind) -> OpResult<Box<dyn Op>> {
    let keepdims = ctx.attr_i("keepdims", 1)? != 0;
    let noop_with_empty_axes = ctx.attr_i("noop_with_empty_axes", 0)? != 0;
    let axes_from_input = ctx.opset >= kind.axes_input_opset();
    let axes = if axes_from_input {
        if ctx.has_input(1) {
            match ctx.constant(1) {
                Some(t) => Some(t.to_i64_vec().ok_or_else(|| op_err!("input 1 (axes) is {}, expected int64", t.dtype_name()))?),
                None => None,
            }
        } else {
            Some(Vec::new())
        }
    } else {
        Some(ctx.attr_ints("axes", &[])?)
    };
    Ok(Box::new(Reduce { kind, keepdims, noop_with_empty_axes, axes, axes_from_input }))
}

// ---------------------------------------------------------------------------------------
// ArgMax / ArgMin

#[derive(Debug)]
struct Arg {
    max: bool,
    axis: i64,
    keepdims: bool,
    select_last: bool,
}

fn arg_array<T: Num>(a: &ArrayD<T>, axis: usize, keepdims: bool, max: bool, last: bool) -> OpResult<ArrayD<i64>> {
    let shape = a.shape();
    let n = shape[axis];
    if n == 0 {
        return Err(op_err!("input 0 has size 0 along axis {axis}; Arg{} needs at least one element", if max { "Max" } else { "Min" }));
    }
    let mut mask = vec![false; shape.len()];
    mask[axis] = true;
    let src = gather_reduced(a, &mask);
    let pick = |c: &[T]| -> i64 {
        let mut best = c[0].to_f64();
        let mut idx = 0usize;
        if best.is_nan() {
            return 0;
        }
        for (i, x) in c.iter().enumerate().skip(1) {
            let x = x.to_f64();
            if x.is_nan() {
                return i as i64;
            }
            let better = if max { x > best || (last && x == best) } else { x < best || (last && x == best) };
            if better {
                best = x;
                idx = i;
            }
        }
        idx as i64
    };
    let data: Vec<i64> = src.chunks(n).map(pick).collect();
    let out_shape: Vec<usize> = if keepdims {
        shape.iter().enumerate().map(|(i, &d)| if i == axis { 1 } else { d }).collect()
    } else {
        shape.iter().enumerate().filter(|(i, _)| *i != axis).map(|(_, &d)| d).collect()
    };
    ArrayD::from_shape_vec(IxDyn(&out_shape), data).map_err(|e| op_err!("{e}"))
}

impl Op for Arg {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let rank = x.shape().len();
        if rank == 0 {
            return Err(op_err!("input 0 is a scalar, expected rank >= 1"));
        }
        let axis = norm_axis(self.axis, rank, "axis")?;
        let (max, keep, last) = (self.max, self.keepdims, self.select_last);
        let out = match x {
            Tensor::Bool(b) => arg_array(&b.mapv(|v| v as u8), axis, keep, max, last)?,
            Tensor::F32(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::F64(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::F16(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::I8(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::U8(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::I16(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::U16(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::I32(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::U32(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::I64(a) => arg_array(a, axis, keep, max, last)?,
            Tensor::U64(a) => arg_array(a, axis, keep, max, last)?,
        };
        Ok(vec![Tensor::I64(out)])
    }
}

fn build_arg(ctx: &BuildContext, max: bool) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Arg {
        max,
        axis: ctx.attr_i("axis", 0)?,
        keepdims: ctx.attr_i("keepdims", 1)? != 0,
        select_last: ctx.attr_i("select_last_index", 0)? != 0,
    }))
}

// ---------------------------------------------------------------------------------------
// Softmax / LogSoftmax / Hardmax

#[derive(Debug, Clone, Copy, PartialEq)]
enum SoftKind {
    Softmax,
    LogSoftmax,
    Hardmax,
}

#[derive(Debug)]
struct Soft {
    kind: SoftKind,
    axis: i64,
    /// Opset < 13: the input is coerced to 2-D [prod(dims[..axis]), prod(dims[axis..])].
    coerce_2d: bool,
}

/// Softmax of contiguous rows of `n` values (the last axis): the general path's operations in
/// the same order (the max is order-free, each row's sum stays sequential), laid out so that
/// the gather, the max, the exps and the quotients vectorize, and the rows' sums advance side
/// by side so that they do not wait on each other's adds (PP-OCRv4 rec's 40 × 6625 CTC
/// softmax).
fn softmax_rows<T: Num>(s: &[T], n: usize, col: &mut Vec<f64>, dst: &mut [T]) {
    use crate::engine::kernels::exp::{exp_nonpositive, with_wide_vectors};
    // Padded to a whole group with zeros, so that the sums below have a fixed width; the
    // padding rows' sums are not used.
    col.resize(n * ROW_GROUP, 0.0);
    col[s.len()..].fill(0.0);
    with_wide_vectors(
        #[inline(always)]
        || {
            for (c, x) in col.iter_mut().zip(s) {
                *c = x.to_f64();
            }
            for row in col.chunks_exact_mut(n).take(s.len() / n) {
                let m = max_or_nan(row);
                row.iter_mut().for_each(|x| *x = exp_nonpositive(*x - m));
            }
            let mut sum = [0f64; ROW_GROUP];
            for k in 0..n {
                for (r, t) in sum.iter_mut().enumerate() {
                    *t += col[r * n + k];
                }
            }
            for ((d, c), &t) in dst.chunks_exact_mut(n).zip(col.chunks_exact(n)).zip(&sum) {
                for (d, &c) in d.iter_mut().zip(c) {
                    *d = T::from_f64(c / t);
                }
            }
        },
    )
}

/// Rows per call of [`softmax_rows`].
const ROW_GROUP: usize = 4;

/// Rows up to this length take [`softmax_short_rows`], [`SHORT_GROUP`] rows per call.
const SHORT_ROW: usize = 64;
const SHORT_GROUP: usize = 256;

/// [`softmax_rows`] for each row of `n` values of `s`, compiled for the widest vectors: up to
/// [`SOFT_COLS`] rows at a time are transposed into a k-major buffer so that every step runs
/// across rows (one row per lane), each row still with the same operations in the same order
/// (the max, exp of the shifted values, the sum over k ascending from 0, the division).
fn softmax_short_rows<T: Num>(s: &[T], n: usize, d: &mut [T]) {
    use crate::engine::kernels::exp::{exp_nonpositive, with_wide_vectors};
    with_wide_vectors(
        #[inline(always)]
        || {
            let mut e = [0f64; SHORT_ROW * SOFT_COLS];
            for (rows, dst) in s.chunks(n * SOFT_COLS).zip(d.chunks_mut(n * SOFT_COLS)) {
                let w = rows.len() / n;
                let e = &mut e[..n * w];
                for (r, row) in rows.chunks_exact(n).enumerate() {
                    for (k, x) in row.iter().enumerate() {
                        e[k * w + r] = x.to_f64();
                    }
                }
                let (mut m, mut nan) = ([f64::NEG_INFINITY; SOFT_COLS], [false; SOFT_COLS]);
                for ek in e.chunks_exact(w) {
                    for ((&c, mr), nr) in ek.iter().zip(m.iter_mut()).zip(nan.iter_mut()) {
                        *nr |= c.is_nan();
                        *mr = if c > *mr { c } else { *mr };
                    }
                }
                for (mr, nr) in m.iter_mut().zip(nan) {
                    if nr {
                        *mr = f64::NAN;
                    }
                }
                let mut sum = [0f64; SOFT_COLS];
                for ek in e.chunks_exact_mut(w) {
                    for ((c, &mr), t) in ek.iter_mut().zip(&m).zip(sum.iter_mut()) {
                        *c = exp_nonpositive(*c - mr);
                        *t += *c;
                    }
                }
                for ek in e.chunks_exact_mut(w) {
                    for (c, &t) in ek.iter_mut().zip(&sum) {
                        *c /= t;
                    }
                }
                for (r, out) in dst.chunks_exact_mut(n).enumerate() {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = T::from_f64(e[k * w + r]);
                    }
                }
            }
        },
    )
}

/// Columns per tile of [`softmax_columns`].
const SOFT_COLS: usize = 64;

/// Softmax down the columns `columns` of an `[n, inner]` block (`dst`: the block's output):
/// per column the general path's operations in the same order (the sum over k ascending), a
/// tile of columns side by side so that every step vectorizes across them (YOLOv8's DFL
/// softmax, 16 rows × 4·anchors columns).
fn softmax_columns<T: Num>(s: &[T], n: usize, inner: usize, columns: std::ops::Range<usize>, e: &mut Vec<f64>, dst: *mut T) {
    use crate::engine::kernels::exp::exp_shifted_each;
    let mut j0 = columns.start;
    while j0 < columns.end {
        let w = SOFT_COLS.min(columns.end - j0);
        e.resize(n * w, 0.0);
        let (mut m, mut nan) = ([f64::NEG_INFINITY; SOFT_COLS], [false; SOFT_COLS]);
        for k in 0..n {
            for ((x, c), (mj, nj)) in s[k * inner + j0..][..w].iter().zip(&mut e[k * w..(k + 1) * w]).zip(m.iter_mut().zip(&mut nan)) {
                *c = x.to_f64();
                *nj |= c.is_nan();
                *mj = if *c > *mj { *c } else { *mj };
            }
        }
        for (mj, nj) in m.iter_mut().zip(nan) {
            if nj {
                *mj = f64::NAN;
            }
        }
        let mut sum = [0f64; SOFT_COLS];
        for row in e.chunks_exact_mut(w) {
            exp_shifted_each(row, &m[..w]);
            for (t, &c) in sum.iter_mut().zip(row.iter()) {
                *t += c;
            }
        }
        for (k, row) in e.chunks_exact(w).enumerate() {
            // SAFETY: the caller's job alone writes these columns of the block.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.add(k * inner + j0), w) };
            for ((d, &c), &t) in out.iter_mut().zip(row).zip(&sum) {
                *d = T::from_f64(c / t);
            }
        }
        j0 += w;
    }
}

/// The largest value, or NaN when there is one (in 8 lanes; the max of a set does not depend
/// on the order it is taken in).
#[inline(always)]
fn max_or_nan(v: &[f64]) -> f64 {
    let (mut lanes, mut nan) = ([f64::NEG_INFINITY; 8], false);
    let mut groups = v.chunks_exact(8);
    for g in &mut groups {
        for j in 0..8 {
            nan |= g[j].is_nan();
            lanes[j] = if g[j] > lanes[j] { g[j] } else { lanes[j] };
        }
    }
    for &x in groups.remainder() {
        nan |= x.is_nan();
        lanes[0] = if x > lanes[0] { x } else { lanes[0] };
    }
    if nan { f64::NAN } else { lanes.iter().copied().fold(f64::NEG_INFINITY, f64::max) }
}

/// Softmax of f32 rows of `n` values (the last axis), in f32 (see `kernels::softmax`), rows
/// shared out among the threads: each row is computed alone, so the cut changes no result.
fn softmax_f32_rows(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    use crate::engine::kernels::softmax;
    let src = a.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    // SAFETY: `softmax::rows` writes every output value before it reads any back.
    let mut out = unsafe { crate::engine::kernels::split::unfilled_f32(src.len()) };
    // About 4096 values per job (one row when rows are longer).
    let group = n * (4096 / n).max(1);
    if src.len() >= PAR_THRESHOLD {
        src.par_chunks(group).zip(out.par_chunks_mut(group)).for_each(|(s, d)| softmax::rows(s, n, d));
    } else {
        softmax::rows(src, n, &mut out);
    }
    ArrayD::from_shape_vec(IxDyn(a.shape()), out).expect("same element count")
}

/// Applies the op along the middle axis of an `[outer, n, inner]` layout.
fn soft_array<T: Num>(a: &ArrayD<T>, outer: usize, n: usize, inner: usize, kind: SoftKind) -> ArrayD<T> {
    let src = a.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = vec![T::from_f64(0.0); src.len()];
    let block = n * inner;
    // Jobs are (block, column range) pairs: a single big block (e.g. YOLOv8's DFL softmax,
    // [1, 16, 4·anchors] on axis 1) is cut along its columns so every thread gets a share.
    // Each column is computed alone, so the cut changes no result.
    let threads = rayon::current_num_threads().max(1);
    let parallel = src.len() >= PAR_THRESHOLD && block > 0;
    let col_chunks = if parallel && outer < 4 * threads { (4 * threads).div_ceil(outer).min(inner.div_ceil(16)) } else { 1 };
    if kind == SoftKind::Softmax && inner == 1 && n > 0 {
        // Contiguous rows go in groups: many short ones (YOLOv8's opset-12 DFL softmax: 86 016
        // rows of 16) transposed so that the set-up per row does not cost more than the row,
        // long ones (rec's CTC softmax) a few side by side.
        let short = n <= SHORT_ROW;
        let group = n * if short { SHORT_GROUP } else { ROW_GROUP };
        let rows = |col: &mut Vec<f64>, (s, d): (&[T], &mut [T])| {
            if short { softmax_short_rows(s, n, d) } else { softmax_rows(s, n, col, d) }
        };
        if parallel {
            src.par_chunks(group).zip(out.par_chunks_mut(group)).for_each_init(Vec::new, rows);
        } else {
            let mut col = Vec::new();
            src.chunks(group).zip(out.chunks_mut(group)).for_each(|job| rows(&mut col, job));
        }
        return ArrayD::from_shape_vec(IxDyn(a.shape()), out).expect("same element count");
    }
    let dst_ptr = SendPtr(out.as_mut_ptr());
    // One exp per element (kept in `col` for the division), and the column buffer reused
    // across blocks: the same f64 arithmetic as computing exp twice, without its cost.
    let work = |col: &mut Vec<f64>, job: usize| {
        let (o, part) = (job / col_chunks, job % col_chunks);
        let s = &src[o * block..(o + 1) * block];
        // SAFETY: job (o, part) alone writes elements k·inner + j of block o for j in its
        // column range; `out` outlives the loop and is not otherwise touched meanwhile.
        let put = |k: usize, j: usize, v: T| unsafe { *dst_ptr.get().add(o * block + k * inner + j) = v };
        col.resize(n, 0.0);
        let columns = (part * inner / col_chunks)..((part + 1) * inner / col_chunks);
        if kind == SoftKind::Softmax {
            // SAFETY: as `put`.
            let dst = unsafe { dst_ptr.get().add(o * block) };
            softmax_columns(s, n, inner, columns, col, dst);
            return;
        }
        for j in columns {
            for (k, c) in col.iter_mut().enumerate() {
                *c = s[k * inner + j].to_f64();
            }
            match kind {
                SoftKind::Hardmax => {
                    let mut best = 0;
                    for k in 1..n {
                        if col[k] > col[best] {
                            best = k;
                        }
                    }
                    for k in 0..n {
                        put(k, j, T::from_f64(if k == best { 1.0 } else { 0.0 }));
                    }
                }
                SoftKind::Softmax => {
                    let m = col.iter().copied().fold(f64::NEG_INFINITY, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.max(x) });
                    crate::engine::kernels::exp::exp_shifted(col, m);
                    let sum: f64 = col.iter().sum();
                    for (k, &c) in col.iter().enumerate() {
                        put(k, j, T::from_f64(c / sum));
                    }
                }
                SoftKind::LogSoftmax => {
                    let m = col.iter().copied().fold(f64::NEG_INFINITY, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.max(x) });
                    let sum: f64 = col.iter().map(|x| (x - m).exp()).sum();
                    let ls = sum.ln();
                    for (k, &c) in col.iter().enumerate() {
                        put(k, j, T::from_f64(c - m - ls));
                    }
                }
            }
        }
    };
    let jobs = outer * col_chunks;
    if parallel && jobs > 1 {
        let min_jobs = (PAR_THRESHOLD / 4).checked_div(block / col_chunks).unwrap_or(1).max(1);
        (0..jobs).into_par_iter().with_min_len(min_jobs).for_each_init(Vec::new, work);
    } else if block > 0 {
        let mut col = Vec::new();
        (0..jobs).for_each(|j| work(&mut col, j));
    }
    ArrayD::from_shape_vec(IxDyn(a.shape()), out).expect("same element count")
}

impl Op for Soft {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let rank = shape.len();
        if rank == 0 {
            return Err(op_err!("input 0 is a scalar, expected rank >= 1"));
        }
        let (outer, n, inner) = if self.coerce_2d {
            let r = rank as i64;
            let a = if self.axis < 0 { self.axis + r } else { self.axis };
            if a < 0 || a > r {
                return Err(op_err!("axis {} is out of range for a rank-{rank} input", self.axis));
            }
            let a = a as usize;
            (shape[..a].iter().product::<usize>(), shape[a..].iter().product::<usize>(), 1)
        } else {
            let a = norm_axis(self.axis, rank, "axis")?;
            (shape[..a].iter().product::<usize>(), shape[a], shape[a + 1..].iter().product::<usize>())
        };
        let kind = self.kind;
        let out = match x {
            Tensor::F32(a) if kind == SoftKind::Softmax && inner == 1 && n > 0 => Tensor::F32(softmax_f32_rows(a, n)),
            Tensor::F32(a) => Tensor::F32(soft_array(a, outer, n, inner, kind)),
            Tensor::F64(a) => Tensor::F64(soft_array(a, outer, n, inner, kind)),
            Tensor::F16(a) => Tensor::F16(soft_array(a, outer, n, inner, kind)),
            other => return Err(op_err!("input 0 is {}, expected float, double or float16", other.dtype_name())),
        };
        Ok(vec![out])
    }
}

fn build_soft(ctx: &BuildContext, kind: SoftKind) -> OpResult<Box<dyn Op>> {
    let coerce_2d = ctx.opset < 13;
    let axis = ctx.attr_i("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(Box::new(Soft { kind, axis, coerce_2d }))
}

// ---------------------------------------------------------------------------------------
// CumSum

#[derive(Debug)]
struct CumSum {
    exclusive: bool,
    reverse: bool,
}

fn cumsum_array<T: Num>(a: &ArrayD<T>, axis: usize, exclusive: bool, reverse: bool) -> ArrayD<T> {
    let shape = a.shape();
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let src = a.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = vec![T::from_f64(0.0); src.len()];
    for o in 0..outer {
        for j in 0..inner {
            let mut acc = 0f64;
            for step in 0..n {
                let k = if reverse { n - 1 - step } else { step };
                let idx = o * n * inner + k * inner + j;
                let v = src[idx].to_f64();
                if exclusive {
                    out[idx] = T::from_f64(acc);
                    acc += v;
                } else {
                    acc += v;
                    out[idx] = T::from_f64(acc);
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(shape), out).expect("same element count")
}

impl Op for CumSum {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let ax = input(inputs, 1)?;
        let axv = ax.to_i64_vec().ok_or_else(|| op_err!("input 1 (axis) is {}, expected int32 or int64", ax.dtype_name()))?;
        if axv.len() != 1 {
            return Err(op_err!("input 1 (axis) has {} elements, expected a scalar", axv.len()));
        }
        let rank = x.shape().len();
        if rank == 0 {
            return Err(op_err!("input 0 is a scalar, expected rank >= 1"));
        }
        let axis = norm_axis(axv[0], rank, "axis")?;
        let (e, r) = (self.exclusive, self.reverse);
        let out = map_num!(x, a => cumsum_array(a, axis, e, r), bool => return Err(op_err!("input 0 is bool, expected a numeric tensor")));
        Ok(vec![out])
    }
}

// ---------------------------------------------------------------------------------------

pub fn register(r: &mut Registry) {
    r.register("ReduceSum", |c| build_reduce(c, Kind::Sum));
    r.register("ReduceMean", |c| build_reduce(c, Kind::Mean));
    r.register("ReduceMax", |c| build_reduce(c, Kind::Max));
    r.register("ReduceMin", |c| build_reduce(c, Kind::Min));
    r.register("ReduceProd", |c| build_reduce(c, Kind::Prod));
    r.register("ReduceL1", |c| build_reduce(c, Kind::L1));
    r.register("ReduceL2", |c| build_reduce(c, Kind::L2));
    r.register("ReduceSumSquare", |c| build_reduce(c, Kind::SumSquare));
    r.register("ReduceLogSum", |c| build_reduce(c, Kind::LogSum));
    r.register("ReduceLogSumExp", |c| build_reduce(c, Kind::LogSumExp));
    r.register("ArgMax", |c| build_arg(c, true));
    r.register("ArgMin", |c| build_arg(c, false));
    r.register("Softmax", |c| build_soft(c, SoftKind::Softmax));
    r.register("LogSoftmax", |c| build_soft(c, SoftKind::LogSoftmax));
    r.register("Hardmax", |c| build_soft(c, SoftKind::Hardmax));
    r.register("CumSum", |c| Ok(Box::new(CumSum { exclusive: c.attr_i("exclusive", 0)? != 0, reverse: c.attr_i("reverse", 0)? != 0 })));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
    }
    fn reduce(kind: Kind, axes: &[i64], keep: bool, x: &Tensor) -> OpResult<Tensor> {
        let op = Reduce { kind, keepdims: keep, noop_with_empty_axes: false, axes: Some(axes.to_vec()), axes_from_input: false };
        Ok(op.run(&[Some(x)])?.remove(0))
    }

    #[test]
    fn reduce_mean_and_sum() {
        // [[1,2],[3,4]]: mean over axis 1 = [1.5, 3.5]; sum over all = 10.
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let m = reduce(Kind::Mean, &[1], true, &x).unwrap();
        assert_eq!(m.shape(), &[2, 1]);
        assert_eq!(m.to_f64_vec(), vec![1.5, 3.5]);
        let s = reduce(Kind::Sum, &[], false, &x).unwrap();
        assert_eq!(s.shape(), &[] as &[usize]);
        assert_eq!(s.to_f64_vec(), vec![10.0]);
        // Axis 0 (non-trailing): max of columns = [3, 4]; L2 of columns = [sqrt(10), sqrt(20)].
        assert_eq!(reduce(Kind::Max, &[0], false, &x).unwrap().to_f64_vec(), vec![3.0, 4.0]);
        let l2 = reduce(Kind::L2, &[-2], false, &x).unwrap().to_f64_vec();
        assert!((l2[0] - 10f64.sqrt()).abs() < 1e-6 && (l2[1] - 20f64.sqrt()).abs() < 1e-6);
        // logsumexp([1,2]) = 2 + ln(1 + e^-1) = 2.3132617
        let lse = reduce(Kind::LogSumExp, &[1], false, &x).unwrap().to_f64_vec();
        assert!((lse[0] - 2.3132617).abs() < 1e-6);
    }

    /// Rows summed through the gathers are the in-order f64 sums from -0.0 (what
    /// `Kind::apply` computes) bit for bit: any row count up to and past a block, short and
    /// long rows, all -0.0 rows, NaN and infinities.
    #[test]
    fn gathered_row_sums_are_the_in_order_sums() {
        let mut seed = 17u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 1e3
        };
        for (rows, r) in [(1, 1), (3, 7), (16, 5), (17, 192), (32, 33), (40, 300), (70, 2)] {
            let mut x: Vec<f32> = (0..rows * r).map(|_| next()).collect();
            x[..r].fill(-0.0);
            if rows > 2 {
                x[r] = f32::NAN;
                x[2 * r + r / 2] = f32::INFINITY;
            }
            let a = ArrayD::from_shape_vec(IxDyn(&[rows, r]), x.clone()).unwrap();
            for kind in [Kind::Sum, Kind::Mean] {
                let got = reduce_array(&a, &[false, true], false, kind).unwrap();
                for (row, g) in x.chunks(r).zip(got.iter()) {
                    let want = kind.apply(row) as f32;
                    assert!(g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()), "{rows}x{r} {}: {g} vs {want}", kind.name());
                }
            }
        }
    }

    #[test]
    fn reduce_errors_and_empty() {
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let e = reduce(Kind::Sum, &[2], true, &x).unwrap_err().0;
        assert!(e.contains("out of range"), "{e}");
        // Empty reduction: sum = 0, prod = 1, max = -inf.
        let z = t(&[2, 0], &[]);
        assert_eq!(reduce(Kind::Sum, &[1], false, &z).unwrap().to_f64_vec(), vec![0.0, 0.0]);
        assert_eq!(reduce(Kind::Prod, &[1], false, &z).unwrap().to_f64_vec(), vec![1.0, 1.0]);
        assert_eq!(reduce(Kind::Max, &[1], false, &z).unwrap().to_f64_vec(), vec![f64::NEG_INFINITY; 2]);
    }

    #[test]
    fn argmax_softmax_hardmax() {
        let x = t(&[2, 3], &[1., 3., 3., 5., 0., 5.]);
        let op = Arg { max: true, axis: 1, keepdims: false, select_last: false };
        assert_eq!(op.run(&[Some(&x)]).unwrap()[0].to_f64_vec(), vec![1.0, 0.0]);
        let op = Arg { max: true, axis: 1, keepdims: false, select_last: true };
        assert_eq!(op.run(&[Some(&x)]).unwrap()[0].to_f64_vec(), vec![2.0, 2.0]);
        // softmax([1,3,3]) = e^{-2}/(e^{-2}+2), 1/(e^{-2}+2), ...
        let op = Soft { kind: SoftKind::Softmax, axis: -1, coerce_2d: false };
        let s = op.run(&[Some(&x)]).unwrap()[0].to_f64_vec();
        let d = (-2f64).exp() + 2.0;
        assert!((s[0] - (-2f64).exp() / d).abs() < 1e-6 && (s[1] - 1.0 / d).abs() < 1e-6);
        let op = Soft { kind: SoftKind::Hardmax, axis: 1, coerce_2d: false };
        assert_eq!(op.run(&[Some(&x)]).unwrap()[0].to_f64_vec(), vec![0., 1., 0., 1., 0., 0.]);
        let bad = Tensor::I64(ArrayD::zeros(IxDyn(&[2, 2])));
        assert!(op.run(&[Some(&bad)]).unwrap_err().0.contains("input 0 is int64"));
        let op = Soft { kind: SoftKind::Softmax, axis: 2, coerce_2d: false };
        assert!(op.run(&[Some(&x)]).unwrap_err().0.contains("out of range"));
    }

    #[test]
    fn softmax_fast_paths_equal_the_per_column_definition() {
        // Last axis (contiguous rows) and a middle axis (column tiles, partial last tile), with
        // NaN, ±inf and a wide range; reference: per column, f64 with libm exp, sum in order
        // (bit for bit on columns; f32 rows, computed in f32, within a few ulp).
        let (outer, n, inner) = (3usize, 16usize, 150usize);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut data: Vec<f32> = (0..outer * n * inner)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 / (1u64 << 53) as f64 * 80.0 - 50.0) as f32
            })
            .collect();
        data[5] = f32::NAN;
        data[inner + 7] = f32::INFINITY;
        data[2 * inner + 9] = f32::NEG_INFINITY;
        let reference = |axis_inner: usize, axis_n: usize| -> Vec<f32> {
            let mut out = vec![0f32; data.len()];
            for (o, block) in data.chunks(axis_n * axis_inner).enumerate() {
                for j in 0..axis_inner {
                    let col: Vec<f64> = (0..axis_n).map(|k| block[k * axis_inner + j] as f64).collect();
                    let m = col.iter().copied().fold(f64::NEG_INFINITY, |m, x| if x.is_nan() || m.is_nan() { f64::NAN } else { m.max(x) });
                    let e: Vec<f64> = col.iter().map(|x| (x - m).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for k in 0..axis_n {
                        out[o * axis_n * axis_inner + k * axis_inner + j] = (e[k] / sum) as f32;
                    }
                }
            }
            out
        };
        // Columns (axis 1), long rows (axis 2 of [3, 16, 150]) and short rows (axis 2 of [3, 150, 16]).
        for (shape, axis, axis_n, axis_inner) in
            [([outer, n, inner], 1i64, n, inner), ([outer, n, inner], 2, inner, 1), ([outer, inner, n], 2, n, 1)]
        {
            let x = t(&shape, &data);
            let op = Soft { kind: SoftKind::Softmax, axis, coerce_2d: false };
            let Tensor::F32(got) = &op.run(&[Some(&x)]).unwrap()[0] else { panic!("f32 expected") };
            let want = reference(axis_inner, axis_n);
            let got = got.as_slice().unwrap();
            if axis_inner > 1 {
                let bits = |v: &[f32]| v.iter().map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect::<Vec<_>>();
                assert_eq!(bits(got), bits(&want), "axis {axis}");
                continue;
            }
            // f32 rows are computed in f32 (kernels::softmax): within (4 + |x − max|) ulp.
            for ((row, g), w) in data.chunks(axis_n).zip(got.chunks(axis_n)).zip(want.chunks(axis_n)) {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for ((&x, &g), &w) in row.iter().zip(g).zip(w) {
                    let tol = (w as f64 * (5.0 + (x - m).abs() as f64) * f32::EPSILON as f64).max(1e-37);
                    assert!(g.is_nan() == w.is_nan() && (g.is_nan() || (g as f64 - w as f64).abs() <= tol), "axis {axis}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn cumsum_exclusive_reverse() {
        // [1,2,3] exclusive reverse: [2+3, 3, 0] = [5, 3, 0]
        let x = t(&[3], &[1., 2., 3.]);
        let ax = Tensor::I64(ArrayD::from_elem(IxDyn(&[]), 0));
        let op = CumSum { exclusive: true, reverse: true };
        assert_eq!(op.run(&[Some(&x), Some(&ax)]).unwrap()[0].to_f64_vec(), vec![5., 3., 0.]);
    }
}

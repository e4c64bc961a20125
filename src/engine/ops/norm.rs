//! Normalizations: BatchNormalization (inference), InstanceNormalization,
//! LayerNormalization and LpNormalization.
//!
//! BatchNormalization folds its four parameter vectors into one scale and one bias per
//! channel like ONNX Runtime (`a = scale / sqrt(var + eps)`, `b = B - mean * a`,
//! `y = x * a + b`). Statistics of Instance/LayerNormalization are accumulated in f64.

use ndarray::ArrayD;
use rayon::prelude::*;

use super::activation::Real;
use super::binary::{f16_to_f32, f32_to_f16, from_vec};
use super::common::{PAR_MIN, contiguous};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

/// A float parameter tensor as f64 values (float, double or float16).
fn float_param(inputs: &[Option<&Tensor>], i: usize, op: &str) -> OpResult<Vec<f64>> {
    let t = input(inputs, i)?;
    match t {
        Tensor::F32(_) | Tensor::F64(_) | Tensor::F16(_) => Ok(t.to_f64_vec()),
        _ => Err(op_err!("{op}: input {i} is {}, expected float, double or float16", t.dtype_name())),
    }
}

/// Runs `f` over consecutive rows of `row` elements of `src`/`out` (in parallel when big).
fn for_rows<T, O, F>(src: &[T], out: &mut [O], row: usize, f: F)
where
    T: Sync,
    O: Send,
    F: Fn(usize, &[T], &mut [O]) + Send + Sync,
{
    if row == 0 {
        return;
    }
    if src.len() >= PAR_MIN {
        let min_rows = (16384 / row).max(1);
        out.par_chunks_mut(row).zip(src.par_chunks(row)).enumerate().with_min_len(min_rows).for_each(|(r, (o, s))| f(r, s, o));
    } else {
        for (r, (o, s)) in out.chunks_mut(row).zip(src.chunks(row)).enumerate() {
            f(r, s, o);
        }
    }
}

/// X as a float array of type T (f16 goes through f32), and a way back.
macro_rules! float_dispatch {
    ($x:expr, $op:expr, |$a:ident| $body:expr) => {
        match $x {
            Tensor::F32($a) => {
                let (y, extra) = $body;
                (Tensor::F32(y), extra)
            }
            Tensor::F64($a) => {
                let (y, extra) = $body;
                (Tensor::F64(y), extra)
            }
            Tensor::F16(h) => {
                let $a = &f16_to_f32(h);
                let (y, extra) = $body;
                (Tensor::F16(f32_to_f16(&y)), extra)
            }
            other => return Err(op_err!("{}: input 0 is {}, expected float, double or float16", $op, other.dtype_name())),
        }
    };
}

// ---------------------------------------------------------------------------------------
// BatchNormalization

#[derive(Debug)]
struct BatchNormOp {
    eps: f32,
    /// How many outputs the node has (extra ones receive the unchanged running stats).
    outputs: usize,
}

/// Per-unit scale and bias `(a, b)` of an inference BatchNormalization with parameters
/// `[scale, B, mean, var]` (shared with the conv epilogue, so fused results are identical).
pub(crate) fn batchnorm_coeffs<T: Real>(p: &[Vec<f64>; 4], eps: f32) -> (Vec<T>, Vec<T>) {
    let eps = T::c(eps as f64);
    let one = T::c(1.0);
    (0..p[0].len())
        .map(|i| {
            let inv = one / (T::c(p[3][i]) + eps).sqrt();
            let a = inv * T::c(p[0][i]);
            (a, T::c(p[1][i]) - T::c(p[2][i]) * a)
        })
        .unzip()
}

fn batchnorm_t<T: Real>(x: &ArrayD<T>, p: &[Vec<f64>; 4], eps: f32) -> OpResult<ArrayD<T>> {
    let shape = x.shape();
    if shape.len() < 2 {
        return Err(op_err!("BatchNormalization: input 0 has shape {shape:?}, expected rank >= 2 (N x C x ...)"));
    }
    let c = shape[1];
    let inner: usize = shape[2..].iter().product();
    let units = p[0].len();
    for (k, v) in p.iter().enumerate() {
        if v.len() != units || (units != c && units != c * inner) {
            return Err(op_err!(
                "BatchNormalization: input {} has {} elements, expected {c} (channels of X with shape {shape:?})",
                k + 1,
                v.len()
            ));
        }
    }
    let (a, b) = batchnorm_coeffs::<T>(p, eps);
    let row = if units == c { inner } else { 1 };
    let src = contiguous(x);
    let mut out = vec![T::zero(); src.len()];
    for_rows(&src, &mut out, row, |r, s, o| {
        let u = r % units;
        let (a, b) = (a[u], b[u]);
        for (o, &v) in o.iter_mut().zip(s) {
            *o = v * a + b;
        }
    });
    Ok(from_vec(shape, out))
}

impl Op for BatchNormOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let p = [
            float_param(inputs, 1, "BatchNormalization")?,
            float_param(inputs, 2, "BatchNormalization")?,
            float_param(inputs, 3, "BatchNormalization")?,
            float_param(inputs, 4, "BatchNormalization")?,
        ];
        let (y, ()) = float_dispatch!(x, "BatchNormalization", |a| (batchnorm_t(a, &p, self.eps)?, ()));
        let mut out = vec![y];
        for k in 1..self.outputs {
            out.push(input(inputs, if k % 2 == 1 { 3 } else { 4 })?.clone());
        }
        Ok(out)
    }
}

fn build_batchnorm(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if ctx.opset >= 14 && ctx.attr_i("training_mode", 0)? != 0 {
        return Err(op_err!("attribute 'training_mode' is 1, only inference (0) is supported"));
    }
    // Opsets < 7 `is_test` and < 9 `spatial` are ignored like ONNX Runtime does at inference
    // (non-spatial parameters of C x D1 x ... elements are still honoured by their size).
    let outputs = ctx.node.output.len().max(1);
    Ok(Box::new(BatchNormOp { eps: ctx.attr_f("epsilon", 1e-5)?, outputs }))
}

// ---------------------------------------------------------------------------------------
// InstanceNormalization

#[derive(Debug)]
struct InstanceNormOp {
    eps: f32,
}

/// Mean and population variance of `s` in f64.
fn moments<T: Real>(s: &[T]) -> (f64, f64) {
    let n = s.len().max(1) as f64;
    let mean = s.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let var = s.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

fn instancenorm_t<T: Real>(x: &ArrayD<T>, scale: &[f64], bias: &[f64], eps: f32) -> OpResult<ArrayD<T>> {
    let shape = x.shape();
    if shape.len() < 3 {
        return Err(op_err!("InstanceNormalization: input 0 has shape {shape:?}, expected rank >= 3 (N x C x D1 ...)"));
    }
    let c = shape[1];
    for (i, v) in [(1, scale), (2, bias)] {
        if v.len() != c {
            return Err(op_err!("InstanceNormalization: input {i} has {} elements, expected {c} (channels of X)", v.len()));
        }
    }
    let inner: usize = shape[2..].iter().product();
    let src = contiguous(x);
    let mut out = vec![T::zero(); src.len()];
    let eps = eps as f64;
    for_rows(&src, &mut out, inner, |r, s, o| {
        let ch = r % c;
        let (mean, var) = moments(s);
        let a = scale[ch] / (var + eps).sqrt();
        let b = bias[ch];
        for (o, &v) in o.iter_mut().zip(s) {
            *o = T::c((v.to_f64() - mean) * a + b);
        }
    });
    Ok(from_vec(shape, out))
}

impl Op for InstanceNormOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let scale = float_param(inputs, 1, "InstanceNormalization")?;
        let bias = float_param(inputs, 2, "InstanceNormalization")?;
        let (y, ()) = float_dispatch!(x, "InstanceNormalization", |a| (instancenorm_t(a, &scale, &bias, self.eps)?, ()));
        Ok(vec![y])
    }
}

// ---------------------------------------------------------------------------------------
// LayerNormalization

#[derive(Debug)]
struct LayerNormOp {
    axis: i64,
    eps: f32,
    outputs: usize,
}

/// `v` (input `i`, shape `s`) broadcast unidirectionally to the normalized shape `norm`.
fn norm_param(v: Vec<f64>, s: &[usize], norm: &[usize], i: usize) -> OpResult<Vec<f64>> {
    let count: usize = norm.iter().product();
    if v.len() == count && s.iter().product::<usize>() == count && s.len() <= norm.len() {
        return Ok(v);
    }
    let a = ArrayD::from_shape_vec(ndarray::IxDyn(s), v).map_err(|e| op_err!("LayerNormalization: input {i}: {e}"))?;
    let b = a
        .broadcast(ndarray::IxDyn(norm))
        .ok_or_else(|| op_err!("LayerNormalization: input {i} with shape {s:?} does not broadcast to the normalized shape {norm:?}"))?;
    Ok(b.iter().copied().collect())
}

type LayerNormOut<T> = (ArrayD<T>, (Vec<f64>, Vec<f64>));

fn layernorm_t<T: Real>(x: &ArrayD<T>, axis: usize, scale: &[f64], bias: Option<&[f64]>, eps: f32) -> LayerNormOut<T> {
    let shape = x.shape();
    let inner: usize = shape[axis..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let src = contiguous(x);
    let mut out = vec![T::zero(); src.len()];
    let mut stats = vec![(0.0, 0.0); outer];
    let eps = eps as f64;
    let row = |s: &[T], o: &mut [T], st: &mut (f64, f64)| {
        let (mean, var) = moments(s);
        let inv = 1.0 / (var + eps).sqrt();
        *st = (mean, inv);
        for (k, (o, &v)) in o.iter_mut().zip(s).enumerate() {
            let y = (v.to_f64() - mean) * inv * scale[k];
            *o = T::c(match bias {
                Some(b) => y + b[k],
                None => y,
            });
        }
    };
    if inner > 0 {
        if src.len() >= PAR_MIN {
            out.par_chunks_mut(inner)
                .zip(src.par_chunks(inner))
                .zip(stats.par_iter_mut())
                .with_min_len((16384 / inner).max(1))
                .for_each(|((o, s), st)| row(s, o, st));
        } else {
            for ((o, s), st) in out.chunks_mut(inner).zip(src.chunks(inner)).zip(stats.iter_mut()) {
                row(s, o, st);
            }
        }
    }
    (from_vec(shape, out), stats.into_iter().unzip())
}

impl Op for LayerNormOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let r = shape.len() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        if axis < 0 || axis >= r.max(1) {
            return Err(op_err!("LayerNormalization: attribute 'axis' = {} is out of range for input 0 of rank {r}", self.axis));
        }
        let axis = axis as usize;
        let norm = &shape[axis.min(shape.len())..];
        let scale_t = input(inputs, 1)?;
        let scale = norm_param(float_param(inputs, 1, "LayerNormalization")?, scale_t.shape(), norm, 1)?;
        let bias = match inputs.get(2).copied().flatten() {
            Some(b) => Some(norm_param(float_param(inputs, 2, "LayerNormalization")?, b.shape(), norm, 2)?),
            None => None,
        };
        let (y, (mean, inv)) = float_dispatch!(x, "LayerNormalization", |a| layernorm_t(a, axis, &scale, bias.as_deref(), self.eps));
        let mut out = vec![y];
        if self.outputs > 1 {
            let stat_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if i < axis { d } else { 1 }).collect();
            let wrap = |v: Vec<f64>| match x {
                Tensor::F64(_) => Tensor::F64(from_vec(&stat_shape, v)),
                _ => Tensor::F32(from_vec(&stat_shape, v.into_iter().map(|m| m as f32).collect())),
            };
            out.push(wrap(mean));
            out.push(wrap(inv));
        }
        Ok(out)
    }
}

fn build_layernorm(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let stash = ctx.attr_i("stash_type", 1)?;
    if stash != 1 && stash != 11 {
        return Err(op_err!("attribute 'stash_type' is {stash}, expected 1 (float) or 11 (double)"));
    }
    Ok(Box::new(LayerNormOp { axis: ctx.attr_i("axis", -1)?, eps: ctx.attr_f("epsilon", 1e-5)?, outputs: ctx.node.output.len() }))
}

// ---------------------------------------------------------------------------------------
// LpNormalization

#[derive(Debug)]
struct LpNormOp {
    axis: i64,
    p: i64,
}

fn lpnorm_t<T: Real>(x: &ArrayD<T>, axis: usize, p: i64) -> ArrayD<T> {
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let src = contiguous(x);
    let mut out = vec![T::zero(); src.len()];
    if n == 0 || inner == 0 {
        return from_vec(shape, out);
    }
    for (o, s) in out.chunks_mut(n * inner).zip(src.chunks(n * inner)) {
        for j in 0..inner {
            let norm = (0..n)
                .map(|k| {
                    let v = s[k * inner + j].to_f64();
                    if p == 1 { v.abs() } else { v * v }
                })
                .sum::<f64>();
            let norm = if p == 1 { norm } else { norm.sqrt() };
            // A zero norm gives zeros (ONNX Runtime), not NaN.
            for k in 0..n {
                let v = s[k * inner + j].to_f64();
                o[k * inner + j] = T::c(if norm == 0.0 { 0.0 } else { v / norm });
            }
        }
    }
    from_vec(shape, out)
}

impl Op for LpNormOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let r = x.shape().len() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        if axis < 0 || axis >= r {
            return Err(op_err!("LpNormalization: attribute 'axis' = {} is out of range for input 0 of rank {r}", self.axis));
        }
        let (y, ()) = float_dispatch!(x, "LpNormalization", |a| (lpnorm_t(a, axis as usize, self.p), ()));
        Ok(vec![y])
    }
}

fn build_lpnorm(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let p = ctx.attr_i("p", 2)?;
    if p != 1 && p != 2 {
        return Err(op_err!("attribute 'p' is {p}, expected 1 or 2"));
    }
    Ok(Box::new(LpNormOp { axis: ctx.attr_i("axis", -1)?, p }))
}

pub fn register(r: &mut Registry) {
    r.register("BatchNormalization", build_batchnorm);
    r.register("InstanceNormalization", |c| Ok(Box::new(InstanceNormOp { eps: c.attr_f("epsilon", 1e-5)? })));
    r.register("LayerNormalization", build_layernorm);
    r.register("LpNormalization", build_lpnorm);
}

#[cfg(test)]
mod tests {
    use super::super::binary::test_util::*;

    #[test]
    fn batchnorm_inference() {
        // Channel 0: scale 2, B 1, mean 1, var 4 -> y = (x - 1) / 2 * 2 + 1 = x (eps 0).
        // Channel 1: scale 1, B 0, mean 0, var 1 -> y = x.
        let op = build("BatchNormalization", 15, vec![float("epsilon", 0.0)], 5, 1).unwrap();
        let x = f32t(&[1, 2, 2], &[3.0, 5.0, -1.0, 4.0]);
        let p = [f32t(&[2], &[2.0, 1.0]), f32t(&[2], &[1.0, 0.0]), f32t(&[2], &[1.0, 0.0]), f32t(&[2], &[4.0, 1.0])];
        let out = op.run(&[Some(&x), Some(&p[0]), Some(&p[1]), Some(&p[2]), Some(&p[3])]).unwrap();
        assert_close(&out[0], &[3.0, 5.0, -1.0, 4.0], 1e-7);
        let e = op.run(&[Some(&x), Some(&f32t(&[3], &[1.0; 3])), Some(&p[1]), Some(&p[2]), Some(&p[3])]).unwrap_err().0;
        assert!(e.contains("input 1 has 3 elements, expected 2"), "{e}");
        let e = build("BatchNormalization", 15, vec![int("training_mode", 1)], 5, 1).unwrap_err().0;
        assert!(e.contains("'training_mode'"), "{e}");
    }

    #[test]
    fn instance_and_layer_norm() {
        // One row [1, 3]: mean 2, var 1 -> (x - 2) / 1 = [-1, 1]; scale 2, bias 1 -> [-1, 3].
        let op = build("InstanceNormalization", 6, vec![float("epsilon", 0.0)], 3, 1).unwrap();
        let x = f32t(&[1, 1, 2], &[1.0, 3.0]);
        let (s, b) = (f32t(&[1], &[2.0]), f32t(&[1], &[1.0]));
        assert_close(&op.run(&[Some(&x), Some(&s), Some(&b)]).unwrap()[0], &[-1.0, 3.0], 1e-7);
        // LayerNorm over the last axis of [[1, 3], [0, 4]]: means 2, 2; inv std 1, 0.5.
        let op = build("LayerNormalization", 17, vec![float("epsilon", 0.0)], 2, 3).unwrap();
        let x = f32t(&[2, 2], &[1.0, 3.0, 0.0, 4.0]);
        let s = f32t(&[2], &[1.0, 1.0]);
        let out = op.run(&[Some(&x), Some(&s)]).unwrap();
        assert_close(&out[0], &[-1.0, 1.0, -1.0, 1.0], 1e-7);
        assert_eq!(out[1].shape(), &[2, 1]);
        assert_close(&out[1], &[2.0, 2.0], 0.0);
        assert_close(&out[2], &[1.0, 0.5], 0.0);
        let op = build("LayerNormalization", 17, vec![int("axis", 2)], 2, 1).unwrap();
        let e = op.run(&[Some(&x), Some(&s)]).unwrap_err().0;
        assert!(e.contains("'axis' = 2 is out of range"), "{e}");
    }

    #[test]
    fn lp_norm() {
        // L2 over the last axis of [3, 4]: norm 5 -> [0.6, 0.8]; a zero row stays zero.
        let op = build("LpNormalization", 1, vec![], 1, 1).unwrap();
        let x = f32t(&[2, 2], &[3.0, 4.0, 0.0, 0.0]);
        assert_close(&op.run(&[Some(&x)]).unwrap()[0], &[0.6, 0.8, 0.0, 0.0], 1e-7);
        let e = build("LpNormalization", 1, vec![int("p", 3)], 1, 1).unwrap_err().0;
        assert!(e.contains("'p' is 3"), "{e}");
    }
}

//! MatMul (numpy semantics: 1-D operands, batched with broadcasting) and Gemm (alpha, beta,
//! transA, transB, optional unidirectionally broadcast C). float32/float64 go through the
//! `gemm` crate, float16 is computed in float32, integer types with a plain loop.

use half::f16;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::common::contiguous;
use crate::engine::error::OpResult;
use crate::engine::kernels::gemm::{GemmElem, MatRef, gemm};
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("MatMul", build_matmul);
    r.register("Gemm", build_gemm);
}

fn to_f32(a: &ArrayD<f16>) -> ArrayD<f32> {
    a.mapv(f32::from)
}

fn from_f32(a: ArrayD<f32>) -> ArrayD<f16> {
    a.mapv(f16::from_f32)
}

fn dtype_mismatch(a: &Tensor, b: &Tensor, i: usize) -> crate::engine::OpError {
    op_err!("input {i} is {}, expected {} like input 0", b.dtype_name(), a.dtype_name())
}

// ---------------------------------------------------------------------------------------
// MatMul

#[derive(Debug)]
struct MatMul;

fn build_matmul(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if super::int8::is_int8_layer(ctx) {
        return super::int8::build_matmul(ctx, false);
    }
    Ok(Box::new(MatMul))
}

/// Broadcasts two batch shapes (numpy rules), naming the inputs on error.
fn broadcast_batch(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(op_err!("batch dimensions {a:?} of input 0 and {b:?} of input 1 cannot be broadcast together"));
            }
        };
    }
    Ok(out)
}

/// Offsets of each output batch entry into a (right-aligned, broadcast) operand with batch
/// shape `dims` whose matrices have `mat` elements.
fn batch_offsets(out_batch: &[usize], dims: &[usize], mat: usize) -> Vec<usize> {
    let r = out_batch.len();
    let mut strides = vec![0; r];
    let mut s = mat;
    for i in (0..dims.len()).rev() {
        let oi = i + r - dims.len();
        strides[oi] = if dims[i] == 1 { 0 } else { s };
        s *= dims[i];
    }
    let count: usize = out_batch.iter().product();
    let mut offs = Vec::with_capacity(count);
    let mut idx = vec![0; r];
    for _ in 0..count {
        offs.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..r).rev() {
            idx[d] += 1;
            if idx[d] < out_batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    offs
}

fn matmul_t<T: GemmElem + Default>(a: &ArrayD<T>, b: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    let (ash, bsh) = (a.shape(), b.shape());
    if ash.is_empty() || bsh.is_empty() {
        return Err(op_err!("MatMul inputs must have rank >= 1 (input 0 {ash:?}, input 1 {bsh:?})"));
    }
    let a2: Vec<usize> = if ash.len() == 1 { vec![1, ash[0]] } else { ash.to_vec() };
    let b2: Vec<usize> = if bsh.len() == 1 { vec![bsh[0], 1] } else { bsh.to_vec() };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb {
        return Err(op_err!("input 0 {ash:?} has inner dimension {k} but input 1 {bsh:?} has {kb}: they must be equal"));
    }
    let (abatch, bbatch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let out_batch = broadcast_batch(abatch, bbatch)?;
    let count: usize = out_batch.iter().product();
    let mut shape = out_batch.clone();
    if ash.len() > 1 {
        shape.push(m);
    }
    if bsh.len() > 1 {
        shape.push(n);
    }
    let ad = contiguous(a);
    let bd = contiguous(b);
    let mut out = vec![T::default(); count * m * n];
    let threads = rayon::current_num_threads();
    let a_count: usize = abatch.iter().product();
    let b_count: usize = bbatch.iter().product();
    if count > 0 && m * n > 0 {
        if b_count == 1 && a_count == count {
            // B shared by every batch entry: one (count·M × K)·(K × N) product.
            let am = MatRef::row_major(&ad, count * m, k);
            gemm(&mut out, n, am, MatRef::row_major(&bd, k, n), false, T::ONE, threads);
        } else {
            let ao = batch_offsets(&out_batch, abatch, m * k);
            let bo = batch_offsets(&out_batch, bbatch, k * n);
            let one = |i: usize, o: &mut [T], threads: usize| {
                let am = MatRef::row_major(&ad[ao[i]..ao[i] + m * k], m, k);
                let bm = MatRef::row_major(&bd[bo[i]..bo[i] + k * n], k, n);
                gemm(o, n, am, bm, false, T::ONE, threads);
            };
            if count >= threads && count * m * n * k >= 1 << 16 {
                out.par_chunks_mut(m * n).enumerate().for_each(|(i, o)| one(i, o, 1));
            } else {
                out.chunks_mut(m * n).enumerate().for_each(|(i, o)| one(i, o, threads));
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| op_err!("output shape {shape:?}: {e}"))
}

impl Op for MatMul {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let out = match (a, b) {
            (Tensor::F32(x), Tensor::F32(y)) => Tensor::F32(matmul_t(x, y)?),
            (Tensor::F64(x), Tensor::F64(y)) => Tensor::F64(matmul_t(x, y)?),
            (Tensor::F16(x), Tensor::F16(y)) => Tensor::F16(from_f32(matmul_t(&to_f32(x), &to_f32(y))?)),
            (Tensor::I32(x), Tensor::I32(y)) => Tensor::I32(matmul_t(x, y)?),
            (Tensor::I64(x), Tensor::I64(y)) => Tensor::I64(matmul_t(x, y)?),
            (Tensor::U32(x), Tensor::U32(y)) => Tensor::U32(matmul_t(x, y)?),
            (Tensor::U64(x), Tensor::U64(y)) => Tensor::U64(matmul_t(x, y)?),
            (x, y) if x.dtype() != y.dtype() => return Err(dtype_mismatch(x, y, 1)),
            (x, _) => {
                return Err(op_err!("input 0 is {}, expected float, double, float16, int32, int64, uint32 or uint64", x.dtype_name()));
            }
        };
        Ok(vec![out])
    }
}

// ---------------------------------------------------------------------------------------
// Gemm

#[derive(Debug)]
struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

fn build_gemm(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if super::int8::is_int8_layer(ctx) {
        return super::int8::build_matmul(ctx, true);
    }
    let flag = |name: &str| -> OpResult<bool> {
        match ctx.attr_i(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(op_err!("attribute '{name}' = {v}: expected 0 or 1")),
        }
    };
    // Before opset 7 C broadcast only with broadcast=1; broadcasting always is a superset.
    if ctx.opset < 11 && !ctx.has_input(2) {
        return Err(op_err!("input 2 (C) is required before opset 11 (model opset {})", ctx.opset));
    }
    Ok(Box::new(Gemm {
        alpha: ctx.attr_f("alpha", 1.0)?,
        beta: ctx.attr_f("beta", 1.0)?,
        trans_a: flag("transA")?,
        trans_b: flag("transB")?,
    }))
}

/// Scalar conversions for alpha/beta (given as float attributes).
trait FromF32 {
    fn from_f32(v: f32) -> Self;
}
macro_rules! from_f32_impl {
    ($($t:ty),*) => {$(impl FromF32 for $t { fn from_f32(v: f32) -> Self { v as $t } })*};
}
from_f32_impl!(f32, f64, i32, i64, u32, u64);

impl Gemm {
    fn run_t<T: GemmElem + Default + FromF32>(&self, a: &ArrayD<T>, b: &ArrayD<T>, c: Option<&ArrayD<T>>) -> OpResult<ArrayD<T>> {
        if a.ndim() != 2 {
            return Err(op_err!("input 0 (A) has shape {:?}, expected a 2-D matrix", a.shape()));
        }
        if b.ndim() != 2 {
            return Err(op_err!("input 1 (B) has shape {:?}, expected a 2-D matrix", b.shape()));
        }
        let (ash, bsh) = (a.shape(), b.shape());
        let (m, k) = if self.trans_a { (ash[1], ash[0]) } else { (ash[0], ash[1]) };
        let (kb, n) = if self.trans_b { (bsh[1], bsh[0]) } else { (bsh[0], bsh[1]) };
        if k != kb {
            return Err(op_err!(
                "input 0 (A) {ash:?} (transA={}) gives K = {k} but input 1 (B) {bsh:?} (transB={}) gives K = {kb}",
                self.trans_a as u8,
                self.trans_b as u8
            ));
        }
        let mut out = vec![T::default(); m * n];
        let use_c = c.filter(|_| self.beta != 0.0);
        if let Some(c) = use_c {
            let cs = c.shape();
            let ok = cs.len() <= 2 && cs.iter().rev().zip([n, m]).all(|(&d, want)| d == 1 || d == want);
            if !ok {
                return Err(op_err!("input 2 (C) has shape {cs:?}, which does not broadcast to ({m}, {n})"));
            }
            let (cm, cn) = match cs.len() {
                0 => (1, 1),
                1 => (1, cs[0]),
                _ => (cs[0], cs[1]),
            };
            let cd = contiguous(c);
            let beta = T::from_f32(self.beta);
            for i in 0..m {
                let crow = &cd[(if cm == 1 { 0 } else { i }) * cn..][..cn];
                for (j, o) in out[i * n..(i + 1) * n].iter_mut().enumerate() {
                    *o = beta * crow[if cn == 1 { 0 } else { j }];
                }
            }
        }
        let ad = contiguous(a);
        let bd = contiguous(b);
        let mut am = MatRef::row_major(&ad, ash[0], ash[1]);
        if self.trans_a {
            am = am.t();
        }
        let mut bm = MatRef::row_major(&bd, bsh[0], bsh[1]);
        if self.trans_b {
            bm = bm.t();
        }
        gemm(&mut out, n, am, bm, use_c.is_some(), T::from_f32(self.alpha), rayon::current_num_threads());
        ArrayD::from_shape_vec(IxDyn(&[m, n]), out).map_err(|e| op_err!("output shape [{m}, {n}]: {e}"))
    }
}

impl Op for Gemm {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let c = inputs.get(2).copied().flatten();
        if b.dtype() != a.dtype() {
            return Err(dtype_mismatch(a, b, 1));
        }
        if let Some(c) = c
            && c.dtype() != a.dtype()
        {
            return Err(dtype_mismatch(a, c, 2));
        }
        macro_rules! typed {
            ($v:ident) => {{
                let (Tensor::$v(x), Tensor::$v(y)) = (a, b) else { unreachable!("dtypes checked above") };
                let z = match c {
                    Some(Tensor::$v(z)) => Some(z),
                    _ => None,
                };
                Tensor::$v(self.run_t(x, y, z)?)
            }};
        }
        let out = match a {
            Tensor::F32(_) => typed!(F32),
            Tensor::F64(_) => typed!(F64),
            Tensor::I32(_) => typed!(I32),
            Tensor::I64(_) => typed!(I64),
            Tensor::U32(_) => typed!(U32),
            Tensor::U64(_) => typed!(U64),
            Tensor::F16(x) => {
                let Tensor::F16(y) = b else { unreachable!("dtypes checked above") };
                let z = match c {
                    Some(Tensor::F16(z)) => Some(to_f32(z)),
                    _ => None,
                };
                Tensor::F16(from_f32(self.run_t(&to_f32(x), &to_f32(y), z.as_ref())?))
            }
            other => {
                return Err(op_err!(
                    "input 0 (A) is {}, expected float, double, float16, int32, int64, uint32 or uint64",
                    other.dtype_name()
                ));
            }
        };
        Ok(vec![out])
    }
}

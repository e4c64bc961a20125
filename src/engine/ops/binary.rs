//! Numpy-broadcasting element-wise ops: arithmetic (Add, Sub, Mul, Div, Pow, Mod), variadic
//! Min/Max/Sum/Mean, comparisons, logical ops, Where, PRelu and BitShift.
//!
//! The broadcasting kernel collapses both operands onto the output shape, merges adjacent
//! dimensions that stay contiguous for both, and runs the innermost run as a tight slice
//! loop (slice op slice, slice op scalar or scalar op slice). Same-shape, scalar and
//! per-channel (`[1,C,1,1]` against `[N,C,H,W]`) operands therefore never do per-element
//! index arithmetic. Large outputs are split across rayon threads.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use half::f16;
use ndarray::{ArrayD, IxDyn, Zip};
use rayon::prelude::*;

use super::common::{Num, PAR_MIN, contiguous, par_chunk};
use crate::engine::error::OpResult;
use crate::engine::kernels::exp::with_wide_vectors;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

/// Wraps row-major `data` (whose length is the product of `shape`) as an array.
pub(crate) fn from_vec<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("element count equals the shape's product")
}

/// A vector of `n` elements that `fill` writes, every one of them, without zeroing the memory
/// first: element-wise ops are memory-bound, and a zero-fill pass costs as much as the op.
pub(crate) fn filled_vec<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    fill(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: callers write all n elements (each caller walks the whole slice once).
    unsafe { out.set_len(n) };
    out
}

/// `f` applied to every element of `a` (same shape).
pub(crate) fn map_array<A, O, F>(a: &ArrayD<A>, f: F) -> ArrayD<O>
where
    A: Copy + Send + Sync,
    O: Copy + Default + Send + Sync,
    F: Fn(A) -> O + Send + Sync,
{
    let src = contiguous(a);
    let out = filled_vec(src.len(), |out| {
        // Built for the widest vectors the CPU has: the same operations, so the same results.
        let run = |o: &mut [MaybeUninit<O>], s: &[A]| {
            with_wide_vectors(
                #[inline(always)]
                || {
                    for (o, &x) in o.iter_mut().zip(s) {
                        o.write(f(x));
                    }
                },
            )
        };
        if src.len() >= PAR_MIN {
            let ch = par_chunk(src.len());
            out.par_chunks_mut(ch).zip(src.par_chunks(ch)).for_each(|(o, s)| run(o, s));
        } else {
            run(out, &src);
        }
    });
    from_vec(a.shape(), out)
}

/// Multidirectional (numpy) broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Broadcast shape of inputs `ia` and `ib`, or an error naming them.
pub(crate) fn broadcast_or_err(a: &[usize], b: &[usize], ia: usize, ib: usize) -> OpResult<Vec<usize>> {
    broadcast_shape(a, b).ok_or_else(|| op_err!("input {ia} with shape {a:?} and input {ib} with shape {b:?} are not broadcastable"))
}

/// Iteration plan of a two-operand broadcast: collapsed output dimensions and the element
/// strides of each operand along them (0 where the operand is broadcast).
struct Plan {
    dims: Vec<usize>,
    sa: Vec<usize>,
    sb: Vec<usize>,
}

fn padded_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let mut strides = vec![0; r];
    let mut acc = 1;
    for i in (0..r).rev() {
        let d = if i + shape.len() >= r { shape[i + shape.len() - r] } else { 1 };
        strides[i] = if d == 1 { 0 } else { acc };
        acc *= d;
    }
    strides
}

impl Plan {
    fn new(a: &[usize], b: &[usize], out: &[usize]) -> Plan {
        let (ta, tb) = (padded_strides(a, out), padded_strides(b, out));
        let mut plan = Plan { dims: Vec::new(), sa: Vec::new(), sb: Vec::new() };
        for i in 0..out.len() {
            let n = out[i];
            if n == 1 {
                continue;
            }
            if let Some(last) = plan.dims.len().checked_sub(1)
                && plan.sa[last] == ta[i] * n
                && plan.sb[last] == tb[i] * n
            {
                plan.dims[last] *= n;
                plan.sa[last] = ta[i];
                plan.sb[last] = tb[i];
                continue;
            }
            plan.dims.push(n);
            plan.sa.push(ta[i]);
            plan.sb.push(tb[i]);
        }
        if plan.dims.is_empty() {
            plan = Plan { dims: vec![1], sa: vec![0], sb: vec![0] };
        }
        plan
    }

    /// Computes output elements `start..start + out.len()`.
    fn run<A: Copy, B: Copy, O: Copy, F: Fn(A, B) -> O>(&self, a: &[A], b: &[B], out: &mut [MaybeUninit<O>], start: usize, f: &F) {
        let k = self.dims.len();
        let inner = self.dims[k - 1];
        let (ia, ib) = (self.sa[k - 1], self.sb[k - 1]);
        let mut row = start / inner;
        let mut p = start % inner;
        // Odometer over the outer dimensions.
        let mut idx = vec![0; k - 1];
        let (mut oa, mut ob) = (0, 0);
        for d in (0..k - 1).rev() {
            idx[d] = row % self.dims[d];
            row /= self.dims[d];
            oa += idx[d] * self.sa[d];
            ob += idx[d] * self.sb[d];
        }
        let mut pos = 0;
        while pos < out.len() {
            let len = (inner - p).min(out.len() - pos);
            let o = &mut out[pos..pos + len];
            match (ia, ib) {
                (0, 0) => {
                    let v = f(a[oa], b[ob]);
                    o.iter_mut().for_each(|o| {
                        o.write(v);
                    });
                }
                (0, _) => {
                    let x = a[oa];
                    for (o, &y) in o.iter_mut().zip(&b[ob + p..ob + p + len]) {
                        o.write(f(x, y));
                    }
                }
                (_, 0) => {
                    let y = b[ob];
                    for (o, &x) in o.iter_mut().zip(&a[oa + p..oa + p + len]) {
                        o.write(f(x, y));
                    }
                }
                _ => {
                    for ((o, &x), &y) in o.iter_mut().zip(&a[oa + p..oa + p + len]).zip(&b[ob + p..ob + p + len]) {
                        o.write(f(x, y));
                    }
                }
            }
            pos += len;
            p = 0;
            for d in (0..k - 1).rev() {
                idx[d] += 1;
                oa += self.sa[d];
                ob += self.sb[d];
                if idx[d] < self.dims[d] {
                    break;
                }
                oa -= self.sa[d] * self.dims[d];
                ob -= self.sb[d] * self.dims[d];
                idx[d] = 0;
            }
        }
    }
}

/// `f` applied element-wise to `a` and `b` broadcast against each other.
pub(crate) fn zip_map<A, B, O, F>(a: &ArrayD<A>, b: &ArrayD<B>, f: F) -> OpResult<ArrayD<O>>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    O: Copy + Default + Send + Sync,
    F: Fn(A, B) -> O + Send + Sync,
{
    let shape = broadcast_or_err(a.shape(), b.shape(), 0, 1)?;
    let n: usize = shape.iter().product();
    let (sa, sb) = (contiguous(a), contiguous(b));
    let plan = Plan::new(a.shape(), b.shape(), &shape);
    let out = filled_vec(n, |out| {
        if n >= PAR_MIN {
            let ch = par_chunk(n);
            out.par_chunks_mut(ch).enumerate().for_each(|(i, o)| plan.run(&sa, &sb, o, i * ch, &f));
        } else if n > 0 {
            plan.run(&sa, &sb, out, 0, &f);
        }
    });
    Ok(from_vec(&shape, out))
}

pub(crate) fn f16_to_f32(a: &ArrayD<f16>) -> ArrayD<f32> {
    map_array(a, |x: f16| x.to_f32())
}

pub(crate) fn f32_to_f16(a: &ArrayD<f32>) -> ArrayD<f16> {
    map_array(a, f16::from_f32)
}

/// Runs `$body` (generic over the element type, with `$x`/`$y` bound to the two arrays)
/// for two tensors of the same numeric type other than float16 and bool; `None` otherwise.
macro_rules! numeric_pair {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Tensor::F32($x), Tensor::F32($y)) => Some(Tensor::F32($body)),
            (Tensor::F64($x), Tensor::F64($y)) => Some(Tensor::F64($body)),
            (Tensor::I8($x), Tensor::I8($y)) => Some(Tensor::I8($body)),
            (Tensor::U8($x), Tensor::U8($y)) => Some(Tensor::U8($body)),
            (Tensor::I16($x), Tensor::I16($y)) => Some(Tensor::I16($body)),
            (Tensor::U16($x), Tensor::U16($y)) => Some(Tensor::U16($body)),
            (Tensor::I32($x), Tensor::I32($y)) => Some(Tensor::I32($body)),
            (Tensor::U32($x), Tensor::U32($y)) => Some(Tensor::U32($body)),
            (Tensor::I64($x), Tensor::I64($y)) => Some(Tensor::I64($body)),
            (Tensor::U64($x), Tensor::U64($y)) => Some(Tensor::U64($body)),
            _ => None,
        }
    };
}

/// Like [`numeric_pair`] for one tensor, re-wrapping the result in the same variant.
macro_rules! numeric_one {
    ($a:expr, |$x:ident| $body:expr) => {
        match $a {
            Tensor::F32($x) => Some(Tensor::F32($body)),
            Tensor::F64($x) => Some(Tensor::F64($body)),
            Tensor::I8($x) => Some(Tensor::I8($body)),
            Tensor::U8($x) => Some(Tensor::U8($body)),
            Tensor::I16($x) => Some(Tensor::I16($body)),
            Tensor::U16($x) => Some(Tensor::U16($body)),
            Tensor::I32($x) => Some(Tensor::I32($body)),
            Tensor::U32($x) => Some(Tensor::U32($body)),
            Tensor::I64($x) => Some(Tensor::I64($body)),
            Tensor::U64($x) => Some(Tensor::U64($body)),
            _ => None,
        }
    };
}
pub(crate) use numeric_one;

/// Runs `$body` for two tensors of the same type (any type); `None` when they differ.
macro_rules! any_pair {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Tensor::F32($x), Tensor::F32($y)) => Some($body),
            (Tensor::F64($x), Tensor::F64($y)) => Some($body),
            (Tensor::F16($x), Tensor::F16($y)) => Some($body),
            (Tensor::I8($x), Tensor::I8($y)) => Some($body),
            (Tensor::U8($x), Tensor::U8($y)) => Some($body),
            (Tensor::I16($x), Tensor::I16($y)) => Some($body),
            (Tensor::U16($x), Tensor::U16($y)) => Some($body),
            (Tensor::I32($x), Tensor::I32($y)) => Some($body),
            (Tensor::U32($x), Tensor::U32($y)) => Some($body),
            (Tensor::I64($x), Tensor::I64($y)) => Some($body),
            (Tensor::U64($x), Tensor::U64($y)) => Some($body),
            (Tensor::Bool($x), Tensor::Bool($y)) => Some($body),
            _ => None,
        }
    };
}

fn type_mismatch(op: &str, a: &Tensor, b: &Tensor) -> crate::engine::OpError {
    op_err!("{op}: input 0 is {} and input 1 is {}, expected both of one type", a.dtype_name(), b.dtype_name())
}

fn unsupported(op: &str, i: usize, t: &Tensor, expected: &str) -> crate::engine::OpError {
    op_err!("{op}: input {i} is {}, expected {expected}", t.dtype_name())
}

// ---------------------------------------------------------------------------------------
// Arithmetic

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    /// Mod with `fmod = 0` (sign of the divisor) or `fmod = 1` (sign of the dividend).
    Mod {
        fmod: bool,
    },
    Max,
    Min,
}

impl Arith {
    fn name(self) -> &'static str {
        match self {
            Arith::Add => "Add",
            Arith::Sub => "Sub",
            Arith::Mul => "Mul",
            Arith::Div => "Div",
            Arith::Mod { .. } => "Mod",
            Arith::Max => "Max",
            Arith::Min => "Min",
        }
    }
}

fn arith_t<T: Num>(kind: Arith, a: &ArrayD<T>, b: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    if !T::FLOAT && matches!(kind, Arith::Div | Arith::Mod { .. }) && b.iter().any(|&v| v == T::zero()) {
        return Err(op_err!("{}: input 1 contains 0, integer division by zero is undefined", kind.name()));
    }
    match kind {
        Arith::Add => zip_map(a, b, T::add),
        Arith::Sub => zip_map(a, b, T::sub),
        Arith::Mul => zip_map(a, b, T::mul),
        Arith::Div => zip_map(a, b, T::div),
        Arith::Mod { fmod: true } => zip_map(a, b, T::rem_trunc),
        Arith::Mod { fmod: false } => zip_map(a, b, T::rem_floor),
        Arith::Max => zip_map(a, b, T::max_nan),
        Arith::Min => zip_map(a, b, T::min_nan),
    }
}

fn arith(kind: Arith, a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    if let (Tensor::F16(x), Tensor::F16(y)) = (a, b) {
        let r = arith_t(kind, &f16_to_f32(x), &f16_to_f32(y))?;
        return Ok(Tensor::F16(f32_to_f16(&r)));
    }
    if let Some(t) = numeric_pair!(a, b, |x, y| arith_t(kind, x, y)?) {
        return Ok(t);
    }
    if matches!(a, Tensor::Bool(_)) {
        return Err(unsupported(kind.name(), 0, a, "a numeric type"));
    }
    Err(type_mismatch(kind.name(), a, b))
}

#[derive(Debug)]
struct ArithOp {
    kind: Arith,
    /// `axis` of a legacy (opset < 7) broadcast.
    legacy_axis: Option<i64>,
}

impl Op for ArithOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        if let Some(axis) = self.legacy_axis {
            return Ok(vec![arith(self.kind, a, &align_legacy(a, b, axis)?)?]);
        }
        Ok(vec![arith(self.kind, a, b)?])
    }
}

fn build_mod(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let fmod = match ctx.attr_i("fmod", 0)? {
        0 => false,
        1 => true,
        v => return Err(op_err!("attribute 'fmod' is {v}, expected 0 or 1")),
    };
    Ok(Box::new(ArithOp { kind: Arith::Mod { fmod }, legacy_axis: None }))
}

/// Variadic Max, Min, Sum and Mean (broadcasting, at least one input).
#[derive(Debug)]
struct Variadic {
    kind: Arith,
    mean: bool,
}

impl Op for Variadic {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let name = if self.mean {
            "Mean"
        } else if self.kind == Arith::Add {
            "Sum"
        } else {
            self.kind.name()
        };
        let first = input(inputs, 0).map_err(|_| op_err!("{name} needs at least one input"))?;
        let mut acc: Cow<Tensor> = Cow::Borrowed(first);
        for i in 1..inputs.len() {
            let next = input(inputs, i)?;
            if next.dtype() != first.dtype() {
                return Err(op_err!("{name}: input {i} is {}, expected {} like input 0", next.dtype_name(), first.dtype_name()));
            }
            if broadcast_shape(acc.shape(), next.shape()).is_none() {
                return Err(op_err!(
                    "{name}: input {i} with shape {:?} does not broadcast with the inputs before it (shape {:?})",
                    next.shape(),
                    acc.shape()
                ));
            }
            acc = Cow::Owned(arith(self.kind, &acc, next)?);
        }
        if self.mean {
            let n = inputs.len();
            let t = match acc.as_ref() {
                Tensor::F32(a) => Tensor::F32(map_array(a, |x| x / n as f32)),
                Tensor::F64(a) => Tensor::F64(map_array(a, |x| x / n as f64)),
                Tensor::F16(a) => Tensor::F16(map_array(a, |x| f16::from_f32(x.to_f32() / n as f32))),
                other => return Err(unsupported("Mean", 0, other, "float, double or float16")),
            };
            return Ok(vec![t]);
        }
        Ok(vec![acc.into_owned()])
    }
}

// ---------------------------------------------------------------------------------------
// Pow

fn to_f64_array(t: &Tensor) -> ArrayD<f64> {
    from_vec(t.shape(), t.to_f64_vec())
}

/// Integer power with wrapping; negative exponents truncate like `(int)pow(x, e)`.
fn ipow(mut base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 => {
                if exp % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    let (mut e, mut r) = (exp as u64, 1i64);
    while e > 0 {
        if e & 1 == 1 {
            r = r.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    r
}

fn pow_f32(a: &ArrayD<f32>, b: &ArrayD<f32>) -> OpResult<ArrayD<f32>> {
    if b.len() == 1 && b.ndim() <= a.ndim() {
        let e = b.iter().next().copied().unwrap_or(1.0);
        let shape = broadcast_or_err(a.shape(), b.shape(), 0, 1)?;
        if shape == a.shape() {
            // Exponents common in real graphs (x*x in decomposed LayerNorm etc.).
            if e == 2.0 {
                return Ok(map_array(a, |x| x * x));
            } else if e == 1.0 {
                return Ok(map_array(a, |x| x));
            } else if e == 3.0 {
                return Ok(map_array(a, |x| x * x * x));
            } else if e == 0.5 {
                return Ok(map_array(a, |x: f32| if x == f32::NEG_INFINITY { f32::INFINITY } else { x.sqrt() + 0.0 }));
            }
        }
    }
    zip_map(a, b, f32::powf)
}

fn int_from_i64(like: &Tensor, r: ArrayD<i64>) -> Option<Tensor> {
    Some(match like {
        Tensor::I8(_) => Tensor::I8(r.mapv(|v| v as i8)),
        Tensor::U8(_) => Tensor::U8(r.mapv(|v| v as u8)),
        Tensor::I16(_) => Tensor::I16(r.mapv(|v| v as i16)),
        Tensor::U16(_) => Tensor::U16(r.mapv(|v| v as u16)),
        Tensor::I32(_) => Tensor::I32(r.mapv(|v| v as i32)),
        Tensor::U32(_) => Tensor::U32(r.mapv(|v| v as u32)),
        Tensor::I64(_) => Tensor::I64(r),
        Tensor::U64(_) => Tensor::U64(r.mapv(|v| v as u64)),
        _ => return None,
    })
}

fn pow(a: &Tensor, b: &Tensor) -> OpResult<Tensor> {
    let is_float = |t: &Tensor| matches!(t, Tensor::F32(_) | Tensor::F64(_) | Tensor::F16(_));
    if matches!(b, Tensor::Bool(_)) {
        return Err(unsupported("Pow", 1, b, "a numeric type"));
    }
    Ok(match (a, b) {
        (Tensor::F32(x), Tensor::F32(y)) => Tensor::F32(pow_f32(x, y)?),
        (Tensor::F64(x), Tensor::F64(y)) => Tensor::F64(zip_map(x, y, f64::powf)?),
        (Tensor::F32(x), _) => Tensor::F32(zip_map(x, &to_f64_array(b), |x, e| (x as f64).powf(e) as f32)?),
        (Tensor::F64(x), _) => Tensor::F64(zip_map(x, &to_f64_array(b), f64::powf)?),
        (Tensor::F16(x), _) => {
            let e = match b {
                Tensor::F16(y) => f16_to_f32(y),
                _ => to_f64_array(b).mapv(|v| v as f32),
            };
            Tensor::F16(f32_to_f16(&zip_map(&f16_to_f32(x), &e, f32::powf)?))
        }
        (Tensor::Bool(_), _) => return Err(unsupported("Pow", 0, a, "a numeric type")),
        _ if is_float(b) => {
            let r = zip_map(&to_f64_array(a), &to_f64_array(b), f64::powf)?;
            numeric_one!(a, |_x| r.mapv(Num::from_f64)).ok_or_else(|| unsupported("Pow", 0, a, "a numeric type"))?
        }
        _ => {
            let (x, y) = (a.to_i64_vec().unwrap_or_default(), b.to_i64_vec().unwrap_or_default());
            let r = zip_map(&from_vec(a.shape(), x), &from_vec(b.shape(), y), ipow)?;
            int_from_i64(a, r).ok_or_else(|| unsupported("Pow", 0, a, "a numeric type"))?
        }
    })
}

#[derive(Debug)]
struct PowOp;

impl Op for PowOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        Ok(vec![pow(input(inputs, 0)?, input(inputs, 1)?)?])
    }
}

// ---------------------------------------------------------------------------------------
// Comparisons and logic

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

fn compare_t<T: Copy + PartialOrd + Send + Sync>(kind: Cmp, a: &ArrayD<T>, b: &ArrayD<T>) -> OpResult<ArrayD<bool>> {
    match kind {
        Cmp::Equal => zip_map(a, b, |x, y| x == y),
        Cmp::Less => zip_map(a, b, |x, y| x < y),
        Cmp::Greater => zip_map(a, b, |x, y| x > y),
        Cmp::LessOrEqual => zip_map(a, b, |x, y| x <= y),
        Cmp::GreaterOrEqual => zip_map(a, b, |x, y| x >= y),
    }
}

#[derive(Debug)]
struct CmpOp(Cmp);

impl Op for CmpOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let r = any_pair!(a, b, |x, y| compare_t(self.0, x, y)?).ok_or_else(|| type_mismatch(&format!("{:?}", self.0), a, b))?;
        Ok(vec![Tensor::Bool(r)])
    }
}

#[derive(Debug, Clone, Copy)]
enum Logic {
    And,
    Or,
    Xor,
}

#[derive(Debug)]
struct LogicOp(Logic);

impl Op for LogicOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let name = format!("{:?}", self.0);
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let Tensor::Bool(x) = a else { return Err(unsupported(&name, 0, a, "bool")) };
        let Tensor::Bool(y) = b else { return Err(unsupported(&name, 1, b, "bool")) };
        let r = match self.0 {
            Logic::And => zip_map(x, y, |p, q| p & q)?,
            Logic::Or => zip_map(x, y, |p, q| p | q)?,
            Logic::Xor => zip_map(x, y, |p, q| p ^ q)?,
        };
        Ok(vec![Tensor::Bool(r)])
    }
}

// ---------------------------------------------------------------------------------------
// Where

fn where_t<T: Copy + Default + Send + Sync>(c: &ArrayD<bool>, x: &ArrayD<T>, y: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    if c.shape() == x.shape() && x.shape() == y.shape() {
        let (cs, xs, ys) = (contiguous(c), contiguous(x), contiguous(y));
        let out: Vec<T> = cs.iter().zip(xs.iter()).zip(ys.iter()).map(|((&c, &x), &y)| if c { x } else { y }).collect();
        return Ok(from_vec(c.shape(), out));
    }
    let s = broadcast_or_err(c.shape(), x.shape(), 0, 1)?;
    let shape = broadcast_or_err(&s, y.shape(), 0, 2)?;
    let dim = IxDyn(&shape);
    let view_err = |i: usize, s: &[usize]| op_err!("input {i} with shape {s:?} cannot be broadcast to {shape:?}");
    let cv = c.broadcast(dim.clone()).ok_or_else(|| view_err(0, c.shape()))?;
    let xv = x.broadcast(dim.clone()).ok_or_else(|| view_err(1, x.shape()))?;
    let yv = y.broadcast(dim.clone()).ok_or_else(|| view_err(2, y.shape()))?;
    let mut out = ArrayD::<T>::default(dim);
    Zip::from(&mut out).and(&cv).and(&xv).and(&yv).for_each(|o, &c, &x, &y| *o = if c { x } else { y });
    Ok(out)
}

#[derive(Debug)]
struct WhereOp;

impl Op for WhereOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let c = input(inputs, 0)?;
        let Tensor::Bool(c) = c else { return Err(unsupported("Where", 0, c, "bool")) };
        let (x, y) = (input(inputs, 1)?, input(inputs, 2)?);
        let r = match (x, y) {
            (Tensor::F32(a), Tensor::F32(b)) => Tensor::F32(where_t(c, a, b)?),
            (Tensor::F64(a), Tensor::F64(b)) => Tensor::F64(where_t(c, a, b)?),
            (Tensor::F16(a), Tensor::F16(b)) => Tensor::F16(where_t(c, a, b)?),
            (Tensor::I8(a), Tensor::I8(b)) => Tensor::I8(where_t(c, a, b)?),
            (Tensor::U8(a), Tensor::U8(b)) => Tensor::U8(where_t(c, a, b)?),
            (Tensor::I16(a), Tensor::I16(b)) => Tensor::I16(where_t(c, a, b)?),
            (Tensor::U16(a), Tensor::U16(b)) => Tensor::U16(where_t(c, a, b)?),
            (Tensor::I32(a), Tensor::I32(b)) => Tensor::I32(where_t(c, a, b)?),
            (Tensor::U32(a), Tensor::U32(b)) => Tensor::U32(where_t(c, a, b)?),
            (Tensor::I64(a), Tensor::I64(b)) => Tensor::I64(where_t(c, a, b)?),
            (Tensor::U64(a), Tensor::U64(b)) => Tensor::U64(where_t(c, a, b)?),
            (Tensor::Bool(a), Tensor::Bool(b)) => Tensor::Bool(where_t(c, a, b)?),
            _ => {
                return Err(op_err!("Where: input 1 is {} and input 2 is {}, expected both of one type", x.dtype_name(), y.dtype_name()));
            }
        };
        Ok(vec![r])
    }
}

// ---------------------------------------------------------------------------------------
// PRelu

fn prelu_t<T: Num>(x: &ArrayD<T>, s: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    let shape = broadcast_or_err(x.shape(), s.shape(), 0, 1)?;
    if shape != x.shape() {
        return Err(op_err!("PRelu: slope (input 1) with shape {:?} does not broadcast to X's shape {:?}", s.shape(), x.shape()));
    }
    zip_map(x, s, |x, s| if x < T::zero() { x.mul(s) } else { x })
}

#[derive(Debug)]
struct PReluOp;

impl Op for PReluOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (x, s) = (input(inputs, 0)?, input(inputs, 1)?);
        if let (Tensor::F16(a), Tensor::F16(b)) = (x, s) {
            return Ok(vec![Tensor::F16(f32_to_f16(&prelu_t(&f16_to_f32(a), &f16_to_f32(b))?))]);
        }
        let r = numeric_pair!(x, s, |a, b| prelu_t(a, b)?).ok_or_else(|| type_mismatch("PRelu", x, s))?;
        Ok(vec![r])
    }
}

// ---------------------------------------------------------------------------------------
// BitShift

trait Shift: Copy + Send + Sync + Default + 'static {
    fn shl(self, s: Self) -> Self;
    fn shr(self, s: Self) -> Self;
}

macro_rules! impl_shift {
    ($t:ty) => {
        impl Shift for $t {
            #[allow(unused_comparisons)]
            fn shl(self, s: Self) -> Self {
                if s < 0 || s as u64 >= <$t>::BITS as u64 { 0 } else { self.wrapping_shl(s as u32) }
            }
            /// Arithmetic shift for signed types; amounts outside `0..BITS` fill with the sign.
            #[allow(unused_comparisons)]
            fn shr(self, s: Self) -> Self {
                if s < 0 || s as u64 >= <$t>::BITS as u64 {
                    if self < 0 { self.wrapping_shr(<$t>::BITS - 1) } else { 0 }
                } else {
                    self.wrapping_shr(s as u32)
                }
            }
        }
    };
}
impl_shift!(i8);
impl_shift!(u8);
impl_shift!(i16);
impl_shift!(u16);
impl_shift!(i32);
impl_shift!(u32);
impl_shift!(i64);
impl_shift!(u64);

#[derive(Debug)]
struct BitShiftOp {
    left: bool,
}

fn shift_t<T: Shift>(left: bool, a: &ArrayD<T>, b: &ArrayD<T>) -> OpResult<ArrayD<T>> {
    if left { zip_map(a, b, T::shl) } else { zip_map(a, b, T::shr) }
}

impl Op for BitShiftOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let l = self.left;
        let r = match (a, b) {
            (Tensor::I8(x), Tensor::I8(y)) => Tensor::I8(shift_t(l, x, y)?),
            (Tensor::U8(x), Tensor::U8(y)) => Tensor::U8(shift_t(l, x, y)?),
            (Tensor::I16(x), Tensor::I16(y)) => Tensor::I16(shift_t(l, x, y)?),
            (Tensor::U16(x), Tensor::U16(y)) => Tensor::U16(shift_t(l, x, y)?),
            (Tensor::I32(x), Tensor::I32(y)) => Tensor::I32(shift_t(l, x, y)?),
            (Tensor::U32(x), Tensor::U32(y)) => Tensor::U32(shift_t(l, x, y)?),
            (Tensor::I64(x), Tensor::I64(y)) => Tensor::I64(shift_t(l, x, y)?),
            (Tensor::U64(x), Tensor::U64(y)) => Tensor::U64(shift_t(l, x, y)?),
            _ if a.dtype() == b.dtype() => return Err(unsupported("BitShift", 0, a, "an integer type")),
            _ => return Err(type_mismatch("BitShift", a, b)),
        };
        Ok(vec![r])
    }
}

fn build_bitshift(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let dir = ctx.attr_s("direction", "")?;
    let left = match dir.as_str() {
        "LEFT" => true,
        "RIGHT" => false,
        _ => return Err(op_err!("attribute 'direction' is '{dir}', expected 'LEFT' or 'RIGHT'")),
    };
    Ok(Box::new(BitShiftOp { left }))
}

// ---------------------------------------------------------------------------------------

/// Opsets < 7 broadcast only with `broadcast = 1`, aligning input 1 with input 0 starting
/// at `axis` (default: trailing alignment, which numpy broadcasting already does).
fn legacy_axis(ctx: &BuildContext) -> OpResult<Option<i64>> {
    if ctx.opset >= 7 || ctx.attr_i("broadcast", 0)? != 1 {
        return Ok(None);
    }
    Ok(ctx.node.attribute.iter().find(|a| a.name() == "axis").map(|a| a.i()))
}

/// Input 1 reshaped with trailing 1s so that it lines up with input 0 at `axis`.
fn align_legacy(a: &Tensor, b: &Tensor, axis: i64) -> OpResult<Tensor> {
    let r = a.shape().len() as i64;
    let axis = if axis < 0 { axis + r } else { axis };
    let nb = b.shape().len() as i64;
    if axis < 0 || axis + nb > r {
        return Err(op_err!(
            "attribute 'axis' = {axis} does not place input 1 with shape {:?} inside input 0 with shape {:?}",
            b.shape(),
            a.shape()
        ));
    }
    let mut shape = b.shape().to_vec();
    shape.resize((r - axis) as usize, 1);
    Ok(crate::map_tensor!(b, x => from_vec(&shape, x.iter().cloned().collect())))
}

pub fn register(r: &mut Registry) {
    fn arith_builder(ctx: &BuildContext, kind: Arith) -> OpResult<Box<dyn Op>> {
        Ok(Box::new(ArithOp { kind, legacy_axis: legacy_axis(ctx)? }))
    }
    r.register("Add", |c| arith_builder(c, Arith::Add));
    r.register("Sub", |c| arith_builder(c, Arith::Sub));
    r.register("Mul", |c| arith_builder(c, Arith::Mul));
    r.register("Div", |c| arith_builder(c, Arith::Div));
    r.register("Mod", build_mod);
    r.register("Pow", |_| Ok(Box::new(PowOp)));
    r.register("Max", |_| Ok(Box::new(Variadic { kind: Arith::Max, mean: false })));
    r.register("Min", |_| Ok(Box::new(Variadic { kind: Arith::Min, mean: false })));
    r.register("Sum", |_| Ok(Box::new(Variadic { kind: Arith::Add, mean: false })));
    r.register("Mean", |_| Ok(Box::new(Variadic { kind: Arith::Add, mean: true })));
    r.register("Equal", |_| Ok(Box::new(CmpOp(Cmp::Equal))));
    r.register("Less", |_| Ok(Box::new(CmpOp(Cmp::Less))));
    r.register("Greater", |_| Ok(Box::new(CmpOp(Cmp::Greater))));
    r.register("LessOrEqual", |_| Ok(Box::new(CmpOp(Cmp::LessOrEqual))));
    r.register("GreaterOrEqual", |_| Ok(Box::new(CmpOp(Cmp::GreaterOrEqual))));
    r.register("And", |_| Ok(Box::new(LogicOp(Logic::And))));
    r.register("Or", |_| Ok(Box::new(LogicOp(Logic::Or))));
    r.register("Xor", |_| Ok(Box::new(LogicOp(Logic::Xor))));
    r.register("Where", |_| Ok(Box::new(WhereOp)));
    r.register("PRelu", |_| Ok(Box::new(PReluOp)));
    r.register("BitShift", build_bitshift);
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::engine::error::OpResult;
    use crate::engine::registry::{BuildContext, Op, Registry};
    use crate::engine::tensor::Tensor;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::proto::{AttributeProto, NodeProto};

    pub fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(v), ..Default::default() }
    }
    pub fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Float as i32), f: Some(v), ..Default::default() }
    }
    pub fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(v.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    /// Builds `op_type` at `opset` with `n_in` inputs and `n_out` outputs.
    pub fn build(op_type: &str, opset: i64, attrs: Vec<AttributeProto>, n_in: usize, n_out: usize) -> OpResult<Box<dyn Op>> {
        build_with(op_type, opset, attrs, n_in, n_out, vec![])
    }

    pub fn build_with(
        op_type: &str,
        opset: i64,
        attrs: Vec<AttributeProto>,
        n_in: usize,
        n_out: usize,
        constants: Vec<Option<std::sync::Arc<Tensor>>>,
    ) -> OpResult<Box<dyn Op>> {
        let node = NodeProto {
            op_type: Some(op_type.into()),
            input: (0..n_in).map(|i| format!("x{i}")).collect(),
            output: (0..n_out).map(|i| format!("y{i}")).collect(),
            attribute: attrs,
            ..Default::default()
        };
        let ctx = BuildContext { node: &node, opset, constants, input_shapes: vec![None; n_in], input_producers: vec![None; n_in] };
        let builder = Registry::with_all_ops().get("", op_type).expect("op registered");
        builder(&ctx)
    }

    /// Runs `op_type` (no attributes, opset 17) on `inputs`, returning output 0.
    pub fn run(op_type: &str, inputs: &[Tensor]) -> OpResult<Tensor> {
        let op = build(op_type, 17, vec![], inputs.len(), 1)?;
        let args: Vec<Option<&Tensor>> = inputs.iter().map(Some).collect();
        Ok(op.run(&args)?.remove(0))
    }

    pub fn f32t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(super::from_vec(shape, v.to_vec()))
    }
    pub fn i64t(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::I64(super::from_vec(shape, v.to_vec()))
    }
    pub fn i32t(shape: &[usize], v: &[i32]) -> Tensor {
        Tensor::I32(super::from_vec(shape, v.to_vec()))
    }
    pub fn boolt(shape: &[usize], v: &[bool]) -> Tensor {
        Tensor::Bool(super::from_vec(shape, v.to_vec()))
    }

    pub fn assert_close(got: &Tensor, want: &[f64], tol: f64) {
        let g = got.to_f64_vec();
        assert_eq!(g.len(), want.len(), "{got:?}");
        for (i, (a, b)) in g.iter().zip(want).enumerate() {
            assert!((a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs()), "element {i}: {a} != {b}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn broadcast_shapes() {
        assert_eq!(broadcast_shape(&[2, 3, 4, 5], &[5]), Some(vec![2, 3, 4, 5]));
        assert_eq!(broadcast_shape(&[1, 4, 1, 6], &[3, 1, 5, 6]), Some(vec![3, 4, 5, 6]));
        assert_eq!(broadcast_shape(&[], &[2]), Some(vec![2]));
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
    }

    #[test]
    fn add_same_shape_scalar_and_per_channel() {
        // [1,2] + [3,4] = [4,6]
        let r = run("Add", &[f32t(&[2], &[1.0, 2.0]), f32t(&[2], &[3.0, 4.0])]).unwrap();
        assert_close(&r, &[4.0, 6.0], 0.0);
        // scalar: [1,2,3] * 2 = [2,4,6]
        let r = run("Mul", &[f32t(&[3], &[1.0, 2.0, 3.0]), f32t(&[], &[2.0])]).unwrap();
        assert_close(&r, &[2.0, 4.0, 6.0], 0.0);
        // per channel [1,2,2,1] - [1,2,1,1]: channel 0 minus 10, channel 1 minus 20.
        let r = run("Sub", &[f32t(&[1, 2, 2, 1], &[1.0, 2.0, 3.0, 4.0]), f32t(&[1, 2, 1, 1], &[10.0, 20.0])]).unwrap();
        assert_eq!(r.shape(), &[1, 2, 2, 1]);
        assert_close(&r, &[-9.0, -8.0, -17.0, -16.0], 0.0);
        // outer product [2,1] + [1,3]: rows 10, 20 plus columns 1, 2, 3.
        let r = run("Add", &[f32t(&[2, 1], &[10.0, 20.0]), f32t(&[1, 3], &[1.0, 2.0, 3.0])]).unwrap();
        assert_close(&r, &[11.0, 12.0, 13.0, 21.0, 22.0, 23.0], 0.0);
    }

    #[test]
    fn large_broadcast_matches_naive() {
        // Parallel path: [2,33,40,50] + [33,1,1] vs. per-element index arithmetic.
        let (n, c, h, w) = (2, 33, 40, 50);
        let a: Vec<f32> = (0..n * c * h * w).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..c).map(|i| i as f32 * 100.0).collect();
        let r = run("Add", &[f32t(&[n, c, h, w], &a), f32t(&[c, 1, 1], &b)]).unwrap();
        let want: Vec<f64> = (0..a.len()).map(|i| (a[i] + b[(i / (h * w)) % c]) as f64).collect();
        assert_close(&r, &want, 0.0);
    }

    #[test]
    fn integer_division_and_mod() {
        // Div truncates: -3/2 = -1, 3/-2 = -1. Mod (fmod=0) takes the divisor's sign:
        // -4 % 3 = 2, 7 % -3 = -2; fmod=1 takes the dividend's: -4 fmod 3 = -1.
        let r = run("Div", &[i32t(&[2], &[-3, 3]), i32t(&[2], &[2, -2])]).unwrap();
        assert_eq!(r, i32t(&[2], &[-1, -1]));
        let r = run("Mod", &[i64t(&[2], &[-4, 7]), i64t(&[2], &[3, -3])]).unwrap();
        assert_eq!(r, i64t(&[2], &[2, -2]));
        let op = build("Mod", 13, vec![int("fmod", 1)], 2, 1).unwrap();
        let (a, b) = (i64t(&[1], &[-4]), i64t(&[1], &[3]));
        assert_eq!(op.run(&[Some(&a), Some(&b)]).unwrap()[0], i64t(&[1], &[-1]));
        let e = run("Div", &[i32t(&[1], &[1]), i32t(&[1], &[0])]).unwrap_err().0;
        assert!(e.contains("division by zero"), "{e}");
        let e = build("Mod", 13, vec![int("fmod", 2)], 2, 1).unwrap_err().0;
        assert!(e.contains("'fmod' is 2"), "{e}");
    }

    #[test]
    fn float_mod_python_semantics() {
        // -3 mod 2 = 1 (fmod gives -1, plus the divisor 2); 3 mod -inf = -inf.
        let r = run("Mod", &[f32t(&[2], &[-3.0, 3.0]), f32t(&[2], &[2.0, f32::NEG_INFINITY])]).unwrap();
        assert_close(&r, &[1.0, f64::NEG_INFINITY], 0.0);
    }

    #[test]
    fn pow_types() {
        // 2^3 = 8 (float ^ int64), 3^2 = 9 (int ^ int), 4^0.5 = 2 (int ^ float, truncated).
        let r = run("Pow", &[f32t(&[1], &[2.0]), i64t(&[1], &[3])]).unwrap();
        assert_eq!(r, f32t(&[1], &[8.0]));
        let r = run("Pow", &[i64t(&[1], &[3]), i64t(&[1], &[2])]).unwrap();
        assert_eq!(r, i64t(&[1], &[9]));
        let r = run("Pow", &[i32t(&[1], &[4]), f32t(&[1], &[0.5])]).unwrap();
        assert_eq!(r, i32t(&[1], &[2]));
        // Fast paths x^2 and x^0.5 agree with powf.
        let r = run("Pow", &[f32t(&[2], &[-3.0, 4.0]), f32t(&[], &[2.0])]).unwrap();
        assert_eq!(r, f32t(&[2], &[9.0, 16.0]));
        let r = run("Pow", &[f32t(&[2], &[9.0, -1.0]), f32t(&[], &[0.5])]).unwrap();
        assert_close(&r, &[3.0, f64::NAN], 0.0);
    }

    #[test]
    fn variadic_and_nan() {
        // Max([1,5],[3,2],[2,2]) = [3,5]; Mean = [2,3]; Max with NaN propagates it.
        let xs = [f32t(&[2], &[1.0, 5.0]), f32t(&[2], &[3.0, 2.0]), f32t(&[2], &[2.0, 2.0])];
        assert_close(&run("Max", &xs).unwrap(), &[3.0, 5.0], 0.0);
        assert_close(&run("Mean", &xs).unwrap(), &[2.0, 3.0], 0.0);
        assert_close(&run("Sum", &xs).unwrap(), &[6.0, 9.0], 0.0);
        let r = run("Min", &[f32t(&[2], &[f32::NAN, 1.0]), f32t(&[2], &[0.0, f32::NAN])]).unwrap();
        assert_close(&r, &[f64::NAN, f64::NAN], 0.0);
    }

    #[test]
    fn compare_logic_where_prelu() {
        let r = run("Less", &[f32t(&[3], &[1.0, 2.0, f32::NAN]), f32t(&[1], &[2.0])]).unwrap();
        assert_eq!(r, boolt(&[3], &[true, false, false]));
        let r = run("Xor", &[boolt(&[2], &[true, false]), boolt(&[1], &[true])]).unwrap();
        assert_eq!(r, boolt(&[2], &[false, true]));
        // Where([[T],[F]], [1,2], 0) broadcasts to [2,2]: row 0 from X, row 1 from Y.
        let r = run("Where", &[boolt(&[2, 1], &[true, false]), i64t(&[2], &[1, 2]), i64t(&[], &[0])]).unwrap();
        assert_eq!(r, i64t(&[2, 2], &[1, 2, 0, 0]));
        // PRelu: -2 * 0.5 = -1, 3 stays.
        let r = run("PRelu", &[f32t(&[2], &[-2.0, 3.0]), f32t(&[1], &[0.5])]).unwrap();
        assert_close(&r, &[-1.0, 3.0], 0.0);
        let e = run("PRelu", &[f32t(&[2], &[-2.0, 3.0]), f32t(&[2, 2], &[0.5; 4])]).unwrap_err().0;
        assert!(e.contains("does not broadcast to X"), "{e}");
    }

    #[test]
    fn legacy_axis_broadcast() {
        // Opset 6 Add with broadcast=1, axis=1: B [2] aligns with dim 1 of A [1,2,2]:
        // [[1,2],[3,4]] + [10,20] per row -> [11,12,23,24].
        let op = build("Add", 6, vec![int("broadcast", 1), int("axis", 1)], 2, 1).unwrap();
        let (a, b) = (f32t(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]), f32t(&[2], &[10.0, 20.0]));
        assert_close(&op.run(&[Some(&a), Some(&b)]).unwrap()[0], &[11.0, 12.0, 23.0, 24.0], 0.0);
        let op = build("Add", 6, vec![int("broadcast", 1), int("axis", 3)], 2, 1).unwrap();
        let e = op.run(&[Some(&a), Some(&b), None]).unwrap_err().0;
        assert!(e.contains("'axis' = 3"), "{e}");
    }

    #[test]
    fn bitshift() {
        let op = build("BitShift", 11, vec![string("direction", "RIGHT")], 2, 1).unwrap();
        let (a, b) = (i32t(&[3], &[-8, 16, 5]), i32t(&[3], &[1, 2, 40]));
        // -8 >> 1 = -4 (arithmetic), 16 >> 2 = 4, 5 >> 40 (>= width) = 0.
        assert_eq!(op.run(&[Some(&a), Some(&b)]).unwrap()[0], i32t(&[3], &[-4, 4, 0]));
        let e = build("BitShift", 11, vec![string("direction", "UP")], 2, 1).unwrap_err().0;
        assert!(e.contains("'direction'"), "{e}");
    }

    #[test]
    fn errors_name_inputs() {
        let e = run("Add", &[f32t(&[2, 3], &[0.0; 6]), f32t(&[4], &[0.0; 4])]).unwrap_err().0;
        assert!(e.contains("input 0 with shape [2, 3]") && e.contains("input 1 with shape [4]"), "{e}");
        let e = run("Add", &[f32t(&[1], &[0.0]), i64t(&[1], &[0])]).unwrap_err().0;
        assert!(e.contains("input 0 is float and input 1 is int64"), "{e}");
        let e = run("And", &[f32t(&[1], &[0.0]), boolt(&[1], &[true])]).unwrap_err().0;
        assert!(e.contains("input 0 is float, expected bool"), "{e}");
        let e = run("Add", &[f32t(&[1], &[0.0])]).unwrap_err().0;
        assert!(e.contains("input 1 is missing"), "{e}");
        let e = run("Sum", &[f32t(&[1], &[0.0]), f32t(&[1], &[0.0]), i64t(&[1], &[0])]).unwrap_err().0;
        assert!(e.contains("Sum: input 2 is int64, expected float like input 0"), "{e}");
        let e = run("Max", &[f32t(&[2], &[0.0; 2]), f32t(&[3], &[0.0; 3])]).unwrap_err().0;
        assert!(e.contains("Max: input 1 with shape [3] does not broadcast"), "{e}");
    }
}

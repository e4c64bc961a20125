//! ScatterElements (and its deprecated alias Scatter) and ScatterND, with the opset 16/18
//! `reduction` attribute (none, add, mul, max, min).

use super::super::common::contiguous;
use super::{ints_of, make, norm_axis};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("ScatterElements", build_scatter_elements);
    r.register("Scatter", build_scatter_elements);
    r.register("ScatterND", build_scatter_nd);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

fn reduction(ctx: &BuildContext) -> OpResult<Reduction> {
    Ok(match ctx.attr_s("reduction", "none")?.as_str() {
        "none" => Reduction::None,
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        other => return Err(op_err!("attribute 'reduction' = '{other}' is not one of none, add, mul, max, min")),
    })
}

/// Element arithmetic for the reductions.
trait Combine: Clone {
    fn combine(&self, other: &Self, r: Reduction) -> Self;
}

macro_rules! combine_num {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            fn combine(&self, o: &Self, r: Reduction) -> Self {
                match r {
                    Reduction::None => *o,
                    Reduction::Add => self.wrapping_add(*o),
                    Reduction::Mul => self.wrapping_mul(*o),
                    Reduction::Max => (*self).max(*o),
                    Reduction::Min => (*self).min(*o),
                }
            }
        }
    )*};
}
combine_num!(i8, u8, i16, u16, i32, u32, i64, u64);

macro_rules! combine_float {
    ($($t:ty),*) => {$(
        impl Combine for $t {
            fn combine(&self, o: &Self, r: Reduction) -> Self {
                match r {
                    Reduction::None => *o,
                    Reduction::Add => *self + *o,
                    Reduction::Mul => *self * *o,
                    // NaN propagates.
                    Reduction::Max => if self.is_nan() || o.is_nan() { <$t>::NAN } else { self.max(*o) },
                    Reduction::Min => if self.is_nan() || o.is_nan() { <$t>::NAN } else { self.min(*o) },
                }
            }
        }
    )*};
}
combine_float!(f32, f64);

impl Combine for half::f16 {
    fn combine(&self, o: &Self, r: Reduction) -> Self {
        half::f16::from_f32(self.to_f32().combine(&o.to_f32(), r))
    }
}

impl Combine for bool {
    fn combine(&self, o: &Self, r: Reduction) -> Self {
        match r {
            Reduction::None => *o,
            Reduction::Add | Reduction::Max => *self || *o,
            Reduction::Mul | Reduction::Min => *self && *o,
        }
    }
}

fn scatter<T: Combine>(
    data: &ndarray::ArrayD<T>,
    updates: &ndarray::ArrayD<T>,
    offsets: &[usize],
    block: usize,
    r: Reduction,
) -> OpResult<ndarray::ArrayD<T>> {
    let mut out = contiguous(data).into_owned();
    let upd = contiguous(updates);
    for (u, &o) in offsets.iter().enumerate() {
        for j in 0..block {
            out[o + j] = out[o + j].combine(&upd[u * block + j], r);
        }
    }
    make(data.shape(), out)
}

macro_rules! dispatch_scatter {
    ($x:expr, $u:expr, $offsets:expr, $block:expr, $r:expr) => {{
        macro_rules! arm {
            ($v:ident) => {
                match $u {
                    Tensor::$v(u) => Tensor::$v(scatter(
                        match $x {
                            Tensor::$v(a) => a,
                            _ => unreachable!(),
                        },
                        u,
                        $offsets,
                        $block,
                        $r,
                    )?),
                    other => return Err(op_err!("input 2 (updates) is {}, input 0 is {}", other.dtype_name(), $x.dtype_name())),
                }
            };
        }
        match $x {
            Tensor::F32(_) => arm!(F32),
            Tensor::F64(_) => arm!(F64),
            Tensor::F16(_) => arm!(F16),
            Tensor::I8(_) => arm!(I8),
            Tensor::U8(_) => arm!(U8),
            Tensor::I16(_) => arm!(I16),
            Tensor::U16(_) => arm!(U16),
            Tensor::I32(_) => arm!(I32),
            Tensor::U32(_) => arm!(U32),
            Tensor::I64(_) => arm!(I64),
            Tensor::U64(_) => arm!(U64),
            Tensor::Bool(_) => arm!(Bool),
        }
    }};
}

fn resolve(idx: i64, dim: usize) -> OpResult<usize> {
    let d = dim as i64;
    if idx < -d || idx >= d {
        return Err(op_err!("input 1 (indices) value {idx} is out of range for a dimension of size {dim}"));
    }
    Ok(if idx < 0 { (idx + d) as usize } else { idx as usize })
}

fn indices(inputs: &[Option<&Tensor>]) -> OpResult<(Vec<usize>, Vec<i64>)> {
    let t = input(inputs, 1)?;
    match t {
        Tensor::I64(_) | Tensor::I32(_) => Ok((t.shape().to_vec(), ints_of(t, 1, "indices")?)),
        _ => Err(op_err!("input 1 (indices) is {}, expected int32 or int64", t.dtype_name())),
    }
}

#[derive(Debug)]
struct ScatterElements {
    axis: i64,
    reduction: Reduction,
}

fn build_scatter_elements(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(ScatterElements { axis: ctx.attr_i("axis", 0)?, reduction: reduction(ctx)? }))
}

impl Op for ScatterElements {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let u = input(inputs, 2)?;
        let shape = x.shape().to_vec();
        let rank = shape.len();
        if rank == 0 {
            return Err(op_err!("input 0 (data) must have rank >= 1"));
        }
        let axis = norm_axis(self.axis, rank, "attribute 'axis'")?;
        let (ishape, idx) = indices(inputs)?;
        if ishape != u.shape() {
            return Err(op_err!("input 1 (indices) shape {ishape:?} differs from input 2 (updates) shape {:?}", u.shape()));
        }
        if ishape.len() != rank || ishape.iter().zip(&shape).enumerate().any(|(d, (&i, &s))| d != axis && i > s) {
            return Err(op_err!("input 1 (indices) shape {ishape:?} does not fit input 0 shape {shape:?}"));
        }
        let mut strides = vec![1usize; rank];
        for i in (0..rank - 1).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let mut offsets = Vec::with_capacity(idx.len());
        let mut pos = vec![0usize; rank];
        for &raw in &idx {
            let i = resolve(raw, shape[axis])?;
            offsets.push((0..rank).map(|d| if d == axis { i } else { pos[d] } * strides[d]).sum());
            for d in (0..rank).rev() {
                pos[d] += 1;
                if pos[d] < ishape[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        Ok(vec![dispatch_scatter!(x, u, &offsets, 1, self.reduction)])
    }
}

#[derive(Debug)]
struct ScatterNd {
    reduction: Reduction,
}

fn build_scatter_nd(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(ScatterNd { reduction: reduction(ctx)? }))
}

impl Op for ScatterNd {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let u = input(inputs, 2)?;
        let shape = x.shape().to_vec();
        let (ishape, idx) = indices(inputs)?;
        let q = ishape.len();
        if q == 0 {
            return Err(op_err!("input 1 (indices) must have rank >= 1"));
        }
        let k = ishape[q - 1];
        if k > shape.len() {
            return Err(op_err!("index tuples of length {k} exceed the rank {} of input 0", shape.len()));
        }
        let want: Vec<usize> = ishape[..q - 1].iter().chain(&shape[k..]).copied().collect();
        if u.shape() != want.as_slice() {
            return Err(op_err!("input 2 (updates) has shape {:?}, expected {want:?}", u.shape()));
        }
        let block: usize = shape[k..].iter().product();
        let mut strides = vec![block; k];
        for i in (0..k.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let mut offsets = Vec::new();
        if k > 0 {
            for tuple in idx.chunks(k) {
                let mut off = 0;
                for (j, &v) in tuple.iter().enumerate() {
                    off += resolve(v, shape[j])? * strides[j];
                }
                offsets.push(off);
            }
        } else {
            offsets = vec![0; ishape[..q - 1].iter().product()];
        }
        Ok(vec![dispatch_scatter!(x, u, &offsets, block, self.reduction)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn scatter_elements_and_nd() {
        // data zeros(1,4), axis 1, indices [[1, -1, 1]], updates [[1, 2, 3]], add:
        // out[1] = 0+1+3 = 4, out[3] = 2.
        let op = build(build_scatter_elements, "ScatterElements", 18, 3, 1, vec![ai("axis", 1), astr("reduction", "add")]).unwrap();
        let y =
            run1(op.as_ref(), &[Some(&f32t(&[1, 4], &[0.; 4])), Some(&i64t(&[1, 3], &[1, -1, 1])), Some(&f32t(&[1, 3], &[1., 2., 3.]))])
                .unwrap();
        assert_eq!(y, f32t(&[1, 4], &[0., 4., 0., 2.]));
        // ScatterND on [4]: indices [[3],[0]] <- [9, 8].
        let op = build(build_scatter_nd, "ScatterND", 13, 3, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&f32t(&[4], &[1., 2., 3., 4.])), Some(&i64t(&[2, 1], &[3, 0])), Some(&f32t(&[2], &[9., 8.]))])
            .unwrap();
        assert_eq!(y, f32t(&[4], &[8., 2., 3., 9.]));
        let e = run1(op.as_ref(), &[Some(&f32t(&[4], &[0.; 4])), Some(&i64t(&[1, 1], &[4])), Some(&f32t(&[1], &[1.]))]).unwrap_err().0;
        assert!(e.contains("out of range"), "{e}");
    }
}

//! Gather, GatherElements, GatherND and Range.

use ndarray::ArrayD;

use super::super::common::contiguous;
use super::{ints_of, make, norm_axis};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::{map_tensor, op_err};

pub fn register(r: &mut Registry) {
    r.register("Gather", build_gather);
    r.register("GatherElements", build_gather_elements);
    r.register("GatherND", build_gather_nd);
    r.register("Range", build_range);
}

/// Indices input (int32 or int64) as i64.
fn indices_of(inputs: &[Option<&Tensor>], i: usize) -> OpResult<(Vec<usize>, Vec<i64>)> {
    let t = input(inputs, i)?;
    match t {
        Tensor::I64(_) | Tensor::I32(_) => Ok((t.shape().to_vec(), ints_of(t, i, "indices")?)),
        _ => Err(op_err!("input {i} (indices) is {}, expected int32 or int64", t.dtype_name())),
    }
}

/// Resolves a possibly negative index against `dim`.
fn resolve(idx: i64, dim: usize, what: &str) -> OpResult<usize> {
    let d = dim as i64;
    if idx < -d || idx >= d {
        return Err(op_err!("{what} {idx} is out of range for a dimension of size {dim} (expected [{}, {}])", -d, d - 1));
    }
    Ok(if idx < 0 { (idx + d) as usize } else { idx as usize })
}

#[derive(Debug)]
struct Gather {
    axis: i64,
}

fn build_gather(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Gather { axis: ctx.attr_i("axis", 0)? }))
}

impl Op for Gather {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        if shape.is_empty() {
            return Err(op_err!("input 0 (data) must have rank >= 1, got a scalar"));
        }
        let axis = norm_axis(self.axis, shape.len(), "attribute 'axis'")?;
        let (ishape, idx) = indices_of(inputs, 1)?;
        let dim = shape[axis];
        let idx: Vec<usize> = idx.iter().map(|&i| resolve(i, dim, "input 1 (indices) value")).collect::<OpResult<_>>()?;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let out_shape: Vec<usize> = shape[..axis].iter().chain(&ishape).chain(&shape[axis + 1..]).copied().collect();
        let y = map_tensor!(x, a => {
            let src = contiguous(a);
            let mut out = Vec::with_capacity(outer * idx.len() * inner);
            for o in 0..outer {
                let base = o * dim * inner;
                for &i in &idx {
                    out.extend_from_slice(&src[base + i * inner..base + (i + 1) * inner]);
                }
            }
            make(&out_shape, out)?
        });
        Ok(vec![y])
    }
}

#[derive(Debug)]
struct GatherElements {
    axis: i64,
}

fn build_gather_elements(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(GatherElements { axis: ctx.attr_i("axis", 0)? }))
}

impl Op for GatherElements {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape().to_vec();
        let rank = shape.len();
        if rank == 0 {
            return Err(op_err!("input 0 (data) must have rank >= 1, got a scalar"));
        }
        let axis = norm_axis(self.axis, rank, "attribute 'axis'")?;
        let (ishape, idx) = indices_of(inputs, 1)?;
        if ishape.len() != rank {
            return Err(op_err!("input 1 (indices) has rank {}, input 0 has rank {rank}", ishape.len()));
        }
        for d in 0..rank {
            if d != axis && ishape[d] > shape[d] {
                return Err(op_err!("input 1 (indices) shape {ishape:?} exceeds input 0 shape {shape:?} on axis {d}"));
            }
        }
        let mut strides = vec![1usize; rank];
        for i in (0..rank - 1).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        // Source offset of every output element.
        let mut offsets = Vec::with_capacity(idx.len());
        let mut pos = vec![0usize; rank];
        for &raw in &idx {
            let i = resolve(raw, shape[axis], "input 1 (indices) value")?;
            let off: usize = (0..rank).map(|d| if d == axis { i } else { pos[d] } * strides[d]).sum();
            offsets.push(off);
            for d in (0..rank).rev() {
                pos[d] += 1;
                if pos[d] < ishape[d] {
                    break;
                }
                pos[d] = 0;
            }
        }
        let y = map_tensor!(x, a => {
            let src = contiguous(a);
            make(&ishape, pick(&src, &offsets))?
        });
        Ok(vec![y])
    }
}

/// The elements at `offsets`.
fn pick<T: Clone>(src: &[T], offsets: &[usize]) -> Vec<T> {
    offsets.iter().map(|&o| src[o].clone()).collect()
}

#[derive(Debug)]
struct GatherNd {
    batch_dims: usize,
}

fn build_gather_nd(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let b = ctx.attr_i("batch_dims", 0)?;
    if b < 0 {
        return Err(op_err!("attribute 'batch_dims' = {b} must be >= 0"));
    }
    Ok(Box::new(GatherNd { batch_dims: b as usize }))
}

impl Op for GatherNd {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape().to_vec();
        let t = input(inputs, 1)?;
        if !matches!(t, Tensor::I64(_)) {
            return Err(op_err!("input 1 (indices) is {}, expected int64", t.dtype_name()));
        }
        let (ishape, idx) = indices_of(inputs, 1)?;
        let b = self.batch_dims;
        let q = ishape.len();
        if q < 1 || b >= q || b >= shape.len() {
            return Err(op_err!("batch_dims {b} must be smaller than the ranks of input 0 ({}) and input 1 ({q})", shape.len()));
        }
        if shape[..b] != ishape[..b] {
            return Err(op_err!("the first {b} (batch) dims of input 0 {shape:?} and input 1 {ishape:?} differ"));
        }
        let k = ishape[q - 1];
        if b + k > shape.len() {
            return Err(op_err!("index tuples of length {k} exceed the rank {} of input 0 (batch_dims {b})", shape.len()));
        }
        let batch: usize = shape[..b].iter().product();
        let per_batch_tuples: usize = ishape[b..q - 1].iter().product();
        let inner: usize = shape[b + k..].iter().product();
        let batch_size: usize = shape[b..].iter().product();
        let mut strides = vec![1usize; k];
        for i in (0..k).rev() {
            strides[i] = if i + 1 < k { strides[i + 1] * shape[b + i + 1] } else { inner };
        }
        let mut offsets = Vec::with_capacity(batch * per_batch_tuples);
        for bi in 0..batch {
            for ti in 0..per_batch_tuples {
                let tuple = &idx[(bi * per_batch_tuples + ti) * k..(bi * per_batch_tuples + ti + 1) * k];
                let mut off = bi * batch_size;
                for (j, &v) in tuple.iter().enumerate() {
                    off += resolve(v, shape[b + j], "input 1 (indices) value")? * strides[j];
                }
                offsets.push(off);
            }
        }
        let out_shape: Vec<usize> = ishape[..q - 1].iter().chain(&shape[b + k..]).copied().collect();
        let y = map_tensor!(x, a => {
            let src = contiguous(a);
            let mut out = Vec::with_capacity(offsets.len() * inner);
            for &o in &offsets {
                out.extend_from_slice(&src[o..o + inner]);
            }
            make(&out_shape, out)?
        });
        Ok(vec![y])
    }
}

#[derive(Debug)]
struct Range;

fn build_range(_ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Range))
}

fn scalar<T: Clone>(a: &ArrayD<T>, i: usize) -> OpResult<T> {
    if a.len() != 1 {
        return Err(op_err!("input {i} must be a scalar, got shape {:?}", a.shape()));
    }
    a.iter().next().cloned().ok_or_else(|| op_err!("input {i} is empty"))
}

/// Number of elements: max(ceil((limit - start) / delta), 0).
/// `diff` is `limit - start` computed in the element type (as ONNX Runtime does).
fn range_count(diff: f64, delta: f64) -> OpResult<usize> {
    if delta == 0.0 {
        return Err(op_err!("input 2 (delta) must not be zero"));
    }
    let n = (diff / delta).ceil();
    if n.is_nan() || n.is_infinite() {
        return Err(op_err!("Range with limit - start = {diff} and delta {delta} has no finite length"));
    }
    Ok(n.max(0.0) as usize)
}

macro_rules! range_float {
    ($s:expr, $l:expr, $d:expr, $to:expr, $from:expr) => {{
        let (s, l, d) = ($s, $l, $d);
        let n = range_count(($to(l) - $to(s)) as f64, $to(d) as f64)?;
        // Accumulated like ONNX Runtime: value += delta.
        let mut v = Vec::with_capacity(n);
        let mut x = $to(s);
        for _ in 0..n {
            v.push($from(x));
            x += $to(d);
        }
        make(&[n], v)?
    }};
}

impl Op for Range {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (s, l, d) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        if s.dtype() != l.dtype() || s.dtype() != d.dtype() {
            return Err(op_err!("inputs must share one type, got {}, {}, {}", s.dtype_name(), l.dtype_name(), d.dtype_name()));
        }
        macro_rules! int_range {
            ($v:ident, $t:ty) => {{
                let (Tensor::$v(s), Tensor::$v(l), Tensor::$v(d)) = (s, l, d) else { unreachable!() };
                let (s, l, d) = (scalar(s, 0)? as i128, scalar(l, 1)? as i128, scalar(d, 2)? as i128);
                if d == 0 {
                    return Err(op_err!("input 2 (delta) must not be zero"));
                }
                let diff = l - s;
                let n = if (diff > 0) == (d > 0) && diff != 0 { (diff + d - d.signum()) / d } else { 0 }.max(0) as usize;
                Tensor::$v(make(&[n], (0..n as i128).map(|i| (s + i * d) as $t).collect())?)
            }};
        }
        let out = match (s, l, d) {
            (Tensor::F32(s), Tensor::F32(l), Tensor::F32(d)) => {
                // ONNX Runtime accumulates in float.
                Tensor::F32(range_float!(scalar(s, 0)?, scalar(l, 1)?, scalar(d, 2)?, |x: f32| x, |x: f32| x))
            }
            (Tensor::F64(s), Tensor::F64(l), Tensor::F64(d)) => {
                Tensor::F64(range_float!(scalar(s, 0)?, scalar(l, 1)?, scalar(d, 2)?, |x: f64| x, |x: f64| x))
            }
            (Tensor::F16(s), Tensor::F16(l), Tensor::F16(d)) => {
                Tensor::F16(range_float!(scalar(s, 0)?, scalar(l, 1)?, scalar(d, 2)?, |x: half::f16| x.to_f32(), half::f16::from_f32))
            }
            (Tensor::I16(_), _, _) => int_range!(I16, i16),
            (Tensor::I32(_), _, _) => int_range!(I32, i32),
            (Tensor::I64(_), _, _) => int_range!(I64, i64),
            _ => return Err(op_err!("input 0 is {}, expected float, double, float16, int16, int32 or int64", s.dtype_name())),
        };
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn gather_axis_and_negative_indices() {
        // data [[1,2,3],[4,5,6]], axis 1, indices [-1, 0] -> [[3,1],[6,4]].
        let op = build(build_gather, "Gather", 13, 2, 1, vec![ai("axis", 1)]).unwrap();
        let x = f32t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[2], &[-1, 0]))]).unwrap();
        assert_eq!(y, f32t(&[2, 2], &[3., 1., 6., 4.]));
        // 0-d index on axis 0 of a shape vector -> 0-d scalar.
        let op = build(build_gather, "Gather", 13, 2, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&i64t(&[3], &[1, 3, 224])), Some(&i64t(&[], &[2]))]).unwrap();
        assert_eq!(y, i64t(&[], &[224]));
        let e = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[1], &[2]))]).unwrap_err().0;
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn gather_elements_and_nd() {
        // data [[1,2],[3,4]], axis 1, indices [[0,0],[1,0]] -> [[1,1],[4,3]].
        let op = build(build_gather_elements, "GatherElements", 13, 2, 1, vec![ai("axis", 1)]).unwrap();
        let x = f32t(&[2, 2], &[1., 2., 3., 4.]);
        let y = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[2, 2], &[0, 0, 1, 0]))]).unwrap();
        assert_eq!(y, f32t(&[2, 2], &[1., 1., 4., 3.]));
        // GatherND indices [[1],[0]] -> rows [[3,4],[1,2]].
        let op = build(build_gather_nd, "GatherND", 13, 2, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[2, 1], &[1, 0]))]).unwrap();
        assert_eq!(y, f32t(&[2, 2], &[3., 4., 1., 2.]));
    }

    #[test]
    fn range_counts() {
        let op = build(build_range, "Range", 11, 3, 1, vec![]).unwrap();
        // int: 10 down to 4 by -3: ceil(-6/-3)=2 -> [10, 7].
        let y = run1(op.as_ref(), &[Some(&i64t(&[], &[10])), Some(&i64t(&[], &[4])), Some(&i64t(&[], &[-3]))]).unwrap();
        assert_eq!(y, i64t(&[2], &[10, 7]));
        // float: 1 to 5 by 2 -> [1, 3].
        let y = run1(op.as_ref(), &[Some(&f32t(&[], &[1.])), Some(&f32t(&[], &[5.])), Some(&f32t(&[], &[2.]))]).unwrap();
        assert_eq!(y, f32t(&[2], &[1., 3.]));
        let e = run1(op.as_ref(), &[Some(&i64t(&[], &[1])), Some(&i64t(&[], &[5])), Some(&i64t(&[], &[0]))]).unwrap_err().0;
        assert!(e.contains("zero"), "{e}");
    }
}

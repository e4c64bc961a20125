//! Shape and data-movement ops: Constant, ConstantOfShape, Shape, Size, Cast, CastLike,
//! Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile, Concat, Split, Slice, Pad,
//! Gather, GatherElements, GatherND, Range, DepthToSpace, SpaceToDepth.
//!
//! Everything here is generic over the element type (`map_tensor!`), works on 0-d scalars
//! (constant folding of exported shape subgraphs runs these ops on int64 tensors) and
//! moves data with contiguous block copies where the layout allows.

mod cast;
mod copy;
mod gather;
mod scatter;

use std::mem::MaybeUninit;

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::common::contiguous;
use crate::engine::error::{OpError, OpResult};
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::map_tensor;
use crate::onnx::NodeExt;
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("Constant", build_constant);
    r.register("ConstantOfShape", build_constant_of_shape);
    r.register("Shape", build_shape);
    r.register("Size", build_size);
    r.register("Reshape", build_reshape);
    r.register("Flatten", build_flatten);
    r.register("Squeeze", build_squeeze);
    r.register("Unsqueeze", build_unsqueeze);
    cast::register(r);
    copy::register(r);
    gather::register(r);
    scatter::register(r);
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Builds an array from row-major data (the element count is checked).
pub(crate) fn make<T>(shape: &[usize], data: Vec<T>) -> OpResult<ArrayD<T>> {
    let n = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| op_err!("internal: {n} elements do not fit shape {shape:?} ({e})"))
}

/// Same data, new shape (row-major order kept; no reordering).
pub(crate) fn reshaped<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> OpResult<ArrayD<T>> {
    make(shape, contiguous(a).into_owned())
}

/// Input `i` as a list of integers (any integer element type), e.g. a shape or axes input.
pub(crate) fn int_input(inputs: &[Option<&Tensor>], i: usize, what: &str) -> OpResult<Vec<i64>> {
    let t = input(inputs, i)?;
    ints_of(t, i, what)
}

pub(crate) fn ints_of(t: &Tensor, i: usize, what: &str) -> OpResult<Vec<i64>> {
    match t {
        Tensor::I64(_)
        | Tensor::I32(_)
        | Tensor::I16(_)
        | Tensor::I8(_)
        | Tensor::U8(_)
        | Tensor::U16(_)
        | Tensor::U32(_)
        | Tensor::U64(_) => Ok(t.to_i64_vec().unwrap_or_default()),
        _ => Err(op_err!("input {i} ({what}) is {}, expected an integer tensor", t.dtype_name())),
    }
}

/// Optional integer input: None when omitted.
pub(crate) fn opt_int_input(inputs: &[Option<&Tensor>], i: usize, what: &str) -> OpResult<Option<Vec<i64>>> {
    match inputs.get(i).copied().flatten() {
        None => Ok(None),
        Some(t) => ints_of(t, i, what).map(Some),
    }
}

/// Normalizes a possibly negative axis against `rank` (valid range `[-rank, rank-1]`).
pub(crate) fn norm_axis(axis: i64, rank: usize, what: &str) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(op_err!("{what} {axis} is out of range for rank {rank} (expected [{}, {}])", -r, r - 1));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Normalizes a list of axes, rejecting duplicates.
pub(crate) fn norm_axes(axes: &[i64], rank: usize, what: &str) -> OpResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = norm_axis(a, rank, what)?;
        if out.contains(&n) {
            return Err(op_err!("{what} {axes:?} names axis {n} twice"));
        }
        out.push(n);
    }
    Ok(out)
}

/// Converts signed dims to usize, rejecting negatives.
pub(crate) fn dims_usize(dims: &[i64], what: &str) -> OpResult<Vec<usize>> {
    dims.iter().map(|&d| usize::try_from(d).map_err(|_| op_err!("{what} {dims:?} has negative dimension {d}"))).collect()
}

/// How one output axis reads its input axis in [`remap`].
#[derive(Debug, Clone)]
pub(crate) enum AxisMap {
    /// Output index == input index over the whole axis.
    Full,
    /// Output index -> input index, or None for the fill value.
    Map(Vec<Option<usize>>),
}

impl AxisMap {
    fn len(&self, in_dim: usize) -> usize {
        match self {
            AxisMap::Full => in_dim,
            AxisMap::Map(m) => m.len(),
        }
    }
    fn get(&self, o: usize) -> Option<usize> {
        match self {
            AxisMap::Full => Some(o),
            AxisMap::Map(m) => m[o],
        }
    }
}

/// Generic axis-wise gather used by Slice, Pad, Tile, Expand and Split: every output axis
/// picks input indices through its map. Trailing `Full` axes are copied as contiguous
/// blocks, and runs of consecutive indices on the last mapped axis are copied at once.
pub(crate) fn remap<T: Clone + Send + Sync>(
    src: &[T],
    in_shape: &[usize],
    maps: &[AxisMap],
    fill: Option<&T>,
) -> OpResult<(Vec<usize>, Vec<T>)> {
    let out_shape: Vec<usize> = maps.iter().zip(in_shape).map(|(m, &d)| m.len(d)).collect();
    let total: usize = out_shape.iter().product();
    let Some(k) = maps.iter().rposition(|m| !matches!(m, AxisMap::Full)) else {
        return Ok((out_shape, src.to_vec()));
    };
    if total == 0 {
        return Ok((out_shape, Vec::new()));
    }
    // Validate map targets and the fill value.
    for (ax, (m, &d)) in maps.iter().zip(in_shape).enumerate() {
        if let AxisMap::Map(v) = m {
            for x in v {
                match x {
                    Some(i) if *i >= d => return Err(op_err!("internal: axis {ax} index {i} out of range {d}")),
                    None if fill.is_none() => return Err(op_err!("internal: axis {ax} needs a fill value")),
                    _ => {}
                }
            }
        }
    }
    let mut strides = vec![1usize; in_shape.len()];
    for i in (0..in_shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * in_shape[i + 1];
    }
    let inner: usize = in_shape[k + 1..].iter().product();
    // Single elements from the last mapped axis with no two consecutive indices (a strided
    // Slice, e.g. YOLOX's Focus): element by element, without looking for runs to copy.
    let scattered = match &maps[k] {
        AxisMap::Map(m) if inner == 1 => !m.windows(2).any(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if b == a + 1)),
        _ => false,
    };
    let ctx = RemapCtx { src, in_shape, maps, fill, strides: &strides, k, inner, scattered };
    let mut out = Vec::with_capacity(total);
    let spare = &mut out.spare_capacity_mut()[..total];
    // Big outputs: jobs over the output rows of the first axes (at least 4 per thread), each
    // row written by the same loop as in the serial walk.
    let threads = rayon::current_num_threads();
    let mut rows = 1;
    let level = (0..k).find(|&a| {
        rows *= out_shape[a];
        rows >= 4 * threads
    });
    match level {
        Some(l) if threads > 1 && total >= 1 << 16 => {
            let block = total / rows;
            spare.par_chunks_mut(block).enumerate().for_each(|(r, chunk)| {
                let (mut rest, mut off) = (r, 0usize);
                for a in (0..=l).rev() {
                    let o = rest % out_shape[a];
                    rest /= out_shape[a];
                    off = match (off, maps[a].get(o)) {
                        (usize::MAX, _) | (_, None) => usize::MAX,
                        (off, Some(i)) => off + i * strides[a],
                    };
                }
                let mut sink = Sink { buf: chunk, pos: 0 };
                ctx.rec(l + 1, off, &mut sink);
                assert_eq!(sink.pos, block, "remap: a row left unwritten");
            });
        }
        _ => {
            let mut sink = Sink { buf: spare, pos: 0 };
            ctx.rec(0, 0, &mut sink);
            assert_eq!(sink.pos, total, "remap: output left unwritten");
        }
    }
    // SAFETY: the assertions above checked that every one of the `total` slots was written.
    unsafe { out.set_len(total) };
    Ok((out_shape, out))
}

/// Where [`RemapCtx::rec`] writes: consecutive slots of an output not yet initialized.
struct Sink<'a, T> {
    buf: &'a mut [MaybeUninit<T>],
    pos: usize,
}

impl<T: Clone> Sink<'_, T> {
    fn extend_from_slice(&mut self, s: &[T]) {
        for (d, v) in self.buf[self.pos..self.pos + s.len()].iter_mut().zip(s) {
            d.write(v.clone());
        }
        self.pos += s.len();
    }

    fn fill(&mut self, v: &T, n: usize) {
        for d in &mut self.buf[self.pos..self.pos + n] {
            d.write(v.clone());
        }
        self.pos += n;
    }
}

struct RemapCtx<'a, T> {
    src: &'a [T],
    in_shape: &'a [usize],
    maps: &'a [AxisMap],
    fill: Option<&'a T>,
    strides: &'a [usize],
    k: usize,
    inner: usize,
    /// See [`remap`]: inner == 1 and no runs on axis k.
    scattered: bool,
}

impl<T: Clone> RemapCtx<'_, T> {
    /// `off` is the input offset or usize::MAX when an outer axis already selected the fill.
    fn rec(&self, axis: usize, off: usize, out: &mut Sink<'_, T>) {
        let map = &self.maps[axis];
        let n = map.len(self.in_shape[axis]);
        if axis == self.k
            && self.scattered
            && off != usize::MAX
            && let AxisMap::Map(m) = map
        {
            let stride = self.strides[axis];
            for (d, i) in out.buf[out.pos..out.pos + n].iter_mut().zip(m) {
                d.write(match i {
                    Some(i) => self.src[off + i * stride].clone(),
                    None => self.fill.expect("checked").clone(),
                });
            }
            out.pos += n;
            return;
        }
        if axis == self.k {
            let inner = self.inner;
            let mut o = 0;
            while o < n {
                match (off, map.get(o)) {
                    (usize::MAX, _) | (_, None) => {
                        out.fill(self.fill.expect("checked"), inner);
                        o += 1;
                    }
                    (off, Some(i)) => {
                        let mut run = 1;
                        while o + run < n && map.get(o + run) == Some(i + run) {
                            run += 1;
                        }
                        let start = off + i * self.strides[axis];
                        out.extend_from_slice(&self.src[start..start + run * inner]);
                        o += run;
                    }
                }
            }
            return;
        }
        for o in 0..n {
            let next = match (off, map.get(o)) {
                (usize::MAX, _) | (_, None) => usize::MAX,
                (off, Some(i)) => off + i * self.strides[axis],
            };
            self.rec(axis + 1, next, out);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Constant, ConstantOfShape, Shape, Size
// ---------------------------------------------------------------------------------------

/// An op returning a fixed tensor.
#[derive(Debug)]
struct ConstOp(Tensor);

impl Op for ConstOp {
    fn run(&self, _inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        Ok(vec![self.0.clone()])
    }
}

fn tensor_attr(ctx: &BuildContext, name: &str) -> OpResult<Option<Tensor>> {
    let Some(proto) = ctx.node.opt_attr_tensor(name)? else { return Ok(None) };
    let t = crate::onnx::Tensor::from_proto(proto)?;
    let t = Tensor::from_onnx(&t, name).map_err(|e| op_err!("attribute '{name}': {e}"))?;
    Ok(Some(t))
}

fn build_constant(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let node = ctx.node;
    for unsupported in ["sparse_value", "value_string", "value_strings"] {
        if node.attr(unsupported).is_some() {
            return Err(op_err!("attribute '{unsupported}' is not supported (the engine has no sparse or string tensors)"));
        }
    }
    let mut found: Vec<Tensor> = Vec::new();
    if let Some(t) = tensor_attr(ctx, "value")? {
        found.push(t);
    }
    if let Some(f) = node.opt_attr_f("value_float")? {
        found.push(Tensor::F32(ArrayD::from_elem(IxDyn(&[]), f)));
    }
    if let Some(v) = node.opt_attr_floats("value_floats")? {
        found.push(Tensor::F32(make(&[v.len()], v)?));
    }
    if let Some(i) = node.opt_attr_i("value_int")? {
        found.push(Tensor::I64(ArrayD::from_elem(IxDyn(&[]), i)));
    }
    if let Some(v) = node.opt_attr_ints("value_ints")? {
        found.push(Tensor::I64(make(&[v.len()], v)?));
    }
    match found.len() {
        1 => Ok(Box::new(ConstOp(found.remove(0)))),
        0 => Err(op_err!("exactly one of the attributes value, value_float, value_floats, value_int, value_ints is required, found none")),
        n => Err(op_err!("exactly one value attribute is allowed, found {n}")),
    }
}

#[derive(Debug)]
struct ConstantOfShape {
    /// One-element tensor holding the fill value and its type.
    value: Tensor,
}

fn build_constant_of_shape(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let value = match tensor_attr(ctx, "value")? {
        Some(v) => {
            if v.len() != 1 {
                return Err(op_err!("attribute 'value' must hold exactly one element, it holds {} (shape {:?})", v.len(), v.shape()));
            }
            v
        }
        None => Tensor::F32(ArrayD::from_elem(IxDyn(&[1]), 0.0)),
    };
    Ok(Box::new(ConstantOfShape { value }))
}

impl Op for ConstantOfShape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let t = input(inputs, 0)?;
        if t.shape().len() > 1 {
            return Err(op_err!("input 0 (shape) must be 1-D, got shape {:?}", t.shape()));
        }
        let dims = ints_of(t, 0, "shape")?;
        let shape = dims_usize(&dims, "input 0 (shape)")?;
        let out = map_tensor!(&self.value, v => {
            let x = v.iter().next().cloned().ok_or_else(|| op_err!("empty value"))?;
            ArrayD::from_elem(IxDyn(&shape), x)
        });
        Ok(vec![out])
    }
}

#[derive(Debug)]
struct ShapeOp {
    start: i64,
    end: Option<i64>,
}

fn build_shape(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let (start, end) = if ctx.opset >= 15 { (ctx.attr_i("start", 0)?, ctx.node.opt_attr_i("end")?) } else { (0, None) };
    Ok(Box::new(ShapeOp { start, end }))
}

impl Op for ShapeOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let shape = input(inputs, 0)?.shape();
        let r = shape.len() as i64;
        let clamp = |x: i64| if x < 0 { (x + r).clamp(0, r) } else { x.clamp(0, r) };
        let s = clamp(self.start) as usize;
        let e = clamp(self.end.unwrap_or(r)) as usize;
        let dims: Vec<i64> = if s < e { shape[s..e].iter().map(|&d| d as i64).collect() } else { Vec::new() };
        Ok(vec![Tensor::I64(make(&[dims.len()], dims)?)])
    }
}

#[derive(Debug)]
struct SizeOp;

fn build_size(_ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(SizeOp))
}

impl Op for SizeOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let n = input(inputs, 0)?.len() as i64;
        Ok(vec![Tensor::I64(ArrayD::from_elem(IxDyn(&[]), n))])
    }
}

// ---------------------------------------------------------------------------------------
// Reshape, Flatten, Squeeze, Unsqueeze (no data reordering)
// ---------------------------------------------------------------------------------------

fn reshape_tensor(t: &Tensor, shape: &[usize]) -> OpResult<Tensor> {
    Ok(map_tensor!(t, a => reshaped(a, shape)?))
}

#[derive(Debug)]
struct Reshape {
    /// opset < 5: the `shape` attribute.
    attr_shape: Option<Vec<i64>>,
    allowzero: bool,
}

fn build_reshape(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let attr_shape = if ctx.opset < 5 { Some(ctx.attr_ints("shape", &[])?) } else { None };
    let allowzero = ctx.opset >= 14 && ctx.attr_i("allowzero", 0)? != 0;
    Ok(Box::new(Reshape { attr_shape, allowzero }))
}

/// Resolves a Reshape target (0 copies the input dim unless `allowzero`, one -1 is inferred).
pub(crate) fn resolve_reshape(in_shape: &[usize], target: &[i64], allowzero: bool) -> OpResult<Vec<usize>> {
    let total: usize = in_shape.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 => {
                if infer.is_some() {
                    return Err(op_err!("shape {target:?} has more than one -1"));
                }
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                let &dim = in_shape.get(i).ok_or_else(|| {
                    op_err!("shape {target:?}: 0 at index {i} copies a dimension the input (shape {in_shape:?}) does not have")
                })?;
                out.push(dim);
            }
            d if d < 0 => return Err(op_err!("shape {target:?} has invalid dimension {d}")),
            d => out.push(d as usize),
        }
    }
    if allowzero && infer.is_some() && target.contains(&0) {
        return Err(op_err!("shape {target:?}: allowzero=1 forbids combining 0 and -1"));
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(op_err!("cannot reshape input of shape {in_shape:?} ({total} elements) to {target:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(op_err!("cannot reshape input of shape {in_shape:?} ({total} elements) to {target:?} ({known} elements)"));
    }
    Ok(out)
}

impl Op for Reshape {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let target = match &self.attr_shape {
            Some(s) => s.clone(),
            None => {
                let t = input(inputs, 1)?;
                if t.shape().len() != 1 {
                    return Err(op_err!("input 1 (shape) must be 1-D, got shape {:?}", t.shape()));
                }
                ints_of(t, 1, "shape")?
            }
        };
        let shape = resolve_reshape(x.shape(), &target, self.allowzero)?;
        Ok(vec![reshape_tensor(x, &shape)?])
    }
}

#[derive(Debug)]
struct Flatten {
    axis: i64,
}

fn build_flatten(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let axis = ctx.attr_i("axis", 1)?;
    if ctx.opset < 11 && axis < 0 {
        return Err(op_err!("attribute 'axis' = {axis}: negative axes need opset 11"));
    }
    Ok(Box::new(Flatten { axis }))
}

impl Op for Flatten {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let r = shape.len() as i64;
        if self.axis < -r || self.axis > r {
            return Err(op_err!("attribute 'axis' = {} is out of range for input 0 of rank {r} (expected [{}, {r}])", self.axis, -r));
        }
        let axis = if self.axis < 0 { self.axis + r } else { self.axis } as usize;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis..].iter().product();
        Ok(vec![reshape_tensor(x, &[outer, inner])?])
    }
}

#[derive(Debug)]
struct Squeeze {
    attr_axes: Option<Vec<i64>>,
}

fn build_squeeze(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let attr_axes = if ctx.opset < 13 { ctx.opt_attr_ints("axes")? } else { None };
    Ok(Box::new(Squeeze { attr_axes }))
}

impl Op for Squeeze {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let axes = match &self.attr_axes {
            Some(a) => Some(a.clone()),
            None => opt_int_input(inputs, 1, "axes")?,
        };
        let out: Vec<usize> = match axes {
            None => shape.iter().copied().filter(|&d| d != 1).collect(),
            Some(axes) => {
                let axes = norm_axes(&axes, shape.len(), "axes")?;
                for &a in &axes {
                    if shape[a] != 1 {
                        return Err(op_err!("cannot squeeze axis {a} of input 0 (shape {shape:?}): its size is {}, not 1", shape[a]));
                    }
                }
                shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
            }
        };
        Ok(vec![reshape_tensor(x, &out)?])
    }
}

#[derive(Debug)]
struct Unsqueeze {
    attr_axes: Option<Vec<i64>>,
}

fn build_unsqueeze(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let attr_axes = if ctx.opset < 13 { Some(ctx.node.req_attr_ints("axes").map_err(OpError::from)?) } else { None };
    Ok(Box::new(Unsqueeze { attr_axes }))
}

impl Op for Unsqueeze {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let axes = match &self.attr_axes {
            Some(a) => a.clone(),
            None => int_input(inputs, 1, "axes")?,
        };
        let shape = x.shape();
        let rank = shape.len() + axes.len();
        let axes = norm_axes(&axes, rank, "axes")?;
        let mut src = shape.iter();
        let out: Vec<usize> = (0..rank).map(|i| if axes.contains(&i) { 1 } else { src.next().copied().unwrap_or(1) }).collect();
        Ok(vec![reshape_tensor(x, &out)?])
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::Arc;

    use crate::engine::error::OpResult;
    use crate::engine::registry::{BuildContext, Op};
    use crate::engine::tensor::Tensor;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::{AttributeProto, NodeProto};

    pub fn ai(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(v), ..Default::default() }
    }
    pub fn ais(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.to_vec(), ..Default::default() }
    }
    pub fn af(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Float as i32), f: Some(v), ..Default::default() }
    }
    pub fn afs(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Floats as i32), floats: v.to_vec(), ..Default::default() }
    }
    pub fn astr(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(v.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    pub fn build(
        builder: crate::engine::registry::Builder,
        op: &str,
        opset: i64,
        n_inputs: usize,
        n_outputs: usize,
        attrs: Vec<AttributeProto>,
    ) -> OpResult<Box<dyn Op>> {
        let node = NodeProto {
            op_type: Some(op.into()),
            input: (0..n_inputs).map(|i| format!("in{i}")).collect(),
            output: (0..n_outputs).map(|i| format!("out{i}")).collect(),
            attribute: attrs,
            ..Default::default()
        };
        let ctx = BuildContext {
            node: &node,
            opset,
            constants: vec![None::<Arc<Tensor>>; n_inputs],
            input_shapes: vec![None; n_inputs],
            input_producers: vec![None; n_inputs],
        };
        builder(&ctx)
    }

    pub fn f32t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec()).unwrap())
    }
    pub fn i64t(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::I64(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v.to_vec()).unwrap())
    }
    pub fn run1(op: &dyn Op, inputs: &[Option<&Tensor>]) -> OpResult<Tensor> {
        Ok(op.run(inputs)?.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn constant_forms() {
        let op = build(build_constant, "Constant", 13, 0, 1, vec![ais("value_ints", &[2, 3])]).unwrap();
        assert_eq!(run1(op.as_ref(), &[]).unwrap(), i64t(&[2], &[2, 3]));
        let op = build(build_constant, "Constant", 13, 0, 1, vec![afs("value_floats", &[1.5, 2.0])]).unwrap();
        assert_eq!(run1(op.as_ref(), &[]).unwrap(), f32t(&[2], &[1.5, 2.0]));
        let op = build(build_constant, "Constant", 13, 0, 1, vec![af("value_float", 1.5)]).unwrap();
        assert_eq!(run1(op.as_ref(), &[]).unwrap(), f32t(&[], &[1.5]));
        let e = build(build_constant, "Constant", 13, 0, 1, vec![]).unwrap_err().0;
        assert!(e.contains("none"), "{e}");
        let e = build(build_constant, "Constant", 13, 0, 1, vec![ai("value_int", 1), af("value_float", 1.0)]).unwrap_err().0;
        assert!(e.contains("found 2"), "{e}");
    }

    #[test]
    fn shape_size_constant_of_shape() {
        let x = f32t(&[2, 3, 4], &[0.0; 24]);
        // start=-2 -> 1, end default 3: dims [3, 4].
        let op = build(build_shape, "Shape", 15, 1, 1, vec![ai("start", -2)]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&x)]).unwrap(), i64t(&[2], &[3, 4]));
        // start 5 clamps to 3 > end: empty.
        let op = build(build_shape, "Shape", 15, 1, 1, vec![ai("start", 5)]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&x)]).unwrap(), i64t(&[0], &[]));
        let op = build(build_size, "Size", 13, 1, 1, vec![]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&x)]).unwrap(), i64t(&[], &[24]));
        let op = build(build_constant_of_shape, "ConstantOfShape", 13, 1, 1, vec![]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&i64t(&[2], &[1, 2]))]).unwrap(), f32t(&[1, 2], &[0.0, 0.0]));
        let e = run1(op.as_ref(), &[Some(&i64t(&[2], &[1, -2]))]).unwrap_err().0;
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn reshape_rules() {
        // [2,3,4] with [0,-1]: 0 copies 2, -1 = 24/2 = 12.
        assert_eq!(resolve_reshape(&[2, 3, 4], &[0, -1], false).unwrap(), vec![2, 12]);
        // allowzero keeps a literal 0 (empty input).
        assert_eq!(resolve_reshape(&[0, 3], &[3, 0], true).unwrap(), vec![3, 0]);
        assert!(resolve_reshape(&[2, 3], &[4, -1], false).unwrap_err().0.contains("cannot reshape"));
        assert!(resolve_reshape(&[2, 3], &[-1, -1], false).unwrap_err().0.contains("more than one"));
        let op = build(build_reshape, "Reshape", 14, 2, 1, vec![]).unwrap();
        let x = f32t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[2], &[3, 2]))]).unwrap();
        assert_eq!(y, f32t(&[3, 2], &[1., 2., 3., 4., 5., 6.]));
    }

    #[test]
    fn squeeze_unsqueeze_flatten() {
        let x = f32t(&[1, 3, 1], &[1., 2., 3.]);
        let op = build(build_squeeze, "Squeeze", 13, 2, 1, vec![]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&x), Some(&i64t(&[1], &[-1]))]).unwrap().shape(), &[1, 3]);
        assert_eq!(run1(op.as_ref(), &[Some(&x), None]).unwrap().shape(), &[3]);
        let e = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[1], &[1]))]).unwrap_err().0;
        assert!(e.contains("not 1"), "{e}");
        // Unsqueeze of [3] at axes [0, -1] -> rank 3: [1, 3, 1].
        let op = build(build_unsqueeze, "Unsqueeze", 13, 2, 1, vec![]).unwrap();
        let s = f32t(&[3], &[1., 2., 3.]);
        assert_eq!(run1(op.as_ref(), &[Some(&s), Some(&i64t(&[2], &[0, -1]))]).unwrap().shape(), &[1, 3, 1]);
        // Opset 11 attribute form on a 0-d scalar.
        let op = build(build_unsqueeze, "Unsqueeze", 11, 1, 1, vec![ais("axes", &[0])]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&i64t(&[], &[7]))]).unwrap(), i64t(&[1], &[7]));
        let op = build(build_flatten, "Flatten", 13, 1, 1, vec![ai("axis", -1)]).unwrap();
        assert_eq!(run1(op.as_ref(), &[Some(&f32t(&[2, 3, 4], &[0.; 24]))]).unwrap().shape(), &[6, 4]);
    }

    #[test]
    fn remap_runs_and_fill() {
        // 2x3 input, rows [1, 0], cols [None, 0, 1, 2]: pad one column of 9 in front.
        let src = [1, 2, 3, 4, 5, 6];
        let maps = [AxisMap::Map(vec![Some(1), Some(0)]), AxisMap::Map(vec![None, Some(0), Some(1), Some(2)])];
        let (shape, v) = remap(&src, &[2, 3], &maps, Some(&9)).unwrap();
        assert_eq!(shape, vec![2, 4]);
        assert_eq!(v, vec![9, 4, 5, 6, 9, 1, 2, 3]);
    }

    /// The row-parallel walk writes what the serial one does: a strided slice with a padded
    /// (fill) row, big enough to be split, on 1 and 3 threads.
    #[test]
    fn remap_is_the_same_on_several_threads() {
        let shape = [4, 5, 90, 160];
        let src: Vec<i32> = (0..shape.iter().product::<usize>() as i32).collect();
        let rows = AxisMap::Map((0..92).map(|o| 89usize.checked_sub(o)).collect());
        let maps = [AxisMap::Full, AxisMap::Map(vec![Some(4), None, Some(0)]), rows, AxisMap::Map((0..80).map(|o| Some(2 * o)).collect())];
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| remap(&src, &shape, &maps, Some(&-1)).unwrap())
        };
        let (one, three) = (on(1), on(3));
        assert_eq!(one.0, vec![4, 3, 92, 80]);
        assert_eq!(one, three);
        assert_eq!(one.1[80 * 92 + 7], -1);
        assert_eq!(one.1[3], (4 * 90 + 89) * 160 + 6);
    }
}

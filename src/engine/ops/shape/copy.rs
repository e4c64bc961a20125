//! Data movement: Transpose, Concat, Split, Slice, Pad, Expand, Tile, DepthToSpace,
//! SpaceToDepth.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::super::common::contiguous;
use super::{AxisMap, int_input, ints_of, make, norm_axes, norm_axis, opt_int_input, remap};
use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::onnx::NodeExt;
use crate::{map_tensor, op_err};

pub fn register(r: &mut Registry) {
    r.register("Transpose", build_transpose);
    r.register("Concat", build_concat);
    r.register("Split", build_split);
    r.register("Slice", build_slice);
    r.register("Pad", build_pad);
    r.register("Expand", build_expand);
    r.register("Tile", build_tile);
    r.register("DepthToSpace", build_depth_to_space);
    r.register("SpaceToDepth", build_space_to_depth);
}

/// Elements of every tensor type, with access to a typed scalar stored in another tensor.
pub(crate) trait TensorElem: Clone + Send + Sync + 'static {
    fn first_of(t: &Tensor) -> Option<Self>;
}

macro_rules! tensor_elem {
    ($($t:ty => $v:ident),*) => {$(
        impl TensorElem for $t {
            fn first_of(t: &Tensor) -> Option<Self> {
                match t { Tensor::$v(a) => a.iter().next().cloned(), _ => None }
            }
        }
    )*};
}
tensor_elem!(f32 => F32, f64 => F64, half::f16 => F16, i8 => I8, u8 => U8, i16 => I16, u16 => U16,
    i32 => I32, u32 => U32, i64 => I64, u64 => U64, bool => Bool);

fn fill_value<T: TensorElem>(_like: &ArrayD<T>, fill: Option<&Tensor>) -> Option<T> {
    fill.and_then(T::first_of)
}

/// Runs [`remap`] on any tensor; `fill` (same dtype as `x`) is the value of unmapped indices.
fn remap_tensor(x: &Tensor, maps: &[AxisMap], fill: Option<&Tensor>) -> OpResult<Tensor> {
    Ok(map_tensor!(x, a => {
        let f = fill_value(a, fill);
        let src = contiguous(a);
        let (shape, v) = remap(&src, a.shape(), maps, f.as_ref())?;
        make(&shape, v)?
    }))
}

// ---------------------------------------------------------------------------------------
// Transpose
// ---------------------------------------------------------------------------------------

/// Drops size-1 axes and merges input axes that stay adjacent in the permutation, so that
/// e.g. NCHW->NHWC becomes a batched 2-D transpose [N, C, HW] -> [N, HW, C].
fn reduce_perm(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept: Vec<usize> = perm.iter().copied().filter(|&p| shape[p] != 1).collect();
    // Groups of consecutive input axes in output order.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for p in kept {
        match groups.last_mut() {
            Some(g) if *g.last().unwrap_or(&usize::MAX) + 1 == p => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    // Merged input axes are ordered by their first input axis.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g][0]);
    let in_shape: Vec<usize> = order.iter().map(|&g| groups[g].iter().map(|&a| shape[a]).product()).collect();
    let mut new_index = vec![0; groups.len()];
    for (i, &g) in order.iter().enumerate() {
        new_index[g] = i;
    }
    (in_shape, new_index)
}

const TILE: usize = 32;

/// Transposes `rows x cols` blocks of `src` into `dst` (`cols x rows`), tiled for cache use.
fn transpose_2d<T: Clone + Send + Sync>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    let do_tile_rows = |jb: usize, chunk: &mut [T]| {
        // chunk holds dst rows jb..jb+TILE (source columns).
        let jend = (jb + TILE).min(cols);
        for ib in (0..rows).step_by(TILE) {
            let iend = (ib + TILE).min(rows);
            for j in jb..jend {
                let drow = &mut chunk[(j - jb) * rows..(j - jb + 1) * rows];
                for i in ib..iend {
                    drow[i] = src[i * cols + j].clone();
                }
            }
        }
    };
    if rows * cols >= 1 << 16 {
        dst.par_chunks_mut(TILE * rows).enumerate().for_each(|(t, chunk)| do_tile_rows(t * TILE, chunk));
    } else {
        for (t, chunk) in dst.chunks_mut(TILE * rows).enumerate() {
            do_tile_rows(t * TILE, chunk);
        }
    }
}

/// Row-major transpose of `src` (shape `shape`) by `perm`; returns the output shape and data.
pub(crate) fn transpose_vec<T: Clone + Send + Sync>(src: &[T], shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<T>) {
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    if src.is_empty() {
        return (out_shape, Vec::new());
    }
    let (rs, rp) = reduce_perm(shape, perm);
    let identity = rp.iter().enumerate().all(|(i, &p)| i == p);
    if identity {
        return (out_shape, src.to_vec());
    }
    let mut dst = vec![src[0].clone(); src.len()];
    if rp == [1, 0] {
        transpose_2d(src, &mut dst, rs[0], rs[1]);
    } else if rp == [0, 2, 1] {
        let m = rs[1] * rs[2];
        for (s, d) in src.chunks(m).zip(dst.chunks_mut(m)) {
            transpose_2d(s, d, rs[1], rs[2]);
        }
    } else if rp.last() == Some(&(rs.len() - 1)) {
        // Innermost axis stays innermost: copy contiguous rows.
        let inner = rs[rs.len() - 1];
        let outer_shape: Vec<usize> = rs[..rs.len() - 1].to_vec();
        let mut strides = vec![1usize; outer_shape.len()];
        for i in (0..outer_shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * outer_shape[i + 1];
        }
        let out_outer: Vec<usize> = rp[..rp.len() - 1].iter().map(|&p| outer_shape[p]).collect();
        // Rows first..: the multi-index of row `first`, then counted up row by row.
        let copy_rows = |first: usize, part: &mut [T]| {
            let mut idx = vec![0usize; out_outer.len()];
            let mut r = first;
            for a in (0..idx.len()).rev() {
                idx[a] = r % out_outer[a];
                r /= out_outer[a];
            }
            for chunk in part.chunks_mut(inner) {
                let off: usize = idx.iter().zip(&rp).map(|(&i, &p)| i * strides[p]).sum();
                chunk.clone_from_slice(&src[off * inner..(off + 1) * inner]);
                for a in (0..idx.len()).rev() {
                    idx[a] += 1;
                    if idx[a] < out_outer[a] {
                        break;
                    }
                    idx[a] = 0;
                }
            }
        };
        let rows = dst.len() / inner;
        if dst.len() >= 1 << 16 && rows > 1 {
            let per_job = rows.div_ceil(4 * rayon::current_num_threads().max(1));
            dst.par_chunks_mut(per_job * inner).enumerate().for_each(|(j, part)| copy_rows(j * per_job, part));
        } else {
            copy_rows(0, &mut dst);
        }
    } else {
        transpose_blocked(src, &mut dst, &rs, &rp);
    }
    (out_shape, dst)
}

/// Any other (reduced) permutation, the innermost axis moving: TILE × TILE blocks of the
/// plane spanned by the output's last axis and the output axis the input's last axis goes
/// to (both sides then touch whole cache lines), for every index of the remaining axes;
/// (remaining index, block column) jobs run in parallel on large inputs.
fn transpose_blocked<T: Clone + Send + Sync>(src: &[T], dst: &mut [T], rs: &[usize], rp: &[usize]) {
    let n = rs.len();
    let mut ss = vec![1usize; n];
    for i in (0..n - 1).rev() {
        ss[i] = ss[i + 1] * rs[i + 1];
    }
    let os: Vec<usize> = rp.iter().map(|&p| rs[p]).collect();
    let mut ost = vec![1usize; n];
    for i in (0..n - 1).rev() {
        ost[i] = ost[i + 1] * os[i + 1];
    }
    // Output axis fed by the input's innermost axis (not the last one: that case copies rows).
    let bpos = rp.iter().position(|&p| p == n - 1).expect("a permutation");
    let (rows, row_src, row_dst) = (os[bpos], 1usize, ost[bpos]);
    let (cols, col_src) = (os[n - 1], ss[rp[n - 1]]);
    let rest: Vec<usize> = (0..n - 1).filter(|&a| a != bpos).collect();
    let rest_count: usize = rest.iter().map(|&a| os[a]).product();
    let col_blocks = cols.div_ceil(TILE);
    // The address as an integer: jobs on other threads write disjoint elements through it.
    let dst_addr = dst.as_mut_ptr() as usize;
    let job = |j: usize| {
        let (mut r, cb) = (j / col_blocks, j % col_blocks);
        let (mut s0, mut d0) = (0usize, 0usize);
        for &a in rest.iter().rev() {
            let i = r % os[a];
            r /= os[a];
            s0 += i * ss[rp[a]];
            d0 += i * ost[a];
        }
        let (c0, c1) = (cb * TILE, ((cb + 1) * TILE).min(cols));
        for rb in (0..rows).step_by(TILE) {
            for row in rb..(rb + TILE).min(rows) {
                let (sr, dr) = (s0 + row * row_src, d0 + row * row_dst);
                for c in c0..c1 {
                    // SAFETY: job (r, cb) alone writes columns c0..c1 of its rows; every
                    // index is inside the output, whose length equals the input's.
                    unsafe { *(dst_addr as *mut T).add(dr + c) = src[sr + c * col_src].clone() };
                }
            }
        }
    };
    let jobs = rest_count * col_blocks;
    if src.len() >= 1 << 16 {
        (0..jobs).into_par_iter().for_each(job);
    } else {
        (0..jobs).for_each(job);
    }
}

pub(crate) fn transpose_tensor(x: &Tensor, perm: &[usize]) -> OpResult<Tensor> {
    Ok(map_tensor!(x, a => {
        let src = contiguous(a);
        let (shape, v) = transpose_vec(&src, a.shape(), perm);
        make(&shape, v)?
    }))
}

#[derive(Debug)]
struct Transpose {
    perm: Option<Vec<i64>>,
}

fn build_transpose(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Transpose { perm: ctx.opt_attr_ints("perm")? }))
}

impl Op for Transpose {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let rank = x.shape().len();
        let perm: Vec<usize> = match &self.perm {
            None => (0..rank).rev().collect(),
            Some(p) => {
                if p.len() != rank {
                    return Err(op_err!("attribute 'perm' {p:?} has {} entries, input 0 has rank {rank}", p.len()));
                }
                let perm = norm_axes(p, rank, "attribute 'perm'")?;
                if p.iter().any(|&a| a < 0) {
                    return Err(op_err!("attribute 'perm' {p:?} must be a permutation of 0..{rank}"));
                }
                perm
            }
        };
        Ok(vec![transpose_tensor(x, &perm)?])
    }
}

// ---------------------------------------------------------------------------------------
// Concat / Split
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Concat {
    axis: i64,
}

fn build_concat(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let axis = match ctx.node.opt_attr_i("axis")? {
        Some(a) => a,
        None if ctx.opset < 4 => 1,
        None => return Err(op_err!("required attribute 'axis' is missing")),
    };
    Ok(Box::new(Concat { axis }))
}

fn concat_arrays<T: Clone + Send + Sync>(arrs: &[(usize, &ArrayD<T>)], axis: usize, out_shape: &[usize]) -> OpResult<ArrayD<T>> {
    let outer: usize = out_shape[..axis].iter().product();
    let total: usize = out_shape.iter().product();
    let parts: Vec<(std::borrow::Cow<'_, [T]>, usize)> =
        arrs.iter().map(|(_, a)| (contiguous(a), a.shape()[axis..].iter().product::<usize>())).filter(|(_, block)| *block > 0).collect();
    let threads = rayon::current_num_threads();
    if threads < 2 || total < 1 << 16 {
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for (src, block) in &parts {
                out.extend_from_slice(&src[o * block..(o + 1) * block]);
            }
        }
        return make(out_shape, out);
    }
    // Big outputs: the copies in pieces of about total / (4 · threads), in parallel, each
    // to its place in the output.
    let piece = (total / (4 * threads)).max(1 << 12);
    let mut copies = Vec::new();
    let mut at = 0;
    for o in 0..outer {
        for (src, block) in &parts {
            for p in src[o * block..(o + 1) * block].chunks(piece) {
                copies.push((at, p));
                at += p.len();
            }
        }
    }
    assert_eq!(at, total, "concat: pieces do not tile the output");
    let mut out: Vec<T> = Vec::with_capacity(total);
    // The address as an integer: pieces on other threads write disjoint slots through it.
    let dst_addr = out.spare_capacity_mut().as_mut_ptr() as usize;
    copies.par_iter().for_each(|&(at, p)| {
        let dst = dst_addr as *mut T;
        for (i, v) in p.iter().enumerate() {
            // SAFETY: the pieces tile 0..total without overlap, inside the capacity.
            unsafe { dst.add(at + i).write(v.clone()) };
        }
    });
    // SAFETY: the pieces cover all `total` slots, each written above.
    unsafe { out.set_len(total) };
    make(out_shape, out)
}

impl Op for Concat {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let given: Vec<(usize, &Tensor)> = inputs.iter().enumerate().filter_map(|(i, t)| t.map(|t| (i, t))).collect();
        let Some(&(_, first)) = given.first() else { return Err(op_err!("Concat needs at least one input")) };
        // Reference: the first non-empty input (empty inputs of another shape are skipped,
        // as ONNX Runtime does).
        let &(_, reference) = given.iter().find(|(_, t)| !t.is_empty()).unwrap_or(&given[0]);
        let rank = reference.shape().len();
        if rank == 0 {
            return Err(op_err!("Concat inputs must have rank >= 1, input 0 is a scalar"));
        }
        let axis = norm_axis(self.axis, rank, "attribute 'axis'")?;
        let mut out_shape = reference.shape().to_vec();
        out_shape[axis] = 0;
        let mut used = Vec::new();
        for &(i, t) in &given {
            if t.dtype() != first.dtype() {
                return Err(op_err!("input {i} is {}, input 0 is {}", t.dtype_name(), first.dtype_name()));
            }
            let s = t.shape();
            let compatible = s.len() == rank && s.iter().zip(reference.shape()).enumerate().all(|(d, (a, b))| d == axis || a == b);
            if !compatible {
                if t.is_empty() {
                    continue;
                }
                return Err(op_err!(
                    "input {i} has shape {s:?}, incompatible with {:?} for concatenation on axis {axis}",
                    reference.shape()
                ));
            }
            out_shape[axis] += s[axis];
            used.push((i, t));
        }
        macro_rules! cat {
            ($v:ident) => {{
                let arrs: Vec<(usize, &ArrayD<_>)> = used
                    .iter()
                    .map(|&(i, t)| match t {
                        Tensor::$v(a) => Ok((i, a)),
                        _ => Err(op_err!("input {i} has a different type")),
                    })
                    .collect::<OpResult<_>>()?;
                Tensor::$v(concat_arrays(&arrs, axis, &out_shape)?)
            }};
        }
        let out = match first {
            Tensor::F32(_) => cat!(F32),
            Tensor::F64(_) => cat!(F64),
            Tensor::F16(_) => cat!(F16),
            Tensor::I8(_) => cat!(I8),
            Tensor::U8(_) => cat!(U8),
            Tensor::I16(_) => cat!(I16),
            Tensor::U16(_) => cat!(U16),
            Tensor::I32(_) => cat!(I32),
            Tensor::U32(_) => cat!(U32),
            Tensor::I64(_) => cat!(I64),
            Tensor::U64(_) => cat!(U64),
            Tensor::Bool(_) => cat!(Bool),
        };
        Ok(vec![out])
    }
}

#[derive(Debug)]
struct Split {
    axis: i64,
    attr_split: Option<Vec<i64>>,
    num_outputs: Option<i64>,
    n_outputs: usize,
    opset: i64,
}

fn build_split(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let axis = ctx.attr_i("axis", 0)?;
    let attr_split = if ctx.opset < 13 { ctx.opt_attr_ints("split")? } else { None };
    let num_outputs = if ctx.opset >= 18 { ctx.node.opt_attr_i("num_outputs")? } else { None };
    let n_outputs = ctx.node.output.len();
    if let Some(n) = num_outputs
        && (n < 1 || n as usize != n_outputs)
    {
        return Err(op_err!("attribute 'num_outputs' = {n} does not match the node's {n_outputs} outputs"));
    }
    if let Some(s) = &attr_split
        && s.len() != n_outputs
    {
        return Err(op_err!("attribute 'split' {s:?} has {} entries, the node has {n_outputs} outputs", s.len()));
    }
    Ok(Box::new(Split { axis, attr_split, num_outputs, n_outputs, opset: ctx.opset }))
}

impl Op for Split {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let axis = norm_axis(self.axis, shape.len(), "attribute 'axis'")?;
        let dim = shape[axis];
        // `split` is an input from opset 13 (and in opset 1); an empty tensor means absent.
        let split_in = opt_int_input(inputs, 1, "split")?.filter(|s| !s.is_empty());
        let sizes: Vec<usize> = match self.attr_split.clone().or(split_in) {
            Some(s) => {
                if s.len() != self.n_outputs {
                    return Err(op_err!("split {s:?} has {} entries, the node has {} outputs", s.len(), self.n_outputs));
                }
                let sizes = super::dims_usize(&s, "split")?;
                if sizes.iter().sum::<usize>() != dim {
                    return Err(op_err!(
                        "split {s:?} sums to {}, axis {axis} of input 0 (shape {shape:?}) has {dim}",
                        sizes.iter().sum::<usize>()
                    ));
                }
                sizes
            }
            None => {
                let n = self.num_outputs.map(|n| n as usize).unwrap_or(self.n_outputs).max(1);
                if self.num_outputs.is_some() || self.opset >= 18 {
                    // Chunks of ceil(dim / n); the last one takes the rest.
                    let chunk = dim.div_ceil(n);
                    (0..n).map(|i| chunk.min(dim.saturating_sub(i * chunk))).collect()
                } else {
                    if dim % n != 0 {
                        return Err(op_err!("axis {axis} of input 0 (shape {shape:?}) cannot be split evenly into {n} outputs"));
                    }
                    vec![dim / n; n]
                }
            }
        };
        let mut outs = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for size in sizes {
            let mut maps = vec![AxisMap::Full; shape.len()];
            if !(start == 0 && size == dim) {
                maps[axis] = AxisMap::Map((start..start + size).map(Some).collect());
            }
            outs.push(remap_tensor(x, &maps, None)?);
            start += size;
        }
        Ok(outs)
    }
}

// ---------------------------------------------------------------------------------------
// Slice
// ---------------------------------------------------------------------------------------

/// Opset < 10 Slice attributes: starts, ends, axes.
type SliceAttrs = (Vec<i64>, Vec<i64>, Option<Vec<i64>>);

#[derive(Debug)]
struct Slice {
    attrs: Option<SliceAttrs>,
}

fn build_slice(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let attrs = if ctx.opset < 10 {
        let starts = ctx.node.req_attr_ints("starts")?;
        let ends = ctx.node.req_attr_ints("ends")?;
        if starts.len() != ends.len() {
            return Err(op_err!("attributes 'starts' {starts:?} and 'ends' {ends:?} differ in length"));
        }
        Some((starts, ends, ctx.opt_attr_ints("axes")?))
    } else {
        None
    };
    Ok(Box::new(Slice { attrs }))
}

/// Output indices of one sliced axis (ONNX clamping rules, negative steps included).
fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Vec<Option<usize>> {
    let d = dim as i128;
    let (mut s, mut e, st) = (start as i128, end as i128, step as i128);
    if s < 0 {
        s += d;
    }
    if e < 0 {
        e += d;
    }
    if st > 0 {
        s = s.clamp(0, d);
        e = e.clamp(0, d);
    } else {
        s = s.clamp(0, d - 1);
        e = e.clamp(-1, d - 1);
    }
    let count = if st > 0 { (e - s + st - 1) / st } else { (s - e + (-st) - 1) / (-st) }.max(0);
    (0..count).map(|i| Some((s + i * st) as usize)).collect()
}

impl Op for Slice {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let (starts, ends, axes, steps) = match &self.attrs {
            Some((s, e, a)) => (s.clone(), e.clone(), a.clone(), None),
            None => (
                int_input(inputs, 1, "starts")?,
                int_input(inputs, 2, "ends")?,
                opt_int_input(inputs, 3, "axes")?,
                opt_int_input(inputs, 4, "steps")?,
            ),
        };
        let n = starts.len();
        if ends.len() != n {
            return Err(op_err!("starts {starts:?} and ends {ends:?} differ in length"));
        }
        let axes = match axes {
            Some(a) => {
                if a.len() != n {
                    return Err(op_err!("axes {a:?} has {} entries, starts has {n}", a.len()));
                }
                norm_axes(&a, shape.len(), "axes")?
            }
            None => {
                if n > shape.len() {
                    return Err(op_err!("starts {starts:?} has more entries than input 0 has axes (shape {shape:?})"));
                }
                (0..n).collect()
            }
        };
        let steps = steps.unwrap_or_else(|| vec![1; n]);
        if steps.len() != n {
            return Err(op_err!("steps {steps:?} has {} entries, starts has {n}", steps.len()));
        }
        let mut maps = vec![AxisMap::Full; shape.len()];
        for i in 0..n {
            if steps[i] == 0 {
                return Err(op_err!("steps {steps:?} contains 0"));
            }
            let ax = axes[i];
            let m = slice_axis(shape[ax], starts[i], ends[i], steps[i]);
            let full = m.len() == shape[ax] && m.iter().enumerate().all(|(j, &v)| v == Some(j));
            if !full {
                maps[ax] = AxisMap::Map(m);
            }
        }
        Ok(vec![remap_tensor(x, &maps, None)?])
    }
}

// ---------------------------------------------------------------------------------------
// Pad
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

#[derive(Debug)]
struct Pad {
    mode: PadMode,
    /// opset < 11: pads and value attributes.
    attrs: Option<(Vec<i64>, f32)>,
}

fn build_pad(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let mode = match ctx.attr_s("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" => PadMode::Wrap,
        other => return Err(op_err!("attribute 'mode' = '{other}' is not one of constant, reflect, edge, wrap")),
    };
    let attrs = if ctx.opset < 11 {
        let pads = match ctx.opt_attr_ints("pads")? {
            Some(p) => p,
            None => ctx.opt_attr_ints("paddings")?.ok_or_else(|| op_err!("required attribute 'pads' is missing"))?,
        };
        Some((pads, ctx.attr_f("value", 0.0)?))
    } else {
        None
    };
    Ok(Box::new(Pad { mode, attrs }))
}

fn pad_axis(n: usize, pb: i64, pe: i64, mode: PadMode) -> OpResult<Vec<Option<usize>>> {
    let n = n as i64;
    let lo = (-pb).max(0);
    let hi = n - (-pe).max(0);
    if hi < lo {
        return Err(op_err!("pads ({pb}, {pe}) crop more than the axis size {n}"));
    }
    let m = hi - lo;
    let (b, e) = (pb.max(0), pe.max(0));
    let len = m + b + e;
    if m == 0 && len > 0 && mode != PadMode::Constant {
        return Err(op_err!("cannot pad an empty axis in a non-constant mode"));
    }
    Ok((0..len)
        .map(|o| {
            let rel = o - b;
            if (0..m).contains(&rel) {
                return Some((lo + rel) as usize);
            }
            let r = match mode {
                PadMode::Constant => return None,
                PadMode::Edge => rel.clamp(0, m - 1),
                PadMode::Wrap => rel.rem_euclid(m),
                PadMode::Reflect => {
                    if m == 1 {
                        0
                    } else {
                        let period = 2 * (m - 1);
                        let r = rel.rem_euclid(period);
                        if r >= m { period - r } else { r }
                    }
                }
            };
            Some((lo + r) as usize)
        })
        .collect())
}

impl Op for Pad {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let rank = shape.len();
        let (pads, fill) = match &self.attrs {
            Some((p, v)) => (p.clone(), super::cast::cast_tensor(&Tensor::F32(ArrayD::from_elem(IxDyn(&[]), *v)), x.dtype())?),
            None => {
                let pads = int_input(inputs, 1, "pads")?;
                let fill = match inputs.get(2).copied().flatten() {
                    Some(v) if !v.is_empty() => {
                        if v.dtype() != x.dtype() {
                            return Err(op_err!("input 2 (constant_value) is {}, input 0 is {}", v.dtype_name(), x.dtype_name()));
                        }
                        v.clone()
                    }
                    _ => super::cast::cast_tensor(&Tensor::F32(ArrayD::from_elem(IxDyn(&[]), 0.0)), x.dtype())?,
                };
                (pads, fill)
            }
        };
        let axes = match inputs.get(3).copied().flatten() {
            Some(a) => norm_axes(&ints_of(a, 3, "axes")?, rank, "axes")?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(op_err!("pads {pads:?} has {} entries, expected {} (2 x {} axes)", pads.len(), 2 * axes.len(), axes.len()));
        }
        let mut maps = vec![AxisMap::Full; rank];
        let k = axes.len();
        for (i, &ax) in axes.iter().enumerate() {
            let (pb, pe) = (pads[i], pads[i + k]);
            if pb != 0 || pe != 0 {
                maps[ax] = AxisMap::Map(pad_axis(shape[ax], pb, pe, self.mode)?);
            }
        }
        Ok(vec![remap_tensor(x, &maps, Some(&fill))?])
    }
}

// ---------------------------------------------------------------------------------------
// Expand / Tile
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Expand;

fn build_expand(_ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Expand))
}

impl Op for Expand {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let target = int_input(inputs, 1, "shape")?;
        let target = super::dims_usize(&target, "input 1 (shape)")?;
        let rank = x.shape().len().max(target.len());
        let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
        let xs = pad(x.shape());
        let ts = pad(&target);
        let mut maps = Vec::with_capacity(rank);
        let mut out_shape = Vec::with_capacity(rank);
        for (a, (&d, &t)) in xs.iter().zip(&ts).enumerate() {
            if d == t || t == 1 {
                maps.push(AxisMap::Full);
                out_shape.push(d);
            } else if d == 1 {
                maps.push(AxisMap::Map(vec![Some(0); t]));
                out_shape.push(t);
            } else {
                return Err(op_err!("input 0 (shape {:?}) cannot be broadcast to {target:?} (axis {a}: {d} vs {t})", x.shape()));
            }
        }
        let xr = map_tensor!(x, a => super::reshaped(a, &xs)?);
        Ok(vec![remap_tensor(&xr, &maps, None)?])
    }
}

#[derive(Debug)]
struct Tile;

fn build_tile(_ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(Tile))
}

impl Op for Tile {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let shape = x.shape();
        let reps = int_input(inputs, 1, "repeats")?;
        if reps.len() != shape.len() {
            return Err(op_err!("input 1 (repeats) {reps:?} has {} entries, input 0 has rank {}", reps.len(), shape.len()));
        }
        let reps = super::dims_usize(&reps, "input 1 (repeats)")?;
        let maps: Vec<AxisMap> = shape
            .iter()
            .zip(&reps)
            .map(|(&d, &r)| if r == 1 { AxisMap::Full } else { AxisMap::Map((0..d * r).map(|o| Some(o % d)).collect()) })
            .collect();
        Ok(vec![remap_tensor(x, &maps, None)?])
    }
}

// ---------------------------------------------------------------------------------------
// DepthToSpace / SpaceToDepth
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct SpaceDepth {
    blocksize: usize,
    crd: bool,
    to_space: bool,
}

fn build_space_depth(ctx: &BuildContext, to_space: bool) -> OpResult<Box<dyn Op>> {
    let bs = ctx.node.req_attr_i("blocksize")?;
    if bs < 1 {
        return Err(op_err!("attribute 'blocksize' = {bs} must be >= 1"));
    }
    let mode = ctx.attr_s("mode", "DCR")?;
    let crd = match mode.as_str() {
        "DCR" => false,
        "CRD" => true,
        other => return Err(op_err!("attribute 'mode' = '{other}' is not DCR or CRD")),
    };
    Ok(Box::new(SpaceDepth { blocksize: bs as usize, crd, to_space }))
}

fn build_depth_to_space(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    build_space_depth(ctx, true)
}

fn build_space_to_depth(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    build_space_depth(ctx, false)
}

impl Op for SpaceDepth {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let s = x.shape();
        if s.len() != 4 {
            return Err(op_err!("input 0 must be 4-D (N, C, H, W), got shape {s:?}"));
        }
        let b = self.blocksize;
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let (six, perm, out): (Vec<usize>, [usize; 6], Vec<usize>) = if self.to_space {
            if c % (b * b) != 0 {
                return Err(op_err!("input 0 channels {c} are not divisible by blocksize^2 = {}", b * b));
            }
            let c2 = c / (b * b);
            let out = vec![n, c2, h * b, w * b];
            if self.crd { (vec![n, c2, b, b, h, w], [0, 1, 4, 2, 5, 3], out) } else { (vec![n, b, b, c2, h, w], [0, 3, 4, 1, 5, 2], out) }
        } else {
            if h % b != 0 || w % b != 0 {
                return Err(op_err!("input 0 spatial size {h}x{w} is not divisible by blocksize {b}"));
            }
            let out = vec![n, c * b * b, h / b, w / b];
            let six = vec![n, c, h / b, b, w / b, b];
            if self.crd { (six, [0, 1, 3, 5, 2, 4], out) } else { (six, [0, 3, 5, 1, 2, 4], out) }
        };
        let y = map_tensor!(x, a => {
            let src = contiguous(a);
            let (_, v) = transpose_vec(&src, &six, &perm);
            make(&out, v)?
        });
        Ok(vec![y])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn seq(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        f32t(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
    }

    /// Reference transpose by index arithmetic.
    fn naive(shape: &[usize], perm: &[usize]) -> Vec<f32> {
        let a = ndarray::ArrayD::from_shape_fn(IxDyn(shape), |_| 0.0f32);
        let n: usize = shape.iter().product();
        let a = ndarray::ArrayD::from_shape_vec(a.raw_dim(), (0..n).map(|i| i as f32).collect()).unwrap();
        a.permuted_axes(IxDyn(perm)).iter().copied().collect()
    }

    #[test]
    fn transpose_paths_match_reference() {
        for (shape, perm) in [
            (vec![2, 3, 4, 5], vec![0, 2, 3, 1]),
            (vec![2, 3, 4, 5], vec![0, 3, 1, 2]),
            (vec![2, 3, 40, 50], vec![0, 1, 3, 2]),
            (vec![2, 3, 4, 5], vec![1, 0, 2, 3]),
            (vec![2, 3, 4], vec![2, 0, 1]),
            (vec![1, 3, 1, 5], vec![3, 2, 1, 0]),
            (vec![300, 257], vec![1, 0]),
            (vec![2, 3, 4, 5], vec![3, 1, 2, 0]),
        ] {
            let x = seq(&shape);
            let y = transpose_tensor(&x, &perm).unwrap();
            let want: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            assert_eq!(y.shape(), want.as_slice());
            assert_eq!(y.to_f64_vec(), naive(&shape, &perm).iter().map(|&v| v as f64).collect::<Vec<_>>(), "{shape:?} {perm:?}");
        }
        let op = build(build_transpose, "Transpose", 13, 1, 1, vec![ais("perm", &[0, 0])]).unwrap();
        assert!(run1(op.as_ref(), &[Some(&seq(&[2, 2]))]).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn slice_clamping_and_negative_steps() {
        // dim 5, start -1 -> 4, end INT_MIN -> clamps to -1, step -2: 4, 2, 0.
        assert_eq!(slice_axis(5, -1, i64::MIN, -2), vec![Some(4), Some(2), Some(0)]);
        // start 1, end INT_MAX -> 5, step 2: 1, 3.
        assert_eq!(slice_axis(5, 1, i64::MAX, 2), vec![Some(1), Some(3)]);
        // start 10 clamps to 5: empty.
        assert!(slice_axis(5, 10, 20, 1).is_empty());
        let op = build(build_slice, "Slice", 13, 5, 1, vec![]).unwrap();
        let x = seq(&[3, 4]);
        let y = run1(op.as_ref(), &[Some(&x), Some(&i64t(&[1], &[1])), Some(&i64t(&[1], &[3])), Some(&i64t(&[1], &[-1])), None]).unwrap();
        // columns 1..3 of [[0,1,2,3],[4,5,6,7],[8,9,10,11]].
        assert_eq!(y, f32t(&[3, 2], &[1., 2., 5., 6., 9., 10.]));
        let e =
            run1(op.as_ref(), &[Some(&x), Some(&i64t(&[1], &[1])), Some(&i64t(&[1], &[3])), None, Some(&i64t(&[1], &[0]))]).unwrap_err().0;
        assert!(e.contains("contains 0"), "{e}");
    }

    #[test]
    fn pad_modes() {
        // Axis of [1, 2, 3] padded (2, 2).
        let m = |mode| pad_axis(3, 2, 2, mode).unwrap().into_iter().map(|v| v.map(|i| i as i64).unwrap_or(-1)).collect::<Vec<_>>();
        assert_eq!(m(PadMode::Constant), vec![-1, -1, 0, 1, 2, -1, -1]);
        assert_eq!(m(PadMode::Edge), vec![0, 0, 0, 1, 2, 2, 2]);
        // reflect: 3 2 | 1 2 3 | 2 1 -> indices 2 1 0 1 2 1 0.
        assert_eq!(m(PadMode::Reflect), vec![2, 1, 0, 1, 2, 1, 0]);
        // wrap: 2 3 | 1 2 3 | 1 2 -> indices 1 2 0 1 2 0 1.
        assert_eq!(m(PadMode::Wrap), vec![1, 2, 0, 1, 2, 0, 1]);
        // Negative pads crop: (-1, 1) on [a, b, c] -> [b, c, pad].
        assert_eq!(pad_axis(3, -1, 1, PadMode::Constant).unwrap(), vec![Some(1), Some(2), None]);
        let op = build(build_pad, "Pad", 13, 3, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&f32t(&[1, 2], &[1., 2.])), Some(&i64t(&[4], &[0, 1, 0, 0])), Some(&f32t(&[], &[7.]))]).unwrap();
        assert_eq!(y, f32t(&[1, 3], &[7., 1., 2.]));
        let e = run1(op.as_ref(), &[Some(&f32t(&[1, 2], &[1., 2.])), Some(&i64t(&[2], &[0, 1])), None]).unwrap_err().0;
        assert!(e.contains("expected 4"), "{e}");
    }

    #[test]
    fn concat_split_expand_tile() {
        let op = build(build_concat, "Concat", 13, 3, 1, vec![ai("axis", -1)]).unwrap();
        let a = f32t(&[2, 1], &[1., 2.]);
        let b = f32t(&[2, 2], &[3., 4., 5., 6.]);
        let empty = f32t(&[0], &[]);
        let y = run1(op.as_ref(), &[Some(&a), Some(&empty), Some(&b)]).unwrap();
        assert_eq!(y, f32t(&[2, 3], &[1., 3., 4., 2., 5., 6.]));
        let e = run1(op.as_ref(), &[Some(&a), Some(&f32t(&[3, 1], &[0.; 3]))]).unwrap_err().0;
        assert!(e.contains("incompatible"), "{e}");

        // Opset 18 num_outputs=3 on 7 elements: chunks of ceil(7/3)=3 -> 3, 3, 1.
        let op = build(build_split, "Split", 18, 1, 3, vec![ai("num_outputs", 3)]).unwrap();
        let outs = op.run(&[Some(&seq(&[7]))]).unwrap();
        assert_eq!(outs.iter().map(|t| t.len()).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert_eq!(outs[2], f32t(&[1], &[6.]));

        let op = build(build_expand, "Expand", 13, 2, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&f32t(&[2, 1], &[1., 2.])), Some(&i64t(&[3], &[2, 1, 3]))]).unwrap();
        assert_eq!(y, f32t(&[2, 2, 3], &[1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.]));

        let op = build(build_tile, "Tile", 13, 2, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&f32t(&[1, 2], &[1., 2.])), Some(&i64t(&[2], &[2, 2]))]).unwrap();
        assert_eq!(y, f32t(&[2, 4], &[1., 2., 1., 2., 1., 2., 1., 2.]));
    }

    #[test]
    fn depth_space_round_trip() {
        // DCR with blocksize 2 on [1, 4, 1, 1] = [0,1,2,3]: out[0,0,i,j] = in[(2i+j)] -> [[0,1],[2,3]].
        let op = build(build_depth_to_space, "DepthToSpace", 13, 1, 1, vec![ai("blocksize", 2)]).unwrap();
        let y = run1(op.as_ref(), &[Some(&seq(&[1, 4, 1, 1]))]).unwrap();
        assert_eq!(y, f32t(&[1, 1, 2, 2], &[0., 1., 2., 3.]));
        let x = seq(&[2, 8, 3, 2]);
        for mode in ["DCR", "CRD"] {
            let d2s = build(build_depth_to_space, "DepthToSpace", 13, 1, 1, vec![ai("blocksize", 2), astr("mode", mode)]).unwrap();
            let s2d = build(build_space_to_depth, "SpaceToDepth", 13, 1, 1, vec![ai("blocksize", 2), astr("mode", mode)]).unwrap();
            let y = run1(d2s.as_ref(), &[Some(&x)]).unwrap();
            assert_eq!(y.shape(), &[2, 2, 6, 4]);
            assert_eq!(run1(s2d.as_ref(), &[Some(&y)]).unwrap(), x);
        }
    }
}

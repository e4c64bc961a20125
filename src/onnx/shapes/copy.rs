//! Shape rules: Ops that copy elements around: Concat, Split, Slice, Transpose, Expand, Tile, Pad, DepthToSpace / SpaceToDepth.

use super::{
    Ctx, Infer, KnownValue, Out, Outs, Unresolved, axis_lists, broadcast, broadcast_value, fail, norm_axes, norm_axis, numel, outs, small,
    strides, take_indices,
};
use crate::onnx::attr::NodeExt;

/// Concat along `axis`; the other dims must match.
pub(super) fn concat(cx: &Ctx) -> Infer<Outs> {
    let n = cx.node.input.len();
    let shapes: Vec<&[i64]> = (0..n).map(|i| cx.shape(i)).collect::<Infer<_>>()?;
    let first = *shapes.first().ok_or_else(|| Unresolved("no inputs".into()))?;
    let axis = norm_axis(cx.node.req_attr_i("axis")?, first.len())?;
    let mut shape = first.to_vec();
    shape[axis] = 0;
    for s in &shapes {
        let matches = s.len() == first.len() && (0..s.len()).all(|i| i == axis || s[i] == first[i]);
        if !matches {
            return fail(format!("inputs {shapes:?} cannot be concatenated on axis {axis}"));
        }
        shape[axis] += s[axis];
    }
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let values: Vec<&KnownValue> = (0..n).map(|i| cx.value(i)).collect::<Option<_>>()?;
        let all = KnownValue::chain(&values)?;
        // For each outer index, every input contributes one contiguous chunk.
        let outer = numel(&first[..axis]) as usize;
        let chunks: Vec<usize> = shapes.iter().map(|s| numel(&s[axis..]) as usize).collect();
        let starts: Vec<usize> = chunks.iter().scan(0, |acc, &c| Some(std::mem::replace(acc, *acc + c * outer))).collect();
        let picks =
            (0..outer).flat_map(|o| chunks.iter().zip(&starts).flat_map(move |(&c, &s)| s + o * c..s + (o + 1) * c)).collect::<Vec<_>>();
        Some(all.pick(&picks))
    })();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Split along `axis`: sizes from the `split` attribute (before opset 13) or input 1 (from
/// 13); otherwise equal parts over the outputs / `num_outputs` (opset 18: the last part is
/// smaller when the dim does not divide evenly).
pub(super) fn split(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, x.len())?;
    let dim = x[axis];
    let sizes = match cx.ints_attr_or_input("split", 1, 13)? {
        Some(sizes) if !sizes.is_empty() => sizes,
        _ => {
            let parts = match cx.node.opt_attr_i("num_outputs")? {
                Some(n) => n,
                None => cx.node.output.len() as i64,
            };
            if parts <= 0 {
                return fail("no outputs to split into");
            }
            let chunk = (dim + parts - 1) / parts;
            if cx.opset < 18 && dim % parts != 0 {
                return fail(format!("dim {dim} does not split evenly into {parts} parts"));
            }
            (0..parts).map(|k| (dim - k * chunk).clamp(0, chunk)).collect()
        }
    };
    if sizes.iter().sum::<i64>() != dim || sizes.iter().any(|&s| s < 0) {
        return fail(format!("split sizes {sizes:?} do not add up to dim {dim}"));
    }
    let mut start = 0usize;
    let mut list = Vec::new();
    for &size in &sizes {
        let mut shape = x.to_vec();
        shape[axis] = size;
        let range: Vec<usize> = (start..start + size as usize).collect();
        start += size as usize;
        let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
            let per_axis = axis_lists(x, axis, range);
            v.pick(&take_indices(x, &per_axis))
        });
        list.push(Out::new(shape, cx.dtype(0)).with_value(value));
    }
    outs(list)
}

/// Slice: `starts`/`ends`/`axes` attributes before opset 10, inputs 1-4 (with `steps`) from 10.
pub(super) fn slice(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        (cx.node.req_attr_ints("starts")?, cx.node.req_attr_ints("ends")?, cx.node.opt_attr_ints("axes")?, None)
    } else {
        (cx.ints(1, "starts")?, cx.ints(2, "ends")?, cx.opt_ints(3, "axes")?, cx.opt_ints(4, "steps")?)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return fail(format!("starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"));
    }
    norm_axes(&axes, x.len())?; // rejects repeated axes
    let mut lists: Vec<Vec<usize>> = x.iter().map(|&d| (0..d as usize).collect()).collect();
    for (((&axis, &start), &end), &step) in axes.iter().zip(&starts).zip(&ends).zip(&steps) {
        let axis = norm_axis(axis, x.len())?;
        lists[axis] = slice_axis(x[axis], start, end, step)?;
    }
    let shape: Vec<i64> = lists.iter().map(|l| l.len() as i64).collect();
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| v.pick(&take_indices(x, &lists)));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// The indices one Slice axis selects, with the specification's clamping rules.
fn slice_axis(dim: i64, start: i64, end: i64, step: i64) -> Infer<Vec<usize>> {
    if step == 0 {
        return fail("slice step is 0");
    }
    if dim == 0 {
        return Ok(Vec::new());
    }
    let adjust = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (start, end) = (adjust(start), adjust(end));
    let (start, end) = if step > 0 { (start.clamp(0, dim), end.clamp(0, dim)) } else { (start.clamp(0, dim - 1), end.clamp(-1, dim - 1)) };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        out.push(i as usize);
        i += step;
    }
    Ok(out)
}

/// Transpose by `perm` (default: reversed axes).
pub(super) fn transpose(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let perm = cx.node.attr_ints("perm", &(0..x.len() as i64).rev().collect::<Vec<_>>())?;
    let axes = norm_axes(&perm, x.len())?;
    if axes.len() != x.len() {
        return fail(format!("perm {perm:?} is not a permutation of rank {}", x.len()));
    }
    let perm: Vec<usize> = perm.iter().map(|&p| norm_axis(p, x.len())).collect::<Infer<_>>()?;
    let shape: Vec<i64> = perm.iter().map(|&p| x[p]).collect();
    // Values: output index (i_0, ..., i_r) reads input element with i_k on axis perm[k].
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
        let st = strides(x);
        let mut picks = vec![0usize];
        for (k, &p) in perm.iter().enumerate() {
            let (n, stride) = (shape[k] as usize, st[p]);
            picks = picks.iter().flat_map(|&b| (0..n).map(move |i| b + i * stride)).collect();
        }
        v.pick(&picks)
    });
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Expand: broadcast of the input shape and the target shape (input 1).
pub(super) fn expand(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let target = cx.ints(1, "shape")?;
    let shape = broadcast(&[x, &target])?;
    let value = cx.value(0).and_then(|v| broadcast_value(v, x, &shape));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Tile: each dim times its repeat count.
pub(super) fn tile(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let repeats = cx.ints(1, "repeats")?;
    if repeats.len() != x.len() || repeats.iter().any(|&r| r < 0) {
        return fail(format!("repeats {repeats:?} do not fit rank {}", x.len()));
    }
    let shape: Vec<i64> = x.iter().zip(&repeats).map(|(d, r)| d * r).collect();
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
        let lists: Vec<Vec<usize>> = x.iter().zip(&shape).map(|(&d, &n)| (0..n as usize).map(|i| i % d as usize).collect()).collect();
        v.pick(&take_indices(x, &lists))
    });
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Pad: `paddings` (opset 1) / `pads` attribute before opset 11, input 1 from 11 (with
/// optional `axes` input 3 from 18). Each dim grows by its begin and end pad.
pub(super) fn pad(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let pads = match cx.opset {
        ..2 => cx.node.req_attr_ints("paddings")?,
        2..11 => cx.node.req_attr_ints("pads")?,
        _ => cx.ints(1, "pads")?,
    };
    let axes: Vec<usize> = match cx.opset {
        18.. => match cx.opt_ints(3, "axes")? {
            Some(axes) => axes.iter().map(|&a| norm_axis(a, x.len())).collect::<Infer<_>>()?,
            None => (0..x.len()).collect(),
        },
        _ => (0..x.len()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return fail(format!("pads {pads:?} do not fit {} axes", axes.len()));
    }
    let mut shape = x.to_vec();
    for (k, &a) in axes.iter().enumerate() {
        shape[a] += pads[k] + pads[k + axes.len()];
    }
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// DepthToSpace `[N, C/b², H·b, W·b]` and SpaceToDepth `[N, C·b², H/b, W/b]`.
pub(super) fn depth_space(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let b = cx.node.req_attr_i("blocksize")?;
    if x.len() != 4 || b <= 0 {
        return fail(format!("needs a 4-D input and a positive blocksize, got {x:?} and {b}"));
    }
    let shape = if cx.node.op_type() == "DepthToSpace" {
        if x[1] % (b * b) != 0 {
            return fail(format!("channels {} are not divisible by blocksize² {}", x[1], b * b));
        }
        vec![x[0], x[1] / (b * b), x[2] * b, x[3] * b]
    } else {
        if x[2] % b != 0 || x[3] % b != 0 {
            return fail(format!("spatial dims {:?} are not divisible by blocksize {b}", &x[2..]));
        }
        vec![x[0], x[1] * b * b, x[2] / b, x[3] / b]
    };
    outs(vec![Out::new(shape, cx.dtype(0))])
}

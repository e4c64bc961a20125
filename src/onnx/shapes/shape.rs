//! Shape rules: Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size, Constant and ConstantOfShape.

use super::{
    Ctx, FLOAT, INT64, Infer, KnownValue, Out, Outs, STRING, Unresolved, fail, norm_axes, norm_axis, numel, outs, small, small_tensor_value,
};
use crate::onnx::attr::NodeExt;

/// Reshape: target from input 1 (from opset 5) or the `shape` attribute; 0 copies the input
/// dim (unless `allowzero`), -1 takes the remaining size.
pub(super) fn reshape(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let target = if cx.opset < 5 { cx.node.req_attr_ints("shape")? } else { cx.ints(1, "shape")? };
    let allowzero = cx.node.attr_i("allowzero", 0)? != 0;
    let mut shape = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 if !allowzero => match x.get(i) {
                Some(&d) => shape.push(d),
                None => return fail(format!("target {target:?} copies dim {i} of the rank-{} input", x.len())),
            },
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                shape.push(1);
            }
            t if t >= 0 => shape.push(t),
            _ => return fail(format!("invalid reshape target {target:?}")),
        }
    }
    let (total, known) = (numel(x), numel(&shape));
    if let Some(i) = infer_at {
        if known == 0 || total % known != 0 {
            return fail(format!("cannot reshape {x:?} to {target:?}"));
        }
        shape[i] = total / known;
    } else if known != total {
        return fail(format!("cannot reshape {x:?} ({total} elements) to {shape:?}"));
    }
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Flatten to 2-D at `axis` (default 1; `axis == rank` is allowed).
pub(super) fn flatten(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = cx.node.attr_i("axis", 1)?;
    let axis = if axis == x.len() as i64 { x.len() } else { norm_axis(axis, x.len())? };
    let shape = vec![numel(&x[..axis]), numel(&x[axis..])];
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Squeeze: `axes` attribute before opset 13, input 1 from 13; no axes removes every 1.
pub(super) fn squeeze(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axes = match cx.ints_attr_or_input("axes", 1, 13)? {
        Some(axes) => norm_axes(&axes, x.len())?,
        None => (0..x.len()).filter(|&i| x[i] == 1).collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
        return fail(format!("cannot squeeze axis {a} of size {}", x[a]));
    }
    let shape: Vec<i64> = (0..x.len()).filter(|i| !axes.contains(i)).map(|i| x[i]).collect();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Unsqueeze: `axes` attribute before opset 13, input 1 from 13, relative to the output rank.
pub(super) fn unsqueeze(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axes = cx.ints_attr_or_input("axes", 1, 13)?.ok_or_else(|| Unresolved("axes are missing".into()))?;
    let rank = x.len() + axes.len();
    let axes = norm_axes(&axes, rank)?;
    let mut rest = x.iter();
    let shape: Vec<i64> = (0..rank).map(|i| if axes.contains(&i) { 1 } else { *rest.next().expect("rank adds up") }).collect();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Shape: the input's dims as INT64 (sliced by `start`/`end` from opset 15, clamped).
pub(super) fn shape_op(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let r = x.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(cx.node.attr_i("start", 0)?);
    let end = clamp(cx.node.attr_i("end", r)?);
    let dims = x[start..end.max(start)].to_vec();
    outs(vec![Out::new(vec![dims.len() as i64], Some(INT64)).with_value(Some(KnownValue::Ints(dims)))])
}

/// Size: scalar INT64 element count.
pub(super) fn size_op(cx: &Ctx) -> Infer<Outs> {
    let n = numel(cx.shape(0)?);
    outs(vec![Out::new(vec![], Some(INT64)).with_value(Some(KnownValue::Ints(vec![n])))])
}

/// Constant: `value` (tensor), `sparse_value`, `value_float(s)`, `value_int(s)`,
/// `value_string(s)`.
pub(super) fn constant(cx: &Ctx) -> Infer<Outs> {
    let node = cx.node;
    if let Some(t) = node.opt_attr_tensor("value")? {
        return outs(vec![Out::new(t.dims.clone(), Some(t.data_type())).with_value(small_tensor_value(t))]);
    }
    if let Some(s) = node.attr("sparse_value").and_then(|a| a.sparse_tensor.as_ref()) {
        return outs(vec![Out::new(s.dims.clone(), s.values.as_ref().map(|v| v.data_type()))]);
    }
    let floats = |v: Vec<f32>| KnownValue::Floats(v.into_iter().map(f64::from).collect());
    let out = if let Some(f) = node.opt_attr_f("value_float")? {
        Out::new(vec![], Some(FLOAT)).with_value(Some(floats(vec![f])))
    } else if let Some(f) = node.opt_attr_floats("value_floats")? {
        Out::new(vec![f.len() as i64], Some(FLOAT)).with_value(Some(floats(f)))
    } else if let Some(i) = node.opt_attr_i("value_int")? {
        Out::new(vec![], Some(INT64)).with_value(Some(KnownValue::Ints(vec![i])))
    } else if let Some(i) = node.opt_attr_ints("value_ints")? {
        Out::new(vec![i.len() as i64], Some(INT64)).with_value(Some(KnownValue::Ints(i)))
    } else if node.opt_attr_s("value_string")?.is_some() {
        Out::new(vec![], Some(STRING))
    } else if let Some(a) = node.attr("value_strings") {
        Out::new(vec![a.strings.len() as i64], Some(STRING))
    } else {
        return fail("Constant has no value attribute");
    };
    outs(vec![out])
}

/// ConstantOfShape: shape from input 0's value, type and fill from `value` (default FLOAT 0).
pub(super) fn constant_of_shape(cx: &Ctx) -> Infer<Outs> {
    let shape = cx.ints(0, "shape")?;
    if shape.iter().any(|&d| d < 0) {
        return fail(format!("negative dimension in {shape:?}"));
    }
    let (dtype, fill) = match cx.node.opt_attr_tensor("value")? {
        Some(t) => (t.data_type(), small_tensor_value(t)),
        None => (FLOAT, Some(KnownValue::Floats(vec![0.0]))),
    };
    let value = fill.filter(|f| f.len() == 1 && small(&shape)).map(|f| f.pick(&vec![0; numel(&shape) as usize]));
    outs(vec![Out::new(shape, Some(dtype)).with_value(value)])
}

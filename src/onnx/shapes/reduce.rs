//! Shape rules: Reduce*, ArgMax / ArgMin and TopK.

use std::collections::BTreeSet;

use super::{Ctx, INT64, Infer, KnownValue, Out, Outs, fail, norm_axes, norm_axis, numel, outs, round_to, small, strides};
use crate::onnx::attr::NodeExt;

/// Reduce*: `axes` attribute before opset 13 (ReduceSum) / 18 (the others), input 1 after;
/// no axes reduces everything unless `noop_with_empty_axes`. Values propagate for
/// ReduceProd, ReduceSum, ReduceMax and ReduceMin.
pub(super) fn reduce(cx: &Ctx) -> Infer<Outs> {
    let op = cx.node.op_type();
    if !matches!(
        op,
        "ReduceSum"
            | "ReduceMean"
            | "ReduceMax"
            | "ReduceMin"
            | "ReduceProd"
            | "ReduceL1"
            | "ReduceL2"
            | "ReduceLogSum"
            | "ReduceLogSumExp"
            | "ReduceSumSquare"
    ) {
        return fail(format!("operator '{op}' has no shape rule"));
    }
    let x = cx.shape(0)?;
    let since = if op == "ReduceSum" { 13 } else { 18 };
    let axes = cx.ints_attr_or_input("axes", 1, since)?.unwrap_or_default();
    let keepdims = cx.node.attr_i("keepdims", 1)? != 0;
    let axes: BTreeSet<usize> = if axes.is_empty() {
        if cx.node.attr_i("noop_with_empty_axes", 0)? != 0 {
            return outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(cx.value(0).cloned())]);
        }
        (0..x.len()).collect()
    } else {
        norm_axes(&axes, x.len())?
    };
    let shape: Vec<i64> = (0..x.len())
        .filter_map(|i| match (axes.contains(&i), keepdims) {
            (false, _) => Some(x[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let value = cx.value(0).filter(|_| small(x)).and_then(|v| reduce_value(op, v, x, &axes, cx.dtype(0)));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Reduces `value` (of shape `x`) over `axes`; the result is in row-major order of the kept
/// axes, which is the same for keepdims 0 and 1.
fn reduce_value(op: &str, value: &KnownValue, x: &[i64], axes: &BTreeSet<usize>, dtype: Option<i32>) -> Option<KnownValue> {
    let kept: Vec<i64> = (0..x.len()).map(|i| if axes.contains(&i) { 1 } else { x[i] }).collect();
    let kept_strides = strides(&kept);
    let x_strides = strides(x);
    let n_out = numel(&kept) as usize;
    // Output slot of every input element.
    let slot = |flat: usize| -> usize {
        (0..x.len()).filter(|i| !axes.contains(i)).map(|i| (flat / x_strides[i]) % x[i] as usize * kept_strides[i]).sum()
    };
    match value {
        // The identity of an empty Max/Min is the element type's extreme value: not tracked.
        KnownValue::Ints(v) if v.is_empty() && matches!(op, "ReduceMax" | "ReduceMin") => None,
        KnownValue::Ints(v) => {
            type Fold = fn(i64, i64) -> Option<i64>;
            let (init, f): (i64, Fold) = match op {
                "ReduceProd" => (1, i64::checked_mul),
                "ReduceSum" => (0, i64::checked_add),
                "ReduceMax" => (i64::MIN, |a, b| Some(a.max(b))),
                "ReduceMin" => (i64::MAX, |a, b| Some(a.min(b))),
                _ => return None,
            };
            let mut out = vec![init; n_out];
            for (i, &e) in v.iter().enumerate() {
                let s = slot(i);
                out[s] = f(out[s], e)?;
            }
            Some(KnownValue::Ints(out))
        }
        KnownValue::Floats(v) => {
            let (init, f): (f64, fn(f64, f64) -> f64) = match op {
                "ReduceProd" => (1.0, |a, b| a * b),
                "ReduceSum" => (0.0, |a, b| a + b),
                "ReduceMax" => (f64::NEG_INFINITY, f64::max),
                "ReduceMin" => (f64::INFINITY, f64::min),
                _ => return None,
            };
            let mut out = vec![init; n_out];
            for (i, &e) in v.iter().enumerate() {
                let s = slot(i);
                out[s] = f(out[s], e);
            }
            Some(KnownValue::Floats(out.into_iter().map(|e| round_to(dtype, e)).collect()))
        }
    }
}

/// ArgMax / ArgMin: INT64, `axis` reduced (kept as 1 with keepdims).
pub(super) fn arg_reduce(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, x.len())?;
    let mut shape = x.to_vec();
    if cx.node.attr_i("keepdims", 1)? != 0 {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    outs(vec![Out::new(shape, Some(INT64))])
}

/// TopK: `axis` becomes K (`k` attribute before opset 10, input 1 from 10); indices INT64.
pub(super) fn topk(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", -1)?, x.len())?;
    let k = if cx.opset < 10 { cx.node.req_attr_i("k")? } else { cx.scalar_int(1, "K")? };
    if k < 0 || k > x[axis] {
        return fail(format!("K = {k} does not fit dim {}", x[axis]));
    }
    let mut shape = x.to_vec();
    shape[axis] = k;
    outs(vec![Out::new(shape.clone(), cx.dtype(0)), Out::new(shape, Some(INT64))])
}

//! Shape rules: Gather, GatherND and Range.

use super::{
    Ctx, Infer, KnownValue, MAX_KNOWN_ELEMENTS, Out, Outs, Unresolved, axis_lists, fail, norm_axis, outs, round_to, small, take_indices,
};
use crate::onnx::attr::NodeExt;

/// Gather: `data[:axis] + indices.shape + data[axis+1:]`; values when both are known.
pub(super) fn gather(cx: &Ctx) -> Infer<Outs> {
    let (data, indices) = (cx.shape(0)?, cx.shape(1)?);
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, data.len())?;
    let mut shape = data[..axis].to_vec();
    shape.extend_from_slice(indices);
    shape.extend_from_slice(&data[axis + 1..]);
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let dim = data[axis];
        let idx: Vec<usize> = cx
            .value(1)?
            .as_ints()?
            .iter()
            .map(|&i| {
                let i = if i < 0 { i + dim } else { i };
                (0..dim).contains(&i).then_some(i as usize)
            })
            .collect::<Option<_>>()?;
        Some(cx.value(0)?.pick(&take_indices(data, &axis_lists(data, axis, idx))))
    })();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// GatherND: `indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]`.
pub(super) fn gather_nd(cx: &Ctx) -> Infer<Outs> {
    let (data, indices) = (cx.shape(0)?, cx.shape(1)?);
    let b = cx.node.attr_i("batch_dims", 0)? as usize;
    let last = *indices.last().ok_or_else(|| Unresolved("indices must not be a scalar".into()))? as usize;
    if b + last > data.len() {
        return fail(format!("indices {indices:?} do not fit data {data:?} with batch_dims {b}"));
    }
    let mut shape = indices[..indices.len() - 1].to_vec();
    shape.extend_from_slice(&data[b + last..]);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// Range: `max(ceil((limit - start) / delta), 0)` elements of the type of `start`.
pub(super) fn range(cx: &Ctx) -> Infer<Outs> {
    let dtype = cx.dtype(0);
    let [start, limit, delta] = [(0, "start"), (1, "limit"), (2, "delta")].map(|(i, what)| match cx.value(i) {
        Some(v) if v.len() == 1 => Ok(v.clone()),
        _ => fail(format!("value of input {what} is not known")),
    });
    let (start, limit, delta) = (start?, limit?, delta?);
    let (n, value) = match (&start, &limit, &delta) {
        (KnownValue::Ints(s), KnownValue::Ints(l), KnownValue::Ints(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0 {
                return fail("delta is 0");
            }
            // Exact integer ceil division of (l - s) by d.
            let (num, den) = if d < 0 { (s - l, -d) } else { (l - s, d) };
            let n = if num <= 0 { 0 } else { (num + den - 1) / den };
            let value = (n as usize <= MAX_KNOWN_ELEMENTS).then(|| KnownValue::Ints((0..n).map(|i| s + i * d).collect()));
            (n, value)
        }
        _ => {
            let (s, l, d) = (start.to_f64_vec()[0], limit.to_f64_vec()[0], delta.to_f64_vec()[0]);
            if d == 0.0 {
                return fail("delta is 0");
            }
            let n = round_to(dtype, round_to(dtype, l - s) / d).ceil().max(0.0) as i64;
            let value =
                (n as usize <= MAX_KNOWN_ELEMENTS).then(|| KnownValue::Floats((0..n).map(|i| round_to(dtype, s + i as f64 * d)).collect()));
            (n, value)
        }
    };
    outs(vec![Out::new(vec![n], dtype).with_value(value)])
}

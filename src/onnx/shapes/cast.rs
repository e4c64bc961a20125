//! Shape rules: Cast and CastLike.

use super::{BOOL, Ctx, Infer, KnownValue, Out, Outs, is_float_type, is_int_type, outs, round_to, wrap_int};

/// Cast / CastLike to `to`, converting a known value the way a cast does.
pub(super) fn cast(cx: &Ctx, to: i32) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).and_then(|v| cast_value(v, to));
    outs(vec![Out::new(x.to_vec(), Some(to)).with_value(value)])
}

/// Float → int truncates toward zero (out-of-range gives no value); int → narrower int wraps;
/// anything → bool is `!= 0`; → float rounds to the target precision.
fn cast_value(v: &KnownValue, to: i32) -> Option<KnownValue> {
    if is_float_type(to) {
        return Some(KnownValue::Floats(v.to_f64_vec().into_iter().map(|x| round_to(Some(to), x)).collect()));
    }
    if !is_int_type(to) {
        return None;
    }
    match v {
        KnownValue::Ints(v) => Some(KnownValue::Ints(v.iter().map(|&x| wrap_int(to, x)).collect())),
        KnownValue::Floats(v) if to == BOOL => Some(KnownValue::Ints(v.iter().map(|&x| (x != 0.0) as i64).collect())),
        KnownValue::Floats(v) => v
            .iter()
            .map(|&x| {
                let t = x.trunc();
                (t.is_finite() && t.abs() < 9.2e18).then(|| wrap_int(to, t as i64))
            })
            .collect::<Option<_>>()
            .map(KnownValue::Ints),
    }
}

//! Shape rules: Broadcasting element-wise ops (arithmetic, comparisons, logic, variadic) and Where, with value folding.

use super::{Ctx, Infer, KnownValue, Out, Outs, broadcast, broadcast_value, fail, numel, outs, round_to, small, wrap_int};
use crate::onnx::attr::NodeExt;

/// Broadcasting element-wise ops (binary and variadic). `dtype` overrides the output type
/// (BOOL for comparisons and logic); otherwise it is the type of input 0.
pub(super) fn elementwise(cx: &Ctx, dtype: Option<i32>) -> Infer<Outs> {
    let n = cx.node.input.len();
    if n == 0 {
        return fail("no inputs");
    }
    let shapes: Vec<&[i64]> = (0..n).map(|i| cx.shape(i)).collect::<Infer<_>>()?;
    let shape = broadcast(&shapes)?;
    let dtype = dtype.or_else(|| cx.dtype(0));
    let value = elementwise_value(cx, &shapes, &shape, dtype);
    outs(vec![Out::new(shape, dtype).with_value(value)])
}

/// Folds the known input values of an element-wise op left to right.
fn elementwise_value(cx: &Ctx, shapes: &[&[i64]], out: &[i64], dtype: Option<i32>) -> Option<KnownValue> {
    if !small(out) {
        return None;
    }
    let op = match cx.node.op_type() {
        "Mod" if cx.node.attr_i("fmod", 0).ok()? != 0 => "FMod",
        op => op,
    };
    let values: Vec<KnownValue> = (0..shapes.len()).map(|i| broadcast_value(cx.value(i)?, shapes[i], out)).collect::<Option<_>>()?;
    let mut acc = values[0].clone();
    for v in &values[1..] {
        acc = binary_value(op, &acc, v, dtype)?;
    }
    match (op, acc) {
        ("Mean", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| round_to(dtype, x / values.len() as f64)).collect())),
        ("Mean", KnownValue::Ints(_)) => None,
        (_, acc) => Some(acc),
    }
}

/// One step of an element-wise op on two equally shaped values. Integer division truncates
/// toward zero, as the ONNX `Div` specification requires for integer inputs. `Mod` takes the
/// sign of the divisor, `FMod` (Mod with `fmod = 1`) the sign of the dividend.
fn binary_value(op: &str, a: &KnownValue, b: &KnownValue, dtype: Option<i32>) -> Option<KnownValue> {
    use KnownValue::{Floats, Ints};
    let ints = |f: fn(i64, i64) -> Option<i64>, x: &[i64], y: &[i64]| -> Option<KnownValue> {
        x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect::<Option<_>>().map(Ints)
    };
    let cmp = |f: fn(f64, f64) -> bool| -> Option<KnownValue> {
        let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
        Some(Ints(x.iter().zip(&y).map(|(&p, &q)| f(p, q) as i64).collect()))
    };
    match op {
        "Equal" => {
            if let (Ints(x), Ints(y)) = (a, b) {
                return Some(Ints(x.iter().zip(y).map(|(p, q)| (p == q) as i64).collect()));
            }
            cmp(|p, q| p == q)
        }
        "Less" => cmp(|p, q| p < q),
        "Greater" => cmp(|p, q| p > q),
        "LessOrEqual" => cmp(|p, q| p <= q),
        "GreaterOrEqual" => cmp(|p, q| p >= q),
        "And" | "Or" | "Xor" => {
            let (x, y) = (a.as_ints()?, b.as_ints()?);
            let f: fn(bool, bool) -> bool = match op {
                "And" => |p, q| p && q,
                "Or" => |p, q| p || q,
                _ => |p, q| p != q,
            };
            Some(Ints(x.iter().zip(y).map(|(&p, &q)| f(p != 0, q != 0) as i64).collect()))
        }
        _ => match (a, b) {
            (Ints(x), Ints(y)) => {
                let r = match op {
                    "Add" | "Sum" => ints(i64::checked_add, x, y),
                    "Sub" => ints(i64::checked_sub, x, y),
                    "Mul" => ints(i64::checked_mul, x, y),
                    // checked_div truncates toward zero and refuses division by zero.
                    "Div" => ints(i64::checked_div, x, y),
                    "Min" => ints(|p, q| Some(p.min(q)), x, y),
                    "Max" => ints(|p, q| Some(p.max(q)), x, y),
                    "Pow" => ints(|p, q| u32::try_from(q).ok().and_then(|q| p.checked_pow(q)), x, y),
                    "FMod" => ints(i64::checked_rem, x, y),
                    "Mod" => ints(|p, q| p.checked_rem(q).map(|r| if r != 0 && (r < 0) != (q < 0) { r + q } else { r }), x, y),
                    _ => None,
                }?;
                // Results must fit the element type (no silent wrap-around).
                let fits = |v: &[i64]| dtype.is_none_or(|t| v.iter().all(|&e| wrap_int(t, e) == e));
                match &r {
                    Ints(v) if fits(v) => Some(r),
                    _ => None,
                }
            }
            (Floats(x), Floats(y)) => {
                let f: fn(f64, f64) -> f64 = match op {
                    "Add" | "Sum" | "Mean" => |p, q| p + q,
                    "Sub" => |p, q| p - q,
                    "Mul" => |p, q| p * q,
                    "Div" => |p, q| p / q,
                    "Min" => f64::min,
                    "Max" => f64::max,
                    "Pow" => f64::powf,
                    "FMod" => |p, q| p % q,
                    _ => return None,
                };
                // Mean sums in full precision and rounds once after dividing.
                let round = if op == "Mean" { None } else { dtype };
                Some(Floats(x.iter().zip(y).map(|(&p, &q)| round_to(round, f(p, q))).collect()))
            }
            _ => None,
        },
    }
}

/// Where(cond, x, y): broadcast of all three; type of x.
pub(super) fn where_op(cx: &Ctx) -> Infer<Outs> {
    let shapes = [cx.shape(0)?, cx.shape(1)?, cx.shape(2)?];
    let shape = broadcast(&shapes)?;
    let dtype = cx.dtype(1).or_else(|| cx.dtype(2));
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let cond = broadcast_value(cx.value(0)?, shapes[0], &shape)?;
        let x = broadcast_value(cx.value(1)?, shapes[1], &shape)?;
        let y = broadcast_value(cx.value(2)?, shapes[2], &shape)?;
        let picks: Vec<usize> = cond.as_ints()?.iter().enumerate().map(|(i, &c)| if c != 0 { i } else { i + shape_len(&shape) }).collect();
        Some(KnownValue::chain(&[&x, &y])?.pick(&picks))
    })();
    outs(vec![Out::new(shape, dtype).with_value(value)])
}

fn shape_len(shape: &[i64]) -> usize {
    numel(shape) as usize
}

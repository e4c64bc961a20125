//! Shape rules: Unary element-wise ops (activations, math functions, normalizations that keep the shape) and Dropout.

use super::{BOOL, Ctx, Infer, KnownValue, Out, Outs, outs};

/// Op types whose only output has the shape and type of input 0.
pub(super) fn is_unary(op: &str) -> bool {
    matches!(
        op,
        "Relu"
            | "LeakyRelu"
            | "Sigmoid"
            | "HardSigmoid"
            | "HardSwish"
            | "Tanh"
            | "Clip"
            | "Elu"
            | "Selu"
            | "Celu"
            | "ThresholdedRelu"
            | "Softplus"
            | "Softsign"
            | "Erf"
            | "Sqrt"
            | "Exp"
            | "Log"
            | "Neg"
            | "Abs"
            | "Reciprocal"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Sign"
            | "Not"
            | "Identity"
            | "Softmax"
            | "LogSoftmax"
            | "Hardmax"
            | "Mish"
            | "Gelu"
            | "Sin"
            | "Cos"
            | "Tan"
            | "Asin"
            | "Acos"
            | "Atan"
            | "Sinh"
            | "Cosh"
            | "Asinh"
            | "Acosh"
            | "Atanh"
            | "Shrink"
            | "InstanceNormalization"
            | "LpNormalization"
            | "LRN"
            | "MeanVarianceNormalization"
            | "BitwiseNot"
            | "CumSum"
            | "Trilu"
            | "ReverseSequence"
    )
}

/// Unary element-wise ops; values propagate through Identity, Neg, Abs, Not and Floor/Ceil/Round.
pub(super) fn unary(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).and_then(|v| match (cx.node.op_type(), v) {
        ("Identity", v) => Some(v.clone()),
        ("Neg", KnownValue::Ints(v)) => v.iter().map(|x| x.checked_neg()).collect::<Option<_>>().map(KnownValue::Ints),
        ("Neg", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| -x).collect())),
        ("Abs", KnownValue::Ints(v)) => v.iter().map(|x| x.checked_abs()).collect::<Option<_>>().map(KnownValue::Ints),
        ("Abs", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.abs()).collect())),
        ("Not", KnownValue::Ints(v)) => Some(KnownValue::Ints(v.iter().map(|&x| (x == 0) as i64).collect())),
        ("Floor", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.floor()).collect())),
        ("Ceil", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.ceil()).collect())),
        ("Round", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.round_ties_even()).collect())),
        _ => None,
    });
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(value)])
}

/// Dropout: output like X, optional mask (BOOL) like X.
pub(super) fn dropout(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).cloned();
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(value), Out::new(x.to_vec(), Some(BOOL))])
}

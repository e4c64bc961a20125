//! Shape rules: QuantizeLinear / DequantizeLinear and the Ascend quant ops.

use super::{Ctx, FLOAT, FLOAT16, INT4, INT8, INT16, Infer, Outs, UINT8, same_shape};
use crate::onnx::attr::NodeExt;

/// QuantizeLinear (type of the zero point, else `output_dtype`, else UINT8) and
/// DequantizeLinear (type of the scale).
pub(super) fn qdq(cx: &Ctx) -> Infer<Outs> {
    let dtype = if cx.node.op_type() == "QuantizeLinear" {
        match cx.dtype(2) {
            Some(t) => Some(t),
            None => match cx.node.attr_i("output_dtype", 0)? {
                0 => Some(UINT8),
                t => Some(t as i32),
            },
        }
    } else {
        cx.dtype(1).or(Some(FLOAT))
    };
    same_shape(cx, dtype)
}

/// Ascend custom ops (any domain) keep the shape of input 0. AscendQuant outputs the integer
/// type of `dst_type` (default INT8); AscendDequant/AscendAntiQuant output FLOAT, or FLOAT16
/// when their `dtype` attribute (ge::DataType) is 1.
pub(super) fn ascend_quant(cx: &Ctx) -> Infer<Outs> {
    let dtype = match cx.node.op_type() {
        "AscendQuant" => match cx.node.opt_attr_s("dst_type").ok().flatten().as_deref() {
            Some("INT4") => Some(INT4),
            Some("INT16") => Some(INT16),
            Some("INT8") | None => Some(INT8),
            Some(_) => None,
        },
        _ => match cx.node.opt_attr_i("dtype").ok().flatten() {
            None | Some(0) => Some(FLOAT),
            Some(1) => Some(FLOAT16),
            Some(_) => None,
        },
    };
    same_shape(cx, dtype)
}

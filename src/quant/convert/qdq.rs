//! Reading one QuantizeLinear / DequantizeLinear node: its scale, zero point, axis and
//! integer type, checked against what an Ascend deploy model can carry
//! (docs/ascend-formats.md §2, §3 and §15): float32 scales, 8-bit integers (int8, or uint8
//! mapped to int8 by the §3 convention), no blocked quantization.

use super::ConvertError;
use crate::onnx::proto::{GraphProto, NodeProto};
use crate::onnx::{DataType, NodeExt, Tensor, TensorData};
use crate::quant::consts::constant;

/// The integer type of a QDQ tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QType {
    Int8,
    Uint8,
    /// Only as the input of a bias DequantizeLinear.
    Int32,
}

impl QType {
    /// The saturation range of QuantizeLinear.
    pub fn range(self) -> (i32, i32) {
        match self {
            QType::Int8 => (-128, 127),
            QType::Uint8 => (0, 255),
            QType::Int32 => (i32::MIN, i32::MAX),
        }
    }

    /// What is added to a value of this type to get the Ascend int8 value (§15.2: uint8 q
    /// is int8 q − 128, with the zero point moved by the same 128).
    pub fn to_int8_shift(self) -> i32 {
        if self == QType::Uint8 { -128 } else { 0 }
    }

    /// The ONNX element type.
    pub fn onnx_type(self) -> i32 {
        match self {
            QType::Int8 => DataType::Int8 as i32,
            QType::Uint8 => DataType::Uint8 as i32,
            QType::Int32 => DataType::Int32 as i32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QType::Int8 => "int8",
            QType::Uint8 => "uint8",
            QType::Int32 => "int32",
        }
    }
}

/// The parameters of one Q or DQ node.
#[derive(Debug, Clone, PartialEq)]
pub struct QParams {
    pub node: String,
    pub op_type: &'static str,
    /// One value (per tensor) or one per slice along `axis`.
    pub scale: Vec<f32>,
    /// As many as `scale` (zeros when the zero point is absent).
    pub zero_point: Vec<i32>,
    pub qtype: QType,
    /// The attribute as given (default 1); meaningful only when `scale` has several values.
    pub axis: i64,
}

impl QParams {
    pub fn per_tensor(&self) -> bool {
        self.scale.len() == 1
    }

    /// Same scale (bit for bit), zero point, type and, when per channel, axis.
    pub fn same_as(&self, other: &QParams) -> bool {
        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        bits(&self.scale) == bits(&other.scale)
            && self.zero_point == other.zero_point
            && self.qtype == other.qtype
            && (self.per_tensor() || self.axis == other.axis)
    }

    /// "scale 0.0123, zero point 5 (uint8)" or "34 scales on axis 0, zero points 0 (int8)".
    pub fn describe(&self) -> String {
        if self.per_tensor() {
            format!("scale {:e}, zero point {} ({})", self.scale[0], self.zero_point[0], self.qtype.name())
        } else {
            let zps: std::collections::BTreeSet<i32> = self.zero_point.iter().copied().collect();
            let zps: Vec<String> = zps.iter().map(i32::to_string).collect();
            format!("{} scales on axis {}, zero points {} ({})", self.scale.len(), self.axis, zps.join("/"), self.qtype.name())
        }
    }
}

fn err(n: &NodeProto, index: usize, detail: impl Into<String>) -> ConvertError {
    ConvertError::node(n, index, detail)
}

fn dtype_name(dt: i32) -> &'static str {
    DataType::try_from(dt).map(|d| d.as_str_name()).unwrap_or("an unknown type")
}

/// The integer type named by an ONNX element type, or an error saying what is accepted.
fn qtype_of(n: &NodeProto, index: usize, dt: i32, allow_int32: bool) -> Result<QType, ConvertError> {
    match DataType::try_from(dt) {
        Ok(DataType::Int8) => Ok(QType::Int8),
        Ok(DataType::Uint8) => Ok(QType::Uint8),
        Ok(DataType::Int32) if allow_int32 => Ok(QType::Int32),
        _ => Err(err(
            n,
            index,
            format!(
                "has the integer type {}; Ascend deploy models take 8-bit QDQ only (INT8 or UINT8{}): 4-bit, 16-bit and \
                 float8 quantization cannot be converted",
                dtype_name(dt),
                if allow_int32 { ", or INT32 for a bias" } else { "" }
            ),
        )),
    }
}

/// Reads a Q or DQ node of `graph`. `input_type` is the element type of a DQ's input when
/// known (from a constant, or the QuantizeLinear it is paired with); without a zero point it
/// decides the type.
pub fn read(graph: &GraphProto, n: &NodeProto, index: usize, input_type: Option<i32>) -> Result<QParams, ConvertError> {
    let op_type = if n.op_type() == "QuantizeLinear" { "QuantizeLinear" } else { "DequantizeLinear" };
    if !matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
        return Err(err(
            n,
            index,
            format!(
                "is in domain '{}' (ONNX Runtime writes its 16-bit and 4-bit QDQ there); only default-domain 8-bit QDQ can be converted",
                n.domain()
            ),
        ));
    }
    if n.attr_i("block_size", 0).map_err(|e| err(n, index, e.to_string()))? != 0 {
        return Err(err(n, index, "uses blocked quantization (block_size); Ascend takes per-tensor or per-channel scales only"));
    }
    let scale_name = n.input.get(1).filter(|s| !s.is_empty()).ok_or_else(|| err(n, index, "has no scale input"))?;
    let scale_t = constant(graph, scale_name).ok_or_else(|| err(n, index, format!("its scale '{scale_name}' is not a constant")))?;
    if scale_t.data_type() != DataType::Float as i32 {
        return Err(err(
            n,
            index,
            format!(
                "its scale '{scale_name}' is {}; only FLOAT scales can be converted (float16 QDQ is not an Ascend INT8 pattern)",
                dtype_name(scale_t.data_type())
            ),
        ));
    }
    let scale = match Tensor::from_proto(scale_t).map_err(|e| err(n, index, e.to_string()))?.data {
        TensorData::F32(v) => v,
        _ => unreachable!("FLOAT checked"),
    };
    if scale.is_empty() {
        return Err(err(n, index, format!("its scale '{scale_name}' is empty")));
    }
    if let Some(bad) = scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(err(n, index, format!("its scale '{scale_name}' holds {bad}; expected finite positive scales")));
    }
    let zp_name = n.input.get(2).filter(|s| !s.is_empty());
    let (qtype, zero_point) = match zp_name {
        Some(z) => {
            let zt = constant(graph, z).ok_or_else(|| err(n, index, format!("its zero point '{z}' is not a constant")))?;
            let qtype = qtype_of(n, index, zt.data_type(), op_type == "DequantizeLinear")?;
            let values = Tensor::from_proto(zt).map_err(|e| err(n, index, e.to_string()))?.to_i64_vec().unwrap_or_default();
            if values.len() != scale.len() {
                return Err(err(n, index, format!("has {} scales but {} zero points", scale.len(), values.len())));
            }
            (qtype, values.into_iter().map(|v| v as i32).collect())
        }
        None => {
            let dt = match (op_type, input_type) {
                ("DequantizeLinear", Some(dt)) => dt,
                // QuantizeLinear without a zero point: `output_dtype` (opset 21), else UINT8.
                _ => match n.attr_i("output_dtype", 0).map_err(|e| err(n, index, e.to_string()))? {
                    0 => DataType::Uint8 as i32,
                    dt => dt as i32,
                },
            };
            (qtype_of(n, index, dt, op_type == "DequantizeLinear")?, vec![0; scale.len()])
        }
    };
    if let Some(dt) = input_type
        && qtype_of(n, index, dt, true)? != qtype
    {
        return Err(err(n, index, format!("its input is {} but its zero point is {}", dtype_name(dt), qtype.name())));
    }
    let axis = n.attr_i("axis", 1).map_err(|e| err(n, index, e.to_string()))?;
    Ok(QParams { node: crate::onnx::node_label(n, index), op_type, scale, zero_point, qtype, axis })
}

/// `clamp(round_half_even(w / scale) + zero_point)` as QuantizeLinear computes it, for one
/// value (the division in f32, as the ONNX definition).
pub fn quantize(w: f32, scale: f32, zero_point: i32, qtype: QType) -> i32 {
    let (lo, hi) = qtype.range();
    ((w / scale).round_ties_even() as i64 + zero_point as i64).clamp(lo as i64, hi as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::scale::ActQuant;

    #[test]
    fn quantize_is_onnx_quantize_linear() {
        // x / scale: 0.25 → 0.5 → 0, 0.75 → 1.5 → 2, −1.25 → −2.5 → −2 (half to even), then + zp, saturated.
        let got: Vec<i32> = [0.25, 0.75, -1.25, 1000.0, -1000.0].iter().map(|&x| quantize(x, 0.5, 3, QType::Int8)).collect();
        assert_eq!(got, [3, 5, 1, 127, -128]);
        assert_eq!(quantize(-1000.0, 0.5, 3, QType::Uint8), 0);
        assert_eq!(quantize(1000.0, 0.5, 3, QType::Uint8), 255);
    }

    #[test]
    fn uint8_pairs_are_the_int8_convention_shifted_by_128() {
        // formats §15.2: clamp(r + zp, 0, 255) − 128 = clamp(r + (zp − 128), −128, 127), and the
        // dequantized values agree.
        let (scale, zp) = (0.02f32, 130);
        let act = ActQuant { scale, offset: zp + QType::Uint8.to_int8_shift() };
        for i in -400..400 {
            let x = i as f32 * 0.0137;
            let q_u8 = quantize(x, scale, zp, QType::Uint8);
            let q_i8 = act.quantize(x) as i32;
            // AscendQuant multiplies by 1/scale where ONNX divides: equal away from ties.
            assert!((q_u8 - 128 - q_i8).abs() <= 1, "x {x}: uint8 {q_u8}, int8 {q_i8}");
            if q_u8 - 128 == q_i8 {
                assert_eq!((q_u8 - zp) as f32 * scale, act.dequantize(q_i8 as i8));
            }
        }
    }
}

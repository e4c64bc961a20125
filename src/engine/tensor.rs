//! The engine's runtime tensor: an n-dimensional array of one element type.

use half::f16;
use ndarray::{ArrayD, IxDyn};

use super::error::{EngineError, Result};
use crate::onnx::{DataType, Tensor as OnnxTensor, TensorData};

/// A dense tensor in row-major (C) order. The variants are the element types the engine
/// computes with; other ONNX types are rejected when a model is planned.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    F16(ArrayD<f16>),
    I8(ArrayD<i8>),
    U8(ArrayD<u8>),
    I16(ArrayD<i16>),
    U16(ArrayD<u16>),
    I32(ArrayD<i32>),
    U32(ArrayD<u32>),
    I64(ArrayD<i64>),
    U64(ArrayD<u64>),
    Bool(ArrayD<bool>),
}

/// Applies `$body` to the array inside any variant, binding it as `$a`.
#[macro_export]
macro_rules! for_each_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::engine::Tensor::F32($a) => $body,
            $crate::engine::Tensor::F64($a) => $body,
            $crate::engine::Tensor::F16($a) => $body,
            $crate::engine::Tensor::I8($a) => $body,
            $crate::engine::Tensor::U8($a) => $body,
            $crate::engine::Tensor::I16($a) => $body,
            $crate::engine::Tensor::U16($a) => $body,
            $crate::engine::Tensor::I32($a) => $body,
            $crate::engine::Tensor::U32($a) => $body,
            $crate::engine::Tensor::I64($a) => $body,
            $crate::engine::Tensor::U64($a) => $body,
            $crate::engine::Tensor::Bool($a) => $body,
        }
    };
}

/// Like [`for_each_tensor`], but re-wraps the resulting array in the same variant.
#[macro_export]
macro_rules! map_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::engine::Tensor::F32($a) => $crate::engine::Tensor::F32($body),
            $crate::engine::Tensor::F64($a) => $crate::engine::Tensor::F64($body),
            $crate::engine::Tensor::F16($a) => $crate::engine::Tensor::F16($body),
            $crate::engine::Tensor::I8($a) => $crate::engine::Tensor::I8($body),
            $crate::engine::Tensor::U8($a) => $crate::engine::Tensor::U8($body),
            $crate::engine::Tensor::I16($a) => $crate::engine::Tensor::I16($body),
            $crate::engine::Tensor::U16($a) => $crate::engine::Tensor::U16($body),
            $crate::engine::Tensor::I32($a) => $crate::engine::Tensor::I32($body),
            $crate::engine::Tensor::U32($a) => $crate::engine::Tensor::U32($body),
            $crate::engine::Tensor::I64($a) => $crate::engine::Tensor::I64($body),
            $crate::engine::Tensor::U64($a) => $crate::engine::Tensor::U64($body),
            $crate::engine::Tensor::Bool($a) => $crate::engine::Tensor::Bool($body),
        }
    };
}

fn array<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("element count checked by the caller")
}

impl Tensor {
    pub fn shape(&self) -> &[usize] {
        for_each_tensor!(self, a => a.shape())
    }

    pub fn len(&self) -> usize {
        for_each_tensor!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DataType {
        match self {
            Tensor::F32(_) => DataType::Float,
            Tensor::F64(_) => DataType::Double,
            Tensor::F16(_) => DataType::Float16,
            Tensor::I8(_) => DataType::Int8,
            Tensor::U8(_) => DataType::Uint8,
            Tensor::I16(_) => DataType::Int16,
            Tensor::U16(_) => DataType::Uint16,
            Tensor::I32(_) => DataType::Int32,
            Tensor::U32(_) => DataType::Uint32,
            Tensor::I64(_) => DataType::Int64,
            Tensor::U64(_) => DataType::Uint64,
            Tensor::Bool(_) => DataType::Bool,
        }
    }

    /// Lower-case ONNX type name, e.g. "float", "int64".
    pub fn dtype_name(&self) -> String {
        self.dtype().as_str_name().to_ascii_lowercase()
    }

    pub fn from_onnx(t: &OnnxTensor, name: &str) -> Result<Tensor> {
        let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        Ok(match &t.data {
            TensorData::F32(v) => Tensor::F32(array(&shape, v.clone())),
            TensorData::F64(v) => Tensor::F64(array(&shape, v.clone())),
            TensorData::F16(v) => Tensor::F16(array(&shape, v.clone())),
            TensorData::I8(v) => Tensor::I8(array(&shape, v.clone())),
            TensorData::U8(v) => Tensor::U8(array(&shape, v.clone())),
            TensorData::I16(v) => Tensor::I16(array(&shape, v.clone())),
            TensorData::U16(v) => Tensor::U16(array(&shape, v.clone())),
            TensorData::I32(v) => Tensor::I32(array(&shape, v.clone())),
            TensorData::U32(v) => Tensor::U32(array(&shape, v.clone())),
            TensorData::I64(v) => Tensor::I64(array(&shape, v.clone())),
            TensorData::U64(v) => Tensor::U64(array(&shape, v.clone())),
            TensorData::Bool(v) => Tensor::Bool(array(&shape, v.clone())),
            other => {
                return Err(EngineError::Input {
                    name: name.to_string(),
                    detail: format!("element type {} is not supported by the engine", other.data_type().as_str_name()),
                });
            }
        })
    }

    pub fn to_onnx(&self) -> OnnxTensor {
        let dims = self.shape().iter().map(|&d| d as i64).collect();
        let data = match self {
            Tensor::F32(a) => TensorData::F32(a.iter().copied().collect()),
            Tensor::F64(a) => TensorData::F64(a.iter().copied().collect()),
            Tensor::F16(a) => TensorData::F16(a.iter().copied().collect()),
            Tensor::I8(a) => TensorData::I8(a.iter().copied().collect()),
            Tensor::U8(a) => TensorData::U8(a.iter().copied().collect()),
            Tensor::I16(a) => TensorData::I16(a.iter().copied().collect()),
            Tensor::U16(a) => TensorData::U16(a.iter().copied().collect()),
            Tensor::I32(a) => TensorData::I32(a.iter().copied().collect()),
            Tensor::U32(a) => TensorData::U32(a.iter().copied().collect()),
            Tensor::I64(a) => TensorData::I64(a.iter().copied().collect()),
            Tensor::U64(a) => TensorData::U64(a.iter().copied().collect()),
            Tensor::Bool(a) => TensorData::Bool(a.iter().copied().collect()),
        };
        OnnxTensor::new(dims, data)
    }

    /// Decodes raw little-endian bytes (as in calibration `.bin` files).
    pub fn from_le_bytes(dtype: DataType, shape: &[usize], bytes: &[u8], name: &str) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let width = crate::onnx::tensor::bits(dtype) / 8;
        if width == 0 || bytes.len() != count * width {
            return Err(EngineError::Input {
                name: name.to_string(),
                detail: format!(
                    "holds {} bytes, expected {} ({} elements of {} for shape {shape:?})",
                    bytes.len(),
                    count * width,
                    count,
                    dtype.as_str_name().to_ascii_lowercase()
                ),
            });
        }
        let proto = crate::onnx::TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(dtype as i32),
            raw_data: Some(bytes.to_vec()),
            ..Default::default()
        };
        let onnx = OnnxTensor::from_proto(&proto).map_err(|e| EngineError::Input { name: name.into(), detail: e.to_string() })?;
        Tensor::from_onnx(&onnx, name)
    }

    /// Raw little-endian bytes of the elements in row-major order.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.to_onnx().data.to_raw().expect("engine tensors are numeric")
    }

    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            _ => None,
        }
    }

    /// Integer (or bool) elements widened to i64, e.g. for shape-like inputs.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match self {
            Tensor::I8(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::U8(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::I16(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::U16(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::I32(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::U32(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::I64(a) => a.iter().copied().collect(),
            Tensor::U64(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::Bool(a) => a.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }

    /// Elements converted to f64 (every type), e.g. for comparisons in tests and reports.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Tensor::F32(a) => a.iter().map(|&x| x as f64).collect(),
            Tensor::F64(a) => a.iter().copied().collect(),
            Tensor::F16(a) => a.iter().map(|x| x.to_f64()).collect(),
            Tensor::Bool(a) => a.iter().map(|&x| x as u8 as f64).collect(),
            Tensor::U64(a) => a.iter().map(|&x| x as f64).collect(),
            other => other.to_i64_vec().expect("integer variant").into_iter().map(|x| x as f64).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_bytes_round_trip_and_size_errors() {
        let t = Tensor::from_le_bytes(DataType::Float, &[2, 2], &[0u8; 16], "x").unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.to_le_bytes(), vec![0u8; 16]);
        let e = Tensor::from_le_bytes(DataType::Float, &[2, 2], &[0u8; 15], "x").unwrap_err().to_string();
        assert!(e.contains("'x'") && e.contains("holds 15 bytes, expected 16"), "{e}");
    }
}

//! TensorProto ↔ typed arrays for every ONNX data type.
//!
//! Storage rules (ONNX IR): `raw_data` holds little-endian elements (sub-byte types packed,
//! first element in the least significant bits); otherwise the typed field named by the data
//! type holds them (`int32_data` carries every type of 16 bits or less, bit-cast).

use half::{bf16, f16};

use super::error::{OnnxError, Result};
use super::proto::TensorProto;
use super::proto::tensor_proto::DataLocation;

pub use super::proto::tensor_proto::DataType;

/// Element width in bits of each data type (0 for strings and UNDEFINED).
pub fn bits(dt: DataType) -> usize {
    use DataType::*;
    match dt {
        Undefined | String => 0,
        Int2 | Uint2 => 2,
        Int4 | Uint4 | Float4e2m1 => 4,
        Int8 | Uint8 | Bool | Float8e4m3fn | Float8e4m3fnuz | Float8e5m2 | Float8e5m2fnuz | Float8e8m0 => 8,
        Int16 | Uint16 | Float16 | Bfloat16 => 16,
        Int32 | Uint32 | Float => 32,
        Int64 | Uint64 | Double | Complex64 => 64,
        Complex128 => 128,
    }
}

/// Bytes needed to store `count` elements of `dt` in `raw_data` (sub-byte types packed).
pub fn raw_len(dt: DataType, count: usize) -> usize {
    // Saturating: a count no buffer can hold gives a length no buffer has, so callers comparing
    // it with the bytes present report a mismatch instead of overflowing.
    count.saturating_mul(bits(dt)).div_ceil(8)
}

/// The elements of a tensor, one variant per storage type. Sub-byte and float8 types are
/// kept as one code per element (unpacked); complex types interleave real and imaginary.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    Str(Vec<Vec<u8>>),
    Complex64(Vec<f32>),
    Complex128(Vec<f64>),
    /// FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT8E8M0, FLOAT4E2M1: bit codes.
    FloatCodes(DataType, Vec<u8>),
    /// INT4 / INT2, sign-extended.
    SubByteSigned(DataType, Vec<i8>),
    /// UINT4 / UINT2.
    SubByteUnsigned(DataType, Vec<u8>),
}

/// A decoded tensor: shape plus typed elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<i64>,
    pub data: TensorData,
}

impl TensorData {
    pub fn data_type(&self) -> DataType {
        match self {
            TensorData::F32(_) => DataType::Float,
            TensorData::F64(_) => DataType::Double,
            TensorData::F16(_) => DataType::Float16,
            TensorData::BF16(_) => DataType::Bfloat16,
            TensorData::I8(_) => DataType::Int8,
            TensorData::U8(_) => DataType::Uint8,
            TensorData::I16(_) => DataType::Int16,
            TensorData::U16(_) => DataType::Uint16,
            TensorData::I32(_) => DataType::Int32,
            TensorData::U32(_) => DataType::Uint32,
            TensorData::I64(_) => DataType::Int64,
            TensorData::U64(_) => DataType::Uint64,
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Str(_) => DataType::String,
            TensorData::Complex64(_) => DataType::Complex64,
            TensorData::Complex128(_) => DataType::Complex128,
            TensorData::FloatCodes(dt, _) | TensorData::SubByteSigned(dt, _) | TensorData::SubByteUnsigned(dt, _) => *dt,
        }
    }

    /// Number of elements (complex numbers count once).
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::BF16(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::U16(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::U64(v) => v.len(),
            TensorData::Bool(v) => v.len(),
            TensorData::Str(v) => v.len(),
            TensorData::Complex64(v) => v.len() / 2,
            TensorData::Complex128(v) => v.len() / 2,
            TensorData::FloatCodes(_, v) => v.len(),
            TensorData::SubByteSigned(_, v) => v.len(),
            TensorData::SubByteUnsigned(_, v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Little-endian `raw_data` encoding (sub-byte types packed). Strings have none.
    pub fn to_raw(&self) -> Option<Vec<u8>> {
        fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(|&x| f(x)).collect()
        }
        Some(match self {
            TensorData::F32(v) | TensorData::Complex64(v) => le(v, f32::to_le_bytes),
            TensorData::F64(v) | TensorData::Complex128(v) => le(v, f64::to_le_bytes),
            TensorData::F16(v) => le(v, |x| x.to_bits().to_le_bytes()),
            TensorData::BF16(v) => le(v, |x| x.to_bits().to_le_bytes()),
            TensorData::I8(v) => le(v, i8::to_le_bytes),
            TensorData::U8(v) => v.clone(),
            TensorData::I16(v) => le(v, i16::to_le_bytes),
            TensorData::U16(v) => le(v, u16::to_le_bytes),
            TensorData::I32(v) => le(v, i32::to_le_bytes),
            TensorData::U32(v) => le(v, u32::to_le_bytes),
            TensorData::I64(v) => le(v, i64::to_le_bytes),
            TensorData::U64(v) => le(v, u64::to_le_bytes),
            TensorData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
            TensorData::Str(_) => return None,
            TensorData::FloatCodes(dt, v) | TensorData::SubByteUnsigned(dt, v) => pack_sub_byte(*dt, v.iter().copied()),
            TensorData::SubByteSigned(dt, v) => pack_sub_byte(*dt, v.iter().map(|&x| x as u8)),
        })
    }
}

/// Packs codes of `bits(dt)` bits, first element in the least significant bits.
fn pack_sub_byte(dt: DataType, codes: impl Iterator<Item = u8>) -> Vec<u8> {
    let width = bits(dt);
    if width == 8 {
        return codes.collect();
    }
    let per_byte = 8 / width;
    let mask = (1u16 << width) as u8 - 1;
    let mut out = Vec::new();
    for (i, code) in codes.enumerate() {
        if i % per_byte == 0 {
            out.push(0);
        }
        *out.last_mut().expect("pushed above") |= (code & mask) << ((i % per_byte) * width);
    }
    out
}

/// Unpacks `count` codes of `bits(dt)` bits from packed bytes.
fn unpack_sub_byte(dt: DataType, bytes: impl Iterator<Item = u8>, count: usize) -> Vec<u8> {
    let width = bits(dt);
    if width == 8 {
        return bytes.take(count).collect();
    }
    let per_byte = 8 / width;
    let mask = (1u16 << width) as u8 - 1;
    bytes.flat_map(|b| (0..per_byte).map(move |k| (b >> (k * width)) & mask)).take(count).collect()
}

fn sign_extend(code: u8, width: usize) -> i8 {
    let shift = 8 - width as u32;
    ((code << shift) as i8) >> shift
}

impl Tensor {
    pub fn new(dims: Vec<i64>, data: TensorData) -> Self {
        Tensor { dims, data }
    }

    pub fn data_type(&self) -> DataType {
        self.data.data_type()
    }

    /// Decodes a TensorProto (raw_data or typed fields). External data must already be
    /// loaded (see [`super::io::load_model`]).
    pub fn from_proto(t: &TensorProto) -> Result<Tensor> {
        let name = t.name();
        let dt = DataType::try_from(t.data_type())
            .map_err(|_| OnnxError::UnknownDataType { tensor: name.to_string(), data_type: t.data_type() })?;
        if t.data_location() == DataLocation::External {
            return Err(OnnxError::tensor(name, "data is stored externally and was not loaded"));
        }
        if t.segment.is_some() {
            return Err(OnnxError::tensor(name, "segmented tensors are not supported"));
        }
        let count = element_count(name, &t.dims)?;
        let data = match &t.raw_data {
            Some(raw) if dt != DataType::String => decode_raw(name, dt, raw, count)?,
            _ => decode_typed(name, dt, t, count)?,
        };
        Ok(Tensor { dims: t.dims.clone(), data })
    }

    /// Encodes as a TensorProto using `raw_data` (strings use `string_data`).
    pub fn to_proto(&self, name: &str) -> TensorProto {
        let mut t = TensorProto {
            dims: self.dims.clone(),
            data_type: Some(self.data_type() as i32),
            name: Some(name.to_string()),
            ..Default::default()
        };
        match &self.data {
            TensorData::Str(s) => t.string_data = s.clone(),
            data => t.raw_data = data.to_raw(),
        }
        t
    }

    /// Elements converted to f32 (numeric types only; float8/float4 codes are not decoded).
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        Some(match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U16(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
            TensorData::SubByteSigned(_, v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::SubByteUnsigned(_, v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Str(_) | TensorData::Complex64(_) | TensorData::Complex128(_) | TensorData::FloatCodes(..) => return None,
        })
    }

    /// Integer elements widened to i64 (integer and bool types only).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U16(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I64(v) => v.clone(),
            TensorData::U64(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::SubByteSigned(_, v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::SubByteUnsigned(_, v) => v.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }
}

/// Number of elements of a tensor with these dims; negative dims are an error.
pub fn element_count(name: &str, dims: &[i64]) -> Result<usize> {
    dims.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)).ok_or_else(|| OnnxError::tensor(name, format!("invalid dims {dims:?}")))
    })
}

fn decode_raw(name: &str, dt: DataType, raw: &[u8], count: usize) -> Result<TensorData> {
    let expected = raw_len(dt, count);
    if raw.len() != expected {
        return Err(OnnxError::tensor(
            name,
            format!("raw_data holds {} bytes, expected {expected} for {count} elements of {}", raw.len(), dt.as_str_name()),
        ));
    }
    fn chunks<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N).map(|c| f(c.try_into().expect("exact chunk"))).collect()
    }
    use DataType::*;
    Ok(match dt {
        Float => TensorData::F32(chunks(raw, f32::from_le_bytes)),
        Complex64 => TensorData::Complex64(chunks(raw, f32::from_le_bytes)),
        Double => TensorData::F64(chunks(raw, f64::from_le_bytes)),
        Complex128 => TensorData::Complex128(chunks(raw, f64::from_le_bytes)),
        Float16 => TensorData::F16(chunks(raw, |b| f16::from_bits(u16::from_le_bytes(b)))),
        Bfloat16 => TensorData::BF16(chunks(raw, |b| bf16::from_bits(u16::from_le_bytes(b)))),
        Int8 => TensorData::I8(chunks(raw, i8::from_le_bytes)),
        Uint8 => TensorData::U8(raw.to_vec()),
        Int16 => TensorData::I16(chunks(raw, i16::from_le_bytes)),
        Uint16 => TensorData::U16(chunks(raw, u16::from_le_bytes)),
        Int32 => TensorData::I32(chunks(raw, i32::from_le_bytes)),
        Uint32 => TensorData::U32(chunks(raw, u32::from_le_bytes)),
        Int64 => TensorData::I64(chunks(raw, i64::from_le_bytes)),
        Uint64 => TensorData::U64(chunks(raw, u64::from_le_bytes)),
        Bool => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
        Float8e4m3fn | Float8e4m3fnuz | Float8e5m2 | Float8e5m2fnuz | Float8e8m0 | Float4e2m1 => {
            TensorData::FloatCodes(dt, unpack_sub_byte(dt, raw.iter().copied(), count))
        }
        Int4 | Int2 => TensorData::SubByteSigned(
            dt,
            unpack_sub_byte(dt, raw.iter().copied(), count).into_iter().map(|c| sign_extend(c, bits(dt))).collect(),
        ),
        Uint4 | Uint2 => TensorData::SubByteUnsigned(dt, unpack_sub_byte(dt, raw.iter().copied(), count)),
        String | Undefined => {
            return Err(OnnxError::tensor(name, format!("{} has no raw_data form", dt.as_str_name())));
        }
    })
}

fn decode_typed(name: &str, dt: DataType, t: &TensorProto, count: usize) -> Result<TensorData> {
    let check = |field: &str, have: usize, want: usize| -> Result<()> {
        if have == want {
            Ok(())
        } else {
            Err(OnnxError::tensor(
                name,
                format!("{field} holds {have} values, expected {want} for dims {:?} of {}", t.dims, dt.as_str_name()),
            ))
        }
    };
    use DataType::*;
    // int32_data carries every type of 16 bits or less, as bit patterns / packed codes.
    let small = |want: usize| -> Result<Vec<i32>> {
        check("int32_data", t.int32_data.len(), want)?;
        Ok(t.int32_data.clone())
    };
    Ok(match dt {
        Float => {
            check("float_data", t.float_data.len(), count)?;
            TensorData::F32(t.float_data.clone())
        }
        Complex64 => {
            check("float_data", t.float_data.len(), count * 2)?;
            TensorData::Complex64(t.float_data.clone())
        }
        Double => {
            check("double_data", t.double_data.len(), count)?;
            TensorData::F64(t.double_data.clone())
        }
        Complex128 => {
            check("double_data", t.double_data.len(), count * 2)?;
            TensorData::Complex128(t.double_data.clone())
        }
        Int64 => {
            check("int64_data", t.int64_data.len(), count)?;
            TensorData::I64(t.int64_data.clone())
        }
        Uint32 => {
            check("uint64_data", t.uint64_data.len(), count)?;
            TensorData::U32(t.uint64_data.iter().map(|&x| x as u32).collect())
        }
        Uint64 => {
            check("uint64_data", t.uint64_data.len(), count)?;
            TensorData::U64(t.uint64_data.clone())
        }
        String => {
            check("string_data", t.string_data.len(), count)?;
            TensorData::Str(t.string_data.clone())
        }
        Int32 => TensorData::I32(small(count)?),
        Int16 => TensorData::I16(small(count)?.into_iter().map(|x| x as i16).collect()),
        Uint16 => TensorData::U16(small(count)?.into_iter().map(|x| x as u16).collect()),
        Int8 => TensorData::I8(small(count)?.into_iter().map(|x| x as i8).collect()),
        Uint8 => TensorData::U8(small(count)?.into_iter().map(|x| x as u8).collect()),
        Bool => TensorData::Bool(small(count)?.into_iter().map(|x| x != 0).collect()),
        Float16 => TensorData::F16(small(count)?.into_iter().map(|x| f16::from_bits(x as u16)).collect()),
        Bfloat16 => TensorData::BF16(small(count)?.into_iter().map(|x| bf16::from_bits(x as u16)).collect()),
        Float8e4m3fn | Float8e4m3fnuz | Float8e5m2 | Float8e5m2fnuz | Float8e8m0 => {
            TensorData::FloatCodes(dt, small(count)?.into_iter().map(|x| x as u8).collect())
        }
        // Sub-byte types are packed into the int32 values, one byte's worth each.
        Float4e2m1 | Int4 | Uint4 | Int2 | Uint2 => {
            let packed = small(raw_len(dt, count))?;
            let codes = unpack_sub_byte(dt, packed.into_iter().map(|x| x as u8), count);
            match dt {
                Float4e2m1 => TensorData::FloatCodes(dt, codes),
                Int4 | Int2 => TensorData::SubByteSigned(dt, codes.into_iter().map(|c| sign_extend(c, bits(dt))).collect()),
                _ => TensorData::SubByteUnsigned(dt, codes),
            }
        }
        Undefined => return Err(OnnxError::tensor(name, "data type is UNDEFINED")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(t: Tensor) {
        let p = t.to_proto("x");
        assert_eq!(Tensor::from_proto(&p).unwrap(), t);
    }

    #[test]
    fn raw_roundtrip_every_type() {
        roundtrip(Tensor::new(vec![2], TensorData::F32(vec![1.5, -2.0])));
        roundtrip(Tensor::new(vec![1], TensorData::F64(vec![1e300])));
        roundtrip(Tensor::new(vec![2], TensorData::F16(vec![f16::from_f32(0.5), f16::MAX])));
        roundtrip(Tensor::new(vec![1], TensorData::BF16(vec![bf16::from_f32(-3.0)])));
        roundtrip(Tensor::new(vec![3], TensorData::I8(vec![-128, 0, 127])));
        roundtrip(Tensor::new(vec![2], TensorData::U64(vec![u64::MAX, 7])));
        roundtrip(Tensor::new(vec![2], TensorData::Bool(vec![true, false])));
        roundtrip(Tensor::new(vec![1], TensorData::Complex64(vec![1.0, -1.0])));
        roundtrip(Tensor::new(vec![2], TensorData::Str(vec![b"a".to_vec(), b"bc".to_vec()])));
        roundtrip(Tensor::new(vec![3], TensorData::SubByteSigned(DataType::Int4, vec![-8, 7, -1])));
        roundtrip(Tensor::new(vec![5], TensorData::SubByteUnsigned(DataType::Uint2, vec![0, 1, 2, 3, 1])));
        roundtrip(Tensor::new(vec![3], TensorData::FloatCodes(DataType::Float4e2m1, vec![1, 15, 8])));
        roundtrip(Tensor::new(vec![0, 4], TensorData::F32(vec![])));
    }

    #[test]
    fn int4_packing_is_low_nibble_first() {
        let t = Tensor::new(vec![3], TensorData::SubByteSigned(DataType::Int4, vec![1, -1, 2]));
        assert_eq!(t.to_proto("x").raw_data.unwrap(), vec![0xF1, 0x02]);
    }

    #[test]
    fn typed_fields_decode() {
        let p = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Float16 as i32),
            int32_data: vec![0x3C00, 0xC000],
            ..Default::default()
        };
        let t = Tensor::from_proto(&p).unwrap();
        assert_eq!(t.to_f32_vec().unwrap(), vec![1.0, -2.0]);
        let p = TensorProto {
            dims: vec![2, 1],
            data_type: Some(DataType::Uint32 as i32),
            uint64_data: vec![4_000_000_000, 1],
            ..Default::default()
        };
        assert_eq!(Tensor::from_proto(&p).unwrap().data, TensorData::U32(vec![4_000_000_000, 1]));
    }

    #[test]
    fn wrong_sizes_and_types_name_the_tensor() {
        let p = TensorProto {
            name: Some("conv.w".into()),
            dims: vec![4],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(vec![0; 12]),
            ..Default::default()
        };
        let e = Tensor::from_proto(&p).unwrap_err().to_string();
        assert!(e.contains("conv.w") && e.contains("expected 16"), "{e}");
        let p = TensorProto { name: Some("t".into()), data_type: Some(99), ..Default::default() };
        let e = Tensor::from_proto(&p).unwrap_err().to_string();
        assert!(e.contains("'t'") && e.contains("unknown data type 99"), "{e}");
    }
}

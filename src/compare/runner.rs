//! The interface the compare flow runs models through: anything that loads an OM and runs it
//! on raw input buffers (the ACL bindings, the ACL simulator through them, or a test double).

use half::f16;
use serde::Serialize;

use super::error::CompareError;

/// Element type of a model input or output, as the model description reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IoDType {
    F32,
    F16,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    Bool,
}

impl IoDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IoDType::I8 | IoDType::U8 | IoDType::Bool => 1,
            IoDType::F16 | IoDType::I16 | IoDType::U16 => 2,
            IoDType::F32 | IoDType::I32 | IoDType::U32 => 4,
            IoDType::F64 | IoDType::I64 | IoDType::U64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IoDType::F32 => "float32",
            IoDType::F16 => "float16",
            IoDType::F64 => "float64",
            IoDType::I8 => "int8",
            IoDType::U8 => "uint8",
            IoDType::I16 => "int16",
            IoDType::U16 => "uint16",
            IoDType::I32 => "int32",
            IoDType::U32 => "uint32",
            IoDType::I64 => "int64",
            IoDType::U64 => "uint64",
            IoDType::Bool => "bool",
        }
    }

    /// Little-endian elements widened to f64 (fp16 exactly; a trailing partial element is
    /// ignored, callers check sizes first).
    pub fn to_f64(self, bytes: &[u8]) -> Vec<f64> {
        macro_rules! widen {
            ($t:ty) => {
                bytes.chunks_exact(size_of::<$t>()).map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")) as f64).collect()
            };
        }
        match self {
            IoDType::F32 => widen!(f32),
            IoDType::F64 => widen!(f64),
            IoDType::F16 => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
            IoDType::I8 => bytes.iter().map(|&b| b as i8 as f64).collect(),
            IoDType::U8 => bytes.iter().map(|&b| b as f64).collect(),
            IoDType::Bool => bytes.iter().map(|&b| (b != 0) as u8 as f64).collect(),
            IoDType::I16 => widen!(i16),
            IoDType::U16 => widen!(u16),
            IoDType::I32 => widen!(i32),
            IoDType::U32 => widen!(u32),
            IoDType::I64 => widen!(i64),
            IoDType::U64 => widen!(u64),
        }
    }

    /// f32 values as little-endian elements of this type (fp16 rounds to nearest; integer
    /// types round and saturate, as a cast would).
    pub fn from_f32(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * self.size());
        for &v in values {
            match self {
                IoDType::F32 => out.extend_from_slice(&v.to_le_bytes()),
                IoDType::F64 => out.extend_from_slice(&(v as f64).to_le_bytes()),
                IoDType::F16 => out.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
                IoDType::I8 => out.push(v.round() as i8 as u8),
                IoDType::U8 => out.push(v.round() as u8),
                IoDType::Bool => out.push((v != 0.0) as u8),
                IoDType::I16 => out.extend_from_slice(&(v.round() as i16).to_le_bytes()),
                IoDType::U16 => out.extend_from_slice(&(v.round() as u16).to_le_bytes()),
                IoDType::I32 => out.extend_from_slice(&(v.round() as i32).to_le_bytes()),
                IoDType::U32 => out.extend_from_slice(&(v.round() as u32).to_le_bytes()),
                IoDType::I64 => out.extend_from_slice(&(v.round() as i64).to_le_bytes()),
                IoDType::U64 => out.extend_from_slice(&(v.round() as u64).to_le_bytes()),
            }
        }
        out
    }
}

/// One model input or output as the loaded model describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoDesc {
    pub name: String,
    pub dtype: IoDType,
    /// As reported (`aclmdlGetInputDims`); a static-AIPP input is NHWC uint8 (`[N, H, W, C]`).
    pub dims: Vec<i64>,
    /// The exact buffer size the model takes or gives (`aclmdlGet{Input,Output}SizeByIndex`).
    pub size_bytes: usize,
    /// The input is converted by static AIPP (`aclmdlGetAippType` = ACL_DATA_WITH_STATIC_AIPP).
    pub static_aipp: bool,
}

impl IoDesc {
    /// Elements implied by `dims`, when every dim is known (≥ 0) and the product fits.
    pub fn elements(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)))
    }

    /// "name (float32 [1, 3, 640, 640], 4915200 bytes)", for messages.
    pub fn describe(&self) -> String {
        format!("'{}' ({} {:?}, {} bytes)", self.name, self.dtype.name(), self.dims, self.size_bytes)
    }
}

/// A loaded OM model that can be run repeatedly.
pub trait OmRunner {
    /// Where it runs, exactly as reports must name it (a simulator says "simulator").
    fn device_label(&self) -> String;
    /// Inputs in model order.
    fn inputs(&self) -> &[IoDesc];
    /// Outputs in model order.
    fn outputs(&self) -> &[IoDesc];
    /// Runs once: one buffer per input (of exactly `size_bytes`), in model order; returns one
    /// buffer per output, in model order.
    fn run(&mut self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>, CompareError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_round_trips_and_widening() {
        let v = [1.5f32, -2.25, 65504.0];
        assert_eq!(IoDType::F16.to_f64(&IoDType::F16.from_f32(&v)), vec![1.5, -2.25, 65504.0]);
        assert_eq!(IoDType::F32.to_f64(&IoDType::F32.from_f32(&v)), vec![1.5, -2.25, 65504.0]);
        assert_eq!(IoDType::U8.from_f32(&[0.0, 254.6, 300.0]), vec![0, 255, 255]);
        assert_eq!(IoDType::I8.to_f64(&[0xFF, 0x80]), vec![-1.0, -128.0]);
        let d = IoDesc { name: "x".into(), dtype: IoDType::F32, dims: vec![1, 3, -1], size_bytes: 0, static_aipp: false };
        assert_eq!(d.elements(), None);
        assert_eq!(IoDesc { dims: vec![2, 3], ..d }.elements(), Some(6));
    }
}

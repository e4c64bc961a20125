//! Cast and CastLike between every element type of the engine.
//!
//! Float -> integer truncates toward zero. Out-of-range values follow what ONNX Runtime
//! produces on x86-64 (its `static_cast` compiles to `cvttss2si`/`cvttsd2si`): a value that
//! does not fit int32/int64 (and NaN) becomes the "integer indefinite" INT_MIN; narrower
//! targets (int8/uint8/int16/uint16) take the low bits of the int32 conversion, uint32 the
//! low bits of the int64 conversion. Float -> bool is `x != 0` (NaN -> true). Integer ->
//! integer wraps (two's complement), as C++ does.

use half::f16;
use ndarray::ArrayD;

use crate::engine::error::OpResult;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::for_each_tensor;
use crate::onnx::{DataType, NodeExt};
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("Cast", build_cast);
    r.register("CastLike", build_cast_like);
}

/// A source element type.
pub(crate) trait Elem: Copy + Send + Sync {
    const FLOAT: bool;
    fn f64_(self) -> f64;
    fn f32_(self) -> f32;
    fn f16_(self) -> f16;
    fn bool_(self) -> bool;
    /// Integers (and bool): the value as i64 bits (u64 reinterpreted). Unused for floats.
    fn i64_bits(self) -> i64;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const FLOAT: bool = false;
            fn f64_(self) -> f64 { self as f64 }
            fn f32_(self) -> f32 { self as f32 }
            fn f16_(self) -> f16 { f16::from_f32(self as f32) }
            fn bool_(self) -> bool { self != 0 }
            fn i64_bits(self) -> i64 { self as i64 }
        }
    )*};
}
int_elem!(i8, u8, i16, u16, i32, u32, i64, u64);

impl Elem for bool {
    const FLOAT: bool = false;
    fn f64_(self) -> f64 {
        self as u8 as f64
    }
    fn f32_(self) -> f32 {
        self as u8 as f32
    }
    fn f16_(self) -> f16 {
        f16::from_f32(self as u8 as f32)
    }
    fn bool_(self) -> bool {
        self
    }
    fn i64_bits(self) -> i64 {
        self as i64
    }
}

impl Elem for f32 {
    const FLOAT: bool = true;
    fn f64_(self) -> f64 {
        self as f64
    }
    fn f32_(self) -> f32 {
        self
    }
    fn f16_(self) -> f16 {
        f16::from_f32(self)
    }
    fn bool_(self) -> bool {
        self != 0.0
    }
    fn i64_bits(self) -> i64 {
        f_to_i64(self as f64)
    }
}

impl Elem for f64 {
    const FLOAT: bool = true;
    fn f64_(self) -> f64 {
        self
    }
    fn f32_(self) -> f32 {
        self as f32
    }
    fn f16_(self) -> f16 {
        f16::from_f64(self)
    }
    fn bool_(self) -> bool {
        self != 0.0
    }
    fn i64_bits(self) -> i64 {
        f_to_i64(self)
    }
}

impl Elem for f16 {
    const FLOAT: bool = true;
    fn f64_(self) -> f64 {
        self.to_f64()
    }
    fn f32_(self) -> f32 {
        self.to_f32()
    }
    fn f16_(self) -> f16 {
        self
    }
    fn bool_(self) -> bool {
        self.to_f32() != 0.0
    }
    fn i64_bits(self) -> i64 {
        f_to_i64(self.to_f64())
    }
}

/// cvttsd2si semantics: truncate, INT_MIN when NaN or out of range.
fn f_to_i32(x: f64) -> i32 {
    let t = x.trunc();
    if (-2147483648.0..2147483648.0).contains(&t) { t as i32 } else { i32::MIN }
}

fn f_to_i64(x: f64) -> i64 {
    let t = x.trunc();
    if (-9223372036854775808.0..9223372036854775808.0).contains(&t) { t as i64 } else { i64::MIN }
}

/// x86-64 compilers convert to uint64 with the signed instruction below 2^63 and a biased
/// one above; other values give 2^63.
fn f_to_u64(x: f64) -> u64 {
    let t = x.trunc();
    if (0.0..18446744073709551616.0).contains(&t) { t as u64 } else { f_to_i64(t) as u64 }
}

/// A target element type.
pub(crate) trait CastTo: Sized {
    fn from_elem<S: Elem>(s: S) -> Self;
}

impl CastTo for f32 {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.f32_()
    }
}
impl CastTo for f64 {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.f64_()
    }
}
impl CastTo for f16 {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.f16_()
    }
}
impl CastTo for bool {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.bool_()
    }
}
impl CastTo for i64 {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.i64_bits()
    }
}
impl CastTo for u64 {
    fn from_elem<S: Elem>(s: S) -> Self {
        if S::FLOAT { f_to_u64(s.f64_()) } else { s.i64_bits() as u64 }
    }
}
impl CastTo for u32 {
    fn from_elem<S: Elem>(s: S) -> Self {
        s.i64_bits() as u32
    }
}
macro_rules! via_i32 {
    ($($t:ty),*) => {$(
        impl CastTo for $t {
            fn from_elem<S: Elem>(s: S) -> Self {
                if S::FLOAT { f_to_i32(s.f64_()) as $t } else { s.i64_bits() as $t }
            }
        }
    )*};
}
via_i32!(i32, i16, u16, i8, u8);

fn conv<S: Elem, T: CastTo>(a: &ArrayD<S>) -> ArrayD<T> {
    a.mapv(T::from_elem)
}

/// Casts `x` to `to` (an engine type).
pub(crate) fn cast_tensor(x: &Tensor, to: DataType) -> OpResult<Tensor> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    Ok(match to {
        DataType::Float => Tensor::F32(for_each_tensor!(x, a => conv(a))),
        DataType::Double => Tensor::F64(for_each_tensor!(x, a => conv(a))),
        DataType::Float16 => Tensor::F16(for_each_tensor!(x, a => conv(a))),
        DataType::Int8 => Tensor::I8(for_each_tensor!(x, a => conv(a))),
        DataType::Uint8 => Tensor::U8(for_each_tensor!(x, a => conv(a))),
        DataType::Int16 => Tensor::I16(for_each_tensor!(x, a => conv(a))),
        DataType::Uint16 => Tensor::U16(for_each_tensor!(x, a => conv(a))),
        DataType::Int32 => Tensor::I32(for_each_tensor!(x, a => conv(a))),
        DataType::Uint32 => Tensor::U32(for_each_tensor!(x, a => conv(a))),
        DataType::Int64 => Tensor::I64(for_each_tensor!(x, a => conv(a))),
        DataType::Uint64 => Tensor::U64(for_each_tensor!(x, a => conv(a))),
        DataType::Bool => Tensor::Bool(for_each_tensor!(x, a => conv(a))),
        other => return Err(op_err!("cast to {} is not supported by the engine", other.as_str_name().to_ascii_lowercase())),
    })
}

fn engine_type(code: i64) -> OpResult<DataType> {
    let dt = i32::try_from(code)
        .ok()
        .and_then(|c| DataType::try_from(c).ok())
        .ok_or_else(|| op_err!("attribute 'to' = {code} is not an ONNX data type"))?;
    match dt {
        DataType::Float
        | DataType::Double
        | DataType::Float16
        | DataType::Int8
        | DataType::Uint8
        | DataType::Int16
        | DataType::Uint16
        | DataType::Int32
        | DataType::Uint32
        | DataType::Int64
        | DataType::Uint64
        | DataType::Bool => Ok(dt),
        other => Err(op_err!(
            "attribute 'to' = {} is not supported by the engine (supported: float, double, float16, int8..int64, uint8..uint64, bool)",
            other.as_str_name().to_ascii_lowercase()
        )),
    }
}

#[derive(Debug)]
struct Cast {
    to: DataType,
}

fn build_cast(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let code = ctx.node.attr("to").map(|_| ctx.attr_i("to", 0)).transpose()?;
    let code = code.ok_or_else(|| op_err!("required attribute 'to' is missing"))?;
    Ok(Box::new(Cast { to: engine_type(code)? }))
}

impl Op for Cast {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        Ok(vec![cast_tensor(input(inputs, 0)?, self.to)?])
    }
}

#[derive(Debug)]
struct CastLike;

fn build_cast_like(_ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(CastLike))
}

impl Op for CastLike {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let target = input(inputs, 1)?.dtype();
        Ok(vec![cast_tensor(input(inputs, 0)?, target)?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn float_to_int_truncates_and_saturates_like_ort() {
        let x = f32t(&[6], &[2.7, -2.7, f32::NAN, 3e9, -0.5, 300.0]);
        let y = cast_tensor(&x, DataType::Int32).unwrap();
        // trunc(2.7)=2, trunc(-2.7)=-2, NaN and 3e9 -> INT_MIN, -0.5 -> 0, 300.
        assert_eq!(y.to_i64_vec().unwrap(), vec![2, -2, i32::MIN as i64, i32::MIN as i64, 0, 300]);
        let y = cast_tensor(&x, DataType::Uint8).unwrap();
        // via int32 then low byte: 2, -2 -> 254, INT_MIN -> 0, 0, 300 -> 44.
        assert_eq!(y.to_i64_vec().unwrap(), vec![2, 254, 0, 0, 0, 44]);
        let y = cast_tensor(&x, DataType::Bool).unwrap();
        assert_eq!(y.to_i64_vec().unwrap(), vec![1, 1, 1, 1, 1, 1]);
        let y = cast_tensor(&f32t(&[2], &[0.0, -0.0]), DataType::Bool).unwrap();
        assert_eq!(y.to_i64_vec().unwrap(), vec![0, 0]);
    }

    #[test]
    fn int_and_bool_casts() {
        let x = i64t(&[3], &[-1, 0, 257]);
        assert_eq!(cast_tensor(&x, DataType::Uint8).unwrap().to_i64_vec().unwrap(), vec![255, 0, 1]);
        assert_eq!(cast_tensor(&x, DataType::Float).unwrap(), f32t(&[3], &[-1.0, 0.0, 257.0]));
        let b = cast_tensor(&x, DataType::Bool).unwrap();
        assert_eq!(cast_tensor(&b, DataType::Double).unwrap().to_f64_vec(), vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn builder_errors() {
        let e = build(build_cast, "Cast", 19, 1, 1, vec![]).unwrap_err().0;
        assert!(e.contains("'to'"), "{e}");
        let e = build(build_cast, "Cast", 19, 1, 1, vec![ai("to", 16)]).unwrap_err().0;
        assert!(e.contains("bfloat16"), "{e}");
        let op = build(build_cast_like, "CastLike", 19, 2, 1, vec![]).unwrap();
        let y = run1(op.as_ref(), &[Some(&f32t(&[1], &[1.9])), Some(&i64t(&[], &[0]))]).unwrap();
        assert_eq!(y, i64t(&[1], &[1]));
    }
}

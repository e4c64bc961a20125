//! Quantization ops: ONNX QuantizeLinear / DequantizeLinear and the Ascend custom ops
//! AscendQuant / AscendDequant / AscendAntiQuant (default domain, as amct_onnx and ATC use
//! them; semantics in docs/ascend-formats.md §2 and §6).

use half::f16;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::activation::Real;

use crate::engine::error::{OpError, OpResult};
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("AscendQuant", build_ascend_quant);
    r.register("AscendDequant", build_ascend_dequant);
    r.register("AscendAntiQuant", build_ascend_anti_quant);
    r.register("QuantizeLinear", build_quantize_linear);
    r.register("DequantizeLinear", build_dequantize_linear);
}

/// Float input as f32 values (f16 widened), with its shape.
fn float_values(t: &Tensor, what: &str) -> OpResult<(Vec<usize>, Vec<f32>)> {
    match t {
        Tensor::F32(a) => Ok((a.shape().to_vec(), a.iter().copied().collect())),
        Tensor::F16(a) => Ok((a.shape().to_vec(), a.iter().map(|x| x.to_f32()).collect())),
        other => Err(op_err!("{what} is {}, expected float or float16", other.dtype_name())),
    }
}

/// How a float is rounded to an integer before clamping (`round_mode`).
#[derive(Debug, Clone, Copy)]
enum RoundMode {
    /// rint: ties to even (Ascend "Round", ONNX QuantizeLinear).
    HalfEven,
    Floor,
    Ceil,
    Trunc,
}

impl RoundMode {
    fn apply(self, x: f32) -> f32 {
        match self {
            RoundMode::HalfEven => x.round_ties_even(),
            RoundMode::Floor => x.floor(),
            RoundMode::Ceil => x.ceil(),
            RoundMode::Trunc => x.trunc(),
        }
    }
}

/// AscendQuant: `q = clamp(round(x · scale) + offset)` to the `dst_type` range; `scale` is
/// the reciprocal of the activation scale (scale_d).
#[derive(Debug)]
struct AscendQuant {
    quantizer: Quantizer,
    bits: u32,
}

fn build_ascend_quant(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let scale = ctx.req_attr_f("scale")?;
    let offset = ctx.req_attr_f("offset")?;
    if !offset.is_finite() {
        return Err(op_err!("attribute 'offset' is {offset}, expected a finite zero point"));
    }
    if ctx.attr_i("sqrt_mode", 0)? != 0 {
        return Err(op_err!("attribute 'sqrt_mode' = 1 is not supported (amct_onnx never sets it)"));
    }
    let round = match ctx.attr_s("round_mode", "Round")?.as_str() {
        "Round" => RoundMode::HalfEven,
        "Floor" => RoundMode::Floor,
        "Ceil" => RoundMode::Ceil,
        "Trunc" => RoundMode::Trunc,
        other => return Err(op_err!("attribute 'round_mode' is {other:?}, expected Round, Floor, Ceil or Trunc")),
    };
    let bits = match ctx.attr_s("dst_type", "INT8")?.as_str() {
        "INT8" => 8,
        "INT4" => 4,
        "INT16" => 16,
        other => return Err(op_err!("attribute 'dst_type' is {other:?}, expected INT8, INT4 or INT16")),
    };
    if !scale.is_finite() || scale == 0.0 {
        return Err(op_err!("attribute 'scale' is {scale}, expected a finite non-zero reciprocal scale"));
    }
    let (lo, hi) = (-(1i32 << (bits - 1)) as f32, ((1i32 << (bits - 1)) - 1) as f32);
    // NaN maps to the offset (as rint(NaN) → 0 on the device's saturating convert).
    Ok(Box::new(AscendQuant { quantizer: Quantizer { scale, offset, round, limits: [lo, hi, offset.clamp(lo, hi)] }, bits }))
}

impl Op for AscendQuant {
    fn int8_quantizer(&self) -> Option<Quantizer> {
        (self.bits != 16).then_some(self.quantizer)
    }

    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let converted;
        let (shape, x): (Vec<usize>, &[f32]) = match input(inputs, 0)? {
            Tensor::F32(a) if a.is_standard_layout() => (a.shape().to_vec(), a.as_slice().expect("standard layout")),
            other => {
                converted = float_values(other, "input 0")?;
                (converted.0, &converted.1)
            }
        };
        Ok(vec![match self.bits {
            16 => Tensor::I16(self.quantize(&shape, x)?),
            _ => Tensor::I8(self.quantize(&shape, x)?),
        }])
    }
}

/// AscendQuant's operation, element by element: the op runs it, and so does a fused int8 conv
/// that ends with an AscendQuant writing int8.
#[derive(Debug, Clone, Copy)]
pub struct Quantizer {
    scale: f32,
    offset: f32,
    round: RoundMode,
    /// lo, hi of the dst_type, and the value NaN maps to.
    limits: [f32; 3],
}

impl Quantizer {
    /// `dst[i] = clamp(round(src[i] · scale) + offset)`, the rounding monomorphized (no
    /// per-element match and no libm call for ties-to-even).
    pub fn quantize<T: QuantInt>(&self, dst: &mut [T], src: &[f32]) {
        let (scale, offset, limits) = (self.scale, self.offset, self.limits);
        match self.round {
            RoundMode::HalfEven => quantize_slice(dst, src, scale, offset, limits, &<f32 as Real>::round_even),
            mode => quantize_slice(dst, src, scale, offset, limits, &|v| mode.apply(v)),
        }
    }
}

/// The integer types AscendQuant writes.
pub trait QuantInt: Copy + Default + Send + Sync {
    /// `v`: an integer value inside the type's range (not NaN).
    fn from_clamped(v: f32) -> Self;
}

impl QuantInt for i8 {
    #[inline(always)]
    fn from_clamped(v: f32) -> Self {
        // SAFETY: v is finite and within i8 (the caller clamped it), so within i32; the
        // unchecked convert vectorizes where the saturating `as` does not.
        unsafe { v.to_int_unchecked::<i32>() as i8 }
    }
}

impl QuantInt for i16 {
    #[inline(always)]
    fn from_clamped(v: f32) -> Self {
        // SAFETY: as for i8.
        unsafe { v.to_int_unchecked::<i32>() as i16 }
    }
}

impl AscendQuant {
    /// The quantized `x`; two threads on big tensors.
    fn quantize<T: QuantInt>(&self, shape: &[usize], x: &[f32]) -> OpResult<ArrayD<T>> {
        let mut out = vec![T::default(); x.len()];
        out.par_chunks_mut(1 << 15).zip(x.par_chunks(1 << 15)).for_each(|(dst, src)| self.quantizer.quantize(dst, src));
        ArrayD::from_shape_vec(IxDyn(shape), out).map_err(shape_err)
    }
}

/// `dst[i] = clamp(round(src[i] · scale) + offset)`, NaN → `nan`. A function of its own so
/// that the slices are known not to alias the parameters and the loop vectorizes (16 wide
/// where the CPU has AVX-512).
fn quantize_slice<T: QuantInt>(dst: &mut [T], src: &[f32], scale: f32, offset: f32, limits: [f32; 3], round: &impl Fn(f32) -> f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
        #[target_feature(enable = "avx512f,avx512bw")]
        fn wide<T: QuantInt>(dst: &mut [T], src: &[f32], scale: f32, offset: f32, limits: [f32; 3], round: &impl Fn(f32) -> f32) {
            quantize_loop(dst, src, scale, offset, limits, round)
        }
        // SAFETY: the CPU has the features `wide` is compiled for.
        return unsafe { wide(dst, src, scale, offset, limits, round) };
    }
    quantize_loop(dst, src, scale, offset, limits, round)
}

#[inline(always)]
fn quantize_loop<T: QuantInt>(dst: &mut [T], src: &[f32], scale: f32, offset: f32, [lo, hi, nan]: [f32; 3], round: &impl Fn(f32) -> f32) {
    for (d, &v) in dst.iter_mut().zip(src) {
        let r = round(v * scale) + offset;
        // A select rather than a branch.
        *d = T::from_clamped(if r.is_nan() { nan } else { r.clamp(lo, hi) });
    }
}

/// One channel block of AscendDequant: `acc · scale`, or in the joint/int16 mode (shift n)
/// the accumulator floor-divided by 2^n and clipped to int16 first, then scaled back up;
/// ReLU'd when `relu`. Vectorized as [`quantize_slice`].
fn dequantize_slice(dst: &mut [f32], src: &[i32], scale: f32, shift: u32, relu: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        fn wide(dst: &mut [f32], src: &[i32], scale: f32, shift: u32, relu: bool) {
            dequantize_loop(dst, src, scale, shift, relu)
        }
        // SAFETY: the CPU has the features `wide` is compiled for.
        return unsafe { wide(dst, src, scale, shift, relu) };
    }
    dequantize_loop(dst, src, scale, shift, relu)
}

#[inline(always)]
fn dequantize_loop(dst: &mut [f32], src: &[i32], scale: f32, shift: u32, relu: bool) {
    let value = |acc: i32| {
        if shift == 0 {
            acc as f32 * scale
        } else {
            let t = (acc >> shift).clamp(i16::MIN as i32, i16::MAX as i32);
            t as f32 * scale * (1u32 << shift) as f32
        }
    };
    // The branches outside the loops, so that each loop vectorizes.
    match relu {
        true => dst.iter_mut().zip(src).for_each(|(y, &acc)| *y = value(acc).max(0.0)),
        false => dst.iter_mut().zip(src).for_each(|(y, &acc)| *y = value(acc)),
    }
}

fn shape_err(e: ndarray::ShapeError) -> OpError {
    op_err!("internal shape error: {e}")
}

/// One dequantization factor per channel (or one for the whole tensor).
#[derive(Debug, Clone)]
pub(crate) struct DeqParam {
    pub(crate) scale: Vec<f32>,
    /// shift_n: the int32 accumulator is divided by 2^n (floor) and clipped to int16 first.
    pub(crate) shift: Vec<u32>,
}

/// Unpacks AscendDequant's `deq_scale` input: UINT64 with bits 0–31 = f32 deq_scale,
/// 32–39 = shift_n, 40–47 = offset_w (not used for dequantization); or plain float/fp16
/// scales (the Ascend 310 kernel form).
pub(crate) fn unpack_deq_param(t: &Tensor) -> OpResult<DeqParam> {
    match t {
        Tensor::U64(a) => Ok(DeqParam {
            scale: a.iter().map(|&v| f32::from_bits((v & 0xFFFF_FFFF) as u32)).collect(),
            shift: a.iter().map(|&v| ((v >> 32) & 0xFF) as u32).collect(),
        }),
        Tensor::F32(a) => Ok(DeqParam { scale: a.iter().copied().collect(), shift: vec![0; a.len()] }),
        Tensor::F16(a) => Ok(DeqParam { scale: a.iter().map(|x| x.to_f32()).collect(), shift: vec![0; a.len()] }),
        other => Err(op_err!("input 1 (deq_scale) is {}, expected uint64, float or float16", other.dtype_name())),
    }
}

/// Size of the channel axis (1) and the number of elements per channel block, for a
/// per-channel parameter of length `len` applied to `shape`.
fn channel_layout(shape: &[usize], len: usize, what: &str) -> OpResult<(usize, usize)> {
    if len == 1 {
        return Ok((1, shape.iter().product()));
    }
    if shape.len() < 2 || shape[1] != len {
        return Err(op_err!("{what} has {len} values, but input 0 has shape {shape:?} (expected {len} channels on axis 1)"));
    }
    Ok((len, shape[2..].iter().product()))
}

/// The `dtype` attribute of AscendDequant / AscendAntiQuant (ge::DataType numbering).
fn fp16_output(ctx: &BuildContext) -> OpResult<bool> {
    match ctx.attr_i("dtype", 0)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(op_err!("attribute 'dtype' is {other}, expected 0 (float32) or 1 (float16)")),
    }
}

/// f32 values → float32 or float16 tensor of `shape`.
fn float_output(shape: &[usize], values: Vec<f32>, fp16: bool) -> OpResult<Tensor> {
    let shape = IxDyn(shape);
    Ok(if fp16 {
        Tensor::F16(ArrayD::from_shape_vec(shape, values.into_iter().map(f16::from_f32).collect()).map_err(shape_err)?)
    } else {
        Tensor::F32(ArrayD::from_shape_vec(shape, values).map_err(shape_err)?)
    })
}

#[derive(Debug)]
struct AscendDequant {
    fp16_out: bool,
    relu: bool,
    /// Unpacked at plan time when the parameter is a constant (always, in deploy models).
    param: Option<DeqParam>,
}

fn build_ascend_dequant(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if ctx.attr_i("sqrt_mode", 0)? != 0 {
        return Err(op_err!("attribute 'sqrt_mode' = 1 is not supported (amct_onnx never sets it)"));
    }
    let fp16_out = fp16_output(ctx)?;
    let relu = ctx.attr_i("relu_flag", 0)? != 0;
    let param = ctx.constant(1).map(unpack_deq_param).transpose()?;
    Ok(Box::new(AscendDequant { fp16_out, relu, param }))
}

impl Op for AscendDequant {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = match input(inputs, 0)? {
            Tensor::I32(a) => a,
            other => return Err(op_err!("input 0 is {}, expected int32 (the integer layer's accumulator)", other.dtype_name())),
        };
        let owned;
        let param = match &self.param {
            Some(p) => p,
            None => {
                owned = unpack_deq_param(input(inputs, 1)?)?;
                &owned
            }
        };
        let (channels, block) = channel_layout(x.shape(), param.scale.len(), "input 1 (deq_scale)")?;
        let data = x.as_slice().ok_or_else(|| op_err!("input 0 is not contiguous"))?;
        let mut out = vec![0f32; data.len()];
        let relu = self.relu;
        out.par_chunks_mut(block.max(1)).zip(data.par_chunks(block.max(1))).enumerate().with_min_len(16).for_each(|(i, (dst, src))| {
            let c = i % channels;
            dequantize_slice(dst, src, param.scale[c], param.shift[c], relu);
        });
        Ok(vec![float_output(x.shape(), out, self.fp16_out)?])
    }
}

/// AscendAntiQuant: `y = (q − offset) · scale` with `scale` = scale_d and `offset` = offset_d,
/// so a Quant → AntiQuant pair with the same (scale_d, offset_d) reconstructs
/// x̂ = (q − offset_d)·scale_d. (How the device applies `offset` is UNCONFIRMED; this is the
/// reading under which AMCT's attribute values are self-consistent.)
#[derive(Debug)]
struct AscendAntiQuant {
    scale: f32,
    offset: f32,
    fp16_out: bool,
}

fn build_ascend_anti_quant(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if ctx.attr_i("sqrt_mode", 0)? != 0 {
        return Err(op_err!("attribute 'sqrt_mode' = 1 is not supported"));
    }
    let fp16_out = fp16_output(ctx)?;
    Ok(Box::new(AscendAntiQuant { scale: ctx.req_attr_f("scale")?, offset: ctx.req_attr_f("offset")?, fp16_out }))
}

impl Op for AscendAntiQuant {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let t = input(inputs, 0)?;
        let values: Vec<f32> = match t {
            Tensor::I8(a) => a.iter().map(|&q| (q as f32 - self.offset) * self.scale).collect(),
            Tensor::I16(a) => a.iter().map(|&q| (q as f32 - self.offset) * self.scale).collect(),
            other => return Err(op_err!("input 0 is {}, expected int8 or int16", other.dtype_name())),
        };
        Ok(vec![float_output(t.shape(), values, self.fp16_out)?])
    }
}

/// Per-tensor or per-axis parameters of QuantizeLinear / DequantizeLinear.
fn axis_layout(shape: &[usize], len: usize, axis: i64, what: &str) -> OpResult<(usize, usize)> {
    if len == 1 {
        return Ok((1, shape.iter().product::<usize>().max(1)));
    }
    let rank = shape.len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if a < 0 || a >= rank || shape[a as usize] != len {
        return Err(op_err!("{what} has {len} values, which does not match axis {axis} of input 0 with shape {shape:?}"));
    }
    Ok((len, shape[a as usize + 1..].iter().product::<usize>()))
}

#[derive(Debug)]
struct QuantizeLinear {
    axis: i64,
    /// Output type when no zero point is given (opset 21 `output_dtype`; default uint8).
    default_signed: bool,
}

fn build_quantize_linear(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if ctx.attr_i("block_size", 0)? != 0 {
        return Err(op_err!("blocked quantization (block_size) is not supported"));
    }
    let default_signed = match ctx.attr_i("output_dtype", 0)? {
        0 | 2 => false,
        3 => true,
        other => return Err(op_err!("attribute 'output_dtype' = {other} is not supported (int8 = 3 or uint8 = 2)")),
    };
    Ok(Box::new(QuantizeLinear { axis: ctx.attr_i("axis", 1)?, default_signed }))
}

impl Op for QuantizeLinear {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let (shape, x) = float_values(input(inputs, 0)?, "input 0")?;
        let (_, scale) = float_values(input(inputs, 1)?, "input 1 (y_scale)")?;
        let zero = inputs.get(2).copied().flatten();
        let signed = match zero {
            Some(Tensor::I8(_)) => true,
            Some(Tensor::U8(_)) => false,
            Some(other) => return Err(op_err!("input 2 (y_zero_point) is {}, expected int8 or uint8", other.dtype_name())),
            None => self.default_signed,
        };
        let zp: Vec<f32> = match zero {
            Some(z) => z.to_f64_vec().into_iter().map(|v| v as f32).collect(),
            None => vec![0.0; scale.len()],
        };
        if zp.len() != scale.len() {
            return Err(op_err!("y_zero_point has {} values, y_scale has {}", zp.len(), scale.len()));
        }
        let (channels, block) = axis_layout(&shape, scale.len(), self.axis, "input 1 (y_scale)")?;
        let (lo, hi) = if signed { (-128.0, 127.0) } else { (0.0, 255.0) };
        let q: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / block.max(1)) % channels;
                ((v / scale[c]).round_ties_even() + zp[c]).clamp(lo, hi)
            })
            .collect();
        let shape = IxDyn(&shape);
        Ok(vec![if signed {
            Tensor::I8(ArrayD::from_shape_vec(shape, q.into_iter().map(|v| v as i8).collect()).map_err(shape_err)?)
        } else {
            Tensor::U8(ArrayD::from_shape_vec(shape, q.into_iter().map(|v| v as u8).collect()).map_err(shape_err)?)
        }])
    }
}

#[derive(Debug)]
struct DequantizeLinear {
    axis: i64,
}

fn build_dequantize_linear(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if ctx.attr_i("block_size", 0)? != 0 {
        return Err(op_err!("blocked quantization (block_size) is not supported"));
    }
    Ok(Box::new(DequantizeLinear { axis: ctx.attr_i("axis", 1)? }))
}

impl Op for DequantizeLinear {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        if !matches!(x, Tensor::I8(_) | Tensor::U8(_) | Tensor::I32(_)) {
            return Err(op_err!("input 0 is {}, expected int8, uint8 or int32", x.dtype_name()));
        }
        let scale_t = input(inputs, 1)?;
        let (_, scale) = float_values(scale_t, "input 1 (x_scale)")?;
        let zp: Vec<f64> = match inputs.get(2).copied().flatten() {
            Some(z) if z.dtype() != x.dtype() => {
                return Err(op_err!("input 2 (x_zero_point) is {}, input 0 is {}", z.dtype_name(), x.dtype_name()));
            }
            Some(z) => z.to_f64_vec(),
            None => vec![0.0; scale.len()],
        };
        if zp.len() != scale.len() {
            return Err(op_err!("x_zero_point has {} values, x_scale has {}", zp.len(), scale.len()));
        }
        let (channels, block) = axis_layout(x.shape(), scale.len(), self.axis, "input 1 (x_scale)")?;
        let y: Vec<f32> = x
            .to_f64_vec()
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                let c = (i / block.max(1)) % channels;
                ((q - zp[c]) as f32) * scale[c]
            })
            .collect();
        Ok(vec![float_output(x.shape(), y, matches!(scale_t, Tensor::F16(_)))?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::registry::test_support;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::proto::{AttributeProto, NodeProto};

    fn attr_f(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Float as i32), f: Some(v), ..Default::default() }
    }

    fn build(node: &NodeProto, constants: Vec<Option<Tensor>>, b: crate::engine::registry::Builder) -> Box<dyn Op> {
        test_support::build(b, node.op_type(), node.attribute.clone(), constants, 13).unwrap()
    }

    #[test]
    fn ascend_quant_rounds_half_even_and_saturates() {
        // scale = 1/scale_d = 2, offset = 3: q = clamp(rint(2x) + 3, -128, 127)
        let node = NodeProto {
            op_type: Some("AscendQuant".into()),
            attribute: vec![attr_f("scale", 2.0), attr_f("offset", 3.0)],
            ..Default::default()
        };
        let op = build(&node, vec![], build_ascend_quant);
        let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[5]), vec![0.25, 0.75, -1.25, 100.0, -100.0]).unwrap());
        // 2·0.25 = 0.5 → 0 (+3 = 3); 1.5 → 2 (5); -2.5 → -2 (1); 200 → 127; -200 → -128
        let out = op.run(&[Some(&x)]).unwrap();
        assert_eq!(out[0].to_i64_vec().unwrap(), vec![3, 5, 1, 127, -128]);
        assert_eq!(out[0].dtype_name(), "int8");
    }

    #[test]
    fn ascend_dequant_unpacks_uint64_per_channel() {
        // channel 0: deq 0.5, shift 0; channel 1: deq 0.25, shift 1 (acc floor-divided by 2,
        // then ×0.25×2); offset_w byte set to 0xFF must be ignored.
        let p0 = 0.5f32.to_bits() as u64;
        let p1 = 0.25f32.to_bits() as u64 | (1u64 << 32) | (0xFFu64 << 40);
        let param = Tensor::U64(ArrayD::from_shape_vec(IxDyn(&[2]), vec![p0, p1]).unwrap());
        let node = NodeProto { op_type: Some("AscendDequant".into()), ..Default::default() };
        let op = build(&node, vec![None, Some(param)], build_ascend_dequant);
        let x = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![10, -3, 7, -7]).unwrap());
        let out = op.run(&[Some(&x), None]).unwrap();
        // ch0: 10·0.5 = 5, -3·0.5 = -1.5; ch1: floor(7/2)=3 → 3·0.25·2 = 1.5, floor(-7/2) = -4 → -2
        assert_eq!(out[0].to_f64_vec(), vec![5.0, -1.5, 1.5, -2.0]);
    }

    #[test]
    fn dequant_param_length_must_match_channels() {
        let param = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0; 3]).unwrap());
        let node = NodeProto { op_type: Some("AscendDequant".into()), ..Default::default() };
        let op = build(&node, vec![None, Some(param)], build_ascend_dequant);
        let x = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1, 2, 1]), vec![1, 2]).unwrap());
        let e = op.run(&[Some(&x), None]).unwrap_err().0;
        assert!(e.contains("3 values") && e.contains("[1, 2, 1]"), "{e}");
    }

    #[test]
    fn anti_quant_inverts_quant() {
        let node = NodeProto {
            op_type: Some("AscendAntiQuant".into()),
            attribute: vec![attr_f("scale", 0.5), attr_f("offset", 3.0)],
            ..Default::default()
        };
        let op = build(&node, vec![], build_ascend_anti_quant);
        let q = Tensor::I8(ArrayD::from_shape_vec(IxDyn(&[3]), vec![3, 5, -128]).unwrap());
        // (q - 3)·0.5
        assert_eq!(op.run(&[Some(&q)]).unwrap()[0].to_f64_vec(), vec![0.0, 1.0, -65.5]);
    }
}

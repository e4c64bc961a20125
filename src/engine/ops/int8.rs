//! The integer layers of Ascend deploy models: Conv / ConvTranspose / Gemm / MatMul whose
//! weights are int8 constants (and bias int32), and AveragePool, all fed by an int8
//! activation. They compute exact int32 accumulators with the kernels of
//! [`crate::engine::int8`]; the activation's zero point is the `offset` of the AscendQuant
//! that produced it (0 when there is none).
//!
//! `conv.rs` and `matmul.rs` delegate here when input 1 is an int8 constant; `pool.rs` when
//! an AveragePool's input comes from an AscendQuant.

use std::borrow::Cow;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::conv::TransposeAttrs;
use super::pool::{Pool, PoolKind};
use crate::engine::error::{OpError, OpResult};
use crate::engine::int8::{self, ConvGeometry, MatMulWeights, TransposeGeometry};
use crate::engine::kernels::epilogue::Epilogue;
use crate::engine::ops::quant::Quantizer;
use crate::engine::registry::{BuildContext, Op, input};
use crate::engine::tensor::Tensor;
use crate::onnx::NodeExt;
use crate::onnx::window::{AutoPad, Window, WindowAttrs};
use crate::op_err;

/// Whether the node is an integer layer of a deploy model (int8 constant weight).
pub fn is_int8_layer(ctx: &BuildContext) -> bool {
    matches!(ctx.constant(1), Some(Tensor::I8(_)))
}

/// Whether input 0 is produced by an AscendQuant (so it is int8 at run time).
pub fn fed_by_ascend_quant(ctx: &BuildContext) -> bool {
    ctx.input_producers.first().copied().flatten().is_some_and(|p| p.op_type() == "AscendQuant")
}

/// Zero point of input 0: the `offset` attribute of the AscendQuant producing it.
fn input_zero_point(ctx: &BuildContext) -> OpResult<i32> {
    match ctx.input_producers.first().copied().flatten() {
        Some(p) if p.op_type() == "AscendQuant" => {
            let offset = p.opt_attr_f("offset")?.unwrap_or(0.0);
            if offset.fract() != 0.0 || !(-128.0..=127.0).contains(&offset) {
                return Err(op_err!("the AscendQuant feeding input 0 has offset {offset}, expected an integer in [-128, 127]"));
            }
            Ok(offset as i32)
        }
        _ => Ok(0),
    }
}

/// Input `i`'s int8 values in standard order (borrowed when the tensor is contiguous).
fn int8_input<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> OpResult<Cow<'a, [i8]>> {
    match input(inputs, i)? {
        Tensor::I8(a) => Ok(match a.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(a.iter().copied().collect()),
        }),
        other => Err(op_err!("input {i} is {}, expected int8 (an int8 layer of a deploy model)", other.dtype_name())),
    }
}

/// Optional int32 bias (input 2) as a flat vector of `len` values.
fn int32_bias(ctx: &BuildContext, len: usize) -> OpResult<Vec<i32>> {
    if !ctx.has_input(2) {
        return Ok(Vec::new());
    }
    match ctx.constant(2) {
        Some(Tensor::I32(b)) if b.len() == len => Ok(b.iter().copied().collect()),
        Some(Tensor::I32(b)) => Err(op_err!("input 2 (bias) has {} values, expected {len}", b.len())),
        Some(other) => Err(op_err!("input 2 (bias) is {}, expected an int32 constant in an int8 layer", other.dtype_name())),
        None => Err(op_err!("input 2 (bias) of an int8 layer must be a constant")),
    }
}

fn output(shape: &[usize], values: Vec<i32>) -> OpResult<Tensor> {
    ArrayD::from_shape_vec(IxDyn(shape), values).map(Tensor::I32).map_err(|e| op_err!("internal shape error: {e}"))
}

/// The accumulators of an N×C×… output with a fused epilogue ([`crate::engine::fuse`]: its
/// first stage converts them, the next is the AscendDequant's scale) applied per channel
/// plane, in place: a float tensor in the accumulators' memory, no second buffer.
///
/// With `quantizer` (the chain's AscendQuant), each plane is quantized right after its
/// epilogue, while in cache, into an int8 tensor.
fn fused_output(shape: &[usize], acc: Vec<i32>, epilogue: &Epilogue, quantizer: Option<Quantizer>) -> OpResult<Tensor> {
    use rayon::prelude::*;
    let channels = shape.get(1).copied().unwrap_or(1).max(1);
    let plane = shape.iter().skip(2).product::<usize>().max(1);
    let min_len = (1 << 14) / plane + 1;
    let mut acc = std::mem::ManuallyDrop::new(acc);
    // SAFETY: the same allocation, length and capacity; i32 and f32 have one size and
    // alignment and every bit pattern is an f32 (the first stage reads the bits as i32).
    let mut values = unsafe { Vec::from_raw_parts(acc.as_mut_ptr().cast::<f32>(), acc.len(), acc.capacity()) };
    let shape_err = |e: ndarray::ShapeError| op_err!("internal shape error: {e}");
    match quantizer {
        None => {
            values.par_chunks_mut(plane).enumerate().with_min_len(min_len).for_each(|(i, p)| epilogue.apply(i % channels, p));
            ArrayD::from_shape_vec(IxDyn(shape), values).map(Tensor::F32).map_err(shape_err)
        }
        Some(q) => {
            let mut out = vec![0i8; values.len()];
            out.par_chunks_mut(plane).zip(values.par_chunks_mut(plane)).enumerate().with_min_len(min_len).for_each(|(i, (o, p))| {
                epilogue.apply(i % channels, p);
                q.quantize(o, p);
            });
            ArrayD::from_shape_vec(IxDyn(shape), out).map(Tensor::I8).map_err(shape_err)
        }
    }
}

/// The op's output: the accumulators, or with the fused epilogue the float (or quantized) values.
fn conv_output(shape: &[usize], acc: Vec<i32>, epilogue: Option<&Epilogue>, quantizer: Option<Quantizer>) -> OpResult<Tensor> {
    match epilogue {
        Some(e) => fused_output(shape, acc, e, quantizer),
        None => output(shape, acc),
    }
}

#[derive(Debug, Clone)]
struct Int8Conv {
    x_offset: i32,
    weight: Arc<[i8]>,
    w_shape: [usize; 4],
    bias: Arc<[i32]>,
    /// The 2-D window; SAME_* pads are resolved per input size.
    window: Window,
    group: usize,
    /// The fused AscendDequant and tail (float output) of the fused plan.
    epilogue: Option<Arc<Epilogue>>,
    /// And the AscendQuant after them (int8 output).
    quantizer: Option<Quantizer>,
    /// The weights as the integer kernels read them, packed by the first run (shared with
    /// the fused copy of the op: same weights, bias and input offset).
    packed: Arc<int8::PackedConv>,
}

pub fn build_conv(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let Some(Tensor::I8(w)) = ctx.constant(1) else {
        return Err(op_err!("input 1 (weight) must be an int8 constant"));
    };
    let [m, cg, kh, kw]: [usize; 4] =
        w.shape().try_into().map_err(|_| op_err!("int8 Conv supports 2-D kernels only; weight has shape {:?}", w.shape()))?;
    let window = WindowAttrs::read(ctx.node)?.window(2, Some(&[kh, kw]))?;
    let group = ctx.attr_i("group", 1)?;
    if group < 1 || m % group as usize != 0 {
        return Err(op_err!("attribute 'group' is {group}, which does not divide the {m} output channels"));
    }
    Ok(Box::new(Int8Conv {
        x_offset: input_zero_point(ctx)?,
        weight: w.iter().copied().collect(),
        w_shape: [m, cg, kh, kw],
        bias: int32_bias(ctx, m)?.into(),
        window,
        group: group as usize,
        epilogue: None,
        quantizer: None,
        packed: Arc::default(),
    }))
}

impl Op for Int8Conv {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let shape = input(inputs, 0)?.shape().to_vec();
        let &[n, c, h, w] = shape.as_slice() else {
            return Err(op_err!("input 0 has shape {shape:?}, expected N×C×H×W"));
        };
        let [m, cg, kh, kw] = self.w_shape;
        if c != cg * self.group {
            return Err(op_err!("input 0 has {c} channels, the weight expects {} ({cg} × group {})", cg * self.group, self.group));
        }
        let (rows, cols) = (self.window.axis(0, h, false)?, self.window.axis(1, w, false)?);
        let geometry = ConvGeometry {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: m,
            kernel: [kh, kw],
            strides: [self.window.strides[0], self.window.strides[1]],
            dilations: [self.window.dilations[0], self.window.dilations[1]],
            pads: [rows.pad_begin, cols.pad_begin, rows.pad_end, cols.pad_end],
            group: self.group,
        };
        let [oh, ow] = geometry.out_hw();
        debug_assert_eq!([oh, ow], [rows.out, cols.out], "the int8 kernel sizes its output like the window rules");
        let x = int8_input(inputs, 0)?;
        let acc = int8::conv2d_packed(&x, self.x_offset, &self.weight, &self.bias, &geometry, &self.packed);
        Ok(vec![conv_output(&[n, m, oh, ow], acc, self.epilogue.as_deref(), self.quantizer)?])
    }

    fn with_epilogue(&self, epilogue: Arc<Epilogue>, quantizer: Option<Quantizer>) -> Option<Box<dyn Op>> {
        Some(Box::new(Int8Conv { epilogue: Some(epilogue), quantizer, ..self.clone() }))
    }
}

/// ConvTranspose with an int8 constant weight (C_in × C_out/group × kh × kw); attributes and
/// output geometry are the float op's.
#[derive(Debug, Clone)]
struct Int8ConvTranspose {
    attrs: TransposeAttrs,
    x_offset: i32,
    weight: Arc<[i8]>,
    w_shape: [usize; 4],
    bias: Arc<[i32]>,
    /// As [`Int8Conv::epilogue`], [`Int8Conv::quantizer`] and [`Int8Conv::packed`].
    epilogue: Option<Arc<Epilogue>>,
    quantizer: Option<Quantizer>,
    packed: Arc<int8::PackedConv>,
}

pub fn build_conv_transpose(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let Some(Tensor::I8(w)) = ctx.constant(1) else {
        return Err(op_err!("input 1 (weight) must be an int8 constant"));
    };
    let attrs = TransposeAttrs::parse(ctx)?;
    attrs.check_weight(w.shape())?;
    let w_shape: [usize; 4] =
        w.shape().try_into().map_err(|_| op_err!("int8 ConvTranspose supports 2-D kernels only; weight has shape {:?}", w.shape()))?;
    let c_out = w_shape[1] * attrs.group();
    Ok(Box::new(Int8ConvTranspose {
        x_offset: input_zero_point(ctx)?,
        weight: w.iter().copied().collect(),
        w_shape,
        bias: int32_bias(ctx, c_out)?.into(),
        attrs,
        epilogue: None,
        quantizer: None,
        packed: Arc::default(),
    }))
}

impl Op for Int8ConvTranspose {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let shape = input(inputs, 0)?.shape().to_vec();
        let plan = self.attrs.plan(&shape, &self.w_shape)?;
        let pair = |v: &[usize]| [v[0], v[1]];
        let geometry = TransposeGeometry {
            batch: shape[0],
            in_channels: shape[1],
            in_hw: pair(&shape[2..]),
            out_channels: self.w_shape[1] * self.attrs.group(),
            out_hw: pair(&plan.out),
            kernel: pair(&plan.kernel),
            strides: pair(&plan.strides),
            dilations: pair(&plan.dilations),
            pad_begin: [plan.pad_begin[0], plan.pad_begin[1]],
            group: self.attrs.group(),
        };
        let x = int8_input(inputs, 0)?;
        let acc = int8::conv_transpose2d_packed(&x, self.x_offset, &self.weight, &self.bias, &geometry, &self.packed);
        let [oh, ow] = geometry.out_hw;
        Ok(vec![conv_output(&[geometry.batch, geometry.out_channels, oh, ow], acc, self.epilogue.as_deref(), self.quantizer)?])
    }

    fn with_epilogue(&self, epilogue: Arc<Epilogue>, quantizer: Option<Quantizer>) -> Option<Box<dyn Op>> {
        Some(Box::new(Int8ConvTranspose { epilogue: Some(epilogue), quantizer, ..self.clone() }))
    }
}

/// AveragePool on an AscendQuant's int8 output: int32 window sums of (q − offset). The
/// AscendDequant after it multiplies by scale_d / area, so every window must have the full
/// kernel area as its divisor; layers where the border windows would average fewer values
/// are refused rather than computed differently from the float model.
#[derive(Debug)]
struct Int8AvgPool {
    pool: Pool,
    x_offset: i32,
}

pub(super) fn build_avg_pool(ctx: &BuildContext, pool: Pool) -> OpResult<Box<dyn Op>> {
    let what = "an int8 AveragePool (input 0 from an AscendQuant)";
    if pool.window.rank() != 2 {
        return Err(op_err!("{what} supports 2-D pooling only; attribute 'kernel_shape' is {:?}", pool.window.kernel));
    }
    let include_pad = matches!(pool.kind, PoolKind::Avg { count_include_pad: true });
    if !include_pad && pool.window.auto_pad == AutoPad::NotSet && pool.window.pads.iter().any(|&p| p != 0) {
        return Err(op_err!(
            "{what} with attribute 'count_include_pad' = 0 and 'pads' = {:?}: border windows average fewer values, so the int32 \
             window sums have no single divisor for the AscendDequant; expected count_include_pad = 1 or zero pads",
            pool.window.pads
        ));
    }
    let op = Int8AvgPool { pool, x_offset: input_zero_point(ctx)? };
    if let Some(shape) = ctx.input_shapes.first().and_then(|s| s.as_ref()) {
        op.full_windows(shape)?;
    }
    Ok(Box::new(op))
}

impl Int8AvgPool {
    /// Per spatial axis, the input taps of every output position, after checking that each
    /// window's divisor is the full kernel extent.
    fn full_windows(&self, shape: &[usize]) -> OpResult<Vec<Vec<Vec<usize>>>> {
        let &[_, _, h, w] = shape else {
            return Err(op_err!("input 0 has shape {shape:?}, expected N×C×H×W for a 2-D int8 AveragePool"));
        };
        let include_pad = matches!(self.pool.kind, PoolKind::Avg { count_include_pad: true });
        let mut axes = Vec::with_capacity(2);
        for (i, n) in [h, w].into_iter().enumerate() {
            let (_, taps) = self.pool.axis_taps(i, n)?;
            let k = self.pool.window.kernel[i];
            for (o, t) in taps.taps.iter().enumerate() {
                let divisor = if include_pad { taps.padded_count[o] } else { t.len() };
                if divisor != k {
                    return Err(op_err!(
                        "int8 AveragePool on input {shape:?}: output {o} of spatial axis {i} averages {divisor} of the kernel's {k} \
                         positions (attributes 'ceil_mode' = {}, 'pads' = {:?}, 'auto_pad' = {}, 'count_include_pad' = {}); the int32 \
                         window sums need the full kernel area as the divisor of every window",
                        self.pool.ceil_mode as i32,
                        self.pool.window.pads,
                        self.pool.window.auto_pad.onnx_name(),
                        include_pad as i32
                    ));
                }
            }
            axes.push(taps.taps);
        }
        Ok(axes)
    }
}

impl Op for Int8AvgPool {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let shape = input(inputs, 0)?.shape().to_vec();
        let axes = self.full_windows(&shape)?;
        let x = int8_input(inputs, 0)?;
        let sums = int8::window_sums(&x, self.x_offset, shape[0] * shape[1], [shape[2], shape[3]], &axes[0], &axes[1]);
        Ok(vec![output(&[shape[0], shape[1], axes[0].len(), axes[1].len()], sums)?])
    }
}

/// Gemm / MatMul with an int8 constant weight: `A (…×K) · B (K×N) + bias` in int32.
#[derive(Debug)]
struct Int8MatMul {
    x_offset: i32,
    /// K×N, row-major (transB applied at plan time), packed for the dot-product blocks.
    weight: MatMulWeights,
    bias: Vec<i32>,
    /// Gemm: A must be 2-D; MatMul: leading dims are batch.
    gemm: bool,
}

pub fn build_matmul(ctx: &BuildContext, gemm: bool) -> OpResult<Box<dyn Op>> {
    let Some(Tensor::I8(b)) = ctx.constant(1) else {
        return Err(op_err!("input 1 (weight) must be an int8 constant"));
    };
    let &[rows, cols] = b.shape() else {
        return Err(op_err!("int8 weight has shape {:?}, expected a 2-D matrix", b.shape()));
    };
    let trans_b = gemm && ctx.attr_i("transB", 0)? != 0;
    if gemm {
        if ctx.attr_i("transA", 0)? != 0 {
            return Err(op_err!("transA = 1 is not supported in an int8 Gemm (amct_onnx requires transA = 0)"));
        }
        for (name, default) in [("alpha", 1.0), ("beta", 1.0)] {
            let v = ctx.attr_f(name, default)?;
            if v != 1.0 {
                return Err(op_err!("attribute '{name}' is {v}, an int8 Gemm needs 1.0"));
            }
        }
    }
    let (k, n) = if trans_b { (cols, rows) } else { (rows, cols) };
    let weight: Vec<i8> = if trans_b {
        (0..k).flat_map(|kk| (0..n).map(move |j| (kk, j))).map(|(kk, j)| b[[j, kk]]).collect()
    } else {
        b.iter().copied().collect()
    };
    Ok(Box::new(Int8MatMul {
        x_offset: input_zero_point(ctx)?,
        weight: MatMulWeights::new(weight, k, n),
        bias: if gemm { int32_bias(ctx, n)? } else { Vec::new() },
        gemm,
    }))
}

impl Op for Int8MatMul {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let shape = input(inputs, 0)?.shape().to_vec();
        let (k, n) = (self.weight.k, self.weight.n);
        let bad = || -> OpError { op_err!("input 0 has shape {shape:?}, expected …×{k} to multiply the {k}×{n} int8 weight") };
        if shape.last() != Some(&k) || (self.gemm && shape.len() != 2) {
            return Err(bad());
        }
        let m: usize = shape[..shape.len() - 1].iter().product();
        let a = int8_input(inputs, 0)?;
        let acc = int8::matmul_prepared(&a, self.x_offset, &self.weight, &self.bias, m);
        let mut out_shape = shape.clone();
        *out_shape.last_mut().expect("non-empty") = n;
        Ok(vec![output(&out_shape, acc)?])
    }
}

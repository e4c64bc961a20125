//! Conv and ConvTranspose (float32; spatial rank 1–3; groups incl. depthwise; strides,
//! dilations, explicit pads and auto_pad; ConvTranspose output_padding / output_shape).
//! Constant weights are converted/packed once in the builder.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::common::contiguous;
use crate::engine::error::OpResult;
use crate::engine::kernels::conv::{Geom, conv_f32, conv_transpose_f32, pack_conv_weights, pack_transpose_weights};
use crate::engine::kernels::epilogue::Epilogue;
use crate::engine::kernels::panel::PackedWeights;
use crate::engine::kernels::split;
use crate::engine::kernels::winograd::{self, WinogradWeights};
use crate::engine::ops::quant::Quantizer;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::onnx::window::{AxisWindow, TransposeOutput, Window, WindowAttrs};
use crate::op_err;

pub fn register(r: &mut Registry) {
    r.register("Conv", build_conv);
    r.register("ConvTranspose", build_conv_transpose);
}

/// Conv / ConvTranspose attributes, validated in the builder: the window attributes
/// ([`crate::onnx::window`]) and `group`. The per-axis lists are checked against the spatial
/// rank once the weight's shape is known.
#[derive(Debug, Clone)]
struct ConvAttrs {
    window: WindowAttrs,
    group: usize,
}

impl ConvAttrs {
    fn parse(ctx: &BuildContext) -> OpResult<Self> {
        let window = WindowAttrs::read(ctx.node)?;
        let group = ctx.attr_i("group", 1)?;
        if group < 1 {
            return Err(op_err!("attribute 'group' = {group}: must be >= 1"));
        }
        Ok(ConvAttrs { window, group: group as usize })
    }

    /// The window for a weight of shape `C × C/group × kernel...` (its spatial dims are the
    /// kernel, which `kernel_shape` must equal).
    fn window(&self, w_shape: &[usize]) -> OpResult<Window> {
        Ok(self.window.window(w_shape.len() - 2, Some(&w_shape[2..]))?)
    }
}

/// Kernel geometry with 1-D/2-D spatial axes lifted to 3-D (size-1 leading axes).
fn geometry(input: &[usize], output: &[usize], kernel: &[usize], stride: &[usize], dilation: &[usize], pad_begin: &[isize]) -> Geom {
    Geom {
        input: to3(input, 1),
        output: to3(output, 1),
        kernel: to3(kernel, 1),
        stride: to3(stride, 1),
        dilation: to3(dilation, 1),
        pad: to3(pad_begin, 0),
    }
}

/// Allocates the N×C_out×spatial output, lets `kernel` fill it, and wraps it as a tensor.
fn run_into_output(batch: usize, c_out: usize, out_spatial: &[usize], kernel: impl FnOnce(&mut [f32])) -> OpResult<Vec<Tensor>> {
    let mut shape = vec![batch, c_out];
    shape.extend_from_slice(out_spatial);
    // SAFETY: every conv kernel writes each output element (the bias or the first product
    // seeds it) before it reads it back (later depth blocks, the epilogue).
    let mut out = unsafe { split::unfilled_f32(shape.iter().product()) };
    kernel(&mut out);
    let out = ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| op_err!("output shape {shape:?}: {e}"))?;
    Ok(vec![Tensor::F32(out)])
}

/// Pads `v` (length r ≤ 3) to 3 entries with leading `fill`s.
fn to3<T: Copy>(v: &[T], fill: T) -> [T; 3] {
    let mut a = [fill; 3];
    a[3 - v.len()..].copy_from_slice(v);
    a
}

/// Checks x (input 0) and w (input 1) ranks and returns the spatial rank.
fn check_ranks(x: &[usize], w: &[usize], op: &str) -> OpResult<usize> {
    if !(3..=5).contains(&x.len()) {
        return Err(op_err!("input 0 has shape {x:?}: {op} expects N x C x D1 [x D2 [x D3]] (rank 3 to 5)"));
    }
    if w.len() != x.len() {
        return Err(op_err!("input 1 (weights) has shape {w:?}, expected rank {} like input 0 {x:?}", x.len()));
    }
    Ok(x.len() - 2)
}

fn check_bias(bias: Option<&Tensor>, c_out: usize) -> OpResult<Option<&[f32]>> {
    let Some(b) = bias else { return Ok(None) };
    let a = b.as_f32().ok_or_else(|| op_err!("input 2 (bias) is {}, expected float", b.dtype_name()))?;
    if a.shape() != [c_out] {
        return Err(op_err!("input 2 (bias) has shape {:?}, expected [{c_out}]", a.shape()));
    }
    Ok(Some(a.as_slice().ok_or_else(|| op_err!("input 2 (bias) is not contiguous"))?))
}

fn f32_input<'a>(inputs: &[Option<&'a Tensor>], i: usize, what: &str) -> OpResult<&'a ArrayD<f32>> {
    let t = input(inputs, i)?;
    t.as_f32().ok_or_else(|| op_err!("input {i} ({what}) is {}, expected float", t.dtype_name()))
}

/// The data of a float tensor the builder made standard-layout.
fn standard_f32(t: &Tensor) -> &[f32] {
    t.as_f32().and_then(|a| a.as_slice()).expect("conv weights are kept as a standard-layout f32 tensor")
}

// ---------------------------------------------------------------------------------------
// Conv

struct Conv {
    attrs: ConvAttrs,
    /// Constant weights captured at plan time (shape, data): the plan's own constant, shared
    /// rather than copied (a copy per conv doubled a session's weight memory). The data only
    /// where `packed` does not cover every path (None when packed: the session then drops
    /// the constant, which no step reads).
    weights: Option<(Vec<usize>, Option<Arc<Tensor>>)>,
    /// The constant weights packed for the panel kernel, once (None: another path).
    packed: Option<Arc<Vec<PackedWeights>>>,
    /// The constant weights transformed for the Winograd path (3×3, stride 1, group 1, an
    /// output large enough), which then replaces `packed`.
    winograd: Option<Arc<WinogradWeights>>,
    /// Element-wise ops fused after the conv at plan time.
    epilogue: Option<Arc<Epilogue>>,
}

impl std::fmt::Debug for Conv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv").field("attrs", &self.attrs).field("epilogue", &self.epilogue).finish_non_exhaustive()
    }
}

/// Whether a weight tensor holds subnormal values (nonzero, below `f32::MIN_POSITIVE`).
fn has_subnormal(w: &ArrayD<f32>) -> bool {
    w.iter().any(|v| v.is_subnormal())
}

/// Constant conv weights with their subnormal values made zeros of the same sign. A product
/// with one is below 1.2e-38·|x|, so it can change an output only for a huge input (|x| near
/// 1e30) or a tiny sum, but every such product costs the x86 cores a microcode assist:
/// PP-OCRv4 rec's squeeze-excitation conv (480 → 120, 22 % of its weights subnormal) took
/// 0.61 ms, 0.05 ms with them flushed.
fn flush_subnormals(mut w: ArrayD<f32>) -> ArrayD<f32> {
    w.mapv_inplace(|v| if v.is_subnormal() { 0f32.copysign(v) } else { v });
    w
}

fn build_conv(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if super::int8::is_int8_layer(ctx) {
        return super::int8::build_conv(ctx);
    }
    let attrs = ConvAttrs::parse(ctx)?;
    let weights = match ctx.constants.get(1).cloned().flatten() {
        Some(t) => match &*t {
            Tensor::F32(w) if w.is_standard_layout() && !has_subnormal(w) => Some((w.shape().to_vec(), t.clone())),
            Tensor::F32(w) => Some((w.shape().to_vec(), Arc::new(Tensor::F32(flush_subnormals(w.as_standard_layout().into_owned()))))),
            _ => None,
        },
        None => None,
    };
    if let Some((shape, _)) = &weights {
        if shape.len() < 3 {
            return Err(op_err!("input 1 (weights) has shape {shape:?}, expected C_out x C_in/group x k1 [x k2 [x k3]]"));
        }
        attrs.window(shape)?;
        if shape[0] % attrs.group != 0 {
            return Err(op_err!("input 1 (weights) has {} output channels, not divisible by group {}", shape[0], attrs.group));
        }
    }
    // Packed for the channel count the weights imply; a run with another input channel
    // count is an error before the packing is used.
    let winograd = weights.as_ref().and_then(|(shape, w)| winograd_weights(&attrs, ctx, shape, standard_f32(w))).map(Arc::new);
    let packed = weights.as_ref().filter(|_| winograd.is_none()).and_then(|(shape, w)| {
        let w = standard_f32(w);
        let kl = shape[2..].iter().product();
        pack_conv_weights(w, shape[1] * attrs.group, shape[0], attrs.group, kl).map(Arc::new)
    });
    let weights = weights.map(|(shape, w)| (shape, (packed.is_none() && winograd.is_none()).then_some(w)));
    Ok(Box::new(Conv { attrs, weights, packed, winograd, epilogue: None }))
}

/// The Winograd form of a constant 3×3 stride-1 dilation-1 group-1 weight, when this machine
/// runs that path and the input's plan-time shape gives an output it pays on
/// ([`winograd::worth_it`]).
fn winograd_weights(attrs: &ConvAttrs, ctx: &BuildContext, shape: &[usize], w: &[f32]) -> Option<WinogradWeights> {
    if !winograd::available() || attrs.group != 1 || shape.len() != 4 || shape[2..] != [3, 3] {
        return None;
    }
    let win = attrs.window(shape).ok()?;
    if win.strides != [1, 1] || win.dilations != [1, 1] {
        return None;
    }
    let x = ctx.input_shapes.first()?.as_ref()?;
    if x.len() != 4 || x[1] != shape[1] {
        return None;
    }
    let (oy, ox) = (win.axis(0, x[2], false).ok()?, win.axis(1, x[3], false).ok()?);
    winograd::worth_it(shape[1], shape[0], oy.out, ox.out).then(|| WinogradWeights::new(w, shape[0], shape[1]))
}

impl Op for Conv {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = f32_input(inputs, 0, "X")?;
        let runtime_w;
        let (w_shape, w): (&[usize], &[f32]) = match &self.weights {
            Some((s, Some(w))) => (s, standard_f32(w)),
            // Packed: conv_f32 reads only the packed weights.
            Some((s, None)) => (s, &[]),
            None => {
                let wa = f32_input(inputs, 1, "W")?;
                runtime_w = contiguous(wa);
                (wa.shape(), &runtime_w)
            }
        };
        let r = check_ranks(x.shape(), w_shape, "Conv")?;
        let a = &self.attrs;
        let (batch, c_in) = (x.shape()[0], x.shape()[1]);
        let c_out = w_shape[0];
        if c_in % a.group != 0 || c_out % a.group != 0 {
            return Err(op_err!(
                "input 0 has {c_in} channels and input 1 (weights) {c_out} output channels: both must be divisible by group {}",
                a.group
            ));
        }
        if w_shape[1] * a.group != c_in {
            return Err(op_err!(
                "input 1 (weights) has shape {w_shape:?}: dimension 1 should be C_in/group = {}/{} = {}",
                c_in,
                a.group,
                c_in / a.group
            ));
        }
        let win = a.window(w_shape)?;
        let in_sp = &x.shape()[2..];
        let axes: Vec<AxisWindow> = (0..r).map(|i| win.axis(i, in_sp[i], false)).collect::<Result<_, _>>()?;
        let out_sp: Vec<usize> = axes.iter().map(|a| a.out).collect();
        let begin: Vec<isize> = axes.iter().map(|a| a.pad_begin as isize).collect();
        let bias = check_bias(inputs.get(2).copied().flatten(), c_out)?;
        let xs = contiguous(x);
        if let Some(ww) = &self.winograd {
            // Planned for a 3×3 stride-1 conv with these input channels (checked above).
            let (pt, pl) = (axes[0].pad_begin, axes[1].pad_begin);
            let epi = self.epilogue.as_deref();
            return run_into_output(batch, c_out, &out_sp, |out| {
                winograd::conv3x3(&xs, batch, ww, bias, (in_sp[0], in_sp[1]), (out_sp[0], out_sp[1]), (pt, pl), out, epi)
            });
        }
        let g = geometry(in_sp, &out_sp, &win.kernel, &win.strides, &win.dilations, &begin);
        let packed = self.packed.as_deref().filter(|_| self.weights.is_some()).map(|p| p.as_slice());
        let epi = self.epilogue.as_deref();
        run_into_output(batch, c_out, &out_sp, |out| conv_f32(&xs, batch, c_in, w, c_out, a.group, bias, &g, out, packed, epi))
    }

    fn with_epilogue(&self, epilogue: Arc<Epilogue>, quantizer: Option<Quantizer>) -> Option<Box<dyn Op>> {
        quantizer.is_none().then(|| -> Box<dyn Op> {
            Box::new(Conv {
                attrs: self.attrs.clone(),
                weights: self.weights.clone(),
                packed: self.packed.clone(),
                winograd: self.winograd.clone(),
                epilogue: Some(epilogue),
            })
        })
    }

    fn reads_input(&self, i: usize) -> bool {
        i != 1 || self.weights.is_none()
    }
}

// ---------------------------------------------------------------------------------------
// ConvTranspose

/// ConvTranspose attributes, shared by the float op and the int8 layer of deploy models.
#[derive(Debug, Clone)]
pub(super) struct TransposeAttrs {
    attrs: ConvAttrs,
    output: TransposeOutput,
}

/// Geometry of one ConvTranspose call, resolved from the attributes and the actual shapes.
#[derive(Debug, Clone)]
pub(super) struct TransposePlan {
    pub out: Vec<usize>,
    /// Pads removed at the start of each output axis (negative: output_shape grows it).
    pub pad_begin: Vec<isize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
}

impl TransposeAttrs {
    pub(super) fn parse(ctx: &BuildContext) -> OpResult<Self> {
        Ok(TransposeAttrs { attrs: ConvAttrs::parse(ctx)?, output: TransposeOutput::read(ctx.node)? })
    }

    pub(super) fn group(&self) -> usize {
        self.attrs.group
    }

    /// Plan-time checks of a constant weight (C_in × C_out/group × kernel).
    pub(super) fn check_weight(&self, shape: &[usize]) -> OpResult<()> {
        if shape.len() < 3 {
            return Err(op_err!("input 1 (weights) has shape {shape:?}, expected C_in x C_out/group x k1 [x k2 [x k3]]"));
        }
        if !shape[0].is_multiple_of(self.attrs.group) {
            return Err(op_err!("input 1 (weights) has {} input channels, not divisible by group {}", shape[0], self.attrs.group));
        }
        self.attrs.window(shape).map(|_| ())
    }

    /// Checks input 0's shape against the weight's and resolves the output geometry.
    pub(super) fn plan(&self, x_shape: &[usize], w_shape: &[usize]) -> OpResult<TransposePlan> {
        check_ranks(x_shape, w_shape, "ConvTranspose")?;
        let c_in = x_shape[1];
        if w_shape[0] != c_in {
            return Err(op_err!("input 1 (weights) has shape {w_shape:?}: dimension 0 should equal input 0's channels {c_in}"));
        }
        let win = self.attrs.window(w_shape)?;
        let axes = self.output.output(&win, &x_shape[2..])?;
        Ok(TransposePlan {
            out: axes.iter().map(|a| a.out).collect(),
            pad_begin: axes.iter().map(|a| a.pad_begin).collect(),
            kernel: win.kernel,
            strides: win.strides,
            dilations: win.dilations,
        })
    }
}

#[derive(Debug)]
struct ConvTranspose {
    attrs: TransposeAttrs,
    /// Constant weights packed at plan time: (original shape, packed per group).
    packed: Option<Arc<(Vec<usize>, Vec<f32>)>>,
    /// Element-wise ops fused after the conv at plan time.
    epilogue: Option<Arc<Epilogue>>,
}

fn build_conv_transpose(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    if super::int8::is_int8_layer(ctx) {
        return super::int8::build_conv_transpose(ctx);
    }
    let attrs = TransposeAttrs::parse(ctx)?;
    let packed = match ctx.constant(1) {
        Some(Tensor::F32(w)) => {
            let shape = w.shape().to_vec();
            attrs.check_weight(&shape)?;
            let kl: usize = shape[2..].iter().product();
            let packed = pack_transpose_weights(&contiguous(w), shape[0], shape[1], kl, attrs.group());
            Some(Arc::new((shape, packed)))
        }
        _ => None,
    };
    Ok(Box::new(ConvTranspose { attrs, packed, epilogue: None }))
}

impl Op for ConvTranspose {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = f32_input(inputs, 0, "X")?;
        let group = self.attrs.group();
        let runtime_packed;
        let (w_shape, packed): (&[usize], &[f32]) = match self.packed.as_deref() {
            Some((s, p)) => (s, p),
            None => {
                let wa = f32_input(inputs, 1, "W")?;
                let ws = wa.shape();
                check_ranks(x.shape(), ws, "ConvTranspose")?;
                self.attrs.check_weight(ws)?;
                let kl: usize = ws[2..].iter().product();
                runtime_packed = pack_transpose_weights(&contiguous(wa), ws[0], ws[1], kl, group);
                (ws, &runtime_packed)
            }
        };
        let p = self.attrs.plan(x.shape(), w_shape)?;
        let (batch, c_in) = (x.shape()[0], x.shape()[1]);
        let c_out = w_shape[1] * group;
        let bias = check_bias(inputs.get(2).copied().flatten(), c_out)?;
        let g = geometry(&x.shape()[2..], &p.out, &p.kernel, &p.strides, &p.dilations, &p.pad_begin);
        let xs = contiguous(x);
        let epi = self.epilogue.as_deref();
        run_into_output(batch, c_out, &p.out, |out| conv_transpose_f32(&xs, batch, c_in, packed, c_out, group, bias, &g, out, epi))
    }

    fn with_epilogue(&self, epilogue: Arc<Epilogue>, quantizer: Option<Quantizer>) -> Option<Box<dyn Op>> {
        quantizer.is_none().then(|| -> Box<dyn Op> {
            Box::new(ConvTranspose { attrs: self.attrs.clone(), packed: self.packed.clone(), epilogue: Some(epilogue) })
        })
    }

    fn reads_input(&self, i: usize) -> bool {
        i != 1 || self.packed.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::registry::test_support::build;
    use crate::onnx::proto::AttributeProto;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use ndarray::{ArrayD, IxDyn};

    fn f32t(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), v).unwrap())
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.to_vec(), ..Default::default() }
    }

    #[test]
    fn conv_3x3_with_padding_by_hand() {
        // 1×1×3×3 input 1..9, all-ones 3×3 kernel, pads 1: each output is the sum of the
        // input's 3×3 neighbourhood, e.g. corner (0,0) = 1+2+4+5 = 12, centre = 45.
        let w = f32t(&[1, 1, 3, 3], vec![1.0; 9]);
        let op = build(build_conv, "Conv", vec![ints("pads", &[1, 1, 1, 1])], vec![None, Some(w)], 13).unwrap();
        let x = f32t(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let y = op.run(&[Some(&x), None]).unwrap();
        assert_eq!(y[0].shape(), &[1, 1, 3, 3]);
        assert_eq!(y[0].to_f64_vec(), vec![12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
    }

    #[test]
    fn subnormal_constant_weights_are_signed_zeros() {
        // Pointwise (panel kernel) and depthwise: a constant weight below f32::MIN_POSITIVE
        // counts as a zero of its sign; the same weights given at run time are not flushed.
        let tiny = 1e-40f32;
        assert!(tiny.is_subnormal());
        let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (group, w_shape, w) in [(1, [2, 2, 1, 1], vec![tiny, 1.0, -tiny, 2.0]), (2, [2, 1, 1, 1], vec![tiny, -tiny])] {
            let w = f32t(&w_shape, w);
            let x = f32t(&[1, 2, 1, 1], if group == 1 { vec![1e30, 0.0] } else { vec![1e30, 1e30] });
            let attrs = || {
                vec![AttributeProto {
                    name: Some("group".into()),
                    r#type: Some(AttributeType::Int as i32),
                    i: Some(group),
                    ..Default::default()
                }]
            };
            let constant = build(build_conv, "Conv", attrs(), vec![None, Some(w.clone())], 13).unwrap();
            let y = constant.run(&[Some(&x), None]).unwrap();
            // The sums start from +0, so (±0)·1e30 gives +0 either way.
            assert_eq!(bits(&y[0]), vec![0; 2], "group {group}");
            let runtime = build(build_conv, "Conv", attrs(), vec![None, None], 13).unwrap();
            let y = runtime.run(&[Some(&x), Some(&w)]).unwrap();
            assert_eq!(y[0].to_f64_vec(), vec![(tiny * 1e30) as f64, (-tiny * 1e30) as f64], "group {group}");
        }
    }

    #[test]
    fn channel_mismatch_and_bad_attributes_are_errors() {
        let w = f32t(&[2, 3, 1, 1], vec![1.0; 6]);
        let op = build(build_conv, "Conv", vec![], vec![None, Some(w.clone())], 13).unwrap();
        let x = f32t(&[1, 2, 4, 4], vec![0.0; 32]);
        let e = op.run(&[Some(&x), None]).unwrap_err().0;
        assert!(e.contains("input"), "{e}");
        let e = build(build_conv, "Conv", vec![ints("strides", &[0, 1])], vec![None, Some(w)], 13).unwrap_err().0;
        assert!(e.contains("'strides'") && e.contains(">= 1"), "{e}");
    }

    #[test]
    fn int8_weights_select_the_exact_integer_layer() {
        // int8 weight + int32 bias: the integer path, producing int32 accumulators.
        let w = Tensor::I8(ArrayD::from_shape_vec(IxDyn(&[1, 1, 1, 1]), vec![3]).unwrap());
        let b = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1]), vec![10]).unwrap());
        let op = build(build_conv, "Conv", vec![], vec![None, Some(w.clone()), Some(b)], 13).unwrap();
        let x = Tensor::I8(ArrayD::from_shape_vec(IxDyn(&[1, 1, 1, 2]), vec![-2, 5]).unwrap());
        let y = op.run(&[Some(&x), None, None]).unwrap();
        assert_eq!(y[0].to_i64_vec().unwrap(), vec![4, 25]);
        // A float bias in an int8 layer is a model error, not a silent conversion.
        let fb = f32t(&[1], vec![1.0]);
        let e = build(build_conv, "Conv", vec![], vec![None, Some(w), Some(fb)], 13).unwrap_err().0;
        assert!(e.contains("int32"), "{e}");
    }
}

//! Plan-time fusion of element-wise tails into the float convolutions they follow
//! ([`crate::engine::kernels::epilogue`]): BatchNormalization, constant scales and shifts,
//! Relu / LeakyRelu / Clip / Sigmoid / HardSigmoid / HardSwish, and gates `x · f(x)` whose
//! `f` is such a chain (SiLU as Sigmoid→Mul, HardSwish as Add→Clip→Div→Mul).
//!
//! An int8 conv of a deploy model (int8 constant weight, int32 accumulators) fuses behind its
//! AscendDequant: the accumulators converted and scaled as that op does, then the tail, and
//! an AscendQuant when it is the tail's only reader (the fused op then writes int8).
//!
//! A tail is absorbed only when the conv's output (and every value inside the tail) has no
//! reader outside it and is not a graph output, and every absorbed op keeps the conv's
//! output shape. The fused stages compute exactly what the ops did, so outputs are
//! bit-for-bit those of the unfused plan; the session keeps the unfused plan for runs that
//! observe a value the fusion hides, or that round every op's output to fp16.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::kernels::epilogue::{BinOp, Epilogue, Stage};
use super::ops::norm::batchnorm_coeffs;
use super::ops::quant::Quantizer;
use super::registry::Op;
use super::tensor::Tensor;
use crate::onnx::{NodeExt, NodeProto};

/// What the fusion needs to know about one planned step.
pub(super) struct StepView<'a> {
    pub node: &'a NodeProto,
    pub op: &'a dyn Op,
    /// Opset of the node's domain.
    pub opset: i64,
    pub inputs: &'a [Option<usize>],
    pub outputs: &'a [usize],
}

/// One fusion found: step `conv` followed by `absorbed` becomes one op writing `output`.
/// With `head_input`, `conv` is not a convolution but an element-wise op of that value with
/// a scalar constant (the fake-quant chain Mul→Round→Add→Clip→Sub): its own operation is
/// the epilogue's first stage, and the fused op reads only `head_input`.
pub(super) struct Fusion {
    pub conv: usize,
    pub head_input: Option<usize>,
    pub absorbed: Vec<usize>,
    pub output: usize,
    pub epilogue: Epilogue,
    /// An int8 conv's chain ending in an AscendQuant (absorbed too): the fused op writes int8.
    pub quantizer: Option<Quantizer>,
    /// Values the fused plan never materializes.
    pub hidden: Vec<usize>,
}

/// Finds the fusable tails. `constant(id)` is a value's plan-time constant, `shape(id)` its
/// inferred static shape, `keep` the graph outputs.
pub(super) fn find_fusions(
    steps: &[StepView],
    constant: &dyn Fn(usize) -> Option<Arc<Tensor>>,
    shape: &dyn Fn(usize) -> Option<Vec<usize>>,
    keep: &HashSet<usize>,
) -> Vec<Fusion> {
    let mut consumers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        let mut seen = HashSet::new();
        for &id in s.inputs.iter().flatten() {
            if seen.insert(id) {
                consumers.entry(id).or_default().push(i);
            }
        }
    }
    let readers = |id: usize| consumers.get(&id).map_or(&[][..], |v| v.as_slice());
    let mut taken = vec![false; steps.len()];
    let mut fusions = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let domain = s.node.domain();
        let conv_head = matches!(s.node.op_type(), "Conv" | "ConvTranspose");
        let scalar_head = matches!(s.node.op_type(), "Mul" | "Div" | "Add" | "Sub");
        if !(domain.is_empty() || domain == "ai.onnx") || !(conv_head || scalar_head) || s.outputs.len() != 1 || taken[i] {
            continue;
        }
        let first = s.outputs[0];
        let Some(out_shape) = shape(first).filter(|sh| sh.len() >= 3) else { continue };
        let ctx = Ctx { steps, constant, shape, out_shape: &out_shape };
        // An element-wise head: its stage on the one input that is not a constant, that input
        // of the output's shape (not broadcast) and the constant a scalar.
        let head = if scalar_head {
            let Some(x) = s.inputs.iter().flatten().copied().find(|&id| constant(id).is_none()) else { continue };
            match ctx.stage(i, x) {
                Some(st @ Stage::Bin { .. }) if shape(x).as_deref() == Some(&out_shape[..]) && st.is_scalar() => Some((x, st)),
                _ => continue,
            }
        } else {
            None
        };
        let mut stages = Vec::new();
        let mut absorbed = Vec::new();
        let mut hidden = Vec::new();
        let mut t = first;
        // An int8 conv (int8 constant weight, int32 accumulators) fuses only behind its
        // AscendDequant: the accumulators converted and scaled as that op does, then the tail.
        let int8_head = conv_head && s.inputs.get(1).copied().flatten().and_then(constant).is_some_and(|w| matches!(*w, Tensor::I8(_)));
        if int8_head {
            let dequant = match readers(first) {
                [one] if !taken[*one] && !keep.contains(&first) => *one,
                _ => continue,
            };
            let Some(scale) = ctx.dequant_stage(dequant, first) else { continue };
            stages.extend([Stage::IntToFloat, scale]);
            absorbed.push(dequant);
            hidden.push(first);
            t = steps[dequant].outputs[0];
        }
        loop {
            if keep.contains(&t) {
                break;
            }
            match readers(t) {
                [one] if !taken[*one] => {
                    let Some(st) = ctx.stage(*one, t) else { break };
                    stages.push(st);
                    absorbed.push(*one);
                    hidden.push(t);
                    t = steps[*one].outputs[0];
                }
                [a, b] if !taken[*a] && !taken[*b] => {
                    // A gate x · f(x): one reader starts the chain f, the other is the Mul.
                    let gate = ctx.gate(t, *a, *b, &readers, keep, &taken).or_else(|| ctx.gate(t, *b, *a, &readers, keep, &taken));
                    let Some((chain, chain_stages, mul)) = gate else { break };
                    stages.push(Stage::Save);
                    stages.extend(chain_stages);
                    stages.push(Stage::MulSaved);
                    hidden.push(t);
                    for &c in &chain {
                        hidden.push(steps[c].outputs[0]);
                    }
                    absorbed.extend(chain);
                    absorbed.push(mul);
                    t = steps[mul].outputs[0];
                }
                _ => break,
            }
        }
        if stages.is_empty() {
            continue;
        }
        // An int8 conv's chain read only by an AscendQuant (the next int8 layer's input)
        // quantizes as it finishes: the float values are never written out.
        let mut quantizer = None;
        if int8_head
            && !keep.contains(&t)
            && let [one] = readers(t)
            && !taken[*one]
            && steps[*one].inputs.first() == Some(&Some(t))
            && steps[*one].outputs.len() == 1
            && shape(steps[*one].outputs[0]).as_deref() == Some(&out_shape[..])
            && let Some(q) = steps[*one].op.int8_quantizer()
        {
            quantizer = Some(q);
            absorbed.push(*one);
            hidden.push(t);
            t = steps[*one].outputs[0];
        }
        for &a in &absorbed {
            taken[a] = true;
        }
        taken[i] = true;
        let head_input = head.map(|(x, st)| {
            stages.insert(0, st);
            x
        });
        fusions.push(Fusion { conv: i, head_input, absorbed, output: t, epilogue: Epilogue { stages }.fuse_gates(), quantizer, hidden });
    }
    fusions
}

struct Ctx<'a, 'b> {
    steps: &'a [StepView<'b>],
    constant: &'a dyn Fn(usize) -> Option<Arc<Tensor>>,
    shape: &'a dyn Fn(usize) -> Option<Vec<usize>>,
    out_shape: &'a [usize],
}

impl Ctx<'_, '_> {
    /// The stage step `i` computes on value `t`, if it is a fusable element-wise op of `t`
    /// (and constants only) with one output of the conv's shape.
    fn stage(&self, i: usize, t: usize) -> Option<Stage> {
        let s = &self.steps[i];
        let node = s.node;
        let domain = node.domain();
        if !(domain.is_empty() || domain == "ai.onnx")
            || s.outputs.len() != 1
            || (self.shape)(s.outputs[0]).as_deref() != Some(self.out_shape)
        {
            return None;
        }
        let only_t = s.inputs.first() == Some(&Some(t));
        let c = self.out_shape[1];
        match node.op_type() {
            "Relu" if only_t && s.inputs.len() == 1 => Some(Stage::Relu),
            "Round" if only_t && s.inputs.len() == 1 && s.opset >= 11 => Some(Stage::Round),
            "LeakyRelu" if only_t && s.inputs.len() == 1 => Some(Stage::LeakyRelu(node.attr_f("alpha", 0.01).ok()?)),
            "Sigmoid" if only_t && s.inputs.len() == 1 => Some(Stage::Sigmoid),
            "HardSigmoid" if only_t && s.inputs.len() == 1 => {
                Some(Stage::HardSigmoid(node.attr_f("alpha", 0.2).ok()?, node.attr_f("beta", 0.5).ok()?))
            }
            "HardSwish" if only_t && s.inputs.len() == 1 => Some(Stage::HardSwish),
            "Clip" if only_t => {
                if s.opset < 11 {
                    return Some(Stage::Clip(
                        Some(node.attr_f("min", f32::NEG_INFINITY).ok()?),
                        Some(node.attr_f("max", f32::INFINITY).ok()?),
                    ));
                }
                let bound = |k: usize| -> Option<Option<f32>> {
                    match s.inputs.get(k).copied().flatten() {
                        None => Some(None),
                        Some(id) => match (self.constant)(id)?.as_ref() {
                            Tensor::F32(a) if a.len() == 1 => Some(a.iter().next().copied()),
                            _ => None,
                        },
                    }
                };
                Some(Stage::Clip(bound(1)?, bound(2)?))
            }
            "BatchNormalization" if only_t && s.inputs.len() == 5 => {
                if s.opset >= 14 && node.attr_i("training_mode", 0).ok()? != 0 {
                    return None;
                }
                let mut p: [Vec<f64>; 4] = Default::default();
                for (k, v) in p.iter_mut().enumerate() {
                    let t = (self.constant)(s.inputs[k + 1]?)?;
                    if !matches!(t.as_ref(), Tensor::F32(_) | Tensor::F64(_) | Tensor::F16(_)) || t.len() != c {
                        return None;
                    }
                    *v = t.to_f64_vec();
                }
                let (a, b) = batchnorm_coeffs::<f32>(&p, node.attr_f("epsilon", 1e-5).ok()?);
                Some(Stage::Affine { a, b })
            }
            op @ ("Add" | "Sub" | "Mul" | "Div") if s.opset >= 7 && s.inputs.len() == 2 => {
                let op = match op {
                    "Add" => BinOp::Add,
                    "Sub" => BinOp::Sub,
                    "Mul" => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let (const_first, other) = match (s.inputs[0], s.inputs[1]) {
                    (Some(a), Some(b)) if a == t && b != t => (false, b),
                    (Some(a), Some(b)) if b == t && a != t => (true, a),
                    _ => return None,
                };
                let k = (self.constant)(other)?;
                let Tensor::F32(k) = k.as_ref() else { return None };
                // Broadcast against N×C×spatial without growing it: one value, or one per
                // channel (the constant's axis aligned with axis 1 is C, every other one is 1).
                let (r, kr) = (self.out_shape.len(), k.ndim());
                if kr > r {
                    return None;
                }
                let per_channel = k.len() == c && c > 1;
                let aligned_ok = k.shape().iter().enumerate().all(|(ax, &d)| d == 1 || (per_channel && ax + r - kr == 1 && d == c));
                if !(aligned_ok && (k.len() == 1 || per_channel)) {
                    return None;
                }
                Some(Stage::Bin { op, k: k.iter().copied().collect(), const_first })
            }
            _ => None,
        }
    }

    /// The scaling stage of step `i` if it is an AscendDequant of `t` alone that multiplies by
    /// its constant scales (float32 output, no shift, ReLU or sqrt mode), one per channel or
    /// one for all: `acc as f32 · scale`, [`Stage::Bin`]'s multiply of the converted value.
    fn dequant_stage(&self, i: usize, t: usize) -> Option<Stage> {
        let s = &self.steps[i];
        let node = s.node;
        if node.op_type() != "AscendDequant"
            || !node.domain().is_empty()
            || s.outputs.len() != 1
            || s.inputs.first() != Some(&Some(t))
            || (self.shape)(s.outputs[0]).as_deref() != Some(self.out_shape)
        {
            return None;
        }
        if node.attr_i("sqrt_mode", 0).ok()? != 0 || node.attr_i("relu_flag", 0).ok()? != 0 || node.attr_i("dtype", 0).ok()? != 0 {
            return None;
        }
        let param = super::ops::quant::unpack_deq_param((self.constant)(s.inputs.get(1).copied().flatten()?)?.as_ref()).ok()?;
        let c = self.out_shape[1];
        if param.shift.iter().any(|&n| n != 0) || !(param.scale.len() == 1 || param.scale.len() == c) {
            return None;
        }
        Some(Stage::Bin { op: BinOp::Mul, k: param.scale, const_first: false })
    }

    /// A gate on `t`: the chain of fusable single-reader steps from `start` ending at the other
    /// input of `mul`, a Mul of `t` and that chain's result. Returns (chain steps, their
    /// stages, mul).
    #[allow(clippy::type_complexity)]
    fn gate<'r>(
        &self,
        t: usize,
        start: usize,
        mul: usize,
        readers: &dyn Fn(usize) -> &'r [usize],
        keep: &HashSet<usize>,
        taken: &[bool],
    ) -> Option<(Vec<usize>, Vec<Stage>, usize)> {
        let m = &self.steps[mul];
        if m.node.op_type() != "Mul" || m.inputs.len() != 2 || m.outputs.len() != 1 || m.opset < 7 {
            return None;
        }
        let domain = m.node.domain();
        if !(domain.is_empty() || domain == "ai.onnx") || (self.shape)(m.outputs[0]).as_deref() != Some(self.out_shape) {
            return None;
        }
        let other = match (m.inputs[0], m.inputs[1]) {
            (Some(a), Some(b)) if a == t && b != t => b,
            (Some(a), Some(b)) if b == t && a != t => a,
            _ => return None,
        };
        let (mut chain, mut stages) = (Vec::new(), Vec::new());
        let (mut cur, mut step) = (t, start);
        loop {
            if taken[step] || chain.len() > 8 {
                return None;
            }
            stages.push(self.stage(step, cur)?);
            chain.push(step);
            cur = self.steps[step].outputs[0];
            if keep.contains(&cur) {
                return None;
            }
            match readers(cur) {
                [only] if *only == mul && cur == other => return Some((chain, stages, mul)),
                [only] if *only != mul => step = *only,
                _ => return None,
            }
        }
    }
}

/// A fused element-wise chain led by an element-wise op ([`Fusion::head_input`]):
/// the input, with every stage applied (per N·C channel run, two threads on big tensors).
#[derive(Debug)]
pub(super) struct ElementwiseChain {
    epilogue: Arc<Epilogue>,
}

impl ElementwiseChain {
    pub(super) fn new(epilogue: Epilogue) -> Self {
        ElementwiseChain { epilogue: Arc::new(epilogue) }
    }
}

impl Op for ElementwiseChain {
    fn run(&self, inputs: &[Option<&Tensor>]) -> super::error::OpResult<Vec<Tensor>> {
        use rayon::prelude::*;
        let x = super::registry::input_f32(inputs, 0)?;
        let shape = x.shape().to_vec();
        let (channels, run) = (shape.get(1).copied().unwrap_or(1).max(1), shape.iter().skip(2).product::<usize>().max(1));
        let src = x.as_standard_layout();
        let src = src.as_slice().expect("standard layout");
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(run).zip(src.par_chunks(run)).enumerate().with_min_len((1 << 14) / run + 1).for_each(|(i, (dst, s))| {
            dst.copy_from_slice(s);
            self.epilogue.apply(i % channels, dst);
        });
        let out = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), out)
            .map_err(|e| super::error::OpError(format!("internal shape error: {e}")))?;
        Ok(vec![Tensor::F32(out)])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use ndarray::{ArrayD, IxDyn};

    use crate::engine::{Session, Tensor};
    use crate::onnx::build::{attr_float, attr_ints, constant_node, float_value_info, node};
    use crate::onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto};
    use crate::onnx::tensor::{Tensor as OnnxTensor, TensorData};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 8.0
            })
            .collect()
    }

    fn konst(name: &str, dims: &[i64], v: Vec<f32>) -> crate::onnx::NodeProto {
        constant_node(name, name, &OnnxTensor::new(dims.to_vec(), TensorData::F32(v)))
    }

    /// x → Conv → BN → HardSwish as Add→Clip→Div→Mul → Conv(depthwise) → Mul·Add per channel
    /// → SiLU (Sigmoid, Mul) → Conv → HardSigmoid → Relu, plus a second reader of one
    /// intermediate (which must stop the fusion there).
    fn model() -> ModelProto {
        let c = 4i64;
        let nodes = vec![
            konst("w1", &[c, 3, 3, 3], values(4 * 27, 1)),
            konst("b1", &[c], values(4, 2)),
            konst("scale", &[c], values(4, 3)),
            konst("bias", &[c], values(4, 4)),
            konst("mean", &[c], values(4, 5)),
            konst("var", &[c], values(4, 6).iter().map(|v| v.abs() + 0.1).collect()),
            konst("three", &[], vec![3.0]),
            konst("zero", &[], vec![0.0]),
            konst("six", &[], vec![6.0]),
            konst("w2", &[c, 1, 3, 3], values(4 * 9, 7)),
            konst("k", &[1, c, 1, 1], values(4, 8)),
            konst("m", &[1, c, 1, 1], values(4, 9)),
            konst("w3", &[c, c, 1, 1], values(16, 10)),
            node("Conv", "conv1", &["x", "w1", "b1"], &["c1"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("BatchNormalization", "bn", &["c1", "scale", "bias", "mean", "var"], &["bn"], vec![attr_float("epsilon", 1e-3)]),
            node("Add", "hs_add", &["bn", "three"], &["hs_a"], vec![]),
            node("Clip", "hs_clip", &["hs_a", "zero", "six"], &["hs_c"], vec![]),
            node("Div", "hs_div", &["hs_c", "six"], &["hs_d"], vec![]),
            node("Mul", "hs_mul", &["bn", "hs_d"], &["hs"], vec![]),
            node("Conv", "conv2", &["hs", "w2"], &["c2"], vec![attr_ints("pads", &[1, 1, 1, 1]), crate::onnx::build::attr_int("group", c)]),
            node("Mul", "scale2", &["c2", "k"], &["s2"], vec![]),
            node("Add", "shift2", &["m", "s2"], &["a2"], vec![]),
            node("Sigmoid", "sig", &["a2"], &["sg"], vec![]),
            node("Mul", "silu", &["sg", "a2"], &["silu"], vec![]),
            node("Conv", "conv3", &["silu", "w3"], &["c3"], vec![]),
            node("HardSigmoid", "hsig", &["c3"], &["h3"], vec![attr_float("alpha", 0.3)]),
            node("Relu", "relu", &["h3"], &["r3"], vec![]),
            node("Add", "join", &["r3", "c3"], &["y"], vec![]),
        ];
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: nodes,
                input: vec![float_value_info("x", &[1, 3, 9, 11])],
                output: vec![float_value_info("y", &[1, c, 9, 11])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn fused_plan_is_bit_exact_and_observation_falls_back() {
        let session = Session::new(&model(), &HashMap::new()).unwrap();
        // conv1 absorbs BN and the HardSwish, conv2 the affine and SiLU; conv3 nothing (its
        // output has a second reader, so HardSigmoid→Relu stay separate ops).
        assert_eq!(session.step_count(), 15);
        assert_eq!(session.fused_step_count(), 6);
        let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 3, 9, 11]), values(3 * 99, 11)).unwrap());
        let inputs = || HashMap::from([("x".to_string(), x.clone())]);
        let fused = session.run(inputs()).unwrap();
        let plain = session.run_unfused(inputs()).unwrap();
        let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused[0].1), bits(&plain[0].1));
        // HardSwish outputs are not all clipped: the test exercises both sides of the Clip.
        let observe: HashSet<String> = ["hs_d".to_string()].into();
        let mut seen = Vec::new();
        let observed = session.run_observed(inputs(), &observe, &mut |_, t| seen.extend(t.as_f32().unwrap().iter().copied())).unwrap();
        assert!(seen.iter().any(|&v| v > 0.0 && v < 1.0) && seen.contains(&0.0), "{seen:?}");
        assert_eq!(bits(&observed[0].1), bits(&plain[0].1));
    }

    /// A fake-quant chain on a value that is not a conv output (a graph input with another
    /// reader): Mul(scale, x)→Round→Add→Clip→Sub becomes one op reading x, bit-exact,
    /// rounding ties and clipped values included.
    #[test]
    fn fake_quant_chain_fuses_behind_an_elementwise_head() {
        let nodes = vec![
            konst("scale", &[], vec![4.0]),
            konst("offset", &[], vec![-3.0]),
            konst("lo", &[], vec![-128.0]),
            konst("hi", &[], vec![127.0]),
            node("Mul", "fq_mul", &["scale", "x"], &["m"], vec![]),
            node("Round", "fq_round", &["m"], &["r"], vec![]),
            node("Add", "fq_add", &["r", "offset"], &["a"], vec![]),
            node("Clip", "fq_clip", &["a", "lo", "hi"], &["c"], vec![]),
            node("Sub", "fq_sub", &["c", "offset"], &["q"], vec![]),
            node("Add", "other_reader", &["q", "x"], &["y"], vec![]),
        ];
        let model = ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: nodes,
                input: vec![float_value_info("x", &[2, 3, 5, 7])],
                output: vec![float_value_info("y", &[2, 3, 5, 7])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let session = Session::new(&model, &HashMap::new()).unwrap();
        assert_eq!(session.step_count(), 6);
        assert_eq!(session.fused_step_count(), 2);
        // x·4 lands on ties (k + 0.5) for x = k/4 + 1/8, and beyond the int8 range.
        let mut v: Vec<f32> = (0..210).map(|i| (i as f32 - 105.0) / 4.0 + 0.125).collect();
        v[0] = 100.0;
        v[1] = -100.0;
        v[2] = f32::NAN;
        let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[2, 3, 5, 7]), v).unwrap());
        let inputs = || HashMap::from([("x".to_string(), x.clone())]);
        let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let fused = session.run(inputs()).unwrap();
        let plain = session.run_unfused(inputs()).unwrap();
        assert_eq!(bits(&fused[0].1), bits(&plain[0].1));
        let y = plain[0].1.as_f32().unwrap();
        assert_eq!((y[[0, 0, 0, 0]], y[[0, 0, 0, 1]]), (230.0, -225.0), "clipped to 127 − (−3) and −128 − (−3), plus x");
    }
}

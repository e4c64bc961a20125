//! Per-channel range equalization of depthwise-convolution inputs (cross-layer equalization,
//! Nagel et al. 2019, data-aware variant). An exact float rewrite done before calibration.
//!
//! Why: AscendQuant has one scale per tensor (docs/ascend-formats.md §2.2), so the input of a depthwise conv whose
//! channels span very different ranges loses the small channels to the step of the largest
//! one; the depthwise weights (up to |w| ≈ 15 on PP-OCRv4 det's `p2o.Conv.1`) then amplify that
//! noise. Quantized alone, that single layer cost det's output 12 dB of SQNR.
//!
//! What: for a tensor T read only by depthwise convs (group = channels, weight `[C, 1, k…]`),
//! multiply channel c of T by `k_c = R / a_c` (a_c its absolute max over the calibration data,
//! R the largest a_c; k_c ≤ [`MAX_GAIN`]) and divide the depthwise weights of channel c by k_c.
//! Both are exact in float: per-channel weight quantization absorbs the weight change, and
//! the multiplication is folded into T's producer chain — a Conv (weights and bias of output
//! channel c), or a Mul by a constant (the constant becomes per-channel), through any Adds of a
//! constant (scaled too). Anything else (an activation function, a second consumer) stops the
//! rewrite for that tensor. The deploy format is unchanged; the float model computes the same
//! values up to float rounding.

use std::collections::HashMap;

use super::consts::{constant, constant_f32, replace_constant};
use super::error::{QuantError, Result};
use crate::onnx::proto::GraphProto;
use crate::onnx::{Graph, NodeExt, Tensor, TensorData, node_label};

/// Upper bound of k_c: channels that are (nearly) dead are not blown up.
pub const MAX_GAIN: f32 = 64.0;

/// How the scaling of T reaches back to its producers.
#[derive(Debug, Clone, PartialEq)]
enum Absorber {
    /// Scale output channel c of this Conv's weight (and bias).
    Conv { node: usize },
    /// Scale this node's constant input `input` per channel (Mul: and stop; Add: keep going).
    Constant { node: usize, input: usize },
}

/// One tensor that can be equalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub tensor: String,
    pub channels: usize,
    /// The depthwise convs reading it.
    consumers: Vec<usize>,
    chain: Vec<Absorber>,
}

/// What equalization did to one tensor (for quant.json).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Equalized {
    pub tensor: String,
    pub depthwise_convs: Vec<String>,
    /// The Conv whose output channels absorbed the gains (None: a Mul by a constant did).
    pub producer_conv: Option<String>,
    pub max_gain: f32,
    /// k_c per channel: T's channel c was multiplied by it, the depthwise weights divided.
    pub gains: Vec<f32>,
}

fn depthwise_channels(graph: &GraphProto, node: usize) -> Option<usize> {
    let n = &graph.node[node];
    if n.op_type() != "Conv" {
        return None;
    }
    let w = constant(graph, n.input.get(1)?)?;
    let group = n.attr_i("group", 1).ok()? as usize;
    (w.dims.len() == 4 && w.dims[1] == 1 && w.dims[0] as usize == group && group > 1).then_some(group)
}

/// The tensors feeding only depthwise convs whose producer chain can absorb a per-channel scale.
pub fn find_candidates(graph: &GraphProto) -> Vec<Candidate> {
    let Ok(view) = Graph::new(graph) else { return Vec::new() };
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for (i, _) in graph.node.iter().enumerate() {
        let Some(channels) = depthwise_channels(graph, i) else { continue };
        let t = &graph.node[i].input[0];
        if !seen.insert(t.clone()) || outputs.contains(&t.as_str()) {
            continue;
        }
        let consumers: Vec<usize> = view.consumers(t).iter().map(|&(n, _)| n).collect();
        if !consumers.iter().all(|&c| depthwise_channels(graph, c) == Some(channels) && graph.node[c].input[0] == *t) {
            continue;
        }
        if let Some(chain) = absorbers(graph, &view, t, channels, &outputs) {
            found.push(Candidate { tensor: t.clone(), channels, consumers, chain });
        }
    }
    found
}

/// Walks from `t` to the node(s) that can take the scale.
fn absorbers(graph: &GraphProto, view: &Graph, t: &str, channels: usize, outputs: &[&str]) -> Option<Vec<Absorber>> {
    let mut chain = Vec::new();
    let mut tensor = t.to_string();
    loop {
        let p = view.producer(&tensor)?;
        let n = &graph.node[p];
        match n.op_type() {
            "Conv" => {
                let (dims, _) = constant_f32(graph, n.input.get(1)?)?;
                if dims.first().copied() != Some(channels as i64) || view.consumers(&n.input[1]).len() != 1 {
                    return None;
                }
                if let Some(b) = n.input.get(2).filter(|b| !b.is_empty())
                    && (constant_f32(graph, b).is_none() || view.consumers(b).len() != 1)
                {
                    return None;
                }
                chain.push(Absorber::Conv { node: p });
                return Some(chain);
            }
            "Mul" | "Add" if n.input.len() == 2 => {
                let ci = (0..2).find(|&i| per_channel_constant(graph, &n.input[i], channels).is_some())?;
                chain.push(Absorber::Constant { node: p, input: ci });
                if n.op_type() == "Mul" {
                    return Some(chain);
                }
                let other = &n.input[1 - ci];
                if view.consumers(other).len() != 1 || outputs.contains(&other.as_str()) {
                    return None;
                }
                tensor = other.clone();
            }
            _ => return None,
        }
    }
}

/// The values of a float constant that broadcasts per channel on NCHW: a scalar, `[C]`
/// (only when C is also the last axis would that be per-channel, so only scalars or
/// `[1, C, 1, …]` / `[C, 1, …]` shapes are accepted) — returned expanded to C values.
fn per_channel_constant(graph: &GraphProto, name: &str, channels: usize) -> Option<Vec<f32>> {
    let (dims, values) = constant_f32(graph, name)?;
    if values.len() == 1 {
        return Some(vec![values[0]; channels]);
    }
    let non_one: Vec<usize> = dims.iter().enumerate().filter(|(_, d)| **d != 1).map(|(i, _)| i).collect();
    let rank = dims.len();
    // Axis 1 of a rank-4 NCHW broadcast: dims [1, C, 1, 1] or [C, 1, 1].
    let channel_axis_ok = non_one.len() == 1 && dims[non_one[0]] as usize == channels && rank - non_one[0] == 3;
    channel_axis_ok.then_some(values)
}

/// Applies the scale `k` (one per channel) to `c`, in place.
pub fn apply(graph: &mut GraphProto, c: &Candidate, k: &[f32]) -> Result<()> {
    let fail = |what: &str| QuantError::layer(&c.tensor, format!("equalization: {what}"));
    for &dw in &c.consumers {
        let w = graph.node[dw].input[1].clone();
        let (dims, mut values) = constant_f32(graph, &w).ok_or_else(|| fail("depthwise weight is not a float constant"))?;
        let per = values.len() / c.channels;
        values.iter_mut().enumerate().for_each(|(i, v)| *v /= k[i / per]);
        replace_constant(graph, &w, &Tensor::new(dims, TensorData::F32(values)));
    }
    for a in &c.chain {
        match *a {
            Absorber::Conv { node } => {
                let n = graph.node[node].clone();
                let (dims, mut values) = constant_f32(graph, &n.input[1]).ok_or_else(|| fail("producer weight is not a float constant"))?;
                let per = values.len() / c.channels;
                values.iter_mut().enumerate().for_each(|(i, v)| *v *= k[i / per]);
                replace_constant(graph, &n.input[1], &Tensor::new(dims, TensorData::F32(values)));
                if let Some(b) = n.input.get(2).filter(|b| !b.is_empty()) {
                    let (dims, mut values) = constant_f32(graph, b).ok_or_else(|| fail("producer bias is not a float constant"))?;
                    values.iter_mut().zip(k).for_each(|(v, k)| *v *= k);
                    replace_constant(graph, b, &Tensor::new(dims, TensorData::F32(values)));
                }
            }
            Absorber::Constant { node, input } => {
                let name = graph.node[node].input[input].clone();
                let values = per_channel_constant(graph, &name, c.channels).ok_or_else(|| fail("constant changed"))?;
                let scaled: Vec<f32> = values.iter().zip(k).map(|(v, k)| v * k).collect();
                // A fresh initializer: the original constant may be shared with other nodes.
                let fresh = format!("{}.equalized", name);
                let t = Tensor::new(vec![1, c.channels as i64, 1, 1], TensorData::F32(scaled));
                graph.initializer.push(t.to_proto(&fresh));
                graph.node[node].input[input] = fresh;
            }
        }
    }
    Ok(())
}

/// `k_c = R / a_c`, clamped to [1, MAX_GAIN].
pub fn gains(abs_max: &[f32]) -> Vec<f32> {
    let r = abs_max.iter().copied().fold(0.0f32, f32::max);
    abs_max.iter().map(|&a| if a > 0.0 { (r / a).clamp(1.0, MAX_GAIN) } else { MAX_GAIN }).collect()
}

/// The Conv at the end of the producer chain, if the chain ends in one.
pub fn producer_conv(graph: &GraphProto, c: &Candidate) -> Option<String> {
    c.chain.iter().find_map(|a| match *a {
        Absorber::Conv { node } => Some(node_label(&graph.node[node], node)),
        Absorber::Constant { .. } => None,
    })
}

/// Names of the depthwise convs of a candidate.
pub fn consumer_names(graph: &GraphProto, c: &Candidate) -> Vec<String> {
    c.consumers.iter().map(|&i| node_label(&graph.node[i], i)).collect()
}

/// Per-channel absolute maxima (axis 1) of an NCHW tensor, merged into `acc`.
pub fn merge_abs_max(acc: &mut HashMap<String, Vec<f32>>, name: &str, shape: &[usize], values: &[f32]) {
    if shape.len() < 2 {
        return;
    }
    let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
    let slot = acc.entry(name.to_string()).or_insert_with(|| vec![0.0; c]);
    for (i, chunk) in values.chunks(inner.max(1)).enumerate() {
        let ch = i % c;
        let m = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        slot[ch] = slot[ch].max(m);
    }
}

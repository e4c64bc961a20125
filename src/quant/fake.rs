//! The fake-quant model: the deploy model rewritten with standard ONNX ops only (the
//! "standard-op variant" of docs/ascend-formats.md §6), so that plain ONNX Runtime runs it:
//! - AscendQuant `Q` → `Mul(1/scale_d)` → `Round` → `Add(offset_d)` → `Clip(−128, 127)` →
//!   `Sub(offset_d)`, nodes `Q.fakequant.{mul,round,add,clip,sub}` with Constant nodes
//!   `Q.fakequant.{scale,offset,min_val,max_val}`. The output is in integer units (q − offset_d).
//! - int8 weights and int32 biases of the integer layers become float32 of the same values.
//! - AscendDequant `D` → `Mul(x, deq_scale)` (`D.fakequant.mul`) with the deq_scale of the UINT64
//!   param as a Constant `D.fakequant.deq_scale` shaped `[1, C, 1, 1]` for per-channel 4-D
//!   outputs (`[1, C, 1…]` by rank) and `[1]` when per tensor.
//! - AscendAntiQuant → `Mul(scale)`.
//!
//! Every Mul takes its constant as input 0 (`Mul(scale, x)`; IEEE multiplication commutes, so
//! the values are the same): ONNX Runtime's ConvMulFusion folds a `Conv → Mul(y, const)` into
//! the Conv weights, which turns the exact integer accumulation into rounded float products.
//! On PP-OCRv4 det that moved downstream AscendQuant roundings enough to drop the agreement
//! with the int8 execution from 1 − 1e-13 to cosine 0.96; with the constant first the fusion
//! does not match and ORT agrees with the engine to 1.2e-7.
//!
//! Deriving it from the deploy model (rather than from the float model) makes the two carry
//! the same numbers by construction. ONNX `Round` is ties-to-even like AscendQuant's `rint`;
//! it exists from opset 11, so older models are refused with a clear error.

use std::collections::{HashMap, HashSet};

use super::consts::{constant, replace_constant};
use super::error::{QuantError, Result};
use super::scale::unpack_deq_param;
use crate::onnx::build::{constant_node, node};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};
use crate::onnx::{NodeExt, Tensor, TensorData, default_opset};

const INTEGER_LAYERS: [&str; 5] = ["Conv", "ConvTranspose", "Gemm", "MatMul", "AveragePool"];

pub fn build_fake_quant(deploy: &ModelProto) -> Result<ModelProto> {
    let opset = default_opset(deploy).unwrap_or(1);
    if opset < 11 {
        return Err(QuantError::UnsupportedOpset {
            detail: format!("the fake-quant model needs ONNX Round (opset 11 or later); the model imports opset {opset}"),
        });
    }
    let mut model = deploy.clone();
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    widen_integer_constants(graph)?;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for n in std::mem::take(&mut graph.node) {
        match n.op_type() {
            "AscendQuant" => nodes.extend(fake_quant(&n)?),
            "AscendDequant" => nodes.extend(fake_dequant(graph, &nodes, &n)?),
            "AscendAntiQuant" => {
                let scale = n.attr_f("scale", 1.0)?;
                nodes.extend(mul_by(&n, &format!("{}.fakequant", n.name()), Tensor::new(vec![], TensorData::F32(vec![scale]))));
            }
            _ => nodes.push(n),
        }
    }
    graph.node = nodes;
    // The dequant params are folded into Constant nodes; drop the UINT64 initializers.
    // An IR < 4 style model also lists its initializers as graph inputs: drop those too, or
    // the dropped initializer would become an input the caller must feed.
    let used = super::consts::used_names(graph);
    let dropped: std::collections::HashSet<String> =
        graph.initializer.iter().filter(|t| !used.contains(t.name())).map(|t| t.name().to_string()).collect();
    graph.initializer.retain(|t| !dropped.contains(t.name()));
    graph.input.retain(|i| !dropped.contains(i.name()));
    Ok(model)
}

fn scalar(v: f32) -> Tensor {
    Tensor::new(vec![], TensorData::F32(vec![v]))
}

fn fake_quant(n: &NodeProto) -> Result<Vec<NodeProto>> {
    let (x, y) = io(n)?;
    let p = format!("{}.fakequant", n.name());
    let dst = n.attr_s("dst_type", "INT8")?;
    if dst != "INT8" {
        return Err(QuantError::layer(n.name(), format!("AscendQuant dst_type {dst} is not supported, expected INT8")));
    }
    let (scale, offset) = (n.attr_f("scale", 1.0)?, n.attr_f("offset", 0.0)?);
    let t = |s: &str| format!("{p}.{s}:0");
    Ok(vec![
        constant_node(&format!("{p}.scale"), &t("scale"), &scalar(scale)),
        constant_node(&format!("{p}.offset"), &t("offset"), &scalar(offset)),
        constant_node(&format!("{p}.min_val"), &t("min_val"), &scalar(-128.0)),
        constant_node(&format!("{p}.max_val"), &t("max_val"), &scalar(127.0)),
        node("Mul", &format!("{p}.mul"), &[&t("scale"), &x], &[&t("mul")], vec![]),
        node("Round", &format!("{p}.round"), &[&t("mul")], &[&t("round")], vec![]),
        node("Add", &format!("{p}.add"), &[&t("round"), &t("offset")], &[&t("add")], vec![]),
        node("Clip", &format!("{p}.clip"), &[&t("add"), &t("min_val"), &t("max_val")], &[&t("clip")], vec![]),
        node("Sub", &format!("{p}.sub"), &[&t("clip"), &t("offset")], &[&y], vec![]),
    ])
}

fn fake_dequant(graph: &GraphProto, done: &[NodeProto], n: &NodeProto) -> Result<Vec<NodeProto>> {
    let param_name = n.input.get(1).ok_or_else(|| QuantError::layer(n.name(), "AscendDequant has no deq_scale input"))?;
    let param = constant(graph, param_name)
        .or_else(|| done.iter().find(|c| c.output.first() == Some(param_name)).and_then(|c| c.opt_attr_tensor("value").ok().flatten()))
        .ok_or_else(|| QuantError::layer(n.name(), format!("deq_scale '{param_name}' is not a constant")))?;
    let deq: Vec<f32> = match Tensor::from_proto(param)?.data {
        TensorData::U64(v) => v.into_iter().map(|p| unpack_deq_param(p).0).collect(),
        TensorData::F16(v) => v.into_iter().map(f32::from).collect(),
        TensorData::F32(v) => v,
        other => return Err(QuantError::layer(n.name(), format!("deq_scale is {:?}, expected UINT64", other.data_type()))),
    };
    // A float AveragePool yields window means where the integer one yields window sums.
    let area = pool_area(done, &n.input[0])?;
    let deq: Vec<f32> = deq.into_iter().map(|d| d * area).collect();
    let dims = if deq.len() == 1 {
        vec![1]
    } else {
        let rank = output_rank(graph, done, &n.input[0]).unwrap_or(4);
        let mut d = vec![1i64; rank.max(2)];
        d[1] = deq.len() as i64;
        d
    };
    Ok(mul_by(n, &format!("{}.fakequant", n.name()), Tensor::new(dims, TensorData::F32(deq))))
}

/// The kernel area when `tensor` comes from an AveragePool, else 1.
fn pool_area(done: &[NodeProto], tensor: &str) -> Result<f32> {
    match done.iter().rev().find(|p| p.output.iter().any(|o| o == tensor)) {
        Some(p) if p.op_type() == "AveragePool" => Ok(p.attr_ints("kernel_shape", &[])?.iter().product::<i64>() as f32),
        _ => Ok(1.0),
    }
}

/// `Mul(input 0, value)` producing the node's output, with `value` as a Constant node.
fn mul_by(n: &NodeProto, prefix: &str, value: Tensor) -> Vec<NodeProto> {
    let (x, y) = (n.input[0].clone(), n.output[0].clone());
    let c = format!("{prefix}.deq_scale:0");
    let name = if n.op_type() == "AscendDequant" { format!("{prefix}.deq_scale") } else { format!("{prefix}.scale") };
    vec![constant_node(&name, &c, &value), node("Mul", &format!("{prefix}.mul"), &[&c, &x], &[&y], vec![])]
}

fn io(n: &NodeProto) -> Result<(String, String)> {
    match (n.input.first(), n.output.first()) {
        (Some(x), Some(y)) => Ok((x.clone(), y.clone())),
        _ => Err(QuantError::layer(n.name(), format!("{} needs one input and one output", n.op_type()))),
    }
}

/// Rank of the integer layer output feeding a dequant: the weight rank of a Conv /
/// ConvTranspose (through a bias Add, if any).
fn output_rank(graph: &GraphProto, done: &[NodeProto], tensor: &str) -> Option<usize> {
    let producer = done.iter().rev().find(|p| p.output.iter().any(|o| o == tensor))?;
    match producer.op_type() {
        "Conv" | "ConvTranspose" => producer.input.get(1).and_then(|w| constant(graph, w)).map(|w| w.dims.len()),
        "Add" => producer.input.iter().find_map(|i| output_rank(graph, done, i)),
        _ => None,
    }
}

/// int8 weights and int32 biases of the integer layers (and of a MatMul's bias Add) → float32.
fn widen_integer_constants(graph: &mut GraphProto) -> Result<()> {
    let quant_outputs: HashSet<&str> =
        graph.node.iter().filter(|n| n.op_type() == "AscendQuant").filter_map(|n| n.output.first()).map(String::as_str).collect();
    let mut integer_outputs: HashSet<String> = HashSet::new();
    let mut widen: Vec<String> = Vec::new();
    for n in &graph.node {
        let int_layer = INTEGER_LAYERS.contains(&n.op_type()) && n.input.first().is_some_and(|x| quant_outputs.contains(x.as_str()));
        let bias_add = n.op_type() == "Add" && n.input.iter().any(|i| integer_outputs.contains(i));
        if int_layer || bias_add {
            widen.extend(n.input.iter().skip(if int_layer { 1 } else { 0 }).filter(|i| !i.is_empty()).cloned());
            integer_outputs.extend(n.output.iter().cloned());
        }
    }
    let mut seen = HashMap::new();
    for name in widen {
        if seen.insert(name.clone(), ()).is_some() {
            continue;
        }
        let Some(t) = constant(graph, &name) else { continue };
        let t = Tensor::from_proto(t)?;
        let values: Vec<f32> = match &t.data {
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            _ => continue,
        };
        replace_constant(graph, &name, &Tensor::new(t.dims.clone(), TensorData::F32(values)));
    }
    Ok(())
}

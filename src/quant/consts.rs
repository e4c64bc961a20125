//! Constant tensors of a graph, wherever the exporter put them: initializers, or `Constant`
//! nodes with a `value` tensor (paddle2onnx, which produced the PP-OCR models, writes every
//! weight as a Constant node and no initializer at all). Weights "from a constant" (docs/ascend-formats.md §5.1)
//! mean either form.

use std::collections::HashSet;

use crate::onnx::proto::{GraphProto, NodeProto, TensorProto};
use crate::onnx::{NodeExt, Tensor};

fn is_constant_node(n: &NodeProto) -> bool {
    n.op_type() == "Constant" && matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx"))
}

/// The constant value of `name`: an initializer, or the `value` of the Constant node that
/// produces it. Other Constant forms (`value_float`, …) are not weights and are ignored.
pub fn constant<'a>(graph: &'a GraphProto, name: &str) -> Option<&'a TensorProto> {
    if let Some(t) = graph.initializer.iter().find(|t| t.name() == name) {
        return Some(t);
    }
    let node = graph.node.iter().find(|n| is_constant_node(n) && n.output.first().is_some_and(|o| o == name))?;
    node.opt_attr_tensor("value").ok().flatten()
}

/// The decoded f32 elements and dims of a float32 constant.
pub fn constant_f32(graph: &GraphProto, name: &str) -> Option<(Vec<i64>, Vec<f32>)> {
    let t = constant(graph, name)?;
    let decoded = Tensor::from_proto(t).ok()?;
    match decoded.data {
        crate::onnx::TensorData::F32(v) => Some((decoded.dims, v)),
        _ => None,
    }
}

/// Replaces the value of constant `name` where it lives (initializer or Constant node),
/// keeping its name. Returns false if `name` is not a constant.
pub fn replace_constant(graph: &mut GraphProto, name: &str, value: &Tensor) -> bool {
    if let Some(t) = graph.initializer.iter_mut().find(|t| t.name() == name) {
        *t = value.to_proto(name);
        return true;
    }
    let Some(node) = graph.node.iter_mut().find(|n| is_constant_node(n) && n.output.first().is_some_and(|o| o == name)) else {
        return false;
    };
    match node.attribute.iter_mut().find(|a| a.name() == "value") {
        Some(a) => {
            a.t = Some(value.to_proto(name));
            true
        }
        None => false,
    }
}

/// Every tensor name read by the graph's nodes (including nodes of subgraphs, which may
/// capture outer tensors) and its outputs.
pub fn used_names(graph: &GraphProto) -> HashSet<String> {
    let mut used: HashSet<String> = graph.output.iter().map(|o| o.name().to_string()).collect();
    collect_inputs(&graph.node, &mut used);
    used
}

fn collect_inputs(nodes: &[NodeProto], used: &mut HashSet<String>) {
    for n in nodes {
        used.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
        for a in &n.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                used.extend(g.output.iter().map(|o| o.name().to_string()));
                collect_inputs(&g.node, used);
            }
        }
    }
}

/// Drops Constant nodes and initializers nothing reads any more (and the graph inputs that
/// only declared such initializers, as old exporters do). Returns how many were removed.
pub fn remove_unused_constants(graph: &mut GraphProto) -> usize {
    let used = used_names(graph);
    let before = graph.node.len() + graph.initializer.len();
    graph.node.retain(|n| !is_constant_node(n) || n.output.iter().any(|o| used.contains(o)));
    let dropped: HashSet<String> = graph.initializer.iter().filter(|t| !used.contains(t.name())).map(|t| t.name().to_string()).collect();
    graph.initializer.retain(|t| !dropped.contains(t.name()));
    graph.input.retain(|i| !dropped.contains(i.name()));
    before - graph.node.len() - graph.initializer.len()
}

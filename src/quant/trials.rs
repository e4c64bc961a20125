//! Suffix trials for [`super::sensitivity::TrialRunner`]: in a trial where only some layers
//! are int8, every node that does not depend on a changed node computes exactly the float
//! run's values (a node's output depends only on its inputs). So a trial runs only the
//! fake-quant model's changed nodes and their dependents (the suffix), fed the float values
//! of the tensors they read from the rest; its outputs are bit-for-bit the full model's.

use std::collections::{HashMap, HashSet};

use super::calibrate::Result;
use crate::engine::Tensor;
use crate::onnx::Graph;
use crate::onnx::build::float_value_info;
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, type_proto};

/// The part of a trial's fake-quant model that differs from the float run.
#[derive(Debug, Clone)]
pub(crate) struct Suffix {
    /// The changed nodes, their dependents and the constant-only nodes they read from.
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Float tensors the suffix reads: its graph inputs.
    pub frontier: Vec<String>,
    /// Per model output (model order): its name when the suffix computes it, else `None`
    /// (the float value).
    pub outputs: Vec<Option<String>>,
    ir_version: Option<i64>,
    opset_import: Vec<crate::onnx::OperatorSetIdProto>,
}

/// The suffix of `fake` (a trial's fake-quant model) against `float`, the model it was built
/// from: a tensor is the float one when it is a graph input, an identical initializer, or the
/// output of an identical node whose inputs all are.
pub(crate) fn suffix(float: &ModelProto, fake: &ModelProto) -> Result<Suffix> {
    let empty = GraphProto::default();
    let fg = float.graph.as_ref().unwrap_or(&empty);
    let qg = fake.graph.as_ref().unwrap_or(&empty);
    let float_producer: HashMap<&str, &NodeProto> = fg.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let float_init: HashMap<&str, &TensorProto> = fg.initializer.iter().map(|t| (t.name(), t)).collect();
    let q_init: HashMap<&str, &TensorProto> = qg.initializer.iter().map(|t| (t.name(), t)).collect();
    let graph = Graph::new(qg)?;
    // `same`: the float value; `fixed`: computable without graph inputs (the session folds it).
    let mut same: HashSet<&str> = graph.real_inputs().map(|v| v.name()).collect();
    let mut fixed: HashSet<&str> = HashSet::new();
    for t in &qg.initializer {
        if float_init.get(t.name()) == Some(&t) {
            same.insert(t.name());
        }
        fixed.insert(t.name());
    }
    let order = graph.topological_order()?;
    let mut changed = vec![false; qg.node.len()];
    for &i in &order {
        let n = &qg.node[i];
        let inputs = || n.input.iter().filter(|s| !s.is_empty());
        if inputs().all(|t| same.contains(t.as_str())) && n.output.iter().all(|o| float_producer.get(o.as_str()) == Some(&n)) {
            same.extend(n.output.iter().map(String::as_str));
        } else {
            changed[i] = true;
        }
        if inputs().all(|t| fixed.contains(t.as_str())) {
            fixed.extend(n.output.iter().map(String::as_str));
        }
    }
    // Dependents of changed nodes are changed (their inputs are not `same`); what they read
    // from the float run is the frontier, except constant-only values, recomputed (folded).
    let mut keep = changed.clone();
    let mut frontier = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = order.iter().filter(|&&i| changed[i]).flat_map(|&i| qg.node[i].input.iter()).map(String::as_str).collect();
    stack.reverse();
    while let Some(t) = stack.pop() {
        if t.is_empty() || q_init.contains_key(t) || !seen.insert(t) {
            continue;
        }
        match graph.producer(t) {
            Some(p) if !keep[p] && fixed.contains(t) => {
                keep[p] = true;
                stack.extend(qg.node[p].input.iter().map(String::as_str));
            }
            Some(p) if keep[p] => {}
            _ if same.contains(t) => frontier.push(t.to_string()),
            _ => {}
        }
    }
    let nodes: Vec<NodeProto> = order.iter().filter(|&&i| keep[i]).map(|&i| qg.node[i].clone()).collect();
    let read: HashSet<&str> = nodes.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let produced: HashSet<&str> = nodes.iter().flat_map(|n| n.output.iter().map(String::as_str)).collect();
    Ok(Suffix {
        initializers: qg.initializer.iter().filter(|t| read.contains(t.name())).cloned().collect(),
        frontier,
        outputs: qg.output.iter().map(|o| produced.contains(o.name()).then(|| o.name().to_string())).collect(),
        nodes,
        ir_version: fake.ir_version,
        opset_import: fake.opset_import.clone(),
    })
}

impl Suffix {
    /// Whether the suffix computes any model output (else the trial is the float model).
    pub fn computes_outputs(&self) -> bool {
        self.outputs.iter().any(Option::is_some)
    }

    /// The suffix as a model whose inputs are the frontier, typed and shaped as `sample`'s
    /// values of them.
    pub fn model(&self, sample: &HashMap<String, Tensor>) -> ModelProto {
        let input = self
            .frontier
            .iter()
            .map(|name| {
                let t = &sample[name];
                let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
                let mut v = float_value_info(name, &dims);
                set_elem_type(&mut v, t.dtype() as i32);
                v
            })
            .collect();
        let graph = GraphProto {
            name: Some("trial suffix".into()),
            node: self.nodes.clone(),
            initializer: self.initializers.clone(),
            input,
            output: self.outputs.iter().flatten().map(|o| ValueInfoProto { name: Some(o.clone()), ..Default::default() }).collect(),
            ..Default::default()
        };
        ModelProto { graph: Some(graph), ir_version: self.ir_version, opset_import: self.opset_import.clone(), ..Default::default() }
    }
}

fn set_elem_type(v: &mut ValueInfoProto, elem_type: i32) {
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.elem_type = Some(elem_type);
    }
}

#[cfg(test)]
mod tests {}

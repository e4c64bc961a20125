//! Suffix trials for [`super::sensitivity::TrialRunner`]: in a trial where only some layers
//! are int8, every node that does not depend on a changed node computes exactly the float
//! run's values (a node's output depends only on its inputs). So a trial runs only the
//! fake-quant model's changed nodes and their dependents (the suffix), fed the float values
//! of the tensors they read from the rest; its outputs are bit-for-bit the full model's.

use std::collections::{HashMap, HashSet};

use super::calibrate::{CalibrateError, Result};
use crate::engine::Session;
use crate::onnx::Graph;
use crate::onnx::build::float_value_info;
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto, type_proto};
use crate::onnx::shapes::InferredShapes;

/// The part of a trial's fake-quant model that differs from the float run, planned.
pub(crate) struct Suffix {
    /// None when the suffix computes no model output (the trial is the float model).
    pub session: Option<Session>,
    /// Float tensors the suffix reads: its graph inputs.
    pub frontier: Vec<String>,
    /// Per model output (model order): whether the suffix computes it (else it is the float
    /// value).
    pub outputs: Vec<bool>,
}

/// The suffix of `fake` (a trial's fake-quant model) against `float`, the model it was built
/// from, whose shapes, types and known values are `inferred` for the data's `input_shapes`.
/// A tensor is the float one when it is a graph input, an identical initializer, or the
/// output of an identical node whose inputs all are.
pub(crate) fn suffix(
    float: &ModelProto,
    inferred: &InferredShapes,
    fake: &ModelProto,
    input_shapes: &HashMap<String, Vec<i64>>,
) -> Result<Suffix> {
    let empty = GraphProto::default();
    let fg = float.graph.as_ref().unwrap_or(&empty);
    let qg = fake.graph.as_ref().unwrap_or(&empty);
    let float_producer: HashMap<&str, &NodeProto> = fg.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let float_init: HashMap<&str, &TensorProto> = fg.initializer.iter().map(|t| (t.name(), t)).collect();
    let q_init: HashSet<&str> = qg.initializer.iter().map(|t| t.name()).collect();
    let graph = Graph::new(qg)?;
    // `same`: the float value. `fixed`: computable without graph inputs (the session folds
    // it), or a value shape inference knows (a Shape's output): the suffix recomputes
    // these rather than read them, so that its planning sees what the full model's did.
    let mut same: HashSet<&str> = graph.real_inputs().map(|v| v.name()).collect();
    let mut fixed: HashSet<&str> = HashSet::new();
    for t in &qg.initializer {
        if float_init.get(t.name()) == Some(&t) {
            same.insert(t.name());
        }
        fixed.insert(t.name());
    }
    let order = graph.topological_order()?;
    let mut keep = vec![false; qg.node.len()];
    for &i in &order {
        let n = &qg.node[i];
        let inputs = || n.input.iter().filter(|s| !s.is_empty());
        if inputs().all(|t| same.contains(t.as_str())) && n.output.iter().all(|o| float_producer.get(o.as_str()) == Some(&n)) {
            same.extend(n.output.iter().map(String::as_str));
            fixed.extend(n.output.iter().filter(|o| inferred.value(o).is_some()).map(String::as_str));
        } else {
            keep[i] = true;
        }
        if inputs().all(|t| fixed.contains(t.as_str())) {
            fixed.extend(n.output.iter().map(String::as_str));
        }
    }
    // Dependents of changed nodes are changed (their inputs are not `same`); what they read
    // from the float run is the frontier.
    let mut frontier = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = order.iter().filter(|&&i| keep[i]).flat_map(|&i| qg.node[i].input.iter()).map(String::as_str).collect();
    stack.reverse();
    while let Some(t) = stack.pop() {
        if t.is_empty() || q_init.contains(t) || !seen.insert(t) {
            continue;
        }
        match graph.producer(t) {
            Some(p) if keep[p] => {}
            Some(p) if fixed.contains(t) => {
                keep[p] = true;
                stack.extend(qg.node[p].input.iter().map(String::as_str));
            }
            _ => frontier.push(t.to_string()),
        }
    }
    let produced: HashSet<&str> = order.iter().filter(|&&i| keep[i]).flat_map(|&i| qg.node[i].output.iter()).map(String::as_str).collect();
    let outputs: Vec<bool> = qg.output.iter().map(|o| produced.contains(o.name())).collect();
    if !outputs.contains(&true) {
        return Ok(Suffix { session: None, frontier: Vec::new(), outputs });
    }
    let mut shapes = HashMap::new();
    let mut input = Vec::with_capacity(frontier.len());
    for name in &frontier {
        let (Some(dims), Some(&dtype)) = (inferred.shape(name), inferred.dtypes.get(name)) else {
            // Not planned statically: the whole model, fed the graph inputs.
            let session = Session::new(fake, input_shapes).map_err(engine_error)?;
            return Ok(Suffix {
                session: Some(session),
                frontier: graph.real_inputs().map(|v| v.name().to_string()).collect(),
                outputs: vec![true; qg.output.len()],
            });
        };
        let mut v = float_value_info(name, dims);
        if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = Some(dtype);
        }
        input.push(v);
        shapes.insert(name.clone(), dims.to_vec());
    }
    let read: HashSet<&str> = order.iter().filter(|&&i| keep[i]).flat_map(|&i| qg.node[i].input.iter()).map(String::as_str).collect();
    let sub = GraphProto {
        name: Some("trial suffix".into()),
        node: order.iter().filter(|&&i| keep[i]).map(|&i| qg.node[i].clone()).collect(),
        initializer: qg.initializer.iter().filter(|t| read.contains(t.name())).cloned().collect(),
        input,
        output: qg.output.iter().filter(|o| produced.contains(o.name())).cloned().collect(),
        ..Default::default()
    };
    let model = ModelProto { graph: Some(sub), ir_version: fake.ir_version, opset_import: fake.opset_import.clone(), ..Default::default() };
    let session = Session::new(&model, &shapes).map_err(engine_error)?;
    Ok(Suffix { session: Some(session), frontier, outputs })
}

fn engine_error(source: crate::engine::EngineError) -> CalibrateError {
    CalibrateError::Engine { context: "fake-quant trial suffix".into(), source }
}

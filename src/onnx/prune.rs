//! The part of a model that computes some of its tensors: a pass that only needs a few tensors
//! (e.g. calibration's equalization statistics, all in the backbone) skips the rest of the
//! graph. Every kept node computes what it computes in the whole model: a node's outputs
//! depend only on its inputs.

use std::collections::HashSet;

use super::proto::{GraphProto, ModelProto, ValueInfoProto};

/// `model` reduced to the nodes `outputs` depend on, with `outputs` as its graph outputs (and
/// only the initializers those nodes read). None when a tensor is not produced by a node or a
/// graph input, or when a kept node has a subgraph (its outer-scope reads are not followed).
pub fn ancestors_model(model: &ModelProto, outputs: &[&str]) -> Option<ModelProto> {
    cut_model(model, &[], outputs)
}

/// [`ancestors_model`] stopped at the tensors `from`: they become the graph inputs (name only),
/// their producers and everything before them are left out.
pub fn slice_model(model: &ModelProto, from: &[&str], outputs: &[&str]) -> Option<ModelProto> {
    cut_model(model, from, outputs)
}

fn cut_model(model: &ModelProto, from: &[&str], outputs: &[&str]) -> Option<ModelProto> {
    let graph = model.graph.as_ref()?;
    let view = super::Graph::new(graph).ok()?;
    let inputs: HashSet<&str> = graph.input.iter().map(|v| v.name()).collect();
    let mut keep = vec![false; graph.node.len()];
    let mut read = HashSet::new();
    let mut stack: Vec<&str> = outputs.to_vec();
    while let Some(t) = stack.pop() {
        if !read.insert(t) || from.contains(&t) {
            continue;
        }
        match view.producer(t) {
            Some(i) if !keep[i] => {
                let node = &graph.node[i];
                if node.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty()) {
                    return None;
                }
                keep[i] = true;
                stack.extend(node.input.iter().filter(|s| !s.is_empty()).map(String::as_str));
            }
            Some(_) => {}
            None if inputs.contains(t) || view.initializer(t).is_some() => {}
            None => return None,
        }
    }
    let input = if from.is_empty() {
        graph.input.iter().filter(|v| read.contains(v.name()) || view.initializer(v.name()).is_none()).cloned().collect()
    } else {
        from.iter().map(|t| ValueInfoProto { name: Some(t.to_string()), ..Default::default() }).collect()
    };
    let sub = GraphProto {
        node: graph.node.iter().zip(&keep).filter(|(_, k)| **k).map(|(n, _)| n.clone()).collect(),
        initializer: graph.initializer.iter().filter(|t| read.contains(t.name())).cloned().collect(),
        input,
        output: outputs.iter().map(|o| ValueInfoProto { name: Some(o.to_string()), ..Default::default() }).collect(),
        value_info: graph.value_info.iter().filter(|v| read.contains(v.name())).cloned().collect(),
        name: graph.name.clone(),
        ..Default::default()
    };
    Some(ModelProto {
        graph: Some(sub),
        ir_version: model.ir_version,
        opset_import: model.opset_import.clone(),
        functions: model.functions.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::NodeProto;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        let vi = |n: &str| ValueInfoProto { name: Some(n.into()), ..Default::default() };
        ModelProto {
            graph: Some(GraphProto {
                node: vec![node("Relu", &["x"], &["a"]), node("Neg", &["a"], &["b"]), node("Add", &["a", "w"], &["c"])],
                initializer: vec![crate::onnx::proto::TensorProto { name: Some("w".into()), ..Default::default() }],
                input: vec![vi("x")],
                output: vec![vi("b"), vi("c")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_only_the_ancestors_of_the_outputs() {
        let m = ancestors_model(&model(), &["b"]).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node.iter().map(|n| n.op_type()).collect::<Vec<_>>(), ["Relu", "Neg"]);
        assert!(g.initializer.is_empty());
        assert_eq!(g.output.iter().map(|o| o.name()).collect::<Vec<_>>(), ["b"]);
        let g = ancestors_model(&model(), &["a", "c"]).unwrap().graph.unwrap();
        assert_eq!(g.node.iter().map(|n| n.op_type()).collect::<Vec<_>>(), ["Relu", "Add"]);
        assert_eq!(g.initializer.len(), 1);
    }

    #[test]
    fn a_slice_starts_at_the_given_tensors() {
        let g = slice_model(&model(), &["a"], &["c"]).unwrap().graph.unwrap();
        assert_eq!(g.node.iter().map(|n| n.op_type()).collect::<Vec<_>>(), ["Add"]);
        assert_eq!(g.input.iter().map(|v| v.name()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(g.initializer.len(), 1);
    }

    #[test]
    fn unknown_tensors_and_subgraphs_give_none() {
        assert!(ancestors_model(&model(), &["nope"]).is_none());
        let mut m = model();
        m.graph.as_mut().unwrap().node[0]
            .attribute
            .push(crate::onnx::proto::AttributeProto { g: Some(GraphProto::default()), ..Default::default() });
        assert!(ancestors_model(&m, &["b"]).is_none());
    }
}

//! A read-only view of a GraphProto: who produces and who consumes each tensor,
//! initializers, declared value infos, and a topological order of the nodes.

use std::collections::{HashMap, HashSet, VecDeque};

use super::error::{OnnxError, Result};
use super::proto::{GraphProto, NodeProto, TensorProto, ValueInfoProto};

pub struct Graph<'a> {
    pub proto: &'a GraphProto,
    /// tensor name → index of the node that produces it
    producers: HashMap<&'a str, usize>,
    /// tensor name → (node index, input slot) of every consumer, in node order
    consumers: HashMap<&'a str, Vec<(usize, usize)>>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    value_infos: HashMap<&'a str, &'a ValueInfoProto>,
}

impl<'a> Graph<'a> {
    pub fn new(proto: &'a GraphProto) -> Result<Self> {
        let mut producers = HashMap::new();
        let mut consumers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (i, node) in proto.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if let Some(prev) = producers.insert(out.as_str(), i) {
                    return Err(OnnxError::Graph {
                        graph: proto.name().to_string(),
                        detail: format!(
                            "tensor '{out}' is produced by both node '{}' and node '{}'",
                            super::node_label(&proto.node[prev], prev),
                            super::node_label(node, i)
                        ),
                    });
                }
            }
            for (slot, input) in node.input.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
                consumers.entry(input.as_str()).or_default().push((i, slot));
            }
        }
        let initializers = proto.initializer.iter().map(|t| (t.name(), t)).collect();
        let value_infos = proto.input.iter().chain(&proto.output).chain(&proto.value_info).map(|v| (v.name(), v)).collect();
        Ok(Graph { proto, producers, consumers, initializers, value_infos })
    }

    pub fn nodes(&self) -> &'a [NodeProto] {
        &self.proto.node
    }

    pub fn producer(&self, tensor: &str) -> Option<usize> {
        self.producers.get(tensor).copied()
    }

    pub fn consumers(&self, tensor: &str) -> &[(usize, usize)] {
        self.consumers.get(tensor).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn initializer(&self, tensor: &str) -> Option<&'a TensorProto> {
        self.initializers.get(tensor).copied()
    }

    pub fn value_info(&self, tensor: &str) -> Option<&'a ValueInfoProto> {
        self.value_infos.get(tensor).copied()
    }

    /// Graph inputs that are not initializers (old exporters list weights as inputs).
    pub fn real_inputs(&self) -> impl Iterator<Item = &'a ValueInfoProto> + '_ {
        self.proto.input.iter().filter(|v| !self.initializers.contains_key(v.name()))
    }

    pub fn outputs(&self) -> &'a [ValueInfoProto] {
        &self.proto.output
    }

    /// Node indices in an order where every node comes after the producers of its
    /// inputs; ties keep file order. A cycle is an error naming a node on it.
    pub fn topological_order(&self) -> Result<Vec<usize>> {
        let n = self.proto.node.len();
        let mut pending = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.proto.node.iter().enumerate() {
            let mut seen = HashSet::new();
            for input in node.input.iter().filter(|s| !s.is_empty()) {
                if let Some(p) = self.producer(input)
                    && seen.insert(p)
                {
                    pending[i] += 1;
                    dependents[p].push(i);
                }
            }
        }
        // A min-heap keyed by index would keep strict file order; a FIFO of ready nodes
        // seeded in file order keeps it for already-sorted graphs, which is the norm.
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_front() {
            order.push(i);
            for &d in &dependents[i] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push_back(d);
                }
            }
        }
        if order.len() != n {
            let stuck = (0..n).find(|&i| pending[i] > 0).expect("some node is stuck");
            return Err(OnnxError::Graph {
                graph: self.proto.name().to_string(),
                detail: format!("the graph has a cycle through node '{}'", super::node_label(&self.proto.node[stuck], stuck)),
            });
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            name: Some(name.into()),
            op_type: Some("Relu".into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn maps_and_order() {
        let g = GraphProto {
            node: vec![node("b", &["t1"], &["t2"]), node("a", &["x"], &["t1"]), node("c", &["t1", "t2"], &["y"])],
            ..Default::default()
        };
        let view = Graph::new(&g).unwrap();
        assert_eq!(view.producer("t1"), Some(1));
        assert_eq!(view.consumers("t1"), &[(0, 0), (2, 0)]);
        assert_eq!(view.topological_order().unwrap(), vec![1, 0, 2]);
    }

    #[test]
    fn cycle_is_an_error() {
        let g = GraphProto {
            name: Some("g".into()),
            node: vec![node("a", &["t2"], &["t1"]), node("b", &["t1"], &["t2"])],
            ..Default::default()
        };
        let e = Graph::new(&g).unwrap().topological_order().unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }
}

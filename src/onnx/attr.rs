//! Typed attribute access with defaults. Errors name the node, its op type and the
//! attribute, e.g. `node 'conv1' (Conv): attribute 'group': expected INT, found FLOATS`.

use super::error::{OnnxError, Result};
use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};
use super::tensor::Tensor;

pub trait NodeExt {
    fn attr(&self, name: &str) -> Option<&AttributeProto>;
    fn attr_error(&self, attr: &str, detail: String) -> OnnxError;

    fn attr_i(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.opt_attr_i(name)?.unwrap_or(default))
    }
    fn attr_f(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.opt_attr_f(name)?.unwrap_or(default))
    }
    fn attr_s(&self, name: &str, default: &str) -> Result<String> {
        Ok(self.opt_attr_s(name)?.unwrap_or_else(|| default.to_string()))
    }
    fn attr_ints(&self, name: &str, default: &[i64]) -> Result<Vec<i64>> {
        Ok(self.opt_attr_ints(name)?.unwrap_or_else(|| default.to_vec()))
    }
    fn attr_floats(&self, name: &str, default: &[f32]) -> Result<Vec<f32>> {
        Ok(self.opt_attr_floats(name)?.unwrap_or_else(|| default.to_vec()))
    }

    fn opt_attr_i(&self, name: &str) -> Result<Option<i64>> {
        typed(self, name, AttributeType::Int, |a| a.i())
    }
    fn opt_attr_f(&self, name: &str) -> Result<Option<f32>> {
        typed(self, name, AttributeType::Float, |a| a.f())
    }
    fn opt_attr_s(&self, name: &str) -> Result<Option<String>> {
        typed(self, name, AttributeType::String, |a| String::from_utf8_lossy(a.s()).into_owned())
    }
    fn opt_attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        typed(self, name, AttributeType::Ints, |a| a.ints.clone())
    }
    fn opt_attr_floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        typed(self, name, AttributeType::Floats, |a| a.floats.clone())
    }
    fn opt_attr_tensor(&self, name: &str) -> Result<Option<&TensorProto>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => check_type(self, a, AttributeType::Tensor)?
                .t
                .as_ref()
                .map(Some)
                .ok_or_else(|| self.attr_error(name, "TENSOR attribute has no tensor".into())),
        }
    }
    fn opt_attr_graph(&self, name: &str) -> Result<Option<&GraphProto>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => check_type(self, a, AttributeType::Graph)?
                .g
                .as_ref()
                .map(Some)
                .ok_or_else(|| self.attr_error(name, "GRAPH attribute has no graph".into())),
        }
    }

    /// A required INT attribute.
    fn req_attr_i(&self, name: &str) -> Result<i64> {
        self.opt_attr_i(name)?.ok_or_else(|| self.attr_error(name, "required INT attribute is missing".into()))
    }
    /// A required INTS attribute.
    fn req_attr_ints(&self, name: &str) -> Result<Vec<i64>> {
        self.opt_attr_ints(name)?.ok_or_else(|| self.attr_error(name, "required INTS attribute is missing".into()))
    }
    /// A required TENSOR attribute, decoded.
    fn req_attr_tensor(&self, name: &str) -> Result<Tensor> {
        let t = self.opt_attr_tensor(name)?.ok_or_else(|| self.attr_error(name, "required TENSOR attribute is missing".into()))?;
        Tensor::from_proto(t).map_err(|e| self.attr_error(name, e.to_string()))
    }
}

/// The declared type; old exporters sometimes leave `type` unset, so infer it from the
/// populated field in that case.
pub fn attribute_type(a: &AttributeProto) -> AttributeType {
    match a.r#type() {
        AttributeType::Undefined => {
            if a.f.is_some() {
                AttributeType::Float
            } else if a.i.is_some() {
                AttributeType::Int
            } else if a.s.is_some() {
                AttributeType::String
            } else if a.t.is_some() {
                AttributeType::Tensor
            } else if a.g.is_some() {
                AttributeType::Graph
            } else if !a.floats.is_empty() {
                AttributeType::Floats
            } else if !a.ints.is_empty() {
                AttributeType::Ints
            } else if !a.strings.is_empty() {
                AttributeType::Strings
            } else {
                AttributeType::Undefined
            }
        }
        t => t,
    }
}

fn check_type<'a, N: NodeExt + ?Sized>(node: &N, a: &'a AttributeProto, want: AttributeType) -> Result<&'a AttributeProto> {
    let found = attribute_type(a);
    if found == want {
        Ok(a)
    } else {
        Err(node.attr_error(a.name(), format!("expected {}, found {}", want.as_str_name(), found.as_str_name())))
    }
}

fn typed<N: NodeExt + ?Sized, T>(node: &N, name: &str, want: AttributeType, get: impl Fn(&AttributeProto) -> T) -> Result<Option<T>> {
    node.attr(name).map(|a| check_type(node, a, want).map(get)).transpose()
}

impl NodeExt for NodeProto {
    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name() == name)
    }
    fn attr_error(&self, attr: &str, detail: String) -> OnnxError {
        OnnxError::Attribute { node: self.name().to_string(), op_type: self.op_type().to_string(), attr: attr.to_string(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeProto {
        NodeProto {
            name: Some("conv1".into()),
            op_type: Some("Conv".into()),
            attribute: vec![
                AttributeProto { name: Some("group".into()), r#type: Some(AttributeType::Int as i32), i: Some(4), ..Default::default() },
                AttributeProto {
                    name: Some("pads".into()),
                    r#type: Some(AttributeType::Ints as i32),
                    ints: vec![1, 1, 1, 1],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_values() {
        let n = node();
        assert_eq!(n.attr_i("group", 1).unwrap(), 4);
        assert_eq!(n.attr_i("missing", 7).unwrap(), 7);
        assert_eq!(n.attr_ints("pads", &[0; 4]).unwrap(), vec![1, 1, 1, 1]);
        assert_eq!(n.attr_s("auto_pad", "NOTSET").unwrap(), "NOTSET");
    }

    #[test]
    fn type_mismatch_names_node_op_and_attribute() {
        let e = node().attr_f("group", 0.0).unwrap_err().to_string();
        assert_eq!(e, "node 'conv1' (Conv): attribute 'group': expected FLOAT, found INT");
        let e = node().req_attr_ints("kernel_shape").unwrap_err().to_string();
        assert!(e.contains("'kernel_shape'") && e.contains("missing"), "{e}");
    }
}

//! Op registry keyed by op type: each op family file registers builders that turn a node
//! (attributes, constant inputs, static input shapes) into a runnable [`Op`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use super::error::{OpError, OpResult};
use super::tensor::Tensor;
use crate::onnx::{NodeExt, NodeProto};

/// A node ready to run. `run` gets the node's inputs (None for omitted optional inputs)
/// and returns its outputs in order.
pub trait Op: Send + Sync + Debug {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>>;

    /// For an AscendQuant writing int8: its operation, which a fused int8 conv can end with.
    fn int8_quantizer(&self) -> Option<crate::engine::ops::quant::Quantizer> {
        None
    }

    /// This op (one float output) followed by `epilogue` applied to every output element, and
    /// then by `quantizer` (int8 output) when given, as one op; None when the op cannot fuse
    /// such a tail (the default).
    fn with_epilogue(
        &self,
        _epilogue: Arc<crate::engine::kernels::epilogue::Epilogue>,
        _quantizer: Option<crate::engine::ops::quant::Quantizer>,
    ) -> Option<Box<dyn Op>> {
        None
    }

    /// Whether `run` reads input `i` (false for a constant the op captured, in another form,
    /// when it was built): a session drops the constants no step reads.
    fn reads_input(&self, _i: usize) -> bool {
        true
    }
}

/// What a builder knows about the node when the model is planned.
pub struct BuildContext<'a> {
    pub node: &'a NodeProto,
    /// Opset version of the node's domain.
    pub opset: i64,
    /// Inputs whose values are known at plan time (initializers, folded constants).
    pub constants: Vec<Option<Arc<Tensor>>>,
    /// Static input shapes where inference resolved them.
    pub input_shapes: Vec<Option<Vec<usize>>>,
    /// The node that produces each input (None for graph inputs and initializers). An int8
    /// layer of a deploy model reads its input zero point from the AscendQuant feeding it.
    pub input_producers: Vec<Option<&'a NodeProto>>,
}

impl BuildContext<'_> {
    pub fn constant(&self, i: usize) -> Option<&Tensor> {
        self.constants.get(i).and_then(|c| c.as_deref())
    }

    /// Whether input `i` is given (ONNX marks omitted optional inputs with "").
    pub fn has_input(&self, i: usize) -> bool {
        self.node.input.get(i).is_some_and(|s| !s.is_empty())
    }

    // Attribute helpers with errors converted for builders.
    pub fn attr_i(&self, name: &str, default: i64) -> OpResult<i64> {
        Ok(self.node.attr_i(name, default)?)
    }
    pub fn attr_f(&self, name: &str, default: f32) -> OpResult<f32> {
        Ok(self.node.attr_f(name, default)?)
    }
    pub fn req_attr_f(&self, name: &str) -> OpResult<f32> {
        self.node.opt_attr_f(name)?.ok_or_else(|| OpError(format!("required FLOAT attribute '{name}' is missing")))
    }
    pub fn attr_s(&self, name: &str, default: &str) -> OpResult<String> {
        Ok(self.node.attr_s(name, default)?)
    }
    pub fn attr_ints(&self, name: &str, default: &[i64]) -> OpResult<Vec<i64>> {
        Ok(self.node.attr_ints(name, default)?)
    }
    pub fn opt_attr_ints(&self, name: &str) -> OpResult<Option<Vec<i64>>> {
        Ok(self.node.opt_attr_ints(name)?)
    }
    pub fn attr_floats(&self, name: &str, default: &[f32]) -> OpResult<Vec<f32>> {
        Ok(self.node.attr_floats(name, default)?)
    }
}

pub type Builder = fn(&BuildContext) -> OpResult<Box<dyn Op>>;

#[derive(Default)]
pub struct Registry {
    builders: HashMap<(String, String), Builder>,
}

impl Registry {
    /// Registers an op of the default ONNX domain (also used by the Ascend ops, which
    /// amct_onnx and ATC place in the default domain).
    pub fn register(&mut self, op_type: &str, builder: Builder) {
        self.register_in("", op_type, builder);
    }

    pub fn register_in(&mut self, domain: &str, op_type: &str, builder: Builder) {
        self.builders.insert((domain.to_string(), op_type.to_string()), builder);
    }

    pub fn get(&self, domain: &str, op_type: &str) -> Option<Builder> {
        let domain = if domain == "ai.onnx" { "" } else { domain };
        self.builders.get(&(domain.to_string(), op_type.to_string())).copied()
    }

    pub fn op_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.builders.keys().map(|(d, o)| if d.is_empty() { o.clone() } else { format!("{d}:{o}") }).collect();
        v.sort();
        v
    }

    /// Every op the engine implements.
    pub fn with_all_ops() -> Self {
        let mut r = Registry::default();
        super::ops::register_all(&mut r);
        r
    }
}

/// Input `i` or an error naming it.
pub fn input<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> OpResult<&'a Tensor> {
    inputs.get(i).copied().flatten().ok_or_else(|| OpError(format!("input {i} is missing")))
}

/// Input `i` as f32, or an error naming the actual type.
pub fn input_f32<'a>(inputs: &[Option<&'a Tensor>], i: usize) -> OpResult<&'a ndarray::ArrayD<f32>> {
    let t = input(inputs, i)?;
    t.as_f32().ok_or_else(|| OpError(format!("input {i} is {}, expected float", t.dtype_name())))
}

/// Building ops in unit tests without a model around them.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::{BuildContext, Builder, Op};
    use crate::engine::error::OpResult;
    use crate::engine::tensor::Tensor;
    use crate::onnx::proto::{AttributeProto, NodeProto};

    /// Builds `op_type` with `attrs`; `constants[i]` is input i's plan-time value, if any.
    pub fn build(
        builder: Builder,
        op_type: &str,
        attrs: Vec<AttributeProto>,
        constants: Vec<Option<Tensor>>,
        opset: i64,
    ) -> OpResult<Box<dyn Op>> {
        let node = NodeProto {
            name: Some(format!("test_{op_type}")),
            op_type: Some(op_type.into()),
            input: (0..constants.len()).map(|i| format!("in{i}")).collect(),
            output: vec!["out".into()],
            attribute: attrs,
            ..Default::default()
        };
        let n = constants.len();
        let ctx = BuildContext {
            node: &node,
            opset,
            constants: constants.into_iter().map(|c| c.map(Arc::new)).collect(),
            input_shapes: vec![None; n],
            input_producers: vec![None; n],
        };
        builder(&ctx)
    }
}

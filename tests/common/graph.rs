//! Small builders for hand-made ONNX graphs in tests.
#![allow(dead_code)]

use ascend_ptq::onnx::proto::attribute_proto::AttributeType;
use ascend_ptq::onnx::proto::tensor_shape_proto::{Dimension, dimension};
use ascend_ptq::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    type_proto,
};
use ascend_ptq::onnx::{DataType, Tensor, TensorData};

// The library's own builders (src/onnx/build.rs), under the short names the tests use.
#[allow(unused_imports)]
pub use ascend_ptq::onnx::build::{attr_float as attr_f, attr_int as attr_i, attr_string as attr_s, node};

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.to_vec(), ..Default::default() }
}

pub fn tensor(name: &str, dims: &[i64], data: TensorData) -> TensorProto {
    Tensor::new(dims.to_vec(), data).to_proto(name)
}

pub fn value_info(name: &str, dtype: DataType, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dtype as i32),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), ..Default::default() }).collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn model(
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    opset: i64,
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("ascend-ptq-tests".into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto {
            name: Some("test".into()),
            node: nodes,
            initializer: initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

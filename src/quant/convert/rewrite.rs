//! The two patterns of docs/ascend-formats.md §15.1 that `build_deploy` does not place,
//! added to the deploy graph:
//! - a QDQ on an Add input (or on the input of a float op that shares the pair with an int8
//!   layer or Add) → `AscendQuant` (`scale` = 1/scale_d, `offset` = offset_d) →
//!   `AscendAntiQuant` (`scale` = scale_d, `offset` = offset_d, §2.5) in front of that node
//!   `A`, nodes `A.input<k>.quant` / `A.input<k>.anti_quant` for input k;
//! - a trailing QuantizeLinear → `AscendQuant` named `Q.quant`, writing the model output
//!   (now INT8).

use super::ConvertError;
use super::plan::{AddQuant, TrailingQuant, set_output_type};
use crate::onnx::DataType;
use crate::onnx::build::{attr_float, attr_string, node};
use crate::onnx::proto::{ModelProto, NodeProto};
use crate::quant::QuantError;
use crate::quant::scale::ActQuant;

fn ascend_quant(name: &str, x: &str, y: &str, act: ActQuant) -> NodeProto {
    let attrs =
        vec![attr_float("scale", act.quant_attr_scale()), attr_float("offset", act.quant_attr_offset()), attr_string("dst_type", "INT8")];
    node("AscendQuant", name, &[x], &[y], attrs)
}

/// Inserts each AscendQuant → AscendAntiQuant right before the node that reads it.
pub fn add_quant_pairs(deploy: &mut ModelProto, adds: &[AddQuant]) -> Result<(), ConvertError> {
    let graph = deploy.graph.as_mut().ok_or(QuantError::NoGraph)?;
    for a in adds {
        let pos = graph
            .node
            .iter()
            .position(|n| n.op_type() == a.op_type && n.output.first() == Some(&a.add_output))
            .ok_or_else(|| QuantError::layer(&a.add, "the node is missing from the deploy graph"))?;
        let act = ActQuant { scale: a.scale_d, offset: a.offset_d };
        let (q, aq) = (a.quant_name(), a.anti_quant_name());
        let (q_out, aq_out) = (format!("{q}:0"), format!("{aq}:0"));
        let anti = node(
            "AscendAntiQuant",
            &aq,
            &[&q_out],
            &[&aq_out],
            vec![attr_float("scale", a.scale_d), attr_float("offset", a.offset_d as f32), attr_string("dst_type", "INT8")],
        );
        let add = &mut graph.node[pos];
        if add.input.get(a.input_index) != Some(&a.tensor) {
            return Err(QuantError::layer(&a.add, format!("input {} is not '{}' in the deploy graph", a.input_index, a.tensor)).into());
        }
        add.input[a.input_index] = aq_out.clone();
        graph.node.insert(pos, anti);
        graph.node.insert(pos, ascend_quant(&q, &a.tensor, &q_out, act));
    }
    Ok(())
}

/// Appends the trailing AscendQuant and makes the model output INT8.
pub fn trailing_quant(deploy: &mut ModelProto, t: &TrailingQuant) -> Result<(), ConvertError> {
    let graph = deploy.graph.as_mut().ok_or(QuantError::NoGraph)?;
    graph.node.push(ascend_quant(&t.quant_name(), &t.tensor, &t.output, ActQuant { scale: t.scale_d, offset: t.offset_d }));
    set_output_type(graph, &t.output, DataType::Int8);
    Ok(())
}

//! The deploy model for ATC (docs/ascend-formats.md §2): per quantized layer `L`
//! - `L.quant` AscendQuant (default domain; `scale` = 1/scale_d, `offset` = offset_d,
//!   `dst_type` "INT8") spliced into L's data input, shared by every layer that reads the same
//!   tensor with the same (scale_d, offset_d) (QuantFusionPass);
//! - L's weight overwritten in place (same name) as INT8, its bias as INT32;
//! - `L.dequant` AscendDequant (`dtype` 0 = float32) with the UINT64 initializer
//!   `L.dequant.param`, after L — or after the bias `Add` of a MatMul.
//!
//! Tensor names we introduce (not fixed by the sources, formats §2.1): `L.quant:0` for the int8 activation and
//! `L.dequant:in` for the int32 accumulators; the dequant output keeps L's original output
//! name, so every consumer and graph output is unchanged.

use std::collections::HashMap;

use super::error::{QuantError, Result};
use super::scale::{ActQuant, dequant_params};
use crate::onnx::build::{attr_float, attr_int, attr_string, node, set_attr};
use crate::onnx::proto::{ModelProto, NodeProto};
use crate::onnx::{Tensor, TensorData, default_opset};

pub use crate::onnx::ATC_OPSETS;

/// A quantized constant that replaces a float one in place.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantConst<T> {
    pub name: String,
    pub dims: Vec<i64>,
    pub values: Vec<T>,
}

/// Everything the rewriting needs about one quantized layer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// Index of the layer's node in the (BN-folded) float graph.
    pub node: usize,
    /// Node name (or label when unnamed): the `L` of `L.quant` / `L.dequant`.
    pub name: String,
    pub act: ActQuant,
    /// One weight scale per output channel, or one (per tensor; AveragePool: 1/area).
    pub scale_w: Vec<f32>,
    pub weight: Option<QuantConst<i8>>,
    pub bias: Option<QuantConst<i32>>,
    /// Gemm with transB = 1 whose int8 weight is already transposed: set transB = 0.
    pub clear_trans_b: bool,
    /// MatMul whose bias `Add` (this node index) was quantized to int32 with the layer.
    pub bias_add: Option<usize>,
}

impl QuantizedLayer {
    pub fn quant_name(&self) -> String {
        format!("{}.quant", self.name)
    }
    pub fn dequant_name(&self) -> String {
        format!("{}.dequant", self.name)
    }
}

/// Checks that the model's default-domain opset is one ATC accepts the Ascend ops in.
pub fn check_opset(model: &ModelProto) -> Result<i64> {
    let opset = default_opset(model).unwrap_or(1);
    if !ATC_OPSETS.contains(&opset) {
        return Err(QuantError::UnsupportedOpset {
            detail: format!(
                "the model imports ai.onnx opset {opset}; ATC reads AscendQuant/AscendDequant only in opsets {}–{}. \
                 Re-export the model with an opset in that range",
                ATC_OPSETS.start(),
                ATC_OPSETS.end()
            ),
        });
    }
    Ok(opset)
}

/// Rewrites a copy of the float model into the deploy model. The returned map names, for each
/// layer, the AscendQuant node it reads from (its own or a shared one).
pub fn build_deploy(float_model: &ModelProto, layers: &[QuantizedLayer]) -> Result<(ModelProto, HashMap<String, String>)> {
    check_opset(float_model)?;
    let mut model = float_model.clone();
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let mut before: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut after: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    // (data tensor, scale bits, offset) → (quant node name, its output)
    let mut shared: HashMap<(String, u32, i32), (String, String)> = HashMap::new();
    let mut quant_of = HashMap::new();
    let mut order: Vec<&QuantizedLayer> = layers.iter().collect();
    order.sort_by_key(|l| l.node);

    for layer in order {
        let n = graph.node.get(layer.node).ok_or_else(|| QuantError::layer(&layer.name, "node index out of range"))?;
        let data = n.input.first().cloned().ok_or_else(|| QuantError::layer(&layer.name, "the layer has no data input"))?;
        let key = (data.clone(), layer.act.scale.to_bits(), layer.act.offset);
        let (quant_name, quant_out) = match shared.get(&key) {
            Some(found) => found.clone(),
            None => {
                let (name, out) = (layer.quant_name(), format!("{}.quant:0", layer.name));
                let attrs = vec![
                    attr_float("scale", layer.act.quant_attr_scale()),
                    attr_float("offset", layer.act.quant_attr_offset()),
                    attr_string("dst_type", "INT8"),
                ];
                before.entry(layer.node).or_default().push(node("AscendQuant", &name, &[&data], &[&out], attrs));
                shared.insert(key, (name.clone(), out.clone()));
                (name, out)
            }
        };
        quant_of.insert(layer.name.clone(), quant_name);
        let n = &mut graph.node[layer.node];
        n.input[0] = quant_out;
        if layer.clear_trans_b {
            set_attr(n, attr_int("transB", 0));
        }

        // The dequant follows the layer, or the MatMul's bias Add.
        let last = layer.bias_add.unwrap_or(layer.node);
        let int32_out = format!("{}.dequant:in", layer.name);
        let last_node = &mut graph.node[last];
        let y = std::mem::replace(
            last_node.output.first_mut().ok_or_else(|| QuantError::layer(&layer.name, "the layer has no output"))?,
            int32_out.clone(),
        );
        let param = format!("{}.param", layer.dequant_name());
        after.entry(last).or_default().push(node(
            "AscendDequant",
            &layer.dequant_name(),
            &[&int32_out, &param],
            &[&y],
            vec![attr_int("dtype", 0)],
        ));
        let params = dequant_params(layer.act.scale, &layer.scale_w);
        graph.initializer.push(Tensor::new(vec![params.len() as i64], TensorData::U64(params)).to_proto(&param));

        if let Some(w) = &layer.weight {
            replace(graph, &layer.name, &w.name, Tensor::new(w.dims.clone(), TensorData::I8(w.values.clone())))?;
        }
        if let Some(b) = &layer.bias {
            replace(graph, &layer.name, &b.name, Tensor::new(b.dims.clone(), TensorData::I32(b.values.clone())))?;
        }
    }

    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        graph.node.extend(before.remove(&i).unwrap_or_default());
        graph.node.push(n);
        graph.node.extend(after.remove(&i).unwrap_or_default());
    }
    Ok((model, quant_of))
}

fn replace(graph: &mut crate::onnx::GraphProto, layer: &str, name: &str, value: Tensor) -> Result<()> {
    if super::consts::replace_constant(graph, name, &value) {
        Ok(())
    } else {
        Err(QuantError::layer(layer, format!("'{name}' is not a constant of the graph")))
    }
}

//! Which layers get quantized (docs/ascend-formats.md §5.1), with a reason for every candidate left in float.
//!
//! Candidates are the default-domain nodes of type Conv, Gemm, MatMul, ConvTranspose and
//! AveragePool. Constraints checked:
//! - Conv: float32 constant weight of rank 3–5 (dilation_d = 1 for 5-D filters); per-channel.
//! - ConvTranspose: float32 constant 4-D weight, all dilations 1; per-channel.
//! - Gemm: transA = 0, float32 constant 2-D B (transB is handled by an offline transpose),
//!   C absent or constant; per-tensor. Choice (the sources are silent): alpha ≠ 1 or beta ≠ 1
//!   stays float, since the int32 bias and deq_scale have no place for them.
//! - MatMul: input 1 a float32 constant of rank 2; per-tensor.
//! - AveragePool: no weight; per-tensor. GlobalAveragePool is a different op type and never
//!   a candidate. Disabled when the model has float16 inputs or weights (§5.1). Choice: only
//!   2-D pools whose windows all divide by the full kernel area (no ceil_mode, no SAME_*
//!   auto_pad, no pads unless count_include_pad = 1), as the int8 layer outputs window sums
//!   and the AscendDequant divides by one area.
//! - Every layer: its data input is not a constant, its weight is not shared with another
//!   node ("layers sharing weights are not quantizable"), and neither its name
//!   (skip_layers) nor its op type (skip_layer_types) is excluded.
//!
//! Constants are initializers or Constant nodes (see [`super::consts`]). float16 weights
//! stay float for now (the ARQ path reads float32).

use std::collections::HashSet;

use super::arq::WeightLayout;
use super::consts::constant;
use super::error::Result;
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, type_proto};
use crate::onnx::{DataType, Graph, NodeExt, node_label};

pub const QUANTIZABLE_TYPES: [&str; 5] = ["Conv", "Gemm", "MatMul", "ConvTranspose", "AveragePool"];

/// A layer that will be quantized: where its weight and bias are and how to quantize them.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    /// Weight tensor (input 1); None for AveragePool.
    pub weight: Option<String>,
    /// Bias tensor (Conv/ConvTranspose input 2, Gemm input C).
    pub bias: Option<String>,
    pub channel_wise: bool,
    pub layout: WeightLayout,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Quantize(QuantLayer),
    Float(String),
}

/// One candidate node and what happens to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub node: usize,
    pub name: String,
    pub op_type: String,
    /// The tensor whose activations are calibrated (input 0).
    pub data_input: String,
    pub decision: Decision,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub candidates: Vec<Candidate>,
    /// skip_layers entries that name no node (to warn about).
    pub unknown_skip_layers: Vec<String>,
}

impl Selection {
    pub fn quantized(&self) -> impl Iterator<Item = (&Candidate, &QuantLayer)> {
        self.candidates.iter().filter_map(|c| match &c.decision {
            Decision::Quantize(q) => Some((c, q)),
            Decision::Float(_) => None,
        })
    }
}

pub fn select_layers(model: &ModelProto, skip_layers: &[String], skip_layer_types: &[String]) -> Result<Selection> {
    let Some(graph) = model.graph.as_ref() else { return Ok(Selection::default()) };
    let view = Graph::new(graph)?;
    let labels: Vec<String> = graph.node.iter().enumerate().map(|(i, n)| node_label(n, i)).collect();
    let known: HashSet<&str> = labels.iter().map(String::as_str).collect();
    let unknown_skip_layers = skip_layers.iter().filter(|s| !known.contains(s.as_str())).cloned().collect();
    let fp16_model = has_fp16(graph, &view);
    let candidates = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| QUANTIZABLE_TYPES.contains(&n.op_type()) && matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .map(|(i, n)| {
            let decision = if skip_layer_types.iter().any(|t| t == n.op_type()) {
                Decision::Float(format!("op type {} is listed in skip_layer_types", n.op_type()))
            } else if skip_layers.contains(&labels[i]) {
                Decision::Float("listed in skip_layers".into())
            } else {
                match check(graph, &view, n, fp16_model) {
                    Ok(q) => Decision::Quantize(q),
                    Err(reason) => Decision::Float(reason),
                }
            };
            Candidate {
                node: i,
                name: labels[i].clone(),
                op_type: n.op_type().to_string(),
                data_input: n.input.first().cloned().unwrap_or_default(),
                decision,
            }
        })
        .collect();
    Ok(Selection { candidates, unknown_skip_layers })
}

/// float16 graph inputs or float16 constant weights of a candidate.
fn has_fp16(graph: &GraphProto, view: &Graph) -> bool {
    let fp16_input = view.real_inputs().any(|v| match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t.elem_type() == DataType::Float16 as i32,
        _ => false,
    });
    fp16_input
        || graph
            .node
            .iter()
            .filter(|n| QUANTIZABLE_TYPES.contains(&n.op_type()))
            .any(|n| n.input.get(1).and_then(|w| constant(graph, w)).is_some_and(|t| t.data_type() == DataType::Float16 as i32))
}

/// Why an AveragePool's windows may average different numbers of values (None: they all
/// use the full kernel area). The int8 layer outputs window sums and the AscendDequant divides
/// by one area, so only constant-divisor pools are quantized.
fn constant_divisor(n: &NodeProto) -> crate::onnx::Result<Option<String>> {
    let kernel = n.attr_ints("kernel_shape", &[])?;
    if kernel.len() != 2 {
        return Ok(Some(format!("AveragePool with kernel_shape {kernel:?}; only 2-D pooling is quantized")));
    }
    let auto_pad = n.attr_s("auto_pad", "NOTSET")?;
    if !matches!(auto_pad.as_str(), "NOTSET" | "" | "VALID") {
        return Ok(Some(format!("AveragePool with auto_pad = {auto_pad} (border windows may be partial)")));
    }
    if n.attr_i("ceil_mode", 0)? != 0 {
        return Ok(Some("AveragePool with ceil_mode = 1 (the last window may be partial)".into()));
    }
    let pads = n.attr_ints("pads", &[])?;
    if auto_pad != "VALID" && n.attr_i("count_include_pad", 0)? == 0 && pads.iter().any(|&p| p != 0) {
        return Ok(Some(format!("AveragePool with count_include_pad = 0 and pads {pads:?} (border windows average fewer values)")));
    }
    Ok(None)
}

fn check(graph: &GraphProto, view: &Graph, n: &NodeProto, fp16_model: bool) -> Result<QuantLayer, String> {
    let attr_err = |e: crate::onnx::OnnxError| e.to_string();
    let data = n.input.first().filter(|s| !s.is_empty()).ok_or("it has no data input")?;
    if constant(graph, data).is_some() {
        return Err(format!("its data input '{data}' is a constant"));
    }
    let op = n.op_type();
    if op == "AveragePool" {
        if fp16_model {
            return Err("the model has float16 inputs or weights, which disables AveragePool quantization".into());
        }
        if let Some(reason) = constant_divisor(n).map_err(attr_err)? {
            return Err(reason);
        }
        return Ok(QuantLayer { weight: None, bias: None, channel_wise: false, layout: WeightLayout::OutChannelFirst });
    }
    let w = n.input.get(1).filter(|s| !s.is_empty()).ok_or("it has no weight input")?;
    let wt = constant(graph, w).ok_or_else(|| format!("its weight '{w}' is not a constant"))?;
    if wt.data_type() != DataType::Float as i32 {
        let dt = DataType::try_from(wt.data_type()).map(|d| d.as_str_name()).unwrap_or("unknown");
        return Err(format!("its weight '{w}' is {dt}, expected FLOAT"));
    }
    if view.consumers(w).len() > 1 {
        return Err(format!("it shares its weight '{w}' with another node"));
    }
    let rank = wt.dims.len();
    let bias = n.input.get(2).filter(|s| !s.is_empty()).cloned();
    if let Some(b) = &bias
        && constant(graph, b).is_none()
    {
        return Err(format!("its bias '{b}' is not a constant"));
    }
    match op {
        "Conv" => {
            if !(3..=5).contains(&rank) {
                return Err(format!("its weight has rank {rank}, expected 3 to 5"));
            }
            if rank == 5 && n.attr_ints("dilations", &[1]).map_err(attr_err)?.first() != Some(&1) {
                return Err("3-D convolution with dilation_d ≠ 1".into());
            }
            Ok(QuantLayer { weight: Some(w.clone()), bias, channel_wise: true, layout: WeightLayout::OutChannelFirst })
        }
        "ConvTranspose" => {
            if rank != 4 {
                return Err(format!("its weight has rank {rank}; only 4-D ConvTranspose filters are quantized"));
            }
            if n.attr_ints("dilations", &[]).map_err(attr_err)?.iter().any(|&d| d != 1) {
                return Err("ConvTranspose with dilation ≠ 1".into());
            }
            let group = n.attr_i("group", 1).map_err(attr_err)?.max(1) as usize;
            Ok(QuantLayer { weight: Some(w.clone()), bias, channel_wise: true, layout: WeightLayout::ConvTranspose { group } })
        }
        "Gemm" => {
            if n.attr_i("transA", 0).map_err(attr_err)? != 0 {
                return Err("Gemm with transA = 1".into());
            }
            let (alpha, beta) = (n.attr_f("alpha", 1.0).map_err(attr_err)?, n.attr_f("beta", 1.0).map_err(attr_err)?);
            if alpha != 1.0 || beta != 1.0 {
                return Err(format!("Gemm with alpha = {alpha}, beta = {beta} (only 1, 1 is quantized)"));
            }
            if rank != 2 {
                return Err(format!("its weight has rank {rank}, expected 2"));
            }
            Ok(QuantLayer { weight: Some(w.clone()), bias, channel_wise: false, layout: WeightLayout::OutChannelFirst })
        }
        _ => {
            // MatMul
            if rank != 2 {
                return Err(format!("its second input '{w}' has rank {rank}; only 2-D constant weights are quantized"));
            }
            Ok(QuantLayer { weight: Some(w.clone()), bias: None, channel_wise: false, layout: WeightLayout::OutChannelFirst })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{ModelProto, TensorProto};
    use crate::onnx::{Tensor, TensorData};

    fn node(op: &str, name: &str, inputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![format!("{name}_out")],
            ..Default::default()
        }
    }

    fn ints(name: &str, v: &[i64]) -> crate::onnx::AttributeProto {
        crate::onnx::AttributeProto {
            name: Some(name.into()),
            r#type: Some(crate::onnx::proto::attribute_proto::AttributeType::Ints as i32),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn int(name: &str, v: i64) -> crate::onnx::AttributeProto {
        crate::onnx::AttributeProto {
            name: Some(name.into()),
            r#type: Some(crate::onnx::proto::attribute_proto::AttributeType::Int as i32),
            i: Some(v),
            ..Default::default()
        }
    }

    fn pool(name: &str, attrs: Vec<crate::onnx::AttributeProto>) -> NodeProto {
        NodeProto { attribute: attrs, ..node("AveragePool", name, &["x"]) }
    }

    fn init(name: &str, dims: &[i64]) -> TensorProto {
        let n = dims.iter().product::<i64>() as usize;
        Tensor::new(dims.to_vec(), TensorData::F32(vec![0.5; n])).to_proto(name)
    }

    #[test]
    fn reasons_for_every_float_layer() {
        let mut gemm_t = node("Gemm", "gemm_ta", &["x", "w_g"]);
        gemm_t.attribute.push(crate::onnx::AttributeProto {
            name: Some("transA".into()),
            r#type: Some(crate::onnx::proto::attribute_proto::AttributeType::Int as i32),
            i: Some(1),
            ..Default::default()
        });
        let graph = GraphProto {
            node: vec![
                node("Conv", "conv_ok", &["x", "w1", "b1"]),
                node("Conv", "conv_dyn", &["x", "x2"]),
                node("Conv", "conv_shared_a", &["x", "w_shared"]),
                node("Conv", "conv_shared_b", &["x", "w_shared"]),
                node("MatMul", "mm_ok", &["x", "w_mm"]),
                node("MatMul", "mm_3d", &["x", "w_3d"]),
                gemm_t,
                pool("pool", vec![ints("kernel_shape", &[2, 2])]),
                node("Conv", "conv_skipped", &["x", "w2"]),
                node("Relu", "relu", &["x"]),
            ],
            initializer: vec![
                init("w1", &[4, 3, 3, 3]),
                init("b1", &[4]),
                init("w_shared", &[4, 3, 1, 1]),
                init("w_mm", &[8, 4]),
                init("w_3d", &[2, 8, 4]),
                init("w_g", &[8, 4]),
                init("w2", &[4, 3, 1, 1]),
            ],
            ..Default::default()
        };
        let model = ModelProto { graph: Some(graph), ..Default::default() };
        let s = select_layers(&model, &["conv_skipped".into(), "nope".into()], &[]).unwrap();
        assert_eq!(s.unknown_skip_layers, vec!["nope".to_string()]);
        let got: Vec<(&str, String)> = s
            .candidates
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    match &c.decision {
                        Decision::Quantize(q) => format!("Q channel_wise={} bias={:?}", q.channel_wise, q.bias),
                        Decision::Float(r) => r.clone(),
                    },
                )
            })
            .collect();
        assert_eq!(got.len(), 9, "{got:?}");
        assert_eq!(got[0], ("conv_ok", "Q channel_wise=true bias=Some(\"b1\")".to_string()));
        assert!(got[1].1.contains("'x2' is not a constant"), "{got:?}");
        assert!(got[2].1.contains("shares its weight") && got[3].1.contains("shares"), "{got:?}");
        assert_eq!(got[4], ("mm_ok", "Q channel_wise=false bias=None".to_string()));
        assert!(got[5].1.contains("rank 3"), "{got:?}");
        assert!(got[6].1.contains("transA"), "{got:?}");
        assert_eq!(got[7].1, "Q channel_wise=false bias=None");
        assert_eq!(got[8].1, "listed in skip_layers");
        let s = select_layers(&model, &[], &["Conv".into()]).unwrap();
        assert!(matches!(&s.candidates[0].decision, Decision::Float(r) if r.contains("skip_layer_types")));
    }

    #[test]
    fn average_pools_without_one_divisor_stay_float() {
        let str_attr = |name: &str, v: &str| crate::onnx::AttributeProto {
            name: Some(name.into()),
            r#type: Some(crate::onnx::proto::attribute_proto::AttributeType::String as i32),
            s: Some(v.as_bytes().to_vec()),
            ..Default::default()
        };
        let k2 = || ints("kernel_shape", &[2, 2]);
        let graph = GraphProto {
            node: vec![
                // PP-OCRv4 rec's p2o.AveragePool.0: 3×2 kernel, stride 3×2, no pads.
                pool("rec_pool", vec![ints("kernel_shape", &[3, 2]), ints("strides", &[3, 2])]),
                pool("padded_incl", vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1]), int("count_include_pad", 1)]),
                pool("padded_excl", vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])]),
                pool("ceil", vec![k2(), int("ceil_mode", 1)]),
                pool("same", vec![k2(), str_attr("auto_pad", "SAME_UPPER"), int("count_include_pad", 1)]),
                pool("valid", vec![k2(), str_attr("auto_pad", "VALID")]),
                pool("one_d", vec![ints("kernel_shape", &[2])]),
            ],
            ..Default::default()
        };
        let model = ModelProto { graph: Some(graph), ..Default::default() };
        let s = select_layers(&model, &[], &[]).unwrap();
        let reason = |i: usize| match &s.candidates[i].decision {
            Decision::Quantize(_) => "Q".to_string(),
            Decision::Float(r) => r.clone(),
        };
        assert_eq!(reason(0), "Q");
        assert_eq!(reason(1), "Q");
        assert!(reason(2).contains("count_include_pad = 0") && reason(2).contains("[1, 1, 1, 1]"), "{}", reason(2));
        assert!(reason(3).contains("ceil_mode = 1"), "{}", reason(3));
        assert!(reason(4).contains("auto_pad = SAME_UPPER"), "{}", reason(4));
        assert_eq!(reason(5), "Q");
        assert!(reason(6).contains("kernel_shape [2]"), "{}", reason(6));
    }
}

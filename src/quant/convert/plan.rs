//! From a QDQ model to the float model plus the quantization of each layer
//! (docs/ascend-formats.md §15): every QuantizeLinear / DequantizeLinear node is accounted
//! for — turned into a layer's AscendQuant and int8 weights, an Add input's
//! AscendQuant → AscendAntiQuant, a trailing AscendQuant, removed (with a warning) in front of
//! ops Ascend runs in float, or refused with an error naming the node.
//!
//! The float model is the QDQ graph without Q/DQ nodes: a layer reads its activation's float
//! tensor again, and each dequantized constant (weight, bias, other) becomes a float32
//! initializer named after the DequantizeLinear output it replaces, so that
//! [`crate::quant::deploy::build_deploy`] can overwrite a weight or bias with its int8 / int32
//! values in place.

use std::collections::{HashMap, HashSet};

use super::ConvertError;
use super::qdq::{self, QParams, QType};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, type_proto};
use crate::onnx::{DataType, Graph, NodeExt, Tensor, TensorData, node_label};
use crate::quant::arq;
use crate::quant::consts::{constant, remove_unused_constants};
use crate::quant::deploy::{QuantConst, QuantizedLayer};
use crate::quant::scale::{ActQuant, deq_scales};

/// The ops ONNX Runtime (and others) write for the operator-oriented quantization format,
/// which has no QDQ pairs to convert.
const QOPERATOR_OPS: [&str; 9] = [
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QLinearAdd",
    "QLinearMul",
    "QGemm",
    "DynamicQuantizeLinear",
    "QLinearAveragePool",
];

/// The layer types an input QDQ and a weight QDQ make an int8 layer of (§15.1).
const LAYER_TYPES: [&str; 4] = ["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// What a DequantizeLinear reads.
#[derive(Debug, Clone)]
enum Source {
    /// A QuantizeLinear of a computed tensor: an activation pair.
    Act { q: usize, x: String, params: QParams },
    /// An integer constant, or a QuantizeLinear of a float constant (`q`): a quantized constant.
    Const { q: Option<usize>, ints: Vec<i32>, dims: Vec<i64>, params: QParams },
}

/// One converted layer as the report shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub name: String,
    pub op_type: String,
    /// The activation pair's nodes, then the weight's (DQ, and Q when the weight was float),
    /// then the bias DQ if any.
    pub source_nodes: Vec<String>,
    pub data_input: String,
    pub activation: QdqParams,
    pub scale_d: f32,
    pub offset_d: i32,
    pub weight: QdqParams,
    pub scale_w: Vec<f32>,
    /// How the int32 bias was obtained.
    pub bias: String,
    pub done: String,
}

/// The Q/DQ parameters as found in the model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QdqParams {
    #[serde(rename = "type")]
    pub qtype: QType,
    pub scale: Vec<f32>,
    pub zero_point: Vec<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<i64>,
}

impl From<&QParams> for QdqParams {
    fn from(p: &QParams) -> Self {
        QdqParams { qtype: p.qtype, scale: p.scale.clone(), zero_point: p.zero_point.clone(), axis: (!p.per_tensor()).then_some(p.axis) }
    }
}

/// An input whose QDQ becomes AscendQuant → AscendAntiQuant (§15.1): an Add input, or the
/// input of a float op that reads the same Q/DQ pair as an int8 layer or an Add.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddQuant {
    /// The node reading the dequantized value.
    pub add: String,
    pub op_type: String,
    /// Its first output: how the node is found again in the deploy graph.
    #[serde(skip)]
    pub add_output: String,
    pub input_index: usize,
    pub tensor: String,
    pub source_nodes: Vec<String>,
    pub scale_d: f32,
    pub offset_d: i32,
    pub activation: QdqParams,
}

impl AddQuant {
    pub fn quant_name(&self) -> String {
        format!("{}.input{}.quant", self.add, self.input_index)
    }
    pub fn anti_quant_name(&self) -> String {
        format!("{}.input{}.anti_quant", self.add, self.input_index)
    }
}

/// A QuantizeLinear at the output of a single-output model: becomes an AscendQuant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrailingQuant {
    pub node: String,
    pub tensor: String,
    pub output: String,
    pub scale_d: f32,
    pub offset_d: i32,
    pub activation: QdqParams,
}

impl TrailingQuant {
    pub fn quant_name(&self) -> String {
        format!("{}.quant", self.node)
    }
}

/// A Q/DQ pair (or a dequantized constant) removed because what reads it runs in float on Ascend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Removed {
    pub source_nodes: Vec<String>,
    pub tensor: String,
    /// "Relu 'relu1'", "graph output 'y'", ...
    pub consumers: Vec<String>,
    pub reason: String,
}

/// The result of the analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub float_model: ModelProto,
    pub layers: Vec<QuantizedLayer>,
    pub layer_info: Vec<LayerInfo>,
    pub adds: Vec<AddQuant>,
    pub trailing: Option<TrailingQuant>,
    /// Activation pairs removed in front of float ops.
    pub removed: Vec<Removed>,
    /// Dequantized constants that are no weight or bias of an int8 layer, folded to float.
    pub folded: Vec<Removed>,
}

fn is_default_domain(n: &NodeProto) -> bool {
    matches!(n.domain.as_deref(), None | Some("") | Some("ai.onnx"))
}

fn is_qdq(n: &NodeProto) -> bool {
    matches!(n.op_type(), "QuantizeLinear" | "DequantizeLinear")
}

fn describe(n: &NodeProto, i: usize) -> String {
    format!("{} '{}'", n.op_type(), node_label(n, i))
}

/// The index along `axis` of every element of a tensor of `dims` (all 0 when per tensor).
fn channel_of(dims: &[i64], axis: i64, per_tensor: bool) -> Vec<usize> {
    let count: usize = dims.iter().map(|&d| d.max(0) as usize).product();
    if per_tensor || dims.is_empty() {
        return vec![0; count];
    }
    let a = if axis < 0 { axis + dims.len() as i64 } else { axis } as usize;
    let inner: usize = dims[a + 1..].iter().map(|&d| d as usize).product();
    let size = dims[a] as usize;
    (0..count).map(|i| (i / inner.max(1)) % size.max(1)).collect()
}

/// Checks a per-channel parameter's axis against the tensor it applies to.
fn check_axis(n: &NodeProto, i: usize, p: &QParams, dims: &[i64]) -> Result<(), ConvertError> {
    if p.per_tensor() {
        return Ok(());
    }
    let rank = dims.len() as i64;
    let a = if p.axis < 0 { p.axis + rank } else { p.axis };
    if a < 0 || a >= rank || dims[a as usize] != p.scale.len() as i64 {
        return Err(ConvertError::node(
            n,
            i,
            format!("has {} scales on axis {}, which does not match the tensor's shape {dims:?}", p.scale.len(), p.axis),
        ));
    }
    Ok(())
}

fn dequantize(ints: &[i32], dims: &[i64], p: &QParams) -> Vec<f32> {
    let ch = channel_of(dims, p.axis, p.per_tensor());
    ints.iter().zip(ch).map(|(&q, c)| (q - p.zero_point[c]) as f32 * p.scale[c]).collect()
}

/// Reads every DequantizeLinear's source.
fn sources(graph: &GraphProto, view: &Graph) -> Result<HashMap<usize, Source>, ConvertError> {
    let mut out = HashMap::new();
    for (i, n) in graph.node.iter().enumerate().filter(|(_, n)| n.op_type() == "DequantizeLinear") {
        let x = n.input.first().filter(|s| !s.is_empty()).ok_or_else(|| ConvertError::node(n, i, "has no input"))?;
        if let Some(t) = constant(graph, x) {
            let params = qdq::read(graph, n, i, Some(t.data_type()))?;
            let decoded = Tensor::from_proto(t).map_err(|e| ConvertError::node(n, i, e.to_string()))?;
            let ints: Vec<i32> = decoded.to_i64_vec().unwrap_or_default().into_iter().map(|v| v as i32).collect();
            check_axis(n, i, &params, &decoded.dims)?;
            out.insert(i, Source::Const { q: None, ints, dims: decoded.dims, params });
            continue;
        }
        let Some(p) = view.producer(x) else {
            return Err(ConvertError::node(
                n,
                i,
                format!(
                    "reads the model input '{x}', which is already quantized; Ascend deploy models take float inputs \
                     (remove the input's quantization or give a float model)"
                ),
            ));
        };
        let q = &graph.node[p];
        if q.op_type() != "QuantizeLinear" {
            return Err(ConvertError::node(
                n,
                i,
                format!("reads '{x}' from {}; expected a QuantizeLinear or an integer constant", describe(q, p)),
            ));
        }
        let q_params = qdq::read(graph, q, p, None)?;
        let params = qdq::read(graph, n, i, Some(q_params.qtype.onnx_type()))?;
        if !params.same_as(&q_params) {
            return Err(ConvertError::node(
                n,
                i,
                format!(
                    "is paired with QuantizeLinear '{}' but their parameters differ ({} vs {}); a Q/DQ pair must carry \
                     the same scale and zero point",
                    q_params.node,
                    params.describe(),
                    q_params.describe()
                ),
            ));
        }
        let qx = q.input.first().cloned().unwrap_or_default();
        match constant(graph, &qx) {
            Some(t) => {
                let decoded = Tensor::from_proto(t).map_err(|e| ConvertError::node(q, p, e.to_string()))?;
                let TensorData::F32(w) = &decoded.data else {
                    return Err(ConvertError::node(q, p, format!("quantizes the constant '{qx}', which is not FLOAT")));
                };
                check_axis(q, p, &params, &decoded.dims)?;
                let ch = channel_of(&decoded.dims, params.axis, params.per_tensor());
                let ints = w.iter().zip(ch).map(|(&v, c)| qdq::quantize(v, params.scale[c], params.zero_point[c], params.qtype)).collect();
                out.insert(i, Source::Const { q: Some(p), ints, dims: decoded.dims, params });
            }
            None => {
                out.insert(i, Source::Act { q: p, x: qx, params });
            }
        }
    }
    Ok(out)
}

/// What happens to one input edge of a non-Q/DQ node that reads a DequantizeLinear.
#[derive(Debug, Clone)]
enum Edge {
    /// Read the float tensor instead (activation pair removed, or a layer's / Add's data input
    /// that gets its AscendQuant later).
    Float(String),
    /// Read a float initializer with the dequantized (or layer-quantized) values, under the
    /// DequantizeLinear output's name.
    Constant,
}

pub fn analyse(model: &ModelProto) -> Result<Analysis, ConvertError> {
    let graph = model.graph.as_ref().ok_or(crate::quant::QuantError::NoGraph)?;
    let view = Graph::new(graph)?;
    for (i, n) in graph.node.iter().enumerate() {
        if QOPERATOR_OPS.contains(&n.op_type()) {
            return Err(ConvertError::node(
                n,
                i,
                "is an operator-oriented quantized op (QOperator format); convert takes QDQ models: export with \
                 QuantizeLinear/DequantizeLinear around float ops (ONNX Runtime: quant_format=QuantFormat.QDQ)",
            ));
        }
        if is_qdq(n) && !is_default_domain(n) {
            // qdq::read words the refusal.
            qdq::read(graph, n, i, None)?;
        }
    }
    let src = sources(graph, &view)?;
    let dq_of = |tensor: &str| -> Option<usize> {
        view.producer(tensor).filter(|&p| graph.node[p].op_type() == "DequantizeLinear" && is_default_domain(&graph.node[p]))
    };
    // The float tensor behind an activation DQ output (through chained pairs).
    let float_of = |mut tensor: String| -> String {
        for _ in 0..graph.node.len() {
            match dq_of(&tensor).and_then(|d| src.get(&d)) {
                Some(Source::Act { x, .. }) => tensor = x.clone(),
                _ => break,
            }
        }
        tensor
    };

    // Every QuantizeLinear: paired, trailing, or an error.
    let graph_outputs: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    let mut trailing = None;
    for (i, n) in graph.node.iter().enumerate().filter(|(_, n)| n.op_type() == "QuantizeLinear") {
        let y = n.output.first().cloned().unwrap_or_default();
        let readers = view.consumers(&y);
        if let Some(&(c, _)) = readers.iter().find(|(c, _)| graph.node[*c].op_type() != "DequantizeLinear") {
            return Err(ConvertError::node(
                n,
                i,
                format!("its output is read by {}; expected only DequantizeLinear nodes (a Q/DQ pair)", describe(&graph.node[c], c)),
            ));
        }
        let is_output = graph_outputs.contains(&y.as_str());
        if readers.is_empty() && !is_output {
            continue; // dead node: dropped with the rest of the QDQ nodes
        }
        if is_output {
            if !readers.is_empty() || graph.output.len() != 1 {
                return Err(ConvertError::node(
                    n,
                    i,
                    format!(
                        "its output '{y}' is a model output; a trailing QuantizeLinear is converted (to AscendQuant) only \
                         when it is the only output of the model and nothing else reads it (the model has {} outputs)",
                        graph.output.len()
                    ),
                ));
            }
            let p = qdq::read(graph, n, i, None)?;
            let x = n.input.first().cloned().unwrap_or_default();
            if constant(graph, &x).is_some() {
                return Err(ConvertError::node(n, i, format!("quantizes the constant '{x}' straight into the model output")));
            }
            if !p.per_tensor() {
                return Err(per_channel_activation(n, i, &p));
            }
            trailing = Some(TrailingQuant {
                node: node_label(n, i),
                tensor: float_of(x),
                output: y,
                scale_d: p.scale[0],
                offset_d: p.zero_point[0] + p.qtype.to_int8_shift(),
                activation: (&p).into(),
            });
        }
    }

    // Layers: an activation pair on input 0 and a quantized constant on input 1.
    let mut edges: HashMap<(usize, usize), Edge> = HashMap::new();
    let mut new_constants: Vec<(String, Vec<i64>, Vec<f32>)> = Vec::new();
    let mut layer_plans: Vec<(usize, QuantizedLayer, LayerInfo)> = Vec::new();
    let mut removed_edges: Vec<(usize, String)> = Vec::new(); // (dq, consumer description)
    let mut folded_edges: Vec<(usize, String)> = Vec::new();
    let mut claimed_weights: HashSet<usize> = HashSet::new();
    for (i, n) in graph.node.iter().enumerate() {
        if !LAYER_TYPES.contains(&n.op_type()) || !is_default_domain(n) {
            continue;
        }
        let act = n.input.first().and_then(|t| dq_of(t)).filter(|d| matches!(src.get(d), Some(Source::Act { .. })));
        let wt = n.input.get(1).and_then(|t| dq_of(t)).filter(|d| matches!(src.get(d), Some(Source::Const { .. })));
        let (Some(act), Some(wt)) = (act, wt) else { continue };
        let Some(Source::Act { q: act_q, x, params: ap }) = src.get(&act) else { unreachable!() };
        let Some(Source::Const { q: w_q, ints, dims, params: wp }) = src.get(&wt) else { unreachable!() };
        let name = node_label(n, i);
        if !ap.per_tensor() {
            return Err(per_channel_activation(&graph.node[act], act, ap));
        }
        if !claimed_weights.insert(wt) || view.consumers(&n.input[1]).len() > 1 {
            return Err(ConvertError::node(
                n,
                i,
                format!("shares its quantized weight '{}' with another node; Ascend does not quantize layers sharing weights", n.input[1]),
            ));
        }
        let (weight, scale_w, clear_trans_b) = layer_weights(n, i, &graph.node[wt], wt, ints, dims, wp)?;
        let act_quant = ActQuant { scale: ap.scale[0], offset: ap.zero_point[0] + ap.qtype.to_int8_shift() };
        let mut source_nodes = vec![node_label(&graph.node[*act_q], *act_q), node_label(&graph.node[act], act)];
        source_nodes.extend(w_q.map(|q| node_label(&graph.node[q], q)));
        source_nodes.push(node_label(&graph.node[wt], wt));
        let w_name = n.input[1].clone();
        edges.insert((i, 0), Edge::Float(float_of(x.clone())));
        edges.insert((i, 1), Edge::Constant);
        new_constants.push((w_name.clone(), dims.clone(), dequantize(ints, dims, wp)));
        // Bias (Conv / ConvTranspose input 2, Gemm C).
        let (bias, bias_how) = match n.input.get(2).filter(|s| !s.is_empty() && n.op_type() != "MatMul") {
            None => (None, "none".to_string()),
            Some(b) => {
                let (dims, values, how) = layer_bias(graph, &src, n, i, b, &act_quant, &scale_w, &mut source_nodes, &dq_of)?;
                if dq_of(b).is_some() {
                    edges.insert((i, 2), Edge::Constant);
                    let float: Vec<f32> = match dq_of(b).and_then(|d| src.get(&d)) {
                        Some(Source::Const { ints, dims, params, .. }) => dequantize(ints, dims, params),
                        _ => unreachable!("layer_bias checked the DQ"),
                    };
                    new_constants.push((b.clone(), dims.clone(), float));
                }
                (Some(QuantConst { name: b.clone(), dims, values }), how)
            }
        };
        let dims_w = weight.dims.clone();
        let info = LayerInfo {
            name: name.clone(),
            op_type: n.op_type().to_string(),
            source_nodes,
            data_input: float_of(x.clone()),
            activation: ap.into(),
            scale_d: act_quant.scale,
            offset_d: act_quant.offset,
            weight: wp.into(),
            scale_w: scale_w.clone(),
            bias: bias_how,
            done: format!(
                "AscendQuant → int8 {} (weight {dims_w:?}{}) → AscendDequant",
                n.op_type(),
                if clear_trans_b { ", transposed offline, transB = 0" } else { "" }
            ),
        };
        let layer = QuantizedLayer { node: i, name, act: act_quant, scale_w, weight: Some(weight), bias, clear_trans_b, bias_add: None };
        layer_plans.push((i, layer, info));
    }

    // Adds, and every other reader of a DQ output. A float op reading a pair that also feeds
    // an int8 layer or an Add gets its own AscendQuant → AscendAntiQuant (the dequantized
    // values the QDQ model gives it, as AMCT's MultQuantOptimizer); a pair read only by float
    // ops is removed.
    let int8_use: HashSet<usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.input.iter().enumerate().map(move |(slot, t)| (i, slot, t)))
        .filter(|(i, slot, t)| {
            let n = &graph.node[*i];
            matches!(edges.get(&(*i, *slot)), Some(Edge::Float(_))) || (n.op_type() == "Add" && is_default_domain(n) && dq_of(t).is_some())
        })
        .filter_map(|(_, _, t)| dq_of(t))
        .filter(|d| matches!(src.get(d), Some(Source::Act { .. })))
        .collect();
    let mut adds = Vec::new();
    for (i, n) in graph.node.iter().enumerate().filter(|(_, n)| !(is_qdq(n) && is_default_domain(n))) {
        for (slot, t) in n.input.iter().enumerate() {
            if edges.contains_key(&(i, slot)) {
                continue;
            }
            let Some(d) = dq_of(t) else { continue };
            match &src[&d] {
                Source::Act { q, x, params } => {
                    if (n.op_type() == "Add" && is_default_domain(n)) || int8_use.contains(&d) {
                        if !params.per_tensor() {
                            return Err(per_channel_activation(&graph.node[d], d, params));
                        }
                        adds.push(AddQuant {
                            add: node_label(n, i),
                            op_type: n.op_type().to_string(),
                            add_output: n.output.first().cloned().unwrap_or_default(),
                            input_index: slot,
                            tensor: float_of(x.clone()),
                            source_nodes: vec![node_label(&graph.node[*q], *q), node_label(&graph.node[d], d)],
                            scale_d: params.scale[0],
                            offset_d: params.zero_point[0] + params.qtype.to_int8_shift(),
                            activation: params.into(),
                        });
                    } else {
                        removed_edges.push((d, float_reader(graph, n, i)));
                    }
                    edges.insert((i, slot), Edge::Float(float_of(x.clone())));
                }
                Source::Const { ints, dims, params, .. } => {
                    if params.qtype == QType::Int32 && LAYER_TYPES.contains(&n.op_type()) && slot == 2 {
                        folded_edges.push((d, format!("the bias of float {}", describe(n, i))));
                    } else {
                        folded_edges.push((d, float_reader(graph, n, i)));
                    }
                    edges.insert((i, slot), Edge::Constant);
                    if !new_constants.iter().any(|(name, _, _)| name == t) {
                        new_constants.push((t.clone(), dims.clone(), dequantize(ints, dims, params)));
                    }
                }
            }
        }
    }
    // DQ outputs that are model outputs.
    let mut identities = Vec::new();
    for o in &graph.output {
        let Some(d) = dq_of(o.name()) else { continue };
        match &src[&d] {
            Source::Act { x, .. } => {
                removed_edges.push((d, format!("model output '{}'", o.name())));
                identities.push((float_of(x.clone()), o.name().to_string(), format!("{}.removed", node_label(&graph.node[d], d))));
            }
            Source::Const { ints, dims, params, .. } => {
                folded_edges.push((d, format!("model output '{}'", o.name())));
                new_constants.push((o.name().to_string(), dims.clone(), dequantize(ints, dims, params)));
            }
        }
    }

    // The float model.
    let mut float_model = model.clone();
    let fg = float_model.graph.as_mut().expect("checked");
    let mut index_map = vec![usize::MAX; fg.node.len()];
    let mut kept = Vec::with_capacity(fg.node.len());
    let qdq_outputs: HashSet<String> =
        fg.node.iter().filter(|n| is_qdq(n) && is_default_domain(n)).flat_map(|n| n.output.iter().cloned()).collect();
    for (i, mut n) in std::mem::take(&mut fg.node).into_iter().enumerate() {
        if is_qdq(&n) && is_default_domain(&n) {
            continue;
        }
        for (slot, t) in n.input.iter_mut().enumerate() {
            if let Some(Edge::Float(x)) = edges.get(&(i, slot)) {
                *t = x.clone();
            }
        }
        index_map[i] = kept.len();
        kept.push(n);
    }
    for (x, y, name) in identities {
        kept.push(crate::onnx::build::node("Identity", &name, &[&x], &[&y], vec![]));
    }
    fg.node = kept;
    fg.value_info.retain(|v| !qdq_outputs.contains(v.name()));
    for (name, dims, values) in new_constants {
        fg.initializer.push(Tensor::new(dims, TensorData::F32(values)).to_proto(&name));
    }
    remove_unused_constants(fg);

    let mut layers = Vec::new();
    let mut layer_info = Vec::new();
    for (old, mut layer, info) in layer_plans {
        layer.node = index_map[old];
        layers.push(layer);
        layer_info.push(info);
    }
    Ok(Analysis {
        float_model,
        layers,
        layer_info,
        adds,
        trailing,
        removed: group_removals(graph, &src, removed_edges, "Ascend runs these ops in float (fp16); the pair is dropped"),
        folded: group_removals(graph, &src, folded_edges, "not the weight or bias of an int8 layer: folded into a float constant"),
    })
}

fn per_channel_activation(n: &NodeProto, i: usize, p: &QParams) -> ConvertError {
    ConvertError::node(
        n,
        i,
        format!(
            "quantizes an activation per channel ({} scales on axis {}); Ascend's AscendQuant has one scale and offset \
             per tensor (only weights may be per channel)",
            p.scale.len(),
            p.axis
        ),
    )
}

/// "Relu 'r1'", or for a layer that stays float, why.
fn float_reader(graph: &GraphProto, n: &NodeProto, i: usize) -> String {
    let why = match n.op_type() {
        "MatMul" if n.input.get(1).is_some_and(|w| constant(graph, w).is_none()) => {
            " (two computed inputs: Ascend quantizes MatMul only with a constant weight)"
        }
        "Conv" | "ConvTranspose" | "Gemm" | "MatMul" => " (its weight has no QDQ: the layer stays float)",
        _ => "",
    };
    format!("{}{why}", describe(n, i))
}

/// One entry per DequantizeLinear, listing what read it.
fn group_removals(graph: &GraphProto, src: &HashMap<usize, Source>, edges: Vec<(usize, String)>, reason: &str) -> Vec<Removed> {
    let mut out: Vec<(usize, Removed)> = Vec::new();
    for (d, consumer) in edges {
        if let Some((_, r)) = out.iter_mut().find(|(k, _)| *k == d) {
            if !r.consumers.contains(&consumer) {
                r.consumers.push(consumer);
            }
            continue;
        }
        let dq = &graph.node[d];
        let (mut source_nodes, tensor) = match &src[&d] {
            Source::Act { q, x, .. } => (vec![node_label(&graph.node[*q], *q)], x.clone()),
            Source::Const { q, .. } => {
                (q.map(|q| vec![node_label(&graph.node[q], q)]).unwrap_or_default(), dq.input.first().cloned().unwrap_or_default())
            }
        };
        source_nodes.push(node_label(dq, d));
        out.push((d, Removed { source_nodes, tensor, consumers: vec![consumer], reason: reason.to_string() }));
    }
    out.sort_by_key(|(d, _)| *d);
    out.into_iter().map(|(_, r)| r).collect()
}

/// The int8 weight (in the layout the deploy model stores it), one scale per output channel
/// (or one), and whether Gemm's transB was folded into the weight.
fn layer_weights(
    n: &NodeProto,
    i: usize,
    dq: &NodeProto,
    d: usize,
    ints: &[i32],
    dims: &[i64],
    p: &QParams,
) -> Result<(QuantConst<i8>, Vec<f32>, bool), ConvertError> {
    let attr = |e: crate::onnx::OnnxError| ConvertError::node(n, i, e.to_string());
    let op = n.op_type();
    if p.qtype == QType::Int32 {
        return Err(ConvertError::node(dq, d, "dequantizes an INT32 constant as a weight; weights must be INT8 (or UINT8)"));
    }
    // Symmetric weights only: int8 with zero point 0, or uint8 with 128 (the same values).
    let want = if p.qtype == QType::Uint8 { 128 } else { 0 };
    if let Some(z) = p.zero_point.iter().find(|&&z| z != want) {
        return Err(ConvertError::node(
            dq,
            d,
            format!(
                "quantizes the weight of {} with zero point {z}; Ascend int8 weights are symmetric (zero point 0 for \
                 INT8, 128 for UINT8; offset_w = 0)",
                describe(n, i)
            ),
        ));
    }
    let rank = dims.len();
    let wrong_rank =
        |want: &str| ConvertError::node(n, i, format!("its quantized weight has rank {rank}; Ascend quantizes {op} with {want}"));
    let per_tensor_only = |what: &str| {
        ConvertError::node(
            dq,
            d,
            format!(
                "quantizes the weight of {} per channel ({}); Ascend quantizes {what} weights per tensor only: re-export \
                 with one weight scale (ONNX Runtime: per_channel=False)",
                describe(n, i),
                p.describe()
            ),
        )
    };
    let axis = if p.axis < 0 { p.axis + rank as i64 } else { p.axis };
    let mut values: Vec<i8> = ints.iter().map(|&q| (q + p.qtype.to_int8_shift()) as i8).collect();
    let mut dims = dims.to_vec();
    let mut clear_trans_b = false;
    let scale_w = match op {
        "Conv" => {
            if !(3..=5).contains(&rank) {
                return Err(wrong_rank("a 3-D to 5-D weight"));
            }
            if !p.per_tensor() && axis != 0 {
                return Err(ConvertError::node(
                    dq,
                    d,
                    format!("quantizes a Conv weight per channel on axis {}; expected axis 0 (output channels)", p.axis),
                ));
            }
            p.scale.clone()
        }
        "ConvTranspose" => {
            if rank != 4 {
                return Err(wrong_rank("a 4-D weight"));
            }
            if n.attr_ints("dilations", &[]).map_err(attr)?.iter().any(|&v| v != 1) {
                return Err(ConvertError::node(n, i, "ConvTranspose with dilations other than 1 cannot be quantized on Ascend"));
            }
            let group = n.attr_i("group", 1).map_err(attr)?.max(1) as usize;
            if p.per_tensor() {
                p.scale.clone()
            } else if axis != 1 {
                return Err(ConvertError::node(
                    dq,
                    d,
                    format!("quantizes a ConvTranspose weight per channel on axis {}; expected axis 1 (output channels)", p.axis),
                ));
            } else {
                // [C_in, C_out/group, k…]: output channel g·(C_out/group) + j has scale[j].
                (0..group).flat_map(|_| p.scale.iter().copied()).collect()
            }
        }
        "Gemm" => {
            if n.attr_i("transA", 0).map_err(attr)? != 0 {
                return Err(ConvertError::node(n, i, "Gemm with transA = 1 cannot be quantized on Ascend (transA must be 0)"));
            }
            let (alpha, beta) = (n.attr_f("alpha", 1.0).map_err(attr)?, n.attr_f("beta", 1.0).map_err(attr)?);
            if alpha != 1.0 || beta != 1.0 {
                return Err(ConvertError::node(n, i, format!("Gemm with alpha = {alpha}, beta = {beta}; only 1 and 1 are quantized")));
            }
            if rank != 2 {
                return Err(wrong_rank("a 2-D weight"));
            }
            if !p.per_tensor() {
                return Err(per_tensor_only("Gemm"));
            }
            if n.attr_i("transB", 0).map_err(attr)? != 0 {
                // Offline transpose [N, K] → [K, N] (§2.3); the node gets transB = 0.
                let (rows, cols) = (dims[0] as usize, dims[1] as usize);
                values = (0..cols).flat_map(|k| (0..rows).map(move |r| r * cols + k)).map(|idx| values[idx]).collect();
                dims = vec![cols as i64, rows as i64];
                clear_trans_b = true;
            }
            p.scale.clone()
        }
        _ => {
            if rank != 2 {
                return Err(wrong_rank("a 2-D constant weight"));
            }
            if !p.per_tensor() {
                return Err(per_tensor_only("MatMul"));
            }
            p.scale.clone()
        }
    };
    Ok((QuantConst { name: n.input[1].clone(), dims, values }, scale_w, clear_trans_b))
}

/// The int32 bias: taken as is from a DequantizeLinear of INT32 whose scale is
/// scale_d·scale_w[c] (as ONNX Runtime writes it), else quantized from its float value (§2.3).
#[allow(clippy::too_many_arguments)]
fn layer_bias(
    graph: &GraphProto,
    src: &HashMap<usize, Source>,
    n: &NodeProto,
    i: usize,
    b: &str,
    act: &ActQuant,
    scale_w: &[f32],
    source_nodes: &mut Vec<String>,
    dq_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<(Vec<i64>, Vec<i32>, String), ConvertError> {
    let name = node_label(n, i);
    if let Some(d) = dq_of(b) {
        let dq = &graph.node[d];
        source_nodes.push(node_label(dq, d));
        let Some(Source::Const { ints, dims, params, .. }) = src.get(&d) else {
            return Err(ConvertError::node(
                dq,
                d,
                format!("quantizes the bias of {} from a computed tensor; the bias must be a constant", describe(n, i)),
            ));
        };
        let deq = deq_scales(act.scale, scale_w);
        let count = ints.len();
        let matches = params.qtype == QType::Int32
            && params.zero_point.iter().all(|&z| z == 0)
            && (deq.len() == 1 || deq.len() == count)
            && (0..count).all(|c| {
                let s = params.scale[if params.per_tensor() { 0 } else { c }];
                s.to_bits() == deq[if deq.len() == 1 { 0 } else { c }].to_bits()
            });
        if matches {
            return Ok((dims.clone(), ints.clone(), format!("INT32 from '{}' (scale = scale_d·scale_w)", node_label(dq, d))));
        }
        let float = dequantize(ints, dims, params);
        let values = arq::quantize_bias(&name, &float, act.scale, scale_w)?;
        return Ok((dims.clone(), values, format!("requantized from '{}' (its scale is not scale_d·scale_w)", node_label(dq, d))));
    }
    let t = constant(graph, b).ok_or_else(|| ConvertError::node(n, i, format!("its bias '{b}' is not a constant")))?;
    let decoded = Tensor::from_proto(t).map_err(|e| ConvertError::node(n, i, e.to_string()))?;
    let TensorData::F32(v) = &decoded.data else {
        let dt = DataType::try_from(t.data_type()).map(|d| d.as_str_name()).unwrap_or("unknown");
        return Err(ConvertError::node(n, i, format!("its bias '{b}' is {dt}; expected FLOAT or a DequantizeLinear of INT32")));
    };
    let values = arq::quantize_bias(&name, v, act.scale, scale_w)?;
    Ok((decoded.dims.clone(), values, "float bias quantized to INT32 with scale_d·scale_w".into()))
}

/// Sets the element type of graph output `name` (a trailing AscendQuant makes it INT8).
pub fn set_output_type(graph: &mut GraphProto, name: &str, dtype: DataType) {
    for o in graph.output.iter_mut().filter(|o| o.name() == name) {
        if let Some(type_proto::Value::TensorType(t)) = o.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = Some(dtype as i32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_follow_the_axis() {
        assert_eq!(channel_of(&[2, 3], 0, false), [0, 0, 0, 1, 1, 1]);
        assert_eq!(channel_of(&[2, 3], 1, false), [0, 1, 2, 0, 1, 2]);
        assert_eq!(channel_of(&[2, 3], -1, false), [0, 1, 2, 0, 1, 2]);
        assert_eq!(channel_of(&[2, 3], 1, true), [0; 6]);
        // ConvTranspose [C_in, C_out/group, k]: axis 1.
        assert_eq!(channel_of(&[2, 2, 2], 1, false), [0, 0, 1, 1, 0, 0, 1, 1]);
    }
}

//! Conv + BatchNormalization folding (docs/ascend-formats.md §5.2), done before quantization so the folded
//! weights are what ARQ sees (AMCT's `do_fusion`, default on).
//!
//! `w'[c] = w[c] · γ[c]/√(σ²[c] + ε)`, `b'[c] = (b[c] − μ[c]) · γ[c]/√(σ²[c] + ε) + β[c]`
//! (b = 0 without a bias), computed in f64 and stored as f32. The Conv then writes the BN's
//! output tensor and the BN node disappears.
//!
//! A BN is folded only when: it follows a Conv (only `Conv → BatchNormalization` is fused,
//! §5.2), the Conv output feeds nothing but this BN and is not a graph output, the BN is in
//! inference mode with a single output, the Conv weight / bias and the four BN parameters
//! are float32 constants (initializers or Constant nodes) of matching length, the Conv
//! weight and bias are not shared with another node, and neither node's name is in
//! `skip_fusion_layers`. Every BN left alone gets a reason.

use std::collections::HashSet;

use super::consts::{constant_f32, remove_unused_constants, replace_constant, used_names};
use super::error::Result;
use crate::onnx::proto::{GraphProto, ModelProto};
use crate::onnx::{Graph, NodeExt, Tensor, TensorData, node_label};

/// What folding did: the (Conv, BN) pairs folded and every BN kept with its reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldReport {
    pub folded: Vec<(String, String)>,
    pub kept: Vec<(String, String)>,
}

/// A planned fold: node indices and the new Conv parameters.
struct Plan {
    conv: usize,
    bn: usize,
    weight: (String, Tensor),
    bias: (Option<String>, Tensor),
}

/// Folds every eligible BatchNormalization of the main graph into its Conv.
pub fn fold_batch_norms(model: &mut ModelProto, skip_fusion_layers: &[String]) -> Result<FoldReport> {
    let Some(graph) = model.graph.as_mut() else { return Ok(FoldReport::default()) };
    let skip: HashSet<&str> = skip_fusion_layers.iter().map(String::as_str).collect();
    let mut report = FoldReport::default();
    let mut plans = Vec::new();
    {
        let view = Graph::new(graph)?;
        let used_in_subgraphs = subgraph_reads(graph);
        for (bi, bn) in graph.node.iter().enumerate().filter(|(_, n)| n.op_type() == "BatchNormalization") {
            let bn_label = node_label(bn, bi);
            match plan_fold(graph, &view, bi, &skip, &used_in_subgraphs) {
                Ok(plan) => {
                    report.folded.push((node_label(&graph.node[plan.conv], plan.conv), bn_label));
                    plans.push(plan);
                }
                Err(reason) => report.kept.push((bn_label, reason)),
            }
        }
    }
    apply(graph, plans);
    Ok(report)
}

/// Tensor names read inside subgraphs (captured from the outer scope).
fn subgraph_reads(graph: &GraphProto) -> HashSet<String> {
    let mut names = HashSet::new();
    for n in &graph.node {
        for a in &n.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                names.extend(used_names(g));
            }
        }
    }
    names
}

fn plan_fold(graph: &GraphProto, view: &Graph, bi: usize, skip: &HashSet<&str>, captured: &HashSet<String>) -> Result<Plan, String> {
    let bn = &graph.node[bi];
    let x = bn.input.first().filter(|s| !s.is_empty()).ok_or("it has no data input")?;
    let ci = view.producer(x).ok_or_else(|| format!("its input '{x}' is not produced by a Conv"))?;
    let conv = &graph.node[ci];
    if conv.op_type() != "Conv" {
        return Err(format!("it follows {} '{}' (only Conv → BatchNormalization is fused)", conv.op_type(), node_label(conv, ci)));
    }
    let conv_label = node_label(conv, ci);
    if skip.contains(conv_label.as_str()) || skip.contains(node_label(bn, bi).as_str()) {
        return Err("listed in skip_fusion_layers".into());
    }
    if view.consumers(x).len() != 1 || view.outputs().iter().any(|o| o.name() == x) || captured.contains(x) {
        return Err(format!("the output '{x}' of Conv '{conv_label}' has other consumers"));
    }
    if bn.attr_i("training_mode", 0).unwrap_or(1) != 0 || bn.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err("it is in training mode (running statistics are outputs)".into());
    }
    let eps = bn.attr_f("epsilon", 1e-5).map_err(|e| e.to_string())? as f64;
    let param = |slot: usize, what: &str| -> Result<Vec<f32>, String> {
        let name = bn.input.get(slot).filter(|s| !s.is_empty()).ok_or_else(|| format!("its {what} input is missing"))?;
        constant_f32(graph, name).map(|(_, v)| v).ok_or_else(|| format!("its {what} '{name}' is not a float32 constant"))
    };
    let (gamma, beta, mean, var) = (param(1, "scale")?, param(2, "B")?, param(3, "mean")?, param(4, "var")?);

    let w_name = conv.input.get(1).filter(|s| !s.is_empty()).ok_or("the Conv has no weight")?;
    let (w_dims, w) = constant_f32(graph, w_name).ok_or_else(|| format!("the Conv weight '{w_name}' is not a float32 constant"))?;
    if view.consumers(w_name).len() != 1 {
        return Err(format!("the Conv weight '{w_name}' is shared with other nodes"));
    }
    let channels = *w_dims.first().ok_or("the Conv weight is a scalar")? as usize;
    if [&gamma, &beta, &mean, &var].iter().any(|p| p.len() != channels) {
        return Err(format!("its parameters do not have one value per Conv output channel ({channels})"));
    }
    let bias_name = conv.input.get(2).filter(|s| !s.is_empty()).cloned();
    let bias = match &bias_name {
        Some(b) => {
            if view.consumers(b).len() != 1 {
                return Err(format!("the Conv bias '{b}' is shared with other nodes"));
            }
            let (_, v) = constant_f32(graph, b).ok_or_else(|| format!("the Conv bias '{b}' is not a float32 constant"))?;
            if v.len() != channels {
                return Err(format!("the Conv bias '{b}' has {} values for {channels} channels", v.len()));
            }
            v
        }
        None => vec![0.0; channels],
    };
    let factor: Vec<f64> = (0..channels).map(|c| gamma[c] as f64 / (var[c] as f64 + eps).sqrt()).collect();
    let per_channel = w.len() / channels.max(1);
    let new_w: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (v as f64 * factor[i / per_channel]) as f32).collect();
    let new_b: Vec<f32> = (0..channels).map(|c| ((bias[c] as f64 - mean[c] as f64) * factor[c] + beta[c] as f64) as f32).collect();
    Ok(Plan {
        conv: ci,
        bn: bi,
        weight: (w_name.clone(), Tensor::new(w_dims, TensorData::F32(new_w))),
        bias: (bias_name, Tensor::new(vec![channels as i64], TensorData::F32(new_b))),
    })
}

fn apply(graph: &mut GraphProto, plans: Vec<Plan>) {
    if plans.is_empty() {
        return;
    }
    let mut existing: HashSet<String> = graph.node.iter().flat_map(|n| n.output.iter().cloned()).collect();
    existing.extend(graph.initializer.iter().map(|t| t.name().to_string()));
    existing.extend(graph.input.iter().map(|t| t.name().to_string()));
    let mut removed_bn = HashSet::new();
    let mut renamed = HashSet::new();
    for plan in plans {
        replace_constant(graph, &plan.weight.0, &plan.weight.1);
        let bias_name = match plan.bias.0 {
            Some(name) => {
                replace_constant(graph, &name, &plan.bias.1);
                name
            }
            None => {
                let base = format!("{}.bn_fused_bias", node_label(&graph.node[plan.conv], plan.conv));
                let name =
                    (0..).map(|k| if k == 0 { base.clone() } else { format!("{base}.{k}") }).find(|n| !existing.contains(n)).unwrap();
                existing.insert(name.clone());
                graph.initializer.push(plan.bias.1.to_proto(&name));
                name
            }
        };
        let bn_out = graph.node[plan.bn].output[0].clone();
        let conv = &mut graph.node[plan.conv];
        conv.input.resize(2, String::new());
        conv.input.push(bias_name);
        renamed.insert(std::mem::replace(&mut conv.output[0], bn_out));
        removed_bn.insert(plan.bn);
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        !removed_bn.contains(&(i - 1))
    });
    graph.value_info.retain(|v| !renamed.contains(v.name()));
    remove_unused_constants(graph);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::proto::{AttributeProto, NodeProto};

    fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn constant_node(name: &str, dims: &[i64], v: Vec<f32>) -> NodeProto {
        let mut n = node("Constant", &format!("{name}_const"), &[], &[name]);
        n.attribute.push(AttributeProto {
            name: Some("value".into()),
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(Tensor::new(dims.to_vec(), TensorData::F32(v)).to_proto(name)),
            ..Default::default()
        });
        n
    }

    /// x → Conv(w as Constant node, no bias) → BN(params as initializers) → y
    fn conv_bn(extra_consumer: bool) -> ModelProto {
        let mut nodes = vec![
            constant_node("w", &[2, 1, 1, 1], vec![2.0, -1.0]),
            node("Conv", "conv", &["x", "w"], &["c"]),
            node("BatchNormalization", "bn", &["c", "g", "b", "m", "v"], &["y"]),
        ];
        if extra_consumer {
            nodes.push(node("Relu", "relu", &["c"], &["r"]));
        }
        let init = |n: &str, v: Vec<f32>| Tensor::new(vec![2], TensorData::F32(v)).to_proto(n);
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                initializer: vec![
                    init("g", vec![1.0, 3.0]),
                    init("b", vec![0.5, 0.0]),
                    init("m", vec![1.0, -2.0]),
                    init("v", vec![4.0, 0.25]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn folds_weights_and_bias() {
        let mut m = conv_bn(false);
        let report = fold_batch_norms(&mut m, &[]).unwrap();
        assert_eq!(report.folded, vec![("conv".to_string(), "bn".to_string())]);
        let g = m.graph.as_ref().unwrap();
        assert_eq!(g.node.iter().map(|n| n.op_type()).collect::<Vec<_>>(), vec!["Constant", "Conv"]);
        assert_eq!(g.node[1].output, vec!["y"]);
        // ε = 1e-5 (the f32 attribute default): factor0 = 1/√(4 + ε), factor1 = 3/√(0.25 + ε)
        let eps = 1e-5f32 as f64;
        let f = [1.0 / (4.0 + eps).sqrt(), 3.0 / (0.25 + eps).sqrt()];
        let (_, w) = constant_f32(g, "w").unwrap();
        assert_eq!(w, vec![(2.0 * f[0]) as f32, (-f[1]) as f32]);
        let (_, b) = constant_f32(g, &g.node[1].input[2]).unwrap();
        assert_eq!(b, vec![((0.0 - 1.0) * f[0] + 0.5) as f32, ((0.0 + 2.0) * f[1]) as f32]);
        // The BN parameters are gone.
        assert_eq!(g.initializer.len(), 1);
    }

    #[test]
    fn keeps_bn_with_a_reason() {
        let mut m = conv_bn(true);
        let report = fold_batch_norms(&mut m, &[]).unwrap();
        assert!(report.folded.is_empty());
        assert!(report.kept[0].1.contains("other consumers"), "{:?}", report.kept);
        let mut m = conv_bn(false);
        let report = fold_batch_norms(&mut m, &["conv".to_string()]).unwrap();
        assert_eq!(report.kept, vec![("bn".to_string(), "listed in skip_fusion_layers".to_string())]);
        assert_eq!(m.graph.unwrap().node.len(), 3);
    }
}

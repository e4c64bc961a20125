//! Activation clipping scored on the layer's output (`--activation_clip output`,
//! docs/ascend-formats.md §4.6).
//!
//! IFMR picks a tensor's clip by the quantization error of the tensor itself. What matters is
//! the error of what the layers reading it compute: a clip that costs the input some outliers
//! can still give a smaller output error, because the rounding of every other value gets finer.
//! Here each tensor's clip_max is searched again on a grid of factors around IFMR's choice,
//! each candidate scored by the relative squared error of every consuming layer's output
//! (int8 input and int8 weights against float input and float weights) on the first calibration
//! batches; IFMR's own choice is one of the candidates, so no layer output gets worse on the
//! scored batches. The clip_min stays IFMR's (as IFMR searches clip_max only) unless the tensor
//! is symmetric. Only scales change: the deploy model keeps its form (§1.3).

use std::collections::{HashMap, HashSet};

use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use super::calibrate::{CalibrateError, Result};
use super::error::QuantError;
use super::observe::{ActResult, f32_view};
use super::scale::ActQuant;
use crate::data::calib_set::CalibrationSet;
use crate::engine::{Session, Tensor};
use crate::onnx::build::float_value_info;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, TensorProto};

/// How many calibration batches (from the first) score the candidates: one 640² image holds
/// millions of values per tensor, plenty for one parameter per tensor.
pub const SCORED_BATCHES: usize = 2;

/// The clip_max factors tried around IFMR's choice (1.0 is IFMR's own). Below IFMR's
/// search range (0.7 of the percentile value) on purpose: the output error can prefer more
/// clipping than the tensor's own error does.
const FACTORS: [f32; 19] =
    [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.0, 1.05, 1.10, 1.15, 1.20, 1.25, 1.30];
const IFMR_INDEX: usize = 12;

/// One layer that reads a rescored tensor, as two one-node models computing `y` from `x`:
/// the float layer and the layer with its int8 weights dequantized. Biases are left out:
/// they are the same on both sides and cancel in the error.
pub(crate) struct ScoredLayer {
    pub name: String,
    pub float: ModelProto,
    pub int8_weights: ModelProto,
}

impl ScoredLayer {
    /// `node` of `model` with its data input renamed `x`, its weight `w`, its output `y` and
    /// the bias input dropped; the float model gets `float_weight`, the int8 one `int8_weight`
    /// (dims, values: the int8 weights times their scales) and its node edited by `int8_node`
    /// (a Gemm whose int8 weight was transposed offline gets transB = 0).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &ModelProto,
        node: &NodeProto,
        name: &str,
        data_input: &str,
        weight_input: &str,
        float_weight: (&[i64], Vec<f32>),
        int8_weight: (&[i64], Vec<f32>),
        int8_node: impl FnOnce(&mut NodeProto),
    ) -> ScoredLayer {
        let mut base = node.clone();
        // Conv / Gemm take the bias as input 2; MatMul has none.
        base.input.truncate(2);
        for i in base.input.iter_mut() {
            if i == data_input {
                *i = "x".into();
            } else if i == weight_input {
                *i = "w".into();
            }
        }
        base.output = vec!["y".into()];
        let mut int8 = base.clone();
        int8_node(&mut int8);
        ScoredLayer {
            name: name.to_string(),
            float: one_node_model(model, base, float_weight),
            int8_weights: one_node_model(model, int8, int8_weight),
        }
    }
}

fn one_node_model(model: &ModelProto, node: NodeProto, (dims, values): (&[i64], Vec<f32>)) -> ModelProto {
    let weight = TensorProto {
        name: Some("w".into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: values,
        ..Default::default()
    };
    ModelProto {
        ir_version: model.ir_version,
        opset_import: model.opset_import.clone(),
        graph: Some(GraphProto {
            name: Some("scored_layer".into()),
            node: vec![node],
            initializer: vec![weight],
            input: vec![float_value_info("x", &[])],
            output: vec![float_value_info("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A tensor whose clip is searched again, and the layers that read it.
pub(crate) struct ScoredTensor {
    pub tensor: String,
    pub asymmetric: bool,
    pub layers: Vec<ScoredLayer>,
}

/// What the search chose for one tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipChoice {
    pub tensor: String,
    pub layers: Vec<String>,
    /// The chosen clip_max over IFMR's (1 = IFMR's kept).
    pub factor: f32,
    pub clip_max_ifmr: f32,
    pub clip_max: f32,
    /// Sum over the reading layers of their relative output error (‖y_int8 − y‖² / ‖y‖²) on
    /// the scored batches, with IFMR's clip and with the chosen one.
    pub output_error_ifmr: f64,
    pub output_error: f64,
}

/// Per candidate, per layer: the squared error sums and the float output's energy.
struct Scores {
    error: Vec<Vec<f64>>,
    energy: Vec<f64>,
}

impl Scores {
    fn relative(&self, candidate: usize) -> f64 {
        self.error[candidate].iter().zip(&self.energy).map(|(e, &n)| if n > 0.0 { e / n } else { 0.0 }).sum()
    }
}

fn candidates(ifmr: &ActResult, asymmetric: bool) -> Vec<ActQuant> {
    FACTORS
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            if i == IFMR_INDEX {
                ifmr.quant
            } else if asymmetric {
                ActQuant::from_clip_range(ifmr.clip_min, ifmr.clip_max * f, true)
            } else {
                // Scaled as is, keeping IFMR's 127 or 128 divisor.
                ActQuant { scale: ifmr.quant.scale * f, offset: 0 }
            }
        })
        .collect()
}

/// Searches every tensor's clip again (module doc) and replaces `results[k]` of `tensors[k]`
/// (None: left as it is) with the choice. `session` runs the float model the calibration ran.
pub(crate) fn rescore(
    session: &Session,
    tensors: &[Option<ScoredTensor>],
    results: &mut [ActResult],
    data: &CalibrationSet,
    batches: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<ClipChoice>> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, t) in tensors.iter().enumerate() {
        if let Some(t) = t {
            by_name.entry(t.tensor.as_str()).or_default().push(k);
        }
    }
    if by_name.is_empty() || batches == 0 {
        return Ok(Vec::new());
    }
    let observed: HashSet<String> = by_name.keys().map(|s| s.to_string()).collect();
    let cands: Vec<Vec<ActQuant>> =
        tensors.iter().zip(results.iter()).map(|(t, r)| t.as_ref().map(|t| candidates(r, t.asymmetric)).unwrap_or_default()).collect();
    let mut scores: Vec<Scores> = tensors
        .iter()
        .map(|t| {
            let n = t.as_ref().map_or(0, |t| t.layers.len());
            Scores { error: vec![vec![0.0; n]; FACTORS.len()], energy: vec![0.0; n] }
        })
        .collect();
    // Sessions of the one-node models, built for the shape first seen.
    let mut sessions: HashMap<(usize, usize), (Session, Session)> = HashMap::new();
    for b in 0..batches {
        let batch = data.batch(b)?;
        data.check_finite(&batch)?;
        let mut failure: Option<CalibrateError> = None;
        session
            .run_observed(batch.into_map(), &observed, &mut |name, tensor| {
                let Some(ks) = by_name.get(name) else { return };
                if failure.is_some() {
                    return;
                }
                let Some(values) = f32_view(tensor) else { return };
                for &k in ks {
                    let t = tensors[k].as_ref().expect("indexed");
                    if let Err(e) = score_tensor(t, k, &values, tensor.shape(), &cands[k], &mut scores[k], &mut sessions) {
                        failure = Some(e);
                        return;
                    }
                }
            })
            .map_err(|source| CalibrateError::Engine { context: "activation clip scoring (float model)".into(), source })?;
        if let Some(e) = failure {
            return Err(e);
        }
        progress(b + 1, batches);
    }
    let mut choices = Vec::new();
    for (k, t) in tensors.iter().enumerate() {
        let Some(t) = t else { continue };
        let s = &scores[k];
        let ifmr_error = s.relative(IFMR_INDEX);
        // Ties keep IFMR's clip: a candidate must be strictly better.
        let mut best = IFMR_INDEX;
        for c in 0..FACTORS.len() {
            if s.relative(c) < s.relative(best) {
                best = c;
            }
        }
        let before = results[k];
        let quant = cands[k][best];
        let clip_max = before.clip_max * FACTORS[best];
        let clip_min = if t.asymmetric { before.clip_min } else { before.clip_min * FACTORS[best] };
        if best != IFMR_INDEX {
            results[k] = ActResult { quant, clip_min, clip_max };
        }
        choices.push(ClipChoice {
            tensor: t.tensor.clone(),
            layers: t.layers.iter().map(|l| l.name.clone()).collect(),
            factor: FACTORS[best],
            clip_max_ifmr: before.clip_max,
            clip_max: results[k].clip_max,
            output_error_ifmr: ifmr_error,
            output_error: s.relative(best),
        });
    }
    Ok(choices)
}

fn score_tensor(
    t: &ScoredTensor,
    k: usize,
    x: &[f32],
    shape: &[usize],
    cands: &[ActQuant],
    scores: &mut Scores,
    sessions: &mut HashMap<(usize, usize), (Session, Session)>,
) -> Result<()> {
    let engine =
        |layer: &ScoredLayer, source| CalibrateError::Engine { context: format!("activation clip scoring ({})", layer.name), source };
    let input = |values: Vec<f32>| {
        let array = ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape of the observed tensor");
        HashMap::from([("x".to_string(), Tensor::F32(array))])
    };
    let shapes = HashMap::from([("x".to_string(), shape.iter().map(|&d| d as i64).collect::<Vec<i64>>())]);
    for (j, layer) in t.layers.iter().enumerate() {
        let (float, int8) = match sessions.entry((k, j)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let float = Session::new(&with_input_dims(&layer.float, &shapes["x"]), &shapes).map_err(|e| engine(layer, e))?;
                let int8 = Session::new(&with_input_dims(&layer.int8_weights, &shapes["x"]), &shapes).map_err(|e| engine(layer, e))?;
                e.insert((float, int8))
            }
        };
        let reference = output(float.run(input(x.to_vec())).map_err(|e| engine(layer, e))?, &layer.name)?;
        scores.energy[j] += reference.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        for (c, q) in cands.iter().enumerate() {
            let seen: Vec<f32> = x.iter().map(|&v| q.dequantize(q.quantize(v))).collect();
            let y = output(int8.run(input(seen)).map_err(|e| engine(layer, e))?, &layer.name)?;
            scores.error[c][j] += y.iter().zip(&reference).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum::<f64>();
        }
    }
    Ok(())
}

fn with_input_dims(model: &ModelProto, dims: &[i64]) -> ModelProto {
    let mut m = model.clone();
    if let Some(g) = m.graph.as_mut() {
        g.input = vec![float_value_info("x", dims)];
    }
    m
}

fn output(outputs: Vec<(String, Tensor)>, layer: &str) -> Result<Vec<f32>> {
    outputs
        .into_iter()
        .next()
        .and_then(|(_, t)| f32_view(&t).map(|v| v.into_owned()))
        .ok_or_else(|| QuantError::layer(layer, "activation clip scoring: the layer gave no float32 output").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_keep_ifmr_exactly_and_scale_clip_max() {
        let ifmr = ActResult { quant: ActQuant { scale: 0.0123, offset: -7 }, clip_min: -0.5, clip_max: 2.0 };
        let c = candidates(&ifmr, true);
        assert_eq!(c.len(), FACTORS.len());
        assert_eq!(c[IFMR_INDEX], ifmr.quant);
        assert_eq!(c[0], ActQuant::from_clip_range(-0.5, 0.8, true));
        let symmetric = ActResult { quant: ActQuant { scale: 0.02, offset: 0 }, clip_min: -2.0, clip_max: 2.0 };
        let s = candidates(&symmetric, false);
        assert_eq!(s[0], ActQuant { scale: 0.02 * 0.4, offset: 0 });
        assert_eq!(FACTORS[IFMR_INDEX], 1.0);
    }

    #[test]
    fn relative_error_sums_over_layers() {
        let s = Scores { error: vec![vec![1.0, 4.0]], energy: vec![10.0, 0.0] };
        assert_eq!(s.relative(0), 0.1);
    }
}

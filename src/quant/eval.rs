//! How far the fake-quant model is from the float one on the calibration data:
//! - per layer, the cosine similarity of the layer's fake-quant output against its float
//!   output **given the same float input** (the error this layer adds on its own: quantized
//!   activation and weights), pooled over all batches; each layer's fake-quant slice of the
//!   graph runs on the float input observed in the float run;
//! - per model output, cosine, SQNR and max error of the whole fake-quant model against the
//!   float model.
//!
//! Per batch, the float run, each layer's slice run on the float input it observes; then the
//! whole model. Both run in the deploy model's session (int8 weights: a quarter of the
//! float weight memory, and its fused plan is faster than the fake-quant model's ops): its
//! exact integer layers compute the fake-quant layers' numbers wherever the fake-quant
//! model's f32 sums of integer values are exact (below 2^24 in magnitude; on YOLOX and
//! PP-OCRv4 det the reports are the same byte for byte).
//!
//! Memory stays flat in the number of batches: only sums are kept.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::deploy::QuantizedLayer;
use super::observe::f32_view;
use crate::data::calib_set::CalibrationSet;
use crate::engine::{Session, Tensor};
use crate::onnx::proto::ModelProto;
use crate::tasks::{Decoded, Task, TaskMetrics};

use super::calibrate::{CalibrateError, Result};

/// One model output, fake-quant against float, pooled over the calibration batches.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutputAgreement {
    pub output: String,
    pub cosine: f64,
    /// 10·log10(Σ ref² / Σ (ref − fake)²).
    pub sqnr_db: f64,
    pub max_abs_error: f64,
    pub max_abs_reference: f64,
}

#[derive(Debug, Clone)]
pub struct Evaluation {
    /// In the order of the layers given to [`evaluate`].
    pub layer_cosine: Vec<f64>,
    pub outputs: Vec<OutputAgreement>,
    pub task: Option<TaskAgreement>,
}

/// The fake-quant model against float in the task's terms: the outputs the task reads (the
/// first; all for picodet / centerface) decoded on both sides ([`crate::tasks`]) per batch,
/// float taken as the pseudo ground truth.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskAgreement {
    pub task: String,
    pub output: String,
    pub batches: usize,
    /// Each metric that applies (f1, map50, top1, char_accuracy, ...): mean over the batches.
    pub mean: BTreeMap<String, f64>,
    /// The same: the worst (lowest) batch.
    pub worst: BTreeMap<String, f64>,
    /// Boxes (db, detection) or batch items (cls, ctc) over all batches: fake-quant, float.
    pub count_fake_quant: usize,
    pub count_float: usize,
}

/// What to decode and how: the task and the model input's (height, width) its boxes live in.
#[derive(Debug, Clone, Copy)]
pub struct TaskEval<'a> {
    pub task: &'a Task,
    pub input_hw: (usize, usize),
}

fn task_err(e: crate::tasks::TaskError) -> CalibrateError {
    CalibrateError::Argument { flag: "--task", detail: e.to_string() }
}

impl TaskEval<'_> {
    /// The same over a model's outputs (in the model's order), as many as the task reads.
    pub(crate) fn agreement_outputs(&self, reference: &[&Tensor], candidate: &[&Tensor]) -> Result<TaskMetrics> {
        let used = if self.task.uses_all_outputs() { reference.len() } else { reference.len().min(1) };
        let candidate = self.decode(candidate, used)?;
        crate::tasks::agreement(&candidate, &self.decode(reference, used)?).map_err(task_err)
    }

    /// The same against a reference decoded once by [`Self::decode_reference`] (trials
    /// compare many candidates with the same float outputs).
    pub(crate) fn agreement_decoded(&self, reference: &(Decoded, usize), candidate: &[&Tensor]) -> Result<TaskMetrics> {
        crate::tasks::agreement(&self.decode(candidate, reference.1)?, &reference.0).map_err(task_err)
    }

    pub(crate) fn decode_reference(&self, reference: &[&Tensor]) -> Result<(Decoded, usize)> {
        let used = if self.task.uses_all_outputs() { reference.len() } else { reference.len().min(1) };
        Ok((self.decode(reference, used)?, used))
    }

    /// The first `used` of `xs` decoded.
    fn decode(&self, xs: &[&Tensor], used: usize) -> Result<Decoded> {
        let values: Vec<Cow<[f32]>> = xs[..used.min(xs.len())].iter().map(|x| f32_values(x)).collect();
        let refs: Vec<(&[f32], &[usize])> = values.iter().zip(xs).map(|(v, x)| (v.as_ref(), x.shape())).collect();
        crate::tasks::decode_outputs(self.task, &refs, self.input_hw).map_err(task_err)
    }
}

/// The task calibration evaluates with: `--task auto` picked from the model's output dims for
/// `shapes` (a warning-style note says what and why); other tasks as given.
pub(crate) fn resolve_task(
    task: Task,
    model: &ModelProto,
    shapes: &HashMap<String, Vec<i64>>,
    input_hw: (usize, usize),
) -> Result<(Task, Option<String>)> {
    if task != Task::Auto {
        return Ok((task, None));
    }
    let inferred = crate::onnx::shapes::infer_shapes(model, shapes)?;
    let graph = model.graph.as_ref().expect("checked");
    let mut dims = Vec::with_capacity(graph.output.len());
    for o in &graph.output {
        let d = inferred.shape(o.name()).and_then(|d| d.iter().map(|&v| usize::try_from(v).ok()).collect::<Option<Vec<usize>>>());
        let Some(d) = d else {
            return Err(task_err(crate::tasks::TaskError::Auto {
                reason: format!("the dims of output '{}' are not known for the input shape", o.name()),
                found: "?".into(),
            }));
        };
        dims.push(d);
    }
    let refs: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
    task.resolve(&refs, input_hw).map_err(task_err)
}

pub(crate) fn summarize_task(task: &Task, output: &str, rows: &[TaskMetrics]) -> TaskAgreement {
    let stats = crate::tasks::mean_and_worst(rows.iter());
    TaskAgreement {
        task: task.name().to_string(),
        output: output.to_string(),
        batches: rows.len(),
        mean: stats.iter().map(|(k, &(mean, _))| (k.clone(), mean)).collect(),
        worst: stats.into_iter().map(|(k, (_, worst))| (k, worst)).collect(),
        count_fake_quant: rows.iter().filter_map(|m| m.count_candidate).sum(),
        count_float: rows.iter().filter_map(|m| m.count_reference).sum(),
    }
}

/// Running sums of a pair of tensors.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PairSums {
    dot: f64,
    ref_sq: f64,
    test_sq: f64,
    err_sq: f64,
    max_err: f64,
    max_ref: f64,
}

/// Values per part of [`PairSums::add`]: parts are summed on their own (in parallel when
/// there are several) and joined in order, so the sums do not depend on the thread count.
const PAIR_PART: usize = 1 << 15;

impl PairSums {
    pub(crate) fn add(&mut self, reference: &[f32], test: &[f32]) {
        self.add_sums::<true>(reference, test);
    }

    /// [`Self::add`] for [`Self::cosine`] only: the error sum and the maxima stay 0 (the
    /// same dot and squares, half the work).
    pub(crate) fn add_for_cosine(&mut self, reference: &[f32], test: &[f32]) {
        self.add_sums::<false>(reference, test);
    }

    fn add_sums<const FULL: bool>(&mut self, reference: &[f32], test: &[f32]) {
        use rayon::prelude::*;
        let n = reference.len().min(test.len());
        let (reference, test) = (&reference[..n], &test[..n]);
        let parts: Vec<PairSums> = if n >= 2 * PAIR_PART {
            reference.par_chunks(PAIR_PART).zip(test.par_chunks(PAIR_PART)).map(|(r, t)| PairSums::of_part::<FULL>(r, t)).collect()
        } else {
            vec![PairSums::of_part::<FULL>(reference, test)]
        };
        for p in parts {
            self.join(&p);
        }
    }

    fn join(&mut self, other: &PairSums) {
        self.dot += other.dot;
        self.ref_sq += other.ref_sq;
        self.test_sq += other.test_sq;
        self.err_sq += other.err_sq;
        self.max_err = self.max_err.max(other.max_err);
        self.max_ref = self.max_ref.max(other.max_ref);
    }

    /// The sums of one part, in 8 independent lanes (element i in lane i mod 8) so that they
    /// vectorize, compiled for the widest vectors (the same operations in the same order).
    fn of_part<const FULL: bool>(reference: &[f32], test: &[f32]) -> PairSums {
        crate::engine::kernels::exp::with_wide_vectors(
            #[inline(always)]
            || PairSums::lanes::<FULL>(reference, test),
        )
    }

    #[inline(always)]
    fn lanes<const FULL: bool>(reference: &[f32], test: &[f32]) -> PairSums {
        const L: usize = 8;
        let (mut dot, mut rr, mut tt, mut ee, mut me, mut mr) = ([0f64; L], [0f64; L], [0f64; L], [0f64; L], [0f64; L], [0f64; L]);
        let mut step = |j: usize, r: f32, t: f32| {
            let (r, t) = (r as f64, t as f64);
            let e = r - t;
            dot[j] += r * t;
            rr[j] += r * r;
            tt[j] += t * t;
            if FULL {
                ee[j] += e * e;
                me[j] = if e.abs() > me[j] { e.abs() } else { me[j] };
                mr[j] = if r.abs() > mr[j] { r.abs() } else { mr[j] };
            }
        };
        let (rs, ts) = (reference.chunks_exact(L), test.chunks_exact(L));
        let (r_rest, t_rest) = (rs.remainder(), ts.remainder());
        for (r, t) in rs.zip(ts) {
            for j in 0..L {
                step(j, r[j], t[j]);
            }
        }
        for (j, (&r, &t)) in r_rest.iter().zip(t_rest).enumerate() {
            step(j, r, t);
        }
        let sum = |a: [f64; L]| a.iter().sum::<f64>();
        let max = |a: [f64; L]| a.iter().copied().fold(0.0, f64::max);
        PairSums { dot: sum(dot), ref_sq: sum(rr), test_sq: sum(tt), err_sq: sum(ee), max_err: max(me), max_ref: max(mr) }
    }

    pub(crate) fn cosine(&self) -> f64 {
        if self.ref_sq == 0.0 && self.test_sq == 0.0 {
            1.0
        } else if self.ref_sq == 0.0 || self.test_sq == 0.0 {
            0.0
        } else {
            self.dot / (self.ref_sq.sqrt() * self.test_sq.sqrt())
        }
    }

    /// The reference's sum of squares so far.
    pub(crate) fn ref_sq(&self) -> f64 {
        self.ref_sq
    }

    /// The highest SQNR (dB) these sums can still reach when more pairs are added and the
    /// reference's sum of squares ends at `ref_sq_total`: the error's sum only grows (f64
    /// additions of non-negative terms never decrease a sum).
    pub(crate) fn sqnr_db_bound(&self, ref_sq_total: f64) -> f64 {
        if self.err_sq == 0.0 { f64::INFINITY } else { 10.0 * (ref_sq_total / self.err_sq).log10() }
    }

    pub(crate) fn sqnr_db(&self) -> f64 {
        self.sqnr_db_bound(self.ref_sq)
    }
}

fn f32_values(t: &Tensor) -> Cow<'_, [f32]> {
    f32_view(t).unwrap_or_else(|| Cow::Owned(t.to_f64_vec().into_iter().map(|v| v as f32).collect()))
}

/// The layer's fake-quant slice of the graph, from its data input `x` to its output `y`. It
/// runs inside the deploy model's session (its steps from `x` to `y` only): no session or
/// weight copy of its own.
struct LayerSlice {
    x: String,
    y: String,
}

impl LayerSlice {
    /// Checks up front that `y` follows from `x` and constants alone in `deploy`.
    fn new(deploy: &ModelProto, x: &str, y: &str) -> Result<Self> {
        if crate::onnx::prune::slice_model(deploy, &[x], &[y]).is_none() {
            return Err(CalibrateError::Argument {
                flag: "--model",
                detail: format!("the layer from '{x}' to '{y}' cannot be cut out of the deploy model"),
            });
        }
        Ok(LayerSlice { x: x.to_string(), y: y.to_string() })
    }

    /// The layer's fake-quant output for `input`, computed by the deploy model's session.
    fn run(&self, deploy_session: &Session, input: &Tensor) -> Result<Tensor> {
        deploy_session
            .run_part(&[(&self.x, input)], &self.y)
            .map_err(|source| CalibrateError::Engine { context: format!("fake-quant slice of layer output '{}'", self.y), source })
    }
}

/// The output tensor of a layer in the float model (the bias Add's for a MatMul with one).
fn layer_output(float: &ModelProto, layer: &QuantizedLayer) -> Option<String> {
    let graph = float.graph.as_ref()?;
    graph.node.get(layer.bias_add.unwrap_or(layer.node))?.output.first().cloned()
}

/// Runs the float model (`float_session`, a session of `float` for `data`'s shapes) and the
/// deploy model over the first `batch_num` batches of `data` (module doc). `data_inputs[i]`
/// is the data input of `layers[i]`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    float_session: Session,
    float: &ModelProto,
    deploy: &ModelProto,
    layers: &[QuantizedLayer],
    data_inputs: &[String],
    data: &CalibrationSet,
    batch_num: usize,
    task: Option<TaskEval>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Evaluation> {
    let shapes = data.shapes();
    let engine_err = |what: &str| {
        let what = what.to_string();
        move |source| CalibrateError::Engine { context: what.clone(), source }
    };
    let mut slices = Vec::with_capacity(layers.len());
    let mut by_input: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_output: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (layer, x)) in layers.iter().zip(data_inputs).enumerate() {
        let y = layer_output(float, layer)
            .ok_or_else(|| CalibrateError::Argument { flag: "--model", detail: format!("layer '{}' has no output", layer.name) })?;
        slices.push(LayerSlice::new(deploy, x, &y)?);
        by_input.entry(x.clone()).or_default().push(i);
        by_output.entry(y).or_default().push(i);
    }
    let observe: HashSet<String> = by_input.keys().chain(by_output.keys()).cloned().collect();
    let deploy_session = Session::new(deploy, &shapes).map_err(engine_err("deploy model"))?;
    let mut layer_sums = vec![PairSums::default(); layers.len()];
    let mut output_sums: Vec<(String, PairSums)> = Vec::new();
    let mut task_rows: Vec<TaskMetrics> = Vec::new();
    for b in 0..batch_num {
        // The float run, each layer's slice run on the float input it observes.
        let mut pending: HashMap<usize, Tensor> = HashMap::new();
        let mut failure: Option<CalibrateError> = None;
        let float_out = float_session
            .run_observed(data.batch(b)?.into_map(), &observe, &mut |name, tensor| {
                if failure.is_some() {
                    return;
                }
                for &i in by_output.get(name).map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(q) = pending.remove(&i) {
                        layer_sums[i].add_for_cosine(&f32_values(tensor), &f32_values(&q));
                    }
                }
                for &i in by_input.get(name).map(Vec::as_slice).unwrap_or(&[]) {
                    match slices[i].run(&deploy_session, tensor) {
                        Ok(q) => {
                            pending.insert(i, q);
                        }
                        Err(e) => failure = Some(e),
                    }
                }
            })
            .map_err(engine_err("float model"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        // The whole model, as the deploy model's fused plan.
        let quant_out = deploy_session.run(data.batch(b)?.into_map()).map_err(engine_err("deploy model"))?;
        for ((name, r), (_, t)) in float_out.iter().zip(&quant_out) {
            if output_sums.len() < float_out.len() {
                output_sums.push((name.clone(), PairSums::default()));
            }
            let slot = output_sums.iter_mut().find(|(n, _)| n == name).expect("pushed above");
            slot.1.add(&f32_values(r), &f32_values(t));
        }
        if let Some(t) = task {
            let r: Vec<&Tensor> = float_out.iter().map(|(_, x)| x).collect();
            let q: Vec<&Tensor> = quant_out.iter().map(|(_, x)| x).collect();
            task_rows.push(t.agreement_outputs(&r, &q)?);
        }
        progress(b + 1, batch_num);
    }
    let task = match (task, output_sums.first()) {
        (Some(t), Some(_)) => {
            let used = if t.task.uses_all_outputs() { output_sums.len() } else { 1 };
            let names: Vec<&str> = output_sums[..used].iter().map(|(n, _)| n.as_str()).collect();
            Some(summarize_task(t.task, &names.join(", "), &task_rows))
        }
        _ => None,
    };
    Ok(Evaluation {
        task,
        layer_cosine: layer_sums.iter().map(PairSums::cosine).collect(),
        outputs: output_sums
            .into_iter()
            .map(|(output, s)| OutputAgreement {
                output,
                cosine: s.cosine(),
                sqnr_db: s.sqnr_db(),
                max_abs_error: s.max_err,
                max_abs_reference: s.max_ref,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_sums_match_the_plain_sums() {
        // Sizes below, at and above one part, with a remainder in every lane count.
        for n in [0usize, 1, 7, 9, 1000, PAIR_PART, 2 * PAIR_PART + 13, 5 * PAIR_PART + 3] {
            let r: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.01).collect();
            let t: Vec<f32> = r.iter().enumerate().map(|(i, &v)| v + ((i % 17) as f32 - 8.0) * 1e-3).collect();
            let mut sums = PairSums::default();
            sums.add(&r, &t);
            let (mut dot, mut rr, mut tt, mut ee, mut me, mut mr) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
            for (&a, &b) in r.iter().zip(&t) {
                let (a, b) = (a as f64, b as f64);
                dot += a * b;
                rr += a * a;
                tt += b * b;
                ee += (a - b) * (a - b);
                me = me.max((a - b).abs());
                mr = mr.max(a.abs());
            }
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * y.abs().max(1.0);
            assert!(close(sums.dot, dot) && close(sums.ref_sq, rr) && close(sums.test_sq, tt) && close(sums.err_sq, ee), "n = {n}");
            assert_eq!((sums.max_err, sums.max_ref), (me, mr), "n = {n}");
        }
    }

    #[test]
    fn cosine_only_sums_give_the_same_cosine() {
        let n = 2 * PAIR_PART + 77;
        let r: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let t: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() + 1e-2 * (i % 7) as f32).collect();
        let (mut full, mut light) = (PairSums::default(), PairSums::default());
        full.add(&r, &t);
        light.add_for_cosine(&r, &t);
        assert_eq!((light.dot, light.ref_sq, light.test_sq), (full.dot, full.ref_sq, full.test_sq));
        assert_eq!(light.cosine().to_bits(), full.cosine().to_bits());
        assert!(full.err_sq > 0.0 && light.err_sq == 0.0);
    }

    #[test]
    fn pair_sums_of_a_split_equal_the_parts_joined() {
        // add() over a long tensor = the same parts added one by one: the result does not
        // depend on how many threads summed them.
        let n = 3 * PAIR_PART + 5;
        let r: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let t: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() + 1e-3 * (i % 5) as f32).collect();
        let mut whole = PairSums::default();
        whole.add(&r, &t);
        let mut parts = PairSums::default();
        for (a, b) in r.chunks(PAIR_PART).zip(t.chunks(PAIR_PART)) {
            parts.join(&PairSums::of_part::<true>(a, b));
        }
        assert_eq!(whole, parts);
    }
}

//! `calibration --sensitivity`: how much each quantized layer costs the model **output** (not
//! its own output: on PP-OCRv4 det every layer's local cosine is ≥ 0.992 while the model
//! output loses 10 dB, so local numbers do not find the layers that matter).
//!
//! One calibration, many trials: every trial is the deploy model built from a subset of the
//! already calibrated layers (the rest stay float), run as its fake-quant model over the
//! evaluation batches against the float model's outputs (computed once):
//! - `alone`: only this layer int8;
//! - `left_float`: every layer int8 but this one (the gain of leaving it float);
//! - `drift`: the first k layers (in graph order) int8, for every k — where along the graph
//!   the error accumulates.
//!
//! Each trial reports the first output's cosine and SQNR and, with `--task`, the task metrics
//! against float ([`super::eval`]). Cost: 3·n + 1 trials of `eval_batches` forward passes for
//! n layers. Written to `<prefix>_sensitivity.json`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use rayon::prelude::*;

use serde::Serialize;

use super::calibrate::{CalibrateError, Result};
use super::deploy::{QuantizedLayer, build_deploy};
use super::eval::{PairSums, TaskAgreement, TaskEval, summarize_task};
use super::fake::build_fake_quant;
use super::observe::f32_view;
use super::trials::suffix;
use crate::data::calib_set::CalibrationSet;
use crate::engine::{Session, Tensor};
use crate::onnx::proto::ModelProto;
use crate::onnx::shapes::InferredShapes;
use crate::tasks::{Decoded, TaskMetrics};

/// The output agreement of one trial with float.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    pub cosine: f64,
    pub sqnr_db: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskAgreement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSensitivity {
    pub name: String,
    pub op_type: String,
    /// Multiply-accumulates of one inference (weight elements × output positions; 0 when the
    /// output shape is unknown).
    pub macs: u64,
    pub alone: Trial,
    pub left_float: Trial,
    /// Layers 1..=k (this one is the k-th, graph order) int8, the rest float.
    pub drift: Trial,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensitivity {
    pub output: String,
    pub eval_batches: usize,
    pub eval_held_out: bool,
    /// Every layer int8: the reference point of `left_float`.
    pub all_int8: Trial,
    /// In graph order.
    pub layers: Vec<LayerSensitivity>,
}

/// Weight elements × output positions of the layer at `node` whose weight has `weight_dims`
/// (`node`'s first output in `shapes`); 0 without a weight or a known output shape.
pub fn node_macs(model: &ModelProto, node: usize, weight_dims: Option<&[i64]>, shapes: &InferredShapes) -> u64 {
    let Some(graph) = model.graph.as_ref() else { return 0 };
    let Some(node) = graph.node.get(node) else { return 0 };
    let (Some(weight), Some(out)) = (weight_dims, node.output.first().and_then(|o| shapes.shape(o))) else { return 0 };
    let weights: i64 = weight.iter().product();
    let positions: i64 = match node.op_type.as_deref() {
        // [N, C_out, spatial...]: one weight pass per output position and batch item.
        Some("Conv") | Some("ConvTranspose") => out.first().copied().unwrap_or(1) * out.iter().skip(2).product::<i64>(),
        // [..., rows, N]: one weight pass per row.
        _ => out.iter().rev().skip(1).product::<i64>(),
    };
    (weights.max(0) as u64).saturating_mul(positions.max(0) as u64)
}

/// Runs trials: the float outputs of the evaluation batches are computed once and kept; each
/// trial builds the fake-quant model of a subset of the calibrated layers (the rest float) and
/// measures its first output against them. Also used by the fallback search ([`super::fallback`]).
pub struct TrialRunner<'a> {
    float: &'a ModelProto,
    float_session: Session,
    /// The float model's shapes, types and known values, for planning suffixes.
    inferred: InferredShapes,
    shapes: HashMap<String, Vec<i64>>,
    task: Option<TaskEval<'a>>,
    inputs: Vec<HashMap<String, Tensor>>,
    /// Per batch, every output in the model's order (the task may read them all).
    outputs: Vec<Vec<Tensor>>,
    /// Per batch, the float outputs decoded for the task (once, not per trial).
    decoded: Vec<(Decoded, usize)>,
    /// The first output's name.
    pub output: String,
    /// The first output's sum of squares over all the batches, as a trial sums it.
    ref_sq_total: f64,
    /// Trials run so far.
    pub trials: usize,
    /// Of those, trials stopped before their last batch ([`Self::run_unless_below`]).
    pub stopped_early: usize,
}

impl<'a> TrialRunner<'a> {
    pub fn new(float: &'a ModelProto, data: &CalibrationSet, eval_batches: usize, task: Option<TaskEval<'a>>) -> Result<Self> {
        let shapes = data.shapes();
        let float_session = Session::new(float, &shapes).map_err(engine_error("float model"))?;
        let mut runner = TrialRunner {
            float,
            float_session,
            inferred: crate::onnx::shapes::infer_shapes(float, &shapes)?,
            shapes: shapes.clone(),
            task,
            inputs: Vec::new(),
            outputs: Vec::new(),
            decoded: Vec::new(),
            output: String::new(),
            ref_sq_total: 0.0,
            trials: 0,
            stopped_early: 0,
        };
        let mut reference = PairSums::default();
        for b in 0..eval_batches {
            let inputs = data.batch(b)?.into_map();
            let outs = runner.float_session.run(inputs.clone()).map_err(engine_error("float model"))?;
            let Some((name, _)) = outs.first() else {
                return Err(CalibrateError::Argument { flag: "--model", detail: "the model has no output".into() });
            };
            runner.output = name.clone();
            runner.inputs.push(inputs);
            let outs: Vec<Tensor> = outs.into_iter().map(|(_, t)| t).collect();
            let first = f32_view(&outs[0]).unwrap_or_default();
            reference.add(&first, &first);
            if let Some(t) = task {
                runner.decoded.push(t.decode_reference(&outs.iter().collect::<Vec<_>>())?);
            }
            runner.outputs.push(outs);
        }
        runner.ref_sq_total = reference.ref_sq();
        Ok(runner)
    }

    /// The number of evaluation batches a trial runs.
    pub fn batches(&self) -> usize {
        self.inputs.len()
    }

    /// The fake-quant model of `subset` (every other layer float) against float.
    pub fn run(&mut self, subset: &[QuantizedLayer]) -> Result<Trial> {
        self.trials += 1;
        let mut acc = Accumulator::default();
        self.accumulate_full(subset, 0..self.inputs.len(), &mut acc)?;
        Ok(acc.trial(self.task, &self.output))
    }

    /// [`Self::run`], unless the first output's SQNR cannot reach `min_sqnr_db`: the batches
    /// run a few at a time, and once the error summed so far already puts the SQNR below it
    /// (over every batch's reference), the rest are not run: None. Exact: a trial that runs
    /// to the end gives the same numbers, and a stopped one would have missed too.
    /// `APTQ_FULL_TRIALS=1` never stops.
    pub fn run_unless_below(&mut self, subset: &[QuantizedLayer], min_sqnr_db: f64) -> Result<Option<Trial>> {
        self.trials += 1;
        let session = self.trial_session(subset)?;
        let all = self.inputs.len();
        let step = if full_trials() { all } else { rayon::current_num_threads().max(1) };
        let mut acc = Accumulator::default();
        for start in (0..all).step_by(step.max(1)) {
            let end = (start + step).min(all);
            self.add_runs(&session, start..end, &mut acc)?;
            if end < all && acc.sums.sqnr_db_bound(self.ref_sq_total) < min_sqnr_db {
                self.stopped_early += 1;
                return Ok(None);
            }
        }
        Ok(Some(acc.trial(self.task, &self.output)))
    }

    /// Adds `batches` of the whole fake-quant model of `subset` to `acc`.
    fn accumulate_full(&self, subset: &[QuantizedLayer], batches: Range<usize>, acc: &mut Accumulator) -> Result<()> {
        let session = self.trial_session(subset)?;
        self.add_runs(&session, batches, acc)
    }

    /// The session of `subset`'s fake-quant model.
    fn trial_session(&self, subset: &[QuantizedLayer]) -> Result<Session> {
        let (deploy, _) = build_deploy(self.float, subset)?;
        let fake = build_fake_quant(&deploy)?;
        Session::new(&fake, &self.shapes).map_err(engine_error("fake-quant trial model"))
    }

    /// Runs `session` on `batches` and adds them to `acc`.
    fn add_runs(&self, session: &Session, batches: Range<usize>, acc: &mut Accumulator) -> Result<()> {
        // The batches side by side (each run is parallel inside too, but its small steps
        // leave a core idle); their sums are added in batch order below.
        let runs: Vec<Vec<Tensor>> = self.inputs[batches.clone()]
            .par_iter()
            .map(|inputs| {
                Ok(session.run(inputs.clone()).map_err(engine_error("fake-quant trial model"))?.into_iter().map(|(_, t)| t).collect())
            })
            .collect::<Result<_>>()?;
        for (b, q) in batches.zip(&runs) {
            acc.add(self.task.map(|t| (t, &self.decoded[b])), &self.outputs[b], &q.iter().collect::<Vec<_>>())?;
        }
        Ok(())
    }

    /// The trials of `subsets`, equal to [`Self::run`]'s one by one, run as suffixes
    /// ([`super::trials`]): batches outer and a chunk of trials inner, so that only one
    /// batch's float frontier values are kept. `progress()` after each trial.
    pub fn run_many(&mut self, subsets: &[Vec<QuantizedLayer>], progress: &mut dyn FnMut(&Self)) -> Result<Vec<Trial>> {
        let mut partial = Partial::new(subsets.len());
        self.continue_many(subsets, &mut partial, self.inputs.len(), Some(progress))?;
        Ok(partial.trials(self.task, &self.output))
    }

    /// Screened trials: every subset on the first `screen` evaluation batches only, to be
    /// completed on the rest where needed ([`Self::complete`]). Each subset counts as one
    /// trial.
    pub fn screen(&mut self, subsets: Vec<Vec<QuantizedLayer>>, screen: usize, progress: &mut dyn FnMut(&Self)) -> Result<Screened> {
        let mut partial = Partial::new(subsets.len());
        self.continue_many(&subsets, &mut partial, screen.min(self.inputs.len()), Some(progress))?;
        let complete = vec![partial.batches == self.inputs.len(); subsets.len()];
        Ok(Screened { subsets, screened: partial.trials(self.task, &self.output), partial, complete })
    }

    /// Runs the screened trials `which` on the rest of the batches (those not complete yet):
    /// each then equals [`Self::run`]'s (the batches are added in the same order). Not
    /// counted as more trials.
    pub fn complete(&mut self, s: &mut Screened, which: &[usize]) -> Result<()> {
        let open: Vec<usize> = which.iter().copied().filter(|&i| !s.complete[i]).collect();
        let subsets: Vec<Vec<QuantizedLayer>> = open.iter().map(|&i| s.subsets[i].clone()).collect();
        let accs = open.iter().map(|&i| std::mem::take(&mut s.partial.accs[i])).collect();
        let mut more = Partial { accs, batches: s.partial.batches };
        self.continue_many(&subsets, &mut more, self.inputs.len(), None)?;
        for (&i, acc) in open.iter().zip(more.accs) {
            (s.partial.accs[i], s.complete[i]) = (acc, true);
        }
        Ok(())
    }

    /// The screened trials as far as they ran.
    pub fn screened_trials(&self, s: &Screened) -> Vec<Trial> {
        s.partial.trials(self.task, &self.output)
    }

    /// Adds batches `partial.batches..until` of every subset's trial to its accumulator.
    /// With `progress`, each subset counts as a trial, reported as its chunk ends.
    fn continue_many(
        &mut self,
        subsets: &[Vec<QuantizedLayer>],
        partial: &mut Partial,
        until: usize,
        mut progress: Option<&mut dyn FnMut(&Self)>,
    ) -> Result<()> {
        let batches = partial.batches..until;
        if full_trials() {
            for (subset, acc) in subsets.iter().zip(&mut partial.accs) {
                self.accumulate_full(subset, batches.clone(), acc)?;
                self.count_trials(1, &mut progress);
            }
            partial.batches = until;
            return Ok(());
        }
        for (chunk, accs) in subsets.chunks(SUFFIX_CHUNK).zip(partial.accs.chunks_mut(SUFFIX_CHUNK)) {
            // Planned side by side (~13 ms each on PP-OCRv4 det, mostly single-threaded).
            let suffixes: Vec<_> = chunk
                .par_iter()
                .map(|subset| {
                    let (deploy, _) = build_deploy(self.float, subset)?;
                    suffix(self.float, &self.inferred, &build_fake_quant(&deploy)?, &self.shapes)
                })
                .collect::<Result<_>>()?;
            let observe: HashSet<String> = suffixes.iter().flat_map(|s| s.frontier.iter().cloned()).collect();
            for b in batches.clone() {
                let (inputs, r) = (&self.inputs[b], &self.outputs[b]);
                // The float run only as far as the last frontier value.
                let mut values: HashMap<String, Tensor> = HashMap::new();
                self.float_session
                    .observe_prefix(inputs.clone(), &observe, &mut |name, t| {
                        values.insert(name.to_string(), t.clone());
                    })
                    .map_err(engine_error("float model"))?;
                // The suffixes side by side, their sums added in trial order below.
                let runs: Vec<Vec<(String, Tensor)>> = suffixes
                    .par_iter()
                    .map(|s| match &s.session {
                        Some(session) => {
                            let feed = s.frontier.iter().map(|n| (n.clone(), values[n].clone())).collect();
                            session.run(feed).map_err(engine_error("fake-quant trial suffix"))
                        }
                        None => Ok(Vec::new()),
                    })
                    .collect::<Result<_>>()?;
                for ((s, acc), computed) in suffixes.iter().zip(accs.iter_mut()).zip(&runs) {
                    let mut computed = computed.iter().map(|(_, t)| t);
                    let q: Vec<&Tensor> =
                        s.outputs.iter().zip(r).map(|(&c, f)| if c { computed.next().expect("one per output") } else { f }).collect();
                    acc.add(self.task.map(|t| (t, &self.decoded[b])), r, &q)?;
                }
            }
            self.count_trials(chunk.len(), &mut progress);
        }
        partial.batches = until;
        Ok(())
    }

    /// Counts `n` finished trials, each reported to `progress`; none without it.
    fn count_trials(&mut self, n: usize, progress: &mut Option<&mut dyn FnMut(&Self)>) {
        if let Some(progress) = progress {
            for _ in 0..n {
                self.trials += 1;
                progress(self);
            }
        }
    }
}

/// Trials of [`TrialRunner::screen`].
pub struct Screened {
    subsets: Vec<Vec<QuantizedLayer>>,
    /// Each trial on the screening batches alone.
    pub screened: Vec<Trial>,
    partial: Partial,
    complete: Vec<bool>,
}

/// Trials summed over their first `batches` evaluation batches.
struct Partial {
    accs: Vec<Accumulator>,
    batches: usize,
}

impl Partial {
    fn new(trials: usize) -> Self {
        Partial { accs: vec![Accumulator::default(); trials], batches: 0 }
    }

    fn trials(&self, task: Option<TaskEval>, output: &str) -> Vec<Trial> {
        self.accs.iter().map(|a| a.trial(task, output)).collect()
    }
}

/// `APTQ_FULL_TRIALS=1` runs every trial as the whole fake-quant model (for checking that the
/// suffixes give the same numbers).
fn full_trials() -> bool {
    std::env::var("APTQ_FULL_TRIALS").is_ok_and(|v| v == "1")
}

/// Trials planned at once by [`TrialRunner::run_many`]: each session held ≈ 14 MiB on
/// PP-OCRv4 det (peak RSS 0.39 / 0.50 / 0.65 GiB at 8 / 16 / 32), and each chunk costs one
/// more float pass.
const SUFFIX_CHUNK: usize = 8;

/// One trial's agreement with float, summed over the batches in order.
#[derive(Clone, Default)]
struct Accumulator {
    sums: PairSums,
    rows: Vec<TaskMetrics>,
}

impl Accumulator {
    fn add(&mut self, task: Option<(TaskEval, &(Decoded, usize))>, r: &[Tensor], q: &[&Tensor]) -> Result<()> {
        let (Some(r0), Some(q0)) = (r.first(), q.first()) else {
            return Err(CalibrateError::Argument { flag: "--model", detail: "the model has no output".into() });
        };
        self.sums.add(&f32_view(r0).unwrap_or_default(), &f32_view(q0).unwrap_or_default());
        if let Some((t, reference)) = task {
            self.rows.push(t.agreement_decoded(reference, q)?);
        }
        Ok(())
    }

    fn trial(&self, task: Option<TaskEval>, output: &str) -> Trial {
        Trial { cosine: self.sums.cosine(), sqnr_db: self.sums.sqnr_db(), task: task.map(|t| summarize_task(t.task, output, &self.rows)) }
    }
}

fn engine_error(what: &str) -> impl Fn(crate::engine::EngineError) -> CalibrateError + '_ {
    move |source| CalibrateError::Engine { context: what.to_string(), source }
}

/// Runs every trial of the module doc. `layers` in graph order (as calibration plans them);
/// `progress(done, total)` after each trial.
#[allow(clippy::too_many_arguments)]
pub fn analyse(
    float: &ModelProto,
    layers: &[QuantizedLayer],
    op_types: &[String],
    macs: &[u64],
    data: &CalibrationSet,
    eval_batches: usize,
    eval_held_out: bool,
    task: Option<TaskEval>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sensitivity> {
    let mut runner = TrialRunner::new(float, data, eval_batches, task)?;
    let n = layers.len();
    let total = 3 * n + 1;
    // all_int8, then per layer alone, left_float and drift (the last drift is all_int8).
    let mut subsets = vec![layers.to_vec()];
    for i in 0..n {
        subsets.push(vec![layers[i].clone()]);
        subsets.push(layers.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, l)| l.clone()).collect());
        if i + 1 < n {
            subsets.push(layers[..=i].to_vec());
        }
    }
    let mut trials = runner.run_many(&subsets, &mut |r| progress(r.trials, total))?.into_iter();
    let all_int8 = trials.next().expect("one per subset");
    let mut out = Vec::with_capacity(n);
    for (i, layer) in layers.iter().enumerate() {
        let alone = trials.next().expect("one per subset");
        let left_float = trials.next().expect("one per subset");
        let drift = if i + 1 == n { all_int8.clone() } else { trials.next().expect("one per subset") };
        out.push(LayerSensitivity {
            name: layer.name.clone(),
            op_type: op_types.get(i).cloned().unwrap_or_default(),
            macs: macs.get(i).copied().unwrap_or(0),
            alone,
            left_float,
            drift,
        });
    }
    Ok(Sensitivity { output: runner.output.clone(), eval_batches, eval_held_out, all_int8, layers: out })
}

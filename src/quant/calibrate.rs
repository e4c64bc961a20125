//! `ascend-ptq calibration`: the whole post-training quantization job, amct_onnx-compatible
//! (docs/ascend-formats.md §1–§8). See [`calibrate`] for the steps.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::act_algos::act_spec;
use super::cmdline::{refuse_evaluator, resolve_data_args};
use super::config::{CalibrationConfig, ConfigError, DstType, Origin, WeightAlgo};
use super::deploy::{QuantConst, QuantizedLayer, build_deploy, check_opset};
use super::error::QuantError;
use super::eval::{OutputAgreement, TaskAgreement, TaskEval, evaluate, resolve_task};
use super::fake::build_fake_quant;
use super::fallback::{AccuracyTarget, Fallback};
use super::fold::fold_batch_norms;
use super::fusion_rule::{self, FloatOps};
use super::observe::{ActResult, ActSpec, ActivationCalibrator};
use super::report::{Findings, FloatLayer, LayerReport, QuantReport};
use super::scale::ActQuant;
use super::select::{Candidate, Decision, QuantLayer, select_layers};
use super::sensitivity::TrialRunner;
use super::{arq, consts, equalize, gptq, record};
use crate::data::calib_set::{CalibError, CalibrationSet};
use crate::engine::{EngineError, Session};
use crate::onnx::proto::ModelProto;
use crate::onnx::shapes::infer_shapes;
use crate::onnx::{Graph, NodeExt, OnnxError, SaveOptions, load_model, node_label, save_model};

/// The command-line options (same names and meanings as amct_onnx, §1.1).
#[derive(Debug, Clone, Default)]
pub struct CalibrationOptions {
    pub model: PathBuf,
    /// Directory plus file-name prefix; ending in `/` means an empty prefix.
    pub save_path: String,
    /// `None`: the model's own static input shapes ([`super::cmdline`]).
    pub input_shape: Option<String>,
    /// Required; an `Option` so that its absence gets amct_onnx's own explanation.
    pub data_dir: Option<String>,
    /// `None`: float32 for every input.
    pub data_types: Option<String>,
    /// `--batch_num`; not allowed together with `calibration_config` (put it in the file).
    pub batch_num: Option<usize>,
    pub calibration_config: Option<PathBuf>,
    /// How many calibration batches (from the first) the fake-quant model is evaluated on
    /// against float for quant_report.json; 0 skips the evaluation. `None`: [`DEFAULT_EVAL_BATCHES`].
    pub eval_batches: Option<usize>,
    /// Held-out batches for that evaluation (`--eval_data_dir`); `None`: the first
    /// calibration batches, with a warning that they are not held out.
    pub eval_data_dir: Option<String>,
    /// Equalize the channel ranges of depthwise-conv inputs before calibrating
    /// ([`super::equalize`]); an exact float rewrite, not done by amct_onnx.
    pub equalize: bool,
    pub weight_rounding: WeightRounding,
    /// `--activation_clip`: how each activation's clip is scored.
    pub activation_clip: ActivationClip,
    /// `--bias_correction`: fold each layer's mean output shift into its int32 bias
    /// ([`super::bias_correction`]).
    pub bias_correction: bool,
    /// `--sensitivity`: write `<prefix>_sensitivity.json` ([`super::sensitivity`]).
    pub sensitivity: bool,
    /// `--task`: a [`crate::tasks::TASK_NAMES`] name; `None` or "raw": tensor metrics only.
    pub task: Option<String>,
    /// `--accuracy_target`: leave layers float until it is met ([`super::fallback`]).
    pub accuracy_target: Option<String>,
    /// amct_onnx's `--evaluator` (a Python script): refused with what to use instead.
    pub evaluator: Option<PathBuf>,
    /// `--exact_ifmr`: IFMR's clip search scores every value against every candidate (the
    /// reference) instead of by bins ([`super::ifmr`]); same results, slower.
    pub exact_ifmr: bool,
}

/// How Conv weights are rounded to int8 (ARQ's scales either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightRounding {
    /// Round-to-nearest, as amct_onnx's ARQ.
    #[default]
    Nearest,
    /// Rounding errors spread over the weights not yet rounded (GPTQ-style, quant::gptq).
    Compensated,
}

/// What an activation's clip range is chosen by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationClip {
    /// The tensor's own quantization error (IFMR / HFMG, as amct_onnx).
    #[default]
    Input,
    /// The output error of the layers reading the tensor (see quant::output_clip).
    Output,
}

/// The evaluation costs about three forward passes per batch; a few batches give stable
/// per-layer numbers.
pub const DEFAULT_EVAL_BATCHES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{flag}: {detail}")]
    Argument { flag: &'static str, detail: String },
    #[error("--save_path: cannot write to {dir}: {source}")]
    SavePath { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] CalibError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("{context}: {source}")]
    Engine { context: String, source: EngineError },
}

pub type Result<T, E = CalibrateError> = std::result::Result<T, E>;

/// The files written: amct_onnx's four and our per-layer report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutputPaths {
    pub deploy_model: PathBuf,
    pub fake_quant_model: PathBuf,
    pub record: PathBuf,
    /// The quant fusion rule for msaccucmp `-q` ([`super::fusion_rule`]).
    pub quant_json: PathBuf,
    /// `<prefix>_quant_report.json`: per-layer scales, algorithms, cosines ([`super::report`]).
    pub quant_report: PathBuf,
    /// `<prefix>_report.html`: the same report for a person, with charts ([`super::report_html`]).
    pub report_html: PathBuf,
    /// `<prefix>_sensitivity.json` ([`super::sensitivity`]), with `--sensitivity` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<PathBuf>,
    /// `<prefix>_fallback.cfg` ([`super::fallback`]), with `--accuracy_target` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_cfg: Option<PathBuf>,
}

impl OutputPaths {
    /// The files every calibration writes (the optional ones aside).
    fn always_written(&self) -> [&PathBuf; 6] {
        [&self.deploy_model, &self.fake_quant_model, &self.record, &self.quant_json, &self.quant_report, &self.report_html]
    }

    /// `DIR/prefix` → `DIR/prefix_deploy_model.onnx`, …; `DIR/` → `DIR/deploy_model.onnx`, ….
    pub fn from_save_path(save_path: &str) -> Result<Self> {
        let file = super::cmdline::save_path_file(save_path)
            .ok_or_else(|| CalibrateError::Argument { flag: "--save_path", detail: "is empty; expected DIR/prefix".into() })?;
        Ok(OutputPaths {
            deploy_model: file("deploy_model.onnx"),
            fake_quant_model: file("fake_quant_model.onnx"),
            record: file("record.txt"),
            quant_json: file("quant.json"),
            quant_report: file("quant_report.json"),
            report_html: file("report.html"),
            sensitivity: None,
            fallback_cfg: None,
        })
    }

    fn dir(&self) -> &Path {
        self.deploy_model.parent().unwrap_or(Path::new("."))
    }
}

/// Progress of a running calibration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A batch of a pass is done: (pass name, batches done, batch_num).
    Batch {
        pass: &'static str,
        done: usize,
        total: usize,
    },
    Writing,
}

/// What a calibration did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub outputs: OutputPaths,
    pub batch_num: usize,
    pub quantized: usize,
    pub left_float: Vec<FloatLayer>,
    pub fused_batch_norms: usize,
    /// Depthwise-conv inputs whose channel ranges were equalized.
    pub equalized: Vec<equalize::Equalized>,
    /// With `--bias_correction`: each corrected layer's bias shift.
    pub bias_correction: Vec<super::bias_correction::BiasShift>,
    /// With `--activation_clip output`: each rescored tensor's clip.
    pub output_clip: Vec<super::output_clip::ClipChoice>,
    /// Fake-quant vs float model outputs on the calibration data.
    pub output_agreement: Vec<OutputAgreement>,
    /// With `--task`: the same in the task's terms.
    pub task_agreement: Option<TaskAgreement>,
    /// With `--accuracy_target`: the layers left float, the int8 MAC share, the trials.
    pub fallback: Option<Fallback>,
    /// The number of batches the agreement was measured on.
    pub eval_batches: usize,
    /// Whether those batches are the held-out `--eval_data_dir` (else calibration batches).
    pub eval_held_out: bool,
    pub warnings: Vec<String>,
    /// Wall time of each phase (preparation, each calibration pass, evaluation, writing).
    pub phase_seconds: Vec<(String, f64)>,
    pub wall_seconds: f64,
}

/// Runs the calibration:
/// 1. parse the config, check `--save_path` is writable and open the calibration set (all
///    argument errors surface before any model work);
/// 2. load the model, check its opset, fix the input shapes, fold BatchNormalization (§5.2);
/// 3. select the layers (§5.1) and quantize their weights with ARQ (§4.3);
/// 4. calibrate the data inputs over the batches (IFMR two passes / HFMG one, §4.1–§4.2);
/// 5. quantize the biases, build the deploy and fake-quant models, evaluate the fake-quant
///    model against the float one (per layer and per output) on the calibration data;
/// 6. write the four files atomically.
pub fn calibrate(opts: &CalibrationOptions, progress: &mut dyn FnMut(Progress)) -> Result<Summary> {
    refuse_evaluator(opts)?;
    let start = Instant::now();
    let mut phases = Phases { list: Vec::new(), last: start };
    let mut warnings = Vec::new();
    let config = match &opts.calibration_config {
        Some(path) => {
            if opts.batch_num.is_some() {
                return Err(CalibrateError::Argument {
                    flag: "--batch_num",
                    detail: "cannot be combined with --calibration_config; set batch_num in the config file".into(),
                });
            }
            CalibrationConfig::from_file(path)?
        }
        None => CalibrationConfig::default(),
    };
    check_unsupported(&config, &mut warnings)?;
    let task = match opts.task.as_deref().map(str::parse::<crate::tasks::Task>).transpose() {
        Ok(Some(crate::tasks::Task::Raw)) | Ok(None) => None,
        Ok(Some(t)) => Some(t),
        Err(e) => return Err(CalibrateError::Argument { flag: "--task", detail: e.to_string() }),
    };
    let target = opts.accuracy_target.as_deref().map(str::parse::<AccuracyTarget>).transpose()?;
    if let Some(t) = &target
        && t.needs_task()
        && task.is_none()
    {
        return Err(CalibrateError::Argument { flag: "--accuracy_target", detail: format!("{t} names a task metric: give --task too") });
    }
    let batch_num = opts.batch_num.unwrap_or(config.batch_num as usize);
    let outputs = OutputPaths::from_save_path(&opts.save_path)?;
    check_writable(&outputs)?;
    check_not_inputs(&outputs, opts)?;
    let mut model = load_model(&opts.model)?;
    let args = resolve_data_args(opts, &model)?;
    let data = CalibrationSet::open(&args.input_shape, &args.data_dir, &args.data_types, batch_num)?;
    let float_ops = FloatOps::new(&model);
    check_opset(&model)?;
    fix_input_shapes(&mut model, &data, &opts.model)?;
    let fold = if config.do_fusion { fold_batch_norms(&mut model, &config.skip_fusion_layers)? } else { Default::default() };
    let equalized = if opts.equalize { equalize_depthwise_inputs(&mut model, &data, &data.shapes(), progress)? } else { Vec::new() };
    let selection = select_layers(&model, &config.skip_layers, &config.skip_layer_types)?;
    for name in &selection.unknown_skip_layers {
        warnings.push(format!("skip_layers: no node named '{name}' in the model"));
    }

    // Weights and the activation algorithm of every layer.
    let mut plans = Vec::new();
    let mut left_float: Vec<FloatLayer> = Vec::new();
    let mut per_tensor = Vec::new();
    for c in &selection.candidates {
        match &c.decision {
            Decision::Float(reason) => left_float.push(FloatLayer::new(c, reason)),
            Decision::Quantize(q) => plans.push(plan_layer(&model, c, q, &config, &mut per_tensor)?),
        }
    }
    if let Some(w) = per_tensor_warning(&per_tensor) {
        warnings.push(w);
    }

    // Activations.
    let mut specs: Vec<(String, ActSpec)> = Vec::new();
    let mut spec_of: Vec<usize> = plans
        .iter()
        .map(|p: &LayerPlan| {
            let key = (p.data_input.clone(), p.act_spec.clone());
            specs.iter().position(|s| *s == key).unwrap_or_else(|| {
                specs.push(key);
                specs.len() - 1
            })
        })
        .collect();
    if opts.exact_ifmr {
        for (_, spec) in specs.iter_mut() {
            let any: &dyn std::any::Any = spec.algorithm();
            if let Some(p) = any.downcast_ref::<super::ifmr::IfmrParams>() {
                *spec = ActSpec::new(super::ifmr::IfmrParams { exact: true, ..*p });
            }
        }
    }
    let shapes = data.shapes();
    // The passes read no initializer: the session plans with the file's copy of those the
    // model did not change, which the model lets go until the passes end.
    let (released, file_weights) = super::unread_weights::release_unchanged(&mut model, &opts.model)?;
    let session = Session::with_initializers(&model, &shapes, file_weights)
        .map_err(|source| CalibrateError::Engine { context: opts.model.display().to_string(), source })?;
    let spec_asymmetric: Vec<bool> = specs.iter().map(|(_, s)| s.algorithm().asymmetric()).collect();
    let mut calibrator = ActivationCalibrator::new(specs, batch_num)?;
    phases.end("preparation");
    let mut act_results: Vec<ActResult> = if plans.is_empty() {
        Vec::new()
    } else {
        for pass in calibrator.passes() {
            let pass_name = pass.name();
            for i in 0..batch_num {
                let batch = data.batch(i)?;
                data.check_finite(&batch)?;
                calibrator.run_batch(&session, batch.into_map(), pass)?;
                progress(Progress::Batch { pass: pass_name, done: i + 1, total: batch_num });
            }
            calibrator.finish_pass(pass)?;
            phases.end(pass_name);
        }
        calibrator.results()?
    };
    // The observers' bins and lists are done with: freed before the evaluation's sessions.
    drop(calibrator);
    release_free_memory();
    released.restore(&mut model)?;

    let output_clip = match opts.activation_clip {
        ActivationClip::Output if !plans.is_empty() => {
            let tensors = scored_tensors(&model, &plans, &spec_of, &spec_asymmetric)?;
            let batches = batch_num.min(super::output_clip::SCORED_BATCHES);
            let choices = super::output_clip::rescore(&session, &tensors, &mut act_results, &data, batches, &mut |done, total| {
                progress(Progress::Batch { pass: "activation clip scoring", done, total })
            })?;
            phases.end("activation clip scoring");
            choices
        }
        _ => Vec::new(),
    };
    let act_of: Vec<ActQuant> = spec_of.iter().map(|&s| act_results[s].quant).collect();
    let compensated = match opts.weight_rounding {
        WeightRounding::Compensated => {
            let done = compensate_weights(&model, &mut plans, &act_of, &data, batch_num, &shapes, progress)?;
            phases.end("weight rounding");
            done
        }
        WeightRounding::Nearest => Vec::new(),
    };

    // Biases.
    let mut layers = Vec::with_capacity(plans.len());
    for (plan, &spec) in plans.iter().zip(&spec_of) {
        layers.push(plan.finish(act_results[spec].quant)?);
    }
    // The layers as rounded, before any bias correction: the fallback re-corrects what it keeps.
    let uncorrected = (opts.bias_correction && opts.accuracy_target.is_some()).then(|| layers.clone());
    let mut bias_shifts = if opts.bias_correction && !layers.is_empty() {
        let shifts = super::bias_correction::correct(&model, &mut layers, &data, batch_num, &mut |done, total| {
            progress(Progress::Batch { pass: "bias correction", done, total })
        })?;
        phases.end("bias correction");
        shifts
    } else {
        Vec::new()
    };
    let held_out = match &opts.eval_data_dir {
        Some(dirs) => Some(CalibrationSet::open_up_to(&args.input_shape, dirs, &args.data_types, opts.eval_batches).map_err(|e| {
            // The set's own messages name --data_dir; here it is the evaluation folder.
            CalibrateError::Argument { flag: "--eval_data_dir", detail: e.to_string().replacen("--data_dir: ", "", 1) }
        })?),
        None => None,
    };
    let (eval_set, eval_batches) = match &held_out {
        Some(set) => (set, if opts.eval_batches == Some(0) { 0 } else { set.batch_num() }),
        None => (&data, opts.eval_batches.unwrap_or(DEFAULT_EVAL_BATCHES).min(batch_num)),
    };
    if held_out.is_none() && eval_batches > 0 && !layers.is_empty() {
        warnings.push(format!(
            "the fake-quant vs float agreement is measured on {eval_batches} calibration batch(es), which are not held out; \
             give --eval_data_dir with other bins for held-out numbers"
        ));
    }
    // `--task auto` is picked from the model's output dims; the pick is among the warnings
    let task = task.map(|t| resolve_task(t, &model, &shapes, first_input_hw(&model, &shapes))).transpose()?.map(|(t, note)| {
        warnings.extend(note);
        t
    });
    let task_eval = task.as_ref().map(|task| TaskEval { task, input_hw: first_input_hw(&model, &shapes) });
    // Every candidate's MACs, for the sensitivity, the fallback and the HTML report alike.
    let candidate_macs = super::report_html::candidate_macs(&model, &selection.candidates, &shapes)?;
    let macs: Vec<u64> = layers.iter().map(|l| candidate_macs.get(&l.name).copied().unwrap_or(0)).collect();
    let sensitivity = if opts.sensitivity && !layers.is_empty() && eval_batches > 0 {
        let op_types: Vec<String> = plans.iter().map(|p| p.op_type.clone()).collect();
        let s = super::sensitivity::analyse(
            &model,
            &layers,
            &op_types,
            &macs,
            eval_set,
            eval_batches,
            held_out.is_some(),
            task_eval,
            &mut |done, total| progress(Progress::Batch { pass: "sensitivity", done, total }),
        )?;
        phases.end("sensitivity");
        Some(s)
    } else {
        if opts.sensitivity {
            warnings.push("--sensitivity: nothing to analyse (no quantized layer or no evaluation batch)".into());
        }
        None
    };
    let fallback = match &target {
        Some(t) if !layers.is_empty() => {
            if eval_batches == 0 {
                return Err(CalibrateError::Argument {
                    flag: "--accuracy_target",
                    detail: "needs evaluation batches: give --eval_data_dir (held out) and do not set --eval_batches 0".into(),
                });
            }
            let mut runner = TrialRunner::new(&model, eval_set, eval_batches, task_eval)?;
            let known = sensitivity.as_ref().map(|s| (&s.all_int8, s.layers.iter().map(|l| l.alone.clone()).collect()));
            let f = super::fallback::search(&mut runner, &layers, &macs, known, t, &mut |done, total| {
                progress(Progress::Batch { pass: "accuracy fallback", done, total })
            })?;
            phases.end("accuracy fallback");
            Some(f)
        }
        Some(_) => {
            warnings.push("--accuracy_target: no quantized layer, nothing to search".into());
            None
        }
        None => None,
    };
    // The layers the fallback leaves float leave the plan; quant_report.json says why.
    if let Some(f) = &fallback {
        let chosen: HashMap<&str, &super::fallback::FallbackLayer> = f.float_layers.iter().map(|l| (l.name.as_str(), l)).collect();
        let keep: Vec<bool> = layers.iter().map(|l| !chosen.contains_key(l.name.as_str())).collect();
        for (plan, layer) in plans.iter().zip(&layers) {
            if let Some(c) = chosen.get(layer.name.as_str()) {
                left_float.push(FloatLayer {
                    name: layer.name.clone(),
                    op_type: plan.op_type.clone(),
                    reason: format!(
                        "accuracy fallback ({}): int8 alone, it brings the output to {:.2} dB SQNR, cosine {:.6}",
                        f.target, c.alone_sqnr_db, c.alone_cosine
                    ),
                });
            }
        }
        retain_flagged(&mut plans, &keep);
        retain_flagged(&mut spec_of, &keep);
        retain_flagged(&mut layers, &keep);
        // The corrections were measured with the fallen-back layers int8; measured again with
        // them float, the result is what `--bias_correction` with the fallback cfg gives.
        if opts.bias_correction
            && !f.float_layers.is_empty()
            && let Some(uncorrected) = uncorrected
        {
            layers = uncorrected;
            retain_flagged(&mut layers, &keep);
            bias_shifts = super::bias_correction::correct(&model, &mut layers, &data, batch_num, &mut |done, total| {
                progress(Progress::Batch { pass: "bias correction (after the fallback)", done, total })
            })?;
            phases.end("bias correction (after the fallback)");
        }
    }

    let evaluates = !layers.is_empty() && eval_batches > 0;
    // The passes' float session serves the evaluation too (one copy of the weights), unless
    // the evaluation data has other shapes.
    let float_session = if !evaluates {
        drop(session);
        None
    } else if eval_set.shapes() != shapes {
        drop(session);
        Some(Session::new(&model, &eval_set.shapes()).map_err(|source| CalibrateError::Engine { context: "float model".into(), source })?)
    } else {
        Some(session)
    };
    // The quantized layers' float weights and biases are read no more: the deploy rewrite
    // replaces them, and need not copy them first (YOLOX: 20 MB of peak memory).
    stub_replaced_constants(&mut model, &layers);
    // The rewritten models.
    let (deploy, quant_nodes) = build_deploy(&model, &layers)?;
    // From here on only the float graph's structure is read (the sessions hold their own
    // weights): its initializers are freed before the evaluation (YOLOX: 20 MB of peak memory),
    // and so are the plans' and layers' int8 weights and biases, which the deploy model holds now.
    if let Some(g) = model.graph.as_mut() {
        g.initializer = Vec::new();
    }
    for (plan, layer) in plans.iter_mut().zip(&mut layers) {
        (plan.weight, plan.bias) = (None, None);
        (layer.weight, layer.bias) = (None, None);
    }
    release_free_memory();
    let evaluation = match float_session {
        Some(float_session) => Some(evaluate(
            float_session,
            &model,
            &deploy,
            &layers,
            &plans.iter().map(|p| p.data_input.clone()).collect::<Vec<_>>(),
            eval_set,
            eval_batches,
            task_eval,
            &mut |done, total| progress(Progress::Batch { pass: "evaluation", done, total }),
        )?),
        None => {
            if layers.is_empty() {
                warnings.push("no layer is quantizable: the deploy and fake-quant models equal the (BN-folded) float model".into());
            }
            None
        }
    };
    phases.end("evaluation");
    progress(Progress::Writing);
    // Built only now: the evaluation runs the deploy model (module doc of `evaluate`).
    let fake = build_fake_quant(&deploy)?;
    let layer_reports: Vec<LayerReport> = plans
        .iter()
        .zip(&layers)
        .zip(&spec_of)
        .enumerate()
        .map(|(i, ((plan, layer), &spec))| LayerReport {
            name: layer.name.clone(),
            op_type: plan.op_type.clone(),
            original_nodes: plan.original_nodes(&fold.folded),
            inserted_nodes: vec![quant_nodes[&layer.name].clone(), layer.dequant_name()],
            data_input: plan.data_input.clone(),
            scale_d: layer.act.scale,
            offset_d: layer.act.offset,
            scale_w: layer.scale_w.clone(),
            offset_w: vec![0; layer.scale_w.len()],
            act_algo: plan.act_spec.name().to_string(),
            clip_min: act_results[spec].clip_min,
            clip_max: act_results[spec].clip_max,
            wts_algo: if plan.op_type == "AveragePool" { "none".into() } else { "arq_quantize".into() },
            channel_wise: plan.channel_wise,
            weight_rounding: if compensated.contains(&layer.name) { "compensated" } else { "nearest" },
            cosine: evaluation.as_ref().map(|e| e.layer_cosine[i]),
        })
        .collect();
    let rule = {
        let mut origins: HashMap<String, Vec<String>> = HashMap::new();
        for ((plan, layer), report) in plans.iter().zip(&layers).zip(&layer_reports) {
            origins.insert(layer.name.clone(), report.original_nodes.clone());
            // A shared AscendQuant stands for the layer it is named after (formats §7.3).
            if quant_nodes[&layer.name] == layer.quant_name() {
                origins.insert(layer.quant_name(), report.original_nodes.clone());
            }
            let mut dequant = report.original_nodes.clone();
            if let Some(add) = plan.bias_add {
                dequant.push(node_label(&model.graph.as_ref().expect("checked").node[add], add));
            }
            origins.insert(layer.dequant_name(), dequant);
        }
        let deploy_shapes = infer_shapes(&deploy, &shapes)?;
        fusion_rule::build(&deploy, &float_ops, &origins, &deploy_shapes)
    };
    let evaluation_ran = evaluation.is_some();
    let task_agreement = evaluation.as_ref().and_then(|e| e.task.clone());
    let output_agreement = evaluation.map(|e| e.outputs).unwrap_or_default();
    // The report shows the data options as used, defaults filled in.
    let resolved = CalibrationOptions {
        input_shape: Some(args.input_shape.clone()),
        data_dir: Some(args.data_dir.clone()),
        data_types: Some(args.data_types.clone()),
        ..opts.clone()
    };
    let report = QuantReport::new(
        &resolved,
        batch_num,
        if evaluation_ran { eval_batches } else { 0 },
        &config,
        layer_reports,
        left_float.clone(),
        Findings {
            fold: &fold,
            outputs: &output_agreement,
            equalized: &equalized,
            bias_correction: &bias_shifts,
            output_clip: &output_clip,
            task: task_agreement.as_ref(),
            fallback: fallback.as_ref(),
        },
    );
    // A layer without weights (AveragePool) records no scale_w, as AMCT's record files
    // (formats §7.1); its 1/area lives in the dequant parameter only.
    let records: Vec<record::RecordEntry> = layers
        .iter()
        .zip(&plans)
        .map(|(l, p)| {
            let scale_w = if p.op_type == "AveragePool" { Vec::new() } else { l.scale_w.clone() };
            record::RecordEntry {
                layer: l.name.clone(),
                scale_d: l.act.scale,
                offset_d: l.act.offset,
                offset_w: vec![0; scale_w.len()],
                scale_w,
            }
        })
        .collect();
    // Rendered before any file is written: a failure leaves none of them.
    let html = super::report_html::render(&report, sensitivity.as_ref(), &candidate_macs);
    save_model(&deploy, &outputs.deploy_model, &SaveOptions::default())?;
    save_model(&fake, &outputs.fake_quant_model, &SaveOptions::default())?;
    crate::onnx::io::write_atomically(&outputs.record, record::render(&records).as_bytes())?;
    crate::onnx::io::write_atomically(&outputs.quant_json, fusion_rule::to_json(&rule).as_bytes())?;
    crate::onnx::io::write_atomically(&outputs.quant_report, report.to_json().as_bytes())?;
    crate::onnx::io::write_atomically(&outputs.report_html, html.as_bytes())?;
    let mut outputs = outputs;
    if let Some(s) = &sensitivity {
        let path = outputs.quant_report.with_file_name(
            outputs.quant_report.file_name().unwrap_or_default().to_string_lossy().replace("quant_report.json", "sensitivity.json"),
        );
        let mut json = serde_json::to_string_pretty(s).unwrap_or_default();
        json.push('\n');
        crate::onnx::io::write_atomically(&path, json.as_bytes())?;
        outputs.sensitivity = Some(path);
    }
    if let Some(f) = &fallback {
        let path = outputs.quant_report.with_file_name(
            outputs.quant_report.file_name().unwrap_or_default().to_string_lossy().replace("quant_report.json", "fallback.cfg"),
        );
        let user = match &opts.calibration_config {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| CalibrateError::Argument { flag: "--calibration_config", detail: format!("{}: {e}", p.display()) })?,
            ),
            None => None,
        };
        let mut cfg = super::fallback::render_cfg(user.as_deref(), batch_num, f);
        if opts.bias_correction {
            // A command-line flag, not a config setting: the cfg reproduces the result with it.
            let at = cfg.find('\n').map_or(0, |i| i + 1);
            cfg.insert_str(at, "# calibrated with --bias_correction: give that flag again with this file\n");
        }
        crate::onnx::io::write_atomically(&path, cfg.as_bytes())?;
        outputs.fallback_cfg = Some(path);
    }
    phases.end("writing");
    Ok(Summary {
        outputs,
        batch_num,
        quantized: layers.len(),
        left_float,
        fused_batch_norms: fold.folded.len(),
        equalized,
        bias_correction: bias_shifts,
        output_clip,
        output_agreement,
        task_agreement,
        fallback,
        eval_batches: if evaluation_ran { eval_batches } else { 0 },
        eval_held_out: held_out.is_some(),
        warnings,
        phase_seconds: phases.list,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Keeps the items whose flag in `keep` (one per item, same order) is true.
fn retain_flagged<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    items.retain(|_| flags.next().copied().unwrap_or(true));
}

struct Phases {
    list: Vec<(String, f64)>,
    last: Instant,
}

impl Phases {
    fn end(&mut self, name: &str) {
        let now = Instant::now();
        self.list.push((name.to_string(), (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

/// Re-rounds the int8 weights of the 2-D Conv layers with [`gptq`] (ARQ's scales kept). One
/// pass over the calibration batches runs the fake-quant model with round-to-nearest weights
/// and collects, for each layer, its input as the int8 layer sees it (upstream int8 layers,
/// then its own AscendQuant). Returns the names of the layers whose weights were re-rounded.
#[allow(clippy::too_many_arguments)]
fn compensate_weights(
    model: &ModelProto,
    plans: &mut [LayerPlan],
    act_of: &[ActQuant],
    data: &CalibrationSet,
    batch_num: usize,
    shapes: &HashMap<String, Vec<i64>>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>> {
    let graph = model.graph.as_ref().expect("checked");
    let mut sums: Vec<(usize, gptq::HessianSums)> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if let Some(geometry) = conv_geometry(model, plan)?
            && geometry.patch_len() <= gptq::MAX_PATCH
        {
            sums.push((i, gptq::HessianSums::new(&plan.name, geometry)));
        }
    }
    if sums.is_empty() {
        return Ok(Vec::new());
    }
    let nearest: Vec<QuantizedLayer> = plans.iter().zip(act_of).map(|(p, &a)| p.finish(a)).collect::<Result<_>>()?;
    let (deploy, _) = build_deploy(model, &nearest)?;
    let fake = build_fake_quant(&deploy)?;
    let fake_session = Session::new(&fake, shapes)
        .map_err(|source| CalibrateError::Engine { context: "weight rounding (fake-quant model)".into(), source })?;
    let observed: HashSet<String> = sums.iter().map(|(i, _)| plans[*i].data_input.clone()).collect();
    for b in 0..batch_num {
        let batch = data.batch(b)?;
        data.check_finite(&batch)?;
        let mut failure = None;
        fake_session
            .run_observed(batch.into_map(), &observed, &mut |name, tensor| {
                for (i, s) in sums.iter_mut() {
                    if plans[*i].data_input != name || failure.is_some() {
                        continue;
                    }
                    let act = act_of[*i];
                    let result = match super::observe::f32_view(tensor) {
                        Some(values) => {
                            let seen: Vec<f32> = values.iter().map(|&x| act.dequantize(act.quantize(x))).collect();
                            s.observe(&seen, tensor.shape())
                        }
                        None => Err(QuantError::layer(&plans[*i].name, "weight rounding: the input is not float32")),
                    };
                    if let Err(e) = result {
                        failure = Some(e);
                    }
                }
            })
            .map_err(|source| CalibrateError::Engine { context: "weight rounding run".into(), source })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        progress(Progress::Batch { pass: "weight rounding", done: b + 1, total: batch_num });
    }
    let mut done = Vec::new();
    for (i, s) in &sums {
        let plan = &mut plans[*i];
        let Some(weight) = plan.weight.as_mut() else { continue };
        let (_, float) = consts::constant_f32(graph, &weight.name)
            .ok_or_else(|| QuantError::layer(&plan.name, format!("weight '{}' is not a float constant", weight.name)))?;
        if let Some(values) = s.round(&float, &plan.scale_w) {
            weight.values = values;
            done.push(plan.name.clone());
        }
    }
    Ok(done)
}

/// For `--activation_clip output`: per activation spec, the tensor and the layers reading it
/// as one-node models ([`super::output_clip`]); None when a reader has no weight to score
/// with (AveragePool) or is not a Conv / ConvTranspose / Gemm / MatMul.
fn scored_tensors(
    model: &ModelProto,
    plans: &[LayerPlan],
    spec_of: &[usize],
    asymmetric: &[bool],
) -> Result<Vec<Option<super::output_clip::ScoredTensor>>> {
    use super::output_clip::{ScoredLayer, ScoredTensor};
    let graph = model.graph.as_ref().expect("checked");
    let mut tensors: Vec<Option<ScoredTensor>> = Vec::with_capacity(asymmetric.len());
    for (s, &asym) in asymmetric.iter().enumerate() {
        let readers: Vec<&LayerPlan> = plans.iter().zip(spec_of).filter(|&(_, &k)| k == s).map(|(p, _)| p).collect();
        let mut layers = Vec::new();
        for p in &readers {
            let Some(weight) = p.weight.as_ref().filter(|_| matches!(p.op_type.as_str(), "Conv" | "ConvTranspose" | "Gemm" | "MatMul"))
            else {
                break;
            };
            let (float_dims, float_values) = consts::constant_f32(graph, &weight.name)
                .ok_or_else(|| QuantError::layer(&p.name, format!("weight '{}' is not a float constant", weight.name)))?;
            let udims: Vec<usize> = weight.dims.iter().map(|&d| d as usize).collect();
            let int8_values = arq::dequantize_weights(&p.name, &weight.values, &udims, p.layout, &p.scale_w)?;
            let clear_trans_b = p.clear_trans_b;
            layers.push(ScoredLayer::new(
                model,
                &graph.node[p.node],
                &p.name,
                &p.data_input,
                &weight.name,
                (&float_dims, float_values),
                (&weight.dims, int8_values),
                |node| {
                    if clear_trans_b {
                        crate::onnx::build::set_attr(node, crate::onnx::build::attr_int("transB", 0));
                    }
                },
            ));
        }
        let complete = !readers.is_empty() && layers.len() == readers.len();
        tensors.push(complete.then(|| ScoredTensor { tensor: readers[0].data_input.clone(), asymmetric: asym, layers }));
    }
    Ok(tensors)
}

/// (height, width) of the model's first data input: the frame decoded boxes are in.
fn first_input_hw(model: &ModelProto, shapes: &HashMap<String, Vec<i64>>) -> (usize, usize) {
    let graph = model.graph.as_ref().expect("checked");
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    graph
        .input
        .iter()
        .find(|i| !initializers.contains(i.name()))
        .and_then(|i| shapes.get(i.name()))
        .filter(|d| d.len() >= 2)
        .map(|d| (d[d.len() - 2].max(1) as usize, d[d.len() - 1].max(1) as usize))
        .unwrap_or((1, 1))
}

/// The geometry of a planned 2-D Conv layer (4-D weight); `None` for other layers.
fn conv_geometry(model: &ModelProto, plan: &LayerPlan) -> Result<Option<gptq::ConvGeometry>> {
    let node = &model.graph.as_ref().expect("checked").node[plan.node];
    let Some(weight) = plan.weight.as_ref().filter(|w| plan.op_type == "Conv" && w.dims.len() == 4) else {
        return Ok(None);
    };
    let dims: Vec<usize> = weight.dims.iter().map(|&d| d as usize).collect();
    let groups = node.attr_i("group", 1)?.max(1) as usize;
    let window = crate::onnx::window::WindowAttrs::read(node)
        .and_then(|a| a.window(2, Some(&dims[2..])))
        .map_err(|e| QuantError::layer(&plan.name, e.0))?;
    Ok(Some(gptq::ConvGeometry { c_in: dims[1] * groups, c_out: dims[0], groups, window }))
}

/// Measures the per-channel ranges of the equalizable tensors over the calibration batches and
/// rewrites the model ([`super::equalize`]).
fn equalize_depthwise_inputs(
    model: &mut ModelProto,
    data: &CalibrationSet,
    shapes: &std::collections::HashMap<String, Vec<i64>>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<equalize::Equalized>> {
    let graph = model.graph.as_ref().ok_or(QuantError::NoGraph)?;
    let candidates = equalize::find_candidates(graph);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let observe: std::collections::HashSet<String> = candidates.iter().map(|c| c.tensor.clone()).collect();
    // Only the part of the graph up to those tensors runs (PP-OCRv4 det: the backbone).
    let mut wanted: Vec<&str> = observe.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let pruned = crate::onnx::prune::ancestors_model(model, &wanted);
    let session = Session::new(pruned.as_ref().unwrap_or(model), shapes)
        .map_err(|source| CalibrateError::Engine { context: "equalization pass".into(), source })?;
    let mut abs_max = std::collections::HashMap::new();
    let total = data.batch_num();
    for i in 0..total {
        let batch = data.batch(i)?;
        data.check_finite(&batch)?;
        session
            .run_observed(batch.into_map(), &observe, &mut |name, t| {
                if let Some(values) = super::observe::f32_view(t) {
                    equalize::merge_abs_max(&mut abs_max, name, t.shape(), &values);
                }
            })
            .map_err(|source| CalibrateError::Engine { context: "equalization pass".into(), source })?;
        progress(Progress::Batch { pass: "equalization", done: i + 1, total });
    }
    let mut done = Vec::new();
    for c in &candidates {
        let Some(m) = abs_max.get(&c.tensor).filter(|m| m.len() == c.channels) else { continue };
        let k = equalize::gains(m);
        let graph = model.graph.as_mut().expect("checked");
        let (names, producer_conv) = (equalize::consumer_names(graph, c), equalize::producer_conv(graph, c));
        equalize::apply(graph, c, &k)?;
        let max_gain = k.iter().copied().fold(1.0, f32::max);
        done.push(equalize::Equalized { tensor: c.tensor.clone(), depthwise_convs: names, producer_conv, max_gain, gains: k });
    }
    // The per-channel copies replace shared scalar constants; drop the originals left unused.
    consts::remove_unused_constants(model.graph.as_mut().expect("checked"));
    Ok(done)
}

/// Settings we read but do not implement are errors (or warnings when harmless), never
/// silently ignored.
fn check_unsupported(config: &CalibrationConfig, warnings: &mut Vec<String>) -> Result<()> {
    let unsupported =
        |what: &str| Err(CalibrateError::Argument { flag: "--calibration_config", detail: format!("{what} is not supported") });
    if config.joint_quant {
        return unsupported("joint_quant: true");
    }
    if config.fakequant_precision_mode.is_some() {
        warnings.push("fakequant_precision_mode: FORCE_FP16_QUANT is not emulated; the fake-quant model computes in float32".into());
    }
    let mut algos = vec![&config.common_config];
    algos.extend(config.override_layer_types.iter().map(|o| &o.config));
    algos.extend(config.override_layer_configs.iter().map(|o| &o.config));
    for a in algos {
        if matches!(a.weights, Some(WeightAlgo::Ada(_))) {
            return unsupported("ada_quantize (use arq_quantize)");
        }
        if a.dmq_balancer.is_some() {
            return unsupported("dmq_balancer");
        }
        if let Some(act) = &a.activations
            && act.dst_type() != DstType::Int8
        {
            return unsupported(&format!("{}.dst_type INT16", act.field_name()));
        }
    }
    Ok(())
}

fn check_writable(outputs: &OutputPaths) -> Result<()> {
    let dir = outputs.dir();
    let err = |source| CalibrateError::SavePath { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    // A directory in the way of an output would fail its write after the others were written.
    for path in outputs.always_written() {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            let detail = format!("{} is a directory", path.display());
            return Err(err(std::io::Error::new(std::io::ErrorKind::IsADirectory, detail)));
        }
    }
    Ok(())
}

/// No output may be one of the input files (`--save_path m` next to `m_deploy_model.onnx`
/// given as `--model`): writing it would destroy the input.
fn check_not_inputs(outputs: &OutputPaths, opts: &CalibrationOptions) -> Result<()> {
    let inputs =
        std::iter::once(("--model", opts.model.as_path())).chain(opts.calibration_config.as_deref().map(|c| ("--calibration_config", c)));
    for (flag, input) in inputs {
        for out in outputs.always_written() {
            if crate::onnx::io::same_file(input, out) {
                return Err(CalibrateError::Argument {
                    flag: "--save_path",
                    detail: format!("would write {}, which is the {flag} file; choose another --save_path", out.display()),
                });
            }
        }
    }
    Ok(())
}

/// Every model input must be given in `--input_shape` (and nothing else); the graph inputs get
/// the fixed dims, which the deploy model carries to ATC.
fn fix_input_shapes(model: &mut ModelProto, data: &CalibrationSet, path: &Path) -> Result<()> {
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let initializers: std::collections::HashSet<String> = graph.initializer.iter().map(|t| t.name().to_string()).collect();
    let model_inputs: Vec<String> = graph.input.iter().map(|i| i.name().to_string()).filter(|n| !initializers.contains(n)).collect();
    let shapes = data.shapes();
    for name in data.input_names() {
        if !model_inputs.iter().any(|m| m == name) {
            return Err(CalibrateError::Argument {
                flag: "--input_shape",
                detail: format!("'{name}' is not an input of {}; its inputs are: {}", path.display(), model_inputs.join(", ")),
            });
        }
    }
    for name in &model_inputs {
        if !shapes.contains_key(name) {
            return Err(CalibrateError::Argument {
                flag: "--input_shape",
                detail: format!(
                    "model input '{name}' of {} has no shape and no data; give it in --input_shape and --data_dir",
                    path.display()
                ),
            });
        }
    }
    crate::onnx::input_shape::set_input_dims(graph, &shapes).map_err(|(name, model, given)| CalibrateError::Argument {
        flag: "--input_shape",
        detail: format!("'{name}' has rank {model} in the model but {given} dims were given"),
    })?;
    Ok(())
}

/// A float constant: name, dims, values.
type FloatConst = (String, Vec<i64>, Vec<f32>);

/// A layer to quantize, before its activation is calibrated.
#[derive(Debug, Clone)]
pub(crate) struct LayerPlan {
    node: usize,
    name: String,
    op_type: String,
    data_input: String,
    act_spec: ActSpec,
    channel_wise: bool,
    scale_w: Vec<f32>,
    weight: Option<QuantConst<i8>>,
    layout: arq::WeightLayout,
    bias: Option<FloatConst>,
    clear_trans_b: bool,
    bias_add: Option<usize>,
}

impl LayerPlan {
    /// The source node names this layer stands for (the layer, a folded BatchNormalization).
    fn original_nodes(&self, folded: &[(String, String)]) -> Vec<String> {
        let mut names = vec![self.name.clone()];
        names.extend(folded.iter().filter(|(conv, _)| *conv == self.name).map(|(_, bn)| bn.clone()));
        names
    }

    /// The layer with its activation parameters: quantizes the bias (§2.3).
    fn finish(&self, act: crate::quant::scale::ActQuant) -> Result<QuantizedLayer> {
        let bias = match &self.bias {
            Some((name, dims, values)) => Some(QuantConst {
                name: name.clone(),
                dims: dims.clone(),
                values: arq::quantize_bias(&self.name, values, act.scale, &self.scale_w)?,
            }),
            None => None,
        };
        Ok(QuantizedLayer {
            node: self.node,
            name: self.name.clone(),
            act,
            scale_w: self.scale_w.clone(),
            weight: self.weight.clone(),
            bias,
            clear_trans_b: self.clear_trans_b,
            bias_add: self.bias_add,
        })
    }
}

/// The one warning for the layers a `common_config` channel_wise: true was applied per tensor
/// to: "N layers (Gemm: fc, MatMul: mm1, mm2)".
fn per_tensor_warning(layers: &[(String, String)]) -> Option<String> {
    if layers.is_empty() {
        return None;
    }
    let mut types: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, op_type) in layers {
        match types.iter_mut().find(|(t, _)| t == op_type) {
            Some((_, names)) => names.push(name),
            None => types.push((op_type, vec![name])),
        }
    }
    let list = types.iter().map(|(t, names)| format!("{t}: {}", names.join(", "))).collect::<Vec<_>>().join("; ");
    Some(format!(
        "common_config.arq_quantize.channel_wise: true was applied per tensor to {} layer(s) whose op type has one weight \
         scale only ({list}); the other layers are quantized per channel",
        layers.len()
    ))
}

/// Quantizes the weights of a selected layer and picks its activation algorithm. A
/// `common_config` channel_wise: true on an op that is per tensor only is applied per tensor
/// (the layer is added to `per_tensor`); asked by an override naming the layer or its type, it
/// is an error.
fn plan_layer(
    model: &ModelProto,
    c: &Candidate,
    q: &QuantLayer,
    config: &CalibrationConfig,
    per_tensor: &mut Vec<(String, String)>,
) -> Result<LayerPlan> {
    let graph = model.graph.as_ref().expect("checked");
    let n = &graph.node[c.node];
    let name = node_label(n, c.node);
    let algo = config.layer_algo(&name, &c.op_type);
    let act_spec = act_spec(&algo);
    let mut channel_wise = match &algo.weights {
        WeightAlgo::Arq(a) => a.channel_wise.unwrap_or(q.channel_wise),
        WeightAlgo::Ada(_) => unreachable!("refused by check_unsupported"),
    };
    if channel_wise && !q.channel_wise {
        let by = match algo.weights_origin {
            Origin::Common | Origin::Default => {
                per_tensor.push((name.clone(), c.op_type.clone()));
                channel_wise = false;
                None
            }
            Origin::LayerType => Some(format!("override_layer_types \"{}\"", c.op_type)),
            Origin::LayerName => Some(format!("override_layer_configs \"{name}\"")),
        };
        if let Some(by) = by {
            return Err(QuantError::layer(
                &name,
                format!(
                    "arq_quantize.channel_wise: true (set by {by} in --calibration_config) is not possible for {}: its weights have one \
                     scale (per tensor only); set channel_wise: false there or remove it",
                    c.op_type
                ),
            )
            .into());
        }
    }
    let mut plan = LayerPlan {
        node: c.node,
        name: name.clone(),
        op_type: c.op_type.clone(),
        data_input: c.data_input.clone(),
        act_spec,
        channel_wise,
        scale_w: Vec::new(),
        weight: None,
        layout: q.layout,
        bias: None,
        clear_trans_b: false,
        bias_add: None,
    };
    if c.op_type == "AveragePool" {
        let area: i64 = n.attr_ints("kernel_shape", &[])?.iter().product();
        plan.scale_w = vec![1.0 / area as f32];
        return Ok(plan);
    }
    let w_name = q.weight.as_ref().expect("weighted layer");
    let (dims, mut values) = consts::constant_f32(graph, w_name)
        .ok_or_else(|| QuantError::layer(&name, format!("weight '{w_name}' is not a float constant")))?;
    let mut dims: Vec<i64> = dims;
    if c.op_type == "Gemm" && n.attr_i("transB", 0)? != 0 {
        // Offline transpose [N, K] → [K, N] (§2.3); the node gets transB = 0.
        let (rows, cols) = (dims[0] as usize, dims[1] as usize);
        values = (0..cols).flat_map(|k| (0..rows).map(move |r| (r, k))).map(|(r, k)| values[r * cols + k]).collect();
        dims = vec![cols as i64, rows as i64];
        plan.clear_trans_b = true;
    }
    let udims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let qw = arq::quantize_weights(&name, &values, &udims, q.layout, channel_wise)?;
    plan.scale_w = qw.scale_w;
    plan.weight = Some(QuantConst { name: w_name.clone(), dims, values: qw.data });
    if let Some(b) = &q.bias {
        let (bdims, bvals) =
            consts::constant_f32(graph, b).ok_or_else(|| QuantError::layer(&name, format!("bias '{b}' is not a float constant")))?;
        plan.bias = Some((b.clone(), bdims, bvals));
    }
    if c.op_type == "MatMul" {
        let n_out = *udims.last().unwrap_or(&0);
        if let Some((add, bias)) = matmul_bias_add(graph, c.node, n_out) {
            plan.bias_add = Some(add);
            plan.bias = Some(bias);
        }
    }
    Ok(plan)
}

/// The `Add` of a float constant bias of `n_out` values that is the only consumer of a MatMul
/// output (§2.1: the dequant then goes after the Add, with the bias in int32).
fn matmul_bias_add(graph: &crate::onnx::GraphProto, matmul: usize, n_out: usize) -> Option<(usize, FloatConst)> {
    let view = Graph::new(graph).ok()?;
    let y = graph.node[matmul].output.first()?;
    if graph.output.iter().any(|o| o.name() == y) {
        return None;
    }
    let [(add, _)] = view.consumers(y) else { return None };
    let add_node = &graph.node[*add];
    if add_node.op_type() != "Add" || add_node.input.len() != 2 {
        return None;
    }
    let other = add_node.input.iter().find(|i| *i != y)?;
    let (dims, values) = consts::constant_f32(graph, other)?;
    let vector_like = dims.iter().rev().skip(1).all(|&d| d == 1) && dims.last().is_some_and(|&d| d as usize == n_out);
    if !vector_like || view.consumers(other).len() != 1 {
        return None;
    }
    Some((*add, (other.clone(), dims, values)))
}

/// Replaces the float weights and biases `layers` quantize by stubs (name, dims, type).
fn stub_replaced_constants(model: &mut ModelProto, layers: &[QuantizedLayer]) {
    let replaced: HashSet<&str> =
        layers.iter().flat_map(|l| l.weight.iter().map(|w| w.name.as_str()).chain(l.bias.iter().map(|b| b.name.as_str()))).collect();
    for t in model.graph.iter_mut().flat_map(|g| g.initializer.iter_mut()) {
        if replaced.contains(t.name()) {
            *t = super::unread_weights::stub(t);
        }
    }
}

/// Hands the heap's free pages back to the system. glibc keeps freed small and medium blocks
/// (the observers' bins) in its heap, while the next phase's large buffers (the evaluation's
/// session weights) come from fresh mappings: without this the peak RSS is the sum of both.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

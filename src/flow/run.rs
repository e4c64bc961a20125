//! The steps of `ascend-ptq flow`, in the order `quant_all_script.py` runs them:
//! preprocess → calibration → ATC int8 (from the deploy model) → ATC fp16 (from the float
//! model) → compare. Each step is skipped when flow.json shows it done with the same inputs
//! ([`super::state`]); a failed step stops the flow, recorded in flow.json with its error and
//! log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::error::FlowError;
use super::params::{FlowParams, load_flow_params};
use super::state::{FileStamp, FlowReport, StepRecord, StepStatus, fingerprint, stamps};
use crate::compare::{CompareOptions, DEFAULT_THRESHOLD, InputSource, compare_oms};
use crate::data::preprocess::{PreprocessOptions, bins_dir, list_images, preprocess};
use crate::device::acl::LibrarySearch;
use crate::device::atc::plan::shell_quote;
use crate::device::atc::{
    AtcError, BuildEntry, BuildRequest, OmNames, Precision, RunOptions, build_simulated, build_with_atc, find_atc, plan_builds, precheck,
};
use crate::engine::cancel::cancelled;
use crate::onnx::input_shape::parse_input_shapes;
use crate::quant::calibrate::{CalibrationOptions, calibrate};

/// The ACL simulator's library, looked for beside the running program with `--simulate`.
pub const SIM_LIB: &str = "libascendcl_sim.so";

/// What `ascend-ptq flow` / `aptq_flow` are asked for.
#[derive(Debug, Clone, Default)]
pub struct FlowOptions {
    pub params: PathBuf,
    /// Simulated OMs instead of ATC, compared through the ACL simulator.
    pub simulate: bool,
    /// Overrides the file's `socVersion` / `soc_version`.
    pub soc_version: Option<String>,
    pub atc: Option<PathBuf>,
    pub acl_lib: Option<PathBuf>,
    /// Seconds one ATC run may take.
    pub atc_timeout: u64,
    /// Redo every step, even those flow.json shows as up to date.
    pub force: bool,
    /// `--task` of calibration and compare.
    pub task: Option<String>,
    /// compare's `--threshold` (default cosine >= 0.99).
    pub threshold: Option<String>,
    /// calibration's `--accuracy_target`.
    pub accuracy_target: Option<String>,
}

/// Progress of a flow, for a caller that shows it.
#[derive(Debug)]
pub enum FlowEvent<'a> {
    Start {
        index: usize,
        total: usize,
        step: &'static str,
        command: &'a str,
    },
    /// Work inside the current step (images, batches, input sets).
    Progress {
        done: usize,
        total: usize,
    },
    /// A line of ATC's output.
    Line(&'a str),
    End {
        step: &'static str,
        record: &'a StepRecord,
    },
}

/// Where the flow's files go, named as the reference scripts name them.
struct Names {
    out: PathBuf,
    /// `<out>/<stem>_int8` (calibration's --save_path).
    int8_prefix: String,
    deploy: PathBuf,
    int8_om: PathBuf,
    fp16_om: PathBuf,
    compare: PathBuf,
    flow_json: PathBuf,
    logs: PathBuf,
}

impl Names {
    fn new(p: &FlowParams) -> Names {
        let out = p.output_root_dir.clone();
        let stem = p.onnx_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
        let int8_prefix = out.join(format!("{stem}_int8")).to_string_lossy().into_owned();
        Names {
            deploy: PathBuf::from(format!("{int8_prefix}_deploy_model.onnx")),
            int8_prefix,
            int8_om: out.join(format!("{stem}_int8_deploy_model_inc_pre.om")),
            fp16_om: out.join(format!("{stem}_fp16_deploy_model_inc_pre.om")),
            compare: out.join(format!("{stem}_compare")),
            flow_json: out.join("flow.json"),
            logs: out.join("flow_logs"),
            out,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Preprocess,
    Calibration,
    AtcInt8,
    AtcFp16,
    Compare,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Preprocess => "preprocess",
            Step::Calibration => "calibration",
            Step::AtcInt8 => "atc_int8",
            Step::AtcFp16 => "atc_fp16",
            Step::Compare => "compare",
        }
    }
}

/// The result of running one step: outputs, a note, the step's own summary, its log.
#[derive(Default)]
struct Ran {
    outputs: Vec<PathBuf>,
    note: Option<String>,
    details: Option<serde_json::Value>,
    log: Option<PathBuf>,
    verdict_pass: Option<bool>,
}

/// A step's failure: the message, and its log when it has one.
struct StepFailure {
    message: String,
    log: Option<PathBuf>,
    details: Option<serde_json::Value>,
}

impl<E: std::fmt::Display> From<E> for StepFailure {
    fn from(e: E) -> Self {
        StepFailure { message: e.to_string(), log: None, details: None }
    }
}

/// How the compare step reaches AscendCL.
enum Acl {
    Library(PathBuf),
    /// Let compare's own discovery find it.
    Discovered,
    Missing(String),
}

/// Runs the flow of `opts.params`; flow.json is rewritten after every step.
pub fn run_flow(opts: &FlowOptions, on_event: &mut dyn FnMut(FlowEvent)) -> Result<FlowReport, FlowError> {
    let start = Instant::now();
    // The task options are checked before any step runs, not minutes later by their step.
    if opts.task.is_some() || opts.threshold.is_some() {
        crate::compare::options::criteria(opts.task.as_deref(), opts.threshold.as_deref().unwrap_or("cosine>=0.99"))
            .map_err(|e| FlowError::Argument { flag: "--task/--threshold", detail: e.to_string() })?;
    }
    if let Some(t) = &opts.accuracy_target {
        t.parse::<crate::quant::fallback::AccuracyTarget>()
            .map_err(|e| FlowError::Argument { flag: "--accuracy_target", detail: e.to_string() })?;
    }
    let params = load_flow_params(&opts.params, opts.soc_version.as_deref())?;
    let names = Names::new(&params);
    let steps = plan_steps(&params);
    let atc = if !opts.simulate && steps.iter().any(|s| matches!(s, Step::AtcInt8 | Step::AtcFp16)) {
        // Before any long step: a missing ATC should not cost a calibration first.
        Some(
            find_atc(opts.atc.as_deref())
                .map_err(|e| FlowError::Argument { flag: "--atc", detail: format!("{e} (or run with --simulate)") })?,
        )
    } else {
        None
    };
    let acl = acl_library(opts);
    std::fs::create_dir_all(&names.out).map_err(|source| FlowError::Io { path: names.out.clone(), source })?;
    let previous = if opts.force { None } else { FlowReport::read(&names.flow_json) };
    let mut report = FlowReport {
        version: 1,
        tool: format!("ascend-ptq {}", crate::VERSION),
        params: params.path.to_string_lossy().into_owned(),
        output_root_dir: names.out.to_string_lossy().into_owned(),
        simulated: opts.simulate,
        steps: Vec::new(),
        verdict_pass: None,
        warnings: params.warnings.clone(),
        wall_seconds: 0.0,
    };
    let ctx = Ctx { opts, params: &params, names: &names, atc: atc.as_ref().map(|a| a.path.clone()), acl };
    let total = steps.len();
    for (index, &step) in steps.iter().enumerate() {
        let (command, inputs) = ctx.describe(step);
        let fp = fingerprint(step.name(), &command, &stamps(&inputs));
        on_event(FlowEvent::Start { index, total, step: step.name(), command: &command });
        if cancelled() {
            return Err(stop_cancelled(&mut report, &steps[index..], start, &names, on_event));
        }
        let record = if let Some(done) = previous.as_ref().and_then(|p| p.up_to_date(step.name(), &fp)) {
            if step == Step::Compare {
                report.verdict_pass = done.details.as_ref().and_then(|d| d["pass"].as_bool());
            }
            StepRecord { status: StepStatus::UpToDate, duration_s: 0.0, ..done.clone() }
        } else {
            let began = Instant::now();
            let outcome = ctx.run(step, on_event);
            let duration_s = (began.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            let mut record = StepRecord {
                name: step.name().into(),
                status: StepStatus::Done,
                command,
                duration_s,
                outputs: Vec::new(),
                fingerprint: fp,
                log: None,
                note: None,
                error: None,
                details: None,
            };
            match outcome {
                Ok(ran) => {
                    record.outputs = ran.outputs.iter().filter_map(|p| FileStamp::of(p)).collect();
                    record.note = ran.note;
                    record.details = ran.details;
                    record.log = ran.log.map(|l| l.to_string_lossy().into_owned());
                    if ran.outputs.is_empty() {
                        record.status = StepStatus::Skipped;
                    }
                    if ran.verdict_pass.is_some() {
                        report.verdict_pass = ran.verdict_pass;
                    }
                }
                Err(_) if cancelled() => {
                    // The step's own error is the cancellation (or came from it): not a failure.
                    return Err(stop_cancelled(&mut report, &steps[index..], start, &names, on_event));
                }
                Err(mut failure) => {
                    if failure.log.is_none() {
                        failure.log = write_step_log(&names.logs, step, &record.command, &failure.message);
                    }
                    record.status = StepStatus::Failed;
                    record.error = Some(failure.message.clone());
                    record.details = failure.details;
                    record.log = failure.log.as_ref().map(|l| l.to_string_lossy().into_owned());
                    on_event(FlowEvent::End { step: step.name(), record: &record });
                    report.steps.push(record);
                    for &later in &steps[index + 1..] {
                        report.steps.push(not_run(later));
                    }
                    report.wall_seconds = start.elapsed().as_secs_f64();
                    report.write(&names.flow_json)?;
                    return Err(FlowError::Step { step: step.name(), message: failure.message, log: failure.log });
                }
            }
            record
        };
        on_event(FlowEvent::End { step: step.name(), record: &record });
        report.steps.push(record);
        report.wall_seconds = start.elapsed().as_secs_f64();
        report.write(&names.flow_json)?;
    }
    Ok(report)
}

/// `<out>/flow_logs/<step>.log` for a step that runs in this process: its command and error
/// (ATC steps have ATC's own log). None when it cannot be written (the error still reaches
/// flow.json and the caller).
fn write_step_log(dir: &Path, step: Step, command: &str, error: &str) -> Option<PathBuf> {
    let path = dir.join(format!("{}.log", step.name()));
    std::fs::create_dir_all(dir).ok()?;
    std::fs::write(&path, format!("$ {command}\nerror: {error}\n")).ok()?;
    Some(path)
}

/// Records `steps[0]` as cancelled and the rest as not run, writes flow.json, and gives the
/// error to return (flow.json's own write error wins: the caller must learn of it).
fn stop_cancelled(
    report: &mut FlowReport,
    steps: &[Step],
    start: Instant,
    names: &Names,
    on_event: &mut dyn FnMut(FlowEvent),
) -> FlowError {
    let mut record = not_run(steps[0]);
    record.status = StepStatus::Cancelled;
    record.note = Some("cancelled by the caller; this step wrote no outputs".into());
    on_event(FlowEvent::End { step: steps[0].name(), record: &record });
    report.steps.push(record);
    for &later in &steps[1..] {
        let mut r = not_run(later);
        r.note = Some("the flow was cancelled".into());
        report.steps.push(r);
    }
    report.wall_seconds = start.elapsed().as_secs_f64();
    match report.write(&names.flow_json) {
        Ok(()) => FlowError::Cancelled { step: steps[0].name() },
        Err(e) => e,
    }
}

fn not_run(step: Step) -> StepRecord {
    StepRecord {
        name: step.name().into(),
        status: StepStatus::NotRun,
        command: String::new(),
        duration_s: 0.0,
        outputs: Vec::new(),
        fingerprint: String::new(),
        log: None,
        note: Some("an earlier step failed".into()),
        error: None,
        details: None,
    }
}

/// The steps `quant_all_script.py` would run for this file: int8 (preprocess, calibration,
/// ATC) when it has a preprocessing section and `quantInt8`; fp16 when it has `quantFp16` or
/// neither quant section; compare when both OMs are built.
fn plan_steps(p: &FlowParams) -> Vec<Step> {
    let mut steps = Vec::new();
    if p.quant_int8.is_some() {
        steps.extend([Step::Preprocess, Step::Calibration, Step::AtcInt8]);
    }
    if p.quant_fp16 {
        steps.push(Step::AtcFp16);
    }
    if p.quant_int8.is_some() && p.quant_fp16 {
        steps.push(Step::Compare);
    }
    steps
}

/// `--acl-lib`, else with `--simulate` the simulator beside this program, else whatever
/// AscendCL the standard search finds (docs/ascend-formats.md §11.1), else none.
fn acl_library(opts: &FlowOptions) -> Acl {
    if let Some(lib) = &opts.acl_lib {
        return Acl::Library(lib.clone());
    }
    if opts.simulate {
        let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join(SIM_LIB)));
        return match beside.filter(|p| p.is_file()) {
            Some(p) => Acl::Library(p),
            None => Acl::Missing(format!(
                "--simulate: the ACL simulator {SIM_LIB} is not beside this program; build it with `cargo build --release -p \
                 ascend-acl-sim` or give --acl-lib"
            )),
        };
    }
    match LibrarySearch::from_env(None).open() {
        Ok(_) => Acl::Discovered,
        // The search's full list of places tried is for `compare`; here one line says why.
        Err(_) => Acl::Missing(
            "no AscendCL library (libascendcl.so) found: on the board load CANN's set_env.sh or give --acl-lib; without a board              use --simulate"
                .into(),
        ),
    }
}

struct Ctx<'a> {
    opts: &'a FlowOptions,
    params: &'a FlowParams,
    names: &'a Names,
    atc: Option<PathBuf>,
    acl: Acl,
}

fn q(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

impl Ctx<'_> {
    fn bins(&self) -> PathBuf {
        self.params.preprocess.as_ref().map(|l| bins_dir(l, None)).unwrap_or_default()
    }

    fn img_root(&self) -> PathBuf {
        self.params.preprocess.as_ref().map(|l| l.params.img_root.clone()).unwrap_or_default()
    }

    /// The step's equivalent command line and its input files (for the fingerprint).
    fn describe(&self, step: Step) -> (String, Vec<PathBuf>) {
        let p = self.params;
        let n = self.names;
        let aipp: Vec<PathBuf> = p.insert_op_conf.iter().cloned().collect();
        match step {
            Step::Preprocess => {
                let mut inputs = vec![p.path.clone()];
                inputs.extend(list_images(&self.img_root()).unwrap_or_default());
                (format!("ascend-ptq preprocess {}", q(&p.path)), inputs)
            }
            Step::Calibration => (
                format!(
                    "ascend-ptq calibration --model {} --save_path {} --input_shape {} --data_dir {} --data_types float32 --batch_num {}",
                    q(&p.onnx_path),
                    shell_quote(&n.int8_prefix),
                    shell_quote(&p.input_shape),
                    q(&self.bins()),
                    p.quant_int8.unwrap_or(1)
                ) + &self.calibration_extras(),
                vec![p.onnx_path.clone(), self.bins()],
            ),
            Step::AtcInt8 | Step::AtcFp16 => {
                let (source, om) = if step == Step::AtcInt8 { (&n.deploy, &n.int8_om) } else { (&p.onnx_path, &n.fp16_om) };
                let maker = match (&self.atc, self.opts.simulate) {
                    (_, true) => "ascend-ptq build --simulate".to_string(),
                    (Some(atc), false) => q(atc),
                    (None, false) => "atc".into(),
                };
                let aipp_arg = p.insert_op_conf.as_ref().map(|a| format!(" --insert_op_conf={}", q(a))).unwrap_or_default();
                let output = om.with_extension("");
                let command = format!(
                    "{maker} --model={} --framework=5 --output={} --input_shape={} --soc_version={} --output_type=FP32{aipp_arg}",
                    q(source),
                    q(&output),
                    shell_quote(&p.input_shape),
                    shell_quote(&p.soc_version)
                );
                let mut inputs = vec![source.clone()];
                inputs.extend(aipp);
                (command, inputs)
            }
            Step::Compare => {
                let lib = match &self.acl {
                    Acl::Library(l) => format!(" --acl-lib {}", q(l)),
                    Acl::Discovered | Acl::Missing(_) => String::new(),
                };
                let command = format!(
                    "ascend-ptq compare --int8 {} --fp16 {} --images {} --params {} --reference {} --report {} --csv{lib}",
                    q(&n.int8_om),
                    q(&n.fp16_om),
                    q(&self.img_root()),
                    q(&p.path),
                    q(&p.onnx_path),
                    q(&n.compare)
                ) + &self.compare_extras();
                let mut inputs = vec![n.int8_om.clone(), n.fp16_om.clone(), p.path.clone(), p.onnx_path.clone()];
                inputs.extend(list_images(&self.img_root()).unwrap_or_default());
                (command, inputs)
            }
        }
    }

    /// The task and target flags of the calibration step's command line.
    fn calibration_extras(&self) -> String {
        optional_flag("--task", &self.opts.task) + &optional_flag("--accuracy_target", &self.opts.accuracy_target)
    }

    /// The task and threshold flags of the compare step's command line.
    fn compare_extras(&self) -> String {
        optional_flag("--task", &self.opts.task) + &optional_flag("--threshold", &self.opts.threshold)
    }

    fn run(&self, step: Step, on_event: &mut dyn FnMut(FlowEvent)) -> Result<Ran, StepFailure> {
        match step {
            Step::Preprocess => self.preprocess(on_event),
            Step::Calibration => self.calibration(on_event),
            Step::AtcInt8 => self.atc_build(Precision::Int8, on_event),
            Step::AtcFp16 => self.atc_build(Precision::Fp16, on_event),
            Step::Compare => self.compare(on_event),
        }
    }

    fn preprocess(&self, on_event: &mut dyn FnMut(FlowEvent)) -> Result<Ran, StepFailure> {
        let loaded = self.params.preprocess.as_ref().ok_or("no preprocessing section")?;
        let dir = self.bins();
        let opts = PreprocessOptions { dir: dir.clone(), keep_partial: false, skip_bad: false };
        // preprocess reports from worker threads; the events go out after it.
        let report = preprocess(&loaded.params, &opts, None)?;
        on_event(FlowEvent::Progress { done: report.manifest.files.len(), total: report.manifest.files.len() });
        let mut outputs: Vec<PathBuf> = report.manifest.files.iter().map(|f| dir.join(&f.file)).collect();
        outputs.push(dir.join("manifest.json"));
        let images: usize = report.manifest.files.iter().map(|f| f.images.len()).sum();
        Ok(Ran {
            note: Some(format!(
                "{} bin(s) of {:?} from {images} image(s) in {}",
                report.manifest.files.len(),
                report.manifest.shape,
                dir.display()
            )),
            details: Some(
                json!({ "dir": dir, "files": report.manifest.files.len(), "shape": report.manifest.shape, "warnings": report.warnings }),
            ),
            outputs,
            ..Ran::default()
        })
    }

    fn calibration(&self, on_event: &mut dyn FnMut(FlowEvent)) -> Result<Ran, StepFailure> {
        let p = self.params;
        let opts = CalibrationOptions {
            model: p.onnx_path.clone(),
            save_path: self.names.int8_prefix.clone(),
            input_shape: Some(p.input_shape.clone()),
            data_dir: Some(self.bins().to_string_lossy().into_owned()),
            data_types: Some("float32".into()),
            batch_num: p.quant_int8,
            equalize: true,
            task: self.opts.task.clone(),
            accuracy_target: self.opts.accuracy_target.clone(),
            ..CalibrationOptions::default()
        };
        let summary = calibrate(&opts, &mut |progress| {
            if let crate::quant::calibrate::Progress::Batch { done, total, .. } = progress {
                on_event(FlowEvent::Progress { done, total });
            }
        })?;
        let details = serde_json::to_value(&summary).unwrap_or_default();
        // Every path of the summary's outputs, whatever files calibration writes.
        let outputs: Vec<PathBuf> =
            details["outputs"].as_object().into_iter().flatten().filter_map(|(_, v)| v.as_str().map(PathBuf::from)).collect();
        let cos = worst(summary.output_agreement.iter().map(|o| o.cosine));
        let note = format!(
            "{} layer(s) quantized, {} left in float; fake-quant vs float cosine on the calibration batches ≥ {cos:.4}",
            summary.quantized,
            summary.left_float.len()
        );
        Ok(Ran { outputs, note: Some(note), details: Some(details), ..Ran::default() })
    }

    fn atc_build(&self, precision: Precision, on_event: &mut dyn FnMut(FlowEvent)) -> Result<Ran, StepFailure> {
        let p = self.params;
        let req = BuildRequest {
            model: Some(p.onnx_path.clone()),
            deploy: Some(self.names.deploy.clone()),
            input_shapes: parse_input_shapes(&p.input_shape)?,
            soc_version: p.soc_version.clone(),
            aipp: p.insert_op_conf.clone(),
            output_type: Some("FP32".into()),
            precision_mode: None,
            out_dir: self.names.out.clone(),
            only: Some(precision),
            extra_args: Vec::new(),
            om_names: OmNames::ReferenceScripts,
        };
        let plans = plan_builds(&req)?;
        let checks = precheck(&req, &plans)?;
        let inv = plans.first().ok_or("no ATC build planned")?;
        if self.opts.simulate {
            let info = build_simulated(inv, &req, &checks, &self.describe(step_of(precision)).0)?;
            let summary = crate::device::atc::om_summary(&info);
            return Ok(Ran {
                outputs: vec![inv.om_path.clone()],
                note: Some(format!("SIMULATED OM (ACL simulator only, not a hardware build): {summary}")),
                details: Some(json!({ "om": inv.om_path, "summary": summary, "warnings": checks.warnings })),
                ..Ran::default()
            });
        }
        let atc = self.atc.as_deref().ok_or("no atc executable")?;
        let mut entry = BuildEntry::planned(atc, inv);
        let opts = RunOptions { timeout: Duration::from_secs(self.opts.atc_timeout.max(1)), ..RunOptions::default() };
        let built = build_with_atc(atc, inv, &opts, &mut entry, &mut |line| on_event(FlowEvent::Line(line)));
        let details = serde_json::to_value(&entry).ok();
        match built {
            Ok(_) => Ok(Ran {
                outputs: vec![inv.om_path.clone(), inv.log_path.clone()],
                note: entry.summary.clone(),
                details,
                log: Some(inv.log_path.clone()),
                ..Ran::default()
            }),
            Err(AtcError::Failed(failure)) => {
                let tail = failure.tail.iter().map(|l| format!("\n  | {l}")).collect::<String>();
                Err(StepFailure {
                    message: format!("{}{tail}\nto rerun by hand: {}", failure.message, failure.command),
                    log: Some(inv.log_path.clone()),
                    details,
                })
            }
            Err(e) => Err(StepFailure { message: e.to_string(), log: Some(inv.log_path.clone()), details }),
        }
    }

    fn compare(&self, on_event: &mut dyn FnMut(FlowEvent)) -> Result<Ran, StepFailure> {
        let acl_lib = match &self.acl {
            Acl::Library(l) => Some(l.clone()),
            Acl::Discovered => None,
            Acl::Missing(why) => return Ok(Ran { note: Some(format!("not run: {why}")), ..Ran::default() }),
        };
        let section = self.params.preprocess.as_ref().map(|l| l.section.clone());
        let opts = CompareOptions {
            int8_om: self.names.int8_om.clone(),
            fp16_om: self.names.fp16_om.clone(),
            inputs: InputSource::Images { dir: self.img_root(), params: self.params.path.clone(), section },
            reference: Some(self.params.onnx_path.clone()),
            device: 0,
            acl_lib,
            criteria: match (&self.opts.task, &self.opts.threshold) {
                (None, None) => DEFAULT_THRESHOLD.into(),
                (task, threshold) => crate::compare::options::criteria(task.as_deref(), threshold.as_deref().unwrap_or("cosine>=0.99"))?,
            },
        };
        let report = compare_oms(&opts, &mut |done, total| on_event(FlowEvent::Progress { done, total }))?;
        let (json_path, html_path) = report.write(&self.names.compare)?;
        let csv_path = report.write_csv(&self.names.compare)?;
        let worst = worst(report.outputs.iter().map(|o| o.int8_vs_fp16.cosine_similarity.worst));
        let simulated = if self.opts.simulate { " (ACL SIMULATOR, not an NPU)" } else { "" };
        Ok(Ran {
            outputs: vec![json_path, html_path, csv_path],
            note: Some(format!("{}; worst int8-vs-fp16 cosine {worst:.4}{simulated}", report.verdict)),
            details: Some(json!({ "pass": report.pass, "verdict": report.verdict, "device": report.int8_device, "notes": report.notes })),
            verdict_pass: Some(report.pass),
            ..Ran::default()
        })
    }
}

/// ` FLAG 'value'` when the value is given, else nothing.
fn optional_flag(flag: &str, value: &Option<String>) -> String {
    value.as_ref().map(|v| format!(" {flag} {}", shell_quote(v))).unwrap_or_default()
}

/// The smallest cosine, NaN when any is NaN (a NaN cosine fails a verdict; `f64::min` would
/// skip it).
fn worst(cosines: impl Iterator<Item = f64>) -> f64 {
    cosines.fold(f64::INFINITY, |w, c| if w.is_nan() || c.is_nan() { f64::NAN } else { w.min(c) })
}

fn step_of(precision: Precision) -> Step {
    match precision {
        Precision::Int8 => Step::AtcInt8,
        Precision::Fp16 => Step::AtcFp16,
    }
}

//! The comparison: both OMs run on the same input sets; per input and output the ten
//! msaccucmp metrics with x = int8 output, y = fp16 output (fp16 outputs widened exactly);
//! with a reference model also int8-vs-fp32 and fp16-vs-fp32, fp32 being our engine's output
//! of the reference ONNX model on the float equivalent of the input. The verdict: every
//! int8-vs-fp16 cosine similarity reaches the threshold (a NaN cosine fails).

use std::collections::HashMap;

use super::error::CompareError;
use super::inputs::{CompareInputs, InputSet};
use super::metrics::Metrics;
use super::pictures::capture;
use super::report::{Aggregate, CompareReport, Failure, InputRow, OutputMetrics, OutputSummary, Sources};
use super::runner::{IoDesc, OmRunner};
use super::task::{Criteria, TaskRow, TaskSummary, Threshold, decoded_outputs, metric as task_metric, resolve_task, summarize, task_row};
use crate::engine::{EngineError, Session, Tensor};
use crate::tasks::Task;

/// The Ascend compare advisor's cosine threshold (docs/ascend-formats.md §13, `ACCURACY_THRESHOLD = 0.99`).
pub const DEFAULT_THRESHOLD: f64 = 0.99;

/// A cosine that fails the verdict: below the threshold, or NaN.
pub fn below(cosine: f64, threshold: f64) -> bool {
    cosine.is_nan() || cosine < threshold
}

fn mismatch(detail: String) -> CompareError {
    CompareError::ModelMismatch(detail)
}

/// The two models must take the same inputs and give outputs that can be compared element
/// by element (element types may differ, e.g. an FP16 output against an FP32 one).
fn check_interfaces(int8: &dyn OmRunner, fp16: &dyn OmRunner) -> Result<(), CompareError> {
    let (a, b) = (int8.inputs(), fp16.inputs());
    if a.len() != b.len() {
        return Err(mismatch(format!("the int8 model has {} input(s), the fp16 model {}", a.len(), b.len())));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.name != y.name || x.size_bytes != y.size_bytes || x.dtype != y.dtype || x.static_aipp != y.static_aipp {
            return Err(mismatch(format!("input {i} is {} in the int8 model but {} in the fp16 model", x.describe(), y.describe())));
        }
    }
    let (a, b) = (int8.outputs(), fp16.outputs());
    if a.len() != b.len() {
        let names = |d: &[IoDesc]| d.iter().map(|o| format!("'{}'", o.name)).collect::<Vec<_>>().join(", ");
        return Err(mismatch(format!(
            "the int8 model has {} output(s) ({}), the fp16 model {} ({})",
            a.len(),
            names(a),
            b.len(),
            names(b)
        )));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let count = |d: &IoDesc| d.elements().filter(|&n| n * d.dtype.size() == d.size_bytes);
        let same = x.name == y.name && count(x).is_some() && count(x) == count(y);
        if !same {
            return Err(mismatch(format!("output {i} is {} in the int8 model but {} in the fp16 model", x.describe(), y.describe())));
        }
    }
    Ok(())
}

/// Runs one model and checks what it returned against its description.
fn run_checked(runner: &mut dyn OmRunner, which: &str, set: &InputSet) -> Result<Vec<Vec<f64>>, CompareError> {
    let feeds: Vec<&[u8]> = set.feeds.iter().map(Vec::as_slice).collect();
    let model = format!("{which} model on {}", runner.device_label());
    let outs = runner.run(&feeds).map_err(|e| match e {
        CompareError::Run { model: m, detail } => CompareError::Run { model: format!("{m} (input set {})", set.label), detail },
        other => other,
    })?;
    let descs = runner.outputs();
    if outs.len() != descs.len() {
        return Err(CompareError::Run {
            model,
            detail: format!("returned {} output buffer(s), the model describes {}", outs.len(), descs.len()),
        });
    }
    descs
        .iter()
        .zip(outs)
        .map(|(d, bytes)| {
            if bytes.len() != d.size_bytes {
                return Err(CompareError::OutputSize {
                    model: model.clone(),
                    output: d.name.clone(),
                    expected: d.size_bytes,
                    found: bytes.len(),
                });
            }
            Ok(d.dtype.to_f64(&bytes))
        })
        .collect()
}

/// How the reference model's outputs line up with the OM outputs.
struct ReferencePlan<'a> {
    session: &'a Session,
    /// Per OM output, the index of the reference output.
    outputs: Vec<usize>,
    /// Per reference input (session order), the index of the OM input feeding it.
    inputs: Vec<(String, usize)>,
}

fn plan_reference<'a>(session: &'a Session, ins: &[IoDesc], outs: &[IoDesc]) -> Result<ReferencePlan<'a>, CompareError> {
    let ref_outs: Vec<&str> = session.output_names().collect();
    let by_name: Option<Vec<usize>> = outs.iter().map(|o| ref_outs.iter().position(|r| *r == o.name)).collect();
    let outputs = match by_name {
        Some(v) => v,
        None if ref_outs.len() == outs.len() => (0..outs.len()).collect(),
        None => {
            return Err(CompareError::Reference(format!(
                "the reference model has outputs {ref_outs:?}, the OMs {:?}: neither the names nor the count match",
                outs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>()
            )));
        }
    };
    let ref_ins: Vec<String> = session.inputs().map(|s| s.name.clone()).collect();
    let by_name: Option<Vec<usize>> = ref_ins.iter().map(|r| ins.iter().position(|i| i.name == *r)).collect();
    let order = match by_name {
        Some(v) => v,
        None if ref_ins.len() == ins.len() => (0..ins.len()).collect(),
        None => {
            return Err(CompareError::Reference(format!(
                "the reference model has inputs {ref_ins:?}, the OMs {:?}: neither the names nor the count match",
                ins.iter().map(|i| i.name.as_str()).collect::<Vec<_>>()
            )));
        }
    };
    Ok(ReferencePlan { session, outputs, inputs: ref_ins.into_iter().zip(order).collect() })
}

/// `at`: (this set's index, the number of sets), for a cancelled run's error.
fn run_reference(plan: &ReferencePlan, set: &InputSet, outs: &[IoDesc], at: (usize, usize)) -> Result<Vec<Vec<f64>>, CompareError> {
    let Some(floats) = &set.reference else {
        return Err(CompareError::Reference(format!(
            "input set {}: the float input of a static-AIPP input is unknown (raw frames without an AIPP config)",
            set.label
        )));
    };
    let feed: HashMap<String, Tensor> = plan.inputs.iter().map(|(name, k)| (name.clone(), floats[*k].1.clone())).collect();
    let results = plan.session.run(feed).map_err(|e| match e {
        EngineError::Cancelled => CompareError::Cancelled { done: at.0, total: at.1 },
        e => e.into(),
    })?;
    plan.outputs
        .iter()
        .zip(outs)
        .map(|(&r, desc)| {
            let (name, tensor) = &results[r];
            let values = tensor.to_f64_vec();
            if Some(values.len()) != desc.elements() {
                return Err(CompareError::Reference(format!(
                    "output '{name}' has {} elements ({:?}) but the OM output '{}' has {:?}",
                    values.len(),
                    tensor.shape(),
                    desc.name,
                    desc.dims
                )));
            }
            Ok(values)
        })
        .collect()
}

/// Runs both models on every input set and compares them. `reference`: our engine's session
/// of the fp32 ONNX model (planned for the inputs' shapes). `threshold` is the int8-vs-fp16
/// cosine every (input, output) must reach.
pub fn compare(
    int8: &mut dyn OmRunner,
    fp16: &mut dyn OmRunner,
    inputs: &CompareInputs,
    reference: Option<&Session>,
    criteria: impl Into<Criteria>,
) -> Result<CompareReport, CompareError> {
    compare_with_progress(int8, fp16, inputs, reference, criteria, &mut |_, _| {})
}

/// [`compare`], calling `progress(done, total)` after each input set.
pub fn compare_with_progress(
    int8: &mut dyn OmRunner,
    fp16: &mut dyn OmRunner,
    inputs: &CompareInputs,
    reference: Option<&Session>,
    criteria: impl Into<Criteria>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CompareReport, CompareError> {
    let Criteria { task, threshold: criterion } = criteria.into();
    // The cosine the tables mark as low: the verdict's, or the advisor's default.
    let threshold = match &criterion {
        Threshold::Cosine(t) => *t,
        Threshold::Task { .. } => DEFAULT_THRESHOLD,
    };
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(CompareError::Input {
            input: "--threshold".into(),
            detail: format!("{threshold} is not a cosine similarity in [-1, 1]"),
        });
    }
    if let (Threshold::Task { metric, .. }, Task::Raw) = (&criterion, &task) {
        return Err(CompareError::Input {
            input: "--threshold".into(),
            detail: format!("{metric} is a task metric: give --task (db, cls, ctc, ...) to decode the outputs"),
        });
    }
    check_interfaces(int8, fp16)?;
    if inputs.descs() != int8.inputs() {
        return Err(mismatch("the input sets were built for other model inputs than the int8 model's".into()));
    }
    if inputs.is_empty() {
        return Err(CompareError::Input { input: "(all)".into(), detail: "no input sets to compare on".into() });
    }
    let outs = int8.outputs().to_vec();
    let (task, picked) = match &task {
        Task::Raw => (Task::Raw, None),
        t => resolve_task(t, &int8.inputs()[0], &outs)?,
    };
    let plan = reference.map(|s| plan_reference(s, int8.inputs(), &outs)).transpose()?;

    let mut rows = Vec::with_capacity(inputs.len());
    for index in 0..inputs.len() {
        if crate::engine::cancel::cancelled() {
            return Err(CompareError::Cancelled { done: index, total: inputs.len() });
        }
        let set = inputs.get(index)?;
        let x = run_checked(int8, "int8", &set)?;
        let y = run_checked(fp16, "fp16", &set)?;
        let golden = plan.as_ref().map(|p| run_reference(p, &set, &outs, (index, inputs.len()))).transpose()?;
        let outputs = outs
            .iter()
            .enumerate()
            .map(|(k, o)| OutputMetrics {
                output: o.name.clone(),
                int8_vs_fp16: Metrics::compute(&x[k], &y[k]),
                int8_vs_fp32: golden.as_ref().map(|g| Metrics::compute(&x[k], &g[k])),
                fp16_vs_fp32: golden.as_ref().map(|g| Metrics::compute(&y[k], &g[k])),
            })
            .collect();
        let task_row = match (&task, outs.first()) {
            (Task::Raw, _) | (_, None) => None,
            (t, Some(_)) => Some(task_row(t, &int8.inputs()[0], &outs, &x, &y, golden.as_deref())?),
        };
        let pictures = match (&task, outs.first()) {
            (Task::Raw, _) | (_, None) => None,
            (t, Some(out)) => Some(capture(t, set.preview.as_ref(), &int8.inputs()[0], out, &x[0], &y[0])),
        };
        rows.push(InputRow { index, label: set.label, outputs, task: task_row, pictures });
        progress(index + 1, inputs.len());
    }

    let summaries = outs
        .iter()
        .zip(fp16.outputs())
        .enumerate()
        .map(|(k, (o, f))| {
            let column = |pick: fn(&OutputMetrics) -> Option<Metrics>| -> Option<Aggregate> {
                let ms: Option<Vec<Metrics>> = rows.iter().map(|r| pick(&r.outputs[k])).collect();
                ms.map(|m| Aggregate::of(&m))
            };
            OutputSummary {
                name: o.name.clone(),
                elements: o.elements().unwrap_or(0),
                int8_dtype: o.dtype,
                fp16_dtype: f.dtype,
                int8_vs_fp16: column(|m| Some(m.int8_vs_fp16)).expect("always present"),
                int8_vs_fp32: column(|m| m.int8_vs_fp32),
                fp16_vs_fp32: column(|m| m.fp16_vs_fp32),
            }
        })
        .collect();

    let failures: Vec<Failure> = rows
        .iter()
        .flat_map(|r| {
            r.outputs.iter().filter(|o| below(o.int8_vs_fp16.cosine_similarity, threshold)).map(|o| Failure {
                input: r.index,
                label: r.label.clone(),
                output: o.output.clone(),
                cosine_similarity: o.int8_vs_fp16.cosine_similarity,
            })
        })
        .collect();
    let pairs = rows.len() * outs.len();
    let task_summary = outs.first().filter(|_| task != Task::Raw).map(|_| {
        let task_rows: Vec<&TaskRow> = rows.iter().filter_map(|r| r.task.as_ref()).collect();
        let names: Vec<&str> = decoded_outputs(&task, &outs).iter().map(|o| o.name.as_str()).collect();
        TaskSummary { picked: picked.clone(), ..summarize(&task, &names.join(", "), &task_rows) }
    });
    if let Threshold::Task { metric: name, min } = &criterion {
        return task_verdict(TaskVerdict { name, min: *min, rows: &rows, int8, fp16, threshold, inputs, summaries, task_summary });
    }
    let pass = failures.is_empty();
    let verdict = if pass {
        format!("PASS: all {pairs} int8-vs-fp16 cosine similarities (inputs × outputs) are ≥ {threshold}")
    } else {
        let worst = failures
            .iter()
            .map(|f| f.cosine_similarity)
            .fold(f64::INFINITY, |w, c| if c.is_nan() || w.is_nan() { f64::NAN } else { w.min(c) });
        format!("FAIL: {} of {pairs} int8-vs-fp16 cosine similarities are below {threshold} or NaN (worst {worst})", failures.len())
    };
    Ok(CompareReport {
        tool: format!("ascend-ptq {}", crate::VERSION),
        int8_device: int8.device_label(),
        fp16_device: fp16.device_label(),
        sources: Sources::default(),
        threshold,
        criterion: criterion.describe(),
        pass,
        verdict,
        failures,
        outputs: summaries,
        inputs: rows,
        notes: inputs.notes().to_vec(),
        // Filled by the device runner once its handles are released (`compare_oms`).
        teardown_errors: Vec::new(),
        task: task_summary,
    })
}

struct TaskVerdict<'a> {
    name: &'a str,
    min: f64,
    rows: &'a [InputRow],
    int8: &'a dyn OmRunner,
    fp16: &'a dyn OmRunner,
    threshold: f64,
    inputs: &'a CompareInputs,
    summaries: Vec<OutputSummary>,
    task_summary: Option<TaskSummary>,
}

/// The verdict on a task metric: every input's int8-vs-fp16 value reaches `min` (a missing
/// or NaN value fails). `failures` then lists those inputs, with their cosine for reference.
fn task_verdict(v: TaskVerdict) -> Result<CompareReport, CompareError> {
    let mut failures = Vec::new();
    let mut worst = f64::INFINITY;
    for r in v.rows {
        let value = r.task.as_ref().and_then(|t| task_metric(&t.int8_vs_fp16, v.name)).unwrap_or(f64::NAN);
        worst = if value.is_nan() || worst.is_nan() { f64::NAN } else { worst.min(value) };
        if value.is_nan() || value < v.min {
            let o = &r.outputs[0];
            failures.push(Failure {
                input: r.index,
                label: r.label.clone(),
                output: o.output.clone(),
                cosine_similarity: o.int8_vs_fp16.cosine_similarity,
            });
        }
    }
    let pass = failures.is_empty();
    let verdict = if pass {
        format!("PASS: all {} input sets reach int8-vs-fp16 {}>={} (worst {worst})", v.rows.len(), v.name, v.min)
    } else {
        format!("FAIL: {} of {} input sets are below int8-vs-fp16 {}>={} (worst {worst})", failures.len(), v.rows.len(), v.name, v.min)
    };
    Ok(CompareReport {
        tool: format!("ascend-ptq {}", crate::VERSION),
        int8_device: v.int8.device_label(),
        fp16_device: v.fp16.device_label(),
        sources: Sources::default(),
        threshold: v.threshold,
        criterion: format!("{}>={}", v.name, v.min),
        pass,
        verdict,
        failures,
        outputs: v.summaries,
        inputs: v.rows.to_vec(),
        notes: v.inputs.notes().to_vec(),
        teardown_errors: Vec::new(),
        task: v.task_summary,
    })
}

//! `compare --task`: what the outputs mean, beside the tensor metrics. The model's outputs
//! (the first for single-output tasks, all for picodet / centerface; `auto` picks the task
//! from their dims once, [`resolve_task`]) are decoded by [`crate::tasks`] on each side (int8, fp16, fp32 reference) and the sides are
//! compared in the task's terms (text-box F1, top-1, ...), the second of each pair taken as
//! pseudo ground truth. `--threshold` sets the verdict on the cosine (the default) or on a
//! task metric: `cosine>=0.99`, `f1>=0.95`, `top1>=0.99`.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use super::error::CompareError;
use super::runner::IoDesc;
use crate::tasks::{Decoded, Task, TaskMetrics, agreement, decode_outputs};

/// What the verdict is judged on.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// Every (input, output) int8-vs-fp16 cosine similarity reaches it.
    Cosine(f64),
    /// Every input's int8-vs-fp16 task metric (a [`TaskMetrics`] field) reaches `min`.
    Task { metric: String, min: f64 },
}

impl Threshold {
    pub fn describe(&self) -> String {
        match self {
            Threshold::Cosine(t) => format!("cosine>={t}"),
            Threshold::Task { metric, min } => format!("{metric}>={min}"),
        }
    }
}

impl FromStr for Threshold {
    type Err = CompareError;

    /// `0.99`, `cosine>=0.99` or `METRIC>=VALUE`.
    fn from_str(s: &str) -> Result<Threshold, CompareError> {
        let bad = |detail: String| CompareError::Input { input: "--threshold".into(), detail };
        let (metric, value) = match s.split_once(">=") {
            Some((m, v)) => (m.trim(), v.trim()),
            None => ("cosine", s.trim()),
        };
        let min: f64 = value.parse().map_err(|_| bad(format!("{s:?}: expected a number, \"cosine>=0.99\" or \"f1>=0.95\"")))?;
        if !min.is_finite() {
            return Err(bad(format!("{s:?}: the value must be finite")));
        }
        match metric {
            "cosine" => {
                if !(-1.0..=1.0).contains(&min) {
                    return Err(bad(format!("{min} is not a cosine similarity in [-1, 1]")));
                }
                Ok(Threshold::Cosine(min))
            }
            m if TASK_METRICS.contains(&m) => Ok(Threshold::Task { metric: m.to_string(), min }),
            m => Err(bad(format!("unknown metric {m:?}: expected cosine or one of {}", TASK_METRICS.join(", ")))),
        }
    }
}

pub use crate::tasks::{TASK_METRICS, metric};

/// The task and the verdict's threshold. A bare number converts to (raw, cosine ≥ it).
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub task: Task,
    pub threshold: Threshold,
}

impl From<f64> for Criteria {
    fn from(threshold: f64) -> Criteria {
        Criteria { task: Task::Raw, threshold: Threshold::Cosine(threshold) }
    }
}

/// One input set in the task's terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub int8_vs_fp16: TaskMetrics,
    pub int8_vs_fp32: Option<TaskMetrics>,
    pub fp16_vs_fp32: Option<TaskMetrics>,
    /// What each side decoded (boxes, labels, sequences), for the report's pictures and readers.
    pub decoded: BTreeMap<String, Decoded>,
}

/// (height, width) of the model input the boxes are measured in: NHWC uint8 frames behind
/// static AIPP, NCHW tensors otherwise.
pub fn input_hw(input: &IoDesc) -> Option<(usize, usize)> {
    let d: Vec<usize> = input.dims.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
    match (d.len(), input.static_aipp) {
        (4, true) => Some((d[1], d[2])),
        (4, false) => Some((d[2], d[3])),
        _ => None,
    }
}

fn dims_of(out: &IoDesc) -> Vec<usize> {
    out.dims.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect()
}

fn task_error(task: &Task, e: crate::tasks::TaskError) -> CompareError {
    CompareError::Input { input: format!("--task {task}"), detail: e.to_string() }
}

/// The model input's frame for `task`, or an error naming the input.
fn frame(task: &Task, input: &IoDesc) -> Result<(usize, usize), CompareError> {
    input_hw(input).ok_or_else(|| CompareError::Input {
        input: format!("--task {task}"),
        detail: format!("the model input {} is not a 4-D image input", input.describe()),
    })
}

/// The outputs `task` decodes: all of them, or the first.
pub fn decoded_outputs<'a>(task: &Task, outs: &'a [IoDesc]) -> &'a [IoDesc] {
    if task.uses_all_outputs() { outs } else { &outs[..outs.len().min(1)] }
}

/// The task to decode with (`auto` picks one from the outputs' dims) and, for `auto`, what
/// it picked and why.
pub fn resolve_task(task: &Task, input: &IoDesc, outs: &[IoDesc]) -> Result<(Task, Option<String>), CompareError> {
    if *task != Task::Auto {
        return Ok((task.clone(), None));
    }
    let dims: Vec<Vec<usize>> = outs.iter().map(dims_of).collect();
    let refs: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
    task.resolve(&refs, frame(task, input)?).map_err(|e| task_error(task, e))
}

fn decode_side(task: &Task, outs: &[IoDesc], values: &[Vec<f64>], hw: (usize, usize)) -> Result<Decoded, CompareError> {
    let outs = decoded_outputs(task, outs);
    let dims: Vec<Vec<usize>> = outs.iter().map(dims_of).collect();
    let floats: Vec<Vec<f32>> = values.iter().take(outs.len()).map(|v| v.iter().map(|&x| x as f32).collect()).collect();
    let refs: Vec<(&[f32], &[usize])> = floats.iter().zip(&dims).map(|(f, d)| (f.as_slice(), d.as_slice())).collect();
    decode_outputs(task, &refs, hw).map_err(|e| task_error(task, e))
}

/// Decodes the outputs (`int8[k]` is output `outs[k]`'s values) of each side and compares them.
pub fn task_row(
    task: &Task,
    input: &IoDesc,
    outs: &[IoDesc],
    int8: &[Vec<f64>],
    fp16: &[Vec<f64>],
    fp32: Option<&[Vec<f64>]>,
) -> Result<TaskRow, CompareError> {
    let hw = frame(task, input)?;
    let x = decode_side(task, outs, int8, hw)?;
    let y = decode_side(task, outs, fp16, hw)?;
    let g = fp32.map(|g| decode_side(task, outs, g, hw)).transpose()?;
    let agree = |c: &Decoded, r: &Decoded| agreement(c, r).map_err(|e| task_error(task, e));
    let mut decoded = BTreeMap::new();
    let row = TaskRow {
        int8_vs_fp16: agree(&x, &y)?,
        int8_vs_fp32: g.as_ref().map(|g| agree(&x, g)).transpose()?,
        fp16_vs_fp32: g.as_ref().map(|g| agree(&y, g)).transpose()?,
        decoded: BTreeMap::new(),
    };
    decoded.insert("int8".to_string(), x);
    decoded.insert("fp16".to_string(), y);
    if let Some(g) = g {
        decoded.insert("fp32".to_string(), g);
    }
    Ok(TaskRow { decoded, ..row })
}

/// Mean and worst (minimum) of each task metric over the input sets, per pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    pub task: String,
    /// The decoded output(s), comma-separated.
    pub output: String,
    /// `--task auto`: what it picked and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picked: Option<String>,
    pub int8_vs_fp16: BTreeMap<String, (f64, f64)>,
    pub int8_vs_fp32: Option<BTreeMap<String, (f64, f64)>>,
    pub fp16_vs_fp32: Option<BTreeMap<String, (f64, f64)>>,
}

pub fn summarize(task: &Task, output: &str, rows: &[&TaskRow]) -> TaskSummary {
    let pick = |f: fn(&TaskRow) -> Option<&TaskMetrics>| -> Option<BTreeMap<String, (f64, f64)>> {
        let ms: Option<Vec<&TaskMetrics>> = rows.iter().map(|r| f(r)).collect();
        ms.map(|m| crate::tasks::mean_and_worst(m.into_iter()))
    };
    TaskSummary {
        task: task.name().to_string(),
        output: output.to_string(),
        picked: None,
        int8_vs_fp16: crate::tasks::mean_and_worst(rows.iter().map(|r| &r.int8_vs_fp16)),
        int8_vs_fp32: pick(|r| r.int8_vs_fp32.as_ref()),
        fp16_vs_fp32: pick(|r| r.fp16_vs_fp32.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_with_clear_errors() {
        assert_eq!("0.99".parse::<Threshold>().unwrap(), Threshold::Cosine(0.99));
        assert_eq!("cosine>=0.5".parse::<Threshold>().unwrap(), Threshold::Cosine(0.5));
        assert_eq!("f1 >= 0.95".parse::<Threshold>().unwrap(), Threshold::Task { metric: "f1".into(), min: 0.95 });
        let e = "map>=0.5".parse::<Threshold>().unwrap_err().to_string();
        assert!(e.contains("unknown metric \"map\"") && e.contains("f1, precision"), "{e}");
        assert!("cosine>=2".parse::<Threshold>().unwrap_err().to_string().contains("not a cosine similarity"));
        assert!("f1>=x".parse::<Threshold>().is_err());
    }

    #[test]
    fn summaries_take_mean_and_worst_of_the_metrics_that_apply() {
        let a = TaskMetrics { f1: Some(1.0), precision: Some(1.0), ..Default::default() };
        let b = TaskMetrics { f1: Some(0.5), precision: Some(0.25), ..Default::default() };
        let s = crate::tasks::mean_and_worst([&a, &b].into_iter());
        assert_eq!(s["f1"], (0.75, 0.5));
        assert_eq!(s["precision"], (0.625, 0.25));
        assert!(!s.contains_key("top1"));
        assert_eq!(metric(&a, "f1"), Some(1.0));
        assert_eq!(metric(&a, "top1"), None);
    }
}

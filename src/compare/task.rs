//! `compare --task`: what the outputs mean, beside the tensor metrics. The model's first output
//! is decoded by [`crate::tasks`] on each side (int8, fp16, fp32 reference) and the sides are
//! compared in the task's terms (text-box F1, top-1, ...), the second of each pair taken as
//! pseudo ground truth. `--threshold` sets the verdict on the cosine (the default) or on a
//! task metric: `cosine>=0.99`, `f1>=0.95`, `top1>=0.99`.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use super::error::CompareError;
use super::runner::IoDesc;
use crate::tasks::{Decoded, Task, TaskMetrics, agreement, decode};

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

fn decode_side(task: &Task, out: &IoDesc, values: &[f64], hw: (usize, usize)) -> Result<Decoded, CompareError> {
    let dims: Vec<usize> = out.dims.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
    let floats: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    decode(task, &floats, &dims, hw).map_err(|e| CompareError::Input { input: format!("--task {task}"), detail: e.to_string() })
}

/// Decodes the first output of each side and compares them.
pub fn task_row(
    task: &Task,
    input: &IoDesc,
    out: &IoDesc,
    int8: &[f64],
    fp16: &[f64],
    fp32: Option<&[f64]>,
) -> Result<TaskRow, CompareError> {
    let hw = input_hw(input).ok_or_else(|| CompareError::Input {
        input: format!("--task {task}"),
        detail: format!("the model input {} is not a 4-D image input", input.describe()),
    })?;
    let x = decode_side(task, out, int8, hw)?;
    let y = decode_side(task, out, fp16, hw)?;
    let g = fp32.map(|g| decode_side(task, out, g, hw)).transpose()?;
    let agree = |c: &Decoded, r: &Decoded| {
        agreement(c, r).map_err(|e| CompareError::Input { input: format!("--task {task}"), detail: e.to_string() })
    };
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
    /// The decoded output.
    pub output: String,
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

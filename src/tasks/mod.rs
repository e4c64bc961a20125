//! Task decoders and task-level agreement metrics: what a model's output *means* (text boxes,
//! detections, class scores, recognised sequences) and how far two such decodings agree, the
//! reference side (fp32 or fp16) taken as pseudo ground truth.
//!
//! Knows nothing of calibration, comparison or the device: `compare` and `calibration` call
//! it with plain `f32` slices and their dims. One file per decoder family; `geometry.rs` is
//! shared.

pub mod auto;
pub mod centerface;
pub mod cls;
pub mod ctc;
pub mod db;
pub mod geometry;
pub mod picodet;
pub mod yolo;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use auto::Picked;
pub use centerface::CenterfaceParams;
pub use db::DbParams;
pub use picodet::PicodetParams;
pub use yolo::{ClassAgreement, YoloParams};

/// A task and its post-processing parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// No decoding: only tensor metrics apply.
    Raw,
    /// DB text detection (PaddleOCR's `DBPostProcess`).
    Db(DbParams),
    /// Ultralytics YOLOv5 head `[B, N, 5+C]`.
    Yolov5(YoloParams),
    /// Ultralytics YOLOv8 head `[B, 4+C, N]`.
    Yolov8(YoloParams),
    /// YOLOX raw grid head `[B, N, 5+C]`.
    Yolox(YoloParams),
    /// Classification: top-1 / top-5 over batch items.
    Cls,
    /// CTC greedy decoding of a recognition model.
    Ctc,
    /// PicoDet GFL head: per-stride class scores and DFL box distributions (several outputs).
    Picodet(PicodetParams),
    /// CenterFace: heatmap, scale, offset (and landmarks) maps at stride 4 (several outputs).
    Centerface(CenterfaceParams),
    /// Picked from the outputs' layout ([`Task::resolve`], [`auto::pick`]).
    Auto,
}

/// The names [`Task::from_str`] accepts.
pub const TASK_NAMES: &[&str] = &["raw", "db", "yolov5", "yolov8", "yolox", "cls", "ctc", "picodet", "centerface", "auto"];

impl FromStr for Task {
    type Err = TaskError;

    /// A task name with its default parameters.
    fn from_str(s: &str) -> Result<Task, TaskError> {
        Ok(match s {
            "raw" => Task::Raw,
            "db" => Task::Db(DbParams::default()),
            "yolov5" => Task::Yolov5(YoloParams::default()),
            "yolov8" => Task::Yolov8(YoloParams::default()),
            "yolox" => Task::Yolox(YoloParams::default()),
            "cls" => Task::Cls,
            "ctc" => Task::Ctc,
            "picodet" => Task::Picodet(PicodetParams::default()),
            "centerface" => Task::Centerface(CenterfaceParams::default()),
            "auto" => Task::Auto,
            _ => return Err(TaskError::UnknownTask(s.to_string())),
        })
    }
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Raw => "raw",
            Task::Db(_) => "db",
            Task::Yolov5(_) => "yolov5",
            Task::Yolov8(_) => "yolov8",
            Task::Yolox(_) => "yolox",
            Task::Cls => "cls",
            Task::Ctc => "ctc",
            Task::Picodet(_) => "picodet",
            Task::Centerface(_) => "centerface",
            Task::Auto => "auto",
        }
    }

    /// Whether the task decodes all the model's outputs (else only the first).
    pub fn uses_all_outputs(&self) -> bool {
        matches!(self, Task::Picodet(_) | Task::Centerface(_) | Task::Auto)
    }

    /// The task to decode outputs of `dims` with: `auto` picks one ([`auto::pick`]) and says
    /// why; any other task is itself (`None`).
    pub fn resolve(&self, dims: &[&[usize]], input_hw: (usize, usize)) -> Result<(Task, Option<String>), TaskError> {
        match self {
            Task::Auto => {
                let p = auto::pick(dims, input_hw)?;
                let note = format!("--task auto picked {}: {}", p.task, p.reason);
                Ok((p.task, Some(note)))
            }
            t => Ok((t.clone(), None)),
        }
    }
}

/// A text box: four corners in input pixels (top-left, top-right, bottom-right, bottom-left,
/// PaddleOCR's order) and its mean map probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TextBox {
    pub points: [[f32; 2]; 4],
    pub score: f32,
}

/// An object: class index, score, `[x1, y1, x2, y2]` in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub bbox: [f32; 4],
}

/// What [`decode`] makes of one output tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoded {
    TextBoxes(Vec<TextBox>),
    Detections(Vec<Detection>),
    /// Per batch item, the class scores as the model gives them.
    Scores(Vec<Vec<f32>>),
    /// Per batch item, the CTC index sequence.
    Sequences(Vec<Vec<usize>>),
    Raw,
}

impl Decoded {
    fn kind(&self) -> &'static str {
        match self {
            Decoded::TextBoxes(_) => "text boxes",
            Decoded::Detections(_) => "detections",
            Decoded::Scores(_) => "class scores",
            Decoded::Sequences(_) => "sequences",
            Decoded::Raw => "raw",
        }
    }
}

/// Errors naming the task and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    #[error("unknown task {0:?}: expected one of {names}", names = TASK_NAMES.join(", "))]
    UnknownTask(String),
    #[error("task {task}: output dims {found:?}, expected {expected}")]
    Dims { task: &'static str, expected: String, found: Vec<usize> },
    #[error("task {task}: the model gives {found} output(s), expected {expected}")]
    Outputs { task: &'static str, expected: String, found: usize },
    #[error("task auto: {reason} (output dims: {found})")]
    Auto { reason: String, found: String },
    #[error("task {task}: output has {found} values, its dims {dims:?} need {expected}")]
    Length { task: &'static str, dims: Vec<usize>, expected: usize, found: usize },
    #[error("cannot compare {candidate} with {reference}: both sides must be decoded by the same task")]
    Mismatch { candidate: &'static str, reference: &'static str },
    #[error("{what}: candidate has {candidate} batch items, reference {reference}")]
    Batch { what: &'static str, candidate: usize, reference: usize },
}

impl TaskError {
    pub(crate) fn dims(task: &'static str, expected: &str, found: &[usize]) -> TaskError {
        TaskError::Dims { task, expected: expected.to_string(), found: found.to_vec() }
    }
}

/// Decodes one output tensor of `dims` (row-major `output`) for `task`: [`decode_outputs`]
/// with that one output.
pub fn decode(task: &Task, output: &[f32], dims: &[usize], input_hw: (usize, usize)) -> Result<Decoded, TaskError> {
    decode_outputs(task, &[(output, dims)], input_hw)
}

/// Decodes a model's outputs (values, dims; in the model's order) for `task`. `input_hw` is
/// the model input's (height, width): boxes come back in input pixels. Single-output tasks
/// decode the first output; picodet and centerface read all of theirs; auto picks the task
/// first. Detection tasks decode batch item 0; cls and ctc every batch item.
pub fn decode_outputs(task: &Task, outputs: &[(&[f32], &[usize])], input_hw: (usize, usize)) -> Result<Decoded, TaskError> {
    let first = || -> Result<(&[f32], &[usize]), TaskError> {
        let &(output, dims) = outputs.first().ok_or(TaskError::Outputs { task: task.name(), expected: "at least one".into(), found: 0 })?;
        check_len(task.name(), output, dims)?;
        Ok((output, dims))
    };
    let yolo = |family, p| -> Result<Decoded, TaskError> {
        let (o, d) = first()?;
        Ok(Decoded::Detections(yolo::decode(family, p, o, d, input_hw)?))
    };
    Ok(match task {
        Task::Raw => first().map(|_| Decoded::Raw)?,
        Task::Db(p) => first().and_then(|(o, d)| db::decode(p, o, d, input_hw)).map(Decoded::TextBoxes)?,
        Task::Yolov5(p) => yolo(yolo::Family::V5, p)?,
        Task::Yolov8(p) => yolo(yolo::Family::V8, p)?,
        Task::Yolox(p) => yolo(yolo::Family::X, p)?,
        Task::Cls => first().and_then(|(o, d)| cls::decode(o, d)).map(Decoded::Scores)?,
        Task::Ctc => first().and_then(|(o, d)| ctc::decode(o, d)).map(Decoded::Sequences)?,
        Task::Picodet(p) => Decoded::Detections(picodet::decode(p, outputs, input_hw)?),
        Task::Centerface(p) => Decoded::Detections(centerface::decode(p, outputs, input_hw)?),
        Task::Auto => {
            let dims: Vec<&[usize]> = outputs.iter().map(|o| o.1).collect();
            decode_outputs(&auto::pick(&dims, input_hw)?.task, outputs, input_hw)?
        }
    })
}

/// The output must hold exactly the values its dims describe.
pub(crate) fn check_len(task: &'static str, output: &[f32], dims: &[usize]) -> Result<(), TaskError> {
    let expected: usize = dims.iter().product();
    if expected != output.len() {
        return Err(TaskError::Length { task, dims: dims.to_vec(), expected, found: output.len() });
    }
    Ok(())
}

/// Task-level agreement of `candidate` with `reference` (the pseudo ground truth). Fields
/// that do not apply to the task are `None` (left out of the JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Detection: COCO mAP@0.5 over the reference's classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map50: Option<f64>,
    /// Detection: COCO mAP@0.5:0.95.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map50_95: Option<f64>,
    /// cls: share of batch items with the same top-1 class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
    /// cls: mean |top-5 ∩ top-5| / 5 (k = min(5, classes)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top5_overlap: Option<f64>,
    /// ctc: share of batch items with identical sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<f64>,
    /// ctc: mean 1 − edit distance / reference length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub char_accuracy: Option<f64>,
    /// Boxes (db, detection) or batch items (cls, ctc) on each side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_candidate: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_reference: Option<usize>,
    /// Detection: the same per class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_class: Option<Vec<ClassAgreement>>,
}

/// The [`TaskMetrics`] fields that are scores (a verdict can be set on them, summaries
/// average them).
pub const TASK_METRICS: &[&str] = &["f1", "precision", "recall", "map50", "map50_95", "top1", "top5_overlap", "exact", "char_accuracy"];

/// A [`TaskMetrics`] field by name (None when it does not apply to the task).
pub fn metric(m: &TaskMetrics, name: &str) -> Option<f64> {
    serde_json::to_value(m).ok()?.get(name)?.as_f64()
}

/// Mean and worst (minimum; NaN if any value is NaN) of each [`TASK_METRICS`] score that
/// applies, over `rows`.
pub fn mean_and_worst<'a>(rows: impl Iterator<Item = &'a TaskMetrics> + Clone) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::new();
    for name in TASK_METRICS {
        let values: Vec<f64> = rows.clone().filter_map(|m| metric(m, name)).collect();
        if values.is_empty() {
            continue;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let worst = values.iter().copied().fold(f64::INFINITY, |w, v| if v.is_nan() || w.is_nan() { f64::NAN } else { w.min(v) });
        out.insert(name.to_string(), (mean, worst));
    }
    out
}

/// Compares two decodings of the same task; an error when they are of different kinds.
pub fn agreement(candidate: &Decoded, reference: &Decoded) -> Result<TaskMetrics, TaskError> {
    match (candidate, reference) {
        (Decoded::Raw, Decoded::Raw) => Ok(TaskMetrics::default()),
        (Decoded::TextBoxes(c), Decoded::TextBoxes(r)) => Ok(db::agreement(c, r)),
        (Decoded::Detections(c), Decoded::Detections(r)) => Ok(yolo::agreement(c, r)),
        (Decoded::Scores(c), Decoded::Scores(r)) => cls::agreement(c, r),
        (Decoded::Sequences(c), Decoded::Sequences(r)) => ctc::agreement(c, r),
        (c, r) => Err(TaskError::Mismatch { candidate: c.kind(), reference: r.kind() }),
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_parse_and_unknown_lists_them() {
        assert_eq!("db".parse::<Task>().unwrap(), Task::Db(DbParams::default()));
        let e = "dbnet".parse::<Task>().unwrap_err().to_string();
        assert!(e.contains("\"dbnet\"") && e.contains(&TASK_NAMES.join(", ")), "{e}");
    }

    #[test]
    fn decode_checks_the_length_against_the_dims() {
        let e = decode(&Task::Db(DbParams::default()), &[0.0; 5], &[1, 1, 2, 3], (2, 3)).unwrap_err();
        assert_eq!(e, TaskError::Length { task: "db", dims: vec![1, 1, 2, 3], expected: 6, found: 5 });
        assert!(agreement(&Decoded::Raw, &Decoded::TextBoxes(vec![])).is_err());
    }
}

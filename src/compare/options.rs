//! The options of `ascend-ptq compare`, defined once: the command line (clap) and the C
//! function `aptq_compare` (its options JSON, serde) both build [`CompareArgs`] and convert
//! it with [`CompareArgs::into_options`], so both report the same errors. A flag and its JSON
//! key are the same field (`--data_dir` ↔ `"data_dir"`, `--acl-lib` ↔ `"acl_lib"`); the
//! field docs below are the `--help` text and the JSON key reference.

use std::path::PathBuf;

use super::device::{CompareOptions, InputSource};
use serde::Deserialize;

use super::flow::DEFAULT_THRESHOLD;
use super::task::{Criteria, Threshold};
use crate::tasks::Task;

/// Where the CLI writes its report when `--report` is not given (the C function writes none).
pub const DEFAULT_REPORT: &str = "compare_report";

/// Runs the int8 and the fp16 OM on the same inputs through AscendCL and reports how far apart
/// they are: msaccucmp's ten metrics per input and output, a verdict against the cosine
/// threshold, OUT.json and a self-contained OUT.html. Exit status 3 when the verdict fails.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareArgs {
    /// The int8 OM (from the deploy model).
    #[arg(long)]
    pub int8: PathBuf,
    /// The fp16 OM (from the float model).
    #[arg(long)]
    pub fp16: PathBuf,
    /// Calibration-set folder(s), one per input, ';'-separated (as `calibration`).
    #[arg(long = "data_dir", alias = "data-dir")]
    #[serde(default)]
    pub data_dir: Option<String>,
    /// Element types of the bins, one per input (float32, uint8, ...).
    #[arg(long = "data_types", alias = "data-types")]
    #[serde(default)]
    pub data_types: Option<String>,
    /// How many batches of the calibration set to compare on.
    #[arg(long = "batch_num", alias = "batch-num")]
    #[serde(default)]
    pub batch_num: Option<usize>,
    /// A folder of images (instead of --data_dir): uint8 frames for static-AIPP inputs,
    /// preprocessed float tensors otherwise.
    #[arg(long)]
    #[serde(default)]
    pub images: Option<PathBuf>,
    /// The preprocessing parameter file for --images.
    #[arg(long)]
    #[serde(default)]
    pub params: Option<PathBuf>,
    /// The `*_pre_params` section of --params.
    #[arg(long)]
    #[serde(default)]
    pub section: Option<String>,
    /// The fp32 ONNX model: our CPU engine's output becomes a third column.
    #[arg(long)]
    #[serde(default)]
    pub reference: Option<PathBuf>,
    /// Device id.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub device: i32,
    /// libascendcl.so to use (default: $ASCEND_PTQ_ACL_LIB, then the CANN install folders).
    #[arg(long = "acl-lib", alias = "acl_lib", value_name = "PATH")]
    #[serde(default)]
    pub acl_lib: Option<PathBuf>,
    /// What the verdict needs: the int8-vs-fp16 cosine every input and output must reach
    /// (a number or "cosine>=0.99"; Ascend's advisor uses 0.99), or with --task a task metric
    /// every input must reach ("f1>=0.95", "map50>=0.9", "top1>=0.99", "char_accuracy>=0.99", ...).
    #[arg(long, default_value = "0.99", value_name = "THRESHOLD")]
    #[serde(default = "default_threshold", deserialize_with = "number_or_string")]
    pub threshold: String,
    /// Decode the outputs and compare in the task's terms too: raw (none, the default), db
    /// (PP-OCR text boxes: F1 at IoU 0.5), cls (top-1 / top-5), ctc (PP-OCR recognition:
    /// exact string, character accuracy), yolov5 / yolov8 / yolox (detections: F1 at IoU
    /// 0.5, mAP@0.5, mAP@0.5:0.95), picodet (PaddleDetection PicoDet: all 8 score / DFL box
    /// outputs) and centerface (faces from heatmap, scale, offset), or auto (picked from the
    /// outputs' dims where unambiguous; the pick is printed and in the report's task.picked).
    /// Single-output tasks decode the first output.
    #[arg(long, value_name = "TASK")]
    #[serde(default)]
    pub task: Option<String>,
    /// Report path: writes OUT.json and OUT.html.
    // The CLI always writes one (DEFAULT_REPORT); the C function only when "report" is given.
    #[arg(long, default_value = DEFAULT_REPORT, value_name = "OUT")]
    #[serde(default)]
    pub report: Option<PathBuf>,
    /// Also write OUT.csv: one row per input, output and pair, the ten metrics under
    /// msaccucmp's column names (CosineSimilarity, MaxAbsoluteError, ...).
    #[arg(long)]
    #[serde(default)]
    pub csv: bool,
}

fn default_threshold() -> String {
    DEFAULT_THRESHOLD.to_string()
}

/// "threshold" in the C options JSON: a number (the cosine) or a string as on the command line.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!("expected a number or a string such as \"f1>=0.95\", found {other}"))),
    }
}

/// Compare options that do not fit together; the messages use the flag spellings, as the
/// calibration errors do, for the CLI and the C function alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareArgsError {
    #[error("--data_dir and --images are alternatives: give one")]
    BothInputSources,
    #[error("give the inputs: --data_dir D --data_types T --batch_num N, or --images DIR --params PARAMS.json")]
    NoInputSource,
    #[error("--data_dir needs --data_types (e.g. float32 or uint8, one per input)")]
    DataDirWithoutDataTypes,
    #[error("--data_dir needs --batch_num (how many batches to compare on)")]
    DataDirWithoutBatchNum,
    #[error("--batch_num must be at least 1")]
    ZeroBatchNum,
    #[error("--images needs --params (the preprocessing parameter file)")]
    ImagesWithoutParams,
    #[error("{0}")]
    Criteria(String),
}

/// `--task` and `--threshold` as the comparison takes them.
pub fn criteria(task: Option<&str>, threshold: &str) -> Result<Criteria, CompareArgsError> {
    let task = match task {
        None => Task::Raw,
        Some(t) => t.parse::<Task>().map_err(|e| CompareArgsError::Criteria(format!("--task: {e}")))?,
    };
    let threshold = threshold.parse::<Threshold>().map_err(|e| CompareArgsError::Criteria(e.to_string()))?;
    Ok(Criteria { task, threshold })
}

impl CompareArgs {
    /// The library's options, after checking that the inputs are given one way, completely.
    /// `report` is not part of them: the caller writes the report.
    pub fn into_options(self) -> Result<CompareOptions, CompareArgsError> {
        let inputs = match (self.data_dir, self.images) {
            (Some(_), Some(_)) => return Err(CompareArgsError::BothInputSources),
            (Some(data_dir), None) => {
                let data_types = self.data_types.ok_or(CompareArgsError::DataDirWithoutDataTypes)?;
                let batch_num = match self.batch_num {
                    None => return Err(CompareArgsError::DataDirWithoutBatchNum),
                    Some(0) => return Err(CompareArgsError::ZeroBatchNum),
                    Some(n) => n,
                };
                InputSource::Calib { data_dir, data_types, batch_num }
            }
            (None, Some(dir)) => {
                let params = self.params.ok_or(CompareArgsError::ImagesWithoutParams)?;
                InputSource::Images { dir, params, section: self.section }
            }
            (None, None) => return Err(CompareArgsError::NoInputSource),
        };
        Ok(CompareOptions {
            int8_om: self.int8,
            fp16_om: self.fp16,
            inputs,
            reference: self.reference,
            device: self.device,
            acl_lib: self.acl_lib,
            criteria: criteria(self.task.as_deref(), &self.threshold)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calib_args(batch_num: Option<usize>) -> CompareArgs {
        CompareArgs {
            int8: "a.om".into(),
            fp16: "b.om".into(),
            data_dir: Some("d".into()),
            data_types: Some("float32".into()),
            batch_num,
            images: None,
            params: None,
            section: None,
            reference: None,
            device: 0,
            acl_lib: None,
            threshold: DEFAULT_THRESHOLD.to_string(),
            task: None,
            report: None,
            csv: false,
        }
    }

    #[test]
    fn the_json_threshold_is_a_number_or_a_criterion_string() {
        let base = r#""int8": "a.om", "fp16": "b.om", "data_dir": "d", "data_types": "float32", "batch_num": 1"#;
        let parse = |extra: &str| serde_json::from_str::<CompareArgs>(&format!("{{{base}{extra}}}"));
        assert_eq!(parse("").unwrap().into_options().unwrap().criteria, DEFAULT_THRESHOLD.into());
        assert_eq!(parse(r#", "threshold": 0.5"#).unwrap().into_options().unwrap().criteria, 0.5.into());
        let task = parse(r#", "task": "db", "threshold": "f1>=0.9""#).unwrap().into_options().unwrap().criteria;
        assert_eq!(task.threshold, Threshold::Task { metric: "f1".into(), min: 0.9 });
        assert_eq!(task.task.name(), "db");
        assert!(parse(r#", "threshold": true"#).unwrap_err().to_string().contains("a number or a string"));
        let e = parse(r#", "task": "dbnet""#).unwrap().into_options().unwrap_err().to_string();
        assert!(e.starts_with("--task: unknown task \"dbnet\""), "{e}");
    }

    #[test]
    fn inputs_are_checked_once_for_both_callers() {
        let opts = calib_args(Some(2)).into_options().unwrap();
        assert!(matches!(opts.inputs, InputSource::Calib { batch_num: 2, ref data_types, .. } if data_types == "float32"));
        assert_eq!(calib_args(Some(0)).into_options().unwrap_err(), CompareArgsError::ZeroBatchNum);
        assert_eq!(calib_args(None).into_options().unwrap_err(), CompareArgsError::DataDirWithoutBatchNum);
        let both = CompareArgs { images: Some("imgs".into()), ..calib_args(Some(1)) };
        assert_eq!(both.into_options().unwrap_err(), CompareArgsError::BothInputSources);
        let neither = CompareArgs { data_dir: None, ..calib_args(Some(1)) };
        assert_eq!(neither.into_options().unwrap_err(), CompareArgsError::NoInputSource);
        let images = CompareArgs { data_dir: None, images: Some("imgs".into()), ..calib_args(None) };
        assert_eq!(images.clone().into_options().unwrap_err(), CompareArgsError::ImagesWithoutParams);
        let opts = CompareArgs { params: Some("p.json".into()), ..images }.into_options().unwrap();
        assert!(matches!(opts.inputs, InputSource::Images { ref params, .. } if params.to_str() == Some("p.json")));
    }
}

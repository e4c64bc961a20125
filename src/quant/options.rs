//! The options of `ascend-ptq calibration`, defined once: the command line (clap) and the C
//! function `aptq_calibrate` (its options JSON, serde) both build [`CalibrationArgs`], so a
//! flag and its JSON key are the same field, spelled the same (`--save_path` ↔
//! `"save_path"`). The field docs below are the `--help` text and the JSON key reference.
//!
//! One exception to "flag = key": the CLI turns equalization off with `--no_equalize`; the
//! JSON key is the positive `"equalize"` (boolean, default true). Both set [`equalize`].
//!
//! [`equalize`]: CalibrationArgs::equalize

use std::path::PathBuf;

use super::calibrate::{ActivationClip, CalibrationOptions, WeightRounding};

/// Post-training INT8 quantization, a drop-in for `amct_onnx calibration`: writes
/// PREFIX_deploy_model.onnx (AscendQuant / int8 weights / AscendDequant, for ATC),
/// PREFIX_fake_quant_model.onnx (standard ONNX ops, runs in ONNX Runtime), PREFIX_record.txt,
/// PREFIX_quant.json (msaccucmp fusion rule) and PREFIX_quant_report.json (per-layer report).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationArgs {
    /// The float32 ONNX model.
    #[arg(long)]
    pub model: PathBuf,
    /// Output directory plus file-name prefix (DIR/prefix); ending in '/' means no prefix.
    #[arg(long = "save_path", value_name = "DIR/PREFIX")]
    pub save_path: String,
    /// "name:n,c,h,w;name2:…" — one entry per model input; -1 is resolved from the data.
    /// [default: the model's own input shapes, when they are all static]
    #[arg(long = "input_shape")]
    #[serde(default)]
    pub input_shape: Option<String>,
    /// "dir1;dir2" — one folder of .bin batches per input, in --input_shape order (required;
    /// `ascend-ptq preprocess PARAMS.json` writes them).
    #[arg(long = "data_dir")]
    #[serde(default)]
    pub data_dir: Option<String>,
    /// "float32;…" — the element type of each input's .bin files. [default: float32 for
    /// every input]
    #[arg(long = "data_types")]
    #[serde(default)]
    pub data_types: Option<String>,
    /// Number of calibration batches (default 1; or batch_num in --calibration_config).
    #[arg(long = "batch_num")]
    #[serde(default)]
    pub batch_num: Option<usize>,
    /// The simple config file (protobuf text): algorithms, skip_layers, overrides, fusion.
    #[arg(long = "calibration_config", value_name = "FILE.cfg")]
    #[serde(default)]
    pub calibration_config: Option<PathBuf>,
    /// Evaluate the fake-quant model against float on the first N calibration batches
    /// (per-layer and output cosine in quant_report.json); 0 skips it. [default: 4]
    #[arg(long = "eval_batches", value_name = "N")]
    #[serde(default)]
    pub eval_batches: Option<usize>,
    /// "dir1;dir2" — held-out .bin batches (same --input_shape and --data_types as the
    /// calibration data) to measure the fake-quant model against float on instead of the
    /// calibration batches; all its files are used, at most --eval_batches when given.
    #[arg(long = "eval_data_dir", value_name = "DIRS")]
    #[serde(default)]
    pub eval_data_dir: Option<String>,
    /// Do not equalize the channel ranges of depthwise-conv inputs (an exact float rewrite
    /// that amct_onnx does not do; on by default because it makes depthwise-heavy models such
    /// as PP-OCR quantize far better).
    // The flag clears the field; in JSON it is `"equalize": false`.
    #[arg(long = "no_equalize", action = clap::ArgAction::SetFalse)]
    #[serde(default = "equalize_by_default")]
    pub equalize: bool,
    /// How Conv weights are rounded to int8 with ARQ's scales: "nearest" (the default,
    /// amct_onnx's round-to-nearest) or "compensated" (each rounding error spread over the
    /// weights not yet rounded, weighted by the second moment of the layer's int8 input on the
    /// calibration data, GPTQ-style; one more pass over the batches; it helped PP-OCRv4 det's
    /// weights alone but not the all-int8 model, see the README).
    #[arg(long = "weight_rounding", value_name = "MODE", value_enum, default_value_t)]
    #[serde(default)]
    pub weight_rounding: WeightRounding,
    /// How each activation's clip range is chosen: "input" (the default, amct_onnx's: by the
    /// tensor's own quantization error) or "output" (IFMR's clip_max searched again on a grid
    /// of 0.4–1.3× its choice, scored by the output error of the layers reading the tensor on
    /// the first 2 calibration batches; about 19 more runs of each layer per batch).
    #[arg(long = "activation_clip", value_name = "MODE", value_enum, default_value_t)]
    #[serde(default)]
    pub activation_clip: ActivationClip,
    /// Fold each layer's mean output shift per channel (int8 model against float on the
    /// calibration batches) into its int32 bias: empirical bias correction, layer by layer in
    /// dependency order (one float pass plus one int8 pass per dependency level).
    #[arg(long = "bias_correction")]
    #[serde(default)]
    pub bias_correction: bool,
    /// Also measure the fake-quant model against float in the task's terms on the evaluation
    /// batches (the first output decoded on both sides; all outputs for picodet and
    /// centerface): db (PP-OCR text boxes: F1 at IoU 0.5), yolov5, yolov8, yolox, picodet,
    /// centerface (detection F1, mAP@0.5), cls (top-1), ctc (character accuracy), auto (picked
    /// from the output dims, the pick among the warnings), or raw (none, the default). In the
    /// summary and quant_report.json as "task_agreement" (and in --sensitivity and
    /// --accuracy_target trials; their cosine / SQNR are the first output's).
    #[arg(long, value_name = "TASK")]
    #[serde(default)]
    pub task: Option<String>,
    /// Also measure, on the evaluation batches, each quantized layer's effect on the model
    /// output: only it int8, every layer but it int8, and the first k layers int8 (the drift
    /// along the graph), in cosine / SQNR and --task's metrics; written to
    /// `<prefix>_sensitivity.json`. Costs 3 × layers + 1 passes over the evaluation batches.
    #[arg(long)]
    #[serde(default)]
    pub sensitivity: bool,
    /// Leave layers float (they run in fp16 on Ascend) until the fake-quant model meets this on
    /// the evaluation batches (held out with --eval_data_dir): "METRIC>=VALUE" terms joined by
    /// commas, all required; METRIC is cosine or sqnr (the first output) or, with --task, a
    /// task metric's mean (f1, map50, top1, char_accuracy, ...). Searches for the fewest MACs
    /// given back; also writes `<prefix>_fallback.cfg` (a --calibration_config with those
    /// skip_layers). Costs about layers + log2(layers) + 16 passes over the evaluation batches
    #[arg(long = "accuracy_target", value_name = "TARGET")]
    #[serde(default)]
    pub accuracy_target: Option<String>,
    /// Score IFMR's clip candidates on every value one by one (the reference search) instead
    /// of by exact bins: the same clips, several times slower; for checking.
    #[arg(long = "exact_ifmr")]
    #[serde(default)]
    pub exact_ifmr: bool,
    /// amct_onnx's Python evaluator script. Not supported (ascend-ptq runs no Python): the
    /// option is accepted only to explain what to give instead.
    #[arg(long = "evaluator", value_name = "FILE.py")]
    #[serde(default)]
    pub evaluator: Option<PathBuf>,
}

fn equalize_by_default() -> bool {
    true
}

impl CalibrationArgs {
    /// The library's options. Every check of the values (an empty save_path, batch_num with a
    /// config file, ...) is done by [`super::calibrate::calibrate`], for both callers alike.
    pub fn into_options(self) -> CalibrationOptions {
        CalibrationOptions {
            model: self.model,
            save_path: self.save_path,
            input_shape: self.input_shape,
            data_dir: self.data_dir,
            data_types: self.data_types,
            batch_num: self.batch_num,
            calibration_config: self.calibration_config,
            eval_batches: self.eval_batches,
            eval_data_dir: self.eval_data_dir,
            equalize: self.equalize,
            weight_rounding: self.weight_rounding,
            activation_clip: self.activation_clip,
            bias_correction: self.bias_correction,
            task: self.task,
            sensitivity: self.sensitivity,
            accuracy_target: self.accuracy_target,
            evaluator: self.evaluator,
            exact_ifmr: self.exact_ifmr,
        }
    }
}

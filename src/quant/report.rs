//! `<prefix>_quant_report.json`: our documented per-layer account of a calibration (amct_onnx
//! writes no such file; `<prefix>_quant.json` is the msaccucmp fusion rule of
//! [`super::fusion_rule`], docs/ascend-formats.md §7.3). Schema, version 1:
//!
//! ```text
//! { "version": 1, "tool": "ascend-ptq <version>", "model", "input_shape", "data_dir",
//!   "data_types", "batch_num", "eval_batches" (how many batches the cosines are measured on),
//!   "eval_data_dir" (those batches' held-out folder, or null: the first calibration batches),
//!   "activation_offset", "do_fusion",
//!   "fused_batch_norms": [{"conv", "batch_norm"}], "kept_batch_norms": [{"batch_norm", "reason"}],
//!   "quantized_layers": [{
//!       "name", "op_type", "original_nodes": [...], "inserted_nodes": ["<quant>", "<L>.dequant"],
//!       "data_input", "scale_d", "offset_d", "scale_w": [...], "offset_w": [...],
//!       "act_algo": "ifmr"|"hfmg", "clip_min", "clip_max", "wts_algo", "channel_wise",
//!       "weight_rounding": "compensated" (int8 weights re-rounded by [`super::gptq`]) | "nearest",
//!       "cosine": <layer fake-quant output vs float, same float input, calibration data> }],
//!   "float_layers": [{"name", "op_type", "reason"}],
//!   "outputs": [{"output", "cosine", "sqnr_db", "max_abs_error", "max_abs_reference"}],
//!   "task_agreement" (with --task only): {"task", "output", "batches", "mean": {metric: v},
//!       "worst": {metric: v}, "count_fake_quant", "count_float"},
//!   "equalized": [{"tensor", "depthwise_convs": [...], "producer_conv", "max_gain", "gains": [...]}],
//!   "bias_correction" (with --bias_correction only): [{"layer", "channels", "max_abs_shift",
//!       "mean_abs_shift"}] (float units of the layer's output; [`super::bias_correction`]),
//!   "output_clip" (with --activation_clip output only): [{"tensor", "layers": [...], "factor",
//!       "clip_max_ifmr", "clip_max", "output_error_ifmr", "output_error"}] (the clip_max chosen
//!       over IFMR's and the readers' summed relative output errors; [`super::output_clip`]),
//!   "fallback" (with --accuracy_target only): {"target", "method", "all_int8": trial,
//!       "result": trial, "float_layers": [{"name", "macs", "alone_sqnr_db", "alone_cosine"}],
//!       "trials", "int8_mac_share"} (trial: {"cosine", "sqnr_db", "task"?}) }
//! ```
//! `equalized` lists the depthwise-conv inputs whose channel c was multiplied by `gains[c]`
//! (folded into `producer_conv`'s output channels, or into a Mul by a constant when null) and
//! whose depthwise weights were divided by it, before calibration; `scale_w` and the int8
//! weights of those layers refer to the equalized weights.
//! `inserted_nodes[0]` may be shared with other layers that read the same tensor.
//! [`super::report_html`] renders the same data as `<prefix>_report.html`.

use serde::Serialize;

use super::bias_correction::BiasShift;
use super::calibrate::CalibrationOptions;
use super::config::CalibrationConfig;
use super::equalize::Equalized;
use super::eval::{OutputAgreement, TaskAgreement};
use super::fallback::Fallback;
use super::fold::FoldReport;
use super::output_clip::ClipChoice;
use super::select::Candidate;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub op_type: String,
    pub original_nodes: Vec<String>,
    pub inserted_nodes: Vec<String>,
    pub data_input: String,
    pub scale_d: f32,
    pub offset_d: i32,
    pub scale_w: Vec<f32>,
    pub offset_w: Vec<i32>,
    pub act_algo: String,
    pub clip_min: f32,
    pub clip_max: f32,
    pub wts_algo: String,
    pub channel_wise: bool,
    pub weight_rounding: &'static str,
    pub cosine: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloatLayer {
    pub name: String,
    pub op_type: String,
    pub reason: String,
}

impl FloatLayer {
    pub fn new(c: &Candidate, reason: &str) -> Self {
        FloatLayer { name: c.name.clone(), op_type: c.op_type.clone(), reason: reason.to_string() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct FusedBn {
    conv: String,
    batch_norm: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct KeptBn {
    batch_norm: String,
    reason: String,
}

/// What the graph rewrites and the evaluation found.
pub struct Findings<'a> {
    pub fold: &'a FoldReport,
    pub outputs: &'a [OutputAgreement],
    pub equalized: &'a [Equalized],
    pub bias_correction: &'a [BiasShift],
    pub output_clip: &'a [ClipChoice],
    pub task: Option<&'a TaskAgreement>,
    pub fallback: Option<&'a Fallback>,
}

/// Fields are readable in `quant` for [`super::report_html`], which renders the same data.
#[derive(Debug, Clone, Serialize)]
pub struct QuantReport {
    pub(super) version: u32,
    pub(super) tool: String,
    pub(super) model: String,
    pub(super) input_shape: String,
    pub(super) data_dir: String,
    pub(super) data_types: String,
    pub(super) batch_num: usize,
    pub(super) eval_batches: usize,
    /// Where the evaluation batches come from: the held-out `--eval_data_dir`, or (None) the
    /// first calibration batches.
    pub(super) eval_data_dir: Option<String>,
    pub(super) activation_offset: bool,
    pub(super) do_fusion: bool,
    pub(super) fused_batch_norms: Vec<FusedBn>,
    pub(super) kept_batch_norms: Vec<KeptBn>,
    pub(super) quantized_layers: Vec<LayerReport>,
    pub(super) float_layers: Vec<FloatLayer>,
    pub(super) outputs: Vec<OutputAgreement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) task_agreement: Option<TaskAgreement>,
    pub(super) equalized: Vec<Equalized>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) bias_correction: Vec<BiasShift>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) output_clip: Vec<ClipChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) fallback: Option<Fallback>,
}

impl QuantReport {
    pub fn new(
        opts: &CalibrationOptions,
        batch_num: usize,
        eval_batches: usize,
        config: &CalibrationConfig,
        quantized_layers: Vec<LayerReport>,
        float_layers: Vec<FloatLayer>,
        findings: Findings,
    ) -> Self {
        let Findings { fold, outputs, equalized, bias_correction, output_clip, task, fallback } = findings;
        QuantReport {
            version: 1,
            tool: format!("ascend-ptq {}", crate::VERSION),
            model: opts.model.display().to_string(),
            input_shape: opts.input_shape.clone().unwrap_or_default(),
            data_dir: opts.data_dir.clone().unwrap_or_default(),
            data_types: opts.data_types.clone().unwrap_or_default(),
            batch_num,
            eval_batches,
            eval_data_dir: opts.eval_data_dir.clone(),
            activation_offset: config.activation_offset,
            do_fusion: config.do_fusion,
            fused_batch_norms: fold.folded.iter().map(|(c, b)| FusedBn { conv: c.clone(), batch_norm: b.clone() }).collect(),
            kept_batch_norms: fold.kept.iter().map(|(b, r)| KeptBn { batch_norm: b.clone(), reason: r.clone() }).collect(),
            quantized_layers,
            float_layers,
            outputs: outputs.to_vec(),
            task_agreement: task.cloned(),
            equalized: equalized.to_vec(),
            bias_correction: bias_correction.to_vec(),
            output_clip: output_clip.to_vec(),
            fallback: fallback.cloned(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
        s.push('\n');
        s
    }
}

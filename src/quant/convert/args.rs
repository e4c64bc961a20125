//! The options of `ascend-ptq convert`, defined once for the command line (clap) and the C
//! function `aptq_convert` (its options JSON, serde): a flag and its JSON key are the same
//! field, spelled the same (`--save_path` ↔ `"save_path"`).

use std::path::PathBuf;

use super::ConvertOptions;

/// Convert a QDQ model (quantization-aware training, ONNX Runtime quantize_static, …) to the
/// Ascend deploy model, a drop-in for `amct_onnx convert`: writes PREFIX_deploy_model.onnx
/// (AscendQuant / int8 weights / AscendDequant, for ATC), PREFIX_fake_quant_model.onnx
/// (standard ONNX ops), PREFIX_record.txt, PREFIX_quant.json (msaccucmp fusion rule) and
/// PREFIX_convert_report.json (what was done with every Q/DQ node).
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertArgs {
    /// The QDQ ONNX model (QuantizeLinear/DequantizeLinear pairs around float ops).
    #[arg(long)]
    pub model: PathBuf,
    /// Output directory plus file-name prefix (DIR/prefix); ending in '/' means no prefix.
    #[arg(long = "save_path", value_name = "DIR/PREFIX")]
    pub save_path: String,
    /// "name:n,c,h,w;name2:…" — the static shape of each model input (written into the deploy
    /// model). [default: the model's own input shapes, when they are all static]
    #[arg(long = "input_shape")]
    #[serde(default)]
    pub input_shape: Option<String>,
}

impl ConvertArgs {
    pub fn into_options(self) -> ConvertOptions {
        ConvertOptions { model: self.model, save_path: self.save_path, input_shape: self.input_shape }
    }
}

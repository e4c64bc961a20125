use std::ffi::c_char;

use super::boundary::{guard, str_arg, to_json, write_string_out};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::quant::convert::args::ConvertArgs;
use crate::quant::convert::convert;

/// Runs `ascend-ptq convert` (amct_onnx-compatible conversion of a QDQ model — quantization-aware
/// training, ONNX Runtime quantize_static, … — to the Ascend deploy model): writes
/// PREFIX_deploy_model.onnx, PREFIX_fake_quant_model.onnx, PREFIX_record.txt,
/// PREFIX_quant.json (the quant fusion rule for msaccucmp `-q`) and PREFIX_convert_report.json
/// (what was done with every QuantizeLinear/DequantizeLinear node) for `save_path` "DIR/PREFIX".
///
/// `options_json` is an object with the options of `ascend-ptq convert --help`, each key
/// spelled as its flag without the dashes: "model", "save_path" (strings, required) and
/// "input_shape" (optional; default: the model's own shapes when all are static). The meanings
/// are documented once, on `ascend_ptq::quant::convert::args::ConvertArgs`. An unknown key, a
/// missing required key or a value of the wrong type is `APTQ_INVALID_ARGUMENT` naming the
/// key; null counts as absent. A Q/DQ pattern Ascend cannot take is `APTQ_INVALID_MODEL` with
/// a message naming the node and what is accepted.
///
/// On success `*summary_json` receives the summary: "outputs" (the five paths:
/// "deploy_model", "fake_quant_model", "record", "quant_json", "convert_report"), "converted"
/// (int8 layers), "add_inputs", "trailing_quant", "removed_pairs", "folded_constants",
/// "layers" (per layer: source Q/DQ nodes, scales, what was done), "warnings" (one per
/// removed pair or folded constant), "wall_seconds"; free it with `aptq_string_free`. A
/// failed call writes none of the five files (the save_path folder may have been created).
///
/// # Safety
/// `options_json` must be NULL or a NUL-terminated string; `summary_json` must be NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_convert(options_json: *const c_char, summary_json: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let text = unsafe { str_arg(options_json, "options_json") }?;
        if summary_json.is_null() {
            return Err(CapiError::invalid_argument("summary_json is NULL"));
        }
        let args: ConvertArgs = from_json(text)?;
        let summary = convert(&args.into_options())?;
        unsafe { write_string_out(summary_json, "summary_json", to_json(&summary)?) }
    })
}

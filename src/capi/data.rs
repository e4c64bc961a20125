use std::ffi::c_char;
use std::path::Path;

use super::error::{CapiError, aptq_status, guard, opt_str_arg, str_arg, write_string_out};
use crate::data::params::{ParamsError, load_params};
use crate::data::preprocess::{PreprocessError, PreprocessOptions, bins_dir, preprocess};
use crate::device::aipp::{AippConfig, AippError, AippOptions, InputFormat};

fn params_error(e: ParamsError) -> CapiError {
    let status = if matches!(e, ParamsError::Io { .. }) { aptq_status::APTQ_IO_ERROR } else { aptq_status::APTQ_INVALID_ARGUMENT };
    CapiError { status, message: e.to_string() }
}

fn preprocess_error(e: PreprocessError) -> CapiError {
    let status = match e {
        PreprocessError::NoFullBatch { .. } => aptq_status::APTQ_INVALID_ARGUMENT,
        _ => aptq_status::APTQ_IO_ERROR,
    };
    CapiError { status, message: e.to_string() }
}

fn aipp_error(e: AippError) -> CapiError {
    CapiError::invalid_argument(e.to_string())
}

fn internal(e: impl std::fmt::Display) -> CapiError {
    CapiError { status: aptq_status::APTQ_PANIC, message: e.to_string() }
}

/// Runs `ascend-ptq preprocess PARAMS.json --out OUT_DIR` (section `det_pre_params` /
/// `detPreParams` or the file's only one; a partial last batch is dropped; an unreadable image
/// is an error).
///
/// `out_dir` may be NULL for the reference script's folder (`<calibrationDataRoot>/batch<B>`,
/// or `data/calibration/<img_root name>_batch<B>` for `det_pre_params`). On success
/// `*manifest_json` receives the content of `OUT_DIR/imgs_batch{B}/manifest.json` (or of that
/// default folder's) plus `"dir"` (that folder)
/// and `"warnings"` (unknown keys, dropped images, ...); free it with `aptq_string_free`.
///
/// # Safety
/// `params_path` and `out_dir` must be NULL or NUL-terminated strings; `manifest_json` must be
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_preprocess(
    params_path: *const c_char,
    out_dir: *const c_char,
    manifest_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| {
        let params_path = unsafe { str_arg(params_path, "params_path") }?;
        let out_dir = unsafe { opt_str_arg(out_dir, "out_dir") }?;
        let loaded = load_params(Path::new(params_path), None).map_err(params_error)?;
        let dir = bins_dir(&loaded, out_dir.map(Path::new));
        let opts = PreprocessOptions { dir, keep_partial: false, skip_bad: false };
        let report = preprocess(&loaded.params, &opts, None).map_err(preprocess_error)?;
        let mut value = serde_json::to_value(&report.manifest).map_err(internal)?;
        let warnings: Vec<String> = loaded.warnings.into_iter().chain(report.warnings).collect();
        value["dir"] = serde_json::json!(report.dir);
        value["warnings"] = serde_json::json!(warnings);
        let json = serde_json::to_string_pretty(&value).map_err(internal)?;
        unsafe { write_string_out(manifest_json, "manifest_json", json) }
    })
}

/// The AIPP options as JSON: `{"input_format": "RGB888_U8" | "YUV420SP_U8" | "YUV400_U8",
/// "src_size": [W, H], "section": "det_pre_params"}`, every key optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AippJsonOptions {
    input_format: Option<String>,
    src_size: Option<(usize, usize)>,
    section: Option<String>,
}

/// The static AIPP config text (`ascend-ptq aipp`) for a parameter file. AIPP does not
/// letterbox: the application must feed frames already resized to the model input.
///
/// `options_json` may be NULL (RGB888_U8 frames of the model input size). On success
/// `*cfg_text` receives the config; free it with `aptq_string_free`.
///
/// # Safety
/// `params_path` and `options_json` must be NULL or NUL-terminated strings; `cfg_text` must
/// be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_aipp(params_path: *const c_char, options_json: *const c_char, cfg_text: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let params_path = unsafe { str_arg(params_path, "params_path") }?;
        let options: AippJsonOptions = match unsafe { opt_str_arg(options_json, "options_json") }? {
            Some(text) => serde_json::from_str(text).map_err(|e| CapiError::invalid_argument(format!("options_json: {e}")))?,
            None => AippJsonOptions::default(),
        };
        let loaded = load_params(Path::new(params_path), options.section.as_deref()).map_err(params_error)?;
        let input_format: InputFormat = options.input_format.as_deref().unwrap_or("RGB888_U8").parse().map_err(aipp_error)?;
        let cfg = AippConfig::from_params(&loaded.params, &AippOptions { input_format, src_size: options.src_size }).map_err(aipp_error)?;
        unsafe { write_string_out(cfg_text, "cfg_text", cfg.to_text(&loaded.params.hash())) }
    })
}

use std::ffi::c_char;
use std::path::Path;

use super::boundary::{guard, opt_str_arg, str_arg, to_json, write_string_out};
use super::callbacks::{Reporter, aptq_callbacks};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::data::params::load_params;
use crate::data::preprocess::{PreprocessOptions, bins_dir, preprocess};
use crate::device::aipp::AippConfig;
use crate::device::aipp::options::AippArgs;

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
    guard(|| unsafe { preprocess_call(params_path, out_dir, std::ptr::null(), manifest_json) })
}

/// `aptq_preprocess` with a progress callback that can cancel it (`aptq_progress_fn`): phase
/// "preprocess", `done` of `total` images, reported every 32 images. A cancelled run removes
/// the bins it had written, writes no manifest and returns `APTQ_CANCELLED`. `callbacks` may be
/// NULL (then it is `aptq_preprocess`).
///
/// # Safety
/// As `aptq_preprocess`; `callbacks` must be NULL or point to a valid `aptq_callbacks` for the
/// duration of the call, and its `progress` (if not NULL) must be safe to call with `user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_preprocess_with_callbacks(
    params_path: *const c_char,
    out_dir: *const c_char,
    callbacks: *const aptq_callbacks,
    manifest_json: *mut *mut c_char,
) -> aptq_status {
    guard(|| unsafe { preprocess_call(params_path, out_dir, callbacks, manifest_json) })
}

/// The body of both preprocess functions (`callbacks` may be NULL): the manifest JSON plus
/// "dir" and "warnings".
unsafe fn preprocess_call(
    params_path: *const c_char,
    out_dir: *const c_char,
    callbacks: *const aptq_callbacks,
    manifest_json: *mut *mut c_char,
) -> Result<(), CapiError> {
    let params_path = unsafe { str_arg(params_path, "params_path") }?;
    let out_dir = unsafe { opt_str_arg(out_dir, "out_dir") }?;
    let reporter = unsafe { Reporter::new(callbacks) };
    let report = |done: usize, total: usize| reporter.report("preprocess", done as u64, total as u64);
    let loaded = load_params(Path::new(params_path), None)?;
    let dir = bins_dir(&loaded, out_dir.map(Path::new));
    let opts = PreprocessOptions { dir, keep_partial: false, skip_bad: false };
    let report = reporter.scope(|| preprocess(&loaded.params, &opts, Some(&report)))?;
    let mut value = serde_json::to_value(&report.manifest).map_err(CapiError::internal)?;
    let warnings: Vec<String> = loaded.warnings.into_iter().chain(report.warnings).collect();
    value["dir"] = serde_json::json!(report.dir);
    value["warnings"] = serde_json::json!(warnings);
    unsafe { write_string_out(manifest_json, "manifest_json", to_json(&value)?) }
}

/// The static AIPP config text (`ascend-ptq aipp`) for a parameter file. AIPP does not
/// letterbox: the application must feed frames already resized to the model input.
///
/// `options_json` may be NULL (RGB888_U8 frames of the model input size), or an object with
/// the options of `ascend-ptq aipp --help`, each key spelled as its flag without the dashes,
/// all optional: "input_format" ("RGB888_U8", "YUV420SP_U8" or "YUV400_U8"), "src_size"
/// ([W, H], or "W,H" as on the command line) and "section" (e.g. "det_pre_params"). The
/// meanings are documented once, on `ascend_ptq::device::aipp::options::AippArgs`. An unknown
/// key or a value of the wrong type is `APTQ_INVALID_ARGUMENT` naming the key. On success
/// `*cfg_text` receives the config; free it with `aptq_string_free`.
///
/// # Safety
/// `params_path` and `options_json` must be NULL or NUL-terminated strings; `cfg_text` must
/// be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_aipp(params_path: *const c_char, options_json: *const c_char, cfg_text: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let params_path = unsafe { str_arg(params_path, "params_path") }?;
        let args: AippArgs = match unsafe { opt_str_arg(options_json, "options_json") }? {
            Some(text) => from_json(text)?,
            None => AippArgs::default(),
        };
        let loaded = load_params(Path::new(params_path), args.section.as_deref())?;
        let cfg = AippConfig::from_params(&loaded.params, &args.to_options()?)?;
        unsafe { write_string_out(cfg_text, "cfg_text", cfg.to_text(&loaded.params.hash())) }
    })
}

//! Our CPU engine from C: `aptq_run` (the `run` command on .bin files) and an engine handle
//! that runs a model on caller buffers — the fp32 (or emulated fp16) reference on a board
//! without ONNX Runtime.

// C type name: aptq_engine.
#![allow(non_camel_case_types)]

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_void};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::acl::aptq_outputs;
use super::boundary::{check_out, guard, guard_or, handle, input_buffers, opt_str_arg, str_arg, to_json, write_string_out};
use super::error::{CapiError, aptq_status};
use super::options::from_json;
use crate::engine::files::{LoadedModel, RunFiles, run_files};

/// The options of `aptq_run` (those of `ascend-ptq run`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunArgs {
    model: PathBuf,
    #[serde(default)]
    input_shape: Option<String>,
    /// "NAME=FILE.bin", one per model input (the CLI's repeated --input).
    #[serde(default)]
    input: Vec<String>,
    output_dir: PathBuf,
    #[serde(default)]
    emulate_fp16: bool,
}

/// Options of `aptq_engine_open`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EngineArgs {
    #[serde(default)]
    input_shape: Option<String>,
    #[serde(default)]
    emulate_fp16: bool,
}

/// Runs `ascend-ptq run`: our CPU engine on raw little-endian .bin inputs, writing
/// `<output_dir>/<output>.bin` (`/`, `:` and `\` in names become `_`) and `outputs.json`.
///
/// `options_json` is an object with the keys "model", "output_dir" (paths, required),
/// "input" (an array of "NAME=FILE.bin" strings, one per model input), "input_shape" (string,
/// fixes dynamic dims) and "emulate_fp16" (boolean: weights, inputs and every op output
/// rounded to fp16, as an fp16 OM computes). An unknown key or a value of the wrong type is
/// `APTQ_INVALID_ARGUMENT` naming the key; a missing or wrong-sized input is
/// `APTQ_INVALID_ARGUMENT` naming the input and file; an unreadable file `APTQ_IO_ERROR`.
/// Every input is read and checked before anything is written; each output file is written
/// whole or not at all. On success `*summary_json` receives outputs.json's content
/// ({"outputs": [{"name", "dtype", "shape", "file"}]}); free it with `aptq_string_free`.
///
/// # Safety
/// `options_json` must be NULL or a NUL-terminated string; `summary_json` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_run(options_json: *const c_char, summary_json: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let text = unsafe { str_arg(options_json, "options_json") }?;
        if summary_json.is_null() {
            return Err(CapiError::invalid_argument("summary_json is NULL"));
        }
        let args: RunArgs = from_json(text)?;
        let mut inputs = Vec::with_capacity(args.input.len());
        for item in &args.input {
            let (name, file) = item
                .split_once('=')
                .ok_or_else(|| CapiError::invalid_argument(format!("options_json: \"input\": {item:?}: expected \"NAME=FILE.bin\"")))?;
            inputs.push((name.to_string(), PathBuf::from(file)));
        }
        let opts = RunFiles {
            model: args.model,
            input_shape: args.input_shape,
            inputs,
            output_dir: args.output_dir,
            emulate_fp16: args.emulate_fp16,
        };
        let summary = run_files(&opts)?;
        unsafe { write_string_out(summary_json, "summary_json", to_json(&summary)?) }
    })
}

/// An ONNX model planned by our CPU engine, ready to run on caller buffers.
pub struct aptq_engine {
    model: LoadedModel,
    /// Input names in model order.
    inputs: Vec<String>,
}

// `aptq_engine_run` documents that one engine may run on several threads at once.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<aptq_engine>()
};

/// Loads `model_path` into our CPU engine. `options_json` is NULL or an object with
/// "input_shape" (string, fixes dynamic dims: every input needs a static shape to run) and
/// "emulate_fp16" (boolean). A missing file is `APTQ_IO_ERROR`, a model we cannot read or
/// plan `APTQ_INVALID_MODEL`, an op we do not implement `APTQ_UNSUPPORTED`. On success `*out`
/// receives a handle to release with `aptq_engine_free`.
///
/// # Safety
/// `model_path` and `options_json` must be NULL or NUL-terminated strings; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_engine_open(
    model_path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut aptq_engine,
) -> aptq_status {
    guard(|| {
        let path = unsafe { str_arg(model_path, "model_path") }?;
        let options = unsafe { opt_str_arg(options_json, "options_json") }?;
        check_out(out, "out")?;
        let args: EngineArgs = options.map(from_json).transpose()?.unwrap_or_default();
        let model = LoadedModel::load(path.as_ref(), args.input_shape.as_deref(), args.emulate_fp16)?;
        let inputs = model.input_names();
        // SAFETY: checked non-null above; writable per the contract.
        unsafe { *out = Box::into_raw(Box::new(aptq_engine { model, inputs })) };
        Ok(())
    })
}

/// Frees an engine handle. NULL is ignored.
///
/// # Safety
/// `engine` must be NULL or a handle from `aptq_engine_open` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_engine_free(engine: *mut aptq_engine) {
    guard_or((), || {
        if !engine.is_null() {
            // SAFETY: per the contract, `engine` came from Box::into_raw in aptq_engine_open.
            drop(unsafe { Box::from_raw(engine) });
        }
    })
}

/// Number of model inputs (0 for NULL).
///
/// # Safety
/// `engine` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_engine_num_inputs(engine: *const aptq_engine) -> usize {
    guard_or(0, || unsafe { engine.as_ref() }.map_or(0, |e| e.inputs.len()))
}

/// Describes input `i` as JSON: {"name", "dtype" ("float", "uint8", ...), "shape" (array, or
/// null while a dimension is dynamic), "size" (bytes, or null)}. An index out of range is
/// `APTQ_INVALID_ARGUMENT`. Free the string with `aptq_string_free`.
///
/// # Safety
/// `engine` must be NULL or a live handle; `json_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_engine_input_info(engine: *const aptq_engine, i: usize, json_out: *mut *mut c_char) -> aptq_status {
    guard(|| {
        let e = unsafe { handle(engine, "engine") }?;
        let spec = e.model.session.inputs().nth(i).ok_or_else(|| {
            CapiError::invalid_argument(format!("input index {i} out of range: the model has {} input(s)", e.inputs.len()))
        })?;
        let width = crate::onnx::tensor::bits(spec.dtype) / 8;
        let info = json!({
            "name": spec.name,
            "dtype": spec.dtype.as_str_name().to_ascii_lowercase(),
            "shape": spec.shape,
            "size": spec.shape.as_ref().map(|s| s.iter().product::<usize>() * width),
        });
        unsafe { write_string_out(json_out, "json_out", info.to_string()) }
    })
}

/// Runs the model once on `n` host buffers, one per input in model order, each the raw
/// little-endian data of the input's dtype and exact size (`aptq_engine_input_info`); a
/// mismatch is `APTQ_INVALID_ARGUMENT` naming the input. Inputs are copied. On success `*out`
/// receives the outputs (in model order, read with `aptq_outputs_*`), to release with
/// `aptq_outputs_free`. One engine may run on several threads at once (runs share only the
/// read-only plan); it must not be freed while a run is in progress.
///
/// # Safety
/// `engine` must be NULL or a live handle; `inputs` and `sizes` NULL or arrays of `n` entries,
/// each `inputs[i]` readable for `sizes[i]` bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_engine_run(
    engine: *const aptq_engine,
    inputs: *const *const c_void,
    sizes: *const usize,
    n: usize,
    out: *mut *mut aptq_outputs,
) -> aptq_status {
    guard(|| {
        let e = unsafe { handle(engine, "engine") }?;
        check_out(out, "out")?;
        if n != e.inputs.len() {
            return Err(CapiError::invalid_argument(format!("n is {n}, but the model has {} input(s): {:?}", e.inputs.len(), e.inputs)));
        }
        // SAFETY: arrays of n readable buffers per the contract.
        let buffers = unsafe { input_buffers(inputs, sizes, n) }?;
        let mut feed = HashMap::with_capacity(n);
        for (i, (name, bytes)) in e.inputs.iter().zip(buffers).enumerate() {
            feed.insert(name.clone(), e.model.input_tensor(name, bytes, &format!("inputs[{i}]"))?);
        }
        // Pool workers poll between ops instead of sleeping while this call lasts.
        let results = crate::engine::with_workers_awake(|| e.model.run(feed))?;
        let items = results
            .into_iter()
            .map(|(name, t)| (CString::new(name.replace('\0', "\\0")).expect("NULs replaced"), t.to_le_bytes()))
            .collect();
        // SAFETY: checked non-null above.
        unsafe { *out = Box::into_raw(Box::new(aptq_outputs::new(items))) };
        Ok(())
    })
}

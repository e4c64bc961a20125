//! Running a model on raw little-endian `.bin` files (`ascend-ptq run`, `aptq_run`): the fp32
//! (or emulated fp16) reference on a board that has no ONNX Runtime. Outputs go to
//! `<output_dir>/<tensor>.bin` and `outputs.json`, each written atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fp16::{round_tensor_to_f16, round_weights_to_f16};
use super::{EngineError, RunOptions, Session, Tensor};
use crate::onnx::input_shape::{InputShapeError, parse_input_shapes};
use crate::onnx::io::{same_file, write_atomically};
use crate::onnx::{OnnxError, load_model};

#[derive(Debug, thiserror::Error)]
pub enum RunFilesError {
    /// An option: the flag (or C API key) and what was expected.
    #[error("{flag}: {detail}")]
    Argument { flag: &'static str, detail: String },
    /// An input file could not be read, or the output folder created.
    #[error("{flag}: cannot {action} {}: {source}", path.display())]
    Io {
        flag: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Shape(#[from] InputShapeError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What to run: the options of `ascend-ptq run`.
#[derive(Debug, Clone, Default)]
pub struct RunFiles {
    pub model: PathBuf,
    /// `--input_shape` ("name:n,c,h,w;...").
    pub input_shape: Option<String>,
    /// (input name, file) pairs.
    pub inputs: Vec<(String, PathBuf)>,
    pub output_dir: PathBuf,
    /// fp16 emulation: weights and inputs rounded to fp16, every op's output rounded to fp16.
    pub emulate_fp16: bool,
}

/// One written output (an entry of outputs.json).
#[derive(Debug, Clone, Serialize)]
pub struct WrittenOutput {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    /// File name inside the output folder.
    pub file: String,
}

/// outputs.json.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub outputs: Vec<WrittenOutput>,
}

/// Output file name: `/`, `:` and `\` (common in exported tensor names) become `_`.
pub fn output_file_name(tensor: &str) -> String {
    format!("{}.bin", tensor.replace(['/', ':', '\\'], "_"))
}

/// A session ready to run: the model loaded, its shapes fixed, and fp16 emulation applied to
/// its weights when asked.
pub struct LoadedModel {
    pub session: Session,
    pub emulate_fp16: bool,
}

impl LoadedModel {
    pub fn load(model: &Path, input_shape: Option<&str>, emulate_fp16: bool) -> Result<LoadedModel, RunFilesError> {
        let mut proto = load_model(model)?;
        if emulate_fp16 {
            round_weights_to_f16(&mut proto)?;
        }
        let shapes: HashMap<String, Vec<i64>> = match input_shape {
            Some(s) => parse_input_shapes(s)?.into_iter().map(|s| (s.name, s.dims)).collect(),
            None => HashMap::new(),
        };
        Ok(LoadedModel { session: Session::new(&proto, &shapes)?, emulate_fp16 })
    }

    /// The input named `name` built from raw bytes (checked against its dtype and fixed shape).
    pub fn input_tensor(&self, name: &str, bytes: &[u8], source: &str) -> Result<Tensor, RunFilesError> {
        let spec = self.session.inputs().find(|s| s.name == name).ok_or_else(|| RunFilesError::Argument {
            flag: "--input",
            detail: format!("'{name}' is not a model input (inputs: {:?})", self.input_names()),
        })?;
        let shape = spec.shape.clone().ok_or_else(|| RunFilesError::Argument {
            flag: "--input_shape",
            detail: format!("input '{name}' has a dynamic shape: fix it with --input_shape"),
        })?;
        let mut tensor = Tensor::from_le_bytes(spec.dtype, &shape, bytes, &format!("{name} ({source})"))?;
        if self.emulate_fp16 {
            round_tensor_to_f16(&mut tensor);
        }
        Ok(tensor)
    }

    pub fn input_names(&self) -> Vec<String> {
        self.session.inputs().map(|s| s.name.clone()).collect()
    }

    pub fn run(&self, inputs: HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunFilesError> {
        Ok(self.session.run_with(inputs, &RunOptions { round_outputs_to_f16: self.emulate_fp16 })?)
    }
}

/// Runs `opts.model` on the input files and writes every output and outputs.json. Every input
/// is read and checked before anything is written; an output that would overwrite an input
/// file is refused.
pub fn run_files(opts: &RunFiles) -> Result<RunSummary, RunFilesError> {
    let model = LoadedModel::load(&opts.model, opts.input_shape.as_deref(), opts.emulate_fp16)?;
    let mut files: HashMap<&str, &Path> = HashMap::new();
    for (name, file) in &opts.inputs {
        if files.insert(name, file).is_some() {
            return Err(RunFilesError::Argument { flag: "--input", detail: format!("'{name}' is given twice") });
        }
    }
    let known = model.input_names();
    if let Some(name) = files.keys().find(|n| !known.iter().any(|k| k == *n)) {
        return Err(RunFilesError::Argument { flag: "--input", detail: format!("'{name}' is not a model input (inputs: {known:?})") });
    }
    for out in model.session.output_names() {
        let target = opts.output_dir.join(output_file_name(out));
        if let Some((name, file)) = files.iter().find(|(_, f)| same_file(f, &target)) {
            return Err(RunFilesError::Argument {
                flag: "--output_dir",
                detail: format!(
                    "output '{out}' would be written to {}, which is the --input file of '{name}' ({}); choose another --output_dir",
                    target.display(),
                    file.display()
                ),
            });
        }
    }
    let mut inputs = HashMap::new();
    for name in &known {
        let file = files.get(name.as_str()).ok_or_else(|| RunFilesError::Argument {
            flag: "--input",
            detail: format!("model input '{name}' was not given (expected --input {name}=FILE.bin)"),
        })?;
        let bytes = std::fs::read(file).map_err(|source| RunFilesError::Io {
            flag: format!("--input {name}"),
            action: "read",
            path: file.to_path_buf(),
            source,
        })?;
        inputs.insert(name.clone(), model.input_tensor(name, &bytes, &file.display().to_string())?);
    }

    let outputs = model.run(inputs)?;
    let dir = &opts.output_dir;
    std::fs::create_dir_all(dir).map_err(|source| RunFilesError::Io {
        flag: "--output_dir".into(),
        action: "create",
        path: dir.clone(),
        source,
    })?;
    let mut written = Vec::with_capacity(outputs.len());
    for (name, tensor) in &outputs {
        let file = output_file_name(name);
        write_atomically(&dir.join(&file), &tensor.to_le_bytes())?;
        written.push(WrittenOutput { name: name.clone(), dtype: tensor.dtype_name(), shape: tensor.shape().to_vec(), file });
    }
    let summary = RunSummary { outputs: written };
    let json = serde_json::to_string_pretty(&summary).expect("plain data serializes");
    write_atomically(&dir.join("outputs.json"), json.as_bytes())?;
    Ok(summary)
}

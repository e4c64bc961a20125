//! `ascend-ptq convert` (amct_onnx's `convert`, docs/ascend-formats.md §15): a model quantized
//! elsewhere — quantization-aware training, ONNX Runtime `quantize_static`, other exporters —
//! as QuantizeLinear/DequantizeLinear (QDQ) pairs, turned into the Ascend deploy model with the
//! scales it carries (no calibration, no data):
//! - [`qdq`] reads and checks each Q/DQ node's scale, zero point, type and axis;
//! - [`plan`] accounts for every Q/DQ node and builds the float model plus the int8 layers;
//! - [`rewrite`] adds what `build_deploy` does not place: the AscendQuant → AscendAntiQuant
//!   pairs of Add inputs (and of float ops sharing a pair with an int8 layer) and a trailing
//!   AscendQuant;
//! - [`convert`] writes the files as `calibration` does: deploy model,
//!   fake-quant model, record, quant.json, plus `<prefix>_convert_report.json` ([`report`]).

pub mod args;
pub mod plan;
pub mod qdq;
pub mod report;
pub mod rewrite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::QuantError;
use super::deploy::{build_deploy, check_opset};
use super::fake::build_fake_quant;
use super::fusion_rule::{self, FloatOps};
use super::record;
use crate::onnx::proto::{ModelProto, NodeProto};
use crate::onnx::shapes::infer_shapes;
use crate::onnx::{DataType, OnnxError, SaveOptions, load_model, node_label, save_model};

/// The options of `ascend-ptq convert` (amct_onnx convert's, §15).
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub model: PathBuf,
    /// Directory plus file-name prefix; ending in `/` means an empty prefix.
    pub save_path: String,
    /// "name:dims;…"; `None`: the model's own static input shapes.
    pub input_shape: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{flag}: {detail}")]
    Argument { flag: &'static str, detail: String },
    #[error("--save_path: cannot write to {dir}: {source}")]
    SavePath { dir: PathBuf, source: std::io::Error },
    /// A Q/DQ node (or the layer it feeds) that cannot be converted: what it is and what is accepted.
    #[error("--model: node '{node}' ({op_type}) {detail}")]
    Node { node: String, op_type: String, detail: String },
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

impl ConvertError {
    pub(crate) fn node(n: &NodeProto, index: usize, detail: impl Into<String>) -> Self {
        ConvertError::Node { node: node_label(n, index), op_type: n.op_type().to_string(), detail: detail.into() }
    }
}

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// The files written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConvertOutputs {
    pub deploy_model: PathBuf,
    pub fake_quant_model: PathBuf,
    pub record: PathBuf,
    /// The quant fusion rule for msaccucmp `-q` (formats §7.3).
    pub quant_json: PathBuf,
    /// `<prefix>_convert_report.json` ([`report`]).
    pub convert_report: PathBuf,
}

impl ConvertOutputs {
    /// `DIR/prefix` → `DIR/prefix_deploy_model.onnx`, …; `DIR/` → `DIR/deploy_model.onnx`, … (§1.3).
    pub fn from_save_path(save_path: &str) -> Result<Self> {
        let file = super::cmdline::save_path_file(save_path)
            .ok_or_else(|| ConvertError::Argument { flag: "--save_path", detail: "is empty; expected DIR/prefix".into() })?;
        Ok(ConvertOutputs {
            deploy_model: file("deploy_model.onnx"),
            fake_quant_model: file("fake_quant_model.onnx"),
            record: file("record.txt"),
            quant_json: file("quant.json"),
            convert_report: file("convert_report.json"),
        })
    }

    fn all(&self) -> [&PathBuf; 5] {
        [&self.deploy_model, &self.fake_quant_model, &self.record, &self.quant_json, &self.convert_report]
    }
}

/// What a conversion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub outputs: ConvertOutputs,
    /// Layers turned into AscendQuant → int8 layer → AscendDequant.
    pub converted: usize,
    /// Add inputs turned into AscendQuant → AscendAntiQuant.
    pub add_inputs: usize,
    /// Inputs of float ops that share a Q/DQ pair with an int8 layer or Add, given their own
    /// AscendQuant → AscendAntiQuant (the dequantized values the QDQ model feeds them).
    pub anti_quant_branches: usize,
    /// A trailing QuantizeLinear turned into AscendQuant.
    pub trailing_quant: bool,
    /// Activation Q/DQ pairs removed in front of ops Ascend runs in float.
    pub removed_pairs: usize,
    /// Dequantized constants that feed no int8 layer, folded into float constants.
    pub folded_constants: usize,
    pub layers: Vec<plan::LayerInfo>,
    pub warnings: Vec<String>,
    pub wall_seconds: f64,
}

/// Converts a QDQ model:
/// 1. check `--save_path` (writable, not the model itself) and load the model; its opset must
///    be one ATC reads the Ascend ops in (§2.6), its input shapes static or given;
/// 2. [`plan::analyse`]: the float model and the int8 layers, every other Q/DQ removed with a
///    warning or refused;
/// 3. `build_deploy` on the float model, then [`rewrite`] for Add inputs and a trailing quant;
/// 4. the fake-quant model, record, quant.json and report, all built before the first file
///    is written, then written atomically.
pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let start = Instant::now();
    let outputs = ConvertOutputs::from_save_path(&opts.save_path)?;
    check_writable(&outputs, &opts.model)?;
    let mut model = load_model(&opts.model)?;
    check_opset(&model)?;
    let shapes = input_shapes(&mut model, opts)?;
    let analysis = plan::analyse(&model)?;
    let (mut deploy, quant_of) = build_deploy(&analysis.float_model, &analysis.layers)?;
    rewrite::add_quant_pairs(&mut deploy, &analysis.adds)?;
    if let Some(t) = &analysis.trailing {
        rewrite::trailing_quant(&mut deploy, t)?;
    }
    let mut fake = build_fake_quant(&deploy)?;
    if let Some(t) = &analysis.trailing {
        // The fake-quant AscendQuant yields integer units (q − offset) as float.
        plan::set_output_type(fake.graph.as_mut().ok_or(QuantError::NoGraph)?, &t.output, DataType::Float);
    }

    let mut warnings = Vec::new();
    for r in &analysis.removed {
        warnings.push(format!(
            "removed the Q/DQ pair {} on '{}': read by {}, which Ascend runs in float (fp16)",
            r.source_nodes.join(" → "),
            r.tensor,
            r.consumers.join(", ")
        ));
    }
    for r in &analysis.folded {
        warnings.push(format!(
            "folded {} ('{}') into a float constant: read by {}, not the weight or bias of an int8 layer",
            r.source_nodes.join(" → "),
            r.tensor,
            r.consumers.join(", ")
        ));
    }
    if analysis.layers.is_empty() && analysis.adds.is_empty() && analysis.trailing.is_none() {
        warnings.push("no Q/DQ pattern Ascend runs in int8 was found: the deploy model is the model without its Q/DQ nodes".into());
    }

    let records: Vec<record::RecordEntry> = analysis
        .layers
        .iter()
        .map(|l| record::RecordEntry {
            layer: l.name.clone(),
            scale_d: l.act.scale,
            offset_d: l.act.offset,
            scale_w: l.scale_w.clone(),
            offset_w: vec![0; l.scale_w.len()],
        })
        .collect();
    let rule = {
        let mut origins: HashMap<String, Vec<String>> = HashMap::new();
        for (layer, info) in analysis.layers.iter().zip(&analysis.layer_info) {
            let mut layer_nodes = vec![layer.name.clone()];
            layer_nodes.extend(info.source_nodes.iter().skip(2).cloned());
            origins.insert(layer.name.clone(), layer_nodes.clone());
            // A shared AscendQuant stands for the pair of the layer it is named after.
            if quant_of.get(&layer.name) == Some(&layer.quant_name()) {
                origins.insert(layer.quant_name(), info.source_nodes[..2].to_vec());
            }
            origins.insert(layer.dequant_name(), layer_nodes);
        }
        for a in &analysis.adds {
            origins.insert(a.quant_name(), a.source_nodes.clone());
            origins.insert(a.anti_quant_name(), a.source_nodes.clone());
        }
        if let Some(t) = &analysis.trailing {
            origins.insert(t.quant_name(), vec![t.node.clone()]);
        }
        let deploy_shapes = infer_shapes(&deploy, &shapes)?;
        fusion_rule::build(&deploy, &FloatOps::new(&model), &origins, &deploy_shapes)
    };
    let report = report::ConvertReport::new(opts, &shapes, &analysis, &warnings);

    // Everything is built: write.
    save_model(&deploy, &outputs.deploy_model, &SaveOptions::default())?;
    save_model(&fake, &outputs.fake_quant_model, &SaveOptions::default())?;
    crate::onnx::io::write_atomically(&outputs.record, record::render(&records).as_bytes())?;
    crate::onnx::io::write_atomically(&outputs.quant_json, fusion_rule::to_json(&rule).as_bytes())?;
    crate::onnx::io::write_atomically(&outputs.convert_report, report.to_json().as_bytes())?;
    Ok(Summary {
        outputs,
        converted: analysis.layers.len(),
        add_inputs: analysis.adds.iter().filter(|a| a.op_type == "Add").count(),
        anti_quant_branches: analysis.adds.iter().filter(|a| a.op_type != "Add").count(),
        trailing_quant: analysis.trailing.is_some(),
        removed_pairs: analysis.removed.len(),
        folded_constants: analysis.folded.len(),
        layers: analysis.layer_info,
        warnings,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// The output folder exists (created) and takes files; no output is a directory or the model.
fn check_writable(outputs: &ConvertOutputs, model: &Path) -> Result<()> {
    let dir = outputs.deploy_model.parent().unwrap_or(Path::new("."));
    let err = |source| ConvertError::SavePath { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    let model = std::fs::canonicalize(model).ok();
    for path in outputs.all() {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            let detail = format!("{} is a directory", path.display());
            return Err(err(std::io::Error::new(std::io::ErrorKind::IsADirectory, detail)));
        }
        if model.is_some() && std::fs::canonicalize(path).ok() == model {
            return Err(ConvertError::Argument {
                flag: "--save_path",
                detail: format!("{} would overwrite the input model; choose another prefix", path.display()),
            });
        }
    }
    Ok(())
}

/// The input shapes: `--input_shape` (written into the model's inputs, which the deploy model
/// carries to ATC) or the model's own static shapes.
fn input_shapes(model: &mut ModelProto, opts: &ConvertOptions) -> Result<HashMap<String, Vec<i64>>> {
    let label = opts.model.display().to_string();
    let given = match &opts.input_shape {
        Some(s) => s.clone(),
        None => super::cmdline::static_input_shape(model, &label).map_err(|e| match e {
            super::calibrate::CalibrateError::Argument { flag, detail } => ConvertError::Argument { flag, detail },
            other => ConvertError::Argument { flag: "--input_shape", detail: other.to_string() },
        })?,
    };
    let parsed =
        crate::onnx::input_shape::parse_input_shapes(&given).map_err(|e| ConvertError::Argument { flag: "--input_shape", detail: e.0 })?;
    let graph = model.graph.as_mut().ok_or(QuantError::NoGraph)?;
    let initializers: std::collections::HashSet<String> = graph.initializer.iter().map(|t| t.name().to_string()).collect();
    let inputs: Vec<String> = graph.input.iter().map(|i| i.name().to_string()).filter(|n| !initializers.contains(n)).collect();
    let mut shapes = HashMap::new();
    for s in &parsed {
        if !inputs.contains(&s.name) {
            return Err(ConvertError::Argument {
                flag: "--input_shape",
                detail: format!("'{}' is not an input of {label}; its inputs are: {}", s.name, inputs.join(", ")),
            });
        }
        if s.dims.iter().any(|&d| d < 1) {
            return Err(ConvertError::Argument {
                flag: "--input_shape",
                detail: format!("'{}' has a dynamic dimension (-1); convert needs the static shape ATC will build", s.name),
            });
        }
        shapes.insert(s.name.clone(), s.dims.clone());
    }
    if let Some(missing) = inputs.iter().find(|i| !shapes.contains_key(*i)) {
        return Err(ConvertError::Argument { flag: "--input_shape", detail: format!("model input '{missing}' of {label} is not given") });
    }
    crate::onnx::input_shape::set_input_dims(graph, &shapes).map_err(|(name, model, given)| ConvertError::Argument {
        flag: "--input_shape",
        detail: format!("'{name}' has rank {model} in the model but {given} dims were given"),
    })?;
    Ok(shapes)
}

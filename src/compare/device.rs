//! The comparison on a device: both OMs loaded through AscendCL (the real `libascendcl.so` or
//! the ascend-ptq simulator: the same code path) and run on the same input sets. Shared by
//! `ascend-ptq compare` and `aptq_compare`. Failed releases of the device objects when the
//! comparison ends are drained from the ACL handle into the report's `teardown_errors`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::CompareError;
use super::flow::compare_with_progress;
use super::inputs::CompareInputs;
use super::report::{CompareReport, Sources};
use super::runner::{IoDType, IoDesc, OmRunner};
use crate::data::params::load_params;
use crate::device::acl::{self, Acl, AippType, Context, DataType, Model};
use crate::device::aipp::AippConfig;
use crate::device::om::read_simulated_om_file;
use crate::engine::Session;
use crate::onnx::ModelProto;

/// Where the compare inputs come from.
#[derive(Debug, Clone)]
pub enum InputSource {
    /// A calibration-set folder per input (`--data_dir a;b --data_types float32;uint8`).
    Calib { data_dir: String, data_types: String, batch_num: usize },
    /// Images turned into model inputs with a preprocessing parameter file (uint8 frames for
    /// static-AIPP inputs, normalized float CHW otherwise).
    Images { dir: PathBuf, params: PathBuf, section: Option<String> },
}

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub int8_om: PathBuf,
    pub fp16_om: PathBuf,
    pub inputs: InputSource,
    /// The fp32 ONNX model: our CPU engine's output becomes a third column.
    pub reference: Option<PathBuf>,
    pub device: i32,
    /// `libascendcl.so` (or the simulator); None = discovery (see `acl::LibrarySearch`).
    pub acl_lib: Option<PathBuf>,
    /// The task and the verdict's threshold (a bare cosine converts: `0.99.into()`).
    pub criteria: super::task::Criteria,
}

/// One OM loaded on a device, run through the compare flow.
pub struct AclRunner {
    model: Model,
    inputs: Vec<IoDesc>,
    outputs: Vec<IoDesc>,
    label: String,
}

fn io_dtype(model: &Path, io: &acl::IoDesc) -> Result<IoDType, CompareError> {
    Ok(match io.dtype {
        DataType::Float => IoDType::F32,
        DataType::Float16 => IoDType::F16,
        DataType::Double => IoDType::F64,
        DataType::Int8 => IoDType::I8,
        DataType::Uint8 => IoDType::U8,
        DataType::Int16 => IoDType::I16,
        DataType::Uint16 => IoDType::U16,
        DataType::Int32 => IoDType::I32,
        DataType::Uint32 => IoDType::U32,
        DataType::Int64 => IoDType::I64,
        DataType::Uint64 => IoDType::U64,
        DataType::Bool => IoDType::Bool,
        other => {
            return Err(CompareError::Run {
                model: model.display().to_string(),
                detail: format!("'{}' has element type {other:?}, which compare cannot read", io.name),
            });
        }
    })
}

impl AclRunner {
    /// Loads `path` in `ctx`; `device_label` names where it runs in the report.
    pub fn load(ctx: &Context, path: &Path, device_label: String) -> Result<AclRunner, CompareError> {
        let model = ctx.load_model(path)?;
        let convert = |io: &acl::IoDesc| -> Result<IoDesc, CompareError> {
            Ok(IoDesc {
                name: io.name.clone(),
                dtype: io_dtype(path, io)?,
                dims: io.dims.clone(),
                size_bytes: io.size,
                static_aipp: io.aipp == AippType::Static,
            })
        };
        let inputs = model.desc().inputs().iter().map(convert).collect::<Result<_, _>>()?;
        let outputs = model.desc().outputs().iter().map(convert).collect::<Result<_, _>>()?;
        Ok(AclRunner { model, inputs, outputs, label: device_label })
    }
}

impl OmRunner for AclRunner {
    fn device_label(&self) -> String {
        self.label.clone()
    }

    fn inputs(&self) -> &[IoDesc] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoDesc] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>, CompareError> {
        Ok(self.model.run(inputs)?)
    }
}

/// How a report names the device. The simulator is always called a simulator, so a report
/// made with it can never pass for a hardware result.
pub fn device_label(acl: &Acl, device: i32) -> String {
    let soc = acl.soc_name().unwrap_or_else(|| "unknown SoC".into());
    match acl.simulator_identity() {
        Some(id) => format!("simulator: {soc} device {device} ({id}; CPU, not an Ascend NPU)"),
        None => format!("{soc} device {device} ({})", acl.library().display()),
    }
}

/// The static AIPP configs a simulated OM carries (real OMs: none, `from_images` then derives
/// the config from the parameter file as `ascend-ptq aipp` does).
fn om_aipp_configs(om: &Path, inputs: &[IoDesc]) -> Result<HashMap<String, AippConfig>, CompareError> {
    let mut configs = HashMap::new();
    let Ok(sim) = read_simulated_om_file(om) else { return Ok(configs) };
    if let (Some(text), Some(first)) = (sim.aipp_text, inputs.iter().find(|d| d.static_aipp)) {
        let cfg = AippConfig::from_text(&text, om).map_err(|source| CompareError::Aipp { input: first.name.clone(), source })?;
        configs.insert(first.name.clone(), cfg);
    }
    Ok(configs)
}

/// Runs the whole comparison; `progress(done, total)` after every input set.
pub fn compare_oms(opts: &CompareOptions, progress: &mut dyn FnMut(usize, usize)) -> Result<CompareReport, CompareError> {
    for (flag, path) in [("--int8", &opts.int8_om), ("--fp16", &opts.fp16_om)] {
        if !path.is_file() {
            return Err(CompareError::Io { path: path.clone(), detail: format!("{flag}: no such OM file") });
        }
    }
    // The reference model is loaded before the device is touched: a typo costs no model load.
    let reference_model = match &opts.reference {
        Some(path) => Some(crate::onnx::load_model(path).map_err(|e| CompareError::Reference(e.to_string()))?),
        None => None,
    };
    let acl = Acl::open(opts.acl_lib.as_deref())?;
    let mut report = compare_on_device(&acl, opts, reference_model.as_ref(), progress)?;
    // Every device handle of the comparison is released by now: what failed goes in the report.
    report.teardown_errors = acl.take_teardown_errors().iter().map(ToString::to_string).collect();
    Ok(report)
}

/// The comparison proper; the device, context and models it makes are released on return.
fn compare_on_device(
    acl: &Acl,
    opts: &CompareOptions,
    reference_model: Option<&ModelProto>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CompareReport, CompareError> {
    let device = acl.device(opts.device)?;
    let ctx = device.create_context()?;
    let label = device_label(acl, opts.device);
    let mut int8 = AclRunner::load(&ctx, &opts.int8_om, label.clone())?;
    let mut fp16 = AclRunner::load(&ctx, &opts.fp16_om, label)?;

    let aipp = om_aipp_configs(&opts.int8_om, int8.inputs())?;
    let (inputs, inputs_label) = match &opts.inputs {
        InputSource::Calib { data_dir, data_types, batch_num } => {
            (CompareInputs::open_calib(int8.inputs(), data_dir, data_types, *batch_num, &aipp)?, data_dir.clone())
        }
        InputSource::Images { dir, params, section } => {
            let loaded =
                load_params(params, section.as_deref()).map_err(|e| CompareError::Io { path: params.clone(), detail: e.to_string() })?;
            (CompareInputs::from_images(int8.inputs(), dir, &loaded.params, &aipp)?, dir.display().to_string())
        }
    };
    let session = match reference_model {
        // Planned for the float tensors the OM inputs stand for (a static-AIPP input feeds
        // NHWC frames; the ONNX model takes the NCHW tensor AIPP makes of them).
        Some(model) => {
            let first = inputs.get(0)?;
            let shapes: HashMap<String, Vec<i64>> =
                first.reference.iter().flatten().map(|(name, t)| (name.clone(), t.shape().iter().map(|&d| d as i64).collect())).collect();
            Some(Session::new(model, &shapes)?)
        }
        None => None,
    };
    let mut report = compare_with_progress(&mut int8, &mut fp16, &inputs, session.as_ref(), opts.criteria.clone(), progress)?;
    report.sources = Sources {
        int8_model: Some(opts.int8_om.display().to_string()),
        fp16_model: Some(opts.fp16_om.display().to_string()),
        reference_model: opts.reference.as_ref().map(|p| p.display().to_string()),
        inputs: Some(inputs_label),
    };
    report.notes.extend(inputs.notes().iter().cloned());
    Ok(report)
}

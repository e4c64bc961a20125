//! Checks before a long ATC run (minutes for a YOLO model): the model files exist and are
//! ONNX, `--input_shape` names and ranks match the model inputs, the deploy model really holds
//! AscendQuant/AscendDequant in an opset ATC reads them in, the AIPP file parses and is static.
//! Unknown `--soc_version` / `--precision_mode` values only warn: CANN adds new ones.

use std::collections::HashSet;
use std::path::Path;

use super::error::AtcError;
use super::plan::{AtcInvocation, BuildRequest, Precision};
use crate::device::aipp::{AippConfig, InputFormat, read_aipp_file};
use crate::onnx::input_shape::InputShape;
use crate::onnx::proto::tensor_shape_proto::dimension;
use crate::onnx::proto::{ModelProto, ValueInfoProto, type_proto};
use crate::onnx::{ATC_OPSETS, default_opset, load_model};

/// What the checks found that does not stop the build.
#[derive(Debug, Default)]
pub struct Precheck {
    pub warnings: Vec<String>,
    /// The AIPP block, when ascend-ptq can model it (for simulation and comparison).
    pub aipp: Option<AippConfig>,
}

/// `--precision_mode` values of ATC (docs/ascend-formats.md §9; newer CANN adds more, hence only a warning).
const PRECISION_MODES: &[&str] =
    &["force_fp32", "cube_fp16in_fp32out", "force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision"];

/// SoC names ATC documents for the chips ascend-ptq targets (docs/ascend-formats.md §9, §14).
pub fn is_known_soc(soc: &str) -> bool {
    matches!(soc, "Ascend310" | "Ascend310P1" | "Ascend310P3" | "Ascend310B1" | "Ascend310B2" | "Ascend310B3" | "Ascend310B4")
        || soc.starts_with("Ascend910")
}

pub fn precheck(req: &BuildRequest, plans: &[AtcInvocation]) -> Result<Precheck, AtcError> {
    let mut out = Precheck::default();
    if !is_known_soc(&req.soc_version) {
        out.warnings.push(format!(
            "--soc_version {}: not a SoC name ascend-ptq knows (Ascend310, Ascend310P1, Ascend310P3, Ascend310B1..B4, Ascend910*); \
             passing it to ATC unchanged. It must be \"Ascend\" + the Chip Name shown by `npu-smi info`",
            req.soc_version
        ));
    }
    if let Some(m) = &req.precision_mode
        && !PRECISION_MODES.contains(&m.as_str())
    {
        out.warnings.push(format!("--precision_mode {m}: not one of {}; passing it to ATC unchanged", PRECISION_MODES.join(", ")));
    }
    let mut first_inputs: Option<Vec<ValueInfoProto>> = None;
    for plan in plans {
        let model = load_source(plan)?;
        let inputs = check_inputs(plan, &model, &req.input_shapes, &mut out.warnings)?;
        check_quant_ops(plan, &model)?;
        first_inputs.get_or_insert(inputs);
    }
    if let Some(aipp) = &req.aipp {
        out.aipp = check_aipp(aipp, &req.input_shapes, first_inputs.as_deref().unwrap_or_default(), &mut out.warnings)?;
    }
    Ok(out)
}

fn model_err(plan: &AtcInvocation, detail: String) -> AtcError {
    AtcError::Model { flag: plan.source_flag.to_string(), path: plan.source_model.clone(), detail }
}

fn load_source(plan: &AtcInvocation) -> Result<ModelProto, AtcError> {
    if !plan.source_model.is_file() {
        return Err(model_err(plan, "no such file".into()));
    }
    Ok(load_model(&plan.source_model)?)
}

/// Declared dims: `Some(v)` for a fixed size, `None` for a symbolic or unknown one; `None`
/// overall when the input declares no shape.
fn declared_dims(v: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else { return None };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(n)) if n > 0 => Some(n),
                _ => None,
            })
            .collect(),
    )
}

fn dims_text(dims: &Option<Vec<Option<i64>>>) -> String {
    match dims {
        None => "[shape not declared]".into(),
        Some(d) => format!("[{}]", d.iter().map(|x| x.map_or("?".to_string(), |n| n.to_string())).collect::<Vec<_>>().join(",")),
    }
}

/// Returns the model's real inputs (graph inputs that are not initializers).
fn check_inputs(
    plan: &AtcInvocation,
    model: &ModelProto,
    shapes: &[InputShape],
    warnings: &mut Vec<String>,
) -> Result<Vec<ValueInfoProto>, AtcError> {
    let graph = model.graph.as_ref().ok_or_else(|| model_err(plan, "the model has no graph".into()))?;
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let inputs: Vec<ValueInfoProto> = graph.input.iter().filter(|v| !initializers.contains(v.name())).cloned().collect();
    let listing = || inputs.iter().map(|v| format!("{} {}", v.name(), dims_text(&declared_dims(v)))).collect::<Vec<_>>().join(", ");
    let model_label = format!("{} ({})", plan.source_model.display(), plan.source_flag);
    for s in shapes {
        let Some(input) = inputs.iter().find(|v| v.name() == s.name) else {
            return Err(AtcError::arg(
                "--input_shape",
                format!("'{}' is not an input of {model_label}; its inputs are: {}", s.name, listing()),
            ));
        };
        let given = s.dims.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        if let Some(declared) = declared_dims(input) {
            if declared.len() != s.dims.len() {
                return Err(AtcError::arg(
                    "--input_shape",
                    format!(
                        "'{}' is given rank {} ({given}) but {model_label} declares rank {} {}",
                        s.name,
                        s.dims.len(),
                        declared.len(),
                        dims_text(&Some(declared.clone()))
                    ),
                ));
            }
            let differs = declared.iter().zip(&s.dims).any(|(d, &g)| d.is_some_and(|d| g != -1 && d != g));
            if differs {
                warnings.push(format!(
                    "--input_shape '{}' = {given} differs from the fixed shape {} declared by {model_label}; ATC may refuse it",
                    s.name,
                    dims_text(&Some(declared))
                ));
            }
        }
    }
    for v in &inputs {
        let listed = shapes.iter().any(|s| s.name == v.name());
        let dims = declared_dims(v);
        if !listed && dims.as_ref().is_none_or(|d| d.iter().any(Option::is_none)) {
            return Err(AtcError::arg(
                "--input_shape",
                format!("the input '{}' of {model_label} has no fixed shape {}; give it in --input_shape", v.name(), dims_text(&dims)),
            ));
        }
    }
    Ok(inputs)
}

fn check_quant_ops(plan: &AtcInvocation, model: &ModelProto) -> Result<(), AtcError> {
    let graph = model.graph.as_ref().ok_or_else(|| model_err(plan, "the model has no graph".into()))?;
    let count = |ty: &str| graph.node.iter().filter(|n| n.op_type() == ty && matches!(n.domain(), "" | "ai.onnx")).count();
    let (quant, dequant) = (count("AscendQuant"), count("AscendDequant"));
    match plan.precision {
        Precision::Int8 => {
            if quant == 0 || dequant == 0 {
                return Err(model_err(
                    plan,
                    format!(
                        "not a deploy model: it has {quant} AscendQuant and {dequant} AscendDequant nodes, expected both \
                         (pass the <prefix>_deploy_model.onnx written by `ascend-ptq calibration`)"
                    ),
                ));
            }
            let opset = default_opset(model).unwrap_or(1);
            if !ATC_OPSETS.contains(&opset) {
                return Err(model_err(
                    plan,
                    format!(
                        "imports ai.onnx opset {opset}; ATC reads AscendQuant/AscendDequant only in opsets {}–{}",
                        ATC_OPSETS.start(),
                        ATC_OPSETS.end()
                    ),
                ));
            }
        }
        Precision::Fp16 if quant + dequant > 0 => {
            return Err(model_err(
                plan,
                format!(
                    "has {quant} AscendQuant / {dequant} AscendDequant nodes: this is a deploy model; \
                     --model takes the float model the fp16 OM is built from (the deploy model goes to --deploy)"
                ),
            ));
        }
        Precision::Fp16 => {}
    }
    Ok(())
}

/// The AIPP file must parse and be static (errors); what ascend-ptq cannot model, or a size
/// that disagrees with `--input_shape`, only warns (ATC is the judge).
fn check_aipp(
    path: &Path,
    shapes: &[InputShape],
    inputs: &[ValueInfoProto],
    warnings: &mut Vec<String>,
) -> Result<Option<AippConfig>, AtcError> {
    if !path.is_file() {
        return Err(AtcError::arg("--aipp", format!("{}: no such file", path.display())));
    }
    let (_, blocks) = read_aipp_file(path)?;
    for b in &blocks {
        if let Some(rank) = b.input_rank()
            && !inputs.is_empty()
            && rank as usize >= inputs.len()
        {
            return Err(AtcError::arg(
                "--aipp",
                format!(
                    "{}:{}: related_input_rank {rank} but the model has {} input(s)",
                    path.display(),
                    b.get("related_input_rank").map_or(b.line, |f| f.line),
                    inputs.len()
                ),
            ));
        }
    }
    let cfg = match blocks.as_slice() {
        [one] => match AippConfig::from_block(one, path) {
            Ok(cfg) => cfg,
            Err(e) => {
                warnings.push(format!("AIPP: {e}; ATC applies the file, but ascend-ptq cannot simulate or compare it"));
                return Ok(None);
            }
        },
        _ => {
            warnings.push(format!("AIPP: {} blocks; ascend-ptq models single-block files only", blocks.len()));
            return Ok(None);
        }
    };
    let first = inputs.first().map(|v| v.name());
    if let Some(shape) = shapes.iter().find(|s| Some(s.name.as_str()) == first)
        && shape.dims.len() == 4
    {
        let (w, h) = cfg.crop.map_or((cfg.src_width, cfg.src_height), |c| (c.width, c.height));
        let c = if cfg.input_format == InputFormat::Yuv400U8 { 1 } else { 3 };
        let want = [c as i64, h as i64, w as i64];
        if shape.dims[1..] != want {
            warnings.push(format!(
                "AIPP ({}) produces {c}x{h}x{w} (CxHxW) but --input_shape gives '{}' {:?}: ATC may refuse the pair",
                path.display(),
                shape.name,
                shape.dims
            ));
        }
    }
    Ok(Some(cfg))
}

//! What amct_onnx's command line leaves optional (docs/ascend-formats.md §1): only `--model`
//! and `--save_path` are required by its `--help`. Here the three data options get their
//! values: `--input_shape` from the model when all its inputs are static, `--data_types`
//! float32 for every input, and `--data_dir` is required (no config file can give data).
//! `--evaluator` (a Python script) is refused with what to give instead.

use super::calibrate::{CalibrateError, CalibrationOptions};
use crate::onnx::proto::{ModelProto, tensor_shape_proto::dimension::Value as Dim, type_proto};

/// The data options after the defaults, as [`crate::data::calib_set::CalibrationSet::open`]
/// takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataArgs {
    pub input_shape: String,
    pub data_dir: String,
    pub data_types: String,
}

/// Checks `--evaluator` before anything is read.
/// amct_onnx's `--save_path DIR/prefix`: the path of an output with this suffix
/// (`DIR/prefix_<suffix>`; `DIR/` means no prefix, `DIR/<suffix>`); `None` for an empty one.
pub(crate) fn save_path_file(save_path: &str) -> Option<impl Fn(&str) -> std::path::PathBuf + '_> {
    if save_path.is_empty() {
        return None;
    }
    let (dir, prefix) = match save_path.rfind('/') {
        Some(i) => (&save_path[..=i], &save_path[i + 1..]),
        None => ("./", save_path),
    };
    Some(move |suffix: &str| {
        let name = if prefix.is_empty() { suffix.to_string() } else { format!("{prefix}_{suffix}") };
        std::path::Path::new(dir).join(name)
    })
}

pub fn refuse_evaluator(opts: &CalibrationOptions) -> Result<(), CalibrateError> {
    let Some(script) = &opts.evaluator else { return Ok(()) };
    Err(CalibrateError::Argument {
        flag: "--evaluator",
        detail: format!(
            "{} is a Python evaluator for amct_onnx; ascend-ptq runs no Python. Give the calibration data instead: \
             --data_dir (one folder of .bin batches per input, e.g. written by `ascend-ptq preprocess PARAMS.json`), \
             with --input_shape and --data_types when the defaults do not fit; to judge accuracy, read the per-layer \
             and output cosines of PREFIX_quant_report.json or run `ascend-ptq compare`",
            script.display()
        ),
    })
}

/// Fills in the defaults of the data options from `model` (the file `opts.model`).
pub fn resolve_data_args(opts: &CalibrationOptions, model: &ModelProto) -> Result<DataArgs, CalibrateError> {
    let input_shape = match &opts.input_shape {
        Some(given) => given.clone(),
        None => static_input_shape(model, &opts.model.display().to_string())?,
    };
    let data_dir = opts.data_dir.clone().ok_or_else(|| CalibrateError::Argument {
        flag: "--data_dir",
        detail: "is required: give one folder of .bin batches per model input (\"dir1;dir2\", in --input_shape order), \
                 e.g. the folder `ascend-ptq preprocess PARAMS.json` writes"
            .into(),
    })?;
    let data_types = match &opts.data_types {
        Some(given) => given.clone(),
        None => {
            let inputs = input_shape.split(';').filter(|item| !item.trim().is_empty()).count();
            vec!["float32"; inputs.max(1)].join(";")
        }
    };
    Ok(DataArgs { input_shape, data_dir, data_types })
}

/// `--input_shape` as the model declares it: "name:d0,d1;…" over the inputs that are not
/// initializers, or an error naming every dynamic or missing dimension.
pub(crate) fn static_input_shape(model: &ModelProto, model_name: &str) -> Result<String, CalibrateError> {
    let graph = model.graph.as_ref().ok_or(super::error::QuantError::NoGraph)?;
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let mut items = Vec::new();
    let mut dynamic = Vec::new();
    for input in graph.input.iter().filter(|i| !initializers.contains(i.name())) {
        let shape = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref(),
            _ => None,
        };
        let Some(shape) = shape else {
            dynamic.push(format!("'{}' has no shape", input.name()));
            continue;
        };
        let mut dims = Vec::new();
        let mut unknown = Vec::new();
        for (axis, d) in shape.dim.iter().enumerate() {
            match &d.value {
                Some(Dim::DimValue(v)) if *v > 0 => dims.push(v.to_string()),
                Some(Dim::DimParam(p)) if !p.is_empty() => {
                    unknown.push(format!("dim {axis} '{p}'"));
                    dims.push("?".into());
                }
                _ => {
                    unknown.push(format!("dim {axis}"));
                    dims.push("?".into());
                }
            }
        }
        let item = format!("{}:{}", input.name(), dims.join(","));
        if !unknown.is_empty() {
            dynamic.push(format!("'{}' has dynamic {} (\"{item}\")", input.name(), unknown.join(", ")));
        }
        items.push(item);
    }
    if items.is_empty() && dynamic.is_empty() {
        return Err(CalibrateError::Argument { flag: "--input_shape", detail: format!("{model_name} has no inputs") });
    }
    if !dynamic.is_empty() {
        return Err(CalibrateError::Argument {
            flag: "--input_shape",
            detail: format!(
                "not given, and the inputs of {model_name} are not all static: {}; give --input_shape with each ? \
                 replaced by the size of your .bin batches",
                dynamic.join("; ")
            ),
        });
    }
    Ok(items.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::build::float_value_info;
    use crate::onnx::proto::GraphProto;

    fn opts(input_shape: Option<&str>, data_types: Option<&str>) -> CalibrationOptions {
        CalibrationOptions {
            model: "m.onnx".into(),
            input_shape: input_shape.map(Into::into),
            data_dir: Some("d".into()),
            data_types: data_types.map(Into::into),
            ..Default::default()
        }
    }

    fn two_inputs(dims_a: &[i64]) -> ModelProto {
        let input = vec![float_value_info("a", dims_a), float_value_info("b:0", &[1, 4])];
        ModelProto { graph: Some(GraphProto { input, ..Default::default() }), ..Default::default() }
    }

    #[test]
    fn static_inputs_give_the_shape_and_float32_for_each() {
        let args = resolve_data_args(&opts(None, None), &two_inputs(&[1, 3, 8, 8])).unwrap();
        assert_eq!(args.input_shape, "a:1,3,8,8;b:0:1,4");
        assert_eq!(args.data_types, "float32;float32");
        let given = resolve_data_args(&opts(Some("a:2,3,8,8"), Some("uint8")), &two_inputs(&[1, 3, 8, 8])).unwrap();
        assert_eq!((given.input_shape.as_str(), given.data_types.as_str()), ("a:2,3,8,8", "uint8"));
        let one = resolve_data_args(&opts(Some("a:2,3,8,8"), None), &two_inputs(&[1, 3, 8, 8])).unwrap();
        assert_eq!(one.data_types, "float32");
    }

    #[test]
    fn dynamic_dims_are_named() {
        let e = resolve_data_args(&opts(None, None), &two_inputs(&[-1, 3, 8, 8])).unwrap_err().to_string();
        assert!(e.starts_with("--input_shape: not given"), "{e}");
        assert!(e.contains("'a' has dynamic dim 0 'N' (\"a:?,3,8,8\")"), "{e}");
        let missing = CalibrationOptions { data_dir: None, ..opts(None, None) };
        let e = resolve_data_args(&missing, &two_inputs(&[1, 3, 8, 8])).unwrap_err().to_string();
        assert!(e.starts_with("--data_dir: is required"), "{e}");
    }

    #[test]
    fn evaluator_says_what_to_use_instead() {
        let o = CalibrationOptions { evaluator: Some("evaluator.py".into()), ..opts(None, None) };
        let e = refuse_evaluator(&o).unwrap_err().to_string();
        assert!(e.starts_with("--evaluator: evaluator.py is a Python evaluator") && e.contains("--data_dir"), "{e}");
        assert!(refuse_evaluator(&opts(None, None)).is_ok());
    }
}

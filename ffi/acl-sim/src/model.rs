//! A loaded simulated OM: its interface and the engine session that executes it.

use std::collections::HashMap;
use std::path::Path;

use ascend_ptq::device::aipp::{AippConfig, apply_aipp};
use ascend_ptq::device::om::{OmError, SimPrecision, SimulatedModel, read_simulated_om};
use ascend_ptq::engine::fp16::{round_tensor_to_f16, round_weights_to_f16};
use ascend_ptq::engine::{RunOptions, Session, Tensor};
use ascend_ptq::onnx::{DataType, TensorData, load_model_from_bytes};
use half::f16;

use crate::codes::*;

/// An ACL error: the code returned to the caller and the text for `aclGetRecentErrMsg`.
#[derive(Debug, Clone, PartialEq)]
pub struct AclFail {
    pub code: i32,
    pub msg: String,
}

pub fn fail<T>(code: i32, msg: impl Into<String>) -> Result<T, AclFail> {
    Err(AclFail { code, msg: msg.into() })
}

pub struct LoadedModel {
    pub sim: SimulatedModel,
    /// Parsed static AIPP of input 0.
    aipp: Option<AippConfig>,
    session: Session,
}

impl LoadedModel {
    /// Parses and plans a simulated OM. Every problem with the file is a parse error
    /// (ACL_ERROR_PARSE_MODEL), with the reason for aclGetRecentErrMsg.
    pub fn load(label: &Path, bytes: &[u8]) -> Result<LoadedModel, AclFail> {
        let parse_err = |msg: String| AclFail { code: ACL_ERROR_PARSE_MODEL, msg };
        let sim = read_simulated_om(label, bytes).map_err(|e| match e {
            OmError::NotSimulated { .. } => parse_err(e.to_string()),
            other => parse_err(format!("cannot parse the model: {other}")),
        })?;
        let aipp = match &sim.aipp_text {
            Some(text) => Some(AippConfig::from_text(text, label).map_err(|e| parse_err(format!("the embedded AIPP config: {e}")))?),
            None => None,
        };
        let mut model = load_model_from_bytes(&sim.onnx, label, None).map_err(|e| parse_err(format!("the embedded ONNX model: {e}")))?;
        if sim.precision == SimPrecision::Fp16 {
            round_weights_to_f16(&mut model).map_err(|e| parse_err(format!("the embedded ONNX model: {e}")))?;
        }
        let session = Session::new(&model, &sim.input_shapes()).map_err(|e| parse_err(format!("the engine cannot plan the model: {e}")))?;
        Ok(LoadedModel { sim, aipp, session })
    }

    /// Runs the model on the input buffers (already checked against the input sizes) and
    /// returns the output bytes in the described dtype.
    pub fn execute(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, AclFail> {
        let fp16 = self.sim.precision == SimPrecision::Fp16;
        let mut feed = HashMap::new();
        for (input, bytes) in self.sim.inputs.iter().zip(inputs) {
            let shape: Vec<usize> = input.model_shape.iter().map(|&d| d as usize).collect();
            let name = &input.desc.name;
            let mut t = match (&self.aipp, input.static_aipp) {
                (Some(cfg), true) => {
                    // One AIPP pass per image of the batch; the result is the float NCHW input.
                    let per_image = bytes.len() / shape[0].max(1);
                    let values: Vec<f32> = bytes.chunks(per_image.max(1)).flat_map(|frame| apply_aipp(cfg, frame)).collect();
                    if values.len() != shape.iter().product::<usize>() {
                        return fail(
                            ACL_ERROR_INTERNAL_ERROR,
                            format!(
                                "input '{name}': AIPP produced {} values, the model input {shape:?} needs {}",
                                values.len(),
                                shape.iter().product::<usize>()
                            ),
                        );
                    }
                    Tensor::from_onnx(&ascend_ptq::onnx::Tensor::new(input.model_shape.clone(), TensorData::F32(values)), name)
                }
                _ => Tensor::from_le_bytes(input.desc.dtype, &shape, bytes, name),
            }
            .map_err(|e| AclFail { code: ACL_ERROR_INTERNAL_ERROR, msg: format!("input '{name}': {e}") })?;
            if fp16 {
                // The device casts float inputs to fp16 before the first op.
                round_tensor_to_f16(&mut t);
            }
            let t = match (self.session.inputs().find(|s| &s.name == name).map(|s| s.dtype), t) {
                (Some(DataType::Float16), Tensor::F32(a)) => Tensor::F16(a.mapv(f16::from_f32)),
                (_, t) => t,
            };
            feed.insert(name.clone(), t);
        }
        let options = RunOptions { round_outputs_to_f16: fp16 };
        let outputs = self
            .session
            .run_with(feed, &options)
            .map_err(|e| AclFail { code: ACL_ERROR_FAILURE, msg: format!("model '{}' failed to execute: {e}", self.sim.name) })?;
        let mut result = Vec::new();
        for (desc, (name, t)) in self.sim.outputs.iter().zip(outputs) {
            let bytes = match (desc.dtype, &t) {
                (DataType::Float16, Tensor::F32(a)) => a.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
                (DataType::Float16, Tensor::F64(a)) => a.iter().flat_map(|&v| f16::from_f64(v).to_le_bytes()).collect(),
                (dt, t) if dt == t.dtype() => t.to_le_bytes(),
                (dt, t) => {
                    return fail(
                        ACL_ERROR_INTERNAL_ERROR,
                        format!("output '{name}' is {} but the model describes {}", t.dtype_name(), dt.as_str_name().to_ascii_lowercase()),
                    );
                }
            };
            if bytes.len() != desc.size_bytes {
                return fail(
                    ACL_ERROR_INTERNAL_ERROR,
                    format!("output '{name}' has {} bytes, the model describes {} (shape {:?})", bytes.len(), desc.size_bytes, t.shape()),
                );
            }
            result.push(bytes);
        }
        Ok(result)
    }
}

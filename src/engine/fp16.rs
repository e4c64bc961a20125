//! fp16 emulation of a float model, the way an fp16 device build computes it: float weights
//! stored as fp16, float inputs cast to fp16, every op output rounded to fp16 (with
//! [`super::RunOptions::round_outputs_to_f16`]); arithmetic in between stays f32. Used by
//! `ascend-ptq run --emulate_fp16` and by the ACL simulator for fp16 OMs, so both agree.

use half::f16;

use super::Tensor;
use crate::onnx::io::visit_tensors_mut;
use crate::onnx::{ModelProto, Tensor as OnnxTensor, TensorData};

/// Rounds every float32 tensor stored in the model (initializers, Constant values, tensors in
/// subgraphs) to the nearest fp16 value, kept as float32.
pub fn round_weights_to_f16(model: &mut ModelProto) -> crate::onnx::Result<()> {
    visit_tensors_mut(model, &mut |proto| {
        let Ok(t) = OnnxTensor::from_proto(proto) else { return Ok(()) };
        if let TensorData::F32(values) = &t.data {
            let rounded: Vec<f32> = values.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
            *proto = OnnxTensor::new(t.dims.clone(), TensorData::F32(rounded)).to_proto(proto.name());
        }
        Ok(())
    })
}

/// The device's cast of a float input to fp16 (the values stay f32).
pub fn round_input_to_f16(t: &mut Tensor) {
    if let Tensor::F32(a) = t {
        a.mapv_inplace(|v| f16::from_f32(v).to_f32());
    }
}

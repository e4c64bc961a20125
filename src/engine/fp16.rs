//! fp16 emulation of a float model, the way an fp16 device build computes it: float weights
//! stored as fp16, float inputs cast to fp16, every op output rounded to fp16 (with
//! [`super::RunOptions::round_outputs_to_f16`]); arithmetic in between stays f32. Used by
//! `ascend-ptq run --emulate_fp16` and by the ACL simulator for fp16 OMs, so both agree.

use std::collections::HashSet;

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::Tensor;
use crate::onnx::{ModelProto, Tensor as OnnxTensor, TensorData, TensorProto};

/// Rounds the float32 tensors stored in the main graph (initializers and Constant values) to
/// the nearest fp16 value, kept as float32. BatchNormalization statistics are left alone: ATC
/// folds them into a per-channel scale and offset before storing anything (a running variance
/// of 1e7, as PP-OCRv4 det has, is not even representable in fp16), and the normalized output
/// is rounded like every op output.
pub fn round_weights_to_f16(model: &mut ModelProto) -> crate::onnx::Result<()> {
    let Some(graph) = model.graph.as_mut() else { return Ok(()) };
    let bn_params: HashSet<String> =
        graph.node.iter().filter(|n| n.op_type() == "BatchNormalization").flat_map(|n| n.input.iter().skip(1).cloned()).collect();
    let round = |proto: &mut TensorProto| -> crate::onnx::Result<()> {
        let t = OnnxTensor::from_proto(proto)?;
        if let TensorData::F32(values) = &t.data {
            let mut rounded = values.clone();
            round_slice_to_f16(&mut rounded);
            *proto = OnnxTensor::new(t.dims.clone(), TensorData::F32(rounded)).to_proto(proto.name());
        }
        Ok(())
    };
    for init in graph.initializer.iter_mut().filter(|t| !bn_params.contains(t.name())) {
        round(init)?;
    }
    for node in graph.node.iter_mut().filter(|n| n.op_type() == "Constant" && !n.output.iter().any(|o| bn_params.contains(o))) {
        for attr in node.attribute.iter_mut().filter(|a| a.name() == "value") {
            if let Some(t) = attr.t.as_mut() {
                round(t)?;
            }
        }
    }
    Ok(())
}

/// Rounds a float32 tensor to fp16 values (the values stay f32): the device's cast of a
/// float input, and the rounding of every op output.
pub fn round_tensor_to_f16(t: &mut Tensor) {
    if let Tensor::F32(a) = t {
        match a.as_slice_mut() {
            Some(values) => round_slice_to_f16(values),
            None => a.mapv_inplace(|v| f16::from_f32(v).to_f32()),
        }
    }
}

/// Rounds to the nearest fp16 value in place, through `half`'s slice conversions (F16C
/// vector instructions when the CPU has them; scalar per-value conversion is ~10× slower).
pub fn round_slice_to_f16(values: &mut [f32]) {
    let mut buf = [f16::ZERO; 1024];
    for chunk in values.chunks_mut(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.convert_from_f32_slice(chunk);
        b.convert_to_f32_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::GraphProto;
    use crate::onnx::build::{constant_node, node};

    fn f32s(proto: &TensorProto) -> Vec<f32> {
        match OnnxTensor::from_proto(proto).unwrap().data {
            TensorData::F32(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slice_rounding_equals_per_value_rounding() {
        let mut values: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.7311).sin() * 10f32.powi(i % 12 - 6)).collect();
        values.extend([65519.0, 65520.0, -1e9, 1e-8, f32::NAN, f32::INFINITY]);
        let expected: Vec<f32> = values.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        round_slice_to_f16(&mut values);
        for (i, (a, b)) in values.iter().zip(&expected).enumerate() {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "value {i}: {a} vs {b}");
        }
    }

    #[test]
    fn weights_round_to_f16_but_batchnorm_statistics_stay() {
        let w = OnnxTensor::new(vec![2], TensorData::F32(vec![0.1, 70000.0]));
        let var = OnnxTensor::new(vec![1], TensorData::F32(vec![1.0e7]));
        let one = OnnxTensor::new(vec![1], TensorData::F32(vec![1.0]));
        let graph = GraphProto {
            node: vec![
                constant_node("c", "c_out", &w),
                constant_node("v", "var", &var),
                node("BatchNormalization", "bn", &["x", "scale", "bias", "mean", "var"], &["y"], vec![]),
            ],
            initializer: vec![one.to_proto("w"), one.to_proto("scale"), one.to_proto("bias"), var.to_proto("mean")],
            ..Default::default()
        };
        let mut model = ModelProto { graph: Some(graph), ..Default::default() };
        round_weights_to_f16(&mut model).unwrap();
        let g = model.graph.unwrap();
        let constant = |i: usize| f32s(g.node[i].attribute[0].t.as_ref().unwrap());
        assert_eq!(constant(0), vec![f16::from_f32(0.1).to_f32(), f32::INFINITY], "Constant values are rounded (70000 overflows)");
        assert_ne!(constant(0)[0], 0.1);
        assert_eq!(constant(1), vec![1.0e7], "a BatchNormalization variance is kept");
        assert_eq!(f32s(&g.initializer[3]), vec![1.0e7], "a BatchNormalization mean is kept");
    }
}

//! Small models shared by the ACL simulator tests (Rust and C API) and the command-line tests.
#![allow(dead_code)]

use ascend_ptq::onnx::{DataType, ModelProto, TensorData};

use super::graph::*;

pub const C_IN: usize = 3;
pub const C_OUT: usize = 5;
pub const H: usize = 4;
pub const W: usize = 6;

/// AscendQuant → int8 Conv (3x3, pad 1) → AscendDequant, as AMCT's deploy model (docs/ascend-formats.md §2).
pub fn int8_conv_deploy_model() -> ModelProto {
    let w: Vec<i8> = (0..C_OUT * C_IN * 9).map(|i| (((i * 37 + 11) % 255) as i32 - 127) as i8).collect();
    let bias: Vec<i32> = (0..C_OUT as i32).map(|c| c * 1013 - 2500).collect();
    let deq: Vec<u64> = (0..C_OUT).map(|c| ((0.001 + 0.0007 * c as f32) * 0.021f32).to_bits() as u64).collect();
    model(
        vec![
            node(
                "AscendQuant",
                "conv.quant",
                &["x"],
                &["q"],
                vec![attr_f("scale", 1.0 / 0.021), attr_f("offset", -17.0), attr_s("dst_type", "INT8")],
            ),
            node("Conv", "conv", &["q", "w", "b"], &["acc"], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])]),
            node("AscendDequant", "conv.dequant", &["acc", "deq"], &["y"], vec![attr_i("dtype", 0)]),
        ],
        vec![
            tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], TensorData::I8(w)),
            tensor("b", &[C_OUT as i64], TensorData::I32(bias)),
            tensor("deq", &[C_OUT as i64], TensorData::U64(deq)),
        ],
        vec![value_info("x", DataType::Float, &[1, C_IN as i64, H as i64, W as i64])],
        vec![value_info("y", DataType::Float, &[1, C_OUT as i64, H as i64, W as i64])],
        13,
    )
}

/// A small detector-like model: images [N,3,32,32] → Conv 3x3 s2 → Relu → Conv 1x1 → output
/// [N,4,16,16]. `batch` None leaves N symbolic ("batch"), as exported YOLO models often do.
pub fn small_detector(batch: Option<i64>) -> ModelProto {
    use ascend_ptq::onnx::proto::tensor_shape_proto::dimension;
    use ascend_ptq::onnx::proto::type_proto;
    let w1: Vec<f32> = (0..8 * 3 * 9).map(|i| ((i as f32) * 0.71).sin() * 0.3).collect();
    let w2: Vec<f32> = (0..4 * 8).map(|i| ((i as f32) * 1.37).cos() * 0.4).collect();
    let mut input = value_info("images", DataType::Float, &[batch.unwrap_or(1), 3, 32, 32]);
    if let (None, Some(type_proto::Value::TensorType(t))) = (batch, input.r#type.as_mut().and_then(|t| t.value.as_mut())) {
        t.shape.as_mut().unwrap().dim[0].value = Some(dimension::Value::DimParam("batch".into()));
    }
    let conv1 = vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 1, 1, 1])];
    model(
        vec![
            node("Conv", "Conv_0", &["images", "w1", "b1"], &["c1"], conv1),
            node("Relu", "Relu_1", &["c1"], &["r1"], vec![]),
            node("Conv", "Conv_2", &["r1", "w2", "b2"], &["output"], vec![attr_ints("kernel_shape", &[1, 1])]),
        ],
        vec![
            tensor("w1", &[8, 3, 3, 3], TensorData::F32(w1)),
            tensor("b1", &[8], TensorData::F32(vec![0.05; 8])),
            tensor("w2", &[4, 8, 1, 1], TensorData::F32(w2)),
            tensor("b2", &[4], TensorData::F32(vec![0.0; 4])),
        ],
        vec![input],
        vec![value_info("output", DataType::Float, &[batch.unwrap_or(1), 4, 16, 16])],
        13,
    )
}

/// [`small_detector`] saved at `path` (its folder created).
pub fn write_small_detector(path: &std::path::Path, batch: Option<i64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ascend_ptq::onnx::save_model(&small_detector(batch), path, &ascend_ptq::onnx::SaveOptions::default()).unwrap();
}

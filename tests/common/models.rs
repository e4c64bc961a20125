//! Small models shared by the ACL simulator tests (Rust and C API).
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

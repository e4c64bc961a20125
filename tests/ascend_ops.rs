//! A deploy-style graph (AscendQuant → int8 Conv → AscendDequant) runs bit-exactly in the
//! engine, and agrees with the equivalent standard-op fake-quant graph run in ONNX Runtime.

mod common;

use std::collections::{HashMap, HashSet};

use ascend_ptq::compare::Metrics;
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, SaveOptions, TensorData, save_model};
use common::graph::*;

const SCALE_D: f32 = 0.021;
const OFFSET_D: i32 = -17;
const C_IN: usize = 4;
const C_OUT: usize = 6;
const HW: usize = 9;

fn weights() -> (Vec<i8>, Vec<i32>, Vec<f32>) {
    let w: Vec<i8> = (0..C_OUT * C_IN * 9).map(|i| ((i * 37 + 11) % 255) as i32 - 127).map(|v| v as i8).collect();
    let bias: Vec<i32> = (0..C_OUT as i32).map(|c| c * 1013 - 2500).collect();
    let scale_w: Vec<f32> = (0..C_OUT).map(|c| 0.001 + 0.0007 * c as f32).collect();
    (w, bias, scale_w)
}

fn input() -> Vec<f32> {
    (0..C_IN * HW * HW).map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 1.3).collect()
}

fn deploy_model() -> ascend_ptq::onnx::ModelProto {
    let (w, bias, scale_w) = weights();
    let deq: Vec<u64> = scale_w.iter().map(|s| (s * SCALE_D).to_bits() as u64).collect();
    model(
        vec![
            node(
                "AscendQuant",
                "conv.quant",
                &["x"],
                &["q"],
                vec![attr_f("scale", 1.0 / SCALE_D), attr_f("offset", OFFSET_D as f32), attr_s("dst_type", "INT8")],
            ),
            node("Conv", "conv", &["q", "w", "b"], &["acc"], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])]),
            node("AscendDequant", "conv.dequant", &["acc", "conv.dequant.param"], &["y"], vec![attr_i("dtype", 0)]),
        ],
        vec![
            tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], TensorData::I8(w)),
            tensor("b", &[C_OUT as i64], TensorData::I32(bias)),
            tensor("conv.dequant.param", &[C_OUT as i64], TensorData::U64(deq)),
        ],
        vec![value_info("x", DataType::Float, &[1, C_IN as i64, HW as i64, HW as i64])],
        vec![value_info("y", DataType::Float, &[1, C_OUT as i64, HW as i64, HW as i64])],
        13,
    )
}

/// The same computation with standard ops (the fake-quant form of docs/ascend-formats.md §6).
fn fake_quant_model() -> ascend_ptq::onnx::ModelProto {
    let (w, bias, scale_w) = weights();
    let scalar = |name: &str, v: f32| tensor(name, &[], TensorData::F32(vec![v]));
    model(
        vec![
            node("Mul", "q.mul", &["x", "inv_scale"], &["t1"], vec![]),
            node("Round", "q.round", &["t1"], &["t2"], vec![]),
            node("Add", "q.add", &["t2", "offset"], &["t3"], vec![]),
            node("Clip", "q.clip", &["t3", "lo", "hi"], &["t4"], vec![]),
            node("Sub", "q.sub", &["t4", "offset"], &["t5"], vec![]),
            node("Conv", "conv", &["t5", "w", "b"], &["acc"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Mul", "deq", &["acc", "deq_scale"], &["y"], vec![]),
        ],
        vec![
            scalar("inv_scale", 1.0 / SCALE_D),
            scalar("offset", OFFSET_D as f32),
            scalar("lo", -128.0),
            scalar("hi", 127.0),
            tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], TensorData::F32(w.iter().map(|&v| v as f32).collect())),
            tensor("b", &[C_OUT as i64], TensorData::F32(bias.iter().map(|&v| v as f32).collect())),
            tensor("deq_scale", &[1, C_OUT as i64, 1, 1], TensorData::F32(scale_w.iter().map(|s| s * SCALE_D).collect())),
        ],
        vec![value_info("x", DataType::Float, &[1, C_IN as i64, HW as i64, HW as i64])],
        vec![value_info("y", DataType::Float, &[1, C_OUT as i64, HW as i64, HW as i64])],
        13,
    )
}

/// Straightforward integer reference of the accumulators.
fn reference_acc(x: &[f32]) -> Vec<i32> {
    let (w, bias, _) = weights();
    let q: Vec<i32> = x.iter().map(|&v| ((v * (1.0 / SCALE_D)).round_ties_even() as i32 + OFFSET_D).clamp(-128, 127)).collect();
    let mut out = Vec::new();
    for m in 0..C_OUT {
        for oy in 0..HW as isize {
            for ox in 0..HW as isize {
                let mut acc = bias[m];
                for c in 0..C_IN {
                    for ky in 0..3isize {
                        for kx in 0..3isize {
                            let (iy, ix) = (oy + ky - 1, ox + kx - 1);
                            if iy < 0 || ix < 0 || iy >= HW as isize || ix >= HW as isize {
                                continue;
                            }
                            let qv = q[(c * HW + iy as usize) * HW + ix as usize] - OFFSET_D;
                            acc += qv * w[((m * C_IN + c) * 3 + ky as usize) * 3 + kx as usize] as i32;
                        }
                    }
                }
                out.push(acc);
            }
        }
    }
    out
}

#[test]
fn deploy_graph_is_bit_exact_and_matches_fake_quant_in_onnxruntime() {
    let x = input();
    let session = Session::new(&deploy_model(), &HashMap::new()).unwrap();
    let x_tensor =
        Tensor::from_le_bytes(DataType::Float, &[1, C_IN, HW, HW], &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), "x")
            .unwrap();
    let mut acc = Vec::new();
    let observe: HashSet<String> = ["acc".to_string()].into();
    let out =
        session.run_observed(HashMap::from([("x".to_string(), x_tensor)]), &observe, &mut |_, t| acc = t.to_i64_vec().unwrap()).unwrap();
    let want = reference_acc(&x);
    assert_eq!(acc, want.iter().map(|&v| v as i64).collect::<Vec<_>>(), "int32 accumulators are exact");
    let y = out[0].1.to_f64_vec();

    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fq = tmp.path().join("fake_quant.onnx");
    save_model(&fake_quant_model(), &fq, &SaveOptions::default()).unwrap();
    let x_file = tmp.path().join("x.bin");
    std::fs::write(&x_file, x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()).unwrap();
    let feed = format!("x={}:float32:1,{C_IN},{HW},{HW}", x_file.display());
    let out_dir = tmp.path().join("ort");
    let (code, _, stderr) = common::run_oracle(&py, "ort_run.py", &[fq.to_str().unwrap(), out_dir.to_str().unwrap(), &feed]);
    assert_eq!(code, 0, "{stderr}");
    let ort: Vec<f64> = std::fs::read(out_dir.join("output_0.bin"))
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    let m = Metrics::compute(&y, &ort);
    let max_ref = ort.iter().fold(0f64, |a, v| a.max(v.abs()));
    eprintln!(
        "deploy vs fake-quant (ORT): cosine {:.9}, max abs err {:.3e}, max |y| {max_ref:.3}",
        m.cosine_similarity, m.max_absolute_error
    );
    assert!(m.cosine_similarity >= 0.99999);
    assert!(m.max_absolute_error <= 1e-4 * max_ref);
}

/// The engine's fused plan runs each int8 conv with its AscendDequant, the element-wise tail
/// after it and the AscendQuant that reads that tail alone (the next layer's input) as one op
/// (accumulators converted, scaled and finished in place, quantized plane by plane): bit for
/// bit the op-per-node plan. An AscendDequant with `relu_flag` (its own ReLU) stays a
/// separate op, and so does the conv before it.
#[test]
fn int8_conv_dequant_tail_and_quant_fuse_bit_exactly() {
    let (w, bias, scale_w) = weights();
    let deq: Vec<u64> = scale_w.iter().map(|s| (s * SCALE_D).to_bits() as u64).collect();
    let per_channel: Vec<f32> = (0..C_OUT).map(|c| 0.5 + 0.25 * c as f32).collect();
    let w_c: Vec<i8> = (0..C_OUT * C_OUT).map(|i| ((i * 53 + 7) % 255) as i32 - 127).map(|v| v as i8).collect();
    let deq_c: Vec<u64> = (0..C_OUT).map(|c| ((0.002 + 0.0003 * c as f32) * 0.05).to_bits() as u64).collect();
    let quant = |name: &str, x: &str, q: &str, scale: f32, offset: f32| {
        node("AscendQuant", name, &[x], &[q], vec![attr_f("scale", 1.0 / scale), attr_f("offset", offset), attr_s("dst_type", "INT8")])
    };
    let conv3 = |name: &str, out: &str| {
        node("Conv", name, &["q", "w", "b"], &[out], vec![attr_ints("pads", &[1, 1, 1, 1]), attr_ints("kernel_shape", &[3, 3])])
    };
    let m = model(
        vec![
            quant("quant", "x", "q", SCALE_D, OFFSET_D as f32),
            conv3("conv_a", "acc_a"),
            node("AscendDequant", "dequant_a", &["acc_a", "deq"], &["d_a"], vec![attr_i("dtype", 0)]),
            node("Mul", "scale_a", &["d_a", "k"], &["m_a"], vec![]),
            node("Relu", "relu_a", &["m_a"], &["r_a"], vec![]),
            quant("quant_c", "r_a", "q_c", 0.002, -128.0),
            node("Conv", "conv_c", &["q_c", "w_c"], &["acc_c"], vec![attr_ints("kernel_shape", &[1, 1])]),
            node("AscendDequant", "dequant_c", &["acc_c", "deq_c"], &["y_a"], vec![attr_i("dtype", 0)]),
            conv3("conv_b", "acc_b"),
            node("AscendDequant", "dequant_b", &["acc_b", "deq"], &["y_b"], vec![attr_i("dtype", 0), attr_i("relu_flag", 1)]),
        ],
        vec![
            tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], TensorData::I8(w)),
            tensor("b", &[C_OUT as i64], TensorData::I32(bias)),
            tensor("deq", &[C_OUT as i64], TensorData::U64(deq)),
            tensor("k", &[1, C_OUT as i64, 1, 1], TensorData::F32(per_channel)),
            tensor("w_c", &[C_OUT as i64, C_OUT as i64, 1, 1], TensorData::I8(w_c)),
            tensor("deq_c", &[C_OUT as i64], TensorData::U64(deq_c)),
        ],
        vec![value_info("x", DataType::Float, &[1, C_IN as i64, HW as i64, HW as i64])],
        vec![
            value_info("y_a", DataType::Float, &[1, C_OUT as i64, HW as i64, HW as i64]),
            value_info("y_b", DataType::Float, &[1, C_OUT as i64, HW as i64, HW as i64]),
        ],
        13,
    );
    let session = Session::new(&m, &HashMap::new()).unwrap();
    // conv_a … quant_c → one step, conv_c + dequant_c → one; conv_b and dequant_b stay two.
    assert_eq!((session.step_count(), session.fused_step_count()), (10, 5));
    let bytes: Vec<u8> = input().iter().flat_map(|v| v.to_le_bytes()).collect();
    let x = Tensor::from_le_bytes(DataType::Float, &[1, C_IN, HW, HW], &bytes, "x").unwrap();
    let fused = session.run(HashMap::from([("x".to_string(), x.clone())])).unwrap();
    let plain = session.run_unfused(HashMap::from([("x".to_string(), x.clone())])).unwrap();
    let bits = |t: &Tensor| t.as_f32().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for ((name, a), (_, b)) in fused.iter().zip(&plain) {
        assert_eq!(bits(a), bits(b), "{name}");
    }
    // The quantized tail saw both clipped sides: zeros from the ReLU and values past the
    // int8 range (the ReLU'd tail as the unfused plan computes it).
    let mut r_a = Vec::new();
    let observe: HashSet<String> = ["r_a".to_string()].into();
    session.run_observed(HashMap::from([("x".to_string(), x)]), &observe, &mut |_, t| r_a = t.to_f64_vec()).unwrap();
    assert!(r_a.contains(&0.0) && r_a.iter().any(|&v| v > 0.002 * 255.0) && r_a.iter().any(|&v| v > 0.0 && v < 1.0), "{r_a:?}");
}

//! Depthwise input equalization is an exact float rewrite: the model computes the same outputs
//! while the equalized tensor's channels span similar ranges.

mod common;

use std::collections::{HashMap, HashSet};

use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::proto::ModelProto;
use ascend_ptq::onnx::{DataType, TensorData, load_model};
use ascend_ptq::quant::equalize::{apply, find_candidates, gains, merge_abs_max};
use common::graph::*;
use ndarray::{ArrayD, IxDyn};

fn run(model: &ModelProto, x: &Tensor, observe: &str) -> (Vec<f32>, HashMap<String, Vec<f32>>) {
    let shapes = HashMap::from([("x".to_string(), x.shape().iter().map(|&d| d as i64).collect())]);
    let session = Session::new(model, &shapes).expect("session");
    let mut abs_max = HashMap::new();
    let out = session
        .run_observed(HashMap::from([("x".to_string(), x.clone())]), &HashSet::from([observe.to_string()]), &mut |name, t| {
            let a = t.as_f32().expect("f32");
            merge_abs_max(&mut abs_max, name, a.shape(), &a.iter().copied().collect::<Vec<_>>());
        })
        .expect("run");
    (out[0].1.as_f32().unwrap().iter().copied().collect(), abs_max)
}

/// x → Conv(3→4, channels scaled 1, 0.01, 5, 0.2) → Mul(α) → Add(β per channel) → t →
/// depthwise Conv → y; `extra_reader` adds a Relu reading t (which must block the rewrite).
fn model(extra_reader: bool) -> ModelProto {
    let gain = [1.0f32, 0.01, 5.0, 0.2];
    let w0: Vec<f32> = (0..4 * 3 * 9).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0 * gain[i / 27]).collect();
    let w1: Vec<f32> = (0..4 * 9).map(|i| ((i * 11 % 13) as f32 - 6.0) / 6.0).collect();
    let mut nodes = vec![
        node("Conv", "c0", &["x", "w0", "b0"], &["y0"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
        node("Mul", "m", &["alpha", "y0"], &["y1"], vec![]),
        node("Add", "a", &["y1", "beta"], &["t"], vec![]),
        node("Conv", "dw", &["t", "w1"], &["y"], vec![attr_i("group", 4), attr_ints("pads", &[1, 1, 1, 1])]),
    ];
    let mut outputs = vec![value_info("y", DataType::Float, &[1, 4, 8, 8])];
    if extra_reader {
        nodes.push(node("Relu", "r", &["t"], &["z"], vec![]));
        outputs.push(value_info("z", DataType::Float, &[1, 4, 8, 8]));
    }
    model_of(nodes, w0, w1, outputs)
}

fn model_of(
    nodes: Vec<ascend_ptq::onnx::NodeProto>,
    w0: Vec<f32>,
    w1: Vec<f32>,
    outputs: Vec<ascend_ptq::onnx::ValueInfoProto>,
) -> ModelProto {
    common::graph::model(
        nodes,
        vec![
            tensor("w0", &[4, 3, 3, 3], TensorData::F32(w0)),
            tensor("b0", &[4], TensorData::F32(vec![0.1, -0.002, 2.0, 0.05])),
            tensor("alpha", &[], TensorData::F32(vec![0.7])),
            tensor("beta", &[1, 4, 1, 1], TensorData::F32(vec![0.01, 0.001, -1.0, 0.02])),
            tensor("w1", &[4, 1, 3, 3], TensorData::F32(w1)),
        ],
        vec![value_info("x", DataType::Float, &[1, 3, 8, 8])],
        outputs,
        13,
    )
}

fn input() -> Tensor {
    let v: Vec<f32> = (0..3 * 64).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 3, 8, 8]), v).unwrap())
}

#[test]
fn equalization_keeps_outputs_and_evens_out_channel_ranges() {
    let mut m = model(false);
    let x = input();
    let (before, ranges) = run(&m, &x, "t");
    let graph = m.graph.as_mut().unwrap();
    let candidates = find_candidates(graph);
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert_eq!(candidates[0].tensor, "t");
    let k = gains(&ranges["t"]);
    let spread = |r: &[f32]| r.iter().copied().fold(0.0f32, f32::max) / r.iter().copied().fold(f32::INFINITY, f32::min);
    assert!(spread(&ranges["t"]) > 100.0, "test model must have unbalanced channels: {:?}", ranges["t"]);
    apply(graph, &candidates[0], &k).unwrap();
    let (after, ranges_after) = run(&m, &x, "t");
    let max_ref = before.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let max_diff = before.iter().zip(&after).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(max_diff <= 1e-5 * max_ref, "outputs changed by {max_diff} (max {max_ref})");
    // Every channel now spans the largest channel's range, except the one whose gain was capped.
    let r = ranges["t"].iter().copied().fold(0.0f32, f32::max);
    for (c, (&b, &a)) in ranges["t"].iter().zip(&ranges_after["t"]).enumerate() {
        let expect = (b * ascend_ptq::quant::equalize::MAX_GAIN).min(r);
        assert!((a - expect).abs() <= 1e-4 * r, "channel {c}: range {b} -> {a}, expected {expect} (gains {k:?})");
    }
    assert!(spread(&ranges_after["t"]) < spread(&ranges["t"]) / 50.0);
}

#[test]
fn a_tensor_with_a_non_conv_reader_is_left_alone() {
    let m = model(true);
    assert!(find_candidates(m.graph.as_ref().unwrap()).is_empty());
}

#[test]
fn equalizing_pp_ocr_det_keeps_its_float_output() {
    let Some(path) = common::asset(common::DET) else { return };
    let mut m = load_model(&path).unwrap();
    // A deterministic smooth "image" at a small size keeps the debug-build test quick.
    let v: Vec<f32> = (0..3 * 160 * 160).map(|i| (((i % 160) as f32 / 25.0).sin() + ((i / 160) as f32 / 40.0).cos()) * 0.8).collect();
    let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 3, 160, 160]), v).unwrap());
    let graph = m.graph.as_ref().unwrap();
    let candidates = find_candidates(graph);
    assert!(candidates.len() >= 8, "det has depthwise convs after Conv / affine producers: {}", candidates.len());
    let shapes = HashMap::from([("x".to_string(), vec![1, 3, 160, 160])]);
    let observe: HashSet<String> = candidates.iter().map(|c| c.tensor.clone()).collect();
    let session = Session::new(&m, &shapes).unwrap();
    let mut abs_max = HashMap::new();
    let before = session
        .run_observed(HashMap::from([("x".to_string(), x.clone())]), &observe, &mut |name, t| {
            let a = t.as_f32().unwrap();
            merge_abs_max(&mut abs_max, name, a.shape(), &a.iter().copied().collect::<Vec<_>>());
        })
        .unwrap();
    let graph = m.graph.as_mut().unwrap();
    for c in &candidates {
        apply(graph, c, &gains(&abs_max[&c.tensor])).unwrap();
    }
    let after = Session::new(&m, &shapes).unwrap().run(HashMap::from([("x".to_string(), x)])).unwrap();
    let (a, b) = (before[0].1.to_f64_vec(), after[0].1.to_f64_vec());
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let cos = dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt());
    let max_diff = a.iter().zip(&b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(cos > 0.999999 && max_diff < 1e-3, "cosine {cos}, max diff {max_diff}");
    eprintln!("{} tensors equalized; det output cosine {cos:.9}, max diff {max_diff:.2e}", candidates.len());
}

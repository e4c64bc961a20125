//! The quantization core against independent references: IFMR and HFMG against the numpy
//! implementations in tests/oracle/{ifmr,hfmg}_ref.py (written from docs/ascend-formats.md §4), the streaming
//! IFMR against the direct one, and the deploy parameter packing against the engine's own
//! AscendQuant / AscendDequant kernels.

mod common;

use std::collections::HashMap;
use std::path::Path;

use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, TensorData};
use ascend_ptq::quant::hfmg::{HfmgObserver, HfmgParams};
use ascend_ptq::quant::ifmr::{IfmrObserver, IfmrParams, IfmrResult, ifmr_direct};
use ascend_ptq::quant::scale::{ActQuant, dequant_params};
use common::graph::{attr_f, attr_s, model, node, tensor, value_info};
use serde_json::{Value, json};

/// splitmix64 + Box–Muller: deterministic synthetic activations.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

fn distributions() -> Vec<(&'static str, Vec<f32>)> {
    let mut r = Rng(2024);
    let n = 200_000;
    vec![
        ("gaussian", (0..n).map(|_| r.gaussian() * 1.5 - 0.2).collect()),
        ("relu", (0..n).map(|_| (r.gaussian() * 3.0).max(0.0)).collect()),
        ("heavy_tail", (0..n).map(|_| r.gaussian() / (r.uniform() as f32).max(1e-4)).collect()),
        ("skewed_negative", (0..n).map(|_| -(r.gaussian().abs() * 4.0) + 0.1).collect()),
        ("constant", vec![2.5; 10_000]),
        ("all_zero", vec![0.0; 10_000]),
    ]
}

fn write_f32(path: &Path, data: &[f32]) {
    std::fs::write(path, data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn run_reference(py: &Path, script: &str, dir: &Path, cases: &Value) -> Vec<Value> {
    let cases_path = dir.join(format!("{script}.cases.json"));
    std::fs::write(&cases_path, cases.to_string()).unwrap();
    let (code, stdout, stderr) = common::run_oracle(py, script, &[cases_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{script}: {stderr}");
    serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone()
}

fn assert_rel(what: &str, got: f64, want: f64, tol: f64) {
    let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(rel <= tol, "{what}: got {got}, reference {want} (relative error {rel:e})");
}

/// Streams `data` through an observer in batches of `split` elements, twice.
fn ifmr_streamed(data: &[f32], params: IfmrParams, split: usize) -> IfmrResult {
    let mut obs = IfmrObserver::new("t", params, data.len()).unwrap();
    for chunk in data.chunks(split) {
        obs.observe(chunk).unwrap();
    }
    obs.finish_pass1().unwrap();
    for chunk in data.chunks(split) {
        obs.observe(chunk).unwrap();
    }
    obs.result().unwrap()
}

#[test]
fn ifmr_matches_numpy_reference_and_streaming_matches_direct() {
    let Some(py) = common::oracle_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        IfmrParams::default(),
        IfmrParams { asymmetric: false, ..Default::default() },
        IfmrParams { max_percentile: 0.9999, min_percentile: 0.999, ..Default::default() },
        IfmrParams {
            asymmetric: false,
            max_percentile: 0.9995,
            search_start: 0.5,
            search_end: 1.5,
            search_step: 0.02,
            ..Default::default()
        },
    ];
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (name, data) in distributions() {
        let path = dir.path().join(format!("{name}.bin"));
        write_f32(&path, &data);
        for params in settings {
            let direct = ifmr_direct(name, &data, &params).unwrap();
            // Batches of a 640×640 feature map's worth and an odd split that straddles lanes.
            for split in [data.len(), 4099, 65_536] {
                // Per element: bit-identical. By bins (the default): the same choice, the loss
                // up to the order of the f64 additions.
                assert_eq!(ifmr_streamed(&data, IfmrParams { exact: true, ..params }, split), direct, "{name} {params:?} split {split}");
                let s = ifmr_streamed(&data, params, split);
                assert_eq!(
                    (s.quant, s.clip_min, s.clip_max, s.candidate),
                    (direct.quant, direct.clip_min, direct.clip_max, direct.candidate),
                    "{name} {params:?} split {split}"
                );
                assert!((s.mse - direct.mse).abs() <= 1e-9 * direct.mse, "{name} {params:?} split {split}: {} vs {}", s.mse, direct.mse);
            }
            cases.push(json!({
                "data": path, "asymmetric": params.asymmetric,
                "max_percentile": params.max_percentile, "min_percentile": params.min_percentile,
                "search_start": params.search_start, "search_end": params.search_end, "search_step": params.search_step,
            }));
            ours.push((name, params, direct));
        }
    }
    let reference = run_reference(&py, "ifmr_ref.py", dir.path(), &Value::Array(cases));
    for ((name, params, got), want) in ours.iter().zip(&reference) {
        let what = format!("{name} asym={} p={}", params.asymmetric, params.max_percentile);
        eprintln!("{what}: scale {:e} offset {} candidate {} | reference {want}", got.quant.scale, got.quant.offset, got.candidate);
        assert_eq!(got.candidate as u64, want["candidate"].as_u64().unwrap(), "{what}: chosen candidate");
        assert_rel(&format!("{what} scale"), got.quant.scale as f64, want["scale"].as_f64().unwrap(), 1e-6);
        assert_eq!(got.quant.offset as i64, want["offset"].as_i64().unwrap(), "{what}: offset");
        let want_mse = want["mse"].as_f64().unwrap();
        assert!((got.mse - want_mse).abs() <= 1e-9 * want_mse, "{what}: mse {} vs reference {want_mse}", got.mse);
    }
}

#[test]
fn hfmg_matches_numpy_reference_across_batches() {
    let Some(py) = common::oracle_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (name, data) in distributions() {
        let path = dir.path().join(format!("{name}.bin"));
        write_f32(&path, &data);
        let n = data.len();
        // One batch; equal batches; growing batches (the range widens and old bins re-bin).
        for batches in [vec![n], vec![n / 4; 4], vec![n / 10, n / 5, n - n / 10 - n / 5]] {
            for (bins, asymmetric) in [(4096, true), (1024, false)] {
                let mut obs = HfmgObserver::new(name, HfmgParams { num_of_bins: bins, asymmetric }).unwrap();
                let mut pos = 0;
                for &len in &batches {
                    obs.observe(&data[pos..pos + len]).unwrap();
                    pos += len;
                }
                cases.push(json!({"data": path, "batches": batches, "num_of_bins": bins, "asymmetric": asymmetric}));
                ours.push((format!("{name} batches {} bins {bins} asym {asymmetric}", batches.len()), obs.result().unwrap()));
            }
        }
    }
    let reference = run_reference(&py, "hfmg_ref.py", dir.path(), &Value::Array(cases));
    for ((what, got), want) in ours.iter().zip(&reference) {
        eprintln!("{what}: {got:?} | reference {want}");
        assert_eq!(got.window.0 as u64, want["left"].as_u64().unwrap(), "{what}: window left");
        assert_eq!(got.window.1 as u64, want["right"].as_u64().unwrap(), "{what}: window right");
        assert_rel(&format!("{what} scale"), got.quant.scale as f64, want["scale"].as_f64().unwrap(), 1e-6);
        assert_eq!(got.quant.offset as i64, want["offset"].as_i64().unwrap(), "{what}: offset");
    }
}

/// Runs a one-node model through the engine.
fn run_one(op: ascend_ptq::onnx::NodeProto, inits: Vec<ascend_ptq::onnx::TensorProto>, input: (&str, Tensor, DataType)) -> Tensor {
    let (name, x, dtype) = input;
    let shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    let out_type = if op.op_type() == "AscendQuant" { DataType::Int8 } else { DataType::Float };
    let m = model(vec![op], inits, vec![value_info(name, dtype, &shape)], vec![value_info("y", out_type, &shape)], 13);
    let session = Session::new(&m, &HashMap::new()).unwrap();
    session.run(HashMap::from([(name.to_string(), x)])).unwrap().remove(0).1
}

#[test]
fn deploy_params_match_the_engine_kernels() {
    // AscendQuant with scale = 1/scale_d, offset = offset_d quantizes like ActQuant::quantize.
    let q = ActQuant::from_clip_range(-0.83, 2.9, true);
    let xs: Vec<f32> = (-400..400).map(|i| i as f32 * 0.0123).collect();
    let quant = node(
        "AscendQuant",
        "L.quant",
        &["x"],
        &["y"],
        vec![attr_f("scale", q.quant_attr_scale()), attr_f("offset", q.quant_attr_offset()), attr_s("dst_type", "INT8")],
    );
    let x = Tensor::F32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, xs.len()]), xs.clone()).unwrap());
    let got = run_one(quant, vec![], ("x", x, DataType::Float)).to_i64_vec().unwrap();
    let want: Vec<i64> = xs.iter().map(|&v| q.quantize(v) as i64).collect();
    assert_eq!(got, want);

    // AscendDequant with our packed UINT64 parameter: y = acc · scale_w[c] · scale_d.
    let (scale_d, scale_w) = (0.0173f32, [0.002f32, 0.0005, 0.031]);
    let packed = dequant_params(scale_d, &scale_w);
    let acc: Vec<i32> = (0..3 * 4).map(|i| (i - 6) * 1000 + 7).collect();
    let x = Tensor::I32(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 3, 2, 2]), acc.clone()).unwrap());
    let deq = node("AscendDequant", "L.dequant", &["acc", "L.dequant.param"], &["y"], vec![]);
    let param = tensor("L.dequant.param", &[3], TensorData::U64(packed));
    let got = run_one(deq, vec![param], ("acc", x, DataType::Int32)).to_f64_vec();
    for (i, (&a, g)) in acc.iter().zip(&got).enumerate() {
        let want = a as f32 * (scale_w[i / 4] * scale_d);
        assert_eq!(*g as f32, want, "element {i}");
    }
}

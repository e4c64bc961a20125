//! Detection agreement with the reference detections as ground truth: precision / recall /
//! F1 at IoU 0.5 (one-to-one, same class), per class and overall, and COCO's AP (pycocotools'
//! matching in descending candidate score, 101-point interpolated precision) at IoU 0.5 and
//! averaged over 0.50:0.05:0.95, over the classes present in the reference.

use serde::Serialize;

use crate::tasks::geometry::{box_iou, greedy_match, prf};
use crate::tasks::{Detection, TaskMetrics};

/// One class's share of [`agreement`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassAgreement {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// `None` when the reference has no box of the class (COCO skips such classes).
    pub ap50: Option<f64>,
    pub count_candidate: usize,
    pub count_reference: usize,
}

pub fn agreement(candidate: &[Detection], reference: &[Detection]) -> TaskMetrics {
    let mut classes: Vec<usize> = candidate.iter().chain(reference).map(|d| d.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut per_class = Vec::new();
    let (mut matched, mut aps50, mut aps) = (0usize, Vec::new(), Vec::new());
    for &class in &classes {
        let c: Vec<&Detection> = candidate.iter().filter(|d| d.class == class).collect();
        let r: Vec<&Detection> = reference.iter().filter(|d| d.class == class).collect();
        let m = greedy_match(c.len(), r.len(), 0.5, |i, j| box_iou(&c[i].bbox, &r[j].bbox)).len();
        matched += m;
        let (precision, recall, f1) = prf(m, c.len(), r.len());
        let ap50 = (!r.is_empty()).then(|| average_precision(&c, &r, 0.5));
        if let Some(a) = ap50 {
            aps50.push(a);
            aps.push((0..10).map(|k| average_precision(&c, &r, 0.5 + 0.05 * k as f64)).sum::<f64>() / 10.0);
        }
        per_class.push(ClassAgreement { class, precision, recall, f1, ap50, count_candidate: c.len(), count_reference: r.len() });
    }
    let (precision, recall, f1) = prf(matched, candidate.len(), reference.len());
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    TaskMetrics {
        precision: Some(precision),
        recall: Some(recall),
        f1: Some(f1),
        map50: mean(&aps50),
        map50_95: mean(&aps),
        count_candidate: Some(candidate.len()),
        count_reference: Some(reference.len()),
        per_class: Some(per_class),
        ..TaskMetrics::default()
    }
}

/// COCO AP of one class at one IoU threshold: candidates in descending score (stable), each
/// matched to the unmatched reference with the highest IoU ≥ `t`; precision made monotone
/// from the right and read at recall 0, 0.01, …, 1 (0 beyond the last recall reached).
pub fn average_precision(cand: &[&Detection], refs: &[&Detection], t: f64) -> f64 {
    let mut order: Vec<usize> = (0..cand.len()).collect();
    order.sort_by(|&a, &b| cand[b].score.total_cmp(&cand[a].score));
    let mut used = vec![false; refs.len()];
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut recall, mut precision) = (Vec::new(), Vec::new());
    for &i in &order {
        let mut best: Option<(usize, f64)> = None;
        for (j, r) in refs.iter().enumerate() {
            let v = box_iou(&cand[i].bbox, &r.bbox);
            // pycocotools: a later reference with an equal IoU replaces the earlier one
            if !used[j] && v >= t.min(1.0 - 1e-10) && best.is_none_or(|(_, b)| v >= b) {
                best = Some((j, v));
            }
        }
        match best {
            Some((j, _)) => {
                used[j] = true;
                tp += 1;
            }
            None => fp += 1,
        }
        recall.push(tp as f64 / refs.len() as f64);
        precision.push(tp as f64 / (tp + fp) as f64);
    }
    for k in (1..precision.len()).rev() {
        precision[k - 1] = precision[k - 1].max(precision[k]);
    }
    let mut sum = 0.0;
    for r in 0..=100 {
        let r = r as f64 / 100.0;
        // first index whose recall reaches r (numpy searchsorted, side="left")
        if let Some(k) = recall.iter().position(|&v| v >= r) {
            sum += precision[k];
        }
    }
    sum / 101.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, x: f32) -> Detection {
        Detection { class, score, bbox: [x, 0.0, x + 10.0, 10.0] }
    }

    #[test]
    fn ap_of_hand_computed_cases() {
        let refs = [det(0, 1.0, 0.0), det(0, 1.0, 100.0)];
        let r: Vec<&Detection> = refs.iter().collect();
        // perfect
        let c = [det(0, 0.9, 0.0), det(0, 0.8, 100.0)];
        assert!((average_precision(&c.iter().collect::<Vec<_>>(), &r, 0.5) - 1.0).abs() < 1e-12);
        // TP, FP, TP: precision 1, 1/2, 2/3 → monotone 1, 2/3, 2/3; recall 0.5, 0.5, 1
        // recall points 0..=0.5 (51) read 1, 0.51..=1 (50) read 2/3
        let c = [det(0, 0.9, 0.0), det(0, 0.8, 50.0), det(0, 0.7, 100.0)];
        let want = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert!((average_precision(&c.iter().collect::<Vec<_>>(), &r, 0.5) - want).abs() < 1e-12);
        // only one found: recall 0.5 reached → 51 points of precision 1
        let c = [det(0, 0.9, 0.0)];
        assert!((average_precision(&c.iter().collect::<Vec<_>>(), &r, 0.5) - 51.0 / 101.0).abs() < 1e-12);
        // a box shifted by 2 (IoU 2/3) counts at 0.5 … 0.65, not from 0.7 on, where the
        // ranking is FP, TP: precision 0, 1/2 → monotone 1/2, 1/2 up to recall 0.5
        let c = [det(0, 0.9, 2.0), det(0, 0.8, 100.0)];
        let cr: Vec<&Detection> = c.iter().collect();
        assert!((average_precision(&cr, &r, 0.65) - 1.0).abs() < 1e-12);
        assert!((average_precision(&cr, &r, 0.7) - 25.5 / 101.0).abs() < 1e-12);
    }

    #[test]
    fn class_must_match() {
        let m = agreement(&[det(1, 0.9, 0.0), det(0, 0.8, 100.0)], &[det(0, 1.0, 0.0), det(0, 1.0, 100.0)]);
        assert_eq!((m.precision, m.recall), (Some(0.5), Some(0.5)));
        let pc = m.per_class.unwrap();
        assert_eq!(pc.len(), 2);
        assert_eq!(pc[1].ap50, None); // class 1 is not in the reference
        assert!((m.map50.unwrap() - 51.0 / 101.0).abs() < 1e-12);
    }
}

//! Classification (PP-OCR's text-direction classifier, ImageNet-style heads): the score row
//! of every batch item, and top-1 / top-5 agreement.

use super::{TaskError, TaskMetrics};

/// The rows of `[N, C]` (or `[N, C, 1, 1]`) as given: softmax does not change their ranking,
/// so probabilities and logits compare alike.
pub fn decode(output: &[f32], dims: &[usize]) -> Result<Vec<Vec<f32>>, TaskError> {
    let (n, c) = match *dims {
        [n, c] | [n, c, 1, 1] if c >= 1 => (n, c),
        _ => return Err(TaskError::dims("cls", "[N, C] or [N, C, 1, 1] with C >= 1", dims)),
    };
    super::check_len("cls", output, dims)?;
    Ok((0..n).map(|i| output[i * c..(i + 1) * c].to_vec()).collect())
}

/// Class indices by descending score (ties: lower index first), the first `k`.
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Over batch items: the share whose top-1 classes agree, and the mean of
/// |top-k(candidate) ∩ top-k(reference)| / k with k = min(5, C) (PP-OCR cls has C = 2).
pub fn agreement(candidate: &[Vec<f32>], reference: &[Vec<f32>]) -> Result<TaskMetrics, TaskError> {
    if candidate.len() != reference.len() {
        return Err(TaskError::Batch { what: "cls", candidate: candidate.len(), reference: reference.len() });
    }
    let (mut top1, mut top5) = (0f64, 0f64);
    for (c, r) in candidate.iter().zip(reference) {
        if c.len() != r.len() {
            return Err(TaskError::Batch { what: "cls classes", candidate: c.len(), reference: r.len() });
        }
        let k = c.len().min(5);
        let (tc, tr) = (top_k(c, k), top_k(r, k));
        top1 += f64::from(u8::from(tc[0] == tr[0]));
        top5 += tc.iter().filter(|i| tr.contains(i)).count() as f64 / k as f64;
    }
    let n = candidate.len().max(1) as f64;
    Ok(TaskMetrics {
        top1: Some(top1 / n),
        top5_overlap: Some(top5 / n),
        count_candidate: Some(candidate.len()),
        count_reference: Some(reference.len()),
        ..TaskMetrics::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_and_top5_overlap() {
        let a = decode(&[0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0], &[2, 6]).unwrap();
        // item 0: same top-1; item 1: top-1 differs, top-5 share 4 of 5
        let b = vec![vec![0.0, 1.0, 0.5, 0.4, 0.3, 0.2], vec![0.0, 0.4, 0.5, 0.3, 0.2, 0.9]];
        let m = agreement(&a, &b).unwrap();
        assert_eq!(m.top1, Some(0.5));
        // item 0 top5 {1,0,2,3,4} vs {1,2,3,4,5} → 4/5; item 1 {0,1,2,3,4} vs {5,2,1,3,4} → 4/5
        assert!((m.top5_overlap.unwrap() - 0.8).abs() < 1e-12, "{m:?}");
        assert_eq!(top_k(&[1.0, 3.0, 3.0], 2), vec![1, 2]);
        assert!(decode(&[0.0; 4], &[1, 2, 2]).is_err());
        assert!(agreement(&a, &b[..1]).is_err());
    }
}

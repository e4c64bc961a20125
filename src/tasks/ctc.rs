//! CTC greedy decoding of PP-OCR recognition output `[N, T, C]` (PaddleOCR's `CTCLabelDecode`:
//! argmax per time step, repeats collapsed, blank 0 dropped) and sequence agreement.

use super::{TaskError, TaskMetrics};

/// One index sequence per batch item (indices into the model's character list + 1).
pub fn decode(output: &[f32], dims: &[usize]) -> Result<Vec<Vec<usize>>, TaskError> {
    let [n, t, c] = *dims else { return Err(TaskError::dims("ctc", "[N, T, C]", dims)) };
    if c == 0 {
        return Err(TaskError::dims("ctc", "[N, T, C] with C >= 1", dims));
    }
    super::check_len("ctc", output, dims)?;
    Ok((0..n)
        .map(|i| {
            let mut seq = Vec::new();
            let mut prev = usize::MAX;
            for s in 0..t {
                let row = &output[(i * t + s) * c..(i * t + s + 1) * c];
                // first maximum, as numpy's argmax
                let k = row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
                if k != prev && k != 0 {
                    seq.push(k);
                }
                prev = k;
            }
            seq
        })
        .collect())
}

/// Levenshtein distance (insert, delete, substitute: 1 each).
pub fn levenshtein(a: &[usize], b: &[usize]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let next = (diag + usize::from(x != y)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Over batch items: the share of identical sequences, and the mean character accuracy
/// 1 − Levenshtein(candidate, reference) / max(1, len(reference)) (may go below 0 when the
/// candidate is much longer, as the usual OCR definition does).
pub fn agreement(candidate: &[Vec<usize>], reference: &[Vec<usize>]) -> Result<TaskMetrics, TaskError> {
    if candidate.len() != reference.len() {
        return Err(TaskError::Batch { what: "ctc", candidate: candidate.len(), reference: reference.len() });
    }
    let n = candidate.len().max(1) as f64;
    let exact = candidate.iter().zip(reference).filter(|(c, r)| c == r).count() as f64 / n;
    let acc: f64 = candidate.iter().zip(reference).map(|(c, r)| 1.0 - levenshtein(c, r) as f64 / r.len().max(1) as f64).sum::<f64>() / n;
    Ok(TaskMetrics {
        exact: Some(exact),
        char_accuracy: Some(acc),
        count_candidate: Some(candidate.len()),
        count_reference: Some(reference.len()),
        ..TaskMetrics::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_ctc_collapses_repeats_and_drops_blanks() {
        // steps argmax: 1 1 0 1 2 2 0 0 3
        let steps = [1, 1, 0, 1, 2, 2, 0, 0, 3];
        let out: Vec<f32> = steps.iter().flat_map(|&k| (0..4).map(move |j| if j == k { 0.9 } else { 0.1 / 3.0 })).collect();
        assert_eq!(decode(&out, &[1, 9, 4]).unwrap(), vec![vec![1, 1, 2, 3]]);
        assert!(decode(&out, &[9, 4]).is_err());
    }

    #[test]
    fn levenshtein_and_char_accuracy() {
        assert_eq!(levenshtein(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(levenshtein(&[], &[4, 5]), 2);
        assert_eq!(levenshtein(&[1, 2, 3, 4], &[2, 1, 3, 5]), 3);
        let m = agreement(&[vec![1, 2, 3], vec![7]], &[vec![1, 2, 4, 3], vec![7]]).unwrap();
        assert_eq!(m.exact, Some(0.5));
        assert!((m.char_accuracy.unwrap() - (0.75 + 1.0) / 2.0).abs() < 1e-12);
    }
}

//! The ten comparison metrics of Ascend's operator comparison tool (msaccucmp), with its
//! definitions (docs/ascend-formats.md §13). `x` is "my output" (NPU / candidate),
//! `y` the golden one. Everything is computed in f64.
//!
//! NaN follows numpy, as msaccucmp computes with it: a NaN (or an infinity that makes one) in
//! the data makes the maxima, sums, the cosine and the KL divergence NaN instead of being
//! skipped; `f64::max`/`f64::min` would silently drop it and let a broken output pass.

use serde::Serialize;

const EPS: f64 = f64::EPSILON;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub cosine_similarity: f64,
    pub max_absolute_error: f64,
    pub accumulated_relative_error: f64,
    pub relative_euclidean_distance: f64,
    pub kullback_leibler_divergence: f64,
    /// (mean, standard deviation) of x and of y.
    pub standard_deviation: [(f64, f64); 2],
    pub mean_absolute_error: f64,
    pub root_mean_square_error: f64,
    pub max_relative_error: f64,
    pub mean_relative_error: f64,
}

impl Metrics {
    /// All ten metrics. `x` and `y` must have the same length.
    pub fn compute(x: &[f64], y: &[f64]) -> Metrics {
        assert_eq!(x.len(), y.len(), "compared tensors must have the same number of elements");
        let n = x.len().max(1) as f64;
        let mut max_abs = 0f64;
        let mut sum_abs = 0f64;
        let mut sum_sq = 0f64;
        let mut acc_rel = 0f64;
        let mut max_rel = 0f64;
        for (&a, &b) in x.iter().zip(y) {
            let d = (a - b).abs();
            max_abs = nan_max(max_abs, d);
            sum_abs += d;
            sum_sq += d * d;
            // np.where(|y| > eps, |x/y - 1|, 0): a NaN y fails the test and contributes 0.
            if b.abs() > EPS {
                let r = (a / b - 1.0).abs();
                acc_rel += r;
                max_rel = nan_max(max_rel, r);
            }
        }
        let norm_y_sq: f64 = y.iter().map(|v| v * v).sum();
        Metrics {
            cosine_similarity: cosine_similarity(x, y),
            max_absolute_error: max_abs,
            accumulated_relative_error: acc_rel,
            relative_euclidean_distance: if norm_y_sq.sqrt() <= EPS { 0.0 } else { (sum_sq / norm_y_sq).sqrt() },
            kullback_leibler_divergence: kl_divergence(x, y),
            standard_deviation: [mean_std(x), mean_std(y)],
            mean_absolute_error: sum_abs / n,
            root_mean_square_error: (sum_sq / n).sqrt(),
            max_relative_error: max_rel,
            mean_relative_error: acc_rel / n,
        }
    }
}

/// The larger of two values, NaN if either is NaN (numpy's `max`).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Σ (x/‖x‖)(y/‖y‖), capped at 1. msaccucmp's branches: ‖x‖ ≤ ε and ‖y‖ < ε → 1; then a side
/// with √‖·‖ ≤ ε (all zero) → NaN; a single element → 1. NaN in the data gives NaN (the cap
/// is Python's `min(result, 1.0)`, which keeps a NaN result).
pub fn cosine_similarity(x: &[f64], y: &[f64]) -> f64 {
    if x.len() == 1 {
        return 1.0;
    }
    let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let ny = y.iter().map(|v| v * v).sum::<f64>().sqrt();
    if nx <= EPS && ny < EPS {
        return 1.0;
    }
    if nx.sqrt() <= EPS || ny.sqrt() <= EPS {
        return f64::NAN;
    }
    let cos = x.iter().zip(y).map(|(a, b)| (a / nx) * (b / ny)).sum::<f64>();
    if cos > 1.0 { 1.0 } else { cos }
}

/// Min-max normalize each side to [0, 1] (a constant tensor is kept as is), floor at f32
/// epsilon, normalize to a distribution; KL(P‖Q) with P from x and Q from y; |KL| < ε → 0.
/// A NaN or infinity on either side makes numpy's min/max and then every element NaN.
pub fn kl_divergence(x: &[f64], y: &[f64]) -> f64 {
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    fn distribution(v: &[f64]) -> Vec<f64> {
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| (l.min(a), h.max(a)));
        let range = hi - lo;
        let floor = f32::EPSILON as f64;
        let p: Vec<f64> = v.iter().map(|&a| if range != 0.0 { ((a - lo) / range).max(floor) } else { a.max(floor) }).collect();
        let s: f64 = p.iter().sum();
        p.into_iter().map(|a| a / s).collect()
    }
    let (p, q) = (distribution(x), distribution(y));
    let kl: f64 = p.iter().zip(&q).map(|(a, b)| a * (a / b).ln()).sum();
    if kl.abs() < EPS { 0.0 } else { kl }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // x = [1, 2, 3], y = [1, 2, 4]: |d| = [0, 0, 1]
        let m = Metrics::compute(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert_eq!(m.max_absolute_error, 1.0);
        assert!((m.mean_absolute_error - 1.0 / 3.0).abs() < 1e-15);
        assert!((m.root_mean_square_error - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // relative: |3/4 - 1| = 0.25 only
        assert_eq!(m.accumulated_relative_error, 0.25);
        assert_eq!(m.max_relative_error, 0.25);
        assert!((m.mean_relative_error - 0.25 / 3.0).abs() < 1e-15);
        // RED = sqrt(1 / 21)
        assert!((m.relative_euclidean_distance - (1.0f64 / 21.0).sqrt()).abs() < 1e-15);
        // cos = (1 + 4 + 12) / (sqrt(14) sqrt(21))
        assert!((m.cosine_similarity - 17.0 / (14.0f64.sqrt() * 21.0f64.sqrt())).abs() < 1e-15);
        assert_eq!(m.standard_deviation[0].0, 2.0);
    }

    #[test]
    fn degenerate_cases() {
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[0.0, 0.0]), 1.0);
        assert!(cosine_similarity(&[0.0, 0.0], &[1.0, 0.0]).is_nan());
        assert_eq!(cosine_similarity(&[5.0], &[-1.0]), 1.0);
        assert_eq!(kl_divergence(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        // y = 0 everywhere: relative errors are skipped, RED is 0 by definition
        let m = Metrics::compute(&[1.0, 2.0], &[0.0, 0.0]);
        assert_eq!((m.max_relative_error, m.relative_euclidean_distance), (0.0, 0.0));
    }

    #[test]
    fn nan_in_the_output_is_never_hidden() {
        // A NaN anywhere in x must not leave cosine = 1 or a finite max error behind.
        let m = Metrics::compute(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0]);
        assert!(m.cosine_similarity.is_nan());
        assert!(m.max_absolute_error.is_nan() && m.max_relative_error.is_nan());
        assert!(m.kullback_leibler_divergence.is_nan() && m.mean_absolute_error.is_nan());
        // A NaN golden value: max |x-y| is NaN; the relative terms skip it (np.where(|y| > eps)).
        let m = Metrics::compute(&[1.0, 2.0, 3.0], &[1.0, f64::NAN, 2.0]);
        assert!(m.max_absolute_error.is_nan());
        assert_eq!(m.max_relative_error, 0.5);
        assert!(cosine_similarity(&[f64::INFINITY, 1.0], &[1.0, 1.0]).is_nan());
        // Constant tensors are uniform distributions: KL 0.
        assert_eq!(kl_divergence(&[-3.0, -3.0], &[7.0, 7.0]), 0.0);
    }
}

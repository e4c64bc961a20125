//! IFMR activation calibration (docs/ascend-formats.md §4.1), exact, in two streaming passes.
//!
//! Algorithm (AMCT's open-source `ifmr_impl.py` as restated in §4.1), on the n collected
//! values of one tensor:
//! 1. `k = 1` if `1 − p < FLT_EPSILON`, else `n − ⌊p·n⌋`; `max_init` = k_max-th largest value,
//!    `min_init` = k_min-th smallest; then `max_init = max(0, ·)`, `min_init = min(0, ·)`.
//! 2. Symmetric (`activation_offset = false`): `max_init = max(|max_init|, |min_init|)`,
//!    remembering whether the negative side dominated (divisor 128 instead of 127).
//! 3. Candidates `clip_max_i = r_i · max_init`, `r_i` = arange(start, end, step);
//!    `scale_i = (clip_max_i − min_init) / 255` (asymmetric) or `clip_max_i / 127|128`,
//!    degenerate scales (< FLT_EPSILON) → 1.
//! 4. `loss_i = mean((round(clamp(x, lo, clip_max_i) / scale_i) · scale_i − x)²)` with
//!    `lo = min_init` (asymmetric) or `−clip_max_i`; the first minimum wins.
//! 5. `offset_d = −round(min_init / scale) − 128` (asymmetric) or 0.
//!
//! Choices where the sources are open (documented here, tested against `tests/oracle/ifmr_ref.py`):
//! - Only clip_max is searched, clip_min stays at its percentile value (the open-source code;
//!   whether closed amct_onnx also searches clip_min is UNCONFIRMED).
//! - Parameters are f32, as in the `.cfg` proto. The ratios are `start + i·step` for
//!   `i < ⌈(end − start) / step⌉`, evaluated in f64 on those f32 values and rounded to f32:
//!   60 candidates 0.70 … 1.29 by default ("end excluded" in §4.1; f64 literals 0.7/1.3/0.01
//!   would give 61). Percentile ranks use the f32 percentile's exact value in f64.
//! - Quantization arithmetic is f32 (clamp, divide, round-half-even, multiply, subtract); the
//!   squared errors are summed in f64 in a fixed order (element index mod [`LANES`]), so the
//!   streaming result is bit-identical to [`ifmr_direct`] however the data is split in batches.
//!
//! Memory: the streaming observer keeps only the k_max largest and k_min smallest values
//! (k ≈ (1 − p)·n: 26 values for 26 M elements at the default p), the candidates and their
//! partial sums: flat in the number of batches. The total element count must be known up
//! front (shapes × batch_num) because k depends on it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rayon::prelude::*;

use super::config::IfmrQuantize;
use super::error::{QuantError, Result};
use super::observe::{ActAlgorithm, ActObserver, ActResult, Pass};
use super::scale::{ActQuant, FLT_EPSILON};

/// Independent partial sums per candidate; element i goes to lane i mod LANES.
pub const LANES: usize = 8;

/// IFMR settings (`ifmr_quantize` of the `.cfg`, §8.2) plus the layer's activation_offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IfmrParams {
    pub max_percentile: f32,
    pub min_percentile: f32,
    pub search_start: f32,
    pub search_end: f32,
    pub search_step: f32,
    /// true: asymmetric activations with an offset (activation_offset, the default).
    pub asymmetric: bool,
}

impl Default for IfmrParams {
    fn default() -> Self {
        IfmrParams {
            max_percentile: 0.999999,
            min_percentile: 0.999999,
            search_start: 0.7,
            search_end: 1.3,
            search_step: 0.01,
            asymmetric: true,
        }
    }
}

impl IfmrParams {
    /// The settings of an `ifmr_quantize` config, with the layer's resolved activation_offset.
    pub fn from_config(c: &IfmrQuantize, asymmetric: bool) -> Self {
        IfmrParams {
            max_percentile: c.max_percentile,
            min_percentile: c.min_percentile,
            search_start: c.search_range_start,
            search_end: c.search_range_end,
            search_step: c.search_step,
            asymmetric,
        }
    }

    /// Range checks: percentiles in (0.5, 1] (the range AMCT's config documentation gives;
    /// not in formats §4.1's sources, so UNCONFIRMED), 0 < start < end, at most 100000 candidates.
    pub fn validate(&self) -> Result<()> {
        for (name, p) in [("max_percentile", self.max_percentile), ("min_percentile", self.min_percentile)] {
            if !(p > 0.5 && p <= 1.0) {
                return Err(QuantError::param(&format!("ifmr_quantize.{name}"), format!("{p} is outside (0.5, 1]")));
            }
        }
        let (s, e, st) = (self.search_start, self.search_end, self.search_step);
        if !(s.is_finite() && e.is_finite() && s > 0.0 && s < e) {
            return Err(QuantError::param("ifmr_quantize.search_range", format!("[{s}, {e}] must satisfy 0 < start < end")));
        }
        if !(st > 0.0 && st.is_finite()) || (e - s) as f64 / st as f64 > 100_000.0 {
            return Err(QuantError::param("ifmr_quantize.search_step", format!("{st} must be > 0 and give at most 100000 candidates")));
        }
        Ok(())
    }

    /// The clip_max ratios r_i (see the module doc).
    pub fn ratios(&self) -> Vec<f32> {
        let (s, e, st) = (self.search_start as f64, self.search_end as f64, self.search_step as f64);
        let count = ((e - s) / st).ceil().max(0.0) as usize;
        (0..count).map(|i| (s + i as f64 * st) as f32).collect()
    }
}

/// The rank k (1-based, from the top) of the percentile value among n elements.
pub fn percentile_rank(percentile: f32, n: usize) -> usize {
    if 1.0 - (percentile as f64) < FLT_EPSILON as f64 { 1 } else { n - (percentile as f64 * n as f64) as usize }
}

/// The calibrated activation parameters of one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IfmrResult {
    pub quant: ActQuant,
    /// The chosen clip range (clip_min is −clip_max when symmetric).
    pub clip_min: f32,
    pub clip_max: f32,
    /// Index of the chosen candidate and its mean squared error.
    pub candidate: usize,
    pub mse: f64,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    lo: f32,
    hi: f32,
    scale: f32,
}

/// The candidate clip ranges built from the percentile values (steps 1–3).
#[derive(Debug, Clone)]
struct Search {
    asymmetric: bool,
    min_init: f32,
    candidates: Vec<Candidate>,
}

impl Search {
    fn new(params: &IfmrParams, kth_largest: f32, kth_smallest: f32) -> Search {
        let (max_init, min_init) = (kth_largest.max(0.0), kth_smallest.min(0.0));
        let (bound, divisor) = if params.asymmetric {
            (max_init, 255.0)
        } else {
            let negative_dominates = max_init.abs() < min_init.abs();
            (max_init.abs().max(min_init.abs()), if negative_dominates { 128.0 } else { 127.0 })
        };
        let candidates = params
            .ratios()
            .into_iter()
            .map(|r| {
                let hi = r * bound;
                let (lo, scale) = if params.asymmetric { (min_init, (hi - min_init) / divisor) } else { (-hi, hi / divisor) };
                Candidate { lo, hi, scale: if scale < FLT_EPSILON { 1.0 } else { scale } }
            })
            .collect();
        Search { asymmetric: params.asymmetric, min_init, candidates }
    }

    /// Adds the squared errors of `data` (elements `start..start+len` of the whole stream).
    fn accumulate(&self, sums: &mut [[f64; LANES]], start: usize, data: &[f32]) {
        let work = |c: &Candidate, acc: &mut [f64; LANES]| accumulate_one(*c, acc, start, data);
        if data.len() >= 1 << 15 {
            self.candidates.par_iter().zip(sums.par_iter_mut()).for_each(|(c, acc)| work(c, acc));
        } else {
            self.candidates.iter().zip(sums.iter_mut()).for_each(|(c, acc)| work(c, acc));
        }
    }

    /// Step 4's argmin (first minimum) and step 5.
    fn finish(&self, sums: &[[f64; LANES]], n: usize) -> IfmrResult {
        let mut best = (0, f64::INFINITY);
        for (i, lanes) in sums.iter().enumerate() {
            let mse = lanes.iter().sum::<f64>() / n as f64;
            if mse < best.1 {
                best = (i, mse);
            }
        }
        let c = self.candidates[best.0];
        let offset = if self.asymmetric { -(self.min_init / c.scale).round_ties_even() as i32 - 128 } else { 0 };
        IfmrResult { quant: ActQuant { scale: c.scale, offset }, clip_min: c.lo, clip_max: c.hi, candidate: best.0, mse: best.1 }
    }
}

/// Round half to even for |v| ≤ 2^22, branch-free so the loop vectorizes without SSE4.1:
/// adding 1.5·2^23 leaves no fraction bits, so the FPU's ties-to-even does the rounding.
#[inline(always)]
fn round_even_small(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// Squared fake-quantization error of one element; |clamped / scale| ≤ 255 here (or < 1 for
/// a degenerate range with scale 1), well inside [`round_even_small`]'s domain.
#[inline(always)]
fn sq_err(c: Candidate, x: f32) -> f64 {
    let clamped = x.max(c.lo).min(c.hi);
    let e = (round_even_small(clamped / c.scale) * c.scale - x) as f64;
    e * e
}

fn accumulate_one(c: Candidate, acc: &mut [f64; LANES], start: usize, data: &[f32]) {
    let head = ((LANES - start % LANES) % LANES).min(data.len());
    for (i, &x) in data[..head].iter().enumerate() {
        acc[(start + i) % LANES] += sq_err(c, x);
    }
    let body = (data.len() - head) / LANES * LANES;
    accumulate_lanes(c, acc, &data[head..head + body]);
    for (j, &x) in data[head + body..].iter().enumerate() {
        acc[j] += sq_err(c, x);
    }
}

/// Whole groups of LANES elements, element j of a group into lane j. The AVX2 path does the
/// same IEEE operations in the same order per lane (no FMA), so both paths give identical bits.
fn accumulate_lanes(c: Candidate, acc: &mut [f64; LANES], data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 support was just checked.
        unsafe { avx2::accumulate_lanes(c, acc, data) };
        return;
    }
    for chunk in data.chunks_exact(LANES) {
        for j in 0..LANES {
            acc[j] += sq_err(c, chunk[j]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Candidate, LANES};

    #[target_feature(enable = "avx2")]
    pub(super) fn accumulate_lanes(c: Candidate, acc: &mut [f64; LANES], data: &[f32]) {
        let (lo, hi, scale, magic) = (_mm256_set1_ps(c.lo), _mm256_set1_ps(c.hi), _mm256_set1_ps(c.scale), _mm256_set1_ps(12_582_912.0));
        // SAFETY: acc has 8 f64 and every chunk 8 f32; unaligned loads and stores.
        let (mut a0, mut a1) = unsafe { (_mm256_loadu_pd(acc.as_ptr()), _mm256_loadu_pd(acc.as_ptr().add(4))) };
        for chunk in data.chunks_exact(LANES) {
            let x = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
            let clamped = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
            let rounded = _mm256_sub_ps(_mm256_add_ps(_mm256_div_ps(clamped, scale), magic), magic);
            let e = _mm256_sub_ps(_mm256_mul_ps(rounded, scale), x);
            let (e0, e1) = (_mm256_cvtps_pd(_mm256_castps256_ps128(e)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(e)));
            a0 = _mm256_add_pd(a0, _mm256_mul_pd(e0, e0));
            a1 = _mm256_add_pd(a1, _mm256_mul_pd(e1, e1));
        }
        unsafe {
            _mm256_storeu_pd(acc.as_mut_ptr(), a0);
            _mm256_storeu_pd(acc.as_mut_ptr().add(4), a1);
        }
    }
}

fn check_finite(tensor: &str, data: &[f32], start: usize) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(QuantError::observer(tensor, format!("element {} is {}, expected finite values", start + i, data[i]))),
        None => Ok(()),
    }
}

/// The reference: IFMR on all the data at once (sorting for the percentiles).
pub fn ifmr_direct(tensor: &str, data: &[f32], params: &IfmrParams) -> Result<IfmrResult> {
    params.validate()?;
    if data.is_empty() {
        return Err(QuantError::observer(tensor, "no data to calibrate on"));
    }
    check_finite(tensor, data, 0)?;
    let mut sorted = data.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let n = data.len();
    let kth_largest = sorted[n - percentile_rank(params.max_percentile, n)];
    let kth_smallest = sorted[percentile_rank(params.min_percentile, n) - 1];
    let search = Search::new(params, kth_largest, kth_smallest);
    let mut sums = vec![[0f64; LANES]; search.candidates.len()];
    search.accumulate(&mut sums, 0, data);
    Ok(search.finish(&sums, n))
}

/// f32 ordered by `total_cmp` (the data is checked finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key(f32);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug)]
enum Phase {
    /// Pass 1: the k_max largest (min-heap) and k_min smallest (max-heap) values so far.
    Extremes { largest: BinaryHeap<Reverse<Key>>, smallest: BinaryHeap<Key> },
    /// Pass 2: squared-error partial sums of every candidate.
    Errors { search: Search, sums: Vec<[f64; LANES]> },
}

/// Streaming IFMR for one tensor: call [`observe`](Self::observe) for every batch, then
/// [`finish_pass1`](Self::finish_pass1), the same batches again in the same order, then
/// [`result`](Self::result).
#[derive(Debug)]
pub struct IfmrObserver {
    tensor: String,
    params: IfmrParams,
    total: usize,
    k_max: usize,
    k_min: usize,
    /// Elements seen in the current pass.
    seen: usize,
    /// Order-independent fingerprint of pass 1's values, to detect different pass-2 data.
    fingerprint: [u64; 2],
    phase: Phase,
}

impl IfmrObserver {
    /// `total`: the number of values the tensor will produce over all batches.
    pub fn new(tensor: &str, params: IfmrParams, total: usize) -> Result<Self> {
        params.validate()?;
        if total == 0 {
            return Err(QuantError::observer(tensor, "the tensor has no elements to calibrate on"));
        }
        let (k_max, k_min) = (percentile_rank(params.max_percentile, total), percentile_rank(params.min_percentile, total));
        Ok(IfmrObserver {
            tensor: tensor.to_string(),
            params,
            total,
            k_max,
            k_min,
            seen: 0,
            fingerprint: [0; 2],
            phase: Phase::Extremes { largest: BinaryHeap::with_capacity(k_max + 1), smallest: BinaryHeap::with_capacity(k_min + 1) },
        })
    }

    pub fn tensor(&self) -> &str {
        &self.tensor
    }

    /// True between `finish_pass1` and `result`.
    pub fn in_pass2(&self) -> bool {
        matches!(self.phase, Phase::Errors { .. })
    }

    /// Feeds one batch's values (any split; pass 2 must repeat pass 1's order).
    pub fn observe(&mut self, data: &[f32]) -> Result<()> {
        if self.seen + data.len() > self.total {
            return Err(QuantError::observer(
                &self.tensor,
                format!("received {} values, more than the {} announced (shape × batch_num)", self.seen + data.len(), self.total),
            ));
        }
        let fp = fingerprint(data);
        match &mut self.phase {
            Phase::Extremes { largest, smallest } => {
                check_finite(&self.tensor, data, self.seen)?;
                keep_extremes(largest, smallest, self.k_max, self.k_min, data);
                self.fingerprint = [self.fingerprint[0].wrapping_add(fp[0]), self.fingerprint[1] ^ fp[1]];
            }
            Phase::Errors { search, sums } => {
                search.accumulate(sums, self.seen, data);
                self.fingerprint = [self.fingerprint[0].wrapping_sub(fp[0]), self.fingerprint[1] ^ fp[1]];
            }
        }
        self.seen += data.len();
        Ok(())
    }

    /// Ends pass 1: fixes the percentile values and the candidates.
    pub fn finish_pass1(&mut self) -> Result<()> {
        let Phase::Extremes { largest, smallest } = &self.phase else {
            return Err(QuantError::observer(&self.tensor, "finish_pass1 called twice"));
        };
        self.check_count("pass 1")?;
        // The heaps hold exactly k values; their roots are the k-th largest / smallest.
        let kth_largest = largest.peek().expect("total > 0").0.0;
        let kth_smallest = smallest.peek().expect("total > 0").0;
        let search = Search::new(&self.params, kth_largest, kth_smallest);
        let sums = vec![[0f64; LANES]; search.candidates.len()];
        self.phase = Phase::Errors { search, sums };
        self.seen = 0;
        Ok(())
    }

    /// The calibrated parameters, after pass 2.
    pub fn result(&self) -> Result<IfmrResult> {
        let Phase::Errors { search, sums } = &self.phase else {
            return Err(QuantError::observer(&self.tensor, "result requested before finish_pass1 and pass 2"));
        };
        self.check_count("pass 2")?;
        if self.fingerprint != [0, 0] {
            return Err(QuantError::observer(&self.tensor, "pass 2 saw different values than pass 1 (the data must be repeated exactly)"));
        }
        Ok(search.finish(sums, self.total))
    }

    fn check_count(&self, pass: &str) -> Result<()> {
        if self.seen != self.total {
            return Err(QuantError::observer(&self.tensor, format!("{pass} received {} values, expected {}", self.seen, self.total)));
        }
        Ok(())
    }
}

/// IFMR as a calibration algorithm: two passes, the observer created with the total count.
impl ActAlgorithm for IfmrParams {
    fn name(&self) -> &'static str {
        "ifmr"
    }

    fn passes(&self) -> &'static [Pass] {
        &[Pass::Statistics, Pass::ClipSearch]
    }

    fn asymmetric(&self) -> bool {
        self.asymmetric
    }

    fn validate(&self) -> Result<()> {
        IfmrParams::validate(self)
    }

    fn observer(&self, tensor: &str, total: usize) -> Result<Box<dyn ActObserver>> {
        Ok(Box::new(IfmrObserver::new(tensor, *self, total)?))
    }
}

impl ActObserver for IfmrObserver {
    /// Both passes feed the same values; the observer's phase tells them apart.
    fn observe(&mut self, _pass: Pass, values: &[f32]) -> Result<()> {
        IfmrObserver::observe(self, values)
    }

    fn finish_pass(&mut self, pass: Pass) -> Result<()> {
        match pass {
            Pass::Statistics => self.finish_pass1(),
            Pass::ClipSearch => Ok(()),
        }
    }

    fn result(&self) -> Result<ActResult> {
        let r = IfmrObserver::result(self)?;
        Ok(ActResult { quant: r.quant, clip_min: r.clip_min, clip_max: r.clip_max })
    }
}

fn keep_extremes(largest: &mut BinaryHeap<Reverse<Key>>, smallest: &mut BinaryHeap<Key>, k_max: usize, k_min: usize, data: &[f32]) {
    for &x in data {
        if largest.len() < k_max {
            largest.push(Reverse(Key(x)));
        } else if let Some(mut top) = largest.peek_mut()
            && x > top.0.0
        {
            *top = Reverse(Key(x));
        }
        if smallest.len() < k_min {
            smallest.push(Key(x));
        } else if let Some(mut top) = smallest.peek_mut()
            && x < top.0
        {
            *top = Key(x);
        }
    }
}

/// (wrapping sum of the bit patterns, xor of the bit patterns): equal multisets of values
/// give equal fingerprints.
fn fingerprint(data: &[f32]) -> [u64; 2] {
    data.iter().fold([0u64, 0u64], |[s, x], v| {
        let b = v.to_bits() as u64;
        [s.wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15)), x ^ b.rotate_left((b & 63) as u32)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (splitmix64) for synthetic activations.
    struct Rng(u64);
    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn gaussian(&mut self) -> f32 {
            let (u, v) = (self.uniform().max(1e-300), self.uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        }
    }

    fn distributions() -> Vec<(&'static str, Vec<f32>)> {
        let mut r = Rng(7);
        let n = 100_003;
        vec![
            ("gaussian", (0..n).map(|_| r.gaussian() * 2.0 + 0.3).collect()),
            ("relu", (0..n).map(|_| r.gaussian().max(0.0)).collect()),
            ("heavy_tail", (0..n).map(|_| r.gaussian() / (r.uniform() as f32).max(1e-3)).collect()),
            ("negative", (0..n).map(|_| -(r.gaussian().abs()) - 1.0).collect()),
            ("constant", vec![0.37; 5000]),
            ("all_zero", vec![0.0; 5000]),
        ]
    }

    fn streamed(data: &[f32], params: IfmrParams, splits: &[usize]) -> IfmrResult {
        let mut obs = IfmrObserver::new("t", params, data.len()).unwrap();
        for pass in 0..2 {
            let mut start = 0usize;
            for &len in splits.iter().chain(std::iter::once(&usize::MAX)) {
                let end = start.saturating_add(len).min(data.len());
                obs.observe(&data[start..end]).unwrap();
                start = end;
                if start == data.len() {
                    break;
                }
            }
            if pass == 0 {
                obs.finish_pass1().unwrap();
            }
        }
        obs.result().unwrap()
    }

    #[test]
    fn default_search_has_60_candidates() {
        let r = IfmrParams::default().ratios();
        assert_eq!(r.len(), 60);
        assert_eq!((r[0], r[59]), (0.7, 1.29));
    }

    #[test]
    fn percentile_ranks() {
        assert_eq!(percentile_rank(1.0, 10), 1);
        assert_eq!(percentile_rank(0.999999, 3_000_000), 4); // f32(0.999999)·3e6 = 2999996.96
        assert_eq!(percentile_rank(0.9, 100), 11); // f32(0.9)·100 = 89.9999976 → ⌊⌋ = 89
    }

    #[test]
    fn streaming_equals_direct_for_any_batch_split() {
        for (name, data) in distributions() {
            for asymmetric in [true, false] {
                let params = IfmrParams { asymmetric, max_percentile: 0.9999, min_percentile: 0.9999, ..Default::default() };
                let direct = ifmr_direct(name, &data, &params).unwrap();
                for splits in [vec![usize::MAX], vec![1, 7, 4096], vec![1000; 200], vec![3, 33_333]] {
                    let s = streamed(&data, params, &splits);
                    assert_eq!(s, direct, "{name} asym={asymmetric} splits {:?}", &splits[..splits.len().min(3)]);
                }
            }
        }
    }

    #[test]
    fn simd_and_scalar_paths_agree_bitwise() {
        let data: Vec<f32> = distributions().into_iter().flat_map(|(_, d)| d.into_iter().take(4096)).collect();
        for c in [Candidate { lo: -1.5, hi: 2.25, scale: 0.0147 }, Candidate { lo: -3.0, hi: 3.0, scale: 3.0 / 127.0 }] {
            let mut fast = [0f64; LANES];
            accumulate_lanes(c, &mut fast, &data);
            let mut scalar = [0f64; LANES];
            for chunk in data.chunks_exact(LANES) {
                for j in 0..LANES {
                    scalar[j] += sq_err(c, chunk[j]);
                }
            }
            assert_eq!(fast, scalar);
        }
    }

    #[test]
    fn known_answers() {
        // All zero: every scale degenerates to 1, offset −128 (asym) / 0 (sym).
        let r = ifmr_direct("z", &[0.0; 100], &IfmrParams::default()).unwrap();
        assert_eq!(r.quant, ActQuant { scale: 1.0, offset: -128 });
        // Uniform grid 0..=255 with p = 1: max_init 255, min_init 0; clip at r = 1.0
        // gives scale 1 and zero error, so it wins.
        let grid: Vec<f32> = (0..=255).map(|v| v as f32).collect();
        let p = IfmrParams { max_percentile: 1.0, min_percentile: 1.0, ..Default::default() };
        let r = ifmr_direct("g", &grid, &p).unwrap();
        assert_eq!((r.quant, r.mse), (ActQuant { scale: 1.0, offset: -128 }, 0.0));
        assert_eq!(r.candidate, 30);
    }

    #[test]
    fn misuse_is_reported() {
        let mut o = IfmrObserver::new("conv1.input", IfmrParams::default(), 4).unwrap();
        assert!(o.observe(&[1.0; 5]).unwrap_err().to_string().contains("more than the 4"));
        o.observe(&[1.0, 2.0]).unwrap();
        assert!(o.finish_pass1().unwrap_err().to_string().contains("expected 4"));
        let e = o.observe(&[f32::NAN, 1.0]).unwrap_err().to_string();
        assert!(e.contains("conv1.input") && e.contains("element 2 is NaN"), "{e}");
        let mut o = IfmrObserver::new("x", IfmrParams::default(), 2).unwrap();
        o.observe(&[1.0, 2.0]).unwrap();
        o.finish_pass1().unwrap();
        o.observe(&[1.0, 3.0]).unwrap();
        assert!(o.result().unwrap_err().to_string().contains("different values"));
        let bad = IfmrParams { max_percentile: 0.3, ..Default::default() };
        assert!(IfmrObserver::new("x", bad, 2).unwrap_err().to_string().contains("max_percentile"));
    }
}

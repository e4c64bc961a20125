//! HFMG activation calibration (docs/ascend-formats.md §4.2): a histogram merged over batches, then a search
//! for the clip window with the least L2 re-quantization error. Streaming by nature: memory
//! is one histogram per tensor (`num_of_bins` counts), whatever the number of batches.
//!
//! Histogram per batch (torch `histc` semantics): `num_of_bins` equal bins over the running
//! [min, max] (the stored range widened by this batch's min/max), bin = ⌊(x − min)/(max − min)
//! · nbins⌋, the maximum going into the last bin; a zero-width range puts everything in the
//! middle bin. Merging (§4.2, "re-binning assumes uniform density inside a bin"): if the
//! range did not change (both ends within FLT_EPSILON) counts add bin by bin; otherwise each
//! old bin [lo, hi) goes to the new bin holding lo, or, if it straddles two new bins, splits
//! its count in proportion to the overlap (⌊count · fraction⌋ to the lower one, the rest to
//! the upper one).
//!
//! Search (§4.2): start with the window [0, nbins − 1]; each step walks inward from both ends
//! until at least `max(1, ⌈total / 100000⌉)` samples are passed on each side, then moves only
//! the end that discards more bins (ties move the right end); stop once the window is at most
//! `⌈nbins / 4⌉` bins wide. Every visited window is a candidate. Its loss quantizes the whole
//! histogram into 256 uniform bins across the window (bins outside the window fall into the
//! end bins); a source bin's error integrates `δ² · density` over the bin (`(δ_e³ − δ_b³)/3 ·
//! density`); windows narrower than FLT_EPSILON per destination bin have loss 0. The first
//! minimum wins; `clip_min = min + left·w`, `clip_max = min + (right + 1)·w` give scale and
//! offset by the min-max rule of §3 ([`ActQuant::from_clip_range`]).
//!
//! Choice: ranges are f32 (the data type), all bin arithmetic is f64 (AMCT's torch code runs
//! it in f32; the python reference `tests/oracle/hfmg_ref.py` uses f64 like this module).

use rayon::prelude::*;

use super::config::HfmgQuantize;
use super::error::{QuantError, Result};
use super::observe::{ActAlgorithm, ActObserver, ActResult, Pass};
use super::scale::{ActQuant, FLT_EPSILON};

/// Destination bins of the re-quantization (8-bit).
const DST_BINS: usize = 256;
/// Samples per search step = ⌈total / STEP_DIVISOR⌉.
const STEP_DIVISOR: u64 = 100_000;
/// The search stops at windows of ⌈nbins / MIN_BIN_RATIO⌉ bins.
const MIN_BIN_RATIO: usize = 4;

/// `hfmg_quantize` settings (§8.2) plus the layer's activation_offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfmgParams {
    pub num_of_bins: usize,
    pub asymmetric: bool,
}

impl Default for HfmgParams {
    fn default() -> Self {
        HfmgParams { num_of_bins: 4096, asymmetric: true }
    }
}

impl HfmgParams {
    /// The settings of an `hfmg_quantize` config, with the layer's resolved activation_offset.
    pub fn from_config(c: &HfmgQuantize, asymmetric: bool) -> Self {
        HfmgParams { num_of_bins: c.num_of_bins as usize, asymmetric }
    }

    pub fn validate(&self) -> Result<()> {
        if ![1024, 2048, 4096, 8192].contains(&self.num_of_bins) {
            return Err(QuantError::param(
                "hfmg_quantize.num_of_bins",
                format!("{} is not one of 1024, 2048, 4096, 8192", self.num_of_bins),
            ));
        }
        Ok(())
    }
}

/// The calibrated parameters of one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HfmgResult {
    pub quant: ActQuant,
    pub clip_min: f32,
    pub clip_max: f32,
    /// The chosen window of histogram bins (inclusive).
    pub window: (usize, usize),
}

/// Streaming HFMG for one tensor: [`observe`](Self::observe) every batch, then
/// [`result`](Self::result).
#[derive(Debug, Clone)]
pub struct HfmgObserver {
    tensor: String,
    params: HfmgParams,
    counts: Vec<u64>,
    range: Option<(f32, f32)>,
}

impl HfmgObserver {
    pub fn new(tensor: &str, params: HfmgParams) -> Result<Self> {
        params.validate()?;
        Ok(HfmgObserver { tensor: tensor.to_string(), params, counts: vec![0; params.num_of_bins], range: None })
    }

    /// The merged histogram and its range so far.
    pub fn histogram(&self) -> (&[u64], Option<(f32, f32)>) {
        (&self.counts, self.range)
    }

    pub fn observe(&mut self, data: &[f32]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for (i, &v) in data.iter().enumerate() {
            if !v.is_finite() {
                return Err(QuantError::observer(&self.tensor, format!("element {i} of the batch is {v}, expected finite values")));
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let nbins = self.params.num_of_bins;
        let Some((old_lo, old_hi)) = self.range else {
            self.counts = histogram(data, lo, hi, nbins);
            self.range = Some((lo, hi));
            return Ok(());
        };
        let (new_lo, new_hi) = (lo.min(old_lo), hi.max(old_hi));
        let mut merged = histogram(data, new_lo, new_hi, nbins);
        if close(new_lo, old_lo) && close(new_hi, old_hi) {
            merged.iter_mut().zip(&self.counts).for_each(|(m, &c)| *m += c);
        } else {
            rebin_into(&self.counts, (old_lo, old_hi), &mut merged, (new_lo, new_hi));
        }
        self.counts = merged;
        self.range = Some((new_lo, new_hi));
        Ok(())
    }

    pub fn result(&self) -> Result<HfmgResult> {
        let Some((lo, hi)) = self.range else {
            return Err(QuantError::observer(&self.tensor, "no data was observed"));
        };
        let asym = self.params.asymmetric;
        if lo == hi {
            return Ok(HfmgResult { quant: ActQuant::from_clip_range(lo, hi, asym), clip_min: lo, clip_max: hi, window: (0, 0) });
        }
        let windows = search_windows(&self.counts);
        let width = (hi as f64 - lo as f64) / self.counts.len() as f64;
        let losses: Vec<f64> = windows.par_iter().map(|&w| window_loss(&self.counts, w, width)).collect();
        let best = losses.iter().enumerate().fold(0, |b, (i, &l)| if l < losses[b] { i } else { b });
        let (left, right) = windows[best];
        let clip_min = (lo as f64 + left as f64 * width) as f32;
        let clip_max = (lo as f64 + (right + 1) as f64 * width) as f32;
        Ok(HfmgResult { quant: ActQuant::from_clip_range(clip_min, clip_max, asym), clip_min, clip_max, window: (left, right) })
    }
}

/// HFMG as a calibration algorithm: one pass (the statistics pass builds the histogram).
impl ActAlgorithm for HfmgParams {
    fn name(&self) -> &'static str {
        "hfmg"
    }

    fn passes(&self) -> &'static [Pass] {
        &[Pass::Statistics]
    }

    fn asymmetric(&self) -> bool {
        self.asymmetric
    }

    fn validate(&self) -> Result<()> {
        HfmgParams::validate(self)
    }

    fn observer(&self, tensor: &str, _total: usize) -> Result<Box<dyn ActObserver>> {
        Ok(Box::new(HfmgObserver::new(tensor, *self)?))
    }
}

impl ActObserver for HfmgObserver {
    fn observe(&mut self, _pass: Pass, values: &[f32]) -> Result<()> {
        HfmgObserver::observe(self, values)
    }

    fn finish_pass(&mut self, _pass: Pass) -> Result<()> {
        Ok(())
    }

    fn result(&self) -> Result<ActResult> {
        let r = HfmgObserver::result(self)?;
        Ok(ActResult { quant: r.quant, clip_min: r.clip_min, clip_max: r.clip_max })
    }
}

/// Python's `math.isclose(a, b, abs_tol=FLT_EPSILON)`.
fn close(a: f32, b: f32) -> bool {
    let (a, b) = (a as f64, b as f64);
    (a - b).abs() <= (1e-9 * a.abs().max(b.abs())).max(FLT_EPSILON as f64)
}

/// Counts of `data` in `nbins` equal bins over [lo, hi] (all values lie inside).
fn histogram(data: &[f32], lo: f32, hi: f32, nbins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; nbins];
    if lo == hi {
        counts[nbins / 2] += data.len() as u64;
        return counts;
    }
    let (lo, span) = (lo as f64, hi as f64 - lo as f64);
    for &x in data {
        let b = ((x as f64 - lo) / span * nbins as f64).floor() as usize;
        counts[b.min(nbins - 1)] += 1;
    }
    counts
}

/// Adds the counts of a histogram over `from` into one over the wider range `to`.
fn rebin_into(old: &[u64], from: (f32, f32), merged: &mut [u64], to: (f32, f32)) {
    let n = merged.len();
    let (a, w_old) = (from.0 as f64, (from.1 as f64 - from.0 as f64) / old.len() as f64);
    let (base, w_new) = (to.0 as f64, (to.1 as f64 - to.0 as f64) / n as f64);
    for (i, &count) in old.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (lower, upper) = (a + i as f64 * w_old, a + (i + 1) as f64 * w_old);
        let idx_low = (((lower - base) / w_new).floor() as usize).min(n - 1);
        let idx_high = (((upper - base) / w_new).floor() as usize).min(n - 1);
        if idx_low == idx_high {
            merged[idx_low] += count;
        } else {
            let fraction = (base + (idx_low + 1) as f64 * w_new - lower) / (upper - lower);
            let low = (count as f64 * fraction).floor() as u64;
            merged[idx_low] += low;
            merged[idx_high] += count - low;
        }
    }
}

/// The visited windows (left, right) of the inward search.
fn search_windows(counts: &[u64]) -> Vec<(usize, usize)> {
    let total: u64 = counts.iter().sum();
    let step = total.div_ceil(STEP_DIVISOR).max(1);
    let min_bins = counts.len().div_ceil(MIN_BIN_RATIO);
    let (mut left, mut right) = (0usize, counts.len() - 1);
    let mut windows = Vec::new();
    while right - left > min_bins {
        let (mut l, mut r) = (left, right);
        let (mut l_sum, mut r_sum) = (0u64, 0u64);
        while l < r && l_sum < step {
            l_sum += counts[l];
            l += 1;
        }
        while l < r && r_sum < step {
            r_sum += counts[r];
            r -= 1;
        }
        if right - r >= l - left {
            right = r;
        } else {
            left = l;
        }
        windows.push((left, right));
    }
    windows
}

/// L2 error of quantizing the histogram into DST_BINS bins spanning `window`, in units of
/// the squared source-bin width `bin_width²` (a common positive factor, irrelevant for the
/// argmin).
fn window_loss(counts: &[u64], (left, right): (usize, usize), bin_width: f64) -> f64 {
    // Work in bin-width units: w = 1, density = count.
    let dst_w = (right - left + 1) as f64 / DST_BINS as f64;
    if dst_w * bin_width < FLT_EPSILON as f64 {
        return 0.0;
    }
    let half = dst_w / 2.0;
    let cube = |d: f64| d * d * d;
    let norm = |b: f64, e: f64, density: f64| (cube(e) - cube(b)) / 3.0 * density;
    let last = (DST_BINS - 1) as f64;
    let mut loss = 0.0;
    for (i, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let density = count as f64;
        let begin = i as f64 - left as f64;
        let end = begin + 1.0;
        let b_idx = (begin / dst_w).floor().max(0.0).min(last);
        let e_idx = (end / dst_w).floor().max(0.0).min(last);
        let center = b_idx * dst_w + half;
        loss += if b_idx == e_idx {
            norm(begin - center, end - center, density)
        } else {
            norm(begin - center, half, density)
                + (e_idx - b_idx - 1.0) * norm(-half, half, density)
                + norm(-half, end - e_idx * dst_w - half, density)
        };
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_and_last_edge() {
        let h = histogram(&[0.0, 0.49, 0.5, 1.0], 0.0, 1.0, 1024);
        assert_eq!((h[0], h[501], h[512], h[1023]), (1, 1, 1, 1));
        assert_eq!(h.iter().sum::<u64>(), 4);
    }

    #[test]
    fn merge_keeps_counts_and_rebins_by_overlap() {
        // Old: 1024 bins over [0, 1]; new range [0, 2]: old bin i lands in new bin i/2.
        let mut old = vec![0u64; 1024];
        old[3] = 10;
        old[1023] = 4;
        let mut merged = vec![0u64; 1024];
        rebin_into(&old, (0.0, 1.0), &mut merged, (0.0, 2.0));
        assert_eq!((merged[1], merged[511]), (10, 4));
        // Range [−0.5/1024·… ] shift by a third of a new bin: the count splits by overlap.
        let mut merged = vec![0u64; 1024];
        let w = 2.0f64 / 1024.0;
        rebin_into(&old, (0.0, 1.0), &mut merged, ((-w / 3.0) as f32, (2.0 - w / 3.0) as f32));
        assert_eq!(merged.iter().sum::<u64>(), 14);
    }

    #[test]
    fn streaming_batches_merge() {
        let mut o = HfmgObserver::new("x", HfmgParams { num_of_bins: 1024, asymmetric: true }).unwrap();
        o.observe(&[0.0, 0.25, 0.5]).unwrap();
        o.observe(&[-1.0, 1.0]).unwrap();
        let (h, range) = o.histogram();
        assert_eq!(range, Some((-1.0, 1.0)));
        assert_eq!(h.iter().sum::<u64>(), 5);
        assert_eq!((h[0], h[512], h[1023]), (1, 1, 1));
    }

    #[test]
    fn uniform_data_keeps_nearly_full_range() {
        // 0..=255 uniformly: clipping anything costs more than the rounding it saves.
        let data: Vec<f32> = (0..256 * 40).map(|i| (i % 256) as f32 + 0.5).collect();
        let mut o = HfmgObserver::new("u", HfmgParams::default()).unwrap();
        o.observe(&data).unwrap();
        let r = o.result().unwrap();
        assert!(r.clip_max > 250.0 && r.clip_min >= 0.0, "{r:?}");
        assert_eq!(r.quant.offset, -128);
    }

    #[test]
    fn degenerate_and_bad_input() {
        let mut o = HfmgObserver::new("c", HfmgParams::default()).unwrap();
        o.observe(&[0.0; 10]).unwrap();
        assert_eq!(o.result().unwrap().quant, ActQuant { scale: 1.0, offset: -128 });
        assert!(o.observe(&[f32::INFINITY]).unwrap_err().to_string().contains("inf"));
        assert!(HfmgObserver::new("c", HfmgParams { num_of_bins: 100, asymmetric: true }).is_err());
        assert!(HfmgObserver::new("c", HfmgParams::default()).unwrap().result().is_err());
    }
}

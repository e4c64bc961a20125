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
    /// true: pass 2 scores every element against every candidate (the reference search,
    /// `--exact_ifmr`) instead of by bins; same choices, several times slower.
    pub exact: bool,
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
            exact: false,
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
            exact: false,
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
    /// Same f32 terms, added to the same f64 lanes in the same order as
    /// [`accumulate_reference`](Self::accumulate_reference) (bit-identical sums), but faster:
    /// the body is walked in cache-sized blocks, [`GROUP`] candidates at a time (independent
    /// add chains, one load per element for all of them), and elements equal to ±0 — whose
    /// error is exactly +0 for every candidate, `lo ≤ 0 ≤ hi` — are left out of each lane's
    /// sequence (adding +0 does not change an f64 sum), which on ReLU outputs skips most of them.
    fn accumulate(&self, sums: &mut [[f64; LANES]], start: usize, data: &[f32]) {
        let head = ((LANES - start % LANES) % LANES).min(data.len());
        let body = (data.len() - head) / LANES * LANES;
        let (head_data, rest) = data.split_at(head);
        let (body_data, tail_data) = rest.split_at(body);
        let work = |cands: &[Candidate], sums: &mut [[f64; LANES]]| {
            for (c, acc) in cands.iter().zip(sums.iter_mut()) {
                for (i, &x) in head_data.iter().enumerate() {
                    acc[(start + i) % LANES] += sq_err(*c, x);
                }
            }
            let mut packed = Vec::with_capacity(BLOCK.min(body_data.len()));
            for block in body_data.chunks(BLOCK) {
                let lanes = pack_nonzero_lanes(block, &mut packed);
                for (cs, acc) in cands.chunks(GROUP).zip(sums.chunks_mut(GROUP)) {
                    accumulate_group(cs, acc, lanes);
                }
            }
            for (c, acc) in cands.iter().zip(sums.iter_mut()) {
                for (j, &x) in tail_data.iter().enumerate() {
                    acc[j] += sq_err(*c, x);
                }
            }
        };
        let threads = rayon::current_num_threads().max(1);
        if data.len() >= 1 << 15 && threads > 1 && self.candidates.len() > GROUP {
            // Split the candidates (in whole groups) among the threads; each walks all the data.
            let per = self.candidates.len().div_ceil(threads).div_ceil(GROUP) * GROUP;
            self.candidates.par_chunks(per).zip(sums.par_chunks_mut(per)).for_each(|(c, s)| work(c, s));
        } else {
            work(&self.candidates, sums);
        }
    }

    /// The straightforward form of [`accumulate`](Self::accumulate) (one candidate at a time
    /// over all the data, every element): kept as the reference the fast path is tested against.
    #[cfg(test)]
    fn accumulate_reference(&self, sums: &mut [[f64; LANES]], start: usize, data: &[f32]) {
        for (c, acc) in self.candidates.iter().zip(sums.iter_mut()) {
            accumulate_one(*c, acc, start, data);
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

/// Pass 2 by bins (the default path): the same candidate losses as the per-element search,
/// from per-bin sums, in about the time of one look-up per element instead of one
/// fake-quantization per element and candidate.
///
/// For a candidate c, `q_c(x) = round(clamp(x, lo, hi) / scale)` (the f32 operations of
/// [`sq_err`]) is a monotone step function of x, and the per-element error is
/// `fl(A − x)` with `A = fl(q_c(x) · scale)`. The bins are cut at every step of every
/// candidate (found exactly, by bisection over the f32 values), so inside a bin every q_c is
/// constant, and per bin `n`, `Σd`, `Σd²` (`d = x − left edge`) give
/// `Σ(A − x)² = n·a² − 2a·Σd + Σd²` (`a = A − left edge`). Inside the binned range
/// `fl(A − x)` is exact (`A/2 ≤ x ≤ 2A` for q ≠ 0, Sterbenz; `A = 0` for q = 0), so each term
/// is the same as the per-element search's; the bin range stops where a clipped value would
/// pass 2A for some candidate. Values outside it (at most the ~k values beyond the
/// percentiles at the default settings) are scored per element, exactly as before.
///
/// Exact sums: the bins are also cut at every power of two (±2^e), so the values of a bin lie
/// in one closed binade, where consecutive f32 are one ulp apart: `d = k·ulp` with
/// `k = key(x) − key(left)` an integer ≤ 2^23 ([`order_key`]). Per bin, n and Σk are kept in
/// integers (exact, in any order or split). The bin holding 0 has q_c = 0, error −x, for
/// every candidate: its values (the many zeros of ReLU outputs among them) are not binned at
/// all. Σd² adds the same to every candidate; it comes from Σx² over the binned values (f64,
/// for the reported mse only), as `Σd² = Σx² − Σ(n·left² + 2·left·Σd)`.
/// `tests/ifmr_real.rs` checks on real activations that every tensor's choice is the
/// per-element search's.
#[derive(Debug, Clone)]
struct Binned {
    look: BinLookup,
    /// Per bin: the count and Σk of the values added (Σk < 2^63: k ≤ 2^23 and, checked in
    /// [`IfmrObserver::finish_pass1`], fewer than 2^40 values per tensor). Only these
    /// 16 bytes per bin are kept between batches; the packed per-value accumulators are
    /// [`PACKED`] scratch, flushed at the end of every batch (YOLOX, 83 tensors: −36 MiB).
    count: Vec<u64>,
    offsets: Vec<u64>,
    /// Σx² over all the binned values, the zero bin included.
    squares: f64,
    /// Per candidate: the exact sum over the values outside [lo_in, hi_in].
    outside: Vec<f64>,
}

thread_local! {
    /// Per half of a batch, [`SLOTS`] accumulators per bin (slot `SLOTS·j + i mod SLOTS` for
    /// the i-th value, so that runs of one bin make several shorter add chains):
    /// `count << PACK_SHIFT | Σk`, all zero between [`Binned::accumulate`] calls. One pair
    /// per calling thread, shared by all tensors (they are observed one at a time).
    static PACKED: std::cell::RefCell<[Vec<u64>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// The bins: edges and the look-up from a value to its bin.
#[derive(Debug, Clone)]
struct BinLookup {
    /// lo_in, then the sorted step points of all candidates and the powers of two inside
    /// [lo_in, hi_in], then +∞ sentinels: bin j = [bounds[j], bounds[j + 1]).
    bounds: Vec<f32>,
    lo_in: f32,
    hi_in: f32,
    /// Cell look-up: cell(x) = ⌊(x − lo_in)·inv_width⌋ (f32, monotone in x); the bin of x is
    /// start[cell] plus the number of bounds ≤ x among the next `steps` after it.
    inv_width: f32,
    steps: usize,
    start: Vec<u32>,
    /// The bin holding 0: [zero_lo, zero_hi).
    zero_lo: f32,
    zero_hi: f32,
    zero_bin: usize,
    nbins: usize,
}

/// At most this many step points per tensor (60 candidates × ~256 steps by default).
const MAX_EDGES: usize = 1 << 20;

/// Packed accumulators: the count above bit 44, Σk (k ≤ 2^23) below. Flushed at least every
/// 2^20 − 1 values, so the count stays below 2^20 and Σk below 2^43.
const PACK_SHIFT: u32 = 44;
const PACK_LIMIT: usize = (1 << 20) - 1;
const PACK_MASK: u64 = (1 << PACK_SHIFT) - 1;
/// Accumulators per bin and half.
const SLOTS: usize = 2;

/// Monotone map of finite f32 to i64 (the f32 order), and back. Inside one binade (and
/// between 0 and the smallest normal) it is linear: consecutive f32 have consecutive keys.
fn order_key(x: f32) -> i64 {
    let b = x.to_bits() as i32;
    (if b < 0 { i32::MIN - b } else { b }) as i64
}
fn from_order_key(k: i64) -> f32 {
    let k = k as i32;
    f32::from_bits((if k < 0 { i32::MIN - k } else { k }) as u32)
}

/// [`order_key`] in i32 (−0 and +0 both 0), branch-free.
#[inline(always)]
fn order_key32(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    if b < 0 { i32::MIN.wrapping_sub(b) } else { b }
}

#[inline(always)]
fn quant_index(c: Candidate, x: f32) -> f32 {
    round_even_small(x.max(c.lo).min(c.hi) / c.scale)
}

/// The f32 spacing inside the bin that starts at `left` (values ≥ left, same sign, one
/// binade): above `left` when positive, below |left| when negative.
fn bin_ulp(left: f32) -> f64 {
    let a = left.abs();
    if left > 0.0 { f32::from_bits(a.to_bits() + 1) as f64 - a as f64 } else { a as f64 - f32::from_bits(a.to_bits() - 1) as f64 }
}

impl Binned {
    /// None when the search is degenerate for bins (then the per-element path runs).
    fn new(search: &Search, kth_largest: f32, kth_smallest: f32) -> Option<Binned> {
        let cands = &search.candidates;
        if cands.iter().any(|c| !(c.scale >= FLT_EPSILON && c.hi > 0.0)) {
            return None;
        }
        // A clipped value x (beyond hi, or below lo when symmetric) has the error fl(A − x) with
        // A = fl(q(hi)·scale) (q(lo)): exact while |x| ≤ 2|A| (Sterbenz) or when A = 0. The
        // bins stop at the smallest such 2|A| over the candidates; beyond, values go per element.
        let reach = |end: fn(&Candidate) -> f32| {
            cands.iter().map(|c| (quant_index(*c, end(c)) * c.scale).abs()).filter(|a| *a > 0.0).fold(f32::INFINITY, f32::min) * 2.0
        };
        let hi_in = kth_largest.max(0.0).min(reach(|c| c.hi));
        let lo_in = if search.asymmetric { kth_smallest.min(0.0) } else { kth_smallest.min(0.0).max(-reach(|c| c.lo)) };
        if search.asymmetric && cands.iter().any(|c| c.lo != lo_in) {
            return None;
        }
        let (klo, khi) = (order_key(lo_in), order_key(hi_in));
        let mut edges = Vec::new();
        for &c in cands {
            let (q_lo, q_hi) = (quant_index(c, lo_in), quant_index(c, hi_in));
            let mut q = q_lo + 1.0;
            let mut a_prev = klo;
            while q <= q_hi {
                // The smallest x in (lo_in, hi_in] with quant_index ≥ q: bisection of a bracket
                // with quant_index(a) < q ≤ quant_index(b), narrowed first around the guess
                // (q − ½)·scale, which is within a few ulps of the step: ±2 keys almost always
                // (two bisection steps left), else ±64; each end is checked, so the bracket
                // stays valid whichever holds.
                let (mut a, mut b) = (a_prev, khi);
                let guess = order_key(((q - 0.5) * c.scale).clamp(lo_in, hi_in));
                for radius in [2, 64] {
                    let (g_lo, g_hi) = ((guess - radius).max(a), (guess + radius).min(b));
                    let below = quant_index(c, from_order_key(g_lo)) < q;
                    let above = quant_index(c, from_order_key(g_hi)) >= q;
                    if below {
                        a = g_lo;
                    }
                    if above {
                        b = g_hi;
                    }
                    if below && above {
                        break;
                    }
                }
                while b - a > 1 {
                    let m = a + (b - a) / 2;
                    if quant_index(c, from_order_key(m)) >= q { b = m } else { a = m }
                }
                edges.push(from_order_key(b));
                a_prev = b;
                q = quant_index(c, from_order_key(b)) + 1.0;
                if edges.len() > MAX_EDGES {
                    return None;
                }
            }
        }
        let sort = |edges: &mut Vec<f32>| {
            edges.sort_unstable_by(f32::total_cmp);
            edges.dedup_by(|a, b| a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0));
        };
        sort(&mut edges);
        // The bin holding 0, then cuts at the powers of two outside it (one binade per bin).
        let zero_lo = edges.iter().rev().find(|&&e| e <= 0.0).copied().unwrap_or(lo_in);
        let zero_hi = edges.iter().find(|&&e| e > 0.0).copied().unwrap_or(f32::INFINITY);
        for e in -126i32..=127 {
            let p = f32::from_bits(((e + 127) as u32) << 23);
            if p > zero_hi && p <= hi_in {
                edges.push(p);
            }
            if -p < zero_lo && -p > lo_in {
                edges.push(-p);
            }
        }
        sort(&mut edges);
        // Cells fine enough that at most `compares` edges share one; the look-up then takes that
        // many branch-free comparisons (edges past a cell's own are greater than any x of the
        // cell): 16 in one AVX-512 compare, else 4.
        let compares = if avx512() { 16 } else { 4 };
        let mut cells = (edges.len() * 4 / compares).next_power_of_two().clamp(256, 1 << 22);
        let (inv_width, start, steps) = loop {
            let width = (hi_in - lo_in) / cells as f32;
            let inv_width = if width > 0.0 && width.is_finite() { 1.0 / width } else { 0.0 };
            let cell_of = |x: f32| (((x - lo_in) * inv_width) as usize).min(cells - 1);
            // start[i]: the edges of earlier cells (all < any x of cell i: cell_of is monotone).
            let mut start = vec![0u32; cells + 1];
            let mut k = 0usize;
            let mut steps = 0usize;
            for (i, s) in start.iter_mut().enumerate().take(cells) {
                *s = k as u32;
                let first = k;
                while k < edges.len() && cell_of(edges[k]) <= i {
                    k += 1;
                }
                steps = steps.max(k - first);
            }
            start[cells] = k as u32;
            if steps <= compares || cells >= 1 << 22 {
                break (inv_width, start, steps);
            }
            cells *= 2;
        };
        let nbins = edges.len() + 1;
        let zero_bin = edges.partition_point(|&e| e <= 0.0);
        // Sentinels so that the fixed number of comparisons never reads past the end.
        let mut bounds = Vec::with_capacity(nbins + steps.max(16) + 1);
        bounds.push(lo_in);
        bounds.extend(edges);
        bounds.extend(std::iter::repeat_n(f32::INFINITY, steps.max(16) + 1));
        let look = BinLookup { bounds, lo_in, hi_in, inv_width, steps, start, zero_lo, zero_hi, zero_bin, nbins };
        Some(Binned {
            look,
            // Allocated by the first batch of pass 2 (see `accumulate`).
            count: Vec::new(),
            offsets: Vec::new(),
            squares: 0.0,
            outside: vec![0.0; cands.len()],
        })
    }

    /// Adds `packed` (one half's accumulators) to the per-bin totals and zeroes it.
    fn flush(&mut self, packed: &mut [u64]) {
        for ((p, n), s) in packed.chunks_exact_mut(SLOTS).zip(&mut self.count).zip(&mut self.offsets) {
            *n += p.iter().map(|v| v >> PACK_SHIFT).sum::<u64>();
            *s += p.iter().map(|&v| v & PACK_MASK).sum::<u64>();
            p.fill(0);
        }
    }

    fn accumulate(&mut self, search: &Search, data: &[f32]) {
        let nbins = self.look.nbins;
        if self.count.len() != nbins {
            // Allocated when pass 2 starts rather than in `new`: the bins of all tensors are
            // built in parallel, and memory the allocator's per-thread arenas took for them
            // would not be reused by the evaluation after the calibration.
            self.count = vec![0; nbins];
            self.offsets = vec![0; nbins];
        }
        // A thread that steals work while it waits in the join below could come back here
        // for another tensor: it then takes fresh accumulators instead of the borrowed ones.
        PACKED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut packed) => self.accumulate_with(search, data, &mut packed),
            Err(_) => self.accumulate_with(search, data, &mut [Vec::new(), Vec::new()]),
        });
    }

    fn accumulate_with(&mut self, search: &Search, data: &[f32], packed: &mut [Vec<u64>; 2]) {
        let nbins = self.look.nbins;
        for p in packed.iter_mut() {
            if p.len() < SLOTS * nbins {
                p.resize(SLOTS * nbins, 0);
            }
        }
        let [p0, p1] = packed;
        let (p0, p1) = (&mut p0[..SLOTS * nbins], &mut p1[..SLOTS * nbins]);
        let mut outside = Vec::new();
        let mut pending = [0usize; 2];
        // Segments whose halves fit one flush period; two fixed halves (the same split
        // whatever the thread count) when large.
        for seg in data.chunks(PACK_LIMIT) {
            let split = seg.len() >= 1 << 16;
            let (first, second) = seg.split_at(if split { seg.len() / 2 } else { seg.len() });
            if pending[0] + first.len() > PACK_LIMIT {
                self.flush(p0);
                pending[0] = 0;
            }
            if pending[1] + second.len() > PACK_LIMIT {
                self.flush(p1);
                pending[1] = 0;
            }
            pending[0] += first.len();
            pending[1] += second.len();
            let look = &self.look;
            let squares = if split {
                let mut outside2 = Vec::new();
                let (s0, s1) = rayon::join(|| look.fill(p0, &mut outside, first), || look.fill(p1, &mut outside2, second));
                outside.extend(outside2);
                s0 + s1
            } else {
                look.fill(p0, &mut outside, first)
            };
            self.squares += squares;
        }
        self.flush(p0);
        self.flush(p1);
        for (c, sum) in search.candidates.iter().zip(self.outside.iter_mut()) {
            for &x in &outside {
                *sum += sq_err(*c, x);
            }
        }
    }

    /// Σ squared error per candidate. Per candidate, the bins' terms go to [`LANES`] partial
    /// sums (bin j to lane j mod LANES), so that the loop runs in wide vectors: the same
    /// terms as one running sum, added in another order (the choice does not move: the
    /// candidates' losses differ far more than f64 rounding; `tests/ifmr_real.rs`).
    fn totals(&self, search: &Search) -> Vec<f64> {
        let look = &self.look;
        // Per binned bin (zero bin left out), as columns: n, left, Σd.
        let (mut counts, mut lefts, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        for j in (0..look.nbins).filter(|&j| j != look.zero_bin) {
            let n = self.count.get(j).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let left = look.bounds[j];
            counts.push(n as f64);
            lefts.push(left);
            offsets.push(self.offsets.get(j).copied().unwrap_or(0) as f64 * bin_ulp(left));
        }
        // Σd² over the binned bins plus Σx² over the zero bin: the same for every candidate.
        let common = self.squares
            - counts.iter().zip(&lefts).zip(&offsets).map(|((&n, &l), &s)| n * l as f64 * l as f64 + 2.0 * l as f64 * s).sum::<f64>();
        search
            .candidates
            .iter()
            .zip(&self.outside)
            .map(|(&c, &out)| {
                let total = crate::engine::kernels::exp::with_wide_vectors(
                    #[inline(always)]
                    || bin_terms(c, &counts, &lefts, &offsets),
                );
                (total + common).max(0.0) + out
            })
            .collect()
    }
}

/// Σ over the bins of `n·a² − 2a·Σd`, `a = fl(q_c(left)·scale) − left` ([`Binned`]), in
/// [`LANES`] partial sums.
#[inline(always)]
fn bin_terms(c: Candidate, counts: &[f64], lefts: &[f32], offsets: &[f64]) -> f64 {
    let mut acc = [0f64; LANES];
    let term = |n: f64, left: f32, s: f64| {
        let a = (quant_index(c, left) * c.scale) as f64 - left as f64;
        n * a * a - 2.0 * a * s
    };
    let (cs, ls, ss) = (counts.chunks_exact(LANES), lefts.chunks_exact(LANES), offsets.chunks_exact(LANES));
    let (c_rest, l_rest, s_rest) = (cs.remainder(), ls.remainder(), ss.remainder());
    for ((n, l), s) in cs.zip(ls).zip(ss) {
        for j in 0..LANES {
            acc[j] += term(n[j], l[j], s[j]);
        }
    }
    for (j, ((&n, &l), &s)) in c_rest.iter().zip(l_rest).zip(s_rest).enumerate() {
        acc[j] += term(n, l, s);
    }
    acc.iter().sum()
}

/// Values per block of [`BinLookup::fill`] (the compacted copy stays in L1).
const FILL_BLOCK: usize = 2048;

impl BinLookup {
    /// Adds `data` to `packed`; values outside [lo_in, hi_in] go to `outside`. Returns Σx²
    /// over the values inside.
    fn fill(&self, packed: &mut [u64], outside: &mut Vec<f32>, data: &[f32]) -> f64 {
        assert_eq!(packed.len(), SLOTS * self.nbins);
        let block = FILL_BLOCK.min(data.len());
        let mut buf = vec![0f32; block + 16];
        // Bin and offset k of each value: found first, added after, so that the look-ups of
        // many values overlap instead of waiting behind the additions.
        let mut bins = vec![0u32; block];
        let mut offsets = vec![0u32; block];
        let mut squares = 0.0;
        for block in data.chunks(FILL_BLOCK) {
            let (m, sq) = self.compact(block, &mut buf, outside);
            squares += sq;
            self.locate(&buf[..m], &mut bins[..m], &mut offsets[..m]);
            for (i, (&j, &k)) in bins[..m].iter().zip(&offsets[..m]).enumerate() {
                let p = &mut packed[SLOTS * j as usize + i % SLOTS];
                *p = p.wrapping_add((1 << PACK_SHIFT) | k as u64);
            }
        }
        squares
    }

    /// The bin j of every value (inside [lo_in, hi_in]) and its offset in ulps from the bin's
    /// left bound, `k = key(x) − key(bounds[j])`.
    fn locate(&self, values: &[f32], bins: &mut [u32], offsets: &mut [u32]) {
        #[cfg(target_arch = "x86_64")]
        if self.steps <= 16 && avx512() {
            // SAFETY: AVX-512F support was just checked; steps ≤ 16 (bounds has ≥ 17 sentinels).
            unsafe { self.locate_avx512(values, bins, offsets) };
            return;
        }
        self.locate_scalar(values, bins, offsets);
    }

    fn locate_scalar(&self, values: &[f32], bins: &mut [u32], offsets: &mut [u32]) {
        let cells = self.start.len() - 2;
        for ((&x, j), k) in values.iter().zip(bins.iter_mut()).zip(offsets.iter_mut()) {
            let first = self.start[(((x - self.lo_in) * self.inv_width) as usize).min(cells)] as usize;
            let next = &self.bounds[first + 1..];
            *j = (first + if self.steps <= 4 { count_le4(&next[..4], x) } else { next[..self.steps].iter().filter(|&&e| e <= x).count() })
                as u32;
            *k = order_key32(x).wrapping_sub(order_key32(self.bounds[*j as usize])) as u32;
        }
    }

    /// [`locate`](Self::locate) with one 16-wide comparison per value and the cells and keys
    /// 16 values at a time.
    ///
    /// # Safety
    /// `steps ≤ 16`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn locate_avx512(&self, values: &[f32], bins: &mut [u32], offsets: &mut [u32]) {
        use std::arch::x86_64::*;
        let cells = self.start.len() - 2;
        let (lo, inv, max_cell) = (_mm512_set1_ps(self.lo_in), _mm512_set1_ps(self.inv_width), _mm512_set1_epi32(cells as i32));
        let key = |b: __m512i| {
            // order_key32: b < 0 → i32::MIN − b.
            let neg = _mm512_cmplt_epi32_mask(b, _mm512_setzero_si512());
            _mm512_mask_sub_epi32(b, neg, _mm512_set1_epi32(i32::MIN), b)
        };
        let n16 = values.len() / 16 * 16;
        for i in (0..n16).step_by(16) {
            // SAFETY: i + 16 ≤ len for values, bins and offsets; start[cell] with cell ≤ cells;
            // first + 1 + 16 ≤ bounds.len() (first ≤ edge count, 17 sentinels); j < nbins.
            unsafe {
                let x = _mm512_loadu_ps(values.as_ptr().add(i));
                let cell = _mm512_min_epu32(_mm512_cvttps_epu32(_mm512_mul_ps(_mm512_sub_ps(x, lo), inv)), max_cell);
                // Scalar loads rather than gathers (slow on some AVX-512 CPUs).
                let mut c = [0u32; 16];
                _mm512_storeu_si512(c.as_mut_ptr() as *mut _, cell);
                let mut left = [0f32; 16];
                let b = bins.as_mut_ptr().add(i);
                for l in 0..16 {
                    let first = *self.start.get_unchecked(c[l] as usize);
                    let xv = _mm512_set1_ps(*values.get_unchecked(i + l));
                    let e = _mm512_loadu_ps(self.bounds.as_ptr().add(first as usize + 1));
                    let mask = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(e, xv) as u32;
                    let j = first + (mask + 1).trailing_zeros();
                    *b.add(l) = j;
                    left[l] = *self.bounds.get_unchecked(j as usize);
                }
                let left = _mm512_castps_si512(_mm512_loadu_ps(left.as_ptr()));
                let k = _mm512_sub_epi32(key(_mm512_castps_si512(x)), key(left));
                _mm512_storeu_si512(offsets.as_mut_ptr().add(i) as *mut _, k);
            }
        }
        let cells_scalar = cells;
        for i in n16..values.len() {
            let x = values[i];
            let first = self.start[(((x - self.lo_in) * self.inv_width) as usize).min(cells_scalar)] as usize;
            let j = first + self.bounds[first + 1..first + 17].iter().filter(|&&e| e <= x).count();
            bins[i] = j as u32;
            offsets[i] = order_key32(x).wrapping_sub(order_key32(self.bounds[j])) as u32;
        }
    }

    /// Copies the values to bin (inside [lo_in, hi_in], outside the zero bin) to the front of
    /// `buf`, pushes those outside [lo_in, hi_in] to `outside`; returns their count and Σx² of
    /// the values inside.
    fn compact(&self, block: &[f32], buf: &mut [f32], outside: &mut Vec<f32>) -> (usize, f64) {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: AVX-512F support was just checked.
            return unsafe { self.compact_avx512(block, buf, outside) };
        }
        self.compact_scalar(block, buf, outside)
    }

    fn compact_scalar(&self, block: &[f32], buf: &mut [f32], outside: &mut Vec<f32>) -> (usize, f64) {
        let (lo, hi, zl, zh) = (self.lo_in, self.hi_in, self.zero_lo, self.zero_hi);
        let mut lanes = [0f64; 8];
        let mut m = 0;
        for g in block.chunks(8) {
            if g.iter().any(|&x| !(x >= lo && x <= hi)) {
                outside.extend(g.iter().filter(|&&x| !(x >= lo && x <= hi)));
            }
            for (j, &x) in g.iter().enumerate() {
                let inside = x >= lo && x <= hi;
                lanes[j] += if inside { x as f64 * x as f64 } else { 0.0 };
                // Branch-free: written always, kept by advancing m.
                buf[m] = x;
                m += (inside && !(x >= zl && x < zh)) as usize;
            }
        }
        (m, lanes.iter().sum())
    }

    /// [`compact_scalar`](Self::compact_scalar) 16 values at a time (compress, masked adds).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn compact_avx512(&self, block: &[f32], buf: &mut [f32], outside: &mut Vec<f32>) -> (usize, f64) {
        use std::arch::x86_64::*;
        let (lo, hi) = (_mm512_set1_ps(self.lo_in), _mm512_set1_ps(self.hi_in));
        let (zl, zh) = (_mm512_set1_ps(self.zero_lo), _mm512_set1_ps(self.zero_hi));
        let (mut s0, mut s1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut m = 0;
        let mut groups = block.chunks_exact(16);
        for g in &mut groups {
            // SAFETY: g has 16 values; buf has 16 slots past any m ≤ block.len() − 16 + … (m
            // stays ≤ the values read so far, buf.len() = FILL_BLOCK + 16).
            unsafe {
                let x = _mm512_loadu_ps(g.as_ptr());
                let inside = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, lo) & _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, hi);
                if inside != 0xffff {
                    outside.extend(g.iter().filter(|&&v| !(v >= self.lo_in && v <= self.hi_in)));
                }
                let zero = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, zl) & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zh);
                let keep = inside & !zero;
                _mm512_storeu_ps(buf.as_mut_ptr().add(m), _mm512_maskz_compress_ps(keep, x));
                m += keep.count_ones() as usize;
                let x0 = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
                let x1 = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x))));
                s0 = _mm512_mask_add_pd(s0, inside as u8, s0, _mm512_mul_pd(x0, x0));
                s1 = _mm512_mask_add_pd(s1, (inside >> 8) as u8, s1, _mm512_mul_pd(x1, x1));
            }
        }
        let (m2, rest) = self.compact_scalar(groups.remainder(), &mut buf[m..], outside);
        let mut lanes = [0f64; 16];
        // SAFETY: 2 × 8 f64 into 16 slots.
        unsafe {
            _mm512_storeu_pd(lanes.as_mut_ptr(), s0);
            _mm512_storeu_pd(lanes.as_mut_ptr().add(8), s1);
        }
        (m + m2, lanes.iter().sum::<f64>() + rest)
    }
}

/// AVX-512F available (x86-64).
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return true;
    }
    false
}

/// How many of the 4 sorted f32 of `e` are ≤ x.
#[inline(always)]
fn count_le4(e: &[f32], x: f32) -> usize {
    let e: &[f32; 4] = e.try_into().expect("4 bounds");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64; e holds 4 f32.
    unsafe {
        use std::arch::x86_64::*;
        // Sorted: the true comparisons form a prefix, mask 0b0…01…1, whose length is the
        // trailing zeros of mask + 1.
        let mask = _mm_movemask_ps(_mm_cmple_ps(_mm_loadu_ps(e.as_ptr()), _mm_set1_ps(x))) as u32;
        (mask + 1).trailing_zeros() as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    e.iter().filter(|&&v| v <= x).count()
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

/// Elements per block of the fast path: 16 KiB of f32, walked by every candidate while in L1/L2.
const BLOCK: usize = 4096;
/// Candidates scored together by the fast path.
const GROUP: usize = 4;

/// `block` (whole groups of LANES, element j of a group in lane j) with the ±0 elements of each
/// lane removed, keeping each lane's order, lanes padded with +0 to equal length — or `block`
/// itself when fewer than a quarter of its elements are zero (packing would not pay).
fn pack_nonzero_lanes<'a>(block: &'a [f32], packed: &'a mut Vec<f32>) -> &'a [f32] {
    let zeros = block.iter().filter(|&&x| x == 0.0).count();
    if zeros * 4 < block.len() {
        return block;
    }
    packed.clear();
    packed.resize(block.len(), 0.0);
    let mut count = [0usize; LANES];
    for group in block.chunks_exact(LANES) {
        for j in 0..LANES {
            // Branch-free: a zero is written too but not counted, so the next element of the
            // lane overwrites it (or it stays, a +0 / −0 that adds nothing).
            let x = group[j];
            packed[count[j] * LANES + j] = x;
            count[j] += (x != 0.0) as usize;
        }
    }
    let rows = count.iter().copied().max().unwrap_or(0);
    // Slots at or past a lane's count hold +0 or a ±0 element: adding their error (+0) is a no-op.
    packed.truncate(rows * LANES);
    packed
}

/// Up to [`GROUP`] candidates over whole groups of LANES elements (element j into lane j).
fn accumulate_group(cands: &[Candidate], sums: &mut [[f64; LANES]], data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let mut c = [cands[0]; GROUP];
        let mut acc = [[0f64; LANES]; GROUP];
        c[..cands.len()].copy_from_slice(cands);
        acc[..cands.len()].copy_from_slice(sums);
        if std::arch::is_x86_feature_detected!("avx512vl") {
            // SAFETY: AVX2 and AVX-512F/VL support were just checked.
            unsafe { avx2::accumulate_group_vl(&c, &mut acc, data) };
        } else {
            // SAFETY: AVX2 support was just checked.
            unsafe { avx2::accumulate_group(&c, &mut acc, data) };
        }
        sums.copy_from_slice(&acc[..cands.len()]);
        return;
    }
    for (c, acc) in cands.iter().zip(sums.iter_mut()) {
        for chunk in data.chunks_exact(LANES) {
            for j in 0..LANES {
                acc[j] += sq_err(*c, chunk[j]);
            }
        }
    }
}

#[cfg(test)]
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
#[cfg(test)]
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

    use super::{Candidate, GROUP, LANES};

    #[cfg(test)]
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
    /// [`GROUP`] candidates at once over the same data: per candidate exactly the operations of
    /// [`accumulate_lanes`] in the same order, so the sums are bit-identical to it.
    /// The quotient `clamped / scale` is taken as `clamped · (1 / scale)` and re-done with the
    /// division whenever that product lies within 2^-13 of a rounding boundary (k + ½): the
    /// product is within 2^-22·|t| ≤ 2^-14 (|t| ≤ 256) of the correctly rounded quotient, so
    /// elsewhere both round to the same integer.
    #[target_feature(enable = "avx2")]
    pub(super) fn accumulate_group(c: &[Candidate; GROUP], acc: &mut [[f64; LANES]; GROUP], data: &[f32]) {
        // SAFETY: AVX2 is enabled here.
        unsafe { group_body(c, acc, data) }
    }

    /// The same with AVX-512VL enabled: 32 vector registers, so nothing spills.
    #[target_feature(enable = "avx2,avx512f,avx512vl")]
    pub(super) fn accumulate_group_vl(c: &[Candidate; GROUP], acc: &mut [[f64; LANES]; GROUP], data: &[f32]) {
        // SAFETY: AVX2 is enabled here.
        unsafe { group_body(c, acc, data) }
    }

    /// # Safety
    /// The CPU must support AVX2; inlined into the callers above, which enable it.
    #[inline(always)]
    unsafe fn group_body(c: &[Candidate; GROUP], acc: &mut [[f64; LANES]; GROUP], data: &[f32]) {
        unsafe {
            let magic = _mm256_set1_ps(12_582_912.0);
            let tol = _mm256_set1_ps(0.5 - 1.0 / 8192.0);
            let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
            let lo: [__m256; GROUP] = std::array::from_fn(|k| _mm256_set1_ps(c[k].lo));
            let hi: [__m256; GROUP] = std::array::from_fn(|k| _mm256_set1_ps(c[k].hi));
            let scale: [__m256; GROUP] = std::array::from_fn(|k| _mm256_set1_ps(c[k].scale));
            let inv: [__m256; GROUP] = std::array::from_fn(|k| _mm256_set1_ps(1.0 / c[k].scale));
            let mut a: [[__m256d; 2]; GROUP] =
                std::array::from_fn(|k| [_mm256_loadu_pd(acc[k].as_ptr()), _mm256_loadu_pd(acc[k].as_ptr().add(4))]);
            for chunk in data.chunks_exact(LANES) {
                let x = _mm256_loadu_ps(chunk.as_ptr());
                let clamped: [__m256; GROUP] = std::array::from_fn(|k| _mm256_min_ps(_mm256_max_ps(x, lo[k]), hi[k]));
                let mut rounded: [__m256; GROUP] =
                    std::array::from_fn(|k| _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(clamped[k], inv[k]), magic), magic));
                let mut near = _mm256_setzero_ps();
                for k in 0..GROUP {
                    let t = _mm256_mul_ps(clamped[k], inv[k]);
                    let frac = _mm256_and_ps(_mm256_sub_ps(t, rounded[k]), abs_mask);
                    near = _mm256_or_ps(near, _mm256_cmp_ps::<_CMP_GT_OQ>(frac, tol));
                }
                if _mm256_movemask_ps(near) != 0 {
                    for k in 0..GROUP {
                        rounded[k] = _mm256_sub_ps(_mm256_add_ps(_mm256_div_ps(clamped[k], scale[k]), magic), magic);
                    }
                }
                for k in 0..GROUP {
                    let e = _mm256_sub_ps(_mm256_mul_ps(rounded[k], scale[k]), x);
                    let (e0, e1) = (_mm256_cvtps_pd(_mm256_castps256_ps128(e)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(e)));
                    a[k][0] = _mm256_add_pd(a[k][0], _mm256_mul_pd(e0, e0));
                    a[k][1] = _mm256_add_pd(a[k][1], _mm256_mul_pd(e1, e1));
                }
            }
            for k in 0..GROUP {
                _mm256_storeu_pd(acc[k].as_mut_ptr(), a[k][0]);
                _mm256_storeu_pd(acc[k].as_mut_ptr().add(4), a[k][1]);
            }
        }
    }
}

/// True when every value is finite (AVX2 code when available: same answer).
fn all_finite(data: &[f32]) -> bool {
    #[inline(always)]
    fn body(data: &[f32]) -> bool {
        data.iter().fold(true, |ok, v| ok & v.is_finite())
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn avx2(data: &[f32]) -> bool {
        body(data)
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 support was just checked.
        return unsafe { avx2(data) };
    }
    body(data)
}

fn check_finite(tensor: &str, data: &[f32], start: usize) -> Result<()> {
    // A branch-free scan first (the common case: all finite), then the position if not.
    let all_finite = data.chunks(4096).all(all_finite);
    if all_finite {
        return Ok(());
    }
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
    /// Pass 2: squared-error partial sums of every candidate, per element or by bins.
    Errors { search: Search, sums: Vec<[f64; LANES]>, binned: Option<Box<Binned>> },
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
        match &mut self.phase {
            Phase::Extremes { largest, smallest } => {
                let scan = Scan::of(data);
                if !scan.finite {
                    check_finite(&self.tensor, data, self.seen)?;
                }
                keep_extremes(largest, smallest, self.k_max, self.k_min, data, &scan.ranges);
                let fp = scan.fingerprint;
                self.fingerprint = [self.fingerprint[0].wrapping_add(fp[0]), self.fingerprint[1] ^ fp[1]];
            }
            Phase::Errors { search, sums, binned } => {
                let fp = fingerprint(data);
                match binned {
                    Some(b) => b.accumulate(search, data),
                    None => search.accumulate(sums, self.seen, data),
                }
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
        // The bins' u64 sums need fewer than 2^40 values (else the per-element path runs).
        let binnable = !self.params.exact && (self.total as u64) < 1 << 40;
        let binned = if binnable { Binned::new(&search, kth_largest, kth_smallest).map(Box::new) } else { None };
        self.phase = Phase::Errors { search, sums, binned };
        self.seen = 0;
        Ok(())
    }

    /// The calibrated parameters, after pass 2.
    pub fn result(&self) -> Result<IfmrResult> {
        let Phase::Errors { search, sums, binned } = &self.phase else {
            return Err(QuantError::observer(&self.tensor, "result requested before finish_pass1 and pass 2"));
        };
        self.check_count("pass 2")?;
        if self.fingerprint != [0, 0] {
            return Err(QuantError::observer(&self.tensor, "pass 2 saw different values than pass 1 (the data must be repeated exactly)"));
        }
        match binned {
            Some(b) => {
                let totals: Vec<[f64; LANES]> =
                    b.totals(search).into_iter().map(|t| std::array::from_fn(|j| if j == 0 { t } else { 0.0 })).collect();
                Ok(search.finish(&totals, self.total))
            }
            None => Ok(search.finish(sums, self.total)),
        }
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

/// `ranges`: the (min, max) of each [`EXTREMES_CHUNK`] values of `data` ([`Scan`]).
fn keep_extremes(
    largest: &mut BinaryHeap<Reverse<Key>>,
    smallest: &mut BinaryHeap<Key>,
    k_max: usize,
    k_min: usize,
    data: &[f32],
    ranges: &[(f32, f32)],
) {
    // Once both heaps are full, a chunk whose max is ≤ the k-th largest so far and whose min
    // is ≥ the k-th smallest changes neither (the element loop replaces only on a strict
    // inequality): skipped on its scanned range.
    for (chunk, &(lo, hi)) in data.chunks(EXTREMES_CHUNK).zip(ranges) {
        if largest.len() == k_max
            && smallest.len() == k_min
            && let (Some(top), Some(bottom)) = (largest.peek(), smallest.peek())
            && hi <= top.0.0
            && lo >= bottom.0
        {
            continue;
        }
        keep_extremes_each(largest, smallest, k_max, k_min, chunk);
    }
}

/// Elements per (min, max) range of [`Scan`] (the unit [`keep_extremes`] skips).
const EXTREMES_CHUNK: usize = 512;

/// Values per part of [`Scan::of`] (a multiple of [`EXTREMES_CHUNK`]); parts scan in parallel.
const SCAN_PART: usize = 64 * EXTREMES_CHUNK;

/// Pass 1's single read of a batch: the (min, max) of every [`EXTREMES_CHUNK`] values, whether
/// all are finite and the [`fingerprint`] (each chunk read from memory once, then from L1).
struct Scan {
    ranges: Vec<(f32, f32)>,
    finite: bool,
    fingerprint: [u64; 2],
}

impl Scan {
    fn of(data: &[f32]) -> Scan {
        if data.len() < 2 * SCAN_PART {
            return Scan::part(data);
        }
        let parts: Vec<Scan> = data.par_chunks(SCAN_PART).map(Scan::part).collect();
        let mut all = Scan { ranges: Vec::with_capacity(data.len().div_ceil(EXTREMES_CHUNK)), finite: true, fingerprint: [0, 0] };
        for p in parts {
            all.ranges.extend(p.ranges);
            all.finite &= p.finite;
            all.fingerprint = fingerprint_join(all.fingerprint, p.fingerprint);
        }
        all
    }

    /// AVX-512 code when available ([`Self::part_avx512`]), the portable loop compiled for
    /// AVX2 else: the same ranges (up to the sign of a zero extreme, which compares equal),
    /// finiteness and fingerprint.
    fn part(data: &[f32]) -> Scan {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(data: &[f32]) -> Scan {
                Scan::part_lanes(data)
            }
            if std::arch::is_x86_feature_detected!("avx512dq") {
                // SAFETY: AVX-512F/DQ support was just checked.
                return unsafe { Scan::part_avx512(data) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 support was just checked.
                return unsafe { avx2(data) };
            }
        }
        Scan::part_lanes(data)
    }

    /// [`Self::part_lanes`] written out for AVX-512 (the compiler's own vectorization of the
    /// 8-lane min/max loop shuffled every group, ~2 cycles per value): 16 values per step,
    /// min/max with the loop's selection (`if x < lo { x } else { lo }`, which `vminps` is),
    /// finiteness as |x| < ∞, the fingerprint by [`Fingerprint16`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn part_avx512(data: &[f32]) -> Scan {
        use std::arch::x86_64::*;
        let mut scan = Scan { ranges: Vec::with_capacity(data.len().div_ceil(EXTREMES_CHUNK)), finite: true, fingerprint: [0, 0] };
        let (inf, abs_mask) = (_mm512_set1_ps(f32::INFINITY), _mm512_set1_epi32(i32::MAX));
        let mut print = Fingerprint16::new();
        let mut finite: u16 = u16::MAX;
        for chunk in data.chunks(EXTREMES_CHUNK) {
            let (mut lo, mut hi) = (inf, _mm512_set1_ps(f32::NEG_INFINITY));
            let mut groups = chunk.chunks_exact(16);
            for g in &mut groups {
                // SAFETY: g holds 16 values.
                let x = unsafe { _mm512_loadu_ps(g.as_ptr()) };
                lo = _mm512_min_ps(x, lo);
                hi = _mm512_max_ps(x, hi);
                let bits = _mm512_castps_si512(x);
                finite &= _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_castsi512_ps(_mm512_and_si512(bits, abs_mask)), inf);
                print.add(bits);
            }
            let (mut l, mut h) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
            let rest = groups.remainder();
            for &x in rest {
                l = l.min(x);
                h = h.max(x);
            }
            scan.ranges.push((l, h));
            scan.finite &= rest.iter().all(|v| v.is_finite());
            scan.fingerprint = fingerprint_join(scan.fingerprint, fingerprint_lanes(rest));
        }
        scan.finite &= finite == u16::MAX;
        scan.fingerprint = fingerprint_join(scan.fingerprint, print.finish());
        scan
    }

    #[inline(always)]
    fn part_lanes(data: &[f32]) -> Scan {
        let mut scan = Scan { ranges: Vec::with_capacity(data.len().div_ceil(EXTREMES_CHUNK)), finite: true, fingerprint: [0, 0] };
        for chunk in data.chunks(EXTREMES_CHUNK) {
            scan.ranges.push(min_max_lanes(chunk));
            scan.finite &= chunk.iter().fold(true, |ok, v| ok & v.is_finite());
            scan.fingerprint = fingerprint_join(scan.fingerprint, fingerprint_lanes(chunk));
        }
        scan
    }
}

/// (min, max) of finite values, in 8 independent lanes so it vectorizes.
#[inline(always)]
fn min_max_lanes(data: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8]);
    let mut groups = data.chunks_exact(8);
    for g in &mut groups {
        for j in 0..8 {
            lo[j] = if g[j] < lo[j] { g[j] } else { lo[j] };
            hi[j] = if g[j] > hi[j] { g[j] } else { hi[j] };
        }
    }
    for &x in groups.remainder() {
        lo[0] = lo[0].min(x);
        hi[0] = hi[0].max(x);
    }
    (lo.iter().copied().fold(f32::INFINITY, f32::min), hi.iter().copied().fold(f32::NEG_INFINITY, f32::max))
}

fn keep_extremes_each(largest: &mut BinaryHeap<Reverse<Key>>, smallest: &mut BinaryHeap<Key>, k_max: usize, k_min: usize, data: &[f32]) {
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
    // Both halves are commutative and associative: chunks and lanes may be combined in any order.
    let one = |chunk: &[f32]| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512dq") {
            // SAFETY: AVX-512F/DQ support was just checked.
            return unsafe { fingerprint_avx512(chunk) };
        }
        fingerprint_lanes(chunk)
    };
    if data.len() >= 1 << 16 { data.par_chunks(1 << 14).map(one).reduce(|| [0, 0], fingerprint_join) } else { one(data) }
}

fn fingerprint_join(a: [u64; 2], b: [u64; 2]) -> [u64; 2] {
    [a[0].wrapping_add(b[0]), a[1] ^ b[1]]
}

/// [`fingerprint`] of one chunk in 8 independent lanes (vectorizes).
#[inline(always)]
fn fingerprint_lanes(chunk: &[f32]) -> [u64; 2] {
    let one = |[s, x]: [u64; 2], v: f32| {
        let b = v.to_bits() as u64;
        [s.wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15)), x ^ b.rotate_left((b & 63) as u32)]
    };
    let mut lanes = [[0u64; 2]; 8];
    let mut groups = chunk.chunks_exact(8);
    for g in &mut groups {
        for l in 0..8 {
            lanes[l] = one(lanes[l], g[l]);
        }
    }
    let rest = groups.remainder().iter().fold([0, 0], |a, &v| one(a, v));
    lanes.into_iter().fold(rest, fingerprint_join)
}

/// [`fingerprint_lanes`] 16 values at a time ([`Fingerprint16`]), the remainder by it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
fn fingerprint_avx512(chunk: &[f32]) -> [u64; 2] {
    let mut print = Fingerprint16::new();
    let mut groups = chunk.chunks_exact(16);
    for g in &mut groups {
        // SAFETY: g holds 16 values.
        print.add(std::arch::x86_64::_mm512_castps_si512(unsafe { std::arch::x86_64::_mm512_loadu_ps(g.as_ptr()) }));
    }
    fingerprint_join(print.finish(), fingerprint_lanes(groups.remainder()))
}

/// [`fingerprint`]'s sum and xor in two sets of 8 u64 lanes, 16 values per step (the sums and
/// xors do not depend on which lane a value went to: the same answer as the 8-lane loop).
#[cfg(target_arch = "x86_64")]
struct Fingerprint16 {
    sum: std::arch::x86_64::__m512i,
    xor: std::arch::x86_64::__m512i,
}

#[cfg(target_arch = "x86_64")]
impl Fingerprint16 {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        use std::arch::x86_64::_mm512_setzero_si512;
        Fingerprint16 { sum: _mm512_setzero_si512(), xor: _mm512_setzero_si512() }
    }

    /// Adds the 16 f32 bit patterns in `bits`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq")]
    fn add(&mut self, bits: std::arch::x86_64::__m512i) {
        use std::arch::x86_64::*;
        let (golden, low6) = (_mm512_set1_epi64(0x9E37_79B9_7F4A_7C15u64 as i64), _mm512_set1_epi64(63));
        for b in [_mm512_cvtepu32_epi64(_mm512_castsi512_si256(bits)), _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(bits))] {
            self.sum = _mm512_add_epi64(self.sum, _mm512_mullo_epi64(b, golden));
            self.xor = _mm512_xor_si512(self.xor, _mm512_rolv_epi64(b, _mm512_and_si512(b, low6)));
        }
    }

    #[target_feature(enable = "avx512f")]
    fn finish(self) -> [u64; 2] {
        use std::arch::x86_64::_mm512_storeu_si512;
        let (mut s, mut x) = ([0u64; 8], [0u64; 8]);
        // SAFETY: 8 u64 each.
        unsafe {
            _mm512_storeu_si512(s.as_mut_ptr().cast(), self.sum);
            _mm512_storeu_si512(x.as_mut_ptr().cast(), self.xor);
        }
        s.iter().zip(&x).fold([0, 0], |acc, (&s, &x)| fingerprint_join(acc, [s, x]))
    }
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
                    let what = format!("{name} asym={asymmetric} splits {:?}", &splits[..splits.len().min(3)]);
                    // The per-element search repeats the direct one bit for bit.
                    let exact = streamed(&data, IfmrParams { exact: true, ..params }, &splits);
                    assert_eq!(exact, direct, "{what}");
                    // By bins: the same choice, the loss up to the order of the f64 additions.
                    let s = streamed(&data, params, &splits);
                    assert_eq!(
                        (s.quant, s.clip_min, s.clip_max, s.candidate),
                        (direct.quant, direct.clip_min, direct.clip_max, direct.candidate),
                        "{what}"
                    );
                    assert!((s.mse - direct.mse).abs() <= 1e-9 * direct.mse, "{what}: {} vs {}", s.mse, direct.mse);
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
    fn scan_paths_agree() {
        let mut data: Vec<f32> = distributions().into_iter().flat_map(|(_, d)| d.into_iter().take(3000)).collect();
        data.extend([0.0, -0.0, f32::MIN_POSITIVE, -f32::MAX, f32::MAX, 1e-40, -1e-40]);
        let check = |data: &[f32], what: &str| {
            let (fast, portable) = (Scan::part(data), Scan::part_lanes(data));
            assert_eq!(fast.ranges, portable.ranges, "{what}");
            assert_eq!((fast.finite, fast.fingerprint), (portable.finite, portable.fingerprint), "{what}");
            assert_eq!(fingerprint(data), portable.fingerprint, "{what}: pass 2's fingerprint");
        };
        // Chunk and 16-group remainders, a NaN and an infinity at several places.
        for n in [0, 1, 15, 16, 17, 511, 512, 513, 1000, data.len()] {
            check(&data[..n.min(data.len())], &format!("{n} values"));
        }
        for (at, bad) in [(3, f32::NAN), (700, f32::INFINITY), (data.len() - 1, f32::NEG_INFINITY), (517, f32::NAN)] {
            let mut d = data.clone();
            d[at] = bad;
            check(&d, &format!("{bad} at {at}"));
            assert!(!Scan::part(&d).finite);
        }
        assert!(Scan::part(&data).finite);
    }

    #[test]
    fn fast_path_equals_reference_bitwise() {
        let mut r = Rng(11);
        let mut data: Vec<f32> = distributions().into_iter().flat_map(|(_, d)| d.into_iter()).collect();
        // a ReLU-like stretch with many zeros (packed lanes) and values on rounding boundaries
        data.extend((0..50_001).map(|i| {
            if i % 3 == 0 {
                r.gaussian().max(0.0)
            } else if i % 7 == 0 {
                -0.0
            } else {
                0.0
            }
        }));
        data.extend((0..4099).map(|i| (i % 256) as f32 * (3.0 / 255.0) + 0.5 * (3.0 / 255.0)));
        for asymmetric in [true, false] {
            let params = IfmrParams { asymmetric, ..Default::default() };
            let (lo, hi) = data.iter().fold((0f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
            for (kl, ks) in [(hi, lo), (3.0, -1.0), (1e-9, 0.0)] {
                let search = Search::new(&params, kl, ks);
                for start in [0usize, 3, 8] {
                    for split in [data.len(), 5000, 70_000] {
                        let mut fast = vec![[0f64; LANES]; search.candidates.len()];
                        let mut slow = fast.clone();
                        let mut pos = 0;
                        for part in data.chunks(split) {
                            search.accumulate(&mut fast, start + pos, part);
                            search.accumulate_reference(&mut slow, start + pos, part);
                            pos += part.len();
                        }
                        assert_eq!(fast, slow, "asym {asymmetric} max {kl} start {start} split {split}");
                    }
                }
            }
        }
    }

    #[test]
    fn bin_lookup_paths_agree() {
        // The portable compaction and look-up against the dispatched ones (AVX-512 when present).
        let mut data: Vec<f32> = distributions().into_iter().flat_map(|(_, d)| d.into_iter().take(30_000)).collect();
        data.extend([0.0, -0.0, 1e-40, -1e-40, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25]);
        for asymmetric in [true, false] {
            let params = IfmrParams { asymmetric, ..Default::default() };
            for (kl, ks) in [(3.0, -1.0), (2.0, 0.0), (0.37, -4.0)] {
                let Some(b) = Binned::new(&Search::new(&params, kl, ks), kl, ks) else { continue };
                let look = &b.look;
                for block in data.chunks(FILL_BLOCK) {
                    let (mut buf_a, mut buf_b) = (vec![0f32; FILL_BLOCK + 16], vec![0f32; FILL_BLOCK + 16]);
                    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
                    let (ma, sa) = look.compact(block, &mut buf_a, &mut out_a);
                    let (mb, sb) = look.compact_scalar(block, &mut buf_b, &mut out_b);
                    assert_eq!((ma, &buf_a[..ma], &out_a), (mb, &buf_b[..mb], &out_b));
                    assert!((sa - sb).abs() <= 1e-12 * sb, "{sa} vs {sb}");
                    let (mut ja, mut ka, mut jb, mut kb) = (vec![0; ma], vec![0; ma], vec![0; ma], vec![0; ma]);
                    look.locate(&buf_a[..ma], &mut ja, &mut ka);
                    look.locate_scalar(&buf_a[..ma], &mut jb, &mut kb);
                    assert_eq!((&ja, &ka), (&jb, &kb));
                    // Every value lies in its bin, k ulps above the left bound.
                    for ((&x, &j), &k) in buf_a[..ma].iter().zip(&ja).zip(&ka) {
                        let (left, right) = (look.bounds[j as usize], look.bounds[j as usize + 1]);
                        assert!(left <= x && x < right && j as usize != look.zero_bin, "{x} in [{left}, {right})");
                        assert_eq!(x as f64 - left as f64, k as f64 * bin_ulp(left), "{x} from {left}");
                    }
                }
            }
        }
    }

    /// `cargo test --release --lib ifmr::tests::speed_of_the_fast_path -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed_of_the_fast_path() {
        let mut r = Rng(5);
        let data: Vec<f32> = (0..4_000_000).map(|i| if i % 2 == 0 { r.gaussian().max(0.0) } else { r.gaussian() * 0.5 }).collect();
        let search = Search::new(&IfmrParams::default(), 3.0, -1.5);
        for (name, f) in
            [("reference", Search::accumulate_reference as fn(&Search, &mut [[f64; LANES]], usize, &[f32])), ("fast", Search::accumulate)]
        {
            let mut sums = vec![[0f64; LANES]; search.candidates.len()];
            let t = std::time::Instant::now();
            f(&search, &mut sums, 0, &data);
            eprintln!("{name}: {:.3} s", t.elapsed().as_secs_f64());
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

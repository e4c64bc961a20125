//! `calibration --accuracy_target`: leave the fewest multiply-accumulates float (on Ascend a
//! layer without AscendQuant/AscendDequant simply runs in fp16) so that the fake-quant model
//! meets a target against float on the evaluation batches.
//!
//! Search (one calibration; every trial is a subset of the calibrated layers, as
//! [`super::sensitivity`]'s, so nothing is recalibrated; an int8 set is measured once):
//! 1. every layer int8; done if the target holds;
//! 2. each layer int8 alone (the rest float): its output noise power `e_i = 10^(−SQNR_i/10)`.
//!    Output-level, not the layer-local cosine, which does not find the layers that matter;
//!    and alone rather than "left float among int8 layers", whose gains on PP-OCRv4 det were
//!    a few tenths of a dB for most layers, at the noise level of the measurement.
//!    Screened: every layer runs on the first third of the evaluation batches, and only the
//!    layers whose noise there is not far below the noise that matters run on the rest, when
//!    a step below reads them ([`LOUD_MARGIN_DB`], [`SCREEN_MARGIN_DB`]); a completed trial
//!    equals the unscreened one bit for bit. On PP-OCRv4 det most layers are 20–100 dB
//!    quieter than the model's int8 noise, and their trials took two thirds of the search;
//! 3. a. the loudest layers alone float: the fewest k (k = 1, 2, 4, … then a binary search)
//!    with which all but the k loudest int8 meet the target. When k = 1 (the fewest float
//!    layers possible), quieter layers of fewer MACs are tried as the one float layer instead,
//!    loudest first, until one misses, and that is the answer;
//!    b. else also, if the noise of independent layers adds, the best int8 set for a noise
//!    budget is a knapsack over MACs with weights `e_i`: the layers are ranked by `e_i` per
//!    MAC (cheapest noise per quantized MAC first) and a binary search finds the longest
//!    prefix of the ranking that, int8 with the rest float, meets the target (as AMCT's
//!    accuracy-based calibration searches its ranking): ⌈log2 n⌉ trials, where a greedy
//!    re-ranking would cost n per step;
//! 4. small layers rank late per MAC although many add next to no noise: of the layers left
//!    float, ordered by `e_i` alone, the longest prefix that can go int8 too is found by a
//!    second binary search; of 3a and 3b–4, the set with more int8 MACs is kept. Noise is
//!    not monotone in the set (on PP-OCRv4 det, leaving `p2o.Conv.6` float *lowers* the
//!    all-int8 SQNR), so the binary searches can land anywhere; 3a makes the common case —
//!    one or a few loud layers — independent of where;
//! 5. noise is not exactly additive, so the layers still float, largest MACs first, are tried
//!    int8 again one at a time and stay int8 when the target still holds.
//!
//! The chosen set was measured by a trial, and the calibration's own evaluation of the final
//! model verifies it. When only the all-float model meets the target, that is an error.
//! Cost: 1 + n screened + up to 4·⌈log2 n⌉ + min(float, [`MAX_PRUNE`]) trials for n layers.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::calibrate::{CalibrateError, Result};
use super::deploy::QuantizedLayer;
use super::sensitivity::{Screened, Trial, TrialRunner};
use crate::tasks::TASK_METRICS;

/// At most this many chosen layers are re-tried int8 in step 4.
pub const MAX_PRUNE: usize = 16;

/// Step 2 screens: a layer whose int8-alone output SQNR on the first third of the batches
/// is this far above the noise that matters ([`AccuracyTarget::noise_reference_db`]) is not
/// run on the rest for the noise-per-MAC ranking. Its noise is then at most 1 % of that; on
/// PP-OCRv4 det (9 held-out images) a subset's estimate was off by up to 3.7 dB.
pub const SCREEN_MARGIN_DB: f64 = 20.0;

/// The same for the loudest-first search, which orders only the loud layers: noise at most
/// 10 % of the reference.
pub const LOUD_MARGIN_DB: f64 = 10.0;

/// The batches step 2 screens on: a third of them, none (all run) below 3.
pub fn screen_batches(batches: usize) -> usize {
    if batches < 3 { batches } else { batches.div_ceil(3) }
}

/// What one term of the target is measured on.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Output cosine similarity over all evaluation batches.
    Cosine,
    /// Output SQNR in dB over all evaluation batches.
    SqnrDb,
    /// A task metric's mean over the evaluation batches (needs `--task`).
    Task(String),
}

/// `METRIC>=VALUE`, every term must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyTarget {
    pub terms: Vec<(Metric, f64)>,
}

fn bad(detail: String) -> CalibrateError {
    CalibrateError::Argument { flag: "--accuracy_target", detail }
}

impl FromStr for AccuracyTarget {
    type Err = CalibrateError;

    /// `"f1>=0.99"`, `"cosine>=0.995,sqnr>=20"`: comma-separated terms, all required.
    fn from_str(s: &str) -> Result<AccuracyTarget> {
        let expected =
            || format!("expected METRIC>=VALUE terms separated by commas, METRIC one of cosine, sqnr, {}", TASK_METRICS.join(", "));
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim) {
            let (m, v) = term.split_once(">=").ok_or_else(|| bad(format!("{term:?}: {}", expected())))?;
            let value: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| bad(format!("{term:?}: {v:?} is not a finite number")))?;
            let metric = match m.trim() {
                "cosine" => Metric::Cosine,
                "sqnr" | "sqnr_db" => Metric::SqnrDb,
                t if TASK_METRICS.contains(&t) => Metric::Task(t.to_string()),
                other => return Err(bad(format!("unknown metric {other:?}: {}", expected()))),
            };
            if metric == Metric::Cosine && !(-1.0..=1.0).contains(&value) {
                return Err(bad(format!("{term:?}: a cosine similarity is in [-1, 1]")));
            }
            terms.push((metric, value));
        }
        Ok(AccuracyTarget { terms })
    }
}

impl fmt::Display for AccuracyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.terms.iter().map(|(m, v)| format!("{}>={v}", m.name())).collect();
        f.write_str(&parts.join(","))
    }
}

impl Metric {
    fn name(&self) -> &str {
        match self {
            Metric::Cosine => "cosine",
            Metric::SqnrDb => "sqnr",
            Metric::Task(t) => t,
        }
    }

    /// The trial's value; an error when a task metric was not measured (no `--task`, or a
    /// metric the task does not have).
    fn of(&self, t: &Trial) -> Result<f64> {
        match self {
            Metric::Cosine => Ok(t.cosine),
            Metric::SqnrDb => Ok(t.sqnr_db),
            Metric::Task(name) => match &t.task {
                Some(a) => a.mean.get(name).copied().ok_or_else(|| {
                    bad(format!(
                        "task {} has no metric {name:?} (it has {})",
                        a.task,
                        a.mean.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                }),
                None => Err(bad(format!("{name:?} is a task metric: give --task too"))),
            },
        }
    }
}

impl AccuracyTarget {
    /// Whether a trial meets every term (NaN never does).
    pub fn met_by(&self, t: &Trial) -> Result<bool> {
        for (m, min) in &self.terms {
            let v = m.of(t)?;
            if v.is_nan() || v < *min {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The output SQNR (dB) around which layers' noise decides the search: the highest of
    /// the all-int8 model's, the SQNR terms' and the SQNR that the cosine terms amount to for
    /// unbiased noise (`1 − cos ≈ noise / 2`). Task terms add nothing (no SQNR equivalent).
    pub fn noise_reference_db(&self, all_int8_sqnr_db: f64) -> f64 {
        let mut db = if all_int8_sqnr_db.is_finite() { all_int8_sqnr_db } else { f64::NEG_INFINITY };
        for (m, v) in &self.terms {
            let term = match m {
                Metric::SqnrDb => *v,
                Metric::Cosine if *v < 1.0 => -10.0 * (2.0 * (1.0 - v)).log10(),
                Metric::Cosine => f64::INFINITY,
                Metric::Task(_) => continue,
            };
            db = db.max(term);
        }
        // Nothing to compare with: every layer counts.
        if db == f64::NEG_INFINITY { f64::INFINITY } else { db }
    }

    /// The highest SQNR term, if any.
    fn min_sqnr_db(&self) -> Option<f64> {
        self.terms.iter().filter(|(m, _)| *m == Metric::SqnrDb).map(|&(_, v)| v).reduce(f64::max)
    }

    /// Whether a term needs `--task`.
    pub fn needs_task(&self) -> bool {
        self.terms.iter().any(|(m, _)| matches!(m, Metric::Task(_)))
    }
}

/// A layer the search left float.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FallbackLayer {
    pub name: String,
    pub macs: u64,
    /// Output SQNR (dB) vs float with only this layer int8.
    pub alone_sqnr_db: f64,
    /// The same in output cosine.
    pub alone_cosine: f64,
}

/// What the search did (`"fallback"` in quant_report.json and the summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fallback {
    pub target: String,
    pub method: &'static str,
    pub all_int8: Trial,
    /// The chosen set's trial (equal to the calibration's final evaluation of the first output).
    pub result: Trial,
    /// In graph order.
    pub float_layers: Vec<FallbackLayer>,
    pub trials: usize,
    /// Of those, trials stopped before their last batch: an SQNR term could no longer be met.
    pub trials_stopped_early: usize,
    /// Quantized layers' MACs over all calibrated layers' MACs, after the fallback.
    pub int8_mac_share: f64,
}

/// Runs the search of the module doc over `layers` (graph order) with their `macs`;
/// `known`: the all-int8 trial and each layer's int8-alone trial when already measured
/// (`--sensitivity`).
pub fn search(
    runner: &mut TrialRunner,
    layers: &[QuantizedLayer],
    macs: &[u64],
    known: Option<(&Trial, Vec<Trial>)>,
    target: &AccuracyTarget,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Fallback> {
    let n = layers.len();
    let log = (usize::BITS - n.leading_zeros()) as usize;
    let budget = 1 + n + 4 * log + MAX_PRUNE.min(n);
    let mut s = Searcher { run: Runner { runner, layers }, target, budget, progress, measured: HashMap::new() };
    let (all_int8, mut alone) = match known {
        Some((all, alone)) => (all.clone(), Alone::Known(alone)),
        None => {
            let all = s.trial(&(0..n).collect::<Vec<_>>())?;
            let alone = if target.met_by(&all)? {
                Alone::Known(Vec::new())
            } else {
                let subsets: Vec<Vec<QuantizedLayer>> = layers.iter().map(|l| vec![l.clone()]).collect();
                let screen = screen_batches(s.run.runner.batches());
                let progress = &mut *s.progress;
                let screened = s.run.runner.screen(subsets, screen, &mut |r| progress(r.trials, budget))?;
                Alone::Screened { screened, reference_db: target.noise_reference_db(all.sqnr_db) }
            };
            (all, alone)
        }
    };
    s.measured.insert((0..n).collect(), Some(all_int8.clone()));
    let finish = |int8: &[usize], result: Trial, (trials, trials_stopped_early): (usize, usize), alone: &[Trial]| {
        let total: u64 = macs.iter().sum();
        Fallback {
            target: target.to_string(),
            method: "the loudest int8-alone layers float (galloping search), else int8-alone output noise per MAC ranking with a binary search for the longest int8 prefix and regrowth by noise (binary search); then regrowth by MACs",
            int8_mac_share: if total == 0 { int8.len() as f64 / n.max(1) as f64 } else { int8_macs(int8, macs) as f64 / total as f64 },
            float_layers: (0..n)
                .filter(|i| !int8.contains(i))
                .map(|i| FallbackLayer {
                    name: layers[i].name.clone(),
                    macs: macs[i],
                    alone_sqnr_db: alone[i].sqnr_db,
                    alone_cosine: alone[i].cosine,
                })
                .collect(),
            all_int8: all_int8.clone(),
            result,
            trials,
            trials_stopped_early,
        }
    };
    if target.met_by(&all_int8)? {
        return Ok(finish(&(0..n).collect::<Vec<_>>(), all_int8.clone(), (s.run.runner.trials, 0), &[]));
    }
    let loud = alone.complete_louder_than(s.run.runner, LOUD_MARGIN_DB)?;
    let chosen = s.choose(&loud, &mut |r: &mut Runner| alone.complete_louder_than(r.runner, SCREEN_MARGIN_DB), macs)?;
    let Some((int8, best)) = chosen else {
        let best_alone = alone.trials(s.run.runner).iter().map(|t| t.sqnr_db).fold(f64::NEG_INFINITY, f64::max);
        return Err(CalibrateError::Argument {
            flag: "--accuracy_target",
            detail: format!(
                "{target} is not met with any layer int8 on the evaluation batches (all int8: cosine {:.6}, SQNR {:.2} dB; \
                 the least harmful layer int8 alone: SQNR {best_alone:.2} dB): nothing was written",
                all_int8.cosine, all_int8.sqnr_db
            ),
        });
    };
    // A layer left float reports its alone trial on every batch.
    let float: Vec<usize> = (0..n).filter(|i| !int8.contains(i)).collect();
    let alone = alone.complete(s.run.runner, &float)?;
    Ok(finish(&int8, best, (s.run.runner.trials, s.run.runner.stopped_early), &alone))
}

/// Step 2's trials: known (`--sensitivity`), or screened on a third of the batches and
/// completed where the search needs them.
enum Alone {
    Known(Vec<Trial>),
    Screened { screened: Screened, reference_db: f64 },
}

impl Alone {
    /// The trials as far as they ran.
    fn trials(&self, runner: &TrialRunner) -> Vec<Trial> {
        match self {
            Alone::Known(t) => t.clone(),
            Alone::Screened { screened, .. } => runner.screened_trials(screened),
        }
    }

    /// Completes the trials of `which` on every batch.
    fn complete(&mut self, runner: &mut TrialRunner, which: &[usize]) -> Result<Vec<Trial>> {
        if let Alone::Screened { screened, .. } = self {
            runner.complete(screened, which)?;
        }
        Ok(self.trials(runner))
    }

    /// Completes every trial whose screened SQNR is not `margin_db` above the reference
    /// (NaN included), then all the trials.
    fn complete_louder_than(&mut self, runner: &mut TrialRunner, margin_db: f64) -> Result<Vec<Trial>> {
        let which: Vec<usize> = match self {
            Alone::Known(_) => Vec::new(),
            Alone::Screened { screened, reference_db } => {
                let quiet_above = *reference_db + margin_db;
                (0..screened.screened.len())
                    .filter(|&i| screened.screened[i].sqnr_db.is_nan() || screened.screened[i].sqnr_db < quiet_above)
                    .collect()
            }
        };
        self.complete(runner, &which)
    }
}

/// Runs one trial of the search: the layers `int8` (ascending indices) int8, the rest float.
trait RunTrial {
    fn run_trial(&mut self, int8: &[usize]) -> Result<Trial>;
    /// The trial, or None when it is sure to end below `min_sqnr_db` (then it may stop early).
    fn run_unless_below(&mut self, int8: &[usize], min_sqnr_db: f64) -> Result<Option<Trial>> {
        let t = self.run_trial(int8)?;
        Ok((t.sqnr_db >= min_sqnr_db).then_some(t))
    }
    /// Trials run so far (for progress).
    fn count(&self) -> usize;
}

/// The calibration's trials.
struct Runner<'r, 'a> {
    runner: &'r mut TrialRunner<'a>,
    layers: &'r [QuantizedLayer],
}

impl RunTrial for Runner<'_, '_> {
    fn run_trial(&mut self, int8: &[usize]) -> Result<Trial> {
        let subset: Vec<QuantizedLayer> = int8.iter().map(|&i| self.layers[i].clone()).collect();
        self.runner.run(&subset)
    }

    fn run_unless_below(&mut self, int8: &[usize], min_sqnr_db: f64) -> Result<Option<Trial>> {
        let subset: Vec<QuantizedLayer> = int8.iter().map(|&i| self.layers[i].clone()).collect();
        self.runner.run_unless_below(&subset, min_sqnr_db)
    }

    fn count(&self) -> usize {
        self.runner.trials
    }
}

/// The trials of the search, each int8 set measured once.
struct Searcher<'p, R: RunTrial> {
    run: R,
    target: &'p AccuracyTarget,
    budget: usize,
    progress: &'p mut dyn FnMut(usize, usize),
    /// By int8 set (ascending layer indices); None: stopped early, known to miss.
    measured: HashMap<Vec<usize>, Option<Trial>>,
}

impl<R: RunTrial> Searcher<'_, R> {
    /// The trial with the layers `int8` (ascending) int8, the rest float.
    fn trial(&mut self, int8: &[usize]) -> Result<Trial> {
        if let Some(Some(t)) = self.measured.get(int8) {
            return Ok(t.clone());
        }
        let t = self.run.run_trial(int8)?;
        (self.progress)(self.run.count(), self.budget);
        self.measured.insert(int8.to_vec(), Some(t.clone()));
        Ok(t)
    }

    /// Steps 3–5 over the alone trials `loud` (complete for the loud layers); `ranked()`
    /// gives those the noise-per-MAC ranking reads, when it runs. None when only all float
    /// meets the target.
    fn choose(
        &mut self,
        loud: &[Trial],
        ranked: &mut dyn FnMut(&mut R) -> Result<Vec<Trial>>,
        macs: &[u64],
    ) -> Result<Option<(Vec<usize>, Trial)>> {
        let n = loud.len();
        let mut loudest = self.loudest_float(loud)?;
        // Steps 3b and 4, unless one layer float (the fewest possible) already meets it.
        let by_mac = match &mut loudest {
            Some((int8, t)) if int8.len() + 1 == n => {
                // Then only one float layer of fewer MACs does better: quieter layers of
                // fewer MACs are tried in its place, loudest first, until one misses.
                let mut float = (0..n).find(|i| !int8.contains(i)).expect("one float layer");
                for i in loudest_first(loud) {
                    if macs[i] >= macs[float] {
                        continue;
                    }
                    let all_but: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                    match self.meets(&all_but)? {
                        Some(better) => (float, *int8, *t) = (i, all_but, better),
                        None => break,
                    }
                }
                None
            }
            _ => {
                let alone = ranked(&mut self.run)?;
                self.by_noise_per_mac(&alone, macs)?
            }
        };
        let chosen = match (loudest, by_mac) {
            (Some(l), Some(m)) => Some(if int8_macs(&l.0, macs) > int8_macs(&m.0, macs) { l } else { m }),
            (l, m) => l.or(m),
        };
        let Some((mut int8, mut best)) = chosen else { return Ok(None) };
        // Step 5: noise is not exactly additive; the float layers, largest first, go int8
        // again one at a time when the target still holds.
        let mut regrow: Vec<usize> = (0..n).filter(|i| !int8.contains(i)).collect();
        regrow.sort_by_key(|&i| std::cmp::Reverse(macs[i]));
        for i in regrow.into_iter().take(MAX_PRUNE) {
            let mut with = int8.clone();
            with.push(i);
            with.sort_unstable();
            if let Some(t) = self.meets(&with)? {
                (int8, best) = (with, t);
            }
        }
        Ok(Some((int8, best)))
    }

    /// The trial of `int8` if it meets the target. With an SQNR term, a trial stops as soon
    /// as it cannot meet it.
    fn meets(&mut self, int8: &[usize]) -> Result<Option<Trial>> {
        let t = match self.measured.get(int8) {
            Some(known) => known.clone(),
            None => {
                let t = match self.target.min_sqnr_db() {
                    Some(min) => self.run.run_unless_below(int8, min)?,
                    None => Some(self.run.run_trial(int8)?),
                };
                (self.progress)(self.run.count(), self.budget);
                self.measured.insert(int8.to_vec(), t.clone());
                t
            }
        };
        match t {
            Some(t) if self.target.met_by(&t)? => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// Step 3a: the fewest of the loudest layers alone (output noise descending, NaN first)
    /// left float that meets the target: k = 1, 2, 4, … until it holds, then a binary
    /// search below. None when only all float would.
    fn loudest_float(&mut self, alone: &[Trial]) -> Result<Option<(Vec<usize>, Trial)>> {
        let n = alone.len();
        let order = loudest_first(alone);
        let all_but = |k: usize| {
            let mut v = order[k..].to_vec();
            v.sort_unstable();
            v
        };
        // miss: k known to miss (0: all int8); hit: k known to meet (n: all float, assumed).
        let (mut miss, mut hit, mut found) = (0, n, None);
        let mut k = 1;
        while k < n {
            if let Some(t) = self.meets(&all_but(k))? {
                (hit, found) = (k, Some(t));
                break;
            }
            miss = k;
            k *= 2;
        }
        while hit - miss > 1 {
            let mid = miss + (hit - miss) / 2;
            match self.meets(&all_but(mid))? {
                Some(t) => (hit, found) = (mid, Some(t)),
                None => miss = mid,
            }
        }
        Ok(found.map(|t| (all_but(hit), t)))
    }

    /// Steps 3b and 4: the longest int8 prefix of the noise-per-MAC ranking, then the
    /// longest prefix of the rest by noise alone that can go int8 too.
    fn by_noise_per_mac(&mut self, alone: &[Trial], macs: &[u64]) -> Result<Option<(Vec<usize>, Trial)>> {
        let n = alone.len();
        let ranking = rank(alone, macs);
        let sorted = |v: Vec<usize>| {
            let mut v = v;
            v.sort_unstable();
            v
        };
        // lo int8 layers: known (lo = 0: all float, assumed) to meet the target; hi: known to miss.
        let (mut lo, mut hi, mut best) = (0usize, n, None::<Trial>);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if let Some(t) = self.meets(&sorted(ranking[..mid].to_vec()))? {
                (lo, best) = (mid, Some(t));
            } else {
                hi = mid;
            }
        }
        let mut int8: Vec<usize> = ranking[..lo].to_vec();
        // Small layers rank late per MAC although many add almost no noise.
        let mut quiet = ranking[lo..].to_vec();
        quiet.sort_by(|&a, &b| noise(&alone[a]).total_cmp(&noise(&alone[b])).then(a.cmp(&b)));
        // All of them int8 is the all-int8 model, known to miss.
        let (mut lo, mut hi) = (0usize, quiet.len());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if let Some(t) = self.meets(&sorted(int8.iter().chain(&quiet[..mid]).copied().collect()))? {
                (lo, best) = (mid, Some(t));
            } else {
                hi = mid;
            }
        }
        int8.extend_from_slice(&quiet[..lo]);
        Ok(best.map(|t| (sorted(int8), t)))
    }
}

/// The MACs of the layers `int8`.
fn int8_macs(int8: &[usize], macs: &[u64]) -> u64 {
    int8.iter().map(|&i| macs[i]).sum()
}

/// Layer indices by int8-alone output noise, descending (NaN first).
fn loudest_first(alone: &[Trial]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..alone.len()).collect();
    order.sort_by(|&a, &b| noise(&alone[b]).total_cmp(&noise(&alone[a])).then(a.cmp(&b)));
    order
}

/// The output noise power relative to the signal, `10^(−SQNR/10)`; NaN counts as infinite.
fn noise(t: &Trial) -> f64 {
    let e = 10f64.powf(-t.sqnr_db / 10.0);
    if e.is_nan() { f64::INFINITY } else { e }
}

/// Layer indices, best int8 candidates first: output noise power of the layer int8 alone per
/// MAC, ascending (a NaN SQNR ranks last).
fn rank(alone: &[Trial], macs: &[u64]) -> Vec<usize> {
    let cost = |i: usize| noise(&alone[i]) / macs[i].max(1) as f64;
    let mut order: Vec<usize> = (0..alone.len()).collect();
    order.sort_by(|&a, &b| cost(a).total_cmp(&cost(b)).then(a.cmp(&b)));
    order
}

/// `<prefix>_fallback.cfg`: the user's config (or `batch_num`) with the chosen layers added to
/// `skip_layers`, so that `--calibration_config` reproduces the result (amct_onnx reads it too).
pub fn render_cfg(user_config: Option<&str>, batch_num: usize, fallback: &Fallback) -> String {
    let mut out = format!(
        "# ascend-ptq calibration --accuracy_target \"{}\": {} layer(s) left float\n",
        fallback.target,
        fallback.float_layers.len()
    );
    match user_config {
        Some(text) => {
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        }
        None => out.push_str(&format!("batch_num: {batch_num}\n")),
    }
    for l in &fallback.float_layers {
        out.push_str(&format!("skip_layers: \"{}\"\n", super::record::escape(&l.name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(cosine: f64, sqnr_db: f64) -> Trial {
        Trial { cosine, sqnr_db, task: None }
    }

    #[test]
    fn parses_terms_and_rejects_bad_ones() {
        let t: AccuracyTarget = "f1>=0.99, cosine>=0.995,sqnr>=20".parse().unwrap();
        assert_eq!(t.terms, vec![(Metric::Task("f1".into()), 0.99), (Metric::Cosine, 0.995), (Metric::SqnrDb, 20.0)]);
        assert_eq!(t.to_string(), "f1>=0.99,cosine>=0.995,sqnr>=20");
        assert!(t.needs_task());
        for bad in ["f1>0.9", "mse>=1", "cosine>=1.5", "sqnr>=inf", "cosine>=x", ""] {
            let e = bad.parse::<AccuracyTarget>().unwrap_err().to_string();
            assert!(e.contains("--accuracy_target"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_task_term_without_a_task_is_an_error_and_nan_never_meets() {
        let t: AccuracyTarget = "top1>=0.9".parse().unwrap();
        assert!(t.met_by(&trial(1.0, 50.0)).unwrap_err().to_string().contains("--task"));
        let c: AccuracyTarget = "cosine>=0.5".parse().unwrap();
        assert!(!c.met_by(&trial(f64::NAN, 1.0)).unwrap());
        assert!(c.met_by(&trial(0.5, 1.0)).unwrap());
    }

    /// Additive noise: a trial's SQNR is −10·log10 of its int8 layers' summed `e`.
    struct Additive {
        e: Vec<f64>,
        runs: usize,
    }

    impl RunTrial for Additive {
        fn run_trial(&mut self, int8: &[usize]) -> Result<Trial> {
            self.runs += 1;
            Ok(trial(0.0, -10.0 * int8.iter().map(|&i| self.e[i]).sum::<f64>().log10()))
        }

        fn count(&self) -> usize {
            self.runs
        }
    }

    /// The search's choice (float layers) and the trials it ran; `ranked` says whether the
    /// noise-per-MAC search ran.
    fn choose(e: &[f64], macs: &[u64], target: &str) -> (Option<Vec<usize>>, usize, bool) {
        let target: AccuracyTarget = target.parse().unwrap();
        let alone: Vec<Trial> = e.iter().map(|&x| trial(0.0, -10.0 * x.log10())).collect();
        let mut progress = |_: usize, _: usize| {};
        let mut s = Searcher {
            run: Additive { e: e.to_vec(), runs: 0 },
            target: &target,
            budget: 0,
            progress: &mut progress,
            measured: HashMap::new(),
        };
        let mut ranked = false;
        let chosen = s
            .choose(
                &alone,
                &mut |_| {
                    ranked = true;
                    Ok(alone.clone())
                },
                macs,
            )
            .unwrap();
        let float = chosen.map(|(int8, _)| (0..e.len()).filter(|i| !int8.contains(i)).collect());
        (float, s.run.runs, ranked)
    }

    #[test]
    fn one_loud_layer_is_left_float_in_a_trial_or_two() {
        // All int8: 0.0541 (12.7 dB); all but layer 0: 0.0041 (23.9 dB).
        let e = [0.05, 1e-3, 1e-3, 2e-3, 1e-4];
        let (float, runs, ranked) = choose(&e, &[100, 1000, 1000, 1000, 1000], "sqnr>=20");
        assert_eq!(float, Some(vec![0]));
        // The gallop's k = 1, then regrowth's all-int8.
        assert_eq!((runs, ranked), (2, false));
    }

    #[test]
    fn a_quieter_layer_of_fewer_macs_replaces_the_loudest_when_it_is_enough() {
        // Float 0: 0.041 (13.9 dB); float 1: 0.051 (12.9 dB); both meet 12.5 dB.
        let (float, _, ranked) = choose(&[0.05, 0.04, 1e-3], &[1000, 10, 1000], "sqnr>=12.5");
        assert_eq!((float, ranked), (Some(vec![1]), false));
        // At 13.5 dB only layer 0 float meets: the replacement misses and stops.
        let (float, _, _) = choose(&[0.05, 0.04, 1e-3], &[1000, 10, 1000], "sqnr>=13.5");
        assert_eq!(float, Some(vec![0]));
    }

    #[test]
    fn the_noise_per_mac_search_wins_when_it_keeps_more_macs_int8() {
        // Budget 10^−1.34 ≈ 0.0457. Loudest first needs layers 0 and 1 float (2 int8 MACs
        // left); the ranking keeps layer 0 (1000 MACs) int8: 0.03.
        let (float, _, ranked) = choose(&[0.03, 0.03, 0.02, 0.02], &[1000, 1000, 1, 1], "sqnr>=13.4");
        assert_eq!((float, ranked), (Some(vec![1, 2, 3]), true));
        // Unreachable with any layer int8.
        assert_eq!(choose(&[0.03, 0.03, 0.02, 0.02], &[1000, 1000, 1, 1], "sqnr>=100").0, None);
    }

    #[test]
    fn screening_reference_and_batches() {
        let t: AccuracyTarget = "sqnr>=16,f1>=0.9".parse().unwrap();
        assert_eq!(t.noise_reference_db(13.8), 16.0);
        assert_eq!(t.noise_reference_db(18.0), 18.0);
        let c: AccuracyTarget = "cosine>=0.995".parse().unwrap();
        assert!((c.noise_reference_db(10.0) - 20.0).abs() < 1e-9);
        let f: AccuracyTarget = "f1>=0.9".parse().unwrap();
        assert_eq!(f.noise_reference_db(f64::NAN), f64::INFINITY, "nothing to compare with: every layer is loud");
        assert_eq!("cosine>=1".parse::<AccuracyTarget>().unwrap().noise_reference_db(10.0), f64::INFINITY);
        assert_eq!([1, 2, 3, 4, 9, 10].map(screen_batches), [1, 2, 1, 2, 3, 4]);
    }

    #[test]
    fn ranking_puts_least_noise_per_mac_first_and_nan_last() {
        // Noise 1e-3 / 100 MACs, 1e-2 / 1000, NaN / 10, 1e-4 / 10, 1e-1 / 1.
        let alone = [trial(0.9, 30.0), trial(0.9, 20.0), trial(0.9, f64::NAN), trial(0.9, 40.0), trial(0.9, 10.0)];
        assert_eq!(rank(&alone, &[100, 1000, 10, 10, 1]), vec![0, 1, 3, 4, 2]);
    }

    #[test]
    fn cfg_adds_skip_layers_to_the_users_config() {
        let f = Fallback {
            target: "cosine>=0.99".into(),
            method: "",
            all_int8: trial(0.9, 10.0),
            result: trial(0.99, 20.0),
            float_layers: vec![FallbackLayer { name: "conv \"a\"".into(), macs: 1, alone_sqnr_db: 1.0, alone_cosine: 0.01 }],
            trials: 3,
            trials_stopped_early: 0,
            int8_mac_share: 0.5,
        };
        let cfg = render_cfg(None, 8, &f);
        assert!(cfg.contains("batch_num: 8\nskip_layers: \"conv \\\"a\\\"\"\n"), "{cfg}");
        let cfg = render_cfg(Some("batch_num: 2\nskip_layers: \"x\""), 8, &f);
        assert!(cfg.contains("batch_num: 2\nskip_layers: \"x\"\nskip_layers: \"conv"), "{cfg}");
        let parsed = super::super::config::CalibrationConfig::parse(&cfg).unwrap();
        assert_eq!(parsed.skip_layers, vec!["x".to_string(), "conv \"a\"".to_string()]);
    }
}

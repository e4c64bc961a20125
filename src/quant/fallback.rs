//! `calibration --accuracy_target`: leave the fewest multiply-accumulates float (on Ascend a
//! layer without AscendQuant/AscendDequant simply runs in fp16) so that the fake-quant model
//! meets a target against float on the evaluation batches.
//!
//! Search (one calibration; every trial is a subset of the calibrated layers, as
//! [`super::sensitivity`]'s, so nothing is recalibrated):
//! 1. every layer int8; done if the target holds;
//! 2. each layer int8 alone (the rest float): its output noise power `e_i = 10^(−SQNR_i/10)`.
//!    Output-level, not the layer-local cosine, which does not find the layers that matter;
//!    and alone rather than "left float among int8 layers", whose gains on PP-OCRv4 det were
//!    a few tenths of a dB for most layers, at the noise level of the measurement;
//! 3. if the noise of independent layers adds, the best int8 set for a noise budget is a
//!    knapsack over MACs with weights `e_i`: the layers are ranked by `e_i` per MAC
//!    (cheapest noise per quantized MAC first) and a binary search finds the longest prefix
//!    of the ranking that, int8 with the rest float, meets the target (as AMCT's
//!    accuracy-based calibration searches its ranking): ⌈log2 n⌉ trials, where a greedy
//!    re-ranking would cost n per step;
//! 4. small layers rank late per MAC although many add next to no noise: of the layers left
//!    float, ordered by `e_i` alone, the longest prefix that can go int8 too is found by a
//!    second binary search;
//! 5. noise is not exactly additive, so the layers still float, largest MACs first, are tried
//!    int8 again one at a time and stay int8 when the target still holds.
//!
//! The chosen set was measured by a trial, and the calibration's own evaluation of the final
//! model verifies it. When only the all-float model meets the target, that is an error.
//! Cost: 1 + n + 2·⌈log2 n⌉ + min(float, [`MAX_PRUNE`]) trials for n layers.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::calibrate::{CalibrateError, Result};
use super::deploy::QuantizedLayer;
use super::sensitivity::{Trial, TrialRunner};
use crate::tasks::TASK_METRICS;

/// At most this many chosen layers are re-tried int8 in step 4.
pub const MAX_PRUNE: usize = 16;

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
    let budget = 1 + n + 2 * (usize::BITS - n.leading_zeros()) as usize + MAX_PRUNE.min(n);
    let step = |runner: &mut TrialRunner, int8: &[usize], progress: &mut dyn FnMut(usize, usize)| -> Result<Trial> {
        let subset: Vec<QuantizedLayer> = (0..n).filter(|i| int8.contains(i)).map(|i| layers[i].clone()).collect();
        let t = runner.run(&subset);
        progress(runner.trials, budget);
        t
    };
    let (all_int8, alone) = match known {
        Some((all, alone)) => (all.clone(), alone),
        None => {
            let all = step(runner, &(0..n).collect::<Vec<_>>(), &mut *progress)?;
            let alone = if target.met_by(&all)? {
                Vec::new()
            } else {
                let subsets: Vec<Vec<QuantizedLayer>> = layers.iter().map(|l| vec![l.clone()]).collect();
                runner.run_many(&subsets, &mut |r| progress(r.trials, budget))?
            };
            (all, alone)
        }
    };
    let finish = |int8: &[usize], result: Trial, trials: usize| {
        let total: u64 = macs.iter().sum();
        let kept: u64 = int8.iter().map(|&i| macs[i]).sum();
        Fallback {
            target: target.to_string(),
            method: "int8-alone output noise per MAC ranking, binary search for the longest int8 prefix, regrowth by noise (binary search) and by MACs",
            int8_mac_share: if total == 0 { int8.len() as f64 / n.max(1) as f64 } else { kept as f64 / total as f64 },
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
        }
    };
    if target.met_by(&all_int8)? {
        return Ok(finish(&(0..n).collect::<Vec<_>>(), all_int8.clone(), runner.trials));
    }
    let ranking = rank(&alone, macs);
    // lo int8 layers: known (lo = 0: all float, assumed) to meet the target; hi: known to miss.
    let (mut lo, mut hi, mut best) = (0usize, n, None::<Trial>);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let t = step(runner, &ranking[..mid], &mut *progress)?;
        if target.met_by(&t)? {
            (lo, best) = (mid, Some(t));
        } else {
            hi = mid;
        }
    }
    let mut int8: Vec<usize> = ranking[..lo].to_vec();
    // Small layers rank late per MAC although many add almost no noise: the longest prefix
    // of the rest by noise alone that still meets the target goes int8 too.
    let mut quiet = ranking[lo..].to_vec();
    quiet.sort_by(|&a, &b| noise(&alone[a]).total_cmp(&noise(&alone[b])).then(a.cmp(&b)));
    // All of them int8 is the all-int8 model, known to miss.
    let (mut lo, mut hi) = (0usize, quiet.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let with: Vec<usize> = int8.iter().chain(&quiet[..mid]).copied().collect();
        let t = step(runner, &with, &mut *progress)?;
        if target.met_by(&t)? {
            (lo, best) = (mid, Some(t));
        } else {
            hi = mid;
        }
    }
    int8.extend_from_slice(&quiet[..lo]);
    let Some(mut best) = best else {
        let best_alone = alone.iter().map(|t| t.sqnr_db).fold(f64::NEG_INFINITY, f64::max);
        return Err(CalibrateError::Argument {
            flag: "--accuracy_target",
            detail: format!(
                "{target} is not met with any layer int8 on the evaluation batches (all int8: cosine {:.6}, SQNR {:.2} dB; \
                 the least harmful layer int8 alone: SQNR {best_alone:.2} dB): nothing was written",
                all_int8.cosine, all_int8.sqnr_db
            ),
        });
    };
    // int8 + quiet[lo] is the prefix the search above measured as missing (or all-int8).
    let known_miss = quiet.get(lo).map(|&i| (int8.len(), i));
    let mut regrow = quiet[lo..].to_vec();
    regrow.sort_by_key(|&i| std::cmp::Reverse(macs[i]));
    for i in regrow.into_iter().take(MAX_PRUNE) {
        if known_miss == Some((int8.len(), i)) {
            continue;
        }
        let mut with = int8.clone();
        with.push(i);
        let t = step(runner, &with, &mut *progress)?;
        if target.met_by(&t)? {
            (int8, best) = (with, t);
        }
    }
    Ok(finish(&int8, best, runner.trials))
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

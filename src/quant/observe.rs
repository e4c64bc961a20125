//! Activation calibration over the calibration batches: one observer per distinct
//! (tensor, algorithm) pair, fed through [`Session::run_observed`], so that memory stays flat
//! in the number of batches.
//!
//! IFMR needs every value twice (pass 1: the percentile values; pass 2: the error of every
//! candidate clip), so the batches run twice when any layer uses it; HFMG needs one pass and
//! runs in pass 1. An IFMR observer is created when its tensor first appears, with
//! `total = elements per batch × batch_num` (the input shapes are fixed, so every batch has the
//! same size; a batch that does not is reported by the observer).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::error::{QuantError, Result};
use super::hfmg::{HfmgObserver, HfmgParams};
use super::ifmr::{IfmrObserver, IfmrParams};
use super::scale::ActQuant;
use crate::engine::{Session, Tensor};

/// The elements of a float32 tensor, borrowed when contiguous (observers run on every
/// activation of every batch: no copy on that path).
pub(crate) fn f32_view(t: &Tensor) -> Option<Cow<'_, [f32]>> {
    match t {
        Tensor::F32(a) => Some(a.as_slice().map(Cow::Borrowed).unwrap_or_else(|| Cow::Owned(a.iter().copied().collect()))),
        _ => None,
    }
}

/// An activation algorithm with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActSpec {
    Ifmr(IfmrParams),
    Hfmg(HfmgParams),
}

impl ActSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ActSpec::Ifmr(_) => "ifmr",
            ActSpec::Hfmg(_) => "hfmg",
        }
    }
}

/// The calibrated parameters of one (tensor, algorithm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActResult {
    pub quant: ActQuant,
    pub clip_min: f32,
    pub clip_max: f32,
}

/// Which pass is running, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Pass 1 (min/max, percentiles, histograms).
    Statistics,
    /// Pass 2 (IFMR clip search).
    ClipSearch,
}

enum Observer {
    Ifmr { params: IfmrParams, state: Option<IfmrObserver> },
    Hfmg(HfmgObserver),
}

/// Feeds calibration batches to the observers.
pub struct ActivationCalibrator {
    specs: Vec<(String, ActSpec)>,
    observers: Vec<Observer>,
    by_tensor: HashMap<String, Vec<usize>>,
    batch_num: usize,
}

impl ActivationCalibrator {
    pub fn new(specs: Vec<(String, ActSpec)>, batch_num: usize) -> Result<Self> {
        let mut by_tensor: HashMap<String, Vec<usize>> = HashMap::new();
        let mut observers = Vec::with_capacity(specs.len());
        for (i, (tensor, spec)) in specs.iter().enumerate() {
            by_tensor.entry(tensor.clone()).or_default().push(i);
            observers.push(match *spec {
                ActSpec::Ifmr(params) => {
                    params.validate()?;
                    Observer::Ifmr { params, state: None }
                }
                ActSpec::Hfmg(params) => Observer::Hfmg(HfmgObserver::new(tensor, params)?),
            });
        }
        Ok(ActivationCalibrator { specs, observers, by_tensor, batch_num })
    }

    /// The passes over all batches this calibration needs.
    pub fn passes(&self) -> Vec<Pass> {
        let any_ifmr = self.specs.iter().any(|(_, s)| matches!(s, ActSpec::Ifmr(_)));
        if any_ifmr { vec![Pass::Statistics, Pass::ClipSearch] } else { vec![Pass::Statistics] }
    }

    /// The tensors a run must report in `pass`.
    pub fn observed(&self, pass: Pass) -> HashSet<String> {
        self.specs.iter().filter(|(_, s)| pass == Pass::Statistics || matches!(s, ActSpec::Ifmr(_))).map(|(t, _)| t.clone()).collect()
    }

    /// Runs one batch through `session`, feeding the observers of `pass`; returns the outputs.
    pub fn run_batch(&mut self, session: &Session, inputs: HashMap<String, Tensor>, pass: Pass) -> Result<Vec<(String, Tensor)>> {
        let observe = self.observed(pass);
        let mut failure: Option<QuantError> = None;
        let outputs = session
            .run_observed(inputs, &observe, &mut |name, tensor| {
                if failure.is_none()
                    && let Err(e) = self.observe(name, tensor, pass)
                {
                    failure = Some(e);
                }
            })
            .map_err(|e| QuantError::param("calibration run", e.to_string()))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(outputs),
        }
    }

    fn observe(&mut self, name: &str, tensor: &Tensor, pass: Pass) -> Result<()> {
        let Some(indices) = self.by_tensor.get(name) else { return Ok(()) };
        let Some(values) = f32_view(tensor) else {
            return Err(QuantError::observer(name, format!("the tensor is {}, expected float32 activations", tensor.dtype_name())));
        };
        for &i in indices {
            match (&mut self.observers[i], pass) {
                (Observer::Ifmr { params, state }, _) => {
                    let obs = match state {
                        Some(o) => o,
                        None => state.insert(IfmrObserver::new(name, *params, values.len() * self.batch_num)?),
                    };
                    obs.observe(&values)?;
                }
                (Observer::Hfmg(h), Pass::Statistics) => h.observe(&values)?,
                (Observer::Hfmg(_), Pass::ClipSearch) => {}
            }
        }
        Ok(())
    }

    /// Ends pass 1 (call between the passes).
    pub fn finish_statistics(&mut self) -> Result<()> {
        for (obs, (tensor, _)) in self.observers.iter_mut().zip(&self.specs) {
            if let Observer::Ifmr { state, .. } = obs {
                let o = state.as_mut().ok_or_else(|| QuantError::observer(tensor, "the tensor was never computed by the model"))?;
                o.finish_pass1()?;
            }
        }
        Ok(())
    }

    /// The result of every spec, in the order given to [`new`](Self::new).
    pub fn results(&self) -> Result<Vec<ActResult>> {
        self.observers
            .iter()
            .zip(&self.specs)
            .map(|(obs, (tensor, _))| match obs {
                Observer::Ifmr { state, .. } => {
                    let r = state
                        .as_ref()
                        .ok_or_else(|| QuantError::observer(tensor, "the tensor was never computed by the model"))?
                        .result()?;
                    Ok(ActResult { quant: r.quant, clip_min: r.clip_min, clip_max: r.clip_max })
                }
                Observer::Hfmg(h) => {
                    let r = h.result()?;
                    Ok(ActResult { quant: r.quant, clip_min: r.clip_min, clip_max: r.clip_max })
                }
            })
            .collect()
    }
}

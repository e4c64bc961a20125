//! Activation calibration over the calibration batches: one observer per distinct
//! (tensor, algorithm settings) pair, fed through [`Session::run_observed`], so that memory
//! stays flat in the number of batches.
//!
//! An algorithm is an [`ActAlgorithm`] (its settings, which say how many passes over the
//! batches it needs and create its observers) and an [`ActObserver`] (the per-tensor state).
//! The batches run once per [`Pass`] any algorithm asks for (IFMR: statistics, then clip
//! search; HFMG: statistics only). An observer is created when its tensor first appears,
//! with `total = elements per batch × batch_num` (the input shapes are fixed, so every batch
//! has the same size; a batch that does not is reported by the observer). Which algorithm a
//! layer uses is decided from the config in one place, [`super::act_algos`].

use std::any::Any;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::error::{QuantError, Result};
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

/// The calibrated parameters of one (tensor, algorithm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActResult {
    pub quant: ActQuant,
    pub clip_min: f32,
    pub clip_max: f32,
}

/// One pass over all calibration batches, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pass {
    /// Pass 1 (min/max, percentiles, histograms).
    Statistics,
    /// Pass 2 (IFMR clip search).
    ClipSearch,
}

impl Pass {
    /// The name in progress reports and phase timings.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Statistics => "statistics",
            Pass::ClipSearch => "clip search",
        }
    }
}

/// The state of one activation algorithm on one tensor.
pub trait ActObserver: Send {
    /// One batch's values of the tensor, in a pass of [`ActAlgorithm::passes`].
    fn observe(&mut self, pass: Pass, values: &[f32]) -> Result<()>;
    /// Every batch of `pass` was observed.
    fn finish_pass(&mut self, pass: Pass) -> Result<()>;
    /// The calibrated parameters, after the last pass.
    fn result(&self) -> Result<ActResult>;
}

/// An activation algorithm with its settings: the factory of its observers. Equal settings
/// share one observer per tensor; the equality is the settings type's own `PartialEq`
/// (see [`SettingsEq`]).
pub trait ActAlgorithm: SettingsEq + fmt::Debug + Send + Sync + 'static {
    /// The name in quant.json (`act_algo`).
    fn name(&self) -> &'static str;
    /// The passes its observers take part in, in [`Pass`] order.
    fn passes(&self) -> &'static [Pass];
    /// Whether its parameters carry an offset (activation_offset).
    fn asymmetric(&self) -> bool;
    /// Checks the settings before any batch runs.
    fn validate(&self) -> Result<()>;
    /// A new observer of `tensor`, which will produce `total` values over all batches.
    fn observer(&self, tensor: &str, total: usize) -> Result<Box<dyn ActObserver>>;
}

/// Equality of two algorithms' settings, given to every `PartialEq` type (so an algorithm
/// only derives `PartialEq`); settings of different algorithms are never equal.
pub trait SettingsEq: Any {
    fn settings_eq(&self, other: &dyn Any) -> bool;
}

impl<T: PartialEq + Any> SettingsEq for T {
    fn settings_eq(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// The activation algorithm chosen for a layer (built by [`super::act_algos::act_spec`]).
#[derive(Debug, Clone)]
pub struct ActSpec(Arc<dyn ActAlgorithm>);

impl ActSpec {
    pub fn new(algorithm: impl ActAlgorithm) -> Self {
        ActSpec(Arc::new(algorithm))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn algorithm(&self) -> &dyn ActAlgorithm {
        &*self.0
    }

    fn takes_part_in(&self, pass: Pass) -> bool {
        self.0.passes().contains(&pass)
    }
}

impl PartialEq for ActSpec {
    fn eq(&self, other: &Self) -> bool {
        let other: &dyn Any = &*other.0;
        (*self.0).settings_eq(other)
    }
}

/// One (tensor, algorithm) and its observer once the tensor has appeared.
struct Slot {
    tensor: String,
    spec: ActSpec,
    observer: Option<Box<dyn ActObserver>>,
}

impl Slot {
    fn observer_mut(&mut self) -> Result<&mut dyn ActObserver> {
        match &mut self.observer {
            Some(o) => Ok(o.as_mut()),
            None => Err(never_computed(&self.tensor)),
        }
    }
}

fn never_computed(tensor: &str) -> QuantError {
    QuantError::observer(tensor, "the tensor was never computed by the model")
}

/// Feeds calibration batches to the observers.
pub struct ActivationCalibrator {
    slots: Vec<Slot>,
    by_tensor: HashMap<String, Vec<usize>>,
    batch_num: usize,
}

impl ActivationCalibrator {
    /// `specs`: distinct (tensor, algorithm) pairs; their settings are checked here, in order.
    pub fn new(specs: Vec<(String, ActSpec)>, batch_num: usize) -> Result<Self> {
        let mut by_tensor: HashMap<String, Vec<usize>> = HashMap::new();
        let mut slots = Vec::with_capacity(specs.len());
        for (i, (tensor, spec)) in specs.into_iter().enumerate() {
            spec.algorithm().validate()?;
            by_tensor.entry(tensor.clone()).or_default().push(i);
            slots.push(Slot { tensor, spec, observer: None });
        }
        Ok(ActivationCalibrator { slots, by_tensor, batch_num })
    }

    /// The passes over all batches this calibration needs, in order.
    pub fn passes(&self) -> Vec<Pass> {
        let mut passes: Vec<Pass> = self.slots.iter().flat_map(|s| s.spec.algorithm().passes().iter().copied()).collect();
        passes.sort();
        passes.dedup();
        passes
    }

    /// The tensors a run must report in `pass`.
    pub fn observed(&self, pass: Pass) -> HashSet<String> {
        self.slots.iter().filter(|s| s.spec.takes_part_in(pass)).map(|s| s.tensor.clone()).collect()
    }

    /// Runs one batch through `session`, feeding the observers of `pass`: only as far as the
    /// last observed tensor (the steps after it cannot change what the observers see).
    pub fn run_batch(&mut self, session: &Session, inputs: HashMap<String, Tensor>, pass: Pass) -> Result<()> {
        let observe = self.observed(pass);
        let mut failure: Option<QuantError> = None;
        // One batch at a time, each op parallel inside: the other workers poll between ops.
        crate::engine::with_workers_awake(|| {
            session.observe_prefix(inputs, &observe, &mut |name, tensor| {
                if failure.is_none()
                    && let Err(e) = self.observe(name, tensor, pass)
                {
                    failure = Some(e);
                }
            })
        })
        .map_err(|source| QuantError::Engine { context: "calibration run".into(), source })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn observe(&mut self, name: &str, tensor: &Tensor, pass: Pass) -> Result<()> {
        let Some(indices) = self.by_tensor.get(name) else { return Ok(()) };
        let Some(values) = f32_view(tensor) else {
            return Err(QuantError::observer(name, format!("the tensor is {}, expected float32 activations", tensor.dtype_name())));
        };
        for &i in indices {
            let slot = &mut self.slots[i];
            if !slot.spec.takes_part_in(pass) {
                continue;
            }
            let observer = match &mut slot.observer {
                Some(o) => o,
                None => slot.observer.insert(slot.spec.algorithm().observer(name, values.len() * self.batch_num)?),
            };
            observer.observe(pass, &values)?;
        }
        Ok(())
    }

    /// Ends `pass` (call after its last batch).
    /// The observers finish in parallel (IFMR builds its bins there); the first error in
    /// slot order is returned.
    pub fn finish_pass(&mut self, pass: Pass) -> Result<()> {
        use rayon::prelude::*;
        let results: Vec<Result<()>> =
            self.slots.par_iter_mut().filter(|s| s.spec.takes_part_in(pass)).map(|slot| slot.observer_mut()?.finish_pass(pass)).collect();
        results.into_iter().collect()
    }

    /// The result of every spec, in the order given to [`new`](Self::new), computed in
    /// parallel (IFMR's losses from the bins take ~1 ms per tensor); on failure, the error of
    /// the first failing spec in that order.
    pub fn results(&mut self) -> Result<Vec<ActResult>> {
        use rayon::prelude::*;
        let each: Vec<Result<ActResult>> = self.slots.par_iter_mut().map(|s| s.observer_mut()?.result()).collect();
        each.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::engine::EngineError;
    use crate::onnx::build::float_value_info as float_value;
    use crate::onnx::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
    use crate::quant::hfmg::{HfmgObserver, HfmgParams};
    use crate::quant::ifmr::{IfmrParams, ifmr_direct};

    fn tensor(values: Vec<f32>) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values).unwrap())
    }

    /// Deterministic skewed values with a few outliers, different per (seed, batch).
    fn batch(seed: u32, b: u32, n: usize) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2_654_435_761) ^ (b * 97 + seed).wrapping_mul(40_503)) % 10_007;
                let v = h as f32 / 10_007.0;
                if i % 331 == 7 { 25.0 * v } else { v * v * 4.0 - 0.5 }
            })
            .collect()
    }

    #[test]
    fn spec_equality_is_the_settings_equality() {
        let ifmr = IfmrParams::default();
        assert_eq!(ActSpec::new(ifmr), ActSpec::new(ifmr));
        assert_ne!(ActSpec::new(ifmr), ActSpec::new(IfmrParams { search_step: 0.02, ..ifmr }));
        assert_ne!(ActSpec::new(ifmr), ActSpec::new(HfmgParams::default()));
        assert_eq!(ActSpec::new(HfmgParams::default()).name(), "hfmg");
        assert_eq!(ActSpec::new(ifmr).name(), "ifmr");
    }

    #[test]
    fn passes_and_observed_tensors_follow_the_algorithms() {
        let hfmg = ActSpec::new(HfmgParams::default());
        let only_hfmg = ActivationCalibrator::new(vec![("a".into(), hfmg.clone())], 2).unwrap();
        assert_eq!(only_hfmg.passes(), vec![Pass::Statistics]);
        let mixed = ActivationCalibrator::new(vec![("a".into(), hfmg), ("b".into(), ActSpec::new(IfmrParams::default()))], 2).unwrap();
        assert_eq!(mixed.passes(), vec![Pass::Statistics, Pass::ClipSearch]);
        assert_eq!(mixed.observed(Pass::Statistics), HashSet::from(["a".to_string(), "b".to_string()]));
        assert_eq!(mixed.observed(Pass::ClipSearch), HashSet::from(["b".to_string()]));
        let bad = ActSpec::new(HfmgParams { num_of_bins: 100, asymmetric: true });
        let e = ActivationCalibrator::new(vec![("a".into(), bad)], 1).err().unwrap();
        assert!(e.to_string().contains("num_of_bins"), "{e}");
    }

    /// Through the calibrator, every (tensor, algorithm) gets exactly what its observer computes
    /// on the same batches directly (IFMR: bit-identical to the all-at-once reference).
    #[test]
    fn results_equal_the_observers_run_directly() {
        let (batches, n) = (3u32, 4099);
        let ifmr = IfmrParams::default();
        let ifmr_sym = IfmrParams { asymmetric: false, search_step: 0.02, ..ifmr };
        let hfmg = HfmgParams { num_of_bins: 1024, asymmetric: true };
        let specs =
            vec![("a".to_string(), ActSpec::new(ifmr)), ("a".to_string(), ActSpec::new(hfmg)), ("b".to_string(), ActSpec::new(ifmr_sym))];
        let mut cal = ActivationCalibrator::new(specs, batches as usize).unwrap();
        for pass in cal.passes() {
            for b in 0..batches {
                cal.observe("a", &tensor(batch(1, b, n)), pass).unwrap();
                cal.observe("b", &tensor(batch(2, b, n)), pass).unwrap();
                cal.observe("unrelated", &tensor(vec![f32::NAN]), pass).unwrap();
            }
            cal.finish_pass(pass).unwrap();
        }
        let got = cal.results().unwrap();

        let all = |seed| (0..batches).flat_map(|b| batch(seed, b, n)).collect::<Vec<f32>>();
        let want_a = ifmr_direct("a", &all(1), &ifmr).unwrap();
        let want_b = ifmr_direct("b", &all(2), &ifmr_sym).unwrap();
        let mut h = HfmgObserver::new("a", hfmg).unwrap();
        for b in 0..batches {
            h.observe(&batch(1, b, n)).unwrap();
        }
        let want_h = h.result().unwrap();
        let bits = |r: &ActResult| (r.quant.scale.to_bits(), r.quant.offset, r.clip_min.to_bits(), r.clip_max.to_bits());
        assert_eq!(
            bits(&got[0]),
            (want_a.quant.scale.to_bits(), want_a.quant.offset, want_a.clip_min.to_bits(), want_a.clip_max.to_bits())
        );
        assert_eq!(
            bits(&got[1]),
            (want_h.quant.scale.to_bits(), want_h.quant.offset, want_h.clip_min.to_bits(), want_h.clip_max.to_bits())
        );
        assert_eq!(
            bits(&got[2]),
            (want_b.quant.scale.to_bits(), want_b.quant.offset, want_b.clip_min.to_bits(), want_b.clip_max.to_bits())
        );
        assert_eq!(got[2].quant.offset, 0, "symmetric");
        assert_ne!(bits(&got[0]), bits(&got[1]), "the two algorithms differ on this data");
    }

    #[test]
    fn missing_and_non_float_tensors_name_the_tensor() {
        let mut cal = ActivationCalibrator::new(vec![("a".into(), ActSpec::new(IfmrParams::default()))], 1).unwrap();
        let e = cal.finish_pass(Pass::Statistics).unwrap_err();
        assert_eq!(e.to_string(), "activation observer for 'a': the tensor was never computed by the model");
        let ints = Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[1]), vec![1]).unwrap());
        let e = cal.observe("a", &ints, Pass::Statistics).unwrap_err();
        assert!(matches!(&e, QuantError::Observer { tensor, .. } if tensor == "a"), "{e}");
    }

    /// x [4] → Relu → y
    fn relu_model() -> ModelProto {
        let relu = NodeProto {
            name: Some("relu".into()),
            op_type: Some("Relu".into()),
            input: vec!["x".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: vec![relu],
                input: vec![float_value("x", &[4])],
                output: vec![float_value("y", &[4])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn runs_feed_the_observers_and_keep_the_engine_error_kind() {
        let session = Session::new(&relu_model(), &HashMap::from([("x".to_string(), vec![4])])).unwrap();
        let hfmg = HfmgParams { num_of_bins: 1024, asymmetric: true };
        let mut cal = ActivationCalibrator::new(vec![("y".into(), ActSpec::new(hfmg))], 1).unwrap();
        cal.run_batch(&session, HashMap::from([("x".to_string(), tensor(vec![-1.0, 0.5, 2.0, 3.0]))]), Pass::Statistics).unwrap();
        let mut direct = HfmgObserver::new("y", hfmg).unwrap();
        direct.observe(&[0.0, 0.5, 2.0, 3.0]).unwrap();
        let want = direct.result().unwrap();
        assert_eq!(cal.results().unwrap()[0], ActResult { quant: want.quant, clip_min: want.clip_min, clip_max: want.clip_max });

        let e = cal.run_batch(&session, HashMap::new(), Pass::Statistics).unwrap_err();
        assert!(matches!(&e, QuantError::Engine { source: EngineError::Input { name, .. }, .. } if name == "x"), "{e:?}");
        // The message is the one of the flattened error this variant replaced.
        assert_eq!(e.to_string(), "calibration run: input 'x': is required but was not given");
        assert!(std::error::Error::source(&e).is_some());
    }
}

//! The activation algorithms by their config: the one place a layer's `ifmr_quantize` /
//! `hfmg_quantize` becomes the [`ActSpec`] that calibrates it.
//!
//! A new algorithm is its own module (settings implementing
//! [`ActAlgorithm`](super::observe::ActAlgorithm) with `PartialEq`, an observer implementing
//! [`ActObserver`](super::observe::ActObserver)), its config message in [`super::config`]
//! (the `ActAlgo` variant and its parsing), and one line here.

use super::config::{ActAlgo, LayerAlgo};
use super::hfmg::HfmgParams;
use super::ifmr::IfmrParams;
use super::observe::ActSpec;

/// The activation algorithm of a layer, with the layer's resolved activation_offset.
pub fn act_spec(algo: &LayerAlgo) -> ActSpec {
    let asymmetric = algo.asymmetric;
    match &algo.activations {
        ActAlgo::Ifmr(c) => ActSpec::new(IfmrParams::from_config(c, asymmetric)),
        ActAlgo::Hfmg(c) => ActSpec::new(HfmgParams::from_config(c, asymmetric)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::config::CalibrationConfig;

    #[test]
    fn specs_carry_the_config_values_and_the_resolved_offset() {
        let cfg = CalibrationConfig::parse(
            "activation_offset: false\n\
             common_config { ifmr_quantize { search_range_start: 0.8 search_range_end: 1.2 search_step: 0.05 \
             max_percentile: 0.99 min_percentile: 0.98 } }\n\
             override_layer_types { layer_type: \"Conv\" calibration_config { hfmg_quantize { num_of_bins: 2048 asymmetric: true } } }",
        )
        .unwrap();
        let want = IfmrParams {
            max_percentile: 0.99,
            min_percentile: 0.98,
            search_start: 0.8,
            search_end: 1.2,
            search_step: 0.05,
            asymmetric: false,
            exact: false,
        };
        assert_eq!(act_spec(&cfg.layer_algo("fc", "Gemm")), ActSpec::new(want));
        assert_eq!(act_spec(&cfg.layer_algo("c", "Conv")), ActSpec::new(HfmgParams { num_of_bins: 2048, asymmetric: true }));
        let default = act_spec(&CalibrationConfig::default().layer_algo("c", "Conv"));
        assert_eq!(default, ActSpec::new(IfmrParams::default()));
    }
}

//! ARQ weight quantization (docs/ascend-formats.md §4.3) and int32 bias quantization (§2.3).
//!
//! Weights are quantized symmetrically with offset_w = 0: per output channel (Conv,
//! ConvTranspose) or per tensor (Gemm, MatMul, AveragePool, or `channel_wise: false`).
//! `scale_w = max(|min|, |max|) / 127`, `/ 128` when the negative extreme is the larger one,
//! degenerate scales (< FLT_EPSILON, e.g. an all-zero channel) become 1;
//! `w_q = clamp(round(w / scale_w), −128, 127)` with round-half-to-even.
//!
//! ConvTranspose weights are laid out `[C_in, C_out/group, k…]`: output channel
//! `g·(C_out/group) + j` owns the elements `[i, j, …]` for the input channels `i` of group
//! `g`. The int8 tensor keeps the original layout; `scale_w` is indexed by output channel,
//! which is what AscendDequant applies on axis 1 of the layer output.
//!
//! Bias: `b_q = round(b / deq_scale[c])` with `deq_scale[c] = scale_w[c] · scale_d` computed
//! in f32 (the value packed into `L.dequant.param`), the division in f64; a value outside
//! int32 is an error naming the layer and suggesting skip_layers.

use super::error::{QuantError, Result};
use super::scale::{QMAX, QMIN, deq_scales, symmetric_scale};
use crate::engine::ops::activation::Real;

/// How the weight tensor maps to output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[C_out, …]` (Conv; Gemm/MatMul weights after the offline transpose are not per-channel).
    OutChannelFirst,
    /// `[C_in, C_out/group, k…]` (ConvTranspose).
    ConvTranspose { group: usize },
}

/// int8 weights in the original layout plus one scale per output channel (or one).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeights {
    pub data: Vec<i8>,
    pub scale_w: Vec<f32>,
}

/// ARQ: quantizes `w` of shape `dims`; `channel_wise` selects per-output-channel scales.
pub fn quantize_weights(layer: &str, w: &[f32], dims: &[usize], layout: WeightLayout, channel_wise: bool) -> Result<QuantizedWeights> {
    if w.is_empty() {
        return Err(QuantError::layer(layer, format!("weight of shape {dims:?} is empty")));
    }
    if dims.iter().product::<usize>() != w.len() || dims.is_empty() {
        return Err(QuantError::layer(layer, format!("weight has {} values, which does not match its shape {dims:?}", w.len())));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::layer(layer, format!("weight element {i} is {}, expected a finite value", w[i])));
    }
    let channel_of = channel_map(layer, dims, layout, channel_wise)?;
    let channels = channel_of.iter().copied().max().map_or(1, |m| m + 1);
    let mut min = vec![f32::INFINITY; channels];
    let mut max = vec![f32::NEG_INFINITY; channels];
    for (&v, &c) in w.iter().zip(&channel_of) {
        min[c] = min[c].min(v);
        max[c] = max[c].max(v);
    }
    let scale_w: Vec<f32> = min.iter().zip(&max).map(|(&lo, &hi)| symmetric_scale(lo, hi, QMAX)).collect();
    let data = w.iter().zip(&channel_of).map(|(&v, &c)| round_to_i8(v / scale_w[c])).collect();
    Ok(QuantizedWeights { data, scale_w })
}

/// `round_ties_even(x)` clamped to [QMIN, QMAX], by the engine's `rint` without a libm call
/// (the baseline x86-64 target has no rounding instruction; one call per weight was 5 % of a
/// calibration's CPU).
#[inline(always)]
fn round_to_i8(x: f32) -> i8 {
    x.round_even().clamp(QMIN as f32, QMAX as f32) as i8
}

/// The float values int8 weights stand for: `w_q · scale_w[channel]` (the inverse of
/// [`quantize_weights`] up to rounding).
pub fn dequantize_weights(layer: &str, q: &[i8], dims: &[usize], layout: WeightLayout, scale_w: &[f32]) -> Result<Vec<f32>> {
    let channel_of = channel_map(layer, dims, layout, scale_w.len() > 1)?;
    q.iter()
        .zip(&channel_of)
        .map(|(&v, &c)| {
            let s = scale_w.get(c).ok_or_else(|| QuantError::layer(layer, format!("no weight scale for output channel {c}")))?;
            Ok(v as f32 * s)
        })
        .collect()
}

/// Output channel of every weight element (all 0 when per-tensor).
fn channel_map(layer: &str, dims: &[usize], layout: WeightLayout, channel_wise: bool) -> Result<Vec<usize>> {
    let total: usize = dims.iter().product();
    if !channel_wise {
        return Ok(vec![0; total]);
    }
    let inner: usize = dims[1..].iter().product::<usize>().max(1);
    match layout {
        WeightLayout::OutChannelFirst => Ok((0..total).map(|i| i / inner).collect()),
        WeightLayout::ConvTranspose { group } => {
            if dims.len() < 2 || group == 0 || !dims[0].is_multiple_of(group) {
                return Err(QuantError::layer(
                    layer,
                    format!("ConvTranspose weight shape {dims:?} does not split into group = {group} groups of input channels"),
                ));
            }
            let (cin_per_group, cout_per_group) = (dims[0] / group, dims[1]);
            let spatial: usize = dims[2..].iter().product();
            Ok((0..total)
                .map(|idx| {
                    let (i, j) = (idx / inner, (idx % inner) / spatial.max(1));
                    (i / cin_per_group) * cout_per_group + j
                })
                .collect())
        }
    }
}

/// int32 bias: `round(b / (scale_w[c] · scale_d))`; `scale_w` has one value per bias element
/// or a single per-tensor value.
pub fn quantize_bias(layer: &str, bias: &[f32], scale_d: f32, scale_w: &[f32]) -> Result<Vec<i32>> {
    if scale_w.len() != 1 && scale_w.len() != bias.len() {
        return Err(QuantError::layer(layer, format!("bias has {} values but there are {} weight scales", bias.len(), scale_w.len())));
    }
    let deq = deq_scales(scale_d, scale_w);
    bias.iter()
        .enumerate()
        .map(|(c, &b)| {
            let d = deq[if deq.len() == 1 { 0 } else { c }];
            let q = (b as f64 / d as f64).round_ties_even();
            if !(i32::MIN as f64..=i32::MAX as f64).contains(&q) {
                return Err(QuantError::BiasOverflow { layer: layer.to_string(), channel: c, value: q, bias: b, deq_scale: d });
            }
            Ok(q as i32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_i8_is_round_half_even_then_clamp() {
        let reference = |x: f32| x.round_ties_even().clamp(QMIN as f32, QMAX as f32) as i8;
        let mut values = vec![0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, 127.5, -127.5, -128.5, -129.0, 128.0];
        values.extend([4_194_303.5, 4_194_304.0, 8_388_607.5, 8_388_608.0, -8_388_609.0, 1e30, -1e30, f32::MAX, f32::MIN]);
        values.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MIN_POSITIVE, 1e-45]);
        // Every multiple of 1/8 in [−300, 300] (all the ties) and the f32 just around them.
        for i in -2400..=2400 {
            let x = i as f32 / 8.0;
            values.extend([x, f32::from_bits(x.to_bits() + 1), f32::from_bits(x.to_bits().max(1) - 1)]);
        }
        for x in values {
            assert_eq!(round_to_i8(x), reference(x), "{x:e}");
        }
    }

    #[test]
    fn per_channel_conv() {
        // Two output channels of 2 elements: ch0 max 127 → scale 1; ch1 min −256 dominates → /128.
        let w = [127.0, -0.5, 12.5, -256.0];
        let q = quantize_weights("c", &w, &[2, 2, 1, 1], WeightLayout::OutChannelFirst, true).unwrap();
        assert_eq!(q.scale_w, vec![1.0, 2.0]);
        // −0.5 → 0 (half to even); 12.5/2 = 6.25 → 6; −256/2 = −128.
        assert_eq!(q.data, vec![127, 0, 6, -128]);
    }

    #[test]
    fn per_tensor_and_zero_channel() {
        let q = quantize_weights("g", &[0.0, 0.0, 0.0, 0.0], &[2, 2], WeightLayout::OutChannelFirst, false).unwrap();
        assert_eq!(q.scale_w, vec![1.0]);
        assert_eq!(q.data, vec![0; 4]);
        let q = quantize_weights("g", &[127.0, -63.5, 31.5, 0.0], &[2, 2], WeightLayout::OutChannelFirst, false).unwrap();
        assert_eq!(q.scale_w, vec![1.0]);
        assert_eq!(q.data, vec![127, -64, 32, 0]); // ties to even
    }

    #[test]
    fn conv_transpose_groups_channels_by_output() {
        // C_in = 4, group = 2, C_out/g = 2, k = 1: w[i][j]; out channel = (i/2)*2 + j.
        // ch0 ← w[0][0], w[1][0]; ch1 ← w[0][1], w[1][1]; ch2 ← w[2][0], w[3][0]; ch3 ← w[2][1],
        // w[3][1]; their max |w| are 127·{1, 2, 3, 4}, so scale_w = 1, 2, 3, 4.
        let w = [127.0, 254.0, -63.5, 63.0, 381.0, 508.0, 1.5, -10.0];
        let q = quantize_weights("t", &w, &[4, 2, 1, 1], WeightLayout::ConvTranspose { group: 2 }, true).unwrap();
        let back = dequantize_weights("t", &q.data, &[4, 2, 1, 1], WeightLayout::ConvTranspose { group: 2 }, &q.scale_w).unwrap();
        // Each element times its own output channel's scale.
        assert_eq!(back, vec![127.0, 254.0, -64.0, 64.0, 381.0, 508.0, 0.0, -8.0]);
        assert_eq!(q.scale_w, vec![1.0, 2.0, 3.0, 4.0]);
        // −63.5 → −64, 63/2 = 31.5 → 32, 1.5/3 = 0.5 → 0, −10/4 = −2.5 → −2
        assert_eq!(q.data, vec![127, 127, -64, 32, 127, 127, 0, -2]);
        let e = quantize_weights("t", &w, &[4, 2, 1, 1], WeightLayout::ConvTranspose { group: 3 }, true).unwrap_err();
        assert!(e.to_string().contains("group = 3"), "{e}");
    }

    #[test]
    fn bad_weights_are_errors() {
        let e = quantize_weights("conv7", &[1.0, f32::NAN], &[2, 1], WeightLayout::OutChannelFirst, true).unwrap_err().to_string();
        assert!(e.contains("conv7") && e.contains("NaN"), "{e}");
        let e = quantize_weights("conv7", &[1.0], &[2, 1], WeightLayout::OutChannelFirst, true).unwrap_err().to_string();
        assert!(e.contains("[2, 1]"), "{e}");
    }

    #[test]
    fn bias_rounds_and_overflow_names_layer() {
        // deq = 0.5·0.25 = 0.125: 0.3125/0.125 = 2.5 → 2; −0.4375/0.125 = −3.5 → −4.
        assert_eq!(quantize_bias("c", &[0.3125, -0.4375], 0.25, &[0.5]).unwrap(), vec![2, -4]);
        assert_eq!(quantize_bias("c", &[1.0, 1.0], 1.0, &[0.5, 0.25]).unwrap(), vec![2, 4]);
        let e = quantize_bias("head.conv", &[0.0, 1e4], 1e-4, &[1e-4, 1e-5]).unwrap_err().to_string();
        assert!(e.contains("head.conv") && e.contains("skip_layers") && e.contains("channel 1"), "{e}");
        assert!(quantize_bias("c", &[1.0, 2.0, 3.0], 1.0, &[1.0, 1.0]).is_err());
    }
}

//! The AMCT integer convention (docs/ascend-formats.md §3) and the deploy-model parameter packing (§2.4).
//!
//! Activations: `q = clamp(round(x / scale_d) + offset_d, −128, 127)`,
//! `x̂ = (q − offset_d) · scale_d`; `round` is round-half-to-even everywhere.
//! From a clip range the min-max rule gives (asymmetric, `activation_offset = true`):
//! the range is first widened to contain 0, `scale_d = (max − min) / 255`,
//! `offset_d = round(−128 − min / scale_d)`; symmetric: `offset_d = 0`,
//! `scale_d = max(|max|, |min|) / 127`, or `/ 128` when the negative side dominates.
//! Degenerate scales (`scale < FLT_EPSILON`) become 1 with offset −128 (asymmetric) / 0.
//!
//! Deploy packing: AscendQuant carries `scale = 1 / scale_d` and `offset = offset_d`;
//! AscendDequant's UINT64 `deq_scale` element holds the f32 bits of
//! `scale_w[c] · scale_d` in bits 0–31, shift_n in bits 32–39 and offset_w as a
//! two's-complement byte in bits 40–47 (48–63 zero).

/// FLT_EPSILON (1.1920929e−7): scales below it are degenerate (§3).
pub const FLT_EPSILON: f32 = f32::EPSILON;
/// The int8 range.
pub const QMIN: i32 = -128;
pub const QMAX: i32 = 127;

/// Activation quantization parameters of one tensor: `scale_d`, `offset_d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActQuant {
    pub scale: f32,
    pub offset: i32,
}

impl ActQuant {
    /// The min-max rule of §3 (AMCT's `calculate_scale_offset` + `process_scale`) for a
    /// clip range; used by HFMG and for the weight scales.
    pub fn from_clip_range(clip_min: f32, clip_max: f32, asymmetric: bool) -> ActQuant {
        if asymmetric {
            // Force 0 into the range so that 0.0 is exactly representable (padding).
            let (max, min) = (clip_max.max(0.0), clip_min.min(0.0));
            let scale = (max - min) / 255.0;
            if scale < FLT_EPSILON {
                return ActQuant { scale: 1.0, offset: QMIN };
            }
            let offset = if max != min { -128.0 - min / scale } else { -128.0 };
            ActQuant { scale, offset: offset.round_ties_even() as i32 }
        } else {
            ActQuant { scale: symmetric_scale(clip_min, clip_max, 127), offset: 0 }
        }
    }

    /// Quantizes like the deploy graph's AscendQuant: `rint(x · (1/scale_d)) + offset_d`,
    /// saturated to int8.
    pub fn quantize(&self, x: f32) -> i8 {
        let r = (x * self.quant_attr_scale()).round_ties_even();
        (r + self.offset as f32).clamp(QMIN as f32, QMAX as f32) as i8
    }

    /// `(q − offset_d) · scale_d`.
    pub fn dequantize(&self, q: i8) -> f32 {
        (q as i32 - self.offset) as f32 * self.scale
    }

    /// AscendQuant's `scale` attribute: the reciprocal of scale_d.
    pub fn quant_attr_scale(&self) -> f32 {
        1.0 / self.scale
    }

    /// AscendQuant's `offset` attribute.
    pub fn quant_attr_offset(&self) -> f32 {
        self.offset as f32
    }
}

/// Symmetric scale with offset 0: `max(|min|, |max|) / pos_limit`, or
/// `/ (pos_limit + 1)` when the negative extreme is the larger one; degenerate → 1.
pub fn symmetric_scale(min: f32, max: f32, pos_limit: i32) -> f32 {
    let negative_dominates = max.abs() < min.abs();
    let bound = max.abs().max(min.abs());
    let scale = bound / (pos_limit + negative_dominates as i32) as f32;
    if scale < FLT_EPSILON { 1.0 } else { scale }
}

/// One element of AscendDequant's UINT64 `deq_scale` (§2.4).
pub fn pack_deq_param(deq_scale: f32, shift_n: u8, offset_w: i8) -> u64 {
    deq_scale.to_bits() as u64 | (shift_n as u64) << 32 | (offset_w as u8 as u64) << 40
}

/// Inverse of [`pack_deq_param`]: (deq_scale, shift_n, offset_w).
pub fn unpack_deq_param(v: u64) -> (f32, u8, i8) {
    (f32::from_bits((v & 0xFFFF_FFFF) as u32), ((v >> 32) & 0xFF) as u8, ((v >> 40) & 0xFF) as u8 as i8)
}

/// `deq_scale[c] = scale_w[c] · scale_d` in f32, the value packed into the deploy model and
/// the divisor of the int32 bias.
pub fn deq_scales(scale_d: f32, scale_w: &[f32]) -> Vec<f32> {
    scale_w.iter().map(|&w| w * scale_d).collect()
}

/// The `L.dequant.param` initializer contents for plain INT8 PTQ (shift 0, offset_w 0).
pub fn dequant_params(scale_d: f32, scale_w: &[f32]) -> Vec<u64> {
    deq_scales(scale_d, scale_w).into_iter().map(|d| pack_deq_param(d, 0, 0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_range_maps_to_full_int8() {
        // [0, 1] (a normalized image): scale 1/255, offset −128 (formats §3 example).
        let q = ActQuant::from_clip_range(0.0, 1.0, true);
        assert_eq!(q, ActQuant { scale: 1.0 / 255.0, offset: -128 });
        assert_eq!(q.quantize(0.0), -128);
        assert_eq!(q.quantize(1.0), 127);
        // [−1, 3]: scale 4/255, offset = round(−128 + 63.75) = −64.
        let q = ActQuant::from_clip_range(-1.0, 3.0, true);
        assert_eq!(q.offset, -64);
        assert_eq!(q.quantize(0.0), -64);
        assert_eq!(q.dequantize(q.quantize(0.0)), 0.0);
    }

    #[test]
    fn zero_is_forced_into_the_range() {
        // All-positive [2, 4] behaves as [0, 4]; all-negative [−4, −2] as [−4, 0].
        assert_eq!(ActQuant::from_clip_range(2.0, 4.0, true), ActQuant::from_clip_range(0.0, 4.0, true));
        let q = ActQuant::from_clip_range(-4.0, -2.0, true);
        assert_eq!(q, ActQuant { scale: 4.0 / 255.0, offset: 127 });
    }

    #[test]
    fn degenerate_scale_becomes_one() {
        assert_eq!(ActQuant::from_clip_range(0.0, 0.0, true), ActQuant { scale: 1.0, offset: -128 });
        assert_eq!(ActQuant::from_clip_range(0.0, 1e-6, true), ActQuant { scale: 1.0, offset: -128 });
        assert_eq!(ActQuant::from_clip_range(0.0, 0.0, false), ActQuant { scale: 1.0, offset: 0 });
    }

    #[test]
    fn symmetric_uses_128_when_negative_side_dominates() {
        assert_eq!(ActQuant::from_clip_range(-1.0, 2.54, false), ActQuant { scale: 2.54 / 127.0, offset: 0 });
        assert_eq!(ActQuant::from_clip_range(-2.56, 1.0, false), ActQuant { scale: 2.56 / 128.0, offset: 0 });
        let q = ActQuant::from_clip_range(-2.56, 1.0, false);
        assert_eq!(q.quantize(-2.56), -128);
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = ActQuant { scale: 0.5, offset: 3 };
        // x/scale: 0.25→0.5→0, 0.75→1.5→2, −1.25→−2.5→−2
        let got: Vec<i8> = [0.25, 0.75, -1.25, 100.0, -100.0].iter().map(|&x| q.quantize(x)).collect();
        assert_eq!(got, vec![3, 5, 1, 127, -128]);
        assert_eq!(q.quant_attr_scale(), 2.0);
        assert_eq!(q.dequantize(5), 1.0);
    }

    #[test]
    fn deq_param_bit_layout() {
        let v = pack_deq_param(0.25, 3, -2);
        assert_eq!(v & 0xFFFF_FFFF, 0.25f32.to_bits() as u64);
        assert_eq!((v >> 32) & 0xFF, 3);
        assert_eq!((v >> 40) & 0xFF, 0xFE);
        assert_eq!(v >> 48, 0);
        assert_eq!(unpack_deq_param(v), (0.25, 3, -2));
        let p = dequant_params(0.5, &[0.1, 0.2]);
        assert_eq!(p, vec![(0.1f32 * 0.5).to_bits() as u64, (0.2f32 * 0.5).to_bits() as u64]);
    }
}

//! `exp` in f64 for softmax's shifted values (x − max ≤ 0), in plain arithmetic that
//! vectorizes (libm's `exp` is a call per element: 15 % of PP-OCRv4 rec's time went to its
//! 6625-class softmax). Within 2 ulp of libm in f64; softmax rounds its quotients to f32, so
//! the outputs change only where an f64 quotient lies within a few f64 ulp of an f32 rounding
//! boundary (none in the unit test's 200 000 values).

/// fdlibm's split of ln 2: `n · LN2_HI` is exact for |n| < 2^20.
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// 1.5 · 2^52: adding it rounds to an integer (ties to even) held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// Below this, exp(x) is subnormal or 0 (and 2^n below would not be a normal f64): 0.
const LOWEST: f64 = -708.0;

/// exp(x) for x ≤ 0 (any x: NaN stays NaN, −∞ and x < −708 give 0; x > 0 is not handled).
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    let t = x * INV_LN2 + ROUNDER;
    let n = t - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series to r^13 on |r| ≤ ln2/2: truncation < 5e-18 relative.
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^n from n's integer bits (t's low mantissa bits, two's complement).
    let k = (t.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
    let scale = f64::from_bits((k.wrapping_add(1023) as u64) << 52);
    if x < LOWEST { 0.0 } else { p * scale }
}

/// e^y in f32 for y in [-87, 89] (callers clamp; NaN stays NaN): 2^n · p(r) with fused
/// multiply-adds, p the degree-7 Taylor polynomial on |r| ≤ ln2/2 (truncation 5.6e-9
/// relative), within 2 ulp. In that range 2^n is a normal f32 or, for n = 128 (y > 88.37),
/// the bits of +inf: no overflow or subnormal branches, so loops over it stay a few vector
/// ops. `mul_add` is one instruction where the build or [`with_wide_vectors`] has FMA
/// (AVX-512, AVX2+FMA, every aarch64); elsewhere it is libm's exact `fmaf`: same bits.
#[inline(always)]
pub fn exp_f32(y: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let kr = y.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = kr - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, y));
    let mut p: f32 = 1.0 / 5040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    // 2^n from n's integer bits in `kr` (n in [-126, 128]; n = 128 makes the bits of +inf).
    let scale = f32::from_bits((kr.to_bits().wrapping_sub(0x4B40_0000 - 127)) << 23);
    p * scale
}

/// `v[i] = exp(v[i] − shift)` for every i (`shift` ≥ every v[i]: softmax's max).
pub fn exp_shifted(v: &mut [f64], shift: f64) {
    with_wide_vectors(
        #[inline(always)]
        || v.iter_mut().for_each(|x| *x = exp_nonpositive(*x - shift)),
    )
}

/// `v[j] = exp(v[j] − shift[j])` for every j (each `shift[j]` ≥ `v[j]`).
pub fn exp_shifted_each(v: &mut [f64], shift: &[f64]) {
    with_wide_vectors(
        #[inline(always)]
        || v.iter_mut().zip(shift).for_each(|(x, &s)| *x = exp_nonpositive(*x - s)),
    )
}

/// Runs `body` compiled for AVX-512F, else AVX2 with FMA, when the CPU has them: the same
/// operations, so the same results, only wider (an explicit `mul_add` is exact everywhere).
/// Callers mark the closure `#[inline(always)]`: otherwise
/// the compiler may keep it a function of its own, built for the baseline (it did for the
/// evaluation's pair sums).
#[inline(always)]
pub(crate) fn with_wide_vectors<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F support was just checked.
            return unsafe { avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA support were just checked.
            return unsafe { avx2(body) };
        }
    }
    body()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn within_two_ulp_of_libm() {
        let mut worst = 0;
        for i in 0..=200_000 {
            let x = -708.0 * (i as f64 / 200_000.0).powi(3);
            worst = worst.max(ulps(exp_nonpositive(x), x.exp()));
        }
        for x in [0.0, -0.0, -1e-300, -f64::MIN_POSITIVE, -0.5 * std::f64::consts::LN_2, -1.0, -707.99] {
            worst = worst.max(ulps(exp_nonpositive(x), x.exp()));
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-709.0), 0.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f64::NAN).is_nan());
    }

    #[test]
    fn softmax_quotients_round_to_the_same_f32() {
        // Softmax of f32 logits over a wide range, as the engine computes it (f64, then f32).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let logits: Vec<f64> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 / (1u64 << 53) as f64 * 60.0 - 40.0) as f32 as f64
            })
            .collect();
        for row in logits.chunks(6625) {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut fast = row.to_vec();
            exp_shifted(&mut fast, m);
            let reference: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
            let (sf, sr): (f64, f64) = (fast.iter().sum(), reference.iter().sum());
            for (a, b) in fast.iter().zip(&reference) {
                assert_eq!(((a / sf) as f32).to_bits(), ((b / sr) as f32).to_bits());
            }
        }
    }
}

//! Unary element-wise ops: activations (Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish,
//! Tanh, Clip, Elu, Selu, Celu, ThresholdedRelu, Softplus, Softsign, Erf, Gelu, Mish), math
//! (Sqrt, Exp, Log, Neg, Abs, Reciprocal, Floor, Ceil, Round, Sign, trigonometric and
//! hyperbolic functions), Not, Identity and Dropout (inference).
//!
//! Float32 and float64 are computed in their own precision (float16 through float32).
//! Transcendentals use the accurate std/libm functions; erf has its own f64 evaluation
//! (series / continued fraction) accurate to ~1e-15.

use half::f16;
use ndarray::ArrayD;

use super::binary::{f16_to_f32, f32_to_f16, map_array, numeric_one};
use super::common::Num;
use crate::engine::error::OpResult;
use crate::engine::kernels::exp::exp_f32;
use crate::engine::registry::{BuildContext, Op, Registry, input};
use crate::engine::tensor::Tensor;
use crate::op_err;

/// Floating-point element operations used by the activations.
pub(crate) trait Real:
    Num
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    fn c(v: f64) -> Self;
    fn exp(self) -> Self;
    /// exp that vectorizes (f32: within 2 ulp of the correctly rounded value).
    fn exp_vec(self) -> Self;
    fn tanh_vec(self) -> Self;
    fn mish_vec(self) -> Self;
    /// 1 / (1 + e^-x) (f32: [`sigmoid_f32`]).
    fn sigmoid_vec(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    fn round_even(self) -> Self;
    fn erf(self) -> Self;
    /// erf evaluated in f64 to the accuracy this type needs.
    fn erf_wide(v: f64) -> f64;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn asin(self) -> Self;
    fn acos(self) -> Self;
    fn atan(self) -> Self;
    fn sinh(self) -> Self;
    fn cosh(self) -> Self;
    fn asinh(self) -> Self;
    fn acosh(self) -> Self;
    fn atanh(self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            #[inline(always)]
            fn c(v: f64) -> Self {
                v as $t
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn exp_vec(self) -> Self {
                exp_vec(self)
            }
            #[inline(always)]
            fn tanh_vec(self) -> Self {
                tanh_vec(self)
            }
            #[inline(always)]
            fn mish_vec(self) -> Self {
                mish_vec(self)
            }
            #[inline(always)]
            fn sigmoid_vec(self) -> Self {
                self.sigmoid_fast()
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline(always)]
            fn round_even(self) -> Self {
                // rint without the libm call (x86-64's baseline has no roundss): below
                // 2^(mantissa bits − 1) adding that power leaves no fraction bits, so the
                // FPU's ties-to-even rounds; larger values, ±∞ and NaN are returned as they are,
                // zeros keep their sign (as rint).
                const BIG: $t = (1u64 << (<$t>::MANTISSA_DIGITS - 1)) as $t;
                let a = self.abs();
                if a < BIG { ((a + BIG) - BIG).copysign(self) } else { self }
            }
            #[inline(always)]
            fn erf(self) -> Self {
                Self::erf_wide(self as f64) as $t
            }
            #[inline(always)]
            fn erf_wide(v: f64) -> f64 {
                if <$t>::MANTISSA_DIGITS > 24 { erf64(v) } else { erf_f32(v as f32) as f64 }
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn tan(self) -> Self {
                <$t>::tan(self)
            }
            fn asin(self) -> Self {
                <$t>::asin(self)
            }
            fn acos(self) -> Self {
                <$t>::acos(self)
            }
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
            fn sinh(self) -> Self {
                <$t>::sinh(self)
            }
            fn cosh(self) -> Self {
                <$t>::cosh(self)
            }
            fn asinh(self) -> Self {
                <$t>::asinh(self)
            }
            fn acosh(self) -> Self {
                <$t>::acosh(self)
            }
            fn atanh(self) -> Self {
                <$t>::atanh(self)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

trait ExpVec {
    fn exp_fast(self) -> Self;
    fn tanh_fast(self) -> Self;
    fn mish_fast(self) -> Self;
    fn sigmoid_fast(self) -> Self;
}

impl ExpVec for f64 {
    #[inline(always)]
    fn exp_fast(self) -> f64 {
        self.exp()
    }
    fn tanh_fast(self) -> f64 {
        self.tanh()
    }
    fn mish_fast(self) -> f64 {
        self * softplus(self).tanh()
    }
    #[inline(always)]
    fn sigmoid_fast(self) -> f64 {
        // No cancellation for either sign; exp(-x) = inf for x < -709 gives 0.
        1.0 / (1.0 + (-self).exp())
    }
}

impl ExpVec for f32 {
    /// exp(x) = 2^k · e^r with k = round(x / ln 2) and |r| <= ln2 / 2, e^r by its Taylor
    /// polynomial of degree 7 (truncation error 0.3466^8 / 8! = 5.6e-9 relative); 2^k is
    /// applied in two halves so that results near f32::MAX and subnormal ones stay exact.
    /// Branch free, so loops over it auto-vectorize.
    #[inline(always)]
    fn exp_fast(self) -> f32 {
        const LN2_HI: f32 = 0.693_145_75;
        const LN2_LO: f32 = 1.428_606_8e-6;
        const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
        const MAX_X: f32 = 88.722_83; // ln(f32::MAX), rounded down
        let x = self.clamp(-104.0, MAX_X);
        let kr = x * std::f32::consts::LOG2_E + ROUND;
        let k = kr - ROUND;
        let r = (x - k * LN2_HI) - k * LN2_LO;
        let p =
            1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
        // k as an integer from the mantissa of `kr` (a vector integer op, unlike `as i32`).
        let k = kr.to_bits() as i32 - 0x4B40_0000;
        let k1 = k >> 1;
        let s1 = f32::from_bits(((k1 + 127) as u32) << 23);
        let s2 = f32::from_bits(((k - k1 + 127) as u32) << 23);
        let y = p * s1 * s2;
        if self > MAX_X {
            f32::INFINITY
        } else if self.is_nan() {
            self
        } else {
            y
        }
    }

    /// tanh: for |x| < 0.625 x·Q(x²) with Q a degree-7 least-squares fit of tanh(x)/x
    /// (relative error 2e-11, made for this crate); above, 1 - 2/(e^(2|x|) + 1), which has
    /// no cancellation there (the result is >= 0.55).
    #[inline(always)]
    #[allow(clippy::excessive_precision)]
    fn tanh_fast(self) -> f32 {
        const Q: [f32; 8] = [
            0.999_999_999_996_301_1,
            -0.333_333_332_032_704_6,
            0.133_333_258_583_934_4,
            -0.053_966_618_915_198_51,
            0.021_851_877_798_739_68,
            -0.008_759_324_124_098_95,
            0.003_245_011_485_336_242,
            -0.000_816_154_502_686_746_2,
        ];
        let ax = self.abs();
        let x2 = self * self;
        let q = Q[0] + x2 * (Q[1] + x2 * (Q[2] + x2 * (Q[3] + x2 * (Q[4] + x2 * (Q[5] + x2 * (Q[6] + x2 * Q[7]))))));
        let e = (2.0 * ax).exp_fast();
        let big = (1.0 - 2.0 / (e + 1.0)).copysign(self);
        if ax < 0.625 { self * q } else { big }
    }

    /// mish(x) = x·tanh(ln(1 + e^x)) = x·n/(n + 2) with n = e^x(e^x + 2); x for x > 20
    /// (where tanh(softplus(x)) rounds to 1 and n would overflow).
    #[inline(always)]
    fn mish_fast(self) -> f32 {
        let e = self.exp_fast();
        let n = e * (e + 2.0);
        let m = self * n / (n + 2.0);
        if self > 20.0 { self } else { m }
    }
    #[inline(always)]
    fn sigmoid_fast(self) -> f32 {
        sigmoid_f32(self)
    }
}

fn exp_vec<T: ExpVec>(x: T) -> T {
    x.exp_fast()
}

fn tanh_vec<T: ExpVec>(x: T) -> T {
    x.tanh_fast()
}

fn mish_vec<T: ExpVec>(x: T) -> T {
    x.mish_fast()
}

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// erfc(x) for x >= 2 by the continued fraction
/// erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated backward.
fn erfc_cf(x: f64) -> f64 {
    let terms = if x < 3.0 {
        90
    } else if x < 4.0 {
        50
    } else {
        30
    };
    let mut f = x;
    for n in (1..=terms).rev() {
        f = x + (n as f64 * 0.5) / f;
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
}

/// The error function in f64 (relative error ~1e-15).
pub(crate) fn erf64(x: f64) -> f64 {
    let ax = x.abs();
    if ax.is_nan() {
        return x;
    }
    let r = if ax < 2.0 {
        // erf(x) = 2/√π · exp(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): positive terms only.
        let x2 = ax * ax;
        let (mut term, mut sum) = (ax, ax);
        let mut n = 0.0;
        while term > sum * 1e-17 && n < 200.0 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        FRAC_2_SQRT_PI * (-x2).exp() * sum
    } else if ax < 6.0 {
        1.0 - erfc_cf(ax)
    } else {
        1.0
    };
    r.copysign(x)
}

/// erf in float32 (absolute error < 2e-7 against the f64 erf, i.e. a few ulp), from fits made for this crate by least
/// squares against a double-precision erf: for |x| < 0.9, erf(x)/x as a degree-7 polynomial
/// in x² (relative error 2.6e-11); for 0.9 <= |x| < 4, ln erfc(|x|) as a degree-12 polynomial
/// in t = (|x| - 2.45) / 1.55 (absolute error 3e-10); beyond 4 erf rounds to ±1 in float32
/// (erfc(4) = 1.5e-8 is below half an ulp of 1). Everything is evaluated in f32 and
/// branch free (both fits computed, one selected), so loops over it vectorize.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    const SMALL: [f32; 8] = [
        1.128379167090802,
        -0.37612638823651273,
        0.11283789479817631,
        -0.026865941384115386,
        0.005222800481170813,
        -0.0008515414822170998,
        0.00011540593359404717,
        -1.0611388701276853e-05,
    ];
    const BIG: [f32; 13] = [
        -7.541539598592412,
        -8.150479560053848,
        -2.2637123960825156,
        -0.04208679090525616,
        0.013123540434764993,
        -0.00397896594886122,
        0.001131932393226202,
        -0.0002889857299510152,
        6.098662436111054e-05,
        -8.85223923039745e-06,
        -1.1800094352611813e-06,
        2.6218517397421197e-06,
        -1.0640782059321133e-06,
    ];
    // Both branches are evaluated and one selected, so loops over this vectorize.
    let ax = x.abs();
    let x2 = x * x;
    let small = x * SMALL.iter().rev().fold(0.0, |acc, &c| acc * x2 + c);
    let t = (ax.min(4.0) - 2.45) * (1.0 / 1.55);
    let ln_erfc = BIG.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    let big = (1.0 - ln_erfc.exp_fast()).copysign(x);
    if x.is_nan() {
        x
    } else if ax < 0.9 {
        small
    } else if ax < 4.0 {
        big
    } else {
        1.0f32.copysign(x)
    }
}

/// The unary ops on floats, with their attributes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Relu,
    LeakyRelu(f32),
    ThresholdedRelu(f32),
    Sigmoid,
    HardSigmoid(f32, f32),
    HardSwish,
    Tanh,
    Elu(f32),
    Celu(f32),
    Selu(f32, f32),
    Softplus,
    Softsign,
    Erf,
    Gelu { tanh: bool },
    Mish,
    Sqrt,
    Exp,
    Log,
    Neg,
    Abs,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
}

impl Kind {
    /// Ops defined for integer tensors too.
    fn numeric(self) -> bool {
        matches!(self, Kind::Relu | Kind::Neg | Kind::Abs | Kind::Sign)
    }
}

#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    x.sigmoid_vec()
}

#[inline(always)]
fn softplus<T: Real>(x: T) -> T {
    // log(1 + e^x) without overflow: x + log1p(e^-x) for x > 0.
    if x > T::zero() { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

#[inline(always)]
fn hard_sigmoid<T: Real>(x: T, al: T, be: T) -> T {
    (x * al + be).max_nan(T::zero()).min_nan(T::c(1.0))
}

#[inline(always)]
fn hard_swish<T: Real>(x: T) -> T {
    x * hard_sigmoid(x, T::c(1.0 / 6.0), T::c(0.5))
}

/// The Sigmoid op on one f32 (shared with the conv epilogue, so fused results are identical):
/// `1 / (1 + e^-x)`, within 2 ulp of the correctly rounded value (0 or a subnormal where that
/// is below 4.2e-39). It is the tail of every SiLU conv in the YOLO families, so it is built
/// for few vector ops: [`exp_f32`] with `-x` clamped to [-87, 89] (beyond, 1 + e^-x rounds to
/// 1, or e^-x is +inf and the quotient 0), then one division.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    // NaN stays NaN through clamp and exp_f32.
    1.0 / (1.0 + exp_f32((-x).clamp(-87.0, 89.0)))
}

/// The HardSigmoid op on one f32 with its `alpha` and `beta` attributes.
#[inline(always)]
pub(crate) fn hard_sigmoid_f32(x: f32, alpha: f32, beta: f32) -> f32 {
    hard_sigmoid(x, f32::c(alpha as f64), f32::c(beta as f64))
}

/// The HardSwish op on one f32.
#[inline(always)]
pub(crate) fn hard_swish_f32(x: f32) -> f32 {
    hard_swish(x)
}

fn apply_float<T: Real>(k: Kind, a: &ArrayD<T>) -> ArrayD<T> {
    let zero = T::zero();
    let one = T::c(1.0);
    let c = |v: f32| T::c(v as f64);
    match k {
        Kind::Relu => map_array(a, move |x| if x < zero { zero } else { x }),
        Kind::LeakyRelu(al) => {
            let al = c(al);
            map_array(a, move |x| if x < zero { x * al } else { x })
        }
        Kind::ThresholdedRelu(al) => {
            let al = c(al);
            map_array(a, move |x| if x > al { x } else { zero })
        }
        Kind::Sigmoid => map_array(a, sigmoid),
        Kind::HardSigmoid(al, be) => {
            let (al, be) = (c(al), c(be));
            map_array(a, move |x| hard_sigmoid(x, al, be))
        }
        Kind::HardSwish => map_array(a, hard_swish),
        Kind::Tanh => map_array(a, T::tanh_vec),
        Kind::Elu(al) => {
            let al = c(al);
            map_array(a, move |x| if x < zero { al * x.exp_m1() } else { x })
        }
        Kind::Celu(al) => {
            let al = c(al);
            map_array(a, move |x| if x < zero { al * (x / al).exp_m1() } else { x })
        }
        Kind::Selu(al, ga) => {
            let (al, ga) = (c(al), c(ga));
            map_array(a, move |x| if x <= zero { ga * (al * x.exp_m1()) } else { ga * x })
        }
        Kind::Softplus => map_array(a, softplus),
        Kind::Softsign => map_array(a, move |x| x / (one + Num::abs(x))),
        Kind::Erf => map_array(a, T::erf),
        Kind::Gelu { tanh: false } => map_array(a, |x| {
            let v = x.to_f64();
            T::c(0.5 * v * (1.0 + T::erf_wide(v * std::f64::consts::FRAC_1_SQRT_2)))
        }),
        Kind::Gelu { tanh: true } => map_array(a, |x| {
            let v = x.to_f64();
            let k = (2.0 / std::f64::consts::PI).sqrt();
            T::c(0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh()))
        }),
        Kind::Mish => map_array(a, T::mish_vec),
        Kind::Sqrt => map_array(a, T::sqrt),
        Kind::Exp => map_array(a, T::exp_vec),
        Kind::Log => map_array(a, T::ln),
        Kind::Neg => map_array(a, move |x| -x),
        Kind::Abs => map_array(a, Num::abs),
        Kind::Reciprocal => map_array(a, move |x| one / x),
        Kind::Floor => map_array(a, T::floor),
        Kind::Ceil => map_array(a, T::ceil),
        Kind::Round => map_array(a, T::round_even),
        Kind::Sign => map_array(a, Num::sign),
        Kind::Sin => map_array(a, T::sin),
        Kind::Cos => map_array(a, T::cos),
        Kind::Tan => map_array(a, T::tan),
        Kind::Asin => map_array(a, T::asin),
        Kind::Acos => map_array(a, T::acos),
        Kind::Atan => map_array(a, T::atan),
        Kind::Sinh => map_array(a, T::sinh),
        Kind::Cosh => map_array(a, T::cosh),
        Kind::Asinh => map_array(a, T::asinh),
        Kind::Acosh => map_array(a, T::acosh),
        Kind::Atanh => map_array(a, T::atanh),
    }
}

fn apply_numeric<T: Num>(k: Kind, a: &ArrayD<T>) -> ArrayD<T> {
    match k {
        Kind::Relu => map_array(a, |x| if x < T::zero() { T::zero() } else { x }),
        Kind::Neg => map_array(a, Num::neg),
        Kind::Abs => map_array(a, Num::abs),
        _ => map_array(a, Num::sign),
    }
}

#[derive(Debug)]
struct UnaryOp {
    name: &'static str,
    kind: Kind,
}

impl Op for UnaryOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let out = match x {
            Tensor::F32(a) => Tensor::F32(apply_float(self.kind, a)),
            Tensor::F64(a) => Tensor::F64(apply_float(self.kind, a)),
            Tensor::F16(a) => Tensor::F16(f32_to_f16(&apply_float(self.kind, &f16_to_f32(a)))),
            Tensor::Bool(_) => return Err(op_err!("{}: input 0 is bool, expected a numeric type", self.name)),
            _ if self.kind.numeric() => numeric_one!(x, |a| apply_numeric(self.kind, a))
                .ok_or_else(|| op_err!("{}: input 0 is {}, expected a numeric type", self.name, x.dtype_name()))?,
            _ => return Err(op_err!("{}: input 0 is {}, expected float, double or float16", self.name, x.dtype_name())),
        };
        Ok(vec![out])
    }
}

// ---------------------------------------------------------------------------------------
// Clip

#[derive(Debug)]
struct ClipOp {
    /// Bounds from attributes (opset < 11); from inputs 1 and 2 otherwise.
    attr_bounds: Option<(f32, f32)>,
}

fn clip_t<T: Num>(a: &ArrayD<T>, lo: Option<T>, hi: Option<T>) -> ArrayD<T> {
    match (lo, hi) {
        (Some(lo), Some(hi)) => map_array(a, move |x| {
            let v = if x < lo { lo } else { x };
            if v > hi { hi } else { v }
        }),
        (Some(lo), None) => map_array(a, move |x| if x < lo { lo } else { x }),
        (None, Some(hi)) => map_array(a, move |x| if x > hi { hi } else { x }),
        (None, None) => a.clone(),
    }
}

/// A scalar bound given as input `i` (omitted inputs are no bound).
fn bound(inputs: &[Option<&Tensor>], i: usize, x: &Tensor) -> OpResult<Option<f64>> {
    let Some(t) = inputs.get(i).copied().flatten() else { return Ok(None) };
    if t.dtype() != x.dtype() {
        return Err(op_err!("Clip: input {i} is {}, expected {} like input 0", t.dtype_name(), x.dtype_name()));
    }
    if t.len() != 1 {
        return Err(op_err!("Clip: input {i} has shape {:?}, expected a scalar", t.shape()));
    }
    Ok(t.to_f64_vec().first().copied())
}

impl Op for ClipOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let (lo, hi) = match self.attr_bounds {
            Some((lo, hi)) => (Some(lo as f64), Some(hi as f64)),
            None => (bound(inputs, 1, x)?, bound(inputs, 2, x)?),
        };
        let out = match x {
            Tensor::F16(a) => {
                let f = |v: Option<f64>| v.map(|v| f16::from_f64(v).to_f32());
                Tensor::F16(f32_to_f16(&clip_t(&f16_to_f32(a), f(lo), f(hi))))
            }
            _ => numeric_one!(x, |a| clip_t(a, lo.map(Num::from_f64), hi.map(Num::from_f64)))
                .ok_or_else(|| op_err!("Clip: input 0 is {}, expected a numeric type", x.dtype_name()))?,
        };
        Ok(vec![out])
    }
}

fn build_clip(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let attr_bounds = if ctx.opset < 11 { Some((ctx.attr_f("min", f32::NEG_INFINITY)?, ctx.attr_f("max", f32::INFINITY)?)) } else { None };
    Ok(Box::new(ClipOp { attr_bounds }))
}

// ---------------------------------------------------------------------------------------
// Not, Identity, Dropout

#[derive(Debug)]
struct NotOp;

impl Op for NotOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        match input(inputs, 0)? {
            Tensor::Bool(a) => Ok(vec![Tensor::Bool(map_array(a, |x: bool| !x))]),
            other => Err(op_err!("Not: input 0 is {}, expected bool", other.dtype_name())),
        }
    }
}

#[derive(Debug)]
struct IdentityOp;

impl Op for IdentityOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        Ok(vec![input(inputs, 0)?.clone()])
    }
}

#[derive(Debug)]
struct DropoutOp {
    mask: bool,
}

impl Op for DropoutOp {
    fn run(&self, inputs: &[Option<&Tensor>]) -> OpResult<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        check_training(inputs.get(2).copied().flatten(), inputs.get(1).copied().flatten())?;
        let mut out = vec![x.clone()];
        if self.mask {
            out.push(Tensor::Bool(ArrayD::from_elem(x.shape(), true)));
        }
        Ok(out)
    }
}

fn training_mode(t: &Tensor) -> OpResult<bool> {
    match t {
        Tensor::Bool(a) if a.len() == 1 => Ok(a.iter().any(|&v| v)),
        _ => Err(op_err!("Dropout: training_mode (input 2) is {} with shape {:?}, expected a bool scalar", t.dtype_name(), t.shape())),
    }
}

/// Training mode is only accepted with ratio 0 (then nothing is dropped).
fn check_training(training: Option<&Tensor>, ratio: Option<&Tensor>) -> OpResult<()> {
    if let Some(t) = training
        && training_mode(t)?
    {
        let r = ratio.and_then(|r| r.to_f64_vec().first().copied()).unwrap_or(0.5);
        if r != 0.0 {
            return Err(op_err!("Dropout: training_mode (input 2) is true with ratio {r}, only inference (or ratio 0) is supported"));
        }
    }
    Ok(())
}

fn build_dropout(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    // Opsets < 7 have `is_test`; like ONNX Runtime, the op is always run for inference.
    if ctx.constant(2).is_some() && (!ctx.has_input(1) || ctx.constant(1).is_some()) {
        check_training(ctx.constant(2), ctx.constant(1))?;
    }
    let mask = ctx.node.output.get(1).is_some_and(|s| !s.is_empty());
    Ok(Box::new(DropoutOp { mask }))
}

// ---------------------------------------------------------------------------------------

fn build_gelu(ctx: &BuildContext) -> OpResult<Box<dyn Op>> {
    let tanh = match ctx.attr_s("approximate", "none")?.as_str() {
        "none" => false,
        "tanh" => true,
        other => return Err(op_err!("attribute 'approximate' is '{other}', expected 'none' or 'tanh'")),
    };
    Ok(Box::new(UnaryOp { name: "Gelu", kind: Kind::Gelu { tanh } }))
}

fn unary(name: &'static str, kind: Kind) -> OpResult<Box<dyn Op>> {
    Ok(Box::new(UnaryOp { name, kind }))
}

pub fn register(r: &mut Registry) {
    r.register("Relu", |_| unary("Relu", Kind::Relu));
    r.register("LeakyRelu", |c| unary("LeakyRelu", Kind::LeakyRelu(c.attr_f("alpha", 0.01)?)));
    r.register("ThresholdedRelu", |c| unary("ThresholdedRelu", Kind::ThresholdedRelu(c.attr_f("alpha", 1.0)?)));
    r.register("Sigmoid", |_| unary("Sigmoid", Kind::Sigmoid));
    r.register("HardSigmoid", |c| unary("HardSigmoid", Kind::HardSigmoid(c.attr_f("alpha", 0.2)?, c.attr_f("beta", 0.5)?)));
    r.register("HardSwish", |_| unary("HardSwish", Kind::HardSwish));
    r.register("Tanh", |_| unary("Tanh", Kind::Tanh));
    r.register("Elu", |c| unary("Elu", Kind::Elu(c.attr_f("alpha", 1.0)?)));
    r.register("Celu", |c| {
        let alpha = c.attr_f("alpha", 1.0)?;
        if alpha == 0.0 {
            return Err(op_err!("attribute 'alpha' is 0, expected a non-zero value"));
        }
        unary("Celu", Kind::Celu(alpha))
    });
    r.register("Selu", |c| {
        let alpha = c.attr_f("alpha", 1.673_263_2)?;
        let gamma = c.attr_f("gamma", 1.050_701)?;
        unary("Selu", Kind::Selu(alpha, gamma))
    });
    r.register("Softplus", |_| unary("Softplus", Kind::Softplus));
    r.register("Softsign", |_| unary("Softsign", Kind::Softsign));
    r.register("Erf", |_| unary("Erf", Kind::Erf));
    r.register("Gelu", build_gelu);
    r.register("Mish", |_| unary("Mish", Kind::Mish));
    r.register("Sqrt", |_| unary("Sqrt", Kind::Sqrt));
    r.register("Exp", |_| unary("Exp", Kind::Exp));
    r.register("Log", |_| unary("Log", Kind::Log));
    r.register("Neg", |_| unary("Neg", Kind::Neg));
    r.register("Abs", |_| unary("Abs", Kind::Abs));
    r.register("Reciprocal", |_| unary("Reciprocal", Kind::Reciprocal));
    r.register("Floor", |_| unary("Floor", Kind::Floor));
    r.register("Ceil", |_| unary("Ceil", Kind::Ceil));
    r.register("Round", |_| unary("Round", Kind::Round));
    r.register("Sign", |_| unary("Sign", Kind::Sign));
    r.register("Sin", |_| unary("Sin", Kind::Sin));
    r.register("Cos", |_| unary("Cos", Kind::Cos));
    r.register("Tan", |_| unary("Tan", Kind::Tan));
    r.register("Asin", |_| unary("Asin", Kind::Asin));
    r.register("Acos", |_| unary("Acos", Kind::Acos));
    r.register("Atan", |_| unary("Atan", Kind::Atan));
    r.register("Sinh", |_| unary("Sinh", Kind::Sinh));
    r.register("Cosh", |_| unary("Cosh", Kind::Cosh));
    r.register("Asinh", |_| unary("Asinh", Kind::Asinh));
    r.register("Acosh", |_| unary("Acosh", Kind::Acosh));
    r.register("Atanh", |_| unary("Atanh", Kind::Atanh));
    r.register("Clip", build_clip);
    r.register("Not", |_| Ok(Box::new(NotOp)));
    r.register("Identity", |_| Ok(Box::new(IdentityOp)));
    r.register("Dropout", build_dropout);
}

#[cfg(test)]
mod tests {
    use super::super::binary::test_util::*;
    use super::*;

    #[test]
    fn round_even_is_rint_bit_for_bit() {
        // Ties, signed zeros, the 2^22 / 2^23 (2^51 / 2^52) boundaries, huge, ±∞, NaN payloads.
        let mut f: Vec<f32> = vec![0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 1e-45, -1e-45];
        f.extend([4194303.5, 4194304.5, 8388607.5, -8388607.5, 8388608.0, 8388609.0, 1.6777217e7, 3.0e38, f32::MAX, f32::MIN]);
        f.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::from_bits(0xffc0_1234)]);
        // Every f32 with a step of 2^-20 of the bit space, both signs, and every half-integer below 2^12.
        f.extend((0..1u32 << 12).map(|i| i as f32 + 0.5).flat_map(|v| [v, -v]));
        f.extend((0..1u32 << 20).map(|i| f32::from_bits(i.wrapping_mul(4099))));
        for &x in &f {
            assert_eq!(Real::round_even(x).to_bits(), x.round_ties_even().to_bits(), "{x:e} ({:#x})", x.to_bits());
        }
        let d = [0.5f64, -2.5, -0.0, 4503599627370495.5, -4503599627370495.5, 4503599627370497.0, 1e300, f64::NAN, f64::INFINITY];
        let d = d.into_iter().chain((0..1u64 << 18).map(|i| f64::from_bits(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))));
        for x in d {
            assert_eq!(Real::round_even(x).to_bits(), x.round_ties_even().to_bits(), "{x:e} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn erf_reference_values() {
        // erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149,
        // erf(2.5) = 0.9995930479825550, erf(-3) = -0.9999779095030014 (tables).
        for (x, want) in
            [(0.5, 0.520_499_877_813_046_5), (1.0, 0.842_700_792_949_714_9), (2.5, 0.999_593_047_982_555), (-3.0, -0.999_977_909_503_001_4)]
        {
            assert!((erf64(x) - want).abs() < 1e-14, "erf({x}) = {}", erf64(x));
        }
        assert_eq!(erf64(1e-300), 2.0 / std::f64::consts::PI.sqrt() * 1e-300);
        assert!(erf64(f64::NAN).is_nan());
        // The float32 fit against the f64 evaluation over [-5, 5].
        for i in 0..=100_000 {
            let x = -5.0 + 10.0 * i as f64 / 100_000.0;
            let got = erf_f32(x as f32) as f64;
            let want = erf64((x as f32) as f64);
            assert!((got - want).abs() < 2e-7, "erf_f32({x}) = {got} vs {want}");
        }
        assert!(erf_f32(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_within_two_ulp() {
        // Against the f64 sigmoid rounded to f32, over [-100, 100] (and the edges): at most
        // 2 ulp apart; where the exact value is below 4.2e-39 (x < -88.37) the result may be 0.
        let mut worst = 0u32;
        for i in 0..=400_000 {
            let x = -100.0 + 200.0 * i as f32 / 400_000.0;
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            let got = sigmoid_f32(x);
            if want < 4.2e-39 {
                assert!(got == 0.0 || (got as f64 - want).abs() < 4.2e-39, "sigmoid({x}) = {got}, want {want}");
                continue;
            }
            worst = worst.max((got.to_bits() as i32 - (want as f32).to_bits() as i32).unsigned_abs());
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert_eq!(sigmoid_f32(0.0), 0.5);
        assert_eq!(sigmoid_f32(-0.0), 0.5);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid_f32(-1000.0), 0.0);
        assert_eq!(sigmoid_f32(1000.0), 1.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_vec_accuracy() {
        // Against the f64 exp over [-87, 88] (and the overflow/underflow/NaN edges).
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.722_83 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            worst = worst.max(((x.exp_fast() as f64) - want).abs() / want);
        }
        assert!(worst < 2.5e-7, "max relative error {worst}");
        assert_eq!(100.0f32.exp_fast(), f32::INFINITY);
        assert_eq!((-110.0f32).exp_fast(), 0.0);
        // Subnormal: exp(-100) = 3.720076e-44 (to f32's subnormal spacing 1.4e-45).
        assert!(((-100.0f32).exp_fast() as f64 - 3.720_075_976_020_836e-44).abs() < 1.5e-45);
        assert!(f32::NAN.exp_fast().is_nan());
        assert_eq!(0.0f32.exp_fast(), 1.0);
    }

    /// `cargo test --release --lib bench_unary -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_unary() {
        let n = 64 * 160 * 160;
        let x = f32t(&[1, 64, 160, 160], &(0..n).map(|i| ((i % 1000) as f32 - 500.0) * 0.01).collect::<Vec<_>>());
        let c = f32t(&[1, 64, 1, 1], &(0..64).map(|i| i as f32).collect::<Vec<_>>());
        let time = |name: &str, f: &dyn Fn() -> Tensor| {
            f();
            let t = std::time::Instant::now();
            for _ in 0..20 {
                std::hint::black_box(f());
            }
            eprintln!("{name:<12} {:.3} ms", t.elapsed().as_secs_f64() * 1000.0 / 20.0);
        };
        for op in ["Relu", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh", "Exp", "Erf", "Gelu", "Mish"] {
            time(op, &|| run(op, std::slice::from_ref(&x)).unwrap());
        }
        let two = [x.clone(), x.clone()];
        let per_c = [x.clone(), c.clone()];
        time("Add", &|| run("Add", &two).unwrap());
        time("Mul[1,C,1,1]", &|| run("Mul", &per_c).unwrap());
        let Tensor::F32(a) = &x else { unreachable!() };
        time("zip_map", &|| Tensor::F32(super::super::binary::zip_map(a, a, |p: f32, q: f32| p + q).unwrap()));
        time("map_array", &|| Tensor::F32(map_array(a, |p: f32| p + 1.0)));
        time("clone", &|| x.clone());
    }

    #[test]
    fn tanh_and_mish_fast() {
        let mut worst = (0.0f64, 0.0f64);
        for i in 0..=200_000 {
            let x = -12.0 + 24.0 * i as f32 / 200_000.0;
            let v = x as f64;
            let t = v.tanh();
            worst.0 = worst.0.max(((x.tanh_fast() as f64) - t).abs() / t.abs().max(1e-30));
            let m = v * (v.exp().ln_1p()).tanh();
            worst.1 = worst.1.max(((x.mish_fast() as f64) - m).abs() / m.abs().max(1e-30));
        }
        assert!(worst.0 < 3e-7 && worst.1 < 5e-7, "max relative errors tanh {} mish {}", worst.0, worst.1);
        assert!(f32::NAN.tanh_fast().is_nan() && f32::NAN.mish_fast().is_nan());
        assert_eq!(f32::INFINITY.tanh_fast(), 1.0);
        assert_eq!(f32::NEG_INFINITY.tanh_fast(), -1.0);
        assert_eq!(100.0f32.mish_fast(), 100.0);
        assert_eq!((-0.0f32).tanh_fast().to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn activations() {
        let x = f32t(&[3], &[-1.0, 0.0, 2.0]);
        assert_close(&run("Relu", std::slice::from_ref(&x)).unwrap(), &[0.0, 0.0, 2.0], 0.0);
        // sigmoid(-1) = 1/(1+e) = 0.2689414213699951, sigmoid(2) = 0.8807970779778823.
        assert_close(&run("Sigmoid", std::slice::from_ref(&x)).unwrap(), &[0.268_941_421_369_995_1, 0.5, 0.880_797_077_977_882_3], 1e-7);
        // HardSwish: x * clamp(x/6 + 0.5, 0, 1): -1 * 1/3, 0, 2 * 5/6.
        assert_close(&run("HardSwish", std::slice::from_ref(&x)).unwrap(), &[-1.0 / 3.0, 0.0, 5.0 / 3.0], 1e-7);
        // Softplus(2) = ln(1 + e^2) = 2.1269280110429727; Softsign(2) = 2/3.
        assert_close(
            &run("Softplus", std::slice::from_ref(&x)).unwrap(),
            &[0.313_261_687_518_222_8, std::f64::consts::LN_2, 2.126_928_011_042_972_7],
            1e-7,
        );
        assert_close(&run("Softsign", std::slice::from_ref(&x)).unwrap(), &[-0.5, 0.0, 2.0 / 3.0], 1e-7);
        // Gelu(2) = 0.5 * 2 * (1 + erf(sqrt 2)) = 1 + erf(1.4142135623730951) = 1.9544997361036416.
        assert_close(&run("Gelu", std::slice::from_ref(&x)).unwrap(), &[-0.158_655_253_931_457_05, 0.0, 1.954_499_736_103_641_6], 1e-7);
        // LeakyRelu alpha 0.1: -1 -> -0.1.
        let op = build("LeakyRelu", 16, vec![float("alpha", 0.1)], 1, 1).unwrap();
        assert_close(&op.run(&[Some(&x)]).unwrap()[0], &[-0.1, 0.0, 2.0], 1e-7);
        // Round ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2.
        let r = run("Round", &[f32t(&[4], &[0.5, 1.5, 2.5, -2.5])]).unwrap();
        assert_close(&r, &[0.0, 2.0, 2.0, -2.0], 0.0);
    }

    #[test]
    fn integer_and_bool_inputs() {
        assert_eq!(run("Abs", &[i64t(&[2], &[-3, 4])]).unwrap(), i64t(&[2], &[3, 4]));
        assert_eq!(run("Sign", &[i32t(&[3], &[-3, 0, 4])]).unwrap(), i32t(&[3], &[-1, 0, 1]));
        assert_eq!(run("Not", &[boolt(&[2], &[true, false])]).unwrap(), boolt(&[2], &[false, true]));
        let e = run("Sigmoid", &[i64t(&[1], &[1])]).unwrap_err().0;
        assert!(e.contains("Sigmoid: input 0 is int64, expected float"), "{e}");
        let e = run("Not", &[i64t(&[1], &[1])]).unwrap_err().0;
        assert!(e.contains("expected bool"), "{e}");
    }

    #[test]
    fn clip_forms() {
        // Opset 6 attributes: clamp to [0, 6].
        let op = build("Clip", 6, vec![float("min", 0.0), float("max", 6.0)], 1, 1).unwrap();
        let x = f32t(&[3], &[-1.0, 3.0, 9.0]);
        assert_close(&op.run(&[Some(&x)]).unwrap()[0], &[0.0, 3.0, 6.0], 0.0);
        // Opset 13 inputs, min omitted: only max = 2 applies; int8 works too.
        let op = build("Clip", 13, vec![], 3, 1).unwrap();
        let hi = f32t(&[], &[2.0]);
        assert_close(&op.run(&[Some(&x), None, Some(&hi)]).unwrap()[0], &[-1.0, 2.0, 2.0], 0.0);
        let xi = Tensor::I8(ndarray::arr1(&[-100i8, 5, 100]).into_dyn());
        let lo = Tensor::I8(ndarray::arr0(-10i8).into_dyn());
        assert_close(&op.run(&[Some(&xi), Some(&lo), None]).unwrap()[0], &[-10.0, 5.0, 100.0], 0.0);
        // min > max gives max everywhere.
        let lo = f32t(&[], &[3.0]);
        let hi = f32t(&[], &[1.0]);
        assert_close(&op.run(&[Some(&x), Some(&lo), Some(&hi)]).unwrap()[0], &[1.0, 1.0, 1.0], 0.0);
        let e = op.run(&[Some(&x), Some(&i64t(&[], &[0])), None]).unwrap_err().0;
        assert!(e.contains("input 1 is int64, expected float"), "{e}");
    }

    #[test]
    fn dropout_inference() {
        let op = build("Dropout", 13, vec![], 1, 2).unwrap();
        let x = f32t(&[2], &[1.0, 2.0]);
        let out = op.run(&[Some(&x)]).unwrap();
        assert_eq!(out[0], x);
        assert_eq!(out[1], boolt(&[2], &[true, true]));
        let t = std::sync::Arc::new(boolt(&[], &[true]));
        let half = std::sync::Arc::new(f32t(&[], &[0.5]));
        let e = build_with("Dropout", 13, vec![], 3, 1, vec![None, Some(half), Some(t.clone())]).unwrap_err().0;
        assert!(e.contains("training_mode (input 2) is true with ratio 0.5"), "{e}");
        // Known only at run time: the omitted ratio defaults to 0.5.
        let op = build("Dropout", 13, vec![], 3, 1).unwrap();
        let e = op.run(&[Some(&x), None, Some(&t)]).unwrap_err().0;
        assert!(e.contains("is true with ratio 0.5"), "{e}");
        // Training with ratio 0 drops nothing.
        let zero = std::sync::Arc::new(f32t(&[], &[0.0]));
        let op = build_with("Dropout", 13, vec![], 3, 2, vec![None, Some(zero.clone()), Some(t.clone())]).unwrap();
        let out = op.run(&[Some(&x), Some(&zero), Some(&t)]).unwrap();
        assert_eq!(out[0], x);
        let e = build("Gelu", 20, vec![string("approximate", "fast")], 1, 1).unwrap_err().0;
        assert!(e.contains("'approximate' is 'fast'"), "{e}");
    }
}

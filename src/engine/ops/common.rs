//! Helpers every op family shares: the [`Num`] element trait, [`contiguous`], the thresholds
//! above which loops run on several threads, and the conversion of window-attribute errors
//! ([`crate::onnx::window`]) into op errors.

use std::borrow::Cow;

use half::f16;
use ndarray::ArrayD;

use crate::engine::error::OpError;
use crate::onnx::window::WindowError;

/// Element-wise outputs with at least this many elements are computed on several threads.
pub(crate) const PAR_MIN: usize = 1 << 16;

/// Element count above which the reductions, pools and resizes split their loops over
/// threads (their per-element work is larger than an element-wise op's).
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// Element count of one parallel task for `n` elements.
pub(crate) fn par_chunk(n: usize) -> usize {
    (n / (rayon::current_num_threads().max(1) * 4)).max(1 << 14)
}

/// The elements of `a` in row-major order, borrowed when `a` is contiguous.
pub(crate) fn contiguous<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

impl From<WindowError> for OpError {
    fn from(e: WindowError) -> Self {
        OpError(e.0)
    }
}

/// A numeric element type: arithmetic for the element-wise ops (integer ops wrap like C++,
/// two's complement; floats follow IEEE, NaN propagates) and the f64 round trip the
/// reductions, pools and resizes compute through.
pub(crate) trait Num: Copy + Send + Sync + Default + PartialOrd + 'static {
    const FLOAT: bool;
    /// Smallest / largest representable value as f64 (infinities for floats).
    const LOWEST: f64;
    const HIGHEST: f64;
    fn zero() -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// Division; integers truncate toward zero (the caller rejects zero divisors).
    fn div(self, o: Self) -> Self;
    /// C `fmod`: the result has the sign of the dividend.
    fn rem_trunc(self, o: Self) -> Self;
    /// Python `%`: the result has the sign of the divisor.
    fn rem_floor(self, o: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    fn sign(self) -> Self;
    fn is_nan(self) -> bool;
    fn to_f64(self) -> f64;
    /// Saturating conversion (`as`).
    fn from_f64(v: f64) -> Self;
    fn max_nan(self, o: Self) -> Self {
        if self.is_nan() || self >= o { self } else { o }
    }
    fn min_nan(self, o: Self) -> Self {
        if self.is_nan() || self <= o { self } else { o }
    }
}

macro_rules! impl_num_float {
    ($t:ty) => {
        impl Num for $t {
            const FLOAT: bool = true;
            const LOWEST: f64 = f64::NEG_INFINITY;
            const HIGHEST: f64 = f64::INFINITY;
            fn zero() -> Self {
                0.0
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self - o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn rem_trunc(self, o: Self) -> Self {
                self % o
            }
            fn rem_floor(self, o: Self) -> Self {
                let r = self % o;
                if r == 0.0 {
                    (0.0 as $t).copysign(o)
                } else if (r < 0.0) != (o < 0.0) {
                    r + o
                } else {
                    r
                }
            }
            #[inline(always)]
            fn neg(self) -> Self {
                -self
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    self * 0.0
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}
impl_num_float!(f32);
impl_num_float!(f64);

macro_rules! impl_num_int {
    ($t:ty, $signed:expr) => {
        impl Num for $t {
            const FLOAT: bool = false;
            const LOWEST: f64 = <$t>::MIN as f64;
            const HIGHEST: f64 = <$t>::MAX as f64;
            fn zero() -> Self {
                0
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                if o == 0 { 0 } else { self.wrapping_div(o) }
            }
            fn rem_trunc(self, o: Self) -> Self {
                if o == 0 { 0 } else { self.wrapping_rem(o) }
            }
            fn rem_floor(self, o: Self) -> Self {
                let r = self.rem_trunc(o);
                #[allow(unused_comparisons)]
                if r != 0 && ((r < 0) != (o < 0)) { r.wrapping_add(o) } else { r }
            }
            #[inline(always)]
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            #[allow(unused_comparisons)]
            fn abs(self) -> Self {
                if self < 0 { self.wrapping_neg() } else { self }
            }
            #[allow(unused_comparisons)]
            fn sign(self) -> Self {
                if self > 0 {
                    1
                } else if self < 0 {
                    (0 as $t).wrapping_sub(1)
                } else {
                    0
                }
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}
impl_num_int!(i8, true);
impl_num_int!(u8, false);
impl_num_int!(i16, true);
impl_num_int!(u16, false);
impl_num_int!(i32, true);
impl_num_int!(u32, false);
impl_num_int!(i64, true);
impl_num_int!(u64, false);

/// float16 computes in f32 and rounds back (exact for + − × ÷: f32 holds every f16 product
/// and quotient to more than twice f16's precision).
macro_rules! via_f32 {
    ($($name:ident),*) => {$(
        fn $name(self, o: Self) -> Self {
            f16::from_f32(Num::$name(self.to_f32(), o.to_f32()))
        }
    )*};
}

impl Num for f16 {
    const FLOAT: bool = true;
    const LOWEST: f64 = f64::NEG_INFINITY;
    const HIGHEST: f64 = f64::INFINITY;
    fn zero() -> Self {
        f16::ZERO
    }
    via_f32!(add, sub, mul, div, rem_trunc, rem_floor);
    fn neg(self) -> Self {
        -self
    }
    fn abs(self) -> Self {
        f16::from_f32(self.to_f32().abs())
    }
    fn sign(self) -> Self {
        f16::from_f32(Num::sign(self.to_f32()))
    }
    fn is_nan(self) -> bool {
        f16::is_nan(self)
    }
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}

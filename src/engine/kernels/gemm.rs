//! Strided matrix multiplication, `dst = A·B` or `dst += scale·A·B`, for f32/f64 through the
//! `gemm` crate (runtime dispatch to AVX2/AVX-512/NEON kernels) and a plain loop for the
//! other element types.

use gemm::Parallelism;

/// A strided read-only matrix view: element (i, j) is at `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major contiguous matrix.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// Element types with a GEMM.
pub trait GemmElem: Copy + Send + Sync + 'static + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    /// Whether the `gemm` crate handles this type (otherwise a plain loop is used).
    const FAST: bool;
}

macro_rules! gemm_elem {
    ($($t:ty: $zero:expr, $one:expr, $fast:expr;)*) => {$(
        impl GemmElem for $t {
            const ZERO: Self = $zero;
            const ONE: Self = $one;
            const FAST: bool = $fast;
        }
    )*};
}
gemm_elem! {
    f32: 0.0, 1.0, true;
    f64: 0.0, 1.0, true;
    i32: 0, 1, false;
    i64: 0, 1, false;
    u32: 0, 1, false;
    u64: 0, 1, false;
}

/// Multiply-adds below which threading does not pay.
const PARALLEL_WORK: usize = 1 << 18;

/// `dst = A·B` (`accumulate == false`) or `dst = dst + scale·A·B`, or with `accumulate == false`
/// `dst = scale·A·B`. `dst` is m×n with row stride `dst_rs` and column stride 1.
/// `threads` > 1 lets the multiplication use that many rayon threads when it is big enough.
///
/// # Panics
/// When a view does not fit its slice or the dimensions disagree (caller bugs, never user data).
pub fn gemm<T: GemmElem>(dst: &mut [T], dst_rs: usize, a: MatRef<T>, b: MatRef<T>, accumulate: bool, scale: T, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: inner dimensions differ");
    assert!(a.fits() && b.fits(), "gemm: operand views exceed their buffers");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "gemm: destination view exceeds its buffer");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_rs..i * dst_rs + n].fill(T::ZERO);
            }
        }
        return;
    }
    if T::FAST {
        // SAFETY: every view was checked to lie inside its slice above; `dst` is borrowed
        // mutably and cannot alias the shared operands.
        unsafe { gemm_ptr(dst.as_mut_ptr(), dst_rs, a, b, accumulate, scale, threads) };
        return;
    }
    // Plain loop (integers): i-k-j order so the innermost loop runs along rows of B and dst.
    let mut row = vec![T::ZERO; n];
    for i in 0..m {
        row.fill(T::ZERO);
        for p in 0..k {
            let av = a.data[i * a.rs + p * a.cs];
            for (j, r) in row.iter_mut().enumerate() {
                *r = *r + av * b.data[p * b.rs + j * b.cs];
            }
        }
        let d = &mut dst[i * dst_rs..i * dst_rs + n];
        for (d, &r) in d.iter_mut().zip(&row) {
            *d = if accumulate { *d + scale * r } else { scale * r };
        }
    }
}

/// [`gemm`] into a raw destination (f32/f64 only), for tasks writing disjoint blocks of one
/// output from several threads.
///
/// # Safety
/// `dst` must be valid for writes (and reads when `accumulate`) of the m×n block with row
/// stride `dst_rs` and column stride 1, not aliasing `a` or `b`, and not written concurrently.
/// `a` and `b` must fit their slices and have matching inner dimensions.
pub unsafe fn gemm_ptr<T: GemmElem>(dst: *mut T, dst_rs: usize, a: MatRef<T>, b: MatRef<T>, accumulate: bool, scale: T, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert!(T::FAST && b.rows == k && a.fits() && b.fits());
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_WORK { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: guaranteed by the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::ONE,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_and_accumulation() {
        // A = [[1,2],[3,4]], B = [[5,6],[7,8]]: A·B = [[19,22],[43,50]].
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [5.0f32, 6.0, 7.0, 8.0];
        let mut d = [0.0f32; 4];
        gemm(&mut d, 2, MatRef::row_major(&a, 2, 2), MatRef::row_major(&b, 2, 2), false, 1.0, 1);
        assert_eq!(d, [19.0, 22.0, 43.0, 50.0]);
        // Aᵀ·B = [[1,3],[2,4]]·B = [[26,30],[38,44]]; accumulated with scale 0.5 onto 1s.
        let mut d = [1.0f32; 4];
        gemm(&mut d, 2, MatRef::row_major(&a, 2, 2).t(), MatRef::row_major(&b, 2, 2), true, 0.5, 1);
        assert_eq!(d, [14.0, 16.0, 20.0, 23.0]);
        // Same in i64 through the plain loop.
        let (ai, bi) = ([1i64, 2, 3, 4], [5i64, 6, 7, 8]);
        let mut di = [0i64; 4];
        gemm(&mut di, 2, MatRef::row_major(&ai, 2, 2), MatRef::row_major(&bi, 2, 2), false, 1, 1);
        assert_eq!(di, [19, 22, 43, 50]);
    }
}

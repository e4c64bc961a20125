//! Shared compute kernels of the engine: a strided GEMM over the `gemm` crate, and the
//! convolution building blocks (im2col, col2im, a direct depthwise kernel), and the int8
//! dot-product blocks of the deploy models' integer layers.

pub mod conv;
pub mod dot;
pub mod epilogue;
pub mod exp;
pub mod gemm;
pub mod panel;
pub mod softmax;
pub mod split;
pub mod winograd;

/// A raw pointer that tasks writing disjoint parts of one buffer may share across threads.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
// SAFETY: users only write disjoint regions from different threads.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    #[inline]
    pub fn get(self) -> *mut T {
        self.0
    }
}

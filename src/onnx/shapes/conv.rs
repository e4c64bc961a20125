//! Shape rules: Conv, ConvInteger, QLinearConv and ConvTranspose. The window rules are
//! [`crate::onnx::window`]'s, shared with the engine.

use super::{Ctx, Infer, Out, Outs, Unresolved, fail, outs};
use crate::onnx::attr::NodeExt;
use crate::onnx::proto::NodeProto;
use crate::onnx::window::{TransposeOutput, Window, WindowAttrs};

/// Shape dims as `usize` (inference only records non-negative dims).
pub(super) fn dims(shape: &[i64]) -> Infer<Vec<usize>> {
    shape.iter().map(|&d| usize::try_from(d).map_err(|_| Unresolved(format!("negative dimension in {shape:?}")))).collect()
}

/// The node's window over `n` spatial axes; a convolution's kernel is its weight's spatial
/// dims (`weight_kernel`), a pool's its `kernel_shape`.
pub(super) fn read_window(node: &NodeProto, n: usize, weight_kernel: Option<&[i64]>) -> Infer<Window> {
    let weight_kernel = weight_kernel.map(dims).transpose()?;
    Ok(WindowAttrs::read(node)?.window(n, weight_kernel.as_deref())?)
}

/// Conv / ConvInteger / QLinearConv: `[N, M, spatial...]` with M = W.shape[0].
pub(super) fn conv(cx: &Ctx, x_in: usize, w_in: usize, dtype: Option<i32>) -> Infer<Outs> {
    let (x, w) = (cx.shape(x_in)?, cx.shape(w_in)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if group <= 0 || x[1] != w[1] * group {
        return fail(format!("input channels {} != weight channels {} × group {group}", x[1], w[1]));
    }
    let win = read_window(cx.node, x.len() - 2, Some(&w[2..]))?;
    let mut shape = vec![x[0], w[0]];
    shape.extend(win.output(&dims(&x[2..])?, false)?.into_iter().map(|d| d as i64));
    outs(vec![Out::new(shape, dtype)])
}

/// ConvTranspose: `[N, W.shape[1] × group, spatial...]`.
pub(super) fn conv_transpose(cx: &Ctx) -> Infer<Outs> {
    let (x, w) = (cx.shape(0)?, cx.shape(1)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a transposed convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if x[1] != w[0] {
        return fail(format!("input channels {} != weight dim 0 {}", x[1], w[0]));
    }
    let win = read_window(cx.node, x.len() - 2, Some(&w[2..]))?;
    let axes = TransposeOutput::read(cx.node)?.output(&win, &dims(&x[2..])?)?;
    let mut shape = vec![x[0], w[1] * group];
    shape.extend(axes.iter().map(|a| a.out as i64));
    outs(vec![Out::new(shape, cx.dtype(0))])
}

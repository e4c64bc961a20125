//! Shape rules: MaxPool, AveragePool, LpPool and the global pools.

use super::conv::{dims, read_window};
use super::{Ctx, INT64, Infer, Out, Outs, fail, outs};
use crate::onnx::attr::NodeExt;

/// MaxPool / AveragePool / LpPool (MaxPool's optional Indices output is INT64).
pub(super) fn pool(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    if x.len() < 3 {
        return fail(format!("input {x:?} has no spatial axes"));
    }
    let win = read_window(cx.node, x.len() - 2, None)?;
    let ceil_mode = cx.node.attr_i("ceil_mode", 0)? != 0;
    let mut shape = x[..2].to_vec();
    shape.extend(win.output(&dims(&x[2..])?, ceil_mode)?.into_iter().map(|d| d as i64));
    outs(vec![Out::new(shape.clone(), cx.dtype(0)), Out::new(shape, Some(INT64))])
}

/// Global pools: `[N, C, 1, ...]`.
pub(super) fn global_pool(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    if x.len() < 3 {
        return fail(format!("input {x:?} has no spatial axes"));
    }
    let mut shape = x[..2].to_vec();
    shape.resize(x.len(), 1);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

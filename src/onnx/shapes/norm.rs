//! Shape rules: BatchNormalization and LayerNormalization.

use super::{Ctx, Infer, Out, Outs, Unresolved, norm_axis, outs};
use crate::onnx::attr::NodeExt;

/// BatchNormalization: Y like X; training-mode outputs (running/saved mean and var) are `[C]`.
pub(super) fn batch_norm(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let c = *x.get(1).ok_or_else(|| Unresolved(format!("input {x:?} has no channel axis")))?;
    let mut list = vec![Out::new(x.to_vec(), cx.dtype(0))];
    for _ in 1..cx.node.output.len() {
        list.push(Out::new(vec![c], cx.dtype(1)));
    }
    outs(list)
}

/// LayerNormalization: Y like X; Mean and InvStdDev keep the axes before `axis`, 1 after.
pub(super) fn layer_norm(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", -1)?, x.len())?;
    let stash = cx.node.attr_i("stash_type", 1)? as i32;
    let mut reduced = x[..axis].to_vec();
    reduced.resize(x.len(), 1);
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)), Out::new(reduced.clone(), Some(stash)), Out::new(reduced, Some(stash))])
}

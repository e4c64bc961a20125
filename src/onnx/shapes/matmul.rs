//! Shape rules: Gemm and MatMul (incl. the integer and QLinear forms).

use super::{Ctx, Infer, Out, Outs, broadcast, fail, outs};
use crate::onnx::attr::NodeExt;

/// Gemm: `[M, N]` from A `[M, K]` (or `[K, M]` with transA) and B `[K, N]` (or `[N, K]`).
pub(super) fn gemm(cx: &Ctx) -> Infer<Outs> {
    let (a, b) = (cx.shape(0)?, cx.shape(1)?);
    if a.len() != 2 || b.len() != 2 {
        return fail(format!("Gemm needs 2-D inputs, got {a:?} and {b:?}"));
    }
    let (m, ka) = if cx.node.attr_i("transA", 0)? != 0 { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if cx.node.attr_i("transB", 0)? != 0 { (b[1], b[0]) } else { (b[0], b[1]) };
    if ka != kb {
        return fail(format!("inner dimensions differ: A {a:?}, B {b:?}"));
    }
    outs(vec![Out::new(vec![m, n], cx.dtype(0))])
}

/// MatMul with numpy semantics: 1-D operands are promoted and the added axis removed, leading
/// (batch) dims broadcast.
pub(super) fn matmul(cx: &Ctx, a_in: usize, b_in: usize, dtype: Option<i32>) -> Infer<Outs> {
    let (a, b) = (cx.shape(a_in)?, cx.shape(b_in)?);
    outs(vec![Out::new(matmul_shape(a, b)?, dtype)])
}

fn matmul_shape(a: &[i64], b: &[i64]) -> Infer<Vec<i64>> {
    if a.is_empty() || b.is_empty() {
        return fail("MatMul operands must not be scalars");
    }
    let a2: Vec<i64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<i64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    if a2[ra - 1] != b2[rb - 2] {
        return fail(format!("inner dimensions differ: {a:?} × {b:?}"));
    }
    let mut shape = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    if a.len() > 1 {
        shape.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        shape.push(b2[rb - 1]);
    }
    Ok(shape)
}

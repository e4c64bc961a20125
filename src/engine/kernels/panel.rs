//! A register-blocked f32 kernel for the GEMM shape convolutions produce: `dst = W·X + bias`
//! with few rows (W is C_out × K, often only 16–96 rows) and many columns (X is a K × pixels
//! im2col tile, or the input itself for 1×1 convs).
//!
//! General GEMM libraries block for square-ish problems and lose most of their speed on such
//! thin shapes (24×864×25600 runs at 23–45 GFLOP/s in every crate we measured). Here the
//! weights are packed once into panels of [`MR`] rows stored k-major, and one AVX-512 tile of
//! 8 rows × 48 columns keeps 24 accumulators in registers while it walks all of K: per k it
//! loads 3 vectors of X and broadcasts 8 weights for 24 FMAs. The bias seeds the accumulators,
//! so the output is written once and never zero-filled.
//!
//! Only x86-64 with AVX-512F takes this path (detected at run time); elsewhere
//! [`PackedWeights::fast_path`] is false and callers use the general GEMM.

/// Rows per weight panel.
pub const MR: usize = 8;

/// Weights `W` (M × K, row-major) packed as ⌈M/8⌉ panels; panel p holds, for each k, the 8
/// values `W[8p..8p+8, k]` (zero-padded past M).
pub struct PackedWeights {
    rows: usize,
    depth: usize,
    // Read only by the x86-64 kernel; other targets never take the fast path.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    data: Vec<f32>,
}

impl PackedWeights {
    pub fn new(w: &[f32], rows: usize, depth: usize) -> Self {
        assert_eq!(w.len(), rows * depth, "panel: weight length");
        let panels = rows.div_ceil(MR);
        let mut data = vec![0.0f32; panels * depth * MR];
        for (r, row) in w.chunks_exact(depth.max(1)).enumerate().take(rows) {
            let panel = &mut data[(r / MR) * depth * MR..][..depth * MR];
            for (k, &v) in row.iter().enumerate() {
                panel[k * MR + r % MR] = v;
            }
        }
        PackedWeights { rows, depth, data }
    }

    /// Whether this machine runs the fast kernel (otherwise use the general GEMM).
    pub fn fast_path() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The GEMM depth K.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// `dst[m, j] = bias[m] + Σ_k W[m, k] · x[rows[k] + j]` for m < M, j < cols, where row m of
    /// `dst` starts at `dst + m·dst_rs`. Row k of the right operand starts at `x + rows[k]`:
    /// a plain row-major matrix has `rows[k] = k·stride`, and a stride-1 convolution can point
    /// each (channel, tap) row straight into its (padded) input plane instead of an im2col copy.
    ///
    /// # Safety
    /// [`Self::fast_path`] must be true; `rows` has `depth` entries and `x + rows[k] + j` is
    /// readable for every k and j < cols; `dst` must be valid for writes of the M × cols block
    /// and not be written concurrently.
    pub unsafe fn multiply(&self, x: *const f32, rows: &[usize], cols: usize, bias: Option<&[f32]>, dst: *mut f32, dst_rs: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.multiply_affine(x, rows, cols, bias, None, dst, dst_rs) }
    }

    /// [`Self::multiply`], then `dst[m, j] = dst[m, j] · a[m] + b[m]` (a multiply, then an add)
    /// on the accumulators before they are stored, when `affine` is `(a, b)`.
    ///
    /// # Safety
    /// As for [`Self::multiply`]; `a` and `b` have at least M values.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn multiply_affine(
        &self,
        x: *const f32,
        rows: &[usize],
        cols: usize,
        bias: Option<&[f32]>,
        affine: Option<(&[f32], &[f32])>,
        dst: *mut f32,
        dst_rs: usize,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { self.multiply_panels(0..self.panels(), x, rows, cols, bias, affine, dst, dst_rs) }
    }

    /// Number of [`MR`]-row panels.
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(MR)
    }

    /// [`Self::multiply_affine`] for output rows `panels.start·MR..min(panels.end·MR, M)`
    /// only, with `dst` pointing at the first of them (`bias` and `affine` still indexed by
    /// absolute row). Each output is the same sum as in a call over all panels, so threads
    /// may split a product by panels without changing any result.
    ///
    /// # Safety
    /// As for [`Self::multiply_affine`], for the selected rows.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn multiply_panels(
        &self,
        panels: std::ops::Range<usize>,
        x: *const f32,
        rows: &[usize],
        cols: usize,
        bias: Option<&[f32]>,
        affine: Option<(&[f32], &[f32])>,
        dst: *mut f32,
        dst_rs: usize,
    ) {
        debug_assert_eq!(rows.len(), self.depth);
        debug_assert!(panels.end <= self.panels());
        debug_assert!(bias.is_none_or(|b| b.len() >= self.rows));
        assert!(affine.is_none_or(|(a, b)| a.len() >= self.rows && b.len() >= self.rows));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller.
        unsafe {
            avx512::multiply(self, panels, x, rows, cols, bias, affine, dst, dst_rs)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (panels, x, rows, cols, bias, affine, dst, dst_rs);
            unreachable!("PackedWeights::multiply without the fast path")
        }
    }
}

/// Row starts of a row-major matrix with `depth` rows and row stride `stride`.
pub fn strided_rows(depth: usize, stride: usize) -> Vec<usize> {
    (0..depth).map(|k| k * stride).collect()
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MR, PackedWeights};
    use std::arch::x86_64::*;

    /// Columns per register tile: 3 vectors of 16.
    const NR: usize = 48;

    /// Depth block: 128 operand rows of a 48-column tile are 24–32 KiB (3 or 4 cache lines
    /// each), within the 32–48 KiB L1 data cache of AVX-512 cores.
    const KC: usize = 128;

    /// How many operand rows ahead the first panel of a tile prefetches.
    const PREFETCH_AHEAD: usize = 16;

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn multiply(
        w: &PackedWeights,
        panels: std::ops::Range<usize>,
        x: *const f32,
        rows_at: &[usize],
        cols: usize,
        bias: Option<&[f32]>,
        affine: Option<(&[f32], &[f32])>,
        dst: *mut f32,
        dst_rs: usize,
    ) {
        // Column tiles outside, panels inside: a tile's operand rows (K × 48 values) are read
        // by every panel while they are still in cache, instead of all of X once per panel.
        // Each output is the same sum either way.
        // The depth is walked in blocks of KC: a tile's operand rows (KC × 48 values) stay in
        // L1 while every panel reads them. Between blocks the accumulators go through `dst`
        // (an f32 store and reload, exact), so each output is the same sum in the same order
        // as in one pass over all of K.
        let run = |j: usize, width: usize| {
            for k0 in (0..w.depth).step_by(KC) {
                let k1 = (k0 + KC).min(w.depth);
                let (first, last) = (k0 == 0, k1 == w.depth);
                for p in panels.clone() {
                    let rows = (w.rows - p * MR).min(MR);
                    // SAFETY (all calls): the caller guarantees every row of x has `cols`
                    // readable floats and dst covers rows × cols; each tile stays within
                    // columns j..j+width ≤ cols and rows < `rows` of its panel.
                    unsafe {
                        let panel = w.data.as_ptr().add((p * w.depth + k0) * MR);
                        // The bias seeds only the first depth block; later ones reload.
                        let b = first.then(|| {
                            let mut b = [0.0f32; MR];
                            if let Some(bias) = bias {
                                b[..rows].copy_from_slice(&bias[p * MR..p * MR + rows]);
                            }
                            b
                        });
                        let aff = affine.filter(|_| last).map(|(a, s)| {
                            let (mut ea, mut es) = ([1.0f32; MR], [0.0f32; MR]);
                            ea[..rows].copy_from_slice(&a[p * MR..p * MR + rows]);
                            es[..rows].copy_from_slice(&s[p * MR..p * MR + rows]);
                            (ea, es)
                        });
                        let t = Tile {
                            panel,
                            rows_at: &rows_at[k0..k1],
                            ahead: &rows_at[(k0 + PREFETCH_AHEAD).min(w.depth)..(k1 + PREFETCH_AHEAD).min(w.depth)],
                            x: x.add(j),
                            seed: b.as_ref(),
                            affine: aff.as_ref(),
                            dst: dst.add((p - panels.start) * MR * dst_rs + j),
                            dst_rs,
                            rows,
                        };
                        // The last vector holds the columns past 16·(NV − 1).
                        let mask = |nv: usize| ((1u32 << (width - 16 * (nv - 1))) - 1) as u16;
                        match width {
                            33..=NR if p == panels.start => tile::<3, true>(&t, mask(3)),
                            33..=NR => tile::<3, false>(&t, mask(3)),
                            17..=32 => tile::<2, false>(&t, mask(2)),
                            _ => tile::<1, false>(&t, mask(1)),
                        }
                    }
                }
            }
        };
        let mut j = 0;
        while j + NR <= cols {
            run(j, NR);
            j += NR;
        }
        // The rest (under 48 columns) in one tile of 1–3 vectors, the last one masked.
        if j < cols {
            run(j, cols - j);
        }
    }

    /// One 8-row × (16·NV)-column tile over a block of the depth.
    struct Tile<'a> {
        /// The panel's values for the block's first k.
        panel: *const f32,
        /// The block's operand row starts.
        rows_at: &'a [usize],
        /// The row starts PREFETCH_AHEAD further on (fewer near the end of the depth).
        ahead: &'a [usize],
        x: *const f32,
        /// Per-row start values (the bias) for the first block; later blocks continue from
        /// the partial sums in `dst`.
        seed: Option<&'a [f32; MR]>,
        /// `v · a + b` per row before the last block stores.
        affine: Option<&'a ([f32; MR], [f32; MR])>,
        dst: *mut f32,
        dst_rs: usize,
        /// Valid rows of the panel.
        rows: usize,
    }

    /// Runs one [`Tile`]; `mask` selects the valid lanes of the last vector.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const NV: usize, const PREFETCH: bool>(t: &Tile, mask: u16) {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            match t.seed {
                Some(b) => *row = [_mm512_set1_ps(b[r]); NV],
                None if r < t.rows => {
                    for (v, a) in row.iter_mut().enumerate() {
                        // SAFETY: row r < rows of the tile, columns within it (last masked).
                        let d = unsafe { t.dst.add(r * t.dst_rs + 16 * v) };
                        *a = if v + 1 == NV { unsafe { _mm512_maskz_loadu_ps(mask, d) } } else { unsafe { _mm512_loadu_ps(d) } };
                    }
                }
                None => {}
            }
        }
        for (k, &row_start) in t.rows_at.iter().enumerate() {
            if PREFETCH && let Some(&ahead) = t.ahead.get(k) {
                // The (up to 4) cache lines of that row's 48 values. A prefetch never faults;
                // wrapping arithmetic, as the last line may lie past a short row's end.
                let pa = t.x.wrapping_add(ahead) as *const i8;
                for off in [0, 64, 128, 188] {
                    _mm_prefetch::<_MM_HINT_T0>(pa.wrapping_add(off));
                }
            }
            // SAFETY: row k of x has at least 16·NV readable floats from here (the last vector
            // masked), and the panel has MR values per k.
            unsafe {
                let xr = t.x.add(row_start);
                let mut xv = [_mm512_setzero_ps(); NV];
                for (v, xv) in xv.iter_mut().enumerate() {
                    *xv = if v + 1 == NV { _mm512_maskz_loadu_ps(mask, xr.add(16 * v)) } else { _mm512_loadu_ps(xr.add(16 * v)) };
                }
                let wk = t.panel.add(k * MR);
                for (r, row) in acc.iter_mut().enumerate() {
                    let wv = _mm512_set1_ps(*wk.add(r));
                    for (a, &xv) in row.iter_mut().zip(&xv) {
                        *a = _mm512_fmadd_ps(wv, xv, *a);
                    }
                }
            }
        }
        if let Some((ea, es)) = t.affine {
            for (r, row) in acc.iter_mut().enumerate() {
                let (m, s) = (_mm512_set1_ps(ea[r]), _mm512_set1_ps(es[r]));
                for a in row.iter_mut() {
                    *a = _mm512_add_ps(_mm512_mul_ps(*a, m), s);
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(t.rows) {
            for (v, &a) in row.iter().enumerate() {
                // SAFETY: row r < rows, columns within the tile (last vector masked).
                unsafe {
                    let d = t.dst.add(r * t.dst_rs + 16 * v);
                    if v + 1 == NV {
                        _mm512_mask_storeu_ps(d, mask, a);
                    } else {
                        _mm512_storeu_ps(d, a);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_matrix_product() {
        if !PackedWeights::fast_path() {
            eprintln!("skipped: no AVX-512 on this machine (the general GEMM is used instead)");
            return;
        }
        for (m, k, n) in [(24, 27, 100), (8, 1, 48), (3, 5, 7), (17, 64, 65), (40, 9, 16), (1, 300, 49)] {
            let w: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let x_rs = n + 3;
            let x: Vec<f32> = (0..k * x_rs).map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.5 - 3.0).collect();
            let dst_rs = n + 5;
            let mut dst = vec![f32::NAN; m * dst_rs];
            let packed = PackedWeights::new(&w, m, k);
            unsafe { packed.multiply(x.as_ptr(), &strided_rows(k, x_rs), n, Some(&bias), dst.as_mut_ptr(), dst_rs) };
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = bias[i] as f64 + (0..k).map(|p| w[i * k + p] as f64 * x[p * x_rs + j] as f64).sum::<f64>();
                    let got = dst[i * dst_rs + j];
                    assert!((got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "{m}x{k}x{n} at ({i},{j}): {got} vs {want}");
                }
                assert!(dst[i * dst_rs + n..(i + 1) * dst_rs].iter().all(|v| v.is_nan()), "wrote past column {n}");
            }
        }
    }
}

#[cfg(test)]
mod bitwise {
    use super::*;

    /// Each output is the FMA chain bias, then k = 0, 1, … in order, whatever the depth
    /// blocking and the column tile (full, 2- or 1-vector, masked) it falls in.
    #[test]
    fn outputs_are_the_in_order_fma_chain() {
        if !PackedWeights::fast_path() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
        for (m, k, n) in [(8, 129, 95), (13, 300, 47), (16, 128, 33), (9, 257, 17), (8, 5, 1)] {
            let w: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 23.0).collect();
            let x: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 29.0).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.37 - 1.0).collect();
            let (a, s): (Vec<f32>, Vec<f32>) = (0..m).map(|i| (1.0 + i as f32 * 0.1, 0.5 - i as f32 * 0.03)).unzip();
            let mut dst = vec![0.0f32; m * n];
            let packed = PackedWeights::new(&w, m, k);
            let rows = strided_rows(k, n);
            unsafe { packed.multiply_affine(x.as_ptr(), &rows, n, Some(&bias), Some((&a, &s)), dst.as_mut_ptr(), n) };
            for i in 0..m {
                for j in 0..n {
                    let chain = (0..k).fold(bias[i], |acc, p| w[i * k + p].mul_add(x[p * n + j], acc));
                    let want = chain * a[i] + s[i];
                    assert_eq!(dst[i * n + j].to_bits(), want.to_bits(), "{m}x{k}x{n} at ({i},{j})");
                }
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::engine::kernels::gemm::{MatRef, gemm};
    use std::time::Instant;

    /// `cargo test --release --lib panel::bench -- --ignored --nocapture`: GFLOP/s of this
    /// kernel and of the general GEMM on conv-shaped products, one thread.
    #[test]
    #[ignore]
    fn panel_vs_gemm() {
        for (m, k, n) in [
            (24, 864, 25600),
            (24, 864, 304),
            (24, 864, 1024),
            (16, 27, 9709),
            (96, 96, 2730),
            (128, 1152, 228),
            (384, 384, 400),
            (256, 2304, 113),
            (96, 864, 430),
            (96, 128, 480),
            (48, 216, 419),
        ] {
            let w: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let x: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.1).collect();
            let mut dst = vec![0.0f32; m * n];
            let flops = 2.0 * (m * k * n) as f64;
            let best = |f: &mut dyn FnMut()| {
                (0..5)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            };
            let tg = best(&mut || gemm(&mut dst, n, MatRef::row_major(&w, m, k), MatRef::row_major(&x, k, n), false, 1.0, 1));
            let tp = if PackedWeights::fast_path() {
                let p = PackedWeights::new(&w, m, k);
                let rows = strided_rows(k, n);
                best(&mut || unsafe { p.multiply(x.as_ptr(), &rows, n, None, dst.as_mut_ptr(), n) })
            } else {
                f64::NAN
            };
            eprintln!("{m:>4}x{k:>5}x{n:>6}: gemm {:6.1} GFLOP/s, panel {:6.1} GFLOP/s", flops / tg / 1e9, flops / tp / 1e9);
        }
    }
}

//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2015): each 2×2 block of outputs ("tile") is
//! `Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A` over its 4×4 input window d, so the 36 multiplications of
//! the direct form become 16, which are 16 matrix products (one per position ξ of the 4×4
//! transformed window) of the transformed weights (C_out × C_in) by the transformed inputs
//! (C_in × tiles), on the panel kernel. 2.25× fewer multiply-adds than the direct conv; the
//! transforms are additions only (and halvings in G, exact in binary), done 16 tiles at a time
//! in AVX-512 registers.
//!
//! The sums are not the direct conv's, so the results differ from it in the last bits (the
//! engine's oracle tolerances hold: `tests/engine_oracle*.rs`); every output is the same
//! sequence of operations whatever the thread count or the batch of tiles it falls in, and
//! the fused element-wise tail (the epilogue) is applied to the finished output as the
//! unfused ops would be. `APTQ_WINOGRAD=0` turns the path off (plans then use the direct
//! conv).
//!
//! Only x86-64 with AVX-512F (where the panel kernel runs) takes this path.

use rayon::prelude::*;

use super::SendPtr;
use super::epilogue::Epilogue;
use super::panel::{PackedWeights, strided_rows};
use super::split;

/// Positions of the transformed 4×4 window.
const XI: usize = 16;
/// Values a job's transformed inputs and products (16 × channels × tiles each) aim for: with
/// the weights they stay within L2 (1 MiB of 2 here; 2 MiB was a third slower on 96 channels).
const BLOCK_FLOATS: usize = 1 << 18;
/// At least this many tiles (GEMM columns) per job: the panel kernel's tile is 48 wide.
const MIN_TILES: usize = 48;

/// The transformed weights `U_ξ = (G·g·Gᵀ)_ξ`, C_out × C_in each, packed for the panel kernel.
pub struct WinogradWeights {
    c_in: usize,
    c_out: usize,
    u: Vec<PackedWeights>,
}

impl WinogradWeights {
    /// `w`: C_out × C_in × 3 × 3, row-major. The transform is computed in f64 and rounded once.
    pub fn new(w: &[f32], c_out: usize, c_in: usize) -> Self {
        assert_eq!(w.len(), c_out * c_in * 9, "winograd: weight length");
        let mut mats = vec![vec![0.0f32; c_out * c_in]; XI];
        // G·h for a 3-vector h: [h0, (h0+h1+h2)/2, (h0−h1+h2)/2, h2].
        let g3 = |h: [f64; 3]| [h[0], (h[0] + h[1] + h[2]) / 2.0, (h[0] - h[1] + h[2]) / 2.0, h[2]];
        for (oc_ic, k) in w.chunks_exact(9).enumerate() {
            let g: Vec<f64> = k.iter().map(|&v| v as f64).collect();
            // Columns first (G·g, 4 × 3), then rows ((G·g)·Gᵀ, 4 × 4).
            let cols: Vec<[f64; 4]> = (0..3).map(|j| g3([g[j], g[3 + j], g[6 + j]])).collect();
            for i in 0..4 {
                let row = g3([cols[0][i], cols[1][i], cols[2][i]]);
                for (j, v) in row.into_iter().enumerate() {
                    mats[i * 4 + j][oc_ic] = v as f32;
                }
            }
        }
        WinogradWeights { c_in, c_out, u: mats.iter().map(|m| PackedWeights::new(m, c_out, c_in)).collect() }
    }
}

/// Whether this machine runs the path and the environment has not turned it off.
pub fn available() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    PackedWeights::fast_path() && !*OFF.get_or_init(|| std::env::var("APTQ_WINOGRAD").is_ok_and(|v| v == "0"))
}

/// Whether a 3×3 stride-1 conv of these sizes is faster this way than direct. Measured on
/// single convs (1 thread, fastest of 200 runs, direct → Winograd): 96 → 96 channels at 52²
/// 3.37 → 2.38 ms, at 26² 1.21 → 0.81; 64 → 64 at 160² 16.2 → 10.9; 48 → 48 at 52² 0.94 →
/// 0.88; 32 → 32 at 128² 2.98 → 2.69; 24 → 24 at 104² 1.11 → 1.07: few channels leave the 16
/// products too thin to pay for the transforms, and small outputs give too few tiles.
pub fn worth_it(c_in: usize, c_out: usize, oh: usize, ow: usize) -> bool {
    c_in >= 16 && c_out >= 16 && c_in + c_out >= 64 && oh * ow >= 400
}

/// A 3×3 stride-1 conv, group 1, of `batch` images: `x` is batch × C_in × ih × iw, `out`
/// batch × C_out × oh × ow, `pad` the leading (top, left) pads (the trailing ones follow from
/// the sizes).
#[allow(clippy::too_many_arguments)]
pub fn conv3x3(
    x: &[f32],
    batch: usize,
    ww: &WinogradWeights,
    bias: Option<&[f32]>,
    (ih, iw): (usize, usize),
    (oh, ow): (usize, usize),
    (pt, pl): (usize, usize),
    out: &mut [f32],
    epi: Option<&Epilogue>,
) {
    let (c_in, c_out) = (ww.c_in, ww.c_out);
    assert_eq!(x.len(), batch * c_in * ih * iw, "winograd: input length");
    assert_eq!(out.len(), batch * c_out * oh * ow, "winograd: output length");
    assert!(bias.is_none_or(|b| b.len() >= c_out), "winograd: bias length");
    assert!(available(), "winograd::conv3x3 without AVX-512");
    if out.is_empty() {
        return;
    }
    let (tiles_h, tiles_w) = (oh.div_ceil(2), ow.div_ceil(2));
    let threads = rayon::current_num_threads().max(1);
    let target = (BLOCK_FLOATS / (XI * (c_in + c_out))).max(MIN_TILES);
    let mut blocks = (tiles_h * tiles_w).div_ceil(target).clamp(1, tiles_h);
    // Small outputs: one block per thread, not more. Two per thread (the earlier rule) gave
    // YOLOX's 96-channel convs at 26² jobs of 39 tiles, under one panel-kernel tile (48), each
    // reading all 16 transformed weights: 0.21 ms at 2 threads against 0.30 at 1; with one
    // block per thread 0.16 (the whole model 17.0 → 16.0 ms).
    if threads > 1 && blocks * batch < 8 * threads {
        blocks = blocks.max(threads).next_multiple_of(threads).min(tiles_h);
    }
    let geom = Geometry { c_in, c_out, ih, iw, oh, ow, pt, pl, tiles_w };
    let out_ptr = SendPtr(out.as_mut_ptr());
    let job = |scratch: &mut Scratch, j: usize| {
        let (b, blk) = (j / blocks, j % blocks);
        let rows = split::even_range(blk, blocks, tiles_h);
        let xb = &x[b * c_in * ih * iw..][..c_in * ih * iw];
        // SAFETY: the job writes output rows 2·rows.start .. 2·rows.end of image b only.
        unsafe { geom.block(ww, xb, rows, bias, out_ptr.get().add(b * c_out * oh * ow), epi, scratch) }
    };
    (0..batch * blocks).into_par_iter().for_each_init(Scratch::default, job);
}

#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

// Only the AVX-512 input transform reads the input's extent and pads (elsewhere the conv
// never takes this path).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Geometry {
    c_in: usize,
    c_out: usize,
    ih: usize,
    iw: usize,
    oh: usize,
    ow: usize,
    pt: usize,
    pl: usize,
    tiles_w: usize,
}

impl Geometry {
    /// The tile rows `rows` of one image: input transform, 16 products,
    /// output transform (+ bias), then the epilogue on the finished rows.
    ///
    /// # Safety
    /// `out` points at the image's C_out × oh × ow output; no other thread writes its rows
    /// 2·rows.start .. 2·rows.end.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        &self,
        ww: &WinogradWeights,
        x: &[f32],
        rows: std::ops::Range<usize>,
        bias: Option<&[f32]>,
        out: *mut f32,
        epi: Option<&Epilogue>,
        s: &mut Scratch,
    ) {
        let (c_in, c_out, tiles_w) = (self.c_in, self.c_out, self.tiles_w);
        let r = rows.len();
        if r == 0 {
            return;
        }
        let t = r * tiles_w;
        s.v.resize(XI * c_in * t, 0.0);
        s.m.resize(XI * c_out * t, 0.0);
        // SAFETY: avx512f is available (checked by conv3x3); the buffers have the sizes the
        // transforms index.
        unsafe { input_transform(x, self, rows.start, r, s.v.as_mut_ptr(), t) };
        // V and M are stored [channel][ξ][tile]: a transform touches one channel's 16 rows.
        let at = strided_rows(c_in, XI * t);
        for (xi, u) in ww.u.iter().enumerate() {
            // SAFETY: row c of the operand is V[c][ξ][0..t]; the product is C_out × t, rows
            // 16·t apart.
            unsafe { u.multiply(s.v.as_ptr().add(xi * t), &at, t, None, s.m.as_mut_ptr().add(xi * t), XI * t) };
        }
        let (y0, y1) = (2 * rows.start, (2 * rows.end).min(self.oh));
        // SAFETY: as above; the output rows y0..y1 belong to this job.
        unsafe {
            output_transform(&s.m, c_out, t, r, tiles_w, bias, out.add(y0 * self.ow), self.ow, y1 - y0, self.oh * self.ow);
            if let Some(e) = epi {
                e.apply_block(0, c_out, out.add(y0 * self.ow), self.oh * self.ow, (y1 - y0) * self.ow);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Lane masks of the first `n` (≤ 16) lanes.
#[cfg(target_arch = "x86_64")]
fn lanes(n: usize) -> u16 {
    if n >= 16 { u16::MAX } else { ((1u32 << n) - 1) as u16 }
}

/// `V[c][ξ][i·tiles_w + tx]` for the `r` tile rows from tile row `ty0` of image `x`: tile
/// (ty, tx) reads input rows 2ty − pt .. +4 and columns 2tx − pl .. +4, zeros outside the
/// input (masked loads: no padded copy of the input is made).
///
/// # Safety
/// AVX-512F; `v` holds 16 × c_in × t values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// `a` picks element a of every column: a transpose, not a walk over one array.
#[allow(clippy::needless_range_loop)]
unsafe fn input_transform(x: &[f32], g: &Geometry, ty0: usize, r: usize, v: *mut f32, t: usize) {
    let (c_in, ih, iw, tiles_w) = (g.c_in, g.ih, g.iw, g.tiles_w);
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    // Bᵀ·(x0, x1, x2, x3) = (x0 − x2, x1 + x2, x2 − x1, x1 − x3).
    let bt = |x: [__m512; 4]| [_mm512_sub_ps(x[0], x[2]), _mm512_add_ps(x[1], x[2]), _mm512_sub_ps(x[2], x[1]), _mm512_sub_ps(x[1], x[3])];
    // The lanes of 16 values from input column `col` that lie inside the row.
    let inside = |col: isize| {
        let lo = (-col).clamp(0, 16) as usize;
        let hi = (iw as isize - col).clamp(0, 16) as usize;
        lanes(hi) & !lanes(lo)
    };
    for i in 0..r {
        // Input rows of this tile row (None: a padding row).
        let in_rows: [Option<usize>; 4] = std::array::from_fn(|a| {
            let y = (2 * (ty0 + i) + a).wrapping_sub(g.pt);
            (y < ih).then_some(y)
        });
        for t0 in (0..tiles_w).step_by(16) {
            let store = lanes(tiles_w - t0);
            let col = (2 * t0) as isize - g.pl as isize;
            // Loads at columns col, col + 16 (even/odd taps 0, 1) and col + 2, col + 18 (2, 3).
            let masks = [inside(col), inside(col + 16), inside(col + 2), inside(col + 18)];
            let offsets = [col, col + 16, col + 2, col + 18];
            for c in 0..c_in {
                let plane = &x[c * ih * iw..][..ih * iw];
                // d[a][b]: window row a, column b, of 16 tiles.
                let mut d = [[_mm512_setzero_ps(); 4]; 4];
                for (a, da) in d.iter_mut().enumerate() {
                    let Some(y) = in_rows[a] else { continue };
                    let row = plane[y * iw..].as_ptr();
                    // SAFETY: only the lanes inside the row are read (a masked lane never
                    // faults; the wrapping pointer is dereferenced at those lanes only).
                    let ld: [__m512; 4] =
                        std::array::from_fn(|k| unsafe { _mm512_maskz_loadu_ps(masks[k], row.wrapping_offset(offsets[k])) });
                    *da = [
                        _mm512_permutex2var_ps(ld[0], even, ld[1]),
                        _mm512_permutex2var_ps(ld[0], odd, ld[1]),
                        _mm512_permutex2var_ps(ld[2], even, ld[3]),
                        _mm512_permutex2var_ps(ld[2], odd, ld[3]),
                    ];
                }
                // Down the columns (Bᵀ·d), then along the rows ((Bᵀ·d)·B).
                let cols: [[__m512; 4]; 4] = std::array::from_fn(|b| bt([d[0][b], d[1][b], d[2][b], d[3][b]]));
                for a in 0..4 {
                    let row = bt([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                    for (b, val) in row.into_iter().enumerate() {
                        // SAFETY: c < c_in, ξ = 4a + b < 16, tile i·tiles_w + t0 + lane < t.
                        unsafe { _mm512_mask_storeu_ps(v.add((c * XI + a * 4 + b) * t + i * tiles_w + t0), store, val) };
                    }
                }
            }
        }
    }
}

/// `out[co][2i + a][2tx + b] = (Aᵀ·M·A)[a][b] + bias[co]` for the `r` tile rows, `rows` (1 or
/// 2 per tile row; fewer at an odd bottom edge) output rows in all; `out` points at row 0 of
/// the block in channel 0, channels `plane` apart.
///
/// # Safety
/// AVX-512F; `m` holds 16 × c_out × t values (`[co][ξ][tile]`); the output rows exist.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// `a` picks element a of every column: a transpose, not a walk over one array.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn output_transform(
    m: &[f32],
    c_out: usize,
    t: usize,
    r: usize,
    tiles_w: usize,
    bias: Option<&[f32]>,
    out: *mut f32,
    ow: usize,
    rows: usize,
    plane: usize,
) {
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // Aᵀ·(x0, x1, x2, x3) = (x0 + x1 + x2, x1 − x2 − x3).
    let at = |x: [__m512; 4]| [_mm512_add_ps(_mm512_add_ps(x[0], x[1]), x[2]), _mm512_sub_ps(_mm512_sub_ps(x[1], x[2]), x[3])];
    for co in 0..c_out {
        let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[co]));
        for i in 0..r {
            for t0 in (0..tiles_w).step_by(16) {
                let mask = lanes(tiles_w - t0);
                let mut mv = [[_mm512_setzero_ps(); 4]; 4];
                for (a, row) in mv.iter_mut().enumerate() {
                    for (bb, val) in row.iter_mut().enumerate() {
                        // SAFETY: ξ < 16, co < c_out, the masked lanes are tiles of this row.
                        *val = unsafe { _mm512_maskz_loadu_ps(mask, m.as_ptr().add((co * XI + a * 4 + bb) * t + i * tiles_w + t0)) };
                    }
                }
                let cols: [[__m512; 2]; 4] = std::array::from_fn(|bb| at([mv[0][bb], mv[1][bb], mv[2][bb], mv[3][bb]]));
                // Output columns 2·t0 .. 2·t0 + 32 (fewer at the right edge).
                let valid = ow - 2 * t0;
                let (mlo, mhi) = (lanes(valid), lanes(valid.saturating_sub(16)));
                for a in 0..2 {
                    if 2 * i + a >= rows {
                        continue;
                    }
                    let y = at([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                    let (y0, y1) = (_mm512_add_ps(y[0], b), _mm512_add_ps(y[1], b));
                    // SAFETY: row 2i + a < rows of channel co; columns masked to < ow.
                    unsafe {
                        let p = out.add(co * plane + (2 * i + a) * ow + 2 * t0);
                        _mm512_mask_storeu_ps(p, mlo, _mm512_permutex2var_ps(y0, lo_idx, y1));
                        if mhi != 0 {
                            _mm512_mask_storeu_ps(p.add(16), mhi, _mm512_permutex2var_ps(y0, hi_idx, y1));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform(_: &[f32], _: &Geometry, _: usize, _: usize, _: *mut f32, _: usize) {
    unreachable!("winograd without AVX-512")
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    _: &[f32],
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: Option<&[f32]>,
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
) {
    unreachable!("winograd without AVX-512")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform values in [−1, 1).
    fn values(seed: u32, n: usize) -> Vec<f32> {
        let mut next = super::super::conv::tests::values(seed);
        (0..n).map(|_| 2.0 * next()).collect()
    }

    /// The textbook loop in f64, and Σ|w·x| per output (the scale of its rounding error).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        c_in: usize,
        w: &[f32],
        c_out: usize,
        bias: &[f32],
        (ih, iw): (usize, usize),
        (oh, ow): (usize, usize),
        (pt, pl): (usize, usize),
    ) -> (Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0f64; c_out * oh * ow];
        let mut mag = vec![0.0f64; c_out * oh * ow];
        for co in 0..c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut s, mut a) = (bias[co] as f64, bias[co].abs() as f64);
                    for ci in 0..c_in {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = ((oy + ky) as isize - pt as isize, (ox + kx) as isize - pl as isize);
                                if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                    continue;
                                }
                                let p =
                                    w[((co * c_in + ci) * 3 + ky) * 3 + kx] as f64 * x[(ci * ih + iy as usize) * iw + ix as usize] as f64;
                                s += p;
                                a += p.abs();
                            }
                        }
                    }
                    y[(co * oh + oy) * ow + ox] = s;
                    mag[(co * oh + oy) * ow + ox] = a;
                }
            }
        }
        (y, mag)
    }

    #[test]
    fn matches_the_textbook_conv() {
        if !available() {
            eprintln!("skipped: no AVX-512 on this machine");
            return;
        }
        // Odd and even sizes, pads 0 / 1 / 2 on either side, more than 16 tiles per row,
        // several blocks, 1 and 2 threads.
        for &(c_in, c_out, ih, iw, pads) in
            &[(16, 16, 9, 9, (1, 1, 1, 1)), (17, 24, 40, 37, (1, 1, 1, 1)), (32, 8, 20, 70, (0, 0, 0, 0)), (16, 33, 23, 18, (2, 1, 0, 2))]
        {
            let (pt, pl, pb, pr) = pads;
            let (oh, ow) = (ih + pt + pb - 2, iw + pl + pr - 2);
            let x = values(1, 2 * c_in * ih * iw);
            let w = values(2, c_out * c_in * 9);
            let bias = values(3, c_out);
            let ww = WinogradWeights::new(&w, c_out, c_in);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut out = vec![f32::NAN; 2 * c_out * oh * ow];
                pool.install(|| conv3x3(&x, 2, &ww, Some(&bias), (ih, iw), (oh, ow), (pt, pl), &mut out, None));
                for b in 0..2 {
                    let (want, mag) =
                        reference(&x[b * c_in * ih * iw..][..c_in * ih * iw], c_in, &w, c_out, &bias, (ih, iw), (oh, ow), (pt, pl));
                    let got = &out[b * c_out * oh * ow..][..c_out * oh * ow];
                    for (i, ((&g, &r), &a)) in got.iter().zip(&want).zip(&mag).enumerate() {
                        assert!(
                            (g as f64 - r).abs() <= 1e-6 * a + 1e-30,
                            "{c_in}->{c_out} {ih}x{iw} pads {pads:?}, {threads} threads, image {b}, output {i}: {g} vs {r} (scale {a})"
                        );
                    }
                }
                if threads == 1 {
                    let first = out.clone();
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
                    pool.install(|| conv3x3(&x, 2, &ww, Some(&bias), (ih, iw), (oh, ow), (pt, pl), &mut out, None));
                    assert!(first.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "thread count changed bits");
                }
            }
        }
    }
}

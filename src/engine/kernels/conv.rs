//! Convolution drivers on contiguous NC(D)HW f32 buffers. Spatial ranks 1–3 are handled as
//! 3-D with leading unit dimensions. Where the panel kernel runs (AVX-512), 1-D/2-D convs of
//! any stride read their GEMM operand rows straight from a padded, per-band copy of the input
//! (split into phase planes for strides above 1), or from the input itself; other convs go
//! through im2col tiles (in parallel) and a GEMM. Depthwise convs take a direct, vectorizable
//! kernel parallel over channels. ConvTranspose is one GEMM per image and group followed by
//! col2im.

use rayon::prelude::*;

use super::SendPtr;
use super::epilogue::Epilogue;
use super::exp::with_wide_vectors;
use super::gemm::{MatRef, gemm, gemm_ptr};
use super::panel::{MR, PackedWeights, strided_rows};
use super::split;

/// Spatial geometry of a convolution, as 3-D (depth, height, width).
#[derive(Clone, Debug, PartialEq)]
pub struct Geom {
    /// Input extents (for ConvTranspose: the op's input, i.e. the small side).
    pub input: [usize; 3],
    /// Output extents.
    pub output: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub dilation: [usize; 3],
    /// Leading ("begin") pads; ConvTranspose may have negative ones (output_shape larger
    /// than the natural size).
    pub pad: [isize; 3],
}

impl Geom {
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }
    pub fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }
}

/// Indices `j` in `0..n_out` with `0 <= j * stride + off < n_in`, as a half-open range.
#[inline]
pub fn valid_range(n_out: usize, stride: usize, off: isize, n_in: usize) -> (usize, usize) {
    let s = stride as isize;
    // j >= ceil(-off / s)
    let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
    // j * s + off <= n_in - 1  =>  j <= (n_in - 1 - off) / s
    let last = n_in as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(n_out);
    let hi = (hi as usize).clamp(lo, n_out);
    (lo, hi)
}

/// Scratch size (in floats) an im2col tile aims for: about L2.
const TILE_FLOATS: usize = 1 << 18;

/// Writes the im2col rows for output pixels `p0..p1` (flattened over `g.output`) of one
/// group's input `x` (`c` channels) into `col`: `K = c * kernel_len` rows of `p1 - p0`
/// values, row k starting at `k * row_stride`.
fn im2col(x: &[f32], c: usize, g: &Geom, p0: usize, p1: usize, col: &mut [f32], row_stride: usize) {
    let t = p1 - p0;
    let [_, ih, iw] = g.input;
    let [_, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let in_plane = g.input_len();
    let mut row = 0;
    for ci in 0..c {
        let xc = &x[ci * in_plane..(ci + 1) * in_plane];
        for a in 0..kd {
            for b in 0..kh {
                for e in 0..kw {
                    let dst = &mut col[row * row_stride..][..t];
                    row += 1;
                    let offw = (e * g.dilation[2]) as isize - g.pad[2];
                    let (jlo, jhi) = valid_range(ow, g.stride[2], offw, iw);
                    let mut p = p0;
                    while p < p1 {
                        let x0 = p % ow;
                        let rest = p / ow;
                        let (y, z) = (rest % oh, rest / oh);
                        let seg = (ow - x0).min(p1 - p);
                        let d = &mut dst[p - p0..p - p0 + seg];
                        let zi = (z * g.stride[0] + a * g.dilation[0]) as isize - g.pad[0];
                        let yi = (y * g.stride[1] + b * g.dilation[1]) as isize - g.pad[1];
                        if zi < 0 || zi >= g.input[0] as isize || yi < 0 || yi >= ih as isize {
                            d.fill(0.0);
                        } else {
                            let src = &xc[(zi as usize * ih + yi as usize) * iw..][..iw];
                            // Output columns x0..x0+seg; valid ones are jlo..jhi.
                            let lo = jlo.clamp(x0, x0 + seg);
                            let hi = jhi.clamp(lo, x0 + seg);
                            d[..lo - x0].fill(0.0);
                            d[hi - x0..].fill(0.0);
                            let dv = &mut d[lo - x0..hi - x0];
                            let start = (lo * g.stride[2]) as isize + offw;
                            if g.stride[2] == 1 {
                                let s0 = start as usize;
                                dv.copy_from_slice(&src[s0..s0 + dv.len()]);
                            } else {
                                for (k, v) in dv.iter_mut().enumerate() {
                                    *v = src[start as usize + k * g.stride[2]];
                                }
                            }
                        }
                        p += seg;
                    }
                }
            }
        }
    }
}

/// Conv on f32: `x` is N×C_in×spatial, `w` is C_out×(C_in/group)×kernel, `out` is
/// N×C_out×output (fully overwritten), then `epi` applied to it. Shapes must already be
/// validated. `prepacked` are `w`'s panels from [`pack_conv_weights`] (packed here otherwise).
#[allow(clippy::too_many_arguments)]
pub fn conv_f32(
    x: &[f32],
    batch: usize,
    c_in: usize,
    w: &[f32],
    c_out: usize,
    group: usize,
    bias: Option<&[f32]>,
    g: &Geom,
    out: &mut [f32],
    prepacked: Option<&[PackedWeights]>,
    epi: Option<&Epilogue>,
) {
    let (pin, pout, kl) = (g.input_len(), g.output_len(), g.kernel_len());
    let cig = c_in / group;
    debug_assert_eq!(x.len(), batch * c_in * pin);
    // `w` may be empty when `prepacked` holds the weights (a depthwise conv never packs).
    debug_assert!(w.len() == c_out * cig * kl || (w.is_empty() && prepacked.is_some()));
    debug_assert_eq!(out.len(), batch * c_out * pout);
    if out.is_empty() {
        return;
    }
    if cig == 0 || kl == 0 {
        for (i, plane) in out.chunks_mut(pout).enumerate() {
            plane.fill(bias.map_or(0.0, |b| b[i % c_out]));
            if let Some(e) = epi {
                e.apply(i % c_out, plane);
            }
        }
        return;
    }
    if cig == 1 && group == c_in && group > 1 {
        depthwise(x, c_in, w, c_out, bias, g, out, epi);
        return;
    }
    let packed_here;
    let packed: Option<&[PackedWeights]> = match prepacked {
        Some(p) => Some(p),
        None => {
            packed_here = pack_conv_weights(w, c_in, c_out, group, kl);
            packed_here.as_deref()
        }
    };
    if let Some(packed) = packed
        && g.stride[0] == 1
        && g.kernel[0] == 1
        && g.input[0] == 1
        && g.pad.iter().all(|&p| p >= 0)
    {
        conv_without_im2col(x, batch, c_in, packed, c_out, group, bias, g, out, epi);
        return;
    }
    conv_im2col(x, batch, c_in, w, c_out, group, bias, g, out, packed, epi);
}

/// Conv through im2col tiles, in parallel, and the panel kernel (3-D convs) or the general
/// GEMM (where the panel kernel is not available). Arguments as for [`conv_f32`], `packed` as
/// resolved there.
#[allow(clippy::too_many_arguments)]
fn conv_im2col(
    x: &[f32],
    batch: usize,
    c_in: usize,
    w: &[f32],
    c_out: usize,
    group: usize,
    bias: Option<&[f32]>,
    g: &Geom,
    out: &mut [f32],
    packed: Option<&[PackedWeights]>,
    epi: Option<&Epilogue>,
) {
    let (pin, pout, kl) = (g.input_len(), g.output_len(), g.kernel_len());
    let (cig, cog) = (c_in / group, c_out / group);
    let kk = cig * kl;
    let pointwise = kl == 1 && g.stride == [1; 3] && g.pad == [0; 3] && g.input == g.output;
    let threads = rayon::current_num_threads().max(1);
    // Tile width: an im2col tile of about TILE_FLOATS, at least 256 columns, and enough tiles
    // to keep every thread busy.
    let mut tile = (TILE_FLOATS / kk).max(256);
    let jobs_per_tile = batch * group;
    if jobs_per_tile < 2 * threads {
        let want_tiles = (2 * threads).div_ceil(jobs_per_tile);
        tile = tile.min(pout.div_ceil(want_tiles).next_multiple_of(16).max(64));
    }
    let mut tile = tile.min(pout);
    let mut tiles = pout.div_ceil(tile);
    // On several threads, tiles of equal width (not a short last one) and a job count that
    // divides among the threads: 3 tiles on 2 threads take 2 tiles' time.
    if threads > 1 {
        let even = split::balanced_tiles(tiles, jobs_per_tile, threads, pout.div_ceil(16));
        tile = pout.div_ceil(even);
        tiles = pout.div_ceil(tile);
    }
    let out_ptr = SendPtr(out.as_mut_ptr());
    // Every tile's im2col rows are `tile` apart (the last tile leaves a gap), so the panel
    // kernel's row table is the same for all jobs.
    let panel_rows = packed.is_some().then(|| strided_rows(kk, if pointwise { pin } else { tile }));
    let task = |job: usize, col: &mut Vec<f32>| {
        let (bg, ti) = (job / tiles, job % tiles);
        let (b, gi) = (bg / group, bg % group);
        let (p0, p1) = (ti * tile, ((ti + 1) * tile).min(pout));
        let t = p1 - p0;
        let xg = &x[(b * c_in + gi * cig) * pin..(b * c_in + (gi + 1) * cig) * pin];
        let rhs = if pointwise {
            MatRef { data: &xg[p0..], rows: kk, cols: t, rs: pin, cs: 1 }
        } else {
            col.resize(kk * tile, 0.0);
            im2col(xg, cig, g, p0, p1, col, tile);
            MatRef { data: col, rows: kk, cols: t, rs: tile, cs: 1 }
        };
        // SAFETY: this job alone writes rows gi*cog..(gi+1)*cog, columns p0..p1 of image b.
        unsafe {
            let dst = out_ptr.get().add((b * c_out + gi * cog) * pout + p0);
            let mut first = 0;
            if let (Some(packed), Some(rows)) = (&packed, &panel_rows) {
                // A leading BatchNormalization is applied by the kernel before it stores.
                let affine = epi.and_then(|e| e.leading_affine()).map(|(a, s)| (&a[gi * cog..], &s[gi * cog..]));
                first = usize::from(affine.is_some());
                packed[gi].multiply_affine(rhs.data.as_ptr(), rows, t, bias.map(|b| &b[gi * cog..]), affine, dst, pout);
            } else {
                if let Some(bias) = bias {
                    for m in 0..cog {
                        std::slice::from_raw_parts_mut(dst.add(m * pout), t).fill(bias[gi * cog + m]);
                    }
                }
                let wg = MatRef::row_major(&w[gi * cog * kk..(gi + 1) * cog * kk], cog, kk);
                gemm_ptr(dst, pout, wg, rhs, bias.is_some(), 1.0, 1);
            }
            if let Some(e) = epi {
                e.apply_block_from(first, gi * cog, cog, dst, pout, t);
            }
        }
    };
    let jobs = batch * group * tiles;
    if jobs == 1 || (cog * kk * pout) < (1 << 16) {
        let mut col = Vec::new();
        (0..jobs).for_each(|j| task(j, &mut col));
    } else {
        (0..jobs).into_par_iter().for_each_init(Vec::new, |col, j| task(j, col));
    }
}

/// A 1-D/2-D conv (any stride) as one panel-kernel product per output row, reading each
/// (channel, tap) row of the GEMM operand straight from a zero-padded copy of the input
/// (or the input itself for an unpadded stride-1 conv): no im2col matrix is ever built.
///
/// With stride s the copy is split into phase planes: plane (r, q) holds the padded input's
/// rows r, r + s, r + 2s, … and, within them, columns q, q + s, … . Tap (a, b) of output pixel
/// (y, j) is padded pixel (y·s + a·d, j·s + b·d) = phase ((a·d) mod s, (b·d) mod s) at
/// (y + ⌊a·d/s⌋, j + ⌊b·d/s⌋), so every tap's operand row is contiguous in j, as at stride 1.
/// Each output is the same sum, in the same order, as through im2col.
#[allow(clippy::too_many_arguments)]
fn conv_without_im2col(
    x: &[f32],
    batch: usize,
    c_in: usize,
    packed: &[PackedWeights],
    c_out: usize,
    group: usize,
    bias: Option<&[f32]>,
    g: &Geom,
    out: &mut [f32],
    epi: Option<&Epilogue>,
) {
    let ([_, ih, iw], [_, oh, ow], [_, kh, kw], [_, dh, dw], [_, sh, sw]) = (g.input, g.output, g.kernel, g.dilation, g.stride);
    let (pt, pl) = (g.pad[1] as usize, g.pad[2] as usize);
    let (cig, cog, pin, pout) = (c_in / group, c_out / group, g.input_len(), g.output_len());
    // Rows and columns of each phase plane: the output's plus the farthest tap's shift.
    let (ph, width) = (oh + (kh - 1) * dh / sh, ow + (kw - 1) * dw / sw);
    // The phases some tap reads (a 1×1 stride-2 conv reads only one of its four).
    let mut phase_slot = vec![usize::MAX; sh * sw];
    let mut phases = Vec::new();
    for a in 0..kh {
        for b in 0..kw {
            let p = (a * dh % sh) * sw + b * dw % sw;
            if phase_slot[p] == usize::MAX {
                phase_slot[p] = phases.len();
                phases.push((p / sw, p % sw));
            }
        }
    }
    let in_place = sh == 1 && sw == 1 && pt == 0 && pl == 0 && width == iw && ph <= ih;
    let threads = rayon::current_num_threads().max(1);
    // Narrow outputs take several rows per kernel call, so that the kernel's 48-column tiles
    // are not mostly remainder: output pixel (y, j) reads the operand rows at y·width + j, so
    // rows y0..y1 are one product over (y1 - y0 - 1)·width + ow columns (the `width - ow`
    // columns between rows are computed and dropped). Every column is the same sum as in a
    // one-row call, so the results are identical.
    let per_block = if ow >= BLOCK_COLS { 1 } else { (BLOCK_COLS / width).clamp(1, oh) };
    let blocks = oh.div_ceil(per_block);
    // Blocks of equal height (26 rows: 13 + 13, not 17 + 9), so that the jobs are too.
    let per_block = oh.div_ceil(blocks);
    // The padded copy is made one band of output rows at a time (about BAND_FLOATS values,
    // the rows its taps reach), so that it is still in cache when the kernel reads it and
    // a big input is never copied whole.
    let qh = (kh - 1) * dh / sh;
    let band_blocks = if in_place {
        blocks
    } else {
        let per_row = cig * phases.len() * width;
        ((BAND_FLOATS / per_row).saturating_sub(qh) / per_block).clamp(1, blocks)
    };
    let band_blocks = blocks.div_ceil(blocks.div_ceil(band_blocks));
    let band_rows = band_blocks * per_block;
    // Rows of each phase plane in a band's copy.
    let band_ph = band_rows + qh;
    let plane = if in_place { pin } else { phases.len() * band_ph * width };
    let rows: Vec<usize> = (0..cig)
        .flat_map(|ci| (0..kh).flat_map(move |a| (0..kw).map(move |b| (ci, a, b))))
        .map(|(ci, a, b)| {
            let slot = phase_slot[(a * dh % sh) * sw + b * dw % sw];
            ci * plane + slot * band_ph * width + (a * dh / sh) * width + b * dw / sw
        })
        .collect();
    // SAFETY: each band's copy writes every row and column the kernel reads from it (the
    // rows a band does not reach are never read), before the kernel runs.
    let mut padded = if in_place { Vec::new() } else { unsafe { split::unfilled_f32(cig * plane) } };
    let out_ptr = SendPtr(out.as_mut_ptr());
    let work_per_row = cog * cig * kh * kw * ow;
    let panels = packed[0].panels();
    for b in 0..batch {
        for (gi, packed) in packed.iter().enumerate().take(group) {
            let xg = &x[(b * c_in + gi * cig) * pin..][..cig * pin];
            for band_y0 in (0..oh).step_by(band_rows) {
                let band_y1 = (band_y0 + band_rows).min(oh);
                // Output row y reads the copy's rows from (y - first_row)·width on.
                let (src, first_row): (&[f32], usize) = if in_place {
                    (xg, 0)
                } else {
                    // Phase plane rows band_y0 .. band_y1 + qh, at the top of each plane.
                    let fill = |(i, p): (usize, &mut [f32])| {
                        let (ci, (r, q)) = (i / phases.len(), phases[i % phases.len()]);
                        let xc = &xg[ci * pin..][..pin];
                        // Columns v of this phase read input column v·sw + q - pl.
                        let (lo, hi) = valid_range(width, sw, q as isize - pl as isize, iw);
                        // Built for wide vectors: the stride-2 gathers took 2.3 % of YOLOX in
                        // baseline SSE shuffles.
                        with_wide_vectors(
                            #[inline(always)]
                            || {
                                for (u, row) in (band_y0..band_y1 + qh).zip(p.chunks_exact_mut(width)) {
                                    let y = (u * sh + r).wrapping_sub(pt);
                                    if y >= ih {
                                        row.fill(0.0);
                                        continue;
                                    }
                                    row[..lo].fill(0.0);
                                    row[hi..].fill(0.0);
                                    if lo < hi {
                                        gather_every(&mut row[lo..hi], &xc[y * iw + lo * sw + q - pl..(y + 1) * iw], sw);
                                    }
                                }
                            },
                        )
                    };
                    let chunk = band_ph * width;
                    padded.par_chunks_mut(chunk).enumerate().with_min_len((1 << 15) / chunk + 1).for_each(fill);
                    (&padded, band_y0)
                };
                let bias_g = bias.map(|bv| &bv[gi * cog..]);
                // A leading BatchNormalization is applied by the kernel before it stores.
                let affine = epi.and_then(|e| e.leading_affine()).map(|(a, s)| (&a[gi * cog..], &s[gi * cog..]));
                let first = usize::from(affine.is_some());
                let image = (b * c_out + gi * cog) * pout;
                let band_blocks = (band_y1 - band_y0).div_ceil(per_block);
                // Big products with few row blocks are also cut by weight panels (output channels).
                let band_work = work_per_row * (band_y1 - band_y0);
                let pchunks = if band_work < PAR_WORK { 1 } else { split::panel_chunks(band_blocks, panels, threads) };
                let job_task = |scratch: &mut Vec<f32>, job: usize| {
                    let (blk, pr) = (job / pchunks, split::even_range(job % pchunks, pchunks, panels));
                    let y0 = band_y0 + blk * per_block;
                    let y1 = (y0 + per_block).min(band_y1);
                    let (m0, mn) = (pr.start * MR, (pr.end * MR).min(cog) - pr.start * MR);
                    let cols = (y1 - y0 - 1) * width + ow;
                    // SAFETY: the job reads src[(y - first_row)·width + rows[k] + j] for
                    // y0 ≤ y < y1, j < ow, inside the rows the copy (or the input) holds for
                    // this band (the dropped columns lie between them); it alone writes
                    // output rows y0..y1 of channels m0..m0+mn of this group.
                    unsafe {
                        let dst = out_ptr.get().add(image + m0 * pout + y0 * ow);
                        let x0 = src.as_ptr().add((y0 - first_row) * width);
                        if y1 - y0 == 1 || width == ow {
                            packed.multiply_panels(pr, x0, &rows, cols, bias_g, affine, dst, pout);
                            if let Some(e) = epi {
                                e.apply_block_from(first, gi * cog + m0, mn, dst, pout, cols);
                            }
                        } else {
                            scratch.resize(mn * cols, 0.0);
                            packed.multiply_panels(pr, x0, &rows, cols, bias_g, affine, scratch.as_mut_ptr(), cols);
                            if let Some(e) = epi {
                                e.apply_block_from(first, gi * cog + m0, mn, scratch.as_mut_ptr(), cols, cols);
                            }
                            for m in 0..mn {
                                for y in 0..y1 - y0 {
                                    let s = &scratch[m * cols + y * width..][..ow];
                                    std::ptr::copy_nonoverlapping(s.as_ptr(), dst.add(m * pout + y * ow), ow);
                                }
                            }
                        }
                    }
                };
                let jobs = band_blocks * pchunks;
                let min_len = PAR_WORK / (band_work / jobs).max(1) + 1;
                if jobs <= min_len {
                    let mut scratch = Vec::new();
                    (0..jobs).for_each(|j| job_task(&mut scratch, j));
                } else {
                    (0..jobs).into_par_iter().with_min_len(min_len).for_each_init(Vec::new, job_task);
                }
            }
        }
    }
}

/// Values (about) in one band of a conv's padded input copy: 1 MiB, within L2.
const BAND_FLOATS: usize = 1 << 18;

/// `dst[k] = src[k·step]` for every k: one phase-plane row from an input row.
#[inline(always)]
fn gather_every(dst: &mut [f32], src: &[f32], step: usize) {
    match step {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        // Pairs, so that the loop vectorizes (a shuffle per vector, not a load per value).
        2 => {
            let pairs = dst.len().min(src.len() / 2);
            for (d, p) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = p[0];
            }
            if let Some(last) = dst.get_mut(pairs) {
                *last = src[2 * pairs];
            }
        }
        _ => {
            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(step)) {
                *d = v;
            }
        }
    }
}

/// Multiply-adds below which a stride-1 conv runs on one thread.
const PAR_WORK: usize = 1 << 17;

/// Output columns a stride-1 conv's kernel call aims for (several narrow rows at once).
const BLOCK_COLS: usize = 480;

/// The panel-kernel weights of a conv (one [`PackedWeights`] per group), or None where the
/// conv takes another path (depthwise, no fast kernel on this machine).
pub fn pack_conv_weights(w: &[f32], c_in: usize, c_out: usize, group: usize, kl: usize) -> Option<Vec<PackedWeights>> {
    let (cig, cog) = (c_in / group, c_out / group);
    let kk = cig * kl;
    if (cig == 1 && group == c_in && group > 1) || !use_panel_kernel(cog, kk) || w.len() != group * cog * kk {
        return None;
    }
    Some((0..group).map(|gi| PackedWeights::new(&w[gi * cog * kk..(gi + 1) * cog * kk], cog, kk)).collect())
}

/// Whether a conv with `rows` output channels per group and GEMM depth `depth` goes through
/// the thin-GEMM panel kernel rather than the general GEMM (both measured in
/// `panel::bench`; set APTQ_GEMM=general to force the general one).
fn use_panel_kernel(rows: usize, depth: usize) -> bool {
    static FORCE_GENERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let general = *FORCE_GENERAL.get_or_init(|| std::env::var("APTQ_GEMM").is_ok_and(|v| v == "general"));
    !general && rows > 0 && depth > 0 && PackedWeights::fast_path()
}

/// Direct depthwise conv (one input channel per group, any channel multiplier).
#[allow(clippy::too_many_arguments)]
fn depthwise(x: &[f32], c_in: usize, w: &[f32], c_out: usize, bias: Option<&[f32]>, g: &Geom, out: &mut [f32], epi: Option<&Epilogue>) {
    let (pin, pout, kl) = (g.input_len(), g.output_len(), g.kernel_len());
    let mult = c_out / c_in;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let [sd, sh, sw] = g.stride;
    let [dd, dh, dw] = g.dilation;
    // Padded input extents covering every tap; rows are split into `sw` phases so that
    // strided taps read contiguous memory.
    let ext = |o: usize, k: usize, s: usize, d: usize| (o - 1) * s + (k - 1) * d + 1;
    let (zd, zh, zw) = (ext(od, kd, sd, dd), ext(oh, kh, sh, dh), ext(ow, kw, sw, dw));
    let phase_w = zw.div_ceil(sw);
    let row_len = phase_w * sw;
    // The same for every plane, so worked out once: where each phase's part of an input row
    // goes (offset in the padded row, first input column, length) and each tap's offset.
    let [id, ih, iw] = g.input;
    let (lo, hi) = valid_range(zw, 1, -g.pad[2], iw);
    let phases: Vec<(usize, usize, usize)> = (0..sw)
        .filter_map(|phase| {
            // Padded column c goes to phase c % sw, slot c / sw.
            let first = lo - lo % sw + phase;
            let first = if first < lo { first + sw } else { first };
            (first < hi).then(|| (phase * phase_w + first / sw, (first as isize - g.pad[2]) as usize, (hi - first).div_ceil(sw)))
        })
        .collect();
    let mut offsets = Vec::with_capacity(kl);
    for a in 0..kd {
        for bb in 0..kh {
            for e in 0..kw {
                let off = e * dw;
                offsets.push(((a * dd) * zh + bb * dh) * row_len + (off % sw) * phase_w + off / sw);
            }
        }
    }
    // Per pair of output rows (the kernel's calls), the taps of the kernel rows from the first
    // to the last that read an input row for either of them (in kernel order, kd = 1).
    let pair_taps: Vec<std::ops::Range<usize>> = (0..oh)
        .step_by(2)
        .map(|y| {
            let reads_input = |r: usize| {
                (y..(y + 2).min(oh)).any(|y| {
                    let i = (y * sh + r * dh) as isize - g.pad[1];
                    i >= 0 && (i as usize) < ih
                })
            };
            let mut used = (0..kh).filter(|&r| reads_input(r));
            match used.next() {
                Some(lo) => lo * kw..(used.next_back().unwrap_or(lo) + 1) * kw,
                None => 0..0,
            }
        })
        .collect();
    let plane = |oc: usize, o: &mut [f32], scratch: &mut (Vec<f32>, Vec<(usize, f32)>)| {
        let (buf, taps) = scratch;
        let b = oc / c_out;
        let ci = (oc % c_out) / mult;
        let xc = &x[(b * c_in + ci) * pin..(b * c_in + ci + 1) * pin];
        let wc = &w[(oc % c_out) * kl..(oc % c_out + 1) * kl];
        // Every plane writes the same positions of `buf` (same geometry), so the padding
        // zeroed when the buffer is first sized stays zero.
        if buf.len() != zd * zh * row_len {
            buf.clear();
            buf.resize(zd * zh * row_len, 0.0);
        }
        for z in 0..zd {
            let zi = z as isize - g.pad[0];
            if zi < 0 || zi >= id as isize {
                continue;
            }
            for y in 0..zh {
                let yi = y as isize - g.pad[1];
                if yi < 0 || yi >= ih as isize {
                    continue;
                }
                let src = &xc[(zi as usize * ih + yi as usize) * iw..][..iw];
                let dst = &mut buf[(z * zh + y) * row_len..][..row_len];
                for &(at, src0, n) in &phases {
                    let out = &mut dst[at..][..n];
                    if sw == 1 {
                        out.copy_from_slice(&src[src0..src0 + n]);
                    } else {
                        for (k, v) in out.iter_mut().enumerate() {
                            *v = src[src0 + k * sw];
                        }
                    }
                }
            }
        }
        let start = bias.map_or(0.0, |bv| bv[oc % c_out]);
        o.fill(start);
        taps.clear();
        taps.extend(offsets.iter().copied().zip(wc.iter().copied()));
        // Kernel rows that read only padding rows for every output row of a call are skipped:
        // each of their taps adds w·0 = ±0, which leaves any sum but −0 unchanged, and a sum
        // that starts at a bias other than −0 never becomes −0 (x + y is −0 only when both
        // are), so with finite weights the results are the same bits. Small maps gain most
        // (a 5×5 kernel on a 2-row map: its first and last rows read padding for both rows).
        let skip_padding_rows = kd == 1 && start.to_bits() != (-0.0f32).to_bits() && wc.iter().all(|v| v.is_finite());
        // A leading BatchNormalization is applied to each row as it is stored.
        let affine = epi.and_then(|e| e.leading_affine()).map(|(a, s)| (a[oc % c_out], s[oc % c_out]));
        let rows = DwRows { buf, stride: [sd, sh, sw], zh, row_len, affine };
        for z in 0..od {
            for y in (0..oh).step_by(2) {
                let count = (oh - y).min(2);
                let used = if skip_padding_rows { pair_taps[y / 2].clone() } else { 0..taps.len() };
                rows.accumulate(&taps[used], z, y, &mut o[(z * oh + y) * ow..][..count * ow], ow);
            }
        }
        if let Some(e) = epi {
            e.apply_from(usize::from(affine.is_some()), oc % c_out, o);
        }
    };
    if out.len() < (1 << 14) {
        let mut scratch = Default::default();
        out.chunks_mut(pout).enumerate().for_each(|(oc, o)| plane(oc, o, &mut scratch));
    } else {
        out.par_chunks_mut(pout).enumerate().for_each_init(Default::default, |scratch, (oc, o)| plane(oc, o, scratch));
    }
}

/// One depthwise plane's padded, phase-split input and its row layout (the taps are passed
/// per call: a call may skip kernel rows that read only padding).
struct DwRows<'a> {
    buf: &'a [f32],
    stride: [usize; 3],
    zh: usize,
    row_len: usize,
    /// `(a, b)`: each output becomes `o · a + b` (a multiply, then an add) after its taps.
    affine: Option<(f32, f32)>,
}

impl DwRows<'_> {
    /// Adds the contributions of `taps` ((offset in `buf` from the output row's base, weight)
    /// in kernel order) to output rows (z, y), (z, y + 1), … (`orows`: as many consecutive
    /// rows of `width`).
    fn accumulate(&self, taps: &[(usize, f32)], z: usize, y: usize, orows: &mut [f32], width: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            unsafe { self.accumulate_avx512(taps, z, y, orows, width) };
            return;
        }
        for (r, orow) in orows.chunks_exact_mut(width).enumerate() {
            self.accumulate_body(taps, z, y + r, orow);
        }
    }

    /// The same sums with the outputs held in registers across all taps: 64 outputs of a row
    /// in four 16-lane accumulators, then the rest of the row (up to 63) as one block of 1–4
    /// vectors, the last masked — with the next row's rest when both fit in four vectors, so
    /// that a block has enough independent adds not to wait on each one's latency. Each output
    /// still gets `o + w·s` per tap in kernel order, with separate multiplies and adds (no
    /// FMA), so the results are identical to [`Self::accumulate_body`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn accumulate_avx512(&self, taps: &[(usize, f32)], z: usize, y: usize, orows: &mut [f32], width: usize) {
        let count = orows.len() / width;
        let base = |r: usize| (z * self.stride[0] * self.zh + (y + r) * self.stride[1]) * self.row_len;
        assert!(taps.iter().all(|&(off, _)| base(count - 1) + off + width <= self.buf.len()));
        let out = orows.as_mut_ptr();
        let row = |r: usize| out.wrapping_add(r * width);
        let full = width - width % 64;
        // SAFETY (all calls): columns j..j + 16·V of each row passed are within the row (the
        // last vector masked to `last`), and so within `buf` past every tap's offset by the
        // assertion (rows are in increasing order).
        unsafe {
            for r in 0..count {
                for j in (0..full).step_by(64) {
                    self.block_avx512::<4, 1>(taps, [base(r)], [row(r)], j, 16);
                }
            }
            let rest = width - full;
            let last = rest - 16 * (rest.div_ceil(16).max(1) - 1);
            match (rest.div_ceil(16), count) {
                (0, _) => {}
                (1, 2) => self.block_avx512::<1, 2>(taps, [base(0), base(1)], [row(0), row(1)], full, last),
                (2, 2) => self.block_avx512::<2, 2>(taps, [base(0), base(1)], [row(0), row(1)], full, last),
                (vectors, _) => {
                    for r in 0..count {
                        match vectors {
                            1 => self.block_avx512::<1, 1>(taps, [base(r)], [row(r)], full, last),
                            2 => self.block_avx512::<2, 1>(taps, [base(r)], [row(r)], full, last),
                            3 => self.block_avx512::<3, 1>(taps, [base(r)], [row(r)], full, last),
                            _ => self.block_avx512::<4, 1>(taps, [base(r)], [row(r)], full, last),
                        }
                    }
                }
            }
        }
    }

    /// Outputs `j .. j + 16·(V − 1) + last` of R rows (`bases`: each row's offset in `buf`,
    /// `rows`: each row's output): V accumulators per row over all taps, the last holding
    /// `last` (1..=16) lanes.
    ///
    /// # Safety
    /// AVX-512F; each row has `j + 16·(V − 1) + last` outputs and `buf[base + off + j..]` holds
    /// as many values for every row and tap.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block_avx512<const V: usize, const R: usize>(
        &self,
        taps: &[(usize, f32)],
        bases: [usize; R],
        rows: [*mut f32; R],
        j: usize,
        last: usize,
    ) {
        use std::arch::x86_64::*;
        let mask = |v: usize| -> __mmask16 { if v + 1 < V || last == 16 { 0xffff } else { ((1u32 << last) - 1) as u16 } };
        let buf = self.buf.as_ptr();
        // SAFETY: every access is masked to the columns the caller vouches for.
        unsafe {
            let mut acc: [[__m512; V]; R] =
                std::array::from_fn(|r| std::array::from_fn(|v| _mm512_maskz_loadu_ps(mask(v), rows[r].add(j + 16 * v))));
            for &(off, wv) in taps {
                let w = _mm512_set1_ps(wv);
                for (a, &b) in acc.iter_mut().zip(&bases) {
                    let s = buf.add(b + off + j);
                    for (v, a) in a.iter_mut().enumerate() {
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(w, _mm512_maskz_loadu_ps(mask(v), s.add(16 * v))));
                    }
                }
            }
            for (a, &o) in acc.iter_mut().zip(&rows) {
                for (v, a) in a.iter_mut().enumerate() {
                    if let Some((ea, es)) = self.affine {
                        *a = _mm512_add_ps(_mm512_mul_ps(*a, _mm512_set1_ps(ea)), _mm512_set1_ps(es));
                    }
                    _mm512_mask_storeu_ps(o.add(j + 16 * v), mask(v), *a);
                }
            }
        }
    }

    #[inline(always)]
    fn accumulate_body(&self, taps: &[(usize, f32)], z: usize, y: usize, orow: &mut [f32]) {
        let base = (z * self.stride[0] * self.zh + y * self.stride[1]) * self.row_len;
        for &(off, wv) in taps {
            let src = &self.buf[base + off..][..orow.len()];
            for (o, &s) in orow.iter_mut().zip(src) {
                *o += wv * s;
            }
        }
        if let Some((a, b)) = self.affine {
            orow.iter_mut().for_each(|o| *o = *o * a + b);
        }
    }
}

/// Packs ConvTranspose weights (C_in × C_out/group × kernel) as one row-major
/// (C_out/group · kernel) × (C_in/group) matrix per group, the GEMM's left operand.
pub fn pack_transpose_weights(w: &[f32], c_in: usize, cog: usize, kl: usize, group: usize) -> Vec<f32> {
    let cig = c_in / group;
    let mt = cog * kl;
    let mut packed = vec![0.0; group * mt * cig];
    for gi in 0..group {
        let dst = &mut packed[gi * mt * cig..(gi + 1) * mt * cig];
        for ci in 0..cig {
            let src = &w[(gi * cig + ci) * mt..(gi * cig + ci + 1) * mt];
            for (r, &v) in src.iter().enumerate() {
                dst[r * cig + ci] = v;
            }
        }
    }
    packed
}

/// ConvTranspose on f32: `x` is N×C_in×input, `packed` from [`pack_transpose_weights`],
/// `out` is N×C_out×output (fully overwritten).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_f32(
    x: &[f32],
    batch: usize,
    c_in: usize,
    packed: &[f32],
    c_out: usize,
    group: usize,
    bias: Option<&[f32]>,
    g: &Geom,
    out: &mut [f32],
    epi: Option<&Epilogue>,
) {
    let (pin, pout, kl) = (g.input_len(), g.output_len(), g.kernel_len());
    let (cig, cog) = (c_in / group, c_out / group);
    let mt = cog * kl;
    if out.is_empty() {
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    let mut col = vec![0.0f32; mt * pin];
    for b in 0..batch {
        for gi in 0..group {
            let xg = MatRef::row_major(&x[(b * c_in + gi * cig) * pin..(b * c_in + (gi + 1) * cig) * pin], cig, pin);
            let wg = MatRef::row_major(&packed[gi * mt * cig..(gi + 1) * mt * cig], mt, cig);
            if cig == 0 {
                col.fill(0.0);
            } else {
                gemm(&mut col, pin, wg, xg, false, 1.0, threads);
            }
            let planes = &mut out[(b * c_out + gi * cog) * pout..(b * c_out + (gi + 1) * cog) * pout];
            let scatter = |ocl: usize, o: &mut [f32]| {
                o.fill(bias.map_or(0.0, |bv| bv[gi * cog + ocl]));
                col2im(&col[ocl * kl * pin..(ocl + 1) * kl * pin], g, o);
                if let Some(e) = epi {
                    e.apply(gi * cog + ocl, o);
                }
            };
            if planes.len() * kl < (1 << 15) {
                planes.chunks_mut(pout).enumerate().for_each(|(i, o)| scatter(i, o));
            } else {
                planes.par_chunks_mut(pout).enumerate().for_each(|(i, o)| scatter(i, o));
            }
        }
    }
}

/// Adds one output channel's GEMM rows (kernel_len × input pixels) into its output plane.
fn col2im(col: &[f32], g: &Geom, o: &mut [f32]) {
    let [id, ih, iw] = g.input;
    let [od, oh, ow] = g.output;
    let [kd, kh, kw] = g.kernel;
    let pin = g.input_len();
    let mut r = 0;
    for a in 0..kd {
        let offd = (a * g.dilation[0]) as isize - g.pad[0];
        let (zlo, zhi) = valid_range(id, g.stride[0], offd, od);
        for bb in 0..kh {
            let offh = (bb * g.dilation[1]) as isize - g.pad[1];
            let (ylo, yhi) = valid_range(ih, g.stride[1], offh, oh);
            for e in 0..kw {
                let offw = (e * g.dilation[2]) as isize - g.pad[2];
                let (xlo, xhi) = valid_range(iw, g.stride[2], offw, ow);
                let crow = &col[r * pin..(r + 1) * pin];
                r += 1;
                for z in zlo..zhi {
                    let zo = (z as isize * g.stride[0] as isize + offd) as usize;
                    for y in ylo..yhi {
                        let yo = (y as isize * g.stride[1] as isize + offh) as usize;
                        let src = &crow[(z * ih + y) * iw..][..iw];
                        let dst = &mut o[(zo * oh + yo) * ow..][..ow];
                        let x0 = (xlo as isize * g.stride[2] as isize + offw) as usize;
                        if g.stride[2] == 1 {
                            for (d, &s) in dst[x0..x0 + (xhi - xlo)].iter_mut().zip(&src[xlo..xhi]) {
                                *d += s;
                            }
                        } else {
                            for (k, &s) in src[xlo..xhi].iter().enumerate() {
                                dst[x0 + k * g.stride[2]] += s;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Uniform values in [-0.5, 0.5) from a linear congruential generator.
    pub(in crate::engine::kernels) fn values(seed: u32) -> impl FnMut() -> f32 {
        let mut seed = seed;
        move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    /// The geometry of a 2-D conv of an ih × iw input (output size from the ONNX formula with
    /// equal begin and end pads).
    #[allow(clippy::too_many_arguments)]
    fn geom_2d(ih: usize, iw: usize, kh: usize, kw: usize, sh: usize, sw: usize, d: usize, pt: usize, pl: usize) -> Geom {
        let ext = |i: usize, k: usize, p: usize, s: usize| (i + 2 * p - (k - 1) * d - 1) / s + 1;
        Geom {
            input: [1, ih, iw],
            output: [1, ext(ih, kh, pt, sh), ext(iw, kw, pl, sw)],
            kernel: [1, kh, kw],
            stride: [1, sh, sw],
            dilation: [1, d, d],
            pad: [0, pt as isize, pl as isize],
        }
    }

    /// Textbook 2-D convolution, one multiply-add at a time.
    #[allow(clippy::too_many_arguments)]
    fn naive(x: &[f32], c_in: usize, w: &[f32], c_out: usize, group: usize, bias: &[f32], g: &Geom) -> Vec<f32> {
        let ([_, ih, iw], [_, oh, ow], [_, kh, kw]) = (g.input, g.output, g.kernel);
        let (cig, cog) = (c_in / group, c_out / group);
        let mut out = vec![0.0f32; c_out * oh * ow];
        for oc in 0..c_out {
            let gi = oc / cog;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = bias[oc];
                    for ci in 0..cig {
                        for a in 0..kh {
                            for b in 0..kw {
                                let yi = (y * g.stride[1] + a * g.dilation[1]) as isize - g.pad[1];
                                let xi = (xo * g.stride[2] + b * g.dilation[2]) as isize - g.pad[2];
                                if yi >= 0 && xi >= 0 && (yi as usize) < ih && (xi as usize) < iw {
                                    let c = gi * cig + ci;
                                    acc += x[(c * ih + yi as usize) * iw + xi as usize] * w[((oc * cig + ci) * kh + a) * kw + b];
                                }
                            }
                        }
                    }
                    out[(oc * oh + y) * ow + xo] = acc;
                }
            }
        }
        out
    }

    /// The direct path (phase planes for strides above 1) gives bit for bit what im2col
    /// gives with the same packed weights: the same sums in the same order.
    #[test]
    fn direct_and_im2col_paths_agree_bitwise() {
        let mut rnd = values(11);
        // c_in, c_out, group, (ih, iw), (kh, kw), (sh, sw), dilation, pad (top, left)
        let cases = [
            (6, 20, 1, (21, 23), (3, 3), (2, 2), 1, (1, 1)),
            (4, 9, 1, (16, 16), (3, 3), (2, 2), 1, (0, 0)),
            (6, 16, 2, (13, 30), (3, 3), (2, 1), 1, (1, 1)),
            (3, 8, 1, (17, 19), (5, 5), (3, 2), 2, (4, 2)),
            (5, 8, 1, (12, 12), (1, 1), (2, 2), 1, (0, 0)),
            (3, 24, 1, (70, 70), (3, 3), (2, 2), 1, (1, 1)),
            (8, 16, 1, (9, 13), (3, 3), (1, 1), 1, (1, 1)),
            (2, 4, 1, (3, 4), (3, 3), (1, 1), 1, (3, 3)),
            // Inputs big enough to be copied in several bands (stride 1 and 2).
            (64, 8, 1, (90, 90), (3, 3), (1, 1), 1, (1, 1)),
            (32, 8, 1, (200, 200), (3, 3), (2, 2), 1, (1, 1)),
        ];
        for (c_in, c_out, group, (ih, iw), (kh, kw), (sh, sw), d, (pt, pl)) in cases {
            let g = geom_2d(ih, iw, kh, kw, sh, sw, d, pt, pl);
            let [_, oh, ow] = g.output;
            let x: Vec<f32> = (0..2 * c_in * ih * iw).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..c_out * (c_in / group) * kh * kw).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..c_out).map(|_| rnd()).collect();
            let Some(packed) = pack_conv_weights(&w, c_in, c_out, group, kh * kw) else {
                eprintln!("skipped: no panel kernel on this machine");
                return;
            };
            let mut direct = vec![f32::NAN; 2 * c_out * oh * ow];
            conv_f32(&x, 2, c_in, &w, c_out, group, Some(&bias), &g, &mut direct, Some(&packed), None);
            let mut via_col = vec![f32::NAN; 2 * c_out * oh * ow];
            conv_im2col(&x, 2, c_in, &w, c_out, group, Some(&bias), &g, &mut via_col, Some(&packed), None);
            for (i, (a, b)) in direct.iter().zip(&via_col).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "stride {sh}x{sw} kernel {kh}x{kw} pad {pt},{pl}: element {i}: {a} vs {b}");
            }
            let want = naive(&x[..c_in * ih * iw], c_in, &w, c_out, group, &bias, &g);
            for (i, (a, b)) in direct.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-5, "stride {sh}x{sw}: element {i}: {a} vs {b}");
            }
        }
    }

    /// The depthwise kernel's sums are the textbook loop's bit for bit: per output the bias,
    /// then `+ w·x` per tap in kernel order (a padding tap adds `w·0`), rows of every width
    /// the vector blocks split differently (64-column blocks and a 1–4-vector rest).
    #[test]
    fn depthwise_sums_are_the_in_order_textbook_sums() {
        let mut rnd = values(5);
        // c (channels, multiplier 1 or 2), (ih, iw), (kh, kw), stride, dilation, pad
        for (c, mult, (ih, iw), (kh, kw), st, d, p) in [
            (3, 1, (2, 96), (5, 5), 1, 1, 2),
            (2, 1, (4, 1), (3, 3), 1, 1, 1),
            (2, 2, (3, 15), (3, 3), 1, 1, 1),
            (2, 1, (3, 17), (3, 3), 2, 1, 1),
            (2, 1, (3, 40), (3, 3), 1, 2, 2),
            (2, 1, (2, 63), (5, 5), 1, 1, 2),
            (2, 1, (2, 64), (3, 3), 1, 1, 1),
            (2, 1, (3, 65), (3, 3), 1, 1, 0),
            (2, 1, (3, 130), (3, 3), 2, 1, 1),
            (1, 1, (2, 200), (3, 3), 1, 1, 1),
            // Kernel rows skipped at the top and bottom only, and a one-row input whose two
            // used kernel rows have a padding row between them.
            (2, 1, (7, 20), (5, 5), 1, 1, 2),
            (2, 1, (5, 33), (3, 3), 2, 2, 2),
            (1, 1, (1, 30), (5, 5), 2, 1, 3),
        ] {
            let g = geom_2d(ih, iw, kh, kw, st, st, d, p, p);
            let c_out = c * mult;
            let x: Vec<f32> = (0..c * ih * iw).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..c_out * kh * kw).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..c_out).map(|_| rnd()).collect();
            // Also where skipping the padding rows' w·0 would change bits: a −0 bias with +0
            // weights on negative inputs (the products inside are −0, the padding's +0) and an
            // infinite weight (inf·0 = NaN).
            let negative: Vec<f32> = x.iter().map(|v| -v.abs() - 0.1).collect();
            let signed_zeros = (negative, vec![0.0f32; c_out * kh * kw], vec![-0.0f32; c_out]);
            let mut with_inf = w.clone();
            with_inf[0] = f32::INFINITY;
            for (x, w, bias) in [(x.clone(), w, bias.clone()), signed_zeros, (x, with_inf, bias)] {
                check(&x, c, mult, &w, &bias, &g, (ih, iw), (kh, kw), st, d, p);
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn check(
            x: &[f32],
            c: usize,
            mult: usize,
            w: &[f32],
            bias: &[f32],
            g: &Geom,
            (ih, iw): (usize, usize),
            (kh, kw): (usize, usize),
            st: usize,
            d: usize,
            p: usize,
        ) {
            let [_, oh, ow] = g.output;
            let c_out = c * mult;
            let mut got = vec![f32::NAN; c_out * oh * ow];
            depthwise(x, c, w, c_out, Some(bias), g, &mut got, None);
            for oc in 0..c_out {
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut acc = bias[oc];
                        for a in 0..kh {
                            for b in 0..kw {
                                let yi = (y * st + a * d) as isize - p as isize;
                                let xi = (xo * st + b * d) as isize - p as isize;
                                let inside = yi >= 0 && xi >= 0 && (yi as usize) < ih && (xi as usize) < iw;
                                let v = if inside { x[((oc / mult) * ih + yi as usize) * iw + xi as usize] } else { 0.0 };
                                acc += w[(oc * kh + a) * kw + b] * v;
                            }
                        }
                        let i = (oc * oh + y) * ow + xo;
                        assert_eq!(
                            got[i].to_bits(),
                            acc.to_bits(),
                            "{ih}x{iw} k{kh} s{st} d{d} p{p}: output {oc},{y},{xo}: {} vs {acc}",
                            got[i]
                        );
                    }
                }
            }
        }
    }

    /// Depthwise (with channel multipliers) and grouped/dense convs over strides 1–3, pads,
    /// dilations and odd sizes agree with the textbook loop.
    #[test]
    fn conv_paths_match_the_textbook_loop() {
        let mut rnd = values(7);
        let cases = [
            // c_in, c_out, group, (ih, iw), (kh, kw), stride, dilation, pad (top, left)
            (4, 4, 4, (9, 11), (3, 3), 1, 1, (1, 1)),
            (4, 4, 4, (9, 11), (3, 3), 2, 1, (1, 1)),
            (3, 6, 3, (10, 7), (3, 2), 3, 1, (0, 1)),
            (2, 2, 2, (12, 13), (5, 5), 2, 2, (4, 3)),
            (4, 4, 4, (8, 8), (3, 3), 2, 1, (0, 0)),
            (6, 4, 2, (9, 10), (3, 3), 2, 1, (1, 1)),
            (5, 3, 1, (7, 9), (1, 1), 1, 1, (0, 0)),
            (5, 3, 1, (7, 9), (3, 3), 1, 2, (2, 2)),
            (5, 3, 1, (7, 9), (3, 3), 1, 1, (0, 0)),
            (6, 4, 2, (9, 10), (3, 3), 1, 1, (0, 1)),
            (3, 10, 1, (5, 70), (3, 3), 1, 1, (1, 1)),
            (3, 17, 1, (4, 100), (1, 5), 1, 1, (0, 2)),
            // Depthwise rows of 64-column register blocks plus a masked remainder.
            (16, 16, 16, (5, 150), (3, 3), 1, 1, (1, 1)),
            // Narrow stride-1 outputs, several rows per kernel call: padded (dropped columns
            // between rows) and unpadded 1×1 (rows contiguous), two weight panels.
            (8, 16, 1, (9, 13), (3, 3), 1, 1, (1, 1)),
            (8, 24, 1, (6, 11), (1, 1), 1, 1, (0, 0)),
            // Stride 2 through im2col, split into several tiles (the last one shorter).
            (3, 8, 1, (70, 70), (3, 3), 2, 1, (1, 1)),
        ];
        for (c_in, c_out, group, (ih, iw), (kh, kw), s, d, (pt, pl)) in cases {
            let g = geom_2d(ih, iw, kh, kw, s, s, d, pt, pl);
            let [_, oh, ow] = g.output;
            let x: Vec<f32> = (0..c_in * ih * iw).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..c_out * (c_in / group) * kh * kw).map(|_| rnd()).collect();
            let bias: Vec<f32> = (0..c_out).map(|_| rnd()).collect();
            let mut out = vec![f32::NAN; c_out * oh * ow];
            conv_f32(&x, 1, c_in, &w, c_out, group, Some(&bias), &g, &mut out, None, None);
            let want = naive(&x, c_in, &w, c_out, group, &bias, &g);
            for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-5, "case c_in={c_in} group={group} s={s} d={d}: element {i}: {a} vs {b}");
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// `cargo test --release --lib conv::bench -- --ignored --nocapture`: GFLOP/s of
    /// conv_f32 on YOLOX-like 3×3 convs, one thread, fastest of CONV_BENCH_REPS (20) runs
    /// (more for a profiler).
    #[test]
    #[ignore]
    fn conv_shapes() {
        for (c_in, c_out, hw, s) in
            [(24, 48, 208, 2), (96, 96, 52, 1), (12, 24, 208, 1), (48, 96, 104, 2), (192, 384, 26, 2), (24, 24, 104, 1)]
        {
            let o = (hw + 2 - 3) / s + 1;
            let g = Geom { input: [1, hw, hw], output: [1, o, o], kernel: [1, 3, 3], stride: [1, s, s], dilation: [1; 3], pad: [0, 1, 1] };
            let x: Vec<f32> = (0..c_in * hw * hw).map(|i| (i % 13) as f32 * 0.1).collect();
            let w: Vec<f32> = (0..c_out * c_in * 9).map(|i| (i % 7) as f32 * 0.1).collect();
            let bias = vec![0.1f32; c_out];
            let packed = pack_conv_weights(&w, c_in, c_out, 1, 9);
            let mut out = vec![0.0f32; c_out * o * o];
            let flops = 2.0 * (c_out * c_in * 9 * o * o) as f64;
            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            let reps = std::env::var("CONV_BENCH_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
            let t = pool.install(|| {
                (0..reps)
                    .map(|_| {
                        let t = Instant::now();
                        conv_f32(&x, 1, c_in, &w, c_out, 1, Some(&bias), &g, &mut out, packed.as_deref(), None);
                        t.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            });
            eprintln!("{c_in:>4}->{c_out:<4} {hw}² s{s}: {:7.3} ms {:6.1} GFLOP/s", t * 1e3, flops / t / 1e9);
        }
    }
}

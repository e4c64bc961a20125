//! Exact integer kernels for Ascend deploy models: int8 activations (with the zero point
//! `offset_d` of the AscendQuant that produced them) × int8 weights + int32 bias → int32
//! accumulators, as the NPU's cube unit computes them:
//! `acc = Σ (q_x − offset_d) · w_q + b_q`. Padding represents 0.0, i.e. `q = offset_d`.

use rayon::prelude::*;

use super::kernels::SendPtr;
use super::kernels::conv::valid_range;
use super::kernels::dot::{self, BLOCK, DotIsa, PackedWeights, pack_block};
use super::kernels::split::unfilled_i32;

/// Geometry of a 2-D convolution (NCHW input, OIHW weight).
#[derive(Debug, Clone)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// [top, left, bottom, right]
    pub pads: [usize; 4],
    pub group: usize,
}

impl ConvGeometry {
    pub fn out_hw(&self) -> [usize; 2] {
        let dim = |i: usize, pads: usize| {
            let span = self.dilations[i] * (self.kernel[i] - 1) + 1;
            let padded = [self.in_h, self.in_w][i] + pads;
            if padded < span { 0 } else { (padded - span) / self.strides[i] + 1 }
        };
        [dim(0, self.pads[0] + self.pads[2]), dim(1, self.pads[1] + self.pads[3])]
    }
}

/// int8 convolution with exact int32 accumulation. `x`: N×C×H×W, `w`: M×(C/group)×kh×kw,
/// `bias`: M values or empty, `x_offset` in −128..=127. Returns N×M×oh×ow accumulators.
pub fn conv2d(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry) -> Vec<i32> {
    conv2d_packed(x, x_offset, w, bias, g, &PackedConv::default())
}

/// The dot-product paths' packed weights of one conv (per group: the rows and their base
/// sums), made on the first run and reused by the next ones: an op's weights, bias and input
/// offset never change, and packing them cost every run of a deploy model or of a layer's
/// slice a pass over all its weights.
#[derive(Debug, Default)]
pub struct PackedConv(std::sync::OnceLock<PackedGroups>);

#[derive(Debug)]
struct PackedGroups {
    layout: Layout,
    groups: Vec<(PackedWeights, Vec<i32>)>,
}

/// How a path orders the packed weight rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// The stride-1 conv's (tap, channel quad) order.
    Direct,
    /// The strided conv's im2col order.
    Im2col,
    /// The transposed conv's (output channel, tap) rows over the input channels.
    Transposed,
}

impl PackedConv {
    /// The packed groups in `layout`: the cached ones, or (if the cache holds another layout)
    /// `make`'s, not kept.
    fn get<'a>(
        &'a self,
        layout: Layout,
        make: impl FnOnce() -> Vec<(PackedWeights, Vec<i32>)>,
    ) -> std::borrow::Cow<'a, [(PackedWeights, Vec<i32>)]> {
        let mut make = Some(make);
        let cached = self.0.get_or_init(|| PackedGroups { layout, groups: make.take().expect("first call")() });
        if cached.layout == layout {
            std::borrow::Cow::Borrowed(&cached.groups)
        } else {
            std::borrow::Cow::Owned(make.take().expect("not used by get_or_init")())
        }
    }
}

/// [`conv2d`] with the weights' packing kept in `packed` across calls. The caller passes the
/// same `w`, `bias` and `x_offset` with the same `packed` every time.
pub fn conv2d_packed(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry, packed: &PackedConv) -> Vec<i32> {
    if g.in_channels == g.group {
        return conv2d_channelwise(x, x_offset, w, bias, g);
    }
    match DotIsa::detect() {
        Some(isa) if g.out_channels / g.group >= DOT_MIN_CHANNELS && (-128..=127).contains(&x_offset) => {
            if g.strides == [1, 1] {
                conv2d_dot_direct(isa, x, x_offset, w, bias, g, packed)
            } else {
                conv2d_dot(isa, x, x_offset, w, bias, g, packed)
            }
        }
        _ => conv2d_portable(x, x_offset, w, bias, g),
    }
}

/// A stride-1 [`conv2d`] on the dot-product blocks without im2col: the group's input is
/// copied once into padded planes of 4 interleaved channels (`[C/4][H+pads][W+pads][4]`
/// bytes), where the k-quad (tap, channel quad) of 16 consecutive output pixels is 64
/// consecutive bytes. Output rows are computed at the padded width (the `kw − 1` extra
/// columns of each row are dropped), so that pixel blocks run on across rows.
fn conv2d_dot_direct(isa: DotIsa, x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry, packed: &PackedConv) -> Vec<i32> {
    let [oh, ow] = g.out_hw();
    let [kh, kw] = g.kernel;
    let (cg, mg) = (g.in_channels / g.group, g.out_channels / g.group);
    let (quads, taps) = (cg.div_ceil(4), kh * kw);
    let (ph, pw) = (g.in_h + g.pads[0] + g.pads[2], g.in_w + g.pads[1] + g.pads[3]);
    // SAFETY: every output pixel of every channel is written: by the blocks, or copied from
    // the virtual rows they wrote.
    let mut out = unsafe { unfilled_i32(g.batch * g.out_channels * oh * ow) };
    if out.is_empty() {
        return out;
    }
    // Weights in the k order (tap, channel quad, channel in quad); channels past cg are 0.
    let groups = packed.get(Layout::Direct, || {
        (0..g.group)
            .map(|grp| {
                let mut reordered = vec![0i8; mg * taps * quads * 4];
                for mi in 0..mg {
                    let src = &w[(grp * mg + mi) * cg * taps..][..cg * taps];
                    let dst = &mut reordered[mi * taps * quads * 4..][..taps * quads * 4];
                    for c in 0..cg {
                        for tap in 0..taps {
                            dst[(tap * quads + c / 4) * 4 + c % 4] = src[c * taps + tap];
                        }
                    }
                }
                let packed = PackedWeights::new(&reordered, mg, taps * quads * 4);
                let base = packed.bases(isa, x_offset, bias.get(grp * mg..).unwrap_or(&[]));
                (packed, base)
            })
            .collect()
    });
    let offsets: Vec<usize> = (0..taps * quads)
        .map(|kq| {
            let (tap, q) = (kq / quads, kq % quads);
            ((q * ph + (tap / kw) * g.dilations[0]) * pw + (tap % kw) * g.dilations[1]) * 4
        })
        .collect();
    // Virtual output pixels: oh rows of pw. The last block reads up to a row and a block
    // past the planes.
    let virtual_pixels = oh * pw;
    let blocks = virtual_pixels.div_ceil(BLOCK);
    let pad = isa.encode(x_offset as i8);
    let mut planes = vec![pad; (quads * ph * pw + pw + BLOCK) * 4];
    // A one-column kernel has no extra columns (pw = ow): the blocks write the output itself.
    let straight = virtual_pixels == oh * ow;
    // SAFETY: the blocks write every virtual pixel of every channel row before the copy.
    let mut virtual_out = if straight { Vec::new() } else { unsafe { unfilled_i32(mg * virtual_pixels) } };
    let plane = g.in_h * g.in_w;
    for n in 0..g.batch {
        for (grp, (weights, base)) in groups.iter().enumerate() {
            let input = &x[(n * g.in_channels + grp * cg) * plane..][..cg * plane];
            planes[..quads * ph * pw * 4].par_chunks_mut(ph * pw * 4).enumerate().for_each(|(q, dst)| {
                for t in 0..4 {
                    let c = 4 * q + t;
                    for (y, row) in dst[(g.pads[0] * pw + g.pads[1]) * 4..].chunks_mut(pw * 4).take(g.in_h).enumerate() {
                        match input.get(c * plane..(c + 1) * plane) {
                            Some(src) => {
                                for (px, &v) in row.chunks_exact_mut(4).zip(&src[y * g.in_w..][..g.in_w]) {
                                    px[t] = isa.encode(v);
                                }
                            }
                            // A channel past cg: its weights are 0.
                            None => row.iter_mut().skip(t).step_by(4).take(g.in_w).for_each(|b| *b = 0),
                        }
                    }
                }
            });
            let out_g = &mut out[(n * g.out_channels + grp * mg) * oh * ow..][..mg * oh * ow];
            let dst = SendPtr(if straight { out_g.as_mut_ptr() } else { virtual_out.as_mut_ptr() });
            let planes = &planes;
            (0..blocks).into_par_iter().for_each(|b| {
                let (v0, np) = (b * BLOCK, (virtual_pixels - b * BLOCK).min(BLOCK));
                // SAFETY: block b writes virtual pixels v0..v0+np of every channel row (mg ×
                // virtual_pixels), which no other block writes; its reads end before
                // quads·ph·pw + pw + BLOCK pixels (see `planes`).
                unsafe { dot::block_at(isa, planes.as_ptr().add(v0 * 4), &offsets, np, weights, base, dst.get().add(v0), virtual_pixels) };
            });
            if straight {
                continue;
            }
            out_g.par_chunks_mut(oh * ow).zip(virtual_out.par_chunks(virtual_pixels)).for_each(|(dst, src)| {
                for (d, s) in dst.chunks_exact_mut(ow).zip(src.chunks_exact(pw)) {
                    d.copy_from_slice(&s[..ow]);
                }
            });
        }
    }
    out
}

/// Output channels per group from which a conv runs on the dot-product blocks: a tile
/// computes 4 channels, and a depthwise conv (1 per group) costs more to pack than to sum.
const DOT_MIN_CHANNELS: usize = 4;

/// [`conv2d`] on the dot-product blocks of [`dot`]: per group, blocks of 64 output pixels
/// gather their im2col rows (stored bytes, padding = the zero point) and multiply them with
/// every output channel's weights; jobs are (batch item, group, block) triples.
fn conv2d_dot(isa: DotIsa, x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry, packed: &PackedConv) -> Vec<i32> {
    let [oh, ow] = g.out_hw();
    let [kh, kw] = g.kernel;
    let cg = g.in_channels / g.group;
    let mg = g.out_channels / g.group;
    let k = cg * kh * kw;
    let p = oh * ow;
    // SAFETY: the jobs write every pixel of every channel (or the loop below, without taps).
    let mut out = unsafe { unfilled_i32(g.batch * g.out_channels * p) };
    if out.is_empty() || k == 0 {
        for (m, plane) in out.chunks_mut(p.max(1)).enumerate() {
            plane.fill(bias.get(m % g.out_channels).copied().unwrap_or(0));
        }
        return out;
    }
    let stored = isa.encode_all(x);
    let pad = isa.encode(x_offset as i8);
    let groups = packed.get(Layout::Im2col, || {
        (0..g.group)
            .map(|grp| {
                let packed = PackedWeights::new(&w[grp * mg * k..][..mg * k], mg, k);
                let base = packed.bases(isa, x_offset, bias.get(grp * mg..).unwrap_or(&[]));
                (packed, base)
            })
            .collect()
    });
    let blocks = p.div_ceil(BLOCK);
    let plane = g.in_h * g.in_w;
    let dst = SendPtr(out.as_mut_ptr());
    (0..g.batch * g.group * blocks).into_par_iter().for_each_init(
        || vec![0u8; k.div_ceil(4) * 4 * BLOCK],
        |buf, job| {
            let (n, grp, b) = (job / (g.group * blocks), job / blocks % g.group, job % blocks);
            let planes = &stored[(n * g.in_channels + grp * cg) * plane..][..cg * plane];
            let (p0, np) = (b * BLOCK, (p - b * BLOCK).min(BLOCK));
            pack_block(buf, k, np, |r, row| gather_row(planes, g, r, p0, row, pad));
            let (weights, base) = &groups[grp];
            // SAFETY: the job writes channels grp·mg.. of item n at pixels p0..p0+np only,
            // which no other job writes; the buffer holds N·M·p elements.
            unsafe { dot::block(isa, buf, np, weights, base, dst.get().add((n * g.out_channels + grp * mg) * p + p0), p) };
        },
    );
    out
}

/// The im2col row `r` = (c, ky, kx) of a group's stored input `planes` for output pixels
/// `p0..p0 + row.len()`: input bytes, `pad` where the window is outside the input.
fn gather_row(planes: &[u8], g: &ConvGeometry, r: usize, p0: usize, row: &mut [u8], pad: u8) {
    let [kh, kw] = g.kernel;
    let [_, ow] = g.out_hw();
    let (c, ky, kx) = (r / (kh * kw), (r / kw) % kh, r % kw);
    let src = &planes[c * g.in_h * g.in_w..][..g.in_h * g.in_w];
    let (sx, x_off) = (g.strides[1] as isize, (kx * g.dilations[1]) as isize - g.pads[1] as isize);
    let mut j = 0;
    while j < row.len() {
        let (oy, ox0) = ((p0 + j) / ow, (p0 + j) % ow);
        let end = (j + ow - ox0).min(row.len());
        let seg = &mut row[j..end];
        j += seg.len();
        let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
        if iy < 0 || iy as usize >= g.in_h {
            seg.fill(pad);
            continue;
        }
        let line = &src[iy as usize * g.in_w..][..g.in_w];
        // Pixels t of the segment read ix = (ox0 + t)·sx + x_off: inside for t in lo..hi.
        let w = g.in_w as isize;
        let first = ox0 as isize * sx + x_off;
        let lo = if first >= 0 { 0 } else { ((-first + sx - 1) / sx) as usize }.min(seg.len());
        let hi = if first >= w { 0 } else { ((w - 1 - first) / sx + 1) as usize }.clamp(lo, seg.len());
        seg[..lo].fill(pad);
        seg[hi..].fill(pad);
        if sx == 1 {
            let start = (first + lo as isize) as usize;
            seg[lo..hi].copy_from_slice(&line[start..start + hi - lo]);
        } else {
            for (t, b) in seg[lo..hi].iter_mut().enumerate() {
                *b = line[(first + (lo + t) as isize * sx) as usize];
            }
        }
    }
}

/// [`conv2d`] when every output channel reads one input channel (depthwise, C_in = group):
/// per output plane, each tap adds its weight times the shifted zero-point-corrected input
/// rows (a pre-padded i16 copy of the input plane, padding 0 = the zero point).
fn conv2d_channelwise(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry) -> Vec<i32> {
    let [oh, ow] = g.out_hw();
    let [kh, kw] = g.kernel;
    let mg = g.out_channels / g.group;
    let (ph, pw) = (g.in_h + g.pads[0] + g.pads[2], g.in_w + g.pads[1] + g.pads[3]);
    // Each padded row holds its columns by phase (column mod the stride), so that every
    // tap reads contiguous values at any stride.
    let phase_len = pw.div_ceil(g.strides[1].max(1));
    let row_len = phase_len * g.strides[1].max(1);
    // SAFETY: every output row is set to the bias before the taps add to it.
    let mut out = unsafe { unfilled_i32(g.batch * g.out_channels * oh * ow) };
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(oh * ow).enumerate().for_each_init(
        // COLS slack values past the last row: a row's last register block reads beyond the
        // row (sums of those lanes are dropped).
        || (vec![0i16; ph * row_len + COLS], usize::MAX),
        |(padded, held), (plane, acc)| {
            let (n, oc) = (plane / g.out_channels, plane % g.out_channels);
            let input_plane = n * g.in_channels + oc / mg;
            // Output channels of one input channel are neighbours: the copy is reused.
            let fresh = *held != input_plane;
            *held = input_plane;
            let src = &x[input_plane * g.in_h * g.in_w..][..g.in_h * g.in_w];
            let plane = ChannelPlane {
                g,
                x_offset,
                ow,
                phase_len,
                row_len,
                taps: &w[oc * kh * kw..][..kh * kw],
                bias: bias.get(oc).copied().unwrap_or(0),
            };
            plane.run(fresh.then_some(src), padded, acc);
        },
    );
    out
}

/// Output columns per register block of [`ChannelPlane`]: two 512-bit vectors of sums.
const COLS: usize = 32;

/// One output plane of [`conv2d_channelwise`].
struct ChannelPlane<'a> {
    g: &'a ConvGeometry,
    x_offset: i32,
    ow: usize,
    /// Padded columns per phase, and per row (phases × stride).
    phase_len: usize,
    row_len: usize,
    taps: &'a [i8],
    bias: i32,
}

impl ChannelPlane<'_> {
    /// Fills `padded` (zero-point-shifted i16 input plane with zero pads, each row by phase)
    /// from `src` when given, then every output row of `acc`, [`COLS`] columns at a time.
    /// Compiled for AVX-512 where the CPU has it; elsewhere the compiler's vectors.
    fn run(&self, src: Option<&[i8]>, padded: &mut [i16], acc: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bw") {
            #[target_feature(enable = "avx512f,avx512bw")]
            fn wide(p: &ChannelPlane, src: Option<&[i8]>, padded: &mut [i16], acc: &mut [i32]) {
                p.compute(src, padded, acc)
            }
            // SAFETY: the CPU has the features `wide` is compiled for.
            return unsafe { wide(self, src, padded, acc) };
        }
        self.compute(src, padded, acc)
    }

    #[inline(always)]
    fn compute(&self, src: Option<&[i8]>, padded: &mut [i16], acc: &mut [i32]) {
        let g = self.g;
        let (row_len, phase_len, ow) = (self.row_len, self.phase_len, self.ow);
        let stride = g.strides[1].max(1);
        if let Some(src) = src {
            let (top, rest) = padded.split_at_mut(g.pads[0] * row_len);
            top.fill(0);
            let (interior, bottom) = rest.split_at_mut(g.in_h * row_len);
            bottom.fill(0);
            for (dst, row) in interior.chunks_exact_mut(row_len).zip(src.chunks_exact(g.in_w)) {
                // Stride 1 has one phase: a plain contiguous copy, which vectorizes.
                if stride == 1 {
                    let (left, rest) = dst.split_at_mut(g.pads[1]);
                    left.fill(0);
                    let (inner, right) = rest.split_at_mut(g.in_w);
                    right.fill(0);
                    for (d, &q) in inner.iter_mut().zip(row) {
                        *d = (q as i32 - self.x_offset) as i16;
                    }
                    continue;
                }
                for (phase, part) in dst.chunks_exact_mut(phase_len).enumerate() {
                    // Padded column i·stride + phase is input column that minus the pad: inside
                    // the input for first ≤ i < end, zero padding around.
                    let first = g.pads[1].saturating_sub(phase).div_ceil(stride).min(phase_len);
                    let end = (g.in_w + g.pads[1]).saturating_sub(phase).div_ceil(stride).clamp(first, phase_len);
                    part[..first].fill(0);
                    part[end..].fill(0);
                    if end > first {
                        let src = row[first * stride + phase - g.pads[1]..].iter().step_by(stride);
                        for (d, &q) in part[first..end].iter_mut().zip(src) {
                            *d = (q as i32 - self.x_offset) as i16;
                        }
                    }
                }
            }
        }
        let [kh, kw] = g.kernel;
        for (oy, out_row) in acc.chunks_exact_mut(ow).enumerate() {
            // Blocks of COLS columns keep their sums in registers across all taps. A product
            // fits in i16 (|w| ≤ 128, |q − offset| ≤ 255: at most 32640), so it is one 16-bit
            // multiply, widened for the sum. The last block of a row may read past it (into
            // the next row or the slack: values of the same bounds) and keeps only its columns.
            let row0 = oy * g.strides[0] * row_len;
            for x0 in (0..ow).step_by(COLS) {
                let mut sums = [self.bias; COLS];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = self.taps[ky * kw + kx] as i16;
                        if wv == 0 {
                            continue;
                        }
                        // Output column ox reads padded column ox·stride + c0: phase c0 mod
                        // stride, position ox + c0 / stride in it.
                        let c0 = kx * g.dilations[1];
                        let start = row0 + ky * g.dilations[0] * row_len + (c0 % stride) * phase_len + c0 / stride + x0;
                        let values: &[i16; COLS] = padded[start..][..COLS].try_into().unwrap();
                        for (s, &v) in sums.iter_mut().zip(values) {
                            *s += wv.wrapping_mul(v) as i32;
                        }
                    }
                }
                let n = COLS.min(ow - x0);
                out_row[x0..x0 + n].copy_from_slice(&sums[..n]);
            }
        }
    }
}

/// The portable [`conv2d`]: i16 im2col rows times each output channel's weights.
fn conv2d_portable(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry) -> Vec<i32> {
    let [oh, ow] = g.out_hw();
    let [kh, kw] = g.kernel;
    let cg = g.in_channels / g.group;
    let mg = g.out_channels / g.group;
    let k = cg * kh * kw;
    let p = oh * ow;
    let mut out = vec![0i32; g.batch * g.out_channels * p];
    for n in 0..g.batch {
        for grp in 0..g.group {
            // im2col of the zero-point-corrected input: rows = (c, ky, kx), columns = pixels.
            let mut col = vec![0i16; k * p];
            col.par_chunks_mut(p).enumerate().for_each(|(row, dst)| {
                let c = grp * cg + row / (kh * kw);
                let (ky, kx) = ((row / kw) % kh, row % kw);
                let plane = &x[(n * g.in_channels + c) * g.in_h * g.in_w..][..g.in_h * g.in_w];
                for oy in 0..oh {
                    let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                    for ox in 0..ow {
                        let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                        let inside = iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w;
                        dst[oy * ow + ox] = if inside { (plane[iy as usize * g.in_w + ix as usize] as i32 - x_offset) as i16 } else { 0 };
                    }
                }
            });
            let out_n = &mut out[n * g.out_channels * p..][..g.out_channels * p];
            out_n[grp * mg * p..][..mg * p].par_chunks_mut(p).enumerate().for_each(|(mi, acc)| {
                let m = grp * mg + mi;
                acc.fill(bias.get(m).copied().unwrap_or(0));
                let weights = &w[m * k..][..k];
                for (row, &wv) in weights.iter().enumerate() {
                    if wv == 0 {
                        continue;
                    }
                    let wv = wv as i32;
                    for (a, &c) in acc.iter_mut().zip(&col[row * p..][..p]) {
                        *a += wv * c as i32;
                    }
                }
            });
        }
    }
    out
}

/// Geometry of a 2-D transposed convolution (NCHW input, weight C_in × C_out/group × kh × kw).
#[derive(Debug, Clone)]
pub struct TransposeGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_hw: [usize; 2],
    pub out_channels: usize,
    pub out_hw: [usize; 2],
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Rows / columns cropped from the start of the full output; negative when
    /// `output_shape` asks for more than the natural size.
    pub pad_begin: [isize; 2],
    pub group: usize,
}

/// int8 transposed convolution with exact int32 accumulation: every input pixel scatters
/// (q − offset)·w into the kernel-sized output window it spreads to; windows falling outside
/// the (cropped) output are dropped. `bias`: C_out values or empty. Returns N×C_out×oh×ow.
pub fn conv_transpose2d(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &TransposeGeometry) -> Vec<i32> {
    conv_transpose2d_packed(x, x_offset, w, bias, g, &PackedConv::default())
}

/// [`conv_transpose2d`] with the weights' packing kept in `packed` (as [`conv2d_packed`]).
pub fn conv_transpose2d_packed(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &TransposeGeometry, packed: &PackedConv) -> Vec<i32> {
    match DotIsa::detect() {
        Some(isa) if g.out_channels / g.group * g.kernel[0] * g.kernel[1] >= DOT_MIN_CHANNELS && (-128..=127).contains(&x_offset) => {
            conv_transpose2d_dot(isa, x, x_offset, w, bias, g, packed)
        }
        _ => conv_transpose2d_portable(x, x_offset, w, bias, g),
    }
}

/// [`conv_transpose2d`] on the dot-product blocks: per batch item and group, every
/// (output channel, tap) row of the weights times the input pixels (a product over the
/// input channels), then each output plane gathers its taps' rows at their shifted places.
fn conv_transpose2d_dot(
    isa: DotIsa,
    x: &[i8],
    x_offset: i32,
    w: &[i8],
    bias: &[i32],
    g: &TransposeGeometry,
    packed: &PackedConv,
) -> Vec<i32> {
    let ([ih, iw], [oh, ow], [kh, kw]) = (g.in_hw, g.out_hw, g.kernel);
    let (cig, cog, taps, pixels) = (g.in_channels / g.group, g.out_channels / g.group, kh * kw, ih * iw);
    let rows = cog * taps;
    let mut out = vec![0i32; g.batch * g.out_channels * oh * ow];
    if out.is_empty() {
        return out;
    }
    let stored = isa.encode_all(x);
    let groups = packed.get(Layout::Transposed, || {
        (0..g.group)
            .map(|grp| {
                // w is C_in × C_out/group × kh × kw: row r = (co, ky, kx) of input channel ci
                // sits at (ci·cog)·taps + r.
                let mut rows_by_ci = vec![0i8; rows * cig];
                for ci in 0..cig {
                    for r in 0..rows {
                        rows_by_ci[r * cig + ci] = w[(grp * cig + ci) * rows + r];
                    }
                }
                let packed = PackedWeights::new(&rows_by_ci, rows, cig);
                // The bias is added per output pixel after the taps are gathered.
                let base = packed.bases(isa, x_offset, &[]);
                (packed, base)
            })
            .collect()
    });
    let blocks = pixels.div_ceil(BLOCK);
    let mut cols = vec![0i32; rows * pixels];
    for n in 0..g.batch {
        for (grp, (weights, base)) in groups.iter().enumerate() {
            let planes = &stored[(n * g.in_channels + grp * cig) * pixels..][..cig * pixels];
            let dst = SendPtr(cols.as_mut_ptr());
            (0..blocks).into_par_iter().for_each_init(
                || vec![0u8; cig.div_ceil(4) * 4 * BLOCK],
                |buf, b| {
                    let (p0, np) = (b * BLOCK, (pixels - b * BLOCK).min(BLOCK));
                    pack_block(buf, cig, np, |r, row| row.copy_from_slice(&planes[r * pixels + p0..][..np]));
                    // SAFETY: block b writes pixels p0..p0+np of every row of `cols`
                    // (rows × pixels), which no other block writes.
                    unsafe { dot::block(isa, buf, np, weights, base, dst.get().add(p0), pixels) };
                },
            );
            let out_g = &mut out[(n * g.out_channels + grp * cog) * oh * ow..][..cog * oh * ow];
            out_g.par_chunks_mut(oh * ow).enumerate().for_each(|(co, acc)| {
                acc.fill(bias.get(grp * cog + co).copied().unwrap_or(0));
                for ky in 0..kh {
                    let y_off = (ky * g.dilations[0]) as isize - g.pad_begin[0];
                    let (y0, y1) = valid_range(ih, g.strides[0], y_off, oh);
                    for kx in 0..kw {
                        let x_off = (kx * g.dilations[1]) as isize - g.pad_begin[1];
                        let (x0, x1) = valid_range(iw, g.strides[1], x_off, ow);
                        let col = &cols[(co * taps + ky * kw + kx) * pixels..][..pixels];
                        for iy in y0..y1 {
                            let oy = ((iy * g.strides[0]) as isize + y_off) as usize;
                            let row = &mut acc[oy * ow..][..ow];
                            for (ix, &v) in col[iy * iw..][..iw].iter().enumerate().take(x1).skip(x0) {
                                row[((ix * g.strides[1]) as isize + x_off) as usize] += v;
                            }
                        }
                    }
                }
            });
        }
    }
    out
}

/// The portable [`conv_transpose2d`]: each input pixel scatters into its output window.
fn conv_transpose2d_portable(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &TransposeGeometry) -> Vec<i32> {
    let ([ih, iw], [oh, ow], [kh, kw]) = (g.in_hw, g.out_hw, g.kernel);
    let (cig, cog) = (g.in_channels / g.group, g.out_channels / g.group);
    let mut out = vec![0i32; g.batch * g.out_channels * oh * ow];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(plane, acc)| {
        let (n, oc) = (plane / g.out_channels, plane % g.out_channels);
        let (grp, ocl) = (oc / cog, oc % cog);
        acc.fill(bias.get(oc).copied().unwrap_or(0));
        for ci in grp * cig..(grp + 1) * cig {
            let src = &x[(n * g.in_channels + ci) * ih * iw..][..ih * iw];
            let taps = &w[(ci * cog + ocl) * kh * kw..][..kh * kw];
            for ky in 0..kh {
                // Input rows iy whose output row iy·s + ky·d − pad lies inside 0..oh.
                let y_off = (ky * g.dilations[0]) as isize - g.pad_begin[0];
                let (y0, y1) = valid_range(ih, g.strides[0], y_off, oh);
                for kx in 0..kw {
                    let wv = taps[ky * kw + kx] as i32;
                    if wv == 0 {
                        continue;
                    }
                    let x_off = (kx * g.dilations[1]) as isize - g.pad_begin[1];
                    let (x0, x1) = valid_range(iw, g.strides[1], x_off, ow);
                    for iy in y0..y1 {
                        let oy = (iy * g.strides[0]) as isize + y_off;
                        let row = &mut acc[oy as usize * ow..][..ow];
                        let src_row = &src[iy * iw..][..iw];
                        for (ix, &q) in src_row.iter().enumerate().take(x1).skip(x0) {
                            let ox = ((ix * g.strides[1]) as isize + x_off) as usize;
                            row[ox] += (q as i32 - x_offset) * wv;
                        }
                    }
                }
            }
        }
    });
    out
}

/// Window sums of zero-point-corrected int8 planes (the integer AveragePool): for each of the
/// `planes` H×W planes of `x` and every output (oy, ox), Σ (q − offset) over the input rows
/// `rows[oy]` × columns `cols[ox]`. Padding is absent from the tap lists: it adds 0 (= 0.0).
pub fn window_sums(x: &[i8], offset: i32, planes: usize, in_hw: [usize; 2], rows: &[Vec<usize>], cols: &[Vec<usize>]) -> Vec<i32> {
    let plane_in = in_hw[0] * in_hw[1];
    let plane_out = rows.len() * cols.len();
    if planes == 0 || plane_out == 0 {
        return Vec::new();
    }
    let mut out = vec![0i32; planes * plane_out];
    out.par_chunks_mut(plane_out).enumerate().for_each(|(p, dst)| {
        let src = &x[p * plane_in..][..plane_in];
        for (oy, taps_y) in rows.iter().enumerate() {
            for (ox, taps_x) in cols.iter().enumerate() {
                let mut sum = 0i32;
                for &iy in taps_y {
                    let row = &src[iy * in_hw[1]..][..in_hw[1]];
                    sum += taps_x.iter().map(|&ix| row[ix] as i32 - offset).sum::<i32>();
                }
                dst[oy * cols.len() + ox] = sum;
            }
        }
    });
    out
}

/// An int8 MatMul / Gemm weight (K×N, row-major) with, where the CPU has dot-product
/// instructions, its columns packed once as [`dot`] weight rows (in chunks of
/// [`MATMUL_ROWS`], so that a product with few activation rows still splits between threads).
#[derive(Debug)]
pub struct MatMulWeights {
    pub k: usize,
    pub n: usize,
    raw: Vec<i8>,
    dot: Option<(DotIsa, Vec<PackedWeights>)>,
}

/// Weight columns per packed chunk of [`MatMulWeights`].
const MATMUL_ROWS: usize = 256;

impl MatMulWeights {
    pub fn new(raw: Vec<i8>, k: usize, n: usize) -> MatMulWeights {
        let dot = DotIsa::detect().filter(|_| k > 0 && n > 0).map(|isa| {
            let chunks = (0..n)
                .step_by(MATMUL_ROWS)
                .map(|j0| {
                    let cols = (n - j0).min(MATMUL_ROWS);
                    let rows: Vec<i8> =
                        (j0..j0 + cols).flat_map(|j| (0..k).map(move |kk| (kk, j))).map(|(kk, j)| raw[kk * n + j]).collect();
                    PackedWeights::new(&rows, cols, k)
                })
                .collect();
            (isa, chunks)
        });
        MatMulWeights { k, n, raw, dot }
    }
}

/// [`matmul`] with prepared weights: on the dot-product blocks when the CPU has them (the M
/// activation rows are the blocks' pixels, the N weight columns their rows; the product is
/// computed N×M and transposed), else the portable loop.
pub fn matmul_prepared(a: &[i8], a_offset: i32, w: &MatMulWeights, bias: &[i32], m: usize) -> Vec<i32> {
    let (k, n) = (w.k, w.n);
    let Some((isa, chunks)) = w.dot.as_ref().filter(|_| m > 0 && (-128..=127).contains(&a_offset)) else {
        return matmul(a, a_offset, &w.raw, bias, m, k, n);
    };
    let stored = isa.encode_all(a);
    let bases: Vec<Vec<i32>> =
        chunks.iter().enumerate().map(|(c, p)| p.bases(*isa, a_offset, bias.get(c * MATMUL_ROWS..).unwrap_or(&[]))).collect();
    let blocks = m.div_ceil(BLOCK);
    let mut transposed = vec![0i32; n * m];
    let dst = SendPtr(transposed.as_mut_ptr());
    (0..chunks.len() * blocks).into_par_iter().for_each_init(
        || vec![0u8; k.div_ceil(4) * 4 * BLOCK],
        |buf, job| {
            let (c, b) = (job / blocks, job % blocks);
            let (i0, np) = (b * BLOCK, (m - b * BLOCK).min(BLOCK));
            pack_block(buf, k, np, |r, row| {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = stored[(i0 + j) * k + r];
                }
            });
            // SAFETY: job (c, b) writes columns c·MATMUL_ROWS.. (its chunk's rows) at
            // activation rows i0..i0+np of the N×M buffer, which no other job writes.
            unsafe { dot::block(*isa, buf, np, &chunks[c], &bases[c], dst.get().add(c * MATMUL_ROWS * m + i0), m) };
        },
    );
    let mut out = vec![0i32; m * n];
    out.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = transposed[j * m + i];
        }
    });
    out
}

/// int8 matrix product with exact int32 accumulation: `a` is M×K activations (zero point
/// `a_offset`), `b` is K×N weights, `bias` N values or empty. Returns M×N.
pub fn matmul(a: &[i8], a_offset: i32, b: &[i8], bias: &[i32], m: usize, k: usize, n: usize) -> Vec<i32> {
    let mut out = vec![0i32; m * n];
    out.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for (j, r) in row.iter_mut().enumerate() {
            *r = bias.get(j).copied().unwrap_or(0);
        }
        for kk in 0..k {
            let av = a[i * k + kk] as i32 - a_offset;
            if av == 0 {
                continue;
            }
            for (r, &bv) in row.iter_mut().zip(&b[kk * n..][..n]) {
                *r += av * bv as i32;
            }
        }
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Direct definition: every output is Σ over the window of (q − offset)·w, pads = 0.
    fn reference(x: &[i8], off: i32, w: &[i8], bias: &[i32], g: &ConvGeometry) -> Vec<i32> {
        let [oh, ow] = g.out_hw();
        let cg = g.in_channels / g.group;
        let mg = g.out_channels / g.group;
        let mut out = Vec::new();
        for n in 0..g.batch {
            for m in 0..g.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias.get(m).copied().unwrap_or(0);
                        for ci in 0..cg {
                            let c = (m / mg) * cg + ci;
                            for ky in 0..g.kernel[0] {
                                for kx in 0..g.kernel[1] {
                                    let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                                    let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= g.in_h || ix as usize >= g.in_w {
                                        continue;
                                    }
                                    let q = x[((n * g.in_channels + c) * g.in_h + iy as usize) * g.in_w + ix as usize] as i32;
                                    let wv = w[((m * cg + ci) * g.kernel[0] + ky) * g.kernel[1] + kx] as i32;
                                    acc += (q - off) * wv;
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    pub(crate) fn pseudo_random(n: usize, seed: u32) -> Vec<i8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (s >> 16) as i8
            })
            .collect()
    }

    #[test]
    fn conv_matches_the_direct_definition() {
        for (group, strides, dilations, pads) in
            [(1, [1, 1], [1, 1], [1, 1, 1, 1]), (2, [2, 1], [1, 2], [0, 2, 1, 0]), (4, [1, 1], [1, 1], [1, 1, 1, 1])]
        {
            let g = ConvGeometry {
                batch: 2,
                in_channels: 4,
                in_h: 7,
                in_w: 6,
                out_channels: 4,
                kernel: [3, 3],
                strides,
                dilations,
                pads,
                group,
            };
            let x = pseudo_random(2 * 4 * 7 * 6, 1);
            let w = pseudo_random(4 * (4 / group) * 9, 2);
            let bias = vec![100, -7, 0, 123_456];
            assert_eq!(conv2d(&x, -5, &w, &bias, &g), reference(&x, -5, &w, &bias, &g), "group {group}");
        }
    }

    #[test]
    fn packed_weights_are_reused_across_runs() {
        // One cache per conv, as an op keeps it: later runs (other inputs, other batch sizes)
        // read the packing of the first and give the definition's numbers. The stride-2 conv
        // also runs with the stride-1 conv's cache (the other layout: packed afresh).
        let geometry = |strides: [usize; 2], batch: usize| ConvGeometry {
            batch,
            in_channels: 8,
            in_h: 9,
            in_w: 11,
            out_channels: 16,
            kernel: [3, 3],
            strides,
            dilations: [1, 1],
            pads: [1, 1, 1, 1],
            group: 2,
        };
        let w = pseudo_random(16 * 4 * 9, 3);
        let bias: Vec<i32> = (0..16).map(|i| i * 1000 - 7000).collect();
        let direct = PackedConv::default();
        for (run, strides) in [[1, 1], [1, 1], [2, 2]].into_iter().enumerate() {
            let g = geometry(strides, 1 + run % 2);
            let x = pseudo_random(g.batch * 8 * 9 * 11, 10 + run as u32);
            assert_eq!(conv2d_packed(&x, 3, &w, &bias, &g, &direct), reference(&x, 3, &w, &bias, &g), "run {run}");
        }
        let strided = PackedConv::default();
        for run in 0..2 {
            let g = geometry([2, 2], 1);
            let x = pseudo_random(8 * 9 * 11, 20 + run);
            assert_eq!(conv2d_packed(&x, -4, &w, &bias, &g, &strided), reference(&x, -4, &w, &bias, &g), "strided run {run}");
        }
    }

    /// Depthwise convs (one input channel per group, 1 or 2 outputs each) on odd sizes with
    /// strides, dilations and asymmetric pads: the channelwise kernel against the definition.
    #[test]
    fn channelwise_convs_match_the_direct_definition() {
        for (mult, kernel, strides, dilations, pads) in [
            (1, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
            (1, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1]),
            (2, [5, 5], [2, 1], [1, 2], [2, 0, 1, 3]),
            (1, [3, 3], [1, 1], [2, 2], [0, 0, 0, 0]),
            (3, [3, 2], [1, 3], [1, 2], [1, 2, 0, 1]),
        ] {
            // 75 columns: register blocks of 32 and a remainder at every stride.
            let (c, h, w_) = (5, 37, 75);
            let g = ConvGeometry {
                batch: 2,
                in_channels: c,
                in_h: h,
                in_w: w_,
                out_channels: c * mult,
                kernel,
                strides,
                dilations,
                pads,
                group: c,
            };
            let x = pseudo_random(2 * c * h * w_, 3);
            let w = pseudo_random(c * mult * kernel[0] * kernel[1], 4);
            let bias: Vec<i32> = (0..c * mult).map(|i| i as i32 * 1000 - 2000).collect();
            for offset in [-128, 3, 127] {
                assert_eq!(conv2d(&x, offset, &w, &bias, &g), reference(&x, offset, &w, &bias, &g), "{kernel:?} {strides:?} {pads:?}");
            }
            // The largest products (−128 · (−128 − 127)): exact in the 16-bit multiply.
            let (x, w) = (vec![-128i8; x.len()], vec![-128i8; w.len()]);
            assert_eq!(conv2d(&x, 127, &w, &bias, &g), reference(&x, 127, &w, &bias, &g), "extremes, {kernel:?} {strides:?}");
        }
    }

    /// Both kernels against the definition on shapes that exercise the dot path's edges:
    /// output rows longer and shorter than a 64-pixel block, channel counts not a multiple
    /// of 4, k not a multiple of 4, strides, dilations, asymmetric pads, extreme zero points.
    #[test]
    fn dot_and_portable_convs_match_the_direct_definition() {
        let cases = [
            // (in_c, h, w, out_c, kernel, strides, dilations, pads, group, offset)
            (3, 11, 70, 9, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1, -128),
            (5, 9, 13, 6, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], 1, 127),
            // One-column kernels (the direct path writes the output itself): groups, pads.
            (8, 6, 70, 8, [3, 1], [1, 1], [1, 1], [1, 2, 1, 2], 2, 5),
            (8, 17, 9, 12, [3, 2], [2, 3], [2, 1], [2, 0, 1, 3], 2, 3),
            (2, 5, 130, 4, [1, 5], [1, 2], [1, 1], [0, 2, 0, 2], 1, 0),
            (8, 12, 20, 8, [3, 3], [1, 1], [2, 2], [2, 1, 0, 3], 2, -1),
            // Channel-wise: a depth multiplier of 2 with strides, a dilated 5×5.
            (4, 9, 11, 8, [3, 3], [2, 2], [1, 1], [1, 0, 2, 1], 4, -7),
            (6, 10, 70, 6, [5, 5], [1, 1], [2, 2], [4, 4, 4, 4], 6, 100),
        ];
        for (c, h, w, m, kernel, strides, dilations, pads, group, offset) in cases {
            let g = ConvGeometry { batch: 2, in_channels: c, in_h: h, in_w: w, out_channels: m, kernel, strides, dilations, pads, group };
            let x = pseudo_random(2 * c * h * w, 5);
            let wt = pseudo_random(m * (c / group) * kernel[0] * kernel[1], 6);
            let bias: Vec<i32> = (0..m as i32).map(|i| i * 1000 - 3000).collect();
            let want = reference(&x, offset, &wt, &bias, &g);
            assert_eq!(conv2d_portable(&x, offset, &wt, &bias, &g), want, "portable, {g:?}");
            assert_eq!(conv2d(&x, offset, &wt, &bias, &g), want, "dispatched, {g:?}");
            if let Some(isa) = DotIsa::detect() {
                assert_eq!(conv2d_dot(isa, &x, offset, &wt, &bias, &g, &PackedConv::default()), want, "{isa:?}, {g:?}");
                if g.strides == [1, 1] {
                    assert_eq!(conv2d_dot_direct(isa, &x, offset, &wt, &bias, &g, &PackedConv::default()), want, "{isa:?} direct, {g:?}");
                }
            }
        }
    }

    /// Gather form of ConvTranspose: output (oy, ox) collects every input pixel and tap with
    /// iy·s + ky·d − pad = oy (and likewise for x).
    fn transpose_reference(x: &[i8], off: i32, w: &[i8], bias: &[i32], g: &TransposeGeometry) -> Vec<i32> {
        let ([ih, iw], [oh, ow], [kh, kw]) = (g.in_hw, g.out_hw, g.kernel);
        let (cig, cog) = (g.in_channels / g.group, g.out_channels / g.group);
        let mut out = Vec::new();
        for n in 0..g.batch {
            for oc in 0..g.out_channels {
                for oy in 0..oh as isize {
                    for ox in 0..ow as isize {
                        let mut acc = bias.get(oc).copied().unwrap_or(0);
                        for ci in (oc / cog) * cig..(oc / cog + 1) * cig {
                            for (iy, ky, ix, kx) in (0..ih).flat_map(|iy| {
                                (0..kh).flat_map(move |ky| (0..iw).flat_map(move |ix| (0..kw).map(move |kx| (iy, ky, ix, kx))))
                            }) {
                                let y = (iy * g.strides[0] + ky * g.dilations[0]) as isize - g.pad_begin[0];
                                let xx = (ix * g.strides[1] + kx * g.dilations[1]) as isize - g.pad_begin[1];
                                if y == oy && xx == ox {
                                    let q = x[((n * g.in_channels + ci) * ih + iy) * iw + ix] as i32;
                                    acc += (q - off) * w[((ci * cog + oc % cog) * kh + ky) * kw + kx] as i32;
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn conv_transpose_matches_the_gather_definition() {
        // Cropped output (positive pads) and an output grown past the full size (negative).
        // The last: more input pixels than one 64-pixel block of the dot path.
        for (group, strides, dilations, pad_begin, out_hw, in_hw) in [
            (1, [2, 2], [1, 1], [1, 0], [8, 9], [4, 5]),
            (2, [1, 2], [2, 1], [-1, 2], [10, 8], [4, 5]),
            (4, [3, 1], [1, 1], [0, 0], [14, 7], [4, 5]),
            (1, [2, 2], [1, 1], [0, 1], [19, 30], [9, 15]),
        ] {
            let g = TransposeGeometry {
                batch: 2,
                in_channels: 4,
                in_hw,
                out_channels: 4,
                out_hw,
                kernel: [3, 2],
                strides,
                dilations,
                pad_begin,
                group,
            };
            let x = pseudo_random(2 * 4 * in_hw[0] * in_hw[1], 3);
            let w = pseudo_random(4 * (4 / group) * 6, 4);
            let bias = vec![7, -100_000, 0, 55];
            let want = transpose_reference(&x, 9, &w, &bias, &g);
            assert_eq!(conv_transpose2d_portable(&x, 9, &w, &bias, &g), want, "portable, group {group}");
            assert_eq!(conv_transpose2d(&x, 9, &w, &bias, &g), want, "dispatched, group {group}");
            if let Some(isa) = DotIsa::detect() {
                assert_eq!(conv_transpose2d_dot(isa, &x, 9, &w, &bias, &g, &PackedConv::default()), want, "{isa:?}, group {group}");
            }
            // A second run on other inputs reads the first run's packed weights.
            let packed = PackedConv::default();
            let x2 = pseudo_random(x.len(), 5);
            assert_eq!(conv_transpose2d_packed(&x, 9, &w, &bias, &g, &packed), want, "first run, group {group}");
            let want2 = transpose_reference(&x2, 9, &w, &bias, &g);
            assert_eq!(conv_transpose2d_packed(&x2, 9, &w, &bias, &g, &packed), want2, "second run, group {group}");
        }
    }

    #[test]
    fn window_sums_skip_padding() {
        // 2×3 plane, offset 1 → values [0 1 2; 3 4 5]; a window over rows {0,1} × cols {1,2}
        // and one over row {1} × col {0} (the rest of it padding).
        let x = [1, 2, 3, 4, 5, 6];
        let sums = window_sums(&x, 1, 1, [2, 3], &[vec![0, 1], vec![1]], &[vec![1, 2], vec![0]]);
        assert_eq!(sums, vec![12, 3, 9, 3]);
    }

    /// Prepared weights (dot-product blocks where the CPU has them) against the portable
    /// loop: activation rows over two blocks, weight columns over two packed chunks, k not a
    /// multiple of 4, extreme zero points.
    #[test]
    fn prepared_matmul_equals_the_portable_one() {
        for (m, k, n, offset) in [(70, 37, 300, -128), (1, 4, 3, 127), (64, 120, 256, 0), (5, 1, 9, 3)] {
            let a = pseudo_random(m * k, 7);
            let b = pseudo_random(k * n, 8);
            let bias: Vec<i32> = (0..n as i32).map(|j| 77 * j - 5000).collect();
            let w = MatMulWeights::new(b.clone(), k, n);
            assert_eq!(matmul_prepared(&a, offset, &w, &bias, m), matmul(&a, offset, &b, &bias, m, k, n), "{m}×{k}×{n}");
        }
    }

    #[test]
    fn matmul_subtracts_the_zero_point() {
        // a = [[3, 1]], offset 1 → [[2, 0]]; b = [[1, 2], [3, 4]]; bias [10, 20]
        assert_eq!(matmul(&[3, 1], 1, &[1, 2, 3, 4], &[10, 20], 1, 2, 2), vec![12, 24]);
    }
}

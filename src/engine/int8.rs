//! Exact integer kernels for Ascend deploy models: int8 activations (with the zero point
//! `offset_d` of the AscendQuant that produced them) × int8 weights + int32 bias → int32
//! accumulators, as the NPU's cube unit computes them:
//! `acc = Σ (q_x − offset_d) · w_q + b_q`. Padding represents 0.0, i.e. `q = offset_d`.

use rayon::prelude::*;

use super::kernels::conv::valid_range;

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
/// `bias`: M values or empty. Returns N×M×oh×ow accumulators.
pub fn conv2d(x: &[i8], x_offset: i32, w: &[i8], bias: &[i32], g: &ConvGeometry) -> Vec<i32> {
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
mod tests {
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

    fn pseudo_random(n: usize, seed: u32) -> Vec<i8> {
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
        for (group, strides, dilations, pad_begin, out_hw) in
            [(1, [2, 2], [1, 1], [1, 0], [8, 9]), (2, [1, 2], [2, 1], [-1, 2], [10, 8]), (4, [3, 1], [1, 1], [0, 0], [14, 7])]
        {
            let g = TransposeGeometry {
                batch: 2,
                in_channels: 4,
                in_hw: [4, 5],
                out_channels: 4,
                out_hw,
                kernel: [3, 2],
                strides,
                dilations,
                pad_begin,
                group,
            };
            let x = pseudo_random(2 * 4 * 20, 3);
            let w = pseudo_random(4 * (4 / group) * 6, 4);
            let bias = vec![7, -100_000, 0, 55];
            assert_eq!(conv_transpose2d(&x, 9, &w, &bias, &g), transpose_reference(&x, 9, &w, &bias, &g), "group {group}");
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

    #[test]
    fn matmul_subtracts_the_zero_point() {
        // a = [[3, 1]], offset 1 → [[2, 0]]; b = [[1, 2], [3, 4]]; bias [10, 20]
        assert_eq!(matmul(&[3, 1], 1, &[1, 2, 3, 4], &[10, 20], 1, 2, 2), vec![12, 24]);
    }
}

//! int8 × int8 → int32 products on the CPU's dot-product instructions: AVX-512 VNNI
//! (`vpdpbusd`: unsigned × signed bytes, four products summed into each 32-bit lane) on
//! x86-64, the Arm dot-product extension (`sdot`: signed × signed) on aarch64. Integer sums
//! are exact, so any order gives the scalar definition's result bit for bit.
//!
//! Operands of one block: the activations of up to [`BLOCK`] pixels × K values, where each
//! k-quad (4 consecutive k) of the block's pixels is `BLOCK × 4` bytes, pixel-major (one
//! 64-byte vector holds 16 pixels × 4 k), at a per-quad offset from the block's start: packed
//! blocks ([`pack_block`]) put quad q at `q · 4 · BLOCK`; a conv over channel-quad-interleaved
//! input planes reads each (tap, channel quad) at its shifted place in the planes. The
//! weights are `[rows][K4]` bytes, K4 = K rounded up to 4 with zero weights; each weight
//! quad is broadcast to every lane.
//!
//! `vpdpbusd` reads the activations as unsigned: they are stored as `q + 128` (`q ^ 0x80`)
//! and the sums corrected by `128·Σw` ([`DotIsa::shift`]); `sdot` takes `q` as it is.

/// Pixels of one packed activation block.
pub const BLOCK: usize = 64;

/// The dot-product instructions a kernel runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotIsa {
    /// x86-64 AVX-512 VNNI (with AVX-512 BW for the byte loads).
    Avx512Vnni,
    /// aarch64 SDOT (FEAT_DotProd).
    ArmDot,
}

impl DotIsa {
    /// What this CPU has; None: the caller's portable kernels.
    pub fn detect() -> Option<DotIsa> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
        {
            return Some(DotIsa::Avx512Vnni);
        }
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            return Some(DotIsa::ArmDot);
        }
        None
    }

    /// The byte stored for the int8 activation `q`.
    #[inline]
    pub fn encode(self, q: i8) -> u8 {
        match self {
            DotIsa::Avx512Vnni => (q as u8) ^ 0x80,
            DotIsa::ArmDot => q as u8,
        }
    }

    /// Every value of `x` stored (two threads on big inputs).
    pub fn encode_all(self, x: &[i8]) -> Vec<u8> {
        use rayon::prelude::*;
        x.par_iter().with_min_len(1 << 14).map(|&q| self.encode(q)).collect()
    }

    /// The stored byte's value minus `q`: a block's sums exceed `Σ q·w` by `shift·Σw`.
    pub fn shift(self) -> i32 {
        match self {
            DotIsa::Avx512Vnni => 128,
            DotIsa::ArmDot => 0,
        }
    }
}

/// Weight rows packed for [`block`]: `[rows][k4]`, zero past `k`, with each row's sum.
#[derive(Debug, Clone)]
pub struct PackedWeights {
    pub rows: usize,
    pub k4: usize,
    bytes: Vec<i8>,
    /// Σ_k w[row][k].
    pub sums: Vec<i32>,
    /// Where k-quad q of a [`pack_block`]ed block starts (q · 4 · BLOCK), for [`block`].
    packed_offsets: Vec<usize>,
}

impl PackedWeights {
    /// `w`: `rows` × `k` row-major.
    pub fn new(w: &[i8], rows: usize, k: usize) -> PackedWeights {
        let k4 = k.div_ceil(4) * 4;
        let mut bytes = vec![0i8; rows * k4];
        for (dst, src) in bytes.chunks_exact_mut(k4.max(1)).zip(w.chunks_exact(k.max(1))) {
            dst[..k].copy_from_slice(src);
        }
        let sums = w.chunks_exact(k.max(1)).take(rows).map(|r| r.iter().map(|&v| v as i32).sum()).collect();
        let packed_offsets = (0..k4 / 4).map(|q| q * 4 * BLOCK).collect();
        PackedWeights { rows, k4, bytes, sums, packed_offsets }
    }

    /// What each row's sums start from so that the block gives `bias[row] + Σ (q − offset)·w`:
    /// `Σ (stored − shift − offset)·w = Σ (q − offset)·w`, so the bias minus
    /// (shift + offset)·Σw (`bias` may be shorter or empty: 0 for the missing rows).
    pub fn bases(&self, isa: DotIsa, offset: i32, bias: &[i32]) -> Vec<i32> {
        self.sums.iter().enumerate().map(|(r, &s)| bias.get(r).copied().unwrap_or(0) - (isa.shift() + offset) * s).collect()
    }
}

/// Packs `k` activation rows of `np ≤ BLOCK` pixels into `dst` (`k4 · BLOCK` bytes, the
/// layout of the module doc): `row(r, buf)` fills `buf[..np]` with row r's stored bytes.
/// Rows past `k` and pixels past `np` are zero (their weights are zero or their sums unread).
pub fn pack_block(dst: &mut [u8], k: usize, np: usize, mut row: impl FnMut(usize, &mut [u8])) {
    let quads = k.div_ceil(4);
    debug_assert!(np <= BLOCK && dst.len() >= quads * 4 * BLOCK);
    let mut rows = [[0u8; BLOCK]; 4];
    for q in 0..quads {
        for (t, r) in rows.iter_mut().enumerate() {
            if 4 * q + t < k {
                row(4 * q + t, &mut r[..np]);
                r[np..].fill(0);
            } else {
                r.fill(0);
            }
        }
        // Four rows of bytes → one little-endian u32 per pixel (vectorizes to zero-extends,
        // shifts and ors).
        let out = &mut dst[q * 4 * BLOCK..][..4 * BLOCK];
        for (j, px) in out.chunks_exact_mut(4).enumerate() {
            let v = rows[0][j] as u32 | (rows[1][j] as u32) << 8 | (rows[2][j] as u32) << 16 | (rows[3][j] as u32) << 24;
            px.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// One packed activation block times every weight row: for row m and pixel j < np,
/// `dst[m·stride + j] = base[m] + Σ_k w[m][k]·act[k][j]` (stored bytes, see [`DotIsa::shift`]).
///
/// # Safety
/// `isa` is what [`DotIsa::detect`] returned on this CPU; `act` holds `w.k4 · BLOCK` bytes;
/// `dst` is valid for writes at `m·stride + j` for every m < w.rows, j < np, and nothing
/// else reads or writes those elements meanwhile.
pub unsafe fn block(isa: DotIsa, act: &[u8], np: usize, w: &PackedWeights, base: &[i32], dst: *mut i32, stride: usize) {
    debug_assert!(act.len() >= w.k4 * BLOCK);
    unsafe { block_at(isa, act.as_ptr(), &w.packed_offsets, np, w, base, dst, stride) }
}

/// [`block`] with k-quad q of the block at `act + quad_offsets[q]`.
///
/// # Safety
/// As [`block`]; `act + quad_offsets[q]` is readable for `4 · BLOCK` bytes for every
/// q < w.k4 / 4 (bytes of pixels past `np` are read and their sums dropped).
#[allow(clippy::too_many_arguments)]
pub unsafe fn block_at(
    isa: DotIsa,
    act: *const u8,
    quad_offsets: &[usize],
    np: usize,
    w: &PackedWeights,
    base: &[i32],
    dst: *mut i32,
    stride: usize,
) {
    unsafe {
        debug_assert!(quad_offsets.len() == w.k4 / 4 && base.len() >= w.rows && np <= BLOCK);
        let mut m = 0;
        while m < w.rows {
            let mr = (w.rows - m).min(4);
            let args = Tile {
                act,
                offsets: quad_offsets.as_ptr(),
                quads: w.k4 / 4,
                w: w.bytes[m * w.k4..].as_ptr(),
                k4: w.k4,
                dst: dst.add(m * stride),
                stride,
                np,
            };
            let base = &base[m..m + mr];
            match isa {
                #[cfg(target_arch = "x86_64")]
                DotIsa::Avx512Vnni => match mr {
                    4 => vnni::tile::<4>(&args, base),
                    3 => vnni::tile::<3>(&args, base),
                    2 => vnni::tile::<2>(&args, base),
                    _ => vnni::tile::<1>(&args, base),
                },
                #[cfg(target_arch = "aarch64")]
                DotIsa::ArmDot => match mr {
                    4 => sdot::tile::<4>(&args, base),
                    3 => sdot::tile::<3>(&args, base),
                    2 => sdot::tile::<2>(&args, base),
                    _ => sdot::tile::<1>(&args, base),
                },
                #[allow(unreachable_patterns)]
                _ => unreachable!("DotIsa::detect never returns an ISA of another architecture"),
            }
            m += mr;
        }
    }
}

/// A tile: up to 4 weight rows × one activation block.
struct Tile {
    act: *const u8,
    /// Per k-quad, its bytes' offset from `act`.
    offsets: *const usize,
    quads: usize,
    /// The tile's first weight row.
    w: *const i8,
    k4: usize,
    dst: *mut i32,
    stride: usize,
    np: usize,
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::Tile;

    /// MR rows × 64 pixels in 4·MR accumulators.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile<const MR: usize>(t: &Tile, base: &[i32]) {
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 4]; MR];
            for q in 0..t.quads {
                let a = t.act.add(*t.offsets.add(q));
                let av = [
                    _mm512_loadu_si512(a as *const _),
                    _mm512_loadu_si512(a.add(64) as *const _),
                    _mm512_loadu_si512(a.add(128) as *const _),
                    _mm512_loadu_si512(a.add(192) as *const _),
                ];
                for (i, row) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_epi32((t.w.add(i * t.k4 + 4 * q) as *const i32).read_unaligned());
                    for (s, v) in row.iter_mut().zip(&av) {
                        *s = _mm512_dpbusd_epi32(*s, *v, b);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                let c = _mm512_set1_epi32(base[i]);
                for (j, s) in row.iter().enumerate() {
                    let p = 16 * j;
                    if p >= t.np {
                        break;
                    }
                    let mask: __mmask16 = if t.np - p >= 16 { 0xffff } else { (1u16 << (t.np - p)) - 1 };
                    _mm512_mask_storeu_epi32(t.dst.add(i * t.stride + p) as *mut _, mask, _mm512_add_epi32(*s, c));
                }
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod sdot {
    use std::arch::aarch64::*;
    use std::arch::asm;

    use super::{BLOCK, Tile};

    /// acc += four-byte dot products of `a` and `b` per 32-bit lane (SDOT; the intrinsic is
    /// not stable in this toolchain).
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        unsafe {
            let mut acc = acc;
            asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b,
                 options(pure, nomem, nostack));
            acc
        }
    }

    /// MR rows × 64 pixels, 16 pixels (4 vectors) at a time.
    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn tile<const MR: usize>(t: &Tile, base: &[i32]) {
        unsafe {
            for part in 0..BLOCK / 16 {
                let p0 = 16 * part;
                if p0 >= t.np {
                    break;
                }
                let mut acc = [[vdupq_n_s32(0); 4]; MR];
                for q in 0..t.quads {
                    let a = t.act.add(*t.offsets.add(q) + 4 * p0) as *const i8;
                    let av = [vld1q_s8(a), vld1q_s8(a.add(16)), vld1q_s8(a.add(32)), vld1q_s8(a.add(48))];
                    for (i, row) in acc.iter_mut().enumerate() {
                        let b = vreinterpretq_s8_s32(vdupq_n_s32((t.w.add(i * t.k4 + 4 * q) as *const i32).read_unaligned()));
                        for (s, v) in row.iter_mut().zip(&av) {
                            *s = dot(*s, *v, b);
                        }
                    }
                }
                for (i, row) in acc.iter().enumerate() {
                    let c = vdupq_n_s32(base[i]);
                    let mut sums = [0i32; 16];
                    for (j, s) in row.iter().enumerate() {
                        vst1q_s32(sums.as_mut_ptr().add(4 * j), vaddq_s32(*s, c));
                    }
                    let n = (t.np - p0).min(16);
                    std::ptr::copy_nonoverlapping(sums.as_ptr(), t.dst.add(i * t.stride + p0), n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::int8::tests::pseudo_random as bytes;

    /// Every row count 1..=9 (tiles of 4 and the remainders), k not a multiple of 4, a
    /// partial block, extreme values: the sums equal the scalar definition.
    #[test]
    fn blocks_equal_the_scalar_sums() {
        let Some(isa) = DotIsa::detect() else {
            eprintln!("no dot-product instructions on this CPU: the portable kernels are tested instead");
            return;
        };
        for (rows, k, np) in [(1, 1, 1), (4, 4, 64), (5, 7, 63), (9, 37, 17), (3, 300, 64), (8, 2, 33)] {
            let mut w = bytes(rows * k, 1 + k as u32);
            let mut x = bytes(k * np, 2 + rows as u32);
            w[0] = -128;
            x[0] = -128;
            x[np * k - 1] = 127;
            let pw = PackedWeights::new(&w, rows, k);
            let mut act = vec![0u8; pw.k4 * BLOCK];
            pack_block(&mut act, k, np, |r, buf| {
                for (j, b) in buf.iter_mut().enumerate() {
                    *b = isa.encode(x[r * np + j]);
                }
            });
            let base: Vec<i32> = (0..rows).map(|m| 1000 * m as i32 - isa.shift() * pw.sums[m]).collect();
            let stride = np + 3;
            let mut out = vec![i32::MIN; rows * stride];
            unsafe { block(isa, &act, np, &pw, &base, out.as_mut_ptr(), stride) };
            for m in 0..rows {
                for j in 0..stride {
                    let want = if j < np {
                        1000 * m as i32 + (0..k).map(|r| x[r * np + j] as i32 * w[m * k + r] as i32).sum::<i32>()
                    } else {
                        i32::MIN
                    };
                    assert_eq!(out[m * stride + j], want, "rows {rows} k {k} np {np}: row {m} pixel {j}");
                }
            }
        }
    }
}

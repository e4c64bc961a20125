//! Element-wise tails fused into a convolution: the ops that follow a Conv in most CNNs
//! (BatchNormalization, a constant scale or shift, Relu, Clip, Sigmoid, HardSigmoid,
//! HardSwish, and `x · f(x)` gates such as SiLU or HardSwish written as Add→Clip→Div→Mul)
//! applied to each output block right after the kernel wrote it, while it is still in cache,
//! instead of one pass over memory (and one new tensor) per op.
//!
//! Every stage performs the same f32 operations in the same order as the op it replaces
//! (no FMA contraction, no reassociation), so a fused graph gives bit-for-bit the outputs of
//! the unfused one; `tests/engine_oracle*.rs` and the unit test below check it.

use crate::engine::ops::activation::{Real, hard_sigmoid_f32, hard_swish_f32, sigmoid_f32};

/// A binary op with one constant operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One fused op, applied to the running value `v` of each element of output channel `c`.
#[derive(Clone, Debug)]
pub enum Stage {
    /// The running value's bits are an int8 layer's i32 accumulator: converted to f32 (`as
    /// f32`, as AscendDequant does before it scales). Only first, in an int8 conv's epilogue.
    IntToFloat,
    /// BatchNormalization (inference): `v · a[c] + b[c]`.
    Affine {
        a: Vec<f32>,
        b: Vec<f32>,
    },
    /// `v op k` (or `k op v` when `const_first`); `k` has one value or one per channel.
    Bin {
        op: BinOp,
        k: Vec<f32>,
        const_first: bool,
    },
    Relu,
    /// Round half to even (the Round op).
    Round,
    LeakyRelu(f32),
    Sigmoid,
    HardSigmoid(f32, f32),
    HardSwish,
    Clip(Option<f32>, Option<f32>),
    /// `v · sigmoid(v)` (SiLU: Sigmoid then Mul by its input, in one pass).
    SiluGate,
    /// `v · (clip(v + add, lo, hi) / div)` (HardSwish written as Add→Clip→Div→Mul).
    HardSwishGate {
        add: f32,
        lo: f32,
        hi: f32,
        div: f32,
    },
    /// `(v · clip(v + add, lo, hi)) / div` (HardSwish written as Add→Clip→Mul→Div).
    HardSwishGateMulFirst {
        add: f32,
        lo: f32,
        hi: f32,
        div: f32,
    },
    /// Remember `v` (the input of a gate `x · f(x)`).
    Save,
    /// `saved · v`: the gate's Mul.
    MulSaved,
}

impl Stage {
    /// Whether the stage reads no per-channel value.
    pub fn is_scalar(&self) -> bool {
        match self {
            Stage::Affine { .. } => false,
            Stage::Bin { k, .. } => k.len() == 1,
            _ => true,
        }
    }
}

/// The stages after one convolution, in order.
#[derive(Clone, Debug, Default)]
pub struct Epilogue {
    pub stages: Vec<Stage>,
}

/// Elements per stage sweep: the stages run over a chunk of this many values (a compile-time
/// length, so each sweep is a fixed number of full vectors with no remainder loop), then
/// over chunks of [`SMALL`] for the rest of a row, the last one padded.
const CHUNK: usize = 64;
const SMALL: usize = 16;

impl Epilogue {
    /// Applies the stages to `data`, a run of output channel `c`.
    pub fn apply(&self, c: usize, data: &mut [f32]) {
        self.apply_from(0, c, data)
    }

    /// [`Self::apply`] from stage `first` on.
    pub fn apply_from(&self, first: usize, c: usize, data: &mut [f32]) {
        // SAFETY: one row, the slice itself.
        unsafe { self.apply_block_from(first, c, 1, data.as_mut_ptr(), 0, data.len()) }
    }

    /// The per-channel `(a, b)` of a leading [`Stage::Affine`] (BatchNormalization): a
    /// kernel may compute `v · a[c] + b[c]` itself on values still in registers (a multiply,
    /// then an add, as the stage does) and run the rest from stage 1.
    pub fn leading_affine(&self) -> Option<(&[f32], &[f32])> {
        match self.stages.first() {
            Some(Stage::Affine { a, b }) => Some((a, b)),
            _ => None,
        }
    }

    /// Applies the stages to rows `0..rows` of a block (row r is channel `c0 + r`, `cols`
    /// values starting at `dst + r·stride`).
    ///
    /// # Safety
    /// Every row must be valid for reads and writes and not accessed concurrently.
    pub unsafe fn apply_block(&self, c0: usize, rows: usize, dst: *mut f32, stride: usize, cols: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.apply_block_from(0, c0, rows, dst, stride, cols) }
    }

    /// [`Self::apply_block`] from stage `first` on.
    ///
    /// # Safety
    /// As for [`Self::apply_block`].
    pub unsafe fn apply_block_from(&self, first: usize, c0: usize, rows: usize, dst: *mut f32, stride: usize, cols: usize) {
        if first >= self.stages.len() {
            return;
        }
        // Where the CPU has it, a build of the same loops for 16-lane vectors. Same IEEE
        // operations either way (Rust never contracts a·b + c into an FMA), so the same bits.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected; the rest is forwarded from the caller.
            unsafe { self.block_avx512(first, c0, rows, dst, stride, cols) };
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.block_body(first, c0, rows, dst, stride, cols) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn block_avx512(&self, first: usize, c0: usize, rows: usize, dst: *mut f32, stride: usize, cols: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.block_body(first, c0, rows, dst, stride, cols) }
    }

    #[inline(always)]
    unsafe fn block_body(&self, first: usize, c0: usize, rows: usize, dst: *mut f32, stride: usize, cols: usize) {
        let mut saved = [0.0f32; CHUNK];
        for r in 0..rows {
            // SAFETY: forwarded from the caller.
            let data = unsafe { std::slice::from_raw_parts_mut(dst.add(r * stride), cols) };
            let c = c0 + r;
            let mut big = data.chunks_exact_mut(CHUNK);
            for v in &mut big {
                self.chunk::<CHUNK>(&self.stages[first..], c, v.try_into().unwrap(), &mut saved);
            }
            let rest = big.into_remainder();
            let mut small = rest.chunks_exact_mut(SMALL);
            let mut saved16 = [0.0f32; SMALL];
            for v in &mut small {
                self.chunk::<SMALL>(&self.stages[first..], c, v.try_into().unwrap(), &mut saved16);
            }
            let tail = small.into_remainder();
            if !tail.is_empty() {
                // Padding lanes compute garbage (maybe inf or NaN), never written back.
                let mut pad = [0.0f32; SMALL];
                pad[..tail.len()].copy_from_slice(tail);
                self.chunk::<SMALL>(&self.stages[first..], c, &mut pad, &mut saved16);
                tail.copy_from_slice(&pad[..tail.len()]);
            }
        }
    }

    /// Every stage, one sweep each, over `v` (N values of channel `c`).
    #[inline(always)]
    fn chunk<const N: usize>(&self, stages: &[Stage], c: usize, v: &mut [f32; N], saved: &mut [f32; N]) {
        for st in stages {
            match st {
                Stage::IntToFloat => v.iter_mut().for_each(|x| *x = (x.to_bits() as i32) as f32),
                Stage::Affine { a, b } => {
                    let (a, b) = (a[c], b[c]);
                    v.iter_mut().for_each(|x| *x = *x * a + b);
                }
                Stage::Bin { op, k, const_first } => {
                    let k = if k.len() == 1 { k[0] } else { k[c] };
                    match (op, const_first) {
                        (BinOp::Add, _) => v.iter_mut().for_each(|x| *x += k),
                        (BinOp::Mul, _) => v.iter_mut().for_each(|x| *x *= k),
                        (BinOp::Sub, false) => v.iter_mut().for_each(|x| *x -= k),
                        (BinOp::Sub, true) => v.iter_mut().for_each(|x| *x = k - *x),
                        (BinOp::Div, false) => v.iter_mut().for_each(|x| *x /= k),
                        (BinOp::Div, true) => v.iter_mut().for_each(|x| *x = k / *x),
                    }
                }
                Stage::Relu => v.iter_mut().for_each(|x| *x = if *x < 0.0 { 0.0 } else { *x }),
                Stage::Round => v.iter_mut().for_each(|x| *x = Real::round_even(*x)),
                Stage::LeakyRelu(al) => v.iter_mut().for_each(|x| *x = if *x < 0.0 { *x * al } else { *x }),
                Stage::Sigmoid => v.iter_mut().for_each(|x| *x = sigmoid_f32(*x)),
                Stage::HardSigmoid(al, be) => v.iter_mut().for_each(|x| *x = hard_sigmoid_f32(*x, *al, *be)),
                Stage::HardSwish => v.iter_mut().for_each(|x| *x = hard_swish_f32(*x)),
                // The Clip op's comparisons, in its order (NaN passes through).
                Stage::Clip(lo, hi) => {
                    if let Some(lo) = *lo {
                        v.iter_mut().for_each(|x| *x = if *x < lo { lo } else { *x });
                    }
                    if let Some(hi) = *hi {
                        v.iter_mut().for_each(|x| *x = if *x > hi { hi } else { *x });
                    }
                }
                Stage::SiluGate => v.iter_mut().for_each(|x| *x *= sigmoid_f32(*x)),
                Stage::HardSwishGate { add, lo, hi, div } => {
                    let (add, lo, hi, div) = (*add, *lo, *hi, *div);
                    v.iter_mut().for_each(|x| {
                        let t = *x + add;
                        let t = if t < lo { lo } else { t };
                        let t = if t > hi { hi } else { t };
                        *x *= t / div;
                    });
                }
                Stage::HardSwishGateMulFirst { add, lo, hi, div } => {
                    let (add, lo, hi, div) = (*add, *lo, *hi, *div);
                    v.iter_mut().for_each(|x| {
                        let t = *x + add;
                        let t = if t < lo { lo } else { t };
                        let t = if t > hi { hi } else { t };
                        *x = (*x * t) / div;
                    });
                }
                Stage::Save => saved.copy_from_slice(v),
                Stage::MulSaved => v.iter_mut().zip(saved.iter()).for_each(|(x, s)| *x *= *s),
            }
        }
    }

    /// Rewrites `Save, <f>, MulSaved` gates whose `f` has a one-pass stage of its own (SiLU,
    /// HardSwish as Add→Clip→Div): the same operations, one sweep instead of several.
    pub fn fuse_gates(mut self) -> Self {
        let mut out = Vec::with_capacity(self.stages.len());
        let mut i = 0;
        let st = &self.stages;
        while i < st.len() {
            let gate = match &st[i..] {
                [Stage::Save, Stage::Sigmoid, Stage::MulSaved, ..] => Some((Stage::SiluGate, 3)),
                [
                    Stage::Save,
                    Stage::Bin { op: BinOp::Add, k: add, .. },
                    Stage::Clip(Some(lo), Some(hi)),
                    Stage::Bin { op: BinOp::Div, k: div, const_first: false },
                    Stage::MulSaved,
                    ..,
                ] if add.len() == 1 && div.len() == 1 => Some((Stage::HardSwishGate { add: add[0], lo: *lo, hi: *hi, div: div[0] }, 5)),
                [
                    Stage::Save,
                    Stage::Bin { op: BinOp::Add, k: add, .. },
                    Stage::Clip(Some(lo), Some(hi)),
                    Stage::MulSaved,
                    Stage::Bin { op: BinOp::Div, k: div, const_first: false },
                    ..,
                ] if add.len() == 1 && div.len() == 1 => {
                    Some((Stage::HardSwishGateMulFirst { add: add[0], lo: *lo, hi: *hi, div: div[0] }, 5))
                }
                _ => None,
            };
            match gate {
                Some((g, n)) => {
                    out.push(g);
                    i += n;
                }
                None => {
                    out.push(st[i].clone());
                    i += 1;
                }
            }
        }
        self.stages = out;
        self
    }
}

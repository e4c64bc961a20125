//! Sliding-window attributes of Conv, ConvTranspose and the pools (MaxPool, AveragePool,
//! LpPool) — `kernel_shape`, `strides`, `dilations`, `pads`, `auto_pad` — and their
//! output-size rules.
//!
//! This is the one definition: shape inference (`onnx::shapes`) and the engine's fp32 and
//! int8 Conv / ConvTranspose / pool builders (`engine::ops::{conv, pool, int8}`) all read and
//! size their windows here. It lives on the `onnx` side because `onnx` must not import
//! `engine`.
//!
//! The rules (ONNX Conv / ConvTranspose / MaxPool / AveragePool specifications):
//! - `auto_pad` is NOTSET (also accepted written as `""`), VALID, SAME_UPPER or SAME_LOWER.
//! - `pads` with a non-zero value together with an auto_pad other than NOTSET is an error (the
//!   specification says the two cannot be used together; all-zero pads say nothing and are
//!   accepted, as exporters write them).
//! - NOTSET and VALID (zero pads): `floor((in + pads − ((k − 1)·d + 1)) / s) + 1`; in pool
//!   `ceil_mode`, `ceil` instead of `floor`, dropping a last window that would start in the end
//!   padding. The ceil_mode applies to VALID as well, as in ONNX's own shape inference and ONNX
//!   Runtime (the specification's VALID formula would ignore it).
//! - SAME_*: output `ceil(in / s)`, whatever ceil_mode says; the total padding is split evenly,
//!   the odd one at the end (UPPER) or the beginning (LOWER).
//!
//! Errors name the attribute(s); the caller adds the node (the engine's node errors, the
//! unresolved list of shape inference).

use std::fmt;

use super::attr::NodeExt;
use super::error::OnnxError;
use super::proto::NodeProto;

/// The `auto_pad` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPad {
    NotSet,
    Valid,
    SameUpper,
    SameLower,
}

impl AutoPad {
    /// The attribute value; `""` is NOTSET (some exporters write the default out empty).
    pub fn parse(value: &str) -> Option<AutoPad> {
        match value {
            "NOTSET" | "" => Some(AutoPad::NotSet),
            "VALID" => Some(AutoPad::Valid),
            "SAME_UPPER" => Some(AutoPad::SameUpper),
            "SAME_LOWER" => Some(AutoPad::SameLower),
            _ => None,
        }
    }

    pub fn onnx_name(self) -> &'static str {
        match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::Valid => "VALID",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
        }
    }

    /// SAME_UPPER or SAME_LOWER.
    pub fn is_same(self) -> bool {
        matches!(self, AutoPad::SameUpper | AutoPad::SameLower)
    }
}

/// A bad window attribute or a window that does not fit its input. The message names the
/// attribute(s) involved, not the node.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowError(pub String);

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WindowError {}

impl From<OnnxError> for WindowError {
    fn from(e: OnnxError) -> Self {
        WindowError(e.to_string())
    }
}

pub type WindowResult<T> = Result<T, WindowError>;

fn fail<T>(message: String) -> WindowResult<T> {
    Err(WindowError(message))
}

/// An optional INTS attribute whose values must all be at least `min`.
fn list_at_least(node: &NodeProto, name: &str, min: i64) -> WindowResult<Option<Vec<usize>>> {
    let Some(v) = node.opt_attr_ints(name)? else { return Ok(None) };
    if let Some(bad) = v.iter().find(|&&x| x < min) {
        return fail(format!("attribute '{name}' = {v:?}: every value must be >= {min} (found {bad})"));
    }
    Ok(Some(v.into_iter().map(|x| x as usize).collect()))
}

/// A per-axis list (defaulting to 1s) with its length checked against the spatial rank.
fn per_axis(name: &str, v: &Option<Vec<usize>>, rank: usize) -> WindowResult<Vec<usize>> {
    match v {
        None => Ok(vec![1; rank]),
        Some(v) if v.len() == rank => Ok(v.clone()),
        Some(v) => fail(format!("attribute '{name}' = {v:?} has {} values, expected {rank} (one per spatial axis)", v.len())),
    }
}

/// The window attributes as written on a node. Values are checked when read; the per-axis
/// lengths once the spatial rank is known ([`WindowAttrs::window`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAttrs {
    pub auto_pad: AutoPad,
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Option<Vec<usize>>,
    pub dilations: Option<Vec<usize>>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`
    pub pads: Option<Vec<usize>>,
}

impl WindowAttrs {
    pub fn read(node: &NodeProto) -> WindowResult<WindowAttrs> {
        let auto_pad_value = node.attr_s("auto_pad", "NOTSET")?;
        let Some(auto_pad) = AutoPad::parse(&auto_pad_value) else {
            return fail(format!("attribute 'auto_pad' = '{auto_pad_value}': expected NOTSET, SAME_UPPER, SAME_LOWER or VALID"));
        };
        let pads = list_at_least(node, "pads", 0)?;
        if let Some(p) = &pads {
            if p.len() % 2 != 0 {
                return fail(format!("attribute 'pads' = {p:?}: expected 2 values per spatial axis (begins, then ends)"));
            }
            if auto_pad != AutoPad::NotSet && p.iter().any(|&x| x != 0) {
                return fail(format!(
                    "attributes 'pads' = {p:?} and 'auto_pad' = {} cannot be combined (explicit pads need auto_pad NOTSET)",
                    auto_pad.onnx_name()
                ));
            }
        }
        Ok(WindowAttrs {
            auto_pad,
            kernel_shape: list_at_least(node, "kernel_shape", 1)?,
            strides: list_at_least(node, "strides", 1)?,
            dilations: list_at_least(node, "dilations", 1)?,
            pads,
        })
    }

    /// The window over `rank` spatial axes. A convolution passes its weight's spatial shape
    /// as `weight_kernel` (`kernel_shape`, when given, must equal it); a pool passes `None`
    /// and needs `kernel_shape`.
    pub fn window(&self, rank: usize, weight_kernel: Option<&[usize]>) -> WindowResult<Window> {
        let kernel = match (weight_kernel, &self.kernel_shape) {
            (Some(w), Some(k)) if k.as_slice() != w => {
                return fail(format!("attribute 'kernel_shape' = {k:?} disagrees with the weight's spatial shape {w:?}"));
            }
            (Some(w), _) => w.to_vec(),
            (None, Some(k)) => k.clone(),
            (None, None) => return fail("attribute 'kernel_shape' is required".into()),
        };
        let kernel = per_axis("kernel_shape", &Some(kernel), rank)?;
        let pads = match &self.pads {
            None => vec![0; 2 * rank],
            Some(p) if p.len() == 2 * rank => p.clone(),
            Some(p) => return fail(format!("attribute 'pads' = {p:?} has {} values, expected {} (2 per spatial axis)", p.len(), 2 * rank)),
        };
        Ok(Window {
            kernel,
            strides: per_axis("strides", &self.strides, rank)?,
            dilations: per_axis("dilations", &self.dilations, rank)?,
            pads,
            auto_pad: self.auto_pad,
        })
    }
}

/// A window resolved for a spatial rank: every list has one value per axis (`pads` two).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`; all zero unless auto_pad is NOTSET.
    pub pads: Vec<usize>,
    pub auto_pad: AutoPad,
}

/// Output extent and padding of one spatial axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisWindow {
    pub out: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
}

impl Window {
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// `(k − 1)·d + 1` on axis `i`.
    pub fn dilated_kernel(&self, i: usize) -> usize {
        // Saturating: kernel and dilation come from the model file (see out_dim).
        self.kernel[i].saturating_sub(1).saturating_mul(self.dilations[i]).saturating_add(1)
    }

    /// Output extent and pads of spatial axis `i` over `input` positions, for Conv and the
    /// pools (`ceil_mode` is the pools' attribute; Conv passes false).
    pub fn axis(&self, i: usize, input: usize, ceil_mode: bool) -> WindowResult<AxisWindow> {
        let (k, s, d) = (self.kernel[i], self.strides[i], self.dilations[i]);
        if s == 0 || k == 0 || d == 0 {
            return fail(format!("spatial axis {i}: kernel {k}, stride {s} and dilation {d} must all be at least 1"));
        }
        if self.auto_pad.is_same() {
            let (pad_begin, pad_end) = same_pads(input, k, s, d, self.auto_pad);
            return Ok(AxisWindow { out: input.div_ceil(s), pad_begin, pad_end });
        }
        // NOTSET, or VALID whose pads are zero.
        let (pad_begin, pad_end) = (self.pads[i], self.pads[i + self.rank()]);
        match out_dim(input, k, s, d, pad_begin, pad_end, ceil_mode) {
            Some(out) => Ok(AxisWindow { out, pad_begin, pad_end }),
            None => fail(format!(
                "spatial axis {i}: input size {input} plus pads ({pad_begin}, {pad_end}) is smaller than the dilated kernel {}",
                self.dilated_kernel(i)
            )),
        }
    }

    /// Output spatial extents over `input` (spatial dims only).
    pub fn output(&self, input: &[usize], ceil_mode: bool) -> WindowResult<Vec<usize>> {
        if input.len() != self.rank() {
            return fail(format!("input spatial shape {input:?} does not fit a window of {} axes (kernel {:?})", self.rank(), self.kernel));
        }
        input.iter().enumerate().map(|(i, &n)| self.axis(i, n, ceil_mode).map(|a| a.out)).collect()
    }
}

/// Output length of a sliding window along one axis (the ONNX Conv / pool formula):
/// `floor((in + pads − ((k − 1)·d + 1)) / s) + 1`, or with `ceil` in ceil mode, where a last
/// window that would start in the end padding is dropped. `None` when the padded input is
/// shorter than the dilated kernel.
pub fn out_dim(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil_mode: bool,
) -> Option<usize> {
    // Checked throughout: pads, kernel and dilation come from the model file, and absurd
    // values (found by the onnx_load fuzz target) must give None, not an overflow.
    let padded = input.checked_add(pad_begin)?.checked_add(pad_end)?;
    let reach = kernel.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    let span = padded.checked_sub(reach)?;
    if stride == 0 {
        return None;
    }
    if !ceil_mode {
        return Some(span / stride + 1);
    }
    let out = span.div_ceil(stride) + 1;
    Some(if (out - 1).checked_mul(stride)? >= input + pad_begin { out - 1 } else { out })
}

/// `(begin, end)` pads of SAME_UPPER / SAME_LOWER: enough for `ceil(in / s)` outputs, split
/// evenly with the odd one at the end (SAME_UPPER) or the beginning (SAME_LOWER; any other
/// `auto_pad` is treated as SAME_UPPER).
pub fn same_pads(input: usize, kernel: usize, stride: usize, dilation: usize, auto_pad: AutoPad) -> (usize, usize) {
    let out = input.div_ceil(stride.max(1));
    // Saturating: absurd attributes give pads no input has, which out_dim then refuses.
    let reach = kernel.saturating_sub(1).saturating_mul(dilation).saturating_add(1);
    let total = (out.max(1) - 1).saturating_mul(stride).saturating_add(reach).saturating_sub(input);
    let half = total / 2;
    if auto_pad == AutoPad::SameLower { (total - half, half) } else { (half, total - half) }
}

/// ConvTranspose's `output_padding` and `output_shape` attributes and its output-size rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TransposeOutput {
    pub output_padding: Option<Vec<usize>>,
    /// Spatial extents, or `[N, C, spatial...]` as some exporters write it.
    pub output_shape: Option<Vec<usize>>,
}

/// Output extent of one ConvTranspose axis and the pad removed at its start (negative when
/// `output_shape` asks for more than the full extent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposeAxis {
    pub out: usize,
    pub pad_begin: isize,
}

impl TransposeOutput {
    pub fn read(node: &NodeProto) -> WindowResult<TransposeOutput> {
        Ok(TransposeOutput {
            output_padding: list_at_least(node, "output_padding", 0)?,
            output_shape: list_at_least(node, "output_shape", 0)?,
        })
    }

    /// Output extents and begin pads over `input` (spatial dims only), per the ONNX
    /// ConvTranspose rules: `output_shape` wins; else SAME_* gives `in × s`; else
    /// `s·(in − 1) + output_padding + (k − 1)·d + 1 − pads`. With a target size the total
    /// padding is split with the odd one at the beginning unless auto_pad is SAME_UPPER.
    pub fn output(&self, w: &Window, input: &[usize]) -> WindowResult<Vec<TransposeAxis>> {
        let r = w.rank();
        if input.len() != r {
            return fail(format!("input spatial shape {input:?} does not fit a window of {r} axes (kernel {:?})", w.kernel));
        }
        let output_padding = match &self.output_padding {
            None => vec![0; r],
            Some(v) if v.len() == r => v.clone(),
            Some(v) => return fail(format!("attribute 'output_padding' = {v:?} has {} values, expected {r}", v.len())),
        };
        let target = match &self.output_shape {
            None => None,
            Some(v) if v.len() == r => Some(v.clone()),
            Some(v) if v.len() == r + 2 => Some(v[2..].to_vec()),
            Some(v) => return fail(format!("attribute 'output_shape' = {v:?} has {} values, expected {r}", v.len())),
        };
        let mut axes = Vec::with_capacity(r);
        for i in 0..r {
            let (s, d, op) = (w.strides[i], w.dilations[i], output_padding[i]);
            if op >= s && op >= d {
                return fail(format!(
                    "attribute 'output_padding' = {output_padding:?}: value {op} on axis {i} must be smaller than the stride {s} or the dilation {d}"
                ));
            }
            // Size before removing pads.
            let full = (s * input[i].saturating_sub(1) + op + w.dilated_kernel(i)) as isize;
            let target = match &target {
                Some(t) => Some(t[i] as isize),
                None if w.auto_pad.is_same() => Some((input[i] * s) as isize),
                None => None,
            };
            let axis = match target {
                Some(t) => {
                    let total = full - t;
                    let pad_begin = if w.auto_pad == AutoPad::SameUpper { total.div_euclid(2) } else { total - total.div_euclid(2) };
                    TransposeAxis { out: t as usize, pad_begin }
                }
                None => {
                    let (pb, pe) = (w.pads[i], w.pads[i + r]);
                    let out = full - (pb + pe) as isize;
                    if out < 0 {
                        return fail(format!("spatial axis {i}: pads {pb} + {pe} exceed the output size {full}"));
                    }
                    TransposeAxis { out: out as usize, pad_begin: pb as isize }
                }
            };
            axes.push(axis);
        }
        Ok(axes)
    }
}

#[cfg(test)]
mod tests {

    /// Regression for the onnx_load fuzz target's first find: attribute values whose sums and
    /// products overflow a usize are None (an error for the caller), never a panic.
    #[test]
    fn absurd_window_attributes_are_none_not_overflow() {
        assert_eq!(out_dim(8, 3, 1, 1, usize::MAX, 1, false), None);
        assert_eq!(out_dim(8, usize::MAX, 1, 2, 0, 0, false), None);
        assert_eq!(out_dim(8, 0, 1, 1, 0, 0, false), None);
        assert_eq!(out_dim(8, 3, 0, 1, 1, 1, false), None);
        assert_eq!(out_dim(usize::MAX - 1, 1, usize::MAX, 1, 0, 0, true), Some(1));
        let (b, e) = same_pads(8, usize::MAX, usize::MAX, usize::MAX, AutoPad::SameUpper);
        assert_eq!(out_dim(8, usize::MAX, usize::MAX, usize::MAX, b, e, false), None);
        assert_eq!(out_dim(8, 3, 1, 1, 1, 1, false), Some(8));
    }

    use super::*;
    use crate::onnx::build::{attr_ints as ints, attr_string as string};
    use crate::onnx::proto::AttributeProto;

    fn node(attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto { name: Some("n".into()), op_type: Some("Conv".into()), attribute: attrs, ..Default::default() }
    }

    #[test]
    fn out_dim_floor_ceil_and_edges() {
        // in 7, k 3, s 2: floor((7-3)/2)+1 = 3; pads 1+1: floor(6/2)+1 = 4.
        assert_eq!(out_dim(7, 3, 2, 1, 0, 0, false), Some(3));
        assert_eq!(out_dim(7, 3, 2, 1, 1, 1, false), Some(4));
        // in 4, k 3, s 2: floor(1/2)+1 = 1, ceil: ceil(1/2)+1 = 2 (last window starts at 2 < 4).
        assert_eq!(out_dim(4, 3, 2, 1, 0, 0, false), Some(1));
        assert_eq!(out_dim(4, 3, 2, 1, 0, 0, true), Some(2));
        // in 2, k 1, s 2, ceil: ceil(1/2)+1 = 2, but window 2 would start at 2 = in + pad_begin,
        // in the end padding, so it is dropped → 1 (test_maxpool_2d_ceil_output_size_reduce_by_one).
        assert_eq!(out_dim(2, 1, 2, 1, 0, 0, true), Some(1));
        // in 2, k 3, pads 1/1, s 3, ceil: ceil(1/3)+1 = 2; window 2 starts at 3 ≥ 2+1 → 1.
        assert_eq!(out_dim(2, 3, 3, 1, 1, 1, true), Some(1));
        // Dilation 2 makes k 3 span 5: in 5 → 1; in 4 does not fit.
        assert_eq!(out_dim(5, 3, 1, 2, 0, 0, false), Some(1));
        assert_eq!(out_dim(4, 3, 1, 2, 0, 0, false), None);
        // Padded input exactly the dilated kernel → one output; empty input with a 1-tap kernel → none fit.
        assert_eq!(out_dim(1, 3, 1, 1, 1, 1, false), Some(1));
        assert_eq!(out_dim(0, 1, 1, 1, 0, 0, false), None);
    }

    #[test]
    fn same_pads_split_the_odd_pad() {
        // in 5, k 3, s 2: out 3, total (3-1)·2+3-5 = 2 → (1, 1) either way.
        assert_eq!(same_pads(5, 3, 2, 1, AutoPad::SameUpper), (1, 1));
        assert_eq!(same_pads(5, 3, 2, 1, AutoPad::SameLower), (1, 1));
        // in 32, k 2, s 1: total 1 → UPPER (0, 1), LOWER (1, 0).
        assert_eq!(same_pads(32, 2, 1, 1, AutoPad::SameUpper), (0, 1));
        assert_eq!(same_pads(32, 2, 1, 1, AutoPad::SameLower), (1, 0));
        // in 6, k 3, s 3: out 2, total 3+3-6 = 0; a stride larger than the kernel never pads negatively.
        assert_eq!(same_pads(6, 3, 3, 1, AutoPad::SameUpper), (0, 0));
        assert_eq!(same_pads(7, 1, 4, 1, AutoPad::SameUpper), (0, 0));
        // Dilation 2, k 3 spans 5: in 4, s 1 → out 4, total 3+5-4 = 4 → (2, 2).
        assert_eq!(same_pads(4, 3, 1, 2, AutoPad::SameLower), (2, 2));
    }

    #[test]
    fn auto_pad_values_and_conflicts() {
        let w = |attrs| WindowAttrs::read(&node(attrs));
        assert_eq!(w(vec![string("auto_pad", "")]).unwrap().auto_pad, AutoPad::NotSet);
        assert_eq!(w(vec![]).unwrap().auto_pad, AutoPad::NotSet);
        assert_eq!(w(vec![string("auto_pad", "SAME_LOWER")]).unwrap().auto_pad, AutoPad::SameLower);
        let e = w(vec![string("auto_pad", "SAME")]).unwrap_err().0;
        assert!(e.contains("'auto_pad' = 'SAME'"), "{e}");
        let e = w(vec![string("auto_pad", "SAME_UPPER"), ints("pads", &[1, 1, 1, 1])]).unwrap_err().0;
        assert!(e.contains("'pads' = [1, 1, 1, 1]") && e.contains("'auto_pad' = SAME_UPPER"), "{e}");
        // All-zero pads with VALID say nothing and are accepted.
        assert!(w(vec![string("auto_pad", "VALID"), ints("pads", &[0, 0])]).is_ok());
        let e = w(vec![ints("pads", &[1, 1, 1])]).unwrap_err().0;
        assert!(e.contains("2 values per spatial axis"), "{e}");
        let e = w(vec![ints("dilations", &[1, 0])]).unwrap_err().0;
        assert!(e.contains("'dilations'") && e.contains(">= 1"), "{e}");
    }

    #[test]
    fn window_lengths_and_kernel_source() {
        let attrs = WindowAttrs::read(&node(vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2])])).unwrap();
        let e = attrs.window(2, None).unwrap_err().0;
        assert!(e.contains("'strides' = [2] has 1 values, expected 2"), "{e}");
        let attrs = WindowAttrs::read(&node(vec![ints("kernel_shape", &[3, 3])])).unwrap();
        let e = attrs.window(2, Some(&[3, 1])).unwrap_err().0;
        assert!(e.contains("'kernel_shape' = [3, 3] disagrees"), "{e}");
        assert_eq!(attrs.window(2, None).unwrap().kernel, vec![3, 3]);
        let e = WindowAttrs::read(&node(vec![])).unwrap().window(2, None).unwrap_err().0;
        assert!(e.contains("'kernel_shape' is required"), "{e}");
    }

    #[test]
    fn transpose_output_rules() {
        // in 3, k 3, s 3/2, output_padding 1/1: 3·2+1+3 = 10 and 2·2+1+3 = 8 (test_convtranspose_pad).
        let n = node(vec![ints("strides", &[3, 2]), ints("output_padding", &[1, 1])]);
        let w = WindowAttrs::read(&n).unwrap().window(2, Some(&[3, 3])).unwrap();
        let t = TransposeOutput::read(&n).unwrap().output(&w, &[3, 3]).unwrap();
        assert_eq!(t, vec![TransposeAxis { out: 10, pad_begin: 0 }, TransposeAxis { out: 8, pad_begin: 0 }]);
        // SAME_UPPER, s 2 on 3: out 6; full 2·2+3 = 7, total 1 → begin 0 (odd pad at the end).
        let n = node(vec![ints("strides", &[2, 2]), string("auto_pad", "SAME_UPPER")]);
        let w = WindowAttrs::read(&n).unwrap().window(2, Some(&[3, 3])).unwrap();
        let t = TransposeOutput::read(&n).unwrap().output(&w, &[3, 3]).unwrap();
        assert_eq!(t[0], TransposeAxis { out: 6, pad_begin: 0 });
        // output_padding must stay below the stride (or the dilation).
        let n = node(vec![ints("output_padding", &[1, 0])]);
        let w = WindowAttrs::read(&n).unwrap().window(2, Some(&[3, 3])).unwrap();
        let e = TransposeOutput::read(&n).unwrap().output(&w, &[3, 3]).unwrap_err().0;
        assert!(e.contains("'output_padding'"), "{e}");
    }
}

//! Shape rules: Conv, ConvInteger, QLinearConv and ConvTranspose.

use super::{Ctx, Infer, Out, Outs, Unresolved, fail, outs};
use crate::onnx::attr::NodeExt;
use crate::onnx::proto::NodeProto;

/// Sliding-window attributes shared by Conv, ConvTranspose and the pools.
pub(super) struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`
    pads: Vec<i64>,
    auto_pad: String,
}

impl Window {
    /// Reads the attributes for `n` spatial axes; `kernel` is used when `kernel_shape` is absent.
    pub(super) fn read(node: &NodeProto, n: usize, kernel: Option<&[i64]>) -> Infer<Window> {
        let kernel = match node.opt_attr_ints("kernel_shape")? {
            Some(k) => k,
            None => match kernel {
                Some(k) => k.to_vec(),
                None => return fail("attribute 'kernel_shape' is missing"),
            },
        };
        let w = Window {
            kernel,
            strides: node.attr_ints("strides", &vec![1; n])?,
            dilations: node.attr_ints("dilations", &vec![1; n])?,
            pads: node.attr_ints("pads", &vec![0; 2 * n])?,
            auto_pad: node.attr_s("auto_pad", "NOTSET")?,
        };
        let lens_ok = w.kernel.len() == n && w.strides.len() == n && w.dilations.len() == n && w.pads.len() == 2 * n;
        if !lens_ok {
            return fail(format!(
                "window attributes do not fit {n} spatial axes (kernel {:?}, strides {:?}, dilations {:?}, pads {:?})",
                w.kernel, w.strides, w.dilations, w.pads
            ));
        }
        if w.kernel.iter().chain(&w.strides).chain(&w.dilations).any(|&v| v <= 0) {
            return fail("kernel_shape, strides and dilations must be positive");
        }
        if !matches!(w.auto_pad.as_str(), "NOTSET" | "" | "SAME_UPPER" | "SAME_LOWER" | "VALID") {
            return fail(format!("unknown auto_pad '{}'", w.auto_pad));
        }
        Ok(w)
    }

    fn same(&self) -> bool {
        matches!(self.auto_pad.as_str(), "SAME_UPPER" | "SAME_LOWER")
    }

    /// Output spatial dims of a convolution or pool over `input` (spatial dims only).
    pub(super) fn output(&self, input: &[i64], ceil_mode: bool) -> Infer<Vec<i64>> {
        let n = input.len();
        (0..n)
            .map(|i| {
                let (x, s) = (input[i], self.strides[i]);
                let dim = match self.auto_pad.as_str() {
                    // SAME: output = ceil(input / stride), whatever ceil_mode says.
                    "SAME_UPPER" | "SAME_LOWER" => Some((x + s - 1) / s),
                    "VALID" => window_out_dim(x, self.kernel[i], s, self.dilations[i], 0, 0, false),
                    _ => window_out_dim(x, self.kernel[i], s, self.dilations[i], self.pads[i], self.pads[i + n], ceil_mode),
                };
                dim.ok_or_else(|| Unresolved(format!("window {:?} does not fit input dims {input:?}", self.kernel)))
            })
            .collect()
    }
}

/// Output length of a sliding window along one axis (ONNX Conv/pool formula):
/// `floor((in + pads - ((k - 1) * d + 1)) / s) + 1`, or with `ceil` instead of `floor` in
/// ceil mode, where a last window that would start in the end padding is dropped.
pub(super) fn window_out_dim(input: i64, kernel: i64, stride: i64, dilation: i64, pad_begin: i64, pad_end: i64, ceil_mode: bool) -> Option<i64> {
    let span = input + pad_begin + pad_end - ((kernel - 1) * dilation + 1);
    if span < 0 {
        return None;
    }
    if !ceil_mode {
        return Some(span / stride + 1);
    }
    let mut out = (span + stride - 1) / stride + 1;
    if (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

/// Conv / ConvInteger / QLinearConv: `[N, M, spatial...]` with M = W.shape[0].
pub(super) fn conv(cx: &Ctx, x_in: usize, w_in: usize, dtype: Option<i32>) -> Infer<Outs> {
    let (x, w) = (cx.shape(x_in)?, cx.shape(w_in)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if group <= 0 || x[1] != w[1] * group {
        return fail(format!("input channels {} != weight channels {} × group {group}", x[1], w[1]));
    }
    let win = Window::read(cx.node, x.len() - 2, Some(&w[2..]))?;
    let mut shape = vec![x[0], w[0]];
    shape.extend(win.output(&x[2..], false)?);
    outs(vec![Out::new(shape, dtype)])
}

/// ConvTranspose: `[N, W.shape[1] × group, spatial...]`.
pub(super) fn conv_transpose(cx: &Ctx) -> Infer<Outs> {
    let (x, w) = (cx.shape(0)?, cx.shape(1)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a transposed convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if x[1] != w[0] {
        return fail(format!("input channels {} != weight dim 0 {}", x[1], w[0]));
    }
    let n = x.len() - 2;
    let win = Window::read(cx.node, n, Some(&w[2..]))?;
    let output_padding = cx.node.attr_ints("output_padding", &vec![0; n])?;
    if output_padding.len() != n {
        return fail(format!("output_padding {output_padding:?} does not fit {n} spatial axes"));
    }
    let spatial: Vec<i64> = match cx.node.opt_attr_ints("output_shape")? {
        Some(os) if os.len() == n => os,
        Some(os) if os.len() == n + 2 => os[2..].to_vec(),
        Some(os) => return fail(format!("output_shape {os:?} does not fit {n} spatial axes")),
        // SAME_*: output = input × stride.
        None if win.same() => (0..n).map(|i| x[2 + i] * win.strides[i]).collect(),
        None => {
            let pads = if win.auto_pad == "VALID" { vec![0; 2 * n] } else { win.pads.clone() };
            (0..n)
                .map(|i| {
                    win.strides[i] * (x[2 + i] - 1) + output_padding[i] + (win.kernel[i] - 1) * win.dilations[i] + 1 - pads[i] - pads[i + n]
                })
                .collect()
        }
    };
    let mut shape = vec![x[0], w[1] * group];
    shape.extend(spatial);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

//! Shape rules: Resize and Upsample.

use super::{Ctx, Infer, Out, Outs, Unresolved, fail, norm_axis, outs};
use crate::onnx::attr::NodeExt;

/// Resize: opset 10 takes (X, scales); from 11 (X, roi, scales, sizes), from 18 with `axes`
/// and `keep_aspect_ratio_policy`. Scales give `floor(in × scale)` (× (roi_end − roi_start)
/// for `tf_crop_and_resize`), computed in f32 as runtimes do.
pub(super) fn resize(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let (scales_in, sizes_in) = if cx.opset < 11 { (1, None) } else { (2, Some(3)) };
    let axes: Vec<usize> = match cx.node.opt_attr_ints("axes")? {
        Some(axes) if cx.opset >= 18 => axes.iter().map(|&a| norm_axis(a, x.len())).collect::<Infer<_>>()?,
        _ => (0..x.len()).collect(),
    };
    let sizes = match sizes_in {
        Some(i) if cx.has(i) => cx.value(i),
        _ => None,
    };
    let scales = if cx.has(scales_in) { cx.value(scales_in) } else { None };
    let mut shape = x.to_vec();
    if let Some(sizes) = sizes.filter(|v| !v.is_empty()) {
        let sizes = sizes.as_ints().ok_or_else(|| Unresolved("sizes are not integers".into()))?;
        if sizes.len() != axes.len() {
            return fail(format!("sizes {sizes:?} do not fit {} axes", axes.len()));
        }
        let policy = cx.node.attr_s("keep_aspect_ratio_policy", "stretch")?;
        let ratios = axes.iter().zip(sizes).map(|(&a, &s)| s as f64 / x[a] as f64);
        let scale = match policy.as_str() {
            "stretch" => None,
            "not_larger" => Some(ratios.fold(f64::INFINITY, f64::min)),
            "not_smaller" => Some(ratios.fold(0.0, f64::max)),
            p => return fail(format!("unknown keep_aspect_ratio_policy '{p}'")),
        };
        for (&a, &s) in axes.iter().zip(sizes) {
            // round_int: nearest integer, halfway cases up.
            shape[a] = scale.map_or(s, |k| (k * x[a] as f64 + 0.5).floor() as i64);
        }
    } else if let Some(scales) = scales.filter(|v| !v.is_empty()) {
        let scales = scales.to_f64_vec();
        if scales.len() != axes.len() {
            return fail(format!("scales {scales:?} do not fit {} axes", axes.len()));
        }
        let roi = match cx.node.attr_s("coordinate_transformation_mode", "half_pixel")?.as_str() {
            "tf_crop_and_resize" if cx.opset >= 11 => cx.opt_floats(1, "roi")?,
            _ => None,
        };
        for (k, (&a, &s)) in axes.iter().zip(&scales).enumerate() {
            let extent = roi.as_ref().filter(|r| r.len() == 2 * axes.len()).map_or(1.0, |r| r[k + axes.len()] - r[k]);
            shape[a] = (x[a] as f32 * extent as f32 * s as f32).floor() as i64;
        }
    } else {
        let which = match sizes_in {
            Some(i) if cx.has(i) => cx.input(i),
            _ => cx.input(scales_in),
        };
        return fail(match which {
            Some(name) => format!("value of input '{name}' (scales/sizes) is not known"),
            None => "neither scales nor sizes is given".into(),
        });
    }
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// Upsample: `height_scale`/`width_scale` (opset 1), `scales` attribute (7-8), input 1 (9+);
/// each dim becomes `floor(in × scale)`.
pub(super) fn upsample(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let scales: Vec<f64> = match cx.opset {
        ..7 => {
            let h = cx.node.attr_f("height_scale", 1.0)? as f64;
            let w = cx.node.attr_f("width_scale", 1.0)? as f64;
            vec![1.0, 1.0, h, w]
        }
        7..9 => cx.node.attr_floats("scales", &[])?.iter().map(|&s| s as f64).collect(),
        _ => cx.opt_floats(1, "scales")?.ok_or_else(|| Unresolved("input 'scales' is missing".into()))?,
    };
    if scales.len() != x.len() {
        return fail(format!("scales {scales:?} do not fit rank {}", x.len()));
    }
    let shape = x.iter().zip(&scales).map(|(&d, &s)| (d as f32 * s as f32).floor() as i64).collect();
    outs(vec![Out::new(shape, cx.dtype(0))])
}

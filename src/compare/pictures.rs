//! Pictures in the compare report (`--task`): per input set, the model input as a small image
//! with the boxes each side decoded drawn over it (an inline SVG in the model input's pixel
//! frame, laid over the image), for probability-map outputs (db) the int8 map, the fp16 map
//! and their absolute difference, and a plot of the task metric per input. Everything is
//! inline (JPEG / PNG as base64 data URIs, SVG as markup) and small: images are at most
//! [`THUMB_MAX`] pixels on the long side (maps [`MAP_MAX`]), so a report on 30 inputs stays
//! around a few MB.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::runner::IoDesc;
use super::task::input_hw;
use crate::data::preprocess::U8Image;
use crate::tasks::{Decoded, Task};

/// Longest side of an input thumbnail, in pixels.
pub const THUMB_MAX: usize = 320;
/// Longest side of a map picture, in pixels.
pub const MAP_MAX: usize = 240;

/// How each side's boxes are drawn: (side, colour, stroke width, dash pattern). fp32 widest
/// and underneath, int8 thinnest and on top, so boxes that coincide stay visible.
pub const SIDES: [(&str, &str, f64, &str); 3] =
    [("fp32", "#00c853", 4.0, ""), ("fp16", "#2979ff", 2.5, "7 4"), ("int8", "#ff1744", 1.5, "")];

/// What batch item 0 of the first model input looks like: an 8-bit R,G,B (or grey) image of
/// the model input's size (the whole frame for a static-AIPP input) and how it was made.
#[derive(Debug, Clone)]
pub struct Preview {
    pub image: U8Image,
    pub caption: String,
}

/// A float NCHW item (`c` planes of `h`×`w`) as a picture: channels 0..3 (or channel 0 in
/// grey when there are fewer than 3) min-max normalised together to 0..255.
pub fn minmax_preview(chw: &[f32], c: usize, h: usize, w: usize, what: &str) -> Preview {
    let shown = if c >= 3 { 3 } else { 1 };
    let planes = &chw[..shown * h * w];
    let (lo, hi) = planes.iter().filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| (l.min(v), u.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut data = vec![0u8; h * w * shown];
    for ch in 0..shown {
        for (i, v) in planes[ch * h * w..(ch + 1) * h * w].iter().enumerate() {
            let n = if v.is_finite() { (v - lo) / span * 255.0 } else { 0.0 };
            data[i * shown + ch] = n.round().clamp(0.0, 255.0) as u8;
        }
    }
    let channels = if shown == 3 { "channels 0, 1, 2 shown as R, G, B" } else { "channel 0 in grey" };
    let caption = format!("{what}, min-max normalised to 0..255 ({lo:.3}..{hi:.3}; {channels})");
    Preview { image: U8Image::new(w, h, shown, data), caption }
}

/// An encoded picture: a `data:` URI and its size in pixels.
#[derive(Clone, PartialEq)]
pub struct Picture {
    pub uri: String,
    pub width: usize,
    pub height: usize,
}

impl fmt::Debug for Picture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Picture({}×{}, {} bytes)", self.width, self.height, self.uri.len())
    }
}

/// The int8 and fp16 maps and their difference (db).
#[derive(Debug, Clone, PartialEq)]
pub struct MapPictures {
    pub int8: Picture,
    pub fp16: Picture,
    pub diff: Picture,
    /// max |int8 − fp16| over the full-size map (the difference picture's white).
    pub diff_max: f64,
    /// Values shown black and white in the two maps.
    pub range: (f64, f64),
    /// (height, width) of the map.
    pub map_hw: (usize, usize),
}

/// The pictures of one input set.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPictures {
    pub thumbnail: Option<Picture>,
    /// (width, height) of the model input: the frame the boxes are measured in.
    pub frame: (usize, usize),
    pub caption: String,
    pub maps: Option<MapPictures>,
}

/// Captures the pictures of one input set while its data is at hand: the preview of the
/// input, and for a db task the first output (`int8`, `fp16`) as maps.
pub fn capture(task: &Task, preview: Option<&Preview>, input: &IoDesc, out: &IoDesc, int8: &[f64], fp16: &[f64]) -> InputPictures {
    let (h, w) = input_hw(input).unwrap_or((0, 0));
    let frame = preview.map_or((w, h), |p| if (w, h) == (0, 0) { (p.image.width, p.image.height) } else { (w, h) });
    let thumbnail = preview.and_then(|p| thumbnail(&p.image));
    let caption = preview.map_or_else(|| "no picture of this input".to_string(), |p| p.caption.clone());
    let maps = match task {
        Task::Db(_) => {
            let dims: Vec<usize> = out.dims.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
            match dims[..] {
                [.., mh, mw] if mh * mw > 0 && int8.len() >= mh * mw && fp16.len() >= mh * mw => {
                    map_pictures(&int8[..mh * mw], &fp16[..mh * mw], mh, mw)
                }
                _ => None,
            }
        }
        _ => None,
    };
    InputPictures { thumbnail, frame, caption, maps }
}

/// (width, height) fitting `w`×`h` into `max` on the long side (never enlarged).
fn fit(w: usize, h: usize, max: usize) -> (usize, usize) {
    let long = w.max(h);
    if long <= max {
        return (w, h);
    }
    ((w * max).div_ceil(long).max(1), (h * max).div_ceil(long).max(1))
}

/// The image shrunk to at most [`THUMB_MAX`] (triangle filter, antialiased), as a JPEG.
fn thumbnail(img: &U8Image) -> Option<Picture> {
    let (w, h) = (u32::try_from(img.width).ok()?, u32::try_from(img.height).ok()?);
    let (tw, th) = fit(img.width, img.height, THUMB_MAX);
    let filter = image::imageops::FilterType::Triangle;
    let (data, colour) = match img.channels {
        3 => {
            let src = image::RgbImage::from_raw(w, h, img.data.clone())?;
            (image::imageops::resize(&src, tw as u32, th as u32, filter).into_raw(), ExtendedColorType::Rgb8)
        }
        1 => {
            let src = image::GrayImage::from_raw(w, h, img.data.clone())?;
            (image::imageops::resize(&src, tw as u32, th as u32, filter).into_raw(), ExtendedColorType::L8)
        }
        _ => return None,
    };
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 85).write_image(&data, tw as u32, th as u32, colour).ok()?;
    Some(Picture { uri: data_uri("image/jpeg", &jpeg), width: tw, height: th })
}

/// `src` (`h`×`w`, row 0 at the top) reduced to `tw`×`th` by the mean (or the maximum) of
/// the source pixels each target pixel covers.
fn pool(src: &[f64], w: usize, h: usize, tw: usize, th: usize, max: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(tw * th);
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h).div_ceil(th).min(h));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w).div_ceil(tw).min(w));
            let cells = (y0..y1).flat_map(|y| src[y * w + x0..y * w + x1].iter().copied());
            let v = if max {
                cells.fold(f64::NEG_INFINITY, f64::max)
            } else {
                let n = ((y1 - y0) * (x1 - x0)).max(1) as f64;
                cells.sum::<f64>() / n
            };
            out.push(v);
        }
    }
    out
}

fn png(data: &[u8], w: usize, h: usize, colour: ExtendedColorType) -> Option<Picture> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes).write_image(data, w as u32, h as u32, colour).ok()?;
    Some(Picture { uri: data_uri("image/png", &bytes), width: w, height: h })
}

/// The colour map of the difference: black → red → yellow → white over 0..1.
pub const HEAT: [(f64, [u8; 3]); 4] = [(0.0, [0, 0, 0]), (0.4, [200, 0, 0]), (0.8, [255, 210, 0]), (1.0, [255, 255, 255])];

fn heat(t: f64) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    for pair in HEAT.windows(2) {
        let ((a, ca), (b, cb)) = (pair[0], pair[1]);
        if t <= b {
            let f = (t - a) / (b - a);
            return std::array::from_fn(|k| (f64::from(ca[k]) + f * (f64::from(cb[k]) - f64::from(ca[k]))).round() as u8);
        }
    }
    HEAT[HEAT.len() - 1].1
}

/// Grey pictures of the two maps (0 black, 1 white when every value is a probability; else the
/// joint min..max) and a heat picture of |int8 − fp16| scaled to its maximum. Maps are
/// shrunk by the mean, the difference by the maximum so that no spike disappears.
fn map_pictures(int8: &[f64], fp16: &[f64], h: usize, w: usize) -> Option<MapPictures> {
    let finite = || int8.iter().chain(fp16).copied().filter(|v| v.is_finite());
    let (lo, hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), v| (l.min(v), u.max(v)));
    let range = if lo >= 0.0 && hi <= 1.0 {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0), lo.min(0.0) + 1.0)
    };
    let (tw, th) = fit(w, h, MAP_MAX);
    let grey = |values: &[f64]| -> Option<Picture> {
        let small = pool(values, w, h, tw, th, false);
        let data: Vec<u8> = small
            .iter()
            .map(|v| if v.is_finite() { ((v - range.0) / (range.1 - range.0) * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 })
            .collect();
        png(&data, tw, th, ExtendedColorType::L8)
    };
    let diff: Vec<f64> = int8.iter().zip(fp16).map(|(a, b)| (a - b).abs()).collect();
    let diff_max = diff.iter().copied().fold(0.0, |m: f64, v| if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v) });
    let scale = if diff_max > 0.0 && diff_max.is_finite() { diff_max } else { 1.0 };
    let heat_data: Vec<u8> = pool(&diff, w, h, tw, th, true).iter().flat_map(|v| heat(v / scale)).collect();
    Some(MapPictures {
        int8: grey(int8)?,
        fp16: grey(fp16)?,
        diff: png(&heat_data, tw, th, ExtendedColorType::Rgb8)?,
        diff_max,
        range,
        map_hw: (h, w),
    })
}

fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64(bytes))
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The shapes one side decoded, as SVG in the frame's pixel coordinates; the number of boxes.
fn side_shapes(decoded: &Decoded, colour: &str, width: f64, dash: &str, frame: (usize, usize)) -> (String, Option<usize>) {
    let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
    let style = format!("fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"{dash} vector-effect=\"non-scaling-stroke\"");
    let mut s = String::new();
    match decoded {
        Decoded::TextBoxes(boxes) => {
            for b in boxes {
                let pts: Vec<String> = b.points.iter().map(|p| format!("{},{}", p[0], p[1])).collect();
                let _ = writeln!(s, "<polygon points=\"{}\" {style}><title>score {:.3}</title></polygon>", pts.join(" "), b.score);
            }
            (s, Some(boxes.len()))
        }
        Decoded::Detections(dets) => {
            // Labels ~11 screen pixels high whatever the frame's size.
            let font = frame.0.max(frame.1) as f64 / THUMB_MAX as f64 * 11.0;
            for d in dets {
                let [x1, y1, x2, y2] = d.bbox;
                let _ = writeln!(
                    s,
                    "<rect x=\"{x1}\" y=\"{y1}\" width=\"{}\" height=\"{}\" {style}><title>class {} score {:.3}</title></rect>",
                    (x2 - x1).max(0.0),
                    (y2 - y1).max(0.0),
                    d.class,
                    d.score
                );
                let _ = writeln!(
                    s,
                    "<text x=\"{x1}\" y=\"{}\" font-size=\"{font:.1}\" fill=\"{colour}\" stroke=\"#000\" stroke-width=\"0.6\" \
                     paint-order=\"stroke\" vector-effect=\"non-scaling-stroke\">{}</text>",
                    (f64::from(y1) - font * 0.2).max(font),
                    d.class
                );
            }
            (s, Some(dets.len()))
        }
        _ => (s, None),
    }
}

/// One input's figures: the thumbnail with every side's boxes and a legend, then (db) the
/// maps. `decoded`: side name → what it decoded (`int8`, `fp16`, `fp32`).
pub fn input_figures(p: &InputPictures, decoded: Option<&BTreeMap<String, Decoded>>) -> String {
    let mut h = String::new();
    if let Some(t) = &p.thumbnail {
        let (fw, fh) = p.frame;
        let mut shapes = String::new();
        let mut legend = String::new();
        for (side, colour, width, dash) in SIDES {
            let Some(d) = decoded.and_then(|d| d.get(side)) else { continue };
            let (svg, count) = side_shapes(d, colour, width, dash, p.frame);
            let Some(count) = count else { continue };
            shapes.push_str(&svg);
            let border = if dash.is_empty() { "solid" } else { "dashed" };
            let noun = if matches!(d, Decoded::TextBoxes(_)) { "text boxes" } else { "detections (class id)" };
            let _ = write!(
                legend,
                "<span class=\"key\"><span class=\"swatch\" style=\"border-top:{}px {border} {colour}\"></span>{side}: {count} {noun}</span> ",
                width.ceil()
            );
        }
        let _ = write!(
            h,
            "<figure class=\"boxes\"><div class=\"stack\" style=\"width:{w}px;height:{ht}px\"><img src=\"{}\" width=\"{w}\" height=\"{ht}\" alt=\"input\">\
             <svg class=\"overlay\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {fw} {fh}\" preserveAspectRatio=\"none\" width=\"{w}\" height=\"{ht}\">\n{shapes}</svg></div>\
             <figcaption>{legend}<br>{} (model input {fw}×{fh}; boxes in its pixels)</figcaption></figure>\n",
            t.uri,
            esc(&p.caption),
            w = t.width,
            ht = t.height,
        );
    }
    if let Some(m) = &p.maps {
        let (mh, mw) = m.map_hw;
        let range = format!("{}..{}", short(m.range.0), short(m.range.1));
        for (pic, what) in [
            (&m.int8, format!("int8 map ({mw}×{mh}, {range} black..white)")),
            (&m.fp16, format!("fp16 map ({mw}×{mh}, {range} black..white)")),
        ] {
            let _ = writeln!(
                h,
                "<figure class=\"map\"><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"map\"><figcaption>{what}</figcaption></figure>",
                pic.uri, pic.width, pic.height
            );
        }
        let _ = writeln!(
            h,
            "<figure class=\"map\"><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"difference\"><figcaption>|int8 − fp16|, max {} {}<br>(each pixel the max of the area it covers)</figcaption></figure>",
            m.diff.uri,
            m.diff.width,
            m.diff.height,
            short(m.diff_max),
            heat_bar(m.diff_max)
        );
    }
    h
}

/// A small inline colour bar of [`HEAT`] from 0 to `max`.
fn heat_bar(max: f64) -> String {
    let stops: String =
        HEAT.iter().map(|(t, c)| format!("<stop offset=\"{t}\" stop-color=\"rgb({},{},{})\"/>", c[0], c[1], c[2])).collect();
    format!(
        "<svg class=\"bar\" xmlns=\"http://www.w3.org/2000/svg\" width=\"150\" height=\"14\" viewBox=\"0 0 150 14\"><defs><linearGradient id=\"heat\">{stops}</linearGradient></defs>\
         <text x=\"0\" y=\"11\" font-size=\"10\">0</text><rect x=\"9\" y=\"2\" width=\"90\" height=\"10\" fill=\"url(#heat)\" stroke=\"#888\"/>\
         <text x=\"102\" y=\"11\" font-size=\"10\">{}</text></svg>",
        short(max)
    )
}

fn short(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

/// The task metric a picture of per-input agreement is drawn for.
pub fn headline_metric(task: &str) -> &'static str {
    match task {
        "cls" => "top1",
        "ctc" => "char_accuracy",
        _ => "f1",
    }
}

/// Colours of the pairs in the metric plot.
const PAIR_COLOURS: [&str; 3] = ["#d62728", "#1f77b4", "#2ca02c"];

/// An inline SVG of `metric` (0..1) per input for each pair (`(pair, value per input)`; NaN
/// or missing values are hollow marks on the bottom edge), x labelled by `indices`, and a
/// dashed line at `threshold` when the verdict is on this metric.
pub fn metric_plot(metric: &str, indices: &[usize], series: &[(&str, Vec<f64>)], threshold: Option<f64>) -> String {
    const W: f64 = 460.0;
    const H: f64 = 300.0;
    const L: f64 = 50.0;
    const R: f64 = 110.0;
    const T: f64 = 15.0;
    const B: f64 = 40.0;
    let n = indices.len().max(1);
    let x_of = |i: usize| if n == 1 { L + (W - L - R) / 2.0 } else { L + (W - L - R) * i as f64 / (n - 1) as f64 };
    // A little room above 1 and below 0 so points on the edges stay whole.
    let y_of = |v: f64| T + (H - T - B) * (1.05 - v) / 1.1;
    let mut s = format!(
        "<svg class=\"metric-plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\n\
         <rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n",
        W - L - R,
        H - T - B
    );
    for k in 0..=4 {
        let v = k as f64 / 4.0;
        let _ = writeln!(s, "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{v:.2}</text>", L - 5.0, y_of(v) + 4.0);
    }
    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        let ty = y_of(t.clamp(-0.05, 1.05));
        let _ = writeln!(
            s,
            "<line class=\"threshold\" x1=\"{L}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>",
            W - R
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">input set ({})</text>",
        (L + W - R) / 2.0,
        H - 5.0,
        esc(metric)
    );
    for (i, index) in indices.iter().enumerate() {
        if n <= 20 || i % n.div_ceil(20) == 0 {
            let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{index}</text>", x_of(i), H - B + 14.0);
        }
    }
    for (k, (pair, values)) in series.iter().enumerate() {
        let colour = PAIR_COLOURS[k % PAIR_COLOURS.len()];
        let pts: Vec<String> =
            values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v))).collect();
        if pts.len() > 1 {
            let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-opacity=\"0.5\"/>", pts.join(" "));
        }
        // Pairs share points often (F1 = 1): shift each pair's marks a little sideways.
        let dx = (k as f64 - (series.len() as f64 - 1.0) / 2.0) * 3.0;
        for (i, v) in values.iter().enumerate() {
            let (cy, style) = if v.is_finite() {
                (y_of(*v), format!("fill=\"{colour}\""))
            } else {
                (H - B, format!("fill=\"none\" stroke=\"{colour}\""))
            };
            let _ = writeln!(
                s,
                "<circle class=\"mpt\" cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"3.5\" {style}><title>input {}: {pair} {metric} {}</title></circle>",
                x_of(i) + dx,
                indices[i],
                short(*v)
            );
        }
        let y = T + 14.0 * k as f64 + 8.0;
        let _ = writeln!(s, "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\" fill=\"{colour}\"/>", W - R + 5.0, y - 7.0);
        let _ = writeln!(s, "<text x=\"{}\" y=\"{y}\" font-size=\"11\">{}</text>", W - R + 17.0, esc(pair));
    }
    s.push_str("</svg>\n");
    s
}

/// The style of the pictures, appended to the report's.
pub const STYLE: &str = ".plots{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.plots h2{margin:.2em 0}\
.pics{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start;border-top:1px solid #ddd;padding:.4em 0}\
.pics h3{flex-basis:100%;margin:.2em 0;font-size:14px}figure{margin:0}figcaption{font-size:12px;color:#333;max-width:340px}\
.stack{position:relative}.stack img,.stack svg{position:absolute;left:0;top:0}\
.key{white-space:nowrap;margin-right:.8em;font-weight:bold}.swatch{display:inline-block;width:22px;height:0;vertical-align:middle;margin-right:4px}\
figure.map figcaption{max-width:250px}svg.bar{vertical-align:middle}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn pooling_keeps_orientation_and_spikes() {
        // 4×2 map, a spike in the bottom-right pixel: row 0 stays on top, the max keeps it.
        let src = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(pool(&src, 4, 2, 2, 1, true), vec![0.0, 1.0]);
        assert_eq!(pool(&src, 4, 2, 2, 1, false), vec![0.0, 0.25]);
        assert_eq!(pool(&src, 4, 2, 4, 2, false), src.to_vec());
        assert_eq!(fit(640, 480, 320), (320, 240));
        assert_eq!(fit(100, 50, 320), (100, 50));
    }

    #[test]
    fn maps_scale_probabilities_and_report_the_largest_difference() {
        let a = vec![0.0, 0.5, 1.0, 0.25];
        let b = vec![0.0, 0.5, 0.75, 0.25];
        let m = map_pictures(&a, &b, 2, 2).unwrap();
        assert_eq!(m.range, (0.0, 1.0));
        assert_eq!(m.diff_max, 0.25);
        assert!(m.int8.uri.starts_with("data:image/png;base64,"));
        assert_eq!(heat(0.0), [0, 0, 0]);
        assert_eq!(heat(1.0), [255, 255, 255]);
    }

    #[test]
    fn minmax_preview_spans_0_to_255() {
        // 3 channels of 1×2: values -1..3 over all three planes.
        let p = minmax_preview(&[-1.0, 0.0, 1.0, 2.0, 3.0, 3.0], 3, 1, 2, "bin");
        assert_eq!(p.image.data, vec![0, 128, 255, 64, 191, 255]);
        assert!(p.caption.contains("min-max") && p.caption.contains("R, G, B"), "{}", p.caption);
    }
}

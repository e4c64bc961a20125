//! The inline SVG charts of `<prefix>_report.html`: one horizontal bar per layer (with its
//! name, for the output-level sensitivity) and one mark per layer along the graph order (the
//! drift curve, the layer-local cosine). Every mark carries a `<title>` (the browser's
//! tooltip) with the layer's name and value; non-finite values (an SQNR of +∞ when the
//! outputs are identical) are pinned to the plot edge as hollow marks, never dropped, so
//! there is always one mark per layer.

use std::fmt::Write as _;

use super::{esc, fmt_sig};

/// One layer's value in a chart.
pub struct Point<'a> {
    pub name: &'a str,
    pub op_type: &'a str,
    pub value: f64,
    /// The value as the tooltip shows it (with its unit).
    pub shown: String,
}

/// A linear map from a data interval onto a pixel interval (reversed for y).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    /// The finite values' range widened to include `include` and to nice tick steps; a flat
    /// range gets some room so the map stays defined.
    pub fn fit(values: impl Iterator<Item = f64>, include: &[f64], pixels: (f64, f64)) -> Scale {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.chain(include.iter().copied()).filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo.abs() > 1e-12 { lo.abs() * 0.01 } else { 1.0 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let step = tick_step(hi - lo);
        Scale { d0: (lo / step).floor() * step, d1: (hi / step).ceil() * step, p0: pixels.0, p1: pixels.1 }
    }

    /// Pixel position of `v`; non-finite values go to the nearer edge (NaN: the low one).
    pub fn px(&self, v: f64) -> f64 {
        let v = if v.is_nan() { self.d0 } else { v.clamp(self.d0, self.d1) };
        self.p0 + (v - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }

    /// Round values from d0 to d1, 4–10 of them.
    pub fn ticks(&self) -> Vec<f64> {
        let step = tick_step(self.d1 - self.d0);
        let n = ((self.d1 - self.d0) / step).round() as usize;
        (0..=n).map(|k| self.d0 + step * k as f64).collect()
    }
}

/// 1, 2 or 5 × 10^k, giving 4–10 intervals over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 10.0).unwrap_or(10.0 * mag)
}

/// Layer names longer than this are cut in the chart's labels (the tooltip has them whole).
const LABEL_CHARS: usize = 34;
const ROW: f64 = 13.0;

/// Horizontal bars from 0, one row per layer in graph order, labelled by name; positive bars
/// blue, negative grey. `axis` names the quantity with its unit.
pub fn bars(class: &str, axis: &str, points: &[Point]) -> String {
    const LABEL: f64 = 250.0;
    const PLOT: f64 = 560.0;
    const TOP: f64 = 34.0;
    let height = TOP + ROW * points.len() as f64 + 26.0;
    let width = LABEL + PLOT + 70.0;
    let x = Scale::fit(points.iter().map(|p| p.value), &[0.0], (LABEL, LABEL + PLOT));
    let mut s = svg_open(class, width, height);
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"12\" font-size=\"12\" text-anchor=\"middle\">{}</text>", LABEL + PLOT / 2.0, esc(axis));
    let bottom = TOP + ROW * points.len() as f64;
    for t in x.ticks() {
        let px = x.px(t);
        let _ = writeln!(s, "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{}\" y2=\"{bottom}\" stroke=\"#ddd\"/>", TOP - 4.0);
        for y in [TOP - 7.0, bottom + 12.0] {
            let _ = writeln!(s, "<text x=\"{px:.1}\" y=\"{y}\" font-size=\"10\" text-anchor=\"middle\">{}</text>", fmt_sig(t));
        }
    }
    let zero = x.px(0.0);
    for (i, p) in points.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let end = x.px(p.value);
        let (left, w) = if end >= zero { (zero, end - zero) } else { (end, zero - end) };
        let style = if !p.value.is_finite() {
            "fill=\"none\" stroke=\"#d62728\"".to_string()
        } else {
            format!("fill=\"{}\"", if p.value >= 0.0 { "#1f77b4" } else { "#999" })
        };
        let _ = writeln!(
            s,
            "<g class=\"{class}-bar\" data-value=\"{}\"><title>#{} {} ({}): {}</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" {style}/></g>",
            p.value,
            i + 1,
            esc(p.name),
            esc(p.op_type),
            esc(&p.shown),
            LABEL - 6.0,
            y + ROW - 3.0,
            esc(&cut(p.name)),
            y + 1.5,
            ROW - 3.0
        );
    }
    let _ = writeln!(s, "<line x1=\"{zero:.1}\" x2=\"{zero:.1}\" y1=\"{}\" y2=\"{bottom}\" stroke=\"#333\"/>", TOP - 4.0);
    s.push_str("</svg>\n");
    s
}

/// One mark per layer at x = its position in graph order (1-based), joined by a line when
/// `line`; `y_axis` names the quantity with its unit.
pub fn along_graph(class: &str, y_axis: &str, points: &[Point], line: bool) -> String {
    const W: f64 = 820.0;
    const H: f64 = 280.0;
    const L: f64 = 62.0;
    const R: f64 = 16.0;
    const T: f64 = 12.0;
    const B: f64 = 44.0;
    let n = points.len().max(1);
    let x_of = |i: usize| if n == 1 { (L + W - R) / 2.0 } else { L + (W - L - R) * i as f64 / (n - 1) as f64 };
    let y = Scale::fit(points.iter().map(|p| p.value), &[], (H - B, T));
    let mut s = svg_open(class, W, H);
    let _ = writeln!(s, "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>", W - L - R, H - T - B);
    for t in y.ticks() {
        let py = y.px(t);
        let _ = writeln!(s, "<line x1=\"{L}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e4e4e4\"/>", W - R);
        let _ = writeln!(s, "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>", L - 4.0, py + 3.5, fmt_sig(t));
    }
    // About 20 x labels, whatever the number of layers: 1, multiples of `every`, and the last
    // one unless a label sits right beside it.
    let every = n.div_ceil(20);
    let labelled = |i: usize| i == 0 || (i + 1).is_multiple_of(every) || (i + 1 == n && (i + 1) % every >= every.div_ceil(2));
    for i in (0..n).filter(|&i| labelled(i)) {
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>", x_of(i), H - B + 14.0, i + 1);
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">layer (graph order)</text>",
        (L + W - R) / 2.0,
        H - 6.0
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(13,{:.1}) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        (T + H - B) / 2.0,
        esc(y_axis)
    );
    if line {
        let pts: Vec<String> = points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x_of(i), y.px(p.value))).collect();
        let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-opacity=\"0.6\"/>", pts.join(" "));
    }
    for (i, p) in points.iter().enumerate() {
        let style = if p.value.is_finite() { "fill=\"#1f77b4\"" } else { "fill=\"#fff\" stroke=\"#d62728\"" };
        let _ = writeln!(
            s,
            "<circle class=\"{class}-pt\" data-value=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" {style}><title>#{} {} ({}): {}</title></circle>",
            p.value,
            x_of(i),
            y.px(p.value),
            i + 1,
            esc(p.name),
            esc(p.op_type),
            esc(&p.shown)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn svg_open(class: &str, width: f64, height: f64) -> String {
    format!(
        "<svg class=\"{class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"sans-serif\">\n"
    )
}

/// The first [`LABEL_CHARS`] characters, with an ellipsis when cut.
fn cut(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        name.to_string()
    } else {
        let head: String = name.chars().take(LABEL_CHARS - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(el: &str, name: &str) -> f64 {
        let el = format!(" {el}");
        let key = format!(" {name}=\"");
        let at = el.find(&key).unwrap_or_else(|| panic!("no {name} in {el}")) + key.len();
        el[at..at + el[at..].find('"').unwrap()].parse().unwrap()
    }

    fn points(values: &[f64]) -> Vec<Point<'static>> {
        values.iter().map(|&value| Point { name: "L", op_type: "Conv", value, shown: value.to_string() }).collect()
    }

    #[test]
    fn one_bar_per_layer_and_longer_bars_for_larger_values() {
        let values = [0.5, 3.0, -1.0, 7.25, 0.0, 2.0];
        let svg = bars("sens", "dB", &points(&values));
        let rects: Vec<&str> = svg.split("<rect ").skip(1).collect();
        assert_eq!(svg.matches("class=\"sens-bar\"").count(), values.len());
        assert_eq!(rects.len(), values.len());
        // The bar's far end moves right as the value grows, through the zero line.
        let mut ends: Vec<(f64, f64)> =
            values.iter().zip(&rects).map(|(&v, r)| (v, if v >= 0.0 { attr(r, "x") + attr(r, "width") } else { attr(r, "x") })).collect();
        ends.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(ends.windows(2).all(|w| w[0].1 < w[1].1), "{ends:?}");
        let zero = ends.iter().find(|e| e.0 == 0.0).unwrap().1;
        assert!(ends.iter().all(|e| (e.0 < 0.0) == (e.1 < zero)), "{ends:?}");
    }

    #[test]
    fn points_rise_with_their_values_and_non_finite_ones_stay_on_the_edge() {
        let values = [10.0, 12.5, 9.0, f64::INFINITY, f64::NAN, 30.0];
        let svg = along_graph("drift", "dB", &points(&values), true);
        let circles: Vec<&str> = svg.split("<circle ").skip(1).collect();
        assert_eq!(circles.len(), values.len());
        assert_eq!(svg.matches("class=\"drift-pt\"").count(), values.len());
        let y: Vec<f64> = circles.iter().map(|c| attr(c, "cy")).collect();
        let x: Vec<f64> = circles.iter().map(|c| attr(c, "cx")).collect();
        assert!(x.windows(2).all(|w| w[0] < w[1]), "graph order left to right: {x:?}");
        // SVG y grows downwards: a larger value sits higher.
        assert!(y[1] < y[0] && y[0] < y[2] && y[5] < y[1], "{y:?}");
        assert!(y[3] <= y[5] && y[4] >= y[2], "+∞ on top, NaN at the bottom: {y:?}");
        assert!(circles[3].contains("stroke=\"#d62728\"") && circles[4].contains("stroke=\"#d62728\""));
    }

    #[test]
    fn scales_cover_their_values_with_round_ticks() {
        let s = Scale::fit([0.9931, 0.99995].into_iter(), &[], (0.0, 100.0));
        let t = s.ticks();
        assert!(t[0] <= 0.9931 && *t.last().unwrap() >= 0.99995 && (4..=11).contains(&t.len()), "{t:?}");
        let flat = Scale::fit([5.0, 5.0].into_iter(), &[], (0.0, 100.0));
        assert!(flat.px(5.0).is_finite() && flat.px(5.0) > 0.0 && flat.px(5.0) < 100.0);
        let empty = Scale::fit(std::iter::empty(), &[], (0.0, 100.0));
        assert_eq!(empty.px(0.0), 0.0);
    }
}

//! `<prefix>_report.html`: the calibration's per-layer account for a person to read, written
//! beside `<prefix>_quant_report.json` on every calibration. One self-contained page (inline
//! CSS and SVG, no script, no external request) rendered from the in-memory
//! [`QuantReport`] and, with `--sensitivity`, the [`Sensitivity`] analysis:
//! - what was calibrated: model, input shape, data, calibration and evaluation batches (and
//!   whether the evaluation batches are held out), tool version;
//! - the fake-quant vs float agreement per model output (cosine, SQNR, max abs error) and the
//!   `--task` metrics (mean / worst);
//! - the int8 share of quantizable MACs: the quantized layers' MACs over those of every
//!   candidate layer (quantized or left float, [`super::select`]); MACs are weight elements ×
//!   output positions ([`super::sensitivity::node_macs`]; 0 for AveragePool);
//! - the layers left float, each with its reason;
//! - charts: with `--sensitivity`, the output SQNR gained by leaving each layer float (vs
//!   all-int8) and the drift curve (output SQNR with layers 1..k int8); always, the
//!   layer-local cosine;
//! - one row per quantized layer: MACs, scale_d, clip range, weight scale range, algorithm,
//!   local cosine, and the sensitivity trials.
//!
//! Every name read from the model is HTML-escaped. The numbers are the JSON report's; exact
//! values of scale_d and MACs are in the cells' `title`.

mod charts;

use std::collections::HashMap;
use std::fmt::Write as _;

use super::calibrate::Result;
use super::report::{FloatLayer, LayerReport, QuantReport};
use super::select::Candidate;
use super::sensitivity::{LayerSensitivity, Sensitivity, Trial, node_macs};
use crate::onnx::proto::ModelProto;
use crate::onnx::shapes::infer_shapes;
use charts::Point;

/// MACs of every candidate layer, quantized or left float, by layer name
/// ([`node_macs`] of the float weight: it has the int8 one's element count, a Gemm transpose
/// keeps it; 0 for AveragePool, which has no weight).
pub fn candidate_macs(model: &ModelProto, candidates: &[Candidate], shapes: &HashMap<String, Vec<i64>>) -> Result<HashMap<String, u64>> {
    let inferred = infer_shapes(model, shapes)?;
    let Some(graph) = model.graph.as_ref() else { return Ok(HashMap::new()) };
    Ok(candidates
        .iter()
        .map(|c| {
            let weight = (c.op_type != "AveragePool").then(|| graph.node.get(c.node)?.input.get(1)).flatten();
            let dims = weight.and_then(|w| inferred.shape(w));
            (c.name.clone(), node_macs(model, c.node, dims, &inferred))
        })
        .collect())
}

/// The page.
pub fn render(report: &QuantReport, sensitivity: Option<&Sensitivity>, macs: &HashMap<String, u64>) -> String {
    let model_name = std::path::Path::new(&report.model).file_name().map_or(report.model.clone(), |f| f.to_string_lossy().into_owned());
    let title = format!("ascend-ptq calibration report: {model_name}");
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    h.push_str(&facts(report));
    h.push_str(&agreement(report, sensitivity));
    h.push_str(&fallback_section(report));
    h.push_str(&mac_share(report, macs));
    h.push_str(&float_layers(&report.float_layers, macs));
    h.push_str(&charts_section(report, sensitivity));
    h.push_str(&layer_table(report, sensitivity, macs));
    h.push_str(
        "<p class=\"note\">SQNR = 10·log10(Σ float² / Σ (float − fake-quant)²) over the evaluation batches. Layer-local cosine: \
         the layer's fake-quant output vs its float output given the same float input (calibration data). \
         MACs: weight elements × output positions of one inference.</p>\n</body></html>\n",
    );
    h
}

fn facts(r: &QuantReport) -> String {
    let mut h = String::from("<table class=\"facts\">\n");
    let evaluation = match (&r.eval_data_dir, r.eval_batches) {
        (_, 0) => "none (no quantized layer, or --eval_batches 0)".to_string(),
        (Some(dir), n) => format!("{n} held-out batch(es) from {dir}"),
        (None, n) => format!("{n} calibration batch(es): NOT held out"),
    };
    let rows = [
        ("model", r.model.clone()),
        ("input shape", r.input_shape.clone()),
        ("data dir", r.data_dir.clone()),
        ("data types", r.data_types.clone()),
        ("calibration batches", r.batch_num.to_string()),
        ("evaluation", evaluation),
        ("layers", format!("{} int8, {} left float", r.quantized_layers.len(), r.float_layers.len())),
        (
            "graph rewrites",
            format!(
                "{} BatchNorm folded, {} depthwise inputs equalized, {} biases corrected, {} activation clips changed by output scoring",
                r.fused_batch_norms.len(),
                r.equalized.len(),
                r.bias_correction.len(),
                r.output_clip.iter().filter(|c| c.factor != 1.0).count()
            ),
        ),
        ("tool", r.tool.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    h.push_str("</table>\n");
    if r.eval_data_dir.is_none() && r.eval_batches > 0 {
        h.push_str(
            "<p class=\"warn\" id=\"not-held-out\">The accuracy numbers below are measured on calibration batches, which the scales \
             were fitted on: they are not held out and flatter the result. Give --eval_data_dir with other inputs for numbers to trust.</p>\n",
        );
    }
    h
}

fn agreement(r: &QuantReport, sensitivity: Option<&Sensitivity>) -> String {
    let mut h = String::from("<h2>Fake-quant vs float model outputs</h2>\n");
    if r.outputs.is_empty() {
        h.push_str("<p>Not evaluated.</p>\n");
        return h;
    }
    h.push_str("<table class=\"metrics\" id=\"outputs\"><tr><th>output</th><th>cosine</th><th>SQNR (dB)</th><th>max abs error</th><th>max abs float</th></tr>\n");
    for o in &r.outputs {
        let _ = writeln!(
            h,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.output),
            fmt_cos(o.cosine),
            fmt_db(o.sqnr_db),
            fmt_sig(o.max_abs_error),
            fmt_sig(o.max_abs_reference)
        );
    }
    h.push_str("</table>\n");
    if let Some(t) = &r.task_agreement {
        let _ = writeln!(
            h,
            "<p>Task {} on {} over {} batch(es), float as the truth; {} vs {} boxes/items (fake-quant vs float):</p>\n\
             <table class=\"metrics\" id=\"task\"><tr><th>metric</th><th>mean</th><th>worst</th></tr>",
            esc(&t.task),
            esc(&t.output),
            t.batches,
            t.count_fake_quant,
            t.count_float
        );
        for (k, mean) in &t.mean {
            let worst = t.worst.get(k).copied().unwrap_or(f64::NAN);
            let _ = writeln!(h, "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td></tr>", esc(k), fmt_sig(*mean), fmt_sig(worst));
        }
        h.push_str("</table>\n");
    }
    if let Some(s) = sensitivity {
        let _ = writeln!(
            h,
            "<p class=\"note\">Sensitivity trials below: output {} on {} {} batch(es); all layers int8: cosine {}, SQNR {} dB.</p>",
            esc(&s.output),
            s.eval_batches,
            if s.eval_held_out { "held-out" } else { "calibration (not held-out)" },
            fmt_cos(s.all_int8.cosine),
            fmt_db(s.all_int8.sqnr_db)
        );
    }
    h
}

/// With `--accuracy_target`: the model before (all int8) and after the fallback.
fn fallback_section(r: &QuantReport) -> String {
    let Some(f) = &r.fallback else { return String::new() };
    let mut h = format!(
        "<h2>Accuracy fallback to {}</h2>\n<p>{} layer(s) left float after {} trials ({}).</p>\n\
         <table class=\"metrics\" id=\"fallback\"><tr><th>model</th><th>cosine</th><th>SQNR (dB)</th><th>task metrics (mean)</th></tr>\n",
        esc(&f.target),
        f.float_layers.len(),
        f.trials,
        esc(f.method)
    );
    for (label, t) in [("before: every layer int8", &f.all_int8), ("after: the fallback", &f.result)] {
        let task = t
            .task
            .as_ref()
            .map_or(String::new(), |a| a.mean.iter().map(|(k, v)| format!("{k} {}", fmt_sig(*v))).collect::<Vec<_>>().join(", "));
        let _ = writeln!(h, "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td></tr>", fmt_cos(t.cosine), fmt_db(t.sqnr_db), esc(&task));
    }
    h.push_str("</table>\n");
    h
}

/// (int8 MACs, MACs of all candidate layers).
fn mac_totals(r: &QuantReport, macs: &HashMap<String, u64>) -> (u64, u64) {
    let of = |name: &str| macs.get(name).copied().unwrap_or(0);
    let int8: u64 = r.quantized_layers.iter().map(|l| of(&l.name)).sum();
    (int8, int8 + r.float_layers.iter().map(|f| of(&f.name)).sum::<u64>())
}

fn mac_share(r: &QuantReport, macs: &HashMap<String, u64>) -> String {
    let (int8, all) = mac_totals(r, macs);
    let share =
        if all == 0 { "n/a (no MACs in quantizable layers)".to_string() } else { format!("{:.1} %", 100.0 * int8 as f64 / all as f64) };
    format!(
        "<p class=\"share\" id=\"mac-share\" data-int8-macs=\"{int8}\" data-quantizable-macs=\"{all}\">int8 share of quantizable MACs: \
         <b>{share}</b> ({} of {} MACs per inference)</p>\n",
        fmt_macs(int8),
        fmt_macs(all)
    )
}

fn float_layers(layers: &[FloatLayer], macs: &HashMap<String, u64>) -> String {
    let mut h = format!("<h2>Layers left float ({})</h2>\n", layers.len());
    if layers.is_empty() {
        h.push_str("<p>None: every candidate layer is int8.</p>\n");
        return h;
    }
    h.push_str("<table class=\"metrics\" id=\"float-layers\"><tr><th>layer</th><th>op type</th><th>MACs</th><th>reason</th></tr>\n");
    for f in layers {
        let m = macs.get(&f.name).copied().unwrap_or(0);
        let _ = writeln!(
            h,
            "<tr><td class=\"name\">{}</td><td>{}</td><td title=\"{m}\">{}</td><td class=\"name\">{}</td></tr>",
            esc(&f.name),
            esc(&f.op_type),
            fmt_macs(m),
            esc(&f.reason)
        );
    }
    h.push_str("</table>\n");
    h
}

fn point<'a>(l: &'a LayerReport, value: f64, shown: String) -> Point<'a> {
    Point { name: &l.name, op_type: &l.op_type, value, shown }
}

fn charts_section(r: &QuantReport, sensitivity: Option<&Sensitivity>) -> String {
    let mut h = String::from("<h2>Per layer, in graph order</h2>\n");
    let layers = &r.quantized_layers;
    match sensitivity {
        Some(s) => {
            let base = s.all_int8.sqnr_db;
            let gains: Vec<Point> = layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let v = sens_of(s, i, &l.name).map_or(f64::NAN, |t| t.left_float.sqnr_db - base);
                    point(l, v, format!("{} dB gained when left float", fmt_db(v)))
                })
                .collect();
            let _ = writeln!(
                h,
                "<h3>Output-level sensitivity: what leaving one layer float gives back</h3>\n<div class=\"chart\">{}</div>",
                charts::bars(
                    "sens",
                    &format!("output SQNR gain when this layer alone is left float (dB, vs all-int8 {} dB)", fmt_db(base)),
                    &gains
                )
            );
            let drift: Vec<Point> = layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let v = sens_of(s, i, &l.name).map_or(f64::NAN, |t| t.drift.sqnr_db);
                    point(l, v, format!("layers 1..{} int8: output SQNR {} dB", i + 1, fmt_db(v)))
                })
                .collect();
            let _ = writeln!(
                h,
                "<h3>Drift: output SQNR with layers 1..k int8, the rest float</h3>\n<div class=\"chart\">{}</div>",
                charts::along_graph("drift", "output SQNR (dB)", &drift, true)
            );
        }
        None => h.push_str("<p class=\"note\">Run with --sensitivity for the output-level sensitivity and the drift curve.</p>\n"),
    }
    if layers.iter().any(|l| l.cosine.is_some()) {
        let cos: Vec<Point> = layers
            .iter()
            .map(|l| {
                let v = l.cosine.unwrap_or(f64::NAN);
                point(l, v, format!("layer-local cosine {}", fmt_cos(v)))
            })
            .collect();
        let _ = writeln!(
            h,
            "<h3>Layer-local cosine (fake-quant layer output vs float, same float input)</h3>\n<div class=\"chart\">{}</div>",
            charts::along_graph("local", "layer-local cosine", &cos, false)
        );
    }
    h
}

/// The layer's sensitivity entry: the same position in graph order, else the same name.
fn sens_of<'a>(s: &'a Sensitivity, i: usize, name: &str) -> Option<&'a LayerSensitivity> {
    s.layers.get(i).filter(|l| l.name == name).or_else(|| s.layers.iter().find(|l| l.name == name))
}

fn layer_table(r: &QuantReport, sensitivity: Option<&Sensitivity>, macs: &HashMap<String, u64>) -> String {
    let metric = r.task_agreement.as_ref().map(|t| crate::compare::pictures::headline_metric(&t.task));
    let mut h = String::from(
        "<h3>Quantized layers</h3>\n<div class=\"wide\"><table class=\"metrics\" id=\"layers\"><thead><tr><th>#</th><th>layer</th>\
         <th>op type</th><th>MACs</th><th>scale_d</th><th>clip range</th><th>scale_w range</th><th>act algo</th><th>weights</th>\
         <th>local cosine</th>",
    );
    if sensitivity.is_some() {
        h.push_str(
            "<th>alone: cosine</th><th>alone: SQNR dB</th><th>left float: cosine</th><th>left float: SQNR dB</th><th>drift: SQNR dB</th>",
        );
        if let Some(m) = metric {
            let _ = write!(h, "<th>alone: {m}</th><th>left float: {m}</th>");
        }
    }
    h.push_str("</tr></thead>\n");
    for (i, l) in r.quantized_layers.iter().enumerate() {
        let m = macs.get(&l.name).copied().unwrap_or(0);
        let (w_lo, w_hi) = l.scale_w.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &w| (a.min(w), b.max(w)));
        let scale_w = match l.scale_w.len() {
            0 => "—".to_string(),
            1 => fmt_sig(w_lo as f64),
            n => format!("{} … {} ({n} ch)", fmt_sig(w_lo as f64), fmt_sig(w_hi as f64)),
        };
        let _ = write!(
            h,
            "<tr data-layer=\"{}\"><td>{}</td><td class=\"name\">{}</td><td>{}</td><td title=\"{m}\">{}</td><td class=\"scale-d\" title=\"{}\">{}</td>\
             <td>[{}, {}]</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td>",
            esc(&l.name),
            i + 1,
            esc(&l.name),
            esc(&l.op_type),
            fmt_macs(m),
            l.scale_d,
            fmt_sig(l.scale_d as f64),
            fmt_sig(l.clip_min as f64),
            fmt_sig(l.clip_max as f64),
            scale_w,
            esc(&l.act_algo),
            esc(&l.wts_algo),
            l.weight_rounding,
            l.cosine.map_or("—".into(), fmt_cos)
        );
        if let Some(s) = sensitivity {
            match sens_of(s, i, &l.name) {
                Some(t) => {
                    for trial in [&t.alone, &t.left_float] {
                        let _ = write!(h, "<td>{}</td><td>{}</td>", fmt_cos(trial.cosine), fmt_db(trial.sqnr_db));
                    }
                    let _ = write!(h, "<td>{}</td>", fmt_db(t.drift.sqnr_db));
                    if let Some(m) = metric {
                        let _ = write!(h, "<td>{}</td><td>{}</td>", task_value(&t.alone, m), task_value(&t.left_float, m));
                    }
                }
                None => h.push_str("<td colspan=\"5\">not analysed</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></div>\n");
    h
}

fn task_value(t: &Trial, metric: &str) -> String {
    t.task.as_ref().and_then(|a| a.mean.get(metric)).map_or("—".into(), |v| fmt_sig(*v))
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}h2{margin:1.2em 0 .4em}h3{margin:1em 0 .3em;font-size:15px}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right}\
th{background:#eee}thead th{position:sticky;top:0}.facts td,.facts th,td.name{text-align:left}\
td.name{max-width:40em;overflow-wrap:anywhere}#layers td{white-space:nowrap}#layers td.name{max-width:none}.note{color:#555;font-size:12px}.warn{color:#a40;font-weight:bold;font-size:13px}\
.share{font-size:15px}.wide{overflow-x:auto}.chart{overflow-x:auto}svg text{fill:#222}";

/// HTML-escapes text and attribute values (both quote kinds).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Four significant digits, trailing zeros dropped; tiny and huge values in e-notation.
fn fmt_sig(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+∞".into() } else { "−∞".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 1e-3 || v.abs() >= 1e6 {
        return format!("{v:.3e}");
    }
    let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn fmt_db(v: f64) -> String {
    if v.is_finite() { format!("{v:.2}") } else { fmt_sig(v) }
}

fn fmt_cos(v: f64) -> String {
    if v.is_finite() { format!("{v:.6}") } else { fmt_sig(v) }
}

fn fmt_macs(m: u64) -> String {
    match m {
        0..1_000 => m.to_string(),
        1_000..1_000_000 => format!("{:.2} K", m as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", m as f64 / 1e6),
        _ => format!("{:.2} G", m as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests;

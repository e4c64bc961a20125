//! The comparison report: `OUT.json` (everything, per input and aggregated) and a
//! self-contained `OUT.html` (tables and an inline SVG plot of the cosine similarity per
//! input and output, with the threshold line; no external assets). NaN metrics (msaccucmp's
//! "NaN", e.g. an all-zero output) are `null` in the JSON and "NaN" in the HTML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::CompareError;
use super::flow::below;
use super::metrics::Metrics;
use super::pictures;
use super::runner::IoDType;
use super::task::{TASK_METRICS, TaskRow, metric as task_metric};
use crate::tasks::TaskMetrics;

/// Mean over the input sets and the worst value (minimum for the cosine, maximum otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub worst: f64,
}

/// The ten metrics of one output aggregated over all input sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    pub cosine_similarity: Stat,
    pub max_absolute_error: Stat,
    pub accumulated_relative_error: Stat,
    pub relative_euclidean_distance: Stat,
    pub kullback_leibler_divergence: Stat,
    /// Mean over the input sets of (mean, std) of x and of y.
    pub standard_deviation: [(f64, f64); 2],
    pub mean_absolute_error: Stat,
    pub root_mean_square_error: Stat,
    pub max_relative_error: Stat,
    pub mean_relative_error: Stat,
}

/// NaN-propagating mean and worst of `values`.
fn stat(values: impl Iterator<Item = f64> + Clone, lower_is_worse: bool) -> Stat {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let worst = values.fold(if lower_is_worse { f64::INFINITY } else { f64::NEG_INFINITY }, |w, v| {
        if w.is_nan() || v.is_nan() {
            f64::NAN
        } else if lower_is_worse {
            w.min(v)
        } else {
            w.max(v)
        }
    });
    Stat { mean, worst }
}

impl Aggregate {
    /// Aggregates per-input metrics (at least one).
    pub fn of(metrics: &[Metrics]) -> Aggregate {
        let it = || metrics.iter();
        let n = metrics.len().max(1) as f64;
        let mut sd = [(0.0, 0.0); 2];
        for m in metrics {
            for (acc, v) in sd.iter_mut().zip(m.standard_deviation) {
                acc.0 += v.0 / n;
                acc.1 += v.1 / n;
            }
        }
        Aggregate {
            cosine_similarity: stat(it().map(|m| m.cosine_similarity), true),
            max_absolute_error: stat(it().map(|m| m.max_absolute_error), false),
            accumulated_relative_error: stat(it().map(|m| m.accumulated_relative_error), false),
            relative_euclidean_distance: stat(it().map(|m| m.relative_euclidean_distance), false),
            kullback_leibler_divergence: stat(it().map(|m| m.kullback_leibler_divergence), false),
            standard_deviation: sd,
            mean_absolute_error: stat(it().map(|m| m.mean_absolute_error), false),
            root_mean_square_error: stat(it().map(|m| m.root_mean_square_error), false),
            max_relative_error: stat(it().map(|m| m.max_relative_error), false),
            mean_relative_error: stat(it().map(|m| m.mean_relative_error), false),
        }
    }
}

/// One model output over all input sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputSummary {
    pub name: String,
    pub elements: usize,
    pub int8_dtype: IoDType,
    pub fp16_dtype: IoDType,
    /// x = int8 OM, y = fp16 OM (the verdict's comparison).
    pub int8_vs_fp16: Aggregate,
    /// x = int8 OM, y = our engine's fp32 output of the reference model.
    pub int8_vs_fp32: Option<Aggregate>,
    /// x = fp16 OM, y = the fp32 reference.
    pub fp16_vs_fp32: Option<Aggregate>,
}

/// The metrics of one output for one input set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputMetrics {
    pub output: String,
    pub int8_vs_fp16: Metrics,
    pub int8_vs_fp32: Option<Metrics>,
    pub fp16_vs_fp32: Option<Metrics>,
}

/// One input set and its metrics per output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputRow {
    pub index: usize,
    pub label: String,
    pub outputs: Vec<OutputMetrics>,
    /// `--task`: the first output decoded on each side and compared in the task's terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<super::task::TaskRow>,
    /// `--task`: the input and (db) maps as small pictures, for the HTML only.
    #[serde(skip)]
    pub pictures: Option<super::pictures::InputPictures>,
}

/// An (input set, output) whose int8-vs-fp16 cosine is below the threshold or NaN.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub input: usize,
    pub label: String,
    pub output: String,
    pub cosine_similarity: f64,
}

/// Files and labels the caller knows (model paths); shown in the report as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sources {
    pub int8_model: Option<String>,
    pub fp16_model: Option<String>,
    pub reference_model: Option<String>,
    pub inputs: Option<String>,
}

/// Everything a comparison found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    /// "ascend-ptq X.Y.Z".
    pub tool: String,
    /// Where each OM ran, as its runner names it (a simulator says so).
    pub int8_device: String,
    pub fp16_device: String,
    pub sources: Sources,
    /// The int8-vs-fp16 cosine similarity every (input, output) must reach.
    pub threshold: f64,
    /// What the verdict is judged on: `cosine>=T` or a task metric (`f1>=0.95`).
    pub criterion: String,
    pub pass: bool,
    /// One sentence: the verdict and why.
    pub verdict: String,
    pub failures: Vec<Failure>,
    pub outputs: Vec<OutputSummary>,
    pub inputs: Vec<InputRow>,
    pub notes: Vec<String>,
    /// Failed releases of device objects (`aclrtFree`, `aclmdlUnload`, ...) while the comparison
    /// tore down, as "aclrtFree failed: 500001 ACL_ERROR_FAILURE (...)". Not part of the
    /// verdict (the outputs were read before), but shown: the device may be left unclean.
    pub teardown_errors: Vec<String>,
    /// `--task`: mean and worst task metrics over the input sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<super::task::TaskSummary>,
}

/// `OUT` → (`OUT.json`, `OUT.html`); an `OUT` ending in `.json` or `.html` loses that suffix.
pub fn report_paths(out: &Path) -> (PathBuf, PathBuf) {
    let text = out.as_os_str().to_string_lossy();
    let stem = [".json", ".html"].iter().find_map(|s| text.strip_suffix(s)).unwrap_or(&text).to_string();
    (PathBuf::from(format!("{stem}.json")), PathBuf::from(format!("{stem}.html")))
}

impl CompareReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// Writes `OUT.json` and `OUT.html` atomically; returns their paths.
    pub fn write(&self, out: &Path) -> Result<(PathBuf, PathBuf), CompareError> {
        let (json, html) = report_paths(out);
        for (path, text) in [(&json, self.to_json()), (&html, self.to_html())] {
            crate::onnx::io::write_atomically(path, text.as_bytes())
                .map_err(|e| CompareError::Io { path: path.clone(), detail: e.to_string() })?;
        }
        Ok((json, html))
    }

    /// Writes OUT.csv (the metrics in msaccucmp's names, [`super::csv`]) beside the report.
    pub fn write_csv(&self, out: &Path) -> Result<PathBuf, CompareError> {
        let csv = report_paths(out).0.with_extension("csv");
        crate::onnx::io::write_atomically(&csv, super::csv::to_csv(self).as_bytes())
            .map_err(|e| CompareError::Io { path: csv.clone(), detail: e.to_string() })?;
        Ok(csv)
    }

    /// The self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let title = format!("ascend-ptq compare: int8 vs fp16 on {}", self.int8_device);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}{}</style></head><body>\n",
            esc(&title),
            pictures::STYLE
        );
        let _ = writeln!(h, "<h1>{}</h1>", esc(&title));
        let verdict_class = if self.pass { "pass" } else { "fail" };
        let _ = writeln!(h, "<p class=\"verdict {verdict_class}\">{}</p>", esc(&self.verdict));
        h.push_str("<table class=\"facts\">\n");
        let mut fact = |k: &str, v: &str| {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        };
        fact("int8 model runs on", &self.int8_device);
        fact("fp16 model runs on", &self.fp16_device);
        for (k, v) in [
            ("int8 model", &self.sources.int8_model),
            ("fp16 model", &self.sources.fp16_model),
            ("fp32 reference (our CPU engine)", &self.sources.reference_model),
            ("inputs", &self.sources.inputs),
        ] {
            if let Some(v) = v {
                fact(k, v);
            }
        }
        fact("cosine threshold", &num(self.threshold));
        fact("verdict on", &self.criterion);
        fact("input sets", &self.inputs.len().to_string());
        fact("tool", &self.tool);
        h.push_str("</table>\n");
        for note in &self.notes {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(note));
        }
        for error in &self.teardown_errors {
            let _ = writeln!(h, "<p class=\"teardown\">ACL teardown error (not an accuracy result): {}</p>", esc(error));
        }

        if let Some(t) = &self.task {
            h.push_str(&task_table(t));
        }
        h.push_str("<div class=\"plots\"><div><h2>Cosine similarity per input (int8 vs fp16)</h2>\n");
        h.push_str(&self.svg_plot());
        h.push_str("</div>\n");
        if let Some(plot) = self.metric_plot() {
            h.push_str(&plot);
        }
        h.push_str("</div>\n");
        h.push_str(&self.pictures());

        h.push_str("<h2>Per output, over all inputs</h2>\n");
        h.push_str(&self.aggregate_table());

        h.push_str("<h2>Per input</h2>\n");
        h.push_str(&self.input_table());
        h.push_str("<p class=\"note\">x = first model of the pair, y = second (golden); metric definitions as msaccucmp (CANN operator comparison tool). NaN: a side is all zero or holds NaN.</p>\n");
        h.push_str("</body></html>\n");
        h
    }

    /// `--task`: the task metric per input and pair, beside the cosine plot.
    fn metric_plot(&self) -> Option<String> {
        let t = self.task.as_ref()?;
        let on_metric = TASK_METRICS.iter().find(|m| self.criterion.starts_with(&format!("{m}>=")));
        let metric = on_metric.copied().unwrap_or(pictures::headline_metric(&t.task));
        let rows: Vec<(usize, &TaskRow)> = self.inputs.iter().filter_map(|r| Some((r.index, r.task.as_ref()?))).collect();
        let value = |m: Option<&TaskMetrics>| m.and_then(|m| task_metric(m, metric)).unwrap_or(f64::NAN);
        let mut series = vec![("int8 vs fp16", rows.iter().map(|(_, r)| value(Some(&r.int8_vs_fp16))).collect::<Vec<_>>())];
        if rows.iter().any(|(_, r)| r.int8_vs_fp32.is_some()) {
            series.push(("int8 vs fp32", rows.iter().map(|(_, r)| value(r.int8_vs_fp32.as_ref())).collect()));
            series.push(("fp16 vs fp32", rows.iter().map(|(_, r)| value(r.fp16_vs_fp32.as_ref())).collect()));
        }
        if series[0].1.iter().all(|v| v.is_nan()) {
            return None;
        }
        let threshold = match self.criterion.split_once(">=") {
            Some((m, v)) if m == metric => v.parse().ok(),
            _ => None,
        };
        let indices: Vec<usize> = rows.iter().map(|(i, _)| *i).collect();
        Some(format!(
            "<div><h2>{} per input ({}; second of each pair as truth)</h2>\n{}</div>\n",
            esc(metric),
            esc(&t.task),
            pictures::metric_plot(metric, &indices, &series, threshold)
        ))
    }

    /// `--task`: per input, the thumbnail with each side's boxes and (db) the maps.
    fn pictures(&self) -> String {
        if self.inputs.iter().all(|r| r.pictures.is_none()) {
            return String::new();
        }
        let mut h = String::from("<h2>Per input: what each side found</h2>\n");
        for row in &self.inputs {
            let Some(p) = &row.pictures else { continue };
            let mut said = String::new();
            if let Some(t) = &row.task {
                let metric = self.task.as_ref().map_or("f1", |s| pictures::headline_metric(&s.task));
                let values: Vec<String> = [("int8 vs fp16", Some(&t.int8_vs_fp16)), ("int8 vs fp32", t.int8_vs_fp32.as_ref())]
                    .into_iter()
                    .filter_map(|(pair, m)| Some(format!("{pair} {}", num(task_metric(m?, metric)?))))
                    .collect();
                if !values.is_empty() {
                    said = format!("{metric}: {}", values.join(", "));
                }
            }
            let _ = writeln!(
                h,
                "<div class=\"pics\" data-input=\"{}\"><h3>#{} {} <small>{}</small></h3>",
                row.index,
                row.index,
                esc(&row.label),
                esc(said.trim())
            );
            h.push_str(&pictures::input_figures(p, row.task.as_ref().map(|t| &t.decoded)));
            h.push_str("</div>\n");
        }
        h
    }

    fn pairs(&self) -> Vec<&'static str> {
        let mut p = vec!["int8 vs fp16"];
        if self.outputs.iter().any(|o| o.int8_vs_fp32.is_some()) {
            p.extend(["int8 vs fp32", "fp16 vs fp32"]);
        }
        p
    }

    fn aggregate_table(&self) -> String {
        let mut h = String::from("<table class=\"metrics\">\n<tr><th>output</th><th>pair</th>");
        for name in AGG_COLUMNS {
            let _ = write!(h, "<th>{name}</th>");
        }
        h.push_str("</tr>\n");
        for o in &self.outputs {
            let aggs = [Some(&o.int8_vs_fp16), o.int8_vs_fp32.as_ref(), o.fp16_vs_fp32.as_ref()];
            for (pair, agg) in self.pairs().iter().zip(aggs) {
                let Some(a) = agg else { continue };
                let low = *pair == "int8 vs fp16" && below(a.cosine_similarity.worst, self.threshold);
                let _ = write!(h, "<tr><td>{} <small>({} elements)</small></td><td>{pair}</td>", esc(&o.name), o.elements);
                let cos_class = if low { " class=\"low\"" } else { "" };
                let _ = write!(
                    h,
                    "<td{cos_class}>{}</td><td{cos_class}>{}</td>",
                    num(a.cosine_similarity.mean),
                    num(a.cosine_similarity.worst)
                );
                for s in [
                    a.max_absolute_error,
                    a.mean_absolute_error,
                    a.root_mean_square_error,
                    a.relative_euclidean_distance,
                    a.accumulated_relative_error,
                    a.max_relative_error,
                    a.mean_relative_error,
                    a.kullback_leibler_divergence,
                ] {
                    let _ = write!(h, "<td>{} / {}</td>", num(s.mean), num(s.worst));
                }
                let [(mx, sx), (my, sy)] = a.standard_deviation;
                let _ = writeln!(h, "<td>({};{}),({};{})</td></tr>", num(mx), num(sx), num(my), num(sy));
            }
        }
        h.push_str("</table>\n");
        h
    }

    fn input_table(&self) -> String {
        let mut h = String::from("<table class=\"metrics\">\n<tr><th>#</th><th>input</th><th>output</th><th>pair</th>");
        for name in ROW_COLUMNS {
            let _ = write!(h, "<th>{name}</th>");
        }
        h.push_str("</tr>\n");
        for row in &self.inputs {
            for o in &row.outputs {
                for (pair, m) in self.pairs().iter().zip([Some(&o.int8_vs_fp16), o.int8_vs_fp32.as_ref(), o.fp16_vs_fp32.as_ref()]) {
                    let Some(m) = m else { continue };
                    let low = *pair == "int8 vs fp16" && below(m.cosine_similarity, self.threshold);
                    let cos_class = if low { " class=\"low\"" } else { "" };
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{pair}</td><td{cos_class}>{}</td>",
                        row.index,
                        esc(&row.label),
                        esc(&o.output),
                        num(m.cosine_similarity)
                    );
                    for v in [
                        m.max_absolute_error,
                        m.mean_absolute_error,
                        m.root_mean_square_error,
                        m.relative_euclidean_distance,
                        m.accumulated_relative_error,
                        m.max_relative_error,
                        m.mean_relative_error,
                        m.kullback_leibler_divergence,
                    ] {
                        let _ = write!(h, "<td>{}</td>", num(v));
                    }
                    let [(mx, sx), (my, sy)] = m.standard_deviation;
                    let _ = writeln!(h, "<td>({};{}),({};{})</td></tr>", num(mx), num(sx), num(my), num(sy));
                }
            }
        }
        h.push_str("</table>\n");
        h
    }

    /// One `<circle class="pt">` per (input, output) at its int8-vs-fp16 cosine; NaN points
    /// sit on the bottom edge as hollow red circles. A dashed line marks the threshold.
    fn svg_plot(&self) -> String {
        const W: f64 = 760.0;
        const H: f64 = 300.0;
        const L: f64 = 70.0;
        const R: f64 = 150.0;
        const T: f64 = 15.0;
        const B: f64 = 40.0;
        let cosines = self.inputs.iter().flat_map(|r| r.outputs.iter().map(|o| o.int8_vs_fp16.cosine_similarity));
        let finite_min = cosines.filter(|c| c.is_finite()).fold(f64::INFINITY, f64::min);
        let lo = finite_min.min(self.threshold).min(1.0);
        // Leave room below the lowest value; keep a sensible span when everything is ≈ 1.
        let span = (1.0 - lo).max(1e-4);
        let (y_min, y_max) = (lo - 0.1 * span, 1.0 + 0.05 * span);
        let n = self.inputs.len().max(1);
        let x_of = |i: usize| if n == 1 { L + (W - L - R) / 2.0 } else { L + (W - L - R) * i as f64 / (n - 1) as f64 };
        let y_of = |v: f64| T + (H - T - B) * (y_max - v) / (y_max - y_min);
        let mut s =
            format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">\n");
        let _ =
            writeln!(s, "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>", W - L - R, H - T - B);
        for k in 0..=4 {
            let v = y_min + (y_max - y_min) * k as f64 / 4.0;
            let y = y_of(v);
            let _ = writeln!(s, "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{:.5}</text>", L - 5.0, y + 4.0, v);
        }
        let ty = y_of(self.threshold);
        let _ = writeln!(
            s,
            "<line class=\"threshold\" x1=\"{L}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>",
            W - R
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#c00\">threshold {}</text>",
            W - R + 5.0,
            ty + 4.0,
            num(self.threshold)
        );
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">input set</text>", (L + W - R) / 2.0, H - 5.0);
        for (i, row) in self.inputs.iter().enumerate() {
            let x = x_of(i);
            if n <= 20 || i % n.div_ceil(20) == 0 {
                let _ =
                    writeln!(s, "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>", H - B + 14.0, row.index);
            }
            for (k, o) in row.outputs.iter().enumerate() {
                let c = o.int8_vs_fp16.cosine_similarity;
                let colour = PALETTE[k % PALETTE.len()];
                let (cy, style) = if c.is_nan() {
                    (H - B, "fill=\"none\" stroke=\"#c00\" stroke-width=\"2\"".to_string())
                } else {
                    (y_of(c), format!("fill=\"{colour}\""))
                };
                let _ = writeln!(
                    s,
                    "<circle class=\"pt\" cx=\"{x:.1}\" cy=\"{cy:.1}\" r=\"4\" {style}><title>{} / {}: cosine {}</title></circle>",
                    esc(&row.label),
                    esc(&o.output),
                    num(c)
                );
            }
        }
        for (k, o) in self.outputs.iter().enumerate() {
            let y = T + 14.0 * k as f64 + 8.0;
            let colour = PALETTE[k % PALETTE.len()];
            let _ = writeln!(s, "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\" fill=\"{colour}\"/>", W - R + 5.0, y - 7.0);
            let _ = writeln!(s, "<text x=\"{}\" y=\"{y}\" font-size=\"11\">{}</text>", W - R + 17.0, esc(&o.name));
        }
        s.push_str("</svg>\n");
        s
    }
}

const PALETTE: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
/// `--task`: each task metric's mean and worst over the inputs, per pair.
fn task_table(t: &super::task::TaskSummary) -> String {
    let mut h = format!("<h2>Task metrics ({}, output {}; mean / worst over the inputs)</h2>\n", esc(&t.task), esc(&t.output));
    h.push_str("<table class=\"metrics\">\n<tr><th>pair</th><th>metric</th><th>mean</th><th>worst</th></tr>\n");
    for (pair, stats) in
        [("int8 vs fp16", Some(&t.int8_vs_fp16)), ("int8 vs fp32", t.int8_vs_fp32.as_ref()), ("fp16 vs fp32", t.fp16_vs_fp32.as_ref())]
    {
        for (name, (mean, worst)) in stats.into_iter().flatten() {
            let _ = writeln!(h, "<tr><td>{pair}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(name), num(*mean), num(*worst));
        }
    }
    h.push_str("</table>\n");
    h
}

// msaccucmp's metric names (docs/ascend-formats.md §13), so a user of its CSV reads the same
// words. The aggregate table has the cosine's mean and min, then the others as the row table.
const AGG_COLUMNS: [&str; 11] = [
    "CosineSimilarity mean",
    "CosineSimilarity min",
    "MaxAbsoluteError (mean / max)",
    ROW_COLUMNS[2],
    ROW_COLUMNS[3],
    ROW_COLUMNS[4],
    ROW_COLUMNS[5],
    ROW_COLUMNS[6],
    ROW_COLUMNS[7],
    ROW_COLUMNS[8],
    ROW_COLUMNS[9],
];
const ROW_COLUMNS: [&str; 10] = [
    "CosineSimilarity",
    "MaxAbsoluteError",
    "MeanAbsoluteError",
    "RootMeanSquareError",
    "RelativeEuclideanDistance",
    "AccumulatedRelativeError",
    "MaxRelativeError",
    "MeanRelativeError",
    "KullbackLeiblerDivergence",
    "StandardDeviation (mean;std) x, y",
];
const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right}th{background:#eee}\
.facts td,.facts th{text-align:left}.verdict{font-weight:bold;font-size:15px}.pass{color:#070}.fail{color:#b00}\
td.low{background:#fdd}.note{color:#555;font-size:12px}.teardown{color:#b00;font-size:13px}";

/// msaccucmp prints 6 decimals; small values keep their significant digits.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.6}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_keep_nan_and_paths_drop_known_suffixes() {
        let s = stat([0.99, f64::NAN, 1.0].into_iter(), true);
        assert!(s.mean.is_nan() && s.worst.is_nan());
        let s = stat([0.99, 0.95, 1.0].into_iter(), true);
        assert_eq!(s.worst, 0.95);
        assert!((s.mean - 0.98).abs() < 1e-12);
        assert_eq!(report_paths(Path::new("out/run.v2")).0, PathBuf::from("out/run.v2.json"));
        assert_eq!(report_paths(Path::new("r.html")), (PathBuf::from("r.json"), PathBuf::from("r.html")));
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}

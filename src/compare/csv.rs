//! The comparison as a CSV in msaccucmp's vocabulary (`compare --csv`): one row per input set,
//! output and pair, the ten metrics under msaccucmp's column names and in its algorithm order
//! (docs/ascend-formats.md §13), values with six decimals as msaccucmp prints them. The
//! leading columns (Index, Input, Output, Pair) are ours: msaccucmp's own result file is per
//! operator of a dump, which a model-level comparison does not have (its exact column set is
//! UNCONFIRMED here, only the metric names and order are).

use std::fmt::Write;

use super::metrics::Metrics;
use super::report::CompareReport;

/// msaccucmp's algorithm names, in its index order 0–9.
pub const METRIC_NAMES: [&str; 10] = [
    "CosineSimilarity",
    "MaxAbsoluteError",
    "AccumulatedRelativeError",
    "RelativeEuclideanDistance",
    "KullbackLeiblerDivergence",
    "StandardDeviation",
    "MeanAbsoluteError",
    "RootMeanSquareError",
    "MaxRelativeError",
    "MeanRelativeError",
];

/// Six decimals; NaN and infinities spelled as numpy prints them.
fn six(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.6}")
    }
}

/// msaccucmp shows a StandardDeviation part below 0.001 as 0.
fn sd_part(v: f64) -> String {
    if v.is_finite() && v.abs() < 0.001 { "0".into() } else { six(v) }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn metric_fields(m: &Metrics) -> Vec<String> {
    let [(mx, sx), (my, sy)] = m.standard_deviation;
    vec![
        six(m.cosine_similarity),
        six(m.max_absolute_error),
        six(m.accumulated_relative_error),
        six(m.relative_euclidean_distance),
        six(m.kullback_leibler_divergence),
        field(&format!("({};{}),({};{})", sd_part(mx), sd_part(sx), sd_part(my), sd_part(sy))),
        six(m.mean_absolute_error),
        six(m.root_mean_square_error),
        six(m.max_relative_error),
        six(m.mean_relative_error),
    ]
}

pub fn to_csv(report: &CompareReport) -> String {
    let mut out = format!("Index,Input,Output,Pair,{}\n", METRIC_NAMES.join(","));
    for row in &report.inputs {
        for o in &row.outputs {
            let pairs = [
                ("int8_vs_fp16", Some(&o.int8_vs_fp16)),
                ("int8_vs_fp32", o.int8_vs_fp32.as_ref()),
                ("fp16_vs_fp32", o.fp16_vs_fp32.as_ref()),
            ];
            for (pair, m) in pairs {
                let Some(m) = m else { continue };
                let _ = writeln!(out, "{},{},{},{pair},{}", row.index, field(&row.label), field(&o.output), metric_fields(m).join(","));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_msaccucmp_formatting() {
        let m = Metrics::compute(&[1.0, 2.0, 3.0], &[1.0, 2.0, 2.5]);
        let f = metric_fields(&m);
        assert_eq!(f.len(), METRIC_NAMES.len());
        assert_eq!(f[1], "0.500000");
        assert_eq!(f[5], "\"(2.000000;0.816497),(1.833333;0.623610)\"");
        assert_eq!(six(f64::NAN), "NaN");
        assert_eq!(sd_part(0.0004), "0");
        assert_eq!(field("a,b"), "\"a,b\"");
    }
}

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::quant::calibrate::CalibrationOptions;
use crate::quant::config::CalibrationConfig;
use crate::quant::eval::{OutputAgreement, TaskAgreement};
use crate::quant::fold::FoldReport;
use crate::quant::report::Findings;
use crate::quant::sensitivity::LayerSensitivity;

const EVIL: &str = "<script>alert('x')</script>\"&<img src=x onerror=alert(1)>";

fn layer(name: &str, scale_d: f32, cosine: f64) -> LayerReport {
    LayerReport {
        name: name.into(),
        op_type: "Conv".into(),
        original_nodes: vec![name.into()],
        inserted_nodes: vec![format!("{name}.quant"), format!("{name}.dequant")],
        data_input: "x".into(),
        scale_d,
        offset_d: 0,
        scale_w: vec![0.002, 0.0005, 0.01],
        offset_w: vec![0; 3],
        act_algo: "ifmr".into(),
        clip_min: -1.5,
        clip_max: 2.25,
        wts_algo: "arq_quantize".into(),
        channel_wise: true,
        weight_rounding: "nearest",
        cosine: Some(cosine),
    }
}

fn report(layers: Vec<LayerReport>, float: Vec<FloatLayer>, eval_dir: Option<&str>, task: Option<&TaskAgreement>) -> QuantReport {
    let opts = CalibrationOptions {
        model: format!("/m/{EVIL}.onnx").into(),
        input_shape: Some("x:1,3,8,8".into()),
        data_dir: Some("bins".into()),
        eval_data_dir: eval_dir.map(String::from),
        ..Default::default()
    };
    let outputs = [OutputAgreement { output: "y".into(), cosine: 0.99, sqnr_db: 17.5, max_abs_error: 0.25, max_abs_reference: 3.0 }];
    let fold = FoldReport::default();
    let findings =
        Findings { fold: &fold, outputs: &outputs, equalized: &[], bias_correction: &[], output_clip: &[], task, fallback: None };
    QuantReport::new(&opts, 4, 2, &CalibrationConfig::default(), layers, float, findings)
}

fn trial(cosine: f64, sqnr_db: f64) -> Trial {
    Trial { cosine, sqnr_db, task: None }
}

fn sensitivity(layers: &[LayerReport], left_float_db: &[f64], all_int8_db: f64) -> Sensitivity {
    Sensitivity {
        output: "y".into(),
        eval_batches: 2,
        eval_held_out: true,
        all_int8: trial(0.99, all_int8_db),
        layers: layers
            .iter()
            .zip(left_float_db)
            .enumerate()
            .map(|(i, (l, &db))| LayerSensitivity {
                name: l.name.clone(),
                op_type: l.op_type.clone(),
                macs: 100,
                alone: trial(0.999, 30.0 - i as f64),
                left_float: trial(0.995, db),
                drift: trial(0.99, 25.0 - i as f64),
            })
            .collect(),
    }
}

#[test]
fn names_from_the_model_cannot_inject_markup() {
    let layers = vec![layer(EVIL, 0.01, 0.999)];
    let float = vec![FloatLayer { name: format!("f{EVIL}"), op_type: "MatMul".into(), reason: format!("because {EVIL}") }];
    let task = TaskAgreement {
        task: "db".into(),
        output: EVIL.into(),
        batches: 2,
        mean: BTreeMap::from([(EVIL.to_string(), 0.5)]),
        worst: BTreeMap::new(),
        count_fake_quant: 1,
        count_float: 1,
    };
    let r = report(layers.clone(), float, None, Some(&task));
    let s = sensitivity(&layers, &[12.0], 10.0);
    let html = render(&r, Some(&s), &HashMap::new());
    assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
    assert!(!html.contains("'x'") && !html.contains("\"&<"), "quotes and ampersands escaped too");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;&lt;img src=x onerror=alert(1)&gt;"));
    // Model name, layer table, float table, task table, chart tooltips and data-layer attribute.
    assert!(html.matches("&lt;script&gt;").count() >= 8, "{html}");
}

#[test]
fn charts_have_one_mark_per_layer_with_the_gain_of_leaving_it_float() {
    let layers: Vec<LayerReport> = (0..5).map(|i| layer(&format!("conv{i}"), 0.01 * (i + 1) as f32, 0.99 + 0.001 * i as f64)).collect();
    let gains_db = [11.0, 10.5, 14.0, 10.0, 9.0];
    let s = sensitivity(&layers, &gains_db, 10.0);
    let html = render(&report(layers.clone(), Vec::new(), Some("held"), None), Some(&s), &HashMap::new());
    assert_eq!(html.matches("class=\"sens-bar\"").count(), 5);
    assert_eq!(html.matches("class=\"drift-pt\"").count(), 5);
    assert_eq!(html.matches("class=\"local-pt\"").count(), 5);
    let values: Vec<f64> =
        html.split("class=\"sens-bar\" data-value=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap()).collect();
    assert_eq!(values, gains_db.map(|g| g - 10.0));
    assert_eq!(html.matches("<tr data-layer=").count(), 5);
    assert!(!html.contains("not-held-out"), "held out: no warning");
    assert!(html.contains("held-out batch(es) from held"));
}

#[test]
fn without_sensitivity_the_page_says_how_to_get_it_and_calibration_batches_are_flagged() {
    let layers = vec![layer("a", 0.5, 0.98), layer("b", 0.25, 0.97)];
    let float = vec![FloatLayer { name: "c".into(), op_type: "Gemm".into(), reason: "accuracy fallback".into() }];
    let macs = HashMap::from([("a".to_string(), 600), ("b".to_string(), 200), ("c".to_string(), 200)]);
    let html = render(&report(layers, float, None, None), None, &macs);
    assert!(!html.contains("sens-bar") && !html.contains("drift-pt"));
    assert!(html.contains("Run with --sensitivity"));
    assert_eq!(html.matches("class=\"local-pt\"").count(), 2);
    assert!(html.contains("id=\"not-held-out\"") && html.contains("NOT held out"));
    assert!(html.contains("data-int8-macs=\"800\" data-quantizable-macs=\"1000\"") && html.contains("<b>80.0 %</b>"), "{html}");
    assert!(html.contains("<td class=\"name\">accuracy fallback</td>"));
}

#[test]
fn an_empty_analysis_and_no_layers_render_without_marks() {
    let r = report(Vec::new(), Vec::new(), None, None);
    let s = sensitivity(&[], &[], f64::NAN);
    let html = render(&r, Some(&s), &HashMap::new());
    assert!(html.contains("n/a (no MACs"));
    assert_eq!(html.matches("sens-bar\"").count(), 0);
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn numbers_keep_four_significant_digits() {
    assert_eq!(fmt_sig(0.012345678), "0.01235");
    assert_eq!(fmt_sig(2.5), "2.5");
    assert_eq!(fmt_sig(1234.0), "1234");
    assert_eq!(fmt_sig(0.0001234), "1.234e-4");
    assert_eq!(fmt_sig(f64::INFINITY), "+∞");
    assert_eq!(fmt_macs(1_234_567), "1.23 M");
    assert_eq!(fmt_macs(999), "999");
}

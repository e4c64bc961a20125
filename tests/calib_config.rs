//! `--calibration_config` files read by our parser and by Google's protobuf text-format
//! parser (tests/oracle/calib_config.py, schema of docs/ascend-formats.md §8): the same values when both
//! accept a file, both reject the same malformed files (at the same line), and we are
//! stricter only on the value ranges of §4.1–4.2.

mod common;

use ascend_ptq::quant::config::{ActAlgo, AlgoConfig, CalibrationConfig, DstType, WeightAlgo};
use serde_json::{Value, json};

fn dst(d: DstType) -> &'static str {
    match d {
        DstType::Int8 => "INT8",
        DstType::Int16 => "INT16",
    }
}

fn algo(c: &AlgoConfig) -> Value {
    let f = |v: f32| f64::from(v);
    json!({
        "weights": c.weights.as_ref().map(|w| match w {
            WeightAlgo::Arq(a) => json!({"arq": {"channel_wise": a.channel_wise, "quant_bits": a.quant_bits}}),
            WeightAlgo::Ada(a) => json!({"ada": {"num_iteration": a.num_iteration, "reg_param": f(a.reg_param),
                "beta_range_start": f(a.beta_range_start), "beta_range_end": f(a.beta_range_end), "warm_start": f(a.warm_start),
                "channel_wise": a.channel_wise}}),
        }),
        "activations": c.activations.as_ref().map(|a| match a {
            ActAlgo::Ifmr(i) => json!({"ifmr": {"search_range_start": f(i.search_range_start), "search_range_end": f(i.search_range_end),
                "search_step": f(i.search_step), "max_percentile": f(i.max_percentile), "min_percentile": f(i.min_percentile),
                "asymmetric": i.asymmetric, "dst_type": dst(i.dst_type)}}),
            ActAlgo::Hfmg(h) => json!({"hfmg": {"num_of_bins": h.num_of_bins, "asymmetric": h.asymmetric, "dst_type": dst(h.dst_type)}}),
        }),
        "dmq_balancer": c.dmq_balancer.as_ref().map(|d| json!({"migration_strength": f(d.migration_strength)})),
    })
}

fn to_json(c: &CalibrationConfig) -> Value {
    json!({
        "batch_num": c.batch_num,
        "activation_offset": c.activation_offset,
        "skip_layers": c.skip_layers,
        "skip_layer_types": c.skip_layer_types,
        "joint_quant": c.joint_quant,
        "fakequant_precision_mode": c.fakequant_precision_mode.map(|_| "FORCE_FP16_QUANT"),
        "common_config": algo(&c.common_config),
        "override_layer_types": c.override_layer_types.iter().map(|o| json!({"layer_type": o.layer_type, "config": algo(&o.config)})).collect::<Vec<_>>(),
        "override_layer_configs": c.override_layer_configs.iter().map(|o| json!({"layer_name": o.layer_name, "config": algo(&o.config)})).collect::<Vec<_>>(),
        "do_fusion": c.do_fusion,
        "skip_fusion_layers": c.skip_fusion_layers,
    })
}

/// Rounds every float to f32: protobuf-python hands out a proto `float` as a double that can
/// differ from the exact f32 value in the last double bit (0.9999 → 0.9998999834060668).
fn f32_floats(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => json!(f64::from(n.as_f64().unwrap() as f32)),
        Value::Array(a) => Value::Array(a.into_iter().map(f32_floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, f32_floats(v))).collect()),
        other => other,
    }
}

/// Runs both parsers on `text`: (oracle JSON or (line, error), ours).
fn both(text: &str) -> (Result<Value, (u32, String)>, Result<CalibrationConfig, String>) {
    let py = common::oracle_python().expect("checked by the caller");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.cfg");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = common::run_oracle(&py, "calib_config.py", &[path.to_str().unwrap()]);
    let oracle = match code {
        0 => Ok(f32_floats(serde_json::from_str(&out).expect("oracle JSON"))),
        1 => Err((err.split(':').next().and_then(|l| l.trim().parse().ok()).unwrap_or(0), err)),
        _ => panic!("oracle failed: {err}"),
    };
    (oracle, CalibrationConfig::parse(text).map_err(|e| e.to_string()))
}

const ACCEPTED: &[&str] = &[
    "",
    "# only a comment\n",
    "# header\nbatch_num: 0x10\nskip_layers: [\"Conv_0\",'Conv_3']\nskip_layers: \"x\" ' y'\n\
     common_config { arq_quantize { channel_wise: false } ifmr_quantize { search_step: 2e-2 min_percentile: 0.99f } }\n\
     override_layer_types: [{layer_type: \"Conv\", calibration_config {hfmg_quantize {num_of_bins: 2048}}}, \
     <layer_type: \"Gemm\" calibration_config: {}>]\ndo_fusion: t\n",
    r#"batch_num: 16
       activation_offset: false
       skip_layers: "Conv_0"
       skip_layer_types: "MatMul"
       joint_quant: true
       fakequant_precision_mode: FORCE_FP16_QUANT
       do_fusion: false
       skip_fusion_layers: "Conv_5"
       common_config {
           arq_quantize { channel_wise: false quant_bits: 8 }
           hfmg_quantize { num_of_bins: 8192 asymmetric: true dst_type: INT8 }
           dmq_balancer { migration_strength: 0.3 }
       }
       override_layer_types { layer_type: "Conv" calibration_config { ada_quantize { num_iteration: 5 reg_param: 0.02
           beta_range_start: 10 beta_range_end: 1 warm_start: 0.1 channel_wise: true } } }
       override_layer_configs { layer_name: "Conv_7" calibration_config { ifmr_quantize {  # comment inside
           search_range_start: 0.5 search_range_end: 1.5 search_step: 0.02 max_percentile: 0.9999 min_percentile: 0.999
           asymmetric: false dst_type: INT16 } } }
       override_layer_configs: [{ layer_name: "Conv_8"; calibration_config { dmq_balancer: {} } }]"#,
    "activation_offset: False do_fusion: True joint_quant: 1 common_config < ifmr_quantize < dst_type: 2 asymmetric: 0 > >",
    "skip_layers: \"a\\x41\\101\\n\\t\\\"\\u00e9\\\\\" skip_layers: []",
    "common_config { ifmr_quantize { search_range_start: 0.123456789 max_percentile: 0.99999994 } }",
];

/// Malformed for protobuf too; the line (0 = no position) where both must report it.
const REJECTED: &[(&str, u32)] = &[
    ("batch_num: 2\nbatch_nums: 3", 2),
    ("common_config {\n ifmr_quantize { serach_step: 0.1 } }", 2),
    ("batch_num: 2\n\nbatch_num: 3", 3),
    ("common_config {\n arq_quantize {}\n ada_quantize {} }", 3),
    ("common_config { hfmg_quantize {} ifmr_quantize {} }", 1),
    ("batch_num: [1]", 1),
    ("skip_layers: Conv_0", 1),
    ("override_layer_types { calibration_config {} }", 0),
    ("override_layer_configs { layer_name: \"x\" }", 0),
    ("common_config {\n arq_quantize {\n", 2),
    ("activation_offset: yes", 1),
    ("batch_num: -1", 1),
    ("batch_num: \"4\"", 1),
    ("batch_num: 1.5", 1),
    ("batch_num: 4294967296", 1),
    ("common_config { ifmr_quantize { dst_type: INT4 } }", 1),
    ("common_config: 5", 1),
    ("batch_num { }", 1),
    ("skip_layers: \"unterminated\nbatch_num: 2", 1),
    ("a: 1 }", 1),
];

#[test]
fn accepted_files_give_the_same_values_as_protobuf() {
    if common::oracle_python().is_none() {
        return;
    }
    for text in ACCEPTED {
        let (oracle, ours) = both(text);
        let oracle = oracle.unwrap_or_else(|(_, e)| panic!("protobuf rejects {text:?}: {e}"));
        let ours = ours.unwrap_or_else(|e| panic!("we reject {text:?}: {e}"));
        assert_eq!(to_json(&ours), oracle, "{text}");
    }
}

#[test]
fn malformed_files_are_rejected_at_the_same_line_as_protobuf() {
    if common::oracle_python().is_none() {
        return;
    }
    for &(text, line) in REJECTED {
        let (oracle, ours) = both(text);
        let (oracle_line, oracle_err) = oracle.err().unwrap_or_else(|| panic!("protobuf accepts {text:?}"));
        let ours = ours.err().unwrap_or_else(|| panic!("we accept {text:?}"));
        println!("{text:?}\n  protobuf: {}\n  ours:     {ours}", oracle_err.trim());
        assert_eq!(oracle_line, line, "protobuf's line for {text:?}: {oracle_err}");
        if line > 0 {
            assert!(ours.starts_with(&format!("{line}:")), "our line for {text:?}: {ours}");
        }
    }
}

#[test]
fn out_of_range_values_are_rejected_though_protobuf_takes_them() {
    if common::oracle_python().is_none() {
        return;
    }
    for (text, needle) in [
        ("batch_num: 0", "must be at least 1"),
        ("common_config { ifmr_quantize { search_step: 0 } }", "must be a finite number > 0"),
        ("common_config { ifmr_quantize { search_range_start: 1.4 } }", "is empty"),
        ("common_config { ifmr_quantize { max_percentile: 0.2 } }", "must be in (0.5, 1]"),
        ("common_config { hfmg_quantize { num_of_bins: 1000 } }", "1024, 2048, 4096 or 8192"),
        ("common_config { dmq_balancer { migration_strength: 0.1 } }", "[0.2, 0.8]"),
        ("common_config { arq_quantize { quant_bits: 4 } }", "only 8-bit"),
        ("override_layer_types { layer_type: \"MatMul\" calibration_config { arq_quantize { channel_wise: true } } }", "per tensor"),
    ] {
        let (oracle, ours) = both(text);
        assert!(oracle.is_ok(), "protobuf rejects {text:?}");
        let e = ours.err().unwrap_or_else(|| panic!("we accept {text:?}"));
        assert!(e.starts_with("1:") && e.contains(needle), "{text:?}: {e}");
    }
}

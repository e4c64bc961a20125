//! Real AMCT files as users have them (`../shared/fixtures/amct/`, written by Huawei's tools or
//! shipped in Huawei's samples): `--calibration_config` files run unchanged on a model with
//! Conv + Gemm + MatMul (docs/ascend-formats.md §8.3), the NUQ and Caffe-type configs fail with
//! errors that say what to change, our `_record.txt` has the real record's layout and reads
//! back (§7.1), and `_quant.json` is a fusion rule in GE's graph-JSON layout like the real OM
//! JSON (§7.3).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ascend_ptq::onnx::{DataType, ModelProto, TensorData, load_model, save_model};
use ascend_ptq::quant::calibrate::{CalibrationOptions, Summary, calibrate};
use ascend_ptq::quant::record;
use common::graph::{attr_i, attr_ints, model, node, tensor, value_info};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("../shared/fixtures/amct").join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{}: {e}", fixture(name).display()))
}

fn values(n: usize, seed: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * 0.37 + seed).sin() * 0.5).collect()
}

/// x[1,3,8,8] → Conv "conv" (4 filters 3×3, bias, pads 1) → BatchNormalization "bn" → Relu →
/// Flatten → Gemm "fc" (transB 1, 256 → 6, bias) → MatMul "mm" (6 → 5) → Add "mm_bias" → y[1,5].
fn conv_gemm_matmul() -> ModelProto {
    model(
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("BatchNormalization", "bn", &["c", "bn_s", "bn_b", "bn_m", "bn_v"], &["n"], vec![]),
            node("Relu", "relu", &["n"], &["r"], vec![]),
            node("Flatten", "flat", &["r"], &["f"], vec![]),
            node("Gemm", "fc", &["f", "fc_w", "fc_b"], &["g"], vec![attr_i("transB", 1)]),
            node("MatMul", "mm", &["g", "mm_w"], &["m"], vec![]),
            node("Add", "mm_bias", &["m", "mm_b"], &["y"], vec![]),
        ],
        vec![
            tensor("w", &[4, 3, 3, 3], TensorData::F32(values(108, 0.0))),
            tensor("b", &[4], TensorData::F32(vec![0.1, -0.2, 0.05, 0.0])),
            tensor("bn_s", &[4], TensorData::F32(vec![1.0, 0.5, 2.0, 1.5])),
            tensor("bn_b", &[4], TensorData::F32(vec![0.0, 0.1, -0.1, 0.2])),
            tensor("bn_m", &[4], TensorData::F32(vec![0.05, 0.0, -0.05, 0.1])),
            tensor("bn_v", &[4], TensorData::F32(vec![1.0, 0.5, 2.0, 0.8])),
            tensor("fc_w", &[6, 256], TensorData::F32(values(6 * 256, 1.0))),
            tensor("fc_b", &[6], TensorData::F32(vec![0.0, 0.1, 0.2, -0.1, -0.2, 0.3])),
            tensor("mm_w", &[6, 5], TensorData::F32(values(30, 2.0))),
            tensor("mm_b", &[5], TensorData::F32(vec![0.01, 0.02, -0.03, 0.04, 0.0])),
        ],
        vec![value_info("x", DataType::Float, &[1, 3, 8, 8])],
        vec![value_info("y", DataType::Float, &[1, 5])],
        13,
    )
}

struct Run {
    tmp: tempfile::TempDir,
    model: PathBuf,
}

impl Run {
    /// The model and two calibration batches in a temp dir.
    fn new() -> Run {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model.onnx");
        save_model(&conv_gemm_matmul(), &model, &Default::default()).unwrap();
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        for b in 0..2 {
            let v: Vec<u8> = values(192, 3.0 + b as f32).iter().flat_map(|x| (x * 2.0).to_le_bytes()).collect();
            std::fs::write(tmp.path().join(format!("data/{b}.bin")), v).unwrap();
        }
        Run { tmp, model }
    }

    fn options(&self, config: Option<&Path>) -> CalibrationOptions {
        CalibrationOptions {
            model: self.model.clone(),
            save_path: format!("{}/out/m", self.tmp.path().display()),
            input_shape: Some("x:1,3,8,8".into()),
            data_dir: Some(self.tmp.path().join("data").display().to_string()),
            data_types: Some("float32".into()),
            batch_num: None,
            calibration_config: config.map(Path::to_path_buf),
            eval_batches: Some(1),
            eval_data_dir: None,
            equalize: true,
            weight_rounding: Default::default(),
            activation_clip: Default::default(),
            bias_correction: false,
            task: None,
            sensitivity: false,
            accuracy_target: None,
            evaluator: None,
            exact_ifmr: false,
        }
    }

    /// The summary, or the error's message.
    fn calibrate(&self, config: Option<&Path>) -> Result<Summary, String> {
        calibrate(&self.options(config), &mut |_| {}).map_err(|e| e.to_string())
    }

    /// A config written into the temp dir.
    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn report_layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["quantized_layers"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("no layer {name}: {report}"))
}

/// Conv per channel, Gemm and MatMul per tensor, and the one warning naming them.
fn check_conv_per_channel_gemm_matmul_per_tensor(summary: &Summary, cfg: &str) {
    assert_eq!(summary.quantized, 3, "{cfg}: {:?}", summary.left_float);
    let per_tensor: Vec<&String> = summary.warnings.iter().filter(|w| w.contains("channel_wise")).collect();
    assert_eq!(per_tensor.len(), 1, "{cfg}: one warning for all layers: {:?}", summary.warnings);
    let w = per_tensor[0];
    assert!(w.starts_with("common_config.arq_quantize.channel_wise: true was applied per tensor to 2 layer(s)"), "{cfg}: {w}");
    assert!(w.contains("(Gemm: fc; MatMul: mm)"), "{cfg}: {w}");
    let report = json_file(&summary.outputs.quant_report);
    let conv = report_layer(&report, "conv");
    assert_eq!((conv["channel_wise"].as_bool(), conv["scale_w"].as_array().map(Vec::len)), (Some(true), Some(4)), "{cfg}: {conv}");
    for name in ["fc", "mm"] {
        let l = report_layer(&report, name);
        assert_eq!((l["channel_wise"].as_bool(), l["scale_w"].as_array().map(Vec::len)), (Some(false), Some(1)), "{cfg}: {l}");
    }
}

#[test]
fn real_calibration_configs_run_unchanged_on_conv_gemm_matmul() {
    let run = Run::new();
    for cfg in ["yolo_v3_quant.cfg", "yolov3_calibration.cfg"] {
        let summary = run.calibrate(Some(&fixture(cfg))).unwrap_or_else(|e| panic!("{cfg}: {e}"));
        assert_eq!(summary.batch_num, 1, "{cfg}: batch_num 1 (given, or the default)");
        check_conv_per_channel_gemm_matmul_per_tensor(&summary, cfg);
    }
    // Without a config nothing is asked per channel of Gemm/MatMul: no warning.
    let summary = run.calibrate(None).unwrap();
    assert!(!summary.warnings.iter().any(|w| w.contains("channel_wise")), "{:?}", summary.warnings);
}

#[test]
fn an_override_asking_channel_wise_of_a_per_tensor_op_stays_an_error() {
    let run = Run::new();
    let by_name = run.config(
        "by_name.cfg",
        "common_config { arq_quantize { channel_wise: true } }\n\
         override_layer_configs { layer_name: \"mm\" calibration_config { arq_quantize { channel_wise: true } } }\n",
    );
    let e = run.calibrate(Some(&by_name)).unwrap_err();
    assert!(e.contains("mm") && e.contains("override_layer_configs \"mm\"") && e.contains("MatMul"), "{e}");
    assert!(e.contains("per tensor only") && e.contains("channel_wise: false"), "{e}");
    let by_type = run.config(
        "by_type.cfg",
        "override_layer_types { layer_type: \"Gemm\" calibration_config { arq_quantize { channel_wise: true } } }\n",
    );
    let e = run.calibrate(Some(&by_type)).unwrap_err();
    assert!(e.contains("by_type.cfg") && e.contains("channel_wise: true is not possible for Gemm"), "{e}");
    // The layer override wins over common: channel_wise false there is fine.
    let ok = run.config(
        "ok.cfg",
        "common_config { arq_quantize { channel_wise: true } }\n\
         override_layer_configs { layer_name: \"mm\" calibration_config { arq_quantize { channel_wise: false } } }\n",
    );
    let summary = run.calibrate(Some(&ok)).unwrap();
    let w: Vec<&String> = summary.warnings.iter().filter(|w| w.contains("channel_wise")).collect();
    assert!(w.len() == 1 && w[0].contains("1 layer(s) whose op type has one weight scale only (Gemm: fc)"), "{w:?}");
}

#[test]
fn nuq_configs_are_refused_naming_the_file_and_what_to_change() {
    let run = Run::new();
    for cfg in ["resnet50_caffe_quant.cfg", "resnet101_nuq_quant.cfg"] {
        let path = fixture(cfg);
        let e = run.calibrate(Some(&path)).unwrap_err();
        assert!(e.starts_with(&format!("{}:", path.display())), "{cfg}: names the file: {e}");
        assert!(e.contains("nuq_config") && e.contains("(NUQ, nuq_config) is not supported"), "{cfg}: {e}");
        assert!(e.contains("Remove the nuq_config block") && e.contains("IFMR activations and ARQ weights"), "{cfg}: {e}");
        assert!(!run.tmp.path().join("out/m_quant.json").exists(), "{cfg}: no output on failure");
    }
    // Without nuq_config the Caffe sample still names the Caffe type "Pooling": an error naming
    // the ONNX types, at the override's line.
    let text = read_fixture("resnet50_caffe_quant.cfg");
    let start = text.find("nuq_config").unwrap();
    let end = start + text[start..].find("\n}\n").unwrap() + 3;
    let no_nuq = format!("{}{}", &text[..start], &text[end..]);
    let path = run.config("no_nuq.cfg", &no_nuq);
    let e = run.calibrate(Some(&path)).unwrap_err();
    let line = no_nuq[..no_nuq.find("override_layer_types").unwrap()].lines().count() + 1;
    assert!(e.starts_with(&format!("{}:{line}:", path.display())), "{e}");
    assert!(e.contains("layer_type: \"Pooling\" is a Caffe layer type") && e.contains("\"AveragePool\""), "{e}");
    // With the ONNX name it runs (AveragePool absent from this model: nothing to override).
    let path = run.config("onnx_names.cfg", &no_nuq.replace("\"Pooling\"", "\"AveragePool\""));
    let summary = run.calibrate(Some(&path)).unwrap();
    assert_eq!(summary.batch_num, 2);
}

/// The real TF MobileNetV2 record: 54 layers, per-channel scale_w with one offset_w each.
#[test]
fn the_real_record_parses_and_renders_back_byte_for_byte() {
    let text = read_fixture("mobilenet_v2_tf_record.txt");
    let entries = record::parse(&text).unwrap();
    assert_eq!(entries.len(), 54);
    let first = &entries[0];
    assert_eq!(first.layer, "MobilenetV2/expanded_conv_2/depthwise/depthwise");
    assert_eq!((record::float(first.scale_d).as_str(), first.offset_d), ("0.0235294122", -128));
    assert_eq!((first.scale_w.len(), first.offset_w.len()), (144, 144));
    assert_eq!((record::float(first.scale_w[0]), record::float(first.scale_w[2])), ("0.0128474627".into(), "0.018680146".into()));
    assert!(first.offset_w.iter().all(|&o| o == 0));
    let pool = entries.last().unwrap();
    assert_eq!((pool.layer.as_str(), pool.scale_w.len(), pool.offset_w.len()), ("MobilenetV2/Logits/AvgPool", 0, 0));
    assert_eq!(entries.iter().map(|e| e.scale_w.len()).sum::<usize>(), 17057);
    // Our renderer writes the same bytes: layout, field order and every float's digits.
    let ours = record::render(&entries);
    assert_eq!(ours.len(), text.len());
    if let Some(i) = ours.lines().zip(text.lines()).position(|(a, b)| a != b) {
        panic!("line {}: ours {:?}, real {:?}", i + 1, ours.lines().nth(i), text.lines().nth(i));
    }
    assert_eq!(ours, text);
}

/// The `scale_d: `/`offset_d: `/... skeleton of a record entry: each line with its number
/// replaced by `N`.
fn skeleton(entry: &str) -> Vec<String> {
    let mut lines: Vec<String> = entry
        .lines()
        .map(|l| match l.split_once(": ") {
            Some((k, _)) if !k.trim().starts_with("key") => format!("{k}: N"),
            Some((k, _)) => format!("{k}: \"K\""),
            None => l.to_string(),
        })
        .collect();
    lines.dedup();
    lines
}

#[test]
fn our_record_has_the_real_layout_and_round_trips() {
    let run = Run::new();
    let summary = run.calibrate(Some(&fixture("yolo_v3_quant.cfg"))).unwrap();
    let text = std::fs::read_to_string(&summary.outputs.record).unwrap();
    let entries = record::parse(&text).unwrap();
    assert_eq!(entries.iter().map(|e| e.layer.as_str()).collect::<Vec<_>>(), ["conv", "fc", "mm"]);
    // f32 values equal the report's after the round trip, and re-rendering gives the file.
    let report = json_file(&summary.outputs.quant_report);
    for e in &entries {
        let l = report_layer(&report, &e.layer);
        assert_eq!(e.scale_d, l["scale_d"].as_f64().unwrap() as f32, "{}", e.layer);
        assert_eq!(e.offset_d as i64, l["offset_d"].as_i64().unwrap());
        let sw: Vec<f32> = l["scale_w"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(e.scale_w, sw, "{}", e.layer);
        assert_eq!(e.offset_w, vec![0; sw.len()]);
    }
    assert_eq!(record::render(&entries), text);
    // The same skeleton as a per-channel entry of the real file.
    let real = read_fixture("mobilenet_v2_tf_record.txt");
    let real_first = &real[..real.find("}\n}\n").unwrap() + 4];
    let ours_first = &text[..text.find("}\n}\n").unwrap() + 4];
    assert_eq!(skeleton(ours_first), skeleton(real_first));
    assert_eq!(
        skeleton(ours_first),
        ["record {", "  key: \"K\"", "  value {", "    scale_d: N", "    offset_d: N", "    scale_w: N", "    offset_w: N", "  }", "}"]
    );
}

/// The attrs of an op by key.
fn attrs(op: &Value) -> HashMap<String, Value> {
    op["attr"]
        .as_array()
        .map(|a| a.iter().map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone())).collect())
        .unwrap_or_default()
}

fn original_names(op: &Value) -> Vec<String> {
    attrs(op)["_datadump_original_op_names"]["list"]["s"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A JSON value's structure: leaves replaced by their type, arrays by their first element's.
fn structure(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), structure(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(structure).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => Value::Null,
    }
}

#[test]
fn quant_json_is_a_fusion_rule_in_the_layout_of_the_real_om_json() {
    let run = Run::new();
    let summary = run.calibrate(Some(&fixture("yolo_v3_quant.cfg"))).unwrap();
    assert!(summary.outputs.quant_json.ends_with("m_quant.json") && summary.outputs.quant_report.ends_with("m_quant_report.json"));
    let rule = json_file(&summary.outputs.quant_json);
    let ops = rule["graph"][0]["op"].as_array().unwrap_or_else(|| panic!("graph[0].op[]: {rule}"));
    let by_name: HashMap<&str, &Value> = ops.iter().map(|o| (o["name"].as_str().unwrap(), o)).collect();
    assert_eq!(by_name.len(), ops.len(), "op names are unique");

    // Every deploy-model node, with its type and inputs as producer:index.
    let deploy = load_model(&summary.outputs.deploy_model).unwrap();
    let g = deploy.graph.as_ref().unwrap();
    for n in &g.node {
        let op = by_name.get(n.name()).unwrap_or_else(|| panic!("deploy node {} missing", n.name()));
        assert_eq!(op["type"], n.op_type(), "{}", n.name());
        assert_eq!(op["input"].as_array().unwrap().len(), n.input.len(), "{}", n.name());
        for i in op["input"].as_array().unwrap() {
            let (producer, index) = i.as_str().unwrap().rsplit_once(':').unwrap();
            assert!(by_name.contains_key(producer) && index.parse::<usize>().is_ok(), "{}: input {i}", n.name());
        }
        assert_eq!(op["output_desc"].as_array().unwrap().len(), n.output.len(), "{}", n.name());
    }
    assert_eq!(by_name["x"]["type"], "Data");
    assert_eq!(by_name["w"]["type"], "Const");

    // The inserted nodes name ops of the float model; the layers name themselves (and the
    // BatchNormalization folded into the conv); other nodes name themselves.
    let float_nodes: HashSet<String> = conv_gemm_matmul().graph.unwrap().node.iter().map(|n| n.name().to_string()).collect();
    let inserted: Vec<&Value> = ops.iter().filter(|o| o["type"] == "AscendQuant" || o["type"] == "AscendDequant").collect();
    assert_eq!(inserted.len(), 6, "a quant and a dequant per layer");
    for op in &inserted {
        let names = original_names(op);
        assert!(!names.is_empty() && names.iter().all(|n| float_nodes.contains(n)), "{}: {names:?}", op["name"]);
    }
    assert_eq!(original_names(by_name["conv.quant"]), ["conv", "bn"]);
    assert_eq!(original_names(by_name["conv.dequant"]), ["conv", "bn"]);
    assert_eq!(original_names(by_name["conv"]), ["conv", "bn"]);
    assert_eq!(original_names(by_name["fc.dequant"]), ["fc"]);
    assert_eq!(original_names(by_name["mm.dequant"]), ["mm", "mm_bias"]);
    assert_eq!(original_names(by_name["relu"]), ["relu"]);

    // dtypes and shapes: int8 out of AscendQuant, float out of AscendDequant, int8 weights.
    let desc = |name: &str| by_name[name]["output_desc"][0].clone();
    assert_eq!(
        (desc("conv.quant")["dtype"].as_str(), desc("conv.quant")["shape"]["dim"].clone()),
        (Some("DT_INT8"), serde_json::json!([1, 3, 8, 8]))
    );
    assert_eq!(desc("conv")["dtype"], "DT_INT32");
    assert_eq!(desc("conv.dequant")["dtype"], "DT_FLOAT");
    assert_eq!(desc("w")["dtype"], "DT_INT8");
    assert_eq!(desc("fc.dequant")["shape"]["dim"], serde_json::json!([1, 6]));
    // The dequant output is the float model's BN output (the conv's original one is gone).
    let origin = attrs(&desc("conv.dequant"));
    assert_eq!(
        (origin["_datadump_origin_name"]["s"].as_str(), origin["_datadump_origin_output_index"]["i"].as_i64()),
        (Some("bn"), Some(0))
    );
    // The MatMul's int32 output keeps the float tensor's name but not its values: no origin.
    assert_eq!(desc("mm")["dtype"], "DT_INT32");
    assert!(!attrs(&desc("mm")).contains_key("_datadump_origin_name"), "{}", desc("mm"));
    assert_eq!(attrs(&desc("relu"))["_datadump_origin_name"]["s"], "relu");

    // Key names, nesting and val_type as the real int8-OM JSON.
    let real: Value = serde_json::from_str(&read_fixture("resnet101_int8_om_atc_mode1.json")).unwrap();
    let real_ops = real["graph"][0]["op"].as_array().unwrap();
    let real_conv = real_ops.iter().find(|o| o["type"] == "Conv2D").unwrap();
    let real_names = &attrs(real_conv)["_datadump_original_op_names"];
    assert_eq!(structure(&attrs(by_name["conv.quant"])["_datadump_original_op_names"]), structure(real_names));
    assert_eq!(attrs(by_name["conv.quant"])["_datadump_original_op_names"]["list"]["val_type"], "VT_LIST_STRING");
    let real_const = real_ops.iter().find(|o| o["type"] == "Const").unwrap();
    assert_eq!(attrs(by_name["w"])["_datadump_original_op_names"], attrs(real_const)["_datadump_original_op_names"]);
    let real_desc = attrs(&real_conv["output_desc"][0]);
    for key in ["_datadump_origin_name", "_datadump_origin_output_index", "origin_format", "origin_shape"] {
        assert_eq!(structure(&origin[key]), structure(&real_desc[key]), "{key}");
    }
    for key in ["name", "type", "id", "input"] {
        assert_eq!(structure(&by_name["conv.quant"][key]), structure(&real_conv[key]), "{key}");
    }
    let entry = |op: &Value| op["attr"].as_array().unwrap().iter().find(|kv| kv["key"] == "_datadump_original_op_names").cloned().unwrap();
    assert_eq!(structure(&entry(by_name["conv.quant"])), structure(&entry(real_conv)), "attr entry {{key, value}}");
    for key in ["dtype", "layout", "shape"] {
        assert_eq!(structure(&desc("conv.quant")[key]), structure(&real_conv["output_desc"][0][key]), "output_desc.{key}");
    }
    // The real file's ops carry their input edges as producer:index too.
    assert!(real_conv["input"][0].as_str().unwrap().ends_with(":0"));
}

//! `ascend-ptq om-info` on OM files built here per docs/ascend-formats.md §12:
//! header + partition table (old and new layouts, model_num = 2) + a ModelDef encoded with a
//! small wire-format writer straight from the §12.3 field table (independent of
//! proto/ge_ir.proto, so a wrong field number there fails these tests).

mod common;

use std::path::{Path, PathBuf};

use ascend_ptq::device::om::{OmError, TableLayout, om_info_file};
use serde_json::{Value, json};

// ---- protobuf wire writer -------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn int_field(out: &mut Vec<u8>, field: u64, v: i64) {
    varint(out, field << 3);
    varint(out, v as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// AttrDef values: s = 2, i = 3, list = 1 (ListValue.s = 2, val_type = 20).
enum Attr<'a> {
    S(&'a str),
    I(i64),
    ListS(&'a [&'a str]),
}

fn attr_def(value: &Attr) -> Vec<u8> {
    let mut a = Vec::new();
    match value {
        Attr::S(s) => bytes_field(&mut a, 2, s.as_bytes()),
        Attr::I(i) => int_field(&mut a, 3, *i),
        Attr::ListS(items) => {
            let mut list = Vec::new();
            for s in *items {
                bytes_field(&mut list, 2, s.as_bytes());
            }
            int_field(&mut list, 20, 1);
            bytes_field(&mut a, 1, &list);
        }
    }
    a
}

/// A map<string, AttrDef> entry (key = 1, value = 2) as field `field` of the parent.
fn attr_entry(out: &mut Vec<u8>, field: u64, key: &str, value: Attr) {
    let mut entry = Vec::new();
    bytes_field(&mut entry, 1, key.as_bytes());
    bytes_field(&mut entry, 2, &attr_def(&value));
    bytes_field(out, field, &entry);
}

/// TensorDescriptor: name 1, dtype 2 (proto numbering), shape 3 (ShapeDef.dim 1), layout 4.
fn tensor_desc(name: &str, dtype: i64, dims: &[i64], layout: &str) -> Vec<u8> {
    let mut d = Vec::new();
    bytes_field(&mut d, 1, name.as_bytes());
    int_field(&mut d, 2, dtype);
    let mut packed = Vec::new();
    for &dim in dims {
        varint(&mut packed, dim as u64);
    }
    let mut shape = Vec::new();
    bytes_field(&mut shape, 1, &packed);
    bytes_field(&mut d, 3, &shape);
    bytes_field(&mut d, 4, layout.as_bytes());
    d
}

struct Op<'a> {
    name: &'a str,
    ty: &'a str,
    attrs: Vec<(&'a str, Attr<'a>)>,
    input_desc: Vec<Vec<u8>>,
    output_desc: Vec<Vec<u8>>,
}

fn op<'a>(name: &'a str, ty: &'a str) -> Op<'a> {
    Op { name, ty, attrs: Vec::new(), input_desc: Vec::new(), output_desc: Vec::new() }
}

/// OpDef: name 1, type 2, attr 10, input_desc 33, output_desc 34.
fn op_def(op: Op) -> Vec<u8> {
    let mut o = Vec::new();
    bytes_field(&mut o, 1, op.name.as_bytes());
    bytes_field(&mut o, 2, op.ty.as_bytes());
    for (k, v) in op.attrs {
        attr_entry(&mut o, 10, k, v);
    }
    for d in &op.input_desc {
        bytes_field(&mut o, 33, d);
    }
    for d in &op.output_desc {
        bytes_field(&mut o, 34, d);
    }
    o
}

/// ModelDef: name 1, version 2, custom_version 3, graph 7 (GraphDef: name 1, op 6), attr 11.
fn model_def(name: &str, ops: Vec<Op>, attrs: Vec<(&str, Attr)>) -> Vec<u8> {
    let mut graph = Vec::new();
    bytes_field(&mut graph, 1, format!("{name}_graph").as_bytes());
    for o in ops {
        bytes_field(&mut graph, 6, &op_def(o));
    }
    let mut m = Vec::new();
    bytes_field(&mut m, 1, name.as_bytes());
    int_field(&mut m, 2, 2);
    bytes_field(&mut m, 3, b"1.11.z.0");
    bytes_field(&mut m, 7, &graph);
    for (k, v) in attrs {
        attr_entry(&mut m, 11, k, v);
    }
    m
}

const ATC_CMDLINE: &str = "atc --model=yolo_deploy_model.onnx --framework=5 --output=yolo_int8 --soc_version=Ascend310P3";

/// A detection-like INT8 model with static AIPP: inputs deliberately out of order in the graph.
fn quantized_model_def() -> Vec<u8> {
    let mut scale = op("scale", "Data");
    scale.attrs = vec![("index", Attr::I(1)), ("data_type", Attr::I(0))];
    scale.output_desc = vec![tensor_desc("scale", 1, &[1, 2], "ND")];
    let mut mask = op("mask", "Data");
    // No output_desc: the dtype comes from attr data_type in C++ numbering (1 = FLOAT16).
    mask.attrs = vec![("index", Attr::I(2)), ("data_type", Attr::I(1))];
    let mut images = op("images", "Data");
    images.attrs = vec![("index", Attr::I(0))];
    images.output_desc = vec![tensor_desc("images", 4, &[1, 3, 640, 640], "NCHW")];
    let mut aipp = op("aipp_0", "Aipp");
    aipp.input_desc = vec![tensor_desc("", 4, &[1, 3, 640, 640], "NCHW")];
    let mut quant = op("conv0_quant", "AscendQuant");
    quant.attrs = vec![("_datadump_original_op_names", Attr::ListS(&["Conv_0"]))];
    let mut conv = op("Conv_0", "Conv2D");
    conv.attrs = vec![("_datadump_original_op_names", Attr::ListS(&["Conv_0", "Relu_1"]))];
    conv.input_desc = vec![tensor_desc("", 3, &[1, 3, 640, 640], "NC1HWC0")];
    let mut dequant = op("conv0_dequant", "AscendDequant");
    dequant.attrs = vec![("_datadump_original_op_names", Attr::ListS(&["Conv_0"])), ("dtype", Attr::I(0))];
    let mut relu = op("Relu_2", "Relu");
    relu.input_desc = vec![tensor_desc("", 1, &[1, 16, 320, 320], "NCHW")];
    let relu2 = op("Relu_3", "Relu");
    let mut out = op("Node_Output", "NetOutput");
    out.input_desc = vec![tensor_desc("output0", 1, &[1, 84, 8400], "ND"), tensor_desc("", 2, &[1, 4], "ND")];
    model_def(
        "yolo_int8",
        vec![scale, mask, images, aipp, quant, conv, dequant, relu, relu2, out],
        vec![
            ("soc_version", Attr::S("Ascend310P3")),
            ("framework_type", Attr::S("Onnx")),
            ("atc_cmdline", Attr::S(ATC_CMDLINE)),
            ("atc_version", Attr::S("8.1.RC1")),
            ("attr_model_out_nodes_name", Attr::ListS(&["Conv_99:0:output0", "Mul_5:0:out1"])),
        ],
    )
}

fn plain_model_def(name: &str) -> Vec<u8> {
    let mut x = op("x", "Data");
    x.attrs = vec![("index", Attr::I(0))];
    x.output_desc = vec![tensor_desc("x", 2, &[1, 8], "ND")];
    let mut out = op("Node_Output", "NetOutput");
    out.input_desc = vec![tensor_desc("y", 2, &[1, 8], "ND")];
    model_def(name, vec![x, op("Relu_0", "Relu"), out], vec![("soc_version", Attr::S("Ascend310"))])
}

// ---- OM writer ------------------------------------------------------------------------

/// One model block: [table][payloads] with (type, payload) partitions.
fn block(layout: TableLayout, parts: &[(u32, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(parts.len() as u32).to_le_bytes());
    if layout == TableLayout::New {
        b.extend_from_slice(&[0; 4]);
    }
    let mut offset = 0u64;
    for (ty, payload) in parts {
        b.extend_from_slice(&ty.to_le_bytes());
        match layout {
            TableLayout::Old => {
                b.extend_from_slice(&(offset as u32).to_le_bytes());
                b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            }
            TableLayout::New => {
                b.extend_from_slice(&[0; 4]);
                b.extend_from_slice(&offset.to_le_bytes());
                b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            }
        }
        offset += payload.len() as u64;
    }
    for (_, payload) in parts {
        b.extend_from_slice(payload);
    }
    b
}

/// Header (§12.1) + blocks; the new layout also fills model_length at offset 184.
fn om_file(layout: TableLayout, blocks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = blocks.concat();
    let mut h = vec![0u8; 256];
    h[0..4].copy_from_slice(b"IMOD");
    h[4..8].copy_from_slice(&256u32.to_le_bytes());
    h[8..12].copy_from_slice(&0x2000_0000u32.to_le_bytes());
    h[76..80].copy_from_slice(&(body.len() as u32).to_le_bytes());
    h[82] = 1; // standard model
    h[84..84 + 9].copy_from_slice(b"yolo_int8");
    h[116..120].copy_from_slice(&1234u32.to_le_bytes());
    h[152..156].copy_from_slice(&2u32.to_le_bytes());
    h[156..160].copy_from_slice(&(blocks.len() as u32).to_le_bytes());
    h[160..168].copy_from_slice(b"1.11.z.0");
    h[180] = 1;
    if layout == TableLayout::New {
        h[184..192].copy_from_slice(&(body.len() as u64).to_le_bytes());
        h[192] = 1;
    }
    [h, body].concat()
}

const WEIGHTS: &[u8] = &[7; 40];
const TASKS: &[u8] = &[9; 12];
const KERNELS: &[u8] = &[1, 2, 3];

fn quantized_om(layout: TableLayout) -> Vec<u8> {
    let def = quantized_model_def();
    om_file(layout, &[block(layout, &[(0, &def), (1, WEIGHTS), (2, TASKS), (3, KERNELS)])])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn om_info_json(path: &Path) -> Value {
    let out = common::cli().arg("om-info").arg(path).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The facts of `quantized_model_def` as the reader must report them.
fn check_quantized_model(m: &Value) {
    assert_eq!(m["name"], "yolo_int8");
    assert_eq!(m["ir_version"], 2);
    assert_eq!(m["custom_version"], "1.11.z.0");
    assert_eq!(m["graph_name"], "yolo_int8_graph");
    assert_eq!(m["soc_version"], "Ascend310P3");
    assert_eq!(m["framework_type"], "Onnx");
    assert_eq!(m["atc_cmdline"], ATC_CMDLINE);
    assert_eq!(m["atc_version"], "8.1.RC1");
    assert_eq!(m["opp_version"], Value::Null);
    assert_eq!(
        m["inputs"],
        json!([
            {"name": "images", "op_type": "Data", "index": 0, "shape": [1, 3, 640, 640], "dtype": "UINT8", "format": "NCHW"},
            {"name": "scale", "op_type": "Data", "index": 1, "shape": [1, 2], "dtype": "FLOAT", "format": "ND"},
            {"name": "mask", "op_type": "Data", "index": 2, "shape": [], "dtype": "FLOAT16", "format": ""},
        ])
    );
    assert_eq!(
        m["outputs"],
        json!([
            {"name": "output0", "op_type": "NetOutput", "index": null, "shape": [1, 84, 8400], "dtype": "FLOAT", "format": "ND"},
            {"name": "Node_Output:1", "op_type": "NetOutput", "index": null, "shape": [1, 4], "dtype": "FLOAT16", "format": "ND"},
        ])
    );
    assert_eq!(m["output_nodes"], json!(["Conv_99:0:output0", "Mul_5:0:out1"]));
    assert_eq!(m["aipp"], json!({"static_aipp": true, "dynamic_aipp": false, "ops": ["aipp_0"]}));
    assert_eq!(
        m["op_histogram"],
        json!({"Aipp": 1, "AscendDequant": 1, "AscendQuant": 1, "Conv2D": 1, "Data": 3, "NetOutput": 1, "Relu": 2})
    );
    assert_eq!(
        m["quantization"],
        json!({
            "quantized": true,
            "quant_ops": [
                {"name": "conv0_quant", "op_type": "AscendQuant", "original_op_names": ["Conv_0"]},
                {"name": "conv0_dequant", "op_type": "AscendDequant", "original_op_names": ["Conv_0"]},
            ],
            "int8_cube_ops": [{"name": "Conv_0", "op_type": "Conv2D", "original_op_names": ["Conv_0", "Relu_1"]}],
        })
    );
}

fn check_partitions(v: &Value, def_len: u64, table_len: u64) {
    let def_at = 256 + table_len;
    assert_eq!(
        v["partitions"],
        json!([
            {"model": 0, "type": 0, "type_name": "MODEL_DEF", "size": def_len, "file_offset": def_at, "mem_offset": 0},
            {"model": 0, "type": 1, "type_name": "WEIGHTS_DATA", "size": 40, "file_offset": def_at + def_len, "mem_offset": def_len},
            {"model": 0, "type": 2, "type_name": "TASK_INFO", "size": 12, "file_offset": def_at + def_len + 40, "mem_offset": def_len + 40},
            {"model": 0, "type": 3, "type_name": "TBE_KERNELS", "size": 3, "file_offset": def_at + def_len + 52, "mem_offset": def_len + 52},
        ])
    );
}

#[test]
fn old_layout_is_read_field_by_field_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = quantized_om(TableLayout::Old);
    let path = write(dir.path(), "yolo_int8.om", &bytes);
    let v = om_info_json(&path);
    assert_eq!(v["partition_layout"], "old");
    assert_eq!(v["model_num"], 1);
    assert_eq!(v["file_size"], bytes.len());
    let h = &v["header"];
    assert_eq!(h["name"], "yolo_int8");
    assert_eq!(h["version"], 0x2000_0000u32);
    assert_eq!(h["length"], bytes.len() - 256);
    assert_eq!(h["model_type"], 1);
    assert_eq!(h["ops"], 1234);
    assert_eq!(h["om_ir_version"], 2);
    assert_eq!(h["platform_version"], "1.11.z.0");
    assert_eq!(h["platform_type"], 1);
    assert_eq!(h["model_length"], Value::Null, "old header tail is reserved bytes");
    check_partitions(&v, quantized_model_def().len() as u64, 4 + 12 * 4);
    assert_eq!(v["models"].as_array().unwrap().len(), 1);
    check_quantized_model(&v["models"][0]);
}

#[test]
fn new_layout_is_read_field_by_field_through_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = quantized_om(TableLayout::New);
    let path = write(dir.path(), "yolo_int8_new.om", &bytes);
    let info = om_info_file(&path).unwrap();
    assert_eq!(info.partition_layout, TableLayout::New);
    assert_eq!(info.header.model_length, Some(bytes.len() as u64 - 256));
    assert_eq!(info.header.need_check_os_cpu_info, Some(1));
    let v = serde_json::to_value(&info).unwrap();
    check_partitions(&v, quantized_model_def().len() as u64, 8 + 24 * 4);
    check_quantized_model(&v["models"][0]);
    // The CLI prints the same summary.
    assert_eq!(om_info_json(&path), v);
}

#[test]
fn two_model_blocks_are_both_read() {
    let dir = tempfile::tempdir().unwrap();
    for layout in [TableLayout::Old, TableLayout::New] {
        let root = quantized_model_def();
        let sub = plain_model_def("sub_model");
        let bytes = om_file(layout, &[block(layout, &[(0, &root), (1, WEIGHTS)]), block(layout, &[(0, &sub), (2, TASKS)])]);
        let path = write(dir.path(), "two.om", &bytes);
        let v = om_info_json(&path);
        assert_eq!(v["partition_layout"], json!(layout), "{layout:?}");
        assert_eq!(v["model_num"], 2);
        let parts: Vec<(u64, &str, u64)> = v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["model"].as_u64().unwrap(), p["type_name"].as_str().unwrap(), p["size"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            parts,
            [(0, "MODEL_DEF", root.len() as u64), (0, "WEIGHTS_DATA", 40), (1, "MODEL_DEF", sub.len() as u64), (1, "TASK_INFO", 12)]
        );
        check_quantized_model(&v["models"][0]);
        let m1 = &v["models"][1];
        assert_eq!(m1["index"], 1);
        assert_eq!(m1["name"], "sub_model");
        assert_eq!(m1["soc_version"], "Ascend310");
        assert_eq!(
            m1["inputs"],
            json!([{"name": "x", "op_type": "Data", "index": 0, "shape": [1, 8], "dtype": "FLOAT16", "format": "ND"}])
        );
        assert_eq!(m1["outputs"][0]["name"], "y");
        assert_eq!(m1["quantization"]["quantized"], false);
        assert_eq!(m1["aipp"]["static_aipp"], false);
    }
}

#[test]
fn text_summary_shows_the_facts_a_user_looks_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "yolo_int8.om", &quantized_om(TableLayout::New));
    let out = common::cli().arg("om-info").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "SoC version: Ascend310P3",
        "Framework:   Onnx",
        "ATC version: 8.1.RC1",
        &format!("ATC command: {ATC_CMDLINE}"),
        "  #0 images  UINT8  [1, 3, 640, 640]  NCHW",
        "  #2 mask  FLOAT16  []  ",
        "  output0  FLOAT  [1, 84, 8400]  ND",
        "Output nodes: Conv_99:0:output0, Mul_5:0:out1",
        "AIPP:        static (aipp_0)",
        "Quantized:   yes (INT8)",
        "  AscendQuant conv0_quant <- Conv_0",
        "  Conv2D Conv_0 <- Conv_0, Relu_1",
        "Partitions:  new (u64 offsets/sizes)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

// ---- broken files -------------------------------------------------------------------

/// Runs the CLI on `bytes`; it must fail cleanly with a message naming the file and `expect`.
fn assert_rejected(dir: &Path, name: &str, bytes: &[u8], expect: &[&str]) {
    let path = write(dir, name, bytes);
    let out = common::cli().arg("om-info").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{name}: message must name the file: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{name}: expected {e:?} in: {stderr}");
    }
    assert!(om_info_file(&path).is_err());
}

fn set_length(bytes: &mut [u8], length: u32) {
    bytes[76..80].copy_from_slice(&length.to_le_bytes());
}

#[test]
fn broken_files_are_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = quantized_om(TableLayout::Old);

    assert_rejected(d, "empty.om", &[], &["file is empty"]);
    let onnx_like = [0x08, 0x07, 0x12, 0x04, b'x', b'y', b'z', b'w'];
    assert_rejected(d, "model.onnx.om", &onnx_like, &["not an Ascend OM model", "08 07 12 04", "49 4D 4F 44"]);
    assert_rejected(d, "tiny.om", b"IM", &["truncated", "2 bytes", "256-byte OM header"]);
    assert_rejected(d, "cut_header.om", &good[..100], &["truncated", "100 bytes", "256-byte OM header"]);

    // Cut inside the table: the length field no longer matches.
    assert_rejected(d, "cut_table.om", &good[..262], &["length field says", "has 6", "truncated"]);
    // The same cut with a length field patched to agree: the table itself is short.
    let mut cut = good[..262].to_vec();
    set_length(&mut cut, 6);
    assert_rejected(d, "cut_table_fixed_len.om", &cut, &["fits neither known layout", "truncated", "needs 52 bytes"]);

    let mut longer = good.clone();
    set_length(&mut longer, (good.len() - 256 + 10) as u32);
    assert_rejected(d, "bad_length.om", &longer, &["length field says", &format!("{} bytes follow", good.len() - 256 + 10)]);

    let mut garbage_table = good.clone();
    garbage_table[256..260].copy_from_slice(&1000u32.to_le_bytes());
    assert_rejected(d, "bad_table.om", &garbage_table, &["fits neither known layout", "declares 1000 partitions"]);

    let garbage = vec![0xFF_u8; 64];
    let bad_def = om_file(TableLayout::Old, &[block(TableLayout::Old, &[(0, &garbage), (1, WEIGHTS)])]);
    assert_rejected(
        d,
        "bad_modeldef.om",
        &bad_def,
        &["model 0", "MODEL_DEF partition (64 bytes at offset 284)", "not a ge.proto.ModelDef"],
    );

    let no_def = om_file(TableLayout::New, &[block(TableLayout::New, &[(1, WEIGHTS)])]);
    assert_rejected(d, "no_modeldef.om", &no_def, &["no MODEL_DEF partition"]);

    let mut other_magic = good.clone();
    other_magic[..4].copy_from_slice(b"PK\x03\x04");
    let path = write(d, "zip.om", &other_magic);
    assert!(matches!(om_info_file(&path), Err(OmError::BadMagic { found, .. }) if found == "50 4B 03 04"));

    let missing = d.join("missing.om");
    assert!(matches!(om_info_file(&missing), Err(OmError::Io { .. })));
}

/// Every prefix of a valid file is rejected without a panic (checked reads everywhere).
#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let good = quantized_om(TableLayout::New);
    for len in 0..good.len() {
        let mut cut = good[..len].to_vec();
        if len >= 80 {
            set_length(&mut cut, len.saturating_sub(256) as u32);
        }
        assert!(ascend_ptq::device::om::om_info_from_bytes(Path::new("cut.om"), &cut).is_err(), "prefix of {len} bytes was accepted");
    }
}

#[test]
fn dynamic_aipp_data_is_an_input_and_flagged() {
    let mut x = op("x", "Data");
    x.attrs = vec![("index", Attr::I(0))];
    x.output_desc = vec![tensor_desc("x", 4, &[1, 3, 224, 224], "NCHW")];
    let mut aipp_data = op("ascend_dynamic_aipp_data", "AippData");
    aipp_data.attrs = vec![("index", Attr::I(1))];
    aipp_data.output_desc = vec![tensor_desc("ascend_dynamic_aipp_data", 4, &[1, 144], "ND")];
    let mut out = op("Node_Output", "NetOutput");
    out.input_desc = vec![tensor_desc("y", 1, &[1, 1000], "ND")];
    let def = model_def("cls", vec![aipp_data, x, op("Aipp_0", "Aipp"), out], vec![]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "dyn_aipp.om", &om_file(TableLayout::New, &[block(TableLayout::New, &[(0, &def)])]));
    let m = &om_info_json(&path)["models"][0];
    assert_eq!(m["aipp"], json!({"static_aipp": true, "dynamic_aipp": true, "ops": ["ascend_dynamic_aipp_data", "Aipp_0"]}));
    let inputs: Vec<(&str, &str, &str)> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["op_type"].as_str().unwrap(), t["dtype"].as_str().unwrap()))
        .collect();
    assert_eq!(inputs, [("x", "Data", "UINT8"), ("ascend_dynamic_aipp_data", "AippData", "UINT8")]);
    assert_eq!(m["soc_version"], Value::Null);
    assert_eq!(m["quantization"]["quantized"], false);
}

/// `aptq_om_info` returns the CLI's JSON document, and a clear status + message on bad files.
#[test]
fn c_api_om_info_matches_the_cli_and_reports_errors() {
    use ascend_ptq::capi::{aptq_last_error, aptq_om_info, aptq_status, aptq_string_free};
    use std::ffi::{CStr, CString, c_char};

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "yolo_int8.om", &quantized_om(TableLayout::Old));
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    assert_eq!(unsafe { aptq_om_info(c_path.as_ptr(), &mut out) }, aptq_status::APTQ_OK);
    let json: Value = serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
    unsafe { aptq_string_free(out) };
    assert_eq!(json, om_info_json(&path));
    check_quantized_model(&json["models"][0]);

    let bad = write(dir.path(), "bad.om", b"not an om file at all");
    let c_bad = CString::new(bad.to_str().unwrap()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    assert_eq!(unsafe { aptq_om_info(c_bad.as_ptr(), &mut out) }, aptq_status::APTQ_INVALID_MODEL);
    assert!(out.is_null());
    let message = unsafe { CStr::from_ptr(aptq_last_error()) }.to_str().unwrap().to_string();
    assert!(message.contains("bad.om") && message.contains("not an Ascend OM model"), "{message}");

    let missing = CString::new(dir.path().join("missing.om").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { aptq_om_info(missing.as_ptr(), &mut out) }, aptq_status::APTQ_IO_ERROR);
    assert_eq!(unsafe { aptq_om_info(std::ptr::null(), &mut out) }, aptq_status::APTQ_INVALID_ARGUMENT);
}

/// Flipping bits anywhere in a valid file (header, table, ModelDef, payloads) gives a summary
/// or an error, never a panic: the reader's reads are all checked.
#[test]
fn corrupted_bytes_never_panic() {
    for layout in [TableLayout::Old, TableLayout::New] {
        let good = quantized_om(layout);
        let mut errors = 0;
        for i in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                let result = std::panic::catch_unwind(|| ascend_ptq::device::om::om_info_from_bytes(Path::new("flip.om"), &bad));
                let Ok(result) = result else { panic!("{layout:?}: flipping byte {i} with {mask:#04x} panicked") };
                errors += usize::from(result.is_err());
            }
        }
        // Flips in the magic, header size, length and table entries must all be caught.
        assert!(errors >= 3 * 4 + 3 * 4 + 3 * 4, "{layout:?}: only {errors} corruptions were detected");
    }
}

/// The seed corpora of the fuzz targets (fuzz/make_seeds.py, which scripts/fuzz.sh runs): the
/// `om_reader` seeds are valid OM files of every layout (so fuzzing starts from files that
/// reach the ModelDef and MODEL_INOUT_INFO decoders), including the small real ATC files with
/// their large partitions cut; the ONNX seeds load; every target gets seeds.
#[test]
fn fuzz_seed_corpora_are_valid_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(common::repo_root().join("fuzz/make_seeds.py"))
        .arg("all")
        .arg(tmp.path())
        .output()
        .expect("run python3 fuzz/make_seeds.py");
    assert!(out.status.success(), "make_seeds.py: {}", String::from_utf8_lossy(&out.stderr));
    let files = |target: &str| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(tmp.path().join(target)).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    let mut real = 0;
    let mut sources = std::collections::BTreeSet::new();
    for path in files("om_reader") {
        let info = om_info_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!info.models.is_empty(), "{}", path.display());
        sources.extend(info.models.iter().map(|m| format!("{:?}", m.io_source)));
        if path.file_name().unwrap().to_str().unwrap().starts_with("real_") {
            real += 1;
            assert_eq!(info.models[0].target_type.as_deref(), Some("MINI"), "{}", path.display());
            assert!(!info.models[0].inputs.is_empty(), "{}", path.display());
        }
    }
    assert_eq!(real, 2, "the two real fixtures with ModelDefs under 64 KiB (A3C Pong) are seeds");
    assert_eq!(sources.len(), 2, "seeds reach both input/output sources: {sources:?}");
    for path in files("onnx_load") {
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The fuzz target's external-data file: 4 KiB of (i * 37 % 251).
        let weights: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(dir.path().join("weights.bin"), weights).unwrap();
        ascend_ptq::onnx::io::load_model_from_bytes(&bytes, &path, Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
    }
    for target in ["calib_config", "aipp_cfg", "params_json", "calib_bins"] {
        assert!(files(target).len() >= 4, "{target}: {:?}", files(target));
    }
}

// ---- CANN 6–8 files (docs/ascend-formats.md §12.5, §12.6) -----------------------------

/// One MODEL_INOUT_INFO tensor record as GE's ModelIntroduction writes it (§12.6): {u64 size,
/// i32 format, i32 dtype, u32 name_len, u32 dims_len, u32 dims_v2_len, u32 range_len}, then
/// the name and the i64 arrays; lengths in bytes, aclFormat / aclDataType numbers.
fn inout_tensor(name: &str, size: u64, format: i32, dtype: i32, dims: &[i64]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&size.to_le_bytes());
    r.extend_from_slice(&format.to_le_bytes());
    r.extend_from_slice(&dtype.to_le_bytes());
    r.extend_from_slice(&(name.len() as u32).to_le_bytes());
    r.extend_from_slice(&(8 * dims.len() as u32).to_le_bytes());
    r.extend_from_slice(&(8 * dims.len() as u32).to_le_bytes());
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    for _ in 0..2 {
        for d in dims {
            r.extend_from_slice(&d.to_le_bytes());
        }
    }
    r
}

/// A block {u32 type, u32 length, value}; tensor blocks' value is {u32 count, records}.
fn inout_block(kind: u32, tensors: &[Vec<u8>]) -> Vec<u8> {
    let mut value = (tensors.len() as u32).to_le_bytes().to_vec();
    tensors.iter().for_each(|t| value.extend_from_slice(t));
    let mut b = kind.to_le_bytes().to_vec();
    b.extend_from_slice(&(value.len() as u32).to_le_bytes());
    b.extend_from_slice(&value);
    b
}

/// What a CANN 8 ATC would record for `quantized_model_def`: inputs in index order, outputs
/// named from attr_model_out_nodes_name, plus a dynamic-batch block (type 2) that is skipped.
fn quantized_inout() -> Vec<u8> {
    let inputs = [
        inout_tensor("images", 1_228_800, 0, 4, &[1, 3, 640, 640]),
        inout_tensor("scale", 8, 2, 0, &[1, 2]),
        inout_tensor("mask", 2, 2, 1, &[1, 1]),
    ];
    let outputs = [inout_tensor("Conv_99:0:output0", 2_688_000, 2, 0, &[1, 84, 8400]), inout_tensor("Mul_5:0:out1", 8, 2, 1, &[1, 4])];
    let mut dynamic_batch = 2u32.to_le_bytes().to_vec();
    dynamic_batch.extend_from_slice(&12u32.to_le_bytes());
    dynamic_batch.extend_from_slice(&1u32.to_le_bytes());
    dynamic_batch.extend_from_slice(&1i64.to_le_bytes());
    [inout_block(0, &inputs), inout_block(1, &outputs), dynamic_batch].concat()
}

/// The CANN 8 header (§12.5): 0 in the u32 length at 76, the body length as u64 at 184, 0 at
/// 152, model_num at 156, the platform string at 160.
fn cann8_om(model_num: u32, model_type: u8, blocks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = blocks.concat();
    let mut h = vec![0u8; 256];
    h[0..4].copy_from_slice(b"IMOD");
    h[4..8].copy_from_slice(&256u32.to_le_bytes());
    h[8..12].copy_from_slice(&0x2000_0000u32.to_le_bytes());
    h[82] = model_type;
    h[84..84 + 7].copy_from_slice(b"lanenet");
    h[156..160].copy_from_slice(&model_num.to_le_bytes());
    h[160..168].copy_from_slice(b"1.11.z.0");
    h[184..192].copy_from_slice(&(body.len() as u64).to_le_bytes());
    [h, body].concat()
}

/// The partition sequence a CANN 8 ATC writes: MODEL_INOUT_INFO first, then 0, 1, 3, 2.
fn cann8_quantized(model_num: u32, inout: &[u8]) -> Vec<u8> {
    let def = quantized_model_def();
    cann8_om(model_num, 1, &[block(TableLayout::New, &[(8, inout), (0, &def), (1, WEIGHTS), (3, KERNELS), (2, TASKS)])])
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|p| p[key].as_str().unwrap().to_string()).collect()
}

#[test]
fn cann8_layout_reads_inputs_and_outputs_from_model_inout_info() {
    let dir = tempfile::tempdir().unwrap();
    for model_num in [1, 0] {
        let bytes = cann8_quantized(model_num, &quantized_inout());
        let path = write(dir.path(), "cann8.om", &bytes);
        let v = om_info_json(&path);
        let h = &v["header"];
        assert_eq!(h["length"], 0);
        assert_eq!(h["model_length"], bytes.len() - 256);
        assert_eq!(h["om_ir_version"], 0);
        assert_eq!(h["model_num"], model_num, "as stored");
        assert_eq!(h["platform_version"], "1.11.z.0");
        assert_eq!(v["model_num"], 1, "model_num {model_num} means one model");
        assert_eq!(v["partition_layout"], "new");
        assert_eq!(names(&v["partitions"], "type_name"), ["MODEL_INOUT_INFO", "MODEL_DEF", "WEIGHTS_DATA", "TBE_KERNELS", "TASK_INFO"]);
        let m = &v["models"][0];
        assert_eq!(m["io_source"], "model_inout_info");
        assert_eq!(m["io_note"], Value::Null);
        assert_eq!(
            m["inputs"],
            json!([
                {"name": "images", "op_type": "Data", "index": 0, "shape": [1, 3, 640, 640], "dtype": "UINT8", "format": "NCHW"},
                {"name": "scale", "op_type": "Data", "index": 1, "shape": [1, 2], "dtype": "FLOAT", "format": "ND"},
                {"name": "mask", "op_type": "Data", "index": 2, "shape": [1, 1], "dtype": "FLOAT16", "format": "ND"},
            ])
        );
        assert_eq!(
            m["outputs"],
            json!([
                {"name": "Conv_99:0:output0", "op_type": "NetOutput", "index": null, "shape": [1, 84, 8400], "dtype": "FLOAT", "format": "ND"},
                {"name": "Mul_5:0:out1", "op_type": "NetOutput", "index": null, "shape": [1, 4], "dtype": "FLOAT16", "format": "ND"},
            ])
        );
        // Everything else still comes from the ModelDef.
        assert_eq!(m["soc_version"], "Ascend310P3");
        assert_eq!(m["atc_cmdline"], ATC_CMDLINE);
        assert_eq!(m["quantization"]["quantized"], true);
        assert_eq!(m["aipp"]["static_aipp"], true);
    }
    let path = write(dir.path(), "cann8.om", &cann8_quantized(1, &quantized_inout()));
    let out = common::cli().arg("om-info").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Body length: ",
        "(u64 model_length at offset 184)",
        "I/O from:    MODEL_INOUT_INFO partition",
        "  #0 images  UINT8  [1, 3, 640, 640]  NCHW",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// An unreadable MODEL_INOUT_INFO is not fatal: the ModelDef's inputs and outputs are used
/// and the summary says why.
#[test]
fn unreadable_model_inout_info_falls_back_to_the_model_def() {
    let dir = tempfile::tempdir().unwrap();
    let good = quantized_inout();
    // name_len of the first input record (block header 8 + count 4 + size/format/dtype 16).
    let mut long_name = good.clone();
    long_name[28..32].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    let mut huge_count = good.clone();
    huge_count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut unknown_block = good.clone();
    unknown_block[0..4].copy_from_slice(&77u32.to_le_bytes());
    for (case, inout, reason) in [
        ("long_name", long_name, "tensor 0: name: 16777215 bytes needed"),
        ("huge_count", huge_count, "declares 4294967295 tensors"),
        ("unknown_block", unknown_block, "unknown block type 77"),
        ("trailing", [good.clone(), vec![1, 2, 3]].concat(), "block type: 4 bytes needed"),
        ("empty", Vec::new(), "the partition is empty"),
    ] {
        let path = write(dir.path(), &format!("{case}.om"), &cann8_quantized(1, &inout));
        let v = om_info_json(&path);
        let m = &v["models"][0];
        assert_eq!(m["io_source"], "model_def", "{case}");
        let note = m["io_note"].as_str().unwrap_or_default();
        assert!(
            note.contains("MODEL_INOUT_INFO partition") && note.contains("could not be read") && note.contains(reason),
            "{case}: {note}"
        );
        assert!(note.contains("inputs and outputs are from the ModelDef"), "{case}: {note}");
        // Exactly the ModelDef's view, as the file without MODEL_INOUT_INFO gives it.
        check_quantized_model(m);
    }
}

#[test]
fn unknown_partition_types_are_listed_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let def = quantized_model_def();
    let blob = [5u8; 9];
    for layout in [TableLayout::Old, TableLayout::New] {
        let bytes = om_file(layout, &[block(layout, &[(0, &def), (99, &blob), (1, WEIGHTS)])]);
        let path = write(dir.path(), "unknown.om", &bytes);
        let v = om_info_json(&path);
        assert_eq!(v["partition_layout"], json!(layout));
        let p = &v["partitions"][1];
        assert_eq!((p["type"].as_u64(), p["type_name"].as_str(), p["size"].as_u64()), (Some(99), Some("UNKNOWN"), Some(9)));
        check_quantized_model(&v["models"][0]);
        let text = String::from_utf8_lossy(&common::cli().arg("om-info").arg(&path).output().unwrap().stdout).into_owned();
        assert!(text.contains("UNKNOWN (type 99)"), "{text}");
    }
}

/// A "root" model (model_num 3: one [table][payloads] block per sub-model, §12.5) in the CANN 8
/// header, and a flow model (modeltype 3, partitions 0, 6, 7) whose ModelDef has no graph.
#[test]
fn root_and_flow_models_in_the_cann8_header() {
    let dir = tempfile::tempdir().unwrap();
    let root = quantized_model_def();
    let sub1 = plain_model_def("sub_1");
    let sub2 = plain_model_def("sub_2");
    let inout = quantized_inout();
    let bytes = cann8_om(
        3,
        1,
        &[
            block(TableLayout::New, &[(8, &inout), (0, &root), (1, WEIGHTS)]),
            block(TableLayout::New, &[(0, &sub1), (2, TASKS)]),
            block(TableLayout::New, &[(0, &sub2)]),
        ],
    );
    let v = om_info_json(&write(dir.path(), "root.om", &bytes));
    assert_eq!(v["model_num"], 3);
    assert_eq!(v["partition_layout"], "new");
    let models = v["models"].as_array().unwrap();
    assert_eq!(names(&v["models"], "name"), ["yolo_int8", "sub_1", "sub_2"]);
    assert_eq!(models[0]["io_source"], "model_inout_info");
    assert_eq!(models[1]["io_source"], "model_def");
    assert_eq!(models[2]["inputs"][0]["shape"], json!([1, 8]));
    let blocks: Vec<u64> = v["partitions"].as_array().unwrap().iter().map(|p| p["model"].as_u64().unwrap()).collect();
    assert_eq!(blocks, [0, 0, 0, 1, 1, 2]);

    // Flow model: a ModelDef with a name and attrs but no graph.
    let mut flow_def = Vec::new();
    bytes_field(&mut flow_def, 1, b"flow_pipeline");
    int_field(&mut flow_def, 2, 2);
    attr_entry(&mut flow_def, 11, "soc_version", Attr::S("Ascend310B4"));
    let flow = cann8_om(1, 3, &[block(TableLayout::New, &[(0, &flow_def), (6, &[1; 20]), (7, &[2; 30]), (7, &[3; 10])])]);
    let v = om_info_json(&write(dir.path(), "flow.om", &flow));
    assert_eq!(v["header"]["model_type"], 3);
    assert_eq!(names(&v["partitions"], "type_name"), ["MODEL_DEF", "FLOW_MODEL", "FLOW_SUBMODEL", "FLOW_SUBMODEL"]);
    let m = &v["models"][0];
    assert_eq!(m["name"], "flow_pipeline");
    assert_eq!(m["soc_version"], "Ascend310B4");
    assert_eq!(m["inputs"], json!([]));
    assert!(m["io_note"].as_str().unwrap().contains("flow model"), "{}", m["io_note"]);

    // The same graph-less ModelDef in a standard model is a corrupt file.
    let not_flow = cann8_om(1, 1, &[block(TableLayout::New, &[(0, &flow_def), (1, WEIGHTS)])]);
    assert_rejected(dir.path(), "graphless.om", &not_flow, &["MODEL_DEF partition", "contains no graph"]);
}

/// A CANN 8 header whose u64 length disagrees with the file names that field.
#[test]
fn cann8_length_errors_name_the_u64_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = cann8_quantized(1, &quantized_inout());
    let cut = good[..good.len() - 5].to_vec();
    assert_rejected(dir.path(), "cut8.om", &cut, &["u64 model_length at offset 184", "the file is truncated"]);
    let mut zero = good.clone();
    zero[184..192].copy_from_slice(&[0; 8]);
    assert_rejected(dir.path(), "nolen.om", &zero, &["neither the u32 length at 76 nor the u64 model_length at 184 is set"]);
}

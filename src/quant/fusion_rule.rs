//! `<prefix>_quant.json`: the quant fusion rule for msaccucmp's `-q` option, in GE's graph-JSON
//! layout (docs/ascend-formats.md §7.3): one `graph` whose `op` list holds every node of the
//! deploy model (plus a `Data` op per graph input and a `Const` op per initializer a node reads),
//! each with `name`, `type`, `id`, `input` (`producer:index`), `attr` carrying
//! `_datadump_original_op_names` (the float-model op names the node stands for) and
//! `output_desc` (dtype, shape and, for a tensor the float model also has, the float op that
//! produced it). Which keys msaccucmp requires beyond what its parser reads is UNCONFIRMED
//! (formats §7.3).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::shapes::InferredShapes;
use crate::onnx::{ModelProto, node_label};

/// The names a golden (float-model) dump can be matched on: node names, and the producer of
/// every node output (op name, output index). Taken before BatchNormalization folding.
#[derive(Debug, Clone, Default)]
pub struct FloatOps {
    nodes: std::collections::HashSet<String>,
    producer: HashMap<String, (String, usize)>,
}

impl FloatOps {
    pub fn new(float_model: &ModelProto) -> Self {
        let mut ops = FloatOps::default();
        for (i, n) in float_model.graph.iter().flat_map(|g| g.node.iter().enumerate()) {
            let name = node_label(n, i);
            for (k, out) in n.output.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
                ops.producer.insert(out.clone(), (name.clone(), k));
            }
            ops.nodes.insert(name);
        }
        ops
    }

    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.contains(name)
    }
}

/// GE's `DT_*` name of an ONNX element type (ge_ir.proto `DataType`, formats §12.3).
fn ge_dtype(onnx: i32) -> Option<&'static str> {
    Some(match DataType::try_from(onnx).ok()? {
        DataType::Float => "DT_FLOAT",
        DataType::Float16 => "DT_FLOAT16",
        DataType::Bfloat16 => "DT_BF16",
        DataType::Double => "DT_DOUBLE",
        DataType::Int8 => "DT_INT8",
        DataType::Uint8 => "DT_UINT8",
        DataType::Int16 => "DT_INT16",
        DataType::Uint16 => "DT_UINT16",
        DataType::Int32 => "DT_INT32",
        DataType::Uint32 => "DT_UINT32",
        DataType::Int64 => "DT_INT64",
        DataType::Uint64 => "DT_UINT64",
        DataType::Bool => "DT_BOOL",
        DataType::String => "DT_STRING",
        DataType::Int4 => "DT_INT4",
        _ => return None,
    })
}

fn attr(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

fn string_list(names: &[String]) -> Value {
    // GE writes an empty list without "s" (Const ops in the real OM JSON).
    if names.is_empty() {
        json!({ "list": { "val_type": "VT_LIST_STRING" } })
    } else {
        json!({ "list": { "s": names, "val_type": "VT_LIST_STRING" } })
    }
}

/// One `output_desc` entry for tensor `t`: dtype and shape where inferred, `layout` and
/// `origin_format` NCHW for 4-D tensors (ND otherwise), and the float op producing the same
/// tensor name (holding the same values) as `_datadump_origin_name` /
/// `_datadump_origin_output_index`.
fn output_desc(t: &str, shapes: &InferredShapes, float: &FloatOps, int32: &HashSet<&str>) -> Value {
    let mut desc = serde_json::Map::new();
    let mut attrs = Vec::new();
    // An int32 accumulator keeps the float tensor's name (a MatMul before its bias Add) but not
    // its values: no origin for it.
    if let Some((op, index)) = float.producer.get(t).filter(|_| !int32.contains(t)) {
        attrs.push(attr("_datadump_origin_name", json!({ "s": op })));
        attrs.push(attr("_datadump_origin_output_index", json!({ "i": index })));
    }
    let dtype = if int32.contains(t) { Some("DT_INT32") } else { shapes.dtypes.get(t).and_then(|&d| ge_dtype(d)) };
    if let Some(dtype) = dtype {
        desc.insert("dtype".into(), json!(dtype));
    }
    if let Some(dims) = shapes.shape(t) {
        let format = if dims.len() == 4 { "NCHW" } else { "ND" };
        desc.insert("layout".into(), json!(format));
        desc.insert("shape".into(), json!({ "dim": dims }));
        attrs.push(attr("origin_format", json!({ "s": format })));
        attrs.push(attr("origin_shape", json!({ "list": { "i": dims, "val_type": "VT_LIST_INT" } })));
    }
    // msaccucmp reads an output's dtype only when the entry has an "attr" list.
    desc.insert("attr".into(), Value::Array(attrs));
    Value::Object(desc)
}

/// The int32 tensors of the deploy model (formats §2.1, §2.4): an AscendDequant's input, and the
/// inputs of the int32 bias `Add` producing it (a MatMul's accumulators). Shape inference types an
/// int8 Conv/Gemm/MatMul output like its input, so these are set here.
fn int32_accumulators(graph: &crate::onnx::GraphProto) -> HashSet<&str> {
    let producer: HashMap<&str, &crate::onnx::NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    let mut out = HashSet::new();
    for n in graph.node.iter().filter(|n| n.op_type() == "AscendDequant") {
        let Some(x) = n.input.first() else { continue };
        out.insert(x.as_str());
        if let Some(add) = producer.get(x.as_str()).filter(|p| p.op_type() == "Add") {
            out.extend(add.input.iter().filter(|i| producer.contains_key(i.as_str())).map(String::as_str));
        }
    }
    out
}

/// The fusion rule of `deploy`. `origins` gives, by deploy node name, the float ops a node
/// stands for when that is not the node itself (a quantized layer and the BatchNormalization
/// folded into it; the AscendQuant and AscendDequant inserted for it).
pub fn build(deploy: &ModelProto, float: &FloatOps, origins: &HashMap<String, Vec<String>>, shapes: &InferredShapes) -> Value {
    let Some(graph) = deploy.graph.as_ref() else { return json!({ "graph": [] }) };
    let int32 = int32_accumulators(graph);
    // tensor → "producer:index" as GE names edges.
    let mut edge: HashMap<&str, String> = HashMap::new();
    let mut ops = Vec::new();
    let mut push = |mut op: serde_json::Map<String, Value>| {
        op.insert("id".into(), json!(ops.len()));
        ops.push(Value::Object(op));
    };
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    for input in graph.input.iter().filter(|i| !initializers.contains(i.name())) {
        edge.insert(input.name(), format!("{}:0", input.name()));
        let mut op = serde_json::Map::new();
        op.insert("name".into(), json!(input.name()));
        op.insert("type".into(), json!("Data"));
        op.insert("attr".into(), json!([attr("_datadump_original_op_names", string_list(&[input.name().to_string()]))]));
        op.insert("output_desc".into(), json!([output_desc(input.name(), shapes, float, &int32)]));
        push(op);
    }
    let read: std::collections::HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    for t in graph.initializer.iter().filter(|t| read.contains(t.name())) {
        edge.insert(t.name(), format!("{}:0", t.name()));
        let mut op = serde_json::Map::new();
        op.insert("name".into(), json!(t.name()));
        op.insert("type".into(), json!("Const"));
        op.insert("attr".into(), json!([attr("_datadump_original_op_names", string_list(&[]))]));
        op.insert("output_desc".into(), json!([output_desc(t.name(), shapes, float, &int32)]));
        push(op);
    }
    for (i, n) in graph.node.iter().enumerate() {
        let name = node_label(n, i);
        for (k, out) in n.output.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
            edge.insert(out, format!("{name}:{k}"));
        }
    }
    for (i, n) in graph.node.iter().enumerate() {
        let name = node_label(n, i);
        let originals = origins.get(&name).cloned().unwrap_or_else(|| vec![name.clone()]);
        let inputs: Vec<String> = n
            .input
            .iter()
            .map(|t| if t.is_empty() { String::new() } else { edge.get(t.as_str()).cloned().unwrap_or_else(|| format!("{t}:0")) })
            .collect();
        let mut op = serde_json::Map::new();
        op.insert("name".into(), json!(name));
        op.insert("type".into(), json!(n.op_type()));
        op.insert("input".into(), json!(inputs));
        op.insert("attr".into(), json!([attr("_datadump_original_op_names", string_list(&originals))]));
        let descs: Vec<Value> = n.output.iter().filter(|o| !o.is_empty()).map(|o| output_desc(o, shapes, float, &int32)).collect();
        op.insert("output_desc".into(), Value::Array(descs));
        push(op);
    }
    let name = graph.name().to_string();
    json!({ "name": name, "graph": [{ "name": name, "op": ops }] })
}

/// The file text.
pub fn to_json(rule: &Value) -> String {
    let mut s = serde_json::to_string_pretty(rule).expect("plain data serializes");
    s.push('\n');
    s
}

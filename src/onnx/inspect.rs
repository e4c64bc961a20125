//! Model summary for `ascend-ptq inspect` and `aptq_inspect`: inputs and outputs,
//! opsets, op histogram, parameter count, and MACs of the cube-unit ops
//! (Conv/ConvTranspose/Gemm/MatMul) for a given input shape.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::error::{OnnxError, Result};
use super::graph::Graph;
use super::input_shape::InputShape;
use super::proto::type_proto;
use super::proto::{ModelProto, NodeProto, ValueInfoProto};
use super::shapes::{InferredShapes, infer_shapes};
use super::tensor::{DataType, element_count};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    Value(i64),
    Param(String),
    /// Neither a value nor a name (serialized as null).
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub dtype: String,
    pub shape: Option<Vec<Dim>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Opset {
    pub domain: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MacSummary {
    /// The input shapes the count is for.
    pub input_shapes: BTreeMap<String, Vec<i64>>,
    pub total: u64,
    pub by_op_type: BTreeMap<String, u64>,
    /// Cube ops whose shapes could not be resolved (their MACs are not in `total`).
    pub unresolved_nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub path: String,
    pub ir_version: i64,
    pub producer: String,
    pub graph_name: String,
    pub opset_imports: Vec<Opset>,
    pub inputs: Vec<TensorSummary>,
    pub outputs: Vec<TensorSummary>,
    pub node_count: usize,
    /// op type → count, domain-qualified for non-default domains (`com.microsoft:Gelu`)
    pub op_histogram: BTreeMap<String, usize>,
    /// initializers plus Constant-node tensors
    pub initializer_count: usize,
    /// elements in all initializers and Constant-node tensors
    pub parameter_count: u64,
    pub parameter_bytes: u64,
    /// None when an input is dynamic and no `--input_shape` fixes it.
    pub macs: Option<MacSummary>,
    /// Why `macs` is None.
    pub macs_note: Option<String>,
}

/// Loads `path` and summarizes it; `input_shapes` fixes dynamic inputs for MAC counting.
pub fn inspect_file(path: &Path, input_shapes: &[InputShape]) -> Result<ModelSummary> {
    let model = super::io::load_model(path)?;
    inspect_model(&model, &path.display().to_string(), input_shapes)
}

pub fn inspect_model(model: &ModelProto, label: &str, input_shapes: &[InputShape]) -> Result<ModelSummary> {
    let graph_proto =
        model.graph.as_ref().ok_or_else(|| OnnxError::NotAModel { path: label.into(), reason: "the model has no graph".into() })?;
    let graph = Graph::new(graph_proto)?;

    let mut op_histogram = BTreeMap::new();
    for node in graph.nodes() {
        *op_histogram.entry(qualified_op(node)).or_insert(0) += 1;
    }
    // Exporters such as paddle2onnx keep every weight in a Constant node instead of an
    // initializer, so both count as parameters.
    let constants = graph.nodes().iter().filter(|n| n.op_type() == "Constant" && n.domain().is_empty());
    let constant_tensors = constants.filter_map(|n| n.attribute.iter().find(|a| a.name() == "value")?.t.as_ref());
    let mut parameter_count = 0u64;
    let mut parameter_bytes = 0u64;
    let mut initializer_count = 0;
    for t in graph_proto.initializer.iter().chain(constant_tensors) {
        initializer_count += 1;
        let n = element_count(t.name(), &t.dims)? as u64;
        parameter_count += n;
        let dt = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
        parameter_bytes += super::tensor::raw_len(dt, n as usize) as u64;
    }

    let fixed: HashMap<String, Vec<i64>> = input_shapes.iter().map(|s| (s.name.clone(), s.dims.clone())).collect();
    let inputs: Vec<&str> = graph.real_inputs().map(|v| v.name()).collect();
    if let Some(name) = fixed.keys().find(|name| !inputs.contains(&name.as_str())) {
        return Err(OnnxError::Argument {
            flag: "--input_shape".into(),
            detail: format!("'{name}' is not an input of {label} (inputs: {inputs:?})"),
        });
    }
    let (macs, macs_note) = match static_input_shapes(&graph, &fixed) {
        Ok(shapes) => {
            let inferred = infer_shapes(model, &shapes)?;
            (Some(count_macs(&graph, &inferred, shapes)), None)
        }
        Err(note) => (None, Some(note)),
    };

    Ok(ModelSummary {
        path: label.to_string(),
        ir_version: model.ir_version(),
        producer: format!("{} {}", model.producer_name(), model.producer_version()).trim().to_string(),
        graph_name: graph_proto.name().to_string(),
        opset_imports: model.opset_import.iter().map(|o| Opset { domain: display_domain(o.domain()), version: o.version() }).collect(),
        inputs: graph.real_inputs().map(summarize_value).collect(),
        outputs: graph.outputs().iter().map(summarize_value).collect(),
        node_count: graph.nodes().len(),
        op_histogram,
        initializer_count,
        parameter_count,
        parameter_bytes,
        macs,
        macs_note,
    })
}

/// Input shapes for MAC counting: `--input_shape` where given (names checked), else the
/// declared static shape. Err(note) when some input stays dynamic.
fn static_input_shapes(graph: &Graph, fixed: &HashMap<String, Vec<i64>>) -> Result<HashMap<String, Vec<i64>>, String> {
    let inputs: Vec<&ValueInfoProto> = graph.real_inputs().collect();
    let mut shapes = HashMap::new();
    for v in inputs {
        let dims = match fixed.get(v.name()) {
            Some(dims) => dims.clone(),
            None => match value_dims(v) {
                Some(d) if d.iter().all(|d| matches!(d, Dim::Value(x) if *x > 0)) => {
                    d.into_iter().map(|d| if let Dim::Value(x) = d { x } else { unreachable!() }).collect()
                }
                _ => return Err(format!("input '{}' has a dynamic shape; pass --input_shape to count MACs", v.name())),
            },
        };
        if dims.iter().any(|&d| d < 1) {
            return Err(format!("input '{}' has a dynamic dimension in --input_shape; give a positive size to count MACs", v.name()));
        }
        shapes.insert(v.name().to_string(), dims);
    }
    Ok(shapes)
}

fn count_macs(graph: &Graph, inferred: &InferredShapes, input_shapes: HashMap<String, Vec<i64>>) -> MacSummary {
    let mut by_op_type = BTreeMap::new();
    let mut unresolved_nodes = Vec::new();
    let shape = |name: &String| inferred.shapes.get(name.as_str());
    for (i, node) in graph.nodes().iter().enumerate() {
        let op = node.op_type();
        if !matches!(op, "Conv" | "ConvTranspose" | "Gemm" | "MatMul") {
            continue;
        }
        let (x, w, y) = (node.input.first().and_then(shape), node.input.get(1).and_then(shape), node.output.first().and_then(shape));
        let macs = match (op, x, w, y) {
            // every output element: (C_in / group) × kernel products
            ("Conv", _, Some(w), Some(y)) => w.get(1..).map(|k| product(y).saturating_mul(product(k))),
            // every input element scatters into (C_out / group) × kernel outputs
            ("ConvTranspose", Some(x), Some(w), _) => w.get(1..).map(|k| product(x).saturating_mul(product(k))),
            // output elements × the reduced dimension K
            ("Gemm" | "MatMul", Some(a), _, Some(y)) => {
                let trans_a = op == "Gemm" && super::attr::NodeExt::attr_i(node, "transA", 0).unwrap_or(0) != 0;
                let k = match (a.len(), trans_a) {
                    (0, _) => None,
                    (1, _) => Some(a[0]),
                    (n, false) => Some(a[n - 1]),
                    (n, true) => Some(a[n - 2]),
                };
                k.map(|k| product(y).saturating_mul(k.max(0) as u64))
            }
            _ => None,
        };
        match macs {
            Some(m) => {
                let total = by_op_type.entry(op.to_string()).or_insert(0u64);
                *total = total.saturating_add(m);
            }
            None => unresolved_nodes.push(super::node_label(node, i)),
        }
    }
    MacSummary {
        input_shapes: input_shapes.into_iter().collect(),
        total: by_op_type.values().fold(0, |t: u64, &m| t.saturating_add(m)),
        by_op_type,
        unresolved_nodes,
    }
}

/// Saturating: the dims come from the file (a fuzzed model declared dims whose product overflows).
fn product(dims: &[i64]) -> u64 {
    dims.iter().fold(1u64, |p, &d| p.saturating_mul(d.max(0) as u64))
}

fn qualified_op(node: &NodeProto) -> String {
    match node.domain() {
        "" | "ai.onnx" => node.op_type().to_string(),
        d => format!("{d}:{}", node.op_type()),
    }
}

fn display_domain(d: &str) -> String {
    if d.is_empty() { "ai.onnx".into() } else { d.into() }
}

fn value_dims(v: &ValueInfoProto) -> Option<Vec<Dim>> {
    let shape = match v.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => t.shape.as_ref()?,
        type_proto::Value::SparseTensorType(t) => t.shape.as_ref()?,
        _ => return None,
    };
    Some(
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(super::proto::tensor_shape_proto::dimension::Value::DimValue(v)) => Dim::Value(*v),
                Some(super::proto::tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Param(p.clone()),
                None => Dim::Unknown,
            })
            .collect(),
    )
}

fn value_dtype(v: &ValueInfoProto) -> String {
    let elem = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t.elem_type(),
        Some(type_proto::Value::SparseTensorType(t)) => t.elem_type(),
        Some(type_proto::Value::SequenceType(_)) => return "sequence".into(),
        Some(type_proto::Value::MapType(_)) => return "map".into(),
        Some(type_proto::Value::OptionalType(_)) => return "optional".into(),
        Some(type_proto::Value::OpaqueType(_)) => return "opaque".into(),
        None => return "unknown".into(),
    };
    DataType::try_from(elem).map(|d| d.as_str_name().to_ascii_lowercase()).unwrap_or_else(|_| format!("dtype#{elem}"))
}

fn summarize_value(v: &ValueInfoProto) -> TensorSummary {
    TensorSummary { name: v.name().to_string(), dtype: value_dtype(v), shape: value_dims(v) }
}

fn format_shape(shape: &Option<Vec<Dim>>) -> String {
    match shape {
        None => "?".into(),
        Some(dims) => {
            let parts: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    Dim::Value(v) => v.to_string(),
                    Dim::Param(p) => p.clone(),
                    Dim::Unknown => "?".into(),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// Human-readable count: 1234567 → "1.23 M".
fn si(n: u64) -> String {
    let n = n as f64;
    for (scale, unit) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")] {
        if n >= scale {
            return format!("{:.2} {unit}", n / scale);
        }
    }
    format!("{n}")
}

impl ModelSummary {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model:      {}", self.path);
        let producer = if self.producer.is_empty() { "(not recorded)" } else { &self.producer };
        let _ = writeln!(s, "producer:   {producer} (ir_version {})", self.ir_version);
        let opsets: Vec<String> = self.opset_imports.iter().map(|o| format!("{} {}", o.domain, o.version)).collect();
        let _ = writeln!(s, "opsets:     {}", opsets.join(", "));
        let _ = writeln!(s, "inputs:");
        for t in &self.inputs {
            let _ = writeln!(s, "  {}  {}  {}", t.name, t.dtype, format_shape(&t.shape));
        }
        let _ = writeln!(s, "outputs:");
        for t in &self.outputs {
            let _ = writeln!(s, "  {}  {}  {}", t.name, t.dtype, format_shape(&t.shape));
        }
        let _ = writeln!(
            s,
            "parameters: {} ({} in {} constant tensors)",
            self.parameter_count,
            human_bytes(self.parameter_bytes),
            self.initializer_count
        );
        match (&self.macs, &self.macs_note) {
            (Some(m), _) => {
                let shapes: Vec<String> = m.input_shapes.iter().map(|(k, v)| format!("{k}:{v:?}")).collect();
                let _ = writeln!(s, "MACs:       {} ({}) for {}", m.total, si(m.total), shapes.join(" "));
                for (op, n) in &m.by_op_type {
                    let _ = writeln!(s, "  {op:<14} {}", si(*n));
                }
                if !m.unresolved_nodes.is_empty() {
                    let _ = writeln!(s, "  not counted (shape unresolved): {}", m.unresolved_nodes.join(", "));
                }
            }
            (None, Some(note)) => {
                let _ = writeln!(s, "MACs:       not counted: {note}");
            }
            (None, None) => {}
        }
        let _ = writeln!(s, "nodes:      {}", self.node_count);
        let mut ops: Vec<(&String, &usize)> = self.op_histogram.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (op, n) in ops {
            let _ = writeln!(s, "  {op:<24} {n}");
        }
        s
    }
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    for (scale, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if n >= scale as f64 {
            return format!("{:.2} {unit}", n / scale as f64);
        }
    }
    format!("{n} B")
}

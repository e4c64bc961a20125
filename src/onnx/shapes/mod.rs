//! Static shape inference with small-constant propagation.
//!
//! [`infer_shapes`] walks the main graph in topological order and computes the static shape
//! (and, where it can, the element type) of every tensor, starting from the graph-input
//! shapes. Small tensors whose values are known before the model runs — initializers,
//! `Constant`s, `Shape`/`Size` results and the arithmetic exporters build on them — are
//! propagated as [`KnownValue`]s. That is what resolves the shape subgraphs exporters emit:
//! `Reshape` targets, `Resize` sizes/scales, `Expand`/`Tile`/`ConstantOfShape`/`Range` shapes.
//!
//! Nodes whose outputs cannot be computed — op types without a rule here, data-dependent
//! output sizes (`NonZero`, `NonMaxSuppression`, ...), inputs that are themselves unknown,
//! inconsistent shapes or malformed attributes — do not fail inference: they are listed in
//! [`InferredShapes::unresolved`] and their outputs stay unknown, unless the model declares a
//! static shape for them (`value_info` or graph outputs), which is then used instead. Only a
//! missing graph, a structurally broken graph (cycle, two producers of one tensor) and bad
//! `input_shapes` are errors.
//!
//! Operator semantics follow the ONNX operator specification for the model's default-domain
//! opset: attribute-vs-input forms are chosen by [`super::default_opset`] (a model that
//! declares no default-domain opset is treated as using the newest forms).

use std::collections::{BTreeSet, HashMap};

use half::{bf16, f16};

use super::attr::NodeExt;
use super::error::{OnnxError, Result};
use super::graph::Graph;
use super::proto::tensor_shape_proto::dimension;
use super::proto::{ModelProto, NodeProto, TensorProto, ValueInfoProto, type_proto};
use super::tensor::{DataType, Tensor, TensorData};

/// Largest tensor (in elements) whose value is tracked in [`InferredShapes::values`].
pub const MAX_KNOWN_ELEMENTS: usize = 4096;

/// Opset assumed when the model declares none for the default domain.
const NEWEST_OPSET: i64 = 23;

const FLOAT: i32 = DataType::Float as i32;
const FLOAT16: i32 = DataType::Float16 as i32;
const BFLOAT16: i32 = DataType::Bfloat16 as i32;
const DOUBLE: i32 = DataType::Double as i32;
const BOOL: i32 = DataType::Bool as i32;
const INT8: i32 = DataType::Int8 as i32;
const UINT8: i32 = DataType::Uint8 as i32;
const INT16: i32 = DataType::Int16 as i32;
const UINT16: i32 = DataType::Uint16 as i32;
const INT32: i32 = DataType::Int32 as i32;
const UINT32: i32 = DataType::Uint32 as i32;
const INT64: i32 = DataType::Int64 as i32;
const UINT64: i32 = DataType::Uint64 as i32;
const INT4: i32 = DataType::Int4 as i32;
const STRING: i32 = DataType::String as i32;

/// The result of [`infer_shapes`].
#[derive(Debug, Clone, Default)]
pub struct InferredShapes {
    /// Static shape of every tensor that could be resolved (graph inputs, initializers,
    /// node outputs). A scalar has shape `[]`.
    pub shapes: HashMap<String, Vec<i64>>,
    /// Element type (`TensorProto.DataType` as i32) where known.
    pub dtypes: HashMap<String, i32>,
    /// Values of small tensors (at most [`MAX_KNOWN_ELEMENTS`] elements) known at inference
    /// time, flattened in row-major order; the tensor's shape is in `shapes`.
    pub values: HashMap<String, KnownValue>,
    /// Nodes whose outputs could not be resolved: (node label, op_type, reason), in the
    /// order they were visited. The label is [`super::node_label`].
    pub unresolved: Vec<(String, String, String)>,
}

impl InferredShapes {
    /// The static shape of `tensor`, if resolved.
    pub fn shape(&self, tensor: &str) -> Option<&[i64]> {
        self.shapes.get(tensor).map(Vec::as_slice)
    }

    /// The known value of `tensor`, if any.
    pub fn value(&self, tensor: &str) -> Option<&KnownValue> {
        self.values.get(tensor)
    }
}

/// The elements of a small tensor whose value is known statically, flattened row-major.
///
/// Integer and bool tensors are `Ints` (bools as 0/1). Float tensors of every width are
/// `Floats`, holding exactly the value of each element (f32/f16/bf16 widen to f64 without
/// loss); arithmetic on them is rounded back to the tensor's float type, so a value computed
/// here matches what a runtime computes, e.g. for `Resize` scales built by a subgraph.
#[derive(Debug, Clone, PartialEq)]
pub enum KnownValue {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

impl KnownValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            KnownValue::Ints(v) => v.len(),
            KnownValue::Floats(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements if this is an integer (or bool) tensor.
    pub fn as_ints(&self) -> Option<&[i64]> {
        match self {
            KnownValue::Ints(v) => Some(v),
            KnownValue::Floats(_) => None,
        }
    }

    /// The elements if this is a float tensor.
    pub fn as_floats(&self) -> Option<&[f64]> {
        match self {
            KnownValue::Floats(v) => Some(v),
            KnownValue::Ints(_) => None,
        }
    }

    /// The elements as f64, whatever the kind.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            KnownValue::Ints(v) => v.iter().map(|&x| x as f64).collect(),
            KnownValue::Floats(v) => v.clone(),
        }
    }

    /// The value of a decoded tensor: integer/bool and float types; `None` for the others.
    pub fn from_tensor(t: &Tensor) -> Option<KnownValue> {
        match &t.data {
            TensorData::F32(v) => Some(KnownValue::Floats(v.iter().map(|&x| x as f64).collect())),
            TensorData::F64(v) => Some(KnownValue::Floats(v.clone())),
            TensorData::F16(v) => Some(KnownValue::Floats(v.iter().map(|x| x.to_f64()).collect())),
            TensorData::BF16(v) => Some(KnownValue::Floats(v.iter().map(|x| x.to_f64()).collect())),
            _ => t.to_i64_vec().map(KnownValue::Ints),
        }
    }

    /// The elements at the given flat positions, in that order.
    fn pick(&self, idx: &[usize]) -> KnownValue {
        match self {
            KnownValue::Ints(v) => KnownValue::Ints(idx.iter().map(|&i| v[i]).collect()),
            KnownValue::Floats(v) => KnownValue::Floats(idx.iter().map(|&i| v[i]).collect()),
        }
    }

    /// All parts' elements one after the other; `None` if the kinds differ.
    fn chain(parts: &[&KnownValue]) -> Option<KnownValue> {
        match parts.first()? {
            KnownValue::Ints(_) => parts.iter().map(|p| p.as_ints()).collect::<Option<Vec<_>>>().map(|v| KnownValue::Ints(v.concat())),
            KnownValue::Floats(_) => {
                parts.iter().map(|p| p.as_floats()).collect::<Option<Vec<_>>>().map(|v| KnownValue::Floats(v.concat()))
            }
        }
    }
}

/// Infers static shapes, element types and small constant values for every tensor of the
/// main graph.
///
/// `input_shapes` overrides the shapes of graph inputs (keyed by input name); it is an
/// error (`OnnxError::Graph`, naming the input) if a key is not a graph input (initializers
/// do not count) or a shape's rank differs from the declared one, or a dimension is
/// negative. Inputs not listed use their declared shape when every dimension is a positive
/// `dim_value`, and are unknown otherwise.
///
/// Unresolvable nodes are reported in [`InferredShapes::unresolved`], not as errors; see the
/// module documentation. Declared static shapes of node outputs are used only as a fallback
/// when inference cannot compute them — note they describe the model at its declared input
/// shape, so they may not match other `input_shapes`.
pub fn infer_shapes(model: &ModelProto, input_shapes: &HashMap<String, Vec<i64>>) -> Result<InferredShapes> {
    let proto = model.graph.as_ref().ok_or_else(|| OnnxError::Graph { graph: String::new(), detail: "the model has no graph".into() })?;
    let graph = Graph::new(proto)?;
    let opset = super::default_opset(model).unwrap_or(NEWEST_OPSET);
    let mut res = InferredShapes::default();
    seed_inputs(&graph, input_shapes, &mut res)?;
    seed_initializers(proto, &mut res);

    for index in graph.topological_order()? {
        let node = &proto.node[index];
        let inferred = {
            let cx = Ctx { node, opset, known: &res };
            infer_node(&cx).and_then(check_dims)
        };
        let (mut outs, mut reason) = match inferred {
            Ok(outs) => (outs, None),
            Err(Unresolved(why)) => (Vec::new(), Some(why)),
        };
        let mut incomplete = false;
        for (slot, name) in node.output.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            let declared = graph.value_info(name).map(Declared::of);
            let out = match outs.get_mut(slot).and_then(Option::take) {
                Some(mut out) => {
                    out.dtype = out.dtype.or_else(|| declared.as_ref().and_then(|d| d.elem_type));
                    Some(out)
                }
                // Fallback: a static shape the model declares for this output.
                None => declared.as_ref().and_then(|d| Some(Out::new(d.static_shape()?, d.elem_type))),
            };
            match out {
                Some(out) => record(&mut res, name, out),
                None => {
                    incomplete = true;
                    reason.get_or_insert_with(|| format!("output {slot} '{name}' was not inferred"));
                }
            }
        }
        if let Some(reason) = reason.filter(|_| incomplete) {
            res.unresolved.push((super::node_label(node, index), node.op_type().to_string(), reason));
        }
    }
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// Seeding: graph inputs, initializers, declared value infos
// ---------------------------------------------------------------------------------------

/// What a ValueInfoProto declares about a tensor.
struct Declared {
    /// Per dimension: `Some(n)` for a positive dim_value, `None` for symbolic/unknown.
    /// `None` overall when no shape is declared.
    dims: Option<Vec<Option<i64>>>,
    elem_type: Option<i32>,
}

impl Declared {
    fn of(vi: &ValueInfoProto) -> Declared {
        let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t,
            _ => return Declared { dims: None, elem_type: None },
        };
        let dims = tensor.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) if v > 0 => Some(v),
                    _ => None,
                })
                .collect()
        });
        Declared { dims, elem_type: tensor.elem_type.filter(|&t| t != 0) }
    }

    fn static_shape(&self) -> Option<Vec<i64>> {
        self.dims.as_ref()?.iter().copied().collect()
    }

    fn describe(&self) -> String {
        match &self.dims {
            None => "no shape".into(),
            Some(d) => {
                let dims: Vec<String> = d.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
                format!("[{}]", dims.join(", "))
            }
        }
    }
}

fn seed_inputs(graph: &Graph, input_shapes: &HashMap<String, Vec<i64>>, res: &mut InferredShapes) -> Result<()> {
    let graph_error = |detail: String| OnnxError::Graph { graph: graph.proto.name().to_string(), detail };
    let real: Vec<&ValueInfoProto> = graph.real_inputs().collect();
    let mut given: Vec<&String> = input_shapes.keys().collect();
    given.sort();
    for name in given {
        if !real.iter().any(|v| v.name() == name.as_str()) {
            let names: Vec<&str> = real.iter().map(|v| v.name()).collect();
            return Err(graph_error(format!(
                "input_shapes names '{name}', which is not an input of the graph (inputs: {})",
                names.join(", ")
            )));
        }
    }
    for vi in real {
        let name = vi.name();
        let declared = Declared::of(vi);
        if let Some(t) = declared.elem_type {
            res.dtypes.insert(name.to_string(), t);
        }
        let shape = match input_shapes.get(name) {
            Some(shape) => {
                if shape.iter().any(|&d| d < 0) {
                    return Err(graph_error(format!("input '{name}': given shape {shape:?} has a negative dimension")));
                }
                if let Some(dims) = &declared.dims
                    && dims.len() != shape.len()
                {
                    return Err(graph_error(format!(
                        "input '{name}': given shape {shape:?} has rank {}, but the model declares rank {} ({})",
                        shape.len(),
                        dims.len(),
                        declared.describe()
                    )));
                }
                Some(shape.clone())
            }
            None => declared.static_shape(),
        };
        if let Some(shape) = shape {
            res.shapes.insert(name.to_string(), shape);
        }
    }
    Ok(())
}

fn seed_initializers(proto: &super::proto::GraphProto, res: &mut InferredShapes) {
    for t in &proto.initializer {
        seed_tensor(t, res);
    }
    for s in &proto.sparse_initializer {
        if let Some(values) = &s.values {
            res.shapes.insert(values.name().to_string(), s.dims.clone());
            res.dtypes.insert(values.name().to_string(), values.data_type());
        }
    }
}

fn seed_tensor(t: &TensorProto, res: &mut InferredShapes) {
    let name = t.name().to_string();
    res.shapes.insert(name.clone(), t.dims.clone());
    res.dtypes.insert(name.clone(), t.data_type());
    if let Some(v) = small_tensor_value(t) {
        res.values.insert(name, v);
    }
}

/// The value of a tensor proto with at most [`MAX_KNOWN_ELEMENTS`] elements, if decodable.
fn small_tensor_value(t: &TensorProto) -> Option<KnownValue> {
    let count = super::tensor::element_count(t.name(), &t.dims).ok()?;
    if count > MAX_KNOWN_ELEMENTS {
        return None;
    }
    KnownValue::from_tensor(&Tensor::from_proto(t).ok()?)
}

/// Stores an inferred output. Values that are too large or inconsistent with the shape are
/// dropped.
fn record(res: &mut InferredShapes, name: &str, out: Out) {
    if let Some(t) = out.dtype {
        res.dtypes.insert(name.to_string(), t);
    }
    if let Some(v) = out.value {
        debug_assert_eq!(v.len() as i64, numel(&out.shape), "value of '{name}' does not match its shape");
        if v.len() <= MAX_KNOWN_ELEMENTS && v.len() as i64 == numel(&out.shape) {
            res.values.insert(name.to_string(), v);
        }
    }
    res.shapes.insert(name.to_string(), out.shape);
}

// ---------------------------------------------------------------------------------------
// Per-node machinery
// ---------------------------------------------------------------------------------------

/// Why a node's outputs could not be inferred.
struct Unresolved(String);

impl From<OnnxError> for Unresolved {
    fn from(e: OnnxError) -> Self {
        Unresolved(e.to_string())
    }
}

type Infer<T> = std::result::Result<T, Unresolved>;

fn fail<T>(reason: impl Into<String>) -> Infer<T> {
    Err(Unresolved(reason.into()))
}

/// One inferred node output.
#[derive(Debug)]
struct Out {
    shape: Vec<i64>,
    dtype: Option<i32>,
    value: Option<KnownValue>,
}

impl Out {
    fn new(shape: Vec<i64>, dtype: Option<i32>) -> Out {
        Out { shape, dtype, value: None }
    }

    fn with_value(mut self, value: Option<KnownValue>) -> Out {
        self.value = value;
        self
    }
}

/// Outputs in slot order (`None` for slots a rule does not infer).
type Outs = Vec<Option<Out>>;

fn outs(list: Vec<Out>) -> Infer<Outs> {
    Ok(list.into_iter().map(Some).collect())
}

fn check_dims(outs: Outs) -> Infer<Outs> {
    for out in outs.iter().flatten() {
        if out.shape.iter().any(|&d| d < 0) {
            return fail(format!("computed a negative dimension {:?}", out.shape));
        }
    }
    Ok(outs)
}

/// A node plus what is known so far.
struct Ctx<'a> {
    node: &'a NodeProto,
    opset: i64,
    known: &'a InferredShapes,
}

impl<'a> Ctx<'a> {
    /// The name of input `i` if it is present (optional inputs may be empty strings).
    fn input(&self, i: usize) -> Option<&'a str> {
        self.node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn has(&self, i: usize) -> bool {
        self.input(i).is_some()
    }

    fn name(&self, i: usize) -> Infer<&'a str> {
        self.input(i).ok_or_else(|| Unresolved(format!("required input {i} is missing")))
    }

    fn shape(&self, i: usize) -> Infer<&'a [i64]> {
        let name = self.name(i)?;
        match self.known.shapes.get(name) {
            Some(s) => Ok(s),
            None => fail(format!("input '{name}' has no known shape")),
        }
    }

    fn dtype(&self, i: usize) -> Option<i32> {
        self.input(i).and_then(|n| self.known.dtypes.get(n).copied())
    }

    fn value(&self, i: usize) -> Option<&'a KnownValue> {
        self.input(i).and_then(|n| self.known.values.get(n))
    }

    /// The integer value of input `i` (`what` names it in messages).
    fn ints(&self, i: usize, what: &str) -> Infer<Vec<i64>> {
        let name = self.name(i).map_err(|_| Unresolved(format!("input '{what}' is missing")))?;
        match self.known.values.get(name) {
            Some(KnownValue::Ints(v)) => Ok(v.clone()),
            Some(KnownValue::Floats(_)) => fail(format!("input '{name}' ({what}) holds floats, expected integers")),
            None => fail(format!("value of input '{name}' ({what}) is not known")),
        }
    }

    /// Like [`Ctx::ints`], `None` when the optional input is absent.
    fn opt_ints(&self, i: usize, what: &str) -> Infer<Option<Vec<i64>>> {
        if self.has(i) { self.ints(i, what).map(Some) } else { Ok(None) }
    }

    /// A single integer held by input `i` (a scalar or one-element tensor).
    fn scalar_int(&self, i: usize, what: &str) -> Infer<i64> {
        match self.ints(i, what)?.as_slice() {
            [v] => Ok(*v),
            v => fail(format!("input {what} holds {} values, expected one", v.len())),
        }
    }

    /// The value of input `i` as floats (integers are converted), `None` when absent.
    fn opt_floats(&self, i: usize, what: &str) -> Infer<Option<Vec<f64>>> {
        let Some(name) = self.input(i) else { return Ok(None) };
        match self.known.values.get(name) {
            Some(v) => Ok(Some(v.to_f64_vec())),
            None => fail(format!("value of input '{name}' ({what}) is not known")),
        }
    }

    /// An attribute-form list before opset `since`, an input-form list (input `i`) from it on.
    fn ints_attr_or_input(&self, attr: &str, i: usize, since: i64) -> Infer<Option<Vec<i64>>> {
        if self.opset >= since { self.opt_ints(i, attr) } else { Ok(self.node.opt_attr_ints(attr)?) }
    }
}

/// Infers the outputs of one node, dispatching on its op type.
fn infer_node(cx: &Ctx) -> Infer<Outs> {
    let op = cx.node.op_type();
    let domain = cx.node.domain();
    if !matches!(domain, "" | "ai.onnx") && !op.starts_with("Ascend") {
        return fail(format!("operator '{op}' of domain '{domain}' has no shape rule"));
    }
    match op {
        "Conv" => conv(cx, 0, 1, cx.dtype(0)),
        "ConvInteger" => conv(cx, 0, 1, Some(INT32)),
        "QLinearConv" => conv(cx, 0, 3, cx.dtype(7).or(Some(UINT8))),
        "ConvTranspose" => conv_transpose(cx),
        "MaxPool" | "AveragePool" | "LpPool" => pool(cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => global_pool(cx),
        "BatchNormalization" => batch_norm(cx),
        "LayerNormalization" => layer_norm(cx),
        "Cast" => cast(cx, cx.node.req_attr_i("to")? as i32),
        "CastLike" => cast(cx, cx.dtype(1).ok_or_else(|| Unresolved("type of input 1 is not known".into()))?),
        "Dropout" => dropout(cx),
        "QuantizeLinear" | "DequantizeLinear" => qdq(cx),
        "AscendQuant" | "AscendDequant" | "AscendAntiQuant" => ascend_quant(cx),
        "IsNaN" | "IsInf" => same_shape(cx, Some(BOOL)),
        op if is_unary(op) => unary(cx),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "BitShift" | "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" | "Min" | "Max" | "Sum"
        | "Mean" => elementwise(cx, None),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor" => elementwise(cx, Some(BOOL)),
        "PRelu" => same_shape(cx, cx.dtype(0)),
        "Where" => where_op(cx),
        "Concat" => concat(cx),
        "Split" => split(cx),
        "Slice" => slice(cx),
        "Reshape" => reshape(cx),
        "Transpose" => transpose(cx),
        "Flatten" => flatten(cx),
        "Squeeze" => squeeze(cx),
        "Unsqueeze" => unsqueeze(cx),
        "Expand" => expand(cx),
        "Tile" => tile(cx),
        "Pad" => pad(cx),
        "Resize" => resize(cx),
        "Upsample" => upsample(cx),
        "Gemm" => gemm(cx),
        "MatMul" => matmul(cx, 0, 1, cx.dtype(0)),
        "MatMulInteger" => matmul(cx, 0, 1, Some(INT32)),
        "QLinearMatMul" => matmul(cx, 0, 3, cx.dtype(7).or(Some(UINT8))),
        op if op.starts_with("Reduce") => reduce(cx),
        "ArgMax" | "ArgMin" => arg_reduce(cx),
        "Gather" => gather(cx),
        "GatherElements" => same_shape_as(cx, 1, cx.dtype(0)),
        "GatherND" => gather_nd(cx),
        "Scatter" | "ScatterElements" | "ScatterND" => same_shape(cx, cx.dtype(0)),
        "Shape" => shape_op(cx),
        "Size" => size_op(cx),
        "Constant" => constant(cx),
        "ConstantOfShape" => constant_of_shape(cx),
        "Range" => range(cx),
        "DepthToSpace" | "SpaceToDepth" => depth_space(cx),
        "TopK" => topk(cx),
        "NonZero" | "NonMaxSuppression" | "Unique" | "Compress" | "StringSplit" => fail("the output size depends on the input data"),
        "Einsum" => fail("Einsum has no shape rule"),
        "If" | "Loop" | "Scan" => fail("control-flow operators have no shape rule"),
        _ => fail(format!("operator '{op}' has no shape rule")),
    }
}

// ---------------------------------------------------------------------------------------
// Shape helpers
// ---------------------------------------------------------------------------------------

fn numel(shape: &[i64]) -> i64 {
    shape.iter().product()
}

/// True when a tensor of this shape is small enough to have its value tracked.
fn small(shape: &[i64]) -> bool {
    shape.iter().all(|&d| d >= 0) && usize::try_from(numel(shape)).is_ok_and(|n| n <= MAX_KNOWN_ELEMENTS)
}

/// Normalizes an axis in `[-rank, rank-1]` to `[0, rank-1]`.
fn norm_axis(axis: i64, rank: usize) -> Infer<usize> {
    let r = rank as i64;
    if (-r..r).contains(&axis) {
        Ok(if axis < 0 { axis + r } else { axis } as usize)
    } else {
        fail(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// Normalizes a list of axes; duplicates are an error.
fn norm_axes(axes: &[i64], rank: usize) -> Infer<BTreeSet<usize>> {
    let mut set = BTreeSet::new();
    for &a in axes {
        if !set.insert(norm_axis(a, rank)?) {
            return fail(format!("axis {a} is repeated in {axes:?}"));
        }
    }
    Ok(set)
}

/// Multidirectional (numpy) broadcasting of several shapes.
fn broadcast(shapes: &[&[i64]]) -> Infer<Vec<i64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1i64; rank];
    for s in shapes {
        let offset = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[offset + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return fail(format!("shapes {shapes:?} cannot be broadcast together"));
            }
        }
    }
    Ok(out)
}

/// Row-major strides of a shape.
fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1] as usize;
    }
    s
}

/// Flat source positions of the cartesian product of per-axis index lists (row-major).
fn take_indices(shape: &[i64], per_axis: &[Vec<usize>]) -> Vec<usize> {
    let st = strides(shape);
    let mut out = vec![0usize];
    for (axis, list) in per_axis.iter().enumerate() {
        let stride = st[axis];
        out = out.iter().flat_map(|&base| list.iter().map(move |&i| base + i * stride)).collect();
    }
    out
}

/// Flat source positions when broadcasting a tensor of shape `from` to shape `to`.
fn broadcast_indices(from: &[i64], to: &[i64]) -> Vec<usize> {
    let offset = to.len() - from.len();
    let per_axis: Vec<Vec<usize>> = to
        .iter()
        .enumerate()
        .map(|(i, &d)| if i < offset || from[i - offset] == 1 { vec![0; d as usize] } else { (0..d as usize).collect() })
        .collect();
    let padded: Vec<i64> = std::iter::repeat_n(1, offset).chain(from.iter().copied()).collect();
    take_indices(&padded, &per_axis)
}

/// `value` broadcast from shape `from` to shape `to`, if small enough.
fn broadcast_value(value: &KnownValue, from: &[i64], to: &[i64]) -> Option<KnownValue> {
    small(to).then(|| value.pick(&broadcast_indices(from, to)))
}

/// Rounds a float result to the precision of its element type.
fn round_to(dtype: Option<i32>, x: f64) -> f64 {
    match dtype {
        Some(FLOAT) => x as f32 as f64,
        Some(FLOAT16) => f16::from_f64(x).to_f64(),
        Some(BFLOAT16) => bf16::from_f64(x).to_f64(),
        _ => x,
    }
}

/// Wraps an integer to the width of its element type (two's complement), as a cast does.
fn wrap_int(dtype: i32, x: i64) -> i64 {
    match dtype {
        INT8 => x as i8 as i64,
        UINT8 => x as u8 as i64,
        INT16 => x as i16 as i64,
        UINT16 => x as u16 as i64,
        INT32 => x as i32 as i64,
        UINT32 => x as u32 as i64,
        BOOL => (x != 0) as i64,
        _ => x,
    }
}

fn is_float_type(dtype: i32) -> bool {
    matches!(dtype, FLOAT | FLOAT16 | BFLOAT16 | DOUBLE)
}

fn is_int_type(dtype: i32) -> bool {
    matches!(dtype, INT8 | UINT8 | INT16 | UINT16 | INT32 | UINT32 | INT64 | UINT64 | BOOL)
}

// ---------------------------------------------------------------------------------------
// Convolution and pooling
// ---------------------------------------------------------------------------------------

/// Sliding-window attributes shared by Conv, ConvTranspose and the pools.
struct Window {
    kernel: Vec<i64>,
    strides: Vec<i64>,
    dilations: Vec<i64>,
    /// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`
    pads: Vec<i64>,
    auto_pad: String,
}

impl Window {
    /// Reads the attributes for `n` spatial axes; `kernel` is used when `kernel_shape` is absent.
    fn read(node: &NodeProto, n: usize, kernel: Option<&[i64]>) -> Infer<Window> {
        let kernel = match node.opt_attr_ints("kernel_shape")? {
            Some(k) => k,
            None => match kernel {
                Some(k) => k.to_vec(),
                None => return fail("attribute 'kernel_shape' is missing"),
            },
        };
        let w = Window {
            kernel,
            strides: node.attr_ints("strides", &vec![1; n])?,
            dilations: node.attr_ints("dilations", &vec![1; n])?,
            pads: node.attr_ints("pads", &vec![0; 2 * n])?,
            auto_pad: node.attr_s("auto_pad", "NOTSET")?,
        };
        let lens_ok = w.kernel.len() == n && w.strides.len() == n && w.dilations.len() == n && w.pads.len() == 2 * n;
        if !lens_ok {
            return fail(format!(
                "window attributes do not fit {n} spatial axes (kernel {:?}, strides {:?}, dilations {:?}, pads {:?})",
                w.kernel, w.strides, w.dilations, w.pads
            ));
        }
        if w.kernel.iter().chain(&w.strides).chain(&w.dilations).any(|&v| v <= 0) {
            return fail("kernel_shape, strides and dilations must be positive");
        }
        if !matches!(w.auto_pad.as_str(), "NOTSET" | "" | "SAME_UPPER" | "SAME_LOWER" | "VALID") {
            return fail(format!("unknown auto_pad '{}'", w.auto_pad));
        }
        Ok(w)
    }

    fn same(&self) -> bool {
        matches!(self.auto_pad.as_str(), "SAME_UPPER" | "SAME_LOWER")
    }

    /// Output spatial dims of a convolution or pool over `input` (spatial dims only).
    fn output(&self, input: &[i64], ceil_mode: bool) -> Infer<Vec<i64>> {
        let n = input.len();
        (0..n)
            .map(|i| {
                let (x, s) = (input[i], self.strides[i]);
                let dim = match self.auto_pad.as_str() {
                    // SAME: output = ceil(input / stride), whatever ceil_mode says.
                    "SAME_UPPER" | "SAME_LOWER" => Some((x + s - 1) / s),
                    "VALID" => window_out_dim(x, self.kernel[i], s, self.dilations[i], 0, 0, false),
                    _ => window_out_dim(x, self.kernel[i], s, self.dilations[i], self.pads[i], self.pads[i + n], ceil_mode),
                };
                dim.ok_or_else(|| Unresolved(format!("window {:?} does not fit input dims {input:?}", self.kernel)))
            })
            .collect()
    }
}

/// Output length of a sliding window along one axis (ONNX Conv/pool formula):
/// `floor((in + pads - ((k - 1) * d + 1)) / s) + 1`, or with `ceil` instead of `floor` in
/// ceil mode, where a last window that would start in the end padding is dropped.
fn window_out_dim(input: i64, kernel: i64, stride: i64, dilation: i64, pad_begin: i64, pad_end: i64, ceil_mode: bool) -> Option<i64> {
    let span = input + pad_begin + pad_end - ((kernel - 1) * dilation + 1);
    if span < 0 {
        return None;
    }
    if !ceil_mode {
        return Some(span / stride + 1);
    }
    let mut out = (span + stride - 1) / stride + 1;
    if (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Some(out)
}

/// Conv / ConvInteger / QLinearConv: `[N, M, spatial...]` with M = W.shape[0].
fn conv(cx: &Ctx, x_in: usize, w_in: usize, dtype: Option<i32>) -> Infer<Outs> {
    let (x, w) = (cx.shape(x_in)?, cx.shape(w_in)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if group <= 0 || x[1] != w[1] * group {
        return fail(format!("input channels {} != weight channels {} × group {group}", x[1], w[1]));
    }
    let win = Window::read(cx.node, x.len() - 2, Some(&w[2..]))?;
    let mut shape = vec![x[0], w[0]];
    shape.extend(win.output(&x[2..], false)?);
    outs(vec![Out::new(shape, dtype)])
}

/// ConvTranspose: `[N, W.shape[1] × group, spatial...]`.
fn conv_transpose(cx: &Ctx) -> Infer<Outs> {
    let (x, w) = (cx.shape(0)?, cx.shape(1)?);
    if x.len() < 3 || w.len() != x.len() {
        return fail(format!("input {x:?} and weight {w:?} do not fit a transposed convolution"));
    }
    let group = cx.node.attr_i("group", 1)?;
    if x[1] != w[0] {
        return fail(format!("input channels {} != weight dim 0 {}", x[1], w[0]));
    }
    let n = x.len() - 2;
    let win = Window::read(cx.node, n, Some(&w[2..]))?;
    let output_padding = cx.node.attr_ints("output_padding", &vec![0; n])?;
    if output_padding.len() != n {
        return fail(format!("output_padding {output_padding:?} does not fit {n} spatial axes"));
    }
    let spatial: Vec<i64> = match cx.node.opt_attr_ints("output_shape")? {
        Some(os) if os.len() == n => os,
        Some(os) if os.len() == n + 2 => os[2..].to_vec(),
        Some(os) => return fail(format!("output_shape {os:?} does not fit {n} spatial axes")),
        // SAME_*: output = input × stride.
        None if win.same() => (0..n).map(|i| x[2 + i] * win.strides[i]).collect(),
        None => {
            let pads = if win.auto_pad == "VALID" { vec![0; 2 * n] } else { win.pads.clone() };
            (0..n)
                .map(|i| {
                    win.strides[i] * (x[2 + i] - 1) + output_padding[i] + (win.kernel[i] - 1) * win.dilations[i] + 1 - pads[i] - pads[i + n]
                })
                .collect()
        }
    };
    let mut shape = vec![x[0], w[1] * group];
    shape.extend(spatial);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// MaxPool / AveragePool / LpPool (MaxPool's optional Indices output is INT64).
fn pool(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    if x.len() < 3 {
        return fail(format!("input {x:?} has no spatial axes"));
    }
    let win = Window::read(cx.node, x.len() - 2, None)?;
    let ceil_mode = cx.node.attr_i("ceil_mode", 0)? != 0;
    let mut shape = x[..2].to_vec();
    shape.extend(win.output(&x[2..], ceil_mode)?);
    outs(vec![Out::new(shape.clone(), cx.dtype(0)), Out::new(shape, Some(INT64))])
}

/// Global pools: `[N, C, 1, ...]`.
fn global_pool(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    if x.len() < 3 {
        return fail(format!("input {x:?} has no spatial axes"));
    }
    let mut shape = x[..2].to_vec();
    shape.resize(x.len(), 1);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

// ---------------------------------------------------------------------------------------
// Normalization, element-wise and type-changing ops
// ---------------------------------------------------------------------------------------

/// BatchNormalization: Y like X; training-mode outputs (running/saved mean and var) are `[C]`.
fn batch_norm(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let c = *x.get(1).ok_or_else(|| Unresolved(format!("input {x:?} has no channel axis")))?;
    let mut list = vec![Out::new(x.to_vec(), cx.dtype(0))];
    for _ in 1..cx.node.output.len() {
        list.push(Out::new(vec![c], cx.dtype(1)));
    }
    outs(list)
}

/// LayerNormalization: Y like X; Mean and InvStdDev keep the axes before `axis`, 1 after.
fn layer_norm(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", -1)?, x.len())?;
    let stash = cx.node.attr_i("stash_type", 1)? as i32;
    let mut reduced = x[..axis].to_vec();
    reduced.resize(x.len(), 1);
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)), Out::new(reduced.clone(), Some(stash)), Out::new(reduced, Some(stash))])
}

/// Op types whose only output has the shape and type of input 0.
fn is_unary(op: &str) -> bool {
    matches!(
        op,
        "Relu"
            | "LeakyRelu"
            | "Sigmoid"
            | "HardSigmoid"
            | "HardSwish"
            | "Tanh"
            | "Clip"
            | "Elu"
            | "Selu"
            | "Celu"
            | "ThresholdedRelu"
            | "Softplus"
            | "Softsign"
            | "Erf"
            | "Sqrt"
            | "Exp"
            | "Log"
            | "Neg"
            | "Abs"
            | "Reciprocal"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Sign"
            | "Not"
            | "Identity"
            | "Softmax"
            | "LogSoftmax"
            | "Hardmax"
            | "Mish"
            | "Gelu"
            | "Sin"
            | "Cos"
            | "Tan"
            | "Asin"
            | "Acos"
            | "Atan"
            | "Sinh"
            | "Cosh"
            | "Asinh"
            | "Acosh"
            | "Atanh"
            | "Shrink"
            | "InstanceNormalization"
            | "LpNormalization"
            | "LRN"
            | "MeanVarianceNormalization"
            | "BitwiseNot"
            | "CumSum"
            | "Trilu"
            | "ReverseSequence"
    )
}

/// Unary element-wise ops; values propagate through Identity, Neg, Abs, Not and Floor/Ceil/Round.
fn unary(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).and_then(|v| match (cx.node.op_type(), v) {
        ("Identity", v) => Some(v.clone()),
        ("Neg", KnownValue::Ints(v)) => v.iter().map(|x| x.checked_neg()).collect::<Option<_>>().map(KnownValue::Ints),
        ("Neg", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| -x).collect())),
        ("Abs", KnownValue::Ints(v)) => v.iter().map(|x| x.checked_abs()).collect::<Option<_>>().map(KnownValue::Ints),
        ("Abs", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.abs()).collect())),
        ("Not", KnownValue::Ints(v)) => Some(KnownValue::Ints(v.iter().map(|&x| (x == 0) as i64).collect())),
        ("Floor", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.floor()).collect())),
        ("Ceil", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.ceil()).collect())),
        ("Round", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| x.round_ties_even()).collect())),
        _ => None,
    });
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(value)])
}

/// Output 0 has the shape of input 0 and the given type.
fn same_shape(cx: &Ctx, dtype: Option<i32>) -> Infer<Outs> {
    same_shape_as(cx, 0, dtype)
}

/// Output 0 has the shape of input `i` and the given type.
fn same_shape_as(cx: &Ctx, i: usize, dtype: Option<i32>) -> Infer<Outs> {
    outs(vec![Out::new(cx.shape(i)?.to_vec(), dtype)])
}

/// Cast / CastLike to `to`, converting a known value the way a cast does.
fn cast(cx: &Ctx, to: i32) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).and_then(|v| cast_value(v, to));
    outs(vec![Out::new(x.to_vec(), Some(to)).with_value(value)])
}

/// Float → int truncates toward zero (out-of-range gives no value); int → narrower int wraps;
/// anything → bool is `!= 0`; → float rounds to the target precision.
fn cast_value(v: &KnownValue, to: i32) -> Option<KnownValue> {
    if is_float_type(to) {
        return Some(KnownValue::Floats(v.to_f64_vec().into_iter().map(|x| round_to(Some(to), x)).collect()));
    }
    if !is_int_type(to) {
        return None;
    }
    match v {
        KnownValue::Ints(v) => Some(KnownValue::Ints(v.iter().map(|&x| wrap_int(to, x)).collect())),
        KnownValue::Floats(v) if to == BOOL => Some(KnownValue::Ints(v.iter().map(|&x| (x != 0.0) as i64).collect())),
        KnownValue::Floats(v) => v
            .iter()
            .map(|&x| {
                let t = x.trunc();
                (t.is_finite() && t.abs() < 9.2e18).then(|| wrap_int(to, t as i64))
            })
            .collect::<Option<_>>()
            .map(KnownValue::Ints),
    }
}

/// Dropout: output like X, optional mask (BOOL) like X.
fn dropout(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let value = cx.value(0).cloned();
    outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(value), Out::new(x.to_vec(), Some(BOOL))])
}

/// QuantizeLinear (type of the zero point, else `output_dtype`, else UINT8) and
/// DequantizeLinear (type of the scale).
fn qdq(cx: &Ctx) -> Infer<Outs> {
    let dtype = if cx.node.op_type() == "QuantizeLinear" {
        match cx.dtype(2) {
            Some(t) => Some(t),
            None => match cx.node.attr_i("output_dtype", 0)? {
                0 => Some(UINT8),
                t => Some(t as i32),
            },
        }
    } else {
        cx.dtype(1).or(Some(FLOAT))
    };
    same_shape(cx, dtype)
}

/// Ascend custom ops (any domain) keep the shape of input 0. AscendQuant outputs the integer
/// type of `dst_type` (default INT8); AscendDequant/AscendAntiQuant output FLOAT, or FLOAT16
/// when their `dtype` attribute (ge::DataType) is 1.
fn ascend_quant(cx: &Ctx) -> Infer<Outs> {
    let dtype = match cx.node.op_type() {
        "AscendQuant" => match cx.node.opt_attr_s("dst_type").ok().flatten().as_deref() {
            Some("INT4") => Some(INT4),
            Some("INT16") => Some(INT16),
            Some("INT8") | None => Some(INT8),
            Some(_) => None,
        },
        _ => match cx.node.opt_attr_i("dtype").ok().flatten() {
            None | Some(0) => Some(FLOAT),
            Some(1) => Some(FLOAT16),
            Some(_) => None,
        },
    };
    same_shape(cx, dtype)
}

/// Broadcasting element-wise ops (binary and variadic). `dtype` overrides the output type
/// (BOOL for comparisons and logic); otherwise it is the type of input 0.
fn elementwise(cx: &Ctx, dtype: Option<i32>) -> Infer<Outs> {
    let n = cx.node.input.len();
    if n == 0 {
        return fail("no inputs");
    }
    let shapes: Vec<&[i64]> = (0..n).map(|i| cx.shape(i)).collect::<Infer<_>>()?;
    let shape = broadcast(&shapes)?;
    let dtype = dtype.or_else(|| cx.dtype(0));
    let value = elementwise_value(cx, &shapes, &shape, dtype);
    outs(vec![Out::new(shape, dtype).with_value(value)])
}

/// Folds the known input values of an element-wise op left to right.
fn elementwise_value(cx: &Ctx, shapes: &[&[i64]], out: &[i64], dtype: Option<i32>) -> Option<KnownValue> {
    if !small(out) {
        return None;
    }
    let op = match cx.node.op_type() {
        "Mod" if cx.node.attr_i("fmod", 0).ok()? != 0 => "FMod",
        op => op,
    };
    let values: Vec<KnownValue> = (0..shapes.len()).map(|i| broadcast_value(cx.value(i)?, shapes[i], out)).collect::<Option<_>>()?;
    let mut acc = values[0].clone();
    for v in &values[1..] {
        acc = binary_value(op, &acc, v, dtype)?;
    }
    match (op, acc) {
        ("Mean", KnownValue::Floats(v)) => Some(KnownValue::Floats(v.iter().map(|x| round_to(dtype, x / values.len() as f64)).collect())),
        ("Mean", KnownValue::Ints(_)) => None,
        (_, acc) => Some(acc),
    }
}

/// One step of an element-wise op on two equally shaped values. Integer division truncates
/// toward zero, as the ONNX `Div` specification requires for integer inputs. `Mod` takes the
/// sign of the divisor, `FMod` (Mod with `fmod = 1`) the sign of the dividend.
fn binary_value(op: &str, a: &KnownValue, b: &KnownValue, dtype: Option<i32>) -> Option<KnownValue> {
    use KnownValue::{Floats, Ints};
    let ints = |f: fn(i64, i64) -> Option<i64>, x: &[i64], y: &[i64]| -> Option<KnownValue> {
        x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect::<Option<_>>().map(Ints)
    };
    let cmp = |f: fn(f64, f64) -> bool| -> Option<KnownValue> {
        let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
        Some(Ints(x.iter().zip(&y).map(|(&p, &q)| f(p, q) as i64).collect()))
    };
    match op {
        "Equal" => {
            if let (Ints(x), Ints(y)) = (a, b) {
                return Some(Ints(x.iter().zip(y).map(|(p, q)| (p == q) as i64).collect()));
            }
            cmp(|p, q| p == q)
        }
        "Less" => cmp(|p, q| p < q),
        "Greater" => cmp(|p, q| p > q),
        "LessOrEqual" => cmp(|p, q| p <= q),
        "GreaterOrEqual" => cmp(|p, q| p >= q),
        "And" | "Or" | "Xor" => {
            let (x, y) = (a.as_ints()?, b.as_ints()?);
            let f: fn(bool, bool) -> bool = match op {
                "And" => |p, q| p && q,
                "Or" => |p, q| p || q,
                _ => |p, q| p != q,
            };
            Some(Ints(x.iter().zip(y).map(|(&p, &q)| f(p != 0, q != 0) as i64).collect()))
        }
        _ => match (a, b) {
            (Ints(x), Ints(y)) => {
                let r = match op {
                    "Add" | "Sum" => ints(i64::checked_add, x, y),
                    "Sub" => ints(i64::checked_sub, x, y),
                    "Mul" => ints(i64::checked_mul, x, y),
                    // checked_div truncates toward zero and refuses division by zero.
                    "Div" => ints(i64::checked_div, x, y),
                    "Min" => ints(|p, q| Some(p.min(q)), x, y),
                    "Max" => ints(|p, q| Some(p.max(q)), x, y),
                    "Pow" => ints(|p, q| u32::try_from(q).ok().and_then(|q| p.checked_pow(q)), x, y),
                    "FMod" => ints(i64::checked_rem, x, y),
                    "Mod" => ints(|p, q| p.checked_rem(q).map(|r| if r != 0 && (r < 0) != (q < 0) { r + q } else { r }), x, y),
                    _ => None,
                }?;
                // Results must fit the element type (no silent wrap-around).
                let fits = |v: &[i64]| dtype.is_none_or(|t| v.iter().all(|&e| wrap_int(t, e) == e));
                match &r {
                    Ints(v) if fits(v) => Some(r),
                    _ => None,
                }
            }
            (Floats(x), Floats(y)) => {
                let f: fn(f64, f64) -> f64 = match op {
                    "Add" | "Sum" | "Mean" => |p, q| p + q,
                    "Sub" => |p, q| p - q,
                    "Mul" => |p, q| p * q,
                    "Div" => |p, q| p / q,
                    "Min" => f64::min,
                    "Max" => f64::max,
                    "Pow" => f64::powf,
                    "FMod" => |p, q| p % q,
                    _ => return None,
                };
                // Mean sums in full precision and rounds once after dividing.
                let round = if op == "Mean" { None } else { dtype };
                Some(Floats(x.iter().zip(y).map(|(&p, &q)| round_to(round, f(p, q))).collect()))
            }
            _ => None,
        },
    }
}

/// Where(cond, x, y): broadcast of all three; type of x.
fn where_op(cx: &Ctx) -> Infer<Outs> {
    let shapes = [cx.shape(0)?, cx.shape(1)?, cx.shape(2)?];
    let shape = broadcast(&shapes)?;
    let dtype = cx.dtype(1).or_else(|| cx.dtype(2));
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let cond = broadcast_value(cx.value(0)?, shapes[0], &shape)?;
        let x = broadcast_value(cx.value(1)?, shapes[1], &shape)?;
        let y = broadcast_value(cx.value(2)?, shapes[2], &shape)?;
        let picks: Vec<usize> = cond.as_ints()?.iter().enumerate().map(|(i, &c)| if c != 0 { i } else { i + shape_len(&shape) }).collect();
        Some(KnownValue::chain(&[&x, &y])?.pick(&picks))
    })();
    outs(vec![Out::new(shape, dtype).with_value(value)])
}

fn shape_len(shape: &[i64]) -> usize {
    numel(shape) as usize
}

// ---------------------------------------------------------------------------------------
// Shape manipulation
// ---------------------------------------------------------------------------------------

/// Concat along `axis`; the other dims must match.
fn concat(cx: &Ctx) -> Infer<Outs> {
    let n = cx.node.input.len();
    let shapes: Vec<&[i64]> = (0..n).map(|i| cx.shape(i)).collect::<Infer<_>>()?;
    let first = *shapes.first().ok_or_else(|| Unresolved("no inputs".into()))?;
    let axis = norm_axis(cx.node.req_attr_i("axis")?, first.len())?;
    let mut shape = first.to_vec();
    shape[axis] = 0;
    for s in &shapes {
        let matches = s.len() == first.len() && (0..s.len()).all(|i| i == axis || s[i] == first[i]);
        if !matches {
            return fail(format!("inputs {shapes:?} cannot be concatenated on axis {axis}"));
        }
        shape[axis] += s[axis];
    }
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let values: Vec<&KnownValue> = (0..n).map(|i| cx.value(i)).collect::<Option<_>>()?;
        let all = KnownValue::chain(&values)?;
        // For each outer index, every input contributes one contiguous chunk.
        let outer = numel(&first[..axis]) as usize;
        let chunks: Vec<usize> = shapes.iter().map(|s| numel(&s[axis..]) as usize).collect();
        let starts: Vec<usize> = chunks.iter().scan(0, |acc, &c| Some(std::mem::replace(acc, *acc + c * outer))).collect();
        let picks =
            (0..outer).flat_map(|o| chunks.iter().zip(&starts).flat_map(move |(&c, &s)| s + o * c..s + (o + 1) * c)).collect::<Vec<_>>();
        Some(all.pick(&picks))
    })();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Split along `axis`: sizes from the `split` attribute (before opset 13) or input 1 (from
/// 13); otherwise equal parts over the outputs / `num_outputs` (opset 18: the last part is
/// smaller when the dim does not divide evenly).
fn split(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, x.len())?;
    let dim = x[axis];
    let sizes = match cx.ints_attr_or_input("split", 1, 13)? {
        Some(sizes) if !sizes.is_empty() => sizes,
        _ => {
            let parts = match cx.node.opt_attr_i("num_outputs")? {
                Some(n) => n,
                None => cx.node.output.len() as i64,
            };
            if parts <= 0 {
                return fail("no outputs to split into");
            }
            let chunk = (dim + parts - 1) / parts;
            if cx.opset < 18 && dim % parts != 0 {
                return fail(format!("dim {dim} does not split evenly into {parts} parts"));
            }
            (0..parts).map(|k| (dim - k * chunk).clamp(0, chunk)).collect()
        }
    };
    if sizes.iter().sum::<i64>() != dim || sizes.iter().any(|&s| s < 0) {
        return fail(format!("split sizes {sizes:?} do not add up to dim {dim}"));
    }
    let mut start = 0usize;
    let mut list = Vec::new();
    for &size in &sizes {
        let mut shape = x.to_vec();
        shape[axis] = size;
        let range: Vec<usize> = (start..start + size as usize).collect();
        start += size as usize;
        let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
            let per_axis = axis_lists(x, axis, range);
            v.pick(&take_indices(x, &per_axis))
        });
        list.push(Out::new(shape, cx.dtype(0)).with_value(value));
    }
    outs(list)
}

/// Index lists selecting everything on each axis except `axis`, which gets `list`.
fn axis_lists(shape: &[i64], axis: usize, list: Vec<usize>) -> Vec<Vec<usize>> {
    let mut lists: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d as usize).collect()).collect();
    lists[axis] = list;
    lists
}

/// Slice: `starts`/`ends`/`axes` attributes before opset 10, inputs 1-4 (with `steps`) from 10.
fn slice(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        (cx.node.req_attr_ints("starts")?, cx.node.req_attr_ints("ends")?, cx.node.opt_attr_ints("axes")?, None)
    } else {
        (cx.ints(1, "starts")?, cx.ints(2, "ends")?, cx.opt_ints(3, "axes")?, cx.opt_ints(4, "steps")?)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return fail(format!("starts {starts:?}, ends {ends:?}, axes {axes:?}, steps {steps:?} differ in length"));
    }
    norm_axes(&axes, x.len())?; // rejects repeated axes
    let mut lists: Vec<Vec<usize>> = x.iter().map(|&d| (0..d as usize).collect()).collect();
    for (((&axis, &start), &end), &step) in axes.iter().zip(&starts).zip(&ends).zip(&steps) {
        let axis = norm_axis(axis, x.len())?;
        lists[axis] = slice_axis(x[axis], start, end, step)?;
    }
    let shape: Vec<i64> = lists.iter().map(|l| l.len() as i64).collect();
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| v.pick(&take_indices(x, &lists)));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// The indices one Slice axis selects, with the specification's clamping rules.
fn slice_axis(dim: i64, start: i64, end: i64, step: i64) -> Infer<Vec<usize>> {
    if step == 0 {
        return fail("slice step is 0");
    }
    if dim == 0 {
        return Ok(Vec::new());
    }
    let adjust = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (start, end) = (adjust(start), adjust(end));
    let (start, end) = if step > 0 { (start.clamp(0, dim), end.clamp(0, dim)) } else { (start.clamp(0, dim - 1), end.clamp(-1, dim - 1)) };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        out.push(i as usize);
        i += step;
    }
    Ok(out)
}

/// Reshape: target from input 1 (from opset 5) or the `shape` attribute; 0 copies the input
/// dim (unless `allowzero`), -1 takes the remaining size.
fn reshape(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let target = if cx.opset < 5 { cx.node.req_attr_ints("shape")? } else { cx.ints(1, "shape")? };
    let allowzero = cx.node.attr_i("allowzero", 0)? != 0;
    let mut shape = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            0 if !allowzero => match x.get(i) {
                Some(&d) => shape.push(d),
                None => return fail(format!("target {target:?} copies dim {i} of the rank-{} input", x.len())),
            },
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                shape.push(1);
            }
            t if t >= 0 => shape.push(t),
            _ => return fail(format!("invalid reshape target {target:?}")),
        }
    }
    let (total, known) = (numel(x), numel(&shape));
    if let Some(i) = infer_at {
        if known == 0 || total % known != 0 {
            return fail(format!("cannot reshape {x:?} to {target:?}"));
        }
        shape[i] = total / known;
    } else if known != total {
        return fail(format!("cannot reshape {x:?} ({total} elements) to {shape:?}"));
    }
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Transpose by `perm` (default: reversed axes).
fn transpose(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let perm = cx.node.attr_ints("perm", &(0..x.len() as i64).rev().collect::<Vec<_>>())?;
    let axes = norm_axes(&perm, x.len())?;
    if axes.len() != x.len() {
        return fail(format!("perm {perm:?} is not a permutation of rank {}", x.len()));
    }
    let perm: Vec<usize> = perm.iter().map(|&p| norm_axis(p, x.len())).collect::<Infer<_>>()?;
    let shape: Vec<i64> = perm.iter().map(|&p| x[p]).collect();
    // Values: output index (i_0, ..., i_r) reads input element with i_k on axis perm[k].
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
        let st = strides(x);
        let mut picks = vec![0usize];
        for (k, &p) in perm.iter().enumerate() {
            let (n, stride) = (shape[k] as usize, st[p]);
            picks = picks.iter().flat_map(|&b| (0..n).map(move |i| b + i * stride)).collect();
        }
        v.pick(&picks)
    });
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Flatten to 2-D at `axis` (default 1; `axis == rank` is allowed).
fn flatten(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = cx.node.attr_i("axis", 1)?;
    let axis = if axis == x.len() as i64 { x.len() } else { norm_axis(axis, x.len())? };
    let shape = vec![numel(&x[..axis]), numel(&x[axis..])];
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Squeeze: `axes` attribute before opset 13, input 1 from 13; no axes removes every 1.
fn squeeze(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axes = match cx.ints_attr_or_input("axes", 1, 13)? {
        Some(axes) => norm_axes(&axes, x.len())?,
        None => (0..x.len()).filter(|&i| x[i] == 1).collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
        return fail(format!("cannot squeeze axis {a} of size {}", x[a]));
    }
    let shape: Vec<i64> = (0..x.len()).filter(|i| !axes.contains(i)).map(|i| x[i]).collect();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Unsqueeze: `axes` attribute before opset 13, input 1 from 13, relative to the output rank.
fn unsqueeze(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axes = cx.ints_attr_or_input("axes", 1, 13)?.ok_or_else(|| Unresolved("axes are missing".into()))?;
    let rank = x.len() + axes.len();
    let axes = norm_axes(&axes, rank)?;
    let mut rest = x.iter();
    let shape: Vec<i64> = (0..rank).map(|i| if axes.contains(&i) { 1 } else { *rest.next().expect("rank adds up") }).collect();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(cx.value(0).cloned())])
}

/// Expand: broadcast of the input shape and the target shape (input 1).
fn expand(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let target = cx.ints(1, "shape")?;
    let shape = broadcast(&[x, &target])?;
    let value = cx.value(0).and_then(|v| broadcast_value(v, x, &shape));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Tile: each dim times its repeat count.
fn tile(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let repeats = cx.ints(1, "repeats")?;
    if repeats.len() != x.len() || repeats.iter().any(|&r| r < 0) {
        return fail(format!("repeats {repeats:?} do not fit rank {}", x.len()));
    }
    let shape: Vec<i64> = x.iter().zip(&repeats).map(|(d, r)| d * r).collect();
    let value = cx.value(0).filter(|_| small(&shape)).map(|v| {
        let lists: Vec<Vec<usize>> = x.iter().zip(&shape).map(|(&d, &n)| (0..n as usize).map(|i| i % d as usize).collect()).collect();
        v.pick(&take_indices(x, &lists))
    });
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Pad: `paddings` (opset 1) / `pads` attribute before opset 11, input 1 from 11 (with
/// optional `axes` input 3 from 18). Each dim grows by its begin and end pad.
fn pad(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let pads = match cx.opset {
        ..2 => cx.node.req_attr_ints("paddings")?,
        2..11 => cx.node.req_attr_ints("pads")?,
        _ => cx.ints(1, "pads")?,
    };
    let axes: Vec<usize> = match cx.opset {
        18.. => match cx.opt_ints(3, "axes")? {
            Some(axes) => axes.iter().map(|&a| norm_axis(a, x.len())).collect::<Infer<_>>()?,
            None => (0..x.len()).collect(),
        },
        _ => (0..x.len()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return fail(format!("pads {pads:?} do not fit {} axes", axes.len()));
    }
    let mut shape = x.to_vec();
    for (k, &a) in axes.iter().enumerate() {
        shape[a] += pads[k] + pads[k + axes.len()];
    }
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// Resize: opset 10 takes (X, scales); from 11 (X, roi, scales, sizes), from 18 with `axes`
/// and `keep_aspect_ratio_policy`. Scales give `floor(in × scale)` (× (roi_end − roi_start)
/// for `tf_crop_and_resize`), computed in f32 as runtimes do.
fn resize(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let (scales_in, sizes_in) = if cx.opset < 11 { (1, None) } else { (2, Some(3)) };
    let axes: Vec<usize> = match cx.node.opt_attr_ints("axes")? {
        Some(axes) if cx.opset >= 18 => axes.iter().map(|&a| norm_axis(a, x.len())).collect::<Infer<_>>()?,
        _ => (0..x.len()).collect(),
    };
    let sizes = match sizes_in {
        Some(i) if cx.has(i) => cx.value(i),
        _ => None,
    };
    let scales = if cx.has(scales_in) { cx.value(scales_in) } else { None };
    let mut shape = x.to_vec();
    if let Some(sizes) = sizes.filter(|v| !v.is_empty()) {
        let sizes = sizes.as_ints().ok_or_else(|| Unresolved("sizes are not integers".into()))?;
        if sizes.len() != axes.len() {
            return fail(format!("sizes {sizes:?} do not fit {} axes", axes.len()));
        }
        let policy = cx.node.attr_s("keep_aspect_ratio_policy", "stretch")?;
        let ratios = axes.iter().zip(sizes).map(|(&a, &s)| s as f64 / x[a] as f64);
        let scale = match policy.as_str() {
            "stretch" => None,
            "not_larger" => Some(ratios.fold(f64::INFINITY, f64::min)),
            "not_smaller" => Some(ratios.fold(0.0, f64::max)),
            p => return fail(format!("unknown keep_aspect_ratio_policy '{p}'")),
        };
        for (&a, &s) in axes.iter().zip(sizes) {
            // round_int: nearest integer, halfway cases up.
            shape[a] = scale.map_or(s, |k| (k * x[a] as f64 + 0.5).floor() as i64);
        }
    } else if let Some(scales) = scales.filter(|v| !v.is_empty()) {
        let scales = scales.to_f64_vec();
        if scales.len() != axes.len() {
            return fail(format!("scales {scales:?} do not fit {} axes", axes.len()));
        }
        let roi = match cx.node.attr_s("coordinate_transformation_mode", "half_pixel")?.as_str() {
            "tf_crop_and_resize" if cx.opset >= 11 => cx.opt_floats(1, "roi")?,
            _ => None,
        };
        for (k, (&a, &s)) in axes.iter().zip(&scales).enumerate() {
            let extent = roi.as_ref().filter(|r| r.len() == 2 * axes.len()).map_or(1.0, |r| r[k + axes.len()] - r[k]);
            shape[a] = (x[a] as f32 * extent as f32 * s as f32).floor() as i64;
        }
    } else {
        let which = match sizes_in {
            Some(i) if cx.has(i) => cx.input(i),
            _ => cx.input(scales_in),
        };
        return fail(match which {
            Some(name) => format!("value of input '{name}' (scales/sizes) is not known"),
            None => "neither scales nor sizes is given".into(),
        });
    }
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// Upsample: `height_scale`/`width_scale` (opset 1), `scales` attribute (7-8), input 1 (9+);
/// each dim becomes `floor(in × scale)`.
fn upsample(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let scales: Vec<f64> = match cx.opset {
        ..7 => {
            let h = cx.node.attr_f("height_scale", 1.0)? as f64;
            let w = cx.node.attr_f("width_scale", 1.0)? as f64;
            vec![1.0, 1.0, h, w]
        }
        7..9 => cx.node.attr_floats("scales", &[])?.iter().map(|&s| s as f64).collect(),
        _ => cx.opt_floats(1, "scales")?.ok_or_else(|| Unresolved("input 'scales' is missing".into()))?,
    };
    if scales.len() != x.len() {
        return fail(format!("scales {scales:?} do not fit rank {}", x.len()));
    }
    let shape = x.iter().zip(&scales).map(|(&d, &s)| (d as f32 * s as f32).floor() as i64).collect();
    outs(vec![Out::new(shape, cx.dtype(0))])
}

// ---------------------------------------------------------------------------------------
// Matrix products
// ---------------------------------------------------------------------------------------

/// Gemm: `[M, N]` from A `[M, K]` (or `[K, M]` with transA) and B `[K, N]` (or `[N, K]`).
fn gemm(cx: &Ctx) -> Infer<Outs> {
    let (a, b) = (cx.shape(0)?, cx.shape(1)?);
    if a.len() != 2 || b.len() != 2 {
        return fail(format!("Gemm needs 2-D inputs, got {a:?} and {b:?}"));
    }
    let (m, ka) = if cx.node.attr_i("transA", 0)? != 0 { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if cx.node.attr_i("transB", 0)? != 0 { (b[1], b[0]) } else { (b[0], b[1]) };
    if ka != kb {
        return fail(format!("inner dimensions differ: A {a:?}, B {b:?}"));
    }
    outs(vec![Out::new(vec![m, n], cx.dtype(0))])
}

/// MatMul with numpy semantics: 1-D operands are promoted and the added axis removed, leading
/// (batch) dims broadcast.
fn matmul(cx: &Ctx, a_in: usize, b_in: usize, dtype: Option<i32>) -> Infer<Outs> {
    let (a, b) = (cx.shape(a_in)?, cx.shape(b_in)?);
    outs(vec![Out::new(matmul_shape(a, b)?, dtype)])
}

fn matmul_shape(a: &[i64], b: &[i64]) -> Infer<Vec<i64>> {
    if a.is_empty() || b.is_empty() {
        return fail("MatMul operands must not be scalars");
    }
    let a2: Vec<i64> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let b2: Vec<i64> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (ra, rb) = (a2.len(), b2.len());
    if a2[ra - 1] != b2[rb - 2] {
        return fail(format!("inner dimensions differ: {a:?} × {b:?}"));
    }
    let mut shape = broadcast(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    if a.len() > 1 {
        shape.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        shape.push(b2[rb - 1]);
    }
    Ok(shape)
}

// ---------------------------------------------------------------------------------------
// Reductions and indexing
// ---------------------------------------------------------------------------------------

/// Reduce*: `axes` attribute before opset 13 (ReduceSum) / 18 (the others), input 1 after;
/// no axes reduces everything unless `noop_with_empty_axes`. Values propagate for
/// ReduceProd, ReduceSum, ReduceMax and ReduceMin.
fn reduce(cx: &Ctx) -> Infer<Outs> {
    let op = cx.node.op_type();
    if !matches!(
        op,
        "ReduceSum"
            | "ReduceMean"
            | "ReduceMax"
            | "ReduceMin"
            | "ReduceProd"
            | "ReduceL1"
            | "ReduceL2"
            | "ReduceLogSum"
            | "ReduceLogSumExp"
            | "ReduceSumSquare"
    ) {
        return fail(format!("operator '{op}' has no shape rule"));
    }
    let x = cx.shape(0)?;
    let since = if op == "ReduceSum" { 13 } else { 18 };
    let axes = cx.ints_attr_or_input("axes", 1, since)?.unwrap_or_default();
    let keepdims = cx.node.attr_i("keepdims", 1)? != 0;
    let axes: BTreeSet<usize> = if axes.is_empty() {
        if cx.node.attr_i("noop_with_empty_axes", 0)? != 0 {
            return outs(vec![Out::new(x.to_vec(), cx.dtype(0)).with_value(cx.value(0).cloned())]);
        }
        (0..x.len()).collect()
    } else {
        norm_axes(&axes, x.len())?
    };
    let shape: Vec<i64> = (0..x.len())
        .filter_map(|i| match (axes.contains(&i), keepdims) {
            (false, _) => Some(x[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let value = cx.value(0).filter(|_| small(x)).and_then(|v| reduce_value(op, v, x, &axes, cx.dtype(0)));
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// Reduces `value` (of shape `x`) over `axes`; the result is in row-major order of the kept
/// axes, which is the same for keepdims 0 and 1.
fn reduce_value(op: &str, value: &KnownValue, x: &[i64], axes: &BTreeSet<usize>, dtype: Option<i32>) -> Option<KnownValue> {
    let kept: Vec<i64> = (0..x.len()).map(|i| if axes.contains(&i) { 1 } else { x[i] }).collect();
    let kept_strides = strides(&kept);
    let x_strides = strides(x);
    let n_out = numel(&kept) as usize;
    // Output slot of every input element.
    let slot = |flat: usize| -> usize {
        (0..x.len()).filter(|i| !axes.contains(i)).map(|i| (flat / x_strides[i]) % x[i] as usize * kept_strides[i]).sum()
    };
    match value {
        // The identity of an empty Max/Min is the element type's extreme value: not tracked.
        KnownValue::Ints(v) if v.is_empty() && matches!(op, "ReduceMax" | "ReduceMin") => None,
        KnownValue::Ints(v) => {
            type Fold = fn(i64, i64) -> Option<i64>;
            let (init, f): (i64, Fold) = match op {
                "ReduceProd" => (1, i64::checked_mul),
                "ReduceSum" => (0, i64::checked_add),
                "ReduceMax" => (i64::MIN, |a, b| Some(a.max(b))),
                "ReduceMin" => (i64::MAX, |a, b| Some(a.min(b))),
                _ => return None,
            };
            let mut out = vec![init; n_out];
            for (i, &e) in v.iter().enumerate() {
                let s = slot(i);
                out[s] = f(out[s], e)?;
            }
            Some(KnownValue::Ints(out))
        }
        KnownValue::Floats(v) => {
            let (init, f): (f64, fn(f64, f64) -> f64) = match op {
                "ReduceProd" => (1.0, |a, b| a * b),
                "ReduceSum" => (0.0, |a, b| a + b),
                "ReduceMax" => (f64::NEG_INFINITY, f64::max),
                "ReduceMin" => (f64::INFINITY, f64::min),
                _ => return None,
            };
            let mut out = vec![init; n_out];
            for (i, &e) in v.iter().enumerate() {
                let s = slot(i);
                out[s] = f(out[s], e);
            }
            Some(KnownValue::Floats(out.into_iter().map(|e| round_to(dtype, e)).collect()))
        }
    }
}

/// ArgMax / ArgMin: INT64, `axis` reduced (kept as 1 with keepdims).
fn arg_reduce(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, x.len())?;
    let mut shape = x.to_vec();
    if cx.node.attr_i("keepdims", 1)? != 0 {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    outs(vec![Out::new(shape, Some(INT64))])
}

/// Gather: `data[:axis] + indices.shape + data[axis+1:]`; values when both are known.
fn gather(cx: &Ctx) -> Infer<Outs> {
    let (data, indices) = (cx.shape(0)?, cx.shape(1)?);
    let axis = norm_axis(cx.node.attr_i("axis", 0)?, data.len())?;
    let mut shape = data[..axis].to_vec();
    shape.extend_from_slice(indices);
    shape.extend_from_slice(&data[axis + 1..]);
    let value = (|| {
        if !small(&shape) {
            return None;
        }
        let dim = data[axis];
        let idx: Vec<usize> = cx
            .value(1)?
            .as_ints()?
            .iter()
            .map(|&i| {
                let i = if i < 0 { i + dim } else { i };
                (0..dim).contains(&i).then_some(i as usize)
            })
            .collect::<Option<_>>()?;
        Some(cx.value(0)?.pick(&take_indices(data, &axis_lists(data, axis, idx))))
    })();
    outs(vec![Out::new(shape, cx.dtype(0)).with_value(value)])
}

/// GatherND: `indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]`.
fn gather_nd(cx: &Ctx) -> Infer<Outs> {
    let (data, indices) = (cx.shape(0)?, cx.shape(1)?);
    let b = cx.node.attr_i("batch_dims", 0)? as usize;
    let last = *indices.last().ok_or_else(|| Unresolved("indices must not be a scalar".into()))? as usize;
    if b + last > data.len() {
        return fail(format!("indices {indices:?} do not fit data {data:?} with batch_dims {b}"));
    }
    let mut shape = indices[..indices.len() - 1].to_vec();
    shape.extend_from_slice(&data[b + last..]);
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// Shape: the input's dims as INT64 (sliced by `start`/`end` from opset 15, clamped).
fn shape_op(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let r = x.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(cx.node.attr_i("start", 0)?);
    let end = clamp(cx.node.attr_i("end", r)?);
    let dims = x[start..end.max(start)].to_vec();
    outs(vec![Out::new(vec![dims.len() as i64], Some(INT64)).with_value(Some(KnownValue::Ints(dims)))])
}

/// Size: scalar INT64 element count.
fn size_op(cx: &Ctx) -> Infer<Outs> {
    let n = numel(cx.shape(0)?);
    outs(vec![Out::new(vec![], Some(INT64)).with_value(Some(KnownValue::Ints(vec![n])))])
}

/// Constant: `value` (tensor), `sparse_value`, `value_float(s)`, `value_int(s)`,
/// `value_string(s)`.
fn constant(cx: &Ctx) -> Infer<Outs> {
    let node = cx.node;
    if let Some(t) = node.opt_attr_tensor("value")? {
        return outs(vec![Out::new(t.dims.clone(), Some(t.data_type())).with_value(small_tensor_value(t))]);
    }
    if let Some(s) = node.attr("sparse_value").and_then(|a| a.sparse_tensor.as_ref()) {
        return outs(vec![Out::new(s.dims.clone(), s.values.as_ref().map(|v| v.data_type()))]);
    }
    let floats = |v: Vec<f32>| KnownValue::Floats(v.into_iter().map(f64::from).collect());
    let out = if let Some(f) = node.opt_attr_f("value_float")? {
        Out::new(vec![], Some(FLOAT)).with_value(Some(floats(vec![f])))
    } else if let Some(f) = node.opt_attr_floats("value_floats")? {
        Out::new(vec![f.len() as i64], Some(FLOAT)).with_value(Some(floats(f)))
    } else if let Some(i) = node.opt_attr_i("value_int")? {
        Out::new(vec![], Some(INT64)).with_value(Some(KnownValue::Ints(vec![i])))
    } else if let Some(i) = node.opt_attr_ints("value_ints")? {
        Out::new(vec![i.len() as i64], Some(INT64)).with_value(Some(KnownValue::Ints(i)))
    } else if node.opt_attr_s("value_string")?.is_some() {
        Out::new(vec![], Some(STRING))
    } else if let Some(a) = node.attr("value_strings") {
        Out::new(vec![a.strings.len() as i64], Some(STRING))
    } else {
        return fail("Constant has no value attribute");
    };
    outs(vec![out])
}

/// ConstantOfShape: shape from input 0's value, type and fill from `value` (default FLOAT 0).
fn constant_of_shape(cx: &Ctx) -> Infer<Outs> {
    let shape = cx.ints(0, "shape")?;
    if shape.iter().any(|&d| d < 0) {
        return fail(format!("negative dimension in {shape:?}"));
    }
    let (dtype, fill) = match cx.node.opt_attr_tensor("value")? {
        Some(t) => (t.data_type(), small_tensor_value(t)),
        None => (FLOAT, Some(KnownValue::Floats(vec![0.0]))),
    };
    let value = fill.filter(|f| f.len() == 1 && small(&shape)).map(|f| f.pick(&vec![0; numel(&shape) as usize]));
    outs(vec![Out::new(shape, Some(dtype)).with_value(value)])
}

/// Range: `max(ceil((limit - start) / delta), 0)` elements of the type of `start`.
fn range(cx: &Ctx) -> Infer<Outs> {
    let dtype = cx.dtype(0);
    let [start, limit, delta] = [(0, "start"), (1, "limit"), (2, "delta")].map(|(i, what)| match cx.value(i) {
        Some(v) if v.len() == 1 => Ok(v.clone()),
        _ => fail(format!("value of input {what} is not known")),
    });
    let (start, limit, delta) = (start?, limit?, delta?);
    let (n, value) = match (&start, &limit, &delta) {
        (KnownValue::Ints(s), KnownValue::Ints(l), KnownValue::Ints(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            if d == 0 {
                return fail("delta is 0");
            }
            // Exact integer ceil division of (l - s) by d.
            let (num, den) = if d < 0 { (s - l, -d) } else { (l - s, d) };
            let n = if num <= 0 { 0 } else { (num + den - 1) / den };
            let value = (n as usize <= MAX_KNOWN_ELEMENTS).then(|| KnownValue::Ints((0..n).map(|i| s + i * d).collect()));
            (n, value)
        }
        _ => {
            let (s, l, d) = (start.to_f64_vec()[0], limit.to_f64_vec()[0], delta.to_f64_vec()[0]);
            if d == 0.0 {
                return fail("delta is 0");
            }
            let n = round_to(dtype, round_to(dtype, l - s) / d).ceil().max(0.0) as i64;
            let value =
                (n as usize <= MAX_KNOWN_ELEMENTS).then(|| KnownValue::Floats((0..n).map(|i| round_to(dtype, s + i as f64 * d)).collect()));
            (n, value)
        }
    };
    outs(vec![Out::new(vec![n], dtype).with_value(value)])
}

/// DepthToSpace `[N, C/b², H·b, W·b]` and SpaceToDepth `[N, C·b², H/b, W/b]`.
fn depth_space(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let b = cx.node.req_attr_i("blocksize")?;
    if x.len() != 4 || b <= 0 {
        return fail(format!("needs a 4-D input and a positive blocksize, got {x:?} and {b}"));
    }
    let shape = if cx.node.op_type() == "DepthToSpace" {
        if x[1] % (b * b) != 0 {
            return fail(format!("channels {} are not divisible by blocksize² {}", x[1], b * b));
        }
        vec![x[0], x[1] / (b * b), x[2] * b, x[3] * b]
    } else {
        if x[2] % b != 0 || x[3] % b != 0 {
            return fail(format!("spatial dims {:?} are not divisible by blocksize {b}", &x[2..]));
        }
        vec![x[0], x[1] * b * b, x[2] / b, x[3] / b]
    };
    outs(vec![Out::new(shape, cx.dtype(0))])
}

/// TopK: `axis` becomes K (`k` attribute before opset 10, input 1 from 10); indices INT64.
fn topk(cx: &Ctx) -> Infer<Outs> {
    let x = cx.shape(0)?;
    let axis = norm_axis(cx.node.attr_i("axis", -1)?, x.len())?;
    let k = if cx.opset < 10 { cx.node.req_attr_i("k")? } else { cx.scalar_int(1, "K")? };
    if k < 0 || k > x[axis] {
        return fail(format!("K = {k} does not fit dim {}", x[axis]));
    }
    let mut shape = x.to_vec();
    shape[axis] = k;
    outs(vec![Out::new(shape.clone(), cx.dtype(0)), Out::new(shape, Some(INT64))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::attribute_proto::AttributeType;
    use crate::onnx::proto::tensor_shape_proto::Dimension;
    use crate::onnx::proto::{AttributeProto, GraphProto, OperatorSetIdProto, TensorShapeProto, TypeProto};

    // ---- builders --------------------------------------------------------------------

    fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            name: Some(format!("{op}_{}", outputs.first().unwrap_or(&""))),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        }
    }

    fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(v), ..Default::default() }
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.to_vec(), ..Default::default() }
    }

    fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(v.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    fn floats(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Floats as i32), floats: v.to_vec(), ..Default::default() }
    }

    fn i64_init(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
        Tensor::new(dims.to_vec(), TensorData::I64(v.to_vec())).to_proto(name)
    }

    fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        Tensor::new(dims.to_vec(), TensorData::F32(v.to_vec())).to_proto(name)
    }

    /// A weight initializer of the given shape (values irrelevant: zeros).
    fn weight(name: &str, dims: &[i64]) -> TensorProto {
        let n = dims.iter().product::<i64>() as usize;
        f32_init(name, dims, &vec![0.0; n])
    }

    /// A FLOAT value info; a negative dim is symbolic ("N").
    fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|&d| Dimension {
                value: Some(if d < 0 { dimension::Value::DimParam("N".into()) } else { dimension::Value::DimValue(d) }),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(FLOAT),
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn model(opset: i64, inputs: Vec<ValueInfoProto>, inits: Vec<TensorProto>, nodes: Vec<NodeProto>) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
            graph: Some(GraphProto { name: Some("g".into()), node: nodes, input: inputs, initializer: inits, ..Default::default() }),
            ..Default::default()
        }
    }

    fn infer(m: &ModelProto) -> InferredShapes {
        infer_shapes(m, &HashMap::new()).unwrap()
    }

    fn shape<'a>(r: &'a InferredShapes, name: &str) -> &'a [i64] {
        r.shape(name).unwrap_or_else(|| panic!("'{name}' unresolved; unresolved nodes: {:?}", r.unresolved))
    }

    // ---- tests -----------------------------------------------------------------------

    #[test]
    fn conv_with_pads_strides_dilations_groups() {
        // X [1,4,10,12], W [6,2,3,3], group 2 (4 input channels = 2 per group × 2 groups),
        // pads [h_begin 1, w_begin 2, h_end 1, w_end 0], strides [2,3], dilations [2,1].
        // H: effective kernel (3-1)·2+1 = 5; floor((10+1+1-5)/2)+1 = floor(7/2)+1 = 4.
        // W: effective kernel 3;           floor((12+2+0-3)/3)+1 = floor(11/3)+1 = 4.
        // Channels = W.shape[0] = 6.
        let conv = node(
            "Conv",
            &["x", "w"],
            &["y"],
            vec![int("group", 2), ints("pads", &[1, 2, 1, 0]), ints("strides", &[2, 3]), ints("dilations", &[2, 1])],
        );
        // SAME_UPPER: ceil(10/3) = 4, ceil(12/3) = 4. VALID: floor((10-3)/3)+1 = 3, floor((12-3)/3)+1 = 4.
        let same = node("Conv", &["x", "w2"], &["same"], vec![string("auto_pad", "SAME_UPPER"), ints("strides", &[3, 3])]);
        let valid = node("Conv", &["x", "w2"], &["valid"], vec![string("auto_pad", "VALID"), ints("strides", &[3, 3])]);
        let m = model(
            13,
            vec![vi("x", &[1, 4, 10, 12])],
            vec![weight("w", &[6, 2, 3, 3]), weight("w2", &[8, 4, 3, 3])],
            vec![conv, same, valid],
        );
        let r = infer(&m);
        assert_eq!(shape(&r, "y"), &[1, 6, 4, 4]);
        assert_eq!(shape(&r, "same"), &[1, 8, 4, 4]);
        assert_eq!(shape(&r, "valid"), &[1, 8, 3, 4]);
        assert_eq!(r.dtypes["y"], FLOAT);
        assert!(r.unresolved.is_empty());
    }

    #[test]
    fn conv_transpose_with_output_padding() {
        // X [1,8,5,7], W [8,3,3,3], group 2 → output channels W.shape[1]·group = 6.
        // out = stride·(in-1) + output_padding + ((k-1)·dilation+1) - pad_begin - pad_end:
        // H: 2·4 + 1 + 3 - 1 - 1 = 10;  W: 2·6 + 0 + 3 - 1 - 1 = 13.
        let ct = node(
            "ConvTranspose",
            &["x", "w"],
            &["y"],
            vec![int("group", 2), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1]), ints("output_padding", &[1, 0])],
        );
        // Explicit output_shape wins over pads: [10, 14]. SAME_UPPER: in × stride = [10, 14].
        let explicit = node("ConvTranspose", &["x", "w"], &["y2"], vec![int("group", 2), ints("output_shape", &[10, 14])]);
        let same =
            node("ConvTranspose", &["x", "w"], &["y3"], vec![int("group", 2), ints("strides", &[2, 2]), string("auto_pad", "SAME_UPPER")]);
        let m = model(13, vec![vi("x", &[1, 8, 5, 7])], vec![weight("w", &[8, 3, 3, 3])], vec![ct, explicit, same]);
        let r = infer(&m);
        assert_eq!(shape(&r, "y"), &[1, 6, 10, 13]);
        assert_eq!(shape(&r, "y2"), &[1, 6, 10, 14]);
        assert_eq!(shape(&r, "y3"), &[1, 6, 10, 14]);
    }

    #[test]
    fn max_pool_ceil_mode() {
        // X [1,3,32,31], kernel 3, stride 2, no pads, ceil_mode 1:
        // H: ceil((32-3)/2)+1 = ceil(14.5)+1 = 16 (floor mode would give 15);
        // W: ceil((31-3)/2)+1 = 14+1 = 15. Last windows start at 30 < 32 and 28 < 31: kept.
        let pool =
            node("MaxPool", &["x"], &["y", "idx"], vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), int("ceil_mode", 1)]);
        let floor = node("MaxPool", &["x"], &["y_floor"], vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])]);
        // 1-D X [1,1,4], kernel 2, stride 2, pads [0,1], ceil_mode: ceil((4+1-2)/2)+1 = 3, but the
        // 3rd window would start at 4, inside the end padding, and "sliding windows that would
        // start in the right padded region are ignored" → 2.
        let edge = node(
            "MaxPool",
            &["z"],
            &["z_out"],
            vec![ints("kernel_shape", &[2]), ints("strides", &[2]), ints("pads", &[0, 1]), int("ceil_mode", 1)],
        );
        let m = model(13, vec![vi("x", &[1, 3, 32, 31]), vi("z", &[1, 1, 4])], vec![], vec![pool, floor, edge]);
        let r = infer(&m);
        assert_eq!(shape(&r, "y"), &[1, 3, 16, 15]);
        assert_eq!(shape(&r, "idx"), &[1, 3, 16, 15]);
        assert_eq!(r.dtypes["idx"], INT64);
        assert_eq!(shape(&r, "y_floor"), &[1, 3, 15, 15]);
        assert_eq!(shape(&r, "z_out"), &[1, 1, 2]);
    }

    #[test]
    fn shape_gather_unsqueeze_concat_reshape_chain() {
        // Shape(X [2,3,4,5]) = [2,3,4,5]; Gather(index 0) = 2 (scalar); Unsqueeze(axes [0]) = [2];
        // Concat([2], [0, -1]) = [2, 0, -1]; Reshape: 0 copies dim 1 (3), -1 = 120/(2·3) = 20.
        let nodes = vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "zero"], &["n"], vec![int("axis", 0)]),
            node("Unsqueeze", &["n", "axes0"], &["n1"], vec![]),
            node("Concat", &["n1", "rest"], &["target"], vec![int("axis", 0)]),
            node("Reshape", &["x", "target"], &["y"], vec![]),
        ];
        let inits = vec![i64_init("zero", &[], &[0]), i64_init("axes0", &[1], &[0]), i64_init("rest", &[2], &[0, -1])];
        let m = model(13, vec![vi("x", &[-1, 3, 4, 5])], inits, nodes);
        let given = HashMap::from([("x".to_string(), vec![2, 3, 4, 5])]);
        let r = infer_shapes(&m, &given).unwrap();
        assert_eq!(r.value("s"), Some(&KnownValue::Ints(vec![2, 3, 4, 5])));
        assert_eq!(shape(&r, "n"), &[] as &[i64]);
        assert_eq!(r.value("n"), Some(&KnownValue::Ints(vec![2])));
        assert_eq!(r.value("target"), Some(&KnownValue::Ints(vec![2, 0, -1])));
        assert_eq!(shape(&r, "y"), &[2, 3, 20]);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
    }

    #[test]
    fn resize_sizes_computed_from_shape_times_two() {
        // Shape(X [1,3,20,30]) → Slice [2:4] = [20,30] → Mul 2 = [40,60] → Concat([1,3], ·) =
        // [1,3,40,60] → Resize(X, "", "", sizes): output = sizes.
        // Second Resize with constant scales [1,1,1.5,0.5]: floor(20·1.5) = 30, floor(30·0.5) = 15.
        let nodes = vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Slice", &["s", "starts", "ends"], &["hw"], vec![]),
            node("Mul", &["hw", "two"], &["hw2"], vec![]),
            node("Concat", &["nc", "hw2"], &["sizes"], vec![int("axis", 0)]),
            node("Resize", &["x", "", "", "sizes"], &["up"], vec![string("mode", "nearest")]),
            node("Resize", &["x", "", "scales"], &["scaled"], vec![]),
        ];
        let inits = vec![
            i64_init("starts", &[1], &[2]),
            i64_init("ends", &[1], &[4]),
            i64_init("two", &[1], &[2]),
            i64_init("nc", &[2], &[1, 3]),
            f32_init("scales", &[4], &[1.0, 1.0, 1.5, 0.5]),
        ];
        let m = model(13, vec![vi("x", &[1, 3, 20, 30])], inits, nodes);
        let r = infer(&m);
        assert_eq!(r.value("hw2"), Some(&KnownValue::Ints(vec![40, 60])));
        assert_eq!(shape(&r, "up"), &[1, 3, 40, 60]);
        assert_eq!(shape(&r, "scaled"), &[1, 3, 30, 15]);
    }

    #[test]
    fn resize_scales_computed_in_float() {
        // Opset 11 (roi, scales both inputs): scales = Cast(Shape)·0 + 1 then Div by [1,1,0.5,0.25]
        // gives [1,1,2,4] as FLOAT; output = floor([1,3,20,30] × [1,1,2,4]) = [1,3,40,120].
        let nodes = vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Cast", &["s"], &["sf"], vec![int("to", FLOAT as i64)]),
            node("Div", &["sf", "sf"], &["ones"], vec![]),
            node("Div", &["ones", "den"], &["scales"], vec![]),
            node("Resize", &["x", "roi", "scales"], &["y"], vec![]),
        ];
        let inits = vec![f32_init("den", &[4], &[1.0, 1.0, 0.5, 0.25]), f32_init("roi", &[0], &[])];
        let m = model(11, vec![vi("x", &[1, 3, 20, 30])], inits, nodes);
        let r = infer(&m);
        assert_eq!(r.value("scales"), Some(&KnownValue::Floats(vec![1.0, 1.0, 2.0, 4.0])));
        assert_eq!(shape(&r, "y"), &[1, 3, 40, 120]);
    }

    #[test]
    fn gemm_trans_b() {
        // A [4,7], B [5,7] with transB → B' [7,5]: output [M, N] = [4, 5].
        // transA: A [7,4] → A' [4,7], B [7,5]: [4, 5].
        let nodes = vec![
            node("Gemm", &["a", "b", "c"], &["y"], vec![int("transB", 1)]),
            node("Gemm", &["at", "bt"], &["y2"], vec![int("transA", 1)]),
        ];
        let inits = vec![weight("b", &[5, 7]), weight("c", &[5]), weight("bt", &[7, 5])];
        let m = model(13, vec![vi("a", &[4, 7]), vi("at", &[7, 4])], inits, nodes);
        let r = infer(&m);
        assert_eq!(shape(&r, "y"), &[4, 5]);
        assert_eq!(shape(&r, "y2"), &[4, 5]);
    }

    #[test]
    fn batched_matmul_broadcasting() {
        // [2,1,3,4] × [5,4,6]: batch dims [2,1] and [5] broadcast to [2,5]; matrices 3×4 · 4×6.
        // → [2,5,3,6]. 1-D left [4] × [3,4,6] → [3,1,6] with the prepended 1 removed: [3,6].
        // [2,3,4] × 1-D [4] → [2,3,1] with the appended 1 removed: [2,3].
        let nodes = vec![
            node("MatMul", &["a", "b"], &["y"], vec![]),
            node("MatMul", &["v", "b3"], &["y1"], vec![]),
            node("MatMul", &["a3", "v"], &["y2"], vec![]),
        ];
        let inputs = vec![vi("a", &[2, 1, 3, 4]), vi("b", &[5, 4, 6]), vi("v", &[4]), vi("b3", &[3, 4, 6]), vi("a3", &[2, 3, 4])];
        let r = infer(&model(13, inputs, vec![], nodes));
        assert_eq!(shape(&r, "y"), &[2, 5, 3, 6]);
        assert_eq!(shape(&r, "y1"), &[3, 6]);
        assert_eq!(shape(&r, "y2"), &[2, 3]);
        // Inner-dimension mismatch [2,3]×[4,5] is reported, not an error.
        let bad = model(13, vec![vi("p", &[2, 3]), vi("q", &[4, 5])], vec![], vec![node("MatMul", &["p", "q"], &["o"], vec![])]);
        let r = infer(&bad);
        assert_eq!(r.unresolved.len(), 1);
        assert!(r.unresolved[0].2.contains("inner"), "{:?}", r.unresolved);
    }

    #[test]
    fn split_opset13_with_split_input() {
        // X [2,10,3], axis 1, split input [3,7] → [2,3,3] and [2,7,3].
        let m13 = model(
            13,
            vec![vi("x", &[2, 10, 3])],
            vec![i64_init("sp", &[2], &[3, 7])],
            vec![node("Split", &["x", "sp"], &["a", "b"], vec![int("axis", 1)])],
        );
        let r = infer(&m13);
        assert_eq!(shape(&r, "a"), &[2, 3, 3]);
        assert_eq!(shape(&r, "b"), &[2, 7, 3]);
        // Opset 11 takes `split` as an attribute: [4,6] → [2,4,3] and [2,6,3].
        let m11 = model(
            11,
            vec![vi("x", &[2, 10, 3])],
            vec![],
            vec![node("Split", &["x"], &["a", "b"], vec![int("axis", 1), ints("split", &[4, 6])])],
        );
        let r = infer(&m11);
        assert_eq!(shape(&r, "a"), &[2, 4, 3]);
        // Opset 18, num_outputs 3 on dim 10: parts of ceil(10/3) = 4, the last smaller: 4, 4, 2.
        let m18 = model(
            18,
            vec![vi("x", &[2, 10, 3])],
            vec![],
            vec![node("Split", &["x"], &["a", "b", "c"], vec![int("axis", 1), int("num_outputs", 3)])],
        );
        let r = infer(&m18);
        assert_eq!((shape(&r, "a"), shape(&r, "b"), shape(&r, "c")), (&[2, 4, 3][..], &[2, 4, 3][..], &[2, 2, 3][..]));
    }

    #[test]
    fn unknown_op_is_reported_and_the_rest_resolves() {
        // Relu keeps [1,3,8,8]; FooBar has no rule; Sigmoid after it has an unknown input;
        // Conv on x (W [4,3,1,1]) is independent → [1,4,8,8].
        let nodes = vec![
            node("Relu", &["x"], &["r"], vec![]),
            node("FooBar", &["r"], &["f"], vec![]),
            node("Sigmoid", &["f"], &["g"], vec![]),
            node("Conv", &["x", "w"], &["c"], vec![]),
        ];
        let m = model(13, vec![vi("x", &[1, 3, 8, 8])], vec![weight("w", &[4, 3, 1, 1])], nodes);
        let r = infer(&m);
        assert_eq!(shape(&r, "r"), &[1, 3, 8, 8]);
        assert_eq!(shape(&r, "c"), &[1, 4, 8, 8]);
        assert!(r.shape("f").is_none() && r.shape("g").is_none());
        let ops: Vec<&str> = r.unresolved.iter().map(|(_, op, _)| op.as_str()).collect();
        assert_eq!(ops, ["FooBar", "Sigmoid"]);
        assert_eq!(r.unresolved[0].0, "FooBar_f");
        assert!(r.unresolved[0].2.contains("no shape rule"), "{:?}", r.unresolved);
        assert!(r.unresolved[1].2.contains("'f'"), "{:?}", r.unresolved);
    }

    #[test]
    fn declared_static_shape_is_a_fallback() {
        // FooBar has no rule, but its output is declared [1,16] in value_info.
        let mut m = model(
            13,
            vec![vi("x", &[1, 3, 8, 8])],
            vec![],
            vec![node("FooBar", &["x"], &["f"], vec![]), node("Relu", &["f"], &["g"], vec![])],
        );
        m.graph.as_mut().unwrap().value_info.push(vi("f", &[1, 16]));
        let r = infer(&m);
        assert_eq!(shape(&r, "g"), &[1, 16]);
        assert!(r.unresolved.is_empty());
    }

    #[test]
    fn input_shapes_rank_mismatch_names_the_input() {
        let m = model(13, vec![vi("images", &[-1, 3, -1, -1])], vec![], vec![node("Relu", &["images"], &["y"], vec![])]);
        let given = HashMap::from([("images".to_string(), vec![3, 224, 224])]);
        let e = infer_shapes(&m, &given).unwrap_err().to_string();
        assert!(matches!(infer_shapes(&m, &given), Err(OnnxError::Graph { .. })));
        assert!(e.contains("'images'") && e.contains("rank 3") && e.contains("rank 4"), "{e}");
        let given = HashMap::from([("imgs".to_string(), vec![1, 3, 224, 224])]);
        let e = infer_shapes(&m, &given).unwrap_err().to_string();
        assert!(e.contains("'imgs'") && e.contains("not an input"), "{e}");
        // Without input_shapes, a symbolic dim leaves everything unknown (reported, not failed).
        let r = infer(&m);
        assert!(r.shape("images").is_none());
        assert_eq!(r.unresolved.len(), 1);
    }

    #[test]
    fn initializers_are_not_inputs_for_input_shapes() {
        let mut m = model(13, vec![vi("x", &[1, 2])], vec![weight("w", &[2, 2])], vec![node("MatMul", &["x", "w"], &["y"], vec![])]);
        m.graph.as_mut().unwrap().input.push(vi("w", &[2, 2]));
        let given = HashMap::from([("w".to_string(), vec![2, 2])]);
        assert!(infer_shapes(&m, &given).is_err());
        assert_eq!(shape(&infer(&m), "y"), &[1, 2]);
    }

    #[test]
    fn slice_negative_indices_clamping_and_steps() {
        // X [10, 8]: axis 0 starts -3 ends INT64_MAX → 7..10 (3 rows); axis 1 start 6, end -9
        // (→ -1 → clamped to -1), step -2 → 6, 4, 2, 0 (4 columns).
        let nodes = vec![node("Slice", &["x", "st", "en", "ax", "sp"], &["y"], vec![])];
        let inits = vec![
            i64_init("st", &[2], &[-3, 6]),
            i64_init("en", &[2], &[i64::MAX, -9]),
            i64_init("ax", &[2], &[0, -1]),
            i64_init("sp", &[2], &[1, -2]),
        ];
        let r = infer(&model(13, vec![vi("x", &[10, 8])], inits, nodes));
        assert_eq!(shape(&r, "y"), &[3, 4]);
        // Opset 9 attributes: starts [1], ends [1000] on axis 0 of a known [5] value → [20,30,40,50].
        let nodes = vec![node("Slice", &["k"], &["y"], vec![ints("starts", &[1]), ints("ends", &[1000])])];
        let r = infer(&model(9, vec![], vec![i64_init("k", &[5], &[10, 20, 30, 40, 50])], nodes));
        assert_eq!(r.value("y"), Some(&KnownValue::Ints(vec![20, 30, 40, 50])));
    }

    #[test]
    fn integer_div_truncates_and_mod_follows_fmod() {
        // ONNX Div on integers truncates: [7, -7] / 2 = [3, -3] (numpy's // would give -4).
        // Mod (fmod 0) = a - floor(a/b)·b, sign of the divisor: 7 mod 3 = 1, -7 - (-3)·3 = 2.
        // Mod with fmod 1 keeps the sign of the dividend: -7 fmod 3 = -1.
        let nodes = vec![
            node("Div", &["a", "b"], &["q"], vec![]),
            node("Mod", &["a", "c"], &["m"], vec![]),
            node("Mod", &["a", "c"], &["fm"], vec![int("fmod", 1)]),
        ];
        let inits = vec![i64_init("a", &[2], &[7, -7]), i64_init("b", &[], &[2]), i64_init("c", &[1], &[3])];
        let r = infer(&model(13, vec![], inits, nodes));
        assert_eq!(r.value("q"), Some(&KnownValue::Ints(vec![3, -3])));
        assert_eq!(r.value("m"), Some(&KnownValue::Ints(vec![1, 2])));
        assert_eq!(r.value("fm"), Some(&KnownValue::Ints(vec![1, -1])));
    }

    #[test]
    fn squeeze_unsqueeze_follow_the_opset() {
        // Opset 11: axes attribute. [1,3,1,5] squeeze [0] → [3,1,5]; unsqueeze [0,-1] of [3,1,5] →
        // output rank 5, axes {0,4} → [1,3,1,5,1].
        let nodes = vec![
            node("Squeeze", &["x"], &["s"], vec![ints("axes", &[0])]),
            node("Unsqueeze", &["s"], &["u"], vec![ints("axes", &[0, -1])]),
            node("Squeeze", &["x"], &["all"], vec![]),
        ];
        let r = infer(&model(11, vec![vi("x", &[1, 3, 1, 5])], vec![], nodes));
        assert_eq!(shape(&r, "s"), &[3, 1, 5]);
        assert_eq!(shape(&r, "u"), &[1, 3, 1, 5, 1]);
        // No axes: every 1 is removed → [3, 5].
        assert_eq!(shape(&r, "all"), &[3, 5]);
        // Opset 13: axes are input 1; an attribute is not read, so squeeze-all applies.
        let nodes = vec![node("Squeeze", &["x", "ax"], &["s"], vec![]), node("Squeeze", &["x"], &["t"], vec![ints("axes", &[0])])];
        let r = infer(&model(13, vec![vi("x", &[1, 3, 1, 5])], vec![i64_init("ax", &[1], &[2])], nodes));
        assert_eq!(shape(&r, "s"), &[1, 3, 5]);
        assert_eq!(shape(&r, "t"), &[3, 5]);
    }

    #[test]
    fn reduce_pad_flatten_transpose_depth_to_space() {
        let nodes = vec![
            // ReduceMean opset 13: axes attribute [2,3], keepdims 1 → [2,3,1,1]; keepdims 0 → [2,3].
            node("ReduceMean", &["x"], &["m"], vec![ints("axes", &[2, 3])]),
            node("ReduceMean", &["x"], &["m0"], vec![ints("axes", &[-1, -2]), int("keepdims", 0)]),
            // ReduceSum opset 13 takes axes from input 1: [1] → [2,1,4,6].
            node("ReduceSum", &["x", "ax1"], &["s"], vec![]),
            // Pad opset 13, pads input [0,0,1,2, 0,0,3,4] → [2, 3, 4+1+3, 6+2+4] = [2,3,8,12].
            node("Pad", &["x", "pads"], &["p"], vec![]),
            // Flatten axis 2: [2·3, 4·6] = [6, 24].
            node("Flatten", &["x"], &["f"], vec![int("axis", 2)]),
            // Transpose perm [0,2,3,1] → [2,4,6,3]; default perm reverses → [6,4,3,2].
            node("Transpose", &["x"], &["t"], vec![ints("perm", &[0, 2, 3, 1])]),
            node("Transpose", &["x"], &["tr"], vec![]),
            // DepthToSpace blocksize 2 on [2,12,4,6] → [2, 12/4, 8, 12] = [2,3,8,12].
            node("DepthToSpace", &["d"], &["ds"], vec![int("blocksize", 2)]),
        ];
        let inits = vec![i64_init("ax1", &[1], &[1]), i64_init("pads", &[8], &[0, 0, 1, 2, 0, 0, 3, 4])];
        let r = infer(&model(13, vec![vi("x", &[2, 3, 4, 6]), vi("d", &[2, 12, 4, 6])], inits, nodes));
        assert_eq!(shape(&r, "m"), &[2, 3, 1, 1]);
        assert_eq!(shape(&r, "m0"), &[2, 3]);
        assert_eq!(shape(&r, "s"), &[2, 1, 4, 6]);
        assert_eq!(shape(&r, "p"), &[2, 3, 8, 12]);
        assert_eq!(shape(&r, "f"), &[6, 24]);
        assert_eq!(shape(&r, "t"), &[2, 4, 6, 3]);
        assert_eq!(shape(&r, "tr"), &[6, 4, 3, 2]);
        assert_eq!(shape(&r, "ds"), &[2, 3, 8, 12]);
    }

    #[test]
    fn constant_range_constant_of_shape_expand_where() {
        let value_ints = AttributeProto {
            name: Some("value_ints".into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: vec![2, 3],
            ..Default::default()
        };
        let nodes = vec![
            // Constant value_ints [2,3] → shape [2].
            node("Constant", &[], &["c"], vec![value_ints]),
            // ConstantOfShape([2,3]) → [2,3] of FLOAT 0.
            node("ConstantOfShape", &["c"], &["zeros"], vec![]),
            // Range(10, 4, -2): max(ceil((4-10)/-2), 0) = 3 elements: 10, 8, 6.
            node("Range", &["ten", "four", "mtwo"], &["r"], vec![]),
            // Expand [3,1] to [2,1,4]: broadcast → [2,3,4].
            node("Expand", &["col", "eshape"], &["e"], vec![]),
            // Equal(c, [2,2]) = [1,0]; Where(eq, c, [9,9]) = [2,9].
            node("Equal", &["c", "twos"], &["eq"], vec![]),
            node("Where", &["eq", "c", "nines"], &["w"], vec![]),
        ];
        let inits = vec![
            i64_init("ten", &[], &[10]),
            i64_init("four", &[], &[4]),
            i64_init("mtwo", &[], &[-2]),
            i64_init("eshape", &[3], &[2, 1, 4]),
            i64_init("twos", &[2], &[2, 2]),
            i64_init("nines", &[2], &[9, 9]),
        ];
        let r = infer(&model(13, vec![vi("col", &[3, 1])], inits, nodes));
        assert_eq!(r.value("c"), Some(&KnownValue::Ints(vec![2, 3])));
        assert_eq!(shape(&r, "zeros"), &[2, 3]);
        assert_eq!(r.dtypes["zeros"], FLOAT);
        assert_eq!(r.value("r"), Some(&KnownValue::Ints(vec![10, 8, 6])));
        assert_eq!(shape(&r, "e"), &[2, 3, 4]);
        assert_eq!(r.value("eq"), Some(&KnownValue::Ints(vec![1, 0])));
        assert_eq!(r.dtypes["eq"], BOOL);
        assert_eq!(r.value("w"), Some(&KnownValue::Ints(vec![2, 9])));
    }

    #[test]
    fn upsample_forms_and_ascend_ops() {
        // Opset 8 scales attribute [1,1,2,3] on [1,2,5,5] → floor(5·2), floor(5·3) = [1,2,10,15].
        let nodes = vec![
            node("Upsample", &["x"], &["u"], vec![floats("scales", &[1.0, 1.0, 2.0, 3.0])]),
            node("AscendQuant", &["x"], &["q"], vec![string("dst_type", "INT8")]),
            node("AscendDequant", &["q", "deq"], &["dq"], vec![int("dtype", 1)]),
        ];
        let r = infer(&model(8, vec![vi("x", &[1, 2, 5, 5])], vec![weight("deq", &[2])], nodes));
        assert_eq!(shape(&r, "u"), &[1, 2, 10, 15]);
        assert_eq!(shape(&r, "dq"), &[1, 2, 5, 5]);
        assert_eq!((r.dtypes["q"], r.dtypes["dq"]), (INT8, FLOAT16));
        // Opset 9 scales input [1,1,1.5,1.5] → floor(5·1.5) = 7.
        let nodes = vec![node("Upsample", &["x", "sc"], &["u"], vec![])];
        let r = infer(&model(9, vec![vi("x", &[1, 2, 5, 5])], vec![f32_init("sc", &[4], &[1.0, 1.0, 1.5, 1.5])], nodes));
        assert_eq!(shape(&r, "u"), &[1, 2, 7, 7]);
    }

    #[test]
    fn large_values_are_not_tracked() {
        // [100, 100] = 10000 elements > MAX_KNOWN_ELEMENTS: shape known, value dropped.
        let nodes = vec![node("ConstantOfShape", &["s"], &["big"], vec![])];
        let r = infer(&model(13, vec![], vec![i64_init("s", &[2], &[100, 100])], nodes));
        assert_eq!(shape(&r, "big"), &[100, 100]);
        assert!(r.value("big").is_none());
    }

    #[test]
    fn cycle_is_an_error() {
        let nodes = vec![node("Relu", &["b"], &["a"], vec![]), node("Relu", &["a"], &["b"], vec![])];
        let e = infer_shapes(&model(13, vec![], vec![], nodes), &HashMap::new()).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }
}

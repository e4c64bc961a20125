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
//!
//! This file holds the walk, the per-node context (`Ctx`), the dispatcher on op type and
//! the helpers every rule shares; the rules themselves sit in one file per op family, named
//! like the engine's `engine/ops/` files (`conv`, `pool`, `binary`, `reduce`, ...; the
//! engine's `ops/shape/` files appear here as `shape`, `cast`, `copy` and `gather`), so a new
//! op's shape rule goes next to its kind.

use std::collections::{BTreeSet, HashMap};

use half::{bf16, f16};

use super::attr::NodeExt;
use super::error::{OnnxError, Result};
use super::graph::Graph;
use super::proto::tensor_shape_proto::dimension;
use super::proto::{ModelProto, NodeProto, TensorProto, ValueInfoProto, type_proto};
use super::tensor::{DataType, Tensor, TensorData};
use super::window::WindowError;

mod activation;
mod binary;
mod cast;
mod conv;
mod copy;
mod gather;
mod matmul;
mod norm;
mod pool;
mod quant;
mod reduce;
mod resize;
mod shape;

use activation::{dropout, is_unary, unary};
use binary::{elementwise, where_op};
use cast::cast;
use conv::{conv, conv_transpose};
use copy::{concat, depth_space, expand, pad, slice, split, tile, transpose};
use gather::{gather, gather_nd, range};
use matmul::{gemm, matmul};
use norm::{batch_norm, layer_norm};
use pool::{global_pool, pool};
use quant::{ascend_quant, qdq};
use reduce::{arg_reduce, reduce, topk};
use resize::{resize, upsample};
use shape::{constant, constant_of_shape, flatten, reshape, shape_op, size_op, squeeze, unsqueeze};

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

impl From<WindowError> for Unresolved {
    fn from(e: WindowError) -> Self {
        Unresolved(e.0)
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

/// Output 0 has the shape of input 0 and the given type.
fn same_shape(cx: &Ctx, dtype: Option<i32>) -> Infer<Outs> {
    same_shape_as(cx, 0, dtype)
}

/// Output 0 has the shape of input `i` and the given type.
fn same_shape_as(cx: &Ctx, i: usize, dtype: Option<i32>) -> Infer<Outs> {
    outs(vec![Out::new(cx.shape(i)?.to_vec(), dtype)])
}

/// Index lists selecting everything on each axis except `axis`, which gets `list`.
fn axis_lists(shape: &[i64], axis: usize, list: Vec<usize>) -> Vec<Vec<usize>> {
    let mut lists: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d as usize).collect()).collect();
    lists[axis] = list;
    lists
}

#[cfg(test)]
mod tests;

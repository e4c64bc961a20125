//! Simulated OM files: the real container layout (docs/ascend-formats.md §12: IMOD header, new-layout partition
//! table) carrying a `ge.proto.ModelDef` that describes the model interface the way ATC
//! does (Data ops, a NetOutput op) and, as WEIGHTS_DATA, the ONNX model itself. Model
//! attributes mark the file as simulated, so no tool mistakes it for a device model; the
//! ACL simulator (`ffi/acl-sim`) executes it with our engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use super::error::OmError;
use super::header::{HEADER_SIZE, OM_MAGIC};
use super::info::{attr_str, decode_model_def, parse_container, payload as info_payload};
use super::partition::PartitionKind;
use super::proto::{AttrDef, DataType as GeType, GraphDef, ModelDef, OpDef, ShapeDef, TensorDescriptor, attr_def};
use crate::device::aipp::{AippConfig, InputFormat};
use crate::engine::{Session, Tensor};
use crate::onnx::proto::ModelProto;
use crate::onnx::shapes::infer_shapes;
use crate::onnx::{DataType, Graph, load_model};

/// Model attribute (bool true) that marks a simulated OM.
pub const SIMULATED_ATTR: &str = "ascend_ptq_simulated";
/// `platform_version` in the header of every simulated OM.
pub const SIM_PLATFORM_VERSION: &str = "ascend-ptq-sim";
/// OM header `version` field written by current GE.
const OM_VERSION: u32 = 0x2000_0000;
/// WEIGHTS_DATA partition type: here, the ONNX model bytes.
const WEIGHTS_DATA: u32 = 1;

/// How the simulator computes a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimPrecision {
    /// The deploy model: AscendQuant / int8 layers / AscendDequant executed by the engine.
    Int8,
    /// The fp32 model with every op output rounded to fp16 (ATC's default precision).
    Fp16,
}

impl SimPrecision {
    pub fn name(self) -> &'static str {
        match self {
            SimPrecision::Int8 => "int8",
            SimPrecision::Fp16 => "fp16",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "int8" => Some(SimPrecision::Int8),
            "fp16" => Some(SimPrecision::Fp16),
            _ => None,
        }
    }
}

/// What `ascend-ptq build --simulate` asks for.
pub struct SimulatedBuild<'a> {
    pub onnx_path: &'a Path,
    pub precision: SimPrecision,
    /// Fixes dynamic input dimensions (names must be graph inputs).
    pub input_shapes: &'a HashMap<String, Vec<i64>>,
    pub soc_version: &'a str,
    /// Static AIPP on model input 0 (`related_input_rank` 0).
    pub aipp: Option<&'a AippConfig>,
    /// ATC `--output_type=FP16`: float outputs are delivered as fp16.
    pub output_type_fp16: bool,
    /// The command that produced the OM (model attr `atc_cmdline`).
    pub cmdline: String,
}

/// One model input or output as the ACL model description reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimTensorDesc {
    pub name: String,
    /// Element type in ONNX numbering (what the engine uses).
    #[serde(serialize_with = "dtype_name")]
    pub dtype: DataType,
    pub dims: Vec<i64>,
    /// "NCHW", "NHWC" or "ND".
    pub format: String,
    /// Exact buffer size in bytes.
    pub size_bytes: usize,
}

fn dtype_name<S: serde::Serializer>(dt: &DataType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(dt.as_str_name())
}

/// A model input: what the host feeds, and the ONNX input it becomes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimInput {
    pub desc: SimTensorDesc,
    /// Shape of the ONNX graph input (differs from `desc.dims` with static AIPP).
    pub model_shape: Vec<i64>,
    /// The host feeds a uint8 frame that static AIPP turns into the float input.
    pub static_aipp: bool,
}

/// Everything the simulator needs from a simulated OM.
#[derive(Debug, Clone)]
pub struct SimulatedModel {
    pub name: String,
    pub precision: SimPrecision,
    /// The ONNX model (self-contained: external data was inlined when the OM was written).
    pub onnx: Vec<u8>,
    pub soc_version: String,
    /// The static AIPP block (`AippConfig::to_text`), applied to input 0.
    pub aipp_text: Option<String>,
    pub output_type_fp16: bool,
    /// ascend-ptq version that wrote the file.
    pub version: String,
    pub cmdline: String,
    pub inputs: Vec<SimInput>,
    pub outputs: Vec<SimTensorDesc>,
}

impl SimulatedModel {
    /// The ONNX input shapes to plan the engine session with.
    pub fn input_shapes(&self) -> HashMap<String, Vec<i64>> {
        self.inputs.iter().map(|i| (i.desc.name.clone(), i.model_shape.clone())).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Writes a simulated OM (atomically). The ONNX model must be runnable by our engine with
/// every input shape fixed; `precision` must fit it (int8 needs AscendQuant ops, fp16 the
/// float model without them).
pub fn write_simulated_om(out: &Path, b: &SimulatedBuild) -> Result<(), OmError> {
    let bytes = simulated_om_bytes(out, b)?;
    crate::onnx::io::write_atomically(out, &bytes).map_err(|e| OmError::Write { path: out.to_path_buf(), detail: e.to_string() })
}

/// The bytes [`write_simulated_om`] writes; `out` names the model (its file stem).
pub fn simulated_om_bytes(out: &Path, b: &SimulatedBuild) -> Result<Vec<u8>, OmError> {
    let err = |detail: String| OmError::SimulateBuild { path: b.onnx_path.to_path_buf(), detail };
    let model = load_model(b.onnx_path).map_err(|e| err(format!("cannot load the ONNX model: {e}")))?;
    check_precision(&model, b.precision).map_err(&err)?;
    let session = Session::new(&model, b.input_shapes).map_err(|e| err(format!("the engine cannot run this model: {e}")))?;
    let (inputs, outputs) = interface(&model, &session, b).map_err(&err)?;

    let name = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let def = model_def(&name, &inputs, &outputs, b);
    let partitions = [(PartitionKind::MODEL_DEF.0, def.encode_to_vec()), (WEIGHTS_DATA, model.encode_to_vec())];
    Ok(om_container_bytes(&name, &partitions))
}

fn check_precision(model: &ModelProto, precision: SimPrecision) -> Result<(), String> {
    let nodes = model.graph.as_ref().map(|g| g.node.as_slice()).unwrap_or_default();
    let quant = nodes.iter().filter(|n| n.op_type() == "AscendQuant").count();
    match (precision, quant) {
        (SimPrecision::Int8, 0) => {
            Err("precision int8 needs the deploy model (AscendQuant/AscendDequant ops), this model has no AscendQuant".into())
        }
        (SimPrecision::Fp16, n) if n > 0 => {
            Err(format!("precision fp16 needs the float model, this one is a deploy model ({n} AscendQuant ops)"))
        }
        _ => Ok(()),
    }
}

/// Input and output descriptions: shapes fixed / inferred, AIPP input replaced by the frame.
fn interface(model: &ModelProto, session: &Session, b: &SimulatedBuild) -> Result<(Vec<SimInput>, Vec<SimTensorDesc>), String> {
    let graph_proto = model.graph.as_ref().ok_or("the model has no graph")?;
    let graph = Graph::new(graph_proto).map_err(|e| e.to_string())?;
    let inferred = infer_shapes(model, b.input_shapes).map_err(|e| e.to_string())?;

    let mut inputs = Vec::new();
    for (i, spec) in session.inputs().enumerate() {
        let model_shape = inferred
            .shape(&spec.name)
            .filter(|s| s.iter().all(|&d| d > 0))
            .ok_or_else(|| format!("input '{}' has dynamic dimensions; fix them with --input_shape", spec.name))?
            .to_vec();
        let aipp = b.aipp.filter(|_| i == 0);
        let desc = match aipp {
            Some(cfg) => aipp_frame_desc(&spec.name, spec.dtype, &model_shape, cfg)?,
            None => tensor_desc(&spec.name, spec.dtype, &model_shape)?,
        };
        inputs.push(SimInput { desc, model_shape, static_aipp: aipp.is_some() });
    }
    if b.aipp.is_some() && inputs.is_empty() {
        return Err("static AIPP needs a model input, the model has none".into());
    }

    let names: Vec<&str> = graph.outputs().iter().map(|o| o.name()).collect();
    let known = names.iter().all(|n| inferred.shape(n).is_some() && inferred.dtypes.contains_key(*n));
    // Shape inference resolves almost every model; otherwise run once on zeros to learn them.
    let probed = if known { None } else { Some(probe_outputs(session, &inputs)?) };
    let mut outputs = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let (dtype, shape) = match &probed {
            Some(p) => (p[k].1.dtype(), p[k].1.shape().iter().map(|&d| d as i64).collect()),
            None => {
                let dt = DataType::try_from(inferred.dtypes[*name]).unwrap_or(DataType::Undefined);
                (dt, inferred.shape(name).unwrap_or_default().to_vec())
            }
        };
        let dtype = if b.output_type_fp16 && matches!(dtype, DataType::Float | DataType::Double) { DataType::Float16 } else { dtype };
        outputs.push(tensor_desc(name, dtype, &shape)?);
    }
    Ok((inputs, outputs))
}

fn probe_outputs(session: &Session, inputs: &[SimInput]) -> Result<Vec<(String, Tensor)>, String> {
    let mut feed = HashMap::new();
    for (spec, input) in session.inputs().zip(inputs) {
        let shape: Vec<usize> = input.model_shape.iter().map(|&d| d as usize).collect();
        let size = shape.iter().product::<usize>() * element_size(spec.dtype).unwrap_or(0);
        let t = Tensor::from_le_bytes(spec.dtype, &shape, &vec![0u8; size], &spec.name).map_err(|e| e.to_string())?;
        feed.insert(spec.name.clone(), t);
    }
    session
        .run(feed)
        .map_err(|e| format!("cannot determine the output shapes (shape inference was incomplete and a trial run failed: {e})"))
}

/// Bytes per element of the types a model interface can carry.
pub fn element_size(dt: DataType) -> Option<usize> {
    Some(match dt {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Float16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        _ => return None,
    })
}

fn tensor_desc(name: &str, dtype: DataType, dims: &[i64]) -> Result<SimTensorDesc, String> {
    let size = element_size(dtype)
        .ok_or_else(|| format!("tensor '{name}' has element type {}, not supported in an OM interface", dtype.as_str_name()))?;
    let format = if dims.len() == 4 { "NCHW" } else { "ND" };
    let count: i64 = dims.iter().product();
    Ok(SimTensorDesc {
        name: name.to_string(),
        dtype,
        dims: dims.to_vec(),
        format: format.into(),
        size_bytes: count.max(0) as usize * size,
    })
}

/// The uint8 frame the host feeds to an input with static AIPP (formats §10.3 "Effect on the
/// model interface"): RGB888_U8 → [N, H, W, 3], YUV400_U8 → [N, H, W, 1], YUV420SP_U8 →
/// [N, H·3/2, W, 1] (the Y plane then the interleaved UV rows), all NHWC, size N·H·W·{3, 1, 1.5}.
fn aipp_frame_desc(name: &str, dtype: DataType, model_shape: &[i64], cfg: &AippConfig) -> Result<SimTensorDesc, String> {
    let channels = cfg.mean_chn.len() as i64;
    let (w, h) = cfg.crop.map(|c| (c.width, c.height)).unwrap_or((cfg.src_width, cfg.src_height));
    let want = |n: i64| vec![n, channels, h as i64, w as i64];
    let ok_shape = model_shape.len() == 4 && model_shape[1..] == want(0)[1..];
    if !ok_shape || !matches!(dtype, DataType::Float | DataType::Float16) {
        return Err(format!(
            "static AIPP applies to input 0 '{name}', which must be float [N, {channels}, {h}, {w}] (the AIPP output), but it is {} {model_shape:?}",
            dtype.as_str_name().to_ascii_lowercase()
        ));
    }
    let n = model_shape[0];
    let (sw, sh) = (cfg.src_width as i64, cfg.src_height as i64);
    let dims = match cfg.input_format {
        InputFormat::Rgb888U8 => vec![n, sh, sw, 3],
        InputFormat::Yuv400U8 => vec![n, sh, sw, 1],
        InputFormat::Yuv420SpU8 => vec![n, sh * 3 / 2, sw, 1],
    };
    let size = dims.iter().product::<i64>() as usize;
    Ok(SimTensorDesc { name: name.to_string(), dtype: DataType::Uint8, dims, format: "NHWC".into(), size_bytes: size })
}

fn onnx_to_ge(dt: DataType) -> GeType {
    match dt {
        DataType::Float => GeType::DtFloat,
        DataType::Float16 => GeType::DtFloat16,
        DataType::Int8 => GeType::DtInt8,
        DataType::Uint8 => GeType::DtUint8,
        DataType::Int16 => GeType::DtInt16,
        DataType::Uint16 => GeType::DtUint16,
        DataType::Int32 => GeType::DtInt32,
        DataType::Int64 => GeType::DtInt64,
        DataType::Uint32 => GeType::DtUint32,
        DataType::Uint64 => GeType::DtUint64,
        DataType::Bool => GeType::DtBool,
        DataType::Double => GeType::DtDouble,
        _ => GeType::DtUndefined,
    }
}

fn ge_to_onnx(dt: i32) -> Option<DataType> {
    Some(match GeType::try_from(dt).ok()? {
        GeType::DtFloat => DataType::Float,
        GeType::DtFloat16 => DataType::Float16,
        GeType::DtInt8 => DataType::Int8,
        GeType::DtUint8 => DataType::Uint8,
        GeType::DtInt16 => DataType::Int16,
        GeType::DtUint16 => DataType::Uint16,
        GeType::DtInt32 => DataType::Int32,
        GeType::DtInt64 => DataType::Int64,
        GeType::DtUint32 => DataType::Uint32,
        GeType::DtUint64 => DataType::Uint64,
        GeType::DtBool => DataType::Bool,
        GeType::DtDouble => DataType::Double,
        _ => return None,
    })
}

fn ge_desc(d: &SimTensorDesc) -> TensorDescriptor {
    TensorDescriptor {
        name: d.name.clone(),
        dtype: onnx_to_ge(d.dtype) as i32,
        shape: Some(ShapeDef { dim: d.dims.clone() }),
        layout: d.format.clone(),
        size: d.size_bytes as i64,
        ..Default::default()
    }
}

fn attr(value: attr_def::Value) -> AttrDef {
    AttrDef { value: Some(value) }
}

fn s_attr(s: &str) -> AttrDef {
    attr(attr_def::Value::S(s.as_bytes().to_vec()))
}

fn ints_attr(v: &[i64]) -> AttrDef {
    attr(attr_def::Value::List(attr_def::ListValue {
        i: v.to_vec(),
        val_type: attr_def::list_value::ListValueType::VtListInt as i32,
        ..Default::default()
    }))
}

fn model_def(name: &str, inputs: &[SimInput], outputs: &[SimTensorDesc], b: &SimulatedBuild) -> ModelDef {
    let mut ops = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let mut attrs = HashMap::from([("index".to_string(), attr(attr_def::Value::I(i as i64)))]);
        // Real Data ops carry the framework shape too; with AIPP it is the model's float input.
        attrs.insert("origin_shape".into(), ints_attr(&input.model_shape));
        attrs.insert("origin_format".into(), s_attr(if input.model_shape.len() == 4 { "NCHW" } else { "ND" }));
        ops.push(OpDef {
            name: input.desc.name.clone(),
            r#type: "Data".into(),
            attr: attrs,
            output_desc: vec![ge_desc(&input.desc)],
            ..Default::default()
        });
        if input.static_aipp {
            let model_desc = SimTensorDesc {
                dtype: DataType::Float16,
                dims: input.model_shape.clone(),
                format: "NCHW".into(),
                size_bytes: input.model_shape.iter().product::<i64>() as usize * 2,
                ..input.desc.clone()
            };
            ops.push(OpDef {
                name: format!("aipp_{}", input.desc.name),
                r#type: "Aipp".into(),
                input: vec![format!("{}:0", input.desc.name)],
                input_desc: vec![ge_desc(&input.desc)],
                output_desc: vec![ge_desc(&model_desc)],
                ..Default::default()
            });
        }
    }
    ops.push(OpDef {
        name: "Node_Output".into(),
        r#type: "NetOutput".into(),
        input_desc: outputs.iter().map(ge_desc).collect(),
        ..Default::default()
    });
    let mut attrs: HashMap<String, AttrDef> = [
        ("soc_version", b.soc_version),
        ("framework_type", "Onnx"),
        ("atc_cmdline", b.cmdline.as_str()),
        ("ascend_ptq_precision", b.precision.name()),
        ("ascend_ptq_output_type", if b.output_type_fp16 { "FP16" } else { "FP32" }),
        ("ascend_ptq_version", crate::VERSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), s_attr(v)))
    .collect();
    attrs.insert(SIMULATED_ATTR.into(), attr(attr_def::Value::B(true)));
    if let Some(cfg) = b.aipp {
        attrs.insert("ascend_ptq_aipp".into(), s_attr(&cfg.to_text("(not recorded in simulated OMs)")));
    }
    ModelDef {
        name: name.to_string(),
        version: 2,
        custom_version: SIM_PLATFORM_VERSION.into(),
        graph: vec![GraphDef {
            name: name.to_string(),
            input: inputs.iter().map(|i| i.desc.name.clone()).collect(),
            output: outputs.iter().map(|o| o.name.clone()).collect(),
            op: ops,
            ..Default::default()
        }],
        attr: attrs,
    }
}

/// An OM container (header + new-layout partition table + payloads) around the given
/// (partition type, payload) list, with model_num 1 and platform_version "ascend-ptq-sim".
pub fn om_container_bytes(name: &str, partitions: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut table = Vec::new();
    table.extend((partitions.len() as u32).to_le_bytes());
    table.extend([0u8; 4]);
    let mut offset = 0u64;
    for (kind, payload) in partitions {
        table.extend(kind.to_le_bytes());
        table.extend([0u8; 4]);
        table.extend(offset.to_le_bytes());
        table.extend((payload.len() as u64).to_le_bytes());
        offset += payload.len() as u64;
    }
    let body_len = table.len() as u64 + offset;

    let mut h = vec![0u8; HEADER_SIZE];
    h[0..4].copy_from_slice(&OM_MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    h[8..12].copy_from_slice(&OM_VERSION.to_le_bytes());
    // A 32-bit field: saturates for > 4 GB bodies, which loaders reject anyway.
    h[76..80].copy_from_slice(&u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes());
    let name_bytes = &name.as_bytes()[..name.len().min(31)];
    h[84..84 + name_bytes.len()].copy_from_slice(name_bytes);
    h[156..160].copy_from_slice(&1u32.to_le_bytes());
    h[160..160 + SIM_PLATFORM_VERSION.len()].copy_from_slice(SIM_PLATFORM_VERSION.as_bytes());
    h[184..192].copy_from_slice(&body_len.to_le_bytes());

    let mut out = h;
    out.extend(table);
    for (_, payload) in partitions {
        out.extend_from_slice(payload);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Whether a decoded ModelDef carries the simulated marker.
pub fn is_simulated(def: &ModelDef) -> bool {
    matches!(def.attr.get(SIMULATED_ATTR).and_then(|a| a.value.as_ref()), Some(attr_def::Value::B(true)))
}

/// Reads a simulated OM (the file's bytes; `path` names it in errors). A real OM is refused
/// with [`OmError::NotSimulated`].
pub fn read_simulated_om(path: &Path, bytes: &[u8]) -> Result<SimulatedModel, OmError> {
    let (_, _, partitions) = parse_container(path, bytes)?;
    let bad = |detail: String| OmError::BadSimulated { path: path.to_path_buf(), detail };
    let payload = |kind: u32| partitions.iter().find(|p| p.model == 0 && p.kind == kind).map(|p| info_payload(bytes, p));
    // The same ModelDef lookup as om-info: a real OM of any CANN layout gets this far and is
    // then refused as not simulated.
    let def = decode_model_def(path, bytes, &partitions, 0)?.ok_or(OmError::NoModelDef { path: path.to_path_buf(), model: 0 })?;
    if !is_simulated(&def) {
        return Err(OmError::NotSimulated { path: path.to_path_buf() });
    }
    let text = |key: &str| attr_str(&def.attr, key).ok_or_else(|| bad(format!("model attribute '{key}' is missing")));
    let precision_name = text("ascend_ptq_precision")?;
    let precision = SimPrecision::from_name(&precision_name)
        .ok_or_else(|| bad(format!("ascend_ptq_precision is '{precision_name}', expected int8 or fp16")))?;
    let onnx = payload(WEIGHTS_DATA).ok_or_else(|| bad("no WEIGHTS_DATA partition (the ONNX model)".into()))?.to_vec();
    let graph = def.graph.first().ok_or_else(|| bad("the ModelDef has no graph".into()))?;

    let mut inputs = Vec::new();
    let mut data_ops: Vec<&OpDef> = graph.op.iter().filter(|op| op.r#type == "Data").collect();
    data_ops.sort_by_key(|op| match op.attr.get("index").and_then(|a| a.value.as_ref()) {
        Some(attr_def::Value::I(i)) => *i,
        _ => i64::MAX,
    });
    let aipp_inputs: Vec<&str> =
        graph.op.iter().filter(|op| op.r#type == "Aipp").flat_map(|op| op.input.iter()).map(|s| s.trim_end_matches(":0")).collect();
    for op in data_ops {
        let d = op.output_desc.first().ok_or_else(|| bad(format!("Data op '{}' has no output descriptor", op.name)))?;
        let desc = sim_desc(d).map_err(&bad)?;
        let model_shape = match op.attr.get("origin_shape").and_then(|a| a.value.as_ref()) {
            Some(attr_def::Value::List(l)) => l.i.clone(),
            _ => return Err(bad(format!("Data op '{}' has no origin_shape attribute", op.name))),
        };
        inputs.push(SimInput { static_aipp: aipp_inputs.contains(&op.name.as_str()), desc, model_shape });
    }
    let outputs = graph
        .op
        .iter()
        .find(|op| op.r#type == "NetOutput")
        .ok_or_else(|| bad("the graph has no NetOutput op".into()))?
        .input_desc
        .iter()
        .map(sim_desc)
        .collect::<Result<Vec<_>, _>>()
        .map_err(&bad)?;
    let aipp_text = attr_str(&def.attr, "ascend_ptq_aipp");
    if aipp_text.is_some() != inputs.iter().any(|i| i.static_aipp) {
        return Err(bad("the AIPP config attribute and the graph's Aipp op disagree".into()));
    }
    Ok(SimulatedModel {
        name: def.name.clone(),
        precision,
        onnx,
        soc_version: attr_str(&def.attr, "soc_version").unwrap_or_default(),
        aipp_text,
        output_type_fp16: attr_str(&def.attr, "ascend_ptq_output_type").as_deref() == Some("FP16"),
        version: text("ascend_ptq_version")?,
        cmdline: attr_str(&def.attr, "atc_cmdline").unwrap_or_default(),
        inputs,
        outputs,
    })
}

/// Reads a simulated OM file.
pub fn read_simulated_om_file(path: &Path) -> Result<SimulatedModel, OmError> {
    let bytes = std::fs::read(path).map_err(|source| OmError::Io { path: PathBuf::from(path), source })?;
    read_simulated_om(path, &bytes)
}

fn sim_desc(d: &TensorDescriptor) -> Result<SimTensorDesc, String> {
    let dtype = ge_to_onnx(d.dtype).ok_or_else(|| format!("tensor '{}' has unsupported dtype {}", d.name, d.dtype))?;
    let dims = d.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default();
    let expected = tensor_desc(&d.name, dtype, &dims)?.size_bytes;
    // The AIPP frame's size is not elements × element size for YUV420SP: trust the field then.
    let size = if d.size > 0 { d.size as usize } else { expected };
    Ok(SimTensorDesc { name: d.name.clone(), dtype, dims, format: d.layout.clone(), size_bytes: size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_has_the_om_layout() {
        let bytes = om_container_bytes("net", &[(0, vec![1, 2, 3]), (1, vec![9; 10])]);
        assert_eq!(&bytes[..4], b"IMOD");
        assert_eq!(bytes.len(), 256 + 8 + 2 * 24 + 13);
        let (header, layout, parts) = parse_container(Path::new("x.om"), &bytes).unwrap();
        assert_eq!(layout, super::super::TableLayout::New);
        assert_eq!(header.name, "net");
        assert_eq!(header.platform_version, SIM_PLATFORM_VERSION);
        assert_eq!(header.model_length, Some(bytes.len() as u64 - 256));
        assert_eq!(parts.iter().map(|p| (p.kind, p.size)).collect::<Vec<_>>(), vec![(0, 3), (1, 10)]);
    }
}

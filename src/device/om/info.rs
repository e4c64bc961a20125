//! The summary `om-info` prints: header, partitions, and per model the facts read from its
//! `ge.proto.ModelDef` (inputs, outputs, AIPP, op histogram, quantization evidence).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use prost::Message;
use serde::Serialize;

use super::error::OmError;
use super::header::{HEADER_SIZE, HeaderProblem, OmHeader};
use super::inout::{InOutInfo, InOutTensor, ge_dtype_name, ge_format_name, parse_inout};
use super::partition::{Partition, PartitionKind, TableLayout, read_partitions};
use super::proto::{AttrDef, DataType, ModelDef, OpDef, TensorDescriptor, attr_def};
use super::simulated::is_simulated;

/// Everything `om-info` reports about one OM file.
#[derive(Debug, Clone, Serialize)]
pub struct OmInfo {
    pub file: String,
    pub file_size: u64,
    pub header: OmHeader,
    pub partition_layout: TableLayout,
    pub model_num: u32,
    pub partitions: Vec<Partition>,
    /// Set for OMs written by `ascend-ptq build --simulate` (they run only in the ACL
    /// simulator, never on a device); `null` in JSON for real OMs.
    pub simulated: Option<SimulatedInfo>,
    /// One entry per model block that has a MODEL_DEF partition (block 0 always does).
    pub models: Vec<ModelInfo>,
}

/// The marker attributes of a simulated OM (see [`super::simulated`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedInfo {
    /// "int8" (deploy model) or "fp16" (float model, fp16-rounded).
    pub precision: String,
    /// "FP32" or "FP16".
    pub output_type: String,
    /// ascend-ptq version that wrote the file.
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Model block index.
    pub index: usize,
    pub name: String,
    pub ir_version: u32,
    pub custom_version: String,
    pub graph_name: String,
    pub soc_version: Option<String>,
    /// Model attr `target_type` ("MINI" = an Ascend 310 target, §12.4); CANN 20.x files record
    /// only this, not `soc_version` (§12.5).
    pub target_type: Option<String>,
    pub framework_type: Option<String>,
    pub atc_cmdline: Option<String>,
    pub atc_version: Option<String>,
    pub opp_version: Option<String>,
    /// Where `inputs` and `outputs` come from.
    pub io_source: IoSource,
    /// Why the MODEL_INOUT_INFO partition was not used although present, or what was not read.
    pub io_note: Option<String>,
    /// Data (and AippData) ops of the main graph, in model input order (attr `index`).
    pub inputs: Vec<TensorInfo>,
    /// NetOutput's input descriptors, in output order.
    pub outputs: Vec<TensorInfo>,
    /// Model attr `attr_model_out_nodes_name` ("Gemm_353:0:output"), when present.
    pub output_nodes: Vec<String>,
    pub aipp: AippInfo,
    /// Op type → count over all graphs of the ModelDef.
    pub op_histogram: BTreeMap<String, usize>,
    pub quantization: QuantEvidence,
}

/// The source of a model's input and output descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IoSource {
    /// The MODEL_INOUT_INFO partition (CANN 6–8 files; §12.6).
    ModelInoutInfo,
    /// The ModelDef's Data / AippData ops and NetOutput's input descriptors (§12.4).
    ModelDef,
}

impl IoSource {
    pub fn describe(self) -> &'static str {
        match self {
            IoSource::ModelInoutInfo => "MODEL_INOUT_INFO partition",
            IoSource::ModelDef => "ModelDef (Data and NetOutput ops)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub op_type: String,
    /// Model input index (attr `index` of a Data op); None for outputs.
    pub index: Option<i64>,
    pub shape: Vec<i64>,
    pub dtype: String,
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AippInfo {
    /// A static AIPP op (type `Aipp`, from ATC --insert_op_conf) is in the graph.
    pub static_aipp: bool,
    /// Dynamic AIPP inputs (type `AippData` or an op named `ascend_dynamic_aipp_data`).
    pub dynamic_aipp: bool,
    pub ops: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantEvidence {
    /// AscendQuant/AscendDequant ops were found, or cube ops computing on int8 inputs.
    pub quantized: bool,
    pub quant_ops: Vec<QuantOp>,
    /// Cube ops (Conv2D, MatMul, …) whose first input is int8.
    pub int8_cube_ops: Vec<QuantOp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantOp {
    pub name: String,
    pub op_type: String,
    /// Source ONNX nodes fused into this op (`_datadump_original_op_names`).
    pub original_op_names: Vec<String>,
}

/// Header modeltype of flow models, and their partition types (§12.2, §12.5).
const MODEL_TYPE_FLOW: u8 = 3;
const FLOW_MODEL: u32 = 6;
const FLOW_SUBMODEL: u32 = 7;
const MODEL_INOUT_INFO: u32 = 8;

const CUBE_OPS: &[&str] = &[
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
    "Conv2DTransposeD",
    "MatMul",
    "MatMulV2",
    "BatchMatMul",
    "BatchMatMulV2",
    "FullyConnection",
];

/// Reads and summarizes an OM file.
pub fn om_info_file(path: &Path) -> Result<OmInfo, OmError> {
    let bytes = std::fs::read(path).map_err(|source| OmError::Io { path: path.to_path_buf(), source })?;
    om_info_from_bytes(path, &bytes)
}

/// Checks the header and finds the partitions: the container part shared by `om-info` and
/// the simulated-OM reader (docs/ascend-formats.md §12.1, §12.2, §12.5).
pub(crate) fn parse_container(path: &Path, bytes: &[u8]) -> Result<(OmHeader, TableLayout, Vec<Partition>), OmError> {
    let p = || path.to_path_buf();
    let header = OmHeader::parse(bytes).map_err(|problem| match problem {
        HeaderProblem::Empty => OmError::Empty { path: p() },
        HeaderProblem::BadMagic(m) => {
            let found = m.iter().take(bytes.len()).map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ");
            OmError::BadMagic { path: p(), found }
        }
        HeaderProblem::Truncated(len) => OmError::TruncatedHeader { path: p(), len },
        HeaderProblem::HeaderSize(found) => OmError::HeaderSize { path: p(), found },
    })?;
    let actual = (bytes.len() - HEADER_SIZE) as u64;
    let (declared, field) = header.body_length();
    if declared != actual {
        let hint = if declared == 0 {
            "neither the u32 length at 76 nor the u64 model_length at 184 is set"
        } else if actual < declared {
            "the file is truncated"
        } else {
            "extra bytes after the model, or a wrong length field"
        };
        return Err(OmError::LengthMismatch { path: p(), field, declared, actual, hint });
    }
    if header.is_encrypt != 0 {
        return Err(OmError::Encrypted { path: p(), flag: header.is_encrypt });
    }
    let (partition_layout, partitions) =
        read_partitions(bytes, HEADER_SIZE, header.model_count()).map_err(|(old, new)| OmError::PartitionTable { path: p(), old, new })?;
    Ok((header, partition_layout, partitions))
}

/// The payload of a partition found by [`parse_container`] (which checked it lies inside
/// `bytes`).
pub(crate) fn payload<'a>(bytes: &'a [u8], part: &Partition) -> &'a [u8] {
    &bytes[part.file_offset as usize..(part.file_offset + part.size) as usize]
}

/// Decodes the ModelDef of model block `index`. `Ok(None)` when the block has no MODEL_DEF
/// partition.
pub(crate) fn decode_model_def(path: &Path, bytes: &[u8], partitions: &[Partition], index: usize) -> Result<Option<ModelDef>, OmError> {
    let Some(part) = partitions.iter().find(|q| q.model == index && PartitionKind(q.kind) == PartitionKind::MODEL_DEF) else {
        return Ok(None);
    };
    ModelDef::decode(payload(bytes, part)).map(Some).map_err(|e| OmError::ModelDef {
        path: path.to_path_buf(),
        model: index,
        offset: part.file_offset,
        size: part.size,
        reason: e.to_string(),
    })
}

/// Summarizes OM bytes; `path` only names the file in errors and in the summary.
pub fn om_info_from_bytes(path: &Path, bytes: &[u8]) -> Result<OmInfo, OmError> {
    let p = || path.to_path_buf();
    let (header, partition_layout, partitions) = parse_container(path, bytes)?;
    let mut simulated = None;
    let flow = header.model_type == MODEL_TYPE_FLOW;

    let mut models = Vec::new();
    for index in 0..header.model_count() as usize {
        let Some(def) = decode_model_def(path, bytes, &partitions, index)? else {
            if index == 0 {
                return Err(OmError::NoModelDef { path: p(), model: index });
            }
            continue;
        };
        let block: Vec<&Partition> = partitions.iter().filter(|q| q.model == index).collect();
        let has_flow_parts = block.iter().any(|q| q.kind == FLOW_MODEL || q.kind == FLOW_SUBMODEL);
        // A flow model's ModelDef may describe no graph: its sub-models sit in the FLOW_*
        // partitions. Anywhere else an empty ModelDef is a corrupt file.
        if def.graph.is_empty() && !(flow || has_flow_parts) {
            let part = block.iter().find(|q| PartitionKind(q.kind) == PartitionKind::MODEL_DEF).expect("decoded above");
            return Err(OmError::ModelDef {
                path: p(),
                model: index,
                offset: part.file_offset,
                size: part.size,
                reason: "it decodes but contains no graph".into(),
            });
        }
        if index == 0 && is_simulated(&def) {
            simulated = Some(SimulatedInfo {
                precision: attr_str(&def.attr, "ascend_ptq_precision").unwrap_or_default(),
                output_type: attr_str(&def.attr, "ascend_ptq_output_type").unwrap_or_default(),
                version: attr_str(&def.attr, "ascend_ptq_version").unwrap_or_default(),
            });
        }
        let mut model = summarize_model(index, &def);
        if let Some(part) = block.iter().find(|q| q.kind == MODEL_INOUT_INFO) {
            match parse_inout(payload(bytes, part)) {
                Ok(io) => apply_inout(&mut model, &def, &io),
                Err(reason) => {
                    model.io_note = Some(format!(
                        "the MODEL_INOUT_INFO partition ({} bytes at offset {}) could not be read ({reason}); inputs and outputs are from the ModelDef",
                        part.size, part.file_offset
                    ))
                }
            }
        } else if def.graph.is_empty() {
            model.io_note =
                Some("flow model: its sub-models are in the FLOW_MODEL / FLOW_SUBMODEL partitions, which are listed, not read".into());
        }
        models.push(model);
    }
    Ok(OmInfo {
        file: path.display().to_string(),
        file_size: bytes.len() as u64,
        partition_layout,
        model_num: header.model_count(),
        header,
        partitions,
        simulated,
        models,
    })
}

/// Replaces the ModelDef's view of the inputs and outputs with MODEL_INOUT_INFO's (what the
/// runtime reports through aclmdlGetInputDims etc.). Op types come from the graph when a Data
/// op of the same name is there.
fn apply_inout(model: &mut ModelInfo, def: &ModelDef, io: &InOutInfo) {
    let op_type = |name: &str| {
        def.graph
            .first()
            .and_then(|g| g.op.iter().find(|op| op.name == name && (op.r#type == "Data" || op.r#type == "AippData")))
            .map_or_else(|| "Data".to_string(), |op| op.r#type.clone())
    };
    let tensor = |t: &InOutTensor, op_type: String, index: Option<i64>| TensorInfo {
        name: t.name.clone(),
        op_type,
        index,
        shape: t.dims.clone(),
        dtype: ge_dtype_name(i64::from(t.dtype)),
        format: ge_format_name(t.format),
    };
    model.inputs = io.inputs.iter().enumerate().map(|(i, t)| tensor(t, op_type(&t.name), Some(i as i64))).collect();
    model.outputs = io.outputs.iter().map(|t| tensor(t, "NetOutput".into(), None)).collect();
    model.io_source = IoSource::ModelInoutInfo;
}

pub(crate) fn attr_str(attrs: &HashMap<String, AttrDef>, key: &str) -> Option<String> {
    match attrs.get(key)?.value.as_ref()? {
        attr_def::Value::S(s) | attr_def::Value::Bt(s) => Some(String::from_utf8_lossy(s).into_owned()),
        attr_def::Value::I(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attr_int(attrs: &HashMap<String, AttrDef>, key: &str) -> Option<i64> {
    match attrs.get(key)?.value.as_ref()? {
        attr_def::Value::I(i) => Some(*i),
        _ => None,
    }
}

fn attr_strings(attrs: &HashMap<String, AttrDef>, key: &str) -> Vec<String> {
    match attrs.get(key).and_then(|a| a.value.as_ref()) {
        Some(attr_def::Value::List(list)) => list.s.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect(),
        Some(attr_def::Value::S(s)) => vec![String::from_utf8_lossy(s).into_owned()],
        _ => Vec::new(),
    }
}

/// `TensorDescriptor.dtype` uses the proto numbering (FLOAT = 1, FLOAT16 = 2, INT8 = 3, …),
/// unlike integer attrs such as Data's `data_type` (C++ ge::DataType: FLOAT = 0 …).
fn proto_dtype_name(dtype: i32) -> String {
    match DataType::try_from(dtype) {
        Ok(dt) => dt.as_str_name().trim_start_matches("DT_").to_string(),
        Err(_) => format!("DataType({dtype})"),
    }
}

fn tensor_info(name: String, op_type: &str, index: Option<i64>, desc: Option<&TensorDescriptor>) -> TensorInfo {
    TensorInfo {
        name,
        op_type: op_type.to_string(),
        index,
        shape: desc.and_then(|d| d.shape.as_ref()).map(|s| s.dim.clone()).unwrap_or_default(),
        dtype: desc.map(|d| proto_dtype_name(d.dtype)).unwrap_or_else(|| "UNDEFINED".into()),
        format: desc.map(|d| d.layout.clone()).unwrap_or_default(),
    }
}

fn input_info(op: &OpDef) -> TensorInfo {
    let mut info = tensor_info(op.name.clone(), &op.r#type, attr_int(&op.attr, "index"), op.output_desc.first());
    // Without an output descriptor fall back to the Data op's own attr (C++ numbering).
    if op.output_desc.is_empty()
        && let Some(dt) = attr_int(&op.attr, "data_type")
    {
        info.dtype = ge_dtype_name(dt);
    }
    info
}

fn quant_op(op: &OpDef) -> QuantOp {
    QuantOp { name: op.name.clone(), op_type: op.r#type.clone(), original_op_names: attr_strings(&op.attr, "_datadump_original_op_names") }
}

fn summarize_model(index: usize, def: &ModelDef) -> ModelInfo {
    // A flow model's ModelDef may have no graph (om_info_from_bytes allows that only there).
    let no_ops: &[OpDef] = &[];
    let main_ops = def.graph.first().map_or(no_ops, |g| g.op.as_slice());
    let mut inputs: Vec<TensorInfo> = main_ops.iter().filter(|op| op.r#type == "Data" || op.r#type == "AippData").map(input_info).collect();
    // Missing `index` sorts last, keeping graph order among equals.
    inputs.sort_by_key(|t| t.index.unwrap_or(i64::MAX));
    let outputs = main_ops
        .iter()
        .filter(|op| op.r#type == "NetOutput")
        .flat_map(|op| {
            op.input_desc.iter().enumerate().map(|(k, d)| {
                let name = if d.name.is_empty() { format!("{}:{k}", op.name) } else { d.name.clone() };
                tensor_info(name, &op.r#type, None, Some(d))
            })
        })
        .collect();

    let all_ops = || def.graph.iter().flat_map(|g| g.op.iter());
    let mut op_histogram = BTreeMap::new();
    for op in all_ops() {
        *op_histogram.entry(op.r#type.clone()).or_insert(0) += 1;
    }
    let aipp_ops: Vec<&OpDef> =
        all_ops().filter(|op| op.r#type == "Aipp" || op.r#type == "AippData" || op.name == "ascend_dynamic_aipp_data").collect();
    let aipp = AippInfo {
        static_aipp: aipp_ops.iter().any(|op| op.r#type == "Aipp"),
        dynamic_aipp: aipp_ops.iter().any(|op| op.r#type != "Aipp"),
        ops: aipp_ops.iter().map(|op| op.name.clone()).collect(),
    };
    let quant_ops: Vec<QuantOp> = all_ops().filter(|op| op.r#type == "AscendQuant" || op.r#type == "AscendDequant").map(quant_op).collect();
    let int8 = DataType::DtInt8 as i32;
    let int8_cube_ops: Vec<QuantOp> = all_ops()
        .filter(|op| CUBE_OPS.contains(&op.r#type.as_str()) && op.input_desc.first().is_some_and(|d| d.dtype == int8))
        .map(quant_op)
        .collect();

    ModelInfo {
        index,
        name: def.name.clone(),
        ir_version: def.version,
        custom_version: def.custom_version.clone(),
        graph_name: def.graph.first().map(|g| g.name.clone()).unwrap_or_default(),
        soc_version: attr_str(&def.attr, "soc_version"),
        target_type: attr_str(&def.attr, "target_type"),
        framework_type: attr_str(&def.attr, "framework_type"),
        atc_cmdline: attr_str(&def.attr, "atc_cmdline"),
        atc_version: attr_str(&def.attr, "atc_version"),
        opp_version: attr_str(&def.attr, "opp_version"),
        io_source: IoSource::ModelDef,
        io_note: None,
        inputs,
        outputs,
        output_nodes: attr_strings(&def.attr, "attr_model_out_nodes_name"),
        aipp,
        op_histogram,
        quantization: QuantEvidence { quantized: !quant_ops.is_empty() || !int8_cube_ops.is_empty(), quant_ops, int8_cube_ops },
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn tensor_line(out: &mut String, t: &TensorInfo) {
    let dims: Vec<String> = t.shape.iter().map(i64::to_string).collect();
    let index = t.index.map(|i| format!("#{i} ")).unwrap_or_default();
    let kind = if t.op_type == "Data" || t.op_type == "NetOutput" { String::new() } else { format!("  ({})", t.op_type) };
    let _ = writeln!(out, "  {index}{}  {}  [{}]  {}{kind}", t.name, t.dtype, dims.join(", "), t.format);
}

impl OmInfo {
    /// The human-readable summary printed by `ascend-ptq om-info`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let h = &self.header;
        let _ = writeln!(out, "File:        {} ({} bytes)", self.file, self.file_size);
        let _ = writeln!(
            out,
            "Header:      name \"{}\", version 0x{:08X}, model type {}, om_ir_version {}, model_num {}, platform \"{}\"",
            h.name,
            h.version,
            h.model_type,
            h.om_ir_version,
            h.model_num.map_or_else(|| "- (not in 0x10000000 headers)".to_string(), |n| n.to_string()),
            h.platform_version
        );
        let _ = writeln!(out, "Body length: {} bytes ({})", h.body_length().0, h.body_length().1);
        let layout = match self.partition_layout {
            TableLayout::Old => "old (u32 offsets/sizes)",
            TableLayout::New => "new (u64 offsets/sizes)",
        };
        if let Some(sim) = &self.simulated {
            let _ = writeln!(
                out,
                "Simulated:   yes (precision {}, ascend-ptq {}): runs only in the ascend-ptq ACL simulator, not on a device",
                sim.precision, sim.version
            );
        }
        let _ = writeln!(out, "Partitions:  {layout}");
        for part in &self.partitions {
            let model = if self.model_num > 1 { format!("model {} ", part.model) } else { String::new() };
            let name = if part.type_name == "UNKNOWN" { format!("UNKNOWN (type {})", part.kind) } else { part.type_name.to_string() };
            let _ = writeln!(out, "  {model}{name:<20} {:>12} bytes at {}", part.size, part.file_offset);
        }
        for m in &self.models {
            let _ = writeln!(out);
            if self.model_num > 1 {
                let _ = writeln!(out, "Model {}:", m.index);
            }
            let _ = writeln!(out, "Model name:  {} (graph \"{}\", IR version {})", m.name, m.graph_name, m.ir_version);
            match (&m.soc_version, &m.target_type) {
                (None, Some(t)) if t == "MINI" => {
                    let _ = writeln!(out, "SoC version: - (target_type MINI: an Ascend 310 target)");
                }
                (soc, t) => {
                    let target = t.as_ref().map(|t| format!(" (target_type {t})")).unwrap_or_default();
                    let _ = writeln!(out, "SoC version: {}{target}", opt(soc));
                }
            }
            let _ = writeln!(out, "Framework:   {}", opt(&m.framework_type));
            let _ = writeln!(out, "ATC version: {}", opt(&m.atc_version));
            let _ = writeln!(out, "ATC command: {}", opt(&m.atc_cmdline));
            let _ = writeln!(out, "I/O from:    {}", m.io_source.describe());
            if let Some(note) = &m.io_note {
                let _ = writeln!(out, "Note:        {note}");
            }
            let _ = writeln!(out, "Inputs:");
            m.inputs.iter().for_each(|t| tensor_line(&mut out, t));
            let _ = writeln!(out, "Outputs:");
            m.outputs.iter().for_each(|t| tensor_line(&mut out, t));
            if !m.output_nodes.is_empty() {
                let _ = writeln!(out, "Output nodes: {}", m.output_nodes.join(", "));
            }
            let aipp = match (m.aipp.static_aipp, m.aipp.dynamic_aipp) {
                (false, false) => "none".to_string(),
                (s, d) => format!("{}{} ({})", if s { "static" } else { "" }, if d { " dynamic" } else { "" }, m.aipp.ops.join(", ")),
            };
            let _ = writeln!(out, "AIPP:        {}", aipp.trim_start());
            let q = &m.quantization;
            let _ = writeln!(out, "Quantized:   {}", if q.quantized { "yes (INT8)" } else { "no" });
            for op in q.quant_ops.iter().chain(&q.int8_cube_ops) {
                let from = if op.original_op_names.is_empty() { String::new() } else { format!(" <- {}", op.original_op_names.join(", ")) };
                let _ = writeln!(out, "  {} {}{from}", op.op_type, op.name);
            }
            let _ = writeln!(out, "Op types:");
            for (ty, n) in &m.op_histogram {
                let _ = writeln!(out, "  {ty:<24} {n}");
            }
        }
        out
    }
}

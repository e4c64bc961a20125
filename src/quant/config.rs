//! The `--calibration_config` "simple config" file: protobuf text of amct_onnx's `AMCTConfig`
//! (docs/ascend-formats.md §8), with the algorithm parameters and defaults of §4.1 (IFMR) and §4.2–§4.4 (HFMG,
//! ARQ, ADA, DMQ). Field names and defaults follow `calibration_config_onnx.proto` as the
//! formats §8 restates it; unknown fields, repeated non-repeated fields, two members of one oneof
//! and out-of-range values are errors naming line:column and the field path.
//!
//! Choices where the sources are silent or UNCONFIRMED (formats §8.3): the override
//! priority applied per part (§8.1,
//! see [`CalibrationConfig::layer_algo`]); an op type or layer overridden twice is an error
//! (§8.1); `channel_wise` unset stays unset (§8.2, §7.2); percentiles
//! must lie in (0.5, 1] (§4.1); `quant_bits` must be 8 (§3); `nuq_config` and
//! `tensor_quantize` are rejected as unsupported (§4.4, §8.1); `joint_quant`,
//! `ada_quantize`, `dmq_balancer` and `dst_type: INT16` are read, and it is up to the
//! calibration to support or refuse them.

use std::fmt;
use std::path::{Path, PathBuf};

use super::pbtext::{self, Field, Pos, Scalar, Value};

/// `[FILE:]LINE:COL: [FIELD.PATH: ]message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    /// None when the file could not be read.
    pub pos: Option<Pos>,
    /// Dotted path of the field, e.g. `override_layer_types[1].calibration_config.ifmr_quantize.search_step`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
            if self.pos.is_none() {
                f.write_str(" ")?;
            }
        }
        if let Some(pos) = self.pos {
            write!(f, "{pos}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

type Result<T> = std::result::Result<T, ConfigError>;

fn err<T>(pos: Pos, path: &str, message: impl Into<String>) -> Result<T> {
    Err(ConfigError { file: None, pos: Some(pos), path: path.to_string(), message: message.into() })
}

/// `fakequant_precision_mode` (§8.1): unset keeps scale_d in fp32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakequantPrecisionMode {
    ForceFp16Quant,
}

/// `dst_type` of IFMR / HFMG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DstType {
    #[default]
    Int8,
    Int16,
}

/// `arq_quantize` (§4.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArqQuantize {
    /// Unset: per output channel where the op allows it (Conv, ConvTranspose), per tensor
    /// otherwise — the defaults of the quant config JSON (§7.2: `channel_wise` true). The proto
    /// field has no default of its own (§8.2), so "unset" is kept distinct from `false`.
    pub channel_wise: Option<bool>,
    pub quant_bits: Option<u32>,
}

/// `ada_quantize` (§4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaQuantize {
    pub num_iteration: u32,
    pub reg_param: f32,
    pub beta_range_start: f32,
    pub beta_range_end: f32,
    pub warm_start: f32,
    pub channel_wise: Option<bool>,
}

impl Default for AdaQuantize {
    fn default() -> Self {
        AdaQuantize {
            num_iteration: 10000,
            reg_param: 0.01,
            beta_range_start: 20.0,
            beta_range_end: 2.0,
            warm_start: 0.2,
            channel_wise: None,
        }
    }
}

/// `ifmr_quantize` (§4.1). The parameters are proto `float`s: kept as f32 so that the search
/// uses the same values as AMCT (0.999999 as f32 is 0.99999899…).
#[derive(Debug, Clone, PartialEq)]
pub struct IfmrQuantize {
    pub search_range_start: f32,
    pub search_range_end: f32,
    pub search_step: f32,
    pub max_percentile: f32,
    pub min_percentile: f32,
    /// Unset: the global `activation_offset`.
    pub asymmetric: Option<bool>,
    pub dst_type: DstType,
}

impl Default for IfmrQuantize {
    fn default() -> Self {
        IfmrQuantize {
            search_range_start: 0.7,
            search_range_end: 1.3,
            search_step: 0.01,
            max_percentile: 0.999999,
            min_percentile: 0.999999,
            asymmetric: None,
            dst_type: DstType::Int8,
        }
    }
}

/// `hfmg_quantize` (§4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct HfmgQuantize {
    pub num_of_bins: u32,
    /// Unset: the global `activation_offset`.
    pub asymmetric: Option<bool>,
    pub dst_type: DstType,
}

impl Default for HfmgQuantize {
    fn default() -> Self {
        HfmgQuantize { num_of_bins: 4096, asymmetric: None, dst_type: DstType::Int8 }
    }
}

/// `dmq_balancer` (§4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DmqBalancer {
    pub migration_strength: f32,
}

impl Default for DmqBalancer {
    fn default() -> Self {
        DmqBalancer { migration_strength: 0.5 }
    }
}

/// The weight algorithm (proto oneof `wts_quant_algo`).
#[derive(Debug, Clone, PartialEq)]
pub enum WeightAlgo {
    Arq(ArqQuantize),
    Ada(AdaQuantize),
}

/// The activation algorithm (proto oneof `acts_quant_algo`).
#[derive(Debug, Clone, PartialEq)]
pub enum ActAlgo {
    Ifmr(IfmrQuantize),
    Hfmg(HfmgQuantize),
}

impl ActAlgo {
    /// The message's field name in the config file.
    pub fn field_name(&self) -> &'static str {
        match self {
            ActAlgo::Ifmr(_) => "ifmr_quantize",
            ActAlgo::Hfmg(_) => "hfmg_quantize",
        }
    }

    /// Its `asymmetric` field (unset: the global `activation_offset`).
    pub fn asymmetric(&self) -> Option<bool> {
        match self {
            ActAlgo::Ifmr(i) => i.asymmetric,
            ActAlgo::Hfmg(h) => h.asymmetric,
        }
    }

    pub fn dst_type(&self) -> DstType {
        match self {
            ActAlgo::Ifmr(i) => i.dst_type,
            ActAlgo::Hfmg(h) => h.dst_type,
        }
    }
}

/// The proto's `CalibrationConfig` message (`common_config`, and the `calibration_config` of
/// each override): every part optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlgoConfig {
    pub weights: Option<WeightAlgo>,
    pub activations: Option<ActAlgo>,
    pub dmq_balancer: Option<DmqBalancer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OverrideLayerType {
    pub layer_type: String,
    pub config: AlgoConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OverrideLayer {
    pub layer_name: String,
    pub config: AlgoConfig,
}

/// The whole file (proto `AMCTConfig`); [`Default`] is an empty file.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationConfig {
    pub batch_num: u32,
    pub activation_offset: bool,
    pub skip_layers: Vec<String>,
    pub skip_layer_types: Vec<String>,
    pub joint_quant: bool,
    pub fakequant_precision_mode: Option<FakequantPrecisionMode>,
    pub common_config: AlgoConfig,
    pub override_layer_types: Vec<OverrideLayerType>,
    pub override_layer_configs: Vec<OverrideLayer>,
    pub do_fusion: bool,
    pub skip_fusion_layers: Vec<String>,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            batch_num: 1,
            activation_offset: true,
            skip_layers: Vec::new(),
            skip_layer_types: Vec::new(),
            joint_quant: false,
            fakequant_precision_mode: None,
            common_config: AlgoConfig::default(),
            override_layer_types: Vec::new(),
            override_layer_configs: Vec::new(),
            do_fusion: true,
            skip_fusion_layers: Vec::new(),
        }
    }
}

/// Which level of the file a setting of [`LayerAlgo`] comes from (§8.1 priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Not in the file: the defaults.
    Default,
    /// `common_config`: meant for every layer, so it may be adapted where an op cannot take it.
    Common,
    /// `override_layer_types` naming the layer's op type.
    LayerType,
    /// `override_layer_configs` naming the layer.
    LayerName,
}

/// The algorithms that apply to one layer after the priority rules.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerAlgo {
    pub weights: WeightAlgo,
    /// Where `weights` comes from: a per-tensor op asked for channel_wise by `common_config`
    /// is quantized per tensor with a warning, by an override it is an error.
    pub weights_origin: Origin,
    pub activations: ActAlgo,
    pub dmq_balancer: Option<DmqBalancer>,
    /// `asymmetric` of the activation algorithm, else the global `activation_offset`.
    pub asymmetric: bool,
}

/// The ops whose weights can only be quantized per tensor (§4.3 ARQ).
const PER_TENSOR_TYPES: [&str; 4] = ["Gemm", "MatMul", "AveragePool", "FC"];

impl CalibrationConfig {
    /// Parses the text of a `.cfg` file.
    pub fn parse(text: &str) -> Result<Self> {
        let fields =
            pbtext::parse(text).map_err(|e| ConfigError { file: None, pos: Some(e.pos), path: String::new(), message: e.message })?;
        read_amct_config(&fields)
    }

    /// Reads and parses a `.cfg` file; errors name the file.
    pub fn from_file(path: &Path) -> std::result::Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            pos: None,
            path: String::new(),
            message: format!("cannot read --calibration_config: {e}"),
        })?;
        Self::parse(&text).map_err(|e| ConfigError { file: Some(path.to_path_buf()), ..e })
    }

    /// The algorithms for a layer: `override_layer_configs` (by name) before
    /// `override_layer_types` (by op type) before `common_config` before the defaults (ARQ,
    /// IFMR with §4.1 defaults). UNCONFIRMED (§8.1 gives only the priority order "layer >
    /// type > common"): we apply it per part (weights, activations, DMQ), so an override that
    /// sets only `ifmr_quantize` keeps the weight settings of the level below.
    pub fn layer_algo(&self, layer_name: &str, op_type: &str) -> LayerAlgo {
        let levels = [
            (Origin::LayerName, self.override_layer_configs.iter().find(|o| o.layer_name == layer_name).map(|o| &o.config)),
            (Origin::LayerType, self.override_layer_types.iter().find(|o| o.layer_type == op_type).map(|o| &o.config)),
            (Origin::Common, Some(&self.common_config)),
        ];
        let levels = levels.into_iter().filter_map(|(origin, c)| c.map(|c| (origin, c))).collect::<Vec<_>>();
        let (weights_origin, weights) = levels
            .iter()
            .find_map(|(origin, c)| c.weights.clone().map(|w| (*origin, w)))
            .unwrap_or((Origin::Default, WeightAlgo::Arq(ArqQuantize::default())));
        let activations = levels.iter().find_map(|(_, c)| c.activations.clone()).unwrap_or(ActAlgo::Ifmr(IfmrQuantize::default()));
        let dmq_balancer = levels.iter().find_map(|(_, c)| c.dmq_balancer.clone());
        let asymmetric = activations.asymmetric().unwrap_or(self.activation_offset);
        LayerAlgo { weights, weights_origin, activations, dmq_balancer, asymmetric }
    }
}

/// Tracks the non-repeated fields seen in one message, and its oneof groups.
struct Seen<'a> {
    path: &'a str,
    fields: Vec<(&'a str, Pos)>,
}

impl<'a> Seen<'a> {
    fn new(path: &'a str) -> Self {
        Seen { path, fields: Vec::new() }
    }

    /// Marks a non-repeated field; a second occurrence is an error.
    fn once(&mut self, f: &'a Field) -> Result<()> {
        if let Some((_, first)) = self.fields.iter().find(|(n, _)| *n == f.name) {
            return err(f.pos, &child(self.path, &f.name), format!("given twice (first at {first}); this field is not repeated"));
        }
        self.fields.push((&f.name, f.pos));
        Ok(())
    }

    /// Marks a member of the oneof `group`; another member already given is an error.
    fn oneof(&mut self, f: &'a Field, group: &str, members: &[&str]) -> Result<()> {
        self.once(f)?;
        if let Some((other, at)) = self.fields.iter().find(|(n, _)| *n != f.name && members.contains(n)) {
            return err(
                f.pos,
                &child(self.path, &f.name),
                format!("'{other}' (at {at}) is already given; {} are alternatives (oneof {group}), give one", members.join(" and ")),
            );
        }
        Ok(())
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn unknown<T>(f: &Field, path: &str, known: &[&str]) -> Result<T> {
    let what = if path.is_empty() { "the file".to_string() } else { format!("'{path}'") };
    err(f.pos, &child(path, &f.name), format!("unknown field in {what}; known fields: {}", known.join(", ")))
}

/// The scalar of a non-repeated field.
fn scalar<'f>(f: &'f Field, path: &str) -> Result<(&'f Scalar, Pos)> {
    match &f.value {
        Value::Scalar { pos, scalar } => Ok((scalar, *pos)),
        Value::Message { pos, .. } => err(*pos, path, "expected a value after ':', found a message '{ ... }'"),
        Value::List { pos, .. } => err(*pos, path, "a list '[...]' is only allowed for repeated fields"),
    }
}

fn uint32(f: &Field, path: &str) -> Result<(u32, Pos)> {
    let (s, pos) = scalar(f, path)?;
    let parsed = match s {
        Scalar::Number(n) => {
            let (digits, radix) = match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                Some(hex) => (hex, 16),
                None if n.len() > 1 && n.starts_with('0') => (&n[1..], 8),
                None => (n.as_str(), 10),
            };
            u32::from_str_radix(digits, radix).ok()
        }
        _ => None,
    };
    match parsed {
        Some(v) => Ok((v, pos)),
        None => err(pos, path, format!("expected an unsigned 32-bit integer, found {}", s.describe())),
    }
}

/// A proto `float`: parsed as a double, then rounded to f32 as protobuf's text parsers do.
fn float32(f: &Field, path: &str) -> Result<(f32, Pos)> {
    let (s, pos) = scalar(f, path)?;
    match s.as_float() {
        Some(v) => Ok((v as f32, pos)),
        None => err(pos, path, format!("expected a number, found {}", s.describe())),
    }
}

fn boolean(f: &Field, path: &str) -> Result<bool> {
    let (s, pos) = scalar(f, path)?;
    match s {
        Scalar::Ident(i) if matches!(i.as_str(), "true" | "True" | "t") => Ok(true),
        Scalar::Ident(i) if matches!(i.as_str(), "false" | "False" | "f") => Ok(false),
        Scalar::Number(n) if n == "1" => Ok(true),
        Scalar::Number(n) if n == "0" => Ok(false),
        other => err(pos, path, format!("expected true or false, found {}", other.describe())),
    }
}

fn string(f: &Field, path: &str) -> Result<String> {
    match scalar(f, path)? {
        (Scalar::Str(s), _) => Ok(s.clone()),
        (other, pos) => err(pos, path, format!("expected a quoted string, found {}", other.describe())),
    }
}

/// An enum value given by name or by number.
fn enumeration<T: Copy>(f: &Field, path: &str, values: &[(&str, i64, T)]) -> Result<T> {
    let (s, pos) = scalar(f, path)?;
    let found = values.iter().find(|(name, num, _)| match s {
        Scalar::Ident(i) => i == name,
        Scalar::Number(n) => n.parse::<i64>().is_ok_and(|v| v == *num),
        Scalar::Str(_) => false,
    });
    match found {
        Some((_, _, v)) => Ok(*v),
        None => {
            let names = values.iter().map(|(n, v, _)| format!("{n} ({v})")).collect::<Vec<_>>().join(", ");
            err(pos, path, format!("expected one of {names}, found {}", s.describe()))
        }
    }
}

/// The strings of a repeated string field: one per occurrence or a `[...]` list.
fn strings(f: &Field, path: &str, out: &mut Vec<String>) -> Result<()> {
    match &f.value {
        Value::List { items, .. } => {
            for item in items {
                match item {
                    Value::Scalar { scalar: Scalar::Str(s), .. } => out.push(s.clone()),
                    Value::Scalar { scalar, pos } => {
                        return err(*pos, path, format!("expected a quoted string, found {}", scalar.describe()));
                    }
                    other => return err(other.pos(), path, "expected a quoted string, found a message"),
                }
            }
            Ok(())
        }
        _ => {
            out.push(string(f, path)?);
            Ok(())
        }
    }
}

/// The messages of a field: one for `name { }`, each item of `name: [{...}, {...}]`.
fn messages<'f>(f: &'f Field, path: &str, repeated: bool) -> Result<Vec<(&'f [Field], Pos)>> {
    match &f.value {
        Value::Message { fields, pos } => Ok(vec![(fields.as_slice(), *pos)]),
        Value::List { items, pos } if repeated => items
            .iter()
            .map(|item| match item {
                Value::Message { fields, pos } => Ok((fields.as_slice(), *pos)),
                other => err(other.pos(), path, "expected a message '{ ... }' in the list"),
            })
            .collect(),
        Value::List { pos, .. } => err(*pos, path, "a list '[...]' is only allowed for repeated fields"),
        Value::Scalar { pos, scalar } => err(*pos, path, format!("expected a message '{{ ... }}', found {}", scalar.describe())),
    }
}

fn message<'f>(f: &'f Field, path: &str) -> Result<&'f [Field]> {
    Ok(messages(f, path, false)?[0].0)
}

/// Checks `ok` for a value read at `pos`, else the error `requirement`.
fn check(ok: bool, pos: Pos, path: &str, requirement: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { err(pos, path, requirement()) }
}

const AMCT_FIELDS: [&str; 13] = [
    "batch_num",
    "activation_offset",
    "skip_layers",
    "skip_layer_types",
    "nuq_config",
    "joint_quant",
    "fakequant_precision_mode",
    "common_config",
    "override_layer_types",
    "override_layer_configs",
    "do_fusion",
    "skip_fusion_layers",
    "tensor_quantize",
];

fn read_amct_config(fields: &[Field]) -> Result<CalibrationConfig> {
    let mut cfg = CalibrationConfig::default();
    let mut seen = Seen::new("");
    let (mut n_types, mut n_layers) = (0, 0);
    for f in fields {
        let path = f.name.clone();
        match f.name.as_str() {
            "batch_num" => {
                seen.once(f)?;
                let (v, pos) = uint32(f, &path)?;
                check(v >= 1, pos, &path, || "must be at least 1".into())?;
                cfg.batch_num = v;
            }
            "activation_offset" => {
                seen.once(f)?;
                cfg.activation_offset = boolean(f, &path)?;
            }
            "skip_layers" => strings(f, &path, &mut cfg.skip_layers)?,
            "skip_layer_types" => {
                let mut types = Vec::new();
                strings(f, &path, &mut types)?;
                for t in &types {
                    foreign_type(f.pos, &path, t)?;
                }
                cfg.skip_layer_types.extend(types);
            }
            "skip_fusion_layers" => strings(f, &path, &mut cfg.skip_fusion_layers)?,
            "joint_quant" => {
                seen.once(f)?;
                cfg.joint_quant = boolean(f, &path)?;
            }
            "do_fusion" => {
                seen.once(f)?;
                cfg.do_fusion = boolean(f, &path)?;
            }
            "fakequant_precision_mode" => {
                seen.once(f)?;
                cfg.fakequant_precision_mode =
                    Some(enumeration(f, &path, &[("FORCE_FP16_QUANT", 1, FakequantPrecisionMode::ForceFp16Quant)])?);
            }
            "common_config" => {
                seen.once(f)?;
                cfg.common_config = read_algo_config(message(f, &path)?, &path)?;
            }
            "override_layer_types" => {
                for (body, pos) in messages(f, &path, true)? {
                    let p = format!("{path}[{n_types}]");
                    n_types += 1;
                    let (layer_type, config) = read_override(body, pos, &p, "layer_type")?;
                    if cfg.override_layer_types.iter().any(|o| o.layer_type == layer_type) {
                        // UNCONFIRMED (§8.1 does not say which entry wins): ambiguous, so an error.
                        return err(pos, &p, format!("layer_type \"{layer_type}\" is overridden twice"));
                    }
                    foreign_type(pos, &format!("{p}.layer_type"), &layer_type)?;
                    if PER_TENSOR_TYPES.contains(&layer_type.as_str()) {
                        check_per_tensor(pos, &config, &p, &layer_type)?;
                    }
                    cfg.override_layer_types.push(OverrideLayerType { layer_type, config });
                }
            }
            "override_layer_configs" => {
                for (body, pos) in messages(f, &path, true)? {
                    let p = format!("{path}[{n_layers}]");
                    n_layers += 1;
                    let (layer_name, config) = read_override(body, pos, &p, "layer_name")?;
                    // As for override_layer_types (§8.3).
                    if cfg.override_layer_configs.iter().any(|o| o.layer_name == layer_name) {
                        return err(pos, &p, format!("layer_name \"{layer_name}\" is overridden twice"));
                    }
                    cfg.override_layer_configs.push(OverrideLayer { layer_name, config });
                }
            }
            "nuq_config" => {
                return err(
                    f.pos,
                    &path,
                    "non-uniform quantization (NUQ, nuq_config) is not supported: it gives no speed-up on current CANN \
                     (docs/ascend-formats.md §4.4). Remove the nuq_config block: every layer is then quantized uniformly, \
                     with IFMR activations and ARQ weights (or the algorithms common_config names)",
                );
            }
            "tensor_quantize" => {
                return err(f.pos, &path, "tensor_quantize is not supported (its fields are not documented, docs/ascend-formats.md §8.1)");
            }
            _ => return unknown(f, "", &AMCT_FIELDS),
        }
    }
    Ok(cfg)
}

/// `{layer_type|layer_name: "...", calibration_config { ... }}`, both required.
fn read_override(fields: &[Field], pos: Pos, path: &str, key: &str) -> Result<(String, AlgoConfig)> {
    let mut seen = Seen::new(path);
    let (mut name, mut config) = (None, None);
    for f in fields {
        let p = child(path, &f.name);
        if f.name == key {
            seen.once(f)?;
            name = Some(string(f, &p)?);
        } else if f.name == "calibration_config" {
            seen.once(f)?;
            config = Some(read_algo_config(message(f, &p)?, &p)?);
        } else {
            return unknown(f, path, &[key, "calibration_config"]);
        }
    }
    match (name, config) {
        (Some(n), Some(c)) => Ok((n, c)),
        (None, _) => err(pos, path, format!("required field '{key}' is missing")),
        (_, None) => err(pos, path, "required field 'calibration_config' is missing"),
    }
}

/// Layer type names of AMCT's Caffe and TensorFlow editions, which real config files carry
/// (the Caffe ResNet-50 sample overrides "Pooling", docs/ascend-formats.md §8.3), with their
/// ONNX equivalents. No ONNX node has these types, so such an override would silently apply to
/// nothing: an error that names the ONNX type to write instead.
const FOREIGN_TYPES: [(&str, &str, &str); 8] = [
    ("Pooling", "Caffe", "\"AveragePool\" (or \"MaxPool\", which is never quantized)"),
    ("Convolution", "Caffe", "\"Conv\""),
    ("Deconvolution", "Caffe", "\"ConvTranspose\""),
    ("InnerProduct", "Caffe", "\"Gemm\" or \"MatMul\""),
    ("Conv2D", "TensorFlow", "\"Conv\""),
    ("DepthwiseConv2dNative", "TensorFlow", "\"Conv\""),
    ("Conv2DBackpropInput", "TensorFlow", "\"ConvTranspose\""),
    ("AvgPool", "TensorFlow", "\"AveragePool\""),
];

fn foreign_type(pos: Pos, path: &str, layer_type: &str) -> Result<()> {
    match FOREIGN_TYPES.iter().find(|(name, _, _)| *name == layer_type) {
        Some((_, framework, onnx)) => {
            err(pos, path, format!("\"{layer_type}\" is a {framework} layer type; no ONNX node has it. Write the ONNX op type: {onnx}"))
        }
        None => Ok(()),
    }
}

/// §4.3: `channel_wise` must be false for ops quantized per tensor.
fn check_per_tensor(pos: Pos, config: &AlgoConfig, path: &str, layer_type: &str) -> Result<()> {
    let channel_wise = match &config.weights {
        Some(WeightAlgo::Arq(a)) => a.channel_wise,
        Some(WeightAlgo::Ada(a)) => a.channel_wise,
        None => None,
    };
    if channel_wise == Some(true) {
        return err(pos, path, format!("channel_wise: true is not possible for {layer_type}: its weights are quantized per tensor"));
    }
    Ok(())
}

const ALGO_FIELDS: [&str; 5] = ["arq_quantize", "ada_quantize", "ifmr_quantize", "hfmg_quantize", "dmq_balancer"];

/// The proto `CalibrationConfig` message.
fn read_algo_config(fields: &[Field], path: &str) -> Result<AlgoConfig> {
    let mut cfg = AlgoConfig::default();
    let mut seen = Seen::new(path);
    for f in fields {
        let p = child(path, &f.name);
        match f.name.as_str() {
            "arq_quantize" => {
                seen.oneof(f, "wts_quant_algo", &ALGO_FIELDS[..2])?;
                cfg.weights = Some(WeightAlgo::Arq(read_arq(message(f, &p)?, &p)?));
            }
            "ada_quantize" => {
                seen.oneof(f, "wts_quant_algo", &ALGO_FIELDS[..2])?;
                cfg.weights = Some(WeightAlgo::Ada(read_ada(message(f, &p)?, &p)?));
            }
            "ifmr_quantize" => {
                seen.oneof(f, "acts_quant_algo", &ALGO_FIELDS[2..4])?;
                cfg.activations = Some(ActAlgo::Ifmr(read_ifmr(message(f, &p)?, f.pos, &p)?));
            }
            "hfmg_quantize" => {
                seen.oneof(f, "acts_quant_algo", &ALGO_FIELDS[2..4])?;
                cfg.activations = Some(ActAlgo::Hfmg(read_hfmg(message(f, &p)?, &p)?));
            }
            "dmq_balancer" => {
                seen.once(f)?;
                cfg.dmq_balancer = Some(read_dmq(message(f, &p)?, &p)?);
            }
            _ => return unknown(f, path, &ALGO_FIELDS),
        }
    }
    Ok(cfg)
}

fn read_arq(fields: &[Field], path: &str) -> Result<ArqQuantize> {
    let mut out = ArqQuantize::default();
    let mut seen = Seen::new(path);
    for f in fields {
        let p = child(path, &f.name);
        match f.name.as_str() {
            "channel_wise" | "quant_bits" => seen.once(f)?,
            _ => return unknown(f, path, &["channel_wise", "quant_bits"]),
        }
        match f.name.as_str() {
            "channel_wise" => out.channel_wise = Some(boolean(f, &p)?),
            "quant_bits" => {
                let (v, pos) = uint32(f, &p)?;
                // Ascend 310-class NPUs run int8 convolutions only (the integer convention, formats §3).
                check(v == 8, pos, &p, || format!("only 8-bit weights are supported, found {v}"))?;
                out.quant_bits = Some(v);
            }
            _ => unreachable!("checked above"),
        }
    }
    Ok(out)
}

fn read_ada(fields: &[Field], path: &str) -> Result<AdaQuantize> {
    const KNOWN: [&str; 6] = ["num_iteration", "reg_param", "beta_range_start", "beta_range_end", "warm_start", "channel_wise"];
    let mut out = AdaQuantize::default();
    let mut seen = Seen::new(path);
    for f in fields {
        let p = child(path, &f.name);
        if !KNOWN.contains(&f.name.as_str()) {
            return unknown(f, path, &KNOWN);
        }
        seen.once(f)?;
        match f.name.as_str() {
            "num_iteration" => {
                let (v, pos) = uint32(f, &p)?;
                check(v >= 1, pos, &p, || "must be at least 1".into())?;
                out.num_iteration = v;
            }
            "channel_wise" => out.channel_wise = Some(boolean(f, &p)?),
            name => {
                let (v, pos) = float32(f, &p)?;
                check(v.is_finite() && v >= 0.0, pos, &p, || format!("must be a finite number ≥ 0, found {v}"))?;
                match name {
                    "reg_param" => out.reg_param = v,
                    "beta_range_start" => out.beta_range_start = v,
                    "beta_range_end" => out.beta_range_end = v,
                    _ => out.warm_start = v,
                }
            }
        }
    }
    Ok(out)
}

fn dst_type(f: &Field, path: &str) -> Result<DstType> {
    enumeration(f, path, &[("INT8", 1, DstType::Int8), ("INT16", 2, DstType::Int16)])
}

fn read_ifmr(fields: &[Field], pos: Pos, path: &str) -> Result<IfmrQuantize> {
    const KNOWN: [&str; 7] =
        ["search_range_start", "search_range_end", "search_step", "max_percentile", "min_percentile", "asymmetric", "dst_type"];
    let mut out = IfmrQuantize::default();
    let mut seen = Seen::new(path);
    let mut range_pos = pos;
    for f in fields {
        let p = child(path, &f.name);
        if !KNOWN.contains(&f.name.as_str()) {
            return unknown(f, path, &KNOWN);
        }
        seen.once(f)?;
        match f.name.as_str() {
            "asymmetric" => out.asymmetric = Some(boolean(f, &p)?),
            "dst_type" => out.dst_type = dst_type(f, &p)?,
            name => {
                let (v, vpos) = float32(f, &p)?;
                match name {
                    "search_range_start" | "search_range_end" => {
                        check(v.is_finite() && v > 0.0, vpos, &p, || format!("must be a finite number > 0, found {v}"))?;
                        if name == "search_range_start" {
                            out.search_range_start = v;
                        } else {
                            out.search_range_end = v;
                        }
                        range_pos = vpos;
                    }
                    "search_step" => {
                        check(v.is_finite() && v > 0.0, vpos, &p, || format!("must be a finite number > 0, found {v}"))?;
                        out.search_step = v;
                    }
                    _ => {
                        // UNCONFIRMED bound (§4.1 gives only the default): below 0.5 the "max"
                        // and "min" percentiles would cross (§4.1 step 1 takes the k-th largest / smallest with k = n − ⌊p·n⌋).
                        check(v > 0.5 && v <= 1.0, vpos, &p, || format!("must be in (0.5, 1], found {v}"))?;
                        if name == "max_percentile" {
                            out.max_percentile = v;
                        } else {
                            out.min_percentile = v;
                        }
                    }
                }
            }
        }
    }
    let range = format!("{path}.search_range_start/search_range_end");
    check(out.search_range_start < out.search_range_end, range_pos, &range, || {
        format!("the search range [{}, {}) is empty: start must be below end", out.search_range_start, out.search_range_end)
    })?;
    Ok(out)
}

fn read_hfmg(fields: &[Field], path: &str) -> Result<HfmgQuantize> {
    const KNOWN: [&str; 3] = ["num_of_bins", "asymmetric", "dst_type"];
    let mut out = HfmgQuantize::default();
    let mut seen = Seen::new(path);
    for f in fields {
        let p = child(path, &f.name);
        if !KNOWN.contains(&f.name.as_str()) {
            return unknown(f, path, &KNOWN);
        }
        seen.once(f)?;
        match f.name.as_str() {
            "num_of_bins" => {
                let (v, pos) = uint32(f, &p)?;
                check([1024, 2048, 4096, 8192].contains(&v), pos, &p, || format!("must be 1024, 2048, 4096 or 8192, found {v}"))?;
                out.num_of_bins = v;
            }
            "asymmetric" => out.asymmetric = Some(boolean(f, &p)?),
            _ => out.dst_type = dst_type(f, &p)?,
        }
    }
    Ok(out)
}

fn read_dmq(fields: &[Field], path: &str) -> Result<DmqBalancer> {
    let mut out = DmqBalancer::default();
    let mut seen = Seen::new(path);
    for f in fields {
        let p = child(path, &f.name);
        if f.name != "migration_strength" {
            return unknown(f, path, &["migration_strength"]);
        }
        seen.once(f)?;
        let (v, pos) = float32(f, &p)?;
        check((0.2..=0.8).contains(&v), pos, &p, || format!("must be in [0.2, 0.8], found {v}"))?;
        out.migration_strength = v;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CalibrationConfig {
        CalibrationConfig::parse(text).unwrap_or_else(|e| panic!("{e}\nin:\n{text}"))
    }

    fn error(text: &str) -> String {
        CalibrationConfig::parse(text).expect_err("must fail").to_string()
    }

    #[test]
    fn empty_file_gives_the_spec_defaults() {
        let cfg = parse("# nothing but a comment\n");
        assert_eq!(cfg, CalibrationConfig::default());
        assert_eq!(cfg.batch_num, 1);
        assert!(cfg.activation_offset && cfg.do_fusion && !cfg.joint_quant);
        assert_eq!(cfg.fakequant_precision_mode, None);
        let algo = cfg.layer_algo("Conv_0", "Conv");
        assert_eq!(algo.weights, WeightAlgo::Arq(ArqQuantize { channel_wise: None, quant_bits: None }));
        let ActAlgo::Ifmr(i) = &algo.activations else { panic!("IFMR is the default") };
        assert_eq!(
            (i.search_range_start, i.search_range_end, i.search_step, i.max_percentile, i.min_percentile),
            (0.7, 1.3, 0.01, 0.999999, 0.999999)
        );
        assert_eq!((i.asymmetric, i.dst_type), (None, DstType::Int8));
        assert!(algo.asymmetric);
        assert_eq!(algo.dmq_balancer, None);
        assert_eq!(HfmgQuantize::default().num_of_bins, 4096);
        assert_eq!(DmqBalancer::default().migration_strength, 0.5);
        assert_eq!(
            AdaQuantize::default(),
            AdaQuantize {
                num_iteration: 10000,
                reg_param: 0.01,
                beta_range_start: 20.0,
                beta_range_end: 2.0,
                warm_start: 0.2,
                channel_wise: None
            }
        );
    }

    #[test]
    fn every_top_level_field() {
        let cfg = parse(
            r#"
            batch_num: 16
            activation_offset: false
            skip_layers: "Conv_0"
            skip_layer_types: "MatMul"
            joint_quant: true
            fakequant_precision_mode: FORCE_FP16_QUANT
            do_fusion: false
            skip_fusion_layers: "Conv_5"
            common_config {
                arq_quantize { channel_wise: false quant_bits: 8 }
                hfmg_quantize { num_of_bins: 2048 asymmetric: true dst_type: INT8 }
                dmq_balancer { migration_strength: 0.3 }
            }
            override_layer_types { layer_type: "Conv" calibration_config { ada_quantize { num_iteration: 5 reg_param: 0.02 beta_range_start: 10 beta_range_end: 1 warm_start: 0.1 channel_wise: true } } }
            override_layer_configs { layer_name: "Conv_7" calibration_config { ifmr_quantize {
                search_range_start: 0.5 search_range_end: 1.5 search_step: 0.02 max_percentile: 0.9999 min_percentile: 0.999
                asymmetric: false dst_type: INT16 } } }
            "#,
        );
        assert_eq!(cfg.batch_num, 16);
        assert!(!cfg.activation_offset && cfg.joint_quant && !cfg.do_fusion);
        assert_eq!(cfg.skip_layers, ["Conv_0"]);
        assert_eq!(cfg.skip_layer_types, ["MatMul"]);
        assert_eq!(cfg.skip_fusion_layers, ["Conv_5"]);
        assert_eq!(cfg.fakequant_precision_mode, Some(FakequantPrecisionMode::ForceFp16Quant));
        assert_eq!(
            cfg.common_config,
            AlgoConfig {
                weights: Some(WeightAlgo::Arq(ArqQuantize { channel_wise: Some(false), quant_bits: Some(8) })),
                activations: Some(ActAlgo::Hfmg(HfmgQuantize { num_of_bins: 2048, asymmetric: Some(true), dst_type: DstType::Int8 })),
                dmq_balancer: Some(DmqBalancer { migration_strength: 0.3 }),
            }
        );
        assert_eq!(cfg.override_layer_types[0].layer_type, "Conv");
        assert_eq!(
            cfg.override_layer_types[0].config.weights,
            Some(WeightAlgo::Ada(AdaQuantize {
                num_iteration: 5,
                reg_param: 0.02,
                beta_range_start: 10.0,
                beta_range_end: 1.0,
                warm_start: 0.1,
                channel_wise: Some(true)
            }))
        );
        assert_eq!(cfg.override_layer_configs[0].layer_name, "Conv_7");
        assert_eq!(
            cfg.override_layer_configs[0].config.activations,
            Some(ActAlgo::Ifmr(IfmrQuantize {
                search_range_start: 0.5,
                search_range_end: 1.5,
                search_step: 0.02,
                max_percentile: 0.9999,
                min_percentile: 0.999,
                asymmetric: Some(false),
                dst_type: DstType::Int16
            }))
        );
    }

    #[test]
    fn repeated_fields_accept_both_syntaxes_and_accumulate() {
        let cfg = parse(
            r#"skip_layers: ["Conv_0","Conv_3"]  # the ModelZoo YOLOv5 form
               skip_layers: "Conv_9"
               skip_layers: []
               skip_layer_types: ['Gemm', "AveragePool"]
               skip_fusion_layers: ["a", "b"], skip_fusion_layers: "c";
               override_layer_types: [
                   {layer_type: "Conv", calibration_config {ifmr_quantize {search_step: 0.02}}},
                   <layer_type: "Gemm" calibration_config: {arq_quantize {channel_wise: false}}>
               ]
               override_layer_types { layer_type: "MatMul" calibration_config {} }
               override_layer_configs: [{layer_name: "x" calibration_config {}}]"#,
        );
        assert_eq!(cfg.skip_layers, ["Conv_0", "Conv_3", "Conv_9"]);
        assert_eq!(cfg.skip_layer_types, ["Gemm", "AveragePool"]);
        assert_eq!(cfg.skip_fusion_layers, ["a", "b", "c"]);
        assert_eq!(cfg.override_layer_types.iter().map(|o| o.layer_type.as_str()).collect::<Vec<_>>(), ["Conv", "Gemm", "MatMul"]);
        assert_eq!(cfg.override_layer_configs[0].layer_name, "x");
    }

    #[test]
    fn comments_strings_numbers_bools_and_enum_numbers() {
        let cfg = parse(
            "# header\nbatch_num: 0x10 # hex\nactivation_offset: False\ndo_fusion: t\njoint_quant: 1\n\
             skip_layers: 'with \\'quote\\' and \\\"dq\\\"' \" + concatenated\"\n\
             skip_layers: \"/model/conv#1\"  # a '#' inside a string is no comment\n\
             common_config { ifmr_quantize { search_step: 2e-2 max_percentile: 1 min_percentile: 0.99f dst_type: 2 } }",
        );
        assert_eq!(cfg.batch_num, 16);
        assert!(!cfg.activation_offset && cfg.do_fusion && cfg.joint_quant);
        assert_eq!(cfg.skip_layers, ["with 'quote' and \"dq\" + concatenated", "/model/conv#1"]);
        let Some(ActAlgo::Ifmr(i)) = &cfg.common_config.activations else { panic!() };
        assert_eq!((i.search_step, i.max_percentile, i.min_percentile, i.dst_type), (0.02, 1.0, 0.99, DstType::Int16));
        // A proto float: the decimal rounded to f32, as AMCT's protobuf reads it.
        assert_eq!(IfmrQuantize::default().max_percentile.to_bits(), 0.999999f32.to_bits());
    }

    #[test]
    fn layer_priority_is_layer_then_type_then_common_per_part() {
        let cfg = parse(
            r#"activation_offset: false
               common_config { arq_quantize { channel_wise: false } ifmr_quantize { search_step: 0.05 } }
               override_layer_types { layer_type: "Conv" calibration_config { hfmg_quantize { asymmetric: true } } }
               override_layer_configs { layer_name: "Conv_3" calibration_config { arq_quantize { channel_wise: true } dmq_balancer {} } }"#,
        );
        let plain = cfg.layer_algo("Gemm_1", "Gemm");
        assert!(matches!(&plain.activations, ActAlgo::Ifmr(i) if i.search_step == 0.05));
        assert_eq!(plain.weights, WeightAlgo::Arq(ArqQuantize { channel_wise: Some(false), quant_bits: None }));
        assert!(!plain.asymmetric, "falls back to activation_offset");
        let conv = cfg.layer_algo("Conv_1", "Conv");
        assert!(matches!(conv.activations, ActAlgo::Hfmg(_)));
        assert!(conv.asymmetric);
        assert_eq!(conv.weights, plain.weights, "the type override sets no weights: common's apply");
        let conv3 = cfg.layer_algo("Conv_3", "Conv");
        assert_eq!(conv3.weights, WeightAlgo::Arq(ArqQuantize { channel_wise: Some(true), quant_bits: None }));
        assert!(matches!(conv3.activations, ActAlgo::Hfmg(_)));
        assert_eq!(conv3.dmq_balancer, Some(DmqBalancer { migration_strength: 0.5 }));
        // Where the weights came from: the calibration adapts only common settings.
        assert_eq!((plain.weights_origin, conv.weights_origin, conv3.weights_origin), (Origin::Common, Origin::Common, Origin::LayerName));
        let typed = parse(r#"override_layer_types { layer_type: "Conv" calibration_config { arq_quantize {} } }"#);
        assert_eq!(typed.layer_algo("c", "Conv").weights_origin, Origin::LayerType);
        assert_eq!(typed.layer_algo("g", "Gemm").weights_origin, Origin::Default);
    }

    #[test]
    fn caffe_and_tensorflow_type_names_are_errors_naming_the_onnx_type() {
        let e = error("override_layer_types {\n layer_type: \"Pooling\"\n calibration_config { arq_quantize { channel_wise: false } } }");
        assert!(e.starts_with("1:22: override_layer_types[0].layer_type: \"Pooling\" is a Caffe layer type"), "{e}");
        assert!(e.contains("\"AveragePool\"") && e.contains("\"MaxPool\""), "{e}");
        let e = error("skip_layer_types: [\"Conv\", \"InnerProduct\"]");
        assert!(e.contains("skip_layer_types: \"InnerProduct\" is a Caffe layer type") && e.contains("\"Gemm\" or \"MatMul\""), "{e}");
        let e = error("skip_layer_types: \"DepthwiseConv2dNative\"");
        assert!(e.contains("TensorFlow layer type") && e.contains("\"Conv\""), "{e}");
        // ONNX names pass.
        assert_eq!(parse("skip_layer_types: [\"AveragePool\", \"MaxPool\"]").skip_layer_types, ["AveragePool", "MaxPool"]);
    }

    #[test]
    fn structural_errors_name_line_column_and_field() {
        for (text, want) in [
            (
                "batch_num: 2\nbatch_nums: 3",
                "2:1: batch_nums: unknown field in the file; known fields: batch_num, activation_offset, skip_layers",
            ),
            (
                "common_config {\n  ifmr_quantize { serach_step: 0.1 }\n}",
                "2:19: common_config.ifmr_quantize.serach_step: unknown field in 'common_config.ifmr_quantize'; known fields: \
                 search_range_start, search_range_end, search_step",
            ),
            ("batch_num: 2\nbatch_num: 3", "2:1: batch_num: given twice (first at 1:1); this field is not repeated"),
            (
                "common_config { arq_quantize {} ada_quantize {} }",
                "1:33: common_config.ada_quantize: 'arq_quantize' (at 1:17) is already given; arq_quantize and ada_quantize are \
                 alternatives (oneof wts_quant_algo), give one",
            ),
            ("common_config { hfmg_quantize {} ifmr_quantize {} }", "oneof acts_quant_algo"),
            ("common_config { dmq_balancer {} dmq_balancer {} }", "1:33: common_config.dmq_balancer: given twice"),
            ("batch_num: [1]", "1:12: batch_num: a list '[...]' is only allowed for repeated fields"),
            ("batch_num { }", "1:11: batch_num: expected a value after ':', found a message"),
            ("common_config: 5", "1:16: common_config: expected a message '{ ... }', found number 5"),
            ("common_config: [{}]", "1:16: common_config: a list '[...]' is only allowed for repeated fields"),
            ("skip_layers: Conv_0", "1:14: skip_layers: expected a quoted string, found identifier Conv_0"),
            ("skip_layers: [\"a\", 3]", "1:20: skip_layers: expected a quoted string, found number 3"),
            ("override_layer_types { calibration_config {} }", "1:22: override_layer_types[0]: required field 'layer_type' is missing"),
            ("override_layer_configs { layer_name: \"x\" }", "override_layer_configs[0]: required field 'calibration_config' is missing"),
            (
                "override_layer_types: [{layer_type: \"Conv\" calibration_config {}}, {layer_type: \"Conv\" calibration_config {}}]",
                "1:68: override_layer_types[1]: layer_type \"Conv\" is overridden twice",
            ),
            (
                "override_layer_types { layer_type: \"Gemm\" calibration_config { arq_quantize { channel_wise: true } } }",
                "override_layer_types[0]: channel_wise: true is not possible for Gemm: its weights are quantized per tensor",
            ),
            ("override_layer_types { layer_type: \"Conv\" bogus: 1 }", "override_layer_types[0].bogus: unknown field"),
            ("nuq_config { mapping_file: \"a.json\" }", "1:1: nuq_config: non-uniform quantization (NUQ, nuq_config) is not supported"),
            ("tensor_quantize {}", "1:1: tensor_quantize: tensor_quantize is not supported"),
            ("common_config {\n arq_quantize {\n", "2:15: '{' is not closed: missing '}' before the end of the file (at 3:1)"),
        ] {
            let e = error(text);
            assert!(e.contains(want), "{text:?}\n  got: {e}\n want: {want}");
        }
    }

    #[test]
    fn bad_values_name_line_column_field_and_range() {
        for (text, want) in [
            ("batch_num: 0", "1:12: batch_num: must be at least 1"),
            ("batch_num: -1", "1:12: batch_num: expected an unsigned 32-bit integer, found number -1"),
            ("batch_num: 1.5", "expected an unsigned 32-bit integer, found number 1.5"),
            ("batch_num: \"4\"", "expected an unsigned 32-bit integer, found string \"4\""),
            ("batch_num: 4294967296", "expected an unsigned 32-bit integer"),
            ("activation_offset: yes", "1:20: activation_offset: expected true or false, found identifier yes"),
            ("do_fusion: 2", "do_fusion: expected true or false, found number 2"),
            ("fakequant_precision_mode: FP16", "expected one of FORCE_FP16_QUANT (1), found identifier FP16"),
            (
                "common_config { ifmr_quantize { search_step: 0 } }",
                "1:46: common_config.ifmr_quantize.search_step: must be a finite number > 0, found 0",
            ),
            ("common_config { ifmr_quantize { search_step: abc } }", "search_step: expected a number, found identifier abc"),
            ("common_config { ifmr_quantize { search_step: 0x10 } }", "search_step: expected a number, found number 0x10"),
            ("common_config { ifmr_quantize { search_range_start: -0.7 } }", "search_range_start: must be a finite number > 0, found -0.7"),
            (
                "common_config { ifmr_quantize {\n search_range_start: 1.2\n search_range_end: 1.1 } }",
                "3:20: common_config.ifmr_quantize.search_range_start/search_range_end: the search range [1.2, 1.1) is empty",
            ),
            ("common_config { ifmr_quantize { search_range_start: 1.5 } }", "the search range [1.5, 1.3) is empty"),
            ("common_config { ifmr_quantize { max_percentile: 1.5 } }", "max_percentile: must be in (0.5, 1], found 1.5"),
            ("common_config { ifmr_quantize { min_percentile: 0.3 } }", "min_percentile: must be in (0.5, 1], found 0.3"),
            ("common_config { ifmr_quantize { dst_type: INT4 } }", "dst_type: expected one of INT8 (1), INT16 (2), found identifier INT4"),
            ("common_config { hfmg_quantize { num_of_bins: 1000 } }", "num_of_bins: must be 1024, 2048, 4096 or 8192, found 1000"),
            ("common_config { dmq_balancer { migration_strength: 0.9 } }", "migration_strength: must be in [0.2, 0.8], found 0.9"),
            ("common_config { arq_quantize { quant_bits: 4 } }", "quant_bits: only 8-bit weights are supported, found 4"),
            ("common_config { ada_quantize { num_iteration: 0 } }", "num_iteration: must be at least 1"),
            ("common_config { ada_quantize { warm_start: nan } }", "warm_start: must be a finite number ≥ 0, found NaN"),
        ] {
            let e = error(text);
            assert!(e.contains(want), "{text:?}\n  got: {e}\n want: {want}");
        }
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quant.cfg");
        std::fs::write(&path, "batch_num: 8\nskip_layers: [\"a\"]\nbatch_num: 2\n").unwrap();
        let e = CalibrationConfig::from_file(&path).unwrap_err().to_string();
        assert_eq!(e, format!("{}:3:1: batch_num: given twice (first at 1:1); this field is not repeated", path.display()));
        let e = CalibrationConfig::from_file(&dir.path().join("missing.cfg")).unwrap_err().to_string();
        assert!(e.contains("missing.cfg: cannot read --calibration_config: No such file"), "{e}");
        std::fs::write(&path, "batch_num: 8\nskip_layers: [\"a\"]\n").unwrap();
        let cfg = CalibrationConfig::from_file(&path).unwrap();
        assert_eq!((cfg.batch_num, cfg.skip_layers.as_slice()), (8, ["a".to_string()].as_slice()));
    }
}

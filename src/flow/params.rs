//! The one-JSON flow file of the guide's repository (`quant_all_script.py`), in both dialects:
//! the repository's camelCase (`onnxPath`, `outputRootDir`, `inputShape`, `socVersion`,
//! `insertOpConf`, `quantInt8.calBatchSize`, `quantFp16`, beside `detPreParams`) and the
//! guide's snake_case (`onnx_path`, `input_shape`, `soc_version`, `insert_op_conf`,
//! `quant_int8.cali_batch_size`, `quant_fp16`, beside `det_pre_params`). A file mixing the
//! two spellings is an error naming both; unknown top-level keys are warnings.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::FlowError;
use crate::data::params::{Dialect, LoadedParams, load_params, parse_relaxed_json, resolve_beside_params};

/// One top-level key in both spellings.
#[derive(Clone, Copy)]
struct Key {
    repo: &'static str,
    guide: &'static str,
}

const ONNX_PATH: Key = Key { repo: "onnxPath", guide: "onnx_path" };
const OUTPUT_ROOT_DIR: Key = Key { repo: "outputRootDir", guide: "output_root_dir" };
const INPUT_SHAPE: Key = Key { repo: "inputShape", guide: "input_shape" };
const SOC_VERSION: Key = Key { repo: "socVersion", guide: "soc_version" };
const INSERT_OP_CONF: Key = Key { repo: "insertOpConf", guide: "insert_op_conf" };
const QUANT_INT8: Key = Key { repo: "quantInt8", guide: "quant_int8" };
const QUANT_FP16: Key = Key { repo: "quantFp16", guide: "quant_fp16" };
const CAL_BATCH_SIZE: Key = Key { repo: "calBatchSize", guide: "cali_batch_size" };
const KEYS: [Key; 7] = [ONNX_PATH, OUTPUT_ROOT_DIR, INPUT_SHAPE, SOC_VERSION, INSERT_OP_CONF, QUANT_INT8, QUANT_FP16];

/// What the flow file asks for, paths resolved.
#[derive(Debug, Clone)]
pub struct FlowParams {
    /// The flow file itself (also the preprocessing parameter file).
    pub path: PathBuf,
    pub dialect: Dialect,
    /// The float ONNX model.
    pub onnx_path: PathBuf,
    /// Where every output but the bins goes. Default `output_<socVersion>`, as the
    /// repository's `amct_onnx_act.sh` names it.
    pub output_root_dir: PathBuf,
    /// `--input_shape` of calibration and ATC, the shell quotes of the repository's JSON
    /// (`"\"images:12,3,640,640\""`) removed.
    pub input_shape: String,
    pub soc_version: String,
    /// The AIPP config for ATC (`--insert_op_conf`).
    pub insert_op_conf: Option<PathBuf>,
    /// The preprocessing section, when the file has one.
    pub preprocess: Option<LoadedParams>,
    /// `quantInt8` / `quant_int8`: calibration + the int8 OM, with its batch count.
    pub quant_int8: Option<usize>,
    /// Build the fp16 OM: `quantFp16` present, or neither quant section (as the script does).
    pub quant_fp16: bool,
    pub warnings: Vec<String>,
}

/// Reads `path`; `soc_version` overrides the file's.
pub fn load_flow_params(path: &Path, soc_version: Option<&str>) -> Result<FlowParams, FlowError> {
    let text = std::fs::read_to_string(path).map_err(|e| FlowError::params(path, e.to_string()))?;
    let root = parse_relaxed_json(&text).map_err(|e| FlowError::params(path, format!("invalid JSON: {e}")))?;
    let Value::Object(top) = root else { return Err(FlowError::params(path, "expected a JSON object at the top")) };
    let dialect = dialect_of(&top, path)?;
    let reader = Reader { top: &top, path, dialect };
    let mut warnings = Vec::new();
    for k in top.keys() {
        let known = KEYS.iter().any(|key| key.repo == k || key.guide == k)
            || Dialect::of_section(k).is_some()
            || k.ends_with("_post_params")
            || k.ends_with("PostParams");
        if !known {
            warnings.push(format!("{}: unknown key '{k}' ignored", path.display()));
        }
    }
    let onnx = reader.string(ONNX_PATH)?.ok_or_else(|| reader.missing(ONNX_PATH, "the float ONNX model's path"))?;
    let soc = match soc_version {
        Some(s) => s.to_string(),
        None => {
            reader.string(SOC_VERSION)?.ok_or_else(|| reader.missing(SOC_VERSION, "the chip, e.g. \"Ascend310P3\" (or --soc_version)"))?
        }
    };
    let input_shape = reader.string(INPUT_SHAPE)?.ok_or_else(|| reader.missing(INPUT_SHAPE, "e.g. \"images:1,3,640,640\""))?;
    let input_shape = unquote(&input_shape);
    let output_root_dir = reader.string(OUTPUT_ROOT_DIR)?.map(PathBuf::from).unwrap_or_else(|| PathBuf::from(format!("output_{soc}")));
    let insert_op_conf = reader.string(INSERT_OP_CONF)?.map(|p| resolve_beside_params(Path::new(&p), path));
    let quant_int8 = match reader.object(QUANT_INT8)? {
        None => None,
        Some(q) => Some(reader.batch_count(q)?),
    };
    let fp16_given = reader.object(QUANT_FP16)?.is_some();
    let has_section = top.keys().any(|k| Dialect::of_section(k).is_some());
    let preprocess = if has_section { Some(load_params(path, None).map_err(|e| FlowError::params(path, e.to_string()))?) } else { None };
    if quant_int8.is_some() && preprocess.is_none() {
        return Err(FlowError::params(
            path,
            format!(
                "'{}' needs a preprocessing section ('{}') to make the calibration bins from",
                reader.name(QUANT_INT8),
                if dialect == Dialect::Repository { "detPreParams" } else { "det_pre_params" }
            ),
        ));
    }
    if let Some(p) = &preprocess {
        warnings.extend(p.warnings.iter().cloned());
    }
    Ok(FlowParams {
        path: path.to_path_buf(),
        dialect,
        onnx_path: resolve_beside_params(Path::new(&onnx), path),
        output_root_dir,
        input_shape,
        soc_version: soc,
        insert_op_conf,
        preprocess,
        quant_int8,
        quant_fp16: fp16_given || quant_int8.is_none(),
        warnings,
    })
}

/// `"\"images:1,3,640,640\""` → `images:1,3,640,640` (the repository's JSON carries the quotes
/// its script needs for `os.system`).
fn unquote(s: &str) -> String {
    let t = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.trim().to_string();
        }
    }
    t.to_string()
}

/// The dialect of the file's own keys (sections decide when it has none of them); both
/// spellings in one file is an error naming the pair.
fn dialect_of(top: &Map<String, Value>, path: &Path) -> Result<Dialect, FlowError> {
    let repo: Vec<&Key> = KEYS.iter().filter(|k| top.contains_key(k.repo)).collect();
    let guide: Vec<&Key> = KEYS.iter().filter(|k| top.contains_key(k.guide)).collect();
    match (repo.first(), guide.first()) {
        (Some(r), Some(g)) => Err(FlowError::params(
            path,
            format!(
                "mixes the two spellings: '{}' is the repository's camelCase ('{}' in the guide's snake_case) but '{}' is the guide's \
                 ('{}' in camelCase); use one of them throughout",
                r.repo, r.guide, g.guide, g.repo
            ),
        )),
        (Some(_), None) => Ok(Dialect::Repository),
        (None, Some(_)) => Ok(Dialect::Guide),
        (None, None) => {
            Ok(if top.keys().any(|k| Dialect::of_section(k) == Some(Dialect::Repository)) { Dialect::Repository } else { Dialect::Guide })
        }
    }
}

struct Reader<'a> {
    top: &'a Map<String, Value>,
    path: &'a Path,
    dialect: Dialect,
}

impl Reader<'_> {
    fn name(&self, key: Key) -> &'static str {
        match self.dialect {
            Dialect::Repository => key.repo,
            Dialect::Guide => key.guide,
        }
    }

    fn missing(&self, key: Key, what: &str) -> FlowError {
        FlowError::params(self.path, format!("missing required key '{}' ({what})", self.name(key)))
    }

    fn string(&self, key: Key) -> Result<Option<String>, FlowError> {
        match self.top.get(self.name(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(other) => {
                Err(FlowError::params(self.path, format!("key '{}': expected a non-empty string, found {other}", self.name(key))))
            }
        }
    }

    fn object(&self, key: Key) -> Result<Option<&Map<String, Value>>, FlowError> {
        match self.top.get(self.name(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(other) => {
                Err(FlowError::params(self.path, format!("key '{}': expected an object ({{ ... }}), found {other}", self.name(key))))
            }
        }
    }

    /// `calBatchSize` / `cali_batch_size`: the number of calibration batches (default 1, as
    /// amct_onnx's `--batch_num`).
    fn batch_count(&self, q: &Map<String, Value>) -> Result<usize, FlowError> {
        let (own, other) = match self.dialect {
            Dialect::Repository => (CAL_BATCH_SIZE.repo, CAL_BATCH_SIZE.guide),
            Dialect::Guide => (CAL_BATCH_SIZE.guide, CAL_BATCH_SIZE.repo),
        };
        let section = self.name(QUANT_INT8);
        if q.contains_key(other) {
            return Err(FlowError::params(self.path, format!("'{section}': '{other}' is the other spelling of '{own}'; write '{own}'")));
        }
        if let Some(k) = q.keys().find(|k| *k != own) {
            return Err(FlowError::params(self.path, format!("'{section}': unknown key '{k}' (expected '{own}')")));
        }
        match q.get(own) {
            None => Ok(1),
            Some(v) => v
                .as_u64()
                .filter(|&n| n >= 1)
                .map(|n| n as usize)
                .ok_or_else(|| FlowError::params(self.path, format!("'{section}.{own}': expected a whole number ≥ 1, found {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FlowParams, FlowError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flow.json");
        std::fs::write(&path, text).unwrap();
        load_flow_params(&path, None)
    }

    #[test]
    fn the_repository_json_reads() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seed/models/yolov6_params.json")).unwrap();
        let p = load(&text).unwrap();
        assert_eq!(p.dialect, Dialect::Repository);
        assert_eq!(p.input_shape, "images:12,3,640,640");
        assert_eq!((p.soc_version.as_str(), p.quant_int8, p.quant_fp16), ("Ascend310P3", Some(16), true));
        assert_eq!(p.output_root_dir, PathBuf::from("quant_test/"));
        assert!(p.onnx_path.ends_with("models/yolov6n.onnx"));
        assert_eq!(p.preprocess.unwrap().params.batch_size, 12);
    }

    #[test]
    fn the_guide_template_reads_with_the_default_output_folder() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seed/scripts/model_pre_params_template.json");
        let p = load(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(p.dialect, Dialect::Guide);
        assert_eq!(p.input_shape, "INPUT_NAME:12,3,640,640");
        assert_eq!(p.output_root_dir, PathBuf::from("output_Ascend310P3"));
        assert_eq!(p.quant_int8, Some(16));
    }

    #[test]
    fn mixed_spellings_and_bad_values_name_the_keys() {
        let e = load(r#"{"onnxPath": "m.onnx", "soc_version": "Ascend310P3", "inputShape": "x:1"}"#).unwrap_err().to_string();
        assert!(e.contains("'onnxPath' is the repository's camelCase ('onnx_path' in the guide's snake_case)"), "{e}");
        assert!(e.contains("'soc_version' is the guide's ('socVersion' in camelCase)"), "{e}");
        let e = load(r#"{"onnxPath": "m.onnx", "socVersion": "S", "inputShape": "x:1", "quantInt8": {"cali_batch_size": 2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'quantInt8': 'cali_batch_size' is the other spelling of 'calBatchSize'"), "{e}");
        let e = load(r#"{"onnxPath": "m.onnx", "socVersion": "S", "inputShape": "x:1", "quantInt8": {}}"#).unwrap_err().to_string();
        assert!(e.contains("'quantInt8' needs a preprocessing section ('detPreParams')"), "{e}");
        let e = load(r#"{"onnx_path": "m.onnx", "input_shape": "x:1"}"#).unwrap_err().to_string();
        assert!(e.contains("missing required key 'soc_version'"), "{e}");
        let p = load(r#"{"onnx_path": "m.onnx", "input_shape": "x:1", "soc_version": "S", "extra": 1}"#).unwrap();
        assert!(p.quant_fp16 && p.quant_int8.is_none());
        assert!(p.warnings.iter().any(|w| w.contains("unknown key 'extra'")), "{:?}", p.warnings);
    }
}

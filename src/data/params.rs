//! The preprocessing parameter file (`PARAMS.json`) users already have for their calibration
//! scripts, in either of its two dialects:
//! - the guide's: a `det_pre_params` section (any `*_pre_params`) with snake_case keys
//!   `img_root`, `fixed_scale`, `batch_size`, `des_channels`, `des_height`, `des_width`,
//!   `is_BGR2RGB`, `means`, `stds`;
//! - the repository's (`models/yolov6_params.json`, read by `preprocess_data.py`): a
//!   `detPreParams` section (any `*PreParams`) with camelCase keys `imgRoot`,
//!   `calibrationDataRoot`, `isFixResize`, `batchSize`, `netInputChannels`, `netInputHeight`,
//!   `netInputWidth`, `isBGR2RGB`, `means`, `scales` (= 1/std).
//!
//! A section uses one dialect: a key of the other one is an error naming both spellings;
//! unknown keys are warnings. Files often have `#` / `//` comments and trailing commas: that
//! relaxed syntax is tolerated; everything else is an error with the line and column of the
//! original file.
//!
//! Keys of ours, in both spellings, to keep other pipelines' behaviour reachable (the
//! defaults are what `preprocess_data.py` does):
//! - `pad_value` / `padValue`: the letterbox pad level, 0..=255, default 0 (the script's
//!   black border); 114 is YOLOv5/v8's own letterbox.
//! - `resize_input` / `resizeInput`: `"float32"` (default: convert the 8-bit image to
//!   float32, then resize, as the script does) or `"uint8"` (resize the 8-bit image with
//!   OpenCV's fixed-point arithmetic, as C++ OpenCV pipelines and ascend-ptq before issue 14
//!   do; the bins are then the rounded levels).
//! - `pad_mode` / `padMode`: `"center"` (default, the odd pixel bottom/right) or `"top_left"`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The section used when the file has several and none is chosen.
pub const DEFAULT_SECTION: &str = "det_pre_params";
/// The same for the repository's dialect.
pub const DEFAULT_REPO_SECTION: &str = "detPreParams";

/// The reference script's letterbox pad level (black).
pub const DEFAULT_PAD_VALUE: u8 = 0;
/// YOLOv5/v8's own letterbox pad level (`"pad_value": 114` selects it).
pub const YOLO_PAD_VALUE: u8 = 114;

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    // The I/O error is part of the message, not a `source`: `{:#}` would print it twice.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}:{line}:{column}: invalid JSON: {reason}")]
    Syntax { path: PathBuf, line: usize, column: usize, reason: String },
    #[error("{path}: {detail}")]
    Section { path: PathBuf, detail: String },
    #[error("{path}: section '{section}': missing required key '{key}' ({expected})")]
    MissingKey { path: PathBuf, section: String, key: String, expected: String },
    #[error("{path}: section '{section}': key '{key}': expected {expected}, found {found}")]
    BadValue { path: PathBuf, section: String, key: String, expected: String, found: String },
    /// A key spelled in the other dialect than the section's.
    #[error("{path}: section '{section}': {detail}")]
    MixedDialect { path: PathBuf, section: String, detail: String },
}

/// Which spelling a section uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// The guide's `det_pre_params`: snake_case keys, `stds`.
    Guide,
    /// The repository's `detPreParams`: camelCase keys, `scales` = 1/std, `calibrationDataRoot`.
    Repository,
}

impl Dialect {
    /// The dialect a section name is spelled in (`*_pre_params`, `*PreParams`), if either.
    pub fn of_section(name: &str) -> Option<Dialect> {
        if name.ends_with("_pre_params") {
            Some(Dialect::Guide)
        } else if name.ends_with("PreParams") {
            Some(Dialect::Repository)
        } else {
            None
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Dialect::Guide => "the guide's snake_case keys (det_pre_params)",
            Dialect::Repository => "the repository's camelCase keys (detPreParams, read by preprocess_data.py)",
        }
    }
}

/// One parameter's spelling in each dialect (`None`: that dialect has no such key).
#[derive(Debug, Clone, Copy)]
struct Key {
    guide: Option<&'static str>,
    repo: Option<&'static str>,
}

impl Key {
    const fn both(guide: &'static str, repo: &'static str) -> Key {
        Key { guide: Some(guide), repo: Some(repo) }
    }

    fn name(self, dialect: Dialect) -> Option<&'static str> {
        match dialect {
            Dialect::Guide => self.guide,
            Dialect::Repository => self.repo,
        }
    }
}

const IMG_ROOT: Key = Key::both("img_root", "imgRoot");
const FIXED_SCALE: Key = Key::both("fixed_scale", "isFixResize");
const BATCH_SIZE: Key = Key::both("batch_size", "batchSize");
const CHANNELS: Key = Key::both("des_channels", "netInputChannels");
const HEIGHT: Key = Key::both("des_height", "netInputHeight");
const WIDTH: Key = Key::both("des_width", "netInputWidth");
const BGR2RGB: Key = Key::both("is_BGR2RGB", "isBGR2RGB");
const MEANS: Key = Key::both("means", "means");
/// The guide gives the divisor, the repository its inverse: the same concept, two encodings.
const STDS_OR_SCALES: Key = Key::both("stds", "scales");
const CALIBRATION_DATA_ROOT: Key = Key { guide: None, repo: Some("calibrationDataRoot") };
const PAD_VALUE: Key = Key::both("pad_value", "padValue");
const PAD_MODE: Key = Key::both("pad_mode", "padMode");
const RESIZE_INPUT: Key = Key::both("resize_input", "resizeInput");

const KEYS: [Key; 13] = [
    IMG_ROOT,
    FIXED_SCALE,
    BATCH_SIZE,
    CHANNELS,
    HEIGHT,
    WIDTH,
    BGR2RGB,
    MEANS,
    STDS_OR_SCALES,
    CALIBRATION_DATA_ROOT,
    PAD_VALUE,
    PAD_MODE,
    RESIZE_INPUT,
];

/// Where the letterbox puts the resized image inside the target size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Equal padding on both sides (the odd pixel goes to the bottom/right), as YOLO does.
    Center,
    /// All padding at the bottom/right.
    TopLeft,
}

/// Which pixels `cv2.resize` interpolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeInput {
    /// The image converted to float32 first, as `preprocess_data.py` does (the default).
    Float32,
    /// The 8-bit image, OpenCV's fixed-point resize (C++ OpenCV pipelines).
    Uint8,
}

/// One preprocessing section, validated (the same fields whichever dialect it was written in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreprocessParams {
    /// The image folder, resolved (see [`load_params`]).
    pub img_root: PathBuf,
    /// `true`: keep the aspect ratio and pad (letterbox); `false`: stretch.
    pub fixed_scale: bool,
    pub batch_size: usize,
    /// 1 (grayscale) or 3.
    pub des_channels: usize,
    pub des_height: usize,
    pub des_width: usize,
    /// Swap BGR (OpenCV order) to RGB before normalising.
    pub is_bgr2rgb: bool,
    /// Per output channel, in the channel order after the swap.
    pub means: Vec<f64>,
    /// The divisors (the repository dialect's `scales` become `1.0 / scale`, in f64 as the
    /// script computes them).
    pub stds: Vec<f64>,
    pub pad_value: u8,
    pub pad_mode: PadMode,
    pub resize_input: ResizeInput,
}

impl PreprocessParams {
    /// A stable identifier of everything that changes the produced tensors (all fields but
    /// `img_root`, so the same parameters give the same hash on every machine):
    /// `sha256:` + hex of SHA-256 over a canonical JSON with a fixed key order.
    pub fn hash(&self) -> String {
        let canonical = serde_json::json!([
            ["fixed_scale", self.fixed_scale],
            ["batch_size", self.batch_size],
            ["des_channels", self.des_channels],
            ["des_height", self.des_height],
            ["des_width", self.des_width],
            ["is_BGR2RGB", self.is_bgr2rgb],
            ["means", self.means],
            ["stds", self.stds],
            ["pad_value", self.pad_value],
            ["pad_mode", self.pad_mode],
            ["resize_input", self.resize_input],
        ]);
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The shape of one output file: `[batch_size, des_channels, des_height, des_width]`.
    pub fn batch_shape(&self) -> [usize; 4] {
        [self.batch_size, self.des_channels, self.des_height, self.des_width]
    }
}

/// A parsed parameter file: the chosen section and the warnings to show the user.
#[derive(Debug, Clone)]
pub struct LoadedParams {
    pub params: PreprocessParams,
    pub section: String,
    pub warnings: Vec<String>,
    pub dialect: Dialect,
    /// The repository dialect's `calibrationDataRoot` as written (relative to the current
    /// directory, as for the script).
    pub calibration_data_root: Option<PathBuf>,
}

/// Reads and validates `path`. `section` picks a section; without it the file's only
/// section, or `det_pre_params` / `detPreParams` when several, is used (a file that is
/// itself a flat parameter object is accepted too). A relative `img_root` is resolved against
/// the parameter file's folder, or against the current directory when only that one exists.
pub fn load_params(path: &Path, section: Option<&str>) -> Result<LoadedParams, ParamsError> {
    let text = std::fs::read_to_string(path).map_err(|error| ParamsError::Io { path: path.into(), error })?;
    let mut loaded = parse_params(&text, path, section)?;
    loaded.params.img_root = resolve_beside_params(&loaded.params.img_root, path);
    Ok(loaded)
}

/// A relative path of a parameter file, resolved as `img_root` is: against the file's
/// folder, or against the current directory when only there it exists.
pub fn resolve_beside_params(root: &Path, params_path: &Path) -> PathBuf {
    if root.is_absolute() {
        return root.to_path_buf();
    }
    let beside = without_dot_components(&params_path.parent().unwrap_or(Path::new("")).join(root));
    if beside.exists() || !root.exists() { beside } else { without_dot_components(root) }
}

/// `dir/./imgs` → `dir/imgs`, for readable messages (`..` is kept: symlinks make it meaningful).
fn without_dot_components(path: &Path) -> PathBuf {
    let cleaned: PathBuf = path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() { PathBuf::from(".") } else { cleaned }
}

/// Parses the text of a parameter file (`path` is only used in messages); `img_root` is kept
/// as written.
pub fn parse_params(text: &str, path: &Path, section: Option<&str>) -> Result<LoadedParams, ParamsError> {
    let root = parse_relaxed_json(text).map_err(|e| syntax_error(e, text, path))?;
    let Value::Object(top) = root else {
        return Err(ParamsError::Section {
            path: path.into(),
            detail: format!("expected a JSON object at the top, found {}", kind(&root)),
        });
    };
    let (name, object, dialect) = pick_section(&top, section, path)?;
    let reader = SectionReader { path, section: &name, object, dialect };
    let warnings = reader.check_keys()?;
    let params = reader.read()?;
    let calibration_data_root = reader.calibration_data_root()?;
    Ok(LoadedParams { params, section: name, warnings, dialect, calibration_data_root })
}

type Picked<'a> = (String, &'a Map<String, Value>, Dialect);

fn pick_section<'a>(top: &'a Map<String, Value>, chosen: Option<&str>, path: &Path) -> Result<Picked<'a>, ParamsError> {
    let sections: Vec<&String> = top.keys().filter(|k| Dialect::of_section(k).is_some()).collect();
    let as_object = |name: &str| match top.get(name) {
        // A chosen name of neither pattern (e.g. `preprocess`) is read by its keys.
        Some(Value::Object(o)) => Ok((name.to_string(), o, Dialect::of_section(name).unwrap_or_else(|| dialect_of_keys(o)))),
        Some(other) => Err(ParamsError::Section {
            path: path.into(),
            detail: format!("section '{name}' must be a JSON object, found {}", kind(other)),
        }),
        None => Err(ParamsError::Section {
            path: path.into(),
            detail: format!("no section '{name}'; the file has: {}", list_or_none(&sections)),
        }),
    };
    if let Some(name) = chosen {
        return as_object(name);
    }
    let defaults: Vec<&str> = [DEFAULT_SECTION, DEFAULT_REPO_SECTION].into_iter().filter(|d| top.contains_key(*d)).collect();
    match (sections.as_slice(), defaults.as_slice()) {
        ([], _) if top.contains_key("img_root") || top.contains_key("imgRoot") => {
            Ok(("(top level)".to_string(), top, dialect_of_keys(top)))
        }
        ([], _) => Err(ParamsError::Section {
            path: path.into(),
            detail: format!(
                "no preprocessing section (expected \"{DEFAULT_SECTION}\": {{ ... }} as in the guide or \"{DEFAULT_REPO_SECTION}\": {{ ... }} as in the repository's JSON)"
            ),
        }),
        ([only], _) => as_object(only),
        (_, [default]) => as_object(default),
        _ => Err(ParamsError::Section {
            path: path.into(),
            detail: format!("several sections ({}); choose one with --section", list_or_none(&sections)),
        }),
    }
}

fn dialect_of_keys(object: &Map<String, Value>) -> Dialect {
    let repo = KEYS.iter().filter(|k| k.repo.is_some_and(|r| Some(r) != k.guide && object.contains_key(r))).count();
    let guide = KEYS.iter().filter(|k| k.guide.is_some_and(|g| Some(g) != k.repo && object.contains_key(g))).count();
    if repo > guide { Dialect::Repository } else { Dialect::Guide }
}

fn list_or_none(names: &[&String]) -> String {
    if names.is_empty() {
        "no '*_pre_params' or '*PreParams' section".into()
    } else {
        names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    }
}

struct SectionReader<'a> {
    path: &'a Path,
    section: &'a str,
    object: &'a Map<String, Value>,
    dialect: Dialect,
}

impl SectionReader<'_> {
    /// Unknown keys are warnings; a key of the other dialect is an error.
    fn check_keys(&self) -> Result<Vec<String>, ParamsError> {
        let other = match self.dialect {
            Dialect::Guide => Dialect::Repository,
            Dialect::Repository => Dialect::Guide,
        };
        let mut warnings = Vec::new();
        for key in self.object.keys() {
            if KEYS.iter().any(|k| k.name(self.dialect) == Some(key.as_str())) {
                continue;
            }
            let Some(known) = KEYS.iter().find(|k| k.name(other) == Some(key.as_str())) else {
                warnings.push(format!("{}: section '{}': unknown key '{key}' ignored", self.path.display(), self.section));
                continue;
            };
            let detail = match known.name(self.dialect) {
                Some(own) => {
                    let encoding = if own == "stds" || own == "scales" { " (scales = 1/stds)" } else { "" };
                    format!(
                        "'{key}' is the spelling of {}, but this section uses {}: write '{own}' instead of '{key}'{encoding}, \
                         or write the whole section in one dialect",
                        other.describe(),
                        self.dialect.describe()
                    )
                }
                None => format!(
                    "'{key}' is a key of {} with no spelling in {}: det_pre_params bins go to --out DIR \
                     (default data/calibration/<img_root name>_batch<batch_size>/)",
                    other.describe(),
                    self.dialect.describe()
                ),
            };
            return Err(ParamsError::MixedDialect { path: self.path.into(), section: self.section.into(), detail });
        }
        Ok(warnings)
    }

    fn name(&self, key: Key) -> &'static str {
        key.name(self.dialect).expect("a key of both dialects")
    }

    fn read(&self) -> Result<PreprocessParams, ParamsError> {
        let img_root_key = self.name(IMG_ROOT);
        let img_root = match self.required(img_root_key, "a folder path string")? {
            Value::String(s) if !s.is_empty() => PathBuf::from(s),
            other => return Err(self.bad(img_root_key, "a non-empty folder path string", other)),
        };
        let des_channels = self.int(CHANNELS, 1, 3)?;
        if des_channels == 2 {
            return Err(self.bad(self.name(CHANNELS), "1 (grayscale) or 3 (colour)", &Value::from(2)));
        }
        let means = self.floats(MEANS, des_channels)?;
        let stds = self.stds(des_channels)?;
        let pad_value = match self.optional(PAD_VALUE) {
            None => DEFAULT_PAD_VALUE,
            Some(v) => match v.as_f64() {
                Some(f) if f.fract() == 0.0 && (0.0..=255.0).contains(&f) => f as u8,
                _ => return Err(self.bad(self.name(PAD_VALUE), "an integer 0..=255", v)),
            },
        };
        let pad_mode = match self.optional(PAD_MODE) {
            None => PadMode::Center,
            Some(Value::String(s)) if s == "center" => PadMode::Center,
            Some(Value::String(s)) if s == "top_left" => PadMode::TopLeft,
            Some(v) => return Err(self.bad(self.name(PAD_MODE), "\"center\" or \"top_left\"", v)),
        };
        let resize_input = match self.optional(RESIZE_INPUT) {
            None => ResizeInput::Float32,
            Some(Value::String(s)) if s == "float32" => ResizeInput::Float32,
            Some(Value::String(s)) if s == "uint8" => ResizeInput::Uint8,
            Some(v) => return Err(self.bad(self.name(RESIZE_INPUT), "\"float32\" or \"uint8\"", v)),
        };
        Ok(PreprocessParams {
            img_root,
            fixed_scale: self.flag(FIXED_SCALE)?,
            batch_size: self.int(BATCH_SIZE, 1, 1 << 20)?,
            des_channels,
            des_height: self.int(HEIGHT, 1, 1 << 16)?,
            des_width: self.int(WIDTH, 1, 1 << 16)?,
            is_bgr2rgb: self.flag(BGR2RGB)?,
            means,
            stds,
            pad_value,
            pad_mode,
            resize_input,
        })
    }

    /// `stds`, or `1.0 / scales` for the repository's dialect.
    fn stds(&self, channels: usize) -> Result<Vec<f64>, ParamsError> {
        let key = self.name(STDS_OR_SCALES);
        let values = self.floats(STDS_OR_SCALES, channels)?;
        if let Some(i) = values.iter().position(|s| *s == 0.0) {
            let why = match self.dialect {
                Dialect::Guide => "non-zero values (pixels are divided by them)",
                Dialect::Repository => "non-zero values (pixels are divided by 1/scale)",
            };
            return Err(self.bad(key, why, &format!("0 at index {i}")));
        }
        Ok(match self.dialect {
            Dialect::Guide => values,
            Dialect::Repository => values.iter().map(|s| 1.0 / s).collect(),
        })
    }

    fn calibration_data_root(&self) -> Result<Option<PathBuf>, ParamsError> {
        let Some(key) = CALIBRATION_DATA_ROOT.name(self.dialect) else { return Ok(None) };
        match self.object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(PathBuf::from(s))),
            Some(other) => Err(self.bad(key, "a non-empty folder path string", other)),
        }
    }

    fn optional(&self, key: Key) -> Option<&Value> {
        self.object.get(self.name(key))
    }

    fn required(&self, key: &str, expected: &str) -> Result<&Value, ParamsError> {
        self.object.get(key).ok_or_else(|| ParamsError::MissingKey {
            path: self.path.into(),
            section: self.section.into(),
            key: key.into(),
            expected: format!("expected {expected}"),
        })
    }

    fn bad(&self, key: &str, expected: &str, found: &dyn std::fmt::Display) -> ParamsError {
        ParamsError::BadValue {
            path: self.path.into(),
            section: self.section.into(),
            key: key.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    fn int(&self, key: Key, min: usize, max: usize) -> Result<usize, ParamsError> {
        let key = self.name(key);
        let expected = format!("an integer {min}..={max}");
        let v = self.required(key, &expected)?;
        match v.as_f64() {
            Some(f) if f.fract() == 0.0 && f >= min as f64 && f <= max as f64 => Ok(f as usize),
            _ => Err(self.bad(key, &expected, v)),
        }
    }

    /// 0/1 as the scripts write them; JSON booleans are accepted too.
    fn flag(&self, key: Key) -> Result<bool, ParamsError> {
        let key = self.name(key);
        let v = self.required(key, "0 or 1")?;
        match v {
            Value::Bool(b) => Ok(*b),
            _ => match v.as_f64() {
                Some(0.0) => Ok(false),
                Some(1.0) => Ok(true),
                _ => Err(self.bad(key, "0 or 1", v)),
            },
        }
    }

    fn floats(&self, key: Key, channels: usize) -> Result<Vec<f64>, ParamsError> {
        let key = self.name(key);
        let expected = format!("a list of {channels} numbers (one per {})", self.name(CHANNELS));
        let v = self.required(key, &expected)?;
        let values: Option<Vec<f64>> = v.as_array().map(|a| a.iter().map(Value::as_f64).collect()).unwrap_or(None);
        match values {
            Some(values) if values.len() == channels => Ok(values),
            _ => Err(self.bad(key, &expected, v)),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses JSON after blanking `#` and `//` comments and trailing commas outside strings.
/// Blanking replaces every removed byte with a space (newlines are kept), so the positions in
/// serde_json's errors are positions in the original text.
pub fn parse_relaxed_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&blank_relaxed_syntax(text))
}

fn blank_relaxed_syntax(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut in_string = false;
    let mut escaped = false;
    let mut pending_comma: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let comment = b == b'#' || (b == b'/' && bytes.get(i + 1) == Some(&b'/'));
        if comment {
            while i < bytes.len() && bytes[i] != b'\n' {
                if bytes[i] != b'\r' {
                    bytes[i] = b' ';
                }
                i += 1;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            b',' => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(c) = pending_comma.take() {
                    bytes[c] = b' ';
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => pending_comma = None,
        }
        i += 1;
    }
    // Only ASCII bytes of comments were replaced by spaces, and multi-byte characters inside
    // comments became runs of spaces, so the result is still valid UTF-8.
    String::from_utf8(bytes).expect("blanking keeps UTF-8 valid")
}

/// serde_json counts columns in bytes of the blanked text; report characters of the original line.
fn syntax_error(e: serde_json::Error, text: &str, path: &Path) -> ParamsError {
    let line = e.line();
    let byte_col = e.column();
    let column = text
        .lines()
        .nth(line.saturating_sub(1))
        .map(|l| {
            let upto = byte_col.min(l.len());
            let mut end = upto;
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            l[..end].chars().count() + usize::from(end < upto)
        })
        .unwrap_or(byte_col);
    let reason = e.to_string();
    // serde_json appends " at line L column C" in its own (byte) terms; drop it.
    let reason = reason.split(" at line ").next().unwrap_or(&reason).to_string();
    ParamsError::Syntax { path: path.into(), line, column, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
    "det_pre_params":
    {
        "img_root":"./imgs",   # where the photos are
        "fixed_scale":1,
        "batch_size":1,
        "des_channels":3,
        "des_height":640,
        "des_width":640,
        "is_BGR2RGB":1,
        "means":[0, 0, 0],
        "stds":[255, 255, 255],
    },
    // keys used by later steps (post-processing etc.) may follow and are ignored here
    "det_post_params": {"thresh": 0.3, "url": "http://x/#y",},
}
"#;

    #[test]
    fn seed_file_with_comments_and_trailing_commas() {
        let loaded = parse_params(SEED, Path::new("p.json"), None).unwrap();
        assert_eq!(loaded.section, "det_pre_params");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let p = loaded.params;
        assert_eq!(p.img_root, PathBuf::from("./imgs"));
        assert!(p.fixed_scale && p.is_bgr2rgb);
        assert_eq!(p.batch_shape(), [1, 3, 640, 640]);
        assert_eq!(p.stds, vec![255.0; 3]);
        // The reference script's black border and float resize (issue 14).
        assert_eq!((p.pad_value, p.pad_mode, p.resize_input), (0, PadMode::Center, ResizeInput::Float32));
        assert_eq!(loaded.dialect, Dialect::Guide);
    }

    /// `models/yolov6_params.json` of the reference repository, verbatim.
    const REPO: &str = r#"{
	"detPreParams":
	{
		"imgRoot":"./imgs",
		"calibrationDataRoot":"./calibration_data",
		"isFixResize":1,
		"batchSize":12,
		"netInputChannels":3,
		"netInputHeight":640,
		"netInputWidth":640,
		"isBGR2RGB":1,
		"means":[0, 0, 0],
		"scales":[0.00392157, 0.00392157, 0.00392157]
	},

	"onnxPath":"models/yolov6n.onnx",
	"outputRootDir":"quant_test/",
	"inputShape":"\"images:12,3,640,640\"",
	"socVersion":"Ascend310P3",
	"insertOpConf":"./models/model_aipp.cfg",

	"quantInt8":
	{
		"calBatchSize":16
	},
	"quantFp16":
	{

	}
}"#;

    #[test]
    fn repository_dialect_reads_camel_case_and_inverts_scales() {
        let loaded = parse_params(REPO, Path::new("yolov6_params.json"), None).unwrap();
        assert_eq!((loaded.section.as_str(), loaded.dialect), ("detPreParams", Dialect::Repository));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.calibration_data_root, Some(PathBuf::from("./calibration_data")));
        let p = loaded.params;
        assert_eq!(p.img_root, PathBuf::from("./imgs"));
        assert!(p.fixed_scale && p.is_bgr2rgb);
        assert_eq!(p.batch_shape(), [12, 3, 640, 640]);
        // Python's 1.0 / item, in f64.
        assert_eq!(p.stds, vec![1.0 / 0.00392157; 3]);
        assert_eq!((p.pad_value, p.resize_input), (0, ResizeInput::Float32));
        // The same parameters written in the guide's dialect hash the same.
        let guide =
            SEED.replace("[255, 255, 255]", &format!("[{0}, {0}, {0}]", 1.0 / 0.00392157)).replace("\"batch_size\":1", "\"batch_size\":12");
        assert_eq!(parse_params(&guide, Path::new("p.json"), None).unwrap().params.hash(), p.hash());
    }

    #[test]
    fn a_key_of_the_other_dialect_names_both_spellings() {
        let e = parse_params(&SEED.replace("\"batch_size\"", "\"batchSize\""), Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("section 'det_pre_params': 'batchSize' is the spelling of the repository's camelCase keys"), "{e}");
        assert!(e.contains("write 'batch_size' instead of 'batchSize'"), "{e}");
        let e = parse_params(&REPO.replace("\"scales\"", "\"stds\""), Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("section 'detPreParams': 'stds' is the spelling of the guide's snake_case keys"), "{e}");
        assert!(e.contains("write 'scales' instead of 'stds' (scales = 1/stds)"), "{e}");
        let e = parse_params(&REPO.replace("\"isFixResize\":1,", "\"isFixResize\":1, \"pad_value\": 114,"), Path::new("p.json"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("write 'padValue' instead of 'pad_value'"), "{e}");
        let with_root = SEED.replace("\"fixed_scale\":1,", "\"fixed_scale\":1, \"calibrationDataRoot\": \"c\",");
        let e = parse_params(&with_root, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("'calibrationDataRoot' is a key of the repository's camelCase keys") && e.contains("--out DIR"), "{e}");
        // Unknown keys stay warnings in both dialects.
        let odd = REPO.replace("\"isFixResize\":1,", "\"isFixResize\":1, \"letterboxColour\": 3,");
        let loaded = parse_params(&odd, Path::new("p.json"), None).unwrap();
        assert_eq!(loaded.warnings, ["p.json: section 'detPreParams': unknown key 'letterboxColour' ignored"]);
    }

    #[test]
    fn old_behaviour_keys_in_both_spellings() {
        let old = SEED.replace("\"fixed_scale\":1,", "\"fixed_scale\":1, \"pad_value\": 114, \"resize_input\": \"uint8\",");
        let p = parse_params(&old, Path::new("p.json"), None).unwrap().params;
        assert_eq!((p.pad_value, p.resize_input), (YOLO_PAD_VALUE, ResizeInput::Uint8));
        let old = REPO
            .replace("\"isFixResize\":1,", "\"isFixResize\":1, \"padValue\": 114, \"resizeInput\": \"uint8\", \"padMode\": \"top_left\",");
        let p = parse_params(&old, Path::new("p.json"), None).unwrap().params;
        assert_eq!((p.pad_value, p.resize_input, p.pad_mode), (114, ResizeInput::Uint8, PadMode::TopLeft));
        let bad = SEED.replace("\"fixed_scale\":1,", "\"fixed_scale\":1, \"resize_input\": \"u8\",");
        let e = parse_params(&bad, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("key 'resize_input': expected \"float32\" or \"uint8\", found \"u8\""), "{e}");
        let a = parse_params(SEED, Path::new("p.json"), None).unwrap().params;
        let b =
            parse_params(&SEED.replace("\"fixed_scale\":1,", "\"fixed_scale\":1, \"resize_input\": \"uint8\","), Path::new("p.json"), None)
                .unwrap()
                .params;
        assert_ne!(a.hash(), b.hash(), "the resize input changes the tensors");
    }

    #[test]
    fn default_section_of_either_dialect_and_flat_files() {
        let both = "{\"det_pre_params\": {}, \"detPreParams\": {}}";
        let e = parse_params(both, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("several sections") && e.contains("'detPreParams'"), "{e}");
        let with_rec = REPO.replace("\"onnxPath\"", "\"recPreParams\": {}, \"onnxPath\"");
        assert_eq!(parse_params(&with_rec, Path::new("p.json"), None).unwrap().section, "detPreParams");
        let flat = r#"{"imgRoot": "i", "isFixResize": 0, "batchSize": 1, "netInputChannels": 1, "netInputHeight": 8,
            "netInputWidth": 8, "isBGR2RGB": 0, "means": [0], "scales": [0.5]}"#;
        let loaded = parse_params(flat, Path::new("p.json"), None).unwrap();
        assert_eq!((loaded.dialect, loaded.params.stds.clone()), (Dialect::Repository, vec![2.0]));
        let e = parse_params("{\"x\": 1}", Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("\"det_pre_params\"") && e.contains("\"detPreParams\""), "{e}");
    }

    #[test]
    fn strings_keep_comment_characters_and_commas() {
        let v = parse_relaxed_json("{\"a\": \"x # y // z,]\", \"b\": [1,2,],}").unwrap();
        assert_eq!(v["a"], "x # y // z,]");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn syntax_error_has_original_line_and_column() {
        let text = "{\n  # comment ü\n  \"a\": 1,\n  \"b\" 2\n}\n";
        let e = parse_params(text, Path::new("p.json"), None).unwrap_err();
        assert!(matches!(e, ParamsError::Syntax { line: 4, column: 7, .. }), "{e}");
        assert!(e.to_string().starts_with("p.json:4:7: invalid JSON: expected `:`"), "{e}");
    }

    #[test]
    fn hash_is_stable_and_ignores_img_root() {
        let a = parse_params(SEED, Path::new("p.json"), None).unwrap().params;
        let mut b = a.clone();
        b.img_root = "/elsewhere".into();
        assert_eq!(a.hash(), b.hash());
        b.stds[0] = 58.395;
        assert_ne!(a.hash(), b.hash());
        assert!(a.hash().starts_with("sha256:") && a.hash().len() == 7 + 64);
    }

    #[test]
    fn sections_are_chosen_or_reported() {
        let two = r#"{"det_pre_params": {}, "rec_pre_params": {"img_root": "r", "fixed_scale": 0, "batch_size": 2,
            "des_channels": 1, "des_height": 48, "des_width": 320, "is_BGR2RGB": 0, "means": [127.5], "stds": [127.5]}}"#;
        let rec = parse_params(two, Path::new("p.json"), Some("rec_pre_params")).unwrap();
        assert_eq!(rec.params.batch_shape(), [2, 1, 48, 320]);
        let e = parse_params(two, Path::new("p.json"), Some("cls_pre_params")).unwrap_err().to_string();
        assert!(e.contains("no section 'cls_pre_params'") && e.contains("'rec_pre_params'"), "{e}");
        let e = parse_params(two, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("missing required key 'img_root'"), "default section is det_pre_params: {e}");
        let e = parse_params(r#"{"a_pre_params": {}, "b_pre_params": {}}"#, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("several sections") && e.contains("--section"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_expectation() {
        let with = |k: &str, v: &str| SEED.replace(&format!("\"{k}\":"), &format!("\"{k}\": {v}, \"_old_{k}\":"));
        let e = parse_params(&with("means", "[1, 2]"), Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("key 'means': expected a list of 3 numbers"), "{e}");
        let e = parse_params(&with("stds", "[1, 0, 1]"), Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("key 'stds'") && e.contains("0 at index 1"), "{e}");
        let bad_mode = SEED.replace("\"img_root\":", "\"pad_mode\": \"left\", \"img_root\":");
        let e = parse_params(&bad_mode, Path::new("p.json"), None).unwrap_err().to_string();
        assert!(e.contains("'pad_mode': expected \"center\" or \"top_left\", found \"left\""), "{e}");
    }
}

//! The preprocessing parameter file (`PARAMS.json`) users already have for their calibration
//! scripts: a JSON object with one or more `*_pre_params` sections, often with `#` / `//`
//! comments and trailing commas. Relaxed syntax is tolerated; everything else is an error with
//! the line and column of the original file.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The section used when the file has several and none is chosen.
pub const DEFAULT_SECTION: &str = "det_pre_params";

const REQUIRED_KEYS: [&str; 9] =
    ["img_root", "fixed_scale", "batch_size", "des_channels", "des_height", "des_width", "is_BGR2RGB", "means", "stds"];
const OPTIONAL_KEYS: [&str; 2] = ["pad_value", "pad_mode"];

/// The YOLO letterbox pad value.
pub const DEFAULT_PAD_VALUE: u8 = 114;

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
}

/// Where the letterbox puts the resized image inside the target size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Equal padding on both sides (the odd pixel goes to the bottom/right), as YOLO does.
    Center,
    /// All padding at the bottom/right.
    TopLeft,
}

/// One `*_pre_params` section, validated.
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
    pub stds: Vec<f64>,
    pub pad_value: u8,
    pub pad_mode: PadMode,
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
}

/// Reads and validates `path`. `section` picks a `*_pre_params` section; without it the file's
/// only section or [`DEFAULT_SECTION`] is used (a file that is itself a flat parameter object
/// is accepted too). A relative `img_root` is resolved against the parameter file's folder,
/// or against the current directory when only that one exists.
pub fn load_params(path: &Path, section: Option<&str>) -> Result<LoadedParams, ParamsError> {
    let text = std::fs::read_to_string(path).map_err(|error| ParamsError::Io { path: path.into(), error })?;
    let mut loaded = parse_params(&text, path, section)?;
    loaded.params.img_root = resolve_img_root(&loaded.params.img_root, path);
    Ok(loaded)
}

fn resolve_img_root(root: &Path, params_path: &Path) -> PathBuf {
    if root.is_absolute() {
        return root.to_path_buf();
    }
    let beside = without_dot_components(&params_path.parent().unwrap_or(Path::new("")).join(root));
    if beside.is_dir() || !root.is_dir() { beside } else { without_dot_components(root) }
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
    let (name, object) = pick_section(&top, section, path)?;
    let mut warnings = Vec::new();
    for key in object.keys() {
        if !REQUIRED_KEYS.contains(&key.as_str()) && !OPTIONAL_KEYS.contains(&key.as_str()) {
            warnings.push(format!("{}: section '{name}': unknown key '{key}' ignored", path.display()));
        }
    }
    let params = SectionReader { path, section: &name, object }.read()?;
    Ok(LoadedParams { params, section: name, warnings })
}

fn pick_section<'a>(
    top: &'a Map<String, Value>,
    chosen: Option<&str>,
    path: &Path,
) -> Result<(String, &'a Map<String, Value>), ParamsError> {
    let sections: Vec<&String> = top.keys().filter(|k| k.ends_with("_pre_params")).collect();
    let as_object = |name: &str| match top.get(name) {
        Some(Value::Object(o)) => Ok((name.to_string(), o)),
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
    match sections.as_slice() {
        [] if top.contains_key("img_root") => Ok(("(top level)".to_string(), top)),
        [] => Err(ParamsError::Section {
            path: path.into(),
            detail: format!("no '*_pre_params' section (expected e.g. \"{DEFAULT_SECTION}\": {{ ... }})"),
        }),
        [only] => as_object(only),
        _ if top.contains_key(DEFAULT_SECTION) => as_object(DEFAULT_SECTION),
        _ => Err(ParamsError::Section {
            path: path.into(),
            detail: format!("several sections ({}); choose one with --section", list_or_none(&sections)),
        }),
    }
}

fn list_or_none(names: &[&String]) -> String {
    if names.is_empty() {
        "no '*_pre_params' section".into()
    } else {
        names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    }
}

struct SectionReader<'a> {
    path: &'a Path,
    section: &'a str,
    object: &'a Map<String, Value>,
}

impl SectionReader<'_> {
    fn read(&self) -> Result<PreprocessParams, ParamsError> {
        let img_root = match self.required("img_root", "a folder path string")? {
            Value::String(s) if !s.is_empty() => PathBuf::from(s),
            other => return Err(self.bad("img_root", "a non-empty folder path string", other)),
        };
        let des_channels = self.int("des_channels", 1, 3)?;
        if des_channels == 2 {
            return Err(self.bad("des_channels", "1 (grayscale) or 3 (colour)", &Value::from(2)));
        }
        let means = self.floats("means", des_channels)?;
        let stds = self.floats("stds", des_channels)?;
        if let Some(i) = stds.iter().position(|s| *s == 0.0) {
            return Err(self.bad("stds", "non-zero values (pixels are divided by them)", &format!("0 at index {i}")));
        }
        let pad_value = match self.object.get("pad_value") {
            None => DEFAULT_PAD_VALUE,
            Some(v) => match v.as_f64() {
                Some(f) if f.fract() == 0.0 && (0.0..=255.0).contains(&f) => f as u8,
                _ => return Err(self.bad("pad_value", "an integer 0..=255", v)),
            },
        };
        let pad_mode = match self.object.get("pad_mode") {
            None => PadMode::Center,
            Some(Value::String(s)) if s == "center" => PadMode::Center,
            Some(Value::String(s)) if s == "top_left" => PadMode::TopLeft,
            Some(v) => return Err(self.bad("pad_mode", "\"center\" or \"top_left\"", v)),
        };
        Ok(PreprocessParams {
            img_root,
            fixed_scale: self.flag("fixed_scale")?,
            batch_size: self.int("batch_size", 1, 1 << 20)?,
            des_channels,
            des_height: self.int("des_height", 1, 1 << 16)?,
            des_width: self.int("des_width", 1, 1 << 16)?,
            is_bgr2rgb: self.flag("is_BGR2RGB")?,
            means,
            stds,
            pad_value,
            pad_mode,
        })
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

    fn int(&self, key: &str, min: usize, max: usize) -> Result<usize, ParamsError> {
        let expected = format!("an integer {min}..={max}");
        let v = self.required(key, &expected)?;
        match v.as_f64() {
            Some(f) if f.fract() == 0.0 && f >= min as f64 && f <= max as f64 => Ok(f as usize),
            _ => Err(self.bad(key, &expected, v)),
        }
    }

    /// 0/1 as the scripts write them; JSON booleans are accepted too.
    fn flag(&self, key: &str) -> Result<bool, ParamsError> {
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

    fn floats(&self, key: &str, channels: usize) -> Result<Vec<f64>, ParamsError> {
        let expected = format!("a list of {channels} numbers (one per des_channels)");
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
        assert_eq!((p.pad_value, p.pad_mode), (114, PadMode::Center));
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

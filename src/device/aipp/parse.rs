//! Reading AIPP config files (protobuf text of `domi.InsertNewOps`, docs/ascend-formats.md §10): the blocks
//! `AippConfig::to_text` writes and hand-written ones (comments, `key: value` / `key : value`,
//! any field order, `[v]` lists, `,`/`;` separators).
//!
//! Two levels: [`parse_aipp_blocks`] checks the syntax, that every field is an `aipp_op` field
//! of the proto with a value of its type, and that each block is static; [`AippConfig::from_text`]
//! then turns the one block into the subset ascend-ptq models (static, RGB888/YUV420SP/YUV400,
//! crop, CSC, normalisation) and refuses what it cannot reproduce.

use std::path::{Path, PathBuf};

use super::{AippConfig, AippError, Crop, InputFormat};

/// The value type of an `aipp_op` field in `insert_op.proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mode,
    Format,
    Bool,
    Int32,
    Uint32,
    Float,
    Str,
}

/// How many values a field takes: `Repeated` fields (`input_edge_idx`) may be given several
/// times; `OneOfRepeated` ones are declared repeated in the proto but GE reads only one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    Single,
    OneOfRepeated,
    Repeated,
}

/// Every field of `domi.AippOpParams` (graphengine `ge/proto/insert_op.proto`).
const FIELDS: &[(&str, Kind, Arity)] = {
    use Arity::*;
    use Kind::*;
    &[
        ("aipp_mode", Mode, Single),
        ("related_input_rank", Uint32, Single),
        ("related_input_name", Str, Single),
        ("input_edge_idx", Uint32, Repeated),
        ("max_src_image_size", Uint32, Single),
        ("support_rotation", Bool, Single),
        ("input_format", Format, Single),
        ("csc_switch", Bool, Single),
        ("cpadding_value", Float, Single),
        ("rbuv_swap_switch", Bool, Single),
        ("ax_swap_switch", Bool, Single),
        ("single_line_mode", Bool, Single),
        ("src_image_size_w", Int32, Single),
        ("src_image_size_h", Int32, Single),
        ("crop", Bool, Single),
        ("load_start_pos_w", Int32, Single),
        ("load_start_pos_h", Int32, Single),
        ("crop_size_w", Int32, Single),
        ("crop_size_h", Int32, Single),
        ("resize", Bool, Single),
        ("resize_output_w", Int32, Single),
        ("resize_output_h", Int32, Single),
        ("padding", Bool, Single),
        ("left_padding_size", Int32, Single),
        ("right_padding_size", Int32, Single),
        ("top_padding_size", Int32, Single),
        ("bottom_padding_size", Int32, Single),
        ("mean_chn_0", Int32, Single),
        ("mean_chn_1", Int32, Single),
        ("mean_chn_2", Int32, Single),
        ("mean_chn_3", Int32, Single),
        ("min_chn_0", Float, Single),
        ("min_chn_1", Float, Single),
        ("min_chn_2", Float, Single),
        ("min_chn_3", Float, Single),
        ("var_reci_chn_0", Float, OneOfRepeated),
        ("var_reci_chn_1", Float, OneOfRepeated),
        ("var_reci_chn_2", Float, OneOfRepeated),
        ("var_reci_chn_3", Float, OneOfRepeated),
        ("matrix_r0c0", Int32, OneOfRepeated),
        ("matrix_r0c1", Int32, OneOfRepeated),
        ("matrix_r0c2", Int32, OneOfRepeated),
        ("matrix_r1c0", Int32, OneOfRepeated),
        ("matrix_r1c1", Int32, OneOfRepeated),
        ("matrix_r1c2", Int32, OneOfRepeated),
        ("matrix_r2c0", Int32, OneOfRepeated),
        ("matrix_r2c1", Int32, OneOfRepeated),
        ("matrix_r2c2", Int32, OneOfRepeated),
        ("output_bias_0", Int32, Single),
        ("output_bias_1", Int32, Single),
        ("output_bias_2", Int32, Single),
        ("input_bias_0", Int32, Single),
        ("input_bias_1", Int32, Single),
        ("input_bias_2", Int32, Single),
        ("raw_rgbir_to_f16_n", Uint32, Single),
    ]
};

/// `InputFormat` enum names of the proto, in number order (0..=20).
const FORMAT_NAMES: &[&str] = &[
    "UNDEFINED",
    "YUV420SP_U8",
    "XRGB8888_U8",
    "RGB888_U8",
    "YUV400_U8",
    "NC1HWC0DI_FP16",
    "NC1HWC0DI_S8",
    "ARGB8888_U8",
    "YUYV_U8",
    "YUV422SP_U8",
    "AYUV444_U8",
    "RAW10",
    "RAW12",
    "RAW16",
    "RAW24",
    "RGB16",
    "RGB20",
    "RGB24",
    "RGB8_IR",
    "RGB16_IR",
    "RGB24_IR",
];

const MODE_NAMES: &[&str] = &["undefined", "static", "dynamic"];

/// One parsed field value (enums by their proto name).
#[derive(Debug, Clone, PartialEq)]
pub enum AippValue {
    Bool(bool),
    Int(i64),
    Float(f32),
    Enum(&'static str),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AippField {
    pub name: &'static str,
    /// 1-based line in the file.
    pub line: usize,
    pub value: AippValue,
}

/// One `aipp_op { ... }` block, fields in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct AippBlock {
    /// Line of the `aipp_op` keyword.
    pub line: usize,
    pub fields: Vec<AippField>,
}

impl AippBlock {
    pub fn get(&self, name: &str) -> Option<&AippField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// `related_input_rank` (default 0); `None` when the block names its input by
    /// `related_input_name` instead.
    pub fn input_rank(&self) -> Option<u32> {
        match self.get("related_input_rank") {
            Some(AippField { value: AippValue::Int(r), .. }) => Some(*r as u32),
            _ if self.get("related_input_name").is_some() => None,
            _ => Some(0),
        }
    }
}

/// Reads an AIPP config file (see [`parse_aipp_blocks`]).
pub fn read_aipp_file(path: &Path) -> Result<(String, Vec<AippBlock>), AippError> {
    let text = std::fs::read_to_string(path).map_err(|source| AippError::Io { file: path.to_path_buf(), source })?;
    let blocks = parse_aipp_blocks(&text, path)?;
    Ok((text, blocks))
}

/// Parses every `aipp_op` block of the file: syntax, field names, value types, no field given
/// twice, `aipp_mode: static` (dynamic AIPP is refused: ascend-ptq builds static models only).
pub fn parse_aipp_blocks(text: &str, source: &Path) -> Result<Vec<AippBlock>, AippError> {
    let tokens = tokenize(text, source)?;
    let mut p = Parser { tokens: &tokens, pos: 0, file: source };
    let mut blocks = Vec::new();
    while let Some(tok) = p.next() {
        match &tok.kind {
            Tok::Word(w) if w == "aipp_op" => blocks.push(p.block(tok.line)?),
            Tok::Word(w) => {
                let detail = if w == "multi_shape_op" {
                    "multi_shape_op (legacy dynamic batch) is not supported; only aipp_op blocks are".to_string()
                } else {
                    "unknown top-level field; an AIPP file holds aipp_op { ... } blocks".to_string()
                };
                return Err(field_err(source, tok.line, w, detail));
            }
            other => return Err(syntax_err(source, tok.line, format!("expected 'aipp_op {{', found {}", other.describe()))),
        }
    }
    if blocks.is_empty() {
        return Err(syntax_err(source, 1, "no aipp_op { ... } block found".into()));
    }
    for b in &blocks {
        check_block(b, source)?;
    }
    Ok(blocks)
}

impl AippConfig {
    /// Parses the one static `aipp_op` block of an `--insert_op_conf` file (as written by
    /// [`AippConfig::to_text`] or by hand). `source` names the file in errors.
    pub fn from_text(text: &str, source: &Path) -> Result<AippConfig, AippError> {
        let blocks = parse_aipp_blocks(text, source)?;
        if blocks.len() > 1 {
            return Err(syntax_err(
                source,
                blocks[1].line,
                format!("{} aipp_op blocks; ascend-ptq models one (for the model's first input)", blocks.len()),
            ));
        }
        AippConfig::from_block(&blocks[0], source)
    }

    /// The modelled subset of one block checked by [`parse_aipp_blocks`].
    pub fn from_block(block: &AippBlock, source: &Path) -> Result<AippConfig, AippError> {
        let file = source;
        let missing = |field: &str, why: &str| field_err(file, block.line, field, format!("missing in this aipp_op block; {why}"));
        let int = |name: &str| match block.get(name) {
            Some(AippField { value: AippValue::Int(v), .. }) => Some(*v),
            _ => None,
        };
        let flag = |name: &str| matches!(block.get(name), Some(AippField { value: AippValue::Bool(true), .. }));
        let float = |name: &str| match block.get(name) {
            Some(AippField { value: AippValue::Float(v), .. }) => Some(*v),
            _ => None,
        };

        reject_unmodelled(block, file)?;

        let format_field = block.get("input_format").ok_or_else(|| missing("input_format", "static AIPP requires it"))?;
        let AippValue::Enum(format_name) = format_field.value else { unreachable!("checked by parse_aipp_blocks") };
        let input_format: InputFormat = format_name.parse().map_err(|_| {
            field_err(
                file,
                format_field.line,
                "input_format",
                format!("{format_name} is valid AIPP but ascend-ptq models only RGB888_U8, YUV420SP_U8 and YUV400_U8"),
            )
        })?;

        let size = |name: &str| -> Result<usize, AippError> {
            let v = int(name).ok_or_else(|| missing(name, "ascend-ptq needs the fed frame size"))?;
            positive(block, name, v, file)
        };
        let src_width = size("src_image_size_w")?;
        let src_height = size("src_image_size_h")?;

        let crop = if flag("crop") {
            let x = int("load_start_pos_w").unwrap_or(0).max(0) as usize;
            let y = int("load_start_pos_h").unwrap_or(0).max(0) as usize;
            let crop_size = |name: &str| -> Result<usize, AippError> {
                let v = int(name).ok_or_else(|| missing(name, "crop: true needs the crop size"))?;
                positive(block, name, v, file)
            };
            let c = Crop { x, y, width: crop_size("crop_size_w")?, height: crop_size("crop_size_h")? };
            if c.x + c.width > src_width || c.y + c.height > src_height {
                let line = block.get("crop_size_w").map_or(block.line, |f| f.line);
                return Err(field_err(
                    file,
                    line,
                    "crop_size_w",
                    format!("crop window {}x{} at ({}, {}) exceeds the {src_width}x{src_height} source image", c.width, c.height, c.x, c.y),
                ));
            }
            Some(c)
        } else {
            None
        };

        let csc_switch = flag("csc_switch");
        let (matrix, input_bias) = if csc_switch {
            let given = (0..3).any(|r| (0..3).any(|c| block.get(&format!("matrix_r{r}c{c}")).is_some()));
            match input_format {
                InputFormat::Yuv420SpU8 if given => {
                    let m = std::array::from_fn(|r| std::array::from_fn(|c| int(&format!("matrix_r{r}c{c}")).unwrap_or(0) as i32));
                    let b = std::array::from_fn(|i| int(&format!("input_bias_{i}")).unwrap_or(0) as i32);
                    (Some(m), Some(b))
                }
                // GE's default when the matrix is omitted: BT.601 video range, rows B, G, R.
                InputFormat::Yuv420SpU8 => (Some(GE_DEFAULT_YUV_TO_BGR), Some(GE_DEFAULT_YUV_INPUT_BIAS)),
                _ => {
                    let line = block.get("csc_switch").map_or(block.line, |f| f.line);
                    return Err(field_err(
                        file,
                        line,
                        "csc_switch",
                        format!("colour-space conversion of {format_name} input is valid AIPP but not modelled by ascend-ptq"),
                    ));
                }
            }
        } else {
            (None, None)
        };

        let channels = if input_format == InputFormat::Yuv400U8 { 1 } else { 3 };
        let mean_chn = (0..channels).map(|c| int(&format!("mean_chn_{c}")).unwrap_or(0) as i32).collect();
        let min_chn = (0..channels).map(|c| float(&format!("min_chn_{c}")).unwrap_or(0.0)).collect();
        let var_reci_chn = (0..channels).map(|c| float(&format!("var_reci_chn_{c}")).unwrap_or(1.0)).collect();

        Ok(AippConfig {
            input_format,
            src_width,
            src_height,
            crop,
            csc_switch,
            rbuv_swap_switch: flag("rbuv_swap_switch"),
            matrix,
            input_bias,
            mean_chn,
            min_chn,
            var_reci_chn,
        })
    }
}

/// GE fills these when `csc_switch: true` on YUV input has no matrix (formats §10.2).
pub const GE_DEFAULT_YUV_TO_BGR: [[i32; 3]; 3] = [[298, 516, 0], [298, -100, -208], [298, 0, 409]];
pub const GE_DEFAULT_YUV_INPUT_BIAS: [i32; 3] = [16, 128, 128];

/// Fields ATC accepts but `AippConfig` cannot represent: refused unless left at their default.
fn reject_unmodelled(block: &AippBlock, file: &Path) -> Result<(), AippError> {
    const UNMODELLED: &[&str] = &[
        "related_input_name",
        "input_edge_idx",
        "cpadding_value",
        "ax_swap_switch",
        "single_line_mode",
        "resize",
        "resize_output_w",
        "resize_output_h",
        "padding",
        "left_padding_size",
        "right_padding_size",
        "top_padding_size",
        "bottom_padding_size",
        "output_bias_0",
        "output_bias_1",
        "output_bias_2",
        "raw_rgbir_to_f16_n",
    ];
    for f in &block.fields {
        let at_default = matches!(f.value, AippValue::Bool(false) | AippValue::Int(0)) || f.value == AippValue::Float(0.0);
        if f.name == "related_input_rank" && !at_default {
            return Err(field_err(file, f.line, f.name, "ascend-ptq models AIPP on the model's first input (rank 0) only".into()));
        }
        if UNMODELLED.contains(&f.name) && (!at_default || matches!(f.value, AippValue::Str(_))) {
            return Err(field_err(file, f.line, f.name, "valid AIPP, but not modelled by ascend-ptq".into()));
        }
    }
    Ok(())
}

fn positive(block: &AippBlock, name: &str, v: i64, file: &Path) -> Result<usize, AippError> {
    if v <= 0 {
        let line = block.get(name).map_or(block.line, |f| f.line);
        return Err(field_err(file, line, name, format!("expected a positive size, found {v}")));
    }
    Ok(v as usize)
}

/// Duplicates, required `aipp_mode`, static only.
fn check_block(block: &AippBlock, file: &Path) -> Result<(), AippError> {
    for (i, f) in block.fields.iter().enumerate() {
        let arity = FIELDS.iter().find(|d| d.0 == f.name).map(|d| d.2);
        if arity == Some(Arity::Repeated) {
            continue;
        }
        if let Some(first) = block.fields[..i].iter().find(|g| g.name == f.name) {
            let what = if arity == Some(Arity::OneOfRepeated) { "GE reads one value" } else { "it takes one value" };
            return Err(field_err(file, f.line, f.name, format!("given again (first on line {}); {what}", first.line)));
        }
    }
    match block.get("aipp_mode") {
        None => Err(field_err(file, block.line, "aipp_mode", "missing in this aipp_op block (required; use aipp_mode: static)".into())),
        Some(AippField { value: AippValue::Enum("static"), .. }) => Ok(()),
        Some(AippField { value: AippValue::Enum(mode), line, .. }) => Err(field_err(
            file,
            *line,
            "aipp_mode",
            format!("'{mode}' is not supported: ascend-ptq builds and checks static AIPP only (aipp_mode: static)"),
        )),
        Some(f) => Err(field_err(file, f.line, "aipp_mode", "expected an enum name".into())),
    }
}

fn syntax_err(file: &Path, line: usize, message: String) -> AippError {
    AippError::Syntax { file: PathBuf::from(file), line, message }
}

fn field_err(file: &Path, line: usize, field: &str, message: String) -> AippError {
    AippError::Field { file: PathBuf::from(file), line, field: field.to_string(), message }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Identifier, number or enum name.
    Word(String),
    Str(String),
    Punct(char),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Punct(c) => format!("'{c}'"),
        }
    }
}

struct Token {
    kind: Tok,
    line: usize,
}

fn tokenize(text: &str, file: &Path) -> Result<Vec<Token>, AippError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '{' | '}' | ':' | '[' | ']' | ',' | ';' | '<' | '>' => out.push(Token { kind: Tok::Punct(c), line }),
            '"' | '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') => s.extend(chars.next()),
                        Some('\n') | None => return Err(syntax_err(file, line, "unterminated string".into())),
                        Some(ch) => s.push(ch),
                    }
                }
                out.push(Token { kind: Tok::Str(s), line });
            }
            c if c.is_ascii_alphanumeric() || "_.+-".contains(c) => {
                let mut w = String::from(c);
                while let Some(ch) = chars.next_if(|ch| ch.is_ascii_alphanumeric() || "_.+-".contains(*ch)) {
                    w.push(ch);
                }
                out.push(Token { kind: Tok::Word(w), line });
            }
            other => return Err(syntax_err(file, line, format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    file: &'a Path,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn last_line(&self) -> usize {
        self.tokens.last().map_or(1, |t| t.line)
    }

    fn eat(&mut self, c: char) -> bool {
        if matches!(self.peek(), Some(Token { kind: Tok::Punct(p), .. }) if *p == c) {
            self.pos += 1;
            return true;
        }
        false
    }

    /// After `aipp_op`: `[:] { fields }` (or `< ... >`).
    fn block(&mut self, line: usize) -> Result<AippBlock, AippError> {
        self.eat(':');
        let close = if self.eat('{') {
            '}'
        } else if self.eat('<') {
            '>'
        } else {
            let found = self.peek().map_or("end of file".to_string(), |t| t.kind.describe());
            return Err(syntax_err(self.file, self.peek().map_or(line, |t| t.line), format!("expected '{{' after aipp_op, found {found}")));
        };
        let mut fields = Vec::new();
        loop {
            let Some(tok) = self.next() else {
                return Err(syntax_err(self.file, self.last_line(), format!("aipp_op block opened on line {line} is not closed")));
            };
            match &tok.kind {
                Tok::Punct(c) if *c == close => break,
                Tok::Word(name) => self.field(name, tok.line, &mut fields)?,
                other => return Err(syntax_err(self.file, tok.line, format!("expected a field name, found {}", other.describe()))),
            }
            if !self.eat(',') {
                self.eat(';');
            }
        }
        Ok(AippBlock { line, fields })
    }

    fn field(&mut self, name: &str, line: usize, fields: &mut Vec<AippField>) -> Result<(), AippError> {
        let Some(&(name, kind, arity)) = FIELDS.iter().find(|d| d.0 == name) else {
            return Err(field_err(self.file, line, name, "unknown aipp_op field (see docs/ascend-formats.md §10.1)".into()));
        };
        if !self.eat(':') {
            let found = self.peek().map_or("end of file".to_string(), |t| t.kind.describe());
            return Err(field_err(self.file, line, name, format!("expected ':' after the field name, found {found}")));
        }
        if self.eat('[') {
            if arity == Arity::Single {
                return Err(field_err(self.file, line, name, "a single-value field cannot take a [list]".into()));
            }
            let mut n = 0;
            while !self.eat(']') {
                if n > 0 && !self.eat(',') {
                    return Err(field_err(self.file, line, name, "expected ',' or ']' in the value list".into()));
                }
                let (value, vline) = self.scalar(name, kind, line)?;
                fields.push(AippField { name, line: vline, value });
                n += 1;
            }
            if n == 0 {
                return Err(field_err(self.file, line, name, "empty value list".into()));
            }
        } else {
            let (value, vline) = self.scalar(name, kind, line)?;
            fields.push(AippField { name, line: vline, value });
        }
        Ok(())
    }

    fn scalar(&mut self, name: &'static str, kind: Kind, line: usize) -> Result<(AippValue, usize), AippError> {
        let file = self.file;
        let tok = self.next().ok_or_else(|| field_err(file, line, name, "missing value at end of file".into()))?;
        let bad = |expected: &str| field_err(file, tok.line, name, format!("expected {expected}, found {}", tok.kind.describe()));
        let value = match (&tok.kind, kind) {
            (Tok::Str(s), Kind::Str) => AippValue::Str(s.clone()),
            (Tok::Word(w), Kind::Bool) => match w.as_str() {
                "true" | "True" | "t" | "1" => AippValue::Bool(true),
                "false" | "False" | "f" | "0" => AippValue::Bool(false),
                _ => return Err(bad("true or false")),
            },
            (Tok::Word(w), Kind::Int32 | Kind::Uint32) => {
                let v: i64 = w.parse().map_err(|_| bad("an integer"))?;
                let (lo, hi, what) =
                    if kind == Kind::Int32 { (i32::MIN as i64, i32::MAX as i64, "an int32") } else { (0, u32::MAX as i64, "a uint32") };
                if !(lo..=hi).contains(&v) {
                    return Err(bad(what));
                }
                AippValue::Int(v)
            }
            (Tok::Word(w), Kind::Float) => {
                let digits = w.strip_suffix(['f', 'F']).filter(|d| d.ends_with(|c: char| c.is_ascii_digit() || c == '.')).unwrap_or(w);
                let v: f32 = digits.parse().map_err(|_| bad("a number"))?;
                if !v.is_finite() {
                    return Err(bad("a finite number"));
                }
                AippValue::Float(v)
            }
            (Tok::Word(w), Kind::Mode) => AippValue::Enum(enum_value(w, MODE_NAMES).ok_or_else(|| bad("static or dynamic"))?),
            (Tok::Word(w), Kind::Format) => {
                AippValue::Enum(enum_value(w, FORMAT_NAMES).ok_or_else(|| bad("an AIPP input format such as RGB888_U8"))?)
            }
            (_, Kind::Str) => return Err(bad("a quoted string")),
            _ => return Err(bad("a value")),
        };
        Ok((value, tok.line))
    }
}

/// An enum given by name (exact proto spelling) or by number.
fn enum_value(word: &str, names: &[&'static str]) -> Option<&'static str> {
    if let Ok(n) = word.parse::<usize>() {
        return names.get(n).copied();
    }
    names.iter().copied().find(|n| *n == word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::params::{PadMode, PreprocessParams, ResizeInput};
    use crate::device::aipp::AippOptions;

    fn params(channels: usize, is_bgr2rgb: bool, means: &[f64], stds: &[f64]) -> PreprocessParams {
        PreprocessParams {
            img_root: "imgs".into(),
            fixed_scale: true,
            batch_size: 1,
            des_channels: channels,
            des_height: 640,
            des_width: 640,
            is_bgr2rgb,
            means: means.to_vec(),
            stds: stds.to_vec(),
            pad_value: 114,
            pad_mode: PadMode::Center,
            resize_input: ResizeInput::Uint8,
        }
    }

    fn file() -> &'static Path {
        Path::new("model_aipp.cfg")
    }

    fn round_trip(p: &PreprocessParams, input_format: InputFormat, src_size: Option<(usize, usize)>) -> AippConfig {
        let cfg = AippConfig::from_params(p, &AippOptions { input_format, src_size }).unwrap();
        let text = cfg.to_text(&p.hash());
        let back = AippConfig::from_text(&text, file()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, cfg, "{text}");
        cfg
    }

    #[test]
    fn configs_written_by_the_aipp_command_read_back_identically() {
        let yolo = params(3, true, &[0.0; 3], &[255.0; 3]);
        let imagenet = params(3, true, &[123.675, 116.28, 103.53], &[58.395, 57.12, 57.375]);
        let bgr_int_means = params(3, false, &[104.0, 117.0, 123.0], &[1.0; 3]);
        round_trip(&yolo, InputFormat::Rgb888U8, None);
        round_trip(&imagenet, InputFormat::Rgb888U8, None);
        let bgr = round_trip(&bgr_int_means, InputFormat::Rgb888U8, None);
        // B,G,R frames into a BGR model: no swap (issue 14: frames are in OpenCV's order).
        assert!(!bgr.rbuv_swap_switch && bgr.mean_chn == [104, 117, 123]);
        assert!(round_trip(&imagenet, InputFormat::Rgb888U8, None).rbuv_swap_switch, "B,G,R frames into an RGB model");
        let yuv = round_trip(&yolo, InputFormat::Yuv420SpU8, None);
        assert!(yuv.csc_switch && yuv.matrix.is_some());
        round_trip(&bgr_int_means, InputFormat::Yuv420SpU8, Some((1280, 720)));
        let gray = round_trip(&params(1, false, &[127.5], &[127.5]), InputFormat::Yuv400U8, None);
        assert_eq!(gray.mean_chn.len(), 1);
        let cropped = round_trip(&yolo, InputFormat::Rgb888U8, Some((800, 700)));
        assert_eq!(cropped.crop, Some(Crop { x: 80, y: 30, width: 640, height: 640 }));
    }

    #[test]
    fn hand_written_variants_parse() {
        let text = "# YOLO AIPP, written by hand\n\
            aipp_op{\n\
              input_format : RGB888_U8   # packed\n\
              aipp_mode: static\n\
              src_image_size_h: 640; src_image_size_w: 640,\n\
              var_reci_chn_0: [0.00392157]\n\
              var_reci_chn_1 :0.00392157f\n\
              var_reci_chn_2: 3.92157e-3\n\
              min_chn_0: 0\n\
              rbuv_swap_switch: False\n\
              related_input_rank: 0\n\
            }\n";
        let cfg = AippConfig::from_text(text, file()).unwrap();
        assert_eq!(cfg.input_format, InputFormat::Rgb888U8);
        assert_eq!((cfg.src_width, cfg.src_height), (640, 640));
        assert_eq!(cfg.var_reci_chn, vec![0.00392157f32; 3]);
        assert_eq!(cfg.mean_chn, vec![0; 3]);
        assert_eq!(cfg.min_chn, vec![0.0; 3]);
        assert!(!cfg.csc_switch && cfg.crop.is_none());

        // YUV with CSC but no matrix: GE's default BT.601 video-range matrix, B,G,R rows.
        let yuv = "aipp_op { aipp_mode: static input_format: YUV420SP_U8 src_image_size_w: 4 src_image_size_h: 2 csc_switch: true }";
        let cfg = AippConfig::from_text(yuv, file()).unwrap();
        assert_eq!(cfg.matrix, Some(GE_DEFAULT_YUV_TO_BGR));
        assert_eq!(cfg.input_bias, Some([16, 128, 128]));
        // Numeric enums, as protobuf text allows.
        let numeric = "aipp_op { aipp_mode: 1 input_format: 3 src_image_size_w: 4 src_image_size_h: 2 }";
        assert_eq!(AippConfig::from_text(numeric, file()).unwrap().input_format, InputFormat::Rgb888U8);
    }

    fn err(text: &str) -> String {
        AippConfig::from_text(text, file()).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let base = "aipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n  src_image_size_w: 640\n  src_image_size_h: 640\n";
        let e = err(&format!("{base}  mean_chn0: 1\n}}\n"));
        assert!(e.contains("model_aipp.cfg:6") && e.contains("mean_chn0") && e.contains("unknown aipp_op field"), "{e}");
        let e = err("aipp_op {\n  aipp_mode: dynamic\n  max_src_image_size: 1000\n}\n");
        assert!(e.contains("model_aipp.cfg:2") && e.contains("aipp_mode") && e.contains("static AIPP only"), "{e}");
        let e = err("aipp_op {\n  input_format: RGB888_U8\n}\n");
        assert!(e.contains("model_aipp.cfg:1") && e.contains("aipp_mode") && e.contains("missing"), "{e}");
        let e = err(&format!("{base}  var_reci_chn_0: 0.5\n  var_reci_chn_0: 0.25\n}}\n"));
        assert!(e.contains(":7") && e.contains("var_reci_chn_0") && e.contains("first on line 6"), "{e}");
        let e = err(&format!("{base}  mean_chn_0: 0.5\n}}\n"));
        assert!(e.contains(":6") && e.contains("mean_chn_0") && e.contains("integer"), "{e}");
        let e = err(&format!("{base}  min_chn_0: abc\n}}\n"));
        assert!(e.contains(":6") && e.contains("min_chn_0") && e.contains("number"), "{e}");
        let e = err(&format!("{base}  csc_switch: maybe\n}}\n"));
        assert!(e.contains("csc_switch") && e.contains("true or false"), "{e}");
        let e = err(base);
        assert!(e.contains("not closed") && e.contains("line 1"), "{e}");
        let e = err("aipp_op {\n  aipp_mode: static\n  input_format: XRGB8888_U8\n}\n");
        assert!(e.contains(":3") && e.contains("XRGB8888_U8") && e.contains("RGB888_U8, YUV420SP_U8"), "{e}");
        let e = err("aipp_op {\n  aipp_mode: static\n  input_format: BGR\n}\n");
        assert!(e.contains(":3") && e.contains("input_format") && e.contains("'BGR'"), "{e}");
        let e = err(&format!("{base}  padding: true\n}}\n"));
        assert!(e.contains(":6") && e.contains("padding") && e.contains("not modelled"), "{e}");
        let e = err(&format!("{base}  crop: true\n  crop_size_w: 700\n  crop_size_h: 10\n}}\n"));
        assert!(e.contains("exceeds the 640x640"), "{e}");
        let e = err("aipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n}\n");
        assert!(e.contains("src_image_size_w") && e.contains("missing"), "{e}");
        let e = err("model { }\n");
        assert!(e.contains("model_aipp.cfg:1") && e.contains("model") && e.contains("top-level"), "{e}");
        let e = err("# nothing\n");
        assert!(e.contains("no aipp_op"), "{e}");
        let e = err(&format!("{base}}}\n{base}}}\n"));
        assert!(e.contains(":7") && e.contains("2 aipp_op blocks"), "{e}");
        let e = err("aipp_op {\n  related_input_name: images\n}\n");
        assert!(e.contains(":2") && e.contains("quoted string"), "{e}");
    }

    #[test]
    fn generic_parse_accepts_every_static_field_and_several_blocks() {
        let text = "aipp_op { aipp_mode: static related_input_rank: 0 input_format: XRGB8888_U8 padding: true left_padding_size: 2 \
                    input_edge_idx: 0 input_edge_idx: 1 }\n\
                    aipp_op { aipp_mode: static related_input_name: \"second\" input_format: YUV400_U8 }";
        let blocks = parse_aipp_blocks(text, file()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].input_rank(), Some(0));
        assert_eq!(blocks[1].input_rank(), None);
        assert_eq!(blocks[1].get("related_input_name").unwrap().value, AippValue::Str("second".into()));
        assert_eq!(blocks[0].fields.iter().filter(|f| f.name == "input_edge_idx").count(), 2);
    }
}

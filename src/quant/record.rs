//! The scale/offset record (`<prefix>_record.txt`): protobuf text of AMCT's ONNX
//! `ScaleOffsetRecord` (docs/ascend-formats.md §7.1), one `record { key value { … } }` per
//! quantized layer, in the layout of the real AMCT record files (formats §7.1): two-space
//! indentation, `scale_d`, `offset_d`, then every `scale_w`, then every `offset_w`; a layer
//! without weights (AveragePool) has neither; floats as protobuf's C++ `SimpleFtoa` prints them
//! (`%.6g` when that reads back to the same f32, else `%.9g`). [`parse`] reads such files back
//! (ours and AMCT's).

use std::fmt::{self, Write};

use super::pbtext::{self, Field, Pos, Scalar, Value};

/// One layer's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEntry {
    pub layer: String,
    pub scale_d: f32,
    pub offset_d: i32,
    pub scale_w: Vec<f32>,
    pub offset_w: Vec<i32>,
}

/// Renders the record file.
pub fn render(entries: &[RecordEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "record {{\n  key: \"{}\"\n  value {{", escape(&e.layer));
        let _ = writeln!(out, "    scale_d: {}\n    offset_d: {}", float(e.scale_d), e.offset_d);
        for s in &e.scale_w {
            let _ = writeln!(out, "    scale_w: {}", float(*s));
        }
        for o in &e.offset_w {
            let _ = writeln!(out, "    offset_w: {o}");
        }
        out.push_str("  }\n}\n");
    }
    out
}

/// A float as protobuf's C++ text printer writes it (`SimpleFtoa`): 6 significant digits when
/// they read back to the same f32, else 9 (always enough for an f32). The real record file
/// (formats §7.1) has both forms, `0.0321432` and `0.0235294122`.
pub fn float(v: f32) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let short = format_g(v as f64, 6);
    if short.parse::<f32>().is_ok_and(|r| r == v) { short } else { format_g(v as f64, 9) }
}

/// C's `%.{p}g` for a finite value: `%e` when the exponent is below −4 or at least `p`, else
/// `%f`; trailing zeros (and a trailing point) removed; the exponent has a sign and two digits.
fn format_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // The exponent after rounding to p significant digits (9.9999995 → 1.00000e+01).
    let e_form = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = e_form.split_once('e').expect("Rust's {:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// C-style escaping of a protobuf text string.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A record file that does not read as `ScaleOffsetRecord`: `LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for RecordError {}

fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, RecordError> {
    Err(RecordError { pos, message: message.into() })
}

/// `SingleLayerRecord` fields that AMCT writes (ONNX, TensorFlow and Caffe editions, formats
/// §7.1) and we read past: a record of another edition still parses.
const OTHER_LAYER_FIELDS: [&str; 11] = [
    "shift_bit",
    "skip_fusion",
    "is_tensor_quantize",
    "tensor_balance_factor",
    "op_data_type",
    "act_type",
    "wts_type",
    "dst_type",
    "channels",
    "height",
    "width",
];

/// Reads a record file (ours or AMCT's) into one entry per `record`, in file order.
pub fn parse(text: &str) -> Result<Vec<RecordEntry>, RecordError> {
    let fields = pbtext::parse(text).map_err(|e| RecordError { pos: e.pos, message: e.message })?;
    let mut entries = Vec::with_capacity(fields.len());
    for f in &fields {
        if f.name != "record" {
            return fail(f.pos, format!("unknown field '{}' in ScaleOffsetRecord; expected 'record'", f.name));
        }
        for body in messages(f)? {
            entries.push(read_entry(body, f.pos)?);
        }
    }
    Ok(entries)
}

/// `record { key: "..." value { ... } }`.
fn read_entry(fields: &[Field], pos: Pos) -> Result<RecordEntry, RecordError> {
    let (mut key, mut value) = (None, None);
    for f in fields {
        match f.name.as_str() {
            "key" if key.is_none() => key = Some(string(f)?),
            "value" if value.is_none() => value = Some((single_message(f)?, f.pos)),
            "key" | "value" => return fail(f.pos, format!("record.{} given twice", f.name)),
            other => return fail(f.pos, format!("unknown field '{other}' in record; expected key and value")),
        }
    }
    let Some(layer) = key else { return fail(pos, "record without key") };
    let Some((body, vpos)) = value else { return fail(pos, format!("record \"{layer}\" without value")) };
    let mut e = RecordEntry { layer, scale_d: 0.0, offset_d: 0, scale_w: Vec::new(), offset_w: Vec::new() };
    let (mut has_scale_d, mut has_offset_d) = (false, false);
    for f in body {
        match f.name.as_str() {
            "scale_d" => {
                e.scale_d = *one(f, &float_values(f)?)?;
                has_scale_d = true;
            }
            "offset_d" => {
                e.offset_d = *one(f, &int_values(f)?)?;
                has_offset_d = true;
            }
            "scale_w" => e.scale_w.extend(float_values(f)?),
            "offset_w" => e.offset_w.extend(int_values(f)?),
            other if OTHER_LAYER_FIELDS.contains(&other) => {}
            other => return fail(f.pos, format!("record \"{}\": unknown field '{other}' in value", e.layer)),
        }
    }
    if !has_scale_d || !has_offset_d {
        return fail(vpos, format!("record \"{}\": value needs scale_d and offset_d", e.layer));
    }
    if !e.offset_w.is_empty() && e.offset_w.len() != e.scale_w.len() {
        return fail(
            vpos,
            format!("record \"{}\": {} offset_w for {} scale_w (one per weight scale)", e.layer, e.offset_w.len(), e.scale_w.len()),
        );
    }
    Ok(e)
}

fn messages(f: &Field) -> Result<Vec<&[Field]>, RecordError> {
    match &f.value {
        Value::Message { fields, .. } => Ok(vec![fields.as_slice()]),
        Value::List { items, .. } => items
            .iter()
            .map(|v| match v {
                Value::Message { fields, .. } => Ok(fields.as_slice()),
                other => fail(other.pos(), format!("{}: expected a message '{{ ... }}'", f.name)),
            })
            .collect(),
        Value::Scalar { pos, .. } => fail(*pos, format!("{}: expected a message '{{ ... }}'", f.name)),
    }
}

fn single_message(f: &Field) -> Result<&[Field], RecordError> {
    match &f.value {
        Value::Message { fields, .. } => Ok(fields),
        other => fail(other.pos(), format!("{}: expected a message '{{ ... }}'", f.name)),
    }
}

fn string(f: &Field) -> Result<String, RecordError> {
    match &f.value {
        Value::Scalar { scalar: Scalar::Str(s), .. } => Ok(s.clone()),
        other => fail(other.pos(), format!("{}: expected a quoted string", f.name)),
    }
}

/// The scalars of a field: one, or each item of a `[...]` list.
fn scalars(f: &Field) -> Result<Vec<(&Scalar, Pos)>, RecordError> {
    fn item<'v>(name: &str, v: &'v Value) -> Result<(&'v Scalar, Pos), RecordError> {
        match v {
            Value::Scalar { scalar, pos } => Ok((scalar, *pos)),
            other => fail(other.pos(), format!("{name}: expected a number, found a message")),
        }
    }
    match &f.value {
        Value::List { items, .. } => items.iter().map(|v| item(&f.name, v)).collect(),
        v => Ok(vec![item(&f.name, v)?]),
    }
}

fn one<'a, T>(f: &Field, values: &'a [T]) -> Result<&'a T, RecordError> {
    match values {
        [v] => Ok(v),
        _ => fail(f.pos, format!("{}: expected one value, found {}", f.name, values.len())),
    }
}

/// Proto floats: the decimal read as f64 and rounded to f32, as protobuf does.
fn float_values(f: &Field) -> Result<Vec<f32>, RecordError> {
    scalars(f)?
        .into_iter()
        .map(|(s, pos)| match s.as_float() {
            Some(v) => Ok(v as f32),
            None => fail(pos, format!("{}: expected a number, found {}", f.name, s.describe())),
        })
        .collect()
}

fn int_values(f: &Field) -> Result<Vec<i32>, RecordError> {
    scalars(f)?
        .into_iter()
        .map(|(s, pos)| match s {
            Scalar::Number(n) => n.parse::<i32>().or_else(|_| fail(pos, format!("{}: expected a 32-bit integer, found {n}", f.name))),
            other => fail(pos, format!("{}: expected a 32-bit integer, found {}", f.name, other.describe())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_simple_ftoa() {
        // Computed values, and the decimal read back as f32 prints as written.
        assert_eq!(float(6.0 / 255.0), "0.0235294122");
        assert_eq!(float(1.0 / 255.0), "0.00392156886");
        for want in [
            "0.0235294122",
            "0.0321432",
            "7.14165508e-05",
            "0.5",
            "1",
            "123456",
            "1234567",
            "1e+07",
            "1.5e-05",
            "0.0001",
            "3.1e-09",
            "-0.25",
            "0",
        ] {
            assert_eq!(float(want.parse::<f32>().unwrap()), want);
        }
    }

    #[test]
    fn renders_the_documented_layout_and_reads_back() {
        let e = RecordEntry {
            layer: "conv\"1".into(),
            scale_d: 1.0 / 255.0,
            offset_d: -128,
            scale_w: vec![0.00298, 3.1e-9],
            offset_w: vec![0, 0],
        };
        let pool = RecordEntry { layer: "pool".into(), scale_d: 0.5, offset_d: 3, scale_w: vec![], offset_w: vec![] };
        let text = render(&[e.clone(), pool.clone()]);
        assert_eq!(
            text,
            "record {\n  key: \"conv\\\"1\"\n  value {\n    scale_d: 0.00392156886\n    offset_d: -128\n    scale_w: 0.00298\n    \
             scale_w: 3.1e-09\n    offset_w: 0\n    offset_w: 0\n  }\n}\nrecord {\n  key: \"pool\"\n  value {\n    scale_d: 0.5\n    \
             offset_d: 3\n  }\n}\n"
        );
        assert_eq!(parse(&text).unwrap(), [e, pool]);
    }

    #[test]
    fn bad_records_name_line_column_and_field() {
        for (text, want) in [
            ("records {}", "1:1: unknown field 'records' in ScaleOffsetRecord"),
            ("record { value { scale_d: 1 offset_d: 0 } }", "1:1: record without key"),
            ("record { key: \"a\" }", "record \"a\" without value"),
            ("record { key: \"a\" value { scale_d: 1 } }", "record \"a\": value needs scale_d and offset_d"),
            ("record { key: \"a\" value { scale_d: x offset_d: 0 } }", "scale_d: expected a number, found identifier x"),
            ("record { key: \"a\" value { scale_d: 1 offset_d: 1.5 } }", "offset_d: expected a 32-bit integer, found 1.5"),
            ("record { key: \"a\" value { scale_d: 1 offset_d: 0 scale_w: 1 offset_w: 0 offset_w: 0 } }", "2 offset_w for 1 scale_w"),
            ("record { key: \"a\" value { scale_d: 1 offset_d: 0 bogus: 1 } }", "unknown field 'bogus' in value"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
        }
        // List syntax and the fields of other AMCT editions read.
        let e = parse("record { key: \"a\" value { scale_d: 1 offset_d: 0 scale_w: [0.5, 0.25] offset_w: [0, 0] channels: 3 } }").unwrap();
        assert_eq!(e[0].scale_w, [0.5, 0.25]);
    }
}

//! The scale/offset record (`<prefix>_record.txt`): protobuf text of AMCT's ONNX
//! `ScaleOffsetRecord` (docs/ascend-formats.md §7.1), one `record { key value { … } }` per quantized layer.
//! Floats are printed in the shortest form that reads back to the same f32.

use std::fmt::Write;

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

/// Shortest round-trip decimal; exponent form for very small or large magnitudes (protobuf
/// text accepts both).
fn float(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) { format!("{v:e}") } else { format!("{v}") }
}

/// C-style escaping of a protobuf text string.
fn escape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::pbtext;

    #[test]
    fn renders_the_documented_layout_and_reads_back() {
        let e = RecordEntry {
            layer: "conv\"1".into(),
            scale_d: 1.0 / 255.0,
            offset_d: -128,
            scale_w: vec![0.00298, 3.1e-9],
            offset_w: vec![0, 0],
        };
        let text = render(&[e]);
        assert!(text.starts_with("record {\n  key: \"conv\\\"1\"\n  value {\n    scale_d: 0.003921569\n    offset_d: -128\n"), "{text}");
        assert!(text.contains("scale_w: 0.00298\n    scale_w: 3.1e-9\n    offset_w: 0\n    offset_w: 0\n"), "{text}");
        // Our protobuf-text reader parses it back to the same numbers.
        let fields = pbtext::parse(&text).expect("valid protobuf text");
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "record");
    }
}

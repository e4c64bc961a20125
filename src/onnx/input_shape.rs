//! The `--input_shape "name1:n,c,h,w;name2:..."` argument, as amct_onnx and ATC read it:
//! items split on `;`, and within an item the last `:` separates the tensor name (which may
//! itself contain `:`, e.g. `input:0`) from the comma-separated dims. `-1` marks a
//! dynamic dimension.

use std::fmt;

/// One `name:dims` item of `--input_shape`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShape {
    pub name: String,
    pub dims: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShapeError(pub String);

impl fmt::Display for InputShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--input_shape: {}", self.0)
    }
}

impl std::error::Error for InputShapeError {}

/// The most elements one `--input_shape` item may describe: 16-byte elements still fit an isize.
pub const MAX_ELEMENTS: u64 = (isize::MAX as u64) / 16;

pub fn parse_input_shapes(arg: &str) -> Result<Vec<InputShape>, InputShapeError> {
    let mut shapes: Vec<InputShape> = Vec::new();
    for item in arg.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, dims) =
            item.rsplit_once(':').ok_or_else(|| InputShapeError(format!("item {item:?} has no ':'; expected \"name:n,c,h,w\"")))?;
        if name.is_empty() {
            return Err(InputShapeError(format!("item {item:?} has an empty tensor name")));
        }
        let dims = dims
            .split(',')
            .map(|d| {
                let d = d.trim();
                match d.parse::<i64>() {
                    Ok(v) if v >= 1 || v == -1 => Ok(v),
                    _ => Err(InputShapeError(format!("dimension {d:?} of '{name}' is not a positive integer or -1"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Checked so that absurd dims are an error here, not an overflow or an allocation
        // later: every tensor's byte size (at most 16 bytes an element) must fit an isize.
        let elements = dims.iter().filter(|&&d| d > 0).try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        if elements.is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(InputShapeError(format!(
                "the dims {dims:?} of '{name}' multiply to more than {MAX_ELEMENTS} elements, more than any tensor can hold"
            )));
        }
        if shapes.iter().any(|s| s.name == name) {
            return Err(InputShapeError(format!("tensor '{name}' is given twice")));
        }
        shapes.push(InputShape { name: name.to_string(), dims });
    }
    if shapes.is_empty() {
        return Err(InputShapeError("no \"name:dims\" item given".into()));
    }
    Ok(shapes)
}

/// Writes `shapes` (name → static dims) into the graph's matching input declarations. Err
/// `(input, rank in the model, dims given)` when a declared rank differs.
pub fn set_input_dims(
    graph: &mut super::GraphProto,
    shapes: &std::collections::HashMap<String, Vec<i64>>,
) -> Result<(), (String, usize, usize)> {
    use super::proto::{tensor_shape_proto, type_proto};
    for input in graph.input.iter_mut() {
        let Some(dims) = shapes.get(input.name()) else { continue };
        let name = input.name().to_string();
        if let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            let shape = t.shape.get_or_insert_with(Default::default);
            if !shape.dim.is_empty() && shape.dim.len() != dims.len() {
                return Err((name, shape.dim.len(), dims.len()));
            }
            shape.dim = dims
                .iter()
                .map(|&d| tensor_shape_proto::Dimension {
                    value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                    ..Default::default()
                })
                .collect();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_amct_syntax() {
        let s = parse_input_shapes("images:1,3,640,640;input:0:-1,3,48,320").unwrap();
        assert_eq!(s[0], InputShape { name: "images".into(), dims: vec![1, 3, 640, 640] });
        assert_eq!(s[1], InputShape { name: "input:0".into(), dims: vec![-1, 3, 48, 320] });
    }

    #[test]
    fn rejects_bad_items_naming_them() {
        for (arg, needle) in [
            ("images", "no ':'"),
            ("x:1,0,3", "\"0\""),
            ("x:1,a", "\"a\""),
            (":1,2", "empty tensor name"),
            ("x:1;x:2", "twice"),
            ("", "no \"name:dims\""),
        ] {
            let e = parse_input_shapes(arg).unwrap_err().to_string();
            assert!(e.starts_with("--input_shape: ") && e.contains(needle), "{arg}: {e}");
        }
    }
}

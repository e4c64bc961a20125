//! `<prefix>_convert_report.json`: what `convert` did with every Q/DQ node of the model
//! (docs/ascend-formats.md §15.3). Schema, version 1:
//!
//! ```text
//! { "version": 1, "tool": "ascend-ptq <version>", "model", "input_shape",
//!   "layers": [{ "name", "op_type", "source_nodes": [input Q, input DQ, (weight Q,) weight DQ,
//!       (bias DQ)], "data_input", "activation": {"type", "scale", "zero_point"},
//!       "scale_d", "offset_d", "weight": {"type", "scale", "zero_point", "axis"?}, "scale_w",
//!       "bias", "done" }],
//!   "anti_quant_inputs": [{ "add" (the node reading it), "op_type", "input_index", "tensor",
//!       "source_nodes", "scale_d", "offset_d", "activation" }] (Add inputs, and inputs of float
//!       ops sharing a pair with an int8 layer or Add),
//!   "trailing_quant": { "node", "tensor", "output", "scale_d", "offset_d", "activation" } | null,
//!   "removed_pairs": [{ "source_nodes", "tensor", "consumers", "reason" }],
//!   "folded_constants": [{ "source_nodes", "tensor", "consumers", "reason" }],
//!   "warnings": [...] }
//! ```
//! `offset_d` is the Ascend offset: the zero point for int8, the zero point − 128 for uint8.

use std::collections::HashMap;

use serde::Serialize;

use super::ConvertOptions;
use super::plan::{AddQuant, Analysis, LayerInfo, Removed, TrailingQuant};

#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport<'a> {
    pub version: u32,
    pub tool: String,
    pub model: String,
    pub input_shape: String,
    pub layers: &'a [LayerInfo],
    pub anti_quant_inputs: &'a [AddQuant],
    pub trailing_quant: Option<&'a TrailingQuant>,
    pub removed_pairs: &'a [Removed],
    pub folded_constants: &'a [Removed],
    pub warnings: &'a [String],
}

impl<'a> ConvertReport<'a> {
    pub fn new(opts: &ConvertOptions, shapes: &HashMap<String, Vec<i64>>, a: &'a Analysis, warnings: &'a [String]) -> Self {
        let mut names: Vec<&String> = shapes.keys().collect();
        names.sort();
        let input_shape = names
            .iter()
            .map(|n| format!("{n}:{}", shapes[*n].iter().map(i64::to_string).collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>()
            .join(";");
        ConvertReport {
            version: 1,
            tool: format!("ascend-ptq {}", env!("CARGO_PKG_VERSION")),
            model: opts.model.display().to_string(),
            input_shape,
            layers: &a.layer_info,
            anti_quant_inputs: &a.adds,
            trailing_quant: a.trailing.as_ref(),
            removed_pairs: &a.removed,
            folded_constants: &a.folded,
            warnings,
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
        s.push('\n');
        s
    }
}

//! The window attributes (`onnx::window`) of every Conv / ConvTranspose / pool ONNX
//! conformance case, checked against the case's expected output shape for each user of the
//! window module: shape inference (`onnx::shapes`), the fp32 Conv / ConvTranspose / pool
//! builders (weights at plan time and at run time) and, where the op applies, the int8 layers
//! of deploy models (2-D Conv / ConvTranspose with int8 weights, 2-D AveragePool after an
//! AscendQuant). Every NOTSET case is also run with `auto_pad = ""` (must be the same) and
//! every case with non-zero pads with `auto_pad = SAME_UPPER` added (every user must refuse it,
//! naming both attributes).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ascend_ptq::engine::{BuildContext, Registry, Tensor};
use ascend_ptq::onnx::build::{attr_float, attr_string, node};
use ascend_ptq::onnx::shapes::infer_shapes;
use ascend_ptq::onnx::{ModelProto, NodeProto, TensorProto, load_model};
use ndarray::{ArrayD, IxDyn};
use prost::Message;

const WINDOW_OPS: [&str; 7] = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"];

/// One single-node conformance case of a window op.
struct Case {
    name: String,
    model: ModelProto,
    /// The case's inputs (test_data_set_0), in node-input order; `None` for omitted ones.
    inputs: Vec<Option<Tensor>>,
    /// The expected shape of output 0.
    expected: Vec<usize>,
}

impl Case {
    fn node(&self) -> &NodeProto {
        &self.model.graph.as_ref().unwrap().node[0]
    }

    fn opset(&self) -> i64 {
        ascend_ptq::onnx::default_opset(&self.model).unwrap_or(23)
    }

    fn input_shape(&self, i: usize) -> Option<&[usize]> {
        self.inputs.get(i).and_then(|t| t.as_ref()).map(|t| t.shape())
    }

    /// The same case with the node's attributes changed by `edit`.
    fn with_node(&self, edit: impl FnOnce(&mut NodeProto)) -> Case {
        let mut model = self.model.clone();
        edit(&mut model.graph.as_mut().unwrap().node[0]);
        Case { name: self.name.clone(), model, inputs: self.inputs.clone(), expected: self.expected.clone() }
    }
}

fn read_tensor(path: &Path) -> Tensor {
    let proto = TensorProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    let t = ascend_ptq::onnx::Tensor::from_proto(&proto).unwrap();
    Tensor::from_onnx(&t, proto.name()).unwrap()
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut cases = Vec::new();
    for name in names {
        let case_dir = dir.join(&name);
        let Ok(mut model) = load_model(case_dir.join("model.onnx")) else { continue };
        // Shape inference falls back to declared output shapes: drop them, so only the rules count.
        let g = model.graph.as_mut().unwrap();
        g.output.iter_mut().for_each(|o| o.r#type = None);
        g.value_info.clear();
        let graph = model.graph.as_ref().unwrap();
        if graph.node.len() != 1 || !WINDOW_OPS.contains(&graph.node[0].op_type()) {
            continue;
        }
        let set = case_dir.join("test_data_set_0");
        // Graph inputs are the node's inputs in order (these single-node cases have no initializers).
        let by_name: HashMap<&str, usize> = graph.input.iter().enumerate().map(|(j, vi)| (vi.name(), j)).collect();
        let inputs =
            graph.node[0].input.iter().map(|n| by_name.get(n.as_str()).map(|j| read_tensor(&set.join(format!("input_{j}.pb"))))).collect();
        let expected = read_tensor(&set.join("output_0.pb")).shape().to_vec();
        cases.push(Case { name, model, inputs, expected });
    }
    cases
}

/// Shape inference's output 0, or its reason for not resolving it.
fn inferred(case: &Case) -> Result<Vec<usize>, String> {
    let shapes: HashMap<String, Vec<i64>> = case
        .node()
        .input
        .iter()
        .zip(&case.inputs)
        .filter_map(|(name, t)| t.as_ref().map(|t| (name.clone(), t.shape().iter().map(|&d| d as i64).collect())))
        .collect();
    let r = infer_shapes(&case.model, &shapes).map_err(|e| e.to_string())?;
    let out = &case.node().output[0];
    match r.shape(out) {
        Some(s) => Ok(s.iter().map(|&d| d as usize).collect()),
        None => Err(r.unresolved.iter().map(|(_, _, why)| why.clone()).collect::<Vec<_>>().join("; ")),
    }
}

/// Builds the case's node with the engine's registered builder and runs it; output 0's shape.
fn run_engine(
    case: &Case,
    constants: Vec<Option<Tensor>>,
    producers: Vec<Option<&NodeProto>>,
    inputs: &[Option<Tensor>],
) -> Result<Vec<usize>, String> {
    let registry = Registry::with_all_ops();
    let node = case.node();
    let builder = registry.get("", node.op_type()).ok_or_else(|| format!("{} is not registered", node.op_type()))?;
    let n = node.input.len();
    let ctx = BuildContext {
        node,
        opset: case.opset(),
        constants: (0..n).map(|i| constants.get(i).cloned().flatten().map(Arc::new)).collect(),
        input_shapes: (0..n).map(|i| inputs.get(i).and_then(|t| t.as_ref()).map(|t| t.shape().to_vec())).collect(),
        input_producers: (0..n).map(|i| producers.get(i).copied().flatten()).collect(),
    };
    let op = builder(&ctx).map_err(|e| e.to_string())?;
    let args: Vec<Option<&Tensor>> = (0..n).map(|i| inputs.get(i).and_then(|t| t.as_ref())).collect();
    let out = op.run(&args).map_err(|e| e.to_string())?;
    Ok(out[0].shape().to_vec())
}

fn is_conv(case: &Case) -> bool {
    matches!(case.node().op_type(), "Conv" | "ConvTranspose")
}

/// fp32 builders: weights unknown at plan time, then (convolutions) as a plan-time constant.
fn fp32_users(case: &Case) -> Vec<(&'static str, Result<Vec<usize>, String>)> {
    let op = case.node().op_type();
    if !matches!(op, "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool") {
        return Vec::new();
    }
    let mut users = vec![("fp32 builder", run_engine(case, vec![], vec![], &case.inputs))];
    if is_conv(case) {
        let constants = vec![None, case.inputs[1].clone()];
        users.push(("fp32 builder, constant weight", run_engine(case, constants, vec![], &case.inputs)));
    }
    users
}

fn zeros_i8(shape: &[usize]) -> Tensor {
    Tensor::I8(ArrayD::zeros(IxDyn(shape)))
}

/// The int8 layers where they apply: 2-D Conv / ConvTranspose with int8 weights (and int32
/// bias), 2-D AveragePool fed by an AscendQuant. `Ok(None)` when the int8 AveragePool refuses
/// the layer because its border windows average fewer values (a documented refusal).
fn int8_user(case: &Case) -> Option<Result<Option<Vec<usize>>, String>> {
    let op = case.node().op_type();
    let x = case.input_shape(0)?;
    if x.len() != 4 {
        return None;
    }
    let q = zeros_i8(x);
    if is_conv(case) {
        let w = zeros_i8(case.input_shape(1)?);
        let c_out = if op == "Conv" {
            w.shape()[0]
        } else {
            w.shape()[1] * case.node().attribute.iter().find(|a| a.name() == "group").map_or(1, |a| a.i() as usize)
        };
        let bias = case.input_shape(2).map(|_| Tensor::I32(ArrayD::zeros(IxDyn(&[c_out]))));
        let constants = vec![None, Some(w.clone()), bias.clone()];
        let inputs = [Some(q), Some(w), bias];
        return Some(run_engine(case, constants, vec![], &inputs[..case.node().input.len()]).map(Some));
    }
    if op != "AveragePool" {
        return None;
    }
    let quant = node(
        "AscendQuant",
        "quant",
        &["x_float"],
        &[case.node().input[0].as_str()],
        vec![attr_float("scale", 1.0), attr_float("offset", 0.0)],
    );
    match run_engine(case, vec![], vec![Some(&quant)], &[Some(q)]) {
        Ok(shape) => Some(Ok(Some(shape))),
        Err(e) if e.contains("full kernel area") || e.contains("no single divisor") => Some(Ok(None)),
        Err(e) => Some(Err(e)),
    }
}

/// A user of the window module and the output shape it gives (None: the op does not apply).
type UserShape = (&'static str, Result<Option<Vec<usize>>, String>);

/// Every user's output shape for `case`, named.
fn all_users(case: &Case) -> Vec<UserShape> {
    let mut users = vec![("shape inference", inferred(case).map(Some))];
    users.extend(fp32_users(case).into_iter().map(|(n, r)| (n, r.map(Some))));
    if let Some(r) = int8_user(case) {
        users.push(("int8 layer", r));
    }
    users
}

fn has_attr(node: &NodeProto, name: &str) -> bool {
    node.attribute.iter().any(|a| a.name() == name)
}

fn nonzero_pads(node: &NodeProto) -> bool {
    node.attribute.iter().any(|a| a.name() == "pads" && a.ints.iter().any(|&p| p != 0))
}

#[test]
fn every_user_sizes_the_conformance_windows_like_the_expected_outputs() {
    let Some(dir) = common::asset("onnx-node-cases") else { return };
    let cases = load_cases(&dir);
    let mut failures = Vec::new();
    let (mut checks, mut int8_runs, mut empty_auto_pad, mut rejected) = (0, 0, 0, 0);
    for case in &cases {
        for (user, got) in all_users(case) {
            match got {
                Ok(Some(shape)) if shape == case.expected => {
                    checks += 1;
                    int8_runs += (user == "int8 layer") as usize;
                }
                Ok(None) => {}
                Ok(Some(shape)) => failures.push(format!("{}: {user}: shape {shape:?}, expected {:?}", case.name, case.expected)),
                Err(e) => failures.push(format!("{}: {user}: {e}", case.name)),
            }
        }
        let node = case.node();
        let auto_pad_set = node.attribute.iter().any(|a| a.name() == "auto_pad" && !matches!(a.s(), b"" | b"NOTSET"));
        if !auto_pad_set {
            // auto_pad = "" is NOTSET: the same shape for every user.
            let variant = case.with_node(|n| {
                n.attribute.retain(|a| a.name() != "auto_pad");
                n.attribute.push(attr_string("auto_pad", ""));
            });
            for (user, got) in all_users(&variant) {
                match got {
                    Ok(Some(shape)) if shape == case.expected => empty_auto_pad += 1,
                    Ok(None) => {}
                    other => failures.push(format!("{} with auto_pad \"\": {user}: {other:?}, expected {:?}", case.name, case.expected)),
                }
            }
        }
        if nonzero_pads(node) && has_attr(node, "pads") {
            // Explicit pads with SAME_UPPER: every user refuses, naming both attributes.
            let variant = case.with_node(|n| {
                n.attribute.retain(|a| a.name() != "auto_pad");
                n.attribute.push(attr_string("auto_pad", "SAME_UPPER"));
            });
            for (user, got) in all_users(&variant) {
                match got {
                    Err(e) if e.contains("'pads'") && e.contains("'auto_pad'") => rejected += 1,
                    other => {
                        failures.push(format!("{} with pads and auto_pad SAME_UPPER: {user}: {other:?}, expected an error", case.name))
                    }
                }
            }
        }
    }
    eprintln!(
        "{} cases: {checks} shapes agree ({int8_runs} int8), {empty_auto_pad} agree with auto_pad \"\", {rejected} refusals of pads + auto_pad",
        cases.len()
    );
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
    // onnx 1.23.2 generates 67 single-node window cases (170 agreeing shapes, 22 of them int8, 42 refusals); make sure they were all seen.
    assert!(
        cases.len() >= 67 && checks >= 170 && int8_runs >= 22 && rejected >= 42,
        "too few checks: {} cases, {checks} checks",
        cases.len()
    );
}

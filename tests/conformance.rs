//! ONNX node conformance cases (generated from the `onnx` wheel by
//! tests/oracle/gen_node_cases.py). Every case listed in tests/conformance/expected_pass.txt
//! must pass: same dtype and shape, values within the case's rtol/atol. Cases made only of
//! ops we register but not listed are run and reported, so the list can grow
//! (UPDATE_CONFORMANCE=1 rewrites it with every passing case).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use ascend_ptq::engine::{Registry, Session, Tensor};
use ascend_ptq::onnx::{TensorProto, load_model};
use prost::Message;

fn read_tensor(path: &Path) -> Result<(String, Tensor), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let proto = TensorProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let t = ascend_ptq::onnx::Tensor::from_proto(&proto).map_err(|e| e.to_string())?;
    Ok((proto.name().to_string(), Tensor::from_onnx(&t, proto.name()).map_err(|e| e.to_string())?))
}

fn close(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} != expected {}", got.dtype_name(), want.dtype_name()));
    }
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} != expected {:?}", got.shape(), want.shape()));
    }
    for (i, (a, b)) in got.to_f64_vec().into_iter().zip(want.to_f64_vec()).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs();
        if !ok {
            return Err(format!("element {i}: {a} != expected {b}"));
        }
    }
    Ok(())
}

fn run_case(dir: &Path) -> Result<(), String> {
    let model = load_model(dir.join("model.onnx")).map_err(|e| e.to_string())?;
    let tol: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tolerance.json")).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (rtol, atol) = (tol["rtol"].as_f64().unwrap_or(1e-3), tol["atol"].as_f64().unwrap_or(1e-7));
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let mut sets: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test data".into());
    }
    for set in sets {
        let mut inputs = HashMap::new();
        let mut shapes = HashMap::new();
        for (j, info) in graph.input.iter().enumerate() {
            let p = set.join(format!("input_{j}.pb"));
            if !p.exists() {
                continue;
            }
            let (_, t) = read_tensor(&p)?;
            shapes.insert(info.name().to_string(), t.shape().iter().map(|&d| d as i64).collect());
            inputs.insert(info.name().to_string(), t);
        }
        let session = Session::new(&model, &shapes).map_err(|e| e.to_string())?;
        let outputs = session.run(inputs).map_err(|e| e.to_string())?;
        for (j, (name, got)) in outputs.iter().enumerate() {
            let p = set.join(format!("output_{j}.pb"));
            if !p.exists() {
                return Err(format!("output {name}: no reference"));
            }
            let (_, want) = read_tensor(&p)?;
            close(got, &want, rtol, atol).map_err(|e| format!("output '{name}': {e}"))?;
        }
    }
    Ok(())
}

#[test]
fn onnx_node_conformance() {
    let Some(cases_dir) = common::asset("onnx-node-cases") else { return };
    let list_path = common::repo_root().join("tests/conformance/expected_pass.txt");
    let expected: BTreeSet<String> = std::fs::read_to_string(&list_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let registry = Arc::new(Registry::with_all_ops());
    let mut names: Vec<String> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("model.onnx").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();

    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut passing = BTreeSet::new();
    let mut failures = Vec::new();
    for name in &names {
        let dir = cases_dir.join(name);
        let Ok(model) = load_model(dir.join("model.onnx")) else { continue };
        let ops: BTreeSet<String> = model.graph.iter().flat_map(|g| g.node.iter()).map(|n| n.op_type().to_string()).collect();
        let claimed =
            !ops.is_empty() && model.graph.iter().flat_map(|g| g.node.iter()).all(|n| registry.get(n.domain(), n.op_type()).is_some());
        if !claimed && !expected.contains(name) {
            continue;
        }
        let result = std::panic::catch_unwind(|| run_case(&dir)).unwrap_or_else(|p| {
            Err(format!(
                "PANIC: {}",
                p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
            ))
        });
        let main_op = model.graph.as_ref().and_then(|g| g.node.last()).map(|n| n.op_type().to_string()).unwrap_or_default();
        let entry = per_op.entry(main_op).or_default();
        entry.1 += 1;
        match result {
            Ok(()) => {
                entry.0 += 1;
                passing.insert(name.clone());
            }
            Err(e) => {
                if expected.contains(name) || e.starts_with("PANIC") {
                    failures.push(format!("{name}: {e}"));
                } else {
                    eprintln!("not listed, failing: {name}: {e}");
                }
            }
        }
    }
    eprintln!("conformance per op (passed/run):");
    for (op, (pass, run)) in &per_op {
        eprintln!("  {op:<28} {pass}/{run}");
    }
    let total_pass = passing.len();
    eprintln!("conformance: {total_pass} cases pass, {} listed", expected.len());
    let newly: Vec<_> = passing.difference(&expected).collect();
    if !newly.is_empty() {
        eprintln!("passing but not listed ({}): {newly:?}", newly.len());
    }
    if std::env::var_os("UPDATE_CONFORMANCE").is_some_and(|v| v == "1") {
        let mut text =
            String::from("# ONNX node cases the engine must pass (regenerate: UPDATE_CONFORMANCE=1 cargo test --test conformance)\n");
        for n in &passing {
            text.push_str(n);
            text.push('\n');
        }
        std::fs::write(&list_path, text).unwrap();
        return;
    }
    assert!(failures.is_empty(), "{} listed/panicking cases fail:\n{}", failures.len(), failures.join("\n"));
}

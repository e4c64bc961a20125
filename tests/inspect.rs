//! `ascend-ptq inspect` on the real models, checked against an independent count made with
//! the onnx package and shapes measured by ONNX Runtime (tests/oracle/model_stats.py).

mod common;

use serde_json::{Value, json};

fn inspect_json(model: &std::path::Path, shape: Option<&str>) -> Value {
    let mut cmd = common::cli();
    cmd.arg("inspect").arg(model).arg("--json");
    if let Some(s) = shape {
        cmd.args(["--input_shape", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn summaries_match_the_onnx_and_onnxruntime_oracle() {
    let Some(py) = common::oracle_python() else { return };
    for (rel, shape) in [(common::DET, "x:1,3,640,640"), (common::REC, "x:1,3,48,320"), (common::CLS, "x:1,3,48,192")] {
        let Some(model) = common::asset(rel) else { return };
        let ours = inspect_json(&model, Some(shape));
        let (code, stdout, stderr) = common::run_oracle(&py, "model_stats.py", &[model.to_str().unwrap(), shape]);
        assert_eq!(code, 0, "{stderr}");
        let oracle: Value = serde_json::from_str(&stdout).unwrap();

        assert_eq!(ours["op_histogram"], oracle["op_histogram"], "{rel}: op histogram");
        assert_eq!(ours["parameter_count"], oracle["parameter_count"], "{rel}: parameters");
        assert_eq!(ours["macs"]["by_op_type"], oracle["macs"], "{rel}: MACs per op type");
        assert_eq!(ours["macs"]["unresolved_nodes"], json!([]), "{rel}");
        let opsets: serde_json::Map<String, Value> = ours["opset_imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["domain"].as_str().unwrap().to_string(), o["version"].clone()))
            .collect();
        assert_eq!(Value::Object(opsets), oracle["opsets"], "{rel}: opsets");
    }
}

#[test]
fn dynamic_dims_are_shown_by_name_and_macs_need_a_shape() {
    let Some(det) = common::asset(common::DET) else { return };
    let v = inspect_json(&det, None);
    assert_eq!(
        v["inputs"],
        json!([{"name": "x", "dtype": "float", "shape": ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"]}])
    );
    assert_eq!(v["outputs"][0]["name"], "sigmoid_0.tmp_0");
    assert_eq!(v["macs"], Value::Null);
    assert!(v["macs_note"].as_str().unwrap().contains("--input_shape"), "{}", v["macs_note"]);

    // The text view carries the same facts for a person.
    let out = common::cli().arg("inspect").arg(&det).args(["--input_shape", "x:1,3,640,640"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("x  float  [p2o.DynamicDimension.0, 3, p2o.DynamicDimension.1, p2o.DynamicDimension.2]"), "{text}");
    assert!(text.contains("MACs:       2301935744 (2.30 G) for x:[1, 3, 640, 640]"), "{text}");
}

/// The model the `onnx_load` fuzz target crashed on (fuzz/artifacts/onnx_load/crash-9510eaee…,
/// 189 bytes): a Conv whose kernel_shape was mutated so the window arithmetic overflowed in
/// src/onnx/window.rs. It must give a summary or an error naming the file, not a panic.
#[test]
fn fuzz_crash_conv_window_overflow_is_an_error() {
    const CRASH: &str = concat!(
        "08083ab2010a2d0a01780a01771201791a05636f6e76302204436f6e762a150a0c6b65726e656c5f7368617026400140",
        "01a001070a130a017912017a1a0572656c7530220452656c751201672a2f080208040800080110014201774a20000000",
        "3f000080bf0800803e00000040004fc03f000000bf0000403f0000803f5a1b0a017812160a14480112100a0208010a02",
        "08040a0208080a020808621b0a01087a160a12140112100a0208010a08020208020a080a02080842040a00100d"
    );
    inspect_fuzz_crash(CRASH, "fuzz_crash.onnx");
}

/// The model the `onnx_load` fuzz target crashed on in CI (fuzz/artifacts/onnx_load/
/// crash-43c60587…, 189 bytes): a Conv whose weight was inferred as rank 0, so the MAC count
/// sliced `w[1..]` out of range (src/onnx/inspect.rs). Dims from the file are also multiplied
/// saturating now. It must give a summary or an error naming the file, not a panic.
#[test]
fn fuzz_crash_rank0_conv_weight_is_not_a_panic() {
    const CRASH: &str = concat!(
        "08083ab2010a2d0a01780a01771201791a05636f6e76302204436f6e762a150a0c6b65726e656c5f7368617065400140",
        "01a001071201672a44c90208040801080110014201776a170a086c6f636174696f6e120b776569670100000062696e6a",
        "0c0a066f6666736574120236346a0c0a066c656e6774681202333270215a1b0a017812160a14080112100a0208010a02",
        "08040a0208080a020808621b0a017912160a14080112100a0208010a0208020a0208080a02080842040a00100d",
    );
    inspect_fuzz_crash(CRASH, "fuzz_crash_rank0.onnx");
}

/// `inspect` on a model the fuzzer crashed on (hex, written as `file_name`): a summary or an
/// error naming the file, never a panic.
fn inspect_fuzz_crash(hex: &str, file_name: &str) {
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    assert_eq!(bytes.len(), 189);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    std::fs::write(&path, &bytes).unwrap();
    let out = common::cli().arg("inspect").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    match out.status.code() {
        Some(0) => assert!(String::from_utf8_lossy(&out.stdout).contains("Conv"), "{}", String::from_utf8_lossy(&out.stdout)),
        Some(1) => assert!(stderr.contains(file_name), "{stderr}"),
        other => panic!("exit {other:?}: {stderr}"),
    }
}

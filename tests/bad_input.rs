//! Bad input files: each gives a clear error naming the file or tensor and what was
//! expected — from the library, from the CLI (exit code 1, never a panic's 101).

mod common;

use std::path::Path;

use ascend_ptq::onnx::proto::{GraphProto, ModelProto, TensorProto};
use ascend_ptq::onnx::{ExternalDataPolicy, SaveOptions, load_model, save_model};
use prost::Message;

/// The library error and the CLI's stderr for `inspect PATH`; both must contain `needles`.
fn expect_error(path: &Path, needles: &[&str]) {
    let err = load_model(path).expect_err("loading must fail").to_string();
    for n in needles {
        assert!(err.contains(n), "library error lacks {n:?}: {err}");
    }
    let out = common::cli().arg("inspect").arg(path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "CLI exit code for {}", path.display());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "CLI error lacks {n:?}: {stderr}");
        assert_eq!(stderr.matches(n).count(), err.matches(n).count(), "CLI error repeats {n:?}: {stderr}");
    }
}

#[test]
fn missing_file() {
    expect_error(Path::new("/nonexistent/dir/model.onnx"), &["/nonexistent/dir/model.onnx", "No such file"]);
}

#[test]
fn empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    expect_error(&p, &["empty.onnx", "file is empty", "ModelProto"]);
}

#[test]
fn non_onnx_files() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.onnx");
    std::fs::write(&text, "this is a text file, not a model\n").unwrap();
    expect_error(&text, &["notes.onnx", "not a valid ONNX model"]);
    // Bytes that happen to decode as protobuf but lack a graph.
    let proto_like = tmp.path().join("proto_like.onnx");
    std::fs::write(&proto_like, [0x08, 0x07]).unwrap();
    expect_error(&proto_like, &["proto_like.onnx", "not an ONNX model", "no graph"]);
}

#[test]
fn truncated_model() {
    let Some(det) = common::asset(common::DET) else { return };
    let bytes = std::fs::read(det).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("truncated.onnx");
    std::fs::write(&p, &bytes[..bytes.len() * 3 / 5]).unwrap();
    expect_error(&p, &["truncated.onnx", "truncated"]);
}

fn tiny_model(data_type: i32) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        graph: Some(GraphProto {
            name: Some("g".into()),
            initializer: vec![TensorProto {
                name: Some("w".into()),
                dims: vec![512],
                data_type: Some(data_type),
                raw_data: Some(vec![0u8; 2048]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn external_data_missing_or_short() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ext.onnx");
    let opts = SaveOptions { external: ExternalDataPolicy::Always { threshold: 1024 }, location: None };
    save_model(&tiny_model(1), &p, &opts).unwrap();
    let data = tmp.path().join("ext.onnx.data");
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 2048);

    let full = std::fs::read(&data).unwrap();
    std::fs::write(&data, &full[..1000]).unwrap();
    expect_error(&p, &["ext.onnx", "tensor 'w'", "holds 1000 bytes, shorter than declared"]);

    std::fs::remove_file(&data).unwrap();
    expect_error(&p, &["ext.onnx", "tensor 'w'", "ext.onnx.data"]);
}

#[test]
fn unknown_data_type() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("dtype.onnx");
    std::fs::write(&p, tiny_model(77).encode_to_vec()).unwrap();
    expect_error(&p, &["dtype.onnx", "tensor 'w'", "unknown data type 77"]);
}

#[test]
fn cli_rejects_bad_input_shape() {
    let Some(det) = common::asset(common::DET) else { return };
    for (arg, needle) in [("x", "--input_shape: item \"x\" has no ':'"), ("images:1,3,640,640", "'images' is not an input")] {
        let out = common::cli().arg("inspect").arg(&det).args(["--input_shape", arg]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}

//! `om-info`, `aptq_om_info` and the simulator's refusal on the OM files Huawei's ATC wrote
//! (`../shared/fixtures/real-om/`, docs/ascend-formats.md §12.5). Expected values are what the
//! fixtures' README says (model, input names and shapes, SoC, ATC version) and what the
//! recorded ATC command line says; header and table facts are the ones §12.5 lists.

mod common;

use std::path::PathBuf;

use ascend_ptq::device::om::{OmError, om_info_file, read_simulated_om_file};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    let path = common::repo_root().join("../shared/fixtures/real-om").join(name);
    assert!(path.is_file(), "{} is missing: the real OM fixtures live in ../shared/fixtures/real-om", path.display());
    path
}

/// What the fixtures' README says about each file, plus the header/table facts of §12.5.
struct Expect {
    file: &'static str,
    bytes: u64,
    version: u32,
    /// `None`: a 0x10000000 header has no model_num field.
    model_num: Option<u32>,
    header_name: &'static str,
    soc_version: Option<&'static str>,
    atc_version: Option<&'static str>,
    framework: Option<&'static str>,
    /// (name, shape, format) in model input order.
    inputs: &'static [(&'static str, &'static [i64], &'static str)],
    output_nodes: &'static [&'static str],
}

const FILES: &[Expect] = &[
    Expect {
        file: "autoencoder_ascend310_cann5.om",
        bytes: 618_993,
        version: 0x2000_0000,
        model_num: Some(1),
        header_name: "hh_om",
        soc_version: Some("Ascend310"),
        atc_version: Some("1.80.T15.0.B156"),
        framework: Some("TensorFlow"),
        inputs: &[("input", &[100, 784], "NHWC")],
        output_nodes: &["generation/output:0"],
    },
    Expect {
        file: "ddnet_ascend310_v1header.om",
        bytes: 4_112_752,
        version: 0x1000_0000,
        model_num: None,
        header_name: "out",
        soc_version: None,
        atc_version: Some("1.75.22.0.220"),
        framework: None,
        inputs: &[("Input", &[1, 32, 105], "NHWC"), ("Input_1", &[1, 32, 15, 2], "NHWC")],
        output_nodes: &["model_1/dense_2/Softmax:0"],
    },
    Expect {
        file: "a3c_pong_ascend310_v1header.om",
        bytes: 378_955,
        version: 0x1000_0000,
        model_num: None,
        header_name: "a3c_pong_model",
        soc_version: None,
        atc_version: Some("1.75.22.0.220"),
        framework: None,
        inputs: &[("s", &[1, 42, 42, 1], "NHWC")],
        output_nodes: &["out_a:0"],
    },
    Expect {
        file: "a3c_pong_ascend310_cann20.om",
        bytes: 377_283,
        version: 0x1000_0000,
        model_num: None,
        header_name: "a3c_pong_model",
        soc_version: None,
        atc_version: None,
        framework: None,
        inputs: &[("s", &[1, 42, 42, 1], "NHWC")],
        output_nodes: &["out_a:0"],
    },
];

fn om_info_json(path: &std::path::Path) -> Value {
    let out = common::cli().arg("om-info").arg(path).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `--input_shape=a:1,2;b:3` of an ATC command line, as (name, dims).
fn cmdline_shapes(cmdline: &str) -> Vec<(String, Vec<i64>)> {
    let spec = cmdline.split_whitespace().find_map(|a| a.strip_prefix("--input_shape=")).expect("--input_shape in the command line");
    spec.split(';')
        .map(|item| {
            let (name, dims) = item.rsplit_once(':').unwrap();
            (name.to_string(), dims.split(',').map(|d| d.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn every_real_fixture_reads_with_the_readme_values() {
    for e in FILES {
        let path = fixture(e.file);
        let v = om_info_json(&path);
        let f = e.file;
        assert_eq!(v["file_size"], e.bytes, "{f}");
        let h = &v["header"];
        assert_eq!(h["version"], e.version, "{f}");
        assert_eq!(h["model_num"], json!(e.model_num), "{f}");
        assert_eq!(h["name"], e.header_name, "{f}");
        assert_eq!(h["platform_version"], "1.11.z.0", "{f}: the platform string (at 156 in 0x10000000 headers, 160 after)");
        assert_eq!(h["platform_type"], 1, "{f}");
        assert_eq!(h["length"], e.bytes - 256, "{f}");
        assert_eq!(h["model_length"], Value::Null, "{f}");
        assert_eq!(v["model_num"], 1, "{f}");
        assert_eq!(v["partition_layout"], "old", "{f}");
        let parts = v["partitions"].as_array().unwrap();
        let kinds: Vec<&str> = parts.iter().map(|p| p["type_name"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["MODEL_DEF", "WEIGHTS_DATA", "TBE_KERNELS", "TASK_INFO"], "{f}");
        let payload: u64 = parts.iter().map(|p| p["size"].as_u64().unwrap()).sum();
        assert_eq!(256 + 4 + 12 * 4 + payload, e.bytes, "{f}: the table accounts for every byte");

        let models = v["models"].as_array().unwrap();
        assert_eq!(models.len(), 1, "{f}");
        let m = &models[0];
        assert_eq!(m["name"], e.header_name, "{f}");
        assert_eq!(m["soc_version"], json!(e.soc_version), "{f}");
        assert_eq!(m["target_type"], "MINI", "{f}: all four are Ascend310 builds");
        assert_eq!(m["atc_version"], json!(e.atc_version), "{f}");
        assert_eq!(m["framework_type"], json!(e.framework), "{f}");
        assert_eq!(m["io_source"], "model_def", "{f}: no MODEL_INOUT_INFO partition in these files");
        assert_eq!(m["io_note"], Value::Null, "{f}");
        let inputs: Vec<(String, Vec<i64>, String, String)> = m["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let shape = t["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
                (t["name"].as_str().unwrap().into(), shape, t["format"].as_str().unwrap().into(), t["dtype"].as_str().unwrap().into())
            })
            .collect();
        let expected: Vec<(String, Vec<i64>, String, String)> =
            e.inputs.iter().map(|(n, s, fmt)| (n.to_string(), s.to_vec(), fmt.to_string(), "FLOAT".to_string())).collect();
        assert_eq!(inputs, expected, "{f}");
        assert_eq!(m["output_nodes"], json!(e.output_nodes), "{f}");
        assert_eq!(m["outputs"].as_array().unwrap().len(), 1, "{f}");
        assert_eq!(m["quantization"]["quantized"], false, "{f}: float TensorFlow models");
        assert_eq!(m["aipp"]["static_aipp"], false, "{f}");
        assert!(m["op_histogram"]["Data"].as_u64() == Some(e.inputs.len() as u64), "{f}: {}", m["op_histogram"]);
        assert!(m["op_histogram"].as_object().unwrap().len() > 3, "{f}: {}", m["op_histogram"]);

        // The one file that records its ATC command line agrees with the README's and with
        // the inputs read from the graph.
        match m["atc_cmdline"].as_str() {
            Some(cmd) => {
                assert_eq!(f, "autoencoder_ascend310_cann5.om");
                for arg in ["--framework=3", "--soc_version=Ascend310", "--input_shape=input:100,784"] {
                    assert!(cmd.split_whitespace().any(|a| a == arg), "{f}: {arg} not in {cmd}");
                }
                assert!(cmd.contains("/hh.pb") && cmd.contains("/hh_om"), "{cmd}");
                let from_cmd = cmdline_shapes(cmd);
                let from_graph: Vec<(String, Vec<i64>)> = inputs.iter().map(|(n, s, _, _)| (n.clone(), s.clone())).collect();
                assert_eq!(from_cmd, from_graph, "{f}");
            }
            None => assert_ne!(f, "autoencoder_ascend310_cann5.om"),
        }
    }
}

#[test]
fn text_summary_of_real_files() {
    let out = common::cli().arg("om-info").arg(fixture("ddnet_ascend310_v1header.om")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "version 0x10000000",
        "model_num - (not in 0x10000000 headers), platform \"1.11.z.0\"",
        "Body length: 4112496 bytes (u32 length at offset 76)",
        "Partitions:  old (u32 offsets/sizes)",
        "SoC version: - (target_type MINI: an Ascend 310 target)",
        "ATC version: 1.75.22.0.220",
        "I/O from:    ModelDef (Data and NetOutput ops)",
        "  Input  FLOAT  [1, 32, 105]  NHWC",
        "  Input_1  FLOAT  [1, 32, 15, 2]  NHWC",
        "Quantized:   no",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let out = common::cli().arg("om-info").arg(fixture("autoencoder_ascend310_cann5.om")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in ["model_num 1, platform \"1.11.z.0\"", "SoC version: Ascend310 (target_type MINI)", "Framework:   TensorFlow"] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// The C API returns the same document as the CLI for every real file.
#[test]
fn c_api_reads_every_real_fixture() {
    use ascend_ptq::capi::{aptq_om_info, aptq_status, aptq_string_free};
    use std::ffi::{CStr, CString, c_char};
    for e in FILES {
        let path = fixture(e.file);
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        let mut out: *mut c_char = std::ptr::null_mut();
        assert_eq!(unsafe { aptq_om_info(c_path.as_ptr(), &mut out) }, aptq_status::APTQ_OK, "{}", e.file);
        let json: Value = serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
        unsafe { aptq_string_free(out) };
        assert_eq!(json, om_info_json(&path), "{}", e.file);
    }
}

/// The ACL simulator's loader goes through the same container reader and refuses real OMs by
/// name (not with a parse error about the header or the table).
#[test]
fn simulator_refuses_every_real_fixture_as_not_simulated() {
    for e in FILES {
        let path = fixture(e.file);
        match read_simulated_om_file(&path) {
            Err(err @ OmError::NotSimulated { .. }) => {
                let msg = err.to_string();
                assert!(msg.contains(e.file) && msg.contains("real Ascend OM built by ATC"), "{msg}");
            }
            Err(other) => panic!("{}: expected NotSimulated, got: {other}", e.file),
            Ok(_) => panic!("{}: a real OM was accepted as simulated", e.file),
        }
        assert!(om_info_file(&path).unwrap().simulated.is_none());
    }
}

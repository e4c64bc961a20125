//! One bad-input matrix over every command and the matching C functions (issue 17): missing
//! files, directories, empty / truncated / bit-flipped models, OMs, bins, configs and JSON,
//! wrong sizes, NaN / Inf, dims that overflow, names with spaces and non-ASCII, unwritable
//! outputs, outputs that would overwrite an input, NULL arguments and handles, missing,
//! wrong-architecture or symbol-less `libascendcl.so`.
//!
//! For every row: a non-zero exit status that is not a panic's 101 (or a C status other than
//! `APTQ_OK`), exactly one `error:` line (one message, `aptq_last_error` for C) containing the
//! row's needles — the file, flag or tensor and what was expected —, no "panicked", and the
//! fixture folder byte-for-byte as before (every file's SHA-256): no output, partial or
//! complete, and no input touched. The table the README shows is printed by
//! `cargo test --test bad_input -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};

use ascend_ptq::capi::{
    aptq_acl, aptq_acl_open, aptq_aipp, aptq_calibrate, aptq_flow, aptq_inspect, aptq_last_error, aptq_model, aptq_model_load,
    aptq_om_info, aptq_preprocess, aptq_status,
};
use ascend_ptq::onnx::proto::ModelProto;
use ascend_ptq::onnx::{DataType, ExternalDataPolicy, SaveOptions, TensorData, save_model};
use common::graph::{attr_ints, model, node, tensor, value_info};
use prost::Message;
use sha2::{Digest, Sha256};

const SHAPE: &str = "x:1,3,8,8";
const ELEMS: usize = 3 * 8 * 8;

/// x[1,3,8,8] → Conv(4 filters 3×3, pads 1) → Relu → y[1,4,8,8].
fn conv_model() -> ModelProto {
    let w: Vec<f32> = (0..4 * 3 * 3 * 3).map(|i| ((i as f32) * 0.7).sin() * 0.5).collect();
    model(
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_ints("pads", &[1, 1, 1, 1])]),
            node("Relu", "relu", &["c"], &["y"], vec![]),
        ],
        vec![tensor("w", &[4, 3, 3, 3], TensorData::F32(w)), tensor("b", &[4], TensorData::F32(vec![0.1, -0.2, 0.05, 0.0]))],
        vec![value_info("x", DataType::Float, &[1, 3, 8, 8])],
        vec![value_info("y", DataType::Float, &[1, 4, 8, 8])],
        13,
    )
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// The fixture folder: valid inputs of every kind and their broken variants.
struct Fx {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fx {
    fn p(&self, rel: &str) -> String {
        self.root.join(rel).to_str().unwrap().to_string()
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn new() -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("fx");
        std::fs::create_dir(&root).unwrap();
        let fx = Fx { _tmp: tmp, root };
        let model = conv_model().encode_to_vec();
        fx.write("model.onnx", &model);
        fx.write("trunc.onnx", &model[..model.len() * 3 / 5]);
        let mut flip = model.clone();
        flip[0] = 0xFF; // wire type 7 does not exist
        fx.write("flip.onnx", &flip);
        fx.write("empty.onnx", b"");
        std::fs::create_dir(fx.root.join("dir.onnx")).unwrap();
        fx.write("名前 with space/模型 ü.onnx", &model[..model.len() / 2]);
        let mut dtype = conv_model();
        dtype.graph.as_mut().unwrap().initializer[0].data_type = Some(77);
        fx.write("dtype77.onnx", &dtype.encode_to_vec());
        // External data, then the data file cut short.
        let ext = fx.root.join("ext/ext.onnx");
        std::fs::create_dir(fx.root.join("ext")).unwrap();
        save_model(&conv_model(), &ext, &SaveOptions { external: ExternalDataPolicy::Always { threshold: 16 }, location: None }).unwrap();
        let data = fx.root.join("ext/ext.onnx.data");
        let full = std::fs::read(&data).unwrap();
        std::fs::write(&data, &full[..full.len() - 7]).unwrap();
        // An external-data tensor of 2^61 floats: its byte length overflows a usize.
        let mut huge = conv_model();
        {
            use ascend_ptq::onnx::proto::{StringStringEntryProto, tensor_proto::DataLocation};
            let w = &mut huge.graph.as_mut().unwrap().initializer[0];
            w.dims = vec![1 << 61];
            w.raw_data = None;
            w.float_data.clear();
            w.data_location = Some(DataLocation::External as i32);
            w.external_data = vec![StringStringEntryProto { key: Some("location".into()), value: Some("w.bin".into()) }];
        }
        fx.write("ext_huge/huge.onnx", &huge.encode_to_vec());
        fx.write("ext_huge/w.bin", &[0u8; 64]);
        // A model whose deploy output `m_deploy_model.onnx` is the --model itself.
        fx.write("m_deploy_model.onnx", &model);

        let good: Vec<f32> = (0..ELEMS).map(|i| (i as f32 * 0.37).sin()).collect();
        fx.write("data/0001.bin", &f32_bytes(good.iter().copied()));
        fx.write("short/0001.bin", &f32_bytes(good.iter().copied())[..700]);
        fx.write("emptybin/0001.bin", b"");
        let mut nan = good.clone();
        nan[5] = f32::NAN;
        fx.write("nan/0001.bin", &f32_bytes(nan));
        let mut inf = good.clone();
        inf[7] = f32::INFINITY;
        fx.write("inf/0001.bin", &f32_bytes(inf));
        fx.write("x.bin", &f32_bytes(good.iter().copied()));
        fx.write("x_short.bin", &f32_bytes(good.iter().copied())[..100]);
        // `run` would write y.bin here: an input of that name must not be overwritten.
        fx.write("outs/y.bin", &f32_bytes(good.iter().copied()));

        let params = r#"{
  "det_pre_params": {"img_root": "imgs", "fixed_scale": 1, "batch_size": 1, "des_channels": 3, "des_height": 8,
                     "des_width": 8, "is_BGR2RGB": 1, "means": [0.485, 0.456, 0.406], "stds": [0.229, 0.224, 0.225]}
}
"#;
        fx.write("params.json", params.as_bytes());
        fx.write("params_trunc.json", &params.as_bytes()[..params.len() / 2]);
        fx.write("params_flip.json", &params.replacen(':', "\u{1}", 1).into_bytes());
        fx.write("params_type.json", params.replace("\"des_height\": 8", "\"des_height\": \"eight\"").as_bytes());
        fx.write("params_empty.json", b"");
        let aipp = "aipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n  src_image_size_w: 8\n  src_image_size_h: 8\n  \
                    csc_switch: false\n  rbuv_swap_switch: true\n  mean_chn_0: 0\n  var_reci_chn_0: 0.0171\n}\n";
        fx.write("aipp.cfg", aipp.as_bytes());
        fx.write("aipp_trunc.cfg", &aipp.as_bytes()[..aipp.len() / 2]);
        fx.write("aipp_flip.cfg", aipp.replacen("static", "st\u{1}tic", 1).as_bytes());
        fx.write("calib_trunc.cfg", b"batch_num: 1\ncommon_config {\n  arq_quantize {\n");
        fx.write("calib_flip.cfg", b"batch_num: 1\nskip_layers: \"conv\x01\n");
        fx.write("flow_empty.json", b"");
        fx.write("flow_trunc.json", b"{\"detPreParams\": {\"imgRoot\": \"imgs\", ");
        fx.write("flow_flip.json", b"{\"onnxPath\" \x01 \"model.onnx\"}");

        let real = common::repo_root().join("../shared/fixtures/real-om/a3c_pong_ascend310_cann20.om");
        let om = std::fs::read(&real).unwrap_or_else(|e| panic!("{}: {e}", real.display()));
        fx.write("real.om", &om);
        fx.write("trunc.om", &om[..300]);
        let mut flip = om.clone();
        flip[1] ^= 0x40;
        fx.write("flip.om", &flip);
        fx.write("empty.om", b"");
        std::fs::create_dir(fx.root.join("dir.om")).unwrap();
        let mut len = om.clone();
        len[76..80].copy_from_slice(&12u32.to_le_bytes());
        fx.write("length.om", &len);

        // An ELF header for AArch64 (e_machine 183): what a board's libascendcl.so looks like here.
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[6] = 1;
        elf[16] = 3; // ET_DYN
        elf[18..20].copy_from_slice(&183u16.to_le_bytes());
        fx.write("arm64/libascendcl.so", &elf);
        fx
    }

    /// SHA-256 of every file below the root (directories themselves are not outputs).
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let digest = Sha256::digest(std::fs::read(&path).unwrap());
                    out.insert(path, digest.iter().map(|b| format!("{b:02x}")).collect());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &mut out);
        out
    }
}

type CCall = Box<dyn Fn(&Fx) -> aptq_status>;

enum Call {
    Cli(Vec<String>),
    C(CCall),
}

struct Row {
    command: &'static str,
    fault: &'static str,
    call: Call,
    needles: Vec<String>,
}

fn cli(command: &'static str, fault: &'static str, args: &[&str], needles: &[&str]) -> Row {
    let mut v = vec![command.to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    Row { command, fault, call: Call::Cli(v), needles: needles.iter().map(|s| s.to_string()).collect() }
}

fn capi(command: &'static str, fault: &'static str, f: impl Fn(&Fx) -> aptq_status + 'static, needles: &[&str]) -> Row {
    Row { command, fault, call: Call::C(Box::new(f)), needles: needles.iter().map(|s| s.to_string()).collect() }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn out_str() -> *mut c_char {
    std::ptr::null_mut()
}

/// A real shared library without a single ACL symbol.
fn library_without_acl() -> String {
    common::cdylib_dir().join("libascend_ptq.so").to_str().unwrap().to_string()
}

fn rows(fx: &Fx) -> Vec<Row> {
    let p = |rel: &str| fx.p(rel);
    let (model, trunc, flip) = (p("model.onnx"), p("trunc.onnx"), p("flip.onnx"));
    let missing_model = p("名前 with space/missing ü.onnx");
    let spaced = p("名前 with space/模型 ü.onnx");
    let sim = common::acl_sim_lib().to_str().unwrap().to_string();
    let arm = p("arm64/libascendcl.so");
    let no_acl = library_without_acl();
    let huge = "x:4611686018427387904,4611686018427387904,1,1";
    let x_in = format!("x={}", p("x.bin"));
    let calib = |data: &str, extra: &[&str]| {
        let mut a = vec!["--model".to_string(), model.clone(), "--save_path".into(), p("out/m"), "--input_shape".into(), SHAPE.into()];
        a.extend(["--data_dir".to_string(), p(data)]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let calib_row = |fault: &'static str, data: &str, extra: &[&str], needles: &[&str]| {
        let args = calib(data, extra);
        cli("calibration", fault, &args.iter().map(String::as_str).collect::<Vec<_>>(), needles)
    };
    vec![
        // ---- inspect
        cli("inspect", "missing file (spaces, non-ASCII name)", &[&missing_model], &[&missing_model, "No such file"]),
        cli("inspect", "directory instead of file", &[&p("dir.onnx")], &["dir.onnx", "is a directory"]),
        cli("inspect", "empty file", &[&p("empty.onnx")], &["empty.onnx", "file is empty"]),
        cli("inspect", "truncated model", &[&trunc], &["trunc.onnx", "not a valid ONNX model"]),
        cli("inspect", "truncated model, spaces and non-ASCII in the name", &[&spaced], &[&spaced, "not a valid ONNX model"]),
        cli("inspect", "bit-flipped model", &[&flip], &["flip.onnx", "not a valid ONNX model"]),
        cli("inspect", "unknown tensor data type", &[&p("dtype77.onnx")], &["dtype77.onnx", "tensor 'w'", "unknown data type 77"]),
        cli("inspect", "external data file shorter than declared", &[&p("ext/ext.onnx")], &["ext.onnx", "tensor", "shorter than declared"]),
        cli("inspect", "external tensor whose dims overflow usize", &[&p("ext_huge/huge.onnx")], &["huge.onnx", "tensor 'w'"]),
        cli(
            "inspect",
            "--input_shape dims overflow usize",
            &[&model, "--input_shape", huge],
            &["--input_shape", "more than any tensor can hold"],
        ),
        cli("inspect", "--input_shape without ':'", &[&model, "--input_shape", "x"], &["--input_shape", "has no ':'"]),
        // ---- run
        cli("run", "missing model", &["--model", &missing_model, "--input", &x_in, "--output_dir", &p("out")], &[&missing_model]),
        cli(
            "run",
            "missing input bin",
            &["--model", &model, "--input", &format!("x={}", p("nope.bin")), "--output_dir", &p("out")],
            &["nope.bin"],
        ),
        cli(
            "run",
            "input bin of the wrong size",
            &["--model", &model, "--input", &format!("x={}", p("x_short.bin")), "--output_dir", &p("out")],
            &["x_short.bin", "768"],
        ),
        cli(
            "run",
            "input name not in the model",
            &["--model", &model, "--input", &format!("z={}", p("x.bin")), "--output_dir", &p("out")],
            &["'z'"],
        ),
        cli(
            "run",
            "--output_dir below a regular file",
            &["--model", &model, "--input", &x_in, "--output_dir", &p("x.bin/sub")],
            &["x.bin/sub"],
        ),
        cli(
            "run",
            "output path equal to an input",
            &["--model", &model, "--input", &format!("x={}", p("outs/y.bin")), "--output_dir", &p("outs")],
            &["y.bin"],
        ),
        // ---- bench
        cli("bench", "truncated model", &["--model", &trunc, "--runs", "1", "--warmup", "0"], &["trunc.onnx"]),
        cli(
            "bench",
            "--input_shape dims overflow usize",
            &["--model", &model, "--input_shape", huge, "--runs", "1"],
            &["--input_shape", "more than any tensor can hold"],
        ),
        // ---- preprocess
        cli("preprocess", "missing parameter file", &[&p("nope.json"), "--out", &p("out")], &["nope.json"]),
        cli("preprocess", "directory instead of file", &[&p("dir.onnx"), "--out", &p("out")], &["dir.onnx"]),
        cli("preprocess", "empty JSON", &[&p("params_empty.json"), "--out", &p("out")], &["params_empty.json"]),
        cli("preprocess", "truncated JSON", &[&p("params_trunc.json"), "--out", &p("out")], &["params_trunc.json"]),
        cli("preprocess", "bit-flipped JSON", &[&p("params_flip.json"), "--out", &p("out")], &["params_flip.json"]),
        cli("preprocess", "wrong value type", &[&p("params_type.json"), "--out", &p("out")], &["params_type.json", "des_height"]),
        // ---- aipp
        cli("aipp", "truncated JSON", &[&p("params_trunc.json"), "--out", &p("out/a.cfg")], &["params_trunc.json"]),
        cli("aipp", "--out below a regular file", &[&p("params.json"), "--out", &p("x.bin/a.cfg")], &["x.bin", "Not a directory"]),
        cli("aipp", "--out equal to the input", &[&p("params.json"), "--out", &p("params.json")], &["params.json"]),
        cli(
            "aipp",
            "--src_size overflows usize",
            &[&p("params.json"), "--out", &p("out/a.cfg"), "--src_size", "99999999999999999999,8"],
            &["--src_size"],
        ),
        // ---- calibration
        cli(
            "calibration",
            "missing model",
            &["--model", &missing_model, "--save_path", &p("out/m"), "--data_dir", &p("data")],
            &[&missing_model],
        ),
        cli(
            "calibration",
            "truncated model",
            &["--model", &trunc, "--save_path", &p("out/m"), "--input_shape", SHAPE, "--data_dir", &p("data")],
            &["trunc.onnx"],
        ),
        calib_row("bin of the wrong size", "short", &[], &["0001.bin", "700"]),
        calib_row("empty bin", "emptybin", &[], &["0001.bin"]),
        calib_row("NaN in a bin", "nan", &[], &["0001.bin", "is NaN", "must be finite"]),
        calib_row("Inf in a bin", "inf", &[], &["0001.bin", "is inf", "must be finite"]),
        calib_row("truncated --calibration_config", "data", &["--calibration_config", &p("calib_trunc.cfg")], &["calib_trunc.cfg"]),
        calib_row("bit-flipped --calibration_config", "data", &["--calibration_config", &p("calib_flip.cfg")], &["calib_flip.cfg"]),
        calib_row("unknown --data_types", "data", &["--data_types", "float33"], &["--data_types", "float33"]),
        cli(
            "calibration",
            "--input_shape dims overflow usize",
            &["--model", &model, "--save_path", &p("out/m"), "--input_shape", huge, "--data_dir", &p("data")],
            &["--input_shape", "more than any tensor can hold"],
        ),
        cli(
            "calibration",
            "--save_path below a regular file",
            &["--model", &model, "--save_path", &p("x.bin/m"), "--input_shape", SHAPE, "--data_dir", &p("data")],
            &["--save_path", "x.bin"],
        ),
        cli(
            "calibration",
            "output path equal to the input model",
            &["--model", &p("m_deploy_model.onnx"), "--save_path", &p("m"), "--input_shape", SHAPE, "--data_dir", &p("data")],
            &["m_deploy_model.onnx"],
        ),
        // ---- build
        cli(
            "build",
            "missing model",
            &[
                "--simulate",
                "--soc_version",
                "Ascend310P3",
                "--only",
                "fp16",
                "--model",
                &missing_model,
                "--input_shape",
                SHAPE,
                "--out_dir",
                &p("out"),
            ],
            &[&missing_model],
        ),
        cli(
            "build",
            "truncated --aipp config",
            &[
                "--simulate",
                "--soc_version",
                "Ascend310P3",
                "--only",
                "fp16",
                "--model",
                &model,
                "--input_shape",
                SHAPE,
                "--aipp",
                &p("aipp_trunc.cfg"),
                "--out_dir",
                &p("out"),
            ],
            &["aipp_trunc.cfg"],
        ),
        cli(
            "build",
            "bit-flipped --aipp config",
            &[
                "--simulate",
                "--soc_version",
                "Ascend310P3",
                "--only",
                "fp16",
                "--model",
                &model,
                "--input_shape",
                SHAPE,
                "--aipp",
                &p("aipp_flip.cfg"),
                "--out_dir",
                &p("out"),
            ],
            &["aipp_flip.cfg"],
        ),
        cli(
            "build",
            "--out_dir below a regular file",
            &[
                "--simulate",
                "--soc_version",
                "Ascend310P3",
                "--only",
                "fp16",
                "--model",
                &model,
                "--input_shape",
                SHAPE,
                "--out_dir",
                &p("x.bin/om"),
            ],
            &["x.bin/om"],
        ),
        // ---- om-info
        cli("om-info", "missing file", &[&p("nope.om")], &["nope.om"]),
        cli("om-info", "directory instead of file", &[&p("dir.om")], &["dir.om"]),
        cli("om-info", "empty file", &[&p("empty.om")], &["empty.om", "file is empty"]),
        cli("om-info", "truncated OM", &[&p("trunc.om")], &["trunc.om", "truncated"]),
        cli("om-info", "bit-flipped magic", &[&p("flip.om")], &["flip.om", "not an Ascend OM model"]),
        cli("om-info", "length field disagrees with the file", &[&p("length.om")], &["length.om", "length field says 12 bytes"]),
        // ---- om-run
        cli("om-run", "missing OM", &["--om", &p("nope.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &sim], &["nope.om"]),
        cli(
            "om-run",
            "truncated OM (simulator)",
            &["--om", &p("trunc.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &sim],
            &["trunc.om"],
        ),
        cli(
            "om-run",
            "real ATC OM (simulator)",
            &["--om", &p("real.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &sim],
            &["real.om", "real Ascend OM"],
        ),
        cli(
            "om-run",
            "missing libascendcl.so",
            &["--om", &p("real.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &p("none/libascendcl.so")],
            &["none/libascendcl.so"],
        ),
        cli(
            "om-run",
            "wrong-architecture libascendcl.so",
            &["--om", &p("real.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &arm],
            &["arm64/libascendcl.so"],
        ),
        cli(
            "om-run",
            "libascendcl.so without the ACL symbols",
            &["--om", &p("real.om"), "--input", &x_in, "--output_dir", &p("out"), "--acl-lib", &no_acl],
            &["libascend_ptq.so", "acl"],
        ),
        // ---- compare
        cli(
            "compare",
            "missing --int8 OM",
            &[
                "--int8",
                &p("nope.om"),
                "--fp16",
                &p("real.om"),
                "--data_dir",
                &p("data"),
                "--data_types",
                "float32",
                "--batch_num",
                "1",
                "--acl-lib",
                &sim,
                "--report",
                &p("out/r"),
            ],
            &["--int8", "nope.om"],
        ),
        cli(
            "compare",
            "wrong-architecture libascendcl.so",
            &[
                "--int8",
                &p("real.om"),
                "--fp16",
                &p("real.om"),
                "--data_dir",
                &p("data"),
                "--data_types",
                "float32",
                "--batch_num",
                "1",
                "--acl-lib",
                &arm,
                "--report",
                &p("out/r"),
            ],
            &["arm64/libascendcl.so"],
        ),
        // ---- flow
        cli("flow", "missing flow JSON", &[&p("nope.json"), "--simulate"], &["nope.json"]),
        cli("flow", "empty flow JSON", &[&p("flow_empty.json"), "--simulate"], &["flow_empty.json"]),
        cli("flow", "truncated flow JSON", &[&p("flow_trunc.json"), "--simulate"], &["flow_trunc.json"]),
        cli("flow", "bit-flipped flow JSON", &[&p("flow_flip.json"), "--simulate"], &["flow_flip.json"]),
        // ---- task-metrics
        cli(
            "task-metrics",
            "missing output folders",
            &["--task", "cls", "--reference", &p("nope"), "--candidate", &p("nope2"), "--input_hw", "8,8"],
            &["nope"],
        ),
        // ---- C API
        capi(
            "aptq_inspect",
            "NULL model path",
            |_| unsafe { aptq_inspect(std::ptr::null(), std::ptr::null(), &mut out_str()) },
            &["model_path"],
        ),
        capi(
            "aptq_inspect",
            "truncated model",
            |fx| unsafe { aptq_inspect(c(&fx.p("trunc.onnx")).as_ptr(), std::ptr::null(), &mut out_str()) },
            &["trunc.onnx"],
        ),
        capi(
            "aptq_inspect",
            "NULL json_out",
            |fx| unsafe { aptq_inspect(c(&fx.p("model.onnx")).as_ptr(), std::ptr::null(), std::ptr::null_mut()) },
            &["json_out"],
        ),
        capi(
            "aptq_om_info",
            "directory instead of file",
            |fx| unsafe { aptq_om_info(c(&fx.p("dir.om")).as_ptr(), &mut out_str()) },
            &["dir.om"],
        ),
        capi(
            "aptq_om_info",
            "bit-flipped magic",
            |fx| unsafe { aptq_om_info(c(&fx.p("flip.om")).as_ptr(), &mut out_str()) },
            &["flip.om", "not an Ascend OM model"],
        ),
        capi(
            "aptq_preprocess",
            "missing parameter file",
            |fx| unsafe { aptq_preprocess(c(&fx.p("nope.json")).as_ptr(), c(&fx.p("out")).as_ptr(), &mut out_str()) },
            &["nope.json"],
        ),
        capi(
            "aptq_aipp",
            "truncated JSON",
            |fx| unsafe { aptq_aipp(c(&fx.p("params_trunc.json")).as_ptr(), std::ptr::null(), &mut out_str()) },
            &["params_trunc.json"],
        ),
        capi("aptq_calibrate", "NULL options", |_| unsafe { aptq_calibrate(std::ptr::null(), &mut out_str()) }, &["options_json"]),
        capi(
            "aptq_calibrate",
            "bin of the wrong size",
            |fx| {
                let opts = serde_json::json!({"model": fx.p("model.onnx"), "save_path": fx.p("out/m"), "input_shape": SHAPE, "data_dir": fx.p("short")});
                unsafe { aptq_calibrate(c(&opts.to_string()).as_ptr(), &mut out_str()) }
            },
            &["0001.bin", "700"],
        ),
        capi(
            "aptq_flow",
            "truncated flow JSON",
            |fx| unsafe { aptq_flow(c(&fx.p("flow_trunc.json")).as_ptr(), c("{\"simulate\": true}").as_ptr(), &mut out_str()) },
            &["flow_trunc.json"],
        ),
        capi(
            "aptq_acl_open",
            "wrong-architecture libascendcl.so",
            |fx| {
                let mut acl: *mut aptq_acl = std::ptr::null_mut();
                let s = unsafe { aptq_acl_open(c(&fx.p("arm64/libascendcl.so")).as_ptr(), 0, &mut acl) };
                assert!(acl.is_null());
                s
            },
            &["arm64/libascendcl.so"],
        ),
        capi(
            "aptq_acl_open",
            "library without the ACL symbols",
            |_| {
                let mut acl: *mut aptq_acl = std::ptr::null_mut();
                let s = unsafe { aptq_acl_open(c(&library_without_acl()).as_ptr(), 0, &mut acl) };
                assert!(acl.is_null());
                s
            },
            &["libascend_ptq.so", "acl"],
        ),
        capi(
            "aptq_model_load",
            "NULL ACL handle",
            |fx| {
                let mut m: *mut aptq_model = std::ptr::null_mut();
                unsafe { aptq_model_load(std::ptr::null_mut(), c(&fx.p("real.om")).as_ptr(), &mut m) }
            },
            &["acl"],
        ),
    ]
}

fn last_error() -> String {
    let p = aptq_last_error();
    if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() }
}

#[test]
fn bad_input_matrix() {
    let fx = Fx::new();
    let rows = rows(&fx);
    let mut failures = Vec::new();
    let mut table = vec!["| command | bad input | result |".to_string(), "|---|---|---|".to_string()];
    for row in &rows {
        let before = fx.snapshot();
        let (ok, message, detail) = match &row.call {
            Call::Cli(args) => {
                let out = common::cli().args(args).env("ASCEND_PTQ_ACL_LIB", "/nonexistent/libascendcl.so").output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
                let code = out.status.code();
                let ok = matches!(code, Some(c) if c != 0 && c != 101) && errors == 1 && !stderr.contains("panicked");
                (ok, stderr.clone(), format!("exit {code:?}, {errors} error line(s)"))
            }
            Call::C(f) => {
                let status = f(&fx);
                let message = last_error();
                (status != aptq_status::APTQ_OK && status != aptq_status::APTQ_PANIC, message, format!("status {status:?}"))
            }
        };
        let missing: Vec<&String> = row.needles.iter().filter(|n| !message.contains(n.as_str())).collect();
        let after = fx.snapshot();
        let changed: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k.display().to_string())
            .chain(before.keys().filter(|k| !after.contains_key(*k)).map(|k| format!("{} (removed)", k.display())))
            .collect();
        let result = if ok && missing.is_empty() && changed.is_empty() {
            let first = message.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
            first.replace(&fx.root.display().to_string(), "…").replace('|', "\\|")
        } else {
            failures.push(format!(
                "{} / {}: {detail}; missing needles {missing:?}; files changed {changed:?}\n{message}",
                row.command, row.fault
            ));
            "FAILED".into()
        };
        table.push(format!("| `{}` | {} | {} |", row.command, row.fault, result));
    }
    println!("{} rows\n{}", rows.len(), table.join("\n"));
    assert!(failures.is_empty(), "{} of {} rows failed:\n\n{}", failures.len(), rows.len(), failures.join("\n\n"));
}

/// The matrix's "interrupted run" rows: each command is stopped with SIGINT while it is in the
/// middle of writing its first output file (`ASCEND_PTQ_TEST_WRITE_DELAY_MS` pauses after half
/// the bytes). It must exit with 130 (128 + SIGINT), leave no output file, partial or temp, and
/// leave every input as it was.
#[test]
fn sigint_mid_write_leaves_no_partial_output() {
    let fx = Fx::new();
    let p = |rel: &str| fx.p(rel);
    let x_in = format!("x={}", p("x.bin"));
    let commands: Vec<(&str, Vec<String>)> = vec![
        ("run", vec!["run".into(), "--model".into(), p("model.onnx"), "--input".into(), x_in, "--output_dir".into(), p("out")]),
        (
            "calibration",
            ["calibration", "--model", &p("model.onnx"), "--save_path", &p("out/m"), "--input_shape", SHAPE, "--data_dir", &p("data")]
                .map(String::from)
                .to_vec(),
        ),
        ("aipp", ["aipp", &p("params.json"), "--out", &p("out/a.cfg")].map(String::from).to_vec()),
    ];
    for (name, args) in commands {
        // `aipp` writes into an existing folder; the others would create it.
        std::fs::create_dir_all(fx.root.join("out")).unwrap();
        let before = fx.snapshot();
        let mut child = common::cli()
            .args(&args)
            .env("ASCEND_PTQ_TEST_WRITE_DELAY_MS", "20000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the temp file of the first output to appear: the command is mid-write.
        let out = fx.root.join("out");
        let started = std::time::Instant::now();
        let temp_files = || -> Vec<PathBuf> {
            std::fs::read_dir(&out)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().contains(".ascend-ptq-")).collect())
                .unwrap_or_default()
        };
        while temp_files().is_empty() {
            assert!(started.elapsed().as_secs() < 120, "{name}: no temp file appeared in {}", out.display());
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name}: ended ({status}) before writing");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{name}: {status}");
        assert_eq!(temp_files(), Vec::<PathBuf>::new(), "{name}: the temp file was left behind");
        let after = fx.snapshot();
        assert_eq!(before, after, "{name}: files were written or changed");
        let _ = std::fs::remove_dir_all(&out);
    }
}

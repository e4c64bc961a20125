use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use ascend_ptq::compare::device::device_label;
use ascend_ptq::device::acl::Acl;
use ascend_ptq::onnx::io::write_atomically;

use ascend_ptq::engine::files::output_file_name;

/// Runs one OM through AscendCL (the real libascendcl.so, or the ascend-ptq simulator) on raw
/// input files; writes `<output>.bin` + outputs.json like `run` and prints the latency.
#[derive(clap::Args)]
pub struct OmRunArgs {
    /// The OM model.
    #[arg(long)]
    om: PathBuf,
    /// An input as the raw bytes the model takes (uint8 frames for static-AIPP inputs):
    /// NAME=FILE.bin (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// Folder for `<output>.bin` files and outputs.json.
    #[arg(long = "output_dir", alias = "output-dir")]
    output_dir: PathBuf,
    /// Device id.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// Execute this many times (latency statistics); the outputs of the last run are written.
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// libascendcl.so to use (default: $ASCEND_PTQ_ACL_LIB, then the CANN install folders).
    #[arg(long = "acl-lib", alias = "acl_lib", value_name = "PATH")]
    acl_lib: Option<PathBuf>,
}

fn dtype_name(d: ascend_ptq::device::acl::DataType) -> String {
    use ascend_ptq::device::acl::DataType::*;
    match d {
        Float => "float32".into(),
        Float16 => "float16".into(),
        Int8 => "int8".into(),
        Int32 => "int32".into(),
        Uint8 => "uint8".into(),
        Int16 => "int16".into(),
        Uint16 => "uint16".into(),
        Uint32 => "uint32".into(),
        Int64 => "int64".into(),
        Uint64 => "uint64".into(),
        Double => "float64".into(),
        Bool => "bool".into(),
        Bf16 => "bfloat16".into(),
        Other(code) => format!("aclDataType {code}"),
    }
}

pub fn run(args: OmRunArgs) -> Result<()> {
    if args.loops == 0 {
        bail!("--loops must be at least 1");
    }
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    for item in &args.inputs {
        let (name, file) = item.split_once('=').with_context(|| format!("--input {item:?}: expected NAME=FILE.bin"))?;
        if files.insert(name.to_string(), PathBuf::from(file)).is_some() {
            bail!("--input: '{name}' is given twice");
        }
    }
    if !args.om.is_file() {
        bail!("--om {}: no such file", args.om.display());
    }
    let acl = Acl::open(args.acl_lib.as_deref())?;
    let device = acl.device(args.device)?;
    let ctx = device.create_context()?;
    let mut model = ctx.load_model(&args.om)?;
    println!("device: {}", device_label(&acl, args.device));

    let descs = model.desc().inputs().to_vec();
    let known: Vec<&str> = descs.iter().map(|d| d.name.as_str()).collect();
    if let Some(name) = files.keys().find(|n| !known.contains(&n.as_str())) {
        bail!("--input: '{name}' is not an input of {} (inputs: {known:?})", args.om.display());
    }
    let mut data = Vec::with_capacity(descs.len());
    for d in &descs {
        let file = files
            .remove(&d.name)
            .with_context(|| format!("--input: model input '{}' was not given (expected --input {}=FILE.bin)", d.name, d.name))?;
        let bytes = std::fs::read(&file).with_context(|| format!("--input {}: cannot read {}", d.name, file.display()))?;
        if bytes.len() != d.size {
            bail!(
                "--input {}={}: {} bytes, but the model takes {} bytes ({} {:?}{})",
                d.name,
                file.display(),
                bytes.len(),
                d.size,
                dtype_name(d.dtype),
                d.dims,
                if d.aipp == ascend_ptq::device::acl::AippType::Static { ", a static-AIPP uint8 frame" } else { "" }
            );
        }
        data.push(bytes);
    }
    let feeds: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let mut times = Vec::with_capacity(args.loops);
    let mut outputs = Vec::new();
    for _ in 0..args.loops {
        let start = Instant::now();
        outputs = model.run(&feeds)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }

    std::fs::create_dir_all(&args.output_dir).with_context(|| format!("--output_dir: cannot create {}", args.output_dir.display()))?;
    let mut listing = Vec::new();
    for (d, bytes) in model.desc().outputs().iter().zip(&outputs) {
        let file = output_file_name(&d.name);
        write_atomically(&args.output_dir.join(&file), bytes)?;
        listing.push(serde_json::json!({ "name": d.name, "dtype": dtype_name(d.dtype), "shape": d.dims, "file": file }));
        println!("{}: {} {:?} -> {}", d.name, dtype_name(d.dtype), d.dims, args.output_dir.join(&file).display());
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "outputs": listing, "latency_ms": times }))?;
    write_atomically(&args.output_dir.join("outputs.json"), json.as_bytes())?;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "latency over {} run(s) (host copies + aclmdlExecute): mean {mean:.2} ms, min {:.2} ms, max {:.2} ms",
        times.len(),
        sorted[0],
        sorted[sorted.len() - 1]
    );
    Ok(())
}

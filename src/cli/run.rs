use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ascend_ptq::engine::fp16::{round_tensor_to_f16, round_weights_to_f16};
use ascend_ptq::engine::{RunOptions, Session, Tensor};
use ascend_ptq::onnx::input_shape::parse_input_shapes;
use ascend_ptq::onnx::io::write_atomically;
use ascend_ptq::onnx::load_model;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Fix dynamic inputs: "name1:n,c,h,w;name2:...".
    #[arg(long = "input_shape", alias = "input-shape")]
    input_shape: Option<String>,
    /// An input as raw little-endian data of the input's dtype: NAME=FILE.bin (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// Folder for `<output>.bin` files and outputs.json.
    #[arg(long = "output_dir", alias = "output-dir")]
    output_dir: PathBuf,
    /// fp16 emulation: float weights and inputs rounded to fp16, every op's output rounded to
    /// fp16 (f32 arithmetic in between). What an fp16 OM (ATC's default force_fp16) roughly
    /// computes; the ACL simulator runs fp16 OMs exactly this way.
    #[arg(long = "emulate_fp16", alias = "emulate-fp16")]
    emulate_fp16: bool,
}

/// Output file name: `/` and `:` (common in exported tensor names) become `_`.
pub fn output_file_name(tensor: &str) -> String {
    format!("{}.bin", tensor.replace(['/', ':', '\\'], "_"))
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut model = load_model(&args.model)?;
    if args.emulate_fp16 {
        round_weights_to_f16(&mut model)?;
    }
    let shapes: HashMap<String, Vec<i64>> = match &args.input_shape {
        Some(s) => parse_input_shapes(s)?.into_iter().map(|s| (s.name, s.dims)).collect(),
        None => HashMap::new(),
    };
    let session = Session::new(&model, &shapes)?;

    let mut files: HashMap<String, PathBuf> = HashMap::new();
    for item in &args.inputs {
        let (name, file) = item.split_once('=').with_context(|| format!("--input {item:?}: expected NAME=FILE.bin"))?;
        if files.insert(name.to_string(), PathBuf::from(file)).is_some() {
            bail!("--input: '{name}' is given twice");
        }
    }
    let known: Vec<&str> = session.inputs().map(|s| s.name.as_str()).collect();
    if let Some(name) = files.keys().find(|n| !known.contains(&n.as_str())) {
        bail!("--input: '{name}' is not a model input (inputs: {known:?})");
    }
    // An output file that is one of the --input files would destroy that input.
    for out in session.output_names() {
        let target = args.output_dir.join(output_file_name(out));
        if let Some((name, file)) = files.iter().find(|(_, f)| ascend_ptq::onnx::io::same_file(f, &target)) {
            bail!(
                "--output_dir: output '{}' would be written to {}, which is the --input file of '{name}' ({}); choose another --output_dir",
                out,
                target.display(),
                file.display()
            );
        }
    }
    let mut inputs = HashMap::new();
    for spec in session.inputs() {
        let file = files
            .remove(&spec.name)
            .with_context(|| format!("--input: model input '{}' was not given (expected --input {}=FILE.bin)", spec.name, spec.name))?;
        let shape = spec.shape.clone().with_context(|| format!("input '{}' has a dynamic shape: fix it with --input_shape", spec.name))?;
        let bytes = std::fs::read(&file).with_context(|| format!("--input {}: cannot read {}", spec.name, file.display()))?;
        let mut tensor = Tensor::from_le_bytes(spec.dtype, &shape, &bytes, &spec.name)
            .with_context(|| format!("--input {}={}", spec.name, file.display()))?;
        if args.emulate_fp16 {
            round_tensor_to_f16(&mut tensor);
        }
        inputs.insert(spec.name.clone(), tensor);
    }

    let outputs = session.run_with(inputs, &RunOptions { round_outputs_to_f16: args.emulate_fp16 })?;
    std::fs::create_dir_all(&args.output_dir).with_context(|| format!("--output_dir: cannot create {}", args.output_dir.display()))?;
    let mut listing = Vec::new();
    for (name, tensor) in &outputs {
        let file = output_file_name(name);
        write_atomically(&args.output_dir.join(&file), &tensor.to_le_bytes())?;
        listing.push(serde_json::json!({
            "name": name, "dtype": tensor.dtype_name(), "shape": tensor.shape(), "file": file,
        }));
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "outputs": listing }))?;
    write_atomically(&args.output_dir.join("outputs.json"), json.as_bytes())?;
    for (name, tensor) in &outputs {
        println!("{name}: {} {:?} -> {}", tensor.dtype_name(), tensor.shape(), args.output_dir.join(output_file_name(name)).display());
    }
    Ok(())
}

use std::path::PathBuf;

use anyhow::{Context, Result};
use ascend_ptq::engine::files::{RunFiles, output_file_name, run_files};

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

pub fn run(args: RunArgs) -> Result<()> {
    let mut inputs = Vec::with_capacity(args.inputs.len());
    for item in &args.inputs {
        let (name, file) = item.split_once('=').with_context(|| format!("--input {item:?}: expected NAME=FILE.bin"))?;
        inputs.push((name.to_string(), PathBuf::from(file)));
    }
    let opts =
        RunFiles { model: args.model, input_shape: args.input_shape, inputs, output_dir: args.output_dir, emulate_fp16: args.emulate_fp16 };
    let summary = run_files(&opts)?;
    for o in &summary.outputs {
        println!("{}: {} {:?} -> {}", o.name, o.dtype, o.shape, opts.output_dir.join(output_file_name(&o.name)).display());
    }
    Ok(())
}

use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::data::params::load_params;
use ascend_ptq::device::aipp::AippConfig;
use ascend_ptq::device::aipp::options::AippArgs;

/// Writes a static AIPP block (ATC --insert_op_conf) that applies the PARAMS.json channel
/// order and normalisation on the NPU. AIPP does NOT letterbox or resize: the host must feed
/// frames already resized (letterboxed for fixed_scale: 1) to the model input size. Reads both
/// dialects (det_pre_params, detPreParams).
#[derive(clap::Args)]
pub struct AippCommandArgs {
    /// The parameter JSON used for `preprocess`.
    params: PathBuf,
    /// The config file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    options: AippArgs,
}

pub fn run(args: AippCommandArgs) -> Result<()> {
    if ascend_ptq::onnx::io::same_file(&args.params, &args.out) {
        anyhow::bail!("--out {} is the parameter file itself; writing the config there would destroy it", args.out.display());
    }
    let loaded = load_params(&args.params, args.options.section.as_deref())?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let options = args.options.to_options()?;
    let cfg = AippConfig::from_params(&loaded.params, &options)?;
    let text = cfg.to_text(&loaded.params.hash());
    ascend_ptq::onnx::io::write_atomically(&args.out, text.as_bytes())?;
    println!("{}: static AIPP for {} ({}x{} frames)", args.out.display(), options.input_format.name(), cfg.src_width, cfg.src_height);
    Ok(())
}

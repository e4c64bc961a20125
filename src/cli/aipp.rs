use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::data::params::load_params;
use ascend_ptq::device::aipp::{AippConfig, AippOptions, InputFormat, parse_src_size};

/// Writes a static AIPP block (ATC --insert_op_conf) that applies the PARAMS.json channel
/// order and normalisation on the NPU. AIPP does NOT letterbox or resize: the host must feed
/// frames already resized (letterboxed for fixed_scale: 1) to the model input size. Reads both
/// dialects (det_pre_params, detPreParams).
#[derive(clap::Args)]
pub struct AippArgs {
    /// The parameter JSON used for `preprocess`.
    params: PathBuf,
    /// The config file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Frame format the application feeds: RGB888_U8 (packed, in OpenCV's B,G,R order), YUV420SP_U8 (NV12,
    /// full-range BT.601), YUV400_U8 (grey, for des_channels 1).
    #[arg(long = "input_format", alias = "input-format", default_value = "RGB888_U8")]
    input_format: String,
    /// Fed frame size "W,H" (default: des_width,des_height); a larger frame is centre-cropped.
    #[arg(long = "src_size", alias = "src-size")]
    src_size: Option<String>,
    /// Which `*_pre_params` section to use (default: det_pre_params, or the only one).
    #[arg(long)]
    section: Option<String>,
}

pub fn run(args: AippArgs) -> Result<()> {
    let loaded = load_params(&args.params, args.section.as_deref())?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let input_format: InputFormat = args.input_format.parse()?;
    let src_size = args.src_size.as_deref().map(parse_src_size).transpose()?;
    let cfg = AippConfig::from_params(&loaded.params, &AippOptions { input_format, src_size })?;
    let text = cfg.to_text(&loaded.params.hash());
    ascend_ptq::onnx::io::write_atomically(&args.out, text.as_bytes())?;
    println!("{}: static AIPP for {} ({}x{} frames)", args.out.display(), input_format.name(), cfg.src_width, cfg.src_height);
    Ok(())
}

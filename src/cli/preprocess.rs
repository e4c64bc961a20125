use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ascend_ptq::data::params::load_params;
use ascend_ptq::data::preprocess::{PreprocessOptions, bins_dir, preprocess};
use indicatif::{ProgressBar, ProgressStyle};

/// Decodes every image under the section's img_root (jpg, jpeg, png, bmp, tif, tiff, webp;
/// sorted by name) as OpenCV's imread does and makes the float32 NCHW bins of the reference
/// preprocess_data.py (float32 INTER_LINEAR resize, letterbox with pad 0 for fixed_scale: 1,
/// (p - means[c]) / stds[c]): files batch0001.bin, ... plus manifest.json. Reads the guide's
/// det_pre_params (snake_case, stds) and the repository's detPreParams (camelCase, scales).
/// `img_root` is relative to the PARAMS file's folder (or the current directory when only
/// there).
#[derive(clap::Args)]
pub struct PreprocessArgs {
    /// The parameter JSON (comments and trailing commas allowed).
    params: PathBuf,
    /// Output folder; files go to DIR/imgs_batch{batch_size}/. Default: where the reference
    /// puts them, <calibrationDataRoot>/batch<batchSize>/ (detPreParams) or
    /// data/calibration/<img_root name>_batch<batch_size>/ (det_pre_params).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Which `*_pre_params` section to use (default: det_pre_params, or the only one).
    #[arg(long)]
    section: Option<String>,
    /// Fill a final partial batch by repeating its last image instead of dropping it.
    #[arg(long = "keep-partial", alias = "keep_partial")]
    keep_partial: bool,
    /// Skip images that cannot be decoded (with a warning) instead of failing.
    #[arg(long = "skip-bad", alias = "skip_bad")]
    skip_bad: bool,
}

pub fn run(args: PreprocessArgs) -> Result<()> {
    let loaded = load_params(&args.params, args.section.as_deref())?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let dir = bins_dir(&loaded, args.out.as_deref());
    let opts = PreprocessOptions { dir, keep_partial: args.keep_partial, skip_bad: args.skip_bad };
    // Hidden automatically when stderr is not a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images {elapsed}").expect("valid template"));
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let start = Instant::now();
    let report = preprocess(&loaded.params, &opts, Some(&progress))?;
    bar.finish_and_clear();
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let m = &report.manifest;
    let images: usize = m.files.iter().map(|f| f.images.len()).sum();
    println!(
        "{} file(s) of shape {:?} {} ({} images, section {}) in {} ({:.2} s); params {}",
        m.files.len(),
        m.shape,
        m.dtype,
        images,
        loaded.section,
        report.dir.display(),
        start.elapsed().as_secs_f64(),
        m.params_hash
    );
    Ok(())
}

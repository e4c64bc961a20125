use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use ascend_ptq::data::params::load_params;
use ascend_ptq::data::preprocess::{PreprocessOptions, preprocess};
use indicatif::{ProgressBar, ProgressStyle};

/// Decodes every image under the section's img_root (jpg, jpeg, png, bmp, tif, tiff, webp;
/// sorted by name) as OpenCV's imread does, letterboxes (fixed_scale: 1, pad 114) or stretches
/// with INTER_LINEAR, normalises (p - means[c]) / stds[c] and writes float32 NCHW files
/// DIR/imgs_batch{B}/batch0001.bin, ... plus manifest.json. `img_root` is relative to the
/// PARAMS file's folder (or the current directory when only there).
#[derive(clap::Args)]
pub struct PreprocessArgs {
    /// The parameter JSON (comments and trailing commas allowed).
    params: PathBuf,
    /// Output folder; files go to DIR/imgs_batch{batch_size}/.
    #[arg(long, value_name = "DIR", default_value = "data/calibration")]
    out: PathBuf,
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
    let opts = PreprocessOptions { out_dir: args.out, keep_partial: args.keep_partial, skip_bad: args.skip_bad };
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

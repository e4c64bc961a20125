use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::engine::bench::peak_rss_mib;
use ascend_ptq::quant::calibrate::{CalibrationOptions, Progress, calibrate};
use indicatif::{ProgressBar, ProgressStyle};

/// Post-training INT8 quantization, a drop-in for `amct_onnx calibration`: writes
/// PREFIX_deploy_model.onnx (AscendQuant / int8 weights / AscendDequant, for ATC),
/// PREFIX_fake_quant_model.onnx (standard ONNX ops, runs in ONNX Runtime), PREFIX_record.txt
/// and PREFIX_quant.json.
#[derive(clap::Args)]
pub struct CalibrationArgs {
    /// The float32 ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Output directory plus file-name prefix (DIR/prefix); ending in '/' means no prefix.
    #[arg(long = "save_path", value_name = "DIR/PREFIX")]
    save_path: String,
    /// "name:n,c,h,w;name2:…" — one entry per model input; -1 is resolved from the data.
    #[arg(long = "input_shape")]
    input_shape: String,
    /// "dir1;dir2" — one folder of .bin batches per input, in --input_shape order.
    #[arg(long = "data_dir")]
    data_dir: String,
    /// "float32;…" — the element type of each input's .bin files.
    #[arg(long = "data_types")]
    data_types: String,
    /// Number of calibration batches (default 1; or batch_num in --calibration_config).
    #[arg(long = "batch_num")]
    batch_num: Option<usize>,
    /// The simple config file (protobuf text): algorithms, skip_layers, overrides, fusion.
    #[arg(long = "calibration_config", value_name = "FILE.cfg")]
    calibration_config: Option<PathBuf>,
    /// Evaluate the fake-quant model against float on the first N calibration batches
    /// (per-layer and output cosine in quant.json); 0 skips it. [default: 4]
    #[arg(long = "eval_batches", value_name = "N")]
    eval_batches: Option<usize>,
}

pub fn run(args: CalibrationArgs) -> Result<()> {
    let opts = CalibrationOptions {
        model: args.model,
        save_path: args.save_path,
        input_shape: args.input_shape,
        data_dir: args.data_dir,
        data_types: args.data_types,
        batch_num: args.batch_num,
        calibration_config: args.calibration_config,
        eval_batches: args.eval_batches,
    };
    // Hidden automatically when stderr is not a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{msg:>12} {bar:40} {pos}/{len} batches {elapsed}").expect("valid template"));
    let summary = calibrate(&opts, &mut |p| match p {
        Progress::Batch { pass, done, total } => {
            bar.set_message(pass);
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Progress::Writing => bar.set_message("writing"),
    })?;
    bar.finish_and_clear();
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "quantized {} layer(s), {} left in float, {} BatchNormalization folded; {} batch(es)",
        summary.quantized,
        summary.left_float.len(),
        summary.fused_batch_norms,
        summary.batch_num
    );
    for f in &summary.left_float {
        println!("  float: {} ({}): {}", f.name, f.op_type, f.reason);
    }
    for o in &summary.output_agreement {
        println!(
            "  output {}: fake-quant vs float on {} calibration batch(es): cosine {:.6}, SQNR {:.2} dB, max abs error {:.4e}",
            o.output, summary.eval_batches, o.cosine, o.sqnr_db, o.max_abs_error
        );
    }
    let o = &summary.outputs;
    for p in [&o.deploy_model, &o.fake_quant_model, &o.record, &o.quant_json] {
        println!("  wrote {}", p.display());
    }
    let rss = peak_rss_mib().map(|m| format!(", peak RSS {m:.0} MiB")).unwrap_or_default();
    let phases: Vec<String> = summary.phase_seconds.iter().map(|(p, s)| format!("{p} {s:.2} s")).collect();
    println!("done in {:.2} s ({}){rss}", summary.wall_seconds, phases.join(", "));
    Ok(())
}

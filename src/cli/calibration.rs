//! `ascend-ptq calibration`: the options are [`CalibrationArgs`] (shared with
//! `aptq_calibrate`); this module only shows progress and prints the summary.

use anyhow::Result;
use ascend_ptq::engine::bench::peak_rss_mib;
use ascend_ptq::quant::calibrate::{Progress, calibrate};
pub use ascend_ptq::quant::options::CalibrationArgs;
use indicatif::{ProgressBar, ProgressStyle};

pub fn run(args: CalibrationArgs) -> Result<()> {
    let opts = args.into_options();
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
    if !summary.output_clip.is_empty() {
        let changed = summary.output_clip.iter().filter(|c| c.factor != 1.0).count();
        println!("activation clip scored on layer outputs: {changed} of {} clip(s) changed", summary.output_clip.len());
    }
    if !summary.bias_correction.is_empty() {
        let largest = summary.bias_correction.iter().map(|b| b.max_abs_shift).fold(0.0, f32::max);
        println!("bias correction: {} layer(s), largest shift {largest:.4}", summary.bias_correction.len());
    }
    if !summary.equalized.is_empty() {
        let gain = summary.equalized.iter().map(|e| e.max_gain).fold(1.0, f32::max);
        println!("equalized the channel ranges of {} depthwise-conv input(s) (largest gain {gain:.1})", summary.equalized.len());
    }
    for f in &summary.left_float {
        println!("  float: {} ({}): {}", f.name, f.op_type, f.reason);
    }
    for o in &summary.output_agreement {
        println!(
            "  output {}: fake-quant vs float on {} {} batch(es): cosine {:.6}, SQNR {:.2} dB, max abs error {:.4e}",
            o.output,
            summary.eval_batches,
            if summary.eval_held_out { "held-out" } else { "calibration" },
            o.cosine,
            o.sqnr_db,
            o.max_abs_error
        );
    }
    if let Some(t) = &summary.task_agreement {
        let metrics: Vec<String> = t.mean.iter().map(|(k, v)| format!("{k} {v:.4} (worst {:.4})", t.worst[k])).collect();
        println!(
            "  task {} on {}: fake-quant vs float over {} batch(es): {}; {} vs {} boxes/items",
            t.task,
            t.output,
            t.batches,
            metrics.join(", "),
            t.count_fake_quant,
            t.count_float
        );
    }
    if let Some(f) = &summary.fallback {
        println!(
            "  accuracy target {}: met with {} layer(s) float, {:.1} % of the quantizable MACs int8 ({} trials{}); all int8 was cosine {:.6}, SQNR {:.2} dB",
            f.target,
            f.float_layers.len(),
            100.0 * f.int8_mac_share,
            f.trials,
            if f.trials_stopped_early > 0 { format!(", {} stopped early", f.trials_stopped_early) } else { String::new() },
            f.all_int8.cosine,
            f.all_int8.sqnr_db
        );
    }
    let o = &summary.outputs;
    for p in [&o.deploy_model, &o.fake_quant_model, &o.record, &o.quant_json, &o.quant_report]
        .into_iter()
        .chain(&o.sensitivity)
        .chain(&o.fallback_cfg)
    {
        println!("  wrote {}", p.display());
    }
    println!("  report: {} (open in a browser)", o.report_html.display());
    let rss = peak_rss_mib().map(|m| format!(", peak RSS {m:.0} MiB")).unwrap_or_default();
    let phases: Vec<String> = summary.phase_seconds.iter().map(|(p, s)| format!("{p} {s:.2} s")).collect();
    println!("done in {:.2} s ({}){rss}", summary.wall_seconds, phases.join(", "));
    Ok(())
}

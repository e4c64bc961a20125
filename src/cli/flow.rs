//! `ascend-ptq flow`: the options are [`FlowArgs`] (shared with `aptq_flow`); this module only
//! shows the steps as they run and prints the summary.

use anyhow::Result;
pub use ascend_ptq::flow::FlowArgs;
use ascend_ptq::flow::{FlowEvent, StepStatus, run_flow};
use indicatif::{ProgressBar, ProgressStyle};

pub fn run(args: FlowArgs) -> Result<()> {
    let opts = args.into_options();
    // Hidden automatically when stderr is not a terminal.
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {wide_msg}").expect("valid template"));
    let report = run_flow(&opts, &mut |event| match event {
        FlowEvent::Start { index, total, step, command } => {
            bar.set_prefix(step);
            bar.set_position(0);
            bar.set_length(0);
            bar.suspend(|| eprintln!("[{}/{total}] {step}: {command}", index + 1));
        }
        FlowEvent::Progress { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        FlowEvent::Line(line) => bar.set_message(line.to_string()),
        FlowEvent::End { step, record } => {
            let status = match record.status {
                StepStatus::Done => format!("done in {:.1} s", record.duration_s),
                StepStatus::UpToDate => "up to date (same inputs as the last run), not redone".into(),
                StepStatus::Skipped => "skipped".into(),
                StepStatus::Failed => "FAILED".into(),
                StepStatus::Cancelled => "cancelled".into(),
                StepStatus::NotRun => "not run".into(),
            };
            let note = record.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            bar.suspend(|| eprintln!("      {step} {status}{note}"));
        }
    });
    bar.finish_and_clear();
    let report = report?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!("outputs in {}:", report.output_root_dir);
    // A few files per step: preprocess alone may write hundreds of bins.
    const SHOWN: usize = 5;
    for step in &report.steps {
        for o in step.outputs.iter().take(SHOWN) {
            println!("  {:<12} {}", step.name, o.path);
        }
        if step.outputs.len() > SHOWN {
            println!("  {:<12} … and {} more (flow.json lists them)", step.name, step.outputs.len() - SHOWN);
        }
    }
    if report.simulated {
        println!("SIMULATED: the OMs are ascend-ptq simulated OMs and compare ran on the ACL simulator (CPU), not an Ascend NPU");
    }
    println!("wrote {}/flow.json ({:.1} s)", report.output_root_dir.trim_end_matches('/'), report.wall_seconds);
    if report.verdict_pass == Some(false) {
        std::process::exit(3);
    }
    Ok(())
}

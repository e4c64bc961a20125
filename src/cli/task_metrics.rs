//! `ascend-ptq task-metrics`: task-level agreement of saved outputs (two folders in the layout
//! `ascend-ptq run --output_dir` writes), decoded by the same task decoders as
//! `compare --task`. The work is [`task_metrics_of_saved`]; this module parses and prints.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ascend_ptq::compare::task_metrics_of_saved;
use ascend_ptq::tasks::Task;

#[derive(clap::Args)]
pub struct TaskMetricsArgs {
    /// How to decode the outputs: db, cls, ctc, yolov5, yolov8, yolox (as compare --task).
    #[arg(long)]
    task: String,
    /// The outputs taken as pseudo ground truth (e.g. fp32): a folder with outputs.json, or
    /// one subfolder with outputs.json per input set.
    #[arg(long)]
    reference: PathBuf,
    /// The outputs to judge (e.g. int8), in the same layout with the same input-set names.
    #[arg(long)]
    candidate: PathBuf,
    /// The model input's height and width ("640,640"): the frame boxes are decoded in.
    #[arg(long = "input_hw", alias = "input-hw", value_name = "H,W")]
    input_hw: String,
    /// The output to decode (default: the first listed in outputs.json).
    #[arg(long)]
    output: Option<String>,
    /// Print the whole report (every input set's metrics) as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_hw(s: &str) -> Result<(usize, usize)> {
    let (h, w) = s.split_once(',').with_context(|| format!("--input_hw {s:?}: expected H,W"))?;
    let num = |v: &str| v.trim().parse::<usize>().with_context(|| format!("--input_hw {s:?}: {v:?} is not a size"));
    Ok((num(h)?, num(w)?))
}

pub fn run(args: TaskMetricsArgs) -> Result<()> {
    let task: Task = args.task.parse().context("--task")?;
    let hw = parse_hw(&args.input_hw)?;
    let report = task_metrics_of_saved(&task, &args.candidate, &args.reference, hw, args.output.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{} ({}), {} input set(s), candidate vs reference:", report.output, report.task, report.rows.len());
    for (k, (mean, worst)) in &report.summary {
        println!("  {k}: mean {mean:.4} worst {worst:.4}");
    }
    Ok(())
}

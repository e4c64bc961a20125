//! `ascend-ptq task-metrics`: task-level agreement of saved outputs (two folders in the layout
//! `ascend-ptq run --output_dir` writes), decoded by the same task decoders as
//! `compare --task`. The work is [`task_metrics_of_saved`]; this module parses and prints.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ascend_ptq::compare::task_metrics_of_saved;
use ascend_ptq::tasks::Task;

#[derive(clap::Args)]
pub struct TaskMetricsArgs {
    /// How to decode the outputs: db, cls, ctc, yolov5, yolov8, yolox, picodet, centerface or
    /// auto (picked from the outputs' dims; the pick is printed), as compare --task.
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
    /// The output(s) to decode, in the order the task reads them: repeat the flag or give a
    /// comma-separated list (picodet: the 4 score maps then the 4 box maps; centerface:
    /// heatmap, scale, offset, landmarks). Default: every output listed in outputs.json, in
    /// its order (the order `ascend-ptq run` writes, the model's); single-output tasks
    /// (db, cls, ctc, yolo*) decode the first.
    #[arg(long, value_delimiter = ',')]
    output: Vec<String>,
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
    let report = task_metrics_of_saved(&task, &args.candidate, &args.reference, hw, &args.output)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if let Some(p) = &report.picked {
        println!("{p}");
    }
    println!("{} ({}), {} input set(s), candidate vs reference:", report.output, report.task, report.rows.len());
    for (k, (mean, worst)) in &report.summary {
        println!("  {k}: mean {mean:.4} worst {worst:.4}");
    }
    Ok(())
}

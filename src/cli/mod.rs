//! Sub-commands. Option names follow amct_onnx / ATC spelling (`--input_shape`), both
//! `--key=value` and `--key value` forms are accepted, and so are unique prefixes of long
//! options, as argparse accepts them ([`abbrev`]).

pub mod abbrev;
mod aipp;
mod bench;
mod build;
mod calibration;
mod compare;
mod convert;
mod flow;
mod inspect;
mod om_info;
mod om_run;
mod preprocess;
mod run;
mod task_metrics;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ascend-ptq", version, about = "INT8 post-training quantization for Huawei Ascend NPUs")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarize an ONNX model: inputs/outputs, opsets, op histogram, parameters, MACs.
    Inspect(inspect::InspectArgs),
    /// Run a model on the CPU engine with raw little-endian input files.
    Run(run::RunArgs),
    /// Time the CPU engine on a model (synthetic inputs).
    Bench(bench::BenchArgs),
    /// Turn a folder of images into calibration bins (float32 NCHW) from a PARAMS.json.
    Preprocess(preprocess::PreprocessArgs),
    /// INT8 post-training quantization (amct_onnx calibration): deploy, fake-quant, record, quant.json, quant_report.json, report.html.
    Calibration(calibration::CalibrationArgs),
    /// Convert a QDQ model (QAT, ONNX Runtime quantize_static, …) to the Ascend deploy model (amct_onnx convert).
    Convert(convert::ConvertArgs),
    /// Write the static AIPP config (ATC --insert_op_conf) matching a PARAMS.json.
    Aipp(aipp::AippCommandArgs),
    /// Summarize an Ascend OM model without CANN: inputs/outputs, SoC, ATC command, AIPP, INT8 evidence.
    #[command(name = "om-info")]
    OmInfo(om_info::OmInfoArgs),
    /// Run one OM through AscendCL (libascendcl.so or the ascend-ptq simulator) on raw input files.
    #[command(name = "om-run")]
    OmRun(om_run::OmRunArgs),
    /// Run the int8 and fp16 OMs on the same inputs and report how far apart they are (JSON + HTML).
    Compare(compare::CompareArgs),
    /// Build the int8 and fp16 OM models with CANN's ATC (needs the toolkit); writes build.json.
    Build(build::BuildArgs),
    /// The guide's whole flow from one JSON (quant_all_script.py): preprocess, calibration, ATC
    /// int8 + fp16, compare; flow.json, and reruns skip finished steps.
    Flow(flow::FlowArgs),
    /// Task metrics (box F1, mAP, top-1, character accuracy) of saved outputs (`run --output_dir`
    /// folders) against reference outputs, decoded as `compare --task` decodes them.
    #[command(name = "task-metrics")]
    TaskMetrics(task_metrics::TaskMetricsArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Preprocess(args) => preprocess::run(args),
        Command::Aipp(args) => aipp::run(args),
        Command::Calibration(args) => calibration::run(args),
        Command::Convert(args) => convert::run(args),
        Command::OmInfo(args) => om_info::run(args),
        Command::OmRun(args) => om_run::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Build(args) => build::run(args),
        Command::Flow(args) => flow::run(args),
        Command::TaskMetrics(args) => task_metrics::run(args),
    }
}

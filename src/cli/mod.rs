//! Sub-commands. Option names follow amct_onnx / ATC spelling (`--input_shape`), and both
//! `--key=value` and `--key value` forms are accepted.

mod bench;
mod inspect;
mod run;

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
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

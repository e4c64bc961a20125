use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::onnx::input_shape::parse_input_shapes;
use ascend_ptq::onnx::inspect::inspect_file;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Fix dynamic inputs for MAC counting: "name1:n,c,h,w;name2:...".
    #[arg(long = "input_shape", alias = "input-shape")]
    input_shape: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let shapes = match &args.input_shape {
        Some(arg) => parse_input_shapes(arg)?,
        None => Vec::new(),
    };
    let summary = inspect_file(&args.model, &shapes)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    Ok(())
}

use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::device::om::om_info_file;

#[derive(clap::Args)]
pub struct OmInfoArgs {
    /// The OM model (written by ATC).
    model: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: OmInfoArgs) -> Result<()> {
    let info = om_info_file(&args.model)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", info.to_text());
    }
    Ok(())
}

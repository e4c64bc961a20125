use std::path::PathBuf;

use anyhow::{Result, bail};
use ascend_ptq::compare::{CompareOptions, DEFAULT_THRESHOLD, InputSource, compare_oms};
use indicatif::{ProgressBar, ProgressStyle};

/// Runs the int8 and the fp16 OM on the same inputs through AscendCL and reports how far apart
/// they are: msaccucmp's ten metrics per input and output, a verdict against the cosine
/// threshold, OUT.json and a self-contained OUT.html. Exit status 3 when the verdict fails.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The int8 OM (from the deploy model).
    #[arg(long)]
    int8: PathBuf,
    /// The fp16 OM (from the float model).
    #[arg(long)]
    fp16: PathBuf,
    /// Calibration-set folder(s), one per input, ';'-separated (as `calibration`).
    #[arg(long = "data_dir", alias = "data-dir")]
    data_dir: Option<String>,
    /// Element types of the bins, one per input (float32, uint8, ...).
    #[arg(long = "data_types", alias = "data-types")]
    data_types: Option<String>,
    /// How many batches of the calibration set to compare on.
    #[arg(long = "batch_num", alias = "batch-num")]
    batch_num: Option<usize>,
    /// A folder of images (instead of --data_dir): uint8 frames for static-AIPP inputs,
    /// preprocessed float tensors otherwise.
    #[arg(long)]
    images: Option<PathBuf>,
    /// The preprocessing parameter file for --images.
    #[arg(long)]
    params: Option<PathBuf>,
    /// The `*_pre_params` section of --params.
    #[arg(long)]
    section: Option<String>,
    /// The fp32 ONNX model: our CPU engine's output becomes a third column.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Device id.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// libascendcl.so to use (default: $ASCEND_PTQ_ACL_LIB, then the CANN install folders).
    #[arg(long = "acl-lib", alias = "acl_lib", value_name = "PATH")]
    acl_lib: Option<PathBuf>,
    /// The int8-vs-fp16 cosine every input and output must reach (Ascend's advisor uses 0.99).
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f64,
    /// Report path: writes OUT.json and OUT.html.
    #[arg(long, default_value = "compare_report", value_name = "OUT")]
    report: PathBuf,
}

fn input_source(args: &CompareArgs) -> Result<InputSource> {
    match (&args.data_dir, &args.images) {
        (Some(_), Some(_)) => bail!("--data_dir and --images are alternatives: give one"),
        (Some(dir), None) => {
            let Some(types) = &args.data_types else { bail!("--data_dir needs --data_types (e.g. float32 or uint8, one per input)") };
            let Some(n) = args.batch_num else { bail!("--data_dir needs --batch_num (how many batches to compare on)") };
            if n == 0 {
                bail!("--batch_num must be at least 1");
            }
            Ok(InputSource::Calib { data_dir: dir.clone(), data_types: types.clone(), batch_num: n })
        }
        (None, Some(dir)) => {
            let Some(params) = &args.params else { bail!("--images needs --params (the preprocessing parameter file)") };
            Ok(InputSource::Images { dir: dir.clone(), params: params.clone(), section: args.section.clone() })
        }
        (None, None) => bail!("give the inputs: --data_dir D --data_types T --batch_num N, or --images DIR --params PARAMS.json"),
    }
}

pub fn run(args: CompareArgs) -> Result<()> {
    let opts = CompareOptions {
        int8_om: args.int8.clone(),
        fp16_om: args.fp16.clone(),
        inputs: input_source(&args)?,
        reference: args.reference.clone(),
        device: args.device,
        acl_lib: args.acl_lib.clone(),
        threshold: args.threshold,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("comparing {bar:30} {pos}/{len} input sets {elapsed}").expect("valid template"));
    let report = compare_oms(&opts, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let (json, html) = report.write(&args.report)?;
    println!("device: {}", report.int8_device);
    for o in &report.outputs {
        let c = &o.int8_vs_fp16.cosine_similarity;
        println!("{}: int8 vs fp16 cosine mean {:.6} worst {:.6}", o.name, c.mean, c.worst);
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    println!("{}", report.verdict);
    println!("wrote {} and {}", json.display(), html.display());
    if !report.pass {
        std::process::exit(3);
    }
    Ok(())
}

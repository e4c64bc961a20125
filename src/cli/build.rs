use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use ascend_ptq::device::atc::{
    AtcError, AtcInvocation, BuildEntry, BuildReport, BuildRequest, Precheck, Precision, RunOptions, build_simulated as write_simulated,
    build_with_atc as build_with_atc_once, find_atc, install_interrupt_handler, om_summary, plan_builds, precheck,
};
use ascend_ptq::onnx::input_shape::parse_input_shapes;
use indicatif::{ProgressBar, ProgressStyle};

/// Builds the OM models with ATC, as users do by hand: the int8 OM from the deploy model and
/// the fp16 OM from the float model, same input shape, AIPP and output type. Writes
/// DIR/<model>_int8.om, DIR/<model>_fp16.om, one DIR/<name>.atc.log per run and DIR/build.json
/// with the exact ATC command lines. Needs CANN's toolkit (`source .../set_env.sh`).
#[derive(clap::Args)]
pub struct BuildArgs {
    /// The float ONNX model: source of the fp16 OM (not needed with --only int8).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The deploy model from `calibration` (<prefix>_deploy_model.onnx): source of the int8 OM
    /// (not needed with --only fp16).
    #[arg(long)]
    deploy: Option<PathBuf>,
    /// Input shapes, "name:n,c,h,w;name2:..." (ATC syntax).
    #[arg(long = "input_shape", alias = "input-shape")]
    input_shape: String,
    /// Target chip, "Ascend" + the Chip Name of `npu-smi info` (e.g. Ascend310P3, Ascend310B1).
    #[arg(long = "soc_version", alias = "soc-version")]
    soc_version: String,
    /// Static AIPP config (ATC --insert_op_conf), e.g. written by `ascend-ptq aipp`.
    #[arg(long, alias = "insert_op_conf", value_name = "FILE")]
    aipp: Option<PathBuf>,
    /// ATC --output_type (FP32, FP16, UINT8, INT8, ...).
    #[arg(long = "output_type", alias = "output-type")]
    output_type: Option<String>,
    /// ATC --precision_mode (e.g. force_fp16, the ATC default; allow_mix_precision).
    #[arg(long = "precision_mode", alias = "precision-mode")]
    precision_mode: Option<String>,
    /// Where the OMs, logs and build.json go (ATC runs there).
    #[arg(long = "out_dir", alias = "out-dir", default_value = ".", value_name = "DIR")]
    out_dir: PathBuf,
    /// Seconds one ATC run may take before its process group is killed.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    timeout: u64,
    /// Build only one of the two OMs: int8 or fp16.
    #[arg(long)]
    only: Option<String>,
    /// The atc executable (default: PATH, $ASCEND_TOOLKIT_HOME/bin, /usr/local/Ascend/ascend-toolkit/latest/bin).
    #[arg(long, value_name = "PATH")]
    atc: Option<PathBuf>,
    /// Do not run ATC: write simulated OMs (real container layout, carrying the ONNX model,
    /// precision and AIPP) that only the ascend-ptq ACL simulator runs. For testing the
    /// compare flow without an Ascend board; never a hardware result.
    #[arg(long)]
    simulate: bool,
    /// Extra ATC arguments, after `--` (e.g. -- --log=info --enable_small_channel=1).
    #[arg(last = true, value_name = "ATC_ARGS")]
    extra: Vec<String>,
}

pub fn run(args: BuildArgs) -> Result<()> {
    let req = BuildRequest {
        model: args.model.clone(),
        deploy: args.deploy.clone(),
        input_shapes: parse_input_shapes(&args.input_shape)?,
        soc_version: args.soc_version.clone(),
        aipp: args.aipp.clone(),
        output_type: args.output_type.clone(),
        precision_mode: args.precision_mode.clone(),
        out_dir: args.out_dir.clone(),
        only: args.only.as_deref().map(str::parse::<Precision>).transpose()?,
        extra_args: args.extra.clone(),
        om_names: ascend_ptq::device::atc::plan::OmNames::Short,
    };
    if args.timeout == 0 {
        bail!("--timeout: must be at least 1 second");
    }
    let plans = plan_builds(&req)?;
    let checks = precheck(&req, &plans)?;
    for w in &checks.warnings {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(&req.out_dir).map_err(|e| anyhow::anyhow!("--out_dir {}: {e}", req.out_dir.display()))?;
    if args.simulate {
        return build_simulated(&req, &plans, &checks);
    }
    build_with_atc(&args, &req, &plans, &checks)
}

fn build_with_atc(args: &BuildArgs, req: &BuildRequest, plans: &[AtcInvocation], _checks: &Precheck) -> Result<()> {
    let atc = find_atc(args.atc.as_deref())?;
    if let Some(note) = &atc.note {
        eprintln!("note: {note}");
    }
    let _sigint = install_interrupt_handler()?;
    let opts = RunOptions { timeout: Duration::from_secs(args.timeout), ..RunOptions::default() };
    let mut report = BuildReport {
        ascend_ptq_version: ascend_ptq::VERSION.to_string(),
        atc: atc.path.to_string_lossy().into_owned(),
        atc_found_by: atc.found_by.clone(),
        soc_version: req.soc_version.clone(),
        input_shape: ascend_ptq::device::atc::plan::input_shape_arg(&req.input_shapes),
        aipp: plans.first().and_then(|p| p.args.iter().find_map(|a| a.strip_prefix("--insert_op_conf=")).map(str::to_string)),
        output_type: req.output_type.clone(),
        precision_mode: req.precision_mode.clone(),
        builds: plans.iter().map(|p| BuildEntry::planned(&atc.path, p)).collect(),
    };
    let build_json = req.out_dir.join("build.json");
    for (i, inv) in plans.iter().enumerate() {
        eprintln!("ATC ({}): {} -> {}", inv.precision.name(), inv.source_model.display(), inv.om_path.display());
        let status = status_line(&inv.name);
        let built = build_with_atc_once(&atc.path, inv, &opts, &mut report.builds[i], &mut |line| status.set_message(line.to_string()));
        status.finish_and_clear();
        report.write(&build_json)?;
        match built {
            Ok(_) => {
                let entry = &report.builds[i];
                println!("{} ({:.1} s)", entry.summary.as_deref().unwrap_or_default(), entry.duration_s.unwrap_or_default());
            }
            Err(AtcError::Failed(failure)) => {
                if !failure.tail.is_empty() {
                    eprintln!("last {} lines of {}:", failure.tail.len(), failure.log);
                    for line in &failure.tail {
                        eprintln!("  | {line}");
                    }
                }
                return Err(AtcError::Failed(failure).into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("wrote {}", build_json.display());
    Ok(())
}

/// `--simulate`: the same plans and prechecks, OMs from the simulated-OM writer.
fn build_simulated(req: &BuildRequest, plans: &[AtcInvocation], checks: &Precheck) -> Result<()> {
    let cmdline = std::env::args().map(|a| ascend_ptq::device::atc::plan::shell_quote(&a)).collect::<Vec<_>>().join(" ");
    for inv in plans {
        let info = write_simulated(inv, req, checks, &cmdline)?;
        println!("{}", om_summary(&info));
    }
    Ok(())
}

/// A spinner with the elapsed time and ATC's last output line (drawn only on a terminal).
fn status_line(name: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}").expect("valid template"));
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

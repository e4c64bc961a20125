//! `ascend-ptq compare`: the options are [`CompareArgs`] (shared with `aptq_compare`, which
//! checks them the same way); this module only shows progress and prints the verdict.

use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::compare::compare_oms;
pub use ascend_ptq::compare::options::{CompareArgs, DEFAULT_REPORT};
use indicatif::{ProgressBar, ProgressStyle};

pub fn run(args: CompareArgs) -> Result<()> {
    // clap fills in DEFAULT_REPORT; the fallback only covers a caller that built the args by hand.
    let report_path = args.report.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_REPORT));
    let csv = args.csv;
    let opts = args.into_options()?;
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("comparing {bar:30} {pos}/{len} input sets {elapsed}").expect("valid template"));
    let report = compare_oms(&opts, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let (json, html) = report.write(&report_path)?;
    println!("device: {}", report.int8_device);
    for o in &report.outputs {
        let c = &o.int8_vs_fp16.cosine_similarity;
        println!("{}: int8 vs fp16 cosine mean {:.6} worst {:.6}", o.name, c.mean, c.worst);
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if let Some(t) = &report.task {
        if let Some(p) = &t.picked {
            println!("{p}");
        }
        for (pair, stats) in
            [("int8 vs fp16", Some(&t.int8_vs_fp16)), ("int8 vs fp32", t.int8_vs_fp32.as_ref()), ("fp16 vs fp32", t.fp16_vs_fp32.as_ref())]
        {
            let Some(stats) = stats else { continue };
            let parts: Vec<String> = stats.iter().map(|(k, (mean, worst))| format!("{k} mean {mean:.4} worst {worst:.4}")).collect();
            println!("{} ({}) {pair}: {}", t.output, t.task, parts.join(", "));
        }
    }
    println!("{}", report.verdict);
    if csv {
        println!("wrote {}", report.write_csv(&report_path)?.display());
    }
    println!("wrote {} and {}", json.display(), html.display());
    if !report.pass {
        std::process::exit(3);
    }
    Ok(())
}

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use ascend_ptq::engine::Session;
use ascend_ptq::engine::bench::bench;
use ascend_ptq::onnx::input_shape::parse_input_shapes;
use ascend_ptq::onnx::inspect::inspect_model;
use ascend_ptq::onnx::load_model;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The ONNX model.
    #[arg(long)]
    model: PathBuf,
    /// Fix dynamic inputs: "name1:n,c,h,w;name2:...".
    #[arg(long = "input_shape", alias = "input-shape")]
    input_shape: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed runs (after warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Print a JSON object (median_ms, min_ms, max_ms, gflops, peak_rss_mib, ...).
    #[arg(long)]
    json: bool,
    /// Also print the time per op type and the slowest nodes (fastest of `--runs` extra runs per node).
    #[arg(long)]
    profile: bool,
    /// How many of the slowest nodes `--profile` lists (0: all of them).
    #[arg(long = "profile_nodes", default_value_t = 20)]
    profile_nodes: usize,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let shapes = match &args.input_shape {
        Some(s) => parse_input_shapes(s)?,
        None => Vec::new(),
    };
    let fixed: HashMap<String, Vec<i64>> = shapes.iter().map(|s| (s.name.clone(), s.dims.clone())).collect();
    let session = Session::new(&model, &fixed)?;
    let macs = inspect_model(&model, &args.model.display().to_string(), &shapes)?.macs.map(|m| m.total);
    let result = bench(&session, args.threads.max(1), args.warmup, args.runs.max(1), macs)?;
    if args.profile {
        print_profile(&session, args.threads.max(1), args.runs.max(1), args.profile_nodes)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{}: median {:.2} ms (min {:.2}, max {:.2}) over {} runs, {} thread(s){}{}",
            args.model.display(),
            result.median_ms,
            result.min_ms,
            result.max_ms,
            result.runs,
            result.threads,
            result.gflops.map(|g| format!(", {g:.1} GFLOP/s")).unwrap_or_default(),
            result.peak_rss_mib.map(|m| format!(", peak RSS {m:.0} MiB")).unwrap_or_default(),
        );
    }
    Ok(())
}

/// Time per op type, largest first, then the slowest nodes.
fn print_profile(session: &Session, threads: usize, runs: usize, slowest: usize) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    // The fastest of `runs` runs per node: the least disturbed by other load on the machine.
    let mut profile: Vec<(String, String, f64)> = Vec::new();
    for _ in 0..runs {
        let inputs = ascend_ptq::engine::bench::synthetic_inputs(session)?;
        let (_, run) = pool.install(|| ascend_ptq::engine::with_workers_awake(|| session.run_profiled(inputs)))?;
        if profile.is_empty() {
            profile = run;
        } else {
            profile.iter_mut().zip(run).for_each(|(best, (_, _, ms))| best.2 = best.2.min(ms));
        }
    }
    let mut by_op: HashMap<String, (f64, usize)> = HashMap::new();
    for (_, op, ms) in &profile {
        let e = by_op.entry(op.clone()).or_default();
        e.0 += ms;
        e.1 += 1;
    }
    let mut rows: Vec<_> = by_op.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    let total: f64 = rows.iter().map(|r| r.1.0).sum();
    eprintln!("profile ({total:.1} ms in {} nodes):", profile.len());
    for (op, (ms, n)) in rows {
        eprintln!("  {op:<24} {ms:8.2} ms {:5.1}%  ({n} nodes)", 100.0 * ms / total);
    }
    let mut nodes: Vec<_> = profile.iter().collect();
    nodes.sort_by(|a, b| b.2.total_cmp(&a.2));
    eprintln!("slowest nodes:");
    let shown = if slowest == 0 { nodes.len() } else { slowest };
    for (label, op, ms) in nodes.iter().take(shown) {
        eprintln!("  {ms:8.2} ms  {op:<20} {label}");
    }
    Ok(())
}

//! Timing a planned session: warm-up runs, then timed runs on fixed pseudo-random inputs.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use super::error::{EngineError, Result};
use super::session::Session;
use super::tensor::Tensor;
use crate::onnx::DataType;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub threads: usize,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// 2 × MACs / median time, when the MAC count is known.
    pub gflops: Option<f64>,
    /// Peak resident set size of the process so far (Linux VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
}

/// Deterministic inputs in [-1, 1) for every (static-shaped) session input.
pub fn synthetic_inputs(session: &Session) -> Result<HashMap<String, Tensor>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        // xorshift64*: cheap, reproducible, good enough for benchmark data.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    session
        .inputs()
        .map(|spec| {
            let shape = spec.shape.clone().ok_or_else(|| EngineError::Input {
                name: spec.name.clone(),
                detail: "has a dynamic shape: fix it with --input_shape".into(),
            })?;
            let too_big = |detail: String| EngineError::Input { name: spec.name.clone(), detail };
            let n = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| too_big(format!("shape {shape:?} has more elements than a usize can count")))?;
            let t = match spec.dtype {
                DataType::Float | DataType::Undefined => {
                    // A shape the machine cannot hold is an error, not an abort.
                    let mut values = Vec::new();
                    values
                        .try_reserve_exact(n)
                        .map_err(|e| too_big(format!("cannot allocate {n} float32 values for shape {shape:?}: {e}")))?;
                    values.extend((0..n).map(|_| next()));
                    Tensor::F32(ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sized"))
                }
                other => {
                    return Err(EngineError::Input {
                        name: spec.name.clone(),
                        detail: format!("synthetic benchmark inputs are float only, this input is {}", other.as_str_name()),
                    });
                }
            };
            Ok((spec.name.clone(), t))
        })
        .collect()
}

/// Runs `warmup` untimed and `runs` timed inferences on `threads` rayon threads.
pub fn bench(session: &Session, threads: usize, warmup: usize, runs: usize, macs: Option<u64>) -> Result<BenchResult> {
    let inputs = synthetic_inputs(session)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| EngineError::Input { name: "--threads".into(), detail: e.to_string() })?;
    let mut times = Vec::with_capacity(runs);
    pool.install(|| -> Result<()> {
        for i in 0..warmup + runs {
            let start = Instant::now();
            // As an inference should run (see `with_workers_awake`).
            crate::engine::with_workers_awake(|| session.run(inputs.clone()))?;
            if i >= warmup {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(())
    })?;
    times.sort_by(f64::total_cmp);
    let median_ms = if times.is_empty() { 0.0 } else { times[times.len() / 2] };
    Ok(BenchResult {
        threads,
        runs,
        median_ms,
        min_ms: times.first().copied().unwrap_or(0.0),
        max_ms: times.last().copied().unwrap_or(0.0),
        gflops: macs.filter(|_| median_ms > 0.0).map(|m| 2.0 * m as f64 / (median_ms * 1e6)),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// VmHWM from /proc/self/status (Linux only).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

//! Keeping a pool's workers awake through one inference.
//!
//! Between two parallel ops a model runs serial steps (small ops, planning a buffer), and a
//! rayon worker with nothing to do goes to sleep on a futex after a few dozen idle rounds;
//! the next parallel op then pays a system call and a reschedule to wake it. PP-OCRv4 rec at
//! 2 threads spent ~7 % of its samples in the kernel's wake-up and scheduling paths. ONNX
//! Runtime's pool spins between ops by default; [`with_workers_awake`] does the same for one
//! call: the other workers poll for jobs (`rayon::yield_now`) instead of sleeping, so they
//! pick up the next op's jobs at once. The results are unchanged (the same jobs run, only
//! sooner); the cost is the other cores spinning while the call lasts.
//!
//! A poller leaves after [`IDLE_LIMIT`] without a job: so a poller that a busy thread picked
//! up in the middle of other work (possible with 3 or more threads, or when calls nest) can
//! delay that work by at most that long, never deadlock it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a poller waits for a job before it leaves (serial stretches of the models here
/// are tens of microseconds).
const IDLE_LIMIT: Duration = Duration::from_millis(2);

/// Runs `f` on the current rayon pool (the global one outside any) while its other workers
/// poll for jobs instead of sleeping. For a top-level inference: work that is itself one of
/// many parallel jobs gains nothing from it.
pub fn with_workers_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 {
        return f();
    }
    let done = AtomicBool::new(false);
    let caller = rayon::current_thread_index();
    rayon::in_place_scope(|s| {
        // From outside the pool (a C caller's thread), every worker may poll.
        let pollers = if caller.is_some() { threads - 1 } else { threads };
        for _ in 0..pollers {
            let done = &done;
            s.spawn(move |_| {
                // The caller popping its own poller would only spin beside its own work.
                if caller.is_some() && rayon::current_thread_index() == caller {
                    return;
                }
                let mut idle_since = Instant::now();
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        idle_since = Instant::now();
                    } else if idle_since.elapsed() > IDLE_LIMIT {
                        return;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let r = f();
        done.store(true, Ordering::Release);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn work(n: u64) -> u64 {
        (0..n).into_par_iter().map(|i| i * i % 7).sum()
    }

    #[test]
    fn results_are_the_plain_call_and_nesting_never_deadlocks() {
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let want = work(100_000);
            pool.install(|| {
                assert_eq!(with_workers_awake(|| work(100_000)), want);
                // Calls inside parallel jobs, and inside each other: pollers land on busy
                // threads; they must leave without holding that work up for good.
                let sums: Vec<u64> = (0..8)
                    .into_par_iter()
                    .map(|_| with_workers_awake(|| (0..4).into_par_iter().map(|_| with_workers_awake(|| work(20_000))).sum()))
                    .collect();
                assert!(sums.iter().all(|&s| s == 4 * work(20_000)));
            });
        }
        // Outside any pool: the global one.
        assert_eq!(with_workers_awake(|| work(1000)), work(1000));
    }
}

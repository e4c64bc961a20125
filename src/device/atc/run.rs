//! Running one ATC build as a child in its own process group: its stdout and stderr go line by
//! line to `<name>.atc.log` and to a caller's callback (the CLI's status line); on timeout or
//! Ctrl-C the whole group is killed (SIGTERM, then SIGKILL after a grace period), since ATC
//! starts compiler subprocesses that would otherwise outlive it.
//!
//! Ctrl-C: a SIGINT handler from `nix::sys::signal::sigaction` that only sets an atomic flag,
//! which the wait loop polls (it wakes every 100 ms anyway). The `ctrlc` crate would add a
//! dependency and a thread for the same flag; ATC's own group is not the terminal's foreground
//! group, so the terminal's SIGINT reaches only us and we decide how ATC ends. A C API
//! caller's cancel token (`engine::cancel`) ends the build the same way.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, LineWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;

use super::error::AtcError;
use super::plan::{AtcInvocation, shell_command};
use crate::engine::cancel::cancelled;

/// How many of the last output lines a failure report shows.
pub const TAIL_LINES: usize = 20;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Restores the previous SIGINT disposition when dropped.
pub struct InterruptGuard {
    previous: SigAction,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        // SAFETY: reinstating the disposition that was in place before ours.
        let _ = unsafe { signal::sigaction(Signal::SIGINT, &self.previous) };
    }
}

/// Makes Ctrl-C stop the running ATC build (and its process group) instead of only us.
pub fn install_interrupt_handler() -> Result<InterruptGuard, AtcError> {
    INTERRUPTED.store(false, Ordering::SeqCst);
    let action = SigAction::new(SigHandler::Handler(on_sigint), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let previous = unsafe { signal::sigaction(Signal::SIGINT, &action) }
        .map_err(|e| AtcError::Io { path: "SIGINT handler".into(), source: std::io::Error::from(e) })?;
    Ok(InterruptGuard { previous })
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { timeout: Duration::from_secs(1800), grace: Duration::from_secs(5) }
    }
}

/// How the ATC process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitStatusInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatusInfo {
    fn from(s: ExitStatus) -> Self {
        ExitStatusInfo { code: s.code(), signal: s.signal() }
    }
}

impl std::fmt::Display for ExitStatusInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => write!(f, "unknown exit status"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// ATC ended by itself (see the exit status).
    Exited,
    TimedOut,
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct AtcOutcome {
    pub end: RunEnd,
    pub exit: ExitStatusInfo,
    pub duration: Duration,
    /// The last [`TAIL_LINES`] output lines.
    pub tail: Vec<String>,
}

impl AtcOutcome {
    pub fn exited_ok(&self) -> bool {
        self.end == RunEnd::Exited && self.exit.code == Some(0)
    }
}

/// Runs `atc` with `inv.args` in the output directory. A stale `<name>.om` is removed first so
/// an old file cannot pass for this run's result.
pub fn run_atc(atc: &Path, inv: &AtcInvocation, opts: &RunOptions, on_line: &mut dyn FnMut(&str)) -> Result<AtcOutcome, AtcError> {
    let cwd = inv.output.parent().unwrap_or(Path::new("."));
    match std::fs::remove_file(&inv.om_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(AtcError::io(&inv.om_path, e)),
        _ => {}
    }
    let log_file = std::fs::File::create(&inv.log_path).map_err(|e| AtcError::io(&inv.log_path, e))?;
    let mut log = LineWriter::new(log_file);
    let log_err = |e| AtcError::io(&inv.log_path, e);
    writeln!(log, "# ascend-ptq build: {}", shell_command(atc, &inv.args, cwd)).map_err(log_err)?;

    let start = Instant::now();
    let mut child = Command::new(atc)
        .args(&inv.args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| AtcError::Spawn { atc: atc.to_path_buf(), source })?;
    let pgid = Pid::from_raw(child.id() as i32);

    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), child.stderr.take().map(|p| Box::new(p) as _)]
        .into_iter()
        .flatten()
        .map(|pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || forward_lines(pipe, tx))
        })
        .collect();
    drop(tx);

    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut status: Option<(ExitStatus, Instant)> = None;
    let mut end = RunEnd::Exited;
    let mut leftovers_killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                writeln!(log, "{line}").map_err(log_err)?;
                on_line(&line);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) if status.is_some() => break,
            // ATC closed both pipes but still runs: keep polling it without spinning.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(100)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        match status {
            None => {
                if let Some(s) = child.try_wait().map_err(|e| AtcError::io(atc, e))? {
                    status = Some((s, Instant::now()));
                } else if interrupted() || cancelled() || start.elapsed() >= opts.timeout {
                    end = if interrupted() || cancelled() { RunEnd::Interrupted } else { RunEnd::TimedOut };
                    let s = kill_group(pgid, &mut child, opts.grace).map_err(|e| AtcError::io(atc, e))?;
                    status = Some((s, Instant::now()));
                }
            }
            // ATC exited but something it started still holds the output pipes open.
            Some((_, exited)) if !leftovers_killed && exited.elapsed() > Duration::from_secs(2) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                leftovers_killed = true;
            }
            Some(_) => {}
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let (exit, _) = status.expect("loop ends after the child exited");
    let exit = ExitStatusInfo::from(exit);
    let note = match end {
        RunEnd::Exited => format!("# ATC ended: {exit}"),
        RunEnd::TimedOut => {
            format!("# ascend-ptq: ATC timed out after {} s; its process group was killed ({exit})", opts.timeout.as_secs())
        }
        RunEnd::Interrupted => {
            format!("# ascend-ptq: interrupted (Ctrl-C, or cancelled by the C API caller); ATC's process group was killed ({exit})")
        }
    };
    writeln!(log, "{note}").map_err(log_err)?;
    if !matches!(end, RunEnd::Exited) {
        // A killed ATC may have left half an OM behind; it must not pass for a result.
        match std::fs::remove_file(&inv.om_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(AtcError::io(&inv.om_path, e)),
            _ => {}
        }
    }
    Ok(AtcOutcome { end, exit, duration: start.elapsed(), tail: tail.into() })
}

fn forward_lines(pipe: Box<dyn Read + Send>, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                if tx.send(line.trim_end_matches(['\n', '\r']).to_string()).is_err() {
                    return;
                }
            }
        }
    }
}

/// SIGTERM to the group, SIGKILL to whatever is left after `grace`; reaps the child.
fn kill_group(pgid: Pid, child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    let mut status = None;
    while Instant::now() < deadline {
        if status.is_none() {
            status = child.try_wait()?;
        }
        // Once the child is reaped, the group is empty when killpg finds no process.
        if let Some(s) = status
            && killpg(pgid, None).is_err()
        {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    match status {
        Some(s) => Ok(s),
        None => child.wait(),
    }
}

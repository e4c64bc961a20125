//! The `ascend-ptq` command line: parses arguments and calls the library.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    keep_tensor_buffers_on_the_heap();
    exit_quietly_on_closed_stdout();
    // Ctrl-C (or SIGTERM) mid-write removes the temp file being written: no partial outputs.
    ascend_ptq::onnx::inflight::install_cleanup_on_interrupt();
    let args = match cli::abbrev::expand(std::env::args_os().collect(), cli::Cli::command()) {
        Ok(args) => cli::Cli::parse_from(args),
        Err(message) => {
            // A usage error, reported and numbered as clap reports its own.
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes whose text the message already contains (our
/// error types embed the OS error in their own message: "f.onnx: No such file or directory").
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
}

/// The engine allocates and frees an output buffer of up to tens of MiB for every node.
/// glibc serves such sizes with fresh mmaps whose pages fault in on first touch — that cost
/// more than the element-wise ops themselves (PP-OCRv4 det, 1 thread: 193 → 128 ms). Serve
/// them from the heap instead, and do not hand freed memory straight back to the kernel.
/// Only the CLI does this; an application embedding the C library keeps its own settings.
/// `ascend-ptq … | head` must end quietly like any Unix tool, not panic in println! on EPIPE:
/// restore the default SIGPIPE action that the Rust runtime sets to "ignore".
fn exit_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: installing the default disposition for SIGPIPE, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn keep_tensor_buffers_on_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

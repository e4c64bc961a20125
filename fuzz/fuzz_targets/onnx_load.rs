//! ONNX model loading on arbitrary bytes: the protobuf decode, the model checks, external
//! data (resolved against a folder holding `weights.bin`, so `location`, `offset` and
//! `length` are exercised), then the `inspect` summary with its shape inference. Every
//! outcome must be a summary or an error: no panic, no overflow, no allocation the input's
//! size does not justify.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A folder with a 4 KiB `weights.bin` (the seeds' external-data file), made once per process.
fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("aptq-fuzz-onnx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz model folder");
        let weights: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(dir.join("weights.bin"), weights).expect("write weights.bin");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = model_dir();
    let label = dir.join("fuzz.onnx");
    if let Ok(model) = ascend_ptq::onnx::io::load_model_from_bytes(data, &label, Some(dir)) {
        let _ = ascend_ptq::onnx::inspect::inspect_model(&model, "fuzz.onnx", &[]);
    }
});

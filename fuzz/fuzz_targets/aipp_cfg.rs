//! AIPP config text (`--insert_op_conf`, docs/ascend-formats.md §10).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ascend_ptq::device::aipp::AippConfig::from_text(text, Path::new("fuzz_aipp.cfg"));
    }
});

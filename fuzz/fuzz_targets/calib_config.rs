//! `--calibration_config` text (AMCT's protobuf text format, docs/ascend-formats.md §8).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ascend_ptq::quant::config::CalibrationConfig::parse(text);
    }
});

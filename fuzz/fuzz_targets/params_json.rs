//! Preprocessing parameter JSON in both dialects (the guide's `det_pre_params`, the
//! repository's `detPreParams`), then the AIPP config derived from it as `ascend-ptq aipp`
//! does.
#![no_main]

use std::path::Path;

use ascend_ptq::device::aipp::{AippConfig, AippOptions, InputFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = ascend_ptq::data::params::parse_params(text, Path::new("fuzz_params.json"), None) {
        let _ = AippConfig::from_params(&loaded.params, &AippOptions { input_format: InputFormat::Rgb888U8, src_size: None });
    }
});

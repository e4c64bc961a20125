//! The OM reader on arbitrary bytes: it must return a summary or an error, never panic,
//! overflow or read out of bounds.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ascend_ptq::device::om::om_info_from_bytes(Path::new("fuzz.om"), data);
});

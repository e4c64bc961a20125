//! Calibration-set bins with their `--input_shape` / `--data_types`: the input is
//! "<input_shape>\n<data_types>\n<bin bytes>". The bin is written to a scratch folder and the
//! set opened, batch 0 read and checked for NaN/Inf, as `calibration` does. Shapes whose
//! size the bin cannot match must be errors, never allocations.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ascend_ptq::data::calib_set::CalibrationSet;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("aptq-fuzz-bins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz bin folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(shape), Some(types), Some(bin)) = (parts.next(), parts.next(), parts.next()) else { return };
    let (Ok(shape), Ok(types)) = (std::str::from_utf8(shape), std::str::from_utf8(types)) else { return };
    // One directory per input named in the shape; every one holds the same bin.
    let inputs = shape.split(';').count().min(4);
    let mut dirs = Vec::new();
    for i in 0..inputs {
        let dir = scratch().join(format!("in{i}"));
        std::fs::create_dir_all(&dir).expect("create an input folder");
        std::fs::write(dir.join("0.bin"), bin).expect("write the bin");
        dirs.push(dir.to_string_lossy().into_owned());
    }
    if let Ok(set) = CalibrationSet::open(shape, &dirs.join(";"), types, 1)
        && let Ok(batch) = set.batch(0)
    {
        let _ = set.check_finite(&batch);
    }
});

//! Calibration data: the preprocessing parameter file, image → bin preprocessing, and the
//! memory-mapped calibration-set reader that the calibration command consumes.

pub mod calib_set;
pub mod params;
pub mod preprocess;

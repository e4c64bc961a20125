//! Calibration data: the preprocessing parameter file and the image → bin preprocessing.

pub mod params;
pub mod preprocess;

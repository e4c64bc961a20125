//! Quantization: the calibration config file (and, later, the calibration itself).

pub mod config;
pub mod pbtext;

//! Calibration data: the calibration-set reader (and preprocessing).

pub mod calib_set;

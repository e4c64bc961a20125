//! Comparing tensors: the msaccucmp metrics (and, later, reports).

pub mod metrics;

pub use metrics::Metrics;

//! Comparing the int8 and fp16 OMs: the msaccucmp metrics, the runner interface the models
//! run through, the input sets, the comparison flow and its JSON/HTML report.

pub mod csv;
pub mod device;
pub mod error;
pub mod flow;
pub mod inputs;
pub mod metrics;
pub mod options;
pub mod pictures;
pub mod report;
pub mod runner;
pub mod saved;
pub mod task;

pub use device::{AclRunner, CompareOptions, InputSource, compare_oms};
pub use error::CompareError;
pub use flow::{DEFAULT_THRESHOLD, compare, compare_with_progress};
pub use inputs::{CompareInputs, InputSet};
pub use metrics::Metrics;
pub use options::{CompareArgs, CompareArgsError};
pub use report::CompareReport;
pub use runner::{IoDType, IoDesc, OmRunner};
pub use saved::{SavedReport, task_metrics_of_saved};
pub use task::{Criteria, Threshold};

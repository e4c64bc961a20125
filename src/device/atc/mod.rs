//! Driving ATC (CANN's model converter, docs/ascend-formats.md §9) for `ascend-ptq build`: find the `atc`
//! executable, plan the two command lines users write by hand today (the int8 OM from the
//! deploy model, the fp16 OM from the float model), check the inputs before a long ATC run,
//! run ATC in its own process group with a timeout, and record what ran in `build.json`.

pub mod build;
pub mod discover;
pub mod error;
pub mod plan;
pub mod precheck;
pub mod report;
pub mod run;

pub use build::{build_simulated, build_with_atc};
pub use discover::{AtcLocation, find_atc};
pub use error::{AtcError, AtcFailure};
pub use plan::{AtcInvocation, BuildRequest, OmNames, Precision, plan_builds, shell_command};
pub use precheck::{Precheck, precheck};
pub use report::{BuildEntry, BuildReport, BuildStatus, om_summary, verify_om};
pub use run::{AtcOutcome, ExitStatusInfo, InterruptGuard, RunOptions, install_interrupt_handler, run_atc};

//! `ascend-ptq flow PARAMS.json`: what the guide's `quant_all_script.py` does, as one command
//! and without Python — preprocess → calibration → ATC int8 → ATC fp16 → compare — with the
//! reference scripts' file names, a `flow.json` of every step (command, duration, outputs,
//! status) and reruns that skip the steps whose inputs did not change ([`state`]).

pub mod error;
pub mod options;
pub mod params;
pub mod run;
pub mod state;

pub use error::FlowError;
pub use options::FlowArgs;
pub use params::{FlowParams, load_flow_params};
pub use run::{FlowEvent, FlowOptions, run_flow};
pub use state::{FileStamp, FlowReport, StepRecord, StepStatus};

//! The options of `ascend-ptq flow`, defined once for the command line (clap) and the C
//! function `aptq_flow` (its options JSON, serde): a flag and its JSON key are the same field
//! (`--soc_version` ↔ `"soc_version"`, `--acl-lib` ↔ `"acl_lib"`). The params file is the
//! positional argument on the command line and `aptq_flow`'s first argument.

use std::path::PathBuf;

use super::run::FlowOptions;

/// Runs the guide's whole flow from one JSON, as its `quant_all_script.py` does: preprocess →
/// calibration (batch_num from quantInt8.calBatchSize / quant_int8.cali_batch_size) → ATC int8
/// from the deploy model → ATC fp16 from the float model (with quantFp16 / quant_fp16) →
/// compare when an AscendCL library is found. Files go under outputRootDir (default
/// output_<socVersion>) with the reference scripts' names; flow.json records every step, and a
/// rerun skips the steps whose inputs are unchanged. Exit status 3 when compare's verdict fails.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowArgs {
    /// The flow JSON: the repository's camelCase (detPreParams, onnxPath, ...) or the guide's
    /// snake_case (det_pre_params, onnx_path, ...).
    #[arg(value_name = "PARAMS.json")]
    #[serde(skip)]
    pub params: PathBuf,
    /// No ATC and no board: simulated OMs compared through the ascend-ptq ACL simulator
    /// (libascendcl_sim.so beside this program, or --acl-lib). Never a hardware result.
    #[arg(long)]
    #[serde(default)]
    pub simulate: bool,
    /// Overrides the file's socVersion / soc_version.
    #[arg(long = "soc_version", alias = "soc-version")]
    #[serde(default)]
    pub soc_version: Option<String>,
    /// The atc executable (default: PATH, $ASCEND_TOOLKIT_HOME/bin, the default CANN folder).
    #[arg(long, value_name = "PATH")]
    #[serde(default)]
    pub atc: Option<PathBuf>,
    /// libascendcl.so for compare (default: $ASCEND_PTQ_ACL_LIB, then the CANN install folders).
    #[arg(long = "acl-lib", alias = "acl_lib", value_name = "PATH")]
    #[serde(default)]
    pub acl_lib: Option<PathBuf>,
    /// Seconds one ATC run may take before its process group is killed.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Redo every step, even those flow.json shows as done with the same inputs.
    #[arg(long)]
    #[serde(default)]
    pub force: bool,
    /// What the model's outputs mean, for calibration's evaluation and compare's task metrics
    /// (as `calibration --task` / `compare --task`: db, yolov5, yolov8, yolox, picodet,
    /// centerface, cls, ctc, auto, raw).
    #[arg(long, value_name = "TASK")]
    #[serde(default)]
    pub task: Option<String>,
    /// Compare's verdict (as `compare --threshold`: "cosine>=0.99", the default, or a task
    /// metric such as "f1>=0.95" with --task).
    #[arg(long, value_name = "METRIC>=VALUE")]
    #[serde(default)]
    pub threshold: Option<String>,
    /// Calibration leaves the fewest MACs float that meet this (as `calibration
    /// --accuracy_target`), measured on the calibration bins: the flow has no held-out set.
    #[arg(long = "accuracy_target", value_name = "TARGET")]
    #[serde(default)]
    pub accuracy_target: Option<String>,
}

fn default_timeout() -> u64 {
    1800
}

impl FlowArgs {
    pub fn into_options(self) -> FlowOptions {
        FlowOptions {
            params: self.params,
            simulate: self.simulate,
            soc_version: self.soc_version,
            atc: self.atc,
            acl_lib: self.acl_lib,
            atc_timeout: self.timeout,
            force: self.force,
            task: self.task,
            threshold: self.threshold,
            accuracy_target: self.accuracy_target,
        }
    }
}

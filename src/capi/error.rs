//! The C status codes and every mapping of a library error to one: a `From<…> for CapiError`
//! per library error type, all in this file, so a new error variant needs one decision here.

use super::options::OptionsError;
use crate::compare::{CompareArgsError, CompareError};
use crate::data::calib_set::CalibError;
use crate::data::params::ParamsError;
use crate::data::preprocess::PreprocessError;
use crate::device::acl::Error as AclLayerError;
use crate::device::aipp::AippError;
use crate::device::om::OmError;
use crate::engine::EngineError;
use crate::engine::files::RunFilesError;
use crate::flow::FlowError;
use crate::onnx::OnnxError;
use crate::onnx::input_shape::InputShapeError;
use crate::quant::QuantError;
use crate::quant::calibrate::CalibrateError;
use crate::quant::convert::ConvertError;

/// Result of every fallible `aptq_*` call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum aptq_status {
    APTQ_OK = 0,
    /// A null pointer, invalid UTF-8, or a malformed argument such as `input_shape`.
    APTQ_INVALID_ARGUMENT = 1,
    /// A file could not be read or written.
    APTQ_IO_ERROR = 2,
    /// The model file (ONNX, or OM for `aptq_om_info`) is empty, truncated, of another format,
    /// or internally inconsistent.
    APTQ_INVALID_MODEL = 3,
    /// The model uses an operator the library cannot execute.
    APTQ_UNSUPPORTED = 4,
    /// The AscendCL library (or the simulator) was not found, could not be loaded, or lacks a
    /// required function. The message lists the places searched or the missing functions.
    APTQ_ACL_LIBRARY_ERROR = 5,
    /// An AscendCL call failed. The message names the call, ACL's numeric code and its name
    /// (e.g. `aclmdlLoadFromFile failed: 100003 ACL_ERROR_INVALID_FILE`).
    APTQ_ACL_ERROR = 6,
    /// A step of `aptq_flow` failed (ATC, calibration, ...). The message names the step and
    /// its log; the flow's flow.json records it and the steps before it.
    APTQ_STEP_FAILED = 7,
    /// The caller cancelled the call: its progress callback returned non-zero (the
    /// `*_with_callbacks` functions). No partial output file is left and no AscendCL object
    /// stays alive; a cancelled flow keeps the steps it had finished.
    APTQ_CANCELLED = 8,
    /// A bug: the library panicked. The message says where.
    APTQ_PANIC = 99,
}

use aptq_status::*;

/// An error on its way to C: a status and the message for `aptq_last_error`.
pub(crate) struct CapiError {
    pub status: aptq_status,
    pub message: String,
}

impl CapiError {
    fn new(status: aptq_status, e: impl std::fmt::Display) -> Self {
        CapiError { status, message: e.to_string() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        CapiError { status: APTQ_INVALID_ARGUMENT, message: message.into() }
    }

    /// A failure that cannot happen with correct code (e.g. serializing our own summary).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        CapiError::new(APTQ_PANIC, e)
    }
}

/// The status of a model I/O error (also when it is wrapped in another error).
fn onnx_status(e: &OnnxError) -> aptq_status {
    match e {
        OnnxError::Io { .. } => APTQ_IO_ERROR,
        OnnxError::Argument { .. } => APTQ_INVALID_ARGUMENT,
        _ => APTQ_INVALID_MODEL,
    }
}

fn calib_set_status(e: &CalibError) -> aptq_status {
    match e {
        CalibError::Io { .. } | CalibError::Dir { .. } => APTQ_IO_ERROR,
        _ => APTQ_INVALID_ARGUMENT,
    }
}

fn quant_status(e: &QuantError) -> aptq_status {
    match e {
        QuantError::Onnx(o) => onnx_status(o),
        QuantError::NoGraph | QuantError::UnsupportedOpset { .. } => APTQ_INVALID_MODEL,
        // The engine failed while running a calibration batch: the engine's own kind decides.
        QuantError::Engine { source, .. } => engine_status(source),
        // Weights or data the quantization cannot represent (skip_layers in the config fixes
        // it), or a bad algorithm parameter.
        _ => APTQ_INVALID_ARGUMENT,
    }
}

/// The status of an engine error met while building or running a model for calibration.
fn engine_status(e: &EngineError) -> aptq_status {
    match e {
        EngineError::UnsupportedOp { .. } => APTQ_UNSUPPORTED,
        EngineError::Input { .. } => APTQ_INVALID_ARGUMENT,
        EngineError::Onnx(o) => onnx_status(o),
        EngineError::Cancelled => APTQ_CANCELLED,
        _ => APTQ_INVALID_MODEL,
    }
}

fn acl_status(e: &AclLayerError) -> aptq_status {
    match e {
        AclLayerError::LibraryNotFound { .. } | AclLayerError::MissingSymbols { .. } => APTQ_ACL_LIBRARY_ERROR,
        AclLayerError::Call(_) | AclLayerError::LoadModel { .. } => APTQ_ACL_ERROR,
        AclLayerError::ModelFile { .. } => APTQ_IO_ERROR,
        AclLayerError::InputCount { .. }
        | AclLayerError::InputSize { .. }
        | AclLayerError::BufferTooSmall { .. }
        | AclLayerError::Nul { .. } => APTQ_INVALID_ARGUMENT,
    }
}

impl From<OnnxError> for CapiError {
    fn from(e: OnnxError) -> Self {
        CapiError::new(onnx_status(&e), e)
    }
}

impl From<InputShapeError> for CapiError {
    fn from(e: InputShapeError) -> Self {
        CapiError::new(APTQ_INVALID_ARGUMENT, e)
    }
}

impl From<OptionsError> for CapiError {
    fn from(e: OptionsError) -> Self {
        CapiError::new(APTQ_INVALID_ARGUMENT, e)
    }
}

impl From<CalibrateError> for CapiError {
    fn from(e: CalibrateError) -> Self {
        let status = match &e {
            CalibrateError::Argument { .. } => APTQ_INVALID_ARGUMENT,
            CalibrateError::SavePath { .. } => APTQ_IO_ERROR,
            // No position: the config file could not be read at all.
            CalibrateError::Config(c) if c.pos.is_none() => APTQ_IO_ERROR,
            CalibrateError::Config(_) => APTQ_INVALID_ARGUMENT,
            CalibrateError::Data(d) => calib_set_status(d),
            CalibrateError::Quant(q) => quant_status(q),
            CalibrateError::Onnx(o) => onnx_status(o),
            CalibrateError::Engine { source, .. } => engine_status(source),
        };
        CapiError::new(status, e)
    }
}

impl From<ConvertError> for CapiError {
    fn from(e: ConvertError) -> Self {
        let status = match &e {
            ConvertError::Argument { .. } => APTQ_INVALID_ARGUMENT,
            ConvertError::SavePath { .. } => APTQ_IO_ERROR,
            // A Q/DQ pattern the deploy model cannot carry: the model is the problem.
            ConvertError::Node { .. } => APTQ_INVALID_MODEL,
            ConvertError::Quant(q) => quant_status(q),
            ConvertError::Onnx(o) => onnx_status(o),
        };
        CapiError::new(status, e)
    }
}

impl From<CompareArgsError> for CapiError {
    fn from(e: CompareArgsError) -> Self {
        CapiError::new(APTQ_INVALID_ARGUMENT, e)
    }
}

impl From<CompareError> for CapiError {
    fn from(e: CompareError) -> Self {
        let status = match &e {
            CompareError::Acl(acl) => acl_status(acl),
            CompareError::Io { .. } => APTQ_IO_ERROR,
            CompareError::Calib(c) => calib_set_status(c),
            // From the ACL runner only for an element type compare cannot read (ACL failures are `Acl`).
            CompareError::Run { .. } => APTQ_UNSUPPORTED,
            CompareError::ModelMismatch(_) | CompareError::OutputSize { .. } => APTQ_INVALID_MODEL,
            CompareError::Engine(EngineError::UnsupportedOp { .. }) => APTQ_UNSUPPORTED,
            CompareError::Cancelled { .. } => APTQ_CANCELLED,
            CompareError::Engine(_)
            | CompareError::Input { .. }
            | CompareError::Preprocess(_)
            | CompareError::Aipp { .. }
            | CompareError::Reference(_) => APTQ_INVALID_ARGUMENT,
        };
        CapiError::new(status, e)
    }
}

impl From<AclLayerError> for CapiError {
    fn from(e: AclLayerError) -> Self {
        CapiError::new(acl_status(&e), e)
    }
}

impl From<OmError> for CapiError {
    fn from(e: OmError) -> Self {
        let status = if matches!(e, OmError::Io { .. }) { APTQ_IO_ERROR } else { APTQ_INVALID_MODEL };
        CapiError::new(status, e)
    }
}

impl From<ParamsError> for CapiError {
    fn from(e: ParamsError) -> Self {
        let status = if matches!(e, ParamsError::Io { .. }) { APTQ_IO_ERROR } else { APTQ_INVALID_ARGUMENT };
        CapiError::new(status, e)
    }
}

impl From<PreprocessError> for CapiError {
    fn from(e: PreprocessError) -> Self {
        let status = match &e {
            PreprocessError::NoFullBatch { .. } => APTQ_INVALID_ARGUMENT,
            PreprocessError::Cancelled { .. } => APTQ_CANCELLED,
            _ => APTQ_IO_ERROR,
        };
        CapiError::new(status, e)
    }
}

impl From<FlowError> for CapiError {
    fn from(e: FlowError) -> Self {
        let status = match &e {
            FlowError::Params { .. } | FlowError::Argument { .. } => APTQ_INVALID_ARGUMENT,
            FlowError::Io { .. } => APTQ_IO_ERROR,
            FlowError::Step { .. } => APTQ_STEP_FAILED,
            FlowError::Cancelled { .. } => APTQ_CANCELLED,
        };
        CapiError::new(status, e)
    }
}

impl From<RunFilesError> for CapiError {
    fn from(e: RunFilesError) -> Self {
        let status = match &e {
            RunFilesError::Argument { .. } | RunFilesError::Shape(_) => APTQ_INVALID_ARGUMENT,
            RunFilesError::Io { .. } => APTQ_IO_ERROR,
            RunFilesError::Onnx(o) => onnx_status(o),
            RunFilesError::Engine(en) => engine_status(en),
        };
        CapiError::new(status, e)
    }
}

impl From<AippError> for CapiError {
    fn from(e: AippError) -> Self {
        CapiError::new(APTQ_INVALID_ARGUMENT, e)
    }
}

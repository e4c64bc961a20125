//! Errors of the quantization core. Messages name the layer or tensor and say what was
//! expected versus found.

use crate::engine::EngineError;
use crate::onnx::OnnxError;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error(
        "layer '{layer}': quantized bias of output channel {channel} is {value:.0}, outside the int32 range \
         (bias {bias} / deq_scale {deq_scale:e}); add '{layer}' to skip_layers to keep it in float"
    )]
    BiasOverflow { layer: String, channel: usize, value: f64, bias: f32, deq_scale: f32 },
    #[error("layer '{layer}': {detail}")]
    Layer { layer: String, detail: String },
    #[error("activation observer for '{tensor}': {detail}")]
    Observer { tensor: String, detail: String },
    #[error("{param}: {detail}")]
    Param { param: String, detail: String },
    /// The float model has no graph to quantize.
    #[error("--model: the model has no graph")]
    NoGraph,
    /// The model imports an opset the deploy model (ATC) or the fake-quant model cannot use.
    #[error("--model: {detail}")]
    UnsupportedOpset { detail: String },
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The engine failed while running the model for the quantization (e.g. a calibration
    /// batch); the engine's error is kept so callers can tell its kind.
    #[error("{context}: {source}")]
    Engine { context: String, source: EngineError },
}

pub type Result<T, E = QuantError> = std::result::Result<T, E>;

impl QuantError {
    pub(crate) fn layer(layer: &str, detail: impl Into<String>) -> Self {
        QuantError::Layer { layer: layer.to_string(), detail: detail.into() }
    }
    pub(crate) fn observer(tensor: &str, detail: impl Into<String>) -> Self {
        QuantError::Observer { tensor: tensor.to_string(), detail: detail.into() }
    }
    pub(crate) fn param(param: &str, detail: impl Into<String>) -> Self {
        QuantError::Param { param: param.to_string(), detail: detail.into() }
    }
}

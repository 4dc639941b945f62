//! Errors of the model crate.

use std::path::PathBuf;

/// Everything that can go wrong building, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid config.json: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },
    #[error("{path}: tensor {key:?} is missing")]
    MissingTensor { path: PathBuf, key: String },
    #[error("{path}: unexpected tensor {key:?} (not part of this model)")]
    UnexpectedTensor { path: PathBuf, key: String },
    #[error("{path}: tensor {key:?} has shape {found:?}, the config implies {expected:?}{hint}")]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        /// The config keys of the mismatched sizes, e.g. ` (ckpt/config.json: n_positions =
        /// 64)`, or empty.
        hint: String,
    },
    /// A size in a config cannot describe the weights file (checked before anything is
    /// allocated: configs are untrusted input).
    #[error("{config}: {key} = {value} does not fit the weights {path}: {message}")]
    ConfigSize {
        /// The config file, or "the model config".
        config: String,
        key: String,
        value: usize,
        path: PathBuf,
        message: String,
    },
    #[error("{path}: tensor {key:?} has dtype {dtype}, only F32 is supported")]
    UnsupportedDtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },
    #[error("{path}: {key:?} differs from {same_as:?}; only tied weights are supported")]
    UntiedWeights {
        path: PathBuf,
        key: String,
        same_as: String,
    },
    #[error("tensor data: {0}")]
    TensorData(String),
}

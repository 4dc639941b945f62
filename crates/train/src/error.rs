//! Errors of the training crate.

use std::path::PathBuf;

use refinery_model::ModelError;

/// Everything that can go wrong training, checkpointing or resuming.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid trainer state: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: optimizer state: {message}")]
    Optimizer { path: PathBuf, message: String },
    /// Token shards that cannot be opened (names the shard file or directory).
    #[error(transparent)]
    Tokenize(#[from] refinery_tokenize::error::TokenizeError),
    /// A shard directory or data file that cannot serve the requested data (names the file,
    /// and the line where there is one).
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// The loss became NaN or infinite: training stops before the update, and the run keeps
    /// its last good checkpoint.
    #[error(
        "step {step}: the loss is {loss} (not finite); stopped before updating the weights, \
         the last checkpoint is the last good state (lower optim.lr, or check the data)"
    )]
    NonFiniteLoss { step: usize, loss: f64 },
}

//! Errors of the compression crate.

use std::path::PathBuf;

use refinery_model::ModelError;
use refinery_train::TrainError;

/// Everything that can go wrong quantizing, pruning or running a compressed model.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A request that cannot work (names what and why).
    #[error("{0}")]
    Invalid(String),
    /// A checkpoint that is not what it claims to be (names the file and the tensor or key).
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CompressError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CompressError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn checkpoint(path: &std::path::Path, message: impl Into<String>) -> Self {
        CompressError::Checkpoint {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

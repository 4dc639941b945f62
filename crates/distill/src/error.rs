//! Errors of the distillation crate.

use std::path::PathBuf;

use refinery_train::TrainError;

/// Everything that can go wrong setting up or running a distillation.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A config value that cannot work (names the file and the key).
    #[error("{0}")]
    InvalidConfig(String),
    /// The teacher and the student cannot be distilled into each other as configured; the
    /// message names both models.
    #[error("teacher {teacher} and student {student}: {message}")]
    Mismatch {
        teacher: String,
        student: String,
        message: String,
    },
    /// A teacher cache file that is not what it claims to be (names the file).
    #[error("{path}: teacher cache: {message}")]
    Cache { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DistillError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        DistillError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The trainer's [`refinery_train::Task`] methods return [`TrainError`]; distillation errors
/// travel inside it as a config error with their full message.
impl From<DistillError> for TrainError {
    fn from(e: DistillError) -> Self {
        match e {
            DistillError::Train(t) => t,
            DistillError::Io { path, source } => TrainError::Io { path, source },
            other => TrainError::InvalidConfig(other.to_string()),
        }
    }
}

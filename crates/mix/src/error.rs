//! Errors of the mix crate. Each variant names the file, key or source it concerns.

use std::path::PathBuf;

pub type Result<T, E = MixError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// A mixture file problem: the file, the dotted key path, the message.
    #[error("{file}: {key}: {message}")]
    Config {
        file: String,
        key: String,
        message: String,
    },
    /// The mixture cannot be planned with these sources (empty source,
    /// epoch cap exceeded, …).
    #[error("source `{source_name}`: {message}")]
    Plan {
        source_name: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Output { path: PathBuf, message: String },
    /// The second pass saw different documents than the first (inputs
    /// changed during the run).
    #[error("source `{source_name}`: {message}")]
    Mismatch {
        source_name: String,
        message: String,
    },
    #[error(transparent)]
    Corpus(#[from] refinery_corpus::CorpusError),
}

impl MixError {
    pub fn config(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        MixError::Config {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MixError::Io {
            path: path.into(),
            source,
        }
    }
}

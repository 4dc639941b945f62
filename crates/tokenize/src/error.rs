//! Errors of the tokenize crate. Each variant names the file it concerns, and
//! the ones about untrusted files (tokenizers, token shards) carry a hint.

use std::path::PathBuf;

pub type Result<T, E = TokenizeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tokenizer file that cannot be loaded.
    #[error("{path}: cannot load tokenizer: {message}\n  ---> HINT: {hint}")]
    Load {
        path: PathBuf,
        message: String,
        hint: String,
    },
    /// A token shard that fails a check (size, magic, version, index).
    #[error("{path}: invalid token shard: {message}\n  ---> HINT: {hint}")]
    Shard {
        path: PathBuf,
        message: String,
        hint: String,
    },
    /// Encoding or decoding failed inside the tokenizer.
    #[error("tokenizer: {0}")]
    Encode(String),
    /// Training failed.
    #[error("training: {0}")]
    Train(String),
    /// A bad option or argument, with what to do instead.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Corpus(#[from] refinery_corpus::CorpusError),
}

impl TokenizeError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TokenizeError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn load(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        TokenizeError::Load {
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn shard(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        TokenizeError::Shard {
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

//! Errors of the corpus crate. Each variant carries the path it concerns.

use std::path::PathBuf;

pub type Result<T, E = CorpusError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("input {path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("output directory {path}: {message}")]
    Output { path: PathBuf, message: String },
    #[error("task {task}: {message}")]
    Task { task: usize, message: String },
    #[error("accounting invariant broken for {file}: records={records} but kept={kept} + dropped={dropped} + failed={failed} = {sum}")]
    Invariant {
        file: String,
        records: u64,
        kept: u64,
        dropped: u64,
        failed: u64,
        sum: u64,
    },
    #[error("run cancelled")]
    Cancelled,
    /// Another process holds the output directory's writer lock.
    #[error(
        "output directory {path} is in use by {holder}; two writers in one directory would \
         corrupt it: wait for that process to finish or stop it (its lock is released when it \
         exits, even on kill -9)"
    )]
    Busy { path: PathBuf, holder: String },
}

impl CorpusError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CorpusError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A configuration value of a stage that makes no sense; `field` names it (e.g. `min_chars`,
/// `languages[2]`). Shared by the stage crates (filters, langid, pii, url-filter).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The offending config field.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The key and message of a TOML config error, as every config file of the workspace reports
/// it: `key` (`(top level)` when empty or `.`) and the parser's message with the line of
/// `span` (a byte range of `text`, toml's `Error::span`) appended. Each crate wraps the pair
/// in its own error type together with the file name.
pub fn toml_error_parts(
    text: &str,
    key: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> (String, String) {
    let line = span
        .map(|s| {
            format!(
                " (line {})",
                text[..s.start.min(text.len())].matches('\n').count() + 1
            )
        })
        .unwrap_or_default();
    let key = if key.is_empty() || key == "." {
        "(top level)"
    } else {
        key
    };
    (key.to_string(), format!("{}{line}", message.trim()))
}

//! # refinery-filters
//!
//! Document filters, one module per filter. Each filter has a config struct
//! (serde, every field optional, unknown fields rejected) whose `validate`
//! builds the filter or names the offending field, and documented
//! `&'static str` drop reasons of the form `<filter>:<why>`.
//!
//! | module | filter | reasons |
//! |---|---|---|
//! | [`length`] | [`LengthFilter`] | `length:too_few_chars`, `length:too_many_chars`, `length:too_few_words`, `length:too_many_words` |
//!
//! Gopher, C4 and FineWeb quality filters will join as sibling modules.
//!
//! ```
//! use refinery_corpus::{Document, Filter, Verdict};
//! use refinery_filters::{LengthConfig, REASON_TOO_FEW_WORDS};
//!
//! let mut f = LengthConfig { min_words: Some(3), ..Default::default() }.validate()?;
//! assert_eq!(f.filter(&Document::new("1", "one two three", "mem")), Verdict::Keep);
//! assert_eq!(f.filter(&Document::new("2", "one two", "mem")), Verdict::drop(REASON_TOO_FEW_WORDS));
//! # Ok::<(), refinery_filters::ConfigError>(())
//! ```

pub mod length;

pub use length::{
    LengthConfig, LengthFilter, REASON_TOO_FEW_CHARS, REASON_TOO_FEW_WORDS, REASON_TOO_MANY_CHARS,
    REASON_TOO_MANY_WORDS,
};

/// A configuration value that makes no sense; `field` names it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The offending config field, e.g. `min_chars`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

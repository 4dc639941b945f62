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
//! | [`gopher_repetition`] | [`GopherRepetitionFilter`] | `gopher_rep:dup_para_frac`, `…:dup_line_char_frac`, `…:top_2_gram`, `…:duplicated_5_n_grams`, … |
//! | [`gopher_quality`] | [`GopherQualityFilter`] | `gopher_quality:gopher_short_doc`, `…:gopher_enough_stop_words`, … |
//! | [`c4`] | [`C4Filter`] (modifier) | `c4:lorem_ipsum`, `c4:curly_bracket`, `c4:too_few_sentences`, `c4:bad_words` |
//! | [`fineweb`] | [`FineWebQualityFilter`] | `fineweb:line_punct_ratio`, `fineweb:short_line_ratio`, `fineweb:char_dup_ratio`, `fineweb:list_ratio` |
//! | [`refinedweb_lines`] | [`RefinedWebLines`] (modifier) | `refinedweb_lines:too_many_removed` |
//!
//! The Gopher, C4 and FineWeb filters reproduce datatrove's, including its
//! English word tokenizer ([`text`]); see `docs/filters.md` for the measured
//! agreement.
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

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod c4;
pub mod fineweb;
pub mod gopher_quality;
pub mod gopher_repetition;
pub mod length;
pub mod refinedweb_lines;
mod tables;
pub mod text;

pub use length::{
    LengthConfig, LengthFilter, REASON_TOO_FEW_CHARS, REASON_TOO_FEW_WORDS, REASON_TOO_MANY_CHARS,
    REASON_TOO_MANY_WORDS,
};

pub use c4::{C4Config, C4Filter};
pub use fineweb::{FineWebQualityConfig, FineWebQualityFilter};
pub use gopher_quality::{GopherQualityConfig, GopherQualityFilter};
pub use gopher_repetition::{GopherRepetitionConfig, GopherRepetitionFilter};
pub use refinedweb_lines::{RefinedWebLines, RefinedWebLinesConfig};

/// A configuration value that makes no sense; `field` names it (shared by the stage crates).
pub use refinery_corpus::ConfigError;

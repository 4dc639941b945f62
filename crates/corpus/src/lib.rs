//! # refinery-corpus
//!
//! The corpus core: the path from raw input files to refined, sharded output.
//!
//! ```text
//!  input files ──▶ readers ──▶ stages (filter │ modifier │ annotator) ──▶ writers
//!   (WARC, WET,     (Item:       each wrapped in a counting, timing         (sharded JSONL or
//!    JSONL, Parquet, Doc|Dropped  adapter that also routes drops            Parquet, zstd or gzip,
//!    HTML, text)     |Failed)     to the rejects writer)                    atomic renames)
//! ```
//!
//! The [`executor`] runs this path as N independent tasks (ranks); task `i`
//! reads input files `i, i+N, …`. Every task writes its stats and then a
//! completion marker, so a rerun skips finished work and redoes unfinished
//! work from scratch, giving byte-identical output.
//!
//! For labelled data and other column-wise uses,
//! [`readers::parquet::rows`] iterates any Parquet file as JSON objects
//! (column name → value), a row group at a time.
//!
//! ```
//! use refinery_corpus::{Document, Filter, Verdict};
//!
//! /// Drops documents shorter than a minimum number of characters.
//! struct MinChars(usize);
//! impl Filter for MinChars {
//!     fn filter(&mut self, doc: &Document) -> Verdict {
//!         if doc.text.chars().count() >= self.0 { Verdict::Keep } else { Verdict::drop("too_short") }
//!     }
//! }
//! let mut f = MinChars(5);
//! assert_eq!(f.filter(&Document::new("a", "hello world", "mem")), Verdict::Keep);
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod document;
pub mod error;
pub mod executor;
pub mod input;
pub mod lock;
pub mod readers;
pub mod stage;
pub mod stats;
pub mod summary;
pub mod writers;

pub use document::{Document, Metadata};
pub use error::{toml_error_parts, ConfigError, CorpusError, Result};
pub use readers::{Failure, Item};
pub use stage::{Annotator, Filter, Modifier, Reason, Stage, StageKind, Verdict};

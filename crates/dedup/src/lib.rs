//! # refinery-dedup
//!
//! Deduplication stages.
//!
//! * [`exact`]: [`ExactDedup`] keeps the first document of each normalized
//!   text within a task (drop reason `exact_dedup:duplicate`).
//!
//! * [`minhash`]: corpus-wide MinHash-LSH near-duplicate removal in four
//!   resumable steps (signatures → buckets → clusters → filter), run by
//!   `refinery dedup minhash`; see `docs/dedup.md`.
//!
//! * [`corpus`]: corpus-wide exact (normalized text), URL and line or
//!   paragraph dedup in three resumable steps (hash → decide → filter), run
//!   by `refinery dedup exact|urls|lines`; see `docs/dedup.md`.
//!
//! * [`job`]: the one runner of those multi-step jobs: the
//!   [`job::MultiStepJob`] trait (steps, tasks, one task, the report),
//!   `run` / `run_step` / `finish` with completion markers, `params.json`
//!   and the `--overwrite` guard, and [`job::task_docs`], a task's documents
//!   keyed by (file, index).
//!
//! Dedup across tasks needs several steps over the whole corpus: every
//! task writes its hashes, a second step merges them and decides which copy
//! survives, a third filters. [`ExactDedup`] sees one task.
//!
//! ```
//! use refinery_corpus::{Document, Filter, Verdict};
//! use refinery_dedup::{ExactDedup, ExactDedupConfig, REASON_DUPLICATE};
//!
//! let mut dedup = ExactDedup::new(ExactDedupConfig::default());
//! let doc = |id, text| Document::new(id, text, "mem");
//! assert_eq!(dedup.filter(&doc("1", "Hello, World!")), Verdict::Keep);
//! // Same text once lowercased, without punctuation, whitespace collapsed.
//! assert_eq!(dedup.filter(&doc("2", "  hello   world ")), Verdict::drop(REASON_DUPLICATE));
//! assert_eq!(dedup.filter(&doc("3", "hello there")), Verdict::Keep);
//! assert_eq!(dedup.distinct(), 2);
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod binfmt;
pub mod corpus;
pub mod exact;
mod filterstep;
mod fsutil;
pub mod job;
pub mod minhash;
pub mod substring;

pub use exact::{normalize, ExactDedup, ExactDedupConfig, HASH_KEY, REASON_DUPLICATE};

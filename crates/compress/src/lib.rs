//! Compression: make a trained model cheaper to run, measurably (`refinery quantize`,
//! `refinery prune`, `refinery compare`; docs/compress.md).
//!
//! - [`error`] — the error type, [`CompressError`].
//! - [`prune`] — one-shot unstructured magnitude pruning of a checkpoint directory.
//! - [`sparse`] — `model.sparse`, the bitmask + values storage of pruned weights.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod error;
pub mod prune;
pub mod sparse;

pub use error::CompressError;

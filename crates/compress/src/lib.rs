//! Compression: make a trained model cheaper to run, measurably (`refinery quantize`,
//! `refinery prune`, `refinery compare`; docs/compress.md).
//!
//! - [`error`]: [`CompressError`].

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod error;

pub use error::CompressError;

//! # refinery-tokenize
//!
//! The bridge from a refined corpus to model input:
//!
//! ```text
//!  documents ──▶ Tokenizer (HF tokenizer.json │ vocab.json+merges.txt │ .tiktoken)
//!  (corpus readers)     │  train::train (BPE │ WordPiece │ Unigram, HF tokenizers crate)
//!                       ▼
//!                  job::run ──▶ DIR/{task:05}_{k:05}.tok + stats.json + tokenizer copy
//!                                      │
//!                                      ▼
//!                  dataset::TokenDataset (mmap: random windows, packed sequences,
//!                                         document batches)
//! ```
//!
//! The shard format is specified in [`shard`].
//!
//! ```
//! use refinery_tokenize::shard::{ShardWriter, TokenShard};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("00000_00000.tok");
//! let mut w = ShardWriter::create(&path, 50_257, Some(50_256)).unwrap();
//! w.push_doc(&[15496, 995]).unwrap();
//! w.finish().unwrap();
//! let shard = TokenShard::open(&path).unwrap();
//! assert_eq!(shard.tokens(0..3), vec![15496, 995, 50_256]);
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod dataset;
pub mod error;
pub mod fastbpe;
pub mod job;
pub mod shard;
pub mod tiktoken;
pub mod tokenizer;
pub mod train;

pub use dataset::TokenDataset;
pub use error::{Result, TokenizeError};
pub use shard::{ShardWriter, TokenShard};
pub use tokenizer::{Tokenizer, ENGINE_HF, ENGINE_TIKTOKEN};

//! # refinery-mix
//!
//! Pile-style mixing: several sources (refined shards, JSONL, text — any
//! reader input), each with a **weight** (its share of the output, in
//! estimated tokens) or a number of **epochs** (passes over it), written as
//! one deterministic, shuffled, sharded corpus with an account of the
//! effective size of every source.
//!
//! ```text
//!  mixture.toml ──▶ config::validate ──▶ scan (pass 1: counts + selection histogram)
//!                                          │
//!                                          ▼
//!                      plan (pure: epochs per source, sample cut, buckets)
//!                                          │                    └──▶ MixStats (dry run)
//!                                          ▼
//!          write (pass 2: scatter copies into buckets by order hash;
//!                 pass 3: sort each bucket, ShardWriter) ──▶ DIR/data + DIR/mix_stats.json
//! ```
//!
//! Memory is bounded by design: pass 1 keeps a 65,536-bin histogram per
//! source, pass 3 one bucket (≈ `writer.max_shard_bytes` of JSONL) per
//! worker. The output depends only on the inputs, the mixture and the
//! seed, never on the number of workers.
//!
//! ```
//! use refinery_mix::{plan, MixConfig, scan::SourceScan};
//!
//! let toml = "
//! [[sources]]
//! name = 'a'
//! paths = ['a.jsonl']
//! weight = 3
//! [[sources]]
//! name = 'b'
//! paths = ['b.jsonl']
//! weight = 1
//! ";
//! let mix = MixConfig::from_toml(toml, "mix.toml")?.validate("mix.toml")?;
//! // Pretend source a holds 1,000 bytes in one document, and b 100 bytes.
//! let mut a = SourceScan::new(vec![]);
//! a.add_doc(0, 1000);
//! let mut b = SourceScan::new(vec![]);
//! b.add_doc(0, 100);
//! // No target and max_epochs = 1: the largest mix without repeating b.
//! let p = plan::plan(&mix, &[a, b])?;
//! assert!((p.sources[1].planned_epochs - 1.0).abs() < 1e-9);
//! assert!((p.sources[0].planned_epochs - 0.3).abs() < 1e-9);
//! # Ok::<(), refinery_mix::MixError>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod error;
pub mod plan;
pub mod scan;
pub mod stats;
pub mod write;

pub use config::{Amount, MixConfig, Mixture, Mode, Source, Target, PILE_TOKENS_PER_BYTE};
pub use error::{MixError, Result};
pub use plan::Plan;
pub use stats::{MixStats, STATS_FILE};

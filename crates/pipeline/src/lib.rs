//! # refinery-pipeline
//!
//! A pipeline is a TOML file: input paths, reader options, ordered stages
//! with their parameters, writer, executor. This crate parses it in two
//! steps — serde structs with defaults ([`PipelineConfig`]), then
//! [`PipelineConfig::validate`] into checked types ([`Pipeline`]) — and owns
//! the stage registry that turns stage configs into [`refinery_corpus::Stage`]s.
//! Named presets ship with the crate ([`presets`]).
//!
//! ```
//! use refinery_pipeline::PipelineConfig;
//!
//! let toml = r#"
//!     [input]
//!     paths = ["crawl/"]
//!     [[stages]]
//!     type = "length_filter"
//!     min_chars = 100
//!     [output]
//!     path = "out"
//! "#;
//! let cfg = PipelineConfig::from_toml(toml, "example.toml").unwrap();
//! let pipeline = cfg.validate("example.toml").unwrap();
//! assert_eq!(pipeline.stages.len(), 1);
//!
//! // Errors name the file and the key.
//! let err = PipelineConfig::from_toml("[[stages]]\ntype = \"length_filter\"\nmin_char = 3\n", "bad.toml")
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml: stages[0]"), "{err}");
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
pub mod dedup;
pub mod presets;
mod registry;

pub use config::{
    ConfigError, ExecutorConfig, InputConfig, OutputConfig, Pipeline, PipelineConfig, StageConfig,
};

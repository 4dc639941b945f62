//! # refinery-ablate
//!
//! `refinery ablate experiment.toml`: did a filter make the data better? The FineWeb method
//! in miniature. An experiment file ([`config`]) names a base pipeline and variants of it
//! (drop a stage, change a key, add a dedup step); for each variant this crate
//!
//! 1. refines the input with the pipeline executor and its dedup chain
//!    (`OUT/variants/NAME/refined/`),
//! 2. tokenizes it with one byte-level BPE tokenizer, trained once on the base variant's output
//!    (`OUT/tokenizer/`),
//! 3. checks every eval set's overlap with the training text (exact word 13-grams, [`overlap`]),
//! 4. trains the model preset once per seed to the same number of tokens
//!    (`OUT/variants/NAME/seed-S/`; a corpus smaller than the budget is repeated),
//! 5. evaluates bits per byte on every eval set ([`bpb`]),
//!
//! and summarizes mean ± std over seeds, the difference from the base and whether it exceeds
//! two standard errors ([`stats`]) in `OUT/ablation.json` (the schema is
//! [`refinery_report::ablation::Ablation`], which also renders it in `refinery report OUT`).
//!
//! Every step is skipped when its output is complete (and the corpus and training jobs resume
//! inside a step), so a killed ablation continues where it stopped: [`run::run`].

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bpb;
pub mod config;
pub mod overlap;
pub mod run;
pub mod stats;

use std::path::PathBuf;

pub use config::{CheckedExperiment, ExperimentConfig};
pub use refinery_pipeline::ConfigError;
pub use refinery_report::ablation::Ablation;

/// Errors of an ablation; each names the step, file or key it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AblateError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A step failed: which one, and why.
    #[error("{step}: {message}")]
    Step { step: String, message: String },
    #[error(transparent)]
    Corpus(#[from] refinery_corpus::CorpusError),
    #[error(transparent)]
    Tokenize(#[from] refinery_tokenize::TokenizeError),
    #[error(transparent)]
    Train(#[from] refinery_train::TrainError),
    #[error(transparent)]
    Model(#[from] refinery_model::ModelError),
}

impl AblateError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AblateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn step(step: impl Into<String>, message: impl std::fmt::Display) -> Self {
        AblateError::Step {
            step: step.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = AblateError> = std::result::Result<T, E>;

//! Training for `refinery-model`: pretraining objectives, fine-tuning tasks and one
//! resumable trainer.
//!
//! - [`tasks`]: a task is a serde **spec** (saved, compared on resume) plus a **runtime**
//!   built from it; its forward returns model [`tasks::Outputs`] kept apart from the loss.
//!   Kinds: `gpt-clm`, `bert-mlm-nsp`, `bart-dae`, `plm`, `classify`, `multitask`, `cloze`.
//! - [`objectives`]: CLM, MLM (15%, 80/10/10), NSP, denoising (BART/T5), permutation LM,
//!   classification losses and metrics; the one ignore index ([`objectives::IGNORE`], -100).
//! - [`data`]: batch sources with a resumable position ([`data::BatchSource`]): token shards,
//!   NSP pairs, labelled examples (TSV/CSV/JSONL) for classification.
//! - [`trainer`]: AdamW with no-decay groups, gradient accumulation, global-norm clipping
//!   ([`clip`]), frozen parameters and layer-wise learning rates, mixed precision
//!   ([`precision`]), checkpoints that resume exactly.
//! - [`run`]: the run loop (eval/checkpoint every N steps, epochs, best checkpoint, early
//!   stopping, automatic resume); [`metrics`]: the JSONL log; [`eval`]: evaluation.
//! - [`config`]: `train.toml` (`[task] kind = ...`, `[model]`, `[data]`, `[optim]`, `[run]`),
//!   presets, validation, and [`config::train`] which runs any task kind.
//! - [`prune`]: magnitude pruning's selection rules (shared with one-shot pruning in
//!   `refinery-compress`) and gradual pruning during training (`[prune]`, cubic schedule).
//! - [`schedule`]: warmup + cosine/linear decay; [`rng`]: stateless randomness.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod alloc;
pub mod clip;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod objectives;
pub mod precision;
pub mod prompt;
pub mod prune;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod tasks;
pub mod trainer;

pub use error::TrainError;
pub use eval::EvalReport;
pub use run::{run, Observer, RunOptions, RunSummary, StepRecord};
pub use tasks::{
    AnyTaskSpec, BartDaeSpec, BartDaeTask, BertMlmNspSpec, BertMlmNspTask, ClassifySpec,
    ClassifyTask, DaeNoise, GptClmSpec, GptClmTask, Loss, Outputs, PlmSpec, PlmTask, Task,
    TaskSpec,
};
pub use trainer::{StepStats, TrainConfig, Trainer};

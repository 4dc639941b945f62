//! Knowledge distillation: a frozen teacher trains a smaller student, as a wrapper around any
//! task the trainer knows (`refinery distill`, docs/distill.md).
//!
//! - [`spec`]: [`DistillSpec`] — the student's task spec, the teacher's spec, directory and
//!   weight hash (resume stays exact), the loss set — and the pairing checks (tokenizers,
//!   labels, layer maps, sparse patterns, cache vs. losses), whose errors name both models.
//! - [`task`]: [`DistillTask`], its runtime: student task + teacher task + frozen teacher on
//!   the inner (non-autodiff) device; a [`refinery_train::Task`] like any other.
//! - [`model`]: [`DistillModel`], the student plus the learned projections `W_h`, `W_e`
//!   (saved in checkpoints, dropped from `best/` and `final/`).
//! - [`losses`]: soft labels (`α·CE + (1 − α)·T²·KL`, top-k), attention (MSE, log-MSE, KL),
//!   hidden-state and embedding MSE or cosine — plain tensor functions.
//! - [`layers`]: layer maps (uniform, last-k, explicit) and default init layers.
//! - [`kinds`]: what the wrapper needs of a task kind ([`Distillable`]): `classify`, `gpt-clm`.
//! - [`cache`]: the teacher logits cache file (magic, version, shapes, teacher hash; mmap).
//! - [`config`]: `distill.toml`, presets; [`run`]: student init, progressive stages, the
//!   teacher-assistant chain; [`report`]: the teacher/student table.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cache;
pub mod config;
pub mod error;
pub mod kinds;
pub mod layers;
pub mod losses;
pub mod model;
pub mod report;
pub mod run;
pub mod spec;
pub mod task;
pub mod teacher;

pub use config::DistillFile;
pub use error::DistillError;
pub use kinds::Distillable;
pub use model::DistillModel;
pub use run::{distill, DistillSummary};
pub use spec::{DistillSpec, LossSpec};
pub use task::DistillTask;

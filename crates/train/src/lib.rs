//! Pretraining for `refinery-model`: objectives, learning-rate schedule, global-norm gradient
//! clipping and a resumable trainer.
//!
//! - [`objectives`]: CLM loss; MLM masking (15%, 80/10/10) and loss; NSP loss.
//! - [`schedule`]: warmup + cosine/linear decay.
//! - [`clip`]: global-norm clipping (PyTorch `clip_grad_norm_`; burn's own clips per tensor).
//! - [`trainer`]: AdamW with no-decay groups, gradient accumulation, checkpoints that resume
//!   exactly (weights as HF safetensors + config.json, optimizer state, step, data position).
//! - [`data`]: batch sources with a resumable position.

pub mod clip;
pub mod data;
pub mod error;
pub mod objectives;
pub mod schedule;
pub mod trainer;

pub use error::TrainError;
pub use trainer::{StepStats, TrainConfig, Trainer};

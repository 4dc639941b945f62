//! Pretraining for `refinery-model`: objectives, learning-rate schedule, global-norm gradient
//! clipping and a resumable trainer.
//!
//! - [`objectives`]: CLM loss; MLM masking (15%, 80/10/10) and loss; NSP loss.
//! - [`plm`]: XLNet permutation LM: factorisation orders, partial prediction (1/K), loss.
//! - [`schedule`]: warmup + cosine/linear decay.
//! - [`clip`]: global-norm clipping (PyTorch `clip_grad_norm_`; burn's own clips per tensor).
//! - [`trainer`]: AdamW with no-decay groups, gradient accumulation, checkpoints that resume
//!   exactly (weights as HF safetensors + config.json, optimizer state, step, data position).
//! - [`task`]: the model + objective trait the trainer is generic over (GPT CLM, BERT MLM+NSP);
//!   [`task_dae`]: BART denoising (text infilling / span corruption) as a task; [`task_plm`]:
//!   XLNet-style permutation LM as a task.
//! - [`eval`]: loss, perplexity, MLM/NSP accuracy.
//! - [`run`]: the run loop (eval/checkpoint every N steps, automatic resume); [`metrics`]: the
//!   JSONL log.
//! - [`data`]: batch sources with a resumable position.
//! - [`dae`]: BART text infilling, T5 span corruption, seq2seq collation and loss.
//! - [`precision`]: mixed precision (bf16/f16 compute, f32 master weights).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod alloc;
pub mod clip;
pub mod config;
pub mod dae;
pub mod data;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod objectives;
pub mod plm;
pub mod precision;
pub mod run;
pub mod schedule;
pub mod task;
pub mod task_dae;
pub mod task_plm;
pub mod trainer;

pub use error::TrainError;
pub use eval::EvalReport;
pub use run::{run, Observer, RunOptions, RunSummary, StepRecord};
pub use task::{BertPretrainingTask, ClmTask, Task};
pub use task_dae::{DaeNoise, DaeTask};
pub use task_plm::PlmTask;
pub use trainer::{StepStats, TrainConfig, Trainer};

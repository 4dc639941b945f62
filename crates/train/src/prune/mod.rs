//! Magnitude pruning: the selection rules shared with one-shot pruning (`refinery prune`,
//! in `refinery_compress::prune`) and gradual pruning during training (Zhu & Gupta 2017).
//!
//! - [`select`]: which tensors, how many weights, ties ([`tensor_role`], [`grow_masks`],
//!   [`magnitude_prune`]).
//! - [`schedule`]: the cubic sparsity schedule and `train.toml`'s `[prune]` section.
//! - [`task`]: [`PrunedTask`], a wrapper that trains any task with masks kept through
//!   training (the trainer's [`Task::end_step`](crate::Task::end_step) hook).
//!
//! The pruning report (`pruning.json`, `refinery_pruning` in `config.json`) of the exported
//! models is written by `refinery_compress::prune`, as for one-shot pruning.

pub mod schedule;
pub mod select;
pub mod task;

use burn::tensor::Device;

pub use schedule::{GradualPruning, PruneSection, ResolvedSchedule, RunPoint};
pub use select::{
    apply_mask, grow_masks, magnitude_prune, tensor_role, Scope, Sparsity, TensorRole,
};
pub use task::{PrunedSpec, PrunedTask, KIND, MASKS_FILE};

use crate::config::{run_spec, Sizing};
use crate::data::DataConfig;
use crate::error::TrainError;
use crate::run::{Observer, RunOptions, RunSummary};
use crate::tasks::AnyTaskSpec;
use crate::trainer::TrainConfig;

/// Trains `task` with gradual pruning ([`run_spec`] of a [`PrunedSpec`]). Every task kind
/// whose model has an HF weight map can be pruned; `plm` cannot.
#[allow(clippy::too_many_arguments)]
pub fn run_pruned(
    task: AnyTaskSpec,
    pruning: GradualPruning,
    train: TrainConfig,
    run: RunOptions,
    sizing: Sizing,
    data: &DataConfig,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    macro_rules! go {
        ($s:expr) => {
            run_spec(
                PrunedSpec::new($s, pruning),
                train,
                run,
                sizing,
                data,
                device,
                observer,
            )
        };
    }
    match task {
        AnyTaskSpec::Classify(s) => go!(s),
        AnyTaskSpec::Cloze(s) => go!(s),
        AnyTaskSpec::MultiTask(s) => go!(s),
        AnyTaskSpec::GptClm(s) => go!(s),
        AnyTaskSpec::BertMlmNsp(s) => go!(s),
        AnyTaskSpec::BartDae(s) => go!(s),
        AnyTaskSpec::Plm(_) => Err(TrainError::InvalidConfig(
            "[prune]: a plm model has no HF weight map to prune by".into(),
        )),
    }
}

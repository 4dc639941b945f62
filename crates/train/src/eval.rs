//! Evaluation: mean loss, perplexity and the task's accuracies over a fixed set of batches.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::metrics::MetricSums;
use crate::task::Task;
use crate::trainer::batch_seed;

/// What an evaluation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The task's loss (what training minimises), averaged over batches.
    pub loss: f64,
    /// `exp` of the per-token LM loss ([`Task::LM_METRIC`]: CLM targets or masked tokens),
    /// averaged over tokens, not batches.
    pub perplexity: f64,
    /// Every metric's mean (`lm_loss`, `lm_accuracy`; `mlm_loss`, `mlm_accuracy`, `nsp_loss`,
    /// `nsp_accuracy`).
    pub metrics: BTreeMap<String, f64>,
    /// Batches and real tokens evaluated.
    pub batches: usize,
    pub tokens: usize,
}

/// Evaluates `model` (already in validation mode, on `device`) on `batches` batches of
/// `data` from position 0. Objectives that mask draw their masks from `(seed, position)`, so
/// every evaluation of a run sees the same masked inputs.
pub fn evaluate<T: Task>(
    task: &T,
    model: &T::Model,
    data: &mut T::Source,
    batches: usize,
    seed: u64,
    device: &Device,
) -> EvalReport {
    T::seek(data, 0);
    let mut sums = MetricSums::default();
    let mut tokens = 0;
    for _ in 0..batches {
        let position = T::position(data);
        let batch = T::next_batch(data);
        tokens += T::num_tokens(&batch);
        let out = task.forward(model, &batch, batch_seed(seed, position), device, true);
        sums.add("loss", f64::from(out.loss.into_scalar::<f32>()), 1.0);
        if let Some(m) = out.metrics {
            sums.merge(&m);
        }
    }
    let metrics = sums.means();
    EvalReport {
        loss: metrics.get("loss").copied().unwrap_or(f64::NAN),
        perplexity: metrics.get(T::LM_METRIC).map_or(f64::NAN, |l| l.exp()),
        metrics,
        batches,
        tokens,
    }
}

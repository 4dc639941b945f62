//! Evaluation: mean loss, perplexity and the task's metrics over a fixed set of batches.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::BatchSource;
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::rng::batch_seed;
use crate::tasks::{OutputOptions, Outputs, Task};

/// What an evaluation reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The task's loss (what training minimises), averaged over batches.
    pub loss: f64,
    /// `exp` of the per-token LM loss ([`Task::perplexity_metric`]: CLM targets or masked
    /// tokens), averaged over tokens, not batches; NaN for tasks without one (classifiers).
    /// JSON has no NaN: it is written as `null` and read back as NaN.
    #[serde(deserialize_with = "null_as_nan")]
    pub perplexity: f64,
    /// Every metric ([`Task::summarize`]: `lm_loss`, `lm_accuracy`; `mlm_*`, `nsp_*`;
    /// `accuracy`, `macro_f1`, `mcc`, ...); NaN values as for `perplexity`.
    #[serde(deserialize_with = "nulls_as_nan")]
    pub metrics: BTreeMap<String, f64>,
    /// Task-specific details ([`Task::details`], e.g. a confusion matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Batches and real tokens evaluated.
    pub batches: usize,
    pub tokens: usize,
}

fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nulls_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let m = BTreeMap::<String, Option<f64>>::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// Evaluates `model` (already in validation mode, on `device`) on `batches` batches of
/// `data` from position 0. Objectives that mask draw their masks from `(seed, position)`, so
/// every evaluation of a run sees the same masked inputs.
pub fn evaluate<T: Task>(
    task: &T,
    model: &T::Model,
    data: &mut dyn BatchSource<T::Batch>,
    batches: usize,
    seed: u64,
    device: &Device,
) -> Result<EvalReport, TrainError> {
    let mut forward =
        |input: &T::Input| task.forward(model, input, device, OutputOptions::default());
    evaluate_with(task, &mut forward, data, batches, seed, device)
}

/// [`evaluate`] with another runtime's forward pass (e.g. the int8 engine of
/// `refinery-compress`): the same batches, loss and metrics, only the outputs differ.
pub fn evaluate_with<T: Task, E: From<TrainError>>(
    task: &T,
    forward: &mut dyn FnMut(&T::Input) -> Result<Outputs, E>,
    data: &mut dyn BatchSource<T::Batch>,
    batches: usize,
    seed: u64,
    device: &Device,
) -> Result<EvalReport, E> {
    data.seek(0);
    let mut sums = MetricSums::default();
    let mut tokens = 0;
    for _ in 0..batches {
        let position = data.position();
        let input = task.prepare(data.next_batch(), batch_seed(seed, position))?;
        tokens += task.num_tokens(&input);
        let outputs = forward(&input)?;
        let out = task.loss(&input, &outputs, device, true)?;
        sums.add("loss", f64::from(out.loss.into_scalar::<f32>()), 1.0);
        if let Some(m) = out.metrics {
            sums.merge(&m);
        }
    }
    let mut metrics = task.summarize(&sums);
    let loss = sums.mean("loss").unwrap_or(f64::NAN);
    metrics.insert("loss".into(), loss);
    Ok(EvalReport {
        loss,
        perplexity: task
            .perplexity_metric()
            .and_then(|m| sums.mean(m))
            .map_or(f64::NAN, f64::exp),
        metrics,
        details: task.details(&sums),
        batches,
        tokens,
    })
}

//! A classifier checkpoint run by the engine: the task's tokenizer and fields, the engine's
//! forward. `refinery classify` and `refinery evaluate` use it for quantized checkpoints, with
//! the same encoding, batching and metrics as for f32 ones.

use std::collections::BTreeMap;
use std::path::Path;

use refinery_train::data::labelled::{ClassBatch, Encoded};
use refinery_train::data::{DataConfig, DataSplit};
use refinery_train::metrics::MetricSums;
use refinery_train::objectives::classify::{add_confusion, Confusion};
use refinery_train::tasks::classify::pad_id;
use refinery_train::{ClassifySpec, ClassifyTask, EvalReport, TaskSpec};

use crate::bert::{Batch, Engine};
use crate::error::CompressError;
use crate::kernels::KernelPath;
use crate::ops;

/// A classifier directory opened for the engine.
pub struct EngineClassifier {
    pub engine: Engine,
    pub task: ClassifyTask,
}

/// The engine's view of a padded batch.
pub fn batch_of(b: &ClassBatch) -> Batch<'_> {
    Batch {
        batch_size: b.batch_size,
        seq_len: b.seq_len,
        input_ids: &b.input_ids,
        token_type_ids: &b.token_type_ids,
        attention_mask: &b.attention_mask,
    }
}

/// Softmax of each `c`-wide row.
fn softmax_rows(logits: &[f32], c: usize) -> Vec<Vec<f32>> {
    logits
        .chunks_exact(c)
        .map(|row| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
            let z: f32 = e.iter().sum();
            e.iter().map(|v| v / z).collect()
        })
        .collect()
}

impl EngineClassifier {
    /// Opens `dir` (its task spec `spec`) with the best kernel path for this CPU (or
    /// `REFINERY_INT8_KERNEL`).
    pub fn open(dir: &Path, spec: &ClassifySpec) -> Result<Self, CompressError> {
        let task = spec.build(Some(dir))?;
        let engine = Engine::load(dir, KernelPath::from_env()?)?;
        if engine.labels != spec.labels {
            return Err(CompressError::checkpoint(
                &dir.join("config.json"),
                format!(
                    "labels {:?} differ from task.json's {:?}",
                    engine.labels, spec.labels
                ),
            ));
        }
        Ok(EngineClassifier { engine, task })
    }

    /// Encodes rows (sorted by length inside, as [`ClassifyTask::predict`]) and runs `f` on
    /// each padded batch with the original indices of its rows.
    fn batches(
        &self,
        rows: &[Encoded],
        batch_size: usize,
        sort: bool,
        mut f: impl FnMut(&[usize], &ClassBatch, Vec<f32>) -> Result<(), CompressError>,
    ) -> Result<(), CompressError> {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if sort {
            order.sort_by_key(|&i| rows[i].ids.len());
        }
        let pad = pad_id(&self.task.spec.model, &self.task.encoder);
        for chunk in order.chunks(batch_size.max(1)) {
            let batch_rows: Vec<&Encoded> = chunk.iter().map(|&i| &rows[i]).collect();
            let b = ClassBatch::pad(&batch_rows, pad, 0);
            let logits = self.engine.logits(&batch_of(&b))?; // [B, C]
            f(chunk, &b, logits)?;
        }
        Ok(())
    }

    /// Class probabilities of `(text, pair)` rows, in input order.
    pub fn predict(
        &self,
        texts: &[(String, Option<String>)],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>, CompressError> {
        let rows = texts
            .iter()
            .map(|(t, p)| self.task.encoder.encode(t, p.as_deref(), -100))
            .collect::<Result<Vec<_>, _>>()?;
        let c = self.engine.labels.len();
        let mut out = vec![Vec::new(); rows.len()];
        self.batches(&rows, batch_size, true, |idx, _, logits| {
            for (k, p) in softmax_rows(&logits, c).into_iter().enumerate() {
                out[idx[k]] = p;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Accuracy, macro-F1, MCC, per-class scores, the confusion matrix and the mean
    /// cross-entropy on `split` of `data` (batches in file order, as `evaluate` does for f32).
    pub fn evaluate(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<EvalReport, CompressError> {
        let (rows, _) = self.task.encode_split(data, split)?;
        let c = self.engine.labels.len();
        let mut sums = MetricSums::default();
        let (mut loss_sum, mut n, mut batches, mut tokens) = (0f64, 0usize, 0usize, 0usize);
        self.batches(&rows, data.batch_size, false, |_, b, logits| {
            let probs = softmax_rows(&logits, c);
            let mut pred = Vec::with_capacity(b.labels.len());
            for (p, &gold) in probs.iter().zip(&b.labels) {
                let best = ops::argmax(p);
                pred.push(best as i64);
                let g = usize::try_from(gold)
                    .ok()
                    .filter(|&g| g < c)
                    .ok_or_else(|| {
                        CompressError::Invalid(format!(
                            "label id {gold} outside the model's {c} labels"
                        ))
                    })?;
                loss_sum -= f64::from(p[g].max(f32::MIN_POSITIVE).ln());
                n += 1;
            }
            add_confusion(&mut sums, &b.labels, &pred);
            batches += 1;
            tokens += b.attention_mask.iter().filter(|&&m| m != 0).count();
            Ok(())
        })?;
        let confusion = Confusion::from_sums(&sums, &self.engine.labels);
        let metrics: BTreeMap<String, f64> = confusion.metrics();
        Ok(EvalReport {
            loss: if n > 0 { loss_sum / n as f64 } else { f64::NAN },
            perplexity: f64::NAN,
            metrics,
            details: serde_json::to_value(&confusion).ok(),
            batches,
            tokens,
        })
    }
}

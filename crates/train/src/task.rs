//! What the generic [`Trainer`](crate::Trainer) trains: a model plus an objective.
//!
//! A [`Task`] says how to build, save and load its model (an HF checkpoint directory), where
//! its batches come from, and how to turn one micro-batch into a loss (plus, for evaluation,
//! metric sums). Everything else — optimizer groups, schedule, accumulation, clipping,
//! checkpoints, exact resume, evaluation, the run loop — is shared.
//!
//! Two tasks ship:
//!
//! | task | model | source | loss | eval metrics |
//! |---|---|---|---|---|
//! | [`ClmTask`] (`"gpt-clm"`) | `Gpt` | [`TokenBatches`] | CLM | `lm_loss` (per token), `lm_accuracy` (next token) |
//! | [`BertPretrainingTask`] (`"bert-mlm-nsp"`) | `BertForPreTraining` | [`PairBatches`] | MLM + NSP | `mlm_loss`, `mlm_accuracy` (masked tokens), `nsp_loss`, `nsp_accuracy` |
//!
//! Adding an objective (BART denoising, XLNet-style permutation LM, ...) is one `impl Task`:
//! a serde struct holding the model config and the objective's settings, its model type, its
//! batch source, `init/load/save` through `refinery_model::hf`, and `forward` calling the
//! objective's loss function. Parameter ids for the optimizer state are handled generically
//! (by module path), so nothing model-specific is needed for exact resume.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf::{load_bert, load_gpt, save_bert, save_gpt};
use refinery_model::{BertConfig, BertForPreTraining, Gpt, GptConfig, OutputOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::{LmBatch, PairBatch, PairBatches, TokenBatches};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::{clm_loss, mlm_loss, nsp_loss, MlmMasking, IGNORE};

/// The loss of one micro-batch and, when asked for, what evaluation accumulates.
pub struct TaskOutput {
    /// Scalar `[1]`, differentiable on an autodiff device: what the trainer backpropagates.
    pub loss: Tensor<1>,
    /// Metric sums (`None` unless `metrics` was requested).
    pub metrics: Option<MetricSums>,
}

/// A model + objective the generic trainer can train. The struct itself (serde) is saved in
/// `trainer_state.json`, so it holds everything needed to rebuild the task on resume.
pub trait Task: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The burn module.
    type Model: Module;
    /// Where batches come from (usually a `dyn` trait object).
    type Source: ?Sized;
    /// One host-side micro-batch.
    type Batch;

    /// Stable name, saved in `trainer_state.json` and checked on resume.
    const NAME: &'static str;
    /// The metric whose mean is a per-token LM loss: perplexity is `exp` of it.
    const LM_METRIC: &'static str;

    fn next_batch(source: &mut Self::Source) -> Self::Batch;
    fn position(source: &Self::Source) -> u64;
    fn seek(source: &mut Self::Source, position: u64);
    /// Real (unpadded) tokens in a batch, for tokens/s.
    fn num_tokens(batch: &Self::Batch) -> usize;

    /// A freshly initialised model (the caller seeds the device RNG).
    fn init_model(&self, device: &Device) -> Result<Self::Model, TrainError>;
    /// Writes the model as an HF checkpoint directory (`config.json` + `model.safetensors`).
    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError>;
    /// Reads a checkpoint written by [`Task::save_model`].
    fn load_model(&self, dir: &Path, device: &Device) -> Result<Self::Model, TrainError>;

    /// Loss for one micro-batch. `seed` is a pure function of (run seed, batch position), for
    /// objectives that draw random masks; `metrics` asks for evaluation sums as well.
    fn forward(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
        seed: u64,
        device: &Device,
        metrics: bool,
    ) -> TaskOutput;
}

/// Host values of an int tensor.
fn int_values(t: Tensor<2, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

fn int_tensor<const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// GPT-2 with causal language modelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClmTask {
    pub model: GptConfig,
}

impl ClmTask {
    pub fn new(model: GptConfig) -> Self {
        Self { model }
    }
}

impl Task for ClmTask {
    type Model = Gpt;
    type Source = dyn TokenBatches;
    type Batch = LmBatch;
    const NAME: &'static str = "gpt-clm";
    const LM_METRIC: &'static str = "lm_loss";

    fn next_batch(source: &mut Self::Source) -> LmBatch {
        source.next_batch()
    }
    fn position(source: &Self::Source) -> u64 {
        source.position()
    }
    fn seek(source: &mut Self::Source, position: u64) {
        source.seek(position)
    }
    fn num_tokens(batch: &LmBatch) -> usize {
        batch.num_tokens()
    }

    fn init_model(&self, device: &Device) -> Result<Gpt, TrainError> {
        Ok(self.model.init(device)?)
    }
    fn save_model(&self, model: &Gpt, dir: &Path) -> Result<(), TrainError> {
        Ok(save_gpt(model, &self.model, dir)?)
    }
    fn load_model(&self, dir: &Path, device: &Device) -> Result<Gpt, TrainError> {
        let (config, model) = load_gpt(dir, device)?;
        check_same_config(dir, &config, &self.model)?;
        Ok(model)
    }

    fn forward(
        &self,
        model: &Gpt,
        batch: &LmBatch,
        _seed: u64,
        device: &Device,
        metrics: bool,
    ) -> TaskOutput {
        let ids = batch.tokens(device); // [B, T]
        let mask = batch.mask(device); // [B, T]
        let logits = model
            .forward_with(ids.clone(), mask.clone(), OutputOptions::default())
            .logits; // [B, T, V]
        let predicted = metrics.then(|| {
            let [b, t, _] = logits.dims();
            int_values(logits.clone().argmax(2).reshape([b, t])) // [B, T]
        });
        let loss = clm_loss(logits, ids, mask); // [1]
        let metrics = predicted.map(|pred| {
            // Targets: position i predicts token i + 1 of the same row, if it is not padding.
            let (b, t) = (batch.batch_size, batch.seq_len);
            let mut targets = 0usize;
            let mut correct = 0usize;
            for row in 0..b {
                for i in 0..t.saturating_sub(1) {
                    let next = row * t + i + 1;
                    let real = batch.attention_mask.as_ref().is_none_or(|m| m[next] != 0);
                    if real {
                        targets += 1;
                        correct += usize::from(pred[row * t + i] == batch.input_ids[next]);
                    }
                }
            }
            let mean = f64::from(loss.clone().into_scalar::<f32>());
            let mut m = MetricSums::default();
            m.add("lm_loss", mean * targets as f64, targets as f64);
            m.add("lm_accuracy", correct as f64, targets as f64);
            m
        });
        TaskOutput { loss, metrics }
    }
}

pub(crate) fn check_same_config<C: PartialEq + Serialize>(
    dir: &Path,
    found: &C,
    expected: &C,
) -> Result<(), TrainError> {
    if found == expected {
        return Ok(());
    }
    let show = |c: &C| serde_json::to_string(c).unwrap_or_default();
    Err(TrainError::InvalidConfig(format!(
        "{}: config.json ({}) differs from the trainer state's model config ({})",
        dir.display(),
        show(found),
        show(expected)
    )))
}

fn default_select_prob() -> f64 {
    0.15
}
fn default_true() -> bool {
    true
}

/// BERT pretraining: masked LM (15%, 80/10/10) + next-sentence prediction on
/// `[CLS] A [SEP] B [SEP]` pairs. The loss is `mlm + nsp` (HF `BertForPreTraining`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertPretrainingTask {
    pub model: BertConfig,
    /// `[MASK]` id.
    pub mask_token_id: i64,
    /// Ids never selected for masking (`[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`, ...).
    pub special_token_ids: Vec<i64>,
    /// Share of the non-special tokens selected (BERT: 0.15).
    #[serde(default = "default_select_prob")]
    pub mlm_probability: f64,
    /// Add the NSP loss (RoBERTa-style MLM only when false).
    #[serde(default = "default_true")]
    pub nsp: bool,
}

impl BertPretrainingTask {
    pub fn new(model: BertConfig, mask_token_id: i64, special_token_ids: Vec<i64>) -> Self {
        Self {
            model,
            mask_token_id,
            special_token_ids,
            mlm_probability: default_select_prob(),
            nsp: true,
        }
    }

    /// The masking this task applies.
    pub fn masking(&self) -> MlmMasking {
        let mut m = MlmMasking::bert(
            self.mask_token_id,
            self.model.vocab_size,
            self.special_token_ids.clone(),
        );
        m.select_prob = self.mlm_probability;
        m
    }
}

impl Task for BertPretrainingTask {
    type Model = BertForPreTraining;
    type Source = dyn PairBatches;
    type Batch = PairBatch;
    const NAME: &'static str = "bert-mlm-nsp";
    const LM_METRIC: &'static str = "mlm_loss";

    fn next_batch(source: &mut Self::Source) -> PairBatch {
        source.next_pairs()
    }
    fn position(source: &Self::Source) -> u64 {
        source.position()
    }
    fn seek(source: &mut Self::Source, position: u64) {
        source.seek(position)
    }
    fn num_tokens(batch: &PairBatch) -> usize {
        batch.attention_mask.iter().filter(|&&m| m != 0).count()
    }

    fn init_model(&self, device: &Device) -> Result<BertForPreTraining, TrainError> {
        Ok(self.model.init(device)?)
    }
    fn save_model(&self, model: &BertForPreTraining, dir: &Path) -> Result<(), TrainError> {
        Ok(save_bert(model, &self.model, dir)?)
    }
    fn load_model(&self, dir: &Path, device: &Device) -> Result<BertForPreTraining, TrainError> {
        let (config, model) = load_bert(dir, device)?;
        check_same_config(dir, &config, &self.model)?;
        Ok(model)
    }

    fn forward(
        &self,
        model: &BertForPreTraining,
        batch: &PairBatch,
        seed: u64,
        device: &Device,
        metrics: bool,
    ) -> TaskOutput {
        let shape = [batch.batch_size, batch.seq_len];
        let (inputs, labels) = self.masking().apply(&batch.input_ids, seed);
        let ids = int_tensor(inputs, shape, device); // [B, T]
        let types = int_tensor(batch.token_type_ids.clone(), shape, device); // [B, T]
        let mask = int_tensor(batch.attention_mask.clone(), shape, device); // [B, T]
        let out = model
            .bert
            .forward(ids, Some(types), Some(mask), OutputOptions::default());
        let mlm_logits = model.mlm_logits(out.last_hidden_state); // [B, T, V]
        let mlm_pred = metrics.then(|| {
            int_values(mlm_logits.clone().argmax(2).reshape(shape)) // [B, T]
        });
        let mlm = mlm_loss(mlm_logits, int_tensor(labels.clone(), shape, device)); // [1]
        let mut loss = mlm.clone();
        let mut nsp_parts = None;
        if self.nsp {
            let b = batch.batch_size;
            let nsp_logits = model.nsp_logits(out.pooled); // [B, 2]
            let nsp_pred = metrics.then(|| int_values(nsp_logits.clone().argmax(1))); // [B, 1]
            let y = int_tensor(batch.is_random_next.clone(), [b], device); // [B]
            let nsp = nsp_loss(nsp_logits, y); // [1]
            loss = loss + nsp.clone();
            nsp_parts = nsp_pred.map(|p| (nsp, p));
        }
        let metrics = mlm_pred.map(|pred| {
            let mut m = MetricSums::default();
            let selected: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] != IGNORE).collect();
            let n = selected.len() as f64;
            let correct = selected.iter().filter(|&&i| pred[i] == labels[i]).count();
            m.add("mlm_loss", f64::from(mlm.into_scalar::<f32>()) * n, n);
            m.add("mlm_accuracy", correct as f64, n);
            if let Some((nsp, pred)) = nsp_parts {
                let b = batch.batch_size as f64;
                let correct = (0..batch.batch_size)
                    .filter(|&i| pred[i] == batch.is_random_next[i])
                    .count();
                m.add("nsp_loss", f64::from(nsp.into_scalar::<f32>()) * b, b);
                m.add("nsp_accuracy", correct as f64, b);
            }
            m
        });
        TaskOutput { loss, metrics }
    }
}

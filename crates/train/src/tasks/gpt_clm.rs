//! `gpt-clm`: GPT-2 causal language modelling on token rows.
//!
//! Metrics: `lm_loss` (per target token), `lm_accuracy` (next-token argmax); perplexity is
//! `exp(lm_loss)`.

use std::path::Path;

use burn::tensor::Device;
use refinery_model::hf::{load_gpt, save_gpt};
use refinery_model::{Gpt, GptConfig, OutputOptions};
use serde::{Deserialize, Serialize};

use super::{check_same_config, Loss, Outputs, Task, TaskSpec};
use crate::data::{lm_batches, BatchSource, DataConfig, DataSplit, LmBatch};
use crate::error::TrainError;
use crate::objectives::clm_loss;

/// GPT-2 with causal language modelling: the spec is the model config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptClmSpec {
    pub model: GptConfig,
}

impl GptClmSpec {
    pub fn new(model: GptConfig) -> Self {
        Self { model }
    }
}

impl TaskSpec for GptClmSpec {
    const KIND: &'static str = "gpt-clm";
    type Task = GptClmTask;

    fn build(&self, _checkpoint: Option<&Path>) -> Result<GptClmTask, TrainError> {
        self.model.validate()?;
        Ok(GptClmTask { spec: self.clone() })
    }
}

/// The runtime of [`GptClmSpec`] (nothing beyond the spec).
#[derive(Debug, Clone, PartialEq)]
pub struct GptClmTask {
    pub spec: GptClmSpec,
}

impl GptClmTask {
    /// A runtime for `model` (the spec is checked).
    pub fn new(model: GptConfig) -> Result<Self, TrainError> {
        GptClmSpec::new(model).build(None)
    }
}

impl Task for GptClmTask {
    type Spec = GptClmSpec;
    type Model = Gpt;
    type Batch = LmBatch;
    type Input = LmBatch;

    fn spec(&self) -> &GptClmSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<Gpt, TrainError> {
        Ok(self.spec.model.init(device)?)
    }
    fn save_model(&self, model: &Gpt, dir: &Path) -> Result<(), TrainError> {
        Ok(save_gpt(model, &self.spec.model, dir)?)
    }
    fn load_model(&self, dir: &Path, device: &Device) -> Result<Gpt, TrainError> {
        let (config, model) = load_gpt(dir, device)?;
        check_same_config(dir, &config, &self.spec.model)?;
        Ok(model)
    }

    fn prepare(&self, batch: LmBatch, _seed: u64) -> Result<LmBatch, TrainError> {
        Ok(batch)
    }
    fn num_tokens(&self, batch: &LmBatch) -> usize {
        batch.num_tokens()
    }

    fn forward(
        &self,
        model: &Gpt,
        batch: &LmBatch,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let out = model.forward_with(batch.tokens(device), batch.mask(device), opts);
        Ok(Outputs {
            logits: out.logits, // [B, T, V]
            aux: Vec::new(),
            hidden_states: out.hidden_states,
            attentions: out.attentions,
        })
    }

    fn loss(
        &self,
        batch: &LmBatch,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        let logits = out.logits.clone(); // [B, T, V]
        let loss = clm_loss(logits.clone(), batch.tokens(device), batch.mask(device)); // [1]
        let metrics = metrics.then(|| {
            // Position i predicts token i + 1 of the same row, if that one is not padding.
            let (b, t) = (batch.batch_size, batch.seq_len);
            let mut labels = vec![-1i64; b * t];
            for row in 0..b {
                for i in 0..t.saturating_sub(1) {
                    let next = row * t + i + 1;
                    if batch.attention_mask.as_ref().is_none_or(|m| m[next] != 0) {
                        labels[row * t + i] = batch.input_ids[next];
                    }
                }
            }
            super::token_metrics("lm", &loss, &logits, &labels)
        });
        Ok(Loss { loss, metrics })
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        Some("lm_loss")
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<LmBatch> + Send>, TrainError> {
        lm_batches(&data.for_model_vocab(self.spec.model.vocab_size), split)
    }
}

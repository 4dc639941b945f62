//! `bert-mlm-nsp`: BERT pretraining, masked LM (15%, 80/10/10) + next-sentence prediction on
//! `[CLS] A [SEP] B [SEP]` pairs. The loss is `mlm + nsp` (HF `BertForPreTraining`).
//!
//! Metrics: `mlm_loss`, `mlm_accuracy` (masked tokens), `nsp_loss`, `nsp_accuracy`;
//! perplexity is `exp(mlm_loss)`.

use std::path::Path;

use burn::tensor::Device;
use refinery_model::hf::{load_bert, read_bert_config, save_bert};
use refinery_model::{BertConfig, BertForPreTraining, OutputOptions};
use serde::{Deserialize, Serialize};

use super::{
    argmax_hits, check_same_config, int_tensor, int_values, Loss, Outputs, Task, TaskSpec,
};
use crate::config::TokenizerIds;
use crate::data::{pair_batches, BatchSource, DataConfig, DataSplit, NspSpecials, PairBatch};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::{mlm_loss, nsp_loss, MlmMasking};

fn default_select_prob() -> f64 {
    0.15
}
fn default_true() -> bool {
    true
}

/// BERT pretraining settings (the serde shape of `trainer_state.json`'s `task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertMlmNspSpec {
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
    /// `[CLS]`, `[SEP]`, `[PAD]` of the pair rows (checkpoints older than this field take
    /// them from the tokenizer when evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair_specials: Option<NspSpecials>,
}

impl BertMlmNspSpec {
    pub fn new(model: BertConfig, mask_token_id: i64, special_token_ids: Vec<i64>) -> Self {
        Self {
            model,
            mask_token_id,
            special_token_ids,
            mlm_probability: default_select_prob(),
            nsp: true,
            pair_specials: None,
        }
    }

    /// The spec of an HF BERT checkpoint directory, with `[MASK] [CLS] [SEP] [PAD]` from
    /// `tokenizer`.
    pub fn from_dir(dir: &Path, tokenizer: &Path) -> Result<Self, TrainError> {
        let config = read_bert_config(dir)?;
        let ids = TokenizerIds::from_file(tokenizer)?;
        let (Some(mask), Some(cls), Some(sep), Some(pad)) = (ids.mask, ids.cls, ids.sep, ids.pad)
        else {
            return Err(TrainError::InvalidConfig(format!(
                "{}: needs [MASK] [CLS] [SEP] [PAD] tokens",
                tokenizer.display()
            )));
        };
        let mut specials = vec![
            i64::from(cls),
            i64::from(sep),
            i64::from(pad),
            i64::from(mask),
        ];
        specials.sort_unstable();
        specials.dedup();
        let mut spec = Self::new(config, i64::from(mask), specials);
        spec.pair_specials = Some(NspSpecials { cls, sep, pad });
        Ok(spec)
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

impl TaskSpec for BertMlmNspSpec {
    const KIND: &'static str = "bert-mlm-nsp";
    type Task = BertMlmNspTask;

    fn build(&self, _checkpoint: Option<&Path>) -> Result<BertMlmNspTask, TrainError> {
        self.model.validate()?;
        Ok(BertMlmNspTask { spec: self.clone() })
    }
}

/// The runtime of [`BertMlmNspSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct BertMlmNspTask {
    pub spec: BertMlmNspSpec,
}

/// A pair batch with its MLM masks drawn.
pub struct MaskedPairs {
    pub batch: PairBatch,
    /// `[B, T]` model input (masked).
    pub input_ids: Vec<i64>,
    /// `[B, T]` original token where selected, else [`IGNORE`](crate::objectives::IGNORE).
    pub labels: Vec<i64>,
}

impl Task for BertMlmNspTask {
    type Spec = BertMlmNspSpec;
    type Model = BertForPreTraining;
    type Batch = PairBatch;
    type Input = MaskedPairs;

    fn spec(&self) -> &BertMlmNspSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<BertForPreTraining, TrainError> {
        Ok(self.spec.model.init(device)?)
    }
    fn save_model(&self, model: &BertForPreTraining, dir: &Path) -> Result<(), TrainError> {
        Ok(save_bert(model, &self.spec.model, dir)?)
    }
    fn load_model(&self, dir: &Path, device: &Device) -> Result<BertForPreTraining, TrainError> {
        let (config, model) = load_bert(dir, device)?;
        check_same_config(dir, &config, &self.spec.model)?;
        Ok(model)
    }

    fn prepare(&self, batch: PairBatch, seed: u64) -> Result<MaskedPairs, TrainError> {
        let (input_ids, labels) = self.spec.masking().apply(&batch.input_ids, seed);
        Ok(MaskedPairs {
            batch,
            input_ids,
            labels,
        })
    }
    fn num_tokens(&self, input: &MaskedPairs) -> usize {
        input
            .batch
            .attention_mask
            .iter()
            .filter(|&&m| m != 0)
            .count()
    }

    fn forward(
        &self,
        model: &BertForPreTraining,
        input: &MaskedPairs,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let b = &input.batch;
        let shape = [b.batch_size, b.seq_len];
        let ids = int_tensor(input.input_ids.clone(), shape, device); // [B, T]
        let types = int_tensor(b.token_type_ids.clone(), shape, device); // [B, T]
        let mask = int_tensor(b.attention_mask.clone(), shape, device); // [B, T]
        let out = model.bert.forward(ids, Some(types), Some(mask), opts);
        let logits = model.mlm_logits(out.last_hidden_state); // [B, T, V]
        let aux = if self.spec.nsp {
            vec![("nsp", model.nsp_logits(out.pooled))] // [B, 2]
        } else {
            Vec::new()
        };
        Ok(Outputs {
            logits,
            aux,
            hidden_states: out.hidden_states,
            attentions: out.attentions,
        })
    }

    fn loss(
        &self,
        input: &MaskedPairs,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        let b = &input.batch;
        let shape = [b.batch_size, b.seq_len];
        let labels = int_tensor(input.labels.clone(), shape, device); // [B, T]
        let mlm = mlm_loss(out.logits.clone(), labels); // [1]
        let mut loss = mlm.clone();
        let mut nsp_parts = None;
        if let Some(nsp_logits) = out.aux("nsp") {
            let y = int_tensor(b.is_random_next.clone(), [b.batch_size], device); // [B]
            let nsp = nsp_loss(nsp_logits.clone(), y); // [1]
            loss = loss + nsp.clone();
            nsp_parts = Some((nsp, nsp_logits.clone()));
        }
        let metrics = metrics.then(|| {
            let mut m = MetricSums::default();
            let (correct, n) = argmax_hits(&out.logits, &input.labels);
            let n = n as f64;
            m.add("mlm_loss", f64::from(mlm.into_scalar::<f32>()) * n, n);
            m.add("mlm_accuracy", correct as f64, n);
            if let Some((nsp, logits)) = nsp_parts {
                let pred = int_values(logits.argmax(1)); // [B, 1]
                let bs = b.batch_size as f64;
                let correct = (0..b.batch_size)
                    .filter(|&i| pred[i] == b.is_random_next[i])
                    .count();
                m.add("nsp_loss", f64::from(nsp.into_scalar::<f32>()) * bs, bs);
                m.add("nsp_accuracy", correct as f64, bs);
            }
            m
        });
        Ok(Loss { loss, metrics })
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        Some("mlm_loss")
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<PairBatch> + Send>, TrainError> {
        let specials = self.spec.pair_specials.ok_or_else(|| {
            TrainError::InvalidConfig(
                "bert-mlm-nsp: the [CLS]/[SEP]/[PAD] ids of the pair rows are not known \
                 (pass the tokenizer)"
                    .into(),
            )
        })?;
        pair_batches(
            &data.for_model_vocab(self.spec.model.vocab_size),
            split,
            specials,
        )
    }
}

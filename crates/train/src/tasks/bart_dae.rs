//! `bart-dae`: BART denoising pretraining. The generic trainer (accumulation, clipping,
//! checkpoints, exact resume, evaluation, the run loop) drives a
//! [`BartForConditionalGeneration`] on token rows corrupted by [`crate::dae`]'s noise.
//!
//! - Source: any [`BatchSource`]`<LmBatch>` (packed or document-aligned rows). The real (unpadded) tokens
//!   of each row, wrapped as `bos row eos` when those ids are set, are the clean text.
//! - Noise: [`DaeNoise::TextInfilling`] (BART: 30% of the tokens in Poisson(3) spans, one
//!   mask per span) or [`DaeNoise::SpanCorruption`] (T5 sentinels). Row `r` of the batch at
//!   position `p` is noised with [`row_seed`]`(s, 0, r)` where `s` is the trainer's
//!   `batch_seed(run seed, p)`: a pure function of `(seed, position, row)`, so a resumed run
//!   corrupts every row exactly as the uninterrupted run did.
//! - Loss: [`seq2seq_loss`] (mean cross-entropy over the labels, HF `labels=` convention);
//!   metrics `dae_loss` (per label token), `dae_accuracy` (teacher-forced argmax on the
//!   labels); perplexity is `exp(dae_loss)`.

use std::path::Path;

use burn::tensor::Device;
use refinery_model::hf_bart::{load_bart, read_bart_config, save_bart};
use refinery_model::{BartConfig, BartForConditionalGeneration, OutputOptions};
use serde::{Deserialize, Serialize};

use super::{check_same_config, token_metrics, Loss, Outputs, Task, TaskSpec};
use crate::config::TokenizerIds;
use crate::data::{lm_batches, BatchSource, DataConfig, DataSplit, LmBatch};
use crate::error::TrainError;
use crate::objectives::dae::{
    collate, seq2seq_loss, NoisedRow, Seq2SeqBatch, SpanCorruption, TextInfilling,
};
use crate::rng::row_seed;

fn default_mask_ratio() -> f64 {
    0.3
}
fn default_poisson_lambda() -> f64 {
    3.0
}
fn default_noise_density() -> f64 {
    0.15
}
fn default_mean_span() -> f64 {
    3.0
}
fn default_num_sentinels() -> usize {
    100
}

/// The corruption applied to every clean row (serialisable settings of [`TextInfilling`] and
/// [`SpanCorruption`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DaeNoise {
    /// BART text infilling: `mask_ratio` of the non-special tokens in spans with lengths ~
    /// Poisson(`poisson_lambda`), each span replaced by one `mask_token_id`; the labels are the
    /// clean row.
    TextInfilling {
        mask_token_id: i64,
        #[serde(default = "default_mask_ratio")]
        mask_ratio: f64,
        #[serde(default = "default_poisson_lambda")]
        poisson_lambda: f64,
    },
    /// T5 span corruption: `noise_density` of the tokens in spans of mean length
    /// `mean_noise_span_length`, replaced by sentinels `first_sentinel - i`; the labels are
    /// `sentinel span ... sentinel [eos]` (the task's `eos_token_id`).
    SpanCorruption {
        first_sentinel: i64,
        #[serde(default = "default_num_sentinels")]
        num_sentinels: usize,
        #[serde(default = "default_noise_density")]
        noise_density: f64,
        #[serde(default = "default_mean_span")]
        mean_noise_span_length: f64,
    },
}

/// The noise function of a [`BartDaeSpec`], built once per batch.
enum Noise {
    Infill(TextInfilling),
    Spans(SpanCorruption),
}

impl Noise {
    fn apply(&self, tokens: &[i64], seed: u64) -> NoisedRow {
        match self {
            Noise::Infill(n) => n.apply(tokens, seed),
            Noise::Spans(n) => n.apply(tokens, seed),
        }
    }
}

/// BART (encoder-decoder) denoising autoencoder pretraining (the serde shape of
/// `trainer_state.json`'s `task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BartDaeSpec {
    pub model: BartConfig,
    pub noise: DaeNoise,
    /// Never noised (`<s>`, `</s>`, `<pad>`, `<mask>`, ...).
    pub special_token_ids: Vec<i64>,
    /// Prepended to every clean row (BART: `<s>`).
    pub bos_token_id: Option<i64>,
    /// Appended to every clean row (BART: `</s>`); also ends T5 span-corruption labels.
    pub eos_token_id: Option<i64>,
}

impl BartDaeSpec {
    /// BART's recipe: text infilling (30%, Poisson(3) spans) with `mask_token_id`, rows wrapped
    /// in the model's `bos`/`eos`; the specials are `bos`, `eos`, `pad` and the mask.
    pub fn bart(model: BartConfig, mask_token_id: i64) -> Self {
        let bos = model.bos_token_id.map(i64::from);
        let eos = model.eos_token_id.map(i64::from);
        let mut special_token_ids: Vec<i64> = [bos, eos, Some(i64::from(model.pad_token_id))]
            .into_iter()
            .flatten()
            .chain([mask_token_id])
            .collect();
        special_token_ids.sort_unstable();
        special_token_ids.dedup();
        Self {
            model,
            noise: DaeNoise::TextInfilling {
                mask_token_id,
                mask_ratio: default_mask_ratio(),
                poisson_lambda: default_poisson_lambda(),
            },
            special_token_ids,
            bos_token_id: bos,
            eos_token_id: eos,
        }
    }

    /// Checks the model config, the noise settings and that every id is in the vocabulary.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        let noise = self.noise_fn();
        match &noise {
            Noise::Infill(n) => n.validate()?,
            Noise::Spans(n) => n.validate()?,
        }
        let vocab = self.model.vocab_size as i64;
        let mut ids: Vec<(&str, i64)> = self
            .special_token_ids
            .iter()
            .map(|&t| ("special_token_ids", t))
            .collect();
        ids.extend(self.bos_token_id.map(|t| ("bos_token_id", t)));
        ids.extend(self.eos_token_id.map(|t| ("eos_token_id", t)));
        match &self.noise {
            DaeNoise::TextInfilling { mask_token_id, .. } => {
                ids.push(("mask_token_id", *mask_token_id))
            }
            DaeNoise::SpanCorruption { first_sentinel, .. } => {
                ids.push(("first_sentinel", *first_sentinel))
            }
        }
        if let Some((key, id)) = ids.iter().find(|(_, id)| !(0..vocab).contains(id)) {
            return Err(TrainError::InvalidConfig(format!(
                "{key} {id} is not in the vocabulary (vocab_size {vocab})"
            )));
        }
        Ok(())
    }

    fn noise_fn(&self) -> Noise {
        let specials = self.special_token_ids.clone();
        match &self.noise {
            DaeNoise::TextInfilling {
                mask_token_id,
                mask_ratio,
                poisson_lambda,
            } => Noise::Infill(TextInfilling {
                mask_ratio: *mask_ratio,
                poisson_lambda: *poisson_lambda,
                mask_token: *mask_token_id,
                special_tokens: specials,
            }),
            DaeNoise::SpanCorruption {
                first_sentinel,
                num_sentinels,
                noise_density,
                mean_noise_span_length,
            } => Noise::Spans(SpanCorruption {
                noise_density: *noise_density,
                mean_noise_span_length: *mean_noise_span_length,
                first_sentinel: *first_sentinel,
                num_sentinels: *num_sentinels,
                eos_token: self.eos_token_id,
                special_tokens: specials,
            }),
        }
    }

    /// The clean rows of a batch: each row's real tokens, wrapped in `bos`/`eos` when set.
    pub fn clean_rows(&self, batch: &LmBatch) -> Vec<Vec<i64>> {
        let t = batch.seq_len;
        (0..batch.batch_size)
            .map(|r| {
                let ids = &batch.input_ids[r * t..(r + 1) * t];
                let real = ids.iter().enumerate().filter(|(i, _)| {
                    batch
                        .attention_mask
                        .as_ref()
                        .is_none_or(|m| m[r * t + i] != 0)
                });
                self.bos_token_id
                    .into_iter()
                    .chain(real.map(|(_, &id)| id))
                    .chain(self.eos_token_id)
                    .collect()
            })
            .collect()
    }

    /// The noised rows of a batch: row `r` with [`row_seed`]`(seed, 0, r)`. Encoder inputs and
    /// labels longer than `max_position_embeddings` are cut to it (text infilling can, rarely,
    /// lengthen a row: zero-length spans insert a mask).
    pub fn noised_rows(&self, batch: &LmBatch, seed: u64) -> Vec<NoisedRow> {
        let noise = self.noise_fn();
        let max = self.model.max_position_embeddings;
        self.clean_rows(batch)
            .iter()
            .enumerate()
            .map(|(r, row)| {
                let mut out = noise.apply(row, row_seed(seed, 0, r as u64));
                out.input.truncate(max);
                out.labels.truncate(max);
                out
            })
            .collect()
    }

    /// The padded seq2seq batch the model sees (HF conventions, see [`collate`]).
    pub fn collate(&self, batch: &LmBatch, seed: u64) -> Seq2SeqBatch {
        collate(
            &self.noised_rows(batch, seed),
            i64::from(self.model.pad_token_id),
            i64::from(self.model.decoder_start_token_id),
        )
    }
}

impl BartDaeSpec {
    /// BART text infilling for an HF BART checkpoint directory, with `<mask>` from `tokenizer`.
    pub fn from_dir(dir: &Path, tokenizer: &Path) -> Result<Self, TrainError> {
        let config = read_bart_config(dir)?;
        let Some(mask) = TokenizerIds::from_file(tokenizer)?.mask else {
            return Err(TrainError::InvalidConfig(format!(
                "{}: needs a <mask> token",
                tokenizer.display()
            )));
        };
        Ok(Self::bart(config, i64::from(mask)))
    }
}

impl TaskSpec for BartDaeSpec {
    const KIND: &'static str = "bart-dae";
    type Task = BartDaeTask;

    fn build(&self, _checkpoint: Option<&Path>) -> Result<BartDaeTask, TrainError> {
        self.validate()?;
        Ok(BartDaeTask { spec: self.clone() })
    }
}

/// A noised batch and the real tokens of its clean rows (for tokens/s).
pub struct NoisedBatch {
    pub seq2seq: Seq2SeqBatch,
    pub clean_tokens: usize,
}

/// The runtime of [`BartDaeSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct BartDaeTask {
    pub spec: BartDaeSpec,
}

impl Task for BartDaeTask {
    type Spec = BartDaeSpec;
    type Model = BartForConditionalGeneration;
    type Batch = LmBatch;
    type Input = NoisedBatch;

    fn spec(&self) -> &BartDaeSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<BartForConditionalGeneration, TrainError> {
        Ok(self.spec.model.init(device)?)
    }
    fn save_model(
        &self,
        model: &BartForConditionalGeneration,
        dir: &Path,
    ) -> Result<(), TrainError> {
        Ok(save_bart(model, &self.spec.model, dir)?)
    }
    fn load_model(
        &self,
        dir: &Path,
        device: &Device,
    ) -> Result<BartForConditionalGeneration, TrainError> {
        let (config, model) = load_bart(dir, device)?;
        check_same_config(dir, &config, &self.spec.model)?;
        Ok(model)
    }

    fn prepare(&self, batch: LmBatch, seed: u64) -> Result<NoisedBatch, TrainError> {
        Ok(NoisedBatch {
            seq2seq: self.spec.collate(&batch, seed),
            clean_tokens: batch.num_tokens(),
        })
    }
    fn num_tokens(&self, b: &NoisedBatch) -> usize {
        b.clean_tokens
    }

    fn forward(
        &self,
        model: &BartForConditionalGeneration,
        b: &NoisedBatch,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let t = b.seq2seq.to_tensors(device);
        let out = model.forward(
            t.input_ids,
            Some(t.attention_mask),
            t.decoder_input_ids,
            Some(t.decoder_attention_mask),
            opts,
        );
        Ok(Outputs {
            logits: out.logits, // [B, T, V]
            aux: Vec::new(),
            hidden_states: out.decoder_hidden_states,
            attentions: out.decoder_attentions,
        })
    }

    fn loss(
        &self,
        b: &NoisedBatch,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        let b = &b.seq2seq;
        let labels = b.to_tensors(device).labels; // [B, T]
        let loss = seq2seq_loss(out.logits.clone(), labels); // [1]
        let metrics = metrics.then(|| token_metrics("dae", &loss, &out.logits, &b.labels));
        Ok(Loss { loss, metrics })
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        Some("dae_loss")
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<LmBatch> + Send>, TrainError> {
        lm_batches(&data.for_model_vocab(self.spec.model.vocab_size), split)
    }
}

//! Sequence classification heads on a BERT or GPT-2 body (HF `BertForSequenceClassification`
//! and `GPT2ForSequenceClassification`), plus mean pooling for sentence-embedding checkpoints.
//!
//! ```text
//! BERT:  pooled = tanh(pooler(h[:, 0]))      logits = classifier(dropout(pooled))   (Pooling::Pooler)
//! GPT-2: last   = ln_f(h)[b, len_b − 1]      logits = score(last)                   (Pooling::Last)
//! mean:  mean   = Σ_t mask·h[:, t] / Σ mask  logits = head(dropout(mean))           (Pooling::Mean)
//! ```
//!
//! HF keys: `bert.*` + `classifier.{weight,bias}` (`[C, D]`, `[C]`), or `transformer.*` +
//! `score.weight` (`[C, D]`, no bias); see [`crate::hf`]. New heads are initialised as HF
//! does: weights normal(0, `initializer_range`), biases zero.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::{BertConfig, BertModel};
use crate::error::ModelError;
use crate::gpt::{Gpt, GptConfig};
use crate::output::OutputOptions;

/// How a sequence becomes one vector for the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// BERT's pooler (`tanh(dense(h[:, 0]))`): HF `BertForSequenceClassification`.
    #[default]
    Pooler,
    /// Mean of the last hidden states over real tokens (sentence-transformers). Not an HF
    /// architecture: transformers would use the pooler instead.
    Mean,
    /// The last real token's final hidden state: HF `GPT2ForSequenceClassification`.
    Last,
}

/// The body a classifier sits on. (One per model, so the size difference of the variants
/// costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    Bert(BertModel),
    Gpt(Gpt),
}

/// The architecture config of a classifier's body (HF `config.json` minus the label maps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BackboneConfig {
    Bert(BertConfig),
    Gpt(GptConfig),
}

impl BackboneConfig {
    /// Hidden width `D`.
    pub fn hidden_size(&self) -> usize {
        match self {
            BackboneConfig::Bert(c) => c.hidden_size,
            BackboneConfig::Gpt(c) => c.n_embd,
        }
    }

    /// Layers.
    pub fn num_layers(&self) -> usize {
        match self {
            BackboneConfig::Bert(c) => c.num_hidden_layers,
            BackboneConfig::Gpt(c) => c.n_layer,
        }
    }

    /// Token embeddings (vocabulary size).
    pub fn vocab_size(&self) -> usize {
        match self {
            BackboneConfig::Bert(c) => c.vocab_size,
            BackboneConfig::Gpt(c) => c.vocab_size,
        }
    }

    /// Longest input.
    pub fn max_positions(&self) -> usize {
        match self {
            BackboneConfig::Bert(c) => c.max_position_embeddings,
            BackboneConfig::Gpt(c) => c.n_positions,
        }
    }

    pub fn initializer_range(&self) -> f64 {
        match self {
            BackboneConfig::Bert(c) => c.initializer_range,
            BackboneConfig::Gpt(c) => c.initializer_range,
        }
    }

    /// Dropout before the head (BERT: `hidden_dropout_prob`; GPT-2 has none).
    pub fn head_dropout(&self) -> f64 {
        match self {
            BackboneConfig::Bert(c) => c.hidden_dropout_prob,
            BackboneConfig::Gpt(_) => 0.0,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            BackboneConfig::Bert(c) => c.validate(),
            BackboneConfig::Gpt(c) => c.validate(),
        }
    }

    /// The poolings this body supports.
    pub fn check_pooling(&self, pooling: Pooling) -> Result<(), ModelError> {
        match (self, pooling) {
            (BackboneConfig::Gpt(_), Pooling::Pooler) => Err(ModelError::InvalidConfig(
                "GPT-2 has no pooler: use pooling \"last\" (HF GPT2ForSequenceClassification) \
                 or \"mean\""
                    .into(),
            )),
            (BackboneConfig::Bert(_), Pooling::Last) => Err(ModelError::InvalidConfig(
                "BERT classifies from the pooler (\"pooler\") or the mean (\"mean\"), not the \
                 last token"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A classifier: body + pooling + (dropout) + linear head.
#[derive(Module, Debug)]
pub struct SequenceClassifier {
    pub backbone: Backbone,
    pub dropout: Dropout,
    /// `[D, C]` (HF stores `[C, D]`).
    pub head: Linear,
    #[module(skip)]
    pub pooling: Pooling,
}

/// Output of [`SequenceClassifier::forward`].
#[derive(Debug, Clone)]
pub struct ClassifierOutput {
    /// `[B, C]`
    pub logits: Tensor<2>,
    /// The pooled vector `[B, D]` the head saw (before dropout).
    pub pooled: Tensor<2>,
    /// `[B, T, D]` per layer, embeddings first (when requested).
    pub hidden_states: Vec<Tensor<3>>,
    /// `[B, H, T, T]` per layer (when requested).
    pub attentions: Vec<Tensor<4>>,
}

/// A fresh head `[D, C]` (HF init: normal(0, std) weight, zero bias when present).
pub fn init_head(d: usize, num_labels: usize, std: f64, bias: bool, device: &Device) -> Linear {
    let mut head = LinearConfig::new(d, num_labels)
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    if bias {
        head.bias = Some(Initializer::Zeros.init([num_labels], device));
    }
    head
}

impl SequenceClassifier {
    /// A classifier with a fresh head around `backbone`.
    pub fn new(
        backbone: Backbone,
        config: &BackboneConfig,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.check_pooling(pooling)?;
        if num_labels == 0 {
            return Err(ModelError::InvalidConfig("num_labels must be >= 1".into()));
        }
        let bias = !matches!(backbone, Backbone::Gpt(_));
        Ok(Self {
            backbone,
            dropout: DropoutConfig::new(config.head_dropout()).init(),
            head: init_head(
                config.hidden_size(),
                num_labels,
                config.initializer_range(),
                bias,
                device,
            ),
            pooling,
        })
    }

    /// A randomly initialised classifier (the caller seeds the device RNG).
    pub fn init(
        config: &BackboneConfig,
        num_labels: usize,
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let backbone = match config {
            BackboneConfig::Bert(c) => Backbone::Bert(c.init_model(device)?),
            BackboneConfig::Gpt(c) => Backbone::Gpt(c.init(device)?),
        };
        Self::new(backbone, config, num_labels, pooling, device)
    }

    /// Number of labels `C`.
    pub fn num_labels(&self) -> usize {
        let [_, c] = self.head.weight.val().dims();
        c
    }

    /// - `input_ids`, `token_type_ids` (BERT only; `None` = all 0): `[B, T]`
    /// - `attention_mask`: `[B, T]`, `1` = token, `0` = padding (right padding)
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        opts: OutputOptions,
    ) -> ClassifierOutput {
        let body = pool(
            &self.backbone,
            self.pooling,
            input_ids,
            token_type_ids,
            attention_mask,
            opts,
        );
        let logits = self.head.forward(self.dropout.forward(body.pooled.clone())); // [B, C]
        ClassifierOutput { logits, ..body }
    }
}

/// Runs `backbone` and pools its last hidden states (`logits` of the result are the pooled
/// vectors; callers put a head on them).
pub fn pool(
    backbone: &Backbone,
    pooling: Pooling,
    input_ids: Tensor<2, Int>,
    token_type_ids: Option<Tensor<2, Int>>,
    attention_mask: Tensor<2, Int>,
    opts: OutputOptions,
) -> ClassifierOutput {
    let [b, t] = input_ids.dims();
    let (last, pooler, hidden_states, attentions) = match backbone {
        Backbone::Bert(bert) => {
            let out = bert.forward(
                input_ids,
                token_type_ids,
                Some(attention_mask.clone()),
                opts,
            );
            (
                out.last_hidden_state,
                Some(out.pooled),
                out.hidden_states,
                out.attentions,
            )
        }
        Backbone::Gpt(gpt) => {
            let want = OutputOptions {
                hidden_states: true,
                attentions: opts.attentions,
            };
            let out = gpt.forward_with(input_ids, Some(attention_mask.clone()), want);
            let mut hidden = out.hidden_states;
            // Requested above, so present: the last one is ln_f of the last block.
            let last = hidden.pop().unwrap_or_else(|| out.logits.clone());
            if opts.hidden_states {
                hidden.push(last.clone());
            } else {
                hidden.clear();
            }
            (last, None, hidden, out.attentions)
        }
    }; // last: [B, T, D]
    let [_, _, d] = last.dims();
    let pooled = match (pooling, pooler) {
        (Pooling::Pooler, Some(p)) => p, // [B, D]
        (Pooling::Last, _) => {
            // Index of the last real token of each row: Σ mask − 1 (right padding).
            let len = attention_mask.clone().sum_dim(1).sub_scalar(1).clamp_min(0); // [B, 1]
            let index = len.reshape([b, 1, 1]).expand([b, 1, d]); // [B, 1, D]
            last.gather(1, index).reshape([b, d])
        }
        _ => {
            let m = attention_mask.float().reshape([b, t, 1]); // [B, T, 1]
            let sum = (last * m.clone()).sum_dim(1).reshape([b, d]); // [B, D]
            let count = m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9); // [B, 1]
            sum / count
        }
    };
    ClassifierOutput {
        logits: pooled.clone(),
        pooled,
        hidden_states,
        attentions,
    }
}

/// One shared body, one head per task (multi-task fine-tuning).
#[derive(Module, Debug)]
pub struct MultiTaskClassifier {
    pub backbone: Backbone,
    pub dropout: Dropout,
    /// One `[D, C_k]` head per task.
    pub heads: Vec<Linear>,
    #[module(skip)]
    pub pooling: Pooling,
}

impl MultiTaskClassifier {
    /// Fresh heads with `num_labels[k]` outputs around `backbone`.
    pub fn new(
        backbone: Backbone,
        config: &BackboneConfig,
        num_labels: &[usize],
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        config.check_pooling(pooling)?;
        if num_labels.is_empty() || num_labels.contains(&0) {
            return Err(ModelError::InvalidConfig(
                "a multi-task model needs tasks with >= 1 label each".into(),
            ));
        }
        let bias = !matches!(backbone, Backbone::Gpt(_));
        let heads = num_labels
            .iter()
            .map(|&c| {
                init_head(
                    config.hidden_size(),
                    c,
                    config.initializer_range(),
                    bias,
                    device,
                )
            })
            .collect();
        Ok(Self {
            backbone,
            dropout: DropoutConfig::new(config.head_dropout()).init(),
            heads,
            pooling,
        })
    }

    /// Logits of task `task`'s head `[B, C_task]`.
    pub fn forward(
        &self,
        task: usize,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Tensor<2, Int>,
        opts: OutputOptions,
    ) -> Result<ClassifierOutput, ModelError> {
        let head = self.heads.get(task).ok_or_else(|| {
            ModelError::InvalidConfig(format!("task {task} of {} heads", self.heads.len()))
        })?;
        let body = pool(
            &self.backbone,
            self.pooling,
            input_ids,
            token_type_ids,
            attention_mask,
            opts,
        );
        let logits = head.forward(self.dropout.forward(body.pooled.clone()));
        Ok(ClassifierOutput { logits, ..body })
    }

    /// Task `task` as a standalone classifier (shares nothing after the clone).
    pub fn task_model(&self, task: usize) -> Result<SequenceClassifier, ModelError> {
        let head = self.heads.get(task).ok_or_else(|| {
            ModelError::InvalidConfig(format!("task {task} of {} heads", self.heads.len()))
        })?;
        Ok(SequenceClassifier {
            backbone: self.backbone.clone(),
            dropout: self.dropout.clone(),
            head: head.clone(),
            pooling: self.pooling,
        })
    }
}

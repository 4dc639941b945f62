//! The BERT weight maps: `BertForPreTraining` (`bert.*` + `cls.*`) and `BertModel` (bare keys,
//! e.g. sentence-transformers' all-MiniLM-L6-v2; it also loads the `bert.*` part of a
//! checkpoint with heads, skipping the heads).
//!
//! | HF key (`bert.` prefix in `BertForPreTraining`) | burn field | HF shape |
//! |---|---|---|
//! | `embeddings.{word,position,token_type}_embeddings.weight` | `{word,position,token_type}_embeddings.weight` | `[V \| P \| types, D]` |
//! | `embeddings.LayerNorm.{weight,bias}` | `embeddings_layer_norm.{gamma,beta}` | `[D]` |
//! | `encoder.layer.{i}.attention.self.{query,key,value}.*` | `layer[i].{query,key,value}` (transposed) | `[D, D]` / `[D]` |
//! | `encoder.layer.{i}.attention.output.dense.*` | `layer[i].attn_output` (transposed) | `[D, D]` / `[D]` |
//! | `encoder.layer.{i}.attention.output.LayerNorm.*` | `layer[i].attn_layer_norm` | `[D]` |
//! | `encoder.layer.{i}.intermediate.dense.*` | `layer[i].intermediate` (transposed) | `[I, D]` / `[I]` |
//! | `encoder.layer.{i}.output.dense.*` | `layer[i].output` (transposed) | `[D, I]` / `[D]` |
//! | `encoder.layer.{i}.output.LayerNorm.*` | `layer[i].output_layer_norm` | `[D]` |
//! | `pooler.dense.*` | `pooler` (transposed) | `[D, D]` / `[D]` |
//! | `embeddings.position_ids` | — (buffer, ignored) | |
//! | `cls.predictions.transform.dense.*` | `cls.mlm_transform` (transposed) | `[D, D]` / `[D]` |
//! | `cls.predictions.transform.LayerNorm.*` | `cls.mlm_layer_norm` | `[D]` |
//! | `cls.predictions.bias` | `cls.mlm_bias` | `[V]` |
//! | `cls.seq_relationship.*` | `cls.nsp` (transposed) | `[2, D]` / `[2]` |
//! | `cls.predictions.decoder.{weight,bias}` | — (tied: must equal the word embeddings and `cls.predictions.bias`) | |
//!
//! These are PyTorch `nn.Linear` weights, `[out, in]`: transposed to burn's `[in, out]` on load
//! and back on save ([`Vb::linear`]).
//!
//! **Adding a head.** `crate::hf_classify` does this for the sequence classifiers (one
//! `HfParams` impl for the body, one line per head). In general (e.g. HF
//! `BertForSequenceClassification`: `bert.*` (pooler included) +
//! `classifier.{weight,bias}` `[num_labels, D]` / `[num_labels]`): a struct with the body
//! `bert: BertModel`, `dropout: Dropout` and `classifier: Linear` (forward: pooled → dropout →
//! classifier), then here:
//!
//! ```ignore
//! impl HfParams for BertForSequenceClassification {
//!     fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
//!         self.bert.params(&mut vb.pp("bert"));
//!         vb.linear("classifier", &mut self.classifier);
//!     }
//! }
//! impl HfModel for BertForSequenceClassification {
//!     type Config = BertConfig; // with a `num_labels` field, listed in `HfConfig::sizes`
//!     const ARCHITECTURE: &'static str = "BertForSequenceClassification";
//!     const BASE_PREFIX: &'static str = "bert";
//!     fn init_lazy(config: &BertConfig, device: &Device) -> Result<Self, ModelError> { .. }
//! }
//! ```
//!
//! Then `hf::load::<BertForSequenceClassification>(dir, device)` and `hf::save(..)` work, with
//! every name and shape checked before anything is allocated (`init_lazy` must build the
//! parameters with burn's lazy initializers, not from eager tensors). To start fine-tuning
//! from a pretraining checkpoint, load its body with `load::<BertModel>` (the `cls.*` head is
//! skipped) and put it into a freshly initialised classifier. Pruned heads (HF `pruned_heads`:
//! fewer query/key/value rows in some layers) change only the init (per-layer sizes): the map
//! and the shape checks follow the built model.

use std::path::Path;

use burn::tensor::Device;

use super::{HfConfig, HfModel, HfParams, Vb};
use crate::bert::{BertConfig, BertForPreTraining, BertLayer, BertModel, PreTrainingHeads};
use crate::error::ModelError;

impl HfConfig for BertConfig {
    fn validate(&self) -> Result<(), ModelError> {
        BertConfig::validate(self)
    }

    fn sizes(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ]
    }

    fn layer_counts(&self) -> Vec<(&'static str, usize)> {
        vec![("num_hidden_layers", self.num_hidden_layers)]
    }
}

impl HfParams for BertLayer {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        let mut attention = vb.pp("attention");
        let mut this = attention.pp("self");
        this.linear("query", &mut self.query);
        this.linear("key", &mut self.key);
        this.linear("value", &mut self.value);
        let mut output = attention.pp("output");
        output.linear("dense", &mut self.attn_output);
        output.layer_norm("LayerNorm", &mut self.attn_layer_norm);
        vb.linear("intermediate.dense", &mut self.intermediate);
        vb.linear("output.dense", &mut self.output);
        vb.layer_norm("output.LayerNorm", &mut self.output_layer_norm);
    }
}

impl HfParams for BertModel {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        let mut e = vb.pp("embeddings");
        e.embedding("word_embeddings", &mut self.word_embeddings);
        e.embedding("position_embeddings", &mut self.position_embeddings);
        e.embedding("token_type_embeddings", &mut self.token_type_embeddings);
        e.layer_norm("LayerNorm", &mut self.embeddings_layer_norm);
        e.buffer("position_ids");
        for (i, layer) in self.layer.iter_mut().enumerate() {
            layer.params(&mut vb.pp(format!("encoder.layer.{i}")));
        }
        vb.linear("pooler.dense", &mut self.pooler);
    }
}

impl HfParams for PreTrainingHeads {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        let mut p = vb.pp("predictions");
        p.linear("transform.dense", &mut self.mlm_transform);
        p.layer_norm("transform.LayerNorm", &mut self.mlm_layer_norm);
        p.vector("bias", &mut self.mlm_bias);
        p.tied("decoder.bias", "bias");
        vb.linear("seq_relationship", &mut self.nsp);
    }
}

impl HfParams for BertForPreTraining {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        self.bert.params(&mut vb.pp("bert"));
        self.cls.params(&mut vb.pp("cls"));
        vb.tied(
            "cls.predictions.decoder.weight",
            "bert.embeddings.word_embeddings.weight",
        );
    }
}

impl HfModel for BertForPreTraining {
    type Config = BertConfig;
    const ARCHITECTURE: &'static str = "BertForPreTraining";
    const BASE_PREFIX: &'static str = "bert";

    fn init_lazy(config: &BertConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }
}

impl HfModel for BertModel {
    type Config = BertConfig;
    const ARCHITECTURE: &'static str = "BertModel";
    const BASE_PREFIX: &'static str = "bert";

    fn init_lazy(config: &BertConfig, device: &Device) -> Result<Self, ModelError> {
        config.init_model(device)
    }
}

/// Reads and validates `dir/config.json` as a BERT config.
pub fn read_bert_config(dir: &Path) -> Result<BertConfig, ModelError> {
    super::read_config(dir)
}

/// Loads a `BertForPreTraining` checkpoint directory onto `device`.
pub fn load_bert(
    dir: &Path,
    device: &Device,
) -> Result<(BertConfig, BertForPreTraining), ModelError> {
    super::load(dir, device)
}

/// Loads the encoder + pooler of any BERT checkpoint directory: a `BertModel` save (bare
/// keys, e.g. sentence-transformers' all-MiniLM-L6-v2) or a save with heads (`bert.*`, e.g.
/// `BertForPreTraining`; the heads are skipped).
pub fn load_bert_model(dir: &Path, device: &Device) -> Result<(BertConfig, BertModel), ModelError> {
    super::load(dir, device)
}

/// Builds a BERT for `config` and fills it from an HF `BertForPreTraining` safetensors file
/// (`bert.*` + `cls.*`; the tied `cls.predictions.decoder.*` copies are checked, not loaded).
pub fn load_bert_weights(
    config: &BertConfig,
    path: &Path,
    device: &Device,
) -> Result<BertForPreTraining, ModelError> {
    super::load_weights(config, path, device)
}

/// Saves `model` as an HF `BertForPreTraining` checkpoint directory (`bert.*` + `cls.*`;
/// the decoder is tied to the word embeddings and omitted).
pub fn save_bert(
    model: &BertForPreTraining,
    config: &BertConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    super::save(model, config, dir)
}

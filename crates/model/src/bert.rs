//! BERT encoder with pretraining heads (HF `BertForPreTraining` layout).
//!
//! Post-LayerNorm blocks, GELU (erf, HF `"gelu"`), learned absolute positions, token-type
//! (segment) embeddings, a tanh pooler on the first token, the MLM head (transform + decoder
//! tied to the word embeddings + output bias) and the NSP head:
//!
//! ```text
//! x = LN(word[ids] + pos[0..T] + type[token_types])
//! for each layer:  x = LN(x + attn(x));  x = LN(x + out(gelu(inter(x))))
//! pooled = tanh(pooler(x[:, 0]))
//! mlm    = LN(gelu(transform(x))) · wordᵀ + bias
//! nsp    = seq_relationship(pooled)
//! ```
//!
//! Field names follow the HF checkpoint; HF's `nn.Linear` stores `[out, in]`, so
//! [`crate::hf`] transposes every BERT dense weight on load and save.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{
    attend, combine_masks, layer_mask, merge_heads, padding_mask, split_heads, Attend,
    SparseAttention,
};
use crate::error::ModelError;
use crate::output::OutputOptions;

/// BERT configuration. Field names and defaults mirror HF `BertConfig` / `config.json`;
/// unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Always `"bert"`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    /// `D`
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    /// Only `"gelu"` (erf) is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Only `"absolute"` is supported.
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
    /// Optional sparse attention pattern (a refinery extension; absent = dense attention).
    /// HF `transformers` ignores the key and would compute dense attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_attention: Option<SparseAttention>,
    /// Heads removed from each layer (HF `pruned_heads`: layer index → the layer's original
    /// head indices). A layer with `h` heads pruned has `(num_attention_heads − h) · head_dim`
    /// query/key/value outputs and attention-output inputs; the remaining heads keep their
    /// order. transformers 4.x reads the key and prunes the same heads at init; at least one
    /// head stays in every layer.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "pruned_heads_from_json"
    )]
    pub pruned_heads: BTreeMap<usize, Vec<usize>>,
}

/// `pruned_heads` as JSON writes it (`{"0": [1, 2]}`). serde_json parses string keys into
/// integers itself, but not when the config is buffered first (inside an untagged enum such as
/// `BackboneConfig`), so the keys are read as strings and parsed here.
fn pruned_heads_from_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<usize, Vec<usize>>, D::Error> {
    let raw = BTreeMap::<String, Vec<usize>>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            k.parse::<usize>().map(|k| (k, v)).map_err(|_| {
                serde::de::Error::custom(format!("pruned_heads: layer key {k:?} is not a number"))
            })
        })
        .collect()
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_init_range() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-12
}
fn default_pos_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// HF defaults for everything but the sizes.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
    ) -> Self {
        Self {
            model_type: default_model_type(),
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: default_act(),
            hidden_dropout_prob: default_dropout(),
            attention_probs_dropout_prob: default_dropout(),
            max_position_embeddings: default_max_pos(),
            type_vocab_size: default_type_vocab(),
            initializer_range: default_init_range(),
            layer_norm_eps: default_eps(),
            pad_token_id: Some(0),
            position_embedding_type: default_pos_type(),
            sparse_attention: None,
            pruned_heads: BTreeMap::new(),
        }
    }

    /// Preset `bert-tiny` (BERT-Tiny size): 2 layers, hidden 128, 2 heads, intermediate 512.
    pub fn tiny(vocab_size: usize) -> Self {
        Self::new(vocab_size, 128, 2, 2, 512)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.model_type != "bert" {
            return bad(format!(
                "model_type is {:?}, expected \"bert\"",
                self.model_type
            ));
        }
        let sizes = [
            self.vocab_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ];
        if sizes.contains(&0) {
            return bad("all sizes must be > 0".into());
        }
        if self.hidden_size == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size ({}) must be a positive multiple of num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return bad(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} = {p} is not in [0, 1)"));
            }
        }
        if let Some(sparse) = &self.sparse_attention {
            sparse.validate(self.max_position_embeddings)?;
        }
        for (&layer, heads) in &self.pruned_heads {
            if layer >= self.num_hidden_layers {
                return bad(format!(
                    "pruned_heads: layer {layer} does not exist (num_hidden_layers = {})",
                    self.num_hidden_layers
                ));
            }
            let mut seen = vec![false; self.num_attention_heads];
            for &h in heads {
                match seen.get_mut(h) {
                    None => {
                        return bad(format!(
                        "pruned_heads: layer {layer} has no head {h} (num_attention_heads = {})",
                        self.num_attention_heads
                    ))
                    }
                    Some(true) => {
                        return bad(format!("pruned_heads: layer {layer} lists head {h} twice"))
                    }
                    Some(s) => *s = true,
                }
            }
            if heads.len() >= self.num_attention_heads {
                return bad(format!(
                    "pruned_heads: layer {layer} prunes all {} heads (at least one must stay)",
                    self.num_attention_heads
                ));
            }
        }
        Ok(())
    }

    /// Heads left in `layer` after [`BertConfig::pruned_heads`].
    pub fn layer_heads(&self, layer: usize) -> usize {
        let pruned = self.pruned_heads.get(&layer).map_or(0, Vec::len);
        self.num_attention_heads.saturating_sub(pruned)
    }

    /// Randomly initialised encoder + pooler (HF `BertModel`): normal(0, initializer_range)
    /// weights, zero biases, unit LayerNorm.
    pub fn init_model(&self, device: &Device) -> Result<BertModel, ModelError> {
        self.validate()?;
        let std = self.initializer_range;
        let d = self.hidden_size;
        let linear = |d_in: usize, d_out: usize| {
            let mut l = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let emb = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
        };
        let dropout = || DropoutConfig::new(self.hidden_dropout_prob).init();
        let head_dim = d / self.num_attention_heads;
        let layer = (0..self.num_hidden_layers)
            .map(|i| {
                let heads = self.layer_heads(i);
                let hd = heads * head_dim; // `D` unless heads were pruned
                BertLayer {
                    query: linear(d, hd),
                    key: linear(d, hd),
                    value: linear(d, hd),
                    attn_dropout: DropoutConfig::new(self.attention_probs_dropout_prob).init(),
                    attn_output: linear(hd, d),
                    attn_output_dropout: dropout(),
                    attn_layer_norm: ln(),
                    intermediate: linear(d, self.intermediate_size),
                    output: linear(self.intermediate_size, d),
                    output_dropout: dropout(),
                    output_layer_norm: ln(),
                    n_head: heads,
                    sparse: self.sparse_attention.clone(),
                }
            })
            .collect();
        Ok(BertModel {
            word_embeddings: emb(self.vocab_size),
            position_embeddings: emb(self.max_position_embeddings),
            token_type_embeddings: emb(self.type_vocab_size),
            embeddings_layer_norm: ln(),
            embeddings_dropout: dropout(),
            layer,
            pooler: linear(d, d),
        })
    }

    /// Randomly initialised encoder with the pretraining heads (HF `BertForPreTraining`).
    pub fn init(&self, device: &Device) -> Result<BertForPreTraining, ModelError> {
        let bert = self.init_model(device)?;
        let d = self.hidden_size;
        let std = self.initializer_range;
        let linear = |d_out: usize| {
            let mut l = LinearConfig::new(d, d_out)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let cls = PreTrainingHeads {
            mlm_transform: linear(d),
            mlm_layer_norm: LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            mlm_bias: Initializer::Zeros.init([self.vocab_size], device),
            nsp: linear(2),
        };
        Ok(BertForPreTraining { bert, cls })
    }
}

/// One post-LN encoder layer (HF `BertLayer`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// `[D, H·Dh]` each (stored transposed in HF; `H·Dh = D` unless heads were pruned)
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attn_dropout: Dropout,
    /// `attention.output.dense`: `[H·Dh, D]`
    pub attn_output: Linear,
    pub attn_output_dropout: Dropout,
    /// `attention.output.LayerNorm`
    pub attn_layer_norm: LayerNorm,
    /// `intermediate.dense`: `[D, I]`
    pub intermediate: Linear,
    /// `output.dense`: `[I, D]`
    pub output: Linear,
    pub output_dropout: Dropout,
    /// `output.LayerNorm`
    pub output_layer_norm: LayerNorm,
    /// `H`: this layer's heads (fewer than the config's when heads were pruned).
    pub n_head: usize,
    /// Sparse attention pattern of this layer (`None` = dense); not a parameter.
    #[module(skip)]
    pub sparse: Option<SparseAttention>,
}

impl BertLayer {
    /// `[B, T, D]` → (`[B, T, D]`, attention probs `[B, H, T, T]`). The mask is dense or
    /// [`BertLayer::sparse`]'s pattern (see [`Attend`]; the maps of a sparse pattern only
    /// when asked for).
    pub fn forward<'a>(
        &self,
        x: Tensor<3>,
        how: impl Into<Attend<'a>>,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let heads = |l: &Linear| split_heads(l.forward(x.clone()), self.n_head); // [B, H, T, Dh]
        let (q, k, v) = (heads(&self.query), heads(&self.key), heads(&self.value));
        let (ctx, probs) = attend(q, k, v, how.into(), &self.attn_dropout); // [B, H, T, Dh]
        (self.after_attention(x, ctx), probs)
    }

    /// Output projection, residual + LayerNorm and the feed-forward part:
    /// `x` `[B, T, D]`, attention context `[B, H, T, Dh]` → `[B, T, D]`.
    fn after_attention(&self, x: Tensor<3>, ctx: Tensor<4>) -> Tensor<3> {
        let a = self
            .attn_output_dropout
            .forward(self.attn_output.forward(merge_heads(ctx))); // [B, T, D]
        let x = self.attn_layer_norm.forward(x + a); // [B, T, D]
        let hidden = gelu(self.intermediate.forward(x.clone())); // [B, T, I]
        let y = self.output_dropout.forward(self.output.forward(hidden)); // [B, T, D]
        self.output_layer_norm.forward(x + y)
    }
}

/// BERT encoder + pooler (HF `BertModel`).
#[derive(Module, Debug)]
pub struct BertModel {
    /// `[V, D]`, also the MLM decoder (tied)
    pub word_embeddings: Embedding,
    /// `[P, D]`
    pub position_embeddings: Embedding,
    /// `[type_vocab_size, D]`
    pub token_type_embeddings: Embedding,
    pub embeddings_layer_norm: LayerNorm,
    pub embeddings_dropout: Dropout,
    pub layer: Vec<BertLayer>,
    /// `[D, D]`
    pub pooler: Linear,
}

/// MLM and NSP heads (HF `BertPreTrainingHeads`, keys `cls.*`).
#[derive(Module, Debug)]
pub struct PreTrainingHeads {
    /// `cls.predictions.transform.dense`: `[D, D]`
    pub mlm_transform: Linear,
    /// `cls.predictions.transform.LayerNorm`
    pub mlm_layer_norm: LayerNorm,
    /// `cls.predictions.bias`: `[V]`
    pub mlm_bias: Param<Tensor<1>>,
    /// `cls.seq_relationship`: `[D, 2]`
    pub nsp: Linear,
}

/// BERT with MLM and NSP heads (HF `BertForPreTraining`); the MLM decoder is tied to
/// `bert.word_embeddings`.
#[derive(Module, Debug)]
pub struct BertForPreTraining {
    pub bert: BertModel,
    pub cls: PreTrainingHeads,
}

/// Output of [`BertModel::forward`].
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// Last layer `[B, T, D]`.
    pub last_hidden_state: Tensor<3>,
    /// `tanh(pooler(x[:, 0]))`: `[B, D]`.
    pub pooled: Tensor<2>,
    /// `num_hidden_layers + 1` tensors `[B, T, D]` (embeddings, then every layer) when
    /// requested, as HF `output_hidden_states`.
    pub hidden_states: Vec<Tensor<3>>,
    /// `[B, H, T, T]` per layer when requested.
    pub attentions: Vec<Tensor<4>>,
}

impl BertModel {
    /// Encoder + pooler.
    ///
    /// - `input_ids`, `token_type_ids`: `[B, T]` (`token_type_ids = None` means all 0)
    /// - `attention_mask`: optional `[B, T]`, `1` = token, `0` = padding
    ///
    /// # Panics
    ///
    /// If `T > max_position_embeddings`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
        attention_mask: Option<Tensor<2, Int>>,
        opts: OutputOptions,
    ) -> BertOutput {
        let [b, t] = input_ids.dims();
        let [n_positions, _] = self.position_embeddings.weight.val().dims();
        assert!(
            t <= n_positions,
            "sequence length {t} exceeds max_position_embeddings {n_positions}"
        );
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]); // [1, T]
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([b, t], &device)); // [B, T]
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types); // [B, T, D]
        let mut x = self
            .embeddings_dropout
            .forward(self.embeddings_layer_norm.forward(x));
        let padding = attention_mask.map(padding_mask); // [B, T]
                                                        // The dense mask is only built when some layer attends densely.
        let dense = if self.layer.iter().any(|layer| layer.sparse.is_none()) {
            combine_masks(None, padding.clone(), b, t) // [B, 1, T, T]
        } else {
            None
        };

        let mut hidden_states = Vec::new();
        let mut attentions = Vec::new();
        for layer in &self.layer {
            if opts.hidden_states {
                hidden_states.push(x.clone());
            }
            let how = Attend {
                mask: layer_mask(layer.sparse.as_ref(), &dense, false, &padding),
                cache: None,
                maps: opts.attentions,
            };
            let (y, probs) = layer.forward(x, how);
            x = y;
            if let (true, Some(probs)) = (opts.attentions, probs) {
                attentions.push(probs);
            }
        }
        if opts.hidden_states {
            hidden_states.push(x.clone());
        }
        let [_, _, d] = x.dims();
        let first = x.clone().narrow(1, 0, 1).reshape([b, d]); // [B, D]
        let pooled = self.pooler.forward(first).tanh(); // [B, D]
        BertOutput {
            last_hidden_state: x,
            pooled,
            hidden_states,
            attentions,
        }
    }
}

impl BertForPreTraining {
    /// MLM logits from the last hidden state: `[B, T, D]` → `[B, T, V]`.
    pub fn mlm_logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = hidden.dims();
        let h = self
            .cls
            .mlm_layer_norm
            .forward(gelu(self.cls.mlm_transform.forward(hidden))); // [B, T, D]
        let word = self.bert.word_embeddings.weight.val(); // [V, D]
        let [v, _] = word.dims();
        let logits = h.reshape([b * t, d]).matmul(word.transpose()) // [B*T, V]
            + self.cls.mlm_bias.val().reshape([1, v]);
        logits.reshape([b, t, v])
    }

    /// NSP logits from the pooled output: `[B, D]` → `[B, 2]` (index 0 = "is next").
    pub fn nsp_logits(&self, pooled: Tensor<2>) -> Tensor<2> {
        self.cls.nsp.forward(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::BackboneConfig;

    #[test]
    fn pruned_heads_round_trip_and_shrink_their_layers() {
        let mut c = BertConfig::new(50, 32, 2, 4, 48);
        c.pruned_heads = BTreeMap::from([(1, vec![0, 3])]);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""pruned_heads":{"1":[0,3]}"#), "{json}");
        // Directly and through the untagged enum (which buffers the JSON first).
        assert_eq!(serde_json::from_str::<BertConfig>(&json).unwrap(), c);
        assert_eq!(
            serde_json::from_str::<BackboneConfig>(&json).unwrap(),
            BackboneConfig::Bert(c.clone())
        );
        let m = c.init_model(&Device::flex()).unwrap();
        assert_eq!(m.layer[0].query.weight.dims(), [32, 32]);
        assert_eq!(m.layer[1].query.weight.dims(), [32, 16]);
        assert_eq!(m.layer[1].attn_output.weight.dims(), [16, 32]);
        assert_eq!((m.layer[0].n_head, m.layer[1].n_head), (4, 2));

        let bad = |heads: BTreeMap<usize, Vec<usize>>| {
            let mut b = c.clone();
            b.pruned_heads = heads;
            b.validate().unwrap_err().to_string()
        };
        assert!(bad(BTreeMap::from([(2, vec![0])])).contains("layer 2 does not exist"));
        assert!(bad(BTreeMap::from([(0, vec![4])])).contains("no head 4"));
        assert!(bad(BTreeMap::from([(0, vec![1, 1])])).contains("twice"));
        assert!(bad(BTreeMap::from([(0, vec![0, 1, 2, 3])])).contains("at least one must stay"));
        let e = serde_json::from_str::<BertConfig>(&json.replace(r#""1":"#, r#""x":"#));
        assert!(e.unwrap_err().to_string().contains("layer key"));
    }
}

//! BART encoder-decoder (HF `BartForConditionalGeneration` layout).
//!
//! Post-LayerNorm encoder and decoder, GELU (erf, HF `"gelu"`), one token embedding shared by
//! encoder, decoder and LM head, learned positions with HF's offset of 2, a LayerNorm on the
//! embeddings, cross-attention in every decoder layer, and a (frozen) `final_logits_bias`:
//!
//! ```text
//! encoder:  x = LN_emb(shared[ids]·s + enc_pos[2..T+2])          [B, S, D]
//!           for each layer:  x = LN(x + self_attn(x, padding));  x = LN(x + fc2(gelu(fc1(x))))
//! decoder:  y = LN_emb(shared[dec_ids]·s + dec_pos[2..T+2])      [B, T, D]
//!           for each layer:  y = LN(y + self_attn(y, causal + padding))
//!                            y = LN(y + cross_attn(q = y, kv = x, encoder padding))
//!                            y = LN(y + fc2(gelu(fc1(y))))
//! logits = y · sharedᵀ + final_logits_bias                         [B, T, V]
//! ```
//!
//! `s` is `sqrt(d_model)` with `scale_embedding`, else 1. Field names follow the HF checkpoint
//! (`model.shared`, `model.encoder.layers.{i}.self_attn.q_proj`, ...); HF's `nn.Linear` stores
//! `[out, in]`, so the weight map in [`crate::hf`] (`hf/bart.rs`) transposes every dense weight
//! on load and save.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::gelu;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::attention::{
    causal_mask, combine_masks, dense_attention, merge_heads, padding_mask, split_heads,
};
use crate::error::ModelError;
use crate::output::OutputOptions;

/// HF's `BartLearnedPositionalEmbedding` offset: position `i` reads row `i + 2`.
pub const POSITION_OFFSET: usize = 2;

/// Label value ignored by the loss (PyTorch `CrossEntropyLoss(ignore_index=-100)`).
pub const IGNORE_LABEL: i64 = -100;

/// BART configuration. Field names and defaults mirror HF `BartConfig` / `config.json`;
/// unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BartConfig {
    /// Always `"bart"`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    /// Longest sequence; the position tables have `max_position_embeddings + 2` rows.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// `D`
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    /// Only `"gelu"` (erf) is supported.
    #[serde(default = "default_act")]
    pub activation_function: String,
    /// Dropout after the embeddings, attention outputs and `fc2`.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Dropout on the attention probabilities.
    #[serde(default)]
    pub attention_dropout: f64,
    /// Dropout after the activation in the feed-forward block.
    #[serde(default)]
    pub activation_dropout: f64,
    /// Std of the normal init.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Token embeddings are multiplied by `sqrt(d_model)` when `true`.
    #[serde(default)]
    pub scale_embedding: bool,
    /// Must be 0 (LayerDrop is not implemented).
    #[serde(default)]
    pub encoder_layerdrop: f64,
    /// Must be 0 (LayerDrop is not implemented).
    #[serde(default)]
    pub decoder_layerdrop: f64,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_bos")]
    pub bos_token_id: Option<u32>,
    #[serde(default = "default_eos")]
    pub eos_token_id: Option<u32>,
    /// First decoder input ([`shift_tokens_right`]).
    #[serde(default = "default_eos_u32")]
    pub decoder_start_token_id: u32,
    /// Kept so that it round-trips through `config.json` (used by HF generation only).
    #[serde(default = "default_eos")]
    pub forced_eos_token_id: Option<u32>,
    /// Only tied embeddings are supported (encoder, decoder and LM head share `shared`).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Must be `true`.
    #[serde(default = "default_true")]
    pub is_encoder_decoder: bool,
}

fn default_model_type() -> String {
    "bart".into()
}
fn default_max_pos() -> usize {
    1024
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_std() -> f64 {
    0.02
}
fn default_pad() -> u32 {
    1
}
fn default_bos() -> Option<u32> {
    Some(0)
}
fn default_eos() -> Option<u32> {
    Some(2)
}
fn default_eos_u32() -> u32 {
    2
}
fn default_true() -> bool {
    true
}

/// LayerNorm epsilon: HF BART uses `nn.LayerNorm`'s default.
const LN_EPS: f64 = 1e-5;

impl BartConfig {
    /// HF defaults for everything but the sizes (same sizes in encoder and decoder).
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        layers: usize,
        attention_heads: usize,
        ffn_dim: usize,
    ) -> Self {
        Self {
            model_type: default_model_type(),
            vocab_size,
            max_position_embeddings: default_max_pos(),
            d_model,
            encoder_layers: layers,
            decoder_layers: layers,
            encoder_attention_heads: attention_heads,
            decoder_attention_heads: attention_heads,
            encoder_ffn_dim: ffn_dim,
            decoder_ffn_dim: ffn_dim,
            activation_function: default_act(),
            dropout: default_dropout(),
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: default_init_std(),
            scale_embedding: false,
            encoder_layerdrop: 0.0,
            decoder_layerdrop: 0.0,
            pad_token_id: default_pad(),
            bos_token_id: default_bos(),
            eos_token_id: default_eos(),
            decoder_start_token_id: default_eos_u32(),
            forced_eos_token_id: default_eos(),
            tie_word_embeddings: true,
            is_encoder_decoder: true,
        }
    }

    /// Preset `bart-tiny`: 2 + 2 layers, d_model 128, 4 heads, ffn 512, 256 positions.
    pub fn tiny(vocab_size: usize) -> Self {
        let mut c = Self::new(vocab_size, 128, 2, 4, 512);
        c.max_position_embeddings = 256;
        c
    }

    /// Sets `dropout`, `attention_dropout` and `activation_dropout`.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self.attention_dropout = p;
        self.activation_dropout = p;
        self
    }

    /// Token-embedding multiplier: `sqrt(d_model)` with `scale_embedding`, else 1.
    pub fn embed_scale(&self) -> f64 {
        if self.scale_embedding {
            (self.d_model as f64).sqrt()
        } else {
            1.0
        }
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.model_type != "bart" {
            return bad(format!(
                "model_type is {:?}, expected \"bart\"",
                self.model_type
            ));
        }
        let sizes = [
            self.vocab_size,
            self.max_position_embeddings,
            self.encoder_layers,
            self.decoder_layers,
            self.encoder_attention_heads,
            self.decoder_attention_heads,
            self.encoder_ffn_dim,
            self.decoder_ffn_dim,
        ];
        if sizes.contains(&0) {
            return bad("all sizes must be > 0".into());
        }
        for heads in [self.encoder_attention_heads, self.decoder_attention_heads] {
            if self.d_model == 0 || self.d_model % heads != 0 {
                return bad(format!(
                    "d_model ({}) must be a positive multiple of the attention heads ({heads})",
                    self.d_model
                ));
            }
        }
        if self.activation_function != "gelu" {
            return bad(format!(
                "activation_function {:?} is not supported (only \"gelu\")",
                self.activation_function
            ));
        }
        if !self.tie_word_embeddings {
            return bad("untied word embeddings are not supported".into());
        }
        if !self.is_encoder_decoder {
            return bad("is_encoder_decoder must be true".into());
        }
        if self.encoder_layerdrop != 0.0 || self.decoder_layerdrop != 0.0 {
            return bad("LayerDrop is not supported (encoder/decoder_layerdrop must be 0)".into());
        }
        for (name, id) in [
            ("pad_token_id", self.pad_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
        ] {
            if id as usize >= self.vocab_size {
                return bad(format!("{name} = {id} is not < vocab_size"));
            }
        }
        for (name, p) in [
            ("dropout", self.dropout),
            ("attention_dropout", self.attention_dropout),
            ("activation_dropout", self.activation_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} = {p} is not in [0, 1)"));
            }
        }
        Ok(())
    }

    /// Randomly initialised model, as HF `_init_weights`: normal(0, `init_std`) weights and
    /// embeddings (the `pad_token_id` row of `shared` zeroed), zero biases, unit LayerNorm,
    /// zero `final_logits_bias`.
    pub fn init(&self, device: &Device) -> Result<BartForConditionalGeneration, ModelError> {
        let mut model = self.init_lazy(device)?;
        let d = self.d_model;
        let shared = &mut model.model.shared;
        // HF zeroes the padding row of the token embedding (`padding_idx`). Rebuilt from host
        // data so that the new value is a leaf on an autodiff device.
        let mut values = shared
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| ModelError::TensorData(format!("{e:?}")))?; // [V * D]
        let pad = self.pad_token_id as usize;
        values[pad * d..(pad + 1) * d].fill(0.0);
        let weight = Tensor::<2>::from_data(TensorData::new(values, [self.vocab_size, d]), device);
        let mut param = Param::from_tensor(weight);
        param.id = shared.weight.id;
        shared.weight = param;
        Ok(model)
    }

    /// The model with burn's lazily initialised parameters (nothing allocated until used; the
    /// padding row of `shared` is not zeroed): what a checkpoint fills.
    pub(crate) fn init_lazy(
        &self,
        device: &Device,
    ) -> Result<BartForConditionalGeneration, ModelError> {
        self.validate()?;
        let std = self.init_std;
        let d = self.d_model;
        let linear = |d_in: usize, d_out: usize| {
            let mut l = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let ln = || LayerNormConfig::new(d).with_epsilon(LN_EPS).init(device);
        let emb = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
        };
        let dropout = || DropoutConfig::new(self.dropout).init();
        let attention = |n_head: usize| BartAttention {
            q_proj: linear(d, d),
            k_proj: linear(d, d),
            v_proj: linear(d, d),
            out_proj: linear(d, d),
            dropout: DropoutConfig::new(self.attention_dropout).init(),
            n_head,
        };
        let ffn = |d_ffn: usize| (linear(d, d_ffn), linear(d_ffn, d));

        let encoder_layers = (0..self.encoder_layers)
            .map(|_| {
                let (fc1, fc2) = ffn(self.encoder_ffn_dim);
                BartEncoderLayer {
                    self_attn: attention(self.encoder_attention_heads),
                    self_attn_layer_norm: ln(),
                    fc1,
                    fc2,
                    final_layer_norm: ln(),
                    dropout: dropout(),
                    activation_dropout: DropoutConfig::new(self.activation_dropout).init(),
                }
            })
            .collect();
        let decoder_layers = (0..self.decoder_layers)
            .map(|_| {
                let (fc1, fc2) = ffn(self.decoder_ffn_dim);
                BartDecoderLayer {
                    self_attn: attention(self.decoder_attention_heads),
                    self_attn_layer_norm: ln(),
                    encoder_attn: attention(self.decoder_attention_heads),
                    encoder_attn_layer_norm: ln(),
                    fc1,
                    fc2,
                    final_layer_norm: ln(),
                    dropout: dropout(),
                    activation_dropout: DropoutConfig::new(self.activation_dropout).init(),
                }
            })
            .collect();

        let shared = emb(self.vocab_size);
        let n_pos = self.max_position_embeddings + POSITION_OFFSET;
        Ok(BartForConditionalGeneration {
            model: BartModel {
                shared,
                encoder: BartEncoder {
                    embed_positions: emb(n_pos),
                    layernorm_embedding: ln(),
                    layers: encoder_layers,
                    dropout: dropout(),
                    embed_scale: self.embed_scale(),
                },
                decoder: BartDecoder {
                    embed_positions: emb(n_pos),
                    layernorm_embedding: ln(),
                    layers: decoder_layers,
                    dropout: dropout(),
                    embed_scale: self.embed_scale(),
                },
            },
            final_logits_bias: Initializer::Zeros.init([1, self.vocab_size], device),
        })
    }
}

/// Multi-head attention (HF `BartAttention`), used as self-attention and as cross-attention.
#[derive(Module, Debug)]
pub struct BartAttention {
    /// `[D, D]` each (stored transposed in HF)
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    /// On the attention probabilities.
    pub dropout: Dropout,
    pub n_head: usize,
}

impl BartAttention {
    /// Queries from `x [B, Tq, D]`, keys and values from `kv [B, Tk, D]` (`kv = x` for
    /// self-attention); `mask` `[B, 1, Tq, Tk]` or `[B, 1, 1, Tk]`, `true` = masked.
    ///
    /// Returns (`[B, Tq, D]`, attention probabilities `[B, H, Tq, Tk]` before dropout).
    pub fn forward(
        &self,
        x: Tensor<3>,
        kv: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
    ) -> (Tensor<3>, Tensor<4>) {
        let heads = |l: &Linear, src: Tensor<3>| split_heads(l.forward(src), self.n_head);
        let q = heads(&self.q_proj, x); // [B, H, Tq, Dh]
        let k = heads(&self.k_proj, kv.clone()); // [B, H, Tk, Dh]
        let v = heads(&self.v_proj, kv); // [B, H, Tk, Dh]
        let (ctx, probs) = dense_attention(q, k, v, mask, Some(&self.dropout)); // [B, H, Tq, Dh]
        (self.out_proj.forward(merge_heads(ctx)), probs)
    }
}

/// One post-LN encoder layer (HF `BartEncoderLayer`).
#[derive(Module, Debug)]
pub struct BartEncoderLayer {
    pub self_attn: BartAttention,
    pub self_attn_layer_norm: LayerNorm,
    /// `[D, F]`
    pub fc1: Linear,
    /// `[F, D]`
    pub fc2: Linear,
    pub final_layer_norm: LayerNorm,
    pub dropout: Dropout,
    pub activation_dropout: Dropout,
}

impl BartEncoderLayer {
    /// `[B, S, D]` → (`[B, S, D]`, attention probs `[B, H, S, S]`)
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> (Tensor<3>, Tensor<4>) {
        let (a, probs) = self.self_attn.forward(x.clone(), x.clone(), mask);
        let x = self
            .self_attn_layer_norm
            .forward(x + self.dropout.forward(a)); // [B, S, D]
        let y = ffn(&self.fc1, &self.fc2, &self.activation_dropout, x.clone()); // [B, S, D]
        let x = self.final_layer_norm.forward(x + self.dropout.forward(y)); // [B, S, D]
        (x, probs)
    }
}

/// `fc2(dropout(gelu(fc1(x))))`: `[B, T, D]` → `[B, T, F]` → `[B, T, D]`.
fn ffn(fc1: &Linear, fc2: &Linear, activation_dropout: &Dropout, x: Tensor<3>) -> Tensor<3> {
    let hidden = activation_dropout.forward(gelu(fc1.forward(x))); // [B, T, F]
    fc2.forward(hidden) // [B, T, D]
}

/// One post-LN decoder layer (HF `BartDecoderLayer`): causal self-attention, cross-attention
/// over the encoder output, feed-forward.
#[derive(Module, Debug)]
pub struct BartDecoderLayer {
    pub self_attn: BartAttention,
    pub self_attn_layer_norm: LayerNorm,
    /// Cross-attention: queries from the decoder, keys/values from the encoder.
    pub encoder_attn: BartAttention,
    pub encoder_attn_layer_norm: LayerNorm,
    /// `[D, F]`
    pub fc1: Linear,
    /// `[F, D]`
    pub fc2: Linear,
    pub final_layer_norm: LayerNorm,
    pub dropout: Dropout,
    pub activation_dropout: Dropout,
}

impl BartDecoderLayer {
    /// - `y`: `[B, T, D]`, `self_mask`: `[B, 1, T, T]` (causal + decoder padding)
    /// - `enc`: `[B, S, D]`, `cross_mask`: `[B, 1, 1, S]` (encoder padding)
    ///
    /// Returns (`[B, T, D]`, self-attention `[B, H, T, T]`, cross-attention `[B, H, T, S]`).
    pub fn forward(
        &self,
        y: Tensor<3>,
        self_mask: Option<Tensor<4, Bool>>,
        enc: Tensor<3>,
        cross_mask: Option<Tensor<4, Bool>>,
    ) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let (a, self_probs) = self.self_attn.forward(y.clone(), y.clone(), self_mask);
        let y = self
            .self_attn_layer_norm
            .forward(y + self.dropout.forward(a)); // [B, T, D]
        let (c, cross_probs) = self.encoder_attn.forward(y.clone(), enc, cross_mask);
        let y = self
            .encoder_attn_layer_norm
            .forward(y + self.dropout.forward(c)); // [B, T, D]
        let f = ffn(&self.fc1, &self.fc2, &self.activation_dropout, y.clone()); // [B, T, D]
        let y = self.final_layer_norm.forward(y + self.dropout.forward(f)); // [B, T, D]
        (y, self_probs, cross_probs)
    }
}

/// Embeds `ids [B, T]`: `LN(shared[ids] · scale + pos[2..T+2])` → `[B, T, D]`.
fn embed(
    shared: &Embedding,
    positions: &Embedding,
    layer_norm: &LayerNorm,
    scale: f64,
    ids: Tensor<2, Int>,
) -> Tensor<3> {
    let [_, t] = ids.dims();
    let [n_positions, _] = positions.weight.val().dims();
    assert!(
        t + POSITION_OFFSET <= n_positions,
        "sequence length {t} exceeds max_position_embeddings {}",
        n_positions - POSITION_OFFSET
    );
    let device = ids.device();
    let pos = Tensor::<1, Int>::arange(
        POSITION_OFFSET as i64..(t + POSITION_OFFSET) as i64,
        &device,
    )
    .reshape([1, t]); // [1, T]
    let tokens = shared.forward(ids); // [B, T, D]
    let tokens = if scale == 1.0 {
        tokens
    } else {
        tokens.mul_scalar(scale)
    };
    layer_norm.forward(tokens + positions.forward(pos)) // [B, T, D]
}

/// BART encoder (HF `BartEncoder`; the token embedding is [`BartModel::shared`]).
#[derive(Module, Debug)]
pub struct BartEncoder {
    /// `[max_position_embeddings + 2, D]`
    pub embed_positions: Embedding,
    pub layernorm_embedding: LayerNorm,
    pub layers: Vec<BartEncoderLayer>,
    pub dropout: Dropout,
    pub embed_scale: f64,
}

/// BART decoder (HF `BartDecoder`; the token embedding is [`BartModel::shared`]).
#[derive(Module, Debug)]
pub struct BartDecoder {
    /// `[max_position_embeddings + 2, D]`
    pub embed_positions: Embedding,
    pub layernorm_embedding: LayerNorm,
    pub layers: Vec<BartDecoderLayer>,
    pub dropout: Dropout,
    pub embed_scale: f64,
}

/// Encoder + decoder with the shared token embedding (HF `BartModel`, keys `model.*`).
#[derive(Module, Debug)]
pub struct BartModel {
    /// `[V, D]`: encoder and decoder token embedding, and the LM head.
    pub shared: Embedding,
    pub encoder: BartEncoder,
    pub decoder: BartDecoder,
}

/// BART with the LM head tied to `model.shared` (HF `BartForConditionalGeneration`).
#[derive(Module, Debug)]
pub struct BartForConditionalGeneration {
    pub model: BartModel,
    /// `[1, V]`, added to the logits. A buffer in HF: loaded and saved, never trained
    /// (detached in [`Self::forward`]).
    pub final_logits_bias: Param<Tensor<2>>,
}

/// Output of [`BartForConditionalGeneration::encode`].
#[derive(Debug, Clone)]
pub struct BartEncoderOutput {
    /// `[B, S, D]`
    pub last_hidden_state: Tensor<3>,
    /// `encoder_layers + 1` tensors `[B, S, D]` (embeddings, then every layer) when requested.
    pub hidden_states: Vec<Tensor<3>>,
    /// `[B, H, S, S]` per layer when requested.
    pub attentions: Vec<Tensor<4>>,
}

/// Output of [`BartForConditionalGeneration::forward`] (HF `Seq2SeqLMOutput`).
#[derive(Debug, Clone)]
pub struct BartOutput {
    /// `[B, T, V]`
    pub logits: Tensor<3>,
    /// Last decoder layer `[B, T, D]`.
    pub decoder_last_hidden_state: Tensor<3>,
    /// `[B, S, D]`
    pub encoder_last_hidden_state: Tensor<3>,
    /// `encoder_layers + 1` tensors `[B, S, D]` when requested, else empty.
    pub encoder_hidden_states: Vec<Tensor<3>>,
    /// `encoder_layers` tensors `[B, H, S, S]` when requested, else empty.
    pub encoder_attentions: Vec<Tensor<4>>,
    /// `decoder_layers + 1` tensors `[B, T, D]` (embeddings, then every layer) when requested.
    pub decoder_hidden_states: Vec<Tensor<3>>,
    /// `decoder_layers` tensors `[B, H, T, T]` when requested.
    pub decoder_attentions: Vec<Tensor<4>>,
    /// `decoder_layers` tensors `[B, H, T, S]` when requested.
    pub cross_attentions: Vec<Tensor<4>>,
}

impl BartForConditionalGeneration {
    /// Runs the encoder.
    ///
    /// - `input_ids`: `[B, S]`, `S <= max_position_embeddings`
    /// - `attention_mask`: optional `[B, S]`, `1` = token, `0` = padding
    ///
    /// # Panics
    ///
    /// If `S > max_position_embeddings` (as HF, which raises).
    pub fn encode(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        opts: OutputOptions,
    ) -> BartEncoderOutput {
        let [b, s] = input_ids.dims();
        let enc = &self.model.encoder;
        let x = embed(
            &self.model.shared,
            &enc.embed_positions,
            &enc.layernorm_embedding,
            enc.embed_scale,
            input_ids,
        ); // [B, S, D]
        let mut x = enc.dropout.forward(x);
        let mask = combine_masks(None, attention_mask.map(padding_mask), b, s); // [B, 1, S, S]
        let mut hidden_states = Vec::new();
        let mut attentions = Vec::new();
        for layer in &enc.layers {
            if opts.hidden_states {
                hidden_states.push(x.clone());
            }
            let (y, probs) = layer.forward(x, mask.clone());
            x = y;
            if opts.attentions {
                attentions.push(probs);
            }
        }
        if opts.hidden_states {
            hidden_states.push(x.clone());
        }
        BartEncoderOutput {
            last_hidden_state: x,
            hidden_states,
            attentions,
        }
    }

    /// Full forward pass (teacher forcing).
    ///
    /// - `input_ids`, `attention_mask`: encoder input `[B, S]` (mask optional, `1` = token)
    /// - `decoder_input_ids`, `decoder_attention_mask`: decoder input `[B, T]`, usually
    ///   [`shift_tokens_right`] of the labels
    ///
    /// # Panics
    ///
    /// If `S` or `T` exceeds `max_position_embeddings`.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        decoder_input_ids: Tensor<2, Int>,
        decoder_attention_mask: Option<Tensor<2, Int>>,
        opts: OutputOptions,
    ) -> BartOutput {
        let [b, s] = input_ids.dims();
        let [_, t] = decoder_input_ids.dims();
        let device = input_ids.device();
        // Encoder padding as keys of the cross-attention: [B, S] -> [B, 1, 1, S].
        let cross_mask = attention_mask
            .clone()
            .map(|m| padding_mask(m).reshape([b, 1, 1, s]));
        let encoded = self.encode(input_ids, attention_mask, opts);
        let enc = encoded.last_hidden_state.clone(); // [B, S, D]

        let dec = &self.model.decoder;
        let y = embed(
            &self.model.shared,
            &dec.embed_positions,
            &dec.layernorm_embedding,
            dec.embed_scale,
            decoder_input_ids,
        ); // [B, T, D]
        let mut y = dec.dropout.forward(y);
        let self_mask = combine_masks(
            Some(causal_mask(t, &device)),
            decoder_attention_mask.map(padding_mask),
            b,
            t,
        ); // [B, 1, T, T]
        let mut decoder_hidden_states = Vec::new();
        let mut decoder_attentions = Vec::new();
        let mut cross_attentions = Vec::new();
        for layer in &dec.layers {
            if opts.hidden_states {
                decoder_hidden_states.push(y.clone());
            }
            let (out, self_probs, cross_probs) =
                layer.forward(y, self_mask.clone(), enc.clone(), cross_mask.clone());
            y = out;
            if opts.attentions {
                decoder_attentions.push(self_probs);
                cross_attentions.push(cross_probs);
            }
        }
        if opts.hidden_states {
            decoder_hidden_states.push(y.clone());
        }
        let logits = self.lm_logits(y.clone());
        BartOutput {
            logits,
            decoder_last_hidden_state: y,
            encoder_last_hidden_state: encoded.last_hidden_state,
            encoder_hidden_states: encoded.hidden_states,
            encoder_attentions: encoded.attentions,
            decoder_hidden_states,
            decoder_attentions,
            cross_attentions,
        }
    }

    /// LM head: `[B, T, D]` → `[B, T, V]` (`y · sharedᵀ + final_logits_bias`).
    pub fn lm_logits(&self, y: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = y.dims();
        let shared = self.model.shared.weight.val(); // [V, D]
        let [v, _] = shared.dims();
        let logits = y.reshape([b * t, d]).matmul(shared.transpose()) // [B*T, V]
            + self.final_logits_bias.val().detach(); // [1, V]
        logits.reshape([b, t, v])
    }
}

/// HF `shift_tokens_right`: decoder inputs from labels `[B, T]` — `decoder_start_token_id`
/// first, then `labels[:, :-1]`, with `-100` (ignored labels) replaced by `pad_token_id`.
pub fn shift_tokens_right(
    labels: Tensor<2, Int>,
    pad_token_id: i64,
    decoder_start_token_id: i64,
) -> Tensor<2, Int> {
    let [b, t] = labels.dims();
    let device = labels.device();
    let start = Tensor::<2, Int>::from_data(
        TensorData::new(vec![decoder_start_token_id; b], [b, 1]),
        &device,
    ); // [B, 1]
    let shifted = Tensor::cat(vec![start, labels.narrow(1, 0, t - 1)], 1); // [B, T]
    let ignored = shifted.clone().equal_elem(IGNORE_LABEL);
    shifted.mask_fill(ignored, pad_token_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_tokens_right_matches_hf() {
        let dev = Device::flex();
        let labels = Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 5, 6, 2, 0, 7, -100, -100], [2, 4]),
            &dev,
        );
        let got: Vec<i64> = shift_tokens_right(labels, 1, 2)
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(got, vec![2, 0, 5, 6, 2, 0, 7, 1]);
    }

    #[test]
    fn forward_shapes_and_outputs_on_request() {
        let dev = Device::flex();
        let mut config = BartConfig::new(20, 16, 1, 2, 32);
        config.decoder_layers = 2;
        config.max_position_embeddings = 8;
        let model = config.init(&dev).unwrap();
        let ids = Tensor::<2, Int>::from_data(TensorData::new((3..13i64).collect(), [2, 5]), &dev);
        let dec = Tensor::<2, Int>::from_data(TensorData::new((3..9i64).collect(), [2, 3]), &dev);
        let out = model.forward(
            ids.clone(),
            None,
            dec.clone(),
            None,
            OutputOptions::default(),
        );
        assert_eq!(out.logits.dims(), [2, 3, 20]);
        assert!(out.encoder_hidden_states.is_empty() && out.cross_attentions.is_empty());
        let opts = OutputOptions {
            hidden_states: true,
            attentions: true,
        };
        let out = model.forward(ids, None, dec, None, opts);
        assert_eq!(out.encoder_hidden_states.len(), 2);
        assert_eq!(out.decoder_hidden_states.len(), 3);
        assert_eq!(out.encoder_attentions[0].dims(), [2, 2, 5, 5]);
        assert_eq!(out.decoder_attentions[1].dims(), [2, 2, 3, 3]);
        assert_eq!(out.cross_attentions[1].dims(), [2, 2, 3, 5]);
        // The padding row of the shared embedding starts at zero, as HF initialises it.
        let pad: Vec<f32> = model
            .model
            .shared
            .weight
            .val()
            .narrow(0, 1, 1)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(pad.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn validate_rejects_unimplemented_variants() {
        let ok = BartConfig::new(20, 16, 1, 2, 32);
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.activation_function = "relu".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.tie_word_embeddings = false;
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.decoder_attention_heads = 3;
        assert!(c.validate().is_err());
        let mut c = ok;
        c.encoder_layerdrop = 0.1;
        assert!(c.validate().is_err());
    }
}

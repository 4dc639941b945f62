//! GPT-2 decoder (HF `GPT2LMHeadModel` layout).
//!
//! Pre-LayerNorm blocks, GELU with the tanh approximation (HF `gelu_new`), learned absolute
//! positions, and an LM head tied to the token embedding:
//!
//! ```text
//! x = wte[tokens] + wpe[0..T]
//! for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
//! logits = ln_f(x) · wteᵀ
//! ```
//!
//! Field names follow the HF checkpoint (`wte`, `h.{i}.attn.c_attn`, `ln_f`, ...), so the key
//! mapping in [`crate::hf`] is a rename of `gamma`/`beta` to `weight`/`bias` and nothing else.
//! GPT-2's `Conv1D` stores its weight as `[in, out]`, which is exactly burn's `Linear` layout:
//! no transpose on load or save.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{
    attend, causal_mask_after, combine_masks, layer_mask, merge_heads, padding_mask, split_heads,
    Attend, KvCache, SparseAttention,
};
use crate::error::ModelError;
use crate::output::OutputOptions;

/// GPT-2 configuration. Field names and defaults mirror HF `GPT2Config` / `config.json`;
/// unknown keys in a `config.json` are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Always `"gpt2"`; written to `config.json` so that HF `AutoConfig` picks GPT-2.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    /// Maximum sequence length (learned position table size).
    pub n_positions: usize,
    /// Hidden size `D`.
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// MLP hidden size; HF's `null` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// Only `"gelu_new"` (tanh approximation, as GPT-2) is supported.
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_pdrop")]
    pub resid_pdrop: f64,
    #[serde(default = "default_pdrop")]
    pub embd_pdrop: f64,
    #[serde(default = "default_pdrop")]
    pub attn_pdrop: f64,
    /// Std of the normal init (HF `initializer_range`).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Only tied embeddings are supported (GPT-2 layout).
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Special token ids, kept so that they round-trip through `config.json` (`null` if unset).
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Padding id; sequence classifiers find each row's last real token with it (HF
    /// `GPT2ForSequenceClassification`). Absent from GPT-2's own config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Must be `true` (scores divided by `sqrt(d_head)`); other HF variants are rejected.
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    /// Must be `false`; HF's optional extra `1 / (layer + 1)` attention scaling.
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Optional sparse attention pattern (a refinery extension; absent = dense attention).
    /// HF `transformers` ignores the key and would compute dense attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_attention: Option<SparseAttention>,
}

fn default_model_type() -> String {
    "gpt2".into()
}
fn default_activation() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_pdrop() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}
fn default_true() -> bool {
    true
}

impl GptConfig {
    /// A config with HF defaults for everything but the sizes.
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> Self {
        Self {
            model_type: default_model_type(),
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            activation_function: default_activation(),
            layer_norm_epsilon: default_eps(),
            resid_pdrop: default_pdrop(),
            embd_pdrop: default_pdrop(),
            attn_pdrop: default_pdrop(),
            initializer_range: default_init_range(),
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            pad_token_id: None,
            sparse_attention: None,
        }
    }

    /// Preset `gpt-tiny`: 4 layers, d=256, 4 heads, ctx 128 (the framework-benchmark size).
    pub fn tiny(vocab_size: usize) -> Self {
        Self::new(vocab_size, 128, 256, 4, 4)
    }

    /// Sets all three dropout probabilities.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.resid_pdrop = p;
        self.embd_pdrop = p;
        self.attn_pdrop = p;
        self
    }

    /// MLP hidden size.
    pub fn d_inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if self.model_type != "gpt2" {
            return bad(format!(
                "model_type is {:?}, expected \"gpt2\"",
                self.model_type
            ));
        }
        if self.vocab_size == 0 || self.n_positions == 0 || self.n_layer == 0 || self.n_head == 0 {
            return bad("vocab_size, n_positions, n_layer and n_head must be > 0".into());
        }
        if self.n_embd == 0 || self.n_embd % self.n_head != 0 {
            return bad(format!(
                "n_embd ({}) must be a positive multiple of n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if self.activation_function != "gelu_new" {
            return bad(format!(
                "activation_function {:?} is not supported (only \"gelu_new\")",
                self.activation_function
            ));
        }
        if !self.tie_word_embeddings {
            return bad("untied word embeddings are not supported".into());
        }
        if !self.scale_attn_weights || self.scale_attn_by_inverse_layer_idx {
            return bad(
                "only scale_attn_weights = true, scale_attn_by_inverse_layer_idx = false".into(),
            );
        }
        for (name, p) in [
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} = {p} is not in [0, 1)"));
            }
        }
        if let Some(sparse) = &self.sparse_attention {
            sparse.validate(self.n_positions)?;
        }
        Ok(())
    }

    /// Builds a randomly initialised model (normal(0, initializer_range) weights, zero biases,
    /// unit LayerNorm; like HF, `c_proj` weights use std / sqrt(2 * n_layer)).
    pub fn init(&self, device: &Device) -> Result<Gpt, ModelError> {
        self.validate()?;
        let std = self.initializer_range;
        let normal = |s: f64| Initializer::Normal { mean: 0.0, std: s };
        let linear = |d_in: usize, d_out: usize, s: f64| {
            let mut l = LinearConfig::new(d_in, d_out)
                .with_initializer(normal(s))
                .init(device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let ln = || {
            LayerNormConfig::new(self.n_embd)
                .with_epsilon(self.layer_norm_epsilon)
                .init(device)
        };
        let d = self.n_embd;
        let proj_std = std / (2.0 * self.n_layer as f64).sqrt();
        let h = (0..self.n_layer)
            .map(|_| Block {
                ln_1: ln(),
                attn: Attention {
                    c_attn: linear(d, 3 * d, std),
                    c_proj: linear(d, d, proj_std),
                    attn_dropout: DropoutConfig::new(self.attn_pdrop).init(),
                    resid_dropout: DropoutConfig::new(self.resid_pdrop).init(),
                    n_head: self.n_head,
                    sparse: self.sparse_attention.clone(),
                },
                ln_2: ln(),
                mlp: Mlp {
                    c_fc: linear(d, self.d_inner(), std),
                    c_proj: linear(self.d_inner(), d, proj_std),
                    dropout: DropoutConfig::new(self.resid_pdrop).init(),
                },
            })
            .collect();
        let emb = |n: usize| {
            EmbeddingConfig::new(n, d)
                .with_initializer(normal(std))
                .init(device)
        };
        Ok(Gpt {
            wte: emb(self.vocab_size),
            wpe: emb(self.n_positions),
            drop: DropoutConfig::new(self.embd_pdrop).init(),
            h,
            ln_f: ln(),
        })
    }
}

/// Causal multi-head self-attention (HF `GPT2Attention`).
#[derive(Module, Debug)]
pub struct Attention {
    /// Fused q, k, v projection: `[D, 3D]`.
    pub c_attn: Linear,
    /// Output projection: `[D, D]`.
    pub c_proj: Linear,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    pub n_head: usize,
    /// Sparse attention pattern of this layer (`None` = dense); not a parameter.
    #[module(skip)]
    pub sparse: Option<SparseAttention>,
}

impl Attention {
    /// The q, k, v heads `[B, H, T, Dh]` of `x` `[B, T, D]`: one fused `c_attn` projection.
    pub fn qkv(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [_, _, d] = x.dims();
        let qkv = self.c_attn.forward(x); // [B, T, 3D]
        let heads = |i: usize| split_heads(qkv.clone().narrow(2, i * d, d), self.n_head);
        (heads(0), heads(1), heads(2))
    }

    /// Output projection of an attention context `[B, H, T, Dh]` → `[B, T, D]`.
    pub fn project(&self, ctx: Tensor<4>) -> Tensor<3> {
        self.resid_dropout
            .forward(self.c_proj.forward(merge_heads(ctx)))
    }

    /// Causal self-attention of `x` `[B, T, D]` (see [`Attend`]: a dense mask or
    /// [`Attention::sparse`]'s pattern, an optional KV cache).
    ///
    /// Returns `[B, T, D]` and the attention probabilities `[B, H, T, T_past + T]` (see
    /// [`attend`] for when they are returned). Dropout hits the probabilities used for the
    /// values; the returned maps are the pre-dropout probabilities (as HF returns them in eval
    /// mode).
    pub fn forward<'a>(
        &self,
        x: Tensor<3>,
        how: impl Into<Attend<'a>>,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (q, k, v) = self.qkv(x);
        let (ctx, probs) = attend(q, k, v, how.into(), &self.attn_dropout); // [B, H, T, Dh]
        (self.project(ctx), probs)
    }
}

/// HF `gelu_new`: `0.5·x·(1 + tanh(z))` with `z = √(2/π)·(x + 0.044715·x³)`, computed as the
/// identical `x·sigmoid(2z)`. burn's `gelu_approximate` evaluates `powf` + `tanh` through scalar
/// libm and took 21% of a CPU training step; this form is 16% less CPU per step with the same
/// values (`gpt_parity` at 1e-4; docs/models.md "Speed").
pub fn gelu_new(x: Tensor<3>) -> Tensor<3> {
    const C: f64 = 2.0 * 0.797_884_560_802_865_4; // 2·√(2/π)
    let inner = (x.clone() * x.clone()) * (0.044715 * C) + C; // 2·√(2/π)·(1 + 0.044715·x²)
    x.clone() * sigmoid(x * inner) // [.., D]
}

/// Position-wise MLP (HF `GPT2MLP`): `c_proj(gelu_new(c_fc(x)))`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[D, D_inner]`
    pub c_fc: Linear,
    /// `[D_inner, D]`
    pub c_proj: Linear,
    pub dropout: Dropout,
}

impl Mlp {
    /// `[B, T, D]` → `[B, T, D]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = gelu_new(self.c_fc.forward(x)); // [B, T, D_inner]
        self.dropout.forward(self.c_proj.forward(hidden)) // [B, T, D]
    }
}

/// One pre-LN transformer block (HF `GPT2Block`).
#[derive(Module, Debug)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: Attention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    /// `[B, T, D]` → (`[B, T, D]`, attention probs `[B, H, T, T_past + T]`, see
    /// [`Attention::forward`]).
    pub fn forward<'a>(
        &self,
        x: Tensor<3>,
        how: impl Into<Attend<'a>>,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (a, probs) = self.attn.forward(self.ln_1.forward(x.clone()), how);
        let x = x + a; // [B, T, D]
        let x = x.clone() + self.mlp.forward(self.ln_2.forward(x)); // [B, T, D]
        (x, probs)
    }
}

/// GPT-2 language model (HF `GPT2LMHeadModel`, LM head tied to `wte`).
#[derive(Module, Debug)]
pub struct Gpt {
    /// Token embedding `[V, D]`, also the LM head.
    pub wte: Embedding,
    /// Position embedding `[n_positions, D]`.
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Block>,
    pub ln_f: LayerNorm,
}

/// Output of [`Gpt::forward_with`].
#[derive(Debug, Clone)]
pub struct GptOutput {
    /// `[B, T, V]`
    pub logits: Tensor<3>,
    /// `n_layer + 1` tensors `[B, T, D]` when requested, else empty.
    pub hidden_states: Vec<Tensor<3>>,
    /// `n_layer` tensors `[B, H, T, T]` when requested, else empty.
    pub attentions: Vec<Tensor<4>>,
}

impl Gpt {
    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.h.len()
    }

    /// `tokens [B, T]` → logits `[B, T, V]` (causal mask only).
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_with(tokens, None, OutputOptions::default())
            .logits
    }

    /// Full forward pass.
    ///
    /// - `tokens`: `[B, T]`, `T <= n_positions`
    /// - `attention_mask`: optional `[B, T]`, HF convention (`1` = token, `0` = padding key)
    ///
    /// # Panics
    ///
    /// If `T > n_positions` (as HF, which raises). Token ids must be `< vocab_size`.
    pub fn forward_with(
        &self,
        tokens: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        opts: OutputOptions,
    ) -> GptOutput {
        self.run(tokens, attention_mask, None, opts)
    }

    /// The one forward pass: `tokens [B, T]` at positions `past..past + T`, where `past` is
    /// the length of `cache` (0 without one); the new keys and values are appended to it.
    ///
    /// # Panics
    ///
    /// If `past + T > n_positions`, or with both a cache and an `attention_mask`.
    pub(crate) fn run(
        &self,
        tokens: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        mut cache: Option<&mut KvCache>,
        opts: OutputOptions,
    ) -> GptOutput {
        let [b, t] = tokens.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let [n_positions, _] = self.wpe.weight.val().dims();
        assert!(
            past + t <= n_positions,
            "sequence length {} exceeds n_positions {n_positions}",
            past + t
        );
        assert!(
            past == 0 || attention_mask.is_none(),
            "an attention mask with a KV cache is not supported"
        );
        let device = tokens.device();
        let positions =
            Tensor::<1, Int>::arange(past as i64..(past + t) as i64, &device).reshape([1, t]); // [1, T]
        let x = self.wte.forward(tokens) + self.wpe.forward(positions); // [B, T, D]
        let mut x = self.drop.forward(x);
        let padding = attention_mask.map(padding_mask); // [B, T]
                                                        // The dense mask is only built when some layer attends densely.
        let dense = if self.h.iter().any(|block| block.attn.sparse.is_none()) {
            if past == 0 {
                combine_masks(
                    Some(causal_mask_after(0, t, &device)),
                    padding.clone(),
                    b,
                    t,
                ) // [B, 1, T, T]
            } else {
                // A single new token sees every cached one.
                (t > 1).then(|| causal_mask_after(past, t, &device).reshape([1, 1, t, past + t]))
            }
        } else {
            None
        };

        let mut hidden_states = Vec::new();
        let mut attentions = Vec::new();
        for (i, block) in self.h.iter().enumerate() {
            if opts.hidden_states {
                hidden_states.push(x.clone());
            }
            let how = Attend {
                mask: layer_mask(block.attn.sparse.as_ref(), &dense, true, &padding),
                cache: cache.as_deref_mut().and_then(|c| c.layers.get_mut(i)),
                maps: opts.attentions,
            };
            let (y, probs) = block.forward(x, how);
            x = y;
            if let (true, Some(probs)) = (opts.attentions, probs) {
                attentions.push(probs);
            }
        }
        if let Some(cache) = cache {
            cache.len = past + t;
        }
        let x = self.ln_f.forward(x); // [B, T, D]
        if opts.hidden_states {
            hidden_states.push(x.clone());
        }
        let [_, _, d] = x.dims();
        let [v, _] = self.wte.weight.val().dims();
        let logits = x
            .reshape([b * t, d])
            .matmul(self.wte.weight.val().transpose()) // [B*T, V]
            .reshape([b, t, v]); // [B, T, V]
        GptOutput {
            logits,
            hidden_states,
            attentions,
        }
    }
}

//! The BART weight map (`BartForConditionalGeneration`; a bare `BartModel` save, without the
//! `model.` prefix, loads too).
//!
//! | HF key (`model.` prefix; bare in an HF `BartModel` save) | burn field | HF shape |
//! |---|---|---|
//! | `model.shared.weight` | `model.shared.weight` (also the LM head) | `[V, D]` |
//! | `model.{encoder,decoder}.embed_positions.weight` | `model.{enc,dec}oder.embed_positions.weight` | `[P + 2, D]` |
//! | `model.{encoder,decoder}.layernorm_embedding.{weight,bias}` | `.layernorm_embedding.{gamma,beta}` | `[D]` |
//! | `model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}` | `layers[i].self_attn.*` (transposed) | `[D, D]` / `[D]` |
//! | `model.encoder.layers.{i}.self_attn_layer_norm.*` | `layers[i].self_attn_layer_norm` | `[D]` |
//! | `model.encoder.layers.{i}.fc1.*` / `.fc2.*` | `layers[i].fc1` / `.fc2` (transposed) | `[F, D]` / `[D, F]` |
//! | `model.encoder.layers.{i}.final_layer_norm.*` | `layers[i].final_layer_norm` | `[D]` |
//! | `model.decoder.layers.{i}.self_attn.*`, `.self_attn_layer_norm.*` | as the encoder | |
//! | `model.decoder.layers.{i}.encoder_attn.{q,k,v,out}_proj.*` | `layers[i].encoder_attn.*` (transposed) | `[D, D]` / `[D]` |
//! | `model.decoder.layers.{i}.encoder_attn_layer_norm.*` | `layers[i].encoder_attn_layer_norm` | `[D]` |
//! | `model.decoder.layers.{i}.{fc1,fc2,final_layer_norm}.*` | as the encoder | |
//! | `final_logits_bias` (optional on load, zeros if absent, as HF) | `final_logits_bias` | `[1, V]` |
//! | `lm_head.weight`, `model.{encoder,decoder}.embed_tokens.weight` (optional) | — must equal `model.shared.weight` | `[V, D]` |
//!
//! PyTorch `nn.Linear` weights are `[out, in]`: transposed to burn's `[in, out]` on load and
//! back on save. Every other key is an error. A head is added as in [`super::bert`]: a struct
//! with the body `model: BartModel`, its map (`self.model.params(&mut vb.pp("model"))` plus
//! the head's lines) and an [`HfModel`] impl with `BASE_PREFIX = "model"`.

use std::path::Path;

use burn::tensor::Device;

use super::{HfConfig, HfModel, HfParams, Vb};
use crate::bart::{
    BartAttention, BartConfig, BartDecoderLayer, BartEncoderLayer, BartForConditionalGeneration,
    BartModel, POSITION_OFFSET,
};
use crate::error::ModelError;

impl HfConfig for BartConfig {
    fn validate(&self) -> Result<(), ModelError> {
        BartConfig::validate(self)
    }

    fn sizes(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            (
                "max_position_embeddings + 2",
                self.max_position_embeddings.saturating_add(POSITION_OFFSET),
            ),
        ]
    }

    fn layer_counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
        ]
    }
}

impl HfParams for BartAttention {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        vb.linear("q_proj", &mut self.q_proj);
        vb.linear("k_proj", &mut self.k_proj);
        vb.linear("v_proj", &mut self.v_proj);
        vb.linear("out_proj", &mut self.out_proj);
    }
}

impl HfParams for BartEncoderLayer {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        self.self_attn.params(&mut vb.pp("self_attn"));
        vb.layer_norm("self_attn_layer_norm", &mut self.self_attn_layer_norm);
        vb.linear("fc1", &mut self.fc1);
        vb.linear("fc2", &mut self.fc2);
        vb.layer_norm("final_layer_norm", &mut self.final_layer_norm);
    }
}

impl HfParams for BartDecoderLayer {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        self.self_attn.params(&mut vb.pp("self_attn"));
        vb.layer_norm("self_attn_layer_norm", &mut self.self_attn_layer_norm);
        self.encoder_attn.params(&mut vb.pp("encoder_attn"));
        vb.layer_norm("encoder_attn_layer_norm", &mut self.encoder_attn_layer_norm);
        vb.linear("fc1", &mut self.fc1);
        vb.linear("fc2", &mut self.fc2);
        vb.layer_norm("final_layer_norm", &mut self.final_layer_norm);
    }
}

impl HfParams for BartModel {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        vb.embedding("shared", &mut self.shared);
        let mut e = vb.pp("encoder");
        e.embedding("embed_positions", &mut self.encoder.embed_positions);
        e.layer_norm("layernorm_embedding", &mut self.encoder.layernorm_embedding);
        for (i, layer) in self.encoder.layers.iter_mut().enumerate() {
            layer.params(&mut e.pp(format!("layers.{i}")));
        }
        let mut d = vb.pp("decoder");
        d.embedding("embed_positions", &mut self.decoder.embed_positions);
        d.layer_norm("layernorm_embedding", &mut self.decoder.layernorm_embedding);
        for (i, layer) in self.decoder.layers.iter_mut().enumerate() {
            layer.params(&mut d.pp(format!("layers.{i}")));
        }
    }
}

impl HfParams for BartForConditionalGeneration {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        self.model.params(&mut vb.pp("model"));
        // A buffer in HF (`_keys_to_ignore_on_load_missing`): zeros when absent.
        vb.optional_matrix("final_logits_bias", &mut self.final_logits_bias);
        vb.tied("lm_head.weight", "model.shared.weight");
        vb.tied("model.encoder.embed_tokens.weight", "model.shared.weight");
        vb.tied("model.decoder.embed_tokens.weight", "model.shared.weight");
    }
}

impl HfModel for BartForConditionalGeneration {
    type Config = BartConfig;
    const ARCHITECTURE: &'static str = "BartForConditionalGeneration";
    const BASE_PREFIX: &'static str = "model";

    fn init_lazy(config: &BartConfig, device: &Device) -> Result<Self, ModelError> {
        config.init_lazy(device)
    }
}

/// Reads and validates `dir/config.json` as a BART config.
pub fn read_bart_config(dir: &Path) -> Result<BartConfig, ModelError> {
    super::read_config(dir)
}

/// Loads a BART checkpoint directory (`config.json` + `model.safetensors`) onto `device`.
/// Use `device.autodiff()` to fine-tune the loaded model.
pub fn load_bart(
    dir: &Path,
    device: &Device,
) -> Result<(BartConfig, BartForConditionalGeneration), ModelError> {
    super::load(dir, device)
}

/// Builds a BART for `config` and fills it from an HF-layout safetensors file: a
/// `BartForConditionalGeneration` save (`model.*` + `final_logits_bias`) or a bare `BartModel`
/// save (no prefix; `final_logits_bias` stays zero).
pub fn load_bart_weights(
    config: &BartConfig,
    path: &Path,
    device: &Device,
) -> Result<BartForConditionalGeneration, ModelError> {
    super::load_weights(config, path, device)
}

/// Saves `model` as an HF `BartForConditionalGeneration` checkpoint directory: `config.json`
/// and `model.safetensors` (`model.*` + `final_logits_bias`; the tied `lm_head.weight` and
/// `embed_tokens` copies are omitted, as `save_pretrained` does).
pub fn save_bart(
    model: &BartForConditionalGeneration,
    config: &BartConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    super::save(model, config, dir)
}

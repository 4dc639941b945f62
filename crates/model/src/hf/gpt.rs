//! The GPT-2 weight map (`GPT2LMHeadModel`; `GPT2Model` checkpoints, without `transformer.`,
//! load too).
//!
//! | HF key                                   | burn field                  | shape        |
//! |------------------------------------------|-----------------------------|--------------|
//! | `transformer.wte.weight`                 | `wte.weight`                | `[V, D]`     |
//! | `transformer.wpe.weight`                 | `wpe.weight`                | `[P, D]`     |
//! | `transformer.h.{i}.ln_1.weight` / `.bias`| `h[i].ln_1.gamma` / `.beta` | `[D]`        |
//! | `transformer.h.{i}.attn.c_attn.weight`   | `h[i].attn.c_attn.weight`   | `[D, 3D]`    |
//! | `transformer.h.{i}.attn.c_attn.bias`     | `h[i].attn.c_attn.bias`     | `[3D]`       |
//! | `transformer.h.{i}.attn.c_proj.*`        | `h[i].attn.c_proj.*`        | `[D, D]`     |
//! | `transformer.h.{i}.ln_2.*`               | `h[i].ln_2.gamma` / `.beta` | `[D]`        |
//! | `transformer.h.{i}.mlp.c_fc.*`           | `h[i].mlp.c_fc.*`           | `[D, 4D]`    |
//! | `transformer.h.{i}.mlp.c_proj.*`         | `h[i].mlp.c_proj.*`         | `[4D, D]`    |
//! | `transformer.ln_f.weight` / `.bias`      | `ln_f.gamma` / `.beta`      | `[D]`        |
//! | `lm_head.weight` (optional, tied)        | — (must equal `wte.weight`) | `[V, D]`     |
//! | `transformer.h.{i}.attn.bias`, `.attn.masked_bias` | — (causal-mask buffers of old checkpoints, ignored) | |
//!
//! GPT-2's `Conv1D` stores `[in, out]`, the same as burn's `Linear`: no transposes.
//!
//! **Adding a head.** `crate::hf_classify` does this for the sequence classifiers (one
//! `HfParams` impl for the body, one line per head). In general (e.g. HF
//! `GPT2ForSequenceClassification`: `transformer.*` + `score.weight`
//! `[num_labels, D]`, an `nn.Linear` without bias, and no `lm_head`): a struct with the body
//! `gpt: Gpt` and the head `score: Linear` (`LinearConfig::new(d, num_labels).with_bias(false)`),
//! then here:
//!
//! ```ignore
//! impl HfParams for GptForSequenceClassification {
//!     fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
//!         gpt_body(&mut self.gpt, &mut vb.pp("transformer"));
//!         vb.linear("score", &mut self.score); // [num_labels, D] in the file, no bias
//!     }
//! }
//! impl HfModel for GptForSequenceClassification {
//!     type Config = GptConfig; // with a `num_labels` field, listed in `HfConfig::sizes`
//!     const ARCHITECTURE: &'static str = "GPT2ForSequenceClassification";
//!     const BASE_PREFIX: &'static str = "transformer";
//!     fn init_lazy(config: &GptConfig, device: &Device) -> Result<Self, ModelError> { .. }
//! }
//! ```
//!
//! Then `hf::load::<GptForSequenceClassification>(dir, device)` and `hf::save(..)` work, with
//! every name and shape checked before anything is allocated. `init_lazy` must build the
//! parameters with burn's (lazy) initializers, not from eager tensors.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;

use super::{HfConfig, HfModel, HfParams, Vb};
use crate::error::ModelError;
use crate::gpt::{Block, Gpt, GptConfig};

impl HfConfig for GptConfig {
    fn validate(&self) -> Result<(), ModelError> {
        GptConfig::validate(self)
    }

    fn sizes(&self) -> Vec<(&'static str, usize)> {
        let mut sizes = vec![
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
        ];
        if let Some(n_inner) = self.n_inner {
            sizes.push(("n_inner", n_inner));
        }
        sizes
    }

    fn layer_counts(&self) -> Vec<(&'static str, usize)> {
        vec![("n_layer", self.n_layer)]
    }
}

impl HfParams for Block {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        vb.layer_norm("ln_1", &mut self.ln_1);
        let mut attn = vb.pp("attn");
        attn.conv1d("c_attn", &mut self.attn.c_attn);
        attn.conv1d("c_proj", &mut self.attn.c_proj);
        attn.buffer("bias");
        attn.buffer("masked_bias");
        vb.layer_norm("ln_2", &mut self.ln_2);
        let mut mlp = vb.pp("mlp");
        mlp.conv1d("c_fc", &mut self.mlp.c_fc);
        mlp.conv1d("c_proj", &mut self.mlp.c_proj);
    }
}

/// The `GPT2Model` keys of `gpt` (embeddings, blocks, final LayerNorm) under `vb`.
pub(crate) fn gpt_body<'m>(gpt: &'m mut Gpt, vb: &mut Vb<'_, 'm>) {
    vb.embedding("wte", &mut gpt.wte);
    vb.embedding("wpe", &mut gpt.wpe);
    for (i, block) in gpt.h.iter_mut().enumerate() {
        block.params(&mut vb.pp(format!("h.{i}")));
    }
    vb.layer_norm("ln_f", &mut gpt.ln_f);
}

impl HfParams for Gpt {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        gpt_body(self, &mut vb.pp("transformer"));
        vb.tied("lm_head.weight", "transformer.wte.weight");
    }
}

impl HfModel for Gpt {
    type Config = GptConfig;
    const ARCHITECTURE: &'static str = "GPT2LMHeadModel";
    const BASE_PREFIX: &'static str = "transformer";

    fn init_lazy(config: &GptConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }
}

/// Reads and validates `dir/config.json` as a GPT-2 config.
pub fn read_gpt_config(dir: &Path) -> Result<GptConfig, ModelError> {
    super::read_config(dir)
}

/// Loads a GPT-2 checkpoint directory (`config.json` + `model.safetensors`) onto `device`.
/// Use `device.autodiff()` to fine-tune the loaded model.
pub fn load_gpt(dir: &Path, device: &Device) -> Result<(GptConfig, Gpt), ModelError> {
    super::load(dir, device)
}

/// Builds a GPT-2 for `config` and fills it from an HF-layout safetensors file.
pub fn load_gpt_weights(
    config: &GptConfig,
    path: &Path,
    device: &Device,
) -> Result<Gpt, ModelError> {
    super::load_weights(config, path, device)
}

/// Saves `model` as an HF `GPT2LMHeadModel` checkpoint directory: `config.json` and
/// `model.safetensors` (`transformer.*` keys; `lm_head.weight` is omitted, it is tied to `wte`).
pub fn save_gpt(model: &Gpt, config: &GptConfig, dir: &Path) -> Result<(), ModelError> {
    super::save(model, config, dir)
}

/// The burn parameter id of every parameter, by HF name without the `transformer.` prefix.
/// burn's optimizer state is keyed by these ids, so a training checkpoint stores them and
/// [`set_gpt_param_ids`] restores them on resume.
pub fn gpt_param_ids(model: &Gpt) -> Vec<(String, u64)> {
    super::param_ids(model)
        .into_iter()
        .map(|(name, id)| (unprefixed(&name).to_string(), id))
        .collect()
}

/// Restores parameter ids saved by [`gpt_param_ids`]; every parameter must be listed.
pub fn set_gpt_param_ids(model: &mut Gpt, ids: &HashMap<String, u64>) -> Result<(), ModelError> {
    let ids = ids
        .iter()
        .map(|(name, &id)| (format!("{}.{name}", Gpt::BASE_PREFIX), id))
        .collect();
    super::set_param_ids(model, &ids)
}

fn unprefixed(name: &str) -> &str {
    name.strip_prefix("transformer.").unwrap_or(name)
}

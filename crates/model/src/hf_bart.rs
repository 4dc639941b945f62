//! HF-compatible BART checkpoints (`BartForConditionalGeneration`): a directory with
//! `config.json` + `model.safetensors`, following the conventions of [`crate::hf`] (strict key
//! set, every shape checked against the config, errors naming file and key, F32 only).
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
//! back on save. Every other key is an error.

use std::path::Path;

use burn::tensor::Device;

use crate::bart::{BartAttention, BartConfig, BartForConditionalGeneration, BartModel};
use crate::error::ModelError;
use crate::hf::{
    push_layer_norm, push_linear_t, read_config, read_file, save_checkpoint, Checkpoint, Slot,
    WEIGHTS_FILE,
};

fn push_attention<'a>(out: &mut Vec<(String, Slot<'a>)>, prefix: &str, a: &'a mut BartAttention) {
    push_linear_t(out, &format!("{prefix}.q_proj"), &mut a.q_proj);
    push_linear_t(out, &format!("{prefix}.k_proj"), &mut a.k_proj);
    push_linear_t(out, &format!("{prefix}.v_proj"), &mut a.v_proj);
    push_linear_t(out, &format!("{prefix}.out_proj"), &mut a.out_proj);
}

/// `BartModel` parameters by HF name, without the `model.` prefix.
fn bart_model_slots(m: &mut BartModel) -> Vec<(String, Slot<'_>)> {
    let mut out = vec![(
        "shared.weight".to_string(),
        Slot::Matrix(&mut m.shared.weight),
    )];
    let e = &mut m.encoder;
    out.push((
        "encoder.embed_positions.weight".into(),
        Slot::Matrix(&mut e.embed_positions.weight),
    ));
    push_layer_norm(
        &mut out,
        "encoder.layernorm_embedding",
        &mut e.layernorm_embedding,
    );
    for (i, l) in e.layers.iter_mut().enumerate() {
        let p = format!("encoder.layers.{i}");
        push_attention(&mut out, &format!("{p}.self_attn"), &mut l.self_attn);
        push_layer_norm(
            &mut out,
            &format!("{p}.self_attn_layer_norm"),
            &mut l.self_attn_layer_norm,
        );
        push_linear_t(&mut out, &format!("{p}.fc1"), &mut l.fc1);
        push_linear_t(&mut out, &format!("{p}.fc2"), &mut l.fc2);
        push_layer_norm(
            &mut out,
            &format!("{p}.final_layer_norm"),
            &mut l.final_layer_norm,
        );
    }
    let d = &mut m.decoder;
    out.push((
        "decoder.embed_positions.weight".into(),
        Slot::Matrix(&mut d.embed_positions.weight),
    ));
    push_layer_norm(
        &mut out,
        "decoder.layernorm_embedding",
        &mut d.layernorm_embedding,
    );
    for (i, l) in d.layers.iter_mut().enumerate() {
        let p = format!("decoder.layers.{i}");
        push_attention(&mut out, &format!("{p}.self_attn"), &mut l.self_attn);
        push_layer_norm(
            &mut out,
            &format!("{p}.self_attn_layer_norm"),
            &mut l.self_attn_layer_norm,
        );
        push_attention(&mut out, &format!("{p}.encoder_attn"), &mut l.encoder_attn);
        push_layer_norm(
            &mut out,
            &format!("{p}.encoder_attn_layer_norm"),
            &mut l.encoder_attn_layer_norm,
        );
        push_linear_t(&mut out, &format!("{p}.fc1"), &mut l.fc1);
        push_linear_t(&mut out, &format!("{p}.fc2"), &mut l.fc2);
        push_layer_norm(
            &mut out,
            &format!("{p}.final_layer_norm"),
            &mut l.final_layer_norm,
        );
    }
    out
}

/// Reads and validates `dir/config.json` as a BART config.
pub fn read_bart_config(dir: &Path) -> Result<BartConfig, ModelError> {
    let config: BartConfig = read_config(dir)?;
    config.validate()?;
    Ok(config)
}

/// Loads a BART checkpoint directory (`config.json` + `model.safetensors`) onto `device`.
/// Use `device.autodiff()` to fine-tune the loaded model.
pub fn load_bart(
    dir: &Path,
    device: &Device,
) -> Result<(BartConfig, BartForConditionalGeneration), ModelError> {
    let config = read_bart_config(dir)?;
    let model = load_bart_weights(&config, &dir.join(WEIGHTS_FILE), device)?;
    Ok((config, model))
}

/// Builds a BART for `config` and fills it from an HF-layout safetensors file: a
/// `BartForConditionalGeneration` save (`model.*` + `final_logits_bias`) or a bare `BartModel`
/// save (no prefix; `final_logits_bias` stays zero).
pub fn load_bart_weights(
    config: &BartConfig,
    path: &Path,
    device: &Device,
) -> Result<BartForConditionalGeneration, ModelError> {
    let bytes = read_file(path)?;
    let ckpt = Checkpoint::parse(path, &bytes)?;
    let prefix = if ckpt.has("model.shared.weight") {
        "model."
    } else {
        ""
    };
    let mut model = config.init(device)?;
    let mut used = ckpt.fill(
        bart_model_slots(&mut model.model),
        |n| format!("{prefix}{n}"),
        device,
    )?;
    // A buffer in HF (`_keys_to_ignore_on_load_missing`): zeros when absent.
    if ckpt.has("final_logits_bias") {
        let bias = vec![(
            "final_logits_bias".to_string(),
            Slot::Matrix(&mut model.final_logits_bias),
        )];
        used.extend(ckpt.fill(bias, |n| n.to_string(), device)?);
    }
    let shared = format!("{prefix}shared.weight");
    let tied = [
        ("lm_head.weight".to_string(), shared.clone()),
        (
            format!("{prefix}encoder.embed_tokens.weight"),
            shared.clone(),
        ),
        (format!("{prefix}decoder.embed_tokens.weight"), shared),
    ];
    ckpt.check_rest(&used, |_| false, &tied)?;
    Ok(model)
}

/// Saves `model` as an HF `BartForConditionalGeneration` checkpoint directory: `config.json`
/// and `model.safetensors` (`model.*` + `final_logits_bias`; the tied `lm_head.weight` and
/// `embed_tokens` copies are omitted, as `save_pretrained` does).
pub fn save_bart(
    model: &BartForConditionalGeneration,
    config: &BartConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    config.validate()?;
    let mut model = model.clone();
    let mut slots: Vec<(String, Slot<'_>)> = bart_model_slots(&mut model.model)
        .into_iter()
        .map(|(n, s)| (format!("model.{n}"), s))
        .collect();
    slots.push((
        "final_logits_bias".to_string(),
        Slot::Matrix(&mut model.final_logits_bias),
    ));
    save_checkpoint(config, "BartForConditionalGeneration", slots, dir)
}

//! Bad checkpoints (the model crate's part of the bad-inputs suite, issue 16): a `config.json`
//! whose sizes do not describe `model.safetensors` is refused with an error naming the file and
//! the key, before anything is allocated. Every checkpoint is generated at test time: a tiny
//! model is saved, then its `config.json` is edited.
//!
//! Before the fix, sizes of 1e9–1e10 made the loader allocate the model the config describes
//! (terabytes) and the process abort; a test that regresses aborts instead of failing.

use std::path::Path;

use burn::tensor::Device;
use refinery_model::hf::{load_bart, load_bert, load_bert_model, load_gpt, save_bart, save_bert};
use refinery_model::hf::{save_gpt, CONFIG_FILE};
use refinery_model::{BartConfig, BertConfig, GptConfig, ModelError};
use serde_json::Value;

/// A saved tiny GPT-2: vocab 50, 16 positions, d = 32, 2 layers, 4 heads.
fn gpt_checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GptConfig::new(50, 16, 32, 2, 4);
    let model = config.init(&Device::flex()).expect("init");
    save_gpt(&model, &config, dir.path()).expect("save");
    dir
}

fn bert_checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BertConfig::new(50, 32, 2, 4, 64);
    config.max_position_embeddings = 16;
    let model = config.init(&Device::flex()).expect("init");
    save_bert(&model, &config, dir.path()).expect("save");
    dir
}

fn bart_checkpoint() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BartConfig::new(50, 32, 1, 4, 64);
    config.max_position_embeddings = 16;
    let model = config.init(&Device::flex()).expect("init");
    save_bart(&model, &config, dir.path()).expect("save");
    dir
}

/// Sets `key` in `dir/config.json`.
fn set_config(dir: &Path, key: &str, value: Value) {
    let path = dir.join(CONFIG_FILE);
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    json[key] = value;
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write");
}

/// The error is a `ConfigSize` for `key` whose message names `config.json`, the key and the
/// weights file.
fn assert_refused<T>(result: Result<T, ModelError>, key: &str) {
    let Err(err) = result else {
        panic!("{key}: the checkpoint was loaded");
    };
    let message = err.to_string();
    assert!(
        matches!(&err, ModelError::ConfigSize { key: k, .. } if k == key),
        "{key}: {message}"
    );
    for part in [CONFIG_FILE, key, "model.safetensors"] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn absurd_sizes_in_gpt_config_json_are_refused_before_allocating() {
    let dev = Device::flex();
    for key in ["vocab_size", "n_positions", "n_embd", "n_inner"] {
        // n_embd stays a multiple of n_head = 4.
        for value in [1_000_000_000u64, 10_000_000_000, 1 << 62] {
            let dir = gpt_checkpoint();
            set_config(dir.path(), key, value.into());
            assert_refused(load_gpt(dir.path(), &dev), key);
        }
    }
}

#[test]
fn absurd_layer_count_in_gpt_config_json_is_refused_before_allocating() {
    let dir = gpt_checkpoint();
    set_config(dir.path(), "n_layer", 1_000_000_000u64.into());
    assert_refused(load_gpt(dir.path(), &Device::flex()), "n_layer");
}

#[test]
fn absurd_sizes_in_bert_config_json_are_refused_before_allocating() {
    let dev = Device::flex();
    for key in [
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "num_hidden_layers",
    ] {
        let dir = bert_checkpoint();
        set_config(dir.path(), key, 10_000_000_000u64.into());
        assert_refused(load_bert(dir.path(), &dev), key);
        assert_refused(load_bert_model(dir.path(), &dev), key);
    }
}

#[test]
fn absurd_sizes_in_bart_config_json_are_refused_before_allocating() {
    let dev = Device::flex();
    for key in [
        "vocab_size",
        "d_model",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "encoder_layers",
        "decoder_layers",
    ] {
        let dir = bart_checkpoint();
        set_config(dir.path(), key, 10_000_000_000u64.into());
        assert_refused(load_bart(dir.path(), &dev), key);
    }
    // The position table has max_position_embeddings + 2 rows: no overflow at the maximum.
    let dir = bart_checkpoint();
    set_config(dir.path(), "max_position_embeddings", u64::MAX.into());
    assert_refused(load_bart(dir.path(), &dev), "max_position_embeddings + 2");
}

#[test]
fn config_json_with_more_parameters_than_the_weights_is_refused() {
    let dev = Device::flex();
    // Sizes small enough for the first check: the shapes name the tensor and the config key.
    for (key, value, tensor, expected, found) in [
        (
            "n_positions",
            64,
            "transformer.wpe.weight",
            vec![64, 32],
            vec![16, 32],
        ),
        (
            "n_inner",
            256,
            "transformer.h.0.mlp.c_fc.weight",
            vec![32, 256],
            vec![32, 128],
        ),
    ] {
        let dir = gpt_checkpoint();
        set_config(dir.path(), key, value.into());
        let err = load_gpt(dir.path(), &dev).expect_err("refused");
        let message = err.to_string();
        match err {
            ModelError::ShapeMismatch {
                key: k,
                expected: e,
                found: f,
                ..
            } => assert_eq!((k.as_str(), e, f), (tensor, expected, found)),
            other => panic!("{key}: expected ShapeMismatch, got {other}"),
        }
        let named = format!("{key} = {value}");
        for part in [CONFIG_FILE, named.as_str(), tensor] {
            assert!(message.contains(part), "{part:?} not in {message:?}");
        }
    }
    // One layer more than the weights hold.
    let dir = gpt_checkpoint();
    set_config(dir.path(), "n_layer", 3.into());
    assert!(matches!(
        load_gpt(dir.path(), &dev),
        Err(ModelError::MissingTensor { key, .. }) if key == "transformer.h.2.ln_1.weight"
    ));
}

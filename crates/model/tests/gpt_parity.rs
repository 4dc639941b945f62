//! GPT-2 parity with HF transformers (PyTorch), and checkpoint round trips.
//!
//! Reference: `tests/fixtures/make_gpt_reference.py` (tiny random GPT2LMHeadModel, eager
//! attention, f32, CPU). Tolerance: max |Δ| ≤ 1e-4 on logits, hidden states and attention
//! probabilities (f32 with different summation orders: observed differences are ~1e-6).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf::{load_gpt, load_gpt_weights, save_gpt, WEIGHTS_FILE};
use refinery_model::{GptConfig, ModelError, OutputOptions};
use safetensors::{Dtype, SafeTensors};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// name -> (shape, values as f32; int64 tensors are converted)
fn read_reference() -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixtures().join("gpt_tiny_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

fn int_tensor(shape: &[usize], values: &[f32], dev: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [shape[0], shape[1]]), dev)
}

fn max_abs_diff(name: &str, got: TensorData, want: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(got.shape().to_vec(), want.0, "{name}: shape");
    let got: Vec<f32> = got.try_to_vec().unwrap();
    got.iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn gpt_matches_hf_logits_hidden_states_and_attentions() {
    let dev = Device::flex();
    let (config, model) = load_gpt(&fixtures().join("gpt_tiny"), &dev).unwrap();
    assert_eq!(
        (config.n_layer, config.n_embd, config.vocab_size),
        (2, 64, 256)
    );
    let r = read_reference();
    let (shape, tok) = &r["tokens"];
    let tokens = int_tensor(shape, tok, &dev);

    let out = model.forward_with(
        tokens.clone(),
        None,
        OutputOptions {
            hidden_states: true,
            attentions: true,
        },
    );
    let d = max_abs_diff("logits", out.logits.into_data(), &r["logits"]);
    eprintln!("logits: max |Δ| = {d:e}");
    assert!(d <= TOL, "logits: max |Δ| = {d:e} > {TOL:e}");
    assert_eq!(out.hidden_states.len(), 3);
    for (i, h) in out.hidden_states.into_iter().enumerate() {
        let d = max_abs_diff("hidden", h.into_data(), &r[&format!("hidden_{i}")]);
        assert!(d <= TOL, "hidden_{i}: max |Δ| = {d:e}");
    }
    assert_eq!(out.attentions.len(), 2);
    for (i, a) in out.attentions.into_iter().enumerate() {
        let d = max_abs_diff("attn", a.into_data(), &r[&format!("attn_{i}")]);
        assert!(d <= TOL, "attn_{i}: max |Δ| = {d:e}");
    }

    // Right padding on row 1: compare every position (padded queries still see real keys).
    let (mshape, m) = &r["attention_mask"];
    let mask = int_tensor(mshape, m, &dev);
    let padded = model.forward_with(tokens, Some(mask), OutputOptions::default());
    let d = max_abs_diff(
        "logits_padded",
        padded.logits.into_data(),
        &r["logits_padded"],
    );
    assert!(d <= TOL, "logits_padded: max |Δ| = {d:e}");
}

#[test]
fn save_then_load_round_trips_exactly() {
    let dev = Device::flex();
    let (config, model) = load_gpt(&fixtures().join("gpt_tiny"), &dev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_gpt(&model, &config, dir.path()).unwrap();
    let (config2, model2) = load_gpt(dir.path(), &dev).unwrap();
    assert_eq!(config, config2);
    let tokens =
        Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 1, 4, 1, 5, 9], [2, 3]), &dev);
    let a: Vec<f32> = model
        .forward(tokens.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let b: Vec<f32> = model2.forward(tokens).into_data().try_to_vec().unwrap();
    assert_eq!(a, b);
}

/// Writes the fixture model re-saved by `save_gpt` to `$REFINERY_HF_EXPORT_DIR` for
/// `tests/fixtures/check_hf_load.py` (HF loads our checkpoint). No-op without the variable.
#[test]
fn export_for_hf() {
    let Ok(out) = std::env::var("REFINERY_HF_EXPORT_DIR") else {
        return;
    };
    let dev = Device::flex();
    let (config, model) = load_gpt(&fixtures().join("gpt_tiny"), &dev).unwrap();
    save_gpt(&model, &config, Path::new(&out)).unwrap();
}

#[test]
fn shape_mismatch_is_a_clear_error() {
    let dev = Device::flex();
    let mut config = GptConfig::new(256, 32, 64, 2, 4);
    config.n_positions = 64; // the checkpoint has 32 positions
    let err = load_gpt_weights(
        &config,
        &fixtures().join("gpt_tiny").join(WEIGHTS_FILE),
        &dev,
    )
    .unwrap_err();
    match err {
        ModelError::ShapeMismatch {
            key,
            expected,
            found,
            ..
        } => {
            assert_eq!(key, "transformer.wpe.weight");
            assert_eq!((expected, found), (vec![64, 64], vec![32, 64]));
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn missing_layers_and_garbage_are_errors() {
    let dev = Device::flex();
    let path = fixtures().join("gpt_tiny").join(WEIGHTS_FILE);
    let config = GptConfig::new(256, 32, 64, 3, 4); // one layer more than the checkpoint
    let err = load_gpt_weights(&config, &path, &dev).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { key, .. } if key == "transformer.h.2.ln_1.weight"),
        "{err}"
    );
    let config = GptConfig::new(256, 32, 64, 1, 4); // one layer fewer
    let err = load_gpt_weights(&config, &path, &dev).unwrap_err();
    assert!(matches!(err, ModelError::UnexpectedTensor { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    let err = load_gpt_weights(&config, &bad, &dev).unwrap_err();
    assert!(matches!(err, ModelError::Safetensors { .. }), "{err}");
}

//! BART parity with HF transformers (PyTorch) `BartForConditionalGeneration`, and checkpoint
//! round trips.
//!
//! Reference: `tests/fixtures/make_bart_reference.py` (tiny random model, eager attention,
//! f32, CPU; encoder and decoder batches with a padded row). Tolerance: max |Δ| ≤ 1e-4 on the
//! logits, encoder/decoder hidden states and the encoder, decoder and cross attention maps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::bart::shift_tokens_right;
use refinery_model::hf_bart::{load_bart, save_bart};
use refinery_model::{BartForConditionalGeneration, ModelError, OutputOptions};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

type Reference = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn read_reference() -> Reference {
    let bytes = std::fs::read(fixtures().join("bart_tiny_reference.safetensors")).unwrap();
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

fn ints(r: &Reference, name: &str, dev: &Device) -> Tensor<2, Int> {
    let (shape, values) = &r[name];
    let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [shape[0], shape[1]]), dev)
}

fn max_abs_diff(got: TensorData, want: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(got.shape().to_vec(), want.0);
    let got: Vec<f32> = got.try_to_vec().unwrap();
    got.iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn run_reference_batch(
    model: &BartForConditionalGeneration,
    r: &Reference,
    dev: &Device,
    opts: OutputOptions,
) -> refinery_model::BartOutput {
    model.forward(
        ints(r, "input_ids", dev),
        Some(ints(r, "attention_mask", dev)),
        ints(r, "decoder_input_ids", dev),
        Some(ints(r, "decoder_attention_mask", dev)),
        opts,
    )
}

#[test]
fn bart_matches_hf_conditional_generation_outputs() {
    let dev = Device::flex();
    let (config, model) = load_bart(&fixtures().join("bart_tiny"), &dev).unwrap();
    assert_eq!(
        (config.encoder_layers, config.decoder_layers, config.d_model),
        (2, 2, 32)
    );
    assert!(config.scale_embedding);
    let r = read_reference();
    let opts = OutputOptions {
        hidden_states: true,
        attentions: true,
    };
    let out = run_reference_batch(&model, &r, &dev, opts);
    assert_eq!(out.encoder_hidden_states.len(), 3);
    assert_eq!(out.decoder_hidden_states.len(), 3);
    for (name, got) in [
        ("logits", out.logits.into_data()),
        (
            "encoder_last_hidden",
            out.encoder_last_hidden_state.into_data(),
        ),
        ("encoder_hidden_0", out.encoder_hidden_states[0].to_data()),
        ("decoder_hidden_1", out.decoder_hidden_states[1].to_data()),
        (
            "decoder_last_hidden",
            out.decoder_last_hidden_state.into_data(),
        ),
        ("encoder_attn_1", out.encoder_attentions[1].to_data()),
        ("decoder_attn_1", out.decoder_attentions[1].to_data()),
        ("cross_attn_1", out.cross_attentions[1].to_data()),
    ] {
        let d = max_abs_diff(got, &r[name]);
        eprintln!("{name}: max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d:e} > {TOL:e}");
    }
}

#[test]
fn shift_tokens_right_matches_hf_on_the_fixture() {
    let dev = Device::flex();
    let r = read_reference();
    let got = shift_tokens_right(ints(&r, "labels", &dev), 1, 2);
    let want = ints(&r, "decoder_input_ids", &dev);
    assert_eq!(
        got.into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap(),
        want.into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap()
    );
}

#[test]
fn bart_save_then_load_round_trips_exactly() {
    let dev = Device::flex();
    let (config, model) = load_bart(&fixtures().join("bart_tiny"), &dev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_bart(&model, &config, dir.path()).unwrap();
    let (config2, model2) = load_bart(dir.path(), &dev).unwrap();
    assert_eq!(config, config2);
    let r = read_reference();
    let run = |m: &BartForConditionalGeneration| -> Vec<f32> {
        run_reference_batch(m, &r, &dev, OutputOptions::default())
            .logits
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    assert_eq!(run(&model), run(&model2));
    // The saved key set is HF's: same names and shapes as the transformers save.
    let keys = |p: &Path| -> Vec<(String, Vec<usize>)> {
        let bytes = std::fs::read(p.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut k: Vec<_> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(dir.path()), keys(&fixtures().join("bart_tiny")));
}

/// Copies the fixture checkpoint with its tensors edited by `edit` into a temp dir.
fn edited_checkpoint(edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> tempfile::TempDir {
    let src = fixtures().join("bart_tiny");
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn malformed_bart_checkpoints_are_rejected_with_the_key() {
    let dev = Device::flex();
    let key = "model.decoder.layers.1.encoder_attn.k_proj.weight";

    let dir = edited_checkpoint(|t| t.retain(|(n, _, _)| n != key));
    match load_bart(dir.path(), &dev) {
        Err(ModelError::MissingTensor { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected MissingTensor, got {other:?}"),
    }

    let dir = edited_checkpoint(|t| {
        let e = t.iter_mut().find(|(n, _, _)| n == key).unwrap();
        e.1 = vec![16, 64];
    });
    match load_bart(dir.path(), &dev) {
        Err(ModelError::ShapeMismatch {
            key: k,
            expected,
            found,
            ..
        }) => {
            assert_eq!(k, key);
            assert_eq!((expected, found), (vec![32, 32], vec![16, 64]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }

    let dir = edited_checkpoint(|t| {
        t.push((
            "model.encoder.layers.0.extra.weight".into(),
            vec![1],
            vec![0; 4],
        ));
    });
    assert!(matches!(
        load_bart(dir.path(), &dev),
        Err(ModelError::UnexpectedTensor { key, .. }) if key == "model.encoder.layers.0.extra.weight"
    ));

    // A tied copy of the embedding is accepted when equal and rejected when it differs.
    let shared = |t: &Vec<(String, Vec<usize>, Vec<u8>)>| {
        t.iter()
            .find(|(n, _, _)| n == "model.shared.weight")
            .unwrap()
            .clone()
    };
    let dir = edited_checkpoint(|t| {
        let (_, s, d) = shared(t);
        t.push(("lm_head.weight".into(), s, d));
    });
    assert!(load_bart(dir.path(), &dev).is_ok());
    let dir = edited_checkpoint(|t| {
        let (_, s, mut d) = shared(t);
        d[0] ^= 1;
        t.push(("lm_head.weight".into(), s, d));
    });
    assert!(matches!(
        load_bart(dir.path(), &dev),
        Err(ModelError::UntiedWeights { key, .. }) if key == "lm_head.weight"
    ));

    // final_logits_bias may be absent (HF treats it as zeros).
    let dir = edited_checkpoint(|t| t.retain(|(n, _, _)| n != "final_logits_bias"));
    let (_, model) = load_bart(dir.path(), &dev).unwrap();
    let bias: Vec<f32> = model
        .final_logits_bias
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(bias.iter().all(|&b| b == 0.0));

    // Unsupported config variants are rejected at load.
    let dir = edited_checkpoint(|_| {});
    let cfg = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        cfg.replace("\"gelu\"", "\"relu\""),
    )
    .unwrap();
    assert!(matches!(
        load_bart(dir.path(), &dev),
        Err(ModelError::InvalidConfig(_))
    ));
}

/// Writes the fixture model re-saved by `save_bart` to `$REFINERY_HF_EXPORT_BART_DIR` for
/// `tests/fixtures/check_hf_load_bart.py`. No-op without the variable.
#[test]
fn export_bart_for_hf() {
    let Ok(out) = std::env::var("REFINERY_HF_EXPORT_BART_DIR") else {
        return;
    };
    let dev = Device::flex();
    let (config, model) = load_bart(&fixtures().join("bart_tiny"), &dev).unwrap();
    save_bart(&model, &config, Path::new(&out)).unwrap();
}

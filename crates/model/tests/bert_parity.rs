//! BERT parity with HF transformers (PyTorch) `BertForPreTraining`, and checkpoint round trips.
//!
//! Reference: `tests/fixtures/make_bert_reference.py` (tiny random model, eager attention,
//! f32, CPU; batch with token types and a padded row). Tolerance: max |Δ| ≤ 1e-4 on the last
//! hidden state, pooled output, MLM logits and NSP logits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf::{load_bert, save_bert};
use refinery_model::OutputOptions;
use safetensors::{Dtype, SafeTensors};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_reference() -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(fixtures().join("bert_tiny_reference.safetensors")).unwrap();
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

fn ints(r: &HashMap<String, (Vec<usize>, Vec<f32>)>, name: &str, dev: &Device) -> Tensor<2, Int> {
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

#[test]
fn bert_matches_hf_pretraining_outputs() {
    let dev = Device::flex();
    let (config, model) = load_bert(&fixtures().join("bert_tiny"), &dev).unwrap();
    assert_eq!((config.num_hidden_layers, config.hidden_size), (2, 32));
    let r = read_reference();
    let out = model.bert.forward(
        ints(&r, "input_ids", &dev),
        Some(ints(&r, "token_type_ids", &dev)),
        Some(ints(&r, "attention_mask", &dev)),
        OutputOptions::default(),
    );
    let mlm = model.mlm_logits(out.last_hidden_state.clone());
    let nsp = model.nsp_logits(out.pooled.clone());
    for (name, got) in [
        ("last_hidden", out.last_hidden_state.into_data()),
        ("pooled", out.pooled.into_data()),
        ("mlm_logits", mlm.into_data()),
        ("nsp_logits", nsp.into_data()),
    ] {
        let d = max_abs_diff(got, &r[name]);
        eprintln!("{name}: max |Δ| = {d:e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d:e} > {TOL:e}");
    }
}

#[test]
fn bert_save_then_load_round_trips_exactly() {
    let dev = Device::flex();
    let (config, model) = load_bert(&fixtures().join("bert_tiny"), &dev).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_bert(&model, &config, dir.path()).unwrap();
    let (config2, model2) = load_bert(dir.path(), &dev).unwrap();
    assert_eq!(config, config2);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 6, 7, 8], [1, 4]), &dev);
    let run = |m: &refinery_model::BertForPreTraining| -> Vec<f32> {
        let out = m
            .bert
            .forward(ids.clone(), None, None, OutputOptions::default());
        m.mlm_logits(out.last_hidden_state)
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    assert_eq!(run(&model), run(&model2));
}

/// Writes the fixture model re-saved by `save_bert` to `$REFINERY_HF_EXPORT_BERT_DIR` for
/// `tests/fixtures/check_hf_load_bert.py`. No-op without the variable.
#[test]
fn export_bert_for_hf() {
    let Ok(out) = std::env::var("REFINERY_HF_EXPORT_BERT_DIR") else {
        return;
    };
    let dev = Device::flex();
    let (config, model) = load_bert(&fixtures().join("bert_tiny"), &dev).unwrap();
    save_bert(&model, &config, Path::new(&out)).unwrap();
}

/// HF interop "in": all-MiniLM-L6-v2 (HF `BertModel`, bare keys) loads into `BertModel` and
/// matches HF's last hidden state within 1e-4 (padding in row 1 is compared too).
/// Needs `$REFINERY_MINILM_DIR` prepared by `tests/fixtures/make_minilm_reference.py`;
/// skipped without it (the checkpoint is 90 MB).
#[test]
fn minilm_matches_hf() {
    let Ok(dir) = std::env::var("REFINERY_MINILM_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let dev = Device::flex();
    let (config, model) = refinery_model::hf::load_bert_model(&dir, &dev).unwrap();
    assert_eq!((config.num_hidden_layers, config.hidden_size), (6, 384));
    let bytes = std::fs::read(dir.join("refinery_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ints = |name: &str| {
        let v: Vec<i64> = st
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Tensor::<2, Int>::from_data(TensorData::new(v, [2, 10]), &dev)
    };
    let want: Vec<f32> = st
        .tensor("last_hidden")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let out = model.forward(
        ints("input_ids"),
        None,
        Some(ints("attention_mask")),
        OutputOptions::default(),
    );
    let d = max_abs_diff(out.last_hidden_state.into_data(), &(vec![2, 10, 384], want));
    eprintln!("minilm last_hidden: max |Δ| = {d:e}");
    assert!(d <= TOL, "minilm last_hidden: max |Δ| = {d:e} > {TOL:e}");
}

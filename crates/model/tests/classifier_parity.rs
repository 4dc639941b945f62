//! Sequence classifiers against HF transformers: `BertForSequenceClassification` and
//! `GPT2ForSequenceClassification` checkpoints made by transformers load into
//! [`SequenceClassifier`] with the same logits, and our saves round-trip (and, through
//! `scripts/hf-interop.sh`, load back in transformers).
//!
//! Reference: `tests/fixtures/make_classifier_reference.py` (tiny random models, eager
//! attention, f32, CPU; a batch with token types and a right-padded row). Tolerance: max |Δ|
//! ≤ 1e-4 on the logits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf_classify::{
    load_backbone, load_classifier, read_classifier_config, save_classifier,
};
use refinery_model::{OutputOptions, Pooling, SequenceClassifier};
use safetensors::{Dtype, SafeTensors};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(fixtures().join("classifier_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                    .collect(),
                Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

fn ints(r: &HashMap<String, (Vec<usize>, Vec<f64>)>, name: &str, dev: &Device) -> Tensor<2, Int> {
    let (shape, values) = &r[name];
    let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [shape[0], shape[1]]), dev)
}

fn logits(model: &SequenceClassifier, dev: &Device) -> Vec<f32> {
    let r = reference();
    model
        .forward(
            ints(&r, "input_ids", dev),
            Some(ints(&r, "token_type_ids", dev)),
            ints(&r, "attention_mask", dev),
            OutputOptions::default(),
        )
        .logits
        .into_data()
        .try_to_vec()
        .unwrap()
}

fn max_diff(got: &[f32], want: &[f64]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (f64::from(*a) - b).abs() as f32)
        .fold(0.0, f32::max)
}

#[test]
fn hf_classifiers_load_with_matching_logits_and_round_trip() {
    let dev = Device::flex();
    let r = reference();
    for (dir, key, labels, pooling) in [
        (
            "bert_cls_tiny",
            "bert_logits",
            vec!["neg", "neu", "pos"],
            Pooling::Pooler,
        ),
        (
            "gpt_cls_tiny",
            "gpt_logits",
            vec!["no", "yes"],
            Pooling::Last,
        ),
    ] {
        let path = fixtures().join(dir);
        let (config, model) = load_classifier(&path, &dev).unwrap();
        assert_eq!(config.labels, labels);
        assert_eq!(config.pooling, pooling);
        let got = logits(&model, &dev);
        let d = max_diff(&got, &r[key].1);
        println!("{dir} logits: max |Δ| = {d:.3e} (tol {TOL:e})");
        assert!(d <= TOL, "{dir}: max |Δ| {d}");

        // Our save loads back bit for bit, with the HF architecture and label maps.
        let out = tempfile::tempdir().unwrap();
        save_classifier(&model, &config, out.path()).unwrap();
        let (again_config, again) = load_classifier(out.path(), &dev).unwrap();
        assert_eq!(again_config, config);
        assert_eq!(logits(&again, &dev), got);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(json["id2label"]["0"], labels[0]);
        assert_eq!(json["label2id"][labels[1]], 1);
        assert!(json["architectures"][0]
            .as_str()
            .unwrap()
            .ends_with("ForSequenceClassification"));
    }
}

/// HF interop "out": writes our saves of the two fixture classifiers for
/// `tests/fixtures/check_hf_load_classifier.py` (transformers must reproduce the reference
/// logits). Runs only with `REFINERY_HF_EXPORT_CLS_DIR` set (scripts/hf-interop.sh).
#[test]
fn export_classifiers_for_hf() {
    let Ok(out) = std::env::var("REFINERY_HF_EXPORT_CLS_DIR") else {
        return;
    };
    let dev = Device::flex();
    for dir in ["bert_cls_tiny", "gpt_cls_tiny"] {
        let (config, model) = load_classifier(&fixtures().join(dir), &dev).unwrap();
        save_classifier(&model, &config, &Path::new(&out).join(dir)).unwrap();
    }
}

#[test]
fn bodies_load_from_pretraining_checkpoints_and_heads_start_fresh() {
    let dev = Device::flex();
    // BertForPreTraining and GPT2LMHeadModel fixtures: their heads are not classifier heads.
    for dir in ["bert_tiny", "gpt_tiny"] {
        let path = fixtures().join(dir);
        let (config, body) = load_backbone(&path, &dev).unwrap();
        let model = SequenceClassifier::new(
            body,
            &config,
            4,
            refinery_model::hf_classify::ClassifierConfig::default_pooling(&config),
            &dev,
        )
        .unwrap();
        assert_eq!(model.num_labels(), 4);
        let e = read_classifier_config(&path).unwrap_err().to_string();
        assert!(e.contains("not a sequence classifier"), "{e}");
    }
}

#[test]
fn mean_pooling_is_the_masked_mean_and_is_recorded_in_config_json() {
    let dev = Device::flex();
    let (config, model) = load_classifier(&fixtures().join("bert_cls_tiny"), &dev).unwrap();
    let mean = SequenceClassifier {
        pooling: Pooling::Mean,
        ..model
    };
    let r = reference();
    let mask = ints(&r, "attention_mask", &dev);
    let out = mean.forward(
        ints(&r, "input_ids", &dev),
        Some(ints(&r, "token_type_ids", &dev)),
        mask,
        OutputOptions {
            hidden_states: true,
            attentions: false,
        },
    );
    // pooled row 1 = mean of the last hidden state over its 7 real positions.
    let last = out.hidden_states.last().unwrap().clone(); // [2, 10, 32]
    let h: Vec<f32> = last.into_data().try_to_vec().unwrap();
    let pooled: Vec<f32> = out.pooled.into_data().try_to_vec().unwrap();
    for d in 0..32 {
        let want: f32 = (0..7).map(|t| h[10 * 32 + t * 32 + d]).sum::<f32>() / 7.0;
        assert!((pooled[32 + d] - want).abs() < 1e-5);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config.clone();
    c.pooling = Pooling::Mean;
    save_classifier(&mean, &c, dir.path()).unwrap();
    assert_eq!(
        read_classifier_config(dir.path()).unwrap().pooling,
        Pooling::Mean
    );
}

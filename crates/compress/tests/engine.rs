//! The inference engine against the burn model on the same checkpoint (f32, tolerance 1e-4),
//! int8 against f32 (the quantization error), every kernel path against the others (bit for
//! bit), the format's checks, and bad inputs.

mod common;

use std::path::Path;

use common::{edit_weights, fixed_draw, max_diff, Edit};

use burn::tensor::Device;
use refinery_compress::bert::{calibrate, Engine};
use refinery_compress::classify::batch_of;
use refinery_compress::kernels::KernelPath;
use refinery_compress::quant::{
    quantize_dir, read_quant_config, Calibration, CalibrationRecord, Granularity, QuantOptions,
    WeightCode,
};
use refinery_model::bert::BertConfig;
use refinery_model::classify::{BackboneConfig, Pooling, SequenceClassifier};
use refinery_model::hf_classify::{save_classifier, ClassifierConfig};
use refinery_model::OutputOptions;
use refinery_train::data::labelled::ClassBatch;
use safetensors::Dtype;

fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "model_type": "bert", "vocab_size": 97, "hidden_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 80, "max_position_embeddings": 40,
        "type_vocab_size": 2, "pad_token_id": 0
    }))
    .unwrap()
}

/// A random BERT classifier saved to `dir`; its weights are scaled up from the init's
/// std 0.02 so the logits are far from zero and the comparison means something.
fn save_tiny(dir: &Path, pooling: Pooling) -> SequenceClassifier {
    let dev = Device::flex();
    let backbone = BackboneConfig::Bert(tiny_config());
    let model = SequenceClassifier::init(&backbone, 3, pooling, &dev).unwrap();
    let config = ClassifierConfig {
        backbone,
        labels: vec!["a".into(), "b".into(), "c".into()],
        pooling,
    };
    save_classifier(&model, &config, dir).unwrap();
    // Replace every tensor with a fixed draw: 2-D weights uniform with std 0.1, LayerNorm
    // weights 1, every other 1-D tensor 0. Rewrite, and reload through burn.
    fixed_draw(dir, |name, shape, draw| {
        if shape.len() == 2 {
            draw() * 0.173
        } else if name.ends_with("LayerNorm.weight") {
            1.0
        } else {
            0.0
        }
    });
    refinery_model::hf_classify::load_classifier(dir, &dev)
        .unwrap()
        .1
}

fn batch() -> ClassBatch {
    common::batch(97)
}

fn burn_logits(model: &SequenceClassifier, b: &ClassBatch) -> Vec<f32> {
    let (ids, types, mask) = b.tensors(&Device::flex());
    model
        .forward(ids, Some(types), mask, OutputOptions::default())
        .logits
        .into_data()
        .iter::<f32>()
        .collect()
}

#[test]
fn f32_engine_matches_the_burn_model() {
    for pooling in [Pooling::Pooler, Pooling::Mean] {
        let dir = tempfile::tempdir().unwrap();
        let model = save_tiny(dir.path(), pooling);
        let b = batch();
        let want = burn_logits(&model, &b);
        let engine = Engine::load(dir.path(), KernelPath::detect()).unwrap();
        let got = engine.logits(&batch_of(&b)).unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.1, "logits too small to compare: {want:?}");
        let d = max_diff(&got, &want);
        assert!(d < 1e-4, "{pooling:?}: engine vs burn max |Δ| {d}");
    }
}

#[test]
fn int8_is_close_to_f32_and_identical_on_every_kernel_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    let model = save_tiny(&src, Pooling::Pooler);
    std::fs::write(src.join("tokenizer.json"), "{}").unwrap();
    let b = batch();
    let want = burn_logits(&model, &b);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (code, gran, asym, tol) in [
        (WeightCode::Linear, Granularity::PerToken, false, 0.03),
        (WeightCode::Linear, Granularity::PerToken, true, 0.03),
        (WeightCode::Linear, Granularity::PerTensor, false, 0.05),
        (WeightCode::Linear, Granularity::PerTensor, true, 0.05),
        (WeightCode::Log2, Granularity::PerToken, false, 0.5),
    ] {
        let out = dir.path().join(format!("q-{code:?}-{gran:?}-{asym}"));
        let options = QuantOptions {
            weights: code,
            activations: gran,
            asymmetric: asym,
            int8_embeddings: true,
        };
        let report = quantize_dir(&src, &out, &options, None).unwrap();
        assert!(report.int8_bytes * 3 < report.f32_bytes, "{report:?}");
        assert!(out.join("tokenizer.json").exists());
        let q = read_quant_config(&out).unwrap().unwrap();
        assert_eq!(q.weights, code);
        let mut first: Option<Vec<f32>> = None;
        for path in KernelPath::available() {
            let engine = Engine::load(&out, path).unwrap();
            assert!(engine.kernels().iter().all(|k| k.kernel == path.name()));
            let got = engine.logits(&batch_of(&b)).unwrap();
            let d = max_diff(&got, &want);
            assert!(
                d <= tol * scale,
                "{code:?} {gran:?} asymmetric {asym} {path:?}: max |Δ| {d} vs logit scale {scale}"
            );
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "{path:?} differs from the first path"),
            }
        }
    }
    // Quantizing twice is refused.
    let again = quantize_dir(
        &dir.path().join("q-Linear-PerToken-false"),
        &dir.path().join("twice"),
        &QuantOptions::default(),
        None,
    );
    assert!(again.unwrap_err().to_string().contains("already quantized"));
}

#[test]
fn static_scales_are_calibrated_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    let model = save_tiny(&src, Pooling::Pooler);
    let b = batch();
    let engine = Engine::load(&src, KernelPath::detect()).unwrap();
    let scales = calibrate(&engine, [batch_of(&b)], Calibration::MinMax).unwrap();
    // q/k/v fused (one input), attention output, intermediate, output per layer + pooler + head.
    assert_eq!(scales.len(), 2 * 4 + 2, "{scales:?}");
    let pct = calibrate(&engine, [batch_of(&b)], Calibration::Percentile { p: 99.0 }).unwrap();
    for (k, v) in &pct {
        assert!(*v <= scales[k], "{k}: percentile above max");
    }
    assert!(calibrate(&engine, [], Calibration::MinMax)
        .unwrap_err()
        .to_string()
        .contains("no usable rows"));
    let rec = CalibrationRecord {
        method: Calibration::MinMax,
        file: "test".into(),
        rows: b.batch_size,
    };
    let out = dir.path().join("static");
    let symmetric = QuantOptions {
        asymmetric: false,
        ..QuantOptions::default()
    };
    let e = quantize_dir(
        &src,
        &out,
        &QuantOptions::default(),
        Some((scales.clone(), rec.clone())),
    );
    assert!(e.unwrap_err().to_string().contains("dynamic-scheme option"));
    quantize_dir(&src, &out, &symmetric, Some((scales, rec))).unwrap();
    let q = Engine::load(&out, KernelPath::detect()).unwrap();
    let got = q.logits(&batch_of(&b)).unwrap();
    let want = burn_logits(&model, &b);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_diff(&got, &want) <= 0.1 * scale);
    // A static config without its scales is refused on load.
    let cfg = out.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["refinery_quantization"]["activation_scales"] = serde_json::json!({});
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = Engine::load(&out, KernelPath::detect())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("static scheme without activation_scales"), "{e}");
}

#[test]
fn malformed_int8_checkpoints_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    save_tiny(&src, Pooling::Pooler);
    let q = dir.path().join("q");
    quantize_dir(&src, &q, &QuantOptions::default(), None).unwrap();
    let key = "bert.encoder.layer.1.intermediate.dense.weight";
    let cases: Vec<(&str, Edit<'_>)> = vec![
        (
            "has no",
            Box::new(|m| {
                m.remove(&format!("{key}_scale"));
            }),
        ),
        (
            "expected [80]",
            Box::new(|m| {
                let e = m.get_mut(&format!("{key}_scale")).unwrap();
                e.1 = vec![79];
                e.2.truncate(79 * 4);
            }),
        ),
        (
            "not a positive scale",
            Box::new(|m| {
                let e = m.get_mut(&format!("{key}_scale")).unwrap();
                e.2[0..4].copy_from_slice(&(-1.0f32).to_le_bytes());
            }),
        ),
        (
            "-128",
            Box::new(|m| {
                m.get_mut(key).unwrap().2[5] = 0x80;
            }),
        ),
        (
            "dtype",
            Box::new(|m| {
                let e = m.get_mut(&format!("{key}_scale")).unwrap();
                e.0 = Dtype::I32;
            }),
        ),
        (
            "missing tensor",
            Box::new(|m| {
                m.remove("classifier.bias");
            }),
        ),
    ];
    for (want, edit) in cases {
        let case = dir.path().join(format!("case-{}", want.replace(' ', "_")));
        std::fs::create_dir_all(&case).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(q.join(f), case.join(f)).unwrap();
        }
        edit_weights(&case, |m| edit(m));
        let e = Engine::load(&case, KernelPath::detect())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(want), "want {want:?}: {e}");
        assert!(e.contains("model.safetensors"), "names the file: {e}");
    }
    // A truncated file.
    let case = dir.path().join("truncated");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::copy(q.join("config.json"), case.join("config.json")).unwrap();
    let bytes = std::fs::read(q.join("model.safetensors")).unwrap();
    std::fs::write(case.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Engine::load(&case, KernelPath::detect())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    // A newer format version.
    let cfg = q.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["refinery_quantization"]["format_version"] = serde_json::json!(9);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = Engine::load(&q, KernelPath::detect())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("format_version: 9"), "{e}");
}

#[test]
fn out_of_range_ids_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    save_tiny(dir.path(), Pooling::Pooler);
    let engine = Engine::load(dir.path(), KernelPath::Portable).unwrap();
    let mut b = batch();
    b.input_ids[3] = 97;
    let e = engine.logits(&batch_of(&b)).err().unwrap().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
}

#[test]
fn quantize_builds_aside_and_refuses_bad_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    save_tiny(&src, Pooling::Pooler);
    // A stale partial directory of a killed run is replaced, and the rerun's files are the
    // same as a clean run's.
    let stale = dir.path().join(".q.quantize-partial");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("junk"), "x").unwrap();
    let q = dir.path().join("q");
    quantize_dir(&src, &q, &QuantOptions::default(), None).unwrap();
    assert!(!stale.exists() && !q.join("junk").exists());
    let clean = dir.path().join("clean");
    quantize_dir(&src, &clean, &QuantOptions::default(), None).unwrap();
    for f in ["model.safetensors", "config.json"] {
        assert_eq!(
            std::fs::read(q.join(f)).unwrap(),
            std::fs::read(clean.join(f)).unwrap()
        );
    }
    // A non-empty output, and an output inside the model directory.
    let e = quantize_dir(&src, &q, &QuantOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    let e = quantize_dir(&src, &src.join("int8"), &QuantOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("inside the model directory"), "{e}");
}

//! The GPT-2 engine against the burn `Gpt` on the same checkpoint (f32, tolerance 1e-4),
//! int8 against f32 (the quantization error), every kernel path against the others (bit for
//! bit), the KV-cached step against the full forward, greedy generation against the burn
//! model's tokens, the int8 GPT-2 format (Conv1D weights transposed), and bad inputs.
//! - `export_gpt_int8_for_hf` (env-gated; scripts/hf-interop.sh) writes an f32 and an int8
//!   GPT-2 with refinery's logits for transformers to load (after scripts/dequantize.py).

mod common;

use std::path::Path;

use common::{edit_weights, fixed_draw, max_diff, Edit};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_compress::gpt::{calibrate, GptEngine, KvCache, Logits};
use refinery_compress::kernels::KernelPath;
use refinery_compress::quant::{
    quantize_dir, read_quant_config, Calibration, CalibrationRecord, Granularity, QuantOptions,
    WeightCode,
};
use refinery_model::generate::{generate, generate_with, Decoding, SamplingConfig};
use refinery_model::hf::{load_gpt, save_gpt};
use refinery_model::{Gpt, GptConfig, OutputOptions};
use refinery_train::data::LmBatch;

const VOCAB: usize = 97;
const CTX: usize = 24;

fn tiny_config() -> GptConfig {
    let mut c = GptConfig::new(VOCAB, CTX, 48, 2, 4);
    c.n_inner = Some(80);
    c
}

/// A GPT-2 saved to `dir` with a fixed draw of weights (burn's init RNG is shared by tests
/// running in parallel): 2-D weights uniform with std 0.1, LayerNorm weights 1 + small
/// ripples, biases small; reloaded through burn.
fn save_tiny(dir: &Path) -> Gpt {
    let dev = Device::flex();
    let config = tiny_config();
    let model = config.init(&dev).unwrap();
    save_gpt(&model, &config, dir).unwrap();
    fixed_draw(dir, |name, shape, draw| {
        let u = draw();
        if shape.len() == 2 {
            u * 0.173
        } else if name.contains(".ln_") && name.ends_with(".weight") {
            1.0 + 0.1 * u
        } else {
            0.05 * u
        }
    });
    load_gpt(dir, &dev).unwrap().1
}

/// Two rows of 11 tokens, ids in 0..97.
fn ids() -> Vec<i64> {
    (0..22).map(|i| ((i * 37 + 5) % VOCAB) as i64).collect()
}

fn burn_logits(model: &Gpt, ids: &[i64], b: usize, mask: Option<&[i64]>) -> Vec<f32> {
    let dev = Device::flex();
    let t = ids.len() / b;
    let tokens: Tensor<2, Int> = Tensor::from_data(TensorData::new(ids.to_vec(), [b, t]), &dev);
    let mask = mask.map(|m| Tensor::from_data(TensorData::new(m.to_vec(), [b, t]), &dev));
    model
        .forward_with(tokens, mask, OutputOptions::default())
        .logits
        .into_data()
        .iter::<f32>()
        .collect()
}

fn scale_of(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn f32_engine_matches_the_burn_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = save_tiny(dir.path());
    let engine = GptEngine::load(dir.path(), KernelPath::detect()).unwrap();
    assert!(engine.quant.is_none());
    assert!(engine.kernels().iter().all(|k| k.kernel == "f32-gemm"));
    let ids = ids();
    let want = burn_logits(&model, &ids, 2, None);
    assert!(scale_of(&want) > 0.5, "logits too small to compare");
    let got = engine.logits(&ids, 2, None).unwrap();
    let d = max_diff(&got, &want);
    assert!(d < 1e-4, "engine vs burn max |Δ| {d}");
    // Right padding: the second row has 7 live tokens; compare the live positions.
    let mask: Vec<i64> = (0..22).map(|i| i64::from(i < 11 || i < 18)).collect();
    let want = burn_logits(&model, &ids, 2, Some(&mask));
    let got = engine.logits(&ids, 2, Some(&mask)).unwrap();
    for (i, m) in mask.iter().enumerate() {
        if *m != 0 {
            let r = i * VOCAB..(i + 1) * VOCAB;
            let d = max_diff(&got[r.clone()], &want[r]);
            assert!(d < 1e-4, "padded batch, position {i}: max |Δ| {d}");
        }
    }
    // Parameters: burn's count (the tied head counted once).
    use burn::module::Module;
    assert_eq!(engine.parameters(), model.num_params());
}

#[test]
fn cached_steps_equal_the_full_forward_and_greedy_matches_burn() {
    let dir = tempfile::tempdir().unwrap();
    let model = save_tiny(dir.path());
    let src = dir.path();
    let q = tempfile::tempdir().unwrap();
    let q = q.path().join("int8");
    quantize_dir(src, &q, &QuantOptions::default(), None).unwrap();
    for path in [src, q.as_path()] {
        let engine = GptEngine::load(path, KernelPath::detect()).unwrap();
        let ids: Vec<i64> = ids()[..11].to_vec();
        let full = engine.logits(&ids, 1, None).unwrap(); // [11, V]
        let mut cache = KvCache::new(&engine, 1);
        let mut got = engine
            .forward(&ids[..4], 1, None, &mut cache, Logits::All, None)
            .unwrap();
        for i in 4..11 {
            got.extend(
                engine
                    .forward(&ids[i..=i], 1, None, &mut cache, Logits::Last, None)
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), 11);
        let d = max_diff(&got, &full);
        assert!(d < 1e-5, "{}: cached vs full max |Δ| {d}", path.display());
        // The context is full at 24: one more token is an error, not a panic.
        let mut cache = KvCache::new(&engine, 1);
        let long: Vec<i64> = (0..CTX as i64).collect();
        engine
            .forward(&long, 1, None, &mut cache, Logits::Last, None)
            .unwrap();
        let e = engine
            .forward(&[1], 1, None, &mut cache, Logits::Last, None)
            .unwrap_err();
        assert!(e.to_string().contains("exceed n_positions 24"), "{e}");
        assert_eq!(cache.len(), CTX);
        // A bad id is refused before the cache changes: the next step still matches.
        let mut cache = KvCache::new(&engine, 1);
        engine
            .forward(&ids[..4], 1, None, &mut cache, Logits::All, None)
            .unwrap();
        let e = engine
            .forward(&[97], 1, None, &mut cache, Logits::Last, None)
            .unwrap_err();
        assert!(e.to_string().contains("outside the vocabulary"), "{e}");
        let next = engine
            .forward(&ids[4..5], 1, None, &mut cache, Logits::Last, None)
            .unwrap();
        let d = max_diff(&next, &full[4 * VOCAB..5 * VOCAB]);
        assert!(d < 1e-5, "after an error: max |Δ| {d}");
    }
    // Greedy generation: the f32 engine gives the burn model's tokens, cached and not,
    // past the context (prompt 6 + 30 new > 24 positions: the window is cropped).
    let engine = GptEngine::load(src, KernelPath::detect()).unwrap();
    let prompt: Vec<u32> = vec![3, 14, 15, 92, 65, 35];
    let config = SamplingConfig::greedy(30);
    let want = generate(&model, &prompt, &config).unwrap();
    assert_eq!(generate(&engine, &prompt, &config).unwrap(), want);
    assert_eq!(
        generate_with(&engine, &prompt, &config, Decoding::Full).unwrap(),
        want
    );
    // Seeded sampling runs the same processors and sampler: same tokens as burn's.
    let sampled = SamplingConfig {
        max_new_tokens: 12,
        seed: 7,
        ..SamplingConfig::default()
    };
    assert_eq!(
        generate(&engine, &prompt, &sampled).unwrap(),
        generate(&model, &prompt, &sampled).unwrap()
    );
    // The int8 engine generates too (its tokens may differ from f32's).
    let int8 = GptEngine::load(&q, KernelPath::detect()).unwrap();
    assert_eq!(generate(&int8, &prompt, &config).unwrap().tokens.len(), 30);
}

#[test]
fn int8_is_close_to_f32_and_identical_on_every_kernel_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    let model = save_tiny(&src);
    std::fs::write(src.join("tokenizer.json"), "{}").unwrap();
    let ids = ids();
    let want = burn_logits(&model, &ids, 2, None);
    let scale = scale_of(&want);
    for (code, gran, asym, emb, tol) in [
        (WeightCode::Linear, Granularity::PerToken, false, true, 0.03),
        (WeightCode::Linear, Granularity::PerToken, true, true, 0.03),
        (WeightCode::Linear, Granularity::PerTensor, true, true, 0.05),
        (WeightCode::Linear, Granularity::PerToken, true, false, 0.03),
        (WeightCode::Log2, Granularity::PerToken, true, true, 0.5),
    ] {
        let out = dir.path().join(format!("q-{code:?}-{gran:?}-{asym}-{emb}"));
        let options = QuantOptions {
            weights: code,
            activations: gran,
            asymmetric: asym,
            int8_embeddings: emb,
        };
        let report = quantize_dir(&src, &out, &options, None).unwrap();
        assert!(report.int8_bytes * 2 < report.f32_bytes, "{report:?}");
        let q = read_quant_config(&out).unwrap().unwrap();
        // The four Conv1D weights of each of the 2 blocks are stored transposed.
        assert_eq!(q.transposed.len(), 8, "{:?}", q.transposed);
        assert!(q.is_transposed("transformer.h.1.mlp.c_fc.weight"));
        let c_fc = report
            .quantized
            .iter()
            .find(|(n, _, _)| n == "transformer.h.1.mlp.c_fc.weight")
            .unwrap();
        assert_eq!(c_fc.1, vec![80, 48], "stored [out, in]");
        let wte = report
            .quantized
            .iter()
            .any(|(n, _, k)| n == "transformer.wte.weight" && *k == "embedding");
        assert_eq!(wte, emb);
        let mut first: Option<Vec<f32>> = None;
        for path in KernelPath::available() {
            let engine = GptEngine::load(&out, path).unwrap();
            let kernels = engine.kernels();
            let head = kernels
                .iter()
                .find(|k| k.layers.starts_with("lm_head"))
                .unwrap();
            assert_eq!(head.kernel, if emb { path.name() } else { "f32-gemm" });
            assert!(kernels
                .iter()
                .filter(|k| !k.layers.starts_with("lm_head"))
                .all(|k| k.kernel == path.name()));
            let got = engine.logits(&ids, 2, None).unwrap();
            let d = max_diff(&got, &want);
            assert!(
                d <= tol * scale,
                "{code:?} {gran:?} asym {asym} emb {emb} {path:?}: max |Δ| {d} vs {scale}"
            );
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "{path:?} differs from the first path"),
            }
        }
    }
}

#[test]
fn static_scales_are_calibrated_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    let model = save_tiny(&src);
    let engine = GptEngine::load(&src, KernelPath::detect()).unwrap();
    let ids = ids();
    let batch = LmBatch {
        batch_size: 2,
        seq_len: 11,
        input_ids: ids.clone(),
        attention_mask: None,
    };
    let scales = calibrate(&engine, std::slice::from_ref(&batch), Calibration::MinMax).unwrap();
    // c_attn, attn.c_proj, c_fc, mlp.c_proj per block, and the tied head (wte).
    assert_eq!(scales.len(), 2 * 4 + 1, "{scales:?}");
    assert!(scales.contains_key("transformer.wte"), "{scales:?}");
    assert!(calibrate(&engine, &[], Calibration::MinMax)
        .unwrap_err()
        .to_string()
        .contains("no usable rows"));
    let rec = CalibrationRecord {
        method: Calibration::MinMax,
        file: "test".into(),
        rows: 2,
    };
    let out = dir.path().join("static");
    let symmetric = QuantOptions {
        asymmetric: false,
        ..QuantOptions::default()
    };
    quantize_dir(&src, &out, &symmetric, Some((scales, rec))).unwrap();
    let q = GptEngine::load(&out, KernelPath::detect()).unwrap();
    let got = q.logits(&ids, 2, None).unwrap();
    let want = burn_logits(&model, &ids, 2, None);
    let d = max_diff(&got, &want);
    assert!(d <= 0.1 * scale_of(&want), "static: max |Δ| {d}");
    // A missing scale is refused on load.
    let cfg = out.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["refinery_quantization"]["activation_scales"]
        .as_object_mut()
        .unwrap()
        .remove("transformer.h.1.mlp.c_fc");
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = GptEngine::load(&out, KernelPath::detect())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no activation scale for transformer.h.1.mlp.c_fc"),
        "{e}"
    );
}

#[test]
fn malformed_int8_gpt_checkpoints_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f32");
    save_tiny(&src);
    let q = dir.path().join("q");
    quantize_dir(&src, &q, &QuantOptions::default(), None).unwrap();
    let key = "transformer.h.1.mlp.c_fc.weight";
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
                e.1 = vec![48];
                e.2.truncate(48 * 4);
            }),
        ),
        (
            "not a positive scale",
            Box::new(|m| {
                let e = m.get_mut(&format!("{key}_scale")).unwrap();
                e.2[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
        ),
        (
            "expected [rows, 48]",
            Box::new(|m| {
                // The int8 weight in HF's [in, out] layout instead of [out, in].
                m.get_mut(key).unwrap().1 = vec![48, 80];
            }),
        ),
        (
            "-128",
            Box::new(|m| {
                m.get_mut("transformer.wte.weight").unwrap().2[7] = 0x80;
            }),
        ),
        (
            "missing tensor transformer.h.0.ln_2.bias",
            Box::new(|m| {
                m.remove("transformer.h.0.ln_2.bias");
            }),
        ),
        (
            "expected 80",
            Box::new(|m| {
                // c_fc with 79 outputs (rows, scales and bias consistent with each other).
                let e = m.get_mut(key).unwrap();
                e.1 = vec![79, 48];
                e.2.truncate(79 * 48);
                let s = m.get_mut(&format!("{key}_scale")).unwrap();
                s.1 = vec![79];
                s.2.truncate(79 * 4);
                let b = m.get_mut("transformer.h.1.mlp.c_fc.bias").unwrap();
                b.1 = vec![79];
                b.2.truncate(79 * 4);
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
        let e = GptEngine::load(&case, KernelPath::detect())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(want), "want {want:?}: {e}");
        assert!(e.contains("model.safetensors"), "names the file: {e}");
    }
    // An int8 Conv1D weight that config.json does not list as transposed.
    let cfg = q.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["refinery_quantization"]["transposed"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n != key);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = GptEngine::load(&q, KernelPath::detect())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(key) && e.contains("not listed"), "{e}");
    // Out-of-range ids and mismatched batches are errors.
    let engine = GptEngine::load(&src, KernelPath::Portable).unwrap();
    let e = engine.logits(&[1, 97], 1, None).unwrap_err().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
    let e = engine.logits(&[1, 2, 3], 2, None).unwrap_err().to_string();
    assert!(e.contains("3 ids for 2 rows"), "{e}");
    let e = engine
        .logits(&[1, 2], 1, Some(&[1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mask"), "{e}");
}

#[test]
fn export_gpt_int8_for_hf() {
    let Ok(root) = std::env::var("REFINERY_HF_EXPORT_GPT_INT8_DIR") else {
        eprintln!("skipped: set REFINERY_HF_EXPORT_GPT_INT8_DIR (scripts/hf-interop.sh does)");
        return;
    };
    let root = std::path::PathBuf::from(root);
    std::fs::create_dir_all(&root).unwrap();
    let (f32_dir, int8_dir) = (root.join("f32"), root.join("int8"));
    let model = save_tiny(&f32_dir);
    quantize_dir(&f32_dir, &int8_dir, &QuantOptions::default(), None).unwrap();
    let ids = ids();
    let engine = GptEngine::load(&int8_dir, KernelPath::detect()).unwrap();
    let reference = serde_json::json!({
        "shape": [2, 11],
        "input_ids": ids,
        "logits_f32": burn_logits(&model, &ids, 2, None),
        "logits_int8": engine.logits(&ids, 2, None).unwrap(),
    });
    std::fs::write(root.join("reference.json"), reference.to_string()).unwrap();
}

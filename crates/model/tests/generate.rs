//! Generation: KV cache vs full forward, greedy decoding and logits warpers vs HF
//! transformers, seeded sampling.
//!
//! Reference: `tests/fixtures/make_generate_reference.py` (HF `generate(do_sample=False)` on
//! the `gpt_tiny` checkpoint; HF's Temperature/TopK/TopP warpers and repetition penalty on
//! fixed logits). Tolerances: cached vs full logits max |Δ| ≤ 1e-5; warped logits
//! |Δ| ≤ 1e-6 · max(1, |x|) (f32 division by the temperature), identical `-inf` sets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use refinery_model::generate::{
    apply_repetition_penalty, generate, generate_with, process_logits, Decoding, GenerateError,
    KvCache, SamplingConfig, StopReason,
};
use refinery_model::hf::load_gpt;
use refinery_model::{Gpt, GptConfig};
use safetensors::SafeTensors;
use serde::Deserialize;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny() -> Gpt {
    load_gpt(&fixtures().join("gpt_tiny"), &Device::flex())
        .unwrap()
        .1
}

#[derive(Deserialize)]
struct GreedyCase {
    prompt: Vec<u32>,
    max_new_tokens: usize,
    eos_token_id: Option<u32>,
    repetition_penalty: f64,
    output: Vec<u32>,
}

#[derive(Deserialize)]
struct WarperCase {
    temperature: f64,
    top_k: usize,
    top_p: f64,
}

#[derive(Deserialize)]
struct Repetition {
    penalty: f64,
    input_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Reference {
    greedy: Vec<GreedyCase>,
    warpers: Vec<WarperCase>,
    repetition: Repetition,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixtures().join("generate_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// name -> rows of f32 `[R, V]`
fn warper_tensors() -> HashMap<String, Vec<Vec<f32>>> {
    let bytes = std::fs::read(fixtures().join("generate_warpers.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let v = view.shape()[1];
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, values.chunks(v).map(|r| r.to_vec()).collect())
        })
        .collect()
}

fn tokens(ids: &[i64], b: usize, dev: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(ids.to_vec(), [b, ids.len() / b]), dev)
}

fn max_abs(a: Tensor<3>, b: Tensor<3>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.into_data().try_into_vec().unwrap();
    let b: Vec<f32> = b.into_data().try_into_vec().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs `ids` through the cache in chunks of the given sizes and compares every chunk's
/// logits to the matching rows of one full forward.
fn check_cache(model: &Gpt, ids: &[i64], b: usize, chunks: &[usize]) -> f32 {
    let dev = Device::flex();
    let t = ids.len() / b;
    assert_eq!(chunks.iter().sum::<usize>(), t);
    let full = model.forward(tokens(ids, b, &dev)); // [B, T, V]
    let mut cache = KvCache::new(model.n_layer());
    let mut start = 0;
    let mut worst = 0.0f32;
    for &n in chunks {
        let chunk: Vec<i64> = (0..b)
            .flat_map(|r| ids[r * t + start..r * t + start + n].to_vec())
            .collect();
        let got = model
            .forward_cached(tokens(&chunk, b, &dev), &mut cache)
            .unwrap();
        let want = full.clone().narrow(1, start, n);
        worst = worst.max(max_abs(got, want));
        start += n;
        assert_eq!(cache.len(), start);
    }
    worst
}

#[test]
fn cached_logits_equal_full_forward_at_every_step() {
    let model = tiny();
    let ids: Vec<i64> = (0..32).map(|i| (i * 37 + 11) % 256).collect();
    // Prompt of 5, then one token at a time, then a multi-token chunk over a non-empty cache.
    let mut chunks = vec![5];
    chunks.extend(std::iter::repeat_n(1, 20));
    chunks.push(7);
    let d = check_cache(&model, &ids, 1, &chunks);
    eprintln!("gpt_tiny: max |cached - full| = {d:e}");
    assert!(d <= 1e-5, "max |cached - full| = {d}");

    // A random model (HF-default dropout in the config, inference device), batch 2.
    let dev = Device::flex();
    let model = GptConfig::new(97, 24, 48, 3, 4).init(&dev).unwrap();
    let ids: Vec<i64> = Tensor::<2, Int>::random([2, 24], Distribution::Uniform(0.0, 97.0), &dev)
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap();
    let d = check_cache(&model, &ids, 2, &[1, 1, 10, 1, 11]);
    eprintln!("random batch 2: max |cached - full| = {d:e}");
    assert!(d <= 1e-5, "max |cached - full| = {d}");
}

#[test]
fn forward_cached_rejects_overflow() {
    let model = tiny();
    let dev = Device::flex();
    let mut cache = KvCache::new(model.n_layer());
    let ids: Vec<i64> = (0..30).collect();
    model
        .forward_cached(tokens(&ids, 1, &dev), &mut cache)
        .unwrap();
    let err = model
        .forward_cached(tokens(&[1, 2, 3], 1, &dev), &mut cache)
        .unwrap_err();
    assert!(matches!(
        err,
        GenerateError::ContextOverflow {
            past: 30,
            new: 3,
            n_positions: 32
        }
    ));
}

#[test]
fn greedy_matches_hf_generate_token_for_token() {
    let model = tiny();
    let r = reference();
    assert_eq!(r.greedy.len(), 6);
    for (i, case) in r.greedy.iter().enumerate() {
        let config = SamplingConfig {
            eos_token_id: case.eos_token_id,
            repetition_penalty: case.repetition_penalty,
            ..SamplingConfig::greedy(case.max_new_tokens)
        };
        for decoding in [Decoding::Cached, Decoding::Full] {
            let g = generate_with(&model, &case.prompt, &config, decoding).unwrap();
            assert_eq!(g.tokens, case.output, "case {i}, {decoding:?}");
            let want_stop = if case.eos_token_id.is_some() {
                StopReason::Eos
            } else {
                StopReason::MaxNewTokens
            };
            assert_eq!(g.stop, want_stop, "case {i}");
        }
    }
}

/// True when some removed (`-inf`) position of `want` holds the same input logit as a kept
/// one: a tie straddles the top-p cut, where HF's choice follows torch's unstable sort.
fn tie_straddles_cut(input: &[f32], want: &[f32]) -> bool {
    let kept: Vec<f32> = input
        .iter()
        .zip(want)
        .filter(|(_, w)| w.is_finite())
        .map(|(x, _)| *x)
        .collect();
    input
        .iter()
        .zip(want)
        .any(|(x, w)| !w.is_finite() && kept.contains(x))
}

#[test]
fn warpers_match_hf_on_fixed_logits() {
    let r = reference();
    let t = warper_tensors();
    let logits = &t["logits"];
    let close =
        |a: f32, b: f32| (a.is_infinite() && a == b) || (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    let mut straddles = 0;
    for (i, w) in r.warpers.iter().enumerate() {
        let config = SamplingConfig {
            temperature: w.temperature,
            top_k: w.top_k,
            top_p: w.top_p,
            ..SamplingConfig::default()
        };
        let want_rows = &t[&format!("warped_{i}")];
        for (row, (input, want)) in logits.iter().zip(want_rows).enumerate() {
            let mut got = input.clone();
            process_logits(&mut got, &[], &config);
            let kept = |v: &[f32]| v.iter().filter(|x| x.is_finite()).count();
            assert_eq!(kept(&got), kept(want), "setting {i} row {row}: kept count");
            if tie_straddles_cut(input, want) {
                // Same number kept (above); the kept values must be the same multiset.
                straddles += 1;
                let sorted = |v: &[f32]| {
                    let mut s: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
                    s.sort_by(f32::total_cmp);
                    s
                };
                for (a, b) in sorted(&got).iter().zip(sorted(want)) {
                    assert!(close(*a, b), "setting {i} row {row}: {a} vs {b}");
                }
            } else {
                for (j, (a, b)) in got.iter().zip(want).enumerate() {
                    assert!(close(*a, *b), "setting {i} row {row} [{j}]: {a} vs {b}");
                }
            }
        }
    }
    // Rows with ties (the rounded rows, the all-equal row) under top-p straddle the cut;
    // all other row/setting pairs (84 in all) are compared element by element.
    let total = r.warpers.len() * logits.len();
    assert!(straddles >= 1);
    assert!(
        total - straddles >= 60,
        "only {} rows compared exactly",
        total - straddles
    );
}

#[test]
fn repetition_penalty_matches_hf() {
    let r = reference();
    let t = warper_tensors();
    for (input, want) in t["logits"].iter().zip(&t["repetition"]) {
        let mut got = input.clone();
        apply_repetition_penalty(&mut got, &r.repetition.input_ids, r.repetition.penalty);
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_top_k_one_is_greedy() {
    let model = tiny();
    let prompt = [61, 23, 77, 27];
    let config = SamplingConfig {
        max_new_tokens: 20,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 5,
        ..SamplingConfig::default()
    };
    let a = generate(&model, &prompt, &config).unwrap();
    let b = generate(&model, &prompt, &config).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.tokens.len(), 20);
    // Same draws without the cache.
    let c = generate_with(&model, &prompt, &config, Decoding::Full).unwrap();
    assert_eq!(a, c);
    // Another seed gives another sample; the greedy path is not what sampling produced.
    let other = generate(
        &model,
        &prompt,
        &SamplingConfig {
            seed: 6,
            ..config.clone()
        },
    )
    .unwrap();
    assert_ne!(a.tokens, other.tokens);
    let greedy = generate(&model, &prompt, &SamplingConfig::greedy(20)).unwrap();
    assert_ne!(a.tokens, greedy.tokens);

    // top-k = 1 (any temperature, top-p, seed) is greedy decoding.
    for seed in [0, 1, 2] {
        let k1 = SamplingConfig {
            temperature: 0.9,
            top_k: 1,
            top_p: 0.95,
            seed,
            ..config.clone()
        };
        assert_eq!(generate(&model, &prompt, &k1).unwrap(), greedy);
    }
}

#[test]
fn context_longer_than_n_positions_is_cropped_on_the_left() {
    let model = tiny(); // n_positions = 32
    let prompt: Vec<u32> = (0..30).map(|i| (i * 13 + 5) % 256).collect();
    let config = SamplingConfig::greedy(12); // 42 tokens in all
    let cached = generate(&model, &prompt, &config).unwrap();
    let full = generate_with(&model, &prompt, &config, Decoding::Full).unwrap();
    assert_eq!(cached, full);
    assert_eq!(cached.tokens.len(), 12);
    // The last token is the argmax after the last 32 tokens, computed by hand.
    let mut all = prompt.clone();
    all.extend(&cached.tokens[..11]);
    let window: Vec<i64> = all[all.len() - 32..].iter().map(|&i| i as i64).collect();
    let logits = model.forward(tokens(&window, 1, &Device::flex()));
    let last: Vec<f32> = logits.narrow(1, 31, 1).into_data().try_into_vec().unwrap();
    let want = refinery_model::generate::argmax(&last) as u32;
    assert_eq!(cached.tokens[11], want);

    // A prompt longer than the context works too (cropped before the first step).
    let long: Vec<u32> = (0..50).map(|i| (i * 7) % 256).collect();
    let a = generate(&model, &long, &SamplingConfig::greedy(3)).unwrap();
    let b = generate(&model, &long[18..], &SamplingConfig::greedy(1)).unwrap();
    assert_eq!(a.tokens[0], b.tokens[0]);
}

#[test]
fn bad_inputs_are_errors() {
    let model = tiny();
    let g = SamplingConfig::greedy(3);
    assert!(matches!(
        generate(&model, &[], &g),
        Err(GenerateError::EmptyPrompt)
    ));
    assert!(matches!(
        generate(&model, &[1, 256], &g),
        Err(GenerateError::TokenOutOfRange {
            id: 256,
            vocab_size: 256
        })
    ));
    let bad = SamplingConfig {
        top_p: 0.0,
        ..Default::default()
    };
    assert!(matches!(
        generate(&model, &[1], &bad),
        Err(GenerateError::InvalidConfig(_))
    ));
    let none = generate(&model, &[1], &SamplingConfig::greedy(0)).unwrap();
    assert!(none.tokens.is_empty());
}

#[test]
fn sparse_attention_models_decode_without_the_cache() {
    let dev = Device::flex();
    let mut config = GptConfig::new(61, 16, 32, 2, 4);
    config.sparse_attention = Some(refinery_model::attention::SparseAttention::SlidingWindow {
        window: 3,
        global_tokens: vec![],
    });
    let model = config.init(&dev).unwrap();
    let mut cache = KvCache::new(2);
    assert!(matches!(
        model.forward_cached(tokens(&[1, 2], 1, &dev), &mut cache),
        Err(GenerateError::SparseAttention)
    ));
    // generate() falls back to the full (sparse) forward: the same tokens as Decoding::Full,
    // and the last one is the argmax of the sparse forward.
    let prompt = [5u32, 9, 11];
    let a = generate(&model, &prompt, &SamplingConfig::greedy(6)).unwrap();
    let b = generate_with(&model, &prompt, &SamplingConfig::greedy(6), Decoding::Full).unwrap();
    assert_eq!(a, b);
    let mut all: Vec<i64> = prompt.iter().map(|&i| i as i64).collect();
    all.extend(a.tokens[..5].iter().map(|&i| i as i64));
    let logits = model.forward(tokens(&all, 1, &dev));
    let last: Vec<f32> = logits.narrow(1, 7, 1).into_data().try_into_vec().unwrap();
    assert_eq!(a.tokens[5], refinery_model::generate::argmax(&last) as u32);
}

//! Sparse attention (sliding window + global tokens, strided) against dense attention with the
//! equivalent mask: outputs, attention maps and gradients (max abs diff ≤ 1e-5), and GPT / BERT
//! models with `sparse_attention` in their config against the same weights run densely.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Distribution, Int, Tensor, TensorData};
use refinery_model::attention::{
    attention_probs, causal_mask, padding_mask, sparse_attention, sparse_mask, SparseAttention,
    SparseOptions,
};
use refinery_model::bert::BertForPreTraining;
use refinery_model::gpt::Gpt;
use refinery_model::{BertConfig, GptConfig, OutputOptions};

const TOL: f32 = 1e-5;

fn max_abs(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

fn window(window: usize, global_tokens: Vec<usize>) -> SparseAttention {
    SparseAttention::SlidingWindow {
        window,
        global_tokens,
    }
}

fn strided(stride: usize, local: usize) -> SparseAttention {
    SparseAttention::Strided { stride, local }
}

/// HF-style attention mask `[B, T]` with `lens[b]` real tokens (right padding).
fn lengths_mask(lens: &[usize], t: usize, device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = lens
        .iter()
        .flat_map(|&l| (0..t).map(move |j| i64::from(j < l)))
        .collect();
    Tensor::from_data(TensorData::new(data, [lens.len(), t]), device)
}

/// Dense mask `[B, 1, T, T]`: the pattern's mask, causal mask and key padding.
fn dense_mask(
    pattern: &SparseAttention,
    t: usize,
    causal: bool,
    padding: Option<Tensor<2, Bool>>,
    b: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    let mut m = sparse_mask(pattern, t, causal, device);
    if causal {
        m = m.bool_or(causal_mask(t, device));
    }
    let m = m.reshape([1, 1, t, t]).expand([b, 1, t, t]);
    match padding {
        Some(p) => m.bool_or(p.reshape([b, 1, 1, t]).expand([b, 1, t, t])),
        None => m,
    }
}

/// `[B, T]` weights `[B, 1, T, 1]`: 1 for real query rows, 0 for padding rows (whose output is
/// unspecified).
fn row_weights(lens: &[usize], t: usize, device: &Device) -> Tensor<4> {
    lengths_mask(lens, t, device)
        .float()
        .reshape([lens.len(), 1, t, 1])
}

/// Compares sparse and dense attention on random `q, k, v` (`[B, H, T, Dh]`): outputs on real
/// rows, attention maps on real rows, and the gradients of a loss over the real rows.
fn check(pattern: &SparseAttention, t: usize, causal: bool, lens: Option<&[usize]>) {
    let device = Device::flex().autodiff();
    device.seed(t as u64);
    let (b, h, dh) = (2, 2, 8);
    let full = vec![t; b];
    let lens = lens.unwrap_or(&full);
    let padded = lens.iter().any(|&l| l < t);
    let rand = || Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device);
    let (q0, k0, v0) = (rand(), rand(), rand());
    let w_out = Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device)
        * row_weights(lens, t, &device);
    let padding = padded.then(|| padding_mask(lengths_mask(lens, t, &device))); // [B, T]

    // Sparse
    let (q, k, v) = (
        q0.clone().require_grad(),
        k0.clone().require_grad(),
        v0.clone().require_grad(),
    );
    let opts = SparseOptions {
        causal,
        key_padding: padding.clone(),
        dropout: None,
        output_attentions: true,
    };
    let (out_s, maps_s) = sparse_attention(q.clone(), k.clone(), v.clone(), pattern, opts);
    let grads_s = (out_s.clone() * w_out.clone()).sum().backward();
    let gs: Vec<Tensor<4>> = [&q, &k, &v]
        .iter()
        .map(|x| x.grad(&grads_s).expect("sparse grad"))
        .collect();

    // Dense with the equivalent mask
    let (qd, kd, vd) = (q0.require_grad(), k0.require_grad(), v0.require_grad());
    let mask = dense_mask(pattern, t, causal, padding, b, &device);
    let probs = attention_probs(qd.clone(), kd.clone(), Some(mask)); // [B, H, T, T]
    let out_d = probs.clone().matmul(vd.clone());
    let grads_d = (out_d.clone() * w_out).sum().backward();
    let gd: Vec<Tensor<4>> = [&qd, &kd, &vd]
        .iter()
        .map(|x| x.grad(&grads_d).expect("dense grad"))
        .collect();

    let rows = row_weights(lens, t, &device);
    let what = format!("{pattern:?} t={t} causal={causal} lens={lens:?}");
    let d_out = max_abs(out_s * rows.clone(), out_d * rows.clone());
    assert!(d_out <= TOL, "{what}: output differs by {d_out}");
    let maps_s = maps_s.expect("maps were requested");
    assert_eq!(maps_s.dims(), [b, h, t, t]);
    let d_maps = max_abs(maps_s * rows.clone(), probs * rows);
    assert!(d_maps <= TOL, "{what}: attention maps differ by {d_maps}");
    for (name, (a, d)) in ["q", "k", "v"].iter().zip(gs.into_iter().zip(gd)) {
        let diff = max_abs(a, d);
        assert!(diff <= TOL, "{what}: d/d{name} differs by {diff}");
    }
}

#[test]
fn sliding_window_equals_dense_with_the_mask() {
    // Lengths not divisible by the window; windows larger than T; global tokens in the
    // first block, in the middle and at the end; duplicates with the band.
    for causal in [false, true] {
        check(&window(4, vec![]), 13, causal, None);
        check(&window(5, vec![0]), 23, causal, None);
        check(&window(3, vec![0, 11, 22, 40]), 23, causal, None);
        check(&window(1, vec![2]), 9, causal, None);
        check(&window(32, vec![1]), 11, causal, None);
        check(&window(4, vec![0, 7]), 19, causal, Some(&[19, 12]));
        check(&window(6, vec![]), 17, causal, Some(&[10, 17]));
    }
}

#[test]
fn strided_equals_dense_with_the_mask() {
    for causal in [false, true] {
        check(&strided(4, 4), 21, causal, None);
        check(&strided(5, 2), 23, causal, None);
        check(&strided(3, 7), 16, causal, None);
        check(&strided(1, 1), 7, causal, None);
        check(&strided(40, 3), 13, causal, None);
        check(&strided(4, 3), 19, causal, Some(&[19, 11]));
    }
}

#[test]
fn sparse_mask_matches_the_definitions() {
    let dev = Device::flex();
    let m: Vec<bool> = sparse_mask(&window(2, vec![4]), 6, false, &dev)
        .into_data()
        .try_to_vec()
        .expect("bool data");
    let visible = |i: usize, j: usize| !m[i * 6 + j];
    assert!(visible(0, 1) && !visible(0, 2) && visible(3, 2) && !visible(3, 1));
    assert!(visible(0, 4) && visible(4, 0) && visible(4, 5) && visible(1, 4));
    assert!(visible(0, 0) && visible(5, 5));

    // Causal strided, stride 3, local 2: i = 7 sees 6, 7 (local) and 4, 1 (strided).
    let m: Vec<bool> = sparse_mask(&strided(3, 2), 9, true, &dev)
        .into_data()
        .try_to_vec()
        .expect("bool data");
    let row: Vec<usize> = (0..9).filter(|&j| !m[7 * 9 + j]).collect();
    assert_eq!(row, vec![1, 4, 6, 7]);
    // Bidirectional strided is symmetric: i = 4 sees 1, 3, 4, 5, 7.
    let m: Vec<bool> = sparse_mask(&strided(3, 2), 9, false, &dev)
        .into_data()
        .try_to_vec()
        .expect("bool data");
    let row: Vec<usize> = (0..9).filter(|&j| !m[4 * 9 + j]).collect();
    assert_eq!(row, vec![1, 3, 4, 5, 7]);
}

fn ids(data: Vec<i64>, b: usize, t: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(data, [b, t]), device)
}

/// Masked next-token cross-entropy: `logits [B, T, V]`, targets `[B, T]`, weights `[B, T]`.
fn nll(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Tensor<2>) -> Tensor<1> {
    let [b, t, _] = logits.dims();
    let logp = log_softmax(logits, 2).gather(2, targets.reshape([b, t, 1])); // [B, T, 1]
    (logp.reshape([b, t]) * weights).sum().neg()
}

/// GPT forward with every block run densely under the sparse pattern's dense mask.
fn gpt_dense_reference(
    model: &Gpt,
    pattern: &SparseAttention,
    tokens: Tensor<2, Int>,
    am: Tensor<2, Int>,
) -> Tensor<3> {
    let [b, t] = tokens.dims();
    let device = tokens.device();
    let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
    let mut x = model.wte.forward(tokens) + model.wpe.forward(positions); // [B, T, D]
    let mask = dense_mask(pattern, t, true, Some(padding_mask(am)), b, &device);
    for block in &model.h {
        x = block.forward(x, Some(mask.clone())).0;
    }
    let x = model.ln_f.forward(x);
    let [_, _, d] = x.dims();
    let [v, _] = model.wte.weight.val().dims();
    x.reshape([b * t, d])
        .matmul(model.wte.weight.val().transpose())
        .reshape([b, t, v])
}

#[test]
fn gpt_with_sparse_attention_trains_like_dense_with_the_mask() {
    for pattern in [window(3, vec![0, 5]), strided(3, 2)] {
        let device = Device::flex().autodiff();
        device.seed(11);
        let mut config = GptConfig::new(29, 16, 16, 2, 2).with_dropout(0.0);
        config.sparse_attention = Some(pattern.clone());
        let sparse = config.init(&device).expect("valid config");
        let (b, t) = (2, 13);
        let data: Vec<i64> = (0..b * t).map(|n| ((n * 7 + 3) % 29) as i64).collect();
        let tokens = ids(data.clone(), b, t, &device);
        let targets: Vec<i64> = data.iter().map(|&x| (x + 1) % 29).collect();
        let targets = ids(targets, b, t, &device);
        let lens = [13, 9];
        let am = lengths_mask(&lens, t, &device);
        let weights = am.clone().float(); // [B, T]

        let mut dense = sparse.clone();
        for block in &mut dense.h {
            block.attn.sparse = None;
        }
        let out = sparse.forward_with(
            tokens.clone(),
            Some(am.clone()),
            OutputOptions {
                hidden_states: false,
                attentions: true,
            },
        );
        assert_eq!(out.attentions.len(), 2);
        assert_eq!(out.attentions[0].dims(), [b, 2, t, t]);
        let logits_d = gpt_dense_reference(&dense, &pattern, tokens.clone(), am.clone());
        let w3 = weights.clone().reshape([b, t, 1]);
        let diff: f32 = ((out.logits.clone() - logits_d.clone()) * w3)
            .abs()
            .max()
            .into_scalar();
        assert!(diff <= TOL, "{pattern:?}: logits differ by {diff}");

        // One AdamW step on each; gradients and the next losses agree.
        let loss_s = nll(out.logits, targets.clone(), weights.clone());
        let loss_d = nll(logits_d, targets.clone(), weights.clone());
        let gs = GradientsParams::from_grads(loss_s.backward(), &sparse);
        let gd = GradientsParams::from_grads(loss_d.backward(), &dense);
        for (name, id) in [
            ("c_attn", sparse.h[0].attn.c_attn.weight.id),
            ("wte", sparse.wte.weight.id),
            ("wpe", sparse.wpe.weight.id),
        ] {
            let a = gs.get::<2>(id).expect("sparse grad");
            let d = gd.get::<2>(id).expect("dense grad");
            let diff: f32 = (a - d).abs().max().into_scalar();
            assert!(diff <= TOL, "{pattern:?}: grad of {name} differs by {diff}");
        }
        let sparse = AdamWConfig::new().init().step(1e-2, sparse, gs);
        let mut dense = AdamWConfig::new().init().step(1e-2, dense, gd);
        for block in &mut dense.h {
            block.attn.sparse = None;
        }
        let l_s: f32 = nll(
            sparse
                .forward_with(tokens.clone(), Some(am.clone()), OutputOptions::default())
                .logits,
            targets.clone(),
            weights.clone(),
        )
        .into_scalar();
        let l_d: f32 = nll(
            gpt_dense_reference(&dense, &pattern, tokens, am),
            targets,
            weights,
        )
        .into_scalar();
        assert!(
            (l_s - l_d).abs() <= 1e-4,
            "{pattern:?}: loss after a step {l_s} vs {l_d}"
        );
    }
}

/// BERT MLM logits with every layer run densely under the sparse pattern's dense mask.
fn bert_dense_reference(
    model: &BertForPreTraining,
    pattern: &SparseAttention,
    input: Tensor<2, Int>,
    am: Tensor<2, Int>,
) -> Tensor<3> {
    let bert = &model.bert;
    let [b, t] = input.dims();
    let device = input.device();
    let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]);
    let types = Tensor::<2, Int>::zeros([b, t], &device);
    let x = bert.word_embeddings.forward(input)
        + bert.position_embeddings.forward(positions)
        + bert.token_type_embeddings.forward(types);
    let mut x = bert.embeddings_layer_norm.forward(x);
    let mask = dense_mask(pattern, t, false, Some(padding_mask(am)), b, &device);
    for layer in &bert.layer {
        x = layer.forward(x, Some(mask.clone())).0;
    }
    model.mlm_logits(x)
}

#[test]
fn bert_with_sparse_attention_trains_like_dense_with_the_mask() {
    for pattern in [window(2, vec![0]), strided(4, 2)] {
        let device = Device::flex().autodiff();
        device.seed(5);
        let mut config = BertConfig::new(31, 16, 2, 2, 32);
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        config.max_position_embeddings = 32;
        config.sparse_attention = Some(pattern.clone());
        let sparse = config.init(&device).expect("valid config");
        let mut dense = sparse.clone();
        for layer in &mut dense.bert.layer {
            layer.sparse = None;
        }
        let (b, t) = (2, 15);
        let data: Vec<i64> = (0..b * t).map(|n| ((n * 5 + 1) % 31) as i64).collect();
        let input = ids(data.clone(), b, t, &device);
        let targets = ids(data.iter().map(|&x| (x * 3) % 31).collect(), b, t, &device);
        let am = lengths_mask(&[11, 15], t, &device);
        let weights = am.clone().float();

        let out = sparse.bert.forward(
            input.clone(),
            None,
            Some(am.clone()),
            OutputOptions::default(),
        );
        assert!(out.attentions.is_empty());
        let logits_s = sparse.mlm_logits(out.last_hidden_state);
        let logits_d = bert_dense_reference(&dense, &pattern, input, am);
        let w3 = weights.clone().reshape([b, t, 1]);
        let diff: f32 = ((logits_s.clone() - logits_d.clone()) * w3)
            .abs()
            .max()
            .into_scalar();
        assert!(diff <= TOL, "{pattern:?}: MLM logits differ by {diff}");
        let gs = GradientsParams::from_grads(
            nll(logits_s, targets.clone(), weights.clone()).backward(),
            &sparse,
        );
        let gd = GradientsParams::from_grads(nll(logits_d, targets, weights).backward(), &dense);
        for (name, id) in [
            ("query", sparse.bert.layer[0].query.weight.id),
            ("value", sparse.bert.layer[1].value.weight.id),
            ("word_embeddings", sparse.bert.word_embeddings.weight.id),
        ] {
            let a = gs.get::<2>(id).expect("sparse grad");
            let d = gd.get::<2>(id).expect("dense grad");
            let diff: f32 = (a - d).abs().max().into_scalar();
            assert!(diff <= TOL, "{pattern:?}: grad of {name} differs by {diff}");
        }
    }
}

#[test]
fn config_round_trips_through_config_json() {
    let mut gpt = GptConfig::new(50, 64, 16, 1, 2);
    let plain = serde_json::to_value(&gpt).expect("json");
    assert!(
        plain.get("sparse_attention").is_none(),
        "absent key stays absent"
    );
    gpt.sparse_attention = Some(window(8, vec![0, 3]));
    let dir = tempfile::tempdir().expect("tempdir");
    let model = gpt.init(&Device::flex()).expect("valid");
    refinery_model::hf::save_gpt(&model, &gpt, dir.path()).expect("save");
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        json["sparse_attention"],
        serde_json::json!({"pattern": "sliding_window", "window": 8, "global_tokens": [0, 3]})
    );
    let back = refinery_model::hf::read_gpt_config(dir.path()).expect("read");
    assert_eq!(back, gpt);
    let (_, loaded) = refinery_model::hf::load_gpt(dir.path(), &Device::flex()).expect("load");
    assert_eq!(loaded.h[0].attn.sparse, gpt.sparse_attention);

    let mut bert = BertConfig::new(50, 16, 1, 2, 32);
    bert.sparse_attention = Some(strided(16, 4));
    let text = serde_json::to_string(&bert).expect("json");
    assert!(text.contains(r#""sparse_attention":{"pattern":"strided","stride":16,"local":4}"#));
    let back: BertConfig = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, bert);
    // `global_tokens` defaults to none.
    let p: SparseAttention =
        serde_json::from_str(r#"{"pattern": "sliding_window", "window": 4}"#).expect("parse");
    assert_eq!(p, window(4, vec![]));
}

#[test]
fn invalid_sparse_configs_are_rejected() {
    let with = |p: SparseAttention| {
        let mut c = GptConfig::new(50, 64, 16, 1, 2);
        c.sparse_attention = Some(p);
        c.validate().map_err(|e| e.to_string())
    };
    assert!(with(window(4, vec![0, 63])).is_ok());
    assert!(with(strided(8, 8)).is_ok());
    let err = with(window(0, vec![])).expect_err("window 0");
    assert!(err.contains("window must be >= 1"), "{err}");
    let err = with(window(4, vec![64])).expect_err("global out of range");
    assert!(err.contains("global token position 64"), "{err}");
    let err = with(window(4, vec![3, 3])).expect_err("duplicate");
    assert!(err.contains("listed twice"), "{err}");
    let err = with(strided(0, 4)).expect_err("stride 0");
    assert!(err.contains("stride must be >= 1"), "{err}");
    let err = with(strided(4, 0)).expect_err("local 0");
    assert!(err.contains("local must be >= 1"), "{err}");

    let mut bert = BertConfig::new(50, 16, 1, 2, 32);
    bert.max_position_embeddings = 16;
    bert.sparse_attention = Some(window(2, vec![16]));
    assert!(bert.validate().is_err());
    assert!(bert.init(&Device::flex()).is_err());

    for bad in [
        r#"{"pattern": "dilated", "window": 4}"#,
        r#"{"pattern": "strided", "stride": 4}"#,
        r#"{"pattern": "sliding_window", "window": 4, "windw": 3}"#,
        r#"{"window": 4}"#,
    ] {
        assert!(
            serde_json::from_str::<SparseAttention>(bad).is_err(),
            "{bad} should not parse"
        );
    }
}

//! DAE objectives on a tiny BART: BART text infilling and T5 span corruption each drive the
//! seq2seq loss from ~ln V to near its floor (0) on a synthetic task. A plain AdamW loop.
//! Also checks `seq2seq_loss` against HF's loss on the BART parity fixture.
//!
//! Task: every row is `<s> w_0 .. w_11 </s>` with position-coded tokens
//! `w_i = 4 + i·K + v` (K = 4 values, `v` random per row). Any kept token reveals `v`, and the
//! ids reveal positions, so the original row is fully determined by the corrupted input:
//! loss floor 0. The decoder alone cannot know `v` before it has seen a content token (and, for
//! T5, which positions were removed), so reaching the floor needs the encoder and
//! cross-attention; the first-content-token accuracy (chance 1/K) is checked too.

use std::path::Path;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::{BartConfig, BartForConditionalGeneration, OutputOptions};
use refinery_train::data::splitmix64;
use refinery_train::objectives::dae::{
    collate, row_seed, seq2seq_loss, NoisedRow, SpanCorruption, TextInfilling,
};

const L: usize = 12;
const K: u64 = 4;
/// 4 specials (`<s>`=0, `<pad>`=1, `</s>`=2, `<mask>`=3) + L·K content + 4 sentinels.
const V: usize = 4 + L * K as usize + 4;
const FIRST_SENTINEL: i64 = V as i64 - 1;

fn row(seed: u64) -> Vec<i64> {
    let v = splitmix64(seed) % K;
    let mut r = vec![0i64];
    r.extend((0..L as u64).map(|i| (4 + i * K + v) as i64));
    r.push(2);
    r
}

fn tiny_bart(dev: &Device) -> BartForConditionalGeneration {
    let mut config = BartConfig::new(V, 32, 1, 4, 64).with_dropout(0.0);
    config.max_position_embeddings = 16;
    config.init(dev).unwrap()
}

/// Trains for `steps` on rows noised by `noise`; returns (loss curve every 25 steps, mean of
/// the last 10 losses, first-content-token accuracy on a fresh batch).
fn train(
    name: &str,
    steps: u64,
    noise: impl Fn(&[i64], u64) -> NoisedRow,
) -> (Vec<(u64, f32)>, f32, f32) {
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let mut model = tiny_bart(&dev);
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let batch_size = 16u64;
    let batch = |position: u64| {
        let rows: Vec<NoisedRow> = (0..batch_size)
            .map(|r| {
                let s = row_seed(7, position, r);
                noise(&row(s), splitmix64(s))
            })
            .collect();
        collate(&rows, 1, 2).to_tensors(&dev)
    };
    let mut curve = Vec::new();
    let mut tail = 0.0;
    for step in 0..steps {
        let b = batch(step);
        let out = model.forward(
            b.input_ids,
            Some(b.attention_mask),
            b.decoder_input_ids,
            Some(b.decoder_attention_mask),
            OutputOptions::default(),
        );
        let loss = seq2seq_loss(out.logits, b.labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
        let l: f32 = loss.into_scalar();
        if step % 25 == 0 || step == steps - 1 {
            curve.push((step, l));
        }
        if step >= steps - 10 {
            tail += l / 10.0;
        }
    }
    // First-content-token accuracy on an unseen batch (position 1 of the labels for BART,
    // the token after the first sentinel for T5).
    let b = batch(1_000_000);
    let out = model.forward(
        b.input_ids,
        Some(b.attention_mask),
        b.decoder_input_ids,
        Some(b.decoder_attention_mask),
        OutputOptions::default(),
    );
    let pred: Vec<i64> = out
        .logits
        .narrow(1, 1, 1)
        .argmax(2)
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    let want: Vec<i64> = b
        .labels
        .narrow(1, 1, 1)
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .unwrap();
    let acc = pred.iter().zip(&want).filter(|(p, w)| p == w).count() as f32 / want.len() as f32;
    let shown: Vec<String> = curve.iter().map(|(s, l)| format!("{s}:{l:.3}")).collect();
    eprintln!(
        "{name}: loss curve (step:loss) {}; last-10 mean {tail:.4}; first-token accuracy {acc:.2}",
        shown.join(" ")
    );
    (curve, tail, acc)
}

#[test]
fn bart_text_infilling_loss_falls_to_its_floor() {
    let noise = TextInfilling::bart(3, vec![0, 1, 2, 3]);
    noise.validate().unwrap();
    let (curve, tail, acc) = train("BART text infilling", 200, |r, s| noise.apply(r, s));
    let first = curve[0].1;
    assert!(
        first > 3.0,
        "initial loss {first} (ln V = {:.2})",
        (V as f32).ln()
    );
    assert!(tail < 0.05, "loss {first} -> {tail} (floor 0)");
    assert!(
        acc > 0.9,
        "first content token accuracy {acc} (chance 0.25)"
    );
}

#[test]
fn t5_span_corruption_loss_falls_to_its_floor() {
    let mut noise = SpanCorruption::t5(FIRST_SENTINEL, Some(2), vec![0, 1, 2, 3]);
    noise.num_sentinels = 4;
    noise.validate().unwrap();
    let (curve, tail, acc) = train("T5 span corruption", 200, |r, s| noise.apply(r, s));
    let first = curve[0].1;
    assert!(
        first > 3.0,
        "initial loss {first} (ln V = {:.2})",
        (V as f32).ln()
    );
    assert!(tail < 0.05, "loss {first} -> {tail} (floor 0)");
    assert!(
        acc > 0.9,
        "first span token accuracy {acc} (chance <= 0.25)"
    );
}

/// `seq2seq_loss` on the BART parity fixture equals HF's `BartForConditionalGeneration` loss
/// (labels with -100 padding) within 1e-5.
#[test]
fn seq2seq_loss_matches_hf_on_the_bart_fixture() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    let dev = Device::flex();
    let (_, model) = refinery_model::hf_bart::load_bart(&fixtures.join("bart_tiny"), &dev).unwrap();
    let bytes = std::fs::read(fixtures.join("bart_tiny_reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ints = |name: &str| {
        let view = st.tensor(name).unwrap();
        let v: Vec<i64> = view
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let shape = [view.shape()[0], view.shape()[1]];
        Tensor::<2, Int>::from_data(TensorData::new(v, shape), &dev)
    };
    let want = f32::from_le_bytes(st.tensor("loss").unwrap().data().try_into().unwrap());
    let out = model.forward(
        ints("input_ids"),
        Some(ints("attention_mask")),
        ints("decoder_input_ids"),
        Some(ints("decoder_attention_mask")),
        OutputOptions::default(),
    );
    let got: f32 = seq2seq_loss(out.logits, ints("labels")).into_scalar();
    eprintln!("seq2seq loss {got} vs HF {want}");
    assert!((got - want).abs() < 1e-5, "{got} vs HF {want}");
}

//! CLM training: the loss reaches its floor, the loss matches PyTorch, and an interrupted
//! then resumed run reproduces the uninterrupted loss curve.

use std::path::Path;
use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf::load_gpt;
use refinery_model::GptConfig;
use refinery_train::data::{CountingSequences, TokenBatches};
use refinery_train::objectives::clm_loss;
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::{TrainConfig, Trainer};
use safetensors::SafeTensors;

/// burn's RNG (init, dropout) is global per device: tests that seed it must not interleave.
static RNG: Mutex<()> = Mutex::new(());

fn schedule(total_steps: usize) -> LrSchedule {
    LrSchedule {
        peak_lr: 1e-2,
        min_lr: 1e-3,
        warmup_steps: 5,
        total_steps,
        decay: Decay::Cosine,
    }
}

/// HF `GPT2LMHeadModel(tokens, labels=tokens).loss` on the model crate's fixture
/// (crates/model/tests/fixtures/make_gpt_reference.py). Tolerance 1e-5.
#[test]
fn clm_loss_matches_hf() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures");
    let dev = Device::flex();
    let (_, model) = load_gpt(&fixtures.join("gpt_tiny"), &dev).unwrap();
    let bytes = std::fs::read(fixtures.join("gpt_tiny_reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tok = st.tensor("tokens").unwrap();
    let ids: Vec<i64> = tok
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want = f32::from_le_bytes(st.tensor("clm_loss").unwrap().data().try_into().unwrap());
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 16]), &dev);
    let got: f32 = clm_loss(model.forward(tokens.clone()), tokens, None).into_scalar();
    assert!((got - want).abs() <= 1e-5, "clm loss {got} vs HF {want}");
}

#[test]
fn clm_loss_falls_to_its_floor() {
    // Counting task: every next token is determined, floor 0. Start: ~ln(16) = 2.77.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let model = GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.0);
    let mut trainer = Trainer::new(model, TrainConfig::new(schedule(60)), &dev).unwrap();
    let mut data = CountingSequences::new(16, 16, 8, 1);
    let first = trainer.step(&mut data);
    let mut last = first;
    for _ in 1..60 {
        last = trainer.step(&mut data);
    }
    assert!(first.loss > 2.0, "first loss {}", first.loss);
    assert!(
        last.loss < 0.1,
        "loss after 60 steps {} (floor 0)",
        last.loss
    );
}

#[test]
fn resumed_run_has_the_same_loss_curve() {
    // Dropout, accumulation and clipping all on: each one is a way to break exact resume.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let model = GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.1);
    let mut config = TrainConfig::new(schedule(8));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 7;
    let data = CountingSequences::new(16, 16, 4, 3);

    let mut trainer = Trainer::new(model.clone(), config.clone(), &dev).unwrap();
    let mut d = data.clone();
    let full: Vec<f64> = (0..8).map(|_| trainer.step(&mut d).loss).collect();

    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(model, config, &dev).unwrap();
    let mut d = data.clone();
    let mut resumed: Vec<f64> = (0..4).map(|_| trainer.step(&mut d).loss).collect();
    trainer.save_checkpoint(dir.path(), d.position()).unwrap();
    drop(trainer);

    let (mut trainer, position) = Trainer::resume(dir.path(), &dev).unwrap();
    assert_eq!(trainer.step, 4);
    let mut d = data.clone();
    d.seek(position);
    resumed.extend((0..4).map(|_| trainer.step(&mut d).loss));

    for (i, (a, b)) in full.iter().zip(&resumed).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6,
            "step {i}: uninterrupted {a} vs resumed {b}"
        );
    }
}

//! CLM training: the loss reaches its floor, the loss matches PyTorch, an interrupted then
//! resumed run reproduces the uninterrupted loss curve (directly and through the run loop),
//! and evaluation equals a direct computation.

use std::path::Path;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use refinery_model::hf::load_gpt;
use refinery_model::GptConfig;
use refinery_train::data::{BatchSource, CountingSequences, LmBatch};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::objectives::clm_loss;
use refinery_train::precision::Precision;
use refinery_train::run::{latest_checkpoint, LATEST_FILE};
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::{run, GptClmTask, Observer, RunOptions, StepRecord, TrainConfig, Trainer};
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
    let task = GptClmTask::new(model).unwrap();
    let mut trainer = Trainer::new(task, TrainConfig::new(schedule(60)), &dev).unwrap();
    let mut data = CountingSequences::new(16, 16, 8, 1);
    let first = trainer.step(&mut data).unwrap();
    let mut last = first;
    for _ in 1..60 {
        last = trainer.step(&mut data).unwrap();
    }
    assert!(first.loss > 2.0, "first loss {}", first.loss);
    assert!(
        last.loss < 0.1,
        "loss after 60 steps {} (floor 0)",
        last.loss
    );
    // Evaluation agrees: next-token accuracy ~1, perplexity ~1.
    let mut valid = CountingSequences::new(16, 16, 8, 99);
    let report = trainer.evaluate(&mut valid, 2).unwrap();
    assert!(report.perplexity < 1.15, "{report:?}");
    assert!(report.metrics["lm_accuracy"] > 0.95, "{report:?}");
}

#[test]
fn bf16_mixed_precision_trains_with_f32_master_weights() {
    // The same run as `clm_loss_falls_to_its_floor` with bf16 compute: the loss still reaches
    // the floor, the first loss is within bf16 rounding of the f32 one, and the parameters the
    // optimizer updates stay f32.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let model = GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.0);
    let run = |precision: Precision| {
        let mut config = TrainConfig::new(schedule(60));
        config.precision = precision;
        let mut trainer =
            Trainer::new(GptClmTask::new(model.clone()).unwrap(), config, &dev).unwrap();
        let mut data = CountingSequences::new(16, 16, 8, 1);
        let losses: Vec<f64> = (0..60)
            .map(|_| trainer.step(&mut data).unwrap().loss)
            .collect();
        (losses, trainer)
    };
    let (f32_losses, _) = run(Precision::F32);
    let (bf16_losses, trainer) = run(Precision::Bf16);
    assert!(
        (f32_losses[0] - bf16_losses[0]).abs() < 0.1,
        "first loss f32 {} vs bf16 {}",
        f32_losses[0],
        bf16_losses[0]
    );
    assert!(
        bf16_losses[59] < 0.15,
        "bf16 loss after 60 steps {}",
        bf16_losses[59]
    );
    assert_eq!(trainer.model.wte.weight.val().dtype(), DType::F32);
}

#[test]
fn resumed_run_has_the_same_loss_curve() {
    // Dropout, accumulation and clipping all on: each one is a way to break exact resume.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let task = GptClmTask::new(GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.1)).unwrap();
    let mut config = TrainConfig::new(schedule(8));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 7;
    let data = CountingSequences::new(16, 16, 4, 3);

    let mut trainer = Trainer::new(task.clone(), config.clone(), &dev).unwrap();
    let mut d = data.clone();
    let full: Vec<f64> = (0..8).map(|_| trainer.step(&mut d).unwrap().loss).collect();

    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(task, config, &dev).unwrap();
    let mut d = data.clone();
    let mut resumed: Vec<f64> = (0..4).map(|_| trainer.step(&mut d).unwrap().loss).collect();
    trainer.save_checkpoint(dir.path(), d.position()).unwrap();
    drop(trainer);

    let (mut trainer, position) = Trainer::<GptClmTask>::resume(dir.path(), &dev).unwrap();
    assert_eq!(trainer.step, 4);
    let mut d = data.clone();
    d.seek(position);
    resumed.extend((0..4).map(|_| trainer.step(&mut d).unwrap().loss));

    for (i, (a, b)) in full.iter().zip(&resumed).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6,
            "step {i}: uninterrupted {a} vs resumed {b}"
        );
    }
}

/// Stops the run loop after `stop_after` steps (as a kill would: no checkpoint).
struct StopAfter {
    stop_after: usize,
    steps: Vec<usize>,
    checkpoints: Vec<usize>,
    start: Option<usize>,
}

impl StopAfter {
    fn new(stop_after: usize) -> Self {
        Self {
            stop_after,
            steps: Vec::new(),
            checkpoints: Vec::new(),
            start: None,
        }
    }
}

impl Observer for StopAfter {
    fn on_start(&mut self, start_step: usize, _total: usize) {
        self.start = Some(start_step);
    }
    fn on_step(&mut self, record: &StepRecord) {
        self.steps.push(record.step);
    }
    fn on_checkpoint(&mut self, step: usize, _dir: &Path) {
        self.checkpoints.push(step);
    }
    fn should_stop(&mut self) -> bool {
        self.steps.len() >= self.stop_after
    }
}

fn run_options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        total_steps: 8,
        eval_every: 4,
        eval_batches: 2,
        save_every: 3,
        keep: 2,
        extra_files: Vec::new(),
        steps_per_epoch: None,
        eval_each_epoch: false,
        best: None,
    }
}

/// `(step, loss, lr, grad_norm, eval_loss)` of every line of a metrics log.
fn curve(out: &Path) -> Vec<(u64, f64, f64, f64, Option<f64>)> {
    read_metrics(&out.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["lr"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
                v.get("eval_loss").and_then(|x| x.as_f64()),
            )
        })
        .collect()
}

#[test]
fn run_loop_resume_gives_the_uninterrupted_metrics_log() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let task = GptClmTask::new(GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.1)).unwrap();
    let mut config = TrainConfig::new(schedule(8));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 11;
    let train = CountingSequences::new(16, 16, 4, 3);
    let valid = CountingSequences::new(16, 16, 4, 1234);

    // Uninterrupted.
    let full_dir = tempfile::tempdir().unwrap();
    let (mut t, mut v) = (train.clone(), valid.clone());
    let summary = run(
        task.clone(),
        config.clone(),
        &run_options(full_dir.path()),
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut (),
    )
    .unwrap();
    assert!(summary.completed);
    assert_eq!(summary.final_step, 8);

    // Interrupted after step 5 (checkpoint at 3), then restarted with fresh sources.
    let dir = tempfile::tempdir().unwrap();
    let opts = run_options(dir.path());
    let mut obs = StopAfter::new(5);
    let (mut t, mut v) = (train.clone(), valid.clone());
    let first = run(
        task.clone(),
        config.clone(),
        &opts,
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut obs,
    )
    .unwrap();
    assert!(!first.completed);
    assert_eq!(obs.checkpoints, vec![3]);
    assert_eq!(curve(dir.path()).len(), 5);
    // A save that was killed half way: ignored and cleaned up.
    std::fs::create_dir(dir.path().join(".tmp-checkpoint-6")).unwrap();
    std::fs::write(
        dir.path().join(".tmp-checkpoint-6/model.safetensors"),
        b"junk",
    )
    .unwrap();

    let mut obs = StopAfter::new(usize::MAX);
    let (mut t, mut v) = (train.clone(), valid.clone());
    let second = run(
        task,
        config,
        &opts,
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut obs,
    )
    .unwrap();
    assert_eq!(obs.start, Some(3));
    assert_eq!(second.resumed_from, Some(dir.path().join("checkpoint-3")));
    assert_eq!(obs.steps, vec![4, 5, 6, 7, 8]);
    assert_eq!(obs.checkpoints, vec![6, 8]);

    let (a, b) = (curve(full_dir.path()), curve(dir.path()));
    assert_eq!(
        b.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<u64>>(),
        "one line per step, no duplicates"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(
            (x.1 - y.1).abs() <= 1e-6,
            "step {}: loss {} vs {}",
            x.0,
            x.1,
            y.1
        );
        assert_eq!(x.2, y.2, "lr at step {}", x.0);
        assert!(
            (x.3 - y.3).abs() <= 1e-5,
            "step {}: grad norm {} vs {}",
            x.0,
            x.3,
            y.3
        );
        match (x.4, y.4) {
            (Some(p), Some(q)) => assert!((p - q).abs() <= 1e-6, "eval at {}: {p} vs {q}", x.0),
            (None, None) => {}
            other => panic!("eval at step {}: {other:?}", x.0),
        }
    }
    assert!(a[3].4.is_some() && a[7].4.is_some(), "evaluated at 4 and 8");

    // Kept: the newest two checkpoints, `latest` points at the last, no temp dirs.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("checkpoint"))
        .collect();
    names.sort();
    assert_eq!(names, vec!["checkpoint-6", "checkpoint-8"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LATEST_FILE))
            .unwrap()
            .trim(),
        "checkpoint-8"
    );
    assert_eq!(
        latest_checkpoint(dir.path()).unwrap(),
        Some(dir.path().join("checkpoint-8"))
    );
    // The checkpoint is a plain HF directory.
    let (cfg, _) = load_gpt(&dir.path().join("checkpoint-8"), &dev).unwrap();
    assert_eq!(cfg.n_embd, 32);
}

#[test]
fn evaluation_equals_a_direct_computation() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let task = GptClmTask::new(GptConfig::new(16, 16, 32, 1, 2).with_dropout(0.1)).unwrap();
    let mut trainer = Trainer::new(task, TrainConfig::new(schedule(10)), &dev).unwrap();
    let mut data = CountingSequences::new(16, 12, 4, 5);
    for _ in 0..3 {
        trainer.step(&mut data).unwrap();
    }
    // Padding in the second batch: its masked targets must not count.
    struct Padded(CountingSequences);
    impl BatchSource<LmBatch> for Padded {
        fn next_batch(&mut self) -> refinery_train::data::LmBatch {
            let mut b = self.0.next_batch();
            if self.0.position() == 2 {
                let mut mask = vec![1i64; b.input_ids.len()];
                mask[b.seq_len - 3..b.seq_len].fill(0); // row 0: last 3 are padding
                b.attention_mask = Some(mask);
            }
            b
        }
        fn position(&self) -> u64 {
            self.0.position()
        }
        fn seek(&mut self, p: u64) {
            self.0.seek(p)
        }
    }
    let mut valid = Padded(CountingSequences::new(16, 12, 4, 77));
    let report = trainer.evaluate(&mut valid, 2).unwrap();

    // Direct: dropout off, token-weighted mean NLL over real targets, argmax accuracy.
    let cpu = Device::flex();
    let model = trainer.model.valid();
    valid.seek(0);
    let (mut nll, mut n, mut correct) = (0.0f64, 0.0f64, 0.0f64);
    let mut batch_losses = Vec::new();
    for _ in 0..2 {
        let b = valid.next_batch();
        let logits = model
            .forward_with(b.tokens(&cpu), b.mask(&cpu), Default::default())
            .logits;
        let loss: f32 = clm_loss(logits.clone(), b.tokens(&cpu), b.mask(&cpu)).into_scalar();
        batch_losses.push(f64::from(loss));
        let pred: Vec<i64> = logits.argmax(2).into_data().iter::<i64>().collect();
        let mask = b
            .attention_mask
            .clone()
            .unwrap_or(vec![1; b.input_ids.len()]);
        let mut targets = 0.0;
        for r in 0..b.batch_size {
            for i in 0..b.seq_len - 1 {
                let j = r * b.seq_len + i;
                if mask[j + 1] == 1 {
                    targets += 1.0;
                    correct += f64::from(u8::from(pred[j] == b.input_ids[j + 1]));
                }
            }
        }
        nll += f64::from(loss) * targets;
        n += targets;
    }
    assert_eq!(n, 2.0 * 4.0 * 11.0 - 3.0);
    let want_ppl = (nll / n).exp();
    assert!(
        (report.perplexity - want_ppl).abs() <= 1e-5 * want_ppl,
        "perplexity {} vs direct {want_ppl}",
        report.perplexity
    );
    assert!((report.metrics["lm_accuracy"] - correct / n).abs() < 1e-12);
    let mean_batch = (batch_losses[0] + batch_losses[1]) / 2.0;
    assert!((report.loss - mean_batch).abs() <= 1e-6);
    assert_eq!(report.tokens, 2 * 4 * 12 - 3);
    // Evaluating does not disturb training: same report twice.
    assert_eq!(trainer.evaluate(&mut valid, 2).unwrap(), report);
}

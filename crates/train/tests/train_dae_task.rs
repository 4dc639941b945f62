//! BART denoising through the generic trainer ([`BartDaeTask`]): the loss falls on a synthetic
//! task (text infilling and T5 span corruption), the task's loss equals a direct computation
//! from `dae::{TextInfilling, row_seed, collate, seq2seq_loss}`, evaluation is reproducible, and
//! an interrupted run loop resumes exactly.
//!
//! Task: rows of `L` position-coded tokens `w_i = 4 + i·K + v` (`v` random per row, K = 4),
//! wrapped as `<s> row </s>` by the task. Any kept token reveals `v`, so the clean row is
//! determined by the corrupted input: loss floor 0.

use std::path::Path;
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::Device;
use refinery_model::hf_bart::load_bart;
use refinery_model::{BartConfig, OutputOptions};
use refinery_train::data::{splitmix64, BatchSource, LmBatch};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::objectives::dae::{collate, row_seed, seq2seq_loss, NoisedRow, TextInfilling};
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::tasks::Task;
use refinery_train::trainer::batch_seed;
use refinery_train::{
    run, BartDaeSpec, BartDaeTask, DaeNoise, Observer, RunOptions, StepRecord, TaskSpec,
    TrainConfig, Trainer,
};

/// burn's RNG (init, dropout) is global per device: tests that seed it must not interleave.
static RNG: Mutex<()> = Mutex::new(());

const L: usize = 12;
const K: u64 = 4;
/// `<s>`=0, `<pad>`=1, `</s>`=2, `<mask>`=3, L·K content ids, 4 sentinels.
const V: usize = 4 + L * K as usize + 4;

/// Position-coded rows; with `pad_last`, the last 3 positions of odd rows are padding (so the
/// task must strip them).
#[derive(Clone)]
struct CodedRows {
    seed: u64,
    batch_size: usize,
    pad_last: bool,
    position: u64,
}

impl CodedRows {
    fn new(seed: u64, batch_size: usize, pad_last: bool) -> Self {
        Self {
            seed,
            batch_size,
            pad_last,
            position: 0,
        }
    }
}

impl BatchSource<LmBatch> for CodedRows {
    fn next_batch(&mut self) -> LmBatch {
        let mut ids = Vec::with_capacity(self.batch_size * L);
        let mut mask = Vec::with_capacity(self.batch_size * L);
        for row in 0..self.batch_size as u64 {
            let v = splitmix64(self.seed ^ splitmix64(self.position * 1000 + row)) % K;
            for i in 0..L as u64 {
                let pad = self.pad_last && row % 2 == 1 && i >= L as u64 - 3;
                ids.push(if pad { 1 } else { (4 + i * K + v) as i64 });
                mask.push(i64::from(!pad));
            }
        }
        self.position += 1;
        LmBatch {
            batch_size: self.batch_size,
            seq_len: L,
            input_ids: ids,
            attention_mask: self.pad_last.then_some(mask),
        }
    }
    fn position(&self) -> u64 {
        self.position
    }
    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

fn bart(dropout: f64) -> BartConfig {
    let mut c = BartConfig::new(V, 32, 1, 4, 64).with_dropout(dropout);
    c.max_position_embeddings = 16;
    c
}

fn schedule(peak_lr: f64, total_steps: usize) -> LrSchedule {
    LrSchedule {
        peak_lr,
        min_lr: peak_lr / 10.0,
        warmup_steps: 5,
        total_steps,
        decay: Decay::Cosine,
    }
}

fn train_config(total_steps: usize) -> TrainConfig {
    let mut c = TrainConfig::new(schedule(5e-3, total_steps));
    c.weight_decay = 0.0;
    c.grad_clip = None;
    c
}

/// Trains `steps` steps; returns (first loss, mean of the last 10 losses, the trainer).
fn train(task: BartDaeSpec, steps: usize) -> (f64, f64, Trainer<BartDaeTask>) {
    let dev = Device::flex();
    let task = task.build(None).unwrap();
    let mut trainer = Trainer::new(task, train_config(steps), &dev).unwrap();
    let mut data = CodedRows::new(1, 16, true);
    let mut losses = Vec::new();
    for _ in 0..steps {
        losses.push(trainer.step(&mut data).unwrap().loss);
    }
    let tail = losses[steps - 10..].iter().sum::<f64>() / 10.0;
    let shown: Vec<String> = losses
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 25 == 0)
        .map(|(i, l)| format!("{i}:{l:.3}"))
        .collect();
    eprintln!(
        "{:?}: loss {} ... last-10 mean {tail:.4}",
        trainer.task.spec.noise,
        shown.join(" ")
    );
    (losses[0], tail, trainer)
}

#[test]
fn text_infilling_loss_falls_through_the_trainer() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let task = BartDaeSpec::bart(bart(0.0), 3);
    assert_eq!(task.special_token_ids, vec![0, 1, 2, 3]);
    assert_eq!((task.bos_token_id, task.eos_token_id), (Some(0), Some(2)));
    let (first, tail, trainer) = train(task, 200);
    assert!(
        first > 3.0,
        "initial loss {first} (ln V = {:.2})",
        (V as f64).ln()
    );
    assert!(tail < 0.1, "loss {first} -> {tail} (floor 0)");
    // Evaluation on unseen rows: accuracy on the labels ~1, perplexity = exp(dae_loss).
    let mut valid = CodedRows::new(99, 16, true);
    let report = trainer.evaluate(&mut valid, 2).unwrap();
    eprintln!("eval {report:?}");
    assert!(report.metrics["dae_accuracy"] > 0.95, "{report:?}");
    assert!(
        (report.perplexity - report.metrics["dae_loss"].exp()).abs() < 1e-9,
        "{report:?}"
    );
    assert!(report.perplexity < 1.2, "{report:?}");
    // Real tokens only: 16 rows of 12, the odd rows with 3 padding positions.
    assert_eq!(report.tokens, 2 * (16 * L - 8 * 3));
    // Same masks every evaluation.
    assert_eq!(trainer.evaluate(&mut valid, 2).unwrap(), report);
}

#[test]
fn span_corruption_loss_falls_through_the_trainer() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let mut task = BartDaeSpec::bart(bart(0.0), 3);
    task.noise = DaeNoise::SpanCorruption {
        first_sentinel: V as i64 - 1,
        num_sentinels: 4,
        noise_density: 0.15,
        mean_noise_span_length: 3.0,
    };
    task.bos_token_id = None;
    let (first, tail, _) = train(task, 200);
    assert!(first > 3.0, "initial loss {first}");
    assert!(tail < 0.3, "loss {first} -> {tail} (floor 0; > 10x lower)");
}

/// The task's loss is `seq2seq_loss` of the model on `collate` of rows noised by
/// `TextInfilling::bart` with `row_seed(batch_seed(seed, position), 0, row)`, padding stripped
/// and rows wrapped in `<s> .. </s>`; the metrics count exactly the real labels.
#[test]
fn task_loss_equals_a_direct_computation() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let task = BartDaeSpec::bart(bart(0.1), 3);
    let mut trainer = Trainer::new(task.build(None).unwrap(), train_config(10), &dev).unwrap();
    let mut data = CodedRows::new(5, 4, true);
    for _ in 0..2 {
        trainer.step(&mut data).unwrap();
    }
    let model = trainer.model.valid();
    let batch = data.next_batch(); // position 2
    let seed = batch_seed(trainer.config.seed, 2);

    let noise = TextInfilling::bart(3, vec![0, 1, 2, 3]);
    let rows: Vec<NoisedRow> = (0..4)
        .map(|r| {
            let real: Vec<i64> = (0..L)
                .filter(|&i| batch.attention_mask.as_ref().unwrap()[r * L + i] == 1)
                .map(|i| batch.input_ids[r * L + i])
                .collect();
            assert_eq!(real.len(), if r % 2 == 1 { L - 3 } else { L });
            let clean: Vec<i64> = [0].into_iter().chain(real).chain([2]).collect();
            noise.apply(&clean, row_seed(seed, 0, r as u64))
        })
        .collect();
    let direct = collate(&rows, 1, 2);
    assert_eq!(task.collate(&batch, seed), direct);
    let t = direct.to_tensors(&dev);
    let logits = model
        .forward(
            t.input_ids,
            Some(t.attention_mask),
            t.decoder_input_ids,
            Some(t.decoder_attention_mask),
            OutputOptions::default(),
        )
        .logits;
    let want: f32 = seq2seq_loss(logits, t.labels).into_scalar();
    let runtime = task.build(None).unwrap();
    let input = runtime.prepare(batch.clone(), seed).unwrap();
    let outputs = runtime
        .forward(&model, &input, &dev, OutputOptions::default())
        .unwrap();
    let out = runtime.loss(&input, &outputs, &dev, true).unwrap();
    let got: f32 = out.loss.into_scalar();
    assert!((got - want).abs() < 1e-6, "task {got} vs direct {want}");
    let m = out.metrics.unwrap().means();
    assert!((m["dae_loss"] - f64::from(want)).abs() < 1e-6, "{m:?}");
    // A different row seed gives a different corruption.
    assert_ne!(task.collate(&batch, seed), task.collate(&batch, seed ^ 1));
}

#[test]
fn invalid_settings_are_rejected() {
    let mut task = BartDaeSpec::bart(bart(0.0), 3);
    task.noise = DaeNoise::TextInfilling {
        mask_token_id: V as i64,
        mask_ratio: 0.3,
        poisson_lambda: 3.0,
    };
    let e = task.validate().unwrap_err().to_string();
    assert!(e.contains("mask_token_id") && e.contains("vocab"), "{e}");
    task.noise = DaeNoise::TextInfilling {
        mask_token_id: 3,
        mask_ratio: 1.5,
        poisson_lambda: 3.0,
    };
    assert!(task
        .validate()
        .unwrap_err()
        .to_string()
        .contains("mask_ratio"));
    // The noise round-trips through the trainer-state JSON.
    let task = BartDaeSpec::bart(bart(0.0), 3);
    let json = serde_json::to_string(&task).unwrap();
    assert!(json.contains("\"kind\":\"text_infilling\""), "{json}");
    assert_eq!(serde_json::from_str::<BartDaeSpec>(&json).unwrap(), task);
}

/// Stops the run loop after `stop_after` steps (as a kill would: no checkpoint).
struct StopAfter {
    stop_after: usize,
    steps: Vec<usize>,
    checkpoints: Vec<usize>,
    start: Option<usize>,
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

fn stop_after(n: usize) -> StopAfter {
    StopAfter {
        stop_after: n,
        steps: Vec::new(),
        checkpoints: Vec::new(),
        start: None,
    }
}

/// `(step, loss, grad_norm, eval_loss, eval_dae_accuracy)` of every line of a metrics log.
type Line = (u64, f64, f64, Option<f64>, Option<f64>);

fn curve(out: &Path) -> Vec<Line> {
    read_metrics(&out.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
                v.get("eval_loss").and_then(|x| x.as_f64()),
                v.get("eval_dae_accuracy").and_then(|x| x.as_f64()),
            )
        })
        .collect()
}

#[test]
fn run_loop_resume_gives_the_uninterrupted_metrics_log() {
    // Dropout, accumulation, clipping and per-row noise all on.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let task = BartDaeSpec::bart(bart(0.1), 3).build(None).unwrap();
    let mut config = TrainConfig::new(schedule(1e-2, 8));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 11;
    let train = CodedRows::new(3, 4, true);
    let valid = CodedRows::new(1234, 4, true);
    let opts = |out: &Path| RunOptions {
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
    };

    let full_dir = tempfile::tempdir().unwrap();
    let (mut t, mut v) = (train.clone(), valid.clone());
    let summary = run(
        task.clone(),
        config.clone(),
        &opts(full_dir.path()),
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut (),
    )
    .unwrap();
    assert!(summary.completed);
    let eval = summary.last_eval.unwrap();
    assert!(eval.metrics.contains_key("dae_accuracy"), "{eval:?}");

    // Interrupted after step 5 (checkpoint at 3), then restarted with fresh sources.
    let dir = tempfile::tempdir().unwrap();
    let mut obs = stop_after(5);
    let (mut t, mut v) = (train.clone(), valid.clone());
    let first = run(
        task.clone(),
        config.clone(),
        &opts(dir.path()),
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut obs,
    )
    .unwrap();
    assert!(!first.completed);
    assert_eq!(obs.checkpoints, vec![3]);

    let mut obs = stop_after(usize::MAX);
    let (mut t, mut v) = (train.clone(), valid.clone());
    let second = run(
        task,
        config,
        &opts(dir.path()),
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut obs,
    )
    .unwrap();
    assert!(second.completed);
    assert_eq!(obs.start, Some(3));
    assert_eq!(obs.steps, vec![4, 5, 6, 7, 8]);

    let (a, b) = (curve(full_dir.path()), curve(dir.path()));
    assert_eq!(
        b.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<u64>>()
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.1 - y.1).abs() <= 1e-6,
            "step {}: loss {} vs {}",
            x.0,
            x.1,
            y.1
        );
        assert!(
            (x.2 - y.2).abs() <= 1e-5,
            "step {}: grad norm {} vs {}",
            x.0,
            x.2,
            y.2
        );
        match ((x.3, x.4), (y.3, y.4)) {
            ((Some(p), Some(pa)), (Some(q), Some(qa))) => {
                assert!((p - q).abs() <= 1e-6, "eval at {}: {p} vs {q}", x.0);
                assert_eq!(pa, qa, "eval accuracy at {}", x.0);
            }
            ((None, None), (None, None)) => {}
            other => panic!("eval at step {}: {other:?}", x.0),
        }
    }
    assert!(a[3].3.is_some() && a[7].3.is_some(), "evaluated at 4 and 8");
    // The checkpoint is a plain HF BART directory with the trained config.
    let (cfg, _) = load_bart(&dir.path().join("checkpoint-8"), &dev).unwrap();
    assert_eq!(cfg, bart(0.1));
}

//! Permutation LM through the generic trainer ([`PlmTask`]): the loss falls on the counting
//! task, evaluation reports per-target accuracy with perplexity = exp(plm_loss), a checkpoint
//! round-trips the model exactly (GPT-2 directory + plm.json), and an interrupted run loop
//! resumes exactly.

use std::path::Path;
use std::sync::Mutex;

use burn::tensor::Device;
use refinery_model::hf::load_gpt;
use refinery_model::PlmConfig;
use refinery_train::data::{BatchSource, CountingSequences, LmBatch};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::tasks::Task;
use refinery_train::{
    run, Observer, PlmSpec, PlmTask, RunOptions, StepRecord, TaskSpec, TrainConfig, Trainer,
};

static RNG: Mutex<()> = Mutex::new(());

fn plm(dropout: f64) -> PlmConfig {
    PlmConfig::new(16, 16, 64, 2, 4).with_dropout(dropout)
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

#[test]
fn plm_loss_falls_through_the_trainer() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let mut config = TrainConfig::new(schedule(5e-3, 80));
    config.weight_decay = 0.0;
    config.grad_clip = None;
    config.seed = 1;
    let mut trainer = Trainer::new(plm_task(plm(0.0)), config, &dev).unwrap();
    let mut data = CountingSequences::new(16, 16, 32, 1);
    let losses: Vec<f64> = (0..80)
        .map(|_| trainer.step(&mut data).unwrap().loss)
        .collect();
    let tail = losses[70..].iter().sum::<f64>() / 10.0;
    eprintln!(
        "PLM through the trainer: first {:.3}, step 40 {:.3}, last-10 mean {tail:.4}",
        losses[0], losses[40]
    );
    assert!(losses[0] > 2.4, "first loss {} (ln 16 = 2.77)", losses[0]);
    assert!(tail < 0.7 * losses[0], "loss {} -> {tail}", losses[0]);

    let mut valid = CountingSequences::new(16, 16, 32, 99);
    let report = trainer.evaluate(&mut valid, 2).unwrap();
    eprintln!("eval {report:?}");
    let acc = report.metrics["plm_accuracy"];
    assert!(acc > 1.0 / 16.0 * 3.0, "accuracy {acc} (chance 1/16)");
    assert!((report.perplexity - report.metrics["plm_loss"].exp()).abs() < 1e-9);
    assert_eq!(
        trainer.evaluate(&mut valid, 2).unwrap(),
        report,
        "same orders every time"
    );

    // Checkpoint round trip: the reloaded model gives the same evaluation, and the directory
    // is a GPT-2 checkpoint (the shared blocks) plus plm.json.
    let dir = tempfile::tempdir().unwrap();
    trainer
        .save_checkpoint(dir.path(), data.position())
        .unwrap();
    let (reloaded, position) = Trainer::<PlmTask>::resume(dir.path(), &dev).unwrap();
    assert_eq!(position, 80);
    assert_eq!(reloaded.evaluate(&mut valid, 2).unwrap(), report);
    let (gpt, _) = load_gpt(dir.path(), &dev).unwrap();
    assert_eq!((gpt.n_embd, gpt.n_layer), (64, 2));
    assert!(dir.path().join("plm.json").is_file());
    // A different config is refused.
    let mut other = PlmSpec::new(plm(0.0));
    other.model.n_embd = 32;
    let other = other.build(None).unwrap();
    assert!(other.load_model(dir.path(), &dev).is_err());
}

struct StopAfter {
    stop_after: usize,
    steps: Vec<usize>,
    start: Option<usize>,
}

impl Observer for StopAfter {
    fn on_start(&mut self, start_step: usize, _total: usize) {
        self.start = Some(start_step);
    }
    fn on_step(&mut self, record: &StepRecord) {
        self.steps.push(record.step);
    }
    fn should_stop(&mut self) -> bool {
        self.steps.len() >= self.stop_after
    }
}

fn curve(out: &Path) -> Vec<(u64, f64, f64, Option<f64>)> {
    read_metrics(&out.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["loss"].as_f64().unwrap(),
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
    let task = plm_task(PlmConfig::new(16, 16, 32, 1, 2).with_dropout(0.1));
    let mut config = TrainConfig::new(schedule(1e-2, 8));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 11;
    let train = CountingSequences::new(16, 16, 4, 3);
    let valid = CountingSequences::new(16, 16, 4, 1234);
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
    let full = tempfile::tempdir().unwrap();
    let (mut t, mut v) = (train.clone(), valid.clone());
    run(
        task.clone(),
        config.clone(),
        &opts(full.path()),
        &mut t,
        Some(&mut v as &mut dyn BatchSource<LmBatch>),
        &dev,
        &mut (),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    for stop_after in [5, usize::MAX] {
        let mut obs = StopAfter {
            stop_after,
            steps: Vec::new(),
            start: None,
        };
        let (mut t, mut v) = (train.clone(), valid.clone());
        run(
            task.clone(),
            config.clone(),
            &opts(dir.path()),
            &mut t,
            Some(&mut v as &mut dyn BatchSource<LmBatch>),
            &dev,
            &mut obs,
        )
        .unwrap();
        if stop_after == usize::MAX {
            assert_eq!(obs.start, Some(3));
            assert_eq!(obs.steps, vec![4, 5, 6, 7, 8]);
        }
    }
    let (a, b) = (curve(full.path()), curve(dir.path()));
    assert_eq!(b.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert!(
            (x.1 - y.1).abs() <= 1e-6,
            "step {}: {} vs {}",
            x.0,
            x.1,
            y.1
        );
        assert!((x.2 - y.2).abs() <= 1e-5, "step {}: grad norm", x.0);
        match (x.3, y.3) {
            (Some(p), Some(q)) => assert!((p - q).abs() <= 1e-6, "eval at {}: {p} vs {q}", x.0),
            (None, None) => {}
            other => panic!("eval at step {}: {other:?}", x.0),
        }
    }
    assert!(a[3].3.is_some() && a[7].3.is_some());
}

fn plm_task(config: PlmConfig) -> PlmTask {
    PlmSpec::new(config).build(None).unwrap()
}

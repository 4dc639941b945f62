//! BERT MLM + NSP through the generic trainer: both losses fall, evaluation reports masked-token
//! and NSP accuracy, and an interrupted run loop resumes exactly.

use std::path::Path;
use std::sync::Mutex;

use burn::tensor::Device;
use refinery_model::BertConfig;
use refinery_train::data::{splitmix64, BatchSource, PairBatch};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::{
    run, BertMlmNspSpec, BertMlmNspTask, Observer, RunOptions, TaskSpec, TrainConfig, Trainer,
};

static RNG: Mutex<()> = Mutex::new(());

/// Tokens 0..4 are special ([PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3). Each row is
/// `[CLS] a a+1 ... [SEP] b b+1 ... [SEP]` with ids in 4..24 counting upwards (mod 20), where the
/// second segment continues the first (label 0) or starts anywhere (label 1). Masked tokens are
/// determined by their neighbours (MLM floor ~0); NSP is learnable from the boundary. Rows are
/// a pure function of `(seed, position)`.
#[derive(Clone)]
struct CountingPairs {
    seed: u64,
    batch_size: usize,
    half: usize,
    position: u64,
}

impl CountingPairs {
    fn new(seed: u64, batch_size: usize, half: usize) -> Self {
        Self {
            seed,
            batch_size,
            half,
            position: 0,
        }
    }
}

impl BatchSource<PairBatch> for CountingPairs {
    fn next_batch(&mut self) -> PairBatch {
        let (b, half) = (self.batch_size, self.half as u64);
        let t = 2 * self.half + 3;
        let mut ids = Vec::with_capacity(b * t);
        let mut types = Vec::with_capacity(b * t);
        let mut is_random = Vec::with_capacity(b);
        for row in 0..b as u64 {
            let r = splitmix64(self.seed ^ splitmix64(self.position * 1000 + row));
            let a = r % 20;
            let random = (r >> 20) % 2 == 1;
            let start_b = if random {
                (r >> 30) % 20
            } else {
                (a + half) % 20
            };
            ids.push(1);
            ids.extend((0..half).map(|i| 4 + ((a + i) % 20) as i64));
            ids.push(2);
            ids.extend((0..half).map(|i| 4 + ((start_b + i) % 20) as i64));
            ids.push(2);
            types.extend((0..t).map(|i| i64::from(i > self.half + 1)));
            // A random start that happens to continue is a true continuation.
            is_random.push(i64::from(start_b != (a + half) % 20));
        }
        self.position += 1;
        PairBatch {
            batch_size: b,
            seq_len: t,
            input_ids: ids,
            token_type_ids: types,
            attention_mask: vec![1; b * t],
            is_random_next: is_random,
        }
    }
    fn position(&self) -> u64 {
        self.position
    }
    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

fn task(dropout: f64) -> BertMlmNspTask {
    spec(dropout).build(None).unwrap()
}

fn spec(dropout: f64) -> BertMlmNspSpec {
    let mut config = BertConfig::new(24, 32, 2, 2, 64);
    config.max_position_embeddings = 24;
    config.hidden_dropout_prob = dropout;
    config.attention_probs_dropout_prob = dropout;
    BertMlmNspSpec::new(config, 3, vec![0, 1, 2, 3])
}

fn constant_lr(lr: f64, total_steps: usize) -> LrSchedule {
    LrSchedule {
        peak_lr: lr,
        min_lr: lr,
        warmup_steps: 0,
        total_steps,
        decay: Decay::Linear,
    }
}

#[test]
fn mlm_and_nsp_losses_fall() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let mut config = TrainConfig::new(constant_lr(3e-3, 600));
    config.weight_decay = 0.0;
    config.beta_2 = 0.999;
    config.grad_clip = None;
    let mut trainer = Trainer::new(task(0.0), config, &dev).unwrap();
    let mut train = CountingPairs::new(1, 32, 7);
    let mut valid = CountingPairs::new(2, 64, 7);

    let before = trainer.evaluate(&mut valid, 2).unwrap();
    for _ in 0..600 {
        trainer.step(&mut train).unwrap();
    }
    let after = trainer.evaluate(&mut valid, 2).unwrap();
    let m = |r: &refinery_train::EvalReport, k: &str| r.metrics[k];
    eprintln!("before {before:?}\nafter {after:?}");
    assert!(m(&before, "mlm_loss") > 2.5, "{before:?}"); // ~ln 24 = 3.18
    assert!(
        m(&after, "mlm_loss") < 0.5,
        "MLM loss (floor ~0): {after:?}"
    );
    assert!(m(&after, "mlm_accuracy") > 0.85, "{after:?}");
    assert!(
        m(&after, "nsp_loss") < 0.45,
        "NSP loss (ln 2 at chance): {after:?}"
    );
    assert!(m(&after, "nsp_accuracy") > 0.8, "{after:?}");
    assert!((after.perplexity - m(&after, "mlm_loss").exp()).abs() < 1e-9);
    let total = m(&after, "mlm_loss") + m(&after, "nsp_loss");
    // loss = mean over batches of (mlm + nsp); metrics are token/example weighted: close.
    assert!(
        (after.loss - total).abs() < 0.1,
        "{} vs {total}",
        after.loss
    );
}

struct StopAfter(usize, usize);

impl Observer for StopAfter {
    fn on_step(&mut self, _r: &refinery_train::StepRecord) {
        self.1 += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.1 >= self.0
    }
}

fn losses(out: &Path) -> Vec<(u64, f64)> {
    read_metrics(&out.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn bert_run_loop_resumes_exactly() {
    // Dropout + MLM masks + accumulation + clipping: all must replay after the resume.
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let mut config = TrainConfig::new(constant_lr(3e-3, 6));
    config.grad_accum_steps = 2;
    config.grad_clip = Some(0.5);
    config.seed = 5;
    let opts = |out: &Path| RunOptions {
        out_dir: out.to_path_buf(),
        total_steps: 6,
        eval_every: 3,
        eval_batches: 1,
        save_every: 2,
        keep: 1,
        extra_files: Vec::new(),
        steps_per_epoch: None,
        eval_each_epoch: false,
        best: None,
    };
    let go = |out: &Path, obs: &mut dyn Observer| {
        let mut train = CountingPairs::new(1, 8, 5);
        let mut valid = CountingPairs::new(2, 8, 5);
        run(
            task(0.1),
            config.clone(),
            &opts(out),
            &mut train,
            Some(&mut valid as &mut dyn BatchSource<PairBatch>),
            &dev,
            obs,
        )
        .unwrap()
    };
    let full = tempfile::tempdir().unwrap();
    go(full.path(), &mut ());
    let dir = tempfile::tempdir().unwrap();
    let first = go(dir.path(), &mut StopAfter(3, 0));
    assert_eq!(first.final_step, 3);
    let second = go(dir.path(), &mut ());
    assert_eq!(second.start_step, 2);
    assert!(second.completed);

    let (a, b) = (losses(full.path()), losses(dir.path()));
    assert_eq!(a.len(), 6);
    assert_eq!(
        b.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.1 - y.1).abs() <= 1e-6,
            "step {}: {} vs {}",
            x.0,
            x.1,
            y.1
        );
    }
    let eval = |out: &Path| -> Vec<f64> {
        read_metrics(&out.join(METRICS_FILE))
            .unwrap()
            .iter()
            .filter_map(|v| v.get("eval_mlm_accuracy").and_then(|x| x.as_f64()))
            .collect()
    };
    assert_eq!(eval(full.path()).len(), 2);
    assert_eq!(eval(full.path()), eval(dir.path()));
    // keep = 1: only the final checkpoint remains, and it loads as an HF BertForPreTraining.
    assert!(dir.path().join("checkpoint-6/model.safetensors").is_file());
    assert!(!dir.path().join("checkpoint-4").exists());
    refinery_model::hf::load_bert(&dir.path().join("checkpoint-6"), &dev).unwrap();
}

#[test]
fn resuming_with_another_model_is_refused() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dev = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: dir.path().to_path_buf(),
        total_steps: 1,
        eval_every: 0,
        eval_batches: 0,
        save_every: 1,
        keep: 1,
        extra_files: Vec::new(),
        steps_per_epoch: None,
        eval_each_epoch: false,
        best: None,
    };
    let config = TrainConfig::new(constant_lr(1e-3, 1));
    let mut train = CountingPairs::new(1, 2, 3);
    run(
        task(0.0),
        config.clone(),
        &opts,
        &mut train,
        None,
        &dev,
        &mut (),
    )
    .unwrap();
    let mut other = spec(0.0);
    other.mlm_probability = 0.2;
    let other = other.build(None).unwrap();
    let err = run(other, config, &opts, &mut train, None, &dev, &mut ()).unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
}

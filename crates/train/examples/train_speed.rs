//! Training speed of the benchmark GPT (GPT-2 layout, 4 layers, d=256, 4 heads, ctx 128,
//! vocab 4096, batch 16, AdamW lr 3e-4 wd 0.01, dropout 0), one optimizer step at a time:
//! forward, CLM loss, backward, AdamW. `bench/train_speed_torch.py` is the same step in
//! PyTorch; `bench/train_speed.sh` runs both alternately and prints medians and ratios.
//!
//! The step is written out here with `refinery_model::Gpt`, `refinery_train::objectives` and
//! burn's AdamW (not through `Trainer`, whose API is still moving), so what is timed is exactly
//! what the PyTorch script does. `Trainer::step` adds global-norm clipping (one extra pass over
//! the gradients) and parameter groups.
//!
//! ```sh
//! cargo run --release -p refinery-train --example train_speed -- --device cpu --steps 10
//! ```
//!
//! Options: `--device NAME` (cpu, cuda[:N], tch, tch:cuda[:N]; see `refinery_model::device`),
//! `--precision f32|bf16|f16`, `--steps N` (timed), `--warmup N` (untimed), `--batch N`,
//! `--label TEXT` (name in the RESULT line), `--clone-model` (pass `model.clone()` to the
//! optimizer, as `Trainer::step` does, instead of moving the model: measures what the extra
//! handle costs).
//!
//! Prints `RESULT <label> ... train_step_ms=<median> train_tok_s=<B*T / median>
//! cpu_step_ms=<median>`: the last is the process CPU time (all threads) per step, which a
//! loaded machine disturbs much less than wall time (single-thread runs: compare it).

use std::process::ExitCode;
use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use refinery_model::device::parse_device;
use refinery_model::GptConfig;
use refinery_train::data::splitmix64;
use refinery_train::objectives::clm_loss;
use refinery_train::precision::Precision;

const VOCAB: usize = 4096;
const CTX: usize = 128;
const LR: f64 = 3e-4;

struct Args {
    device: String,
    precision: Precision,
    steps: usize,
    warmup: usize,
    batch: usize,
    label: String,
    clone_model: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        device: "cpu".into(),
        precision: Precision::F32,
        steps: 10,
        warmup: 3,
        batch: 16,
        label: String::new(),
        clone_model: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v:?}: {e}"));
        match flag.as_str() {
            "--device" => args.device = value()?,
            "--precision" => args.precision = value()?.parse().map_err(|e| format!("{e}"))?,
            "--steps" => args.steps = number(value()?)?,
            "--warmup" => args.warmup = number(value()?)?,
            "--batch" => args.batch = number(value()?)?,
            "--label" => args.label = value()?,
            "--clone-model" => args.clone_model = true,
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    if args.steps == 0 || args.batch == 0 {
        return Err("--steps and --batch must be >= 1".into());
    }
    if args.label.is_empty() {
        args.label = format!("refinery-{}-{}", args.device, args.precision);
    }
    Ok(args)
}

/// `[B, CTX]` rows that repeat a random 8-token pattern over tokens `0..64` (as the
/// framework-eval benchmark); deterministic in `seed`.
fn batch_tokens(batch: usize, seed: u64) -> Vec<i64> {
    let mut ids = Vec::with_capacity(batch * CTX);
    for row in 0..batch {
        let pattern: Vec<i64> = (0..8u64)
            .map(|i| (splitmix64(seed ^ splitmix64(row as u64 * 8 + i)) % 64) as i64)
            .collect();
        ids.extend((0..CTX).map(|i| pattern[i % 8]));
    }
    ids
}

/// Process CPU time (user + system, all threads) in seconds, from `/proc/self/stat`
/// (10 ms resolution); `None` where that file does not exist.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the ")" closing the command name start at field 3 (state);
    // utime and stime are fields 14 and 15, in USER_HZ (100 on Linux) ticks.
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn run(args: &Args) -> Result<(), String> {
    let device = parse_device(&args.device)
        .map_err(|e| e.to_string())?
        .autodiff();
    args.precision.check(&device).map_err(|e| e.to_string())?;
    device.seed(0);
    let config = GptConfig::tiny(VOCAB).with_dropout(0.0);
    let mut model = config.init(&device).map_err(|e| e.to_string())?;
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
        .init();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(batch_tokens(args.batch, 1), [args.batch, CTX]),
        &device,
    );

    let mut times = Vec::with_capacity(args.steps);
    let mut cpu_times = Vec::with_capacity(args.steps);
    let mut losses = Vec::with_capacity(args.warmup + args.steps);
    for i in 0..args.warmup + args.steps {
        let t0 = Instant::now();
        let cpu0 = process_cpu_seconds();
        let low = args.precision.compute_copy(&model);
        let mut logits = low.forward(ids.clone()); // [B, T, V]
        if args.precision != Precision::F32 {
            logits = logits.cast(FloatDType::F32); // loss in f32
        }
        let loss = clm_loss(logits, ids.clone(), None);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = if args.clone_model {
            // The old handle stays alive during the update (as in Trainer::step).
            let kept = model.clone();
            let updated = optim.step(LR, model, grads);
            drop(kept);
            updated
        } else {
            optim.step(LR, model, grads)
        };
        losses.push(loss.into_scalar::<f32>());
        device
            .sync()
            .map_err(|e| format!("device sync failed: {e:?}"))?;
        if i >= args.warmup {
            times.push(t0.elapsed().as_secs_f64());
            if let (Some(a), Some(b)) = (cpu0, process_cpu_seconds()) {
                cpu_times.push(b - a);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    cpu_times.sort_by(f64::total_cmp);
    let cpu_ms = cpu_times
        .get(cpu_times.len() / 2)
        .map_or_else(|| "na".to_string(), |c| format!("{:.1}", c * 1e3));
    let tokens = (args.batch * CTX) as f64;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "RESULT {} threads={threads} train_step_ms={:.1} train_tok_s={:.0} cpu_step_ms={cpu_ms} loss_first={:.4} loss_last={:.4}",
        args.label,
        median * 1e3,
        tokens / median,
        losses[0],
        losses[losses.len() - 1],
    );
    Ok(())
}

fn main() -> ExitCode {
    // As the `refinery` binary does for training (set REFINERY_GLIBC_DEFAULTS=1 to compare).
    if std::env::var_os("REFINERY_GLIBC_DEFAULTS").is_none() {
        refinery_train::alloc::tune_allocator_for_training();
    }
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train_speed: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The teacher-vs-student table: parameters, checkpoint size, latency at batch 1, throughput
//! at batch 32, and quality (accuracy / macro-F1 for classifiers, perplexity for LMs) on the
//! dev data.
//!
//! Latency is the median wall time of one forward pass on a single dev example (the first
//! `latency_examples` in dev order, after one warm-up pass); throughput is dev examples per
//! second through forward passes of 32 (the first `throughput_batches` batches). Both run on
//! the evaluation (inner) device with one process; they measure the model, not the data
//! loading (batches are prepared before the clock starts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use refinery_train::data::{DataConfig, DataSplit};
use refinery_train::rng::batch_seed;
use refinery_train::tasks::{evaluate_checkpoint, open, OutputOptions};
use refinery_train::{with_task_spec, Task, TaskSpec};
use serde::{Deserialize, Serialize};

use crate::error::DistillError;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// `teacher` or `student`.
    pub model: String,
    pub dir: PathBuf,
    pub params: usize,
    /// `model.safetensors` in MB (10^6 bytes).
    pub size_mb: f64,
    /// Median milliseconds per example at batch 1.
    pub latency_ms: f64,
    /// Examples per second at batch 32.
    pub throughput_per_s: f64,
    /// `accuracy`, `macro_f1` (classifiers) or `perplexity`, `lm_loss` (LMs), on the dev data.
    pub metrics: BTreeMap<String, f64>,
}

/// How much of the dev data the timings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub latency_examples: usize,
    pub throughput_batches: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            latency_examples: 100,
            throughput_batches: 10,
        }
    }
}

/// Measures the model in `dir` on `dev` (its `dev` file or validation split).
pub fn measure(
    label: &str,
    dir: &Path,
    dev: &DataConfig,
    timing: Timing,
    device: &Device,
) -> Result<ModelReport, DistillError> {
    let opened = open(dir)?;
    let eval = evaluate_checkpoint(dir, &opened.spec, dev, DataSplit::Validation, None, device)?;
    let mut metrics = BTreeMap::new();
    for k in ["accuracy", "macro_f1", "lm_loss"] {
        if let Some(v) = eval.metrics.get(k) {
            metrics.insert(k.to_string(), *v);
        }
    }
    if eval.perplexity.is_finite() {
        metrics.insert("perplexity".into(), eval.perplexity);
    }
    let (params, latency_ms, throughput_per_s) =
        with_task_spec!(&opened.spec, s => time_spec(s, dir, dev, timing, device))?;
    let weights = dir.join("model.safetensors");
    let size = std::fs::metadata(&weights)
        .map_err(|e| DistillError::io(&weights, e))?
        .len();
    Ok(ModelReport {
        model: label.to_string(),
        dir: dir.to_path_buf(),
        params,
        size_mb: size as f64 / 1e6,
        latency_ms,
        throughput_per_s,
        metrics,
    })
}

fn time_spec<S: TaskSpec>(
    spec: &S,
    dir: &Path,
    dev: &DataConfig,
    timing: Timing,
    device: &Device,
) -> Result<(usize, f64, f64), DistillError> {
    let task = spec.build(Some(dir))?;
    let model = task.load_model(dir, device)?;
    let params = model.num_params();
    let inputs = |batch_size: usize, n: usize| -> Result<Vec<_>, DistillError> {
        let data = DataConfig {
            batch_size,
            ..dev.clone()
        };
        let mut source = task.open_source(&data, DataSplit::Validation)?;
        let n = source
            .batches_per_epoch()
            .map_or(n, |b| n.min(b as usize))
            .max(1);
        (0..n)
            .map(|_| {
                let p = source.position();
                Ok(task.prepare(source.next_batch(), batch_seed(0, p))?)
            })
            .collect()
    };
    // Seconds of one forward pass and its rows.
    let run = |input: &<S::Task as Task>::Input| -> Result<(f64, usize), DistillError> {
        let t0 = Instant::now();
        let out = task.forward(&model, input, device, OutputOptions::default())?;
        let [rows, _, _] = out.logits.dims();
        // Reading the logits back waits for the device.
        let _ = out.logits.into_data();
        Ok((t0.elapsed().as_secs_f64(), rows))
    };
    let single = inputs(1, timing.latency_examples)?;
    if let Some(first) = single.first() {
        run(first)?; // warm-up
    }
    let mut times = single
        .iter()
        .map(|i| run(i).map(|(t, _)| t))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort_by(f64::total_cmp);
    let latency_ms = times.get(times.len() / 2).copied().unwrap_or(f64::NAN) * 1e3;
    let mut secs = 0.0;
    let mut rows = 0usize;
    for input in &inputs(32, timing.throughput_batches)? {
        let (t, n) = run(input)?;
        secs += t;
        rows += n;
    }
    let throughput = if secs > 0.0 {
        rows as f64 / secs
    } else {
        f64::NAN
    };
    Ok((params, latency_ms, throughput))
}

//! One row of the size / speed / accuracy table (`refinery compare`), measured by one
//! protocol for every kind of classifier — the burn model (f32) or the engine (int8, or f32
//! with `engine:`). `bench/quantize_peers.py` follows the same protocol for PyTorch and ONNX
//! Runtime:
//!
//! 1. Encode the whole data file up front (tokenization is not timed).
//! 2. Warm-up: the first 32 rows alone, then one batch of 32.
//! 3. Latency at batch 1: the first `latency_n` rows alone (no padding), in file order; the
//!    median (mean of the middle two for an even count) and p90 (nearest rank) of the
//!    per-row forward time.
//! 4. Throughput at batch 32: all rows in file order, chunks of `batch_size`, each padded to
//!    its longest row; `repeats` passes; the median rows/s.
//! 5. Accuracy and macro-F1 from the first batched pass.
//! 6. Size: the bytes of `model.safetensors`; parameters: the model's tensors' element count.
//! 7. Peak RSS: the caller runs each model in its own process and reads `VmHWM`.
//!
//! **Language models** (GPT-2 directories, f32 on burn or int8 / `engine:` on
//! [`crate::gpt::GptEngine`]) follow the same steps on a token shard directory (what
//! `refinery eval-lm` reads): the first `latency_n` rows of `seq_len` tokens (default
//! `min(context, 128)`) in shard order, in batches of `batch_size` (the last may be smaller);
//! latency is one row's full forward, throughput rows/s of batched forwards, and the quality
//! columns are the perplexity `exp(mean next-token NLL)` over every predicted token (f64
//! log-softmax) and the next-token accuracy (argmax, first on ties); macro-F1 is empty. Last,
//! the decode speed: greedy generation with the KV cache (`refinery_model::generate`, the
//! same loop for burn and the engine) from the first row's first 8 tokens until the context
//! is full, repeated at least 3 times and for at least 1 s; the median tokens/s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use refinery_model::classify::SequenceClassifier;
use refinery_model::generate::{generate, CausalLm, SamplingConfig};
use refinery_model::{Gpt, OutputOptions};
use refinery_train::data::labelled::{ClassBatch, Encoded};
use refinery_train::data::{DataConfig, DataSplit, LmBatch, SourceConfig};
use refinery_train::objectives::classify::Confusion;
use refinery_train::tasks::classify::pad_id;
use refinery_train::{AnyTaskSpec, ClassifyTask, GptClmSpec, Task, TaskSpec};
use serde::{Deserialize, Serialize};

use crate::bert::KernelUse;
use crate::classify::{batch_of, EngineClassifier};
use crate::error::CompressError;
use crate::gpt::GptEngine;
use crate::kernels::KernelPath;
use crate::ops;
use crate::quant::{read_quant_config, WEIGHTS_FILE};

/// Measurement settings.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub latency_n: usize,
    pub batch_size: usize,
    pub repeats: usize,
    /// Language models: tokens per row (default `min(context, 128)`).
    pub seq_len: Option<usize>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            latency_n: 200,
            batch_size: 32,
            repeats: 3,
            seq_len: None,
        }
    }
}

/// One model's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub model: String,
    /// `burn-f32`, `engine-f32`, `engine-int8 (vnni)`, …
    pub runner: String,
    pub threads: usize,
    pub parameters: usize,
    pub size_bytes: u64,
    pub latency_ms_median: f64,
    pub latency_ms_p90: f64,
    pub throughput_sps: f64,
    /// Classifiers: accuracy; language models: next-token accuracy.
    pub accuracy: f64,
    /// Classifiers only.
    #[serde(default)]
    pub macro_f1: Option<f64>,
    /// Language models only: `exp` of the mean next-token NLL.
    #[serde(default)]
    pub perplexity: Option<f64>,
    /// Language models only: tokens per row.
    #[serde(default)]
    pub seq_len: Option<usize>,
    /// Language models only: greedy decoding speed with the KV cache (median tokens/s).
    #[serde(default)]
    pub decode_tokens_per_s: Option<f64>,
    pub n: usize,
    /// Filled by the parent process (`VmHWM` of the child).
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
    #[serde(default)]
    pub kernels: Vec<KernelUse>,
}

/// The runner column of an engine row: `engine-f32`, or `engine-int8 (vnni)` with the first
/// layer's kernel path.
pub fn engine_runner(quantized: bool, kernels: &[KernelUse]) -> String {
    if quantized {
        format!(
            "engine-int8 ({})",
            kernels.first().map_or("?", |k| k.kernel.as_str())
        )
    } else {
        "engine-f32".to_string()
    }
}

/// A classifier the protocol can time.
enum Runner {
    Burn {
        task: ClassifyTask,
        model: SequenceClassifier,
        device: burn::tensor::Device,
    },
    Engine(EngineClassifier),
}

impl Runner {
    fn logits(&self, b: &ClassBatch) -> Result<Vec<f32>, CompressError> {
        match self {
            Runner::Burn { model, device, .. } => {
                let (ids, types, mask) = b.tensors(device); // [B, T] each
                Ok(model
                    .forward(ids, Some(types), mask, OutputOptions::default())
                    .logits // [B, C]
                    .into_data()
                    .iter::<f32>()
                    .collect())
            }
            Runner::Engine(e) => e.engine.logits(&batch_of(b)),
        }
    }

    fn task(&self) -> &ClassifyTask {
        match self {
            Runner::Burn { task, .. } => task,
            Runner::Engine(e) => &e.task,
        }
    }
}

/// What `refinery compare` was given for one model: a directory, or `engine:DIR` to run an
/// f32 model through the engine instead of burn.
#[derive(Debug, Clone)]
pub struct ModelArg {
    pub dir: PathBuf,
    pub force_engine: bool,
}

impl ModelArg {
    pub fn parse(s: &str) -> ModelArg {
        match s.strip_prefix("engine:") {
            Some(d) => ModelArg {
                dir: PathBuf::from(d),
                force_engine: true,
            },
            None => ModelArg {
                dir: PathBuf::from(s),
                force_engine: false,
            },
        }
    }
}

/// The median (the mean of the two middle values for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The p90 by nearest rank: `sorted[ceil(0.9 n) − 1]`.
fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (0.9 * s.len() as f64).ceil() as usize;
    s.get(rank.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// Steps 2–4 of the protocol: warm-up (the first 32 single rows, then the first batch), the
/// latency of the first `latency_n` single rows, and `repeats` passes over `batches` (`n`
/// rows in all). Returns the latency median and p90 (ms) and the median rows/s; `first_pass`
/// sees every batch's logits of the first pass.
fn time_protocol<B>(
    singles: &[B],
    batches: &[B],
    n: usize,
    protocol: &Protocol,
    run: impl Fn(&B) -> Result<Vec<f32>, CompressError>,
    mut first_pass: impl FnMut(&B, &[f32]),
) -> Result<(f64, f64, f64), CompressError> {
    for r in singles.iter().take(32) {
        run(r)?;
    }
    if let Some(b) = batches.first() {
        run(b)?;
    }
    let mut lat: Vec<f64> = Vec::new();
    for r in singles.iter().take(protocol.latency_n.max(1)) {
        let t = Instant::now();
        run(r)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut speeds = Vec::new();
    for pass in 0..protocol.repeats.max(1) {
        let t = Instant::now();
        for b in batches {
            let logits = run(b)?;
            if pass == 0 {
                first_pass(b, &logits);
            }
        }
        speeds.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let p90 = p90(&lat);
    Ok((median(&mut lat), p90, median(&mut speeds)))
}

/// The bytes of `dir/model.safetensors`.
fn weights_size(dir: &Path) -> Result<u64, CompressError> {
    let path = dir.join(WEIGHTS_FILE);
    Ok(std::fs::metadata(&path)
        .map_err(|e| CompressError::io(&path, e))?
        .len())
}

/// Measures one model on `data` (labelled; its saved fields) with `protocol`.
pub fn measure(
    model: &ModelArg,
    spec: &AnyTaskSpec,
    data: &Path,
    protocol: &Protocol,
) -> Result<Row, CompressError> {
    let spec = match spec {
        AnyTaskSpec::Classify(spec) => spec,
        AnyTaskSpec::GptClm(spec) => return measure_lm(model, spec, data, protocol),
        other => {
            return Err(CompressError::Invalid(format!(
                "{}: a {} model; compare measures classifiers and GPT-2 language models",
                model.dir.display(),
                other.kind()
            )))
        }
    };
    let quantized = read_quant_config(&model.dir)?.is_some();
    let runner = if quantized || model.force_engine {
        Runner::Engine(EngineClassifier::open(&model.dir, spec)?)
    } else {
        let device = burn::tensor::Device::flex();
        let task = spec.build(Some(&model.dir))?;
        let model = task.load_model(&model.dir, &device)?;
        Runner::Burn {
            task,
            model,
            device,
        }
    };
    let (runner_name, kernels, parameters) = match &runner {
        Runner::Burn { model, .. } => {
            use burn::module::Module;
            ("burn-f32".to_string(), Vec::new(), model.num_params())
        }
        Runner::Engine(e) => {
            let k = e.engine.kernels();
            (
                engine_runner(e.engine.quant.is_some(), &k),
                k,
                e.engine.parameters(),
            )
        }
    };
    let config = DataConfig {
        dev: Some(data.to_path_buf()),
        batch_size: protocol.batch_size.max(1),
        ..DataConfig::default()
    };
    let (rows, _) = runner.task().encode_split(&config, DataSplit::Validation)?;
    if rows.is_empty() {
        return Err(CompressError::Invalid(format!(
            "{}: no labelled rows",
            data.display()
        )));
    }
    let pad = pad_id(&runner.task().spec.model, &runner.task().encoder);
    let batches: Vec<ClassBatch> = rows
        .chunks(protocol.batch_size.max(1))
        .map(|c| ClassBatch::pad(&c.iter().collect::<Vec<&Encoded>>(), pad, 0))
        .collect();
    // 2–5. Warm-up, latency, throughput; accuracy from the first pass.
    let singles: Vec<ClassBatch> = rows
        .iter()
        .take(protocol.latency_n.max(32))
        .map(|r| ClassBatch::pad(&[r], pad, 0))
        .collect();
    let c = spec.labels.len();
    let mut gold = Vec::new();
    let mut pred = Vec::new();
    let timing = time_protocol(
        &singles,
        &batches,
        rows.len(),
        protocol,
        |b| runner.logits(b), // [B, C]
        |b, logits| {
            for (row, &g) in logits.chunks_exact(c).zip(&b.labels) {
                pred.push(ops::argmax(row));
                gold.push(usize::try_from(g).unwrap_or(usize::MAX));
            }
        },
    )?;
    let m = Confusion::from_pairs(&spec.labels, &gold, &pred).metrics();
    Ok(Row {
        model: model.dir.display().to_string(),
        runner: runner_name,
        threads: rayon::current_num_threads(),
        parameters,
        size_bytes: weights_size(&model.dir)?,
        latency_ms_median: timing.0,
        latency_ms_p90: timing.1,
        throughput_sps: timing.2,
        accuracy: m.get("accuracy").copied().unwrap_or(f64::NAN),
        macro_f1: m.get("macro_f1").copied(),
        perplexity: None,
        seq_len: None,
        decode_tokens_per_s: None,
        n: rows.len(),
        peak_rss_mb: None,
        kernels,
    })
}

/// A language model the protocol can time.
enum LmRunner {
    Burn {
        model: Box<Gpt>,
        device: burn::tensor::Device,
    },
    Engine(Box<GptEngine>),
}

impl LmRunner {
    /// Logits `[B·T, V]` of a batch.
    fn logits(&self, b: &LmBatch) -> Result<Vec<f32>, CompressError> {
        match self {
            LmRunner::Burn { model, device } => Ok(model
                .forward_with(b.tokens(device), b.mask(device), OutputOptions::default())
                .logits // [B, T, V]
                .into_data()
                .iter::<f32>()
                .collect()),
            LmRunner::Engine(e) => {
                e.logits(&b.input_ids, b.batch_size, b.attention_mask.as_deref())
            }
        }
    }
}

/// Sums of the next-token NLL (f64) and argmax hits over the targets of a batch: position
/// `i` predicts token `i + 1` of its row when both are tokens (mask).
fn add_nll(b: &LmBatch, logits: &[f32], v: usize, sums: &mut (f64, usize, usize)) {
    let t = b.seq_len;
    let live = |i: usize| b.attention_mask.as_ref().is_none_or(|m| m[i] != 0);
    for row in 0..b.batch_size {
        for i in 0..t.saturating_sub(1) {
            let (at, next) = (row * t + i, row * t + i + 1);
            if !(live(at) && live(next)) {
                continue;
            }
            let Ok(target) = usize::try_from(b.input_ids[next]) else {
                continue;
            };
            let x = &logits[at * v..(at + 1) * v];
            let max = x.iter().fold(f32::NEG_INFINITY, |m, &y| m.max(y));
            let lse = f64::from(max)
                + x.iter()
                    .map(|&y| (f64::from(y) - f64::from(max)).exp())
                    .sum::<f64>()
                    .ln();
            sums.0 += lse - f64::from(x[target.min(v - 1)]);
            sums.1 += usize::from(ops::argmax(x) == target);
            sums.2 += 1;
        }
    }
}

/// Greedy generation with the KV cache from `prompt` until the context is full, repeated
/// (at least 3 times and 1 s in all, at most 100 times): the median tokens/s.
fn decode_speed<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    context: usize,
) -> Result<f64, CompressError> {
    let new = context.saturating_sub(prompt.len()).max(1);
    let config = SamplingConfig::greedy(new);
    let run =
        || generate(model, prompt, &config).map_err(|e| CompressError::Invalid(e.to_string()));
    run()?; // warm-up
    let mut speeds = Vec::new();
    let start = Instant::now();
    while speeds.len() < 100 && (speeds.len() < 3 || start.elapsed().as_secs_f64() < 1.0) {
        let t = Instant::now();
        let g = run()?;
        speeds.push(g.tokens.len() as f64 / t.elapsed().as_secs_f64());
    }
    Ok(median(&mut speeds))
}

/// [`measure`] for a GPT-2 language model on token shards (see the module docs).
fn measure_lm(
    model: &ModelArg,
    spec: &GptClmSpec,
    data: &Path,
    protocol: &Protocol,
) -> Result<Row, CompressError> {
    let task = spec.build(Some(&model.dir))?;
    let quantized = read_quant_config(&model.dir)?.is_some();
    let runner = if quantized || model.force_engine {
        LmRunner::Engine(Box::new(GptEngine::load(
            &model.dir,
            KernelPath::from_env()?,
        )?))
    } else {
        let device = burn::tensor::Device::flex();
        let model = Box::new(task.load_model(&model.dir, &device)?);
        LmRunner::Burn { model, device }
    };
    let (runner_name, kernels, parameters) = match &runner {
        LmRunner::Burn { model, .. } => {
            use burn::module::Module;
            ("burn-f32".to_string(), Vec::new(), model.num_params())
        }
        LmRunner::Engine(e) => {
            let k = e.kernels();
            (engine_runner(e.quant.is_some(), &k), k, e.parameters())
        }
    };
    let context = spec.model.n_positions;
    let seq_len = protocol.seq_len.unwrap_or(context.min(128));
    if seq_len < 2 || seq_len > context {
        return Err(CompressError::Invalid(format!(
            "seq_len {seq_len}: expected 2..={context} (the model's context)"
        )));
    }
    let bs = protocol.batch_size.max(1);
    let config = DataConfig {
        sources: vec![SourceConfig {
            dir: data.to_path_buf(),
            weight: 1.0,
        }],
        batch_size: bs,
        shuffle: false,
        seq_len,
        ..DataConfig::default()
    };
    // 1. The first latency_n rows, in batches (the last one cut to size).
    let n = protocol.latency_n.max(1);
    let mut source = task.open_source(&config, DataSplit::Train)?;
    let mut batches: Vec<LmBatch> = Vec::new();
    let mut left = n;
    while left > 0 {
        let mut b = source.next_batch();
        if b.batch_size > left {
            b.input_ids.truncate(left * b.seq_len);
            if let Some(m) = b.attention_mask.as_mut() {
                m.truncate(left * b.seq_len);
            }
            b.batch_size = left;
        }
        left -= b.batch_size;
        batches.push(b);
    }
    let row_of = |b: &LmBatch, r: usize| LmBatch {
        batch_size: 1,
        seq_len: b.seq_len,
        input_ids: b.input_ids[r * b.seq_len..(r + 1) * b.seq_len].to_vec(),
        attention_mask: b
            .attention_mask
            .as_ref()
            .map(|m| m[r * b.seq_len..(r + 1) * b.seq_len].to_vec()),
    };
    let rows: Vec<LmBatch> = batches
        .iter()
        .flat_map(|b| (0..b.batch_size).map(move |r| row_of(b, r)))
        .collect();
    // 2–5. Warm-up, latency, throughput; perplexity and accuracy from the first pass.
    let v = spec.model.vocab_size;
    let mut sums = (0f64, 0usize, 0usize);
    let timing = time_protocol(
        &rows,
        &batches,
        rows.len(),
        protocol,
        |b| runner.logits(b), // [B·T, V]
        |b, logits| add_nll(b, logits, v, &mut sums),
    )?;
    // 6. Decode speed.
    let prompt: Vec<u32> = rows[0]
        .input_ids
        .iter()
        .take(8)
        .map(|&i| u32::try_from(i).unwrap_or(0))
        .collect();
    let decode = match &runner {
        LmRunner::Burn { model, .. } => decode_speed(model.as_ref(), &prompt, context),
        LmRunner::Engine(e) => decode_speed(e.as_ref(), &prompt, context),
    }?;
    let targets = sums.2.max(1) as f64;
    Ok(Row {
        model: model.dir.display().to_string(),
        runner: runner_name,
        threads: rayon::current_num_threads(),
        parameters,
        size_bytes: weights_size(&model.dir)?,
        latency_ms_median: timing.0,
        latency_ms_p90: timing.1,
        throughput_sps: timing.2,
        accuracy: sums.1 as f64 / targets,
        macro_f1: None,
        perplexity: Some((sums.0 / targets).exp()),
        seq_len: Some(seq_len),
        decode_tokens_per_s: Some(decode),
        n: rows.len(),
        peak_rss_mb: None,
        kernels,
    })
}

/// This process's peak resident set (`VmHWM`), in MB (Linux; `None` elsewhere).
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The table `refinery compare` prints.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| model | runner | threads | params | file MB | batch-1 ms (median / p90) | batch-32 rows/s | peak RSS MB | accuracy | macro-F1 | perplexity | decode tokens/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} M | {:.1} | {:.2} / {:.2} | {:.1} | {} | {:.4} | {} | {} | {} |\n",
            r.model,
            r.runner,
            r.threads,
            r.parameters as f64 / 1e6,
            r.size_bytes as f64 / 1e6,
            r.latency_ms_median,
            r.latency_ms_p90,
            r.throughput_sps,
            r.peak_rss_mb.map_or("-".to_string(), |m| format!("{m:.0}")),
            r.accuracy,
            opt(r.macro_f1),
            opt(r.perplexity),
            r.decode_tokens_per_s.map_or("-".to_string(), |v| format!("{v:.0}")),
        ));
    }
    out
}

//! `refinery quantize` and `refinery compare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use refinery_compress::bert::{calibrate, Engine};
use refinery_compress::classify::batch_of;
use refinery_compress::compare::{measure, peak_rss_mb, table, ModelArg, Protocol, Row};
use refinery_compress::gpt::{calibrate as calibrate_lm_scales, GptEngine};
use refinery_compress::kernels::KernelPath;
use refinery_compress::quant::{
    quantize_dir, Calibration, CalibrationRecord, Granularity, QuantOptions, WeightCode,
};
use refinery_train::data::labelled::{ClassBatch, Encoded};
use refinery_train::data::{DataConfig, DataSplit, SourceConfig};
use refinery_train::tasks::classify::pad_id;
use refinery_train::tasks::open;
use refinery_train::{AnyTaskSpec, ClassifySpec, GptClmSpec, Task, TaskSpec};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Activation scales computed per token at run time.
    Dynamic,
    /// Activation scales calibrated once on --calibration data.
    Static,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CalibrationArg {
    Minmax,
    Percentile,
}

/// `refinery quantize`.
#[derive(Args)]
#[command(after_help = "Examples:
  refinery quantize --model runs/sst2/best --out runs/sst2/int8
  refinery quantize --model runs/sst2/best --out runs/sst2/int8-sym --symmetric --activations per-tensor
  refinery quantize --model runs/sst2/best --out runs/sst2/int8-static --scheme static \\
      --calibration train.tsv --calibration-rows 512 --calibration-method percentile
  refinery quantize --model runs/sst2/best --out runs/sst2/log2 --weights log2
  refinery quantize --model runs/gpt/checkpoint-5000 --out runs/gpt/int8

The output is an HF-style directory (I8 weights + F32 scales in model.safetensors, the scheme
in config.json); `refinery classify`, `evaluate` and `compare` (classifiers), `eval-lm`,
`generate` and `compare` (GPT-2) run it on the int8 kernels, and scripts/dequantize.py turns it
back into f32 safetensors for transformers.")]
pub struct QuantizeArgs {
    /// A fine-tuned BERT classifier or a GPT-2 LM directory (f32).
    #[arg(long)]
    model: PathBuf,
    /// The new directory.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "dynamic")]
    scheme: SchemeArg,
    /// Weight levels: linear (-127..127) or log2 (0, ±1, ±2, …, ±64).
    #[arg(long, value_enum, default_value = "linear")]
    weights: WeightsArg,
    /// Dynamic scheme: one activation scale per token or per tensor.
    #[arg(long, value_enum, default_value = "per-token")]
    activations: ActivationsArg,
    /// Symmetric ±127 activation codes (default for the dynamic scheme: u8 codes with a zero
    /// point over each token's range, which measured 0.35 points better on SST-2; static
    /// scales are always symmetric).
    #[arg(long)]
    symmetric: bool,
    /// Keep embedding tables f32 (default: int8 per row).
    #[arg(long)]
    f32_embeddings: bool,
    /// Static scheme: labelled data in the model's format (TSV, CSV, JSONL) to calibrate a
    /// classifier on; a token shard directory for a GPT-2.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Static scheme: at most this many calibration rows.
    #[arg(long, default_value_t = 512)]
    calibration_rows: usize,
    #[arg(long, value_enum, default_value = "minmax")]
    calibration_method: CalibrationArg,
    /// Percentile of |x| for --calibration-method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsArg {
    Linear,
    Log2,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationsArg {
    PerToken,
    PerTensor,
}

pub fn quantize(a: QuantizeArgs) -> Result<ExitCode> {
    let opened = open(&a.model)?;
    let lm = match &opened.spec {
        AnyTaskSpec::Classify(_) => false,
        AnyTaskSpec::GptClm(_) => true,
        other => bail!(
            "{}: a {} model; `refinery quantize` handles BERT classifiers and GPT-2 language \
             models",
            a.model.display(),
            other.kind()
        ),
    };
    let options = QuantOptions {
        weights: match a.weights {
            WeightsArg::Linear => WeightCode::Linear,
            WeightsArg::Log2 => WeightCode::Log2,
        },
        activations: match a.activations {
            ActivationsArg::PerToken => Granularity::PerToken,
            ActivationsArg::PerTensor => Granularity::PerTensor,
        },
        asymmetric: !a.symmetric && a.scheme == SchemeArg::Dynamic,
        int8_embeddings: !a.f32_embeddings,
    };
    let static_scales = match (a.scheme, &a.calibration) {
        (SchemeArg::Dynamic, None) => None,
        (SchemeArg::Dynamic, Some(_)) => bail!("--calibration needs --scheme static"),
        (SchemeArg::Static, None) => bail!("--scheme static needs --calibration FILE"),
        (SchemeArg::Static, Some(file)) => {
            if !(a.percentile > 0.0 && a.percentile <= 100.0) {
                bail!("--percentile {}: expected (0, 100]", a.percentile);
            }
            let method = match a.calibration_method {
                CalibrationArg::Minmax => Calibration::MinMax,
                CalibrationArg::Percentile => Calibration::Percentile { p: a.percentile },
            };
            let (scales, rows) = match &opened.spec {
                AnyTaskSpec::GptClm(spec) => calibrate_lm(&a, spec, file, method)?,
                AnyTaskSpec::Classify(spec) => calibrate_classifier(&a, spec, file, method)?,
                _ => bail!("--scheme static needs a classifier or a GPT-2"),
            };
            let record = CalibrationRecord {
                method,
                file: file.display().to_string(),
                rows,
            };
            Some((scales, record))
        }
    };
    let report = quantize_dir(&a.model, &a.out, &options, static_scales)?;
    let kernels = if lm {
        GptEngine::load(&a.out, KernelPath::from_env()?).map(|e| e.kernels())
    } else {
        Engine::load(&a.out, KernelPath::from_env()?).map(|e| e.kernels())
    }
    .with_context(|| format!("loading the result {}", a.out.display()))?;
    if a.json {
        let v = serde_json::json!({ "report": report, "kernels": kernels });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} → {}: {} tensors int8 ({:?} scheme, {:?} weights); weights {:.1} MB → {:.1} MB",
            a.model.display(),
            a.out.display(),
            report.quantized.len(),
            report.config.scheme,
            report.config.weights,
            report.f32_bytes as f64 / 1e6,
            report.int8_bytes as f64 / 1e6,
        );
        println!("kernels:");
        for k in kernels {
            println!(
                "  {:<26} [{}, {}]  {}",
                k.layers, k.shape[0], k.shape[1], k.kernel
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Static scales of a classifier from labelled `file` (at most --calibration-rows rows).
fn calibrate_classifier(
    a: &QuantizeArgs,
    spec: &ClassifySpec,
    file: &Path,
    method: Calibration,
) -> Result<(BTreeMap<String, f32>, usize)> {
    let task = spec.build(Some(&a.model))?;
    let data = DataConfig {
        dev: Some(file.to_path_buf()),
        ..DataConfig::default()
    };
    let (rows, _) = task
        .encode_split(&data, DataSplit::Validation)
        .with_context(|| format!("calibration data {}", file.display()))?;
    let rows: Vec<&Encoded> = rows.iter().take(a.calibration_rows).collect();
    if rows.is_empty() {
        bail!("{}: no usable calibration rows", file.display());
    }
    let engine = Engine::load(&a.model, KernelPath::from_env()?)?;
    let pad = pad_id(&spec.model, &task.encoder);
    let batches: Vec<ClassBatch> = rows
        .chunks(32)
        .map(|c| ClassBatch::pad(c, pad, 0))
        .collect();
    let scales = calibrate(&engine, batches.iter().map(batch_of), method)?;
    Ok((scales, rows.len()))
}

/// Static scales of a GPT-2 from a token shard directory: the first --calibration-rows rows
/// of min(context, 128) tokens, in batches of 8.
fn calibrate_lm(
    a: &QuantizeArgs,
    spec: &GptClmSpec,
    dir: &Path,
    method: Calibration,
) -> Result<(BTreeMap<String, f32>, usize)> {
    let task = spec.build(Some(&a.model))?;
    let data = DataConfig {
        sources: vec![SourceConfig {
            dir: dir.to_path_buf(),
            weight: 1.0,
        }],
        batch_size: 8,
        shuffle: false,
        seq_len: spec.model.n_positions.min(128),
        ..DataConfig::default()
    };
    let mut source = task
        .open_source(&data, DataSplit::Train)
        .with_context(|| format!("calibration token shards {}", dir.display()))?;
    let mut batches = Vec::new();
    let mut rows = 0;
    while rows < a.calibration_rows {
        let b = source.next_batch();
        rows += b.batch_size;
        batches.push(b);
    }
    if rows == 0 {
        bail!("{}: no usable calibration rows", dir.display());
    }
    let engine = GptEngine::load(&a.model, KernelPath::from_env()?)?;
    Ok((calibrate_lm_scales(&engine, &batches, method)?, rows))
}

/// `refinery compare`.
#[derive(Args)]
#[command(after_help = "Examples:
  refinery compare runs/sst2/best runs/sst2/int8 runs/student/best --data dev.tsv
  refinery compare runs/sst2/best engine:runs/sst2/best runs/sst2/int8 --data dev.tsv \\
      --threads 1 --json table.json
  refinery compare runs/gpt/checkpoint-5000 runs/gpt/int8 --data tokens/valid --seq-len 128

Each model runs in its own process (so peak RSS is its own). `engine:DIR` runs an f32 model
through the int8 engine's f32 path instead of burn. Protocol: crates/compress/src/compare.rs.")]
pub struct CompareArgs {
    /// Classifier or GPT-2 LM directories (f32, int8, pruned, distilled; `engine:DIR` for the
    /// engine's f32).
    #[arg(required = true)]
    models: Vec<String>,
    /// Labelled data for classifiers (each model's saved fields are used); a token shard
    /// directory for GPT-2 language models (perplexity instead of accuracy).
    #[arg(long)]
    data: PathBuf,
    /// Language models: tokens per row (default: min(context, 128)).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Threads per model (RAYON_NUM_THREADS of each child process).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Rows timed one at a time for latency.
    #[arg(long, default_value_t = 200)]
    latency_n: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Batched passes over the data (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: measure one model in this process and print its row as JSON.
    #[arg(long, hide = true)]
    one: bool,
}

pub fn compare(a: CompareArgs) -> Result<ExitCode> {
    if a.threads == 0 || a.batch_size == 0 {
        bail!("--threads and --batch-size must be at least 1");
    }
    let protocol = Protocol {
        latency_n: a.latency_n,
        batch_size: a.batch_size,
        repeats: a.repeats,
        seq_len: a.seq_len,
    };
    if a.one {
        let [m] = a.models.as_slice() else {
            bail!("--one takes one model");
        };
        let model = ModelArg::parse(m);
        let opened = open(&model.dir)?;
        let mut row = measure(&model, &opened.spec, &a.data, &protocol)?;
        row.peak_rss_mb = peak_rss_mb();
        println!("{}", serde_json::to_string(&row)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe().context("locating the refinery binary")?;
    let mut rows: Vec<Row> = Vec::new();
    for m in &a.models {
        eprintln!("compare: {m} ({} thread(s))", a.threads);
        let mut cmd = Command::new(&exe);
        cmd.args(["compare", "--one", m, "--data"])
            .arg(&a.data)
            .args(["--threads", &a.threads.to_string()])
            .args(["--latency-n", &a.latency_n.to_string()])
            .args(["--batch-size", &a.batch_size.to_string()])
            .args(["--repeats", &a.repeats.to_string()])
            .env("RAYON_NUM_THREADS", a.threads.to_string());
        if let Some(t) = a.seq_len {
            cmd.args(["--seq-len", &t.to_string()]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!("{m}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or("");
        rows.push(serde_json::from_str(line).with_context(|| format!("{m}: row {line:?}"))?);
    }
    print!("{}", table(&rows));
    for r in rows.iter().filter(|r| !r.kernels.is_empty()) {
        let k: Vec<String> = r
            .kernels
            .iter()
            .map(|k| format!("{} [{}, {}] {}", k.layers, k.shape[0], k.shape[1], k.kernel))
            .collect();
        println!("{}: {}", r.model, k.join("; "));
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `refinery distill`: a frozen teacher trains a smaller student (`refinery_distill`); this
//! module parses flags, runs the distillation with a progress bar, and prints the
//! teacher/student table (also written as JSON).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use refinery_distill::config::PRESETS;
use refinery_distill::report::{measure, ModelReport, Timing};
use refinery_distill::{distill as run_distill, DistillFile};
use refinery_model::device::parse_device;
use refinery_train::data::{DataConfig, SourceConfig};
use refinery_train::run::{BEST_DIR, FINAL_DIR};
use refinery_train::tasks::{open, AnyTaskSpec};

use crate::finetune::report_skipped;
use crate::pretrain::{bar, eval_line, Bar};

const DISTILL_EXAMPLES: &str = "\
Examples:
  refinery finetune --preset sst2-minilm --model all-MiniLM-L6-v2/ --train sst2/train.tsv \\
      --dev sst2/dev.tsv --out runs/sst2                                    (the teacher)
  refinery distill --teacher runs/sst2/best --train sst2/train.tsv --dev sst2/dev.tsv \\
      --out runs/sst2-3l                       (preset sst2-minilm-3l: 3 layers, soft + hidden)
  refinery distill --teacher runs/gpt/checkpoint-300 --data tokens/ --out runs/gpt-2l
  refinery distill --preset sst2-minilm-3l --print-config > distill.toml

The best student (by run.best_metric) goes to OUT/best, the last to OUT/final: plain HF
checkpoints (`refinery evaluate` and transformers read them). At the end a table compares
teacher and student (parameters, size, latency at batch 1, throughput at batch 32,
accuracy/F1 or perplexity); it is also written to OUT/distill_report.json. A killed run
resumes when rerun. See docs/distill.md.";

/// What to distil and where.
#[derive(Args)]
#[command(after_help = DISTILL_EXAMPLES)]
pub struct DistillArgs {
    /// The teacher: a fine-tuned classifier directory or a GPT-2 checkpoint.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Labelled training file (classifiers).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Labelled dev file (classifiers).
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Token shard directory (language models).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory; a directory with checkpoints is resumed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Student layers (default: the preset's, else half the teacher's).
    #[arg(long)]
    student_layers: Option<usize>,
    /// Seeds the student's initialisation, dropout and data order.
    #[arg(long)]
    seed: Option<u64>,
    /// A distill.toml.
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A shipped preset: sst2-minilm-3l (default for classifier teachers), gpt-tiny-2l
    /// (default for GPT-2 teachers).
    #[arg(long)]
    preset: Option<String>,
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<usize>,
    /// Optimizer steps instead of epochs.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Run the teacher once and read its logits from OUT/teacher-cache.bin.
    #[arg(long)]
    cache: bool,
    /// Device: cpu (flex), cuda[:N], tch[:cuda[:N]] (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Skip the teacher/student table (timings and dev evaluations).
    #[arg(long)]
    no_report: bool,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    print_config: bool,
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The config file: `--config`, `--preset`, or the default preset of the teacher's kind.
fn load_file(a: &DistillArgs) -> Result<(DistillFile, String)> {
    if let Some(path) = &a.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        return Ok((DistillFile::from_toml(&text, &name)?, name));
    }
    let preset = match (&a.preset, &a.teacher) {
        (Some(p), _) => p.clone(),
        (None, Some(t)) => match open(t)?.spec {
            AnyTaskSpec::GptClm(_) => "gpt-tiny-2l".into(),
            _ => "sst2-minilm-3l".into(),
        },
        (None, None) => "sst2-minilm-3l".into(),
    };
    if !PRESETS.iter().any(|(n, _)| *n == preset) {
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        bail!("unknown preset {preset:?} (presets: {})", names.join(", "));
    }
    Ok((DistillFile::preset(&preset)?, format!("preset {preset}")))
}

fn apply_flags(f: &mut DistillFile, a: &DistillArgs) {
    if let Some(t) = &a.teacher {
        f.teacher.dir = Some(t.clone());
    }
    if a.cache {
        f.teacher.cache = true;
    }
    if let Some(n) = a.student_layers {
        f.student.layers = Some(n);
    }
    let d = &mut f.data;
    if a.train.is_some() {
        d.train = a.train.clone();
    }
    if a.dev.is_some() {
        d.dev = a.dev.clone();
    }
    if let Some(dir) = &a.data {
        d.sources = vec![SourceConfig {
            dir: dir.clone(),
            weight: 1.0,
        }];
    }
    if let Some(b) = a.batch_size {
        d.batch_size = b;
    }
    if let Some(e) = a.epochs {
        f.run.epochs = Some(e);
    }
    if let Some(n) = a.steps {
        f.run.epochs = None;
        f.run.total_steps = n;
        if f.optim.warmup_ratio.is_none() {
            f.optim.warmup_steps = f.optim.warmup_steps.min(n);
        }
    }
    if let Some(lr) = a.lr {
        f.optim.lr = lr;
        f.optim.min_lr = f.optim.min_lr.min(lr);
    }
    if let Some(s) = a.seed {
        f.run.seed = s;
        f.data.seed = s;
    }
    if let Some(out) = &a.out {
        f.run.out_dir = Some(out.clone());
    }
}

/// The dev data of the table: the dev file (classifiers) or the held-out split (LMs).
fn dev_data(f: &DistillFile) -> DataConfig {
    let mut d = f.data.clone();
    d.train = None;
    d.few_shot = None;
    d
}

fn fmt_metrics(r: &ModelReport) -> String {
    match (r.metrics.get("accuracy"), r.metrics.get("macro_f1")) {
        (Some(a), Some(f1)) => format!("{a:.4} / {f1:.4}"),
        _ => r
            .metrics
            .get("perplexity")
            .map_or_else(|| "-".into(), |p| format!("perplexity {p:.3}")),
    }
}

fn print_table(rows: &[ModelReport]) {
    println!(
        "| model | params | size (MB) | latency (batch 1) | throughput (batch 32) | accuracy / F1 |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {:.2} ms | {:.1} /s | {} |",
            r.model,
            r.params,
            r.size_mb,
            r.latency_ms,
            r.throughput_per_s,
            fmt_metrics(r)
        );
    }
}

fn best_or_final(out: &Path) -> PathBuf {
    let best = out.join(BEST_DIR);
    if best.is_dir() {
        best
    } else {
        out.join(FINAL_DIR)
    }
}

pub fn distill(a: DistillArgs) -> Result<ExitCode> {
    let (mut file, name) = load_file(&a)?;
    apply_flags(&mut file, &a);
    if a.print_config {
        print!("{}", file.to_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    file.check(&name)?;
    let out = file.run.out_dir.clone().unwrap_or_default();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Two runs into one directory would interleave their checkpoints.
    let _lock = refinery_corpus::lock::lock_output(&out, None)?;
    let quiet = a.quiet || a.json;

    // Every labelled file's bad rows, reported and kept in out/data_report.json.
    let fields = file.data.fields();
    let files: Vec<&PathBuf> = file.data.train.iter().chain(&file.data.dev).collect();
    let report: Vec<serde_json::Value> = files
        .iter()
        .map(|p| report_skipped(p, &fields, quiet))
        .collect::<Result<_>>()?;
    if !report.is_empty() {
        let path = out.join("data_report.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| path.display().to_string())?;
    }

    let device = parse_device(&a.device)?;
    let mut observer = Bar {
        bar: bar(quiet),
        json: a.json,
    };
    let summary = run_distill(&file, &name, &device, &mut observer)?;
    observer.bar.finish_and_clear();
    let completed = summary.runs.iter().all(|r| r.summary.completed);

    let mut table = Vec::new();
    if !a.no_report && completed {
        let dev = dev_data(&file);
        let timing = Timing::default();
        table.push(measure("teacher", &summary.teacher, &dev, timing, &device)?);
        table.push(measure(
            "student",
            &best_or_final(&out),
            &dev,
            timing,
            &device,
        )?);
        let runs: Vec<serde_json::Value> = summary
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "dir": r.dir,
                    "teacher": r.teacher,
                    "final_step": r.summary.final_step,
                    "best": r.summary.run_state.best_value,
                })
            })
            .collect();
        let path = out.join("distill_report.json");
        let v = serde_json::json!({ "models": table, "runs": runs });
        std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| path.display().to_string())?;
    }

    if a.json {
        let last = summary.runs.last();
        let v = serde_json::json!({
            "out_dir": out,
            "completed": completed,
            "final_step": last.map(|r| r.summary.final_step),
            "resumed_from": last.and_then(|r| r.summary.resumed_from.clone()),
            "best": out.join(BEST_DIR).is_dir().then(|| out.join(BEST_DIR)),
            "final": out.join(FINAL_DIR).is_dir().then(|| out.join(FINAL_DIR)),
            "runs": summary.runs.iter().map(|r| serde_json::json!({
                "name": r.name, "dir": r.dir, "final_step": r.summary.final_step,
                "eval": r.summary.last_eval,
            })).collect::<Vec<_>>(),
            "models": table,
            "data": report,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &summary.runs {
        let what = if r.name.is_empty() {
            "student"
        } else {
            &r.name
        };
        let eval = r
            .summary
            .last_eval
            .as_ref()
            .map(eval_line)
            .unwrap_or_default();
        println!(
            "{what}: step {} in {}  {eval}",
            r.summary.final_step,
            r.dir.display()
        );
    }
    if !completed {
        println!("stopped before the end; rerun the same command to resume");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "best: {}  final: {}",
        out.join(BEST_DIR).display(),
        out.join(FINAL_DIR).display()
    );
    if !table.is_empty() {
        print_table(&table);
        println!("table: {}", out.join("distill_report.json").display());
    }
    println!("metrics: {}", out.join("metrics.jsonl").display());
    Ok(ExitCode::SUCCESS)
}

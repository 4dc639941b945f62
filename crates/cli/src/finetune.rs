//! Fine-tuning and classification: `refinery finetune`, `evaluate`, `classify`, `prompt`
//! and `export-task`. The work is in `refinery_train` (tasks `classify`, `cloze`,
//! `multitask`; `prompt` for LM and embedding scoring); this module parses flags, reports
//! bad rows and prints tables.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use refinery_compress::classify::EngineClassifier;
use refinery_compress::prune::{record_gradual, REPORT_FILE};
use refinery_compress::quant::read_quant_config;
use refinery_model::classify::SequenceClassifier;
use refinery_model::device::parse_device;
use refinery_model::hf::{load_bert_model, load_gpt};
use refinery_tokenize::Tokenizer;
use refinery_train::config::{train, CheckContext, TaskSection, TrainFile, PRESETS};
use refinery_train::data::labelled::{read_labelled, Fields, LabelSet};
use refinery_train::data::{DataConfig, DataSplit};
use refinery_train::eval::EvalReport;
use refinery_train::objectives::classify::Confusion;
use refinery_train::prompt::{argmax_rows, embedding_scores, lm_scores, LmPrompt};
use refinery_train::run::{BEST_DIR, EVAL_FILE, FINAL_DIR};
use refinery_train::tasks::classify::few_shot;
use refinery_train::tasks::cloze::ClozeSpec;
use refinery_train::tasks::multitask::{export_task, MultiTaskSection, TaskFiles};
use refinery_train::tasks::{evaluate_checkpoint, open, Task};
use refinery_train::{AnyTaskSpec, ClassifyTask, TaskSpec};

use crate::pretrain::{bar, eval_line, Bar};

const FINETUNE_EXAMPLES: &str = "\
Examples:
  refinery finetune --preset sst2-minilm --model all-MiniLM-L6-v2/ \\
      --train sst2/train.tsv --dev sst2/dev.tsv --out runs/sst2
  refinery finetune --model runs/gpt/checkpoint-2000 --train reviews.jsonl --out runs/clf \\
      --text-field review --label-field stars --epochs 2 --lr 5e-5
  refinery finetune --preset sst2-cloze --model runs/bert/checkpoint-2000 --train train.tsv \\
      --dev dev.tsv --few-shot 16 --out runs/pet
  refinery finetune --model MiniLM/ --task sst2=sst2/train.tsv,sst2/dev.tsv \\
      --task spam=spam.tsv --out runs/multi            (multi-task: one head per task)
  refinery finetune --preset sst2-minilm --print-config > ft.toml

The best model (by run.best_metric, default accuracy) goes to OUT/best, the last to
OUT/final: HF directories that transformers loads. A killed run resumes when rerun.";

/// Where fine-tuning starts and what it trains on.
#[derive(Args)]
#[command(after_help = FINETUNE_EXAMPLES)]
pub struct FinetuneArgs {
    /// The checkpoint to start from (any BERT or GPT-2 directory with tokenizer.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Training file (TSV, CSV or JSONL; gzip/zstd ok).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Dev file (default: a stratified data.validation_fraction of --train).
    #[arg(long)]
    dev: Option<PathBuf>,
    /// Output directory; a directory with checkpoints is resumed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A train.toml with [task] kind = classify | cloze | multitask.
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A shipped preset (default: classify): sst2-minilm, classify, sst2-cloze.
    #[arg(long)]
    preset: Option<String>,
    /// Multi-task: NAME=TRAIN[,DEV], repeated (one head per task).
    #[arg(long = "task")]
    tasks: Vec<String>,
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<usize>,
    /// Optimizer steps instead of epochs (multi-task runs count steps).
    #[arg(long)]
    steps: Option<usize>,
    /// Evaluate only once, at the end (few-shot runs with many short epochs); best = final.
    #[arg(long)]
    final_eval_only: bool,
    /// Hold out this stratified share of a training file that has no dev file.
    #[arg(long)]
    validation_fraction: Option<f64>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Longest input in tokens.
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    warmup_steps: Option<usize>,
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Seeds the head, dropout and data order.
    #[arg(long)]
    seed: Option<u64>,
    /// Gradual magnitude pruning to this final sparsity during the run (Zhu & Gupta's cubic
    /// schedule; the other settings are `[prune]` keys of --config, see docs/pruning.md).
    #[arg(long, allow_negative_numbers = true)]
    prune_sparsity: Option<f64>,
    /// Keep K seeded examples per label of the training data (few-shot).
    #[arg(long)]
    few_shot: Option<usize>,
    #[arg(long)]
    text_field: Option<String>,
    #[arg(long)]
    text_pair_field: Option<String>,
    #[arg(long)]
    label_field: Option<String>,
    /// Tokenizer (default: the model's tokenizer.json).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Device: cpu (flex), cuda[:N], tch[:cuda[:N]] (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    print_config: bool,
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn load_file(config: Option<&Path>, preset: Option<&str>) -> Result<(TrainFile, String)> {
    match (config, preset) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = path.display().to_string();
            Ok((TrainFile::from_toml(&text, &name)?, name))
        }
        (None, preset) => {
            let p = preset.unwrap_or("classify");
            if !PRESETS.iter().any(|(n, _)| *n == p) {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                bail!("unknown preset {p:?} (presets: {})", names.join(", "));
            }
            Ok((TrainFile::preset(p)?, format!("preset {p}")))
        }
    }
}

/// `NAME=TRAIN[,DEV]`.
fn parse_task(s: &str) -> Result<TaskFiles> {
    let Some((name, files)) = s.split_once('=') else {
        bail!("--task {s:?}: expected NAME=TRAIN[,DEV]");
    };
    let mut parts = files.splitn(2, ',');
    let train = parts.next().filter(|t| !t.is_empty());
    let Some(train) = train else {
        bail!("--task {s:?}: no training file");
    };
    Ok(TaskFiles {
        name: name.to_string(),
        train: PathBuf::from(train),
        dev: parts.next().map(PathBuf::from),
        text_field: None,
        text_pair_field: None,
        label_field: None,
        header: None,
        labels: None,
    })
}

/// Applies the command-line overrides to a fine-tuning config.
fn apply_flags(file: &mut TrainFile, a: &FinetuneArgs) -> Result<()> {
    if !a.tasks.is_empty() {
        let mut tasks = a
            .tasks
            .iter()
            .map(|t| parse_task(t))
            .collect::<Result<Vec<_>>>()?;
        for t in &mut tasks {
            t.text_field = a.text_field.clone();
            t.text_pair_field = a.text_pair_field.clone();
            t.label_field = a.label_field.clone();
        }
        let mut section = match &file.task {
            TaskSection::MultiTask(m) => m.clone(),
            _ => MultiTaskSection::default(),
        };
        section.tasks = tasks;
        file.task = TaskSection::MultiTask(section);
        if file.data.validation_fraction <= 0.0 {
            file.data.validation_fraction = 0.1;
        }
        if file.run.epochs.is_some() && a.steps.is_none() {
            bail!(
                "a multi-task run counts steps, not epochs (its tasks differ in size): pass \
                 --steps N"
            );
        }
    }
    if !file.task.is_labelled() {
        bail!(
            "task kind {:?} is not a fine-tuning task (classify, cloze, multitask): use \
             `refinery pretrain`",
            file.task.kind()
        );
    }
    if let Some(m) = &a.model {
        file.model.init = Some(m.clone());
    }
    if let Some(t) = &a.tokenizer {
        file.model.tokenizer = Some(t.clone());
    }
    let d = &mut file.data;
    if a.train.is_some() {
        d.train = a.train.clone();
    }
    if a.dev.is_some() {
        d.dev = a.dev.clone();
    }
    if a.tasks.is_empty() {
        if a.text_field.is_some() {
            d.text_field = a.text_field.clone();
        }
        if a.text_pair_field.is_some() {
            d.text_pair_field = a.text_pair_field.clone();
        }
        if a.label_field.is_some() {
            d.label_field = a.label_field.clone();
        }
    }
    if let Some(b) = a.batch_size {
        d.batch_size = b;
    }
    if let Some(k) = a.few_shot {
        d.few_shot = Some(k);
    }
    if let Some(n) = a.max_len {
        match &mut file.task {
            TaskSection::Classify(t) => t.max_len = Some(n),
            TaskSection::Cloze(t) => t.max_len = Some(n),
            TaskSection::MultiTask(t) => t.max_len = Some(n),
            _ => {}
        }
    }
    if let Some(e) = a.epochs {
        file.run.epochs = Some(e);
    }
    if let Some(n) = a.steps {
        file.run.epochs = None;
        file.run.total_steps = n;
    }
    if let Some(f) = a.validation_fraction {
        file.data.validation_fraction = f;
    }
    if a.final_eval_only {
        file.run.eval_every = 0;
        file.run.eval_each_epoch = false;
    }
    if let Some(lr) = a.lr {
        file.optim.lr = lr;
        file.optim.min_lr = file.optim.min_lr.min(lr);
    }
    if let Some(w) = a.warmup_steps {
        file.optim.warmup_steps = w;
        file.optim.warmup_ratio = None;
    }
    if let Some(w) = a.weight_decay {
        file.optim.weight_decay = w;
    }
    if let Some(s) = a.seed {
        file.run.seed = s;
        file.data.seed = s;
    }
    if let Some(out) = &a.out {
        file.run.out_dir = Some(out.clone());
    }
    if let Some(s) = a.prune_sparsity {
        file.prune.get_or_insert_with(Default::default).sparsity = Some(s);
    }
    if file.run.best_metric.is_none() {
        file.run.best_metric = Some("accuracy".into());
    }
    Ok(())
}

/// Reports the rows a labelled file skips (nothing is dropped silently); returns them as JSON.
pub(crate) fn report_skipped(
    path: &Path,
    fields: &Fields,
    quiet: bool,
) -> Result<serde_json::Value> {
    let f = read_labelled(path, fields)?;
    if let Some(s) = f.skipped_summary() {
        if !quiet {
            eprintln!("warning: {s}");
        }
    }
    Ok(serde_json::json!({
        "file": path,
        "examples": f.examples.len(),
        "skipped": f.skipped,
        "columns": { "text": f.columns.0, "text_pair": f.columns.1, "label": f.columns.2 },
    }))
}

pub fn finetune(a: FinetuneArgs) -> Result<ExitCode> {
    let (mut file, name) = load_file(a.config.as_deref(), a.preset.as_deref())?;
    apply_flags(&mut file, &a)?;
    if a.print_config {
        print!("{}", file.to_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = CheckContext {
        tokenizer: a.tokenizer.clone(),
        ..CheckContext::default()
    };
    let checked = file.check(&name, &ctx)?;
    let out = checked.run.out_dir.clone();
    let pruning = checked.prune.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Two runs into one directory would interleave their checkpoints.
    let _lock = refinery_corpus::lock::lock_output(&out, None)?;

    // Every labelled file's bad rows, reported and kept in out/data_report.json.
    let mut files: Vec<(PathBuf, Fields)> = Vec::new();
    let fields = checked.data.fields();
    if let TaskSection::MultiTask(m) = &file.task {
        for t in &m.tasks {
            let f = Fields {
                text_field: t.text_field.clone(),
                text_pair_field: t.text_pair_field.clone(),
                label_field: t.label_field.clone(),
                header: t.header,
                ..Fields::default()
            };
            files.push((t.train.clone(), f.clone()));
            files.extend(t.dev.clone().map(|d| (d, f.clone())));
        }
    } else {
        files.extend(checked.data.train.clone().map(|p| (p, fields.clone())));
        files.extend(checked.data.dev.clone().map(|p| (p, fields.clone())));
    }
    let quiet = a.quiet || a.json;
    let report: Vec<serde_json::Value> = files
        .iter()
        .map(|(p, f)| report_skipped(p, f, quiet))
        .collect::<Result<_>>()?;
    let report_path = out.join("data_report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| report_path.display().to_string())?;

    let device = parse_device(&a.device)?;
    let mut observer = Bar {
        bar: bar(quiet),
        json: a.json,
    };
    let summary = train(checked, &device, &mut observer)?;
    observer.bar.finish_and_clear();

    // A pruning run's models record it as `refinery prune` does (config.json, pruning.json).
    let mut pruned = Vec::new();
    if let Some(p) = &pruning {
        for dir in [out.join(BEST_DIR), out.join(FINAL_DIR)] {
            if dir.join("config.json").is_file() {
                let r = record_gradual(&dir, p)
                    .with_context(|| format!("recording the pruning in {}", dir.display()))?;
                pruned.push((dir, r.totals.sparsity));
            }
        }
    }
    let best = read_eval(&out.join(BEST_DIR));
    let last = read_eval(&out.join(FINAL_DIR));
    // The best model's confusion matrix, for `refinery report`.
    if let Some(c) = best.as_ref().and_then(|(_, e)| e.details.clone()) {
        let path = out.join("confusion.json");
        std::fs::write(&path, serde_json::to_string_pretty(&c)? + "\n")
            .with_context(|| path.display().to_string())?;
    }
    if a.json {
        let v = serde_json::json!({
            "out_dir": out,
            "resumed_from": summary.resumed_from,
            "final_step": summary.final_step,
            "completed": summary.completed,
            "stopped_early": summary.run_state.stopped_early,
            "best": best.as_ref().map(|(step, e)| serde_json::json!({"step": step, "eval": e})),
            "final": last.as_ref().map(|(step, e)| serde_json::json!({"step": step, "eval": e})),
            "data": report,
            "pruned": pruned
                .iter()
                .map(|(d, s)| serde_json::json!({"dir": d, "sparsity": s}))
                .collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(from) = &summary.resumed_from {
        println!("resumed from {}", from.display());
    }
    if summary.run_state.stopped_early {
        println!(
            "stopped early at step {} (no better {} for the patience)",
            summary.final_step,
            file.run.best_metric.as_deref().unwrap_or("")
        );
    }
    if let Some((step, e)) = &best {
        println!("best (step {step}): {}", out.join(BEST_DIR).display());
        print_metrics(e);
    }
    if let Some((step, e)) = &last {
        println!(
            "final (step {step}): {}  {}",
            out.join(FINAL_DIR).display(),
            eval_line(e)
        );
    }
    for (dir, sparsity) in &pruned {
        println!(
            "pruned: {} at {:.2}% sparsity of the pruned tensors (report: {})",
            dir.display(),
            100.0 * sparsity,
            dir.join(REPORT_FILE).display()
        );
    }
    println!("metrics: {}", out.join("metrics.jsonl").display());
    Ok(ExitCode::SUCCESS)
}

/// `(step, eval)` of a best/final directory.
fn read_eval(dir: &Path) -> Option<(usize, EvalReport)> {
    let text = std::fs::read_to_string(dir.join(EVAL_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let step = v.get("step")?.as_u64()? as usize;
    let eval: EvalReport = serde_json::from_value(v.get("eval")?.clone()).ok()?;
    Some((step, eval))
}

/// The metrics table: overall, per class, the confusion matrix.
fn print_metrics(e: &EvalReport) {
    let m = &e.metrics;
    let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    println!(
        "  accuracy {:.4}  macro-F1 {:.4}  MCC {:.4}  loss {:.4}  n {}",
        get("accuracy"),
        get("macro_f1"),
        get("mcc"),
        e.loss,
        get("n")
    );
    let Some(c) = e
        .details
        .as_ref()
        .and_then(|d| serde_json::from_value::<Confusion>(d.clone()).ok())
    else {
        // Multi-task: per-task lines.
        for (k, v) in m {
            if k.ends_with("/accuracy") || k.ends_with("/macro_f1") {
                println!("  {k} {v:.4}");
            }
        }
        return;
    };
    let w = c.labels.iter().map(String::len).max().unwrap_or(5).max(5);
    println!(
        "  {:<w$}  {:>9}  {:>9}  {:>9}  {:>7}",
        "label", "precision", "recall", "f1", "support"
    );
    for l in &c.labels {
        println!(
            "  {:<w$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>7}",
            l,
            get(&format!("precision/{l}")),
            get(&format!("recall/{l}")),
            get(&format!("f1/{l}")),
            get(&format!("support/{l}"))
        );
    }
    println!(
        "  confusion (rows gold, columns predicted): {}",
        c.labels.join(" ")
    );
    for (l, row) in c.labels.iter().zip(&c.matrix) {
        let cells: Vec<String> = row.iter().map(|x| format!("{x:>6}")).collect();
        println!("  {l:<w$} {}", cells.join(""));
    }
}

/// `refinery evaluate`.
#[derive(Args)]
#[command(after_help = "Examples:
  refinery evaluate --model runs/sst2/best --data sst2/dev.tsv
  refinery evaluate --model runs/sst2/best --data test.jsonl --json")]
pub struct EvaluateArgs {
    /// A fine-tuned model directory (classify or cloze).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data (TSV, CSV, JSONL); the field names saved with the model are used unless
    /// given.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long)]
    text_field: Option<String>,
    #[arg(long)]
    text_pair_field: Option<String>,
    #[arg(long)]
    label_field: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One JSON object: accuracy, macro_f1, mcc, n, loss, per_class, confusion, skipped.
    #[arg(long)]
    json: bool,
}

/// The fields saved with a model, overridden by flags.
fn model_fields(
    spec: &AnyTaskSpec,
    text: &Option<String>,
    pair: &Option<String>,
    label: &Option<String>,
) -> Fields {
    let mut f = match spec {
        AnyTaskSpec::Classify(s) => s.fields.clone(),
        AnyTaskSpec::Cloze(s) => s.fields.clone(),
        _ => Fields::default(),
    };
    if text.is_some() {
        f.text_field = text.clone();
    }
    if pair.is_some() {
        f.text_pair_field = pair.clone();
    }
    if label.is_some() {
        f.label_field = label.clone();
    }
    f
}

fn with_fields(spec: &mut AnyTaskSpec, fields: &Fields) {
    match spec {
        AnyTaskSpec::Classify(s) => s.fields = fields.clone(),
        AnyTaskSpec::Cloze(s) => s.fields = fields.clone(),
        _ => {}
    }
}

pub fn evaluate(a: EvaluateArgs) -> Result<ExitCode> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = parse_device(&a.device)?;
    let mut opened = open(&a.model)?;
    match &opened.spec {
        AnyTaskSpec::Classify(_) | AnyTaskSpec::Cloze(_) => {}
        AnyTaskSpec::MultiTask(_) => bail!(
            "{}: a multi-task model: export one task first (`refinery export-task --model DIR \
             --task NAME --out DIR`)",
            a.model.display()
        ),
        other => bail!(
            "{}: a {} model: use `refinery eval-lm`",
            a.model.display(),
            other.kind()
        ),
    }
    let fields = model_fields(
        &opened.spec,
        &a.text_field,
        &a.text_pair_field,
        &a.label_field,
    );
    with_fields(&mut opened.spec, &fields);
    let skipped = report_skipped(&a.data, &fields, a.json)?;
    let data = DataConfig {
        dev: Some(a.data.clone()),
        batch_size: a.batch_size,
        ..DataConfig::default()
    };
    let report = match (&opened.spec, read_quant_config(&a.model)?) {
        // An int8 checkpoint runs on the engine, with the same encoding and metrics.
        (AnyTaskSpec::Classify(spec), Some(_)) => {
            EngineClassifier::open(&a.model, spec)?.evaluate(&data, DataSplit::Validation)?
        }
        (_, Some(_)) => bail!("{}: int8 models are BERT classifiers", a.model.display()),
        (spec, None) => {
            evaluate_checkpoint(&a.model, spec, &data, DataSplit::Validation, None, &device)?
        }
    };
    if a.json {
        let m = &report.metrics;
        let per_class: BTreeMap<&String, f64> = m
            .iter()
            .filter(|(k, _)| k.contains('/'))
            .map(|(k, v)| (k, *v))
            .collect();
        let v = serde_json::json!({
            "model": a.model,
            "data": a.data,
            "accuracy": m.get("accuracy"),
            "macro_f1": m.get("macro_f1"),
            "mcc": m.get("mcc"),
            "n": m.get("n").map(|n| *n as u64),
            "loss": report.loss,
            "per_class": per_class,
            "confusion": report.details,
            "skipped": skipped["skipped"],
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{} on {}:", a.model.display(), a.data.display());
        print_metrics(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `classify` runs: the burn model (f32) or the engine (int8 checkpoints).
enum Predictor {
    Burn(ClassifyTask, SequenceClassifier),
    Engine(EngineClassifier),
}

/// `refinery classify`.
#[derive(Args)]
#[command(after_help = "Examples:
  echo 'a gripping, funny film' | refinery classify --model runs/sst2/best
  refinery classify --model runs/sst2/best < reviews.jsonl > predictions.jsonl")]
pub struct ClassifyArgs {
    /// A fine-tuned classifier directory.
    #[arg(long)]
    model: PathBuf,
    /// Rows per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// JSONL input: the text key (default: the model's text field, `text`, `sentence`).
    #[arg(long)]
    text_field: Option<String>,
    /// JSONL input: the second text of a pair.
    #[arg(long)]
    text_pair_field: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn classify(a: ClassifyArgs) -> Result<ExitCode> {
    let device = parse_device(&a.device)?;
    let opened = open(&a.model)?;
    let AnyTaskSpec::Classify(spec) = &opened.spec else {
        bail!(
            "{}: a {} model, not a classifier",
            a.model.display(),
            opened.spec.kind()
        );
    };
    let predictor = if read_quant_config(&a.model)?.is_some() {
        Predictor::Engine(EngineClassifier::open(&a.model, spec)?)
    } else {
        let task = spec.build(Some(&a.model))?;
        let model = task.load_model(&a.model, &device)?;
        Predictor::Burn(task, model)
    };
    let text_key = a.text_field.clone().or(spec.fields.text_field.clone());
    let pair_key = a
        .text_pair_field
        .clone()
        .or(spec.fields.text_pair_field.clone());
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut chunk: Vec<(String, Option<String>)> = Vec::new();
    let flush = |chunk: &mut Vec<(String, Option<String>)>, out: &mut dyn Write| -> Result<()> {
        let probs = match &predictor {
            Predictor::Burn(task, model) => task.predict(model, chunk, a.batch_size, &device)?,
            Predictor::Engine(e) => e.predict(chunk, a.batch_size)?,
        };
        for p in probs {
            let best = refinery_compress::ops::argmax(&p);
            let probs: BTreeMap<&str, f32> = spec
                .labels
                .iter()
                .map(String::as_str)
                .zip(p.iter().copied())
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({ "label": spec.labels[best], "probs": probs })
            )?;
        }
        chunk.clear();
        Ok(())
    };
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.with_context(|| format!("stdin line {}", i + 1))?;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let row = if trimmed.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(trimmed)
                .with_context(|| format!("stdin line {}: invalid JSON", i + 1))?;
            let pick = |key: &Option<String>, defaults: &[&str]| -> Option<String> {
                let keys: Vec<&str> = match key {
                    Some(k) => vec![k.as_str()],
                    None => defaults.to_vec(),
                };
                keys.iter()
                    .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
            };
            let Some(text) = pick(&text_key, &["text", "sentence"]) else {
                bail!("stdin line {}: no text field (set --text-field)", i + 1);
            };
            let pair = if pair_key.is_some() {
                Some(
                    pick(&pair_key, &[])
                        .with_context(|| format!("stdin line {}: no text pair field", i + 1))?,
                )
            } else {
                None
            };
            (text, pair)
        } else {
            (trimmed.to_string(), None)
        };
        chunk.push(row);
        if chunk.len() >= 256 {
            flush(&mut chunk, &mut out)?;
        }
    }
    if !chunk.is_empty() {
        flush(&mut chunk, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prompt-based classification modes.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PromptMode {
    /// A masked LM fills "[MASK]" in the template; labels score by their words.
    Cloze,
    /// A GPT scores each label word after the prompt (with --k demonstrations).
    Lm,
    /// Cosine similarity of sentence embeddings to label descriptions.
    Embedding,
}

/// `refinery prompt`.
#[derive(Args)]
#[command(after_help = "Examples:
  refinery prompt --mode cloze --model runs/bert/checkpoint-2000 --data dev.tsv \\
      --template '{text} It was [MASK].' --label 0=bad --label 1=good
  refinery prompt --mode lm --model runs/gpt/checkpoint-2000 --data dev.tsv \\
      --template $'Review: {text}\\nSentiment:' --label '0= negative' --label '1= positive' \\
      --train train.tsv --k 4 --seed 1
  refinery prompt --mode embedding --model all-MiniLM-L6-v2/ --data dev.tsv \\
      --label '0=a negative movie review' --label '1=a positive movie review'")]
pub struct PromptArgs {
    #[arg(long, value_enum)]
    mode: PromptMode,
    /// BERT with an MLM head (cloze), GPT-2 (lm) or a sentence-embedding BERT (embedding).
    #[arg(long)]
    model: PathBuf,
    /// Labelled data to classify and score.
    #[arg(long)]
    data: PathBuf,
    /// LABEL=WORD (cloze, lm: the label's verbalisation; embedding: its description);
    /// repeated, in label order.
    #[arg(long = "label", required = true)]
    labels: Vec<String>,
    /// With {text} (cloze: and one [MASK]).
    #[arg(long)]
    template: Option<String>,
    /// lm: demonstrations are drawn from this file, --k per label.
    #[arg(long)]
    train: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    k: usize,
    /// Seeds the demonstration sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long)]
    text_field: Option<String>,
    #[arg(long)]
    label_field: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    json: bool,
}

fn split_label(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(l, w)| (l.to_string(), w.to_string()))
        .with_context(|| format!("--label {s:?}: expected LABEL=WORD"))
}

pub fn prompt(a: PromptArgs) -> Result<ExitCode> {
    let device = parse_device(&a.device)?;
    let pairs = a
        .labels
        .iter()
        .map(|l| split_label(l))
        .collect::<Result<Vec<_>>>()?;
    let labels: Vec<String> = pairs.iter().map(|(l, _)| l.clone()).collect();
    let words: Vec<String> = pairs.iter().map(|(_, w)| w.clone()).collect();
    let fields = Fields {
        text_field: a.text_field.clone(),
        label_field: a.label_field.clone(),
        ..Fields::default()
    };
    let set = LabelSet {
        labels: labels.clone(),
    };
    let report = match a.mode {
        PromptMode::Cloze => {
            let template = a
                .template
                .clone()
                .unwrap_or_else(|| "{text} It was [MASK].".into());
            let spec = ClozeSpec {
                model: refinery_model::hf::read_bert_config(&a.model)?,
                init: Some(a.model.clone()),
                tokenizer: a.model.join("tokenizer.json"),
                labels: labels.clone(),
                template,
                verbalizer: words,
                max_len: a.max_len,
                fields: fields.clone(),
            };
            let task = spec.build(None)?;
            let model = task.init_model(&device)?;
            let data = DataConfig {
                dev: Some(a.data.clone()),
                batch_size: a.batch_size,
                ..DataConfig::default()
            };
            let mut source = task.open_source(&data, DataSplit::Validation)?;
            let n = source.batches_per_epoch().unwrap_or(1) as usize;
            let e = refinery_train::eval::evaluate(&task, &model, &mut *source, n, 0, &device)?;
            e.metrics
        }
        PromptMode::Lm | PromptMode::Embedding => {
            let file = read_labelled(&a.data, &fields)?;
            let gold = set.ids(&file)?;
            let texts: Vec<String> = file.examples.iter().map(|e| e.text.clone()).collect();
            let tok = Tokenizer::load(&a.model.join("tokenizer.json"))?;
            let scores = if a.mode == PromptMode::Lm {
                let (config, gpt) = load_gpt(&a.model, &device)?;
                let mut demos = Vec::new();
                if a.k > 0 {
                    let Some(train) = &a.train else {
                        bail!("--k needs --train (where the demonstrations come from)");
                    };
                    let tf = read_labelled(train, &fields)?;
                    let ids = set.ids(&tf)?;
                    let all: Vec<usize> = (0..ids.len()).collect();
                    let mut chosen = few_shot(&all, &ids, a.k, a.seed);
                    // Interleave labels in a seeded order rather than all of one label first.
                    let mut rng = refinery_train::rng::Rng::new(a.seed);
                    rng.shuffle(&mut chosen);
                    demos = chosen
                        .into_iter()
                        .map(|i| (tf.examples[i].text.clone(), ids[i]))
                        .collect();
                }
                let prompt = LmPrompt {
                    template: a
                        .template
                        .clone()
                        .unwrap_or_else(|| "{text}\nLabel:".into()),
                    words,
                    demos,
                };
                lm_scores(
                    &gpt,
                    &tok,
                    &prompt,
                    &texts,
                    config.n_positions,
                    a.batch_size,
                    &device,
                )?
            } else {
                let (_, bert) = load_bert_model(&a.model, &device)?;
                embedding_scores(
                    &bert,
                    &tok,
                    &words,
                    &texts,
                    a.max_len,
                    a.batch_size,
                    &device,
                )?
            };
            let pred = argmax_rows(&scores);
            Confusion::from_pairs(&labels, &gold, &pred).metrics()
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let get = |k: &str| report.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "{} ({}-shot): accuracy {:.4}  macro-F1 {:.4}  MCC {:.4}  n {}",
            a.data.display(),
            a.k,
            get("accuracy"),
            get("macro_f1"),
            get("mcc"),
            get("n")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `refinery export-task`.
#[derive(Args)]
pub struct ExportTaskArgs {
    /// A multi-task model directory (OUT/best of a multi-task run).
    #[arg(long)]
    model: PathBuf,
    /// The task to export.
    #[arg(long)]
    task: String,
    /// Where to write the standalone HF sequence classifier.
    #[arg(long)]
    out: PathBuf,
}

pub fn export(a: ExportTaskArgs) -> Result<ExitCode> {
    let device = parse_device("cpu")?;
    export_task(&a.model, &a.task, &a.out, &device)?;
    println!("{}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

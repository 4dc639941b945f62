//! `refinery pretrain` (train a GPT, BERT or BART from token shards) and `refinery eval-lm`
//! (loss and perplexity of a checkpoint on token shards).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use refinery_model::device::parse_device;
use refinery_model::hf::{load_bert, load_gpt};
use refinery_model::hf_bart::load_bart;
use refinery_tokenize::{TokenDataset, Tokenizer};
use refinery_train::config::{TaskSpec, TokenizerIds, TrainFile, PRESETS};
use refinery_train::data::{
    lm_batches, pair_batches, validation_set, DataConfig, DataSplit, NspSpecials, PairBatches,
    SourceConfig, TokenBatches,
};
use refinery_train::eval::{evaluate, EvalReport};
use refinery_train::run::{run, Observer, RunOptions, RunSummary, StepRecord};
use refinery_train::task_plm::{PlmFile, PLM_FILE};
use refinery_train::TrainConfig;
use refinery_train::{BertPretrainingTask, ClmTask, DaeTask, PlmTask, Task};

const PRETRAIN_EXAMPLES: &str = "\
Examples:
  refinery pretrain --preset gpt-tiny --data tokens/ --tokenizer tok.json --out runs/gpt
  refinery pretrain --preset bert-tiny --data tokens/ --tokenizer wp.json --out runs/bert
  refinery pretrain --preset bart-tiny --data tokens/ --tokenizer bpe.json --out runs/bart
  refinery pretrain --preset gpt-tiny --print-config > train.toml
  refinery pretrain --config train.toml --out runs/gpt     (resumes if runs/gpt has a checkpoint)";

#[derive(Args)]
#[command(after_help = PRETRAIN_EXAMPLES)]
pub struct PretrainArgs {
    /// A train.toml ([model], [data], [optim], [run]).
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A shipped preset: gpt-tiny, bert-tiny or bart-tiny (default: gpt-tiny).
    #[arg(long)]
    preset: Option<String>,
    /// Token shard directory (`refinery tokenize --output`); repeat to mix. Replaces
    /// data.sources.
    #[arg(long = "data")]
    data: Vec<PathBuf>,
    /// Tokenizer (tokenizer.json or a directory): copied into every checkpoint; BERT takes
    /// [CLS] [SEP] [PAD] [MASK] from it, BART <s> </s> <pad> <mask>.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Output directory (replaces run.out_dir). A directory with checkpoints is resumed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replaces run.total_steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Device: cpu (flex), cuda[:N], tch[:cuda[:N]] (if compiled in).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the resolved config as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EvalLmArgs {
    /// Checkpoint directory (config.json + model.safetensors), GPT-2, BERT or BART.
    #[arg(long)]
    model: PathBuf,
    /// Token shard directory; repeat for several.
    #[arg(long = "data", required = true)]
    data: Vec<PathBuf>,
    /// Tokens per row (default: the model's context, at most 1024).
    #[arg(long)]
    seq_len: Option<usize>,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Most batches to evaluate (default: one pass, at most 1000 batches).
    #[arg(long)]
    max_batches: Option<u64>,
    /// Evaluate only the held-out split of a training run (its data.validation_fraction and
    /// data.split_seed); default: every document.
    #[arg(long, default_value_t = 0.0)]
    validation_fraction: f64,
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// BERT: tokenizer for [CLS] [SEP] [PAD] [MASK]; BART: for <mask> when MODEL has no
    /// trainer_state.json (default: MODEL/tokenizer.json).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn tokenizer_ids(path: Option<&Path>) -> Result<TokenizerIds> {
    let Some(path) = path else {
        return Ok(TokenizerIds::default());
    };
    let tok = Tokenizer::load(path).with_context(|| format!("loading {}", path.display()))?;
    // BERT names first, then BART's (<s> and </s> play [CLS] and [SEP]).
    let find = |names: [&str; 2]| names.iter().find_map(|n| tok.token_to_id(n));
    Ok(TokenizerIds {
        mask: find(["[MASK]", "<mask>"]),
        cls: find(["[CLS]", "<s>"]),
        sep: find(["[SEP]", "</s>"]),
        pad: find(["[PAD]", "<pad>"]),
    })
}

/// The tokenizer.json file to copy into checkpoints.
fn tokenizer_file(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        let p = path.join("tokenizer.json");
        p.is_file().then_some(p)
    } else {
        (path.extension().and_then(|e| e.to_str()) == Some("json")).then(|| path.to_path_buf())
    }
}

/// Progress bar: steps against total, with loss, lr, tokens/s and ETA.
struct Bar {
    bar: ProgressBar,
    json: bool,
}

impl Observer for Bar {
    fn on_start(&mut self, start: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(start as u64);
        self.bar.reset_eta();
        if start > 0 {
            self.bar.println(format!("resuming at step {start}"));
        }
    }
    fn on_step(&mut self, r: &StepRecord) {
        self.bar.set_position(r.step as u64);
        self.bar.set_message(format!(
            "loss {:.4}  lr {:.2e}  {:.0} tok/s",
            r.loss, r.lr, r.tokens_per_s
        ));
    }
    fn on_eval(&mut self, step: usize, e: &EvalReport) {
        if !self.json {
            self.bar
                .println(format!("step {step}: eval {}", eval_line(e)));
        }
    }
    fn on_checkpoint(&mut self, _step: usize, dir: &Path) {
        if !self.json {
            self.bar.println(format!("saved {}", dir.display()));
        }
    }
}

fn eval_line(e: &EvalReport) -> String {
    let mut s = format!("loss {:.4}  perplexity {:.3}", e.loss, e.perplexity);
    for (k, v) in &e.metrics {
        if k.ends_with("accuracy") {
            s.push_str(&format!("  {k} {v:.4}"));
        }
    }
    s
}

fn bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(5));
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed}] {bar:24.cyan/blue} {pos}/{len} steps  ETA {eta:<4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

pub fn pretrain(a: PretrainArgs) -> Result<ExitCode> {
    let (mut file, name) = match (&a.config, &a.preset) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = path.display().to_string();
            (TrainFile::from_toml(&text, &name)?, name)
        }
        (None, preset) => {
            let p = preset.as_deref().unwrap_or("gpt-tiny");
            if !PRESETS.iter().any(|(n, _)| *n == p) {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                bail!("unknown preset {p:?} (presets: {})", names.join(", "));
            }
            (TrainFile::preset(p)?, format!("preset {p}"))
        }
    };
    if !a.data.is_empty() {
        file.data.sources = a
            .data
            .iter()
            .map(|d| SourceConfig {
                dir: d.clone(),
                weight: 1.0,
            })
            .collect();
    }
    if let Some(out) = &a.out {
        file.run.out_dir = Some(out.clone());
    }
    if let Some(steps) = a.steps {
        file.run.total_steps = steps;
    }
    if a.print_config {
        print!("{}", file.to_toml()?);
        return Ok(ExitCode::SUCCESS);
    }
    // Two runs into one directory would interleave their checkpoints.
    let _lock = match &file.run.out_dir {
        Some(out) => Some(refinery_corpus::lock::lock_output(out, None)?),
        None => None,
    };

    let data_vocab = match file.data.sources.first() {
        Some(s) => Some(
            TokenDataset::open(&s.dir)
                .with_context(|| format!("opening token shards {}", s.dir.display()))?
                .vocab_size() as usize,
        ),
        None => bail!("{name}: data.sources: no token shards (pass --data DIR)"),
    };
    let ids = tokenizer_ids(a.tokenizer.as_deref())?;
    let mut checked = file.check(&name, data_vocab, ids)?;
    if let Some(tok) = a.tokenizer.as_deref().and_then(tokenizer_file) {
        checked.run.extra_files.push(("tokenizer.json".into(), tok));
    }
    let device = parse_device(&a.device)?;
    let eval = checked.run.eval_every > 0;
    let mut observer = Bar {
        bar: bar(a.quiet || a.json),
        json: a.json,
    };
    let summary = match checked.task {
        TaskSpec::Gpt(task) => run_on_token_rows(
            task,
            checked.train,
            &checked.run,
            &checked.data,
            eval,
            &device,
            &mut observer,
        )?,
        TaskSpec::Bert { task, specials } => {
            let mut train = pair_batches(&checked.data, DataSplit::Train, specials)?;
            let mut valid = if eval {
                Some(pair_batches(
                    &checked.data,
                    DataSplit::Validation,
                    specials,
                )?)
            } else {
                None
            };
            run::<BertPretrainingTask>(
                task,
                checked.train,
                &checked.run,
                &mut *train,
                valid.as_deref_mut().map(|v| v as &mut dyn PairBatches),
                &device,
                &mut observer,
            )?
        }
        TaskSpec::Bart(task) => run_on_token_rows(
            task,
            checked.train,
            &checked.run,
            &checked.data,
            eval,
            &device,
            &mut observer,
        )?,
        TaskSpec::Plm(task) => run_on_token_rows(
            task,
            checked.train,
            &checked.run,
            &checked.data,
            eval,
            &device,
            &mut observer,
        )?,
    };
    observer.bar.finish_and_clear();
    report_run(&summary, &checked.run.out_dir, a.json)?;
    Ok(ExitCode::SUCCESS)
}

fn report_run(s: &RunSummary, out: &Path, json: bool) -> Result<()> {
    if json {
        let v = serde_json::json!({
            "out_dir": out,
            "start_step": s.start_step,
            "final_step": s.final_step,
            "resumed_from": s.resumed_from,
            "completed": s.completed,
            "loss": s.last_step.map(|x| x.loss),
            "eval": s.last_eval,
            "checkpoint": s.last_checkpoint,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let Some(from) = &s.resumed_from {
        println!("resumed from {}", from.display());
    }
    match s.last_step {
        Some(st) => println!("step {}: loss {:.4}", st.step, st.loss),
        None => println!("nothing to do: already at step {}", s.final_step),
    }
    if let Some(e) = &s.last_eval {
        println!("eval: {}", eval_line(e));
    }
    if let Some(c) = &s.last_checkpoint {
        println!("checkpoint: {}", c.display());
    }
    println!("metrics: {}", out.join("metrics.jsonl").display());
    Ok(())
}

/// `model_type` of a checkpoint's config.json.
fn model_type(dir: &Path) -> Result<String> {
    let path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(v.get("model_type")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string())
}

/// The denoising task to evaluate a BART checkpoint with: the training run's own (noise, ids)
/// from `dir/trainer_state.json` when there is one, else BART text infilling with the
/// tokenizer's `<mask>`.
fn bart_eval_task(
    dir: &Path,
    config: refinery_model::BartConfig,
    tokenizer: Option<&Path>,
) -> Result<DaeTask> {
    let state = dir.join("trainer_state.json");
    if state.is_file() {
        let text = std::fs::read_to_string(&state)
            .with_context(|| format!("reading {}", state.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", state.display()))?;
        if v.get("task_name").and_then(|n| n.as_str()) == Some(DaeTask::NAME) {
            let mut task: DaeTask = serde_json::from_value(v["task"].clone())
                .with_context(|| format!("{}: task", state.display()))?;
            task.model = config;
            return Ok(task);
        }
    }
    let tok = tokenizer
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("tokenizer.json"));
    let Some(mask) = tokenizer_ids(Some(&tok))?.mask else {
        bail!("{}: needs a <mask> token (pass --tokenizer)", tok.display());
    };
    Ok(DaeTask::bart(config, i64::from(mask)))
}

/// Batches to evaluate: `max_batches`, else a pass over `rows` rows (at most 1000 batches).
fn batches_for(max_batches: Option<u64>, rows: Option<u64>, batch_size: usize) -> usize {
    match (max_batches, rows) {
        (Some(m), _) => m.max(1) as usize,
        (None, Some(r)) => (r / batch_size as u64).clamp(1, 1000) as usize,
        (None, None) => 100,
    }
}

pub fn eval_lm(a: EvalLmArgs) -> Result<ExitCode> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = parse_device(&a.device)?;
    // A PLM checkpoint is a GPT-2 directory (the shared blocks) plus plm.json.
    let plm_file = a.model.join(PLM_FILE);
    let kind = if plm_file.is_file() {
        "refinery-plm".to_string()
    } else {
        model_type(&a.model)?
    };
    let mut data = DataConfig {
        sources: a
            .data
            .iter()
            .map(|d| SourceConfig {
                dir: d.clone(),
                weight: 1.0,
            })
            .collect(),
        batch_size: a.batch_size,
        shuffle: false,
        validation_fraction: a.validation_fraction,
        split_seed: a.split_seed,
        ..DataConfig::default()
    };
    let split = if a.validation_fraction > 0.0 {
        DataSplit::Validation
    } else {
        DataSplit::Train
    };
    let report = match kind.as_str() {
        "gpt2" => {
            let (config, model) = load_gpt(&a.model, &device)?;
            data.model_vocab_size = Some(config.vocab_size);
            data.seq_len = a.seq_len.unwrap_or(config.n_positions.min(1024));
            if data.seq_len > config.n_positions {
                bail!(
                    "--seq-len {} exceeds the model's n_positions {}",
                    data.seq_len,
                    config.n_positions
                );
            }
            let rows = match split {
                DataSplit::Validation => Some(validation_set(&data)?.num_rows()),
                DataSplit::Train => None,
            };
            let n = batches_for(a.max_batches, rows, a.batch_size);
            let mut source = lm_batches(&data, split)?;
            let task = ClmTask::new(config);
            let model = model.valid();
            evaluate(
                &task,
                &model,
                &mut *source as &mut dyn TokenBatches,
                n,
                0,
                &device,
            )
        }
        "bert" => {
            let (config, model) = load_bert(&a.model, &device)?;
            data.model_vocab_size = Some(config.vocab_size);
            data.seq_len = a.seq_len.unwrap_or(config.max_position_embeddings.min(512));
            let tok = a
                .tokenizer
                .clone()
                .unwrap_or_else(|| a.model.join("tokenizer.json"));
            let ids = tokenizer_ids(Some(&tok))?;
            let (Some(mask), Some(cls), Some(sep), Some(pad)) =
                (ids.mask, ids.cls, ids.sep, ids.pad)
            else {
                bail!(
                    "{}: needs [MASK] [CLS] [SEP] [PAD] tokens (pass --tokenizer)",
                    tok.display()
                );
            };
            let mut specials = vec![
                i64::from(cls),
                i64::from(sep),
                i64::from(pad),
                i64::from(mask),
            ];
            specials.sort_unstable();
            specials.dedup();
            let task = BertPretrainingTask::new(config, i64::from(mask), specials);
            let n = batches_for(a.max_batches, None, a.batch_size);
            let mut source = pair_batches(&data, split, NspSpecials { cls, sep, pad })?;
            let model = model.valid();
            evaluate(
                &task,
                &model,
                &mut *source as &mut dyn PairBatches,
                n,
                0,
                &device,
            )
        }
        "bart" => {
            let (config, model) = load_bart(&a.model, &device)?;
            data.model_vocab_size = Some(config.vocab_size);
            // Rows are wrapped as `<s> row </s>`.
            let max_rows = config.max_position_embeddings.saturating_sub(2);
            data.seq_len = a.seq_len.unwrap_or(max_rows.min(1024));
            if data.seq_len > max_rows {
                bail!(
                    "--seq-len {} + 2 (<s>, </s>) exceeds the model's max_position_embeddings {}",
                    data.seq_len,
                    config.max_position_embeddings
                );
            }
            let task = bart_eval_task(&a.model, config, a.tokenizer.as_deref())?;
            task.validate()?;
            let rows = match split {
                DataSplit::Validation => Some(validation_set(&data)?.num_rows()),
                DataSplit::Train => None,
            };
            let n = batches_for(a.max_batches, rows, a.batch_size);
            let mut source = lm_batches(&data, split)?;
            let model = model.valid();
            evaluate(
                &task,
                &model,
                &mut *source as &mut dyn TokenBatches,
                n,
                0,
                &device,
            )
        }
        "refinery-plm" => {
            let text = std::fs::read_to_string(&plm_file)
                .with_context(|| format!("reading {}", plm_file.display()))?;
            let file: PlmFile = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", plm_file.display()))?;
            let task = PlmTask::new(file.config);
            let model = task.load_model(&a.model, &device)?;
            data.model_vocab_size = Some(task.model.vocab_size);
            data.seq_len = a.seq_len.unwrap_or(task.model.n_positions.min(1024));
            if data.seq_len > task.model.n_positions {
                bail!(
                    "--seq-len {} exceeds the model's n_positions {}",
                    data.seq_len,
                    task.model.n_positions
                );
            }
            let rows = match split {
                DataSplit::Validation => Some(validation_set(&data)?.num_rows()),
                DataSplit::Train => None,
            };
            let n = batches_for(a.max_batches, rows, a.batch_size);
            let mut source = lm_batches(&data, split)?;
            let model = model.valid();
            evaluate(
                &task,
                &model,
                &mut *source as &mut dyn TokenBatches,
                n,
                0,
                &device,
            )
        }
        other => bail!(
            "{}: model_type {other:?} is not gpt2, bert or bart (or a PLM directory with plm.json)",
            a.model.join("config.json").display()
        ),
    };
    if a.json {
        let v = serde_json::json!({
            "model": a.model,
            "model_type": kind,
            "seq_len": data.seq_len,
            "batch_size": a.batch_size,
            "loss": report.loss,
            "perplexity": report.perplexity,
            "metrics": report.metrics,
            "batches": report.batches,
            "tokens": report.tokens,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} ({} batches, {} tokens)",
            a.model.display(),
            eval_line(&report),
            report.batches,
            report.tokens
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Trains a task whose batches are plain token rows (GPT CLM, BART DAE, PLM) on the training
/// split, evaluating on the validation split when `eval`.
fn run_on_token_rows<T: Task<Source = dyn TokenBatches>>(
    task: T,
    train_config: TrainConfig,
    opts: &RunOptions,
    data: &DataConfig,
    eval: bool,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunSummary> {
    let mut train = lm_batches(data, DataSplit::Train)?;
    let mut valid = if eval {
        Some(lm_batches(data, DataSplit::Validation)?)
    } else {
        None
    };
    Ok(run::<T>(
        task,
        train_config,
        opts,
        &mut *train,
        valid.as_deref_mut().map(|v| v as &mut dyn TokenBatches),
        device,
        observer,
    )?)
}

//! `refinery pretrain` (train a GPT, BERT or BART from token shards) and `refinery eval-lm`
//! (loss and perplexity of a checkpoint on token shards).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use refinery_compress::gpt::{evaluate_lm, GptEngine};
use refinery_compress::kernels::KernelPath;
use refinery_compress::quant::read_quant_config;
use refinery_model::device::parse_device;
use refinery_tokenize::TokenDataset;
use refinery_train::config::{train, CheckContext, TokenizerIds, TrainFile, PRESETS};
use refinery_train::data::{validation_set, DataConfig, DataSplit, SourceConfig};
use refinery_train::eval::EvalReport;
use refinery_train::run::{Observer, RunSummary, StepRecord};
use refinery_train::tasks::{evaluate_checkpoint, open_with};
use refinery_train::TaskSpec;

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
    /// Checkpoint directory (config.json + model.safetensors), GPT-2, BERT or BART; an int8
    /// GPT-2 (`refinery quantize`) runs on the CPU engine with the same report.
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

/// Progress bar: steps against total, with loss, lr, tokens/s and ETA.
pub(crate) struct Bar {
    pub(crate) bar: ProgressBar,
    pub(crate) json: bool,
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
        let epoch = r
            .epoch
            .map(|e| format!("epoch {e:.2}  "))
            .unwrap_or_default();
        self.bar.set_message(format!(
            "{epoch}loss {:.4}  lr {:.2e}  {:.0} tok/s",
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

pub(crate) fn eval_line(e: &EvalReport) -> String {
    let mut s = format!("loss {:.4}", e.loss);
    if e.perplexity.is_finite() {
        s.push_str(&format!("  perplexity {:.3}", e.perplexity));
    }
    for (k, v) in &e.metrics {
        if k.ends_with("accuracy") || k.ends_with("macro_f1") || k.ends_with("mcc") {
            s.push_str(&format!("  {k} {v:.4}"));
        }
    }
    s
}

pub(crate) fn bar(quiet: bool) -> ProgressBar {
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

    if file.task.is_labelled() {
        bail!(
            "{name}: task kind {:?} trains on labelled files: use `refinery finetune`",
            file.task.kind()
        );
    }
    let data_vocab = match file.data.sources.first() {
        Some(s) => Some(
            TokenDataset::open(&s.dir)
                .with_context(|| format!("opening token shards {}", s.dir.display()))?
                .vocab_size() as usize,
        ),
        None => bail!("{name}: data.sources: no token shards (pass --data DIR)"),
    };
    let ctx = CheckContext {
        data_vocab,
        tokenizer_ids: match &a.tokenizer {
            Some(t) => {
                TokenizerIds::from_file(t).with_context(|| format!("loading {}", t.display()))?
            }
            None => TokenizerIds::default(),
        },
        tokenizer: a.tokenizer.clone(),
    };
    let checked = file.check(&name, &ctx)?;
    let out_dir = checked.run.out_dir.clone();
    let device = parse_device(&a.device)?;
    let mut observer = Bar {
        bar: bar(a.quiet || a.json),
        json: a.json,
    };
    let summary = train(checked, &device, &mut observer)?;
    observer.bar.finish_and_clear();
    report_run(&summary, &out_dir, a.json)?;
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

pub fn eval_lm(a: EvalLmArgs) -> Result<ExitCode> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = parse_device(&a.device)?;
    let opened = open_with(&a.model, a.tokenizer.as_deref())?;
    if opened.spec.is_labelled() {
        bail!(
            "{}: a {} model: use `refinery evaluate --model DIR --data FILE`",
            a.model.display(),
            opened.spec.kind()
        );
    }
    let context = opened.spec.context_len();
    let data = DataConfig {
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
        seq_len: a.seq_len.unwrap_or(context.min(1024)),
        ..DataConfig::default()
    };
    if data.seq_len > context {
        bail!(
            "--seq-len {} exceeds the model's context {context}",
            data.seq_len
        );
    }
    let split = if a.validation_fraction > 0.0 {
        DataSplit::Validation
    } else {
        DataSplit::Train
    };
    // One pass over the held-out rows (at most 1000 batches), or 100 batches of a stream.
    let batches = match (a.max_batches, split) {
        (Some(m), _) => m.max(1),
        (None, DataSplit::Validation) => {
            let rows = validation_set(&data)?.num_rows();
            (rows / a.batch_size as u64).clamp(1, 1000)
        }
        (None, DataSplit::Train) => 100,
    };
    // An int8 checkpoint (`refinery quantize`) runs on the CPU engine (whatever --device), with
    // the same batches, loss and metrics.
    let report = if read_quant_config(&a.model)?.is_some() {
        let refinery_train::AnyTaskSpec::GptClm(spec) = &opened.spec else {
            bail!(
                "{}: an int8 {} model; eval-lm runs int8 GPT-2 checkpoints only",
                a.model.display(),
                opened.spec.kind()
            );
        };
        let engine = GptEngine::load(&a.model, KernelPath::from_env()?)
            .with_context(|| format!("loading {}", a.model.display()))?;
        evaluate_lm(
            &engine,
            &spec.build(Some(&a.model))?,
            &data,
            split,
            Some(batches),
        )?
    } else {
        evaluate_checkpoint(&a.model, &opened.spec, &data, split, Some(batches), &device)?
    };
    if a.json {
        let v = serde_json::json!({
            "model": a.model,
            "task": opened.spec.kind(),
            // The checkpoint's architecture, as config.json names it (PLM: plm.json's).
            "model_type": match &opened.spec {
                refinery_train::AnyTaskSpec::GptClm(_) => "gpt2",
                refinery_train::AnyTaskSpec::BertMlmNsp(_) => "bert",
                refinery_train::AnyTaskSpec::BartDae(_) => "bart",
                refinery_train::AnyTaskSpec::Plm(_) => "refinery-plm",
                _ => "",
            },
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

//! `refinery tokenizer train|encode|decode`, `refinery tokenize` and
//! `refinery tokens inspect`: the CLI side of the refinery-tokenize crate.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_tokenize::job::{self, TokenStats, TokenizeJob, TokenizeProgress};
use refinery_tokenize::train::{self, CjkMode, ModelKind, TextLimits, TrainConfig};
use refinery_tokenize::{TokenDataset, Tokenizer};

use crate::run::{FormatArg, TextUnitArg};

/// Reader options shared by `tokenizer train` and `tokenize`.
#[derive(Args, Clone)]
pub struct ReaderArgs {
    /// Input format (default: detected from the content).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// JSONL field (Parquet column) holding the text.
    #[arg(long)]
    pub text_field: Option<String>,
    /// Plain text: one document per file, line or paragraph.
    #[arg(long, value_enum)]
    pub text_unit: Option<TextUnitArg>,
}

impl ReaderArgs {
    fn options(&self) -> ReaderOptions {
        let mut o = ReaderOptions::default();
        if let Some(f) = self.format {
            o.format = f.into();
        }
        if let Some(f) = &self.text_field {
            o.text_field = f.clone();
        }
        if let Some(u) = self.text_unit {
            o.text_unit = u.into();
        }
        o
    }
}

#[derive(Args)]
pub struct TokenizerArgs {
    #[command(subcommand)]
    command: TokenizerCommand,
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a BPE, WordPiece or Unigram tokenizer on documents.
    Train(TrainArgs),
    /// Encode stdin lines to space-separated ids.
    Encode(EncodeArgs),
    /// Decode lines of space-separated ids to text.
    Decode(EncodeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    Bpe,
    Wordpiece,
    Unigram,
}

#[derive(Clone, Copy, ValueEnum)]
enum CjkArg {
    Split,
    Keep,
}

#[derive(Args)]
#[command(after_help = "Examples:
  refinery tokenizer train --model bpe --vocab-size 32000 refined/data/ -o tok.json
  refinery tokenizer train --model wordpiece --vocab-size 30000 --lowercase corpus.jsonl.gz -o wp.json
  refinery tokenizer train --model unigram --vocab-size 8000 --nfkc --sample-bytes 100000000 poetry.jsonl.gz -o uni.json

Memory is bounded: documents are streamed and the trainer keeps word counts
only; --sample-bytes / --max-docs cap the input (each of N files gives its
first sample-bytes/N bytes of text).")]
pub struct TrainArgs {
    /// Input files or directories (refinery shards, JSONL, text, WARC…).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the tokenizer.json.
    #[arg(long, short)]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "bpe")]
    model: ModelArg,
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = 32000)]
    vocab_size: usize,
    /// Special tokens (repeat the flag); replaces the model's defaults
    /// (bpe: <|endoftext|>; wordpiece: [PAD] [UNK] [CLS] [SEP] [MASK]; unigram: <unk> <s> </s>).
    #[arg(long = "special")]
    special: Vec<String>,
    /// Pairs seen fewer times are not merged.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    #[arg(long)]
    lowercase: bool,
    #[arg(long)]
    nfkc: bool,
    #[arg(long)]
    strip_accents: bool,
    /// CJK ideographs: one pre-token each (split, BERT-style; wordpiece
    /// default) or runs kept together (keep; bpe/unigram default).
    #[arg(long, value_enum)]
    cjk: Option<CjkArg>,
    /// At most this many bytes of text in all.
    #[arg(long)]
    sample_bytes: Option<u64>,
    /// At most this many documents.
    #[arg(long)]
    max_docs: Option<u64>,
    #[command(flatten)]
    reader: ReaderArgs,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
#[command(after_help = "Examples:
  echo 'Hello world' | refinery tokenizer encode --tokenizer ../shared/data/models/tiktoken/cl100k_base.tiktoken
  echo '15496 995' | refinery tokenizer decode --tokenizer gpt2-dir/
TOKENIZER is a tokenizer.json, a .tiktoken rank file, or a directory with
tokenizer.json or vocab.json + merges.txt. Each input line is one text (its
trailing newline removed).")]
pub struct EncodeArgs {
    #[arg(long, short)]
    tokenizer: PathBuf,
    /// encode: add the tokenizer's special tokens ([CLS] … [SEP] for BERT;
    /// special-token text becomes special ids for tiktoken).
    #[arg(long)]
    add_special: bool,
}

#[derive(Args)]
#[command(after_help = "Examples:
  refinery tokenize --tokenizer tok.json refined/data/ --output tokens/
  refinery tokenize --tokenizer cl100k_base.tiktoken corpus/ --output tokens/ --tasks 8 --workers 2
  refinery tokens inspect tokens/

Output: DIR/{task:05}_{k:05}.tok shards (format in docs/tokens.md), a copy of
the tokenizer, and DIR/stats.json with tokens per byte per source.")]
pub struct TokenizeArgs {
    /// Input files or directories.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long, short)]
    tokenizer: PathBuf,
    #[arg(long, short)]
    output: PathBuf,
    /// Tasks: file groups, each with its own shard series. Fixes the output.
    #[arg(long, default_value_t = 1)]
    tasks: usize,
    /// Encoding threads (default: all cores). Never changes the output.
    #[arg(long)]
    workers: Option<usize>,
    /// Token appended after every document (default: <|endoftext|>, </s>,
    /// <eos> or [SEP], whichever the vocabulary has); `none` for no separator.
    #[arg(long)]
    eos: Option<String>,
    /// Start a new shard after this many tokens.
    #[arg(long, default_value_t = 1 << 30)]
    shard_tokens: u64,
    /// Replace shards already in the output directory.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    reader: ReaderArgs,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Check the shards of a directory, print counts and decode a sample.
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct InspectArgs {
    /// A `refinery tokenize` output directory (or one .tok shard).
    dir: PathBuf,
    /// Documents to decode.
    #[arg(long, default_value_t = 2)]
    docs: u64,
    /// Characters shown per decoded document.
    #[arg(long, default_value_t = 200)]
    chars: usize,
    /// Tokenizer for decoding (default: the copy in DIR).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
}

pub fn tokenizer(args: TokenizerArgs) -> Result<ExitCode> {
    match args.command {
        TokenizerCommand::Train(a) => train_cmd(a),
        TokenizerCommand::Encode(a) => encode_cmd(a),
        TokenizerCommand::Decode(a) => decode_cmd(a),
    }
}

pub fn tokens(args: TokensArgs) -> Result<ExitCode> {
    match args.command {
        TokensCommand::Inspect(a) => inspect(a),
    }
}

/// A bar over bytes read, with a message from `msg`.
fn with_bar<T>(
    quiet: bool,
    bytes_read: &AtomicU64,
    total: u64,
    msg: impl Fn(f64) -> String + Sync,
    work: impl FnOnce() -> T,
) -> T {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(5));
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed}] {bar:24.cyan/blue} {percent:>3}% {binary_bytes_per_sec:>11} ETA {eta:<4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let tick = || {
        bar.set_position(bytes_read.load(Ordering::Relaxed).min(total));
        bar.set_message(msg(start.elapsed().as_secs_f64().max(1e-3)));
    };
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                tick();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let r = work();
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    r
}

fn train_cmd(a: TrainArgs) -> Result<ExitCode> {
    let model = match a.model {
        ModelArg::Bpe => ModelKind::Bpe,
        ModelArg::Wordpiece => ModelKind::WordPiece,
        ModelArg::Unigram => ModelKind::Unigram,
    };
    let mut cfg = TrainConfig::new(model, a.vocab_size);
    if !a.special.is_empty() {
        cfg.special_tokens = a.special.clone();
    }
    cfg.min_frequency = a.min_frequency;
    cfg.lowercase = a.lowercase;
    cfg.nfkc = a.nfkc;
    cfg.strip_accents = a.strip_accents;
    if let Some(c) = a.cjk {
        cfg.cjk = match c {
            CjkArg::Split => CjkMode::Split,
            CjkArg::Keep => CjkMode::Keep,
        };
    }
    let inputs = discover(&a.inputs)?;
    let total: u64 = inputs.iter().map(|f| f.size).sum();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let docs = Arc::new(AtomicU64::new(0));
    let limits = TextLimits {
        max_docs: a.max_docs,
        sample_bytes: a.sample_bytes,
    };
    let counted = docs.clone();
    let texts =
        train::texts(inputs, a.reader.options(), limits, bytes_read.clone()).inspect(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
    let start = Instant::now();
    let tok = with_bar(
        a.quiet,
        &bytes_read,
        total,
        |secs| {
            let n = docs.load(Ordering::Relaxed);
            format!("{n} docs {:.0}/s (then merges)", n as f64 / secs)
        },
        || train::train(&cfg, texts),
    )?;
    let hf = tok
        .as_hf()
        .context("trained tokenizer is not an HF tokenizer")?;
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    hf.save(&a.output, true)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.output.display()))?;
    eprintln!(
        "trained {} tokenizer: vocab {} from {} documents in {:.1}s -> {}",
        tok.kind(),
        tok.vocab_size(),
        docs.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn load(path: &std::path::Path) -> Result<Tokenizer> {
    Ok(Tokenizer::load(path)?)
}

fn encode_cmd(a: EncodeArgs) -> Result<ExitCode> {
    let tok = load(&a.tokenizer)?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut lines = stdin.lines();
    loop {
        // Batches of lines are encoded in parallel, written in order.
        let mut batch = Vec::with_capacity(1024);
        for l in lines.by_ref().take(1024) {
            let l = l.context("reading stdin")?;
            batch.push(l.strip_suffix('\r').map(str::to_owned).unwrap_or(l));
        }
        if batch.is_empty() {
            break;
        }
        let ids: Vec<Vec<u32>> = if a.add_special {
            use rayon::prelude::*;
            batch
                .par_iter()
                .map(|t| tok.encode_with_special(t))
                .collect::<refinery_tokenize::Result<_>>()?
        } else {
            tok.encode_batch(&batch)?
        };
        for v in ids {
            let mut s = String::with_capacity(v.len() * 6);
            for (i, id) in v.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&id.to_string());
            }
            s.push('\n');
            out.write_all(s.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn decode_cmd(a: EncodeArgs) -> Result<ExitCode> {
    let tok = load(&a.tokenizer)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        let ids = line
            .split_ascii_whitespace()
            .map(|t| t.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("stdin line {}: expected space-separated ids", n + 1))?;
        let text = tok
            .decode(&ids)
            .with_context(|| format!("stdin line {}", n + 1))?;
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn tokenize_cmd_inner(a: TokenizeArgs) -> Result<TokenStats> {
    let _lock = refinery_corpus::lock::lock_output(&a.output, None)?;
    let tok = load(&a.tokenizer)?;
    let separator = match a.eos.as_deref() {
        Some("none") => None,
        Some(t) => Some(tok.token_to_id(t).with_context(|| {
            format!("--eos {t}: not in the vocabulary of {}", a.tokenizer.display())
        })?),
        None => match tok.default_eos() {
            Some((_, id)) => Some(id),
            None => bail!(
                "{} has none of <|endoftext|>, </s>, <eos>, [SEP]: choose a separator with --eos TOKEN or --eos none",
                a.tokenizer.display()
            ),
        },
    };
    let workers = a
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let job = TokenizeJob {
        inputs: discover(&a.inputs)?,
        reader: a.reader.options(),
        output: a.output.clone(),
        tasks: a.tasks,
        workers,
        separator,
        max_shard_tokens: a.shard_tokens.max(1),
        overwrite: a.overwrite,
    };
    let progress = TokenizeProgress::default();
    let total = job.inputs.iter().map(|f| f.size).sum();
    let stats = with_bar(
        a.quiet,
        &progress.bytes_read,
        total,
        |secs| {
            let t = progress.tokens.load(Ordering::Relaxed);
            format!(
                "{} docs, {t} tokens {:.0}/s",
                progress.docs.load(Ordering::Relaxed),
                t as f64 / secs
            )
        },
        || job::run(&job, &tok, &progress),
    )?;
    Ok(stats)
}

pub fn tokenize(a: TokenizeArgs) -> Result<ExitCode> {
    let out = a.output.clone();
    let start = Instant::now();
    let s = tokenize_cmd_inner(a)?;
    println!(
        "{} tokens ({:?}), {} documents, {} shards in {:.1}s -> {}",
        s.tokens,
        s.dtype,
        s.docs,
        s.shards.len(),
        start.elapsed().as_secs_f64(),
        out.display()
    );
    print_sources(&s);
    Ok(ExitCode::SUCCESS)
}

fn print_sources(s: &TokenStats) {
    println!(
        "{:>12} {:>14} {:>14} {:>8}  source",
        "docs", "text bytes", "tokens", "tok/byte"
    );
    for (src, v) in s.sources.iter().chain([(&"total".to_string(), &s.total)]) {
        println!(
            "{:>12} {:>14} {:>14} {:>8.4}  {src}",
            v.docs, v.text_bytes, v.tokens, v.tokens_per_byte
        );
    }
}

fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let ds = TokenDataset::open(&a.dir)?;
    for s in ds.shards() {
        s.verify_tokens()?;
        let h = s.header();
        println!(
            "{}: {} tokens ({:?}), {} documents, vocab {}, separator {:?}",
            s.path().display(),
            h.tokens,
            h.dtype,
            h.docs,
            h.vocab_size,
            h.separator
        );
    }
    println!(
        "total: {} tokens, {} documents in {} shards",
        ds.num_tokens(),
        ds.num_docs(),
        ds.shards().len()
    );
    let dir = if a.dir.is_file() {
        a.dir.parent().map(PathBuf::from).unwrap_or_default()
    } else {
        a.dir.clone()
    };
    if let Ok(stats) = TokenStats::read(&dir) {
        print_sources(&stats);
    }
    let tok_path = match a.tokenizer {
        Some(p) => Some(p),
        None => TokenStats::read(&dir)
            .ok()
            .map(|s| dir.join(s.tokenizer_file)),
    };
    let Some(tok_path) = tok_path else {
        println!("(no stats.json with a tokenizer copy: pass --tokenizer to decode a sample)");
        return Ok(ExitCode::SUCCESS);
    };
    let tok = load(&tok_path)?;
    println!("\nsample documents (decoded with {}):", tok_path.display());
    let mut shown = 0;
    'outer: for s in ds.shards() {
        for d in 0..s.num_docs() {
            if shown >= a.docs {
                break 'outer;
            }
            let Some(r) = s.doc_range(d) else { break };
            let ids = s.tokens(r.clone());
            let text = tok.decode(&ids)?;
            let snippet: String = text.chars().take(a.chars).collect();
            println!(
                "  [{} doc {d}, {} tokens] {:?}{}",
                s.path()
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                ids.len(),
                snippet,
                if text.chars().count() > a.chars {
                    "…"
                } else {
                    ""
                }
            );
            shown += 1;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `refinery demo`'s last step: a small byte-level BPE trained on the refined
/// shards in `data`, then token shards in `out/tokens`.
pub fn demo_tokens(data: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let inputs = discover(&[data.to_path_buf()])?;
    let bytes = Arc::new(AtomicU64::new(0));
    let texts = train::texts(
        inputs.clone(),
        ReaderOptions::default(),
        TextLimits::default(),
        bytes,
    );
    let mut cfg = TrainConfig::new(ModelKind::Bpe, 2000);
    cfg.min_frequency = 2;
    let start = Instant::now();
    let tok = train::train(&cfg, texts)?;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let tok_path = out.join("tokenizer.json");
    let tok_path = tok.save_to_dir(out).map(|_| tok_path)?;
    let tok = Tokenizer::load(&tok_path)?;
    let tokens = out.join("tokens");
    let job = TokenizeJob {
        inputs,
        reader: ReaderOptions::default(),
        output: tokens.clone(),
        tasks: 1,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        separator: tok.default_eos().map(|e| e.1),
        max_shard_tokens: 1 << 30,
        overwrite: true,
    };
    let s = job::run(&job, &tok, &TokenizeProgress::default())?;
    println!(
        "\ntokenizer: byte-level BPE, vocab {} -> {}\ntoken shards: {} tokens, {} documents, {:.3} tokens/byte -> {} ({:.1}s)",
        tok.vocab_size(),
        tok_path.display(),
        s.tokens,
        s.docs,
        s.total.tokens_per_byte,
        tokens.display(),
        start.elapsed().as_secs_f64()
    );
    println!("next: refinery tokens inspect {}", tokens.display());
    Ok(())
}

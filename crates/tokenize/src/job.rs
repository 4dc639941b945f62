//! `refinery tokenize`: documents from input files → token shards.
//!
//! Task `i` of `N` reads input files `i, i+N, …` (the executor's rule) and
//! writes `DIR/{i:05}_{k:05}.tok`, starting shard `k+1` once shard `k` holds
//! `max_shard_tokens`. Within a task, documents are encoded in batches in
//! parallel on a pool of `workers` threads and written in input order, so
//! the output depends only on the inputs, the tokenizer and `tasks`: never
//! on `workers`. `DIR/stats.json` reports tokens per byte per source, and
//! `DIR/` gets a copy of the tokenizer so the shards can be decoded later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use refinery_corpus::input::InputFile;
use refinery_corpus::readers::{self, Item, ReaderOptions};
use serde::{Deserialize, Serialize};

use crate::shard::{Dtype, ShardWriter, EXTENSION};
use crate::{Result, TokenizeError, Tokenizer};

/// Name of the stats file in the output directory.
pub const STATS_FILE: &str = "stats.json";

/// Everything a tokenize run needs.
#[derive(Clone, Debug)]
pub struct TokenizeJob {
    pub inputs: Vec<InputFile>,
    pub reader: ReaderOptions,
    pub output: PathBuf,
    /// Tasks (file groups, one shard series each), ≥ 1.
    pub tasks: usize,
    /// Encoding threads, ≥ 1. Does not change the output.
    pub workers: usize,
    /// Appended after every document.
    pub separator: Option<u32>,
    /// Start a new shard after this many tokens.
    pub max_shard_tokens: u64,
    /// Replace an existing run in `output`.
    pub overwrite: bool,
}

/// Live counters for a progress bar.
#[derive(Debug, Default)]
pub struct TokenizeProgress {
    pub bytes_read: Arc<AtomicU64>,
    pub total_bytes: AtomicU64,
    pub docs: AtomicU64,
    pub tokens: AtomicU64,
}

/// Per-source counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub docs: u64,
    /// UTF-8 bytes of document text.
    pub text_bytes: u64,
    /// Tokens of document text (separators not counted).
    pub tokens: u64,
    pub tokens_per_byte: f64,
    /// Records the reader skipped or could not read.
    pub dropped: u64,
    pub failed: u64,
}

impl SourceStats {
    fn add(&mut self, o: &SourceStats) {
        self.docs += o.docs;
        self.text_bytes += o.text_bytes;
        self.tokens += o.tokens;
        self.dropped += o.dropped;
        self.failed += o.failed;
        self.finish();
    }

    fn finish(&mut self) {
        self.tokens_per_byte = if self.text_bytes == 0 {
            0.0
        } else {
            (self.tokens as f64 / self.text_bytes as f64 * 1e6).round() / 1e6
        };
    }
}

/// One written shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub file: String,
    pub tokens: u64,
    pub docs: u64,
}

/// `stats.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenStats {
    pub tokenizer: String,
    pub tokenizer_kind: String,
    /// The tokenizer copy in the output directory, relative to it.
    pub tokenizer_file: String,
    pub vocab_size: u64,
    pub dtype: Dtype,
    pub separator: Option<u32>,
    /// Tokens in all shards, separators included.
    pub tokens: u64,
    pub docs: u64,
    pub shards: Vec<ShardInfo>,
    /// Per input file (`Document::source`).
    pub sources: BTreeMap<String, SourceStats>,
    pub total: SourceStats,
}

impl TokenStats {
    /// Reads `DIR/stats.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let p = dir.join(STATS_FILE);
        let bytes = std::fs::read(&p).map_err(|e| TokenizeError::io(&p, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TokenizeError::Invalid(format!("{}: {e}", p.display())))
    }
}

struct TaskOut {
    shards: Vec<ShardInfo>,
    sources: BTreeMap<String, SourceStats>,
}

/// Runs the job; returns (and writes) the merged stats.
pub fn run(job: &TokenizeJob, tok: &Tokenizer, progress: &TokenizeProgress) -> Result<TokenStats> {
    if job.tasks == 0 || job.workers == 0 {
        return Err(TokenizeError::Invalid(
            "--tasks and --workers must be at least 1".into(),
        ));
    }
    refinery_corpus::executor::check_tasks(job.tasks, job.inputs.len())
        .map_err(|m| TokenizeError::Invalid(format!("--tasks: {m}")))?;
    prepare_output(&job.output, job.overwrite)?;
    let vocab = tok.vocab_size();
    progress
        .total_bytes
        .store(job.inputs.iter().map(|f| f.size).sum(), Ordering::Relaxed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.workers)
        .build()
        .map_err(|e| TokenizeError::Invalid(format!("thread pool: {e}")))?;
    let outs: Vec<TaskOut> = pool.install(|| {
        (0..job.tasks)
            .into_par_iter()
            .map(|t| run_task(job, tok, t, progress))
            .collect::<Result<Vec<_>>>()
    })?;
    let tokenizer_file = tok.save_to_dir(&job.output)?;
    let mut stats = TokenStats {
        tokenizer: tok.path().display().to_string(),
        tokenizer_kind: tok.kind(),
        tokenizer_file: tokenizer_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        vocab_size: vocab as u64,
        dtype: Dtype::for_vocab(vocab),
        separator: job.separator,
        tokens: 0,
        docs: 0,
        shards: Vec::new(),
        sources: BTreeMap::new(),
        total: SourceStats::default(),
    };
    for o in outs {
        for s in o.shards {
            stats.tokens += s.tokens;
            stats.docs += s.docs;
            stats.shards.push(s);
        }
        for (k, v) in o.sources {
            stats.total.add(&v);
            stats.sources.entry(k).or_default().add(&v);
        }
    }
    let p = job.output.join(STATS_FILE);
    let json = serde_json::to_vec_pretty(&stats)
        .map_err(|e| TokenizeError::Invalid(format!("{}: {e}", p.display())))?;
    std::fs::write(&p, json).map_err(|e| TokenizeError::io(&p, e))?;
    Ok(stats)
}

fn prepare_output(dir: &Path, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TokenizeError::io(dir, e))?;
    let existing: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TokenizeError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.ends_with(&format!(".{EXTENSION}"))
                || n.ends_with(&format!(".{EXTENSION}.tmp"))
                || n == STATS_FILE
        })
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(TokenizeError::Invalid(format!(
            "{}: already holds token shards or {STATS_FILE}\n  ---> HINT: pass --overwrite to replace them, or choose another --output",
            dir.display()
        )));
    }
    for p in existing {
        std::fs::remove_file(&p).map_err(|e| TokenizeError::io(&p, e))?;
    }
    Ok(())
}

/// Documents are encoded in batches of about this many text bytes.
const BATCH_BYTES: usize = 4 << 20;

fn run_task(
    job: &TokenizeJob,
    tok: &Tokenizer,
    task: usize,
    progress: &TokenizeProgress,
) -> Result<TaskOut> {
    let vocab = tok.vocab_size();
    let mut out = TaskOut {
        shards: Vec::new(),
        sources: BTreeMap::new(),
    };
    let mut writer: Option<ShardWriter> = None;
    let mut batch: Vec<(String, String)> = Vec::new();
    let mut batch_bytes = 0;

    let flush = |batch: &mut Vec<(String, String)>,
                 writer: &mut Option<ShardWriter>,
                 out: &mut TaskOut|
     -> Result<()> {
        let ids: Vec<Vec<u32>> = batch
            .par_iter()
            .map(|(_, text)| tok.encode(text))
            .collect::<Result<_>>()?;
        for ((source, text), ids) in batch.drain(..).zip(ids) {
            if writer.is_none() {
                let name = format!("{task:05}_{:05}.{EXTENSION}", out.shards.len());
                *writer = Some(ShardWriter::create(
                    &job.output.join(name),
                    vocab,
                    job.separator,
                )?);
            }
            if let Some(w) = writer.as_mut() {
                w.push_doc(&ids)?;
            }
            let s = out.sources.entry(source).or_default();
            s.docs += 1;
            s.text_bytes += text.len() as u64;
            s.tokens += ids.len() as u64;
            progress.docs.fetch_add(1, Ordering::Relaxed);
            progress
                .tokens
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            if writer
                .as_ref()
                .is_some_and(|w| w.tokens() >= job.max_shard_tokens)
            {
                finish_shard(writer, out)?;
            }
        }
        Ok(())
    };

    for file in job.inputs.iter().skip(task).step_by(job.tasks) {
        let stream = readers::open(
            &file.path,
            &file.source,
            &job.reader,
            progress.bytes_read.clone(),
        );
        for item in stream {
            match item {
                Item::Doc(d) => {
                    batch_bytes += d.text.len();
                    batch.push((d.source, d.text));
                    if batch_bytes >= BATCH_BYTES {
                        flush(&mut batch, &mut writer, &mut out)?;
                        batch_bytes = 0;
                    }
                }
                Item::Dropped { .. } => {
                    out.sources.entry(file.source.clone()).or_default().dropped += 1
                }
                Item::Failed(_) => out.sources.entry(file.source.clone()).or_default().failed += 1,
                Item::Warning(_) => {}
            }
        }
    }
    flush(&mut batch, &mut writer, &mut out)?;
    finish_shard(&mut writer, &mut out)?;
    for s in out.sources.values_mut() {
        s.finish();
    }
    Ok(out)
}

fn finish_shard(writer: &mut Option<ShardWriter>, out: &mut TaskOut) -> Result<()> {
    if let Some(w) = writer.take() {
        let path = w.path().to_path_buf();
        let h = w.finish()?;
        out.shards.push(ShardInfo {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            tokens: h.tokens,
            docs: h.docs,
        });
    }
    Ok(())
}

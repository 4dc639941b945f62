//! Corpus-wide dedup steps in a pipeline file (`[[dedup]]`).
//!
//! The per-document `[[stages]]` run first, into `OUT/`. Each `[[dedup]]`
//! entry then runs, in order, as its own resumable multi-step job: it reads
//! the previous step's `data/` and writes `OUT/dedup/NN-<type>/`. The
//! refined corpus is the last step's `data/`. Every job keeps its own
//! completion markers and parameter fingerprint, so a rerun of the same
//! command resumes wherever it stopped.
//!
//! ```toml
//! [[dedup]]
//! type = "minhash"      # near-duplicates (MinHash-LSH)
//! preset = "fineweb"    # fineweb | refinedweb | refinedweb-literal
//!
//! [[dedup]]
//! type = "substring"    # repeated spans (suffix arrays, Lee et al. 2021)
//! min_len = 50
//! unit = "tokens"
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::stats::RunStats;
use refinery_corpus::writers::WriterOptions;
use refinery_dedup::corpus::{
    self as cdedup, CorpusDedupJob, Keep as UrlKeep, Method, Unit as LineUnit,
};
use refinery_dedup::minhash::{self, MinhashConfig, MinhashJob};
use refinery_dedup::substring::{
    self, Keep as SubstringKeep, SubstringConfig, SubstringJob, Unit as SubstringUnit,
};
use serde::{Deserialize, Serialize};

use crate::Pipeline;

/// One `[[dedup]]` entry, selected by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DedupStepConfig {
    /// MinHash-LSH near-duplicate removal (`refinery dedup minhash`).
    Minhash {
        /// fineweb (5-grams, 14x8), refinedweb (450x20) or refinedweb-literal (20x450).
        #[serde(default = "default_minhash_preset")]
        preset: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ngram: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bands: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
        /// Memory budget of the clusters step in MiB (default 1024); above
        /// it, connected components run on sorted files on disk.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_memory_mb: Option<u64>,
        /// Dedup within groups of this metadata field (e.g. `"dump"`: per snapshot); absent:
        /// global.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_by: Option<String>,
    },
    /// Whole documents with the same normalized text (`refinery dedup exact`).
    Exact {
        /// Hash the raw text instead of the normalized text.
        #[serde(default)]
        raw: bool,
    },
    /// Documents with the same normalized URL (`refinery dedup urls`).
    Urls {
        #[serde(default)]
        keep: UrlKeep,
    },
    /// Lines or paragraphs seen more than `max_occurrences` times (`refinery dedup lines`).
    Lines {
        #[serde(default)]
        unit: LineUnit,
        #[serde(default = "one")]
        max_occurrences: u64,
    },
    /// Repeated spans of at least `min_len` units (`refinery dedup substring`).
    Substring {
        /// Shortest repeated span removed (RefinedWeb: 50 tokens).
        #[serde(default = "fifty")]
        min_len: usize,
        #[serde(default)]
        unit: SubstringUnit,
        #[serde(default)]
        keep: SubstringKeep,
        /// Documents left shorter than this (bytes) are dropped.
        #[serde(default)]
        min_doc_len: usize,
    },
}

fn fifty() -> usize {
    50
}

fn default_minhash_preset() -> String {
    "fineweb".into()
}

fn one() -> u64 {
    1
}

impl DedupStepConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            DedupStepConfig::Minhash { .. } => "minhash",
            DedupStepConfig::Exact { .. } => "exact",
            DedupStepConfig::Urls { .. } => "urls",
            DedupStepConfig::Lines { .. } => "lines",
            DedupStepConfig::Substring { .. } => "substring",
        }
    }

    /// Checks the parameters; the error is (field, message).
    pub fn check(&self) -> Result<(), (String, String)> {
        match self {
            DedupStepConfig::Minhash { .. } => self.minhash_config().map(|_| ()),
            DedupStepConfig::Lines {
                max_occurrences: 0, ..
            } => Err(("max_occurrences".into(), "must be at least 1".into())),
            DedupStepConfig::Substring { .. } => self
                .substring_config()
                .validate()
                .map_err(|e| ("min_len".into(), e.to_string())),
            _ => Ok(()),
        }
    }

    fn substring_config(&self) -> SubstringConfig {
        match self {
            DedupStepConfig::Substring {
                min_len,
                unit,
                keep,
                min_doc_len,
            } => SubstringConfig {
                min_len: *min_len,
                unit: *unit,
                keep: *keep,
                min_doc_len: *min_doc_len,
            },
            _ => SubstringConfig::default(),
        }
    }

    fn minhash_config(&self) -> Result<MinhashConfig, (String, String)> {
        let DedupStepConfig::Minhash {
            preset,
            ngram,
            bands,
            rows,
            seed,
            ..
        } = self
        else {
            return Err(("type".into(), "not a minhash step".into()));
        };
        let mut c = MinhashConfig::preset(preset).ok_or_else(|| {
            (
                "preset".to_string(),
                format!(
                    "unknown MinHash preset `{preset}`; available: {}",
                    MinhashConfig::PRESETS.join(", ")
                ),
            )
        })?;
        if let Some(n) = ngram {
            c.ngram = *n;
        }
        if let Some(b) = bands {
            c.bands = *b;
        }
        if let Some(r) = rows {
            c.rows = *r;
        }
        if let Some(s) = seed {
            c.seed = *s;
        }
        c.validate()
            .map_err(|e| ("bands".to_string(), e.to_string()))?;
        Ok(c)
    }
}

/// Where step `index` of the chain writes, under the run's output.
pub fn step_dir(output: &Path, index: usize, step: &DedupStepConfig) -> PathBuf {
    output
        .join("dedup")
        .join(format!("{index:02}-{}", step.type_name()))
}

/// What one dedup step of the chain did.
#[derive(Debug)]
pub struct DedupStepReport {
    pub name: String,
    pub output: PathBuf,
    pub stats: RunStats,
}

/// A dedup step that failed; names the step.
#[derive(Debug, thiserror::Error)]
#[error("dedup step {step}: {message}")]
pub struct DedupChainError {
    pub step: String,
    pub message: String,
}

/// Runs the pipeline's `[[dedup]]` chain over the stages' output
/// (`OUT/data/`), each step into `OUT/dedup/NN-<type>/`.
pub fn run_chain(
    pipeline: &Pipeline,
    cancel: &AtomicBool,
) -> Result<Vec<DedupStepReport>, DedupChainError> {
    let (output, tasks, workers, rejects, writer) = (
        &pipeline.output,
        pipeline.tasks,
        pipeline.workers,
        pipeline.rejects,
        &pipeline.writer,
    );
    let steps = &pipeline.dedup;
    let first_input = output.join(refinery_corpus::executor::DATA_DIR);
    let mut input = first_input.to_path_buf();
    let mut reports = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let name = format!("{i:02}-{}", step.type_name());
        let err = |message: String| DedupChainError {
            step: name.clone(),
            message,
        };
        let out = step_dir(output, i, step);
        let inputs = discover(&[input.clone()]).map_err(|e| err(e.to_string()))?;
        let reader = ReaderOptions::default();
        let stats = match step {
            DedupStepConfig::Minhash {
                max_memory_mb,
                group_by,
                ..
            } => {
                let config = step
                    .minhash_config()
                    .map_err(|(k, m)| err(format!("{k}: {m}")))?;
                let job = MinhashJob {
                    inputs,
                    reader,
                    writer: writer.clone(),
                    output: out.clone(),
                    config,
                    tasks,
                    workers,
                    rejects,
                    sig_buffer_records: 4 << 20,
                    max_memory_bytes: max_memory_mb
                        .map_or(minhash::DEFAULT_MAX_MEMORY_BYTES, |mb| {
                            mb.saturating_mul(1 << 20)
                        }),
                    group_by: group_by.clone(),
                };
                minhash::run(&job, cancel)
                    .map_err(|e| err(e.to_string()))?
                    .stats
            }
            DedupStepConfig::Exact { raw } => corpus_job(
                inputs,
                reader,
                writer,
                &out,
                Method::Exact,
                !raw,
                tasks,
                workers,
                rejects,
                cancel,
            )
            .map_err(err)?,
            DedupStepConfig::Urls { keep } => corpus_job(
                inputs,
                reader,
                writer,
                &out,
                Method::Urls { keep: *keep },
                true,
                tasks,
                workers,
                rejects,
                cancel,
            )
            .map_err(err)?,
            DedupStepConfig::Lines {
                unit,
                max_occurrences,
            } => corpus_job(
                inputs,
                reader,
                writer,
                &out,
                Method::Lines {
                    unit: *unit,
                    max_occurrences: *max_occurrences,
                },
                true,
                tasks,
                workers,
                rejects,
                cancel,
            )
            .map_err(err)?,
            DedupStepConfig::Substring { .. } => {
                let job = SubstringJob {
                    inputs,
                    reader,
                    writer: writer.clone(),
                    output: out.clone(),
                    config: step.substring_config(),
                    tasks,
                    workers,
                    rejects,
                    shard_units: 1 << 28,
                    merge_memory_bytes: 1 << 30,
                };
                substring::run(&job, cancel)
                    .map_err(|e| err(e.to_string()))?
                    .stats
            }
        };
        input = out.join(refinery_corpus::executor::DATA_DIR);
        reports.push(DedupStepReport {
            name,
            output: out,
            stats,
        });
    }
    Ok(reports)
}

#[allow(clippy::too_many_arguments)]
fn corpus_job(
    inputs: Vec<refinery_corpus::input::InputFile>,
    reader: ReaderOptions,
    writer: &WriterOptions,
    out: &Path,
    method: Method,
    normalize: bool,
    tasks: usize,
    workers: usize,
    rejects: bool,
    cancel: &AtomicBool,
) -> Result<RunStats, String> {
    let job = CorpusDedupJob {
        inputs,
        reader,
        writer: writer.clone(),
        output: out.to_path_buf(),
        method,
        normalize,
        tasks,
        partitions: 16,
        workers,
        rejects,
        buffer_bytes: 256 << 20,
    };
    cdedup::run(&job, cancel)
        .map(|r| r.stats)
        .map_err(|e| e.to_string())
}

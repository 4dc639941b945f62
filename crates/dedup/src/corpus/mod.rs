//! Corpus-wide exact, URL and line/paragraph dedup, in three resumable
//! steps with the contract of [`crate::minhash`]:
//!
//! ```text
//! DIR/<method>/params.json                       parameters + inputs: a rerun must match
//! DIR/<method>/hash/part_PPP/TTTTT_RRRR.bin      per task, per hash partition: sorted runs
//! DIR/<method>/hash/stats/TTTTT.json             per task: documents per input file, counters
//! DIR/<method>/decide/remove_PPP_TTTTT.bin       exact, urls: removals of partition P for filter task T
//! DIR/<method>/decide/dups_PPP.bin               lines: hashes of partition P seen more than k times
//! DIR/<method>/decide/stats/PPP.json             per partition counters
//! DIR/<method>/filter/stats/TTTTT.json           lines: segments removed, documents modified
//! DIR/<method>/<step>/completions/NNNNN          written last by each task of each step
//! DIR/<method>/summary.json                      the counters of the whole run
//! DIR/data/, DIR/rejects/, DIR/stats/, DIR/stats.json   the filtered corpus, as `refinery run` writes it
//! ```
//!
//! `<method>` is `exact`, `urls` or `lines`.
//!
//! 1. **hash** (task `t` of `N` reads input files `t, t+N, …`): one record
//!    per document (exact: hash of the normalized text; urls: hash of the
//!    normalized URL, plus a rank for `--keep newest`) or one count per
//!    distinct line (lines), routed to `H` partitions by hash, buffered and
//!    spilled as sorted runs. Memory: `--buffer-mb`.
//! 2. **decide** (one task per partition): a streaming k-way merge of the
//!    partition's runs. exact/urls: within a run of equal hashes the first
//!    record (smallest rank, then smallest key) is kept and the others are
//!    removed; the removals are sorted by key and split by filter task.
//!    lines: counts of equal hashes are summed and hashes with a total above
//!    `--max-occurrences` are written. Memory: the removals of one
//!    partition, so it shrinks as `H` grows.
//! 3. **filter** (the sharding of step 1): re-reads the input, drops or
//!    edits documents, writes shards, rejects and per-task stats; the merge
//!    checks `records = kept + Σ dropped + Σ failed` per file.
//!
//! A document's key is `(input file index, document index in the file)`
//! ([`DocKey`]), so every decision, and therefore the output documents, do
//! not depend on the task, partition, worker or buffer counts.

mod decide;
mod filter;
pub mod format;
mod hash;
pub mod normal;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::InputFile;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::stats::RunStats;
use refinery_corpus::writers::{write_atomic, WriterOptions};
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use crate::job::{self, MultiStepJob};
use rustc_hash::FxHashSet;

pub use crate::minhash::DocKey;
pub use normal::{newest_rank, normalize_url, parse_date, segments, Segment, SegmentHasher, Unit};

/// Drop reason of a later copy of a normalized text (the reason of the
/// per-task stage too).
pub const REASON_EXACT: &str = crate::exact::REASON_DUPLICATE;
/// Drop reason of a later (or older) copy of a normalized URL.
pub const REASON_URL: &str = "url_dedup:duplicate";
/// Drop reason of a document whose every non-blank line (paragraph) was
/// removed by line dedup.
pub const REASON_LINES_EMPTY: &str = "line_dedup:empty";
/// `metadata` key on exact and URL rejects: the id of the kept copy.
pub const DUPLICATE_OF_KEY: &str = "duplicate_of";
/// `metadata` key on documents edited by line dedup (`--unit line`).
pub const LINES_REMOVED_KEY: &str = "lines_removed";
/// `metadata` key on documents edited by paragraph dedup.
pub const PARAGRAPHS_REMOVED_KEY: &str = "paragraphs_removed";

pub const PARAMS_FILE: &str = crate::job::PARAMS_FILE;
pub const SUMMARY_FILE: &str = "summary.json";
pub const STEPS: [&str; 3] = ["hash", "decide", "filter"];

/// Errors of corpus-wide dedup; each names the file or step it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusDedupError {
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed intermediate file: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("invalid dedup parameters: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error(transparent)]
    Step(#[from] crate::job::StepError),
}

pub type Result<T, E = CorpusDedupError> = std::result::Result<T, E>;

crate::binfmt::impl_from_binfmt!(CorpusDedupError);
crate::job::impl_job_report!(DedupReport);
crate::job::impl_job_error!(CorpusDedupError);

/// Which copy of a URL survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The first in input order.
    #[default]
    First,
    /// The newest by `metadata.date`; ties (and documents without a
    /// parseable date, which rank oldest) go by input order.
    Newest,
}

/// The dedup method and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Method {
    /// Whole documents, by the hash of their normalized text.
    Exact,
    /// Documents by normalized `metadata.url` ([`normalize_url`]).
    Urls { keep: Keep },
    /// Lines (or paragraphs) that occur more than `max_occurrences` times
    /// in the whole corpus are removed from every document.
    Lines { unit: Unit, max_occurrences: u64 },
}

impl Method {
    /// The directory under the output that holds the steps.
    pub fn dir_name(&self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Urls { .. } => "urls",
            Method::Lines { .. } => "lines",
        }
    }
}

/// Everything a corpus-wide dedup run needs.
#[derive(Clone, Debug)]
pub struct CorpusDedupJob {
    pub inputs: Vec<InputFile>,
    pub reader: ReaderOptions,
    pub writer: WriterOptions,
    pub output: PathBuf,
    pub method: Method,
    /// Hash the text (exact) or the lines (lines) after [`crate::normalize`]
    /// (lowercase, no punctuation, collapsed whitespace); off: raw bytes.
    /// Not used by `urls`, which has its own normalization.
    pub normalize: bool,
    /// Tasks of the hash and filter steps (task t reads files t, t+N, …).
    pub tasks: usize,
    /// Hash partitions = tasks of the decide step.
    pub partitions: usize,
    /// Threads; never changes the output.
    pub workers: usize,
    pub rejects: bool,
    /// Bytes a hash task buffers before spilling sorted runs. Changes the
    /// number of run files, never the result.
    pub buffer_bytes: usize,
}

impl CorpusDedupJob {
    pub fn dir(&self) -> PathBuf {
        self.output.join(self.method.dir_name())
    }

    fn step_dir(&self, step: &str) -> PathBuf {
        self.dir().join(step)
    }

    /// The filter task that reads input file `file`.
    fn task_of_file(&self, file: usize) -> usize {
        file % self.tasks
    }

    /// The identity of the run: a rerun into the same directory must match.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "format": format::FORMAT_VERSION,
            "algorithm": "xxh3-128/normalize-v1/url-v1/date-v1",
            "method": self.method,
            "normalize": self.normalize,
            "tasks": self.tasks,
            "partitions": self.partitions,
            "rejects": self.rejects,
            "reader": self.reader,
            "writer": self.writer,
            "inputs": self.inputs.iter().map(|f| serde_json::json!({"source": f.source, "size": f.size})).collect::<Vec<_>>(),
        })
    }
}

pub use crate::job::StepReport;

/// The counters of a whole run (`DIR/<method>/summary.json`); deterministic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupSummary {
    /// Documents read (all methods).
    pub docs: u64,
    /// exact/urls: documents with a key (urls: with a non-empty URL).
    pub keyed: u64,
    /// urls: documents without `metadata.url`; never removed.
    pub no_url: u64,
    /// exact/urls: distinct keys; lines: distinct non-blank segments.
    pub distinct: u64,
    /// exact/urls: keys held by more than one document; lines: segments
    /// seen more than `max_occurrences` times.
    pub duplicated: u64,
    /// exact/urls: documents removed.
    pub removed_docs: u64,
    /// lines: non-blank segments read, and removed.
    pub segments: u64,
    pub segments_removed: u64,
    /// lines: documents edited, and dropped as empty.
    pub docs_modified: u64,
    pub docs_emptied: u64,
}

/// What a call to [`run`] did.
#[derive(Clone, Debug, Serialize)]
pub struct DedupReport {
    pub method: Method,
    pub steps: Vec<StepReport>,
    pub summary: DedupSummary,
    pub stats: RunStats,
}

crate::job::impl_sharded_input!(CorpusDedupJob);

impl MultiStepJob for CorpusDedupJob {
    type Error = CorpusDedupError;
    /// Line dedup's filter step: the duplicated hashes its tasks share.
    type Shared = Option<FxHashSet<u128>>;
    type Report = DedupReport;

    fn what(&self) -> String {
        format!("`dedup {}` run", self.method.dir_name())
    }

    fn dir(&self) -> PathBuf {
        CorpusDedupJob::dir(self)
    }

    fn steps(&self) -> &'static [&'static str] {
        &STEPS
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn fingerprint(&self) -> serde_json::Value {
        CorpusDedupJob::fingerprint(self)
    }

    fn validate(&self) -> Result<()> {
        job::check_sharding(self.inputs.len(), self.tasks, self.workers)
            .map_err(CorpusDedupError::Config)?;
        if self.partitions == 0 {
            return Err(CorpusDedupError::Config(
                "partitions must be at least 1".into(),
            ));
        }
        if self.partitions > 999 {
            return Err(CorpusDedupError::Config(format!(
                "{} partitions: at most 999 (part_PPP file names)",
                self.partitions
            )));
        }
        if self.tasks > 99_999 {
            return Err(CorpusDedupError::Config("at most 99999 tasks".into()));
        }
        if let Method::Lines {
            max_occurrences: 0, ..
        } = self.method
        {
            return Err(CorpusDedupError::Config(
                "--max-occurrences must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// hash and filter: `tasks`; decide: one per partition.
    fn ranks(&self, step: usize) -> usize {
        match step {
            1 => self.partitions,
            _ => self.tasks,
        }
    }

    fn plan(&self, step: usize) -> Result<(usize, Option<FxHashSet<u128>>)> {
        Ok((self.ranks(step), None))
    }

    /// The filter step of line dedup shares one set of duplicated hashes
    /// between its tasks.
    fn load(
        &self,
        step: usize,
        dups: &mut Option<FxHashSet<u128>>,
        _pending: &[usize],
    ) -> Result<()> {
        if step == 2 && matches!(self.method, Method::Lines { .. }) {
            *dups = Some(decide::load_dups(self)?);
        }
        Ok(())
    }

    fn run_task(
        &self,
        step: usize,
        dups: &Option<FxHashSet<u128>>,
        t: usize,
        cancel: &AtomicBool,
    ) -> Result<()> {
        match step {
            0 => hash::run_task(self, t, cancel),
            1 => decide::run_task(self, t, cancel),
            _ => filter::run_task(self, t, dups.as_ref(), cancel),
        }
    }

    /// Merges the filter step's stats into `stats.json` and the step
    /// counters into `summary.json`.
    fn report(&self, steps: Vec<StepReport>) -> Result<DedupReport> {
        let stats = filter::merge(self)?;
        let summary = summarize(self)?;
        write_json(&self.dir().join(SUMMARY_FILE), &summary)?;
        Ok(DedupReport {
            method: self.method.clone(),
            steps,
            summary,
            stats,
        })
    }
}

crate::job::job_functions!(CorpusDedupJob, DedupReport);

fn summarize(job: &CorpusDedupJob) -> Result<DedupSummary> {
    let mut s = DedupSummary::default();
    for t in 0..job.tasks {
        let h: hash::HashStats = read_json(&hash::stats_path(job, t))?;
        s.docs += h.docs;
        s.keyed += h.keyed;
        s.no_url += h.no_url;
        s.segments += h.segments;
        if matches!(job.method, Method::Lines { .. }) {
            let f: filter::LineStats = read_json(&filter::line_stats_path(job, t))?;
            s.segments_removed += f.segments_removed;
            s.docs_modified += f.docs_modified;
            s.docs_emptied += f.docs_emptied;
        }
    }
    for p in 0..job.partitions {
        let d: decide::DecideStats = read_json(&decide::stats_path(job, p))?;
        s.distinct += d.distinct;
        s.duplicated += d.duplicated;
        s.removed_docs += d.removed;
    }
    Ok(s)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| CorpusDedupError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(
        serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json {
            path: path.to_path_buf(),
            source: e,
        })?,
    )
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CorpusError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(write_atomic(path, &json)?)
}

/// Reads `DIR/<method>/params.json` of an earlier run.
pub fn load_params(dir: &Path, method: &str) -> Result<serde_json::Value> {
    read_json(&dir.join(method).join(PARAMS_FILE))
}

fn remove_prefixed(dir: &Path, prefix: &str) -> Result<()> {
    Ok(crate::fsutil::remove_prefixed(dir, prefix)?)
}

fn cancelled(cancel: &AtomicBool) -> Result<()> {
    Ok(crate::fsutil::cancelled(cancel)?)
}

/// The partition of a hash.
fn partition(hash: u128, partitions: usize) -> usize {
    ((hash >> 64) as u64 % partitions as u64) as usize
}

//! Exact-substring dedup (Lee et al. 2021 "ExactSubstr", RefinedWeb stage
//! 8): remove every span of at least `min_len` units (bytes or whitespace
//! tokens) that occurs more than once in the corpus, keeping its first
//! occurrence, in four resumable steps:
//!
//! ```text
//! DIR/substring/params.json                      parameters + inputs: a rerun must match
//! DIR/substring/sequences/units_FFFFF.bin        per input file: the units of its documents, back to back
//! DIR/substring/sequences/docs_FFFFF.bin         per input file: units per document
//! DIR/substring/suffixes/shard_SSSSS.bin         per shard: its suffixes with ≥ min_len units left in their document, in suffix-array order
//! DIR/substring/merge/marks_FFFFF.bin            per input file: the unit ranges to remove
//! DIR/substring/merge/summary.json               counts
//! DIR/substring/<step>/completions/NNNNN         written last by each task of each step
//! DIR/data/, DIR/rejects/, DIR/stats/, DIR/stats.json   the rewritten corpus
//! ```
//!
//! 1. **sequences** (task `t` of `N` reads input files `t, t+N, …`): each
//!    document's units. A document's *global position* is its file's base
//!    plus its offset in the file: positions are ordered by (file, document,
//!    offset), i.e. input order, whatever the task count.
//! 2. **suffixes** (one task per shard; cluster rank r of N builds shards
//!    r, r+N, …): shards are runs of consecutive documents of at most
//!    `shard_units` units. A shard's text is its documents back to back;
//!    libsais ([`sais`]) sorts its suffixes, and those with fewer than
//!    `min_len` units before their document's end are dropped (so no kept
//!    window crosses a boundary, and the order of whole suffixes implies
//!    the order of their first `min_len` units). Memory: about 5 bytes per
//!    unit of one shard (bytes), 24 (tokens).
//! 3. **merge** (one task, as Lee et al.): a k-way merge of the sorted
//!    suffix lists of all shards, comparing the first `min_len` units of
//!    each suffix in the memory-mapped units files. Suffixes with the same
//!    first `min_len` units come out adjacent: each such group is one
//!    repeated window. The window at the smallest global position is kept;
//!    the others are marked removed. Memory: bounded by
//!    `merge_memory_bytes` (removed positions spill to sorted runs), plus
//!    the page cache for the mapped units.
//! 4. **filter** (task `t` reads files `t, t+N, …` again): rewrites the
//!    documents and writes them as `refinery run` does.
//!
//! **What is removed** ([`Keep::First`]): a unit is removed when it lies in
//! some window of `min_len` units that occurs earlier in the corpus (at a
//! smaller global position), and in no window that is the first occurrence
//! of a repeated window. So every repeated span survives once, at its first
//! occurrence (whole, even when it overlaps a later copy of itself), and
//! all later copies go. [`Keep::None`] removes every occurrence (what Lee
//! et al.'s released `collect` ranges cover).
//!
//! The result does not depend on the task, worker or shard counts: the
//! merge sees the same groups whatever the sharding.

mod filter;
pub mod format;
mod merge;
pub mod sais;
mod sequences;
mod suffixes;
pub mod units;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::InputFile;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::stats::RunStats;
use refinery_corpus::writers::WriterOptions;
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use crate::job::{self, MultiStepJob};

pub use merge::MergeSummary;
pub use units::Unit;

/// Drop reason of a document left empty (or shorter than `min_doc_len`).
pub const REASON_EMPTY: &str = "substring_dedup:empty";
/// `metadata` key: bytes removed from the document's text.
pub const REMOVED_KEY: &str = "substrings_removed";

pub const SUBSTRING_DIR: &str = "substring";
pub const PARAMS_FILE: &str = crate::job::PARAMS_FILE;
pub const STEPS: [&str; 4] = ["sequences", "suffixes", "merge", "filter"];
/// Largest shard (units plus one separator per document): SA-IS indexes
/// with u32.
pub const MAX_SHARD_UNITS: u64 = 1 << 31;

/// Errors of substring dedup; each names the file or step it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubstringError {
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
    #[error("invalid substring dedup parameters: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("{path}: building the suffix array: {message}")]
    SuffixArray { path: PathBuf, message: String },
    #[error(transparent)]
    Step(#[from] crate::job::StepError),
}

pub type Result<T, E = SubstringError> = std::result::Result<T, E>;

crate::binfmt::impl_from_binfmt!(SubstringError);
crate::job::impl_job_report!(SubstringReport);
crate::job::impl_job_error!(SubstringError);

/// Which occurrence of a repeated span survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The first in input order (file index, document index, offset).
    #[default]
    First,
    /// None: every occurrence is removed.
    None,
}

/// What counts as a repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubstringConfig {
    /// Shortest repeated span removed, in units (RefinedWeb: 50 tokens).
    pub min_len: usize,
    pub unit: Unit,
    pub keep: Keep,
    /// A document that lost text and has fewer bytes left than this (or
    /// only whitespace) is dropped as `substring_dedup:empty`.
    pub min_doc_len: usize,
}

impl Default for SubstringConfig {
    fn default() -> Self {
        SubstringConfig {
            min_len: 50,
            unit: Unit::Bytes,
            keep: Keep::First,
            min_doc_len: 0,
        }
    }
}

impl SubstringConfig {
    pub fn validate(&self) -> Result<()> {
        if self.min_len == 0 || self.min_len > 1 << 20 {
            return Err(SubstringError::Config(format!(
                "min_len {}: must be in 1..=1048576",
                self.min_len
            )));
        }
        Ok(())
    }
}

/// Everything a substring dedup run needs.
#[derive(Clone, Debug)]
pub struct SubstringJob {
    pub inputs: Vec<InputFile>,
    pub reader: ReaderOptions,
    pub writer: WriterOptions,
    pub output: PathBuf,
    pub config: SubstringConfig,
    /// Tasks of the sequences and filter steps (task t reads files t, t+N, …).
    pub tasks: usize,
    /// Threads; never changes the output.
    pub workers: usize,
    pub rejects: bool,
    /// Units (plus one per document) per suffix-array shard: bounds the
    /// memory of the suffixes step (about 5 bytes each for bytes, 24 for
    /// tokens). Never changes the result.
    pub shard_units: u64,
    /// Memory budget of the merge step (its buffers; the mapped units are
    /// page cache on top). Above it, the removed positions spill to sorted
    /// runs on disk. Never changes the result.
    pub merge_memory_bytes: u64,
}

impl SubstringJob {
    fn step_dir(&self, step: &str) -> PathBuf {
        self.output.join(SUBSTRING_DIR).join(step)
    }

    fn task_files(&self, task: usize) -> impl Iterator<Item = (usize, &InputFile)> {
        job::task_files(&self.inputs, self.tasks, task)
    }

    fn units_path(&self, file: usize) -> PathBuf {
        self.step_dir(STEPS[0]).join(format!("units_{file:05}.bin"))
    }

    fn docs_path(&self, file: usize) -> PathBuf {
        self.step_dir(STEPS[0]).join(format!("docs_{file:05}.bin"))
    }

    fn unit_kind(&self) -> format::Kind {
        match self.config.unit {
            Unit::Bytes => format::Kind::UnitBytes,
            Unit::Tokens => format::Kind::UnitTokens,
        }
    }

    /// The identity of the run: a rerun into the same directory must match.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "format": format::FORMAT_VERSION,
            "algorithm": "exact-substring/sa-is shards/k-way merge/keep-protected-v1",
            "config": self.config,
            "shard_units": self.shard_units,
            "tasks": self.tasks,
            "rejects": self.rejects,
            "reader": self.reader,
            "writer": self.writer,
            "inputs": self.inputs.iter().map(|f| serde_json::json!({"source": f.source, "size": f.size})).collect::<Vec<_>>(),
        })
    }
}

pub use crate::job::StepReport;

/// What a call to [`run`] did.
#[derive(Clone, Debug, Serialize)]
pub struct SubstringReport {
    pub steps: Vec<StepReport>,
    pub summary: MergeSummary,
    pub stats: RunStats,
}

/// The input files' unit bases and the shards (runs of whole documents).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Global position of each file's first unit; one more entry: the total.
    pub bases: Vec<u64>,
    pub docs: u64,
    pub shards: Vec<Shard>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Global positions `g0..g1` (documents back to back, no separators).
    pub g0: u64,
    pub g1: u64,
    /// First document (file, index) and the end (exclusive).
    pub first: (usize, usize),
    pub end: (usize, usize),
}

/// Builds the plan from the complete sequences step (reads the docs files).
pub(crate) fn plan(job: &SubstringJob) -> Result<Plan> {
    let mut p = Plan::default();
    let mut g = 0u64;
    let mut cur: Option<(Shard, u64)> = None;
    for f in 0..job.inputs.len() {
        p.bases.push(g);
        let lens = format::read_u64s(&job.docs_path(f), format::Kind::Docs)?;
        p.docs += lens.len() as u64;
        for (d, &len) in lens.iter().enumerate() {
            if len + 1 >= MAX_SHARD_UNITS {
                return Err(SubstringError::Config(format!(
                    "{}: document {d} has {len} units; at most {} fit a suffix array",
                    job.inputs[f].source,
                    MAX_SHARD_UNITS - 2
                )));
            }
            if let Some((s, size)) = cur {
                if size > 0 && size + len + 1 > job.shard_units {
                    p.shards.push(s);
                    cur = None;
                }
            }
            let (s, size) = cur.get_or_insert((
                Shard {
                    g0: g,
                    g1: g,
                    first: (f, d),
                    end: (f, d),
                },
                0,
            ));
            g += len;
            s.g1 = g;
            s.end = (f, d + 1);
            *size += len + 1;
        }
    }
    p.bases.push(g);
    if let Some((s, _)) = cur {
        p.shards.push(s);
    }
    Ok(p)
}

crate::job::impl_sharded_input!(SubstringJob);

impl MultiStepJob for SubstringJob {
    type Error = SubstringError;
    /// The plan, for the suffixes and merge steps.
    type Shared = Option<Plan>;
    type Report = SubstringReport;

    fn what(&self) -> String {
        "substring dedup run".into()
    }

    fn dir(&self) -> PathBuf {
        self.output.join(SUBSTRING_DIR)
    }

    fn steps(&self) -> &'static [&'static str] {
        &STEPS
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn fingerprint(&self) -> serde_json::Value {
        SubstringJob::fingerprint(self)
    }

    fn validate(&self) -> Result<()> {
        self.config.validate()?;
        job::check_sharding(self.inputs.len(), self.tasks, self.workers)
            .map_err(SubstringError::Config)?;
        if self.shard_units < 2 || self.shard_units > MAX_SHARD_UNITS {
            return Err(SubstringError::Config(format!(
                "shard_units {}: must be in 2..={MAX_SHARD_UNITS}",
                self.shard_units
            )));
        }
        Ok(())
    }

    /// `tasks` for sequences and filter, `tasks` for suffixes too (rank r
    /// builds shards r, r+N, …, since the shard count is known only after
    /// sequences), 1 for the merge.
    fn ranks(&self, step: usize) -> usize {
        match step {
            2 => 1,
            _ => self.tasks,
        }
    }

    /// Suffixes: one task per shard of the plan; merge: one task.
    fn plan(&self, step: usize) -> Result<(usize, Option<Plan>)> {
        match step {
            1 => {
                let p = plan(self)?;
                Ok((p.shards.len(), Some(p)))
            }
            2 => Ok((1, Some(plan(self)?))),
            _ => Ok((self.tasks, None)),
        }
    }

    fn run_task(
        &self,
        step: usize,
        plan: &Option<Plan>,
        t: usize,
        cancel: &AtomicBool,
    ) -> Result<()> {
        match (step, plan) {
            (0, _) => sequences::run_task(self, t, cancel),
            (1, Some(p)) => suffixes::run_task(self, p, t, cancel),
            (2, Some(p)) => merge::run_task(self, p, cancel),
            _ => filter::run_task(self, t, cancel),
        }
    }

    /// Merges the filter tasks' stats into `stats.json` and loads the merge
    /// summary.
    fn report(&self, steps: Vec<StepReport>) -> Result<SubstringReport> {
        let stats = filter::merge(self)?;
        let summary = merge::load_summary(self)?;
        Ok(SubstringReport {
            steps,
            summary,
            stats,
        })
    }
}

crate::job::job_functions!(SubstringJob, SubstringReport);

/// Removes `path` and its hidden temp file `.NAME.tmp`, if present.
fn remove_with_tmp(path: &Path) -> Result<()> {
    let mut paths = vec![path.to_path_buf()];
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        paths.push(dir.join(format!(".{}.tmp", name.to_string_lossy())));
    }
    for p in paths {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SubstringError::Io { path: p, source: e }),
        }
    }
    Ok(())
}

fn remove_prefixed(dir: &Path, prefix: &str) -> Result<()> {
    Ok(crate::fsutil::remove_prefixed(dir, prefix)?)
}

fn cancelled(cancel: &AtomicBool) -> Result<()> {
    Ok(crate::fsutil::cancelled(cancel)?)
}

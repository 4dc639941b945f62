//! MinHash-LSH near-duplicate removal across a whole corpus, in four
//! resumable steps (as in datatrove):
//!
//! ```text
//! DIR/minhash/params.json                        parameters + inputs: a rerun must match
//! DIR/minhash/signatures/band_BBB/TTTTT_RRRR.bin  per task, per band: sorted (band hash, doc key) runs
//! DIR/minhash/signatures/ids/FFFFF.bin            per input file: the document ids, in order
//! DIR/minhash/buckets/band_BBB.bin                per band: (first key, other key) of each bucket
//! DIR/minhash/clusters/remove_FFFFF.bin           per input file: removed docs, cluster, kept doc
//! DIR/minhash/clusters/summary.json               counts and union-find memory
//! DIR/minhash/<step>/completions/NNNNN            written last by each task of each step
//! DIR/data/, DIR/rejects/, DIR/stats/, DIR/stats.json   the filtered corpus, as `refinery run` writes it
//! ```
//!
//! 1. **signatures** (task `t` of `N` reads input files `t, t+N, …`): word
//!    n-gram shingles of [`simplify`]d text → `bands·rows` minimums of
//!    universal hashes mod 2^61−1 → one 64-bit hash per band (see
//!    [`MinHasher`]). Records are buffered and spilled as sorted runs, so
//!    memory is bounded by `sig_buffer_records · 16` bytes per task.
//! 2. **buckets** (one task per band): a streaming k-way merge of the band's
//!    runs; every record whose hash equals the previous one gives the pair
//!    (first key of the bucket, its key). Memory: one buffered reader per run.
//! 3. **clusters** (one task): connected components of the pairs of all
//!    bands; a cluster keeps its document with the smallest key, i.e. the
//!    first in input order, so the removed set does not depend on task or
//!    worker counts. An in-memory union-find (about 120 bytes per document
//!    in a pair) when that fits `max_memory_bytes`, else large-star /
//!    small-star rounds over externally sorted edge files, bounded by the
//!    budget; both give identical output.
//! 4. **filter** (task `t` reads files `t, t+N, …` again): drops removed
//!    documents with reason `minhash:duplicate`, writes the rest as shards,
//!    rejects carry `metadata.minhash_cluster` and `metadata.minhash_kept_id`.
//!
//! A document's key is `(input file index, document index in that file)`
//! ([`DocKey`]): global, whatever the task count. Each step marks its tasks
//! complete; a rerun skips complete tasks and redoes the others from
//! scratch, and a step that reran anything invalidates the later steps.

mod buckets;
mod clusters;
mod components;
mod explain;
mod filter;
pub mod format;
pub mod hasher;
mod signatures;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::InputFile;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::stats::RunStats;
use refinery_corpus::writers::WriterOptions;
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use crate::job::{self, MultiStepJob};

pub use clusters::ClusterSummary;
pub use explain::{explain, Explanation};
pub use hasher::{jaccard, shingle_hashes, simplify, MinHasher};

/// Drop reason of a removed near-duplicate.
pub const REASON_DUPLICATE: &str = "minhash:duplicate";
/// `metadata` key on rejects: the cluster id.
pub const CLUSTER_KEY: &str = "minhash_cluster";
/// `metadata` key on rejects: the id of the document kept for the cluster.
pub const KEPT_ID_KEY: &str = "minhash_kept_id";

pub const MINHASH_DIR: &str = "minhash";
pub const PARAMS_FILE: &str = crate::job::PARAMS_FILE;
pub const STEPS: [&str; 4] = ["signatures", "buckets", "clusters", "filter"];

/// Errors of MinHash dedup; each names the file or step it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinhashError {
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
    #[error("invalid MinHash parameters: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Step(#[from] crate::job::StepError),
}

pub type Result<T, E = MinhashError> = std::result::Result<T, E>;

crate::binfmt::impl_from_binfmt!(MinhashError);
crate::job::impl_job_report!(MinhashReport);
crate::job::impl_job_error!(MinhashError);

/// Shingle and LSH parameters.
///
/// The LSH threshold, where a pair of Jaccard similarity `J` becomes a
/// candidate with probability 1/2 or so, is about `(1/bands)^(1/rows)`; the
/// probability is `1 − (1 − J^rows)^bands` ([`MinhashConfig::probability`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinhashConfig {
    /// Words per shingle.
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    /// Seed of the permutation parameters.
    pub seed: u64,
}

impl Default for MinhashConfig {
    fn default() -> Self {
        MinhashConfig::fineweb()
    }
}

impl MinhashConfig {
    /// FineWeb: 5-grams, 112 hashes as 14 bands × 8 rows (threshold ≈ 0.72).
    pub fn fineweb() -> Self {
        MinhashConfig {
            ngram: 5,
            bands: 14,
            rows: 8,
            seed: 1,
        }
    }

    /// RefinedWeb: 5-grams, 9,000 hashes, "20 buckets of 450" read as 450
    /// bands × 20 rows, Lee et al.'s NearDup reading (threshold ≈ 0.74).
    pub fn refinedweb() -> Self {
        MinhashConfig {
            ngram: 5,
            bands: 450,
            rows: 20,
            seed: 1,
        }
    }

    /// RefinedWeb read literally: 20 bands × 450 rows (threshold ≈ 0.99).
    pub fn refinedweb_literal() -> Self {
        MinhashConfig {
            ngram: 5,
            bands: 20,
            rows: 450,
            seed: 1,
        }
    }

    /// A preset by name: `fineweb`, `refinedweb`, `refinedweb-literal`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "fineweb" => Some(Self::fineweb()),
            "refinedweb" => Some(Self::refinedweb()),
            "refinedweb-literal" => Some(Self::refinedweb_literal()),
            _ => None,
        }
    }

    pub const PRESETS: [&'static str; 3] = ["fineweb", "refinedweb", "refinedweb-literal"];

    pub fn validate(&self) -> Result<()> {
        if self.ngram == 0 || self.bands == 0 || self.rows == 0 {
            return Err(MinhashError::Config(
                "ngram, bands and rows must be at least 1".into(),
            ));
        }
        if self.bands > 999 {
            return Err(MinhashError::Config(format!(
                "{} bands: at most 999 (band_BBB file names)",
                self.bands
            )));
        }
        if self.bands * self.rows > 100_000 {
            return Err(MinhashError::Config(format!(
                "{} hashes per document: at most 100000",
                self.bands * self.rows
            )));
        }
        Ok(())
    }

    /// `(1/bands)^(1/rows)`: the usual estimate of the threshold.
    pub fn threshold(&self) -> f64 {
        (1.0 / self.bands as f64).powf(1.0 / self.rows as f64)
    }

    /// Probability that a pair with Jaccard similarity `j` shares a bucket
    /// in at least one band.
    pub fn probability(&self, j: f64) -> f64 {
        1.0 - (1.0 - j.powi(self.rows as i32)).powi(self.bands as i32)
    }
}

/// A document's global key: its input file's index in the discovered list
/// and its index among the documents of that file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocKey {
    pub file: u32,
    pub doc: u32,
}

impl DocKey {
    pub fn pack(self) -> u64 {
        (self.file as u64) << 32 | self.doc as u64
    }

    pub fn unpack(k: u64) -> Self {
        DocKey {
            file: (k >> 32) as u32,
            doc: k as u32,
        }
    }
}

/// Everything a MinHash dedup run needs.
#[derive(Clone, Debug)]
pub struct MinhashJob {
    pub inputs: Vec<InputFile>,
    pub reader: ReaderOptions,
    pub writer: WriterOptions,
    pub output: PathBuf,
    pub config: MinhashConfig,
    /// Tasks of the signatures and filter steps (task t reads files t, t+N, …).
    pub tasks: usize,
    /// Threads; never changes the output.
    pub workers: usize,
    pub rejects: bool,
    /// Signature records (16 bytes each) a task buffers before spilling a
    /// sorted run. Changes the number of run files, never the result.
    pub sig_buffer_records: usize,
    /// Memory budget of the clusters step, in bytes: above it, connected
    /// components run on sorted files on disk instead of an in-memory
    /// union-find. Changes the method, never the result.
    pub max_memory_bytes: u64,
    /// Dedup within groups: documents whose metadata field `group_by` holds different values
    /// (e.g. FineWeb's `dump`, one Common Crawl snapshot) are never compared, so one run dedups
    /// every snapshot separately. `None`: global dedup. A missing field is the group `""`.
    pub group_by: Option<String>,
}

/// Default of [`MinhashJob::max_memory_bytes`]: 1 GiB.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 1 << 30;

impl MinhashJob {
    fn step_dir(&self, step: &str) -> PathBuf {
        self.output.join(MINHASH_DIR).join(step)
    }

    fn task_files(&self, task: usize) -> impl Iterator<Item = (usize, &InputFile)> {
        job::task_files(&self.inputs, self.tasks, task)
    }

    /// The identity of the run: a rerun into the same directory must match.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "format": format::FORMAT_VERSION,
            "algorithm": "minhash-lsh/xxh3-64 shingles/(a*h+b) mod 2^61-1/xxh3-64 bands/simplify-v1",
            "config": self.config,
            "tasks": self.tasks,
            "rejects": self.rejects,
            "group_by": self.group_by,
            "reader": self.reader,
            "writer": self.writer,
            "inputs": self.inputs.iter().map(|f| serde_json::json!({"source": f.source, "size": f.size})).collect::<Vec<_>>(),
        })
    }
}

pub use crate::job::StepReport;

/// What a call to [`run`] did.
#[derive(Clone, Debug, Serialize)]
pub struct MinhashReport {
    pub steps: Vec<StepReport>,
    pub clusters: ClusterSummary,
    pub stats: RunStats,
}

crate::job::impl_sharded_input!(MinhashJob);

impl MultiStepJob for MinhashJob {
    type Error = MinhashError;
    type Shared = ();
    type Report = MinhashReport;

    fn what(&self) -> String {
        "MinHash run".into()
    }

    fn dir(&self) -> PathBuf {
        self.output.join(MINHASH_DIR)
    }

    fn steps(&self) -> &'static [&'static str] {
        &STEPS
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn fingerprint(&self) -> serde_json::Value {
        MinhashJob::fingerprint(self)
    }

    fn validate(&self) -> Result<()> {
        self.config.validate()?;
        job::check_sharding(self.inputs.len(), self.tasks, self.workers)
            .map_err(MinhashError::Config)?;
        Ok(())
    }

    /// The signatures and filter steps: `tasks`; buckets: one per band;
    /// clusters: one.
    fn ranks(&self, step: usize) -> usize {
        match step {
            0 | 3 => self.tasks,
            1 => self.config.bands,
            _ => 1,
        }
    }

    fn plan(&self, step: usize) -> Result<(usize, ())> {
        Ok((self.ranks(step), ()))
    }

    fn run_task(&self, step: usize, _: &(), t: usize, cancel: &AtomicBool) -> Result<()> {
        match step {
            0 => signatures::run_task(self, t, cancel),
            1 => buckets::run_task(self, t, cancel),
            2 => clusters::run_task(self, cancel),
            _ => filter::run_task(self, t, cancel),
        }
    }

    /// Merges the filter step's stats into `stats.json` and loads the
    /// cluster summary.
    fn report(&self, steps: Vec<StepReport>) -> Result<MinhashReport> {
        let stats = filter::merge(self)?;
        let clusters = clusters::load_summary(self)?;
        Ok(MinhashReport {
            steps,
            clusters,
            stats,
        })
    }
}

crate::job::job_functions!(MinhashJob, MinhashReport);

/// Reads `DIR/minhash/params.json` (for `explain`).
pub fn load_params(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join(MINHASH_DIR).join(PARAMS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| MinhashError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?)
}

fn remove_prefixed(dir: &Path, prefix: &str) -> Result<()> {
    Ok(crate::fsutil::remove_prefixed(dir, prefix)?)
}

fn cancelled(cancel: &AtomicBool) -> Result<()> {
    Ok(crate::fsutil::cancelled(cancel)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_thresholds() {
        let f = MinhashConfig::fineweb();
        assert_eq!((f.ngram, f.bands, f.rows), (5, 14, 8));
        assert!((f.threshold() - 0.719).abs() < 0.01, "{}", f.threshold());
        let r = MinhashConfig::refinedweb();
        assert_eq!(r.bands * r.rows, 9000);
        assert!((r.threshold() - 0.737).abs() < 0.01, "{}", r.threshold());
        let l = MinhashConfig::refinedweb_literal();
        assert!(l.threshold() > 0.99);
        assert!(f.probability(0.9) > 0.99 && f.probability(0.3) < 0.001);
        for p in MinhashConfig::PRESETS {
            MinhashConfig::preset(p).unwrap().validate().unwrap();
        }
        assert!(MinhashConfig { bands: 0, ..f }.validate().is_err());
        let k = DocKey { file: 3, doc: 9 };
        assert_eq!(DocKey::unpack(k.pack()), k);
        assert!(
            DocKey { file: 1, doc: 0 }.pack()
                > DocKey {
                    file: 0,
                    doc: u32::MAX
                }
                .pack()
        );
    }
}

//! Step 1: per task, the band hashes of every document, as sorted runs per
//! band, and the document ids of each input file.

use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::readers::Item;
use refinery_corpus::writers::write_atomic;
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use super::format::{Kind, RecordWriter};
use super::{remove_prefixed, MinHasher, MinhashError, MinhashJob, Result};

pub(super) const STEP: &str = "signatures";
pub(super) const IDS_DIR: &str = "ids";
const STATS_DIR: &str = "stats";

/// Hash of a document's group: the value of metadata field `field` (a string as is, any
/// other JSON value as its JSON text; missing = `""`).
pub(super) fn group_salt(metadata: &refinery_corpus::Metadata, field: &str) -> u64 {
    let typed = match field {
        "url" => metadata.url.clone(),
        "date" => metadata.date.clone(),
        "lang" => metadata.lang.clone(),
        "content_type" => metadata.content_type.clone(),
        "charset" => metadata.charset.clone(),
        _ => None,
    };
    let value = typed.unwrap_or_else(|| match metadata.get(field) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    });
    // A fixed, non-zero offset so that the group "" is salted too.
    xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), 0x6772_6f75_7073)
}

/// `signatures/band_BBB`.
pub(super) fn band_dir(job: &MinhashJob, band: usize) -> std::path::PathBuf {
    job.step_dir(STEP).join(format!("band_{band:03}"))
}

/// `signatures/ids/FFFFF.bin`.
pub(super) fn ids_path(dir: &std::path::Path, file: usize) -> std::path::PathBuf {
    dir.join(super::MINHASH_DIR)
        .join(STEP)
        .join(IDS_DIR)
        .join(format!("{file:05}.bin"))
}

/// Counters of one signatures task (`signatures/stats/TTTTT.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SignatureStats {
    pub docs: u64,
    /// Documents with at least one shingle (the others are never removed).
    pub signed: u64,
    /// Documents with fewer than `ngram` words after normalization.
    pub too_short: u64,
    pub runs: u64,
}

struct Runs<'a> {
    job: &'a MinhashJob,
    task: usize,
    buffers: Vec<Vec<(u64, u64)>>,
    buffered: usize,
    next_run: usize,
}

impl Runs<'_> {
    fn spill(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        if self.next_run > 9999 {
            return Err(MinhashError::Config(format!(
                "task {}: more than 10000 signature runs; raise the buffer size or the task count",
                self.task
            )));
        }
        for (band, buf) in self.buffers.iter_mut().enumerate() {
            buf.sort_unstable();
            let path =
                band_dir(self.job, band).join(format!("{:05}_{:04}.bin", self.task, self.next_run));
            let mut w = RecordWriter::create(&path, Kind::Signatures)?;
            for &(hash, key) in buf.iter() {
                w.push_pair(hash, key)?;
            }
            w.finish()?;
            buf.clear();
        }
        self.next_run += 1;
        self.buffered = 0;
        Ok(())
    }
}

pub(super) fn run_task(job: &MinhashJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    let step = job.step_dir(STEP);
    let name = format!("{task:05}");
    // Clean what an unfinished attempt left.
    for band in 0..job.config.bands {
        remove_prefixed(&band_dir(job, band), &format!("{name}_"))?;
    }
    for (f, _) in job.task_files(task) {
        remove_prefixed(&step.join(IDS_DIR), &format!("{f:05}."))?;
    }
    remove_prefixed(&step.join(STATS_DIR), &format!("{name}."))?;

    let mut hasher = MinHasher::new(&job.config);
    let mut bands = Vec::with_capacity(job.config.bands);
    let mut runs = Runs {
        job,
        task,
        buffers: vec![Vec::new(); job.config.bands],
        buffered: 0,
        next_run: 0,
    };
    let limit = job.sig_buffer_records.max(job.config.bands);
    let mut stats = SignatureStats::default();
    for (f, _, docs) in crate::job::task_docs(job, task, cancel) {
        let mut ids = RecordWriter::create(&ids_path(&job.output, f), Kind::Ids)?;
        for keyed in docs {
            let (key, item) = keyed?;
            let Item::Doc(d) = item else { continue };
            let key = key.pack();
            ids.push_id(&d.id)?;
            stats.docs += 1;
            if hasher.band_hashes(&d.text, &mut bands) {
                stats.signed += 1;
                if let Some(field) = &job.group_by {
                    // Documents of different groups get disjoint band hashes (up to 2^-64
                    // collisions), so they never share a bucket and never pair.
                    let salt = group_salt(&d.metadata, field);
                    bands.iter_mut().for_each(|h| *h ^= salt);
                }
                for (buf, &h) in runs.buffers.iter_mut().zip(&bands) {
                    buf.push((h, key));
                }
                runs.buffered += bands.len();
                if runs.buffered >= limit {
                    runs.spill()?;
                }
            } else {
                stats.too_short += 1;
            }
        }
        ids.finish()?;
    }
    runs.spill()?;
    stats.runs = runs.next_run as u64;
    let path = step.join(STATS_DIR).join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&step, task)?)
}

/// Sums the per-task counters of a complete signatures step.
pub(super) fn load_stats(job: &MinhashJob) -> Result<SignatureStats> {
    let mut total = SignatureStats::default();
    for t in 0..job.tasks {
        let path = job
            .step_dir(STEP)
            .join(STATS_DIR)
            .join(format!("{t:05}.json"));
        let bytes = std::fs::read(&path).map_err(|e| MinhashError::Io {
            path: path.clone(),
            source: e,
        })?;
        let s: SignatureStats =
            serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?;
        total.docs += s.docs;
        total.signed += s.signed;
        total.too_short += s.too_short;
        total.runs += s.runs;
    }
    Ok(total)
}

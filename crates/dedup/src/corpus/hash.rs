//! Step 1: per task, the keys of every document (exact, urls) or the counts
//! of every distinct line (lines), as sorted runs per hash partition.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::readers::Item;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::format::{KeyRecord, Kind, RecordWriter};
use super::normal::{newest_rank, normalize_url, segments, SegmentHasher};
use super::{
    partition, remove_prefixed, write_json, CorpusDedupError, CorpusDedupJob, Keep, Method, Result,
};

pub(super) const STEP: &str = "hash";
const STATS_DIR: &str = "stats";

/// `hash/part_PPP`.
pub(super) fn part_dir(job: &CorpusDedupJob, p: usize) -> PathBuf {
    job.step_dir(STEP).join(format!("part_{p:03}"))
}

/// `hash/stats/TTTTT.json`.
pub(super) fn stats_path(job: &CorpusDedupJob, task: usize) -> PathBuf {
    job.step_dir(STEP)
        .join(STATS_DIR)
        .join(format!("{task:05}.json"))
}

/// Counters of one hash task.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HashStats {
    pub docs: u64,
    /// Documents with a key (exact: all; urls: those with a URL).
    pub keyed: u64,
    pub no_url: u64,
    /// lines: non-blank segments.
    pub segments: u64,
    /// Sorted runs written (over all partitions).
    pub runs: u64,
    /// Documents per input file index: the filter step checks them.
    pub files: BTreeMap<usize, u64>,
}

/// Bytes a buffered key record costs: the record, the `String` and the id.
const KEY_OVERHEAD: usize = std::mem::size_of::<KeyRecord>();
/// Bytes per distinct line in the count map (entry + control byte, at a
/// typical load factor).
const COUNT_ENTRY: usize = 40;

struct Spill<'a> {
    job: &'a CorpusDedupJob,
    task: usize,
    next_run: usize,
    runs: u64,
}

impl Spill<'_> {
    fn path(&mut self, p: usize) -> Result<PathBuf> {
        if self.next_run > 9999 {
            return Err(CorpusDedupError::Config(format!(
                "task {}: more than 10000 sorted runs; raise --buffer-mb or the task count",
                self.task
            )));
        }
        Ok(part_dir(self.job, p).join(format!("{:05}_{:04}.bin", self.task, self.next_run)))
    }

    /// Writes one run per non-empty partition.
    fn keys(&mut self, parts: &mut [Vec<KeyRecord>]) -> Result<()> {
        if parts.iter().all(|p| p.is_empty()) {
            return Ok(());
        }
        for (p, buf) in parts.iter_mut().enumerate() {
            if buf.is_empty() {
                continue;
            }
            buf.sort_unstable();
            let mut w = RecordWriter::create(&self.path(p)?, Kind::Keys)?;
            for r in buf.iter() {
                w.push_key(r)?;
            }
            w.finish()?;
            self.runs += 1;
            buf.clear();
        }
        self.next_run += 1;
        Ok(())
    }

    fn counts(&mut self, counts: &mut FxHashMap<u128, u64>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut parts: Vec<Vec<(u128, u64)>> = vec![Vec::new(); self.job.partitions];
        for (h, c) in counts.drain() {
            parts[partition(h, self.job.partitions)].push((h, c));
        }
        for (p, mut buf) in parts.into_iter().enumerate() {
            if buf.is_empty() {
                continue;
            }
            buf.sort_unstable();
            let mut w = RecordWriter::create(&self.path(p)?, Kind::Counts)?;
            for (h, c) in buf {
                w.push_count(h, c)?;
            }
            w.finish()?;
            self.runs += 1;
        }
        self.next_run += 1;
        Ok(())
    }
}

pub(super) fn run_task(job: &CorpusDedupJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    let name = format!("{task:05}");
    // Clean what an unfinished attempt left.
    for p in 0..job.partitions {
        remove_prefixed(&part_dir(job, p), &format!("{name}_"))?;
    }
    let stats_file = stats_path(job, task);
    if let Some(dir) = stats_file.parent() {
        remove_prefixed(dir, &format!("{name}."))?;
    }

    let mut spill = Spill {
        job,
        task,
        next_run: 0,
        runs: 0,
    };
    let mut hasher = SegmentHasher::new(job.normalize);
    let mut parts: Vec<Vec<KeyRecord>> = vec![Vec::new(); job.partitions];
    let mut counts: FxHashMap<u128, u64> = FxHashMap::default();
    let mut buffered = 0usize;
    let limit = job.buffer_bytes.max(1);
    let mut stats = HashStats::default();

    for (f, _, mut docs) in crate::job::task_docs(job, task, cancel) {
        for keyed in docs.by_ref() {
            let (key, item) = keyed?;
            let Item::Doc(d) = item else { continue };
            let key = key.pack();
            stats.docs += 1;
            let (hash, rank) = match &job.method {
                Method::Exact => (hasher.text(&d.text), 0),
                Method::Urls { keep } => {
                    let Some(url) = d.metadata.url.as_deref().and_then(normalize_url) else {
                        stats.no_url += 1;
                        continue;
                    };
                    let rank = match keep {
                        Keep::First => 0,
                        Keep::Newest => newest_rank(d.metadata.date.as_deref()),
                    };
                    (xxhash_rust::xxh3::xxh3_128(url.as_bytes()), rank)
                }
                Method::Lines { unit, .. } => {
                    for s in segments(&d.text, *unit) {
                        if let Some(h) = hasher.segment(&d.text[s.start..s.content_end]) {
                            stats.segments += 1;
                            let c = counts.entry(h).or_insert(0);
                            if *c == 0 {
                                buffered += COUNT_ENTRY;
                            }
                            *c += 1;
                        }
                    }
                    if buffered >= limit {
                        spill.counts(&mut counts)?;
                        buffered = 0;
                    }
                    continue;
                }
            };
            stats.keyed += 1;
            buffered += KEY_OVERHEAD + d.id.len();
            parts[partition(hash, job.partitions)].push(KeyRecord {
                hash,
                rank,
                key,
                id: d.id,
            });
            if buffered >= limit {
                spill.keys(&mut parts)?;
                buffered = 0;
            }
        }
        stats.files.insert(f, docs.docs());
    }
    spill.keys(&mut parts)?;
    spill.counts(&mut counts)?;
    stats.runs = spill.runs;
    write_json(&stats_file, &stats)?;
    Ok(mark_step_complete(&job.step_dir(STEP), task)?)
}

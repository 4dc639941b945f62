//! Step 2: per hash partition, merge the sorted runs of every task and
//! decide: which documents are removed (exact, urls), or which lines occur
//! more than `max_occurrences` times (lines).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use super::format::{KeyRecord, Kind, RecordReader, RecordWriter, Removal};
use super::hash::part_dir;
use super::{
    cancelled, remove_prefixed, write_json, CorpusDedupError, CorpusDedupJob, DocKey, Method,
    Result,
};

pub(super) const STEP: &str = "decide";
const STATS_DIR: &str = "stats";

/// `decide/remove_PPP_TTTTT.bin`: removals of partition `p` in the files of
/// filter task `t`, sorted by key.
pub(super) fn removals_path(job: &CorpusDedupJob, p: usize, t: usize) -> PathBuf {
    job.step_dir(STEP).join(format!("remove_{p:03}_{t:05}.bin"))
}

/// `decide/dups_PPP.bin`.
pub(super) fn dups_path(job: &CorpusDedupJob, p: usize) -> PathBuf {
    job.step_dir(STEP).join(format!("dups_{p:03}.bin"))
}

/// `decide/stats/PPP.json`.
pub(super) fn stats_path(job: &CorpusDedupJob, p: usize) -> PathBuf {
    job.step_dir(STEP)
        .join(STATS_DIR)
        .join(format!("{p:03}.json"))
}

/// Counters of one partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DecideStats {
    /// Records merged (exact/urls: documents; lines: per-task counts).
    pub records: u64,
    /// Distinct hashes.
    pub distinct: u64,
    /// Hashes held by more than one document (exact/urls) or seen more than
    /// `max_occurrences` times (lines).
    pub duplicated: u64,
    /// exact/urls: documents removed.
    pub removed: u64,
    /// Estimated peak bytes of the removal list.
    pub removal_list_bytes: u64,
}

/// The run files of a partition (`TTTTT_RRRR.bin`), sorted by name.
fn run_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CorpusDedupError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CorpusDedupError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".bin") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn unsorted(path: &Path) -> CorpusDedupError {
    CorpusDedupError::Corrupt {
        path: path.to_path_buf(),
        message: "records are not sorted, or a document appears twice".into(),
    }
}

pub(super) fn run_task(job: &CorpusDedupJob, p: usize, cancel: &AtomicBool) -> Result<()> {
    let step = job.step_dir(STEP);
    remove_prefixed(&step, &format!("remove_{p:03}_"))?;
    remove_prefixed(&step, &format!("dups_{p:03}."))?;
    let stats = match job.method {
        Method::Lines {
            max_occurrences, ..
        } => merge_counts(job, p, max_occurrences, cancel)?,
        _ => merge_keys(job, p, cancel)?,
    };
    write_json(&stats_path(job, p), &stats)?;
    Ok(mark_step_complete(&step, p)?)
}

/// exact/urls: k-way merge by (hash, rank, key); the first record of each
/// hash is kept, the others are removed in its favour.
fn merge_keys(job: &CorpusDedupJob, p: usize, cancel: &AtomicBool) -> Result<DecideStats> {
    let mut readers = Vec::new();
    for path in run_files(&part_dir(job, p))? {
        readers.push(RecordReader::open(&path, Kind::Keys)?);
    }
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(rec) = r.next_key()? {
            heap.push(Reverse((rec, i)));
        }
    }
    let mut stats = DecideStats::default();
    let mut removals: Vec<Removal> = Vec::new();
    let mut kept: Option<KeyRecord> = None;
    let mut group_len = 0u64;
    let mut last: Option<(u128, u64, u64)> = None;
    while let Some(Reverse((rec, i))) = heap.pop() {
        stats.records += 1;
        if stats.records % 65536 == 0 {
            cancelled(cancel)?;
        }
        let order = (rec.hash, rec.rank, rec.key);
        if last.is_some_and(|l| l >= order) {
            return Err(unsorted(readers[i].path()));
        }
        last = Some(order);
        if let Some(next) = readers[i].next_key()? {
            heap.push(Reverse((next, i)));
        }
        match &kept {
            Some(k) if k.hash == rec.hash => {
                if DocKey::unpack(rec.key) == DocKey::unpack(k.key) {
                    return Err(unsorted(readers[i].path()));
                }
                group_len += 1;
                if group_len == 2 {
                    stats.duplicated += 1;
                }
                stats.removal_list_bytes += (std::mem::size_of::<Removal>() + k.id.len()) as u64;
                removals.push(Removal {
                    key: rec.key,
                    kept: k.key,
                    kept_id: k.id.clone(),
                });
            }
            _ => {
                stats.distinct += 1;
                group_len = 1;
                kept = Some(rec);
            }
        }
    }
    stats.removed = removals.len() as u64;
    removals.sort_unstable_by_key(|r| r.key);
    let mut writers = Vec::with_capacity(job.tasks);
    for t in 0..job.tasks {
        writers.push(RecordWriter::create(
            &removals_path(job, p, t),
            Kind::Removals,
        )?);
    }
    for r in &removals {
        let file = DocKey::unpack(r.key).file as usize;
        writers[job.task_of_file(file)].push_removal(r)?;
    }
    for w in writers {
        w.finish()?;
    }
    Ok(stats)
}

/// lines: k-way merge of (hash, count) runs; hashes whose summed count is
/// above `max` are written.
fn merge_counts(
    job: &CorpusDedupJob,
    p: usize,
    max: u64,
    cancel: &AtomicBool,
) -> Result<DecideStats> {
    let mut readers = Vec::new();
    for path in run_files(&part_dir(job, p))? {
        readers.push(RecordReader::open(&path, Kind::Counts)?);
    }
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some((h, c)) = r.next_count()? {
            heap.push(Reverse((h, i, c)));
        }
    }
    let mut out = RecordWriter::create(&dups_path(job, p), Kind::Dups)?;
    let mut stats = DecideStats::default();
    let mut current: Option<(u128, u64)> = None;
    let mut last_of: Vec<Option<u128>> = vec![None; readers.len()];
    let mut flush = |cur: Option<(u128, u64)>, stats: &mut DecideStats| -> Result<()> {
        if let Some((h, total)) = cur {
            stats.distinct += 1;
            if total > max {
                stats.duplicated += 1;
                out.push_hash(h)?;
            }
        }
        Ok(())
    };
    while let Some(Reverse((h, i, c))) = heap.pop() {
        stats.records += 1;
        if stats.records % 65536 == 0 {
            cancelled(cancel)?;
        }
        if last_of[i].is_some_and(|l| l >= h) {
            return Err(unsorted(readers[i].path()));
        }
        last_of[i] = Some(h);
        if let Some((h2, c2)) = readers[i].next_count()? {
            heap.push(Reverse((h2, i, c2)));
        }
        match &mut current {
            Some((ch, total)) if *ch == h => *total += c,
            _ => {
                flush(current.take(), &mut stats)?;
                current = Some((h, c));
            }
        }
    }
    flush(current.take(), &mut stats)?;
    out.finish()?;
    Ok(stats)
}

/// Loads the duplicated hashes of every partition (the filter step of line
/// dedup): 16 bytes per hash plus the set's overhead.
pub(super) fn load_dups(job: &CorpusDedupJob) -> Result<FxHashSet<u128>> {
    let mut set = FxHashSet::default();
    for p in 0..job.partitions {
        let path = dups_path(job, p);
        let mut r = RecordReader::open(&path, Kind::Dups)?;
        set.reserve(r.count().min(1 << 24) as usize);
        let mut last = None;
        while let Some(h) = r.next_hash()? {
            if last.is_some_and(|l| l >= h) {
                return Err(unsorted(&path));
            }
            last = Some(h);
            set.insert(h);
        }
    }
    Ok(set)
}

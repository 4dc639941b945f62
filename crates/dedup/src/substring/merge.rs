//! Step 3: k-way merge of the shards' sorted suffixes; groups of suffixes
//! sharing their first `min_len` units are the repeated windows.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::writers::write_atomic;
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use super::format::{self, Kind, Mark, RecordWriter, SuffixReader, UnitsMap};
use super::suffixes::shard_path;
use super::{cancelled, remove_prefixed, Keep, Plan, Result, SubstringError, SubstringJob, STEPS};

const SUMMARY_FILE: &str = "summary.json";

/// Counts of the merge step (`merge/summary.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeSummary {
    pub docs: u64,
    pub units: u64,
    pub shards: u64,
    /// Units of the largest shard (the suffixes step's memory is about 20
    /// bytes per unit of it).
    pub max_shard_units: u64,
    /// Windows of `min_len` units inside one document (suffixes merged).
    pub windows: u64,
    /// Distinct windows occurring at least twice.
    pub repeated_windows: u64,
    /// Occurrences of those windows.
    pub repeated_occurrences: u64,
    /// Units removed (before byte ranges are shrunk to char boundaries).
    pub units_removed: u64,
    /// Documents with at least one removed range.
    pub docs_touched: u64,
    /// Bytes of the two position bitmaps of the merge.
    pub bitmap_bytes: u64,
}

pub(super) fn marks_path(job: &SubstringJob, file: usize) -> std::path::PathBuf {
    job.step_dir(STEPS[2]).join(format!("marks_{file:05}.bin"))
}

struct Head<'a> {
    key: &'a [u8],
    g: u64,
    stream: usize,
}

impl PartialEq for Head<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head<'_> {}
impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(o.key).then(self.stream.cmp(&o.stream))
    }
}

/// Reads suffixes of one shard and turns them into keys in the mapped text.
struct Stream<'a> {
    reader: SuffixReader,
    path: std::path::PathBuf,
    g0: u64,
    len: u64,
    maps: &'a [UnitsMap],
    bases: &'a [u64],
    key_bytes: usize,
    width: usize,
    last: Option<&'a [u8]>,
}

impl<'a> Stream<'a> {
    fn next(&mut self, stream: usize) -> Result<Option<Head<'a>>> {
        let Some(off) = self.reader.next_offset()? else {
            return Ok(None);
        };
        let bad = |m: String| format::corrupt(&self.path, m);
        if off as u64 >= self.len {
            return Err(bad(format!(
                "suffix {off} outside the shard's {} units",
                self.len
            )));
        }
        let g = self.g0 + off as u64;
        let f = self.bases.partition_point(|&b| b <= g) - 1;
        let at = (g - self.bases[f]) as usize * self.width;
        let key = self
            .maps
            .get(f)
            .and_then(|m| m.bytes().get(at..at + self.key_bytes))
            .ok_or_else(|| bad(format!("suffix {off} runs past its units file")))?;
        if self.last.is_some_and(|l| l > key) {
            return Err(bad("suffixes are not sorted".into()));
        }
        self.last = Some(key);
        Ok(Some(Head { key, g, stream }))
    }
}

fn set(bits: &mut [u64], g: u64) {
    bits[(g / 64) as usize] |= 1 << (g % 64);
}

pub(super) fn run_task(job: &SubstringJob, plan: &Plan, cancel: &AtomicBool) -> Result<()> {
    let dir = job.step_dir(STEPS[2]);
    remove_prefixed(&dir, "marks_")?;
    remove_prefixed(&dir, SUMMARY_FILE)?;
    let kind = job.unit_kind();
    let width = kind.record_len();
    let l = job.config.min_len as u64;
    let total = plan.bases.last().copied().unwrap_or(0);
    let mut maps = Vec::with_capacity(job.inputs.len());
    for f in 0..job.inputs.len() {
        let m = UnitsMap::open(&job.units_path(f), kind)?;
        if m.count() != plan.bases[f + 1] - plan.bases[f] {
            return Err(format::corrupt(
                &job.units_path(f),
                format!(
                    "{} units, the docs file says {}",
                    m.count(),
                    plan.bases[f + 1] - plan.bases[f]
                ),
            ));
        }
        maps.push(m);
    }
    let mut streams = Vec::with_capacity(plan.shards.len());
    for (s, shard) in plan.shards.iter().enumerate() {
        let path = shard_path(job, s);
        streams.push(Stream {
            reader: SuffixReader::open(&path)?,
            path,
            g0: shard.g0,
            len: shard.g1 - shard.g0,
            maps: &maps,
            bases: &plan.bases,
            key_bytes: job.config.min_len * width,
            width,
            last: None,
        });
    }
    let words = total.div_ceil(64) as usize;
    // Starts of the windows to remove.
    let mut removed = vec![0u64; words];
    let mut summary = MergeSummary {
        docs: plan.docs,
        units: total,
        shards: plan.shards.len() as u64,
        max_shard_units: plan.shards.iter().map(|s| s.g1 - s.g0).max().unwrap_or(0),
        bitmap_bytes: 8 * removed.len() as u64,
        ..MergeSummary::default()
    };

    let mut heap = BinaryHeap::with_capacity(streams.len());
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some(h) = s.next(i)? {
            heap.push(Reverse(h));
        }
    }
    let mut group: Vec<u64> = Vec::new();
    let mut group_key: &[u8] = &[];
    let mut flush = |group: &mut Vec<u64>, summary: &mut MergeSummary| {
        if group.len() >= 2 {
            summary.repeated_windows += 1;
            summary.repeated_occurrences += group.len() as u64;
            let first = group.iter().copied().min().unwrap_or(0);
            for &g in group.iter() {
                if g != first || job.config.keep == Keep::None {
                    set(&mut removed, g);
                }
            }
        }
        group.clear();
    };
    let mut n: u64 = 0;
    while let Some(Reverse(h)) = heap.pop() {
        n += 1;
        if n % (1 << 20) == 0 {
            cancelled(cancel)?;
        }
        if group.is_empty() || h.key != group_key {
            flush(&mut group, &mut summary);
            group_key = h.key;
        }
        group.push(h.g);
        if let Some(next) = streams[h.stream].next(h.stream)? {
            heap.push(Reverse(next));
        }
    }
    flush(&mut group, &mut summary);
    summary.windows = n;
    drop(streams);
    drop(maps);

    // Per file: the removed unit ranges of each document.
    for f in 0..job.inputs.len() {
        cancelled(cancel)?;
        let lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let mut w = RecordWriter::create(&marks_path(job, f), Kind::Marks)?;
        let mut g = plan.bases[f];
        for (d, &len) in lens.iter().enumerate() {
            let ranges = doc_ranges(&removed, l, g, g + len);
            if !ranges.is_empty() {
                summary.docs_touched += 1;
            }
            for (s, e) in ranges {
                summary.units_removed += e - s;
                w.push(
                    &Mark {
                        doc: d as u32,
                        start: (s - g) as u32,
                        end: (e - g) as u32,
                    }
                    .to_bytes(),
                )?;
            }
            g += len;
        }
        w.finish()?;
    }
    let path = dir.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&dir, 0)?)
}

/// The maximal ranges of `start..end` covered by a removed window (one
/// starting at a set bit of `removed`, `l` units long).
fn doc_ranges(removed: &[u64], l: u64, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut q = start;
    while q < end {
        let w = (q / 64) as usize;
        let bits = removed[w] >> (q % 64);
        if bits == 0 {
            q = ((w as u64 + 1) * 64).min(end);
            continue;
        }
        q += bits.trailing_zeros() as u64;
        if q >= end {
            break;
        }
        // A window at q: extend the last range or open a new one.
        let e = (q + l).min(end);
        match out.last_mut() {
            Some(last) if last.1 >= q => last.1 = last.1.max(e),
            _ => out.push((q, e)),
        }
        q += 1;
    }
    out
}

pub(super) fn load_summary(job: &SubstringJob) -> Result<MergeSummary> {
    let path = job.step_dir(STEPS[2]).join(SUMMARY_FILE);
    let bytes = std::fs::read(&path).map_err(|e| SubstringError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?)
}

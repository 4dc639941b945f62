//! Step 3: k-way merge of the shards' sorted suffixes; groups of suffixes
//! sharing their first `min_len` units are the repeated windows.
//!
//! Memory is bounded by `merge_memory_bytes`, whatever the corpus size:
//! the shards are read through buffered readers (at most a quarter of the
//! budget in all), a group is never held (only its smallest position and
//! its size), and the starts of the windows to remove go to a buffer of
//! half the budget that is sorted and spilled to `merge/.run_NNNNN.bin`
//! when full; the runs are then k-way merged into the per-file marks. The
//! keys are compared in the memory-mapped units files: those pages are
//! page cache (file-backed, reclaimable by the kernel), not heap.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::writers::write_atomic;
use refinery_corpus::CorpusError;
use serde::{Deserialize, Serialize};

use super::format::{self, io, Kind, Mark, RecordWriter, SuffixReader, UnitsMap};
use super::suffixes::shard_path;
use super::{cancelled, remove_prefixed, Keep, Plan, Result, SubstringError, SubstringJob, STEPS};

const SUMMARY_FILE: &str = "summary.json";

/// Counts of the merge step (`merge/summary.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Bytes of the buffer of removed window starts (half the budget,
    /// at most 8 per window of the corpus).
    pub buffer_bytes: u64,
    /// Sorted runs of removed window starts spilled to disk (0: the buffer
    /// held them all).
    pub spill_runs: u64,
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

/// Starts of the windows to remove: a buffer of at most `cap` positions,
/// sorted and spilled to a run file whenever it fills.
struct Spill {
    dir: PathBuf,
    buf: Vec<u64>,
    cap: usize,
    runs: Vec<PathBuf>,
}

impl Spill {
    fn push(&mut self, g: u64) -> Result<()> {
        self.buf.push(g);
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.buf.sort_unstable();
        let path = self
            .dir
            .join(format!("{RUN_PREFIX}{:05}.bin", self.runs.len()));
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        for g in &self.buf {
            out.write_all(&g.to_le_bytes()).map_err(|e| io(&path, e))?;
        }
        out.flush().map_err(|e| io(&path, e))?;
        self.buf.clear();
        self.runs.push(path);
        Ok(())
    }

    /// All positions pushed, in increasing order.
    fn finish(mut self, read_budget: usize) -> Result<Positions> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            return Ok(Positions::Memory(self.buf.into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        let cap = (read_budget / self.runs.len()).clamp(4 << 10, 1 << 20);
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for (i, path) in self.runs.iter().enumerate() {
            let file = File::open(path).map_err(|e| io(path, e))?;
            let mut r = BufReader::with_capacity(cap, file);
            if let Some(g) = read_u64(&mut r, path)? {
                heap.push(Reverse((g, i)));
            }
            readers.push(r);
        }
        Ok(Positions::Runs {
            heap,
            readers,
            paths: self.runs,
        })
    }
}

const RUN_PREFIX: &str = ".run_";

fn read_u64(r: &mut BufReader<File>, path: &Path) -> Result<Option<u64>> {
    let mut b = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut b[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(format::corrupt(path, "truncated run")),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, e)),
        }
    }
    Ok(Some(u64::from_le_bytes(b)))
}

enum Positions {
    Memory(std::vec::IntoIter<u64>),
    Runs {
        heap: BinaryHeap<Reverse<(u64, usize)>>,
        readers: Vec<BufReader<File>>,
        paths: Vec<PathBuf>,
    },
}

impl Positions {
    fn next(&mut self) -> Result<Option<u64>> {
        match self {
            Positions::Memory(it) => Ok(it.next()),
            Positions::Runs {
                heap,
                readers,
                paths,
            } => {
                let Some(Reverse((g, i))) = heap.pop() else {
                    return Ok(None);
                };
                if let Some(next) = read_u64(&mut readers[i], &paths[i])? {
                    heap.push(Reverse((next, i)));
                }
                Ok(Some(g))
            }
        }
    }
}

pub(super) fn run_task(job: &SubstringJob, plan: &Plan, cancel: &AtomicBool) -> Result<()> {
    let dir = job.step_dir(STEPS[2]);
    remove_prefixed(&dir, "marks_")?;
    remove_prefixed(&dir, SUMMARY_FILE)?;
    remove_prefixed(&dir, RUN_PREFIX)?;
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let kind = job.unit_kind();
    let width = kind.record_len();
    let l = job.config.min_len as u64;
    let total = plan.bases.last().copied().unwrap_or(0);
    // The budget: half for the positions buffer, a quarter for the shard
    // readers, a quarter for merging the spilled runs.
    let budget = job.merge_memory_bytes.max(16) as usize;
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
    let read_cap = (budget / 4 / plan.shards.len().max(1)).clamp(4 << 10, 256 << 10);
    let mut streams = Vec::with_capacity(plan.shards.len());
    for (s, shard) in plan.shards.iter().enumerate() {
        let path = shard_path(job, s);
        streams.push(Stream {
            reader: SuffixReader::open_with_capacity(&path, read_cap)?,
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
    let cap = (budget / 2 / 8).max(1);
    let mut spill = Spill {
        dir: dir.clone(),
        buf: Vec::with_capacity(cap.min(1 << 20)),
        cap,
        runs: Vec::new(),
    };
    let mut summary = MergeSummary {
        docs: plan.docs,
        units: total,
        shards: plan.shards.len() as u64,
        max_shard_units: plan.shards.iter().map(|s| s.g1 - s.g0).max().unwrap_or(0),
        buffer_bytes: 8 * cap as u64,
        ..MergeSummary::default()
    };

    let mut heap = BinaryHeap::with_capacity(streams.len());
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some(h) = s.next(i)? {
            heap.push(Reverse(h));
        }
    }
    // The current group: its key, size and smallest position. Every other
    // position goes to the spill at once, so a group costs O(1) memory.
    let mut group_key: &[u8] = &[];
    let mut group_len: u64 = 0;
    let mut group_min: u64 = 0;
    let keep_none = job.config.keep == Keep::None;
    let mut n: u64 = 0;
    while let Some(Reverse(h)) = heap.pop() {
        n += 1;
        if n % (1 << 20) == 0 {
            cancelled(cancel)?;
        }
        if group_len > 0 && h.key == group_key {
            group_len += 1;
            let later = group_min.max(h.g);
            group_min = group_min.min(h.g);
            spill.push(later)?;
        } else {
            end_group(&mut spill, &mut summary, group_len, group_min, keep_none)?;
            group_key = h.key;
            group_len = 1;
            group_min = h.g;
        }
        if let Some(next) = streams[h.stream].next(h.stream)? {
            heap.push(Reverse(next));
        }
    }
    end_group(&mut spill, &mut summary, group_len, group_min, keep_none)?;
    summary.windows = n;
    summary.spill_runs = spill.runs.len() as u64;
    drop(streams);
    drop(maps);

    // Per file: the removed unit ranges of each document, from the sorted
    // window starts.
    let mut positions = spill.finish(budget / 4)?;
    let mut next = positions.next()?;
    for f in 0..job.inputs.len() {
        cancelled(cancel)?;
        let lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let mut w = RecordWriter::create(&marks_path(job, f), Kind::Marks)?;
        let mut g = plan.bases[f];
        for (d, &len) in lens.iter().enumerate() {
            let end = g + len;
            let mut range: Option<(u64, u64)> = None;
            let mut touched = false;
            while let Some(p) = next.filter(|&p| p < end) {
                if p < g {
                    return Err(format::corrupt(
                        &dir,
                        format!("window start {p} outside every document"),
                    ));
                }
                let e = (p + l).min(end);
                match &mut range {
                    Some(r) if r.1 >= p => r.1 = r.1.max(e),
                    _ => {
                        if let Some((s, e)) = range.take() {
                            push_mark(&mut w, &mut summary, d, g, s, e)?;
                        }
                        range = Some((p, e));
                        touched = true;
                    }
                }
                next = positions.next()?;
            }
            if let Some((s, e)) = range {
                push_mark(&mut w, &mut summary, d, g, s, e)?;
            }
            summary.docs_touched += u64::from(touched);
            g = end;
        }
        w.finish()?;
    }
    if let Positions::Runs { paths, .. } = positions {
        for p in paths {
            std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
        }
    }
    let path = dir.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&dir, 0)?)
}

/// Closes a group of `len` suffixes with equal keys: with `keep_none`, its
/// smallest position goes too (the others already went).
fn end_group(
    spill: &mut Spill,
    summary: &mut MergeSummary,
    len: u64,
    min: u64,
    keep_none: bool,
) -> Result<()> {
    if len >= 2 {
        summary.repeated_windows += 1;
        summary.repeated_occurrences += len;
        if keep_none {
            spill.push(min)?;
        }
    }
    Ok(())
}

fn push_mark(
    w: &mut RecordWriter,
    summary: &mut MergeSummary,
    doc: usize,
    g: u64,
    s: u64,
    e: u64,
) -> Result<()> {
    summary.units_removed += e - s;
    w.push(
        &Mark {
            doc: doc as u32,
            start: (s - g) as u32,
            end: (e - g) as u32,
        }
        .to_bytes(),
    )
}

pub(super) fn load_summary(job: &SubstringJob) -> Result<MergeSummary> {
    let path = job.step_dir(STEPS[2]).join(SUMMARY_FILE);
    let bytes = std::fs::read(&path).map_err(|e| SubstringError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?)
}

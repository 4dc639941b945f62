//! Connected components in bounded memory, for the clusters step when the
//! pairs do not fit the memory budget.
//!
//! The graph's edges are the band pairs. Every edge set below is a stream of
//! `(small, big)` records sorted and deduplicated by an external sorter
//! ([`Sorter`]): a buffer of at most `budget / 32` records is sorted and
//! spilled as a run, and runs are merged `fan_in` at a time with read buffers
//! that fit the other half of the budget.
//!
//! The components are found by alternating **large-star** and **small-star**
//! (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC
//! 2014), which converge in O(log² n) rounds to a forest of stars whose
//! centers are the smallest key of each component:
//! - large-star: for each node `u` with neighbours `N(u)`, `m = min(N(u) ∪
//!   {u})`; every neighbour `v > u` is linked to `m` instead of `u`;
//! - small-star: for each node `u`, `m = min` of its neighbours `≤ u` and of
//!   `u`; each of those neighbours, and `u`, is linked to `m`.
//!
//! Both only need the neighbours of one node at a time in sorted order, so
//! they stream over the sorted edges with O(1) state. A round ends the loop
//! when no node has both smaller and larger neighbours (large-star changes
//! nothing) and no node has two smaller neighbours: the edges are then
//! exactly `(center, leaf)`, i.e. (kept key, removed key).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::{cancelled, MinhashError, Result};

const READ_BUF_MAX: usize = 64 << 10;
const READ_BUF_MIN: usize = 4 << 10;
/// A round limit far above the O(log² n) bound; reaching it is a bug.
const MAX_ROUNDS: u64 = 10_000;

fn io(path: &Path, e: std::io::Error) -> MinhashError {
    MinhashError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// How a memory budget is split: half for a sort buffer, half for the read
/// buffers of a merge. A sorter's merge feeds the next sorter's buffer, so
/// both halves are in use at once.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    /// Records (16 bytes) a sorter buffers before spilling a run.
    pub records: usize,
    /// Bytes of read buffer per merged run.
    pub read_buf: usize,
    /// Runs merged at once.
    pub fan_in: usize,
}

impl Budget {
    pub fn new(bytes: u64) -> Self {
        let half = usize::try_from(bytes / 2).unwrap_or(usize::MAX).max(1);
        let records = (half / 16).max(16);
        let read_buf = (half / 8).clamp(READ_BUF_MIN, READ_BUF_MAX);
        let fan_in = (half / read_buf).max(2);
        Budget {
            records,
            read_buf,
            fan_in,
        }
    }

    /// Peak bytes of the sorters' buffers under this budget.
    pub fn bytes(&self) -> u64 {
        (self.records as u64) * 16 + (self.fan_in * self.read_buf) as u64
    }
}

/// A directory of numbered scratch files.
pub(super) struct Scratch {
    dir: PathBuf,
    next: std::cell::Cell<u64>,
}

impl Scratch {
    pub fn new(dir: PathBuf) -> Result<Self> {
        crate::fsutil::remove_dir_if_exists(&dir)?;
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(Scratch {
            dir,
            next: std::cell::Cell::new(0),
        })
    }

    pub fn file(&self, suffix: &str) -> PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        self.dir.join(format!("{n:08}.{suffix}"))
    }

    pub fn remove(self) -> Result<()> {
        Ok(crate::fsutil::remove_dir_if_exists(&self.dir)?)
    }
}

/// External sort of `(u64, u64)` records, deduplicating.
pub(super) struct Sorter<'a> {
    budget: Budget,
    scratch: &'a Scratch,
    buf: Vec<(u64, u64)>,
    runs: Vec<PathBuf>,
}

impl<'a> Sorter<'a> {
    pub fn new(budget: Budget, scratch: &'a Scratch) -> Self {
        Sorter {
            budget,
            scratch,
            buf: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, a: u64, b: u64) -> Result<()> {
        self.buf.push((a, b));
        if self.buf.len() >= self.budget.records {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.buf.sort_unstable();
        self.buf.dedup();
        let path = self.scratch.file("run");
        let mut w = RunWriter::create(&path)?;
        for &(a, b) in &self.buf {
            w.push(a, b)?;
        }
        w.finish()?;
        self.runs.push(path);
        self.buf.clear();
        Ok(())
    }

    /// The records in order, without duplicates.
    pub fn finish(mut self, cancel: &AtomicBool) -> Result<Sorted> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            self.buf.dedup();
            return Ok(Sorted::Memory(std::mem::take(&mut self.buf).into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > self.budget.fan_in {
            let mut next = Vec::new();
            for group in runs.chunks(self.budget.fan_in) {
                cancelled(cancel)?;
                let mut merged = Merger::open(group.to_vec(), self.budget.read_buf)?;
                let path = self.scratch.file("run");
                let mut w = RunWriter::create(&path)?;
                while let Some((a, b)) = merged.next()? {
                    w.push(a, b)?;
                }
                w.finish()?;
                next.push(path);
            }
            runs = next;
        }
        Ok(Sorted::Merge(Merger::open(runs, self.budget.read_buf)?))
    }
}

/// A sorted, deduplicated stream of records.
pub(super) enum Sorted {
    Memory(std::vec::IntoIter<(u64, u64)>),
    Merge(Merger),
}

impl Sorted {
    pub fn next(&mut self) -> Result<Option<(u64, u64)>> {
        match self {
            Sorted::Memory(it) => Ok(it.next()),
            Sorted::Merge(m) => m.next(),
        }
    }
}

struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl RunWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| io(path, e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 << 10, file),
        })
    }

    fn push(&mut self, a: u64, b: u64) -> Result<()> {
        let mut rec = [0u8; 16];
        rec[..8].copy_from_slice(&a.to_le_bytes());
        rec[8..].copy_from_slice(&b.to_le_bytes());
        self.out.write_all(&rec).map_err(|e| io(&self.path, e))
    }

    /// Scratch runs are not fsynced: a crash redoes the whole step.
    fn finish(self) -> Result<()> {
        let RunWriter { path, out } = self;
        out.into_inner().map_err(|e| io(&path, e.into_error()))?;
        Ok(())
    }
}

struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
    left: u64,
}

impl RunReader {
    fn open(path: &Path, buf: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let len = file.metadata().map_err(|e| io(path, e))?.len();
        if len % 16 != 0 {
            return Err(MinhashError::Corrupt {
                path: path.to_path_buf(),
                message: format!("{len} bytes: not a whole number of 16-byte records"),
            });
        }
        Ok(RunReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(buf, file),
            left: len / 16,
        })
    }

    fn next(&mut self) -> Result<Option<(u64, u64)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut rec = [0u8; 16];
        self.input
            .read_exact(&mut rec)
            .map_err(|e| io(&self.path, e))?;
        self.left -= 1;
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&rec[..8]);
        b.copy_from_slice(&rec[8..]);
        Ok(Some((u64::from_le_bytes(a), u64::from_le_bytes(b))))
    }
}

/// k-way merge of sorted runs, deduplicating; deletes the runs when dropped.
pub(super) struct Merger {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Reverse<((u64, u64), usize)>>,
    last: Option<(u64, u64)>,
}

impl Merger {
    fn open(paths: Vec<PathBuf>, buf: usize) -> Result<Self> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut r = RunReader::open(p, buf)?;
            if let Some(rec) = r.next()? {
                heap.push(Reverse((rec, i)));
            }
            readers.push(r);
        }
        Ok(Merger {
            readers,
            heap,
            last: None,
        })
    }

    fn next(&mut self) -> Result<Option<(u64, u64)>> {
        while let Some(Reverse((rec, i))) = self.heap.pop() {
            if let Some(next) = self.readers[i].next()? {
                if next <= rec {
                    return Err(MinhashError::Corrupt {
                        path: self.readers[i].path.clone(),
                        message: "scratch run is not sorted".into(),
                    });
                }
                self.heap.push(Reverse((next, i)));
            }
            if self.last != Some(rec) {
                self.last = Some(rec);
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }
}

impl Drop for Merger {
    fn drop(&mut self) {
        for r in &self.readers {
            // Scratch space only; the step removes the directory at its end.
            let _ = std::fs::remove_file(&r.path);
        }
    }
}

/// Large-star over canonical edges `(small, big)`; returns the new canonical
/// edges and whether the step changed nothing (no node has both smaller and
/// larger neighbours).
fn large_star<'a>(
    mut edges: Sorted,
    budget: Budget,
    scratch: &'a Scratch,
    cancel: &AtomicBool,
) -> Result<(Sorter<'a>, bool)> {
    // Both directions, grouped by node.
    let mut adj = Sorter::new(budget, scratch);
    let mut n = 0u64;
    while let Some((a, b)) = edges.next()? {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        adj.push(a, b)?;
        adj.push(b, a)?;
    }
    drop(edges);
    let mut adj = adj.finish(cancel)?;
    let mut out = Sorter::new(budget, scratch);
    let mut unchanged = true;
    // (node, min of its neighbourhood and itself)
    let mut cur: Option<(u64, u64)> = None;
    while let Some((u, v)) = adj.next()? {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        let m = match cur {
            Some((cu, m)) if cu == u => m,
            _ => {
                // Neighbours come in ascending order: the first is the smallest.
                let m = v.min(u);
                cur = Some((u, m));
                m
            }
        };
        if v > u {
            if m < u {
                unchanged = false;
            }
            out.push(m, v)?;
        }
    }
    Ok((out, unchanged))
}

/// Small-star over canonical edges `(small, big)`; returns the new canonical
/// edges and whether every node had at most one smaller neighbour.
fn small_star<'a>(
    mut edges: Sorted,
    budget: Budget,
    scratch: &'a Scratch,
    cancel: &AtomicBool,
) -> Result<(Sorter<'a>, bool)> {
    // Grouped by the larger node, smaller neighbours ascending.
    let mut lower = Sorter::new(budget, scratch);
    let mut n = 0u64;
    while let Some((a, b)) = edges.next()? {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        lower.push(b, a)?;
    }
    drop(edges);
    let mut lower = lower.finish(cancel)?;
    let mut out = Sorter::new(budget, scratch);
    let mut stars = true;
    let mut cur: Option<(u64, u64)> = None;
    while let Some((u, v)) = lower.next()? {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        match cur {
            Some((cu, m)) if cu == u => {
                stars = false;
                out.push(m, v)?;
            }
            _ => {
                cur = Some((u, v));
                out.push(v, u)?;
            }
        }
    }
    Ok((out, stars))
}

/// The connected components of the graph whose edges `pairs` (each `(a, b)`
/// with `a < b`) holds: returns the records (smallest key of the component,
/// other member) sorted, and the number of rounds.
pub(super) fn components<'a>(
    pairs: Sorter<'a>,
    budget: Budget,
    scratch: &'a Scratch,
    cancel: &AtomicBool,
) -> Result<(Sorted, u64)> {
    let mut edges = pairs.finish(cancel)?;
    for round in 1..=MAX_ROUNDS {
        cancelled(cancel)?;
        let (large, unchanged) = large_star(edges, budget, scratch, cancel)?;
        let large = large.finish(cancel)?;
        let (small, stars) = small_star(large, budget, scratch, cancel)?;
        edges = small.finish(cancel)?;
        if unchanged && stars {
            return Ok((edges, round));
        }
    }
    Err(MinhashError::Config(format!(
        "connected components did not converge in {MAX_ROUNDS} rounds"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Union-find reference: member → smallest key of its component.
    fn reference(edges: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut parent = std::collections::BTreeMap::new();
        fn find(p: &mut std::collections::BTreeMap<u64, u64>, x: u64) -> u64 {
            let mut r = x;
            while let Some(&q) = p.get(&r) {
                if q == r {
                    break;
                }
                r = q;
            }
            r
        }
        for &(a, b) in edges {
            parent.entry(a).or_insert(a);
            parent.entry(b).or_insert(b);
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            parent.insert(hi, lo);
        }
        let keys: Vec<u64> = parent.keys().copied().collect();
        let mut out: Vec<(u64, u64)> = keys
            .into_iter()
            .map(|k| (find(&mut parent, k), k))
            .filter(|(r, k)| r != k)
            .collect();
        out.sort_unstable();
        out
    }

    fn run(edges: &[(u64, u64)], budget_bytes: u64) -> (Vec<(u64, u64)>, u64) {
        let dir = std::env::temp_dir().join(format!(
            "refinery-cc-{}-{budget_bytes}-{}",
            std::process::id(),
            edges.len()
        ));
        let scratch = Scratch::new(dir).unwrap();
        let budget = Budget::new(budget_bytes);
        let cancel = AtomicBool::new(false);
        let mut s = Sorter::new(budget, &scratch);
        for &(a, b) in edges {
            s.push(a.min(b), a.max(b)).unwrap();
        }
        let (mut sorted, rounds) = components(s, budget, &scratch, &cancel).unwrap();
        let mut out = Vec::new();
        while let Some(r) = sorted.next().unwrap() {
            out.push(r);
        }
        drop(sorted);
        scratch.remove().unwrap();
        (out, rounds)
    }

    #[test]
    fn matches_union_find_on_chains_stars_and_random_graphs() {
        let mut graphs: Vec<Vec<(u64, u64)>> = Vec::new();
        // A long path in shuffled key order, a star, and a path in key order.
        let n = 2000u64;
        let perm: Vec<u64> = (0..n).map(|i| (i * 7919) % n * 3 + 5).collect();
        graphs.push(perm.windows(2).map(|w| (w[0], w[1])).collect());
        graphs.push((1..500).map(|i| (1000 + i, 1000)).collect());
        graphs.push((0..1000).map(|i| (i, i + 1)).collect());
        // Random sparse graphs (SplitMix64).
        let mut x = 42u64;
        let mut rnd = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        for nodes in [50u64, 3000] {
            let g: Vec<(u64, u64)> = (0..nodes)
                .map(|_| (rnd() % nodes, rnd() % nodes))
                .filter(|(a, b)| a != b)
                .collect();
            graphs.push(g);
        }
        graphs.push(Vec::new());
        for g in &graphs {
            let want = reference(g);
            for budget in [256u64, 4 << 10, 1 << 30] {
                let (got, rounds) = run(g, budget);
                assert_eq!(got, want, "budget {budget}, {} edges", g.len());
                assert!((1..100).contains(&rounds), "{rounds} rounds");
            }
        }
    }

    #[test]
    fn sorter_spills_merges_in_several_passes_and_dedups() {
        let dir = std::env::temp_dir().join(format!("refinery-sorter-{}", std::process::id()));
        let scratch = Scratch::new(dir).unwrap();
        let budget = Budget::new(256); // 16 records per run, fan-in 2
        assert_eq!((budget.records, budget.fan_in), (16, 2));
        let cancel = AtomicBool::new(false);
        let mut s = Sorter::new(budget, &scratch);
        let mut want = Vec::new();
        for i in 0..1000u64 {
            let r = ((i * 37) % 301, i % 3);
            s.push(r.0, r.1).unwrap();
            want.push(r);
        }
        want.sort_unstable();
        want.dedup();
        let mut sorted = s.finish(&cancel).unwrap();
        let mut got = Vec::new();
        while let Some(r) = sorted.next().unwrap() {
            got.push(r);
        }
        assert_eq!(got, want);
        drop(sorted);
        scratch.remove().unwrap();
    }
}

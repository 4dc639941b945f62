//! Step 3: connected components of the pairs of all bands → per input file,
//! the documents to remove with their cluster and kept representative.
//!
//! Two methods with identical output; the band files' headers give the pair
//! count, and the in-memory union-find runs when `2 · pairs` documents at
//! [`MEMORY_BYTES_PER_NODE`] fit `max_memory_bytes`. Otherwise the external
//! method ([`components`]) sorts edge files on disk in large-star/small-star
//! rounds, numbers the clusters from the sorted (kept, removed) stream,
//! keeps the kept ids in a table on disk, and sorts (removed, cluster) back
//! into key order: memory is bounded by the budget whatever the corpus.
//!
//! The in-memory union-find is proportional to the documents that occur in at least one pair,
//! not to the corpus: a hash map from key (u64) to a compact index (u32),
//! and two arrays indexed by it (parent u32, key u64). hashbrown stores
//! 12-byte entries plus a control byte at a load factor of 7/8 to 7/16, so
//! 15 to 30 bytes per document, plus 12: **27 to 42 bytes per document in a
//! pair** (`summary.json` reports the estimate for the run). The map is
//! freed before the removal list (24 bytes per removed document) and the
//! kept ids (per cluster: id length + ~40 bytes) are built.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::writers::write_atomic;
use refinery_corpus::CorpusError;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::buckets::pairs_path;
use super::components::{self, Budget, Scratch, Sorter};
use super::format::{Kind, RecordReader, RecordWriter, Removal};
use super::signatures::{ids_path, load_stats};
use super::{cancelled, remove_prefixed, DocKey, MinhashError, MinhashJob, Result};

pub(super) const STEP: &str = "clusters";
const SUMMARY_FILE: &str = "summary.json";

/// `clusters/remove_FFFFF.bin`.
pub(super) fn removals_path(dir: &std::path::Path, file: usize) -> std::path::PathBuf {
    dir.join(super::MINHASH_DIR)
        .join(STEP)
        .join(format!("remove_{file:05}.bin"))
}

/// The counts of the clusters step (`clusters/summary.json`); deterministic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub docs: u64,
    /// Documents with a signature (≥ `ngram` words).
    pub signed: u64,
    pub too_short: u64,
    /// Pair records read from all bands (a pair found in several bands
    /// counts once per band).
    pub pair_records: u64,
    /// Documents that occur in at least one pair.
    pub docs_in_pairs: u64,
    pub clusters: u64,
    pub removed: u64,
    /// Estimated peak bytes of the union-find (map + arrays).
    pub union_find_bytes: u64,
    /// Bytes of the removal list and kept ids, built after the map is freed.
    pub removal_list_bytes: u64,
    /// `union-find` (in memory) or `external` (bounded by `--max-memory-mb`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Large-star/small-star rounds of the external method (0 otherwise).
    #[serde(default)]
    pub rounds: u64,
    /// Sort and merge buffer bytes of the external method (0 otherwise).
    #[serde(default)]
    pub external_buffer_bytes: u64,
}

const METHOD_MEMORY: &str = "union-find";
const METHOD_EXTERNAL: &str = "external";

fn default_method() -> String {
    METHOD_MEMORY.into()
}

/// Union-find whose root is always the smallest key of its set.
struct UnionFind {
    index: FxHashMap<u64, u32>,
    keys: Vec<u64>,
    parent: Vec<u32>,
}

impl UnionFind {
    fn node(&mut self, key: u64) -> Result<u32> {
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        let i = u32::try_from(self.keys.len())
            .map_err(|_| MinhashError::Config("more than 2^32 documents in pairs".into()))?;
        self.index.insert(key, i);
        self.keys.push(key);
        self.parent.push(i);
        Ok(i)
    }

    fn find(&mut self, mut x: u32) -> u32 {
        // Path halving.
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    fn union(&mut self, a: u64, b: u64) -> Result<()> {
        let (x, y) = (self.node(a)?, self.node(b)?);
        let (rx, ry) = (self.find(x), self.find(y));
        if rx != ry {
            if self.keys[rx as usize] < self.keys[ry as usize] {
                self.parent[ry as usize] = rx;
            } else {
                self.parent[rx as usize] = ry;
            }
        }
        Ok(())
    }

    fn bytes(&self) -> u64 {
        let map = self.index.capacity() as u64 * 13;
        let arrays = self.keys.capacity() as u64 * 8 + self.parent.capacity() as u64 * 4;
        map + arrays
    }
}

/// Bytes per document in a pair that the in-memory path is assumed to need:
/// the union-find (27–42), the removal list (16) and the kept ids (~40 bytes
/// plus the id, for at most one document in two).
const MEMORY_BYTES_PER_NODE: u64 = 120;

pub(super) fn run_task(job: &MinhashJob, cancel: &AtomicBool) -> Result<()> {
    let step = job.step_dir(STEP);
    remove_prefixed(&step, "remove_")?;
    remove_prefixed(&step, SUMMARY_FILE)?;
    let sig = load_stats(job)?;
    let mut summary = ClusterSummary {
        docs: sig.docs,
        signed: sig.signed,
        too_short: sig.too_short,
        ..Default::default()
    };
    // The pair count is in the files' headers: choose the path before reading.
    let mut pairs = 0u64;
    for band in 0..job.config.bands {
        pairs += RecordReader::open(&pairs_path(job, band), Kind::Pairs)?.count();
    }
    let nodes_bound = pairs.saturating_mul(2).min(sig.docs);
    if nodes_bound.saturating_mul(MEMORY_BYTES_PER_NODE) <= job.max_memory_bytes {
        in_memory(job, &step, &mut summary, cancel)?;
    } else {
        external(job, &step, &mut summary, cancel)?;
    }
    let path = step.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&step, 0)?)
}

/// Streams the pairs of every band, checking their order.
fn for_each_pair(
    job: &MinhashJob,
    cancel: &AtomicBool,
    mut f: impl FnMut(u64, u64) -> Result<()>,
) -> Result<u64> {
    let mut n = 0u64;
    for band in 0..job.config.bands {
        cancelled(cancel)?;
        let path = pairs_path(job, band);
        let mut r = RecordReader::open(&path, Kind::Pairs)?;
        while let Some((a, b)) = r.next_pair()? {
            if a >= b {
                return Err(MinhashError::Corrupt {
                    path: path.clone(),
                    message: "a pair's first key must be the smaller".into(),
                });
            }
            f(a, b)?;
            n += 1;
            if n % 65536 == 0 {
                cancelled(cancel)?;
            }
        }
    }
    Ok(n)
}

/// Reads the ids of documents given in ascending key order, streaming the
/// id lists file by file.
struct IdCursor<'a> {
    job: &'a MinhashJob,
    file: Option<(u32, RecordReader, u32, std::path::PathBuf)>,
}

impl IdCursor<'_> {
    fn get(&mut self, key: u64) -> Result<String> {
        let DocKey { file, doc: want } = DocKey::unpack(key);
        if self.file.as_ref().is_none_or(|(f, ..)| *f != file) {
            let path = ids_path(&self.job.output, file as usize);
            let r = RecordReader::open(&path, Kind::Ids)?;
            self.file = Some((file, r, 0, path));
        }
        let Some((_, r, next, path)) = self.file.as_mut() else {
            return Err(MinhashError::NotFound(format!("id list of file {file}")));
        };
        loop {
            if *next > want {
                return Err(MinhashError::Corrupt {
                    path: path.clone(),
                    message: format!("document {want} asked for out of order"),
                });
            }
            let Some(id) = r.next_id()? else {
                return Err(MinhashError::Corrupt {
                    path: path.clone(),
                    message: format!("has no document {want}"),
                });
            };
            *next += 1;
            if *next - 1 == want {
                return Ok(id);
            }
        }
    }
}

/// Writes one removal file per input file (also when empty) from removals
/// `(removed key, cluster, kept key, kept id)` in ascending removed key.
fn write_removals(
    job: &MinhashJob,
    step: &std::path::Path,
    cancel: &AtomicBool,
    mut next: impl FnMut() -> Result<Option<(u64, u32, u64, String)>>,
) -> Result<()> {
    let mut pending = next()?;
    for file in 0..job.inputs.len() {
        cancelled(cancel)?;
        let mut w = RecordWriter::create(&removals_path(&job.output, file), Kind::Removals)?;
        while let Some((key, cluster, kept, kept_id)) = pending.take() {
            if DocKey::unpack(key).file as usize != file {
                pending = Some((key, cluster, kept, kept_id));
                break;
            }
            w.push_removal(&Removal {
                doc: DocKey::unpack(key).doc,
                cluster,
                kept,
                kept_id,
            })?;
            pending = next()?;
        }
        w.finish()?;
    }
    if pending.is_some() {
        return Err(MinhashError::Corrupt {
            path: step.to_path_buf(),
            message: "pairs name an input file that does not exist".into(),
        });
    }
    Ok(())
}

fn cluster_id(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| MinhashError::Config("more than 2^32 clusters".into()))
}

/// Union-find in memory: used when the pairs fit the budget.
fn in_memory(
    job: &MinhashJob,
    step: &std::path::Path,
    summary: &mut ClusterSummary,
    cancel: &AtomicBool,
) -> Result<()> {
    let mut uf = UnionFind {
        index: FxHashMap::default(),
        keys: Vec::new(),
        parent: Vec::new(),
    };
    summary.pair_records = for_each_pair(job, cancel, |a, b| uf.union(a, b))?;
    summary.method = METHOD_MEMORY.into();
    summary.union_find_bytes = uf.bytes();
    summary.docs_in_pairs = uf.keys.len() as u64;

    // Resolve every node to its root (in place), then free the map.
    let n = uf.keys.len();
    for i in 0..n as u32 {
        let r = uf.find(i);
        uf.parent[i as usize] = r;
    }
    let UnionFind {
        index,
        keys,
        parent: roots,
    } = uf;
    drop(index);
    // Cluster ids: clusters numbered by their kept key.
    let mut kept: Vec<u64> = (0..n)
        .filter(|&i| roots[i] as usize == i)
        .map(|i| keys[i])
        .collect();
    kept.sort_unstable();
    summary.clusters = kept.len() as u64;
    // (removed key, kept key), sorted by removed key.
    let mut removed: Vec<(u64, u64)> = (0..n)
        .filter(|&i| roots[i] as usize != i)
        .map(|i| (keys[i], keys[roots[i] as usize]))
        .collect();
    drop(keys);
    drop(roots);
    removed.sort_unstable();
    summary.removed = removed.len() as u64;

    // The kept documents' ids, file by file, streaming the id lists.
    let mut ids = IdCursor { job, file: None };
    let mut kept_ids: Vec<String> = Vec::with_capacity(kept.len());
    let mut id_bytes = 0u64;
    for (i, &k) in kept.iter().enumerate() {
        if i % 4096 == 0 {
            cancelled(cancel)?;
        }
        let id = ids.get(k)?;
        id_bytes += id.len() as u64 + 40;
        kept_ids.push(id);
    }
    summary.removal_list_bytes = removed.capacity() as u64 * 16 + id_bytes;

    let mut it = removed.into_iter();
    write_removals(job, step, cancel, || {
        let Some((key, kept_key)) = it.next() else {
            return Ok(None);
        };
        let c = kept
            .binary_search(&kept_key)
            .map_err(|_| MinhashError::Corrupt {
                path: step.to_path_buf(),
                message: "a removed document's root is not a kept document".into(),
            })?;
        Ok(Some((
            key,
            cluster_id(c as u64)?,
            kept_key,
            kept_ids[c].clone(),
        )))
    })
}

/// Connected components in bounded memory (see [`components`]).
fn external(
    job: &MinhashJob,
    step: &std::path::Path,
    summary: &mut ClusterSummary,
    cancel: &AtomicBool,
) -> Result<()> {
    let budget = Budget::new(job.max_memory_bytes);
    let scratch = Scratch::new(step.join(SCRATCH_DIR))?;
    let mut pairs = Sorter::new(budget, &scratch);
    summary.pair_records = for_each_pair(job, cancel, |a, b| pairs.push(a, b))?;
    let (mut stars, rounds) = components::components(pairs, budget, &scratch, cancel)?;
    summary.method = METHOD_EXTERNAL.into();
    summary.rounds = rounds;
    summary.external_buffer_bytes = budget.bytes();

    // (kept key, removed key) in kept key order: number the clusters, write
    // the kept keys and ids to a table on disk, and sort (removed, cluster).
    let table_path = scratch.file("kept");
    let ids_blob_path = scratch.file("ids");
    let mut table = BufWriter::with_capacity(64 << 10, create(&table_path)?);
    let mut blob = BufWriter::with_capacity(64 << 10, create(&ids_blob_path)?);
    let mut blob_len = 0u64;
    let mut ids = IdCursor { job, file: None };
    let mut by_removed = Sorter::new(budget, &scratch);
    let mut current: Option<u64> = None;
    let mut n = 0u64;
    while let Some((root, member)) = stars.next()? {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        if current != Some(root) {
            let id = ids.get(root)?;
            let mut entry = [0u8; KEPT_ENTRY];
            entry[..8].copy_from_slice(&root.to_le_bytes());
            entry[8..16].copy_from_slice(&blob_len.to_le_bytes());
            entry[16..].copy_from_slice(&(id.len() as u64).to_le_bytes());
            write_all(&mut table, &entry, &table_path)?;
            write_all(&mut blob, id.as_bytes(), &ids_blob_path)?;
            blob_len += id.len() as u64;
            summary.clusters += 1;
            current = Some(root);
        }
        by_removed.push(member, summary.clusters - 1)?;
        summary.removed += 1;
    }
    drop(stars);
    flush(table, &table_path)?;
    flush(blob, &ids_blob_path)?;
    cluster_id(summary.clusters.saturating_sub(1))?;
    summary.docs_in_pairs = summary.clusters + summary.removed;

    let mut sorted = by_removed.finish(cancel)?;
    let mut table = open(&table_path)?;
    let mut blob = open(&ids_blob_path)?;
    let mut last: Option<(u64, u64, String)> = None;
    write_removals(job, step, cancel, || {
        let Some((key, cluster)) = sorted.next()? else {
            return Ok(None);
        };
        if last.as_ref().is_none_or(|(c, ..)| *c != cluster) {
            let mut entry = [0u8; KEPT_ENTRY];
            read_at(
                &mut table,
                cluster * KEPT_ENTRY as u64,
                &mut entry,
                &table_path,
            )?;
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&entry[i * 8..i * 8 + 8]);
                u64::from_le_bytes(w)
            };
            let (kept, offset, len) = (word(0), word(1), word(2));
            let len = usize::try_from(len).map_err(|_| MinhashError::Corrupt {
                path: table_path.clone(),
                message: "id length over the address space".into(),
            })?;
            let mut id = vec![0u8; len];
            read_at(&mut blob, offset, &mut id, &ids_blob_path)?;
            let id = String::from_utf8(id).map_err(|_| MinhashError::Corrupt {
                path: ids_blob_path.clone(),
                message: "id is not UTF-8".into(),
            })?;
            last = Some((cluster, kept, id));
        }
        let Some((_, kept, id)) = last.as_ref() else {
            return Ok(None);
        };
        Ok(Some((key, cluster_id(cluster)?, *kept, id.clone())))
    })?;
    drop(sorted);
    scratch.remove()
}

const SCRATCH_DIR: &str = "scratch";
/// Kept table entry: kept key, offset and length of its id in the blob.
const KEPT_ENTRY: usize = 24;

fn io_err(path: &std::path::Path, e: std::io::Error) -> MinhashError {
    MinhashError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn create(path: &std::path::Path) -> Result<File> {
    File::create(path).map_err(|e| io_err(path, e))
}

fn open(path: &std::path::Path) -> Result<File> {
    File::open(path).map_err(|e| io_err(path, e))
}

fn write_all(w: &mut BufWriter<File>, bytes: &[u8], path: &std::path::Path) -> Result<()> {
    w.write_all(bytes).map_err(|e| io_err(path, e))
}

fn flush(w: BufWriter<File>, path: &std::path::Path) -> Result<()> {
    w.into_inner().map_err(|e| io_err(path, e.into_error()))?;
    Ok(())
}

fn read_at(f: &mut File, offset: u64, buf: &mut [u8], path: &std::path::Path) -> Result<()> {
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| io_err(path, e))?;
    f.read_exact(buf).map_err(|e| io_err(path, e))
}

pub(super) fn load_summary(job: &MinhashJob) -> Result<ClusterSummary> {
    let path = job.step_dir(STEP).join(SUMMARY_FILE);
    let bytes = std::fs::read(&path).map_err(|e| MinhashError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?)
}

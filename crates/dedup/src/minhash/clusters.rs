//! Step 3: union-find over the pairs of all bands → per input file, the
//! documents to remove with their cluster and kept representative.
//!
//! Memory is proportional to the documents that occur in at least one pair,
//! not to the corpus: a hash map from key (u64) to a compact index (u32),
//! and two arrays indexed by it (parent u32, key u64). hashbrown stores
//! 12-byte entries plus a control byte at a load factor of 7/8 to 7/16, so
//! 15 to 30 bytes per document, plus 12: **27 to 42 bytes per document in a
//! pair** (`summary.json` reports the estimate for the run). The map is
//! freed before the removal list (24 bytes per removed document) and the
//! kept ids (per cluster: id length + ~40 bytes) are built.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::writers::write_atomic;
use refinery_corpus::CorpusError;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::buckets::pairs_path;
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

    let mut uf = UnionFind {
        index: FxHashMap::default(),
        keys: Vec::new(),
        parent: Vec::new(),
    };
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
            uf.union(a, b)?;
            summary.pair_records += 1;
        }
    }
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
    let mut kept_ids: BTreeMap<u64, String> = BTreeMap::new();
    let mut id_bytes = 0u64;
    let mut i = 0;
    while i < kept.len() {
        cancelled(cancel)?;
        let file = DocKey::unpack(kept[i]).file;
        let path = ids_path(&job.output, file as usize);
        let mut r = RecordReader::open(&path, Kind::Ids)?;
        let mut doc: u32 = 0;
        while i < kept.len() && DocKey::unpack(kept[i]).file == file {
            let want = DocKey::unpack(kept[i]).doc;
            let id = loop {
                let Some(id) = r.next_id()? else {
                    return Err(MinhashError::Corrupt {
                        path: path.clone(),
                        message: format!("has no document {want}"),
                    });
                };
                doc += 1;
                if doc - 1 == want {
                    break id;
                }
            };
            id_bytes += id.len() as u64 + 40;
            kept_ids.insert(kept[i], id);
            i += 1;
        }
    }
    summary.removal_list_bytes = removed.capacity() as u64 * 16 + id_bytes;

    // One removal file per input file, also when empty.
    let mut next = 0;
    for file in 0..job.inputs.len() {
        cancelled(cancel)?;
        let mut w = RecordWriter::create(&removals_path(&job.output, file), Kind::Removals)?;
        while next < removed.len() && DocKey::unpack(removed[next].0).file as usize == file {
            let (key, kept_key) = removed[next];
            let cluster = kept.binary_search(&kept_key).unwrap_or(usize::MAX);
            let kept_id = kept_ids.get(&kept_key).cloned().unwrap_or_default();
            w.push_removal(&Removal {
                doc: DocKey::unpack(key).doc,
                cluster: cluster as u32,
                kept: kept_key,
                kept_id,
            })?;
            next += 1;
        }
        w.finish()?;
    }
    if next != removed.len() {
        return Err(MinhashError::Corrupt {
            path: step.clone(),
            message: "pairs name an input file that does not exist".into(),
        });
    }
    let path = step.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&step, 0)?)
}

pub(super) fn load_summary(job: &MinhashJob) -> Result<ClusterSummary> {
    let path = job.step_dir(STEP).join(SUMMARY_FILE);
    let bytes = std::fs::read(&path).map_err(|e| MinhashError::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })?)
}

//! The teacher logits cache: the teacher runs once over the transfer set, and student epochs
//! read its logits from a memory-mapped file instead of recomputing them.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "RFKDLOGT"
//!      8     4  version (u32 LE) = 1
//!     12     4  kind: 0 = dense logits, 1 = top-k
//!     16     8  rows (u64)
//!     24     4  positions P per row (u32)
//!     28     4  classes C (u32)
//!     32     4  k (u32; = C for dense)
//!     36     4  reserved (0)
//!     40    16  teacher hash (XXH3-128 of the teacher's config + weights, LE)
//!     56     8  payload bytes after this 64-byte header (u64)
//!     64        keys: rows × u64, strictly ascending (a hash of the row's token ids)
//!               dense: rows × P × C f32 logits
//!               top-k: rows × P × k u32 class ids, then rows × P × k f32 logits
//! ```
//!
//! Everything is little-endian. [`TeacherCache::open`] checks the magic, the version, the
//! kind, that the shapes give exactly the payload length and the file length, that the keys
//! ascend, and that the teacher hash is the run's teacher; anything else is an error naming
//! the file. Positions a row does not have (shorter LM rows) hold zeros and are masked.
//! A row is looked up by its key (binary search), so the cache does not depend on the order
//! batches are drawn in, and identical rows share one entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::DistillError;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"RFKDLOGT";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Header bytes before the keys.
pub const HEADER_LEN: usize = 64;

/// Dense logits or the top k per position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Dense,
    TopK,
}

/// The header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHeader {
    pub kind: CacheKind,
    pub rows: u64,
    pub positions: u32,
    pub classes: u32,
    pub k: u32,
    pub teacher_hash: u128,
}

impl CacheHeader {
    fn value_len(&self) -> u64 {
        self.rows * u64::from(self.positions) * u64::from(self.k)
    }

    /// Payload bytes the shapes imply (`None` on overflow).
    fn payload_len(&self) -> Option<u64> {
        let keys = self.rows.checked_mul(8)?;
        let n = self
            .rows
            .checked_mul(u64::from(self.positions))?
            .checked_mul(u64::from(self.k))?;
        let per = match self.kind {
            CacheKind::Dense => 4,
            CacheKind::TopK => 8,
        };
        keys.checked_add(n.checked_mul(per)?)
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let kind: u32 = match self.kind {
            CacheKind::Dense => 0,
            CacheKind::TopK => 1,
        };
        h[12..16].copy_from_slice(&kind.to_le_bytes());
        h[16..24].copy_from_slice(&self.rows.to_le_bytes());
        h[24..28].copy_from_slice(&self.positions.to_le_bytes());
        h[28..32].copy_from_slice(&self.classes.to_le_bytes());
        h[32..36].copy_from_slice(&self.k.to_le_bytes());
        h[40..56].copy_from_slice(&self.teacher_hash.to_le_bytes());
        h[56..64].copy_from_slice(&self.payload_len().unwrap_or(0).to_le_bytes());
        h
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Collects the teacher's logits row by row, then writes the file (atomically: a temp file
/// renamed into place).
#[derive(Debug)]
pub struct CacheWriter {
    kind: CacheKind,
    positions: usize,
    classes: usize,
    k: usize,
    /// key → (class ids (top-k only), logits), `positions × k` each.
    rows: BTreeMap<u64, (Vec<u32>, Vec<f32>)>,
}

impl CacheWriter {
    /// `top_k = None` (or `≥ classes`) stores every logit.
    pub fn new(positions: usize, classes: usize, top_k: Option<usize>) -> Self {
        let (kind, k) = match top_k {
            Some(k) if k > 0 && k < classes => (CacheKind::TopK, k),
            _ => (CacheKind::Dense, classes),
        };
        Self {
            kind,
            positions,
            classes,
            k,
            rows: BTreeMap::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Adds a batch: `keys[b]` and `logits` `[B, P_b, C]` row-major (`P_b ≤ positions`); a
    /// key already present is kept as it is (identical rows have identical logits).
    pub fn add(&mut self, keys: &[u64], logits: &[f32], batch_positions: usize) {
        let (p, c, k) = (batch_positions.min(self.positions), self.classes, self.k);
        for (b, &key) in keys.iter().enumerate() {
            if self.rows.contains_key(&key) {
                continue;
            }
            let mut ids = Vec::new();
            let mut vals = vec![0f32; self.positions * k];
            if self.kind == CacheKind::TopK {
                ids = vec![0u32; self.positions * k];
            }
            for pos in 0..p {
                let start = (b * batch_positions + pos) * c;
                let row = &logits[start..start + c];
                match self.kind {
                    CacheKind::Dense => vals[pos * k..(pos + 1) * k].copy_from_slice(row),
                    CacheKind::TopK => {
                        let mut order: Vec<u32> = (0..c as u32).collect();
                        order.select_nth_unstable_by(k - 1, |&a, &b| {
                            row[b as usize].total_cmp(&row[a as usize])
                        });
                        for (j, &id) in order[..k].iter().enumerate() {
                            ids[pos * k + j] = id;
                            vals[pos * k + j] = row[id as usize];
                        }
                    }
                }
            }
            self.rows.insert(key, (ids, vals));
        }
    }

    /// Writes the cache for a teacher with hash `teacher_hash`.
    pub fn write(&self, path: &Path, teacher_hash: u128) -> Result<(), DistillError> {
        let header = CacheHeader {
            kind: self.kind,
            rows: self.rows.len() as u64,
            positions: self.positions as u32,
            classes: self.classes as u32,
            k: self.k as u32,
            teacher_hash,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + header.payload_len().unwrap_or(0) as usize);
        out.extend_from_slice(&header.encode());
        for key in self.rows.keys() {
            out.extend_from_slice(&key.to_le_bytes());
        }
        if self.kind == CacheKind::TopK {
            for (ids, _) in self.rows.values() {
                for id in ids {
                    out.extend_from_slice(&id.to_le_bytes());
                }
            }
        }
        for (_, vals) in self.rows.values() {
            for v in vals {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &out).map_err(|e| DistillError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| DistillError::io(path, e))
    }
}

/// Cached teacher outputs of a batch, host side.
#[derive(Debug, Clone, PartialEq)]
pub enum CachedLogits {
    /// `[B, P, C]` logits.
    Dense { values: Vec<f32>, shape: [usize; 3] },
    /// `[B, P, k]` class ids and logits.
    TopK {
        indices: Vec<i64>,
        values: Vec<f32>,
        shape: [usize; 3],
    },
}

/// A cache file, memory-mapped and checked.
#[derive(Debug)]
pub struct TeacherCache {
    path: PathBuf,
    map: Mmap,
    header: CacheHeader,
}

impl TeacherCache {
    /// Opens and checks `path` for the teacher with hash `teacher_hash`.
    pub fn open(path: &Path, teacher_hash: u128) -> Result<Self, DistillError> {
        let bad = |message: String| DistillError::Cache {
            path: path.to_path_buf(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| DistillError::io(path, e))?;
        // SAFETY: the file is opened read-only and only read through the map; a cache is
        // written to a temp file and renamed into place, never modified where it is.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| DistillError::io(path, e))?;
        let b = &map[..];
        if b.len() < HEADER_LEN {
            return Err(bad(format!(
                "{} bytes: shorter than the {HEADER_LEN}-byte header",
                b.len()
            )));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("not a teacher cache (bad magic)".into()));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(bad(format!(
                "format version {version}; this build reads version {VERSION}"
            )));
        }
        let kind = match u32_at(b, 12) {
            0 => CacheKind::Dense,
            1 => CacheKind::TopK,
            other => return Err(bad(format!("unknown kind {other}"))),
        };
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&b[40..56]);
        let header = CacheHeader {
            kind,
            rows: u64_at(b, 16),
            positions: u32_at(b, 24),
            classes: u32_at(b, 28),
            k: u32_at(b, 32),
            teacher_hash: u128::from_le_bytes(hash),
        };
        let shapes_ok = header.positions > 0
            && header.classes > 0
            && header.k > 0
            && header.k <= header.classes
            && (kind == CacheKind::TopK || header.k == header.classes);
        if !shapes_ok {
            return Err(bad(format!(
                "inconsistent shapes: positions {}, classes {}, k {}",
                header.positions, header.classes, header.k
            )));
        }
        let payload = u64_at(b, 56);
        let expected = header
            .payload_len()
            .ok_or_else(|| bad("shapes overflow".into()))?;
        if payload != expected || (b.len() - HEADER_LEN) as u64 != expected {
            return Err(bad(format!(
                "the shapes ({} rows × {} positions × {}) need {expected} payload bytes; the \
                 header says {payload} and the file has {} (truncated or corrupt)",
                header.rows,
                header.positions,
                header.k,
                b.len() - HEADER_LEN
            )));
        }
        if header.teacher_hash != teacher_hash {
            return Err(bad(format!(
                "made by another teacher (hash {:032x}, this run's teacher is {:032x}): \
                 delete it to rebuild",
                header.teacher_hash, teacher_hash
            )));
        }
        let cache = Self {
            path: path.to_path_buf(),
            map,
            header,
        };
        let keys_ascend = (1..cache.header.rows as usize).all(|i| cache.key(i - 1) < cache.key(i));
        if !keys_ascend {
            return Err(bad("keys are not strictly ascending (corrupt)".into()));
        }
        Ok(cache)
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn key(&self, i: usize) -> u64 {
        u64_at(&self.map, HEADER_LEN + 8 * i)
    }

    fn find(&self, key: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.header.rows as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The cached logits of the rows `keys`, at their first `positions` positions.
    pub fn lookup(&self, keys: &[u64], positions: usize) -> Result<CachedLogits, DistillError> {
        let h = &self.header;
        let (p_all, k) = (h.positions as usize, h.k as usize);
        if positions > p_all {
            return Err(DistillError::Cache {
                path: self.path.clone(),
                message: format!("a batch has {positions} positions; the cache holds {p_all}"),
            });
        }
        let keys_end = HEADER_LEN + 8 * h.rows as usize;
        let (ids_at, vals_at) = match h.kind {
            CacheKind::Dense => (keys_end, keys_end),
            CacheKind::TopK => (keys_end, keys_end + 4 * h.value_len() as usize),
        };
        let mut values = Vec::with_capacity(keys.len() * positions * k);
        let mut indices = Vec::new();
        for &key in keys {
            let row = self.find(key).ok_or_else(|| DistillError::Cache {
                path: self.path.clone(),
                message: format!(
                    "row {key:016x} is not in the cache (made for other training data? delete \
                     it to rebuild)"
                ),
            })?;
            let base = row * p_all * k;
            for j in 0..positions * k {
                values.push(f32_at(&self.map, vals_at + 4 * (base + j)));
                if h.kind == CacheKind::TopK {
                    indices.push(i64::from(u32_at(&self.map, ids_at + 4 * (base + j))));
                }
            }
        }
        let shape = [keys.len(), positions, k];
        Ok(match h.kind {
            CacheKind::Dense => CachedLogits::Dense { values, shape },
            CacheKind::TopK => CachedLogits::TopK {
                indices,
                values,
                shape,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path, top_k: Option<usize>) -> PathBuf {
        let mut w = CacheWriter::new(2, 4, top_k);
        // Two rows of 2 positions × 4 classes; the second batch repeats key 7.
        w.add(
            &[7, 3],
            &[
                0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.,
            ],
            2,
        );
        w.add(&[7], &[9.; 8], 2);
        assert_eq!(w.rows(), 2);
        let path = dir.join(if top_k.is_some() {
            "topk.bin"
        } else {
            "dense.bin"
        });
        w.write(&path, 42).unwrap();
        path
    }

    #[test]
    fn dense_and_top_k_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = TeacherCache::open(&sample(dir.path(), None), 42).unwrap();
        assert_eq!(c.header().rows, 2);
        let CachedLogits::Dense { values, shape } = c.lookup(&[3, 7], 2).unwrap() else {
            panic!()
        };
        assert_eq!(shape, [2, 2, 4]);
        assert_eq!(
            values,
            [8., 9., 10., 11., 12., 13., 14., 15., 0., 1., 2., 3., 4., 5., 6., 7.]
        );
        let c = TeacherCache::open(&sample(dir.path(), Some(2)), 42).unwrap();
        let CachedLogits::TopK {
            indices,
            values,
            shape,
        } = c.lookup(&[7], 1).unwrap()
        else {
            panic!()
        };
        assert_eq!(shape, [1, 1, 2]);
        let mut pairs: Vec<(i64, f32)> = indices.into_iter().zip(values).collect();
        pairs.sort_by_key(|p| p.0);
        assert_eq!(pairs, [(2, 2.0), (3, 3.0)]);
        let e = c.lookup(&[5], 1).unwrap_err().to_string();
        assert!(e.contains("not in the cache"), "{e}");
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path(), None);
        let good = std::fs::read(&path).unwrap();
        let check = |bytes: &[u8], hash: u128, want: &str| {
            let p = dir.path().join("bad.bin");
            std::fs::write(&p, bytes).unwrap();
            let e = TeacherCache::open(&p, hash).unwrap_err().to_string();
            assert!(e.contains("bad.bin") && e.contains(want), "{e}");
        };
        let mut b = good.clone();
        b[0] = b'X';
        check(&b, 42, "magic");
        let mut b = good.clone();
        b[8] = 9;
        check(&b, 42, "version 9");
        let mut b = good.clone();
        b[28] = 5; // classes 5: the shapes no longer fit the payload
        check(&b, 42, "inconsistent shapes");
        let mut b = good.clone();
        b[24] = 3; // positions 3
        check(&b, 42, "payload bytes");
        check(&good[..good.len() - 4], 42, "truncated");
        check(&good[..10], 42, "shorter than");
        check(&good, 43, "another teacher");
        let mut b = good.clone();
        b[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&b, 42, "ascending");
    }
}

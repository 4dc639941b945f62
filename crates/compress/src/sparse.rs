//! `model.sparse`: storage for pruned weights, a bitmask plus the packed non-zero values per
//! tensor.
//!
//! This is a **storage** format. Dense kernels gain no speed from unstructured sparsity, and
//! refinery has no sparse kernel: a model is run from its dense `model.safetensors` (zeros
//! included); `model.sparse` is what to ship or archive when bytes matter, and
//! [`read_sparse`] turns it back into the dense tensors, bit for bit.
//!
//! Layout (all integers little-endian):
//!
//! | field | bytes |
//! |---|---|
//! | magic `RFSPARSE` | 8 |
//! | format version ([`SPARSE_VERSION`]) | u32 |
//! | reserved (0) | u32 |
//! | total file length in bytes | u64 |
//! | tensor count `T` | u32 |
//! | `T` × { name length `L` (u32), name (`L` bytes UTF-8), rank `R` (u32), `R` × dim (u64), nnz (u64) } | |
//! | `T` × { bitmask: `ceil(n / 8)` bytes, bit `i % 8` of byte `i / 8` set when element `i` is stored; nnz × f32 values in element order } | |
//!
//! An element is stored when its bits are not those of `+0.0` (so a `-0.0` survives the round
//! trip). Every field is checked on load: magic, version, length, sizes that overflow, a
//! bitmask whose population is not `nnz`, stray bits after the last element, trailing bytes.

use std::path::Path;

use crate::CompressError;

/// The file name of the sparse copy, next to `model.safetensors`.
pub const SPARSE_FILE: &str = "model.sparse";

/// The first 8 bytes of every sparse file.
pub const SPARSE_MAGIC: &[u8; 8] = b"RFSPARSE";

/// The format version this code writes and reads.
pub const SPARSE_VERSION: u32 = 1;

/// Largest rank accepted on load (weights are 2-D; this bounds what a corrupt file can ask).
const MAX_RANK: usize = 8;

/// Magic + version + reserved + total length + tensor count.
const FIXED_HEADER: usize = 8 + 4 + 4 + 8 + 4;

/// A dense tensor (row-major f32), as written to or read from a sparse file.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Number of elements stored by the sparse format (bits other than `+0.0`).
pub fn stored_count(values: &[f32]) -> usize {
    values.iter().filter(|v| v.to_bits() != 0).count()
}

/// Bytes a tensor's data takes in the sparse format: the bitmask plus the packed values.
pub fn data_bytes(len: usize, nnz: usize) -> u64 {
    len.div_ceil(8) as u64 + 4 * nnz as u64
}

/// Bytes a tensor's header entry takes: name, rank, dims, nnz.
fn entry_bytes(name: &str, rank: usize) -> u64 {
    4 + name.len() as u64 + 4 + 8 * rank as u64 + 8
}

/// Total size of the sparse file for `tensors`: what [`encode`] writes, without writing it.
pub fn encoded_len(tensors: &[DenseTensor]) -> u64 {
    FIXED_HEADER as u64
        + tensors
            .iter()
            .map(|t| {
                entry_bytes(&t.name, t.shape.len())
                    + data_bytes(t.values.len(), stored_count(&t.values))
            })
            .sum::<u64>()
}

/// Encodes `tensors` (in the given order) as a sparse file image.
///
/// Fails when a tensor's shape does not multiply out to its number of values.
pub fn encode(tensors: &[DenseTensor]) -> Result<Vec<u8>, CompressError> {
    for t in tensors {
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.values.len()) {
            return Err(CompressError::Invalid(format!(
                "tensor `{}`: shape {:?} does not hold {} values",
                t.name,
                t.shape,
                t.values.len()
            )));
        }
    }
    let count = u32::try_from(tensors.len())
        .map_err(|_| CompressError::Invalid(format!("{} tensors: too many", tensors.len())))?;
    let total = encoded_len(tensors);
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    out.extend_from_slice(SPARSE_MAGIC);
    out.extend_from_slice(&SPARSE_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for t in tensors {
        let name_len = u32::try_from(t.name.len()).map_err(|_| {
            CompressError::Invalid(format!("tensor name of {} bytes: too long", t.name.len()))
        })?;
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(t.name.as_bytes());
        out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for &d in &t.shape {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&(stored_count(&t.values) as u64).to_le_bytes());
    }
    for t in tensors {
        let mut mask = vec![0u8; t.values.len().div_ceil(8)];
        for (i, v) in t.values.iter().enumerate() {
            if v.to_bits() != 0 {
                mask[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&mask);
        for v in t.values.iter().filter(|v| v.to_bits() != 0) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    debug_assert_eq!(out.len() as u64, total);
    Ok(out)
}

/// Writes `tensors` to `path` (through a temporary sibling, renamed when complete); returns
/// the file's size in bytes.
pub fn write_sparse(path: &Path, tensors: &[DenseTensor]) -> Result<u64, CompressError> {
    let bytes = encode(tensors)?;
    let tmp = path.with_extension("sparse.partial");
    std::fs::write(&tmp, &bytes).map_err(|e| CompressError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CompressError::io(path, e))?;
    Ok(bytes.len() as u64)
}

/// Reads a sparse file back into dense tensors, in file order. Every malformed input is an
/// error naming `path` (and the tensor, once its name is known), never a panic.
pub fn read_sparse(path: &Path) -> Result<Vec<DenseTensor>, CompressError> {
    let bytes = std::fs::read(path).map_err(|e| CompressError::io(path, e))?;
    decode(&bytes).map_err(|message| CompressError::checkpoint(path, message))
}

/// A bounds-checked little-endian reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// One header entry, checked against the bytes the file can hold.
struct Entry {
    name: String,
    shape: Vec<usize>,
    len: usize,
    nnz: usize,
}

/// Decodes a sparse file image; the error is a message without the path (see [`read_sparse`]).
pub fn decode(bytes: &[u8]) -> Result<Vec<DenseTensor>, String> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(8, "the magic bytes")?;
    if magic != SPARSE_MAGIC {
        return Err(format!(
            "not a refinery sparse file (magic {magic:02x?}, expected `RFSPARSE`)"
        ));
    }
    let version = r.u32("the format version")?;
    if version != SPARSE_VERSION {
        return Err(format!(
            "format version {version}, this build reads version {SPARSE_VERSION}"
        ));
    }
    let _reserved = r.u32("the reserved field")?;
    let total = r.u64("the total length")?;
    if total != bytes.len() as u64 {
        return Err(format!(
            "the header records {total} bytes but the file has {} (truncated or appended to)",
            bytes.len()
        ));
    }
    let count = r.u32("the tensor count")? as usize;
    // Each entry takes at least 20 bytes: a corrupt count cannot make us allocate much.
    if count > r.remaining() / 20 {
        return Err(format!(
            "{count} tensors cannot fit in the {} bytes left",
            r.remaining()
        ));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count);
    for index in 0..count {
        let name_len = r.u32(&format!("the name length of tensor #{index}"))? as usize;
        let name = std::str::from_utf8(r.take(name_len, &format!("the name of tensor #{index}"))?)
            .map_err(|_| format!("the name of tensor #{index} is not UTF-8"))?
            .to_string();
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("tensor `{name}` appears twice"));
        }
        let at = |m: String| format!("tensor `{name}`: {m}");
        let rank = r.u32("the rank").map_err(at)? as usize;
        if rank > MAX_RANK {
            return Err(at(format!("rank {rank} (at most {MAX_RANK})")));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            let d = r.u64("a dimension").map_err(at)?;
            shape.push(usize::try_from(d).map_err(|_| at(format!("dimension {d} too large")))?);
        }
        let len = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| at(format!("shape {shape:?} overflows")))?;
        let nnz = r.u64("the non-zero count").map_err(at)?;
        if nnz > len as u64 {
            return Err(at(format!("{nnz} non-zeros in {len} elements")));
        }
        entries.push(Entry {
            name,
            shape,
            len,
            nnz: nnz as usize,
        });
    }
    let mut tensors = Vec::with_capacity(entries.len());
    for e in entries {
        let at = |m: String| format!("tensor `{}`: {m}", e.name);
        // Checked before allocating: the data must be in the file.
        let need = data_bytes(e.len, e.nnz);
        if need > r.remaining() as u64 {
            return Err(at(format!(
                "truncated: its data needs {need} bytes, {} left",
                r.remaining()
            )));
        }
        let mask = r.take(e.len.div_ceil(8), "the bitmask").map_err(at)?;
        let set: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
        if set != e.nnz {
            return Err(at(format!(
                "the bitmask has {set} bits set but the header says nnz = {}",
                e.nnz
            )));
        }
        if e.len % 8 != 0 {
            if let Some(&last) = mask.last() {
                if last >> (e.len % 8) != 0 {
                    return Err(at("bits set past the last element".to_string()));
                }
            }
        }
        let packed = r.take(4 * e.nnz, "the values").map_err(at)?;
        let mut values = vec![0f32; e.len];
        let mut next = packed.chunks_exact(4);
        for (i, v) in values.iter_mut().enumerate() {
            if mask[i / 8] >> (i % 8) & 1 == 1 {
                let b = next
                    .next()
                    .ok_or_else(|| at("fewer values than bits".to_string()))?;
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        tensors.push(DenseTensor {
            name: e.name,
            shape: e.shape,
            values,
        });
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} trailing bytes after the last tensor",
            r.remaining()
        ));
    }
    Ok(tensors)
}

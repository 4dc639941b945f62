//! The token shard format (`.tok`): a fixed header, the tokens, and a
//! document-boundary index. Little-endian throughout; memory-mapped on read.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"RFTOKENS"
//!      8     4  version (u32) = 1
//!     12     4  dtype: bytes per token, 2 (u16) or 4 (u32), from the vocab size
//!     16     8  header size (u64) = 64
//!     24     8  token count n (u64)
//!     32     8  document count d (u64)
//!     40     8  vocab size (u64): every token id is below it
//!     48     4  separator id (u32) appended after each document, u32::MAX = none
//!     52     4  reserved, 0
//!     56     8  index offset (u64) = align8(64 + n * dtype)
//!     64        tokens: n × dtype
//!               zero padding to a multiple of 8
//!  index        d + 1 token offsets (u64): document k is tokens[idx[k]..idx[k+1]]
//!               (its separator included); idx[0] = 0, idx[d] = n
//! ```
//!
//! The file size must equal `index offset + (d + 1) × 8` exactly; [`TokenShard::open`]
//! checks that, the magic, the version, the dtype and the index, so a
//! truncated or foreign file is an error with a hint, never a panic.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{Result, TokenizeError};

pub const MAGIC: &[u8; 8] = b"RFTOKENS";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: u64 = 64;
/// File extension of token shards.
pub const EXTENSION: &str = "tok";
/// Separator field value meaning "no separator".
pub const NO_SEPARATOR: u32 = u32::MAX;

/// Token width on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U16,
    U32,
}

impl Dtype {
    /// u16 when every id fits (vocab size ≤ 65,536), else u32.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            Dtype::U16
        } else {
            Dtype::U32
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }
}

/// The parsed header of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub dtype: Dtype,
    pub tokens: u64,
    pub docs: u64,
    pub vocab_size: u64,
    /// Appended after every document, if any.
    pub separator: Option<u32>,
}

fn align8(x: u64) -> u64 {
    x.div_ceil(8) * 8
}

impl Header {
    fn index_offset(&self) -> Option<u64> {
        self.tokens
            .checked_mul(self.dtype.bytes())
            .and_then(|b| b.checked_add(HEADER_SIZE))
            .map(align8)
    }

    fn file_size(&self) -> Option<u64> {
        let idx = self.docs.checked_add(1)?.checked_mul(8)?;
        self.index_offset()?.checked_add(idx)
    }

    fn to_bytes(self) -> [u8; HEADER_SIZE as usize] {
        let mut h = [0u8; HEADER_SIZE as usize];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(self.dtype.bytes() as u32).to_le_bytes());
        h[16..24].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        h[24..32].copy_from_slice(&self.tokens.to_le_bytes());
        h[32..40].copy_from_slice(&self.docs.to_le_bytes());
        h[40..48].copy_from_slice(&self.vocab_size.to_le_bytes());
        h[48..52].copy_from_slice(&self.separator.unwrap_or(NO_SEPARATOR).to_le_bytes());
        h[56..64].copy_from_slice(&self.index_offset().unwrap_or(0).to_le_bytes());
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

const REWRITE: &str =
    "the shard is truncated or corrupt: re-run `refinery tokenize` into a fresh --output directory";

/// Parses and checks a header against the file size.
pub fn parse_header(path: &Path, bytes: &[u8], file_size: u64) -> Result<Header> {
    let err = |m: String, hint: &str| TokenizeError::shard(path, m, hint);
    if bytes.len() < HEADER_SIZE as usize {
        return Err(err(
            format!(
                "file is {} bytes, shorter than the {HEADER_SIZE}-byte header",
                bytes.len()
            ),
            REWRITE,
        ));
    }
    if &bytes[0..8] != MAGIC {
        return Err(err(
            format!("bad magic {:?}, expected {:?}", String::from_utf8_lossy(&bytes[0..8]), "RFTOKENS"),
            "this is not a refinery token shard (.tok); llm.c/nanoGPT .bin files are a different format",
        ));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(err(
            format!("format version {version}, this build reads version {VERSION}"),
            "the shard was written by another refinery version: re-tokenize, or use the matching refinery",
        ));
    }
    let dtype = match u32_at(bytes, 12) {
        2 => Dtype::U16,
        4 => Dtype::U32,
        d => {
            return Err(err(
                format!("dtype {d} bytes per token, expected 2 or 4"),
                REWRITE,
            ))
        }
    };
    let header_size = u64_at(bytes, 16);
    if header_size != HEADER_SIZE {
        return Err(err(
            format!("header size {header_size}, expected {HEADER_SIZE}"),
            REWRITE,
        ));
    }
    let sep = u32_at(bytes, 48);
    let h = Header {
        dtype,
        tokens: u64_at(bytes, 24),
        docs: u64_at(bytes, 32),
        vocab_size: u64_at(bytes, 40),
        separator: (sep != NO_SEPARATOR).then_some(sep),
    };
    let expected = h.file_size().ok_or_else(|| {
        err(
            format!(
                "header counts overflow: {} tokens, {} docs",
                h.tokens, h.docs
            ),
            REWRITE,
        )
    })?;
    if h.index_offset() != Some(u64_at(bytes, 56)) {
        return Err(err(
            format!(
                "index offset {} does not match {} tokens",
                u64_at(bytes, 56),
                h.tokens
            ),
            REWRITE,
        ));
    }
    if file_size != expected {
        return Err(err(
            format!(
                "file is {file_size} bytes but the header ({} tokens of {} bytes, {} documents) needs {expected}",
                h.tokens,
                h.dtype.bytes(),
                h.docs
            ),
            REWRITE,
        ));
    }
    if dtype == Dtype::U16 && h.vocab_size > 1 << 16 {
        return Err(err(
            format!("vocab size {} does not fit u16 tokens", h.vocab_size),
            REWRITE,
        ));
    }
    if let Some(sep) = h.separator.filter(|&s| u64::from(s) >= h.vocab_size) {
        return Err(err(
            format!(
                "separator id {sep} is not below the vocab size {} (and so does not fit \
                 the shard's {}-byte tokens)",
                h.vocab_size,
                h.dtype.bytes()
            ),
            REWRITE,
        ));
    }
    Ok(h)
}

/// A memory-mapped, checked token shard.
#[derive(Debug)]
pub struct TokenShard {
    path: PathBuf,
    map: Mmap,
    header: Header,
    index_at: usize,
}

impl TokenShard {
    /// Opens and checks a shard: size, magic, version, dtype, and that the
    /// document index is non-decreasing from 0 to the token count.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| TokenizeError::io(path, e))?;
        let size = file
            .metadata()
            .map_err(|e| TokenizeError::io(path, e))?
            .len();
        if size < HEADER_SIZE {
            return Err(TokenizeError::shard(
                path,
                format!("file is {size} bytes, shorter than the {HEADER_SIZE}-byte header"),
                REWRITE,
            ));
        }
        // SAFETY: the file is opened read-only. Shards are written to a temp
        // file and renamed into place, so refinery never modifies a mapped
        // shard; another process truncating it would be a misuse.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| TokenizeError::io(path, e))?;
        let header = parse_header(path, &map, size)?;
        let index_at = header.index_offset().unwrap_or(0) as usize;
        let shard = TokenShard {
            path: path.to_path_buf(),
            map,
            header,
            index_at,
        };
        let mut prev = 0;
        for k in 0..=header.docs as usize {
            let off = shard.doc_offset(k);
            if (k == 0 && off != 0) || off < prev || off > header.tokens {
                return Err(TokenizeError::shard(
                    path,
                    format!("document index entry {k} = {off} is out of order (previous {prev}, {} tokens)", header.tokens),
                    REWRITE,
                ));
            }
            prev = off;
        }
        if prev != header.tokens {
            return Err(TokenizeError::shard(
                path,
                format!(
                    "document index ends at {prev}, not at the token count {}",
                    header.tokens
                ),
                REWRITE,
            ));
        }
        Ok(shard)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of tokens.
    pub fn len(&self) -> u64 {
        self.header.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.header.tokens == 0
    }

    /// Number of documents.
    pub fn num_docs(&self) -> u64 {
        self.header.docs
    }

    fn doc_offset(&self, k: usize) -> u64 {
        u64_at(&self.map, self.index_at + 8 * k)
    }

    /// Token range of document `k` (separator included), `None` past the end.
    pub fn doc_range(&self, k: u64) -> Option<Range<u64>> {
        (k < self.header.docs).then(|| self.doc_offset(k as usize)..self.doc_offset(k as usize + 1))
    }

    /// Token `i`; `None` past the end.
    pub fn token(&self, i: u64) -> Option<u32> {
        if i >= self.header.tokens {
            return None;
        }
        let at = HEADER_SIZE as usize + (i * self.header.dtype.bytes()) as usize;
        Some(match self.header.dtype {
            Dtype::U16 => u16::from_le_bytes([self.map[at], self.map[at + 1]]) as u32,
            Dtype::U32 => u32_at(&self.map, at),
        })
    }

    /// Appends tokens `range` (clamped to the shard) to `out`.
    pub fn read_into(&self, range: Range<u64>, out: &mut Vec<u32>) {
        let end = range.end.min(self.header.tokens);
        let start = range.start.min(end);
        let w = self.header.dtype.bytes() as usize;
        let bytes = &self.map
            [HEADER_SIZE as usize + start as usize * w..HEADER_SIZE as usize + end as usize * w];
        out.reserve(bytes.len() / w);
        match self.header.dtype {
            Dtype::U16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32),
            ),
            Dtype::U32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
        }
    }

    /// Tokens `range` (clamped to the shard) as a vector.
    pub fn tokens(&self, range: Range<u64>) -> Vec<u32> {
        let mut v = Vec::new();
        self.read_into(range, &mut v);
        v
    }

    /// Scans every token and checks it is below the shard's own vocab size
    /// (O(n); `open` does not do this). Names the first offending position.
    pub fn verify_tokens(&self) -> Result<()> {
        self.check_ids_below(self.header.vocab_size)
    }

    /// The largest token id (a scan of every token, a few GB/s), `None` for
    /// an empty shard.
    pub fn max_id(&self) -> Option<u32> {
        let mut max = None;
        self.scan(|chunk, _| {
            let m = chunk.iter().copied().max();
            max = max.max(m);
            true
        });
        max
    }

    /// Checks that every token id is below `limit` (a model's vocabulary
    /// size), with a scan that is cheap next to training on the tokens. The
    /// error names the shard, the token's position and its document.
    pub fn check_ids_below(&self, limit: u64) -> Result<()> {
        let mut bad = None;
        self.scan(|chunk, start| {
            // A fast max first; the position only when something is out of range.
            if chunk
                .iter()
                .copied()
                .max()
                .is_none_or(|m| u64::from(m) < limit)
            {
                return true;
            }
            if let Some(p) = chunk.iter().position(|&t| u64::from(t) >= limit) {
                bad = Some((chunk[p], start + p as u64));
            }
            false
        });
        let Some((id, pos)) = bad else {
            return Ok(());
        };
        let doc = self.doc_at(pos);
        let hint = if limit < self.header.vocab_size {
            format!(
                "the shard was tokenized with a vocabulary of {} ids, more than the model's \
                 {limit}: re-tokenize with the model's tokenizer, or use a model with a large \
                 enough vocab_size",
                self.header.vocab_size
            )
        } else {
            REWRITE.to_string()
        };
        Err(TokenizeError::shard(
            &self.path,
            format!(
                "token {id} at position {pos} (document {doc}) is not below the vocab size {limit}"
            ),
            hint,
        ))
    }

    /// Calls `f(chunk, position of its first token)` over the tokens in
    /// chunks of 1 Mi tokens, until it returns false.
    fn scan(&self, mut f: impl FnMut(&[u32], u64) -> bool) {
        let mut buf = Vec::new();
        let mut start = 0;
        while start < self.header.tokens {
            buf.clear();
            let end = (start + (1 << 20)).min(self.header.tokens);
            self.read_into(start..end, &mut buf);
            if !f(&buf, start) {
                return;
            }
            start = end;
        }
    }

    /// The document holding token `pos` (binary search of the index).
    fn doc_at(&self, pos: u64) -> u64 {
        let (mut lo, mut hi) = (0u64, self.header.docs);
        // Invariant: doc_offset(lo) <= pos (documents are non-decreasing from 0).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.doc_offset(mid as usize) <= pos {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Writes one shard: documents are appended, then [`ShardWriter::finish`]
/// writes the index and the header and renames the hidden temp file into place.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    header: Header,
    offsets: Vec<u64>,
}

impl ShardWriter {
    /// Starts `path` (written as `.NAME.tmp` in the same directory until finished).
    pub fn create(path: &Path, vocab_size: usize, separator: Option<u32>) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| TokenizeError::io(&tmp, e))?;
        let header = Header {
            dtype: Dtype::for_vocab(vocab_size),
            tokens: 0,
            docs: 0,
            vocab_size: vocab_size as u64,
            separator,
        };
        if let Some(s) = separator {
            if s as usize >= vocab_size {
                return Err(TokenizeError::Invalid(format!(
                    "separator id {s} is outside the vocabulary (size {vocab_size})"
                )));
            }
        }
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&[0u8; HEADER_SIZE as usize])
            .map_err(|e| TokenizeError::io(&tmp, e))?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            tmp,
            out,
            header,
            offsets: vec![0],
        })
    }

    /// The final path of the shard.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.header.tokens
    }

    /// Documents written so far.
    pub fn docs(&self) -> u64 {
        self.header.docs
    }

    /// Appends one document's ids, then the separator if the shard has one.
    pub fn push_doc(&mut self, ids: &[u32]) -> Result<()> {
        let vocab = self.header.vocab_size;
        let mut buf = Vec::with_capacity((ids.len() + 1) * self.header.dtype.bytes() as usize);
        for &id in ids.iter().chain(self.header.separator.as_ref()) {
            if id as u64 >= vocab {
                return Err(TokenizeError::Invalid(format!(
                    "{}: token id {id} is not below the vocab size {vocab}",
                    self.path.display()
                )));
            }
            match self.header.dtype {
                Dtype::U16 => buf.extend_from_slice(&(id as u16).to_le_bytes()),
                Dtype::U32 => buf.extend_from_slice(&id.to_le_bytes()),
            }
        }
        self.out
            .write_all(&buf)
            .map_err(|e| TokenizeError::io(&self.tmp, e))?;
        self.header.tokens += ids.len() as u64 + u64::from(self.header.separator.is_some());
        self.header.docs += 1;
        self.offsets.push(self.header.tokens);
        Ok(())
    }

    /// Writes padding, the index and the header, then renames into place.
    pub fn finish(mut self) -> Result<Header> {
        let io = |e| TokenizeError::io(&self.tmp, e);
        let written = HEADER_SIZE + self.header.tokens * self.header.dtype.bytes();
        let pad = (align8(written) - written) as usize;
        self.out.write_all(&[0u8; 8][..pad]).map_err(io)?;
        let mut idx = Vec::with_capacity(self.offsets.len() * 8);
        for o in &self.offsets {
            idx.extend_from_slice(&o.to_le_bytes());
        }
        self.out.write_all(&idx).map_err(io)?;
        self.out.seek(SeekFrom::Start(0)).map_err(io)?;
        self.out.write_all(&self.header.to_bytes()).map_err(io)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| TokenizeError::io(&self.tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| TokenizeError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| TokenizeError::io(&self.path, e))?;
        Ok(self.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_roundtrip_u16_and_u32() {
        let dir = tempfile::tempdir().unwrap();
        for (vocab, sep) in [(1000usize, Some(999)), (100_000, None)] {
            let p = dir.path().join(format!("{vocab}.tok"));
            let mut w = ShardWriter::create(&p, vocab, sep).unwrap();
            w.push_doc(&[1, 2, 3]).unwrap();
            w.push_doc(&[]).unwrap();
            w.push_doc(&[(vocab - 2) as u32]).unwrap();
            assert!(w.push_doc(&[vocab as u32]).is_err());
            w.finish().unwrap();
            let s = TokenShard::open(&p).unwrap();
            let e = sep.map_or(0, |_| 1);
            assert_eq!(s.num_docs(), 3);
            assert_eq!(s.len(), 4 + 3 * e);
            assert_eq!(s.doc_range(0), Some(0..3 + e));
            assert_eq!(s.doc_range(3), None);
            let mut want = vec![1, 2, 3];
            want.extend(sep);
            want.extend(sep);
            want.push((vocab - 2) as u32);
            want.extend(sep);
            assert_eq!(s.tokens(0..100), want);
            assert_eq!(s.token(0), Some(1));
            s.verify_tokens().unwrap();
        }
    }
}

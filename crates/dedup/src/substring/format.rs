//! The binary intermediate files of substring dedup.
//!
//! Every file has the 24-byte little-endian header of the MinHash files:
//! `magic[8]`, `version u32`, `record_len u32`, `count u64`, followed by
//! exactly `count` fixed-size records:
//!
//! | kind | magic | record |
//! |---|---|---|
//! | units of one input file, bytes | `RFSSUNTB` | 1: the text bytes of its documents, back to back |
//! | units of one input file, tokens | `RFSSUNTT` | 8: xxh3-64 of each token, **big-endian** (byte order = numeric order) |
//! | document lengths of one input file | `RFSSDOCS` | 8: units of each document, u64 |
//! | eligible suffixes of one shard | `RFSSSUFX` | 4: offset from the shard's first unit, in suffix-array order |
//! | removed ranges of one input file | `RFSSMARK` | 12: doc u32, start u32, end u32 (units, within the doc; sorted, disjoint) |
//!
//! Readers check the magic, the version, the record length and that the
//! file is exactly `24 + count·record` bytes, so a truncated or foreign file
//! is an error naming the path. Writers write `.NAME.tmp`, fsync, rename.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::binfmt::{self, Spec};

use super::{Result, SubstringError};

pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = binfmt::HEADER_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    UnitBytes,
    UnitTokens,
    Docs,
    Suffixes,
    Marks,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::UnitBytes => b"RFSSUNTB",
            Kind::UnitTokens => b"RFSSUNTT",
            Kind::Docs => b"RFSSDOCS",
            Kind::Suffixes => b"RFSSSUFX",
            Kind::Marks => b"RFSSMARK",
        }
    }

    fn spec(self) -> Spec {
        Spec {
            magic: self.magic(),
            version: FORMAT_VERSION,
            record_len: self.record_len() as u32,
        }
    }

    pub fn record_len(self) -> usize {
        match self {
            Kind::UnitBytes => 1,
            Kind::UnitTokens | Kind::Docs => 8,
            Kind::Suffixes => 4,
            Kind::Marks => 12,
        }
    }
}

pub(super) fn corrupt(path: &Path, message: impl Into<String>) -> SubstringError {
    SubstringError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(super) fn io(path: &Path, e: std::io::Error) -> SubstringError {
    SubstringError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Streams fixed-size records into `path` through a temp file.
pub struct RecordWriter {
    kind: Kind,
    out: binfmt::Writer,
    bytes: u64,
}

impl RecordWriter {
    pub fn create(path: &Path, kind: Kind) -> Result<Self> {
        Ok(RecordWriter {
            kind,
            out: binfmt::Writer::create(path, kind.spec(), 1 << 20)?,
            bytes: 0,
        })
    }

    /// Appends whole records (`bytes.len()` a multiple of the record length).
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(bytes.len() % self.kind.record_len(), 0);
        self.bytes += bytes.len() as u64;
        Ok(self.out.write(bytes)?)
    }

    pub fn push_u64(&mut self, x: u64) -> Result<()> {
        self.push(&x.to_le_bytes())
    }

    /// Writes the count into the header, fsyncs and renames; returns the count.
    pub fn finish(self) -> Result<u64> {
        let count = self.bytes / self.kind.record_len() as u64;
        self.out.finish(count)?;
        Ok(count)
    }
}

/// Opens `path`, checks its header and length; returns the file positioned
/// after the header and the record count.
pub fn open(path: &Path, kind: Kind) -> Result<(File, u64)> {
    let (file, count, _) = binfmt::open(path, kind.spec())?;
    Ok((file, count))
}

/// Reads a whole file of u64 records (document lengths).
pub fn read_u64s(path: &Path, kind: Kind) -> Result<Vec<u64>> {
    let (file, count) = open(path, kind)?;
    let mut bytes = Vec::new();
    BufReader::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    if bytes.len() as u64 != count * 8 {
        return Err(corrupt(path, "changed while being read"));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect())
}

/// Streams the u32 records of a suffix file.
pub struct SuffixReader {
    path: PathBuf,
    input: BufReader<File>,
    left: u64,
}

impl SuffixReader {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_capacity(path, 256 << 10)
    }

    /// Opens with a read buffer of `capacity` bytes.
    pub fn open_with_capacity(path: &Path, capacity: usize) -> Result<Self> {
        let (file, count) = open(path, Kind::Suffixes)?;
        Ok(SuffixReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(capacity, file),
            left: count,
        })
    }

    pub fn next_offset(&mut self) -> Result<Option<u32>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut b = [0u8; 4];
        self.input
            .read_exact(&mut b)
            .map_err(|e| io(&self.path, e))?;
        self.left -= 1;
        Ok(Some(u32::from_le_bytes(b)))
    }
}

/// One removed range: units `start..end` of document `doc` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub doc: u32,
    pub start: u32,
    pub end: u32,
}

impl Mark {
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.doc.to_le_bytes());
        b[4..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..].copy_from_slice(&self.end.to_le_bytes());
        b
    }
}

/// Reads the marks of a file, checking they are sorted, disjoint, non-empty
/// and inside the documents whose lengths are `doc_lens`.
pub fn read_marks(path: &Path, doc_lens: &[u64]) -> Result<Vec<Mark>> {
    let (file, count) = open(path, Kind::Marks)?;
    let mut bytes = Vec::new();
    BufReader::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    if bytes.len() as u64 != count * 12 {
        return Err(corrupt(path, "changed while being read"));
    }
    let mut out: Vec<Mark> = Vec::with_capacity(count as usize);
    for c in bytes.chunks_exact(12) {
        let w = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        let m = Mark {
            doc: w(0),
            start: w(4),
            end: w(8),
        };
        let len = doc_lens.get(m.doc as usize).copied();
        let ordered = out
            .last()
            .is_none_or(|p| (p.doc, p.end) < (m.doc, m.start) || p.doc < m.doc);
        if m.start >= m.end || len.is_none_or(|l| m.end as u64 > l) || !ordered {
            return Err(corrupt(
                path,
                format!(
                    "range {}..{} of document {} is empty, out of order or outside the document",
                    m.start, m.end, m.doc
                ),
            ));
        }
        out.push(m);
    }
    Ok(out)
}

/// A read-only map of a units file (the text the merge step compares).
pub struct UnitsMap {
    map: memmap2::Mmap,
    count: u64,
}

impl UnitsMap {
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        let (file, count) = open(path, kind)?;
        // SAFETY: the file is opened read-only. Units files are written to a
        // temp file and renamed into place, so refinery never modifies a
        // mapped file; another process truncating it would be a misuse.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io(path, e))?;
        if (map.len() as u64) != HEADER_LEN + count * kind.record_len() as u64 {
            return Err(corrupt(path, "changed while being mapped"));
        }
        Ok(UnitsMap { map, count })
    }

    /// The unit bytes after the header.
    pub fn bytes(&self) -> &[u8] {
        &self.map[HEADER_LEN as usize..]
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.bin");
        let mut w = RecordWriter::create(&p, Kind::Docs).unwrap();
        w.push_u64(5).unwrap();
        w.push_u64(0).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        assert_eq!(read_u64s(&p, Kind::Docs).unwrap(), vec![5, 0]);
        assert!(read_u64s(&p, Kind::Suffixes).is_err());
        let bytes = std::fs::read(&p).unwrap();
        for cut in [0, 10, 24, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = read_u64s(&p, Kind::Docs).err().unwrap();
            assert!(e.to_string().contains("malformed"), "{e}");
        }
        let mut bad = bytes.clone();
        bad[8] = 9;
        std::fs::write(&p, &bad).unwrap();
        assert!(read_u64s(&p, Kind::Docs).is_err());

        let m = dir.path().join("m.bin");
        let mut w = RecordWriter::create(&m, Kind::Marks).unwrap();
        for mk in [(0, 1, 3), (0, 4, 5), (2, 0, 1)] {
            w.push(
                &Mark {
                    doc: mk.0,
                    start: mk.1,
                    end: mk.2,
                }
                .to_bytes(),
            )
            .unwrap();
        }
        w.finish().unwrap();
        assert_eq!(read_marks(&m, &[5, 0, 1]).unwrap().len(), 3);
        // A range past its document, or a missing document, is refused.
        assert!(read_marks(&m, &[4, 0, 1]).is_err());
        assert!(read_marks(&m, &[5, 0]).is_err());
        assert!(!dir.path().join(".m.bin.tmp").exists());
    }
}

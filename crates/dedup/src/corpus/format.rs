//! The binary intermediate files of corpus-wide exact, URL and line dedup.
//!
//! The header is the one of the MinHash files (`minhash/format.rs`): 24
//! bytes, little-endian.
//!
//! ```text
//! magic   [u8; 8]   which kind of file (below)
//! version u32       FORMAT_VERSION
//! record  u32       bytes per record, 0 for variable-length records
//! count   u64       number of records
//! ```
//!
//! | kind | magic | record |
//! |---|---|---|
//! | key run (exact, urls) | `RFCDKEYS` | variable: hash u128, rank u64, doc key u64, id len u32, id bytes; sorted by (hash, rank, key) |
//! | removals (exact, urls) | `RFCDREMV` | variable: doc key u64, kept key u64, id len u32, kept id bytes; sorted by doc key |
//! | line counts run | `RFCDCNTS` | 24: hash u128, count u64; sorted by hash |
//! | duplicated line hashes | `RFCDDUPS` | 16: hash u128; sorted |
//!
//! Readers check the magic, the version, the record length and that the
//! records fill the file exactly, so a truncated or foreign file is an error
//! naming the path, never a panic or a silent short read. Length fields are
//! checked against the bytes left before anything is allocated. Writers
//! write `.NAME.tmp`, fsync and rename.

use std::path::Path;

use crate::binfmt::{self, Spec};

use super::Result;

pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = binfmt::HEADER_LEN;

/// The kinds of intermediate file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Removals,
    Counts,
    Dups,
}

impl Kind {
    fn spec(self) -> Spec {
        let (magic, record_len) = match self {
            Kind::Keys => (b"RFCDKEYS", 0),
            Kind::Removals => (b"RFCDREMV", 0),
            Kind::Counts => (b"RFCDCNTS", 24),
            Kind::Dups => (b"RFCDDUPS", 16),
        };
        Spec {
            magic,
            version: FORMAT_VERSION,
            record_len,
        }
    }
}

/// One document of a key run: the hash of its normalized text (exact) or
/// URL (urls), its rank among equal hashes (0, or the inverted date for
/// `--keep newest`), its key and its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRecord {
    pub hash: u128,
    pub rank: u64,
    pub key: u64,
    pub id: String,
}

/// One removed document: its key, and the key and id of the kept copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub key: u64,
    pub kept: u64,
    pub kept_id: String,
}

/// Streams records into `path` through a temp file; [`RecordWriter::finish`]
/// writes the count into the header, fsyncs and renames.
pub struct RecordWriter {
    out: binfmt::Writer,
    count: u64,
}

impl RecordWriter {
    pub fn create(path: &Path, kind: Kind) -> Result<Self> {
        Ok(RecordWriter {
            out: binfmt::Writer::create(path, kind.spec(), 256 << 10)?,
            count: 0,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        Ok(self.out.write(bytes)?)
    }

    pub fn push_key(&mut self, r: &KeyRecord) -> Result<()> {
        self.put(&r.hash.to_le_bytes())?;
        self.put(&r.rank.to_le_bytes())?;
        self.put(&r.key.to_le_bytes())?;
        self.out.write_str(&r.id)?;
        self.count += 1;
        Ok(())
    }

    pub fn push_removal(&mut self, r: &Removal) -> Result<()> {
        self.put(&r.key.to_le_bytes())?;
        self.put(&r.kept.to_le_bytes())?;
        self.out.write_str(&r.kept_id)?;
        self.count += 1;
        Ok(())
    }

    pub fn push_count(&mut self, hash: u128, count: u64) -> Result<()> {
        self.put(&hash.to_le_bytes())?;
        self.put(&count.to_le_bytes())?;
        self.count += 1;
        Ok(())
    }

    pub fn push_hash(&mut self, hash: u128) -> Result<()> {
        self.put(&hash.to_le_bytes())?;
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<u64> {
        self.out.finish(self.count)?;
        Ok(self.count)
    }
}

/// Reads the records of one file, checking header and length.
pub struct RecordReader {
    input: binfmt::Reader,
}

impl RecordReader {
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        Ok(RecordReader {
            input: binfmt::Reader::open(path, kind.spec())?,
        })
    }

    pub fn count(&self) -> u64 {
        self.input.count()
    }

    pub fn path(&self) -> &Path {
        self.input.path()
    }

    pub fn next_key(&mut self) -> Result<Option<KeyRecord>> {
        let r = &mut self.input;
        if r.done()? {
            return Ok(None);
        }
        let hash = r.u128()?;
        let rank = r.u64()?;
        let key = r.u64()?;
        let id = r.string()?;
        r.record_read();
        Ok(Some(KeyRecord {
            hash,
            rank,
            key,
            id,
        }))
    }

    pub fn next_removal(&mut self) -> Result<Option<Removal>> {
        let r = &mut self.input;
        if r.done()? {
            return Ok(None);
        }
        let key = r.u64()?;
        let kept = r.u64()?;
        let kept_id = r.string()?;
        r.record_read();
        Ok(Some(Removal { key, kept, kept_id }))
    }

    pub fn next_count(&mut self) -> Result<Option<(u128, u64)>> {
        let r = &mut self.input;
        if r.done()? {
            return Ok(None);
        }
        let hash = r.u128()?;
        let count = r.u64()?;
        r.record_read();
        Ok(Some((hash, count)))
    }

    pub fn next_hash(&mut self) -> Result<Option<u128>> {
        let r = &mut self.input;
        if r.done()? {
            return Ok(None);
        }
        let hash = r.u128()?;
        r.record_read();
        Ok(Some(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.bin");
        let rec = KeyRecord {
            hash: u128::MAX - 5,
            rank: 7,
            key: 1 << 32 | 3,
            id: "doc-é".into(),
        };
        let mut w = RecordWriter::create(&p, Kind::Keys).unwrap();
        w.push_key(&rec).unwrap();
        assert_eq!(w.finish().unwrap(), 1);
        let mut r = RecordReader::open(&p, Kind::Keys).unwrap();
        assert_eq!(r.next_key().unwrap(), Some(rec));
        assert_eq!(r.next_key().unwrap(), None);
        assert!(RecordReader::open(&p, Kind::Removals)
            .err()
            .unwrap()
            .to_string()
            .contains("bad magic"));
        let bytes = std::fs::read(&p).unwrap();
        for cut in [bytes.len() - 1, 30, 10] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = RecordReader::open(&p, Kind::Keys).and_then(|mut r| r.next_key().map(|_| ()));
            let e = e.err().unwrap().to_string();
            assert!(e.contains("k.bin") && e.contains("truncated"), "{e}");
        }
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        let mut r = RecordReader::open(&p, Kind::Keys).unwrap();
        r.next_key().unwrap();
        assert!(r.next_key().is_err());

        let p = dir.path().join("c.bin");
        let mut w = RecordWriter::create(&p, Kind::Counts).unwrap();
        w.push_count(9, 2).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        let e = RecordReader::open(&p, Kind::Counts).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(!dir.path().join(".c.bin.tmp").exists());
    }
}

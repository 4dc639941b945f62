//! The binary intermediate files of MinHash dedup.
//!
//! Every file starts with a 24-byte header, all integers little-endian:
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
//! | signatures run | `RFMHSIGS` | 16: band hash u64, doc key u64 (sorted by hash, key) |
//! | bucket pairs | `RFMHPAIR` | 16: first key u64, other key u64 |
//! | doc ids of one input file | `RFMHDIDS` | variable: len u32, id bytes (UTF-8) |
//! | removals of one input file | `RFMHREMV` | variable: doc u32, cluster u32, kept key u64, id len u32, kept id bytes |
//!
//! A doc key is `(file index << 32) | doc index in the file` (see
//! [`super::DocKey`]). Readers check the magic, the version and that the
//! records fill the file exactly (a fixed-size file must be
//! `24 + count·record` bytes long; a variable one must end exactly after
//! its `count`-th record), so a truncated or foreign file is an error
//! naming the path, never a panic or a silent short read.
//!
//! Writers write `.NAME.tmp` next to the target, then fsync and rename, so
//! a killed step never leaves a file that looks complete.

use std::path::Path;

use crate::binfmt::{self, Spec};

use super::Result;

pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = binfmt::HEADER_LEN;

/// The kinds of intermediate file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Signatures,
    Pairs,
    Ids,
    Removals,
}

impl Kind {
    fn spec(self) -> Spec {
        let (magic, record_len) = match self {
            Kind::Signatures => (b"RFMHSIGS", 16),
            Kind::Pairs => (b"RFMHPAIR", 16),
            Kind::Ids => (b"RFMHDIDS", 0),
            Kind::Removals => (b"RFMHREMV", 0),
        };
        Spec {
            magic,
            version: FORMAT_VERSION,
            record_len,
        }
    }
}

/// Streams records into `path` through a temp file; [`RecordWriter::finish`]
/// writes the count into the header and renames.
pub struct RecordWriter {
    out: binfmt::Writer,
    count: u64,
}

impl RecordWriter {
    pub fn create(path: &Path, kind: Kind) -> Result<Self> {
        Ok(RecordWriter {
            out: binfmt::Writer::create(path, kind.spec(), 1 << 20)?,
            count: 0,
        })
    }

    /// A fixed-size record of two u64.
    pub fn push_pair(&mut self, x: u64, y: u64) -> Result<()> {
        let mut rec = [0u8; 16];
        rec[..8].copy_from_slice(&x.to_le_bytes());
        rec[8..].copy_from_slice(&y.to_le_bytes());
        self.out.write(&rec)?;
        self.count += 1;
        Ok(())
    }

    /// A document id (kind [`Kind::Ids`]).
    pub fn push_id(&mut self, id: &str) -> Result<()> {
        self.out.write_str(id)?;
        self.count += 1;
        Ok(())
    }

    /// A removal (kind [`Kind::Removals`]).
    pub fn push_removal(&mut self, r: &Removal) -> Result<()> {
        if u32::try_from(r.kept_id.len()).is_err() {
            return Err(binfmt::corrupt(self.out.path(), "id over 4 GiB").into());
        }
        self.out.write(&r.doc.to_le_bytes())?;
        self.out.write(&r.cluster.to_le_bytes())?;
        self.out.write(&r.kept.to_le_bytes())?;
        self.out.write_str(&r.kept_id)?;
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<u64> {
        self.out.finish(self.count)?;
        Ok(self.count)
    }
}

/// One removed document, as stored in `clusters/remove_FFFFF.bin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// Index of the removed document in its input file.
    pub doc: u32,
    /// Cluster id: clusters are numbered 0, 1, … in the order of their
    /// kept document's key.
    pub cluster: u32,
    /// Key of the kept representative.
    pub kept: u64,
    /// Id of the kept representative.
    pub kept_id: String,
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

    /// Records in the file, from the header.
    pub fn count(&self) -> u64 {
        self.input.count()
    }

    /// Next fixed record of two u64 ([`Kind::Signatures`], [`Kind::Pairs`]).
    pub fn next_pair(&mut self) -> Result<Option<(u64, u64)>> {
        if self.input.done()? {
            return Ok(None);
        }
        let x = self.input.u64()?;
        let y = self.input.u64()?;
        self.input.record_read();
        Ok(Some((x, y)))
    }

    /// Next document id ([`Kind::Ids`]).
    pub fn next_id(&mut self) -> Result<Option<String>> {
        if self.input.done()? {
            return Ok(None);
        }
        let s = self.input.string()?;
        self.input.record_read();
        Ok(Some(s))
    }

    /// Next removal ([`Kind::Removals`]).
    pub fn next_removal(&mut self) -> Result<Option<Removal>> {
        if self.input.done()? {
            return Ok(None);
        }
        let doc = self.input.u32()?;
        let cluster = self.input.u32()?;
        let kept = self.input.u64()?;
        let kept_id = self.input.string()?;
        self.input.record_read();
        Ok(Some(Removal {
            doc,
            cluster,
            kept,
            kept_id,
        }))
    }

    /// Reads every removal of a file, checking they are sorted by doc.
    ///
    /// Memory grows with the removals; the filter step streams them with
    /// [`RemovalCursor`] instead.
    pub fn read_removals(path: &Path) -> Result<Vec<Removal>> {
        let mut cursor = RemovalCursor::open(path)?;
        let mut out = Vec::with_capacity(cursor.count().min(1 << 20) as usize);
        while let Some(x) = cursor.next_removal()? {
            out.push(x);
        }
        Ok(out)
    }
}

/// Streams the removals of one file in document order, one record of
/// lookahead: memory does not grow with the number of removals.
///
/// Checks as it goes what [`RecordReader::read_removals`] checks up front:
/// the records are sorted by strictly increasing document index, and the
/// file ends exactly after its last record (checked when the lookahead runs
/// out, so once [`RemovalCursor::peek`] is `None` the whole file was valid).
pub struct RemovalCursor {
    reader: RecordReader,
    next: Option<Removal>,
}

impl RemovalCursor {
    pub fn open(path: &Path) -> Result<Self> {
        let mut reader = RecordReader::open(path, Kind::Removals)?;
        let next = reader.next_removal()?;
        Ok(RemovalCursor { reader, next })
    }

    /// Removals in the file, from the header.
    pub fn count(&self) -> u64 {
        self.reader.count()
    }

    /// The next removal, not consumed.
    pub fn peek(&self) -> Option<&Removal> {
        self.next.as_ref()
    }

    /// Consumes and returns the next removal.
    pub fn next_removal(&mut self) -> Result<Option<Removal>> {
        let Some(cur) = self.next.take() else {
            return Ok(None);
        };
        let following = self.reader.next_removal()?;
        if following.as_ref().is_some_and(|x| x.doc <= cur.doc) {
            return Err(binfmt::corrupt(
                self.reader.input.path(),
                "removals are not sorted by document index",
            )
            .into());
        }
        self.next = following;
        Ok(Some(cur))
    }

    /// Consumes and returns the next removal if it is the one of document
    /// `doc` (the index of the document in its input file).
    pub fn next_if_doc(&mut self, doc: u64) -> Result<Option<Removal>> {
        if self.next.as_ref().is_some_and(|r| r.doc as u64 == doc) {
            self.next_removal()
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.bin");
        let mut w = RecordWriter::create(&p, Kind::Signatures).unwrap();
        w.push_pair(1, 2).unwrap();
        w.push_pair(3, 4).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let mut r = RecordReader::open(&p, Kind::Signatures).unwrap();
        assert_eq!(r.next_pair().unwrap(), Some((1, 2)));
        assert_eq!(r.next_pair().unwrap(), Some((3, 4)));
        assert_eq!(r.next_pair().unwrap(), None);
        // Wrong kind.
        let e = RecordReader::open(&p, Kind::Pairs).err().unwrap();
        assert!(e.to_string().contains("bad magic"), "{e}");
        // Truncated.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = RecordReader::open(&p, Kind::Signatures).err().unwrap();
        assert!(e.to_string().contains("truncated"), "{e}");
        std::fs::write(&p, &bytes[..10]).unwrap();
        assert!(RecordReader::open(&p, Kind::Signatures).is_err());

        let p = dir.path().join("r.bin");
        let mut w = RecordWriter::create(&p, Kind::Removals).unwrap();
        let rem = Removal {
            doc: 3,
            cluster: 0,
            kept: 7,
            kept_id: "kept-é".into(),
        };
        w.push_removal(&rem).unwrap();
        w.finish().unwrap();
        assert_eq!(RecordReader::read_removals(&p).unwrap(), vec![rem]);
        let bytes = std::fs::read(&p).unwrap();
        for cut in [bytes.len() - 1, bytes.len() - 8, 30] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(RecordReader::read_removals(&p).is_err(), "cut {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        assert!(RecordReader::read_removals(&p).is_err());
        // A huge length field does not allocate or panic.
        let mut bad = bytes.clone();
        bad[24 + 16..24 + 20].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &bad).unwrap();
        assert!(RecordReader::read_removals(&p).is_err());
        assert!(!dir.path().join(".r.bin.tmp").exists());
    }

    fn removal(i: u32) -> Removal {
        Removal {
            doc: 3 * i + 1,
            cluster: i % 17,
            kept: u64::from(i % 17),
            // 0 to 96 bytes: records straddle the reader's 64 KiB buffer.
            kept_id: "k".repeat((i % 97) as usize) + "é",
        }
    }

    fn write_removals(p: &Path, rs: impl IntoIterator<Item = Removal>) {
        let mut w = RecordWriter::create(p, Kind::Removals).unwrap();
        for r in rs {
            w.push_removal(&r).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn cursor_streams_many_removals_across_buffer_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.bin");
        let n = 20_000u32;
        let want: Vec<Removal> = (0..n).map(removal).collect();
        write_removals(&p, want.clone());
        assert!(std::fs::metadata(&p).unwrap().len() > 10 * (64 << 10));
        assert_eq!(RecordReader::read_removals(&p).unwrap(), want);

        // Advanced alongside the documents, as the filter step does.
        let mut c = RemovalCursor::open(&p).unwrap();
        assert_eq!(c.count(), u64::from(n));
        let mut got = Vec::new();
        for doc in 0..u64::from(3 * n + 1) {
            if let Some(r) = c.next_if_doc(doc).unwrap() {
                assert_eq!(u64::from(r.doc), doc);
                got.push(r);
            }
        }
        assert_eq!(got, want);
        assert!(c.peek().is_none());
        assert_eq!(c.next_removal().unwrap(), None);

        // Out of order far into the file: an error naming the file.
        let mut bad = want.clone();
        bad.swap(15_000, 15_001);
        write_removals(&p, bad);
        let mut c = RemovalCursor::open(&p).unwrap();
        let e = loop {
            match c.next_removal() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("unsorted removals were accepted"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(e.contains("r.bin") && e.contains("not sorted"), "{e}");
        assert!(RecordReader::read_removals(&p).is_err());

        // Trailing bytes are found when the lookahead runs out.
        write_removals(&p, want.clone());
        let mut long = std::fs::read(&p).unwrap();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        let mut c = RemovalCursor::open(&p).unwrap();
        let mut seen = 0;
        let e = loop {
            match c.next_removal() {
                Ok(Some(_)) => seen += 1,
                Ok(None) => panic!("trailing bytes were accepted"),
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(seen, n - 1, "{e}");
        assert!(e.contains("trailing bytes"), "{e}");
    }
}

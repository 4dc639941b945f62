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

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{MinhashError, Result};

pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 24;

/// The kinds of intermediate file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Signatures,
    Pairs,
    Ids,
    Removals,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Signatures => b"RFMHSIGS",
            Kind::Pairs => b"RFMHPAIR",
            Kind::Ids => b"RFMHDIDS",
            Kind::Removals => b"RFMHREMV",
        }
    }

    fn record_len(self) -> u32 {
        match self {
            Kind::Signatures | Kind::Pairs => 16,
            Kind::Ids | Kind::Removals => 0,
        }
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> MinhashError {
    MinhashError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn io(path: &Path, e: std::io::Error) -> MinhashError {
    MinhashError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Streams records into `path` through a temp file; [`RecordWriter::finish`]
/// writes the count into the header and renames.
pub struct RecordWriter {
    kind: Kind,
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    count: u64,
}

impl RecordWriter {
    pub fn create(path: &Path, kind: Kind) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(kind, 0)).map_err(|e| io(&tmp, e))?;
        Ok(RecordWriter {
            kind,
            path: path.to_path_buf(),
            tmp,
            out,
            count: 0,
        })
    }

    /// A fixed-size record of two u64.
    pub fn push_pair(&mut self, x: u64, y: u64) -> Result<()> {
        let mut rec = [0u8; 16];
        rec[..8].copy_from_slice(&x.to_le_bytes());
        rec[8..].copy_from_slice(&y.to_le_bytes());
        self.push_raw(&rec)
    }

    /// A document id (kind [`Kind::Ids`]).
    pub fn push_id(&mut self, id: &str) -> Result<()> {
        let len = u32::try_from(id.len()).map_err(|_| corrupt(&self.path, "id over 4 GiB"))?;
        self.push_raw_part(&len.to_le_bytes())?;
        self.push_raw(id.as_bytes())
    }

    /// A removal (kind [`Kind::Removals`]).
    pub fn push_removal(&mut self, r: &Removal) -> Result<()> {
        let len =
            u32::try_from(r.kept_id.len()).map_err(|_| corrupt(&self.path, "id over 4 GiB"))?;
        self.push_raw_part(&r.doc.to_le_bytes())?;
        self.push_raw_part(&r.cluster.to_le_bytes())?;
        self.push_raw_part(&r.kept.to_le_bytes())?;
        self.push_raw_part(&len.to_le_bytes())?;
        self.push_raw(r.kept_id.as_bytes())
    }

    fn push_raw_part(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| io(&self.tmp, e))
    }

    /// Writes the last part of a record and counts it.
    fn push_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.push_raw_part(bytes)?;
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<u64> {
        let RecordWriter {
            kind,
            path,
            tmp,
            out,
            count,
        } = self;
        let mut file = out.into_inner().map_err(|e| io(&tmp, e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io(&tmp, e))?;
        file.write_all(&header(kind, count))
            .map_err(|e| io(&tmp, e))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(count)
    }
}

fn header(kind: Kind, count: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(kind.magic());
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&kind.record_len().to_le_bytes());
    h[16..24].copy_from_slice(&count.to_le_bytes());
    h
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
    path: PathBuf,
    input: BufReader<File>,
    count: u64,
    read: u64,
    /// Bytes after the header not consumed yet.
    left: u64,
}

impl RecordReader {
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let len = file.metadata().map_err(|e| io(path, e))?.len();
        let mut input = BufReader::with_capacity(64 << 10, file);
        if len < HEADER_LEN {
            return Err(corrupt(
                path,
                format!("{len} bytes: shorter than the header"),
            ));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        input.read_exact(&mut h).map_err(|e| io(path, e))?;
        if &h[..8] != kind.magic() {
            return Err(corrupt(
                path,
                format!(
                    "bad magic {:?}, expected {:?}",
                    String::from_utf8_lossy(&h[..8]),
                    String::from_utf8_lossy(kind.magic())
                ),
            ));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != FORMAT_VERSION {
            return Err(corrupt(
                path,
                format!("format version {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let rec = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if rec != kind.record_len() {
            return Err(corrupt(
                path,
                format!("record length {rec}, expected {}", kind.record_len()),
            ));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&h[16..24]);
        let count = u64::from_le_bytes(c);
        let left = len - HEADER_LEN;
        if rec > 0 && count.checked_mul(rec as u64) != Some(left) {
            return Err(corrupt(
                path,
                format!("{count} records of {rec} bytes need {} bytes after the header, found {left} (truncated?)", count.saturating_mul(rec as u64)),
            ));
        }
        Ok(RecordReader {
            path: path.to_path_buf(),
            input,
            count,
            read: 0,
            left,
        })
    }

    /// Records in the file, from the header.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        if (buf.len() as u64) > self.left {
            return Err(corrupt(
                &self.path,
                format!(
                    "record {} runs past the end of the file (truncated?)",
                    self.read
                ),
            ));
        }
        self.input.read_exact(buf).map_err(|e| io(&self.path, e))?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Called after the last record: variable-length files must end here.
    fn at_end(&mut self) -> Result<()> {
        if self.left != 0 {
            return Err(corrupt(
                &self.path,
                format!("{} trailing bytes after {} records", self.left, self.count),
            ));
        }
        Ok(())
    }

    /// Next fixed record of two u64 ([`Kind::Signatures`], [`Kind::Pairs`]).
    pub fn next_pair(&mut self) -> Result<Option<(u64, u64)>> {
        if self.read == self.count {
            return Ok(None);
        }
        let x = self.u64()?;
        let y = self.u64()?;
        self.read += 1;
        Ok(Some((x, y)))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as u64;
        if len > self.left {
            return Err(corrupt(
                &self.path,
                format!(
                    "record {}: string of {len} bytes runs past the end (truncated?)",
                    self.read
                ),
            ));
        }
        let mut bytes = vec![0u8; len as usize];
        self.take(&mut bytes)?;
        String::from_utf8(bytes)
            .map_err(|_| corrupt(&self.path, format!("record {}: id is not UTF-8", self.read)))
    }

    /// Next document id ([`Kind::Ids`]).
    pub fn next_id(&mut self) -> Result<Option<String>> {
        if self.read == self.count {
            self.at_end()?;
            return Ok(None);
        }
        let s = self.string()?;
        self.read += 1;
        Ok(Some(s))
    }

    /// Next removal ([`Kind::Removals`]).
    pub fn next_removal(&mut self) -> Result<Option<Removal>> {
        if self.read == self.count {
            self.at_end()?;
            return Ok(None);
        }
        let doc = self.u32()?;
        let cluster = self.u32()?;
        let kept = self.u64()?;
        let kept_id = self.string()?;
        self.read += 1;
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
            return Err(corrupt(
                &self.reader.path,
                "removals are not sorted by document index",
            ));
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
}

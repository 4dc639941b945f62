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

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{CorpusDedupError, Result};

pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: u64 = 24;

/// The kinds of intermediate file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Removals,
    Counts,
    Dups,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Keys => b"RFCDKEYS",
            Kind::Removals => b"RFCDREMV",
            Kind::Counts => b"RFCDCNTS",
            Kind::Dups => b"RFCDDUPS",
        }
    }

    fn record_len(self) -> u32 {
        match self {
            Kind::Keys | Kind::Removals => 0,
            Kind::Counts => 24,
            Kind::Dups => 16,
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

fn corrupt(path: &Path, message: impl Into<String>) -> CorpusDedupError {
    CorpusDedupError::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn io(path: &Path, e: std::io::Error) -> CorpusDedupError {
    CorpusDedupError::Io {
        path: path.to_path_buf(),
        source: e,
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

/// Streams records into `path` through a temp file; [`RecordWriter::finish`]
/// writes the count into the header, fsyncs and renames.
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
        let mut out = BufWriter::with_capacity(256 << 10, file);
        out.write_all(&header(kind, 0)).map_err(|e| io(&tmp, e))?;
        Ok(RecordWriter {
            kind,
            path: path.to_path_buf(),
            tmp,
            out,
            count: 0,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| io(&self.tmp, e))
    }

    fn put_str(&mut self, s: &str) -> Result<()> {
        let len = u32::try_from(s.len()).map_err(|_| corrupt(&self.path, "id over 4 GiB"))?;
        self.put(&len.to_le_bytes())?;
        self.put(s.as_bytes())
    }

    pub fn push_key(&mut self, r: &KeyRecord) -> Result<()> {
        self.put(&r.hash.to_le_bytes())?;
        self.put(&r.rank.to_le_bytes())?;
        self.put(&r.key.to_le_bytes())?;
        self.put_str(&r.id)?;
        self.count += 1;
        Ok(())
    }

    pub fn push_removal(&mut self, r: &Removal) -> Result<()> {
        self.put(&r.key.to_le_bytes())?;
        self.put(&r.kept.to_le_bytes())?;
        self.put_str(&r.kept_id)?;
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

/// Reads the records of one file, checking header and length.
pub struct RecordReader {
    path: PathBuf,
    input: BufReader<File>,
    count: u64,
    read: u64,
    left: u64,
}

impl RecordReader {
    pub fn open(path: &Path, kind: Kind) -> Result<Self> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let len = file.metadata().map_err(|e| io(path, e))?.len();
        if len < HEADER_LEN {
            return Err(corrupt(
                path,
                format!("{len} bytes: shorter than the header (truncated?)"),
            ));
        }
        let mut input = BufReader::with_capacity(64 << 10, file);
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
                format!(
                    "{count} records of {rec} bytes need {} bytes after the header, found {left} (truncated?)",
                    count.saturating_mul(rec as u64)
                ),
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

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() as u64 > self.left {
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

    fn u128(&mut self) -> Result<u128> {
        let mut b = [0u8; 16];
        self.take(&mut b)?;
        Ok(u128::from_le_bytes(b))
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

    /// True when every record was read; then the file must end here.
    fn done(&mut self) -> Result<bool> {
        if self.read < self.count {
            return Ok(false);
        }
        if self.left != 0 {
            return Err(corrupt(
                &self.path,
                format!("{} trailing bytes after {} records", self.left, self.count),
            ));
        }
        Ok(true)
    }

    pub fn next_key(&mut self) -> Result<Option<KeyRecord>> {
        if self.done()? {
            return Ok(None);
        }
        let hash = self.u128()?;
        let rank = self.u64()?;
        let key = self.u64()?;
        let id = self.string()?;
        self.read += 1;
        Ok(Some(KeyRecord {
            hash,
            rank,
            key,
            id,
        }))
    }

    pub fn next_removal(&mut self) -> Result<Option<Removal>> {
        if self.done()? {
            return Ok(None);
        }
        let key = self.u64()?;
        let kept = self.u64()?;
        let kept_id = self.string()?;
        self.read += 1;
        Ok(Some(Removal { key, kept, kept_id }))
    }

    pub fn next_count(&mut self) -> Result<Option<(u128, u64)>> {
        if self.done()? {
            return Ok(None);
        }
        let hash = self.u128()?;
        let count = self.u64()?;
        self.read += 1;
        Ok(Some((hash, count)))
    }

    pub fn next_hash(&mut self) -> Result<Option<u128>> {
        if self.done()? {
            return Ok(None);
        }
        let hash = self.u128()?;
        self.read += 1;
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

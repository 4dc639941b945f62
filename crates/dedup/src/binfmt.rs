//! The header, atomic writer and checked reader shared by the binary
//! intermediate files of the multi-step dedup jobs (`minhash/format.rs`,
//! `corpus/format.rs`, `substring/format.rs`).
//!
//! Every file starts with a 24-byte header, all integers little-endian:
//!
//! ```text
//! magic   [u8; 8]   which kind of file
//! version u32       format version of that kind
//! record  u32       bytes per record, 0 for variable-length records
//! count   u64       number of records
//! ```
//!
//! [`open`] checks the magic, the version, the record length and, for
//! fixed-size records, that the file is exactly `24 + count·record` bytes;
//! [`Reader`] checks that variable-length records end exactly after the
//! `count`-th one and that no length field runs past the end of the file
//! (before anything is allocated). A truncated or foreign file is an
//! [`Error::Corrupt`] naming the path, never a panic or a silent short read.
//! [`Writer`] writes `.NAME.tmp` next to the target, then rewrites the
//! header with the count, fsyncs and renames, so a killed step never leaves
//! a file that looks complete.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub(crate) const HEADER_LEN: u64 = 24;

/// An I/O error or a malformed file; converted into the error of each job
/// (same variants, same messages).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: malformed intermediate file: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// `impl From<binfmt::Error> for $job_error`: the job error has the same
/// `Io { path, source }` and `Corrupt { path, message }` variants.
macro_rules! impl_from_binfmt {
    ($t:ty) => {
        impl From<$crate::binfmt::Error> for $t {
            fn from(e: $crate::binfmt::Error) -> Self {
                match e {
                    $crate::binfmt::Error::Io { path, source } => Self::Io { path, source },
                    $crate::binfmt::Error::Corrupt { path, message } => {
                        Self::Corrupt { path, message }
                    }
                }
            }
        }
    };
}
pub(crate) use impl_from_binfmt;

pub(crate) type Result<T> = std::result::Result<T, Error>;

pub(crate) fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a kind of file has in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub magic: &'static [u8; 8],
    pub version: u32,
    /// Bytes per record, 0 for variable-length records.
    pub record_len: u32,
}

impl Spec {
    /// The header of a file of `count` records.
    pub fn header(self, count: u64) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[..8].copy_from_slice(self.magic);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&self.record_len.to_le_bytes());
        h[16..24].copy_from_slice(&count.to_le_bytes());
        h
    }

    /// Checks header `h` of a file of `len` bytes; returns the record count.
    fn check(self, path: &Path, h: &[u8; HEADER_LEN as usize], len: u64) -> Result<u64> {
        if &h[..8] != self.magic {
            return Err(corrupt(
                path,
                format!(
                    "bad magic {:?}, expected {:?}",
                    String::from_utf8_lossy(&h[..8]),
                    String::from_utf8_lossy(self.magic)
                ),
            ));
        }
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let version = word(8);
        if version != self.version {
            return Err(corrupt(
                path,
                format!(
                    "format version {version}, this build reads {}",
                    self.version
                ),
            ));
        }
        let rec = word(12);
        if rec != self.record_len {
            return Err(corrupt(
                path,
                format!("record length {rec}, expected {}", self.record_len),
            ));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&h[16..24]);
        let count = u64::from_le_bytes(c);
        let left = len - HEADER_LEN;
        let rec = u64::from(rec);
        if rec > 0 && count.checked_mul(rec) != Some(left) {
            return Err(corrupt(
                path,
                format!(
                    "{count} records of {rec} bytes need {} bytes after the header, found {left} (truncated?)",
                    count.saturating_mul(rec)
                ),
            ));
        }
        Ok(count)
    }
}

/// Opens `path` and checks its header (and, for fixed-size records, its
/// length); returns the file positioned after the header, the record count
/// and the bytes after the header.
pub(crate) fn open(path: &Path, spec: Spec) -> Result<(File, u64, u64)> {
    let mut file = File::open(path).map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    if len < HEADER_LEN {
        return Err(corrupt(
            path,
            format!("{len} bytes: shorter than the header (truncated?)"),
        ));
    }
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut h).map_err(|e| io(path, e))?;
    let count = spec.check(path, &h, len)?;
    Ok((file, count, len - HEADER_LEN))
}

/// Streams records into `path` through `.NAME.tmp`; [`Writer::finish`]
/// writes the count into the header, fsyncs and renames.
pub(crate) struct Writer {
    spec: Spec,
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
}

impl Writer {
    /// Creates the temp file (and the directory) with a write buffer of
    /// `capacity` bytes.
    pub fn create(path: &Path, spec: Spec, capacity: usize) -> Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(capacity, file);
        out.write_all(&spec.header(0)).map_err(|e| io(&tmp, e))?;
        Ok(Writer {
            spec,
            path: path.to_path_buf(),
            tmp,
            out,
        })
    }

    /// The target path (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| io(&self.tmp, e))
    }

    /// A length-prefixed string: len u32, bytes.
    pub fn write_str(&mut self, s: &str) -> Result<()> {
        let len = u32::try_from(s.len()).map_err(|_| corrupt(&self.path, "id over 4 GiB"))?;
        self.write(&len.to_le_bytes())?;
        self.write(s.as_bytes())
    }

    /// Writes `count` into the header, fsyncs and renames into place.
    pub fn finish(self, count: u64) -> Result<()> {
        let Writer {
            spec,
            path,
            tmp,
            out,
        } = self;
        let mut file = out.into_inner().map_err(|e| io(&tmp, e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io(&tmp, e))?;
        file.write_all(&spec.header(count))
            .map_err(|e| io(&tmp, e))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}

/// Reads the records of one file, checking header and length as it goes.
pub(crate) struct Reader {
    path: PathBuf,
    input: BufReader<File>,
    count: u64,
    read: u64,
    /// Bytes after the header not consumed yet.
    left: u64,
}

impl Reader {
    /// Opens with a read buffer of 64 KiB.
    pub fn open(path: &Path, spec: Spec) -> Result<Self> {
        let (file, count, left) = open(path, spec)?;
        Ok(Reader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(64 << 10, file),
            count,
            read: 0,
            left,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records in the file, from the header.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when every record was read; then the file must end here.
    pub fn done(&mut self) -> Result<bool> {
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

    /// Counts a record as read, after its last field.
    pub fn record_read(&mut self) {
        self.read += 1;
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

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.take(&mut b)?;
        Ok(b)
    }

    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn u128(&mut self) -> Result<u128> {
        self.array().map(u128::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string; the length is checked against the
    /// bytes left before anything is allocated.
    pub fn string(&mut self) -> Result<String> {
        let len = u64::from(self.u32()?);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: Spec = Spec {
        magic: b"RFTESTFX",
        version: 3,
        record_len: 8,
    };
    const VAR: Spec = Spec {
        magic: b"RFTESTVR",
        version: 1,
        record_len: 0,
    };

    #[test]
    fn header_layout_and_checks() {
        let h = FIXED.header(5);
        assert_eq!(&h[..8], b"RFTESTFX");
        assert_eq!(h[8..12], 3u32.to_le_bytes());
        assert_eq!(h[12..16], 8u32.to_le_bytes());
        assert_eq!(h[16..24], 5u64.to_le_bytes());

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/f.bin");
        let mut w = Writer::create(&p, FIXED, 16).unwrap();
        w.write(&7u64.to_le_bytes()).unwrap();
        w.write(&9u64.to_le_bytes()).unwrap();
        w.finish(2).unwrap();
        assert!(!dir.path().join("sub/.f.bin.tmp").exists());
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes[..24], FIXED.header(2));
        assert_eq!(open(&p, FIXED).unwrap().1, 2);
        let mut r = Reader::open(&p, FIXED).unwrap();
        assert_eq!((r.u64().unwrap(), r.u64().unwrap()), (7, 9));

        let msg = |spec: Spec| open(&p, spec).err().unwrap().to_string();
        assert!(msg(VAR).contains("bad magic"));
        assert!(msg(Spec {
            version: 4,
            ..FIXED
        })
        .contains("format version 3"));
        assert!(msg(Spec {
            record_len: 4,
            ..FIXED
        })
        .contains("record length 8"));
        for cut in [0, 10, 24, bytes.len() - 1] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = msg(FIXED);
            assert!(e.contains("f.bin") && e.contains("truncated"), "{e}");
        }
    }

    #[test]
    fn variable_records_are_bounded_by_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.bin");
        let mut w = Writer::create(&p, VAR, 16).unwrap();
        w.write(&1u32.to_le_bytes()).unwrap();
        w.write_str("é").unwrap();
        w.finish(1).unwrap();
        let mut r = Reader::open(&p, VAR).unwrap();
        assert!(!r.done().unwrap());
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.string().unwrap(), "é");
        r.record_read();
        assert!(r.done().unwrap());

        let bytes = std::fs::read(&p).unwrap();
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        let mut r = Reader::open(&p, VAR).unwrap();
        r.u32().unwrap();
        r.string().unwrap();
        r.record_read();
        assert!(r.done().err().unwrap().to_string().contains("trailing"));

        let mut huge = bytes.clone();
        huge[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&p, &huge).unwrap();
        let mut r = Reader::open(&p, VAR).unwrap();
        r.u32().unwrap();
        let e = r.string().err().unwrap().to_string();
        assert!(e.contains("runs past the end"), "{e}");
    }
}

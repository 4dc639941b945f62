//! Sharded writers (JSONL or Parquet) with atomic shard files.
//!
//! A [`ShardWriter`] writes one JSON document per line into
//! `DIR/{prefix}_{shard:05}.jsonl.{zst,gz}`, starting a new shard once the
//! current one holds `max_shard_bytes` of uncompressed JSONL (measured before
//! compression so that shard boundaries do not depend on encoder buffering).
//! With `format = parquet` it writes `DIR/{prefix}_{shard:05}.parquet`
//! instead, one row per document (schema and choices in [`parquet`]), the
//! shard size counted in uncompressed value bytes.
//!
//! Each shard is written to a hidden temp file `DIR/.{name}.tmp` and renamed
//! into place only when complete, so a killed run never leaves a partial
//! shard that looks finished. Compression is deterministic (zstd level 3 or
//! gzip with a zero mtime, single-threaded), so the same documents give
//! byte-identical shards.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::summary::{ContentCounter, ContentStats};
use crate::{CorpusError, Document, Result};

pub mod parquet;

/// Shard compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "jsonl.zst",
            Compression::Gzip => "jsonl.gz",
            Compression::None => "jsonl",
        }
    }
}

/// Shard file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON document per line, compressed as a whole.
    #[default]
    Jsonl,
    /// Apache Parquet, columns `id, text, source, metadata` (see [`parquet`]),
    /// each column chunk compressed.
    Parquet,
}

/// Default uncompressed bytes per Parquet row group.
pub const DEFAULT_ROW_GROUP_BYTES: u64 = 64 << 20;

/// Writer settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterOptions {
    /// Shard format (left out of the serialized form when it is the default,
    /// so fingerprints of JSONL runs are unchanged).
    #[serde(skip_serializing_if = "is_jsonl")]
    pub format: OutputFormat,
    pub compression: Compression,
    /// Uncompressed bytes per shard before a new one starts (JSONL: the
    /// lines; Parquet: the values).
    pub max_shard_bytes: u64,
    /// zstd level (1–19). 3 is zstd's default: fast with a good ratio.
    pub zstd_level: i32,
    /// Parquet: uncompressed value bytes per row group (a reader holds about
    /// one row group in memory).
    #[serde(skip_serializing_if = "is_default_row_group")]
    pub row_group_bytes: u64,
}

fn is_jsonl(f: &OutputFormat) -> bool {
    *f == OutputFormat::Jsonl
}

fn is_default_row_group(b: &u64) -> bool {
    *b == DEFAULT_ROW_GROUP_BYTES
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            format: OutputFormat::Jsonl,
            compression: Compression::Zstd,
            max_shard_bytes: 256 << 20,
            zstd_level: 3,
            row_group_bytes: DEFAULT_ROW_GROUP_BYTES,
        }
    }
}

impl WriterOptions {
    /// The shard file extension, e.g. `jsonl.zst` or `parquet`.
    pub fn extension(&self) -> &'static str {
        match self.format {
            OutputFormat::Jsonl => self.compression.extension(),
            OutputFormat::Parquet => "parquet",
        }
    }
}

enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Gzip(GzEncoder<BufWriter<File>>),
    Plain(BufWriter<File>),
    Parquet(Box<parquet::ParquetSink>),
}

impl Encoder {
    /// The byte stream of a JSONL shard (`None` for Parquet).
    fn writer(&mut self) -> Option<&mut dyn Write> {
        match self {
            Encoder::Zstd(e) => Some(e),
            Encoder::Gzip(e) => Some(e),
            Encoder::Plain(w) => Some(w),
            Encoder::Parquet(_) => None,
        }
    }

    fn finish(self, tmp: &Path) -> Result<File> {
        let buf = match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Plain(w) => Ok(w),
            Encoder::Parquet(p) => return p.finish(tmp),
        }
        .map_err(|e| CorpusError::io(tmp, e))?;
        buf.into_inner()
            .map_err(|e| CorpusError::io(tmp, e.into_error()))
    }
}

struct OpenShard {
    tmp: PathBuf,
    path: PathBuf,
    enc: Encoder,
    bytes: u64,
}

/// Counters of one writer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WriterStats {
    pub docs: u64,
    pub shards: u64,
    /// Uncompressed bytes (JSONL lines, or Parquet values).
    pub bytes: u64,
    /// Characters of the documents' texts (absent in stats written before
    /// it was counted).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chars: u64,
    /// Lengths, languages, scores and domains of what was written.
    #[serde(default, skip_serializing_if = "ContentStats::is_empty")]
    pub content: ContentStats,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl WriterStats {
    pub fn merge(&mut self, other: &WriterStats) {
        self.docs += other.docs;
        self.shards += other.shards;
        self.bytes += other.bytes;
        self.chars += other.chars;
        self.content.merge(&other.content);
    }
}

/// A finished shard: its file name and its size on disk, recorded so that a
/// resume can check the shard is still there and whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Path relative to the output directory, e.g. `data/00003_00000.jsonl.zst`.
    pub name: String,
    pub bytes: u64,
}

/// Writes documents into size-limited, atomically renamed shards.
pub struct ShardWriter {
    dir: PathBuf,
    prefix: String,
    opts: WriterOptions,
    next_shard: u32,
    current: Option<OpenShard>,
    line: Vec<u8>,
    stats: WriterStats,
    files: Vec<(String, u64)>,
    content: ContentCounter,
}

impl ShardWriter {
    /// Shards are named `{prefix}_{n:05}.{ext}` inside `dir` (created if missing).
    pub fn new(
        dir: impl Into<PathBuf>,
        prefix: impl Into<String>,
        opts: WriterOptions,
    ) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| CorpusError::io(&dir, e))?;
        Ok(ShardWriter {
            dir,
            prefix: prefix.into(),
            opts,
            next_shard: 0,
            current: None,
            line: Vec::with_capacity(64 << 10),
            stats: WriterStats::default(),
            files: Vec::new(),
            content: ContentCounter::default(),
        })
    }

    /// Appends one document (a JSON line, or a Parquet row).
    pub fn write(&mut self, doc: &Document) -> Result<()> {
        // JSONL: `line` is the document's line; Parquet: its metadata as JSON.
        self.line.clear();
        let len = match self.opts.format {
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.line, doc).map_err(|e| CorpusError::Json {
                    path: self.dir.clone(),
                    source: e,
                })?;
                self.line.push(b'\n');
                self.line.len() as u64
            }
            OutputFormat::Parquet => {
                serde_json::to_writer(&mut self.line, &doc.metadata).map_err(|e| {
                    CorpusError::Json {
                        path: self.dir.clone(),
                        source: e,
                    }
                })?;
                parquet::record_len(doc, &self.line)
            }
        };
        if let Some(cur) = &self.current {
            if cur.bytes > 0 && cur.bytes + len > self.opts.max_shard_bytes {
                self.close_current()?;
            }
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        if let Some(cur) = self.current.as_mut() {
            match &mut cur.enc {
                Encoder::Parquet(sink) => sink.push(doc, &self.line, len, &cur.tmp)?,
                enc => {
                    if let Some(w) = enc.writer() {
                        w.write_all(&self.line)
                            .map_err(|e| CorpusError::io(&cur.tmp, e))?;
                    }
                }
            }
            cur.bytes += len;
        }
        self.stats.docs += 1;
        self.stats.bytes += len;
        let chars = doc.text.chars().count() as u64;
        self.stats.chars += chars;
        self.content.add(doc, chars);
        Ok(())
    }

    /// Closes the last shard and returns the counters.
    pub fn finish(self) -> Result<WriterStats> {
        Ok(self.finish_listed("")?.0)
    }

    /// Closes the last shard; returns the counters and the shards written,
    /// named `{parent}/{file}` (`parent`: the shard directory's name relative
    /// to the output directory, e.g. `data`).
    pub fn finish_listed(mut self, parent: &str) -> Result<(WriterStats, Vec<ShardFile>)> {
        self.close_current()?;
        self.stats.content = self.content.finish();
        let files = self
            .files
            .into_iter()
            .map(|(name, bytes)| ShardFile {
                name: if parent.is_empty() {
                    name
                } else {
                    format!("{parent}/{name}")
                },
                bytes,
            })
            .collect();
        Ok((self.stats, files))
    }

    fn open_next(&mut self) -> Result<()> {
        let name = format!(
            "{}_{:05}.{}",
            self.prefix,
            self.next_shard,
            self.opts.extension()
        );
        self.next_shard += 1;
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| CorpusError::io(&tmp, e))?;
        if self.opts.format == OutputFormat::Parquet {
            let sink = parquet::ParquetSink::create(file, &tmp, &self.opts)?;
            self.current = Some(OpenShard {
                tmp,
                path,
                enc: Encoder::Parquet(Box::new(sink)),
                bytes: 0,
            });
            return Ok(());
        }
        let buf = BufWriter::with_capacity(1 << 20, file);
        let enc = match self.opts.compression {
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(buf, self.opts.zstd_level)
                    .map_err(|e| CorpusError::io(&tmp, e))?;
                e.include_checksum(true)
                    .map_err(|e| CorpusError::io(&tmp, e))?;
                Encoder::Zstd(e)
            }
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(buf, flate2::Compression::new(6)),
            ),
            Compression::None => Encoder::Plain(buf),
        };
        self.current = Some(OpenShard {
            tmp,
            path,
            enc,
            bytes: 0,
        });
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(cur) = self.current.take() {
            let file = cur.enc.finish(&cur.tmp)?;
            file.sync_all().map_err(|e| CorpusError::io(&cur.tmp, e))?;
            let bytes = file
                .metadata()
                .map_err(|e| CorpusError::io(&cur.tmp, e))?
                .len();
            drop(file);
            std::fs::rename(&cur.tmp, &cur.path).map_err(|e| CorpusError::io(&cur.path, e))?;
            self.stats.shards += 1;
            let name = cur
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.files.push((name, bytes));
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CorpusError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A unique temp name: several processes (array tasks of one run) may
    // write the same file at once; each rename is atomic and the last wins.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    {
        let mut f = File::create(&tmp).map_err(|e| CorpusError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| CorpusError::io(&tmp, e))?;
        f.sync_all().map_err(|e| CorpusError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| CorpusError::io(path, e))
}

/// Reads every document back from a shard written by [`ShardWriter`]
/// (any compression, JSONL or Parquet; detected from the content).
pub fn read_shard(path: &Path) -> Result<Vec<Document>> {
    use std::io::{BufRead, BufReader, Read};
    let bytes = std::fs::read(path).map_err(|e| CorpusError::io(path, e))?;
    if crate::readers::parquet::has_magic(&bytes) {
        return parquet::read_documents(path);
    }
    let mut text = Vec::new();
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(&bytes[..])
            .and_then(|mut d| d.read_to_end(&mut text))
            .map_err(|e| CorpusError::io(path, e))?;
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .map_err(|e| CorpusError::io(path, e))?;
    } else {
        text = bytes;
    }
    let mut docs = Vec::new();
    for line in BufReader::new(&text[..]).lines() {
        let line = line.map_err(|e| CorpusError::io(path, e))?;
        if line.is_empty() {
            continue;
        }
        docs.push(serde_json::from_str(&line).map_err(|e| CorpusError::Json {
            path: path.to_path_buf(),
            source: e,
        })?);
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(n: usize) -> Vec<Document> {
        (0..n)
            .map(|i| {
                Document::new(
                    format!("d{i}"),
                    format!("text number {i} ").repeat(10),
                    "src",
                )
            })
            .collect()
    }

    fn write_all(dir: &Path, c: Compression, max: u64) -> Vec<PathBuf> {
        let opts = WriterOptions {
            compression: c,
            max_shard_bytes: max,
            ..Default::default()
        };
        let mut w = ShardWriter::new(dir, "00000", opts).unwrap();
        for d in docs(50) {
            w.write(&d).unwrap();
        }
        let st = w.finish().unwrap();
        assert_eq!(st.docs, 50);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len() as u64, st.shards);
        files
    }

    #[test]
    fn shards_roll_over_and_read_back_in_order() {
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let dir = tempfile::tempdir().unwrap();
            let files = write_all(dir.path(), c, 2000);
            assert!(files.len() > 3, "{c:?}: {files:?}");
            let back: Vec<Document> = files.iter().flat_map(|f| read_shard(f).unwrap()).collect();
            assert_eq!(back, docs(50));
            assert!(files[0]
                .to_string_lossy()
                .ends_with(&format!("00000_00000.{}", c.extension())));
        }
    }

    #[test]
    fn output_is_byte_identical_across_runs() {
        for c in [Compression::Zstd, Compression::Gzip] {
            let a = tempfile::tempdir().unwrap();
            let b = tempfile::tempdir().unwrap();
            let fa = write_all(a.path(), c, 5000);
            let fb = write_all(b.path(), c, 5000);
            for (x, y) in fa.iter().zip(&fb) {
                assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
            }
        }
    }

    #[test]
    fn no_temp_files_remain_and_unfinished_shards_stay_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::new(dir.path(), "00001", WriterOptions::default()).unwrap();
        w.write(&docs(1)[0]).unwrap();
        // Not finished: only the hidden temp file exists.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [".00001_00000.jsonl.zst.tmp"]);
        w.finish().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["00001_00000.jsonl.zst"]);
    }
}

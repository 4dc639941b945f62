//! Streaming readers: one input file in, a stream of [`Item`]s out.
//!
//! Every record a reader meets becomes exactly one item, so that the
//! executor can check, per file, that
//! `records = kept + Σ dropped(reason) + Σ failed(reason)`:
//!
//! * [`Item::Doc`]: a document for the stages;
//! * [`Item::Dropped`]: a record skipped on purpose, with a reason
//!   (`warc:request`, `warc:non_html`, …);
//! * [`Item::Warning`]: not a record: an anomaly the reader recovered from
//!   (stray bytes between records). Counted under `warnings`, outside the
//!   invariant. Anomalies inside a record that still gave a document (an
//!   HTTP body shorter than its Content-Length, a `WARC-Truncated` payload)
//!   are listed in that document's `metadata.warnings` instead;
//! * [`Item::Failed`]: a record that could not be read (truncated, bad
//!   header, decompression error), with its byte offset. The reader then
//!   resynchronises on the next record where the format allows it, or ends
//!   the file; it never panics and never aborts the run.
//!
//! Compression (gzip, including multi-member, and zstd) is detected from the
//! first bytes of the file, not from its name. The format is detected the
//! same way unless forced ([`Format`]).
//!
//! Module map: [`decompress`] (magic-byte sniffing), [`warc`] (WARC, WET and
//! ARC), [`http`] (HTTP headers, chunked transfer coding, content
//! encodings), [`charset`] (declared/sniffed charset → UTF-8), [`jsonl`],
//! [`parquet`] (row group by row group, with column projection),
//! [`text`] (a file per document, per line or per paragraph; HTML files).
//!
//! A Parquet file (`PAR1` magic) is not a stream: it is read with random
//! access (footer first, then row groups), before any decompression
//! sniffing.

pub mod charset;
pub mod decompress;
pub mod http;
pub mod jsonl;
pub mod parquet;
pub mod text;
pub mod warc;

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Document, Reason};

/// One record read from an input file.
#[derive(Debug)]
pub enum Item {
    Doc(Document),
    /// Skipped on purpose; counted under `reason`.
    Dropped {
        reason: Reason,
        offset: u64,
    },
    Failed(Failure),
    /// Not a record: something the reader skipped and recovered from.
    Warning(Failure),
}

/// A record that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Short, low-cardinality reason used as a stats key, e.g. `warc:truncated`.
    pub reason: Reason,
    /// Byte offset of the record in the (decompressed) stream; for gzip
    /// files, offsets are in decompressed bytes.
    pub offset: u64,
    /// Human-readable detail, e.g. the header line that did not parse.
    pub detail: String,
}

impl Failure {
    pub fn new(reason: impl Into<Reason>, offset: u64, detail: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            offset,
            detail: detail.into(),
        }
    }
}

/// Input format. `Auto` sniffs the decompressed content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `PAR1` → parquet; then on the decompressed head: `WARC/` → warc;
    /// `filedesc://` → arc; `{` → jsonl; `<` → html; else text.
    #[default]
    Auto,
    /// WARC, including WET (conversion records) and WAT.
    Warc,
    /// Internet Archive ARC v1.
    Arc,
    Jsonl,
    /// One HTML page per file.
    Html,
    Text,
    /// Apache Parquet: one row per document.
    Parquet,
}

/// How plain-text files are split into documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextUnit {
    #[default]
    File,
    Line,
    /// Blocks separated by one or more blank lines.
    Paragraph,
}

/// Options for all readers; serde defaults make every field optional in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReaderOptions {
    pub format: Format,
    /// JSONL: the field holding the text.
    pub text_field: String,
    /// JSONL: the field holding the id; records without it get `file#index`.
    pub id_field: String,
    /// JSONL and Parquet: the top-level fields (columns) kept as metadata;
    /// `None` keeps all. Parquet reads only these columns (projection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_fields: Option<Vec<String>>,
    /// JSONL: treat the text field as HTML (sets `Document::is_html`).
    pub jsonl_html: bool,
    pub text_unit: TextUnit,
    /// Records with a larger payload are dropped as `*:too_large` without
    /// being decoded (bounds memory on hostile input).
    pub max_record_bytes: u64,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            format: Format::Auto,
            text_field: "text".into(),
            id_field: "id".into(),
            metadata_fields: None,
            jsonl_html: false,
            text_unit: TextUnit::File,
            max_record_bytes: 64 << 20,
        }
    }
}

/// A stream of items from one file.
pub type ItemStream = Box<dyn Iterator<Item = Item> + Send>;

/// Counts raw (compressed) bytes as they are read, for progress and stats.
pub struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> CountingReader<R> {
    pub fn new(inner: R, counter: Arc<AtomicU64>) -> Self {
        CountingReader { inner, counter }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` and returns its item stream. Never fails: an unreadable file
/// becomes a single [`Item::Failed`] with reason `io:open` (or
/// `decompress:*`), so the run goes on and the failure is counted.
///
/// `source` is the name stored in [`Document::source`] and used in ids;
/// `bytes_read` receives the raw bytes consumed from disk.
pub fn open(
    path: &Path,
    source: &str,
    opts: &ReaderOptions,
    bytes_read: Arc<AtomicU64>,
) -> ItemStream {
    open_part(path, source, opts, None, bytes_read)
}

/// Opens one input of a run: a whole file, or the row groups of a Parquet
/// file that [`crate::input::split_parquet`] gave to one task.
pub fn open_input(
    input: &crate::input::InputFile,
    opts: &ReaderOptions,
    bytes_read: Arc<AtomicU64>,
) -> ItemStream {
    open_part(
        &input.path,
        &input.source,
        opts,
        input.row_groups.clone(),
        bytes_read,
    )
}

fn open_part(
    path: &Path,
    source: &str,
    opts: &ReaderOptions,
    row_groups: Option<std::ops::Range<usize>>,
    bytes_read: Arc<AtomicU64>,
) -> ItemStream {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return Box::new(std::iter::once(Item::Failed(Failure::new(
                "io:open",
                0,
                format!("{}: {e}", path.display()),
            ))))
        }
    };
    let parquet = match opts.format {
        Format::Parquet => true,
        Format::Auto => {
            let mut head = [0u8; 4];
            let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
            if let Err(e) = std::io::Seek::rewind(&mut file) {
                return Box::new(std::iter::once(Item::Failed(Failure::new(
                    "io:read",
                    0,
                    format!("{}: {e}", path.display()),
                ))));
            }
            parquet::has_magic(&head[..n])
        }
        _ => false,
    };
    if parquet {
        drop(file);
        return parquet::open_row_groups(path, source, opts, row_groups, bytes_read);
    }
    let counted = CountingReader::new(file, bytes_read.clone());
    let (format, stream) = match decompress::sniff(counted, opts.format) {
        Ok(v) => v,
        Err(f) => return Box::new(std::iter::once(Item::Failed(f))),
    };
    match format {
        Format::Warc | Format::Auto => warc::read_warc(stream, source, opts),
        Format::Arc => warc::read_arc(stream, source, opts),
        Format::Jsonl => jsonl::read_jsonl(stream, source, opts),
        Format::Html => text::read_html(stream, source, opts),
        Format::Text => text::read_text(stream, source, opts),
        // Forced Parquet is opened above; sniffing never returns it.
        Format::Parquet => parquet::open_row_groups(path, source, opts, row_groups, bytes_read),
    }
}

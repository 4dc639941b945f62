//! The Parquet shard format: one row per document.
//!
//! ```text
//! message document {
//!   required binary id (STRING);
//!   required binary text (STRING);
//!   required binary source (STRING);
//!   required binary metadata (STRING);   -- a JSON object, e.g. {"url":…,"lang":"en"}
//! }
//! ```
//!
//! **Why `metadata` is a JSON string and not a struct.** A Parquet struct
//! needs one fixed set of typed fields per file, but a document's metadata
//! is open: stages add keys (`pii`, `warnings`, `minhash_cluster`, …) to
//! some documents only, and a value may be a number in one document and a
//! string in another (JSONL input passes through as is). A struct would
//! give each shard its own schema (decided by the documents that happen to
//! land in it), and readers that combine shards (`datasets`, DuckDB globs)
//! fail or widen types when schemas differ. A JSON string gives every shard
//! the same four-column schema, round-trips the metadata exactly, and stays
//! easy to query: `json_extract_string(metadata, '$.lang')` in DuckDB,
//! `json.loads` in Python. refinery's own readers parse it back into
//! metadata.
//!
//! Row groups hold about `row_group_bytes` of uncompressed values each;
//! every column chunk is compressed with the shard compression (zstd at
//! `zstd_level` by default). Only `source` is dictionary-encoded (it repeats
//! on every row of an input file); no statistics are written for the text
//! columns, whose min/max would be of no use. The bytes depend only on the
//! documents and the options, so the same documents give byte-identical
//! files.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;

use super::{Compression, WriterOptions};
use crate::{CorpusError, Document, Metadata, Result};

/// The schema of every shard (see the module docs).
pub const SCHEMA: &str = "message document {
  required binary id (STRING);
  required binary text (STRING);
  required binary source (STRING);
  required binary metadata (STRING);
}";

fn error(path: &Path, e: impl std::fmt::Display) -> CorpusError {
    CorpusError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One column of the buffered row group: the values back to back in one
/// buffer (reused from row group to row group) and where each one ends.
#[derive(Default)]
struct Column {
    data: BytesMut,
    ends: Vec<usize>,
}

impl Column {
    fn push(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.ends.push(self.data.len());
    }
}

/// One open Parquet shard: buffers a row group's columns, then writes it.
pub(super) struct ParquetSink {
    writer: SerializedFileWriter<BufWriter<File>>,
    columns: [Column; 4],
    buffered: u64,
    row_group_bytes: u64,
}

/// The uncompressed bytes a document takes in a shard, given its metadata
/// serialized as JSON.
pub(super) fn record_len(doc: &Document, metadata_json: &[u8]) -> u64 {
    (doc.id.len() + doc.text.len() + doc.source.len() + metadata_json.len()) as u64
}

impl ParquetSink {
    pub(super) fn create(file: File, tmp: &Path, opts: &WriterOptions) -> Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA).map_err(|e| error(tmp, e))?);
        let compression = match opts.compression {
            Compression::Zstd => {
                PqCompression::ZSTD(ZstdLevel::try_new(opts.zstd_level).map_err(|e| error(tmp, e))?)
            }
            Compression::Gzip => PqCompression::GZIP(GzipLevel::default()),
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("source"), true)
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("source"), EnabledStatistics::Chunk)
            .build();
        let writer = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            schema,
            Arc::new(props),
        )
        .map_err(|e| error(tmp, e))?;
        Ok(ParquetSink {
            writer,
            columns: Default::default(),
            buffered: 0,
            row_group_bytes: opts.row_group_bytes,
        })
    }

    /// Adds one row (`len` = [`record_len`]); writes the buffered row group
    /// first when this row would take it past `row_group_bytes`.
    pub(super) fn push(
        &mut self,
        doc: &Document,
        metadata_json: &[u8],
        len: u64,
        tmp: &Path,
    ) -> Result<()> {
        if self.buffered > 0 && self.buffered + len > self.row_group_bytes {
            self.flush(tmp)?;
        }
        let values = [
            doc.id.as_bytes(),
            doc.text.as_bytes(),
            doc.source.as_bytes(),
            metadata_json,
        ];
        for (col, v) in self.columns.iter_mut().zip(values) {
            col.push(v);
        }
        self.buffered += len;
        Ok(())
    }

    fn flush(&mut self, tmp: &Path) -> Result<()> {
        if self.columns[0].ends.is_empty() {
            return Ok(());
        }
        let mut rg = self.writer.next_row_group().map_err(|e| error(tmp, e))?;
        for col in &mut self.columns {
            // The values are slices of one frozen buffer: no copy, no
            // allocation per value.
            let frozen = col.data.split().freeze();
            let mut start = 0;
            let values: Vec<ByteArray> = col
                .ends
                .iter()
                .map(|&end| {
                    let v = ByteArray::from(frozen.slice(start..end));
                    start = end;
                    v
                })
                .collect();
            let mut w = rg
                .next_column()
                .map_err(|e| error(tmp, e))?
                .ok_or_else(|| error(tmp, "schema has fewer columns than the writer"))?;
            w.typed::<ByteArrayType>()
                .write_batch(&values, None, None)
                .map_err(|e| error(tmp, e))?;
            w.close().map_err(|e| error(tmp, e))?;
            drop(values);
            col.ends.clear();
            // Keep the buffer's memory for the next row group when nothing
            // else holds a slice of it.
            if let Ok(mut buf) = frozen.try_into_mut() {
                buf.clear();
                col.data = buf;
            }
        }
        rg.close().map_err(|e| error(tmp, e))?;
        self.buffered = 0;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the file.
    pub(super) fn finish(mut self, tmp: &Path) -> Result<File> {
        self.flush(tmp)?;
        let buf = self.writer.into_inner().map_err(|e| error(tmp, e))?;
        buf.into_inner()
            .map_err(|e| CorpusError::io(tmp, e.into_error()))
    }
}

/// Reads back every document of a shard written in this format: the
/// inverse of the writer (`source` and `metadata` come from their columns).
pub(super) fn read_documents(path: &Path) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for row in crate::readers::parquet::rows(path)? {
        let mut row = row?;
        let mut take = |name: &str| match row.remove(name) {
            Some(serde_json::Value::String(s)) => Ok(s),
            other => Err(error(
                path,
                format!("column {name}: expected a string, found {other:?}"),
            )),
        };
        let (id, text, source, metadata) = (
            take("id")?,
            take("text")?,
            take("source")?,
            take("metadata")?,
        );
        let metadata: Metadata =
            serde_json::from_str(&metadata).map_err(|e| CorpusError::Json {
                path: path.to_path_buf(),
                source: e,
            })?;
        docs.push(Document {
            id,
            text,
            source,
            metadata,
            is_html: false,
        });
    }
    Ok(docs)
}

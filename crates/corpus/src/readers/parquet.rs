//! Parquet reader: one row → one document, read row group by row group.
//!
//! A Parquet file is recognised by its magic number (`PAR1` at the start),
//! not by its name, or forced with `format = "parquet"`. Columns are chosen
//! as for JSONL:
//!
//! * the text is the top-level column `opts.text_field` (a string, or binary
//!   decoded as UTF-8 with invalid bytes counted in `invalid_bytes`);
//! * the id is `opts.id_field` (a string or an integer), else
//!   `source#<row index>`, the 0-based row index in the whole file (so ids
//!   do not depend on how a file is split over tasks);
//! * every other top-level column becomes metadata (`url`, `date`,
//!   `content_type`, `charset`, `lang`, `lang_score` go to the typed fields,
//!   the rest to `extra`), or only the columns named in
//!   `opts.metadata_fields`. A `metadata` column holding a JSON object as a
//!   string (refinery's own output) or a struct is merged like JSONL's nested
//!   `metadata`; a `source` column is ignored (the source is the input file).
//!   Nested values (lists, structs, maps) become JSON arrays and objects,
//!   timestamps and dates ISO strings, binary base64.
//!
//! **Projection.** Only the text, id and metadata columns are decoded; the
//! others are never read from disk.
//!
//! **Memory.** Rows are decoded page by page with the `parquet` crate's
//! record reader, so memory is bounded by the pages of one row group (and
//! never by the file).
//!
//! **Failures.** Every row is one record. A footer that cannot be read, or a
//! file without the text column, is one failed record for the whole file
//! (`parquet:bad_footer`, `parquet:missing_text`). A row group that cannot
//! be decoded (a corrupt page, invalid UTF-8 in a string column, a panic in
//! the decoder) is one failed record, `parquet:bad_row_group`, whose detail
//! names the row group, its rows, how many of them were read and the error;
//! the rest of the file is still read. A null text is `parquet:missing_text`
//! for that row, a text longer than `opts.max_record_bytes` is dropped as
//! `parquet:too_large`. Failure offsets are the byte offset of the row group
//! in the file.
//!
//! **Row-group ranges.** [`open_row_groups`] reads only some row groups, so
//! that one large file can spread over several tasks (see
//! [`crate::input::split_parquet`]); [`row_groups`] lists a file's row
//! groups from its footer.
//!
//! **Rows as JSON.** [`rows`] iterates any Parquet file as
//! `serde_json::Map`s (column name → value), for callers that want the
//! columns themselves rather than documents (labelled data, for example).

use std::fs::File;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::{ReaderIter, TreeBuilder};
use parquet::record::{Field, Row};
use parquet::schema::types::{SchemaDescPtr, SchemaDescriptor, Type};
use serde_json::{Map, Value};

use super::decompress::truncate_detail;
use super::{Failure, Item, ItemStream, ReaderOptions};
use crate::{CorpusError, Document};

/// The four bytes every Parquet file starts (and ends) with.
pub const MAGIC: [u8; 4] = *b"PAR1";

/// Rows decoded per column batch by the record reader.
const BATCH_ROWS: usize = 1024;

/// True when `head` (the first bytes of a file) starts with [`MAGIC`].
pub fn has_magic(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// One row group, as the footer describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowGroupInfo {
    pub rows: u64,
    /// Compressed bytes of its column chunks.
    pub bytes: u64,
    /// Byte offset of its first column chunk in the file.
    pub offset: u64,
}

/// Lists the row groups of a Parquet file from its footer.
pub fn row_groups(path: &Path) -> Result<Vec<RowGroupInfo>, CorpusError> {
    let reader = open_reader(path).map_err(|message| CorpusError::Input {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(group_infos(&reader))
}

fn open_reader(path: &Path) -> Result<SerializedFileReader<File>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    // The footer parser is third-party code meeting arbitrary bytes: a panic
    // in it is a bad footer, not a crash.
    match catch_unwind(AssertUnwindSafe(|| SerializedFileReader::new(file))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("not a readable Parquet file: {e}")),
        Err(p) => Err(format!(
            "not a readable Parquet file: the footer parser panicked: {}",
            panic_message(&p)
        )),
    }
}

fn group_infos(reader: &SerializedFileReader<File>) -> Vec<RowGroupInfo> {
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| {
            let offset = rg
                .file_offset()
                .or_else(|| rg.columns().iter().map(|c| c.byte_range().0 as i64).min())
                .unwrap_or(0);
            RowGroupInfo {
                rows: u64::try_from(rg.num_rows()).unwrap_or(0),
                bytes: u64::try_from(rg.compressed_size()).unwrap_or(0),
                offset: u64::try_from(offset).unwrap_or(0),
            }
        })
        .collect()
}

/// Reads a whole Parquet file as items.
pub fn read_parquet(
    path: &Path,
    source: &str,
    opts: &ReaderOptions,
    bytes_read: Arc<AtomicU64>,
) -> ItemStream {
    open_row_groups(path, source, opts, None, bytes_read)
}

/// Reads the row groups `groups` of a Parquet file (all of them for
/// `None`) as items. Never fails: a file that cannot be opened is one
/// failed item.
pub fn open_row_groups(
    path: &Path,
    source: &str,
    opts: &ReaderOptions,
    groups: Option<Range<usize>>,
    bytes_read: Arc<AtomicU64>,
) -> ItemStream {
    match DocReader::new(path, source, opts, groups, bytes_read) {
        Ok(r) => Box::new(r),
        Err(f) => Box::new(std::iter::once(Item::Failed(f))),
    }
}

/// What a projected top-level column is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Text,
    Id,
    /// The `metadata` column: a JSON object (string) or a struct.
    Nested,
    Meta,
}

/// The row-group walk shared by the document reader and [`rows`].
struct Groups {
    reader: SerializedFileReader<File>,
    descr: SchemaDescPtr,
    infos: Vec<RowGroupInfo>,
    /// Index in the file of the first row of each row group.
    first_row: Vec<u64>,
    /// Row groups still to read.
    todo: Range<usize>,
    /// The row group being read, its iterator and the rows read from it.
    current: Option<(usize, ReaderIter, u64)>,
    bytes_read: Arc<AtomicU64>,
}

/// One step of [`Groups::next_row`].
enum Step {
    /// A row: its row group and its index in the file.
    Row(Row, usize, u64),
    /// The rest of a row group could not be read.
    Bad(Failure),
}

impl Groups {
    fn new(
        reader: SerializedFileReader<File>,
        projection: Option<Type>,
        groups: Option<Range<usize>>,
        bytes_read: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let root = reader.metadata().file_metadata().schema_descr_ptr();
        let descr = match projection {
            Some(p) => Arc::new(SchemaDescriptor::new(Arc::new(p))),
            None => root,
        };
        let infos = group_infos(&reader);
        let mut first_row = Vec::with_capacity(infos.len());
        let mut n = 0u64;
        for g in &infos {
            first_row.push(n);
            n = n.saturating_add(g.rows);
        }
        let all = 0..infos.len();
        let todo = match groups {
            Some(r) => r.start.min(all.end)..r.end.min(all.end),
            None => all,
        };
        Ok(Groups {
            reader,
            descr,
            infos,
            first_row,
            todo,
            current: None,
            bytes_read,
        })
    }

    fn bad(&self, group: usize, read: u64, error: &str) -> Failure {
        let info = &self.infos[group];
        let first = self.first_row[group];
        Failure::new(
            "parquet:bad_row_group",
            info.offset,
            truncate_detail(&format!(
                "row group {group} (rows {first}..{}): {read} of {} rows read, then: {error}",
                first + info.rows,
                info.rows
            )),
        )
    }

    /// The next row, or the failure of the rest of a row group.
    fn next_row(&mut self) -> Option<Step> {
        loop {
            if let Some((group, iter, read)) = self.current.as_mut() {
                let (group, at) = (*group, *read);
                match catch_unwind(AssertUnwindSafe(|| iter.next())) {
                    Ok(Some(Ok(row))) => {
                        *read += 1;
                        return Some(Step::Row(row, group, self.first_row[group] + at));
                    }
                    Ok(None) => self.current = None,
                    Ok(Some(Err(e))) => {
                        self.current = None;
                        return Some(Step::Bad(self.bad(group, at, &e.to_string())));
                    }
                    Err(p) => {
                        self.current = None;
                        let msg = format!("the decoder panicked: {}", panic_message(&p));
                        return Some(Step::Bad(self.bad(group, at, &msg)));
                    }
                }
                continue;
            }
            let group = self.todo.next()?;
            self.bytes_read
                .fetch_add(self.infos[group].bytes, Ordering::Relaxed);
            let (reader, descr) = (&self.reader, self.descr.clone());
            let opened = catch_unwind(AssertUnwindSafe(|| {
                let rg = reader.get_row_group(group)?;
                TreeBuilder::new()
                    .with_batch_size(BATCH_ROWS)
                    .as_iter(descr, rg.as_ref())
            }));
            match opened {
                Ok(Ok(iter)) => self.current = Some((group, iter, 0)),
                Ok(Err(e)) => return Some(Step::Bad(self.bad(group, 0, &e.to_string()))),
                Err(p) => {
                    let msg = format!("the decoder panicked: {}", panic_message(&p));
                    return Some(Step::Bad(self.bad(group, 0, &msg)));
                }
            }
        }
    }
}

/// Builds the projection: the top-level fields whose names `keep` accepts,
/// in file order, with their roles.
fn project(
    reader: &SerializedFileReader<File>,
    mut role: impl FnMut(&str) -> Option<Role>,
) -> Result<(Type, Vec<Role>), String> {
    let root = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema();
    let mut fields = Vec::new();
    let mut roles = Vec::new();
    for f in root.get_fields() {
        if let Some(r) = role(f.name()) {
            fields.push(f.clone());
            roles.push(r);
        }
    }
    let t = Type::group_type_builder(root.name())
        .with_fields(fields)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((t, roles))
}

/// The document reader behind [`open_row_groups`].
struct DocReader {
    groups: Groups,
    roles: Vec<Role>,
    source: String,
    text_field: String,
    is_html: bool,
    max: u64,
}

impl DocReader {
    fn new(
        path: &Path,
        source: &str,
        opts: &ReaderOptions,
        groups: Option<Range<usize>>,
        bytes_read: Arc<AtomicU64>,
    ) -> Result<Self, Failure> {
        let reader =
            open_reader(path).map_err(|m| Failure::new("parquet:bad_footer", 0, truncate(&m)))?;
        // Progress: the bytes outside the row groups (header, footer) count
        // with the range that starts at the first row group.
        if groups.as_ref().is_none_or(|g| g.start == 0) {
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            let in_groups: u64 = group_infos(&reader).iter().map(|g| g.bytes).sum();
            bytes_read.fetch_add(len.saturating_sub(in_groups), Ordering::Relaxed);
        }
        let names: Vec<String> = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        if !names.contains(&opts.text_field) {
            return Err(Failure::new(
                "parquet:missing_text",
                0,
                truncate(&format!(
                    "no top-level column \"{}\" (columns: {})",
                    opts.text_field,
                    names.join(", ")
                )),
            ));
        }
        let wanted = opts.metadata_fields.as_ref();
        let (projection, roles) = project(&reader, |name| {
            if name == opts.text_field {
                Some(Role::Text)
            } else if name == opts.id_field {
                Some(Role::Id)
            } else if name == "source" || wanted.is_some_and(|w| !w.iter().any(|f| f == name)) {
                // `source` is the input file, never a column's value.
                None
            } else if name == "metadata" {
                Some(Role::Nested)
            } else {
                Some(Role::Meta)
            }
        })
        .map_err(|m| Failure::new("parquet:bad_footer", 0, truncate(&m)))?;
        let groups = Groups::new(reader, Some(projection), groups, bytes_read)
            .map_err(|m| Failure::new("parquet:bad_footer", 0, truncate(&m)))?;
        Ok(DocReader {
            groups,
            roles,
            source: source.to_string(),
            text_field: opts.text_field.clone(),
            is_html: opts.jsonl_html,
            max: opts.max_record_bytes,
        })
    }

    fn document(&self, row: Row, group: usize, index: u64) -> Item {
        let offset = self.groups.infos[group].offset;
        let mut text = None;
        let mut id = None;
        let mut invalid = 0u64;
        let mut top = Map::new();
        let mut nested = None;
        for ((name, field), role) in row.into_columns().into_iter().zip(&self.roles) {
            match role {
                Role::Text => match field {
                    Field::Str(s) => text = Some(s),
                    Field::Bytes(b) => {
                        let d = super::charset::decode_as(b.data(), encoding_rs::UTF_8);
                        invalid = d.invalid_bytes;
                        text = Some(d.text);
                    }
                    Field::Null => {}
                    other => {
                        return Item::Failed(Failure::new(
                            "parquet:missing_text",
                            offset,
                            format!(
                                "row {index}: column \"{name}\" is {}, not a string",
                                kind(&other)
                            ),
                        ))
                    }
                },
                Role::Id => {
                    id = match field {
                        Field::Str(s) if !s.is_empty() => Some(s),
                        f @ (Field::Byte(_)
                        | Field::Short(_)
                        | Field::Int(_)
                        | Field::Long(_)
                        | Field::UByte(_)
                        | Field::UShort(_)
                        | Field::UInt(_)
                        | Field::ULong(_)) => Some(f.to_json_value().to_string()),
                        _ => None,
                    }
                }
                Role::Nested => {
                    nested = match field {
                        Field::Str(s) => match serde_json::from_str::<Value>(&s) {
                            Ok(v) => Some(v),
                            Err(_) => Some(Value::String(s)),
                        },
                        other => Some(other.to_json_value()),
                    }
                }
                Role::Meta => {
                    top.insert(name, field.to_json_value());
                }
            }
        }
        let Some(text) = text else {
            return Item::Failed(Failure::new(
                "parquet:missing_text",
                offset,
                format!("row {index}: column \"{}\" is null", self.text_field),
            ));
        };
        if text.len() as u64 > self.max {
            return Item::Dropped {
                reason: "parquet:too_large".into(),
                offset,
            };
        }
        let mut metadata = super::jsonl::metadata_from(top, nested);
        if invalid > 0 {
            metadata.set("invalid_bytes", invalid);
        }
        Item::Doc(Document {
            id: id.unwrap_or_else(|| format!("{}#{index}", self.source)),
            text,
            source: self.source.clone(),
            metadata,
            is_html: self.is_html,
        })
    }
}

impl Iterator for DocReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        match self.groups.next_row()? {
            Step::Row(row, group, index) => Some(self.document(row, group, index)),
            Step::Bad(f) => Some(Item::Failed(f)),
        }
    }
}

fn kind(f: &Field) -> &'static str {
    match f {
        Field::Null => "null",
        Field::Bool(_) => "a boolean",
        Field::Group(_) => "a struct",
        Field::ListInternal(_) => "a list",
        Field::MapInternal(_) => "a map",
        Field::Str(_) | Field::Bytes(_) => "a string",
        Field::Date(_)
        | Field::TimeMillis(_)
        | Field::TimeMicros(_)
        | Field::TimestampMillis(_)
        | Field::TimestampMicros(_) => "a date or time",
        _ => "a number",
    }
}

fn truncate(s: &str) -> String {
    truncate_detail(s)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The rows of a Parquet file as JSON objects (column name → value), row
/// group by row group. Created by [`rows`] and [`rows_with_columns`].
pub struct Rows {
    path: PathBuf,
    groups: Groups,
    done: bool,
}

/// Iterates every row of the Parquet file at `path` as a
/// `serde_json::Map` from column name to value (nested columns become JSON
/// arrays and objects, timestamps ISO strings, binary base64):
///
/// ```no_run
/// # fn main() -> Result<(), refinery_corpus::CorpusError> {
/// for row in refinery_corpus::readers::parquet::rows("train.parquet".as_ref())? {
///     let row = row?;
///     let (text, label) = (&row["text"], &row["label"]);
///     # let _ = (text, label);
/// }
/// # Ok(()) }
/// ```
///
/// Memory is bounded by one row group. An unreadable file is an error at
/// once; a row group that cannot be decoded yields one error naming the
/// file, the row group and the cause, and the iteration ends there.
pub fn rows(path: &Path) -> Result<Rows, CorpusError> {
    rows_with_columns(path, None)
}

/// [`rows`], decoding only the named top-level columns (`None`: all). A
/// name that is not a column of the file is an error that lists the
/// columns.
pub fn rows_with_columns(path: &Path, columns: Option<&[&str]>) -> Result<Rows, CorpusError> {
    let err = |message: String| CorpusError::Input {
        path: path.to_path_buf(),
        message,
    };
    let reader = open_reader(path).map_err(err)?;
    let projection = match columns {
        None => None,
        Some(cols) => {
            let names: Vec<String> = reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .root_schema()
                .get_fields()
                .iter()
                .map(|f| f.name().to_string())
                .collect();
            if let Some(missing) = cols.iter().find(|c| !names.iter().any(|n| n == *c)) {
                return Err(err(format!(
                    "no top-level column \"{missing}\" (columns: {})",
                    names.join(", ")
                )));
            }
            Some(
                project(&reader, |name| cols.contains(&name).then_some(Role::Meta))
                    .map_err(err)?
                    .0,
            )
        }
    };
    let groups = Groups::new(reader, projection, None, Arc::new(AtomicU64::new(0))).map_err(err)?;
    Ok(Rows {
        path: path.to_path_buf(),
        groups,
        done: false,
    })
}

impl Iterator for Rows {
    type Item = Result<Map<String, Value>, CorpusError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.groups.next_row() {
            None => {
                self.done = true;
                None
            }
            Some(Step::Row(row, _, _)) => Some(Ok(row
                .into_columns()
                .into_iter()
                .map(|(name, field)| (name, field.to_json_value()))
                .collect())),
            Some(Step::Bad(f)) => {
                self.done = true;
                Some(Err(CorpusError::Input {
                    path: self.path.clone(),
                    message: f.detail,
                }))
            }
        }
    }
}

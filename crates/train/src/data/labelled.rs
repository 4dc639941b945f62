//! Labelled examples for classification: reading (TSV, CSV, JSONL, gzip/zstd detected from
//! the content), field detection, label sets, stratified splits, tokenisation and
//! length-bucketed batches.
//!
//! **Fields.** `text_field`, `text_pair_field` and `label_field` name columns (a header row or
//! JSON keys); without a header, columns are named `0`, `1`, …. When not given: the label is
//! the `label` column (else, for two unnamed columns, the one with fewer distinct values);
//! the text is `text` or `sentence`, else the one other column.
//!
//! **Bad rows** (empty text, missing label, invalid UTF-8, a wrong number of columns, invalid
//! JSON) are skipped *and reported* with file and line ([`LabelledFile::skipped`]); nothing is
//! dropped silently.
//!
//! **Labels** are strings (JSON numbers become their decimal text). The label set comes from
//! the training file: numeric labels in numeric order, others sorted; a label of a dev/test
//! file that is not in the set is an error naming file and line.
//!
//! **Rows.** BERT: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with token types 0/1; GPT-2: the
//! text (pairs joined by the separator token). Too-long inputs are truncated as HF tokenizers'
//! `longest_first` does. Batches are padded to their own longest row (dynamic padding); the
//! training order groups rows of similar length into batches (a seeded shuffle, then sorting
//! by length inside pools of 50 batches, then a shuffle of the batches), so short sentences do
//! not pay for long ones.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use refinery_tokenize::Tokenizer;
use serde::{Deserialize, Serialize};

use super::BatchSource;
use crate::error::TrainError;
use crate::rng::{splitmix64, Rng};

/// File format of labelled data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelledFormat {
    /// From the content (JSON lines start with `{`) and the extension (`.csv`, else TSV).
    #[default]
    Auto,
    Tsv,
    Csv,
    Jsonl,
}

/// Which columns hold what (see the module docs for the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fields {
    pub text_field: Option<String>,
    pub text_pair_field: Option<String>,
    pub label_field: Option<String>,
    /// TSV/CSV: the first row names the columns (default: detected — it does when it holds
    /// the label field's name, `label`, `text` or `sentence`).
    pub header: Option<bool>,
    pub format: LabelledFormat,
}

/// One example as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub text_pair: Option<String>,
    pub label: String,
    /// 1-based line (record) number in its file.
    pub line: usize,
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub line: usize,
    pub reason: String,
}

/// A labelled file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledFile {
    pub path: PathBuf,
    pub examples: Vec<Example>,
    /// Rows that were not used, with their line and reason.
    pub skipped: Vec<Skipped>,
    /// The columns used: (text, text pair, label).
    pub columns: (String, Option<String>, String),
}

impl LabelledFile {
    /// `N rows skipped (line 3: empty text; …)`, or `None`.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let first: Vec<String> = self
            .skipped
            .iter()
            .take(5)
            .map(|s| format!("line {}: {}", s.line, s.reason))
            .collect();
        let more = if self.skipped.len() > 5 { "; …" } else { "" };
        Some(format!(
            "{}: {} row(s) skipped ({}{more})",
            self.path.display(),
            self.skipped.len(),
            first.join("; ")
        ))
    }
}

fn data_err(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Data {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A raw record: its line and its cells by column name (`None`: not valid UTF-8).
struct Record {
    line: usize,
    cells: Result<BTreeMap<String, String>, String>,
}

/// Reads `path` (gzip and zstd are detected from the content).
pub fn read_labelled(path: &Path, fields: &Fields) -> Result<LabelledFile, TrainError> {
    let file = std::fs::File::open(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, mut stream) =
        refinery_corpus::readers::decompress::sniff(file, refinery_corpus::readers::Format::Auto)
            .map_err(|f| data_err(path, format!("cannot read: {} ({})", f.reason, f.detail)))?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| data_err(path, format!("cannot read: {e}")))?;
    let format = match fields.format {
        LabelledFormat::Auto => {
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            let name = path.to_string_lossy().to_ascii_lowercase();
            if first == Some(&b'{') {
                LabelledFormat::Jsonl
            } else if name.ends_with(".csv")
                || name.ends_with(".csv.gz")
                || name.ends_with(".csv.zst")
            {
                LabelledFormat::Csv
            } else {
                LabelledFormat::Tsv
            }
        }
        f => f,
    };
    let (records, columns, mut skipped) = match format {
        LabelledFormat::Jsonl => read_jsonl(&bytes),
        LabelledFormat::Csv => read_delimited(path, &bytes, b',', true, fields)?,
        _ => read_delimited(path, &bytes, b'\t', false, fields)?,
    };
    let (text_col, pair_col, label_col) = resolve_fields(path, &columns, &records, fields)?;
    let mut examples = Vec::new();
    for r in records {
        let cells = match r.cells {
            Ok(c) => c,
            Err(reason) => {
                skipped.push(Skipped {
                    line: r.line,
                    reason,
                });
                continue;
            }
        };
        let text = cells.get(&text_col).map(|s| s.trim()).unwrap_or("");
        let label = cells.get(&label_col).map(|s| s.trim()).unwrap_or("");
        let pair = pair_col
            .as_ref()
            .map(|c| cells.get(c).map(|s| s.trim()).unwrap_or(""));
        let reason = if text.is_empty() {
            Some(format!("empty text ({text_col})"))
        } else if label.is_empty() {
            Some(format!("missing label ({label_col})"))
        } else if pair == Some("") {
            Some(format!(
                "empty text pair ({})",
                pair_col.as_deref().unwrap_or("")
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => skipped.push(Skipped {
                line: r.line,
                reason,
            }),
            None => examples.push(Example {
                text: text.to_string(),
                text_pair: pair.map(str::to_string),
                label: label.to_string(),
                line: r.line,
            }),
        }
    }
    skipped.sort_by_key(|s| s.line);
    Ok(LabelledFile {
        path: path.to_path_buf(),
        examples,
        skipped,
        columns: (text_col, pair_col, label_col),
    })
}

fn json_cell(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn read_jsonl(bytes: &[u8]) -> Table {
    let mut records = Vec::new();
    let mut columns = BTreeSet::new();
    let mut skipped = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let text = match std::str::from_utf8(trimmed) {
            Ok(t) => t,
            Err(_) => {
                records.push(Record {
                    line: line_no,
                    cells: Err("invalid UTF-8".into()),
                });
                continue;
            }
        };
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Ok(obj) => {
                let cells: BTreeMap<String, String> = obj
                    .iter()
                    .filter_map(|(k, v)| json_cell(v).map(|s| (k.clone(), s)))
                    .collect();
                columns.extend(obj.keys().cloned());
                records.push(Record {
                    line: line_no,
                    cells: Ok(cells),
                });
            }
            Err(e) => skipped.push(Skipped {
                line: line_no,
                reason: format!("invalid JSON object: {e}"),
            }),
        }
    }
    (records, columns.into_iter().collect(), skipped)
}

const TEXT_NAMES: [&str; 4] = ["text", "sentence", "review", "content"];

/// Records, column names and the rows that could not be read at all.
type Table = (Vec<Record>, Vec<String>, Vec<Skipped>);

fn read_delimited(
    path: &Path,
    bytes: &[u8],
    delimiter: u8,
    quoting: bool,
    fields: &Fields,
) -> Result<Table, TrainError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows: Vec<(usize, Result<Vec<String>, String>)> = Vec::new();
    let mut skipped = Vec::new();
    for (i, rec) in reader.byte_records().enumerate() {
        match rec {
            Ok(rec) => {
                let line = rec.position().map_or(i + 1, |p| p.line() as usize);
                if rec.len() == 1 && rec.get(0).is_some_and(|c| c.trim_ascii().is_empty()) {
                    continue;
                }
                let cells: Result<Vec<String>, String> = rec
                    .iter()
                    .map(|c| {
                        std::str::from_utf8(c)
                            .map(str::to_string)
                            .map_err(|_| "invalid UTF-8".to_string())
                    })
                    .collect();
                rows.push((line, cells));
            }
            Err(e) => skipped.push(Skipped {
                line: e.position().map_or(i + 1, |p| p.line() as usize),
                reason: format!("unreadable row: {e}"),
            }),
        }
    }
    let Some((_, first)) = rows.first() else {
        return Ok((Vec::new(), Vec::new(), skipped));
    };
    let names: Vec<&str> = [
        fields.label_field.as_deref(),
        fields.text_field.as_deref(),
        fields.text_pair_field.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(["label"])
    .chain(TEXT_NAMES)
    .collect();
    let header = fields.header.unwrap_or_else(|| {
        first.as_ref().is_ok_and(|cells| {
            cells
                .iter()
                .any(|c| names.iter().any(|n| n.eq_ignore_ascii_case(c.trim())))
        })
    });
    let columns: Vec<String> = if header {
        match &rows[0].1 {
            Ok(cells) => cells.iter().map(|c| c.trim().to_string()).collect(),
            Err(_) => return Err(data_err(path, "line 1: the header is not valid UTF-8")),
        }
    } else {
        let width = rows
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok().map(Vec::len))
            .max()
            .unwrap_or(0);
        (0..width).map(|i| i.to_string()).collect()
    };
    let body = if header { &rows[1..] } else { &rows[..] };
    let records = body
        .iter()
        .map(|(line, cells)| Record {
            line: *line,
            cells: match cells {
                Err(e) => Err(e.clone()),
                Ok(c) if c.len() != columns.len() => Err(format!(
                    "{} columns, expected {} ({})",
                    c.len(),
                    columns.len(),
                    columns.join(", ")
                )),
                Ok(c) => Ok(columns.iter().cloned().zip(c.iter().cloned()).collect()),
            },
        })
        .collect();
    Ok((records, columns, skipped))
}

/// Picks the (text, pair, label) columns (see the module docs).
fn resolve_fields(
    path: &Path,
    columns: &[String],
    records: &[Record],
    fields: &Fields,
) -> Result<(String, Option<String>, String), TrainError> {
    let has = |c: &str| columns.iter().any(|x| x == c);
    // A column named like `c` ignoring case (`Label`), as it is spelled in the file.
    let named = |c: &str| columns.iter().find(|x| x.eq_ignore_ascii_case(c)).cloned();
    let check = |key: &str, c: &String| {
        if has(c) {
            Ok(c.clone())
        } else {
            Err(data_err(
                path,
                format!(
                    "{key} {c:?} is not a column (columns: {})",
                    columns.join(", ")
                ),
            ))
        }
    };
    let label = match &fields.label_field {
        Some(c) => check("label_field", c)?,
        None if named("label").is_some() => named("label").unwrap_or_default(),
        None if columns.len() == 2 => {
            // Two unnamed columns: the label column has fewer distinct values.
            let distinct = |c: &String| {
                records
                    .iter()
                    .filter_map(|r| r.cells.as_ref().ok().and_then(|m| m.get(c)))
                    .collect::<BTreeSet<_>>()
                    .len()
            };
            let (a, b) = (&columns[0], &columns[1]);
            if distinct(a) <= distinct(b) {
                a.clone()
            } else {
                b.clone()
            }
        }
        None => {
            return Err(data_err(
                path,
                format!(
                    "no label column found (columns: {}): set label_field (--label-field)",
                    columns.join(", ")
                ),
            ))
        }
    };
    let pair = match &fields.text_pair_field {
        Some(c) => Some(check("text_pair_field", c)?),
        None => None,
    };
    let text = match &fields.text_field {
        Some(c) => check("text_field", c)?,
        None => {
            let by_name = TEXT_NAMES.iter().find_map(|n| named(n));
            let others: Vec<&String> = columns
                .iter()
                .filter(|c| **c != label && Some(*c) != pair.as_ref())
                .collect();
            match (by_name, others.as_slice()) {
                (Some(n), _) => n,
                (None, [only]) => (*only).clone(),
                _ => {
                    return Err(data_err(
                        path,
                        format!(
                            "cannot tell the text column (columns: {}): set text_field \
                             (--text-field)",
                            columns.join(", ")
                        ),
                    ))
                }
            }
        }
    };
    if text == label {
        return Err(data_err(path, format!("text and label are both {text:?}")));
    }
    Ok((text, pair, label))
}

/// The label set of a classifier, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSet {
    pub labels: Vec<String>,
}

impl LabelSet {
    /// The labels of `file`: numeric labels in numeric order, others sorted. Errors on an
    /// empty file or a single label.
    pub fn infer(file: &LabelledFile) -> Result<Self, TrainError> {
        let set: BTreeSet<&str> = file.examples.iter().map(|e| e.label.as_str()).collect();
        if file.examples.is_empty() {
            return Err(data_err(
                &file.path,
                format!(
                    "no usable examples{}",
                    file.skipped_summary()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            ));
        }
        if set.len() < 2 {
            return Err(data_err(
                &file.path,
                format!(
                    "every example has the label {:?}: a classifier needs at least two labels",
                    set.iter().next().copied().unwrap_or("")
                ),
            ));
        }
        let mut labels: Vec<String> = set.into_iter().map(str::to_string).collect();
        if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
            labels.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
        }
        Ok(Self { labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The id of `label`.
    pub fn id(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    /// The ids of `file`'s examples; an unknown label is an error naming file and line.
    pub fn ids(&self, file: &LabelledFile) -> Result<Vec<usize>, TrainError> {
        file.examples
            .iter()
            .map(|e| {
                self.id(&e.label).ok_or_else(|| {
                    data_err(
                        &file.path,
                        format!(
                            "line {}: label {:?} is not one of the model's labels ({})",
                            e.line,
                            e.label,
                            self.labels.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }

    /// Examples per label in `ids`.
    pub fn counts(&self, ids: &[usize]) -> Vec<usize> {
        let mut c = vec![0; self.labels.len()];
        for &i in ids {
            if let Some(x) = c.get_mut(i) {
                *x += 1;
            }
        }
        c
    }
}

/// Splits example indices into (train, dev), stratified by label: in every label, a seeded
/// `fraction` (rounded, at least one when the label has two or more examples) goes to dev.
pub fn stratified_split(labels: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_label.entry(l).or_default().push(i);
    }
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for (label, mut idx) in by_label {
        Rng::new(splitmix64(seed ^ splitmix64(label as u64))).shuffle(&mut idx);
        let mut k = (idx.len() as f64 * fraction).round() as usize;
        if k == 0 && idx.len() >= 2 && fraction > 0.0 {
            k = 1;
        }
        dev.extend_from_slice(&idx[..k.min(idx.len())]);
        train.extend_from_slice(&idx[k.min(idx.len())..]);
    }
    train.sort_unstable();
    dev.sort_unstable();
    (train, dev)
}

/// How texts become model rows.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    tokenizer: Arc<Tokenizer>,
    pub style: RowStyle,
    /// Longest row, special tokens included.
    pub max_len: usize,
}

/// The row layout of a model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStyle {
    /// `[CLS] a [SEP] (b [SEP])`, token types 0 then 1.
    Bert { cls: u32, sep: u32 },
    /// The text; a pair is `a sep b` (no separator when `None`).
    Gpt { sep: Option<u32> },
}

/// One encoded example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Label id (`-100` when unknown, e.g. unlabelled text to classify).
    pub label: i64,
}

/// HF `longest_first` truncation of a pair to `max` tokens (tokenizers' `truncate_encodings`).
fn longest_first(a: &mut Vec<u32>, b: &mut Vec<u32>, max: usize) {
    if a.len() + b.len() <= max {
        return;
    }
    let (mut n1, mut n2) = (a.len(), b.len());
    let swap = n1 > n2;
    if swap {
        std::mem::swap(&mut n1, &mut n2);
    }
    n2 = if n1 > max { n1 } else { n1.max(max - n1) };
    if n1 + n2 > max {
        n1 = max / 2;
        n2 = n1 + max % 2;
    }
    if swap {
        std::mem::swap(&mut n1, &mut n2);
    }
    a.truncate(n1);
    b.truncate(n2);
}

impl TextEncoder {
    pub fn new(tokenizer: Arc<Tokenizer>, style: RowStyle, max_len: usize) -> Self {
        Self {
            tokenizer,
            style,
            max_len,
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Encodes one text (and optional pair).
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        label: i64,
    ) -> Result<Encoded, TrainError> {
        let enc = |t: &str| {
            self.tokenizer
                .encode(t)
                .map_err(|e| TrainError::InvalidConfig(format!("tokenizer: {e}")))
        };
        let mut a = enc(text)?;
        let mut b = match pair {
            Some(p) => Some(enc(p)?),
            None => None,
        };
        let (ids, type_ids) = match self.style {
            RowStyle::Bert { cls, sep } => {
                let specials = if b.is_some() { 3 } else { 2 };
                let room = self.max_len.saturating_sub(specials);
                match &mut b {
                    Some(b) => longest_first(&mut a, b, room),
                    None => a.truncate(room),
                }
                let mut ids = vec![cls];
                ids.extend(&a);
                ids.push(sep);
                let mut types = vec![0; ids.len()];
                if let Some(b) = b {
                    ids.extend(&b);
                    ids.push(sep);
                    types.resize(ids.len(), 1);
                }
                (ids, types)
            }
            RowStyle::Gpt { sep } => {
                let specials = usize::from(b.is_some() && sep.is_some());
                let room = self.max_len.saturating_sub(specials);
                match &mut b {
                    Some(b) => longest_first(&mut a, b, room),
                    None => a.truncate(room),
                }
                let mut ids = a;
                if let Some(b) = b {
                    ids.extend(sep);
                    ids.extend(b);
                }
                let n = ids.len();
                (ids, vec![0; n])
            }
        };
        if ids.is_empty() {
            return Err(TrainError::InvalidConfig(format!(
                "{text:?} encodes to no tokens"
            )));
        }
        Ok(Encoded {
            ids,
            type_ids,
            label,
        })
    }

    /// Encodes `file`'s examples with labels `ids` (in parallel).
    pub fn encode_file(
        &self,
        file: &LabelledFile,
        ids: &[usize],
    ) -> Result<Vec<Encoded>, TrainError> {
        file.examples
            .iter()
            .zip(ids)
            .map(|(e, &l)| {
                self.encode(&e.text, e.text_pair.as_deref(), l as i64)
                    .map_err(|err| data_err(&file.path, format!("line {}: {err}", e.line)))
            })
            .collect()
    }
}

/// One padded batch of classification rows `[B, T]` (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassBatch {
    pub batch_size: usize,
    pub seq_len: usize,
    pub input_ids: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    /// `1` = token, `0` = padding (right padding).
    pub attention_mask: Vec<i64>,
    /// `[B]` label ids (`-100`: none).
    pub labels: Vec<i64>,
    /// Which task of a multi-task model the rows belong to (0 for single tasks).
    pub task: usize,
}

impl ClassBatch {
    /// Pads `rows` to their longest with `pad`.
    pub fn pad(rows: &[&Encoded], pad: u32, task: usize) -> Self {
        let t = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1).max(1);
        let b = rows.len();
        let mut batch = ClassBatch {
            batch_size: b,
            seq_len: t,
            input_ids: Vec::with_capacity(b * t),
            token_type_ids: Vec::with_capacity(b * t),
            attention_mask: Vec::with_capacity(b * t),
            labels: Vec::with_capacity(b),
            task,
        };
        for r in rows {
            let n = r.ids.len();
            batch.input_ids.extend(r.ids.iter().map(|&x| i64::from(x)));
            batch
                .input_ids
                .extend(std::iter::repeat_n(i64::from(pad), t - n));
            batch
                .token_type_ids
                .extend(r.type_ids.iter().map(|&x| i64::from(x)));
            batch.token_type_ids.extend(std::iter::repeat_n(0, t - n));
            batch.attention_mask.extend(std::iter::repeat_n(1, n));
            batch.attention_mask.extend(std::iter::repeat_n(0, t - n));
            batch.labels.push(r.label);
        }
        batch
    }

    /// Real (unpadded) tokens.
    pub fn num_tokens(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }

    /// `(input_ids, token_type_ids, attention_mask)` as `[B, T]` tensors on `device`.
    pub fn tensors(
        &self,
        device: &burn::tensor::Device,
    ) -> (
        burn::tensor::Tensor<2, burn::tensor::Int>,
        burn::tensor::Tensor<2, burn::tensor::Int>,
        burn::tensor::Tensor<2, burn::tensor::Int>,
    ) {
        let shape = [self.batch_size, self.seq_len];
        let t = |v: &[i64]| {
            burn::tensor::Tensor::from_data(
                burn::tensor::TensorData::new(v.to_vec(), shape),
                device,
            )
        };
        (
            t(&self.input_ids),
            t(&self.token_type_ids),
            t(&self.attention_mask),
        )
    }
}

/// Pool size (in batches) of the length bucketing.
const BUCKET_POOL: usize = 50;

/// Batches of encoded examples with a resumable position. Training order: a new seeded,
/// length-bucketed order every epoch; evaluation order: by length, the same every pass.
#[derive(Debug, Clone)]
pub struct ClassSource {
    rows: Arc<Vec<Encoded>>,
    batch_size: usize,
    pad: u32,
    task: usize,
    /// `None`: evaluation order.
    seed: Option<u64>,
    position: u64,
    /// The batch plan of one epoch: `(epoch, batches of row indices)`.
    plan: Option<(u64, Vec<Vec<usize>>)>,
}

impl ClassSource {
    /// A source over `rows`; `seed` = `Some(s)` shuffles (training), `None` keeps a fixed
    /// length-sorted order (evaluation). Errors when there are no rows.
    pub fn new(
        rows: Arc<Vec<Encoded>>,
        batch_size: usize,
        pad: u32,
        task: usize,
        seed: Option<u64>,
    ) -> Result<Self, TrainError> {
        if rows.is_empty() {
            return Err(TrainError::InvalidConfig("no examples to batch".into()));
        }
        if batch_size == 0 {
            return Err(TrainError::InvalidConfig(
                "data.batch_size must be >= 1".into(),
            ));
        }
        Ok(Self {
            rows,
            batch_size,
            pad,
            task,
            seed,
            position: 0,
            plan: None,
        })
    }

    pub fn num_examples(&self) -> usize {
        self.rows.len()
    }

    fn batches(&self) -> u64 {
        self.rows.len().div_ceil(self.batch_size) as u64
    }

    fn epoch_plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut idx: Vec<usize> = (0..self.rows.len()).collect();
        let len = |i: &usize| self.rows[*i].ids.len();
        match self.seed {
            None => {
                idx.sort_by_key(len);
                idx.chunks(self.batch_size).map(<[usize]>::to_vec).collect()
            }
            Some(seed) => {
                let mut rng = Rng::new(splitmix64(seed ^ splitmix64(epoch ^ 0xC1A5)));
                rng.shuffle(&mut idx);
                let mut batches: Vec<Vec<usize>> = Vec::new();
                for pool in idx.chunks_mut(self.batch_size * BUCKET_POOL) {
                    pool.sort_by_key(len);
                    batches.extend(pool.chunks(self.batch_size).map(<[usize]>::to_vec));
                }
                rng.shuffle(&mut batches);
                batches
            }
        }
    }
}

impl BatchSource<ClassBatch> for ClassSource {
    fn next_batch(&mut self) -> ClassBatch {
        let per_epoch = self.batches().max(1);
        let (epoch, k) = (
            self.position / per_epoch,
            (self.position % per_epoch) as usize,
        );
        if self.plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.plan = Some((epoch, self.epoch_plan(epoch)));
        }
        self.position += 1;
        let rows: Vec<&Encoded> = match &self.plan {
            Some((_, plan)) => plan
                .get(k)
                .map(|b| b.iter().map(|&i| &self.rows[i]).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        ClassBatch::pad(&rows, self.pad, self.task)
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }

    fn batches_per_epoch(&self) -> Option<u64> {
        Some(self.batches())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn tsv_with_header_and_bad_rows_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "t.tsv",
            b"sentence\tlabel\na \"quoted\" film\t1\n\t0\nfine\t\nbad\xff utf\t0\nthree\tcols\tx\nok\t0\n",
        );
        let f = read_labelled(&p, &Fields::default()).unwrap();
        assert_eq!(f.columns, ("sentence".into(), None, "label".into()));
        let texts: Vec<&str> = f.examples.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["a \"quoted\" film", "ok"]);
        assert_eq!(f.examples[1].line, 7);
        let lines: Vec<usize> = f.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert!(
            f.skipped[0].reason.contains("empty text"),
            "{:?}",
            f.skipped
        );
        assert!(f.skipped[1].reason.contains("missing label"));
        assert!(f.skipped[2].reason.contains("UTF-8"));
        assert!(f.skipped[3].reason.contains("3 columns"));
        assert!(f.skipped_summary().unwrap().contains("4 row(s) skipped"));
    }

    #[test]
    fn a_capitalised_header_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "sms", b"Label\tSMS\nham\thi\nspam\twin\n");
        let f = read_labelled(&p, &Fields::default()).unwrap();
        assert_eq!(f.columns, ("SMS".into(), None, "Label".into()));
        assert_eq!(f.examples.len(), 2);
    }

    #[test]
    fn headerless_two_columns_find_the_label_and_csv_quotes_work() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "spam",
            b"ham\tgo home now\nspam\twin a prize\nham\tsee you\nham\tok then\n",
        );
        let f = read_labelled(&p, &Fields::default()).unwrap();
        assert_eq!(f.columns, ("1".into(), None, "0".into()));
        assert_eq!(f.examples[1].label, "spam");
        let p = write(
            dir.path(),
            "c.csv",
            b"label,review\n1,\"good, really\"\n0,\"bad\"\"\"\n",
        );
        let f = read_labelled(&p, &Fields::default()).unwrap();
        assert_eq!(f.examples[0].text, "good, really");
        assert_eq!(f.examples[1].text, "bad\"");
    }

    #[test]
    fn jsonl_fields_pairs_and_numeric_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "p.jsonl",
            b"{\"premise\":\"a\",\"hypothesis\":\"b\",\"label\":2}\n{\"premise\":\"c\",\"hypothesis\":\"d\",\"label\":10}\nnot json\n",
        );
        let fields = Fields {
            text_field: Some("premise".into()),
            text_pair_field: Some("hypothesis".into()),
            ..Fields::default()
        };
        let f = read_labelled(&p, &fields).unwrap();
        assert_eq!(f.examples[0].text_pair.as_deref(), Some("b"));
        assert_eq!(f.skipped.len(), 1);
        let set = LabelSet::infer(&f).unwrap();
        assert_eq!(set.labels, ["2", "10"], "numeric order");
        let e = read_labelled(
            &p,
            &Fields {
                text_field: Some("nope".into()),
                ..Fields::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("p.jsonl") && e.contains("nope"), "{e}");
    }

    #[test]
    fn one_label_and_unknown_labels_are_errors_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let one = write(dir.path(), "one.tsv", b"text\tlabel\na\tx\nb\tx\n");
        let f = read_labelled(&one, &Fields::default()).unwrap();
        let e = LabelSet::infer(&f).unwrap_err().to_string();
        assert!(e.contains("one.tsv") && e.contains("two labels"), "{e}");
        let empty = write(dir.path(), "empty.tsv", b"text\tlabel\n\tx\n");
        let f = read_labelled(&empty, &Fields::default()).unwrap();
        let e = LabelSet::infer(&f).unwrap_err().to_string();
        assert!(
            e.contains("no usable examples") && e.contains("line 2"),
            "{e}"
        );
        let set = LabelSet {
            labels: vec!["x".into(), "y".into()],
        };
        let dev = write(dir.path(), "dev.tsv", b"text\tlabel\na\tx\nb\tz\n");
        let f = read_labelled(&dev, &Fields::default()).unwrap();
        let e = set.ids(&f).unwrap_err().to_string();
        assert!(
            e.contains("dev.tsv") && e.contains("line 3") && e.contains("\"z\""),
            "{e}"
        );
    }

    #[test]
    fn stratified_split_keeps_label_shares_and_is_seeded() {
        let labels: Vec<usize> = (0..1000).map(|i| usize::from(i % 10 == 0)).collect();
        let (train, dev) = stratified_split(&labels, 0.2, 7);
        assert_eq!(train.len() + dev.len(), 1000);
        let dev_pos = dev.iter().filter(|&&i| labels[i] == 1).count();
        assert_eq!((dev.len(), dev_pos), (200, 20));
        assert_eq!(
            stratified_split(&labels, 0.2, 7),
            (train.clone(), dev.clone())
        );
        assert_ne!(stratified_split(&labels, 0.2, 8).1, dev);
    }

    #[test]
    fn truncation_matches_hf_longest_first() {
        // Expected lengths follow tokenizers 0.23's truncate_encodings (LongestFirst).
        for ((n1, n2), max, want) in [
            ((6, 4), 7, (4, 3)),
            ((2, 10), 7, (2, 5)),
            ((10, 2), 7, (5, 2)),
            ((3, 3), 7, (3, 3)),
            ((9, 9), 8, (4, 4)),
        ] {
            let mut a: Vec<u32> = (0..n1).collect();
            let mut b: Vec<u32> = (0..n2).collect();
            longest_first(&mut a, &mut b, max);
            assert_eq!(
                (a.len() as u32, b.len() as u32),
                want,
                "{n1},{n2} max {max}"
            );
        }
    }

    #[test]
    fn batches_are_length_bucketed_resumable_and_cover_an_epoch() {
        let rows: Vec<Encoded> = (0..1000)
            .map(|i| Encoded {
                ids: vec![1; 1 + (i * 7919) % 60],
                type_ids: vec![0; 1 + (i * 7919) % 60],
                label: (i % 2) as i64,
            })
            .collect();
        let rows = Arc::new(rows);
        let mut s = ClassSource::new(rows.clone(), 10, 0, 0, Some(3)).unwrap();
        assert_eq!(s.batches_per_epoch(), Some(100));
        let epoch: Vec<ClassBatch> = (0..100).map(|_| s.next_batch()).collect();
        let n: usize = epoch.iter().map(|b| b.batch_size).sum();
        assert_eq!(n, 1000);
        // Padding: bucketed batches waste far less than random ones would (~50%).
        let real: usize = epoch.iter().map(ClassBatch::num_tokens).sum();
        let padded: usize = epoch.iter().map(|b| b.batch_size * b.seq_len).sum();
        assert!(real as f64 / padded as f64 > 0.9, "{real} / {padded}");
        // Position 150 after a seek equals position 150 of an uninterrupted stream.
        for _ in 0..50 {
            s.next_batch();
        }
        let want = s.next_batch();
        let mut t = ClassSource::new(rows, 10, 0, 0, Some(3)).unwrap();
        t.seek(150);
        assert_eq!(t.next_batch(), want);
        // A new epoch has a new order.
        assert_ne!(epoch[0], {
            t.seek(100);
            t.next_batch()
        });
    }
}

//! JSON Lines reader: one record per non-blank line.
//!
//! * The text is the string field `opts.text_field`; a record without it (or
//!   with a non-string value) fails as `jsonl:missing_text`.
//! * The id is `opts.id_field` (a string or a number), else `source#<line
//!   index>` (0-based physical line index, blank lines included).
//! * With `opts.metadata_fields` set, only the named top-level fields (and
//!   `metadata`, when named) are kept.
//! * A nested `"metadata"` object (refinery's and datatrove's own output) and
//!   the other top-level fields (except text, id, `source` and `metadata`)
//!   become [`Metadata`]: `url`, `date`, `content_type`, `charset`, `lang`,
//!   `lang_score` go to the typed fields, the rest to `extra`. Nested
//!   metadata wins over a top-level field of the same name.
//! * A line that is not a JSON object fails as `jsonl:invalid_json` (the
//!   detail gives the 1-based line number and the serde error); invalid
//!   UTF-8 is decoded lossily, counted in `invalid_bytes`, and reported as
//!   a `jsonl:lossy_utf8` warning (with the line) before the document.
//! * A line longer than `opts.max_record_bytes` is dropped as
//!   `jsonl:too_large` without being buffered.

use serde_json::{Map, Value};

use super::decompress::{read_failure, Input};
use super::{Failure, Item, ItemStream, ReaderOptions};
use crate::{Document, Metadata};

/// Reads a JSONL stream lazily.
pub fn read_jsonl(
    stream: Box<dyn std::io::BufRead + Send>,
    source: &str,
    opts: &ReaderOptions,
) -> ItemStream {
    Box::new(JsonlReader {
        input: Input::new(stream),
        source: source.to_string(),
        text_field: opts.text_field.clone(),
        id_field: opts.id_field.clone(),
        metadata_fields: opts.metadata_fields.clone(),
        is_html: opts.jsonl_html,
        limit: usize::try_from(opts.max_record_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(2),
        max: opts.max_record_bytes,
        line_index: 0,
        done: false,
        buf: Vec::new(),
        queued: None,
    })
}

struct JsonlReader {
    input: Input,
    source: String,
    text_field: String,
    id_field: String,
    metadata_fields: Option<Vec<String>>,
    is_html: bool,
    /// Line buffer bound: the record limit plus room for `\r\n`.
    limit: usize,
    max: u64,
    line_index: u64,
    done: bool,
    buf: Vec<u8>,
    /// The document of a line whose `jsonl:lossy_utf8` warning went first.
    queued: Option<Item>,
}

impl Iterator for JsonlReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.queued.take() {
            return Some(item);
        }
        loop {
            if self.done {
                return None;
            }
            let start = self.input.pos();
            self.buf.clear();
            let line = match self.input.read_line(&mut self.buf, self.limit) {
                Ok(l) if l.consumed == 0 => {
                    self.done = true;
                    return None;
                }
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return Some(Item::Failed(read_failure(&e, start)));
                }
            };
            let index = self.line_index;
            self.line_index += 1;
            let mut content: &[u8] = &self.buf;
            content = content.strip_suffix(b"\n").unwrap_or(content);
            content = content.strip_suffix(b"\r").unwrap_or(content);
            if line.overflow || content.len() as u64 > self.max {
                return Some(Item::Dropped {
                    reason: "jsonl:too_large".into(),
                    offset: start,
                });
            }
            if content.trim_ascii().is_empty() {
                continue;
            }
            return Some(self.parse(start, index));
        }
    }
}

impl JsonlReader {
    fn parse(&mut self, offset: u64, index: u64) -> Item {
        let line_no = index + 1;
        let bytes = self.buf.trim_ascii();
        let mut invalid = 0u64;
        let parsed = match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => Ok(v),
            Err(e) => match std::str::from_utf8(bytes) {
                Ok(_) => Err(e),
                Err(_) => {
                    let d = super::charset::decode_as(bytes, encoding_rs::UTF_8);
                    invalid = d.invalid_bytes;
                    serde_json::from_str::<Value>(&d.text)
                }
            },
        };
        let mut map = match parsed {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return Item::Failed(Failure::new(
                    "jsonl:invalid_json",
                    offset,
                    format!(
                        "line {line_no}: expected a JSON object, found {}",
                        kind(&other)
                    ),
                ))
            }
            Err(e) => {
                return Item::Failed(Failure::new(
                    "jsonl:invalid_json",
                    offset,
                    super::decompress::truncate_detail(&format!("line {line_no}: {e}")),
                ))
            }
        };
        let text = match map.remove(&self.text_field) {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Item::Failed(Failure::new(
                    "jsonl:missing_text",
                    offset,
                    format!(
                        "line {line_no}: field \"{}\" is {}, not a string",
                        self.text_field,
                        kind(&other)
                    ),
                ))
            }
            None => {
                return Item::Failed(Failure::new(
                    "jsonl:missing_text",
                    offset,
                    format!("line {line_no}: no field \"{}\"", self.text_field),
                ))
            }
        };
        let id = match map.remove(&self.id_field) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => format!("{}#{index}", self.source),
        };
        map.remove("source");
        if let Some(keep) = &self.metadata_fields {
            map.retain(|k, _| keep.iter().any(|f| f == k));
        }
        let nested = map.remove("metadata");
        let mut metadata = metadata_from(map, nested);
        if invalid > 0 {
            metadata.set("invalid_bytes", invalid);
        }
        let doc = Item::Doc(Document {
            id,
            text,
            source: self.source.clone(),
            metadata,
            is_html: self.is_html,
        });
        if invalid == 0 {
            return doc;
        }
        self.queued = Some(doc);
        Item::Warning(Failure::new(
            "jsonl:lossy_utf8",
            offset,
            format!("line {line_no}: {invalid} invalid UTF-8 byte(s) replaced with U+FFFD"),
        ))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds a document's metadata from its top-level fields and its nested
/// `metadata` value (JSONL and Parquet): typed fields where the name
/// matches, `extra` otherwise; a nested object wins over a top-level field
/// of the same name, and a nested value that is not an object is kept as
/// `extra.metadata`.
pub(crate) fn metadata_from(top: Map<String, Value>, nested: Option<Value>) -> Metadata {
    let mut metadata = Metadata::default();
    merge(&mut metadata, top);
    match nested {
        Some(Value::Object(m)) => merge(&mut metadata, m),
        Some(Value::Null) | None => {}
        Some(other) => {
            metadata.extra.insert("metadata".into(), other);
        }
    }
    metadata
}

/// Moves JSON fields into metadata: typed fields where the name matches,
/// `extra` otherwise.
fn merge(md: &mut Metadata, fields: Map<String, Value>) {
    for (k, v) in fields {
        let slot = match k.as_str() {
            "url" => &mut md.url,
            "date" => &mut md.date,
            "content_type" => &mut md.content_type,
            "charset" => &mut md.charset,
            "lang" => &mut md.lang,
            "lang_score" => {
                let score = match &v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                if let Some(s) = score.filter(|s| s.is_finite()) {
                    md.lang_score = Some(s);
                }
                continue;
            }
            _ => {
                md.extra.insert(k, v);
                continue;
            }
        };
        match v {
            Value::String(s) => *slot = Some(s),
            Value::Null => {}
            other => *slot = Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(data: &[u8], opts: &ReaderOptions) -> Vec<Item> {
        read_jsonl(Box::new(Cursor::new(data.to_vec())), "f.jsonl", opts).collect()
    }

    fn outcome(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Doc(d) => format!("doc:{}", d.id),
                Item::Dropped { reason, offset } => format!("drop:{reason}@{offset}"),
                Item::Failed(f) => format!("fail:{}@{}", f.reason, f.offset),
                Item::Warning(f) => format!("warn:{}@{}", f.reason, f.offset),
            })
            .collect()
    }

    #[test]
    fn records_ids_and_failures() {
        let data = b"{\"id\": \"a\", \"text\": \"one\"}\n\n  \r\n{\"text\": \"two\", \"id\": 7}\r\n{\"text\": \"three\"}\nnot json\n[1,2]\n{\"id\": \"x\"}\n{\"text\": 5}\n{\"text\": \"last, no newline\"}";
        let items = read(data, &ReaderOptions::default());
        assert_eq!(
            outcome(&items),
            vec![
                "doc:a",
                "doc:7",
                "doc:f.jsonl#4",
                "fail:jsonl:invalid_json@76",
                "fail:jsonl:invalid_json@85",
                "fail:jsonl:missing_text@91",
                "fail:jsonl:missing_text@103",
                "doc:f.jsonl#9"
            ]
        );
        let Item::Failed(f) = &items[3] else { panic!() };
        assert!(f.detail.starts_with("line 6: "), "{}", f.detail);
        let Item::Failed(f) = &items[5] else { panic!() };
        assert_eq!(f.detail, "line 8: no field \"text\"");
        let Item::Failed(f) = &items[6] else { panic!() };
        assert_eq!(f.detail, "line 9: field \"text\" is a number, not a string");
    }

    #[test]
    fn metadata_merge() {
        let line = br#"{"text": "t", "id": "d1", "source": "cc", "url": "http://top/", "added": "2023", "metadata": {"url": "http://nested/", "lang": "en", "lang_score": 0.93, "date": 20190101, "charset": null, "perplexity": 304.6, "line_ids": [1, 2]}}"#;
        let items = read(line, &ReaderOptions::default());
        let Item::Doc(d) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(d.source, "f.jsonl");
        let m = &d.metadata;
        assert_eq!(m.url.as_deref(), Some("http://nested/"));
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.lang_score, Some(0.93));
        assert_eq!(m.date.as_deref(), Some("20190101"));
        assert_eq!(m.charset, None);
        let keys: Vec<&str> = m.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["added", "line_ids", "perplexity"]);
        assert!(!d.is_html);
        // Round trip of refinery's own output.
        let json = serde_json::to_string(d).unwrap();
        let again = read(json.as_bytes(), &ReaderOptions::default());
        let Item::Doc(d2) = &again[0] else { panic!() };
        assert_eq!(d2.metadata, d.metadata);
        assert_eq!(d2.id, d.id);
    }

    #[test]
    fn custom_fields_html_invalid_utf8_and_too_large() {
        let opts = ReaderOptions {
            text_field: "content".into(),
            id_field: "doc_id".into(),
            jsonl_html: true,
            max_record_bytes: 60,
            ..ReaderOptions::default()
        };
        let mut data = b"{\"doc_id\": \"h\", \"content\": \"<p>caf\xe9</p>\"}\n".to_vec();
        data.extend(format!("{{\"content\": \"{}\"}}\n", "x".repeat(100)).bytes());
        data.extend(b"{\"content\": \"ok\"}\n");
        let items = read(&data, &opts);
        assert_eq!(
            outcome(&items),
            vec![
                "warn:jsonl:lossy_utf8@0",
                "doc:h",
                "drop:jsonl:too_large@42",
                "doc:f.jsonl#2"
            ]
        );
        let Item::Warning(w) = &items[0] else {
            panic!()
        };
        assert_eq!(
            w.detail,
            "line 1: 1 invalid UTF-8 byte(s) replaced with U+FFFD"
        );
        let Item::Doc(d) = &items[1] else { panic!() };
        assert!(d.is_html);
        assert_eq!(d.text, "<p>caf\u{FFFD}</p>");
        assert_eq!(d.metadata.get("invalid_bytes"), Some(&Value::from(1)));
    }

    #[test]
    fn empty_input_has_no_records() {
        assert!(read(b"", &ReaderOptions::default()).is_empty());
        assert!(read(b"\n\n \n", &ReaderOptions::default()).is_empty());
    }
}

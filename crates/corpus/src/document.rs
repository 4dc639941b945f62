//! The unit of data that flows through every stage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One document: a web page, a JSONL record, a text file, line or paragraph.
///
/// Serialized as one JSON object per line:
/// `{"id": …, "text": …, "source": …, "metadata": {…}}`. Field order is fixed
/// and `metadata.extra` is a sorted map, so the output is byte-for-byte
/// deterministic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable across runs: the WARC-Record-ID, or `file#index` for other formats.
    pub id: String,
    /// The document text. Raw HTML until an extraction stage runs, when
    /// [`Document::is_html`] is set.
    pub text: String,
    /// Where it came from: the input file path as given on the command line
    /// (or found under a given directory).
    pub source: String,
    #[serde(default)]
    pub metadata: Metadata,
    /// True while `text` holds markup that an extraction stage should turn
    /// into plain text. Not serialized: written documents are always text
    /// unless the pipeline has no extraction stage.
    #[serde(skip)]
    pub is_html: bool,
}

impl Document {
    /// A plain-text document with empty metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>, source: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            text: text.into(),
            source: source.into(),
            metadata: Metadata::default(),
            is_html: false,
        }
    }
}

/// Metadata carried with a document. The named fields are those that readers
/// and the built-in stages fill; `extra` holds whatever other stages add
/// (flattened into the same JSON object).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// WARC-Target-URI, or the JSONL `url` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// WARC-Date (ISO 8601 as found in the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The HTTP Content-Type media type of the original payload, e.g. `text/html`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The charset the payload was decoded from (`utf-8`, `gbk`, …), lowercase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// Language label (ISO 639-1 where one exists, else ISO 639-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Confidence of `lang`, in [0, 1], rounded to 4 decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_score: Option<f64>,
    /// Anything else, e.g. `warc_record_id`, `invalid_bytes`, `title`, `filter_reason`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Metadata {
    /// Sets an extra field.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.extra.insert(key.into(), value.into());
    }

    /// Reads an extra field.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.extra.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip_keeps_every_field_and_is_ordered() {
        let mut d = Document::new("id1", "hello", "a.warc.gz");
        d.metadata.url = Some("https://example.com/".into());
        d.metadata.lang = Some("en".into());
        d.metadata.lang_score = Some(0.9731);
        d.metadata.set("zeta", 1);
        d.metadata.set("alpha", "x");
        let s = serde_json::to_string(&d).unwrap();
        assert_eq!(
            s,
            r#"{"id":"id1","text":"hello","source":"a.warc.gz","metadata":{"url":"https://example.com/","lang":"en","lang_score":0.9731,"alpha":"x","zeta":1}}"#
        );
        let back: Document = serde_json::from_str(&s).unwrap();
        assert_eq!(back, d);
    }
}

//! Stage traits and the generic adapter that counts, times and routes drops.
//!
//! There are three stage kinds, each a trait with exactly one required method:
//!
//! * [`Filter`]: looks at a document and returns [`Verdict::Keep`] or [`Verdict::Drop`].
//! * [`Modifier`]: rewrites a document's text (e.g. HTML → text) and may drop it.
//! * [`Annotator`]: adds metadata (e.g. `lang`, `lang_score`); never drops.
//!
//! Stages take `&mut self`: the executor builds one instance per task, so
//! per-task state (a dedup hash set) needs no locking, and costly shared
//! resources (a language model) are held behind an `Arc`.
//!
//! [`Stage`] wraps any of them and does the bookkeeping once for all: docs and
//! chars in and out (with length histograms), drops per reason, time spent,
//! and panics turned into `failed` outcomes instead of crashing the run.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::summary::LengthHistogram;
use crate::Document;

/// A drop or failure reason, e.g. `length:too_short` or `warc:truncated`.
pub type Reason = Cow<'static, str>;

/// What a filter or modifier decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Drop(Reason),
}

impl Verdict {
    /// `Verdict::Drop` with a static or owned reason.
    pub fn drop(reason: impl Into<Reason>) -> Self {
        Verdict::Drop(reason.into())
    }
}

/// Decides whether a document stays.
pub trait Filter: Send {
    fn filter(&mut self, doc: &Document) -> Verdict;
}

/// Rewrites a document in place; may drop it (e.g. nothing left after extraction).
pub trait Modifier: Send {
    fn modify(&mut self, doc: &mut Document) -> Verdict;
}

/// Adds metadata to a document. Must not change `text`.
pub trait Annotator: Send {
    fn annotate(&mut self, doc: &mut Document);
}

/// One of the three stage kinds, boxed.
pub enum StageKind {
    Filter(Box<dyn Filter>),
    Modifier(Box<dyn Modifier>),
    Annotator(Box<dyn Annotator>),
}

impl StageKind {
    fn label(&self) -> &'static str {
        match self {
            StageKind::Filter(_) => "filter",
            StageKind::Modifier(_) => "modifier",
            StageKind::Annotator(_) => "annotator",
        }
    }
}

/// What happened to a document in one stage.
pub enum Outcome {
    Keep(Document),
    /// Dropped with a reason; the document is handed back for the rejects writer.
    Drop(Document, Reason),
    /// The stage panicked on this document. The document is lost (it may be
    /// half-modified); its id and the panic message are kept for the report.
    Fail {
        id: String,
        reason: Reason,
        detail: String,
    },
}

/// Counters of one stage in one task; they add up across tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub name: String,
    pub kind: String,
    pub docs_in: u64,
    pub docs_out: u64,
    pub chars_in: u64,
    pub chars_out: u64,
    pub dropped: BTreeMap<String, u64>,
    pub failed: BTreeMap<String, u64>,
    /// Wall time spent inside the stage, in seconds.
    pub seconds: f64,
    /// Lengths (characters) of the documents that came in.
    #[serde(default, skip_serializing_if = "LengthHistogram::is_empty")]
    pub len_in: LengthHistogram,
    /// Lengths (characters) of the documents that went on.
    #[serde(default, skip_serializing_if = "LengthHistogram::is_empty")]
    pub len_out: LengthHistogram,
}

impl StageStats {
    /// Adds another task's counters for the same stage.
    pub fn merge(&mut self, other: &StageStats) {
        self.docs_in += other.docs_in;
        self.docs_out += other.docs_out;
        self.chars_in += other.chars_in;
        self.chars_out += other.chars_out;
        for (k, v) in &other.dropped {
            *self.dropped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
        self.seconds += other.seconds;
        self.len_in.merge(&other.len_in);
        self.len_out.merge(&other.len_out);
    }
}

/// A named stage with its counters: the generic adapter.
pub struct Stage {
    kind: StageKind,
    stats: StageStats,
}

impl Stage {
    pub fn new(name: impl Into<String>, kind: StageKind) -> Self {
        let stats = StageStats {
            name: name.into(),
            kind: kind.label().to_string(),
            ..StageStats::default()
        };
        Stage { kind, stats }
    }

    pub fn filter(name: impl Into<String>, f: impl Filter + 'static) -> Self {
        Stage::new(name, StageKind::Filter(Box::new(f)))
    }

    pub fn modifier(name: impl Into<String>, m: impl Modifier + 'static) -> Self {
        Stage::new(name, StageKind::Modifier(Box::new(m)))
    }

    pub fn annotator(name: impl Into<String>, a: impl Annotator + 'static) -> Self {
        Stage::new(name, StageKind::Annotator(Box::new(a)))
    }

    pub fn name(&self) -> &str {
        &self.stats.name
    }

    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Runs the stage on one document, counting and timing it.
    pub fn process(&mut self, mut doc: Document) -> Outcome {
        let start = Instant::now();
        self.stats.docs_in += 1;
        let len_in = char_len(&doc.text);
        self.stats.chars_in += len_in;
        self.stats.len_in.add(len_in);
        let kind = &mut self.kind;
        // The document is borrowed, not moved, into the closure so that its
        // id is still at hand if the stage panics.
        let result = catch_unwind(AssertUnwindSafe(|| match kind {
            StageKind::Filter(f) => f.filter(&doc),
            StageKind::Modifier(m) => m.modify(&mut doc),
            StageKind::Annotator(a) => {
                a.annotate(&mut doc);
                Verdict::Keep
            }
        }));
        let outcome = match result {
            Ok(Verdict::Keep) => {
                self.stats.docs_out += 1;
                let len_out = char_len(&doc.text);
                self.stats.chars_out += len_out;
                self.stats.len_out.add(len_out);
                Outcome::Keep(doc)
            }
            Ok(Verdict::Drop(reason)) => {
                *self.stats.dropped.entry(reason.to_string()).or_default() += 1;
                Outcome::Drop(doc, reason)
            }
            Err(panic) => {
                let detail = panic_message(&panic);
                let reason: Reason = format!("panic:{}", self.stats.name).into();
                *self.stats.failed.entry(reason.to_string()).or_default() += 1;
                Outcome::Fail {
                    id: doc.id,
                    reason,
                    detail,
                }
            }
        };
        self.stats.seconds += start.elapsed().as_secs_f64();
        outcome
    }
}

fn char_len(s: &str) -> u64 {
    // Counting chars is a byte scan; cheap next to any real stage.
    s.chars().count() as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Short;
    impl Filter for Short {
        fn filter(&mut self, doc: &Document) -> Verdict {
            if doc.text.len() < 3 {
                Verdict::drop("short")
            } else {
                Verdict::Keep
            }
        }
    }

    struct Upper;
    impl Modifier for Upper {
        fn modify(&mut self, doc: &mut Document) -> Verdict {
            doc.text = doc.text.to_uppercase();
            Verdict::Keep
        }
    }

    struct Boom;
    impl Annotator for Boom {
        fn annotate(&mut self, doc: &mut Document) {
            if doc.text.contains("boom") {
                panic!("exploded on {}", doc.id);
            }
            doc.metadata.set("seen", true);
        }
    }

    #[test]
    fn adapter_counts_drops_and_chars() {
        let mut s = Stage::filter("len", Short);
        assert!(
            matches!(s.process(Document::new("1", "ab", "x")), Outcome::Drop(_, r) if r == "short")
        );
        assert!(matches!(
            s.process(Document::new("2", "abcd", "x")),
            Outcome::Keep(_)
        ));
        let st = s.stats();
        assert_eq!(
            (st.docs_in, st.docs_out, st.chars_in, st.chars_out),
            (2, 1, 6, 4)
        );
        assert_eq!(st.dropped.get("short"), Some(&1));
        assert_eq!(st.kind, "filter");
    }

    #[test]
    fn modifier_changes_text_and_counts_output_chars() {
        let mut s = Stage::modifier("up", Upper);
        match s.process(Document::new("1", "añb", "x")) {
            Outcome::Keep(d) => assert_eq!(d.text, "AÑB"),
            _ => panic!("expected keep"),
        }
        assert_eq!(s.stats().chars_out, 3);
    }

    #[test]
    fn panics_become_failures_and_the_stage_keeps_working() {
        let mut s = Stage::annotator("boom", Boom);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = s.process(Document::new("1", "boom", "x"));
        std::panic::set_hook(prev);
        match out {
            Outcome::Fail { id, reason, detail } => {
                assert_eq!(id, "1");
                assert_eq!(reason, "panic:boom");
                assert!(detail.contains("exploded on 1"), "{detail}");
            }
            _ => panic!("expected failure"),
        }
        match s.process(Document::new("2", "fine", "x")) {
            Outcome::Keep(d) => {
                assert_eq!(d.metadata.get("seen"), Some(&serde_json::Value::Bool(true)))
            }
            _ => panic!("expected keep"),
        }
        assert_eq!(s.stats().failed.get("panic:boom"), Some(&1));
    }

    #[test]
    fn stats_merge_adds_up() {
        let mut a = StageStats {
            docs_in: 2,
            ..Default::default()
        };
        a.dropped.insert("x".into(), 1);
        let mut b = StageStats {
            docs_in: 3,
            ..Default::default()
        };
        b.dropped.insert("x".into(), 2);
        b.dropped.insert("y".into(), 5);
        a.merge(&b);
        assert_eq!(a.docs_in, 5);
        assert_eq!(a.dropped["x"], 3);
        assert_eq!(a.dropped["y"], 5);
    }
}

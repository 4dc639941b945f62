//! [`ExactDedup`]: exact deduplication on a hash of the normalized text,
//! within one task.

use std::collections::HashSet;

use refinery_corpus::{Document, Filter, Modifier, Stage, Verdict};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3Default;

/// Drop reason: the normalized text was already seen earlier in this task.
pub const REASON_DUPLICATE: &str = "exact_dedup:duplicate";

/// The `metadata.extra` key of the hash when `annotate_hash` is set: 32
/// lowercase hex digits of the xxh3-128 of the normalized text.
pub const HASH_KEY: &str = "text_hash";

/// Configuration of [`ExactDedup`]. The three normalization steps are on by
/// default and applied per character in this order:
///
/// 1. `lowercase`: Unicode lowercase (`char::to_lowercase`, which may give
///    several chars, e.g. `İ` → `i̇`); not locale-aware.
/// 2. `strip_punctuation`: remove every char that is neither alphanumeric
///    (Unicode `Alphabetic` or `Numeric`) nor whitespace: punctuation,
///    symbols, emoji, control and format chars (zero-width spaces, soft
///    hyphens) and the combining marks that are not `Alphabetic`. Removal
///    joins what it separated: `e-mail` → `email`.
/// 3. `collapse_whitespace`: each run of Unicode whitespace (after step 2,
///    so `a - b` → `a b`) becomes one ASCII space; leading and trailing
///    whitespace is removed.
///
/// With all three off the raw text bytes are hashed. A text that normalizes
/// to nothing (empty, or punctuation only) has the hash of the empty string,
/// so only the first such document in a task is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExactDedupConfig {
    /// Default `true`.
    pub lowercase: bool,
    /// Default `true`.
    pub strip_punctuation: bool,
    /// Default `true`.
    pub collapse_whitespace: bool,
    /// Record the hash in `metadata.extra["text_hash"]`. Default `false`.
    /// Needs the stage to run as a [`Modifier`] (filters see documents
    /// read-only): use [`ExactDedup::into_stage`], which picks the right kind.
    pub annotate_hash: bool,
}

impl Default for ExactDedupConfig {
    fn default() -> Self {
        ExactDedupConfig {
            lowercase: true,
            strip_punctuation: true,
            collapse_whitespace: true,
            annotate_hash: false,
        }
    }
}

impl ExactDedupConfig {
    /// Builds the stage. Every combination of settings is valid, so this
    /// cannot fail; it exists for symmetry with the other stages' configs.
    pub fn build(self) -> ExactDedup {
        ExactDedup::new(self)
    }
}

/// Keeps the first document of each normalized text (see
/// [`ExactDedupConfig`]) and drops later ones as [`REASON_DUPLICATE`].
///
/// The executor builds one instance per task, so "first" means first in
/// this task's input order, and duplicates in different tasks are all kept:
/// cross-task dedup is a later, multi-stage step.
///
/// The key is the xxh3-128 hash of the normalized UTF-8 bytes, computed in
/// one pass through a 256-byte reusable buffer: no allocation per document.
/// Memory: 16 bytes of key per distinct document; as a hash set that is
/// 17 bytes per slot with up to 2x slack from capacity doubling, so 17 to
/// ~40 bytes per distinct document (≈ 0.4 GB for 10 M distinct docs at
/// worst). The chance that two different texts collide among `n` distinct
/// ones is about `n² / 2^129`, i.e. nil.
///
/// Implements both [`Filter`] (no metadata) and [`Modifier`] (writes
/// [`HASH_KEY`] when `annotate_hash` is set, on kept and dropped documents
/// alike, so a rejected duplicate can be traced to the document it repeats).
pub struct ExactDedup {
    config: ExactDedupConfig,
    seen: HashSet<u128>,
    hasher: Xxh3Default,
    buf: [u8; BUF_LEN],
    len: usize,
}

const BUF_LEN: usize = 256;

impl ExactDedup {
    pub fn new(config: ExactDedupConfig) -> Self {
        ExactDedup {
            config,
            seen: HashSet::new(),
            hasher: Xxh3Default::new(),
            buf: [0; BUF_LEN],
            len: 0,
        }
    }

    pub fn config(&self) -> &ExactDedupConfig {
        &self.config
    }

    /// Distinct normalized texts seen so far in this task.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }

    /// Wraps the dedup in a [`Stage`]: a modifier when `annotate_hash` is
    /// set (it has to write metadata), else a filter.
    pub fn into_stage(self, name: impl Into<String>) -> Stage {
        if self.config.annotate_hash {
            Stage::modifier(name, self)
        } else {
            Stage::filter(name, self)
        }
    }

    /// The xxh3-128 hash of the normalized `text`; equal to
    /// `xxh3_128(normalize(text, config).as_bytes())`, without building the
    /// string.
    pub fn hash(&mut self, text: &str) -> u128 {
        self.hasher.reset();
        self.len = 0;
        let c = &self.config;
        if !c.lowercase && !c.strip_punctuation && !c.collapse_whitespace {
            self.hasher.update(text.as_bytes());
            return self.hasher.digest128();
        }
        let (lowercase, strip, collapse) =
            (c.lowercase, c.strip_punctuation, c.collapse_whitespace);
        let mut state = Collapse::default();
        for ch in text.chars() {
            if lowercase {
                for l in ch.to_lowercase() {
                    self.step(l, strip, collapse, &mut state);
                }
            } else {
                self.step(ch, strip, collapse, &mut state);
            }
        }
        self.flush();
        self.hasher.digest128()
    }

    /// Steps 2 and 3 for one (lowercased) char.
    #[inline]
    fn step(&mut self, ch: char, strip: bool, collapse: bool, state: &mut Collapse) {
        if ch.is_whitespace() {
            if !collapse {
                self.push(ch);
            } else if state.started {
                state.pending_space = true;
            }
            return;
        }
        if strip && !ch.is_alphanumeric() {
            return;
        }
        if state.pending_space {
            self.push(' ');
            state.pending_space = false;
        }
        state.started = true;
        self.push(ch);
    }

    #[inline]
    fn push(&mut self, ch: char) {
        if self.len + 4 > BUF_LEN {
            self.flush();
        }
        let n = ch.encode_utf8(&mut self.buf[self.len..]).len();
        self.len += n;
    }

    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }

    /// Records the hash; true if it was new.
    fn first_time(&mut self, hash: u128) -> bool {
        self.seen.insert(hash)
    }
}

/// Whitespace-collapsing state: a space is written only between two kept
/// non-space chars, which also trims both ends.
#[derive(Default)]
struct Collapse {
    started: bool,
    pending_space: bool,
}

/// The normalized text that [`ExactDedup`] hashes, as a string: for tests,
/// debugging and documentation (the stage itself never builds it).
pub fn normalize(text: &str, config: &ExactDedupConfig) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let lowered: Box<dyn Iterator<Item = char>> = if config.lowercase {
        Box::new(text.chars().flat_map(char::to_lowercase))
    } else {
        Box::new(text.chars())
    };
    for ch in lowered {
        if ch.is_whitespace() {
            if !config.collapse_whitespace {
                out.push(ch);
            } else if !out.is_empty() {
                pending_space = true;
            }
        } else if !config.strip_punctuation || ch.is_alphanumeric() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(ch);
        }
    }
    out
}

fn verdict(first: bool) -> Verdict {
    if first {
        Verdict::Keep
    } else {
        Verdict::drop(REASON_DUPLICATE)
    }
}

impl Filter for ExactDedup {
    fn filter(&mut self, doc: &Document) -> Verdict {
        let h = self.hash(&doc.text);
        verdict(self.first_time(h))
    }
}

impl Modifier for ExactDedup {
    fn modify(&mut self, doc: &mut Document) -> Verdict {
        let h = self.hash(&doc.text);
        if self.config.annotate_hash {
            doc.metadata.set(HASH_KEY, format!("{h:032x}"));
        }
        verdict(self.first_time(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_corpus::stage::Outcome;
    use xxhash_rust::xxh3::xxh3_128;

    fn doc(id: &str, text: &str) -> Document {
        Document::new(id, text, "mem")
    }

    fn raw() -> ExactDedupConfig {
        ExactDedupConfig {
            lowercase: false,
            strip_punctuation: false,
            collapse_whitespace: false,
            annotate_hash: false,
        }
    }

    #[test]
    fn keeps_first_drops_later_duplicates() {
        assert_eq!(REASON_DUPLICATE, "exact_dedup:duplicate");
        let mut d = ExactDedup::new(ExactDedupConfig::default());
        assert_eq!(d.filter(&doc("1", "A cat.")), Verdict::Keep);
        assert_eq!(d.filter(&doc("2", "a dog")), Verdict::Keep);
        assert_eq!(
            d.filter(&doc("3", "a CAT")),
            Verdict::drop(REASON_DUPLICATE)
        );
        assert_eq!(
            d.filter(&doc("4", "a cat")),
            Verdict::drop(REASON_DUPLICATE)
        );
        assert_eq!(d.distinct(), 2);
    }

    #[test]
    fn normalization_steps() {
        let c = ExactDedupConfig::default();
        assert_eq!(normalize("  Hello,\tWORLD!!  \n", &c), "hello world");
        assert_eq!(normalize("a - b", &c), "a b");
        assert_eq!(normalize("e-mail", &c), "email");
        assert_eq!(normalize("Größe 42€ 😀 ΣΊΣΥΦΟΣ", &c), "größe 42 σίσυφοσ");
        assert_eq!(normalize("日本語、テスト。", &c), "日本語テスト");
        assert_eq!(normalize("zero\u{200b}width", &c), "zerowidth");
        assert_eq!(normalize("?!", &c), "");
        let only_lower = ExactDedupConfig {
            strip_punctuation: false,
            collapse_whitespace: false,
            ..raw()
        };
        let only_lower = ExactDedupConfig {
            lowercase: true,
            ..only_lower
        };
        assert_eq!(normalize(" A, B ", &only_lower), " a, b ");
        let no_collapse = ExactDedupConfig {
            collapse_whitespace: false,
            ..Default::default()
        };
        assert_eq!(normalize(" A,  B ", &no_collapse), " a  b ");
        assert_eq!(normalize(" A, B ", &raw()), " A, B ");
    }

    #[test]
    fn streaming_hash_equals_hash_of_normalized_string() {
        let long = "Lorem ipsum, dolor SIT amet! ".repeat(200) + "İstanbul ǅemal ﬃ";
        let texts = [
            "",
            " ",
            "x",
            "Hello, World",
            "  a \n\n b  ",
            "İ",
            "ÀÉÎ õü",
            long.as_str(),
        ];
        let configs = [
            ExactDedupConfig::default(),
            raw(),
            ExactDedupConfig {
                lowercase: false,
                ..Default::default()
            },
            ExactDedupConfig {
                strip_punctuation: false,
                ..Default::default()
            },
            ExactDedupConfig {
                collapse_whitespace: false,
                ..Default::default()
            },
        ];
        for c in configs {
            let mut d = ExactDedup::new(c.clone());
            for t in texts {
                assert_eq!(
                    d.hash(t),
                    xxh3_128(normalize(t, &c).as_bytes()),
                    "{c:?} {t:?}"
                );
            }
        }
    }

    #[test]
    fn raw_mode_is_byte_exact() {
        let mut d = ExactDedup::new(raw());
        assert_eq!(d.filter(&doc("1", "a b")), Verdict::Keep);
        assert_eq!(d.filter(&doc("2", "a  b")), Verdict::Keep);
        assert_eq!(d.filter(&doc("3", "A b")), Verdict::Keep);
        assert_eq!(d.filter(&doc("4", "a b")), Verdict::drop(REASON_DUPLICATE));
    }

    #[test]
    fn empty_after_normalization_counts_as_one_text() {
        let mut d = ExactDedup::new(ExactDedupConfig::default());
        assert_eq!(d.filter(&doc("1", "")), Verdict::Keep);
        assert_eq!(
            d.filter(&doc("2", "!!! ...")),
            Verdict::drop(REASON_DUPLICATE)
        );
    }

    #[test]
    fn annotates_hash_as_modifier() {
        let c = ExactDedupConfig {
            annotate_hash: true,
            ..Default::default()
        };
        let mut stage = ExactDedup::new(c.clone()).into_stage("dedup");
        let want = format!("{:032x}", xxh3_128(b"hello world"));
        match stage.process(doc("1", "Hello, world!")) {
            Outcome::Keep(d) => assert_eq!(
                d.metadata.get(HASH_KEY),
                Some(&serde_json::Value::String(want.clone()))
            ),
            _ => panic!("expected keep"),
        }
        match stage.process(doc("2", "hello world")) {
            Outcome::Drop(d, r) => {
                assert_eq!(r, REASON_DUPLICATE);
                assert_eq!(
                    d.metadata.get(HASH_KEY),
                    Some(&serde_json::Value::String(want))
                );
            }
            _ => panic!("expected drop"),
        }
        assert_eq!(stage.stats().kind, "modifier");
        assert_eq!(stage.stats().dropped.get(REASON_DUPLICATE), Some(&1));

        // Without the flag: a filter, and no metadata even through Modifier.
        assert_eq!(
            ExactDedup::new(ExactDedupConfig::default())
                .into_stage("d")
                .stats()
                .kind,
            "filter"
        );
        let mut d = ExactDedup::new(ExactDedupConfig::default());
        let mut x = doc("1", "abc");
        assert_eq!(d.modify(&mut x), Verdict::Keep);
        assert!(x.metadata.extra.is_empty());
    }

    #[test]
    fn config_defaults_from_json() {
        let c: ExactDedupConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ExactDedupConfig::default());
        assert!(c.lowercase && c.strip_punctuation && c.collapse_whitespace && !c.annotate_hash);
        let c: ExactDedupConfig = serde_json::from_str(r#"{"annotate_hash": true}"#).unwrap();
        assert!(c.annotate_hash && c.lowercase);
        assert!(
            serde_json::from_str::<ExactDedupConfig>(r#"{"lowercase": true, "hash": 1}"#).is_err()
        );
        assert_eq!(c.clone().build().config(), &c);
    }
}

//! [`GopherQualityFilter`]: Gopher's document quality rules (Rae et al. 2021,
//! section A.1.1), a port of datatrove's `GopherQualityFilter`.
//!
//! Words are datatrove's English word tokens ([`crate::text::WordTokenizer`]);
//! "non-symbol" words are those with at least one character outside
//! datatrove's `PUNCTUATION_SET`. Lines are Python `str.splitlines()`. The
//! checks run in datatrove's order; the first failing one gives the reason,
//! and the reason names are datatrove's, under the `gopher_quality:` prefix.
//! As in datatrove, a threshold of 0 disables its check.

use refinery_corpus::{Document, Filter, Verdict};
use serde::{Deserialize, Serialize};

use crate::gopher_repetition::{check_frac, check_non_negative};
use crate::text::{is_dt_punctuation, is_py_alpha, is_py_space, py_lines, WordTokenizer};
use crate::ConfigError;

/// Drop reason: fewer non-symbol words than `min_doc_words`.
pub const REASON_SHORT_DOC: &str = "gopher_quality:gopher_short_doc";
/// Drop reason: more non-symbol words than `max_doc_words`.
pub const REASON_LONG_DOC: &str = "gopher_quality:gopher_long_doc";
/// Drop reason: mean non-symbol word length below `min_avg_word_length`.
pub const REASON_BELOW_AVG: &str = "gopher_quality:gopher_below_avg_threshold";
/// Drop reason: mean non-symbol word length above `max_avg_word_length`.
pub const REASON_ABOVE_AVG: &str = "gopher_quality:gopher_above_avg_threshold";
/// Drop reason: `#` per word above `max_symbol_word_ratio`.
pub const REASON_TOO_MANY_HASHES: &str = "gopher_quality:gopher_too_many_hashes";
/// Drop reason: `...`/`…` per word above `max_symbol_word_ratio`.
pub const REASON_TOO_MANY_ELLIPSIS: &str = "gopher_quality:gopher_too_many_ellipsis";
/// Drop reason: share of lines starting with `•` or `-` above `max_bullet_lines_ratio`.
pub const REASON_TOO_MANY_BULLETS: &str = "gopher_quality:gopher_too_many_bullets";
/// Drop reason: share of lines ending with `...`/`…` above `max_ellipsis_lines_ratio`.
pub const REASON_TOO_MANY_END_ELLIPSIS: &str = "gopher_quality:gopher_too_many_end_ellipsis";
/// Drop reason: share of words with an alphabetic character below `max_non_alpha_words_ratio`.
pub const REASON_BELOW_ALPHA: &str = "gopher_quality:gopher_below_alpha_threshold";
/// Drop reason: fewer distinct stop words than `min_stop_words`.
pub const REASON_STOP_WORDS: &str = "gopher_quality:gopher_enough_stop_words";

/// Configuration of [`GopherQualityFilter`]; defaults are Gopher's (and
/// datatrove's). 0 disables a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherQualityConfig {
    /// Minimum number of non-symbol words. Default 50.
    pub min_doc_words: u64,
    /// Maximum number of non-symbol words. Default 100,000.
    pub max_doc_words: u64,
    /// Minimum mean length of non-symbol words, in characters. Default 3.
    pub min_avg_word_length: f64,
    /// Maximum mean length of non-symbol words. Default 10.
    pub max_avg_word_length: f64,
    /// Maximum count of `#`, and separately of `...` plus `…`, per word. Default 0.1.
    pub max_symbol_word_ratio: f64,
    /// Maximum share of lines starting (after whitespace) with `•` or `-`. Default 0.9.
    pub max_bullet_lines_ratio: f64,
    /// Maximum share of lines ending (before whitespace) with `...` or `…`. Default 0.3.
    pub max_ellipsis_lines_ratio: f64,
    /// *Minimum* share of words containing an alphabetic character (the
    /// name is datatrove's). Default 0.8.
    pub max_non_alpha_words_ratio: f64,
    /// Minimum number of distinct stop words present. Default 2.
    pub min_stop_words: u64,
    /// The stop words, matched case-sensitively against whole tokens.
    /// Default: the, be, to, of, and, that, have, with.
    pub stop_words: Vec<String>,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            min_doc_words: 50,
            max_doc_words: 100_000,
            min_avg_word_length: 3.0,
            max_avg_word_length: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            max_non_alpha_words_ratio: 0.8,
            min_stop_words: 2,
            stop_words: ["the", "be", "to", "of", "and", "that", "have", "with"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl GopherQualityConfig {
    /// Checks the config and builds the filter: line and word shares in
    /// [0, 1], lengths and the symbol ratio ≥ 0, each minimum at most its
    /// maximum (when both are set).
    pub fn validate(mut self) -> Result<GopherQualityFilter, ConfigError> {
        for (f, v) in [
            ("min_avg_word_length", self.min_avg_word_length),
            ("max_avg_word_length", self.max_avg_word_length),
            ("max_symbol_word_ratio", self.max_symbol_word_ratio),
        ] {
            check_non_negative(f, v)?;
        }
        for (f, v) in [
            ("max_bullet_lines_ratio", self.max_bullet_lines_ratio),
            ("max_ellipsis_lines_ratio", self.max_ellipsis_lines_ratio),
            ("max_non_alpha_words_ratio", self.max_non_alpha_words_ratio),
        ] {
            check_frac(f, v)?;
        }
        if self.max_doc_words != 0 && self.min_doc_words > self.max_doc_words {
            return Err(ConfigError::new(
                "min_doc_words",
                format!(
                    "min_doc_words ({}) is greater than max_doc_words ({})",
                    self.min_doc_words, self.max_doc_words
                ),
            ));
        }
        if self.max_avg_word_length != 0.0 && self.min_avg_word_length > self.max_avg_word_length {
            return Err(ConfigError::new(
                "min_avg_word_length",
                "min_avg_word_length is greater than max_avg_word_length",
            ));
        }
        self.stop_words.sort();
        self.stop_words.dedup();
        let max_stop_len = self.stop_words.iter().map(String::len).max().unwrap_or(0);
        Ok(GopherQualityFilter {
            found: vec![false; self.stop_words.len()],
            max_stop_len,
            config: self,
            tokenizer: WordTokenizer::new(),
        })
    }
}

/// Drops documents that fail Gopher's quality heuristics (see the module docs).
#[derive(Debug)]
pub struct GopherQualityFilter {
    config: GopherQualityConfig,
    tokenizer: WordTokenizer,
    found: Vec<bool>,
    max_stop_len: usize,
}

/// Word statistics gathered in one pass over the tokens.
#[derive(Default)]
struct Stats {
    words: u64,
    non_symbol: u64,
    non_symbol_chars: u64,
    alpha: u64,
    stop_found: u64,
}

impl GopherQualityFilter {
    /// Same as [`GopherQualityConfig::validate`].
    pub fn new(config: GopherQualityConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &GopherQualityConfig {
        &self.config
    }

    fn check(&mut self, text: &str) -> Option<&'static str> {
        let c = &self.config;
        let mut st = Stats::default();
        self.found.iter_mut().for_each(|f| *f = false);
        let (found, stop_words, max_stop_len) = (&mut self.found, &c.stop_words, self.max_stop_len);
        self.tokenizer.tokenize(text, |w, ws| {
            if ws {
                return;
            }
            st.words += 1;
            let (mut chars, mut non_symbol, mut alpha) = (0u64, false, false);
            for ch in w.chars() {
                chars += 1;
                if !non_symbol && !is_dt_punctuation(ch) {
                    non_symbol = true;
                }
                if !alpha && is_py_alpha(ch) {
                    alpha = true;
                }
            }
            if non_symbol {
                st.non_symbol += 1;
                st.non_symbol_chars += chars;
            }
            if alpha {
                st.alpha += 1;
            }
            if w.len() <= max_stop_len {
                if let Ok(i) = stop_words.binary_search_by(|s| s.as_str().cmp(w)) {
                    if !found[i] {
                        found[i] = true;
                        st.stop_found += 1;
                    }
                }
            }
        });
        if c.min_doc_words != 0 && st.non_symbol < c.min_doc_words {
            return Some(REASON_SHORT_DOC);
        }
        if c.max_doc_words != 0 && st.non_symbol > c.max_doc_words {
            return Some(REASON_LONG_DOC);
        }
        if st.non_symbol > 0 {
            let avg = st.non_symbol_chars as f64 / st.non_symbol as f64;
            if c.min_avg_word_length != 0.0 && avg < c.min_avg_word_length {
                return Some(REASON_BELOW_AVG);
            }
            if c.max_avg_word_length != 0.0 && avg > c.max_avg_word_length {
                return Some(REASON_ABOVE_AVG);
            }
        }
        // datatrove divides by the word count; with no words (only possible
        // with min_doc_words = 0) the ratio checks are skipped.
        if st.words > 0 {
            let n = st.words as f64;
            if c.max_symbol_word_ratio != 0.0 {
                let hashes = memchr::memchr_iter(b'#', text.as_bytes()).count();
                if hashes as f64 / n > c.max_symbol_word_ratio {
                    return Some(REASON_TOO_MANY_HASHES);
                }
                let ell = text.matches("...").count() + text.matches('…').count();
                if ell as f64 / n > c.max_symbol_word_ratio {
                    return Some(REASON_TOO_MANY_ELLIPSIS);
                }
            }
            if c.max_bullet_lines_ratio != 0.0 || c.max_ellipsis_lines_ratio != 0.0 {
                let (mut lines, mut bullets, mut ellipsis) = (0u64, 0u64, 0u64);
                for line in py_lines(text) {
                    lines += 1;
                    let l = line.trim_start_matches(is_py_space);
                    if l.starts_with('•') || l.starts_with('-') {
                        bullets += 1;
                    }
                    let r = line.trim_end_matches(is_py_space);
                    if r.ends_with("...") || r.ends_with('…') {
                        ellipsis += 1;
                    }
                }
                if lines > 0 {
                    let l = lines as f64;
                    if c.max_bullet_lines_ratio != 0.0
                        && bullets as f64 / l > c.max_bullet_lines_ratio
                    {
                        return Some(REASON_TOO_MANY_BULLETS);
                    }
                    if c.max_ellipsis_lines_ratio != 0.0
                        && ellipsis as f64 / l > c.max_ellipsis_lines_ratio
                    {
                        return Some(REASON_TOO_MANY_END_ELLIPSIS);
                    }
                }
            }
            if c.max_non_alpha_words_ratio != 0.0
                && (st.alpha as f64 / n) < c.max_non_alpha_words_ratio
            {
                return Some(REASON_BELOW_ALPHA);
            }
        }
        if c.min_stop_words != 0 && st.stop_found < c.min_stop_words {
            return Some(REASON_STOP_WORDS);
        }
        None
    }
}

impl Filter for GopherQualityFilter {
    fn filter(&mut self, doc: &Document) -> Verdict {
        match self.check(&doc.text) {
            Some(r) => Verdict::drop(r),
            None => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Verdict {
        GopherQualityConfig::default()
            .validate()
            .unwrap()
            .filter(&Document::new("1", text, "mem"))
    }

    /// A clean paragraph of `n` words that passes every rule.
    fn good(n: usize) -> String {
        let base = [
            "the", "house", "with", "garden", "and", "river", "stands", "near",
        ];
        (0..n)
            .map(|i| base[i % base.len()])
            .collect::<Vec<_>>()
            .join(" ")
            + "."
    }

    #[test]
    fn keeps_good_text() {
        assert_eq!(check(&good(60)), Verdict::Keep);
    }

    #[test]
    fn short_and_long() {
        assert_eq!(REASON_SHORT_DOC, "gopher_quality:gopher_short_doc");
        assert_eq!(check(&good(40)), Verdict::drop(REASON_SHORT_DOC));
        // Punctuation-only tokens do not count as words.
        assert_eq!(
            check(&format!("{} {}", good(45), ", ; : ! ?".repeat(5))),
            Verdict::drop(REASON_SHORT_DOC)
        );
        assert_eq!(REASON_LONG_DOC, "gopher_quality:gopher_long_doc");
        let mut f = GopherQualityConfig {
            max_doc_words: 55,
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            f.filter(&Document::new("1", good(60), "m")),
            Verdict::drop(REASON_LONG_DOC)
        );
    }

    #[test]
    fn mean_word_length() {
        assert_eq!(
            REASON_BELOW_AVG,
            "gopher_quality:gopher_below_avg_threshold"
        );
        assert_eq!(
            check(&format!("{} {}", good(8), "a b c d ".repeat(20))),
            Verdict::drop(REASON_BELOW_AVG)
        );
        assert_eq!(
            REASON_ABOVE_AVG,
            "gopher_quality:gopher_above_avg_threshold"
        );
        assert_eq!(
            check(&format!("{} {}", good(8), "extraordinarily ".repeat(60))),
            Verdict::drop(REASON_ABOVE_AVG)
        );
    }

    #[test]
    fn hashes_and_ellipsis() {
        assert_eq!(
            REASON_TOO_MANY_HASHES,
            "gopher_quality:gopher_too_many_hashes"
        );
        assert_eq!(
            check(&format!("{} {}", good(60), "#tag ".repeat(10))),
            Verdict::drop(REASON_TOO_MANY_HASHES)
        );
        assert_eq!(
            REASON_TOO_MANY_ELLIPSIS,
            "gopher_quality:gopher_too_many_ellipsis"
        );
        assert_eq!(
            check(&format!("{} {}", good(60), "so… ".repeat(10))),
            Verdict::drop(REASON_TOO_MANY_ELLIPSIS)
        );
    }

    #[test]
    fn bullets_and_end_ellipsis() {
        assert_eq!(
            REASON_TOO_MANY_BULLETS,
            "gopher_quality:gopher_too_many_bullets"
        );
        let t: String = (0..12).map(|_| format!("- {}\n", good(6))).collect();
        assert_eq!(check(&t), Verdict::drop(REASON_TOO_MANY_BULLETS));
        assert_eq!(
            REASON_TOO_MANY_END_ELLIPSIS,
            "gopher_quality:gopher_too_many_end_ellipsis"
        );
        let t: String = (0..12)
            .map(|i| {
                if i % 2 == 0 {
                    format!("{}\n", good(8))
                } else {
                    "and then…\n".into()
                }
            })
            .collect();
        assert_eq!(check(&t), Verdict::drop(REASON_TOO_MANY_END_ELLIPSIS));
    }

    #[test]
    fn alpha_ratio() {
        assert_eq!(
            REASON_BELOW_ALPHA,
            "gopher_quality:gopher_below_alpha_threshold"
        );
        assert_eq!(
            check(&format!("{} {}", good(60), "1234 ".repeat(20))),
            Verdict::drop(REASON_BELOW_ALPHA)
        );
    }

    #[test]
    fn stop_words() {
        assert_eq!(REASON_STOP_WORDS, "gopher_quality:gopher_enough_stop_words");
        let t = "house garden river stands near ".repeat(12);
        assert_eq!(check(&t), Verdict::drop(REASON_STOP_WORDS));
        // Case-sensitive, like datatrove.
        let t = format!("{} The With", "house garden river stands near ".repeat(12));
        assert_eq!(check(&t), Verdict::drop(REASON_STOP_WORDS));
    }

    #[test]
    fn config() {
        let c: GopherQualityConfig =
            serde_json::from_str(r#"{"min_doc_words": 10, "stop_words": ["a"]}"#).unwrap();
        assert_eq!(c.min_doc_words, 10);
        assert!(serde_json::from_str::<GopherQualityConfig>(r#"{"min_words": 1}"#).is_err());
        let e = GopherQualityConfig {
            min_doc_words: 10,
            max_doc_words: 5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "min_doc_words");
        let e = GopherQualityConfig {
            max_symbol_word_ratio: f64::NAN,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "max_symbol_word_ratio");
        // No words, no panic.
        let mut f = GopherQualityConfig {
            min_doc_words: 0,
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            f.filter(&Document::new("1", "", "m")),
            Verdict::drop(REASON_STOP_WORDS)
        );
    }
}

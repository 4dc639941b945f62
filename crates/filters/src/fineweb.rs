//! [`FineWebQualityFilter`]: FineWeb's line heuristics (Penedo et al. 2024),
//! a port of datatrove's `FineWebQualityFilter`.
//!
//! Lines are `text.split("\n")` without those that are blank after
//! `strip()`. In order: too few lines ending in terminal punctuation
//! (`line_punct_ratio`), too many short lines (`short_line_ratio`), too many
//! characters in repeated lines (`char_dup_ratio`, over the characters of the
//! text without its newlines), too many newlines per word (`list_ratio`).
//!
//! `char_duplicates_ratio` defaults to 0.01, datatrove's default and the
//! FineWeb paper's Table 2. The summary table in the FineWeb blog post (and
//! some reproductions) say 0.1; set it to 0.1 for those.

use refinery_corpus::{Document, Filter, Verdict};
use serde::{Deserialize, Serialize};

use crate::gopher_repetition::{check_frac, check_non_negative, find_duplicates, HashSet64};
use crate::text::{is_terminal_punctuation, py_strip, WordTokenizer};
use crate::ConfigError;

/// Drop reason: no non-blank line.
pub const REASON_FW_EMPTY: &str = "fineweb:empty";
/// Drop reason: share of lines ending in terminal punctuation below `line_punct_thr`.
pub const REASON_LINE_PUNCT_RATIO: &str = "fineweb:line_punct_ratio";
/// Drop reason: share of lines of at most `short_line_length` chars above `short_line_thr`.
pub const REASON_SHORT_LINE_RATIO: &str = "fineweb:short_line_ratio";
/// Drop reason: share of characters in repeated lines above `char_duplicates_ratio`.
pub const REASON_CHAR_DUP_RATIO: &str = "fineweb:char_dup_ratio";
/// Drop reason: newlines per word above `new_line_ratio`.
pub const REASON_LIST_RATIO: &str = "fineweb:list_ratio";

/// Configuration of [`FineWebQualityFilter`]; defaults are datatrove's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineWebQualityConfig {
    /// Minimum share of lines ending in a stop char. Default 0.12.
    pub line_punct_thr: f64,
    /// Do not drop when *no* line ends in a stop char. Default false.
    pub line_punct_exclude_zero: bool,
    /// The stop chars, as one string; default: datatrove's `TERMINAL_PUNCTUATION`.
    pub stop_chars: Option<String>,
    /// Maximum share of short lines. Default 0.67.
    pub short_line_thr: f64,
    /// A line of at most this many characters is short. Default 30.
    pub short_line_length: usize,
    /// Maximum share of characters in repeated lines. Default 0.01 (see the module docs).
    pub char_duplicates_ratio: f64,
    /// Maximum newlines per word. Default 0.3.
    pub new_line_ratio: f64,
}

impl Default for FineWebQualityConfig {
    fn default() -> Self {
        FineWebQualityConfig {
            line_punct_thr: 0.12,
            line_punct_exclude_zero: false,
            stop_chars: None,
            short_line_thr: 0.67,
            short_line_length: 30,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
        }
    }
}

impl FineWebQualityConfig {
    /// Checks the config and builds the filter: line and character shares in
    /// [0, 1], `new_line_ratio` (newlines per word) ≥ 0, `stop_chars` not
    /// empty when given.
    pub fn validate(self) -> Result<FineWebQualityFilter, ConfigError> {
        check_frac("line_punct_thr", self.line_punct_thr)?;
        check_frac("short_line_thr", self.short_line_thr)?;
        check_frac("char_duplicates_ratio", self.char_duplicates_ratio)?;
        check_non_negative("new_line_ratio", self.new_line_ratio)?;
        let stop_chars = match &self.stop_chars {
            Some(s) if s.is_empty() => {
                return Err(ConfigError::new("stop_chars", "must not be empty"));
            }
            Some(s) => {
                let mut v: Vec<char> = s.chars().collect();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
            None => None,
        };
        Ok(FineWebQualityFilter {
            config: self,
            stop_chars,
            tokenizer: WordTokenizer::new(),
            seen: HashSet64::default(),
        })
    }
}

/// Drops documents by FineWeb's line heuristics (see the module docs).
#[derive(Debug)]
pub struct FineWebQualityFilter {
    config: FineWebQualityConfig,
    stop_chars: Option<Vec<char>>,
    tokenizer: WordTokenizer,
    seen: HashSet64,
}

impl FineWebQualityFilter {
    /// Same as [`FineWebQualityConfig::validate`].
    pub fn new(config: FineWebQualityConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &FineWebQualityConfig {
        &self.config
    }

    fn check(&mut self, text: &str) -> Option<&'static str> {
        let c = &self.config;
        let lines = || text.split('\n').filter(|l| !py_strip(l).is_empty());
        let (mut n, mut punct, mut short) = (0usize, 0usize, 0usize);
        for l in lines() {
            n += 1;
            let end = l.chars().next_back();
            let is_stop = match &self.stop_chars {
                Some(s) => end.is_some_and(|e| s.binary_search(&e).is_ok()),
                None => end.is_some_and(is_terminal_punctuation),
            };
            punct += usize::from(is_stop);
            // Byte length bounds the char length from above.
            if l.len() <= c.short_line_length || l.chars().count() <= c.short_line_length {
                short += 1;
            }
        }
        if n == 0 {
            return Some(REASON_FW_EMPTY);
        }
        let ratio = punct as f64 / n as f64;
        if ratio < c.line_punct_thr && !(ratio == 0.0 && c.line_punct_exclude_zero) {
            return Some(REASON_LINE_PUNCT_RATIO);
        }
        if short as f64 / n as f64 > c.short_line_thr {
            return Some(REASON_SHORT_LINE_RATIO);
        }
        let (_, _, dup_chars) = find_duplicates(lines(), &mut self.seen);
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let chars = text.chars().count() - newlines;
        if dup_chars as f64 / chars as f64 > c.char_duplicates_ratio {
            return Some(REASON_CHAR_DUP_RATIO);
        }
        let mut words = 0usize;
        self.tokenizer
            .tokenize(text, |_, ws| words += usize::from(!ws));
        if words > 0 && newlines as f64 / words as f64 > c.new_line_ratio {
            return Some(REASON_LIST_RATIO);
        }
        None
    }
}

impl Filter for FineWebQualityFilter {
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
        FineWebQualityConfig::default()
            .validate()
            .unwrap()
            .filter(&Document::new("1", text, "mem"))
    }

    fn sentence(i: usize) -> String {
        format!("This is the long and proper sentence number {i} of the page.")
    }

    fn good() -> String {
        (0..5).map(sentence).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn keeps_good_text() {
        assert_eq!(check(&good()), Verdict::Keep);
    }

    #[test]
    fn empty() {
        assert_eq!(REASON_FW_EMPTY, "fineweb:empty");
        assert_eq!(check(" \n\t\n"), Verdict::drop(REASON_FW_EMPTY));
    }

    #[test]
    fn line_punct_ratio() {
        assert_eq!(REASON_LINE_PUNCT_RATIO, "fineweb:line_punct_ratio");
        let t: String = (0..10)
            .map(|i| format!("a long line without any final stop mark {i}\n"))
            .collect();
        assert_eq!(check(&t), Verdict::drop(REASON_LINE_PUNCT_RATIO));
        let mut c = FineWebQualityConfig {
            line_punct_exclude_zero: true,
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_ne!(
            c.filter(&Document::new("1", t, "m")),
            Verdict::drop(REASON_LINE_PUNCT_RATIO)
        );
    }

    #[test]
    fn short_line_ratio() {
        assert_eq!(REASON_SHORT_LINE_RATIO, "fineweb:short_line_ratio");
        let t = format!("{}\nshort one.\nshort two.\nshort three.", sentence(1));
        assert_eq!(check(&t), Verdict::drop(REASON_SHORT_LINE_RATIO));
    }

    #[test]
    fn char_dup_ratio() {
        assert_eq!(REASON_CHAR_DUP_RATIO, "fineweb:char_dup_ratio");
        let t = format!("{}\n{}", good(), sentence(0));
        assert_eq!(check(&t), Verdict::drop(REASON_CHAR_DUP_RATIO));
    }

    #[test]
    fn list_ratio() {
        assert_eq!(REASON_LIST_RATIO, "fineweb:list_ratio");
        let t = format!(
            "{}\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n{}",
            sentence(1),
            sentence(2)
        );
        assert_eq!(check(&t), Verdict::drop(REASON_LIST_RATIO));
    }

    #[test]
    fn config() {
        let c: FineWebQualityConfig =
            serde_json::from_str(r#"{"char_duplicates_ratio": 0.1, "stop_chars": ".!"}"#).unwrap();
        assert_eq!(c.char_duplicates_ratio, 0.1);
        assert!(c.clone().validate().is_ok());
        assert!(serde_json::from_str::<FineWebQualityConfig>(r#"{"x": 1}"#).is_err());
        let e = FineWebQualityConfig {
            stop_chars: Some(String::new()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "stop_chars");
    }
}

//! [`LengthFilter`]: bounds on a document's length in characters and words.

use refinery_corpus::{Document, Filter, Verdict};
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Drop reason: fewer Unicode scalar values than `min_chars`.
pub const REASON_TOO_FEW_CHARS: &str = "length:too_few_chars";
/// Drop reason: more Unicode scalar values than `max_chars`.
pub const REASON_TOO_MANY_CHARS: &str = "length:too_many_chars";
/// Drop reason: fewer whitespace-separated words than `min_words`.
pub const REASON_TOO_FEW_WORDS: &str = "length:too_few_words";
/// Drop reason: more whitespace-separated words than `max_words`.
pub const REASON_TOO_MANY_WORDS: &str = "length:too_many_words";

/// Configuration of [`LengthFilter`]. Every bound is inclusive and optional;
/// the default (all `None`) keeps everything.
///
/// * chars: Unicode scalar values (`str::chars`), not bytes nor graphemes;
/// * words: runs of non-whitespace separated by Unicode whitespace
///   (`str::split_whitespace`). Note that this counts a whole sentence of
///   Chinese or Japanese, which puts no spaces between words, as one word.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LengthConfig {
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
    pub min_words: Option<u64>,
    pub max_words: Option<u64>,
}

impl LengthConfig {
    /// Checks the config and builds the filter. Rejects a minimum above its
    /// maximum (`min_chars > max_chars`, `min_words > max_words`).
    pub fn validate(self) -> Result<LengthFilter, ConfigError> {
        if let (Some(min), Some(max)) = (self.min_chars, self.max_chars) {
            if min > max {
                return Err(ConfigError::new(
                    "min_chars",
                    format!("min_chars ({min}) is greater than max_chars ({max})"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.min_words, self.max_words) {
            if min > max {
                return Err(ConfigError::new(
                    "min_words",
                    format!("min_words ({min}) is greater than max_words ({max})"),
                ));
            }
        }
        Ok(LengthFilter { config: self })
    }
}

/// Drops documents outside the configured length bounds. Checks, in order:
/// too few chars, too many chars, too few words, too many words; the first
/// failing check gives the reason.
///
/// Counting stops as soon as the answer is known (one past the maximum, or
/// at the minimum when there is no maximum), so a bound-only check on a huge
/// document is cheap, and words are not counted at all unless a word bound
/// is set.
#[derive(Clone, Debug)]
pub struct LengthFilter {
    config: LengthConfig,
}

impl LengthFilter {
    /// Same as [`LengthConfig::validate`].
    pub fn new(config: LengthConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &LengthConfig {
        &self.config
    }
}

/// Counts the items of `iter`, stopping at `cap` (so the result is
/// `min(count, cap)`).
fn count_capped(iter: impl Iterator, cap: u64) -> u64 {
    let mut n = 0u64;
    for _ in iter {
        n += 1;
        if n >= cap {
            break;
        }
    }
    n
}

/// Checks `count` against `[min, max]`, counting only as far as needed.
fn check<I: Iterator>(
    iter: impl FnOnce() -> I,
    min: Option<u64>,
    max: Option<u64>,
    too_few: &'static str,
    too_many: &'static str,
) -> Option<&'static str> {
    // One past the maximum tells "too many"; otherwise reaching the minimum
    // is enough.
    let cap = match (min, max) {
        (None, None) => return None,
        (_, Some(max)) => max.saturating_add(1),
        (Some(min), None) => min,
    };
    let n = count_capped(iter(), cap);
    if min.is_some_and(|min| n < min) {
        Some(too_few)
    } else if max.is_some_and(|max| n > max) {
        Some(too_many)
    } else {
        None
    }
}

impl Filter for LengthFilter {
    fn filter(&mut self, doc: &Document) -> Verdict {
        let c = &self.config;
        let text = doc.text.as_str();
        let reason = check(
            || text.chars(),
            c.min_chars,
            c.max_chars,
            REASON_TOO_FEW_CHARS,
            REASON_TOO_MANY_CHARS,
        )
        .or_else(|| {
            check(
                || text.split_whitespace(),
                c.min_words,
                c.max_words,
                REASON_TOO_FEW_WORDS,
                REASON_TOO_MANY_WORDS,
            )
        });
        match reason {
            Some(r) => Verdict::drop(r),
            None => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: LengthConfig, text: &str) -> Verdict {
        c.validate()
            .unwrap()
            .filter(&Document::new("1", text, "mem"))
    }

    fn chars(min: Option<u64>, max: Option<u64>) -> LengthConfig {
        LengthConfig {
            min_chars: min,
            max_chars: max,
            ..Default::default()
        }
    }

    fn words(min: Option<u64>, max: Option<u64>) -> LengthConfig {
        LengthConfig {
            min_words: min,
            max_words: max,
            ..Default::default()
        }
    }

    #[test]
    fn too_few_chars() {
        assert_eq!(REASON_TOO_FEW_CHARS, "length:too_few_chars");
        assert_eq!(
            run(chars(Some(4), None), "abc"),
            Verdict::drop(REASON_TOO_FEW_CHARS)
        );
        assert_eq!(run(chars(Some(3), None), "abc"), Verdict::Keep);
        assert_eq!(
            run(chars(Some(1), None), ""),
            Verdict::drop(REASON_TOO_FEW_CHARS)
        );
    }

    #[test]
    fn too_many_chars() {
        assert_eq!(REASON_TOO_MANY_CHARS, "length:too_many_chars");
        assert_eq!(
            run(chars(None, Some(2)), "abc"),
            Verdict::drop(REASON_TOO_MANY_CHARS)
        );
        assert_eq!(run(chars(None, Some(3)), "abc"), Verdict::Keep);
        assert_eq!(run(chars(None, Some(0)), ""), Verdict::Keep);
        assert_eq!(run(chars(None, Some(u64::MAX)), "abc"), Verdict::Keep);
    }

    #[test]
    fn chars_are_unicode_scalars_not_bytes() {
        // 3 chars, 9 bytes.
        assert_eq!(run(chars(Some(3), Some(3)), "日本語"), Verdict::Keep);
        // é as e + combining acute: 2 scalars.
        assert_eq!(run(chars(Some(2), Some(2)), "e\u{301}"), Verdict::Keep);
    }

    #[test]
    fn too_few_words() {
        assert_eq!(REASON_TOO_FEW_WORDS, "length:too_few_words");
        assert_eq!(
            run(words(Some(3), None), "one two"),
            Verdict::drop(REASON_TOO_FEW_WORDS)
        );
        assert_eq!(
            run(words(Some(3), None), "  one\ttwo\n\nthree  "),
            Verdict::Keep
        );
        assert_eq!(
            run(words(Some(1), None), " \n\t "),
            Verdict::drop(REASON_TOO_FEW_WORDS)
        );
    }

    #[test]
    fn too_many_words() {
        assert_eq!(REASON_TOO_MANY_WORDS, "length:too_many_words");
        assert_eq!(
            run(words(None, Some(2)), "a b c"),
            Verdict::drop(REASON_TOO_MANY_WORDS)
        );
        assert_eq!(run(words(None, Some(3)), "a b c"), Verdict::Keep);
        // Unicode White_Space, not just ASCII: ideographic space, no-break space.
        assert_eq!(
            run(words(None, Some(1)), "a\u{3000}b"),
            Verdict::drop(REASON_TOO_MANY_WORDS)
        );
        assert_eq!(
            run(words(None, Some(1)), "a\u{a0}b"),
            Verdict::drop(REASON_TOO_MANY_WORDS)
        );
    }

    #[test]
    fn char_checks_come_before_word_checks() {
        let c = LengthConfig {
            min_chars: Some(10),
            min_words: Some(5),
            ..Default::default()
        };
        assert_eq!(run(c, "a b"), Verdict::drop(REASON_TOO_FEW_CHARS));
    }

    #[test]
    fn default_keeps_everything() {
        for t in ["", "a", &"word ".repeat(10_000)] {
            assert_eq!(run(LengthConfig::default(), t), Verdict::Keep);
        }
    }

    #[test]
    fn config_from_json_and_validation() {
        let c: LengthConfig =
            serde_json::from_str(r#"{"min_words": 50, "max_chars": 100000}"#).unwrap();
        assert_eq!(
            c,
            LengthConfig {
                min_words: Some(50),
                max_chars: Some(100_000),
                ..Default::default()
            }
        );
        assert_eq!(
            serde_json::from_str::<LengthConfig>("{}").unwrap(),
            LengthConfig::default()
        );
        assert!(serde_json::from_str::<LengthConfig>(r#"{"min_word": 5}"#).is_err());
        assert!(serde_json::from_str::<LengthConfig>(r#"{"min_words": -5}"#).is_err());

        let e = chars(Some(5), Some(4)).validate().unwrap_err();
        assert_eq!(e.field, "min_chars");
        assert!(e.to_string().contains("max_chars (4)"), "{e}");
        let e = words(Some(5), Some(4)).validate().unwrap_err();
        assert_eq!(e.field, "min_words");
        assert!(chars(Some(4), Some(4)).validate().is_ok());
    }
}

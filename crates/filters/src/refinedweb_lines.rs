//! [`RefinedWebLines`]: RefinedWeb's line-wise corrections (Penedo et al.
//! 2023, section G.2 / Table 12), as reproduced by DCLM's
//! `baselines_configs/refinedweb.yaml` mappers.
//!
//! Lines are `text.split("\n")`; words are whitespace-separated. Each line
//! goes through these rules, in DCLM's mapper order:
//!
//! 1. removed if more than `max_uppercase_ratio` of its characters are
//!    uppercase (`uppercase_ratio_line_modifier`, over all characters of the
//!    stripped line);
//! 2. removed if numeric-only: every non-space character is a digit or one of
//!    `. , + - % / :`, with at least one digit (`numeric_line_modifier`);
//! 3. removed if a counter such as "12 likes" or "1.2K views"
//!    (`counter_line_modifier`: optional non-word characters, a number
//!    with `,`/`.` and an optional K/M/B, spaces, one of
//!    [`COUNTER_WORDS`], optional non-word characters; case-insensitive);
//! 4. removed if it has fewer than `min_words_per_line` words (≤ 1 word);
//! 5. on lines of at most `max_words_for_substrings` words: removed if it
//!    contains one of `remove_lines_containing` ("items in cart"); a
//!    `strip_suffixes` suffix ("Read more…") or a `strip_prefixes` prefix
//!    ("Sign-in") is cut off, and the line removed if nothing is left.
//!    Matching is case-insensitive (ASCII).
//!
//! Blank lines are kept (they hold no words, so removing them would not
//! count). Finally, if more than `max_removed_ratio` of the document's words
//! were removed, the document is dropped (`refinedweb_lines:too_many_removed`);
//! otherwise the text is the kept lines joined by `\n`.

use refinery_corpus::{Document, Modifier, Verdict};
use serde::{Deserialize, Serialize};

use crate::gopher_repetition::check_frac;
use crate::text::{is_py_space, py_strip};
use crate::ConfigError;

/// Drop reason: more than `max_removed_ratio` of the words were removed.
pub const REASON_TOO_MANY_REMOVED: &str = "refinedweb_lines:too_many_removed";

/// The counter nouns of rule 3.
pub const COUNTER_WORDS: &[&str] = &[
    "likes",
    "like",
    "shares",
    "share",
    "comments",
    "comment",
    "retweets",
    "retweet",
    "reposts",
    "repost",
    "quotes",
    "quote",
    "bookmarks",
    "bookmark",
    "upvotes",
    "upvote",
    "downvotes",
    "downvote",
    "downloads",
    "download",
    "views",
    "view",
    "followers",
    "follower",
    "replies",
    "reply",
    "votes",
    "vote",
];

/// Configuration of [`RefinedWebLines`]; defaults follow RefinedWeb / DCLM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefinedWebLinesConfig {
    /// Remove lines with a larger share of uppercase characters; 0 disables. Default 0.5.
    pub max_uppercase_ratio: f64,
    /// Remove numeric-only lines. Default true.
    pub remove_numeric_lines: bool,
    /// Remove counter lines ("12 likes"). Default true.
    pub remove_counter_lines: bool,
    /// Remove lines with fewer words; 0 disables. Default 2.
    pub min_words_per_line: usize,
    /// The substring rules apply only to lines with at most this many words. Default 10.
    pub max_words_for_substrings: usize,
    /// Remove such short lines containing any of these. Default `["items in cart"]`.
    pub remove_lines_containing: Vec<String>,
    /// Cut these suffixes off short lines. Default `["read more...", "read more…", "read more"]`.
    pub strip_suffixes: Vec<String>,
    /// Cut these prefixes off short lines. Default `["sign-in", "sign in"]`.
    pub strip_prefixes: Vec<String>,
    /// Drop the document when a larger share of its words was removed. Default 0.05.
    pub max_removed_ratio: f64,
}

impl Default for RefinedWebLinesConfig {
    fn default() -> Self {
        RefinedWebLinesConfig {
            max_uppercase_ratio: 0.5,
            remove_numeric_lines: true,
            remove_counter_lines: true,
            min_words_per_line: 2,
            max_words_for_substrings: 10,
            remove_lines_containing: vec!["items in cart".into()],
            strip_suffixes: ["read more...", "read more…", "read more"]
                .map(String::from)
                .to_vec(),
            strip_prefixes: ["sign-in", "sign in"].map(String::from).to_vec(),
            max_removed_ratio: 0.05,
        }
    }
}

impl RefinedWebLinesConfig {
    /// Checks the config and builds the stage: ratios in [0, 1], patterns
    /// non-empty (they are lowercased).
    pub fn validate(mut self) -> Result<RefinedWebLines, ConfigError> {
        check_frac("max_uppercase_ratio", self.max_uppercase_ratio)?;
        check_frac("max_removed_ratio", self.max_removed_ratio)?;
        for (field, list) in [
            ("remove_lines_containing", &mut self.remove_lines_containing),
            ("strip_suffixes", &mut self.strip_suffixes),
            ("strip_prefixes", &mut self.strip_prefixes),
        ] {
            for p in list.iter_mut() {
                if p.is_empty() {
                    return Err(ConfigError::new(field, "patterns must not be empty"));
                }
                *p = p.to_lowercase();
            }
        }
        Ok(RefinedWebLines {
            config: self,
            out: String::new(),
        })
    }
}

/// Removes boilerplate lines and drops documents that lose too much (see the module docs).
#[derive(Debug)]
pub struct RefinedWebLines {
    config: RefinedWebLinesConfig,
    out: String,
}

fn words(s: &str) -> usize {
    s.split(is_py_space).filter(|w| !w.is_empty()).count()
}

fn is_numeric_line(s: &str) -> bool {
    let mut digit = false;
    for c in s.chars() {
        if c.is_numeric() {
            digit = true;
        } else if !(is_py_space(c) || matches!(c, '.' | ',' | '+' | '-' | '%' | '/' | ':')) {
            return false;
        }
    }
    digit
}

fn is_counter_line(s: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let s = s.trim_start_matches(|c: char| !word(c));
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !first.is_ascii_digit() {
        return false;
    }
    let rest = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == ',' || c == '.');
    let rest = rest
        .strip_prefix(['K', 'k', 'M', 'm', 'B', 'b'])
        .unwrap_or(rest);
    let after = rest.trim_start_matches(is_py_space);
    if after.len() == rest.len() {
        return false;
    }
    let noun_end = after.find(|c: char| !word(c)).unwrap_or(after.len());
    let (noun, tail) = after.split_at(noun_end);
    COUNTER_WORDS.iter().any(|w| noun.eq_ignore_ascii_case(w)) && tail.chars().all(|c| !word(c))
}

fn ci_ends_with(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].to_lowercase() == suffix
}

fn ci_starts_with(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].to_lowercase() == prefix
}

impl RefinedWebLines {
    /// Same as [`RefinedWebLinesConfig::validate`].
    pub fn new(config: RefinedWebLinesConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &RefinedWebLinesConfig {
        &self.config
    }

    /// Returns (words before, words removed), filling `self.out`.
    fn run(&mut self, text: &str) -> (usize, usize) {
        let c = &self.config;
        self.out.clear();
        let (mut total, mut removed) = (0usize, 0usize);
        let mut first = true;
        for line in text.split('\n') {
            let stripped = py_strip(line);
            let n = words(stripped);
            total += n;
            let mut keep: Option<&str> = Some(line);
            if n > 0 {
                let (mut upper, mut chars) = (0usize, 0usize);
                for ch in stripped.chars() {
                    chars += 1;
                    upper += usize::from(ch.is_uppercase());
                }
                if (c.max_uppercase_ratio != 0.0
                    && upper as f64 / chars as f64 > c.max_uppercase_ratio)
                    || (c.remove_numeric_lines && is_numeric_line(stripped))
                    || (c.remove_counter_lines && is_counter_line(stripped))
                    || n < c.min_words_per_line
                {
                    keep = None;
                } else if n <= c.max_words_for_substrings {
                    let lower = stripped.to_lowercase();
                    if c.remove_lines_containing
                        .iter()
                        .any(|p| lower.contains(p.as_str()))
                    {
                        keep = None;
                    } else {
                        let mut s = stripped;
                        if let Some(p) = c.strip_suffixes.iter().find(|p| ci_ends_with(s, p)) {
                            s = py_strip(&s[..s.len() - p.len()]);
                        }
                        if let Some(p) = c.strip_prefixes.iter().find(|p| ci_starts_with(s, p)) {
                            s = py_strip(&s[p.len()..]);
                        }
                        if s.len() != stripped.len() {
                            let left = words(s);
                            removed += n - left;
                            // The cut words are counted; an emptied line goes.
                            if !s.is_empty() {
                                push_line(&mut self.out, &mut first, s);
                            }
                            continue;
                        }
                    }
                }
            }
            match keep {
                Some(l) => push_line(&mut self.out, &mut first, l),
                None => removed += n,
            }
        }
        (total, removed)
    }
}

fn push_line(out: &mut String, first: &mut bool, line: &str) {
    if !*first {
        out.push('\n');
    }
    *first = false;
    out.push_str(line);
}

impl Modifier for RefinedWebLines {
    fn modify(&mut self, doc: &mut Document) -> Verdict {
        let (total, removed) = self.run(&doc.text);
        if total > 0 && removed as f64 / total as f64 > self.config.max_removed_ratio {
            return Verdict::drop(REASON_TOO_MANY_REMOVED);
        }
        std::mem::swap(&mut doc.text, &mut self.out);
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> String {
        (0..10)
            .map(|i| format!("This is a normal line of prose with enough words, number {i}."))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn run(cfg: RefinedWebLinesConfig, text: &str) -> (Verdict, String) {
        let mut m = cfg.validate().unwrap();
        let mut d = Document::new("1", text, "mem");
        let v = m.modify(&mut d);
        (v, d.text)
    }

    fn removes(extra: &str) {
        let t = format!("{}\n{extra}", body());
        assert_eq!(
            run(Default::default(), &t),
            (Verdict::Keep, body()),
            "{extra:?}"
        );
    }

    #[test]
    fn line_rules() {
        removes("THIS LINE IS SHOUTING");
        removes("12 345");
        removes("12 likes");
        removes("1.2K views");
        removes("Menu");
        removes("3 items in cart now");
        assert!(is_counter_line("♥ 12 Likes"));
        assert!(!is_counter_line("12 likes this town"));
    }

    #[test]
    fn strips_prefixes_and_suffixes() {
        let t = format!(
            "{}\nGreat news today Read more...\nSign-in to comment below",
            body()
        );
        let (v, out) = run(
            RefinedWebLinesConfig {
                max_removed_ratio: 1.0,
                ..Default::default()
            },
            &t,
        );
        assert_eq!(v, Verdict::Keep);
        assert!(
            out.ends_with("\nGreat news today\nto comment below"),
            "{out}"
        );
        // Long lines are left alone.
        let long = "one two three four five six seven eight nine ten eleven Read more";
        removes_nothing(long);
    }

    fn removes_nothing(extra: &str) {
        let t = format!("{}\n{extra}", body());
        assert_eq!(run(Default::default(), &t), (Verdict::Keep, t.clone()));
    }

    #[test]
    fn too_many_removed() {
        assert_eq!(REASON_TOO_MANY_REMOVED, "refinedweb_lines:too_many_removed");
        let t = format!(
            "{}\n{}",
            body(),
            "SHOUTING LINE WITH MANY WORDS IN IT ALL CAPS\n".repeat(3)
        );
        assert_eq!(
            run(Default::default(), &t).0,
            Verdict::drop(REASON_TOO_MANY_REMOVED)
        );
        removes_nothing("");
    }

    #[test]
    fn config() {
        let c: RefinedWebLinesConfig =
            serde_json::from_str(r#"{"max_removed_ratio": 0.1}"#).unwrap();
        assert_eq!(c.max_removed_ratio, 0.1);
        assert!(serde_json::from_str::<RefinedWebLinesConfig>(r#"{"y": 1}"#).is_err());
        let e = RefinedWebLinesConfig {
            strip_prefixes: vec![String::new()],
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "strip_prefixes");
    }
}

//! [`C4Filter`]: C4's line and document rules (Raffel et al. 2020), a port of
//! datatrove's `C4QualityFilter` (with `split_paragraph=True`), plus an
//! optional bad-words rule (datatrove's separate `C4BadWordsFilter`, off by
//! default here because the list is not bundled).
//!
//! Lines are Python `str.splitlines()`, each stripped. Per line, in
//! datatrove's order: a word (`str.split()`) longer than `max_word_length`
//! removes the line; Wikipedia citations (`[1]`, `[edit]`, `[citation
//! needed]`) are deleted; a line not ending in `. ? ! " '` (or ending in
//! `...`) is removed; so is a line with fewer than `min_words_per_line`
//! words; "lorem ipsum" drops the document; a line mentioning "javascript" is
//! removed; `{` drops the document; a policy/cookie line is removed. Kept
//! lines' sentences are counted with the spaCy sentencizer, and a document
//! with fewer than `min_num_sentences` is dropped. Otherwise the text becomes
//! the kept lines joined by `\n`, stripped. FineWeb runs this stage with
//! `filter_no_terminal_punct = false`.

use refinery_corpus::{Document, Modifier, Verdict};
use serde::{Deserialize, Serialize};

use crate::text::{is_py_space, py_lines, py_strip, WordTokenizer};
use crate::ConfigError;

/// Drop reason: a kept line contains "lorem ipsum" (any case).
pub const REASON_LOREM_IPSUM: &str = "c4:lorem_ipsum";
/// Drop reason: a kept line contains `{`.
pub const REASON_CURLY_BRACKET: &str = "c4:curly_bracket";
/// Drop reason: fewer than `min_num_sentences` sentences in the kept lines.
pub const REASON_TOO_FEW_SENTENCES: &str = "c4:too_few_sentences";
/// Drop reason: the text contains one of `bad_words` as a whole word.
pub const REASON_BAD_WORDS: &str = "c4:bad_words";

/// datatrove's `POLICY_SUBSTRINGS`.
pub const POLICY_SUBSTRINGS: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// Configuration of [`C4Filter`]; defaults are datatrove's `C4QualityFilter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct C4Config {
    /// Delete `[1]`, `[]`, `[edit]`, `[citation needed]`. Default true.
    pub remove_citations: bool,
    /// Remove lines not ending in terminal punctuation. Default true; FineWeb uses false.
    pub filter_no_terminal_punct: bool,
    /// Drop documents with fewer sentences (after line removal); -1 disables. Default 5.
    pub min_num_sentences: i64,
    /// Remove lines with fewer words; -1 (or 0) disables. Default 3.
    pub min_words_per_line: i64,
    /// Remove lines with a longer word (in characters); -1 disables. Default 1000.
    pub max_word_length: i64,
    /// Drop documents containing "lorem ipsum". Default true.
    pub filter_lorem_ipsum: bool,
    /// Remove lines containing "javascript". Default true.
    pub filter_javascript: bool,
    /// Drop documents containing `{`. Default true.
    pub filter_curly_bracket: bool,
    /// Remove lines containing a [`POLICY_SUBSTRINGS`] phrase. Default true.
    pub filter_policy: bool,
    /// Drop documents containing any of these words (lowercase; matched on
    /// the lowercased text between non-word characters, like datatrove's
    /// `C4BadWordsFilter`). Default empty: off.
    pub bad_words: Vec<String>,
}

impl Default for C4Config {
    fn default() -> Self {
        C4Config {
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: 5,
            min_words_per_line: 3,
            max_word_length: 1000,
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
            bad_words: Vec::new(),
        }
    }
}

impl C4Config {
    /// Checks the config and builds the stage: the integers must be ≥ -1 and
    /// bad words non-empty.
    pub fn validate(mut self) -> Result<C4Filter, ConfigError> {
        for (f, v) in [
            ("min_num_sentences", self.min_num_sentences),
            ("min_words_per_line", self.min_words_per_line),
            ("max_word_length", self.max_word_length),
        ] {
            if v < -1 {
                return Err(ConfigError::new(
                    f,
                    format!("must be ≥ -1 (-1 disables), got {v}"),
                ));
            }
        }
        for w in &mut self.bad_words {
            if w.trim().is_empty() {
                return Err(ConfigError::new("bad_words", "words must not be empty"));
            }
            *w = w.to_lowercase();
        }
        Ok(C4Filter {
            config: self,
            tokenizer: WordTokenizer::new(),
            out: String::new(),
            line_buf: String::new(),
        })
    }
}

/// Removes lines and drops documents by the C4 rules (see the module docs).
#[derive(Debug)]
pub struct C4Filter {
    config: C4Config,
    tokenizer: WordTokenizer,
    out: String,
    line_buf: String,
}

/// ASCII-case-insensitive substring search (`needle` lowercase ASCII).
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    let first = n[0];
    let up = first.to_ascii_uppercase();
    let mut i = 0;
    while i + n.len() <= h.len() {
        let rest = &h[i..h.len() - n.len() + 1];
        let Some(p) = memchr::memchr2(first, up, rest) else {
            return false;
        };
        let s = i + p;
        if h[s..s + n.len()].eq_ignore_ascii_case(n) {
            return true;
        }
        i = s + 1;
    }
    false
}

/// Deletes `\[\d*]|\[edit]|\[citation needed]` from `line` into `out`.
fn remove_citations(line: &str, out: &mut String) {
    out.clear();
    let mut rest = line;
    while let Some(p) = rest.find('[') {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        let digits = tail[1..].len() - tail[1..].trim_start_matches(|c: char| c.is_numeric()).len();
        let skip = if tail[1 + digits..].starts_with(']') {
            1 + digits + 1
        } else if tail.starts_with("[edit]") {
            6
        } else if tail.starts_with("[citation needed]") {
            17
        } else {
            out.push('[');
            1
        };
        rest = &tail[skip..];
    }
    out.push_str(rest);
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn has_bad_word(text: &str, words: &[String]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| {
        lower.match_indices(w.as_str()).any(|(i, _)| {
            !lower[..i].chars().next_back().is_some_and(is_word_char)
                && !lower[i + w.len()..]
                    .chars()
                    .next()
                    .is_some_and(is_word_char)
        })
    })
}

impl C4Filter {
    /// Same as [`C4Config::validate`].
    pub fn new(config: C4Config) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &C4Config {
        &self.config
    }

    fn run(&mut self, text: &str) -> Result<(), &'static str> {
        let c = &self.config;
        if !c.bad_words.is_empty() && has_bad_word(text, &c.bad_words) {
            return Err(REASON_BAD_WORDS);
        }
        self.out.clear();
        let mut sentences: i64 = 0;
        for raw in py_lines(text) {
            let stripped = py_strip(raw);
            let mut n_words: i64 = 0;
            let mut too_long = false;
            for w in stripped.split(is_py_space).filter(|w| !w.is_empty()) {
                n_words += 1;
                if c.max_word_length != -1
                    && !too_long
                    && w.len() as i64 > c.max_word_length
                    && w.chars().count() as i64 > c.max_word_length
                {
                    too_long = true;
                }
            }
            if too_long {
                continue;
            }
            let line: &str = if c.remove_citations && stripped.contains('[') {
                remove_citations(stripped, &mut self.line_buf);
                &self.line_buf
            } else {
                stripped
            };
            if c.filter_no_terminal_punct
                && (!line.ends_with(['.', '?', '!', '"', '\'']) || line.ends_with("..."))
            {
                continue;
            }
            if n_words < c.min_words_per_line {
                continue;
            }
            if c.filter_lorem_ipsum && contains_ci(line, "lorem ipsum") {
                return Err(REASON_LOREM_IPSUM);
            }
            if c.filter_javascript && contains_ci(line, "javascript") {
                continue;
            }
            if c.filter_curly_bracket && line.contains('{') {
                return Err(REASON_CURLY_BRACKET);
            }
            if c.filter_policy && POLICY_SUBSTRINGS.iter().any(|p| contains_ci(line, p)) {
                continue;
            }
            if c.min_num_sentences != -1 {
                sentences += self.tokenizer.count_sentences(line) as i64;
            }
            if !self.out.is_empty() {
                self.out.push('\n');
            }
            self.out.push_str(line);
        }
        if sentences < c.min_num_sentences {
            return Err(REASON_TOO_FEW_SENTENCES);
        }
        Ok(())
    }
}

impl Modifier for C4Filter {
    fn modify(&mut self, doc: &mut Document) -> Verdict {
        match self.run(&doc.text) {
            Err(r) => Verdict::drop(r),
            Ok(()) => {
                // "\n".join(kept_lines).strip(): only the first/last line can
                // carry strippable whitespace after citation removal.
                let t = py_strip(&self.out);
                if t.len() != self.out.len() {
                    let t = t.to_string();
                    self.out = t;
                }
                std::mem::swap(&mut doc.text, &mut self.out);
                Verdict::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: C4Config, text: &str) -> (Verdict, String) {
        let mut f = cfg.validate().unwrap();
        let mut d = Document::new("1", text, "mem");
        let v = f.modify(&mut d);
        (v, d.text)
    }

    const GOOD: &str = "This is a fine sentence. Here is another one.\nA third sentence is here. And a fourth one! Is this the fifth?";

    #[test]
    fn keeps_good_text_and_removes_bad_lines() {
        let t = format!("Menu\n{GOOD}\nEnable JavaScript to see this page.\nRead our privacy policy today.\nok.");
        let (v, out) = run(C4Config::default(), &t);
        assert_eq!(v, Verdict::Keep);
        assert_eq!(out, GOOD);
    }

    #[test]
    fn terminal_punctuation_is_switchable() {
        let t = format!("{GOOD}\nno punctuation at the end");
        assert_eq!(run(C4Config::default(), &t).1, GOOD);
        let fw = C4Config {
            filter_no_terminal_punct: false,
            ..Default::default()
        };
        assert_eq!(run(fw, &t).1, t);
        // An ellipsis is not terminal punctuation.
        assert_eq!(
            run(C4Config::default(), &format!("{GOOD}\nand so it goes...")).1,
            GOOD
        );
    }

    #[test]
    fn lorem_ipsum() {
        assert_eq!(REASON_LOREM_IPSUM, "c4:lorem_ipsum");
        let t = format!("{GOOD}\nLorem Ipsum dolor sit amet.");
        assert_eq!(
            run(C4Config::default(), &t).0,
            Verdict::drop(REASON_LOREM_IPSUM)
        );
    }

    #[test]
    fn curly_bracket() {
        assert_eq!(REASON_CURLY_BRACKET, "c4:curly_bracket");
        let t = format!("{GOOD}\nfunction f() {{ return 1; }} is code.");
        assert_eq!(
            run(C4Config::default(), &t).0,
            Verdict::drop(REASON_CURLY_BRACKET)
        );
        // Only kept lines count: a short line with { is removed first.
        assert_eq!(
            run(C4Config::default(), &format!("{GOOD}\n{{.")).0,
            Verdict::Keep
        );
    }

    #[test]
    fn too_few_sentences() {
        assert_eq!(REASON_TOO_FEW_SENTENCES, "c4:too_few_sentences");
        let (v, _) = run(
            C4Config::default(),
            "One sentence here. Two sentences here.",
        );
        assert_eq!(v, Verdict::drop(REASON_TOO_FEW_SENTENCES));
        let off = C4Config {
            min_num_sentences: -1,
            ..Default::default()
        };
        assert_eq!(run(off, "One sentence here.").0, Verdict::Keep);
    }

    #[test]
    fn long_words_and_citations() {
        let c = C4Config {
            max_word_length: 10,
            ..Default::default()
        };
        let t = format!("{GOOD}\nThis has a supercalifragilistic word.");
        assert_eq!(run(c, &t).1, GOOD);
        let t = "Cited fact here.[1] More text here[citation needed].\nAlpha beta gamma. Delta eps zeta. Eta theta iota.";
        let (v, out) = run(C4Config::default(), t);
        assert_eq!(v, Verdict::Keep);
        assert!(out.starts_with("Cited fact here. More text here."), "{out}");
    }

    #[test]
    fn bad_words() {
        assert_eq!(REASON_BAD_WORDS, "c4:bad_words");
        let c = C4Config {
            bad_words: vec!["Darn".into()],
            ..Default::default()
        };
        assert_eq!(
            run(c.clone(), &format!("{GOOD} DARN it.")).0,
            Verdict::drop(REASON_BAD_WORDS)
        );
        assert_eq!(run(c, &format!("{GOOD} darnation.")).0, Verdict::Keep);
    }

    #[test]
    fn config() {
        let c: C4Config = serde_json::from_str(r#"{"filter_no_terminal_punct": false}"#).unwrap();
        assert!(!c.filter_no_terminal_punct);
        assert!(serde_json::from_str::<C4Config>(r#"{"split_paragraph": false}"#).is_err());
        let e = C4Config {
            max_word_length: -2,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "max_word_length");
        assert!(contains_ci("xxLOREM IPSUM", "lorem ipsum"));
        assert!(!contains_ci("lorem", "lorem ipsum"));
    }
}

//! [`GopherRepetitionFilter`]: Gopher's repetition rules (Rae et al. 2021,
//! Table A1), a port of datatrove's `GopherRepetitionFilter`.
//!
//! Paragraphs are `re.split(r"\n{2,}", text.strip())`, lines are
//! `re.split("\n+", text)`, words are datatrove's English word tokens
//! ([`crate::text::WordTokenizer`]). Every fraction is a share of
//! `len(text)` in characters, except the duplicate line/paragraph
//! fractions, which count elements. The checks run in datatrove's order and
//! the first one over its limit gives the reason.
//!
//! Duplicate lines and paragraphs are found by 64-bit xxh3 hashes; n-grams by
//! a polynomial hash modulo 2^61−1 over the bytes, computed from prefix
//! hashes so that each n-gram costs one multiplication. A hash collision
//! could count a distinct element as a repeat; at these sizes the
//! probability is below 10^-9 per document.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use refinery_corpus::{Document, Filter, Reason, Verdict};
use serde::{Deserialize, Serialize};

use crate::text::{py_strip, WordTokenizer};
use crate::ConfigError;

/// Drop reason: empty text.
pub const REASON_REP_EMPTY: &str = "gopher_rep:empty";
/// Drop reason: share of duplicate paragraphs above `dup_para_frac`.
pub const REASON_DUP_PARA_FRAC: &str = "gopher_rep:dup_para_frac";
/// Drop reason: share of characters in duplicate paragraphs above `dup_para_char_frac`.
pub const REASON_DUP_PARA_CHAR_FRAC: &str = "gopher_rep:dup_para_char_frac";
/// Drop reason: share of duplicate lines above `dup_line_frac`.
pub const REASON_DUP_LINE_FRAC: &str = "gopher_rep:dup_line_frac";
/// Drop reason: share of characters in duplicate lines above `dup_line_char_frac`.
pub const REASON_DUP_LINE_CHAR_FRAC: &str = "gopher_rep:dup_line_char_frac";
/// Drop reason: the most frequent 2-gram covers too many characters.
pub const REASON_TOP_2_GRAM: &str = "gopher_rep:top_2_gram";
/// Drop reason: the most frequent 3-gram covers too many characters.
pub const REASON_TOP_3_GRAM: &str = "gopher_rep:top_3_gram";
/// Drop reason: the most frequent 4-gram covers too many characters.
pub const REASON_TOP_4_GRAM: &str = "gopher_rep:top_4_gram";
/// Drop reason: repeated 5-grams cover too many characters.
pub const REASON_DUPLICATED_5_N_GRAMS: &str = "gopher_rep:duplicated_5_n_grams";
/// Drop reason: repeated 6-grams cover too many characters.
pub const REASON_DUPLICATED_6_N_GRAMS: &str = "gopher_rep:duplicated_6_n_grams";
/// Drop reason: repeated 7-grams cover too many characters.
pub const REASON_DUPLICATED_7_N_GRAMS: &str = "gopher_rep:duplicated_7_n_grams";
/// Drop reason: repeated 8-grams cover too many characters.
pub const REASON_DUPLICATED_8_N_GRAMS: &str = "gopher_rep:duplicated_8_n_grams";
/// Drop reason: repeated 9-grams cover too many characters.
pub const REASON_DUPLICATED_9_N_GRAMS: &str = "gopher_rep:duplicated_9_n_grams";
/// Drop reason: repeated 10-grams cover too many characters.
pub const REASON_DUPLICATED_10_N_GRAMS: &str = "gopher_rep:duplicated_10_n_grams";

/// Configuration of [`GopherRepetitionFilter`]; the defaults are Gopher's
/// Table A1 (and datatrove's). A fraction of 0 disables its check, as in
/// datatrove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GopherRepetitionConfig {
    /// Max share of paragraphs that repeat an earlier one. Default 0.3.
    pub dup_para_frac: f64,
    /// Max share of characters in repeated paragraphs. Default 0.2.
    pub dup_para_char_frac: f64,
    /// Max share of lines that repeat an earlier one. Default 0.3.
    pub dup_line_frac: f64,
    /// Max share of characters in repeated lines. Default 0.2.
    pub dup_line_char_frac: f64,
    /// `[n, limit]` pairs: max share of characters covered by the most
    /// frequent n-gram. Default `[[2, 0.2], [3, 0.18], [4, 0.16]]`.
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, limit]` pairs: max share of characters in repeated n-grams.
    /// Default `[[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]]`.
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        GopherRepetitionConfig {
            dup_para_frac: 0.3,
            dup_para_char_frac: 0.2,
            dup_line_frac: 0.3,
            dup_line_char_frac: 0.2,
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

/// A threshold that is any finite number ≥ 0 (a length, or a ratio that can
/// exceed 1 such as newlines per word).
pub(crate) fn check_non_negative(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be a finite number ≥ 0, got {v}"),
        ))
    }
}

/// A threshold on a share of a whole (of lines, words, characters): in [0, 1].
pub(crate) fn check_frac(field: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be a fraction in [0, 1], got {v}"),
        ))
    }
}

fn reason(kind: &str, n: usize) -> Reason {
    let known = match (kind, n) {
        ("top", 2) => REASON_TOP_2_GRAM,
        ("top", 3) => REASON_TOP_3_GRAM,
        ("top", 4) => REASON_TOP_4_GRAM,
        ("dup", 5) => REASON_DUPLICATED_5_N_GRAMS,
        ("dup", 6) => REASON_DUPLICATED_6_N_GRAMS,
        ("dup", 7) => REASON_DUPLICATED_7_N_GRAMS,
        ("dup", 8) => REASON_DUPLICATED_8_N_GRAMS,
        ("dup", 9) => REASON_DUPLICATED_9_N_GRAMS,
        ("dup", 10) => REASON_DUPLICATED_10_N_GRAMS,
        ("top", n) => return format!("gopher_rep:top_{n}_gram").into(),
        (_, n) => return format!("gopher_rep:duplicated_{n}_n_grams").into(),
    };
    known.into()
}

impl GopherRepetitionConfig {
    /// Checks the config and builds the filter: fractions in [0, 1], n in
    /// 1..=1000.
    pub fn validate(self) -> Result<GopherRepetitionFilter, ConfigError> {
        check_frac("dup_para_frac", self.dup_para_frac)?;
        check_frac("dup_para_char_frac", self.dup_para_char_frac)?;
        check_frac("dup_line_frac", self.dup_line_frac)?;
        check_frac("dup_line_char_frac", self.dup_line_char_frac)?;
        for (field, list) in [
            ("top_n_grams", &self.top_n_grams),
            ("dup_n_grams", &self.dup_n_grams),
        ] {
            for &(n, f) in list {
                if !(1..=1000).contains(&n) {
                    return Err(ConfigError::new(
                        field,
                        format!("n must be in 1..=1000, got {n}"),
                    ));
                }
                check_frac(field, f)?;
            }
        }
        let top = self
            .top_n_grams
            .iter()
            .map(|&(n, f)| (n, f, reason("top", n)))
            .collect();
        let dup = self
            .dup_n_grams
            .iter()
            .map(|&(n, f)| (n, f, reason("dup", n)))
            .collect();
        Ok(GopherRepetitionFilter {
            config: self,
            top,
            dup,
            tokenizer: WordTokenizer::new(),
            seen: HashSet::default(),
            counts: HashMap::default(),
            words: NgramHasher::default(),
        })
    }
}

/// A hasher for keys that already are hashes.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type HashSet64 = HashSet<u64, BuildHasherDefault<IdentityHasher>>;
type HashMap64<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// datatrove `find_duplicates`: (repeated elements, characters in them).
pub(crate) fn find_duplicates<'a>(
    items: impl Iterator<Item = &'a str>,
    seen: &mut HashSet64,
) -> (usize, usize, usize) {
    seen.clear();
    let (mut total, mut dups, mut chars) = (0, 0, 0);
    for s in items {
        total += 1;
        if !seen.insert(xxhash_rust::xxh3::xxh3_64(s.as_bytes())) {
            dups += 1;
            chars += s.chars().count();
        }
    }
    (total, dups, chars)
}

const MOD: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1f35_a7bd_3c71_9e2d % MOD;

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    let s = (r as u64 & MOD) + (r >> 61) as u64;
    if s >= MOD {
        s - MOD
    } else {
        s
    }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= MOD {
        s - MOD
    } else {
        s
    }
}

/// Prefix hashes over the words, for O(1) n-gram hashes of both
/// `" ".join(words)` (each word followed by a space) and `"".join(words)`.
#[derive(Default)]
struct NgramHasher {
    /// Hash of the concatenation of words[..i].
    cat: Vec<u64>,
    /// Hash of words[..i], each followed by a space.
    spaced: Vec<u64>,
    /// Bytes of words[..i] (concatenated).
    bytes: Vec<usize>,
    /// Characters of words[..i] (concatenated).
    chars: Vec<usize>,
    /// BASE^k.
    pow: Vec<u64>,
}

impl NgramHasher {
    fn clear(&mut self) {
        self.cat.clear();
        self.spaced.clear();
        self.bytes.clear();
        self.chars.clear();
        self.cat.push(0);
        self.spaced.push(0);
        self.bytes.push(0);
        self.chars.push(0);
    }

    fn push(&mut self, w: &str) {
        let (mut c, mut s) = (
            *self.cat.last().unwrap_or(&0),
            *self.spaced.last().unwrap_or(&0),
        );
        let mut nchars = 0;
        for &b in w.as_bytes() {
            let v = u64::from(b) + 1;
            c = addmod(mulmod(c, BASE), v);
            s = addmod(mulmod(s, BASE), v);
            nchars += usize::from((b & 0xc0) != 0x80);
        }
        s = addmod(mulmod(s, BASE), u64::from(b' ') + 1);
        self.cat.push(c);
        self.spaced.push(s);
        self.bytes.push(self.bytes.last().unwrap_or(&0) + w.len());
        self.chars.push(self.chars.last().unwrap_or(&0) + nchars);
    }

    fn len(&self) -> usize {
        self.cat.len() - 1
    }

    fn finish(&mut self) {
        let need = self.bytes.last().copied().unwrap_or(0) + self.len() + 1;
        if self.pow.is_empty() {
            self.pow.push(1);
        }
        while self.pow.len() < need {
            let p = *self.pow.last().unwrap_or(&1);
            self.pow.push(mulmod(p, BASE));
        }
    }

    /// Hash of words[i..j] concatenated.
    #[inline]
    fn cat_hash(&self, i: usize, j: usize) -> u64 {
        let len = self.bytes[j] - self.bytes[i];
        addmod(self.cat[j], MOD - mulmod(self.cat[i], self.pow[len]))
    }

    /// Hash of words[i..j] joined by (and followed by) spaces.
    #[inline]
    fn spaced_hash(&self, i: usize, j: usize) -> u64 {
        let len = self.bytes[j] - self.bytes[i] + (j - i);
        addmod(self.spaced[j], MOD - mulmod(self.spaced[i], self.pow[len]))
    }

    #[inline]
    fn chars(&self, i: usize, j: usize) -> usize {
        self.chars[j] - self.chars[i]
    }
}

/// Drops documents with too much repeated content (see the module docs).
pub struct GopherRepetitionFilter {
    config: GopherRepetitionConfig,
    top: Vec<(usize, f64, Reason)>,
    dup: Vec<(usize, f64, Reason)>,
    tokenizer: WordTokenizer,
    seen: HashSet64,
    counts: HashMap64<(u32, u32)>,
    words: NgramHasher,
}

impl std::fmt::Debug for GopherRepetitionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GopherRepetitionFilter")
            .field("config", &self.config)
            .finish()
    }
}

/// `re.split(r"\n{2,}", s)`.
fn split_paragraphs(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memmem::find(r.as_bytes(), b"\n\n") {
            Some(start) => {
                let end = r.len() - r[start..].trim_start_matches('\n').len();
                rest = Some(&r[end..]);
                Some(&r[..start])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `re.split("\n+", s)`.
fn split_lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r.as_bytes()) {
            Some(start) => {
                let end = r.len() - r[start..].trim_start_matches('\n').len();
                rest = Some(&r[end..]);
                Some(&r[..start])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

impl GopherRepetitionFilter {
    /// Same as [`GopherRepetitionConfig::validate`].
    pub fn new(config: GopherRepetitionConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &GopherRepetitionConfig {
        &self.config
    }

    fn check(&mut self, text: &str) -> Option<Reason> {
        let c = &self.config;
        if text.is_empty() {
            return Some(REASON_REP_EMPTY.into());
        }
        let text_len = text.chars().count() as f64;
        let (n, dups, chars) = find_duplicates(split_paragraphs(py_strip(text)), &mut self.seen);
        if c.dup_para_frac != 0.0 && dups as f64 / n as f64 > c.dup_para_frac {
            return Some(REASON_DUP_PARA_FRAC.into());
        }
        if c.dup_para_char_frac != 0.0 && chars as f64 / text_len > c.dup_para_char_frac {
            return Some(REASON_DUP_PARA_CHAR_FRAC.into());
        }
        let (n, dups, chars) = find_duplicates(split_lines(text), &mut self.seen);
        if c.dup_line_frac != 0.0 && dups as f64 / n as f64 > c.dup_line_frac {
            return Some(REASON_DUP_LINE_FRAC.into());
        }
        if c.dup_line_char_frac != 0.0 && chars as f64 / text_len > c.dup_line_char_frac {
            return Some(REASON_DUP_LINE_CHAR_FRAC.into());
        }
        if self.top.is_empty() && self.dup.is_empty() {
            return None;
        }
        let words = &mut self.words;
        words.clear();
        self.tokenizer.tokenize(text, |t, ws| {
            if !ws {
                words.push(t)
            }
        });
        words.finish();
        let nw = words.len();
        for (n, frac, reason) in &self.top {
            let n = *n;
            if nw < n {
                continue;
            }
            // Counter.most_common(1): the highest count, the first inserted on ties.
            self.counts.clear();
            let (mut best_count, mut best_first) = (0u32, 0u32);
            for i in 0..=nw - n {
                let e = self
                    .counts
                    .entry(words.spaced_hash(i, i + n))
                    .or_insert((0, i as u32));
                e.0 += 1;
                if e.0 > best_count || (e.0 == best_count && e.1 < best_first) {
                    best_count = e.0;
                    best_first = e.1;
                }
            }
            let first = best_first as usize;
            let top_chars = (words.chars(first, first + n) + n - 1) * best_count as usize;
            if top_chars as f64 / text_len > *frac {
                return Some(reason.clone());
            }
        }
        for (n, frac, reason) in &self.dup {
            let n = *n;
            self.seen.clear();
            let mut repeated = 0usize;
            let mut idx = 0usize;
            while idx + n <= nw {
                if self.seen.insert(words.cat_hash(idx, idx + n)) {
                    idx += 1;
                } else {
                    repeated += words.chars(idx, idx + n);
                    idx += n;
                }
            }
            if repeated as f64 / text_len > *frac {
                return Some(reason.clone());
            }
        }
        None
    }
}

impl Filter for GopherRepetitionFilter {
    fn filter(&mut self, doc: &Document) -> Verdict {
        match self.check(&doc.text) {
            Some(r) => Verdict::Drop(r),
            None => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cfg: GopherRepetitionConfig, text: &str) -> Verdict {
        cfg.validate()
            .unwrap()
            .filter(&Document::new("1", text, "mem"))
    }

    fn only(f: impl FnOnce(&mut GopherRepetitionConfig)) -> GopherRepetitionConfig {
        let mut c = GopherRepetitionConfig {
            dup_para_frac: 0.0,
            dup_para_char_frac: 0.0,
            dup_line_frac: 0.0,
            dup_line_char_frac: 0.0,
            top_n_grams: vec![],
            dup_n_grams: vec![],
        };
        f(&mut c);
        c
    }

    /// 40 distinct words, then the same with an extra part.
    fn varied(k: usize) -> String {
        (0..k)
            .map(|i| format!("w{i}x"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn reason_names() {
        assert_eq!(REASON_REP_EMPTY, "gopher_rep:empty");
        assert_eq!(REASON_DUP_PARA_FRAC, "gopher_rep:dup_para_frac");
        assert_eq!(REASON_DUP_PARA_CHAR_FRAC, "gopher_rep:dup_para_char_frac");
        assert_eq!(REASON_DUP_LINE_FRAC, "gopher_rep:dup_line_frac");
        assert_eq!(REASON_DUP_LINE_CHAR_FRAC, "gopher_rep:dup_line_char_frac");
        assert_eq!(REASON_TOP_2_GRAM, "gopher_rep:top_2_gram");
        assert_eq!(REASON_TOP_3_GRAM, "gopher_rep:top_3_gram");
        assert_eq!(REASON_TOP_4_GRAM, "gopher_rep:top_4_gram");
        for (n, r) in [
            (5, REASON_DUPLICATED_5_N_GRAMS),
            (6, REASON_DUPLICATED_6_N_GRAMS),
            (7, REASON_DUPLICATED_7_N_GRAMS),
            (8, REASON_DUPLICATED_8_N_GRAMS),
            (9, REASON_DUPLICATED_9_N_GRAMS),
            (10, REASON_DUPLICATED_10_N_GRAMS),
        ] {
            assert_eq!(r, format!("gopher_rep:duplicated_{n}_n_grams"));
        }
        assert_eq!(reason("top", 7), "gopher_rep:top_7_gram");
    }

    #[test]
    fn empty() {
        assert_eq!(
            check(Default::default(), ""),
            Verdict::drop(REASON_REP_EMPTY)
        );
    }

    #[test]
    fn dup_paragraphs() {
        let t = format!("{}\n\nsame para\n\nsame para\n\n{}", varied(3), varied(4));
        assert_eq!(
            check(only(|c| c.dup_para_frac = 0.2), &t),
            Verdict::drop(REASON_DUP_PARA_FRAC)
        );
        let t = format!(
            "{}\n\n{}\n\n{}",
            varied(30),
            "x".repeat(200),
            "x".repeat(200)
        );
        assert_eq!(
            check(only(|c| c.dup_para_char_frac = 0.2), &t),
            Verdict::drop(REASON_DUP_PARA_CHAR_FRAC)
        );
    }

    #[test]
    fn dup_lines() {
        let t = format!("{}\nsame\nsame\n{}", varied(3), varied(4));
        assert_eq!(
            check(only(|c| c.dup_line_frac = 0.2), &t),
            Verdict::drop(REASON_DUP_LINE_FRAC)
        );
        let t = format!("{}\n{}\n{}", varied(30), "y".repeat(200), "y".repeat(200));
        assert_eq!(
            check(only(|c| c.dup_line_char_frac = 0.2), &t),
            Verdict::drop(REASON_DUP_LINE_CHAR_FRAC)
        );
    }

    #[test]
    fn top_n_grams() {
        let t = format!("{} {}", varied(20), "the cat ".repeat(10));
        assert_eq!(
            check(only(|c| c.top_n_grams = vec![(2, 0.2)]), &t),
            Verdict::drop(REASON_TOP_2_GRAM)
        );
        let t = format!("{} {}", varied(20), "a big cat ".repeat(10));
        assert_eq!(
            check(only(|c| c.top_n_grams = vec![(3, 0.18)]), &t),
            Verdict::drop(REASON_TOP_3_GRAM)
        );
        let t = format!("{} {}", varied(20), "one big fat cat ".repeat(10));
        assert_eq!(
            check(only(|c| c.top_n_grams = vec![(4, 0.16)]), &t),
            Verdict::drop(REASON_TOP_4_GRAM)
        );
        assert_eq!(check(Default::default(), &varied(100)), Verdict::Keep);
    }

    #[test]
    fn duplicated_n_grams() {
        for n in 5..=10 {
            let rep: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
            let t = format!("{} {} {}", varied(30), rep.join(" "), rep.join(" "));
            let r = reason("dup", n);
            assert_eq!(
                check(only(|c| c.dup_n_grams = vec![(n, 0.01)]), &t),
                Verdict::Drop(r),
                "n={n}"
            );
        }
    }

    #[test]
    fn duplicated_n_grams_join_without_separator() {
        // datatrove joins dup n-grams with "": ("ab","c") equals ("a","bc").
        let mut w = NgramHasher::default();
        w.clear();
        for t in ["ab", "c", "a", "bc"] {
            w.push(t);
        }
        w.finish();
        assert_eq!(w.cat_hash(0, 2), w.cat_hash(2, 4));
        assert_ne!(w.spaced_hash(0, 2), w.spaced_hash(2, 4));
    }

    #[test]
    fn splitting_like_python_re() {
        assert_eq!(
            split_lines("\na\n\nb\n").collect::<Vec<_>>(),
            ["", "a", "b", ""]
        );
        assert_eq!(
            split_paragraphs("a\nb\n\n\nc").collect::<Vec<_>>(),
            ["a\nb", "c"]
        );
        assert_eq!(split_paragraphs("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn config() {
        let c: GopherRepetitionConfig =
            serde_json::from_str(r#"{"dup_line_frac": 0.5, "top_n_grams": [[2, 0.3]]}"#).unwrap();
        assert_eq!(c.dup_line_frac, 0.5);
        assert_eq!(c.top_n_grams, vec![(2, 0.3)]);
        assert!(serde_json::from_str::<GopherRepetitionConfig>(r#"{"nope": 1}"#).is_err());
        let e = only(|c| c.dup_line_frac = -1.0).validate().unwrap_err();
        assert_eq!(e.field, "dup_line_frac");
        // A fraction above 1 would never trigger: refused, not accepted.
        let e = only(|c| c.dup_line_frac = 7.0).validate().unwrap_err();
        assert_eq!(e.field, "dup_line_frac");
        assert!(e.message.contains("[0, 1]"), "{}", e.message);
        let e = only(|c| c.top_n_grams = vec![(2, 1.5)])
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "top_n_grams");
        let e = only(|c| c.dup_n_grams = vec![(0, 0.1)])
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "dup_n_grams");
    }
}

//! Units (bytes or whitespace tokens) and how removed unit ranges become
//! removed text.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// What a span length counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// UTF-8 bytes of the text.
    #[default]
    Bytes,
    /// Maximal runs of non-whitespace chars (`char::is_whitespace`); two
    /// tokens are equal when their bytes are (compared through xxh3-64).
    Tokens,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Tokens => "tokens",
        }
    }
}

/// Byte offsets `(start, end)` of the whitespace tokens of `text`.
pub fn token_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// Number of units of `text`.
pub fn unit_count(text: &str, unit: Unit) -> usize {
    match unit {
        Unit::Bytes => text.len(),
        Unit::Tokens => token_spans(text).len(),
    }
}

/// Appends the unit encoding of `text` (see `format`: bytes as they are,
/// tokens as big-endian xxh3-64) to `out`; returns the unit count.
pub fn encode(text: &str, unit: Unit, out: &mut Vec<u8>) -> u64 {
    match unit {
        Unit::Bytes => {
            out.extend_from_slice(text.as_bytes());
            text.len() as u64
        }
        Unit::Tokens => {
            let spans = token_spans(text);
            for &(s, e) in &spans {
                out.extend_from_slice(&xxh3_64(&text.as_bytes()[s..e]).to_be_bytes());
            }
            spans.len() as u64
        }
    }
}

/// Removes the unit ranges `ranges` (sorted, disjoint, inside the text)
/// from `text`; returns the new text and the number of bytes removed.
///
/// * Bytes: a range is shrunk inwards to char boundaries, so no char is
///   cut; only bytes of the repeated span are ever removed.
/// * Tokens: tokens `i..j` remove the bytes from the start of token `i` to
///   the start of token `j` (to the end of the text when `j` is the last),
///   i.e. the tokens and the whitespace after them.
pub fn remove_ranges(text: &str, unit: Unit, ranges: &[(usize, usize)]) -> (String, usize) {
    let byte_ranges: Vec<(usize, usize)> = match unit {
        Unit::Bytes => ranges
            .iter()
            .map(|&(s, e)| {
                let mut s = s.min(text.len());
                let mut e = e.min(text.len());
                while s < e && !text.is_char_boundary(s) {
                    s += 1;
                }
                while e > s && !text.is_char_boundary(e) {
                    e -= 1;
                }
                (s, e)
            })
            .collect(),
        Unit::Tokens => {
            let spans = token_spans(text);
            let start = |i: usize| spans.get(i).map_or(text.len(), |t| t.0);
            ranges.iter().map(|&(i, j)| (start(i), start(j))).collect()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut removed = 0;
    for (s, e) in byte_ranges {
        if s >= e || s < at {
            continue;
        }
        out.push_str(&text[at..s]);
        removed += e - s;
        at = e;
    }
    out.push_str(&text[at..]);
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_removal() {
        assert_eq!(
            token_spans("  ab c\u{3000}dé "),
            vec![(2, 4), (5, 6), (9, 12)]
        );
        assert_eq!(unit_count("a  b\n", Unit::Tokens), 2);
        let (t, n) = remove_ranges("one two three four", Unit::Tokens, &[(1, 3)]);
        assert_eq!((t.as_str(), n), ("one four", 10));
        let (t, n) = remove_ranges("one two three", Unit::Tokens, &[(2, 3)]);
        assert_eq!((t.as_str(), n), ("one two ", 5));
        // "é" is 2 bytes at 1..3: a range starting or ending inside it shrinks.
        let (t, n) = remove_ranges("aébc", Unit::Bytes, &[(2, 5)]);
        assert_eq!((t.as_str(), n), ("aé", 2));
        let (t, n) = remove_ranges("aébc", Unit::Bytes, &[(0, 2)]);
        assert_eq!((t.as_str(), n), ("ébc", 1));
        let (t, _) = remove_ranges("aébc", Unit::Bytes, &[(2, 3)]);
        assert_eq!(t, "aébc");
    }
}

//! tiktoken-compatible byte-level BPE over a `.tiktoken` rank file.
//!
//! A rank file has one `base64(token bytes) rank` pair per line. Encoding
//! splits the text with the encoding's regex, looks each piece up whole, and
//! otherwise merges adjacent parts by lowest rank, exactly as tiktoken's
//! `_byte_pair_merge` does (the first minimum wins ties), so ids are
//! identical to tiktoken's `encode_ordinary`.
//!
//! The file does not say which split regex and special tokens go with it;
//! they are chosen from the file name (`cl100k_base`, `o200k_base`,
//! `r50k_base`/`p50k_base`/`gpt2`) or, failing that, from the number of ranks.

use std::path::Path;

use fancy_regex::Regex;
use rustc_hash::FxHashMap;

use crate::{Result, TokenizeError};

/// GPT-2 / r50k / p50k split pattern.
pub const GPT2_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// cl100k_base split pattern (as in tiktoken_ext/openai_public.py).
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
/// o200k_base split pattern.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
);

/// A tiktoken encoding: ranks, split regex and special tokens.
pub struct TiktokenBpe {
    name: String,
    encoder: FxHashMap<Vec<u8>, u32>,
    decoder: FxHashMap<u32, Vec<u8>>,
    specials: Vec<(String, u32)>,
    regex: Regex,
    vocab_size: usize,
}

impl std::fmt::Debug for TiktokenBpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiktokenBpe")
            .field("name", &self.name)
            .field("ranks", &self.encoder.len())
            .field("specials", &self.specials)
            .finish()
    }
}

const HINT: &str = "a .tiktoken file has one `base64-token rank` pair per line, e.g. cl100k_base.tiktoken from tiktoken's openaipublic URLs";

impl TiktokenBpe {
    /// Loads a `.tiktoken` rank file; the split pattern and the special
    /// tokens are those of the encoding named by the file stem.
    pub fn open(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| TokenizeError::io(path, e))?;
        let ranks = parse_ranks(&data).map_err(|m| TokenizeError::load(path, m, HINT))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (name, pattern, specials) = encoding_for(&stem, ranks.len()).ok_or_else(|| {
            TokenizeError::load(
                path,
                format!("unknown tiktoken encoding `{stem}` with {} ranks", ranks.len()),
                "name the file after its encoding: cl100k_base.tiktoken, o200k_base.tiktoken, r50k_base.tiktoken or p50k_base.tiktoken",
            )
        })?;
        Self::new(name, ranks, pattern, specials).map_err(|m| TokenizeError::load(path, m, HINT))
    }

    /// Builds an encoding from its parts.
    pub fn new(
        name: impl Into<String>,
        ranks: Vec<(Vec<u8>, u32)>,
        pattern: &str,
        specials: Vec<(String, u32)>,
    ) -> std::result::Result<Self, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("bad split pattern: {e}"))?;
        let mut encoder = FxHashMap::default();
        let mut decoder = FxHashMap::default();
        let mut max_id = 0u32;
        for (bytes, rank) in ranks {
            max_id = max_id.max(rank);
            if decoder.insert(rank, bytes.clone()).is_some() {
                return Err(format!("rank {rank} appears twice"));
            }
            encoder.insert(bytes, rank);
        }
        for (s, id) in &specials {
            max_id = max_id.max(*id);
            decoder.insert(*id, s.as_bytes().to_vec());
        }
        let vocab_size = if decoder.is_empty() {
            0
        } else {
            max_id as usize + 1
        };
        Ok(TiktokenBpe {
            name: name.into(),
            encoder,
            decoder,
            specials,
            regex,
            vocab_size,
        })
    }

    /// The encoding name, e.g. `cl100k_base`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One more than the largest id (ranks and special tokens).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The special tokens and their ids.
    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }

    /// The id of a token given as text (a special token or a whole rank).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.specials
            .iter()
            .find(|(s, _)| s == token)
            .map(|(_, id)| *id)
            .or_else(|| self.encoder.get(token.as_bytes()).copied())
    }

    /// Encodes like tiktoken's `encode_ordinary`: special-token text is
    /// encoded as ordinary text.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, &mut out);
        out
    }

    /// Encodes like tiktoken's `encode(text, allowed_special="all")`.
    pub fn encode_with_specials(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut rest = text;
        loop {
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|p| (p, s.len(), *id)))
                .min_by_key(|&(p, len, _)| (p, std::cmp::Reverse(len)));
            match next {
                Some((p, len, id)) => {
                    self.encode_into(&rest[..p], &mut out);
                    out.push(id);
                    rest = &rest[p + len..];
                }
                None => {
                    self.encode_into(rest, &mut out);
                    return out;
                }
            }
        }
    }

    fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < text.len() {
            // A regex error (backtrack limit) on pathological input: encode
            // the rest as one piece rather than failing or dropping text.
            let m = match self.regex.find_from_pos(text, pos) {
                Ok(Some(m)) if m.end() > pos => m,
                Ok(Some(_)) | Ok(None) | Err(_) => {
                    self.encode_piece(&text.as_bytes()[pos..], out);
                    return;
                }
            };
            if m.start() > pos {
                // Unmatched gap (cannot happen with the shipped patterns).
                self.encode_piece(&text.as_bytes()[pos..m.start()], out);
            }
            self.encode_piece(m.as_str().as_bytes(), out);
            pos = m.end();
        }
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let Some(&id) = self.encoder.get(piece) {
            out.push(id);
            return;
        }
        let parts = byte_pair_merge(&self.encoder, piece);
        for w in parts.windows(2) {
            let bytes = &piece[w[0].0..w[1].0];
            match self.encoder.get(bytes) {
                Some(&id) => out.push(id),
                // Only possible with a rank file that lacks some single
                // bytes: fall back to whatever single bytes exist.
                None => out.extend(bytes.iter().filter_map(|b| self.encoder.get(&[*b][..]))),
            }
        }
    }

    /// The bytes of `ids`; unknown ids are an error naming the id.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for id in ids {
            let bytes = self.decoder.get(id).ok_or_else(|| {
                TokenizeError::Encode(format!(
                    "id {id} is not in {} (vocab size {})",
                    self.name, self.vocab_size
                ))
            })?;
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// Decodes to text; invalid UTF-8 becomes U+FFFD (tiktoken's `errors="replace"`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.decode_bytes(ids)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// tiktoken's `_byte_pair_merge`: returns the part boundaries (start
/// offsets, plus the end) after merging by lowest rank, first minimum wins.
fn byte_pair_merge(ranks: &FxHashMap<Vec<u8>, u32>, piece: &[u8]) -> Vec<(usize, u32)> {
    let mut parts: Vec<(usize, u32)> = Vec::with_capacity(piece.len() + 1);
    let mut min_rank = (u32::MAX, usize::MAX);
    for i in 0..piece.len().saturating_sub(1) {
        let rank = ranks.get(&piece[i..i + 2]).copied().unwrap_or(u32::MAX);
        if rank < min_rank.0 {
            min_rank = (rank, i);
        }
        parts.push((i, rank));
    }
    parts.push((piece.len().saturating_sub(1), u32::MAX));
    parts.push((piece.len(), u32::MAX));

    let get_rank = |parts: &Vec<(usize, u32)>, i: usize| -> u32 {
        if i + 3 < parts.len() {
            ranks
                .get(&piece[parts[i].0..parts[i + 3].0])
                .copied()
                .unwrap_or(u32::MAX)
        } else {
            u32::MAX
        }
    };
    while min_rank.0 != u32::MAX {
        let i = min_rank.1;
        if i > 0 {
            parts[i - 1].1 = get_rank(&parts, i - 1);
        }
        parts[i].1 = get_rank(&parts, i);
        parts.remove(i + 1);
        min_rank = (u32::MAX, usize::MAX);
        for (i, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
            if rank < min_rank.0 {
                min_rank = (rank, i);
            }
        }
    }
    parts
}

type Encoding = (&'static str, &'static str, Vec<(String, u32)>);

fn encoding_for(stem: &str, n_ranks: usize) -> Option<Encoding> {
    let sp = |v: &[(&str, u32)]| v.iter().map(|(s, i)| (s.to_string(), *i)).collect();
    let cl100k = || -> Encoding {
        (
            "cl100k_base",
            CL100K_PATTERN,
            sp(&[
                ("<|endoftext|>", 100257),
                ("<|fim_prefix|>", 100258),
                ("<|fim_middle|>", 100259),
                ("<|fim_suffix|>", 100260),
                ("<|endofprompt|>", 100276),
            ]),
        )
    };
    let o200k = || -> Encoding {
        (
            "o200k_base",
            O200K_PATTERN,
            sp(&[("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)]),
        )
    };
    let r50k = || -> Encoding { ("r50k_base", GPT2_PATTERN, sp(&[("<|endoftext|>", 50256)])) };
    let stem = stem.to_ascii_lowercase();
    if stem.contains("cl100k") {
        Some(cl100k())
    } else if stem.contains("o200k") {
        Some(o200k())
    } else if stem.contains("r50k") || stem.contains("p50k") || stem == "gpt2" {
        Some(r50k())
    } else {
        match n_ranks {
            100256 => Some(cl100k()),
            199998 => Some(o200k()),
            50256 => Some(r50k()),
            _ => None,
        }
    }
}

/// Parses `base64 rank` lines; errors name the line.
pub fn parse_ranks(data: &[u8]) -> std::result::Result<Vec<(Vec<u8>, u32)>, String> {
    let mut out = Vec::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let mut it = line.split(|&b| b == b' ');
        let (Some(tok), Some(rank), None) = (it.next(), it.next(), it.next()) else {
            return Err(format!("line {}: expected `base64 rank`", n + 1));
        };
        let bytes =
            base64_decode(tok).ok_or_else(|| format!("line {}: invalid base64 token", n + 1))?;
        let rank = std::str::from_utf8(rank)
            .ok()
            .and_then(|r| r.parse::<u32>().ok())
            .ok_or_else(|| format!("line {}: invalid rank", n + 1))?;
        out.push((bytes, rank));
    }
    if out.is_empty() {
        return Err("no ranks found".into());
    }
    Ok(out)
}

/// Standard base64 with `=` padding.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | val(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip_cases() {
        assert_eq!(base64_decode(b"IQ==").unwrap(), b"!");
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"YWJj").unwrap(), b"abc");
        assert!(base64_decode(b"a").is_none());
        assert!(base64_decode(b"a!==").is_none());
    }

    #[test]
    fn merges_by_lowest_rank() {
        let mut ranks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        ranks.push((b"ab".to_vec(), 256));
        ranks.push((b"bc".to_vec(), 257));
        ranks.push((b"abc".to_vec(), 258));
        let enc = TiktokenBpe::new("t", ranks, GPT2_PATTERN, vec![("<|e|>".into(), 259)]).unwrap();
        assert_eq!(enc.encode_ordinary("abc"), vec![258]);
        assert_eq!(enc.encode_ordinary("abcb"), vec![258, 98]);
        assert_eq!(enc.encode_ordinary("bcab"), vec![257, 256]);
        assert_eq!(enc.encode_with_specials("a<|e|>c"), vec![97, 259, 99]);
        assert_eq!(enc.decode(&[256, 257]).unwrap(), "abbc");
        assert!(enc.decode(&[999]).is_err());
    }

    #[test]
    fn rejects_malformed_rank_files() {
        assert!(parse_ranks(b"").is_err());
        assert!(parse_ranks(b"IQ== x\n").is_err());
        assert!(parse_ranks(b"IQ==\n").is_err());
        assert!(parse_ranks(b"I== 1\n").is_err());
    }
}

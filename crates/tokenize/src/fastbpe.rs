//! The fast path for HF byte-level BPE tokenizers of the GPT-2 shape.
//!
//! GPT-2's byte-level BPE is the algorithm tiktoken runs for `r50k_base`:
//! a token's rank is its id in `vocab.json`, its bytes are its string read
//! back through GPT-2's byte-to-unicode map, and the split regex is GPT-2's.
//! [`byte_level_engine`] checks that an HF tokenizer has exactly that shape
//! and builds a [`TiktokenBpe`] from its vocabulary; any other tokenizer
//! keeps the HF crate (the `Err` says why).
//!
//! The shape, all required:
//! - no normalizer; pre-tokenizer `ByteLevel` with `use_regex` and no prefix
//!   space; decoder `ByteLevel`; post-processor none or `ByteLevel`;
//! - model `BPE` without dropout, unk token, subword prefix or word suffix,
//!   byte fallback;
//! - every model token is a string of byte-level characters, the 256 single
//!   bytes are all there, and every longer token is the result of exactly
//!   one merge, with ids increasing in merge order, so "lowest merge rank"
//!   (HF) and "lowest id of the merged token" (tiktoken) pick the same pair;
//! - added tokens are ASCII, without lstrip/rstrip/single-word, and all
//!   matched in the same pass (all `normalized` or none): they are matched
//!   in the text (leftmost, longest) as HF does.
//!
//! tiktoken also looks a whole pre-token up before merging, and would merge
//! two adjacent parts whose concatenation is a token made by a different
//! merge; the parity tests check on large generated texts that neither ever
//! changes an id for the GPT-2 vocabulary.

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::tiktoken::{TiktokenBpe, GPT2_PATTERN};

/// GPT-2's `bytes_to_unicode`: the character standing for each byte.
pub fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            u32::from(b)
        } else {
            n += 1;
            255 + n
        };
        out[usize::from(b)] = char::from_u32(c).unwrap_or('\0');
    }
    out
}

fn type_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

/// Builds the tiktoken-style engine for `tk`, or says why it has not the
/// GPT-2 shape.
pub fn byte_level_engine(tk: &tokenizers::Tokenizer) -> std::result::Result<TiktokenBpe, String> {
    let json = |v: Option<Value>| v.unwrap_or(Value::Null);
    if tk.get_normalizer().is_some() {
        return Err("has a normalizer".into());
    }
    let pre = json(
        tk.get_pre_tokenizer()
            .and_then(|p| serde_json::to_value(p).ok()),
    );
    let byte_level_pre = type_of(&pre) == Some("ByteLevel")
        && pre.get("add_prefix_space") == Some(&Value::Bool(false))
        && pre.get("use_regex") != Some(&Value::Bool(false));
    if !byte_level_pre {
        return Err("pre-tokenizer is not ByteLevel(use_regex, no prefix space)".into());
    }
    let dec = json(tk.get_decoder().and_then(|d| serde_json::to_value(d).ok()));
    if type_of(&dec) != Some("ByteLevel") {
        return Err("decoder is not ByteLevel".into());
    }
    if let Some(pp) = tk.get_post_processor() {
        let pp = json(serde_json::to_value(pp).ok());
        if type_of(&pp) != Some("ByteLevel") {
            return Err("post-processor is not ByteLevel".into());
        }
    }
    let model = json(serde_json::to_value(tk.get_model()).ok());
    if type_of(&model) != Some("BPE") {
        return Err("model is not BPE".into());
    }
    for key in [
        "dropout",
        "unk_token",
        "continuing_subword_prefix",
        "end_of_word_suffix",
    ] {
        if !model.get(key).is_none_or(Value::is_null) {
            return Err(format!("BPE has {key}"));
        }
    }
    if model.get("byte_fallback") == Some(&Value::Bool(true)) {
        return Err("BPE has byte_fallback".into());
    }

    // Added tokens become the engine's specials.
    let added = tk.get_added_tokens_decoder();
    let mut specials: Vec<(String, u32)> = Vec::with_capacity(added.len());
    let mut normalized = None;
    for (&id, t) in &added {
        if t.lstrip || t.rstrip || t.single_word || !t.content.is_ascii() || t.content.is_empty() {
            return Err(format!("added token {:?} is not plain ASCII", t.content));
        }
        if *normalized.get_or_insert(t.normalized) != t.normalized {
            return Err("added tokens mix normalized and not".into());
        }
        specials.push((t.content.clone(), id));
    }
    specials.sort_by_key(|&(_, id)| id);

    // Vocabulary: strings of byte-level characters -> bytes.
    let mut char_to_byte: FxHashMap<char, u8> = FxHashMap::default();
    for (b, c) in byte_to_char().into_iter().enumerate() {
        char_to_byte.insert(c, b as u8);
    }
    let to_bytes =
        |s: &str| -> Option<Vec<u8>> { s.chars().map(|c| char_to_byte.get(&c).copied()).collect() };
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or("BPE has no vocab")?;
    let mut ranks: Vec<(Vec<u8>, u32)> = Vec::with_capacity(vocab.len());
    let mut id_of: FxHashMap<&str, u32> = FxHashMap::default();
    let mut singles = 0usize;
    let mut longer = 0usize;
    for (tok, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or("bad vocab id")?;
        if added.contains_key(&id) {
            continue;
        }
        let bytes = to_bytes(tok).ok_or_else(|| format!("token {tok:?} is not byte-level"))?;
        if bytes.len() == 1 {
            singles += 1;
        } else {
            longer += 1;
        }
        id_of.insert(tok.as_str(), id);
        ranks.push((bytes, id));
    }
    if singles != 256 {
        return Err(format!(
            "{singles} of the 256 single bytes are in the vocab"
        ));
    }

    // Merges: each longer token made by exactly one merge, ids increasing.
    let merges = model
        .get("merges")
        .and_then(Value::as_array)
        .ok_or("BPE has no merges")?;
    if merges.len() != longer {
        return Err(format!(
            "{} merges for {longer} multi-byte tokens",
            merges.len()
        ));
    }
    let mut last: Option<u32> = None;
    let mut merged = String::new();
    for m in merges {
        let (a, b) = match m {
            Value::Array(p) if p.len() == 2 => (p[0].as_str(), p[1].as_str()),
            Value::String(s) => {
                let mut it = s.splitn(2, ' ');
                (it.next(), it.next())
            }
            _ => (None, None),
        };
        let (Some(a), Some(b)) = (a, b) else {
            return Err(format!("bad merge {m}"));
        };
        merged.clear();
        merged.push_str(a);
        merged.push_str(b);
        let (Some(&ia), Some(&ib), Some(&id)) =
            (id_of.get(a), id_of.get(b), id_of.get(merged.as_str()))
        else {
            return Err(format!("merge {a:?} {b:?} is not in the vocab"));
        };
        if last.is_some_and(|l| id <= l) || ia >= id || ib >= id {
            return Err(format!("merge {a:?} {b:?} is out of id order"));
        }
        last = Some(id);
    }
    TiktokenBpe::new("gpt2-byte-level", ranks, GPT2_PATTERN, specials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_gpt2s() {
        let m = byte_to_char();
        assert_eq!(m[usize::from(b'!')], '!');
        assert_eq!(m[usize::from(b' ')], 'Ġ');
        assert_eq!(m[usize::from(b'\n')], 'Ċ');
        assert_eq!(m[0], 'Ā');
        let mut all: Vec<char> = m.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 256);
    }
}

//! fastText's dictionary: words and labels, tokenization (`readWord`,
//! `getLine`), character n-grams and word n-grams hashed into buckets.

use std::collections::HashMap;
use std::io::Read;

use super::reader::Reader;
use super::FastTextError;

/// The end-of-sentence token that fastText appends at every newline.
pub(crate) const EOS: &[u8] = b"</s>";
const BOW: u8 = b'<';
const EOW: u8 = b'>';
/// fastText's default label prefix (not stored in the model file).
pub(crate) const LABEL_PREFIX: &[u8] = b"__label__";

/// The 32-bit FNV-1a variant fastText uses, with its quirk: every byte is
/// sign-extended through `int8_t` before the xor.
pub(crate) fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as i8 as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// `Dictionary::readWord`'s separators.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

#[derive(Clone, Debug)]
pub(crate) struct Dictionary {
    /// Word or label → id; ids `>= nwords` are labels.
    word2int: HashMap<Box<[u8]>, i32>,
    pub(crate) nwords: usize,
    /// Labels as stored (with their prefix).
    pub(crate) labels: Vec<Vec<u8>>,
    pub(crate) label_counts: Vec<i64>,
    /// `None`: not pruned (`pruneidx_size == -1`), every bucket is a row.
    /// `Some(map)`: quantized with a cutoff, only the buckets in the map
    /// have rows (`nwords + map[bucket]`).
    pub(crate) pruneidx: Option<HashMap<i32, i32>>,
    minn: i32,
    maxn: i32,
    bucket: i32,
    word_ngrams: i32,
}

/// The settings from `Args` that the dictionary needs.
pub(crate) struct DictArgs {
    pub minn: i32,
    pub maxn: i32,
    pub bucket: i32,
    pub word_ngrams: i32,
}

impl Dictionary {
    /// `Dictionary::load`.
    pub(crate) fn load<R: Read>(r: &mut Reader<R>, args: DictArgs) -> Result<Self, FastTextError> {
        let size = r.i32("dictionary.size")?;
        let nwords = r.i32("dictionary.nwords")?;
        let nlabels = r.i32("dictionary.nlabels")?;
        let _ntokens = r.i64("dictionary.ntokens")?;
        let pruneidx_size = r.i64("dictionary.pruneidx_size")?;
        // Each entry takes at least a NUL, an i64 count and an i8 type.
        let size = r.count("dictionary.size", size as i64, 10)?;
        let nwords = r.count("dictionary.nwords", nwords as i64, 10)?;
        let nlabels = r.count("dictionary.nlabels", nlabels as i64, 10)?;
        if nwords.checked_add(nlabels) != Some(size) {
            return Err(r.error(
                "dictionary.size",
                format!("= {size}, but nwords + nlabels = {nwords} + {nlabels}"),
            ));
        }
        if nlabels == 0 {
            return Err(r.error("dictionary.nlabels", "= 0: not a supervised model"));
        }
        let mut word2int = HashMap::with_capacity(nwords);
        let mut labels = Vec::with_capacity(nlabels);
        let mut label_counts = Vec::with_capacity(nlabels);
        for i in 0..size {
            let field = format!("dictionary.entries[{i}]");
            let word = r.cstring(&format!("{field}.word"))?;
            let count = r.i64(&format!("{field}.count"))?;
            let kind = r.u8(&format!("{field}.type"))?;
            // fastText sorts words before labels; anything else would let a
            // word id point past the words.
            let want = u8::from(i >= nwords);
            if kind != want {
                return Err(r.error(
                    &format!("{field}.type"),
                    format!("= {kind}: expected {want} (words first, then labels)"),
                ));
            }
            if i < nwords {
                word2int.insert(word.into_boxed_slice(), i as i32);
            } else {
                word2int.insert(word.clone().into_boxed_slice(), i as i32);
                if count < 0 {
                    return Err(r.error(
                        &format!("{field}.count"),
                        format!("= {count}: must not be negative"),
                    ));
                }
                labels.push(word);
                label_counts.push(count);
            }
        }
        let pruneidx = if pruneidx_size < 0 {
            None
        } else {
            let n = r.count("dictionary.pruneidx_size", pruneidx_size, 8)?;
            let mut map = HashMap::with_capacity(n);
            for i in 0..n {
                let from = r.i32(&format!("dictionary.pruneidx[{i}].bucket"))?;
                let to = r.i32(&format!("dictionary.pruneidx[{i}].row"))?;
                if to < 0 {
                    return Err(r.error(
                        &format!("dictionary.pruneidx[{i}].row"),
                        format!("= {to}: must not be negative"),
                    ));
                }
                map.insert(from, to);
            }
            Some(map)
        };
        Ok(Dictionary {
            word2int,
            nwords,
            labels,
            label_counts,
            pruneidx,
            minn: args.minn,
            maxn: args.maxn,
            bucket: args.bucket,
            word_ngrams: args.word_ngrams,
        })
    }

    /// The number of input rows the ids of [`Self::line`] can reach.
    pub(crate) fn input_rows_needed(&self) -> usize {
        let buckets = match &self.pruneidx {
            None => self.bucket.max(0) as usize,
            Some(map) => map.values().map(|&v| v as usize + 1).max().unwrap_or(0),
        };
        self.nwords + buckets
    }

    /// `pushHash`: bucket `id` → input row, if the bucket has one.
    fn push_hash(&self, ids: &mut Vec<u32>, id: i64) {
        let id = match &self.pruneidx {
            None => id,
            Some(map) => match i32::try_from(id).ok().and_then(|id| map.get(&id)) {
                Some(&to) => to as i64,
                None => return,
            },
        };
        if id >= 0 {
            ids.push((self.nwords as i64 + id) as u32);
        }
    }

    /// `computeSubwords`: the character n-grams (`minn..=maxn` UTF-8
    /// characters) of `word`, which already carries its `<` `>` boundaries.
    fn push_subwords(&self, ids: &mut Vec<u32>, word: &[u8]) {
        if self.bucket <= 0 || self.maxn <= 0 {
            return;
        }
        let maxn = self.maxn as usize;
        let minn = self.minn.max(0) as usize;
        let len = word.len();
        for i in 0..len {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            let mut j = i;
            let mut n = 1;
            while j < len && n <= maxn {
                j += 1;
                while j < len && word[j] & 0xC0 == 0x80 {
                    j += 1;
                }
                if n >= minn && !(n == 1 && (i == 0 || j == len)) {
                    let h = hash(&word[i..j]) % self.bucket as u32;
                    self.push_hash(ids, h as i64);
                }
                n += 1;
            }
        }
    }

    /// `Dictionary::getLine` for prediction: the input rows of the first
    /// line of `text`, as fastText reads `text + "\n"`. With
    /// `newline_is_space`, newlines inside `text` are read as spaces (as
    /// after datatrove's `text.replace("\n", " ")`), so the whole text is
    /// one line. `ids` and `scratch` are cleared first.
    pub(crate) fn line(
        &self,
        text: &str,
        newline_is_space: bool,
        ids: &mut Vec<u32>,
        word_hashes: &mut Vec<i32>,
        scratch: &mut Vec<u8>,
    ) {
        ids.clear();
        word_hashes.clear();
        let bytes = text.as_bytes();
        let len = bytes.len();
        // Byte `len` is the "\n" that fastText's Python `predict` appends.
        let at = |i: usize| -> u8 {
            match bytes.get(i) {
                Some(b'\n') if newline_is_space => b' ',
                Some(&b) => b,
                None => b'\n',
            }
        };
        let mut pos = 0;
        while pos <= len {
            // readWord: skip separators; a newline before any byte is EOS.
            let c = at(pos);
            if is_space(c) {
                pos += 1;
                if c == b'\n' {
                    self.add_token(EOS, ids, word_hashes, scratch);
                    break;
                }
                continue;
            }
            let start = pos;
            while pos < len && !is_space(at(pos)) {
                pos += 1;
            }
            let token = &bytes[start..pos];
            self.add_token(token, ids, word_hashes, scratch);
            if token == EOS {
                break;
            }
        }
        self.add_word_ngrams(ids, word_hashes);
    }

    fn add_token(
        &self,
        token: &[u8],
        ids: &mut Vec<u32>,
        hashes: &mut Vec<i32>,
        buf: &mut Vec<u8>,
    ) {
        let wid = self.word2int.get(token).copied();
        // getType: labels, and unknown tokens with the label prefix, are not
        // input.
        let is_label = match wid {
            Some(wid) => wid as usize >= self.nwords,
            None => token.starts_with(LABEL_PREFIX),
        };
        if is_label {
            return;
        }
        match wid {
            Some(wid) => {
                ids.push(wid as u32);
                if token != EOS {
                    buf.clear();
                    buf.push(BOW);
                    buf.extend_from_slice(token);
                    buf.push(EOW);
                    self.push_subwords(ids, buf);
                }
            }
            None if token != EOS => {
                buf.clear();
                buf.push(BOW);
                buf.extend_from_slice(token);
                buf.push(EOW);
                self.push_subwords(ids, buf);
            }
            None => {}
        }
        hashes.push(hash(token) as i32);
    }

    /// `addWordNgrams`: note the sign extension of the `int32_t` hashes to
    /// `uint64_t`, as in fastText.
    fn add_word_ngrams(&self, ids: &mut Vec<u32>, hashes: &[i32]) {
        if self.word_ngrams <= 1 || self.bucket <= 0 {
            return;
        }
        let n = self.word_ngrams as usize;
        let bucket = self.bucket as u64;
        for i in 0..hashes.len() {
            let mut h = hashes[i] as i64 as u64;
            for &hj in hashes.iter().take(i.saturating_add(n)).skip(i + 1) {
                h = h.wrapping_mul(116_049_371).wrapping_add(hj as i64 as u64);
                self.push_hash(ids, (h % bucket) as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sign_extends_bytes() {
        // Values computed with fastText's C++ hash.
        assert_eq!(hash(b""), 2_166_136_261);
        assert_eq!(hash(b"a"), 0xe40c292c);
        // A byte >= 0x80 differs from plain FNV-1a (which gives 0x0c0c0c0c
        // ^ ...) because of the int8 cast.
        let plain = (2_166_136_261u32 ^ 0xe9).wrapping_mul(16_777_619);
        assert_ne!(hash(&[0xe9]), plain);
        let quirk = (2_166_136_261u32 ^ 0xffff_ffe9).wrapping_mul(16_777_619);
        assert_eq!(hash(&[0xe9]), quirk);
    }
}

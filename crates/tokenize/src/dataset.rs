//! Reading token shards for training: a directory of `.tok` shards seen as
//! one token stream, with three ways to draw from it.
//!
//! * [`TokenDataset::random_windows`]: windows of `len` tokens at uniformly
//!   random positions (nanoGPT's `get_batch`), never crossing a shard end;
//! * [`TokenDataset::sequences`]: consecutive packed sequences of `T + 1`
//!   tokens that step by `T`, so inputs `x = s[..T]` and targets
//!   `y = s[1..]` cover every token once (llm.c's DataLoader); they run
//!   across shard boundaries;
//! * [`TokenDataset::doc_batches`]: batches of whole documents, at most
//!   `max_tokens` each (a longer document is cut into `max_tokens` pieces).
//!
//! Everything is deterministic: shards are read in name order and the
//! random windows come from a seeded generator.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::shard::{TokenShard, EXTENSION};
use crate::{Result, TokenizeError};

/// The `.tok` files directly inside `dir`, sorted by name.
pub fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TokenizeError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == EXTENSION)
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// All shards of a directory, as one stream of tokens.
#[derive(Debug)]
pub struct TokenDataset {
    shards: Vec<TokenShard>,
    /// `starts[i]` = global position of shard i's first token; last = total.
    starts: Vec<u64>,
}

impl TokenDataset {
    /// Opens every `.tok` shard of `dir` (or the single shard `dir` names).
    pub fn open(dir: &Path) -> Result<Self> {
        let paths = if dir.is_file() {
            vec![dir.to_path_buf()]
        } else {
            shard_paths(dir)?
        };
        if paths.is_empty() {
            return Err(TokenizeError::shard(
                dir,
                "no .tok shards found",
                "point at the --output directory of `refinery tokenize`",
            ));
        }
        let shards = paths
            .iter()
            .map(|p| TokenShard::open(p))
            .collect::<Result<Vec<_>>>()?;
        Self::from_shards(shards)
    }

    /// Builds a dataset from opened shards; they must share the vocab size.
    pub fn from_shards(shards: Vec<TokenShard>) -> Result<Self> {
        if let Some(first) = shards.first() {
            let v = first.header().vocab_size;
            if let Some(other) = shards.iter().find(|s| s.header().vocab_size != v) {
                return Err(TokenizeError::shard(
                    other.path(),
                    format!(
                        "vocab size {} differs from {} in {}",
                        other.header().vocab_size,
                        v,
                        first.path().display()
                    ),
                    "the directory mixes shards of different tokenizers: keep one tokenizer per directory",
                ));
            }
        }
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total = 0;
        for s in &shards {
            starts.push(total);
            total += s.len();
        }
        starts.push(total);
        Ok(TokenDataset { shards, starts })
    }

    pub fn shards(&self) -> &[TokenShard] {
        &self.shards
    }

    /// Total tokens (separators included).
    pub fn num_tokens(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// Total documents.
    pub fn num_docs(&self) -> u64 {
        self.shards.iter().map(|s| s.num_docs()).sum()
    }

    /// Vocab size shared by all shards.
    pub fn vocab_size(&self) -> u64 {
        self.shards.first().map_or(0, |s| s.header().vocab_size)
    }

    /// Checks that every token id of every shard is below `limit` (a
    /// model's vocabulary size); see [`TokenShard::check_ids_below`].
    pub fn check_ids_below(&self, limit: u64) -> Result<()> {
        self.shards
            .iter()
            .try_for_each(|s| s.check_ids_below(limit))
    }

    /// The largest token id of all shards (`None` when there are no tokens).
    pub fn max_id(&self) -> Option<u32> {
        self.shards.iter().filter_map(TokenShard::max_id).max()
    }

    /// Appends the global token range (clamped) to `out`, across shards.
    pub fn read_into(&self, range: Range<u64>, out: &mut Vec<u32>) {
        let end = range.end.min(self.num_tokens());
        let mut pos = range.start;
        while pos < end {
            // The shard holding `pos`: the last one starting at or before it.
            let i = self.starts.partition_point(|&s| s <= pos) - 1;
            let local = pos - self.starts[i];
            let take = (end - pos).min(self.shards[i].len() - local);
            self.shards[i].read_into(local..local + take, out);
            pos += take;
        }
    }

    /// Endless windows of `len` tokens at random positions, each inside a
    /// single shard; shards shorter than `len` are skipped. Same seed, same
    /// windows. Errors if no shard holds `len` tokens.
    pub fn random_windows(&self, len: u64, seed: u64) -> Result<RandomWindows<'_>> {
        let mut cum = Vec::with_capacity(self.shards.len());
        let mut total = 0u64;
        for s in &self.shards {
            total += (s.len() + 1).saturating_sub(len.max(1));
            cum.push(total);
        }
        if total == 0 || len == 0 {
            return Err(TokenizeError::Invalid(format!(
                "no shard holds a window of {len} tokens (largest: {})",
                self.shards.iter().map(|s| s.len()).max().unwrap_or(0)
            )));
        }
        Ok(RandomWindows {
            ds: self,
            len,
            cum,
            state: seed,
        })
    }

    /// Consecutive sequences of `seq_len + 1` tokens stepping by `seq_len`,
    /// from the start of the stream (see the module docs).
    pub fn sequences(&self, seq_len: u64) -> Sequences<'_> {
        Sequences {
            ds: self,
            seq_len: seq_len.max(1),
            pos: 0,
        }
    }

    /// Batches of whole documents of at most `max_tokens` tokens.
    pub fn doc_batches(&self, max_tokens: u64) -> DocBatches<'_> {
        DocBatches {
            ds: self,
            max_tokens: max_tokens.max(1),
            shard: 0,
            doc: 0,
            carry: None,
        }
    }
}

/// See [`TokenDataset::random_windows`].
pub struct RandomWindows<'a> {
    ds: &'a TokenDataset,
    len: u64,
    cum: Vec<u64>,
    state: u64,
}

impl RandomWindows<'_> {
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for RandomWindows<'_> {
    type Item = Vec<u32>;
    fn next(&mut self) -> Option<Vec<u32>> {
        let total = *self.cum.last()?;
        let r = ((self.next_u64() as u128 * total as u128) >> 64) as u64;
        let i = self.cum.partition_point(|&c| c <= r);
        let local = r - if i == 0 { 0 } else { self.cum[i - 1] };
        Some(self.ds.shards[i].tokens(local..local + self.len))
    }
}

/// See [`TokenDataset::sequences`].
pub struct Sequences<'a> {
    ds: &'a TokenDataset,
    seq_len: u64,
    pos: u64,
}

impl Iterator for Sequences<'_> {
    type Item = Vec<u32>;
    fn next(&mut self) -> Option<Vec<u32>> {
        if self.pos + self.seq_len + 1 > self.ds.num_tokens() {
            return None;
        }
        let mut v = Vec::with_capacity(self.seq_len as usize + 1);
        self.ds
            .read_into(self.pos..self.pos + self.seq_len + 1, &mut v);
        self.pos += self.seq_len;
        Some(v)
    }
}

/// See [`TokenDataset::doc_batches`].
pub struct DocBatches<'a> {
    ds: &'a TokenDataset,
    max_tokens: u64,
    shard: usize,
    doc: u64,
    /// The rest of a document longer than `max_tokens`.
    carry: Option<Range<u64>>,
}

impl DocBatches<'_> {
    fn next_doc(&mut self) -> Option<(usize, Range<u64>)> {
        loop {
            let s = self.ds.shards.get(self.shard)?;
            if let Some(r) = s.doc_range(self.doc) {
                self.doc += 1;
                return Some((self.shard, r));
            }
            self.shard += 1;
            self.doc = 0;
        }
    }
}

impl Iterator for DocBatches<'_> {
    type Item = Vec<Vec<u32>>;
    fn next(&mut self) -> Option<Vec<Vec<u32>>> {
        if let Some(r) = self.carry.take() {
            let shard = &self.ds.shards[self.shard];
            let end = (r.start + self.max_tokens).min(r.end);
            if end < r.end {
                self.carry = Some(end..r.end);
            }
            return Some(vec![shard.tokens(r.start..end)]);
        }
        let mut batch = Vec::new();
        let mut used = 0;
        loop {
            let (save_shard, save_doc) = (self.shard, self.doc);
            let Some((si, r)) = self.next_doc() else {
                break;
            };
            let n = r.end - r.start;
            if n > self.max_tokens {
                if batch.is_empty() {
                    let shard = &self.ds.shards[si];
                    self.carry = Some(r.start + self.max_tokens..r.end);
                    return Some(vec![shard.tokens(r.start..r.start + self.max_tokens)]);
                }
                (self.shard, self.doc) = (save_shard, save_doc);
                break;
            }
            if used + n > self.max_tokens {
                (self.shard, self.doc) = (save_shard, save_doc);
                break;
            }
            used += n;
            batch.push(self.ds.shards[si].tokens(r));
        }
        (!batch.is_empty()).then_some(batch)
    }
}

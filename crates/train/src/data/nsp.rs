//! Sentence pairs for BERT's next-sentence prediction, sampled from token shards.
//!
//! Token shards carry no sentence boundaries, so a document is cut into *segments*: a
//! segment ends after any of the configured boundary token ids (e.g. the ids of `.`, `!`,
//! `?`, newline), and a segment reaching `max_segment_tokens` is cut there (with no boundary
//! ids, segments are fixed-size chunks).
//!
//! Pair `g` (= `position * batch_size + row`) follows BERT's `create_instances_from_document`
//! (HF `TextDatasetForNextSentencePrediction`), made stateless: a generator seeded by
//! `(seed, g)` draws
//! 1. the label: random next with probability ½ (decided first, so the rate is exactly ½ in
//!    expectation whatever the documents look like);
//! 2. the target length: `seq_len − 3`, or with `short_seq_prob` a uniform length in
//!    `2..=seq_len − 3`;
//! 3. a token position uniformly over the split (so documents count by length); the chunk
//!    starts at the beginning of the segment holding it and takes whole segments until it
//!    reaches the target (and, for a true pair, has at least two segments — otherwise another
//!    position is drawn);
//! 4. A = the chunk's first `a_end` segments, `a_end` uniform in `1..segments`;
//! 5. B = the rest of the chunk (label 0), or (label 1) segments from a uniformly drawn
//!    *other* document, starting at a random segment, up to `target − |A|` tokens.
//!
//! The pair is then cut to `seq_len − 3` tokens like BERT's `truncate_seq_pair` (always the
//! longer side first), but A loses tokens at its front and B at its back, so the A|B junction
//! of a true pair stays contiguous text. Row: `[CLS] A [SEP] B [SEP] [PAD]…`, token types 0
//! for `[CLS] A [SEP]`, 1 for `B [SEP]`, 0 for padding.

use std::ops::Range;
use std::sync::Arc;

use super::split::DocTable;
use super::{splitmix64, BatchSource, PairBatch};
use crate::TrainError;

/// Special token ids of a BERT vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NspSpecials {
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
}

/// Checked segmentation and sampling options.
#[derive(Debug, Clone, PartialEq)]
pub struct NspOptions {
    /// A segment ends after any of these ids.
    pub boundary_ids: Vec<u32>,
    /// Longest segment; longer stretches are cut into pieces of this size.
    pub max_segment_tokens: usize,
    /// Probability of a shorter target length (BERT: 0.1).
    pub short_seq_prob: f64,
}

/// Where a pair came from: global document indices and global token ranges of the shard
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NspPair {
    pub doc_a: u64,
    pub a: Range<u64>,
    pub doc_b: u64,
    pub b: Range<u64>,
    pub is_random_next: bool,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// NSP pairs over one split of a shard directory; implements [`BatchSource`](super::BatchSource)`<PairBatch>`.
#[derive(Debug, Clone)]
pub struct NspPairs {
    table: Arc<DocTable>,
    specials: NspSpecials,
    boundary: Vec<u32>,
    max_segment: u64,
    short_seq_prob: f64,
    seq_len: usize,
    batch_size: usize,
    seed: u64,
    /// Cumulative content tokens of the split's documents.
    cum: Vec<u64>,
    /// A document with at least two segments (used if sampling keeps missing).
    fallback: usize,
    position: u64,
}

impl NspPairs {
    /// Errors if `seq_len < 5`, if the split has fewer than two documents, or if no
    /// document has two segments (a true next segment is then impossible).
    pub fn new(
        table: Arc<DocTable>,
        specials: NspSpecials,
        options: &NspOptions,
        seq_len: usize,
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let dir = table.dir().to_path_buf();
        if seq_len < 5 || batch_size == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "data: NSP needs seq_len ≥ 5 (got {seq_len}) and batch_size ≥ 1 (got {batch_size})"
            )));
        }
        if table.len() < 2 {
            return Err(TrainError::Data {
                path: dir,
                message: format!(
                    "NSP needs at least two documents in the split, found {}",
                    table.len()
                ),
            });
        }
        let max_tokens = (seq_len - 3) as u64;
        let max_segment = (options.max_segment_tokens as u64).clamp(1, (max_tokens / 2).max(1));
        let mut boundary = options.boundary_ids.clone();
        boundary.sort_unstable();
        boundary.dedup();
        let mut cum = Vec::with_capacity(table.len() + 1);
        cum.push(0u64);
        for i in 0..table.len() {
            cum.push(cum[i] + table.content_len(i));
        }
        let mut me = NspPairs {
            table,
            specials,
            boundary,
            max_segment,
            short_seq_prob: options.short_seq_prob,
            seq_len,
            batch_size,
            seed,
            cum,
            fallback: 0,
            position: 0,
        };
        let fallback = (0..me.table.len()).find(|&i| {
            let c = me.table.content(i);
            me.segments(c.start, c.end, 2, 2).len() >= 2
        });
        match fallback {
            Some(i) => me.fallback = i,
            None => {
                return Err(TrainError::Data {
                    path: dir,
                    message: "no document has two segments, so NSP has no true next segment: \
                              add boundary ids or lower max_segment_tokens"
                        .into(),
                })
            }
        }
        Ok(me)
    }

    fn is_boundary(&self, t: u32) -> bool {
        self.boundary.binary_search(&t).is_ok()
    }

    /// Start of the segment holding global position `q` of document `i`.
    fn snap_start(&self, i: usize, q: u64) -> u64 {
        let c = self.table.content(i);
        let lo = q.saturating_sub(self.max_segment).max(c.start);
        let mut buf = Vec::new();
        self.table.read_into(lo..q, &mut buf);
        match buf.iter().rposition(|&t| self.is_boundary(t)) {
            Some(k) => lo + k as u64 + 1,
            None if lo == c.start => c.start,
            None => q,
        }
    }

    /// Ends of the whole segments from `from` (a segment start) until they hold `target`
    /// tokens and at least `min_segments` segments, or the document ends at `end`.
    fn segments(&self, from: u64, end: u64, target: u64, min_segments: usize) -> Vec<u64> {
        let window = (from + target + 2 * self.max_segment).min(end);
        let mut buf = Vec::new();
        self.table.read_into(from..window, &mut buf);
        let mut ends = Vec::new();
        let mut seg = 0u64;
        for (k, &t) in buf.iter().enumerate() {
            seg += 1;
            let pos = from + k as u64 + 1;
            if self.is_boundary(t) || seg == self.max_segment || pos == window {
                ends.push(pos);
                seg = 0;
                if pos - from >= target && ends.len() >= min_segments {
                    break;
                }
            }
        }
        ends
    }

    fn doc_at(&self, p: u64) -> (usize, u64) {
        let i = self.cum.partition_point(|&c| c <= p) - 1;
        (i, self.table.content(i).start + (p - self.cum[i]))
    }

    /// The pair for global pair index `g` (= `position * batch_size + row`).
    pub fn pair(&self, g: u64) -> NspPair {
        let mut rng = Rng(splitmix64(self.seed ^ splitmix64(g ^ 0x05E9_7E4C)));
        let is_random = rng.next() >> 63 == 1;
        let max_tokens = (self.seq_len - 3) as u64;
        let target = if rng.unit() < self.short_seq_prob {
            2 + rng.below(max_tokens - 1)
        } else {
            max_tokens
        };
        let need = if is_random { 1 } else { 2 };
        let total = self.cum[self.cum.len() - 1];
        let mut pick = None;
        for _ in 0..64 {
            let (i, q) = self.doc_at(rng.below(total));
            let s = self.snap_start(i, q);
            let ends = self.segments(s, self.table.content(i).end, target, need);
            if ends.len() >= need {
                pick = Some((i, s, ends));
                break;
            }
        }
        let (i, s, ends) = pick.unwrap_or_else(|| {
            let c = self.table.content(self.fallback);
            (
                self.fallback,
                c.start,
                self.segments(c.start, c.end, target, 2),
            )
        });
        let a_end = if ends.len() >= 2 {
            1 + rng.below(ends.len() as u64 - 1) as usize
        } else {
            1
        };
        let mut a = s..ends[a_end - 1];
        let (j, mut b) = if is_random {
            let n = self.table.len() as u64;
            let j = ((i as u64 + 1 + rng.below(n - 1)) % n) as usize;
            let c = self.table.content(j);
            let q = c.start + rng.below(c.end - c.start);
            let s2 = self.snap_start(j, q);
            let target_b = target.saturating_sub(a.end - a.start).max(1);
            let e2 = self.segments(s2, c.end, target_b, 1);
            (j, s2..e2.last().copied().unwrap_or(s2 + 1))
        } else {
            (i, a.end..ends[ends.len() - 1])
        };
        while (a.end - a.start) + (b.end - b.start) > max_tokens {
            if a.end - a.start > b.end - b.start {
                a.start += 1;
            } else {
                b.end -= 1;
            }
        }
        NspPair {
            doc_a: self.table.doc_id(i),
            a,
            doc_b: self.table.doc_id(j),
            b,
            is_random_next: is_random,
        }
    }

    /// The batch at `position` without moving.
    pub fn batch_at(&self, position: u64) -> PairBatch {
        let (bs, t) = (self.batch_size, self.seq_len);
        let mut ids = Vec::with_capacity(bs * t);
        let mut types = Vec::with_capacity(bs * t);
        let mut mask = Vec::with_capacity(bs * t);
        let mut labels = Vec::with_capacity(bs);
        let sp = self.specials;
        let mut buf = Vec::with_capacity(t);
        for r in 0..bs as u64 {
            let p = self.pair(position * bs as u64 + r);
            buf.clear();
            buf.push(sp.cls);
            self.table.read_into(p.a.clone(), &mut buf);
            buf.push(sp.sep);
            let first = buf.len();
            self.table.read_into(p.b.clone(), &mut buf);
            buf.push(sp.sep);
            let real = buf.len();
            ids.extend(buf.iter().map(|&x| i64::from(x)));
            ids.extend(std::iter::repeat_n(i64::from(sp.pad), t - real));
            types.extend(std::iter::repeat_n(0, first));
            types.extend(std::iter::repeat_n(1, real - first));
            types.extend(std::iter::repeat_n(0, t - real));
            mask.extend(std::iter::repeat_n(1, real));
            mask.extend(std::iter::repeat_n(0, t - real));
            labels.push(i64::from(p.is_random_next));
        }
        PairBatch {
            batch_size: bs,
            seq_len: t,
            input_ids: ids,
            token_type_ids: types,
            attention_mask: mask,
            is_random_next: labels,
        }
    }
}

impl BatchSource<PairBatch> for NspPairs {
    fn next_batch(&mut self) -> PairBatch {
        let b = self.batch_at(self.position);
        self.position += 1;
        b
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

//! Weighted mixing of several row sources.
//!
//! Global rows (`position * batch_size + r`) are grouped in blocks of [`MIX_BLOCK`] rows.
//! Source `s` gets `A_s(b + 1) - A_s(b)` rows of block `b`, where `A_s(n) = ⌊n · K · w_s⌋`
//! for every source but the heaviest, which takes the rest, so after `n` blocks each source
//! has served its share up to one row. The block's source sequence is shuffled with a
//! generator seeded by `(seed, b)`. Row `g` thus comes from a source that is a pure function
//! of `(seed, g)`, and it is that source's row number `A_s(b) + (rows of s earlier in the
//! block)`, so each source walks through its own rows (and epochs) in its own order and
//! `seek` is exact.

use super::shards::RowSource;
use super::{splitmix64, BatchSource, LmBatch};
use crate::TrainError;

/// Rows per mixing block (K).
pub const MIX_BLOCK: u64 = 1024;
/// At most this many sources (K ≥ S·(S−1) keeps every block count non-negative).
pub const MAX_MIX_SOURCES: usize = 32;

/// Weighted mixture of row sources; implements [`BatchSource`](super::BatchSource)`<LmBatch>`.
pub struct MixedBatches {
    sources: Vec<Box<dyn RowSource>>,
    weights: Vec<f64>,
    heaviest: usize,
    batch_size: usize,
    seq_len: usize,
    seed: u64,
    position: u64,
    /// Cached block: (block index, source of each row, source-local row of each row).
    block: Option<(u64, Vec<u32>, Vec<u64>)>,
}

impl std::fmt::Debug for MixedBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MixedBatches")
            .field("weights", &self.weights)
            .field("batch_size", &self.batch_size)
            .field("seq_len", &self.seq_len)
            .field("seed", &self.seed)
            .field("position", &self.position)
            .finish()
    }
}

impl MixedBatches {
    /// `weights` (one per source, positive, normalised here); sources share `seq_len`.
    pub fn new(
        sources: Vec<Box<dyn RowSource>>,
        weights: &[f64],
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(format!("data.sources: {m}")));
        if sources.is_empty() || sources.len() != weights.len() {
            return bad(format!(
                "{} sources but {} weights",
                sources.len(),
                weights.len()
            ));
        }
        if sources.len() > MAX_MIX_SOURCES {
            return bad(format!(
                "{} sources, at most {MAX_MIX_SOURCES} can be mixed",
                sources.len()
            ));
        }
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return bad(format!("weight {w} is not a positive number"));
        }
        let seq_len = sources[0].seq_len();
        if sources.iter().any(|s| s.seq_len() != seq_len) {
            return bad("sources differ in seq_len".into());
        }
        if batch_size == 0 {
            return bad("batch_size must be positive".into());
        }
        let total: f64 = weights.iter().sum();
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut heaviest = 0;
        for (i, w) in weights.iter().enumerate() {
            if *w > weights[heaviest] {
                heaviest = i;
            }
        }
        Ok(MixedBatches {
            sources,
            weights,
            heaviest,
            batch_size,
            seq_len,
            seed,
            position: 0,
            block: None,
        })
    }

    /// Normalised weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Rows source `s` has served in the first `blocks` blocks.
    fn served(&self, s: usize, blocks: u64) -> u64 {
        let rows = blocks * MIX_BLOCK;
        let floor = |w: f64| (rows as f64 * w).floor() as u64;
        if s == self.heaviest {
            let others: u64 = (0..self.sources.len())
                .filter(|&i| i != self.heaviest)
                .map(|i| floor(self.weights[i]))
                .sum();
            rows - others
        } else {
            floor(self.weights[s])
        }
    }

    fn build_block(&self, b: u64) -> (Vec<u32>, Vec<u64>) {
        let mut seq = Vec::with_capacity(MIX_BLOCK as usize);
        let starts: Vec<u64> = (0..self.sources.len()).map(|s| self.served(s, b)).collect();
        for (s, &start) in starts.iter().enumerate() {
            let n = self.served(s, b + 1).saturating_sub(start);
            seq.extend(std::iter::repeat_n(s as u32, n as usize));
        }
        // The counts sum to K by construction; this only guards float edge cases.
        seq.resize(MIX_BLOCK as usize, self.heaviest as u32);
        let mut state = splitmix64(self.seed ^ splitmix64(b ^ 0x0031_C5ED));
        for i in (1..seq.len()).rev() {
            state = splitmix64(state);
            let j = ((state as u128 * (i as u128 + 1)) >> 64) as usize;
            seq.swap(i, j);
        }
        let mut next = starts;
        let local = seq
            .iter()
            .map(|&s| {
                let r = next[s as usize];
                next[s as usize] += 1;
                r
            })
            .collect();
        (seq, local)
    }

    /// `(source, source-local row)` of global row `g`.
    pub fn assignment(&mut self, g: u64) -> (usize, u64) {
        let b = g / MIX_BLOCK;
        if self.block.as_ref().map(|x| x.0) != Some(b) {
            let (seq, local) = self.build_block(b);
            self.block = Some((b, seq, local));
        }
        let o = (g % MIX_BLOCK) as usize;
        match &self.block {
            Some((_, seq, local)) => (seq[o] as usize, local[o]),
            None => (self.heaviest, g),
        }
    }
}

impl BatchSource<LmBatch> for MixedBatches {
    fn next_batch(&mut self) -> LmBatch {
        let (b, t) = (self.batch_size, self.seq_len);
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for r in 0..b as u64 {
            let (s, local) = self.assignment(self.position * b as u64 + r);
            self.sources[s].row(local, &mut ids, &mut mask);
        }
        self.position += 1;
        let has_mask = self.sources.iter().any(|s| s.has_mask());
        LmBatch {
            batch_size: b,
            seq_len: t,
            input_ids: ids,
            attention_mask: has_mask.then_some(mask),
        }
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

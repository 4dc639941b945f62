//! Language-model rows streamed from memory-mapped token shards.
//!
//! A [`ShardSequences`] sees the documents of one split ([`DocTable`]) as a fixed list of rows
//! of `seq_len` tokens and serves them in a shuffled order that is a pure function of
//! `(seed, epoch, row)`: global row `g` (= `position * batch_size + r`) is row
//! `permute_index(g % rows, rows, key(seed, g / rows))` of the list. The permutation is a
//! keyed Feistel network with cycle walking, so it needs O(1) memory and `seek` is exact.

use std::sync::Arc;

use super::split::DocTable;
use super::{splitmix64, BatchSource, LmBatch};
use crate::TrainError;

/// A bijection of `0..n` keyed by `key` (4-round Feistel network over the smallest even
/// power of two ≥ n, with cycle walking back into `0..n`). `i` must be below `n`.
pub fn permute_index(i: u64, n: u64, key: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = i;
    loop {
        let mut l = x >> half;
        let mut r = x & mask;
        for round in 0..4u64 {
            let f = splitmix64(key ^ splitmix64(r ^ (round << 58))) & mask;
            let next_r = l ^ f;
            l = r;
            r = next_r;
        }
        x = (l << half) | r;
        if x < n {
            return x;
        }
    }
}

/// How documents become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Documents concatenated, each followed by `eos`, cut into rows of exactly `seq_len`
    /// tokens (the tail shorter than a row is dropped). No attention mask.
    Packed { eos: u32 },
    /// One document per row: its content (then `eos`, if any), right-padded with `pad` and
    /// masked. A longer document is split into several rows (`split_long`) or truncated.
    DocAligned {
        eos: Option<u32>,
        pad: u32,
        split_long: bool,
    },
}

/// A source of fixed-length rows addressed by a global row counter (epochs included).
pub trait RowSource: Send {
    fn seq_len(&self) -> usize;
    /// Whether rows can contain padding (then a mask is meaningful).
    fn has_mask(&self) -> bool;
    /// Rows in one epoch.
    fn rows_per_epoch(&self) -> u64;
    /// Appends row `g` of the endless stream: `seq_len` ids and `seq_len` mask values.
    fn row(&self, g: u64, ids: &mut Vec<i64>, mask: &mut Vec<i64>);
}

/// Rows of one shard directory's split; see the module docs. Implements [`BatchSource`](super::BatchSource)`<LmBatch>`.
#[derive(Debug, Clone)]
pub struct ShardSequences {
    table: Arc<DocTable>,
    layout: Layout,
    seq_len: usize,
    batch_size: usize,
    seed: u64,
    shuffle: bool,
    /// Packed: cumulative stream offsets of documents (content + eos).
    /// Doc-aligned: cumulative row counts. Length = documents + 1.
    cum: Vec<u64>,
    rows: u64,
    position: u64,
}

impl ShardSequences {
    /// Rows of `table` in `layout`. `shuffle = false` serves rows in document order every
    /// epoch (for evaluation). Errors (naming the directory) if not one row fits.
    pub fn new(
        table: Arc<DocTable>,
        layout: Layout,
        seq_len: usize,
        batch_size: usize,
        seed: u64,
        shuffle: bool,
    ) -> Result<Self, TrainError> {
        if seq_len == 0 || batch_size == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "data: seq_len ({seq_len}) and batch_size ({batch_size}) must be positive"
            )));
        }
        let t = seq_len as u64;
        let mut cum = Vec::with_capacity(table.len() + 1);
        let mut acc = 0u64;
        cum.push(0);
        for i in 0..table.len() {
            let len = table.content_len(i);
            acc += match layout {
                Layout::Packed { .. } => len + 1,
                Layout::DocAligned {
                    eos, split_long, ..
                } => {
                    let unit = len + u64::from(eos.is_some());
                    if split_long {
                        unit.div_ceil(t)
                    } else {
                        1
                    }
                }
            };
            cum.push(acc);
        }
        let rows = match layout {
            Layout::Packed { .. } => acc / t,
            Layout::DocAligned { .. } => acc,
        };
        if rows == 0 {
            return Err(TrainError::Data {
                path: table.dir().to_path_buf(),
                message: format!(
                    "{} tokens in {} documents do not fill one packed row of {seq_len} tokens",
                    acc,
                    table.len()
                ),
            });
        }
        Ok(ShardSequences {
            table,
            layout,
            seq_len,
            batch_size,
            seed,
            shuffle,
            cum,
            rows,
            position: 0,
        })
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn table(&self) -> &DocTable {
        &self.table
    }

    /// Full batches per epoch (rounded up: the last one wraps into the next epoch).
    pub fn batches_per_epoch(&self) -> u64 {
        self.rows.div_ceil(self.batch_size as u64)
    }

    /// Which list row global row `g` serves.
    pub fn row_index(&self, g: u64) -> u64 {
        let (epoch, i) = (g / self.rows, g % self.rows);
        if self.shuffle {
            let key = splitmix64(self.seed ^ splitmix64(epoch.wrapping_add(0xE90C)));
            permute_index(i, self.rows, key)
        } else {
            i
        }
    }

    /// The documents (split-table indices) whose tokens list row `r` holds.
    pub fn row_docs(&self, r: u64) -> Vec<usize> {
        match self.layout {
            Layout::Packed { .. } => {
                let t = self.seq_len as u64;
                let (start, end) = (r * t, r * t + t);
                let first = self.cum.partition_point(|&c| c <= start) - 1;
                let mut v = vec![first];
                let mut i = first + 1;
                while i < self.cum.len() - 1 && self.cum[i] < end {
                    v.push(i);
                    i += 1;
                }
                v
            }
            Layout::DocAligned { .. } => vec![self.cum.partition_point(|&c| c <= r) - 1],
        }
    }

    /// Appends list row `r` (not shuffled) as ids and mask.
    pub fn list_row(&self, r: u64, ids: &mut Vec<i64>, mask: &mut Vec<i64>) {
        let t = self.seq_len as u64;
        let mut buf = Vec::with_capacity(self.seq_len);
        match self.layout {
            Layout::Packed { eos } => {
                let (mut pos, end) = (r * t, r * t + t);
                let mut i = self.cum.partition_point(|&c| c <= pos) - 1;
                while pos < end && i < self.table.len() {
                    let o = pos - self.cum[i];
                    let len = self.table.content_len(i);
                    if o < len {
                        let take = (len - o).min(end - pos);
                        let s = self.table.content(i).start + o;
                        self.table.read_into(s..s + take, &mut buf);
                        pos += take;
                    } else {
                        buf.push(eos);
                        pos += 1;
                        i += 1;
                    }
                }
            }
            Layout::DocAligned {
                eos,
                pad: _,
                split_long: _,
            } => {
                let i = self.cum.partition_point(|&c| c <= r) - 1;
                let chunk = r - self.cum[i];
                let len = self.table.content_len(i);
                let (from, to) = (chunk * t, chunk * t + t);
                let c = self.table.content(i);
                if from < len {
                    self.table
                        .read_into(c.start + from..c.start + to.min(len), &mut buf);
                }
                if let Some(e) = eos {
                    if (from..to).contains(&len) {
                        buf.push(e);
                    }
                }
            }
        }
        let real = buf.len().min(self.seq_len);
        ids.extend(buf[..real].iter().map(|&x| i64::from(x)));
        mask.extend(std::iter::repeat_n(1, real));
        let pad = match self.layout {
            Layout::Packed { eos } => eos,
            Layout::DocAligned { pad, .. } => pad,
        };
        ids.extend(std::iter::repeat_n(i64::from(pad), self.seq_len - real));
        mask.extend(std::iter::repeat_n(0, self.seq_len - real));
    }

    /// The batch at `position` without moving (rows `position * B ..`).
    pub fn batch_at(&self, position: u64) -> LmBatch {
        let b = self.batch_size;
        let mut ids = Vec::with_capacity(b * self.seq_len);
        let mut mask = Vec::with_capacity(b * self.seq_len);
        for r in 0..b as u64 {
            self.row(position * b as u64 + r, &mut ids, &mut mask);
        }
        LmBatch {
            batch_size: b,
            seq_len: self.seq_len,
            input_ids: ids,
            attention_mask: self.has_mask().then_some(mask),
        }
    }
}

impl RowSource for ShardSequences {
    fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn has_mask(&self) -> bool {
        matches!(self.layout, Layout::DocAligned { .. })
    }

    fn rows_per_epoch(&self) -> u64 {
        self.rows
    }

    fn row(&self, g: u64, ids: &mut Vec<i64>, mask: &mut Vec<i64>) {
        self.list_row(self.row_index(g), ids, mask);
    }
}

impl BatchSource<LmBatch> for ShardSequences {
    fn next_batch(&mut self) -> LmBatch {
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

/// The validation rows of one or more shard directories, in order (directory by directory,
/// document order within each). [`ValidationSet::batches`] goes through them once (the last
/// batch may be smaller); as [`BatchSource`](super::BatchSource)`<LmBatch>` it cycles with full batches.
#[derive(Debug, Clone)]
pub struct ValidationSet {
    sources: Vec<ShardSequences>,
    cum: Vec<u64>,
    batch_size: usize,
    position: u64,
}

impl ValidationSet {
    /// `sources` must be non-empty, unshuffled and share `seq_len` and the layout kind.
    pub fn new(sources: Vec<ShardSequences>, batch_size: usize) -> Result<Self, TrainError> {
        let Some(first) = sources.first() else {
            return Err(TrainError::InvalidConfig(
                "data.sources: no validation source".into(),
            ));
        };
        let (t, m) = (first.seq_len, first.has_mask());
        if let Some(bad) = sources.iter().find(|s| s.seq_len != t || s.has_mask() != m) {
            return Err(TrainError::Data {
                path: bad.table.dir().to_path_buf(),
                message: "validation sources differ in seq_len or layout".into(),
            });
        }
        let mut cum = vec![0];
        for s in &sources {
            cum.push(cum[cum.len() - 1] + s.rows);
        }
        Ok(ValidationSet {
            sources,
            cum,
            batch_size: batch_size.max(1),
            position: 0,
        })
    }

    pub fn num_rows(&self) -> u64 {
        self.cum[self.cum.len() - 1]
    }

    /// Batches in one pass (the last may be partial).
    pub fn num_batches(&self) -> u64 {
        self.num_rows().div_ceil(self.batch_size as u64)
    }

    /// Real (unpadded) tokens in one pass.
    pub fn num_tokens(&self) -> u64 {
        self.batches().map(|b| b.num_tokens() as u64).sum()
    }

    fn has_mask(&self) -> bool {
        self.sources[0].has_mask()
    }

    fn seq_len(&self) -> usize {
        self.sources[0].seq_len
    }

    fn push_row(&self, g: u64, ids: &mut Vec<i64>, mask: &mut Vec<i64>) {
        let g = g % self.num_rows();
        let s = self.cum.partition_point(|&c| c <= g) - 1;
        self.sources[s].list_row(g - self.cum[s], ids, mask);
    }

    fn rows_batch(&self, rows: std::ops::Range<u64>) -> LmBatch {
        let n = (rows.end - rows.start) as usize;
        let mut ids = Vec::with_capacity(n * self.seq_len());
        let mut mask = Vec::with_capacity(n * self.seq_len());
        for g in rows {
            self.push_row(g, &mut ids, &mut mask);
        }
        LmBatch {
            batch_size: n,
            seq_len: self.seq_len(),
            input_ids: ids,
            attention_mask: self.has_mask().then_some(mask),
        }
    }

    /// One pass over every validation row, in order.
    pub fn batches(&self) -> impl Iterator<Item = LmBatch> + '_ {
        let (n, b) = (self.num_rows(), self.batch_size as u64);
        (0..self.num_batches()).map(move |k| self.rows_batch(k * b..((k + 1) * b).min(n)))
    }
}

impl BatchSource<LmBatch> for ValidationSet {
    fn next_batch(&mut self) -> LmBatch {
        let b = self.batch_size as u64;
        let batch = self.rows_batch(self.position * b..self.position * b + b);
        self.position += 1;
        batch
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 7, 64, 100, 1000, 4097] {
            for key in [0u64, 1, 0xDEAD_BEEF] {
                let mut seen = vec![false; n as usize];
                for i in 0..n {
                    let p = permute_index(i, n, key);
                    assert!(p < n);
                    assert!(!seen[p as usize], "n={n} key={key}: {p} twice");
                    seen[p as usize] = true;
                }
            }
        }
        // It actually shuffles.
        let moved = (0..1000)
            .filter(|&i| permute_index(i, 1000, 5) != i)
            .count();
        assert!(moved > 900, "{moved}");
    }
}

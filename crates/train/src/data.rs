//! Token batch sources. A source has a position so that a resumed run continues exactly
//! where the checkpoint left off.
//!
//! Real data comes from the memory-mapped token shards of `refinery tokenize`:
//! [`ShardSequences`] (packed or document-aligned rows in a seeded per-epoch order),
//! [`MixedBatches`] (weighted mixing of several directories), [`ValidationSet`] (the held-out
//! documents, in order) and [`NspPairs`] (BERT sentence pairs). [`lm_batches`] and
//! [`pair_batches`] build them from a [`DataConfig`]. Labelled examples for classification come
//! from TSV/CSV/JSONL files ([`labelled`]).

use burn::tensor::{Device, Int, Tensor, TensorData};

pub mod config;
pub mod labelled;
pub mod mix;
pub mod nsp;
pub mod shards;
pub mod split;

pub use config::{
    lm_batches, pair_batches, validation_set, CheckedDataConfig, DataConfig, DataMode, LongDocs,
    NspConfig, SourceConfig,
};
pub use mix::MixedBatches;
pub use nsp::{NspPair, NspPairs, NspSpecials};
pub use shards::{permute_index, Layout, RowSource, ShardSequences, ValidationSet};
pub use split::{is_validation_doc, DataSplit, DocTable};

/// A host-side language-model batch `[B, T]` (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct LmBatch {
    pub batch_size: usize,
    pub seq_len: usize,
    /// Token ids `[B, T]`.
    pub input_ids: Vec<i64>,
    /// HF-style attention mask `[B, T]` (1 = token, 0 = padding); `None` when every position is
    /// a token (packed sequences).
    pub attention_mask: Option<Vec<i64>>,
}

impl LmBatch {
    /// Token ids as a tensor `[B, T]`.
    pub fn tokens(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.input_ids.clone(), [self.batch_size, self.seq_len]),
            device,
        )
    }

    /// The attention mask as a tensor `[B, T]`, if any.
    pub fn mask(&self, device: &Device) -> Option<Tensor<2, Int>> {
        self.attention_mask.as_ref().map(|m| {
            Tensor::from_data(
                TensorData::new(m.clone(), [self.batch_size, self.seq_len]),
                device,
            )
        })
    }

    /// Number of real (unpadded) tokens.
    pub fn num_tokens(&self) -> usize {
        match &self.attention_mask {
            Some(m) => m.iter().filter(|&&x| x != 0).count(),
            None => self.input_ids.len(),
        }
    }
}

/// An endless stream of batches with a resumable position: the one source trait of every
/// task (token rows, sentence pairs, labelled examples).
pub trait BatchSource<B> {
    /// The next batch.
    fn next_batch(&mut self) -> B;
    /// Number of batches consumed so far (saved in checkpoints).
    fn position(&self) -> u64;
    /// Continue from a saved position.
    fn seek(&mut self, position: u64);
    /// Batches in one pass over the data, for sources that have epochs (labelled data);
    /// `None` for endless streams (token shards are counted in steps, not epochs).
    fn batches_per_epoch(&self) -> Option<u64> {
        None
    }
}

/// One host-side batch for BERT MLM + NSP: `[CLS] A [SEP] B [SEP] [PAD]…` rows. Masking for
/// MLM happens in the objective, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct PairBatch {
    pub batch_size: usize,
    pub seq_len: usize,
    /// `[B, T]`
    pub input_ids: Vec<i64>,
    /// `[B, T]`: 0 for `[CLS] A [SEP]` (and padding), 1 for `B [SEP]`.
    pub token_type_ids: Vec<i64>,
    /// `[B, T]`: 1 = token, 0 = padding.
    pub attention_mask: Vec<i64>,
    /// `[B]`: HF NSP label, 0 = B is the true next segment, 1 = B is a random segment from
    /// another document.
    pub is_random_next: Vec<i64>,
}

pub use crate::rng::splitmix64;

/// Synthetic CLM task: each row counts upwards modulo `vocab` from a random start
/// (`s, s+1, s+2, ...`). Every next token is determined by the current one, so the loss
/// floor is 0.
#[derive(Debug, Clone)]
pub struct CountingSequences {
    pub vocab: usize,
    pub seq_len: usize,
    pub batch_size: usize,
    pub seed: u64,
    position: u64,
}

impl CountingSequences {
    pub fn new(vocab: usize, seq_len: usize, batch_size: usize, seed: u64) -> Self {
        Self {
            vocab,
            seq_len,
            batch_size,
            seed,
            position: 0,
        }
    }
}

impl BatchSource<LmBatch> for CountingSequences {
    fn next_batch(&mut self) -> LmBatch {
        let base = splitmix64(self.seed ^ splitmix64(self.position));
        let mut ids = Vec::with_capacity(self.batch_size * self.seq_len);
        for row in 0..self.batch_size {
            let start = splitmix64(base.wrapping_add(row as u64)) % self.vocab as u64;
            ids.extend((0..self.seq_len).map(|i| ((start + i as u64) % self.vocab as u64) as i64));
        }
        self.position += 1;
        LmBatch {
            batch_size: self.batch_size,
            seq_len: self.seq_len,
            input_ids: ids,
            attention_mask: None,
        }
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

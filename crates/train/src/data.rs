//! Token batch sources. A source has a position so that a resumed run continues exactly
//! where the checkpoint left off.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// An endless stream of `[B, T]` token batches.
pub trait TokenBatches {
    /// The next batch `[B, T]`.
    fn next_batch(&mut self, device: &Device) -> Tensor<2, Int>;
    /// Number of batches consumed so far (saved in checkpoints).
    fn position(&self) -> u64;
    /// Continue from a saved position.
    fn seek(&mut self, position: u64);
}

/// SplitMix64: a stateless hash used to derive per-batch randomness from `(seed, position)`.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

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

impl TokenBatches for CountingSequences {
    fn next_batch(&mut self, device: &Device) -> Tensor<2, Int> {
        let base = splitmix64(self.seed ^ splitmix64(self.position));
        let mut ids = Vec::with_capacity(self.batch_size * self.seq_len);
        for row in 0..self.batch_size {
            let start = splitmix64(base.wrapping_add(row as u64)) % self.vocab as u64;
            ids.extend((0..self.seq_len).map(|i| ((start + i as u64) % self.vocab as u64) as i64));
        }
        self.position += 1;
        Tensor::from_data(
            TensorData::new(ids, [self.batch_size, self.seq_len]),
            device,
        )
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

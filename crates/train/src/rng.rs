//! Stateless randomness. Every random choice of training (dropout seeds, MLM masks, DAE noise,
//! PLM orders, data order, few-shot samples) is a pure function of a seed and a counter, so a
//! resumed run draws exactly what the uninterrupted run drew and no RNG state is saved.

/// SplitMix64: a stateless 64-bit hash used to derive randomness from `(seed, counter)`.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seed of the objective's randomness (MLM masks, DAE noise, PLM orders) for the batch at
/// `position` of a run seeded with `seed`.
pub fn batch_seed(seed: u64, position: u64) -> u64 {
    splitmix64(seed ^ 0x6D61_736B ^ splitmix64(position))
}

/// Seed of row `row` of the batch at `batch_position` (e.g. the step): a pure function, so a
/// resumed run draws the same noise.
pub fn row_seed(seed: u64, batch_position: u64, row: u64) -> u64 {
    splitmix64(seed ^ splitmix64(batch_position ^ splitmix64(row.wrapping_add(0x5EED))))
}

/// A splitmix64 stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Poisson(λ) by Knuth's product method (fine for the small λ of span lengths; capped at
    /// 1000).
    pub fn poisson(&mut self, lambda: f64) -> usize {
        let limit = (-lambda).exp();
        let mut p = 1.0;
        for k in 0..1000 {
            p *= self.unit();
            if p <= limit {
                return k;
            }
        }
        1000
    }

    /// `k` distinct values of `0..n`, sorted (partial Fisher-Yates; `k <= n`).
    pub fn choose_sorted(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut pool: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.below(n - i);
            pool.swap(i, j);
        }
        let mut chosen = pool[..k].to_vec();
        chosen.sort_unstable();
        chosen
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

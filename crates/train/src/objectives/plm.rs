//! Permutation language modelling (XLNet, Yang et al. 2019): factorisation-order sampling,
//! partial prediction and the loss, for [`refinery_model::plm::Plm`].
//!
//! Per row, a uniformly random permutation `z` of the real (unpadded) positions is drawn
//! from `(seed, batch position, row)` alone, so a resumed run draws the same orders. Partial
//! prediction (XLNet §2.3): only the last `≈ n / K` positions of `z` are targets (`K = 6` as
//! in XLNet); the rest are context only. With `K ≥ 2` and at least two tokens in a row, the
//! first position of the order (which sees nothing) is never a target, so every target sees
//! at least one token. Padded positions are never in the order: never targets, never
//! attended.

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::plm::PermutationMasks;

use crate::data::{splitmix64, LmBatch};
use crate::error::TrainError;
use crate::objectives::{mlm_loss, IGNORE};

/// XLNet's partial-prediction constant: about `1/K` of the tokens of a row are targets.
pub const XLNET_K: usize = 6;

/// The PLM objective's sampling parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlmObjective {
    /// Partial prediction: `round(n / K)` targets for a row of `n` tokens (at least 1).
    pub k: usize,
}

impl Default for PlmObjective {
    /// `K = 6` (XLNet).
    fn default() -> Self {
        Self { k: XLNET_K }
    }
}

/// One batch's factorisation orders and targets (host side).
#[derive(Debug, Clone, PartialEq)]
pub struct PlmTargets {
    pub batch_size: usize,
    pub seq_len: usize,
    /// `P`: the largest number of targets in a row; rows with fewer are filled up with
    /// ignored entries.
    pub num_predict: usize,
    /// One factorisation order per row: a permutation of the row's real positions, rank 0
    /// first.
    pub orders: Vec<Vec<usize>>,
    /// `[B][P]`: where the query stream is evaluated; the targets in order of rank, then
    /// filler entries (the row's rank-0 position, which sees nothing) with label [`IGNORE`].
    pub target_positions: Vec<Vec<usize>>,
    /// `[B, P]` row-major: the token at each target position, or [`IGNORE`].
    pub labels: Vec<i64>,
}

impl PlmObjective {
    /// `K >= 1` (`K = 1`: every position is a target, including the first of the order).
    pub fn new(k: usize) -> Result<Self, TrainError> {
        if k == 0 {
            return Err(TrainError::InvalidConfig(
                "PLM partial prediction K must be >= 1".into(),
            ));
        }
        Ok(Self { k })
    }

    /// Number of targets for a row of `n` real tokens: `round(n / K)`, at least 1 (0 for an
    /// empty row).
    pub fn num_targets(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((n as f64 / self.k.max(1) as f64).round() as usize).clamp(1, n)
    }

    /// Draws the orders and targets of `batch`; the randomness is a pure function of
    /// `(seed, position, row)` (`position`: the batch's index in the data stream).
    pub fn sample(&self, batch: &LmBatch, seed: u64, position: u64) -> PlmTargets {
        let (b, t) = (batch.batch_size, batch.seq_len);
        let base = splitmix64(seed ^ splitmix64(position));
        let mut orders = Vec::with_capacity(b);
        let mut targets = Vec::with_capacity(b);
        for row in 0..b {
            let real: Vec<usize> = match &batch.attention_mask {
                Some(m) => (0..t).filter(|&i| m[row * t + i] != 0).collect(),
                None => (0..t).collect(),
            };
            let perm = permutation(real.len(), splitmix64(base.wrapping_add(row as u64)));
            let order: Vec<usize> = perm.into_iter().map(|r| real[r]).collect();
            let n_targets = self.num_targets(order.len());
            targets.push(order[order.len() - n_targets..].to_vec());
            orders.push(order);
        }
        let num_predict = targets.iter().map(Vec::len).max().unwrap_or(0);
        let mut labels = Vec::with_capacity(b * num_predict);
        let mut target_positions = Vec::with_capacity(b);
        for (row, (order, tgt)) in orders.iter().zip(targets).enumerate() {
            let filler = order.first().copied().unwrap_or(0);
            labels.extend(tgt.iter().map(|&pos| batch.input_ids[row * t + pos]));
            labels.extend(std::iter::repeat_n(IGNORE, num_predict - tgt.len()));
            let mut positions = tgt;
            positions.resize(num_predict, filler);
            target_positions.push(positions);
        }
        PlmTargets {
            batch_size: b,
            seq_len: t,
            num_predict,
            orders,
            target_positions,
            labels,
        }
    }
}

impl PlmTargets {
    /// The content and query masks (`[B, 1, T, T]`, `[B, 1, P, T]`) and query positions
    /// `[B, P]` for [`refinery_model::plm::Plm::forward`].
    pub fn masks(&self, device: &Device) -> Result<PermutationMasks, TrainError> {
        Ok(PermutationMasks::new(
            &self.orders,
            &self.target_positions,
            self.seq_len,
            device,
        )?)
    }

    /// Labels `[B, P]` ([`IGNORE`] for filler entries).
    pub fn labels(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.labels.clone(), [self.batch_size, self.num_predict]),
            device,
        )
    }

    /// Number of targets (labels that are not [`IGNORE`]).
    pub fn num_targets(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

/// A uniformly random permutation of `0..n` (Fisher–Yates driven by SplitMix64 from `seed`).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = splitmix64(state);
        // Multiply-shift: an index in 0..=i with bias < (i + 1) / 2^64.
        let j = ((u128::from(state) * (i as u128 + 1)) >> 64) as usize;
        p.swap(i, j);
    }
    p
}

/// PLM loss: mean cross-entropy of the query-stream logits `[B, P, V]` against `labels`
/// `[B, P]` over the entries that are not [`IGNORE`]. Returns a scalar `[1]`.
pub fn plm_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    mlm_loss(logits, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn padded_batch(lengths: &[usize], t: usize) -> LmBatch {
        let b = lengths.len();
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for (row, &n) in lengths.iter().enumerate() {
            // Left padding on odd rows, right padding on even rows.
            let start = if row % 2 == 1 { t - n } else { 0 };
            for i in 0..t {
                let real = (start..start + n).contains(&i);
                ids.push(if real { 100 + (row * t + i) as i64 } else { 0 });
                mask.push(i64::from(real));
            }
        }
        LmBatch {
            batch_size: b,
            seq_len: t,
            input_ids: ids,
            attention_mask: Some(mask),
        }
    }

    #[test]
    fn permutations_are_uniform_and_deterministic() {
        let mut counts: HashMap<Vec<usize>, usize> = HashMap::new();
        let trials = 60_000;
        for s in 0..trials {
            *counts.entry(permutation(3, splitmix64(s))).or_default() += 1;
        }
        assert_eq!(counts.len(), 6);
        for (p, c) in &counts {
            let frac = *c as f64 / trials as f64;
            assert!((frac - 1.0 / 6.0).abs() < 0.01, "{p:?}: {frac}");
        }
        let p = permutation(50, 9);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(permutation(50, 9), p);
        assert_ne!(permutation(50, 10), p);
    }

    #[test]
    fn targets_are_the_last_1_over_k_of_the_order_and_never_padding() {
        let lengths: Vec<usize> = (0..64)
            .map(|r| 20 + (splitmix64(r) % 41) as usize)
            .collect();
        let batch = padded_batch(&lengths, 60);
        let obj = PlmObjective::default();
        let s = obj.sample(&batch, 5, 3);
        assert_eq!(s, obj.sample(&batch, 5, 3), "deterministic");
        assert_ne!(
            s.orders,
            obj.sample(&batch, 5, 4).orders,
            "depends on the position"
        );

        let mask = batch.attention_mask.as_ref().unwrap();
        let total_real: usize = lengths.iter().sum();
        let frac = s.num_targets() as f64 / total_real as f64;
        assert!((frac - 1.0 / 6.0).abs() < 0.01, "target fraction {frac}");
        for (row, order) in s.orders.iter().enumerate() {
            // The order is a permutation of exactly the real positions.
            let mut sorted = order.clone();
            sorted.sort_unstable();
            let real: Vec<usize> = (0..60).filter(|&i| mask[row * 60 + i] == 1).collect();
            assert_eq!(sorted, real, "row {row}");
            let n_t = obj.num_targets(order.len());
            assert_eq!(n_t, (order.len() as f64 / 6.0).round() as usize);
            // Targets: the last n_t of the order, labelled with their tokens; then fillers.
            let p = s.num_predict;
            assert_eq!(&s.target_positions[row][..n_t], &order[order.len() - n_t..]);
            for (k, &pos) in s.target_positions[row].iter().enumerate() {
                let label = s.labels[row * p + k];
                if k < n_t {
                    assert_eq!(label, batch.input_ids[row * 60 + pos]);
                    assert_eq!(mask[row * 60 + pos], 1, "padding target");
                } else {
                    assert_eq!((label, pos), (IGNORE, order[0]), "filler");
                }
            }
        }
    }

    #[test]
    fn with_k_at_least_2_every_target_sees_a_token() {
        let obj = PlmObjective::new(2).unwrap();
        for n in 2..40 {
            let t = obj.num_targets(n);
            assert!(t >= 1 && t < n, "n = {n}: {t} targets");
        }
        assert_eq!(PlmObjective::new(1).unwrap().num_targets(7), 7);
        assert_eq!(PlmObjective::default().num_targets(60), 10);
        assert!(PlmObjective::new(0).is_err());
    }

    #[test]
    fn masks_and_loss() {
        let dev = Device::flex();
        let batch = padded_batch(&[3, 2], 4);
        let s = PlmObjective::new(2).unwrap().sample(&batch, 1, 0);
        assert_eq!(s.num_predict, 2); // round(3/2) = 2, round(2/2) = 1
        let m = s.masks(&dev).unwrap();
        assert_eq!(m.content.dims(), [2, 1, 4, 4]);
        assert_eq!(m.query.dims(), [2, 1, 2, 4]);
        let q: Vec<bool> = m.query.into_data().try_to_vec().unwrap();
        // Each target sees exactly the positions before it in its order; fillers see nothing.
        for row in 0..2 {
            let order = &s.orders[row];
            for (k, &pos) in s.target_positions[row].iter().enumerate() {
                let rank = order.iter().position(|&x| x == pos).unwrap();
                let mut want = [true; 4];
                for &j in &order[..rank] {
                    want[j] = false;
                }
                assert_eq!(&q[(row * 2 + k) * 4..][..4], &want[..], "row {row}, k {k}");
            }
        }
        // Uniform logits: ln V.
        let loss: f32 = plm_loss(Tensor::zeros([2, 2, 128], &dev), s.labels(&dev)).into_scalar();
        assert!((loss - 128f32.ln()).abs() < 1e-5, "{loss}");
        // Certain about every real target, uniform at the filler: the filler is not counted.
        assert_eq!(s.num_targets(), 3);
        let mut l = vec![0f32; 2 * 2 * 128];
        for (e, &label) in s.labels.iter().enumerate() {
            if label != IGNORE {
                l[e * 128 + label as usize] = 100.0;
            }
        }
        let logits = Tensor::<3>::from_data(TensorData::new(l, [2, 2, 128]), &dev);
        let loss: f32 = plm_loss(logits, s.labels(&dev)).into_scalar();
        assert!(loss.abs() < 1e-4, "{loss}");
    }
}

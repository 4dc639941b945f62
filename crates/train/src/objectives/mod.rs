//! Objectives: how a batch becomes targets and how outputs become a loss.
//!
//! - here: CLM loss; MLM masking (15%, 80/10/10) and loss; NSP loss; the one ignore index.
//! - [`dae`]: BART text infilling, T5 span corruption, seq2seq collation and loss.
//! - [`plm`]: XLNet permutation LM: factorisation orders, partial prediction (1/K), loss.
//! - [`classify`]: (weighted) cross-entropy for classifiers and their metrics (accuracy,
//!   macro-F1, MCC, per-class precision/recall/F1, confusion matrix).

pub mod classify;
pub mod dae;
pub mod plm;

use burn::tensor::activation::log_softmax;
use burn::tensor::{FloatDType, Int, Tensor};

use crate::rng::splitmix64;

/// Causal LM loss: mean cross-entropy of predicting `tokens[:, 1:]` from `logits[:, :-1]`.
///
/// - `logits`: `[B, T, V]`
/// - `tokens`: `[B, T]`
/// - `attention_mask`: optional `[B, T]` (`1` = token, `0` = padding); padded targets are
///   excluded from the mean.
///
/// Returns a scalar `[1]`. Same as HF `GPT2LMHeadModel(labels=tokens)` without padding.
pub fn clm_loss(
    logits: Tensor<3>,
    tokens: Tensor<2, Int>,
    attention_mask: Option<Tensor<2, Int>>,
) -> Tensor<1> {
    let logits = logits.cast(FloatDType::F32); // the loss is f32 under mixed precision
    let [b, t, v] = logits.dims();
    let n = b * (t - 1);
    let logits = logits.narrow(1, 0, t - 1).reshape([n, v]); // [N, V]
    let targets = tokens.narrow(1, 1, t - 1).reshape([n, 1]); // [N, 1]
    let nll = log_softmax(logits, 1).gather(1, targets).neg().reshape([n]); // [N]
    match attention_mask {
        None => nll.mean(),
        Some(mask) => {
            let w = mask.narrow(1, 1, t - 1).reshape([n]).float(); // [N]
            (nll * w.clone()).sum() / w.sum().clamp_min(1.0)
        }
    }
}

/// Label of a position that is not predicted: the one ignore index of every loss in this
/// crate (PyTorch `CrossEntropyLoss(ignore_index=-100)`, HF `labels=` convention).
pub const IGNORE: i64 = -100;

/// BERT masking: select `select_prob` of the non-special tokens; replace 80% of those with
/// `mask_token`, 10% with a random token from `0..vocab_size`, keep 10% unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct MlmMasking {
    pub select_prob: f64,
    pub mask_token: i64,
    pub vocab_size: usize,
    /// Never selected ([CLS], [SEP], [PAD], ...).
    pub special_tokens: Vec<i64>,
}

impl MlmMasking {
    /// BERT's 15% / 80-10-10.
    pub fn bert(mask_token: i64, vocab_size: usize, special_tokens: Vec<i64>) -> Self {
        Self {
            select_prob: 0.15,
            mask_token,
            vocab_size,
            special_tokens,
        }
    }

    /// Returns `(inputs, labels)` for `tokens`: `labels[i]` is the original token where
    /// position `i` was selected, else [`IGNORE`]. Randomness is a pure function of `seed`
    /// and the position, so a resumed run masks the same way.
    pub fn apply(&self, tokens: &[i64], seed: u64) -> (Vec<i64>, Vec<i64>) {
        let unit = |x: u64| (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let mut inputs = tokens.to_vec();
        let mut labels = vec![IGNORE; tokens.len()];
        for (i, &tok) in tokens.iter().enumerate() {
            if self.special_tokens.contains(&tok) {
                continue;
            }
            let r = splitmix64(seed ^ splitmix64(i as u64));
            if unit(r) >= self.select_prob {
                continue;
            }
            labels[i] = tok;
            let r2 = splitmix64(r);
            let how = unit(r2);
            if how < 0.8 {
                inputs[i] = self.mask_token;
            } else if how < 0.9 {
                inputs[i] = (splitmix64(r2) % self.vocab_size as u64) as i64;
            }
        }
        (inputs, labels)
    }
}

/// MLM loss: mean cross-entropy over the positions whose label is not [`IGNORE`].
///
/// - `logits`: `[B, T, V]`
/// - `labels`: `[B, T]`, original token or [`IGNORE`]
///
/// Returns a scalar `[1]` (0 when nothing is selected).
pub fn mlm_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let logits = logits.cast(FloatDType::F32); // the loss is f32 under mixed precision
    let [b, t, v] = logits.dims();
    let n = b * t;
    let labels = labels.reshape([n]); // [N]
    let w = labels.clone().greater_equal_elem(0).float(); // [N]
    let targets = labels.clamp_min(0).reshape([n, 1]); // [N, 1]
    let nll = log_softmax(logits.reshape([n, v]), 1)
        .gather(1, targets)
        .neg()
        .reshape([n]); // [N]
    (nll * w.clone()).sum() / w.sum().clamp_min(1.0)
}

/// NSP loss: cross-entropy of `logits [B, 2]` against `is_random_next [B]` (HF convention:
/// label 0 = B follows A, 1 = B is a random segment). Returns `[1]`.
pub fn nsp_loss(logits: Tensor<2>, is_random_next: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    log_softmax(logits.cast(FloatDType::F32), 1)
        .gather(1, is_random_next.reshape([b, 1]))
        .neg()
        .mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn uniform_logits_give_log_vocab_and_padding_is_ignored() {
        let dev = Device::flex();
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 0, 1, 2], [2, 3]), &dev);
        let loss: f32 =
            clm_loss(Tensor::zeros([2, 3, 8], &dev), tokens.clone(), None).into_scalar();
        assert!((loss - 8f32.ln()).abs() < 1e-6);

        // Row 0 predicts token 2 from 1 with certainty, row 1 is padding after its first token.
        let mut l = vec![0f32; 2 * 3 * 8];
        l[2] = 100.0; // b0, t0 -> target 2
        l[8 + 3] = 100.0; // b0, t1 -> target 3
        let logits = Tensor::<3>::from_data(TensorData::new(l, [2, 3, 8]), &dev);
        let mask =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 1, 1, 1, 0, 0], [2, 3]), &dev);
        let loss: f32 = clm_loss(logits, tokens, Some(mask)).into_scalar();
        assert!(loss.abs() < 1e-4, "{loss}");
    }

    #[test]
    fn mlm_masking_is_15_percent_80_10_10_and_skips_specials() {
        let spec = MlmMasking::bert(3, 1000, vec![0, 1, 2]);
        let tokens: Vec<i64> = (0..100_000).map(|i| (i % 997) as i64).collect();
        let (inputs, labels) = spec.apply(&tokens, 42);
        let selected: Vec<usize> = (0..tokens.len()).filter(|&i| labels[i] != IGNORE).collect();
        let frac = selected.len() as f64 / tokens.len() as f64;
        assert!((frac - 0.15).abs() < 0.005, "selected {frac}");
        assert!(
            selected.iter().all(|&i| tokens[i] > 2),
            "special token selected"
        );
        assert!(selected.iter().all(|&i| labels[i] == tokens[i]));
        let masked = selected.iter().filter(|&&i| inputs[i] == 3).count() as f64;
        let kept = selected.iter().filter(|&&i| inputs[i] == tokens[i]).count() as f64;
        let n = selected.len() as f64;
        assert!((masked / n - 0.8).abs() < 0.01, "masked {}", masked / n);
        // "kept" also contains random replacements that drew the same token (p = 1/1000).
        assert!((kept / n - 0.1).abs() < 0.01, "kept {}", kept / n);
        let unselected_changed = (0..tokens.len())
            .filter(|&i| labels[i] == IGNORE && inputs[i] != tokens[i])
            .count();
        assert_eq!(unselected_changed, 0);
        assert_eq!(spec.apply(&tokens, 42), (inputs, labels), "deterministic");
    }

    #[test]
    fn mlm_and_nsp_losses() {
        let dev = Device::flex();
        // Uniform logits: ln V over the selected positions only.
        let labels =
            Tensor::<2, Int>::from_data(TensorData::new(vec![IGNORE, 5, IGNORE, 7], [1, 4]), &dev);
        let loss: f32 = mlm_loss(Tensor::zeros([1, 4, 8], &dev), labels).into_scalar();
        assert!((loss - 8f32.ln()).abs() < 1e-6);
        // NSP: logits (0, ln 3) -> p = (1/4, 3/4); label 1 -> -ln(3/4).
        let logits = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 3f32.ln()], [1, 2]), &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64], [1]), &dev);
        let loss: f32 = nsp_loss(logits, y).into_scalar();
        assert!((loss + 0.75f32.ln()).abs() < 1e-6, "{loss}");
    }
}

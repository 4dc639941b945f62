//! Denoising-autoencoder objectives for encoder-decoder models (BART, T5) and their loss.
//!
//! - [`TextInfilling`]: BART text infilling. `mask_ratio` (0.3) of the non-special tokens are
//!   covered by spans with lengths ~ Poisson(λ = 3); each span becomes ONE mask token in the
//!   encoder input, a 0-length span inserts a mask token. The labels are the original row.
//! - [`SpanCorruption`]: T5 span corruption. `noise_density` (0.15) of the non-special tokens,
//!   in spans of mean length 3, are replaced by sentinels `<extra_id_i>` (one per span, ids
//!   counting down from `first_sentinel` as in T5's vocabulary); the labels are
//!   `<extra_id_0> span_0 <extra_id_1> span_1 ... <extra_id_k> [eos]`.
//! - [`collate`]: pads rows into a batch with HF conventions (`labels` padded with `-100`,
//!   `decoder_input_ids = shift_tokens_right(labels)`).
//! - [`seq2seq_loss`]: mean cross-entropy over labels that are not `-100`.
//!
//! Noise is a pure function of a seed; use [`row_seed`]`(seed, batch_position, row)` so a
//! resumed run corrupts every row exactly as the uninterrupted run did.
//!
//! Special tokens (`<s>`, `</s>`, `<pad>`, ...) are never noised. Spans are laid out over the
//! non-special tokens in order; a span that would straddle a special token keeps the special
//! token in place (the span's marker is emitted once, at its first token).

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::TrainError;
use crate::objectives::IGNORE;

pub use crate::rng::{row_seed, Rng};

/// One noised row: encoder input and decoder labels (unpadded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisedRow {
    pub input: Vec<i64>,
    pub labels: Vec<i64>,
}

/// Plan of the noise over the non-special tokens, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// The next non-special token is kept.
    Keep,
    /// The next non-special token belongs to span `s`.
    Noise(usize),
    /// Span `s` has length 0: a marker is inserted here.
    Insert(usize),
}

/// Applies `items` to `tokens`: returns the encoder input (one `marker(s)` per span) and the
/// noised tokens of every span.
fn realize(
    tokens: &[i64],
    special: impl Fn(i64) -> bool,
    items: &[Item],
    n_spans: usize,
    marker: impl Fn(usize) -> i64,
) -> (Vec<i64>, Vec<Vec<i64>>) {
    let n_eligible = tokens.iter().filter(|&&t| !special(t)).count();
    let mut input = Vec::with_capacity(tokens.len());
    let mut spans = vec![Vec::new(); n_spans];
    let mut emitted = vec![false; n_spans];
    let mut idx = 0;
    let mut seen = 0;
    let flush_inserts = |idx: &mut usize, input: &mut Vec<i64>| {
        while let Some(Item::Insert(s)) = items.get(*idx) {
            input.push(marker(*s));
            *idx += 1;
        }
    };
    for &tok in tokens {
        if special(tok) {
            input.push(tok);
            continue;
        }
        flush_inserts(&mut idx, &mut input);
        match items.get(idx) {
            Some(Item::Noise(s)) => {
                if !emitted[*s] {
                    input.push(marker(*s));
                    emitted[*s] = true;
                }
                spans[*s].push(tok);
            }
            // `Keep` (or, defensively, a plan shorter than the row).
            _ => input.push(tok),
        }
        idx += 1;
        seen += 1;
        if seen == n_eligible {
            flush_inserts(&mut idx, &mut input);
        }
    }
    (input, spans)
}

/// BART text infilling (Lewis et al. 2020, fairseq `DenoisingDataset` with `mask_length =
/// span-poisson`, `replace_length = 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct TextInfilling {
    /// Fraction of the non-special tokens covered by spans (BART: 0.3).
    pub mask_ratio: f64,
    /// Mean span length (BART: 3).
    pub poisson_lambda: f64,
    pub mask_token: i64,
    /// Never noised (`<s>`, `</s>`, `<pad>`, the mask token itself, ...).
    pub special_tokens: Vec<i64>,
}

impl TextInfilling {
    /// BART's settings: 30% of tokens, span lengths ~ Poisson(3).
    pub fn bart(mask_token: i64, special_tokens: Vec<i64>) -> Self {
        Self {
            mask_ratio: 0.3,
            poisson_lambda: 3.0,
            mask_token,
            special_tokens,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&self.mask_ratio) {
            return Err(TrainError::InvalidConfig(format!(
                "mask_ratio {} is not in [0, 1]",
                self.mask_ratio
            )));
        }
        if !(self.poisson_lambda > 0.0 && self.poisson_lambda <= 100.0) {
            return Err(TrainError::InvalidConfig(format!(
                "poisson_lambda {} is not in (0, 100]",
                self.poisson_lambda
            )));
        }
        Ok(())
    }

    /// Span lengths for `n` non-special tokens: Poisson(λ) draws until they cover
    /// `round(mask_ratio · n)` tokens, the last one shortened to cover exactly that many.
    fn span_lengths(&self, n: usize, rng: &mut Rng) -> Vec<usize> {
        let target = ((self.mask_ratio * n as f64).round() as usize).min(n);
        let mut lengths = Vec::new();
        let mut total = 0;
        while total < target {
            let l = rng.poisson(self.poisson_lambda);
            lengths.push(l);
            total += l;
        }
        if let Some(last) = lengths.last_mut() {
            *last -= total - target;
        }
        lengths
    }

    /// Noises one row. `labels` is `tokens` itself (BART reconstructs the whole input).
    ///
    /// Spans never touch (each pair is separated by at least one kept token), so the input
    /// has exactly one mask token per span and `mask_ratio · n` tokens are hidden (rounded).
    pub fn apply(&self, tokens: &[i64], seed: u64) -> NoisedRow {
        let mut rng = Rng::new(seed);
        let special = |t: i64| self.special_tokens.contains(&t);
        let n = tokens.iter().filter(|&&t| !special(t)).count();
        let mut lengths = self.span_lengths(n, &mut rng);
        let masked: usize = lengths.iter().sum();
        let kept = n - masked;
        // Spans go into distinct gaps between kept tokens (kept + 1 gaps).
        if lengths.len() > kept + 1 {
            let extra: usize = lengths[kept + 1..].iter().sum();
            lengths.truncate(kept + 1);
            lengths[kept] += extra;
        }
        let gaps = rng.choose_sorted(kept + 1, lengths.len());
        let mut items = Vec::with_capacity(n + lengths.len());
        let mut next_span = 0;
        for g in 0..=kept {
            if gaps.get(next_span) == Some(&g) {
                match lengths[next_span] {
                    0 => items.push(Item::Insert(next_span)),
                    l => items.extend(std::iter::repeat_n(Item::Noise(next_span), l)),
                }
                next_span += 1;
            }
            if g < kept {
                items.push(Item::Keep);
            }
        }
        let (input, _) = realize(tokens, special, &items, lengths.len(), |_| self.mask_token);
        NoisedRow {
            input,
            labels: tokens.to_vec(),
        }
    }
}

/// T5 span corruption (Raffel et al. 2020, `random_spans_noise_mask`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanCorruption {
    /// Fraction of the non-special tokens noised (T5: 0.15).
    pub noise_density: f64,
    /// Mean noise span length (T5: 3).
    pub mean_noise_span_length: f64,
    /// Id of `<extra_id_0>`; sentinel `i` is `first_sentinel - i` (T5: 32099 counting down).
    pub first_sentinel: i64,
    /// Number of sentinel ids available (T5: 100); at most `num_sentinels - 1` spans per row,
    /// the last sentinel closes the labels.
    pub num_sentinels: usize,
    /// Appended to the labels (T5: `</s>` = 1).
    pub eos_token: Option<i64>,
    /// Never noised.
    pub special_tokens: Vec<i64>,
}

impl SpanCorruption {
    /// T5's settings: 15% noise, mean span 3, 100 sentinels.
    pub fn t5(first_sentinel: i64, eos_token: Option<i64>, special_tokens: Vec<i64>) -> Self {
        Self {
            noise_density: 0.15,
            mean_noise_span_length: 3.0,
            first_sentinel,
            num_sentinels: 100,
            eos_token,
            special_tokens,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&self.noise_density) {
            return Err(TrainError::InvalidConfig(format!(
                "noise_density {} is not in [0, 1]",
                self.noise_density
            )));
        }
        if self.mean_noise_span_length < 1.0 {
            return Err(TrainError::InvalidConfig(format!(
                "mean_noise_span_length {} is < 1",
                self.mean_noise_span_length
            )));
        }
        if self.num_sentinels < 2 || self.first_sentinel + 1 < self.num_sentinels as i64 {
            return Err(TrainError::InvalidConfig(format!(
                "need >= 2 sentinels with non-negative ids (first {}, count {})",
                self.first_sentinel, self.num_sentinels
            )));
        }
        Ok(())
    }

    /// Id of sentinel `i`.
    pub fn sentinel(&self, i: usize) -> i64 {
        self.first_sentinel - i as i64
    }

    /// Noises one row: spans → sentinels in the input, the spans (after their sentinels) in the
    /// labels.
    pub fn apply(&self, tokens: &[i64], seed: u64) -> NoisedRow {
        let mut rng = Rng::new(seed);
        let special = |t: i64| self.special_tokens.contains(&t);
        let n = tokens.iter().filter(|&&t| !special(t)).count();
        let mut items = Vec::with_capacity(n);
        let mut n_spans = 0;
        if n >= 2 && self.num_sentinels >= 2 {
            // As T5: at least one noise and one kept token.
            let noise = ((self.noise_density * n as f64).round() as usize).clamp(1, n - 1);
            let max_spans = (n - noise).min(self.num_sentinels - 1);
            n_spans =
                ((noise as f64 / self.mean_noise_span_length).round() as usize).clamp(1, max_spans);
            let noise_lens = random_segmentation(noise, n_spans, &mut rng);
            let keep_lens = random_segmentation(n - noise, n_spans, &mut rng);
            for s in 0..n_spans {
                items.extend(std::iter::repeat_n(Item::Keep, keep_lens[s]));
                items.extend(std::iter::repeat_n(Item::Noise(s), noise_lens[s]));
            }
        } else {
            items.extend(std::iter::repeat_n(Item::Keep, n));
        }
        let (input, spans) = realize(tokens, special, &items, n_spans, |s| self.sentinel(s));
        let mut labels = Vec::new();
        for (s, span) in spans.iter().enumerate() {
            labels.push(self.sentinel(s));
            labels.extend_from_slice(span);
        }
        labels.push(self.sentinel(n_spans));
        labels.extend(self.eos_token);
        NoisedRow { input, labels }
    }
}

/// `total` items split into `parts` positive segments uniformly at random (`1 <= parts <=
/// total`).
fn random_segmentation(total: usize, parts: usize, rng: &mut Rng) -> Vec<usize> {
    // parts - 1 distinct cut points in 1..total.
    let cuts: Vec<usize> = rng
        .choose_sorted(total - 1, parts - 1)
        .into_iter()
        .map(|c| c + 1)
        .collect();
    let mut lens = Vec::with_capacity(parts);
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(total)) {
        lens.push(c - prev);
        prev = c;
    }
    lens
}

/// A padded seq2seq batch, row-major `[batch, len]` vectors (HF conventions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seq2SeqBatch {
    pub batch: usize,
    /// Encoder length `S` (longest input).
    pub src_len: usize,
    /// Decoder length `T` (longest labels).
    pub tgt_len: usize,
    /// `[B, S]`, padded with `pad_token_id`.
    pub input_ids: Vec<i64>,
    /// `[B, S]`, `1` = token.
    pub attention_mask: Vec<i64>,
    /// `[B, T]`, padded with [`IGNORE`].
    pub labels: Vec<i64>,
    /// `[B, T]`: `shift_tokens_right(labels, pad, decoder_start)`.
    pub decoder_input_ids: Vec<i64>,
    /// `[B, T]`, `1` where the decoder input is not padding.
    pub decoder_attention_mask: Vec<i64>,
}

/// The batch as `Int` tensors on a device.
#[derive(Debug, Clone)]
pub struct Seq2SeqTensors {
    pub input_ids: Tensor<2, Int>,
    pub attention_mask: Tensor<2, Int>,
    pub labels: Tensor<2, Int>,
    pub decoder_input_ids: Tensor<2, Int>,
    pub decoder_attention_mask: Tensor<2, Int>,
}

impl Seq2SeqBatch {
    pub fn to_tensors(&self, device: &Device) -> Seq2SeqTensors {
        let t = |v: &[i64], len: usize| {
            Tensor::<2, Int>::from_data(TensorData::new(v.to_vec(), [self.batch, len]), device)
        };
        Seq2SeqTensors {
            input_ids: t(&self.input_ids, self.src_len),
            attention_mask: t(&self.attention_mask, self.src_len),
            labels: t(&self.labels, self.tgt_len),
            decoder_input_ids: t(&self.decoder_input_ids, self.tgt_len),
            decoder_attention_mask: t(&self.decoder_attention_mask, self.tgt_len),
        }
    }
}

/// Pads noised rows into a batch: inputs with `pad_token_id`, labels with [`IGNORE`];
/// decoder inputs are the labels shifted right behind `decoder_start_token_id`, with ignored
/// labels replaced by `pad_token_id` (HF `shift_tokens_right`).
pub fn collate(rows: &[NoisedRow], pad_token_id: i64, decoder_start_token_id: i64) -> Seq2SeqBatch {
    let batch = rows.len();
    let src_len = rows.iter().map(|r| r.input.len()).max().unwrap_or(0);
    let tgt_len = rows.iter().map(|r| r.labels.len()).max().unwrap_or(0);
    let mut out = Seq2SeqBatch {
        batch,
        src_len,
        tgt_len,
        input_ids: Vec::with_capacity(batch * src_len),
        attention_mask: Vec::with_capacity(batch * src_len),
        labels: Vec::with_capacity(batch * tgt_len),
        decoder_input_ids: Vec::with_capacity(batch * tgt_len),
        decoder_attention_mask: Vec::with_capacity(batch * tgt_len),
    };
    for r in rows {
        let pad = src_len - r.input.len();
        out.input_ids.extend_from_slice(&r.input);
        out.input_ids.extend(std::iter::repeat_n(pad_token_id, pad));
        out.attention_mask
            .extend(std::iter::repeat_n(1, r.input.len()));
        out.attention_mask.extend(std::iter::repeat_n(0, pad));
        let labels: Vec<i64> = r
            .labels
            .iter()
            .copied()
            .chain(std::iter::repeat_n(IGNORE, tgt_len - r.labels.len()))
            .collect();
        for j in 0..tgt_len {
            let (id, real) = match j {
                0 => (decoder_start_token_id, true),
                _ if labels[j - 1] == IGNORE => (pad_token_id, false),
                _ => (labels[j - 1], true),
            };
            out.decoder_input_ids.push(id);
            out.decoder_attention_mask.push(i64::from(real));
        }
        out.labels.extend(labels);
    }
    out
}

/// Seq2seq LM loss: mean cross-entropy of `logits [B, T, V]` against `labels [B, T]` over the
/// positions whose label is not negative ([`IGNORE`] = -100 for padding), as HF
/// `BartForConditionalGeneration(labels=...)`. Returns `[1]` (0 when every label is ignored).
pub fn seq2seq_loss(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    // Same computation as the MLM loss, which also ignores negative labels.
    crate::objectives::mlm_loss(logits, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `<s> w w ... w </s>` with w in 4..1000; specials 0..4 (`<s>`=0, `<pad>`=1,
    /// `</s>`=2, `<mask>`=3).
    fn rows(n_rows: usize, len: usize) -> Vec<Vec<i64>> {
        let mut rng = Rng::new(7);
        (0..n_rows)
            .map(|_| {
                let mut r = vec![0];
                r.extend((0..len).map(|_| 4 + rng.below(996) as i64));
                r.push(2);
                r
            })
            .collect()
    }

    #[test]
    fn poisson_has_the_right_mean_and_variance() {
        let mut rng = Rng::new(1);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.poisson(3.0) as f64).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        // Std error of the mean: sqrt(3 / 2e5) = 0.004.
        assert!((mean - 3.0).abs() < 0.02, "mean {mean}");
        assert!((var - 3.0).abs() < 0.06, "variance {var}");
        let zeros = draws.iter().filter(|&&d| d == 0.0).count() as f64 / n as f64;
        assert!((zeros - (-3f64).exp()).abs() < 0.003, "P(0) = {zeros}");
    }

    #[test]
    fn text_infilling_masks_30_percent_in_poisson_spans_and_keeps_specials() {
        let noise = TextInfilling::bart(3, vec![0, 1, 2, 3]);
        noise.validate().unwrap();
        let (mut hidden, mut total, mut masks, mut kept_ok) = (0usize, 0usize, 0usize, true);
        for (i, row) in rows(400, 100).iter().enumerate() {
            let out = noise.apply(row, row_seed(42, 0, i as u64));
            assert_eq!(&out.labels, row, "labels are the original row");
            // Specials untouched: first and last token survive.
            assert_eq!((out.input[0], *out.input.last().unwrap()), (0, 2));
            // The kept tokens are a subsequence of the original, in order, and every mask
            // stands for a (possibly empty) run of hidden tokens.
            let kept: Vec<i64> = out.input.iter().copied().filter(|&t| t != 3).collect();
            let mut it = row.iter();
            kept_ok &= kept.iter().all(|k| it.any(|t| t == k));
            hidden += row.len() - kept.len();
            total += row.len() - 2;
            masks += out.input.iter().filter(|&&t| t == 3).count();
            // No two masks are adjacent: spans are separated by kept tokens.
            assert!(out.input.windows(2).all(|w| w != [3, 3]));
        }
        assert!(kept_ok, "kept tokens are not an in-order subsequence");
        let ratio = hidden as f64 / total as f64;
        assert!((ratio - 0.3).abs() < 0.005, "mask ratio {ratio}");
        // Hidden tokens per mask: Poisson(3) minus the truncated last span of each row
        // (~ 3 - 1.5/10 spans); checks that spans are not single tokens.
        let per_mask = hidden as f64 / masks as f64;
        eprintln!("text infilling: mask ratio {ratio:.4}, hidden tokens per mask {per_mask:.3}");
        assert!((2.6..3.1).contains(&per_mask), "tokens per mask {per_mask}");
    }

    #[test]
    fn zero_length_spans_insert_a_mask() {
        // λ tiny: nearly all spans have length 0, and each inserts one mask; the last span is
        // stretched to cover the 30% (mask count = spans).
        let mut noise = TextInfilling::bart(3, vec![0, 1, 2, 3]);
        noise.poisson_lambda = 0.05;
        let row = &rows(1, 40)[0];
        let out = noise.apply(row, 9);
        let masks = out.input.iter().filter(|&&t| t == 3).count();
        let kept = out.input.iter().filter(|&&t| t != 3).count();
        assert_eq!(kept, 42 - 12, "12 of 40 tokens hidden");
        // More masks than hidden tokens: most of them are insertions.
        assert!(
            masks > 12,
            "zero-length spans must insert masks ({masks} masks)"
        );
    }

    #[test]
    fn noise_is_a_pure_function_of_the_seed() {
        let noise = TextInfilling::bart(3, vec![0, 1, 2, 3]);
        let t5 = SpanCorruption::t5(1099, Some(2), vec![0, 1, 2]);
        let row = &rows(1, 64)[0];
        let s = row_seed(5, 17, 3);
        assert_eq!(noise.apply(row, s), noise.apply(row, s));
        assert_eq!(t5.apply(row, s), t5.apply(row, s));
        assert_ne!(noise.apply(row, s), noise.apply(row, row_seed(5, 18, 3)));
        assert_ne!(row_seed(5, 17, 3), row_seed(5, 3, 17));
    }

    #[test]
    fn t5_span_corruption_reconstructs_the_original() {
        let t5 = SpanCorruption::t5(1099, Some(2), vec![0, 1, 2]);
        t5.validate().unwrap();
        let is_sentinel = |t: i64| t > 1000;
        let (mut noised, mut total, mut spans) = (0usize, 0usize, 0usize);
        for (i, row) in rows(400, 100).iter().enumerate() {
            let out = t5.apply(row, row_seed(1, 2, i as u64));
            assert_eq!((out.input[0], *out.input.last().unwrap()), (0, 2));
            // Replace each sentinel in the input by its span from the labels.
            let mut by_sentinel = std::collections::HashMap::new();
            let mut current = None;
            for &t in &out.labels[..out.labels.len() - 1] {
                if is_sentinel(t) {
                    current = Some(t);
                    by_sentinel.insert(t, Vec::new());
                } else if let Some(s) = current {
                    by_sentinel.get_mut(&s).unwrap().push(t);
                }
            }
            let n_spans = out.input.iter().filter(|&&t| is_sentinel(t)).count();
            assert_eq!(out.labels[0], 1099);
            assert_eq!(out.labels[out.labels.len() - 2], 1099 - n_spans as i64);
            assert_eq!(*out.labels.last().unwrap(), 2, "eos");
            let rebuilt: Vec<i64> = out
                .input
                .iter()
                .flat_map(|&t| {
                    if is_sentinel(t) {
                        by_sentinel[&t].clone()
                    } else {
                        vec![t]
                    }
                })
                .collect();
            assert_eq!(&rebuilt, row, "input + labels reconstruct the row");
            noised += out.labels.len() - n_spans - 2;
            total += row.len() - 2;
            spans += n_spans;
        }
        assert_eq!(noised, total * 15 / 100, "exactly 15 of 100 per row");
        let mean_span = noised as f64 / spans as f64;
        assert!((mean_span - 3.0).abs() < 1e-9, "mean span {mean_span}");
    }

    #[test]
    fn collate_pads_and_shifts_like_hf() {
        let rows = vec![
            NoisedRow {
                input: vec![0, 5, 3, 2],
                labels: vec![0, 5, 6, 2],
            },
            NoisedRow {
                input: vec![0, 3],
                labels: vec![0, 7],
            },
        ];
        let b = collate(&rows, 1, 2);
        assert_eq!((b.batch, b.src_len, b.tgt_len), (2, 4, 4));
        assert_eq!(b.input_ids, vec![0, 5, 3, 2, 0, 3, 1, 1]);
        assert_eq!(b.attention_mask, vec![1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(b.labels, vec![0, 5, 6, 2, 0, 7, -100, -100]);
        assert_eq!(b.decoder_input_ids, vec![2, 0, 5, 6, 2, 0, 7, 1]);
        assert_eq!(b.decoder_attention_mask, vec![1, 1, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn seq2seq_loss_ignores_minus_100() {
        let dev = Device::flex();
        let labels = Tensor::<2, Int>::from_data(
            TensorData::new(vec![4i64, IGNORE, 5, IGNORE], [2, 2]),
            &dev,
        );
        let loss: f32 = seq2seq_loss(Tensor::zeros([2, 2, 8], &dev), labels.clone()).into_scalar();
        assert!((loss - 8f32.ln()).abs() < 1e-6);
        // Certain predictions on the real labels, garbage on the ignored ones: loss ~0.
        let mut l = vec![0f32; 2 * 2 * 8];
        l[4] = 100.0; // (0, 0) -> 4
        l[2 * 8 + 5] = 100.0; // (1, 0) -> 5
        l[8] = -100.0; // (0, 1) ignored
        let logits = Tensor::<3>::from_data(TensorData::new(l, [2, 2, 8]), &dev);
        let loss: f32 = seq2seq_loss(logits, labels).into_scalar();
        assert!(loss.abs() < 1e-4, "{loss}");
    }
}

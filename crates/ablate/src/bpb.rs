//! Bits per byte of a causal LM on a text: the summed negative log-likelihood of every token
//! of the text, in nats, over ln 2 and the text's UTF-8 bytes. Per byte rather than per token,
//! so that models with different tokenizers (or data that tokenizes differently) compare.
//!
//! The text is encoded as one sequence `[sep] t_1 … t_n`: the separator (the documents'
//! boundary token in training) stands for "a document starts here", and every `t_i` is
//! predicted exactly once, from non-overlapping windows of `window` tokens (the first token of
//! a window sees only the window's context). So the loss sum covers `t_1 … t_n`, which
//! decode to the text (the tokenizer is byte-level; [`EvalText::round_trip`] records it), and
//! the byte count is that of the text.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use refinery_model::Gpt;
use refinery_tokenize::Tokenizer;

use crate::Result;

/// An eval text, encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalText {
    /// `[sep] t_1 … t_n`.
    pub ids: Vec<u32>,
    /// UTF-8 bytes of the text.
    pub bytes: u64,
    /// `decode(t_1 … t_n) == text`.
    pub round_trip: bool,
}

impl EvalText {
    pub fn encode(tok: &Tokenizer, sep: u32, text: &str) -> Result<Self> {
        let body = tok.encode(text)?;
        let round_trip = tok.decode(&body)? == text;
        let mut ids = Vec::with_capacity(body.len() + 1);
        ids.push(sep);
        ids.extend(body);
        Ok(Self {
            ids,
            bytes: text.len() as u64,
            round_trip,
        })
    }

    /// Tokens predicted (the separator is context only).
    pub fn targets(&self) -> u64 {
        self.ids.len().saturating_sub(1) as u64
    }
}

/// Summed negative log-likelihood (nats) of every token after the first of `ids`, each
/// predicted from the tokens before it in its window of at most `window` predictions.
/// `batch` windows are evaluated together.
pub fn sum_nats(
    model: &Gpt,
    ids: &[u32],
    window: usize,
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let window = window.max(1);
    let batch = batch.max(1);
    let n = ids.len().saturating_sub(1);
    let mut total = 0.0;
    // Full windows, `batch` at a time; then the shorter last one alone.
    let full = n / window;
    let mut k = 0;
    while k < full {
        let rows = batch.min(full - k);
        let mut inputs = Vec::with_capacity(rows * window);
        let mut targets = Vec::with_capacity(rows * window);
        for r in 0..rows {
            let start = (k + r) * window;
            inputs.extend(ids[start..start + window].iter().map(|&x| i64::from(x)));
            targets.extend(
                ids[start + 1..start + window + 1]
                    .iter()
                    .map(|&x| i64::from(x)),
            );
        }
        total += nll_sum(model, inputs, targets, rows, window, device);
        k += rows;
    }
    let rest = n - full * window;
    if rest > 0 {
        let start = full * window;
        let inputs = ids[start..start + rest]
            .iter()
            .map(|&x| i64::from(x))
            .collect();
        let targets = ids[start + 1..start + rest + 1]
            .iter()
            .map(|&x| i64::from(x))
            .collect();
        total += nll_sum(model, inputs, targets, 1, rest, device);
    }
    Ok(total)
}

/// `-Σ log p(targets[b, t] | inputs[b, ..=t])` over a `[rows, len]` batch, summed on the host
/// in f64.
fn nll_sum(
    model: &Gpt,
    inputs: Vec<i64>,
    targets: Vec<i64>,
    rows: usize,
    len: usize,
    device: &Device,
) -> f64 {
    let x = Tensor::<2, Int>::from_data(TensorData::new(inputs, [rows, len]), device);
    let logits = model.forward(x).cast(FloatDType::F32); // [B, T, V]
    let t = Tensor::<3, Int>::from_data(TensorData::new(targets, [rows, len, 1]), device);
    let lp = log_softmax(logits, 2).gather(2, t); // [B, T, 1]
    -lp.into_data().iter::<f32>().map(f64::from).sum::<f64>()
}

/// `nats / ln 2 / bytes`.
pub fn bits_per_byte(nats: f64, bytes: u64) -> f64 {
    if bytes == 0 {
        f64::NAN
    } else {
        nats / std::f64::consts::LN_2 / bytes as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_model::GptConfig;
    use refinery_train::objectives::clm_loss;

    fn model() -> (Gpt, Device) {
        let device = Device::flex();
        let cfg = GptConfig::new(50, 32, 16, 2, 2);
        (cfg.init(&device).unwrap(), device)
    }

    fn ids(n: usize) -> Vec<u32> {
        (0..n as u32).map(|i| (i * 7 + 3) % 50).collect()
    }

    /// One window of the sum equals the trainer's CLM loss (the mean over the row's T - 1
    /// predictions, computed by `refinery_train::objectives::clm_loss`) times T - 1.
    #[test]
    fn one_window_matches_the_training_loss() {
        let (m, device) = model();
        let row = ids(20);
        let ours = sum_nats(&m, &row, 19, 4, &device).unwrap();
        let x = Tensor::<2, Int>::from_data(
            TensorData::new(row.iter().map(|&x| i64::from(x)).collect(), [1, 20]),
            &device,
        );
        let mean = f64::from(clm_loss(m.forward(x.clone()), x, None).into_scalar::<f32>());
        let reference = mean * 19.0;
        assert!(
            (ours - reference).abs() <= 1e-5 * reference.abs(),
            "{ours} vs {reference}"
        );
    }

    /// Windows evaluated together give the sum of windows evaluated one by one, and every
    /// token is predicted once whatever the window (a window that covers all gives the same
    /// number of terms).
    #[test]
    fn batching_does_not_change_the_sum() {
        let (m, device) = model();
        let row = ids(45); // 44 predictions: 5 windows of 8 and one of 4
        let batched = sum_nats(&m, &row, 8, 3, &device).unwrap();
        let mut one_by_one = 0.0;
        for start in (0..44).step_by(8) {
            let end = (start + 8).min(44);
            one_by_one += sum_nats(&m, &row[start..=end], 8, 1, &device).unwrap();
        }
        assert!(
            (batched - one_by_one).abs() <= 1e-5 * batched,
            "{batched} vs {one_by_one}"
        );
        // A uniform model would score ln(50) per token; a random init is close to that.
        let per_token = batched / 44.0;
        assert!((per_token - 50f64.ln()).abs() < 1.0, "{per_token}");
    }

    #[test]
    fn bits_per_byte_formula() {
        let b = bits_per_byte(std::f64::consts::LN_2 * 10.0, 5);
        assert!((b - 2.0).abs() < 1e-12);
        assert!(bits_per_byte(1.0, 0).is_nan());
    }
}

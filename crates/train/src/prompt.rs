//! Classification without a trained head: in-context LM scoring with a GPT, and embedding
//! similarity with a sentence-embedding BERT. (Cloze prompting with an MLM is the `cloze`
//! task: zero-shot is its evaluation before any training.)
//!
//! - [`lm_scores`]: each label's verbalisation is scored after the prompt (optionally with k
//!   demonstrations, `template` filled with their text and label word, separated by blank
//!   lines): the mean log-probability of the word's tokens (length-normalised, so long words
//!   are not penalised). When the context does not fit the model, the oldest demonstrations
//!   are dropped first, then the text is cut from the left.
//! - [`embedding_scores`]: the cosine similarity of the mean-pooled, L2-normalised embeddings
//!   of the text and of each label's description (all-MiniLM-L6-v2's pooling).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::{BertModel, Gpt, OutputOptions};
use refinery_tokenize::Tokenizer;

use crate::error::TrainError;

/// An LM prompt: `template` holds `{text}` and is followed by the label word.
#[derive(Debug, Clone, PartialEq)]
pub struct LmPrompt {
    /// E.g. `"Review: {text}\nSentiment:"`.
    pub template: String,
    /// The word of each label, as it follows the template (`" positive"`).
    pub words: Vec<String>,
    /// Demonstrations `(text, label id)`, in order.
    pub demos: Vec<(String, usize)>,
}

fn enc(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, TrainError> {
    tok.encode(text)
        .map_err(|e| TrainError::InvalidConfig(format!("tokenizer: {e}")))
}

/// The log-probabilities of `targets[i]` continuing `contexts[i]`, summed over the target's
/// tokens, for a batch of right-padded sequences on one forward pass: `[(sum, n)]`.
fn continuation_logprobs(
    gpt: &Gpt,
    seqs: &[(Vec<u32>, Vec<u32>)],
    device: &Device,
) -> Vec<(f64, usize)> {
    let b = seqs.len();
    let t = seqs
        .iter()
        .map(|(c, w)| c.len() + w.len())
        .max()
        .unwrap_or(1);
    let mut ids = vec![0i64; b * t];
    let mut mask = vec![0i64; b * t];
    for (r, (c, w)) in seqs.iter().enumerate() {
        for (i, &x) in c.iter().chain(w).enumerate() {
            ids[r * t + i] = i64::from(x);
            mask[r * t + i] = 1;
        }
    }
    let ids_t = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [b, t]), device);
    let mask_t = Tensor::<2, Int>::from_data(TensorData::new(mask, [b, t]), device);
    let logits = gpt
        .forward_with(ids_t, Some(mask_t), OutputOptions::default())
        .logits; // [B, T, V]
    let [_, _, v] = logits.dims();
    // Gather log p(token at j+1 | ..j) for every j: targets are ids shifted left.
    let mut targets = vec![0i64; b * t];
    for r in 0..b {
        for j in 0..t.saturating_sub(1) {
            targets[r * t + j] = ids[r * t + j + 1];
        }
    }
    let tgt = Tensor::<2, Int>::from_data(TensorData::new(targets, [b * t, 1]), device);
    let lp: Vec<f32> = log_softmax(logits.reshape([b * t, v]), 1)
        .gather(1, tgt)
        .into_data()
        .iter::<f32>()
        .collect(); // [B·T]
    seqs.iter()
        .enumerate()
        .map(|(r, (c, w))| {
            let sum: f64 = (0..w.len())
                .map(|i| f64::from(lp[r * t + c.len() - 1 + i]))
                .sum();
            (sum, w.len())
        })
        .collect()
}

/// Length-normalised label scores `[texts][labels]` (see the module docs). `max_len` is the
/// model's context; `batch_size` sequences go through the model at a time.
pub fn lm_scores(
    gpt: &Gpt,
    tok: &Tokenizer,
    prompt: &LmPrompt,
    texts: &[String],
    max_len: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f64>>, TrainError> {
    if !prompt.template.contains("{text}") {
        return Err(TrainError::InvalidConfig(format!(
            "the LM template {:?} has no {{text}}",
            prompt.template
        )));
    }
    let words = prompt
        .words
        .iter()
        .map(|w| {
            let ids = enc(tok, w)?;
            if ids.is_empty() {
                return Err(TrainError::InvalidConfig(format!(
                    "label word {w:?} has no tokens"
                )));
            }
            Ok(ids)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let longest = words.iter().map(Vec::len).max().unwrap_or(1);
    let demos = prompt
        .demos
        .iter()
        .map(|(text, label)| {
            let word = prompt.words.get(*label).ok_or_else(|| {
                TrainError::InvalidConfig(format!("demonstration label {label} has no word"))
            })?;
            enc(
                tok,
                &format!("{}{word}\n\n", prompt.template.replace("{text}", text)),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seqs = Vec::new();
    for text in texts {
        let (head, tail) = prompt.template.split_once("{text}").unwrap_or(("", ""));
        let (h, mut x, tl) = (enc(tok, head)?, enc(tok, text)?, enc(tok, tail)?);
        let budget = max_len.saturating_sub(longest);
        // Keep the newest demonstrations that fit, then cut the text from the left.
        let mut used: Vec<&Vec<u32>> = Vec::new();
        let mut len = h.len() + x.len() + tl.len();
        for d in demos.iter().rev() {
            if len + d.len() <= budget {
                len += d.len();
                used.push(d);
            }
        }
        used.reverse();
        let over = (h.len() + x.len() + tl.len()).saturating_sub(budget);
        x.drain(..over.min(x.len()));
        let mut ctx: Vec<u32> = used.into_iter().flatten().copied().collect();
        ctx.extend(h.iter().chain(&x).chain(&tl));
        if ctx.is_empty() {
            return Err(TrainError::InvalidConfig(
                "an empty LM context: the template has no text before the label".into(),
            ));
        }
        for w in &words {
            seqs.push((ctx.clone(), w.clone()));
        }
    }
    let mut flat = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(batch_size.max(1)) {
        flat.extend(continuation_logprobs(gpt, chunk, device));
    }
    Ok(flat
        .chunks(words.len())
        .map(|row| row.iter().map(|(s, n)| s / *n as f64).collect())
        .collect())
}

/// Mean-pooled, L2-normalised embeddings `[texts][D]` (BERT rows `[CLS] text [SEP]`, cut to
/// `max_len`).
pub fn embed(
    bert: &BertModel,
    tok: &Tokenizer,
    texts: &[String],
    max_len: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let (Some(cls), Some(sep)) = (tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")) else {
        return Err(TrainError::InvalidConfig(
            "embedding needs a BERT tokenizer with [CLS] and [SEP]".into(),
        ));
    };
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch_size.max(1)) {
        let rows = chunk
            .iter()
            .map(|t| {
                let mut ids = enc(tok, t)?;
                ids.truncate(max_len.saturating_sub(2));
                let mut r = vec![cls];
                r.extend(ids);
                r.push(sep);
                Ok(r)
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        let b = rows.len();
        let t = rows.iter().map(Vec::len).max().unwrap_or(2);
        let mut ids = vec![0i64; b * t];
        let mut mask = vec![0i64; b * t];
        for (r, row) in rows.iter().enumerate() {
            for (i, &x) in row.iter().enumerate() {
                ids[r * t + i] = i64::from(x);
                mask[r * t + i] = 1;
            }
        }
        let mask_t = Tensor::<2, Int>::from_data(TensorData::new(mask, [b, t]), device);
        let h = bert
            .forward(
                Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), device),
                None,
                Some(mask_t.clone()),
                OutputOptions::default(),
            )
            .last_hidden_state; // [B, T, D]
        let [_, _, d] = h.dims();
        let m = mask_t.float().reshape([b, t, 1]);
        let mean = (h * m.clone()).sum_dim(1).reshape([b, d])
            / m.sum_dim(1).reshape([b, 1]).clamp_min(1e-9); // [B, D]
        let norm = mean
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12); // [B, 1]
        let v: Vec<f32> = (mean / norm).into_data().iter::<f32>().collect();
        out.extend(v.chunks(d).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// Cosine similarities `[texts][labels]` of texts and label descriptions.
pub fn embedding_scores(
    bert: &BertModel,
    tok: &Tokenizer,
    descriptions: &[String],
    texts: &[String],
    max_len: usize,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f64>>, TrainError> {
    let labels = embed(bert, tok, descriptions, max_len, batch_size, device)?;
    let docs = embed(bert, tok, texts, max_len, batch_size, device)?;
    Ok(docs
        .iter()
        .map(|d| {
            labels
                .iter()
                .map(|l| d.iter().zip(l).map(|(a, b)| f64::from(a * b)).sum())
                .collect()
        })
        .collect())
}

/// The index of the largest score of each row.
pub fn argmax_rows(scores: &[Vec<f64>]) -> Vec<usize> {
    scores
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &s)| {
                    if s > best.1 {
                        (i, s)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

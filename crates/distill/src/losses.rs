//! The distillation losses as plain tensor functions (no model, no config): each takes the
//! student's tensor (on the training device, on the tape) and the teacher's (a constant, on
//! the inner device or from the cache) and returns a scalar `[1]`.
//!
//! | function | formula (per position / token / query row, then a masked mean) |
//! |---|---|
//! | [`soft_kl`] | `T² · KL(softmax(t/T) ‖ softmax(s/T))` (Hinton et al.; PyTorch `kl_div(..., "batchmean") · T²`) |
//! | [`soft_kl_top_k`] | the same with the teacher's distribution renormalised on its top k classes |
//! | [`attention_loss`] | MSE of probabilities, MSE of log-probabilities, or `KL(A_t ‖ A_s)` per query row (MiniLM), mean over heads |
//! | [`hidden_mse`] | `mean_d (h_s − h_t)²` per token (TinyBERT, after the learned projection) |
//! | [`hidden_cosine`] | `1 − cos(h_s, h_t)` per token (DistilBERT's cosine loss) |
//!
//! Masks are `[B, P]` (or `[B, T]`) floats, 1 for a position that counts and 0 for padding;
//! `None` counts every position. Everything is computed in f32 (under bf16/f16 the inputs
//! are cast first), and the masked mean divides by the number of counted positions.
//! Checked against a direct f64 computation and against PyTorch
//! (`tests/fixtures/make_loss_reference.py`, torch float64) in the tests below (tolerance
//! 1e-5 relative).

use burn::tensor::activation::log_softmax;
use burn::tensor::{FloatDType, Int, Tensor};
use serde::{Deserialize, Serialize};

/// Floor of probabilities before a logarithm (attention maps hold exact zeros at masked keys).
pub const PROB_FLOOR: f64 = 1e-12;

/// Mean of `x [B, P]` over the positions where `mask` is 1 (all when `None`): `[1]`.
pub fn masked_mean(x: Tensor<2>, mask: Option<Tensor<2>>) -> Tensor<1> {
    match mask {
        None => x.mean(),
        Some(m) => (x * m.clone()).sum() / m.sum().clamp_min(1.0),
    }
}

fn f32_of<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(FloatDType::F32)
}

/// Soft-label loss: `T² · mean over positions of KL(softmax(teacher/T) ‖ softmax(student/T))`.
///
/// - `student`, `teacher`: logits `[B, P, C]`
/// - `mask`: `[B, P]`
pub fn soft_kl(
    student: Tensor<3>,
    teacher: Tensor<3>,
    temperature: f64,
    mask: Option<Tensor<2>>,
) -> Tensor<1> {
    let [b, p, _] = student.dims();
    let ls = log_softmax(f32_of(student).div_scalar(temperature), 2); // [B, P, C]
    let lt = log_softmax(f32_of(teacher).div_scalar(temperature), 2); // [B, P, C]
    let kl = (lt.clone().exp() * (lt - ls)).sum_dim(2).reshape([b, p]); // [B, P]
    masked_mean(kl, mask).mul_scalar(temperature * temperature)
}

/// [`soft_kl`] against a teacher stored as its top `k` logits per position (the teacher's
/// softmax renormalised on those `k` classes; the student's log-probabilities are over all
/// classes, taken at the same `k`).
///
/// - `student`: `[B, P, C]`
/// - `indices`: `[B, P, k]` class ids of the teacher's top k
/// - `values`: `[B, P, k]` the teacher's logits there
pub fn soft_kl_top_k(
    student: Tensor<3>,
    indices: Tensor<3, Int>,
    values: Tensor<3>,
    temperature: f64,
    mask: Option<Tensor<2>>,
) -> Tensor<1> {
    let [b, p, _] = student.dims();
    let ls = log_softmax(f32_of(student).div_scalar(temperature), 2).gather(2, indices); // [B, P, k]
    let lt = log_softmax(f32_of(values).div_scalar(temperature), 2); // [B, P, k]
    let kl = (lt.clone().exp() * (lt - ls)).sum_dim(2).reshape([b, p]); // [B, P]
    masked_mean(kl, mask).mul_scalar(temperature * temperature)
}

/// What an attention loss compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// MSE between attention probabilities.
    #[default]
    Mse,
    /// MSE between attention log-probabilities: TinyBERT's MSE of attention scores up to the
    /// per-row normaliser `log Σ exp(scores)` (softmax ignores a per-row shift, so this is the
    /// part of the score difference that changes the attention; the models return
    /// probabilities, not raw scores).
    LogMse,
    /// `KL(A_teacher ‖ A_student)` per query row (MiniLM's self-attention distribution
    /// transfer).
    Kl,
}

/// Attention loss of one mapped layer pair, averaged over heads and the counted query rows.
///
/// - `student`: `[B, H_s, T, T]`, `teacher`: `[B, H_t, T, T]` (probabilities)
/// - `average_heads`: compare the head-averaged maps (always done when `H_s ≠ H_t`)
/// - `query_mask`: `[B, T]` (padding rows do not count)
pub fn attention_loss(
    student: Tensor<4>,
    teacher: Tensor<4>,
    kind: AttentionKind,
    average_heads: bool,
    query_mask: Option<Tensor<2>>,
) -> Tensor<1> {
    let (student, teacher) = (f32_of(student), f32_of(teacher));
    let [_, hs, _, _] = student.dims();
    let [_, ht, _, _] = teacher.dims();
    let (s, t) = if average_heads || hs != ht {
        (student.mean_dim(1), teacher.mean_dim(1)) // [B, 1, T, T]
    } else {
        (student, teacher)
    };
    let [b, _, tq, _] = s.dims();
    let per_row = match kind {
        AttentionKind::Mse => (s - t).powi_scalar(2).mean_dim(3), // [B, H, T, 1]
        AttentionKind::LogMse => {
            let ls = s.clamp_min(PROB_FLOOR).log();
            let lt = t.clamp_min(PROB_FLOOR).log();
            (ls - lt).powi_scalar(2).mean_dim(3)
        }
        AttentionKind::Kl => {
            let ls = s.clamp_min(PROB_FLOOR).log();
            let lt = t.clone().clamp_min(PROB_FLOOR).log();
            (t * (lt - ls)).sum_dim(3)
        }
    };
    let per_row = per_row.mean_dim(1).reshape([b, tq]); // [B, T]
    masked_mean(per_row, query_mask)
}

/// How hidden states are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenKind {
    /// Mean squared error per token (TinyBERT).
    #[default]
    Mse,
    /// `1 − cosine similarity` per token (DistilBERT).
    Cosine,
}

/// Hidden-state (or embedding) loss of one layer pair.
///
/// - `student` (already projected to the teacher's width), `teacher`: `[B, T, D]`
/// - `mask`: `[B, T]`
pub fn hidden_loss(
    student: Tensor<3>,
    teacher: Tensor<3>,
    kind: HiddenKind,
    mask: Option<Tensor<2>>,
) -> Tensor<1> {
    match kind {
        HiddenKind::Mse => hidden_mse(student, teacher, mask),
        HiddenKind::Cosine => hidden_cosine(student, teacher, mask),
    }
}

/// `mean_d (student − teacher)²` per token, then the masked mean over tokens.
pub fn hidden_mse(student: Tensor<3>, teacher: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<1> {
    let [b, t, _] = student.dims();
    let per_token = (f32_of(student) - f32_of(teacher))
        .powi_scalar(2)
        .mean_dim(2)
        .reshape([b, t]); // [B, T]
    masked_mean(per_token, mask)
}

/// `1 − cos(student, teacher)` per token, then the masked mean over tokens.
pub fn hidden_cosine(student: Tensor<3>, teacher: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<1> {
    let [b, t, _] = student.dims();
    let (s, te) = (f32_of(student), f32_of(teacher));
    let dot = (s.clone() * te.clone()).sum_dim(2); // [B, T, 1]
    let ns = s.powi_scalar(2).sum_dim(2).sqrt(); // [B, T, 1]
    let nt = te.powi_scalar(2).sum_dim(2).sqrt();
    let cos = dot / (ns * nt).clamp_min(1e-8);
    let per_token = cos.neg().add_scalar(1.0).reshape([b, t]); // [B, T]
    masked_mean(per_token, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t3(v: &[f64], shape: [usize; 3]) -> Tensor<3> {
        let d = Device::flex();
        Tensor::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape),
            &d,
        )
    }
    fn t4(v: &[f64], shape: [usize; 4]) -> Tensor<4> {
        let d = Device::flex();
        Tensor::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape),
            &d,
        )
    }
    fn t2(v: &[f64], shape: [usize; 2]) -> Tensor<2> {
        let d = Device::flex();
        Tensor::from_data(
            TensorData::new(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), shape),
            &d,
        )
    }
    fn scalar(t: Tensor<1>) -> f64 {
        f64::from(t.into_scalar::<f32>())
    }
    /// Deterministic pseudo-random values in [-2, 2).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
            })
            .collect()
    }
    fn softmax(row: &[f64]) -> Vec<f64> {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    }
    fn close(a: f64, b: f64) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
            "{a} vs reference {b}"
        );
    }

    #[test]
    fn soft_kl_matches_the_formula() {
        let (b, p, c, temp) = (3, 2, 5, 2.5);
        let s = values(b * p * c, 1);
        let t = values(b * p * c, 2);
        let mask = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0];
        let mut sum = 0.0;
        let mut n = 0.0;
        for i in 0..b * p {
            let row = |v: &[f64]| -> Vec<f64> {
                v[i * c..(i + 1) * c].iter().map(|x| x / temp).collect()
            };
            let (ps, pt) = (softmax(&row(&s)), softmax(&row(&t)));
            let kl: f64 = pt.iter().zip(&ps).map(|(a, b)| a * (a / b).ln()).sum();
            sum += mask[i] * kl;
            n += mask[i];
        }
        let reference = temp * temp * sum / n;
        let got = soft_kl(
            t3(&s, [b, p, c]),
            t3(&t, [b, p, c]),
            temp,
            Some(t2(&mask, [b, p])),
        );
        close(scalar(got), reference);
        // Same logits: zero.
        let z = soft_kl(t3(&s, [b, p, c]), t3(&s, [b, p, c]), temp, None);
        assert!(scalar(z).abs() < 1e-6);
    }

    #[test]
    fn top_k_with_every_class_equals_the_full_loss() {
        let (b, p, c, temp) = (2, 3, 4, 1.7);
        let s = values(b * p * c, 3);
        let t = values(b * p * c, 4);
        let full = scalar(soft_kl(t3(&s, [b, p, c]), t3(&t, [b, p, c]), temp, None));
        // Indices in a shuffled order: the loss does not depend on it.
        let order = [2i64, 0, 3, 1];
        let mut idx = Vec::new();
        let mut vals = Vec::new();
        for i in 0..b * p {
            for &k in &order {
                idx.push(k);
                vals.push(t[i * c + k as usize]);
            }
        }
        let d = Device::flex();
        let indices = Tensor::<3, Int>::from_data(TensorData::new(idx, [b, p, c]), &d);
        let topk = scalar(soft_kl_top_k(
            t3(&s, [b, p, c]),
            indices,
            t3(&vals, [b, p, c]),
            temp,
            None,
        ));
        close(topk, full);
    }

    #[test]
    fn attention_losses_match_the_formulas() {
        let (b, h, t) = (2, 2, 3);
        // Row-stochastic maps from random scores.
        let probs = |seed: u64| -> Vec<f64> {
            let v = values(b * h * t * t, seed);
            v.chunks(t).flat_map(softmax).collect()
        };
        let (s, te) = (probs(5), probs(6));
        let mask = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
        let at = |v: &[f64], bi: usize, hi: usize, q: usize, k: usize| {
            v[((bi * h + hi) * t + q) * t + k]
        };
        for kind in [AttentionKind::Mse, AttentionKind::LogMse, AttentionKind::Kl] {
            let mut sum = 0.0;
            let mut n = 0.0;
            for bi in 0..b {
                for q in 0..t {
                    let mut row = 0.0;
                    for hi in 0..h {
                        let mut r = 0.0;
                        for k in 0..t {
                            let (x, y) = (at(&s, bi, hi, q, k), at(&te, bi, hi, q, k));
                            r += match kind {
                                AttentionKind::Mse => (x - y).powi(2) / t as f64,
                                AttentionKind::LogMse => (x.ln() - y.ln()).powi(2) / t as f64,
                                AttentionKind::Kl => y * (y.ln() - x.ln()),
                            };
                        }
                        row += r / h as f64;
                    }
                    sum += mask[bi * t + q] * row;
                    n += mask[bi * t + q];
                }
            }
            let got = attention_loss(
                t4(&s, [b, h, t, t]),
                t4(&te, [b, h, t, t]),
                kind,
                false,
                Some(t2(&mask, [b, t])),
            );
            close(scalar(got), sum / n);
        }
        // Different head counts compare the head means.
        let one_head: Vec<f64> = (0..b)
            .flat_map(|bi| {
                let te = &te;
                (0..t * t).map(move |j| {
                    (0..h).map(|hi| te[(bi * h + hi) * t * t + j]).sum::<f64>() / h as f64
                })
            })
            .collect();
        let mixed = attention_loss(
            t4(&s, [b, h, t, t]),
            t4(&one_head, [b, 1, t, t]),
            AttentionKind::Mse,
            false,
            None,
        );
        let averaged = attention_loss(
            t4(&s, [b, h, t, t]),
            t4(&te, [b, h, t, t]),
            AttentionKind::Mse,
            true,
            None,
        );
        close(scalar(mixed), scalar(averaged));
    }

    #[test]
    fn hidden_losses_match_the_formulas() {
        let (b, t, d) = (2, 3, 4);
        let s = values(b * t * d, 7);
        let te = values(b * t * d, 8);
        let mask = [1.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        let (mut mse, mut cos, mut n) = (0.0, 0.0, 0.0);
        for i in 0..b * t {
            let (x, y) = (&s[i * d..(i + 1) * d], &te[i * d..(i + 1) * d]);
            let m: f64 = x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / d as f64;
            let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
            let nx = x.iter().map(|a| a * a).sum::<f64>().sqrt();
            let ny = y.iter().map(|a| a * a).sum::<f64>().sqrt();
            mse += mask[i] * m;
            cos += mask[i] * (1.0 - dot / (nx * ny));
            n += mask[i];
        }
        let m = Some(t2(&mask, [b, t]));
        close(
            scalar(hidden_mse(t3(&s, [b, t, d]), t3(&te, [b, t, d]), m.clone())),
            mse / n,
        );
        close(
            scalar(hidden_cosine(t3(&s, [b, t, d]), t3(&te, [b, t, d]), m)),
            cos / n,
        );
    }

    /// The losses against PyTorch (`tests/fixtures/make_loss_reference.py`, torch float64),
    /// relative tolerance 1e-5.
    #[test]
    fn losses_match_pytorch() {
        use serde_json::Value;
        let v: Value =
            serde_json::from_str(include_str!("../tests/fixtures/losses_reference.json")).unwrap();
        let c = &v["cases"];
        let f = |x: &Value| -> Vec<f64> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|y| y.as_f64().unwrap())
                .collect()
        };
        let shape = |x: &Value| -> Vec<usize> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|y| y.as_u64().unwrap() as usize)
                .collect()
        };
        let num = |x: &Value| x.as_f64().unwrap();

        // Soft labels, seed 000's combination, top-k.
        let sc = &c["soft"];
        let sh = shape(&sc["shape"]);
        let (b, p, cl) = (sh[0], sh[1], sh[2]);
        let temp = num(&sc["temperature"]);
        let alpha = num(&sc["alpha"]);
        let s = t3(&f(&sc["student"]), [b, p, cl]);
        let t = t3(&f(&sc["teacher"]), [b, p, cl]);
        let mask = t2(&f(&sc["mask"]), [b, p]);
        close(
            scalar(soft_kl(s.clone(), t.clone(), temp, None)),
            num(&sc["kl_all"]),
        );
        close(
            scalar(soft_kl(s.clone(), t.clone(), temp, Some(mask.clone()))),
            num(&sc["kl_masked"]),
        );
        let first = |x: Tensor<3>| x.slice([0..b, 0..1, 0..cl]);
        let kd = scalar(soft_kl(first(s.clone()), first(t.clone()), temp, None));
        close(kd, num(&sc["kd_first"]));
        let labels: Vec<i64> = sc["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|y| y.as_i64().unwrap())
            .collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &Device::flex());
        let ce = scalar(refinery_train::objectives::classify::classification_loss(
            first(s.clone()).reshape([b, cl]),
            labels,
            None,
        ));
        close(ce, num(&sc["ce_first"]));
        close(alpha * ce + (1.0 - alpha) * kd, num(&sc["seed000_first"]));
        let tk = &c["soft_top_k"];
        let k = tk["k"].as_u64().unwrap() as usize;
        let idx: Vec<i64> = tk["indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|y| y.as_i64().unwrap())
            .collect();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [b, p, k]), &Device::flex());
        let vals = t3(&f(&tk["values"]), [b, p, k]);
        close(
            scalar(soft_kl_top_k(s, idx, vals, temp, Some(mask))),
            num(&tk["loss"]),
        );

        // Attention: same head count (per head) and 2 vs 4 heads (head-averaged).
        let ac = &c["attention"];
        let dims = |x: &Value| -> [usize; 4] {
            let d = shape(x);
            [d[0], d[1], d[2], d[3]]
        };
        let st = t4(&f(&ac["student"]), dims(&ac["shape_student"]));
        let same = t4(&f(&ac["teacher_same"]), dims(&ac["shape_teacher_same"]));
        let wide = t4(&f(&ac["teacher_wide"]), dims(&ac["shape_teacher_wide"]));
        let [bq, _, tq, _] = dims(&ac["shape_student"]);
        let qmask = t2(&f(&ac["query_mask"]), [bq, tq]);
        for (name, kind) in [
            ("mse", AttentionKind::Mse),
            ("log-mse", AttentionKind::LogMse),
            ("kl", AttentionKind::Kl),
        ] {
            for (teacher, key) in [(&same, "same"), (&wide, "wide")] {
                let got = scalar(attention_loss(
                    st.clone(),
                    teacher.clone(),
                    kind,
                    false,
                    Some(qmask.clone()),
                ));
                let want = num(&ac[key][name]);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
                    "attention {name} ({key}): {got} vs PyTorch {want}"
                );
            }
        }

        // Hidden states: MSE and cosine.
        let hc = &c["hidden"];
        let d = shape(&hc["shape"]);
        let hs = t3(&f(&hc["student"]), [d[0], d[1], d[2]]);
        let ht = t3(&f(&hc["teacher"]), [d[0], d[1], d[2]]);
        let hm = t2(&f(&hc["mask"]), [d[0], d[1]]);
        close(
            scalar(hidden_mse(hs.clone(), ht.clone(), Some(hm.clone()))),
            num(&hc["mse"]),
        );
        close(scalar(hidden_cosine(hs, ht, Some(hm))), num(&hc["cosine"]));
    }
}

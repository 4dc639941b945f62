//! Classification: (class-weighted) cross-entropy and the metrics of a confusion matrix.
//!
//! The loss is PyTorch's `CrossEntropyLoss(weight=w)`: `Σ_i w[y_i] · nll_i / Σ_i w[y_i]`
//! (plain mean when `w` is `None`). Metrics are computed from a confusion matrix accumulated
//! over the whole evaluation set (so macro-F1 and MCC are exact, not means of batch values):
//! accuracy, macro-F1, Matthews correlation (multi-class form, Gorodkin 2004, as
//! scikit-learn's `matthews_corrcoef`), and per-class precision, recall and F1 (a class with
//! no predicted or no gold examples has precision or recall 0, as scikit-learn's
//! `zero_division=0`).

use std::collections::BTreeMap;

use burn::tensor::activation::log_softmax;
use burn::tensor::{FloatDType, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::metrics::MetricSums;

/// Mean (weighted) cross-entropy of `logits [B, C]` against `labels [B]`. Returns `[1]`.
pub fn classification_loss(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    class_weights: Option<&[f32]>,
) -> Tensor<1> {
    let logits = logits.cast(FloatDType::F32); // the loss is f32 under mixed precision
    let [b, c] = logits.dims();
    let device = logits.device();
    let nll = log_softmax(logits, 1)
        .gather(1, labels.clone().reshape([b, 1]))
        .neg()
        .reshape([b]); // [B]
    match class_weights {
        None => nll.mean(),
        Some(w) => {
            let w = Tensor::<1>::from_data(TensorData::new(w.to_vec(), [c]), &device); // [C]
            let wy = w.select(0, labels); // [B]
            (nll * wy.clone()).sum() / wy.sum().clamp_min(1e-12)
        }
    }
}

/// `weight[c] = n / (C · count[c])` (scikit-learn's "balanced"); classes absent from the
/// counts get weight 0.
pub fn balanced_weights(counts: &[usize]) -> Vec<f32> {
    let n: usize = counts.iter().sum();
    let c = counts.len();
    counts
        .iter()
        .map(|&k| {
            if k == 0 {
                0.0
            } else {
                (n as f64 / (c as f64 * k as f64)) as f32
            }
        })
        .collect()
}

/// A confusion matrix: `matrix[gold][predicted]` counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

/// Metric-sum key of one confusion-matrix cell.
fn cell_key(gold: usize, pred: usize) -> String {
    format!("confusion/{gold}/{pred}")
}

/// Adds `(gold, predicted)` pairs to `sums` as confusion-matrix cells.
pub fn add_confusion(sums: &mut MetricSums, gold: &[i64], predicted: &[i64]) {
    for (&g, &p) in gold.iter().zip(predicted) {
        if g >= 0 && p >= 0 {
            sums.add(&cell_key(g as usize, p as usize), 1.0, 1.0);
        }
    }
}

impl Confusion {
    /// The matrix accumulated in `sums` for `labels`.
    pub fn from_sums(sums: &MetricSums, labels: &[String]) -> Self {
        let c = labels.len();
        let mut matrix = vec![vec![0u64; c]; c];
        for (g, row) in matrix.iter_mut().enumerate() {
            for (p, cell) in row.iter_mut().enumerate() {
                if let Some(&(n, _)) = sums.sums.get(&cell_key(g, p)) {
                    *cell = n as u64;
                }
            }
        }
        Self {
            labels: labels.to_vec(),
            matrix,
        }
    }

    /// From `(gold, predicted)` id pairs.
    pub fn from_pairs(labels: &[String], gold: &[usize], predicted: &[usize]) -> Self {
        let c = labels.len();
        let mut matrix = vec![vec![0u64; c]; c];
        for (&g, &p) in gold.iter().zip(predicted) {
            if g < c && p < c {
                matrix[g][p] += 1;
            }
        }
        Self {
            labels: labels.to_vec(),
            matrix,
        }
    }

    pub fn total(&self) -> u64 {
        self.matrix.iter().flatten().sum()
    }

    /// accuracy, macro_f1, mcc, n, and `precision/{label}`, `recall/{label}`, `f1/{label}`,
    /// `support/{label}`.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let c = self.labels.len();
        let n = self.total() as f64;
        let correct: u64 = (0..c).map(|i| self.matrix[i][i]).sum();
        let gold: Vec<f64> = (0..c)
            .map(|i| self.matrix[i].iter().sum::<u64>() as f64)
            .collect();
        let pred: Vec<f64> = (0..c)
            .map(|j| (0..c).map(|i| self.matrix[i][j]).sum::<u64>() as f64)
            .collect();
        let mut m = BTreeMap::new();
        let mut f1_sum = 0.0;
        for (i, label) in self.labels.iter().enumerate() {
            let tp = self.matrix[i][i] as f64;
            let p = if pred[i] > 0.0 { tp / pred[i] } else { 0.0 };
            let r = if gold[i] > 0.0 { tp / gold[i] } else { 0.0 };
            let f1 = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            f1_sum += f1;
            m.insert(format!("precision/{label}"), p);
            m.insert(format!("recall/{label}"), r);
            m.insert(format!("f1/{label}"), f1);
            m.insert(format!("support/{label}"), gold[i]);
        }
        let accuracy = if n > 0.0 {
            correct as f64 / n
        } else {
            f64::NAN
        };
        // Multi-class MCC: (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)).
        let s = n;
        let cs = correct as f64 * s;
        let pt: f64 = (0..c).map(|k| pred[k] * gold[k]).sum();
        let pp: f64 = pred.iter().map(|x| x * x).sum();
        let tt: f64 = gold.iter().map(|x| x * x).sum();
        let denom = ((s * s - pp) * (s * s - tt)).sqrt();
        let mcc = if denom > 0.0 { (cs - pt) / denom } else { 0.0 };
        m.insert("accuracy".into(), accuracy);
        m.insert(
            "macro_f1".into(),
            if c > 0 { f1_sum / c as f64 } else { f64::NAN },
        );
        m.insert("mcc".into(), mcc);
        m.insert("n".into(), n);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn metrics_match_scikit_learn() {
        // Reference (scikit-learn 1.9.1): y_true = [0,0,0,1,1,2,2,2,2],
        // y_pred = [0,1,0,1,2,2,2,0,2]: accuracy_score = 6/9;
        // f1_score(average="macro") = 0.6388888888888888;
        // matthews_corrcoef = 0.4807692307692308; precision = recall = [2/3, 1/2, 3/4].
        let gold = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let pred = [0, 1, 0, 1, 2, 2, 2, 0, 2];
        let m = Confusion::from_pairs(&labels(3), &gold, &pred).metrics();
        assert!((m["accuracy"] - 6.0 / 9.0).abs() < 1e-12);
        assert!(
            (m["macro_f1"] - 0.638_888_888_888_888_8).abs() < 1e-12,
            "{m:?}"
        );
        assert!(
            (m["mcc"] - 0.480_769_230_769_230_8).abs() < 1e-12,
            "{}",
            m["mcc"]
        );
        assert!((m["precision/c2"] - 0.75).abs() < 1e-12);
        assert!((m["recall/c1"] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn one_class_predictions_give_zero_mcc_and_zero_f1_for_the_missing_class() {
        // scikit-learn 1.9.1: matthews_corrcoef([0,1,1], [1,1,1]) = 0.0;
        // f1_score(..., average=None, zero_division=0) = [0, 0.8].
        let m = Confusion::from_pairs(&labels(2), &[0, 1, 1], &[1, 1, 1]).metrics();
        assert_eq!(m["mcc"], 0.0);
        assert_eq!(m["f1/c0"], 0.0);
        assert!((m["f1/c1"] - 0.8).abs() < 1e-12);
    }

    #[test]
    fn confusion_round_trips_through_sums() {
        let mut sums = MetricSums::default();
        add_confusion(&mut sums, &[0, 1, 1, -100], &[0, 0, 1, 1]);
        add_confusion(&mut sums, &[1], &[1]);
        let c = Confusion::from_sums(&sums, &labels(2));
        assert_eq!(c.matrix, vec![vec![1, 0], vec![1, 2]]);
    }

    #[test]
    fn weighted_loss_matches_pytorch() {
        // torch 2.15: F.cross_entropy(torch.tensor([[2.,0.],[0.,1.],[1.,1.]]),
        //   torch.tensor([0,1,0]), weight=torch.tensor([1.,3.])) = 0.3519720435142517, and
        //   without weights 0.3777789771556854 (per-row nll 0.126928, 0.313262, 0.693147).
        let dev = Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2]),
            &dev,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 0], [3]), &dev);
        let plain: f32 = classification_loss(logits.clone(), y.clone(), None).into_scalar();
        assert!((plain - 0.377_778_97).abs() < 1e-6, "{plain}");
        let weighted: f32 = classification_loss(logits, y, Some(&[1.0, 3.0])).into_scalar();
        assert!((weighted - 0.351_972_04).abs() < 1e-6, "{weighted}");
        assert_eq!(balanced_weights(&[3, 1]), vec![4.0 / 6.0, 2.0]);
    }
}

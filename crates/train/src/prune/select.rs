//! Which weights magnitude pruning removes: the one set of rules behind one-shot pruning
//! (`refinery prune`, `refinery_compress::prune`) and gradual pruning during training
//! ([`super::PrunedTask`]).
//!
//! Which tensors: every 2-D `*.weight` of a Linear layer (HF `nn.Linear` `[out, in]`, or GPT-2's
//! `Conv1D` `[in, out]`: magnitude pruning does not care which way round). Never pruned:
//! embeddings (`*embeddings.weight`, `embed_*`, `shared`, GPT-2 `wte`/`wpe`), LayerNorm and
//! every other 1-D tensor, and the copies of tied weights (`lm_head.weight`,
//! `cls.predictions.decoder.weight`). Classifier heads (`classifier.*`, `score.*`, `heads.*`,
//! `qa_outputs.*`, `cls.*`) stay dense unless asked for (`include_head`).
//!
//! How many: with sparsity `S`, exactly `round(S·n)` weights are pruned, the smallest by `|w|`;
//! ties at the threshold go to the lowest index (tensors in name order, then row-major in the
//! checkpoint's layout), so the result is deterministic. [`Scope::Global`] ranks all selected
//! weights together (one threshold, layers end up with different sparsities), [`Scope::Layer`]
//! ranks each tensor on its own (the same sparsity in each). Weights already pruned (a gradual
//! run's earlier masks) rank below every other weight, so masks only grow.

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// A fraction of weights to remove, checked to be in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Sparsity(f64);

impl Sparsity {
    /// Checks `s`: a finite number with `0 <= s < 1`.
    pub fn new(s: f64) -> Result<Self, TrainError> {
        if s.is_finite() && (0.0..1.0).contains(&s) {
            Ok(Sparsity(s))
        } else {
            Err(TrainError::InvalidConfig(format!(
                "sparsity {s}: must be at least 0 and below 1"
            )))
        }
    }

    /// The fraction.
    pub fn get(self) -> f64 {
        self.0
    }

    /// How many of `n` weights to prune: `round(S·n)`.
    pub fn count(self, n: usize) -> usize {
        ((self.0 * n as f64).round() as usize).min(n)
    }
}

impl TryFrom<f64> for Sparsity {
    type Error = TrainError;
    fn try_from(s: f64) -> Result<Self, TrainError> {
        Sparsity::new(s)
    }
}

impl From<Sparsity> for f64 {
    fn from(s: Sparsity) -> f64 {
        s.0
    }
}

/// Over which weights one magnitude threshold applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One threshold over all selected weights.
    #[default]
    Global,
    /// The same sparsity in each tensor.
    Layer,
}

impl Scope {
    /// The name used in `config.json`, `pruning.json`, `train.toml` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Layer => "layer",
        }
    }
}

/// Why a tensor is pruned or left alone (see the module docs for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorRole {
    /// A Linear layer's weight: pruned.
    Linear,
    /// A classifier/score head's weight: pruned only with `include_head`.
    Head,
    /// An embedding table.
    Embedding,
    /// A copy of a tied weight (pruning it would break the tie).
    Tied,
    /// Not a 2-D `*.weight` (bias, LayerNorm, buffers).
    Other,
}

impl TensorRole {
    /// Whether a tensor with this role is pruned under `include_head`.
    pub fn selected(self, include_head: bool) -> bool {
        self == TensorRole::Linear || (include_head && self == TensorRole::Head)
    }
}

/// Top-level names of task heads in HF and refinery checkpoints.
const HEAD_PREFIXES: &[&str] = &["classifier", "score", "heads", "qa_outputs", "cls"];

/// Weights that are copies of the embeddings in tied checkpoints.
const TIED: &[&str] = &["lm_head.weight", "cls.predictions.decoder.weight"];

/// The role of the tensor `name` with `shape` (rules in the module docs).
pub fn tensor_role(name: &str, shape: &[usize]) -> TensorRole {
    if TIED.contains(&name) {
        return TensorRole::Tied;
    }
    let Some(stem) = name.strip_suffix(".weight") else {
        return TensorRole::Other;
    };
    if shape.len() != 2 {
        return TensorRole::Other;
    }
    let parts: Vec<&str> = stem.split('.').collect();
    let embedding = parts.iter().any(|p| {
        p.ends_with("embeddings")
            || p.starts_with("embed_")
            || matches!(*p, "wte" | "wpe" | "shared")
    });
    if embedding {
        return TensorRole::Embedding;
    }
    if parts
        .iter()
        .any(|p| p.contains("LayerNorm") || p.starts_with("ln_"))
    {
        return TensorRole::Other;
    }
    if parts.first().is_some_and(|p| HEAD_PREFIXES.contains(p)) {
        return TensorRole::Head;
    }
    TensorRole::Linear
}

/// The rank key of a weight: `|w|` as ordered bits, shifted up by one so that 0 is free for
/// weights pruned already (they rank below everything). For non-negative floats the bit
/// patterns sort as the values do (NaN above infinity, so NaN weights are pruned last).
fn key(w: f32, pruned: bool) -> u64 {
    if pruned {
        0
    } else {
        u64::from(w.to_bits() & 0x7fff_ffff) + 1
    }
}

/// Marks the `k` lowest-ranked weights of `group` (taken as one sequence, in order) in
/// `masks`; ties at the threshold go to the lowest positions. `masks` holds the weights
/// pruned already (they rank first) and gains the new ones. Memory: 8 bytes per weight.
fn mark_smallest(group: &[&[f32]], masks: &mut [&mut [bool]], k: usize) {
    if k == 0 {
        return;
    }
    let keys = |i: usize| {
        group[i]
            .iter()
            .zip(masks[i].iter())
            .map(|(&w, &p)| key(w, p))
    };
    let mut all: Vec<u64> = (0..group.len()).flat_map(keys).collect();
    let n = all.len();
    let k = k.min(n);
    let (_, &mut threshold, _) = all.select_nth_unstable(k - 1);
    drop(all);
    let below: usize = (0..group.len())
        .map(|i| keys(i).filter(|&x| x < threshold).count())
        .sum();
    let mut ties = k - below;
    for (t, m) in group.iter().zip(masks.iter_mut()) {
        for (&w, p) in t.iter().zip(m.iter_mut()) {
            let x = key(w, *p);
            if x < threshold {
                *p = true;
            } else if x == threshold && ties > 0 {
                *p = true;
                ties -= 1;
            }
        }
    }
}

/// Grows `masks` (one per tensor, `true` = pruned; same lengths as `tensors`) to `round(S·n)`
/// of all the weights ([`Scope::Global`], in the given order for ties) or of each tensor's
/// ([`Scope::Layer`]). Masked weights stay masked (a sparsity below the masks' is a no-op).
pub fn grow_masks(tensors: &[&[f32]], masks: &mut [Vec<bool>], sparsity: Sparsity, scope: Scope) {
    match scope {
        Scope::Global => {
            let n = tensors.iter().map(|t| t.len()).sum();
            let mut m: Vec<&mut [bool]> = masks.iter_mut().map(|m| &mut m[..]).collect();
            mark_smallest(tensors, &mut m, sparsity.count(n));
        }
        Scope::Layer => {
            for (t, m) in tensors.iter().zip(masks.iter_mut()) {
                mark_smallest(&[t], &mut [&mut m[..]], sparsity.count(t.len()));
            }
        }
    }
}

/// Prunes `tensors` in place: `round(S·n)` of all their weights ([`Scope::Global`], in the
/// given order for ties) or of each tensor's ([`Scope::Layer`]) are set to `+0.0`.
pub fn magnitude_prune(tensors: &mut [&mut [f32]], sparsity: Sparsity, scope: Scope) {
    let mut masks: Vec<Vec<bool>> = tensors.iter().map(|t| vec![false; t.len()]).collect();
    {
        let group: Vec<&[f32]> = tensors.iter().map(|t| &**t).collect();
        grow_masks(&group, &mut masks, sparsity, scope);
    }
    for (t, m) in tensors.iter_mut().zip(&masks) {
        apply_mask(t, m);
    }
}

/// Sets the masked weights to `+0.0`.
pub fn apply_mask(values: &mut [f32], mask: &[bool]) {
    for (w, &p) in values.iter_mut().zip(mask) {
        if p {
            *w = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Sparsity {
        Sparsity::new(x).unwrap()
    }

    #[test]
    fn pruned_weights_rank_first_so_masks_only_grow() {
        let t: &[f32] = &[0.0, 0.5, -0.1, 0.0];
        // Unmasked, the tie between the two zeros goes to the lowest index.
        let mut m = vec![vec![false; 4]];
        grow_masks(&[t], &mut m, s(0.25), Scope::Global);
        assert_eq!(m[0], [true, false, false, false]);
        // Masked already, index 3 ranks first.
        let mut m = vec![vec![false, false, false, true]];
        grow_masks(&[t], &mut m, s(0.25), Scope::Global);
        assert_eq!(m[0], [false, false, false, true]);
        grow_masks(&[t], &mut m, s(0.5), Scope::Global);
        assert_eq!(m[0], [true, false, false, true]);
        grow_masks(&[t], &mut m, s(0.75), Scope::Global);
        assert_eq!(m[0], [true, false, true, true]);
        // A lower sparsity than the masks' unmasks nothing.
        grow_masks(&[t], &mut m, s(0.25), Scope::Global);
        assert_eq!(m[0], [true, false, true, true]);
    }

    #[test]
    fn layer_scope_counts_per_tensor_and_global_across() {
        let a: &[f32] = &[1.0, 2.0, 3.0, 4.0];
        let b: &[f32] = &[10.0, 20.0];
        let mut m = vec![vec![false; 4], vec![false; 2]];
        grow_masks(&[a, b], &mut m, s(0.5), Scope::Layer);
        assert_eq!(m, [vec![true, true, false, false], vec![true, false]]);
        let mut m = vec![vec![false; 4], vec![false; 2]];
        grow_masks(&[a, b], &mut m, s(0.5), Scope::Global);
        assert_eq!(m, [vec![true, true, true, false], vec![false, false]]);
        let mut w = vec![a.to_vec(), b.to_vec()];
        let mut group: Vec<&mut [f32]> = w.iter_mut().map(|v| &mut v[..]).collect();
        magnitude_prune(&mut group, s(0.5), Scope::Global);
        assert_eq!(w, [vec![0.0, 0.0, 0.0, 4.0], vec![10.0, 20.0]]);
    }
}

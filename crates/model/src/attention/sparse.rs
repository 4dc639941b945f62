//! Sparse attention patterns (sliding window + global tokens, strided) computed without the
//! `[T, T]` scores. [`super::attend`] calls [`sparse_attention`] for a [`super::Mask::Sparse`].

use burn::nn::Dropout;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Sparse attention pattern, stored in a model config as the optional key `sparse_attention`
/// (absent = dense attention). HF `transformers` ignores this key and would compute dense
/// attention for the same checkpoint.
///
/// Key `j` is visible from query `i` (on top of the causal mask `j <= i` of decoders and the
/// padding mask) when:
///
/// - `sliding_window`: `|i - j| < window`, or `i` or `j` is one of the `global_tokens`
///   (Longformer / BigBird: a global token attends to every key and every query attends to
///   it). Causal: the `window` most recent positions, the current one included.
/// - `strided` (Sparse Transformer, Child et al. 2019): `|i - j| < local` or
///   `|i - j| % stride == 0`. Causal: the `local` most recent positions plus every
///   `stride`-th position before `i`; bidirectional: the same on both sides (symmetric).
///
/// In `config.json`:
///
/// ```json
/// "sparse_attention": {"pattern": "sliding_window", "window": 128, "global_tokens": [0]}
/// "sparse_attention": {"pattern": "strided", "stride": 64, "local": 64}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pattern", rename_all = "snake_case", deny_unknown_fields)]
pub enum SparseAttention {
    /// Banded local attention plus global tokens.
    SlidingWindow {
        /// Keys with `|i - j| < window` are visible (`window >= 1`).
        window: usize,
        /// Positions that attend to, and are attended by, every position.
        #[serde(default)]
        global_tokens: Vec<usize>,
    },
    /// Local band plus every `stride`-th position.
    Strided {
        /// `>= 1`; keys with `|i - j| % stride == 0` are visible.
        stride: usize,
        /// `>= 1`; keys with `|i - j| < local` are visible.
        local: usize,
    },
}

impl SparseAttention {
    /// Checks the pattern against the model's maximum sequence length.
    pub fn validate(&self, max_positions: usize) -> Result<(), ModelError> {
        let bad = |msg: String| {
            Err(ModelError::InvalidConfig(format!(
                "sparse_attention: {msg}"
            )))
        };
        match self {
            Self::SlidingWindow {
                window,
                global_tokens,
            } => {
                if *window == 0 {
                    return bad("window must be >= 1".into());
                }
                for (n, &g) in global_tokens.iter().enumerate() {
                    if g >= max_positions {
                        return bad(format!(
                            "global token position {g} is not < the maximum sequence length \
                             {max_positions}"
                        ));
                    }
                    if global_tokens[..n].contains(&g) {
                        return bad(format!("global token position {g} is listed twice"));
                    }
                }
            }
            Self::Strided { stride, local } => {
                if *stride == 0 {
                    return bad("stride must be >= 1".into());
                }
                if *local == 0 {
                    return bad("local must be >= 1".into());
                }
            }
        }
        Ok(())
    }

    /// Whether key `j` is visible from query `i` (ignoring padding).
    pub fn visible(&self, i: usize, j: usize, causal: bool) -> bool {
        if causal && j > i {
            return false;
        }
        let d = i.abs_diff(j);
        match self {
            Self::SlidingWindow {
                window,
                global_tokens,
            } => d < *window || global_tokens.contains(&i) || global_tokens.contains(&j),
            Self::Strided { stride, local } => d < *local || d % *stride == 0,
        }
    }
}

/// The dense equivalent of a sparse pattern: a mask `[T, T]`, `true` where key `j` is NOT
/// visible from query `i` (causal part included when `causal`).
pub fn sparse_mask(
    pattern: &SparseAttention,
    t: usize,
    causal: bool,
    device: &Device,
) -> Tensor<2, Bool> {
    sparse_mask_rows(pattern, 0, t, causal, device) // [T, T]
}

/// Rows `past..past + tq` of the dense equivalent of a pattern over `past + tq` keys: the
/// queries of a KV-cache step. `[Tq, past + Tq]`, `true` where masked.
pub(crate) fn sparse_mask_rows(
    pattern: &SparseAttention,
    past: usize,
    tq: usize,
    causal: bool,
    device: &Device,
) -> Tensor<2, Bool> {
    let tk = past + tq;
    let data: Vec<bool> = (0..tq * tk)
        .map(|n| !pattern.visible(past + n / tk, n % tk, causal))
        .collect();
    Tensor::from_data(TensorData::new(data, [tq, tk]), device) // [Tq, Tk]
}

/// Options of [`sparse_attention`].
#[derive(Debug, Clone, Default)]
pub struct SparseOptions<'a> {
    /// Decoder (`j <= i`) or encoder attention.
    pub causal: bool,
    /// `[B, T]`, `true` where the key is padding (see [`super::padding_mask`]).
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Dropout applied to the probabilities that multiply the values.
    pub dropout: Option<&'a Dropout>,
    /// Also return the dense attention maps `[B, H, T, T]` (zeros where masked).
    pub output_attentions: bool,
}

/// One group of key slots of the sparse computation. Every query row has `k` slots of
/// each group; [`Group::key`] says which key position a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Keys of the query's block of `w` positions and of the `offsets - 1` blocks before it
    /// (and the one after it when bidirectional): `k = offsets * w` slots, key
    /// `j = (i / w - 1) * w + slot`.
    Band { w: usize, offsets: usize },
    /// The global token positions: `k = G`, key `j = global[slot]`.
    Global,
    /// Keys of the query's residue class mod `s`: `k = ceil(T / s)`, key `j = slot * s + i % s`.
    Strided { s: usize, m: usize },
}

impl Group {
    fn slots(self, globals: &[usize]) -> usize {
        match self {
            Self::Band { w, offsets } => w * offsets,
            Self::Global => globals.len(),
            Self::Strided { m, .. } => m,
        }
    }

    fn key(self, i: usize, slot: usize, t: usize, globals: &[usize]) -> Option<usize> {
        let j = match self {
            Self::Band { w, .. } => ((i / w) * w + slot).checked_sub(w)?,
            Self::Global => globals[slot],
            Self::Strided { s, .. } => slot * s + i % s,
        };
        (j < t).then_some(j)
    }
}

/// Which group owns the visible pair `(i, j)`: every visible pair is counted in exactly one.
fn owner(pattern: &SparseAttention, is_global: &[bool], i: usize, j: usize) -> Group {
    match pattern {
        SparseAttention::SlidingWindow { .. } if is_global[j] => Group::Global,
        // Band parameters are irrelevant for the comparison below (only the variant is).
        SparseAttention::SlidingWindow { .. } => Group::Band { w: 0, offsets: 0 },
        SparseAttention::Strided { local, .. } if i.abs_diff(j) < *local => {
            Group::Band { w: 0, offsets: 0 }
        }
        SparseAttention::Strided { .. } => Group::Strided { s: 0, m: 0 },
    }
}

fn same_variant(a: Group, b: Group) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// Zero rows before and after along dim 2 of `[B, H, T, X]`.
fn pad_rows<const D: usize>(x: Tensor<D>, dim: usize, before: usize, after: usize) -> Tensor<D> {
    if before == 0 && after == 0 {
        return x;
    }
    let device = x.device();
    let mut parts = Vec::with_capacity(3);
    let mut shape = x.dims();
    if before > 0 {
        shape[dim] = before;
        parts.push(Tensor::zeros(shape, &device));
    }
    parts.push(x);
    if after > 0 {
        shape[dim] = after;
        parts.push(Tensor::zeros(shape, &device));
    }
    Tensor::cat(parts, dim)
}

/// `[B, H, T, Dh]` → the band keys of every query block `[B, H, nb, offsets * w, Dh]`.
fn band_keys(x: Tensor<4>, w: usize, nb: usize, offsets: usize) -> Tensor<5> {
    let [b, h, t, dh] = x.dims();
    let blocks = nb + offsets - 1;
    let xp = pad_rows(x, 2, w, blocks * w - w - t).reshape([b, h, blocks, w, dh]); // [B, H, nb + offsets - 1, w, Dh]
    let shifted = (0..offsets).map(|o| xp.clone().narrow(2, o, nb)).collect();
    Tensor::cat(shifted, 3) // [B, H, nb, offsets * w, Dh]
}

/// `[B, H, T, Dh]` → grouped by residue mod `s`: `[B, H, s, m, Dh]` (row `r` of group `p` is
/// position `r * s + p`).
fn strided_groups(x: Tensor<4>, s: usize, m: usize) -> Tensor<5> {
    let [b, h, t, dh] = x.dims();
    pad_rows(x, 2, 0, m * s - t)
        .reshape([b, h, m, s, dh]) // [B, H, m, s, Dh]
        .swap_dims(2, 3) // [B, H, s, m, Dh]
}

/// Scores of one group, query-major: `[B, H, T, k]` (unscaled).
fn group_scores(group: Group, q: &Tensor<4>, k: &Tensor<4>, globals: &Tensor<1, Int>) -> Tensor<4> {
    let [b, h, t, dh] = q.dims();
    match group {
        Group::Band { w, offsets } => {
            let nb = t.div_ceil(w);
            let qb = pad_rows(q.clone(), 2, 0, nb * w - t).reshape([b, h, nb, w, dh]); // [B, H, nb, w, Dh]
            let kb = band_keys(k.clone(), w, nb, offsets); // [B, H, nb, K, Dh]
            qb.matmul(kb.swap_dims(3, 4)) // [B, H, nb, w, K]
                .reshape([b, h, nb * w, offsets * w])
                .narrow(2, 0, t) // [B, H, T, K]
        }
        Group::Global => {
            let kg = k.clone().select(2, globals.clone()); // [B, H, G, Dh]
            q.clone().matmul(kg.swap_dims(2, 3)) // [B, H, T, G]
        }
        Group::Strided { s, m } => {
            let qs = strided_groups(q.clone(), s, m); // [B, H, s, m, Dh]
            let ks = strided_groups(k.clone(), s, m); // [B, H, s, m, Dh]
            qs.matmul(ks.swap_dims(3, 4)) // [B, H, s, m(query), m(key)]
                .swap_dims(2, 3) // [B, H, m, s, m]
                .reshape([b, h, m * s, m])
                .narrow(2, 0, t) // [B, H, T, m]
        }
    }
}

/// Output of one group from its probabilities `p`: `[B, H, T, k]` → `[B, H, T, Dh]`.
fn group_output(group: Group, p: Tensor<4>, v: &Tensor<4>, globals: &Tensor<1, Int>) -> Tensor<4> {
    let [b, h, t, dh] = v.dims();
    match group {
        Group::Band { w, offsets } => {
            let nb = t.div_ceil(w);
            let pb = pad_rows(p, 2, 0, nb * w - t).reshape([b, h, nb, w, offsets * w]); // [B, H, nb, w, K]
            let vb = band_keys(v.clone(), w, nb, offsets); // [B, H, nb, K, Dh]
            pb.matmul(vb) // [B, H, nb, w, Dh]
                .reshape([b, h, nb * w, dh])
                .narrow(2, 0, t) // [B, H, T, Dh]
        }
        Group::Global => {
            let vg = v.clone().select(2, globals.clone()); // [B, H, G, Dh]
            p.matmul(vg) // [B, H, T, Dh]
        }
        Group::Strided { s, m } => {
            let ps = pad_rows(p, 2, 0, m * s - t)
                .reshape([b, h, m, s, m])
                .swap_dims(2, 3); // [B, H, s, m(query), m(key)]
            ps.matmul(strided_groups(v.clone(), s, m)) // [B, H, s, m, Dh]
                .swap_dims(2, 3) // [B, H, m, s, Dh]
                .reshape([b, h, m * s, dh])
                .narrow(2, 0, t) // [B, H, T, Dh]
        }
    }
}

/// Sparse scaled dot-product attention: the same result as [`super::scaled_dot_product`] with the
/// mask [`sparse_mask`] (plus causal and padding masks), computed without the `[T, T]` scores.
///
/// - `q`, `k`, `v`: `[B, H, T, Dh]`
///
/// Returns the output `[B, H, T, Dh]` and, when `opts.output_attentions`, the dense attention
/// probabilities `[B, H, T, T]` (pre-dropout, zeros where masked).
///
/// Cost: sliding window `O(T · 3w · Dh)` (`2w` causal) plus `O(T · G · Dh)` for `G` global
/// tokens (their rows and columns are computed densely); strided `O(T · (3·local + T/stride) ·
/// Dh)`. Queries are split into blocks of `w` (resp. residue classes mod `stride`); each block
/// attends to the keys of its neighbouring blocks, with the positions outside the pattern masked.
///
/// A query whose visible keys are all padding (only padding queries can be in that case) gets
/// a uniform distribution over its slots, which differs from the dense result (uniform over all
/// `T` keys): the outputs at padding positions are unspecified, as with any padding.
pub fn sparse_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    pattern: &SparseAttention,
    opts: SparseOptions<'_>,
) -> (Tensor<4>, Option<Tensor<4>>) {
    let [b, h, t, dh] = q.dims();
    let device = q.device();
    let scale = 1.0 / (dh as f64).sqrt();
    let causal = opts.causal;
    let offsets = if causal { 2 } else { 3 };

    // Host side: the groups, and for every (query, slot) its key position and positional mask.
    let (groups, globals): (Vec<Group>, Vec<usize>) = match pattern {
        SparseAttention::SlidingWindow {
            window,
            global_tokens,
        } => {
            let globals: Vec<usize> = global_tokens.iter().copied().filter(|&g| g < t).collect();
            let mut groups = vec![Group::Band {
                w: (*window).min(t),
                offsets,
            }];
            if !globals.is_empty() {
                groups.push(Group::Global);
            }
            (groups, globals)
        }
        SparseAttention::Strided { stride, local } => (
            vec![
                Group::Band {
                    w: (*local).min(t),
                    offsets,
                },
                Group::Strided {
                    s: *stride,
                    m: t.div_ceil(*stride),
                },
            ],
            Vec::new(),
        ),
    };
    let mut is_global = vec![false; t];
    for &g in &globals {
        is_global[g] = true;
    }
    let widths: Vec<usize> = groups.iter().map(|g| g.slots(&globals)).collect();
    let k_all: usize = widths.iter().sum();
    let mut masked = Vec::with_capacity(t * k_all);
    let mut index = Vec::with_capacity(t * k_all);
    for i in 0..t {
        for &group in &groups {
            for slot in 0..group.slots(&globals) {
                match group.key(i, slot, t, &globals) {
                    Some(j) => {
                        let ok = pattern.visible(i, j, causal)
                            && same_variant(owner(pattern, &is_global, i, j), group);
                        masked.push(!ok);
                        index.push(j as i64);
                    }
                    None => {
                        masked.push(true);
                        index.push(t as i64); // a spare column, dropped from the maps
                    }
                }
            }
        }
    }
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(masked, [t, k_all]), &device)
        .reshape([1, 1, t, k_all]); // [1, 1, T, K]
    let index = Tensor::<2, Int>::from_data(TensorData::new(index, [t, k_all]), &device)
        .reshape([1, 1, t, k_all]); // [1, 1, T, K]
    let global_idx = Tensor::<1, Int>::from_data(
        TensorData::new(
            globals.iter().map(|&g| g as i64).collect::<Vec<_>>(),
            [globals.len()],
        ),
        &device,
    ); // [G]

    // Padding: gather the key-padding flag of every slot's key.
    let mask = match &opts.key_padding {
        Some(kp) => {
            let kp = pad_rows(kp.clone().int().float().reshape([b, 1, t]), 2, 0, 1) // [B, 1, T+1]
                .reshape([b, t + 1]);
            let slots = index.clone().reshape([1, t * k_all]).expand([b, t * k_all]); // [B, T*K]
            let pad = kp
                .gather(1, slots)
                .reshape([b, 1, t, k_all])
                .greater_elem(0.5); // [B, 1, T, K]
            mask.expand([b, 1, t, k_all]).bool_or(pad)
        }
        None => mask,
    }; // [B|1, 1, T, K]

    let scores: Vec<Tensor<4>> = groups
        .iter()
        .map(|&g| group_scores(g, &q, &k, &global_idx))
        .collect();
    let scores = Tensor::cat(scores, 3).mul_scalar(scale); // [B, H, T, K]
    let scores = scores.mask_fill(mask.expand([b, h, t, k_all]), f32::MIN);
    let probs = softmax(scores, 3); // [B, H, T, K]
    let dropped = match opts.dropout {
        Some(d) => d.forward(probs.clone()),
        None => probs.clone(),
    };
    let mut offset = 0;
    let mut out: Option<Tensor<4>> = None;
    for (&g, &width) in groups.iter().zip(&widths) {
        let part = group_output(g, dropped.clone().narrow(3, offset, width), &v, &global_idx); // [B, H, T, Dh]
        out = Some(match out {
            Some(o) => o + part,
            None => part,
        });
        offset += width;
    }
    let mut out = out.unwrap_or_else(|| Tensor::zeros([b, h, t, dh], &device)); // [B, H, T, Dh]

    let mut maps = opts.output_attentions.then(|| {
        Tensor::<4>::zeros([b, h, t, t + 1], &device)
            .scatter(
                3,
                index.expand([b, h, t, k_all]),
                probs,
                IndexingUpdateOp::Add,
            )
            .narrow(3, 0, t) // [B, H, T, T]
    });

    // Global rows attend to everything: computed densely and written over the band rows.
    if !globals.is_empty() {
        let g = globals.len();
        let qg = q.select(2, global_idx.clone()); // [B, H, G, Dh]
        let row_mask: Vec<bool> = globals
            .iter()
            .flat_map(|&i| (0..t).map(move |j| causal && j > i))
            .collect();
        let row_mask = Tensor::<2, Bool>::from_data(TensorData::new(row_mask, [g, t]), &device)
            .reshape([1, 1, g, t]); // [1, 1, G, T]
        let row_mask = match &opts.key_padding {
            Some(kp) => row_mask
                .expand([b, 1, g, t])
                .bool_or(kp.clone().reshape([b, 1, 1, t]).expand([b, 1, g, t])),
            None => row_mask,
        }; // [B|1, 1, G, T]
        let scores = qg.matmul(k.swap_dims(2, 3)).mul_scalar(scale); // [B, H, G, T]
        let probs_g = softmax(scores.mask_fill(row_mask.expand([b, h, g, t]), f32::MIN), 3); // [B, H, G, T]
        let dropped_g = match opts.dropout {
            Some(d) => d.forward(probs_g.clone()),
            None => probs_g.clone(),
        };
        let out_g = dropped_g.matmul(v); // [B, H, G, Dh]
                                         // One-hot [T, G] placing global row n at position globals[n].
        let mut onehot = vec![0.0f32; t * g];
        let mut is_row = vec![false; t];
        for (n, &i) in globals.iter().enumerate() {
            onehot[i * g + n] = 1.0;
            is_row[i] = true;
        }
        let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [t, g]), &device)
            .reshape([1, 1, t, g])
            .expand([b, h, t, g]); // [B, H, T, G]
        let is_row = Tensor::<1, Bool>::from_data(TensorData::new(is_row, [t]), &device)
            .reshape([1, 1, t, 1]); // [1, 1, T, 1]
        out = out.mask_where(
            is_row.clone().expand([b, h, t, dh]),
            onehot.clone().matmul(out_g),
        ); // [B, H, T, Dh]
        maps = maps.map(|m| m.mask_where(is_row.expand([b, h, t, t]), onehot.matmul(probs_g)));
    }
    (out, maps)
}

//! Scaled dot-product attention: the one computation every attention layer of the crate
//! runs ([`attend`]), with a dense boolean mask (causal, padding) or a sparse pattern
//! ([`sparse`]), and a KV cache for incremental decoding.
//!
//! ```text
//! layer:   q, k, v = heads(proj(x))                      [B, H, T, Dh]
//!          k, v    = cache.extend(k, v)                   (with a KV cache: past + new keys)
//!          ctx     = attend(q, k, v, mask, dropout)       Mask::Dense → softmax(q kᵀ/√Dh) v
//!                                                         Mask::Sparse → sparse_attention
//!          y       = out_proj(merge(ctx))                 [B, T, D]
//! ```
//!
//! Masks are boolean tensors where `true` means "this key may NOT be attended to"
//! (burn's `mask_fill` convention). Masked scores are filled with `f32::MIN` (as HF
//! does with `torch.finfo(dtype).min`) rather than `-inf`, so a fully masked row
//! (a padding query) gives a uniform distribution instead of NaN.

mod sparse;

use burn::nn::Dropout;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor};

pub use sparse::{sparse_attention, sparse_mask, SparseAttention, SparseOptions};

/// Causal mask `[T, T]`: `true` where key position `j > i` (the future).
pub fn causal_mask(t: usize, device: &Device) -> Tensor<2, Bool> {
    // tril_mask marks everything above the diagonal as `true`.
    Tensor::<2, Bool>::tril_mask([t, t], 0, device)
}

/// Padding mask `[B, T]` from an HF-style `attention_mask` (`1` = real token, `0` = padding):
/// `true` where the key is padding.
pub fn padding_mask(attention_mask: Tensor<2, Int>) -> Tensor<2, Bool> {
    attention_mask.equal_elem(0)
}

/// Causal mask of `t` new queries after `past` cached positions: `[T, past + T]`, `true`
/// where key `j > past + i` (the future). `past = 0` is [`causal_mask`].
pub fn causal_mask_after(past: usize, t: usize, device: &Device) -> Tensor<2, Bool> {
    Tensor::<2, Bool>::tril_mask([t, past + t], past as i64, device)
}

/// Combines an optional causal mask `[T, T]` and an optional padding mask `[B, T]` into one
/// mask `[B, 1, T, T]` (broadcast over heads), or `None` when neither is given.
pub fn combine_masks(
    causal: Option<Tensor<2, Bool>>,
    padding: Option<Tensor<2, Bool>>,
    batch: usize,
    t: usize,
) -> Option<Tensor<4, Bool>> {
    // causal: [T, T] -> [B, 1, T, T]
    let causal = causal.map(|m| m.reshape([1, 1, t, t]).expand([batch, 1, t, t]));
    // padding: [B, T] (keys) -> [B, 1, 1, T] -> [B, 1, T, T]
    let padding = padding.map(|m| m.reshape([batch, 1, 1, t]).expand([batch, 1, t, t]));
    match (causal, padding) {
        (Some(c), Some(p)) => Some(c.bool_or(p)),
        (Some(m), None) | (None, Some(m)) => Some(m),
        (None, None) => None,
    }
}

/// Attention probabilities `softmax(q kᵀ / sqrt(d_head))` with masked keys filled first.
///
/// - `q`, `k`: `[B, H, T, Dh]`
/// - `mask`: `[B, 1, T, T]`, `true` = masked
///
/// Returns `[B, H, T, T]`.
pub fn attention_probs(q: Tensor<4>, k: Tensor<4>, mask: Option<Tensor<4, Bool>>) -> Tensor<4> {
    let [b, h, tq, d_head] = q.dims();
    let [_, _, tk, _] = k.dims();
    let scale = 1.0 / (d_head as f64).sqrt();
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale); // [B, H, Tq, Tk]
    let scores = match mask {
        // [B, 1, Tq, Tk] (or broadcastable) -> [B, H, Tq, Tk]; Tq != Tk for cross-attention.
        Some(m) => scores.mask_fill(m.expand([b, h, tq, tk]), f32::MIN),
        None => scores,
    };
    softmax(scores, 3) // [B, H, T, T]
}

/// `softmax(q kᵀ / sqrt(d_head) + mask) v`.
///
/// - `q`, `k`, `v`: `[B, H, T, Dh]`
/// - `mask`: `[B, 1, T, T]`, `true` = masked
///
/// Returns the output `[B, H, T, Dh]` and the attention probabilities `[B, H, T, T]`.
pub fn scaled_dot_product(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
) -> (Tensor<4>, Tensor<4>) {
    dense_attention(q, k, v, mask, None)
}

/// [`scaled_dot_product`] with `dropout` on the probabilities that multiply the values; the
/// returned probabilities are the pre-dropout ones (as HF returns them in eval mode).
///
/// - `q`: `[B, H, Tq, Dh]`, `k`, `v`: `[B, H, Tk, Dh]`
/// - `mask`: `[B|1, 1, Tq, Tk]` (or broadcastable), `true` = masked
///
/// Returns `[B, H, Tq, Dh]` and `[B, H, Tq, Tk]`.
pub fn dense_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    dropout: Option<&Dropout>,
) -> (Tensor<4>, Tensor<4>) {
    let probs = attention_probs(q, k, mask); // [B, H, Tq, Tk]
    let weights = match dropout {
        Some(d) => d.forward(probs.clone()),
        None => probs.clone(),
    };
    (weights.matmul(v), probs) // [B, H, Tq, Dh]
}

/// Which keys each query may attend to.
#[derive(Debug, Clone)]
pub enum Mask<'a> {
    /// A dense boolean mask `[B|1, 1, Tq, Tk]` (`true` = masked), or `None`: every key.
    Dense(Option<Tensor<4, Bool>>),
    /// A sparse pattern (self-attention), computed without the `[T, T]` scores; with a KV
    /// cache, the rows of its dense equivalent for the new queries.
    Sparse {
        pattern: &'a SparseAttention,
        /// Decoder (`j <= i`) or encoder attention.
        causal: bool,
        /// `[B, Tk]`, `true` where the key is padding (see [`padding_mask`]).
        key_padding: Option<Tensor<2, Bool>>,
    },
}

impl From<Option<Tensor<4, Bool>>> for Mask<'_> {
    fn from(mask: Option<Tensor<4, Bool>>) -> Self {
        Mask::Dense(mask)
    }
}

/// The mask of a self-attention layer whose pattern is `sparse` (`None` = dense): the sparse
/// pattern with the key padding, or `dense`, the mask built once for all dense layers.
pub fn layer_mask<'a>(
    sparse: Option<&'a SparseAttention>,
    dense: &Option<Tensor<4, Bool>>,
    causal: bool,
    padding: &Option<Tensor<2, Bool>>,
) -> Mask<'a> {
    match sparse {
        Some(pattern) => Mask::Sparse {
            pattern,
            causal,
            key_padding: padding.clone(),
        },
        None => Mask::Dense(dense.clone()),
    }
}

/// Keys and values of one attention layer for the positions already run, `[B, H, T_past, Dh]`.
#[derive(Debug, Clone, Default)]
pub struct KvLayer(Option<(Tensor<4>, Tensor<4>)>);

impl KvLayer {
    /// Appends the new keys and values `[B, H, T, Dh]`; returns all of them `[B, H, past + T,
    /// Dh]`.
    pub fn extend(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.0.take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
            None => (k, v),
        };
        self.0 = Some((k.clone(), v.clone()));
        (k, v)
    }
}

/// Keys and values of every layer of a model for the tokens already run (incremental decoding;
/// see [`crate::generate`]).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<KvLayer>,
    pub(crate) len: usize,
}

impl KvCache {
    /// An empty cache for a model with `n_layer` attention layers.
    pub fn new(n_layer: usize) -> Self {
        Self {
            layers: vec![KvLayer::default(); n_layer],
            len: 0,
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything (the next step starts at position 0).
    pub fn clear(&mut self) {
        self.layers.fill(KvLayer::default());
        self.len = 0;
    }
}

/// How a self-attention layer attends: its mask, an optional KV cache and whether to return
/// the attention maps. `Option<Tensor<4, Bool>>` converts to a dense mask without a cache.
#[derive(Debug)]
pub struct Attend<'a> {
    pub mask: Mask<'a>,
    /// Keys/values of the earlier positions; the new ones are appended.
    pub cache: Option<&'a mut KvLayer>,
    /// Return the maps of a sparse pattern (dense attention always returns them: they are
    /// computed anyway).
    pub maps: bool,
}

impl<'a> From<Mask<'a>> for Attend<'a> {
    fn from(mask: Mask<'a>) -> Self {
        Attend {
            mask,
            cache: None,
            maps: false,
        }
    }
}

impl From<Option<Tensor<4, Bool>>> for Attend<'_> {
    fn from(mask: Option<Tensor<4, Bool>>) -> Self {
        Mask::Dense(mask).into()
    }
}

/// The attention step of every self-attention layer: the new keys and values go through the
/// cache, then `softmax(q kᵀ / sqrt(Dh) + mask) v` with `dropout` on the probabilities.
///
/// - `q`, `k`, `v`: `[B, H, T, Dh]` (the new positions)
///
/// Returns the context `[B, H, T, Dh]` and the pre-dropout probabilities `[B, H, T, T_past +
/// T]` (for a sparse pattern without cache only when `attend.maps`; zeros where masked).
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    attend: Attend<'_>,
    dropout: &Dropout,
) -> (Tensor<4>, Option<Tensor<4>>) {
    let Attend { mask, cache, maps } = attend;
    let (k, v) = match cache {
        Some(cache) => cache.extend(k, v), // [B, H, P+T, Dh]
        None => (k, v),
    };
    let [b, _, tq, _] = q.dims();
    let [_, _, tk, _] = k.dims();
    let mask = match mask {
        Mask::Dense(mask) => mask,
        Mask::Sparse {
            pattern,
            causal,
            key_padding,
        } if tq == tk => {
            let opts = SparseOptions {
                causal,
                key_padding,
                dropout: Some(dropout),
                output_attentions: maps,
            };
            return sparse_attention(q, k, v, pattern, opts);
        }
        // Queries after cached keys: the rows of the pattern's dense equivalent.
        Mask::Sparse {
            pattern,
            causal,
            key_padding,
        } => {
            let rows = sparse::sparse_mask_rows(pattern, tk - tq, tq, causal, &q.device())
                .reshape([1, 1, tq, tk]); // [1, 1, Tq, Tk]
            Some(match key_padding {
                Some(p) => rows
                    .expand([b, 1, tq, tk])
                    .bool_or(p.reshape([b, 1, 1, tk]).expand([b, 1, tq, tk])),
                None => rows,
            })
        }
    };
    let (ctx, probs) = dense_attention(q, k, v, mask, Some(dropout));
    (ctx, Some(probs))
}

/// `[B, T, D]` → `[B, H, T, D / H]`.
pub fn split_heads(x: Tensor<3>, n_head: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_head, d / n_head]).swap_dims(1, 2)
}

/// `[B, H, T, Dh]` → `[B, T, H * Dh]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn causal_mask_marks_the_future() {
        let dev = Device::flex();
        let m: Vec<bool> = causal_mask(3, &dev).into_data().try_to_vec().unwrap();
        assert_eq!(
            m,
            vec![false, true, true, false, false, true, false, false, false]
        );
    }

    #[test]
    fn padding_keys_get_zero_probability() {
        let dev = Device::flex();
        let q = Tensor::<4>::random(
            [2, 1, 3, 4],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &dev,
        );
        let am =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 1, 0, 1, 1, 1], [2, 3]), &dev);
        let mask = combine_masks(Some(causal_mask(3, &dev)), Some(padding_mask(am)), 2, 3);
        let (_, p) = scaled_dot_product(q.clone(), q.clone(), q, mask);
        let p: Vec<f32> = p.into_data().try_to_vec().unwrap();
        // batch 0, query 2, key 2 is padding; query 0 sees only key 0.
        assert_eq!(p[2 * 3 + 2], 0.0);
        assert!((p[0] - 1.0).abs() < 1e-6);
        assert_eq!(p[1], 0.0);
    }
}

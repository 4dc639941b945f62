//! Scaled dot-product attention with causal and padding masks.
//!
//! Masks are boolean tensors where `true` means "this key may NOT be attended to"
//! (burn's `mask_fill` convention). Masked scores are filled with `f32::MIN` (as HF
//! does with `torch.finfo(dtype).min`) rather than `-inf`, so a fully masked row
//! (a padding query) gives a uniform distribution instead of NaN.

use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor};

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
    let [b, h, t, d_head] = q.dims();
    let scale = 1.0 / (d_head as f64).sqrt();
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale); // [B, H, T, T]
    let scores = match mask {
        Some(m) => scores.mask_fill(m.expand([b, h, t, t]), f32::MIN),
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
    let probs = attention_probs(q, k, mask); // [B, H, T, T]
    let out = probs.clone().matmul(v); // [B, H, T, Dh]
    (out, probs)
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

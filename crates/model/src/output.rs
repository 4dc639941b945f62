//! What a forward pass returns besides its main output (HF `output_hidden_states`,
//! `output_attentions`), shared by every model of the crate.

/// What [`crate::Gpt::forward_with`] (and the other models' forwards) return besides the
/// logits.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    /// Return `n_layer + 1` hidden states `[B, T, D]`, as HF `output_hidden_states`:
    /// the embeddings, the output of blocks `0..n_layer-1`, and `ln_f` of the last block.
    pub hidden_states: bool,
    /// Return the attention probabilities `[B, H, T, T]` of every layer.
    pub attentions: bool,
}

//! Permutation language model with two-stream attention (XLNet, Yang et al. 2019, §2.3,
//! eq. 4 / fig. 1), on GPT-2-layout pre-LN blocks with learned absolute positions.
//!
//! A factorisation order `z` (a permutation of the real positions of a row) gives every
//! position a rank. Two streams run through the **same** blocks:
//!
//! ```text
//! content  h⁰_i = wte[x_i] + wpe[i]          h_i attends to h_j with rank(j) ≤ rank(i)
//! query    g⁰_i = w + wpe[i]                 g_i attends to h_j with rank(j) < rank(i)
//! for each block (weights shared by both streams; keys/values from the content stream only):
//!     k, v   = c_attn(ln_1(h))                                   [B, H, T, Dh]
//!     h      = h + attn(q = c_attn(ln_1(h)), k, v, content mask) [B, T, D]
//!     g      = g + attn(q = c_attn(ln_1(g)), k, v, query mask)   [B, P, D]
//!     h, g   = h + mlp(ln_2(h)), g + mlp(ln_2(g))
//! logits = ln_f(g) · wteᵀ                                        [B, P, V]
//! ```
//!
//! `w` is a learned "mask" embedding: the query stream never sees its own token, only its
//! position and (through attention) the content of the positions earlier in the order. The
//! query stream can be evaluated at a subset of `P` positions (XLNet's `target_mapping`; see
//! [`PermutationMasks::new`]) or at all of them ([`PermutationMasks::all_positions`]).
//!
//! A query whose mask hides every key (the first position in the order, a padding position)
//! gets a zero attention output, not the uniform average that [`crate::attention`]'s
//! `f32::MIN` fill would give: a uniform average would leak every token into it.
//!
//! Out of scope (XLNet has them, this model does not): relative positional encodings and
//! segment recurrence (Transformer-XL memory), relative segment encodings, bidirectional data
//! pipelines and span-based target selection.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::gpt::{Block, Gpt, GptConfig};
use crate::output::OutputOptions;

/// Permutation LM configuration. The sizes use GPT-2's `config.json` names (the blocks are
/// GPT-2 blocks); `dropout` is XLNet's single dropout probability (embeddings, attention
/// probabilities, residual branches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlmConfig {
    /// Always `"refinery-plm"` (no HF class reads this layout).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    /// Maximum sequence length (learned position table size).
    pub n_positions: usize,
    /// Hidden size `D`.
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// MLP hidden size; `null` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Std of the normal init (also of the mask embedding `w`).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_model_type() -> String {
    "refinery-plm".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}

impl PlmConfig {
    /// A config with the defaults (dropout 0.1, init std 0.02, eps 1e-5) for everything but
    /// the sizes.
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> Self {
        Self {
            model_type: default_model_type(),
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            layer_norm_epsilon: default_eps(),
            dropout: default_dropout(),
            initializer_range: default_init_range(),
        }
    }

    /// Sets the dropout probability.
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// The GPT-2 config of the shared blocks and embeddings.
    pub fn gpt_config(&self) -> GptConfig {
        let mut gpt = GptConfig::new(
            self.vocab_size,
            self.n_positions,
            self.n_embd,
            self.n_layer,
            self.n_head,
        )
        .with_dropout(self.dropout);
        gpt.n_inner = self.n_inner;
        gpt.layer_norm_epsilon = self.layer_norm_epsilon;
        gpt.initializer_range = self.initializer_range;
        gpt
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.model_type != "refinery-plm" {
            return Err(ModelError::InvalidConfig(format!(
                "model_type is {:?}, expected \"refinery-plm\"",
                self.model_type
            )));
        }
        self.gpt_config().validate()
    }

    /// A randomly initialised model: the GPT-2 init for the embeddings and blocks
    /// ([`GptConfig::init`]), normal(0, `initializer_range`) for the mask embedding `w`.
    pub fn init(&self, device: &Device) -> Result<Plm, ModelError> {
        self.validate()?;
        let gpt = self.gpt_config().init(device)?;
        Ok(Plm::from_gpt(gpt, self.init_mask_embedding(device)))
    }

    fn init_mask_embedding(&self, device: &Device) -> Param<Tensor<1>> {
        Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        }
        .init([self.n_embd], device)
    }
}

/// Boolean attention masks (`true` = may NOT attend) for one batch of factorisation orders.
#[derive(Debug, Clone)]
pub struct PermutationMasks {
    /// `[B, 1, T, T]`: content query `i` may attend to key `j` iff both are in the order and
    /// `rank(j) <= rank(i)`.
    pub content: Tensor<4, Bool>,
    /// `[B, 1, P, T]`: query-stream row `p` (at position `query_positions[b, p]`) may attend to
    /// key `j` iff both are in the order and `rank(j) < rank(query_positions[b, p])`.
    pub query: Tensor<4, Bool>,
    /// `[B, P]`: the position of each query-stream row.
    pub query_positions: Tensor<2, Int>,
}

impl PermutationMasks {
    /// Masks for `orders` (one per row; each a list of distinct positions `< seq_len`, first
    /// = rank 0). Positions missing from a row's order (padding) are never attended and
    /// attend to nothing. `query_positions` (one list per row, all of the same length `P`)
    /// says where the query stream is evaluated; a query position missing from the order
    /// attends to nothing (use it to pad rows with fewer targets).
    pub fn new(
        orders: &[Vec<usize>],
        query_positions: &[Vec<usize>],
        seq_len: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let b = orders.len();
        if query_positions.len() != b {
            return Err(ModelError::InvalidConfig(format!(
                "{} orders but {} rows of query positions",
                b,
                query_positions.len()
            )));
        }
        let p = query_positions.first().map_or(0, Vec::len);
        let t = seq_len;
        let mut content = vec![true; b * t * t];
        let mut query = vec![true; b * p * t];
        let mut positions = Vec::with_capacity(b * p);
        for (row, (order, qpos)) in orders.iter().zip(query_positions).enumerate() {
            let rank = ranks(order, t)?;
            if qpos.len() != p {
                return Err(ModelError::InvalidConfig(format!(
                    "row {row} has {} query positions, row 0 has {p}",
                    qpos.len()
                )));
            }
            let visible = |ri: Option<usize>, rj: Option<usize>, strict: bool| match (ri, rj) {
                (Some(ri), Some(rj)) => rj < ri || (!strict && rj == ri),
                _ => false,
            };
            for i in 0..t {
                for j in 0..t {
                    content[(row * t + i) * t + j] = !visible(rank[i], rank[j], false);
                }
            }
            for (r, &pos) in qpos.iter().enumerate() {
                if pos >= t {
                    return Err(ModelError::InvalidConfig(format!(
                        "row {row}: query position {pos} >= sequence length {t}"
                    )));
                }
                for j in 0..t {
                    query[(row * p + r) * t + j] = !visible(rank[pos], rank[j], true);
                }
                positions.push(pos as i64);
            }
        }
        Ok(Self {
            content: Tensor::from_data(TensorData::new(content, [b, 1, t, t]), device),
            query: Tensor::from_data(TensorData::new(query, [b, 1, p, t]), device),
            query_positions: Tensor::from_data(TensorData::new(positions, [b, p]), device),
        })
    }

    /// Masks with the query stream evaluated at every position `0..seq_len` (`P = T`).
    pub fn all_positions(
        orders: &[Vec<usize>],
        seq_len: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let all: Vec<Vec<usize>> = orders.iter().map(|_| (0..seq_len).collect()).collect();
        Self::new(orders, &all, seq_len, device)
    }
}

/// `rank[pos]` for the positions in `order`, `None` for the others.
fn ranks(order: &[usize], t: usize) -> Result<Vec<Option<usize>>, ModelError> {
    let mut rank = vec![None; t];
    for (r, &pos) in order.iter().enumerate() {
        match rank.get_mut(pos) {
            Some(slot @ None) => *slot = Some(r),
            Some(Some(_)) => {
                return Err(ModelError::InvalidConfig(format!(
                    "position {pos} appears twice in a factorisation order"
                )))
            }
            None => {
                return Err(ModelError::InvalidConfig(format!(
                    "position {pos} in a factorisation order is >= sequence length {t}"
                )))
            }
        }
    }
    Ok(rank)
}

/// Two-stream permutation LM (see the module docs): a GPT-2 whose token embedding is also
/// the output head, whose position embedding and blocks serve both streams, plus the query
/// stream's start embedding.
#[derive(Module, Debug)]
pub struct Plm {
    /// Embeddings, blocks and final LayerNorm (saved as a GPT-2 checkpoint).
    pub gpt: Gpt,
    /// The query stream's initial content `w` `[D]` (XLNet's `mask_emb`).
    pub mask_emb: Param<Tensor<1>>,
}

/// Output of [`Plm::forward`].
#[derive(Debug, Clone)]
pub struct PlmOutput {
    /// Query-stream logits `[B, P, V]`.
    pub logits: Tensor<3>,
    /// `ln_f` of the last content-stream layer `[B, T, D]`.
    pub content: Tensor<3>,
    /// Content stream, `n_layer + 1` tensors `[B, T, D]` when requested (embeddings, blocks
    /// `0..n_layer-1`, `ln_f` of the last block, as [`crate::gpt::GptOutput`]), else empty.
    pub hidden_states: Vec<Tensor<3>>,
    /// Query stream, `n_layer + 1` tensors `[B, P, D]` when requested, else empty.
    pub query_states: Vec<Tensor<3>>,
    /// Content-stream attention probabilities, `n_layer` tensors `[B, H, T, T]` when requested.
    pub attentions: Vec<Tensor<4>>,
    /// Query-stream attention probabilities, `n_layer` tensors `[B, H, P, T]` when requested.
    pub query_attentions: Vec<Tensor<4>>,
}

impl Plm {
    /// A PLM whose embeddings and blocks are those of `gpt` (e.g. a loaded GPT-2 checkpoint)
    /// and whose query stream starts from `mask_emb` `[D]`.
    pub fn from_gpt(gpt: Gpt, mask_emb: Param<Tensor<1>>) -> Self {
        Self { gpt, mask_emb }
    }

    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.gpt.n_layer()
    }

    /// Full forward pass of both streams.
    ///
    /// - `tokens`: `[B, T]`, `T <= n_positions`
    /// - `masks`: from the factorisation orders ([`PermutationMasks`]); padding is expressed
    ///   there (positions missing from the order), not by a separate attention mask.
    ///
    /// # Panics
    ///
    /// If `T > n_positions` or the mask shapes do not match `tokens`.
    pub fn forward(
        &self,
        tokens: Tensor<2, Int>,
        masks: &PermutationMasks,
        opts: OutputOptions,
    ) -> PlmOutput {
        let gpt = &self.gpt;
        let [b, t] = tokens.dims();
        let [n_positions, d] = gpt.wpe.weight.val().dims();
        assert!(
            t <= n_positions,
            "sequence length {t} exceeds n_positions {n_positions}"
        );
        let [mb, _, mt, mk] = masks.content.dims();
        let [qb, _, p, qk] = masks.query.dims();
        assert!(
            (mb, mt, mk, qb, qk) == (b, t, t, b, t) && masks.query_positions.dims() == [b, p],
            "masks do not match tokens [{b}, {t}]"
        );
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).reshape([1, t]); // [1, T]
        let mut h = gpt
            .drop
            .forward(gpt.wte.forward(tokens) + gpt.wpe.forward(positions)); // [B, T, D]
        let w = self.mask_emb.val().reshape([1, 1, d]).expand([b, p, d]); // [B, P, D]
        let mut g = gpt
            .drop
            .forward(w + gpt.wpe.forward(masks.query_positions.clone())); // [B, P, D]

        let mut out = PlmOutput {
            logits: Tensor::zeros([b, p, 1], &device),
            content: Tensor::zeros([b, t, d], &device),
            hidden_states: Vec::new(),
            query_states: Vec::new(),
            attentions: Vec::new(),
            query_attentions: Vec::new(),
        };
        for block in &gpt.h {
            if opts.hidden_states {
                out.hidden_states.push(h.clone());
                out.query_states.push(g.clone());
            }
            let (h2, g2, ph, pg) = two_stream_block(block, h, g, masks);
            (h, g) = (h2, g2);
            if opts.attentions {
                out.attentions.push(ph);
                out.query_attentions.push(pg);
            }
        }
        let h = gpt.ln_f.forward(h); // [B, T, D]
        let g = gpt.ln_f.forward(g); // [B, P, D]
        if opts.hidden_states {
            out.hidden_states.push(h.clone());
            out.query_states.push(g.clone());
        }
        let [v, _] = gpt.wte.weight.val().dims();
        out.logits = g
            .reshape([b * p, d])
            .matmul(gpt.wte.weight.val().transpose()) // [B*P, V]
            .reshape([b, p, v]); // [B, P, V]
        out.content = h;
        out
    }
}

/// One GPT-2 block applied to both streams: `h [B, T, D]`, `g [B, P, D]` →
/// (`h [B, T, D]`, `g [B, P, D]`, content probs `[B, H, T, T]`, query probs `[B, H, P, T]`).
fn two_stream_block(
    block: &Block,
    h: Tensor<3>,
    g: Tensor<3>,
    masks: &PermutationMasks,
) -> (Tensor<3>, Tensor<3>, Tensor<4>, Tensor<4>) {
    let attn = &block.attn;
    let (q_h, k, v) = attn.qkv(block.ln_1.forward(h.clone())); // [B, H, T, Dh]
                                                               // The query stream only uses the q third of c_attn: keys and values come from h.
    let (q_g, _, _) = attn.qkv(block.ln_1.forward(g.clone())); // [B, H, P, Dh]

    let attend = |q: Tensor<4>, mask: Tensor<4, Bool>| {
        let probs = masked_probs(q, k.clone(), mask); // [B, H, L, T]
        let ctx = attn.attn_dropout.forward(probs.clone()).matmul(v.clone()); // [B, H, L, Dh]
        (attn.project(ctx), probs) // [B, L, D]
    };
    let (a_h, probs_h) = attend(q_h, masks.content.clone());
    let (a_g, probs_g) = attend(q_g, masks.query.clone());
    let h = h + a_h; // [B, T, D]
    let g = g + a_g; // [B, P, D]
    let h = h.clone() + block.mlp.forward(block.ln_2.forward(h)); // [B, T, D]
    let g = g.clone() + block.mlp.forward(block.ln_2.forward(g)); // [B, P, D]
    (h, g, probs_h, probs_g)
}

/// `softmax(q kᵀ / sqrt(Dh))` over the unmasked keys; rows with no unmasked key are all zero.
///
/// - `q`: `[B, H, L, Dh]`, `k`: `[B, H, T, Dh]`, `mask`: `[B, 1, L, T]` (`true` = masked)
///
/// Returns `[B, H, L, T]`.
fn masked_probs(q: Tensor<4>, k: Tensor<4>, mask: Tensor<4, Bool>) -> Tensor<4> {
    let [b, h, l, dh] = q.dims();
    let [_, _, t, _] = k.dims();
    let scale = 1.0 / (dh as f64).sqrt();
    let any_visible = mask.clone().bool_not().any_dim(3).float(); // [B, 1, L, 1]
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale); // [B, H, L, T]
    let scores = scores.mask_fill(mask.expand([b, h, l, t]), f32::MIN);
    softmax(scores, 3) * any_visible.expand([b, h, l, t]) // [B, H, L, T]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn ids(v: Vec<i64>, b: usize, t: usize, dev: &Device) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(v, [b, t]), dev)
    }

    fn bools(m: Tensor<4, Bool>) -> Vec<bool> {
        m.into_data().try_to_vec().unwrap()
    }

    #[test]
    fn masks_follow_the_factorisation_order() {
        // Order 2 → 0 → 3 → 1 (XLNet fig. 1 uses 3 → 2 → 4 → 1): ranks [1, 3, 0, 2].
        let dev = Device::flex();
        let m = PermutationMasks::all_positions(&[vec![2, 0, 3, 1]], 4, &dev).unwrap();
        // Visible keys (1 = may attend), by hand from the ranks.
        #[rustfmt::skip]
        let content_visible = [
            1, 0, 1, 0, // pos 0 (rank 1): itself, pos 2 (rank 0)
            1, 1, 1, 1, // pos 1 (rank 3): everything
            0, 0, 1, 0, // pos 2 (rank 0): only itself
            1, 0, 1, 1, // pos 3 (rank 2): pos 2, 0 and itself
        ];
        #[rustfmt::skip]
        let query_visible = [
            0, 0, 1, 0, // pos 0: pos 2
            1, 0, 1, 1, // pos 1: pos 2, 0, 3 (not itself)
            0, 0, 0, 0, // pos 2: nothing
            1, 0, 1, 0, // pos 3: pos 2, 0
        ];
        let expect = |v: &[i32]| v.iter().map(|&x| x == 0).collect::<Vec<bool>>();
        assert_eq!(bools(m.content), expect(&content_visible));
        assert_eq!(bools(m.query), expect(&query_visible));

        // Padding: position 3 is not in the order; query rows only at positions 1 and 3.
        let m = PermutationMasks::new(&[vec![2, 0, 1]], &[vec![1, 3]], 4, &dev).unwrap();
        #[rustfmt::skip]
        let content_visible = [
            1, 0, 1, 0,
            1, 1, 1, 0,
            0, 0, 1, 0,
            0, 0, 0, 0,
        ];
        #[rustfmt::skip]
        let query_visible = [
            1, 0, 1, 0, // pos 1 (rank 2): pos 2, 0
            0, 0, 0, 0, // pos 3: padding, sees nothing
        ];
        assert_eq!(bools(m.content), expect(&content_visible));
        assert_eq!(bools(m.query), expect(&query_visible));
        let qp: Vec<i64> = m
            .query_positions
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        assert_eq!(qp, vec![1, 3]);

        assert!(PermutationMasks::all_positions(&[vec![0, 0]], 2, &dev).is_err());
        assert!(PermutationMasks::all_positions(&[vec![0, 2]], 2, &dev).is_err());
        assert!(PermutationMasks::new(&[vec![0, 1]], &[vec![2]], 2, &dev).is_err());
    }

    /// A tiny GPT-2 with a large init (so that every dependency is far above rounding) and
    /// the PLM built on its weights.
    fn tiny(dev: &Device) -> (Gpt, Plm) {
        dev.seed(11);
        let mut config = PlmConfig::new(13, 8, 16, 2, 2).with_dropout(0.0);
        config.initializer_range = 0.3;
        let gpt = config.gpt_config().init(dev).unwrap();
        let w = Param::from_tensor(Tensor::random([16], Distribution::Normal(0.0, 1.0), dev));
        (gpt.clone(), Plm::from_gpt(gpt, w))
    }

    /// Max |a - b| over the query-stream logits and the content outputs at `pos`.
    fn diff_at(a: &PlmOutput, b: &PlmOutput, pos: usize) -> (f32, f32) {
        let d = |x: Tensor<3>, y: Tensor<3>| -> f32 {
            (x - y).narrow(1, pos, 1).abs().max().into_scalar()
        };
        (
            d(a.logits.clone(), b.logits.clone()),
            d(a.content.clone(), b.content.clone()),
        )
    }

    #[test]
    fn query_stream_sees_exactly_the_earlier_tokens_in_the_order() {
        let dev = Device::flex();
        let (_, model) = tiny(&dev);
        let order = vec![5, 2, 7, 0, 3, 6, 1, 4];
        let mut rank = [0usize; 8];
        for (r, &p) in order.iter().enumerate() {
            rank[p] = r;
        }
        let masks = PermutationMasks::all_positions(std::slice::from_ref(&order), 8, &dev).unwrap();
        let base: Vec<i64> = vec![3, 1, 4, 1, 5, 9, 2, 6];
        let run =
            |toks: Vec<i64>| model.forward(ids(toks, 1, 8, &dev), &masks, OutputOptions::default());
        let out = run(base.clone());
        let mut checked_change = 0;
        for k in 0..8 {
            // Change token k and compare every position i.
            let mut toks = base.clone();
            toks[k] = (toks[k] + 7) % 13;
            let changed = run(toks);
            for i in 0..8 {
                let (dq, dc) = diff_at(&out, &changed, i);
                if rank[k] < rank[i] {
                    assert!(dq > 1e-4, "query {i} ignores earlier token {k}: {dq}");
                    checked_change += 1;
                } else {
                    assert!(
                        dq <= 1e-6,
                        "query {i} sees token {k} (rank {} >= {}): {dq}",
                        rank[k],
                        rank[i]
                    );
                }
                if rank[k] <= rank[i] {
                    assert!(dc > 1e-4, "content {i} ignores token {k}: {dc}");
                } else {
                    assert!(dc <= 1e-6, "content {i} sees later token {k}: {dc}");
                }
            }
        }
        assert_eq!(checked_change, 8 * 7 / 2);
    }

    #[test]
    fn identity_order_is_a_causal_lm_and_the_content_stream_is_gpt() {
        let dev = Device::flex();
        let (gpt, model) = tiny(&dev);
        let t = 6;
        let masks = PermutationMasks::all_positions(&[(0..t).collect()], t, &dev).unwrap();
        let base: Vec<i64> = vec![2, 7, 1, 8, 2, 8];
        let run =
            |toks: Vec<i64>| model.forward(ids(toks, 1, t, &dev), &masks, OutputOptions::default());
        let out = run(base.clone());
        for k in 0..t {
            let mut toks = base.clone();
            toks[k] = (toks[k] + 5) % 13;
            let changed = run(toks);
            for i in 0..t {
                let (dq, _) = diff_at(&out, &changed, i);
                // The prediction at i uses exactly the tokens before i (not x_i itself).
                assert_eq!(dq > 1e-4, k < i, "query {i}, token {k}: {dq}");
                assert!(k < i || dq <= 1e-6);
            }
        }

        // The content stream under the identity order is GPT-2 with the same weights.
        let want = gpt
            .forward_with(
                ids(base, 1, t, &dev),
                None,
                OutputOptions {
                    hidden_states: true,
                    attentions: false,
                },
            )
            .hidden_states
            .pop()
            .unwrap();
        let err: f32 = (want - out.content).abs().max().into_scalar();
        assert!(err < 1e-5, "content stream vs GPT: {err}");
    }

    #[test]
    fn first_in_order_and_padding_see_nothing() {
        // The first position of the order (and a padding query) depends only on w and its
        // position: the same for any tokens.
        let dev = Device::flex();
        let (_, model) = tiny(&dev);
        let masks = PermutationMasks::new(
            &[vec![3, 1, 0], vec![3, 1, 0]],
            &[vec![3, 2], vec![3, 2]],
            4,
            &dev,
        )
        .unwrap();
        let out = model.forward(
            ids(vec![1, 2, 3, 4, 9, 8, 7, 6], 2, 4, &dev),
            &masks,
            OutputOptions {
                hidden_states: true,
                attentions: true,
            },
        );
        let logits: Vec<f32> = out.logits.clone().into_data().try_to_vec().unwrap();
        let v = 13;
        for j in 0..2 * v {
            assert!((logits[j] - logits[2 * v + j]).abs() <= 1e-6, "logit {j}");
        }
        assert_eq!(out.logits.dims(), [2, 2, 13]);
        assert_eq!(out.hidden_states.len(), 3);
        assert_eq!(out.query_states[0].dims(), [2, 2, 16]);
        assert_eq!(out.attentions[1].dims(), [2, 2, 4, 4]);
        let qa: Vec<f32> = out.query_attentions[0]
            .clone()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(
            qa.iter().all(|&x| x == 0.0),
            "a query that sees nothing has zero attention"
        );
        // Content attention rows of real positions sum to 1, padding rows to 0.
        let sums: Vec<f32> = out.attentions[0]
            .clone()
            .sum_dim(3)
            .into_data()
            .try_to_vec()
            .unwrap();
        for (i, s) in sums.iter().enumerate() {
            let want = if i % 4 == 2 { 0.0 } else { 1.0 };
            assert!((s - want).abs() < 1e-5, "row {i}: {s}");
        }
    }

    #[test]
    fn config_round_trips_and_validates() {
        let c = PlmConfig::new(10, 8, 16, 1, 4);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<PlmConfig>(&json).unwrap(), c);
        assert!(PlmConfig::new(10, 8, 15, 1, 4).validate().is_err());
        assert!(PlmConfig::new(10, 8, 16, 1, 4)
            .with_dropout(1.0)
            .validate()
            .is_err());
        let mut bad = c;
        bad.model_type = "xlnet".into();
        assert!(bad.validate().is_err());
    }
}

//! Autoregressive text generation for [`Gpt`]: KV cache, HF-compatible logits processors and
//! seeded sampling.
//!
//! ```text
//! ids = prompt
//! repeat max_new_tokens times:
//!     logits = model(ids[-n_positions:])[-1]          (KV cache: only the new token is run)
//!     logits = repetition_penalty(logits, ids)        (if penalty != 1)
//!     greedy (temperature = 0):  next = argmax(logits)
//!     else:   logits = temperature → top-k → top-p    (HF TemperatureLogitsWarper,
//!                                                      TopKLogitsWarper, TopPLogitsWarper)
//!             next ~ softmax(logits)                  (seeded SplitMix64, inverse CDF)
//!     ids += next; stop after eos_token_id
//! ```
//!
//! - **HF semantics.** The processors are applied in the order HF's `generate` applies them
//!   (`RepetitionPenaltyLogitsProcessor`, then, when sampling, temperature, top-k, top-p),
//!   each only when active (`temperature != 1`, `top_k != 0`, `top_p < 1`), with
//!   `min_tokens_to_keep = 1` and `-inf` as the filter value. Top-k keeps every token tied
//!   with the k-th largest logit (HF: `scores < topk(scores, k)[-1]` is removed). Top-p sorts
//!   ascending, removes the tokens whose cumulative probability is `<= 1 - top_p` (so a
//!   cumulative sum landing exactly on the boundary removes that token) and always keeps the
//!   most probable one. Where tied logits straddle the top-p cut, HF's choice among them
//!   depends on the order of torch's unstable sort; here the lower token id is kept (the
//!   same tie rule as greedy `argmax`, which takes the first maximum).
//! - **Sampling** cannot reproduce torch's RNG: draws come from a SplitMix64 generator seeded
//!   by [`SamplingConfig::seed`], so the same seed, model and prompt give the same tokens on
//!   every platform. Greedy decoding (`temperature = 0`) matches HF `do_sample=False` token
//!   for token (tested on the `gpt_tiny` fixture).
//! - **Context longer than `n_positions`** (prompt included): the model sees the last
//!   `n_positions` tokens (the left is cropped), as the positions are learned absolute ones.
//!   With the KV cache, every step past that point re-runs the cropped window from scratch
//!   (the cached keys were computed at other positions), so it costs what the uncached step
//!   costs. HF raises instead of cropping. The repetition penalty still sees all tokens.
//! - **KV cache** ([`KvCache`], [`Gpt::forward_cached`]): per layer the keys and values
//!   `[B, H, T_past, Dh]`; a step runs only the new tokens, attending to the cached ones.
//!   It is the model's one forward pass with the cache passed to every attention layer
//!   ([`crate::attention::attend`]). Inference: dropout is the identity on a non-autodiff
//!   device.
//!   Dense attention only: [`Gpt::forward_cached`] refuses a model with a sparse attention
//!   pattern, and [`generate`] falls back to [`Decoding::Full`] for one.
//! - **Other runtimes.** The loop drives any [`CausalLm`] (next-token logits with a cache):
//!   the burn [`Gpt`] here, the int8/f32 engine of `refinery-compress` there, with the same
//!   processors and sampler.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use crate::attention::KvCache;
use crate::gpt::Gpt;
use crate::output::OutputOptions;

/// Errors of generation.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid sampling config: {0}")]
    InvalidConfig(String),
    #[error("the prompt is empty: generation needs at least one token")]
    EmptyPrompt,
    #[error("token id {id} is outside the model's vocabulary (size {vocab_size})")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    #[error("{past} cached + {new} new tokens exceed n_positions {n_positions}")]
    ContextOverflow {
        past: usize,
        new: usize,
        n_positions: usize,
    },
    #[error("KV cache has {cache} layers, the model {model}")]
    CacheMismatch { cache: usize, model: usize },
    #[error("the KV cache does not implement sparse attention (use Decoding::Full)")]
    SparseAttention,
    #[error("tensor data: {0}")]
    TensorData(String),
    /// An error of another [`CausalLm`] runtime.
    #[error(transparent)]
    Runtime(Box<dyn std::error::Error + Send + Sync>),
}

/// Sampling settings (serde; missing keys take the [`Default`] values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Tokens to generate at most (the EOS token, when produced, is included).
    pub max_new_tokens: usize,
    /// `0` = greedy (argmax); otherwise logits are divided by it before sampling.
    pub temperature: f64,
    /// Keep the `top_k` most likely tokens (and those tied with the k-th); `0` = off.
    pub top_k: usize,
    /// Nucleus sampling, in `(0, 1]`; `1` = off.
    pub top_p: f64,
    /// Seed of the sampler (unused when greedy).
    pub seed: u64,
    /// Stop after this token.
    pub eos_token_id: Option<u32>,
    /// HF `repetition_penalty` (> 0; `1` = off): logits of tokens already in the sequence
    /// are divided by it when positive and multiplied when negative. Applies to greedy too.
    pub repetition_penalty: f64,
}

impl Default for SamplingConfig {
    /// The CLI defaults: 100 tokens, temperature 0.8, top-k 50, top-p 0.95, seed 0.
    fn default() -> Self {
        Self {
            max_new_tokens: 100,
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
            seed: 0,
            eos_token_id: None,
            repetition_penalty: 1.0,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding of up to `max_new_tokens` tokens (no top-k / top-p, no penalty).
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            ..Self::default()
        }
    }

    /// True when decoding is argmax (`temperature == 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the ranges: `temperature >= 0`, `top_p` in `(0, 1]`, `repetition_penalty > 0`,
    /// all finite.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |m: String| Err(GenerateError::InvalidConfig(m));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature = {} must be >= 0 (0 = greedy)",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p = {} must be in (0, 1]", self.top_p));
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            return bad(format!(
                "repetition_penalty = {} must be > 0 (1 = off)",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Logits processors (HF semantics; operate in place on one row of logits `[V]`).
// ---------------------------------------------------------------------------------------

/// HF `RepetitionPenaltyLogitsProcessor`: for every distinct id in `ids`, a logit `x` becomes
/// `x * penalty` if `x < 0`, else `x / penalty`. Ids `>= logits.len()` are ignored.
pub fn apply_repetition_penalty(logits: &mut [f32], ids: &[u32], penalty: f64) {
    let p = penalty as f32;
    let mut seen = vec![false; logits.len()];
    for &id in ids {
        let i = id as usize;
        if i < logits.len() && !seen[i] {
            seen[i] = true;
            let x = logits[i];
            logits[i] = if x < 0.0 { x * p } else { x / p };
        }
    }
}

/// HF `TemperatureLogitsWarper`: `logits / temperature` (f32, as torch). `temperature > 0`.
pub fn apply_temperature(logits: &mut [f32], temperature: f64) {
    let t = temperature as f32;
    for x in logits.iter_mut() {
        *x /= t;
    }
}

/// HF `TopKLogitsWarper` (`min_tokens_to_keep = 1`): logits below the k-th largest become
/// `-inf`; ties with the k-th largest are kept. `k` is clamped to `[1, V]`.
pub fn apply_top_k(logits: &mut [f32], top_k: usize) {
    if logits.is_empty() {
        return;
    }
    let k = top_k.clamp(1, logits.len());
    let mut sorted = logits.to_vec();
    // Descending; the k-th largest lands at index k - 1.
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let threshold = *kth;
    for x in logits.iter_mut() {
        if *x < threshold {
            *x = f32::NEG_INFINITY;
        }
    }
}

/// HF `TopPLogitsWarper` (`min_tokens_to_keep = 1`): sorts ascending, removes (sets to
/// `-inf`) the tokens whose cumulative probability is `<= 1 - top_p`, never the most probable.
/// Ties are ordered so that the lower token id is kept (see the module docs).
pub fn apply_top_p(logits: &mut [f32], top_p: f64) {
    let n = logits.len();
    if n == 0 {
        return;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (logits[a], logits[b]);
        x.partial_cmp(&y)
            .unwrap_or_else(|| x.total_cmp(&y))
            .then(b.cmp(&a))
    });
    let probs = softmax_f64(&order.iter().map(|&i| logits[i]).collect::<Vec<_>>());
    let cut = (1.0 - top_p) as f32;
    let mut cum = 0.0f64;
    // torch: probabilities in f32, cumsum accumulated in double, compared in f32.
    for (rank, &i) in order.iter().enumerate().take(n - 1) {
        cum += probs[rank] as f32 as f64;
        if (cum as f32) <= cut {
            logits[i] = f32::NEG_INFINITY;
        } else {
            break;
        }
    }
}

/// Applies the active processors to one row of logits, in HF's order: repetition penalty
/// (`!= 1`), then, unless greedy, temperature (`!= 1`), top-k (`!= 0`), top-p (`< 1`).
/// `ids` is the whole sequence so far (prompt + generated).
pub fn process_logits(logits: &mut [f32], ids: &[u32], config: &SamplingConfig) {
    if config.repetition_penalty != 1.0 {
        apply_repetition_penalty(logits, ids, config.repetition_penalty);
    }
    if config.is_greedy() {
        return;
    }
    if config.temperature != 1.0 {
        apply_temperature(logits, config.temperature);
    }
    if config.top_k != 0 {
        apply_top_k(logits, config.top_k);
    }
    if config.top_p < 1.0 {
        apply_top_p(logits, config.top_p);
    }
}

/// Index of the largest logit; the first one on ties (as `torch.argmax`). NaN is never chosen.
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Softmax in f64 (`-inf` → 0). The input must have at least one finite value.
fn softmax_f64(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&x| ((x - max) as f64).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// SplitMix64: small, fast, and the same stream on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Draws an index from `softmax(logits)` by inverse CDF; `-inf` logits are never drawn.
pub fn sample(logits: &[f32], rng: &mut SplitMix64) -> usize {
    let probs = softmax_f64(logits);
    let u = rng.next_f64();
    let mut cum = 0.0;
    let mut last = argmax(logits);
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cum += p;
            last = i;
            if cum > u {
                return i;
            }
        }
    }
    // Rounding left `cum` just below `u`: the last token with positive probability.
    last
}

/// Picks the next token from the last position's logits: processors, then argmax or a draw.
pub fn next_token(
    logits: &mut [f32],
    ids: &[u32],
    config: &SamplingConfig,
    rng: &mut SplitMix64,
) -> u32 {
    process_logits(logits, ids, config);
    let i = if config.is_greedy() {
        argmax(logits)
    } else {
        sample(logits, rng)
    };
    i as u32
}

// ---------------------------------------------------------------------------------------
// KV cache.
// ---------------------------------------------------------------------------------------

impl Gpt {
    /// Size of the learned position table.
    pub fn n_positions(&self) -> usize {
        self.wpe.weight.val().dims()[0]
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.wte.weight.val().dims()[0]
    }

    /// True when some layer uses a sparse attention pattern (no KV cache for those).
    pub fn has_sparse_attention(&self) -> bool {
        self.h.iter().any(|block| block.attn.sparse.is_some())
    }

    /// Incremental forward: runs `tokens [B, T_new]` at positions `cache.len()..`, attending
    /// to the cached keys/values, appends the new ones to `cache`, and returns the logits of
    /// the new positions `[B, T_new, V]` — equal to the matching rows of
    /// [`Gpt::forward`] over the whole sequence.
    pub fn forward_cached(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>, GenerateError> {
        let [_, t] = tokens.dims();
        let n_positions = self.n_positions();
        let past = cache.len();
        if past + t > n_positions {
            return Err(GenerateError::ContextOverflow {
                past,
                new: t,
                n_positions,
            });
        }
        if self.has_sparse_attention() {
            return Err(GenerateError::SparseAttention);
        }
        if cache.layers.len() != self.h.len() {
            return Err(GenerateError::CacheMismatch {
                cache: cache.layers.len(),
                model: self.h.len(),
            });
        }
        Ok(self
            .run(tokens, None, Some(cache), OutputOptions::default())
            .logits)
    }
}

// ---------------------------------------------------------------------------------------
// Generation loop.
// ---------------------------------------------------------------------------------------

/// What the generation loop needs of a model: the logits after the last of some tokens,
/// incrementally with a cache of the positions already run.
pub trait CausalLm {
    /// The incremental state (the keys and values of the positions run so far).
    type Cache;
    fn vocab_size(&self) -> usize;
    /// The longest sequence the model sees (learned positions).
    fn n_positions(&self) -> usize;
    /// Whether [`CausalLm::last_logits`] can use a cache (false: every step runs the whole
    /// sequence, e.g. sparse attention).
    fn can_cache(&self) -> bool {
        true
    }
    /// An empty cache.
    fn new_cache(&self) -> Self::Cache;
    /// Logits `[V]` after the last of `tokens`. With a cache, `tokens` continue the cached
    /// positions and are appended to it; without one, they are the whole sequence.
    fn last_logits(
        &self,
        tokens: &[u32],
        cache: Option<&mut Self::Cache>,
    ) -> Result<Vec<f32>, GenerateError>;
}

impl CausalLm for Gpt {
    type Cache = KvCache;

    fn vocab_size(&self) -> usize {
        Gpt::vocab_size(self)
    }
    fn n_positions(&self) -> usize {
        Gpt::n_positions(self)
    }
    fn can_cache(&self) -> bool {
        !self.has_sparse_attention()
    }
    fn new_cache(&self) -> KvCache {
        KvCache::new(self.n_layer())
    }
    fn last_logits(
        &self,
        tokens: &[u32],
        cache: Option<&mut KvCache>,
    ) -> Result<Vec<f32>, GenerateError> {
        let device = self.wte.weight.val().device();
        let tokens = token_tensor(tokens, &device);
        match cache {
            Some(cache) => last_row(self.forward_cached(tokens, cache)?),
            None => last_row(self.forward(tokens)),
        }
    }
}

/// How each step runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// KV cache: one token per step (until the context is full, see the module docs);
    /// falls back to `Full` for a model with sparse attention.
    Cached,
    /// The whole (cropped) sequence every step; the reference for the cache.
    Full,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The EOS token was produced (it is the last of `tokens`).
    Eos,
    /// `max_new_tokens` were produced.
    MaxNewTokens,
}

/// Result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The new tokens (the prompt is not repeated).
    pub tokens: Vec<u32>,
    pub stop: StopReason,
}

/// Generates from `prompt` with the KV cache. See the module docs for the semantics.
pub fn generate<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    config: &SamplingConfig,
) -> Result<Generation, GenerateError> {
    generate_with(model, prompt, config, Decoding::Cached)
}

fn last_row(logits: Tensor<3>) -> Result<Vec<f32>, GenerateError> {
    let [_, t, v] = logits.dims();
    logits
        .narrow(1, t - 1, 1)
        .reshape([v])
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| GenerateError::TensorData(format!("{e:?}")))
}

fn token_tensor(ids: &[u32], device: &burn::tensor::Device) -> Tensor<2, Int> {
    let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [1, ids.len()]), device)
}

/// [`generate`] with a choice of [`Decoding`] (both give the same tokens).
pub fn generate_with<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &[u32],
    config: &SamplingConfig,
    decoding: Decoding,
) -> Result<Generation, GenerateError> {
    config.validate()?;
    let vocab_size = model.vocab_size();
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    if let Some(&id) = prompt
        .iter()
        .chain(config.eos_token_id.iter())
        .find(|&&id| id as usize >= vocab_size)
    {
        return Err(GenerateError::TokenOutOfRange { id, vocab_size });
    }
    let n_positions = model.n_positions();
    let mut ids = prompt.to_vec();
    let mut rng = SplitMix64::new(config.seed);
    // The cache, the index in `ids` of its first position, and of the first not yet run.
    let mut cache: Option<M::Cache> = None;
    let (mut cache_start, mut fed) = (0usize, 0usize);
    let mut stop = StopReason::MaxNewTokens;
    // A model without a cached path (sparse attention) runs the full forward every step.
    let decoding = if model.can_cache() {
        decoding
    } else {
        Decoding::Full
    };
    for _ in 0..config.max_new_tokens {
        let start = ids.len().saturating_sub(n_positions);
        let mut logits = match decoding {
            Decoding::Full => model.last_logits(&ids[start..], None)?,
            Decoding::Cached => {
                if cache.is_none() || cache_start != start {
                    cache = Some(model.new_cache());
                    (cache_start, fed) = (start, start);
                }
                let logits = model.last_logits(&ids[fed..], cache.as_mut())?;
                fed = ids.len();
                logits
            }
        };
        let next = next_token(&mut logits, &ids, config, &mut rng);
        ids.push(next);
        if config.eos_token_id == Some(next) {
            stop = StopReason::Eos;
            break;
        }
    }
    Ok(Generation {
        tokens: ids.split_off(prompt.len()),
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_out_of_range_settings() {
        assert!(SamplingConfig::default().validate().is_ok());
        assert!(SamplingConfig::greedy(5).validate().is_ok());
        for c in [
            SamplingConfig {
                temperature: -0.1,
                ..Default::default()
            },
            SamplingConfig {
                temperature: f64::NAN,
                ..Default::default()
            },
            SamplingConfig {
                top_p: 0.0,
                ..Default::default()
            },
            SamplingConfig {
                top_p: 1.01,
                ..Default::default()
            },
            SamplingConfig {
                repetition_penalty: 0.0,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(c.validate(), Err(GenerateError::InvalidConfig(_))),
                "{c:?}"
            );
        }
    }

    #[test]
    fn config_serde_uses_defaults_and_rejects_unknown_keys() {
        let c: SamplingConfig = serde_json::from_str(r#"{"temperature": 0, "seed": 3}"#).unwrap();
        assert_eq!(c.max_new_tokens, 100);
        assert!(c.is_greedy());
        assert_eq!(c.seed, 3);
        assert!(serde_json::from_str::<SamplingConfig>(r#"{"topk": 3}"#).is_err());
    }

    #[test]
    fn top_k_keeps_ties_and_at_least_one() {
        let mut x = vec![1.0, 3.0, 2.0, 3.0, 2.0];
        apply_top_k(&mut x, 2);
        let ni = f32::NEG_INFINITY;
        assert_eq!(x, vec![ni, 3.0, ni, 3.0, ni]);
        let mut x = vec![1.0, 3.0, 2.0, 0.5];
        apply_top_k(&mut x, 3);
        assert_eq!(x, vec![1.0, 3.0, 2.0, ni]);
        let mut x = vec![1.0, 3.0];
        apply_top_k(&mut x, 10);
        assert_eq!(x, vec![1.0, 3.0]);
    }

    #[test]
    fn top_p_boundary_and_min_keep() {
        // Four equal logits: cumulative 0.25, 0.5, 0.75, 1. top_p = 0.5 → remove cum <= 0.5:
        // two tokens, the higher ids (lower ids are kept on ties).
        let ni = f32::NEG_INFINITY;
        let mut x = vec![0.0; 4];
        apply_top_p(&mut x, 0.5);
        assert_eq!(x, vec![0.0, 0.0, ni, ni]);
        // A tiny top_p keeps only the most probable token.
        let mut x = vec![0.0, 2.0, 1.0];
        apply_top_p(&mut x, 1e-9);
        assert_eq!(x, vec![ni, 2.0, ni]);
    }

    #[test]
    fn repetition_penalty_counts_each_id_once() {
        let mut x = vec![2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut x, &[0, 0, 1, 7], 2.0);
        assert_eq!(x, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn sampling_follows_the_distribution_and_never_draws_filtered_tokens() {
        let logits = vec![0.0f32, (3.0f32).ln(), f32::NEG_INFINITY];
        let mut rng = SplitMix64::new(42);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[sample(&logits, &mut rng)] += 1;
        }
        assert_eq!(counts[2], 0);
        let frac = counts[1] as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 5.0, 5.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.0]), 1);
    }
}

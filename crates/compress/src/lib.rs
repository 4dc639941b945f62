//! Compression: make a trained model cheaper to run, measurably (`refinery quantize`,
//! `refinery prune`, `refinery compare`; docs/compress.md, docs/pruning.md).
//!
//! - [`kernels`] — int8 × int8 → i32 GEMM (AVX-512 VNNI, AVX2, portable; run-time dispatch).
//! - [`quant`] — the int8 checkpoint format (I8 weights + F32 scales in safetensors, the
//!   `refinery_quantization` config entry) and [`quant::quantize_dir`] (dynamic, static,
//!   linear or log2 codes).
//! - [`bert`] — [`bert::Engine`], BERT classifiers f32 or int8 (fused QKV, f32 attention),
//!   and static-scale calibration; [`ops`] — its f32 pieces (LayerNorm, GELU, softmax, gemm).
//! - [`gpt`] — [`gpt::GptEngine`], GPT-2 language models f32 or int8 (causal attention,
//!   `gelu_new`, tied LM head, KV cache; the generation loop drives it through
//!   `refinery_model::generate::CausalLm`); `eval-lm` and `compare` run it.
//! - `layers` — what the engines share: Linear and embedding f32/int8, the checkpoint loader.
//! - [`classify`] — [`classify::EngineClassifier`], a classifier directory run by the engine
//!   with the task's tokenizer and metrics (`classify`/`evaluate` on quantized models).
//! - [`compare`] — the measurement protocol and table of `refinery compare`.
//! - [`prune`] — one-shot unstructured magnitude pruning of a checkpoint directory.
//! - [`structured`] — structured pruning of BERT checkpoints: attention heads (gradient
//!   importance, Michel et al. 2019) or FFN neurons, removed physically.
//! - [`outdir`] — new checkpoint directories: checked first, built aside, renamed when complete.
//! - [`sparse`] — `model.sparse`, the bitmask + values storage of pruned weights.
//! - [`error`] — the error type, [`CompressError`].

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bert;
pub mod classify;
pub mod compare;
pub mod error;
pub mod gpt;
pub mod kernels;
mod layers;
pub mod ops;
pub mod outdir;
pub mod prune;
pub mod quant;
pub mod sparse;
pub mod structured;

pub use error::CompressError;

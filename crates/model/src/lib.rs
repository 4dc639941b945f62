//! Transformer models on [burn] 0.22 with HF-compatible checkpoints.
//!
//! - [`gpt`]: GPT-2 decoder (pre-LN, `gelu_new`, learned positions, tied embeddings).
//! - [`bert`]: BERT encoder (post-LN, token types, pooler, MLM + NSP heads).
//! - [`classify`]: sequence classification heads (BERT pooler, GPT-2 last token, mean
//!   pooling); [`hf_classify`]: their HF checkpoints.
//! - [`bart`]: BART encoder-decoder (post-LN, cross-attention, shared embeddings, tied head).
//! - [`plm`]: two-stream permutation LM (XLNet-style) on a [`Gpt`].
//! - [`attention`]: the one attention computation of every layer: dense masks (causal,
//!   padding), sparse patterns, KV cache.
//! - [`generate`]: sampling and greedy decoding with a KV cache.
//! - [`hf`]: load and save HF-layout checkpoints (`model.safetensors` + `config.json`), one
//!   weight map per architecture; config sizes are checked against the weights first.
//!
//! burn 0.22 dispatches the backend at run time through [`burn::tensor::Device`], so model
//! code has no `B: Backend` parameter: the same `Gpt` runs on `Device::flex()` (the default,
//! pure-Rust CPU) or, with more burn features, on other devices; `device.autodiff()` enables
//! training.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use refinery_model::gpt::GptConfig;
//!
//! let device = Device::flex();
//! let config = GptConfig::new(64, 16, 32, 2, 4);
//! let model = config.init(&device).unwrap();
//! let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [2, 2]), &device);
//! assert_eq!(model.forward(tokens).dims(), [2, 2, 64]); // [B, T, V]
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod attention;
pub mod bart;
pub mod bert;
pub mod classify;
pub mod device;
pub mod error;
pub mod generate;
pub mod gpt;
pub mod hf;
pub mod hf_bart;
pub mod hf_classify;
pub mod output;
pub mod plm;

pub use bart::{BartConfig, BartForConditionalGeneration, BartModel, BartOutput};
pub use bert::{BertConfig, BertForPreTraining, BertModel, BertOutput, PreTrainingHeads};
pub use classify::{
    Backbone, BackboneConfig, ClassifierOutput, MultiTaskClassifier, Pooling, SequenceClassifier,
};
pub use error::ModelError;
pub use gpt::{Gpt, GptConfig, GptOutput};
pub use output::OutputOptions;
pub use plm::{PermutationMasks, Plm, PlmConfig, PlmOutput};

//! BART checkpoints: re-exports of the map in [`crate::hf`] (`hf/bart.rs`), kept for the
//! callers of `refinery_model::hf_bart`.

pub use crate::hf::{load_bart, load_bart_weights, read_bart_config, save_bart};

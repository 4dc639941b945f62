//! The inference engine for GPT-2 language models, f32 or int8 (`refinery eval-lm`,
//! `generate` and `compare` run quantized LM checkpoints through it).
//!
//! It reads the HF `GPT2LMHeadModel` layout (the key table is in
//! `crates/model/src/hf/gpt.rs`; `tests/gpt_engine.rs` checks this engine's logits against
//! the burn `Gpt`'s on the same checkpoint) and computes, for tokens at positions
//! `past..past + T` (`past` = the length of the [`KvCache`], 0 for a plain forward):
//!
//! ```text
//! x = wte[ids] + wpe[past..past+T]                                x: [B·T, D]
//! for each block:
//!   qkv = ln_1(x) · Wattnᵀ + b                                    [B·T, 3D] (c_attn, one GEMM)
//!   cache.k += k; cache.v += v                                    [B, past+T, D] per layer
//!   ctx = softmax(q Kᵀ / √dh, keys ≤ own position) V  per row, head  [B·T, D]
//!   x = x + ctx · Wprojᵀ + b                                      (c_proj)
//!   x = x + gelu_new(ln_2(x) · Wfcᵀ + b) · Wmlpᵀ + b              inner [B·T, I]
//! logits = ln_f(x) · wteᵀ                                         [B·T, V] (tied LM head)
//! ```
//!
//! Every `Conv1D` is an int8 Linear ([`crate::kernels`]; its int8 form is stored `[out, in]`,
//! see [`crate::quant`]) when the checkpoint stores it as I8, else f32. The LM head is `wte`:
//! int8 (per-row scales = per output channel) when `wte` is, else f32 sharing the table.
//! Attention, softmax, LayerNorm, GELU and the residual path stay f32.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use refinery_model::generate::{CausalLm, GenerateError};
use refinery_model::hf::read_gpt_config;
use refinery_model::GptConfig;
use refinery_train::data::{DataConfig, DataSplit, LmBatch};
use refinery_train::eval::evaluate_with;
use refinery_train::{EvalReport, GptClmTask, Outputs, Task};

use crate::error::CompressError;
use crate::kernels::{KernelPath, PARALLEL_MIN_VALUES};
use crate::layers::{
    calibrate_scales, Embedding, KernelTable, KernelUse, LayerNorm, Layout, Linear, Loader,
    Observer,
};
use crate::ops::{self, View};
use crate::quant::{read_quant_config, with_tensors, Calibration, QuantConfig};

struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    c_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

/// A GPT-2 language model ready to run.
pub struct GptEngine {
    pub dir: PathBuf,
    pub config: GptConfig,
    pub quant: Option<QuantConfig>,
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// `x · wteᵀ` (tied).
    lm_head: Linear,
    eps: f32,
}

/// The keys and values of the positions run so far: per layer and batch row `[len, D]`.
#[derive(Debug, Clone)]
pub struct KvCache {
    batch: usize,
    len: usize,
    /// `[layer · batch + row]` → `[len, D]`.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl KvCache {
    /// An empty cache for `batch` rows of `engine`.
    pub fn new(engine: &GptEngine, batch: usize) -> Self {
        let n = engine.blocks.len() * batch;
        KvCache {
            batch,
            len: 0,
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Which rows of logits to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every position: `[B·T, V]`.
    All,
    /// The last position of each row: `[B, V]`.
    Last,
}

impl GptEngine {
    /// Loads a GPT-2 LM directory (f32 or quantized) for `kernel`.
    pub fn load(dir: &Path, kernel: KernelPath) -> Result<GptEngine, CompressError> {
        let config = read_gpt_config(dir)?;
        if config.sparse_attention.is_some() {
            return Err(CompressError::Invalid(format!(
                "{}: the engine runs dense attention only (this model has sparse_attention)",
                dir.display()
            )));
        }
        let quant = read_quant_config(dir)?;
        let d = config.n_embd;
        let built = with_tensors(dir, |path, st| {
            let l = Loader {
                path,
                st,
                kernel,
                quant: quant.as_ref(),
            };
            // Ours and HF's GPT2LMHeadModel say `transformer.`; GPT2Model has no prefix.
            let t = if st.tensor("transformer.wte.weight").is_ok() {
                "transformer."
            } else {
                ""
            };
            let (wte, lm_head) = l.tied(&format!("{t}wte.weight"), d)?;
            if wte.rows() != config.vocab_size {
                return Err(l.err(format!(
                    "{t}wte.weight: {} rows, config.json vocab_size {}",
                    wte.rows(),
                    config.vocab_size
                )));
            }
            let wpe = l.embedding(&format!("{t}wpe.weight"), d)?;
            if wpe.rows() != config.n_positions {
                return Err(l.err(format!(
                    "{t}wpe.weight: {} rows, config.json n_positions {}",
                    wpe.rows(),
                    config.n_positions
                )));
            }
            let mut blocks = Vec::new();
            for i in 0..config.n_layer {
                let p = format!("{t}h.{i}");
                let conv = |name: &str, k: usize, n: usize| -> Result<Linear, CompressError> {
                    let lin = l.linear(&[format!("{p}.{name}")], k, Layout::InOut)?;
                    if lin.n != n {
                        return Err(l.err(format!(
                            "{p}.{name}.weight: {} outputs, expected {n}",
                            lin.n
                        )));
                    }
                    Ok(lin)
                };
                let inner = config.d_inner();
                blocks.push(Block {
                    ln_1: l.layer_norm(&format!("{p}.ln_1"), d)?,
                    c_attn: conv("attn.c_attn", d, 3 * d)?,
                    c_proj: conv("attn.c_proj", d, d)?,
                    ln_2: l.layer_norm(&format!("{p}.ln_2"), d)?,
                    c_fc: conv("mlp.c_fc", d, inner)?,
                    mlp_proj: conv("mlp.c_proj", inner, d)?,
                });
            }
            let ln_f = l.layer_norm(&format!("{t}ln_f"), d)?;
            Ok((wte, lm_head, wpe, blocks, ln_f))
        })?;
        let (wte, lm_head, wpe, blocks, ln_f) = built;
        Ok(GptEngine {
            dir: dir.to_path_buf(),
            eps: config.layer_norm_epsilon as f32,
            config,
            quant,
            wte,
            wpe,
            blocks,
            ln_f,
            lm_head,
        })
    }

    /// Which kernel each distinct layer shape runs.
    pub fn kernels(&self) -> Vec<KernelUse> {
        let mut t = KernelTable::default();
        for b in &self.blocks {
            t.add("attn.c_attn (q/k/v)", &b.c_attn);
            t.add("attn.c_proj", &b.c_proj);
            t.add("mlp.c_fc", &b.c_fc);
            t.add("mlp.c_proj", &b.mlp_proj);
        }
        t.add("lm_head (tied wte)", &self.lm_head);
        t.0
    }

    /// Parameter count (the LM head is `wte`, counted once).
    pub fn parameters(&self) -> usize {
        let d = self.config.n_embd;
        self.wte.parameters()
            + self.wpe.parameters()
            + self
                .blocks
                .iter()
                .map(|b| {
                    b.c_attn.parameters()
                        + b.c_proj.parameters()
                        + b.c_fc.parameters()
                        + b.mlp_proj.parameters()
                        + 4 * d
                })
                .sum::<usize>()
            + 2 * d
    }

    /// Logits `[B·T, V]` of `ids` `[B, T]` from position 0; `mask` (`[B, T]`, HF: 1 = token,
    /// 0 = padding key) hides padding keys. Positions are `0..T` in every row (as the burn
    /// model and HF without `position_ids`).
    pub fn logits(
        &self,
        ids: &[i64],
        batch: usize,
        mask: Option<&[i64]>,
    ) -> Result<Vec<f32>, CompressError> {
        let mut cache = KvCache::new(self, batch);
        self.forward(ids, batch, mask, &mut cache, Logits::All, None)
    }

    /// The one forward pass: `ids` `[B, T]` at positions `cache.len()..`, attending to the
    /// cached keys and values; the new ones are appended to `cache`. Returns the logits of
    /// every new position `[B·T, V]` or of each row's last one `[B, V]`. A `mask` needs an
    /// empty cache.
    pub fn forward(
        &self,
        ids: &[i64],
        b: usize,
        mask: Option<&[i64]>,
        cache: &mut KvCache,
        which: Logits,
        mut observe: Option<Observer>,
    ) -> Result<Vec<f32>, CompressError> {
        let d = self.config.n_embd;
        if b == 0 || ids.is_empty() || !ids.len().is_multiple_of(b) {
            return Err(CompressError::Invalid(format!(
                "batch: {} ids for {b} rows",
                ids.len()
            )));
        }
        let t = ids.len() / b;
        let bt = b * t;
        if mask.is_some_and(|m| m.len() != bt) {
            return Err(CompressError::Invalid(format!(
                "batch: {} mask values for [{b}, {t}]",
                mask.map_or(0, <[i64]>::len)
            )));
        }
        let past = cache.len;
        if cache.batch != b || cache.k.len() != b * self.blocks.len() {
            return Err(CompressError::Invalid(format!(
                "KV cache for {} rows, batch of {b}",
                cache.batch
            )));
        }
        if past > 0 && mask.is_some() {
            return Err(CompressError::Invalid(
                "an attention mask with a non-empty KV cache is not supported".to_string(),
            ));
        }
        if past + t > self.wpe.rows() {
            return Err(CompressError::Invalid(format!(
                "{past} cached + {t} new tokens exceed n_positions {}",
                self.wpe.rows()
            )));
        }
        let threads = rayon::current_num_threads();
        // Embeddings. x: [B·T, D]
        let mut x = vec![0f32; bt * d];
        for (i, row) in x.chunks_exact_mut(d).enumerate() {
            let id = usize::try_from(ids[i])
                .ok()
                .filter(|&v| v < self.wte.rows())
                .ok_or_else(|| {
                    CompressError::Invalid(format!(
                        "token id {} outside the vocabulary ({})",
                        ids[i],
                        self.wte.rows()
                    ))
                })?;
            self.wte.add_row(id, row);
            self.wpe.add_row(past + i % t, row);
        }
        // A failed layer leaves the cache as it was.
        let mut blocks = || -> Result<(), CompressError> {
            for (layer, block) in self.blocks.iter().enumerate() {
                let mut h = x.clone();
                block.ln_1.forward(&mut h, d, self.eps, threads);
                let qkv = block.c_attn.forward(&h, bt, threads, &mut observe)?; // [B·T, 3D]
                for r in 0..b {
                    let (k, v) = (&mut cache.k[layer * b + r], &mut cache.v[layer * b + r]);
                    for row in qkv[r * t * 3 * d..(r + 1) * t * 3 * d].chunks_exact(3 * d) {
                        k.extend_from_slice(&row[d..2 * d]);
                        v.extend_from_slice(&row[2 * d..]);
                    }
                }
                let ctx = self.attention(&qkv, cache, layer, b, t, past, mask); // [B·T, D]
                let a = block.c_proj.forward(&ctx, bt, threads, &mut observe)?; // [B·T, D]
                for (v, r) in x.iter_mut().zip(&a) {
                    *v += r;
                }
                let mut h = x.clone();
                block.ln_2.forward(&mut h, d, self.eps, threads);
                let mut f = block.c_fc.forward(&h, bt, threads, &mut observe)?; // [B·T, I]
                if threads > 1 && f.len() >= PARALLEL_MIN_VALUES {
                    f.par_chunks_mut(block.c_fc.n * 16).for_each(ops::gelu_new);
                } else {
                    ops::gelu_new(&mut f);
                }
                let m = block.mlp_proj.forward(&f, bt, threads, &mut observe)?; // [B·T, D]
                for (v, r) in x.iter_mut().zip(&m) {
                    *v += r;
                }
            }
            Ok(())
        };
        if let Err(e) = blocks() {
            for kv in cache.k.iter_mut().chain(cache.v.iter_mut()) {
                kv.truncate(past * d);
            }
            return Err(e);
        }
        cache.len = past + t;
        let (mut x, rows) = match which {
            Logits::All => (x, bt),
            Logits::Last => (
                x.chunks_exact(t * d)
                    .flat_map(|r| &r[(t - 1) * d..])
                    .copied()
                    .collect(),
                b,
            ),
        };
        self.ln_f.forward(&mut x, d, self.eps, threads);
        self.lm_head.forward(&x, rows, threads, &mut observe) // [rows, V]
    }

    /// Causal attention of the new queries in `qkv` (`[B·T, 3D]`, positions `past..`) over
    /// the cached keys and values of `layer` (`past + T` each); `mask` hides padding keys.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        qkv: &[f32],
        cache: &KvCache,
        layer: usize,
        b: usize,
        t: usize,
        past: usize,
        mask: Option<&[i64]>,
    ) -> Vec<f32> {
        let d = self.config.n_embd;
        let heads = self.config.n_head;
        let dh = d / heads;
        let keys = past + t;
        let scale = 1.0 / (dh as f32).sqrt();
        // One [T, dh] context per (row, head), computed in parallel, then placed.
        let parts: Vec<Vec<f32>> = (0..b * heads)
            .into_par_iter()
            .map(|rh| {
                let (r, h) = (rh / heads, rh % heads);
                let k = &cache.k[layer * b + r];
                let v = &cache.v[layer * b + r];
                let mut scores = vec![0f32; t * keys];
                // SAFETY: q addresses t rows of dh values 3D apart inside this row's block of
                // qkv; k and v hold `keys` rows of D values, read at column h·dh; scores is
                // [t, keys]; out is [t, dh]; no output overlaps an input.
                unsafe {
                    ops::matmul(
                        t,
                        keys,
                        dh,
                        scores.as_mut_ptr(),
                        keys as isize,
                        View {
                            ptr: qkv[r * t * 3 * d + h * dh..].as_ptr(),
                            rs: 3 * d as isize,
                            cs: 1,
                        },
                        View {
                            ptr: k[h * dh..].as_ptr(),
                            rs: 1,
                            cs: d as isize,
                        },
                        scale,
                        1,
                    );
                }
                let live = mask.map(|m| &m[r * t..(r + 1) * t]);
                for (i, row) in scores.chunks_exact_mut(keys).enumerate() {
                    let visible = past + i + 1;
                    if let Some(live) = live {
                        for (s, &m) in row[..visible].iter_mut().zip(live) {
                            if m == 0 {
                                *s = f32::NEG_INFINITY;
                            }
                        }
                        if row[..visible].iter().all(|s| *s == f32::NEG_INFINITY) {
                            // No key to attend to (a padding query): no context.
                            row.fill(0.0);
                            continue;
                        }
                    }
                    ops::softmax_prefix(row, visible);
                }
                let mut out = vec![0f32; t * dh];
                // SAFETY: as above; scores [t, keys] times v [keys, dh] into out [t, dh].
                unsafe {
                    ops::matmul(
                        t,
                        dh,
                        keys,
                        out.as_mut_ptr(),
                        dh as isize,
                        View {
                            ptr: scores.as_ptr(),
                            rs: keys as isize,
                            cs: 1,
                        },
                        View {
                            ptr: v[h * dh..].as_ptr(),
                            rs: d as isize,
                            cs: 1,
                        },
                        1.0,
                        1,
                    );
                }
                out
            })
            .collect();
        let mut ctx = vec![0f32; b * t * d];
        for (rh, part) in parts.iter().enumerate() {
            let (r, h) = (rh / heads, rh % heads);
            for (i, src) in part.chunks_exact(dh).enumerate() {
                let at = (r * t + i) * d + h * dh;
                ctx[at..at + dh].copy_from_slice(src);
            }
        }
        ctx
    }
}

impl CausalLm for GptEngine {
    type Cache = KvCache;

    fn vocab_size(&self) -> usize {
        self.wte.rows()
    }

    fn n_positions(&self) -> usize {
        self.wpe.rows()
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(self, 1)
    }

    fn last_logits(
        &self,
        tokens: &[u32],
        cache: Option<&mut KvCache>,
    ) -> Result<Vec<f32>, GenerateError> {
        let ids: Vec<i64> = tokens.iter().map(|&i| i64::from(i)).collect();
        let mut fresh;
        let cache = match cache {
            Some(c) => c,
            None => {
                fresh = KvCache::new(self, 1);
                &mut fresh
            }
        };
        self.forward(&ids, 1, None, cache, Logits::Last, None)
            .map_err(|e| GenerateError::Runtime(Box::new(e)))
    }
}

/// Calibrates static input scales on token rows: runs `batches` through `engine` (f32) and
/// returns one scale per Linear, the tied head included (by weight prefix; see
/// [`crate::layers::calibrate_scales`]).
pub fn calibrate(
    engine: &GptEngine,
    batches: &[LmBatch],
    method: Calibration,
) -> Result<BTreeMap<String, f32>, CompressError> {
    calibrate_scales(method, |watch| {
        let mut rows = 0;
        for b in batches {
            rows += b.batch_size;
            let mut cache = KvCache::new(engine, b.batch_size);
            engine.forward(
                &b.input_ids,
                b.batch_size,
                b.attention_mask.as_deref(),
                &mut cache,
                Logits::All,
                Some(&mut *watch),
            )?;
        }
        Ok(rows)
    })
}

/// `refinery eval-lm` on the engine: the `gpt-clm` task's batches of `data`, loss, perplexity
/// and metrics (the same code as for the burn model), the engine's logits. `max_batches`:
/// as [`refinery_train::tasks::evaluate_checkpoint`] (default: one epoch, or 100 batches of
/// a stream).
pub fn evaluate_lm(
    engine: &GptEngine,
    task: &GptClmTask,
    data: &DataConfig,
    split: DataSplit,
    max_batches: Option<u64>,
) -> Result<EvalReport, CompressError> {
    if task.spec.model.vocab_size != engine.config.vocab_size {
        return Err(CompressError::Invalid(format!(
            "{}: task vocab_size {} vs the model's {}",
            engine.dir.display(),
            task.spec.model.vocab_size,
            engine.config.vocab_size
        )));
    }
    let mut source = task.open_source(data, split)?;
    let batches = match (max_batches, source.batches_per_epoch()) {
        (Some(m), _) => m.max(1),
        (None, Some(b)) => b,
        (None, None) => 100,
    };
    let device = burn::tensor::Device::flex();
    let v = engine.config.vocab_size;
    let mut forward = |b: &LmBatch| -> Result<Outputs, CompressError> {
        let logits = engine.logits(&b.input_ids, b.batch_size, b.attention_mask.as_deref())?;
        Ok(Outputs::logits(Tensor::from_data(
            TensorData::new(logits, [b.batch_size, b.seq_len, v]),
            &device,
        ))) // [B, T, V]
    };
    evaluate_with(
        task,
        &mut forward,
        &mut *source,
        batches as usize,
        0,
        &device,
    )
}

//! The inference engine for BERT sequence classifiers, f32 or int8 (`refinery classify`,
//! `evaluate` and `compare` run quantized checkpoints through it).
//!
//! It reads the HF `BertForSequenceClassification` layout (the key table is in
//! `crates/model/src/hf/bert.rs`; `tests/engine.rs` checks this engine's logits against the
//! burn model's on the same checkpoint, so a diverging name fails there) and computes:
//!
//! ```text
//! x = LN(word[ids] + pos[0..T] + type[types])                  x: [B·T, D]
//! for each layer:
//!   qkv = x · [Wq; Wk; Wv]ᵀ + b                                 [B·T, 3D] (one fused GEMM)
//!   ctx = softmax(q kᵀ / √dh + mask) v  per row and head        [B·T, D]
//!   x = LN(x + ctx · Woᵀ + bo)
//!   x = LN(x + gelu(x · Wiᵀ + bi) · Wfᵀ + bf)                   inner [B·T, I]
//! pooled = tanh(x[:, 0] · Wpᵀ + bp)  (or the masked mean)      [B, D]
//! logits = pooled · Wcᵀ + bc                                    [B, C]
//! ```
//!
//! Every Linear is int8 ([`crate::kernels`], activations quantized per token, per tensor or
//! with a calibrated static scale) when the checkpoint stores it as I8, else f32 (the `gemm`
//! crate). Attention scores, softmax, LayerNorm, GELU and the residual path stay f32.
//! Heads are counted per layer from the query rows (`rows / head_dim`), so physically pruned
//! heads need no extra config here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use refinery_model::bert::BertConfig;
use refinery_model::classify::{BackboneConfig, Pooling};
use refinery_model::hf_classify::read_classifier_config;

use crate::error::CompressError;
use crate::kernels::{KernelPath, PARALLEL_MIN_VALUES};
use crate::layers::{calibrate_scales, Embedding, KernelTable, LayerNorm, Layout, Linear, Loader};
pub use crate::layers::{KernelUse, Observer};
use crate::ops::{self, View};
use crate::quant::{read_quant_config, with_tensors, Calibration, QuantConfig};

struct Layer {
    qkv: Linear,
    /// Heads of this layer (`qkv.n / 3 / head_dim`).
    heads: usize,
    attn_out: Linear,
    ln1: LayerNorm,
    inter: Linear,
    out: Linear,
    ln2: LayerNorm,
}

/// A BERT sequence classifier ready to run.
pub struct Engine {
    pub dir: PathBuf,
    pub config: BertConfig,
    pub labels: Vec<String>,
    pub pooling: Pooling,
    pub quant: Option<QuantConfig>,
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    pooler: Linear,
    classifier: Linear,
    eps: f32,
}

/// A padded batch: `[B, T]` ids, token types and mask (1 = token), right-padded.
pub struct Batch<'a> {
    pub batch_size: usize,
    pub seq_len: usize,
    pub input_ids: &'a [i64],
    pub token_type_ids: &'a [i64],
    pub attention_mask: &'a [i64],
}

impl Engine {
    /// Loads a BERT classifier directory (f32 or quantized) for `kernel`.
    pub fn load(dir: &Path, kernel: KernelPath) -> Result<Engine, CompressError> {
        let cc = read_classifier_config(dir)?;
        let BackboneConfig::Bert(config) = cc.backbone else {
            return Err(CompressError::Invalid(format!(
                "{}: the int8 engine runs BERT classifiers only (this is a GPT-2 one)",
                dir.display()
            )));
        };
        let quant = read_quant_config(dir)?;
        let d = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || d % heads != 0 {
            return Err(CompressError::Invalid(format!(
                "{}: hidden_size {d} is not a multiple of num_attention_heads {heads}",
                dir.display()
            )));
        }
        let head_dim = d / heads;
        let labels = cc.labels.clone();
        let built = with_tensors(dir, |path, st| {
            let l = Loader {
                path,
                st,
                kernel,
                quant: quant.as_ref(),
            };
            let e = "bert.embeddings";
            let word = l.embedding(&format!("{e}.word_embeddings.weight"), d)?;
            let position = l.embedding(&format!("{e}.position_embeddings.weight"), d)?;
            let token_type = l.embedding(&format!("{e}.token_type_embeddings.weight"), d)?;
            let emb_ln = l.layer_norm(&format!("{e}.LayerNorm"), d)?;
            let mut layers = Vec::new();
            for i in 0..config.num_hidden_layers {
                let p = format!("bert.encoder.layer.{i}");
                let a = format!("{p}.attention");
                let qkv = l.linear(
                    &[
                        format!("{a}.self.query"),
                        format!("{a}.self.key"),
                        format!("{a}.self.value"),
                    ],
                    d,
                    Layout::OutIn,
                )?;
                if qkv.n % (3 * head_dim) != 0 {
                    return Err(l.err(format!(
                        "layer {i}: query/key/value rows {} are not 3 × heads × {head_dim}",
                        qkv.n
                    )));
                }
                let h = qkv.n / 3 / head_dim;
                let attn_out =
                    l.linear(&[format!("{a}.output.dense")], h * head_dim, Layout::OutIn)?;
                if attn_out.n != d {
                    return Err(l.err(format!(
                        "{a}.output.dense: {} rows, expected {d}",
                        attn_out.n
                    )));
                }
                let ln1 = l.layer_norm(&format!("{a}.output.LayerNorm"), d)?;
                let inter = l.linear(&[format!("{p}.intermediate.dense")], d, Layout::OutIn)?;
                let out = l.linear(&[format!("{p}.output.dense")], inter.n, Layout::OutIn)?;
                if out.n != d {
                    return Err(l.err(format!("{p}.output.dense: {} rows, expected {d}", out.n)));
                }
                let ln2 = l.layer_norm(&format!("{p}.output.LayerNorm"), d)?;
                layers.push(Layer {
                    qkv,
                    heads: h,
                    attn_out,
                    ln1,
                    inter,
                    out,
                    ln2,
                });
            }
            let pooler = l.linear(&["bert.pooler.dense".to_string()], d, Layout::OutIn)?;
            let classifier = l.linear(&["classifier".to_string()], d, Layout::OutIn)?;
            if classifier.n != labels.len() {
                return Err(l.err(format!(
                    "classifier: {} rows for {} labels",
                    classifier.n,
                    labels.len()
                )));
            }
            Ok((
                word, position, token_type, emb_ln, layers, pooler, classifier,
            ))
        })?;
        let (word, position, token_type, emb_ln, layers, pooler, classifier) = built;
        Ok(Engine {
            dir: dir.to_path_buf(),
            eps: config.layer_norm_eps as f32,
            config,
            labels,
            pooling: cc.pooling,
            quant,
            word,
            position,
            token_type,
            emb_ln,
            layers,
            pooler,
            classifier,
        })
    }

    /// Which kernel each distinct layer shape runs.
    pub fn kernels(&self) -> Vec<KernelUse> {
        let mut t = KernelTable::default();
        for l in &self.layers {
            t.add("attention q/k/v (fused)", &l.qkv);
            t.add("attention output", &l.attn_out);
            t.add("intermediate", &l.inter);
            t.add("output", &l.out);
        }
        t.add("pooler", &self.pooler);
        t.add("classifier", &self.classifier);
        t.0
    }

    /// Logits `[B, C]` of a batch.
    pub fn logits(&self, batch: &Batch) -> Result<Vec<f32>, CompressError> {
        self.forward(batch, None)
    }

    /// Logits, with `observe` seeing every Linear's input.
    pub fn forward(
        &self,
        batch: &Batch,
        mut observe: Option<Observer>,
    ) -> Result<Vec<f32>, CompressError> {
        let (b, t, d) = (batch.batch_size, batch.seq_len, self.config.hidden_size);
        let bt = b * t;
        if batch.input_ids.len() != bt
            || batch.token_type_ids.len() != bt
            || batch.attention_mask.len() != bt
            || b == 0
            || t == 0
        {
            return Err(CompressError::Invalid(format!(
                "batch: {} ids, {} types, {} mask values for [{b}, {t}]",
                batch.input_ids.len(),
                batch.token_type_ids.len(),
                batch.attention_mask.len()
            )));
        }
        if t > self.position.rows() {
            return Err(CompressError::Invalid(format!(
                "batch: {t} tokens, the model has {} positions",
                self.position.rows()
            )));
        }
        let threads = rayon::current_num_threads();
        // Embeddings. x: [B·T, D]
        let mut x = vec![0f32; bt * d];
        for (i, row) in x.chunks_exact_mut(d).enumerate() {
            let id = usize::try_from(batch.input_ids[i])
                .ok()
                .filter(|&v| v < self.word.rows())
                .ok_or_else(|| {
                    CompressError::Invalid(format!(
                        "token id {} outside the vocabulary ({})",
                        batch.input_ids[i],
                        self.word.rows()
                    ))
                })?;
            let ty = usize::try_from(batch.token_type_ids[i])
                .ok()
                .filter(|&v| v < self.token_type.rows())
                .ok_or_else(|| {
                    CompressError::Invalid(format!(
                        "token type {} outside 0..{}",
                        batch.token_type_ids[i],
                        self.token_type.rows()
                    ))
                })?;
            self.word.add_row(id, row);
            self.position.add_row(i % t, row);
            self.token_type.add_row(ty, row);
        }
        ops::layer_norm(&mut x, d, &self.emb_ln.gamma, &self.emb_ln.beta, self.eps);
        // Live tokens per row (right padding).
        let live: Vec<usize> = batch
            .attention_mask
            .chunks_exact(t)
            .map(|m| m.iter().take_while(|&&v| v != 0).count().max(1))
            .collect();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x, bt, threads, &mut observe)?; // [B·T, 3·H·dh]
            let ctx = self.attention(&qkv, layer.heads, b, t, &live); // [B·T, H·dh]
            let a = layer.attn_out.forward(&ctx, bt, threads, &mut observe)?; // [B·T, D]
            for (v, r) in x.iter_mut().zip(&a) {
                *v += r;
            }
            self.layer_norm(&mut x, &layer.ln1, threads);
            let mut h = layer.inter.forward(&x, bt, threads, &mut observe)?; // [B·T, I]
            if threads > 1 && h.len() >= PARALLEL_MIN_VALUES {
                h.par_chunks_mut(layer.inter.n * 16).for_each(ops::gelu);
            } else {
                ops::gelu(&mut h);
            }
            let f = layer.out.forward(&h, bt, threads, &mut observe)?; // [B·T, D]
            for (v, r) in x.iter_mut().zip(&f) {
                *v += r;
            }
            self.layer_norm(&mut x, &layer.ln2, threads);
        }
        // Pooling. pooled: [B, D]
        let mut pooled = vec![0f32; b * d];
        for (r, p) in pooled.chunks_exact_mut(d).enumerate() {
            match self.pooling {
                Pooling::Mean => {
                    for tok in 0..live[r] {
                        for (o, v) in p
                            .iter_mut()
                            .zip(&x[(r * t + tok) * d..(r * t + tok + 1) * d])
                        {
                            *o += v;
                        }
                    }
                    let inv = 1.0 / live[r] as f32;
                    p.iter_mut().for_each(|v| *v *= inv);
                }
                _ => p.copy_from_slice(&x[r * t * d..(r * t + 1) * d]),
            }
        }
        let pooled = if self.pooling == Pooling::Pooler {
            let mut p = self.pooler.forward(&pooled, b, threads, &mut observe)?;
            ops::tanh(&mut p);
            p
        } else {
            pooled
        };
        self.classifier.forward(&pooled, b, threads, &mut observe) // [B, C]
    }

    /// LayerNorm of every `D`-wide row of `x`, in place (row blocks on rayon when large).
    fn layer_norm(&self, x: &mut [f32], ln: &LayerNorm, threads: usize) {
        ln.forward(x, self.config.hidden_size, self.eps, threads);
    }

    /// Scaled dot-product attention per row and head; padding keys get no weight.
    fn attention(&self, qkv: &[f32], heads: usize, b: usize, t: usize, live: &[usize]) -> Vec<f32> {
        let dh = self.config.hidden_size / self.config.num_attention_heads;
        let hd = heads * dh;
        let stride = 3 * hd;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut ctx = vec![0f32; b * t * hd];
        ctx.par_chunks_mut(t * hd)
            .zip(qkv.par_chunks(t * stride))
            .zip(live.par_iter())
            .for_each(|((ctx_b, qkv_b), &n)| {
                let mut scores = vec![0f32; t * t];
                for h in 0..heads {
                    let q = qkv_b[h * dh..].as_ptr();
                    let k = qkv_b[hd + h * dh..].as_ptr();
                    let v = qkv_b[2 * hd + h * dh..].as_ptr();
                    // SAFETY: q, k, v address t rows of dh values `stride` apart inside
                    // qkv_b ([t, 3·hd]); scores is [t, t]; ctx_b is [t, hd] and written at
                    // column h·dh with dh columns; no output overlaps an input.
                    unsafe {
                        ops::matmul(
                            t,
                            n,
                            dh,
                            scores.as_mut_ptr(),
                            t as isize,
                            View {
                                ptr: q,
                                rs: stride as isize,
                                cs: 1,
                            },
                            View {
                                ptr: k,
                                rs: 1,
                                cs: stride as isize,
                            },
                            scale,
                            1,
                        );
                    }
                    ops::softmax_rows(&mut scores, t, n);
                    // SAFETY: as above; only the first n keys have non-zero weight.
                    unsafe {
                        ops::matmul(
                            t,
                            dh,
                            n,
                            ctx_b[h * dh..].as_mut_ptr(),
                            hd as isize,
                            View {
                                ptr: scores.as_ptr(),
                                rs: t as isize,
                                cs: 1,
                            },
                            View {
                                ptr: v,
                                rs: stride as isize,
                                cs: 1,
                            },
                            1.0,
                            1,
                        );
                    }
                }
            });
        ctx
    }

    /// Parameter count (all tensors the engine holds).
    pub fn parameters(&self) -> usize {
        let lin = Linear::parameters;
        let emb = Embedding::parameters;
        let d = self.config.hidden_size;
        emb(&self.word)
            + emb(&self.position)
            + emb(&self.token_type)
            + 2 * d
            + self
                .layers
                .iter()
                .map(|l| lin(&l.qkv) + lin(&l.attn_out) + lin(&l.inter) + lin(&l.out) + 4 * d)
                .sum::<usize>()
            + lin(&self.pooler)
            + lin(&self.classifier)
    }
}

/// Calibrates static input scales: runs `batches` through `engine` (f32) and returns one
/// scale per Linear (by weight prefix); see [`crate::layers::calibrate_scales`].
pub fn calibrate<'a>(
    engine: &Engine,
    batches: impl IntoIterator<Item = Batch<'a>>,
    method: Calibration,
) -> Result<BTreeMap<String, f32>, CompressError> {
    calibrate_scales(method, |watch| {
        let mut rows = 0;
        for batch in batches {
            rows += batch.batch_size;
            engine.forward(&batch, Some(&mut *watch))?;
        }
        Ok(rows)
    })
}

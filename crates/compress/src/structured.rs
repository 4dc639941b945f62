//! Structured pruning of BERT checkpoints (`refinery prune --method heads|ffn`): whole
//! attention heads or FFN neurons are removed, so the matrices shrink and every engine (burn,
//! the int8 [`crate::bert::Engine`], transformers) does less work.
//!
//! **Heads** (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"). A head's
//! importance is `|∂L/∂ξ_h|` summed over batches of labelled data, where `ξ_h` is a gate on the
//! head's output (`ξ = 1`). No gate is needed in the model: the head's context `c_h` reaches
//! the loss only through its rows of the attention-output weight `W_O` (burn `[H·Dh, D]`), so
//! `∂L/∂ξ_h = Σ_{r ∈ rows(h)} ⟨W_O[r, :], ∂L/∂W_O[r, :]⟩` exactly, from one ordinary
//! backward pass. Scores are normalised per layer by their L2 norm (as Michel et al.), then
//! ranked across layers. Pruning goes in rounds of `step` (default 10%) of all heads,
//! recomputing the importance on the pruned model after each round, until `fraction` of all
//! heads are gone; every layer keeps at least one head. Without data, heads are ranked by the
//! L2 norm of their query/key/value rows and output columns ([`Criterion::Magnitude`]).
//!
//! **FFN neurons.** The same `fraction` of every layer's intermediate neurons (one
//! `intermediate_size` for all layers, so the result is still a plain BERT config), ranked by
//! `|∂L/∂ξ_j| = |⟨W_out[j, :], ∂L/∂W_out[j, :]⟩|` summed over batches (the gate on neuron `j`'s
//! activation), or without data by `‖w_in,j‖₂ · ‖w_out,j‖₂`. One round.
//!
//! **Physical removal.** Heads: the query/key/value rows (HF `[H·Dh, D]` weights and their
//! biases) and the attention-output columns of a pruned head are dropped, and HF's
//! `pruned_heads` in config.json records the original indices (transformers 4.x prunes the same
//! heads at init and loads the weights; refinery's [`BertConfig`] does the same). Neurons: the
//! intermediate rows and bias entries and the output columns are dropped and `intermediate_size`
//! shrinks. The result is an ordinary f32 checkpoint: fine-tune it to recover accuracy
//! (`refinery finetune --init OUT`), quantize it, compare it. See docs/pruning.md.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use memmap2::Mmap;
use refinery_model::bert::{BertConfig, BertModel};
use refinery_model::classify::{Backbone, BackboneConfig, SequenceClassifier};
use refinery_model::OutputOptions;
use refinery_train::data::labelled::ClassBatch;
use refinery_train::data::{BatchSource, DataConfig, DataSplit};
use refinery_train::objectives::classify::classification_loss;
use refinery_train::tasks::{ClassifySpec, Task, TaskSpec};
use safetensors::{Dtype, SafeTensors, View};
use serde::Serialize;
use serde_json::Value;

use crate::outdir;
use crate::prune::{Sparsity, CONFIG_FILE, CONFIG_KEY, REPORT_FILE, WEIGHTS_FILE};
use crate::quant;
use crate::sparse::SPARSE_FILE;
use crate::CompressError;

/// What to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Structure {
    /// Attention heads.
    Heads,
    /// FFN (intermediate) neurons.
    Ffn,
}

impl Structure {
    /// The name used on the command line and in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Structure::Heads => "heads",
            Structure::Ffn => "ffn",
        }
    }
}

/// Labelled data for the importance scores.
#[derive(Debug, Clone)]
pub struct ImportanceData {
    /// A labelled file the model's task reads (its text/label fields, as `evaluate`).
    pub path: PathBuf,
    /// Rows used: the first `samples` of the file.
    pub samples: usize,
    pub batch_size: usize,
}

/// How heads or neurons are ranked.
#[derive(Debug, Clone)]
pub enum Criterion {
    /// `|∂L/∂gate|` summed over batches of labelled data (the module docs).
    Importance(ImportanceData),
    /// Weight norms; needs no data.
    Magnitude,
    /// Heads only: exactly these heads (layer → original head indices).
    Explicit(BTreeMap<usize, Vec<usize>>),
}

impl Criterion {
    fn name(&self) -> &'static str {
        match self {
            Criterion::Importance(_) => "importance",
            Criterion::Magnitude => "magnitude",
            Criterion::Explicit(_) => "explicit",
        }
    }
}

/// What [`prune_structured`] does.
#[derive(Debug, Clone)]
pub struct StructuredOptions {
    pub structure: Structure,
    /// Heads: the fraction of all heads pruned in the result (those pruned before count);
    /// FFN: the fraction of each layer's neurons removed. Ignored with [`Criterion::Explicit`].
    pub fraction: Sparsity,
    /// Heads: the fraction of all heads removed per round (importance is recomputed between
    /// rounds); in `(0, 1]`.
    pub step: f64,
    pub criterion: Criterion,
}

/// Signed gate gradients `∂L/∂ξ` of one batch (mean loss), per layer.
#[derive(Debug, Clone)]
pub struct Gates {
    pub loss: f64,
    /// `[layer][head]` (the layer's current heads).
    pub heads: Vec<Vec<f64>>,
    /// `[layer][neuron]`.
    pub ffn: Vec<Vec<f64>>,
}

fn bert_of(model: &SequenceClassifier) -> Result<&BertModel, CompressError> {
    match &model.backbone {
        Backbone::Bert(b) => Ok(b),
        Backbone::Gpt(_) => Err(CompressError::Invalid(
            "structured pruning supports BERT classifiers (this one has a GPT-2 body)".into(),
        )),
    }
}

/// Dropout off (burn applies it on an autodiff device): the scores of a fixed model.
fn without_dropout(model: &mut SequenceClassifier) {
    model.dropout.prob = 0.0;
    if let Backbone::Bert(b) = &mut model.backbone {
        b.embeddings_dropout.prob = 0.0;
        for l in &mut b.layer {
            l.attn_dropout.prob = 0.0;
            l.attn_output_dropout.prob = 0.0;
            l.output_dropout.prob = 0.0;
        }
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// `Σ_c w[r, c] · g[r, c]` for every row `r` of two `[rows, cols]` row-major matrices.
fn row_dots(w: &[f32], g: &[f32], cols: usize) -> Vec<f64> {
    w.chunks_exact(cols)
        .zip(g.chunks_exact(cols))
        .map(|(w, g)| w.iter().zip(g).map(|(&a, &b)| a as f64 * b as f64).sum())
        .collect()
}

/// The gate gradients of one batch: `model` is on an autodiff `device` (dropout is the
/// caller's business; [`importance`] turns it off).
pub fn gate_gradients(
    model: &SequenceClassifier,
    batch: &ClassBatch,
    class_weights: Option<&[f32]>,
    device: &Device,
) -> Result<Gates, CompressError> {
    let bert = bert_of(model)?;
    let (ids, types, mask) = batch.tensors(device); // [B, T] each
    let logits = model
        .forward(ids, Some(types), mask, OutputOptions::default())
        .logits; // [B, C]
    let [b, c] = logits.dims();
    if let Some(bad) = batch.labels.iter().find(|&&l| l < 0 || l as usize >= c) {
        return Err(CompressError::Invalid(format!(
            "label id {bad} outside the model's {c} labels"
        )));
    }
    let labels = Tensor::<1, Int>::from_data(TensorData::new(batch.labels.clone(), [b]), device);
    let loss = classification_loss(logits, labels, class_weights); // [1]
    let grads = loss.backward();
    let loss = values(loss.detach()).first().copied().unwrap_or(f32::NAN) as f64;
    let missing = |what: &str, l: usize| {
        CompressError::Invalid(format!(
            "layer {l}: no gradient for {what} (is the model on an autodiff device?)"
        ))
    };
    let mut heads = Vec::new();
    let mut ffn = Vec::new();
    for (l, layer) in bert.layer.iter().enumerate() {
        let wo = layer.attn_output.weight.val(); // [H·Dh, D]
        let [hd, d] = wo.dims();
        let go = wo
            .grad(&grads)
            .ok_or_else(|| missing("the attention output", l))?;
        let rows = row_dots(&values(wo), &values(go), d); // [H·Dh]
        let dh = hd / layer.n_head.max(1);
        heads.push(rows.chunks(dh.max(1)).map(|r| r.iter().sum()).collect());
        let w2 = layer.output.weight.val(); // [I, D]
        let g2 = w2
            .grad(&grads)
            .ok_or_else(|| missing("the FFN output", l))?;
        ffn.push(row_dots(&values(w2), &values(g2), d)); // [I]
    }
    Ok(Gates { loss, heads, ffn })
}

/// Importance scores: `Σ_batches |∂L/∂ξ|` over the first `samples` rows of the data, divided
/// by the number of batches.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub rows: usize,
    pub batches: usize,
    /// `[layer][head]`.
    pub heads: Vec<Vec<f64>>,
    /// `[layer][neuron]`.
    pub ffn: Vec<Vec<f64>>,
}

/// The importance of every head and FFN neuron of the classifier in `dir` on `data`;
/// `progress(done, total)` after each batch.
pub fn importance(
    dir: &Path,
    data: &ImportanceData,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Scores, CompressError> {
    if data.samples == 0 || data.batch_size == 0 {
        return Err(CompressError::Invalid(
            "importance: samples and batch size must be at least 1".into(),
        ));
    }
    let spec = ClassifySpec::from_checkpoint(dir)?;
    let task = spec.build(Some(dir))?;
    let ad = device.clone().autodiff();
    let mut model = task.load_model(dir, &ad)?;
    bert_of(&model)?;
    without_dropout(&mut model);
    let config = DataConfig {
        dev: Some(data.path.clone()),
        batch_size: data.batch_size,
        ..DataConfig::default()
    };
    let (mut rows, _) = task.encode_split(&config, DataSplit::Validation)?;
    rows.truncate(data.samples);
    let n_rows = rows.len();
    let n_batches = n_rows.div_ceil(data.batch_size);
    let mut source = task.source(rows, data.batch_size, None)?;
    let mut scores = Scores {
        rows: n_rows,
        batches: n_batches,
        heads: Vec::new(),
        ffn: Vec::new(),
    };
    for done in 0..n_batches {
        let batch = source.next_batch();
        let g = gate_gradients(&model, &batch, spec.class_weights.as_deref(), &ad)?;
        if !g.loss.is_finite() {
            return Err(CompressError::Invalid(format!(
                "{}: the loss of batch {done} is {} (importance needs finite gradients)",
                data.path.display(),
                g.loss
            )));
        }
        if scores.heads.is_empty() {
            scores.heads = g.heads.iter().map(|l| vec![0.0; l.len()]).collect();
            scores.ffn = g.ffn.iter().map(|l| vec![0.0; l.len()]).collect();
        }
        for (acc, x) in [(&mut scores.heads, &g.heads), (&mut scores.ffn, &g.ffn)] {
            for (a, v) in acc.iter_mut().zip(x) {
                for (a, v) in a.iter_mut().zip(v) {
                    *a += v.abs() / n_batches as f64;
                }
            }
        }
        progress(done + 1, n_batches);
    }
    Ok(scores)
}

// ---------------------------------------------------------------------------------------------
// The checkpoint: f32 tensors by name, edited in memory.
// ---------------------------------------------------------------------------------------------

struct Dense {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl View for &Dense {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        4 * self.values.len()
    }
}

/// A BERT checkpoint being pruned: its config (typed and as JSON), its tensors and the key
/// prefix of the body (`bert.` in classifiers, empty in a bare `BertModel`).
struct Checkpoint {
    config: BertConfig,
    json: Value,
    tensors: BTreeMap<String, Dense>,
    metadata: Option<std::collections::HashMap<String, String>>,
    prefix: String,
    weights_path: PathBuf,
}

impl Checkpoint {
    fn read(dir: &Path) -> Result<Checkpoint, CompressError> {
        let config_path = dir.join(CONFIG_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        for p in [&config_path, &weights_path] {
            if !p.is_file() {
                return Err(CompressError::checkpoint(p, "missing"));
            }
        }
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| CompressError::io(&config_path, e))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| CompressError::checkpoint(&config_path, e.to_string()))?;
        if json.get(quant::CONFIG_KEY).is_some() {
            return Err(CompressError::Invalid(format!(
                "{}: an int8 model ({} in config.json); prune the f32 model, then quantize",
                dir.display(),
                quant::CONFIG_KEY
            )));
        }
        let config = match refinery_model::hf_classify::read_backbone_config(dir)? {
            BackboneConfig::Bert(c) => c,
            BackboneConfig::Gpt(_) => {
                return Err(CompressError::Invalid(format!(
                    "{}: structured pruning supports BERT checkpoints (this is GPT-2)",
                    dir.display()
                )))
            }
        };
        let file =
            std::fs::File::open(&weights_path).map_err(|e| CompressError::io(&weights_path, e))?;
        // SAFETY: read-only map, dropped before this function returns; like every safetensors
        // reader we assume the file is not modified while we read it.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| CompressError::io(&weights_path, e))?;
        let (_, header) = SafeTensors::read_metadata(&mmap)
            .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
        let st = SafeTensors::deserialize(&mmap)
            .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let values = quant::f32_values(&weights_path, &name, &view)?;
            tensors.insert(
                name,
                Dense {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        const PROBE: &str = "encoder.layer.0.attention.self.query.weight";
        let prefix = tensors
            .keys()
            .find_map(|k| k.strip_suffix(PROBE))
            .map(str::to_owned)
            .ok_or_else(|| {
                CompressError::checkpoint(&weights_path, format!("no tensor `…{PROBE}`"))
            })?;
        let ckpt = Checkpoint {
            config,
            json,
            tensors,
            metadata: header.metadata().clone(),
            prefix,
            weights_path,
        };
        ckpt.check_shapes()?;
        Ok(ckpt)
    }

    fn key(&self, layer: usize, rest: &str) -> String {
        format!("{}encoder.layer.{layer}.{rest}", self.prefix)
    }

    fn get(&self, layer: usize, rest: &str) -> Result<&Dense, CompressError> {
        let key = self.key(layer, rest);
        self.tensors.get(&key).ok_or_else(|| {
            CompressError::checkpoint(&self.weights_path, format!("no tensor `{key}`"))
        })
    }

    fn head_dim(&self) -> usize {
        self.config.hidden_size / self.config.num_attention_heads
    }

    /// Every tensor structured pruning edits has the shape the config implies (untrusted
    /// input: the edits index by these shapes).
    fn check_shapes(&self) -> Result<(), CompressError> {
        let d = self.config.hidden_size;
        let i = self.config.intermediate_size;
        for l in 0..self.config.num_hidden_layers {
            let hd = self.config.layer_heads(l) * self.head_dim();
            let expect: [(&str, Vec<usize>); 10] = [
                ("attention.self.query.weight", vec![hd, d]),
                ("attention.self.query.bias", vec![hd]),
                ("attention.self.key.weight", vec![hd, d]),
                ("attention.self.key.bias", vec![hd]),
                ("attention.self.value.weight", vec![hd, d]),
                ("attention.self.value.bias", vec![hd]),
                ("attention.output.dense.weight", vec![d, hd]),
                ("intermediate.dense.weight", vec![i, d]),
                ("intermediate.dense.bias", vec![i]),
                ("output.dense.weight", vec![d, i]),
            ];
            for (rest, shape) in expect {
                let t = self.get(l, rest)?;
                if t.shape != shape {
                    return Err(CompressError::checkpoint(
                        &self.weights_path,
                        format!(
                            "tensor `{}` has shape {:?}; the config implies {shape:?}",
                            self.key(l, rest),
                            t.shape
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Keeps the rows `keep` of a `[rows, cols]` tensor (or entries of a vector).
    fn keep_rows(&mut self, layer: usize, rest: &str, keep: &[usize]) {
        let key = self.key(layer, rest);
        if let Some(t) = self.tensors.get_mut(&key) {
            let cols: usize = t.shape.iter().skip(1).product();
            t.values = keep
                .iter()
                .flat_map(|&r| t.values[r * cols..(r + 1) * cols].iter().copied())
                .collect();
            t.shape[0] = keep.len();
        }
    }

    /// Keeps the columns `keep` of a `[rows, cols]` tensor.
    fn keep_cols(&mut self, layer: usize, rest: &str, keep: &[usize]) {
        let key = self.key(layer, rest);
        if let Some(t) = self.tensors.get_mut(&key) {
            let cols = t.shape[1];
            t.values = t
                .values
                .chunks_exact(cols)
                .flat_map(|row| keep.iter().map(|&c| row[c]))
                .collect();
            t.shape[1] = keep.len();
        }
    }

    /// Removes the current heads `drop` (positions among the layer's heads) of `layer`.
    fn remove_heads(&mut self, layer: usize, drop: &[usize]) {
        let dh = self.head_dim();
        let heads = self.config.layer_heads(layer);
        let original: Vec<usize> = self.original_heads(layer);
        let keep_heads: Vec<usize> = (0..heads).filter(|h| !drop.contains(h)).collect();
        let keep: Vec<usize> = keep_heads
            .iter()
            .flat_map(|&h| h * dh..(h + 1) * dh)
            .collect();
        for which in ["query", "key", "value"] {
            self.keep_rows(layer, &format!("attention.self.{which}.weight"), &keep);
            self.keep_rows(layer, &format!("attention.self.{which}.bias"), &keep);
        }
        self.keep_cols(layer, "attention.output.dense.weight", &keep);
        let pruned = self.config.pruned_heads.entry(layer).or_default();
        pruned.extend(drop.iter().map(|&h| original[h]));
        pruned.sort_unstable();
    }

    /// The original indices of `layer`'s current heads, in order.
    fn original_heads(&self, layer: usize) -> Vec<usize> {
        let pruned = self.config.pruned_heads.get(&layer);
        (0..self.config.num_attention_heads)
            .filter(|h| pruned.is_none_or(|p| !p.contains(h)))
            .collect()
    }

    /// Removes the neurons `drop` from every layer's FFN (`drop[layer]`, all the same length).
    fn remove_neurons(&mut self, drop: &[Vec<usize>]) {
        let i = self.config.intermediate_size;
        for (l, drop) in drop.iter().enumerate() {
            let keep: Vec<usize> = (0..i).filter(|j| !drop.contains(j)).collect();
            self.keep_rows(l, "intermediate.dense.weight", &keep);
            self.keep_rows(l, "intermediate.dense.bias", &keep);
            self.keep_cols(l, "output.dense.weight", &keep);
        }
        self.config.intermediate_size -= drop.first().map_or(0, Vec::len);
    }

    /// Row `r`'s squared L2 norm of a `[rows, cols]` tensor, for `rows` rows.
    fn row_sq(&self, layer: usize, rest: &str) -> Result<Vec<f64>, CompressError> {
        let t = self.get(layer, rest)?;
        let cols = t.shape[1];
        Ok(t.values
            .chunks_exact(cols)
            .map(|r| r.iter().map(|&v| (v as f64) * (v as f64)).sum())
            .collect())
    }

    /// Column `c`'s squared L2 norm of a `[rows, cols]` tensor.
    fn col_sq(&self, layer: usize, rest: &str) -> Result<Vec<f64>, CompressError> {
        let t = self.get(layer, rest)?;
        let cols = t.shape[1];
        let mut out = vec![0.0; cols];
        for row in t.values.chunks_exact(cols) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += (v as f64) * (v as f64);
            }
        }
        Ok(out)
    }

    /// Heads by weight norm: `‖q, k, v rows; output columns‖₂` per head.
    fn head_magnitudes(&self) -> Result<Vec<Vec<f64>>, CompressError> {
        let dh = self.head_dim();
        (0..self.config.num_hidden_layers)
            .map(|l| {
                let mut per_dim = self.col_sq(l, "attention.output.dense.weight")?;
                for which in ["query", "key", "value"] {
                    let r = self.row_sq(l, &format!("attention.self.{which}.weight"))?;
                    for (p, r) in per_dim.iter_mut().zip(r) {
                        *p += r;
                    }
                }
                Ok(per_dim
                    .chunks(dh)
                    .map(|c| c.iter().sum::<f64>().sqrt())
                    .collect())
            })
            .collect()
    }

    /// Neurons by `‖w_in,j‖₂ · ‖w_out,j‖₂`.
    fn neuron_magnitudes(&self) -> Result<Vec<Vec<f64>>, CompressError> {
        (0..self.config.num_hidden_layers)
            .map(|l| {
                let a = self.row_sq(l, "intermediate.dense.weight")?;
                let b = self.col_sq(l, "output.dense.weight")?;
                Ok(a.iter().zip(&b).map(|(a, b)| (a * b).sqrt()).collect())
            })
            .collect()
    }

    fn params(&self) -> usize {
        self.tensors.values().map(|t| t.values.len()).sum()
    }

    /// Writes config.json and model.safetensors into `dir`.
    fn write(&mut self, dir: &Path) -> Result<u64, CompressError> {
        self.config.validate()?;
        let typed = serde_json::to_value(&self.config)
            .map_err(|e| CompressError::Invalid(format!("config: {e}")))?;
        if let (Some(obj), Value::Object(typed)) = (self.json.as_object_mut(), typed) {
            for key in ["intermediate_size", "pruned_heads"] {
                match typed.get(key) {
                    Some(v) => obj.insert(key.into(), v.clone()),
                    None => obj.remove(key),
                };
            }
        }
        outdir::write_json(&dir.join(CONFIG_FILE), &self.json)?;
        let path = dir.join(WEIGHTS_FILE);
        safetensors::serialize_to_file(
            self.tensors.iter().map(|(n, t)| (n.as_str(), t)),
            self.metadata.clone(),
            &path,
        )
        .map_err(|e| CompressError::checkpoint(&path, e.to_string()))?;
        Ok(std::fs::metadata(&path)
            .map_err(|e| CompressError::io(&path, e))?
            .len())
    }
}

// ---------------------------------------------------------------------------------------------
// Choosing and the driver.
// ---------------------------------------------------------------------------------------------

/// One removed head or neuron in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    pub layer: usize,
    /// The original index (heads) or the index before this pruning (neurons).
    pub index: usize,
    /// The score it was ranked by (normalised per layer for head importance); `None` for
    /// explicit heads.
    pub score: Option<f64>,
}

/// One round of pruning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub removed: Vec<Removed>,
    /// Rows the importance was computed on (0 without data).
    pub rows: usize,
}

/// A layer after pruning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerReport {
    pub layer: usize,
    /// Heads (or FFN neurons) before and after.
    pub before: usize,
    pub after: usize,
    /// Heads: the layer's `pruned_heads` after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned_heads: Option<Vec<usize>>,
}

/// `pruning.json` of structured pruning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuredReport {
    pub method: Structure,
    pub criterion: &'static str,
    /// The requested fraction (heads: of all heads; FFN: of each layer's neurons).
    pub fraction: f64,
    /// Heads or neurons in the whole model, before and after.
    pub units_before: usize,
    pub units_after: usize,
    pub rounds: Vec<Round>,
    pub layers: Vec<LayerReport>,
    pub params_before: usize,
    pub params_after: usize,
    pub safetensors_bytes: u64,
}

/// The `n` lowest of `scores[layer][i]` (ties: lower layer, then lower index), never taking
/// the last `floor` units of a layer.
fn lowest(scores: &[Vec<f64>], n: usize, floor: usize) -> Vec<(usize, usize, f64)> {
    let mut all: Vec<(usize, usize, f64)> = scores
        .iter()
        .enumerate()
        .flat_map(|(l, s)| s.iter().enumerate().map(move |(i, &v)| (l, i, v)))
        .collect();
    all.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut left: Vec<usize> = scores.iter().map(Vec::len).collect();
    let mut out = Vec::new();
    for (l, i, v) in all {
        if out.len() == n {
            break;
        }
        if left[l] > floor {
            left[l] -= 1;
            out.push((l, i, v));
        }
    }
    out
}

/// Scores divided by their layer's L2 norm (Michel et al.).
fn per_layer_normalised(scores: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    scores
        .into_iter()
        .map(|s| {
            let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                s.into_iter().map(|v| v / norm).collect()
            } else {
                s
            }
        })
        .collect()
}

/// Prunes the BERT checkpoint in `model` into `out` (absent or empty; built aside and renamed
/// when complete): heads or FFN neurons, as `options` says (the module docs). `device` runs
/// the importance passes; `progress(round, done, total)` reports their batches.
pub fn prune_structured(
    model: &Path,
    out: &Path,
    options: &StructuredOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize, usize),
) -> Result<StructuredReport, CompressError> {
    // 1. Inputs checked before any work.
    outdir::check(model, out)?;
    if !(options.step > 0.0 && options.step <= 1.0) {
        return Err(CompressError::Invalid(format!(
            "step {}: must be above 0 and at most 1",
            options.step
        )));
    }
    let mut ckpt = Checkpoint::read(model)?;
    if options.structure == Structure::Ffn && matches!(options.criterion, Criterion::Explicit(_)) {
        return Err(CompressError::Invalid(
            "explicit heads apply to --method heads".into(),
        ));
    }
    let layers = ckpt.config.num_hidden_layers;
    let heads_of = |c: &BertConfig| (0..layers).map(|l| c.layer_heads(l)).collect::<Vec<_>>();
    let heads_before = heads_of(&ckpt.config);
    let neurons_before = ckpt.config.intermediate_size;
    let params_before = ckpt.params();

    // 2. Build in the partial directory, which also holds the model between rounds.
    let staged = outdir::Staged::create(out, "prune")?;
    let partial = staged.path().to_path_buf();
    let partial = partial.as_path();
    outdir::copy_rest(
        model,
        partial,
        &[CONFIG_FILE, WEIGHTS_FILE, REPORT_FILE, SPARSE_FILE],
    )?;
    let importance_in = |dir: &Path,
                         data: &ImportanceData,
                         round: usize,
                         progress: &mut dyn FnMut(usize, usize, usize)| {
        importance(dir, data, device, &mut |d, t| progress(round, d, t))
    };

    // 3. Choose and remove, round by round.
    let mut rounds = Vec::new();
    match options.structure {
        Structure::Heads => {
            let total = layers * ckpt.config.num_attention_heads;
            let already: usize = ckpt.config.pruned_heads.values().map(Vec::len).sum();
            if let Criterion::Explicit(spec) = &options.criterion {
                let mut removed = Vec::new();
                for (&l, heads) in spec {
                    if l >= layers {
                        return Err(CompressError::Invalid(format!(
                            "heads: layer {l} does not exist (the model has {layers} layers)"
                        )));
                    }
                    let original = ckpt.original_heads(l);
                    let mut drop = Vec::new();
                    for &h in heads {
                        let pos = original.iter().position(|&o| o == h).ok_or_else(|| {
                            CompressError::Invalid(format!(
                                "heads: layer {l} has no head {h} left (heads {original:?})"
                            ))
                        })?;
                        if !drop.contains(&pos) {
                            drop.push(pos);
                        }
                    }
                    if drop.len() >= original.len() {
                        return Err(CompressError::Invalid(format!(
                            "heads: pruning {} heads of layer {l}, which has {}: at least one must stay",
                            drop.len(),
                            original.len()
                        )));
                    }
                    removed.extend(drop.iter().map(|&p| Removed {
                        layer: l,
                        index: original[p],
                        score: None,
                    }));
                    ckpt.remove_heads(l, &drop);
                }
                rounds.push(Round { removed, rows: 0 });
            } else {
                let target = options.fraction.count(total);
                if target > total - layers {
                    return Err(CompressError::Invalid(format!(
                        "fraction {}: {target} of {total} heads, but every layer keeps one (at most {} can go)",
                        options.fraction.get(),
                        total - layers
                    )));
                }
                if target <= already {
                    return Err(CompressError::Invalid(format!(
                        "fraction {}: {target} of {total} heads, and {already} are already pruned",
                        options.fraction.get()
                    )));
                }
                // Weight norms do not change as other heads go: one round unless the
                // importance is recomputed.
                let step = match options.criterion {
                    Criterion::Importance(_) => {
                        ((options.step * total as f64).round() as usize).max(1)
                    }
                    _ => target,
                };
                let mut done = already;
                let mut dir = model.to_path_buf();
                while done < target {
                    let n = step.min(target - done);
                    let (scores, rows) = match &options.criterion {
                        Criterion::Importance(data) => {
                            let s = importance_in(&dir, data, rounds.len() + 1, progress)?;
                            (per_layer_normalised(s.heads), s.rows)
                        }
                        _ => (ckpt.head_magnitudes()?, 0),
                    };
                    let chosen = lowest(&scores, n, 1);
                    let mut removed = Vec::new();
                    for l in 0..layers {
                        let original = ckpt.original_heads(l);
                        let drop: Vec<usize> =
                            chosen.iter().filter(|c| c.0 == l).map(|c| c.1).collect();
                        removed.extend(chosen.iter().filter(|c| c.0 == l).map(|c| Removed {
                            layer: l,
                            index: original[c.1],
                            score: Some(c.2),
                        }));
                        if !drop.is_empty() {
                            ckpt.remove_heads(l, &drop);
                        }
                    }
                    done += removed.len();
                    rounds.push(Round { removed, rows });
                    if done < target && matches!(options.criterion, Criterion::Importance(_)) {
                        // The next round scores the pruned model.
                        ckpt.write(partial)?;
                        dir = partial.to_path_buf();
                    }
                }
            }
        }
        Structure::Ffn => {
            let i = ckpt.config.intermediate_size;
            let n = options.fraction.count(i).min(i.saturating_sub(1));
            if n == 0 {
                return Err(CompressError::Invalid(format!(
                    "fraction {} of {i} neurons per layer removes none",
                    options.fraction.get()
                )));
            }
            let (scores, rows) = match &options.criterion {
                Criterion::Importance(data) => {
                    let s = importance_in(model, data, 1, progress)?;
                    (s.ffn, s.rows)
                }
                _ => (ckpt.neuron_magnitudes()?, 0),
            };
            let mut drop = Vec::new();
            let mut removed = Vec::new();
            for (l, s) in scores.iter().enumerate() {
                let chosen = lowest(std::slice::from_ref(s), n, 1);
                let mut d: Vec<usize> = chosen.iter().map(|c| c.1).collect();
                d.sort_unstable();
                removed.extend(chosen.iter().map(|c| Removed {
                    layer: l,
                    index: c.1,
                    score: Some(c.2),
                }));
                drop.push(d);
            }
            ckpt.remove_neurons(&drop);
            rounds.push(Round { removed, rows });
        }
    }

    // 4. The final checkpoint, its config entry and report.
    let heads_after = heads_of(&ckpt.config);
    let (units_before, units_after, layer_reports) = match options.structure {
        Structure::Heads => (
            heads_before.iter().sum(),
            heads_after.iter().sum(),
            (0..layers)
                .map(|l| LayerReport {
                    layer: l,
                    before: heads_before[l],
                    after: heads_after[l],
                    pruned_heads: Some(
                        ckpt.config
                            .pruned_heads
                            .get(&l)
                            .cloned()
                            .unwrap_or_default(),
                    ),
                })
                .collect::<Vec<_>>(),
        ),
        Structure::Ffn => (
            neurons_before * layers,
            ckpt.config.intermediate_size * layers,
            (0..layers)
                .map(|l| LayerReport {
                    layer: l,
                    before: neurons_before,
                    after: ckpt.config.intermediate_size,
                    pruned_heads: None,
                })
                .collect(),
        ),
    };
    let previous = ckpt.json.get(CONFIG_KEY).cloned();
    if let Some(obj) = ckpt.json.as_object_mut() {
        let mut entry = serde_json::json!({
            "method": options.structure.name(),
            "criterion": options.criterion.name(),
            "fraction": options.fraction.get(),
            "before": units_before,
            "after": units_after,
        });
        if let (Some(prev), Some(e)) = (previous, entry.as_object_mut()) {
            e.insert("previous".into(), prev);
        }
        obj.insert(CONFIG_KEY.into(), entry);
    }
    let safetensors_bytes = ckpt.write(partial)?;
    let report = StructuredReport {
        method: options.structure,
        criterion: options.criterion.name(),
        fraction: options.fraction.get(),
        units_before,
        units_after,
        rounds,
        layers: layer_reports,
        params_before,
        params_after: ckpt.params(),
        safetensors_bytes,
    };
    outdir::write_json(&partial.join(REPORT_FILE), &report)?;
    staged.publish()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_keeps_a_floor_per_layer_and_breaks_ties_by_position() {
        let s = vec![vec![0.1, 0.1], vec![0.5, 0.0, 0.2]];
        // Layer 0 may lose one unit (floor 1): 0.0 (1,1), then 0.1 (0,0), then 0.2 (1,2).
        assert_eq!(
            lowest(&s, 3, 1),
            vec![(1, 1, 0.0), (0, 0, 0.1), (1, 2, 0.2)]
        );
        assert_eq!(lowest(&s, 10, 1).len(), 3);
        assert_eq!(lowest(&s, 10, 0).len(), 5);
    }

    #[test]
    fn per_layer_normalisation_is_l2() {
        let n = per_layer_normalised(vec![vec![3.0, 4.0], vec![0.0, 0.0]]);
        assert_eq!(n, vec![vec![0.6, 0.8], vec![0.0, 0.0]]);
    }
}

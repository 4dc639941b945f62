//! One-shot unstructured magnitude pruning of an HF checkpoint directory (`refinery prune
//! --method magnitude`).
//!
//! Which tensors: every 2-D `*.weight` of a Linear layer (HF `nn.Linear` `[out, in]`, or GPT-2's
//! `Conv1D` `[in, out]`: magnitude pruning does not care which way round). Never pruned:
//! embeddings (`*embeddings.weight`, `embed_*`, `shared`, GPT-2 `wte`/`wpe`), LayerNorm and
//! every other 1-D tensor, and the copies of tied weights (`lm_head.weight`,
//! `cls.predictions.decoder.weight`). Classifier heads (`classifier.*`, `score.*`, `heads.*`,
//! `qa_outputs.*`, `cls.*`) stay dense unless asked for ([`PruneOptions::include_head`]).
//!
//! How many: with sparsity `S`, exactly `round(S·n)` weights are set to `+0.0`, the smallest
//! by `|w|`; ties at the threshold go to the lowest index (tensors in name order, then
//! row-major), so the result is deterministic. [`Scope::Global`] ranks all selected weights
//! together (one threshold, layers end up with different sparsities), [`Scope::Layer`] ranks
//! each tensor on its own (the same sparsity in each).
//!
//! The output is a normal dense f32 checkpoint, zeros included, that refinery and
//! transformers load as before; `config.json` gains `refinery_pruning` and `pruning.json`
//! reports every tensor. Dense kernels gain no speed from the zeros: the optional
//! `model.sparse` ([`crate::sparse`]) is for storage only. See docs/pruning.md.
//!
//! Not here (yet): gradual pruning during fine-tuning (Zhu & Gupta's cubic schedule, with masks
//! kept through training) and structured (head, FFN-neuron) pruning.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors, View};
use serde::Serialize;
use serde_json::Value;

use crate::outdir;
use crate::quant;
use crate::sparse::{self, DenseTensor, SPARSE_FILE};
use crate::CompressError;

/// The checkpoint's config file.
pub const CONFIG_FILE: &str = "config.json";
/// The checkpoint's weights file.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The pruning report written next to the weights.
pub const REPORT_FILE: &str = "pruning.json";
/// The `config.json` key recording the pruning.
pub const CONFIG_KEY: &str = "refinery_pruning";

/// A fraction of weights to remove, checked to be in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Sparsity(f64);

impl Sparsity {
    /// Checks `s`: a finite number with `0 <= s < 1`.
    pub fn new(s: f64) -> Result<Self, CompressError> {
        if s.is_finite() && (0.0..1.0).contains(&s) {
            Ok(Sparsity(s))
        } else {
            Err(CompressError::Invalid(format!(
                "sparsity {s}: must be at least 0 and below 1"
            )))
        }
    }

    /// The fraction.
    pub fn get(self) -> f64 {
        self.0
    }

    /// How many of `n` weights to prune: `round(S·n)`.
    pub fn count(self, n: usize) -> usize {
        ((self.0 * n as f64).round() as usize).min(n)
    }
}

/// Over which weights one magnitude threshold applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One threshold over all selected weights.
    Global,
    /// The same sparsity in each tensor.
    Layer,
}

impl Scope {
    /// The name used in `config.json`, `pruning.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Layer => "layer",
        }
    }
}

/// What to prune and how.
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    pub sparsity: Sparsity,
    pub scope: Scope,
    /// Prune the classifier/score head too (default: it stays dense).
    pub include_head: bool,
    /// Also write `model.sparse` (bitmask + values of the pruned tensors).
    pub write_sparse: bool,
}

/// Why a tensor is pruned or left alone (see the module docs for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorRole {
    /// A Linear layer's weight: pruned.
    Linear,
    /// A classifier/score head's weight: pruned only with `include_head`.
    Head,
    /// An embedding table.
    Embedding,
    /// A copy of a tied weight (pruning it would break the tie).
    Tied,
    /// Not a 2-D `*.weight` (bias, LayerNorm, buffers).
    Other,
}

/// Top-level names of task heads in HF and refinery checkpoints.
const HEAD_PREFIXES: &[&str] = &["classifier", "score", "heads", "qa_outputs", "cls"];

/// Weights that are copies of the embeddings in tied checkpoints.
const TIED: &[&str] = &["lm_head.weight", "cls.predictions.decoder.weight"];

/// The role of the tensor `name` with `shape` (rules in the module docs).
pub fn tensor_role(name: &str, shape: &[usize]) -> TensorRole {
    if TIED.contains(&name) {
        return TensorRole::Tied;
    }
    let Some(stem) = name.strip_suffix(".weight") else {
        return TensorRole::Other;
    };
    if shape.len() != 2 {
        return TensorRole::Other;
    }
    let parts: Vec<&str> = stem.split('.').collect();
    let embedding = parts.iter().any(|p| {
        p.ends_with("embeddings")
            || p.starts_with("embed_")
            || matches!(*p, "wte" | "wpe" | "shared")
    });
    if embedding {
        return TensorRole::Embedding;
    }
    if parts
        .iter()
        .any(|p| p.contains("LayerNorm") || p.starts_with("ln_"))
    {
        return TensorRole::Other;
    }
    if parts.first().is_some_and(|p| HEAD_PREFIXES.contains(p)) {
        return TensorRole::Head;
    }
    TensorRole::Linear
}

/// Whether a tensor with `role` is pruned under `include_head`.
fn selected(role: TensorRole, include_head: bool) -> bool {
    role == TensorRole::Linear || (include_head && role == TensorRole::Head)
}

/// `|w|` as ordered bits: for non-negative floats the bit patterns sort as the values do
/// (NaN above infinity, so NaN weights are pruned last).
fn magnitude(w: f32) -> u32 {
    w.to_bits() & 0x7fff_ffff
}

/// Sets the `k` smallest-magnitude weights of `group` (taken as one sequence, in order) to
/// `+0.0`; ties at the threshold go to the lowest positions. Memory: 4 bytes per weight.
fn prune_smallest(group: &mut [&mut [f32]], k: usize) {
    if k == 0 {
        return;
    }
    let mut mags: Vec<u32> = group
        .iter()
        .flat_map(|t| t.iter().map(|&w| magnitude(w)))
        .collect();
    let n = mags.len();
    let k = k.min(n);
    let (_, &mut threshold, _) = mags.select_nth_unstable(k - 1);
    drop(mags);
    let below: usize = group
        .iter()
        .map(|t| t.iter().filter(|&&w| magnitude(w) < threshold).count())
        .sum();
    let mut ties = k - below;
    for t in group.iter_mut() {
        for w in t.iter_mut() {
            let m = magnitude(*w);
            if m < threshold {
                *w = 0.0;
            } else if m == threshold && ties > 0 {
                *w = 0.0;
                ties -= 1;
            }
        }
    }
}

/// Prunes `tensors` in place: `round(S·n)` of all their weights ([`Scope::Global`], in the
/// given order for ties) or of each tensor's ([`Scope::Layer`]).
pub fn magnitude_prune(tensors: &mut [&mut [f32]], sparsity: Sparsity, scope: Scope) {
    match scope {
        Scope::Global => {
            let n = tensors.iter().map(|t| t.len()).sum();
            prune_smallest(tensors, sparsity.count(n));
        }
        Scope::Layer => {
            for t in tensors.iter_mut() {
                let k = sparsity.count(t.len());
                prune_smallest(&mut [&mut **t], k);
            }
        }
    }
}

/// One pruned tensor in `pruning.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<usize>,
    pub params: usize,
    /// Zeros after pruning (weights that were zero before count too).
    pub zeros: usize,
    pub sparsity: f64,
}

/// A tensor left dense, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub role: TensorRole,
    pub params: usize,
}

/// Sums over the pruned tensors, and over the whole model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub tensors: usize,
    pub params: usize,
    pub zeros: usize,
    pub sparsity: f64,
    /// Every parameter of the checkpoint (pruned or not).
    pub model_params: usize,
    /// Zeros of the pruned tensors over every parameter.
    pub model_sparsity: f64,
}

/// Storage of the pruned tensors: dense f32 against the sparse format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Storage {
    /// 4 bytes per weight of the pruned tensors.
    pub dense_bytes: u64,
    /// The size of `model.sparse` holding the same tensors (computed even when not written).
    pub sparse_bytes: u64,
    /// Whether `model.sparse` was written.
    pub sparse_written: bool,
    /// The whole `model.safetensors` written.
    pub safetensors_bytes: u64,
}

/// `pruning.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneReport {
    pub method: &'static str,
    pub scope: Scope,
    pub sparsity: f64,
    pub include_head: bool,
    pub tensors: Vec<TensorReport>,
    pub skipped: Vec<Skipped>,
    pub totals: Totals,
    pub storage: Storage,
}

/// A tensor to write: borrowed from the input, or pruned.
struct OutTensor<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl View for &OutTensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Prunes the checkpoint in `model` into `out` (absent or empty): the dense pruned
/// `model.safetensors`, `config.json` with `refinery_pruning`, `pruning.json`, `model.sparse`
/// when asked, and every other file copied unchanged.
///
/// The result is built in a sibling directory (`.NAME.prune-partial`) and renamed to `out`
/// when complete, so an interrupted run leaves no half-written `out`.
pub fn prune_checkpoint(
    model: &Path,
    out: &Path,
    options: &PruneOptions,
) -> Result<PruneReport, CompressError> {
    // 1. Inputs and output checked before any work.
    let config_path = model.join(CONFIG_FILE);
    let weights_path = model.join(WEIGHTS_FILE);
    for p in [&config_path, &weights_path] {
        if !p.is_file() {
            return Err(CompressError::checkpoint(p, "missing"));
        }
    }
    outdir::check(model, out)?;
    let config_text =
        std::fs::read_to_string(&config_path).map_err(|e| CompressError::io(&config_path, e))?;
    let mut config: Value = serde_json::from_str(&config_text)
        .map_err(|e| CompressError::checkpoint(&config_path, e.to_string()))?;
    if !config.is_object() {
        return Err(CompressError::checkpoint(&config_path, "not a JSON object"));
    }

    // 2. The weights, memory-mapped; tensors in name order (the tie order).
    let file =
        std::fs::File::open(&weights_path).map_err(|e| CompressError::io(&weights_path, e))?;
    // SAFETY: the map is read-only and lives while `tensors` borrows it; like every
    // safetensors reader we assume the file is not modified while we read it.
    let mmap = unsafe { Mmap::map(&file) }.map_err(|e| CompressError::io(&weights_path, e))?;
    let (_, header) = SafeTensors::read_metadata(&mmap)
        .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
    let st = SafeTensors::deserialize(&mmap)
        .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));

    // 3. Select, and decode the selected f32 weights.
    let mut pruned: Vec<DenseTensor> = Vec::new();
    let mut skipped = Vec::new();
    let mut model_params = 0usize;
    for (name, view) in &views {
        let params: usize = view.shape().iter().product();
        model_params += params;
        let role = tensor_role(name, view.shape());
        if !selected(role, options.include_head) {
            skipped.push(Skipped {
                name: name.clone(),
                role,
                params,
            });
            continue;
        }
        if view.dtype() != Dtype::F32 {
            return Err(CompressError::checkpoint(
                &weights_path,
                format!(
                    "tensor `{name}` is {:?}: magnitude pruning reads f32 checkpoints",
                    view.dtype()
                ),
            ));
        }
        let values = quant::f32_values(&weights_path, name, view)?;
        pruned.push(DenseTensor {
            name: name.clone(),
            shape: view.shape().to_vec(),
            values,
        });
    }
    if pruned.is_empty() {
        return Err(CompressError::checkpoint(
            &weights_path,
            format!(
                "no prunable tensors (2-D Linear `*.weight`{})",
                if options.include_head {
                    ""
                } else {
                    "; heads are left dense without --include-head"
                }
            ),
        ));
    }

    // 4. Prune.
    {
        let mut group: Vec<&mut [f32]> = pruned.iter_mut().map(|t| &mut t.values[..]).collect();
        magnitude_prune(&mut group, options.sparsity, options.scope);
    }

    // 5. Write into the partial directory: weights, sparse copy, config, report, the rest.
    let staged = outdir::Staged::create(out, "prune")?;
    let partial = staged.path();

    let by_name: HashMap<&str, &DenseTensor> =
        pruned.iter().map(|t| (t.name.as_str(), t)).collect();
    let out_tensors: Vec<(String, OutTensor<'_>)> = views
        .iter()
        .map(|(name, view)| {
            let data = match by_name.get(name.as_str()) {
                Some(t) => Cow::Owned(t.values.iter().flat_map(|v| v.to_le_bytes()).collect()),
                None => Cow::Borrowed(view.data()),
            };
            let t = OutTensor {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data,
            };
            (name.clone(), t)
        })
        .collect();
    let out_weights = partial.join(WEIGHTS_FILE);
    safetensors::serialize_to_file(
        out_tensors.iter().map(|(n, t)| (n.as_str(), t)),
        header.metadata().clone(),
        &out_weights,
    )
    .map_err(|e| CompressError::checkpoint(&out_weights, e.to_string()))?;
    drop(out_tensors);
    let safetensors_bytes = std::fs::metadata(&out_weights)
        .map_err(|e| CompressError::io(&out_weights, e))?
        .len();

    let sparse_bytes = if options.write_sparse {
        sparse::write_sparse(&partial.join(SPARSE_FILE), &pruned)?
    } else {
        sparse::encoded_len(&pruned)
    };

    let tensors: Vec<TensorReport> = pruned
        .iter()
        .map(|t| {
            let zeros = t.values.iter().filter(|&&w| w == 0.0).count();
            TensorReport {
                name: t.name.clone(),
                shape: t.shape.clone(),
                params: t.values.len(),
                zeros,
                sparsity: ratio(zeros, t.values.len()),
            }
        })
        .collect();
    let params: usize = tensors.iter().map(|t| t.params).sum();
    let zeros: usize = tensors.iter().map(|t| t.zeros).sum();
    let report = PruneReport {
        method: "magnitude",
        scope: options.scope,
        sparsity: options.sparsity.get(),
        include_head: options.include_head,
        totals: Totals {
            tensors: tensors.len(),
            params,
            zeros,
            sparsity: ratio(zeros, params),
            model_params,
            model_sparsity: ratio(zeros, model_params),
        },
        tensors,
        skipped,
        storage: Storage {
            dense_bytes: 4 * params as u64,
            sparse_bytes,
            sparse_written: options.write_sparse,
            safetensors_bytes,
        },
    };

    if let Some(obj) = config.as_object_mut() {
        obj.insert(
            CONFIG_KEY.to_string(),
            serde_json::json!({
                "method": report.method,
                "scope": options.scope.name(),
                "sparsity": report.sparsity,
                "tensors": report.totals.tensors,
            }),
        );
    }
    outdir::write_json(&partial.join(CONFIG_FILE), &config)?;
    outdir::write_json(&partial.join(REPORT_FILE), &report)?;
    // A pruned input's old report and sparse copy describe other weights: not copied.
    outdir::copy_rest(
        model,
        partial,
        &[CONFIG_FILE, WEIGHTS_FILE, REPORT_FILE, SPARSE_FILE],
    )?;

    // 6. Publish: `out` is absent or empty (checked in step 1).
    staged.publish()?;
    Ok(report)
}

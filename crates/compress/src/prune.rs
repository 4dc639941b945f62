//! One-shot unstructured magnitude pruning of an HF checkpoint directory (`refinery prune
//! --method magnitude`).
//!
//! The selection rules live in `refinery_train::prune` (re-exported here), shared with gradual
//! pruning during fine-tuning ([`record_gradual`] writes that run's report). Which tensors:
//! every 2-D `*.weight` of a Linear layer (HF `nn.Linear` `[out, in]`, or GPT-2's
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
//! Not here (yet): structured (head, FFN-neuron) pruning.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors, View};
use serde::Serialize;
use serde_json::Value;

pub use refinery_train::prune::{
    magnitude_prune, tensor_role, GradualPruning, Scope, Sparsity, TensorRole,
};

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
    /// The sparsity asked for (a gradual run's final sparsity).
    pub sparsity: f64,
    pub include_head: bool,
    /// A gradual run's schedule (absent for one-shot pruning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradual: Option<GradualPruning>,
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

/// A checkpoint's tensors sorted into the pruned (decoded) and the skipped.
struct Selection {
    pruned: Vec<DenseTensor>,
    skipped: Vec<Skipped>,
    /// Every parameter of the checkpoint.
    model_params: usize,
}

/// The checkpoint's `config.json` as a JSON object.
fn read_config(dir: &Path) -> Result<Value, CompressError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| CompressError::io(&path, e))?;
    let config: Value =
        serde_json::from_str(&text).map_err(|e| CompressError::checkpoint(&path, e.to_string()))?;
    if !config.is_object() {
        return Err(CompressError::checkpoint(&path, "not a JSON object"));
    }
    Ok(config)
}

/// Sorts `views` (in name order: the tie order) by the rules of [`tensor_role`] and decodes
/// the selected f32 weights.
fn select(
    weights_path: &Path,
    views: &[(String, safetensors::tensor::TensorView<'_>)],
    include_head: bool,
) -> Result<Selection, CompressError> {
    let mut pruned: Vec<DenseTensor> = Vec::new();
    let mut skipped = Vec::new();
    let mut model_params = 0usize;
    for (name, view) in views {
        let params: usize = view.shape().iter().product();
        model_params += params;
        let role = tensor_role(name, view.shape());
        if !role.selected(include_head) {
            skipped.push(Skipped {
                name: name.clone(),
                role,
                params,
            });
            continue;
        }
        if view.dtype() != Dtype::F32 {
            return Err(CompressError::checkpoint(
                weights_path,
                format!(
                    "tensor `{name}` is {:?}: magnitude pruning reads f32 checkpoints",
                    view.dtype()
                ),
            ));
        }
        let values = quant::f32_values(weights_path, name, view)?;
        pruned.push(DenseTensor {
            name: name.clone(),
            shape: view.shape().to_vec(),
            values,
        });
    }
    if pruned.is_empty() {
        return Err(CompressError::checkpoint(
            weights_path,
            format!(
                "no prunable tensors (2-D Linear `*.weight`{})",
                if include_head {
                    ""
                } else {
                    "; heads are left dense without --include-head"
                }
            ),
        ));
    }
    Ok(Selection {
        pruned,
        skipped,
        model_params,
    })
}

/// What a report says about how the weights were pruned.
struct How {
    scope: Scope,
    sparsity: f64,
    include_head: bool,
    gradual: Option<GradualPruning>,
}

/// `pruning.json` of the pruned tensors of `sel` as they are now.
fn build_report(sel: Selection, how: How, storage: Storage) -> PruneReport {
    let tensors: Vec<TensorReport> = sel
        .pruned
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
    PruneReport {
        method: "magnitude",
        scope: how.scope,
        sparsity: how.sparsity,
        include_head: how.include_head,
        gradual: how.gradual,
        totals: Totals {
            tensors: tensors.len(),
            params,
            zeros,
            sparsity: ratio(zeros, params),
            model_params: sel.model_params,
            model_sparsity: ratio(zeros, sel.model_params),
        },
        tensors,
        skipped: sel.skipped,
        storage,
    }
}

/// Records `report` in `config` (`refinery_pruning`).
fn record(config: &mut Value, report: &PruneReport) {
    if let Some(obj) = config.as_object_mut() {
        let mut entry = serde_json::json!({
            "method": report.method,
            "scope": report.scope.name(),
            "sparsity": report.sparsity,
            "tensors": report.totals.tensors,
        });
        if let (Some(e), Some(g)) = (entry.as_object_mut(), &report.gradual) {
            e.insert("schedule".into(), "gradual".into());
            e.insert(
                "initial_sparsity".into(),
                serde_json::json!(g.initial_sparsity.get()),
            );
        }
        obj.insert(CONFIG_KEY.to_string(), entry);
    }
}

/// Memory-maps `path` (a safetensors file).
fn map(path: &Path) -> Result<Mmap, CompressError> {
    let file = std::fs::File::open(path).map_err(|e| CompressError::io(path, e))?;
    // SAFETY: the map is read-only and lives while the tensors borrow it; like every
    // safetensors reader we assume the file is not modified while we read it.
    unsafe { Mmap::map(&file) }.map_err(|e| CompressError::io(path, e))
}

/// Records a gradual pruning run in the model directory `dir` it exported (`best/`,
/// `final/`): `pruning.json` from the weights as they are, and `refinery_pruning` in
/// `config.json`, as [`prune_checkpoint`] writes them. The weights are not changed.
pub fn record_gradual(dir: &Path, pruning: &GradualPruning) -> Result<PruneReport, CompressError> {
    let mut config = read_config(dir)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mmap = map(&weights_path)?;
    let st = SafeTensors::deserialize(&mmap)
        .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let sel = select(&weights_path, &views, pruning.include_head)?;
    let params: usize = sel.pruned.iter().map(|t| t.values.len()).sum();
    let storage = Storage {
        dense_bytes: 4 * params as u64,
        sparse_bytes: sparse::encoded_len(&sel.pruned),
        sparse_written: false,
        safetensors_bytes: mmap.len() as u64,
    };
    let how = How {
        scope: pruning.scope,
        sparsity: pruning.final_sparsity.get(),
        include_head: pruning.include_head,
        gradual: Some(pruning.clone()),
    };
    let report = build_report(sel, how, storage);
    record(&mut config, &report);
    outdir::write_json(&dir.join(CONFIG_FILE), &config)?;
    outdir::write_json(&dir.join(REPORT_FILE), &report)?;
    Ok(report)
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
    let mut config = read_config(model)?;

    // 2. The weights, memory-mapped; tensors in name order (the tie order).
    let mmap = map(&weights_path)?;
    let (_, header) = SafeTensors::read_metadata(&mmap)
        .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
    let st = SafeTensors::deserialize(&mmap)
        .map_err(|e| CompressError::checkpoint(&weights_path, e.to_string()))?;
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));

    // 3. Select, and decode the selected f32 weights.
    let mut sel = select(&weights_path, &views, options.include_head)?;

    // 4. Prune.
    {
        let mut group: Vec<&mut [f32]> = sel.pruned.iter_mut().map(|t| &mut t.values[..]).collect();
        magnitude_prune(&mut group, options.sparsity, options.scope);
    }

    // 5. Write into the partial directory: weights, sparse copy, config, report, the rest.
    let staged = outdir::Staged::create(out, "prune")?;
    let partial = staged.path();

    let by_name: HashMap<&str, &DenseTensor> =
        sel.pruned.iter().map(|t| (t.name.as_str(), t)).collect();
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
    drop(by_name);
    let safetensors_bytes = std::fs::metadata(&out_weights)
        .map_err(|e| CompressError::io(&out_weights, e))?
        .len();

    let sparse_bytes = if options.write_sparse {
        sparse::write_sparse(&partial.join(SPARSE_FILE), &sel.pruned)?
    } else {
        sparse::encoded_len(&sel.pruned)
    };
    let params: usize = sel.pruned.iter().map(|t| t.values.len()).sum();
    let storage = Storage {
        dense_bytes: 4 * params as u64,
        sparse_bytes,
        sparse_written: options.write_sparse,
        safetensors_bytes,
    };
    let how = How {
        scope: options.scope,
        sparsity: options.sparsity.get(),
        include_head: options.include_head,
        gradual: None,
    };
    let report = build_report(sel, how, storage);
    record(&mut config, &report);
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

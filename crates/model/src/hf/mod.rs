//! HF-compatible checkpoints: a directory with `config.json` + `model.safetensors`.
//!
//! Each architecture has one weight map, in its own file: [`gpt`] (GPT-2), [`bert`], [`bart`].
//! A weight map is an [`HfParams`] impl per module type that names every parameter through a
//! prefixed view of the checkpoint, [`Vb`] — candle's `VarBuilder::pp` pattern
//! (`vb.pp("h").pp(i)` names `h.{i}.…`). burn builds a module from its config with lazily
//! initialised parameters, so the view does not construct the module as candle's does: it
//! *visits* one, and the same visit drives every operation on checkpoints:
//!
//! | operation | what it does with the map |
//! |---|---|
//! | [`load`] / [`load_weights`] | checks every name and shape against the file, then fills the parameters |
//! | [`save`] | writes every parameter under its name |
//! | [`param_ids`] | lists burn's parameter ids by name |
//! | [`param_layout`] | lists every parameter's name, id, shape and layout |
//!
//! so adding a layer or a head to a model touches its struct, its init and one line of its
//! map — nothing in load or save. A map also declares the keys a checkpoint may hold that are
//! not parameters: buffers ([`Vb::buffer`], ignored) and tied copies ([`Vb::tied`], checked
//! equal to the parameter they copy). Every other key is an error: checkpoints are untrusted
//! input. Only F32 tensors are read.
//!
//! **Base-model prefix** (HF `base_model_prefix`): a model names its keys as the HF class it
//! mirrors saves them (`GPT2LMHeadModel`: `transformer.wte.weight`). A checkpoint of the base
//! model without the prefix (`GPT2Model`: `wte.weight`) loads too, and a base model loads from
//! a checkpoint with a head (`BertModel` from `BertForPreTraining`: the `bert.` keys, the head's
//! keys are skipped).
//!
//! **Sizes come from untrusted files.** Before any tensor is allocated, [`load_weights`]
//! checks the config against the weights file: every size in the config must be at most the
//! number of values in the file and every layer count at most its number of tensors (errors
//! name the config key), then every parameter's shape, computed from the config without
//! allocating (burn's lazy parameters), must equal the file's (errors name the tensor and the
//! config keys of the mismatched size). A config that implies more parameters than the file
//! holds is refused there; only then are the file's values copied into the model.

mod bart;
mod bert;
mod gpt;

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param, ParamId};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ModelError;

pub use bart::{load_bart, load_bart_weights, read_bart_config, save_bart};
pub use bert::{load_bert, load_bert_model, load_bert_weights, read_bert_config, save_bert};
pub(crate) use gpt::gpt_body;
pub use gpt::{
    gpt_param_ids, load_gpt, load_gpt_weights, read_gpt_config, save_gpt, set_gpt_param_ids,
};

/// Weights file name inside a checkpoint directory (what HF `from_pretrained` looks for).
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Config file name inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

// ---------------------------------------------------------------------------------------------
// The traits a model implements.
// ---------------------------------------------------------------------------------------------

/// A module whose parameters have names in an HF checkpoint: its weight map.
pub trait HfParams {
    /// Declares, under `vb`'s prefix and in checkpoint order, every parameter, and the buffers
    /// and tied copies a checkpoint of it may hold.
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>);
}

/// A config read from `config.json`.
pub trait HfConfig: Serialize + DeserializeOwned {
    /// Checks the invariants the model relies on.
    fn validate(&self) -> Result<(), ModelError>;

    /// The config keys that size tensors, with their values (`vocab_size`, `n_embd`, ...).
    fn sizes(&self) -> Vec<(&'static str, usize)>;

    /// The config keys that count layers (`n_layer`, ...), with their values.
    fn layer_counts(&self) -> Vec<(&'static str, usize)>;
}

/// A model saved and loaded as an HF checkpoint directory.
pub trait HfModel: HfParams + Module + Clone + Sized {
    type Config: HfConfig;
    /// The HF class, written to `config.json` as `architectures`.
    const ARCHITECTURE: &'static str;
    /// HF `base_model_prefix` (`transformer`, `bert`, `model`): see the module docs.
    const BASE_PREFIX: &'static str;

    /// The model for `config` with lazily initialised parameters: no tensor is allocated
    /// until a value is used, so loading allocates only what it reads.
    fn init_lazy(config: &Self::Config, device: &Device) -> Result<Self, ModelError>;
}

// ---------------------------------------------------------------------------------------------
// The prefixed view.
// ---------------------------------------------------------------------------------------------

/// A mutable reference to one parameter of a model, by rank. `Transposed` is a burn `Linear`
/// weight `[in, out]` stored by PyTorch `nn.Linear` as `[out, in]`.
enum Slot<'m> {
    Vector(&'m mut Param<Tensor<1>>),
    Matrix(&'m mut Param<Tensor<2>>),
    Transposed(&'m mut Param<Tensor<2>>),
}

/// What a name in a weight map stands for.
enum Entry<'m> {
    /// A parameter; an `optional` one keeps its initial value when the checkpoint lacks it.
    Param { slot: Slot<'m>, optional: bool },
    /// A key a checkpoint may hold that is not a parameter (an HF buffer): ignored.
    Buffer,
    /// A copy of the parameter `same_as` that HF may save too: checked equal, not loaded.
    Tied { same_as: String },
}

/// A prefixed view of a weight map: every name declared through it is `prefix.name`.
pub struct Vb<'v, 'm> {
    prefix: String,
    entries: &'v mut Vec<(String, Entry<'m>)>,
}

impl<'v, 'm> Vb<'v, 'm> {
    fn root(entries: &'v mut Vec<(String, Entry<'m>)>) -> Self {
        Self {
            prefix: String::new(),
            entries,
        }
    }

    /// The view of `name` under this one (`vb.pp("h").pp(0)` names `h.0.…`).
    pub fn pp(&mut self, name: impl Display) -> Vb<'_, 'm> {
        Vb {
            prefix: self.key(&name.to_string()),
            entries: &mut *self.entries,
        }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn push(&mut self, name: &str, entry: Entry<'m>) {
        let key = self.key(name);
        self.entries.push((key, entry));
    }

    fn param(&mut self, name: &str, slot: Slot<'m>) {
        let optional = false;
        self.push(name, Entry::Param { slot, optional });
    }

    /// `name.weight` `[V, D]`.
    pub fn embedding(&mut self, name: &str, e: &'m mut Embedding) {
        self.pp(name).param("weight", Slot::Matrix(&mut e.weight));
    }

    /// `name.weight` / `name.bias`: burn's `gamma` / `beta`.
    pub fn layer_norm(&mut self, name: &str, ln: &'m mut LayerNorm) {
        let mut vb = self.pp(name);
        vb.param("weight", Slot::Vector(&mut ln.gamma));
        if let Some(b) = ln.beta.as_mut() {
            vb.param("bias", Slot::Vector(b));
        }
    }

    /// A PyTorch `nn.Linear`: `name.weight` `[out, in]` (transposed from burn's `[in, out]`),
    /// `name.bias` `[out]` when the layer has one.
    pub fn linear(&mut self, name: &str, l: &'m mut Linear) {
        let mut vb = self.pp(name);
        vb.param("weight", Slot::Transposed(&mut l.weight));
        if let Some(b) = l.bias.as_mut() {
            vb.param("bias", Slot::Vector(b));
        }
    }

    /// A GPT-2 `Conv1D`: `name.weight` `[in, out]` (burn's layout), `name.bias` `[out]`.
    pub fn conv1d(&mut self, name: &str, l: &'m mut Linear) {
        let mut vb = self.pp(name);
        vb.param("weight", Slot::Matrix(&mut l.weight));
        if let Some(b) = l.bias.as_mut() {
            vb.param("bias", Slot::Vector(b));
        }
    }

    /// A vector parameter stored as is.
    pub fn vector(&mut self, name: &str, p: &'m mut Param<Tensor<1>>) {
        self.param(name, Slot::Vector(p));
    }

    /// A matrix parameter stored as is.
    pub fn matrix(&mut self, name: &str, p: &'m mut Param<Tensor<2>>) {
        self.param(name, Slot::Matrix(p));
    }

    /// A matrix parameter that a checkpoint may lack (it then keeps its initial value); saved.
    pub fn optional_matrix(&mut self, name: &str, p: &'m mut Param<Tensor<2>>) {
        let slot = Slot::Matrix(p);
        self.push(
            name,
            Entry::Param {
                slot,
                optional: true,
            },
        );
    }

    /// A key that a checkpoint may hold and that is no parameter (an HF buffer): ignored.
    pub fn buffer(&mut self, name: &str) {
        self.push(name, Entry::Buffer);
    }

    /// A copy of the parameter `same_as` (both names under this view) that HF may save: when
    /// present, it must equal `same_as`. Not saved.
    pub fn tied(&mut self, name: &str, same_as: &str) {
        let same_as = self.key(same_as);
        self.push(name, Entry::Tied { same_as });
    }
}

/// The weight map of `model`: every name with what it stands for, in checkpoint order.
fn weight_map<M: HfParams>(model: &mut M) -> Vec<(String, Entry<'_>)> {
    let mut entries = Vec::new();
    model.params(&mut Vb::root(&mut entries));
    entries
}

/// `(name, slot)` of every parameter of `model`, in checkpoint order.
fn param_slots<M: HfParams>(model: &mut M) -> Vec<(String, Slot<'_>)> {
    weight_map(model)
        .into_iter()
        .filter_map(|(name, entry)| match entry {
            Entry::Param { slot, .. } => Some((name, slot)),
            Entry::Buffer | Entry::Tied { .. } => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Slots.
// ---------------------------------------------------------------------------------------------

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl Slot<'_> {
    /// Shape in the checkpoint. Does not initialise a lazy parameter.
    fn dims(&self) -> Vec<usize> {
        match self {
            Slot::Vector(p) => p.lazy_shape().to_vec(),
            Slot::Matrix(p) => p.lazy_shape().to_vec(),
            Slot::Transposed(p) => {
                let mut dims = p.lazy_shape().to_vec();
                dims.reverse();
                dims
            }
        }
    }

    /// Replaces the value (checkpoint layout, shape [`Slot::dims`]), keeping the parameter id
    /// (optimizer state is keyed by it). A lazy parameter is never initialised.
    fn set(&mut self, values: Vec<f32>, device: &Device) {
        let dims = self.dims();
        match self {
            Slot::Vector(p) => replace(p, TensorData::new(values, dims), device),
            Slot::Matrix(p) => replace(p, TensorData::new(values, dims), device),
            Slot::Transposed(p) => {
                let (o, i) = (dims[0], dims[1]);
                replace(p, TensorData::new(transpose(&values, o, i), [i, o]), device)
            }
        }
    }

    fn id(&self) -> ParamId {
        match self {
            Slot::Vector(p) => p.id,
            Slot::Matrix(p) | Slot::Transposed(p) => p.id,
        }
    }

    fn set_id(&mut self, id: ParamId) {
        match self {
            Slot::Vector(p) => p.id = id,
            Slot::Matrix(p) | Slot::Transposed(p) => p.id = id,
        }
    }

    /// Values in checkpoint layout.
    fn values(&self) -> Result<Vec<f32>, ModelError> {
        let data = match self {
            Slot::Vector(p) => p.val().into_data(),
            Slot::Matrix(p) | Slot::Transposed(p) => p.val().into_data(),
        };
        let values = data
            .try_to_vec::<f32>()
            .map_err(|e| ModelError::TensorData(format!("{e:?}")))?;
        Ok(match self {
            Slot::Transposed(p) => {
                let [i, o] = p.val().dims();
                transpose(&values, i, o)
            }
            _ => values,
        })
    }
}

fn replace<const D: usize>(p: &mut Param<Tensor<D>>, data: TensorData, device: &Device) {
    let mut new = Param::from_tensor(Tensor::from_data(data, device));
    new.id = p.id;
    *p = new;
}

// ---------------------------------------------------------------------------------------------
// Reading a checkpoint.
// ---------------------------------------------------------------------------------------------

/// Reads and validates `dir/config.json`.
pub fn read_config<C: HfConfig>(dir: &Path) -> Result<C, ModelError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let config: C =
        serde_json::from_str(&text).map_err(|source| ModelError::Json { path, source })?;
    config.validate()?;
    Ok(config)
}

/// Loads the checkpoint directory `dir` (`config.json` + `model.safetensors`) onto `device`.
/// Use `device.autodiff()` to fine-tune the loaded model.
pub fn load<M: HfModel>(dir: &Path, device: &Device) -> Result<(M::Config, M), ModelError> {
    let config = read_config::<M::Config>(dir)?;
    let config_file = dir.join(CONFIG_FILE);
    let model = load_checked(&config, Some(&config_file), &dir.join(WEIGHTS_FILE), device)?;
    Ok((config, model))
}

/// Builds the model for `config` and fills it from the HF-layout safetensors file `path`.
pub fn load_weights<M: HfModel>(
    config: &M::Config,
    path: &Path,
    device: &Device,
) -> Result<M, ModelError> {
    config.validate()?;
    load_checked(config, None, path, device)
}

/// [`load_weights`] of a validated config; `config_file` names it in errors.
fn load_checked<M: HfModel>(
    config: &M::Config,
    config_file: Option<&Path>,
    path: &Path,
    device: &Device,
) -> Result<M, ModelError> {
    load_into(config, config_file, M::BASE_PREFIX, path, device, || {
        M::init_lazy(config, device)
    })
}

/// The steps of [`load`] for a model that is not an [`HfModel`] (a classifier, whose
/// `config.json` holds more than one architecture config): `config` sizes the checks,
/// `build` makes the lazily initialised model once the sizes passed, `base_prefix` is HF's
/// `base_model_prefix`.
pub(crate) fn load_into<M: HfParams, C: HfConfig>(
    config: &C,
    config_file: Option<&Path>,
    base_prefix: &str,
    path: &Path,
    device: &Device,
    build: impl FnOnce() -> Result<M, ModelError>,
) -> Result<M, ModelError> {
    let bytes = read_file(path)?;
    let ckpt = Checkpoint::parse(path, &bytes)?;
    let source = match config_file {
        Some(file) => file.display().to_string(),
        None => "the model config".to_string(),
    };
    // 1. Sizes against the file, before the (lazy) model exists.
    ckpt.check_sizes(config, &source)?;
    // 2. Every parameter's name, shape and dtype, before any value is allocated.
    let mut model = build()?;
    let entries = weight_map(&mut model);
    let naming = Naming::detect(&ckpt, base_prefix, &entries);
    ckpt.check_params(&entries, &naming, config, &source)?;
    // 3. The values.
    ckpt.fill(entries, &naming, device)?;
    Ok(model)
}

/// How a checkpoint names a model's keys (see "Base-model prefix" in the module docs).
struct Naming {
    prefix: String,
    mode: NamingMode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NamingMode {
    /// As the model does.
    Same,
    /// Without the base prefix: a base-model checkpoint loaded into a model with a head.
    Strip,
    /// With the base prefix: a checkpoint with a head loaded into the base model, whose other
    /// keys (the head) are skipped.
    Add,
}

impl Naming {
    /// Decided once from the first parameter's key.
    fn detect(ckpt: &Checkpoint<'_>, base_prefix: &str, entries: &[(String, Entry<'_>)]) -> Self {
        let prefix = format!("{base_prefix}.");
        let first = entries.iter().find_map(|(name, entry)| match entry {
            Entry::Param { .. } => Some(name.as_str()),
            Entry::Buffer | Entry::Tied { .. } => None,
        });
        let mode = match first {
            _ if base_prefix.is_empty() => NamingMode::Same,
            Some(name) if ckpt.has(name) => NamingMode::Same,
            Some(name) if name.starts_with(&prefix) && ckpt.has(&name[prefix.len()..]) => {
                NamingMode::Strip
            }
            Some(name) if ckpt.has(&format!("{prefix}{name}")) => NamingMode::Add,
            _ => NamingMode::Same,
        };
        Self { prefix, mode }
    }

    /// The checkpoint's key for the model's `name`.
    fn key(&self, name: &str) -> String {
        match self.mode {
            NamingMode::Same => name.to_string(),
            NamingMode::Strip => name.strip_prefix(&self.prefix).unwrap_or(name).to_string(),
            NamingMode::Add => format!("{}{name}", self.prefix),
        }
    }

    /// A checkpoint key outside the model (the head of a checkpoint loaded into its base).
    fn skipped(&self, key: &str) -> bool {
        self.mode == NamingMode::Add && !key.starts_with(&self.prefix)
    }
}

fn f32_values(path: &Path, key: &str, view: &TensorView<'_>) -> Result<Vec<f32>, ModelError> {
    check_dtype(path, key, view)?;
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn check_dtype(path: &Path, key: &str, view: &TensorView<'_>) -> Result<(), ModelError> {
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::UnsupportedDtype {
            path: path.to_path_buf(),
            key: key.to_string(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    Ok(())
}

/// A parsed safetensors file.
struct Checkpoint<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl<'a> Checkpoint<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, ModelError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self { path, st })
    }

    fn has(&self, key: &str) -> bool {
        self.st.names().contains(&key)
    }

    fn view(&self, key: &str) -> Result<TensorView<'a>, ModelError> {
        self.st.tensor(key).map_err(|_| ModelError::MissingTensor {
            path: self.path.to_path_buf(),
            key: key.to_string(),
        })
    }

    fn values(&self, key: &str) -> Result<Vec<f32>, ModelError> {
        f32_values(self.path, key, &self.view(key)?)
    }

    /// Every size of the config is at most the number of values in the file, every layer count
    /// at most its number of tensors: what any model the config describes needs at least.
    /// Bounds what the lazy model built from the config may hold.
    fn check_sizes<C: HfConfig>(&self, config: &C, source: &str) -> Result<(), ModelError> {
        let tensors = self.st.len();
        let values: usize = self
            .st
            .tensors()
            .iter()
            .map(|(_, v)| v.shape().iter().product::<usize>())
            .sum();
        let too_big = |key: &str, value: usize, what: String| ModelError::ConfigSize {
            config: source.to_string(),
            key: key.to_string(),
            value,
            path: self.path.to_path_buf(),
            message: what,
        };
        for (key, value) in config.layer_counts() {
            if value > tensors {
                return Err(too_big(
                    key,
                    value,
                    format!("more layers than the file has tensors ({tensors})"),
                ));
            }
        }
        for (key, value) in config.sizes() {
            if value > values {
                return Err(too_big(
                    key,
                    value,
                    format!("larger than the number of values in the file ({values})"),
                ));
            }
        }
        Ok(())
    }

    /// Every parameter is present (unless optional), F32 and of the shape the config implies;
    /// nothing is read or allocated.
    fn check_params<C: HfConfig>(
        &self,
        entries: &[(String, Entry<'_>)],
        naming: &Naming,
        config: &C,
        source: &str,
    ) -> Result<(), ModelError> {
        for (name, entry) in entries {
            let Entry::Param { slot, optional } = entry else {
                continue;
            };
            let key = naming.key(name);
            if *optional && !self.has(&key) {
                continue;
            }
            let view = self.view(&key)?;
            let expected = slot.dims();
            if view.shape() != expected.as_slice() {
                return Err(ModelError::ShapeMismatch {
                    path: self.path.to_path_buf(),
                    hint: size_hint(config, source, &expected, view.shape()),
                    key,
                    expected,
                    found: view.shape().to_vec(),
                });
            }
            check_dtype(self.path, &key, &view)?;
        }
        Ok(())
    }

    /// Fills every parameter (checked by [`Checkpoint::check_params`]); then every key of the
    /// file must be a parameter, a buffer, a tied copy equal to its parameter, or skipped.
    fn fill(
        &self,
        entries: Vec<(String, Entry<'_>)>,
        naming: &Naming,
        device: &Device,
    ) -> Result<(), ModelError> {
        let mut known = HashSet::new();
        let mut tied = HashMap::new();
        for (name, entry) in entries {
            let key = naming.key(&name);
            match entry {
                Entry::Param { mut slot, .. } => {
                    if self.has(&key) {
                        slot.set(self.values(&key)?, device);
                    }
                }
                Entry::Buffer => {}
                Entry::Tied { same_as } => {
                    tied.insert(key.clone(), naming.key(&same_as));
                }
            }
            known.insert(key);
        }
        for key in self.st.names() {
            if let Some(same_as) = tied.get(key) {
                if self.values(key)? != self.values(same_as)? {
                    return Err(ModelError::UntiedWeights {
                        path: self.path.to_path_buf(),
                        key: key.to_string(),
                        same_as: same_as.clone(),
                    });
                }
            } else if !known.contains(key) && !naming.skipped(key) {
                return Err(ModelError::UnexpectedTensor {
                    path: self.path.to_path_buf(),
                    key: key.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The config keys behind a shape mismatch: those whose value is a mismatched expected size.
fn size_hint<C: HfConfig>(config: &C, source: &str, expected: &[usize], found: &[usize]) -> String {
    let keys: Vec<String> = config
        .sizes()
        .into_iter()
        .filter(|&(_, value)| {
            expected
                .iter()
                .enumerate()
                .any(|(i, &e)| e == value && found.get(i) != Some(&e))
        })
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    if keys.is_empty() {
        String::new()
    } else {
        format!(" ({source}: {})", keys.join(", "))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing a checkpoint, parameter ids.
// ---------------------------------------------------------------------------------------------

/// Saves `model` as an HF checkpoint directory: `config.json` (with `architectures`) and
/// `model.safetensors` (F32, `format = pt`; buffers and tied copies are not written, as
/// `save_pretrained` does not write them).
pub fn save<M: HfModel>(model: &M, config: &M::Config, dir: &Path) -> Result<(), ModelError> {
    config.validate()?;
    let json = serde_json::to_value(config).map_err(|source| ModelError::Json {
        path: dir.join(CONFIG_FILE),
        source,
    })?;
    save_json(model, json, M::ARCHITECTURE, dir)
}

/// The steps of [`save`] with `config.json` given as JSON (`architectures` is added).
pub(crate) fn save_json<M: HfParams + Clone>(
    model: &M,
    mut json: serde_json::Value,
    architecture: &str,
    dir: &Path,
) -> Result<(), ModelError> {
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;

    let config_path = dir.join(CONFIG_FILE);
    let json_err = |source| ModelError::Json {
        path: config_path.clone(),
        source,
    };
    if let Some(obj) = json.as_object_mut() {
        obj.insert("architectures".into(), serde_json::json!([architecture]));
    }
    let text = serde_json::to_string_pretty(&json).map_err(json_err)?;
    std::fs::write(&config_path, text + "\n").map_err(io(config_path.clone()))?;

    let mut model = model.clone();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, slot) in param_slots(&mut model) {
        let bytes = slot
            .values()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tensors.push((name, slot.dims(), bytes));
    }
    let path = dir.join(WEIGHTS_FILE);
    let st_err = |e: safetensors::SafeTensorError| ModelError::Safetensors {
        path: path.clone(),
        message: e.to_string(),
    };
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(st_err)?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &path).map_err(st_err)?;
    // The safetensors crate creates the file 0600; give it config.json's mode (umask).
    let mode = std::fs::metadata(&config_path)
        .map_err(io(config_path.clone()))?
        .permissions();
    std::fs::set_permissions(&path, mode).map_err(io(path.clone()))
}

/// The burn parameter id of every parameter, by checkpoint name. burn's optimizer state is
/// keyed by these ids; [`set_param_ids`] restores them.
pub fn param_ids<M: HfParams + Clone>(model: &M) -> Vec<(String, u64)> {
    let mut model = model.clone();
    param_slots(&mut model)
        .into_iter()
        .map(|(name, slot)| (name, slot.id().val()))
        .collect()
}

/// Where one parameter sits in the checkpoint: its name, burn id, checkpoint shape, and
/// whether burn holds it transposed (a PyTorch `nn.Linear` weight: `[in, out]` in burn,
/// `[out, in]` in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    pub name: String,
    pub id: ParamId,
    /// The shape in the checkpoint.
    pub dims: Vec<usize>,
    /// burn's tensor is the transpose of the checkpoint's `[rows, cols]`.
    pub transposed: bool,
}

/// Every parameter of `model` with its checkpoint name and layout, in checkpoint order: what
/// code that works on checkpoint names (pruning rules) needs to reach the live parameters.
pub fn param_layout<M: HfParams + Clone>(model: &M) -> Vec<ParamLayout> {
    let mut model = model.clone();
    param_slots(&mut model)
        .into_iter()
        .map(|(name, slot)| ParamLayout {
            id: slot.id(),
            dims: slot.dims(),
            transposed: matches!(slot, Slot::Transposed(_)),
            name,
        })
        .collect()
}

/// Restores parameter ids saved by [`param_ids`]; every parameter must be listed.
pub fn set_param_ids<M: HfParams>(
    model: &mut M,
    ids: &HashMap<String, u64>,
) -> Result<(), ModelError> {
    for (name, mut slot) in param_slots(model) {
        let id = ids
            .get(&name)
            .ok_or_else(|| ModelError::InvalidConfig(format!("no parameter id for {name:?}")))?;
        slot.set_id(ParamId::from(*id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bart::BartConfig;
    use crate::bert::{BertConfig, BertForPreTraining};
    use crate::gpt::{Gpt, GptConfig};
    use crate::BartForConditionalGeneration;

    fn initialized(slot: &Slot<'_>) -> bool {
        match slot {
            Slot::Vector(p) => p.is_initialized(),
            Slot::Matrix(p) | Slot::Transposed(p) => p.is_initialized(),
        }
    }

    /// No parameter of a lazily built model is allocated by building it, listing its weight
    /// map and checking shapes (the values of a config's sizes are only read from the file).
    fn assert_lazy<M: HfModel>(config: &M::Config) {
        let dev = Device::flex();
        let mut model = M::init_lazy(config, &dev).unwrap();
        let slots = param_slots(&mut model);
        assert!(!slots.is_empty());
        for (name, slot) in &slots {
            let _ = slot.dims();
            assert!(!initialized(slot), "{name} was allocated");
        }
    }

    #[test]
    fn lazy_models_allocate_nothing_before_the_values_are_read() {
        assert_lazy::<Gpt>(&GptConfig::new(50, 16, 32, 2, 4));
        assert_lazy::<BertForPreTraining>(&BertConfig::new(50, 32, 2, 4, 64));
        assert_lazy::<BartForConditionalGeneration>(&BartConfig::new(50, 32, 1, 4, 64));
    }

    #[test]
    fn a_shape_mismatch_is_found_before_any_value_is_allocated() {
        let dev = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let saved = GptConfig::new(50, 16, 32, 2, 4);
        save(&saved.init(&dev).unwrap(), &saved, dir.path()).unwrap();
        let path = dir.path().join(WEIGHTS_FILE);
        let bytes = read_file(&path).unwrap();
        let ckpt = Checkpoint::parse(&path, &bytes).unwrap();
        // The last tensor mismatches: every other one was checked first.
        let mut model = Gpt::init_lazy(&saved, &dev).unwrap();
        model.ln_f.gamma = burn::nn::Initializer::Ones.init([33], &dev);
        let entries = weight_map(&mut model);
        let naming = Naming::detect(&ckpt, Gpt::BASE_PREFIX, &entries);
        let err = ckpt
            .check_params(&entries, &naming, &saved, "config.json")
            .unwrap_err();
        assert!(
            matches!(&err, ModelError::ShapeMismatch { key, .. } if key == "transformer.ln_f.weight"),
            "{err}"
        );
        for (name, entry) in &entries {
            if let Entry::Param { slot, .. } = entry {
                assert!(!initialized(slot), "{name} was allocated");
            }
        }
    }
}

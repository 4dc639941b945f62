//! HF-compatible checkpoints: a directory with `config.json` + `model.safetensors`.
//!
//! Key mapping (GPT-2, `GPT2LMHeadModel`; prefix `transformer.` optional on load):
//!
//! | HF key                                   | burn field                  | shape        |
//! |------------------------------------------|-----------------------------|--------------|
//! | `transformer.wte.weight`                 | `wte.weight`                | `[V, D]`     |
//! | `transformer.wpe.weight`                 | `wpe.weight`                | `[P, D]`     |
//! | `transformer.h.{i}.ln_1.weight` / `.bias`| `h[i].ln_1.gamma` / `.beta` | `[D]`        |
//! | `transformer.h.{i}.attn.c_attn.weight`   | `h[i].attn.c_attn.weight`   | `[D, 3D]`    |
//! | `transformer.h.{i}.attn.c_attn.bias`     | `h[i].attn.c_attn.bias`     | `[3D]`       |
//! | `transformer.h.{i}.attn.c_proj.*`        | `h[i].attn.c_proj.*`        | `[D, D]`     |
//! | `transformer.h.{i}.ln_2.*`               | `h[i].ln_2.gamma` / `.beta` | `[D]`        |
//! | `transformer.h.{i}.mlp.c_fc.*`           | `h[i].mlp.c_fc.*`           | `[D, 4D]`    |
//! | `transformer.h.{i}.mlp.c_proj.*`         | `h[i].mlp.c_proj.*`         | `[4D, D]`    |
//! | `transformer.ln_f.weight` / `.bias`      | `ln_f.gamma` / `.beta`      | `[D]`        |
//! | `lm_head.weight` (optional, tied)        | — (must equal `wte.weight`) | `[V, D]`     |
//!
//! GPT-2's `Conv1D` stores `[in, out]`, the same as burn's `Linear`: no transposes.
//!
//! BERT (`BertForPreTraining`): `bert.embeddings.{word,position,token_type}_embeddings.weight`,
//! `bert.embeddings.LayerNorm`, `bert.encoder.layer.{i}.attention.self.{query,key,value}`,
//! `.attention.output.dense`, `.attention.output.LayerNorm`, `.intermediate.dense`,
//! `.output.dense`, `.output.LayerNorm`, `bert.pooler.dense`, `cls.predictions.transform.dense`,
//! `cls.predictions.transform.LayerNorm`, `cls.predictions.bias`, `cls.seq_relationship`.
//! These are PyTorch `nn.Linear` weights, `[out, in]`: transposed to burn's `[in, out]` on load
//! and back on save. `cls.predictions.decoder.{weight,bias}` are tied (to the word embeddings
//! and `cls.predictions.bias`) and only checked; `bert.embeddings.position_ids` is ignored.
//! The causal-mask buffers of old checkpoints (`h.{i}.attn.bias`, `h.{i}.attn.masked_bias`)
//! are ignored (GPT-2). Every other unknown key is an error: checkpoints are untrusted input, and every
//! shape is checked against the one the config implies. Only F32 tensors are read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::bert::{BertConfig, BertForPreTraining, BertModel, PreTrainingHeads};
use crate::error::ModelError;
use crate::gpt::{Gpt, GptConfig};

/// Weights file name inside a checkpoint directory (what HF `from_pretrained` looks for).
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Config file name inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// A mutable reference to one parameter of a model, by rank. `Transposed` is a burn `Linear`
/// weight `[in, out]` stored by PyTorch `nn.Linear` as `[out, in]`.
pub(crate) enum Slot<'a> {
    Vector(&'a mut Param<Tensor<1>>),
    Matrix(&'a mut Param<Tensor<2>>),
    Transposed(&'a mut Param<Tensor<2>>),
}

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
    /// Shape in the checkpoint.
    fn dims(&self) -> Vec<usize> {
        match self {
            Slot::Vector(p) => p.val().dims().to_vec(),
            Slot::Matrix(p) => p.val().dims().to_vec(),
            Slot::Transposed(p) => {
                let [i, o] = p.val().dims();
                vec![o, i]
            }
        }
    }

    /// Replaces the value, keeping the parameter id (optimizer state is keyed by it).
    fn set(&mut self, values: Vec<f32>, device: &Device) {
        match self {
            Slot::Vector(p) => {
                let t = Tensor::from_data(TensorData::new(values, p.val().dims()), device);
                let mut new = Param::from_tensor(t);
                new.id = p.id;
                **p = new;
            }
            Slot::Matrix(p) => {
                let t = Tensor::from_data(TensorData::new(values, p.val().dims()), device);
                let mut new = Param::from_tensor(t);
                new.id = p.id;
                **p = new;
            }
            Slot::Transposed(p) => {
                let [i, o] = p.val().dims();
                let values = transpose(&values, o, i);
                let t = Tensor::from_data(TensorData::new(values, [i, o]), device);
                let mut new = Param::from_tensor(t);
                new.id = p.id;
                **p = new;
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

fn push_linear<'a>(out: &mut Vec<(String, Slot<'a>)>, prefix: &str, l: &'a mut Linear) {
    out.push((format!("{prefix}.weight"), Slot::Matrix(&mut l.weight)));
    if let Some(b) = l.bias.as_mut() {
        out.push((format!("{prefix}.bias"), Slot::Vector(b)));
    }
}

pub(crate) fn push_layer_norm<'a>(
    out: &mut Vec<(String, Slot<'a>)>,
    prefix: &str,
    ln: &'a mut LayerNorm,
) {
    out.push((format!("{prefix}.weight"), Slot::Vector(&mut ln.gamma)));
    if let Some(b) = ln.beta.as_mut() {
        out.push((format!("{prefix}.bias"), Slot::Vector(b)));
    }
}

/// HF names (without the `transformer.` prefix) of every parameter, in checkpoint order.
pub(crate) fn gpt_slots(model: &mut Gpt) -> Vec<(String, Slot<'_>)> {
    let mut out = Vec::new();
    out.push((
        "wte.weight".to_string(),
        Slot::Matrix(&mut model.wte.weight),
    ));
    out.push((
        "wpe.weight".to_string(),
        Slot::Matrix(&mut model.wpe.weight),
    ));
    for (i, block) in model.h.iter_mut().enumerate() {
        push_layer_norm(&mut out, &format!("h.{i}.ln_1"), &mut block.ln_1);
        push_linear(
            &mut out,
            &format!("h.{i}.attn.c_attn"),
            &mut block.attn.c_attn,
        );
        push_linear(
            &mut out,
            &format!("h.{i}.attn.c_proj"),
            &mut block.attn.c_proj,
        );
        push_layer_norm(&mut out, &format!("h.{i}.ln_2"), &mut block.ln_2);
        push_linear(&mut out, &format!("h.{i}.mlp.c_fc"), &mut block.mlp.c_fc);
        push_linear(
            &mut out,
            &format!("h.{i}.mlp.c_proj"),
            &mut block.mlp.c_proj,
        );
    }
    push_layer_norm(&mut out, "ln_f", &mut model.ln_f);
    out
}

/// The burn parameter id of every parameter, by HF name (without prefix). burn's optimizer
/// state is keyed by these ids, so a training checkpoint stores them and
/// [`set_gpt_param_ids`] restores them on resume.
pub fn gpt_param_ids(model: &Gpt) -> Vec<(String, u64)> {
    let mut model = model.clone();
    gpt_slots(&mut model)
        .into_iter()
        .map(|(name, slot)| (name, slot.id().val()))
        .collect()
}

/// Restores parameter ids saved by [`gpt_param_ids`]; every parameter must be listed.
pub fn set_gpt_param_ids(model: &mut Gpt, ids: &HashMap<String, u64>) -> Result<(), ModelError> {
    for (name, mut slot) in gpt_slots(model) {
        let id = ids
            .get(&name)
            .ok_or_else(|| ModelError::InvalidConfig(format!("no parameter id for {name:?}")))?;
        slot.set_id(ParamId::from(*id));
    }
    Ok(())
}

/// Reads and validates `dir/config.json`.
/// `BertModel` parameters by HF name, without the `bert.` prefix.
pub(crate) fn bert_model_slots(model: &mut BertModel) -> Vec<(String, Slot<'_>)> {
    let mut out = Vec::new();
    let e = "embeddings";
    out.push((
        format!("{e}.word_embeddings.weight"),
        Slot::Matrix(&mut model.word_embeddings.weight),
    ));
    out.push((
        format!("{e}.position_embeddings.weight"),
        Slot::Matrix(&mut model.position_embeddings.weight),
    ));
    out.push((
        format!("{e}.token_type_embeddings.weight"),
        Slot::Matrix(&mut model.token_type_embeddings.weight),
    ));
    push_layer_norm(
        &mut out,
        &format!("{e}.LayerNorm"),
        &mut model.embeddings_layer_norm,
    );
    for (i, l) in model.layer.iter_mut().enumerate() {
        let p = format!("encoder.layer.{i}");
        push_linear_t(&mut out, &format!("{p}.attention.self.query"), &mut l.query);
        push_linear_t(&mut out, &format!("{p}.attention.self.key"), &mut l.key);
        push_linear_t(&mut out, &format!("{p}.attention.self.value"), &mut l.value);
        push_linear_t(
            &mut out,
            &format!("{p}.attention.output.dense"),
            &mut l.attn_output,
        );
        push_layer_norm(
            &mut out,
            &format!("{p}.attention.output.LayerNorm"),
            &mut l.attn_layer_norm,
        );
        push_linear_t(
            &mut out,
            &format!("{p}.intermediate.dense"),
            &mut l.intermediate,
        );
        push_linear_t(&mut out, &format!("{p}.output.dense"), &mut l.output);
        push_layer_norm(
            &mut out,
            &format!("{p}.output.LayerNorm"),
            &mut l.output_layer_norm,
        );
    }
    push_linear_t(&mut out, "pooler.dense", &mut model.pooler);
    out
}

/// Pretraining-head parameters by HF name (`cls.*`).
fn heads_slots(heads: &mut PreTrainingHeads) -> Vec<(String, Slot<'_>)> {
    let mut out = Vec::new();
    push_linear_t(
        &mut out,
        "cls.predictions.transform.dense",
        &mut heads.mlm_transform,
    );
    push_layer_norm(
        &mut out,
        "cls.predictions.transform.LayerNorm",
        &mut heads.mlm_layer_norm,
    );
    out.push((
        "cls.predictions.bias".into(),
        Slot::Vector(&mut heads.mlm_bias),
    ));
    push_linear_t(&mut out, "cls.seq_relationship", &mut heads.nsp);
    out
}

/// `BertForPreTraining` parameters by HF name (`bert.*` + `cls.*`).
fn bert_slots(model: &mut BertForPreTraining) -> Vec<(String, Slot<'_>)> {
    let mut out: Vec<(String, Slot<'_>)> = bert_model_slots(&mut model.bert)
        .into_iter()
        .map(|(n, s)| (format!("bert.{n}"), s))
        .collect();
    out.extend(heads_slots(&mut model.cls));
    out
}

pub(crate) fn push_linear_t<'a>(
    out: &mut Vec<(String, Slot<'a>)>,
    prefix: &str,
    l: &'a mut Linear,
) {
    out.push((format!("{prefix}.weight"), Slot::Transposed(&mut l.weight)));
    if let Some(b) = l.bias.as_mut() {
        out.push((format!("{prefix}.bias"), Slot::Vector(b)));
    }
}

pub(crate) fn read_config<C: serde::de::DeserializeOwned>(dir: &Path) -> Result<C, ModelError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::Json { path, source })
}

/// Reads and validates `dir/config.json` as a GPT-2 config.
pub fn read_gpt_config(dir: &Path) -> Result<GptConfig, ModelError> {
    let config: GptConfig = read_config(dir)?;
    config.validate()?;
    Ok(config)
}

/// Reads and validates `dir/config.json` as a BERT config.
pub fn read_bert_config(dir: &Path) -> Result<BertConfig, ModelError> {
    let config: BertConfig = read_config(dir)?;
    config.validate()?;
    Ok(config)
}

/// Loads a GPT-2 checkpoint directory (`config.json` + `model.safetensors`) onto `device`.
/// Use `device.autodiff()` to fine-tune the loaded model.
pub fn load_gpt(dir: &Path, device: &Device) -> Result<(GptConfig, Gpt), ModelError> {
    let config = read_gpt_config(dir)?;
    let model = load_gpt_weights(&config, &dir.join(WEIGHTS_FILE), device)?;
    Ok((config, model))
}

/// Loads a `BertForPreTraining` checkpoint directory onto `device`.
pub fn load_bert(
    dir: &Path,
    device: &Device,
) -> Result<(BertConfig, BertForPreTraining), ModelError> {
    let config = read_bert_config(dir)?;
    let model = load_bert_weights(&config, &dir.join(WEIGHTS_FILE), device)?;
    Ok((config, model))
}

/// Loads the encoder + pooler of any BERT checkpoint directory: a `BertModel` save (bare
/// keys, e.g. sentence-transformers' all-MiniLM-L6-v2) or a `BertForPreTraining` save
/// (`bert.*`; its `cls.*` heads are skipped).
pub fn load_bert_model(dir: &Path, device: &Device) -> Result<(BertConfig, BertModel), ModelError> {
    let config = read_bert_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_file(&path)?;
    let ckpt = Checkpoint::parse(&path, &bytes)?;
    let prefix = if ckpt.has("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    };
    let mut model = config.init_model(device)?;
    let used = ckpt.fill(
        bert_model_slots(&mut model),
        |n| format!("{prefix}{n}"),
        device,
    )?;
    let position_ids = format!("{prefix}embeddings.position_ids");
    let skipped = |key: &str| key == position_ids || key.starts_with("cls.");
    ckpt.check_rest(&used, skipped, &[])?;
    Ok((config, model))
}

fn f32_values(path: &Path, key: &str, view: &TensorView<'_>) -> Result<Vec<f32>, ModelError> {
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::UnsupportedDtype {
            path: path.to_path_buf(),
            key: key.to_string(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A parsed safetensors file.
pub(crate) struct Checkpoint<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
}

impl<'a> Checkpoint<'a> {
    pub(crate) fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, ModelError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self { path, st })
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.st.names().contains(&key)
    }

    fn values(&self, key: &str) -> Result<Vec<f32>, ModelError> {
        let view = self.st.tensor(key).map_err(|_| ModelError::MissingTensor {
            path: self.path.to_path_buf(),
            key: key.to_string(),
        })?;
        f32_values(self.path, key, &view)
    }

    /// Fills every slot from `prefix + name`, checking dtype and shape; returns the used keys.
    pub(crate) fn fill(
        &self,
        slots: Vec<(String, Slot<'_>)>,
        prefix: impl Fn(&str) -> String,
        device: &Device,
    ) -> Result<HashSet<String>, ModelError> {
        let mut used = HashSet::new();
        for (name, mut slot) in slots {
            let key = prefix(&name);
            let view = self
                .st
                .tensor(&key)
                .map_err(|_| ModelError::MissingTensor {
                    path: self.path.to_path_buf(),
                    key: key.clone(),
                })?;
            let expected = slot.dims();
            if view.shape() != expected.as_slice() {
                return Err(ModelError::ShapeMismatch {
                    path: self.path.to_path_buf(),
                    key,
                    expected,
                    found: view.shape().to_vec(),
                });
            }
            slot.set(f32_values(self.path, &key, &view)?, device);
            used.insert(key);
        }
        Ok(used)
    }

    /// Every key must be used, allowed, or a copy of a tied tensor: `(key, same_as)`.
    pub(crate) fn check_rest(
        &self,
        used: &HashSet<String>,
        allowed: impl Fn(&str) -> bool,
        tied: &[(String, String)],
    ) -> Result<(), ModelError> {
        for key in self.st.names() {
            if used.contains(key) || allowed(key) {
                continue;
            }
            if let Some((_, same_as)) = tied.iter().find(|(k, _)| k == key) {
                if self.values(key)? != self.values(same_as)? {
                    return Err(ModelError::UntiedWeights {
                        path: self.path.to_path_buf(),
                        key: key.to_string(),
                        same_as: same_as.clone(),
                    });
                }
                continue;
            }
            return Err(ModelError::UnexpectedTensor {
                path: self.path.to_path_buf(),
                key: key.to_string(),
            });
        }
        Ok(())
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds a GPT-2 for `config` and fills it from an HF-layout safetensors file.
pub fn load_gpt_weights(
    config: &GptConfig,
    path: &Path,
    device: &Device,
) -> Result<Gpt, ModelError> {
    let bytes = read_file(path)?;
    let ckpt = Checkpoint::parse(path, &bytes)?;
    // GPT2LMHeadModel saves `transformer.*`, GPT2Model saves bare names.
    let prefix = if ckpt.has("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let mut model = config.init(device)?;
    let used = ckpt.fill(gpt_slots(&mut model), |n| format!("{prefix}{n}"), device)?;
    let block_prefix = format!("{prefix}h.");
    let is_mask_buffer = |key: &str| {
        key.starts_with(&block_prefix)
            && (key.ends_with(".attn.bias") || key.ends_with(".attn.masked_bias"))
    };
    let tied = [("lm_head.weight".to_string(), format!("{prefix}wte.weight"))];
    ckpt.check_rest(&used, is_mask_buffer, &tied)?;
    Ok(model)
}

/// Builds a BERT for `config` and fills it from an HF `BertForPreTraining` safetensors file
/// (`bert.*` + `cls.*`; the tied `cls.predictions.decoder.*` copies are checked, not loaded).
pub fn load_bert_weights(
    config: &BertConfig,
    path: &Path,
    device: &Device,
) -> Result<BertForPreTraining, ModelError> {
    let bytes = read_file(path)?;
    let ckpt = Checkpoint::parse(path, &bytes)?;
    let mut model = config.init(device)?;
    let used = ckpt.fill(bert_slots(&mut model), |n| n.to_string(), device)?;
    let is_buffer = |key: &str| key == "bert.embeddings.position_ids";
    let tied = [
        (
            "cls.predictions.decoder.weight".to_string(),
            "bert.embeddings.word_embeddings.weight".to_string(),
        ),
        (
            "cls.predictions.decoder.bias".to_string(),
            "cls.predictions.bias".to_string(),
        ),
    ];
    ckpt.check_rest(&used, is_buffer, &tied)?;
    Ok(model)
}

/// Writes `config.json` (with `architectures`) and `model.safetensors` (F32, `format = pt`).
pub(crate) fn save_checkpoint<C: serde::Serialize>(
    config: &C,
    architecture: &str,
    slots: Vec<(String, Slot<'_>)>,
    dir: &Path,
) -> Result<(), ModelError> {
    let io = |path: PathBuf| move |source| ModelError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;

    let config_path = dir.join(CONFIG_FILE);
    let json_err = |source| ModelError::Json {
        path: config_path.clone(),
        source,
    };
    let mut json = serde_json::to_value(config).map_err(json_err)?;
    if let Some(obj) = json.as_object_mut() {
        obj.insert("architectures".into(), serde_json::json!([architecture]));
    }
    let text = serde_json::to_string_pretty(&json).map_err(json_err)?;
    std::fs::write(&config_path, text + "\n").map_err(io(config_path.clone()))?;

    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, slot) in slots {
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
    safetensors::serialize_to_file(views, Some(metadata), &path).map_err(st_err)
}

/// Saves `model` as an HF `GPT2LMHeadModel` checkpoint directory: `config.json` and
/// `model.safetensors` (`transformer.*` keys; `lm_head.weight` is omitted, it is tied to `wte`).
pub fn save_gpt(model: &Gpt, config: &GptConfig, dir: &Path) -> Result<(), ModelError> {
    config.validate()?;
    let mut model = model.clone();
    let slots = gpt_slots(&mut model)
        .into_iter()
        .map(|(n, s)| (format!("transformer.{n}"), s))
        .collect();
    save_checkpoint(config, "GPT2LMHeadModel", slots, dir)
}

/// Saves `model` as an HF `BertForPreTraining` checkpoint directory (`bert.*` + `cls.*`;
/// the decoder is tied to the word embeddings and omitted).
pub fn save_bert(
    model: &BertForPreTraining,
    config: &BertConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    config.validate()?;
    let mut model = model.clone();
    save_checkpoint(config, "BertForPreTraining", bert_slots(&mut model), dir)
}

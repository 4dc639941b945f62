//! HF checkpoints of sequence classifiers ([`SequenceClassifier`]).
//!
//! | architecture | body keys | head keys |
//! |---|---|---|
//! | `BertForSequenceClassification` | `bert.*` (as `BertModel`, pooler included) | `classifier.weight` `[C, D]`, `classifier.bias` `[C]` |
//! | `GPT2ForSequenceClassification` | `transformer.*` (as `GPT2Model`) | `score.weight` `[C, D]` (no bias) |
//!
//! `config.json` is the body's config plus `architectures`, `id2label` (`{"0": "neg", …}`),
//! `label2id` and `problem_type = "single_label_classification"`; GPT-2 also needs
//! `pad_token_id` (transformers finds the last real token from it). Mean pooling, which no HF
//! architecture has, is recorded as `"refinery_pooling": "mean"` (transformers ignores the key
//! and would pool with the BERT pooler instead).
//!
//! [`load_backbone`] reads the body of any BERT or GPT-2 checkpoint we can load (ours, HF's
//! `BertModel`/`BertForPreTraining`/`GPT2LMHeadModel` saves, all-MiniLM-L6-v2) to start
//! fine-tuning from it.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use serde_json::Value;

use crate::bert::BertConfig;
use crate::classify::{Backbone, BackboneConfig, MultiTaskClassifier, Pooling, SequenceClassifier};
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::gpt::GptConfig;
use crate::hf::{
    gpt_body, load_into, load_weights, save_json, HfParams, Vb, CONFIG_FILE, WEIGHTS_FILE,
};
use crate::BertModel;

/// A classifier's `config.json`: its body, its labels (in id order) and its pooling.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    pub backbone: BackboneConfig,
    /// `id2label`: label `i` is `labels[i]`.
    pub labels: Vec<String>,
    pub pooling: Pooling,
}

impl ClassifierConfig {
    /// The HF architecture name.
    pub fn architecture(&self) -> &'static str {
        match self.backbone {
            BackboneConfig::Bert(_) => "BertForSequenceClassification",
            BackboneConfig::Gpt(_) => "GPT2ForSequenceClassification",
        }
    }

    /// The default pooling of a body (HF's).
    pub fn default_pooling(backbone: &BackboneConfig) -> Pooling {
        match backbone {
            BackboneConfig::Bert(_) => Pooling::Pooler,
            BackboneConfig::Gpt(_) => Pooling::Last,
        }
    }

    fn to_json(&self) -> Result<Value, ModelError> {
        let json_err = |e: serde_json::Error| ModelError::InvalidConfig(e.to_string());
        let mut v = match &self.backbone {
            BackboneConfig::Bert(c) => serde_json::to_value(c).map_err(json_err)?,
            BackboneConfig::Gpt(c) => serde_json::to_value(c).map_err(json_err)?,
        };
        let id2label: BTreeMap<String, String> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone()))
            .collect();
        let label2id: BTreeMap<String, usize> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        if let Some(o) = v.as_object_mut() {
            o.insert("id2label".into(), serde_json::json!(id2label));
            o.insert("label2id".into(), serde_json::json!(label2id));
            o.insert(
                "problem_type".into(),
                Value::String("single_label_classification".into()),
            );
            if self.pooling == Pooling::Mean {
                o.insert("refinery_pooling".into(), Value::String("mean".into()));
            }
        }
        Ok(v)
    }
}

fn read_json(dir: &Path) -> Result<Value, ModelError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ModelError::Json { path, source })
}

/// The body config of a BERT or GPT-2 `config.json` (by `model_type`).
pub fn read_backbone_config(dir: &Path) -> Result<BackboneConfig, ModelError> {
    backbone_from_json(dir, &read_json(dir)?)
}

fn backbone_from_json(dir: &Path, v: &Value) -> Result<BackboneConfig, ModelError> {
    let path = dir.join(CONFIG_FILE);
    let model_type = v.get("model_type").and_then(Value::as_str).unwrap_or("");
    let config = match model_type {
        "bert" => BackboneConfig::Bert(
            serde_json::from_value::<BertConfig>(v.clone())
                .map_err(|source| ModelError::Json { path, source })?,
        ),
        "gpt2" => BackboneConfig::Gpt(
            serde_json::from_value::<GptConfig>(v.clone())
                .map_err(|source| ModelError::Json { path, source })?,
        ),
        other => {
            return Err(ModelError::InvalidConfig(format!(
                "{}: model_type {other:?}: classifiers need a \"bert\" or \"gpt2\" body",
                path.display()
            )))
        }
    };
    config.validate()?;
    Ok(config)
}

/// Reads a classifier's `config.json`. Errors (naming the file) when it has no label map: a
/// checkpoint without a classification head.
pub fn read_classifier_config(dir: &Path) -> Result<ClassifierConfig, ModelError> {
    let v = read_json(dir)?;
    let path = dir.join(CONFIG_FILE);
    let backbone = backbone_from_json(dir, &v)?;
    let arch = v
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !arch.ends_with("ForSequenceClassification") {
        return Err(ModelError::InvalidConfig(format!(
            "{}: architectures is {arch:?}, not a sequence classifier (this checkpoint has no \
             classification head: fine-tune it first)",
            path.display()
        )));
    }
    let Some(map) = v.get("id2label").and_then(Value::as_object) else {
        return Err(ModelError::InvalidConfig(format!(
            "{}: no id2label: the classifier's labels are unknown",
            path.display()
        )));
    };
    let mut labels = vec![None; map.len()];
    for (k, name) in map {
        let i: usize = k.parse().map_err(|_| {
            ModelError::InvalidConfig(format!(
                "{}: id2label key {k:?} is not an id",
                path.display()
            ))
        })?;
        let slot = labels.get_mut(i).ok_or_else(|| {
            ModelError::InvalidConfig(format!(
                "{}: id2label ids are not 0..{}",
                path.display(),
                map.len()
            ))
        })?;
        *slot = name.as_str().map(str::to_owned);
    }
    let labels = labels
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            ModelError::InvalidConfig(format!(
                "{}: id2label values must be strings",
                path.display()
            ))
        })?;
    let pooling = match v.get("refinery_pooling").and_then(Value::as_str) {
        Some("mean") => Pooling::Mean,
        _ => ClassifierConfig::default_pooling(&backbone),
    };
    Ok(ClassifierConfig {
        backbone,
        labels,
        pooling,
    })
}

/// The body's keys: `bert.*` (as `BertModel`) or `transformer.*` (as `GPT2Model`).
impl HfParams for Backbone {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        match self {
            Backbone::Bert(b) => b.params(&mut vb.pp("bert")),
            Backbone::Gpt(g) => gpt_body(g, &mut vb.pp("transformer")),
        }
    }
}

/// The body, then the head: `classifier.*` (BERT) or `score.weight` (GPT-2, no bias).
impl HfParams for SequenceClassifier {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        let SequenceClassifier { backbone, head, .. } = self;
        let name = match backbone {
            Backbone::Bert(_) => "classifier",
            Backbone::Gpt(_) => "score",
        };
        backbone.params(vb);
        vb.linear(name, head);
    }
}

/// The body, then one head per task: `heads.{i}.weight` `[C_i, D]` (+ `.bias`).
impl HfParams for MultiTaskClassifier {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        let MultiTaskClassifier {
            backbone, heads, ..
        } = self;
        backbone.params(vb);
        for (i, h) in heads.iter_mut().enumerate() {
            vb.linear(&format!("heads.{i}"), h);
        }
    }
}

/// A GPT-2 body loaded from any GPT-2 checkpoint: the heads of `GPT2LMHeadModel`
/// (`lm_head.weight`) and `GPT2ForSequenceClassification` (`score.weight`) are not loaded.
#[derive(Clone)]
struct GptBody(Gpt);

impl HfParams for GptBody {
    fn params<'m>(&'m mut self, vb: &mut Vb<'_, 'm>) {
        gpt_body(&mut self.0, &mut vb.pp("transformer"));
        vb.buffer("lm_head.weight");
        vb.buffer("score.weight");
    }
}

/// Loads a model whose body is `backbone` from `dir`, checked against the body's sizes.
fn load_with<M: HfParams>(
    backbone: &BackboneConfig,
    dir: &Path,
    device: &Device,
    build: impl FnOnce() -> Result<M, ModelError>,
) -> Result<M, ModelError> {
    let path = dir.join(WEIGHTS_FILE);
    let config_file = dir.join(CONFIG_FILE);
    match backbone {
        BackboneConfig::Bert(c) => load_into(c, Some(&config_file), "bert", &path, device, build),
        BackboneConfig::Gpt(c) => {
            load_into(c, Some(&config_file), "transformer", &path, device, build)
        }
    }
}

/// Saves a classifier as an HF directory (`config.json` + `model.safetensors`).
pub fn save_classifier(
    model: &SequenceClassifier,
    config: &ClassifierConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    config.backbone.validate()?;
    if config.labels.len() != model.num_labels() {
        return Err(ModelError::InvalidConfig(format!(
            "{} labels for a head with {} outputs",
            config.labels.len(),
            model.num_labels()
        )));
    }
    save_json(model, config.to_json()?, config.architecture(), dir)
}

/// Loads a classifier saved by [`save_classifier`] or by transformers.
pub fn load_classifier(
    dir: &Path,
    device: &Device,
) -> Result<(ClassifierConfig, SequenceClassifier), ModelError> {
    let config = read_classifier_config(dir)?;
    let model = load_with(&config.backbone, dir, device, || {
        SequenceClassifier::init(
            &config.backbone,
            config.labels.len(),
            config.pooling,
            device,
        )
    })?;
    Ok((config, model))
}

/// The body of any BERT or GPT-2 checkpoint directory, to fine-tune from: a `BertModel`
/// (bare keys: all-MiniLM-L6-v2), `BertForPreTraining` or `BertForSequenceClassification`
/// (`bert.*`), `GPT2Model`, `GPT2LMHeadModel` or `GPT2ForSequenceClassification`
/// (`transformer.*`). Heads of the checkpoint are not loaded.
pub fn load_backbone(
    dir: &Path,
    device: &Device,
) -> Result<(BackboneConfig, Backbone), ModelError> {
    let config = read_backbone_config(dir)?;
    let body = load_backbone_as(dir, &config, device)?;
    Ok((config, body))
}

/// [`load_backbone`] into a body built from `config` (the checkpoint's sizes with other
/// settings, e.g. dropout, changed); every tensor's shape is checked against `config`.
pub fn load_backbone_as(
    dir: &Path,
    config: &BackboneConfig,
    device: &Device,
) -> Result<Backbone, ModelError> {
    let path = dir.join(WEIGHTS_FILE);
    match config {
        // `BertModel`'s map loads bare keys, or the `bert.*` keys of a checkpoint with heads.
        BackboneConfig::Bert(c) => Ok(Backbone::Bert(load_weights::<BertModel>(c, &path, device)?)),
        BackboneConfig::Gpt(c) => {
            c.validate()?;
            let body = load_into(c, None, "transformer", &path, device, || {
                Ok(GptBody(c.init(device)?))
            })?;
            Ok(Backbone::Gpt(body.0))
        }
    }
}

/// A multi-task model's `config.json`: the body, each task's name and labels, the pooling.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiTaskConfig {
    pub backbone: BackboneConfig,
    /// `(task name, labels in id order)`, in head order.
    pub tasks: Vec<(String, Vec<String>)>,
    pub pooling: Pooling,
}

/// Architecture name of a multi-task checkpoint (not an HF class: export a task with
/// [`MultiTaskClassifier::task_model`] + [`save_classifier`] for transformers).
pub const MULTITASK_ARCHITECTURE: &str = "RefineryMultiTaskClassifier";

/// Saves a multi-task model: body keys as the HF body (`bert.*` / `transformer.*`), heads as
/// `heads.{i}.weight` `[C_i, D]` (+ `.bias`), tasks in `config.json`'s `refinery_tasks`.
pub fn save_multitask(
    model: &MultiTaskClassifier,
    config: &MultiTaskConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    config.backbone.validate()?;
    if config.tasks.len() != model.heads.len() {
        return Err(ModelError::InvalidConfig(format!(
            "{} tasks for {} heads",
            config.tasks.len(),
            model.heads.len()
        )));
    }
    let mut json = match &config.backbone {
        BackboneConfig::Bert(c) => serde_json::to_value(c),
        BackboneConfig::Gpt(c) => serde_json::to_value(c),
    }
    .map_err(|e| ModelError::InvalidConfig(e.to_string()))?;
    let tasks: Vec<Value> = config
        .tasks
        .iter()
        .map(|(name, labels)| serde_json::json!({ "name": name, "labels": labels }))
        .collect();
    if let Some(o) = json.as_object_mut() {
        o.insert("refinery_tasks".into(), Value::Array(tasks));
        o.insert(
            "refinery_pooling".into(),
            serde_json::to_value(config.pooling)
                .map_err(|e| ModelError::InvalidConfig(e.to_string()))?,
        );
    }
    save_json(model, json, MULTITASK_ARCHITECTURE, dir)
}

/// Reads a multi-task model's `config.json`.
pub fn read_multitask_config(dir: &Path) -> Result<MultiTaskConfig, ModelError> {
    let v = read_json(dir)?;
    let path = dir.join(CONFIG_FILE);
    let backbone = backbone_from_json(dir, &v)?;
    let bad = |m: &str| ModelError::InvalidConfig(format!("{}: {m}", path.display()));
    let tasks = v
        .get("refinery_tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no refinery_tasks: not a multi-task checkpoint"))?
        .iter()
        .map(|t| {
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("task without a name"))?;
            let labels = t
                .get("labels")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("task without labels"))?
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("labels must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name.to_string(), labels))
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    let pooling = v
        .get("refinery_pooling")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_else(|| ClassifierConfig::default_pooling(&backbone));
    Ok(MultiTaskConfig {
        backbone,
        tasks,
        pooling,
    })
}

/// Loads a model saved by [`save_multitask`].
pub fn load_multitask(
    dir: &Path,
    device: &Device,
) -> Result<(MultiTaskConfig, MultiTaskClassifier), ModelError> {
    let config = read_multitask_config(dir)?;
    let sizes: Vec<usize> = config.tasks.iter().map(|(_, l)| l.len()).collect();
    let model = load_with(&config.backbone, dir, device, || {
        let backbone = match &config.backbone {
            BackboneConfig::Bert(c) => Backbone::Bert(c.init_model(device)?),
            BackboneConfig::Gpt(c) => Backbone::Gpt(c.init(device)?),
        };
        MultiTaskClassifier::new(backbone, &config.backbone, &sizes, config.pooling, device)
    })?;
    Ok((config, model))
}

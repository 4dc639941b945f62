//! `classify`: sequence classification fine-tuning of a BERT or GPT-2 body (HF
//! `BertForSequenceClassification` / `GPT2ForSequenceClassification`; mean pooling for
//! sentence-embedding checkpoints).
//!
//! - Spec: the body config, the labels (id order), pooling, the initial checkpoint and the
//!   tokenizer, max length, data fields, class weights, freezing and layer-wise LR decay.
//! - Runtime: owns the tokenizer (from the checkpoint being resumed when it holds one, else
//!   the spec's).
//! - Source: labelled files ([`crate::data::labelled`]): `data.train`, and `data.dev` or a
//!   seeded stratified `data.validation_fraction` of the training file; `data.few_shot = k`
//!   keeps k seeded examples per label of the training file.
//! - Loss: (class-weighted) cross-entropy; metrics: accuracy, macro-F1, MCC, per-class
//!   precision/recall/F1/support and the confusion matrix ([`Task::details`]).
//! - Checkpoints: HF directories (`config.json` with `id2label`/`label2id`,
//!   `model.safetensors`, `tokenizer.json`) plus `task.json` (this spec), which `evaluate` and
//!   `classify` read for the field names and the max length.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use refinery_model::hf_classify::{
    load_backbone_as, load_classifier, read_backbone_config, read_classifier_config,
    save_classifier, ClassifierConfig,
};
use refinery_model::{BackboneConfig, OutputOptions, Pooling, SequenceClassifier};
use refinery_tokenize::Tokenizer;
use serde::{Deserialize, Serialize};

use super::{int_tensor, int_values, Loss, Outputs, Task, TaskSpec};
use crate::data::labelled::{
    read_labelled, stratified_split, ClassBatch, ClassSource, Encoded, Fields, LabelSet,
    LabelledFile, RowStyle, TextEncoder,
};
use crate::data::{BatchSource, DataConfig, DataSplit};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::classify::{add_confusion, classification_loss, Confusion};
use crate::rng::{splitmix64, Rng};

/// File holding a task spec inside a saved model directory.
pub const TASK_FILE: &str = "task.json";
/// The tokenizer file inside checkpoints.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

fn default_max_len() -> usize {
    128
}

/// Sequence classification settings (saved in `trainer_state.json` and `task.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifySpec {
    /// The body's HF config.
    pub model: BackboneConfig,
    /// Label names in id order (`id2label`).
    pub labels: Vec<String>,
    pub pooling: Pooling,
    /// Checkpoint the body (and, if it is a classifier with the same labels, the head) starts
    /// from; `None`: random initialisation.
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// The tokenizer (`tokenizer.json`) used to encode the text.
    pub tokenizer: PathBuf,
    /// Longest input in tokens, special tokens included.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Which columns hold the text, pair and label.
    #[serde(default)]
    pub fields: Fields,
    /// Cross-entropy class weights (`None`: unweighted).
    #[serde(default)]
    pub class_weights: Option<Vec<f32>>,
    /// Freeze the embeddings (word, position, token type).
    #[serde(default)]
    pub freeze_embeddings: bool,
    /// Freeze the lowest N layers.
    #[serde(default)]
    pub freeze_layers: usize,
    /// Layer-wise learning-rate decay: layer `l` of `L` trains at `lr · decay^(L − l)`, the
    /// embeddings at `lr · decay^(L + 1)`, the head at `lr` (`None`: off).
    #[serde(default)]
    pub layer_lr_decay: Option<f64>,
}

impl ClassifySpec {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.model.check_pooling(self.pooling)?;
        let bad = |m: String| TrainError::InvalidConfig(m);
        if self.labels.len() < 2 {
            return Err(bad(format!(
                "classify: {} label(s); a classifier needs at least two",
                self.labels.len()
            )));
        }
        if self.max_len < 4 || self.max_len > self.model.max_positions() {
            return Err(bad(format!(
                "classify: max_len {} must be in 4..={} (the model's positions)",
                self.max_len,
                self.model.max_positions()
            )));
        }
        if let Some(w) = &self.class_weights {
            if w.len() != self.labels.len() || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(bad(format!(
                    "classify: class_weights must be {} non-negative numbers, one per label",
                    self.labels.len()
                )));
            }
        }
        if self.freeze_layers > self.model.num_layers() {
            return Err(bad(format!(
                "classify: freeze_layers {} exceeds the model's {} layers",
                self.freeze_layers,
                self.model.num_layers()
            )));
        }
        if let Some(d) = self.layer_lr_decay {
            if !(d > 0.0 && d <= 1.0) {
                return Err(bad(format!(
                    "classify: layer_lr_decay {d} must be in (0, 1]"
                )));
            }
        }
        Ok(())
    }

    /// The spec of a saved classifier directory: its `task.json` when present (labels and
    /// body from `config.json`), else defaults (fields detected, max length 128 capped by the
    /// model).
    pub fn from_checkpoint(dir: &Path) -> Result<Self, TrainError> {
        let config = read_classifier_config(dir)?;
        let path = dir.join(TASK_FILE);
        let mut spec = if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })?;
            serde_json::from_str::<ClassifySpec>(&text)
                .map_err(|source| TrainError::Json { path, source })?
        } else {
            ClassifySpec {
                model: config.backbone.clone(),
                labels: config.labels.clone(),
                pooling: config.pooling,
                init: None,
                tokenizer: dir.join(TOKENIZER_FILE),
                max_len: default_max_len().min(config.backbone.max_positions()),
                fields: Fields::default(),
                class_weights: None,
                freeze_embeddings: false,
                freeze_layers: 0,
                layer_lr_decay: None,
            }
        };
        spec.model = config.backbone;
        spec.labels = config.labels;
        spec.pooling = config.pooling;
        spec.tokenizer = dir.join(TOKENIZER_FILE);
        spec.init = None;
        Ok(spec)
    }

    /// A spec to fine-tune `init` (any BERT/GPT-2 checkpoint, or a classifier) on `labels`.
    /// The tokenizer is `init`'s `tokenizer.json` unless given.
    pub fn for_checkpoint(
        init: &Path,
        labels: Vec<String>,
        tokenizer: Option<&Path>,
    ) -> Result<Self, TrainError> {
        let tokenizer = tokenizer
            .map(Path::to_path_buf)
            .unwrap_or_else(|| init.join(TOKENIZER_FILE));
        let model = body_config(init, &tokenizer)?;
        let pooling = ClassifierConfig::default_pooling(&model);
        let max_len = default_max_len().min(model.max_positions());
        Ok(ClassifySpec {
            model,
            labels,
            pooling,
            init: Some(init.to_path_buf()),
            tokenizer,
            max_len,
            fields: Fields::default(),
            class_weights: None,
            freeze_embeddings: false,
            freeze_layers: 0,
            layer_lr_decay: None,
        })
    }

    pub fn classifier_config(&self) -> ClassifierConfig {
        ClassifierConfig {
            backbone: self.model.clone(),
            labels: self.labels.clone(),
            pooling: self.pooling,
        }
    }
}

impl TaskSpec for ClassifySpec {
    const KIND: &'static str = "classify";
    type Task = ClassifyTask;

    fn build(&self, checkpoint: Option<&Path>) -> Result<ClassifyTask, TrainError> {
        self.validate()?;
        let saved = checkpoint.map(|d| d.join(TOKENIZER_FILE));
        let path = match saved {
            Some(p) if p.is_file() => p,
            _ => self.tokenizer.clone(),
        };
        let encoder = text_encoder(&self.model, &path, self.max_len)?;
        Ok(ClassifyTask {
            spec: self.clone(),
            encoder,
            tokenizer_json: Arc::new(read_tokenizer_bytes(&path)?),
        })
    }
}

/// The body config of `init` for a classifier: a GPT-2 gets `pad_token_id` (transformers finds
/// each row's last real token by it) set to the tokenizer's end-of-text, which pads the rows.
pub fn body_config(init: &Path, tokenizer: &Path) -> Result<BackboneConfig, TrainError> {
    let mut model = read_backbone_config(init)?;
    if let BackboneConfig::Gpt(c) = &mut model {
        if c.pad_token_id.is_none() {
            c.pad_token_id = Tokenizer::load(tokenizer)?.default_eos().map(|(_, id)| id);
        }
    }
    Ok(model)
}

/// The bytes of a tokenizer file (saved with every model, so a checkpoint is complete on its
/// own even when the file it came from is gone).
pub fn read_tokenizer_bytes(path: &Path) -> Result<Vec<u8>, TrainError> {
    std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a fine-tuned model's spec as `dir/task.json` (read back by [`super::open`]).
pub fn write_task_file<S: Serialize>(dir: &Path, spec: &S) -> Result<(), TrainError> {
    let path = dir.join(TASK_FILE);
    let text = serde_json::to_string_pretty(spec).map_err(|source| TrainError::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
}

/// Writes `bytes` as `dir/tokenizer.json`.
pub fn write_tokenizer(dir: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let path = dir.join(TOKENIZER_FILE);
    std::fs::write(&path, bytes).map_err(|source| TrainError::Io { path, source })
}

/// The row layout and tokenizer checks of a body: BERT needs `[CLS]`/`[SEP]`; the tokenizer's
/// ids must fit the embedding matrix.
pub fn text_encoder(
    model: &BackboneConfig,
    tokenizer: &Path,
    max_len: usize,
) -> Result<TextEncoder, TrainError> {
    let tok = Tokenizer::load(tokenizer)?;
    if tok.vocab_size() > model.vocab_size() {
        return Err(TrainError::InvalidConfig(format!(
            "{}: the tokenizer has {} ids but the model's embedding matrix has {} rows \
             (vocab_size): this tokenizer does not belong to this model",
            tokenizer.display(),
            tok.vocab_size(),
            model.vocab_size()
        )));
    }
    let style = match model {
        BackboneConfig::Bert(_) => {
            let (Some(cls), Some(sep)) = (tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]"))
            else {
                return Err(TrainError::InvalidConfig(format!(
                    "{}: a BERT tokenizer needs [CLS] and [SEP] tokens",
                    tokenizer.display()
                )));
            };
            RowStyle::Bert { cls, sep }
        }
        BackboneConfig::Gpt(_) => RowStyle::Gpt {
            sep: tok.default_eos().map(|(_, id)| id),
        },
    };
    Ok(TextEncoder::new(Arc::new(tok), style, max_len))
}

/// The padding id of a body (BERT `pad_token_id`, GPT-2 its eos/separator, else 0).
pub fn pad_id(model: &BackboneConfig, encoder: &TextEncoder) -> u32 {
    match (model, encoder.style) {
        (BackboneConfig::Bert(c), _) => c.pad_token_id.unwrap_or(0),
        (BackboneConfig::Gpt(c), RowStyle::Gpt { sep }) => c.pad_token_id.or(sep).unwrap_or(0),
        (BackboneConfig::Gpt(c), _) => c.pad_token_id.unwrap_or(0),
    }
}

/// Module paths of a classifier body's embeddings and the prefix of its layers
/// (`backbone.Bert.layer` + `.{i}`), for freezing and layer-wise learning rates.
pub fn body_paths(model: &BackboneConfig) -> (Vec<String>, String) {
    let (variant, emb, layer): (&str, &[&str], &str) = match model {
        BackboneConfig::Bert(_) => (
            "Bert",
            &[
                "word_embeddings",
                "position_embeddings",
                "token_type_embeddings",
                "embeddings_layer_norm",
            ],
            "layer",
        ),
        BackboneConfig::Gpt(_) => ("Gpt", &["wte", "wpe"], "h"),
    };
    (
        emb.iter()
            .map(|e| format!("backbone.{variant}.{e}"))
            .collect(),
        format!("backbone.{variant}.{layer}"),
    )
}

/// The runtime of [`ClassifySpec`]: the spec and its tokenizer.
#[derive(Debug, Clone)]
pub struct ClassifyTask {
    pub spec: ClassifySpec,
    pub encoder: TextEncoder,
    /// The tokenizer file's bytes, written into every saved model as `tokenizer.json`.
    tokenizer_json: Arc<Vec<u8>>,
}

/// Reads a split of labelled data for a classifier with `labels`: (file, label ids of its
/// examples, the example indices of the split).
pub fn labelled_split(
    data: &DataConfig,
    fields: &Fields,
    labels: &LabelSet,
    split: DataSplit,
) -> Result<(LabelledFile, Vec<usize>, Vec<usize>), TrainError> {
    let train_path = || {
        data.train.as_ref().ok_or_else(|| {
            TrainError::InvalidConfig("data.train: no training file (pass --train FILE)".into())
        })
    };
    let (path, from_train) = match (split, &data.dev) {
        (DataSplit::Validation, Some(dev)) => (dev, false),
        _ => (train_path()?, true),
    };
    let file = read_labelled(path, fields)?;
    let ids = labels.ids(&file)?;
    let mut chosen: Vec<usize> = (0..ids.len()).collect();
    if from_train {
        if data.dev.is_none() && data.validation_fraction > 0.0 {
            let (train, dev) = stratified_split(&ids, data.validation_fraction, data.split_seed);
            chosen = if split == DataSplit::Train {
                train
            } else {
                dev
            };
        } else if split == DataSplit::Validation {
            return Err(TrainError::InvalidConfig(
                "no validation data: set data.dev (--dev FILE) or data.validation_fraction".into(),
            ));
        }
        if split == DataSplit::Train {
            if let Some(k) = data.few_shot {
                chosen = few_shot(&chosen, &ids, k, data.split_seed);
            }
        }
    }
    if chosen.is_empty() {
        return Err(TrainError::Data {
            path: path.clone(),
            message: "no examples in this split".into(),
        });
    }
    Ok((file, ids, chosen))
}

/// `k` seeded examples per label among `candidates` (all of a label when it has fewer).
pub fn few_shot(candidates: &[usize], labels: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in candidates {
        by_label.entry(labels[i]).or_default().push(i);
    }
    let mut out = Vec::new();
    for (label, mut idx) in by_label {
        Rng::new(splitmix64(seed ^ 0xF3 ^ splitmix64(label as u64))).shuffle(&mut idx);
        out.extend(idx.into_iter().take(k));
    }
    out.sort_unstable();
    out
}

impl ClassifyTask {
    /// Encodes `split` of `data` into rows.
    pub fn encode_split(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<(Vec<Encoded>, LabelledFile), TrainError> {
        let labels = LabelSet {
            labels: self.spec.labels.clone(),
        };
        let (file, ids, chosen) = labelled_split(data, &self.spec.fields, &labels, split)?;
        let all = self.encoder.encode_file(&file, &ids)?;
        let rows = chosen.iter().map(|&i| all[i].clone()).collect();
        Ok((rows, file))
    }

    /// A source over `rows` (`seed`: training order; `None`: evaluation order).
    pub fn source(
        &self,
        rows: Vec<Encoded>,
        batch_size: usize,
        seed: Option<u64>,
    ) -> Result<ClassSource, TrainError> {
        ClassSource::new(
            Arc::new(rows),
            batch_size,
            pad_id(&self.spec.model, &self.encoder),
            0,
            seed,
        )
    }
}

impl ClassifyTask {
    /// Class probabilities of `texts` (`(text, pair)`), in input order, `batch_size` rows at a
    /// time (sorted by length inside, so batches pad little).
    pub fn predict(
        &self,
        model: &SequenceClassifier,
        texts: &[(String, Option<String>)],
        batch_size: usize,
        device: &Device,
    ) -> Result<Vec<Vec<f32>>, TrainError> {
        let rows = texts
            .iter()
            .map(|(t, p)| self.encoder.encode(t, p.as_deref(), -100))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].ids.len());
        let pad = pad_id(&self.spec.model, &self.encoder);
        let mut out = vec![Vec::new(); rows.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch_rows: Vec<&Encoded> = chunk.iter().map(|&i| &rows[i]).collect();
            let b = ClassBatch::pad(&batch_rows, pad, 0);
            let (ids, types, mask) = b.tensors(device); // [B, T] each
            let logits = model
                .forward(ids, Some(types), mask, OutputOptions::default())
                .logits; // [B, C]
            let [_, c] = logits.dims();
            let probs: Vec<f32> = burn::tensor::activation::softmax(logits, 1)
                .into_data()
                .iter::<f32>()
                .collect();
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = probs[k * c..(k + 1) * c].to_vec();
            }
        }
        Ok(out)
    }
}

/// The (class-weighted) cross-entropy of classifier outputs (`logits [B, 1, C]`) for
/// `labels [B]`, and, when `metrics`, the confusion-matrix sums. A label outside `0..C` is an
/// error, not an index out of bounds.
pub(crate) fn classifier_loss(
    logits: &burn::tensor::Tensor<3>,
    labels: &[i64],
    class_weights: Option<&[f32]>,
    device: &Device,
    metrics: bool,
) -> Result<Loss, TrainError> {
    let [n, _, c] = logits.dims();
    let logits = logits.clone().reshape([n, c]); // [B, C]
    if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= c) {
        return Err(TrainError::InvalidConfig(format!(
            "label id {bad} outside the model's {c} labels"
        )));
    }
    let y = int_tensor(labels.to_vec(), [n], device); // [B]
    let loss = classification_loss(logits.clone(), y, class_weights); // [1]
    let metrics = metrics.then(|| classification_metrics(&logits, labels));
    Ok(Loss { loss, metrics })
}

/// Adds the classification metric sums of `logits [B, C]` for `labels`.
pub(crate) fn classification_metrics(
    logits: &burn::tensor::Tensor<2>,
    labels: &[i64],
) -> MetricSums {
    let pred = int_values(logits.clone().argmax(1)); // [B, 1]
    let mut m = MetricSums::default();
    add_confusion(&mut m, labels, &pred);
    m
}

/// The classification summary of `sums` for `labels`: every confusion metric plus the loss.
pub(crate) fn classification_summary(
    sums: &MetricSums,
    labels: &[String],
) -> BTreeMap<String, f64> {
    let mut m = Confusion::from_sums(sums, labels).metrics();
    if let Some(l) = sums.mean("loss") {
        m.insert("loss".into(), l);
    }
    m
}

impl Task for ClassifyTask {
    type Spec = ClassifySpec;
    type Model = SequenceClassifier;
    type Batch = ClassBatch;
    type Input = ClassBatch;

    fn spec(&self) -> &ClassifySpec {
        &self.spec
    }

    /// The body from `init` (a fresh head; a classifier checkpoint with the same labels keeps
    /// its head), or a random model when there is no `init`.
    fn init_model(&self, device: &Device) -> Result<SequenceClassifier, TrainError> {
        let s = &self.spec;
        let Some(init) = &s.init else {
            return Ok(SequenceClassifier::init(
                &s.model,
                s.labels.len(),
                s.pooling,
                device,
            )?);
        };
        if let Ok(c) = read_classifier_config(init) {
            if c.labels == s.labels && c.pooling == s.pooling {
                return Ok(load_classifier(init, device)?.1);
            }
        }
        let backbone = load_backbone_as(init, &s.model, device)?;
        Ok(SequenceClassifier::new(
            backbone,
            &s.model,
            s.labels.len(),
            s.pooling,
            device,
        )?)
    }

    fn save_model(&self, model: &SequenceClassifier, dir: &Path) -> Result<(), TrainError> {
        save_classifier(model, &self.spec.classifier_config(), dir)?;
        write_tokenizer(dir, &self.tokenizer_json)?;
        write_task_file(dir, &self.spec)
    }

    fn load_model(&self, dir: &Path, device: &Device) -> Result<SequenceClassifier, TrainError> {
        let (config, model) = load_classifier(dir, device)?;
        if config != self.spec.classifier_config() {
            return Err(TrainError::InvalidConfig(format!(
                "{}: the checkpoint's config/labels differ from the task's",
                dir.display()
            )));
        }
        Ok(model)
    }

    fn prepare(&self, batch: ClassBatch, _seed: u64) -> Result<ClassBatch, TrainError> {
        Ok(batch)
    }
    fn num_tokens(&self, batch: &ClassBatch) -> usize {
        batch.num_tokens()
    }

    fn forward(
        &self,
        model: &SequenceClassifier,
        b: &ClassBatch,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let (ids, types, mask) = b.tensors(device); // [B, T] each
        let out = model.forward(ids, Some(types), mask, opts);
        let [n, c] = out.logits.dims();
        Ok(Outputs {
            logits: out.logits.reshape([n, 1, c]), // [B, 1, C]
            aux: Vec::new(),
            hidden_states: out.hidden_states,
            attentions: out.attentions,
        })
    }

    fn loss(
        &self,
        b: &ClassBatch,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        classifier_loss(
            &out.logits,
            &b.labels,
            self.spec.class_weights.as_deref(),
            device,
            metrics,
        )
    }

    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        classification_summary(sums, &self.spec.labels)
    }

    fn details(&self, sums: &MetricSums) -> Option<serde_json::Value> {
        serde_json::to_value(Confusion::from_sums(sums, &self.spec.labels)).ok()
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<ClassBatch> + Send>, TrainError> {
        let (rows, _) = self.encode_split(data, split)?;
        let seed = (split == DataSplit::Train).then_some(data.seed);
        Ok(Box::new(self.source(rows, data.batch_size, seed)?))
    }

    fn frozen(&self) -> Vec<String> {
        let (emb, layer) = body_paths(&self.spec.model);
        let mut out = Vec::new();
        if self.spec.freeze_embeddings {
            out.extend(emb);
        }
        out.extend((0..self.spec.freeze_layers).map(|i| format!("{layer}.{i}")));
        out
    }

    fn lr_scales(&self) -> Vec<(String, f64)> {
        let Some(decay) = self.spec.layer_lr_decay else {
            return Vec::new();
        };
        let l = self.spec.model.num_layers();
        let (emb, layer) = body_paths(&self.spec.model);
        let mut out: Vec<(String, f64)> = emb
            .into_iter()
            .map(|e| (e, decay.powi(l as i32 + 1)))
            .collect();
        out.extend((0..l).map(|i| (format!("{layer}.{i}"), decay.powi((l - i) as i32))));
        out
    }
}

//! The task kinds a teacher and student can be: what the generic wrapper needs to know about
//! a kind beyond [`TaskSpec`]/[`Task`] (its shape, how to shrink it, its inputs' masks and
//! row identities). Implemented for `classify` (BERT/GPT-2 sequence classifiers) and
//! `gpt-clm` (GPT-2 language models).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use refinery_model::{Backbone, BackboneConfig};
use refinery_train::config::{ClassifySection, GptClmSection, ModelSection, TaskSection};
use refinery_train::data::labelled::{ClassBatch, ClassSource, Encoded};
use refinery_train::data::{BatchSource, DataConfig, LmBatch};
use refinery_train::tasks::classify::pad_id;
use refinery_train::tasks::{AnyTaskSpec, ClassifySpec, ClassifyTask, GptClmSpec, GptClmTask};
use refinery_train::{Task, TaskSpec, TrainError};
use xxhash_rust::xxh3::Xxh3;

/// The shape facts of a model that distillation checks and maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    /// `bert` or `gpt2`.
    pub family: &'static str,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub vocab: usize,
    /// The sparse attention pattern as JSON (`None`: dense).
    pub sparse: Option<String>,
    /// The classes the logits score (classifiers: the labels; LMs: `None`, the vocabulary).
    pub labels: Option<Vec<String>>,
    /// The tokenizer file, where the spec names one.
    pub tokenizer: Option<PathBuf>,
}

/// How a student differs from its teacher (everything else is copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StudentShape {
    pub layers: usize,
    pub hidden_size: Option<usize>,
    pub num_attention_heads: Option<usize>,
    pub intermediate_size: Option<usize>,
}

/// A task kind distillation supports (see the module docs).
pub trait Distillable: TaskSpec {
    /// This kind's spec inside an [`AnyTaskSpec`] (what `tasks::open` found in a directory).
    fn from_any(spec: AnyTaskSpec) -> Option<Self>;
    /// Its shape.
    fn arch(&self) -> Arch;
    /// The student spec: this (teacher) spec reshaped, with no initial checkpoint.
    fn reshaped(&self, shape: &StudentShape) -> Result<Self, String>;
    /// Keeps blocks `layers` (0-based, in this order) of `model`, dropping the others.
    fn keep_layers(model: &mut <Self::Task as Task>::Model, layers: &[usize])
        -> Result<(), String>;

    /// `[B, T]` 1/0 for real/padding tokens (`None`: all real).
    fn token_mask(input: &<Self::Task as Task>::Input) -> Option<Vec<f32>>;
    /// `[B, P]` 1/0 for the logit positions a soft loss covers (`None`: all).
    fn prediction_mask(input: &<Self::Task as Task>::Input) -> Option<Vec<f32>>;
    /// Whether the input carries gold labels (the hard loss needs them).
    fn is_labelled(input: &<Self::Task as Task>::Input) -> bool;
    /// A content hash per row (what the teacher cache is keyed by: a row's token ids decide
    /// the teacher's outputs).
    fn row_keys(input: &<Self::Task as Task>::Input) -> Vec<u64>;

    /// Sets every dropout probability.
    fn set_dropout(&mut self, p: f64);
    /// The `[task]` and `[model]` sections under which `refinery_train::config` checks a run
    /// of this student starting from the checkpoint `init` (written by its task).
    fn train_sections(&self, init: &Path, max_len: Option<usize>) -> (TaskSection, ModelSection);
    /// The student spec of a checked run ([`Self::train_sections`]'s task, checked).
    fn training_spec(checked: AnyTaskSpec, init: &Path) -> Result<Self, TrainError>;
    /// The metric `best/` is chosen by when the config names none.
    fn default_best_metric() -> &'static str;
    /// `(positions, classes)` of the logits a teacher cache stores per row.
    fn cache_shape(&self, data: &DataConfig) -> (usize, usize);

    /// A training source over unlabelled transfer text (one example per line of `path`).
    fn transfer_source(
        task: &Self::Task,
        path: &Path,
        data: &DataConfig,
    ) -> Result<Box<dyn BatchSource<<Self::Task as Task>::Batch> + Send>, TrainError>;
}

fn sparse_json<T: serde::Serialize>(s: &Option<T>) -> Option<String> {
    s.as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
}

fn mask_f32(mask: &[i64]) -> Vec<f32> {
    mask.iter()
        .map(|&m| if m != 0 { 1.0 } else { 0.0 })
        .collect()
}

fn hash_row(ids: &[i64], types: Option<&[i64]>) -> u64 {
    let mut h = Xxh3::new();
    for &id in ids {
        h.update(&id.to_le_bytes());
    }
    h.update(&[0xFF]);
    for &t in types.unwrap_or(&[]) {
        h.update(&t.to_le_bytes());
    }
    h.digest()
}

fn pick<T: Clone>(items: &[T], layers: &[usize]) -> Result<Vec<T>, String> {
    layers
        .iter()
        .map(|&i| {
            items
                .get(i)
                .cloned()
                .ok_or_else(|| format!("layer {i} of a model with {} layers", items.len()))
        })
        .collect()
}

impl Distillable for ClassifySpec {
    fn from_any(spec: AnyTaskSpec) -> Option<Self> {
        match spec {
            AnyTaskSpec::Classify(s) => Some(s),
            _ => None,
        }
    }

    fn arch(&self) -> Arch {
        let (family, heads, sparse) = match &self.model {
            BackboneConfig::Bert(c) => (
                "bert",
                c.num_attention_heads,
                sparse_json(&c.sparse_attention),
            ),
            BackboneConfig::Gpt(c) => ("gpt2", c.n_head, sparse_json(&c.sparse_attention)),
        };
        Arch {
            family,
            layers: self.model.num_layers(),
            hidden: self.model.hidden_size(),
            heads,
            vocab: self.model.vocab_size(),
            sparse,
            labels: Some(self.labels.clone()),
            tokenizer: Some(self.tokenizer.clone()),
        }
    }

    fn reshaped(&self, shape: &StudentShape) -> Result<Self, String> {
        let mut s = self.clone();
        s.init = None;
        match &mut s.model {
            BackboneConfig::Bert(c) => {
                // A student is built at full width, whatever heads the teacher lost.
                c.pruned_heads.clear();
                c.num_hidden_layers = shape.layers;
                if let Some(h) = shape.hidden_size {
                    c.hidden_size = h;
                }
                if let Some(h) = shape.num_attention_heads {
                    c.num_attention_heads = h;
                }
                if let Some(i) = shape.intermediate_size {
                    c.intermediate_size = i;
                }
            }
            BackboneConfig::Gpt(c) => {
                c.n_layer = shape.layers;
                if let Some(h) = shape.hidden_size {
                    c.n_embd = h;
                }
                if let Some(h) = shape.num_attention_heads {
                    c.n_head = h;
                }
                if let Some(i) = shape.intermediate_size {
                    c.n_inner = Some(i);
                }
            }
        }
        s.freeze_layers = s.freeze_layers.min(shape.layers);
        s.model.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    fn keep_layers(
        model: &mut refinery_model::SequenceClassifier,
        layers: &[usize],
    ) -> Result<(), String> {
        match &mut model.backbone {
            Backbone::Bert(b) => b.layer = pick(&b.layer, layers)?,
            Backbone::Gpt(g) => g.h = pick(&g.h, layers)?,
        }
        Ok(())
    }

    fn set_dropout(&mut self, p: f64) {
        match &mut self.model {
            BackboneConfig::Bert(c) => {
                c.hidden_dropout_prob = p;
                c.attention_probs_dropout_prob = p;
            }
            BackboneConfig::Gpt(c) => *c = c.clone().with_dropout(p),
        }
    }

    fn train_sections(&self, init: &Path, max_len: Option<usize>) -> (TaskSection, ModelSection) {
        let task = ClassifySection {
            labels: Some(self.labels.clone()),
            pooling: Some(self.pooling),
            max_len: Some(max_len.unwrap_or(self.max_len)),
            layer_lr_decay: self.layer_lr_decay,
            ..ClassifySection::default()
        };
        let model = ModelSection {
            init: Some(init.to_path_buf()),
            tokenizer: Some(init.join(refinery_train::tasks::classify::TOKENIZER_FILE)),
            ..ModelSection::default()
        };
        (TaskSection::Classify(task), model)
    }

    fn training_spec(checked: AnyTaskSpec, _init: &Path) -> Result<Self, TrainError> {
        Self::from_any(checked).ok_or_else(|| {
            TrainError::InvalidConfig("the checked student is not a classifier".into())
        })
    }

    fn default_best_metric() -> &'static str {
        "accuracy"
    }

    fn cache_shape(&self, _data: &DataConfig) -> (usize, usize) {
        (1, self.labels.len())
    }

    fn token_mask(b: &ClassBatch) -> Option<Vec<f32>> {
        Some(mask_f32(&b.attention_mask))
    }

    fn prediction_mask(_b: &ClassBatch) -> Option<Vec<f32>> {
        None // one prediction per row
    }

    fn is_labelled(b: &ClassBatch) -> bool {
        b.labels.iter().all(|&l| l >= 0)
    }

    fn row_keys(b: &ClassBatch) -> Vec<u64> {
        (0..b.batch_size)
            .map(|r| {
                let span = r * b.seq_len..(r + 1) * b.seq_len;
                let n = b.attention_mask[span.clone()]
                    .iter()
                    .filter(|&&m| m != 0)
                    .count();
                let start = span.start;
                hash_row(
                    &b.input_ids[start..start + n],
                    Some(&b.token_type_ids[start..start + n]),
                )
            })
            .collect()
    }

    fn transfer_source(
        task: &ClassifyTask,
        path: &Path,
        data: &DataConfig,
    ) -> Result<Box<dyn BatchSource<ClassBatch> + Send>, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                task.encoder
                    .encode(l.trim(), None, refinery_train::objectives::IGNORE)
                    .map_err(|e| TrainError::Data {
                        path: path.to_path_buf(),
                        message: format!("line {}: {e}", i + 1),
                    })
            })
            .collect::<Result<Vec<Encoded>, _>>()?;
        if rows.is_empty() {
            return Err(TrainError::Data {
                path: path.to_path_buf(),
                message: "no transfer text (one example per non-empty line)".into(),
            });
        }
        let pad = pad_id(&task.spec.model, &task.encoder);
        Ok(Box::new(ClassSource::new(
            Arc::new(rows),
            data.batch_size,
            pad,
            0,
            Some(data.seed),
        )?))
    }
}

impl Distillable for GptClmSpec {
    fn from_any(spec: AnyTaskSpec) -> Option<Self> {
        match spec {
            AnyTaskSpec::GptClm(s) => Some(s),
            _ => None,
        }
    }

    fn arch(&self) -> Arch {
        let c = &self.model;
        Arch {
            family: "gpt2",
            layers: c.n_layer,
            hidden: c.n_embd,
            heads: c.n_head,
            vocab: c.vocab_size,
            sparse: sparse_json(&c.sparse_attention),
            labels: None,
            tokenizer: None,
        }
    }

    fn reshaped(&self, shape: &StudentShape) -> Result<Self, String> {
        let mut c = self.model.clone();
        c.n_layer = shape.layers;
        if let Some(h) = shape.hidden_size {
            c.n_embd = h;
        }
        if let Some(h) = shape.num_attention_heads {
            c.n_head = h;
        }
        if let Some(i) = shape.intermediate_size {
            c.n_inner = Some(i);
        }
        c.validate().map_err(|e| e.to_string())?;
        Ok(GptClmSpec::new(c))
    }

    fn keep_layers(model: &mut refinery_model::Gpt, layers: &[usize]) -> Result<(), String> {
        model.h = pick(&model.h, layers)?;
        Ok(())
    }

    fn set_dropout(&mut self, p: f64) {
        self.model = self.model.clone().with_dropout(p);
    }

    /// GPT-2 runs are checked as `gpt-clm` with the student's context and vocabulary (the
    /// architecture itself comes from `init`).
    fn train_sections(&self, _init: &Path, _max_len: Option<usize>) -> (TaskSection, ModelSection) {
        let mut hf = toml::Table::new();
        hf.insert(
            "n_positions".into(),
            toml::Value::Integer(self.model.n_positions as i64),
        );
        let model = ModelSection {
            vocab_size: Some(self.model.vocab_size),
            hf,
            ..ModelSection::default()
        };
        (TaskSection::GptClm(GptClmSection::default()), model)
    }

    fn training_spec(_checked: AnyTaskSpec, init: &Path) -> Result<Self, TrainError> {
        let opened = refinery_train::tasks::open(init)?;
        Self::from_any(opened.spec).ok_or_else(|| {
            TrainError::InvalidConfig(format!("{}: not a GPT-2 checkpoint", init.display()))
        })
    }

    fn default_best_metric() -> &'static str {
        "loss"
    }

    fn cache_shape(&self, data: &DataConfig) -> (usize, usize) {
        (data.seq_len, self.model.vocab_size)
    }

    fn token_mask(b: &LmBatch) -> Option<Vec<f32>> {
        b.attention_mask.as_deref().map(mask_f32)
    }

    fn prediction_mask(b: &LmBatch) -> Option<Vec<f32>> {
        // Every real token's position predicts the next token.
        b.attention_mask.as_deref().map(mask_f32)
    }

    fn is_labelled(_b: &LmBatch) -> bool {
        true // the next token is the label
    }

    fn row_keys(b: &LmBatch) -> Vec<u64> {
        (0..b.batch_size)
            .map(|r| {
                let span = r * b.seq_len..(r + 1) * b.seq_len;
                let mask = b.attention_mask.as_ref().map(|m| m[span.clone()].to_vec());
                hash_row(&b.input_ids[span], mask.as_deref())
            })
            .collect()
    }

    fn transfer_source(
        _task: &GptClmTask,
        path: &Path,
        _data: &DataConfig,
    ) -> Result<Box<dyn BatchSource<LmBatch> + Send>, TrainError> {
        Err(TrainError::InvalidConfig(format!(
            "{}: transfer text is for classifier students; a language model distills on token \
             shards (data.sources)",
            path.display()
        )))
    }
}

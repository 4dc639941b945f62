//! `multitask`: one shared body, one classification head per task.
//!
//! - Each task has its own labelled files, fields and labels ([`TaskFiles`]).
//! - Training batches come from one task at a time; which task is drawn per batch by
//!   [`Sampling`]: proportional to the training-set sizes, temperature-scaled (`n_k^(1/T)`,
//!   T = 1 is proportional, T → ∞ uniform), or round-robin. The draw at batch position `p` is
//!   a pure function of `(seed, p)`, and each task's own position is the number of earlier
//!   draws of it, so a resumed run continues exactly.
//! - Evaluation goes through every task's dev set once; metrics are per task
//!   (`{task}/accuracy`, `{task}/macro_f1`, …) plus their means over tasks (`accuracy`,
//!   `macro_f1`, `mcc`), which best-model selection can use.
//! - Checkpoints: one multi-head directory ([`refinery_model::hf_classify::save_multitask`]);
//!   [`export_task`] writes any one task as a standalone HF sequence classifier.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use refinery_model::hf_classify::{
    load_backbone_as, load_multitask, save_classifier, save_multitask, ClassifierConfig,
    MultiTaskConfig,
};
use refinery_model::{BackboneConfig, MultiTaskClassifier, OutputOptions, Pooling};
use serde::{Deserialize, Serialize};

use super::classify::{pad_id, text_encoder, TASK_FILE, TOKENIZER_FILE};
use super::{Loss, Outputs, Task, TaskSpec};
use crate::config::{bad, init_paths, CheckContext, ModelSection};
use crate::data::labelled::{
    read_labelled, stratified_split, ClassBatch, ClassSource, Fields, LabelSet, TextEncoder,
};
use crate::data::{BatchSource, DataConfig, DataSplit};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::classify::Confusion;
use crate::rng::splitmix64;

/// How training batches pick their task.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Sampling {
    /// Probability proportional to the task's training examples.
    #[default]
    Proportional,
    /// Probability proportional to `n_k^(1/temperature)`.
    Temperature { temperature: f64 },
    /// Tasks in turn.
    RoundRobin,
}

/// One task's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFiles {
    /// Name used in metrics and for export (`sst2`).
    pub name: String,
    pub train: PathBuf,
    /// Dev file (default: a stratified `data.validation_fraction` of `train`).
    #[serde(default)]
    pub dev: Option<PathBuf>,
    #[serde(default)]
    pub text_field: Option<String>,
    #[serde(default)]
    pub text_pair_field: Option<String>,
    #[serde(default)]
    pub label_field: Option<String>,
    #[serde(default)]
    pub header: Option<bool>,
    /// Label names in id order (default: from the training file).
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

impl TaskFiles {
    fn fields(&self) -> Fields {
        Fields {
            text_field: self.text_field.clone(),
            text_pair_field: self.text_pair_field.clone(),
            label_field: self.label_field.clone(),
            header: self.header,
            format: Default::default(),
        }
    }
}

/// `[task]` of `multitask` (with `[[task.tasks]]` tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiTaskSection {
    pub kind: String,
    pub tasks: Vec<TaskFiles>,
    /// `"proportional"`, `"temperature"` (with `temperature`) or `"round_robin"`.
    pub sampling: String,
    pub temperature: f64,
    pub pooling: Option<Pooling>,
    pub max_len: Option<usize>,
}

impl Default for MultiTaskSection {
    fn default() -> Self {
        Self {
            kind: MultiTaskSpec::KIND.into(),
            tasks: Vec::new(),
            sampling: "proportional".into(),
            temperature: 2.0,
            pooling: None,
            max_len: None,
        }
    }
}

impl MultiTaskSection {
    pub(crate) fn check(
        &self,
        file: &str,
        m: &ModelSection,
        d: &DataConfig,
        ctx: &CheckContext,
    ) -> Result<super::AnyTaskSpec, TrainError> {
        if self.tasks.len() < 2 {
            return Err(bad(
                file,
                "task.tasks",
                "a multi-task run needs at least two tasks",
            ));
        }
        if d.train.is_some() || d.dev.is_some() {
            return Err(bad(
                file,
                "data.train",
                "multitask reads each [[task.tasks]]'s own train/dev files",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut heads = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if !names.insert(t.name.clone()) || t.name.is_empty() {
                return Err(bad(
                    file,
                    &format!("task.tasks[{i}].name"),
                    format!("{:?} is empty or used twice", t.name),
                ));
            }
            if t.dev.is_none() && d.validation_fraction <= 0.0 {
                return Err(bad(
                    file,
                    &format!("task.tasks[{i}].dev"),
                    "no dev file and data.validation_fraction is 0",
                ));
            }
            let labels = match &t.labels {
                Some(l) => l.clone(),
                None => LabelSet::infer(&read_labelled(&t.train, &t.fields())?)?.labels,
            };
            heads.push(TaskHead {
                files: t.clone(),
                labels,
            });
        }
        let sampling = match self.sampling.as_str() {
            "proportional" => Sampling::Proportional,
            "round_robin" => Sampling::RoundRobin,
            "temperature" if self.temperature > 0.0 && self.temperature.is_finite() => {
                Sampling::Temperature {
                    temperature: self.temperature,
                }
            }
            "temperature" => {
                return Err(bad(file, "task.temperature", "must be a positive number"))
            }
            other => {
                return Err(bad(
                    file,
                    "task.sampling",
                    format!("{other:?}: expected proportional, temperature or round_robin"),
                ))
            }
        };
        let (init, tokenizer) = init_paths(file, m, ctx)?;
        let model = super::classify::body_config(&init, &tokenizer)?;
        let pooling = self
            .pooling
            .unwrap_or_else(|| ClassifierConfig::default_pooling(&model));
        let max_len = self.max_len.unwrap_or(128).min(model.max_positions());
        let spec = MultiTaskSpec {
            model,
            pooling,
            init: Some(init),
            tokenizer,
            max_len,
            tasks: heads,
            sampling,
        };
        spec.validate().map_err(|e| bad(file, "task", e))?;
        text_encoder(&spec.model, &spec.tokenizer, spec.max_len)
            .map_err(|e| bad(file, "model.tokenizer", e))?;
        Ok(super::AnyTaskSpec::MultiTask(spec))
    }
}

/// One task of a multi-task spec: its data and labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskHead {
    pub files: TaskFiles,
    pub labels: Vec<String>,
}

/// Multi-task classification settings (saved in `trainer_state.json` and `task.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiTaskSpec {
    pub model: BackboneConfig,
    pub pooling: Pooling,
    #[serde(default)]
    pub init: Option<PathBuf>,
    pub tokenizer: PathBuf,
    pub max_len: usize,
    pub tasks: Vec<TaskHead>,
    pub sampling: Sampling,
}

impl MultiTaskSpec {
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.model.check_pooling(self.pooling)?;
        if self.tasks.len() < 2 {
            return Err(TrainError::InvalidConfig(
                "multitask: needs at least two tasks".into(),
            ));
        }
        if let Some(t) = self.tasks.iter().find(|t| t.labels.len() < 2) {
            return Err(TrainError::InvalidConfig(format!(
                "multitask: task {:?} has fewer than two labels",
                t.files.name
            )));
        }
        if self.max_len < 4 || self.max_len > self.model.max_positions() {
            return Err(TrainError::InvalidConfig(format!(
                "multitask: max_len {} must be in 4..={}",
                self.max_len,
                self.model.max_positions()
            )));
        }
        Ok(())
    }

    pub fn config(&self) -> MultiTaskConfig {
        MultiTaskConfig {
            backbone: self.model.clone(),
            tasks: self
                .tasks
                .iter()
                .map(|t| (t.files.name.clone(), t.labels.clone()))
                .collect(),
            pooling: self.pooling,
        }
    }

    /// The index of task `name`.
    pub fn task_index(&self, name: &str) -> Result<usize, TrainError> {
        self.tasks
            .iter()
            .position(|t| t.files.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.tasks.iter().map(|t| t.files.name.as_str()).collect();
                TrainError::InvalidConfig(format!("no task {name:?} (tasks: {})", names.join(", ")))
            })
    }
}

impl TaskSpec for MultiTaskSpec {
    const KIND: &'static str = "multitask";
    type Task = MultiTaskTask;

    fn build(&self, checkpoint: Option<&Path>) -> Result<MultiTaskTask, TrainError> {
        self.validate()?;
        let path = match checkpoint.map(|d| d.join(TOKENIZER_FILE)) {
            Some(p) if p.is_file() => p,
            _ => self.tokenizer.clone(),
        };
        let encoder = text_encoder(&self.model, &path, self.max_len)?;
        Ok(MultiTaskTask {
            spec: self.clone(),
            encoder,
            tokenizer_json: Arc::new(super::classify::read_tokenizer_bytes(&path)?),
        })
    }
}

/// The runtime of [`MultiTaskSpec`].
#[derive(Debug, Clone)]
pub struct MultiTaskTask {
    pub spec: MultiTaskSpec,
    pub encoder: TextEncoder,
    /// The tokenizer file's bytes, written into every saved model as `tokenizer.json`.
    tokenizer_json: Arc<Vec<u8>>,
}

/// Writes task `name` of a saved multi-task model directory as a standalone HF sequence
/// classifier (`config.json` with its labels, `model.safetensors`, `tokenizer.json`).
pub fn export_task(dir: &Path, name: &str, out: &Path, device: &Device) -> Result<(), TrainError> {
    let path = dir.join(TASK_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
        path: path.clone(),
        source,
    })?;
    let spec: MultiTaskSpec =
        serde_json::from_str(&text).map_err(|source| TrainError::Json { path, source })?;
    let k = spec.task_index(name)?;
    let (_, model) = load_multitask(dir, device)?;
    let config = ClassifierConfig {
        backbone: spec.model.clone(),
        labels: spec.tasks[k].labels.clone(),
        pooling: spec.pooling,
    };
    save_classifier(&model.task_model(k)?, &config, out)?;
    let tok = dir.join(TOKENIZER_FILE);
    if tok.is_file() {
        std::fs::copy(&tok, out.join(TOKENIZER_FILE)).map_err(|source| TrainError::Io {
            path: tok.clone(),
            source,
        })?;
    }
    // The standalone task's own spec, for `evaluate` (field names, max length).
    let single = super::classify::ClassifySpec {
        model: spec.model.clone(),
        labels: spec.tasks[k].labels.clone(),
        pooling: spec.pooling,
        init: None,
        tokenizer: out.join(TOKENIZER_FILE),
        max_len: spec.max_len,
        fields: spec.tasks[k].files.fields(),
        class_weights: None,
        freeze_embeddings: false,
        freeze_layers: 0,
        layer_lr_decay: None,
    };
    super::classify::write_task_file(out, &single)
}

/// Training batches drawn across tasks (see the module docs).
pub struct MultiSource {
    sources: Vec<ClassSource>,
    /// Cumulative draw probabilities (empty: round-robin).
    cdf: Vec<f64>,
    seed: u64,
    position: u64,
}

impl MultiSource {
    fn task_at(&self, p: u64) -> usize {
        if self.cdf.is_empty() {
            return (p % self.sources.len() as u64) as usize;
        }
        let u = (splitmix64(self.seed ^ 0x7A5C ^ splitmix64(p)) >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cdf.len() - 1)
    }
}

impl BatchSource<ClassBatch> for MultiSource {
    fn next_batch(&mut self) -> ClassBatch {
        let k = self.task_at(self.position);
        self.position += 1;
        self.sources[k].next_batch()
    }

    fn position(&self) -> u64 {
        self.position
    }

    /// Replays the task draws up to `position` so every task's source is where the
    /// uninterrupted run left it.
    fn seek(&mut self, position: u64) {
        let mut counts = vec![0u64; self.sources.len()];
        for p in 0..position {
            counts[self.task_at(p)] += 1;
        }
        for (s, c) in self.sources.iter_mut().zip(counts) {
            s.seek(c);
        }
        self.position = position;
    }
}

/// Every task's dev set once, task after task.
pub struct MultiEval {
    sources: Vec<ClassSource>,
    /// Batches before each task.
    cum: Vec<u64>,
    position: u64,
}

impl BatchSource<ClassBatch> for MultiEval {
    fn next_batch(&mut self) -> ClassBatch {
        let total = self.cum.last().copied().unwrap_or(0).max(1);
        let p = self.position % total;
        self.position += 1;
        let tasks = self.sources.len();
        let k = self.cum[..tasks].iter().rposition(|&c| c <= p).unwrap_or(0);
        let s = &mut self.sources[k];
        s.seek(p - self.cum[k]);
        s.next_batch()
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn seek(&mut self, position: u64) {
        self.position = position;
    }

    fn batches_per_epoch(&self) -> Option<u64> {
        self.cum.last().copied()
    }
}

impl MultiTaskTask {
    fn task_rows(
        &self,
        k: usize,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<ClassSource, TrainError> {
        let head = &self.spec.tasks[k];
        let files = &head.files;
        let labels = LabelSet {
            labels: head.labels.clone(),
        };
        let (path, from_train) = match (split, &files.dev) {
            (DataSplit::Validation, Some(dev)) => (dev, false),
            _ => (&files.train, true),
        };
        let file = read_labelled(path, &files.fields())?;
        let ids = labels.ids(&file)?;
        let mut chosen: Vec<usize> = (0..ids.len()).collect();
        if from_train && files.dev.is_none() && data.validation_fraction > 0.0 {
            let (train, dev) = stratified_split(&ids, data.validation_fraction, data.split_seed);
            chosen = if split == DataSplit::Train {
                train
            } else {
                dev
            };
        }
        let all = self.encoder.encode_file(&file, &ids)?;
        let rows: Vec<_> = chosen.iter().map(|&i| all[i].clone()).collect();
        let seed = (split == DataSplit::Train).then(|| splitmix64(data.seed ^ k as u64));
        ClassSource::new(
            Arc::new(rows),
            data.batch_size,
            pad_id(&self.spec.model, &self.encoder),
            k,
            seed,
        )
        .map_err(|e| TrainError::Data {
            path: path.clone(),
            message: format!("task {}: {e}", files.name),
        })
    }
}

fn prefixed(sums: &MetricSums, k: usize) -> MetricSums {
    let prefix = format!("task{k}/");
    let mut out = MetricSums::default();
    for (name, (s, c)) in &sums.sums {
        if let Some(rest) = name.strip_prefix(&prefix) {
            out.add(rest, *s, *c);
        }
    }
    out
}

impl Task for MultiTaskTask {
    type Spec = MultiTaskSpec;
    type Model = MultiTaskClassifier;
    type Batch = ClassBatch;
    type Input = ClassBatch;

    fn spec(&self) -> &MultiTaskSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<MultiTaskClassifier, TrainError> {
        let s = &self.spec;
        let sizes: Vec<usize> = s.tasks.iter().map(|t| t.labels.len()).collect();
        let backbone = match &s.init {
            Some(init) => load_backbone_as(init, &s.model, device)?,
            None => match &s.model {
                BackboneConfig::Bert(c) => refinery_model::Backbone::Bert(c.init_model(device)?),
                BackboneConfig::Gpt(c) => refinery_model::Backbone::Gpt(c.init(device)?),
            },
        };
        Ok(MultiTaskClassifier::new(
            backbone, &s.model, &sizes, s.pooling, device,
        )?)
    }

    fn save_model(&self, model: &MultiTaskClassifier, dir: &Path) -> Result<(), TrainError> {
        save_multitask(model, &self.spec.config(), dir)?;
        super::classify::write_tokenizer(dir, &self.tokenizer_json)?;
        let path = dir.join(TASK_FILE);
        let text = serde_json::to_string_pretty(&self.spec).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
    }

    fn load_model(&self, dir: &Path, device: &Device) -> Result<MultiTaskClassifier, TrainError> {
        let (config, model) = load_multitask(dir, device)?;
        if config != self.spec.config() {
            return Err(TrainError::InvalidConfig(format!(
                "{}: the checkpoint's tasks/labels differ from the run's",
                dir.display()
            )));
        }
        Ok(model)
    }

    fn prepare(&self, batch: ClassBatch, _seed: u64) -> Result<ClassBatch, TrainError> {
        Ok(batch)
    }
    fn num_tokens(&self, b: &ClassBatch) -> usize {
        b.num_tokens()
    }

    fn forward(
        &self,
        model: &MultiTaskClassifier,
        b: &ClassBatch,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let (ids, types, mask) = b.tensors(device); // [B, T] each
        let out = model.forward(b.task, ids, Some(types), mask, opts)?;
        let [n, c] = out.logits.dims();
        Ok(Outputs {
            logits: out.logits.reshape([n, 1, c]),
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
        let mut l =
            super::classify::classifier_loss(&out.logits, &b.labels, None, device, metrics)?;
        // Per-task sums: `task{k}/…`.
        l.metrics = l.metrics.map(|m| {
            let mut out = MetricSums::default();
            for (name, (s, c)) in &m.sums {
                out.add(&format!("task{}/{name}", b.task), *s, *c);
            }
            out
        });
        Ok(l)
    }

    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let mut means: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (k, head) in self.spec.tasks.iter().enumerate() {
            let m = Confusion::from_sums(&prefixed(sums, k), &head.labels).metrics();
            for key in ["accuracy", "macro_f1", "mcc"] {
                if let Some(v) = m.get(key).filter(|v| v.is_finite()) {
                    let e = means.entry(key).or_insert((0.0, 0.0));
                    e.0 += v;
                    e.1 += 1.0;
                }
            }
            for (key, v) in m {
                out.insert(format!("{}/{key}", head.files.name), v);
            }
        }
        for (key, (s, c)) in means {
            if c > 0.0 {
                out.insert(key.to_string(), s / c);
            }
        }
        out
    }

    fn details(&self, sums: &MetricSums) -> Option<serde_json::Value> {
        let per: BTreeMap<String, Confusion> = self
            .spec
            .tasks
            .iter()
            .enumerate()
            .map(|(k, h)| {
                (
                    h.files.name.clone(),
                    Confusion::from_sums(&prefixed(sums, k), &h.labels),
                )
            })
            .collect();
        serde_json::to_value(per).ok()
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<ClassBatch> + Send>, TrainError> {
        let sources = (0..self.spec.tasks.len())
            .map(|k| self.task_rows(k, data, split))
            .collect::<Result<Vec<_>, _>>()?;
        if split == DataSplit::Validation {
            // cum[k] = batches before task k; the last entry is the total.
            let mut cum = Vec::with_capacity(sources.len() + 1);
            let mut acc = 0;
            for s in &sources {
                cum.push(acc);
                acc += s.batches_per_epoch().unwrap_or(0);
            }
            cum.push(acc);
            return Ok(Box::new(MultiEval {
                sources,
                cum,
                position: 0,
            }));
        }
        let sizes: Vec<f64> = sources.iter().map(|s| s.num_examples() as f64).collect();
        let weights: Vec<f64> = match self.spec.sampling {
            Sampling::RoundRobin => Vec::new(),
            Sampling::Proportional => sizes,
            Sampling::Temperature { temperature } => {
                sizes.iter().map(|n| n.powf(1.0 / temperature)).collect()
            }
        };
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Ok(Box::new(MultiSource {
            sources,
            cdf,
            seed: data.seed,
            position: 0,
        }))
    }
}

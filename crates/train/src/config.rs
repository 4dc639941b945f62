//! `train.toml`: the configuration of `refinery pretrain` and `refinery finetune`, its
//! presets, its validation, and [`train`], which runs any task kind.
//!
//! ```toml
//! [task]    kind = "gpt-clm" | "bert-mlm-nsp" | "bart-dae" | "plm" | "classify" | "cloze" |
//!           "multitask", and only that kind's settings (see each *Section type)
//! [model]   size = "tiny", vocab_size, dropout, [model.hf] overrides (any HF config.json
//!           key); init = DIR (fine-tuning: the checkpoint to start from)
//! [data]    crate::data::DataConfig: token shards (pretraining) or labelled files
//!           (train, dev, text_field, label_field, ...; fine-tuning)
//! [optim]   lr, min_lr, warmup_steps, decay, weight_decay, beta1, beta2, eps, grad_clip,
//!           grad_accum_steps, precision
//! [run]     total_steps or epochs, eval_every, eval_batches, save_every, keep, seed,
//!           best_metric, patience, out_dir
//! ```
//!
//! The file is read in two passes: `[task] kind` first, then the whole file with that kind's
//! section type, so errors name the file, the key and the line for every key.
//! [`TrainFile::check`] validates every value once and returns checked types
//! ([`CheckedTrain`]) that the run loop takes as they are.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use refinery_model::{BartConfig, BertConfig, GptConfig, PlmConfig, Pooling};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::data::labelled::{read_labelled, LabelSet};
use crate::data::{BatchSource, DataConfig, DataSplit, NspSpecials};
use crate::error::TrainError;
use crate::precision::Precision;
use crate::prune::{GradualPruning, PruneSection};
use crate::run::{BestModel, Observer, RunOptions, RunSummary};
use crate::schedule::{Decay, LrSchedule};
use crate::tasks::classify::few_shot;
use crate::tasks::{
    AnyTaskSpec, BartDaeSpec, BertMlmNspSpec, ClassifySpec, DaeNoise, GptClmSpec, PlmSpec, Task,
    TaskSpec,
};
use crate::trainer::TrainConfig;

/// Shipped presets: `(name, TOML)`.
pub const PRESETS: &[(&str, &str)] = &[
    ("gpt-tiny", include_str!("../presets/gpt-tiny.toml")),
    ("bert-tiny", include_str!("../presets/bert-tiny.toml")),
    ("bart-tiny", include_str!("../presets/bart-tiny.toml")),
    ("sst2-minilm", include_str!("../presets/sst2-minilm.toml")),
    ("classify", include_str!("../presets/classify.toml")),
    ("sst2-cloze", include_str!("../presets/sst2-cloze.toml")),
];

/// The TOML text of a preset.
pub fn preset(name: &str) -> Result<&'static str, TrainError> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            TrainError::InvalidConfig(format!(
                "unknown preset {name:?} (presets: {})",
                names.join(", ")
            ))
        })
}

/// `[task]` of `gpt-clm`: nothing beyond the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GptClmSection {
    pub kind: String,
}

impl Default for GptClmSection {
    fn default() -> Self {
        Self {
            kind: GptClmSpec::KIND.into(),
        }
    }
}

/// `[task]` of `bert-mlm-nsp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BertMlmNspSection {
    pub kind: String,
    /// Share of tokens selected for MLM (BERT: 0.15).
    pub mlm_probability: f64,
    /// Add the next-sentence-prediction loss.
    pub nsp: bool,
    /// Special ids (default: the tokenizer's `[MASK]`, `[CLS]`, `[SEP]`, `[PAD]`).
    pub mask_token_id: Option<u32>,
    pub cls_token_id: Option<u32>,
    pub sep_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
}

impl Default for BertMlmNspSection {
    fn default() -> Self {
        Self {
            kind: BertMlmNspSpec::KIND.into(),
            mlm_probability: 0.15,
            nsp: true,
            mask_token_id: None,
            cls_token_id: None,
            sep_token_id: None,
            pad_token_id: None,
        }
    }
}

/// `[task]` of `bart-dae` (BART text infilling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BartDaeSection {
    pub kind: String,
    /// Share of the tokens hidden (default 0.3).
    pub mask_ratio: f64,
    /// Mean span length (default 3).
    pub poisson_lambda: f64,
    /// `<mask>`, `<s>`, `</s>`, `<pad>` (default: from the tokenizer).
    pub mask_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
}

impl Default for BartDaeSection {
    fn default() -> Self {
        Self {
            kind: BartDaeSpec::KIND.into(),
            mask_ratio: 0.3,
            poisson_lambda: 3.0,
            mask_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }
}

/// `[task]` of `plm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlmSection {
    pub kind: String,
    /// Partial prediction: about 1/k of each row's tokens are targets (XLNet: 6).
    pub k: usize,
}

impl Default for PlmSection {
    fn default() -> Self {
        Self {
            kind: PlmSpec::KIND.into(),
            k: crate::objectives::plm::XLNET_K,
        }
    }
}

/// Class weights of the cross-entropy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(untagged)]
pub enum ClassWeights {
    /// `"none"` (default) or `"balanced"` (`n / (C · count)`, scikit-learn's).
    Named(String),
    /// One weight per label, in label order.
    List(Vec<f32>),
    #[default]
    #[serde(skip)]
    Unset,
}

/// `[task]` of `classify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifySection {
    pub kind: String,
    /// Label names in id order (default: from the training file, numeric labels in numeric
    /// order, others sorted; or the init checkpoint's `id2label`).
    pub labels: Option<Vec<String>>,
    /// `"pooler"` (BERT default), `"last"` (GPT-2 default) or `"mean"`.
    pub pooling: Option<Pooling>,
    /// Longest input in tokens (default 128, capped by the model).
    pub max_len: Option<usize>,
    pub class_weights: ClassWeights,
    pub freeze_embeddings: bool,
    pub freeze_layers: usize,
    /// Layer-wise learning-rate decay factor in (0, 1].
    pub layer_lr_decay: Option<f64>,
}

impl Default for ClassifySection {
    fn default() -> Self {
        Self {
            kind: ClassifySpec::KIND.into(),
            labels: None,
            pooling: None,
            max_len: None,
            class_weights: ClassWeights::Unset,
            freeze_embeddings: false,
            freeze_layers: 0,
            layer_lr_decay: None,
        }
    }
}

/// The `[task]` section: one kind's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskSection {
    GptClm(GptClmSection),
    BertMlmNsp(BertMlmNspSection),
    BartDae(BartDaeSection),
    Plm(PlmSection),
    Classify(ClassifySection),
    Cloze(crate::tasks::cloze::ClozeSection),
    MultiTask(crate::tasks::multitask::MultiTaskSection),
}

impl Default for TaskSection {
    fn default() -> Self {
        TaskSection::GptClm(GptClmSection::default())
    }
}

impl TaskSection {
    pub fn kind(&self) -> &str {
        match self {
            TaskSection::GptClm(s) => &s.kind,
            TaskSection::BertMlmNsp(s) => &s.kind,
            TaskSection::BartDae(s) => &s.kind,
            TaskSection::Plm(s) => &s.kind,
            TaskSection::Classify(s) => &s.kind,
            TaskSection::Cloze(s) => &s.kind,
            TaskSection::MultiTask(s) => &s.kind,
        }
    }

    /// Whether this kind trains on labelled files (rather than token shards).
    pub fn is_labelled(&self) -> bool {
        matches!(
            self,
            TaskSection::Classify(_) | TaskSection::Cloze(_) | TaskSection::MultiTask(_)
        )
    }
}

/// The kind strings `[task] kind` accepts.
pub const KINDS: &[&str] = &[
    "gpt-clm",
    "bert-mlm-nsp",
    "bart-dae",
    "plm",
    "classify",
    "cloze",
    "multitask",
];

/// `[model]`: the architecture's size (pretraining) or the checkpoint to start from
/// (fine-tuning). The architecture follows from the task kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Size preset the HF config starts from: `"tiny"` (gpt-tiny: 4 layers, d=256, 4 heads,
    /// ctx 128; bert-tiny: 2 layers, hidden 128, 2 heads, intermediate 512).
    pub size: String,
    /// Default: the token shards' vocabulary size.
    pub vocab_size: Option<usize>,
    /// Sets every dropout probability of the model.
    pub dropout: Option<f64>,
    /// HF `config.json` keys overriding the size preset (`n_layer`, `hidden_size`, ...).
    pub hf: toml::Table,
    /// Fine-tuning: the checkpoint directory to start from (`--model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Fine-tuning: the tokenizer (default: `init`'s `tokenizer.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            size: "tiny".into(),
            vocab_size: None,
            dropout: None,
            hf: toml::Table::new(),
            init: None,
            tokenizer: None,
        }
    }
}

/// `[optim]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimSection {
    /// Peak learning rate (after warmup).
    pub lr: f64,
    /// Learning rate at the end of the decay.
    pub min_lr: f64,
    pub warmup_steps: usize,
    /// Warmup as a share of the run's steps (overrides `warmup_steps`; for epoch-counted runs,
    /// whose step count follows from the data).
    pub warmup_ratio: Option<f64>,
    pub decay: Decay,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Global gradient-norm clip (0: off).
    pub grad_clip: f64,
    pub grad_accum_steps: usize,
    /// Compute dtype: "f32" (default), "bf16" or "f16" (f32 master weights and AdamW).
    pub precision: Precision,
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            lr: 6e-4,
            min_lr: 6e-5,
            warmup_steps: 100,
            warmup_ratio: None,
            decay: Decay::Cosine,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            grad_accum_steps: 1,
            precision: Precision::F32,
        }
    }
}

/// `[run]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// Optimizer steps of the run (ignored when `epochs` is set).
    pub total_steps: usize,
    /// Passes over labelled training data (fine-tuning); the steps follow from the data size.
    pub epochs: Option<usize>,
    /// 0: never (needs validation data otherwise); labelled data is also evaluated at every
    /// epoch end.
    pub eval_every: usize,
    /// Batches per evaluation (labelled data: always the whole dev set).
    pub eval_batches: usize,
    /// Labelled data: also evaluate at every epoch end (default true; few-shot runs with
    /// many short epochs turn it off and evaluate at the end only).
    pub eval_each_epoch: bool,
    /// 0: only at the end (and at every epoch end).
    pub save_every: usize,
    pub keep: usize,
    /// Seeds the initialisation, dropout and MLM masks (the data order has `data.seed`).
    pub seed: u64,
    /// Keep the best model in `out/best` by this evaluation metric (`accuracy`, `macro_f1`,
    /// `mcc`, `loss`, ...) and the last in `out/final`.
    pub best_metric: Option<String>,
    /// Early stopping: stop after this many evaluations without a better `best_metric`.
    pub patience: Option<usize>,
    /// Output directory (the CLI's `--out` wins).
    pub out_dir: Option<PathBuf>,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            total_steps: 1000,
            epochs: None,
            eval_every: 100,
            eval_batches: 20,
            eval_each_epoch: true,
            save_every: 500,
            keep: 3,
            seed: 0,
            best_metric: None,
            patience: None,
            out_dir: None,
        }
    }
}

/// A whole `train.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainFile {
    pub task: TaskSection,
    pub model: ModelSection,
    pub data: DataConfig,
    pub optim: OptimSection,
    pub run: RunSection,
    /// Gradual magnitude pruning during the run (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSection>,
}

/// `TrainFile` with a concrete task section type (the second parsing pass).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainFileOf<S: Default> {
    #[serde(default)]
    task: S,
    #[serde(default)]
    model: ModelSection,
    #[serde(default)]
    data: DataConfig,
    #[serde(default)]
    optim: OptimSection,
    #[serde(default)]
    run: RunSection,
    #[serde(default)]
    prune: Option<PruneSection>,
}

/// The first parsing pass: only `[task] kind`.
#[derive(Deserialize, Default)]
struct KindOnly {
    #[serde(default)]
    task: Option<KindField>,
}

#[derive(Deserialize)]
struct KindField {
    kind: Option<String>,
}

/// A validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTrain {
    pub task: AnyTaskSpec,
    pub train: TrainConfig,
    pub run: RunOptions,
    /// Passes over labelled data (the steps are computed from the data when the run starts).
    pub epochs: Option<usize>,
    /// Warmup as a share of the steps (applied when the run's step count is known).
    pub warmup_ratio: Option<f64>,
    pub data: DataConfig,
    /// Gradual magnitude pruning (`[prune]`).
    pub prune: Option<GradualPruning>,
}

/// Special token ids found in a tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenizerIds {
    pub mask: Option<u32>,
    pub cls: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
}

impl TokenizerIds {
    /// The special ids of a tokenizer file or directory: BERT names first, then BART's (`<s>`
    /// and `</s>` play `[CLS]` and `[SEP]`).
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let tok = refinery_tokenize::Tokenizer::load(path)?;
        let find = |names: [&str; 2]| names.iter().find_map(|n| tok.token_to_id(n));
        Ok(TokenizerIds {
            mask: find(["[MASK]", "<mask>"]),
            cls: find(["[CLS]", "<s>"]),
            sep: find(["[SEP]", "</s>"]),
            pad: find(["[PAD]", "<pad>"]),
        })
    }
}

/// What the checks need besides the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckContext {
    /// The token shards' vocabulary size (the default `model.vocab_size`).
    pub data_vocab: Option<usize>,
    /// The tokenizer's special ids (BERT/BART defaults).
    pub tokenizer_ids: TokenizerIds,
    /// The tokenizer file (copied into pretraining checkpoints; fine-tuning default).
    pub tokenizer: Option<PathBuf>,
}

pub(crate) fn bad(file: &str, key: &str, msg: impl std::fmt::Display) -> TrainError {
    TrainError::InvalidConfig(format!("{file}: {key}: {msg}"))
}

fn toml_error(text: &str, file: &str, key: &str, e: &toml::de::Error) -> TrainError {
    let (key, message) = refinery_corpus::toml_error_parts(text, key, e.message(), e.span());
    bad(file, &key, message)
}

fn parse_as<S: DeserializeOwned + Default>(
    text: &str,
    file: &str,
    wrap: impl FnOnce(S) -> TaskSection,
) -> Result<TrainFile, TrainError> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
    let f: TrainFileOf<S> = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        toml_error(text, file, &key, &e.into_inner())
    })?;
    Ok(TrainFile {
        task: wrap(f.task),
        model: f.model,
        data: f.data,
        optim: f.optim,
        run: f.run,
        prune: f.prune,
    })
}

impl TrainFile {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, TrainError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
        let kind: KindOnly = serde_path_to_error::deserialize(de).unwrap_or_default();
        let kind = kind.task.and_then(|t| t.kind);
        legacy_model_type(text, file)?;
        // No [task] section (or no kind): the default kind, gpt-clm.
        match kind.as_deref().unwrap_or("gpt-clm") {
            "gpt-clm" => parse_as(text, file, TaskSection::GptClm),
            "bert-mlm-nsp" => parse_as(text, file, TaskSection::BertMlmNsp),
            "bart-dae" => parse_as(text, file, TaskSection::BartDae),
            "plm" => parse_as(text, file, TaskSection::Plm),
            "classify" => parse_as(text, file, TaskSection::Classify),
            "cloze" => parse_as(text, file, TaskSection::Cloze),
            "multitask" => parse_as(text, file, TaskSection::MultiTask),
            other => {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("kind"))
                    .map(|i| format!(" (line {})", i + 1))
                    .unwrap_or_default();
                Err(bad(
                    file,
                    "task.kind",
                    format!("unknown kind {other:?} (kinds: {}){line}", KINDS.join(", ")),
                ))
            }
        }
    }

    /// A shipped preset.
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        Self::from_toml(preset(name)?, &format!("preset {name}"))
    }

    /// The config as TOML (what `--print-config` shows).
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string(self).map_err(|e| TrainError::InvalidConfig(format!("(serialize): {e}")))
    }

    /// Validates every value once. `file` names the config in errors.
    pub fn check(&self, file: &str, ctx: &CheckContext) -> Result<CheckedTrain, TrainError> {
        let task = self.check_task(file, ctx)?;
        let o = &self.optim;
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(file, key, format!("{v} must be a positive number")))
            }
        };
        positive("optim.lr", o.lr)?;
        if !(o.min_lr >= 0.0 && o.min_lr <= o.lr) {
            return Err(bad(
                file,
                "optim.min_lr",
                format!("{} must be in [0, optim.lr = {}]", o.min_lr, o.lr),
            ));
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(bad(
                file,
                "optim.weight_decay",
                format!("{} must be >= 0", o.weight_decay),
            ));
        }
        for (key, b) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(bad(file, key, format!("{b} must be in [0, 1)")));
            }
        }
        positive("optim.eps", f64::from(o.eps))?;
        if !(o.grad_clip >= 0.0 && o.grad_clip.is_finite()) {
            return Err(bad(
                file,
                "optim.grad_clip",
                format!("{} must be >= 0 (0: off)", o.grad_clip),
            ));
        }
        if o.grad_accum_steps == 0 {
            return Err(bad(file, "optim.grad_accum_steps", "must be at least 1"));
        }
        let r = &self.run;
        let d = &self.data;
        let labelled = self.task.is_labelled();
        if r.epochs == Some(0) {
            return Err(bad(file, "run.epochs", "must be at least 1"));
        }
        if r.epochs.is_some() && !labelled {
            return Err(bad(
                file,
                "run.epochs",
                "epochs are for labelled data (fine-tuning); token-shard runs count total_steps",
            ));
        }
        if r.epochs.is_none() && r.total_steps == 0 {
            return Err(bad(file, "run.total_steps", "must be at least 1"));
        }
        if let Some(w) = o.warmup_ratio {
            if !(0.0..1.0).contains(&w) {
                return Err(bad(
                    file,
                    "optim.warmup_ratio",
                    format!("{w} must be in [0, 1)"),
                ));
            }
        }
        if r.epochs.is_none() && o.warmup_ratio.is_none() && o.warmup_steps > r.total_steps {
            return Err(bad(
                file,
                "optim.warmup_steps",
                format!(
                    "{} exceeds run.total_steps {}",
                    o.warmup_steps, r.total_steps
                ),
            ));
        }
        // Multi-task runs check every task's dev data in their own section.
        let has_validation = d.validation_fraction > 0.0
            || (labelled && d.dev.is_some())
            || matches!(self.task, TaskSection::MultiTask(_));
        if r.eval_every > 0 && r.eval_batches == 0 && !labelled {
            return Err(bad(
                file,
                "run.eval_batches",
                "must be at least 1 when run.eval_every > 0",
            ));
        }
        if (r.eval_every > 0 || r.best_metric.is_some()) && !has_validation {
            let what = if labelled {
                "set data.dev (--dev FILE) or data.validation_fraction > 0"
            } else {
                "set data.validation_fraction > 0"
            };
            let key = if r.eval_every > 0 {
                "run.eval_every"
            } else {
                "run.best_metric"
            };
            return Err(bad(
                file,
                key,
                format!("evaluation needs a validation split: {what} (or run.eval_every = 0)"),
            ));
        }
        if r.patience.is_some() && r.best_metric.is_none() {
            return Err(bad(file, "run.patience", "needs run.best_metric"));
        }
        if r.patience == Some(0) {
            return Err(bad(file, "run.patience", "must be at least 1"));
        }
        if r.keep == 0 {
            return Err(bad(file, "run.keep", "must be at least 1"));
        }
        let out_dir = r
            .out_dir
            .clone()
            .ok_or_else(|| bad(file, "run.out_dir", "not set (pass --out DIR)"))?;
        if labelled {
            d.validate_labelled()
                .map_err(|e| TrainError::InvalidConfig(format!("{file}: {e}")))?;
        } else {
            d.validate()
                .map_err(|e| TrainError::InvalidConfig(format!("{file}: {e}")))?;
        }
        let best = r.best_metric.as_ref().map(|m| BestModel {
            higher_is_better: !m.contains("loss"),
            metric: m.clone(),
            patience: r.patience,
        });

        let train = TrainConfig {
            schedule: LrSchedule {
                peak_lr: o.lr,
                min_lr: o.min_lr,
                warmup_steps: o.warmup_steps,
                total_steps: r.total_steps,
                decay: o.decay,
            },
            weight_decay: o.weight_decay,
            beta_1: o.beta1,
            beta_2: o.beta2,
            epsilon: o.eps,
            grad_clip: (o.grad_clip > 0.0).then_some(o.grad_clip),
            grad_accum_steps: o.grad_accum_steps,
            seed: r.seed,
            precision: o.precision,
        };
        let prune = self.prune.as_ref().map(|p| p.check(file)).transpose()?;
        if let (Some(p), None) = (&prune, r.epochs) {
            p.resolve(r.total_steps)
                .map_err(|e| TrainError::InvalidConfig(format!("{file}: {e}")))?;
        }
        let mut extra_files = Vec::new();
        if !labelled {
            if let Some(tok) = ctx.tokenizer.as_deref().and_then(tokenizer_json) {
                extra_files.push(("tokenizer.json".into(), tok));
            }
        }
        Ok(CheckedTrain {
            task,
            train,
            run: RunOptions {
                out_dir,
                total_steps: r.total_steps,
                eval_every: r.eval_every,
                eval_batches: r.eval_batches,
                save_every: r.save_every,
                keep: r.keep,
                extra_files,
                steps_per_epoch: None,
                eval_each_epoch: r.eval_each_epoch,
                best,
            },
            epochs: r.epochs,
            warmup_ratio: o.warmup_ratio,
            data: d.clone(),
            prune,
        })
    }

    /// The `[task]` + `[model]` sections as a task spec.
    fn check_task(&self, file: &str, ctx: &CheckContext) -> Result<AnyTaskSpec, TrainError> {
        let m = &self.model;
        let d = &self.data;
        if let Some(p) = m.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(file, "model.dropout", format!("{p} must be in [0, 1)")));
            }
        }
        if self.task.is_labelled() {
            if !d.sources.is_empty() {
                return Err(bad(
                    file,
                    "data.sources",
                    format!(
                        "{} trains on labelled files (data.train), not token shards",
                        self.task.kind()
                    ),
                ));
            }
            return match &self.task {
                TaskSection::Classify(t) => check_classify(file, t, m, d, ctx),
                TaskSection::Cloze(t) => t.check(file, m, d, ctx),
                TaskSection::MultiTask(t) => t.check(file, m, d, ctx),
                _ => Err(bad(file, "task.kind", "not a labelled-data task")),
            };
        }
        if d.train.is_some() || d.dev.is_some() {
            return Err(bad(
                file,
                "data.train",
                format!(
                    "{} trains on token shards (data.sources / --data), not labelled files",
                    self.task.kind()
                ),
            ));
        }
        let vocab = m.vocab_size.or(ctx.data_vocab).ok_or_else(|| {
            bad(
                file,
                "model.vocab_size",
                "not set and no token shards to take it from",
            )
        })?;
        if vocab == 0 {
            return Err(bad(file, "model.vocab_size", "must be at least 1"));
        }
        if let Some(v) = ctx.data_vocab.filter(|&v| v > vocab) {
            return Err(bad(
                file,
                "model.vocab_size",
                format!("{vocab} is smaller than the token shards' vocabulary ({v})"),
            ));
        }
        if m.size != "tiny" {
            return Err(bad(
                file,
                "model.size",
                format!("{:?} is not a size preset (\"tiny\")", m.size),
            ));
        }
        if m.init.is_some() {
            return Err(bad(
                file,
                "model.init",
                "pretraining starts from a fresh model (init is for fine-tuning tasks)",
            ));
        }
        let tok = ctx.tokenizer_ids;
        let id = |key: &str, set: Option<u32>, found: Option<u32>, name: &str| {
            let id = set.or(found).ok_or_else(|| {
                bad(
                    file,
                    key,
                    format!("not set and no {name} token in the tokenizer (--tokenizer)"),
                )
            })?;
            if id as usize >= vocab {
                return Err(bad(
                    file,
                    key,
                    format!("{id} is not below vocab_size {vocab}"),
                ));
            }
            Ok(id)
        };
        let seq_len_fits = |max: usize, what: &str| {
            if d.seq_len > max {
                Err(bad(
                    file,
                    "data.seq_len",
                    format!("{} exceeds the model's {what} {max}", d.seq_len),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match &self.task {
            TaskSection::GptClm(_) => {
                let mut c = GptConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let c: GptConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                seq_len_fits(c.n_positions, "n_positions")?;
                AnyTaskSpec::GptClm(GptClmSpec::new(c))
            }
            TaskSection::BertMlmNsp(t) => {
                let mut c = BertConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c.hidden_dropout_prob = p;
                    c.attention_probs_dropout_prob = p;
                }
                let mask = id("task.mask_token_id", t.mask_token_id, tok.mask, "[MASK]")?;
                let cls = id("task.cls_token_id", t.cls_token_id, tok.cls, "[CLS]")?;
                let sep = id("task.sep_token_id", t.sep_token_id, tok.sep, "[SEP]")?;
                let pad = id("task.pad_token_id", t.pad_token_id, tok.pad, "[PAD]")?;
                c.pad_token_id = Some(pad);
                let c: BertConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                seq_len_fits(c.max_position_embeddings, "max_position_embeddings")?;
                if !(t.mlm_probability > 0.0 && t.mlm_probability < 1.0) {
                    return Err(bad(
                        file,
                        "task.mlm_probability",
                        format!("{} must be in (0, 1)", t.mlm_probability),
                    ));
                }
                let mut specials: Vec<i64> = vec![i64::from(cls), i64::from(sep), i64::from(pad)];
                specials.push(i64::from(mask));
                specials.sort_unstable();
                specials.dedup();
                let mut spec = BertMlmNspSpec::new(c, i64::from(mask), specials);
                spec.mlm_probability = t.mlm_probability;
                spec.nsp = t.nsp;
                spec.pair_specials = Some(NspSpecials { cls, sep, pad });
                AnyTaskSpec::BertMlmNsp(spec)
            }
            TaskSection::BartDae(t) => {
                let mut c = BartConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let mask = id("task.mask_token_id", t.mask_token_id, tok.mask, "<mask>")?;
                let bos = id("task.bos_token_id", t.bos_token_id, tok.cls, "<s>")?;
                let eos = id("task.eos_token_id", t.eos_token_id, tok.sep, "</s>")?;
                let pad = id("task.pad_token_id", t.pad_token_id, tok.pad, "<pad>")?;
                c.pad_token_id = pad;
                c.bos_token_id = Some(bos);
                c.eos_token_id = Some(eos);
                c.forced_eos_token_id = Some(eos);
                c.decoder_start_token_id = eos;
                let c: BartConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                // Rows are wrapped as `<s> row </s>`.
                if d.seq_len + 2 > c.max_position_embeddings {
                    return Err(bad(
                        file,
                        "data.seq_len",
                        format!(
                            "{} + 2 (<s>, </s>) exceeds the model's max_position_embeddings {}",
                            d.seq_len, c.max_position_embeddings
                        ),
                    ));
                }
                let mut spec = BartDaeSpec::bart(c, i64::from(mask));
                if let DaeNoise::TextInfilling {
                    mask_ratio,
                    poisson_lambda,
                    ..
                } = &mut spec.noise
                {
                    *mask_ratio = t.mask_ratio;
                    *poisson_lambda = t.poisson_lambda;
                }
                spec.validate().map_err(|e| bad(file, "task", e))?;
                AnyTaskSpec::BartDae(spec)
            }
            TaskSection::Plm(t) => {
                // gpt-tiny sizes (GPT-2 config.json names under [model.hf]).
                let g = GptConfig::tiny(vocab);
                let mut c = PlmConfig::new(vocab, g.n_positions, g.n_embd, g.n_layer, g.n_head);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let c: PlmConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                seq_len_fits(c.n_positions, "n_positions")?;
                let mut spec = PlmSpec::new(c);
                spec.k = t.k;
                spec.validate().map_err(|e| bad(file, "task.k", e))?;
                AnyTaskSpec::Plm(spec)
            }
            TaskSection::Classify(_) | TaskSection::Cloze(_) | TaskSection::MultiTask(_) => {
                return Err(bad(file, "task.kind", "a labelled-data task"))
            }
        })
    }
}

/// Files written before `[task]` existed chose the model with `[model] type`: say where it
/// moved (with the line) instead of a bare "unknown field".
fn legacy_model_type(text: &str, file: &str) -> Result<(), TrainError> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let Some(t) = table
        .get("model")
        .and_then(|m| m.get("type"))
        .and_then(|t| t.as_str())
    else {
        return Ok(());
    };
    let kind = match t {
        "gpt" => "gpt-clm",
        "bert" => "bert-mlm-nsp",
        "bart" => "bart-dae",
        other => other,
    };
    let line = text
        .lines()
        .position(|l| l.trim_start().starts_with("type"))
        .map(|i| format!(" (line {})", i + 1))
        .unwrap_or_default();
    Err(bad(
        file,
        "model.type",
        format!(
            "moved: write `[task]` `kind = \"{kind}\"` (the objective's settings — \
             mlm_probability, nsp, mask_ratio, poisson_lambda, token ids — moved to [task] too; \
             see docs/models.md){line}"
        ),
    ))
}

/// The `tokenizer.json` of a tokenizer path (a file, or a directory holding one).
pub fn tokenizer_json(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        let p = path.join("tokenizer.json");
        p.is_file().then_some(p)
    } else {
        (path.extension().and_then(|e| e.to_str()) == Some("json")).then(|| path.to_path_buf())
    }
}

/// The labels a fine-tuning run uses: `[task] labels`, else the training file's.
pub(crate) fn training_labels(
    file: &str,
    set: Option<&Vec<String>>,
    d: &DataConfig,
    fields: &crate::data::labelled::Fields,
) -> Result<Vec<String>, TrainError> {
    if let Some(l) = set {
        if l.len() < 2 {
            return Err(bad(file, "task.labels", "needs at least two labels"));
        }
        return Ok(l.clone());
    }
    let train = d
        .train
        .as_ref()
        .ok_or_else(|| bad(file, "data.train", "no training file (pass --train FILE)"))?;
    let f = read_labelled(train, fields)?;
    Ok(LabelSet::infer(&f)?.labels)
}

/// The checkpoint and tokenizer a fine-tuning run starts from.
pub(crate) fn init_paths(
    file: &str,
    m: &ModelSection,
    ctx: &CheckContext,
) -> Result<(PathBuf, PathBuf), TrainError> {
    let init = m.init.clone().ok_or_else(|| {
        bad(
            file,
            "model.init",
            "no checkpoint to start from (pass --model DIR)",
        )
    })?;
    let tokenizer = m
        .tokenizer
        .clone()
        .or_else(|| ctx.tokenizer.clone())
        .and_then(|t| tokenizer_json(&t))
        .unwrap_or_else(|| init.join("tokenizer.json"));
    if !tokenizer.is_file() {
        return Err(bad(
            file,
            "model.tokenizer",
            format!(
                "{} does not exist (the checkpoint has no tokenizer.json: pass --tokenizer)",
                tokenizer.display()
            ),
        ));
    }
    Ok((init, tokenizer))
}

fn check_classify(
    file: &str,
    t: &ClassifySection,
    m: &ModelSection,
    d: &DataConfig,
    ctx: &CheckContext,
) -> Result<AnyTaskSpec, TrainError> {
    let (init, tokenizer) = init_paths(file, m, ctx)?;
    let fields = d.fields();
    let labels = training_labels(file, t.labels.as_ref(), d, &fields)?;
    let mut spec = ClassifySpec::for_checkpoint(&init, labels, Some(&tokenizer))?;
    if let Some(p) = m.dropout {
        if let refinery_model::BackboneConfig::Bert(c) = &mut spec.model {
            c.hidden_dropout_prob = p;
            c.attention_probs_dropout_prob = p;
        }
    }
    if let Some(p) = t.pooling {
        spec.model
            .check_pooling(p)
            .map_err(|e| bad(file, "task.pooling", e))?;
        spec.pooling = p;
    }
    if let Some(n) = t.max_len {
        spec.max_len = n;
    } else if d.seq_len != DataConfig::default().seq_len {
        spec.max_len = d.seq_len;
    }
    spec.max_len = spec.max_len.min(spec.model.max_positions());
    spec.fields = fields.clone();
    spec.class_weights = match &t.class_weights {
        ClassWeights::Unset => None,
        ClassWeights::Named(n) if n == "none" => None,
        ClassWeights::Named(n) if n == "balanced" => {
            let train = d
                .train
                .as_ref()
                .ok_or_else(|| bad(file, "data.train", "missing"))?;
            let f = read_labelled(train, &fields)?;
            let set = LabelSet {
                labels: spec.labels.clone(),
            };
            let mut ids = set.ids(&f)?;
            if let Some(k) = d.few_shot {
                let all: Vec<usize> = (0..ids.len()).collect();
                ids = few_shot(&all, &ids, k, d.split_seed)
                    .into_iter()
                    .map(|i| ids[i])
                    .collect();
            }
            Some(crate::objectives::classify::balanced_weights(
                &set.counts(&ids),
            ))
        }
        ClassWeights::Named(n) => {
            return Err(bad(
                file,
                "task.class_weights",
                format!("{n:?}: expected \"none\", \"balanced\" or a list of numbers"),
            ))
        }
        ClassWeights::List(w) => Some(w.clone()),
    };
    spec.freeze_embeddings = t.freeze_embeddings;
    spec.freeze_layers = t.freeze_layers;
    spec.layer_lr_decay = t.layer_lr_decay;
    spec.validate().map_err(|e| bad(file, "task", e))?;
    // The tokenizer must fit the model (and BERT needs [CLS]/[SEP]).
    crate::tasks::classify::text_encoder(&spec.model, &spec.tokenizer, spec.max_len)
        .map_err(|e| bad(file, "model.tokenizer", e))?;
    Ok(AnyTaskSpec::Classify(spec))
}

/// Runs a checked config: opens the task's sources, sizes an epoch-counted run from the
/// data, and trains (resuming from `out_dir` when it holds a checkpoint).
pub fn train(
    checked: CheckedTrain,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    let CheckedTrain {
        task,
        train,
        run,
        epochs,
        warmup_ratio,
        data,
        prune,
    } = checked;
    let sizing = Sizing {
        epochs,
        warmup_ratio,
    };
    if let Some(p) = prune {
        return crate::prune::run_pruned(task, p, train, run, sizing, &data, device, observer);
    }
    crate::with_task_spec!(task, spec => run_spec(spec, train, run, sizing, &data, device, observer))
}

/// How a run's length is decided when it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sizing {
    /// Passes over labelled data ([`CheckedTrain::epochs`]).
    pub epochs: Option<usize>,
    /// Warmup as a share of the run ([`CheckedTrain::warmup_ratio`]).
    pub warmup_ratio: Option<f64>,
}

/// Trains `spec` (any task, including wrappers that are not an [`AnyTaskSpec`] kind, such as
/// distillation): opens its sources, sizes an epoch-counted run from the data, and runs
/// (resuming from `run.out_dir` when it holds a checkpoint). [`train`] is this for a
/// `train.toml`'s task.
pub fn run_spec<S: TaskSpec>(
    spec: S,
    mut train: TrainConfig,
    mut run: RunOptions,
    sizing: Sizing,
    data: &DataConfig,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    let task = spec.build(None)?;
    let mut train_source = task.open_source(data, DataSplit::Train)?;
    let Sizing {
        epochs,
        warmup_ratio,
    } = sizing;
    // Evaluation needs validation data (the checks made sure there is some when it is asked
    // for); runs with epochs evaluate at epoch ends when they have it.
    let has_validation = data.validation_fraction > 0.0 || data.dev.is_some();
    let wants_eval = run.eval_every > 0
        || run.best.is_some()
        || (epochs.is_some() && run.eval_each_epoch && has_validation);
    let mut valid = if wants_eval {
        Some(task.open_source(data, DataSplit::Validation)?)
    } else {
        None
    };
    if let Some(v) = valid.as_ref().and_then(|v| v.batches_per_epoch()) {
        // Labelled data: every evaluation covers the whole dev set once.
        run.eval_batches = v as usize;
    }
    if let Some(epochs) = epochs {
        let batches = train_source.batches_per_epoch().ok_or_else(|| {
            TrainError::InvalidConfig("run.epochs: this data has no epochs".into())
        })?;
        let per_epoch = (batches as usize).div_ceil(train.grad_accum_steps).max(1);
        run.steps_per_epoch = Some(per_epoch);
        run.total_steps = epochs * per_epoch;
        train.schedule.total_steps = run.total_steps;
    }
    if let Some(r) = warmup_ratio {
        train.schedule.warmup_steps = (r * run.total_steps as f64).ceil() as usize;
    }
    if let Some(epochs) = epochs {
        let per_epoch = run.steps_per_epoch.unwrap_or(1);
        if train.schedule.warmup_steps > run.total_steps {
            return Err(TrainError::InvalidConfig(format!(
                "optim.warmup_steps {} exceeds the run's {} steps ({epochs} epochs of {per_epoch})",
                train.schedule.warmup_steps, run.total_steps
            )));
        }
    }
    crate::run::run(
        task,
        train,
        &run,
        &mut *train_source,
        valid
            .as_deref_mut()
            .map(|v| v as &mut dyn BatchSource<<S::Task as Task>::Batch>),
        device,
        observer,
    )
}

/// `base` with the keys of `hf` replaced (HF `config.json` names); errors name `model.hf.KEY`.
fn overlay<C: Serialize + serde::de::DeserializeOwned>(
    file: &str,
    base: &C,
    hf: &toml::Table,
) -> Result<C, TrainError> {
    let mut json = serde_json::to_value(base).map_err(|e| bad(file, "model", e))?;
    let known: Vec<String> = json
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for (key, value) in hf {
        if !known.contains(key) {
            return Err(bad(
                file,
                &format!("model.hf.{key}"),
                format!("unknown config key (known: {})", known.join(", ")),
            ));
        }
        let v =
            serde_json::to_value(value).map_err(|e| bad(file, &format!("model.hf.{key}"), e))?;
        if let Some(o) = json.as_object_mut() {
            o.insert(key.clone(), v);
        }
    }
    serde_path_to_error::deserialize(json).map_err(|e| {
        let key = format!("model.hf.{}", e.path());
        bad(file, &key, e.into_inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_out(mut f: TrainFile) -> TrainFile {
        f.run.out_dir = Some("out".into());
        f.data = DataConfig {
            validation_fraction: f.data.validation_fraction,
            // The DataConfig default (1024) exceeds the tiny models' context.
            seq_len: f.data.seq_len.min(64),
            batch_size: f.data.batch_size,
            ..DataConfig::single("shards")
        };
        f
    }

    fn ctx(vocab: usize, mask: u32, cls: u32, sep: u32, pad: u32) -> CheckContext {
        CheckContext {
            data_vocab: Some(vocab),
            tokenizer_ids: TokenizerIds {
                mask: Some(mask),
                cls: Some(cls),
                sep: Some(sep),
                pad: Some(pad),
            },
            tokenizer: None,
        }
    }

    fn err(text: &str) -> String {
        match TrainFile::from_toml(text, "t.toml")
            .and_then(|f| with_out(f).check("t.toml", &ctx(100, 4, 1, 2, 0)))
        {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn presets_parse_and_check() {
        let ids = ctx(512, 103, 101, 102, 0);
        let gpt = with_out(TrainFile::preset("gpt-tiny").unwrap())
            .check("gpt-tiny", &ids)
            .unwrap();
        let AnyTaskSpec::GptClm(t) = &gpt.task else {
            panic!("{:?}", gpt.task)
        };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_head),
            (4, 256, 4)
        );
        assert_eq!((t.model.n_positions, t.model.vocab_size), (128, 512));
        assert_eq!(gpt.train.grad_clip, Some(1.0));
        let bert = with_out(TrainFile::preset("bert-tiny").unwrap())
            .check("bert-tiny", &ctx(30522, 103, 101, 102, 0))
            .unwrap();
        let AnyTaskSpec::BertMlmNsp(task) = &bert.task else {
            panic!("{:?}", bert.task)
        };
        let c = &task.model;
        assert_eq!(
            (
                c.num_hidden_layers,
                c.hidden_size,
                c.num_attention_heads,
                c.intermediate_size
            ),
            (2, 128, 2, 512)
        );
        assert_eq!(task.mask_token_id, 103);
        assert_eq!(task.special_token_ids, vec![0, 101, 102, 103]);
        assert_eq!(task.pair_specials.map(|s| s.cls), Some(101));
        // Round trip through --print-config.
        for name in ["gpt-tiny", "bert-tiny", "bart-tiny"] {
            let f = TrainFile::preset(name).unwrap();
            assert_eq!(
                TrainFile::from_toml(&f.to_toml().unwrap(), "x").unwrap(),
                f,
                "{name}"
            );
        }
        assert!(TrainFile::preset("gpt-huge").is_err());
    }

    #[test]
    fn bart_preset_checks() {
        let ids = ctx(500, 3, 0, 2, 1);
        let bart = with_out(TrainFile::preset("bart-tiny").unwrap())
            .check("bart-tiny", &ids)
            .unwrap();
        let AnyTaskSpec::BartDae(task) = &bart.task else {
            panic!("{:?}", bart.task)
        };
        let c = &task.model;
        assert_eq!(
            (c.encoder_layers, c.decoder_layers, c.d_model, c.vocab_size),
            (2, 2, 128, 500)
        );
        assert_eq!((c.pad_token_id, c.decoder_start_token_id), (1, 2));
        assert_eq!((task.bos_token_id, task.eos_token_id), (Some(0), Some(2)));
        assert_eq!(task.special_token_ids, vec![0, 1, 2, 3]);
        assert_eq!(
            task.noise,
            DaeNoise::TextInfilling {
                mask_token_id: 3,
                mask_ratio: 0.3,
                poisson_lambda: 3.0
            }
        );
        // A bad ratio and a mask id outside the vocabulary name the key.
        let e = err(
            "[task]\nkind = \"bart-dae\"\nbos_token_id = 7\nmask_ratio = 2.0\n\
             [data]\nvalidation_fraction = 0.1\n",
        );
        assert!(e.contains("mask_ratio"), "{e}");
        let e = err(
            "[task]\nkind = \"bart-dae\"\nmask_token_id = 100\n[data]\nvalidation_fraction = 0.1\n",
        );
        assert!(e.contains("task.mask_token_id"), "{e}");
    }

    #[test]
    fn plm_kind_checks() {
        let f = TrainFile::from_toml(
            "[task]\nkind = \"plm\"\n[model]\nhf = { n_layer = 2, n_embd = 64 }\n[data]\nseq_len = 64\nvalidation_fraction = 0.1\n",
            "t.toml",
        )
        .unwrap();
        let c = with_out(f)
            .check(
                "t.toml",
                &CheckContext {
                    data_vocab: Some(100),
                    ..Default::default()
                },
            )
            .unwrap();
        let AnyTaskSpec::Plm(t) = c.task else {
            panic!()
        };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_positions, t.k),
            (2, 64, 128, 6)
        );
    }

    #[test]
    fn hf_keys_override_the_size() {
        let f = TrainFile::from_toml(
            "[model]\nhf = { n_layer = 2, n_embd = 64, n_head = 2 }\n[data]\nseq_len = 64\nvalidation_fraction = 0.1\n",
            "t.toml",
        )
        .unwrap();
        let c = with_out(f)
            .check(
                "t.toml",
                &CheckContext {
                    data_vocab: Some(100),
                    ..Default::default()
                },
            )
            .unwrap();
        let AnyTaskSpec::GptClm(t) = c.task else {
            panic!()
        };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_positions),
            (2, 64, 128)
        );
    }

    #[test]
    fn prune_section_is_checked_with_the_run() {
        let base = "[data]\nvalidation_fraction = 0.1\n[run]\ntotal_steps = 100\n";
        let ok = TrainFile::from_toml(&format!("{base}[prune]\nsparsity = 0.5\n"), "t.toml")
            .and_then(|f| with_out(f).check("t.toml", &ctx(100, 4, 1, 2, 0)))
            .unwrap();
        let p = ok.prune.unwrap();
        assert_eq!((p.final_sparsity.get(), p.every), (0.5, 10));
        // Printed and read back, the section is the same.
        let f =
            TrainFile::from_toml(&format!("{base}[prune]\nsparsity = 0.5\n"), "t.toml").unwrap();
        assert_eq!(
            TrainFile::from_toml(&f.to_toml().unwrap(), "t.toml").unwrap(),
            f
        );
        let e = err(&format!("{base}[prune]\nsparsity = 0.5\nend_step = 150\n"));
        assert!(e.contains("t.toml") && e.contains("prune.end_step"), "{e}");
        let e = err(&format!("{base}[prune]\nsparsity = 0.5\nfrequency = 3\n"));
        assert!(e.contains("prune.frequency") && e.contains("line 7"), "{e}");
        let e = err(&format!("{base}[prune]\nsparsity = 1.5\n"));
        assert!(e.contains("prune.sparsity"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = err("[optim]\nlr = 1e-3\nwarmup = 5\n");
        assert!(
            e.contains("t.toml") && e.contains("optim") && e.contains("line 3"),
            "{e}"
        );
        let e = err("[optim]\nlr = \"fast\"\n");
        assert!(e.contains("optim.lr") && e.contains("line 2"), "{e}");
        let e = err("[optim]\nlr = -1.0\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("optim.lr") && e.contains("positive"), "{e}");
        let e = err("[task]\nkind = \"t5\"\n");
        assert!(e.contains("task.kind") && e.contains("line 2"), "{e}");
        // A key of another kind is unknown to this one, with its line.
        let e = err("[task]\nkind = \"gpt-clm\"\nmlm_probability = 0.2\n");
        assert!(e.contains("task") && e.contains("line 3"), "{e}");
        let e = err("[model]\nhf = { n_layers = 3 }\n[data]\nvalidation_fraction = 0.1\n");
        assert!(
            e.contains("model.hf.n_layers") && e.contains("unknown"),
            "{e}"
        );
        let e = err("[model]\nhf = { n_head = 5 }\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("model.hf"), "{e}");
        let e = TrainFile::from_toml("[data]\nseq_len = 4096\n", "t.toml")
            .unwrap()
            .check(
                "t.toml",
                &CheckContext {
                    data_vocab: Some(100),
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.seq_len") && e.contains("n_positions"),
            "{e}"
        );
        let e = err("[run]\neval_every = 10\n");
        assert!(
            e.contains("run.eval_every") && e.contains("validation_fraction"),
            "{e}"
        );
        let e = err("[optim]\nwarmup_steps = 10\n[run]\ntotal_steps = 5\neval_every = 0\n");
        assert!(e.contains("optim.warmup_steps"), "{e}");
        let e = err(
            "[task]\nkind = \"bert-mlm-nsp\"\nmask_token_id = 500\n[data]\nvalidation_fraction = 0.1\n",
        );
        assert!(
            e.contains("task.mask_token_id") && e.contains("vocab_size"),
            "{e}"
        );
        let e = err("[model]\nvocab_size = 50\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("model.vocab_size"), "{e}");
        let e = err("[data]\nbatch_size = 0\nvalidation_fraction = 0.1\n");
        assert!(e.contains("data.batch_size"), "{e}");
        let e = err("[run]\nepochs = 2\neval_every = 0\n");
        assert!(e.contains("run.epochs"), "{e}");
        let mut f = TrainFile::from_toml("[data]\ntrain = \"x.tsv\"\n", "t.toml").unwrap();
        f.run.out_dir = Some("out".into());
        f.run.eval_every = 0;
        let e = f
            .check("t.toml", &ctx(100, 4, 1, 2, 0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.train") && e.contains("token shards"),
            "{e}"
        );
    }
}

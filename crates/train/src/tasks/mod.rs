//! What the generic [`Trainer`](crate::Trainer) trains: a task is a saved **spec** plus a
//! **runtime** built from it.
//!
//! - [`TaskSpec`]: plain serde data (the model config and the objective's settings). It is
//!   what `trainer_state.json` stores and what a resume compares, so it holds everything needed
//!   to rebuild the task. Its [`TaskSpec::KIND`] is the `[task] kind` string of `train.toml`.
//! - [`Task`]: the runtime, built by [`TaskSpec::build`]. It may own what cannot be serialised:
//!   a tokenizer, a verbaliser, a frozen teacher model.
//!
//! A training step is split in three so that wrappers (distillation) can reach every part:
//!
//! 1. [`Task::prepare`]: host-side, turns a source batch into the model input (MLM masks, DAE
//!    noise, PLM orders are drawn here from a seed that is a pure function of the run seed and
//!    the batch position, so resumes are exact).
//! 2. [`Task::forward`]: runs the model and returns [`Outputs`] — logits, plus hidden states
//!    and attention maps on request — and nothing about the loss.
//! 3. [`Task::loss`]: turns input + outputs into a scalar and, for evaluation, metric sums.
//!
//! Every batch source is a [`BatchSource`] (`next_batch`, `position`, `seek`); the perplexity
//! metric is optional ([`Task::perplexity_metric`]); a task's summary metrics may be computed
//! from its sums ([`Task::summarize`], e.g. macro-F1 from a confusion matrix).
//!
//! | kind | spec / runtime | model | batch | eval metrics |
//! |---|---|---|---|---|
//! | `gpt-clm` | [`GptClmSpec`] / [`GptClmTask`] | `Gpt` | `LmBatch` | `lm_loss`, `lm_accuracy` |
//! | `bert-mlm-nsp` | [`BertMlmNspSpec`] / [`BertMlmNspTask`] | `BertForPreTraining` | `PairBatch` | `mlm_*`, `nsp_*` |
//! | `bart-dae` | [`BartDaeSpec`] / [`BartDaeTask`] | `BartForConditionalGeneration` | `LmBatch` | `dae_loss`, `dae_accuracy` |
//! | `plm` | [`PlmSpec`] / [`PlmTask`] | `Plm` | `LmBatch` | `plm_loss`, `plm_accuracy` |
//! | `classify` | [`ClassifySpec`] / [`ClassifyTask`] | `SequenceClassifier` | `ClassBatch` | accuracy, macro-F1, MCC, per class |
//! | `multitask` | [`MultiTaskSpec`] / [`MultiTaskTask`] | `MultiTaskClassifier` | `ClassBatch` | per task |
//! | `cloze` | [`ClozeSpec`] / [`ClozeTask`] | `BertForPreTraining` (MLM head) | `ClassBatch` | as `classify` |
//!
//! Adding a task is one file here: a spec (`impl TaskSpec`), a runtime (`impl Task`), and one
//! line in [`AnyTaskSpec`] (which `train.toml`'s `[task]` section and [`open`] dispatch on).
//! Parameter ids for the optimizer state are handled generically (by module path), so
//! nothing model-specific is needed for exact resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use refinery_model::OutputOptions;

use crate::data::{BatchSource, DataConfig, DataSplit};
use crate::error::TrainError;
use crate::metrics::MetricSums;

pub mod bart_dae;
pub mod bert_mlm_nsp;
pub mod classify;
pub mod cloze;
pub mod gpt_clm;
pub mod multitask;
pub mod plm;

pub use bart_dae::{BartDaeSpec, BartDaeTask, DaeNoise};
pub use bert_mlm_nsp::{BertMlmNspSpec, BertMlmNspTask};
pub use classify::{ClassifySpec, ClassifyTask};
pub use cloze::{ClozeSpec, ClozeTask};
pub use gpt_clm::{GptClmSpec, GptClmTask};
pub use multitask::{MultiTaskSpec, MultiTaskTask};
pub use plm::{PlmSpec, PlmTask};

/// What one forward pass produced, kept apart from the loss so that a wrapper (distillation)
/// can combine any task's outputs with a teacher's.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// The task's predictions `[B, P, C]`: scores over `C` classes at `P` positions (tokens for
    /// language models; `P = 1` and `C` = labels for sequence classification).
    pub logits: Tensor<3>,
    /// Other heads by name, e.g. `("nsp", [B, 2])`.
    pub aux: Vec<(&'static str, Tensor<2>)>,
    /// `[B, T, D]` per layer, embeddings first (only when requested).
    pub hidden_states: Vec<Tensor<3>>,
    /// `[B, H, T, T]` per layer (only when requested).
    pub attentions: Vec<Tensor<4>>,
}

impl Outputs {
    /// Outputs with logits only.
    pub fn logits(logits: Tensor<3>) -> Self {
        Self {
            logits,
            aux: Vec::new(),
            hidden_states: Vec::new(),
            attentions: Vec::new(),
        }
    }

    /// The auxiliary head `name`.
    pub fn aux(&self, name: &str) -> Option<&Tensor<2>> {
        self.aux.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }
}

/// The loss of one micro-batch and, when asked for, what evaluation accumulates.
pub struct Loss {
    /// Scalar `[1]`, differentiable on an autodiff device: what the trainer backpropagates.
    pub loss: Tensor<1>,
    /// Metric sums (`None` unless `metrics` was requested).
    pub metrics: Option<MetricSums>,
}

/// The serialisable half of a task: saved in `trainer_state.json`, compared on resume, and
/// the `[task]` section of `train.toml` once checked.
pub trait TaskSpec: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The `kind` string (`[task] kind`, `trainer_state.json`'s `task_name`).
    const KIND: &'static str;
    /// The runtime this spec builds.
    type Task: Task<Spec = Self>;

    /// Builds the runtime. `checkpoint` is the checkpoint directory being resumed or opened
    /// (tasks that own files, such as a tokenizer, read them from there when they are saved
    /// with the model); `None` for a fresh run.
    fn build(&self, checkpoint: Option<&Path>) -> Result<Self::Task, TrainError>;
}

/// A model + objective the generic trainer can train (the runtime of a [`TaskSpec`]).
pub trait Task {
    type Spec: TaskSpec<Task = Self>;
    /// The burn module (`ModuleDisplay` too, as every `#[derive(Module)]` type is, so that a
    /// wrapper can hold it in a derived module: distillation's student + projections).
    type Model: Module + ModuleDisplay;
    /// What a source yields.
    type Batch;
    /// What the model sees: the batch after the objective's host-side preparation.
    type Input;

    /// The spec this runtime was built from.
    fn spec(&self) -> &Self::Spec;

    /// A freshly initialised model (the caller seeds the device RNG). Fine-tuning tasks start
    /// from their spec's initial checkpoint.
    fn init_model(&self, device: &Device) -> Result<Self::Model, TrainError>;
    /// Writes the model as an HF checkpoint directory (`config.json` + `model.safetensors`,
    /// plus whatever else the task needs to be rebuilt from the directory, e.g. the tokenizer).
    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError>;
    /// Reads a checkpoint written by [`Task::save_model`].
    fn load_model(&self, dir: &Path, device: &Device) -> Result<Self::Model, TrainError>;
    /// Writes the model a run hands out (`best/`, `final/`): by default what
    /// [`Task::save_model`] writes. A wrapper whose checkpoints carry training-only parts
    /// (distillation's learned projections) writes the plain model here.
    fn export_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError> {
        self.save_model(model, dir)
    }
    /// Called by the trainer before every optimizer step with the steps done so far and the
    /// run's total, for schedules a task keeps itself (a distillation temperature); the step
    /// is restored on resume, so such schedules resume exactly. Default: nothing.
    fn begin_step(&self, _step: usize, _total_steps: usize) {}
    /// Called by the trainer after every optimizer step with the updated model, the steps done
    /// (this one included) and the run's total; returns the model to continue with. For
    /// changes to the weights that the optimizer must not undo (gradual pruning re-applies
    /// its masks here). Anything it keeps must be saved with the model ([`Task::save_model`])
    /// for exact resume. Default: the model unchanged.
    fn end_step(
        &self,
        model: Self::Model,
        _step: usize,
        _total_steps: usize,
        _device: &Device,
    ) -> Result<Self::Model, TrainError> {
        Ok(model)
    }
    /// Whether the model after `step` may become the run's best model (a gradual pruning run
    /// counts only models at the final sparsity). Default: always.
    fn selectable(&self, _step: usize, _total_steps: usize) -> bool {
        true
    }

    /// Host-side preparation of one batch. `seed` is a pure function of (run seed, batch
    /// position), for objectives that draw random masks.
    fn prepare(&self, batch: Self::Batch, seed: u64) -> Result<Self::Input, TrainError>;
    /// Real (unpadded) tokens in an input, for tokens/s.
    fn num_tokens(&self, input: &Self::Input) -> usize;
    /// The model's outputs (hidden states and attentions when `opts` asks for them).
    fn forward(
        &self,
        model: &Self::Model,
        input: &Self::Input,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError>;
    /// Loss (and, when `metrics`, evaluation sums) of `outputs` for `input`.
    fn loss(
        &self,
        input: &Self::Input,
        outputs: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError>;

    /// The metric whose mean is a per-token LM loss (perplexity is `exp` of it), if any.
    fn perplexity_metric(&self) -> Option<&'static str> {
        None
    }
    /// The evaluation metrics from accumulated sums (default: every mean).
    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        sums.means()
    }
    /// Task-specific evaluation details (e.g. a confusion matrix), written next to the
    /// metrics; default none.
    fn details(&self, _sums: &MetricSums) -> Option<serde_json::Value> {
        None
    }

    /// The batch source of `split` described by `data`.
    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<Self::Batch> + Send>, TrainError>;

    /// Parameters the optimizer must not update (module-path prefixes, e.g. `bert.layer.0`);
    /// default none.
    fn frozen(&self) -> Vec<String> {
        Vec::new()
    }
    /// Learning-rate multipliers by module-path prefix (layer-wise decay); default none.
    fn lr_scales(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
    /// Files copied into every checkpoint as `(name, source)` (the tokenizer, say).
    fn extra_files(&self) -> Vec<(String, PathBuf)> {
        Vec::new()
    }
}

/// Every task kind, for dispatch on `train.toml`'s `[task]` section and on checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum AnyTaskSpec {
    #[serde(rename = "gpt-clm")]
    GptClm(GptClmSpec),
    #[serde(rename = "bert-mlm-nsp")]
    BertMlmNsp(BertMlmNspSpec),
    #[serde(rename = "bart-dae")]
    BartDae(BartDaeSpec),
    #[serde(rename = "plm")]
    Plm(PlmSpec),
    #[serde(rename = "classify")]
    Classify(ClassifySpec),
    #[serde(rename = "multitask")]
    MultiTask(MultiTaskSpec),
    #[serde(rename = "cloze")]
    Cloze(ClozeSpec),
}

/// Runs `$body` with `$s` bound to the concrete spec inside an [`AnyTaskSpec`] (and `$t` to its
/// type, for turbofish calls): the single place that lists every task kind.
#[macro_export]
macro_rules! with_task_spec {
    ($spec:expr, $s:ident => $body:expr) => {
        match $spec {
            $crate::tasks::AnyTaskSpec::GptClm($s) => $body,
            $crate::tasks::AnyTaskSpec::BertMlmNsp($s) => $body,
            $crate::tasks::AnyTaskSpec::BartDae($s) => $body,
            $crate::tasks::AnyTaskSpec::Plm($s) => $body,
            $crate::tasks::AnyTaskSpec::Classify($s) => $body,
            $crate::tasks::AnyTaskSpec::MultiTask($s) => $body,
            $crate::tasks::AnyTaskSpec::Cloze($s) => $body,
        }
    };
}

impl AnyTaskSpec {
    /// The kind string.
    pub fn kind(&self) -> &'static str {
        fn kind_of<S: TaskSpec>(_: &S) -> &'static str {
            S::KIND
        }
        with_task_spec!(self, s => kind_of(s))
    }

    /// The longest row the model takes (`data.seq_len` defaults for evaluation): the context
    /// of LMs (BART: minus `<s>`, `</s>`), the max length of classifiers.
    pub fn context_len(&self) -> usize {
        match self {
            AnyTaskSpec::GptClm(s) => s.model.n_positions,
            AnyTaskSpec::BertMlmNsp(s) => s.model.max_position_embeddings,
            AnyTaskSpec::BartDae(s) => s.model.max_position_embeddings.saturating_sub(2),
            AnyTaskSpec::Plm(s) => s.model.n_positions,
            AnyTaskSpec::Classify(s) => s.max_len,
            AnyTaskSpec::MultiTask(s) => s.max_len,
            AnyTaskSpec::Cloze(s) => s.max_len,
        }
    }

    /// Whether the task trains on labelled files (classification) rather than token shards.
    pub fn is_labelled(&self) -> bool {
        matches!(
            self,
            AnyTaskSpec::Classify(_) | AnyTaskSpec::MultiTask(_) | AnyTaskSpec::Cloze(_)
        )
    }

    /// Rebuilds a spec from `trainer_state.json`'s `(task_name, task)`.
    pub fn from_state(task_name: &str, task: &serde_json::Value) -> Result<Self, String> {
        let mut v = task.clone();
        match v.as_object_mut() {
            Some(o) => {
                o.insert("kind".into(), serde_json::Value::String(task_name.into()));
            }
            None => return Err("the task is not a JSON object".into()),
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}

/// The trainer state file of a checkpoint directory.
pub use crate::trainer::STATE_FILE;

/// What [`open`] found in a checkpoint directory.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedCheckpoint {
    pub dir: PathBuf,
    /// The task that wrote it (from `trainer_state.json`), or the one its `config.json`
    /// implies (an HF checkpoint from elsewhere).
    pub spec: AnyTaskSpec,
    /// `true` when `spec` came from a trainer state (a checkpoint of ours).
    pub from_state: bool,
}

/// Reads a checkpoint directory and tells which task it is: `trainer_state.json` when present
/// (any of our training checkpoints), else `task.json` (our exported models), else the HF
/// `config.json`'s `architectures`/`model_type`, plus `plm.json` for permutation LMs. Token
/// ids an objective needs (`[MASK]`, ...) come from the directory's `tokenizer.json`.
pub fn open(dir: &Path) -> Result<OpenedCheckpoint, TrainError> {
    open_with(dir, None)
}

/// [`open`] with the token ids of an HF checkpoint taken from `tokenizer` instead of the
/// directory's `tokenizer.json`.
pub fn open_with(dir: &Path, tokenizer: Option<&Path>) -> Result<OpenedCheckpoint, TrainError> {
    let state = dir.join(STATE_FILE);
    if state.is_file() {
        let text = std::fs::read_to_string(&state).map_err(|source| TrainError::Io {
            path: state.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| TrainError::Json {
                path: state.clone(),
                source,
            })?;
        let mut name = v.get("task_name").and_then(|n| n.as_str()).unwrap_or("");
        let mut task = &v["task"];
        // A pruning run's checkpoint holds its wrapped task's model.
        if name == crate::prune::KIND {
            name = task.get("kind").and_then(|n| n.as_str()).unwrap_or("");
            task = &task["task"];
        }
        let spec = AnyTaskSpec::from_state(name, task)
            .map_err(|e| TrainError::InvalidConfig(format!("{}: task: {e}", state.display())))?;
        return Ok(OpenedCheckpoint {
            dir: dir.to_path_buf(),
            spec,
            from_state: true,
        });
    }
    let spec = infer_spec(dir, tokenizer)?;
    Ok(OpenedCheckpoint {
        dir: dir.to_path_buf(),
        spec,
        from_state: false,
    })
}

/// The task an HF checkpoint directory implies (see [`open`]).
fn infer_spec(dir: &Path, tokenizer: Option<&Path>) -> Result<AnyTaskSpec, TrainError> {
    let task_file = dir.join(classify::TASK_FILE);
    if task_file.is_file() {
        let text = std::fs::read_to_string(&task_file).map_err(|source| TrainError::Io {
            path: task_file.clone(),
            source,
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| TrainError::Json {
                path: task_file.clone(),
                source,
            })?;
        // task.json is a bare spec: its kind follows from its fields.
        let kind = if v.get("tasks").is_some() {
            MultiTaskSpec::KIND
        } else if v.get("template").is_some() {
            ClozeSpec::KIND
        } else {
            ClassifySpec::KIND
        };
        let mut spec = AnyTaskSpec::from_state(kind, &v)
            .map_err(|e| TrainError::InvalidConfig(format!("{}: {e}", task_file.display())))?;
        // The directory's own tokenizer, whatever path the run used.
        let tok = dir.join(classify::TOKENIZER_FILE);
        match &mut spec {
            AnyTaskSpec::Classify(s) => {
                *s = ClassifySpec::from_checkpoint(dir)?;
            }
            AnyTaskSpec::MultiTask(s) => {
                s.tokenizer = tok;
                s.init = None;
            }
            AnyTaskSpec::Cloze(s) => {
                s.tokenizer = tok;
                s.init = None;
            }
            _ => {}
        }
        return Ok(spec);
    }
    if dir.join(plm::PLM_FILE).is_file() {
        return Ok(AnyTaskSpec::Plm(plm::PlmSpec::from_dir(dir)?));
    }
    let config = dir.join(refinery_model::hf::CONFIG_FILE);
    let text = std::fs::read_to_string(&config).map_err(|source| TrainError::Io {
        path: config.clone(),
        source,
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|source| TrainError::Json {
        path: config.clone(),
        source,
    })?;
    let model_type = v.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
    let arch = v
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(|a| a.as_str())
        .unwrap_or("");
    let tokenizer = tokenizer
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("tokenizer.json"));
    match (model_type, arch) {
        (_, a) if a.ends_with("ForSequenceClassification") => Ok(AnyTaskSpec::Classify(
            classify::ClassifySpec::from_checkpoint(dir)?,
        )),
        ("gpt2", _) => Ok(AnyTaskSpec::GptClm(GptClmSpec::new(
            refinery_model::hf::read_gpt_config(dir)?,
        ))),
        ("bert", _) => Ok(AnyTaskSpec::BertMlmNsp(BertMlmNspSpec::from_dir(
            dir, &tokenizer,
        )?)),
        ("bart", _) => Ok(AnyTaskSpec::BartDae(BartDaeSpec::from_dir(
            dir, &tokenizer,
        )?)),
        (other, _) => Err(TrainError::InvalidConfig(format!(
            "{}: model_type {other:?} is not gpt2, bert or bart (or a PLM directory with plm.json)",
            config.display()
        ))),
    }
}

/// Host values of an int tensor.
pub(crate) fn int_values<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.into_data().iter::<i64>().collect()
}

/// An int tensor from host values.
pub(crate) fn int_tensor<const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Errors unless the config read from a checkpoint equals the task's.
pub(crate) fn check_same_config<C: PartialEq + Serialize>(
    dir: &Path,
    found: &C,
    expected: &C,
) -> Result<(), TrainError> {
    if found == expected {
        return Ok(());
    }
    let show = |c: &C| serde_json::to_string(c).unwrap_or_default();
    Err(TrainError::InvalidConfig(format!(
        "{}: config.json ({}) differs from the trainer state's model config ({})",
        dir.display(),
        show(found),
        show(expected)
    )))
}

/// Argmax accuracy sums of `logits [B, P, C]` against `labels [B*P]` (entries `< 0` are not
/// scored): `(correct, scored)`.
pub(crate) fn argmax_hits(logits: &Tensor<3>, labels: &[i64]) -> (usize, usize) {
    let [b, p, _] = logits.dims();
    let pred = int_values(logits.clone().argmax(2).reshape([b, p]));
    let mut n = 0;
    let mut correct = 0;
    for (p, &l) in pred.iter().zip(labels) {
        if l >= 0 {
            n += 1;
            correct += usize::from(*p == l);
        }
    }
    (correct, n)
}

/// The metric sums of a token-level objective: `{prefix}_loss` (the mean `loss` weighted by
/// the scored tokens) and `{prefix}_accuracy` (argmax hits of `logits [B, P, C]` against
/// `labels [B*P]`, entries `< 0` not scored).
pub(crate) fn token_metrics(
    prefix: &str,
    loss: &Tensor<1>,
    logits: &Tensor<3>,
    labels: &[i64],
) -> MetricSums {
    let (correct, n) = argmax_hits(logits, labels);
    let n = n as f64;
    let mean = f64::from(loss.clone().into_scalar::<f32>());
    let mut m = MetricSums::default();
    m.add(&format!("{prefix}_loss"), mean * n, n);
    m.add(&format!("{prefix}_accuracy"), correct as f64, n);
    m
}

/// Evaluates the model saved in `dir` (a checkpoint [`open`] understands) as task `spec` on
/// `split` of `data`: `max_batches` batches, or one pass over sources with epochs (labelled
/// data), or 100.
pub fn evaluate_checkpoint(
    dir: &Path,
    spec: &AnyTaskSpec,
    data: &DataConfig,
    split: DataSplit,
    max_batches: Option<u64>,
    device: &Device,
) -> Result<crate::eval::EvalReport, TrainError> {
    fn eval_spec<S: TaskSpec>(
        spec: &S,
        dir: &Path,
        data: &DataConfig,
        split: DataSplit,
        max_batches: Option<u64>,
        device: &Device,
    ) -> Result<crate::eval::EvalReport, TrainError> {
        let task = spec.build(Some(dir))?;
        let model = task.load_model(dir, device)?;
        let mut source = task.open_source(data, split)?;
        let batches = match (max_batches, source.batches_per_epoch()) {
            (Some(m), _) => m.max(1),
            (None, Some(b)) => b,
            (None, None) => 100,
        };
        crate::eval::evaluate(&task, &model, &mut *source, batches as usize, 0, device)
    }
    with_task_spec!(spec, s => eval_spec(s, dir, data, split, max_batches, device))
}

//! A resumable trainer, generic over the model + objective ([`Task`]). [`Trainer::step`] is
//! the whole loop body and reads top to bottom: learning rate, dropout seed, accumulated
//! micro-batches, global-norm clipping, AdamW update.
//!
//! Checkpoint directory:
//!
//! ```text
//! config.json, model.safetensors   HF checkpoint (loads in transformers)
//! optimizer.bpk                    burn AdamW state (burnpack), keyed by parameter id
//! trainer_state.json               task, step, data position, train config, parameter ids,
//!                                  tokens seen, elapsed seconds
//! ```
//!
//! Exact resume: the weights and the optimizer moments are stored as f32 bit for bit, the data
//! source continues from its saved position, and all randomness is a pure function of the
//! seed and a counter: dropout masks come from the device RNG re-seeded from `(seed, step)` at
//! every step, and objectives that mask (MLM) get a seed derived from `(seed, batch
//! position)`. There is no hidden RNG state to save.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::clip::{clip_grad_norm, grad_norm};
use crate::data::splitmix64;
use crate::error::TrainError;
use crate::eval::{evaluate, EvalReport};
use crate::precision::Precision;
use crate::schedule::LrSchedule;
use crate::task::Task;

/// Optimizer-state file inside a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Trainer-state file inside a checkpoint directory (written last).
pub const STATE_FILE: &str = "trainer_state.json";

/// Hyperparameters of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub schedule: LrSchedule,
    /// AdamW decoupled weight decay for weight matrices and embeddings (0.1 as GPT-2/nanoGPT);
    /// biases and LayerNorm parameters are never decayed.
    pub weight_decay: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Global-norm gradient clipping threshold (`None`: no clipping).
    pub grad_clip: Option<f64>,
    /// Micro-batches per optimizer step.
    pub grad_accum_steps: usize,
    /// Seeds the initialisation, the dropout masks (with the step) and the MLM masks (with
    /// the batch position).
    pub seed: u64,
    /// Compute dtype of the forward/backward pass; master weights and AdamW stay f32
    /// (see [`crate::precision`]). Checked against the device when the trainer is built.
    #[serde(default)]
    pub precision: Precision,
}

impl TrainConfig {
    /// nanoGPT-like defaults around a schedule.
    pub fn new(schedule: LrSchedule) -> Self {
        Self {
            schedule,
            weight_decay: 0.1,
            beta_1: 0.9,
            beta_2: 0.95,
            epsilon: 1e-8,
            grad_clip: Some(1.0),
            grad_accum_steps: 1,
            seed: 0,
            precision: Precision::F32,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TrainError> {
        if self.grad_accum_steps == 0 {
            return Err(TrainError::InvalidConfig(
                "grad_accum_steps must be >= 1".into(),
            ));
        }
        let lr_ok = self.schedule.peak_lr > 0.0 && self.schedule.min_lr >= 0.0; // false for NaN
        if !lr_ok {
            return Err(TrainError::InvalidConfig(
                "peak_lr must be > 0 and min_lr >= 0".into(),
            ));
        }
        Ok(())
    }

    /// AdamW with two groups: everything decayed, then biases and LayerNorm (`gamma`/`beta`)
    /// overridden with weight decay 0 (burn: the last matching group wins).
    fn optimizer(&self) -> ModuleOptimizer {
        let adamw = AdamWConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon);
        adamw
            .clone()
            .with_weight_decay(self.weight_decay)
            .init()
            .with_group(
                ParamGroup::from_any_predicates(vec!["bias", "gamma", "beta"]),
                adamw.with_weight_decay(0.0).build(),
                None,
            )
    }
}

/// What one optimizer step reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Optimizer steps done after this one.
    pub step: usize,
    /// Mean loss over the micro-batches.
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens consumed by this step.
    pub tokens: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct TrainerState<T> {
    /// [`Task::NAME`].
    task_name: String,
    task: T,
    step: usize,
    data_position: u64,
    config: TrainConfig,
    /// burn parameter ids by module path: the optimizer state is keyed by them.
    param_ids: BTreeMap<String, u64>,
    #[serde(default)]
    tokens_seen: u64,
    #[serde(default)]
    elapsed_s: f64,
}

/// Model + task + optimizer + step counter.
pub struct Trainer<T: Task> {
    pub task: T,
    /// The model, on an autodiff device.
    pub model: T::Model,
    pub config: TrainConfig,
    /// Optimizer steps done.
    pub step: usize,
    /// Tokens consumed by all steps so far (kept across resumes).
    pub tokens_seen: u64,
    /// Training seconds before this process (from the checkpoint), for the metrics log.
    pub elapsed_before_s: f64,
    optim: ModuleOptimizer,
    device: Device,
}

/// Errors when the device cannot compute in the configured precision.
fn check_precision(config: &TrainConfig, device: &Device) -> Result<(), TrainError> {
    config
        .precision
        .check(device)
        .map_err(|e| TrainError::InvalidConfig(e.to_string()))
}

/// Seed of the objective's randomness (MLM masks) for the batch at `position`.
pub fn batch_seed(seed: u64, position: u64) -> u64 {
    splitmix64(seed ^ 0x6D61_736B ^ splitmix64(position))
}

impl<T: Task> Trainer<T> {
    /// A fresh run: the model is initialised from `config.seed` on `device.autodiff()`.
    pub fn new(task: T, config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let device = device.clone().autodiff();
        check_precision(&config, &device)?;
        device.seed(config.seed);
        let model = task.init_model(&device)?;
        Ok(Self {
            task,
            model,
            optim: config.optimizer(),
            config,
            step: 0,
            tokens_seen: 0,
            elapsed_before_s: 0.0,
            device,
        })
    }

    /// The training (autodiff) device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// One optimizer step over `grad_accum_steps` micro-batches from `data`.
    pub fn step(&mut self, data: &mut T::Source) -> StepStats {
        // 1. Learning rate for this step.
        let lr = self.config.schedule.lr_at(self.step);
        // 2. Dropout masks depend only on (seed, step): resuming needs no RNG state.
        self.device
            .seed(splitmix64(self.config.seed ^ splitmix64(self.step as u64)));

        // 3. Forward/backward each micro-batch; losses are divided by the count so that the
        //    accumulated gradient is the gradient of the mean loss.
        let n = self.config.grad_accum_steps;
        let mut accumulator = GradientsAccumulator::new();
        let mut loss_sum = 0.0;
        let mut tokens = 0;
        // Under bf16/f16 the forward runs on casts of the f32 master parameters (on the tape),
        // so the gradients below arrive in f32 on the master parameters; for f32 a clone.
        let compute = self.config.precision.compute_copy(&self.model);
        for _ in 0..n {
            let seed = batch_seed(self.config.seed, T::position(data));
            let batch = T::next_batch(data);
            tokens += T::num_tokens(&batch);
            let loss = self
                .task
                .forward(&compute, &batch, seed, &self.device, false)
                .loss; // [1]
            let grads = GradientsParams::from_grads(
                loss.clone().div_scalar(n as f64).backward(),
                &self.model,
            );
            accumulator.accumulate(&self.model, grads);
            loss_sum += f64::from(loss.into_scalar::<f32>());
        }
        let mut grads = accumulator.grads();

        // 4. Global-norm clipping (PyTorch clip_grad_norm_).
        let grad_norm = match self.config.grad_clip {
            Some(max_norm) => clip_grad_norm(&self.model, &mut grads, max_norm),
            None => grad_norm(&self.model, &grads),
        };

        // 5. AdamW update.
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step += 1;
        self.tokens_seen += tokens as u64;
        StepStats {
            step: self.step,
            loss: loss_sum / n as f64,
            lr,
            grad_norm,
            tokens,
        }
    }

    /// Evaluates the current model (dropout off, no gradients) on `batches` batches of
    /// `data`, starting at position 0 (so every evaluation sees the same batches).
    pub fn evaluate(&self, data: &mut T::Source, batches: usize) -> EvalReport {
        let model = self.model.valid();
        let device = self.device.clone().inner();
        evaluate(&self.task, &model, data, batches, self.config.seed, &device)
    }

    /// Writes a checkpoint directory (see the module docs); `data_position` is the training
    /// source's position now. `trainer_state.json` is written last.
    pub fn save_checkpoint(&self, dir: &Path, data_position: u64) -> Result<(), TrainError> {
        self.save_checkpoint_with(dir, data_position, self.elapsed_before_s)
    }

    /// [`Trainer::save_checkpoint`] recording `elapsed_s` training seconds in total.
    pub fn save_checkpoint_with(
        &self,
        dir: &Path,
        data_position: u64,
        elapsed_s: f64,
    ) -> Result<(), TrainError> {
        self.task.save_model(&self.model, dir)?;
        let optim_path = dir.join(OPTIMIZER_FILE);
        self.optim
            .save(&optim_path)
            .map_err(|e| TrainError::Optimizer {
                path: optim_path.clone(),
                message: format!("{e:?}"),
            })?;
        let state = TrainerState {
            task_name: T::NAME.to_string(),
            task: self.task.clone(),
            step: self.step,
            data_position,
            config: self.config.clone(),
            param_ids: param_ids(&self.model),
            tokens_seen: self.tokens_seen,
            elapsed_s,
        };
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(&state).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
    }

    /// Resumes from a checkpoint directory; returns the trainer and the data position to
    /// seek the training source to.
    pub fn resume(dir: &Path, device: &Device) -> Result<(Self, u64), TrainError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        let state: TrainerState<T> =
            serde_json::from_str(&text).map_err(|source| TrainError::Json {
                path: path.clone(),
                source,
            })?;
        if state.task_name != T::NAME {
            return Err(TrainError::InvalidConfig(format!(
                "{}: the checkpoint is a {:?} run, not {:?}",
                path.display(),
                state.task_name,
                T::NAME
            )));
        }
        state.config.validate()?;

        let device = device.clone().autodiff();
        check_precision(&state.config, &device)?;
        let mut model = state.task.load_model(dir, &device)?;
        set_param_ids(&mut model, &state.param_ids, &path)?;
        let optim_path = dir.join(OPTIMIZER_FILE);
        let optim =
            state
                .config
                .optimizer()
                .load(&optim_path)
                .map_err(|e| TrainError::Optimizer {
                    path: optim_path.clone(),
                    message: format!("{e:?}"),
                })?;
        let trainer = Self {
            task: state.task,
            model,
            config: state.config,
            step: state.step,
            tokens_seen: state.tokens_seen,
            elapsed_before_s: state.elapsed_s,
            optim,
            device,
        };
        Ok((trainer, state.data_position))
    }
}

/// Module path (`h.0.attn.c_attn.weight`) of every float parameter → its burn id.
#[derive(Default)]
struct IdCollector {
    path: Vec<String>,
    ids: BTreeMap<String, u64>,
}

impl ModuleVisitor for IdCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.path.join("."), param.id.val());
    }
}

/// The burn parameter id of every float parameter, by module path. burn's optimizer state is
/// keyed by these ids and a freshly built model gets fresh ones, so checkpoints store them
/// and [`set_param_ids`] restores them. Works for any module (no per-model table).
pub fn param_ids<M: Module>(model: &M) -> BTreeMap<String, u64> {
    let mut v = IdCollector::default();
    model.visit(&mut v);
    v.ids
}

struct IdSetter<'a> {
    path: Vec<String>,
    ids: &'a BTreeMap<String, u64>,
    missing: Vec<String>,
}

impl ModuleMapper for IdSetter<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        match self.ids.get(&path) {
            Some(&id) => param.id = ParamId::from(id),
            None => self.missing.push(path),
        }
        param
    }
}

/// Restores ids saved by [`param_ids`]; every parameter must be listed (`state_file` names the
/// file in the error).
pub fn set_param_ids<M: Module>(
    model: &mut M,
    ids: &BTreeMap<String, u64>,
    state_file: &Path,
) -> Result<(), TrainError> {
    let mut setter = IdSetter {
        path: Vec::new(),
        ids,
        missing: Vec::new(),
    };
    *model = model.clone().map(&mut setter);
    if setter.missing.is_empty() {
        Ok(())
    } else {
        Err(TrainError::InvalidConfig(format!(
            "{}: no parameter id for {:?}",
            state_file.display(),
            setter.missing
        )))
    }
}

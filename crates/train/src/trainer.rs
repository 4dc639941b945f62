//! A resumable trainer, generic over the model + objective ([`Task`]). [`Trainer::step`] is
//! the whole loop body and reads top to bottom: learning rate, dropout seed, accumulated
//! micro-batches, a finite-loss check, frozen parameters, global-norm clipping, AdamW update
//! (with per-group learning rates for layer-wise decay), and the task's after-step hook
//! ([`Task::end_step`]: gradual pruning's masks).
//!
//! Checkpoint directory:
//!
//! ```text
//! config.json, model.safetensors   HF checkpoint (loads in transformers)
//! optimizer.bpk                    burn AdamW state (burnpack), keyed by parameter id
//! trainer_state.json               task kind + spec, step, data position, train config,
//!                                  parameter ids, tokens seen, elapsed seconds
//! ```
//!
//! Exact resume: the weights and the optimizer moments are stored as f32 bit for bit, the data
//! source continues from its saved position, and all randomness is a pure function of the
//! seed and a counter: dropout masks come from the device RNG re-seeded from `(seed, step)` at
//! every step, and objectives that mask (MLM) get a seed derived from `(seed, batch
//! position)`. There is no hidden RNG state to save. The task is saved as its spec
//! ([`TaskSpec`]) and rebuilt on resume with [`TaskSpec::build`].

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::clip::{clip_grad_norm, grad_norm};
use crate::data::BatchSource;
use crate::error::TrainError;
use crate::eval::{evaluate, EvalReport};
use crate::precision::Precision;
pub use crate::rng::batch_seed;
use crate::rng::splitmix64;
use crate::schedule::LrSchedule;
use crate::tasks::{OutputOptions, Task, TaskSpec};

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
struct TrainerState<S> {
    /// [`TaskSpec::KIND`].
    task_name: String,
    task: S,
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
    /// The parameters that train when some are frozen ([`Task::frozen`]); `None`: all.
    trainable: Option<Vec<ParamId>>,
    /// Parameter groups with a learning-rate multiplier ([`Task::lr_scales`]).
    lr_scales: Vec<(Vec<ParamId>, f64)>,
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

impl<T: Task> Trainer<T> {
    /// A fresh run: the model is initialised from `config.seed` on `device.autodiff()` (or,
    /// for fine-tuning tasks, loaded from the spec's initial checkpoint).
    pub fn new(task: T, config: TrainConfig, device: &Device) -> Result<Self, TrainError> {
        config.validate()?;
        let device = device.clone().autodiff();
        check_precision(&config, &device)?;
        device.seed(config.seed);
        let model = task.init_model(&device)?;
        let (trainable, lr_scales) = param_plan(&task, &model);
        Ok(Self {
            task,
            model,
            trainable,
            lr_scales,
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

    /// One optimizer step over `grad_accum_steps` micro-batches from `data`. A non-finite
    /// loss stops the step before the update (the model and optimizer are unchanged).
    pub fn step(&mut self, data: &mut dyn BatchSource<T::Batch>) -> Result<StepStats, TrainError> {
        // 1. Learning rate for this step (and the task's own schedules, if any).
        let lr = self.config.schedule.lr_at(self.step);
        self.task
            .begin_step(self.step, self.config.schedule.total_steps);
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
            let position = data.position();
            let input = self
                .task
                .prepare(data.next_batch(), batch_seed(self.config.seed, position))?;
            tokens += self.task.num_tokens(&input);
            let outputs =
                self.task
                    .forward(&compute, &input, &self.device, OutputOptions::default())?;
            let loss = self.task.loss(&input, &outputs, &self.device, false)?.loss; // [1]
                                                                                    // 4. A NaN or infinite loss never reaches the weights.
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: self.step + 1,
                    loss: value,
                });
            }
            let mut backward = loss.div_scalar(n as f64).backward();
            // 5. Frozen parameters get no gradient, so AdamW leaves them as they are.
            let grads = match &self.trainable {
                None => GradientsParams::from_grads(backward, &self.model),
                Some(ids) => GradientsParams::from_params(&mut backward, &self.model, ids),
            };
            accumulator.accumulate(&self.model, grads);
            loss_sum += value;
        }
        let mut grads = accumulator.grads();

        // 6. Global-norm clipping (PyTorch clip_grad_norm_).
        let grad_norm = match self.config.grad_clip {
            Some(max_norm) => clip_grad_norm(&self.model, &mut grads, max_norm),
            None => grad_norm(&self.model, &grads),
        };

        // 7. AdamW update, with the task's learning-rate multipliers (layer-wise decay).
        self.model = if self.lr_scales.is_empty() {
            self.optim.step(lr, self.model.clone(), grads)
        } else {
            let mut policy = ModuleLrScheduler::new(lr);
            for (ids, scale) in &self.lr_scales {
                policy = policy.with_group(ParamGroup::from_ids(ids.clone()), lr * scale);
            }
            self.optim.step(policy.step(), self.model.clone(), grads)
        };
        self.step += 1;
        self.tokens_seen += tokens as u64;

        // 8. The task's own change to the new weights (gradual pruning re-applies its masks).
        self.model = self.task.end_step(
            self.model.clone(),
            self.step,
            self.config.schedule.total_steps,
            &self.device,
        )?;
        Ok(StepStats {
            step: self.step,
            loss: loss_sum / n as f64,
            lr,
            grad_norm,
            tokens,
        })
    }

    /// Evaluates the current model (dropout off, no gradients) on `batches` batches of
    /// `data`, starting at position 0 (so every evaluation sees the same batches).
    pub fn evaluate(
        &self,
        data: &mut dyn BatchSource<T::Batch>,
        batches: usize,
    ) -> Result<EvalReport, TrainError> {
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
            task_name: T::Spec::KIND.to_string(),
            task: self.task.spec().clone(),
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
        let state: TrainerState<serde_json::Value> =
            serde_json::from_str(&text).map_err(|source| TrainError::Json {
                path: path.clone(),
                source,
            })?;
        if state.task_name != T::Spec::KIND {
            return Err(TrainError::InvalidConfig(format!(
                "{}: the checkpoint is a {:?} run, not {:?}",
                path.display(),
                state.task_name,
                T::Spec::KIND
            )));
        }
        let spec: T::Spec =
            serde_json::from_value(state.task).map_err(|source| TrainError::Json {
                path: path.clone(),
                source,
            })?;
        let task = spec.build(Some(dir))?;
        state.config.validate()?;

        let device = device.clone().autodiff();
        check_precision(&state.config, &device)?;
        let mut model = task.load_model(dir, &device)?;
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
        let (trainable, lr_scales) = param_plan(&task, &model);
        let trainer = Self {
            task,
            model,
            trainable,
            lr_scales,
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

/// The trainable parameters (`None`: all; else every parameter outside the task's frozen
/// prefixes) and the learning-rate groups, by module-path prefix: `bert.layer.1` covers
/// `bert.layer.1.query.weight` but not `bert.layer.10...`.
type ParamPlan = (Option<Vec<ParamId>>, Vec<(Vec<ParamId>, f64)>);

fn param_plan<T: Task>(task: &T, model: &T::Model) -> ParamPlan {
    let ids = param_ids(model);
    let under = |prefix: &str| -> Vec<ParamId> {
        ids.iter()
            .filter(|(path, _)| {
                path.as_str() == prefix
                    || path
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|(_, &id)| ParamId::from(id))
            .collect()
    };
    let frozen: Vec<ParamId> = task.frozen().iter().flat_map(|p| under(p)).collect();
    let trainable = (!frozen.is_empty()).then(|| {
        ids.values()
            .map(|&id| ParamId::from(id))
            .filter(|id| !frozen.contains(id))
            .collect()
    });
    let scales = task
        .lr_scales()
        .iter()
        .map(|(p, s)| (under(p), *s))
        .filter(|(ids, _)| !ids.is_empty())
        .collect();
    (trainable, scales)
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

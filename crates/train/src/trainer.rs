//! A minimal, resumable causal-LM trainer. [`Trainer::step`] is the whole loop body and
//! reads top to bottom: learning rate, dropout seed, accumulated micro-batches, global-norm
//! clipping, AdamW update.
//!
//! Checkpoint directory:
//!
//! ```text
//! config.json, model.safetensors   HF GPT-2 checkpoint (loads in transformers)
//! optimizer.bpk                    burn AdamW state (burnpack), keyed by parameter id
//! trainer_state.json               step, data position, train config, parameter ids
//! ```
//!
//! Exact resume: the weights and the optimizer moments are stored as f32 bit for bit, the data
//! source continues from its saved position, and dropout masks are drawn from an RNG re-seeded
//! from `(seed, step)` at every step, so there is no hidden RNG state to save.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use refinery_model::hf::{gpt_param_ids, load_gpt, save_gpt, set_gpt_param_ids};
use refinery_model::{Gpt, GptConfig};
use serde::{Deserialize, Serialize};

use crate::clip::{clip_grad_norm, grad_norm};
use crate::data::{splitmix64, TokenBatches};
use crate::error::TrainError;
use crate::objectives::clm_loss;
use crate::schedule::LrSchedule;

/// Optimizer-state file inside a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Trainer-state file inside a checkpoint directory.
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
    /// Seeds the initialisation and (with the step) the dropout masks.
    pub seed: u64,
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
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
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
    /// Mean CLM loss over the micro-batches.
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens consumed by this step.
    pub tokens: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    data_position: u64,
    config: TrainConfig,
    /// burn parameter ids by HF parameter name: the optimizer state is keyed by them.
    param_ids: BTreeMap<String, u64>,
}

/// Model + optimizer + step counter.
pub struct Trainer {
    /// The model, on an autodiff device.
    pub model: Gpt,
    pub model_config: GptConfig,
    pub config: TrainConfig,
    /// Optimizer steps done.
    pub step: usize,
    optim: ModuleOptimizer,
    device: Device,
}

impl Trainer {
    /// A fresh run: the model is initialised from `config.seed` on `device.autodiff()`.
    pub fn new(
        model_config: GptConfig,
        config: TrainConfig,
        device: &Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let model = model_config.init(&device)?;
        Ok(Self {
            model,
            model_config,
            optim: config.optimizer(),
            config,
            step: 0,
            device,
        })
    }

    /// One optimizer step over `grad_accum_steps` micro-batches from `data`.
    pub fn step(&mut self, data: &mut impl TokenBatches) -> StepStats {
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
        for _ in 0..n {
            let batch = data.next_batch();
            tokens += batch.num_tokens();
            let ids = batch.tokens(&self.device); // [B, T]
            let mask = batch.mask(&self.device); // [B, T]
            let logits = self
                .model
                .forward_with(ids.clone(), mask.clone(), Default::default())
                .logits; // [B, T, V]
            let loss = clm_loss(logits, ids, mask); // [1]
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
        StepStats {
            step: self.step,
            loss: loss_sum / n as f64,
            lr,
            grad_norm,
            tokens,
        }
    }

    /// Writes a checkpoint directory (see the module docs); `data_position` is what
    /// [`TokenBatches::position`] returns now.
    pub fn save_checkpoint(&self, dir: &Path, data_position: u64) -> Result<(), TrainError> {
        save_gpt(&self.model, &self.model_config, dir)?;
        let optim_path = dir.join(OPTIMIZER_FILE);
        self.optim
            .save(&optim_path)
            .map_err(|e| TrainError::Optimizer {
                path: optim_path.clone(),
                message: format!("{e:?}"),
            })?;
        let state = TrainerState {
            step: self.step,
            data_position,
            config: self.config.clone(),
            param_ids: gpt_param_ids(&self.model).into_iter().collect(),
        };
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(&state).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
    }

    /// Resumes from a checkpoint directory; returns the trainer and the data position to
    /// [`TokenBatches::seek`] to.
    pub fn resume(dir: &Path, device: &Device) -> Result<(Self, u64), TrainError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        let state: TrainerState =
            serde_json::from_str(&text).map_err(|source| TrainError::Json { path, source })?;
        state.config.validate()?;

        let device = device.clone().autodiff();
        let (model_config, mut model) = load_gpt(dir, &device)?;
        let ids: HashMap<String, u64> = state.param_ids.into_iter().collect();
        set_gpt_param_ids(&mut model, &ids)?;
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
            model,
            model_config,
            config: state.config,
            step: state.step,
            optim,
            device,
        };
        Ok((trainer, state.data_position))
    }
}

//! `plm`: XLNet-style permutation language modelling. The generic trainer drives a
//! two-stream [`Plm`] on factorisation orders drawn by [`PlmObjective`].
//!
//! - Source: any [`BatchSource`]`<LmBatch>` (packed or document-aligned; padding is never in an order).
//! - Orders and targets: [`PlmObjective::sample`]`(batch, s, 0)` with `s` the trainer's
//!   `batch_seed(run seed, batch position)`, so they are a pure function of `(seed, position,
//!   row)` and a resumed run draws the same ones.
//! - Metrics: `plm_loss` (per target), `plm_accuracy` (argmax of the query stream); perplexity
//!   is `exp(plm_loss)`.
//!
//! Checkpoint directory: the shared embeddings and blocks as an HF GPT-2 checkpoint
//! (`config.json` + `model.safetensors`, loadable by `GPT2LMHeadModel`), plus [`PLM_FILE`]
//! (`plm.json`: the [`PlmConfig`] and the query-stream embedding `w`, f32 values that
//! round-trip exactly through JSON).

use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use refinery_model::gpt::Gpt;
use refinery_model::hf::{load_gpt_weights, save_gpt};
use refinery_model::{OutputOptions, Plm, PlmConfig};
use serde::{Deserialize, Serialize};

use super::{check_same_config, token_metrics, Loss, Outputs, Task, TaskSpec};
use crate::data::{lm_batches, BatchSource, DataConfig, DataSplit, LmBatch};
use crate::error::TrainError;
use crate::objectives::plm::{plm_loss, PlmObjective, PlmTargets, XLNET_K};

/// The PLM-specific part of a checkpoint directory.
pub const PLM_FILE: &str = "plm.json";

/// Contents of [`PLM_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlmFile {
    pub config: PlmConfig,
    /// The query-stream start embedding `w` `[n_embd]`.
    pub mask_emb: Vec<f32>,
}

fn default_k() -> usize {
    XLNET_K
}

/// Permutation LM pretraining (the serde shape of `trainer_state.json`'s `task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlmSpec {
    pub model: PlmConfig,
    /// Partial prediction: about `1/k` of each row's tokens are targets (XLNet: 6).
    #[serde(default = "default_k")]
    pub k: usize,
}

impl PlmSpec {
    /// XLNet's partial prediction (`K = 6`).
    pub fn new(model: PlmConfig) -> Self {
        Self { model, k: XLNET_K }
    }

    /// The spec of a PLM checkpoint directory (its `plm.json`).
    pub fn from_dir(dir: &Path) -> Result<Self, TrainError> {
        Ok(Self::new(read_plm_file(dir)?.config))
    }

    pub fn objective(&self) -> Result<PlmObjective, TrainError> {
        PlmObjective::new(self.k)
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.objective()?;
        Ok(())
    }
}

impl TaskSpec for PlmSpec {
    const KIND: &'static str = "plm";
    type Task = PlmTask;

    fn build(&self, _checkpoint: Option<&Path>) -> Result<PlmTask, TrainError> {
        self.validate()?;
        Ok(PlmTask {
            spec: self.clone(),
            objective: self.objective()?,
        })
    }
}

/// The runtime of [`PlmSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlmTask {
    pub spec: PlmSpec,
    objective: PlmObjective,
}

/// A batch with its factorisation orders and targets drawn.
pub struct PlmInput {
    pub batch: LmBatch,
    pub targets: PlmTargets,
}

fn read_plm_file(dir: &Path) -> Result<PlmFile, TrainError> {
    let path = dir.join(PLM_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrainError::Json { path, source })
}

fn gpt_of(model: &Plm) -> Gpt {
    model.gpt.clone()
}

impl Task for PlmTask {
    type Spec = PlmSpec;
    type Model = Plm;
    type Batch = LmBatch;
    type Input = PlmInput;

    fn spec(&self) -> &PlmSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<Plm, TrainError> {
        Ok(self.spec.model.init(device)?)
    }

    fn save_model(&self, model: &Plm, dir: &Path) -> Result<(), TrainError> {
        save_gpt(&gpt_of(model), &self.spec.model.gpt_config(), dir)?;
        let file = PlmFile {
            config: self.spec.model.clone(),
            mask_emb: model.mask_emb.val().into_data().iter::<f32>().collect(),
        };
        let path = dir.join(PLM_FILE);
        let text = serde_json::to_string(&file).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
    }

    fn load_model(&self, dir: &Path, device: &Device) -> Result<Plm, TrainError> {
        let path = dir.join(PLM_FILE);
        let file = read_plm_file(dir)?;
        check_same_config(dir, &file.config, &self.spec.model)?;
        if file.mask_emb.len() != self.spec.model.n_embd {
            return Err(TrainError::Data {
                path,
                message: format!(
                    "mask_emb has {} values, n_embd is {}",
                    file.mask_emb.len(),
                    self.spec.model.n_embd
                ),
            });
        }
        let gpt = load_gpt_weights(
            &self.spec.model.gpt_config(),
            &dir.join("model.safetensors"),
            device,
        )?;
        let d = file.mask_emb.len();
        let w = Tensor::<1>::from_data(TensorData::new(file.mask_emb, [d]), device);
        Ok(Plm::from_gpt(gpt, Param::from_tensor(w)))
    }

    fn prepare(&self, batch: LmBatch, seed: u64) -> Result<PlmInput, TrainError> {
        let targets = self.objective.sample(&batch, seed, 0);
        Ok(PlmInput { batch, targets })
    }
    fn num_tokens(&self, input: &PlmInput) -> usize {
        input.batch.num_tokens()
    }

    fn forward(
        &self,
        model: &Plm,
        input: &PlmInput,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let masks = input.targets.masks(device)?;
        let out = model.forward(input.batch.tokens(device), &masks, opts);
        Ok(Outputs::logits(out.logits)) // [B, P, V]
    }

    fn loss(
        &self,
        input: &PlmInput,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        let loss = plm_loss(out.logits.clone(), input.targets.labels(device)); // [1]
        let metrics =
            metrics.then(|| token_metrics("plm", &loss, &out.logits, &input.targets.labels));
        Ok(Loss { loss, metrics })
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        Some("plm_loss")
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<LmBatch> + Send>, TrainError> {
        lm_batches(&data.for_model_vocab(self.spec.model.vocab_size), split)
    }
}

//! XLNet-style permutation language modelling as a [`Task`]: the generic trainer drives a
//! two-stream [`Plm`] on factorisation orders drawn by [`PlmObjective`].
//!
//! - Source: any [`TokenBatches`] (packed or document-aligned; padding is never in an order).
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

use crate::data::{LmBatch, TokenBatches};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::IGNORE;
use crate::plm::{plm_loss, PlmObjective, XLNET_K};
use crate::task::{check_same_config, Task, TaskOutput};

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

/// Permutation LM pretraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlmTask {
    pub model: PlmConfig,
    /// Partial prediction: about `1/k` of each row's tokens are targets (XLNet: 6).
    #[serde(default = "default_k")]
    pub k: usize,
}

impl PlmTask {
    /// XLNet's partial prediction (`K = 6`).
    pub fn new(model: PlmConfig) -> Self {
        Self { model, k: XLNET_K }
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

fn gpt_of(model: &Plm) -> Gpt {
    model.gpt.clone()
}

impl Task for PlmTask {
    type Model = Plm;
    type Source = dyn TokenBatches;
    type Batch = LmBatch;
    const NAME: &'static str = "plm";
    const LM_METRIC: &'static str = "plm_loss";

    fn next_batch(source: &mut Self::Source) -> LmBatch {
        source.next_batch()
    }
    fn position(source: &Self::Source) -> u64 {
        source.position()
    }
    fn seek(source: &mut Self::Source, position: u64) {
        source.seek(position)
    }
    fn num_tokens(batch: &LmBatch) -> usize {
        batch.num_tokens()
    }

    fn init_model(&self, device: &Device) -> Result<Plm, TrainError> {
        self.validate()?;
        Ok(self.model.init(device)?)
    }

    fn save_model(&self, model: &Plm, dir: &Path) -> Result<(), TrainError> {
        save_gpt(&gpt_of(model), &self.model.gpt_config(), dir)?;
        let file = PlmFile {
            config: self.model.clone(),
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
        self.validate()?;
        let path = dir.join(PLM_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        let file: PlmFile = serde_json::from_str(&text).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        check_same_config(dir, &file.config, &self.model)?;
        if file.mask_emb.len() != self.model.n_embd {
            return Err(TrainError::Data {
                path,
                message: format!(
                    "mask_emb has {} values, n_embd is {}",
                    file.mask_emb.len(),
                    self.model.n_embd
                ),
            });
        }
        let gpt = load_gpt_weights(
            &self.model.gpt_config(),
            &dir.join("model.safetensors"),
            device,
        )?;
        let d = file.mask_emb.len();
        let w = Tensor::<1>::from_data(TensorData::new(file.mask_emb, [d]), device);
        Ok(Plm::from_gpt(gpt, Param::from_tensor(w)))
    }

    /// # Panics
    ///
    /// If `k` is 0 (rejected by `init_model`/`load_model`, so not for a task the trainer
    /// built) or the sampled orders are inconsistent (they are permutations of each row's real
    /// positions by construction).
    fn forward(
        &self,
        model: &Plm,
        batch: &LmBatch,
        seed: u64,
        device: &Device,
        metrics: bool,
    ) -> TaskOutput {
        let objective = PlmObjective { k: self.k.max(1) };
        let targets = objective.sample(batch, seed, 0);
        let masks = match targets.masks(device) {
            Ok(m) => m,
            Err(e) => panic!("PLM masks for sampled orders: {e}"),
        };
        let logits = model
            .forward(batch.tokens(device), &masks, OutputOptions::default())
            .logits; // [B, P, V]
        let predicted: Option<Vec<i64>> = metrics.then(|| {
            let [b, p, _] = logits.dims();
            logits
                .clone()
                .argmax(2)
                .reshape([b, p])
                .into_data()
                .iter::<i64>()
                .collect()
        });
        let loss = plm_loss(logits, targets.labels(device)); // [1]
        let metrics = predicted.map(|pred| {
            let (mut n, mut correct) = (0usize, 0usize);
            for (p, &l) in pred.iter().zip(&targets.labels) {
                if l != IGNORE {
                    n += 1;
                    correct += usize::from(*p == l);
                }
            }
            let n = n as f64;
            let mean = f64::from(loss.clone().into_scalar::<f32>());
            let mut m = MetricSums::default();
            m.add("plm_loss", mean * n, n);
            m.add("plm_accuracy", correct as f64, n);
            m
        });
        TaskOutput { loss, metrics }
    }
}

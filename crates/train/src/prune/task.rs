//! [`PrunedTask`]: any task, trained with gradual magnitude pruning. It delegates everything
//! to the wrapped task and adds one thing, after every optimizer step
//! ([`Task::end_step`]):
//!
//! 1. at the schedule's pruning steps, the masks grow to `s_t` by magnitude
//!    ([`super::grow_masks`], the rules of one-shot pruning, on checkpoint names and layout);
//! 2. every masked weight is set to `+0.0`.
//!
//! So pruned weights are exactly zero after every step, whatever AdamW's moments say, and
//! every forward pass runs on the pruned model. The masks are part of the checkpoint
//! ([`MASKS_FILE`], one `U8` tensor per pruned weight, checkpoint layout): a resumed run
//! continues with the same masks, and the schedule is a pure function of the step, so resumes
//! are exact. Exported models (`best/`, `final/`) are the wrapped task's plain checkpoints.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use refinery_model::hf::{param_layout, HfParams, ParamLayout};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::schedule::GradualPruning;
use super::select::{grow_masks, tensor_role, Sparsity};
use crate::data::{BatchSource, DataConfig, DataSplit};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::tasks::{Loss, OutputOptions, Outputs, Task, TaskSpec};

/// The masks inside a training checkpoint of a pruning run.
pub const MASKS_FILE: &str = "prune_masks.safetensors";
/// `trainer_state.json`'s `task_name` of a pruning run (the wrapped kind is in the spec).
pub const KIND: &str = "pruned";

/// A task spec with gradual pruning: what `trainer_state.json` stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunedSpec<S> {
    /// The wrapped task's kind.
    pub kind: String,
    pub task: S,
    pub pruning: GradualPruning,
}

impl<S: TaskSpec> PrunedSpec<S> {
    pub fn new(task: S, pruning: GradualPruning) -> Self {
        Self {
            kind: S::KIND.to_string(),
            task,
            pruning,
        }
    }
}

impl<S: TaskSpec> TaskSpec for PrunedSpec<S>
where
    <S::Task as Task>::Model: HfParams + Clone,
{
    const KIND: &'static str = KIND;
    type Task = PrunedTask<S::Task>;

    fn build(&self, checkpoint: Option<&Path>) -> Result<Self::Task, TrainError> {
        Ok(PrunedTask {
            spec: self.clone(),
            inner: self.task.build(checkpoint)?,
            masks: RefCell::new(None),
        })
    }
}

/// One pruned tensor's mask.
struct Mask {
    /// Checkpoint shape `[rows, cols]`.
    dims: Vec<usize>,
    /// `true` = pruned, checkpoint layout.
    pruned: Vec<bool>,
    /// The same in burn's layout, on the training device.
    tensor: Tensor<2, Bool>,
}

/// The runtime of a [`PrunedSpec`].
pub struct PrunedTask<T: Task> {
    spec: PrunedSpec<T::Spec>,
    /// The wrapped task's runtime.
    pub inner: T,
    /// By checkpoint name; `None` before the first pruning step.
    masks: RefCell<Option<BTreeMap<String, Mask>>>,
}

/// Transposes a row-major `[rows, cols]` matrix of anything.
fn transpose<V: Copy + Default>(values: &[V], rows: usize, cols: usize) -> Vec<V> {
    let mut out = vec![V::default(); values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The checkpoint layout of the values of a parameter read in burn's layout.
fn to_checkpoint<V: Copy + Default>(l: &ParamLayout, burn: Vec<V>) -> Vec<V> {
    if l.transposed {
        transpose(&burn, l.dims[1], l.dims[0])
    } else {
        burn
    }
}

fn mask_tensor(l: &ParamLayout, pruned: &[bool], device: &Device) -> Tensor<2, Bool> {
    let (values, shape) = if l.transposed {
        (
            transpose(pruned, l.dims[0], l.dims[1]),
            [l.dims[1], l.dims[0]],
        )
    } else {
        (pruned.to_vec(), [l.dims[0], l.dims[1]])
    };
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Host values of the parameters in `ids`, burn layout.
struct Reader<'a> {
    ids: &'a HashMap<ParamId, usize>,
    values: Vec<Vec<f32>>,
}

impl ModuleVisitor for Reader<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(&i) = self.ids.get(&param.id) {
            self.values[i] = param.val().into_data().iter::<f32>().collect();
        }
    }
}

/// Sets the masked weights to `+0.0`, keeping ids and gradient tracking.
struct Zeroer<'a> {
    masks: HashMap<ParamId, &'a Tensor<2, Bool>>,
}

impl ModuleMapper for Zeroer<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(mask) = self.masks.get(&param.id) else {
            return param;
        };
        let mask = (*mask).clone();
        param.map(|t| {
            // Off the tape (on the inner backend), then back as a fresh leaf.
            let (autodiff, tracked) = (t.is_autodiff(), t.is_require_grad());
            let mask: Tensor<D, Bool> = mask.inner().reshape(t.dims());
            let t = t.inner().mask_fill(mask, 0.0);
            match (autodiff, tracked) {
                (true, true) => t.autodiff().require_grad(),
                (true, false) => t.autodiff(),
                (false, _) => t,
            }
        })
    }
}

impl<T: Task> PrunedTask<T>
where
    T::Model: HfParams + Clone,
{
    /// The tensors the rules select, in name order (the tie order).
    fn selected(&self, model: &T::Model) -> Vec<ParamLayout> {
        let mut v: Vec<ParamLayout> = param_layout(model)
            .into_iter()
            .filter(|l| tensor_role(&l.name, &l.dims).selected(self.spec.pruning.include_head))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Grows the masks to `sparsity` by the magnitudes of `model`'s weights now.
    fn grow(&self, model: &T::Model, sparsity: f64, device: &Device) -> Result<(), TrainError> {
        let layout = self.selected(model);
        if layout.is_empty() {
            return Err(TrainError::InvalidConfig(format!(
                "[prune]: the model has no prunable tensors (2-D Linear `*.weight`{})",
                if self.spec.pruning.include_head {
                    ""
                } else {
                    "; heads stay dense without prune.include_head"
                }
            )));
        }
        let ids: HashMap<ParamId, usize> =
            layout.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
        let mut reader = Reader {
            ids: &ids,
            values: vec![Vec::new(); layout.len()],
        };
        model.visit(&mut reader);
        let values: Vec<Vec<f32>> = layout
            .iter()
            .zip(reader.values)
            .map(|(l, v)| to_checkpoint(l, v))
            .collect();
        let mut slot = self.masks.borrow_mut();
        let old = slot.take();
        let mut masks: Vec<Vec<bool>> = layout
            .iter()
            .zip(&values)
            .map(|(l, v)| match old.as_ref().and_then(|m| m.get(&l.name)) {
                Some(m) => m.pruned.clone(),
                None => vec![false; v.len()],
            })
            .collect();
        let group: Vec<&[f32]> = values.iter().map(|v| &v[..]).collect();
        let s = Sparsity::new(sparsity)?;
        grow_masks(&group, &mut masks, s, self.spec.pruning.scope);
        let new = layout
            .iter()
            .zip(masks)
            .map(|(l, pruned)| {
                let tensor = mask_tensor(l, &pruned, device);
                let m = Mask {
                    dims: l.dims.clone(),
                    pruned,
                    tensor,
                };
                (l.name.clone(), m)
            })
            .collect();
        *slot = Some(new);
        Ok(())
    }

    /// `model` with every masked weight at `+0.0`.
    fn apply(&self, model: T::Model) -> T::Model {
        let masks = self.masks.borrow();
        let Some(masks) = masks.as_ref() else {
            return model;
        };
        let mut zeroer = Zeroer {
            masks: param_layout(&model)
                .into_iter()
                .filter_map(|l| masks.get(&l.name).map(|m| (l.id, &m.tensor)))
                .collect(),
        };
        model.map(&mut zeroer)
    }

    fn save_masks(&self, dir: &Path) -> Result<(), TrainError> {
        let masks = self.masks.borrow();
        let Some(masks) = masks.as_ref() else {
            return Ok(());
        };
        let path = dir.join(MASKS_FILE);
        let st_err = |e: safetensors::SafeTensorError| TrainError::Data {
            path: path.clone(),
            message: e.to_string(),
        };
        let bytes: Vec<(&String, Vec<u8>)> = masks
            .iter()
            .map(|(n, m)| (n, m.pruned.iter().map(|&p| u8::from(p)).collect()))
            .collect();
        let views = bytes
            .iter()
            .zip(masks.values())
            .map(|((n, b), m)| TensorView::new(Dtype::U8, m.dims.clone(), b).map(|v| (*n, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(st_err)?;
        let metadata = HashMap::from([("format".to_string(), "refinery-prune-masks".to_string())]);
        safetensors::serialize_to_file(views, Some(metadata), &path).map_err(st_err)
    }

    /// Reads the masks saved with a checkpoint of `model` (none before the first pruning
    /// step). Every pruned tensor must be there, `U8` 0/1 with the tensor's shape.
    fn load_masks(
        &self,
        dir: &Path,
        model: &T::Model,
        device: &Device,
    ) -> Result<Option<BTreeMap<String, Mask>>, TrainError> {
        let path = dir.join(MASKS_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        let bad = |message: String| TrainError::Data {
            path: path.clone(),
            message,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let layout = self.selected(model);
        if st.len() != layout.len() {
            return Err(bad(format!(
                "{} masks, but the model has {} prunable tensors",
                st.len(),
                layout.len()
            )));
        }
        let mut masks = BTreeMap::new();
        for l in &layout {
            let view = st
                .tensor(&l.name)
                .map_err(|_| bad(format!("no mask for `{}`", l.name)))?;
            if view.dtype() != Dtype::U8 || view.shape() != l.dims.as_slice() {
                return Err(bad(format!(
                    "mask `{}` is {:?} {:?}, expected U8 {:?}",
                    l.name,
                    view.dtype(),
                    view.shape(),
                    l.dims
                )));
            }
            let pruned = view
                .data()
                .iter()
                .map(|&b| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    other => Err(bad(format!("mask `{}` holds {other} (not 0/1)", l.name))),
                })
                .collect::<Result<Vec<bool>, _>>()?;
            let tensor = mask_tensor(l, &pruned, device);
            let m = Mask {
                dims: l.dims.clone(),
                pruned,
                tensor,
            };
            masks.insert(l.name.clone(), m);
        }
        Ok(Some(masks))
    }

    /// The pruned share of the masked tensors now (`None` before the first pruning step).
    pub fn mask_sparsity(&self) -> Option<f64> {
        let masks = self.masks.borrow();
        let masks = masks.as_ref()?;
        let n: usize = masks.values().map(|m| m.pruned.len()).sum();
        let k: usize = masks
            .values()
            .map(|m| m.pruned.iter().filter(|&&p| p).count())
            .sum();
        Some(k as f64 / n.max(1) as f64)
    }
}

impl<T: Task> Task for PrunedTask<T>
where
    T::Model: HfParams + Clone,
{
    type Spec = PrunedSpec<T::Spec>;
    type Model = T::Model;
    type Batch = T::Batch;
    type Input = T::Input;

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    /// The wrapped task's model; with `t_0 = 0` and `s_i > 0`, pruned to `s_i` before the
    /// first step.
    fn init_model(&self, device: &Device) -> Result<Self::Model, TrainError> {
        self.masks.replace(None);
        let model = self.inner.init_model(device)?;
        let p = &self.spec.pruning;
        if p.starts_at_zero() && p.initial_sparsity.get() > 0.0 {
            self.grow(&model, p.initial_sparsity.get(), device)?;
            return Ok(self.apply(model));
        }
        Ok(model)
    }

    /// The wrapped task's checkpoint plus [`MASKS_FILE`] once there are masks.
    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError> {
        self.inner.save_model(model, dir)?;
        self.save_masks(dir)
    }

    /// The wrapped task's model; the masks saved with it become this run's.
    fn load_model(&self, dir: &Path, device: &Device) -> Result<Self::Model, TrainError> {
        let model = self.inner.load_model(dir, device)?;
        let masks = self.load_masks(dir, &model, device)?;
        self.masks.replace(masks);
        Ok(model)
    }

    fn export_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError> {
        self.inner.export_model(model, dir)
    }

    fn begin_step(&self, step: usize, total_steps: usize) {
        self.inner.begin_step(step, total_steps);
    }

    /// Grows the masks at pruning steps, then zeroes every masked weight.
    fn end_step(
        &self,
        model: Self::Model,
        step: usize,
        total_steps: usize,
        device: &Device,
    ) -> Result<Self::Model, TrainError> {
        let model = self.inner.end_step(model, step, total_steps, device)?;
        let schedule = self.spec.pruning.resolve(total_steps)?;
        if schedule.prunes_at(step) {
            self.grow(&model, schedule.sparsity_at(step), device)?;
        }
        Ok(self.apply(model))
    }

    /// Only models at the final sparsity compete for `best/`.
    fn selectable(&self, step: usize, total_steps: usize) -> bool {
        self.spec
            .pruning
            .resolve(total_steps)
            .map_or(true, |s| s.done_at(step))
            && self.inner.selectable(step, total_steps)
    }

    fn prepare(&self, batch: T::Batch, seed: u64) -> Result<T::Input, TrainError> {
        self.inner.prepare(batch, seed)
    }

    fn num_tokens(&self, input: &T::Input) -> usize {
        self.inner.num_tokens(input)
    }

    fn forward(
        &self,
        model: &Self::Model,
        input: &T::Input,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        self.inner.forward(model, input, device, opts)
    }

    fn loss(
        &self,
        input: &T::Input,
        outputs: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        self.inner.loss(input, outputs, device, metrics)
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        self.inner.perplexity_metric()
    }

    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        self.inner.summarize(sums)
    }

    fn details(&self, sums: &MetricSums) -> Option<serde_json::Value> {
        self.inner.details(sums)
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<T::Batch> + Send>, TrainError> {
        self.inner.open_source(data, split)
    }

    fn frozen(&self) -> Vec<String> {
        self.inner.frozen()
    }

    fn lr_scales(&self) -> Vec<(String, f64)> {
        self.inner.lr_scales()
    }

    fn extra_files(&self) -> Vec<(String, PathBuf)> {
        self.inner.extra_files()
    }
}

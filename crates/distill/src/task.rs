//! [`DistillTask`]: the runtime of a [`DistillSpec`], a [`Task`] the generic trainer trains
//! like any other. It owns the student's task runtime, the teacher's task runtime and the
//! frozen teacher model.
//!
//! One training step:
//!
//! 1. `prepare`: the student task's (the teacher sees the same input, so teacher and
//!    student must share the tokenizer);
//! 2. `forward`: the student, asking for hidden states / attention maps when a loss needs
//!    them; hidden states go through the learned projections (`W_e` for the embeddings,
//!    `W_h` for the layers) when the student is narrower;
//! 3. `loss`: the teacher runs on the inner (non-autodiff) device — no tape, no optimizer
//!    state, no dropout — or its logits come from the cache; its tensors enter the student's
//!    graph as constants. The terms are weighted and summed.
//!
//! Evaluation (`loss` with `metrics`) is the student task's own loss and metrics, so a
//! distilled student's dev numbers compare directly with an undistilled one's, and the
//! teacher does not run.

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_train::data::{BatchSource, DataConfig, DataSplit};
use refinery_train::metrics::MetricSums;
use refinery_train::tasks::OutputOptions;
use refinery_train::{Loss, Outputs, Task, TaskSpec, TrainError};

use crate::cache::{CachedLogits, TeacherCache};
use crate::error::DistillError;
use crate::kinds::Distillable;
use crate::losses::{attention_loss, hidden_loss, soft_kl, soft_kl_top_k};
use crate::model::DistillModel;
use crate::spec::{check_pair, DistillSpec, Resolved};
use crate::teacher::teacher_hash;

/// The runtime of a [`DistillSpec`].
pub struct DistillTask<T: Task> {
    spec: DistillSpec<T::Spec>,
    /// The student's task runtime.
    pub student: T,
    /// The teacher's task runtime (runs the teacher's forward).
    pub teacher_task: T,
    /// The frozen teacher, on the inner device (loaded on first use).
    teacher: OnceCell<T::Model>,
    cache: Option<TeacherCache>,
    resolved: Resolved,
    /// The soft loss's temperature at the current step.
    temperature: Cell<f64>,
}

impl<T: Task> std::fmt::Debug for DistillTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistillTask")
            .field("teacher", &self.spec.teacher_dir)
            .field("losses", &self.spec.losses)
            .finish()
    }
}

fn float2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn add(total: Option<Tensor<1>>, term: Tensor<1>, weight: f64) -> Option<Tensor<1>> {
    if weight == 0.0 {
        return total;
    }
    let term = term.mul_scalar(weight);
    Some(match total {
        Some(t) => t + term,
        None => term,
    })
}

impl<T: Task> DistillTask<T>
where
    T::Spec: Distillable,
{
    /// Builds the runtime: both task runtimes, the teacher's identity check (its weights must
    /// still hash to the spec's), the cache (checked against the same hash) and the pairing
    /// checks.
    pub fn build(
        spec: &DistillSpec<T::Spec>,
        checkpoint: Option<&Path>,
    ) -> Result<Self, DistillError> {
        let expected = spec.hash()?;
        let found = teacher_hash(&spec.teacher_dir)?;
        if found != expected {
            return Err(DistillError::InvalidConfig(format!(
                "{}: the teacher's weights changed since this run started (hash {}, the run \
                 was made with {}): restore the teacher or start a new run",
                spec.teacher_dir.display(),
                crate::teacher::hash_string(found),
                spec.teacher_hash
            )));
        }
        let resolved = check_pair(
            &spec.teacher,
            &spec.teacher_dir,
            &spec.student,
            spec.student_init.as_deref(),
            &spec.losses,
            spec.cache.is_some(),
        )?;
        let cache = match &spec.cache {
            Some(path) => Some(TeacherCache::open(path, expected)?),
            None => None,
        };
        let student = spec.student.build(checkpoint)?;
        let teacher_task = spec.teacher.build(Some(&spec.teacher_dir))?;
        let temperature = spec.losses.soft.as_ref().map_or(1.0, |s| s.temperature);
        Ok(Self {
            spec: spec.clone(),
            student,
            teacher_task,
            teacher: OnceCell::new(),
            cache,
            resolved,
            temperature: Cell::new(temperature),
        })
    }

    /// The frozen teacher on `device` (an inner device), loaded on first use.
    pub fn teacher(&self, device: &Device) -> Result<&T::Model, TrainError> {
        if let Some(t) = self.teacher.get() {
            return Ok(t);
        }
        let model = self
            .teacher_task
            .load_model(&self.spec.teacher_dir, device)?;
        let _ = self.teacher.set(model);
        self.teacher.get().ok_or_else(|| {
            TrainError::InvalidConfig("the teacher could not be kept in memory".into())
        })
    }

    /// The teacher's outputs for `input`, with what the losses need, on the inner device.
    pub fn teacher_outputs(
        &self,
        input: &T::Input,
        device: &Device,
    ) -> Result<Outputs, TrainError> {
        let inner = device.clone().inner();
        let teacher = self.teacher(&inner)?;
        self.teacher_task
            .forward(teacher, input, &inner, self.needed())
    }

    /// The soft loss's temperature at the current step.
    pub fn temperature(&self) -> f64 {
        self.temperature.get()
    }

    /// What the losses need from a forward pass.
    fn needed(&self) -> OutputOptions {
        let l = &self.spec.losses;
        OutputOptions {
            hidden_states: l.hidden.is_some() || l.embedding.is_some(),
            attentions: l.attention.is_some(),
        }
    }

    fn missing(&self, who: &str, what: &str, have: usize, need: usize) -> TrainError {
        DistillError::Mismatch {
            teacher: self.spec.teacher_dir.display().to_string(),
            student: crate::spec::student_name(
                &self.spec.student,
                self.spec.student_init.as_deref(),
            ),
            message: format!(
                "the {who} returned {have} {what}, but the configured losses need {need} (a \
                 model without the outputs a loss needs)"
            ),
        }
        .into()
    }

    /// The teacher's logits for the soft loss: live, or from the cache.
    fn soft_term(
        &self,
        input: &T::Input,
        student: &Outputs,
        teacher: Option<&Outputs>,
        mask: Option<Tensor<2>>,
        device: &Device,
    ) -> Result<Tensor<1>, TrainError> {
        let t = self.temperature.get();
        let [_, p, _] = student.logits.dims();
        match (&self.cache, teacher) {
            (Some(cache), _) => {
                let keys = T::Spec::row_keys(input);
                match cache.lookup(&keys, p)? {
                    CachedLogits::Dense { values, shape } => {
                        let tl = Tensor::<3>::from_data(TensorData::new(values, shape), device);
                        Ok(soft_kl(student.logits.clone(), tl, t, mask))
                    }
                    CachedLogits::TopK {
                        indices,
                        values,
                        shape,
                    } => {
                        let idx =
                            Tensor::<3, Int>::from_data(TensorData::new(indices, shape), device);
                        let v = Tensor::<3>::from_data(TensorData::new(values, shape), device);
                        Ok(soft_kl_top_k(student.logits.clone(), idx, v, t, mask))
                    }
                }
            }
            (None, Some(out)) => {
                let (sd, td) = (student.logits.dims(), out.logits.dims());
                if sd != td {
                    return Err(self.missing(
                        "teacher",
                        &format!("logits {td:?} (the student's are {sd:?});"),
                        0,
                        1,
                    ));
                }
                Ok(soft_kl(student.logits.clone(), out.logits.clone(), t, mask))
            }
            (None, None) => Err(TrainError::InvalidConfig(
                "soft loss without a teacher or a cache".into(),
            )),
        }
    }
}

impl<T: Task> Task for DistillTask<T>
where
    T::Spec: Distillable,
{
    type Spec = DistillSpec<T::Spec>;
    type Model = DistillModel<T::Model>;
    type Batch = T::Batch;
    type Input = T::Input;

    fn spec(&self) -> &Self::Spec {
        &self.spec
    }

    /// The student from its initial checkpoint (or its task's own initialisation), fresh
    /// projections, and the teacher loaded (so a bad teacher fails before step 1).
    fn init_model(&self, device: &Device) -> Result<Self::Model, TrainError> {
        let student = match &self.spec.student_init {
            Some(dir) => self.student.load_model(dir, device)?,
            None => self.student.init_model(device)?,
        };
        self.teacher(&device.clone().inner())?;
        Ok(DistillModel::new(
            student,
            self.resolved.projections,
            device,
        ))
    }

    fn save_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError> {
        self.student.save_model(&model.student, dir)?;
        Ok(model.save_projections(dir)?)
    }

    fn load_model(&self, dir: &Path, device: &Device) -> Result<Self::Model, TrainError> {
        let student = self.student.load_model(dir, device)?;
        let model = DistillModel::new(student, self.resolved.projections, device);
        Ok(model.load_projections(dir, device)?)
    }

    /// The student alone: the projections are discarded.
    fn export_model(&self, model: &Self::Model, dir: &Path) -> Result<(), TrainError> {
        self.student.export_model(&model.student, dir)
    }

    fn begin_step(&self, step: usize, total_steps: usize) {
        if let Some(s) = &self.spec.losses.soft {
            let t = match s.final_temperature {
                Some(end) => {
                    let f = (step as f64 / total_steps.max(1) as f64).min(1.0);
                    s.temperature + (end - s.temperature) * f
                }
                None => s.temperature,
            };
            self.temperature.set(t);
        }
        self.student.begin_step(step, total_steps);
    }

    fn prepare(&self, batch: T::Batch, seed: u64) -> Result<T::Input, TrainError> {
        self.student.prepare(batch, seed)
    }

    fn num_tokens(&self, input: &T::Input) -> usize {
        self.student.num_tokens(input)
    }

    /// The student's outputs. On a training (autodiff) device it also returns what the
    /// losses need, with hidden states projected to the teacher's width; evaluation (the
    /// inner device) gets plain outputs.
    fn forward(
        &self,
        model: &Self::Model,
        input: &T::Input,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        if !device.is_autodiff() {
            return self.student.forward(&model.student, input, device, opts);
        }
        let need = self.needed();
        let opts = OutputOptions {
            hidden_states: opts.hidden_states || need.hidden_states,
            attentions: opts.attentions || need.attentions,
        };
        let mut out = self.student.forward(&model.student, input, device, opts)?;
        if !out.hidden_states.is_empty() {
            if let Some(w) = &model.embedding_proj {
                out.hidden_states[0] = w.forward(out.hidden_states[0].clone());
            }
            if let Some(w) = &model.hidden_proj {
                for h in out.hidden_states.iter_mut().skip(1) {
                    *h = w.forward(h.clone());
                }
            }
        }
        Ok(out)
    }

    fn loss(
        &self,
        input: &T::Input,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        // Evaluation: the student's own task.
        if metrics {
            return self.student.loss(input, out, device, true);
        }
        let l = &self.spec.losses;
        let labelled = T::Spec::is_labelled(input);
        let mut total: Option<Tensor<1>> = None;

        // 1. Hard loss on gold labels: α·CE with a soft loss, else `hard`.
        let hard_weight = match &l.soft {
            Some(s) => s.weight * s.alpha,
            None => l.hard,
        };
        if labelled && hard_weight > 0.0 {
            let hard = self.student.loss(input, out, device, false)?.loss;
            total = add(total, hard, hard_weight);
        }

        // 2. The teacher (live unless the cache serves everything).
        let live = l.needs_teacher_internals() || (l.soft.is_some() && self.cache.is_none());
        let teacher = if live {
            Some(self.teacher_outputs(input, device)?)
        } else {
            None
        };
        let [b, _, _] = out.logits.dims();

        // 3. Soft labels: (1 − α)·T²·KL, or T²·KL alone on unlabelled data.
        if let Some(s) = &l.soft {
            let [_, p, _] = out.logits.dims();
            let mask = T::Spec::prediction_mask(input).map(|m| float2(m, [b, p], device));
            let kd = self.soft_term(input, out, teacher.as_ref(), mask, device)?;
            let w = if labelled {
                s.weight * (1.0 - s.alpha)
            } else {
                s.weight
            };
            total = add(total, kd, w);
        }

        // 4. Intermediate layers: attention maps, hidden states, embeddings.
        if let Some(t) = &teacher {
            let token_mask = T::Spec::token_mask(input).map(|m| {
                let n = m.len() / b.max(1);
                float2(m, [b, n], device)
            });
            if let Some(a) = &l.attention {
                let need = self
                    .resolved
                    .attention
                    .iter()
                    .map(|p| p.1)
                    .max()
                    .unwrap_or(0);
                let have_s = self
                    .resolved
                    .attention
                    .iter()
                    .map(|p| p.0)
                    .max()
                    .unwrap_or(0);
                if t.attentions.len() < need {
                    return Err(self.missing(
                        "teacher",
                        "attention maps",
                        t.attentions.len(),
                        need,
                    ));
                }
                if out.attentions.len() < have_s {
                    return Err(self.missing(
                        "student",
                        "attention maps",
                        out.attentions.len(),
                        have_s,
                    ));
                }
                let n = self.resolved.attention.len().max(1) as f64;
                for &(m, g) in &self.resolved.attention {
                    let term = attention_loss(
                        out.attentions[m - 1].clone(),
                        t.attentions[g - 1].clone(),
                        a.kind,
                        a.average_heads,
                        token_mask.clone(),
                    );
                    total = add(total, term, a.weight / n);
                }
            }
            if let Some(h) = &l.hidden {
                let need = self.resolved.hidden.iter().map(|p| p.1).max().unwrap_or(0) + 1;
                let have_s = self.resolved.hidden.iter().map(|p| p.0).max().unwrap_or(0) + 1;
                if t.hidden_states.len() < need {
                    return Err(self.missing(
                        "teacher",
                        "hidden states",
                        t.hidden_states.len(),
                        need,
                    ));
                }
                if out.hidden_states.len() < have_s {
                    return Err(self.missing(
                        "student",
                        "hidden states",
                        out.hidden_states.len(),
                        have_s,
                    ));
                }
                let n = self.resolved.hidden.len().max(1) as f64;
                for &(m, g) in &self.resolved.hidden {
                    let term = hidden_loss(
                        out.hidden_states[m].clone(),
                        t.hidden_states[g].clone(),
                        h.kind,
                        token_mask.clone(),
                    );
                    total = add(total, term, h.weight / n);
                }
            }
            if let Some(e) = &l.embedding {
                if t.hidden_states.is_empty() || out.hidden_states.is_empty() {
                    return Err(self.missing(
                        if t.hidden_states.is_empty() {
                            "teacher"
                        } else {
                            "student"
                        },
                        "hidden states",
                        0,
                        1,
                    ));
                }
                let term = hidden_loss(
                    out.hidden_states[0].clone(),
                    t.hidden_states[0].clone(),
                    e.kind,
                    token_mask.clone(),
                );
                total = add(total, term, e.weight);
            }
        }
        let loss = total.ok_or_else(|| {
            TrainError::InvalidConfig(
                "this batch has no loss term (unlabelled data and no soft/intermediate loss)"
                    .into(),
            )
        })?;
        Ok(Loss {
            loss,
            metrics: None,
        })
    }

    fn perplexity_metric(&self) -> Option<&'static str> {
        self.student.perplexity_metric()
    }

    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        self.student.summarize(sums)
    }

    fn details(&self, sums: &MetricSums) -> Option<serde_json::Value> {
        self.student.details(sums)
    }

    /// The student task's sources; training on `transfer` text when the spec has some.
    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<T::Batch> + Send>, TrainError> {
        match (&self.spec.transfer, split) {
            (Some(path), DataSplit::Train) => T::Spec::transfer_source(&self.student, path, data),
            _ => self.student.open_source(data, split),
        }
    }

    fn frozen(&self) -> Vec<String> {
        self.student
            .frozen()
            .into_iter()
            .map(|p| format!("student.{p}"))
            .collect()
    }

    fn lr_scales(&self) -> Vec<(String, f64)> {
        self.student
            .lr_scales()
            .into_iter()
            .map(|(p, s)| (format!("student.{p}"), s))
            .collect()
    }

    fn extra_files(&self) -> Vec<(String, PathBuf)> {
        self.student.extra_files()
    }
}

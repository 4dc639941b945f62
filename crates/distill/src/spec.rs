//! The saved half of a distillation: [`DistillSpec`] (the student's spec, the teacher's spec,
//! directory and weight hash, the losses) and the checks that pair a teacher with a student.

use std::path::{Path, PathBuf};

use refinery_train::TaskSpec;
use serde::{Deserialize, Serialize};

use crate::error::DistillError;
use crate::kinds::{Arch, Distillable};
use crate::layers::{LayerMap, LayerPair};
use crate::losses::{AttentionKind, HiddenKind};
use crate::model::Projections;
use crate::task::DistillTask;
use crate::teacher::{hash_string, parse_hash, teacher_hash};

/// The soft-label loss `L = α·CE(y, s) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T))`, times
/// `weight`. On unlabelled data the soft term is used alone (`T²·KL`, times `weight`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftSpec {
    #[serde(default = "one")]
    pub weight: f64,
    /// Share of the hard cross-entropy on gold labels, in [0, 1].
    #[serde(default = "half")]
    pub alpha: f64,
    /// Temperature `T` (at the start, when annealed).
    #[serde(default = "two")]
    pub temperature: f64,
    /// Anneal `T` linearly to this value over the run (`None`: constant).
    #[serde(default)]
    pub final_temperature: Option<f64>,
}

/// Attention maps of the mapped layer pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionSpec {
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub kind: AttentionKind,
    #[serde(default)]
    pub map: LayerMap,
    /// Compare head-averaged maps even when the head counts agree.
    #[serde(default)]
    pub average_heads: bool,
}

/// Hidden states of the mapped layer pairs (through `W_h` when the widths differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenSpec {
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub kind: HiddenKind,
    #[serde(default)]
    pub map: LayerMap,
}

/// The embedding layer's output (through `W_e` when the widths differ).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub kind: HiddenKind,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn two() -> f64 {
    2.0
}

/// The loss set of a run (or of one progressive stage). Terms are summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// Weight of the task's own (hard) loss when there is no soft loss (with one, `alpha`
    /// sets it). 0 for stages that only match intermediate layers.
    #[serde(default = "one")]
    pub hard: f64,
    #[serde(default)]
    pub soft: Option<SoftSpec>,
    #[serde(default)]
    pub attention: Option<AttentionSpec>,
    #[serde(default)]
    pub hidden: Option<HiddenSpec>,
    #[serde(default)]
    pub embedding: Option<EmbeddingSpec>,
    /// Progressive (bottom-up) stages: match only student layers `1..=up_to_layer`.
    #[serde(default)]
    pub up_to_layer: Option<usize>,
}

impl Default for LossSpec {
    fn default() -> Self {
        Self {
            hard: 1.0,
            soft: None,
            attention: None,
            hidden: None,
            embedding: None,
            up_to_layer: None,
        }
    }
}

impl LossSpec {
    /// Checks the values (not the models): weights ≥ 0, `alpha` in [0, 1], temperatures > 0.
    pub fn validate(&self) -> Result<(), String> {
        let weight = |name: &str, w: f64| {
            if w.is_finite() && w >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name}: {w} must be a number >= 0"))
            }
        };
        weight("hard", self.hard)?;
        if let Some(s) = &self.soft {
            weight("soft.weight", s.weight)?;
            if !(0.0..=1.0).contains(&s.alpha) {
                return Err(format!("soft.alpha: {} must be in [0, 1]", s.alpha));
            }
            for (k, t) in [
                ("soft.temperature", Some(s.temperature)),
                ("soft.final_temperature", s.final_temperature),
            ] {
                if let Some(t) = t {
                    if !(t.is_finite() && t > 0.0) {
                        return Err(format!("{k}: {t} must be > 0"));
                    }
                }
            }
        }
        if let Some(a) = &self.attention {
            weight("attention.weight", a.weight)?;
        }
        if let Some(h) = &self.hidden {
            weight("hidden.weight", h.weight)?;
        }
        if let Some(e) = &self.embedding {
            weight("embedding.weight", e.weight)?;
        }
        if self.up_to_layer == Some(0) {
            return Err("up_to_layer must be at least 1".into());
        }
        if !self.needs_teacher() && self.hard == 0.0 {
            return Err(
                "every loss is off (hard = 0 and no soft, attention, hidden or \
                        embedding loss)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether any term needs the teacher.
    pub fn needs_teacher(&self) -> bool {
        self.soft.is_some()
            || self.attention.is_some()
            || self.hidden.is_some()
            || self.embedding.is_some()
    }

    /// Whether any term needs more than the teacher's logits.
    pub fn needs_teacher_internals(&self) -> bool {
        self.attention.is_some() || self.hidden.is_some() || self.embedding.is_some()
    }
}

/// The saved spec of a distillation run (`trainer_state.json`'s `task`): compared on
/// resume, so a run continues only with the same student, teacher (by weight hash), losses
/// and cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillSpec<S> {
    /// The student's task.
    pub student: S,
    /// The checkpoint the student starts from (teacher layers, truncated or random weights,
    /// written before the run); `None`: the student task's own initialisation.
    #[serde(default)]
    pub student_init: Option<PathBuf>,
    /// The teacher's task (its spec as read from `teacher_dir`).
    pub teacher: S,
    pub teacher_dir: PathBuf,
    /// [`crate::teacher::teacher_hash`] of `teacher_dir`, as `xxh3-128:…`.
    pub teacher_hash: String,
    pub losses: LossSpec,
    /// Teacher logits cache file (soft loss only).
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// Unlabelled transfer text to train on instead of the labelled training file.
    #[serde(default)]
    pub transfer: Option<PathBuf>,
}

/// What [`check_pair`] resolves: the layer pairs and the projections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    pub attention: Vec<LayerPair>,
    pub hidden: Vec<LayerPair>,
    pub projections: Projections,
}

/// How a student is named in errors.
pub fn student_name<S: Distillable>(student: &S, init: Option<&Path>) -> String {
    let a = student.arch();
    let what = format!(
        "({} layers, hidden {}, {} heads)",
        a.layers, a.hidden, a.heads
    );
    match init {
        Some(dir) => format!("{} {what}", dir.display()),
        None => what,
    }
}

/// The vocabulary of a tokenizer file as a sorted list, for comparison.
fn vocab_of(path: &Path) -> Result<Vec<(String, u32)>, DistillError> {
    let tok = refinery_tokenize::Tokenizer::load(path)
        .map_err(|e| DistillError::InvalidConfig(format!("{}: {e}", path.display())))?;
    let mut v: Vec<(String, u32)> = match tok.as_hf() {
        Some(hf) => hf.get_vocab(true).into_iter().collect(),
        // A rank file (tiktoken) is its vocabulary: compare the bytes.
        None => {
            let bytes = std::fs::read(path).map_err(|e| DistillError::io(path, e))?;
            vec![(
                format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)),
                tok.vocab_size() as u32,
            )]
        }
    };
    v.sort();
    Ok(v)
}

/// Checks that `teacher` can teach `student` with `losses` and resolves the layer maps.
/// Errors name both models: different vocabularies or tokenizers, different label sets, a
/// layer map past either model's depth, attention distillation across different sparse
/// patterns, a teacher cache (logits only) with losses that need the teacher's internals.
pub fn check_pair<S: Distillable>(
    teacher: &S,
    teacher_dir: &Path,
    student: &S,
    student_init: Option<&Path>,
    losses: &LossSpec,
    cached: bool,
) -> Result<Resolved, DistillError> {
    let (t, s): (Arch, Arch) = (teacher.arch(), student.arch());
    let mismatch = |message: String| DistillError::Mismatch {
        teacher: format!(
            "{} ({} layers, hidden {}, {} heads)",
            teacher_dir.display(),
            t.layers,
            t.hidden,
            t.heads
        ),
        student: student_name(student, student_init),
        message,
    };
    losses.validate().map_err(&mismatch)?;
    if t.vocab != s.vocab {
        return Err(mismatch(format!(
            "different vocabularies ({} vs {} ids): distillation needs the same tokenizer",
            t.vocab, s.vocab
        )));
    }
    if let (Some(tt), Some(st)) = (&t.tokenizer, &s.tokenizer) {
        if tt != st && vocab_of(tt)? != vocab_of(st)? {
            return Err(mismatch(format!(
                "different tokenizers ({} and {}): the same text must give the same ids",
                tt.display(),
                st.display()
            )));
        }
    }
    if t.labels != s.labels {
        return Err(mismatch(format!(
            "different outputs: the teacher predicts {:?}, the student {:?}",
            t.labels, s.labels
        )));
    }
    let limit = |pairs: Vec<LayerPair>| -> Result<Vec<LayerPair>, DistillError> {
        match losses.up_to_layer {
            Some(k) if k > s.layers => Err(mismatch(format!(
                "up_to_layer {k} is past the student's {} layers",
                s.layers
            ))),
            Some(k) => Ok(pairs.into_iter().filter(|(m, _)| *m <= k).collect()),
            None => Ok(pairs),
        }
    };
    let mut resolved = Resolved::default();
    if let Some(a) = &losses.attention {
        if t.sparse != s.sparse {
            return Err(mismatch(format!(
                "attention distillation compares maps of the same pattern, but the teacher \
                 attends {} and the student {}",
                t.sparse.as_deref().unwrap_or("densely"),
                s.sparse.as_deref().unwrap_or("densely")
            )));
        }
        resolved.attention = limit(a.map.pairs(s.layers, t.layers).map_err(&mismatch)?)?;
    }
    if let Some(h) = &losses.hidden {
        resolved.hidden = limit(h.map.pairs(s.layers, t.layers).map_err(&mismatch)?)?;
        if s.hidden != t.hidden {
            resolved.projections.hidden = Some((s.hidden, t.hidden));
        }
    }
    if losses.embedding.is_some() && s.hidden != t.hidden {
        resolved.projections.embedding = Some((s.hidden, t.hidden));
    }
    if cached && losses.needs_teacher_internals() {
        return Err(mismatch(
            "the teacher cache holds logits only, but the attention/hidden/embedding losses \
             need the teacher's attention maps and hidden states (turn the cache off or drop \
             those losses)"
                .into(),
        ));
    }
    if cached && losses.soft.is_none() {
        return Err(mismatch(
            "a teacher cache serves the soft loss, which is off".into(),
        ));
    }
    Ok(resolved)
}

impl<S: Distillable> DistillSpec<S> {
    /// A spec for `student` taught by the checkpoint in `teacher_dir` (its spec and weight
    /// hash are read from there), after [`check_pair`].
    pub fn new(
        student: S,
        student_init: Option<PathBuf>,
        teacher_dir: &Path,
        losses: LossSpec,
    ) -> Result<Self, DistillError> {
        let opened = refinery_train::tasks::open(teacher_dir)?;
        let kind = opened.spec.kind();
        let teacher = S::from_any(opened.spec).ok_or_else(|| DistillError::Mismatch {
            teacher: teacher_dir.display().to_string(),
            student: student_name(&student, student_init.as_deref()),
            message: format!("the teacher is a {kind} model, the student a {}", S::KIND),
        })?;
        check_pair(
            &teacher,
            teacher_dir,
            &student,
            student_init.as_deref(),
            &losses,
            false,
        )?;
        Ok(Self {
            student,
            student_init,
            teacher,
            teacher_dir: teacher_dir.to_path_buf(),
            teacher_hash: hash_string(teacher_hash(teacher_dir)?),
            losses,
            cache: None,
            transfer: None,
        })
    }

    /// The teacher hash as a number.
    pub fn hash(&self) -> Result<u128, DistillError> {
        parse_hash(&self.teacher_hash).ok_or_else(|| {
            DistillError::InvalidConfig(format!(
                "teacher_hash {:?} is not xxh3-128:<32 hex digits>",
                self.teacher_hash
            ))
        })
    }
}

impl<S: Distillable> TaskSpec for DistillSpec<S> {
    /// `trainer_state.json`'s `task_name` of a distillation run (the student's kind is in the
    /// spec).
    const KIND: &'static str = "distill";
    type Task = DistillTask<S::Task>;

    fn build(&self, checkpoint: Option<&Path>) -> Result<Self::Task, refinery_train::TrainError> {
        Ok(DistillTask::build(self, checkpoint)?)
    }
}

//! Running a `distill.toml`: the student's initial checkpoint, the teacher-assistant chain,
//! the progressive stages and the teacher cache, each link and stage one resumable trainer run.
//!
//! ```text
//! OUT/
//!   assistant-4/            one chain link per assistant (same layout as OUT), then
//!   student-init/           the student's starting weights (teacher blocks, truncated, random)
//!   stage-1-intermediate/   every stage but the last (a run directory each)
//!   teacher-cache.bin       the teacher's logits (teacher.cache = true)
//!   checkpoint-N/ best/ final/ metrics.jsonl   the last stage's run
//! ```
//!
//! Each stage starts from the previous stage's `final/` student (projections are per stage);
//! each link's teacher is the previous link's `best/`. Rerunning the same command resumes:
//! finished stages are reopened at their last step and skipped, the unfinished one continues.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use refinery_train::config::{run_spec, CheckContext, Sizing, TrainFile};
use refinery_train::data::DataSplit;
use refinery_train::rng::batch_seed;
use refinery_train::run::{Observer, RunSummary, BEST_DIR, FINAL_DIR};
use refinery_train::tasks::{open, AnyTaskSpec, ClassifySpec, GptClmSpec};
use refinery_train::Task;

use crate::cache::{CacheWriter, TeacherCache};
use crate::config::{DistillFile, InitKind, StageSection, StudentSection};
use crate::error::DistillError;
use crate::kinds::{Distillable, StudentShape};
use crate::layers::default_init_layers;
use crate::spec::DistillSpec;
use crate::task::DistillTask;
use crate::teacher::teacher_hash;

/// The student's initial checkpoint inside a link's directory.
pub const STUDENT_INIT_DIR: &str = "student-init";
/// The teacher cache file inside a link's directory.
pub const CACHE_FILE: &str = "teacher-cache.bin";

/// One trainer run of a distillation.
#[derive(Debug, Clone)]
pub struct StageRun {
    /// `assistant-4/stage-1-intermediate`, or `""` for the last stage of the last link.
    pub name: String,
    pub dir: PathBuf,
    pub teacher: PathBuf,
    pub summary: RunSummary,
}

/// What a distillation did.
#[derive(Debug, Clone)]
pub struct DistillSummary {
    /// Every run, in order.
    pub runs: Vec<StageRun>,
    /// The original teacher.
    pub teacher: PathBuf,
    /// The final student's run directory (`OUT`).
    pub out_dir: PathBuf,
    /// The teacher kind (`classify`, `gpt-clm`).
    pub kind: &'static str,
}

/// Runs a checked-by-[`DistillFile::check`] config; `name` names the file in errors.
pub fn distill(
    file: &DistillFile,
    name: &str,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<DistillSummary, DistillError> {
    file.check(name)?;
    let teacher = file
        .teacher
        .dir
        .clone()
        .ok_or_else(|| DistillError::InvalidConfig(format!("{name}: teacher.dir: not set")))?;
    let opened = open(&teacher)?;
    match opened.spec {
        AnyTaskSpec::Classify(t) => distill_kind::<ClassifySpec>(t, file, name, device, observer),
        AnyTaskSpec::GptClm(t) => distill_kind::<GptClmSpec>(t, file, name, device, observer),
        other => Err(DistillError::InvalidConfig(format!(
            "{}: a {} model; distillation takes a sequence classifier (classify) or a GPT-2 \
             language model (gpt-clm) as teacher",
            teacher.display(),
            other.kind()
        ))),
    }
}

fn distill_kind<S: Distillable>(
    teacher: S,
    f: &DistillFile,
    name: &str,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<DistillSummary, DistillError> {
    let teacher_dir = f.teacher.dir.clone().unwrap_or_default();
    let out = f.run.out_dir.clone().unwrap_or_default();
    let depth = teacher.arch().layers;
    let layers = f.student.layers.unwrap_or((depth / 2).max(1));
    let mut chain = f.student.assistants.clone();
    chain.push(layers);
    for w in chain.windows(2) {
        if w[1] >= w[0] {
            return Err(DistillError::InvalidConfig(format!(
                "{name}: student.assistants: the chain {chain:?} must get shallower, ending at \
                 the student's {layers} layers"
            )));
        }
    }
    let mut runs = Vec::new();
    let mut link_teacher = teacher_dir.clone();
    for (i, &depth) in chain.iter().enumerate() {
        let last = i + 1 == chain.len();
        let link_out = if last {
            out.clone()
        } else {
            out.join(format!("assistant-{depth}"))
        };
        let prefix = if last {
            String::new()
        } else {
            format!("assistant-{depth}")
        };
        let t = if i == 0 {
            teacher.clone()
        } else {
            S::from_any(open(&link_teacher)?.spec).ok_or_else(|| {
                DistillError::InvalidConfig(format!(
                    "{}: the assistant is not a {} model",
                    link_teacher.display(),
                    S::KIND
                ))
            })?
        };
        let link_runs = run_link(
            &t,
            &link_teacher,
            f,
            name,
            depth,
            &link_out,
            &prefix,
            device,
            observer,
        )?;
        runs.extend(link_runs);
        // The next link learns from this one's best student (its last, without evaluation).
        let best = link_out.join(BEST_DIR);
        link_teacher = if best.is_dir() {
            best
        } else {
            link_out.join(FINAL_DIR)
        };
    }
    Ok(DistillSummary {
        runs,
        teacher: teacher_dir,
        out_dir: out,
        kind: S::KIND,
    })
}

/// Writes the student's initial checkpoint to `dir` (atomically; an existing one is reused,
/// so a rerun resumes) and returns the student spec it was written with.
pub fn write_student_init<S: Distillable>(
    teacher: &S,
    teacher_dir: &Path,
    sec: &StudentSection,
    layers: usize,
    seed: u64,
    dir: &Path,
) -> Result<S, DistillError> {
    let t = teacher.arch();
    let shape = StudentShape {
        layers,
        hidden_size: sec.hidden_size,
        num_attention_heads: sec.num_attention_heads,
        intermediate_size: sec.intermediate_size,
    };
    let mismatch = |message: String| DistillError::Mismatch {
        teacher: format!("{} ({} layers)", teacher_dir.display(), t.layers),
        student: format!("({layers} layers)"),
        message,
    };
    let mut student = teacher.reshaped(&shape).map_err(&mismatch)?;
    if let Some(p) = sec.dropout {
        student.set_dropout(p);
    }
    if dir.is_dir() {
        return Ok(student);
    }
    let device = Device::flex();
    device.seed(seed);
    let task = student.build(None)?;
    let model = match sec.init {
        InitKind::Random => task.init_model(&device)?,
        InitKind::TeacherLayers => {
            let chosen = sec
                .init_layers
                .clone()
                .unwrap_or_else(|| default_init_layers(layers, t.layers));
            if chosen.len() != layers {
                return Err(mismatch(format!(
                    "student.init_layers lists {} teacher blocks for a student of {layers} layers",
                    chosen.len()
                )));
            }
            if let Some(bad) = chosen.iter().find(|&&l| l >= t.layers) {
                return Err(mismatch(format!(
                    "student.init_layers points at block {bad}, but the teacher has blocks \
                     0..{}",
                    t.layers
                )));
            }
            let tt = teacher.build(Some(teacher_dir))?;
            let mut m = tt.load_model(teacher_dir, &device)?;
            S::keep_layers(&mut m, &chosen).map_err(&mismatch)?;
            m
        }
        InitKind::Truncate => {
            let from = sec
                .from
                .clone()
                .unwrap_or_else(|| teacher_dir.to_path_buf());
            let src = S::from_any(open(&from)?.spec).ok_or_else(|| {
                mismatch(format!("{}: not a {} checkpoint", from.display(), S::KIND))
            })?;
            let a = src.arch();
            if a.hidden != t.hidden || a.heads != t.heads {
                return Err(mismatch(format!(
                    "student.from {} has width {} / {} heads, the teacher {} / {}",
                    from.display(),
                    a.hidden,
                    a.heads,
                    t.hidden,
                    t.heads
                )));
            }
            if layers > a.layers {
                return Err(mismatch(format!(
                    "cannot truncate {} ({} layers) to {layers} layers",
                    from.display(),
                    a.layers
                )));
            }
            let st = src.build(Some(&from))?;
            let mut m = st.load_model(&from, &device)?;
            let keep: Vec<usize> = (0..layers).collect();
            S::keep_layers(&mut m, &keep).map_err(&mismatch)?;
            m
        }
    };
    let tmp = dir.with_file_name(format!(
        ".tmp-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("init")
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| DistillError::io(&tmp, e))?;
    task.save_model(&model, &tmp)?;
    std::fs::rename(&tmp, dir).map_err(|e| DistillError::io(dir, e))?;
    Ok(student)
}

/// The stages of a link: the configured ones, or one stage with every loss and the `[run]`
/// budget.
fn stages_of(f: &DistillFile) -> Vec<Option<StageSection>> {
    if f.stages.is_empty() {
        vec![None]
    } else {
        f.stages.iter().cloned().map(Some).collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn run_link<S: Distillable>(
    teacher: &S,
    teacher_dir: &Path,
    f: &DistillFile,
    name: &str,
    layers: usize,
    out: &Path,
    prefix: &str,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Vec<StageRun>, DistillError> {
    std::fs::create_dir_all(out).map_err(|e| DistillError::io(out, e))?;
    let init_dir = out.join(STUDENT_INIT_DIR);
    write_student_init(
        teacher,
        teacher_dir,
        &f.student,
        layers,
        f.run.seed,
        &init_dir,
    )?;
    let stages = stages_of(f);
    let mut runs = Vec::new();
    let mut init = init_dir;
    for (k, stage) in stages.iter().enumerate() {
        let last = k + 1 == stages.len();
        let (stage_out, stage_name) = match (last, stage) {
            (true, _) | (false, None) => (out.to_path_buf(), String::new()),
            (false, Some(s)) => {
                let n = format!("stage-{}-{}", k + 1, s.name);
                (out.join(&n), n)
            }
        };
        let losses = match stage {
            Some(s) => f
                .stage_losses(s)
                .map_err(|e| DistillError::InvalidConfig(format!("{name}: stage[{k}]: {e}")))?,
            None => f.loss.clone(),
        };
        // The [data]/[optim]/[run] sections, checked as a run of the student task.
        let student_spec = S::from_any(open(&init)?.spec).ok_or_else(|| {
            DistillError::InvalidConfig(format!("{}: not a {} checkpoint", init.display(), S::KIND))
        })?;
        let (task_section, model_section) = student_spec.train_sections(&init, f.task.max_len);
        let mut tf = TrainFile {
            task: task_section,
            model: model_section,
            data: f.data.clone(),
            optim: f.optim.clone(),
            run: f.run.clone(),
            prune: None,
        };
        tf.run.out_dir = Some(stage_out.clone());
        if tf.run.best_metric.is_none() {
            tf.run.best_metric = Some(S::default_best_metric().into());
        }
        if let Some(s) = stage {
            if let Some(lr) = s.lr {
                tf.optim.lr = lr;
                tf.optim.min_lr = tf.optim.min_lr.min(lr);
            }
            match (s.epochs, s.steps) {
                (Some(e), _) => tf.run.epochs = Some(e),
                (None, Some(n)) => {
                    tf.run.epochs = None;
                    tf.run.total_steps = n;
                }
                (None, None) => {}
            }
        }
        let checked = tf.check(name, &CheckContext::default())?;
        let student = S::training_spec(checked.task.clone(), &init)?;
        let mut spec = DistillSpec::new(student, Some(init.clone()), teacher_dir, losses)?;
        spec.transfer = f.teacher.transfer.clone();
        if f.teacher.cache && spec.losses.soft.is_some() && !spec.losses.needs_teacher_internals() {
            let path = out.join(CACHE_FILE);
            let batches = cache_batches(&spec, &checked, &stage_out)?;
            build_cache(
                &spec,
                &checked.data,
                batches,
                f.teacher.cache_top_k,
                &path,
                checked.train.seed,
            )?;
            spec.cache = Some(path);
        }
        let sizing = Sizing {
            epochs: checked.epochs,
            warmup_ratio: checked.warmup_ratio,
        };
        let summary = run_spec(
            spec,
            checked.train,
            checked.run,
            sizing,
            &checked.data,
            device,
            observer,
        )?;
        let full = match (prefix.is_empty(), stage_name.is_empty()) {
            (true, _) => stage_name.clone(),
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}/{stage_name}"),
        };
        runs.push(StageRun {
            name: full,
            dir: stage_out.clone(),
            teacher: teacher_dir.to_path_buf(),
            summary,
        });
        init = stage_out.join(FINAL_DIR);
    }
    Ok(runs)
}

/// How many training batches the cache must cover: one epoch of labelled data (every row),
/// or the run's batches for endless token streams.
fn cache_batches<S: Distillable>(
    spec: &DistillSpec<S>,
    checked: &refinery_train::config::CheckedTrain,
    _out: &Path,
) -> Result<u64, DistillError> {
    let task = DistillTask::<S::Task>::build(spec, None)?;
    let source = task.open_source(&checked.data, DataSplit::Train)?;
    Ok(match (source.batches_per_epoch(), checked.epochs) {
        (Some(b), _) => b,
        (None, _) => (checked.run.total_steps * checked.train.grad_accum_steps) as u64,
    })
}

/// Runs the teacher over `batches` training batches and writes their logits to `path`
/// (reused when it already holds this teacher's cache).
pub fn build_cache<S: Distillable>(
    spec: &DistillSpec<S>,
    data: &refinery_train::data::DataConfig,
    batches: u64,
    top_k: Option<usize>,
    path: &Path,
    seed: u64,
) -> Result<(), DistillError> {
    let hash = teacher_hash(&spec.teacher_dir)?;
    if path.is_file() {
        TeacherCache::open(path, hash)?;
        return Ok(());
    }
    let mut live = spec.clone();
    live.cache = None;
    let task = DistillTask::<S::Task>::build(&live, None)?;
    let device = Device::flex();
    let mut source = task.open_source(data, DataSplit::Train)?;
    let (positions, classes) = spec.student.cache_shape(data);
    let mut writer = CacheWriter::new(positions, classes, top_k);
    for _ in 0..batches {
        let position = source.position();
        let input = task.prepare(source.next_batch(), batch_seed(seed, position))?;
        let out = task.teacher_outputs(&input, &device)?;
        let [_, p, c] = out.logits.dims();
        if c != classes {
            return Err(DistillError::InvalidConfig(format!(
                "{}: the teacher scores {c} classes, the cache expects {classes}",
                spec.teacher_dir.display()
            )));
        }
        let logits: Vec<f32> = out.logits.into_data().iter::<f32>().collect();
        writer.add(&S::row_keys(&input), &logits, p);
    }
    writer.write(path, hash)
}

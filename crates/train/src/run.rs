//! The run loop: train to `total_steps`, evaluate every `eval_every` steps, checkpoint every
//! `save_every` steps, log every step to `metrics.jsonl`, and resume automatically.
//!
//! Output directory:
//!
//! ```text
//! out/checkpoint-{step}/   complete checkpoints (the last `keep`); see crate::trainer
//!                          (+ run_state.json: best metric so far, early-stopping count)
//! out/latest               name of the newest checkpoint directory
//! out/metrics.jsonl        one line per step (+ eval_* keys on evaluation steps)
//! out/best/, out/final/    with RunOptions::best: the best model so far (on the chosen eval
//!                          metric) and the last one, plain HF directories + eval.json
//! ```
//!
//! Fine-tuning adds epochs (`steps_per_epoch`: evaluate at every epoch end too), best-model
//! selection on a metric and early stopping after `patience` evaluations without improvement.
//! The best-so-far and the early-stopping count are saved with every checkpoint, so a resumed
//! run selects and stops exactly as the uninterrupted run did.
//!
//! Crash safety: a checkpoint is written to `out/.tmp-checkpoint-{step}/` and renamed into
//! place when complete, so a `checkpoint-*` directory is always whole; leftovers of an
//! interrupted save are removed on the next start. A run started on a directory that holds
//! checkpoints resumes from the newest one, and the metrics log drops the lines the
//! interrupted run wrote after that checkpoint, so no step appears twice.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::data::BatchSource;
use crate::error::TrainError;
use crate::eval::EvalReport;
use crate::metrics::MetricsLog;
use crate::tasks::Task;
use crate::trainer::{StepStats, TrainConfig, Trainer, STATE_FILE};

/// Name of the pointer file to the newest checkpoint.
pub const LATEST_FILE: &str = "latest";
const CHECKPOINT_PREFIX: &str = "checkpoint-";
const TMP_PREFIX: &str = ".tmp-checkpoint-";

/// What a run does besides stepping.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Optimizer steps in the whole run (across resumes).
    pub total_steps: usize,
    /// Evaluate every this many steps and at the end (0: never).
    pub eval_every: usize,
    /// Validation batches per evaluation.
    pub eval_batches: usize,
    /// Checkpoint every this many steps and at the end (0: only at the end).
    pub save_every: usize,
    /// Checkpoints kept (older ones are deleted; at least 1).
    pub keep: usize,
    /// Files copied into every checkpoint under the given name (e.g. `tokenizer.json`).
    pub extra_files: Vec<(String, PathBuf)>,
    /// Optimizer steps per epoch (labelled data): log the epoch, checkpoint at every epoch
    /// end, and evaluate there when `eval_each_epoch`; `None` for step-counted runs.
    pub steps_per_epoch: Option<usize>,
    /// Evaluate at every epoch end (runs with epochs).
    pub eval_each_epoch: bool,
    /// Keep the best model in `out/best` and the last in `out/final`.
    pub best: Option<BestModel>,
}

/// Best-model selection and early stopping.
#[derive(Debug, Clone, PartialEq)]
pub struct BestModel {
    /// The evaluation metric to select on (`accuracy`, `macro_f1`, `loss`, ...).
    pub metric: String,
    /// `true` for accuracy-like metrics, `false` for losses.
    pub higher_is_better: bool,
    /// Stop after this many evaluations without improvement (`None`: never).
    pub patience: Option<usize>,
}

/// Name of the best-model directory.
pub const BEST_DIR: &str = "best";
/// Name of the last-model directory.
pub const FINAL_DIR: &str = "final";
/// The evaluation that selected a best/final model, inside its directory.
pub const EVAL_FILE: &str = "eval.json";
/// The run loop's own state, saved inside every checkpoint.
pub const RUN_STATE_FILE: &str = "run_state.json";

/// Best-so-far and early-stopping count (saved with every checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub best_value: Option<f64>,
    pub best_step: Option<usize>,
    /// Evaluations since the last improvement.
    pub evals_since_best: usize,
    /// Early stopping ended the run.
    pub stopped_early: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Tokens in this step.
    pub tokens: usize,
    /// Tokens in all steps so far (across resumes).
    pub total_tokens: u64,
    /// This step's tokens over its wall time.
    pub tokens_per_s: f64,
    /// Training seconds so far (across resumes).
    pub elapsed_s: f64,
    /// `step / steps_per_epoch` (runs with epochs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_perplexity: Option<f64>,
    /// Other evaluation metrics, flattened as `eval_{name}`.
    #[serde(flatten)]
    pub eval_metrics: std::collections::BTreeMap<String, f64>,
}

/// Called by [`run`] as it goes (the CLI draws its progress bar from these; the library does
/// not depend on a terminal crate). Every method has a no-op default.
pub trait Observer {
    /// Before the first step: where the run starts (non-zero after a resume).
    fn on_start(&mut self, _start_step: usize, _total_steps: usize) {}
    fn on_step(&mut self, _record: &StepRecord) {}
    fn on_eval(&mut self, _step: usize, _report: &EvalReport) {}
    fn on_checkpoint(&mut self, _step: usize, _dir: &Path) {}
    /// Checked after every step: `true` stops the loop at once, without a checkpoint (as an
    /// interruption would; the next run resumes from the last checkpoint).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that does nothing.
impl Observer for () {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Step the run started from (0, or the resumed checkpoint's).
    pub start_step: usize,
    pub resumed_from: Option<PathBuf>,
    /// Steps done when the loop ended.
    pub final_step: usize,
    /// `false` when the observer stopped the loop early.
    pub completed: bool,
    pub last_step: Option<StepStats>,
    pub last_eval: Option<EvalReport>,
    /// Newest checkpoint written by this run.
    pub last_checkpoint: Option<PathBuf>,
    /// Best-model selection state at the end (runs with [`RunOptions::best`]).
    pub run_state: RunState,
}

/// The newest complete checkpoint in `out_dir` (`checkpoint-{N}` with a trainer state), if
/// any.
pub fn latest_checkpoint(out_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    Ok(checkpoints(out_dir)?.pop().map(|(_, p)| p))
}

/// Complete checkpoints, oldest first.
fn checkpoints(out_dir: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    let io = |source| TrainError::Io {
        path: out_dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(out_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        if entry.path().join(STATE_FILE).is_file() {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn remove_dir(path: &Path) -> Result<(), TrainError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TrainError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes what an interrupted save left behind.
fn remove_partial_checkpoints(out_dir: &Path) -> Result<(), TrainError> {
    let io = |source| TrainError::Io {
        path: out_dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(out_dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TMP_PREFIX))
        {
            remove_dir(&entry.path())?;
        }
    }
    Ok(())
}

/// Writes `trainer`'s checkpoint to `out_dir/checkpoint-{step}` atomically, points `latest`
/// at it and prunes to the newest `keep`.
fn save<T: Task>(
    trainer: &Trainer<T>,
    position: u64,
    elapsed_s: f64,
    opts: &RunOptions,
    state: &RunState,
) -> Result<PathBuf, TrainError> {
    let name = format!("{CHECKPOINT_PREFIX}{}", trainer.step);
    let tmp = opts.out_dir.join(format!("{TMP_PREFIX}{}", trainer.step));
    let dir = opts.out_dir.join(&name);
    remove_dir(&tmp)?;
    trainer.save_checkpoint_with(&tmp, position, elapsed_s)?;
    copy_extra_files(trainer, opts, &tmp)?;
    write_json(&tmp.join(RUN_STATE_FILE), state)?;
    remove_dir(&dir)?;
    std::fs::rename(&tmp, &dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    let latest_tmp = opts.out_dir.join(format!(".{LATEST_FILE}.tmp"));
    let latest = opts.out_dir.join(LATEST_FILE);
    std::fs::write(&latest_tmp, format!("{name}\n"))
        .and_then(|()| std::fs::rename(&latest_tmp, &latest))
        .map_err(|source| TrainError::Io {
            path: latest,
            source,
        })?;
    let all = checkpoints(&opts.out_dir)?;
    let excess = all.len().saturating_sub(opts.keep.max(1));
    for (_, old) in &all[..excess] {
        remove_dir(old)?;
    }
    Ok(dir)
}

/// Copies the run's and the task's extra files (tokenizer, ...) into `dir`.
fn copy_extra_files<T: Task>(
    trainer: &Trainer<T>,
    opts: &RunOptions,
    dir: &Path,
) -> Result<(), TrainError> {
    for (file_name, src) in opts.extra_files.iter().chain(&trainer.task.extra_files()) {
        std::fs::copy(src, dir.join(file_name)).map_err(|source| TrainError::Io {
            path: src.clone(),
            source,
        })?;
    }
    Ok(())
}

fn write_json<V: Serialize>(path: &Path, value: &V) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_run_state(checkpoint: &Path) -> Result<RunState, TrainError> {
    let path = checkpoint.join(RUN_STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| TrainError::Json { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunState::default()),
        Err(source) => Err(TrainError::Io { path, source }),
    }
}

/// Writes the current model as a plain HF directory `out/{name}` (atomically), with the
/// evaluation that selected it.
fn export_model<T: Task>(
    trainer: &Trainer<T>,
    opts: &RunOptions,
    name: &str,
    eval: Option<&EvalReport>,
    step: usize,
) -> Result<PathBuf, TrainError> {
    let tmp = opts.out_dir.join(format!(".tmp-{name}"));
    let dir = opts.out_dir.join(name);
    remove_dir(&tmp)?;
    trainer.task.export_model(&trainer.model, &tmp)?;
    copy_extra_files(trainer, opts, &tmp)?;
    write_json(
        &tmp.join(EVAL_FILE),
        &serde_json::json!({ "step": step, "eval": eval }),
    )?;
    remove_dir(&dir)?;
    std::fs::rename(&tmp, &dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Runs (or resumes) a training run. `new_task`/`config` start a fresh run; when `out_dir`
/// already holds a checkpoint, training resumes from the newest one instead (its task must
/// equal `new_task`; `config` replaces the saved one, so a run can be extended), and the
/// training source is seeked to the saved position.
pub fn run<T: Task>(
    new_task: T,
    config: TrainConfig,
    opts: &RunOptions,
    train: &mut dyn BatchSource<T::Batch>,
    mut valid: Option<&mut dyn BatchSource<T::Batch>>,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    if opts.eval_every > 0 && opts.eval_batches == 0 {
        return Err(TrainError::InvalidConfig(
            "run.eval_batches must be >= 1 when run.eval_every > 0".into(),
        ));
    }
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| TrainError::Io {
        path: opts.out_dir.clone(),
        source,
    })?;
    remove_partial_checkpoints(&opts.out_dir)?;

    let resumed_from = latest_checkpoint(&opts.out_dir)?;
    let mut trainer = match &resumed_from {
        Some(dir) => {
            let (mut trainer, position) = Trainer::<T>::resume(dir, device)?;
            if trainer.task.spec() != new_task.spec() {
                return Err(TrainError::InvalidConfig(format!(
                    "{}: the checkpoint's model/task differs from the configured one; \
                     use another output directory to start a new run",
                    dir.display()
                )));
            }
            config.validate()?;
            trainer.config = config;
            train.seek(position);
            trainer
        }
        None => Trainer::new(new_task, config, device)?,
    };
    let mut state = match &resumed_from {
        Some(dir) => read_run_state(dir)?,
        None => RunState::default(),
    };
    let start_step = trainer.step;
    let mut log = MetricsLog::open(&opts.out_dir, start_step)?;
    observer.on_start(start_step, opts.total_steps);

    let started = Instant::now();
    let elapsed = |t: &Trainer<T>| t.elapsed_before_s + started.elapsed().as_secs_f64();
    let mut summary = RunSummary {
        start_step,
        resumed_from,
        final_step: start_step,
        completed: false,
        last_step: None,
        last_eval: None,
        last_checkpoint: None,
        run_state: state.clone(),
    };
    let epoch_end = |step: usize| opts.steps_per_epoch.is_some_and(|e| e > 0 && step % e == 0);
    while trainer.step < opts.total_steps && !state.stopped_early {
        let t0 = Instant::now();
        let stats = trainer.step(train)?;
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        let mut record = StepRecord {
            step: stats.step,
            loss: stats.loss,
            lr: stats.lr,
            grad_norm: stats.grad_norm,
            tokens: stats.tokens,
            total_tokens: trainer.tokens_seen,
            tokens_per_s: stats.tokens as f64 / secs,
            elapsed_s: elapsed(&trainer),
            epoch: opts
                .steps_per_epoch
                .filter(|&e| e > 0)
                .map(|e| stats.step as f64 / e as f64),
            eval_loss: None,
            eval_perplexity: None,
            eval_metrics: Default::default(),
        };
        let last = stats.step == opts.total_steps;

        if let Some(valid) = valid.as_deref_mut() {
            let due = opts.eval_every > 0 && stats.step % opts.eval_every == 0;
            let epoch_eval = opts.eval_each_epoch && epoch_end(stats.step);
            if due || epoch_eval || (last && (opts.eval_every > 0 || opts.best.is_some())) {
                let report = trainer.evaluate(valid, opts.eval_batches)?;
                // A task may rule a step's model out (gradual pruning before its final sparsity).
                let selectable = trainer.task.selectable(stats.step, opts.total_steps);
                if let Some(best) = opts.best.as_ref().filter(|_| selectable) {
                    let value = report.metrics.get(&best.metric).copied().ok_or_else(|| {
                        TrainError::InvalidConfig(format!(
                            "run.best_metric: the evaluation has no {:?} (it has: {})",
                            best.metric,
                            report
                                .metrics
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                    let better = match state.best_value {
                        None => value.is_finite(),
                        Some(b) if best.higher_is_better => value > b,
                        Some(b) => value < b,
                    };
                    if better {
                        state.best_value = Some(value);
                        state.best_step = Some(stats.step);
                        state.evals_since_best = 0;
                        export_model(&trainer, opts, BEST_DIR, Some(&report), stats.step)?;
                    } else {
                        state.evals_since_best += 1;
                        if best.patience.is_some_and(|p| state.evals_since_best >= p) {
                            state.stopped_early = true;
                        }
                    }
                }
                record.eval_loss = Some(report.loss);
                record.eval_perplexity = report.perplexity.is_finite().then_some(report.perplexity);
                record.eval_metrics = report
                    .metrics
                    .iter()
                    .filter(|(k, _)| k.as_str() != "loss")
                    .map(|(k, v)| (format!("eval_{k}"), *v))
                    .collect();
                observer.on_eval(stats.step, &report);
                summary.last_eval = Some(report);
            }
        }
        log.write(&record)?;
        observer.on_step(&record);
        summary.last_step = Some(stats);
        summary.final_step = stats.step;

        let end = last || state.stopped_early;
        let periodic = opts.save_every > 0 && stats.step % opts.save_every == 0;
        if end || periodic || epoch_end(stats.step) {
            if end && opts.best.is_some() {
                export_model(
                    &trainer,
                    opts,
                    FINAL_DIR,
                    summary.last_eval.as_ref(),
                    stats.step,
                )?;
            }
            let dir = save(&trainer, train.position(), elapsed(&trainer), opts, &state)?;
            observer.on_checkpoint(stats.step, &dir);
            summary.last_checkpoint = Some(dir);
        }
        summary.run_state = state.clone();
        if observer.should_stop() {
            return Ok(summary);
        }
    }
    summary.completed = true;
    summary.run_state = state;
    Ok(summary)
}

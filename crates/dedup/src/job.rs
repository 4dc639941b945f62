//! One runner for the resumable multi-step jobs (MinHash, substring,
//! exact/URL/line dedup).
//!
//! A job ([`MultiStepJob`]) names its steps, says how many tasks each step
//! has and runs one task of one step; this module does the rest, the same
//! way for every job:
//!
//! * `DIR/<job>/params.json` records the job's fingerprint; a rerun with
//!   other parameters is refused ([`StepError::Mismatch`]), and `--overwrite`
//!   is refused where that file is missing ([`check_overwrite`]).
//! * Each task writes `DIR/<job>/<step>/completions/NNNNN` last. [`run_step`]
//!   skips complete tasks and runs the others from scratch; a step starts
//!   only once the step before it is complete.
//! * [`run`] runs every step in order; a step that reran anything makes the
//!   later steps stale, so their markers are removed first. [`finish`]
//!   checks that every step is complete and builds the job's report.
//! * [`task_docs`]: the input files of task `t` of `N` (files `t, t+N, …`)
//!   and their documents keyed by (file, index).

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use refinery_corpus::executor::{check_fingerprint, is_step_complete, run_pool, COMPLETIONS_DIR};
use refinery_corpus::input::InputFile;
use refinery_corpus::readers::{self, Item, ItemStream, ReaderOptions};
use refinery_corpus::stats::RunStats;
use refinery_corpus::CorpusError;
use serde::Serialize;

use crate::fsutil::{cancelled, remove_dir_if_exists};
use crate::minhash::DocKey;

/// The file under `DIR/<job>/` that records a run's parameters.
pub const PARAMS_FILE: &str = "params.json";

/// What one step did in this invocation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepReport {
    pub name: &'static str,
    pub tasks_run: usize,
    pub tasks_skipped: usize,
    pub seconds: f64,
}

/// What every job's report holds: the steps of this invocation and the
/// stats of the filtered corpus.
pub trait JobReport {
    fn steps(&self) -> &[StepReport];
    fn stats(&self) -> &RunStats;
}

/// Implements [`JobReport`] for a report struct with `steps` and `stats`
/// fields.
macro_rules! impl_job_report {
    ($t:ty) => {
        impl $crate::job::JobReport for $t {
            fn steps(&self) -> &[$crate::job::StepReport] {
                &self.steps
            }
            fn stats(&self) -> &refinery_corpus::stats::RunStats {
                &self.stats
            }
        }
    };
}
pub(crate) use impl_job_report;

/// Errors of the runner itself, the same for every job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    #[error("no step {0}")]
    NoStep(usize),
    #[error("step {step} has {ranks} rank(s); no task {task}")]
    NoTask {
        step: &'static str,
        ranks: usize,
        task: usize,
    },
    #[error("step {step} is not complete (task {task} has no completion marker in {}): run the earlier steps first", dir.display())]
    Incomplete {
        step: &'static str,
        task: usize,
        dir: PathBuf,
    },
    #[error("{}: holds a {what} with different `{key}`; use a new output directory, or --overwrite to start over", path.display())]
    Mismatch {
        path: PathBuf,
        what: String,
        key: String,
    },
    #[error("{0}: more than 2^32 documents in one file")]
    TooManyDocs(String),
    #[error("refusing to --overwrite {}: it holds no {what} ({} missing)", output.display(), marker.display())]
    NotThisJob {
        output: PathBuf,
        what: String,
        marker: PathBuf,
    },
}

/// The error type of a job: it carries the corpus and runner errors, and
/// gives the executor's pool a [`CorpusError`].
pub trait JobError: From<CorpusError> + From<StepError> + std::fmt::Display + Send {
    /// The corpus error inside, or this error as the failure of `task`.
    fn into_corpus(self, task: usize) -> CorpusError;
}

/// Implements [`JobError`] for an error enum with `Corpus(CorpusError)` and
/// `Step(StepError)` variants.
macro_rules! impl_job_error {
    ($t:ty) => {
        impl $crate::job::JobError for $t {
            fn into_corpus(self, task: usize) -> refinery_corpus::CorpusError {
                match self {
                    Self::Corpus(c) => c,
                    other => refinery_corpus::CorpusError::Task {
                        task,
                        message: other.to_string(),
                    },
                }
            }
        }
    };
}
pub(crate) use impl_job_error;

/// A resumable job of several steps, each a set of independent tasks.
pub trait MultiStepJob: Sync {
    type Error: JobError;
    /// What the tasks of one step share (e.g. a plan read from an earlier
    /// step), built once per step invocation.
    type Shared: Sync;
    /// What [`finish`] returns.
    type Report: JobReport;

    /// The job in messages: "MinHash run", "`dedup exact` run", …
    fn what(&self) -> String;
    /// `DIR/<job>`: [`PARAMS_FILE`] and one directory per step.
    fn dir(&self) -> PathBuf;
    /// The steps, in order; `--step NAME` names one.
    fn steps(&self) -> &'static [&'static str];
    /// Threads; never changes the output.
    fn workers(&self) -> usize;
    /// The identity of the run: a rerun into the same directory must match.
    fn fingerprint(&self) -> serde_json::Value;
    /// Checks the parameters (not [`PARAMS_FILE`]).
    fn validate(&self) -> Result<(), Self::Error>;
    /// Ranks of step `step` for a cluster array (`--task 0..ranks`): rank
    /// `r` runs tasks `r, r+ranks, …` of the step.
    fn ranks(&self, step: usize) -> usize;
    /// The number of tasks of step `step` (markers `0..n`; at least the
    /// ranks unless known only from an earlier step) and what they share.
    fn plan(&self, step: usize) -> Result<(usize, Self::Shared), Self::Error>;
    /// Loads what only running tasks need, once the `pending` tasks are
    /// known. Default: nothing.
    fn load(
        &self,
        _step: usize,
        _shared: &mut Self::Shared,
        _pending: &[usize],
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Runs task `task` of step `step` from scratch; it marks itself
    /// complete last.
    fn run_task(
        &self,
        step: usize,
        shared: &Self::Shared,
        task: usize,
        cancel: &AtomicBool,
    ) -> Result<(), Self::Error>;
    /// Builds the report once every step is complete (merges the filter
    /// step's stats into `stats.json`, …).
    fn report(&self, steps: Vec<StepReport>) -> Result<Self::Report, Self::Error>;
}

fn step_name<J: MultiStepJob>(job: &J, step: usize) -> Result<&'static str, StepError> {
    job.steps()
        .get(step)
        .copied()
        .ok_or(StepError::NoStep(step))
}

fn step_dir<J: MultiStepJob>(job: &J, name: &str) -> PathBuf {
    job.dir().join(name)
}

/// Validates the job and checks (or records) its fingerprint.
pub fn check<J: MultiStepJob>(job: &J) -> Result<(), J::Error> {
    job.validate()?;
    let path = job.dir().join(PARAMS_FILE);
    match check_fingerprint(&path, &job.fingerprint())? {
        None => Ok(()),
        Some(key) => Err(StepError::Mismatch {
            path,
            what: job.what(),
            key,
        }
        .into()),
    }
}

/// The `--overwrite` guard: `output` may be cleared only when it holds a
/// run of this job (its [`PARAMS_FILE`]).
pub fn check_overwrite<J: MultiStepJob>(job: &J, output: &Path) -> Result<(), StepError> {
    let marker = job.dir().join(PARAMS_FILE);
    if marker.exists() {
        return Ok(());
    }
    Err(StepError::NotThisJob {
        output: output.to_path_buf(),
        what: job.what(),
        marker: marker.strip_prefix(output).unwrap_or(&marker).to_path_buf(),
    })
}

/// Errors unless every task of step `step` has its marker.
pub fn require_complete<J: MultiStepJob>(job: &J, step: usize) -> Result<(), J::Error> {
    let name = step_name(job, step)?;
    let (n, _) = job.plan(step)?;
    let dir = step_dir(job, name);
    match (0..n).find(|&t| !is_step_complete(&dir, t)) {
        None => Ok(()),
        Some(task) => Err(StepError::Incomplete {
            step: name,
            task,
            dir: dir.join(COMPLETIONS_DIR),
        }
        .into()),
    }
}

/// Runs the pending tasks of step `step` (an index into
/// [`MultiStepJob::steps`]), or only those of rank `only_task`, as a cluster
/// array task does; complete tasks are skipped.
pub fn run_step<J: MultiStepJob>(
    job: &J,
    step: usize,
    only_task: Option<usize>,
    cancel: &AtomicBool,
) -> Result<StepReport, J::Error> {
    check(job)?;
    let name = step_name(job, step)?;
    if step > 0 {
        require_complete(job, step - 1)?;
    }
    let start = Instant::now();
    let ranks = job.ranks(step);
    let (n, mut shared) = job.plan(step)?;
    let candidates: Vec<usize> = match only_task {
        Some(t) if t >= ranks => {
            return Err(StepError::NoTask {
                step: name,
                ranks,
                task: t,
            }
            .into())
        }
        Some(t) => (t..n).step_by(ranks).collect(),
        None => (0..n).collect(),
    };
    let dir = step_dir(job, name);
    let pending: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&t| !is_step_complete(&dir, t))
        .collect();
    if !pending.is_empty() {
        job.load(step, &mut shared, &pending)?;
    }
    let shared = &shared;
    run_pool(&pending, job.workers(), cancel, |t| {
        job.run_task(step, shared, t, cancel)
            .map_err(|e| e.into_corpus(t))
    })?;
    Ok(StepReport {
        name,
        tasks_run: pending.len(),
        tasks_skipped: candidates.len() - pending.len(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// After every step (run here or as separate tasks): checks that each is
/// complete and builds the job's report.
pub fn finish<J: MultiStepJob>(job: &J, steps: Vec<StepReport>) -> Result<J::Report, J::Error> {
    check(job)?;
    for step in 0..job.steps().len() {
        require_complete(job, step)?;
    }
    job.report(steps)
}

/// Runs every step, skipping complete tasks; a step that reran anything
/// invalidates the later steps. Then [`finish`].
pub fn run<J: MultiStepJob>(job: &J, cancel: &AtomicBool) -> Result<J::Report, J::Error> {
    check(job)?;
    let mut reports = Vec::new();
    let mut rerun = false;
    for (i, name) in job.steps().iter().enumerate() {
        if rerun {
            // An earlier step redid work: this step's outputs are stale.
            remove_dir_if_exists(&step_dir(job, name).join(COMPLETIONS_DIR))?;
        }
        let report = run_step(job, i, None, cancel)?;
        rerun |= report.tasks_run > 0;
        reports.push(report);
    }
    finish(job, reports)
}

/// The input files of task `task` of `tasks`: files `task, task+tasks, …`,
/// with their index in `inputs`.
pub fn task_files(
    inputs: &[InputFile],
    tasks: usize,
    task: usize,
) -> impl Iterator<Item = (usize, &InputFile)> {
    inputs.iter().enumerate().skip(task).step_by(tasks.max(1))
}

/// A job whose input is sharded by file: task `t` of `N` reads files `t,
/// t+N, …` (the first and last steps of every dedup job).
pub trait ShardedInput {
    fn inputs(&self) -> &[InputFile];
    fn reader(&self) -> &ReaderOptions;
    /// `N`.
    fn input_tasks(&self) -> usize;
}

/// Implements [`ShardedInput`] for a job struct with `inputs`, `reader` and
/// `tasks` fields.
macro_rules! impl_sharded_input {
    ($t:ty) => {
        impl $crate::job::ShardedInput for $t {
            fn inputs(&self) -> &[refinery_corpus::input::InputFile] {
                &self.inputs
            }
            fn reader(&self) -> &refinery_corpus::readers::ReaderOptions {
                &self.reader
            }
            fn input_tasks(&self) -> usize {
                self.tasks
            }
        }
    };
}
pub(crate) use impl_sharded_input;

/// The checks of every sharded job: at least one task and one worker, no
/// more tasks than [`refinery_corpus::executor::check_tasks`] allows, and
/// file indices that fit a [`DocKey`].
pub fn check_sharding(inputs: usize, tasks: usize, workers: usize) -> Result<(), String> {
    if tasks == 0 || workers == 0 {
        return Err("tasks and workers must be at least 1".into());
    }
    refinery_corpus::executor::check_tasks(tasks, inputs)?;
    if inputs > u32::MAX as usize {
        return Err("more than 2^32 input files".into());
    }
    Ok(())
}

/// The public functions of a job's module, as thin names for the runner's:
/// `step_tasks` ([`MultiStepJob::ranks`]), `run_step`, `finish`, `run`.
macro_rules! job_functions {
    ($job:ty, $report:ty) => {
        /// Ranks of step `step` (an index into [`STEPS`]) for a cluster
        /// array (`--task 0..N`); see [`MultiStepJob::ranks`].
        pub fn step_tasks(job: &$job, step: usize) -> usize {
            $crate::job::MultiStepJob::ranks(job, step)
        }

        /// Runs the pending tasks of step `step` (an index into [`STEPS`]),
        /// or only those of rank `only_task`, as a cluster array task does;
        /// complete tasks are skipped ([`crate::job::run_step`]).
        pub fn run_step(
            job: &$job,
            step: usize,
            only_task: Option<usize>,
            cancel: &std::sync::atomic::AtomicBool,
        ) -> Result<StepReport> {
            $crate::job::run_step(job, step, only_task, cancel)
        }

        /// After every step (run here or as separate tasks): checks that
        /// each is complete and builds the report ([`crate::job::finish`]).
        pub fn finish(job: &$job, steps: Vec<StepReport>) -> Result<$report> {
            $crate::job::finish(job, steps)
        }

        /// Runs every step, skipping complete tasks; a step that reran
        /// anything invalidates the later steps ([`crate::job::run`]).
        pub fn run(job: &$job, cancel: &std::sync::atomic::AtomicBool) -> Result<$report> {
            $crate::job::run(job, cancel)
        }
    };
}
pub(crate) use job_functions;

/// The input files of task `task` of a job, each with its items keyed by
/// (file, document index) ([`FileDocs`]). Cancellation is checked before
/// every item.
pub fn task_docs<'a, J: ShardedInput + MultiStepJob>(
    job: &'a J,
    task: usize,
    cancel: &'a AtomicBool,
) -> impl Iterator<Item = (usize, &'a InputFile, FileDocs<'a, J::Error>)> {
    task_files(job.inputs(), job.input_tasks(), task)
        .map(move |(f, input)| (f, input, FileDocs::open(f, input, job.reader(), cancel)))
}

/// The items of one input file, each with the key `(file, document index)`
/// that it has if it is a document (warnings, drops and failures take no
/// index); errors when cancelled or past 2^32 documents.
pub struct FileDocs<'a, E> {
    file: u32,
    source: &'a str,
    next_doc: u64,
    items: ItemStream,
    cancel: &'a AtomicBool,
    error: PhantomData<fn() -> E>,
}

impl<'a, E> FileDocs<'a, E> {
    fn open(
        file: usize,
        input: &'a InputFile,
        reader: &ReaderOptions,
        cancel: &'a AtomicBool,
    ) -> Self {
        FileDocs {
            // Jobs check that the input files fit u32 before they run.
            file: file as u32,
            source: &input.source,
            next_doc: 0,
            items: readers::open(
                &input.path,
                &input.source,
                reader,
                Arc::new(AtomicU64::new(0)),
            ),
            cancel,
            error: PhantomData,
        }
    }
}

impl<E> FileDocs<'_, E> {
    /// The documents read so far (all of the file's, once the iterator is
    /// exhausted).
    pub fn docs(&self) -> u64 {
        self.next_doc
    }
}

impl<E: From<CorpusError> + From<StepError>> Iterator for FileDocs<'_, E> {
    type Item = Result<(DocKey, Item), E>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.items.next()?;
        if let Err(e) = cancelled(self.cancel) {
            return Some(Err(e.into()));
        }
        let Ok(doc) = u32::try_from(self.next_doc) else {
            return Some(Err(StepError::TooManyDocs(self.source.to_string()).into()));
        };
        if matches!(item, Item::Doc(_)) {
            self.next_doc += 1;
        }
        Some(Ok((
            DocKey {
                file: self.file,
                doc,
            },
            item,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minhash::{MinhashConfig, MinhashError, MinhashJob};
    use refinery_corpus::writers::WriterOptions;

    fn job(dir: &Path, files: &[&str]) -> MinhashJob {
        let input = dir.join("in");
        std::fs::create_dir_all(&input).unwrap();
        for (i, text) in files.iter().enumerate() {
            std::fs::write(input.join(format!("{i}.jsonl")), text).unwrap();
        }
        MinhashJob {
            inputs: refinery_corpus::input::discover(&[input]).unwrap(),
            reader: ReaderOptions::default(),
            writer: WriterOptions::default(),
            output: dir.join("out"),
            config: MinhashConfig::default(),
            tasks: 2,
            workers: 1,
            rejects: false,
            sig_buffer_records: 1 << 10,
            max_memory_bytes: 1 << 20,
            group_by: None,
        }
    }

    #[test]
    fn task_docs_key_documents_by_file_and_index() {
        let d = tempfile::tempdir().unwrap();
        let doc = |id: &str| format!("{{\"id\":\"{id}\",\"text\":\"t {id}\"}}\n");
        let j = job(
            d.path(),
            &[
                &(doc("a") + "not json\n" + &doc("b")),
                &doc("c"),
                &(doc("d") + &doc("e")),
            ],
        );
        let cancel = AtomicBool::new(false);
        let mut seen = Vec::new();
        for (f, _, mut docs) in task_docs(&j, 0, &cancel) {
            for k in docs.by_ref() {
                let (key, item) = k.unwrap();
                if let Item::Doc(doc) = item {
                    seen.push((key.file, key.doc, doc.id));
                }
            }
            seen.push((f as u32, u32::MAX, format!("{} docs", docs.docs())));
        }
        // Task 0 of 2 reads files 0 and 2; the malformed line takes no index.
        let want = [
            (0, 0, "a"),
            (0, 1, "b"),
            (0, u32::MAX, "2 docs"),
            (2, 0, "d"),
            (2, 1, "e"),
            (2, u32::MAX, "2 docs"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(f, i, s)| (f, i, s.to_string()))
            .collect();
        assert_eq!(seen, want);

        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let (_, _, mut docs) = task_docs(&j, 1, &cancel).next().unwrap();
        let first = docs.next().unwrap();
        assert!(matches!(
            first,
            Err(MinhashError::Corpus(CorpusError::Cancelled))
        ));
    }

    #[test]
    fn overwrite_guard_and_step_errors_name_the_job() {
        let d = tempfile::tempdir().unwrap();
        let j = job(d.path(), &["{\"id\":\"a\",\"text\":\"x\"}\n", ""]);
        let out = d.path().join("out");
        let e = check_overwrite(&j, &out).unwrap_err().to_string();
        assert!(
            e.contains("holds no MinHash run (minhash/params.json missing)"),
            "{e}"
        );
        let cancel = AtomicBool::new(false);
        let e = run_step(&j, 1, None, &cancel).unwrap_err().to_string();
        assert!(e.contains("step signatures is not complete"), "{e}");
        let e = run_step(&j, 0, Some(2), &cancel).unwrap_err().to_string();
        assert!(
            e.contains("step signatures has 2 rank(s); no task 2"),
            "{e}"
        );
        assert!(run_step(&j, 4, None, &cancel).is_err());
        // params.json now exists: the guard lets --overwrite clear the output.
        check_overwrite(&j, &out).unwrap();
        let other = MinhashJob { tasks: 1, ..j };
        let e = run_step(&other, 0, None, &cancel).unwrap_err().to_string();
        assert!(
            e.contains("holds a MinHash run with different `tasks`"),
            "{e}"
        );
    }
}

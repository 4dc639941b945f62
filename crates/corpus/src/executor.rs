//! The executor: runs a pipeline as N independent, resumable tasks.
//!
//! Task `i` of `N` reads inputs `i, i+N, i+2N, …` of the job's input list, and
//! pushes their records through a fresh set of stages. An input is a whole
//! file, or a part (a range of row groups) of a large Parquet file (see
//! [`crate::input::split_parquet`]); the parts of a file add up to its
//! account in the stats. The task writes
//!
//! ```text
//! OUT/data/{i:05}_{shard:05}.jsonl.zst     kept documents
//! OUT/rejects/{i:05}_{shard:05}.jsonl.zst  dropped documents + filter_reason (with rejects on)
//! OUT/failures/{i:05}.jsonl                records that could not be read or processed
//! OUT/stats/{i:05}.json                    the task's counters
//! OUT/completions/{i:05}                   written last: the task is done
//! ```
//!
//! A rerun with the same configuration skips tasks that have a completion
//! marker and redoes the others from scratch (their partial shards and temp
//! files are deleted first), so a crash followed by a resume gives output
//! byte-identical to a clean run. Because each task is sequential and
//! self-contained, the output does not depend on the number of worker
//! threads either.
//!
//! The same contract serves a thread pool here ([`run`], `workers` threads)
//! and array jobs on a cluster: run one rank with `only_task`, then any
//! process can merge the stats once all completion markers exist.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::input::InputFile;
use crate::readers::{self, Item, ReaderOptions};
use crate::stage::{Outcome, Stage};
use crate::stats::{FailureRecord, FileStats, RunStats, TaskStats};
use crate::writers::{write_atomic, ShardFile, ShardWriter, WriterOptions, WriterStats};
use crate::{CorpusError, Result};

pub const DATA_DIR: &str = "data";
pub const REJECTS_DIR: &str = "rejects";
pub const STATS_DIR: &str = "stats";
pub const COMPLETIONS_DIR: &str = "completions";
pub const FAILURES_DIR: &str = "failures";
pub const RUN_FILE: &str = "run.json";
pub const STATS_FILE: &str = "stats.json";

/// Builds a fresh, independent set of stages for one task.
pub type StageFactory<'a> = dyn Fn() -> std::result::Result<Vec<Stage>, String> + Sync + 'a;

/// Everything a run needs, already validated.
#[derive(Clone, Debug)]
pub struct Job {
    pub inputs: Vec<InputFile>,
    pub reader: ReaderOptions,
    pub writer: WriterOptions,
    pub output: PathBuf,
    pub rejects: bool,
    /// Number of tasks (ranks), ≥ 1.
    pub tasks: usize,
    /// Threads running tasks, ≥ 1. Does not change the output.
    pub workers: usize,
    /// Run only this rank (cluster array jobs); `None` runs all pending tasks.
    pub only_task: Option<usize>,
    /// Identity of the run (inputs, stages, writer, tasks). A rerun into the
    /// same directory must have the same fingerprint.
    pub fingerprint: serde_json::Value,
}

/// Live counters for a progress display; all updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Progress {
    /// Raw bytes read from input files.
    pub bytes_read: Arc<AtomicU64>,
    /// Total raw bytes of the files this invocation will read.
    pub total_bytes: AtomicU64,
    pub records: AtomicU64,
    pub kept: AtomicU64,
    pub tasks_total: AtomicU64,
    pub tasks_done: AtomicU64,
    /// Set to stop: running tasks abort at the next document (without a
    /// completion marker) and no new task starts.
    pub cancel: AtomicBool,
}

/// What a call to [`run`] did.
#[derive(Debug)]
pub struct RunReport {
    pub tasks_run: Vec<usize>,
    pub tasks_skipped: Vec<usize>,
    /// Tasks that had a completion marker but whose output failed the
    /// resume check (a shard missing or of the wrong size), with what was
    /// wrong; they are redone (and listed in `tasks_run` too).
    pub tasks_redone: Vec<(usize, String)>,
    /// The merged stats, when every task of the run is complete.
    pub stats: Option<RunStats>,
}

fn task_name(i: usize) -> String {
    format!("{i:05}")
}

/// A run may have more tasks than input files (the extra ones write empty
/// outputs), but at most this many.
pub const MAX_TASKS_WITHOUT_FILES: usize = 1024;

/// Checks a task count against the number of input files: a task reads
/// whole files, so tasks beyond the number of files only write empty
/// outputs. Allowed: up to `max(files, MAX_TASKS_WITHOUT_FILES)`. The error
/// says what to use instead. Shared by every job that splits files into tasks.
pub fn check_tasks(tasks: usize, files: usize) -> std::result::Result<(), String> {
    let max = files.max(MAX_TASKS_WITHOUT_FILES);
    if tasks == 0 {
        return Err("tasks must be at least 1".into());
    }
    if tasks > max {
        return Err(format!(
            "{tasks} tasks for {files} input file(s): a task reads whole files, so tasks \
             beyond the number of files would only write empty outputs; use at most {max} \
             (the number of input files, or {MAX_TASKS_WITHOUT_FILES} if that is larger)"
        ));
    }
    Ok(())
}

/// Runs the job's pending tasks on `workers` threads and, when the whole run
/// is complete, merges and checks the stats into `OUT/stats.json`.
pub fn run(job: &Job, stages: &StageFactory<'_>, progress: &Progress) -> Result<RunReport> {
    if job.tasks == 0 || job.workers == 0 {
        return Err(CorpusError::Output {
            path: job.output.clone(),
            message: "tasks and workers must be at least 1".into(),
        });
    }
    check_tasks(job.tasks, job.inputs.len()).map_err(|message| CorpusError::Output {
        path: job.output.clone(),
        message,
    })?;
    let respelled;
    let job = match prepare_output(job)? {
        Some(inputs) => {
            respelled = Job {
                inputs,
                ..job.clone()
            };
            &respelled
        }
        None => job,
    };

    let all: Vec<usize> = match job.only_task {
        Some(t) if t >= job.tasks => {
            return Err(CorpusError::Task {
                task: t,
                message: format!(
                    "only {} tasks in this run (ranks 0..{})",
                    job.tasks, job.tasks
                ),
            })
        }
        Some(t) => vec![t],
        None => (0..job.tasks).collect(),
    };
    // A completed task is trusted only if its outputs are all there, whole.
    let mut redone = Vec::new();
    let mut skipped = Vec::new();
    let mut pending = Vec::new();
    for t in all {
        if !is_complete(&job.output, t) {
            pending.push(t);
        } else if let Some(problem) = check_task_outputs(&job.output, t) {
            redone.push((t, problem));
            pending.push(t);
        } else {
            skipped.push(t);
        }
    }
    for (t, _) in &redone {
        // Unmarked first: a kill during the redo leaves it incomplete.
        let marker = job.output.join(COMPLETIONS_DIR).join(task_name(*t));
        std::fs::remove_file(&marker).map_err(|e| CorpusError::io(&marker, e))?;
    }

    let total: u64 = pending
        .iter()
        .flat_map(|&t| task_files(job, t))
        .map(|f| f.size)
        .sum();
    progress.total_bytes.store(total, Ordering::Relaxed);
    progress
        .tasks_total
        .store(pending.len() as u64, Ordering::Relaxed);

    run_pool(&pending, job.workers, &progress.cancel, |task| {
        let r = run_task(job, task, stages, progress);
        progress.tasks_done.fetch_add(1, Ordering::Relaxed);
        r
    })?;
    if progress.cancel.load(Ordering::Relaxed) {
        return Err(CorpusError::Cancelled);
    }

    let stats = if (0..job.tasks).all(|t| is_complete(&job.output, t)) {
        // Ranks check only their own task on start: check all before merging.
        let damaged: Vec<String> = (0..job.tasks)
            .filter_map(|t| check_task_outputs(&job.output, t).map(|p| format!("task {t}: {p}")))
            .collect();
        if let Some(first) = damaged.first() {
            return Err(CorpusError::Output {
                path: job.output.clone(),
                message: format!(
                    "{} completed task(s) have damaged output ({first}{}); rerun the run (or \
                     those ranks) to redo them",
                    damaged.len(),
                    if damaged.len() > 1 { "; …" } else { "" }
                ),
            });
        }
        let stats = merge_stats(&job.output, job.tasks)?;
        let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
            path: job.output.join(STATS_FILE),
            source: e,
        })?;
        write_atomic(&job.output.join(STATS_FILE), &json)?;
        Some(stats)
    } else {
        None
    };
    Ok(RunReport {
        tasks_run: pending,
        tasks_skipped: skipped,
        tasks_redone: redone,
        stats,
    })
}

/// Runs `f(task)` for every task in `tasks` on `workers` threads, in task
/// order, until done or `cancel` is set. Every task runs even if others
/// fail; the error names all failed tasks. This is the pool behind [`run`],
/// public so that multi-step jobs (e.g. MinHash dedup: signatures → buckets →
/// clusters → filter) run their steps under the same contract: completion
/// markers (see [`is_step_complete`]/[`mark_step_complete`]), resume, and a
/// worker count that never changes the output.
pub fn run_pool(
    tasks: &[usize],
    workers: usize,
    cancel: &AtomicBool,
    f: impl Fn(usize) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let errors: Mutex<Vec<(usize, CorpusError)>> = Mutex::new(Vec::new());
    let threads = workers.min(tasks.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&task) = tasks.get(k) else { break };
                if let Err(e) = f(task) {
                    if let Ok(mut errs) = errors.lock() {
                        errs.push((task, e));
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_default();
    if errors.is_empty() {
        return if cancel.load(Ordering::Relaxed) {
            Err(CorpusError::Cancelled)
        } else {
            Ok(())
        };
    }
    errors.sort_by_key(|(t, _)| *t);
    if errors
        .iter()
        .all(|(_, e)| matches!(e, CorpusError::Cancelled))
    {
        return Err(CorpusError::Cancelled);
    }
    let msg = errors
        .iter()
        .map(|(t, e)| format!("task {t}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(CorpusError::Task {
        task: errors[0].0,
        message: format!(
            "{} task(s) failed (rerun to retry them): {msg}",
            errors.len()
        ),
    })
}

/// True when `step_dir/completions/{task:05}` exists.
pub fn is_step_complete(step_dir: &Path, task: usize) -> bool {
    step_dir
        .join(COMPLETIONS_DIR)
        .join(task_name(task))
        .exists()
}

/// Writes `step_dir/completions/{task:05}`: call it last, after the task's
/// outputs are durably in place.
pub fn mark_step_complete(step_dir: &Path, task: usize) -> Result<()> {
    write_atomic(&step_dir.join(COMPLETIONS_DIR).join(task_name(task)), b"")
}

/// Checks a job's parameter fingerprint against the one recorded at `path`,
/// or records it when there is none. Returns the first top-level key whose
/// value differs (`Some`) when the recorded run had other parameters; the
/// caller refuses to resume then. Shared by `refinery run` and the
/// multi-step dedup jobs.
pub fn check_fingerprint(path: &Path, want: &serde_json::Value) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let have: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json {
                    path: path.to_path_buf(),
                    source: e,
                })?;
            Ok((have != *want).then(|| first_difference(&have, want)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(want).map_err(|e| CorpusError::Json {
                path: path.to_path_buf(),
                source: e,
            })?;
            write_atomic(path, &json)?;
            Ok(None)
        }
        Err(e) => Err(CorpusError::io(path, e)),
    }
}

/// Creates the output layout and checks (or records) the run fingerprint.
/// When the recorded run read the same files under other names (a relative
/// path then, an absolute one now), returns the job's inputs renamed as
/// recorded, so the resumed output is the same as the first run's.
fn prepare_output(job: &Job) -> Result<Option<Vec<InputFile>>> {
    let out = &job.output;
    for d in [DATA_DIR, STATS_DIR, COMPLETIONS_DIR, FAILURES_DIR] {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(|e| CorpusError::io(&p, e))?;
    }
    let path = out.join(RUN_FILE);
    let Some(key) = check_fingerprint(&path, &job.fingerprint)? else {
        return Ok(None);
    };
    if key == "inputs" {
        if let Some(names) = recorded_names_of_same_files(&path, job)? {
            let inputs = job
                .inputs
                .iter()
                .zip(names)
                .map(|(f, source)| InputFile {
                    source,
                    ..f.clone()
                })
                .collect();
            return Ok(Some(inputs));
        }
    }
    Err(CorpusError::Output {
        path: out.clone(),
        message: format!(
            "holds a run with a different configuration (`{key}` differs); \
             use a new output directory, or --overwrite to start over"
        ),
    })
}

/// The fingerprint entry of one input file: `[source, size, canonical path]`
/// (the canonical path is absent when the file cannot be resolved).
pub fn input_fingerprint(f: &InputFile) -> serde_json::Value {
    match std::fs::canonicalize(&f.path) {
        Ok(c) => serde_json::json!([f.source, f.size, c.to_string_lossy()]),
        Err(_) => serde_json::json!([f.source, f.size]),
    }
}

/// When the recorded fingerprint differs from the job's only in the input
/// names, and every input is the same file (same canonical path and size),
/// the recorded names.
fn recorded_names_of_same_files(path: &Path, job: &Job) -> Result<Option<Vec<String>>> {
    let bytes = std::fs::read(path).map_err(|e| CorpusError::io(path, e))?;
    let have: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json {
            path: path.to_path_buf(),
            source: e,
        })?;
    let (Some(have), Some(want)) = (have.as_object(), job.fingerprint.as_object()) else {
        return Ok(None);
    };
    let others_equal = have.len() == want.len()
        && have
            .iter()
            .all(|(k, v)| k == "inputs" || want.get(k) == Some(v));
    let (Some(hi), Some(wi)) = (
        have.get("inputs").and_then(|v| v.as_array()),
        want.get("inputs").and_then(|v| v.as_array()),
    ) else {
        return Ok(None);
    };
    if !others_equal || hi.len() != wi.len() {
        return Ok(None);
    }
    let mut names = Vec::with_capacity(hi.len());
    for (h, w) in hi.iter().zip(wi) {
        let same_size = h.get(1).is_some() && h.get(1) == w.get(1);
        let same_file = h.get(2).is_some() && h.get(2) == w.get(2);
        match h.get(0).and_then(|s| s.as_str()) {
            Some(name) if same_size && same_file => names.push(name.to_string()),
            _ => return Ok(None),
        }
    }
    Ok(Some(names))
}

/// Names the first top-level key whose value differs.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> String {
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (k, va) in a {
            if b.get(k) != Some(va) {
                return k.clone();
            }
        }
        for k in b.keys() {
            if !a.contains_key(k) {
                return k.clone();
            }
        }
    }
    "configuration".into()
}

/// True when task `t` has its completion marker.
pub fn is_complete(out: &Path, t: usize) -> bool {
    is_step_complete(out, t)
}

/// Checks a completed task's output against what its `stats/TTTTT.json`
/// records: every file it names exists with its size, and `data/` and
/// `rejects/` hold as many of the task's shards as it wrote. Returns what is
/// wrong, or `None`. Costs a few `stat` calls per shard, never a read.
pub fn check_task_outputs(out: &Path, task: usize) -> Option<String> {
    let name = task_name(task);
    let stats_name = format!("{STATS_DIR}/{name}.json");
    let ts: TaskStats = match std::fs::read(out.join(&stats_name)) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(ts) => ts,
            Err(e) => return Some(format!("{stats_name} is unreadable ({e})")),
        },
        Err(e) => return Some(format!("{stats_name} cannot be read ({e})")),
    };
    for f in &ts.outputs {
        match std::fs::metadata(out.join(&f.name)) {
            Ok(m) if m.len() == f.bytes => {}
            Ok(m) => {
                return Some(format!(
                    "{} is {} bytes, but {} were written",
                    f.name,
                    m.len(),
                    f.bytes
                ))
            }
            Err(_) => return Some(format!("{} is missing", f.name)),
        }
    }
    for (dir, want) in [
        (DATA_DIR, ts.writer.shards),
        (REJECTS_DIR, ts.rejects.shards),
    ] {
        let have = count_task_shards(&out.join(dir), &name);
        if have != want {
            return Some(format!(
                "{dir}/ holds {have} shard(s) of the task, its stats name {want}"
            ));
        }
    }
    None
}

/// Shards of task `name` (`{name}_*`, not hidden temp files) in `dir`.
fn count_task_shards(dir: &Path, name: &str) -> u64 {
    let prefix = format!("{name}_");
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count() as u64
    })
}

fn task_files(job: &Job, task: usize) -> impl Iterator<Item = &InputFile> {
    job.inputs.iter().skip(task).step_by(job.tasks)
}

/// Deletes whatever an earlier, unfinished attempt of `task` left behind.
fn clean_task(out: &Path, task: usize) -> Result<()> {
    let name = task_name(task);
    let prefixes = [format!("{name}_"), format!(".{name}_"), format!(".{name}.")];
    // A kill can also land while the completion marker itself is being
    // written: its hidden temp file (never the marker) goes too.
    let marker_tmp = format!(".{name}.");
    let completions = out.join(COMPLETIONS_DIR);
    if let Ok(entries) = std::fs::read_dir(&completions) {
        for entry in entries {
            let entry = entry.map_err(|e| CorpusError::io(&completions, e))?;
            if entry.file_name().to_string_lossy().starts_with(&marker_tmp) {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(|e| CorpusError::io(&p, e))?;
            }
        }
    }
    for d in [DATA_DIR, REJECTS_DIR, FAILURES_DIR, STATS_DIR] {
        let dir = out.join(d);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CorpusError::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| CorpusError::io(&dir, e))?;
            let fname = entry.file_name().to_string_lossy().into_owned();
            let stem_match = fname.split('.').next() == Some(name.as_str());
            if stem_match || prefixes.iter().any(|p| fname.starts_with(p.as_str())) {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(|e| CorpusError::io(&p, e))?;
            }
        }
    }
    Ok(())
}

fn run_task(job: &Job, task: usize, factory: &StageFactory<'_>, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    let out = &job.output;
    clean_task(out, task)?;
    let mut stages = factory().map_err(|message| CorpusError::Task { task, message })?;
    let name = task_name(task);
    let mut writer = ShardWriter::new(out.join(DATA_DIR), name.clone(), job.writer.clone())?;
    let mut rejects = if job.rejects {
        Some(ShardWriter::new(
            out.join(REJECTS_DIR),
            name.clone(),
            job.writer.clone(),
        )?)
    } else {
        None
    };
    let mut files = std::collections::BTreeMap::new();
    let mut failures: Vec<FailureRecord> = Vec::new();

    for input in task_files(job, task) {
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        let items = readers::open_input(input, &job.reader, progress.bytes_read.clone());
        for item in items {
            if progress.cancel.load(Ordering::Relaxed) {
                return Err(CorpusError::Cancelled);
            }
            fs.records += 1;
            progress.records.fetch_add(1, Ordering::Relaxed);
            match item {
                Item::Dropped { reason, .. } => {
                    *fs.dropped.entry(reason.into_owned()).or_default() += 1;
                }
                Item::Warning(w) => {
                    // Not a record: undo the count above.
                    fs.records -= 1;
                    progress.records.fetch_sub(1, Ordering::Relaxed);
                    *fs.warnings.entry(w.reason.to_string()).or_default() += 1;
                    failures.push(FailureRecord {
                        kind: "warning".into(),
                        file: input.source.clone(),
                        offset: Some(w.offset),
                        id: None,
                        reason: w.reason.into_owned(),
                        detail: w.detail,
                    });
                }
                Item::Failed(f) => {
                    *fs.failed.entry(f.reason.to_string()).or_default() += 1;
                    failures.push(FailureRecord {
                        kind: "failed".into(),
                        file: input.source.clone(),
                        offset: Some(f.offset),
                        id: None,
                        reason: f.reason.into_owned(),
                        detail: f.detail,
                    });
                }
                Item::Doc(doc) => {
                    if let Some(serde_json::Value::Array(ws)) = doc.metadata.get("warnings") {
                        for w in ws.iter().filter_map(|w| w.as_str()) {
                            *fs.warnings.entry(w.to_string()).or_default() += 1;
                            failures.push(FailureRecord {
                                kind: "warning".into(),
                                file: input.source.clone(),
                                offset: None,
                                id: Some(doc.id.clone()),
                                reason: w.to_string(),
                                detail: "document kept; see metadata.warnings".into(),
                            });
                        }
                    }
                    let mut current = Some(doc);
                    for stage in stages.iter_mut() {
                        let Some(doc) = current.take() else { break };
                        match stage.process(doc) {
                            Outcome::Keep(d) => current = Some(d),
                            Outcome::Drop(mut d, reason) => {
                                if let Some(rw) = rejects.as_mut() {
                                    d.metadata.set("filter_reason", reason.as_ref());
                                    rw.write(&d)?;
                                }
                                *fs.dropped.entry(reason.into_owned()).or_default() += 1;
                            }
                            Outcome::Fail { id, reason, detail } => {
                                *fs.failed.entry(reason.to_string()).or_default() += 1;
                                failures.push(FailureRecord {
                                    kind: "failed".into(),
                                    file: input.source.clone(),
                                    offset: None,
                                    id: Some(id),
                                    reason: reason.into_owned(),
                                    detail,
                                });
                            }
                        }
                    }
                    if let Some(doc) = current {
                        writer.write(&doc)?;
                        fs.kept += 1;
                        progress.kept.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        fs.check(&input.source)?;
        // Parts of one split Parquet file add up to the file's account.
        files
            .entry(input.source.clone())
            .or_insert_with(FileStats::default)
            .merge(&fs);
    }

    let (writer_stats, mut outputs) = writer.finish_listed(DATA_DIR)?;
    let rejects_stats = match rejects {
        Some(r) => {
            let (stats, files) = r.finish_listed(REJECTS_DIR)?;
            outputs.extend(files);
            stats
        }
        None => WriterStats::default(),
    };
    let mut stats = TaskStats {
        task,
        tasks: job.tasks,
        files,
        stages: stages.iter().map(|s| s.stats().clone()).collect(),
        writer: writer_stats,
        rejects: rejects_stats,
        seconds: start.elapsed().as_secs_f64(),
        outputs,
    };
    if !failures.is_empty() {
        let mut buf = Vec::new();
        for f in &failures {
            serde_json::to_writer(&mut buf, f).map_err(|e| CorpusError::Json {
                path: out.join(FAILURES_DIR),
                source: e,
            })?;
            buf.push(b'\n');
        }
        let file = format!("{name}.jsonl");
        write_atomic(&out.join(FAILURES_DIR).join(&file), &buf)?;
        stats.outputs.push(ShardFile {
            name: format!("{FAILURES_DIR}/{file}"),
            bytes: buf.len() as u64,
        });
    }
    let stats_path = out.join(STATS_DIR).join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
        path: stats_path.clone(),
        source: e,
    })?;
    write_atomic(&stats_path, &json)?;
    mark_step_complete(out, task)
}

/// Reads `stats/*.json` of a complete run and merges them.
pub fn merge_stats(out: &Path, tasks: usize) -> Result<RunStats> {
    let mut all = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let path = out.join(STATS_DIR).join(format!("{}.json", task_name(t)));
        let bytes = std::fs::read(&path).map_err(|e| CorpusError::io(&path, e))?;
        let ts: TaskStats = serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json {
            path: path.clone(),
            source: e,
        })?;
        all.push(ts);
    }
    RunStats::merge(&all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn pool_runs_every_task_and_names_the_failures() {
        let ran = AtomicU64::new(0);
        let cancel = AtomicBool::new(false);
        let err = run_pool(&[0, 1, 2, 3, 4], 2, &cancel, |t| {
            ran.fetch_add(1, Ordering::Relaxed);
            if t % 2 == 1 {
                Err(CorpusError::Task {
                    task: t,
                    message: "boom".into(),
                })
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(ran.load(Ordering::Relaxed), 5);
        let msg = err.to_string();
        assert!(
            msg.contains("2 task(s) failed") && msg.contains("task 1:") && msg.contains("task 3:"),
            "{msg}"
        );
    }

    #[test]
    fn cancel_stops_new_tasks() {
        let cancel = AtomicBool::new(false);
        let ran = AtomicU64::new(0);
        let err = run_pool(&[0, 1, 2, 3], 1, &cancel, |_| {
            ran.fetch_add(1, Ordering::Relaxed);
            cancel.store(true, Ordering::Relaxed);
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, CorpusError::Cancelled));
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn step_markers_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_step_complete(dir.path(), 3));
        mark_step_complete(dir.path(), 3).unwrap();
        assert!(is_step_complete(dir.path(), 3));
        assert!(dir.path().join("completions/00003").exists());
    }
}

//! The parts the filter steps of the multi-step dedup jobs (MinHash,
//! substring, exact/URL/line) share: the output layout and accounting of
//! `refinery run` (`data/`, `rejects/`, `stats/TTTTT.json`, `stats.json`).
//! What each step does to a document stays in its own `filter.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use refinery_corpus::executor::{self, DATA_DIR, REJECTS_DIR, STATS_DIR, STATS_FILE};
use refinery_corpus::readers::Item;
use refinery_corpus::stage::StageStats;
use refinery_corpus::stats::{FileStats, RunStats, TaskStats};
use refinery_corpus::writers::{write_atomic, ShardWriter, WriterOptions, WriterStats};
use refinery_corpus::{CorpusError, Document};

use crate::fsutil::remove_prefixed;

/// The shard writers of one filter task.
pub(crate) struct Outputs {
    pub writer: ShardWriter,
    pub rejects: Option<ShardWriter>,
}

/// Removes what an earlier attempt of task `task` left in `data/`,
/// `rejects/` and `stats/`; returns the task's name (`TTTTT`).
pub(crate) fn clear(out: &Path, task: usize) -> Result<String, CorpusError> {
    let name = format!("{task:05}");
    for d in [DATA_DIR, REJECTS_DIR] {
        remove_prefixed(&out.join(d), &format!("{name}_"))?;
    }
    remove_prefixed(&out.join(STATS_DIR), &format!("{name}."))?;
    Ok(name)
}

/// Opens the task's shard writers (rejects only when asked for).
pub(crate) fn open(
    out: &Path,
    name: &str,
    options: &WriterOptions,
    rejects: bool,
) -> Result<Outputs, CorpusError> {
    let writer = ShardWriter::new(out.join(DATA_DIR), name.to_string(), options.clone())?;
    let rejects = if rejects {
        Some(ShardWriter::new(
            out.join(REJECTS_DIR),
            name.to_string(),
            options.clone(),
        )?)
    } else {
        None
    };
    Ok(Outputs { writer, rejects })
}

/// Counts `item` in `fs` as `refinery run` does; returns it when it is a
/// document (the caller decides what happens to it).
pub(crate) fn document(item: Item, fs: &mut FileStats) -> Option<Document> {
    fs.records += 1;
    match item {
        Item::Warning(w) => {
            fs.records -= 1;
            *fs.warnings.entry(w.reason.to_string()).or_default() += 1;
            None
        }
        Item::Dropped { reason, .. } => {
            *fs.dropped.entry(reason.into_owned()).or_default() += 1;
            None
        }
        Item::Failed(fl) => {
            *fs.failed.entry(fl.reason.to_string()).or_default() += 1;
            None
        }
        Item::Doc(d) => Some(d),
    }
}

/// Closes the writers and writes `stats/TTTTT.json` (not the completion
/// marker: the caller marks its step complete after this).
pub(crate) fn finish(
    out: &Path,
    name: &str,
    (task, tasks): (usize, usize),
    files: BTreeMap<String, FileStats>,
    stages: Vec<StageStats>,
    outputs: Outputs,
    start: Instant,
) -> Result<(), CorpusError> {
    let (writer, mut written) = outputs.writer.finish_listed(DATA_DIR)?;
    let rejects = match outputs.rejects {
        Some(r) => {
            let (stats, files) = r.finish_listed(REJECTS_DIR)?;
            written.extend(files);
            stats
        }
        None => WriterStats::default(),
    };
    let stats = TaskStats {
        task,
        tasks,
        files,
        stages,
        writer,
        rejects,
        seconds: start.elapsed().as_secs_f64(),
        outputs: written,
    };
    write_json(&out.join(STATS_DIR).join(format!("{name}.json")), &stats)
}

/// Merges the filter step's task stats into `DIR/stats.json`.
pub(crate) fn merge(out: &Path, tasks: usize) -> Result<RunStats, CorpusError> {
    let stats = executor::merge_stats(out, tasks)?;
    write_json(&out.join(STATS_FILE), &stats)?;
    Ok(stats)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), CorpusError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CorpusError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    write_atomic(path, &json)
}

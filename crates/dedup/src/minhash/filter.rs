//! Step 4: re-read the input with the same sharding and drop the removed
//! documents; the output layout and accounting are those of `refinery run`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use refinery_corpus::executor::{
    self, mark_step_complete, DATA_DIR, REJECTS_DIR, STATS_DIR, STATS_FILE,
};
use refinery_corpus::readers::{self, Item};
use refinery_corpus::stats::{FileStats, RunStats, TaskStats};
use refinery_corpus::writers::{write_atomic, ShardWriter, WriterStats};
use refinery_corpus::CorpusError;

use super::clusters::removals_path;
use super::format::{RecordReader, RemovalCursor};
use super::signatures::ids_path;
use super::{
    cancelled, remove_prefixed, MinhashError, MinhashJob, Result, CLUSTER_KEY, KEPT_ID_KEY,
    REASON_DUPLICATE,
};

pub(super) const STEP: &str = "filter";

pub(super) fn run_task(job: &MinhashJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    let start = Instant::now();
    let out = &job.output;
    let name = format!("{task:05}");
    for d in [DATA_DIR, REJECTS_DIR] {
        remove_prefixed(&out.join(d), &format!("{name}_"))?;
    }
    remove_prefixed(&out.join(STATS_DIR), &format!("{name}."))?;

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
    let mut files = BTreeMap::new();
    for (f, input) in job.task_files(task) {
        // Sorted by document: a cursor advanced alongside the documents, so
        // memory does not grow with the number of removals.
        let mut next = RemovalCursor::open(&removals_path(out, f))?;
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        let mut doc: u64 = 0;
        for item in readers::open(
            &input.path,
            &input.source,
            &job.reader,
            Arc::new(AtomicU64::new(0)),
        ) {
            cancelled(cancel)?;
            fs.records += 1;
            match item {
                Item::Warning(w) => {
                    fs.records -= 1;
                    *fs.warnings.entry(w.reason.to_string()).or_default() += 1;
                }
                Item::Dropped { reason, .. } => {
                    *fs.dropped.entry(reason.into_owned()).or_default() += 1;
                }
                Item::Failed(fl) => {
                    *fs.failed.entry(fl.reason.to_string()).or_default() += 1;
                }
                Item::Doc(mut d) => {
                    let removal = next.next_if_doc(doc)?;
                    doc += 1;
                    match removal {
                        None => {
                            writer.write(&d)?;
                            fs.kept += 1;
                        }
                        Some(r) => {
                            *fs.dropped.entry(REASON_DUPLICATE.to_string()).or_default() += 1;
                            if let Some(rj) = rejects.as_mut() {
                                d.metadata.set("filter_reason", REASON_DUPLICATE);
                                d.metadata.set(CLUSTER_KEY, r.cluster);
                                d.metadata.set(KEPT_ID_KEY, r.kept_id);
                                rj.write(&d)?;
                            }
                        }
                    }
                }
            }
        }
        if let Some(r) = next.peek() {
            return Err(MinhashError::Mismatch {
                path: input.path.clone(),
                message: format!(
                    "has {doc} documents now but document {} was to be removed: the input changed since the signatures step",
                    r.doc
                ),
            });
        }
        check_doc_count(job, f, doc)?;
        fs.check(&input.source)?;
        files.insert(input.source.clone(), fs);
    }
    let stats = TaskStats {
        task,
        tasks: job.tasks,
        files,
        stages: Vec::new(),
        writer: writer.finish()?,
        rejects: match rejects {
            Some(r) => r.finish()?,
            None => WriterStats::default(),
        },
        seconds: start.elapsed().as_secs_f64(),
    };
    let path = out.join(STATS_DIR).join(format!("{name}.json"));
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(mark_step_complete(&job.step_dir(STEP), task)?)
}

/// The document count of a file must be the one the signatures step saw.
fn check_doc_count(job: &MinhashJob, file: usize, docs: u64) -> Result<()> {
    let path = ids_path(&job.output, file);
    let r = RecordReader::open(&path, super::format::Kind::Ids)?;
    if r.count() != docs {
        return Err(MinhashError::Mismatch {
            path: job.inputs[file].path.clone(),
            message: format!(
                "has {docs} documents now, {} when the signatures were computed: the input changed",
                r.count()
            ),
        });
    }
    Ok(())
}

/// Merges the filter step's task stats into `DIR/stats.json`.
pub(super) fn merge(job: &MinhashJob) -> Result<RunStats> {
    let stats = executor::merge_stats(&job.output, job.tasks)?;
    let path = job.output.join(STATS_FILE);
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(stats)
}

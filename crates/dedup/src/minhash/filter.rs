//! Step 4: re-read the input with the same sharding and drop the removed
//! documents; the output layout and accounting are those of `refinery run`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::stats::{FileStats, RunStats};

use super::clusters::removals_path;
use super::format::{RecordReader, RemovalCursor};
use super::signatures::ids_path;
use super::{MinhashError, MinhashJob, Result, CLUSTER_KEY, KEPT_ID_KEY, REASON_DUPLICATE};
use crate::filterstep;

pub(super) const STEP: &str = "filter";

pub(super) fn run_task(job: &MinhashJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    let start = Instant::now();
    let out = &job.output;
    let name = filterstep::clear(out, task)?;
    let mut outputs = filterstep::open(out, &name, &job.writer, job.rejects)?;
    let mut files = BTreeMap::new();
    for (f, input, mut docs) in crate::job::task_docs(job, task, cancel) {
        // Sorted by document: a cursor advanced alongside the documents, so
        // memory does not grow with the number of removals.
        let mut next = RemovalCursor::open(&removals_path(out, f))?;
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        for keyed in docs.by_ref() {
            let (key, item) = keyed?;
            let Some(mut d) = filterstep::document(item, &mut fs) else {
                continue;
            };
            let removal = next.next_if_doc(key.doc as u64)?;
            match removal {
                None => {
                    outputs.writer.write(&d)?;
                    fs.kept += 1;
                }
                Some(r) => {
                    *fs.dropped.entry(REASON_DUPLICATE.to_string()).or_default() += 1;
                    if let Some(rj) = outputs.rejects.as_mut() {
                        d.metadata.set("filter_reason", REASON_DUPLICATE);
                        d.metadata.set(CLUSTER_KEY, r.cluster);
                        d.metadata.set(KEPT_ID_KEY, r.kept_id);
                        rj.write(&d)?;
                    }
                }
            }
        }
        let doc = docs.docs();
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
    filterstep::finish(
        out,
        &name,
        (task, job.tasks),
        files,
        Vec::new(),
        outputs,
        start,
    )?;
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
    Ok(filterstep::merge(&job.output, job.tasks)?)
}

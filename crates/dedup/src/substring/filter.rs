//! Step 4: re-read the input with the same sharding, remove the marked
//! ranges and write the documents; the output layout and accounting are
//! those of `refinery run`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::stats::{FileStats, RunStats};

use super::format::{self, Kind};
use super::merge::marks_path;
use super::{units, Result, SubstringError, SubstringJob, REASON_EMPTY, REMOVED_KEY, STEPS};
use crate::filterstep;

pub(super) fn run_task(job: &SubstringJob, task: usize, cancel: &AtomicBool) -> Result<()> {
    let start = Instant::now();
    let out = &job.output;
    let name = filterstep::clear(out, task)?;
    let mut outputs = filterstep::open(out, &name, &job.writer, job.rejects)?;
    let unit = job.config.unit;
    let mut files = BTreeMap::new();
    for (f, input, items) in crate::job::task_docs(job, task, cancel) {
        let lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let marks = format::read_marks(&marks_path(job, f), &lens)?;
        let mut next = marks.iter().peekable();
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        let mut seen: usize = 0;
        let mut ranges = Vec::new();
        for keyed in items {
            let (key, item) = keyed?;
            let Some(mut d) = filterstep::document(item, &mut fs) else {
                continue;
            };
            let doc = key.doc as usize;
            let have = units::unit_count(&d.text, unit) as u64;
            if lens.get(doc) != Some(&have) {
                return Err(changed(job, f, doc, have, lens.get(doc).copied()));
            }
            ranges.clear();
            while let Some(m) = next.next_if(|m| m.doc as usize == doc) {
                ranges.push((m.start as usize, m.end as usize));
            }
            seen = doc + 1;
            let mut empty = false;
            if !ranges.is_empty() {
                let (text, removed) = units::remove_ranges(&d.text, unit, &ranges);
                if removed > 0 {
                    d.text = text;
                    d.metadata.set(REMOVED_KEY, removed as u64);
                    empty = d.text.trim().is_empty() || d.text.len() < job.config.min_doc_len;
                }
            }
            if empty {
                *fs.dropped.entry(REASON_EMPTY.to_string()).or_default() += 1;
                if let Some(rj) = outputs.rejects.as_mut() {
                    d.metadata.set("filter_reason", REASON_EMPTY);
                    rj.write(&d)?;
                }
            } else {
                outputs.writer.write(&d)?;
                fs.kept += 1;
            }
        }
        if seen != lens.len() {
            return Err(changed(job, f, seen, 0, None));
        }
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
    Ok(mark_step_complete(&job.step_dir(STEPS[3]), task)?)
}

fn changed(
    job: &SubstringJob,
    f: usize,
    doc: usize,
    have: u64,
    had: Option<u64>,
) -> SubstringError {
    let message = match had {
        Some(had) => format!(
            "document {doc} has {have} units now, {had} when the sequences were computed: the input changed"
        ),
        None => format!(
            "has a different number of documents than when the sequences were computed (now {doc}+): the input changed"
        ),
    };
    SubstringError::Mismatch {
        path: job.inputs[f].path.clone(),
        message,
    }
}

/// Merges the filter step's task stats into `DIR/stats.json`.
pub(super) fn merge(job: &SubstringJob) -> Result<RunStats> {
    Ok(filterstep::merge(&job.output, job.tasks)?)
}

//! Step 4: re-read the input with the same sharding, remove the marked
//! ranges and write the documents; the output layout and accounting are
//! those of `refinery run`.

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

use super::format::{self, Kind};
use super::merge::marks_path;
use super::{
    cancelled, remove_prefixed, units, Result, SubstringError, SubstringJob, REASON_EMPTY,
    REMOVED_KEY, STEPS,
};

pub(super) fn run_task(job: &SubstringJob, task: usize, cancel: &AtomicBool) -> Result<()> {
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
    let unit = job.config.unit;
    let mut files = BTreeMap::new();
    for (f, input) in job.task_files(task) {
        let lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let marks = format::read_marks(&marks_path(job, f), &lens)?;
        let mut next = marks.iter().peekable();
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        let mut doc: usize = 0;
        let mut ranges = Vec::new();
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
                    let have = units::unit_count(&d.text, unit) as u64;
                    if lens.get(doc) != Some(&have) {
                        return Err(changed(job, f, doc, have, lens.get(doc).copied()));
                    }
                    ranges.clear();
                    while let Some(m) = next.next_if(|m| m.doc as usize == doc) {
                        ranges.push((m.start as usize, m.end as usize));
                    }
                    doc += 1;
                    let mut empty = false;
                    if !ranges.is_empty() {
                        let (text, removed) = units::remove_ranges(&d.text, unit, &ranges);
                        if removed > 0 {
                            d.text = text;
                            d.metadata.set(REMOVED_KEY, removed as u64);
                            empty =
                                d.text.trim().is_empty() || d.text.len() < job.config.min_doc_len;
                        }
                    }
                    if empty {
                        *fs.dropped.entry(REASON_EMPTY.to_string()).or_default() += 1;
                        if let Some(rj) = rejects.as_mut() {
                            d.metadata.set("filter_reason", REASON_EMPTY);
                            rj.write(&d)?;
                        }
                    } else {
                        writer.write(&d)?;
                        fs.kept += 1;
                    }
                }
            }
        }
        if doc != lens.len() {
            return Err(changed(job, f, doc, 0, None));
        }
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
    let stats = executor::merge_stats(&job.output, job.tasks)?;
    let path = job.output.join(STATS_FILE);
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| CorpusError::Json {
        path: path.clone(),
        source: e,
    })?;
    write_atomic(&path, &json)?;
    Ok(stats)
}

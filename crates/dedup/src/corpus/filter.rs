//! Step 3: re-read the input with the sharding of step 1 and drop (exact,
//! urls) or edit (lines) documents; the output layout and accounting are
//! those of `refinery run`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use refinery_corpus::executor::mark_step_complete;
use refinery_corpus::stage::StageStats;
use refinery_corpus::stats::{FileStats, RunStats};
use refinery_corpus::Document;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use super::decide::removals_path;
use super::format::{Kind, RecordReader, Removal};
use super::hash::{self, HashStats};
use super::normal::{segments, SegmentHasher, Unit};
use crate::filterstep;

use super::{
    read_json, remove_prefixed, write_json, CorpusDedupError, CorpusDedupJob, DocKey, Method,
    Result, DUPLICATE_OF_KEY, LINES_REMOVED_KEY, PARAGRAPHS_REMOVED_KEY, REASON_LINES_EMPTY,
    REASON_URL,
};

pub(super) const STEP: &str = "filter";

/// `filter/stats/TTTTT.json` (lines only).
pub(super) fn line_stats_path(job: &CorpusDedupJob, task: usize) -> PathBuf {
    job.step_dir(STEP)
        .join("stats")
        .join(format!("{task:05}.json"))
}

/// Line-dedup counters of one filter task.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LineStats {
    pub segments_removed: u64,
    pub docs_modified: u64,
    pub docs_emptied: u64,
}

/// The removals of the task's files, sorted by key: the task's file of
/// every partition, merged.
fn load_removals(job: &CorpusDedupJob, task: usize) -> Result<Vec<Removal>> {
    let mut all = Vec::new();
    for p in 0..job.partitions {
        let path = removals_path(job, p, task);
        let mut r = RecordReader::open(&path, Kind::Removals)?;
        let mut last = None;
        while let Some(x) = r.next_removal()? {
            if last.is_some_and(|l| l >= x.key)
                || job.task_of_file(DocKey::unpack(x.key).file as usize) != task
            {
                return Err(CorpusDedupError::Corrupt {
                    path,
                    message: "removals are not sorted by key, or belong to another task".into(),
                });
            }
            last = Some(x.key);
            all.push(x);
        }
    }
    all.sort_unstable_by_key(|r| r.key);
    Ok(all)
}

/// What happens to one document.
enum Fate {
    Keep(Document),
    Drop(Document, &'static str),
}

/// Line dedup of one document.
fn dedup_lines(
    mut d: Document,
    unit: Unit,
    dups: &FxHashSet<u128>,
    hasher: &mut SegmentHasher,
    ls: &mut LineStats,
) -> Fate {
    let segs = segments(&d.text, unit);
    let mut out = String::with_capacity(d.text.len());
    let mut removed = 0u64;
    let mut nonblank_left = false;
    for s in &segs {
        match hasher.segment(&d.text[s.start..s.content_end]) {
            Some(h) if dups.contains(&h) => removed += 1,
            h => {
                nonblank_left |= h.is_some();
                out.push_str(&d.text[s.start..s.end]);
            }
        }
    }
    if removed == 0 {
        return Fate::Keep(d);
    }
    ls.segments_removed += removed;
    let key = match unit {
        Unit::Line => LINES_REMOVED_KEY,
        Unit::Paragraph => PARAGRAPHS_REMOVED_KEY,
    };
    d.metadata.set(key, removed);
    if !nonblank_left {
        ls.docs_emptied += 1;
        return Fate::Drop(d, REASON_LINES_EMPTY);
    }
    ls.docs_modified += 1;
    d.text = out;
    Fate::Keep(d)
}

pub(super) fn run_task(
    job: &CorpusDedupJob,
    task: usize,
    dups: Option<&FxHashSet<u128>>,
    cancel: &AtomicBool,
) -> Result<()> {
    let start = Instant::now();
    let out = &job.output;
    let name = filterstep::clear(out, task)?;
    let ls_path = line_stats_path(job, task);
    if let Some(dir) = ls_path.parent() {
        remove_prefixed(dir, &format!("{name}."))?;
    }

    let hash_stats: HashStats = read_json(&hash::stats_path(job, task))?;
    let removals = match job.method {
        Method::Lines { .. } => Vec::new(),
        _ => load_removals(job, task)?,
    };
    let empty = FxHashSet::default();
    let dups = dups.unwrap_or(&empty);
    let (stage_name, reason) = match job.method {
        Method::Exact => ("exact_dedup", super::REASON_EXACT),
        Method::Urls { .. } => ("url_dedup", REASON_URL),
        Method::Lines { .. } => ("line_dedup", REASON_LINES_EMPTY),
    };
    let mut stage = StageStats {
        name: stage_name.into(),
        kind: match job.method {
            Method::Lines { .. } => "modifier",
            _ => "filter",
        }
        .into(),
        ..StageStats::default()
    };
    let mut ls = LineStats::default();
    let mut hasher = SegmentHasher::new(job.normalize);
    let mut next = removals.iter().peekable();

    let mut outputs = filterstep::open(out, &name, &job.writer, job.rejects)?;
    let mut files = BTreeMap::new();
    for (f, input, mut docs) in crate::job::task_docs(job, task, cancel) {
        let mut fs = FileStats {
            bytes: input.size,
            ..FileStats::default()
        };
        for keyed in docs.by_ref() {
            let (key, item) = keyed?;
            let Some(d) = filterstep::document(item, &mut fs) else {
                continue;
            };
            let key = key.pack();
            stage.docs_in += 1;
            stage.chars_in += d.text.chars().count() as u64;
            let fate = match job.method {
                Method::Lines { unit, .. } => dedup_lines(d, unit, dups, &mut hasher, &mut ls),
                _ => match next.next_if(|r| r.key == key) {
                    Some(r) => {
                        let mut d = d;
                        d.metadata.set(DUPLICATE_OF_KEY, r.kept_id.clone());
                        Fate::Drop(d, reason)
                    }
                    None => Fate::Keep(d),
                },
            };
            match fate {
                Fate::Keep(d) => {
                    stage.docs_out += 1;
                    stage.chars_out += d.text.chars().count() as u64;
                    outputs.writer.write(&d)?;
                    fs.kept += 1;
                }
                Fate::Drop(mut d, reason) => {
                    *stage.dropped.entry(reason.to_string()).or_default() += 1;
                    *fs.dropped.entry(reason.to_string()).or_default() += 1;
                    if let Some(rj) = outputs.rejects.as_mut() {
                        d.metadata.set("filter_reason", reason);
                        rj.write(&d)?;
                    }
                }
            }
        }
        let doc = docs.docs();
        let seen = hash_stats.files.get(&f).copied();
        if seen != Some(doc) {
            return Err(CorpusDedupError::Mismatch {
                path: input.path.clone(),
                message: format!(
                    "has {doc} documents now, {} when it was hashed: the input changed",
                    seen.map_or("none".to_string(), |n| n.to_string())
                ),
            });
        }
        fs.check(&input.source)?;
        files.insert(input.source.clone(), fs);
    }
    if let Some(r) = next.next() {
        return Err(CorpusDedupError::Mismatch {
            path: job.inputs[DocKey::unpack(r.key).file as usize].path.clone(),
            message: format!(
                "document {} was to be removed but was not read: the input changed",
                DocKey::unpack(r.key).doc
            ),
        });
    }
    stage.seconds = start.elapsed().as_secs_f64();
    if matches!(job.method, Method::Lines { .. }) {
        write_json(&ls_path, &ls)?;
    }
    filterstep::finish(
        out,
        &name,
        (task, job.tasks),
        files,
        vec![stage],
        outputs,
        start,
    )?;
    Ok(mark_step_complete(&job.step_dir(STEP), task)?)
}

/// Merges the filter step's task stats into `DIR/stats.json`.
pub(super) fn merge(job: &CorpusDedupJob) -> Result<RunStats> {
    Ok(filterstep::merge(&job.output, job.tasks)?)
}

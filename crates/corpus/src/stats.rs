//! Per-task statistics, their merge, and the accounting invariant.
//!
//! Every task writes a [`TaskStats`] to `stats/NNNNN.json`. When all tasks of
//! a run are complete they are merged into a [`RunStats`] (`stats.json`),
//! which is checked per input file:
//!
//! ```text
//! records read = kept + Σ dropped(reason) + Σ failed(reason)
//! ```
//!
//! `records` is counted where the reader hands items over, `kept` where the
//! writer has written a document, `dropped`/`failed` where a reader or stage
//! decided so; a document lost anywhere between breaks the equation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stage::StageStats;
use crate::writers::{ShardFile, WriterStats};
use crate::{CorpusError, Result};

type Counts = BTreeMap<String, u64>;

fn add_counts(into: &mut Counts, from: &Counts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Accounting of one input file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStats {
    /// Size of the file on disk.
    pub bytes: u64,
    /// Records the reader produced (documents, skipped records and failures).
    pub records: u64,
    pub kept: u64,
    pub dropped: Counts,
    pub failed: Counts,
    /// Anomalies recovered from (outside the invariant): stray bytes between
    /// records, documents kept from a truncated body, …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warnings: Counts,
}

impl FileStats {
    pub fn merge(&mut self, o: &FileStats) {
        self.bytes += o.bytes;
        self.records += o.records;
        self.kept += o.kept;
        add_counts(&mut self.dropped, &o.dropped);
        add_counts(&mut self.failed, &o.failed);
        add_counts(&mut self.warnings, &o.warnings);
    }

    /// Checks `records = kept + Σ dropped + Σ failed`.
    pub fn check(&self, file: &str) -> Result<()> {
        let dropped: u64 = self.dropped.values().sum();
        let failed: u64 = self.failed.values().sum();
        let sum = self.kept + dropped + failed;
        if sum != self.records {
            return Err(CorpusError::Invariant {
                file: file.to_string(),
                records: self.records,
                kept: self.kept,
                dropped,
                failed,
                sum,
            });
        }
        Ok(())
    }
}

/// One record that could not be read or processed, or a recovered anomaly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// `failed` or `warning`.
    pub kind: String,
    pub file: String,
    /// Byte offset in the decompressed stream (reader failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Document id (stage failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub reason: String,
    pub detail: String,
}

/// What one task did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    pub task: usize,
    pub tasks: usize,
    pub files: BTreeMap<String, FileStats>,
    pub stages: Vec<StageStats>,
    pub writer: WriterStats,
    pub rejects: WriterStats,
    pub seconds: f64,
    /// Every file the task wrote besides its stats (shards, failures), with
    /// its size: a resume checks them before trusting the completion marker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ShardFile>,
}

/// The merged account of a whole run (`stats.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    pub tasks: usize,
    pub input_files: u64,
    pub input_bytes: u64,
    /// Records read from all files (= kept + Σ dropped + Σ failed).
    pub input_docs: u64,
    pub kept_docs: u64,
    pub dropped: Counts,
    pub failed: Counts,
    /// Recovered anomalies by reason (not part of the invariant).
    #[serde(default)]
    pub warnings: Counts,
    /// True when the per-file invariant held for every file.
    pub invariant_ok: bool,
    pub stages: Vec<StageStats>,
    pub writer: WriterStats,
    pub rejects: WriterStats,
    /// Sum of task wall times (CPU-ish seconds, not the run's wall time).
    pub task_seconds: f64,
    pub files: BTreeMap<String, FileStats>,
}

impl RunStats {
    /// Merges task stats (in any order) and checks the invariant per file.
    pub fn merge(tasks: &[TaskStats]) -> Result<RunStats> {
        let mut run = RunStats {
            tasks: tasks.first().map(|t| t.tasks).unwrap_or(0),
            ..RunStats::default()
        };
        let mut sorted: Vec<&TaskStats> = tasks.iter().collect();
        sorted.sort_by_key(|t| t.task);
        for t in sorted {
            for (file, fs) in &t.files {
                run.files.entry(file.clone()).or_default().merge(fs);
            }
            for (i, s) in t.stages.iter().enumerate() {
                match run.stages.get_mut(i) {
                    Some(acc) if acc.name == s.name => acc.merge(s),
                    Some(acc) => {
                        return Err(CorpusError::Task {
                            task: t.task,
                            message: format!(
                                "stage {i} is `{}` but other tasks ran `{}`: stats from different pipelines",
                                s.name, acc.name
                            ),
                        })
                    }
                    None => run.stages.push(s.clone()),
                }
            }
            run.writer.merge(&t.writer);
            run.rejects.merge(&t.rejects);
            run.task_seconds += t.seconds;
        }
        for (file, fs) in &run.files {
            fs.check(file)?;
            run.input_files += 1;
            run.input_bytes += fs.bytes;
            run.input_docs += fs.records;
            run.kept_docs += fs.kept;
            add_counts(&mut run.dropped, &fs.dropped);
            add_counts(&mut run.failed, &fs.failed);
            add_counts(&mut run.warnings, &fs.warnings);
        }
        if run.kept_docs != run.writer.docs {
            return Err(CorpusError::Invariant {
                file: "<all files: kept vs. written>".into(),
                records: run.writer.docs,
                kept: run.kept_docs,
                dropped: 0,
                failed: 0,
                sum: run.kept_docs,
            });
        }
        run.invariant_ok = true;
        Ok(run)
    }

    /// Loads `stats.json` from a run directory.
    pub fn load(dir: &Path) -> Result<RunStats> {
        let path = dir.join("stats.json");
        let bytes = std::fs::read(&path).map_err(|e| CorpusError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| CorpusError::Json { path, source: e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: u64, kept: u64, dropped: &[(&str, u64)], failed: &[(&str, u64)]) -> FileStats {
        FileStats {
            bytes: 10,
            records,
            kept,
            dropped: dropped.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            failed: failed.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            warnings: Counts::new(),
        }
    }

    fn task(i: usize, files: Vec<(&str, FileStats)>) -> TaskStats {
        let kept = files.iter().map(|(_, f)| f.kept).sum();
        TaskStats {
            task: i,
            tasks: 2,
            files: files.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            writer: WriterStats {
                docs: kept,
                shards: 1,
                bytes: 5,
                ..WriterStats::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn merge_sums_and_checks() {
        let a = task(
            0,
            vec![("a.warc", file(10, 5, &[("x", 3)], &[("warc:truncated", 2)]))],
        );
        let b = task(1, vec![("b.warc", file(4, 1, &[("x", 2), ("y", 1)], &[]))]);
        let run = RunStats::merge(&[b, a]).unwrap();
        assert_eq!(run.input_docs, 14);
        assert_eq!(run.kept_docs, 6);
        assert_eq!(run.dropped["x"], 5);
        assert_eq!(run.failed["warc:truncated"], 2);
        assert!(run.invariant_ok);
        assert_eq!(run.input_files, 2);
    }

    #[test]
    fn a_lost_document_names_its_file() {
        let a = task(0, vec![("good.warc", file(3, 3, &[], &[]))]);
        let b = task(1, vec![("broken.warc", file(10, 5, &[("x", 3)], &[]))]);
        let err = RunStats::merge(&[a, b]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("broken.warc") && msg.contains("records=10"),
            "{msg}"
        );
    }
}

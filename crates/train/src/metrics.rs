//! Metric sums (evaluation) and the JSONL metrics log of a run.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// Named `(sum, count)` pairs: a mean over tokens or examples that can be accumulated over
/// batches exactly (`sum / count`, not a mean of means).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSums {
    pub sums: BTreeMap<String, (f64, f64)>,
}

impl MetricSums {
    /// Adds `sum` over `count` items to metric `name`.
    pub fn add(&mut self, name: &str, sum: f64, count: f64) {
        let e = self.sums.entry(name.to_string()).or_insert((0.0, 0.0));
        e.0 += sum;
        e.1 += count;
    }

    /// Adds every metric of `other`.
    pub fn merge(&mut self, other: &MetricSums) {
        for (name, (sum, count)) in &other.sums {
            self.add(name, *sum, *count);
        }
    }

    /// `sum / count` (`None` if absent or nothing counted).
    pub fn mean(&self, name: &str) -> Option<f64> {
        self.sums
            .get(name)
            .and_then(|&(s, c)| (c > 0.0).then_some(s / c))
    }

    /// Every metric's mean.
    pub fn means(&self) -> BTreeMap<String, f64> {
        self.sums
            .keys()
            .filter_map(|k| self.mean(k).map(|m| (k.clone(), m)))
            .collect()
    }
}

/// File name of the metrics log in the run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// `metrics.jsonl`: one JSON object per optimizer step, appended and flushed as the run goes.
/// On resume from step `s`, lines with `step > s` (written after the checkpoint by the
/// interrupted run) are dropped first, so the log has no duplicate steps.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `dir/metrics.jsonl`, keeping only the lines with `step <= keep_through`
    /// (`0`: start an empty log).
    pub fn open(dir: &Path, keep_through: usize) -> Result<Self, TrainError> {
        let path = dir.join(METRICS_FILE);
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        let mut kept = String::new();
        if keep_through > 0 {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for line in text.lines() {
                        let step = serde_json::from_str::<serde_json::Value>(line)
                            .ok()
                            .and_then(|v| v.get("step").and_then(|s| s.as_u64()));
                        // A torn last line (no step) is dropped with the rest.
                        if step.is_some_and(|s| s <= keep_through as u64) {
                            kept.push_str(line);
                            kept.push('\n');
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        let tmp = dir.join(format!("{METRICS_FILE}.tmp"));
        std::fs::write(&tmp, kept).map_err(|source| TrainError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        Ok(Self { path, file })
    }

    /// Appends one record as a line and flushes it.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).map_err(|source| TrainError::Json {
            path: self.path.clone(),
            source,
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| TrainError::Io {
                path: self.path.clone(),
                source,
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads a metrics log back (tests, tools).
pub fn read_metrics(path: &Path) -> Result<Vec<serde_json::Value>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l).map_err(|source| TrainError::Json {
                path: path.to_path_buf(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_token_weighted() {
        let mut a = MetricSums::default();
        a.add("loss", 2.0, 1.0);
        let mut b = MetricSums::default();
        b.add("loss", 3.0, 3.0);
        a.merge(&b);
        assert_eq!(a.mean("loss"), Some(1.25));
        assert_eq!(a.mean("missing"), None);
    }

    #[test]
    fn reopening_drops_steps_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::open(dir.path(), 0).unwrap();
        for step in 1..=5 {
            log.write(&serde_json::json!({ "step": step })).unwrap();
        }
        drop(log);
        std::fs::write(
            dir.path().join(METRICS_FILE),
            std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap() + "{\"step\": 6, \"lo",
        )
        .unwrap();
        let mut log = MetricsLog::open(dir.path(), 3).unwrap();
        log.write(&serde_json::json!({ "step": 4 })).unwrap();
        let steps: Vec<u64> = read_metrics(log.path())
            .unwrap()
            .iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
    }
}

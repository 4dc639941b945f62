//! Reading a run directory: a corpus run (`stats.json`, dedup steps,
//! MinHash clusters) or a model run (`metrics.jsonl`, `confusion.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use refinery_corpus::executor::{is_complete, STATS_DIR, STATS_FILE};
use refinery_corpus::stats::{RunStats, TaskStats};
use serde_json::{Map, Value};

use crate::ReportError;

/// The file of training metrics, one JSON object per step.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The optional confusion matrix of a classification run.
pub const CONFUSION_FILE: &str = "confusion.json";

/// A run directory, read.
#[derive(Debug)]
pub enum Run {
    Corpus(Box<CorpusRun>),
    Model(Box<ModelRun>),
    Ablation(Box<crate::ablation::AblationRun>),
}

impl Run {
    pub fn name(&self) -> &str {
        match self {
            Run::Corpus(c) => &c.name,
            Run::Model(m) => &m.name,
            Run::Ablation(a) => &a.name,
        }
    }
}

/// A `refinery run` (or dedup, mix) output directory.
#[derive(Debug)]
pub struct CorpusRun {
    pub dir: PathBuf,
    pub name: String,
    pub stats: RunStats,
    /// Set when the run is unfinished (stats merged from complete tasks).
    pub note: Option<String>,
    /// `[[dedup]]` steps under `dedup/NN-type/`, in order.
    pub dedup: Vec<DedupStep>,
    /// MinHash cluster sizes, when the directory holds MinHash outputs.
    pub clusters: Option<ClusterSizes>,
}

/// One corpus-wide dedup step of a pipeline run.
#[derive(Debug)]
pub struct DedupStep {
    /// The step directory's name, e.g. `00-minhash`.
    pub name: String,
    pub stats: RunStats,
}

/// Sizes of the MinHash duplicate clusters (kept document included).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClusterSizes {
    /// Cluster size → number of clusters of that size.
    pub sizes: BTreeMap<u64, u64>,
    /// Documents removed (Σ (size − 1)).
    pub removed: u64,
}

/// A training or fine-tuning run directory.
#[derive(Debug)]
pub struct ModelRun {
    pub dir: PathBuf,
    pub name: String,
    /// The lines of `metrics.jsonl`.
    pub metrics: Vec<Map<String, Value>>,
    pub confusion: Option<Confusion>,
    /// `train.toml` or `finetune.toml`, when present, verbatim.
    pub config: Option<(String, String)>,
}

/// `confusion.json`: see [`read_confusion`].
#[derive(Debug, PartialEq)]
pub struct Confusion {
    pub labels: Vec<String>,
    /// Rows = gold label, columns = predicted label.
    pub matrix: Vec<Vec<f64>>,
    /// Per label: metric name → value (given in the file, or derived from
    /// the matrix: precision, recall, f1, support).
    pub per_class: BTreeMap<String, BTreeMap<String, f64>>,
    /// True when `per_class` came from the file.
    pub per_class_given: bool,
}

fn io(path: &Path, e: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Reads a run directory: an ablation when it holds `ablation.json`, a model
/// run when it holds `metrics.jsonl`, else a corpus run (`stats.json`, or `stats/` of an unfinished run).
pub fn load(dir: &Path) -> Result<Run, ReportError> {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if dir.join(crate::ablation::ABLATION_FILE).is_file() {
        return Ok(Run::Ablation(Box::new(crate::ablation::AblationRun {
            dir: dir.to_path_buf(),
            name,
            result: crate::ablation::Ablation::read(dir)?,
        })));
    }
    if dir.join(METRICS_FILE).is_file() {
        return Ok(Run::Model(Box::new(load_model(dir, name)?)));
    }
    if dir.join(STATS_FILE).is_file() || dir.join(STATS_DIR).is_dir() {
        return Ok(Run::Corpus(Box::new(load_corpus(dir, name)?)));
    }
    Err(ReportError::NotARun {
        path: dir.to_path_buf(),
    })
}

/// `stats.json`, or the merged stats of the complete tasks of an unfinished
/// run (with a note saying so).
pub fn load_stats(dir: &Path) -> Result<(RunStats, Option<String>), ReportError> {
    if dir.join(STATS_FILE).exists() {
        return Ok((RunStats::load(dir)?, None));
    }
    let stats_dir = dir.join(STATS_DIR);
    let mut tasks: Vec<TaskStats> = Vec::new();
    let entries = std::fs::read_dir(&stats_dir).map_err(|_| ReportError::NotARun {
        path: dir.to_path_buf(),
    })?;
    for e in entries {
        let p = e.map_err(|e| io(&stats_dir, e))?.path();
        if p.extension().is_some_and(|x| x == "json") {
            let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
            let t: TaskStats = serde_json::from_slice(&bytes).map_err(|e| ReportError::Json {
                path: p.clone(),
                message: e.to_string(),
            })?;
            tasks.push(t);
        }
    }
    tasks.retain(|t| is_complete(dir, t.task));
    let total = tasks.first().map(|t| t.tasks).unwrap_or(0);
    let stats = RunStats::merge(&tasks)?;
    Ok((
        stats,
        Some(format!(
            "unfinished run: {} of {total} tasks complete (rerun the same command to resume)",
            tasks.len()
        )),
    ))
}

fn load_corpus(dir: &Path, name: String) -> Result<CorpusRun, ReportError> {
    let (stats, note) = load_stats(dir)?;
    let mut dedup = Vec::new();
    let mut minhash_dirs = vec![dir.join("minhash")];
    let dedup_dir = dir.join("dedup");
    if let Ok(entries) = std::fs::read_dir(&dedup_dir) {
        let mut steps: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        steps.sort();
        for step in steps {
            let Some(step_name) = step.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            minhash_dirs.push(step.join("minhash"));
            if step.join(STATS_FILE).is_file() {
                dedup.push(DedupStep {
                    name: step_name,
                    stats: RunStats::load(&step)?,
                });
            }
        }
    }
    let mut clusters = None;
    for m in minhash_dirs {
        let c = m.join("clusters");
        if c.is_dir() {
            let sizes = cluster_sizes(&c)?;
            let acc = clusters.get_or_insert_with(ClusterSizes::default);
            for (s, n) in sizes.sizes {
                *acc.sizes.entry(s).or_default() += n;
            }
            acc.removed += sizes.removed;
        }
    }
    Ok(CorpusRun {
        dir: dir.to_path_buf(),
        name,
        stats,
        note,
        dedup,
        clusters,
    })
}

/// Cluster sizes from the removal lists `clusters/remove_FFFFF.bin` of a
/// MinHash job: a cluster's size is its kept document plus its removed ones.
pub fn cluster_sizes(clusters_dir: &Path) -> Result<ClusterSizes, ReportError> {
    use refinery_dedup::minhash::format::{Kind, RecordReader};
    let mut files: Vec<PathBuf> = std::fs::read_dir(clusters_dir)
        .map_err(|e| io(clusters_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("remove_") && n.to_string_lossy().ends_with(".bin")
            })
        })
        .collect();
    files.sort();
    // Removed documents per cluster id (ids are dense: 0, 1, …).
    let mut per_cluster: Vec<u32> = Vec::new();
    let mut removed = 0u64;
    for f in files {
        let mut r = RecordReader::open(&f, Kind::Removals)
            .map_err(|e| ReportError::Dedup(e.to_string()))?;
        while let Some(rm) = r
            .next_removal()
            .map_err(|e| ReportError::Dedup(e.to_string()))?
        {
            let c = rm.cluster as usize;
            if per_cluster.len() <= c {
                per_cluster.resize(c + 1, 0);
            }
            per_cluster[c] += 1;
            removed += 1;
        }
    }
    let mut sizes = BTreeMap::new();
    for n in per_cluster.into_iter().filter(|&n| n > 0) {
        *sizes.entry(u64::from(n) + 1).or_default() += 1;
    }
    Ok(ClusterSizes { sizes, removed })
}

fn load_model(dir: &Path, name: String) -> Result<ModelRun, ReportError> {
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let mut metrics = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => metrics.push(m),
            Ok(_) => {
                return Err(ReportError::Json {
                    path,
                    message: format!("line {}: not a JSON object", i + 1),
                })
            }
            // A run killed mid-write leaves a torn last line: skip only that one.
            Err(_) if i + 1 == text.lines().count() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(ReportError::Json {
                    path,
                    message: format!("line {}: {e}", i + 1),
                })
            }
        }
    }
    let confusion = match dir.join(CONFUSION_FILE) {
        p if p.is_file() => Some(read_confusion(&p)?),
        _ => None,
    };
    let config = ["train.toml", "finetune.toml"].iter().find_map(|f| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .map(|t| (f.to_string(), t))
    });
    Ok(ModelRun {
        dir: dir.to_path_buf(),
        name,
        metrics,
        confusion,
        config,
    })
}

/// Reads `confusion.json`:
///
/// ```json
/// {"labels": ["neg", "pos"],
///  "matrix": [[40, 10], [5, 45]],
///  "per_class": {"neg": {"precision": 0.889, "recall": 0.8, "f1": 0.842, "support": 50}}}
/// ```
///
/// `matrix[i][j]` counts examples of gold label `labels[i]` predicted as
/// `labels[j]`; it must be square with one row per label. `per_class` is
/// optional (any numeric metrics per label); without it, precision,
/// recall, F1 and support are derived from the matrix.
pub fn read_confusion(path: &Path) -> Result<Confusion, ReportError> {
    let bad = |message: String| ReportError::Confusion {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let labels: Vec<String> = v["labels"]
        .as_array()
        .ok_or_else(|| bad("`labels` must be an array of strings".into()))?
        .iter()
        .map(|l| match l {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let rows = v["matrix"]
        .as_array()
        .ok_or_else(|| bad("`matrix` must be an array of rows".into()))?;
    if rows.len() != labels.len() {
        return Err(bad(format!(
            "`matrix` has {} rows for {} labels",
            rows.len(),
            labels.len()
        )));
    }
    let mut matrix = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let r = r
            .as_array()
            .ok_or_else(|| bad(format!("matrix[{i}] is not an array")))?;
        if r.len() != labels.len() {
            return Err(bad(format!(
                "matrix[{i}] has {} columns for {} labels",
                r.len(),
                labels.len()
            )));
        }
        let row: Option<Vec<f64>> = r.iter().map(Value::as_f64).collect();
        matrix.push(row.ok_or_else(|| bad(format!("matrix[{i}] holds a non-number")))?);
    }
    let (per_class, given) = match v.get("per_class") {
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (label, metrics) in m {
                let metrics = metrics
                    .as_object()
                    .ok_or_else(|| bad(format!("per_class.{label} is not an object")))?;
                out.insert(
                    label.clone(),
                    metrics
                        .iter()
                        .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
                        .collect(),
                );
            }
            (out, true)
        }
        None | Some(Value::Null) => (derive_per_class(&labels, &matrix), false),
        Some(_) => return Err(bad("`per_class` must be an object".into())),
    };
    Ok(Confusion {
        labels,
        matrix,
        per_class,
        per_class_given: given,
    })
}

/// Precision, recall, F1 and support per label from a confusion matrix
/// (rows gold, columns predicted); 0 where a denominator is 0.
pub fn derive_per_class(
    labels: &[String],
    m: &[Vec<f64>],
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let n = labels.len();
    let mut out = BTreeMap::new();
    for i in 0..n {
        let tp = m[i][i];
        let support: f64 = m[i].iter().sum();
        let predicted: f64 = (0..n).map(|r| m[r][i]).sum();
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let (p, r) = (div(tp, predicted), div(tp, support));
        let f1 = div(2.0 * p * r, p + r);
        out.insert(
            labels[i].clone(),
            BTreeMap::from([
                ("precision".to_string(), p),
                ("recall".to_string(), r),
                ("f1".to_string(), f1),
                ("support".to_string(), support),
            ]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_class_metrics_from_the_matrix() {
        // gold neg: 40 right, 10 predicted pos; gold pos: 5 predicted neg, 45 right.
        let labels = vec!["neg".to_string(), "pos".to_string()];
        let m = vec![vec![40.0, 10.0], vec![5.0, 45.0]];
        let pc = derive_per_class(&labels, &m);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(pc["neg"]["precision"], 40.0 / 45.0));
        assert!(close(pc["neg"]["recall"], 40.0 / 50.0));
        assert!(close(pc["pos"]["precision"], 45.0 / 55.0));
        assert!(close(pc["pos"]["recall"], 45.0 / 50.0));
        let (p, r) = (45.0 / 55.0, 0.9);
        assert!(close(pc["pos"]["f1"], 2.0 * p * r / (p + r)));
        assert!(close(pc["pos"]["support"], 50.0));
    }

    #[test]
    fn confusion_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("confusion.json");
        std::fs::write(&p, r#"{"labels":["a","b"],"matrix":[[1,2]]}"#).unwrap();
        let e = read_confusion(&p).unwrap_err().to_string();
        assert!(
            e.contains("confusion.json") && e.contains("1 rows for 2 labels"),
            "{e}"
        );
        std::fs::write(
            &p,
            r#"{"labels":["a","b"],"matrix":[[1,2],[3,4]],"per_class":{"a":{"f1":0.5}}}"#,
        )
        .unwrap();
        let c = read_confusion(&p).unwrap();
        assert!(c.per_class_given);
        assert_eq!(c.per_class["a"]["f1"], 0.5);
    }
}

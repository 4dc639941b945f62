//! Pipeline configuration: serde structs with defaults, validated once.

use std::path::PathBuf;

use refinery_corpus::executor::Job;
use refinery_corpus::input::{discover, split_parquet};
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::WriterOptions;
use refinery_corpus::Stage;
use serde::{Deserialize, Serialize};

use crate::registry;

/// A configuration error that names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// Dotted path of the offending key, e.g. `stages[2].min_chars`.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A TOML parse or deserialization error of `text` (the contents of `file`) at the key
    /// path `key` (`""` for the top level), with the line of the error's span.
    pub fn from_toml(text: &str, file: &str, key: &str, e: &toml::de::Error) -> Self {
        toml_error(text, file, key, e)
    }
}

/// `[input]`: where the data is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputConfig {
    /// Files or directories (walked recursively, sorted).
    pub paths: Vec<PathBuf>,
}

/// `[output]`: where results go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    pub path: Option<PathBuf>,
    /// Write every dropped document, with `filter_reason`, to `rejects/`.
    pub rejects: bool,
}

/// Default `executor.parquet_split_bytes`: 256 MiB of compressed row groups.
pub const DEFAULT_PARQUET_SPLIT_BYTES: u64 = 256 << 20;

/// `[executor]`: how the work is split and run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Number of tasks (ranks). Task i reads files i, i+tasks, …
    pub tasks: usize,
    /// Threads running tasks locally. Changes speed, never output.
    pub workers: usize,
    /// Parquet files with more compressed row-group bytes than this are split
    /// into parts of whole row groups, each a unit of work like a file, so
    /// that one large file spreads over tasks. 0: never split.
    pub parquet_split_bytes: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        ExecutorConfig {
            tasks: cores,
            workers: cores,
            parquet_split_bytes: DEFAULT_PARQUET_SPLIT_BYTES,
        }
    }
}

/// One `[[stages]]` entry, selected by its `type` key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StageConfig {
    /// HTML → main text (modifier). Passes non-HTML documents through.
    Extract(refinery_extract::ExtractOptions),
    /// Drops documents outside character/word bounds (filter).
    LengthFilter(refinery_filters::LengthConfig),
    /// Gopher repetition rules, datatrove-compatible (filter).
    GopherRepetition(refinery_filters::GopherRepetitionConfig),
    /// Gopher quality rules, datatrove-compatible (filter).
    GopherQuality(refinery_filters::GopherQualityConfig),
    /// C4 line and document rules, datatrove-compatible (modifier).
    C4(refinery_filters::C4Config),
    /// FineWeb line heuristics, datatrove-compatible (filter).
    FinewebQuality(refinery_filters::FineWebQualityConfig),
    /// RefinedWeb line-wise corrections (modifier).
    RefinedwebLines(refinery_filters::RefinedWebLinesConfig),
    /// Drops repeats of a normalized-text hash within a task (filter).
    ExactDedup(refinery_dedup::ExactDedupConfig),
    /// Adds `lang` and `lang_score` with the built-in model (annotator).
    Langid(refinery_langid::LangIdConfig),
    /// Keeps listed languages above a score (filter).
    LangFilter(refinery_langid::LangFilterConfig),
    /// Drops documents by URL: domain, URL and word blocklists (filter).
    UrlFilter(refinery_urlfilter::UrlFilterConfig),
    /// Replaces e-mails, public IPs, cards, IBANs (phones opt-in) with
    /// placeholders and counts them in `metadata.pii` (modifier; never drops).
    Pii(refinery_pii::PiiConfig),
}

impl StageConfig {
    /// The `type` name, used as the stage name in stats.
    pub fn type_name(&self) -> &'static str {
        match self {
            StageConfig::Extract(_) => "extract",
            StageConfig::LengthFilter(_) => "length_filter",
            StageConfig::GopherRepetition(_) => "gopher_repetition",
            StageConfig::GopherQuality(_) => "gopher_quality",
            StageConfig::C4(_) => "c4",
            StageConfig::FinewebQuality(_) => "fineweb_quality",
            StageConfig::RefinedwebLines(_) => "refinedweb_lines",
            StageConfig::ExactDedup(_) => "exact_dedup",
            StageConfig::Langid(_) => "langid",
            StageConfig::LangFilter(_) => "lang_filter",
            StageConfig::UrlFilter(_) => "url_filter",
            StageConfig::Pii(_) => "pii",
        }
    }
}

/// The whole pipeline file, as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// One line shown by `refinery presets`.
    pub description: String,
    pub input: InputConfig,
    pub reader: ReaderOptions,
    pub stages: Vec<StageConfig>,
    pub writer: WriterOptions,
    pub output: OutputConfig,
    pub executor: ExecutorConfig,
    /// Corpus-wide dedup steps, run in order after the stages (`[[dedup]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dedup: Vec<crate::dedup::DedupStepConfig>,
}

impl PipelineConfig {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            stage_error(text, file, &key).unwrap_or_else(|| toml_error(text, file, &key, &inner))
        })
    }

    /// The configuration as TOML (e.g. the effective pipeline of a cluster run).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::new("(serialize)", "", e.to_string()))
    }

    /// Reads and parses a pipeline file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "", e.to_string()))?;
        Self::from_toml(&text, &file)
    }

    /// Checks everything once and returns the typed pipeline.
    pub fn validate(self, file: &str) -> Result<Pipeline, ConfigError> {
        if self.input.paths.is_empty() {
            return Err(ConfigError::new(
                file,
                "input.paths",
                "no input given (set input.paths or pass --input)",
            ));
        }
        let output = self.output.path.clone().ok_or_else(|| {
            ConfigError::new(
                file,
                "output.path",
                "no output directory given (set output.path or pass --output)",
            )
        })?;
        if self.executor.tasks == 0 {
            return Err(ConfigError::new(
                file,
                "executor.tasks",
                "must be at least 1",
            ));
        }
        if self.executor.workers == 0 {
            return Err(ConfigError::new(
                file,
                "executor.workers",
                "must be at least 1",
            ));
        }
        if self.writer.row_group_bytes < 1024 {
            return Err(ConfigError::new(
                file,
                "writer.row_group_bytes",
                "must be at least 1024",
            ));
        }
        if self.writer.max_shard_bytes < 1024 {
            return Err(ConfigError::new(
                file,
                "writer.max_shard_bytes",
                "must be at least 1024",
            ));
        }
        if !(1..=19).contains(&self.writer.zstd_level) {
            return Err(ConfigError::new(
                file,
                "writer.zstd_level",
                "must be in 1..=19",
            ));
        }
        if self.reader.max_record_bytes == 0 {
            return Err(ConfigError::new(
                file,
                "reader.max_record_bytes",
                "must be positive",
            ));
        }
        if self.reader.text_field.is_empty() {
            return Err(ConfigError::new(
                file,
                "reader.text_field",
                "must not be empty",
            ));
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            let checked = registry::check(s).map_err(|(key, msg)| {
                let key = if key.is_empty() {
                    format!("stages[{i}]")
                } else {
                    format!("stages[{i}].{key}")
                };
                ConfigError::new(file, key, msg)
            })?;
            stages.push(checked);
        }
        for (i, d) in self.dedup.iter().enumerate() {
            d.check()
                .map_err(|(key, msg)| ConfigError::new(file, format!("dedup[{i}].{key}"), msg))?;
        }
        Ok(Pipeline {
            dedup: self.dedup.clone(),
            config: self.clone(),
            inputs: self.input.paths,
            output,
            rejects: self.output.rejects,
            reader: self.reader,
            writer: self.writer,
            stages,
            tasks: self.executor.tasks,
            workers: self.executor.workers,
            parquet_split_bytes: self.executor.parquet_split_bytes,
        })
    }
}

/// Stages are an internally tagged enum, so serde reports errors inside one
/// only as `stages[i]`. This re-reads that one table as its variant's config
/// to name the key and its line.
fn stage_error(text: &str, file: &str, key: &str) -> Option<ConfigError> {
    let idx: usize = key
        .strip_prefix("stages[")?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    let root: toml::Table = toml::from_str(text).ok()?;
    let mut table = root
        .get("stages")?
        .as_array()?
        .get(idx)?
        .as_table()?
        .clone();
    let ty = table.remove("type")?.as_str()?.to_string();
    fn probe<T: serde::de::DeserializeOwned>(t: toml::Table) -> Option<(String, String)> {
        match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(t)) {
            Ok(_) => None,
            Err(e) => Some((
                e.path().to_string(),
                e.into_inner().message().trim().to_string(),
            )),
        }
    }
    let (inner, message) = match ty.as_str() {
        "extract" => probe::<refinery_extract::ExtractOptions>(table),
        "length_filter" => probe::<refinery_filters::LengthConfig>(table),
        "gopher_repetition" => probe::<refinery_filters::GopherRepetitionConfig>(table),
        "gopher_quality" => probe::<refinery_filters::GopherQualityConfig>(table),
        "c4" => probe::<refinery_filters::C4Config>(table),
        "fineweb_quality" => probe::<refinery_filters::FineWebQualityConfig>(table),
        "refinedweb_lines" => probe::<refinery_filters::RefinedWebLinesConfig>(table),
        "exact_dedup" => probe::<refinery_dedup::ExactDedupConfig>(table),
        "langid" => probe::<refinery_langid::LangIdConfig>(table),
        "lang_filter" => probe::<refinery_langid::LangFilterConfig>(table),
        "url_filter" => probe::<refinery_urlfilter::UrlFilterConfig>(table),
        "pii" => probe::<refinery_pii::PiiConfig>(table),
        _ => None,
    }?;
    // The line of the key inside the idx-th [[stages]] block.
    let first = inner.split(['.', '[']).next().unwrap_or("");
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[stages]]"))
        .nth(idx)
        .and_then(|(start, _)| {
            text.lines().enumerate().skip(start + 1).find(|(_, l)| {
                let l = l.trim_start();
                l.starts_with(first) && l[first.len()..].trim_start().starts_with('=')
            })
        })
        .map(|(n, _)| format!(" (line {})", n + 1))
        .unwrap_or_default();
    let key = if inner.is_empty() || inner == "." {
        key.to_string()
    } else {
        format!("{key}.{inner}")
    };
    Some(ConfigError::new(file, key, format!("{message}{line}")))
}

fn toml_error(text: &str, file: &str, key: &str, e: &toml::de::Error) -> ConfigError {
    let (key, message) = refinery_corpus::toml_error_parts(text, key, e.message(), e.span());
    ConfigError::new(file, key, message)
}

/// A validated pipeline, ready to run.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The configuration it came from (for `run.json` and display).
    pub config: PipelineConfig,
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub rejects: bool,
    pub reader: ReaderOptions,
    pub writer: WriterOptions,
    pub stages: Vec<registry::CheckedStage>,
    pub tasks: usize,
    pub workers: usize,
    /// Split Parquet files larger than this over tasks (0: never).
    pub parquet_split_bytes: u64,
    /// Corpus-wide dedup steps after the stages.
    pub dedup: Vec<crate::dedup::DedupStepConfig>,
}

impl Pipeline {
    /// Discovers the input files and builds the executor job.
    pub fn job(&self, only_task: Option<usize>) -> Result<Job, refinery_corpus::CorpusError> {
        let files = discover(&self.inputs)?;
        let forced = self.reader.format == refinery_corpus::readers::Format::Parquet;
        let inputs = split_parquet(files, self.parquet_split_bytes, forced);
        // One entry per file, [source, size, canonical path]: the parts of a
        // split file (consecutive in the list) add up to its size.
        let mut files: Vec<(&refinery_corpus::input::InputFile, u64)> = Vec::new();
        for f in &inputs {
            match files.last_mut() {
                Some((g, n))
                    if g.source == f.source
                        && f.row_groups.as_ref().is_some_and(|r| r.start > 0) =>
                {
                    *n += f.size
                }
                _ => files.push((f, f.size)),
            }
        }
        let inputs_fp: Vec<serde_json::Value> = files
            .iter()
            .map(|(f, n)| {
                let mut v = refinery_corpus::executor::input_fingerprint(f);
                v[1] = serde_json::json!(n);
                v
            })
            .collect();
        let mut fingerprint = serde_json::json!({
            "inputs": inputs_fp,
            "reader": self.reader,
            "stages": self.config.stages,
            "writer": self.writer,
            "rejects": self.rejects,
            "tasks": self.tasks,
        });
        // Split Parquet files: the parts decide which task reads what.
        let parts: Vec<_> = inputs
            .iter()
            .filter_map(|f| {
                let r = f.row_groups.as_ref()?;
                Some(serde_json::json!([f.source, r.start, r.end]))
            })
            .collect();
        if !parts.is_empty() {
            fingerprint["parquet_parts"] = serde_json::Value::Array(parts);
        }
        Ok(Job {
            inputs,
            reader: self.reader.clone(),
            writer: self.writer.clone(),
            output: self.output.clone(),
            rejects: self.rejects,
            tasks: self.tasks,
            workers: self.workers,
            only_task,
            fingerprint,
        })
    }

    /// Builds a fresh set of stages (one per task).
    pub fn build_stages(&self) -> Result<Vec<Stage>, String> {
        registry::build(&self.stages)
    }

    /// The factory the executor calls once per task.
    pub fn stage_factory(&self) -> impl Fn() -> Result<Vec<Stage>, String> + Sync + '_ {
        move || self.build_stages()
    }
}

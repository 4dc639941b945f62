//! The experiment file: serde structs with defaults ([`ExperimentConfig`]), validated once into
//! [`CheckedExperiment`]. Errors name the file, the key and, where it can be found, the line.
//!
//! ```toml
//! description = "Does the Gopher repetition filter help?"
//! output = "ablations/gopher"          # the CLI's --out wins
//!
//! [base]
//! preset = "gopher"                   # or pipeline = "my-pipeline.toml"
//! input = ["crawl/"]                  # replaces the pipeline's input.paths
//!
//! [tokenizer]
//! vocab_size = 8192                   # byte-level BPE, trained once on the base output
//!
//! [train]
//! preset = "gpt-tiny"                 # a gpt-clm preset of `refinery pretrain`
//! budget_tokens = 2_000_000           # every run trains on this many tokens
//! seeds = [0, 1, 2]                   # at least 2
//!
//! [[eval]]
//! name = "imdb"
//! path = "heldout/imdb.txt"           # a UTF-8 text file, never trained on
//!
//! [[variants]]
//! name = "no-repetition"
//! drop_stages = ["gopher_repetition"] # by type name, or by index
//!
//! [[variants]]
//! name = "stricter-length"
//! set = { "length_filter.min_chars" = 500 }
//!
//! [[variants]]
//! name = "minhash"
//! add_dedup = [{ type = "minhash" }]
//! ```
//!
//! Relative paths are relative to the working directory, as in pipeline files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use refinery_pipeline::{presets, ConfigError, Pipeline, PipelineConfig};
use refinery_train::config::{CheckContext, TrainFile};
use refinery_train::data::SourceConfig;
use serde::{Deserialize, Serialize};

/// The implicit first variant: the base pipeline unchanged.
pub const BASE: &str = "base";

/// `[base]`: the pipeline every variant starts from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseSection {
    /// A pipeline TOML file.
    pub pipeline: Option<PathBuf>,
    /// Or a shipped preset (`refinery presets`).
    pub preset: Option<String>,
    /// Replaces the pipeline's `input.paths`.
    pub input: Vec<PathBuf>,
    /// Replace `executor.tasks` / `executor.workers`.
    pub tasks: Option<usize>,
    pub workers: Option<usize>,
}

/// `[tokenizer]`: the one byte-level BPE tokenizer of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerSection {
    pub vocab_size: usize,
    pub min_frequency: u64,
    /// Train on at most this many bytes of the base output.
    pub sample_bytes: Option<u64>,
}

impl Default for TokenizerSection {
    fn default() -> Self {
        Self {
            vocab_size: 8192,
            min_frequency: 2,
            sample_bytes: None,
        }
    }
}

/// `[train]`: the model, the token budget and the seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// A `gpt-clm` preset of `refinery pretrain` (bits per byte needs a causal LM).
    pub preset: String,
    /// Tokens every run trains on (rounded up to whole optimizer steps).
    pub budget_tokens: u64,
    /// One run per seed per variant (initialisation and data order); at least 2.
    pub seeds: Vec<u64>,
    /// Replace the preset's `data.batch_size`, `data.seq_len`, `optim.lr`, `model.dropout`.
    pub batch_size: Option<usize>,
    pub seq_len: Option<usize>,
    pub lr: Option<f64>,
    pub dropout: Option<f64>,
    /// Warmup as a share of the steps (the preset's fixed warmup may exceed a short run).
    pub warmup_ratio: f64,
    /// Checkpoint every this many steps (default: a quarter of the run), so that a killed
    /// run resumes close to where it stopped.
    pub save_every: Option<usize>,
    /// HF `config.json` keys replacing the preset's model size (`n_layer`, `n_embd`, ...).
    pub hf: toml::Table,
    /// Training and evaluation device (`cpu`, `cuda:0`, ...).
    pub device: String,
    /// Rows per evaluation batch.
    pub eval_batch_size: usize,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            preset: "gpt-tiny".into(),
            budget_tokens: 0,
            seeds: vec![0, 1],
            batch_size: None,
            seq_len: None,
            lr: None,
            dropout: None,
            warmup_ratio: 0.1,
            save_every: None,
            hf: toml::Table::new(),
            device: "cpu".into(),
            eval_batch_size: 8,
        }
    }
}

/// A stage of the base pipeline: its index in `[[stages]]`, or its `type` (when unique).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StageRef {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for StageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageRef::Index(i) => write!(f, "{i}"),
            StageRef::Name(n) => f.write_str(n),
        }
    }
}

/// `[[variants]]`: one small change to the base pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VariantConfig {
    /// Names the output directory: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Stages of the base pipeline to remove.
    pub drop_stages: Vec<StageRef>,
    /// `"STAGE.KEY" = value`: a stage's parameter (STAGE: type name or index).
    pub set: BTreeMap<String, toml::Value>,
    /// Stages appended after the base stages (`[[stages]]` tables).
    pub add_stages: Vec<toml::Table>,
    /// Indices of the base pipeline's `[[dedup]]` steps to remove.
    pub drop_dedup: Vec<usize>,
    /// Corpus-wide dedup steps appended to the chain (`[[dedup]]` tables).
    pub add_dedup: Vec<toml::Table>,
}

/// `[[eval]]`: a text file the models are evaluated on (never trained on).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSetConfig {
    pub name: String,
    pub path: PathBuf,
}

/// The whole experiment file, as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub description: String,
    pub output: Option<PathBuf>,
    pub base: BaseSection,
    pub tokenizer: TokenizerSection,
    pub train: TrainSection,
    pub variants: Vec<VariantConfig>,
    pub eval: Vec<EvalSetConfig>,
}

/// A variant, ready to refine.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    /// The change, in words (`drop gopher_repetition; add dedup minhash`).
    pub change: String,
    /// Writes into `OUT/variants/NAME/refined/`.
    pub pipeline: Pipeline,
}

/// An eval set, read.
#[derive(Clone, Debug)]
pub struct EvalSet {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// A validated experiment.
#[derive(Clone, Debug)]
pub struct CheckedExperiment {
    /// The experiment file's name, for messages.
    pub file: String,
    pub description: String,
    pub output: PathBuf,
    /// The base first.
    pub variants: Vec<Variant>,
    pub tokenizer: TokenizerSection,
    /// The training config of every run; data source, output directory and seed are set per
    /// run ([`CheckedExperiment::train_file`]).
    pub train: TrainFile,
    pub preset: String,
    pub steps: usize,
    pub tokens_per_run: u64,
    pub budget_tokens: u64,
    pub seeds: Vec<u64>,
    pub eval: Vec<EvalSet>,
    pub device: String,
    pub eval_batch_size: usize,
}

fn err(file: &str, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(file, key, message)
}

/// ` (line N)` of the first line at or after `from` containing `needle`, if any.
fn line_of(text: &str, needle: &str, from: usize) -> String {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .map(|(n, _)| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

/// The line index where the `i`-th `[[header]]` table starts (0 if not found).
fn table_start(text: &str, header: &str, i: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(header))
        .nth(i)
        .map_or(0, |(n, _)| n)
}

impl ExperimentConfig {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::from_toml(text, file, "", &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::from_toml(text, file, &key, &e.into_inner())
        })
    }

    /// Reads, parses and validates an experiment file.
    pub fn load(path: &Path, output: Option<PathBuf>) -> Result<CheckedExperiment, ConfigError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| err(&file, "(file)", e.to_string()))?;
        let mut cfg = Self::from_toml(&text, &file)?;
        if output.is_some() {
            cfg.output = output;
        }
        cfg.validate(&file, &text)
    }

    /// Checks everything once. `text` is the file's TOML, for line numbers.
    pub fn validate(self, file: &str, text: &str) -> Result<CheckedExperiment, ConfigError> {
        let output = self.output.clone().ok_or_else(|| {
            err(
                file,
                "output",
                "no output directory (set output or pass --out)",
            )
        })?;
        // 1. The base pipeline, as a TOML table the variants edit.
        let (base_table, base_name) = self.base_pipeline(file, text)?;
        // 2. The variants: names, then each change against the base.
        let variants = self.checked_variants(file, text, &output, &base_table, &base_name)?;
        // 3. The tokenizer.
        let t = &self.tokenizer;
        if t.vocab_size < 300 {
            return Err(err(
                file,
                "tokenizer.vocab_size",
                format!(
                    "{} is too small: a byte-level BPE needs 256 byte tokens, a separator and merges (at least 300){}",
                    t.vocab_size,
                    line_of(text, "vocab_size", 0)
                ),
            ));
        }

        // 4. Training: seeds, budget, the preset with its overrides.
        let (train, steps, per_step) = self.checked_train(file, text, &output)?;
        let tr = &self.train;
        // 5. The eval sets.
        let eval = self.eval_sets(file, text)?;
        Ok(CheckedExperiment {
            file: file.to_string(),
            description: self.description,
            output,
            variants,
            tokenizer: self.tokenizer,
            tokens_per_run: steps as u64 * per_step,
            budget_tokens: tr.budget_tokens,
            seeds: tr.seeds.clone(),
            preset: tr.preset.clone(),
            steps,
            device: tr.device.clone(),
            eval_batch_size: tr.eval_batch_size,
            train,
            eval,
        })
    }

    /// The base pipeline as a TOML table (the variants edit it) and the name of its source.
    fn base_pipeline(&self, file: &str, text: &str) -> Result<(toml::Table, String), ConfigError> {
        let (base_text, base_name) = match (&self.base.pipeline, &self.base.preset) {
            (Some(_), Some(_)) => {
                return Err(err(
                    file,
                    "base",
                    format!(
                        "give base.pipeline or base.preset, not both{}",
                        line_of(text, "[base]", 0)
                    ),
                ))
            }
            (Some(p), None) => (
                std::fs::read_to_string(p).map_err(|e| {
                    err(
                        file,
                        "base.pipeline",
                        format!("{}: {e}{}", p.display(), line_of(text, "pipeline", 0)),
                    )
                })?,
                p.display().to_string(),
            ),
            (None, Some(name)) => match presets::get(name) {
                Some(p) => (p.toml.to_string(), format!("preset `{name}`")),
                None => {
                    return Err(err(
                        file,
                        "base.preset",
                        format!(
                            "unknown preset `{name}`; available: {}{}",
                            presets::names().join(", "),
                            line_of(text, "preset", 0)
                        ),
                    ))
                }
            },
            (None, None) => {
                return Err(err(
                    file,
                    "base",
                    "no base pipeline: set base.pipeline = \"FILE\" or base.preset = \"NAME\"",
                ))
            }
        };
        // Parsed once as a pipeline, so that its own errors name its own file.
        PipelineConfig::from_toml(&base_text, &base_name)?;
        let base_table: toml::Table = toml::from_str(&base_text)
            .map_err(|e| err(&base_name, "(top level)", e.message().to_string()))?;

        Ok((base_table, base_name))
    }

    /// The base and every variant, validated as pipelines writing under `output`.
    fn checked_variants(
        &self,
        file: &str,
        text: &str,
        output: &Path,
        base_table: &toml::Table,
        base_name: &str,
    ) -> Result<Vec<Variant>, ConfigError> {
        let mut variants = Vec::with_capacity(self.variants.len() + 1);
        let mut names = vec![BASE.to_string()];
        let base = VariantConfig {
            name: BASE.into(),
            ..VariantConfig::default()
        };
        for (i, v) in std::iter::once(&base).chain(&self.variants).enumerate() {
            let at = if i == 0 {
                0
            } else {
                table_start(text, "[[variants]]", i - 1)
            };
            let key = |k: &str| format!("variants[{}].{k}", i.wrapping_sub(1));
            if i > 0 {
                if v.name.is_empty()
                    || !v
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    || v.name.starts_with('.')
                {
                    return Err(err(
                        file,
                        key("name"),
                        format!(
                            "{:?}: a variant needs a name of letters, digits, '-', '_', '.'{}",
                            v.name,
                            line_of(text, "[[variants]]", at)
                        ),
                    ));
                }
                if names.contains(&v.name) {
                    let what = if v.name == BASE {
                        "`base` is the unchanged base pipeline"
                    } else {
                        "used twice"
                    };
                    return Err(err(
                        file,
                        key("name"),
                        format!(
                            "{:?}: {what}{}",
                            v.name,
                            line_of(text, &format!("\"{}\"", v.name), at)
                        ),
                    ));
                }
                names.push(v.name.clone());
                if v.drop_stages.is_empty()
                    && v.set.is_empty()
                    && v.add_stages.is_empty()
                    && v.drop_dedup.is_empty()
                    && v.add_dedup.is_empty()
                {
                    return Err(err(
                        file,
                        format!("variants[{}]", i - 1),
                        format!(
                            "variant {:?} changes nothing (drop_stages, set, add_stages, drop_dedup or add_dedup){}",
                            v.name,
                            line_of(text, "[[variants]]", at)
                        ),
                    ));
                }
            }
            let (table, change) = apply(base_table, v, |k, needle, m| {
                err(file, key(k), format!("{m}{}", line_of(text, needle, at)))
            })?;
            let vtext =
                toml::to_string(&table).map_err(|e| err(file, key("(variant)"), e.to_string()))?;
            let vfile = if i == 0 {
                base_name.to_string()
            } else {
                format!("{file}: variant {:?} ({base_name} changed)", v.name)
            };
            let mut pc = PipelineConfig::from_toml(&vtext, &vfile)?;
            if !self.base.input.is_empty() {
                pc.input.paths = self.base.input.clone();
            }
            if let Some(t) = self.base.tasks {
                pc.executor.tasks = t;
            }
            if let Some(w) = self.base.workers {
                pc.executor.workers = w;
            }
            pc.output.path = Some(output.join("variants").join(&v.name).join("refined"));
            pc.output.rejects = false;
            let pipeline = pc.validate(&vfile)?;
            variants.push(Variant {
                name: v.name.clone(),
                change,
                pipeline,
            });
        }

        Ok(variants)
    }

    /// The training config of every run (checked once), its steps and tokens per step.
    fn checked_train(
        &self,
        file: &str,
        text: &str,
        output: &Path,
    ) -> Result<(TrainFile, usize, u64), ConfigError> {
        let t = &self.tokenizer;
        let tr = &self.train;
        if tr.seeds.len() < 2 {
            return Err(err(
                file,
                "train.seeds",
                format!(
                    "{:?}: at least 2 seeds, or no difference can be told from seed noise{}",
                    tr.seeds,
                    line_of(text, "seeds", 0)
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(d) = tr.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(err(
                file,
                "train.seeds",
                format!("seed {d} appears twice{}", line_of(text, "seeds", 0)),
            ));
        }
        if tr.budget_tokens == 0 {
            return Err(err(
                file,
                "train.budget_tokens",
                "set the token budget of every run (e.g. budget_tokens = 2_000_000)",
            ));
        }
        if !(0.0..1.0).contains(&tr.warmup_ratio) {
            return Err(err(
                file,
                "train.warmup_ratio",
                format!("{} must be in [0, 1)", tr.warmup_ratio),
            ));
        }
        if tr.eval_batch_size == 0 {
            return Err(err(file, "train.eval_batch_size", "must be at least 1"));
        }
        let mut train = TrainFile::preset(&tr.preset).map_err(|e| {
            err(
                file,
                "train.preset",
                format!("{e}{}", line_of(text, "preset", 0)),
            )
        })?;
        if train.task.kind() != "gpt-clm" {
            return Err(err(
                file,
                "train.preset",
                format!(
                    "{} trains a {} model; bits per byte needs a causal LM (a gpt-clm preset such as gpt-tiny)",
                    tr.preset,
                    train.task.kind()
                ),
            ));
        }
        if let Some(b) = tr.batch_size {
            train.data.batch_size = b;
        }
        if let Some(s) = tr.seq_len {
            train.data.seq_len = s;
        }
        if let Some(lr) = tr.lr {
            train.optim.lr = lr;
            train.optim.min_lr = train.optim.min_lr.min(lr);
        }
        if let Some(d) = tr.dropout {
            train.model.dropout = Some(d);
        }
        for (k, v) in &tr.hf {
            train.model.hf.insert(k.clone(), v.clone());
        }
        if train.data.batch_size == 0 || train.data.seq_len < 2 {
            return Err(err(
                file,
                "train.batch_size",
                "batch_size must be at least 1 and seq_len at least 2",
            ));
        }
        let per_step =
            (train.data.batch_size * train.data.seq_len * train.optim.grad_accum_steps) as u64;
        let steps = tr.budget_tokens.div_ceil(per_step) as usize;
        train.data.validation_fraction = 0.0;
        train.run.eval_every = 0;
        train.run.best_metric = None;
        train.run.patience = None;
        train.run.total_steps = steps;
        train.run.save_every = tr.save_every.unwrap_or((steps / 4).max(1));
        train.run.keep = 1;
        train.optim.warmup_ratio = Some(tr.warmup_ratio);
        // The whole training config is checked here, once, against the tokenizer's size.
        let mut probe = train.clone();
        probe.data.sources = vec![SourceConfig {
            dir: output.join("variants").join(BASE).join("tokens"),
            weight: 1.0,
        }];
        probe.run.out_dir = Some(output.join("probe"));
        let ctx = CheckContext {
            data_vocab: Some(t.vocab_size),
            ..CheckContext::default()
        };
        probe
            .check(&format!("{file}: [train] (preset {})", tr.preset), &ctx)
            .map_err(|e| err(file, "train", e.to_string()))?;

        Ok((train, steps, per_step))
    }

    /// The eval sets, read now: a missing file fails before hours of work.
    fn eval_sets(&self, file: &str, text: &str) -> Result<Vec<EvalSet>, ConfigError> {
        if self.eval.is_empty() {
            return Err(err(
                file,
                "eval",
                "no eval sets: add [[eval]] tables with name and path (UTF-8 text files)",
            ));
        }
        let mut eval = Vec::with_capacity(self.eval.len());
        for (i, e) in self.eval.iter().enumerate() {
            let at = table_start(text, "[[eval]]", i);
            if e.name.is_empty() || eval.iter().any(|x: &EvalSet| x.name == e.name) {
                return Err(err(
                    file,
                    format!("eval[{i}].name"),
                    format!(
                        "{:?}: every eval set needs its own name{}",
                        e.name,
                        line_of(text, "[[eval]]", at)
                    ),
                ));
            }
            let bytes = std::fs::read(&e.path).map_err(|x| {
                err(
                    file,
                    format!("eval[{i}].path"),
                    format!("{}: {x}{}", e.path.display(), line_of(text, "path", at)),
                )
            })?;
            let text_e = String::from_utf8(bytes).map_err(|x| {
                err(
                    file,
                    format!("eval[{i}].path"),
                    format!(
                        "{}: not UTF-8 text (byte {})",
                        e.path.display(),
                        x.utf8_error().valid_up_to()
                    ),
                )
            })?;
            if text_e.trim().is_empty() {
                return Err(err(
                    file,
                    format!("eval[{i}].path"),
                    format!("{}: empty", e.path.display()),
                ));
            }
            eval.push(EvalSet {
                name: e.name.clone(),
                path: e.path.clone(),
                text: text_e,
            });
        }
        Ok(eval)
    }
}

/// Applies a variant's changes to the base pipeline table. Every stage reference is resolved
/// against the base, before anything is removed. `fail(key, needle, message)` builds the error.
fn apply(
    base: &toml::Table,
    v: &VariantConfig,
    fail: impl Fn(&str, &str, String) -> ConfigError,
) -> Result<(toml::Table, String), ConfigError> {
    let mut table = base.clone();
    let stages: Vec<toml::Table> = match base.get("stages") {
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|s| s.as_table().cloned().unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    let types: Vec<String> = stages
        .iter()
        .map(|s| {
            s.get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let resolve = |r: &StageRef, key: &str, needle: &str| -> Result<usize, ConfigError> {
        let list = || {
            types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{i}: {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match r {
            StageRef::Index(i) if *i < stages.len() => Ok(*i),
            StageRef::Index(i) => Err(fail(
                key,
                needle,
                format!(
                    "stage index {i} is out of range: the base pipeline has {} stages ({})",
                    stages.len(),
                    list()
                ),
            )),
            StageRef::Name(n) => {
                let hits: Vec<usize> = (0..types.len()).filter(|&i| types[i] == *n).collect();
                match hits.as_slice() {
                    [i] => Ok(*i),
                    [] => Err(fail(
                        key,
                        needle,
                        format!("no stage `{n}` in the base pipeline (its stages: {})", list()),
                    )),
                    _ => Err(fail(
                        key,
                        needle,
                        format!(
                            "{} stages of type `{n}` in the base pipeline: name one by its index ({})",
                            hits.len(),
                            list()
                        ),
                    )),
                }
            }
        }
    };
    let mut change = Vec::new();
    let mut new_stages = stages.clone();
    // Parameters first (indices of the base).
    for (k, value) in &v.set {
        let key = format!("set.\"{k}\"");
        let Some((stage, param)) = k.split_once('.') else {
            return Err(fail(
                &key,
                k,
                format!("{k:?}: write \"STAGE.KEY\" (STAGE: a stage type or index)"),
            ));
        };
        let r = match stage.parse::<usize>() {
            Ok(i) => StageRef::Index(i),
            Err(_) => StageRef::Name(stage.to_string()),
        };
        let i = resolve(&r, &key, k)?;
        if param == "type" || param.is_empty() {
            return Err(fail(
                &key,
                k,
                format!("{k:?}: a stage's type cannot be set; drop it and add another"),
            ));
        }
        // Nested keys (`a.b`) walk sub-tables.
        let mut t = &mut new_stages[i];
        let parts: Vec<&str> = param.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            let entry = t
                .entry((*p).to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = match entry {
                toml::Value::Table(x) => x,
                _ => return Err(fail(&key, k, format!("{k:?}: `{p}` is not a table"))),
            };
        }
        t.insert(parts[parts.len() - 1].to_string(), value.clone());
        change.push(format!("set {}.{param} = {value}", types[i]));
    }
    let mut drop = Vec::new();
    for (j, r) in v.drop_stages.iter().enumerate() {
        let needle = match r {
            StageRef::Name(n) => format!("\"{n}\""),
            StageRef::Index(i) => i.to_string(),
        };
        let i = resolve(r, &format!("drop_stages[{j}]"), &needle)?;
        if !drop.contains(&i) {
            drop.push(i);
            change.push(format!("drop {}", types[i]));
        }
    }
    drop.sort_unstable();
    for i in drop.into_iter().rev() {
        new_stages.remove(i);
    }
    for s in &v.add_stages {
        let ty = s.get("type").and_then(|t| t.as_str()).unwrap_or("?");
        change.push(format!("add stage {ty}"));
        new_stages.push(s.clone());
    }
    table.insert(
        "stages".into(),
        toml::Value::Array(new_stages.into_iter().map(toml::Value::Table).collect()),
    );
    let mut dedup: Vec<toml::Value> = match base.get("dedup") {
        Some(toml::Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let mut dd = v.drop_dedup.clone();
    dd.sort_unstable();
    dd.dedup();
    for (j, &i) in dd.iter().enumerate().rev() {
        if i >= dedup.len() {
            return Err(fail(
                &format!("drop_dedup[{j}]"),
                "drop_dedup",
                format!(
                    "dedup step {i} is out of range: the base pipeline has {} [[dedup]] steps",
                    dedup.len()
                ),
            ));
        }
        let ty = dedup[i]
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("?")
            .to_string();
        dedup.remove(i);
        change.push(format!("drop dedup {ty}"));
    }
    for d in &v.add_dedup {
        let ty = d.get("type").and_then(|t| t.as_str()).unwrap_or("?");
        change.push(format!("add dedup {ty}"));
        dedup.push(toml::Value::Table(d.clone()));
    }
    if dedup.is_empty() {
        table.remove("dedup");
    } else {
        table.insert("dedup".into(), toml::Value::Array(dedup));
    }
    let change = if change.is_empty() {
        "(the base pipeline)".to_string()
    } else {
        change.join("; ")
    };
    Ok((table, change))
}

impl CheckedExperiment {
    /// The training config of one run: the variant's token shards, its output directory, the
    /// seed (initialisation, dropout and data order).
    pub fn train_file(&self, tokens: &Path, out: &Path, seed: u64) -> TrainFile {
        let mut f = self.train.clone();
        f.data.sources = vec![SourceConfig {
            dir: tokens.to_path_buf(),
            weight: 1.0,
        }];
        f.data.seed = seed;
        f.run.seed = seed;
        f.run.out_dir = Some(out.to_path_buf());
        f
    }

    /// What decides the results: an output directory made with other settings is refused.
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "variants": self.variants.iter().map(|v| serde_json::json!({
                "name": v.name,
                "inputs": v.pipeline.inputs,
                "reader": v.pipeline.reader,
                "stages": v.pipeline.config.stages,
                "dedup": v.pipeline.dedup,
                "writer": v.pipeline.writer,
                "tasks": v.pipeline.tasks,
            })).collect::<Vec<_>>(),
            "tokenizer": self.tokenizer,
            "train": self.train,
            "seeds": self.seeds,
            "eval": self.eval.iter().map(|e| serde_json::json!({
                "name": e.name,
                "path": e.path,
                "bytes": e.text.len(),
                "hash": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(e.text.as_bytes())),
            })).collect::<Vec<_>>(),
        })
    }
}

//! The data section of a training config and the builders the trainer and the CLI call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use refinery_tokenize::TokenDataset;
use serde::{Deserialize, Serialize};

use super::mix::{MixedBatches, MAX_MIX_SOURCES};
use super::nsp::{NspOptions, NspPairs, NspSpecials};
use super::shards::{Layout, RowSource, ShardSequences, ValidationSet};
use super::split::{DataSplit, DocTable};
use super::{BatchSource, LmBatch, PairBatch};
use crate::TrainError;

/// One shard directory (the `--output` of `refinery tokenize`) and its mixing weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub dir: PathBuf,
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// How documents become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataMode {
    /// Documents joined with EOS, cut into full rows (GPT-2 style; no padding).
    #[default]
    Packed,
    /// One document per row, right-padded with a mask.
    DocAligned,
}

/// What doc-aligned mode does with a document longer than a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongDocs {
    /// Several rows of `seq_len` tokens (the last padded).
    #[default]
    Split,
    /// Only the first `seq_len` tokens.
    Truncate,
}

/// NSP segmentation and sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NspConfig {
    /// A segment ends after any of these token ids (e.g. the ids of ".", "!", "?", "\n").
    pub boundary_ids: Vec<u32>,
    /// Longest segment (cut into pieces of this size); also the chunk size when
    /// `boundary_ids` is empty. Capped at `(seq_len - 3) / 2`.
    pub max_segment_tokens: usize,
    /// Probability of a shorter target pair length (BERT: 0.1).
    pub short_seq_prob: f64,
}

impl Default for NspConfig {
    fn default() -> Self {
        NspConfig {
            boundary_ids: Vec::new(),
            max_segment_tokens: 64,
            short_seq_prob: 0.1,
        }
    }
}

/// The `data` section of a training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Shard directories with weights (several = weighted mixing).
    pub sources: Vec<SourceConfig>,
    /// Tokens per row.
    pub seq_len: usize,
    /// Rows per batch.
    pub batch_size: usize,
    pub mode: DataMode,
    pub long_docs: LongDocs,
    /// End-of-document id; default: the shards' separator. Packed mode needs one.
    pub eos_id: Option<u32>,
    /// Padding id for doc-aligned rows; default: the EOS id.
    pub pad_id: Option<u32>,
    /// Shuffle rows each epoch (training); validation is always in order.
    pub shuffle: bool,
    /// Fraction of documents held out for validation (by a hash of the document index).
    pub validation_fraction: f64,
    /// Seed of the held-out split (kept apart from `seed` so reshuffling keeps the split).
    pub split_seed: u64,
    /// Seed of the row order, the mixing and the NSP sampling.
    pub seed: u64,
    pub nsp: NspConfig,
    /// Labelled data (fine-tuning): the training file (TSV, CSV or JSONL, gzip/zstd ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    /// Labelled data: the dev file (default: a stratified `validation_fraction` of `train`,
    /// seeded by `split_seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<PathBuf>,
    /// Labelled data: column/key of the text (default: `text`/`sentence`, or the one non-label
    /// column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_field: Option<String>,
    /// Labelled data: column/key of the second text of sentence pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_pair_field: Option<String>,
    /// Labelled data: column/key of the label (default: `label`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_field: Option<String>,
    /// Labelled TSV/CSV: whether the first row names the columns (default: detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// Labelled data: `auto` (default), `tsv`, `csv` or `jsonl`.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub format: super::labelled::LabelledFormat,
    /// Labelled data: keep `k` seeded examples per label of the training split (few-shot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub few_shot: Option<usize>,
    /// The vocabulary size of the model the rows are for, set by the caller
    /// that loaded it (never read from a file): token ids are checked
    /// against it (and against the shards' own vocab size) when the shards
    /// are opened, so an out-of-range id is an error naming the shard and
    /// position, not a panic inside the backend.
    #[serde(skip)]
    pub model_vocab_size: Option<usize>,
}

fn is_auto(f: &super::labelled::LabelledFormat) -> bool {
    *f == super::labelled::LabelledFormat::Auto
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            sources: Vec::new(),
            seq_len: 1024,
            batch_size: 8,
            mode: DataMode::Packed,
            long_docs: LongDocs::Split,
            eos_id: None,
            pad_id: None,
            shuffle: true,
            validation_fraction: 0.0,
            split_seed: 0,
            seed: 0,
            nsp: NspConfig::default(),
            train: None,
            dev: None,
            text_field: None,
            text_pair_field: None,
            label_field: None,
            header: None,
            format: super::labelled::LabelledFormat::Auto,
            few_shot: None,
            model_vocab_size: None,
        }
    }
}

impl DataConfig {
    /// A copy whose token ids will be checked against a model's vocabulary
    /// ([`DataConfig::model_vocab_size`]) when its shards are opened.
    pub fn for_model_vocab(&self, vocab_size: usize) -> DataConfig {
        DataConfig {
            model_vocab_size: Some(vocab_size),
            ..self.clone()
        }
    }

    /// The labelled-data field settings.
    pub fn fields(&self) -> super::labelled::Fields {
        super::labelled::Fields {
            text_field: self.text_field.clone(),
            text_pair_field: self.text_pair_field.clone(),
            label_field: self.label_field.clone(),
            header: self.header,
            format: self.format,
        }
    }

    /// Checks the settings labelled-data tasks use (`batch_size`, `validation_fraction`,
    /// `few_shot`); errors name the `data.` key.
    pub fn validate_labelled(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(invalid(
                "validation_fraction",
                format!("{} must be in [0, 1)", self.validation_fraction),
            ));
        }
        if self.few_shot == Some(0) {
            return Err(invalid("few_shot", "must be at least 1"));
        }
        Ok(())
    }
}

/// A [`DataConfig`] that passed [`DataConfig::validate`]: weights normalised, ranges checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDataConfig {
    cfg: DataConfig,
    weights: Vec<f64>,
}

impl CheckedDataConfig {
    pub fn config(&self) -> &DataConfig {
        &self.cfg
    }

    /// Source weights summing to 1.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

fn invalid(field: &str, msg: impl std::fmt::Display) -> TrainError {
    TrainError::InvalidConfig(format!("data.{field}: {msg}"))
}

impl DataConfig {
    /// A config with one shard directory and defaults otherwise.
    pub fn single(dir: impl Into<PathBuf>) -> Self {
        DataConfig {
            sources: vec![SourceConfig {
                dir: dir.into(),
                weight: 1.0,
            }],
            ..DataConfig::default()
        }
    }

    /// Checks every field (no file access).
    pub fn validate(&self) -> Result<CheckedDataConfig, TrainError> {
        if self.sources.is_empty() {
            return Err(invalid("sources", "no shard directory given"));
        }
        if self.sources.len() > MAX_MIX_SOURCES {
            return Err(invalid(
                "sources",
                format!(
                    "{} directories, at most {MAX_MIX_SOURCES}",
                    self.sources.len()
                ),
            ));
        }
        for (i, s) in self.sources.iter().enumerate() {
            if !(s.weight.is_finite() && s.weight > 0.0) {
                return Err(invalid(
                    &format!("sources[{i}].weight"),
                    format!(
                        "{} ({}) must be a positive number",
                        s.weight,
                        s.dir.display()
                    ),
                ));
            }
        }
        if self.seq_len < 2 {
            return Err(invalid(
                "seq_len",
                format!("{} must be at least 2", self.seq_len),
            ));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(invalid(
                "validation_fraction",
                format!("{} must be in [0, 1)", self.validation_fraction),
            ));
        }
        if self.nsp.max_segment_tokens == 0 {
            return Err(invalid("nsp.max_segment_tokens", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.nsp.short_seq_prob) {
            return Err(invalid(
                "nsp.short_seq_prob",
                format!("{} must be in [0, 1]", self.nsp.short_seq_prob),
            ));
        }
        let total: f64 = self.sources.iter().map(|s| s.weight).sum();
        Ok(CheckedDataConfig {
            cfg: self.clone(),
            weights: self.sources.iter().map(|s| s.weight / total).collect(),
        })
    }
}

/// Opens every source directory, checks they share one vocabulary, and
/// scans their token ids: each must be below the shards' vocab size and the
/// model's ([`DataConfig::model_vocab_size`]). The scan reads every token
/// once (a few GB/s), which is cheap next to training on them.
fn open_all(cfg: &DataConfig) -> Result<Vec<(PathBuf, Arc<TokenDataset>)>, TrainError> {
    let mut out: Vec<(PathBuf, Arc<TokenDataset>)> = Vec::new();
    for s in &cfg.sources {
        if !s.dir.exists() {
            return Err(TrainError::Data {
                path: s.dir.clone(),
                message: "shard directory does not exist (run `refinery tokenize` first)".into(),
            });
        }
        let ds = TokenDataset::open(&s.dir)?;
        if let Some((d0, first)) = out.first() {
            if first.vocab_size() != ds.vocab_size() {
                return Err(TrainError::Data {
                    path: s.dir.clone(),
                    message: format!(
                        "vocab size {} differs from {} in {}: mixed sources must share a tokenizer",
                        ds.vocab_size(),
                        first.vocab_size(),
                        d0.display()
                    ),
                });
            }
        }
        let limit = cfg
            .model_vocab_size
            .map_or(ds.vocab_size(), |m| ds.vocab_size().min(m as u64));
        ds.check_ids_below(limit)?;
        out.push((s.dir.clone(), Arc::new(ds)));
    }
    Ok(out)
}

fn check_id(dir: &Path, ds: &TokenDataset, name: &str, id: u32) -> Result<(), TrainError> {
    if u64::from(id) >= ds.vocab_size() {
        return Err(TrainError::Data {
            path: dir.to_path_buf(),
            message: format!(
                "data.{name} {id} is not below the shards' vocab size {}",
                ds.vocab_size()
            ),
        });
    }
    Ok(())
}

fn layout(cfg: &DataConfig, dir: &Path, ds: &TokenDataset) -> Result<Layout, TrainError> {
    let sep = ds.shards().first().and_then(|s| s.header().separator);
    let eos = cfg.eos_id.or(sep);
    if let Some(e) = eos {
        check_id(dir, ds, "eos_id", e)?;
    }
    match cfg.mode {
        DataMode::Packed => match eos {
            Some(eos) => Ok(Layout::Packed { eos }),
            None => Err(TrainError::Data {
                path: dir.to_path_buf(),
                message: "packed mode needs an end-of-document id: the shards have no \
                          separator, set data.eos_id"
                    .into(),
            }),
        },
        DataMode::DocAligned => {
            let Some(pad) = cfg.pad_id.or(eos) else {
                return Err(TrainError::Data {
                    path: dir.to_path_buf(),
                    message: "doc-aligned mode needs a padding id: set data.pad_id".into(),
                });
            };
            check_id(dir, ds, "pad_id", pad)?;
            Ok(Layout::DocAligned {
                eos,
                pad,
                split_long: cfg.long_docs == LongDocs::Split,
            })
        }
    }
}

fn sequences(
    cfg: &DataConfig,
    split: DataSplit,
    seed_offset: u64,
) -> Result<Vec<ShardSequences>, TrainError> {
    let mut out = Vec::new();
    for (k, (dir, ds)) in open_all(cfg)?.into_iter().enumerate() {
        let lay = layout(cfg, &dir, &ds)?;
        let table = Arc::new(DocTable::build(
            ds,
            &dir,
            split,
            cfg.validation_fraction,
            cfg.split_seed,
        )?);
        let shuffle = cfg.shuffle && split == DataSplit::Train;
        let seed = super::splitmix64(cfg.seed ^ seed_offset.wrapping_add(k as u64));
        out.push(ShardSequences::new(
            table,
            lay,
            cfg.seq_len,
            cfg.batch_size,
            seed,
            shuffle,
        )?);
    }
    Ok(out)
}

/// Language-model batches of `split`: one directory → [`ShardSequences`], several →
/// [`MixedBatches`] (training) or a [`ValidationSet`] in order (validation).
pub fn lm_batches(
    cfg: &DataConfig,
    split: DataSplit,
) -> Result<Box<dyn BatchSource<LmBatch> + Send>, TrainError> {
    let checked = cfg.validate()?;
    if split == DataSplit::Validation {
        return Ok(Box::new(validation_set(cfg)?));
    }
    let mut seqs = sequences(cfg, split, 0)?;
    if seqs.len() == 1 {
        if let Some(s) = seqs.pop() {
            return Ok(Box::new(s));
        }
    }
    let rows: Vec<Box<dyn RowSource>> = seqs
        .into_iter()
        .map(|s| Box::new(s) as Box<dyn RowSource>)
        .collect();
    Ok(Box::new(MixedBatches::new(
        rows,
        checked.weights(),
        cfg.batch_size,
        cfg.seed,
    )?))
}

/// The held-out rows of every directory, in order, for evaluation. Errors if
/// `validation_fraction` is 0 or a directory has no validation document.
pub fn validation_set(cfg: &DataConfig) -> Result<ValidationSet, TrainError> {
    cfg.validate()?;
    if cfg.validation_fraction <= 0.0 {
        return Err(invalid(
            "validation_fraction",
            "is 0, so there is no validation split",
        ));
    }
    ValidationSet::new(sequences(cfg, DataSplit::Validation, 0)?, cfg.batch_size)
}

/// NSP pair batches of `split` from the first source directory (BERT pretraining reads one
/// corpus; mixing is for language-model batches). Validation pairs are drawn from held-out
/// documents only.
pub fn pair_batches(
    cfg: &DataConfig,
    split: DataSplit,
    specials: NspSpecials,
) -> Result<Box<dyn BatchSource<PairBatch> + Send>, TrainError> {
    cfg.validate()?;
    if split == DataSplit::Validation && cfg.validation_fraction <= 0.0 {
        return Err(invalid(
            "validation_fraction",
            "is 0, so there is no validation split",
        ));
    }
    let all = open_all(cfg)?;
    let Some((dir, ds)) = all.into_iter().next() else {
        return Err(invalid("sources", "no shard directory given"));
    };
    for (name, id) in [
        ("cls id", specials.cls),
        ("sep id", specials.sep),
        ("pad id", specials.pad),
    ] {
        check_id(&dir, &ds, name, id)?;
    }
    let table = Arc::new(DocTable::build(
        ds,
        &dir,
        split,
        cfg.validation_fraction,
        cfg.split_seed,
    )?);
    let opts = NspOptions {
        boundary_ids: cfg.nsp.boundary_ids.clone(),
        max_segment_tokens: cfg.nsp.max_segment_tokens,
        short_seq_prob: cfg.nsp.short_seq_prob,
    };
    let seed = match split {
        DataSplit::Train => cfg.seed,
        DataSplit::Validation => super::splitmix64(cfg.seed ^ 0x7A11),
    };
    Ok(Box::new(NspPairs::new(
        table,
        specials,
        &opts,
        cfg.seq_len,
        cfg.batch_size,
        seed,
    )?))
}

//! `train.toml`: the configuration of `refinery pretrain`, its presets and its validation.
//!
//! ```toml
//! [model]   type = "gpt" | "bert" | "bart" | "plm", size = "tiny", dropout, vocab_size, [model.hf]
//!           overrides (any HF config.json key); BERT: token ids, mlm_probability, nsp;
//!           BART: token ids, mask_ratio, poisson_lambda
//! [data]    crate::data::DataConfig (shard directories, seq_len, batch_size, split, ...)
//! [optim]   lr, min_lr, warmup_steps, decay, weight_decay, beta1, beta2, eps, grad_clip,
//!           grad_accum_steps
//! [run]     total_steps, eval_every, eval_batches, save_every, keep, seed, out_dir
//! ```
//!
//! Parsing errors name the file, the key and the line; [`TrainFile::check`] validates every
//! value once and returns checked types ([`CheckedTrain`]) that the run loop takes as they are.

use std::path::PathBuf;

use refinery_model::{BartConfig, BertConfig, GptConfig, PlmConfig};
use serde::{Deserialize, Serialize};

use crate::data::{DataConfig, NspSpecials};
use crate::error::TrainError;
use crate::precision::Precision;
use crate::run::RunOptions;
use crate::schedule::{Decay, LrSchedule};
use crate::task::{BertPretrainingTask, ClmTask};
use crate::task_dae::{DaeNoise, DaeTask};
use crate::task_plm::PlmTask;
use crate::trainer::TrainConfig;

/// Shipped presets: `(name, TOML)`.
pub const PRESETS: &[(&str, &str)] = &[
    ("gpt-tiny", include_str!("../presets/gpt-tiny.toml")),
    ("bert-tiny", include_str!("../presets/bert-tiny.toml")),
    ("bart-tiny", include_str!("../presets/bart-tiny.toml")),
];

/// The TOML text of a preset.
pub fn preset(name: &str) -> Result<&'static str, TrainError> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            TrainError::InvalidConfig(format!(
                "unknown preset {name:?} (presets: {})",
                names.join(", ")
            ))
        })
}

/// Model architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    /// GPT-2 decoder, causal LM.
    #[default]
    Gpt,
    /// BERT encoder, MLM + NSP.
    Bert,
    /// BART encoder-decoder, denoising (text infilling).
    Bart,
    /// XLNet-style two-stream permutation LM (GPT-2 blocks, gpt-tiny sizes).
    Plm,
}

/// `[model]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    #[serde(rename = "type")]
    pub kind: ModelType,
    /// Size preset the HF config starts from: `"tiny"` (gpt-tiny: 4 layers, d=256, 4 heads,
    /// ctx 128; bert-tiny: 2 layers, hidden 128, 2 heads, intermediate 512).
    pub size: String,
    /// Default: the token shards' vocabulary size.
    pub vocab_size: Option<usize>,
    /// Sets every dropout probability of the model.
    pub dropout: Option<f64>,
    /// HF `config.json` keys overriding the size preset (`n_layer`, `hidden_size`, ...).
    pub hf: toml::Table,
    /// BERT: special ids (default: the tokenizer's `[MASK]`, `[CLS]`, `[SEP]`, `[PAD]`).
    /// BART: `<mask>`, `<s>` (`cls_token_id`, alias `bos_token_id`), `</s>` (`sep_token_id`,
    /// alias `eos_token_id`), `<pad>`.
    pub mask_token_id: Option<u32>,
    #[serde(alias = "bos_token_id")]
    pub cls_token_id: Option<u32>,
    #[serde(alias = "eos_token_id")]
    pub sep_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    /// BERT: share of tokens selected for MLM.
    pub mlm_probability: f64,
    /// BERT: add the next-sentence-prediction loss.
    pub nsp: bool,
    /// BART text infilling: share of the tokens hidden (default 0.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_ratio: Option<f64>,
    /// BART text infilling: mean span length (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poisson_lambda: Option<f64>,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            kind: ModelType::Gpt,
            size: "tiny".into(),
            vocab_size: None,
            dropout: None,
            hf: toml::Table::new(),
            mask_token_id: None,
            cls_token_id: None,
            sep_token_id: None,
            pad_token_id: None,
            mlm_probability: 0.15,
            nsp: true,
            mask_ratio: None,
            poisson_lambda: None,
        }
    }
}

/// `[optim]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimSection {
    /// Peak learning rate (after warmup).
    pub lr: f64,
    /// Learning rate at the end of the decay.
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub decay: Decay,
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Global gradient-norm clip (0: off).
    pub grad_clip: f64,
    pub grad_accum_steps: usize,
    /// Compute dtype: "f32" (default), "bf16" or "f16" (f32 master weights and AdamW).
    pub precision: Precision,
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            lr: 6e-4,
            min_lr: 6e-5,
            warmup_steps: 100,
            decay: Decay::Cosine,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            grad_accum_steps: 1,
            precision: Precision::F32,
        }
    }
}

/// `[run]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    pub total_steps: usize,
    /// 0: never (needs `data.validation_fraction > 0` otherwise).
    pub eval_every: usize,
    pub eval_batches: usize,
    /// 0: only at the end.
    pub save_every: usize,
    pub keep: usize,
    /// Seeds the initialisation, dropout and MLM masks (the data order has `data.seed`).
    pub seed: u64,
    /// Output directory (the CLI's `--out` wins).
    pub out_dir: Option<PathBuf>,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            total_steps: 1000,
            eval_every: 100,
            eval_batches: 20,
            save_every: 500,
            keep: 3,
            seed: 0,
            out_dir: None,
        }
    }
}

/// A whole `train.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainFile {
    pub model: ModelSection,
    pub data: DataConfig,
    pub optim: OptimSection,
    pub run: RunSection,
}

/// The model + objective a checked config trains.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskSpec {
    Gpt(ClmTask),
    Bert {
        task: BertPretrainingTask,
        specials: NspSpecials,
    },
    Bart(DaeTask),
    Plm(PlmTask),
}

/// A validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTrain {
    pub task: TaskSpec,
    pub train: TrainConfig,
    pub run: RunOptions,
    pub data: DataConfig,
}

/// Special token ids found in a tokenizer (the CLI looks them up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenizerIds {
    pub mask: Option<u32>,
    pub cls: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
}

fn bad(file: &str, key: &str, msg: impl std::fmt::Display) -> TrainError {
    TrainError::InvalidConfig(format!("{file}: {key}: {msg}"))
}

fn toml_error(text: &str, file: &str, key: &str, e: &toml::de::Error) -> TrainError {
    let line = e
        .span()
        .map(|s| {
            format!(
                " (line {})",
                text[..s.start.min(text.len())].matches('\n').count() + 1
            )
        })
        .unwrap_or_default();
    let key = if key.is_empty() || key == "." {
        "(top level)"
    } else {
        key
    };
    bad(file, key, format!("{}{line}", e.message().trim()))
}

impl TrainFile {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, TrainError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            toml_error(text, file, &key, &e.into_inner())
        })
    }

    /// A shipped preset.
    pub fn preset(name: &str) -> Result<Self, TrainError> {
        Self::from_toml(preset(name)?, &format!("preset {name}"))
    }

    /// The config as TOML (what `--print-config` shows).
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string(self).map_err(|e| TrainError::InvalidConfig(format!("(serialize): {e}")))
    }

    /// Validates every value once. `data_vocab` is the token shards' vocabulary size (the
    /// default `model.vocab_size`), `tok` the tokenizer's special ids (BERT defaults);
    /// `file` names the config in errors.
    pub fn check(
        &self,
        file: &str,
        data_vocab: Option<usize>,
        tok: TokenizerIds,
    ) -> Result<CheckedTrain, TrainError> {
        let m = &self.model;
        let vocab = m.vocab_size.or(data_vocab).ok_or_else(|| {
            bad(
                file,
                "model.vocab_size",
                "not set and no token shards to take it from",
            )
        })?;
        if vocab == 0 {
            return Err(bad(file, "model.vocab_size", "must be at least 1"));
        }
        if let Some(v) = data_vocab.filter(|&v| v > vocab) {
            return Err(bad(
                file,
                "model.vocab_size",
                format!("{vocab} is smaller than the token shards' vocabulary ({v})"),
            ));
        }
        if m.size != "tiny" {
            return Err(bad(
                file,
                "model.size",
                format!("{:?} is not a size preset (\"tiny\")", m.size),
            ));
        }
        if let Some(p) = m.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(file, "model.dropout", format!("{p} must be in [0, 1)")));
            }
        }
        let d = &self.data;
        let id = |key: &str, set: Option<u32>, found: Option<u32>, name: &str| {
            let id = set.or(found).ok_or_else(|| {
                bad(
                    file,
                    key,
                    format!("not set and no {name} token in the tokenizer (--tokenizer)"),
                )
            })?;
            if id as usize >= vocab {
                return Err(bad(
                    file,
                    key,
                    format!("{id} is not below vocab_size {vocab}"),
                ));
            }
            Ok(id)
        };
        let task = match m.kind {
            ModelType::Gpt => {
                let mut c = GptConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let c: GptConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                if d.seq_len > c.n_positions {
                    return Err(bad(
                        file,
                        "data.seq_len",
                        format!(
                            "{} exceeds the model's n_positions {}",
                            d.seq_len, c.n_positions
                        ),
                    ));
                }
                TaskSpec::Gpt(ClmTask::new(c))
            }
            ModelType::Bert => {
                let mut c = BertConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c.hidden_dropout_prob = p;
                    c.attention_probs_dropout_prob = p;
                }
                let mask = id("model.mask_token_id", m.mask_token_id, tok.mask, "[MASK]")?;
                let cls = id("model.cls_token_id", m.cls_token_id, tok.cls, "[CLS]")?;
                let sep = id("model.sep_token_id", m.sep_token_id, tok.sep, "[SEP]")?;
                let pad = id("model.pad_token_id", m.pad_token_id, tok.pad, "[PAD]")?;
                c.pad_token_id = Some(pad);
                let c: BertConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                if d.seq_len > c.max_position_embeddings {
                    return Err(bad(
                        file,
                        "data.seq_len",
                        format!(
                            "{} exceeds the model's max_position_embeddings {}",
                            d.seq_len, c.max_position_embeddings
                        ),
                    ));
                }
                if !(m.mlm_probability > 0.0 && m.mlm_probability < 1.0) {
                    return Err(bad(
                        file,
                        "model.mlm_probability",
                        format!("{} must be in (0, 1)", m.mlm_probability),
                    ));
                }
                let mut specials: Vec<i64> = vec![i64::from(cls), i64::from(sep), i64::from(pad)];
                specials.push(i64::from(mask));
                specials.sort_unstable();
                specials.dedup();
                let mut task = BertPretrainingTask::new(c, i64::from(mask), specials);
                task.mlm_probability = m.mlm_probability;
                task.nsp = m.nsp;
                TaskSpec::Bert {
                    task,
                    specials: NspSpecials { cls, sep, pad },
                }
            }
            ModelType::Bart => {
                let mut c = BartConfig::tiny(vocab);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let mask = id("model.mask_token_id", m.mask_token_id, tok.mask, "<mask>")?;
                let bos = id("model.cls_token_id", m.cls_token_id, tok.cls, "<s>")?;
                let eos = id("model.sep_token_id", m.sep_token_id, tok.sep, "</s>")?;
                let pad = id("model.pad_token_id", m.pad_token_id, tok.pad, "<pad>")?;
                c.pad_token_id = pad;
                c.bos_token_id = Some(bos);
                c.eos_token_id = Some(eos);
                c.forced_eos_token_id = Some(eos);
                c.decoder_start_token_id = eos;
                let c: BartConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                // Rows are wrapped as `<s> row </s>`.
                if d.seq_len + 2 > c.max_position_embeddings {
                    return Err(bad(
                        file,
                        "data.seq_len",
                        format!(
                            "{} + 2 (<s>, </s>) exceeds the model's max_position_embeddings {}",
                            d.seq_len, c.max_position_embeddings
                        ),
                    ));
                }
                let mut task = DaeTask::bart(c, i64::from(mask));
                if let DaeNoise::TextInfilling {
                    mask_ratio,
                    poisson_lambda,
                    ..
                } = &mut task.noise
                {
                    *mask_ratio = m.mask_ratio.unwrap_or(*mask_ratio);
                    *poisson_lambda = m.poisson_lambda.unwrap_or(*poisson_lambda);
                }
                task.validate().map_err(|e| bad(file, "model", e))?;
                TaskSpec::Bart(task)
            }
            ModelType::Plm => {
                // gpt-tiny sizes (GPT-2 config.json names under [model.hf]).
                let g = GptConfig::tiny(vocab);
                let mut c = PlmConfig::new(vocab, g.n_positions, g.n_embd, g.n_layer, g.n_head);
                if let Some(p) = m.dropout {
                    c = c.with_dropout(p);
                }
                let c: PlmConfig = overlay(file, &c, &m.hf)?;
                c.validate().map_err(|e| bad(file, "model.hf", e))?;
                if d.seq_len > c.n_positions {
                    return Err(bad(
                        file,
                        "data.seq_len",
                        format!(
                            "{} exceeds the model's n_positions {}",
                            d.seq_len, c.n_positions
                        ),
                    ));
                }
                TaskSpec::Plm(PlmTask::new(c))
            }
        };

        let o = &self.optim;
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(file, key, format!("{v} must be a positive number")))
            }
        };
        positive("optim.lr", o.lr)?;
        if !(o.min_lr >= 0.0 && o.min_lr <= o.lr) {
            return Err(bad(
                file,
                "optim.min_lr",
                format!("{} must be in [0, optim.lr = {}]", o.min_lr, o.lr),
            ));
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(bad(
                file,
                "optim.weight_decay",
                format!("{} must be >= 0", o.weight_decay),
            ));
        }
        for (key, b) in [("optim.beta1", o.beta1), ("optim.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(bad(file, key, format!("{b} must be in [0, 1)")));
            }
        }
        positive("optim.eps", f64::from(o.eps))?;
        if !(o.grad_clip >= 0.0 && o.grad_clip.is_finite()) {
            return Err(bad(
                file,
                "optim.grad_clip",
                format!("{} must be >= 0 (0: off)", o.grad_clip),
            ));
        }
        if o.grad_accum_steps == 0 {
            return Err(bad(file, "optim.grad_accum_steps", "must be at least 1"));
        }
        let r = &self.run;
        if r.total_steps == 0 {
            return Err(bad(file, "run.total_steps", "must be at least 1"));
        }
        if o.warmup_steps > r.total_steps {
            return Err(bad(
                file,
                "optim.warmup_steps",
                format!(
                    "{} exceeds run.total_steps {}",
                    o.warmup_steps, r.total_steps
                ),
            ));
        }
        if r.eval_every > 0 && r.eval_batches == 0 {
            return Err(bad(
                file,
                "run.eval_batches",
                "must be at least 1 when run.eval_every > 0",
            ));
        }
        if r.eval_every > 0 && d.validation_fraction <= 0.0 {
            return Err(bad(
                file,
                "run.eval_every",
                "evaluation needs a validation split: set data.validation_fraction > 0 \
                 (or run.eval_every = 0)",
            ));
        }
        if r.keep == 0 {
            return Err(bad(file, "run.keep", "must be at least 1"));
        }
        let out_dir = r
            .out_dir
            .clone()
            .ok_or_else(|| bad(file, "run.out_dir", "not set (pass --out DIR)"))?;
        let data_check = d.validate();
        data_check.map_err(|e| TrainError::InvalidConfig(format!("{file}: {e}")))?;

        let train = TrainConfig {
            schedule: LrSchedule {
                peak_lr: o.lr,
                min_lr: o.min_lr,
                warmup_steps: o.warmup_steps,
                total_steps: r.total_steps,
                decay: o.decay,
            },
            weight_decay: o.weight_decay,
            beta_1: o.beta1,
            beta_2: o.beta2,
            epsilon: o.eps,
            grad_clip: (o.grad_clip > 0.0).then_some(o.grad_clip),
            grad_accum_steps: o.grad_accum_steps,
            seed: r.seed,
            precision: o.precision,
        };
        Ok(CheckedTrain {
            task,
            train,
            run: RunOptions {
                out_dir,
                total_steps: r.total_steps,
                eval_every: r.eval_every,
                eval_batches: r.eval_batches,
                save_every: r.save_every,
                keep: r.keep,
                extra_files: Vec::new(),
            },
            data: d.clone(),
        })
    }
}

/// `base` with the keys of `hf` replaced (HF `config.json` names); errors name `model.hf.KEY`.
fn overlay<C: Serialize + serde::de::DeserializeOwned>(
    file: &str,
    base: &C,
    hf: &toml::Table,
) -> Result<C, TrainError> {
    let mut json = serde_json::to_value(base).map_err(|e| bad(file, "model", e))?;
    let known: Vec<String> = json
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for (key, value) in hf {
        if !known.contains(key) {
            return Err(bad(
                file,
                &format!("model.hf.{key}"),
                format!("unknown config key (known: {})", known.join(", ")),
            ));
        }
        let v =
            serde_json::to_value(value).map_err(|e| bad(file, &format!("model.hf.{key}"), e))?;
        if let Some(o) = json.as_object_mut() {
            o.insert(key.clone(), v);
        }
    }
    serde_path_to_error::deserialize(json).map_err(|e| {
        let key = format!("model.hf.{}", e.path());
        bad(file, &key, e.into_inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_out(mut f: TrainFile) -> TrainFile {
        f.run.out_dir = Some("out".into());
        f.data = DataConfig {
            validation_fraction: f.data.validation_fraction,
            // The DataConfig default (1024) exceeds the tiny models' context.
            seq_len: f.data.seq_len.min(64),
            batch_size: f.data.batch_size,
            ..DataConfig::single("shards")
        };
        f
    }

    fn err(text: &str) -> String {
        match TrainFile::from_toml(text, "t.toml").and_then(|f| {
            with_out(f).check(
                "t.toml",
                Some(100),
                TokenizerIds {
                    mask: Some(4),
                    cls: Some(1),
                    sep: Some(2),
                    pad: Some(0),
                },
            )
        }) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn presets_parse_and_check() {
        let ids = TokenizerIds {
            mask: Some(103),
            cls: Some(101),
            sep: Some(102),
            pad: Some(0),
        };
        let gpt = with_out(TrainFile::preset("gpt-tiny").unwrap())
            .check("gpt-tiny", Some(512), ids)
            .unwrap();
        let TaskSpec::Gpt(t) = &gpt.task else {
            panic!("{:?}", gpt.task)
        };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_head),
            (4, 256, 4)
        );
        assert_eq!((t.model.n_positions, t.model.vocab_size), (128, 512));
        assert_eq!(gpt.train.grad_clip, Some(1.0));
        let bert = with_out(TrainFile::preset("bert-tiny").unwrap())
            .check("bert-tiny", Some(30522), ids)
            .unwrap();
        let TaskSpec::Bert { task, specials } = &bert.task else {
            panic!("{:?}", bert.task)
        };
        let c = &task.model;
        assert_eq!(
            (
                c.num_hidden_layers,
                c.hidden_size,
                c.num_attention_heads,
                c.intermediate_size
            ),
            (2, 128, 2, 512)
        );
        assert_eq!(task.mask_token_id, 103);
        assert_eq!(task.special_token_ids, vec![0, 101, 102, 103]);
        assert_eq!(specials.cls, 101);
        // Round trip through --print-config.
        let f = TrainFile::preset("bert-tiny").unwrap();
        assert_eq!(TrainFile::from_toml(&f.to_toml().unwrap(), "x").unwrap(), f);
        assert!(TrainFile::preset("gpt-huge").is_err());
    }

    #[test]
    fn bart_preset_checks() {
        let ids = TokenizerIds {
            mask: Some(3),
            cls: Some(0),
            sep: Some(2),
            pad: Some(1),
        };
        let bart = with_out(TrainFile::preset("bart-tiny").unwrap())
            .check("bart-tiny", Some(500), ids)
            .unwrap();
        let TaskSpec::Bart(task) = &bart.task else {
            panic!("{:?}", bart.task)
        };
        let c = &task.model;
        assert_eq!(
            (c.encoder_layers, c.decoder_layers, c.d_model, c.vocab_size),
            (2, 2, 128, 500)
        );
        assert_eq!((c.pad_token_id, c.decoder_start_token_id), (1, 2));
        assert_eq!((task.bos_token_id, task.eos_token_id), (Some(0), Some(2)));
        assert_eq!(task.special_token_ids, vec![0, 1, 2, 3]);
        assert_eq!(
            task.noise,
            DaeNoise::TextInfilling {
                mask_token_id: 3,
                mask_ratio: 0.3,
                poisson_lambda: 3.0
            }
        );
        let f = TrainFile::preset("bart-tiny").unwrap();
        assert_eq!(TrainFile::from_toml(&f.to_toml().unwrap(), "x").unwrap(), f);
        // bos/eos aliases; a mask id outside the vocabulary names the key.
        let e = err(
            "[model]\ntype = \"bart\"\nbos_token_id = 7\nmask_ratio = 2.0\n\
             [data]\nvalidation_fraction = 0.1\n",
        );
        assert!(e.contains("mask_ratio"), "{e}");
        let e = err(
            "[model]\ntype = \"bart\"\nmask_token_id = 100\n[data]\nvalidation_fraction = 0.1\n",
        );
        assert!(e.contains("model.mask_token_id"), "{e}");
    }

    #[test]
    fn plm_type_checks() {
        let f = TrainFile::from_toml(
            "[model]\ntype = \"plm\"\nhf = { n_layer = 2, n_embd = 64 }\n[data]\nseq_len = 64\nvalidation_fraction = 0.1\n",
            "t.toml",
        )
        .unwrap();
        let c = with_out(f)
            .check("t.toml", Some(100), TokenizerIds::default())
            .unwrap();
        let TaskSpec::Plm(t) = c.task else { panic!() };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_positions, t.k),
            (2, 64, 128, 6)
        );
    }

    #[test]
    fn hf_keys_override_the_size() {
        let f = TrainFile::from_toml(
            "[model]\nhf = { n_layer = 2, n_embd = 64, n_head = 2 }\n[data]\nseq_len = 64\nvalidation_fraction = 0.1\n",
            "t.toml",
        )
        .unwrap();
        let c = with_out(f)
            .check("t.toml", Some(100), TokenizerIds::default())
            .unwrap();
        let TaskSpec::Gpt(t) = c.task else { panic!() };
        assert_eq!(
            (t.model.n_layer, t.model.n_embd, t.model.n_positions),
            (2, 64, 128)
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = err("[optim]\nlr = 1e-3\nwarmup = 5\n");
        assert!(
            e.contains("t.toml") && e.contains("optim") && e.contains("line 3"),
            "{e}"
        );
        let e = err("[optim]\nlr = \"fast\"\n");
        assert!(e.contains("optim.lr") && e.contains("line 2"), "{e}");
        let e = err("[optim]\nlr = -1.0\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("optim.lr") && e.contains("positive"), "{e}");
        let e = err("[model]\ntype = \"t5\"\n");
        assert!(e.contains("model.type"), "{e}");
        let e = err("[model]\nhf = { n_layers = 3 }\n[data]\nvalidation_fraction = 0.1\n");
        assert!(
            e.contains("model.hf.n_layers") && e.contains("unknown"),
            "{e}"
        );
        let e = err("[model]\nhf = { n_head = 5 }\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("model.hf"), "{e}");
        let e = TrainFile::from_toml("[data]\nseq_len = 4096\n", "t.toml")
            .unwrap()
            .check("t.toml", Some(100), TokenizerIds::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.seq_len") && e.contains("n_positions"),
            "{e}"
        );
        let e = err("[run]\neval_every = 10\n");
        assert!(
            e.contains("run.eval_every") && e.contains("validation_fraction"),
            "{e}"
        );
        let e = err("[optim]\nwarmup_steps = 10\n[run]\ntotal_steps = 5\neval_every = 0\n");
        assert!(e.contains("optim.warmup_steps"), "{e}");
        let e = err(
            "[model]\ntype = \"bert\"\nmask_token_id = 500\n[data]\nvalidation_fraction = 0.1\n",
        );
        assert!(
            e.contains("model.mask_token_id") && e.contains("vocab_size"),
            "{e}"
        );
        let e = err("[model]\nvocab_size = 50\n[data]\nvalidation_fraction = 0.1\n");
        assert!(e.contains("model.vocab_size"), "{e}");
        let e = err("[data]\nbatch_size = 0\nvalidation_fraction = 0.1\n");
        assert!(e.contains("data.batch_size"), "{e}");
    }
}

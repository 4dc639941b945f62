//! `distill.toml`: the configuration of `refinery distill`, and its presets.
//!
//! ```toml
//! [teacher]   dir = DIR (--teacher), cache = false, cache_top_k, transfer = FILE
//! [student]   layers (--student-layers; default half the teacher's),
//!             init = "teacher-layers" | "truncate" | "random", init_layers = [0, 2, 4],
//!             from = DIR (truncate), hidden_size / num_attention_heads / intermediate_size
//!             (a narrower, randomly initialised student), dropout, assistants = [4]
//! [loss]      hard = 1.0, up_to_layer
//! [loss.soft]       weight, alpha, temperature, final_temperature
//! [loss.attention]  weight, kind = "mse" | "log-mse" | "kl", map, average_heads
//! [loss.hidden]     weight, kind = "mse" | "cosine", map = "uniform" | "last" | [2, 4, 6]
//! [loss.embedding]  weight, kind
//! [[stage]]   name, epochs | steps, losses = ["attention", "hidden", ...], up_to_layer, lr
//! [task]      max_len (classifiers)
//! [data] [optim] [run]   as train.toml (crates/train/src/config.rs)
//! ```
//!
//! Errors name the file, the key and the line. Values that need the models (layer maps,
//! widths, tokenizers) are checked when the teacher is opened ([`crate::spec::check_pair`]).

use std::path::PathBuf;

use refinery_train::config::{OptimSection, RunSection};
use refinery_train::data::DataConfig;
use serde::{Deserialize, Serialize};

use crate::error::DistillError;
use crate::spec::LossSpec;

/// Shipped presets: `(name, TOML)`.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "sst2-minilm-3l",
        include_str!("../presets/sst2-minilm-3l.toml"),
    ),
    ("gpt-tiny-2l", include_str!("../presets/gpt-tiny-2l.toml")),
];

/// `[teacher]`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherSection {
    /// The teacher checkpoint (`--teacher`): a fine-tuned classifier or a GPT-2 LM.
    pub dir: Option<PathBuf>,
    /// Run the teacher once over the training data and read its logits from
    /// `OUT/teacher-cache.bin` (soft loss only).
    pub cache: bool,
    /// Store only the top k logits per position (large vocabularies).
    pub cache_top_k: Option<usize>,
    /// Unlabelled transfer text (one example per line) to train on instead of `data.train`:
    /// the soft loss alone.
    pub transfer: Option<PathBuf>,
}

/// How the student's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitKind {
    /// Chosen teacher blocks (`init_layers`, default evenly spaced: every other one for half
    /// the depth), plus the teacher's embeddings and head (DistilBERT).
    #[default]
    TeacherLayers,
    /// The lowest `layers` blocks of a checkpoint (`from`, default the teacher).
    Truncate,
    /// Random weights (seeded by `run.seed`); needed for a narrower student.
    Random,
}

/// `[student]`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudentSection {
    /// Layers (`--student-layers`; default half the teacher's, at least 1).
    pub layers: Option<usize>,
    pub init: InitKind,
    /// `teacher-layers`: the 0-based teacher blocks to copy, in order.
    pub init_layers: Option<Vec<usize>>,
    /// `truncate`: the checkpoint to cut (default: the teacher).
    pub from: Option<PathBuf>,
    pub hidden_size: Option<usize>,
    pub num_attention_heads: Option<usize>,
    pub intermediate_size: Option<usize>,
    /// Sets every dropout probability of the student.
    pub dropout: Option<f64>,
    /// Teacher-assistant chain (Mirzadeh et al. 2020): distil into these depths first, each
    /// student teaching the next (e.g. `[4]` for 6 → 4 → 2).
    pub assistants: Vec<usize>,
}

/// `[[stage]]`: one step of progressive distillation, with its own loss set and budget.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageSection {
    pub name: String,
    /// Passes over the training data (labelled data).
    pub epochs: Option<usize>,
    /// Optimizer steps (instead of epochs).
    pub steps: Option<usize>,
    /// The terms of `[loss]` this stage uses: `hard`, `soft`, `attention`, `hidden`,
    /// `embedding`.
    pub losses: Vec<String>,
    /// Match only student layers `1..=up_to_layer` (layer-by-layer, bottom up).
    pub up_to_layer: Option<usize>,
    /// Peak learning rate of this stage (default `optim.lr`).
    pub lr: Option<f64>,
}

/// `[task]`
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskOptions {
    /// Longest input in tokens (classifiers; default the teacher's).
    pub max_len: Option<usize>,
}

/// A whole `distill.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillFile {
    pub teacher: TeacherSection,
    pub student: StudentSection,
    pub loss: LossSpec,
    #[serde(rename = "stage", skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSection>,
    pub task: TaskOptions,
    pub data: DataConfig,
    pub optim: OptimSection,
    pub run: RunSection,
}

/// The loss names a stage may list.
pub const LOSS_NAMES: [&str; 5] = ["hard", "soft", "attention", "hidden", "embedding"];

fn bad(file: &str, key: &str, msg: impl std::fmt::Display) -> DistillError {
    DistillError::InvalidConfig(format!("{file}: {key}: {msg}"))
}

fn toml_error(text: &str, file: &str, key: &str, e: &toml::de::Error) -> DistillError {
    let (key, message) = refinery_corpus::toml_error_parts(text, key, e.message(), e.span());
    bad(file, &key, message)
}

impl DistillFile {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, DistillError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
        let f: DistillFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            toml_error(text, file, &key, &e.into_inner())
        })?;
        Ok(f)
    }

    /// A shipped preset.
    pub fn preset(name: &str) -> Result<Self, DistillError> {
        let text = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                DistillError::InvalidConfig(format!(
                    "unknown preset {name:?} (presets: {})",
                    names.join(", ")
                ))
            })?;
        Self::from_toml(text, &format!("preset {name}"))
    }

    /// The config as TOML (`--print-config`).
    pub fn to_toml(&self) -> Result<String, DistillError> {
        toml::to_string(self).map_err(|e| DistillError::InvalidConfig(format!("(serialize): {e}")))
    }

    /// Checks what does not need the models: the loss values, the stages, the student
    /// section, the cache settings.
    pub fn check(&self, file: &str) -> Result<(), DistillError> {
        self.loss.validate().map_err(|e| bad(file, "loss", e))?;
        if self.teacher.dir.is_none() {
            return Err(bad(file, "teacher.dir", "not set (pass --teacher DIR)"));
        }
        if self.run.out_dir.is_none() {
            return Err(bad(file, "run.out_dir", "not set (pass --out DIR)"));
        }
        if self.student.layers == Some(0) {
            return Err(bad(file, "student.layers", "must be at least 1"));
        }
        if let Some(p) = self.student.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(
                    file,
                    "student.dropout",
                    format!("{p} must be in [0, 1)"),
                ));
            }
        }
        let narrower = self.student.hidden_size.is_some()
            || self.student.num_attention_heads.is_some()
            || self.student.intermediate_size.is_some();
        if narrower && self.student.init != InitKind::Random {
            return Err(bad(
                file,
                "student.init",
                "a student of another width (hidden_size, num_attention_heads, \
                 intermediate_size) cannot copy teacher blocks: use init = \"random\"",
            ));
        }
        if self.student.init_layers.is_some() && self.student.init != InitKind::TeacherLayers {
            return Err(bad(
                file,
                "student.init_layers",
                "only for init = \"teacher-layers\"",
            ));
        }
        if self.student.from.is_some() && self.student.init != InitKind::Truncate {
            return Err(bad(file, "student.from", "only for init = \"truncate\""));
        }
        if let Some(k) = self.teacher.cache_top_k {
            if k == 0 {
                return Err(bad(file, "teacher.cache_top_k", "must be at least 1"));
            }
            if !self.teacher.cache {
                return Err(bad(
                    file,
                    "teacher.cache_top_k",
                    "needs teacher.cache = true",
                ));
            }
        }
        if self.teacher.cache && self.loss.soft.is_none() {
            return Err(bad(
                file,
                "teacher.cache",
                "the cache holds the teacher's logits for the soft loss, which is off",
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let key = |k: &str| format!("stage[{i}].{k}");
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(bad(
                    file,
                    &key("name"),
                    format!("{:?}: a non-empty name of letters, digits, - and _", s.name),
                ));
            }
            if s.epochs.is_some() == s.steps.is_some() {
                return Err(bad(
                    file,
                    &key("epochs"),
                    "set exactly one of epochs and steps",
                ));
            }
            if s.epochs == Some(0) || s.steps == Some(0) {
                return Err(bad(
                    file,
                    &key("epochs"),
                    "a stage needs at least one epoch/step",
                ));
            }
            if s.losses.is_empty() {
                return Err(bad(file, &key("losses"), "list at least one loss"));
            }
            for l in &s.losses {
                if !LOSS_NAMES.contains(&l.as_str()) {
                    return Err(bad(
                        file,
                        &key("losses"),
                        format!("{l:?} is not one of {}", LOSS_NAMES.join(", ")),
                    ));
                }
            }
            self.stage_losses(s)
                .map_err(|e| bad(file, &key("losses"), e))?;
        }
        Ok(())
    }

    /// The `[loss]` terms a stage lists (the others off).
    pub fn stage_losses(&self, stage: &StageSection) -> Result<LossSpec, String> {
        let on = |n: &str| stage.losses.iter().any(|l| l == n);
        let l = &self.loss;
        let missing = |n: &str| format!("{n:?} has no [loss.{n}] section");
        let mut out = LossSpec {
            hard: if on("hard") { l.hard.max(0.0) } else { 0.0 },
            soft: None,
            attention: None,
            hidden: None,
            embedding: None,
            up_to_layer: stage.up_to_layer.or(l.up_to_layer),
        };
        if on("soft") {
            let mut s = l.soft.clone().ok_or_else(|| missing("soft"))?;
            if !on("hard") {
                s.alpha = 0.0;
            }
            out.soft = Some(s);
        } else if on("hard") && out.hard == 0.0 {
            out.hard = 1.0;
        }
        if on("attention") {
            out.attention = Some(l.attention.clone().ok_or_else(|| missing("attention"))?);
        }
        if on("hidden") {
            out.hidden = Some(l.hidden.clone().ok_or_else(|| missing("hidden"))?);
        }
        if on("embedding") {
            out.embedding = Some(l.embedding.clone().ok_or_else(|| missing("embedding"))?);
        }
        out.validate()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse() {
        for (name, _) in PRESETS {
            let f = DistillFile::preset(name).unwrap();
            let back = DistillFile::from_toml(&f.to_toml().unwrap(), "x").unwrap();
            assert_eq!(back, f, "{name}");
        }
        let f = DistillFile::preset("sst2-minilm-3l").unwrap();
        assert_eq!(f.student.layers, Some(3));
        assert!(f.loss.soft.is_some() && f.loss.hidden.is_some());
        assert!(DistillFile::preset("nope").is_err());
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = DistillFile::from_toml("[loss.soft]\nalpha = 0.5\ntemp = 2\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d.toml") && e.contains("loss.soft") && e.contains("line 3"),
            "{e}"
        );
        let e = DistillFile::from_toml("[loss.hidden]\nmap = 3\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loss.hidden.map") && e.contains("line 2"), "{e}");
        let mut f = DistillFile::from_toml(
            "[teacher]\ndir = \"t\"\n[run]\nout_dir = \"o\"\n[loss.soft]\nalpha = 1.5\n",
            "d.toml",
        )
        .unwrap();
        let e = f.check("d.toml").unwrap_err().to_string();
        assert!(e.contains("soft.alpha"), "{e}");
        f.loss.soft = None;
        f.stages.push(StageSection {
            name: "s1".into(),
            epochs: Some(1),
            losses: vec!["attention".into()],
            ..Default::default()
        });
        let e = f.check("d.toml").unwrap_err().to_string();
        assert!(
            e.contains("stage[0].losses") && e.contains("[loss.attention]"),
            "{e}"
        );
        f.stages.clear();
        f.student.hidden_size = Some(64);
        let e = f.check("d.toml").unwrap_err().to_string();
        assert!(e.contains("student.init") && e.contains("random"), "{e}");
    }

    #[test]
    fn stage_losses_pick_the_listed_terms() {
        let f = DistillFile::preset("sst2-minilm-3l").unwrap();
        let s = StageSection {
            name: "intermediate".into(),
            steps: Some(10),
            losses: vec!["hidden".into()],
            ..Default::default()
        };
        let l = f.stage_losses(&s).unwrap();
        assert_eq!(l.hard, 0.0);
        assert!(l.soft.is_none() && l.hidden.is_some());
        let s = StageSection {
            losses: vec!["soft".into()],
            ..s
        };
        let l = f.stage_losses(&s).unwrap();
        assert_eq!(l.soft.unwrap().alpha, 0.0, "no hard term: soft alone");
    }
}

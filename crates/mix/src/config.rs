//! The mixture file: serde structs with defaults and `deny_unknown_fields`,
//! then [`MixConfig::validate`] checks every value once and returns a
//! [`Mixture`]. Errors name the file, the key path and (for parse errors)
//! the line: `mix.toml: sources[1].weight: must be a finite number > 0`.
//!
//! ```toml
//! mode = "weights"          # or "epochs"; inferred when every source has only one of the two
//! seed = 0
//! tokens_per_byte = 0.29335 # the Pile's GPT-2 estimate; per source overridable
//! max_epochs = 1.0          # weights mode: no source is repeated more often than this
//! # target_tokens = 1_000_000_000   # weights mode; or target_bytes (exclusive)
//!
//! [[sources]]
//! name = "web"
//! paths = ["refined/data/"]
//! weight = 0.7
//!
//! [[sources]]
//! name = "wiki"
//! paths = ["wiki.jsonl.gz"]
//! weight = 0.3
//! max_epochs = 3.0
//! token_stats = "tokens/wiki/stats.json"   # measured tokens per byte (refinery tokenize)
//! reader = { text_field = "content" }
//! ```

use std::path::{Path, PathBuf};

use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::WriterOptions;
use serde::{Deserialize, Serialize};

use crate::{MixError, Result};

/// The Pile's estimate of GPT-2 tokens per UTF-8 byte (Gao et al. 2020).
pub const PILE_TOKENS_PER_BYTE: f64 = 0.29335;

/// How source sizes are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each source's share of the output (in estimated tokens) is its weight.
    Weights,
    /// Each source is passed over `epochs` times (fractions sample the last pass).
    Epochs,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Weights => "weights",
            Mode::Epochs => "epochs",
        }
    }
}

/// One `[[sources]]` entry, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name: `metadata.mix_source`, the stats key, and part of the
    /// shuffle key (renaming a source changes the order).
    pub name: String,
    /// Files or directories (walked recursively, sorted), any reader input.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Weights mode: the share of the output. Epochs mode: the expected
    /// share, reported next to the actual one.
    #[serde(default)]
    pub weight: Option<f64>,
    /// Epochs mode: passes over the source. Weights mode: reported only.
    #[serde(default)]
    pub epochs: Option<f64>,
    /// Weights mode: epoch cap for this source (default: the top-level one).
    #[serde(default)]
    pub max_epochs: Option<f64>,
    /// Estimated tokens per UTF-8 byte of text (default: the top-level one).
    #[serde(default)]
    pub tokens_per_byte: Option<f64>,
    /// A `refinery tokenize` output directory or its `stats.json`: use its
    /// measured `total.tokens_per_byte`. Excludes `tokens_per_byte`.
    #[serde(default)]
    pub token_stats: Option<PathBuf>,
    /// Reader options for this source; replaces the top-level `[reader]`
    /// as a whole (unset keys take the reader defaults).
    #[serde(default)]
    pub reader: Option<ReaderOptions>,
}

/// The whole mixture file, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixConfig {
    /// One line of description.
    pub description: String,
    /// `weights` or `epochs`. Optional when every source sets only one of
    /// `weight` and `epochs`.
    pub mode: Option<Mode>,
    /// Seed of the sample of fractional epochs and of the output order.
    pub seed: u64,
    /// Default estimated tokens per UTF-8 byte.
    pub tokens_per_byte: f64,
    /// Weights mode: default epoch cap of every source.
    pub max_epochs: f64,
    /// Weights mode: the output size in estimated tokens.
    pub target_tokens: Option<u64>,
    /// Weights mode: the output size in UTF-8 bytes of text.
    pub target_bytes: Option<u64>,
    /// Default reader options of every source.
    pub reader: ReaderOptions,
    /// Output shards. `max_shard_bytes` is also the shuffle bucket size,
    /// which bounds memory (see docs/mixing.md).
    pub writer: WriterOptions,
    pub sources: Vec<SourceConfig>,
}

impl Default for MixConfig {
    fn default() -> Self {
        MixConfig {
            description: String::new(),
            mode: None,
            seed: 0,
            tokens_per_byte: PILE_TOKENS_PER_BYTE,
            max_epochs: 1.0,
            target_tokens: None,
            target_bytes: None,
            reader: ReaderOptions::default(),
            writer: WriterOptions::default(),
            sources: Vec::new(),
        }
    }
}

/// The output size asked for (weights mode).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Tokens(u64),
    Bytes(u64),
}

/// How much of a source goes into the mix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// Share of the output (normalized so that all weights sum to 1).
    Weight(f64),
    /// Passes over the source.
    Epochs(f64),
}

/// A checked source.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub reader: ReaderOptions,
    pub amount: Amount,
    /// The other of weight/epochs, if given: reported for comparison
    /// (weights normalized).
    pub reference_weight: Option<f64>,
    pub reference_epochs: Option<f64>,
    /// Weights mode: the epoch cap.
    pub max_epochs: f64,
    pub tokens_per_byte: f64,
    /// `default`, `config`, or the stats.json path it was read from.
    pub tokens_per_byte_from: String,
}

/// A checked mixture, ready to scan and plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    /// The file it came from (for messages and stats).
    pub file: String,
    pub description: String,
    pub mode: Mode,
    pub seed: u64,
    pub target: Option<Target>,
    pub writer: WriterOptions,
    pub sources: Vec<Source>,
}

impl MixConfig {
    /// Parses TOML; errors name `file`, the key path and the line.
    pub fn from_toml(text: &str, file: &str) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, "", &e))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            toml_error(text, file, &key, &e.into_inner())
        })
    }

    /// Reads and parses a mixture file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| MixError::config(&file, "(file)", e.to_string()))?;
        Self::from_toml(&text, &file)
    }

    /// Checks every value once. Paths are not touched except `token_stats`
    /// files, which are read here. Relative paths are relative to the
    /// current directory, as in pipeline files.
    pub fn validate(self, file: &str) -> Result<Mixture> {
        let err = |key: String, msg: &str| MixError::config(file, key, msg);
        if self.sources.is_empty() {
            return Err(err("sources".into(), "no [[sources]] given"));
        }
        check_positive(self.tokens_per_byte).map_err(|m| err("tokens_per_byte".into(), m))?;
        check_epochs_cap(self.max_epochs).map_err(|m| err("max_epochs".into(), m))?;
        if self.writer.max_shard_bytes < 1024 {
            return Err(err(
                "writer.max_shard_bytes".into(),
                "must be at least 1024",
            ));
        }
        if !(1..=19).contains(&self.writer.zstd_level) {
            return Err(err("writer.zstd_level".into(), "must be between 1 and 19"));
        }
        let has_w = self.sources.iter().filter(|s| s.weight.is_some()).count();
        let has_e = self.sources.iter().filter(|s| s.epochs.is_some()).count();
        let n = self.sources.len();
        let mode = match self.mode {
            Some(m) => m,
            None if has_w == n && has_e == 0 => Mode::Weights,
            None if has_e == n && has_w == 0 => Mode::Epochs,
            None => {
                return Err(err(
                    "mode".into(),
                    "set mode = \"weights\" or \"epochs\": the sources do not all give only a weight or only epochs",
                ))
            }
        };
        let target = match (self.target_tokens, self.target_bytes) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "target_bytes".into(),
                    "give target_tokens or target_bytes, not both",
                ))
            }
            (Some(t), None) => Some(("target_tokens", Target::Tokens(t))),
            (None, Some(b)) => Some(("target_bytes", Target::Bytes(b))),
            (None, None) => None,
        };
        if let Some((key, t)) = target {
            if mode == Mode::Epochs {
                return Err(err(
                    key.into(),
                    "a target size applies to weights mode only (epochs fix the size)",
                ));
            }
            if matches!(t, Target::Tokens(0) | Target::Bytes(0)) {
                return Err(err(key.into(), "must be at least 1"));
            }
        }
        let weight_sum: f64 = self.sources.iter().filter_map(|s| s.weight).sum();
        let mut names = std::collections::BTreeSet::new();
        let mut sources = Vec::with_capacity(n);
        for (i, s) in self.sources.into_iter().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(err(
                    key("name"),
                    "must be non-empty and use only ASCII letters, digits, '-', '_' or '.'",
                ));
            }
            if !names.insert(s.name.clone()) {
                return Err(err(
                    key("name"),
                    &format!("duplicate source name `{}`", s.name),
                ));
            }
            if s.paths.is_empty() {
                return Err(err(key("paths"), "no paths given"));
            }
            if let Some(w) = s.weight {
                check_positive(w).map_err(|m| err(key("weight"), m))?;
            }
            if let Some(e) = s.epochs {
                check_positive(e).map_err(|m| err(key("epochs"), m))?;
                if e > 1e6 {
                    return Err(err(key("epochs"), "must be at most 1e6"));
                }
            }
            let amount = match mode {
                Mode::Weights => match s.weight {
                    Some(w) => Amount::Weight(w / weight_sum),
                    None => return Err(err(key("weight"), "missing (mode = \"weights\")")),
                },
                Mode::Epochs => match s.epochs {
                    Some(e) => Amount::Epochs(e),
                    None => return Err(err(key("epochs"), "missing (mode = \"epochs\")")),
                },
            };
            let max_epochs = match s.max_epochs {
                Some(m) => {
                    check_epochs_cap(m).map_err(|msg| err(key("max_epochs"), msg))?;
                    m
                }
                None => self.max_epochs,
            };
            let (tokens_per_byte, from) = match (s.tokens_per_byte, &s.token_stats) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        key("token_stats"),
                        "give tokens_per_byte or token_stats, not both",
                    ))
                }
                (Some(t), None) => {
                    check_positive(t).map_err(|m| err(key("tokens_per_byte"), m))?;
                    (t, "config".to_string())
                }
                (None, Some(p)) => {
                    let (t, path) = read_token_stats(p).map_err(|m| err(key("token_stats"), &m))?;
                    (t, path)
                }
                (None, None) => (self.tokens_per_byte, "default".to_string()),
            };
            sources.push(Source {
                reference_weight: match mode {
                    Mode::Epochs => s.weight.map(|w| w / weight_sum),
                    Mode::Weights => None,
                },
                reference_epochs: match mode {
                    Mode::Weights => s.epochs,
                    Mode::Epochs => None,
                },
                name: s.name,
                paths: s.paths,
                reader: s.reader.unwrap_or_else(|| self.reader.clone()),
                amount,
                max_epochs,
                tokens_per_byte,
                tokens_per_byte_from: from,
            });
        }
        Ok(Mixture {
            file: file.to_string(),
            description: self.description,
            mode,
            seed: self.seed,
            target: target.map(|(_, t)| t),
            writer: self.writer,
            sources,
        })
    }
}

fn check_positive(v: f64) -> std::result::Result<(), &'static str> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err("must be a finite number > 0")
    }
}

fn check_epochs_cap(v: f64) -> std::result::Result<(), &'static str> {
    if v.is_finite() && v > 0.0 && v <= 1e6 {
        Ok(())
    } else {
        Err("must be a number > 0 and at most 1e6")
    }
}

/// Reads `total.tokens_per_byte` from a `refinery tokenize` stats.json (or
/// the directory holding it). Only the fields used are parsed, so this does
/// not depend on the tokenize crate.
fn read_token_stats(p: &Path) -> std::result::Result<(f64, String), String> {
    #[derive(Deserialize)]
    struct Total {
        tokens_per_byte: f64,
    }
    #[derive(Deserialize)]
    struct Stats {
        total: Total,
    }
    let path = if p.is_dir() {
        p.join("stats.json")
    } else {
        p.to_path_buf()
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: Stats = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: not a refinery tokenize stats.json (needs total.tokens_per_byte): {e}",
            path.display()
        )
    })?;
    let t = s.total.tokens_per_byte;
    if !(t.is_finite() && t > 0.0) {
        return Err(format!(
            "{}: total.tokens_per_byte is {t}; it must be > 0 (was anything tokenized?)",
            path.display()
        ));
    }
    Ok((t, path.display().to_string()))
}

fn toml_error(text: &str, file: &str, key: &str, e: &toml::de::Error) -> MixError {
    let (key, message) = refinery_corpus::toml_error_parts(text, key, e.message(), e.span());
    MixError::config(file, key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Mixture> {
        MixConfig::from_toml(text, "m.toml")?.validate("m.toml")
    }

    #[test]
    fn mode_is_inferred_and_weights_are_normalized() {
        let m = parse(
            "[[sources]]\nname='a'\npaths=['x']\nweight=3\n[[sources]]\nname='b'\npaths=['y']\nweight=1\n",
        )
        .unwrap();
        assert_eq!(m.mode, Mode::Weights);
        assert_eq!(m.sources[0].amount, Amount::Weight(0.75));
        assert_eq!(m.sources[1].tokens_per_byte, PILE_TOKENS_PER_BYTE);
        let m = parse("[[sources]]\nname='a'\npaths=['x']\nepochs=1.5\n").unwrap();
        assert_eq!(m.mode, Mode::Epochs);
    }

    #[test]
    fn token_stats_give_measured_tokens_per_byte() {
        let dir = tempfile::tempdir().unwrap();
        let stats = dir.path().join("stats.json");
        std::fs::write(
            &stats,
            r#"{"tokenizer":"t","total":{"docs":2,"text_bytes":100,"tokens":25,"tokens_per_byte":0.25}}"#,
        )
        .unwrap();
        let toml = format!(
            "[[sources]]\nname='a'\npaths=['x']\nweight=1\ntoken_stats='{}'\n",
            dir.path().display()
        );
        let m = parse(&toml).unwrap();
        assert_eq!(m.sources[0].tokens_per_byte, 0.25);
        assert_eq!(
            m.sources[0].tokens_per_byte_from,
            stats.display().to_string()
        );
        std::fs::write(&stats, "{}").unwrap();
        let e = parse(&toml).unwrap_err().to_string();
        assert!(e.starts_with("m.toml: sources[0].token_stats: "), "{e}");
        assert!(e.contains("total.tokens_per_byte"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = parse("[[sources]]\nname='a'\npaths=['x']\nweight='lots'\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("m.toml: sources[0].weight: "), "{s}");
        assert!(s.contains("line 4"), "{s}");
        let s = parse("[[sources]]\nname='a'\npaths=['x']\nweight=-1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(s, "m.toml: sources[0].weight: must be a finite number > 0");
        let s = parse("[[sources]]\nname='a'\npaths=['x']\nwieght=1\n")
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("m.toml: sources[0].wieght: unknown field"),
            "{s}"
        );
        let s = parse("[[sources]]\nname='a'\npaths=['x']\nweight=1\n[[sources]]\nname='b'\npaths=['y']\nepochs=2\n")
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("m.toml: mode: "), "{s}");
        let s = parse("target_tokens=5\n[[sources]]\nname='a'\npaths=['x']\nepochs=2\n")
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("m.toml: target_tokens: "), "{s}");
    }
}

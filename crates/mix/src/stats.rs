//! `mix_stats.json` and the table: the effective size of every source.
//!
//! Bytes are UTF-8 bytes of document text (not JSON, not compressed);
//! tokens are estimated as `bytes × tokens_per_byte` of the source and
//! rounded; `share` is a source's share of the output's estimated tokens.
//! Per source, `output.docs` and `output.bytes` are counted as written and
//! checked against the plan; the totals are the sums of the sources.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::{Amount, Mixture};
use crate::plan::Plan;
use crate::scan::SourceScan;

pub const STATS_FILE: &str = "mix_stats.json";

/// Documents, text bytes and estimated tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub docs: u64,
    pub bytes: u64,
    pub tokens: u64,
}

impl Size {
    fn of(docs: u64, bytes: u64, tokens_per_byte: f64) -> Size {
        Size {
            docs,
            bytes,
            tokens: (bytes as f64 * tokens_per_byte).round() as u64,
        }
    }

    fn add(&mut self, o: &Size) {
        self.docs += o.docs;
        self.bytes += o.bytes;
        self.tokens += o.tokens;
    }
}

/// One source's line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub name: String,
    pub files: u64,
    /// Weights mode: the normalized weight asked for. Epochs mode: the
    /// normalized `weight` of the file, if given, as a reference.
    pub weight: Option<f64>,
    /// Epochs mode: the epochs asked for. Weights mode: the `epochs` of the
    /// file, if given, as a reference.
    pub requested_epochs: Option<f64>,
    /// Weights mode: the epoch cap.
    pub max_epochs: Option<f64>,
    pub tokens_per_byte: f64,
    /// `default`, `config`, or the tokenize stats.json it was read from.
    pub tokens_per_byte_from: String,
    /// Records read (documents + reader drops + reader failures).
    pub records: u64,
    pub reader_dropped: u64,
    pub reader_failed: u64,
    /// One pass over the source.
    pub input: Size,
    /// Epochs from the plan (weights mode: computed from the weight).
    pub planned_epochs: f64,
    /// Effective size in the mix.
    pub output: Size,
    /// `output.bytes / input.bytes`.
    pub effective_epochs: f64,
    /// Share of the output's estimated tokens.
    pub share: f64,
    /// Share of the output's text bytes.
    pub byte_share: f64,
}

/// Totals over all sources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub records: u64,
    pub input: Size,
    pub output: Size,
    pub effective_epochs: f64,
}

/// What was written (absent for a dry run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub shards: u64,
    /// Uncompressed JSONL bytes in all shards.
    pub jsonl_bytes: u64,
    pub buckets: u32,
    pub seconds: f64,
}

/// `DIR/mix_stats.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixStats {
    pub mixture: String,
    pub description: String,
    pub mode: String,
    pub seed: u64,
    pub target_tokens: Option<u64>,
    pub target_bytes: Option<u64>,
    /// Weights mode: the total estimated tokens the weights were applied to.
    pub planned_tokens: Option<f64>,
    /// What `share` is measured in.
    pub share_unit: String,
    pub dry_run: bool,
    pub sources: Vec<SourceStats>,
    pub total: Totals,
    pub written: Option<Written>,
}

impl MixStats {
    /// Stats of a plan, with the per-source output sizes from the plan.
    pub fn new(mix: &Mixture, scans: &[SourceScan], plan: &Plan) -> MixStats {
        let mut sources = Vec::with_capacity(scans.len());
        let mut total = Totals::default();
        for ((s, sc), p) in mix.sources.iter().zip(scans).zip(&plan.sources) {
            let (weight, requested_epochs, max_epochs) = match s.amount {
                Amount::Weight(w) => (Some(w), s.reference_epochs, Some(s.max_epochs)),
                Amount::Epochs(e) => (s.reference_weight, Some(e), None),
            };
            let input = Size::of(sc.docs, sc.bytes, s.tokens_per_byte);
            let output = Size::of(p.docs, p.bytes, s.tokens_per_byte);
            total.files += sc.files.len() as u64;
            total.records += sc.records;
            total.input.add(&input);
            total.output.add(&output);
            sources.push(SourceStats {
                name: s.name.clone(),
                files: sc.files.len() as u64,
                weight,
                requested_epochs,
                max_epochs,
                tokens_per_byte: s.tokens_per_byte,
                tokens_per_byte_from: s.tokens_per_byte_from.clone(),
                records: sc.records,
                reader_dropped: sc.dropped,
                reader_failed: sc.failed,
                effective_epochs: ratio(output.bytes, input.bytes),
                input,
                planned_epochs: p.planned_epochs,
                output,
                share: 0.0,
                byte_share: 0.0,
            });
        }
        for s in &mut sources {
            s.share = ratio(s.output.tokens, total.output.tokens);
            s.byte_share = ratio(s.output.bytes, total.output.bytes);
        }
        total.effective_epochs = ratio(total.output.bytes, total.input.bytes);
        let (target_tokens, target_bytes) = match mix.target {
            Some(crate::Target::Tokens(t)) => (Some(t), None),
            Some(crate::Target::Bytes(b)) => (None, Some(b)),
            None => (None, None),
        };
        MixStats {
            mixture: mix.file.clone(),
            description: mix.description.clone(),
            mode: mix.mode.as_str().into(),
            seed: mix.seed,
            target_tokens,
            target_bytes,
            planned_tokens: plan.total_tokens.map(|t| t.round()),
            share_unit: "estimated_tokens".into(),
            dry_run: true,
            sources,
            total,
            written: None,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let target = match (self.target_tokens, self.target_bytes) {
            (Some(t), _) => format!(", target {} tokens", human(t as f64)),
            (_, Some(b)) => format!(", target {}B of text", human(b as f64)),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "mixture {} ({} mode, seed {}{target}){}",
            self.mixture,
            self.mode,
            self.seed,
            if self.dry_run { ", dry run" } else { "" }
        );
        let _ = writeln!(
            o,
            "{:<18} {:>9} {:>9} {:>8} │ {:>7} {:>10} {:>9} {:>9} {:>9} {:>7}",
            "source",
            "in docs",
            "in bytes",
            "tok/B",
            "epochs",
            "docs",
            "bytes",
            "est tok",
            "share",
            "weight"
        );
        let line = |o: &mut String, name: &str, s: Option<&SourceStats>, t: &Totals| {
            let (input, output, tpb, epochs, share, weight) = match s {
                Some(s) => (
                    &s.input,
                    &s.output,
                    format!("{:.5}", s.tokens_per_byte),
                    s.effective_epochs,
                    format!("{:.2}%", 100.0 * s.share),
                    s.weight
                        .map(|w| format!("{:.2}%", 100.0 * w))
                        .unwrap_or_else(|| "-".into()),
                ),
                None => (
                    &t.input,
                    &t.output,
                    String::new(),
                    t.effective_epochs,
                    "100.00%".into(),
                    String::new(),
                ),
            };
            let _ = writeln!(
                o,
                "{:<18} {:>9} {:>9} {:>8} │ {:>7.3} {:>10} {:>9} {:>9} {:>9} {:>7}",
                name,
                input.docs,
                human(input.bytes as f64),
                tpb,
                epochs,
                output.docs,
                human(output.bytes as f64),
                human(output.tokens as f64),
                share,
                weight
            );
        };
        for s in &self.sources {
            line(&mut o, &s.name, Some(s), &self.total);
        }
        line(&mut o, "total", None, &self.total);
        let _ = writeln!(
            o,
            "bytes: UTF-8 text; est tok = bytes × tok/B; share of estimated tokens; epochs = output/input bytes"
        );
        if let Some(w) = &self.written {
            let _ = writeln!(
                o,
                "wrote {} shards ({} of JSONL, {} buckets) in {:.1}s",
                w.shards,
                human(w.jsonl_bytes as f64),
                w.buckets,
                w.seconds
            );
        }
        o
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// 1234567 → "1.23M" (SI, decimal).
fn human(v: f64) -> String {
    let units = ["", "K", "M", "G", "T", "P"];
    let mut v = v;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}{}", units[u])
    }
}

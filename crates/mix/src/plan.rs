//! The plan: how many copies of which documents each source contributes.
//! A pure function of the mixture and the scans, so it is the same for a
//! dry run and a real run.
//!
//! * **Epochs mode:** source `i` gets `epochs_i` passes.
//! * **Weights mode:** shares are in *estimated tokens*
//!   (`text bytes × tokens_per_byte` of the source). For a total of `T`
//!   tokens, source `i` needs `w_i·T` tokens, i.e. `w_i·T / tokens_i`
//!   epochs. `T` is `target_tokens`; or, from `target_bytes`,
//!   `B / Σ(w_i / tpb_i)`; or, with no target, the largest `T` at which no
//!   source exceeds its `max_epochs`: `min_i(max_epochs_i · tokens_i / w_i)`.
//!   A target that would push a source past its cap is an error.
//!
//! An epoch count `e` is `⌊e⌋` full passes plus, for the fraction, a seeded
//! sample of the source: the documents whose selection hash falls in the
//! lowest bins of a 65,536-bin histogram of text bytes, cut at the bin
//! boundary nearest to `frac·bytes`. The sample is therefore off its byte
//! budget by at most half a bin (about 1/131,072 of the source, or one
//! document for small sources).

use crate::config::{Amount, Mixture, Target};
use crate::scan::{SourceScan, BINS};
use crate::{MixError, Result};

/// What one source contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcePlan {
    /// Epochs asked for (epochs mode) or computed from the weight.
    pub planned_epochs: f64,
    /// Every document appears in epochs `1..=full_passes`.
    pub full_passes: u32,
    /// Documents whose selection bin is below this also appear in epoch
    /// `full_passes + 1` (0: no partial pass; [`BINS`]: all documents).
    pub partial_cutoff: usize,
    /// Output documents and UTF-8 text bytes.
    pub docs: u64,
    pub bytes: u64,
}

impl SourcePlan {
    /// How many copies (epochs `1..=n`) of a document in `bin` go out.
    pub fn copies(&self, bin: usize) -> u32 {
        self.full_passes + u32::from(bin < self.partial_cutoff)
    }
}

/// The plan of a whole mixture.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub sources: Vec<SourcePlan>,
    /// Weights mode: the total estimated tokens the shares are taken of.
    pub total_tokens: Option<f64>,
    /// Shuffle buckets = output shard groups.
    pub buckets: u32,
}

/// Plans the mixture from the scans (same order as `mix.sources`).
pub fn plan(mix: &Mixture, scans: &[SourceScan]) -> Result<Plan> {
    let mut epochs = Vec::with_capacity(scans.len());
    let mut total_tokens = None;
    let weights: Vec<f64> = mix
        .sources
        .iter()
        .map(|s| match s.amount {
            Amount::Weight(w) => w,
            Amount::Epochs(_) => 0.0,
        })
        .collect();
    if weights.iter().any(|w| *w > 0.0) {
        let mut tokens = Vec::with_capacity(scans.len());
        for (s, sc) in mix.sources.iter().zip(scans) {
            if sc.bytes == 0 {
                return Err(MixError::Plan {
                    source_name: s.name.clone(),
                    message: format!(
                        "has no text ({} documents in {} files), so it cannot take a weight",
                        sc.docs,
                        sc.files.len()
                    ),
                });
            }
            tokens.push(sc.bytes as f64 * s.tokens_per_byte);
        }
        let t = match mix.target {
            Some(Target::Tokens(n)) => n as f64,
            Some(Target::Bytes(n)) => {
                let per_token: f64 = mix
                    .sources
                    .iter()
                    .zip(&weights)
                    .map(|(s, w)| w / s.tokens_per_byte)
                    .sum();
                n as f64 / per_token
            }
            None => mix
                .sources
                .iter()
                .zip(&weights)
                .zip(&tokens)
                .map(|((s, w), t)| s.max_epochs * t / w)
                .fold(f64::INFINITY, f64::min),
        };
        for ((s, w), tok) in mix.sources.iter().zip(&weights).zip(&tokens) {
            let e = w * t / tok;
            if e > s.max_epochs * (1.0 + 1e-9) {
                return Err(MixError::Plan {
                    source_name: s.name.clone(),
                    message: format!(
                        "needs {e:.4} epochs for its weight {w:.4} of {t:.0} tokens, above \
                         max_epochs = {}; raise max_epochs (top level or for this source) or \
                         lower the target",
                        s.max_epochs
                    ),
                });
            }
            epochs.push(e.min(s.max_epochs));
        }
        total_tokens = Some(t);
    } else {
        for s in &mix.sources {
            if let Amount::Epochs(e) = s.amount {
                epochs.push(e);
            }
        }
    }
    let sources: Vec<SourcePlan> = epochs
        .iter()
        .zip(scans)
        .map(|(&e, sc)| source_plan(e, sc))
        .collect();
    let out_docs: u64 = sources.iter().map(|p| p.docs).sum();
    let out_bytes: u64 = sources.iter().map(|p| p.bytes).sum();
    // Estimated JSONL bytes: text plus 10% for escapes, plus ~256 bytes of
    // id, source and metadata per document. Over-estimating only makes
    // buckets (and shards) a little smaller than max_shard_bytes.
    let jsonl = 1.1 * out_bytes as f64 + 256.0 * out_docs as f64;
    let buckets = (jsonl / mix.writer.max_shard_bytes as f64)
        .ceil()
        .clamp(1.0, u32::MAX as f64) as u32;
    Ok(Plan {
        sources,
        total_tokens,
        buckets,
    })
}

/// Full passes, plus the histogram cut nearest to the fractional budget.
pub fn source_plan(epochs: f64, sc: &SourceScan) -> SourcePlan {
    let full = (epochs + 1e-9).floor();
    let frac = (epochs - full).max(0.0);
    let full_passes = full as u32;
    let mut cutoff = 0;
    let (mut docs, mut bytes) = (0u64, 0u64);
    if frac > 1e-9 {
        let budget = frac * sc.bytes as f64;
        while cutoff < BINS {
            let (d, b) = sc.hist[cutoff];
            let with = (bytes + b) as f64;
            if with > budget {
                // Take this bin only if that lands nearer the budget.
                if with - budget < budget - bytes as f64 {
                    cutoff += 1;
                    docs += d;
                    bytes += b;
                }
                break;
            }
            cutoff += 1;
            docs += d;
            bytes += b;
        }
    }
    SourcePlan {
        planned_epochs: epochs,
        full_passes,
        partial_cutoff: cutoff,
        docs: docs + u64::from(full_passes) * sc.docs,
        bytes: bytes + u64::from(full_passes) * sc.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(sizes: &[u64]) -> SourceScan {
        let mut s = SourceScan::new(Vec::new());
        for (i, b) in sizes.iter().enumerate() {
            s.add_doc(i * 7 % BINS, *b);
        }
        s
    }

    #[test]
    fn fractional_epochs_cut_nearest_to_the_budget() {
        let sc = scan_of(&[100; 10]);
        let p = source_plan(1.5, &sc);
        assert_eq!((p.full_passes, p.docs, p.bytes), (1, 15, 1500));
        let p = source_plan(2.0, &sc);
        assert_eq!((p.full_passes, p.partial_cutoff, p.docs), (2, 0, 20));
        let p = source_plan(0.26, &sc);
        assert_eq!(p.docs, 3);
        let p = source_plan(0.24, &sc);
        assert_eq!(p.docs, 2);
        assert_eq!(p.copies(0), 1);
        assert_eq!(p.copies(BINS - 1), 0);
    }
}

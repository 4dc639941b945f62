//! `refinery prune`: one-shot magnitude pruning of a checkpoint directory
//! (`refinery_compress::prune`); this module parses flags and prints the summary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use refinery_compress::prune::{prune_checkpoint, PruneOptions, Scope, Sparsity, REPORT_FILE};

const PRUNE_EXAMPLES: &str = "\
Examples:
  refinery prune --model runs/sst2/best --method magnitude --sparsity 0.5 --out runs/sst2-p50
  refinery prune --model runs/sst2/best --sparsity 0.7 --scope layer --sparse --out runs/sst2-p70
  refinery evaluate --model runs/sst2-p50 --data sst2/dev.tsv

Magnitude pruning sets the round(S·n) smallest |w| of the Linear weights to zero (embeddings,
LayerNorm and, without --include-head, the classifier head stay dense). The output is a normal
dense f32 checkpoint (refinery and transformers load it as before) with `refinery_pruning` in
config.json and a per-tensor report in OUT/pruning.json. Dense kernels run no faster on zeros:
--sparse also writes OUT/model.sparse (bitmask + non-zero values), for storage only.
See docs/pruning.md.";

/// How to choose the weights to remove.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Unstructured: the smallest |w| of the Linear weights.
    Magnitude,
}

/// Over which weights one magnitude threshold applies.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// One threshold over all pruned weights (layers end with different sparsities).
    Global,
    /// The same sparsity in each weight matrix.
    Layer,
}

/// What to prune and where.
#[derive(Args)]
#[command(after_help = PRUNE_EXAMPLES)]
pub struct PruneArgs {
    /// The checkpoint directory (config.json + model.safetensors + the rest).
    #[arg(long)]
    model: PathBuf,
    /// The pruning method.
    #[arg(long, value_enum, default_value = "magnitude")]
    method: Method,
    /// The fraction of weights to remove, in [0, 1).
    #[arg(long, allow_negative_numbers = true)]
    sparsity: f64,
    /// One threshold for all weights, or the same sparsity per layer.
    #[arg(long, value_enum, default_value = "global")]
    scope: ScopeArg,
    /// Prune the classifier/score head too (default: it stays dense).
    #[arg(long)]
    include_head: bool,
    /// Also write OUT/model.sparse (bitmask + packed values of the pruned weights).
    #[arg(long)]
    sparse: bool,
    /// The output directory (absent or empty).
    #[arg(long)]
    out: PathBuf,
    /// Print pruning.json instead of the summary.
    #[arg(long)]
    json: bool,
}

const MB: f64 = 1e6;

pub fn prune(a: PruneArgs) -> Result<ExitCode> {
    let Method::Magnitude = a.method;
    let options = PruneOptions {
        sparsity: Sparsity::new(a.sparsity).context("--sparsity")?,
        scope: match a.scope {
            ScopeArg::Global => Scope::Global,
            ScopeArg::Layer => Scope::Layer,
        },
        include_head: a.include_head,
        write_sparse: a.sparse,
    };
    let report = prune_checkpoint(&a.model, &a.out, &options)
        .with_context(|| format!("pruning {}", a.model.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = &report.totals;
    let s = &report.storage;
    println!(
        "pruned {} tensors ({} scope): {} of {} weights are zero ({:.2}%; {:.2}% of all {} parameters)",
        t.tensors,
        options.scope.name(),
        t.zeros,
        t.params,
        100.0 * t.sparsity,
        100.0 * t.model_sparsity,
        t.model_params
    );
    let (lo, hi) = report
        .tensors
        .iter()
        .map(|r| r.sparsity)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
    println!(
        "per-tensor sparsity: {:.2}% to {:.2}%",
        100.0 * lo,
        100.0 * hi
    );
    println!(
        "pruned tensors: {:.2} MB dense f32, {:.2} MB as model.sparse{}",
        s.dense_bytes as f64 / MB,
        s.sparse_bytes as f64 / MB,
        if s.sparse_written {
            " (written)"
        } else {
            " (not written: --sparse)"
        }
    );
    println!(
        "wrote {} (report: {})",
        a.out.display(),
        a.out.join(REPORT_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

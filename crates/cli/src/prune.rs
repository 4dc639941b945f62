//! `refinery prune`: one-shot magnitude pruning (`refinery_compress::prune`) and structured
//! head/FFN pruning (`refinery_compress::structured`) of a checkpoint directory; this module
//! parses flags and prints the summary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use refinery_compress::prune::{prune_checkpoint, PruneOptions, Scope, Sparsity, REPORT_FILE};
use refinery_compress::structured::{
    prune_structured, Criterion, ImportanceData, Structure, StructuredOptions,
};
use refinery_model::device::parse_device;

const PRUNE_EXAMPLES: &str = "\
Examples:
  refinery prune --model runs/sst2/best --method magnitude --sparsity 0.5 --out runs/sst2-p50
  refinery prune --model runs/sst2/best --sparsity 0.7 --scope layer --sparse --out runs/sst2-p70
  refinery evaluate --model runs/sst2-p50 --data sst2/dev.tsv
  refinery prune --model runs/sst2/best --method heads --sparsity 0.4 --data sst2/train.tsv --out runs/sst2-h40
  refinery prune --model runs/sst2/best --method heads --heads '0:1,5;3:0' --out runs/sst2-h3
  refinery prune --model runs/sst2/best --method ffn --sparsity 0.5 --data sst2/train.tsv --out runs/sst2-f50

Magnitude pruning sets the round(S·n) smallest |w| of the Linear weights to zero (embeddings,
LayerNorm and, without --include-head, the classifier head stay dense). The output is a normal
dense f32 checkpoint (refinery and transformers load it as before) with `refinery_pruning` in
config.json and a per-tensor report in OUT/pruning.json. Dense kernels run no faster on zeros:
--sparse also writes OUT/model.sparse (bitmask + non-zero values), for storage only.

Structured pruning (BERT) removes whole heads or FFN neurons, so the matrices shrink and the
model runs faster. --method heads: --sparsity is the fraction of all heads, ranked by gradient
importance on --data (Michel et al. 2019; without --data, by weight norm) and pruned in rounds
of --step, re-scored between rounds; config.json records HF `pruned_heads` (transformers 4.x
loads it). --method ffn: the fraction of each layer's FFN neurons; `intermediate_size` shrinks.
Fine-tune the result to recover accuracy (refinery finetune --init OUT). See docs/pruning.md.";

/// How to choose the weights to remove.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Unstructured: the smallest |w| of the Linear weights.
    Magnitude,
    /// Structured: whole attention heads (BERT), removed physically.
    Heads,
    /// Structured: FFN neurons, the same fraction in every layer (BERT), removed physically.
    Ffn,
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
    /// The fraction to remove, in [0, 1): of the Linear weights (magnitude), of all heads
    /// (heads), or of each layer's FFN neurons (ffn). Not with --heads.
    #[arg(long, allow_negative_numbers = true, required_unless_present = "heads")]
    sparsity: Option<f64>,
    /// heads/ffn: labelled data for the gradient importance (the model's text/label fields;
    /// without it, heads and neurons are ranked by weight norm).
    #[arg(long)]
    data: Option<PathBuf>,
    /// heads/ffn: rows of --data used (the first N).
    #[arg(long, default_value_t = 2048)]
    samples: usize,
    /// heads/ffn: rows per importance batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// heads: the fraction of all heads removed per round (importance is recomputed between
    /// rounds).
    #[arg(long, default_value_t = 0.1)]
    step: f64,
    /// heads: prune exactly these heads, as `LAYER:HEAD,HEAD;LAYER:HEAD` (original indices).
    #[arg(long, conflicts_with_all = ["sparsity", "data"])]
    heads: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
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

/// Parses `LAYER:HEAD,HEAD;LAYER:HEAD`.
fn parse_heads(spec: &str) -> Result<BTreeMap<usize, Vec<usize>>> {
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (layer, heads) = part
            .split_once(':')
            .with_context(|| format!("--heads: `{part}` is not LAYER:HEAD,HEAD"))?;
        let layer: usize = layer
            .trim()
            .parse()
            .with_context(|| format!("--heads: layer `{layer}` in `{part}`"))?;
        for h in heads.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let h: usize = h
                .parse()
                .with_context(|| format!("--heads: head `{h}` in `{part}`"))?;
            out.entry(layer).or_default().push(h);
        }
    }
    if out.values().all(Vec::is_empty) {
        bail!("--heads `{spec}` names no heads");
    }
    Ok(out)
}

fn structured(a: PruneArgs, structure: Structure) -> Result<ExitCode> {
    if a.include_head || a.sparse || a.scope != ScopeArg::Global {
        bail!("--include-head, --sparse and --scope apply to --method magnitude");
    }
    let criterion = match (&a.heads, &a.data) {
        (Some(spec), _) => {
            if structure != Structure::Heads {
                bail!("--heads applies to --method heads");
            }
            Criterion::Explicit(parse_heads(spec)?)
        }
        (None, Some(path)) => Criterion::Importance(ImportanceData {
            path: path.clone(),
            samples: a.samples,
            batch_size: a.batch_size,
        }),
        (None, None) => Criterion::Magnitude,
    };
    let options = StructuredOptions {
        structure,
        fraction: Sparsity::new(a.sparsity.unwrap_or(0.0)).context("--sparsity")?,
        step: a.step,
        criterion,
    };
    let device = parse_device(&a.device)?;
    let bar = crate::pretrain::bar(a.json);
    let mut progress = |round: usize, done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!("importance, round {round}"));
    };
    let report = prune_structured(&a.model, &a.out, &options, &device, &mut progress)
        .with_context(|| format!("pruning {}", a.model.display()))?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let what = match structure {
        Structure::Heads => "heads",
        Structure::Ffn => "FFN neurons",
    };
    println!(
        "{} pruning ({}): {} of {} {what} left in {} round(s); parameters {} -> {} ({:.1}%)",
        structure.name(),
        report.criterion,
        report.units_after,
        report.units_before,
        report.rounds.len(),
        report.params_before,
        report.params_after,
        100.0 * report.params_after as f64 / report.params_before.max(1) as f64
    );
    for l in &report.layers {
        match &l.pruned_heads {
            Some(p) => println!(
                "  layer {}: {} -> {} heads (pruned_heads {p:?})",
                l.layer, l.before, l.after
            ),
            None => println!("  layer {}: {} -> {} neurons", l.layer, l.before, l.after),
        }
    }
    println!(
        "wrote {} ({:.2} MB; report: {})",
        a.out.display(),
        report.safetensors_bytes as f64 / MB,
        a.out.join(REPORT_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn prune(a: PruneArgs) -> Result<ExitCode> {
    match a.method {
        Method::Magnitude => {}
        Method::Heads => return structured(a, Structure::Heads),
        Method::Ffn => return structured(a, Structure::Ffn),
    }
    if a.data.is_some() || a.heads.is_some() {
        bail!("--data and --heads apply to --method heads|ffn");
    }
    let Some(sparsity) = a.sparsity else {
        bail!("--sparsity is required");
    };
    let options = PruneOptions {
        sparsity: Sparsity::new(sparsity).context("--sparsity")?,
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

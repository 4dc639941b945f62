//! `refinery mix`: Pile-style weighted mixing (the refinery-mix crate).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use refinery_mix::{plan, scan, stats::MixStats, write, MixConfig};

const MIX_EXAMPLES: &str = "\
Examples:
  # Print the effective size of every source without writing anything:
  refinery mix my-mix.toml --dry-run

  # Weights mode, 10 billion estimated tokens, another shuffle:
  refinery mix my-mix.toml --output mixed/ --target-tokens 10G --seed 7

  # Read the result with HF datasets:
  #   load_dataset(\"json\", data_files=\"mixed/data/*.jsonl.zst\")

The mixture file format is in docs/mixing.md; presets/mix/pile.toml mirrors
the Pile's table (weights and epochs of its 22 components).";

#[derive(Args)]
#[command(after_help = MIX_EXAMPLES)]
pub struct MixArgs {
    /// Mixture TOML file: [[sources]] with name, paths and weight or epochs.
    pub mixture: PathBuf,
    /// Output directory: data/*.jsonl.zst and mix_stats.json.
    #[arg(long, short, required_unless_present = "dry_run")]
    pub output: Option<PathBuf>,
    /// Seed of the fractional-epoch sample and of the output order (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Weights mode: output size in estimated tokens (SI suffixes: 500M, 10G, 1.5T).
    #[arg(long, value_parser = parse_si, conflicts_with = "target_bytes")]
    pub target_tokens: Option<u64>,
    /// Weights mode: output size in UTF-8 bytes of text (SI suffixes: 500M, 10G).
    #[arg(long, value_parser = parse_si)]
    pub target_bytes: Option<u64>,
    /// Scan and plan only: print the table, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Worker threads. Never changes the output.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Replace an earlier mix in the output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the stats as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// "10G" → 10_000_000_000; "1.5T", "500M", "64K", plain integers.
fn parse_si(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim().replace('_', "");
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1e3),
        Some('M' | 'm') => (&s[..s.len() - 1], 1e6),
        Some('G' | 'g' | 'B' | 'b') => (&s[..s.len() - 1], 1e9),
        Some('T' | 't') => (&s[..s.len() - 1], 1e12),
        _ => (s.as_str(), 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a number (e.g. 1000000, 500M, 10G, 1.5T)"))?;
    let v = v * mult;
    if !(1.0..1.8e19).contains(&v) {
        return Err(format!("`{s}` must be at least 1"));
    }
    Ok(v.round() as u64)
}

pub fn mix(args: MixArgs) -> Result<ExitCode> {
    let file = args.mixture.display().to_string();
    let mut cfg = MixConfig::from_file(&args.mixture)?;
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if args.target_tokens.is_some() || args.target_bytes.is_some() {
        cfg.target_tokens = args.target_tokens;
        cfg.target_bytes = args.target_bytes;
    }
    let mixture = cfg.validate(&file)?;
    let _lock = match (&args.output, args.dry_run) {
        (Some(out), false) => Some(refinery_corpus::lock::lock_output(out, None)?),
        _ => None,
    };
    let workers = match args.workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(w) => w,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let t0 = Instant::now();
    if !args.quiet {
        eprintln!(
            "mix: scanning {} sources on {workers} threads…",
            mixture.sources.len()
        );
    }
    let scans = scan::scan(&mixture, workers)?;
    let plan = plan::plan(&mixture, &scans)?;
    let stats = if args.dry_run {
        MixStats::new(&mixture, &scans, &plan)
    } else {
        let out = args.output.as_ref().context("--output is required")?;
        if !args.quiet {
            eprintln!(
                "mix: scanned {} files in {:.1}s; writing {} documents in {} buckets to {}…",
                scans.iter().map(|s| s.files.len()).sum::<usize>(),
                t0.elapsed().as_secs_f64(),
                plan.sources.iter().map(|p| p.docs).sum::<u64>(),
                plan.buckets,
                out.display()
            );
        }
        write::write(&mixture, &scans, &plan, out, workers, args.overwrite)
            .with_context(|| format!("mix into {}", out.display()))?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", stats.table());
        if !args.quiet {
            eprintln!("mix: done in {:.1}s", t0.elapsed().as_secs_f64());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_si;

    #[test]
    fn si_sizes() {
        assert_eq!(parse_si("1000").unwrap(), 1000);
        assert_eq!(parse_si("10G").unwrap(), 10_000_000_000);
        assert_eq!(parse_si("1.5T").unwrap(), 1_500_000_000_000);
        assert_eq!(parse_si("64k").unwrap(), 64_000);
        assert_eq!(parse_si("1_000").unwrap(), 1000);
        assert!(parse_si("lots").is_err());
        assert!(parse_si("0").is_err());
    }
}

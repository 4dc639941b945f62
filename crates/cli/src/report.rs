//! `refinery stats` (the per-stage table and the accounting of a run) and
//! `refinery report` (the same runs as one self-contained HTML file).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use refinery_corpus::stats::RunStats;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  refinery stats out/\n  refinery stats out/ --json | jq .dropped"
)]
pub struct StatsArgs {
    /// A run's output directory.
    pub dir: PathBuf,
    /// Print the merged stats as JSON (input_docs, kept_docs, dropped, failed, stages, files, …).
    #[arg(long)]
    pub json: bool,
}

pub fn stats(args: StatsArgs) -> Result<ExitCode> {
    let (stats, note) = load(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        if let Some(n) = &note {
            println!("{n}\n");
        }
        print!("{}", table(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads `stats.json`, or merges the task stats of an unfinished run.
fn load(dir: &Path) -> Result<(RunStats, Option<String>)> {
    Ok(refinery_report::load::load_stats(dir)?)
}

const REPORT_EXAMPLES: &str = "\
Examples:
  refinery report out/ -o report.html               a corpus run: waterfall, drops, lengths, languages, …
  refinery report runs/gpt -o training.html         a training run: loss, lr, held-out loss, eval metrics
  refinery report out-a/ out-b/ -o compare.html     two runs side by side";

#[derive(Args)]
#[command(after_help = REPORT_EXAMPLES)]
pub struct ReportArgs {
    /// Run directories: a corpus run (stats.json) or a model run
    /// (metrics.jsonl); several are compared side by side.
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the HTML file.
    #[arg(long, short, default_value = "report.html")]
    pub output: PathBuf,
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let html = refinery_report::report(&args.dirs)?;
    refinery_corpus::writers::write_atomic(&args.output, html.as_bytes())
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} KB)",
        args.output.display(),
        html.len().div_ceil(1024)
    );
    Ok(ExitCode::SUCCESS)
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * a as f64 / b as f64)
    }
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The human-readable report.
pub fn table(s: &RunStats) -> String {
    let mut o = String::new();
    let dropped: u64 = s.dropped.values().sum();
    let failed: u64 = s.failed.values().sum();
    let _ = writeln!(
        o,
        "input   {} files, {}, {} records",
        s.input_files,
        human_bytes(s.input_bytes),
        s.input_docs
    );
    let _ = writeln!(
        o,
        "kept    {} ({})   dropped {} ({})   failed {} ({})   accounting {}",
        s.kept_docs,
        pct(s.kept_docs, s.input_docs),
        dropped,
        pct(dropped, s.input_docs),
        failed,
        pct(failed, s.input_docs),
        if s.invariant_ok { "ok" } else { "BROKEN" }
    );
    let _ = writeln!(
        o,
        "output  {} docs in {} shards ({} uncompressed){}",
        s.writer.docs,
        s.writer.shards,
        human_bytes(s.writer.bytes),
        if s.rejects.docs > 0 {
            format!(
                "; rejects {} docs in {} shards",
                s.rejects.docs, s.rejects.shards
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<16} {:<10} {:>10} {:>10} {:>8} {:>13} {:>13} {:>9}",
        "stage", "kind", "docs in", "docs out", "kept", "chars in", "chars out", "seconds"
    );
    for st in &s.stages {
        let _ = writeln!(
            o,
            "{:<16} {:<10} {:>10} {:>10} {:>8} {:>13} {:>13} {:>9.2}",
            st.name,
            st.kind,
            st.docs_in,
            st.docs_out,
            pct(st.docs_out, st.docs_in),
            st.chars_in,
            st.chars_out,
            st.seconds
        );
    }
    waterfall(&mut o, s);
    let mut reasons: Vec<(&String, &u64)> = s.dropped.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !reasons.is_empty() {
        let _ = writeln!(o, "\ndropped by reason");
        for (r, n) in reasons {
            let _ = writeln!(o, "  {r:<40} {n:>10}");
        }
    }
    if !s.failed.is_empty() {
        let _ = writeln!(o, "\nfailed by reason (details in failures/*.jsonl)");
        for (r, n) in &s.failed {
            let _ = writeln!(o, "  {r:<40} {n:>10}");
        }
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(
            o,
            "\nwarnings: recovered anomalies, not records (details in failures/*.jsonl)"
        );
        for (r, n) in &s.warnings {
            let _ = writeln!(o, "  {r:<40} {n:>10}");
        }
    }
    o
}

/// The removal waterfall (as in Figure 2 of the RefinedWeb paper): for each
/// step, the share of its input it removed and the share of the run's input
/// still left after it, in documents and in characters
/// (`refinery_report::waterfall` computes the rows, for this table and the
/// HTML report alike).
fn waterfall(o: &mut String, s: &RunStats) {
    if s.stages.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nremoval waterfall (removed: % of the step's input; left: % of the run's input)"
    );
    let _ = writeln!(
        o,
        "{:<16} {:>13} {:>10} {:>14} {:>11}",
        "step", "docs removed", "docs left", "chars removed", "chars left"
    );
    let opt = |x: Option<f64>, w: usize| {
        x.map_or(format!("{:>w$}", "-"), |v| {
            format!("{:>w$}", format!("{v:.1}%"))
        })
    };
    for r in refinery_report::waterfall::rows(s, &[]) {
        let _ = writeln!(
            o,
            "{:<16} {:>12.1}% {:>9.1}% {} {}",
            r.step,
            r.docs_removed_pct,
            r.docs_left_pct,
            opt(r.chars_removed_pct, 14),
            opt(r.chars_left_pct, 11),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_corpus::stage::StageStats;

    #[test]
    fn waterfall_shows_removed_and_left_shares() {
        let stage = |name: &str, di, do_, ci, co| StageStats {
            name: name.into(),
            kind: "filter".into(),
            docs_in: di,
            docs_out: do_,
            chars_in: ci,
            chars_out: co,
            ..Default::default()
        };
        let s = RunStats {
            input_docs: 200,
            stages: vec![
                stage("extract", 100, 80, 10_000, 4_000),
                stage("length_filter", 80, 40, 4_000, 3_000),
            ],
            ..Default::default()
        };
        let mut o = String::new();
        waterfall(&mut o, &s);
        let lines: Vec<&str> = o.lines().collect();
        assert!(
            lines[3].starts_with("read") && lines[3].contains("50.0%"),
            "{o}"
        );
        // extract removed 20% of its docs, 40% of the input remains; 60% of chars removed.
        assert!(
            lines[4].contains("20.0%") && lines[4].contains("40.0%") && lines[4].contains("60.0%"),
            "{o}"
        );
        // length_filter removed 50% of its docs; 20% of the input and 30% of the chars are left.
        assert!(
            lines[5].contains("50.0%") && lines[5].contains("20.0%") && lines[5].contains("30.0%"),
            "{o}"
        );
    }
}

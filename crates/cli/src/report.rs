//! `refinery stats`: the per-stage table and the accounting of a run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use refinery_corpus::executor::{is_complete, STATS_DIR};
use refinery_corpus::stats::{RunStats, TaskStats};

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
    if dir.join("stats.json").exists() {
        return Ok((RunStats::load(dir)?, None));
    }
    let stats_dir = dir.join(STATS_DIR);
    let mut tasks: Vec<TaskStats> = Vec::new();
    let entries = std::fs::read_dir(&stats_dir).with_context(|| {
        format!(
            "{} is not a refinery run directory (no stats.json, no stats/)",
            dir.display()
        )
    })?;
    for e in entries {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "json") {
            let bytes = std::fs::read(&p).with_context(|| p.display().to_string())?;
            tasks.push(serde_json::from_slice(&bytes).with_context(|| p.display().to_string())?);
        }
    }
    tasks.retain(|t| is_complete(dir, t.task));
    let total = tasks.first().map(|t| t.tasks).unwrap_or(0);
    let stats = RunStats::merge(&tasks)?;
    Ok((
        stats,
        Some(format!(
            "unfinished run: {} of {total} tasks complete (rerun the same command to resume)",
            tasks.len()
        )),
    ))
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
        "output  {} docs in {} shards ({} of JSONL){}",
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

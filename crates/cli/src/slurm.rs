//! `--executor slurm`: the same tasks, submitted as Slurm job arrays.
//!
//! Each step of a job becomes one `sbatch --array=0-(N-1)` script whose
//! array task `i` runs rank `i` of the same command (`--task
//! $SLURM_ARRAY_TASK_ID`). Steps are chained with `--dependency=afterok:…`,
//! so a step starts only when every rank of the previous one succeeded.
//! Ranks write the same completion markers as local runs: resubmitting after
//! a failure (or running locally) skips finished ranks.
//!
//! The same rank contract runs as a Kubernetes Indexed Job: set
//! `completions: N`, `parallelism: P`, `completionMode: Indexed`, and run
//! `refinery run … --task $JOB_COMPLETION_INDEX` in the pod (docs/cluster.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Slurm settings shared by every step of a submission.
#[derive(Args, Clone, Debug, Default)]
pub struct SlurmArgs {
    /// Slurm partition (`--partition`).
    #[arg(long)]
    pub slurm_partition: Option<String>,
    /// Time limit per array task (`--time`).
    #[arg(long, default_value = "24:00:00")]
    pub slurm_time: String,
    /// CPUs per array task (`--cpus-per-task`); also the task's --workers.
    #[arg(long, default_value_t = 1)]
    pub slurm_cpus: usize,
    /// Memory per array task (`--mem`).
    #[arg(long, default_value = "4G")]
    pub slurm_mem: String,
    /// At most this many array tasks at once (`--array=…%N`).
    #[arg(long)]
    pub slurm_max_parallel: Option<usize>,
    /// Write the sbatch scripts and print the commands, but submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One step: an array of `tasks` ranks running `command` (which refers to
/// `$SLURM_ARRAY_TASK_ID`).
pub struct Step {
    pub name: String,
    pub tasks: usize,
    pub command: String,
}

/// The sbatch script of one step.
pub fn script(step: &Step, opts: &SlurmArgs, log_dir: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/usr/bin/env bash");
    let _ = writeln!(s, "#SBATCH --job-name=refinery-{}", step.name);
    let array = match opts.slurm_max_parallel {
        Some(p) => format!("0-{}%{p}", step.tasks.saturating_sub(1)),
        None => format!("0-{}", step.tasks.saturating_sub(1)),
    };
    let _ = writeln!(s, "#SBATCH --array={array}");
    if let Some(p) = &opts.slurm_partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    let _ = writeln!(s, "#SBATCH --time={}", opts.slurm_time);
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", opts.slurm_cpus);
    let _ = writeln!(s, "#SBATCH --mem={}", opts.slurm_mem);
    let _ = writeln!(s, "#SBATCH --output={}/%x-%A_%a.out", log_dir.display());
    if let Ok(cwd) = std::env::current_dir() {
        let _ = writeln!(s, "#SBATCH --chdir={}", cwd.display());
    }
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(s, "{}", step.command);
    s
}

/// Writes one script per step into `dir` and submits them chained with
/// `afterok`. Returns the job ids (empty on a dry run).
pub fn submit(dir: &Path, steps: &[Step], opts: &SlurmArgs) -> Result<Vec<String>> {
    let log_dir = dir.join("logs");
    std::fs::create_dir_all(&log_dir).with_context(|| log_dir.display().to_string())?;
    let mut ids: Vec<String> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let path = dir.join(format!("{i:02}-{}.sbatch", step.name));
        std::fs::write(&path, script(step, opts, &log_dir))
            .with_context(|| path.display().to_string())?;
        let mut args = vec!["--parsable".to_string()];
        if let Some(prev) = ids.last() {
            args.push(format!("--dependency=afterok:{prev}"));
        }
        args.push(path.display().to_string());
        if opts.dry_run {
            println!("sbatch {}", args.join(" "));
            ids.push(format!("<{}>", step.name));
            continue;
        }
        let out = Command::new("sbatch")
            .args(&args)
            .output()
            .context("running sbatch (is Slurm installed and on PATH?)")?;
        if !out.status.success() {
            bail!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // `--parsable` prints `jobid[;cluster]`.
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if id.is_empty() {
            bail!("sbatch printed no job id for {}", path.display());
        }
        println!(
            "submitted {} as job {id} ({} array tasks)",
            step.name, step.tasks
        );
        ids.push(id);
    }
    if opts.dry_run {
        ids.clear();
    }
    Ok(ids)
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The absolute path of the running `refinery` binary, for the scripts.
pub fn self_exe() -> Result<PathBuf> {
    std::env::current_exe().context("locating the refinery binary")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_has_the_array_resources_and_command() {
        let opts = SlurmArgs {
            slurm_partition: Some("cpu".into()),
            slurm_time: "01:00:00".into(),
            slurm_cpus: 2,
            slurm_mem: "8G".into(),
            slurm_max_parallel: Some(10),
            dry_run: true,
        };
        let step = Step {
            name: "run".into(),
            tasks: 64,
            command: "refinery run p.toml --task $SLURM_ARRAY_TASK_ID".into(),
        };
        let s = script(&step, &opts, Path::new("/out/slurm/logs"));
        for line in [
            "#SBATCH --array=0-63%10",
            "#SBATCH --partition=cpu",
            "#SBATCH --time=01:00:00",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=8G",
            "#SBATCH --output=/out/slurm/logs/%x-%A_%a.out",
            "refinery run p.toml --task $SLURM_ARRAY_TASK_ID",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
    }

    #[test]
    fn dry_run_writes_chained_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let steps = [
            Step {
                name: "a".into(),
                tasks: 2,
                command: "true".into(),
            },
            Step {
                name: "b".into(),
                tasks: 1,
                command: "true".into(),
            },
        ];
        let opts = SlurmArgs {
            dry_run: true,
            ..Default::default()
        };
        assert!(submit(dir.path(), &steps, &opts).unwrap().is_empty());
        assert!(dir.path().join("00-a.sbatch").exists() && dir.path().join("01-b.sbatch").exists());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b.toml"), "/a/b.toml");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

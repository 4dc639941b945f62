//! `refinery dedup minhash|explain`: corpus-wide near-duplicate removal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::WriterOptions;
use refinery_dedup::minhash::{self, MinhashConfig, MinhashJob, MINHASH_DIR, PARAMS_FILE};

use crate::report;
use crate::run::ExecutorArg;
use crate::slurm::{self_exe, shell_quote, submit, SlurmArgs, Step};

const DEDUP_EXAMPLES: &str = "\
Examples:
  # FineWeb's MinHash (5-grams, 14 bands x 8 rows) over a refined corpus:
  refinery dedup minhash --input refined/data/ --output deduped/ --tasks 16 --workers 2 --rejects

  # RefinedWeb's 9,000 hashes as 450 bands x 20 rows, and the S-curve:
  refinery dedup minhash --input refined/data/ --output deduped/ --preset refinedweb --threshold-report

  # Why was a document removed?
  refinery dedup explain deduped/ '<urn:uuid:...>'";

#[derive(Args)]
#[command(after_help = DEDUP_EXAMPLES)]
pub struct DedupArgs {
    #[command(subcommand)]
    pub command: DedupCommand,
}

#[derive(Subcommand)]
pub enum DedupCommand {
    /// MinHash-LSH near-duplicate removal: signatures → buckets → clusters → filter.
    Minhash(MinhashArgs),
    /// Explain why a document was removed (its cluster and kept representative).
    Explain(ExplainArgs),
}

#[derive(Args)]
pub struct MinhashArgs {
    /// Input files or directories (refinery output shards or any reader input).
    #[arg(long, short, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output directory: data/, rejects/, stats.json and minhash/ (intermediate steps).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tasks of the signatures and filter steps; task i reads files i, i+N, …
    #[arg(long, default_value_t = 1)]
    pub tasks: usize,
    /// Worker threads. Never changes the output.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// fineweb (14x8, t≈0.72), refinedweb (450x20, t≈0.74) or refinedweb-literal (20x450, t≈0.99).
    #[arg(long, default_value = "fineweb")]
    pub preset: String,
    /// Words per shingle (overrides the preset).
    #[arg(long)]
    pub ngram: Option<usize>,
    /// LSH bands (overrides the preset).
    #[arg(long)]
    pub bands: Option<usize>,
    /// Rows (hashes) per band (overrides the preset).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Seed of the hash permutations.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the LSH S-curve (candidate probability by Jaccard similarity) first.
    #[arg(long)]
    pub threshold_report: bool,
    /// Write removed documents to OUT/rejects/ with their cluster and kept id.
    #[arg(long)]
    pub rejects: bool,
    /// Signature records a task buffers before spilling a sorted run (16 bytes each).
    #[arg(long, default_value_t = 4 << 20)]
    pub sig_buffer_records: usize,
    /// JSONL field holding the text.
    #[arg(long)]
    pub text_field: Option<String>,
    /// JSONL field holding the id.
    #[arg(long)]
    pub id_field: Option<String>,
    /// Delete an earlier dedup run in the output directory first.
    #[arg(long)]
    pub overwrite: bool,
    /// After the run, explain this document id.
    #[arg(long)]
    pub explain: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run only this step (signatures, buckets, clusters, filter, or merge
    /// for the final stats), e.g. from a cluster array job.
    #[arg(long, value_parser = ["signatures", "buckets", "clusters", "filter", "merge"])]
    pub step: Option<String>,
    /// With --step: run only this rank of the step.
    #[arg(long, requires = "step")]
    pub task: Option<usize>,
    /// Where the steps run: threads here, or chained Slurm job arrays.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "step")]
    pub executor: crate::run::ExecutorArg,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// A `refinery dedup minhash` output directory.
    pub dir: PathBuf,
    /// The document id.
    pub id: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn dedup(args: DedupArgs) -> Result<ExitCode> {
    match args.command {
        DedupCommand::Minhash(a) => run_minhash(a),
        DedupCommand::Explain(a) => {
            let e = minhash::explain(&a.dir, &a.id)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!("{e}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn config(a: &MinhashArgs) -> Result<MinhashConfig> {
    let mut c = MinhashConfig::preset(&a.preset).with_context(|| {
        format!(
            "unknown MinHash preset `{}`; available: {}",
            a.preset,
            MinhashConfig::PRESETS.join(", ")
        )
    })?;
    if let Some(n) = a.ngram {
        c.ngram = n;
    }
    if let Some(b) = a.bands {
        c.bands = b;
    }
    if let Some(r) = a.rows {
        c.rows = r;
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    c.validate()?;
    Ok(c)
}

fn threshold_report(c: &MinhashConfig) -> String {
    let mut s = format!(
        "MinHash-LSH: {}-grams, {} bands x {} rows = {} hashes; threshold (1/b)^(1/r) = {:.3}\n  J     P(candidate)\n",
        c.ngram,
        c.bands,
        c.rows,
        c.bands * c.rows,
        c.threshold()
    );
    for k in 10..=20 {
        let j = k as f64 * 0.05;
        s.push_str(&format!("  {j:.2}  {:.4}\n", c.probability(j)));
    }
    s
}

fn run_minhash(a: MinhashArgs) -> Result<ExitCode> {
    let config = config(&a)?;
    if a.threshold_report {
        eprint!("{}", threshold_report(&config));
    }
    if a.tasks == 0 || a.workers == 0 {
        bail!("--tasks and --workers must be at least 1");
    }
    if a.overwrite && a.output.exists() {
        let mh = a.output.join(MINHASH_DIR);
        if !mh.join(PARAMS_FILE).exists() {
            bail!(
                "refusing to --overwrite {}: it holds no MinHash run ({}/{} missing)",
                a.output.display(),
                MINHASH_DIR,
                PARAMS_FILE
            );
        }
        std::fs::remove_dir_all(&a.output)
            .with_context(|| format!("removing {}", a.output.display()))?;
    }
    let mut reader = ReaderOptions::default();
    if let Some(f) = &a.text_field {
        reader.text_field = f.clone();
    }
    if let Some(f) = &a.id_field {
        reader.id_field = f.clone();
    }
    let job = MinhashJob {
        inputs: discover(&a.input)?,
        reader,
        writer: WriterOptions::default(),
        output: a.output.clone(),
        config,
        tasks: a.tasks,
        workers: a.workers,
        rejects: a.rejects,
        sig_buffer_records: a.sig_buffer_records,
    };
    if a.executor == ExecutorArg::Slurm {
        return submit_minhash(&a, &job);
    }
    let cancel = AtomicBool::new(false);
    if let Some(step) = &a.step {
        if step == "merge" {
            let r = minhash::finish(&job, Vec::new())?;
            print!("{}", report::table(&r.stats));
            return Ok(ExitCode::SUCCESS);
        }
        let idx = minhash::STEPS
            .iter()
            .position(|s| s == step)
            .context("unknown step")?;
        let r = minhash::run_step(&job, idx, a.task, &cancel)
            .with_context(|| format!("MinHash step {step} into {}", a.output.display()))?;
        println!(
            "{}: {} task(s) run, {} skipped",
            r.name, r.tasks_run, r.tasks_skipped
        );
        return Ok(ExitCode::SUCCESS);
    }
    let r = minhash::run(&job, &cancel)
        .with_context(|| format!("MinHash dedup into {}", a.output.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for s in &r.steps {
            println!(
                "{:<10} {:>5} task(s) run, {:>5} skipped  {:>8.2}s",
                s.name, s.tasks_run, s.tasks_skipped, s.seconds
            );
        }
        let c = &r.clusters;
        println!(
            "\n{} docs ({} too short to sign), {} in duplicate pairs, {} clusters, {} removed ({:.2}%)",
            c.docs,
            c.too_short,
            c.docs_in_pairs,
            c.clusters,
            c.removed,
            100.0 * c.removed as f64 / c.docs.max(1) as f64
        );
        println!(
            "union-find: {:.1} MiB for {} docs in pairs\n",
            c.union_find_bytes as f64 / (1 << 20) as f64,
            c.docs_in_pairs
        );
        print!("{}", report::table(&r.stats));
        println!("\noutput in {}", a.output.display());
    }
    if let Some(id) = &a.explain {
        println!("{}", minhash::explain(&a.output, id)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Submits the four steps and the final merge as chained Slurm job arrays.
/// Each array task runs one rank of one step (`--step S --task i`).
fn submit_minhash(a: &MinhashArgs, job: &MinhashJob) -> Result<ExitCode> {
    let exe = shell_quote(&self_exe()?.display().to_string());
    let mut base = format!("{exe} dedup minhash --input");
    for p in &a.input {
        base.push(' ');
        base.push_str(&shell_quote(&p.display().to_string()));
    }
    base.push_str(&format!(
        " --output {} --tasks {} --workers {} --ngram {} --bands {} --rows {} --seed {} --sig-buffer-records {}",
        shell_quote(&a.output.display().to_string()),
        job.tasks,
        a.slurm.slurm_cpus.max(1),
        job.config.ngram,
        job.config.bands,
        job.config.rows,
        job.config.seed,
        job.sig_buffer_records
    ));
    if a.rejects {
        base.push_str(" --rejects");
    }
    if let Some(f) = &a.text_field {
        base.push_str(&format!(" --text-field {}", shell_quote(f)));
    }
    if let Some(f) = &a.id_field {
        base.push_str(&format!(" --id-field {}", shell_quote(f)));
    }
    let mut steps: Vec<Step> = minhash::STEPS
        .iter()
        .enumerate()
        .map(|(i, name)| Step {
            name: format!("minhash-{name}"),
            tasks: minhash::step_tasks(job, i),
            command: format!("{base} --step {name} --task \"$SLURM_ARRAY_TASK_ID\""),
        })
        .collect();
    steps.push(Step {
        name: "minhash-merge".into(),
        tasks: 1,
        command: format!("{base} --step merge"),
    });
    std::fs::create_dir_all(&a.output)?;
    let dir = a.output.join("slurm");
    submit(&dir, &steps, &a.slurm)?;
    println!("scripts and logs in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

//! `refinery dedup minhash|explain`: corpus-wide near-duplicate removal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::WriterOptions;
use refinery_dedup::corpus::{CorpusDedupJob, DedupReport, Keep, Method, Unit};
use refinery_dedup::job::{self, JobReport, MultiStepJob};
use refinery_dedup::minhash::{self, MinhashConfig, MinhashJob, MinhashReport};
use refinery_dedup::substring::{
    Keep as SubKeep, SubstringConfig, SubstringJob, SubstringReport, Unit as SubUnit,
};

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
    /// Corpus-wide exact dedup of whole documents by normalized-text hash: hash → decide → filter.
    Exact(ExactArgs),
    /// Corpus-wide URL dedup by normalized metadata.url, keeping the first or the newest.
    Urls(UrlsArgs),
    /// Corpus-wide line (or paragraph) dedup: drop lines seen more than k times in the corpus.
    Lines(LinesArgs),
    /// Exact-substring dedup (Lee et al. 2021): remove repeated spans of >= --min-len units.
    Substring(SubstringArgs),
}

#[derive(Args)]
pub struct MinhashArgs {
    #[command(flatten)]
    pub io: JobIo,
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
    /// Memory budget of the clusters step in MiB: above it, connected
    /// components run on sorted files on disk (same result).
    #[arg(long, default_value_t = 1024)]
    pub max_memory_mb: u64,
    /// Dedup within groups of this metadata field, e.g. `--group-by dump` dedups every
    /// Common Crawl snapshot separately in one run (default: global).
    #[arg(long, value_name = "FIELD")]
    pub group_by: Option<String>,
    /// After the run, explain this document id.
    #[arg(long)]
    pub explain: Option<String>,
    #[command(flatten)]
    pub run: StepArgs,
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
        DedupCommand::Exact(a) => run_exact(a),
        DedupCommand::Urls(a) => run_urls(a),
        DedupCommand::Lines(a) => run_lines(a),
        DedupCommand::Substring(a) => run_substring(a),
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
    let make = || -> Result<MinhashJob> {
        Ok(MinhashJob {
            inputs: discover(&a.io.input)?,
            reader: reader_options(None, None, &a.io),
            writer: WriterOptions::default(),
            output: a.io.output.clone(),
            config: config.clone(),
            tasks: a.io.tasks,
            workers: a.io.workers,
            rejects: a.rejects,
            sig_buffer_records: a.sig_buffer_records,
            max_memory_bytes: a.max_memory_mb.saturating_mul(1 << 20),
            group_by: a.group_by.clone(),
        })
    };
    // What each Slurm rank runs.
    let ranks = |job: &MinhashJob| -> Result<String> {
        let mut base = rank_command("minhash", &a.io, &a.run)?;
        base.push_str(&format!(
            " --ngram {} --bands {} --rows {} --seed {} --sig-buffer-records {} --max-memory-mb {}",
            job.config.ngram,
            job.config.bands,
            job.config.rows,
            job.config.seed,
            job.sig_buffer_records,
            a.max_memory_mb
        ));
        if a.rejects {
            base.push_str(" --rejects");
        }
        if let Some(field) = &a.group_by {
            base.push_str(&format!(" --group-by {}", shell_quote(field)));
        }
        Ok(base)
    };
    let command = JobCommand {
        kind: "minhash",
        output: &a.io.output,
        args: &a.run,
        legacy_finish: Some("merge"),
    };
    let summary = |r: &MinhashReport| {
        let c = &r.clusters;
        let mut s = format!(
            "\n{} docs ({} too short to sign), {} in duplicate pairs, {} clusters, {} removed ({:.2}%)\n",
            c.docs,
            c.too_short,
            c.docs_in_pairs,
            c.clusters,
            c.removed,
            100.0 * c.removed as f64 / c.docs.max(1) as f64
        );
        if c.method == "external" {
            s.push_str(&format!(
                "clusters: external, {} rounds, {:.1} MiB of buffers for {} docs in pairs\n\n",
                c.rounds,
                c.external_buffer_bytes as f64 / (1 << 20) as f64,
                c.docs_in_pairs
            ));
        } else {
            s.push_str(&format!(
                "union-find: {:.1} MiB for {} docs in pairs\n\n",
                c.union_find_bytes as f64 / (1 << 20) as f64,
                c.docs_in_pairs
            ));
        }
        s
    };
    let code = run_job(&command, make, ranks, summary)?;
    if let (Some(id), None, ExecutorArg::Local) = (&a.explain, &a.run.step, a.run.executor) {
        println!("{}", minhash::explain(&a.io.output, id)?);
    }
    Ok(code)
}

/// The input and output flags every multi-step dedup command shares.
#[derive(Args)]
pub struct JobIo {
    /// Input files or directories (refinery output shards or any reader input).
    #[arg(long, short, num_args = 1.., required = true)]
    pub input: Vec<PathBuf>,
    /// Output directory: data/, rejects/, stats.json and the intermediate
    /// steps (minhash/, exact/, urls/, lines/ or substring/).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tasks of the first and the last step (signatures, hash or sequences;
    /// filter); task i reads files i, i+N, …
    #[arg(long, default_value_t = 1)]
    pub tasks: usize,
    /// Worker threads. Never changes the output.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// JSONL field holding the text.
    #[arg(long)]
    pub text_field: Option<String>,
    /// JSONL field holding the id.
    #[arg(long)]
    pub id_field: Option<String>,
}

/// The flags every multi-step dedup command shares: overwrite, report,
/// one step or rank, and where the steps run.
#[derive(Args)]
pub struct StepArgs {
    /// Delete an earlier run of this command in the output directory first.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run only this step, e.g. from a cluster array job: one of the
    /// command's steps (minhash: signatures, buckets, clusters, filter;
    /// exact/urls/lines: hash, decide, filter; substring: sequences,
    /// suffixes, merge, filter), or `finish`: check that every step is
    /// complete and write stats.json. minhash and exact/urls/lines also
    /// accept `merge`, the old name of their `finish`.
    #[arg(long, value_name = "STEP")]
    pub step: Option<String>,
    /// With --step: run only this rank of the step (0..ranks; rank i runs
    /// the step's tasks i, i+ranks, …).
    #[arg(long, requires = "step")]
    pub task: Option<usize>,
    /// Where the steps run: threads here, or chained Slurm job arrays.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "step")]
    pub executor: ExecutorArg,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// The name of the final step of every multi-step dedup command.
pub const FINISH: &str = "finish";

/// One multi-step dedup command, as the CLI wires it.
struct JobCommand<'a> {
    /// `refinery dedup KIND`.
    kind: &'static str,
    output: &'a Path,
    args: &'a StepArgs,
    /// An old spelling of `--step finish` that scripts may still use; the
    /// final Slurm script keeps that name too (`NN-KIND-merge.sbatch`).
    legacy_finish: Option<&'static str>,
}

/// What `--step NAME` asks for.
#[derive(Debug, PartialEq, Eq)]
enum StepChoice {
    Step(usize),
    Finish,
}

/// Resolves `--step NAME` against the job's steps; `finish` (or the
/// command's old spelling of it) is the final step.
fn parse_step(steps: &[&str], legacy_finish: Option<&str>, name: &str) -> Result<StepChoice> {
    if let Some(i) = steps.iter().position(|s| *s == name) {
        return Ok(StepChoice::Step(i));
    }
    if name == FINISH || legacy_finish == Some(name) {
        return Ok(StepChoice::Finish);
    }
    bail!(
        "unknown --step `{name}`; this command's steps: {}, {FINISH}",
        steps.join(", ")
    )
}

/// The one wiring of a multi-step dedup command: locks the output, builds
/// the job (`make`), applies `--overwrite` (refused unless the output holds
/// a run of this job), then submits the steps to Slurm (`ranks` gives the
/// command line every rank runs), runs one step or rank (`--step/--task`),
/// or runs every step and prints the report (`summary`, then the stats).
fn run_job<J>(
    c: &JobCommand,
    make: impl FnOnce() -> Result<J>,
    ranks: impl FnOnce(&J) -> Result<String>,
    summary: impl FnOnce(&J::Report) -> String,
) -> Result<ExitCode>
where
    J: MultiStepJob,
    J::Error: std::error::Error + Send + Sync + 'static,
    J::Report: serde::Serialize,
{
    let a = c.args;
    let lock = refinery_corpus::lock::lock_output(c.output, a.task)?;
    let job = make()?;
    job.validate()?;
    if a.overwrite && !lock.is_empty()? {
        job::check_overwrite(&job, c.output)?;
        lock.clear()
            .with_context(|| format!("--overwrite {}", c.output.display()))?;
    }
    if a.executor == ExecutorArg::Slurm {
        return submit_chain(c, &job, &ranks(&job)?);
    }
    let cancel = AtomicBool::new(false);
    let what = format!("dedup {}", c.kind);
    let step = match &a.step {
        Some(name) => Some(parse_step(job.steps(), c.legacy_finish, name)?),
        None => None,
    };
    match step {
        Some(StepChoice::Finish) => {
            let r = job::finish(&job, Vec::new())
                .with_context(|| format!("{what} finish in {}", c.output.display()))?;
            print!("{}", report::table(r.stats()));
        }
        Some(StepChoice::Step(i)) => {
            let r = job::run_step(&job, i, a.task, &cancel).with_context(|| {
                format!("{what} step {} into {}", job.steps()[i], c.output.display())
            })?;
            println!(
                "{}: {} task(s) run, {} skipped",
                r.name, r.tasks_run, r.tasks_skipped
            );
        }
        None => {
            let r = job::run(&job, &cancel)
                .with_context(|| format!("{what} into {}", c.output.display()))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
                return Ok(ExitCode::SUCCESS);
            }
            for s in r.steps() {
                println!(
                    "{:<10} {:>5} task(s) run, {:>5} skipped  {:>8.2}s",
                    s.name, s.tasks_run, s.tasks_skipped, s.seconds
                );
            }
            print!("{}", summary(&r));
            print!("{}", report::table(r.stats()));
            println!("\noutput in {}", c.output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reader options from the input flags the dedup commands share.
fn reader_options(
    format: Option<crate::run::FormatArg>,
    text_unit: Option<crate::run::TextUnitArg>,
    io: &JobIo,
) -> ReaderOptions {
    let mut reader = ReaderOptions::default();
    if let Some(f) = format {
        reader.format = f.into();
    }
    if let Some(u) = text_unit {
        reader.text_unit = u.into();
    }
    if let Some(f) = &io.text_field {
        reader.text_field = f.clone();
    }
    if let Some(f) = &io.id_field {
        reader.id_field = f.clone();
    }
    reader
}

/// `EXE dedup KIND --input IN… --output OUT --tasks N --workers CPUS
/// [--text-field F] [--id-field F]`: the start of every rank's command line.
fn rank_command(kind: &str, io: &JobIo, args: &StepArgs) -> Result<String> {
    let exe = shell_quote(&self_exe()?.display().to_string());
    let mut base = format!("{exe} dedup {kind} --input");
    for p in &io.input {
        base.push(' ');
        base.push_str(&shell_quote(&p.display().to_string()));
    }
    base.push_str(&format!(
        " --output {} --tasks {} --workers {}",
        shell_quote(&io.output.display().to_string()),
        io.tasks,
        args.slurm.slurm_cpus.max(1),
    ));
    for (flag, value) in [
        (" --text-field", &io.text_field),
        (" --id-field", &io.id_field),
    ] {
        if let Some(v) = value {
            base.push_str(&format!("{flag} {}", shell_quote(v)));
        }
    }
    Ok(base)
}

/// Submits one Slurm array per step (array task i runs `BASE --step S --task i`), then
/// `--step finish` as a single task, chained with `afterok`; scripts and logs go to
/// OUTPUT/slurm.
fn submit_chain<J: MultiStepJob>(c: &JobCommand, job: &J, base: &str) -> Result<ExitCode> {
    let kind = c.kind;
    let mut steps: Vec<Step> = job
        .steps()
        .iter()
        .enumerate()
        .map(|(i, name)| Step {
            name: format!("{kind}-{name}"),
            tasks: job.ranks(i),
            command: format!("{base} --step {name} --task \"$SLURM_ARRAY_TASK_ID\""),
        })
        .collect();
    steps.push(Step {
        name: format!("{kind}-{}", c.legacy_finish.unwrap_or(FINISH)),
        tasks: 1,
        command: format!("{base} --step {FINISH}"),
    });
    std::fs::create_dir_all(c.output)?;
    let dir = c.output.join("slurm");
    submit(&dir, &steps, &c.args.slurm)?;
    println!("scripts and logs in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

// ---- `refinery dedup exact|urls|lines`: corpus-wide exact dedup ----------

/// Arguments shared by `dedup exact`, `dedup urls` and `dedup lines`.
#[derive(Args)]
pub struct CorpusDedupArgs {
    #[command(flatten)]
    pub io: JobIo,
    /// Hash partitions = tasks of the decide step; memory of a decide task shrinks with it.
    #[arg(long, default_value_t = 16)]
    pub partitions: usize,
    /// MiB a hash task buffers before spilling sorted runs. Never changes the output.
    #[arg(long, default_value_t = 256)]
    pub buffer_mb: usize,
    /// Hash raw bytes instead of the normalized text (lowercase, no punctuation,
    /// collapsed whitespace). exact and lines only.
    #[arg(long)]
    pub raw: bool,
    /// Write removed documents to OUT/rejects/ with metadata.filter_reason.
    #[arg(long)]
    pub rejects: bool,
    /// Input format (default: detected from the content).
    #[arg(long, value_enum)]
    pub format: Option<crate::run::FormatArg>,
    /// Plain text: one document per file, line or paragraph.
    #[arg(long, value_enum)]
    pub text_unit: Option<crate::run::TextUnitArg>,
    #[command(flatten)]
    pub run: StepArgs,
}

#[derive(Args)]
#[command(after_help = "\
Example:
  refinery dedup exact --input refined/data/ --output exact/ --tasks 16 --partitions 16 --workers 2 --rejects")]
pub struct ExactArgs {
    #[command(flatten)]
    pub common: CorpusDedupArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeepArg {
    First,
    Newest,
}

#[derive(Args)]
#[command(after_help = "\
Example:
  refinery dedup urls --input crawl/ --output urls/ --keep newest --rejects")]
pub struct UrlsArgs {
    #[command(flatten)]
    pub common: CorpusDedupArgs,
    /// Which copy of a URL survives: the first in input order, or the newest
    /// by metadata.date (ties and undated documents: input order).
    #[arg(long, value_enum, default_value = "first")]
    pub keep: KeepArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitArg {
    Line,
    Paragraph,
}

#[derive(Args)]
#[command(after_help = "\
Example (cs336 convention: a line seen twice anywhere is removed everywhere):
  refinery dedup lines --input docs/ --output lines/ --format text --max-occurrences 1 --rejects")]
pub struct LinesArgs {
    #[command(flatten)]
    pub common: CorpusDedupArgs,
    /// What is deduplicated: lines, or paragraphs (runs of non-blank lines).
    #[arg(long, value_enum, default_value = "line")]
    pub unit: UnitArg,
    /// Keep a line only if it occurs at most this many times in the corpus.
    #[arg(long, default_value_t = 1)]
    pub max_occurrences: u64,
}

fn run_exact(a: ExactArgs) -> Result<ExitCode> {
    run_corpus_dedup(&a.common, Method::Exact, "")
}

fn run_urls(a: UrlsArgs) -> Result<ExitCode> {
    let keep = match a.keep {
        KeepArg::First => Keep::First,
        KeepArg::Newest => Keep::Newest,
    };
    let extra = format!(
        " --keep {}",
        if keep == Keep::First {
            "first"
        } else {
            "newest"
        }
    );
    run_corpus_dedup(&a.common, Method::Urls { keep }, &extra)
}

fn run_lines(a: LinesArgs) -> Result<ExitCode> {
    let unit = match a.unit {
        UnitArg::Line => Unit::Line,
        UnitArg::Paragraph => Unit::Paragraph,
    };
    let extra = format!(
        " --unit {} --max-occurrences {}",
        if unit == Unit::Line {
            "line"
        } else {
            "paragraph"
        },
        a.max_occurrences
    );
    run_corpus_dedup(
        &a.common,
        Method::Lines {
            unit,
            max_occurrences: a.max_occurrences,
        },
        &extra,
    )
}

fn run_corpus_dedup(a: &CorpusDedupArgs, method: Method, extra: &str) -> Result<ExitCode> {
    let kind = method.dir_name();
    let reader = reader_options(a.format, a.text_unit, &a.io);
    let make = || -> Result<CorpusDedupJob> {
        Ok(CorpusDedupJob {
            inputs: discover(&a.io.input)?,
            reader: reader.clone(),
            writer: WriterOptions::default(),
            output: a.io.output.clone(),
            method: method.clone(),
            normalize: !a.raw,
            tasks: a.io.tasks,
            partitions: a.partitions,
            workers: a.io.workers,
            rejects: a.rejects,
            buffer_bytes: a.buffer_mb.saturating_mul(1 << 20),
        })
    };
    // What each Slurm rank runs.
    let ranks = |job: &CorpusDedupJob| -> Result<String> {
        let mut base = rank_command(kind, &a.io, &a.run)?;
        base.push_str(&format!(
            " --partitions {} --buffer-mb {}{extra}",
            job.partitions, a.buffer_mb,
        ));
        for (flag, on) in [(" --raw", a.raw), (" --rejects", a.rejects)] {
            if on {
                base.push_str(flag);
            }
        }
        base.push_str(&format!(
            " --format {} --text-unit {}",
            serde_json::to_value(reader.format)?
                .as_str()
                .unwrap_or("auto"),
            serde_json::to_value(reader.text_unit)?
                .as_str()
                .unwrap_or("file")
        ));
        Ok(base)
    };
    let command = JobCommand {
        kind,
        output: &a.io.output,
        args: &a.run,
        legacy_finish: Some("merge"),
    };
    let summary = |r: &DedupReport| {
        let s = &r.summary;
        match &r.method {
            Method::Lines { unit, .. } => format!(
                "\n{} docs, {} {}s ({} distinct), {} distinct seen too often; {} {}s removed, {} docs edited, {} emptied and dropped\n\n",
                s.docs,
                s.segments,
                if *unit == Unit::Line { "line" } else { "paragraph" },
                s.distinct,
                s.duplicated,
                s.segments_removed,
                if *unit == Unit::Line { "line" } else { "paragraph" },
                s.docs_modified,
                s.docs_emptied
            ),
            _ => format!(
                "\n{} docs ({} keyed, {} without URL), {} distinct, {} with copies, {} removed ({:.2}%)\n\n",
                s.docs,
                s.keyed,
                s.no_url,
                s.distinct,
                s.duplicated,
                s.removed_docs,
                100.0 * s.removed_docs as f64 / s.docs.max(1) as f64
            ),
        }
    };
    run_job(&command, make, ranks, summary)
}

#[derive(Args)]
pub struct SubstringArgs {
    #[command(flatten)]
    pub io: JobIo,
    /// Shortest repeated span removed, in units (RefinedWeb: 50 tokens).
    #[arg(long, default_value_t = 50)]
    pub min_len: usize,
    /// bytes (UTF-8 bytes; removals never cut a char) or tokens (whitespace-separated).
    #[arg(long, value_parser = ["bytes", "tokens"], default_value = "bytes")]
    pub unit: String,
    /// first: keep the first occurrence (input order); none: remove every occurrence (Lee et al.'s ranges).
    #[arg(long, value_parser = ["first", "none"], default_value = "first")]
    pub keep: String,
    /// Drop a document that lost text and has fewer bytes than this left.
    #[arg(long, default_value_t = 0)]
    pub min_doc_len: usize,
    /// Units per suffix-array shard (about 5 bytes of memory each for bytes,
    /// 24 for tokens). Never changes the output.
    #[arg(long, default_value_t = 1 << 26)]
    pub shard_units: u64,
    /// Memory budget of the merge step in MiB: above it, removed positions
    /// spill to sorted runs on disk. Never changes the output.
    #[arg(long, default_value_t = 1024)]
    pub merge_memory_mb: u64,
    /// Write documents dropped as empty to OUT/rejects/.
    #[arg(long)]
    pub rejects: bool,
    #[command(flatten)]
    pub run: StepArgs,
}

fn run_substring(a: SubstringArgs) -> Result<ExitCode> {
    let config = SubstringConfig {
        min_len: a.min_len,
        unit: if a.unit == "tokens" {
            SubUnit::Tokens
        } else {
            SubUnit::Bytes
        },
        keep: if a.keep == "none" {
            SubKeep::None
        } else {
            SubKeep::First
        },
        min_doc_len: a.min_doc_len,
    };
    let unit = config.unit;
    let make = || -> Result<SubstringJob> {
        Ok(SubstringJob {
            inputs: discover(&a.io.input)?,
            reader: reader_options(None, None, &a.io),
            writer: WriterOptions::default(),
            output: a.io.output.clone(),
            config,
            tasks: a.io.tasks,
            workers: a.io.workers,
            rejects: a.rejects,
            shard_units: a.shard_units,
            merge_memory_bytes: a.merge_memory_mb.saturating_mul(1 << 20),
        })
    };
    // What each Slurm rank runs.
    let ranks = |job: &SubstringJob| -> Result<String> {
        let mut base = rank_command("substring", &a.io, &a.run)?;
        base.push_str(&format!(
            " --min-len {} --unit {} --keep {} --min-doc-len {} --shard-units {} --merge-memory-mb {}",
            job.config.min_len,
            shell_quote(&a.unit),
            shell_quote(&a.keep),
            job.config.min_doc_len,
            job.shard_units,
            a.merge_memory_mb
        ));
        if a.rejects {
            base.push_str(" --rejects");
        }
        Ok(base)
    };
    let command = JobCommand {
        kind: "substring",
        output: &a.io.output,
        args: &a.run,
        legacy_finish: None,
    };
    let summary = |r: &SubstringReport| {
        let m = &r.summary;
        format!(
            "\n{} docs, {} {}, {} shard(s); {} repeated windows ({} occurrences); {} {} removed ({:.2}%) from {} docs\n",
            m.docs,
            m.units,
            unit.name(),
            m.shards,
            m.repeated_windows,
            m.repeated_occurrences,
            m.units_removed,
            unit.name(),
            100.0 * m.units_removed as f64 / m.units.max(1) as f64,
            m.docs_touched
        )
    };
    run_job(&command, make, ranks, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_mean_one_thing() {
        let mh = &minhash::STEPS;
        assert_eq!(
            parse_step(mh, Some("merge"), "buckets").unwrap(),
            StepChoice::Step(1)
        );
        assert_eq!(
            parse_step(mh, Some("merge"), "finish").unwrap(),
            StepChoice::Finish
        );
        assert_eq!(
            parse_step(mh, Some("merge"), "merge").unwrap(),
            StepChoice::Finish
        );
        // Substring dedup has a step called merge: there it is that step.
        let sub = &refinery_dedup::substring::STEPS;
        assert_eq!(parse_step(sub, None, "merge").unwrap(), StepChoice::Step(2));
        assert_eq!(parse_step(sub, None, "finish").unwrap(), StepChoice::Finish);
        let err = parse_step(sub, None, "decide").unwrap_err().to_string();
        assert!(
            err.contains("sequences, suffixes, merge, filter, finish"),
            "{err}"
        );
    }
}

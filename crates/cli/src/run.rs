//! `refinery run` and `refinery presets`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use refinery_corpus::executor::{self, Progress, RUN_FILE};
use refinery_corpus::lock::{lock_output, OutputLock};
use refinery_corpus::readers::{Format, TextUnit};
use refinery_corpus::stats::RunStats;
use refinery_corpus::writers::{Compression, OutputFormat};
use refinery_corpus::CorpusError;
use refinery_pipeline::{presets, Pipeline, PipelineConfig, StageConfig};

use crate::slurm::{self_exe, shell_quote, submit, SlurmArgs, Step};
use crate::{progress, report};

const RUN_EXAMPLES: &str = "\
Examples:
  # The default preset over a directory of Common Crawl WARC files, 16 tasks on 2 threads:
  refinery run --preset default --input crawl/CC-MAIN-2024-22/ --output out/ --tasks 16 --workers 2 --rejects

  # A pipeline file (see presets/*.toml for the format):
  refinery run my-pipeline.toml

  # JSONL whose text is in `content` and id in `doc_id`:
  refinery run --preset default --input data.jsonl.gz --text-field content --id-field doc_id --output out/

  # FineWeb Parquet files in, Parquet shards out, only two columns kept as metadata:
  refinery run --preset default --input fineweb/ --metadata-fields url,dump --output-format parquet --output out/

  # After a crash or Ctrl-C, rerun the same command: finished tasks are skipped.
  # On a cluster, run one rank per array job and merge when all are done:
  refinery run --preset default --input crawl/ --output out/ --tasks 100 --task $SLURM_ARRAY_TASK_ID";

#[derive(Args)]
#[command(after_help = RUN_EXAMPLES)]
pub struct RunArgs {
    /// Pipeline TOML file (or use --preset).
    pub pipeline: Option<PathBuf>,
    /// A shipped preset (see `refinery presets`).
    #[arg(long, conflicts_with = "pipeline")]
    pub preset: Option<String>,
    /// Input files or directories (overrides input.paths).
    #[arg(long, short, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Output directory (overrides output.path).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Number of tasks; task i reads files i, i+N, … (overrides executor.tasks).
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Worker threads (overrides executor.workers). Never changes the output.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Write dropped documents with their filter_reason to OUT/rejects/.
    #[arg(long)]
    pub rejects: bool,
    /// Run only this task (rank), e.g. from a Slurm array job.
    #[arg(long)]
    pub task: Option<usize>,
    /// Input format (default: detected from the content).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// JSONL field (Parquet column) holding the text.
    #[arg(long)]
    pub text_field: Option<String>,
    /// JSONL field (Parquet column) holding the id.
    #[arg(long)]
    pub id_field: Option<String>,
    /// JSONL fields (Parquet columns) kept as metadata, comma-separated
    /// (default: all; Parquet reads only these columns).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub metadata_fields: Option<Vec<String>>,
    /// Plain text: one document per file, line or paragraph.
    #[arg(long, value_enum)]
    pub text_unit: Option<TextUnitArg>,
    /// Shard compression (Parquet: of each column chunk).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Shard format: JSONL (default) or Parquet (id, text, source, metadata as JSON).
    #[arg(long, value_enum)]
    pub output_format: Option<OutputFormatArg>,
    /// fastText model for every langid / lang_filter stage (e.g. lid.176.ftz).
    #[arg(long)]
    pub langid_model: Option<PathBuf>,
    /// Delete an earlier run in the output directory first.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the merged stats as JSON instead of the table (with [[dedup]]
    /// steps: `{"stages": …, "dedup": [{"step", "output", "stats"}, …]}`).
    #[arg(long)]
    pub json: bool,
    /// Where the tasks run: threads here, or Slurm job arrays.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "task")]
    pub executor: ExecutorArg,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Auto,
    Warc,
    Arc,
    Jsonl,
    Html,
    Text,
    Parquet,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Auto => Format::Auto,
            FormatArg::Warc => Format::Warc,
            FormatArg::Arc => Format::Arc,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Html => Format::Html,
            FormatArg::Text => Format::Text,
            FormatArg::Parquet => Format::Parquet,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TextUnitArg {
    File,
    Line,
    Paragraph,
}

impl From<TextUnitArg> for TextUnit {
    fn from(u: TextUnitArg) -> TextUnit {
        match u {
            TextUnitArg::File => TextUnit::File,
            TextUnitArg::Line => TextUnit::Line,
            TextUnitArg::Paragraph => TextUnit::Paragraph,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormatArg {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    Zstd,
    Gzip,
    None,
}

impl RunArgs {
    /// The pipeline config with command-line overrides applied.
    fn config(&self) -> Result<(PipelineConfig, String)> {
        let (mut cfg, name) = match (&self.pipeline, &self.preset) {
            (Some(path), _) => (PipelineConfig::from_file(path)?, path.display().to_string()),
            (None, Some(name)) => {
                let p = presets::get(name).with_context(|| {
                    format!(
                        "unknown preset `{name}`; available: {}",
                        presets::names().join(", ")
                    )
                })?;
                (p.config()?, format!("preset `{name}`"))
            }
            (None, None) => bail!("give a pipeline file or --preset NAME (see `refinery presets`)"),
        };
        if !self.input.is_empty() {
            cfg.input.paths = self.input.clone();
        }
        if let Some(o) = &self.output {
            cfg.output.path = Some(o.clone());
        }
        if let Some(t) = self.tasks {
            cfg.executor.tasks = t;
        }
        if let Some(w) = self.workers {
            cfg.executor.workers = w;
        }
        if self.rejects {
            cfg.output.rejects = true;
        }
        if let Some(f) = self.format {
            cfg.reader.format = f.into();
        }
        if let Some(f) = &self.text_field {
            cfg.reader.text_field = f.clone();
        }
        if let Some(f) = &self.id_field {
            cfg.reader.id_field = f.clone();
        }
        if let Some(u) = self.text_unit {
            cfg.reader.text_unit = u.into();
        }
        if let Some(fields) = &self.metadata_fields {
            cfg.reader.metadata_fields =
                Some(fields.iter().filter(|f| !f.is_empty()).cloned().collect());
        }
        if let Some(m) = &self.langid_model {
            for stage in cfg.stages.iter_mut() {
                match stage {
                    StageConfig::Langid(c) => c.model = Some(m.clone()),
                    StageConfig::LangFilter(c) => c.model = Some(m.clone()),
                    _ => {}
                }
            }
        }
        if let Some(c) = self.compression {
            cfg.writer.compression = match c {
                CompressionArg::Zstd => Compression::Zstd,
                CompressionArg::Gzip => Compression::Gzip,
                CompressionArg::None => Compression::None,
            };
        }
        if let Some(f) = self.output_format {
            cfg.writer.format = match f {
                OutputFormatArg::Jsonl => OutputFormat::Jsonl,
                OutputFormatArg::Parquet => OutputFormat::Parquet,
            };
        }
        Ok((cfg, name))
    }
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let (cfg, name) = args.config()?;
    let pipeline = cfg.clone().validate(&name)?;
    let lock = lock_output(&pipeline.output, args.task)?;
    if args.overwrite {
        remove_run(&lock)?;
    }
    if args.executor == ExecutorArg::Slurm {
        return submit_slurm(cfg, &name, &args.slurm);
    }
    execute(&pipeline, args.task, args.quiet, args.json)
}

/// Writes the effective pipeline to OUT/slurm/pipeline.toml and submits: an
/// array of `tasks` ranks, then a check of the merged stats. The jobs run in
/// the submission directory (`--chdir`), so paths, and therefore document
/// sources and output bytes, are exactly those of a local run.
fn submit_slurm(mut cfg: PipelineConfig, name: &str, slurm: &SlurmArgs) -> Result<ExitCode> {
    let out = cfg.output.path.clone().context("no output directory")?;
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let out = out.canonicalize()?;
    cfg.executor.workers = slurm.slurm_cpus.max(1);
    let pipeline = cfg.clone().validate(name)?;
    // The input discovery and the task bound, before anything is submitted.
    let job = pipeline.job(None)?;
    executor::check_tasks(job.tasks, job.inputs.len())
        .map_err(|m| anyhow::anyhow!("{}: {m}", name))?;
    let dir = out.join("slurm");
    std::fs::create_dir_all(&dir)?;
    let toml_path = dir.join("pipeline.toml");
    std::fs::write(&toml_path, cfg.to_toml()?).with_context(|| toml_path.display().to_string())?;
    let exe = shell_quote(&self_exe()?.display().to_string());
    let toml_arg = shell_quote(&toml_path.display().to_string());
    let steps = [
        Step {
            name: "run".into(),
            tasks: pipeline.tasks,
            command: format!("{exe} run {toml_arg} --task \"$SLURM_ARRAY_TASK_ID\" --quiet"),
        },
        Step {
            name: "stats".into(),
            tasks: 1,
            command: format!("{exe} stats {}", shell_quote(&out.display().to_string())),
        },
    ];
    submit(&dir, &steps, slurm)?;
    println!(
        "scripts and logs in {}; when the jobs finish: refinery stats {}",
        dir.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs a validated pipeline, prints the report, and maps the outcome to an exit code.
pub fn execute(
    pipeline: &Pipeline,
    task: Option<usize>,
    quiet: bool,
    json: bool,
) -> Result<ExitCode> {
    let job = pipeline.job(task)?;
    let progress = Progress::default();
    let factory = pipeline.stage_factory();
    let report = progress::with_bar(&progress, quiet, || {
        executor::run(&job, &factory, &progress)
    })
    .with_context(|| format!("run into {}", pipeline.output.display()))?;
    for (t, problem) in &report.tasks_redone {
        eprintln!("task {t} was complete but {problem}: redone");
    }
    if !quiet && !report.tasks_skipped.is_empty() {
        eprintln!(
            "resumed: {} task(s) already complete were skipped, {} run now",
            report.tasks_skipped.len(),
            report.tasks_run.len()
        );
    }
    match report.stats {
        Some(stats) if !pipeline.dedup.is_empty() => {
            if !json {
                print!("{}", report::table(&stats));
            }
            run_dedup_chain(pipeline, task, &stats, quiet, json)?;
        }
        Some(stats) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", report::table(&stats));
                println!("\noutput in {}", pipeline.output.display());
            }
        }
        None => {
            let done = (0..job.tasks)
                .filter(|&t| executor::is_complete(&job.output, t))
                .count();
            println!(
                "{} of {} tasks complete; stats.json is written when all are done",
                done, job.tasks
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the pipeline's `[[dedup]]` steps over the stages' output and prints
/// each step's account.
fn run_dedup_chain(
    pipeline: &Pipeline,
    rank: Option<usize>,
    stages: &RunStats,
    quiet: bool,
    json: bool,
) -> Result<()> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    // Ranks that finish together may all find every task complete: one of
    // them runs the chain, under its own lock.
    let _lock = match lock_output(&pipeline.output.join("dedup"), None) {
        Err(e @ CorpusError::Busy { .. }) if rank.is_some() => {
            eprintln!("not running the dedup chain here: {e}");
            return Ok(());
        }
        other => other?,
    };
    if !quiet {
        let names: Vec<_> = pipeline.dedup.iter().map(|d| d.type_name()).collect();
        eprintln!("corpus-wide dedup: {}", names.join(" → "));
    }
    let reports = refinery_pipeline::dedup::run_chain(pipeline, &cancel)?;
    if json {
        // One object: the stages' stats, then each dedup step's.
        let dedup: Vec<_> = reports
            .iter()
            .map(|r| serde_json::json!({"step": r.name, "output": r.output, "stats": r.stats}))
            .collect();
        let all = serde_json::json!({"stages": stages, "dedup": dedup});
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    for r in &reports {
        println!("\n== dedup {} ({})", r.name, r.output.display());
        print!("{}", report::table(&r.stats));
    }
    if let Some(last) = reports.last() {
        println!(
            "\nrefined corpus in {}",
            last.output.join(executor::DATA_DIR).display()
        );
    }
    Ok(())
}

/// Empties the locked directory of a previous run, but only a directory that
/// looks like one, and only if all of it can be deleted.
pub fn remove_run(lock: &OutputLock) -> Result<()> {
    let dir = lock.dir();
    let is_run = dir.join(RUN_FILE).exists();
    if !is_run && !lock.is_empty()? {
        bail!(
            "refusing to --overwrite {}: it is not empty and holds no refinery run ({RUN_FILE} missing)",
            dir.display()
        );
    }
    lock.clear()
        .with_context(|| format!("--overwrite {}", dir.display()))
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  refinery presets\n  refinery presets --show default > my-pipeline.toml"
)]
pub struct PresetsArgs {
    /// Print this preset's TOML (a starting point for your own pipeline file).
    #[arg(long)]
    pub show: Option<String>,
}

pub fn presets(args: PresetsArgs) -> Result<ExitCode> {
    if let Some(name) = args.show {
        let p = presets::get(&name).with_context(|| {
            format!(
                "unknown preset `{name}`; available: {}",
                presets::names().join(", ")
            )
        })?;
        print!("{}", p.toml);
        return Ok(ExitCode::SUCCESS);
    }
    for p in presets::PRESETS {
        let cfg = p.config()?;
        println!("{:<12} {}", p.name, cfg.description);
    }
    Ok(ExitCode::SUCCESS)
}

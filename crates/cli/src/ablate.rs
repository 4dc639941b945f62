//! `refinery ablate experiment.toml`: the CLI side of refinery-ablate (arguments, a line per
//! step, the training bar, the table).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use refinery_ablate::run::{self, Observer, Outcome};
use refinery_ablate::ExperimentConfig;
use refinery_report::ablation::text_table;

use crate::pretrain::{bar, Bar};

const ABLATE_EXAMPLES: &str = "\
Examples:
  refinery ablate examples/ablate/gopher-minhash.toml
  refinery ablate experiment.toml --out ablations/run1     (rerun the same command to continue)
  refinery report ablations/run1 -o ablation.html          the table and the bits/byte plot

Each variant of the base pipeline is refined, tokenized with one shared tokenizer, trained
once per seed to the same token budget and evaluated in bits per byte on every eval set;
OUT/ablation.json holds the table. See docs/ablate.md.";

#[derive(Args)]
#[command(after_help = ABLATE_EXAMPLES)]
pub struct AblateArgs {
    /// The experiment TOML (base pipeline, variants, tokenizer, budget, seeds, eval sets).
    pub experiment: PathBuf,
    /// Output directory (replaces the file's `output`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar or step lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print ablation.json instead of the table.
    #[arg(long)]
    pub json: bool,
}

struct Lines {
    quiet: bool,
    bar: Option<Bar>,
}

impl Observer for Lines {
    fn on_step(&mut self, index: usize, total: usize, what: &str, skipped: bool) {
        if !self.quiet {
            let note = if skipped {
                " (done before: skipped)"
            } else {
                ""
            };
            eprintln!("[{index}/{total}] {what}{note}");
        }
    }
    fn on_done(&mut self, _index: usize, _what: &str, detail: &str) {
        if let Some(b) = self.bar.take() {
            b.bar.finish_and_clear();
        }
        if !self.quiet && !detail.is_empty() {
            eprintln!("        {detail}");
        }
    }
    fn corpus(&mut self, progress: &refinery_corpus::executor::Progress, work: &mut dyn FnMut()) {
        crate::progress::with_bar(progress, self.quiet, work);
    }
    fn training(&mut self) -> Option<&mut dyn refinery_train::Observer> {
        let b = self.bar.insert(Bar {
            bar: bar(self.quiet),
            json: true,
        });
        Some(b)
    }
}

pub fn ablate(a: AblateArgs) -> Result<ExitCode> {
    let exp = ExperimentConfig::load(&a.experiment, a.out.clone())?;
    if !a.quiet {
        eprintln!(
            "{} variants x {} seeds, {} tokens per run ({} steps), output in {}",
            exp.variants.len(),
            exp.seeds.len(),
            exp.tokens_per_run,
            exp.steps,
            exp.output.display()
        );
    }
    let mut lines = Lines {
        quiet: a.quiet,
        bar: None,
    };
    match run::run(&exp, &mut lines)? {
        Outcome::Done(table) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&table)?);
            } else {
                print!("{}", text_table(&table));
                println!(
                    "\nresults in {}; plots: refinery report {} -o ablation.html",
                    exp.output
                        .join(refinery_report::ablation::ABLATION_FILE)
                        .display(),
                    exp.output.display()
                );
            }
        }
        Outcome::Stopped { after } => {
            eprintln!("stopped after step {after}; rerun the same command to continue");
        }
    }
    Ok(ExitCode::SUCCESS)
}

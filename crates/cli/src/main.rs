//! `refinery`: the command-line tool. This crate only parses arguments and
//! connects the library crates; all the work happens in them.

mod demo;
mod extract;
mod progress;
mod report;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "refinery: from raw web crawls to a refined corpus, tokens and models";

const EXAMPLES: &str = "\
Examples:
  refinery demo                                   refine the embedded sample crawl
  refinery run --preset default --input crawl/ --output out/ --rejects
  refinery run pipeline.toml --tasks 16 --workers 2
  refinery stats out/
  refinery extract page.html.gz
  refinery presets";

#[derive(Parser)]
#[command(name = "refinery", version, about = ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline (a TOML file or a preset) over input files.
    Run(run::RunArgs),
    /// Show the per-stage table and accounting of a run directory.
    Stats(report::StatsArgs),
    /// Extract the main text of HTML files (gzipped or not) as JSON lines.
    Extract(extract::ExtractArgs),
    /// Refine the embedded sample crawl with the default preset.
    Demo(demo::DemoArgs),
    /// List the shipped presets, or print one.
    Presets(run::PresetsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Stats(a) => report::stats(a),
        Command::Extract(a) => extract::extract(a),
        Command::Demo(a) => demo::demo(a),
        Command::Presets(a) => run::presets(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Broken pipe (e.g. `| head`) is not an error worth reporting.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `refinery`: the command-line tool. This crate only parses arguments and
//! connects the library crates; all the work happens in them.

mod ablate;
mod compress;
mod dedup;
mod demo;
mod distill;
mod extract;
mod finetune;
mod generate;
mod langid;
mod mix;
mod pretrain;
mod progress;
mod prune;
mod report;
mod run;
mod slurm;
mod tokenize;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "refinery: from raw web crawls to a refined corpus, tokens and models";

const EXAMPLES: &str = "\
Examples:
  refinery demo                                   refine the embedded sample crawl
  refinery run --preset default --input crawl/ --output out/ --rejects
  refinery run pipeline.toml --tasks 16 --workers 2
  refinery stats out/
  refinery report out/ -o report.html
  refinery extract page.html.gz
  refinery langid --model lid.176.ftz < lines.txt
  refinery presets
  refinery tokenizer train --model bpe --vocab-size 32000 out/data/ -o tok.json
  refinery tokenize --tokenizer tok.json out/data/ --output tokens/
  refinery tokens inspect tokens/
  refinery mix mixture.toml --output mixed/ --seed 1
  refinery pretrain --preset gpt-tiny --data tokens/ --tokenizer tok.json --out runs/gpt
  refinery eval-lm --model runs/gpt/checkpoint-2000 --data heldout-tokens/
  refinery generate --model ckpt/ --prompt 'Once upon a time' --max-new-tokens 50
  refinery finetune --preset sst2-minilm --model MiniLM/ --train train.tsv --dev dev.tsv --out runs/sst2
  refinery evaluate --model runs/sst2/best --data dev.tsv
  echo 'a fine film' | refinery classify --model runs/sst2/best
  refinery distill --teacher runs/sst2/best --train train.tsv --dev dev.tsv --out runs/sst2-3l
  refinery prune --model runs/sst2/best --method magnitude --sparsity 0.5 --out runs/sst2-p50
  refinery ablate experiment.toml --out ablations/run1";

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
    /// Corpus-wide dedup: MinHash-LSH near-duplicates, and explain a removal.
    Dedup(dedup::DedupArgs),
    /// Show the per-stage table and accounting of a run directory.
    Stats(report::StatsArgs),
    /// Write a self-contained HTML report (plots) of corpus or model runs.
    Report(report::ReportArgs),
    /// Extract the main text of HTML files (gzipped or not) as JSON lines.
    Extract(extract::ExtractArgs),
    /// Identify the language of each line on stdin (built-in or fastText model).
    Langid(langid::LangidArgs),
    /// Refine the embedded sample crawl with the default preset.
    Demo(demo::DemoArgs),
    /// List the shipped presets, or print one.
    Presets(run::PresetsArgs),
    /// Train a tokenizer, or encode/decode with one.
    Tokenizer(tokenize::TokenizerArgs),
    /// Encode documents into token shards for training.
    Tokenize(tokenize::TokenizeArgs),
    /// Inspect token shards.
    Tokens(tokenize::TokensArgs),
    /// Mix sources by weights or epochs (Pile-style) into one shuffled corpus.
    Mix(mix::MixArgs),
    /// Pretrain a GPT (CLM) or BERT (MLM + NSP) on token shards; resumes automatically.
    Pretrain(pretrain::PretrainArgs),
    /// Loss and perplexity of a GPT-2 or BERT checkpoint on token shards.
    EvalLm(pretrain::EvalLmArgs),
    /// Generate text with a GPT-2 checkpoint (temperature, top-k, top-p, KV cache).
    Generate(generate::GenerateArgs),
    /// Fine-tune a checkpoint on labelled data: classification, cloze prompts, multi-task.
    Finetune(finetune::FinetuneArgs),
    /// Accuracy, macro-F1, MCC, per-class metrics and the confusion matrix of a classifier.
    Evaluate(finetune::EvaluateArgs),
    /// Label lines or JSONL from stdin with a classifier (label + probabilities out).
    Classify(finetune::ClassifyArgs),
    /// Zero-/few-shot classification by prompting: cloze (MLM), LM scoring, embeddings.
    Prompt(finetune::PromptArgs),
    /// Write one task of a multi-task model as a standalone HF classifier.
    ExportTask(finetune::ExportTaskArgs),
    /// Distil a teacher into a smaller student (soft labels, attention, hidden states, stages).
    Distill(distill::DistillArgs),
    /// int8 post-training quantization of a BERT classifier (dynamic or static, linear or log2).
    Quantize(compress::QuantizeArgs),
    /// Size, latency, throughput, peak RSS and accuracy of classifiers, one table.
    Compare(compress::CompareArgs),
    /// Prune a checkpoint: zero the smallest-magnitude Linear weights (dense output + report).
    Prune(prune::PruneArgs),
    /// Did a filter help? Train small models on pipeline variants, compare bits per byte.
    Ablate(ablate::AblateArgs),
}

/// `error: context: cause: …`, without repeating a cause that an outer
/// message already quotes (library errors print their source, e.g.
/// `out/data: Not a directory (os error 20)`, and also return it as the
/// source, which `{:#}` would print a second time).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Dedup(a) => dedup::dedup(a),
        Command::Stats(a) => report::stats(a),
        Command::Report(a) => report::report(a),
        Command::Extract(a) => extract::extract(a),
        Command::Langid(a) => langid::langid(a),
        Command::Demo(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            demo::demo(a)
        }
        Command::Presets(a) => run::presets(a),
        Command::Tokenizer(a) => tokenize::tokenizer(a),
        Command::Tokenize(a) => tokenize::tokenize(a),
        Command::Tokens(a) => tokenize::tokens(a),
        Command::Mix(a) => mix::mix(a),
        Command::Generate(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            generate::generate(a)
        }
        Command::Pretrain(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            pretrain::pretrain(a)
        }
        Command::EvalLm(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            pretrain::eval_lm(a)
        }
        Command::Finetune(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            finetune::finetune(a)
        }
        Command::Evaluate(a) => finetune::evaluate(a),
        Command::Classify(a) => finetune::classify(a),
        Command::Prompt(a) => finetune::prompt(a),
        Command::ExportTask(a) => finetune::export(a),
        Command::Distill(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            distill::distill(a)
        }
        Command::Quantize(a) => compress::quantize(a),
        Command::Compare(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            compress::compare(a)
        }
        Command::Prune(a) => prune::prune(a),
        Command::Ablate(a) => {
            refinery_train::alloc::tune_allocator_for_training();
            ablate::ablate(a)
        }
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
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

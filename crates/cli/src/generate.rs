//! `refinery generate`: text generation with an HF GPT-2 checkpoint directory
//! (`config.json` + `model.safetensors`, ours or HF's) and a tokenizer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use refinery_compress::compare::engine_runner;
use refinery_compress::gpt::GptEngine;
use refinery_compress::kernels::KernelPath;
use refinery_compress::quant::read_quant_config;
use refinery_model::device::parse_device;
use refinery_model::generate::{generate_with, Decoding, SamplingConfig, StopReason};
use refinery_model::hf::{load_gpt, CONFIG_FILE, WEIGHTS_FILE};
use refinery_model::Gpt;
use refinery_tokenize::Tokenizer;

#[derive(Args, Clone, Debug)]
pub struct GenerateArgs {
    /// Checkpoint directory: config.json + model.safetensors (HF GPT-2 layout, f32 or int8
    /// from `refinery quantize`; int8 runs on the CPU engine).
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Tokenizer file or directory (default: MODEL/tokenizer.json).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 100)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 = greedy (argmax).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 50)]
    pub top_k: usize,
    /// Nucleus sampling threshold in (0, 1] (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// HF repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    /// Sampler seed: same seed, model and prompt give the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop token id (default: eos_token_id of config.json, else the tokenizer's
    /// <|endoftext|>/</s>/[SEP]-style EOS token).
    #[arg(long, conflicts_with = "no_eos")]
    pub eos_token_id: Option<u32>,
    /// Never stop early: always generate --max-new-tokens tokens.
    #[arg(long)]
    pub no_eos: bool,
    /// Device: cpu (default), or cuda[:N] / tch… when built with those features.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run the whole sequence every step instead of using the KV cache (slower).
    #[arg(long)]
    pub no_cache: bool,
    /// Run an f32 checkpoint on the CPU inference engine (its f32 path, as `compare
    /// engine:DIR`) instead of burn; int8 checkpoints always run on it.
    #[arg(long)]
    pub engine: bool,
    /// Print one JSON object (prompt, completion, token ids, stop reason, timing).
    #[arg(long)]
    pub json: bool,
}

/// What runs the model: burn (f32) or the engine (an int8 checkpoint, or `--engine`).
enum Runner {
    Burn(Box<Gpt>),
    Engine(Box<GptEngine>),
}

pub fn generate(args: GenerateArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(&args, &mut out, &mut std::io::stderr())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn check_file(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: --model must be a checkpoint directory with {CONFIG_FILE} and {WEIGHTS_FILE}",
            path.display()
        );
    }
    Ok(())
}

/// Loads, generates and writes the completion to `out`, the timing line to `err`.
pub fn run(args: &GenerateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    if !args.model.is_dir() {
        bail!(
            "{}: not a directory (--model must be a checkpoint directory with {CONFIG_FILE} and {WEIGHTS_FILE})",
            args.model.display()
        );
    }
    check_file(&args.model, CONFIG_FILE)?;
    check_file(&args.model, WEIGHTS_FILE)?;
    let tok_path = args
        .tokenizer
        .clone()
        .unwrap_or_else(|| args.model.join("tokenizer.json"));
    if !tok_path.exists() {
        bail!(
            "{} not found: pass --tokenizer PATH (a tokenizer.json, a .tiktoken file, or a directory)",
            tok_path.display()
        );
    }
    let device = parse_device(&args.device)?;
    let load = || -> Result<_> {
        if args.engine || read_quant_config(&args.model)?.is_some() {
            let engine = GptEngine::load(&args.model, KernelPath::from_env()?)?;
            Ok((engine.config.clone(), Runner::Engine(Box::new(engine))))
        } else {
            let (config, model) = load_gpt(&args.model, &device)?;
            Ok((config, Runner::Burn(Box::new(model))))
        }
    };
    let (config, model) =
        load().with_context(|| format!("loading the model from {}", args.model.display()))?;
    let tokenizer = Tokenizer::load(&tok_path)
        .with_context(|| format!("loading the tokenizer {}", tok_path.display()))?;
    if tokenizer.vocab_size() > config.vocab_size {
        bail!(
            "tokenizer {} has {} tokens but the model's vocab_size is {}: they do not belong together",
            tok_path.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        );
    }
    let eos_token_id = if args.no_eos {
        None
    } else {
        args.eos_token_id
            .or(config.eos_token_id)
            .or_else(|| tokenizer.default_eos().map(|(_, id)| id))
    };
    let sampling = SamplingConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        eos_token_id,
        repetition_penalty: args.repetition_penalty,
    };
    sampling.validate()?;
    let prompt = tokenizer
        .encode(&args.prompt)
        .context("encoding the prompt")?;
    if prompt.is_empty() {
        bail!("the prompt encodes to no tokens: give a non-empty --prompt");
    }
    let decoding = if args.no_cache {
        Decoding::Full
    } else {
        Decoding::Cached
    };
    let start = Instant::now();
    let generation = match &model {
        Runner::Burn(m) => generate_with(m.as_ref(), &prompt, &sampling, decoding)?,
        Runner::Engine(e) => generate_with(e.as_ref(), &prompt, &sampling, decoding)?,
    };
    let seconds = start.elapsed().as_secs_f64();
    // The EOS token ends the text; it is kept in the token list.
    let text_ids = match generation.stop {
        StopReason::Eos => &generation.tokens[..generation.tokens.len() - 1],
        StopReason::MaxNewTokens => &generation.tokens[..],
    };
    let completion = tokenizer
        .decode(text_ids)
        .context("decoding the generated tokens")?;
    let n = generation.tokens.len();
    let tps = if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    };
    if args.json {
        let stop = match generation.stop {
            StopReason::Eos => "eos",
            StopReason::MaxNewTokens => "max_new_tokens",
        };
        let v = serde_json::json!({
            "prompt": args.prompt,
            "completion": completion,
            "prompt_tokens": prompt,
            "tokens": generation.tokens,
            "stop": stop,
            "seconds": seconds,
            "tokens_per_second": tps,
            "sampling": sampling,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{completion}")?;
    }
    writeln!(
        err,
        "generated {n} tokens in {seconds:.2} s ({tps:.1} tokens/s, {}{}, prompt {} tokens)",
        if args.no_cache {
            "no KV cache"
        } else {
            "KV cache"
        },
        match &model {
            Runner::Burn(_) => String::new(),
            Runner::Engine(e) => format!(", {}", engine_runner(e.quant.is_some(), &e.kernels())),
        },
        prompt.len()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use refinery_model::generate::generate;
    use refinery_model::hf::save_gpt;
    use refinery_model::GptConfig;
    use refinery_tokenize::train::{train, ModelKind, TrainConfig};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    const PROMPT: &str = "the quick brown fox";

    /// A checkpoint dir: a tiny random GPT (ctx 16, so generation crops) + a BPE tokenizer.
    fn checkpoint() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "the quick brown fox {i} jumps over the lazy dog number {}",
                    i * 7
                )
            })
            .collect();
        let tok = train(&TrainConfig::new(ModelKind::Bpe, 300), texts.into_iter()).unwrap();
        tok.save_to_dir(dir.path()).unwrap();
        let device = parse_device("cpu").unwrap();
        let config = GptConfig::new(tok.vocab_size(), 16, 32, 2, 4);
        let model = config.init(&device).unwrap();
        save_gpt(&model, &config, dir.path()).unwrap();
        dir
    }

    fn parse(dir: &Path, extra: &[&str]) -> GenerateArgs {
        let d = dir.to_str().unwrap();
        let mut argv = vec!["x", "--model", d, "--prompt", PROMPT];
        argv.extend(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    fn run_ok(args: &GenerateArgs) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(args, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn run_err(args: &GenerateArgs) -> String {
        let e = run(args, &mut Vec::new(), &mut Vec::new()).unwrap_err();
        format!("{e:#}")
    }

    #[test]
    fn greedy_json_matches_the_library_and_reports_speed() {
        let dir = checkpoint();
        let args = parse(
            dir.path(),
            &[
                "--temperature",
                "0",
                "--max-new-tokens",
                "20",
                "--no-eos",
                "--json",
            ],
        );
        let (out, err) = run_ok(&args);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["stop"], "max_new_tokens");
        let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        assert_eq!(tokens.len(), 20);

        // Same tokens as the library call, decoded to the same text.
        let tok = Tokenizer::load(&dir.path().join("tokenizer.json")).unwrap();
        let (_, model) = load_gpt(dir.path(), &parse_device("cpu").unwrap()).unwrap();
        let prompt = tok.encode(PROMPT).unwrap();
        assert_eq!(
            serde_json::from_value::<Vec<u32>>(v["prompt_tokens"].clone()).unwrap(),
            prompt
        );
        let want = generate(&model, &prompt, &SamplingConfig::greedy(20)).unwrap();
        assert_eq!(tokens, want.tokens);
        assert_eq!(v["completion"], tok.decode(&want.tokens).unwrap());
        assert!(
            err.contains("generated 20 tokens") && err.contains("tokens/s"),
            "{err}"
        );

        // Plain output is the completion; the uncached path gives the same text.
        let plain = parse(
            dir.path(),
            &["--temperature", "0", "--max-new-tokens", "20", "--no-eos"],
        );
        let (text, _) = run_ok(&plain);
        assert_eq!(
            text.trim_end_matches('\n'),
            v["completion"].as_str().unwrap()
        );
        let mut uncached = plain.clone();
        uncached.no_cache = true;
        assert_eq!(run_ok(&uncached).0, text);
        // The engine's f32 path gives the same text.
        let mut engine = plain.clone();
        engine.engine = true;
        let (etext, eerr) = run_ok(&engine);
        assert_eq!(etext, text);
        assert!(eerr.contains("engine-f32"), "{eerr}");
    }

    #[test]
    fn int8_checkpoints_run_on_the_engine() {
        use refinery_compress::quant::{quantize_dir, QuantOptions};
        let dir = checkpoint();
        let q = tempfile::tempdir().unwrap();
        let int8 = q.path().join("int8");
        quantize_dir(dir.path(), &int8, &QuantOptions::default(), None).unwrap();
        let args = parse(
            &int8,
            &[
                "--temperature",
                "0",
                "--max-new-tokens",
                "20",
                "--no-eos",
                "--json",
            ],
        );
        let (out, err) = run_ok(&args);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let tokens: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        let engine = GptEngine::load(&int8, KernelPath::from_env().unwrap()).unwrap();
        let tok = Tokenizer::load(&int8.join("tokenizer.json")).unwrap();
        let prompt = tok.encode(PROMPT).unwrap();
        let want = generate(&engine, &prompt, &SamplingConfig::greedy(20)).unwrap();
        assert_eq!(tokens, want.tokens);
        assert!(err.contains("engine-int8"), "{err}");
        let mut uncached = args.clone();
        uncached.no_cache = true;
        let v2: serde_json::Value = serde_json::from_str(run_ok(&uncached).0.trim()).unwrap();
        assert_eq!(v2["tokens"], v["tokens"]);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_eos_stops() {
        let dir = checkpoint();
        let a = parse(
            dir.path(),
            &[
                "--seed",
                "3",
                "--max-new-tokens",
                "12",
                "--no-eos",
                "--json",
            ],
        );
        let (x, _) = run_ok(&a);
        let (y, _) = run_ok(&a);
        let tokens = |s: &str| -> Vec<u32> {
            let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
            serde_json::from_value(v["tokens"].clone()).unwrap()
        };
        assert_eq!(tokens(&x), tokens(&y));

        // Use the 3rd sampled token as the EOS id: generation stops at its first occurrence
        // and the completion text leaves it out.
        let t = tokens(&x);
        let eos = t[2].to_string();
        let b = parse(
            dir.path(),
            &[
                "--seed",
                "3",
                "--max-new-tokens",
                "12",
                "--eos-token-id",
                &eos,
                "--json",
            ],
        );
        let (z, _) = run_ok(&b);
        let v: serde_json::Value = serde_json::from_str(z.trim()).unwrap();
        let first = t.iter().position(|&i| i == t[2]).unwrap();
        assert_eq!(tokens(&z), t[..=first].to_vec());
        assert_eq!(v["stop"], "eos");
    }

    #[test]
    fn missing_or_malformed_files_are_named() {
        let dir = checkpoint();
        let args = parse(dir.path(), &[]);

        let tok = dir.path().join("tokenizer.json");
        std::fs::rename(&tok, dir.path().join("t.json")).unwrap();
        assert!(run_err(&args).contains("tokenizer.json not found"));
        std::fs::write(&tok, "{ not json").unwrap();
        let e = run_err(&args);
        assert!(e.contains("tokenizer.json"), "{e}");
        std::fs::rename(dir.path().join("t.json"), &tok).unwrap();

        let w = dir.path().join(WEIGHTS_FILE);
        std::fs::rename(&w, dir.path().join("w")).unwrap();
        assert!(run_err(&args).contains("model.safetensors not found"));
        std::fs::write(&w, b"garbage").unwrap();
        let e = run_err(&args);
        assert!(
            e.contains("model.safetensors") && e.contains("safetensors"),
            "{e}"
        );
        std::fs::rename(dir.path().join("w"), &w).unwrap();

        let c = dir.path().join(CONFIG_FILE);
        let good = std::fs::read_to_string(&c).unwrap();
        std::fs::write(&c, "{\"vocab_size\": ").unwrap();
        let e = run_err(&args);
        assert!(e.contains("config.json") && e.contains("invalid"), "{e}");
        std::fs::remove_file(&c).unwrap();
        assert!(run_err(&args).contains("config.json not found"));
        std::fs::write(&c, good).unwrap();
        run_ok(&parse(dir.path(), &["--max-new-tokens", "2"]));

        let bad = parse(dir.path(), &["--top-p", "0"]);
        assert!(run_err(&bad).contains("top_p"));
        let e = run_err(&parse(Path::new("/nonexistent/ckpt"), &[]));
        assert!(
            e.contains("/nonexistent/ckpt") && e.contains("not a directory"),
            "{e}"
        );
    }
}

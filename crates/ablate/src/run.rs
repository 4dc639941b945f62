//! The ablation, step by step. Each step writes its output (or a small marker file) last and
//! is skipped when that exists, so a rerun after a crash or kill continues where it stopped;
//! inside a step the corpus executor resumes its finished tasks and training resumes from its
//! newest checkpoint.
//!
//! ```text
//! OUT/experiment.json                  what decides the results (another experiment is refused)
//! OUT/variants/NAME/refined/           1. the pipeline's output (refined.json: its marker)
//! OUT/tokenizer/tokenizer.json         2. byte-level BPE trained on the base's refined data
//! OUT/variants/NAME/tokens/            3. token shards (stats.json: the marker)
//! OUT/variants/NAME/overlap.json       4. eval 13-grams found in the training documents
//! OUT/variants/NAME/seed-S/            5. training (done at checkpoint-STEPS)
//! OUT/variants/NAME/seed-S/eval.json   6. nats, tokens and bytes per eval set
//! OUT/ablation.json                    7. the table (refinery_report::ablation::Ablation)
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Device;
use refinery_corpus::executor::{self, Progress, DATA_DIR};
use refinery_corpus::input::discover;
use refinery_corpus::lock::lock_output;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::write_atomic;
use refinery_report::ablation::{
    Ablation, EvalResult, EvalSetInfo, EvalSummary, Overlap, SeedRun, VariantResult, ABLATION_FILE,
    SIGNIFICANCE_RULE,
};
use refinery_tokenize::job::{self as tokjob, TokenStats, TokenizeJob, TokenizeProgress};
use refinery_tokenize::train::{self as toktrain, ModelKind, TextLimits, TrainConfig};
use refinery_tokenize::{TokenDataset, Tokenizer};
use refinery_train::config::{train, CheckContext, TokenizerIds};
use serde::{Deserialize, Serialize};

use crate::bpb::{self, EvalText};
use crate::config::{CheckedExperiment, Variant};
use crate::{overlap, stats, AblateError, Result};

/// The fingerprint file of an ablation directory.
pub const EXPERIMENT_FILE: &str = "experiment.json";
const REFINED_MARKER: &str = "refined.json";
const OVERLAP_FILE: &str = "overlap.json";
const EVAL_FILE: &str = "eval.json";

/// Told about every step (the CLI prints a line per step and draws the training bar).
pub trait Observer {
    /// Step `index` of `total` (1-based) starts; `skipped` when its output is already complete.
    fn on_step(&mut self, _index: usize, _total: usize, _what: &str, _skipped: bool) {}
    /// The step is done; `detail` says what it produced.
    fn on_done(&mut self, _index: usize, _what: &str, _detail: &str) {}
    /// Runs `work`, a pipeline run whose executor counts into `progress` (for a progress bar).
    fn corpus(&mut self, _progress: &Progress, work: &mut dyn FnMut()) {
        work()
    }
    /// The observer of each training run (its progress bar).
    fn training(&mut self) -> Option<&mut dyn refinery_train::Observer> {
        None
    }
    /// Checked after every step: `true` stops the ablation there, as a kill would (a rerun
    /// continues).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that does nothing.
impl Observer for () {}

/// How [`run`] ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every step is done: the table.
    Done(Box<Ablation>),
    /// The observer stopped it after this many steps (or inside a training run).
    Stopped { after: usize },
}

/// `refined.json`: the variant's refined corpus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Refined {
    input_docs: u64,
    docs_kept: u64,
    /// The final `data/` directory (the last dedup step's, or the stages').
    data: PathBuf,
}

/// `seed-S/eval.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SeedEval {
    seed: u64,
    parameters: u64,
    final_train_loss: f64,
    eval: Vec<EvalResult>,
}

/// Where a variant's files go.
fn variant_dir(out: &Path, v: &Variant) -> PathBuf {
    out.join("variants").join(&v.name)
}

fn seed_dir(out: &Path, v: &Variant, seed: u64) -> PathBuf {
    variant_dir(out, v).join(format!("seed-{seed}"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `v` as pretty JSON with a final newline (`path` names errors).
fn json_bytes<T: Serialize>(path: &Path, v: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| AblateError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    Ok(write_atomic(path, &json_bytes(path, v)?)?)
}

/// Runs (or continues) the experiment.
pub fn run(exp: &CheckedExperiment, observer: &mut dyn Observer) -> Result<Outcome> {
    let out = &exp.output;
    let _lock = lock_output(out, None)?;
    // 0. The same experiment as before in this directory, or a new one.
    let fp_path = out.join(EXPERIMENT_FILE);
    // Compared as the bytes it is written as (a JSON round trip may change a float's last digit).
    let fp = json_bytes(&fp_path, &exp.fingerprint())?;
    match std::fs::read(&fp_path) {
        Ok(old) if old != fp => {
            return Err(AblateError::Invalid {
                path: fp_path,
                message: format!(
                    "{} holds an ablation with other settings than {}: use another output directory, or delete it",
                    out.display(),
                    exp.file
                ),
            })
        }
        Ok(_) => {}
        Err(_) => write_atomic(&fp_path, &fp)?,
    }
    let nv = exp.variants.len();
    let ns = exp.seeds.len();
    let total = nv * 3 + 1 + 2 * nv * ns + 1;
    let mut index = 0;
    // Each step: announce, skip or do, report, maybe stop.
    macro_rules! step {
        ($what:expr, $done:expr, $work:expr) => {{
            index += 1;
            let what: String = $what;
            let done: bool = $done;
            observer.on_step(index, total, &what, done);
            if !done {
                let detail: String = $work;
                observer.on_done(index, &what, &detail);
            }
            if observer.should_stop() {
                return Ok(Outcome::Stopped { after: index });
            }
        }};
    }

    // 1. Refine every variant.
    for v in &exp.variants {
        let marker = variant_dir(out, v).join(REFINED_MARKER);
        step!(
            format!("refine {}", v.name),
            read_json::<Refined>(&marker).is_some(),
            {
                let progress = Progress::default();
                let mut result = None;
                observer.corpus(&progress, &mut || result = Some(refine(v, &progress)));
                let r = result.ok_or_else(|| {
                    AblateError::step(format!("refine {}", v.name), "did not run")
                })??;
                write_json(&marker, &r)?;
                format!("{} of {} documents kept", r.docs_kept, r.input_docs)
            }
        );
    }
    let refined: Vec<Refined> = exp
        .variants
        .iter()
        .map(|v| {
            let p = variant_dir(out, v).join(REFINED_MARKER);
            read_json(&p).ok_or_else(|| AblateError::Invalid {
                path: p,
                message: "missing or unreadable".into(),
            })
        })
        .collect::<Result<_>>()?;

    // 2. One tokenizer, trained on the base variant's output.
    let tok_dir = out.join("tokenizer");
    let tok_path = tok_dir.join("tokenizer.json");
    step!(
        "train the tokenizer on the base output".to_string(),
        tok_path.is_file(),
        {
            let tok = train_tokenizer(exp, &refined[0].data, &tok_dir)?;
            format!("byte-level BPE, vocab {}", tok.vocab_size())
        }
    );
    let tok = Tokenizer::load(&tok_path)?;
    let sep = tok
        .default_eos()
        .map(|(_, id)| id)
        .ok_or_else(|| AblateError::Invalid {
            path: tok_path.clone(),
            message: "no <|endoftext|> separator in the vocabulary".into(),
        })?;

    // 3. Tokenize every variant.
    for (v, r) in exp.variants.iter().zip(&refined) {
        let dir = variant_dir(out, v).join("tokens");
        step!(
            format!("tokenize {}", v.name),
            TokenStats::read(&dir).is_ok(),
            {
                let s = tokenize(&r.data, &dir, &tok, sep)?;
                format!("{} tokens in {} documents", s.tokens, s.docs)
            }
        );
    }

    // 4. Eval/train overlap per variant.
    let eval_texts: Vec<EvalText> = exp
        .eval
        .iter()
        .map(|e| EvalText::encode(&tok, sep, &e.text))
        .collect::<Result<_>>()?;
    let eval_ngrams: Vec<HashSet<u64>> =
        exp.eval.iter().map(|e| overlap::ngrams(&e.text)).collect();
    for (v, r) in exp.variants.iter().zip(&refined) {
        let path = variant_dir(out, v).join(OVERLAP_FILE);
        step!(
            format!("eval overlap with {}", v.name),
            read_json::<Vec<Overlap>>(&path).is_some(),
            {
                let hits = overlap::hits(&r.data, &eval_ngrams)?;
                let o: Vec<Overlap> = exp
                    .eval
                    .iter()
                    .zip(&eval_ngrams)
                    .zip(hits)
                    .map(|((e, set), hits)| Overlap {
                        set: e.name.clone(),
                        hits,
                        ngrams: set.len() as u64,
                        fraction: if set.is_empty() {
                            0.0
                        } else {
                            hits as f64 / set.len() as f64
                        },
                    })
                    .collect();
                write_json(&path, &o)?;
                o.iter()
                    .map(|x| format!("{}: {} of {} 13-grams", x.set, x.hits, x.ngrams))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }

    // 5. Train every (variant, seed) to the budget; 6. evaluate it.
    let device = refinery_model::device::parse_device(&exp.device)
        .map_err(|e| AblateError::step("device", e))?;
    for v in &exp.variants {
        let tokens = variant_dir(out, v).join("tokens");
        for &seed in &exp.seeds {
            let dir = seed_dir(out, v, seed);
            let name = format!("train {} seed {seed}", v.name);
            let done = trained(&dir, exp.steps)?;
            index += 1;
            observer.on_step(index, total, &name, done);
            if !done {
                let completed = train_one(exp, &tokens, &dir, seed, &tok_path, &device, observer)
                    .map_err(|e| AblateError::step(&name, e))?;
                if !completed {
                    return Ok(Outcome::Stopped { after: index - 1 });
                }
                observer.on_done(index, &name, &format!("{} steps", exp.steps));
            }
            if observer.should_stop() {
                return Ok(Outcome::Stopped { after: index });
            }
            let path = dir.join(EVAL_FILE);
            step!(
                format!("evaluate {} seed {seed}", v.name),
                read_json::<SeedEval>(&path).is_some(),
                {
                    let e = evaluate(exp, &dir, seed, &eval_texts, &device)?;
                    write_json(&path, &e)?;
                    e.eval
                        .iter()
                        .map(|r| format!("{}: {:.4} bits/byte", r.set, r.bits_per_byte))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }

    // 7. The table.
    index += 1;
    observer.on_step(index, total, "summarize", false);
    let table = summarize(exp, &refined, tok.vocab_size(), &eval_texts, &eval_ngrams)?;
    let path = out.join(ABLATION_FILE);
    let bytes = json_bytes(&path, &table)?;
    // Rewritten only when it changes: a rerun of a finished ablation writes nothing.
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        write_atomic(&path, &bytes)?;
    }
    observer.on_done(index, "summarize", &path.display().to_string());
    Ok(Outcome::Done(Box::new(table)))
}

/// Step 1: the pipeline's stages, then its dedup chain (both resume by themselves).
fn refine(v: &Variant, progress: &Progress) -> Result<Refined> {
    let p = &v.pipeline;
    let step = |m: String| AblateError::step(format!("refine {}", v.name), m);
    let _lock = lock_output(&p.output, None)?;
    let job = p.job(None)?;
    let factory = p.stage_factory();
    let report = executor::run(&job, &factory, progress)?;
    let stages = report
        .stats
        .ok_or_else(|| step("not every task completed".into()))?;
    let cancel = AtomicBool::new(false);
    let chain = refinery_pipeline::dedup::run_chain(p, &cancel).map_err(|e| step(e.to_string()))?;
    let (docs_kept, data) = match chain.last() {
        Some(r) => (r.stats.kept_docs, r.output.join(DATA_DIR)),
        None => (stages.kept_docs, p.output.join(DATA_DIR)),
    };
    if docs_kept == 0 {
        return Err(step(format!(
            "no document kept of {}: nothing to train on",
            stages.input_docs
        )));
    }
    Ok(Refined {
        input_docs: stages.input_docs,
        docs_kept,
        data,
    })
}

/// Step 2: a byte-level BPE on the base output, written whole or not at all.
fn train_tokenizer(exp: &CheckedExperiment, data: &Path, dir: &Path) -> Result<Tokenizer> {
    let inputs = discover(&[data.to_path_buf()])?;
    let limits = TextLimits {
        max_docs: None,
        sample_bytes: exp.tokenizer.sample_bytes,
    };
    let texts = toktrain::texts(
        inputs,
        ReaderOptions::default(),
        limits,
        Arc::new(AtomicU64::new(0)),
    );
    let mut cfg = TrainConfig::new(ModelKind::Bpe, exp.tokenizer.vocab_size);
    cfg.min_frequency = exp.tokenizer.min_frequency;
    let tok = toktrain::train(&cfg, texts)?;
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| AblateError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| AblateError::io(&tmp, e))?;
    tok.save_to_dir(&tmp)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| AblateError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| AblateError::io(dir, e))?;
    Ok(tok)
}

/// Step 3: token shards of the refined data (`stats.json` is written last).
fn tokenize(data: &Path, dir: &Path, tok: &Tokenizer, sep: u32) -> Result<TokenStats> {
    let job = TokenizeJob {
        inputs: discover(&[data.to_path_buf()])?,
        reader: ReaderOptions::default(),
        output: dir.to_path_buf(),
        tasks: 1,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        separator: Some(sep),
        max_shard_tokens: 1 << 30,
        overwrite: true,
    };
    Ok(tokjob::run(&job, tok, &TokenizeProgress::default())?)
}

/// Whether a run directory holds the final checkpoint.
fn trained(dir: &Path, steps: usize) -> Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    Ok(refinery_train::run::latest_checkpoint(dir)?
        .is_some_and(|c| c.file_name() == Some(format!("checkpoint-{steps}").as_ref())))
}

/// Step 5: one training run (resuming from its newest checkpoint). `false`: stopped early.
fn train_one(
    exp: &CheckedExperiment,
    tokens: &Path,
    dir: &Path,
    seed: u64,
    tok_path: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<bool> {
    let file = exp.train_file(tokens, dir, seed);
    let _lock = lock_output(dir, None)?;
    let vocab = TokenDataset::open(tokens)?.vocab_size() as usize;
    let ctx = CheckContext {
        data_vocab: Some(vocab),
        tokenizer_ids: TokenizerIds::from_file(tok_path)?,
        tokenizer: Some(tok_path.to_path_buf()),
    };
    let checked = file.check(&format!("{} [train]", exp.file), &ctx)?;
    let mut nothing = ();
    let obs: &mut dyn refinery_train::Observer = match observer.training() {
        Some(o) => o,
        None => &mut nothing,
    };
    let summary = train(checked, device, obs)?;
    Ok(summary.completed && summary.final_step >= exp.steps)
}

/// Step 6: the final checkpoint on every eval set.
fn evaluate(
    exp: &CheckedExperiment,
    dir: &Path,
    seed: u64,
    texts: &[EvalText],
    device: &Device,
) -> Result<SeedEval> {
    let ckpt = dir.join(format!("checkpoint-{}", exp.steps));
    let (_, model) = refinery_model::hf::load_gpt(&ckpt, device)?;
    let mut eval = Vec::with_capacity(texts.len());
    for (set, t) in exp.eval.iter().zip(texts) {
        let nats = bpb::sum_nats(
            &model,
            &t.ids,
            exp.train.data.seq_len,
            exp.eval_batch_size,
            device,
        )?;
        let tokens = t.targets();
        eval.push(EvalResult {
            set: set.name.clone(),
            nats,
            tokens,
            bytes: t.bytes,
            loss: nats / tokens.max(1) as f64,
            bits_per_byte: bpb::bits_per_byte(nats, t.bytes),
        });
    }
    Ok(SeedEval {
        seed,
        parameters: model.num_params() as u64,
        final_train_loss: last_loss(&dir.join("metrics.jsonl")).unwrap_or(f64::NAN),
        eval,
    })
}

/// The `loss` of the last line of `metrics.jsonl`.
fn last_loss(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("loss")?.as_f64()
}

/// Step 7: the table from the step outputs.
fn summarize(
    exp: &CheckedExperiment,
    refined: &[Refined],
    vocab_size: usize,
    texts: &[EvalText],
    ngrams: &[HashSet<u64>],
) -> Result<Ablation> {
    let out = &exp.output;
    let mut variants = Vec::with_capacity(exp.variants.len());
    let mut parameters = 0;
    for (v, r) in exp.variants.iter().zip(refined) {
        let tokens = TokenStats::read(&variant_dir(out, v).join("tokens"))?;
        let mut runs = Vec::with_capacity(exp.seeds.len());
        for &seed in &exp.seeds {
            let p = seed_dir(out, v, seed).join(EVAL_FILE);
            let e: SeedEval = read_json(&p).ok_or_else(|| AblateError::Invalid {
                path: p.clone(),
                message: "missing or unreadable".into(),
            })?;
            parameters = e.parameters;
            runs.push(SeedRun {
                seed,
                final_train_loss: e.final_train_loss,
                eval: e.eval,
            });
        }
        let op = variant_dir(out, v).join(OVERLAP_FILE);
        let overlap: Vec<Overlap> = read_json(&op).ok_or_else(|| AblateError::Invalid {
            path: op.clone(),
            message: "missing or unreadable".into(),
        })?;
        variants.push(VariantResult {
            name: v.name.clone(),
            change: v.change.clone(),
            docs_kept: r.docs_kept,
            tokens_kept: tokens.tokens,
            epochs: exp.tokens_per_run as f64 / tokens.tokens.max(1) as f64,
            runs,
            summary: Vec::new(),
            overlap,
        });
    }
    // Mean ± std per set, and the difference from the base.
    let per_seed = |v: &VariantResult, si: usize| -> Vec<f64> {
        v.runs
            .iter()
            .filter_map(|r| r.eval.get(si).map(|e| e.bits_per_byte))
            .collect()
    };
    let base: Vec<Vec<f64>> = (0..exp.eval.len())
        .map(|si| {
            variants
                .first()
                .map(|b| per_seed(b, si))
                .unwrap_or_default()
        })
        .collect();
    for v in variants.iter_mut() {
        v.summary = exp
            .eval
            .iter()
            .enumerate()
            .map(|(si, e)| {
                let x = per_seed(v, si);
                let (mean, std) = stats::mean_std(&x);
                let (diff, se, significant) = stats::compare(&x, &base[si]);
                EvalSummary {
                    set: e.name.clone(),
                    n: x.len(),
                    mean,
                    std,
                    diff,
                    se,
                    significant,
                }
            })
            .collect();
    }
    Ok(Ablation {
        experiment: exp.file.clone(),
        description: exp.description.clone(),
        model: if exp.train.model.hf.is_empty() {
            exp.preset.clone()
        } else {
            let keys: Vec<String> = exp
                .train
                .model
                .hf
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} with {}", exp.preset, keys.join(", "))
        },
        parameters,
        tokens_per_run: exp.tokens_per_run,
        budget_tokens: exp.budget_tokens,
        steps: exp.steps,
        batch_size: exp.train.data.batch_size,
        seq_len: exp.train.data.seq_len,
        seeds: exp.seeds.clone(),
        vocab_size,
        overlap_unit: overlap::UNIT.to_string(),
        significance: SIGNIFICANCE_RULE.to_string(),
        eval_sets: exp
            .eval
            .iter()
            .zip(texts)
            .zip(ngrams)
            .map(|((e, t), g)| EvalSetInfo {
                name: e.name.clone(),
                path: e.path.display().to_string(),
                bytes: t.bytes,
                tokens: t.targets(),
                ngrams: g.len() as u64,
                round_trip: t.round_trip,
            })
            .collect(),
        variants,
    })
}

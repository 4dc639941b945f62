//! Fine-tuning tasks end to end on tiny synthetic data (generated here): `classify`,
//! `multitask` and `cloze` through `config::train` (config file → checked spec → sources →
//! trainer → best/final), exact resume of a fine-tuning run, and the prompt scorers.
//!
//! The synthetic task: a sentence of 6 filler words with one key word somewhere; the key
//! word decides the label (3 labels). A model must find the word wherever it is, so loss
//! falling and accuracy rising well above chance (1/3) show the whole path works.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::Device;
use refinery_model::hf::save_bert;
use refinery_model::hf_classify::load_classifier;
use refinery_model::{BertConfig, GptConfig};
use refinery_tokenize::train::{train as train_tokenizer, ModelKind, TrainConfig as TokConfig};
use refinery_train::config::{train, CheckContext, TrainFile};
use refinery_train::data::{DataConfig, DataSplit};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::prompt::{argmax_rows, embedding_scores, lm_scores, LmPrompt};
use refinery_train::rng::Rng;
use refinery_train::run::{Observer, StepRecord, BEST_DIR, EVAL_FILE, FINAL_DIR};
use refinery_train::tasks::multitask::export_task;
use refinery_train::tasks::{evaluate_checkpoint, open, AnyTaskSpec};
use refinery_train::{RunSummary, TaskSpec};

/// The device RNG is global: tests that initialise models run one at a time.
static RNG: Mutex<()> = Mutex::new(());

const FILLER: [&str; 12] = [
    "the", "a", "film", "was", "and", "of", "it", "very", "some", "this", "that", "with",
];
const KEYS: [&str; 3] = ["alpha", "beta", "gamma"];

/// `n` sentences with their label (the index of their key word).
fn sentences(n: usize, seed: u64, keys: &[&str]) -> Vec<(String, usize)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let label = rng.below(keys.len());
            let mut words: Vec<&str> = (0..6).map(|_| FILLER[rng.below(FILLER.len())]).collect();
            let at = rng.below(words.len() + 1);
            words.insert(at, keys[label]);
            (words.join(" "), label)
        })
        .collect()
}

fn write_tsv(path: &Path, rows: &[(String, usize)], names: &[&str]) {
    let mut text = String::from("sentence\tlabel\n");
    for (s, l) in rows {
        text.push_str(&format!("{s}\t{}\n", names[*l]));
    }
    std::fs::write(path, text).unwrap();
}

/// A WordPiece tokenizer over the synthetic vocabulary and a random tiny BERT (with its
/// pretraining heads) saved as an HF directory.
fn tiny_bert(dir: &Path) -> PathBuf {
    let ckpt = dir.join("bert");
    let mut texts: Vec<String> = sentences(400, 1, &KEYS).into_iter().map(|x| x.0).collect();
    texts.extend(
        sentences(100, 2, &["red", "green", "blue", "good", "bad"])
            .into_iter()
            .map(|x| x.0),
    );
    let mut cfg = TokConfig::new(ModelKind::WordPiece, 200);
    cfg.min_frequency = 1;
    let tok = train_tokenizer(&cfg, texts.iter().cloned()).unwrap();
    std::fs::create_dir_all(&ckpt).unwrap();
    tok.save_to_dir(&ckpt).unwrap();
    let mut config = BertConfig::new(tok.vocab_size(), 32, 2, 2, 64);
    config.max_position_embeddings = 64;
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let dev = Device::flex();
    dev.seed(7);
    let model = config.init(&dev).unwrap();
    save_bert(&model, &config, &ckpt).unwrap();
    ckpt
}

struct Data {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bert: PathBuf,
    train: PathBuf,
    dev: PathBuf,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let bert = tiny_bert(&root);
    let train = root.join("train.tsv");
    let dev = root.join("dev.tsv");
    write_tsv(&train, &sentences(480, 10, &KEYS), &["a", "b", "c"]);
    write_tsv(&dev, &sentences(120, 11, &KEYS), &["a", "b", "c"]);
    Data {
        _dir: dir,
        root,
        bert,
        train,
        dev,
    }
}

fn config(text: &str, out: &Path) -> refinery_train::config::CheckedTrain {
    let mut f = TrainFile::from_toml(text, "t.toml").unwrap();
    f.run.out_dir = Some(out.to_path_buf());
    f.check("t.toml", &CheckContext::default()).unwrap()
}

fn classify_toml(d: &Data, epochs: usize) -> String {
    format!(
        "[task]\nkind = \"classify\"\nmax_len = 16\n\
         [model]\ninit = {:?}\n\
         [data]\ntrain = {:?}\ndev = {:?}\nbatch_size = 16\n\
         [optim]\nlr = 3e-3\nmin_lr = 0.0\nwarmup_ratio = 0.1\ndecay = \"linear\"\nweight_decay = 0.01\n\
         beta2 = 0.999\n\
         [run]\nepochs = {epochs}\neval_every = 0\nbest_metric = \"accuracy\"\nseed = 3\n",
        d.bert, d.train, d.dev
    )
}

fn losses(out: &Path) -> Vec<f64> {
    read_metrics(&out.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect()
}

#[test]
fn classify_learns_the_key_word_and_saves_best_and_final() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let out = d.root.join("clf");
    let checked = config(&classify_toml(&d, 4), &out);
    let AnyTaskSpec::Classify(spec) = &checked.task else {
        panic!("{:?}", checked.task)
    };
    assert_eq!(spec.labels, ["a", "b", "c"]);
    assert_eq!(spec.fields.text_field, None, "detected, not set");
    let summary = train(checked, &Device::flex(), &mut ()).unwrap();
    assert!(summary.completed);
    // 480 examples / 16 = 30 steps per epoch.
    assert_eq!(summary.final_step, 120);
    let l = losses(&out);
    let head = l[..10].iter().sum::<f64>() / 10.0;
    let tail = l[l.len() - 10..].iter().sum::<f64>() / 10.0;
    eprintln!("loss {head:.3} -> {tail:.3}");
    assert!(head > 0.9 && tail < 0.2, "loss {head} -> {tail}");
    let best = summary.run_state.best_value.unwrap();
    assert!(best > 0.9, "best dev accuracy {best} (chance 1/3)");
    // best/ and final/ are plain HF classifiers with the labels; evaluating best/ again gives
    // the accuracy that selected it.
    for name in [BEST_DIR, FINAL_DIR] {
        let dir = out.join(name);
        assert!(dir.join("tokenizer.json").is_file() && dir.join(EVAL_FILE).is_file());
        let (c, _) = load_classifier(&dir, &Device::flex()).unwrap();
        assert_eq!(c.labels, ["a", "b", "c"]);
    }
    let opened = open(&out.join(BEST_DIR)).unwrap();
    let data = DataConfig {
        dev: Some(d.dev.clone()),
        batch_size: 7,
        ..DataConfig::default()
    };
    let report = evaluate_checkpoint(
        &out.join(BEST_DIR),
        &opened.spec,
        &data,
        DataSplit::Validation,
        None,
        &Device::flex(),
    )
    .unwrap();
    assert!(
        (report.metrics["accuracy"] - best).abs() < 1e-9,
        "{report:?}"
    );
    assert_eq!(report.metrics["n"], 120.0);
    assert!(report.metrics["macro_f1"] > 0.85 && report.metrics["mcc"] > 0.8);
}

/// Stops the run after `n` steps, as a kill would (no checkpoint beyond the last periodic one).
struct StopAfter(usize, usize);

impl Observer for StopAfter {
    fn on_step(&mut self, _r: &StepRecord) {
        self.1 += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.1 >= self.0
    }
}

#[test]
fn an_interrupted_finetune_resumes_exactly() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let toml = classify_toml(&d, 2).replace("[run]\n", "[run]\nsave_every = 7\n");
    let full = d.root.join("full");
    let s: RunSummary = train(config(&toml, &full), &Device::flex(), &mut ()).unwrap();
    assert_eq!(s.final_step, 60);
    // Interrupted at step 40 (last checkpoint: epoch end 30, then 35), then rerun.
    let cut = d.root.join("cut");
    let first = train(config(&toml, &cut), &Device::flex(), &mut StopAfter(40, 0)).unwrap();
    assert!(!first.completed);
    let second = train(config(&toml, &cut), &Device::flex(), &mut ()).unwrap();
    assert_eq!(second.start_step, 35);
    assert!(second.completed);
    assert_eq!(
        losses(&cut),
        losses(&full),
        "the loss curve of a resumed run"
    );
    let eval = |out: &Path| std::fs::read_to_string(out.join(BEST_DIR).join(EVAL_FILE)).unwrap();
    assert_eq!(eval(&cut), eval(&full));
}

#[test]
fn multitask_learns_both_tasks_and_exports_one() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let colors = d.root.join("colors.tsv");
    write_tsv(&colors, &sentences(300, 20, &["red", "green"]), &["r", "g"]);
    let colors_dev = d.root.join("colors_dev.tsv");
    write_tsv(
        &colors_dev,
        &sentences(80, 21, &["red", "green"]),
        &["r", "g"],
    );
    let toml = format!(
        "[task]\nkind = \"multitask\"\nsampling = \"temperature\"\ntemperature = 2.0\nmax_len = 16\n\
         [[task.tasks]]\nname = \"keys\"\ntrain = {:?}\ndev = {:?}\n\
         [[task.tasks]]\nname = \"colors\"\ntrain = {colors:?}\ndev = {colors_dev:?}\n\
         [model]\ninit = {:?}\n\
         [data]\nbatch_size = 16\n\
         [optim]\nlr = 3e-3\nmin_lr = 0.0\nwarmup_steps = 5\ndecay = \"linear\"\nweight_decay = 0.01\n\
         [run]\ntotal_steps = 120\neval_every = 60\nbest_metric = \"accuracy\"\nseed = 5\n",
        d.train, d.dev, d.bert
    );
    let out = d.root.join("multi");
    let summary = train(config(&toml, &out), &Device::flex(), &mut ()).unwrap();
    let eval = summary.last_eval.unwrap();
    eprintln!("{:?}", eval.metrics);
    assert!(eval.metrics["keys/accuracy"] > 0.85, "{:?}", eval.metrics);
    assert!(eval.metrics["colors/accuracy"] > 0.85, "{:?}", eval.metrics);
    assert_eq!(eval.metrics["keys/n"], 120.0);
    assert_eq!(eval.metrics["colors/n"], 80.0);
    // One task exported as a standalone classifier scores as it did inside the model.
    let exported = d.root.join("colors_only");
    export_task(&out.join(FINAL_DIR), "colors", &exported, &Device::flex()).unwrap();
    let opened = open(&exported).unwrap();
    assert_eq!(opened.spec.kind(), "classify");
    let data = DataConfig {
        dev: Some(colors_dev.clone()),
        batch_size: 16,
        ..DataConfig::default()
    };
    let report = evaluate_checkpoint(
        &exported,
        &opened.spec,
        &data,
        DataSplit::Validation,
        None,
        &Device::flex(),
    )
    .unwrap();
    assert!(
        (report.metrics["accuracy"] - eval.metrics["colors/accuracy"]).abs() < 1e-9,
        "{report:?}"
    );
    assert!(export_task(&out.join(FINAL_DIR), "nope", &exported, &Device::flex()).is_err());
}

#[test]
fn cloze_few_shot_training_maps_key_words_to_label_words() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    // Label words differ from the key words: the MLM must learn the mapping from 16 per label.
    let toml = format!(
        "[task]\nkind = \"cloze\"\ntemplate = \"{{text}} so [MASK] .\"\nmax_len = 20\n\
         [task.verbalizer]\na = \"red\"\nb = \"green\"\nc = \"blue\"\n\
         [model]\ninit = {:?}\n\
         [data]\ntrain = {:?}\ndev = {:?}\nbatch_size = 8\nfew_shot = 16\n\
         [optim]\nlr = 3e-3\nmin_lr = 0.0\nwarmup_steps = 0\ndecay = \"linear\"\nweight_decay = 0.0\n\
         [run]\nepochs = 12\neval_every = 0\nbest_metric = \"accuracy\"\nseed = 1\n",
        d.bert, d.train, d.dev
    );
    let out = d.root.join("cloze");
    let checked = config(&toml, &out);
    // Zero-shot first: the untrained model is near chance.
    let AnyTaskSpec::Cloze(spec) = &checked.task else {
        panic!()
    };
    let task = spec.build(None).unwrap();
    assert_eq!(task.masks, 1);
    let summary = train(checked, &Device::flex(), &mut ()).unwrap();
    // 48 examples (16 per label) / 8 = 6 steps per epoch.
    assert_eq!(summary.final_step, 72);
    let l = losses(&out);
    assert!(
        l[l.len() - 1] < l[0] * 0.5,
        "loss {} -> {}",
        l[0],
        l[l.len() - 1]
    );
    let best = summary.run_state.best_value.unwrap();
    assert!(best > 0.8, "cloze dev accuracy {best} (chance 1/3)");
}

#[test]
fn lm_scoring_matches_one_sequence_at_a_time_and_picks_what_the_lm_learned() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    // A tiny GPT trained on "sentence -> colour" lines, colour decided by the key word.
    let pairs = ["red", "green", "blue"];
    let lines: Vec<String> = sentences(2000, 30, &KEYS)
        .into_iter()
        .map(|(s, l)| format!("{s} -> {}", pairs[l]))
        .collect();
    let mut cfg = TokConfig::new(ModelKind::Bpe, 300);
    cfg.min_frequency = 1;
    let tok = train_tokenizer(&cfg, lines.iter().cloned()).unwrap();
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.encode(l).unwrap()).collect();
    let width = ids.iter().map(Vec::len).max().unwrap();
    let mut config = GptConfig::new(tok.vocab_size(), 32, 32, 2, 2);
    config = config.with_dropout(0.0);
    let dev = Device::flex();
    let spec = refinery_train::GptClmSpec::new(config.clone());
    let task = spec.build(None).unwrap();
    let mut tc = refinery_train::TrainConfig::new(refinery_train::schedule::LrSchedule {
        peak_lr: 3e-3,
        min_lr: 3e-3,
        warmup_steps: 0,
        total_steps: 300,
        decay: refinery_train::schedule::Decay::Linear,
    });
    tc.weight_decay = 0.0;
    let mut trainer = refinery_train::Trainer::new(task, tc, &dev).unwrap();
    let eot = tok.default_eos().map(|(_, id)| id).unwrap();
    let mut source = Rows {
        rows: ids,
        width: width + 1,
        eot,
        position: 0,
    };
    for _ in 0..300 {
        trainer.step(&mut source).unwrap();
    }
    let model = trainer.model.valid();
    let test = sentences(60, 31, &KEYS);
    let texts: Vec<String> = test.iter().map(|x| x.0.clone()).collect();
    let prompt = LmPrompt {
        template: "{text} ->".into(),
        words: pairs.iter().map(|p| format!(" {p}")).collect(),
        demos: Vec::new(),
    };
    let scores = lm_scores(&model, &tok, &prompt, &texts, 32, 8, &dev).unwrap();
    // Batched and padded scoring equals scoring each sequence alone.
    let alone = lm_scores(&model, &tok, &prompt, &texts[..3], 32, 1, &dev).unwrap();
    for (a, b) in alone.iter().flatten().zip(scores.iter().flatten()) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    let pred = argmax_rows(&scores);
    let correct = pred.iter().zip(&test).filter(|(p, (_, l))| *p == l).count();
    assert!(
        correct as f64 / 60.0 > 0.8,
        "LM scoring accuracy {correct}/60"
    );
}

/// Token rows for the LM test: each line padded with the end-of-text id.
struct Rows {
    rows: Vec<Vec<u32>>,
    width: usize,
    eot: u32,
    position: u64,
}

impl refinery_train::data::BatchSource<refinery_train::data::LmBatch> for Rows {
    fn next_batch(&mut self) -> refinery_train::data::LmBatch {
        let b = 16;
        let mut ids = Vec::with_capacity(b * self.width);
        let mut mask = Vec::with_capacity(b * self.width);
        for k in 0..b {
            let row = &self.rows[(self.position as usize * b + k) % self.rows.len()];
            for i in 0..self.width {
                ids.push(i64::from(*row.get(i).unwrap_or(&self.eot)));
                mask.push(i64::from(i <= row.len()));
            }
        }
        self.position += 1;
        refinery_train::data::LmBatch {
            batch_size: b,
            seq_len: self.width,
            input_ids: ids,
            attention_mask: Some(mask),
        }
    }
    fn position(&self) -> u64 {
        self.position
    }
    fn seek(&mut self, p: u64) {
        self.position = p;
    }
}

#[test]
fn embedding_scores_are_cosines_of_mean_pooled_embeddings() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let dev = Device::flex();
    let (_, bert) = refinery_model::hf::load_bert_model(&d.bert, &dev).unwrap();
    let tok = refinery_tokenize::Tokenizer::load(&d.bert).unwrap();
    let texts: Vec<String> = vec!["the film was alpha".into(), "beta of it".into()];
    // A text scored against itself has cosine 1; the scores are symmetric cosines.
    let s = embedding_scores(&bert, &tok, &texts, &texts, 16, 2, &dev).unwrap();
    assert!(
        (s[0][0] - 1.0).abs() < 1e-5 && (s[1][1] - 1.0).abs() < 1e-5,
        "{s:?}"
    );
    assert!((s[0][1] - s[1][0]).abs() < 1e-5, "{s:?}");
    assert!(s[0][1] < 0.9999);
    // Key-word descriptions classify the synthetic sentences above chance even with a random
    // encoder (the key token's embedding dominates the difference between sentences).
    let test = sentences(90, 40, &KEYS);
    let texts: Vec<String> = test.iter().map(|x| x.0.clone()).collect();
    let desc: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    let s = embedding_scores(&bert, &tok, &desc, &texts, 16, 16, &dev).unwrap();
    let pred = argmax_rows(&s);
    let correct = pred.iter().zip(&test).filter(|(p, (_, l))| *p == l).count();
    eprintln!("embedding zero-shot {correct}/90");
    assert!(
        correct > 45,
        "embedding zero-shot accuracy {correct}/90 (chance 30)"
    );
}

#[test]
fn frozen_layers_stay_and_layer_wise_decay_scales_updates() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let dev = Device::flex();
    let weights = |dir: &Path| -> Vec<(String, Vec<f32>)> {
        // name → values of every body tensor, from the safetensors file.
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<f32>)> = st
            .tensors()
            .into_iter()
            .filter(|(n, _)| n.starts_with("bert.") && !n.starts_with("bert.pooler"))
            .map(|(n, t)| {
                (
                    n.trim_start_matches("bert.").to_string(),
                    t.data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before = weights(&d.bert);
    let toml = classify_toml(&d, 1).replace(
        "max_len = 16\n",
        "max_len = 16\nfreeze_embeddings = true\nfreeze_layers = 1\n",
    );
    let out = d.root.join("frozen");
    train(config(&toml, &out), &dev, &mut ()).unwrap();
    let after = weights(&out.join(FINAL_DIR));
    assert_eq!(before.len(), after.len());
    let mut changed = Vec::new();
    for ((name, a), (name2, b)) in before.iter().zip(&after) {
        assert_eq!(name, name2);
        let frozen = name.starts_with("embeddings.") || name.starts_with("encoder.layer.0.");
        let same = a == b;
        assert_eq!(same, frozen, "{name}: frozen {frozen}, unchanged {same}");
        if !same {
            changed.push(name.clone());
        }
    }
    assert!(changed.iter().any(|n| n.starts_with("encoder.layer.1.")));

    // Layer-wise decay 0.1: layer 0 moves about 10x less than layer 1 (AdamW steps are
    // ~lr each, so the distance moved scales with the layer's learning rate).
    let toml =
        classify_toml(&d, 1).replace("max_len = 16\n", "max_len = 16\nlayer_lr_decay = 0.1\n");
    let out = d.root.join("llrd");
    train(config(&toml, &out), &dev, &mut ()).unwrap();
    let after = weights(&out.join(FINAL_DIR));
    let moved = |prefix: &str| -> f64 {
        before
            .iter()
            .zip(&after)
            .filter(|((n, _), _)| n.starts_with(prefix) && n.ends_with("query.weight"))
            .map(|((_, a), (_, b))| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| f64::from(x - y).abs())
                    .sum::<f64>()
            })
            .sum()
    };
    let (l0, l1) = (moved("encoder.layer.0."), moved("encoder.layer.1."));
    eprintln!("query weights moved: layer 0 {l0:.4}, layer 1 {l1:.4}");
    assert!(
        l0 > 0.0 && l1 / l0 > 4.0,
        "layer 1 / layer 0 movement {}",
        l1 / l0
    );
}

/// `[prune]` on the classify run: 2 epochs of 30 steps, masks grown every 5 steps to 60% by
/// `end` (a share of the 60 steps), a checkpoint every 5 steps.
fn pruned_toml(d: &Data, end: f64, save_every: usize) -> String {
    classify_toml(d, 2).replace(
        "[run]\n",
        &format!("[run]\nsave_every = {save_every}\nkeep = 20\n"),
    ) + &format!("[prune]\nsparsity = 0.6\nevery = 5\nend_fraction = {end}\n")
}

/// A checkpoint's masks, `(name, u8 per weight)` in name order.
type Masks = Vec<(String, Vec<u8>)>;
/// A checkpoint's weights by name.
type Weights = std::collections::HashMap<String, Vec<f32>>;

/// Little-endian f32 values.
fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The masks and the weights of a checkpoint of a pruning run.
fn masks_and_weights(dir: &Path) -> (Masks, Weights) {
    let bytes = std::fs::read(dir.join(refinery_train::prune::MASKS_FILE)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut masks: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    masks.sort();
    let wbytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let w = safetensors::SafeTensors::deserialize(&wbytes).unwrap();
    let weights = w
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, floats(v.data())))
        .collect();
    (masks, weights)
}

#[test]
fn gradual_pruning_keeps_pruned_weights_zero_and_ends_at_the_sparsity() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let out = d.root.join("pruned");
    let summary = train(
        config(&pruned_toml(&d, 0.5, 5), &out),
        &Device::flex(),
        &mut (),
    )
    .unwrap();
    assert_eq!(summary.final_step, 60);
    // Masks grow at 5, 10, ..., 30 (end = 0.5 · 60) to s_t = 0.6 (1 − (1 − t/30)³).
    let expected = |t: usize| {
        let p = (t.min(30) as f64) / 30.0;
        0.6 * (1.0 - (1.0 - p).powi(3))
    };
    let mut previous: Option<Masks> = None;
    for step in (5..=60).step_by(5) {
        let (masks, weights) = masks_and_weights(&out.join(format!("checkpoint-{step}")));
        // The Linear weights of both layers and the pooler; not the embeddings or the head.
        assert_eq!(
            masks.len(),
            13,
            "{:?}",
            masks.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
        assert!(masks
            .iter()
            .all(|(n, _)| n.starts_with("bert.encoder.") || n == "bert.pooler.dense.weight"));
        let n: usize = masks.iter().map(|m| m.1.len()).sum();
        let k: usize = masks
            .iter()
            .map(|m| m.1.iter().filter(|&&b| b == 1).count())
            .sum();
        let want = (expected(step) * n as f64).round() as usize;
        assert_eq!(k, want, "step {step}: {k} of {n} masked");
        for (name, mask) in &masks {
            let w = &weights[name];
            for (i, &b) in mask.iter().enumerate() {
                if b == 1 {
                    assert_eq!(w[i].to_bits(), 0, "step {step}: {name}[{i}] = {}", w[i]);
                }
            }
        }
        if let Some(prev) = &previous {
            for ((_, a), (_, b)) in prev.iter().zip(&masks) {
                assert!(a.iter().zip(b).all(|(&x, &y)| x <= y), "masks only grow");
            }
        }
        previous = Some(masks);
    }
    // final/: exactly round(0.6 n) zeros in the pruned tensors, the head dense.
    let (masks, _) = masks_and_weights(&out.join("checkpoint-60"));
    let final_weights = {
        let bytes = std::fs::read(out.join(FINAL_DIR).join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let zeros = |name: &str| {
            floats(st.tensor(name).unwrap().data())
                .iter()
                .filter(|&&w| w == 0.0)
                .count()
        };
        let n: usize = masks.iter().map(|m| m.1.len()).sum();
        let z: usize = masks.iter().map(|(name, _)| zeros(name)).sum();
        assert_eq!(z, (0.6 * n as f64).round() as usize);
        zeros("classifier.weight")
    };
    assert_eq!(final_weights, 0, "the head stays dense");
    // Only models at the final sparsity compete for best/.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(BEST_DIR).join(EVAL_FILE)).unwrap())
            .unwrap();
    assert!(best["step"].as_u64().unwrap() >= 30, "{best}");
    // A checkpoint of the run opens as its wrapped task.
    let opened = open(&out.join("checkpoint-60")).unwrap();
    assert!(matches!(opened.spec, AnyTaskSpec::Classify(_)));
}

#[test]
fn an_interrupted_pruning_run_resumes_exactly() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    // Masks grow until step 54; the cut at 40 resumes from the checkpoint at 35, mid-schedule.
    let toml = pruned_toml(&d, 0.9, 7);
    let full = d.root.join("full");
    train(config(&toml, &full), &Device::flex(), &mut ()).unwrap();
    let cut = d.root.join("cut");
    let first = train(config(&toml, &cut), &Device::flex(), &mut StopAfter(40, 0)).unwrap();
    assert!(!first.completed);
    let second = train(config(&toml, &cut), &Device::flex(), &mut ()).unwrap();
    assert_eq!(second.start_step, 35);
    assert_eq!(
        losses(&cut),
        losses(&full),
        "the loss curve of a resumed run"
    );
    let weights =
        |out: &Path| std::fs::read(out.join(FINAL_DIR).join("model.safetensors")).unwrap();
    assert!(weights(&cut) == weights(&full), "the final weights");
}

#[test]
fn initial_sparsity_at_step_zero_masks_the_starting_weights_as_one_shot_would() {
    use refinery_train::prune::{grow_masks, Scope, Sparsity};
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = data();
    let out = d.root.join("held");
    let toml = pruned_toml(&d, 0.5, 10).replace(
        "[prune]\nsparsity = 0.6\n",
        "[prune]\nsparsity = 0.5\ninitial_sparsity = 0.5\n",
    );
    train(config(&toml, &out), &Device::flex(), &mut ()).unwrap();
    // The one-shot selection on the starting checkpoint's weights (names in order).
    let (masks, _) = masks_and_weights(&out.join("checkpoint-10"));
    let bytes = std::fs::read(d.bert.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let start: Vec<Vec<f32>> = masks
        .iter()
        .map(|(name, _)| floats(st.tensor(name).unwrap().data()))
        .collect();
    let group: Vec<&[f32]> = start.iter().map(|v| &v[..]).collect();
    let mut want: Vec<Vec<bool>> = start.iter().map(|v| vec![false; v.len()]).collect();
    grow_masks(
        &group,
        &mut want,
        Sparsity::new(0.5).unwrap(),
        Scope::Global,
    );
    for step in [10, 30, 60] {
        let (masks, _) = masks_and_weights(&out.join(format!("checkpoint-{step}")));
        for ((name, m), w) in masks.iter().zip(&want) {
            let m: Vec<bool> = m.iter().map(|&b| b == 1).collect();
            assert!(&m == w, "step {step}: {name}");
        }
    }
}

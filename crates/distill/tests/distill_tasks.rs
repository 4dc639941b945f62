//! Distillation end to end on tiny synthetic data (generated here).
//!
//! The four families on a synthetic classification task:
//! soft labels, attention, hidden states + embeddings (multi-granularity, with a narrower
//! student and learned projections), and progressive (stage-wise and a teacher-assistant
//! chain). Each: the student's training loss falls, and the distilled student beats the same
//! student trained without the teacher at the same budget (same data, steps and seed).
//!
//! The task: 6 filler words and one key word; the key word decides the label (3 labels). The
//! teacher (4 layers, width 32) is fine-tuned on clean data; the students learn from a small
//! training file in which a third of the labels are wrong, so what the teacher knows is worth
//! something.
//!
//! Then: the bad inputs (each error names both models), the teacher cache (same losses as the
//! live teacher; another teacher's cache refused), exact resume with learned projections, the
//! teacher hash on resume, unlabelled transfer text (soft loss alone), and LM distillation on
//! GPT-2 (a noisy counting task: the distilled student's held-out loss beats the undistilled).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use burn::tensor::Device;
use refinery_distill::config::DistillFile;
use refinery_distill::distill;
use refinery_model::hf::save_bert;
use refinery_model::BertConfig;
use refinery_tokenize::train::{train as train_tokenizer, ModelKind, TrainConfig as TokConfig};
use refinery_train::config::{train, CheckContext, TrainFile};
use refinery_train::metrics::{read_metrics, METRICS_FILE};
use refinery_train::rng::Rng;
use refinery_train::run::FINAL_DIR;

/// The device RNG is global: tests that initialise models run one at a time.
static RNG: Mutex<()> = Mutex::new(());

const FILLER: [&str; 12] = [
    "the", "a", "film", "was", "and", "of", "it", "very", "some", "this", "that", "with",
];
const KEYS: [&str; 3] = ["alpha", "beta", "gamma"];

/// `n` sentences with their label; a share `noise` of the labels is replaced by another one.
fn sentences(n: usize, seed: u64, noise: f64) -> Vec<(String, usize)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let label = rng.below(KEYS.len());
            let mut words: Vec<&str> = (0..6).map(|_| FILLER[rng.below(FILLER.len())]).collect();
            let at = rng.below(words.len() + 1);
            words.insert(at, KEYS[label]);
            let shown = if (rng.below(1000) as f64) < noise * 1000.0 {
                (label + 1 + rng.below(KEYS.len() - 1)) % KEYS.len()
            } else {
                label
            };
            (words.join(" "), shown)
        })
        .collect()
}

fn write_tsv(path: &Path, rows: &[(String, usize)]) {
    let mut text = String::from("sentence\tlabel\n");
    for (s, l) in rows {
        text.push_str(&format!("{s}\t{l}\n"));
    }
    std::fs::write(path, text).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    teacher: PathBuf,
    /// The students' (noisy, small) training file and the clean dev file.
    train: PathBuf,
    dev: PathBuf,
}

/// A WordPiece tokenizer, a random 4-layer BERT, and the teacher fine-tuned from it on 960
/// clean sentences (shared by every test).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let base = root.join("bert");
        let texts: Vec<String> = sentences(400, 1, 0.0).into_iter().map(|x| x.0).collect();
        let mut cfg = TokConfig::new(ModelKind::WordPiece, 200);
        cfg.min_frequency = 1;
        let tok = train_tokenizer(&cfg, texts.iter().cloned()).unwrap();
        std::fs::create_dir_all(&base).unwrap();
        tok.save_to_dir(&base).unwrap();
        let mut config = BertConfig::new(tok.vocab_size(), 32, 4, 2, 64);
        config.max_position_embeddings = 32;
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        let dev = Device::flex();
        dev.seed(7);
        save_bert(&config.init(&dev).unwrap(), &config, &base).unwrap();

        let clean = root.join("teacher-train.tsv");
        let train_file = root.join("train.tsv");
        let dev_file = root.join("dev.tsv");
        write_tsv(&clean, &sentences(960, 10, 0.0));
        write_tsv(&train_file, &sentences(96, 12, 0.35));
        write_tsv(&dev_file, &sentences(150, 11, 0.0));
        let out = root.join("teacher-run");
        let toml = format!(
            "[task]\nkind = \"classify\"\nmax_len = 16\n[model]\ninit = {base:?}\n\
             [data]\ntrain = {clean:?}\ndev = {dev_file:?}\nbatch_size = 32\n\
             [optim]\nlr = 2e-3\nmin_lr = 0.0\nwarmup_ratio = 0.1\ndecay = \"linear\"\n\
             weight_decay = 0.01\nbeta2 = 0.999\n\
             [run]\nepochs = 10\neval_every = 0\nbest_metric = \"accuracy\"\nseed = 3\n"
        );
        let mut f = TrainFile::from_toml(&toml, "teacher.toml").unwrap();
        f.run.out_dir = Some(out.clone());
        let checked = f.check("teacher.toml", &CheckContext::default()).unwrap();
        let s = {
            let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
            train(checked, &Device::flex(), &mut ()).unwrap()
        };
        let acc = s.last_eval.as_ref().unwrap().metrics["accuracy"];
        eprintln!("teacher dev accuracy {acc:.3}");
        assert!(acc > 0.95, "teacher accuracy {acc}");
        Fixture {
            _dir: dir,
            root,
            teacher: out.join(FINAL_DIR),
            train: train_file,
            dev: dev_file,
        }
    })
}

/// A distillation config: `body` is the [student], [loss] and [[stage]] part.
fn config(f: &Fixture, name: &str, body: &str, steps: usize) -> DistillFile {
    let out = f.root.join(name);
    let text = format!(
        "[teacher]\ndir = {:?}\n{body}\n\
         [data]\ntrain = {:?}\ndev = {:?}\nbatch_size = 16\n\
         [optim]\nlr = 3e-3\nmin_lr = 0.0\nwarmup_steps = 5\ndecay = \"linear\"\n\
         weight_decay = 0.01\nbeta2 = 0.999\n\
         [run]\ntotal_steps = {steps}\neval_every = 0\nsave_every = 0\nbest_metric = \"accuracy\"\n\
         seed = 5\nout_dir = {out:?}\n",
        f.teacher, f.train, f.dev
    );
    DistillFile::from_toml(&text, name).unwrap()
}

/// Runs a config: (training losses, dev accuracy of the final student).
fn run(file: &DistillFile, name: &str) -> (Vec<f64>, f64) {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let summary = distill(file, name, &Device::flex(), &mut ()).unwrap();
    let last = summary.runs.last().unwrap();
    let acc = last.summary.last_eval.as_ref().unwrap().metrics["accuracy"];
    let losses = read_metrics(&last.dir.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    (losses, acc)
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// The loss falls: the mean of the last fifth is below 95% of the mean of the first fifth
/// (the hard term on noisy labels keeps a high floor).
fn falls(l: &[f64]) -> (f64, f64) {
    let k = (l.len() / 5).max(1);
    let (head, tail) = (mean(&l[..k]), mean(&l[l.len() - k..]));
    assert!(tail < 0.95 * head, "loss {head:.4} -> {tail:.4}");
    (head, tail)
}

/// Optimizer steps of every student run.
const STEPS: usize = 150;

const STUDENT_1L: &str = "[student]\nlayers = 1\ninit = \"random\"\n";

/// Distilled vs. undistilled at the same budget.
fn compare(name: &str, student: &str, losses: &str, steps: usize) -> (f64, f64) {
    let f = fixture();
    let kd = config(
        f,
        &format!("{name}-kd"),
        &format!("{student}{losses}"),
        steps,
    );
    let (l, kd_acc) = run(&kd, name);
    let (head, tail) = falls(&l);
    let base = config(f, &format!("{name}-base"), student, steps);
    let (_, base_acc) = run(&base, name);
    eprintln!(
        "{name}: loss {head:.4} -> {tail:.4}; dev accuracy distilled {kd_acc:.3} vs \
         undistilled {base_acc:.3}"
    );
    (kd_acc, base_acc)
}

#[test]
fn soft_labels() {
    let (kd, base) = compare(
        "soft",
        STUDENT_1L,
        "[loss.soft]\nalpha = 0.2\ntemperature = 2.0\n",
        STEPS,
    );
    assert!(kd > base + 0.05, "distilled {kd} vs undistilled {base}");
}

#[test]
fn attention() {
    let (kd, base) = compare(
        "attention",
        STUDENT_1L,
        "[loss.attention]\nweight = 1.0\nkind = \"kl\"\nmap = \"last\"\n",
        STEPS,
    );
    assert!(kd > base + 0.05, "distilled {kd} vs undistilled {base}");
}

#[test]
fn hidden_and_embeddings_with_a_narrower_student() {
    let (kd, base) = compare(
        "hidden",
        "[student]\nlayers = 2\ninit = \"random\"\nhidden_size = 16\nintermediate_size = 32\n",
        "[loss.hidden]\nweight = 1.0\nmap = \"uniform\"\n[loss.embedding]\nweight = 1.0\n",
        STEPS,
    );
    assert!(kd > base + 0.05, "distilled {kd} vs undistilled {base}");
}

#[test]
fn progressive_stages_and_assistants() {
    let f = fixture();
    // Stage-wise: hidden states and attention first (no labels), then soft labels.
    let losses = "[loss.soft]\nalpha = 0.2\ntemperature = 2.0\n\
                  [loss.hidden]\nmap = \"uniform\"\n[loss.attention]\nkind = \"kl\"\n\
                  [[stage]]\nname = \"intermediate\"\nsteps = 30\nlosses = [\"hidden\", \"attention\"]\n\
                  [[stage]]\nname = \"prediction\"\nsteps = 30\nlosses = [\"soft\", \"hard\"]\n";
    let kd = config(f, "stages", &format!("{STUDENT_1L}{losses}"), 60);
    let (l, kd_acc) = run(&kd, "stages");
    falls(&l);
    let first = f.root.join("stages/stage-1-intermediate");
    let l1: Vec<f64> = read_metrics(&first.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(l1.len(), 30);
    falls(&l1);
    let base = config(f, "stages-base", STUDENT_1L, 60);
    let (_, base_acc) = run(&base, "stages-base");
    eprintln!("stages: distilled {kd_acc:.3} vs undistilled {base_acc:.3}");
    assert!(kd_acc > base_acc + 0.05, "distilled {kd_acc} vs {base_acc}");

    // Teacher-assistant chain 4 → 2 → 1, each link with soft labels.
    let chain = config(
        f,
        "chain",
        "[student]\nlayers = 1\ninit = \"teacher-layers\"\nassistants = [2]\n\
         [loss.soft]\nalpha = 0.2\ntemperature = 2.0\n",
        40,
    );
    let summary = {
        let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
        distill(&chain, "chain", &Device::flex(), &mut ()).unwrap()
    };
    assert_eq!(summary.runs.len(), 2);
    assert_eq!(summary.runs[0].name, "assistant-2");
    // The second link's teacher is the assistant's best student.
    assert_eq!(
        summary.runs[1].teacher,
        f.root.join("chain/assistant-2/best")
    );
    let acc = summary.runs[1].summary.last_eval.as_ref().unwrap().metrics["accuracy"];
    eprintln!("chain 4 -> 2 -> 1: dev accuracy {acc:.3}");
    assert!(acc > 0.6, "chain student accuracy {acc}");
}

// ---------------------------------------------------------------------------------------
// Bad input: each error names both models.

use refinery_distill::spec::{DistillSpec, LossSpec, SoftSpec};
use refinery_train::tasks::{open, AnyTaskSpec, ClassifySpec};

fn teacher_spec(f: &Fixture) -> ClassifySpec {
    let AnyTaskSpec::Classify(t) = open(&f.teacher).unwrap().spec else {
        panic!("the teacher is a classifier")
    };
    t
}

fn soft() -> LossSpec {
    LossSpec {
        soft: Some(SoftSpec {
            weight: 1.0,
            alpha: 0.5,
            temperature: 2.0,
            final_temperature: None,
        }),
        ..LossSpec::default()
    }
}

fn refused(student: ClassifySpec, losses: LossSpec, want: &str) {
    let f = fixture();
    let e = DistillSpec::new(student, None, &f.teacher, losses)
        .unwrap_err()
        .to_string();
    let teacher = f.teacher.display().to_string();
    assert!(
        e.contains(&teacher) && e.contains("student (") && e.contains(want),
        "{e}"
    );
}

#[test]
fn bad_inputs_name_both_models() {
    let f = fixture();
    let t = teacher_spec(f);
    let shallow = |layers: usize| {
        let mut s = t.clone();
        if let refinery_model::BackboneConfig::Bert(c) = &mut s.model {
            c.num_hidden_layers = layers;
        }
        s
    };
    // Another vocabulary.
    let mut s = shallow(1);
    if let refinery_model::BackboneConfig::Bert(c) = &mut s.model {
        c.vocab_size += 5;
    }
    refused(s, soft(), "different vocabularies");
    // Another tokenizer of the same size: two tokens swap ids.
    let text = std::fs::read_to_string(f.teacher.join("tokenizer.json")).unwrap();
    let swapped = text
        .replace("\"alpha\":", "\"@@A\":")
        .replace("\"beta\":", "\"alpha\":")
        .replace("\"@@A\":", "\"beta\":");
    assert_ne!(swapped, text);
    let other = f.root.join("other-tokenizer.json");
    std::fs::write(&other, swapped).unwrap();
    let mut s = shallow(1);
    s.tokenizer = other;
    refused(s, soft(), "different tokenizers");
    // Other labels.
    let mut s = shallow(1);
    s.labels = vec!["0".into(), "1".into()];
    refused(s, soft(), "different outputs");
    // A layer map past the teacher's depth, and past the student's.
    let hidden = |map: &str| {
        let text = format!("[loss.hidden]\nmap = {map}\n");
        DistillFile::from_toml(&text, "x").unwrap().loss
    };
    refused(shallow(2), hidden("[2, 5]"), "teacher layer 5");
    refused(shallow(1), hidden("[1, 2]"), "student has only 1");
    refused(shallow(6), hidden("\"last\""), "teacher has only 4");
    // Attention distillation across sparse patterns.
    let mut s = shallow(1);
    if let refinery_model::BackboneConfig::Bert(c) = &mut s.model {
        c.sparse_attention = Some(refinery_model::attention::SparseAttention::Strided {
            stride: 2,
            local: 2,
        });
    }
    let attention = DistillFile::from_toml("[loss.attention]\nkind = \"kl\"\n", "x")
        .unwrap()
        .loss;
    refused(s, attention, "same pattern");
    // A teacher without the outputs a loss needs: the cache holds logits only.
    let mut l = soft();
    l.hidden = hidden("\"uniform\"").hidden;
    let e = refinery_distill::spec::check_pair(&t, &f.teacher, &shallow(1), None, &l, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&f.teacher.display().to_string()) && e.contains("logits only"),
        "{e}"
    );
    // Student layers taken from blocks the teacher does not have.
    let file = config(
        f,
        "bad-init",
        "[student]\nlayers = 2\ninit_layers = [0, 7]\n[loss.soft]\nalpha = 0.5\n",
        5,
    );
    let e = {
        let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
        distill(&file, "bad-init", &Device::flex(), &mut ())
            .unwrap_err()
            .to_string()
    };
    assert!(
        e.contains(&f.teacher.display().to_string()) && e.contains("block 7"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// The teacher cache.

#[test]
fn the_cache_gives_the_live_teachers_losses_and_refuses_another_teacher() {
    let f = fixture();
    let body = format!("{STUDENT_1L}[loss.soft]\nalpha = 0.2\ntemperature = 2.0\n");
    let (live, live_acc) = run(&config(f, "cache-live", &body, 30), "cache-live");
    let mut cached = config(f, "cache-dense", &body, 30);
    cached.teacher.cache = true;
    let (from_cache, cache_acc) = run(&cached, "cache-dense");
    let cache_file = f.root.join("cache-dense/teacher-cache.bin");
    assert!(cache_file.is_file());
    // The teacher's logits of a row do not depend on the batch it is in, up to float
    // rounding: the losses agree closely step by step.
    let worst = live
        .iter()
        .zip(&from_cache)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("cache vs live: max |Δ loss| {worst:.2e}; accuracy {cache_acc} vs {live_acc}");
    assert!(worst < 1e-3, "max |Δ loss| {worst}");
    // Top 2 of 3 classes: a different (renormalised) loss that still trains.
    let mut top = config(f, "cache-top2", &body, STEPS);
    top.teacher.cache = true;
    top.teacher.cache_top_k = Some(2);
    let (l, _) = run(&top, "cache-top2");
    falls(&l);
    // A cache made by another teacher is refused when the run is built.
    let mut spec = DistillSpec::new(teacher_spec(f), None, &f.teacher, soft()).unwrap();
    let foreign = f.root.join("foreign-cache.bin");
    refinery_distill::cache::CacheWriter::new(1, 3, None)
        .write(&foreign, 12345)
        .unwrap();
    spec.cache = Some(foreign);
    let e = refinery_train::TaskSpec::build(&spec, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("foreign-cache.bin") && e.contains("another teacher"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Resume.

use refinery_train::run::{Observer, StepRecord};

/// Stops the run after `n` steps, as a kill would.
struct StopAfter(usize, usize);

impl Observer for StopAfter {
    fn on_step(&mut self, _r: &StepRecord) {
        self.1 += 1;
    }
    fn should_stop(&mut self) -> bool {
        self.1 >= self.0
    }
}

fn records(dir: &Path) -> Vec<(f64, f64, f64, Option<f64>)> {
    read_metrics(&dir.join(METRICS_FILE))
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["loss"].as_f64().unwrap(),
                v["lr"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
                v.get("eval_accuracy").and_then(|a| a.as_f64()),
            )
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_exactly_with_its_projections() {
    let f = fixture();
    let body =
        "[student]\nlayers = 2\ninit = \"random\"\nhidden_size = 16\nintermediate_size = 32\n\
                dropout = 0.1\n\
                [loss.soft]\nalpha = 0.5\nfinal_temperature = 1.0\n\
                [loss.hidden]\n[loss.embedding]\n";
    let mut whole = config(f, "resume-whole", body, 30);
    whole.run.save_every = 10;
    whole.run.eval_every = 10;
    let mut cut = config(f, "resume-cut", body, 30);
    cut.run.save_every = 10;
    cut.run.eval_every = 10;
    {
        let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
        distill(&whole, "whole", &Device::flex(), &mut ()).unwrap();
        let s = distill(&cut, "cut", &Device::flex(), &mut StopAfter(15, 0)).unwrap();
        assert!(!s.runs[0].summary.completed);
        // The checkpoint carries the projections; best/ does not.
        let ckpt = f.root.join("resume-cut/checkpoint-10");
        assert!(ckpt
            .join(refinery_distill::model::PROJECTIONS_FILE)
            .is_file());
        assert!(!f
            .root
            .join("resume-cut/best")
            .join(refinery_distill::model::PROJECTIONS_FILE)
            .exists());
        let s = distill(&cut, "cut", &Device::flex(), &mut ()).unwrap();
        assert_eq!(s.runs[0].summary.start_step, 10);
    }
    let (a, b) = (
        records(&f.root.join("resume-whole")),
        records(&f.root.join("resume-cut")),
    );
    assert_eq!(a.len(), 30);
    assert_eq!(a, b, "the resumed run differs from the uninterrupted one");
}

#[test]
fn a_changed_teacher_is_refused_on_resume() {
    let f = fixture();
    let copy = f.root.join("teacher-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&f.teacher).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let spec = DistillSpec::new(teacher_spec(f), None, &copy, soft()).unwrap();
    refinery_train::TaskSpec::build(&spec, None).unwrap();
    let config_json = copy.join("config.json");
    let text = std::fs::read_to_string(&config_json).unwrap();
    std::fs::write(&config_json, format!("{text}\n")).unwrap();
    let e = refinery_train::TaskSpec::build(&spec, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("teacher's weights changed"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Unlabelled transfer text: the soft loss alone.

#[test]
fn unlabelled_transfer_text_trains_with_the_soft_loss_alone() {
    let f = fixture();
    let transfer = f.root.join("transfer.txt");
    let text: String = sentences(320, 21, 0.0)
        .into_iter()
        .map(|(s, _)| s + "\n")
        .collect();
    std::fs::write(&transfer, text).unwrap();
    let mut file = config(
        f,
        "transfer",
        &format!("{STUDENT_1L}[loss.soft]\nalpha = 0.5\ntemperature = 2.0\n"),
        STEPS,
    );
    file.teacher.transfer = Some(transfer);
    let (l, acc) = run(&file, "transfer");
    let (head, tail) = falls(&l);
    eprintln!("transfer: loss {head:.4} -> {tail:.4}; dev accuracy {acc:.3}");
    assert!(acc > 0.9, "accuracy {acc}");
}

// ---------------------------------------------------------------------------------------
// LM distillation on GPT-2.

use refinery_model::GptConfig;
use refinery_train::data::{BatchSource, CountingSequences, LmBatch};
use refinery_train::schedule::{Decay, LrSchedule};
use refinery_train::tasks::{GptClmSpec, GptClmTask};
use refinery_train::{Task, TaskSpec, TrainConfig, Trainer};

/// Counting rows with a share of the tokens replaced by seeded noise: the next token is
/// mostly, not always, the current one plus one.
struct Noisy(CountingSequences, f64);

impl BatchSource<LmBatch> for Noisy {
    fn next_batch(&mut self) -> LmBatch {
        let p = self.0.position();
        let mut b = self.0.next_batch();
        let mut rng = Rng::new(p ^ 0xABCD);
        for id in &mut b.input_ids {
            if (rng.below(1000) as f64) < self.1 * 1000.0 {
                *id = rng.below(self.0.vocab) as i64;
            }
        }
        b
    }
    fn position(&self) -> u64 {
        self.0.position()
    }
    fn seek(&mut self, position: u64) {
        self.0.seek(position)
    }
}

fn lm_config(steps: usize, lr: f64) -> TrainConfig {
    let mut c = TrainConfig::new(LrSchedule {
        peak_lr: lr,
        min_lr: lr / 10.0,
        warmup_steps: 5,
        total_steps: steps,
        decay: Decay::Cosine,
    });
    c.seed = 9;
    c
}

#[test]
fn gpt_lm_distillation_beats_the_same_student_without_kd() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let gpt = |layers: usize| GptConfig::new(24, 16, 32, layers, 2).with_dropout(0.0);
    // The teacher: 2 layers trained on clean counting.
    let teacher_task = GptClmTask::new(gpt(2)).unwrap();
    let mut t = Trainer::new(teacher_task, lm_config(150, 3e-3), &device).unwrap();
    let mut clean = CountingSequences::new(24, 16, 16, 1);
    for _ in 0..150 {
        t.step(&mut clean).unwrap();
    }
    let teacher_dir = dir.path().join("teacher");
    std::fs::create_dir_all(&teacher_dir).unwrap();
    t.task.save_model(&t.model, &teacher_dir).unwrap();
    let held_out = |trainer_eval: &dyn Fn(&mut CountingSequences) -> f64| {
        trainer_eval(&mut CountingSequences::new(24, 16, 16, 777))
    };
    let t_loss = held_out(&|s| t.evaluate(s, 4).unwrap().metrics["lm_loss"]);
    // Students: 1 layer, 40 steps on noisy counting, with and without the teacher.
    let student = GptClmSpec::new(gpt(1));
    let mut results = Vec::new();
    for losses in [soft(), LossSpec::default()] {
        let mut l = losses;
        if let Some(s) = &mut l.soft {
            s.alpha = 0.2;
            s.temperature = 1.0;
        }
        let spec = DistillSpec::new(student.clone(), None, &teacher_dir, l).unwrap();
        let mut trainer =
            Trainer::new(spec.build(None).unwrap(), lm_config(40, 3e-3), &device).unwrap();
        let mut noisy = Noisy(CountingSequences::new(24, 16, 16, 2), 0.3);
        let mut losses = Vec::new();
        for _ in 0..40 {
            losses.push(trainer.step(&mut noisy).unwrap().loss);
        }
        falls(&losses);
        let eval = held_out(&|s| trainer.evaluate(s, 4).unwrap().metrics["lm_loss"]);
        results.push(eval);
    }
    eprintln!(
        "LM: held-out loss teacher {t_loss:.3}, distilled student {:.3} (perplexity {:.2}), \
         undistilled {:.3} (perplexity {:.2})",
        results[0],
        results[0].exp(),
        results[1],
        results[1].exp()
    );
    assert!(
        results[0] < results[1] - 0.05,
        "distilled {} vs undistilled {}",
        results[0],
        results[1]
    );
}

// ---------------------------------------------------------------------------------------
// HF interop: transformers loads a distilled student (scripts/hf-interop.sh).

/// With `REFINERY_HF_EXPORT_DISTILL_DIR=DIR`: distils the fixture teacher into a 2-layer
/// student (teacher blocks, soft labels + hidden states), and writes `DIR/student/` (its
/// `best/`, a plain HF classifier) and `DIR/reference.json` (a dev batch and the student's
/// logits on it, computed here) for `tests/fixtures/check_hf_load_distilled.py`.
#[test]
fn export_distilled_for_hf() {
    use refinery_train::data::{DataConfig, DataSplit};
    use refinery_train::tasks::OutputOptions;
    let Ok(out) = std::env::var("REFINERY_HF_EXPORT_DISTILL_DIR") else {
        return;
    };
    let out = PathBuf::from(out);
    let f = fixture();
    let file = config(
        f,
        "hf-export",
        "[student]\nlayers = 2\n[loss.soft]\nalpha = 0.5\n[loss.hidden]\n",
        20,
    );
    let (_, _) = run(&file, "hf-export");
    let student = out.join("student");
    let _ = std::fs::remove_dir_all(&student);
    std::fs::create_dir_all(&student).unwrap();
    let best = f.root.join("hf-export/best");
    for e in std::fs::read_dir(&best).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), student.join(e.file_name())).unwrap();
    }
    let AnyTaskSpec::Classify(spec) = open(&student).unwrap().spec else {
        panic!("the student is a classifier")
    };
    let task = spec.build(Some(&student)).unwrap();
    let device = Device::flex();
    let model = task.load_model(&student, &device).unwrap();
    let data = DataConfig {
        dev: Some(f.dev.clone()),
        batch_size: 8,
        ..DataConfig::default()
    };
    let mut source = task.open_source(&data, DataSplit::Validation).unwrap();
    let b = source.next_batch();
    let logits = task
        .forward(&model, &b, &device, OutputOptions::default())
        .unwrap()
        .logits;
    let reference = serde_json::json!({
        "shape": [b.batch_size, b.seq_len],
        "input_ids": b.input_ids,
        "token_type_ids": b.token_type_ids,
        "attention_mask": b.attention_mask,
        "logits": logits.into_data().iter::<f32>().collect::<Vec<_>>(),
    });
    std::fs::write(out.join("reference.json"), reference.to_string()).unwrap();
}

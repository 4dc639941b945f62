//! A tiny end-to-end ablation (2 variants x 2 seeds, a 1-layer GPT for 6 steps) on a generated
//! corpus: the table, the bits-per-byte arithmetic, resuming, and the config checks.

use std::path::{Path, PathBuf};

use refinery_ablate::run::{self, Observer, Outcome};
use refinery_ablate::{Ablation, ExperimentConfig};

const WORDS: &[&str] = &[
    "the", "river", "film", "was", "quiet", "and", "bright", "a", "story", "of", "people", "who",
    "walk", "through", "old", "towns", "with", "music", "in", "their", "minds", "every", "day",
    "new", "light", "falls", "on", "green", "hills", "while", "children", "read", "books",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
    fn sentence(&mut self) -> String {
        let n = 6 + self.next() % 8;
        let mut s: Vec<&str> = (0..n).map(|_| WORDS[self.next() % WORDS.len()]).collect();
        s[0] = "The";
        format!("{}.", s.join(" "))
    }
    fn paragraph(&mut self, sentences: usize) -> String {
        (0..sentences)
            .map(|_| self.sentence())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// 60 varied documents, 20 that repeat one line over and over and 6 short notes (the Gopher
/// repetition filter drops both kinds), as JSONL; two eval texts from other seeds.
fn fixture(dir: &Path) -> PathBuf {
    let mut r = Lcg(7);
    let mut jsonl = String::new();
    for i in 0..80 {
        let text = if i % 4 == 3 {
            let line = r.sentence();
            vec![line; 12].join("\n")
        } else {
            (0..4)
                .map(|_| r.paragraph(4))
                .collect::<Vec<_>>()
                .join("\n")
        };
        jsonl.push_str(&serde_json::json!({"id": format!("d{i}"), "text": text}).to_string());
        jsonl.push('\n');
    }
    for i in 0..6 {
        let text = format!("Note {i}: quiet rivers cross green valleys near old stone bridges.");
        jsonl.push_str(&serde_json::json!({"id": format!("n{i}"), "text": text}).to_string());
        jsonl.push('\n');
    }
    std::fs::write(dir.join("corpus.jsonl"), jsonl).unwrap();
    let mut e = Lcg(99);
    std::fs::write(dir.join("eval-a.txt"), e.paragraph(30)).unwrap();
    std::fs::write(
        dir.join("eval-b.txt"),
        format!("{}\n{}\n", e.paragraph(10), e.paragraph(10)),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipeline.toml"),
        r#"
[[stages]]
type = "length_filter"
min_chars = 40

[[stages]]
type = "gopher_repetition"

[executor]
tasks = 1
workers = 1
"#,
    )
    .unwrap();
    let exp = format!(
        r#"
description = "test: does the repetition filter matter?"

[base]
pipeline = "{d}/pipeline.toml"
input = ["{d}/corpus.jsonl"]

[tokenizer]
vocab_size = 320

[train]
budget_tokens = 700          # 6 steps of 4 x 32 = 768 tokens
seeds = [1, 2]
batch_size = 4
seq_len = 32
lr = 3e-3
save_every = 2
hf = {{ n_layer = 1, n_embd = 32, n_head = 2, n_positions = 32 }}

[[eval]]
name = "a"
path = "{d}/eval-a.txt"

[[eval]]
name = "b"
path = "{d}/eval-b.txt"

[[variants]]
name = "no-repetition"
drop_stages = ["gopher_repetition"]

[[variants]]
name = "notes-only"
set = {{ "length_filter.max_chars" = 100 }}
drop_stages = ["gopher_repetition"]
"#,
        d = dir.display()
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, exp).unwrap();
    p
}

/// Records the steps; stops after step `stop_after`, or inside training after `stop_in_train`
/// optimizer steps of the training step `stop_train_step`.
#[derive(Default)]
struct Record {
    steps: Vec<(usize, String, bool)>,
    done: Vec<String>,
    stop_after: Option<usize>,
    stop_train: Option<(usize, usize)>,
    current: usize,
    train: TrainStop,
}

#[derive(Default)]
struct TrainStop {
    stop_at: Option<usize>,
    step: usize,
}

impl refinery_train::Observer for TrainStop {
    fn on_step(&mut self, r: &refinery_train::StepRecord) {
        self.step = r.step;
    }
    fn should_stop(&mut self) -> bool {
        self.stop_at.is_some_and(|s| self.step >= s)
    }
}

impl Observer for Record {
    fn on_step(&mut self, index: usize, _total: usize, what: &str, skipped: bool) {
        self.current = index;
        self.steps.push((index, what.to_string(), skipped));
    }
    fn on_done(&mut self, _index: usize, what: &str, _detail: &str) {
        self.done.push(what.to_string());
    }
    fn training(&mut self) -> Option<&mut dyn refinery_train::Observer> {
        self.train.stop_at = self
            .stop_train
            .filter(|(step, _)| *step == self.current)
            .map(|(_, at)| at);
        Some(&mut self.train)
    }
    fn should_stop(&mut self) -> bool {
        self.stop_after.is_some_and(|s| self.current >= s)
    }
}

fn run_to_end(exp: &Path, out: &Path, obs: &mut Record) -> Ablation {
    let checked = ExperimentConfig::load(exp, Some(out.to_path_buf())).unwrap();
    match run::run(&checked, obs).unwrap() {
        Outcome::Done(a) => *a,
        Outcome::Stopped { after } => panic!("stopped after {after}"),
    }
}

#[test]
fn end_to_end_table_resume_and_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = fixture(tmp.path());

    // 1. A whole run.
    let a_dir = tmp.path().join("a");
    let mut rec = Record::default();
    let a = run_to_end(&exp, &a_dir, &mut rec);
    // 3 variants x (refine, tokenize, overlap) + tokenizer + 3 x 2 x (train, evaluate) + summary
    assert_eq!(rec.steps.len(), 3 * 3 + 1 + 3 * 2 * 2 + 1);
    assert!(rec.steps.iter().all(|s| !s.2), "{:?}", rec.steps);
    assert_eq!(a.steps, 6);
    assert_eq!(a.tokens_per_run, 6 * 4 * 32);
    assert_eq!(a.seeds, vec![1, 2]);
    let names: Vec<&str> = a.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["base", "no-repetition", "notes-only"]);
    // The repetition filter removed the 20 repetitive documents and the notes (too short for
    // its n-gram rules) in the base only.
    assert_eq!(a.variants[0].docs_kept, 60);
    assert_eq!(a.variants[1].docs_kept, 86);
    assert_eq!(a.variants[2].docs_kept, 6);
    assert!(a.variants[1].tokens_kept > a.variants[0].tokens_kept);
    // The notes are far fewer tokens than a run's budget: repeated for many epochs.
    assert!(a.variants[2].epochs > 2.0, "{}", a.variants[2].epochs);
    assert!(a.variants[0].epochs < 1.0);
    for (set, file) in a.eval_sets.iter().zip(["eval-a.txt", "eval-b.txt"]) {
        let text = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        assert_eq!(set.bytes, text.len() as u64);
        assert!(set.round_trip, "{}", set.name);
        assert!(set.ngrams > 0);
    }
    let changes: std::collections::BTreeMap<&str, &str> = [
        ("base", "(the base pipeline)"),
        ("no-repetition", "drop gopher_repetition"),
        (
            "notes-only",
            "set length_filter.max_chars = 100; drop gopher_repetition",
        ),
    ]
    .into();
    for v in &a.variants {
        assert_eq!(v.runs.len(), 2, "{}", v.name);
        assert_eq!(v.change, changes[&*v.name]);
        assert_eq!(v.summary.len(), 2);
        assert_eq!(v.overlap.len(), 2);
        let expected_epochs = a.tokens_per_run as f64 / v.tokens_kept as f64;
        assert!((v.epochs - expected_epochs).abs() <= 1e-12 * expected_epochs);
        for (r, seed) in v.runs.iter().zip([1, 2]) {
            assert_eq!(r.seed, seed);
            assert!(r.final_train_loss.is_finite());
            assert_eq!(r.eval.len(), 2);
            for (e, set) in r.eval.iter().zip(&a.eval_sets) {
                assert_eq!(e.set, set.name);
                assert_eq!((e.bytes, e.tokens), (set.bytes, set.tokens));
                assert!(e.nats.is_finite() && e.nats > 0.0);
                // Recomputable from the recorded sum and byte count (to the last digits: the
                // values pass through JSON, which serde_json reads back within an ulp or so).
                let bpb = e.nats / std::f64::consts::LN_2 / e.bytes as f64;
                assert!((e.bits_per_byte - bpb).abs() <= 1e-12 * bpb, "{e:?}");
                let loss = e.nats / e.tokens as f64;
                assert!((e.loss - loss).abs() <= 1e-12 * loss, "{e:?}");
                // Trained for 6 steps: below the uniform ln(vocab) per token.
                assert!(e.loss < (a.vocab_size as f64).ln(), "{}", e.loss);
            }
        }
        for (si, s) in v.summary.iter().enumerate() {
            let x: Vec<f64> = v.runs.iter().map(|r| r.eval[si].bits_per_byte).collect();
            assert_eq!(s.n, 2);
            assert!((s.mean - (x[0] + x[1]) / 2.0).abs() < 1e-12);
            assert!((s.std - (x[0] - x[1]).abs() / 2f64.sqrt()).abs() < 1e-12);
        }
    }
    // The two seeds differ (init and data order), so the noise is measured.
    assert!(a.variants[0].summary[0].std > 0.0);
    assert_eq!(a.variants[0].summary[0].diff, 0.0);
    assert!(!a.variants[0].summary[0].significant);
    let json_a = std::fs::read(a_dir.join("ablation.json")).unwrap();
    let mut written = serde_json::to_vec_pretty(&a).unwrap();
    written.push(b'\n');
    assert_eq!(written, json_a);

    // 2. A rerun does nothing new: every step skipped, ablation.json untouched.
    let modified = std::fs::metadata(a_dir.join("ablation.json"))
        .unwrap()
        .modified()
        .unwrap();
    let mut again = Record::default();
    let a2 = run_to_end(&exp, &a_dir, &mut again);
    assert_eq!(a2, a);
    let skipped = again.steps.iter().filter(|s| s.2).count();
    assert_eq!(skipped, again.steps.len() - 1, "{:?}", again.steps);
    assert_eq!(again.done, ["summarize"]);
    assert_eq!(
        std::fs::metadata(a_dir.join("ablation.json"))
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );

    // 3. A lost marker: only that step is redone, to the same table.
    std::fs::remove_file(a_dir.join("variants/base/seed-2/eval.json")).unwrap();
    let mut redo = Record::default();
    run_to_end(&exp, &a_dir, &mut redo);
    assert_eq!(redo.done, ["evaluate base seed 2", "summarize"]);
    assert_eq!(std::fs::read(a_dir.join("ablation.json")).unwrap(), json_a);

    // 4. Interrupted twice in another directory, between steps and inside a training run,
    //    then continued: the same ablation.json as the uninterrupted run.
    let b_dir = tmp.path().join("b");
    let checked = ExperimentConfig::load(&exp, Some(b_dir.clone())).unwrap();
    let mut stop = Record {
        stop_after: Some(4), // after refining the 3 variants and training the tokenizer
        ..Record::default()
    };
    match run::run(&checked, &mut stop).unwrap() {
        Outcome::Stopped { after } => assert_eq!(after, 4),
        Outcome::Done(_) => panic!("did not stop"),
    }
    assert!(!b_dir
        .join("variants/no-repetition/tokens/stats.json")
        .exists());
    // Step 13 trains base seed 2: stop it after 3 of its 6 optimizer steps (checkpoint at 2).
    let mut stop = Record {
        stop_train: Some((13, 3)),
        ..Record::default()
    };
    match run::run(&checked, &mut stop).unwrap() {
        Outcome::Stopped { after } => assert_eq!(after, 12),
        Outcome::Done(_) => panic!("did not stop"),
    }
    assert!(b_dir.join("variants/base/seed-2/checkpoint-2").is_dir());
    assert!(!b_dir.join("variants/base/seed-2/checkpoint-6").exists());
    let mut rest = Record::default();
    let b = run_to_end(&exp, &b_dir, &mut rest);
    assert!(rest.done.contains(&"train base seed 2".to_string()));
    assert!(!rest.done.contains(&"train base seed 1".to_string()));
    assert_eq!(b, a);
    assert_eq!(std::fs::read(b_dir.join("ablation.json")).unwrap(), json_a);

    // 5. The report renders the ablation: the table row of every variant and both plots.
    let html = refinery_report::report(std::slice::from_ref(&a_dir)).unwrap();
    assert!(html.contains("(repeated)"));
    for v in ["base", "no-repetition", "notes-only"] {
        assert!(html.contains(&format!("data-variant=\"{v}\"")), "{v}");
    }
    assert!(html.contains("data-plot=\"ablation-bpb-0\""));
    assert!(html.contains("data-plot=\"ablation-bpb-1\""));

    // 6. Another experiment in the same directory is refused.
    let text = std::fs::read_to_string(&exp)
        .unwrap()
        .replace("seeds = [1, 2]", "seeds = [1, 3]");
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, text).unwrap();
    let checked = ExperimentConfig::load(&other, Some(a_dir.clone())).unwrap();
    let err = run::run(&checked, &mut ()).unwrap_err().to_string();
    assert!(err.contains("other settings"), "{err}");
}

fn config_error(dir: &Path, edit: impl Fn(String) -> String) -> String {
    let exp = fixture(dir);
    let text = edit(std::fs::read_to_string(&exp).unwrap());
    let p = dir.join("edited.toml");
    std::fs::write(&p, text).unwrap();
    ExperimentConfig::load(&p, Some(dir.join("out")))
        .unwrap_err()
        .to_string()
}

/// `(line N)` of the first line of the edited file containing `needle`.
fn line_of(dir: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(dir.join("edited.toml")).unwrap();
    let n = text.lines().position(|l| l.contains(needle)).unwrap();
    format!("(line {})", n + 1)
}

#[test]
fn one_seed_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = config_error(tmp.path(), |t| {
        t.replacen("seeds = [1, 2]", "seeds = [1]", 1)
    });
    assert!(e.contains("edited.toml: train.seeds: "), "{e}");
    assert!(e.contains("at least 2 seeds"), "{e}");
    assert!(e.contains(&line_of(tmp.path(), "seeds =")), "{e}");
    let e = config_error(tmp.path(), |t| {
        t.replacen("seeds = [1, 2]", "seeds = [1, 1]", 1)
    });
    assert!(e.contains("train.seeds: seed 1 appears twice"), "{e}");
}

#[test]
fn unknown_stage_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let e = config_error(tmp.path(), |t| {
        t.replacen("[\"gopher_repetition\"]", "[\"gopher_repetitio\"]", 1)
    });
    assert!(
        e.contains("edited.toml: variants[0].drop_stages[0]: no stage `gopher_repetitio`"),
        "{e}"
    );
    assert!(e.contains("0: length_filter, 1: gopher_repetition"), "{e}");
    assert!(e.contains(&line_of(tmp.path(), "drop_stages")), "{e}");
    // By index: out of range.
    let e = config_error(tmp.path(), |t| {
        t.replacen("[\"gopher_repetition\"]", "[5]", 1)
    });
    assert!(
        e.contains("variants[0].drop_stages[0]: stage index 5 is out of range"),
        "{e}"
    );
}

#[test]
fn other_config_errors_name_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    // A parameter set on a stage is checked by the stage's own config.
    let e = config_error(tmp.path(), |t| {
        t.replacen(
            "drop_stages = [\"gopher_repetition\"]",
            "set = { \"length_filter.min_charz\" = 5 }",
            1,
        )
    });
    assert!(e.contains("variant \"no-repetition\""), "{e}");
    assert!(e.contains("min_charz"), "{e}");
    // Unknown keys, with their line.
    let e = config_error(tmp.path(), |t| {
        t.replacen("budget_tokens", "budget_tokenz", 1)
    });
    assert!(
        e.contains("edited.toml: train.budget_tokenz: unknown field"),
        "{e}"
    );
    assert!(e.contains(&line_of(tmp.path(), "budget_tokenz")), "{e}");
    // A missing eval file.
    let e = config_error(tmp.path(), |t| t.replacen("eval-b.txt", "missing.txt", 1));
    assert!(e.contains("edited.toml: eval[1].path: "), "{e}");
    // A variant that changes nothing; a duplicate name.
    let e = config_error(tmp.path(), |t| {
        t.replacen("drop_stages = [\"gopher_repetition\"]", "", 1)
    });
    assert!(
        e.contains("variants[0]: variant \"no-repetition\" changes nothing"),
        "{e}"
    );
    let e = config_error(tmp.path(), |t| {
        t.replacen("\"no-repetition\"", "\"base\"", 1)
    });
    assert!(e.contains("variants[0].name"), "{e}");
    // Not a causal LM.
    let e = config_error(tmp.path(), |t| {
        t.replacen("[train]\n", "[train]\npreset = \"bert-tiny\"\n", 1)
    });
    assert!(e.contains("train.preset: bert-tiny trains a"), "{e}");
    // A set key without a stage.
    let e = config_error(tmp.path(), |t| {
        t.replacen(
            "drop_stages = [\"gopher_repetition\"]",
            "set = { \"min_chars\" = 5 }",
            1,
        )
    });
    assert!(e.contains("variants[0].set.\"min_chars\""), "{e}");
}

/// The worked example (bench/ablate/experiment.toml) parses and validates, with stand-in eval
/// files (the real ones are cut from ../shared by bench/ablate/run.sh).
#[test]
fn the_worked_example_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = root.join("bench/ablate/experiment.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut cfg = ExperimentConfig::from_toml(&text, "experiment.toml").unwrap();
    cfg.base.pipeline = Some(root.join("bench/ablate/base.toml"));
    let tmp = tempfile::tempdir().unwrap();
    for e in cfg.eval.iter_mut() {
        e.path = tmp.path().join(format!("{}.txt", e.name));
        std::fs::write(&e.path, "stand-in text").unwrap();
    }
    let checked = cfg.validate("experiment.toml", &text).unwrap();
    let names: Vec<&str> = checked.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["base", "no-repetition", "minhash"]);
    assert_eq!(checked.variants[1].change, "drop gopher_repetition");
    assert_eq!(checked.variants[2].change, "add dedup minhash");
    assert!(checked.variants[0].pipeline.dedup.is_empty());
    assert_eq!(checked.variants[2].pipeline.dedup.len(), 1);
    assert_eq!(checked.variants[1].pipeline.stages.len(), 3);
    assert_eq!((checked.steps, checked.tokens_per_run), (256, 524_288));
}

//! `refinery finetune`, `evaluate`, `classify`, `prompt` and `export-task` end to end, on a
//! BERT pretrained for a few steps here (tokenizer → shards → `pretrain --preset bert-tiny`)
//! and synthetic labelled files; and the bad inputs of fine-tuning, each with its message.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{ok, refinery};

const FILLER: [&str; 10] = [
    "the", "a", "film", "was", "and", "of", "it", "very", "some", "this",
];

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Sentences of 5 filler words and one key word; the key word is the label.
fn labelled(n: usize, seed: u64, keys: &[&str]) -> Vec<(String, String)> {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let label = keys[next() % keys.len()];
            let mut words: Vec<&str> = (0..5).map(|_| FILLER[next() % FILLER.len()]).collect();
            let at = next() % 6;
            words.insert(at, label);
            (words.join(" "), label.to_string())
        })
        .collect()
}

fn write_tsv(path: &Path, rows: &[(String, String)]) {
    let mut t = String::from("text\tlabel\n");
    for (a, b) in rows {
        t.push_str(&format!("{a}\t{b}\n"));
    }
    std::fs::write(path, t).unwrap();
}

/// A BERT (bert-tiny shrunk further) pretrained for 2 steps on the synthetic sentences: a
/// checkpoint directory with `tokenizer.json`.
fn pretrained_bert(d: &Path) -> PathBuf {
    // Documents of four sentences, so NSP finds segments (max_segment_tokens below).
    let mut docs = String::new();
    let sentences = labelled(400, 1, &["alpha", "beta", "gamma", "spam", "ham"]);
    for doc in sentences.chunks(4) {
        let text: Vec<&str> = doc.iter().map(|(t, _)| t.as_str()).collect();
        docs.push_str(&serde_json::json!({ "text": text.join(" . ") }).to_string());
        docs.push('\n');
    }
    let docs_path = d.join("docs.jsonl");
    std::fs::write(&docs_path, docs).unwrap();
    let (tok, tokens, run) = (d.join("tok.json"), d.join("tokens"), d.join("bert-run"));
    ok(&[
        "tokenizer",
        "train",
        "--model",
        "wordpiece",
        "--vocab-size",
        "200",
        &s(&docs_path),
        "-o",
        &s(&tok),
    ]);
    ok(&[
        "tokenize",
        "--tokenizer",
        &s(&tok),
        &s(&docs_path),
        "--output",
        &s(&tokens),
    ]);
    let config = d.join("bert.toml");
    std::fs::write(
        &config,
        "[task]\nkind = \"bert-mlm-nsp\"\n[model]\ndropout = 0.0\n\
         hf = { num_hidden_layers = 2, hidden_size = 32, num_attention_heads = 2, intermediate_size = 64 }\n\
         [data]\nseq_len = 32\nbatch_size = 4\n[data.nsp]\nmax_segment_tokens = 8\n\
         [optim]\nwarmup_steps = 1\n[run]\ntotal_steps = 2\neval_every = 0\n",
    )
    .unwrap();
    ok(&[
        "pretrain",
        "--config",
        &s(&config),
        "--data",
        &s(&tokens),
        "--tokenizer",
        &s(&tok),
        "--out",
        &s(&run),
        "--quiet",
    ]);
    run.join("checkpoint-2")
}

struct Setup {
    _tmp: tempfile::TempDir,
    d: PathBuf,
    bert: PathBuf,
    train: PathBuf,
    dev: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let bert = pretrained_bert(&d);
    let (train, dev) = (d.join("train.tsv"), d.join("dev.tsv"));
    write_tsv(&train, &labelled(320, 10, &["alpha", "beta", "gamma"]));
    write_tsv(&dev, &labelled(90, 11, &["alpha", "beta", "gamma"]));
    Setup {
        _tmp: tmp,
        d,
        bert,
        train,
        dev,
    }
}

fn fail(args: &[&str]) -> String {
    let out = refinery().args(args).output().unwrap();
    assert!(!out.status.success(), "refinery {args:?} succeeded");
    assert_eq!(out.status.code(), Some(1), "exit code (not a panic)");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn finetune_args<'a>(st: &'a Setup, out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "finetune",
        "--model",
        &s(&st.bert),
        "--train",
        &s(&st.train),
        "--dev",
        &s(&st.dev),
        "--out",
        out,
        "--epochs",
        "8",
        "--lr",
        "1e-2",
        "--batch-size",
        "16",
        "--max-len",
        "16",
        "--quiet",
        "--json",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

/// `refinery classify --model MODEL` on a plain line, a JSONL line and a plain line: the
/// output lines in order.
fn classify_three(model: &Path) -> Vec<serde_json::Value> {
    let mut child = refinery()
        .args(["classify", "--model", &s(model)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"the film alpha was very\n{\"text\": \"some gamma of it\"}\nit beta and\n")
        .unwrap();
    let r = child.wait_with_output().unwrap();
    assert!(r.status.success());
    String::from_utf8_lossy(&r.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_args(args: &[String]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a)
}

#[test]
fn finetune_evaluate_classify_and_report_bad_rows() {
    let st = setup();
    // A bad row in the training file is reported, not silently dropped.
    let mut t = std::fs::read_to_string(&st.train).unwrap();
    t.push_str("\tbeta\nonly text and no label\t\n");
    std::fs::write(&st.train, t).unwrap();
    let out = st.d.join("clf");
    let r = run_args(&finetune_args(&st, &s(&out), &[]));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let best = v["best"]["eval"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(best > 0.8, "dev accuracy {best} (chance 1/3): {v}");
    assert_eq!(v["data"][0]["skipped"].as_array().unwrap().len(), 2, "{v}");
    let report = std::fs::read_to_string(out.join("data_report.json")).unwrap();
    assert!(
        report.contains("empty text") && report.contains("missing label"),
        "{report}"
    );
    for dir in ["best", "final"] {
        let cfg = std::fs::read_to_string(out.join(dir).join("config.json")).unwrap();
        assert!(cfg.contains("BertForSequenceClassification") && cfg.contains("id2label"));
    }
    assert!(out.join("confusion.json").is_file());

    // evaluate: one JSON object with accuracy, macro_f1, n; the table otherwise.
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&out.join("best")),
        "--data",
        &s(&st.dev),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["n"], 90);
    assert!((e["accuracy"].as_f64().unwrap() - best).abs() < 1e-9, "{e}");
    assert!(e["macro_f1"].as_f64().unwrap() > 0.7);
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&out.join("best")),
        "--data",
        &s(&st.dev),
    ]);
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(
        table.contains("macro-F1") && table.contains("confusion"),
        "{table}"
    );

    // classify: plain lines and JSONL in, a label and probabilities out, in order.
    let lines = classify_three(&out.join("best"));
    let labels: Vec<&str> = lines.iter().map(|l| l["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["alpha", "gamma", "beta"]);
    let p: f64 = lines[0]["probs"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4);
}

#[test]
fn multitask_cloze_and_prompt_commands_run() {
    let st = setup();
    let spam = st.d.join("spam.tsv");
    write_tsv(&spam, &labelled(200, 20, &["spam", "ham"]));
    let out = st.d.join("multi");
    let r = ok(&[
        "finetune",
        "--model",
        &s(&st.bert),
        "--task",
        &format!("keys={},{}", s(&st.train), s(&st.dev)),
        "--task",
        &format!("spam={}", s(&spam)),
        "--out",
        &s(&out),
        "--steps",
        "40",
        "--lr",
        "3e-3",
        "--batch-size",
        "16",
        "--max-len",
        "16",
        "--quiet",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(
        v["final"]["eval"]["metrics"]["keys/accuracy"].is_number(),
        "{v}"
    );
    assert!(
        v["final"]["eval"]["metrics"]["spam/accuracy"].is_number(),
        "{v}"
    );
    let single = st.d.join("spam-only");
    ok(&[
        "export-task",
        "--model",
        &s(&out.join("final")),
        "--task",
        "spam",
        "--out",
        &s(&single),
    ]);
    let cfg = std::fs::read_to_string(single.join("config.json")).unwrap();
    assert!(cfg.contains("\"spam\"") && cfg.contains("\"ham\""), "{cfg}");

    // Zero-shot cloze and embedding prompting print accuracy on the dev file.
    let r = ok(&[
        "prompt",
        "--mode",
        "cloze",
        "--model",
        &s(&st.bert),
        "--data",
        &s(&st.dev),
        "--label",
        "alpha=alpha",
        "--label",
        "beta=beta",
        "--label",
        "gamma=gamma",
        "--json",
    ]);
    let m: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(m["n"], 90.0);
    let r = ok(&[
        "prompt",
        "--mode",
        "embedding",
        "--model",
        &s(&st.bert),
        "--data",
        &s(&st.dev),
        "--label",
        "alpha=alpha",
        "--label",
        "beta=beta",
        "--label",
        "gamma=gamma",
        "--json",
    ]);
    let m: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(m["accuracy"].is_number());
}

#[test]
fn bad_inputs_of_finetuning_have_clear_errors() {
    let st = setup();
    let out = s(&st.d.join("x"));
    // One label only.
    let one = st.d.join("one.tsv");
    write_tsv(&one, &labelled(20, 3, &["alpha"]));
    let mut a = finetune_args(&st, &out, &[]);
    a[4] = s(&one);
    let e = fail(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("one.tsv") && e.contains("at least two labels"),
        "{e}"
    );
    // Empty training file.
    let empty = st.d.join("empty.tsv");
    std::fs::write(&empty, "text\tlabel\n").unwrap();
    a[4] = s(&empty);
    let e = fail(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("empty.tsv") && e.contains("no usable examples"),
        "{e}"
    );
    // A dev label the training set does not have: file and line.
    let dev = st.d.join("dev-bad.tsv");
    write_tsv(
        &dev,
        &[
            ("alpha the".into(), "alpha".into()),
            ("delta a".into(), "delta".into()),
        ],
    );
    let mut a = finetune_args(&st, &out, &[]);
    a[6] = s(&dev);
    let e = fail(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("dev-bad.tsv") && e.contains("line 3") && e.contains("delta"),
        "{e}"
    );
    // A checkpoint without a classification head cannot be evaluated.
    let e = fail(&["evaluate", "--model", &s(&st.bert), "--data", &s(&st.dev)]);
    assert!(
        e.contains("bert-mlm-nsp") || e.contains("not a sequence classifier"),
        "{e}"
    );
    // A tokenizer that does not belong to the model (more ids than embedding rows).
    let big = st.d.join("big-tok.json");
    let words = st.d.join("words.jsonl");
    let mut text = String::new();
    let mut x = 5u64;
    for _ in 0..3000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        let w: String = (0..6)
            .map(|i| (b'a' + ((x >> (8 * i)) % 26) as u8) as char)
            .collect();
        text.push_str(&format!("{{\"text\": \"{w} {w}\"}}\n"));
    }
    std::fs::write(&words, text).unwrap();
    ok(&[
        "tokenizer",
        "train",
        "--model",
        "wordpiece",
        "--vocab-size",
        "2000",
        &s(&words),
        "-o",
        &s(&big),
    ]);
    let a = finetune_args(&st, &out, &["--tokenizer", &s(&big)]);
    let e = fail(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("does not belong to this model"), "{e}");
    // A loss that turns NaN/infinite stops the run with a clear message; the checkpoints
    // written before stay.
    let cfg = st.d.join("nan.toml");
    std::fs::write(
        &cfg,
        "[task]\nkind = \"classify\"\nmax_len = 16\n[data]\nbatch_size = 16\n\
         [optim]\nlr = 3e38\nmin_lr = 3e38\nwarmup_steps = 0\ngrad_clip = 0.0\n\
         [run]\nepochs = 3\nsave_every = 1\neval_every = 0\nbest_metric = \"accuracy\"\n",
    )
    .unwrap();
    let nan_out = st.d.join("nan");
    let e = fail(&[
        "finetune",
        "--config",
        &s(&cfg),
        "--model",
        &s(&st.bert),
        "--train",
        &s(&st.train),
        "--dev",
        &s(&st.dev),
        "--out",
        &s(&nan_out),
        "--quiet",
    ]);
    assert!(e.contains("not finite"), "{e}");
    assert!(
        nan_out.join("checkpoint-1").is_dir(),
        "the last good checkpoint stays"
    );
}

/// `refinery distill`: a fine-tuned 2-layer teacher into a 1-layer student with the default
/// preset (soft labels + hidden states); best/final are plain classifiers that `evaluate`
/// reads; the table is printed as JSON and written; a bad layer map names both models.
#[test]
fn distill_a_finetuned_teacher() {
    let st = setup();
    let teacher_run = st.d.join("teacher");
    run_args(&finetune_args(&st, &s(&teacher_run), &[]));
    let teacher = teacher_run.join("final");
    let out = st.d.join("student");
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "distill",
            "--teacher",
            &s(&teacher),
            "--train",
            &s(&st.train),
            "--dev",
            &s(&st.dev),
            "--out",
            &s(out),
            "--student-layers",
            "1",
            "--steps",
            "40",
            "--lr",
            "5e-3",
            "--batch-size",
            "16",
            "--quiet",
            "--json",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let r = run_args(&args(&out, &[]));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["completed"], true, "{v}");
    let models = v["models"].as_array().unwrap();
    assert_eq!(models[0]["model"], "teacher");
    assert_eq!(models[1]["model"], "student");
    let (tp, sp) = (
        models[0]["params"].as_u64().unwrap(),
        models[1]["params"].as_u64().unwrap(),
    );
    assert!(sp < tp, "student {sp} params, teacher {tp}");
    for m in models {
        assert!(m["latency_ms"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["throughput_per_s"].as_f64().unwrap() > 0.0, "{m}");
    }
    let acc = models[1]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "student accuracy {acc}: {v}");
    assert!(out.join("distill_report.json").is_file());
    for dir in ["best", "final"] {
        let d = out.join(dir);
        let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
        assert!(
            cfg.contains("BertForSequenceClassification")
                && cfg.contains("\"num_hidden_layers\": 1"),
            "{cfg}"
        );
        assert!(!d.join("distill_projections.safetensors").exists());
    }
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&out.join("best")),
        "--data",
        &s(&st.dev),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(
        (e["accuracy"].as_f64().unwrap() - models[1]["metrics"]["accuracy"].as_f64().unwrap())
            .abs()
            < 1e-9,
        "{e}"
    );

    // A layer map past the teacher's 2 layers: an error naming both models.
    let config = st.d.join("bad.toml");
    std::fs::write(
        &config,
        "[student]\nlayers = 1\n[loss.soft]\nalpha = 0.5\n[loss.hidden]\nmap = [5]\n\
         [run]\nbest_metric = \"accuracy\"\neval_every = 0\n",
    )
    .unwrap();
    let mut a = args(&st.d.join("bad"), &["--config", &s(&config)]);
    a.retain(|x| x != "--json");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let e = fail(&a);
    assert!(
        e.contains(&s(&teacher)) && e.contains("student") && e.contains("teacher layer 5"),
        "{e}"
    );
}

#[test]
fn quantize_then_evaluate_classify_and_compare() {
    let st = setup();
    let out = st.d.join("clf");
    let r = run_args(&finetune_args(&st, &s(&out), &[]));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let f32_acc = v["best"]["eval"]["metrics"]["accuracy"].as_f64().unwrap();
    let best = out.join("best");
    let int8 = st.d.join("int8");
    let r = ok(&["quantize", "--model", &s(&best), "--out", &s(&int8)]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("int8") && text.contains("intermediate"),
        "{text}"
    );
    let cfg = std::fs::read_to_string(int8.join("config.json")).unwrap();
    assert!(cfg.contains("refinery_quantization"), "{cfg}");

    // evaluate and classify run the int8 model transparently.
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&int8),
        "--data",
        &s(&st.dev),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["n"], 90);
    let q_acc = e["accuracy"].as_f64().unwrap();
    assert!(
        (q_acc - f32_acc).abs() <= 0.05,
        "int8 {q_acc} vs f32 {f32_acc}"
    );
    let labels = |model: &Path| -> Vec<String> {
        classify_three(model)
            .iter()
            .map(|v| v["label"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(labels(&int8), labels(&best));

    // Static scheme with calibration; its bad inputs.
    let stat = st.d.join("static");
    ok(&[
        "quantize",
        "--model",
        &s(&best),
        "--out",
        &s(&stat),
        "--scheme",
        "static",
        "--calibration",
        &s(&st.train),
        "--calibration-rows",
        "64",
    ]);
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&stat),
        "--data",
        &s(&st.dev),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(
        (e["accuracy"].as_f64().unwrap() - f32_acc).abs() <= 0.1,
        "{e}"
    );
    let err = fail(&[
        "quantize",
        "--model",
        &s(&best),
        "--out",
        &s(&st.d.join("x")),
        "--scheme",
        "static",
    ]);
    assert!(err.contains("--calibration"), "{err}");
    let empty = st.d.join("empty.tsv");
    std::fs::write(&empty, "text\tlabel\n").unwrap();
    let err = fail(&[
        "quantize",
        "--model",
        &s(&best),
        "--out",
        &s(&st.d.join("y")),
        "--scheme",
        "static",
        "--calibration",
        &s(&empty),
    ]);
    assert!(err.contains("empty.tsv"), "{err}");
    let err = fail(&[
        "quantize",
        "--model",
        &s(&int8),
        "--out",
        &s(&st.d.join("z")),
    ]);
    assert!(err.contains("already quantized"), "{err}");

    // compare: one row per model, each measured in its own process.
    let json = st.d.join("compare.json");
    let r = ok(&[
        "compare",
        &s(&best),
        &format!("engine:{}", s(&best)),
        &s(&int8),
        "--data",
        &s(&st.dev),
        "--latency-n",
        "5",
        "--repeats",
        "1",
        "--json",
        &s(&json),
    ]);
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(
        table.contains("burn-f32") && table.contains("engine-f32") && table.contains("engine-int8"),
        "{table}"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 3);
    assert!((rows[0]["accuracy"].as_f64().unwrap() - f32_acc).abs() < 1e-9);
    assert!((rows[1]["accuracy"].as_f64().unwrap() - f32_acc).abs() <= 0.02);
    assert!((rows[2]["accuracy"].as_f64().unwrap() - q_acc).abs() < 1e-9);
    assert!(rows[2]["size_bytes"].as_u64().unwrap() * 2 < rows[0]["size_bytes"].as_u64().unwrap());
    for r in &rows {
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
        assert!(r["throughput_sps"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn prune_heads_and_ffn_then_recover_quantize_and_compare() {
    let st = setup();
    let out = st.d.join("clf");
    run_args(&finetune_args(&st, &s(&out), &[]));
    let best = out.join("best");
    let eval = |model: &Path| -> serde_json::Value {
        let r = ok(&[
            "evaluate",
            "--model",
            &s(model),
            "--data",
            &s(&st.dev),
            "--json",
        ]);
        serde_json::from_slice(&r.stdout).unwrap()
    };

    // Heads by gradient importance on the training data: 2 of the 4 heads (2 layers × 2) in
    // rounds of one; every layer keeps one.
    let heads = st.d.join("heads");
    let r = ok(&[
        "prune",
        "--model",
        &s(&best),
        "--method",
        "heads",
        "--sparsity",
        "0.5",
        "--step",
        "0.25",
        "--data",
        &s(&st.train),
        "--samples",
        "64",
        "--out",
        &s(&heads),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(report["criterion"], "importance");
    assert_eq!(report["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(report["rounds"][0]["rows"], 64);
    assert_eq!(
        (
            report["units_before"].clone(),
            report["units_after"].clone()
        ),
        (4.into(), 2.into())
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(heads.join("config.json")).unwrap()).unwrap();
    let pruned = cfg["pruned_heads"].as_object().unwrap();
    assert_eq!(pruned.len(), 2, "{cfg}");
    assert!(pruned.values().all(|v| v.as_array().unwrap().len() == 1));
    let e = eval(&heads);
    assert_eq!(e["n"], 90);

    // The engine runs the pruned model as burn does.
    let json = st.d.join("compare.json");
    ok(&[
        "compare",
        &s(&heads),
        &format!("engine:{}", s(&heads)),
        "--data",
        &s(&st.dev),
        "--latency-n",
        "3",
        "--repeats",
        "1",
        "--json",
        &s(&json),
    ]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let acc = |r: &serde_json::Value| r["accuracy"].as_f64().unwrap();
    assert!((acc(&rows[0]) - e["accuracy"].as_f64().unwrap()).abs() < 1e-9);
    assert!((acc(&rows[1]) - acc(&rows[0])).abs() <= 0.02, "{rows:?}");

    // Recovery: fine-tuning starts from the pruned classifier and keeps its shape.
    let rec = st.d.join("recovered");
    let mut args = finetune_args(&st, &s(&rec), &[]);
    args[2] = s(&heads); // --model
    args[10] = "2".into(); // --epochs
    run_args(&args);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rec.join("best/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["pruned_heads"].as_object().unwrap().len(), 2, "{cfg}");
    assert_eq!(eval(&rec.join("best"))["n"], 90);

    // FFN neurons by importance, then int8 of the pruned model.
    let ffn = st.d.join("ffn");
    ok(&[
        "prune",
        "--model",
        &s(&heads),
        "--method",
        "ffn",
        "--sparsity",
        "0.5",
        "--data",
        &s(&st.train),
        "--samples",
        "32",
        "--out",
        &s(&ffn),
    ]);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ffn.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["intermediate_size"], 32);
    assert_eq!(eval(&ffn)["n"], 90);
    let int8 = st.d.join("ffn-int8");
    ok(&["quantize", "--model", &s(&ffn), "--out", &s(&int8)]);
    assert_eq!(eval(&int8)["n"], 90);

    // Bad requests.
    let m = s(&best);
    let err = fail(&[
        "prune",
        "--model",
        &m,
        "--method",
        "heads",
        "--heads",
        "0:0,1",
        "--out",
        &s(&st.d.join("x1")),
    ]);
    assert!(err.contains("layer 0, which has 2"), "{err}");
    let err = fail(&[
        "prune",
        "--model",
        &m,
        "--method",
        "heads",
        "--heads",
        "0:a",
        "--out",
        &s(&st.d.join("x2")),
    ]);
    assert!(err.contains("--heads: head `a`"), "{err}");
    let err = fail(&[
        "prune",
        "--model",
        &m,
        "--method",
        "heads",
        "--sparsity",
        "0.5",
        "--sparse",
        "--out",
        &s(&st.d.join("x3")),
    ]);
    assert!(err.contains("--method magnitude"), "{err}");
    let err = fail(&[
        "prune",
        "--model",
        &m,
        "--sparsity",
        "0.5",
        "--data",
        &s(&st.train),
        "--out",
        &s(&st.d.join("x4")),
    ]);
    assert!(err.contains("--method heads|ffn"), "{err}");
    let err = fail(&[
        "prune",
        "--model",
        &s(&int8),
        "--method",
        "ffn",
        "--sparsity",
        "0.5",
        "--out",
        &s(&st.d.join("x5")),
    ]);
    assert!(err.contains("prune the f32 model"), "{err}");
}

#[test]
fn finetune_with_gradual_pruning_records_it_like_one_shot() {
    let st = setup();
    let out = st.d.join("pruned");
    let mut args = finetune_args(&st, &s(&out), &["--prune-sparsity", "0.5"]);
    let at = args.iter().position(|a| a == "--epochs").unwrap();
    args[at + 1] = "2".into();
    let r = run_args(&args);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["pruned"].as_array().unwrap().len(), 2, "{v}");
    // 2 epochs of 20 steps: masks grow until 0.75 · 40 = 30; best/ is picked at 40.
    assert_eq!(v["best"]["step"], 40, "{v}");
    for dir in ["best", "final"] {
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(dir).join("config.json")).unwrap(),
        )
        .unwrap();
        let p = &cfg["refinery_pruning"];
        assert_eq!(p["method"], "magnitude", "{cfg}");
        assert_eq!(p["schedule"], "gradual");
        assert_eq!(p["scope"], "global");
        assert_eq!(p["sparsity"], 0.5);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(dir).join("pruning.json")).unwrap(),
        )
        .unwrap();
        let t = &report["totals"];
        let (n, zeros) = (t["params"].as_u64().unwrap(), t["zeros"].as_u64().unwrap());
        assert_eq!(zeros, (0.5 * n as f64).round() as u64, "{report}");
        assert_eq!(report["gradual"]["every"], 10);
        let skipped = report["skipped"].to_string();
        assert!(skipped.contains("classifier.weight") && skipped.contains("word_embeddings"));
    }
    // The pruned model evaluates like any classifier.
    let r = ok(&[
        "evaluate",
        "--model",
        &s(&out.join("best")),
        "--data",
        &s(&st.dev),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(e["n"], 90);

    let bad = finetune_args(&st, &s(&st.d.join("bad")), &["--prune-sparsity", "1.2"]);
    let a: Vec<&str> = bad.iter().map(String::as_str).collect();
    let e = fail(&a);
    assert!(e.contains("prune.sparsity") && e.contains("[0, 1)"), "{e}");
}

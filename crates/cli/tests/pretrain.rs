//! `refinery pretrain` and `refinery eval-lm` end to end on shards written in a tempdir:
//! tokenizer → shards → a few GPT steps → resume with more steps → eval-lm; BERT MLM + NSP.

mod common;

use std::path::Path;

use common::ok;

fn write_docs(dir: &Path) -> String {
    let words = [
        "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "while", "birds",
        "sang", "in", "trees",
    ];
    let mut x: u64 = 7;
    let mut text = String::new();
    for _ in 0..200 {
        let mut doc = Vec::new();
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..(20 + (x >> 60) * 4) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            doc.push(words[(x >> 59) as usize % words.len()]);
        }
        text.push_str(&serde_json::json!({ "text": doc.join(" ") + "." }).to_string());
        text.push('\n');
    }
    let path = dir.join("docs.jsonl");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn pretrain_gpt_resume_and_eval_lm() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let docs = write_docs(d);
    let (tok, tokens, out) = (d.join("tok.json"), d.join("tokens"), d.join("run"));
    ok(&[
        "tokenizer",
        "train",
        "--model",
        "bpe",
        "--vocab-size",
        "200",
        &docs,
        "-o",
        &s(&tok),
    ]);
    ok(&[
        "tokenize",
        "--tokenizer",
        &s(&tok),
        &docs,
        "--output",
        &s(&tokens),
    ]);
    let config = d.join("train.toml");
    std::fs::write(
        &config,
        "[task]\nkind = \"gpt-clm\"\n[model]\ndropout = 0.0\nhf = { n_layer = 1, n_embd = 32, n_head = 2 }\n\
         [data]\nseq_len = 32\nbatch_size = 4\nvalidation_fraction = 0.1\n\
         [optim]\nlr = 3e-3\nwarmup_steps = 1\n\
         [run]\ntotal_steps = 3\neval_every = 2\neval_batches = 2\nsave_every = 2\nkeep = 2\n",
    )
    .unwrap();
    let base = [
        "pretrain",
        "--config",
        &s(&config),
        "--data",
        &s(&tokens),
        "--tokenizer",
        &s(&tok),
        "--out",
        &s(&out),
        "--quiet",
        "--json",
    ];
    let first: serde_json::Value = serde_json::from_slice(&ok(&base).stdout).unwrap();
    assert_eq!(first["final_step"], 3);
    assert!(first["completed"].as_bool().unwrap());
    // Extend the run: resumes from checkpoint-3 instead of starting over.
    let mut more = base.to_vec();
    more.extend(["--steps", "5"]);
    let second: serde_json::Value = serde_json::from_slice(&ok(&more).stdout).unwrap();
    assert_eq!(second["start_step"], 3);
    assert_eq!(second["final_step"], 5);
    assert!(second["eval"]["perplexity"].as_f64().unwrap().is_finite());

    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5]);
    let ckpt = out.join("checkpoint-5");
    for f in [
        "config.json",
        "model.safetensors",
        "optimizer.bpk",
        "trainer_state.json",
        "tokenizer.json",
    ] {
        assert!(ckpt.join(f).is_file(), "{f} missing in {}", ckpt.display());
    }
    assert!(
        !out.join("checkpoint-2").exists(),
        "keep = 2 prunes older checkpoints"
    );

    let eval: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval-lm",
            "--model",
            &s(&ckpt),
            "--data",
            &s(&tokens),
            "--seq-len",
            "32",
            "--max-batches",
            "3",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let (loss, ppl) = (
        eval["loss"].as_f64().unwrap(),
        eval["perplexity"].as_f64().unwrap(),
    );
    assert!(loss > 0.0 && loss < (200f64).ln() + 1.0, "{eval}");
    assert!((ppl - loss.exp()).abs() < 1e-6 * ppl, "{eval}");
    assert_eq!(eval["batches"], 3);
    assert_eq!(eval["tokens"], 3 * 8 * 32);

    // int8: quantize the checkpoint; eval-lm runs it on the engine with the same report, a
    // perplexity within 2% of f32's; generate runs it too.
    let int8 = d.join("int8");
    let q: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "quantize",
            "--model",
            &s(&ckpt),
            "--out",
            &s(&int8),
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(
        q["report"]["config"]["transposed"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let eval_int8: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval-lm",
            "--model",
            &s(&int8),
            "--data",
            &s(&tokens),
            "--seq-len",
            "32",
            "--max-batches",
            "3",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&eval_int8), keys(&eval));
    assert_eq!(keys(&eval_int8["metrics"]), keys(&eval["metrics"]));
    assert_eq!(eval_int8["tokens"], eval["tokens"]);
    let ppl8 = eval_int8["perplexity"].as_f64().unwrap();
    assert!(
        ppl8 != ppl && (ppl8 - ppl).abs() < 0.02 * ppl,
        "int8 {ppl8} vs f32 {ppl}"
    );
    // Static scales calibrated on the token shards: within 5% of f32's perplexity.
    let int8_static = d.join("int8-static");
    ok(&[
        "quantize",
        "--model",
        &s(&ckpt),
        "--out",
        &s(&int8_static),
        "--scheme",
        "static",
        "--calibration",
        &s(&tokens),
        "--calibration-rows",
        "16",
    ]);
    let eval_static: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval-lm",
            "--model",
            &s(&int8_static),
            "--data",
            &s(&tokens),
            "--seq-len",
            "32",
            "--max-batches",
            "3",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let ppl_static = eval_static["perplexity"].as_f64().unwrap();
    assert!(
        (ppl_static - ppl).abs() < 0.05 * ppl,
        "static int8 {ppl_static} vs f32 {ppl}"
    );
    let gen: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "generate",
            "--model",
            &s(&int8),
            "--prompt",
            "the cat",
            "--temperature",
            "0",
            "--max-new-tokens",
            "5",
            "--no-eos",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(gen["tokens"].as_array().unwrap().len(), 5);

    // compare on the same rows as eval-lm (3 batches of 8 × 32 from the start of the shards):
    // the same perplexities; burn and the engine's f32 agree.
    let json = d.join("compare.json");
    let r = ok(&[
        "compare",
        &s(&ckpt),
        &format!("engine:{}", s(&ckpt)),
        &s(&int8),
        "--data",
        &s(&tokens),
        "--seq-len",
        "32",
        "--batch-size",
        "8",
        "--latency-n",
        "24",
        "--repeats",
        "1",
        "--json",
        &s(&json),
    ]);
    let table = String::from_utf8_lossy(&r.stdout);
    assert!(
        table.contains("perplexity") && table.contains("engine-int8"),
        "{table}"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let p = |r: &serde_json::Value| r["perplexity"].as_f64().unwrap();
    assert!(
        (p(&rows[0]) - ppl).abs() < 1e-4 * ppl,
        "{rows:?} vs eval-lm {ppl}"
    );
    assert!(
        (p(&rows[1]) - ppl).abs() < 1e-4 * ppl,
        "{rows:?} vs eval-lm {ppl}"
    );
    assert!(
        (p(&rows[2]) - ppl8).abs() < 1e-4 * ppl8,
        "{rows:?} vs eval-lm {ppl8}"
    );
    for r in &rows {
        assert_eq!(r["n"], 24);
        assert_eq!(r["seq_len"], 32);
        assert!(r["macro_f1"].is_null(), "{r}");
        assert!(r["decode_tokens_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["throughput_sps"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(rows[2]["size_bytes"].as_u64().unwrap() * 2 < rows[0]["size_bytes"].as_u64().unwrap());
}

#[test]
fn pretrain_bert_mlm_nsp_and_config_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let docs = write_docs(d);
    let (tok, tokens, out) = (d.join("wp.json"), d.join("tokens"), d.join("run"));
    ok(&[
        "tokenizer",
        "train",
        "--model",
        "wordpiece",
        "--vocab-size",
        "200",
        &docs,
        "-o",
        &s(&tok),
    ]);
    ok(&[
        "tokenize",
        "--tokenizer",
        &s(&tok),
        &docs,
        "--output",
        &s(&tokens),
    ]);
    let config = d.join("bert.toml");
    std::fs::write(
        &config,
        "[task]\nkind = \"bert-mlm-nsp\"\n[model]\nhf = { num_hidden_layers = 1, hidden_size = 32, \
         num_attention_heads = 2, intermediate_size = 64 }\n\
         [data]\nseq_len = 32\nbatch_size = 4\nvalidation_fraction = 0.1\n\
         [data.nsp]\nmax_segment_tokens = 14\n\
         [optim]\nwarmup_steps = 1\n[run]\ntotal_steps = 2\neval_every = 2\neval_batches = 1\n",
    )
    .unwrap();
    let run: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "pretrain",
            "--config",
            &s(&config),
            "--data",
            &s(&tokens),
            "--tokenizer",
            &s(&tok),
            "--out",
            &s(&out),
            "--quiet",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let m = &run["eval"]["metrics"];
    for k in ["mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"] {
        assert!(m[k].as_f64().is_some(), "{k} missing: {run}");
    }
    // eval-lm finds the tokenizer in the checkpoint.
    ok(&[
        "eval-lm",
        "--model",
        &s(&out.join("checkpoint-2")),
        "--data",
        &s(&tokens),
        "--seq-len",
        "32",
        "--max-batches",
        "1",
    ]);

    // Without a tokenizer there are no [MASK]/[CLS] ids: the error names the key.
    let bad = common::refinery()
        .args([
            "pretrain",
            "--config",
            &s(&config),
            "--data",
            &s(&tokens),
            "--out",
            &s(&d.join("other")),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("task.mask_token_id") && err.contains("bert.toml"),
        "{err}"
    );
    // A typo in the config names the key and line.
    std::fs::write(&config, "[optim]\nlr = 1e-3\nwarmpu_steps = 3\n").unwrap();
    let bad = common::refinery()
        .args([
            "pretrain",
            "--config",
            &s(&config),
            "--data",
            &s(&tokens),
            "--out",
            &s(&out),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("optim") && err.contains("line 3"), "{err}");
}

#[test]
fn pretrain_bart_tiny_and_eval_lm() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let docs = write_docs(d);
    let (tok, tokens, out) = (d.join("bpe.json"), d.join("tokens"), d.join("run"));
    ok(&[
        "tokenizer",
        "train",
        "--model",
        "bpe",
        "--vocab-size",
        "200",
        "--special",
        "<s>",
        "--special",
        "<pad>",
        "--special",
        "</s>",
        "--special",
        "<mask>",
        &docs,
        "-o",
        &s(&tok),
    ]);
    ok(&[
        "tokenize",
        "--tokenizer",
        &s(&tok),
        &docs,
        "--output",
        &s(&tokens),
    ]);
    // The bart-tiny preset, shrunk to a few seconds (its warmup alone is 100 steps).
    let preset =
        String::from_utf8(ok(&["pretrain", "--preset", "bart-tiny", "--print-config"]).stdout)
            .unwrap();
    assert!(preset.contains("kind = \"bart-dae\""), "{preset}");
    let mut text = preset;
    for (from, to) in [
        ("seq_len = 128", "seq_len = 30"),
        ("batch_size = 16", "batch_size = 4"),
        ("validation_fraction = 0.01", "validation_fraction = 0.1"),
        ("warmup_steps = 100", "warmup_steps = 1"),
        ("eval_every = 200", "eval_every = 3"),
        ("eval_batches = 20", "eval_batches = 2"),
    ] {
        assert!(text.contains(from), "{from} not in the preset:\n{text}");
        text = text.replace(from, to);
    }
    let config = d.join("bart.toml");
    std::fs::write(&config, text).unwrap();
    let run: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "pretrain",
            "--config",
            &s(&config),
            "--data",
            &s(&tokens),
            "--tokenizer",
            &s(&tok),
            "--out",
            &s(&out),
            "--steps",
            "3",
            "--quiet",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(run["final_step"], 3, "{run}");
    let m = &run["eval"]["metrics"];
    let acc = m["dae_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{run}");
    let ppl = run["eval"]["perplexity"].as_f64().unwrap();
    assert!(
        (ppl - m["dae_loss"].as_f64().unwrap().exp()).abs() < 1e-9 * ppl,
        "{run}"
    );
    let ckpt = out.join("checkpoint-3");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "bart");
    // <s> <pad> </s> <mask> are the tokenizer's first ids.
    assert_eq!(
        (
            &cfg["bos_token_id"],
            &cfg["pad_token_id"],
            &cfg["eos_token_id"]
        ),
        (&0.into(), &1.into(), &2.into())
    );

    let eval_lm = |model: &Path| -> serde_json::Value {
        serde_json::from_slice(
            &ok(&[
                "eval-lm",
                "--model",
                &s(model),
                "--data",
                &s(&tokens),
                "--seq-len",
                "30",
                "--max-batches",
                "2",
                "--batch-size",
                "4",
                "--json",
            ])
            .stdout,
        )
        .unwrap()
    };
    let eval = eval_lm(&ckpt);
    assert_eq!(eval["model_type"], "bart");
    let (loss, ppl) = (
        eval["loss"].as_f64().unwrap(),
        eval["perplexity"].as_f64().unwrap(),
    );
    assert!(loss > 0.0 && loss < (200f64).ln() + 1.0, "{eval}");
    assert!((ppl - loss.exp()).abs() < 1e-6 * ppl, "{eval}");
    assert_eq!(eval["batches"], 2);
    assert_eq!(eval["tokens"], 2 * 4 * 30);
    // A bare HF directory (no trainer state): BART text infilling with the tokenizer's <mask>,
    // which is what the run trained with, so the same numbers.
    let bare = d.join("bare");
    std::fs::create_dir(&bare).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(ckpt.join(f), bare.join(f)).unwrap();
    }
    let eval_bare = eval_lm(&bare);
    assert_eq!(eval_bare["loss"], eval["loss"], "{eval_bare} vs {eval}");

    // PLM (`type = "plm"`) on the same shards: a GPT-2 directory + plm.json, eval-lm reads it.
    let plm = d.join("plm.toml");
    std::fs::write(
        &plm,
        "[task]\nkind = \"plm\"\n[model]\ndropout = 0.0\nhf = { n_layer = 1, n_embd = 32, n_head = 2 }\n\
         [data]\nseq_len = 30\nbatch_size = 4\nvalidation_fraction = 0.1\n\
         [optim]\nwarmup_steps = 1\n[run]\ntotal_steps = 2\neval_every = 2\neval_batches = 1\n",
    )
    .unwrap();
    let plm_out = d.join("plm-run");
    let run: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "pretrain",
            "--config",
            &s(&plm),
            "--data",
            &s(&tokens),
            "--out",
            &s(&plm_out),
            "--quiet",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        run["eval"]["metrics"]["plm_accuracy"].as_f64().is_some(),
        "{run}"
    );
    let eval = eval_lm(&plm_out.join("checkpoint-2"));
    assert_eq!(eval["model_type"], "refinery-plm");
    let ppl = eval["perplexity"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl > 1.0, "{eval}");
}

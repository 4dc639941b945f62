//! `refinery demo` on the embedded sample: what each page of the sample is
//! built to exercise (see crates/cli/sample/README.md) ends up where it should.

mod common;

use std::collections::BTreeSet;

use common::*;
use refinery_corpus::writers::read_shard;
use refinery_corpus::Document;

fn read_all(dir: &std::path::Path) -> Vec<Document> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().flat_map(|f| read_shard(f).unwrap()).collect()
}

#[test]
fn demo_refines_the_embedded_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&[
        "demo",
        "--output",
        dir.path().to_str().unwrap(),
        "-q",
        "--no-lm",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("accounting ok"), "{text}");
    assert!(!dir.path().join("lm").exists(), "--no-lm trained a model");

    let run = dir.path().join("output");
    let s = stats(&run);
    assert_accounting(&s);
    assert_eq!(s["input_docs"], 83, "58 WARC records + 25 JSONL lines");
    let dropped = &s["dropped"];
    for (reason, n) in [
        ("warc:warcinfo", 1),
        ("warc:request", 28),
        ("warc:metadata", 1),
        ("warc:non_html", 2), // the PNG and the PDF
        ("length:too_few_chars", 10),
        // The two JSONL duplicates. The scraper mirror of the sourdough article
        // also carries the headline in its extracted text, so it is a near-
        // duplicate for MinHash (tests/cli.rs), not an exact one.
        ("exact_dedup:duplicate", 2),
    ] {
        assert_eq!(dropped[reason], n, "{reason}: {dropped}");
    }
    assert_eq!(s["failed"]["jsonl:invalid_json"], 1);
    assert_eq!(s["failed"]["jsonl:missing_text"], 1);
    assert_eq!(s["kept_docs"], 37);

    let kept = read_all(&run.join("data"));
    assert_eq!(kept.len(), 37);
    let langs: BTreeSet<_> = kept
        .iter()
        .filter_map(|d| d.metadata.lang.clone())
        .collect();
    for l in ["en", "fr", "de", "es", "zh", "ja", "ru"] {
        assert!(langs.contains(l), "{l} missing from {langs:?}");
    }
    let find = |needle: &str| kept.iter().find(|d| d.text.contains(needle));
    // Legacy charsets: GBK declared in HTTP, Shift_JIS only in <meta>, windows-1251 in HTTP.
    for (needle, charset) in [
        ("清溪", "gbk"),
        ("ふくろう書房", "shift_jis"),
        ("Паром", "windows-1251"),
    ] {
        let d = find(needle).unwrap_or_else(|| panic!("no kept document contains {needle}"));
        assert_eq!(d.metadata.charset.as_deref(), Some(charset));
    }
    // Chunked transfer coding and a gzip content encoding were both decoded.
    for title in ["Lanterns of Varrow", "Ashford Public Library"] {
        assert!(
            kept.iter().any(|d| d
                .metadata
                .get("title")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.contains(title))),
            "{title} not kept"
        );
    }
    // Boilerplate is gone from a kept article.
    let article = find("Harbor Street").unwrap();
    assert!(
        !article.text.to_lowercase().contains("cookie"),
        "{}",
        article.text
    );
    assert!(article
        .metadata
        .url
        .as_deref()
        .unwrap()
        .starts_with("https://"));

    // Every dropped document is in rejects/ with its reason.
    let rejects = read_all(&run.join("rejects"));
    assert_eq!(rejects.len(), 12);
    let reasons: BTreeSet<_> = rejects
        .iter()
        .map(|d| {
            d.metadata
                .get("filter_reason")
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "exact_dedup:duplicate".to_string(),
            "length:too_few_chars".to_string()
        ])
    );
}

/// The demo's LM stage, shortened: a checkpoint (with the tokenizer), metrics.jsonl with one
/// line per step and a falling loss, an evaluation, and a generated sample.
#[test]
fn demo_pretrains_a_tiny_gpt_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let steps = 8;
    let out = ok(&[
        "demo",
        "--output",
        dir.path().to_str().unwrap(),
        "-q",
        "--lm-steps",
        &steps.to_string(),
        "--prompt",
        "The harbor",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "accounting ok",
        "tiny GPT",
        "tokens/s",
        "perplexity",
        "sample (",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let lm = dir.path().join("lm");
    let ckpt = lm.join(format!("checkpoint-{steps}"));
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(ckpt.join(f).is_file(), "{} missing", ckpt.join(f).display());
    }
    assert!(lm.join("train.toml").is_file());

    let metrics = std::fs::read_to_string(lm.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), steps, "{metrics}");
    let loss = |v: &serde_json::Value| v["loss"].as_f64().unwrap();
    let (first, last) = (&lines[0], &lines[steps - 1]);
    assert_eq!(first["step"], 1);
    assert!(
        loss(last) < loss(first),
        "loss did not decrease: {} -> {}",
        loss(first),
        loss(last)
    );
    assert!(last["eval_perplexity"].as_f64().unwrap().is_finite());
    assert!(last["tokens_per_s"].as_f64().unwrap() > 0.0);

    let sample = std::fs::read_to_string(lm.join("sample.txt")).unwrap();
    assert!(sample.starts_with("The harbor"), "{sample}");
    assert!(
        sample.trim().len() > "The harbor".len(),
        "nothing generated: {sample:?}"
    );
}

//! The report of synthetic run directories: the waterfall in the HTML equals
//! the stats, every plot is present, old stats load, model runs plot every
//! eval_* key and the confusion matrix, and the file is self-contained.

use std::collections::BTreeMap;
use std::path::Path;

use refinery_corpus::stage::StageStats;
use refinery_corpus::stats::{FileStats, RunStats};
use refinery_corpus::summary::{ContentCounter, LengthHistogram};
use refinery_corpus::writers::WriterStats;
use refinery_corpus::Document;
use refinery_report::html::CORPUS_PLOTS;

fn stage(name: &str, di: u64, d_o: u64, ci: u64, co: u64, drops: &[(&str, u64)]) -> StageStats {
    let mut len_in = LengthHistogram::default();
    let mut len_out = LengthHistogram::default();
    for i in 0..di {
        len_in.add(ci / di.max(1) + i);
    }
    for i in 0..d_o {
        len_out.add(co / d_o.max(1) + i);
    }
    StageStats {
        name: name.into(),
        kind: "filter".into(),
        docs_in: di,
        docs_out: d_o,
        chars_in: ci,
        chars_out: co,
        dropped: drops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        seconds: 0.5,
        len_in,
        len_out,
        ..Default::default()
    }
}

fn writer(docs: u64, chars: u64, langs: &[(&str, u64)], host: &str) -> WriterStats {
    let mut c = ContentCounter::default();
    for (lang, n) in langs {
        for i in 0..*n {
            let mut d = Document::new("x", "y", "s");
            d.metadata.lang = Some(lang.to_string());
            d.metadata.lang_score = Some(0.5 + (i % 10) as f64 / 20.0);
            d.metadata.url = Some(format!("https://{host}{}.example/", i % 3));
            c.add(&d, 100 + i * 10);
        }
    }
    WriterStats {
        docs,
        shards: 1,
        bytes: chars * 2,
        chars,
        content: c.finish(),
    }
}

fn corpus_stats() -> RunStats {
    let mut files = BTreeMap::new();
    files.insert(
        "in.warc.gz".to_string(),
        FileStats {
            bytes: 1000,
            records: 300,
            kept: 60,
            dropped: [
                ("warc:request".to_string(), 100),
                ("length:too_few_chars".to_string(), 120),
                ("exact_dedup:duplicate".to_string(), 20),
            ]
            .into(),
            failed: BTreeMap::new(),
            warnings: BTreeMap::new(),
        },
    );
    RunStats {
        tasks: 1,
        input_files: 1,
        input_bytes: 1000,
        input_docs: 300,
        kept_docs: 60,
        dropped: files["in.warc.gz"].dropped.clone(),
        failed: BTreeMap::new(),
        warnings: BTreeMap::new(),
        invariant_ok: true,
        stages: vec![
            stage("extract", 200, 200, 400_000, 100_000, &[]),
            stage(
                "length_filter",
                200,
                80,
                100_000,
                60_000,
                &[("length:too_few_chars", 120)],
            ),
            stage(
                "exact_dedup",
                80,
                60,
                60_000,
                45_000,
                &[("exact_dedup:duplicate", 20)],
            ),
        ],
        writer: writer(60, 45_000, &[("en", 50), ("de", 10)], "kept"),
        rejects: writer(140, 55_000, &[("en", 20), ("fr", 5)], "gone"),
        task_seconds: 3.0,
        files,
    }
}

fn write_json(path: &Path, v: &impl serde::Serialize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// `data-NAME="VALUE"` attributes of the elements that have `data-step`.
fn waterfall_rows(html: &str) -> Vec<BTreeMap<String, String>> {
    html.split("<tr data-step=")
        .skip(1)
        .map(|chunk| {
            let head = &chunk[..chunk.find('>').unwrap()];
            let mut m = BTreeMap::new();
            let mut rest = format!("data-step={head}");
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].trim().to_string();
                let after = &rest[eq + 2..];
                let end = after.find('"').unwrap();
                m.insert(key, after[..end].to_string());
                rest = after[end + 1..].to_string();
            }
            m
        })
        .collect()
}

#[test]
fn corpus_report_waterfall_equals_the_stats_and_every_plot_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let stats = corpus_stats();
    write_json(&run.join("stats.json"), &stats);
    // A MinHash dedup step: 60 → 48 documents, 45,000 → 36,000 characters.
    let step = RunStats {
        input_docs: 60,
        kept_docs: 48,
        dropped: [("minhash:duplicate".to_string(), 12)].into(),
        invariant_ok: true,
        writer: writer(48, 36_000, &[("en", 40), ("de", 8)], "kept"),
        rejects: writer(12, 9_000, &[("en", 12)], "dup"),
        ..Default::default()
    };
    write_json(&run.join("dedup/00-minhash/stats.json"), &step);

    let html = refinery_report::report(std::slice::from_ref(&run)).unwrap();
    let rows = waterfall_rows(&html);
    let steps: Vec<&str> = rows.iter().map(|r| r["data-step"].as_str()).collect();
    assert_eq!(
        steps,
        [
            "read",
            "extract",
            "length_filter",
            "exact_dedup",
            "dedup 00-minhash"
        ]
    );
    // Documents left, recomputed here from the stats: docs_out / input_docs.
    let want_docs = [200u64, 200, 80, 60, 48];
    let want_chars = [400_000u64, 100_000, 60_000, 45_000, 36_000];
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["data-docs"], want_docs[i].to_string(), "{r:?}");
        let left: f64 = r["data-docs-left-pct"].parse().unwrap();
        assert!(
            (left - 100.0 * want_docs[i] as f64 / 300.0).abs() < 1e-3,
            "{r:?}"
        );
        let chars: f64 = r["data-chars-left-pct"].parse().unwrap();
        assert!(
            (chars - 100.0 * want_chars[i] as f64 / 400_000.0).abs() < 1e-3,
            "{r:?}"
        );
    }
    for plot in CORPUS_PLOTS {
        assert!(
            html.contains(&format!("data-plot=\"{plot}\"")),
            "plot {plot} missing"
        );
    }
    // With this run's data, these plots have data (not an empty figure).
    for plot in [
        "waterfall",
        "drops",
        "lengths",
        "languages",
        "lang-score",
        "domains-kept",
        "domains-removed",
        "throughput",
    ] {
        assert!(
            html.contains(&format!("<svg data-plot=\"{plot}\"")),
            "plot {plot} is empty"
        );
    }
    // No clusters files: the clusters plot says why it is empty.
    assert!(html.contains("data-plot=\"clusters\" data-empty="));
    // Drops per reason, per step: the reader's, each stage's, the dedup step's.
    assert!(html.contains("data-label=\"read: warc:request\""));
    assert!(html.contains("data-label=\"length_filter: length:too_few_chars\""));
    assert!(html.contains("data-label=\"dedup 00-minhash: minhash:duplicate\""));
    // Languages: kept from the final corpus (after dedup), removed from all rejects.
    assert!(html.contains("data-label=\"en\""));
    assert!(
        html.contains("data-series=\"kept\" data-value=\"40\""),
        "final corpus has 40 en"
    );
    assert!(
        html.contains("data-series=\"removed\" data-value=\"32\""),
        "20 + 12 en removed"
    );
    // Self-contained.
    for banned in [
        "<script", "<link", "<img", " src=", " href=", "url(", "@import",
    ] {
        assert!(!html.contains(banned), "{banned}");
    }
    assert!(html.len() < 200_000, "{} bytes", html.len());
}

#[test]
fn stats_written_before_the_summaries_still_load_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("old");
    std::fs::create_dir_all(&run).unwrap();
    // A stats.json as refinery wrote it before lengths, chars and content.
    std::fs::write(
        run.join("stats.json"),
        r#"{"tasks":1,"input_files":1,"input_bytes":10,"input_docs":4,"kept_docs":2,
            "dropped":{"length:too_few_chars":2},"failed":{},"warnings":{},"invariant_ok":true,
            "stages":[{"name":"length_filter","kind":"filter","docs_in":4,"docs_out":2,
                       "chars_in":400,"chars_out":300,"dropped":{"length:too_few_chars":2},
                       "failed":{},"seconds":0.01}],
            "writer":{"docs":2,"shards":1,"bytes":700},"rejects":{"docs":0,"shards":0,"bytes":0},
            "task_seconds":0.1,"files":{}}"#,
    )
    .unwrap();
    let html = refinery_report::report(&[run]).unwrap();
    let rows = waterfall_rows(&html);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["data-docs-left-pct"], "50");
    assert_eq!(rows[1]["data-chars-left-pct"], "75");
    assert!(html.contains("data-plot=\"lengths\" data-empty="));
    assert!(html.contains("data-plot=\"languages\" data-empty="));
}

#[test]
fn model_report_plots_every_eval_key_and_the_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("ft");
    std::fs::create_dir_all(&run).unwrap();
    let mut lines = String::new();
    for step in 1..=2000u32 {
        let loss = 3.0 / f64::from(step).sqrt();
        let mut m = serde_json::json!({"step": step, "loss": loss, "lr": 1e-3, "grad_norm": 1.0, "tokens": 512, "total_tokens": 512 * step, "tokens_per_s": 9000.0, "elapsed_s": f64::from(step) * 0.1});
        if step % 100 == 0 {
            m["eval_loss"] = serde_json::json!(loss * 1.1);
            m["eval_accuracy"] = serde_json::json!(0.5 + f64::from(step) / 5000.0);
            m["eval_macro_f1"] = serde_json::json!(0.4 + f64::from(step) / 5000.0);
        }
        lines.push_str(&m.to_string());
        lines.push('\n');
    }
    std::fs::write(run.join("metrics.jsonl"), lines).unwrap();
    std::fs::write(
        run.join("confusion.json"),
        r#"{"labels":["neg","pos"],"matrix":[[40,10],[5,45]]}"#,
    )
    .unwrap();
    let html = refinery_report::report(std::slice::from_ref(&run)).unwrap();
    for plot in [
        "loss",
        "lr",
        "metric-eval_accuracy",
        "metric-eval_macro_f1",
        "metric-grad_norm",
        "metric-tokens_per_s",
        "confusion",
        "per-class",
    ] {
        assert!(
            html.contains(&format!("<svg data-plot=\"{plot}\"")),
            "{plot}"
        );
    }
    // Thinned to MAX_POINTS, the last point kept.
    let last = 3.0 / 2000f64.sqrt();
    assert!(
        html.contains(&format!(
            "data-series=\"training loss\" data-points=\"{}\" data-last=\"{}\"",
            refinery_report::MAX_POINTS,
            refinery_report::svg::num(last)
        )),
        "loss path"
    );
    assert!(html.contains("data-series=\"held-out loss\" data-points=\"20\""));
    assert!(html.contains("data-gold=\"neg\" data-pred=\"pos\" data-value=\"10\""));
    // Per-class: derived precision of pos = 45 / 55.
    assert!(html.contains(&format!(
        "data-series=\"precision\" data-value=\"{}\"",
        refinery_report::svg::num(45.0 / 55.0)
    )));
    assert!(html.len() < 300_000, "{} bytes for 2000 steps", html.len());

    // Two runs side by side: the curves are overlaid.
    let html = refinery_report::report(&[run.clone(), run]).unwrap();
    assert!(html.contains("data-plot=\"compare-loss\""));
    assert!(html.contains("data-plot=\"compare-eval_accuracy\""));
    assert_eq!(html.matches("<section class=\"run\"").count(), 2);
}

#[test]
fn a_directory_that_is_no_run_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = refinery_report::report(&[dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a run directory") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
}

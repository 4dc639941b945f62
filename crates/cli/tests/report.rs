//! `refinery report` on a real run: the embedded sample through the default
//! preset plus a MinHash step. The waterfall rows of the HTML equal the
//! numbers recomputed from stats.json and the dedup step's stats.json.

mod common;

use std::collections::BTreeMap;

use common::*;

/// The `data-*` attributes of every `<tr data-step=…>` row.
fn rows(html: &str) -> Vec<BTreeMap<String, String>> {
    html.split("<tr data-step=")
        .skip(1)
        .map(|chunk| {
            let head = format!("data-step={}", &chunk[..chunk.find('>').unwrap()]);
            let mut m = BTreeMap::new();
            let mut rest = head.as_str();
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].trim().to_string();
                let after = &rest[eq + 2..];
                let end = after.find('"').unwrap();
                m.insert(key, after[..end].to_string());
                rest = &after[end + 1..];
            }
            m
        })
        .collect()
}

#[test]
fn report_waterfall_equals_the_run_stats() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let out = dir.path().join("out");
    let preset = ok(&["presets", "--show", "default"]);
    let toml = format!(
        "{}\n[[dedup]]\ntype = \"minhash\"\n",
        String::from_utf8(preset.stdout).unwrap()
    );
    let pipeline = dir.path().join("p.toml");
    std::fs::write(&pipeline, toml).unwrap();
    ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tasks",
        "2",
        "--rejects",
        "-q",
    ]);
    let html_path = dir.path().join("r.html");
    ok(&[
        "report",
        out.to_str().unwrap(),
        "-o",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();

    let s = stats(&out);
    let step: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dedup/00-minhash/stats.json")).unwrap())
            .unwrap();
    let records = s["input_docs"].as_f64().unwrap();
    let stages = s["stages"].as_array().unwrap();
    let base = stages[0]["chars_in"].as_f64().unwrap();
    let mut want = vec![(
        "read".to_string(),
        stages[0]["docs_in"].as_u64().unwrap(),
        100.0,
    )];
    for st in stages {
        want.push((
            st["name"].as_str().unwrap().to_string(),
            st["docs_out"].as_u64().unwrap(),
            100.0 * st["chars_out"].as_f64().unwrap() / base,
        ));
    }
    want.push((
        "dedup 00-minhash".into(),
        step["kept_docs"].as_u64().unwrap(),
        100.0 * step["writer"]["chars"].as_f64().unwrap() / base,
    ));
    let got = rows(&html);
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, (name, docs, chars_pct)) in got.iter().zip(&want) {
        assert_eq!(&g["data-step"], name);
        assert_eq!(g["data-docs"], docs.to_string(), "{name}");
        let left: f64 = g["data-docs-left-pct"].parse().unwrap();
        assert!(
            (left - 100.0 * *docs as f64 / records).abs() < 1e-3,
            "{name}: {left}"
        );
        let c: f64 = g["data-chars-left-pct"].parse().unwrap();
        assert!((c - chars_pct).abs() < 1e-3, "{name}: {c} vs {chars_pct}");
    }
    // The MinHash step found duplicates in the sample: its clusters are drawn.
    assert!(step["dropped"]["minhash:duplicate"].as_u64().unwrap() > 0);
    assert!(html.contains("<svg data-plot=\"clusters\""));
    assert!(html.contains("<svg data-plot=\"domains-removed\""));
}

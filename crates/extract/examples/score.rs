//! Scores `extract` on the trafilatura evaluation set.
//!
//! `cargo run --release -p refinery-extract --example score -- DIR [LIMIT]`
//! where DIR holds `evaldata.json` and `eval/*.html` (the unpacked
//! `trafilatura-eval.tar.xz`, its `tests/` folder or the folder above it).
//!
//! Scoring (the same as trafilatura's `evaluate.py`): per annotated page, each
//! "with" snippet found in the text is a true positive, each one missing a
//! false negative; each "without" snippet found is a false positive, each one
//! missing a true negative. Precision = TP/(TP+FP), recall = TP/(TP+FN),
//! F1 = their harmonic mean, all over the pooled counts of every page.
//!
//! `EXTRACT_OPTS='{"readability": false}'` sets [`ExtractOptions`] as JSON;
//! `VERBOSE=1` lists every missed (`MISS`) and leaked (`LEAK`) snippet;
//! `SCORE_HALF=even` (or `odd`) scores every other page only.
//! `EXTRACT_ENGINE=dom_smoothie` scores the `dom_smoothie` crate alone
//! (crates.io's Readability port, `TextMode::Formatted`) instead of
//! `extract`: a Rust baseline from crates.io, in the same harness.

use std::time::Instant;

use refinery_extract::{extract, ExtractOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: score DIR [LIMIT] [--verbose]");
        std::process::exit(2);
    };
    let limit: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let verbose = std::env::var_os("VERBOSE").is_some();
    let mut root = std::path::PathBuf::from(&dir);
    if !root.join("evaldata.json").exists() {
        root = root.join("tests");
    }
    let data: serde_json::Value = match std::fs::read_to_string(root.join("evaldata.json"))
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cannot read {}/evaldata.json: {e}", root.display());
            std::process::exit(1);
        }
    };
    let mut pages: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    if let Some(obj) = data.as_object() {
        for v in obj.values() {
            let file = v["file"].as_str().unwrap_or_default().to_string();
            let list = |k: &str| -> Vec<String> {
                v[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if root.join("eval").join(&file).exists() {
                pages.push((file, list("with"), list("without")));
            }
        }
    }
    pages.sort();
    pages.truncate(limit);
    // SCORE_HALF=even|odd keeps every other page (by sorted file name), to
    // check that a change helps on both halves alike.
    match std::env::var("SCORE_HALF").as_deref() {
        Ok("even") => pages = pages.into_iter().step_by(2).collect(),
        Ok("odd") => pages = pages.into_iter().skip(1).step_by(2).collect(),
        _ => {}
    }
    // Options as JSON in $EXTRACT_OPTS, e.g. '{"readability": false}'.
    let opts: ExtractOptions = match std::env::var("EXTRACT_OPTS") {
        Ok(json) => match serde_json::from_str(&json) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("bad EXTRACT_OPTS: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => ExtractOptions::default(),
    };
    let smoothie = std::env::var("EXTRACT_ENGINE").as_deref() == Ok("dom_smoothie");
    let run = |html: &str| -> String {
        if !smoothie {
            return extract(html, &opts).text;
        }
        let cfg = dom_smoothie::Config {
            text_mode: dom_smoothie::TextMode::Formatted,
            ..dom_smoothie::Config::default()
        };
        dom_smoothie::Readability::new(html, None, Some(cfg))
            .ok()
            .and_then(|mut r| r.parse().ok())
            .map(|a| a.text_content.to_string())
            .unwrap_or_default()
    };
    let (mut tp, mut fp, mut fn_, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut bytes = 0usize;
    let mut elapsed = 0.0f64;
    for (file, with, without) in &pages {
        let raw = std::fs::read(root.join("eval").join(file)).unwrap_or_default();
        let html = String::from_utf8_lossy(&raw);
        bytes += html.len();
        let t = Instant::now();
        let text = run(&html);
        elapsed += t.elapsed().as_secs_f64();
        let (mut ptp, mut pfp) = (0, 0);
        for s in with {
            if text.contains(s.as_str()) {
                ptp += 1;
            } else {
                fn_ += 1;
                if verbose {
                    println!("MISS {file}: {s}");
                }
            }
        }
        for s in without {
            if text.contains(s.as_str()) {
                pfp += 1;
                if verbose {
                    println!("LEAK {file}: {s}");
                }
            } else {
                tn += 1;
            }
        }
        tp += ptp;
        fp += pfp;
    }
    let p = tp as f64 / (tp + fp).max(1) as f64;
    let r = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    println!(
        "pages {}  tp {tp} fp {fp} fn {fn_} tn {tn}\nprecision {p:.4}  recall {r:.4}  F1 {f1:.4}\n{:.1} pages/s  {:.1} MB/s  ({elapsed:.2} s extracting, 1 thread)",
        pages.len(),
        pages.len() as f64 / elapsed.max(1e-9),
        bytes as f64 / 1e6 / elapsed.max(1e-9),
    );
}

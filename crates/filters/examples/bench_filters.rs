//! Single-core throughput of the datatrove-compatible filters, the Rust side
//! of `bench/filters_vs_datatrove.py`.
//!
//! ```sh
//! cargo run --release -p refinery-filters --example bench_filters -- ../shared 5
//! ```
//!
//! Reads the same documents as the agreement test (shared cc_text, every 10th
//! IMDb unsup review), runs each filter over all of them `runs` times, and
//! prints one JSON object: per filter, the median docs/s.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use refinery_corpus::{Document, Filter, Modifier};
use refinery_filters::{
    C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig,
};

fn texts(shared: &Path) -> Vec<String> {
    let read = |p: &Path, every: usize, out: &mut Vec<String>| {
        let Ok(f) = std::fs::File::open(p) else {
            return;
        };
        let r = BufReader::new(flate2::read::MultiGzDecoder::new(f));
        for (i, line) in r.lines().map_while(Result::ok).enumerate() {
            if i % every == 0 {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                        out.push(t.to_string());
                    }
                }
            }
        }
    };
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("data/web/cc_text"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        read(&f, 1, &mut out);
    }
    read(
        &shared.join("data/classification/imdb/imdb_unsup.jsonl.gz"),
        10,
        &mut out,
    );
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shared = PathBuf::from(args.get(1).map_or("../shared", |s| s.as_str()));
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let docs: Vec<Document> = texts(&shared)
        .into_iter()
        .enumerate()
        .map(|(i, t)| Document::new(i.to_string(), t, "bench"))
        .collect();
    if docs.is_empty() {
        eprintln!("no documents under {}", shared.display());
        std::process::exit(1);
    }
    let mut results = serde_json::Map::new();
    let time_filter = |f: &mut dyn Filter| {
        let t = Instant::now();
        let mut kept = 0usize;
        for d in &docs {
            kept += usize::from(f.filter(d) == refinery_corpus::Verdict::Keep);
        }
        std::hint::black_box(kept);
        docs.len() as f64 / t.elapsed().as_secs_f64()
    };
    let time_modifier = |m: &mut dyn Modifier| {
        // Copies are made outside the timed region, as datatrove's are.
        let mut copies = docs.clone();
        let t = Instant::now();
        for d in &mut copies {
            std::hint::black_box(m.modify(d));
        }
        docs.len() as f64 / t.elapsed().as_secs_f64()
    };
    let mut rate = |name: &str, f: &mut dyn FnMut() -> f64| {
        let v: Vec<f64> = (0..runs).map(|_| f()).collect();
        results.insert(name.into(), median(v).into());
    };
    let mut gr = GopherRepetitionConfig::default().validate().expect("valid");
    rate("gopher_repetition", &mut || time_filter(&mut gr));
    let mut gq = GopherQualityConfig::default().validate().expect("valid");
    rate("gopher_quality", &mut || time_filter(&mut gq));
    let mut c4 = C4Config::default().validate().expect("valid");
    rate("c4", &mut || time_modifier(&mut c4));
    let mut fw = FineWebQualityConfig::default().validate().expect("valid");
    rate("fineweb_quality", &mut || time_filter(&mut fw));
    results.insert("docs".into(), docs.len().into());
    println!("{}", serde_json::Value::Object(results));
}

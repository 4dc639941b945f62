//! Extraction time against page size on adversarial pages (issue 16): it
//! must grow linearly, not with the square of the nesting depth.
//!
//! `cargo run --release -p refinery-extract --example limits_bench [-- --no-limits]`
//!
//! Pages, generated here: `<div><span><b>` repeated 12.5k … 100k times and
//! never closed (1.4 MB at 100k), 2M flat `<span>`s (31 MB), and a normal
//! article of the same sizes for comparison. Prints the seconds, MB/s and the
//! outcome (text chars or the limit hit). `--no-limits` turns the depth, node
//! and time limits off (the behaviour before them: 55 s for the 100k page).

use std::time::Instant;

use refinery_extract::{try_extract, ExtractOptions};

fn main() {
    let no_limits = std::env::args().any(|a| a == "--no-limits");
    let opts = if no_limits {
        ExtractOptions {
            max_depth: 0,
            max_nodes: 0,
            timeout_ms: 0,
            ..ExtractOptions::default()
        }
    } else {
        ExtractOptions::default()
    };
    let mut pages: Vec<(String, String)> = Vec::new();
    for reps in [12_500usize, 25_000, 50_000, 100_000] {
        let mut html = String::from("<html><body>");
        html.push_str(&"<div><span><b>".repeat(reps));
        html.push_str("deep text");
        pages.push((format!("nested x{reps}"), html));
    }
    for paras in [2_500usize, 10_000, 40_000] {
        let mut html = String::from("<html><body><article>");
        for i in 0..paras {
            html.push_str(&format!("<p>Paragraph {i} of a long article.</p>"));
        }
        pages.push((format!("article {paras} <p>"), html));
    }
    let mut spans = String::from("<html><body><p>");
    for i in 0..2_000_000 {
        spans.push_str(&format!("<span>{}</span>", i % 10));
    }
    pages.push(("2M <span>".to_string(), spans));
    println!(
        "{:<20} {:>9} {:>9} {:>8}  outcome",
        "page", "MB", "seconds", "MB/s"
    );
    for (name, html) in &pages {
        let t = Instant::now();
        let out = try_extract(html, &opts);
        let secs = t.elapsed().as_secs_f64();
        let mb = html.len() as f64 / 1e6;
        let outcome = match out {
            Ok(e) => format!("{} chars of text", e.text.chars().count()),
            Err(e) => format!("{} ({e})", e.reason()),
        };
        println!(
            "{name:<20} {mb:>9.2} {secs:>9.3} {:>8.1}  {outcome}",
            mb / secs.max(1e-9)
        );
    }
}

//! Prints the title and main text of HTML files.
//!
//! `cargo run --release -p refinery-extract --example extract -- FILE...`
//! (`EXTRACT_OPTS` as JSON sets [`ExtractOptions`], like the `score` example).

use refinery_extract::{extract, ExtractOptions};

fn main() {
    let opts: ExtractOptions = std::env::var("EXTRACT_OPTS")
        .ok()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    for path in std::env::args().skip(1) {
        let raw = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let out = extract(&String::from_utf8_lossy(&raw), &opts);
        println!(
            "== {path}\n# {}\n{}\n",
            out.title.unwrap_or_default(),
            out.text
        );
    }
}

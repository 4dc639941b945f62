//! Parquet read and write speed of refinery-corpus (used by bench/parquet_speed.sh).
//!
//!   parquet_speed read FILE              documents through readers::open, rows/s
//!   parquet_speed rows FILE              rows as JSON maps through parquet::rows, rows/s
//!   parquet_speed write FILE OUT_DIR     FILE's documents, read into memory first, written
//!                                        as zstd Parquet shards (the default writer options)
//!
//! Prints one line: `op rows seconds rows_per_s mb_per_s` (MB of text), timing only the
//! operation (not process start, not the read that feeds `write`).

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use refinery_corpus::readers::{self, Item, ReaderOptions};
use refinery_corpus::writers::{OutputFormat, ShardWriter, WriterOptions};
use refinery_corpus::Document;

fn docs(path: &Path) -> Vec<Document> {
    readers::open(
        path,
        "bench",
        &ReaderOptions::default(),
        Arc::new(AtomicU64::new(0)),
    )
    .filter_map(|i| match i {
        Item::Doc(d) => Some(d),
        _ => None,
    })
    .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (op, file) = match (args.get(1), args.get(2)) {
        (Some(o), Some(f)) => (o.as_str(), Path::new(f)),
        _ => {
            eprintln!("usage: parquet_speed read|rows|write FILE [OUT_DIR]");
            std::process::exit(2);
        }
    };
    let (rows, bytes, secs) = match op {
        "read" => {
            let t = Instant::now();
            let (mut n, mut b) = (0u64, 0u64);
            for item in readers::open(
                file,
                "bench",
                &ReaderOptions::default(),
                Arc::new(AtomicU64::new(0)),
            ) {
                if let Item::Doc(d) = item {
                    n += 1;
                    b += d.text.len() as u64;
                }
            }
            (n, b, t.elapsed().as_secs_f64())
        }
        "rows" => {
            let t = Instant::now();
            let (mut n, mut b) = (0u64, 0u64);
            for row in refinery_corpus::readers::parquet::rows(file).expect("open") {
                let row = row.expect("row");
                n += 1;
                b += row.get("text").and_then(|v| v.as_str()).map_or(0, str::len) as u64;
            }
            (n, b, t.elapsed().as_secs_f64())
        }
        "write" => {
            let out = Path::new(
                args.get(3)
                    .map(String::as_str)
                    .unwrap_or("parquet_speed_out"),
            );
            let all = docs(file);
            let opts = WriterOptions {
                format: OutputFormat::Parquet,
                ..WriterOptions::default()
            };
            let t = Instant::now();
            let mut w = ShardWriter::new(out, "bench", opts).expect("writer");
            let mut b = 0u64;
            for d in &all {
                b += d.text.len() as u64;
                w.write(d).expect("write");
            }
            let st = w.finish().expect("finish");
            (st.docs, b, t.elapsed().as_secs_f64())
        }
        other => {
            eprintln!("unknown op {other}");
            std::process::exit(2);
        }
    };
    println!(
        "{op} {rows} {secs:.4} {:.0} {:.1}",
        rows as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

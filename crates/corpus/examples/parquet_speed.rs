//! Parquet read and write speed of refinery-corpus (used by bench/parquet_speed.sh).
//!
//!   parquet_speed read FILE              documents through readers::open, rows/s
//!   parquet_speed rows FILE              rows as JSON maps through parquet::rows, rows/s
//!   parquet_speed write FILE OUT_DIR     FILE's documents, read into memory first, written
//!                                        as zstd Parquet shards (the default writer options)
//!
//! Prints one line: `op rows wall_s rows_per_s mb_per_s cpu_s` (MB of text), timing only
//! the operation (not process start, not the read that feeds `write`); `cpu_s` is the
//! process's user + system time during it (from /proc/self/stat, 10 ms resolution).

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

/// User + system CPU seconds of this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line (1-based); `rest` starts at
    // field 3 (state), so they are at 11 and 12 here.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0 // USER_HZ is 100 on Linux
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
    let mut cpu0 = cpu_seconds();
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
            cpu0 = cpu_seconds();
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
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{op} {rows} {secs:.4} {:.0} {:.1} {cpu:.2}",
        rows as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

//! Drops by reason and speed of the URL filter on real crawl URLs, and the
//! cost of a UT1-sized domain list.
//!
//! ```sh
//! cargo run --release -p refinery-urlfilter --example url_filter_bench [-- FILE.jsonl.gz]
//! ```
//!
//! FILE defaults to the dolma Common Crawl sample in
//! `$REFINERY_SHARED/data/web/cc_text/` (`REFINERY_SHARED` defaulting to
//! `../shared`); each line's `metadata.warc_url`, `metadata.url` or `url`
//! is used.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

use refinery_urlfilter::UrlFilterConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("REFINERY_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared"))
            .join("data/web/cc_text/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"),
    };
    let reader = BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(&path)?));
    let mut urls = Vec::new();
    for line in reader.lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let m = &v["metadata"];
        if let Some(u) = m["warc_url"]
            .as_str()
            .or(m["url"].as_str())
            .or(v["url"].as_str())
        {
            urls.push(u.to_string());
        }
    }
    println!("{}: {} URLs", path.display(), urls.len());

    let f = UrlFilterConfig::default().validate()?;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &urls {
        if let Some(r) = f.check_url(u) {
            *reasons.entry(r).or_default() += 1;
            println!("  dropped {r}: {u}");
        }
    }
    println!(
        "shipped lists: {} of {} dropped {reasons:?}",
        reasons.values().sum::<usize>(),
        urls.len()
    );
    let reps = 2000;
    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..reps {
        n += urls.iter().filter(|u| f.check_url(u).is_some()).count();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "shipped lists: {:.0} URLs/s ({} checks, {n} drops)",
        (urls.len() * reps) as f64 / secs,
        urls.len() * reps
    );

    // A UT1-sized list: 4.6 M synthetic domains.
    let dir = std::env::temp_dir().join(format!("refinery-urlfilter-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("adult"))?;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("adult/domains"))?);
        for i in 0..4_600_000u64 {
            writeln!(
                w,
                "site{:x}-{}.example.net",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i % 97
            )?;
        }
    }
    let cfg = UrlFilterConfig {
        ut1_dir: Some(dir.clone()),
        ..Default::default()
    };
    let start = Instant::now();
    let f = cfg.validate()?;
    println!(
        "4.6 M-domain UT1 list loaded in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let mut n = 0usize;
    for _ in 0..reps {
        n += urls.iter().filter(|u| f.check_url(u).is_some()).count();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "with the 4.6 M-domain list: {:.0} URLs/s ({n} drops)",
        (urls.len() * reps) as f64 / secs
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

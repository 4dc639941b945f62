//! Signature throughput of [`MinHasher`] at a preset's hash count, against
//! the plain scalar loop it replaced (every shingle through every
//! permutation with a 128-bit multiply and `mod p`), on the same documents,
//! in one run; checks that both give the same signatures.
//!
//! `cargo run --release -p refinery-dedup --example minhash_signatures -- IN.jsonl [DOCS] [PRESET]`
//!
//! IN.jsonl has a `text` field per line (e.g. `bench/make_minhash_corpus.py`'s
//! output); DOCS defaults to 5,000, PRESET to `refinedweb` (9,000 hashes).

use std::io::BufRead;
use std::time::Instant;

use refinery_dedup::minhash::hasher::{shingle_hashes, simplify, MERSENNE_P};
use refinery_dedup::minhash::{MinHasher, MinhashConfig};

fn mod_p(x: u128) -> u64 {
    (x % u128::from(MERSENNE_P)) as u64
}

/// The scalar loop of the previous implementation, with the same parameters
/// (read back from `MinHasher`'s draw: same seed, same SplitMix64 order).
fn scalar_signature(text: &str, ngram: usize, a: &[u64], b: &[u64], out: &mut Vec<u64>) -> bool {
    let mut shingles = Vec::new();
    shingle_hashes(&simplify(text), ngram, &mut shingles);
    if shingles.is_empty() {
        return false;
    }
    out.clear();
    out.resize(a.len(), u64::MAX);
    for &h in &shingles {
        let x = mod_p(u128::from(h)) as u128;
        for ((s, &a), &b) in out.iter_mut().zip(a).zip(b) {
            let v = mod_p(u128::from(a) * x + u128::from(b));
            if v < *s {
                *s = v;
            }
        }
    }
    true
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_14EB);
    z ^ (z >> 31)
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat
/// (Linux; clock ticks of 10 ms); `None` elsewhere. On a shared machine CPU
/// time is steadier than wall time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: minhash_signatures IN.jsonl [DOCS] [PRESET]");
        std::process::exit(2);
    };
    let docs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let preset = args.get(2).map_or("refinedweb", String::as_str);
    let Some(cfg) = MinhashConfig::preset(preset) else {
        eprintln!("unknown preset {preset}");
        std::process::exit(2);
    };
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let texts: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .take(docs)
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(&l)
                .ok()
                .and_then(|v| v["text"].as_str().map(str::to_string))
        })
        .collect();
    let k = cfg.bands * cfg.rows;
    let (mut a, mut b) = (Vec::with_capacity(k), Vec::with_capacity(k));
    let mut state = cfg.seed;
    let mut draw = |lo: u64| loop {
        let v = splitmix64(&mut state) >> 3;
        if v >= lo && v < MERSENNE_P {
            return v;
        }
    };
    for _ in 0..k {
        a.push(draw(1));
        b.push(draw(0));
    }
    let mut hasher = MinHasher::new(&cfg);
    let c0 = cpu_seconds();
    let t = Instant::now();
    let mut sigs: Vec<Vec<u64>> = Vec::with_capacity(texts.len());
    for text in &texts {
        sigs.push(
            hasher
                .signature(text)
                .map(<[u64]>::to_vec)
                .unwrap_or_default(),
        );
    }
    let fast = t.elapsed().as_secs_f64();
    let c1 = cpu_seconds();
    let t = Instant::now();
    let mut same = 0;
    let mut sig = Vec::new();
    for (text, want) in texts.iter().zip(&sigs) {
        let ok = scalar_signature(text, cfg.ngram, &a, &b, &mut sig);
        same += usize::from((ok && sig == *want) || (!ok && want.is_empty()));
    }
    let scalar = t.elapsed().as_secs_f64();
    let c2 = cpu_seconds();
    if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
        println!(
            "CPU seconds: MinHasher {:.2}, scalar loop {:.2} (ratio {:.2}x)",
            c1 - c0,
            c2 - c1,
            (c2 - c1) / (c1 - c0).max(1e-9)
        );
    }
    let n = texts.len() as f64;
    println!(
        "{} docs, preset {preset} ({k} hashes)\nMinHasher: {:.1} docs/s ({fast:.2} s)\nscalar 128-bit loop: {:.1} docs/s ({scalar:.2} s)\nspeed-up {:.2}x; identical signatures: {same}/{}",
        texts.len(),
        n / fast,
        n / scalar,
        scalar / fast,
        texts.len()
    );
}

//! Prints span-level precision and recall of the PII detector on a
//! presidio-format data set, and the detector's speed on it.
//!
//! ```sh
//! cargo run --release -p refinery-pii --example pii_score [-- PATH]
//! ```
//!
//! PATH defaults to `$REFINERY_SHARED/data/pii/presidio-synth-dev.json`
//! (`REFINERY_SHARED` defaulting to `../shared`).

use std::path::PathBuf;
use std::time::Instant;

use refinery_pii::score::{load_presidio, score, table};
use refinery_pii::{Detector, PiiConfig, PiiKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("REFINERY_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared"))
            .join("data/pii/presidio-synth-dev.json"),
    };
    let samples = load_presidio(&std::fs::read_to_string(&path)?)?;
    println!("{}: {} sentences\n", path.display(), samples.len());
    let detector = Detector::new(&PiiKind::ALL)?;
    println!("All kinds (phones included):\n");
    println!("{}", table(&score(&detector, &samples)));

    // Speed of the default configuration over the sentences, repeated.
    let text: String = samples
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for (name, cfg) in [
        ("defaults (email, ip, card, iban)", PiiConfig::default()),
        (
            "all kinds",
            PiiConfig {
                phones: true,
                ..PiiConfig::default()
            },
        ),
    ] {
        let m = cfg.validate()?;
        let reps = 200;
        let start = Instant::now();
        let mut found = 0usize;
        for _ in 0..reps {
            found += m.detector().find(&text).len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {:.1} MB/s ({} bytes x {reps}, {} hits per pass)",
            (text.len() * reps) as f64 / secs / 1e6,
            text.len(),
            found / reps
        );
    }

    // Real web text: hits per kind, speed of the defaults.
    let cc = std::env::var_os("REFINERY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared"))
        .join("data/web/cc_text/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz");
    if let Ok(file) = std::fs::File::open(&cc) {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
        let mut docs = Vec::new();
        for line in reader.lines() {
            let v: serde_json::Value = serde_json::from_str(&line?)?;
            if let Some(t) = v["text"].as_str() {
                docs.push(t.to_string());
            }
        }
        let bytes: usize = docs.iter().map(String::len).sum();
        let all = Detector::new(&PiiKind::ALL)?;
        let mut per_kind = std::collections::BTreeMap::new();
        for d in &docs {
            for m in all.find(d) {
                *per_kind.entry(m.kind.key()).or_insert(0usize) += 1;
            }
        }
        println!(
            "\n{}: {} documents, {bytes} bytes; hits (all kinds): {per_kind:?}",
            cc.display(),
            docs.len()
        );
        let m = PiiConfig::default().validate()?;
        let reps = 5;
        let start = Instant::now();
        for _ in 0..reps {
            for d in &docs {
                std::hint::black_box(m.anonymize(d));
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "defaults, detect + replace: {:.1} MB/s",
            (bytes * reps) as f64 / secs / 1e6
        );
    }
    Ok(())
}

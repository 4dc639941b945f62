//! A seeded generator of documents with near-duplicates of known edit
//! rates, written from a vocabulary of made-up words (no third-party text).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_14EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` distinct pronounceable words (`kalomire`, …).
pub fn vocabulary(rng: &mut Rng, n: usize) -> Vec<String> {
    const SYL: [&str; 24] = [
        "ka", "lo", "mi", "re", "tu", "sa", "ne", "vo", "pi", "da", "gu", "fe", "zo", "ri", "ba",
        "te", "mo", "lu", "chi", "an", "el", "or", "is", "um",
    ];
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < n {
        let k = 1 + rng.below(4);
        let w: String = (0..k).map(|_| SYL[rng.below(SYL.len())]).collect();
        seen.insert(w);
    }
    let mut v: Vec<String> = seen.into_iter().collect();
    // Deterministic shuffle so word frequency is not alphabetical.
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
    v
}

/// A document as paragraphs of words.
pub type Doc = Vec<Vec<String>>;

pub fn base_doc(rng: &mut Rng, vocab: &[String], paragraphs: usize, words: usize) -> Doc {
    (0..paragraphs)
        .map(|_| {
            (0..words / paragraphs)
                .map(|_| {
                    // Zipf-ish: favour the first words of the vocabulary.
                    let r = rng.unit();
                    vocab[((r * r) * vocab.len() as f64) as usize].clone()
                })
                .collect()
        })
        .collect()
}

/// A near-duplicate: substitutions, insertions and deletions at `rate`
/// per word, and with probability `shuffle` the paragraphs reordered.
pub fn variant(rng: &mut Rng, vocab: &[String], doc: &Doc, rate: f64, shuffle: f64) -> Doc {
    let mut out: Doc = doc
        .iter()
        .map(|p| {
            let mut q = Vec::with_capacity(p.len() + 4);
            for w in p {
                let r = rng.unit();
                if r < rate / 3.0 {
                    q.push(vocab[rng.below(vocab.len())].clone()); // substitute
                } else if r < 2.0 * rate / 3.0 {
                    q.push(w.clone());
                    q.push(vocab[rng.below(vocab.len())].clone()); // insert
                } else if r < rate {
                    // delete
                } else {
                    q.push(w.clone());
                }
            }
            q
        })
        .collect();
    if rng.unit() < shuffle {
        for i in (1..out.len()).rev() {
            let j = rng.below(i + 1);
            out.swap(i, j);
        }
    }
    out
}

pub fn render(doc: &Doc) -> String {
    doc.iter()
        .map(|p| {
            let mut s = p.join(" ");
            if let Some(c) = s.get(0..1) {
                let up = c.to_uppercase();
                s.replace_range(0..1, &up);
            }
            s.push('.');
            s
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `families` base documents, each followed by `per_family` variants with
/// edit rates spread over [0, max_rate]; returns the texts in a fixed,
/// interleaved order.
pub fn corpus(
    seed: u64,
    families: usize,
    per_family: usize,
    words: usize,
    max_rate: f64,
) -> Vec<String> {
    let mut rng = Rng(seed);
    let vocab = vocabulary(&mut rng, 3000);
    let mut docs = Vec::new();
    for _ in 0..families {
        let base = base_doc(&mut rng, &vocab, 4, words);
        docs.push(render(&base));
        for v in 0..per_family {
            let rate = max_rate * (v as f64 + rng.unit()) / per_family as f64;
            let d = variant(&mut rng, &vocab, &base, rate, 0.3);
            docs.push(render(&d));
        }
    }
    // Interleave deterministically so copies land in different files.
    let mut order: Vec<usize> = (0..docs.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order.into_iter().map(|i| docs[i].clone()).collect()
}

/// Writes `texts` round-robin into `files` JSONL files `in_NN.jsonl` with ids
/// `doc-IIII`; returns the directory's file paths.
pub fn write_jsonl(dir: &Path, texts: &[String], files: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut bufs = vec![String::new(); files];
    for (i, t) in texts.iter().enumerate() {
        let line = serde_json::json!({"id": format!("doc-{i:04}"), "text": t});
        bufs[i % files].push_str(&line.to_string());
        bufs[i % files].push('\n');
    }
    (0..files)
        .map(|f| {
            let p = dir.join(format!("in_{f:02}.jsonl"));
            std::fs::write(&p, &bufs[f]).unwrap();
            p
        })
        .collect()
}

/// `../shared` (next to the workspace), or `REFINERY_SHARED`.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("REFINERY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if p.join("data").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared not found (looked at {})", p.display());
        None
    }
}

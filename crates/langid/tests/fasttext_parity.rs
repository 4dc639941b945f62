//! Parity of [`refinery_langid::FastText`] with official fastText 0.9.2 (the
//! Python wheel), on predictions written by
//! `tests/fixtures/make_fasttext_reference.py` (see its docstring for how
//! to regenerate them):
//!
//! * lid.176.ftz on every 10th line of the lingua dev set (needs
//!   `../shared`; skipped without it): same top label on every line, and
//!   |prob - ref| <= 1e-4;
//! * tiny `.bin` and `.ftz` models trained by the script on synthetic text,
//!   one per loss (hs, softmax, ova), quantized with pruning, qnorm and
//!   qout: the same labels and probabilities for k = 3, 5 and all labels,
//!   with thresholds, on synthetic lines and edge cases;
//! * truncated and corrupted copies of the models: errors, never panics.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use refinery_langid::FastText;
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn shared() -> Option<PathBuf> {
    let dir = match std::env::var_os("REFINERY_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared not found");
        None
    }
}

fn gz_lines(path: &Path) -> impl Iterator<Item = String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.unwrap())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap() as f32)
        .collect()
}

/// Compares one prediction list with the reference: the same labels in the
/// same order (ties between equal probabilities included: the predictor
/// replays fastText's heap operations), and probabilities within
/// [`TOLERANCE`].
fn check(what: &str, got: &[(&str, f32)], labels: &[String], probs: &[f32]) {
    assert_eq!(
        got.len(),
        labels.len(),
        "{what}: got {got:?}, want {labels:?} {probs:?}"
    );
    for (i, ((gl, gp), (rl, rp))) in got.iter().zip(labels.iter().zip(probs)).enumerate() {
        assert!(
            (gp - rp).abs() <= TOLERANCE,
            "{what}: prob {i} of {gl}: {gp} vs {rl} {rp}"
        );
        assert_eq!(
            gl, rl,
            "{what}: label {i}: got {got:?}, want {labels:?} {probs:?}"
        );
    }
}

#[test]
fn lid176_matches_fasttext_on_lingua_dev() {
    let Some(shared) = shared() else { return };
    let model = FastText::load(shared.join("data/models/lid/lid.176.ftz")).unwrap();
    assert_eq!(model.labels().len(), 176);
    assert_eq!(model.dim(), 16);
    assert!(model.is_quantized());

    let mut want: HashMap<usize, (Vec<String>, Vec<f32>)> = HashMap::new();
    for line in gz_lines(&fixtures().join("lid176-lingua-dev.jsonl.gz")) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let n = v["line"].as_u64().unwrap() as usize;
        want.insert(n, (strings(&v["labels"]), floats(&v["probs"])));
    }
    assert!(want.len() > 10_000, "{}", want.len());

    let mut checked = 0;
    let mut max_diff = 0.0f32;
    for (i, line) in gz_lines(&shared.join("data/langid/lingua-dev.tsv.gz")).enumerate() {
        let Some((labels, probs)) = want.get(&i) else {
            continue;
        };
        let text = line.splitn(3, '\t').nth(2).unwrap();
        let got = model.predict(text, 2, 0.0);
        check(&format!("lingua-dev line {i}"), &got, labels, probs);
        assert_eq!(got[0].0, labels[0], "line {i}: top label");
        for ((_, g), r) in got.iter().zip(probs) {
            max_diff = max_diff.max((g - r).abs());
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        want.len(),
        "lines in the fixture missing from the data"
    );
    eprintln!("lid.176: {checked} lines, max |prob - ref| = {max_diff:e}");
}

#[test]
fn tiny_models_match_fasttext() {
    let mut models: HashMap<String, FastText> = HashMap::new();
    let mut n = 0;
    for line in gz_lines(&fixtures().join("tiny-reference.jsonl.gz")) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let name = v["model"].as_str().unwrap().to_string();
        let model = models
            .entry(name.clone())
            .or_insert_with(|| FastText::load(fixtures().join(&name)).unwrap());
        let text = v["text"].as_str().unwrap();
        let k = match v["k"].as_i64().unwrap() {
            -1 => usize::MAX,
            k => k as usize,
        };
        let threshold = v["threshold"].as_f64().unwrap() as f32;
        let got = model.predict(text, k, threshold);
        check(
            &format!("{name} {text:?} k={k} threshold={threshold}"),
            &got,
            &strings(&v["labels"]),
            &floats(&v["probs"]),
        );
        n += 1;
    }
    assert!(n > 2000, "{n}");
    let mut names: Vec<_> = models.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "tiny-hs.bin",
            "tiny-hs.ftz",
            "tiny-ova.bin",
            "tiny-softmax.bin",
            "tiny-softmax.ftz"
        ]
    );
    assert!(models["tiny-hs.ftz"].is_quantized());
    assert!(!models["tiny-hs.bin"].is_quantized());
    assert_eq!(models["tiny-hs.bin"].labels().len(), 300);
}

#[test]
fn predict_document_reads_newlines_as_spaces() {
    let model = FastText::load(fixtures().join("tiny-hs.ftz")).unwrap();
    let text = "ka to mi\nжа ко\n\nри 中文";
    let joined = text.replace('\n', " ");
    assert_eq!(
        model.predict_document(text, 5, 0.0),
        model.predict(&joined, 5, 0.0)
    );
    // `predict` stops at the first newline, like fastText's getLine.
    assert_eq!(
        model.predict(text, 5, 0.0),
        model.predict("ka to mi", 5, 0.0)
    );
    assert!(model.predict(text, 0, 0.0).is_empty());
}

/// A deterministic xorshift generator for the corruption test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fuzz(name: &str, bytes: &[u8], truncations: usize, corruptions: usize) {
    let texts = ["ka to mi", "", "Hello world, this is English", "中文 жа é"];
    // Truncations: every length up to 300 bytes (header and dictionary
    // counts), then evenly spaced cuts.
    let step = (bytes.len() / truncations).max(1);
    for len in (0..300.min(bytes.len())).chain((300..bytes.len()).step_by(step)) {
        let err = FastText::from_bytes(name, &bytes[..len])
            .err()
            .unwrap_or_else(|| panic!("{name} cut at {len} bytes loaded"));
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{name}: ")), "{msg}");
    }
    // Corruptions: 1-4 random bytes overwritten, mostly in the first 4 KiB
    // where the counts and shapes are. They may load (a changed float is
    // still a model); then prediction must not panic either.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut loaded = 0;
    for _ in 0..corruptions {
        let mut copy = bytes.to_vec();
        for _ in 0..1 + rng.below(4) {
            let limit = if rng.below(4) == 0 {
                copy.len()
            } else {
                copy.len().min(4096)
            };
            let at = rng.below(limit);
            copy[at] = match rng.below(3) {
                0 => 0xff,
                1 => 0x00,
                _ => rng.next() as u8,
            };
        }
        match FastText::from_bytes(name, &copy) {
            Ok(m) => {
                loaded += 1;
                for t in texts {
                    let _ = m.predict(t, usize::MAX, 0.0);
                }
            }
            Err(e) => assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}"),
        }
    }
    eprintln!("{name}: {corruptions} corruptions, {loaded} still loaded");
}

#[test]
fn truncated_or_corrupted_models_give_errors_not_panics() {
    for name in ["tiny-hs.ftz", "tiny-softmax.ftz", "tiny-hs.bin"] {
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        fuzz(name, &bytes, 150, 200);
    }
    if let Some(shared) = shared() {
        let bytes = std::fs::read(shared.join("data/models/lid/lid.176.ftz")).unwrap();
        fuzz("lid.176.ftz", &bytes, 30, 30);
    }
}

#[test]
fn errors_name_the_file_and_the_field() {
    let bytes = std::fs::read(fixtures().join("tiny-hs.ftz")).unwrap();
    let mut bad = bytes.clone();
    // dictionary.nwords is the second i32 after magic, version and the
    // 56-byte Args.
    let at = 4 + 4 + 56 + 4;
    bad[at..at + 4].copy_from_slice(&(-1i32).to_le_bytes());
    let e = FastText::from_bytes("m.ftz", &bad).unwrap_err().to_string();
    assert!(e.starts_with("m.ftz: dictionary.nwords = -1"), "{e}");
    bad[at..at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    let e = FastText::from_bytes("m.ftz", &bad).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "m.ftz: dictionary.nwords = 2147483647 exceeds file size ({} bytes left)",
            bytes.len() - at - 4 - 4 - 8 - 8
        )
    );
    let e = FastText::from_bytes("m.ftz", b"not a model")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("m.ftz: magic = "), "{e}");
    let e = FastText::load("/nonexistent/lid.176.ftz")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/lid.176.ftz: "), "{e}");
}

#[test]
fn annotator_and_filter_use_the_fasttext_model() {
    use refinery_corpus::{Annotator, Document, Filter, Verdict};
    use refinery_langid::{LangFilterConfig, LangIdAnnotator, LangIdConfig, UNKNOWN};

    let path = fixtures().join("tiny-hs.ftz");
    let model = FastText::load(&path).unwrap();
    let mut annotate = LangIdAnnotator::new(LangIdConfig {
        model: Some(path.clone()),
        ..Default::default()
    })
    .unwrap();
    let text = "жа ко ри\nсту ни во ла жа";
    let mut doc = Document::new("1", text, "mem");
    annotate.annotate(&mut doc);
    let (label, prob) = model.predict_document(text, 1, 0.0)[0];
    assert_eq!(doc.metadata.lang.as_deref(), Some(label));
    let score = doc.metadata.lang_score.unwrap();
    assert!((score - f64::from(prob)).abs() <= 5e-5, "{score} {prob}");

    let mut blank = Document::new("2", " \n\t", "mem");
    annotate.annotate(&mut blank);
    assert_eq!(blank.metadata.lang.as_deref(), Some(UNKNOWN));
    assert_eq!(blank.metadata.lang_score, Some(0.0));

    // The filter detects with the same model when the document has no label.
    let mut keep = LangFilterConfig {
        languages: vec![label.to_string()],
        model: Some(path),
        ..Default::default()
    }
    .validate()
    .unwrap();
    assert_eq!(keep.filter(&Document::new("3", text, "mem")), Verdict::Keep);
    assert_eq!(keep.filter(&doc), Verdict::Keep);

    let err = LangIdConfig {
        model: Some("/nonexistent/model.ftz".into()),
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.field, "model");
    assert!(err.message.contains("/nonexistent/model.ftz"), "{err}");

    // Unset models are not serialized: existing run fingerprints stay valid.
    let json = serde_json::to_string(&LangIdConfig::default()).unwrap();
    assert_eq!(json, r#"{"max_chars":2000}"#);
}

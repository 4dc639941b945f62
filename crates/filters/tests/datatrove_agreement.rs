//! Agreement with datatrove's reference filters on real documents.
//!
//! `tests/fixtures/<filter>.jsonl.gz` hold datatrove's decisions (made by
//! `tests/fixtures/make_reference.py`; no document text is stored). This test
//! re-reads the same documents from `../shared`, runs our filters, and
//! requires ≥ 99% agreement on keep/drop and on the reason, per filter. It
//! prints every disagreement. WARC documents are the text our extractor
//! produced when the fixtures were made; those whose text hash no longer
//! matches (the extractor changed) are skipped.
//!
//! Debug builds compare every 8th document (to stay fast); `cargo test
//! --release` compares all of them.

/// Compare every STRIDE-th fixture line.
const STRIDE: usize = if cfg!(debug_assertions) { 8 } else { 1 };

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use refinery_corpus::{Document, Filter, Modifier, Verdict};
use refinery_filters::{
    C4Config, FineWebQualityConfig, GopherQualityConfig, GopherRepetitionConfig,
};
use serde::Deserialize;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("REFINERY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    p.is_dir().then_some(p)
}

fn gunzip_lines(path: &std::path::Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(flate2::read::MultiGzDecoder::new(f))
        .lines()
        .map(|l| l.unwrap())
        .collect()
}

#[derive(Deserialize)]
struct TextRec {
    text: String,
}

#[derive(Deserialize)]
struct Ref {
    source: String,
    doc_key: String,
    text_sha1: String,
    keep: bool,
    reason: Option<String>,
    out_sha1: Option<String>,
}

/// (source, doc_key) → text, for the cc_text and imdb documents.
fn documents(shared: &std::path::Path) -> HashMap<(String, String), String> {
    let mut docs = HashMap::new();
    let cc = shared.join("data/web/cc_text");
    let mut files: Vec<_> = std::fs::read_dir(&cc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let source = format!("cc_text/{}", path.file_name().unwrap().to_string_lossy());
        for (i, line) in gunzip_lines(&path).iter().enumerate() {
            let r: TextRec = serde_json::from_str(line).unwrap();
            docs.insert((source.clone(), i.to_string()), r.text);
        }
    }
    let imdb = shared.join("data/classification/imdb/imdb_unsup.jsonl.gz");
    for (i, line) in gunzip_lines(&imdb).iter().enumerate() {
        if i % 10 == 0 {
            let r: TextRec = serde_json::from_str(line).unwrap();
            docs.insert(("imdb_unsup".into(), i.to_string()), r.text);
        }
    }
    docs
}

/// WARC documents: text extracted by the current extractor, by id (what
/// `refinery run --preset default` extracts, before its selection stages).
fn warc_documents(shared: &std::path::Path) -> HashMap<String, String> {
    use refinery_corpus::readers::{open, Item, ReaderOptions};
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&shared.join("data/web/warc"), &mut files);
    files.sort();
    let mut extract = refinery_extract::ExtractStage::new(Default::default());
    let mut out = HashMap::new();
    for path in files {
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        for item in open(
            &path,
            &path.to_string_lossy(),
            &ReaderOptions::default(),
            bytes,
        ) {
            if let Item::Doc(mut d) = item {
                if extract.modify(&mut d) == Verdict::Keep {
                    out.insert(d.id.clone(), d.text);
                }
            }
        }
    }
    out
}

fn sha1_hex(s: &str) -> String {
    sha1_smol::Sha1::from(s.as_bytes()).digest().to_string()
}

enum Stage {
    F(Box<dyn Filter>),
    M(Box<dyn Modifier>),
}

fn run_stage(stage: &mut Stage, text: &str) -> (Verdict, Option<String>) {
    let mut d = Document::new("x", text, "t");
    match stage {
        Stage::F(f) => (f.filter(&d), None),
        Stage::M(m) => {
            let v = m.modify(&mut d);
            (v, Some(d.text))
        }
    }
}

#[test]
fn agreement_with_datatrove() {
    let Some(shared) = shared() else {
        eprintln!("skipping: ../shared not found");
        return;
    };
    let docs = documents(&shared);
    let warc = warc_documents(&shared);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases: Vec<(&str, &str, Stage)> = vec![
        (
            "gopher_repetition",
            "gopher_rep:",
            Stage::F(Box::new(
                GopherRepetitionConfig::default().validate().unwrap(),
            )),
        ),
        (
            "gopher_quality",
            "gopher_quality:",
            Stage::F(Box::new(GopherQualityConfig::default().validate().unwrap())),
        ),
        (
            "c4",
            "c4:",
            Stage::M(Box::new(C4Config::default().validate().unwrap())),
        ),
        (
            "c4_fineweb",
            "c4:",
            Stage::M(Box::new(
                C4Config {
                    filter_no_terminal_punct: false,
                    ..Default::default()
                }
                .validate()
                .unwrap(),
            )),
        ),
        (
            "fineweb_quality",
            "fineweb:",
            Stage::F(Box::new(
                FineWebQualityConfig::default().validate().unwrap(),
            )),
        ),
    ];
    let mut failures = Vec::new();
    for (name, prefix, mut stage) in cases {
        let (mut n, mut keep_agree, mut reason_agree, mut text_agree, mut skipped) =
            (0, 0, 0, 0, 0);
        let mut shown = 0;
        for line in gunzip_lines(&fixtures.join(format!("{name}.jsonl.gz")))
            .iter()
            .step_by(STRIDE)
        {
            let r: Ref = serde_json::from_str(line).unwrap();
            let text = if r.source == "warc" {
                warc.get(&r.doc_key)
            } else {
                docs.get(&(r.source.clone(), r.doc_key.clone()))
            };
            let Some(text) = text.filter(|t| sha1_hex(t) == r.text_sha1) else {
                skipped += 1;
                continue;
            };
            n += 1;
            let (v, out) = run_stage(&mut stage, text);
            let ours = match &v {
                Verdict::Keep => None,
                Verdict::Drop(reason) => Some(reason.to_string()),
            };
            let theirs = r.reason.as_ref().map(|x| format!("{prefix}{x}"));
            let keep = ours.is_none();
            keep_agree += usize::from(keep == r.keep);
            let same_reason = keep == r.keep && (keep || ours == theirs);
            reason_agree += usize::from(same_reason);
            let same_text = match (&out, &r.out_sha1) {
                (Some(o), Some(h)) if keep => sha1_hex(o) == *h,
                _ => true,
            };
            text_agree += usize::from(same_text);
            if (!same_reason || !same_text) && shown < 40 {
                shown += 1;
                eprintln!(
                    "{name}: {} {}: datatrove {:?}, ours {:?}{}",
                    r.source,
                    r.doc_key,
                    theirs.as_deref().unwrap_or("keep"),
                    ours.as_deref().unwrap_or("keep"),
                    if same_text {
                        ""
                    } else {
                        " (different output text)"
                    }
                );
            }
        }
        let pct = |a: usize| 100.0 * a as f64 / n.max(1) as f64;
        eprintln!(
            "{name}: {n} docs ({skipped} skipped): keep/drop {:.2}%, reason {:.2}%, output text {:.2}%",
            pct(keep_agree),
            pct(reason_agree),
            pct(text_agree)
        );
        assert!(n * STRIDE > 5000, "{name}: only {n} documents compared");
        if pct(keep_agree) < 99.0 || pct(reason_agree) < 99.0 || pct(text_agree) < 99.0 {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "below 99% agreement: {failures:?}");
}

//! Corpus-wide exact, URL and line dedup end to end: the cs336 line-dedup
//! fixtures byte for byte, every drop reason against a brute-force oracle,
//! outputs independent of task/partition/worker/buffer counts, resume after
//! damage, and refusal of changed parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::discover;
use refinery_corpus::readers::{Format, ReaderOptions};
use refinery_corpus::writers::{read_shard, WriterOptions};
use refinery_corpus::Document;
use refinery_dedup::corpus::{self, CorpusDedupJob, Keep, Method, Unit};
use refinery_dedup::{normalize, ExactDedupConfig};

fn shared() -> Option<PathBuf> {
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

fn job(input: &Path, out: &Path, method: Method, reader: ReaderOptions) -> CorpusDedupJob {
    CorpusDedupJob {
        inputs: discover(&[input.to_path_buf()]).unwrap(),
        reader,
        writer: WriterOptions::default(),
        output: out.to_path_buf(),
        method,
        normalize: true,
        tasks: 1,
        partitions: 4,
        workers: 1,
        rejects: true,
        buffer_bytes: 64 << 20,
    }
}

fn text_reader() -> ReaderOptions {
    ReaderOptions {
        format: Format::Text,
        ..ReaderOptions::default()
    }
}

fn shard_docs(dir: &Path) -> Vec<Document> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files.iter().flat_map(|f| read_shard(f).unwrap()).collect()
}

fn by_id(docs: Vec<Document>) -> BTreeMap<String, Document> {
    docs.into_iter().map(|d| (d.id.clone(), d)).collect()
}

fn run(job: &CorpusDedupJob) -> corpus::DedupReport {
    corpus::run(job, &AtomicBool::new(false)).unwrap()
}

/// The cs336 assignment's fixtures: a line that occurs more than once in the
/// corpus is removed from every document; documents left empty are dropped.
#[test]
fn lines_reproduce_the_cs336_fixtures_byte_for_byte() {
    let Some(shared) = shared() else { return };
    let input = shared.join("data/dedup/documents_with_line_duplicates");
    let expected = shared.join("data/dedup/documents_line_deduplicated");
    let mut outputs = Vec::new();
    for (tasks, workers, partitions) in [(1, 1, 1), (3, 2, 4), (5, 2, 7)] {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(
            &input,
            dir.path(),
            Method::Lines {
                unit: Unit::Line,
                max_occurrences: 1,
            },
            text_reader(),
        );
        (j.tasks, j.workers, j.partitions) = (tasks, workers, partitions);
        let r = run(&j);
        assert!(r.stats.invariant_ok);
        let kept = by_id(shard_docs(&dir.path().join("data")));
        let rejected = by_id(shard_docs(&dir.path().join("rejects")));
        for f in discover(std::slice::from_ref(&expected)).unwrap() {
            let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
            let want = std::fs::read_to_string(&f.path).unwrap();
            let src = input.join(&name);
            let doc = kept
                .values()
                .chain(rejected.values())
                .find(|d| Path::new(&d.source) == src)
                .unwrap_or_else(|| panic!("{name} missing"));
            if want.is_empty() {
                assert_eq!(
                    doc.metadata.get("filter_reason").unwrap(),
                    "line_dedup:empty",
                    "{name}"
                );
                assert!(!kept.contains_key(&doc.id));
            } else {
                assert!(kept.contains_key(&doc.id), "{name} dropped");
                assert_eq!(doc.text, want, "{name}");
                let original = std::fs::read_to_string(&src).unwrap();
                let removed = original.lines().count() - want.lines().count();
                let meta = doc.metadata.get("lines_removed").and_then(|v| v.as_u64());
                assert_eq!(meta.unwrap_or(0), removed as u64, "{name}");
            }
        }
        assert_eq!(r.summary.docs_emptied, 2);
        assert_eq!(r.summary.docs_modified, 2);
        assert_eq!(r.summary.segments_removed, 6);
        assert_eq!(r.stats.dropped["line_dedup:empty"], 2);
        outputs.push((kept, rejected));
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

/// A small seeded JSONL corpus in several files, with exact copies, copies
/// differing only in case/punctuation/whitespace, shared URLs and dates.
fn write_corpus(dir: &Path, files: usize, docs_per_file: usize) {
    let mut x: u64 = 42;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let bodies = [
        "The quick brown fox.",
        "the QUICK brown   fox",
        "Lorem ipsum dolor sit amet.",
        "Hello, world!",
        "hello world",
        "A unique line",
        "Another text entirely",
    ];
    let boiler = ["Home | Menu | Contact", "Cookie policy: we use cookies."];
    for f in 0..files {
        let mut s = String::new();
        for i in 0..docs_per_file {
            let mut text = String::new();
            if next() % 3 == 0 {
                text.push_str(boiler[next() % 2]);
                text.push('\n');
            }
            let b = next() % (bodies.len() + 6);
            if b < bodies.len() {
                text.push_str(bodies[b]);
            } else {
                text.push_str(&format!("Original body {f} {i} {}", next() % 1000));
            }
            text.push('\n');
            let url = if next() % 5 == 0 {
                serde_json::Value::Null
            } else {
                serde_json::Value::from(format!(
                    "{}://Example.com/page{}{}",
                    if next() % 2 == 0 { "http" } else { "HTTP" },
                    next() % 8,
                    ["", "/", "#frag"][next() % 3]
                ))
            };
            let date = if next() % 4 == 0 {
                serde_json::Value::Null
            } else {
                serde_json::Value::from(format!(
                    "2024-0{}-1{}T00:00:00Z",
                    1 + next() % 9,
                    next() % 10
                ))
            };
            let rec = serde_json::json!({"id": format!("f{f}d{i}"), "text": text, "url": url, "date": date});
            s.push_str(&rec.to_string());
            s.push('\n');
        }
        std::fs::write(dir.join(format!("part{f:02}.jsonl")), s).unwrap();
    }
}

/// All documents in input order: (id, text, url, date).
fn read_all(dir: &Path) -> Vec<Document> {
    let mut docs = Vec::new();
    for f in discover(&[dir.to_path_buf()]).unwrap() {
        for line in std::fs::read_to_string(&f.path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut d = Document::new(v["id"].as_str().unwrap(), v["text"].as_str().unwrap(), "");
            d.metadata.url = v["url"].as_str().map(String::from);
            d.metadata.date = v["date"].as_str().map(String::from);
            docs.push(d);
        }
    }
    docs
}

/// Removed id → kept id, from the rejects, checking the reason.
fn removed(out: &Path, reason: &str) -> BTreeMap<String, String> {
    shard_docs(&out.join("rejects"))
        .into_iter()
        .map(|d| {
            assert_eq!(d.metadata.get("filter_reason").unwrap(), reason);
            let k = d
                .metadata
                .get("duplicate_of")
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            (d.id, k)
        })
        .collect()
}

#[test]
fn exact_matches_the_oracle_and_ignores_task_counts() {
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 7, 60);
    let docs = read_all(input.path());
    // Oracle: the first document of each normalized text is kept.
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    let mut want = BTreeMap::new();
    for d in &docs {
        let n = normalize(&d.text, &ExactDedupConfig::default());
        match first.get(&n) {
            Some(k) => {
                want.insert(d.id.clone(), k.clone());
            }
            None => {
                first.insert(n, d.id.clone());
            }
        }
    }
    assert!(want.len() > 100, "{}", want.len());
    let mut seen = Vec::new();
    for (tasks, workers, partitions, buffer) in
        [(1, 1, 1, 64 << 20), (3, 2, 4, 1), (7, 2, 13, 4096)]
    {
        let out = tempfile::tempdir().unwrap();
        let mut j = job(
            input.path(),
            out.path(),
            Method::Exact,
            ReaderOptions::default(),
        );
        (j.tasks, j.workers, j.partitions, j.buffer_bytes) = (tasks, workers, partitions, buffer);
        let r = run(&j);
        assert_eq!(removed(out.path(), "exact_dedup:duplicate"), want);
        assert_eq!(r.summary.removed_docs, want.len() as u64);
        assert_eq!(r.stats.dropped["exact_dedup:duplicate"], want.len() as u64);
        assert_eq!(r.stats.kept_docs + want.len() as u64, docs.len() as u64);
        let kept = by_id(shard_docs(&out.path().join("data")));
        assert_eq!(kept.len(), first.len());
        seen.push(kept);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn urls_keep_first_or_newest_like_the_oracle() {
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 5, 50);
    let docs = read_all(input.path());
    for keep in [Keep::First, Keep::Newest] {
        // Oracle: group by normalized URL; the winner is the first, or the
        // newest with ties (and undated) by input order.
        let mut groups: BTreeMap<String, Vec<(usize, &Document)>> = BTreeMap::new();
        for (i, d) in docs.iter().enumerate() {
            if let Some(u) = d.metadata.url.as_deref().and_then(corpus::normalize_url) {
                groups.entry(u).or_default().push((i, d));
            }
        }
        let mut want = BTreeMap::new();
        for g in groups.values() {
            let winner = match keep {
                Keep::First => g[0].1,
                Keep::Newest => {
                    g.iter()
                        .min_by_key(|(i, d)| {
                            let t = d.metadata.date.as_deref().and_then(corpus::parse_date);
                            (std::cmp::Reverse(t.map(|t| t + (1 << 40))), *i)
                        })
                        .unwrap()
                        .1
                }
            };
            for (_, d) in g {
                if d.id != winner.id {
                    want.insert(d.id.clone(), winner.id.clone());
                }
            }
        }
        let mut seen = Vec::new();
        for (tasks, workers, partitions) in [(1, 1, 1), (4, 2, 3)] {
            let out = tempfile::tempdir().unwrap();
            let mut j = job(
                input.path(),
                out.path(),
                Method::Urls { keep },
                ReaderOptions::default(),
            );
            (j.tasks, j.workers, j.partitions) = (tasks, workers, partitions);
            let r = run(&j);
            assert_eq!(removed(out.path(), "url_dedup:duplicate"), want, "{keep:?}");
            assert!(r.summary.no_url > 0);
            assert_eq!(r.summary.distinct, groups.len() as u64);
            seen.push(shard_docs(&out.path().join("data")).len());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
    }
}

#[test]
fn paragraphs_and_max_occurrences() {
    let input = tempfile::tempdir().unwrap();
    let docs = [
        (
            "a",
            "Intro one.\nstill intro\n\nShared footer\nline two\n\n\nBody a\n",
        ),
        ("b", "Body b\n\nshared FOOTER!\nline two\n"),
        ("c", "Shared footer\nline two\n\nBody c\n"),
        ("d", "Shared footer\nline two"),
    ];
    let mut s = String::new();
    for (id, t) in docs {
        s.push_str(&serde_json::json!({"id": id, "text": t}).to_string());
        s.push('\n');
    }
    std::fs::write(input.path().join("x.jsonl"), s).unwrap();
    // Paragraph "shared footer / line two" occurs 4 times (normalized).
    let out = tempfile::tempdir().unwrap();
    let j = job(
        input.path(),
        out.path(),
        Method::Lines {
            unit: Unit::Paragraph,
            max_occurrences: 3,
        },
        ReaderOptions::default(),
    );
    let r = run(&j);
    let kept = by_id(shard_docs(&out.path().join("data")));
    assert_eq!(kept["a"].text, "Intro one.\nstill intro\n\nBody a\n");
    assert_eq!(kept["b"].text, "Body b\n\n");
    assert_eq!(kept["c"].text, "Body c\n");
    assert_eq!(kept["a"].metadata.get("paragraphs_removed").unwrap(), 1);
    assert!(!kept.contains_key("d"));
    assert_eq!(r.stats.dropped["line_dedup:empty"], 1);
    assert_eq!(r.summary.segments_removed, 4);
    // With k = 4 nothing goes.
    let out = tempfile::tempdir().unwrap();
    let mut j = j.clone();
    j.output = out.path().to_path_buf();
    j.method = Method::Lines {
        unit: Unit::Paragraph,
        max_occurrences: 4,
    };
    let r = run(&j);
    assert_eq!(r.stats.kept_docs, 4);
    assert_eq!(r.summary.docs_modified, 0);
}

/// Every file under the output except timings.
fn snapshot(out: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, m: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(root, &p, m);
            } else if !rel.starts_with("stats") {
                m.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(out, out, &mut m);
    m
}

#[test]
fn resume_after_damage_gives_identical_output() {
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 6, 40);
    for method in [
        Method::Exact,
        Method::Lines {
            unit: Unit::Line,
            max_occurrences: 1,
        },
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut j = job(
            input.path(),
            out.path(),
            method.clone(),
            ReaderOptions::default(),
        );
        (j.tasks, j.workers, j.partitions, j.buffer_bytes) = (3, 2, 4, 2048);
        run(&j);
        let clean = snapshot(out.path());
        let dir = out.path().join(method.dir_name());

        // A killed hash task: marker gone, a run file truncated.
        std::fs::remove_file(dir.join("hash/completions/00001")).unwrap();
        let run_file = std::fs::read_dir(dir.join("hash/part_002"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("00001_")
            })
            .unwrap();
        let bytes = std::fs::read(&run_file).unwrap();
        std::fs::write(&run_file, &bytes[..bytes.len() / 2]).unwrap();
        // A killed filter task: marker and a shard gone.
        std::fs::remove_file(dir.join("filter/completions/00002")).unwrap();
        std::fs::remove_file(out.path().join("data/00002_00000.jsonl.zst")).unwrap();
        let r = run(&j);
        assert_eq!(r.steps[0].tasks_run, 1);
        assert_eq!(r.steps[1].tasks_run, 4, "decide reruns after hash reran");
        assert_eq!(snapshot(out.path()), clean, "{method:?}");

        // A damaged decide output with its marker intact is an error naming it.
        let victim = match method {
            Method::Lines { .. } => dir.join("decide/dups_001.bin"),
            _ => dir.join("decide/remove_001_00000.bin"),
        };
        let bytes = std::fs::read(&victim).unwrap();
        std::fs::write(&victim, &bytes[..bytes.len() - 1]).unwrap();
        std::fs::remove_file(dir.join("filter/completions/00000")).unwrap();
        let err = corpus::run(&j, &AtomicBool::new(false))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&*victim.file_name().unwrap().to_string_lossy()),
            "{err}"
        );
        assert!(err.contains("truncated"), "{err}");
    }
}

#[test]
fn changed_parameters_are_refused_and_steps_need_their_predecessors() {
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 2, 10);
    let out = tempfile::tempdir().unwrap();
    let j = job(
        input.path(),
        out.path(),
        Method::Exact,
        ReaderOptions::default(),
    );
    let cancel = AtomicBool::new(false);
    let err = corpus::run_step(&j, 1, None, &cancel)
        .unwrap_err()
        .to_string();
    assert!(err.contains("step hash is not complete"), "{err}");
    run(&j);
    let mut k = j.clone();
    k.partitions = 5;
    let err = corpus::run(&k, &cancel).unwrap_err().to_string();
    assert!(
        err.contains("`partitions`") && err.contains("params.json"),
        "{err}"
    );
    // Workers and buffer never change the result, so they may change.
    let mut k = j.clone();
    k.workers = 2;
    k.buffer_bytes = 1;
    let r = corpus::run(&k, &cancel).unwrap();
    assert!(r.steps.iter().all(|s| s.tasks_run == 0));
}

#[test]
fn the_input_changing_between_steps_is_detected() {
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 2, 10);
    let out = tempfile::tempdir().unwrap();
    let j = job(
        input.path(),
        out.path(),
        Method::Exact,
        ReaderOptions::default(),
    );
    let cancel = AtomicBool::new(false);
    corpus::run_step(&j, 0, None, &cancel).unwrap();
    corpus::run_step(&j, 1, None, &cancel).unwrap();
    let f = input.path().join("part00.jsonl");
    let text = std::fs::read_to_string(&f).unwrap();
    // Same size (so the fingerprint still matches), two records fewer: the
    // first two lines become one invalid JSON line.
    let joined = text.replacen('\n', " ", 1);
    assert_eq!(joined.len(), text.len());
    std::fs::write(&f, joined).unwrap();
    let err = corpus::run_step(&j, 2, None, &cancel)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the input changed") && err.contains("part00.jsonl"),
        "{err}"
    );
}

#[test]
fn ids_are_unique_across_outputs() {
    // Every input document ends up exactly once in data/ or rejects/.
    let input = tempfile::tempdir().unwrap();
    write_corpus(input.path(), 3, 30);
    let out = tempfile::tempdir().unwrap();
    let j = job(
        input.path(),
        out.path(),
        Method::Urls { keep: Keep::Newest },
        ReaderOptions::default(),
    );
    run(&j);
    let mut all: Vec<String> = shard_docs(&out.path().join("data"))
        .into_iter()
        .chain(shard_docs(&out.path().join("rejects")))
        .map(|d| d.id)
        .collect();
    all.sort();
    let want: BTreeSet<String> = read_all(input.path()).into_iter().map(|d| d.id).collect();
    assert_eq!(all.len(), want.len());
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), want);
}

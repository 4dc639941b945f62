//! Parquet through `refinery run`: Parquet output equals JSONL output
//! document for document; a large Parquet input split by row groups over
//! tasks keeps its per-file account exact, gives the same documents as an
//! unsplit run, and resumes byte-identically after kill -9.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use refinery_corpus::writers::{read_shard, OutputFormat, ShardWriter, WriterOptions};
use refinery_corpus::Document;

fn shards(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn all_docs(dir: &Path) -> Vec<Document> {
    shards(dir)
        .iter()
        .flat_map(|f| read_shard(f).unwrap())
        .collect()
}

#[test]
fn parquet_output_holds_the_same_documents_as_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let (i, j, p) = (
        input.to_str().unwrap(),
        dir.path().join("jsonl"),
        dir.path().join("parquet"),
    );
    let base = [
        "run",
        "--preset",
        "default",
        "-i",
        i,
        "--tasks",
        "2",
        "--rejects",
        "-q",
    ];
    ok(&[&base[..], &["-o", j.to_str().unwrap()]].concat());
    ok(&[
        &base[..],
        &["-o", p.to_str().unwrap(), "--output-format", "parquet"],
    ]
    .concat());
    for sub in ["data", "rejects"] {
        let a = all_docs(&j.join(sub));
        let b = all_docs(&p.join(sub));
        assert!(!a.is_empty());
        assert_eq!(a, b, "{sub}");
        assert!(shards(&p.join(sub))
            .iter()
            .all(|f| f.to_string_lossy().ends_with(".parquet")));
    }
    let (sj, sp) = (stats(&j), stats(&p));
    assert_accounting(&sp);
    assert_eq!(sj["kept_docs"], sp["kept_docs"]);
    assert_eq!(sj["writer"]["chars"], sp["writer"]["chars"]);
    // The Parquet shards read back as input: a second run keeps every document.
    let again = dir.path().join("again");
    ok(&[
        "run",
        "--preset",
        "default",
        "-i",
        p.join("data").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
        "-q",
    ]);
    let s = stats(&again);
    assert_eq!(s["input_docs"], sp["kept_docs"]);
}

/// A Parquet input of `n` documents in many small row groups.
fn parquet_input(dir: &Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let opts = WriterOptions {
        format: OutputFormat::Parquet,
        row_group_bytes: 4 << 10,
        max_shard_bytes: u64::MAX,
        ..WriterOptions::default()
    };
    let mut w = ShardWriter::new(dir, "big", opts).unwrap();
    for i in 0..n {
        // Every 7th text repeats an earlier one (exact dedup has work to do),
        // every 11th is short (the length filter drops it).
        let body = if i % 11 == 0 {
            "too short".to_string()
        } else {
            format!(
                "Document number {} talks about {} at some length. ",
                i - i % 7,
                ["rivers", "bread", "trains", "music"][i % 4]
            )
            .repeat(3)
        };
        let mut d = Document::new(format!("row-{i:06}"), body, "origin");
        d.metadata.url = Some(format!("https://site{}.example/{i}", i % 13));
        w.write(&d).unwrap();
    }
    w.finish().unwrap();
    dir.join("big_00000.parquet")
}

fn pipeline(input: &Path, out: &Path, split: u64) -> String {
    format!(
        r#"
[input]
paths = ["{}"]

[[stages]]
type = "length_filter"
min_chars = 40

[[stages]]
type = "exact_dedup"

[writer]
format = "parquet"
row_group_bytes = 8192

[output]
path = "{}"
rejects = true

[executor]
tasks = 4
workers = 2
parquet_split_bytes = {split}
"#,
        input.display(),
        out.display()
    )
}

fn run_toml(dir: &Path, name: &str, toml: &str) -> Vec<String> {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, toml).unwrap();
    vec!["run".into(), p.to_string_lossy().into_owned(), "-q".into()]
}

fn sorted_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = all_docs(dir).into_iter().map(|d| d.id).collect();
    ids.sort();
    ids
}

#[test]
fn a_large_parquet_file_spreads_over_tasks_with_exact_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let file = parquet_input(&dir.path().join("in"), 3000);
    let size = std::fs::metadata(&file).unwrap().len();
    let split = dir.path().join("split");
    let whole = dir.path().join("whole");
    let a = run_toml(dir.path(), "split", &pipeline(&file, &split, size / 10));
    let b = run_toml(dir.path(), "whole", &pipeline(&file, &whole, 0));
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&b.iter().map(String::as_str).collect::<Vec<_>>());
    // Every task read part of the one file.
    for t in 0..4 {
        let ts: serde_json::Value = serde_json::from_slice(
            &std::fs::read(split.join(format!("stats/{t:05}.json"))).unwrap(),
        )
        .unwrap();
        let rec = ts["files"][file.to_str().unwrap()]["records"]
            .as_u64()
            .unwrap_or(0);
        assert!(rec > 0, "task {t} read no rows of the file");
    }
    let (ss, sw) = (stats(&split), stats(&whole));
    assert_accounting(&ss);
    let f = &ss["files"][file.to_str().unwrap()];
    assert_eq!(f["records"], 3000);
    assert_eq!(f["bytes"], size, "the parts add up to the file size");
    let fw = &sw["files"][file.to_str().unwrap()];
    assert_eq!((&f["records"], &f["bytes"]), (&fw["records"], &fw["bytes"]));
    assert_eq!(ss["input_docs"], 3000);
    // Exact dedup is per task, so which duplicates survive depends on the
    // split; everything else is the same.
    assert_eq!(
        ss["dropped"]["length:too_few_chars"],
        sw["dropped"]["length:too_few_chars"]
    );
    let kept: u64 = ss["kept_docs"].as_u64().unwrap();
    assert_eq!(sorted_ids(&split.join("data")).len() as u64, kept);
    let mut all = sorted_ids(&split.join("data"));
    all.extend(sorted_ids(&split.join("rejects")));
    all.sort();
    let mut all_whole = sorted_ids(&whole.join("data"));
    all_whole.extend(sorted_ids(&whole.join("rejects")));
    all_whole.sort();
    assert_eq!(all, all_whole, "the same rows, kept or rejected");
    // A different split is a different run: resuming into it is refused.
    let c = run_toml(dir.path(), "other", &pipeline(&file, &split, size / 5));
    let out = refinery().args(&c).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parquet_parts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn completions(out: &Path) -> usize {
    std::fs::read_dir(out.join("completions"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn kill_9_during_a_split_parquet_run_then_resume_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean");
    let crashed = dir.path().join("crashed");
    let mut rows = 20_000;
    let mut interrupted = false;
    let mut file = PathBuf::new();
    for _ in 0..4 {
        let _ = std::fs::remove_dir_all(dir.path().join("in"));
        let _ = std::fs::remove_dir_all(&crashed);
        file = parquet_input(&dir.path().join("in"), rows);
        let size = std::fs::metadata(&file).unwrap().len();
        let args = run_toml(dir.path(), "crashed", &pipeline(&file, &crashed, size / 12));
        let mut child = refinery().args(&args).spawn().unwrap();
        let start = Instant::now();
        loop {
            if completions(&crashed) >= 1 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.wait();
        if (1..4).contains(&completions(&crashed)) {
            interrupted = true;
            break;
        }
        rows *= 2;
    }
    assert!(
        interrupted,
        "could not interrupt the run between task completions"
    );
    assert!(!crashed.join("stats.json").exists());
    let size = std::fs::metadata(&file).unwrap().len();
    let resume = run_toml(dir.path(), "crashed", &pipeline(&file, &crashed, size / 12));
    ok(&resume.iter().map(String::as_str).collect::<Vec<_>>());
    let fresh = run_toml(dir.path(), "clean", &pipeline(&file, &clean, size / 12));
    ok(&fresh.iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = (outputs(&clean), outputs(&crashed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a.keys().any(|k| k.ends_with(".parquet")));
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs after resume");
    }
    assert_eq!(stats_without_time(&clean), stats_without_time(&crashed));
}

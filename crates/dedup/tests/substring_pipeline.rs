//! Substring dedup as a resumable job: damaged intermediate files are
//! errors, not panics; real data gives the same output for any sharding.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::{read_shard, WriterOptions};
use refinery_dedup::substring::{self, SubstringConfig, SubstringJob};

fn job(inputs: &[PathBuf], out: &Path, tasks: usize, shard_units: u64) -> SubstringJob {
    SubstringJob {
        inputs: discover(inputs).unwrap(),
        reader: ReaderOptions::default(),
        writer: WriterOptions::default(),
        output: out.to_path_buf(),
        config: SubstringConfig {
            min_len: 30,
            ..SubstringConfig::default()
        },
        tasks,
        workers: 2,
        rejects: true,
        shard_units,
        merge_memory_bytes: 1 << 30,
    }
}

fn docs(out: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for d in ["data", "rejects"] {
        let Ok(rd) = std::fs::read_dir(out.join(d)) else {
            continue;
        };
        for e in rd {
            for doc in read_shard(&e.unwrap().path()).unwrap() {
                v.push((doc.id, doc.text));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn damaged_intermediate_files_are_errors_and_a_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let text = "the same long sentence that repeats in every document of this file";
    let lines: String = (0..5)
        .map(|i| {
            serde_json::json!({"id": format!("d{i}"), "text": format!("{i} {text} {i}")})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    let out = tmp.path().join("out");
    let j = job(std::slice::from_ref(&input), &out, 1, 64);
    let cancel = AtomicBool::new(false);
    let first = substring::run(&j, &cancel).unwrap();
    assert_eq!(first.summary.docs_touched, 4);
    let want = docs(&out);
    let sub = out.join("substring");
    for (file, step) in [
        ("suffixes/shard_00001.bin", "merge"),
        ("sequences/docs_00000.bin", "merge"),
        ("merge/marks_00000.bin", "filter"),
    ] {
        let p = sub.join(file);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        std::fs::remove_dir_all(sub.join(step).join("completions")).unwrap();
        let e = substring::run(&j, &cancel).unwrap_err().to_string();
        assert!(e.contains("malformed intermediate file"), "{file}: {e}");
        std::fs::write(&p, &bytes).unwrap();
        let again = substring::run(&j, &cancel).unwrap();
        assert_eq!(again.summary, first.summary);
        assert_eq!(docs(&out), want);
    }
    // Other parameters are refused.
    let mut other = j.clone();
    other.config.min_len = 31;
    assert!(substring::run(&other, &cancel)
        .unwrap_err()
        .to_string()
        .contains("params.json"));
}

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

#[test]
fn shared_documents_dedup_the_same_for_any_sharding() {
    let Some(shared) = shared() else { return };
    let d = shared.join("data/dedup");
    let inputs = vec![
        d.join("documents_with_line_duplicates"),
        d.join("documents_with_fuzzy_duplicates"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    let one = substring::run(&job(&inputs, &tmp.path().join("one"), 1, 1 << 26), &cancel).unwrap();
    let many = substring::run(&job(&inputs, &tmp.path().join("many"), 3, 2000), &cancel).unwrap();
    assert_eq!(one.summary.shards, 1);
    assert!(many.summary.shards > 3, "{:?}", many.summary);
    assert!(one.summary.units_removed > 0, "{:?}", one.summary);
    let mut a = one.summary.clone();
    a.shards = many.summary.shards;
    a.max_shard_units = many.summary.max_shard_units;
    assert_eq!(a, many.summary);
    assert_eq!(
        docs(&tmp.path().join("one")),
        docs(&tmp.path().join("many"))
    );
    assert_eq!(
        one.stats.input_docs,
        one.stats.kept_docs + one.stats.dropped.values().sum::<u64>()
    );
}

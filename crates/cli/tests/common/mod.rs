//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `refinery` binary built for this test run.
pub fn refinery() -> Command {
    Command::new(env!("CARGO_BIN_EXE_refinery"))
}

/// Runs `refinery ARGS`, returning the output; panics with stderr on failure.
pub fn ok(args: &[&str]) -> Output {
    let out = refinery().args(args).output().expect("spawn refinery");
    assert!(
        out.status.success(),
        "refinery {args:?} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// `../shared` (next to the workspace), or `REFINERY_SHARED`; `None` with a
/// message when absent, so data-backed tests skip on a user's fresh clone.
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

/// The embedded sample shipped with the CLI crate.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample")
}

/// Copies the sample's WARC and JSONL into `dir` (the demo's input).
pub fn copy_sample(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["sample.warc.gz", "sample.jsonl"] {
        std::fs::copy(sample_dir().join(f), dir.join(f)).unwrap();
    }
}

/// Every output file of a run that must be byte-identical between runs:
/// shards, rejects, failure logs and completion markers (not the stats,
/// which carry timings).
pub fn outputs(run: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for d in ["data", "rejects", "failures", "completions"] {
        let dir = run.join(d);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let name = format!("{d}/{}", p.file_name().unwrap().to_string_lossy());
            m.insert(name, std::fs::read(&p).unwrap());
        }
    }
    m
}

/// The merged stats of a run, as JSON.
pub fn stats(run: &Path) -> serde_json::Value {
    let bytes = std::fs::read(run.join("stats.json")).expect("stats.json");
    serde_json::from_slice(&bytes).unwrap()
}

/// Stats with timings removed, for comparing two runs.
pub fn stats_without_time(run: &Path) -> serde_json::Value {
    let mut s = stats(run);
    s.as_object_mut().unwrap().remove("task_seconds");
    for st in s["stages"].as_array_mut().unwrap() {
        st.as_object_mut().unwrap().remove("seconds");
    }
    s
}

/// Asserts the accounting invariant from the JSON alone.
pub fn assert_accounting(s: &serde_json::Value) {
    let sum = |v: &serde_json::Value| -> u64 {
        v.as_object()
            .unwrap()
            .values()
            .map(|x| x.as_u64().unwrap())
            .sum()
    };
    assert_eq!(s["invariant_ok"], true);
    let input = s["input_docs"].as_u64().unwrap();
    let kept = s["kept_docs"].as_u64().unwrap();
    assert_eq!(
        input,
        kept + sum(&s["dropped"]) + sum(&s["failed"]),
        "{s:#}"
    );
    for (file, f) in s["files"].as_object().unwrap() {
        let rec = f["records"].as_u64().unwrap();
        let k = f["kept"].as_u64().unwrap();
        assert_eq!(rec, k + sum(&f["dropped"]) + sum(&f["failed"]), "{file}");
    }
}

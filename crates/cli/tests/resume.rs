//! Crash and resume: a run killed with SIGKILL in the middle, then rerun with
//! the same arguments, must leave output byte-identical to a clean run.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Input big enough that a 4-task run takes a while: the sample, repeated
/// under distinct names (exact dedup is per task, so every copy is work).
fn make_input(dir: &Path, copies: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let warc = std::fs::read(sample_dir().join("sample.warc.gz")).unwrap();
    let jsonl = std::fs::read(sample_dir().join("sample.jsonl")).unwrap();
    for i in 0..copies {
        std::fs::write(dir.join(format!("c{i:03}.warc.gz")), &warc).unwrap();
        std::fs::write(dir.join(format!("c{i:03}.jsonl")), &jsonl).unwrap();
    }
}

fn args<'a>(input: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--preset",
        "default",
        "-i",
        input,
        "-o",
        out,
        "--tasks",
        "4",
        "--workers",
        "2",
        "--rejects",
        "-q",
    ]
}

fn completions(out: &Path) -> usize {
    std::fs::read_dir(out.join("completions"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_run_then_resume_matches_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let clean = dir.path().join("clean");
    let crashed = dir.path().join("crashed");
    let (i, c, k) = (
        input.to_str().unwrap(),
        clean.to_str().unwrap(),
        crashed.to_str().unwrap(),
    );

    // Grow the input until the kill lands between the first and the last completion.
    let mut copies = 24;
    let mut interrupted = false;
    for _attempt in 0..4 {
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&crashed);
        make_input(&input, copies);
        let mut child = refinery().args(args(i, k)).spawn().unwrap();
        let start = Instant::now();
        loop {
            let n = completions(&crashed);
            if n >= 1 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.wait();
        let n = completions(&crashed);
        if (1..4).contains(&n) {
            interrupted = true;
            break;
        }
        copies *= 2;
    }
    assert!(
        interrupted,
        "could not interrupt the run between task completions"
    );
    assert!(
        !crashed.join("stats.json").exists(),
        "a killed run must not look complete"
    );

    // Resume with the same arguments, then a clean run for comparison.
    let out = ok(&args(i, k));
    assert!(String::from_utf8_lossy(&out.stdout).contains("input"));
    ok(&args(i, c));

    let (a, b) = (outputs(&clean), outputs(&crashed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs after resume");
    }
    assert_eq!(stats_without_time(&clean), stats_without_time(&crashed));
    assert_accounting(&stats(&crashed));
    // No temp files survive.
    for d in ["data", "rejects"] {
        for e in std::fs::read_dir(crashed.join(d)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "leftover temp file {d}/{name}");
        }
    }
}

#[test]
fn leftovers_of_an_unfinished_task_are_replaced_not_kept() {
    // The state a crash leaves behind, made deterministically: a complete
    // run, then one task's marker removed, a shard truncated and a temp file added.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    make_input(&input, 4);
    let out = dir.path().join("out");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    ok(&args(i, o));
    let reference = outputs(&out);

    std::fs::remove_file(out.join("completions/00002")).unwrap();
    std::fs::remove_file(out.join("stats.json")).unwrap();
    let shard = out.join("data/00002_00000.jsonl.zst");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(out.join("data/.00002_00001.jsonl.zst.tmp"), b"partial").unwrap();
    std::fs::write(
        out.join("data/00002_00007.jsonl.zst"),
        b"stale shard from an older attempt",
    )
    .unwrap();
    // Killed while writing the completion marker itself.
    std::fs::write(out.join("completions/.00002.4242.0.tmp"), b"").unwrap();

    let run = ok(&args(i, o));
    let _ = run;
    assert_eq!(outputs(&out), reference);
    assert_accounting(&stats(&out));
}

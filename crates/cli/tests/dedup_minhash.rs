//! `refinery dedup minhash` and `refinery dedup explain` end to end.

mod common;

use std::path::Path;

fn write_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // Made-up text: a base paragraph and a lightly edited copy in another file.
    // Digits normalize to `0`, so the words are spelled with letters.
    let word = |n: usize| -> String {
        let l = |k: usize| (b'a' + (k % 26) as u8) as char;
        [l(n), l(n / 26), l(n / 676), 'x'].iter().collect()
    };
    let base: String = (0..120).map(|i| word(i * 7919 % 9973) + " ").collect();
    let edited = base.to_uppercase() + "one more tail";
    let other: String = (0..120).map(|i| word(i * 31 + 5000) + "q ").collect();
    let line = |id: &str, t: &str| serde_json::json!({"id": id, "text": t}).to_string() + "\n";
    std::fs::write(dir.join("a.jsonl"), line("a0", &base) + &line("a1", &other)).unwrap();
    std::fs::write(dir.join("b.jsonl"), line("b0", &edited)).unwrap();
}

#[test]
fn dedup_minhash_removes_the_copy_and_explains_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_inputs(&input);
    let out = dir.path().join("out");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "dedup",
        "minhash",
        "--input",
        i,
        "--output",
        o,
        "--tasks",
        "2",
        "--workers",
        "2",
        "--rejects",
        "--threshold-report",
    ];
    let r = common::ok(&args);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("1 removed"), "{stdout}");
    assert!(String::from_utf8_lossy(&r.stderr).contains("threshold"));
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["input_docs"], 3);
    assert_eq!(stats["kept_docs"], 2);
    assert_eq!(stats["dropped"]["minhash:duplicate"], 1);

    let e = common::ok(&["dedup", "explain", o, "b0"]);
    let text = String::from_utf8_lossy(&e.stdout);
    assert!(text.contains("cluster 0") && text.contains("a0"), "{text}");

    // A rerun skips everything; other parameters are refused.
    let r = common::ok(&args);
    assert!(String::from_utf8_lossy(&r.stdout).contains("0 task(s) run"));
    let bad = common::refinery()
        .args([
            "dedup", "minhash", "--input", i, "--output", o, "--tasks", "2", "--bands", "7",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("params.json"));
    // `refinery stats` reads the output like any run.
    common::ok(&["stats", o]);
}

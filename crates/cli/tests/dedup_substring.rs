//! `refinery dedup substring` end to end.

mod common;

#[test]
fn dedup_substring_removes_the_repeated_span_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let boiler =
        "Subscribe to our newsletter for weekly updates on every new article we publish here.";
    let line = |id: &str, t: &str| serde_json::json!({"id": id, "text": t}).to_string() + "\n";
    std::fs::write(
        input.join("a.jsonl"),
        line("a0", &format!("First post about rivers. {boiler}"))
            + &line("a1", "Short unrelated note."),
    )
    .unwrap();
    std::fs::write(
        input.join("b.jsonl"),
        line("b0", &format!("Second post about lakes. {boiler}")) + &line("b1", boiler),
    )
    .unwrap();
    let out = dir.path().join("out");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "dedup",
        "substring",
        "--input",
        i,
        "--output",
        o,
        "--min-len",
        "20",
        "--tasks",
        "2",
        "--workers",
        "2",
        "--rejects",
        "--shard-units",
        "100",
    ];
    let r = common::ok(&args);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("from 2 docs"), "{stdout}");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["input_docs"], 4);
    assert_eq!(stats["kept_docs"], 3);
    assert_eq!(stats["dropped"]["substring_dedup:empty"], 1);
    // A rerun skips everything; other parameters are refused.
    let r = common::ok(&args);
    assert!(String::from_utf8_lossy(&r.stdout).contains("0 task(s) run"));
    let bad = common::refinery()
        .args([
            "dedup",
            "substring",
            "--input",
            i,
            "--output",
            o,
            "--min-len",
            "30",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("params.json"));
    common::ok(&["stats", o]);
}

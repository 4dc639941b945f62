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

/// `--step NAME` means one thing: a step of the command, or `finish` (the
/// final stats) in every dedup command; `merge`, the old name of `finish`
/// in MinHash dedup, still works. Rank by rank then `finish` gives the
/// one-shot run's output, and the final Slurm array runs `--step finish`.
#[test]
fn dedup_minhash_steps_then_finish_match_the_one_shot_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_inputs(&input);
    let i = input.to_str().unwrap();
    let base = |o: &Path| -> Vec<String> {
        [
            "dedup",
            "minhash",
            "--input",
            i,
            "--output",
            o.to_str().unwrap(),
        ]
        .into_iter()
        .chain(["--tasks", "2", "--rejects"])
        .map(String::from)
        .collect()
    };
    let run = |args: &[String]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        common::ok(&a)
    };
    let one = dir.path().join("one");
    run(&base(&one));
    for finish in ["finish", "merge"] {
        let split = dir.path().join(format!("split-{finish}"));
        // `finish` before the steps is refused: nothing is complete.
        let mut early = base(&split);
        early.extend(["--step".into(), finish.into()]);
        let a: Vec<&str> = early.iter().map(String::as_str).collect();
        let out = common::refinery().args(&a).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not complete"));
        for (step, ranks) in [
            ("signatures", 2),
            ("buckets", 14),
            ("clusters", 1),
            ("filter", 2),
        ] {
            for t in 0..ranks {
                let mut a = base(&split);
                a.extend(["--step".into(), step.into(), "--task".into(), t.to_string()]);
                let r = run(&a);
                assert!(String::from_utf8_lossy(&r.stdout).contains("1 task(s) run"));
            }
        }
        let mut a = base(&split);
        a.extend(["--step".into(), finish.into()]);
        run(&a);
        assert_eq!(
            common::stats_without_time(&one),
            common::stats_without_time(&split),
            "--step {finish}"
        );
    }
    let mut bad = base(&dir.path().join("bad"));
    bad.extend(["--step".into(), "decide".into()]);
    let a: Vec<&str> = bad.iter().map(String::as_str).collect();
    let out = common::refinery().args(&a).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("signatures, buckets, clusters, filter, finish"),
        "{err}"
    );

    let slurm = dir.path().join("slurm");
    let mut a = base(&slurm);
    a.extend(["--executor".into(), "slurm".into(), "--dry-run".into()]);
    run(&a);
    let last = std::fs::read_to_string(slurm.join("slurm/04-minhash-merge.sbatch")).unwrap();
    assert!(last.contains("--step finish"), "{last}");
}

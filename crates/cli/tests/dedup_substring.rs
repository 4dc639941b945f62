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

/// `--executor slurm --dry-run` writes one array script per step; running
/// every array task of every script in order (as Slurm would, here with
/// bash) and running `--step S --task i` by hand both give the one-shot
/// output.
#[test]
fn dedup_substring_steps_and_slurm_scripts_match_the_one_shot_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let boiler = "All rights reserved. Reproduction of this page without permission is prohibited.";
    for f in 0..5 {
        let mut s = String::new();
        for d in 0..4 {
            let text = format!(
                "Doc {f}-{d} talks about topic {} at length. {boiler}",
                f * 7 + d
            );
            s.push_str(
                &(serde_json::json!({"id": format!("{f}-{d}"), "text": text}).to_string() + "\n"),
            );
        }
        std::fs::write(input.join(format!("f{f}.jsonl")), s).unwrap();
    }
    let i = input.to_str().unwrap();
    let common_args = |o: &str| -> Vec<String> {
        [
            "dedup",
            "substring",
            "--input",
            i,
            "--output",
            o,
            "--min-len",
            "25",
            "--tasks",
            "3",
            "--shard-units",
            "300",
            "--rejects",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run_args = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        common::ok(&refs)
    };
    let one = dir.path().join("one");
    run_args(common_args(one.to_str().unwrap()));

    // By hand: every rank of every step, then finish.
    let split = dir.path().join("split");
    let so = split.to_str().unwrap();
    for (step, ranks) in [
        ("sequences", 3),
        ("suffixes", 3),
        ("merge", 1),
        ("filter", 3),
    ] {
        for t in 0..ranks {
            let mut a = common_args(so);
            a.extend(["--step".into(), step.into(), "--task".into(), t.to_string()]);
            let r = run_args(a);
            assert!(String::from_utf8_lossy(&r.stdout).contains("task(s) run"));
        }
    }
    let mut a = common_args(so);
    a.extend(["--step".into(), "finish".into()]);
    run_args(a);

    // Slurm scripts, run with bash.
    let slurm = dir.path().join("slurm");
    let mut a = common_args(slurm.to_str().unwrap());
    a.extend(["--executor".into(), "slurm".into(), "--dry-run".into()]);
    let r = run_args(a);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout)
            .matches("sbatch ")
            .count(),
        5
    );
    let names = [
        "00-substring-sequences",
        "01-substring-suffixes",
        "02-substring-merge",
        "03-substring-filter",
        "04-substring-finish",
    ];
    for name in names {
        let path = slurm.join("slurm").join(format!("{name}.sbatch"));
        let script = std::fs::read_to_string(&path).unwrap();
        let array = script
            .lines()
            .find_map(|l| l.strip_prefix("#SBATCH --array=0-"))
            .unwrap();
        let last: usize = array.parse().unwrap();
        assert_eq!(
            last,
            if name.contains("merge") || name.contains("finish") {
                0
            } else {
                2
            },
            "{script}"
        );
        for t in 0..=last {
            let st = std::process::Command::new("bash")
                .arg(&path)
                .env("SLURM_ARRAY_TASK_ID", t.to_string())
                .status()
                .unwrap();
            assert!(st.success(), "{name} task {t}");
        }
    }

    for other in [&split, &slurm] {
        for sub in ["data", "rejects"] {
            let list = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
                let Ok(entries) = std::fs::read_dir(d.join(sub)) else {
                    return Vec::new();
                };
                let mut v: Vec<_> = entries
                    .map(|e| {
                        let p = e.unwrap().path();
                        (
                            p.file_name().unwrap().to_string_lossy().into_owned(),
                            std::fs::read(&p).unwrap(),
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            assert_eq!(list(&one), list(other), "{} {sub}", other.display());
        }
        assert_eq!(
            std::fs::read(one.join("substring/merge/summary.json")).unwrap(),
            std::fs::read(other.join("substring/merge/summary.json")).unwrap()
        );
    }
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(split.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["input_docs"], 20);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("substring/merge/summary.json")).unwrap())
            .unwrap();
    assert!(summary["shards"].as_u64().unwrap() > 3, "{summary}");
    assert!(
        summary["units_removed"].as_u64().unwrap() > 4 * 70,
        "{summary}"
    );
}

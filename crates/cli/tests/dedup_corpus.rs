//! `refinery dedup exact|urls|lines` from the command line: the cs336
//! line-dedup fixtures, rank-by-rank runs (`--step/--task`) equal to a
//! one-shot run, and Slurm scripts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{ok, refinery, shared};
use refinery_corpus::writers::read_shard;
use refinery_corpus::Document;

fn shard_docs(dir: &Path) -> Vec<Document> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files.iter().flat_map(|f| read_shard(f).unwrap()).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn lines_on_the_cs336_fixtures() {
    let Some(shared) = shared() else { return };
    let input = shared.join("data/dedup/documents_with_line_duplicates");
    let expected = shared.join("data/dedup/documents_line_deduplicated");
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("lines");
    let r = ok(&[
        "dedup",
        "lines",
        "--input",
        s(&input),
        "--output",
        s(&o),
        "--format",
        "text",
        "--tasks",
        "2",
        "--workers",
        "2",
        "--rejects",
    ]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(
        stdout.contains("6 lines removed, 2 docs edited, 2 emptied"),
        "{stdout}"
    );
    let kept: BTreeMap<String, String> = shard_docs(&o.join("data"))
        .into_iter()
        .map(|d| {
            let name = Path::new(&d.source)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, d.text)
        })
        .collect();
    for e in std::fs::read_dir(&expected).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let want = std::fs::read_to_string(&p).unwrap();
        if want.is_empty() {
            assert!(!kept.contains_key(&name), "{name} should be dropped");
        } else {
            assert_eq!(kept.get(&name), Some(&want), "{name}");
        }
    }
    let rejects = shard_docs(&o.join("rejects"));
    assert_eq!(rejects.len(), 2);
    assert!(rejects
        .iter()
        .all(|d| d.metadata.get("filter_reason").unwrap() == "line_dedup:empty"));
}

fn corpus(dir: &Path) {
    for f in 0..4 {
        let mut s = String::new();
        for i in 0..20 {
            let text = if i % 3 == 0 {
                format!("Shared text {}!", i % 4)
            } else {
                format!("unique {f} {i}")
            };
            let url = format!("https://Site.org/p{}", (i + f) % 6);
            s.push_str(
                &serde_json::json!({"id": format!("{f}-{i}"), "text": text, "url": url})
                    .to_string(),
            );
            s.push('\n');
        }
        std::fs::write(dir.join(format!("in{f}.jsonl")), &s).unwrap();
    }
}

#[test]
fn ranks_one_by_one_equal_a_one_shot_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    corpus(&input);
    for (method, extra) in [("exact", vec![]), ("urls", vec!["--keep", "newest"])] {
        let one = dir.path().join(format!("{method}-one"));
        let mut args = vec![
            "dedup",
            method,
            "--input",
            s(&input),
            "--output",
            s(&one),
            "--tasks",
            "3",
            "--partitions",
            "2",
            "--rejects",
        ];
        args.extend(&extra);
        let r = ok(&args);
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(stdout.contains("removed"), "{stdout}");

        let ranked = dir.path().join(format!("{method}-ranked"));
        for (step, n) in [("hash", 3), ("decide", 2), ("filter", 3)] {
            for t in (0..n).rev() {
                let t = t.to_string();
                let mut args = vec![
                    "dedup",
                    method,
                    "--input",
                    s(&input),
                    "--output",
                    s(&ranked),
                    "--tasks",
                    "3",
                    "--partitions",
                    "2",
                    "--rejects",
                    "--step",
                    step,
                    "--task",
                    &t,
                ];
                args.extend(&extra);
                ok(&args);
            }
        }
        let mut args = vec![
            "dedup",
            method,
            "--input",
            s(&input),
            "--output",
            s(&ranked),
            "--tasks",
            "3",
            "--partitions",
            "2",
            "--rejects",
            "--step",
            "merge",
        ];
        args.extend(&extra);
        ok(&args);
        for sub in ["data", "rejects"] {
            assert_eq!(
                shard_docs(&one.join(sub)),
                shard_docs(&ranked.join(sub)),
                "{method} {sub}"
            );
        }
        assert!(!shard_docs(&one.join("rejects")).is_empty());
        let reason = if method == "exact" {
            "exact_dedup:duplicate"
        } else {
            "url_dedup:duplicate"
        };
        for d in shard_docs(&one.join("rejects")) {
            assert_eq!(d.metadata.get("filter_reason").unwrap(), reason);
            assert!(d.metadata.get("duplicate_of").is_some());
        }
        // A step before its predecessor is refused.
        let fresh = dir.path().join(format!("{method}-fresh"));
        let out = refinery()
            .args([
                "dedup",
                method,
                "--input",
                s(&input),
                "--output",
                s(&fresh),
                "--step",
                "filter",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not complete"));
    }
}

#[test]
fn slurm_dry_run_chains_three_steps_and_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    corpus(&input);
    let out = dir.path().join("out");
    let r = ok(&[
        "dedup",
        "lines",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--tasks",
        "4",
        "--partitions",
        "8",
        "--unit",
        "paragraph",
        "--executor",
        "slurm",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(stdout.matches("sbatch ").count(), 4, "{stdout}");
    let scripts = out.join("slurm");
    let hash = std::fs::read_to_string(scripts.join("00-lines-hash.sbatch")).unwrap();
    assert!(hash.contains("#SBATCH --array=0-3"), "{hash}");
    assert!(
        hash.contains("--unit paragraph --max-occurrences 1"),
        "{hash}"
    );
    assert!(
        hash.contains("--step hash --task \"$SLURM_ARRAY_TASK_ID\""),
        "{hash}"
    );
    let decide = std::fs::read_to_string(scripts.join("01-lines-decide.sbatch")).unwrap();
    assert!(decide.contains("#SBATCH --array=0-7"), "{decide}");
    assert!(scripts.join("03-lines-merge.sbatch").exists());
}

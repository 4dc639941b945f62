//! `refinery ablate`: killed with SIGKILL in the middle of a training run, then rerun, it
//! writes the same ablation.json as a run never interrupted; a rerun of a finished ablation
//! skips every step; `refinery report` renders it; a bad experiment file fails naming the key.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const EVAL: &str = "Tulips keep growing after they are cut, so a bouquet that looks neat on \
Monday bends toward the window by Thursday. Trim the stems, wrap them in paper and stand them \
in cold water before arranging them in a tall vase.\n";

/// The embedded sample (WARC + JSONL) refined by the default preset; one variant with a
/// stricter length filter; a 1-layer GPT trained `steps` steps per seed.
fn experiment(dir: &Path, steps: usize) -> std::path::PathBuf {
    copy_sample(&dir.join("in"));
    std::fs::write(dir.join("eval.txt"), EVAL.repeat(3)).unwrap();
    let text = format!(
        r#"
description = "cli test"

[base]
preset = "default"
input = ["{d}/in"]
tasks = 1
workers = 1

[tokenizer]
vocab_size = 400

[train]
budget_tokens = {budget}
seeds = [0, 1]
batch_size = 4
seq_len = 32
save_every = 5
hf = {{ n_layer = 1, n_embd = 32, n_head = 2, n_positions = 32 }}

[[eval]]
name = "tulips"
path = "{d}/eval.txt"

[[variants]]
name = "long-docs"
set = {{ "length_filter.min_chars" = 1500 }}
"#,
        d = dir.display(),
        budget = steps * 4 * 32
    );
    let p = dir.join("exp.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn checkpoints(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_training_then_rerun_matches_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = 40;
    let mut interrupted = false;
    let mut exp = experiment(dir.path(), steps);
    let crashed = dir.path().join("crashed");
    for _attempt in 0..5 {
        let _ = std::fs::remove_dir_all(&crashed);
        exp = experiment(dir.path(), steps);
        let mut child = refinery()
            .args([
                "ablate",
                exp.to_str().unwrap(),
                "--out",
                crashed.to_str().unwrap(),
                "-q",
            ])
            .spawn()
            .unwrap();
        let seed0 = crashed.join("variants/base/seed-0");
        let start = Instant::now();
        loop {
            if checkpoints(&seed0) >= 1 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.wait();
        if !crashed.join("ablation.json").exists()
            && !seed0.join(format!("checkpoint-{steps}")).exists()
        {
            interrupted = true;
            break;
        }
        steps *= 2;
    }
    assert!(interrupted, "could not kill the ablation during training");

    // Continue, then a clean run elsewhere: the same table.
    let out = ok(&[
        "ablate",
        exp.to_str().unwrap(),
        "--out",
        crashed.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("long-docs"), "{stdout}");
    assert!(
        stdout.contains("within noise") || stdout.contains("yes"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refine base (done before: skipped)"),
        "{stderr}"
    );
    let clean = dir.path().join("clean");
    ok(&[
        "ablate",
        exp.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
        "-q",
    ]);
    let a = std::fs::read(clean.join("ablation.json")).unwrap();
    assert_eq!(std::fs::read(crashed.join("ablation.json")).unwrap(), a);

    // A rerun of the finished ablation: every step but the summary skipped.
    let out = ok(&[
        "ablate",
        exp.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2 * 3 + 1 + 2 * 2 * 2 + 1, "{stderr}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.ends_with("(done before: skipped)"))
            .count(),
        lines.len() - 1
    );

    // The report of the ablation directory.
    let html = dir.path().join("r.html");
    ok(&[
        "report",
        clean.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("data-variant=\"long-docs\""));
    assert!(html.contains("data-plot=\"ablation-bpb-0\""));
}

#[test]
fn a_bad_experiment_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment(dir.path(), 2);
    let text = std::fs::read_to_string(&exp)
        .unwrap()
        .replace("length_filter.min_chars", "lenght_filter.min_chars");
    std::fs::write(&exp, text).unwrap();
    let out = refinery()
        .args([
            "ablate",
            exp.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("variants[0].set.\"lenght_filter.min_chars\": no stage `lenght_filter`"),
        "{stderr}"
    );
}

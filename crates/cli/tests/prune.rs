//! `refinery prune` end to end on the tiny BERT classifier fixture (made by transformers):
//! the summary, the output directory, and a clear error (exit 1, never a panic) for each bad
//! request.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_refinery"))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/bert_cls_tiny")
}

/// `(exit code, stdout, stderr)`.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().args(args).output().expect("spawn refinery");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prune_writes_a_dense_checkpoint_report_and_sparse_copy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p50");
    let model = fixture();
    let (code, stdout, stderr) = run(&[
        "prune",
        "--model",
        model.to_str().unwrap(),
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--scope",
        "layer",
        "--sparse",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("per-tensor sparsity: 50.00% to 50.00%"),
        "{stdout}"
    );
    for f in [
        "config.json",
        "model.safetensors",
        "model.sparse",
        "pruning.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pruning.json")).unwrap()).unwrap();
    assert_eq!(report["scope"], "layer");
    assert_eq!(
        report["storage"]["sparse_bytes"].as_u64().unwrap(),
        std::fs::metadata(out.join("model.sparse")).unwrap().len()
    );

    // The same output again: refused, not overwritten.
    let (code, _, stderr) = run(&[
        "prune",
        "--model",
        model.to_str().unwrap(),
        "--sparsity",
        "0.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[test]
fn bad_prune_requests_fail_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture();
    let m = model.to_str().unwrap();
    let out = dir.path().join("o");
    let o = out.to_str().unwrap();
    for (args, code, needle) in [
        (
            vec!["--model", m, "--sparsity", "1", "--out", o],
            1,
            "sparsity 1",
        ),
        (
            vec!["--model", m, "--sparsity", "-0.2", "--out", o],
            1,
            "sparsity -0.2",
        ),
        (
            vec![
                "--model",
                "/nonexistent/model",
                "--sparsity",
                "0.5",
                "--out",
                o,
            ],
            1,
            "config.json: missing",
        ),
        // magnitude, heads and ffn: other methods are not offered.
        (
            vec![
                "--model",
                m,
                "--method",
                "neurons",
                "--sparsity",
                "0.5",
                "--out",
                o,
            ],
            2,
            "invalid value 'neurons'",
        ),
        // 7 of the 8 heads, but each of the 2 layers keeps one.
        (
            vec![
                "--model",
                m,
                "--method",
                "heads",
                "--sparsity",
                "0.9",
                "--out",
                o,
            ],
            1,
            "every layer keeps one",
        ),
    ] {
        let mut full = vec!["prune"];
        full.extend(&args);
        let (got, _, stderr) = run(&full);
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: `{stderr}` lacks `{needle}`"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{args:?} wrote output");
    }
}

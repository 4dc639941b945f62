//! `refinery run` over every real WARC/WET/ARC file in `../shared/data/web/warc`,
//! malformed ones included: exit 0, the invariant holds, failures are counted
//! with reasons and nothing panics.

mod common;

use common::*;

#[test]
fn run_over_all_shared_warc_files() {
    let Some(shared) = shared() else { return };
    let input = shared.join("data/web/warc");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(&[
        "run",
        "--preset",
        "default",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--tasks",
        "4",
        "--workers",
        "2",
        "--rejects",
        "-q",
    ]);
    let s = stats(&out);
    assert_accounting(&s);
    let files = s["files"].as_object().unwrap();
    // Every file under the directory is accounted for, malformed ones included.
    assert_eq!(files.len(), 23, "{:?}", files.keys().collect::<Vec<_>>());
    assert!(s["kept_docs"].as_u64().unwrap() >= 40, "{s:#}");
    let failed = s["failed"].as_object().unwrap();
    assert!(
        !failed.is_empty(),
        "the warcio edge cases must produce counted failures"
    );
    assert!(
        failed.keys().all(|k| !k.starts_with("panic:")),
        "a stage panicked: {failed:?}"
    );
    // Records skipped on purpose are counted with their reasons.
    let dropped = s["dropped"].as_object().unwrap();
    for reason in ["warc:request", "warc:warcinfo"] {
        assert!(
            dropped.contains_key(reason),
            "missing {reason}: {dropped:?}"
        );
    }
    // Unreadable records are failures with a reason; their file and offset are logged.
    let bad_arc = files
        .iter()
        .find(|(k, _)| k.ends_with("bad.arc"))
        .expect("bad.arc in stats")
        .1;
    assert_eq!(bad_arc["failed"]["arc:bad_header"], 3, "{bad_arc}");
    let mut log = String::new();
    for e in std::fs::read_dir(out.join("failures")).unwrap() {
        log.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rec = records
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("bad.arc") && r["kind"] == "failed")
        .expect("failure record for bad.arc");
    assert!(
        rec["offset"].as_u64().is_some() && rec["reason"] == "arc:bad_header",
        "{rec}"
    );
    // The truncated WARC's page is recoverable: kept, but the truncation and
    // the stray bytes it left are on record as warnings.
    let trunc = files
        .iter()
        .find(|(k, _)| k.ends_with("example-trunc.warc"))
        .expect("example-trunc.warc in stats")
        .1;
    assert_eq!(trunc["warnings"]["http:truncated_body"], 1, "{trunc}");
    assert_eq!(trunc["warnings"]["warc:stray_bytes"], 1, "{trunc}");
    assert!(records
        .iter()
        .any(|r| r["kind"] == "warning"
            && r["file"].as_str().unwrap().ends_with("example-trunc.warc")));
    // Kept documents carry the WARC metadata.
    let docs = refinery_corpus::writers::read_shard(
        &std::fs::read_dir(out.join("data"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    let d = &docs[0];
    assert!(
        d.metadata.url.is_some() && d.metadata.date.is_some(),
        "{d:?}"
    );
    assert!(
        d.metadata.lang.is_some() && d.metadata.lang_score.is_some(),
        "{d:?}"
    );
}

#[test]
fn paper_presets_over_the_shared_warcs_give_output_rejects_and_a_waterfall() {
    let Some(shared) = shared() else { return };
    let input = shared.join("data/web/warc");
    let model = shared.join("data/models/lid/lid.176.ftz");
    let dir = tempfile::tempdir().unwrap();
    for preset in ["refinedweb", "fineweb"] {
        let out = dir.path().join(preset);
        let o = ok(&[
            "run",
            "--preset",
            preset,
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--tasks",
            "3",
            "--workers",
            "2",
            "--rejects",
            "--langid-model",
            model.to_str().unwrap(),
            "-q",
        ]);
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(table.contains("removal waterfall"), "{table}");
        for stage in [
            "url_filter",
            "lang_filter",
            "gopher_repetition",
            "gopher_quality",
        ] {
            assert!(
                table.lines().any(|l| l.starts_with(stage)),
                "{preset}: {stage} missing\n{table}"
            );
        }
        let s = stats(&out);
        assert_accounting(&s);
        assert!(s["kept_docs"].as_u64().unwrap() > 10, "{preset}: {s:#}");
        let dropped = s["dropped"].as_object().unwrap();
        assert!(
            dropped.keys().any(|k| k.starts_with("gopher_quality:")),
            "{dropped:?}"
        );
        assert!(dropped.contains_key("langid:other_language"), "{dropped:?}");
        // Rejects carry their reasons.
        let shard = std::fs::read_dir(out.join("rejects"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let rejected = refinery_corpus::writers::read_shard(&shard).unwrap();
        assert!(rejected
            .iter()
            .all(|d| d.metadata.get("filter_reason").is_some()));
        // Kept documents are English by lid.176 at >= 0.65.
        let kept = std::fs::read_dir(out.join("data"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for d in refinery_corpus::writers::read_shard(&kept).unwrap() {
            assert_eq!(d.metadata.lang.as_deref(), Some("en"));
            assert!(d.metadata.lang_score.unwrap() >= 0.65);
        }
    }
}

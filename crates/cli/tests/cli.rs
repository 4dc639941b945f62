//! The CLI contract: help, presets, config errors, stats, extract, determinism.

mod common;

use common::*;

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        vec![],
        vec!["run"],
        vec!["stats"],
        vec!["extract"],
        vec!["demo"],
        vec!["presets"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let out = ok(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{cmd:?}: {text}");
    }
}

#[test]
fn presets_lists_default_with_a_description() {
    let out = ok(&["presets"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("default"))
        .expect("default preset listed");
    assert!(line.len() > 20, "{line}");
    let show = ok(&["presets", "--show", "default"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("[[stages]]"));
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[input]\npaths = [\"x\"]\n[output]\npath = \"y\"\n[[stages]]\ntype = \"length_filter\"\nmin_chars = \"many\"\n",
    )
    .unwrap();
    let out = refinery().arg("run").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("stages[0].min_chars"),
        "{err}"
    );

    std::fs::write(
        &p,
        "[executor]\ntasks = 0\n[input]\npaths=[\"x\"]\n[output]\npath=\"y\"\n",
    )
    .unwrap();
    let out = refinery().arg("run").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("executor.tasks"),
        "{err}"
    );

    let out = refinery()
        .args(["run", "--preset", "nope", "-i", "x", "-o", "y"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown preset `nope`") && err.contains("default"),
        "{err}"
    );
}

#[test]
fn output_is_identical_whatever_the_worker_count_and_stats_json_has_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    // Split the JSONL into several files so that 3 tasks have work.
    let jsonl = std::fs::read_to_string(input.join("sample.jsonl")).unwrap();
    for (i, chunk) in jsonl.lines().collect::<Vec<_>>().chunks(7).enumerate() {
        std::fs::write(input.join(format!("part{i}.jsonl")), chunk.join("\n")).unwrap();
    }
    let mut runs = Vec::new();
    for workers in ["1", "3"] {
        let out = dir.path().join(format!("out{workers}"));
        let i = input.to_str().unwrap();
        let o = out.to_str().unwrap();
        ok(&[
            "run",
            "--preset",
            "default",
            "-i",
            i,
            "-o",
            o,
            "--tasks",
            "3",
            "--workers",
            workers,
            "--rejects",
            "-q",
        ]);
        runs.push(out);
    }
    let a = outputs(&runs[0]);
    assert!(
        a.keys().any(|k| k.starts_with("data/")) && a.keys().any(|k| k.starts_with("rejects/"))
    );
    assert_eq!(a, outputs(&runs[1]));
    assert_eq!(stats_without_time(&runs[0]), stats_without_time(&runs[1]));

    let out = ok(&["stats", runs[0].to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["input_docs", "kept_docs", "dropped", "failed"] {
        assert!(s.get(key).is_some(), "missing {key}");
    }
    assert_accounting(&s);
    let table =
        String::from_utf8_lossy(&ok(&["stats", runs[0].to_str().unwrap()]).stdout).into_owned();
    for stage in ["extract", "length_filter", "exact_dedup", "langid"] {
        assert!(table.contains(stage), "{table}");
    }
}

#[test]
fn a_rerun_with_another_configuration_is_refused_until_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let i = input.to_str().unwrap();
    let o = dir.path().join("out");
    let o = o.to_str().unwrap();
    ok(&[
        "run", "--preset", "default", "-i", i, "-o", o, "--tasks", "2", "-q",
    ]);
    let out = refinery()
        .args([
            "run", "--preset", "default", "-i", i, "-o", o, "--tasks", "3", "-q",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("different configuration") && err.contains("tasks"),
        "{err}"
    );
    ok(&[
        "run",
        "--preset",
        "default",
        "-i",
        i,
        "-o",
        o,
        "--tasks",
        "3",
        "-q",
        "--overwrite",
    ]);
    assert_eq!(stats(dir.path().join("out").as_path())["tasks"], 3);
}

#[test]
fn extract_reads_gzipped_and_plain_html() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let html = "<html><head><title>Gauge  notes</title></head><body><nav>Home | About</nav>\
        <article><h1>Reading a river gauge</h1><p>The gauge at the old mill bridge reports the water level every fifteen minutes, \
        and the numbers mean more once you know the local flood stage.</p><p>Second paragraph with more detail about the rating curve.</p></article>\
        <footer>Copyright</footer></body></html>";
    let plain = dir.path().join("page.html");
    std::fs::write(&plain, html).unwrap();
    let gz = dir.path().join("page.html.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(html.as_bytes()).unwrap();
    enc.finish().unwrap();
    let out = ok(&["extract", plain.to_str().unwrap(), gz.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["title"], "Gauge notes");
        let text = l["text"].as_str().unwrap();
        assert!(text.contains("flood stage"), "{text}");
        assert!(!text.contains("Copyright"), "{text}");
    }
    assert_eq!(lines[0]["text"], lines[1]["text"]);
    assert!(lines[1]["path"].as_str().unwrap().ends_with("page.html.gz"));

    let missing = refinery()
        .args(["extract", "/no/such/page.html"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/page.html"));
}

#[test]
fn dedup_steps_in_a_pipeline_file_run_after_the_stages_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_sample(&input);
    let toml = dir.path().join("p.toml");
    std::fs::write(
        &toml,
        "[[stages]]\ntype = \"extract\"\n[[stages]]\ntype = \"length_filter\"\nmin_chars = 200\n\
         [[dedup]]\ntype = \"urls\"\n[[dedup]]\ntype = \"exact\"\n[[dedup]]\ntype = \"minhash\"\npreset = \"fineweb\"\n\
         [[dedup]]\ntype = \"lines\"\n[[dedup]]\ntype = \"substring\"\nmin_len = 50\nunit = \"tokens\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = [
        "run",
        toml.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tasks",
        "2",
        "--rejects",
        "-q",
    ];
    let first = ok(&args);
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    for step in [
        "00-urls",
        "01-exact",
        "02-minhash",
        "03-lines",
        "04-substring",
    ] {
        let d = out.join("dedup").join(step);
        assert!(text.contains(&format!("== dedup {step}")), "{text}");
        assert_accounting(&stats(&d));
    }
    // The near-duplicates are gone: the two syndicated copies of the
    // bike-lane story and the scraper's mirror of the sourdough article.
    let mh = stats(&out.join("dedup/02-minhash"));
    assert_eq!(mh["dropped"]["minhash:duplicate"], 3, "{mh:#}");
    let rejected = refinery_corpus::writers::read_shard(
        &std::fs::read_dir(out.join("dedup/02-minhash/rejects"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(rejected
        .iter()
        .all(|d| d.metadata.get("minhash_kept_id").is_some()));
    // A rerun resumes: every step is complete, the outputs are unchanged.
    let before = outputs(&out.join("dedup/04-substring"));
    ok(&args);
    assert_eq!(outputs(&out.join("dedup/04-substring")), before);
}

//! `refinery mix`: weights, epochs, determinism, stats and config errors on
//! synthetic sources generated here; the Pile preset; a mix of real data
//! from ../shared when present.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{ok, refinery, shared};
use refinery_corpus::writers::read_shard;
use refinery_corpus::Document;
use serde_json::Value;

const TPB: f64 = 0.29335;

/// Deterministic pseudo-random text of about `len` bytes.
fn text(seed: u64, len: usize) -> String {
    let words = [
        "data", "mixture", "token", "corpus", "pile", "weight", "epoch", "shard", "the", "of",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = String::new();
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % words.len() as u64) as usize]);
        s.push(' ');
    }
    s
}

/// Three sources of different sizes: `small` (JSONL, 60 docs), `medium`
/// (JSONL in two files, 200 docs, text in `content`), `large` (plain text,
/// one document per line, 500 lines).
fn sources(dir: &Path) {
    let jsonl = |path: PathBuf, from: usize, n: usize, field: &str, len: usize| {
        let mut s = String::new();
        for i in from..from + n {
            let v = serde_json::json!({ "id": format!("{}-{i}", path.file_stem().unwrap().to_string_lossy()), field: text(i as u64, len + (i * 37) % len) });
            s.push_str(&v.to_string());
            s.push('\n');
        }
        std::fs::write(path, s).unwrap();
    };
    std::fs::create_dir_all(dir.join("medium")).unwrap();
    jsonl(dir.join("small.jsonl"), 0, 60, "text", 400);
    jsonl(dir.join("medium/a.jsonl"), 0, 120, "content", 200);
    jsonl(dir.join("medium/b.jsonl"), 120, 80, "content", 200);
    let lines: Vec<String> = (0..500)
        .map(|i| text(10_000 + i, 100 + i as usize % 150))
        .collect();
    std::fs::write(dir.join("large.txt"), lines.join("\n") + "\n").unwrap();
}

fn source_tables(dir: &Path, amounts: [&str; 3]) -> String {
    let d = dir.display();
    format!(
        r#"
[[sources]]
name = "small"
paths = ["{d}/small.jsonl"]
{}

[[sources]]
name = "medium"
paths = ["{d}/medium"]
{}
reader = {{ text_field = "content" }}

[[sources]]
name = "large"
paths = ["{d}/large.txt"]
{}
reader = {{ format = "text", text_unit = "line" }}
"#,
        amounts[0], amounts[1], amounts[2]
    )
}

fn write_mix(dir: &Path, head: &str, amounts: [&str; 3]) -> PathBuf {
    let p = dir.join("mix.toml");
    std::fs::write(
        &p,
        format!(
            "{head}\n[writer]\nmax_shard_bytes = 20000\n{}",
            source_tables(dir, amounts)
        ),
    )
    .unwrap();
    p
}

/// Every output document, in shard-name order.
fn output(out: &Path) -> Vec<Document> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().flat_map(|f| read_shard(f).unwrap()).collect()
}

fn shard_bytes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn stats(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("mix_stats.json")).unwrap()).unwrap()
}

fn src(d: &Document) -> String {
    d.metadata
        .get("mix_source")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn epoch(d: &Document) -> u64 {
    d.metadata.get("mix_epoch").unwrap().as_u64().unwrap()
}

/// Per source: (docs, text bytes) in the output.
fn per_source(docs: &[Document]) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for d in docs {
        let e = m.entry(src(d)).or_default();
        e.0 += 1;
        e.1 += d.text.len() as u64;
    }
    m
}

#[test]
fn weights_are_reproduced_within_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sources(dir);
    // small holds ~36 KB, medium ~60 KB, large ~87 KB: weights 0.5/0.3/0.2
    // need small to repeat, so allow up to 4 epochs.
    let m = write_mix(
        dir,
        "max_epochs = 4.0",
        ["weight = 50", "weight = 30", "weight = 20"],
    );
    let out = dir.join("out");
    ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--target-tokens",
        "30000",
        "-q",
    ]);
    let docs = output(&out);
    let per = per_source(&docs);
    let total: u64 = per.values().map(|v| v.1).sum();
    let want = [("small", 0.5), ("medium", 0.3), ("large", 0.2)];
    for (name, w) in want {
        let share = per[name].1 as f64 / total as f64;
        // One document of ~400-800 bytes out of ~100 KB is < 1%.
        assert!((share - w).abs() < 0.01, "{name}: share {share} vs {w}");
    }
    let tokens = total as f64 * TPB;
    assert!((tokens - 30000.0).abs() / 30000.0 < 0.01, "{tokens}");
    let st = stats(&out);
    assert_eq!(st["mode"], "weights");
    assert_eq!(st["share_unit"], "estimated_tokens");
    for (i, (name, w)) in want.iter().enumerate() {
        let s = &st["sources"][i];
        assert_eq!(s["name"], *name);
        assert!((s["weight"].as_f64().unwrap() - w).abs() < 1e-12);
        assert!((s["share"].as_f64().unwrap() - w).abs() < 0.01);
    }
    // small (36 KB for 15,000 tokens = 51 KB) needs > 1 epoch: copies carry #e2.
    assert!(docs
        .iter()
        .any(|d| src(d) == "small" && d.id.ends_with("#e2") && epoch(d) == 2));

    // No target: the largest mix that repeats nothing (max_epochs = 1):
    // the source scarcest for its weight is used exactly once.
    let m = write_mix(dir, "", ["weight = 50", "weight = 30", "weight = 20"]);
    let out2 = dir.join("out2");
    let o = ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out2.to_str().unwrap(),
        "-q",
        "--json",
    ]);
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st, stats(&out2));
    let small = &st["sources"][0];
    assert_eq!(small["effective_epochs"].as_f64().unwrap(), 1.0);
    for s in st["sources"].as_array().unwrap() {
        assert!(s["effective_epochs"].as_f64().unwrap() <= 1.0, "{s}");
    }
    assert!(output(&out2).iter().all(|d| epoch(d) == 1));

    // --target-bytes: the same shares, sized in text bytes.
    let out3 = dir.join("out3");
    ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out3.to_str().unwrap(),
        "--target-bytes",
        "50000",
        "-q",
    ]);
    let bytes: u64 = per_source(&output(&out3)).values().map(|v| v.1).sum();
    assert!((bytes as f64 - 50000.0).abs() / 50000.0 < 0.01, "{bytes}");

    // A target beyond the cap names the source.
    let e = refinery()
        .args([
            "mix",
            m.to_str().unwrap(),
            "--dry-run",
            "--target-tokens",
            "1M",
        ])
        .output()
        .unwrap();
    assert!(!e.status.success());
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("source `small`") && err.contains("max_epochs"),
        "{err}"
    );
}

#[test]
fn epochs_including_fractions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sources(dir);
    let m = write_mix(dir, "", ["epochs = 1.0", "epochs = 2", "epochs = 1.5"]);
    let out = dir.join("out");
    ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "-q",
    ]);
    let docs = output(&out);
    let per = per_source(&docs);
    assert_eq!(per["small"].0, 60);
    assert_eq!(per["medium"].0, 400);
    // Ids are unique; repeats carry #e{epoch}.
    let ids: BTreeSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), docs.len());
    for d in &docs {
        let e = epoch(d);
        assert_eq!(d.id.ends_with(&format!("#e{e}")), e > 1, "{}", d.id);
        assert!(e <= 2);
    }
    // large: every line once, plus a seeded sample of half its bytes.
    let large: Vec<&Document> = docs.iter().filter(|d| src(d) == "large").collect();
    let first: u64 = large
        .iter()
        .filter(|d| epoch(d) == 1)
        .map(|d| d.text.len() as u64)
        .sum();
    let second: Vec<&&Document> = large.iter().filter(|d| epoch(d) == 2).collect();
    let second_bytes: u64 = second.iter().map(|d| d.text.len() as u64).sum();
    assert_eq!(large.iter().filter(|d| epoch(d) == 1).count(), 500);
    // Nearest document boundary: off by at most one line (< 250 bytes).
    assert!(
        (second_bytes as f64 - first as f64 / 2.0).abs() < 250.0,
        "{second_bytes} vs {first}"
    );
    // A sample, not a prefix: the second pass is not lines 0..k.
    let max_line = second
        .iter()
        .map(|d| d.id.rsplit('#').nth(1).unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert!(max_line > second.len() as u64 + 20, "{max_line}");
    let st = stats(&out);
    let l = &st["sources"][2];
    assert_eq!(l["requested_epochs"].as_f64().unwrap(), 1.5);
    assert!((l["effective_epochs"].as_f64().unwrap() - 1.5).abs() < 0.005);
    assert_eq!(l["output"]["docs"].as_u64().unwrap(), large.len() as u64);
    assert_eq!(st["sources"][1]["effective_epochs"].as_f64().unwrap(), 2.0);
}

#[test]
fn output_is_deterministic_across_runs_and_workers_and_shuffled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sources(dir);
    let m = write_mix(dir, "", ["epochs = 2", "epochs = 1", "epochs = 0.7"]);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "mix",
            m.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(&args);
        out
    };
    let a = run("a", &["--workers", "1"]);
    let b = run("b", &["--workers", "3"]);
    let c = run("c", &["--workers", "2"]);
    let sa = shard_bytes(&a);
    assert!(sa.len() > 3, "several buckets/shards: {:?}", sa.keys());
    assert_eq!(sa, shard_bytes(&b));
    assert_eq!(sa, shard_bytes(&c));
    // No temp files left behind.
    assert!(!a.join(".mix-tmp").exists());

    // Interleaved: sources alternate, and each source's documents are out of
    // their input order.
    let docs = output(&a);
    let switches = docs.windows(2).filter(|w| src(&w[0]) != src(&w[1])).count();
    assert!(switches > docs.len() / 3, "{switches} of {}", docs.len());
    let first_ten: Vec<&str> = docs
        .iter()
        .filter(|d| src(d) == "medium")
        .take(10)
        .map(|d| d.id.as_str())
        .collect();
    assert_ne!(
        first_ten,
        (0..10).map(|i| format!("a-{i}")).collect::<Vec<_>>()
    );

    // Another seed: the same documents in another order.
    let d = run("d", &["--seed", "42"]);
    let other = output(&d);
    assert_ne!(
        docs.iter().map(|d| &d.id).collect::<Vec<_>>(),
        other.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    // Same full passes; the 0.7 sample differs but keeps its size.
    let pa = per_source(&docs);
    let pd = per_source(&other);
    assert_eq!(pa["small"], pd["small"]);
    assert_eq!(pa["medium"], pd["medium"]);
    assert!((pa["large"].1 as f64 - pd["large"].1 as f64).abs() < 250.0);

    // A second run into the same directory is refused without --overwrite.
    let e = refinery()
        .args([
            "mix",
            m.to_str().unwrap(),
            "--output",
            a.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("--overwrite"));
    run("a", &["--overwrite", "--workers", "2"]);
    assert_eq!(sa, shard_bytes(&a));
}

#[test]
fn effective_size_stats_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sources(dir);
    let m = write_mix(
        dir,
        "max_epochs = 2.5",
        ["weight = 2\nmax_epochs = 3", "weight = 1", "weight = 1"],
    );
    let out = dir.join("out");
    let table = ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "-q",
    ]);
    let table = String::from_utf8_lossy(&table.stdout);
    for name in ["small", "medium", "large", "total"] {
        assert!(table.contains(name), "{table}");
    }
    let st = stats(&out);
    let docs = output(&out);
    let per = per_source(&docs);
    let sources = st["sources"].as_array().unwrap();
    let (mut d, mut b, mut t, mut share, mut bshare) = (0, 0, 0, 0.0, 0.0);
    for s in sources {
        let name = s["name"].as_str().unwrap();
        let o = &s["output"];
        // Counted as written.
        assert_eq!(o["docs"].as_u64().unwrap(), per[name].0, "{name}");
        assert_eq!(o["bytes"].as_u64().unwrap(), per[name].1, "{name}");
        let tpb = s["tokens_per_byte"].as_f64().unwrap();
        assert_eq!(tpb, TPB);
        assert_eq!(
            o["tokens"].as_u64().unwrap(),
            (per[name].1 as f64 * tpb).round() as u64
        );
        let i = &s["input"];
        let eff = o["bytes"].as_f64().unwrap() / i["bytes"].as_f64().unwrap();
        assert!((s["effective_epochs"].as_f64().unwrap() - eff).abs() < 1e-12);
        assert!(s["effective_epochs"].as_f64().unwrap() <= 3.0 + 1e-9);
        assert_eq!(s["records"], i["docs"]);
        d += o["docs"].as_u64().unwrap();
        b += o["bytes"].as_u64().unwrap();
        t += o["tokens"].as_u64().unwrap();
        share += s["share"].as_f64().unwrap();
        bshare += s["byte_share"].as_f64().unwrap();
    }
    let total = &st["total"]["output"];
    assert_eq!(total["docs"].as_u64().unwrap(), d);
    assert_eq!(d, docs.len() as u64);
    assert_eq!(total["bytes"].as_u64().unwrap(), b);
    assert_eq!(total["tokens"].as_u64().unwrap(), t);
    assert!((share - 1.0).abs() < 1e-9 && (bshare - 1.0).abs() < 1e-9);
    assert_eq!(
        st["total"]["input"]["docs"].as_u64().unwrap(),
        60 + 200 + 500
    );
    assert_eq!(st["total"]["files"].as_u64().unwrap(), 4);
    assert_eq!(st["dry_run"], false);
    let w = &st["written"];
    assert_eq!(
        w["shards"].as_u64().unwrap() as usize,
        std::fs::read_dir(out.join("data")).unwrap().count()
    );

    // --dry-run prints the same numbers and writes nothing.
    let dry = dir.join("dry");
    let o = ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        dry.to_str().unwrap(),
        "--dry-run",
        "--json",
        "-q",
    ]);
    let ds: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ds["dry_run"], true);
    assert_eq!(ds["sources"], st["sources"]);
    assert_eq!(ds["total"], st["total"]);
    assert!(!dry.exists());
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sources(dir);
    let fail = |amounts: [&str; 3], head: &str| {
        let m = write_mix(dir, head, amounts);
        let o = refinery()
            .args(["mix", m.to_str().unwrap(), "--dry-run"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let m = dir.join("mix.toml").display().to_string();
    let e = fail(["weight = 1", "weight = \"heavy\"", "weight = 1"], "");
    assert!(
        e.contains(&format!("{m}: sources[1].weight: invalid type")),
        "{e}"
    );
    assert!(e.contains("(line 13)"), "{e}");
    let e = fail(["weight = 1", "weight = 0", "weight = 1"], "");
    assert!(
        e.contains(&format!(
            "{m}: sources[1].weight: must be a finite number > 0"
        )),
        "{e}"
    );
    let e = fail(["weight = 1", "epochs = 2", "weight = 1"], "");
    assert!(e.contains(&format!("{m}: mode: ")), "{e}");
    let e = fail(
        [
            "weight = 1",
            "weight = 1",
            "weight = 1\ntokens_per_bytes = 0.3",
        ],
        "",
    );
    assert!(
        e.contains(&format!("{m}: sources[2].tokens_per_bytes: unknown field")),
        "{e}"
    );
    let e = fail(
        ["epochs = 1", "epochs = 1", "epochs = 1"],
        "target_tokens = 100",
    );
    assert!(e.contains(&format!("{m}: target_tokens: ")), "{e}");
    let e = fail(
        ["weight = 1", "weight = 1", "weight = 1"],
        "[reader]\ntext_feld = 'x'",
    );
    assert!(
        e.contains(&format!("{m}: reader.text_feld: unknown field")),
        "{e}"
    );
}

#[test]
fn pile_preset_parses_and_mirrors_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../presets/mix/pile.toml");
    let file = path.display().to_string();
    let mix = refinery_mix::MixConfig::from_file(&path)
        .unwrap()
        .validate(&file)
        .unwrap();
    assert_eq!(mix.mode, refinery_mix::Mode::Epochs);
    assert_eq!(mix.sources.len(), 22);
    let table = [
        ("pile_cc", 18.11, 1.0),
        ("pubmed_central", 14.40, 2.0),
        ("books3", 12.07, 1.5),
        ("openwebtext2", 10.01, 2.0),
        ("arxiv", 8.96, 2.0),
        ("github", 7.59, 1.0),
        ("freelaw", 6.12, 1.5),
        ("stackexchange", 5.13, 2.0),
        ("uspto", 3.65, 2.0),
        ("pubmed_abstracts", 3.07, 2.0),
        ("pg19", 2.17, 2.5),
        ("opensubtitles", 1.55, 1.5),
        ("wikipedia", 1.53, 3.0),
        ("dm_math", 1.24, 2.0),
        ("ubuntu_irc", 0.88, 2.0),
        ("bookcorpus2", 0.75, 1.5),
        ("europarl", 0.73, 2.0),
        ("hackernews", 0.62, 2.0),
        ("youtubesubs", 0.60, 2.0),
        ("philpapers", 0.38, 2.0),
        ("nih_exporter", 0.30, 2.0),
        ("enron", 0.14, 2.0),
    ];
    for (s, (name, w, e)) in mix.sources.iter().zip(table) {
        assert_eq!(s.name, name);
        assert_eq!(s.amount, refinery_mix::Amount::Epochs(e));
        assert!(
            (s.reference_weight.unwrap() - w / 100.0).abs() < 1e-6,
            "{name}"
        );
        assert_eq!(s.tokens_per_byte, 0.29335);
    }
    // Weights mode parses too (same file, mode switched).
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("mode = \"epochs\"", "mode = \"weights\"");
    let w = refinery_mix::MixConfig::from_toml(&text, &file)
        .unwrap()
        .validate(&file)
        .unwrap();
    match w.sources[0].amount {
        refinery_mix::Amount::Weight(x) => assert!((x - 0.1811).abs() < 1e-9, "{x}"),
        a => panic!("{a:?}"),
    }
    // The placeholder paths are not there: the error names the source.
    let o = refinery()
        .args(["mix", path.to_str().unwrap(), "--dry-run"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("source `pile_cc`"));
}

#[test]
fn real_data_mix_from_shared() {
    let Some(shared) = shared() else { return };
    let data = shared.join("data");
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("real.toml");
    std::fs::write(
        &m,
        format!(
            r#"
max_epochs = 3.0
[[sources]]
name = "cc"
paths = ["{cc}"]
weight = 0.6
[[sources]]
name = "shakespeare"
paths = ["{shakes}"]
weight = 0.25
reader = {{ format = "text", text_unit = "paragraph" }}
[[sources]]
name = "sms"
paths = ["{sms}"]
weight = 0.15
reader = {{ format = "text", text_unit = "line" }}
"#,
            cc = data
                .join("web/cc_text/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
                .display(),
            shakes = data.join("lm/tinyshakespeare.txt").display(),
            sms = data
                .join("classification/sms-spam/SMSSpamCollection")
                .display(),
        ),
    )
    .unwrap();
    if !data
        .join("web/cc_text/dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
        .exists()
    {
        eprintln!(
            "skipping: dolma CC sample not found under {}",
            data.display()
        );
        return;
    }
    let out = tmp.path().join("out");
    ok(&[
        "mix",
        m.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "-q",
    ]);
    let st = stats(&out);
    for (i, w) in [0.6, 0.25, 0.15].iter().enumerate() {
        let s = &st["sources"][i];
        assert!((s["share"].as_f64().unwrap() - w).abs() < 0.005, "{s}");
        assert!(s["effective_epochs"].as_f64().unwrap() <= 3.0 + 1e-9);
    }
    let docs = output(&out);
    assert_eq!(
        docs.len() as u64,
        st["total"]["output"]["docs"].as_u64().unwrap()
    );
}

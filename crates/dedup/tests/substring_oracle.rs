//! Exact-substring dedup against a brute-force oracle: on small seeded
//! corpora (small alphabets, planted copies) the oracle compares every
//! window with every other one, and the rewritten corpus must match it
//! exactly, for bytes and tokens, both keep modes, and any task, worker and
//! shard counts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::Rng;
use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::{read_shard, WriterOptions};
use refinery_dedup::substring::{
    self, Keep, SubstringConfig, SubstringJob, Unit, REASON_EMPTY, REMOVED_KEY,
};

/// What the output must hold: kept documents (id → text, bytes removed)
/// and the ids dropped as empty.
#[derive(Debug, PartialEq)]
struct Outcome {
    kept: BTreeMap<String, (String, u64)>,
    dropped: Vec<String>,
}

fn job(
    input: &Path,
    out: &Path,
    config: SubstringConfig,
    tasks: usize,
    workers: usize,
    shard_units: u64,
) -> SubstringJob {
    SubstringJob {
        inputs: discover(&[input.to_path_buf()]).unwrap(),
        reader: ReaderOptions::default(),
        writer: WriterOptions::default(),
        output: out.to_path_buf(),
        config,
        tasks,
        workers,
        rejects: true,
        shard_units,
        merge_memory_bytes: 1 << 30,
    }
}

fn run(job: &SubstringJob) -> Outcome {
    let report = substring::run(job, &AtomicBool::new(false)).unwrap();
    let out = outcome(job);
    assert_eq!(report.stats.kept_docs as usize, out.kept.len());
    out
}

/// The documents of a finished run's output directory.
fn outcome(job: &SubstringJob) -> Outcome {
    let mut kept = BTreeMap::new();
    let mut dropped = Vec::new();
    for (dir, is_kept) in [("data", true), ("rejects", false)] {
        let mut shards: Vec<_> = std::fs::read_dir(job.output.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        shards.sort();
        for p in shards {
            for d in read_shard(&p).unwrap() {
                let removed = d
                    .metadata
                    .get(REMOVED_KEY)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                if is_kept {
                    kept.insert(d.id.clone(), (d.text.clone(), removed));
                } else {
                    assert_eq!(d.metadata.get("filter_reason").unwrap(), REASON_EMPTY);
                    dropped.push(d.id.clone());
                }
            }
        }
    }
    dropped.sort();
    Outcome { kept, dropped }
}

/// The units of a document for the oracle: bytes, or whitespace tokens with
/// their byte starts.
fn oracle_units(text: &str, unit: Unit) -> (Vec<Vec<u8>>, Vec<usize>) {
    match unit {
        Unit::Bytes => (
            text.bytes().map(|b| vec![b]).collect(),
            (0..text.len()).collect(),
        ),
        Unit::Tokens => {
            let mut toks = Vec::new();
            let mut starts = Vec::new();
            let mut at = 0;
            for t in text.split_whitespace() {
                let s = at + text[at..].find(t).unwrap();
                toks.push(t.as_bytes().to_vec());
                starts.push(s);
                at = s + t.len();
            }
            (toks, starts)
        }
    }
}

/// Brute force: compare every window of `l` units with every other one.
fn oracle(docs: &[(String, String)], config: &SubstringConfig) -> Outcome {
    let l = config.min_len;
    let units: Vec<_> = docs
        .iter()
        .map(|(_, t)| oracle_units(t, config.unit))
        .collect();
    // Every window position, in input order.
    let pos: Vec<(usize, usize)> = units
        .iter()
        .enumerate()
        .flat_map(|(d, (u, _))| (0..(u.len() + 1).saturating_sub(l)).map(move |i| (d, i)))
        .collect();
    let window = |(d, i): (usize, usize)| &units[d].0[i..i + l];
    let mut removed: Vec<Vec<bool>> = units.iter().map(|(u, _)| vec![false; u.len()]).collect();
    for (a, &p) in pos.iter().enumerate() {
        let earlier = pos[..a].iter().any(|&q| window(q) == window(p));
        let later = pos[a + 1..].iter().any(|&q| window(q) == window(p));
        if earlier || (config.keep == Keep::None && later) {
            removed[p.0][p.1..p.1 + l].fill(true);
        }
    }
    let mut out = Outcome {
        kept: BTreeMap::new(),
        dropped: Vec::new(),
    };
    for (d, (id, text)) in docs.iter().enumerate() {
        let (u, starts) = &units[d];
        let del = &removed[d];
        // Maximal runs of removed units → byte ranges.
        let mut byte_ranges = Vec::new();
        let mut k = 0;
        while k < u.len() {
            if !del[k] {
                k += 1;
                continue;
            }
            let s = k;
            while k < u.len() && del[k] {
                k += 1;
            }
            let (mut bs, mut be) = match config.unit {
                Unit::Bytes => (s, k),
                Unit::Tokens => (starts[s], starts.get(k).copied().unwrap_or(text.len())),
            };
            while bs < be && !text.is_char_boundary(bs) {
                bs += 1;
            }
            while be > bs && !text.is_char_boundary(be) {
                be -= 1;
            }
            byte_ranges.push((bs, be));
        }
        let mut new = String::new();
        let mut at = 0;
        let mut n = 0;
        for (s, e) in byte_ranges {
            new.push_str(&text[at..s]);
            n += e - s;
            at = e;
        }
        new.push_str(&text[at..]);
        if n > 0 && (new.trim().is_empty() || new.len() < config.min_doc_len) {
            out.dropped.push(id.clone());
        } else {
            let t = if n > 0 { new } else { text.clone() };
            out.kept.insert(id.clone(), (t, n as u64));
        }
    }
    out.dropped.sort();
    out
}

/// Writes `files` (each a list of (id, text)) as JSONL; returns the docs in
/// input order.
fn write_corpus(dir: &Path, files: &[Vec<(String, String)>]) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut all = Vec::new();
    for (f, docs) in files.iter().enumerate() {
        let mut s = String::new();
        for (id, t) in docs {
            s.push_str(&serde_json::json!({"id": id, "text": t}).to_string());
            s.push('\n');
            all.push((id.clone(), t.clone()));
        }
        std::fs::write(dir.join(format!("f{f:02}.jsonl")), s).unwrap();
    }
    all
}

/// A random corpus over a tiny alphabet, with planted copies of earlier text.
fn random_corpus(rng: &mut Rng, unit: Unit) -> Vec<Vec<(String, String)>> {
    let pieces: &[&str] = match unit {
        Unit::Bytes => &["a", "b", "c", " ", "é", "€", "ab"],
        Unit::Tokens => &["a ", "b ", "ab ", "  ", "é ", "a\n"],
    };
    let mut pool = String::new();
    let nfiles = 1 + rng.below(3);
    (0..nfiles)
        .map(|f| {
            (0..rng.below(6))
                .map(|d| {
                    let mut t = String::new();
                    let target = rng.below(70);
                    while t.len() < target {
                        if !pool.is_empty() && rng.below(4) == 0 {
                            let chars: Vec<char> = pool.chars().collect();
                            let s = rng.below(chars.len());
                            let n = 3 + rng.below(25);
                            t.extend(chars[s..(s + n).min(chars.len())].iter());
                        } else {
                            t.push_str(pieces[rng.below(pieces.len())]);
                        }
                    }
                    pool.push_str(&t);
                    (format!("f{f}d{d}"), t)
                })
                .collect()
        })
        .collect()
}

#[test]
fn random_corpora_match_the_oracle_for_any_sharding() {
    let mut rng = Rng(20240601);
    let tmp = fast_tempdir();
    let mut checked = 0;
    let mut with_removals = 0;
    let mut spilled = 0;
    for case in 0..32 {
        let unit = if case % 2 == 0 {
            Unit::Bytes
        } else {
            Unit::Tokens
        };
        let config = SubstringConfig {
            min_len: match unit {
                Unit::Bytes => 4 + rng.below(8),
                Unit::Tokens => 2 + rng.below(3),
            },
            unit,
            keep: if case % 4 < 2 {
                Keep::First
            } else {
                Keep::None
            },
            min_doc_len: if case % 3 == 0 { 5 } else { 0 },
        };
        let files = random_corpus(&mut rng, unit);
        let dir = tmp.path().join(format!("case{case}"));
        let docs = write_corpus(&dir.join("in"), &files);
        if docs.is_empty() {
            continue;
        }
        let want = oracle(&docs, &config);
        // One shard, one task, an unbounded merge; then tiny shards (many
        // merges), several tasks, and a merge budget of 48 bytes: a buffer
        // of 3 window starts, so the removed positions spill to many runs.
        let runs = [
            (1, 1, 1 << 20, 1 << 30),
            (3, 2, 2 + rng.below(40) as u64, 1 << 30),
            (2, 1, 7, 48),
            (1, 1, 1 << 20, 48),
        ];
        for (k, &(tasks, workers, shard, mem)) in runs.iter().enumerate() {
            let out = dir.join(format!("out{k}"));
            let mut j = job(&dir.join("in"), &out, config.clone(), tasks, workers, shard);
            j.merge_memory_bytes = mem;
            let got = run(&j);
            assert_eq!(
                got, want,
                "case {case} {config:?} tasks {tasks} shard {shard} merge memory {mem}\ndocs {docs:#?}"
            );
            let summary: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out.join("substring/merge/summary.json")).unwrap(),
            )
            .unwrap();
            if mem == 48 {
                spilled += (summary["spill_runs"].as_u64().unwrap() > 1) as usize;
                // Every run is deleted once the marks are written.
                let left = std::fs::read_dir(out.join("substring/merge"))
                    .unwrap()
                    .filter(|e| {
                        e.as_ref()
                            .unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with(".run_")
                    })
                    .count();
                assert_eq!(left, 0, "case {case}");
            } else {
                assert_eq!(summary["spill_runs"].as_u64().unwrap(), 0, "case {case}");
            }
        }
        checked += 1;
        with_removals += (want.kept.values().any(|v| v.1 > 0) || !want.dropped.is_empty()) as usize;
    }
    assert!(
        checked > 25 && with_removals > 15 && spilled > 15,
        "{checked} cases, {with_removals} with removals, {spilled} spilled"
    );
}

/// A temp dir in RAM when there is one: every step fsyncs its files.
fn fast_tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap()),
        false => tempfile::tempdir().unwrap(),
    }
}

fn one(docs: &[(&str, &str)], config: SubstringConfig) -> Outcome {
    let tmp = fast_tempdir();
    let files = vec![docs
        .iter()
        .map(|(i, t)| (i.to_string(), t.to_string()))
        .collect()];
    let all = write_corpus(&tmp.path().join("in"), &files);
    let got = run(&job(
        &tmp.path().join("in"),
        &tmp.path().join("out"),
        config.clone(),
        1,
        1,
        1 << 20,
    ));
    assert_eq!(got, oracle(&all, &config));
    got
}

fn bytes(min_len: usize) -> SubstringConfig {
    SubstringConfig {
        min_len,
        ..SubstringConfig::default()
    }
}

#[test]
fn overlapping_repeats_in_one_document() {
    let a = "x".repeat(30);
    let got = one(&[("d", &format!("<{a}>"))], bytes(10));
    // The run of 30 holds 21 copies of one window; every copy but the
    // first is removed, and they cover all of the first but its first unit.
    assert_eq!(got.kept["d"], ("<x>".to_string(), 29));
    // Lee et al.'s convention removes every copy.
    let got = one(
        &[("d", &format!("<{a}>"))],
        SubstringConfig {
            keep: Keep::None,
            ..bytes(10)
        },
    );
    assert_eq!(got.kept["d"], ("<>".to_string(), 30));
}

#[test]
fn repeats_inside_one_document_and_across_documents() {
    let got = one(
        &[
            ("a", "hello world, hello world!"),
            ("b", "say hello world again"),
            ("c", "hello world"),
        ],
        bytes(11),
    );
    assert_eq!(got.kept["a"].0, "hello world, !");
    // " hello worl" also occurs earlier (in a), so the space goes too.
    assert_eq!(got.kept["b"].0, "say again");
    // A document that is only a repeat is dropped.
    assert_eq!(got.dropped, vec!["c".to_string()]);
}

#[test]
fn a_span_across_the_document_boundary_does_not_count() {
    // "abcdefgh" would repeat if d0's end and d1's start were joined.
    let got = one(
        &[("d0", "zzabcd"), ("d1", "efghyy"), ("d2", "abcdefgh")],
        bytes(6),
    );
    assert!(got.kept.values().all(|v| v.1 == 0), "{got:?}");
    // Even with one shard per document (the merge path).
    let tmp = tempfile::tempdir().unwrap();
    let files = vec![vec![
        ("d0".to_string(), "zzabcd".to_string()),
        ("d1".to_string(), "efghyy".to_string()),
        ("d2".to_string(), "abcdefgh".to_string()),
    ]];
    write_corpus(&tmp.path().join("in"), &files);
    let got = run(&job(
        &tmp.path().join("in"),
        &tmp.path().join("out"),
        bytes(6),
        1,
        1,
        2,
    ));
    assert!(got.kept.values().all(|v| v.1 == 0), "{got:?}");
}

#[test]
fn unicode_is_never_cut_inside_a_char() {
    // "é" = C3 A9, "©" = C2 A9: the common bytes "\xA9 and more" start
    // inside a char; the removal shrinks to whole chars.
    let got = one(
        &[("a", "é and more text"), ("b", "© and more text")],
        bytes(8),
    );
    assert_eq!(got.kept["b"], ("©".to_string(), 14));
    let got = one(&[("a", "日本語のテキスト"), ("b", "本語のテキ!")], bytes(7));
    assert_eq!(got.kept["b"], ("!".to_string(), 15));
}

#[test]
fn tokens_ignore_whitespace_differences() {
    let config = SubstringConfig {
        min_len: 3,
        unit: Unit::Tokens,
        ..SubstringConfig::default()
    };
    let got = one(
        &[
            ("a", "one two three four"),
            ("b", "zero one\ttwo  three\nfive"),
        ],
        config,
    );
    assert_eq!(got.kept["b"], ("zero five".to_string(), 15));
}

/// The steps run one rank at a time, as cluster array tasks do (`--step S
/// --task i`), in any order within a step, give the one-shot output; a
/// rank already done is skipped, a rank out of range and `finish` before
/// the last step are errors.
#[test]
fn steps_run_as_separate_tasks_match_the_one_shot_run() {
    let mut rng = Rng(77);
    let tmp = fast_tempdir();
    let cancel = AtomicBool::new(false);
    let mut compared = 0;
    for case in 0..6 {
        let unit = if case % 2 == 0 {
            Unit::Bytes
        } else {
            Unit::Tokens
        };
        let config = SubstringConfig {
            min_len: if unit == Unit::Bytes { 6 } else { 3 },
            unit,
            ..SubstringConfig::default()
        };
        // Several corpora's files, with ids made unique.
        let mut files: Vec<Vec<(String, String)>> = Vec::new();
        for k in 0..4 {
            for docs in random_corpus(&mut rng, unit) {
                files.push(
                    docs.into_iter()
                        .map(|(id, t)| (format!("c{k}{id}"), t))
                        .collect(),
                );
            }
        }
        let dir = tmp.path().join(format!("case{case}"));
        let docs = write_corpus(&dir.join("in"), &files);
        if docs.is_empty() {
            continue;
        }
        let tasks = 3;
        let one = job(
            &dir.join("in"),
            &dir.join("one"),
            config.clone(),
            tasks,
            2,
            40,
        );
        let want = run(&one);
        assert_eq!(want, oracle(&docs, &config), "case {case}");

        let split = job(
            &dir.join("in"),
            &dir.join("split"),
            config.clone(),
            tasks,
            1,
            40,
        );
        assert!(substring::finish(&split, Vec::new()).is_err());
        for step in 0..substring::STEPS.len() {
            let ranks = substring::step_tasks(&split, step);
            assert_eq!(ranks, if step == 2 { 1 } else { tasks });
            assert!(substring::run_step(&split, step, Some(ranks), &cancel).is_err());
            if step == 3 {
                assert!(substring::finish(&split, Vec::new()).is_err());
            }
            for t in (0..ranks).rev() {
                let r = substring::run_step(&split, step, Some(t), &cancel).unwrap();
                assert_eq!(r.tasks_skipped, 0, "case {case} step {step} rank {t}");
                let again = substring::run_step(&split, step, Some(t), &cancel).unwrap();
                assert_eq!(again.tasks_run, 0);
                assert_eq!(again.tasks_skipped, r.tasks_run);
            }
        }
        let report = substring::finish(&split, Vec::new()).unwrap();
        assert_eq!(
            report.summary,
            substring::run(&one, &cancel).unwrap().summary,
            "case {case}"
        );
        assert_eq!(outcome(&split), want, "case {case}");
        // The one-shot run over the split directory resumes: nothing to do.
        let resumed = substring::run(&split, &cancel).unwrap();
        assert!(resumed.steps.iter().all(|s| s.tasks_run == 0));
        compared += 1;
    }
    assert!(compared >= 4, "{compared}");
}

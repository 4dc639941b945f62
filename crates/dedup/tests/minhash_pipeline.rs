//! The four MinHash steps end to end: removed sets independent of task and
//! worker counts, resume after damage, refusal of changed parameters,
//! explain, and the license texts of `../shared/data/dedup`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_corpus::writers::{read_shard, WriterOptions};
use refinery_dedup::minhash::{self, MinHasher, MinhashConfig, MinhashJob};

fn job(inputs: &[PathBuf], out: &Path, tasks: usize, workers: usize, buffer: usize) -> MinhashJob {
    MinhashJob {
        inputs: discover(inputs).unwrap(),
        reader: ReaderOptions::default(),
        writer: WriterOptions::default(),
        output: out.to_path_buf(),
        config: MinhashConfig::fineweb(),
        tasks,
        workers,
        rejects: true,
        sig_buffer_records: buffer,
        max_memory_bytes: minhash::DEFAULT_MAX_MEMORY_BYTES,
        group_by: None,
    }
}

fn shard_docs(dir: &Path) -> Vec<refinery_corpus::Document> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p: &PathBuf| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort();
    files.iter().flat_map(|f| read_shard(f).unwrap()).collect()
}

/// Removed id → (cluster, kept id), from the rejects.
fn removed(out: &Path) -> BTreeMap<String, (u64, String)> {
    shard_docs(&out.join("rejects"))
        .into_iter()
        .map(|d| {
            assert_eq!(
                d.metadata.get("filter_reason").unwrap(),
                "minhash:duplicate"
            );
            let c = d.metadata.get("minhash_cluster").unwrap().as_u64().unwrap();
            let k = d
                .metadata
                .get("minhash_kept_id")
                .unwrap()
                .as_str()
                .unwrap()
                .to_string();
            (d.id, (c, k))
        })
        .collect()
}

fn kept_ids(out: &Path) -> BTreeSet<String> {
    shard_docs(&out.join("data"))
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// All files under the minhash dir and data/rejects, except stats with timings.
fn snapshot(out: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, m: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, m);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.starts_with("stats") {
                    m.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(out, out, &mut m);
    m
}

fn corpus(dir: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let texts = common::corpus(11, 30, 3, 150, 0.06);
    let files = common::write_jsonl(dir, &texts, 7);
    (texts, files)
}

/// The expected removed set, computed in memory: connected components of
/// LSH candidate pairs; each component keeps its first document in input
/// order (file, then position).
fn expected_removed(texts: &[String], files: usize) -> BTreeSet<String> {
    let mut hasher = MinHasher::new(&MinhashConfig::fineweb());
    // Global order: file index, then position in the file.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| (i % files, i / files));
    let bands: Vec<Vec<u64>> = order
        .iter()
        .map(|&i| {
            let mut b = Vec::new();
            hasher.band_hashes(&texts[i], &mut b);
            b
        })
        .collect();
    let n = order.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            x = p[x];
        }
        x
    }
    for i in 0..n {
        for j in i + 1..n {
            if bands[i].iter().zip(&bands[j]).any(|(a, b)| a == b) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                let (lo, hi) = (a.min(b), a.max(b));
                parent[hi] = lo;
            }
        }
    }
    (0..n)
        .filter(|&i| find(&mut parent, i) != i)
        .map(|i| format!("doc-{:04}", order[i]))
        .collect()
}

#[test]
fn removed_set_is_the_same_for_every_task_and_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let (texts, inputs) = corpus(&dir.path().join("in"));
    let want = expected_removed(&texts, inputs.len());
    assert!(want.len() >= 20, "too few duplicates: {}", want.len());
    let cancel = AtomicBool::new(false);
    let mut first: Option<BTreeMap<String, (u64, String)>> = None;
    for (tasks, workers, buffer) in [(1, 1, 1 << 20), (3, 2, 100), (7, 1, 1 << 20), (7, 2, 50)] {
        let out = dir.path().join(format!("out_{tasks}_{workers}_{buffer}"));
        let report = minhash::run(&job(&inputs, &out, tasks, workers, buffer), &cancel).unwrap();
        let got = removed(&out);
        let got_ids: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(got_ids, want, "tasks={tasks} workers={workers}");
        // Accounting: input = kept + dropped, for every file.
        assert!(report.stats.invariant_ok);
        assert_eq!(report.stats.input_docs, texts.len() as u64);
        assert_eq!(report.stats.dropped["minhash:duplicate"], want.len() as u64);
        assert_eq!(report.clusters.removed, want.len() as u64);
        assert_eq!(kept_ids(&out).len() + want.len(), texts.len());
        // Kept representatives are kept, and clusters agree across runs.
        let kept = kept_ids(&out);
        assert!(got.values().all(|(_, k)| kept.contains(k)));
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(f, &got, "tasks={tasks} workers={workers}"),
        }
    }
}

#[test]
fn resume_after_damage_gives_identical_output_and_params_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inputs) = corpus(&dir.path().join("in"));
    let cancel = AtomicBool::new(false);
    let out = dir.path().join("out");
    let j = job(&inputs, &out, 3, 2, 200);
    minhash::run(&j, &cancel).unwrap();
    let clean = snapshot(&out);

    // Rerun with nothing to do: every task is skipped.
    let r = minhash::run(&j, &cancel).unwrap();
    assert!(r.steps.iter().all(|s| s.tasks_run == 0), "{:?}", r.steps);
    assert_eq!(snapshot(&out), clean);

    // A signatures task lost its marker and one of its runs was truncated;
    // a filter task lost its marker and a shard.
    let mh = out.join("minhash");
    std::fs::remove_file(mh.join("signatures/completions/00001")).unwrap();
    let run = mh.join("signatures/band_003/00001_0000.bin");
    let bytes = std::fs::read(&run).unwrap();
    std::fs::write(&run, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(mh.join("signatures/band_003/.00001_0007.bin.tmp"), b"junk").unwrap();
    std::fs::remove_file(mh.join("filter/completions/00002")).unwrap();
    std::fs::remove_file(out.join("data/00002_00000.jsonl.zst")).unwrap();
    let r = minhash::run(&j, &cancel).unwrap();
    assert_eq!(r.steps[0].tasks_run, 1);
    assert_eq!(r.steps[1].tasks_run, 14, "later steps are redone");
    assert_eq!(snapshot(&out), clean);

    // A damaged intermediate file whose task is marked complete is an
    // error naming the file, not a panic.
    std::fs::remove_file(mh.join("buckets/completions/00003")).unwrap();
    std::fs::write(&run, &bytes[..bytes.len() - 5]).unwrap();
    let err = minhash::run(&j, &cancel).unwrap_err().to_string();
    assert!(
        err.contains("00001_0000.bin") && err.contains("truncated"),
        "{err}"
    );
    std::fs::write(&run, &bytes).unwrap();

    // Different parameters are refused.
    let mut other = j.clone();
    other.config.bands = 20;
    let err = minhash::run(&other, &cancel).unwrap_err().to_string();
    assert!(
        err.contains("config") && err.contains("params.json"),
        "{err}"
    );
    let mut other = j.clone();
    other.tasks = 4;
    assert!(minhash::run(&other, &cancel).is_err());
}

#[test]
fn explain_names_cluster_and_kept_document() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inputs) = corpus(&dir.path().join("in"));
    let out = dir.path().join("out");
    minhash::run(&job(&inputs, &out, 2, 1, 1 << 20), &AtomicBool::new(false)).unwrap();
    let rem = removed(&out);
    let (id, (cluster, kept)) = rem.iter().next().unwrap();
    let e = minhash::explain(&out, id).unwrap();
    assert!(e.removed);
    assert_eq!(e.cluster, Some(*cluster as u32));
    assert_eq!(e.kept_id.as_deref(), Some(kept.as_str()));
    assert!(e.kept_source.as_deref().unwrap().ends_with(".jsonl"));
    let text = e.to_string();
    assert!(
        text.contains("removed") && text.contains(kept.as_str()),
        "{text}"
    );

    let k = minhash::explain(&out, kept).unwrap();
    assert!(
        !k.removed && k.cluster == Some(*cluster as u32) && k.removed_duplicates >= 1,
        "{k:?}"
    );
    assert!(minhash::explain(&out, "no-such-id").is_err());
}

#[test]
fn shared_license_texts_cluster_as_expected() {
    let Some(shared) = common::shared() else {
        return;
    };
    let input = shared.join("data/dedup/documents_with_fuzzy_duplicates");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let r = minhash::run(&job(&[input], &out, 2, 2, 1 << 20), &AtomicBool::new(false)).unwrap();
    // The two MIT licenses (Rails, React: same text, reflowed, different
    // copyright line) are one cluster; the PyTorch BSD license is kept.
    let rem = removed(&out);
    assert_eq!(rem.len(), 1, "{rem:?}");
    let (id, (_, kept)) = rem.iter().next().unwrap();
    assert!(id.contains("react_mit_license"), "{id}");
    assert!(kept.contains("rails_mit_license"), "{kept}");
    let kept = kept_ids(&out);
    assert!(kept.iter().any(|k| k.contains("pytorch_license")));
    assert_eq!(r.stats.kept_docs, 2);
}

/// The snapshot without `clusters/summary.json`, whose `method`, `rounds`
/// and buffer sizes depend on the budget.
fn snapshot_without_summary(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut s = snapshot(out);
    s.remove("minhash/clusters/summary.json");
    s
}

#[test]
fn external_clusters_give_the_in_memory_output_for_any_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    // The fixture corpus, and a denser one (more variants per family, higher
    // edit rates: long chains of candidate pairs).
    for (name, texts) in [
        ("fixture", common::corpus(11, 30, 3, 150, 0.06)),
        ("dense", common::corpus(5, 12, 25, 120, 0.15)),
    ] {
        let inputs = common::write_jsonl(&dir.path().join(format!("in_{name}")), &texts, 5);
        let mem_out = dir.path().join(format!("{name}_memory"));
        let mem = minhash::run(&job(&inputs, &mem_out, 3, 2, 100), &cancel).unwrap();
        assert_eq!(mem.clusters.method, "union-find");
        assert!(mem.clusters.removed >= 20, "{name}: {:?}", mem.clusters);
        let want = snapshot_without_summary(&mem_out);
        for (budget, tasks, workers) in [(1u64, 1, 1), (2048, 3, 2), (4096, 7, 2)] {
            let out = dir.path().join(format!("{name}_external_{budget}"));
            let mut j = job(&inputs, &out, tasks, workers, 100);
            j.max_memory_bytes = budget;
            let r = minhash::run(&j, &cancel).unwrap();
            let c = &r.clusters;
            assert_eq!(c.method, "external", "{name} budget {budget}");
            assert!(c.rounds >= 1, "{c:?}");
            // Half the budget for sort buffers, half for 4–64 KiB read buffers.
            let bound = (budget / 2).max(256) + (budget / 2).max(8192);
            assert!(c.external_buffer_bytes <= bound, "{c:?}");
            // Same counts as the union-find, apart from the method fields.
            let strip = |c: &minhash::ClusterSummary| minhash::ClusterSummary {
                method: String::new(),
                rounds: 0,
                external_buffer_bytes: 0,
                union_find_bytes: 0,
                removal_list_bytes: 0,
                ..c.clone()
            };
            assert_eq!(strip(c), strip(&mem.clusters), "{name} budget {budget}");
            if tasks == 3 {
                // Byte-identical removal files, shards and rejects.
                let got = snapshot_without_summary(&out);
                let differ: Vec<&String> = got
                    .keys()
                    .chain(want.keys())
                    .filter(|k| got.get(*k) != want.get(*k))
                    .collect();
                assert!(differ.is_empty(), "{name} budget {budget}: {differ:?}");
            } else {
                assert_eq!(removed(&out), removed(&mem_out), "{name} budget {budget}");
            }
            assert!(!out.join("minhash/clusters/scratch").exists());
        }
    }
}

#[test]
fn external_clusters_resume_after_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (_, inputs) = corpus(&dir.path().join("in"));
    let cancel = AtomicBool::new(false);
    let out = dir.path().join("out");
    let mut j = job(&inputs, &out, 3, 2, 200);
    j.max_memory_bytes = 1024;
    minhash::run(&j, &cancel).unwrap();
    let clean = snapshot(&out);
    // The clusters task died: marker and a removal file gone, scratch left.
    let step = out.join("minhash/clusters");
    std::fs::remove_file(step.join("completions/00000")).unwrap();
    std::fs::remove_file(step.join("remove_00002.bin")).unwrap();
    std::fs::create_dir_all(step.join("scratch")).unwrap();
    std::fs::write(step.join("scratch/00000003.run"), b"junk").unwrap();
    let r = minhash::run(&j, &cancel).unwrap();
    assert_eq!(r.steps[2].tasks_run, 1);
    assert_eq!(r.steps[3].tasks_run, 3, "the filter step is redone");
    assert_eq!(snapshot(&out), clean);
}

/// One input file with thousands of removals: the filter step streams the
/// removal file (records straddle its read buffer) and every reject carries
/// its cluster and kept id.
#[test]
fn filter_streams_a_long_removal_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::Rng(41);
    let vocab = common::vocabulary(&mut rng, 3000);
    let mut doc = || common::render(&common::base_doc(&mut rng, &vocab, 2, 60));
    let templates: Vec<String> = (0..9).map(|_| doc()).collect();
    let n = 4000;
    // Every fifth document is unique; the others are exact copies of one
    // of the templates, so each template is a cluster kept at its first copy.
    let texts: Vec<(Option<usize>, String)> = (0..n)
        .map(|i| {
            if i % 5 == 4 {
                (None, doc())
            } else {
                (Some(i % 9), templates[i % 9].clone())
            }
        })
        .collect();
    let mut want = BTreeMap::new();
    let mut kept: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    let mut want_kept = BTreeSet::new();
    for (i, (t, _)) in texts.iter().enumerate() {
        let id = format!("doc-{i:04}");
        match t {
            None => {
                want_kept.insert(id);
            }
            Some(t) => match kept.get(t) {
                Some(k) => {
                    want.insert(id, k.clone());
                }
                None => {
                    let cluster = kept.len() as u64;
                    kept.insert(*t, (cluster, id.clone()));
                    want_kept.insert(id);
                }
            },
        }
    }
    let plain: Vec<String> = texts.into_iter().map(|(_, t)| t).collect();
    let inputs = common::write_jsonl(&dir.path().join("in"), &plain, 1);
    let out = dir.path().join("out");
    let cancel = AtomicBool::new(false);
    let report = minhash::run(&job(&inputs, &out, 1, 1, 1 << 20), &cancel).unwrap();
    assert_eq!(report.clusters.removed, want.len() as u64);
    let removals = out.join("minhash/clusters/remove_00000.bin");
    assert!(std::fs::metadata(&removals).unwrap().len() > 64 << 10);
    assert_eq!(removed(&out), want);
    assert_eq!(kept_ids(&out), want_kept);
    assert!(report.stats.invariant_ok);
}

/// `group_by`: documents of different groups (snapshots) are never compared, so the same
/// texts in two dumps survive once per dump; without it, once overall.
#[test]
fn group_by_dedups_each_snapshot_separately() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 12345u64;
    let mut word = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Letters only: the MinHash normalisation drops digits.
        let mut n = (state >> 33) % 5000;
        let mut w = String::new();
        for _ in 0..3 {
            w.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
        }
        w
    };
    let texts: Vec<String> = (0..5)
        .map(|_| (0..80).map(|_| word()).collect::<Vec<_>>().join(" "))
        .collect();
    let line = |id: String, text: &str, dump: &str| {
        serde_json::json!({"id": id, "text": text, "dump": dump}).to_string()
    };
    // Dump A: the five texts plus an exact copy of the first; dump B: the five texts again.
    let mut a: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| line(format!("a{i}"), t, "CC-MAIN-A"))
        .collect();
    a.push(line("a-copy".into(), &texts[0], "CC-MAIN-A"));
    let b: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| line(format!("b{i}"), t, "CC-MAIN-B"))
        .collect();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.jsonl"), a.join("\n") + "\n").unwrap();
    std::fs::write(input.join("b.jsonl"), b.join("\n") + "\n").unwrap();

    let kept = |group_by: Option<&str>, name: &str| -> BTreeSet<String> {
        let out = dir.path().join(name);
        let mut j = job(std::slice::from_ref(&input), &out, 2, 2, 1 << 20);
        j.group_by = group_by.map(str::to_string);
        minhash::run(&j, &AtomicBool::new(false)).unwrap();
        shard_docs(&out.join("data"))
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    let global = kept(None, "global");
    let per_dump = kept(Some("dump"), "per_dump");
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(global, ids(&["a0", "a1", "a2", "a3", "a4"]));
    assert_eq!(
        per_dump,
        ids(&["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"])
    );
    // The grouping is part of the run's identity: rerunning into the same directory with a
    // different grouping is refused instead of mixing results.
    let mut j = job(
        std::slice::from_ref(&input),
        &dir.path().join("global"),
        2,
        2,
        1 << 20,
    );
    j.group_by = Some("dump".into());
    assert!(minhash::run(&j, &AtomicBool::new(false)).is_err());
}

//! Training data from token shards: packing, doc-aligned rows, the validation split, mixing,
//! NSP pairs, exact resume and errors. Shards are written with the tokenize crate's writer.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use refinery_tokenize::shard::ShardWriter;
use refinery_tokenize::TokenDataset;
use refinery_train::data::{
    is_validation_doc, lm_batches, pair_batches, validation_set, BatchSource, DataConfig, DataMode,
    DataSplit, LmBatch, LongDocs, NspSpecials, SourceConfig,
};

const VOCAB: usize = 65_536;
const EOS: u32 = 65_535;
const DOT: u32 = 3;
const CLS: u32 = 1;
const SEP: u32 = 2;
const PAD: u32 = 0;

/// Document `d` of a corpus whose tokens start at `base`: every token names its document
/// (`base + 20 d + k % 13`), every 7th token is a boundary (`DOT`); document 13 is empty.
fn doc(base: u32, d: u32) -> Vec<u32> {
    let len = if d == 13 { 0 } else { 5 + (d * 37) % 60 };
    (0..len)
        .map(|k| {
            if k % 7 == 6 {
                DOT
            } else {
                base + 20 * d + k % 13
            }
        })
        .collect()
}

fn doc_of(base: u32, t: i64) -> Option<u32> {
    let t = t as u32;
    (t >= base && t != EOS && t < base + 20 * 1000).then(|| (t - base) / 20)
}

/// Writes `docs` documents into two shards of `dir`; returns them in global order.
fn write_corpus(dir: &Path, base: u32, docs: u32) -> Vec<Vec<u32>> {
    std::fs::create_dir_all(dir).unwrap();
    let all: Vec<Vec<u32>> = (0..docs).map(|d| doc(base, d)).collect();
    let half = docs as usize / 2;
    for (k, part) in [&all[..half], &all[half..]].iter().enumerate() {
        let mut w =
            ShardWriter::create(&dir.join(format!("00000_{k:05}.tok")), VOCAB, Some(EOS)).unwrap();
        for d in part.iter() {
            w.push_doc(d).unwrap();
        }
        w.finish().unwrap();
    }
    all
}

fn cfg(dir: &Path, seq_len: usize, batch_size: usize) -> DataConfig {
    DataConfig {
        seq_len,
        batch_size,
        shuffle: false,
        seed: 11,
        ..DataConfig::single(dir)
    }
}

fn rows(b: &refinery_train::data::LmBatch) -> Vec<Vec<i64>> {
    b.input_ids.chunks(b.seq_len).map(|r| r.to_vec()).collect()
}

#[test]
fn packed_rows_reproduce_the_concatenated_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = write_corpus(tmp.path(), 100, 40);
    let stream: Vec<i64> = docs
        .iter()
        .filter(|d| !d.is_empty())
        .flat_map(|d| d.iter().copied().chain([EOS]))
        .map(i64::from)
        .collect();
    let t = 16;
    let want: Vec<Vec<i64>> = stream.chunks_exact(t).map(|c| c.to_vec()).collect();
    let mut src = lm_batches(&cfg(tmp.path(), t, 4), DataSplit::Train).unwrap();
    let mut got = Vec::new();
    while got.len() < want.len() {
        let b = src.next_batch();
        assert_eq!((b.batch_size, b.seq_len), (4, t));
        assert!(b.attention_mask.is_none());
        got.extend(rows(&b));
    }
    // In order, the first epoch is exactly the stream cut into rows, then it starts over.
    assert_eq!(&got[..want.len()], &want[..]);
    assert_eq!(&got[want.len()..], &want[..got.len() - want.len()]);

    // Shuffled: one epoch is a permutation of the same rows, in another order.
    let mut c = cfg(tmp.path(), t, 1);
    c.shuffle = true;
    let mut src = lm_batches(&c, DataSplit::Train).unwrap();
    let epoch: Vec<Vec<i64>> = (0..want.len())
        .map(|_| src.next_batch().input_ids)
        .collect();
    assert_ne!(epoch, want);
    let (mut a, mut b) = (epoch.clone(), want.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // The next epoch has another order.
    let epoch2: Vec<Vec<i64>> = (0..want.len())
        .map(|_| src.next_batch().input_ids)
        .collect();
    assert_ne!(epoch2, epoch);
}

#[test]
fn doc_aligned_rows_are_padded_and_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = write_corpus(tmp.path(), 100, 30);
    let t = 16;
    let mut c = cfg(tmp.path(), t, 3);
    c.mode = DataMode::DocAligned;
    c.pad_id = Some(PAD);
    let mut want_ids = Vec::new();
    let mut want_mask = Vec::new();
    for d in docs.iter().filter(|d| !d.is_empty()) {
        let unit: Vec<i64> = d.iter().copied().chain([EOS]).map(i64::from).collect();
        for chunk in unit.chunks(t) {
            let mut r = chunk.to_vec();
            let mut m = vec![1; chunk.len()];
            r.resize(t, i64::from(PAD));
            m.resize(t, 0);
            want_ids.push(r);
            want_mask.push(m);
        }
    }
    let mut src = lm_batches(&c, DataSplit::Train).unwrap();
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    while ids.len() < want_ids.len() {
        let b = src.next_batch();
        let m = b.attention_mask.clone().unwrap();
        ids.extend(rows(&b));
        mask.extend(m.chunks(t).map(|r| r.to_vec()));
    }
    ids.truncate(want_ids.len());
    mask.truncate(want_ids.len());
    assert_eq!(ids, want_ids);
    assert_eq!(mask, want_mask);
    assert!(mask.iter().any(|m| m.contains(&0)), "some rows are padded");

    // Truncate: one row per non-empty document, its first `t` tokens.
    c.long_docs = LongDocs::Truncate;
    let vs = {
        let mut v = c.clone();
        v.validation_fraction = 0.0;
        v
    };
    let mut src = lm_batches(&vs, DataSplit::Train).unwrap();
    let nonempty: Vec<&Vec<u32>> = docs.iter().filter(|d| !d.is_empty()).collect();
    let mut got = Vec::new();
    while got.len() < nonempty.len() {
        got.extend(rows(&src.next_batch()));
    }
    for (row, d) in got.iter().zip(&nonempty) {
        let n = d.len().min(t);
        let want: Vec<i64> = d[..n].iter().map(|&x| i64::from(x)).collect();
        assert_eq!(&row[..n], &want[..]);
    }
}

fn held_out(c: &DataConfig, docs: &[Vec<u32>]) -> HashSet<u32> {
    (0..docs.len() as u32)
        .filter(|&d| is_validation_doc(c.split_seed, u64::from(d), c.validation_fraction))
        .collect()
}

#[test]
fn validation_documents_never_reach_training_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = write_corpus(tmp.path(), 100, 120);
    for mode in [DataMode::Packed, DataMode::DocAligned] {
        let mut c = cfg(tmp.path(), 16, 8);
        c.mode = mode;
        c.shuffle = true;
        c.validation_fraction = 0.2;
        c.split_seed = 3;
        let val = held_out(&c, &docs);
        assert!(val.len() > 10 && val.len() < 40, "{}", val.len());

        let mut train = lm_batches(&c, DataSplit::Train).unwrap();
        let mut train_docs = BTreeSet::new();
        for _ in 0..60 {
            for t in train.next_batch().input_ids {
                if let Some(d) = doc_of(100, t) {
                    assert!(!val.contains(&d), "validation doc {d} in a training row");
                    train_docs.insert(d);
                }
            }
        }
        let vset = validation_set(&c).unwrap();
        let mut val_docs = BTreeSet::new();
        let mut n_rows = 0;
        for b in vset.batches() {
            n_rows += b.batch_size as u64;
            for t in b.input_ids {
                if let Some(d) = doc_of(100, t) {
                    assert!(val.contains(&d), "training doc {d} in validation");
                    val_docs.insert(d);
                }
            }
        }
        assert_eq!(n_rows, vset.num_rows());
        assert_eq!(vset.num_batches(), vset.num_rows().div_ceil(8));
        assert!(vset.num_tokens() > 0);
        // Every non-empty document is on exactly one side.
        let all: BTreeSet<u32> = (0..120).filter(|&d| !docs[d as usize].is_empty()).collect();
        let union: BTreeSet<u32> = train_docs.union(&val_docs).copied().collect();
        assert_eq!(union, all, "{mode:?}");
    }
}

fn assert_resumes(make: &dyn Fn() -> Box<dyn BatchSource<LmBatch> + Send>) {
    let mut fresh = make();
    let batches: Vec<_> = (0..12).map(|_| fresh.next_batch()).collect();
    assert_eq!(fresh.position(), 12);
    for k in [0u64, 1, 5, 11] {
        let mut s = make();
        s.seek(k);
        assert_eq!(s.next_batch(), batches[k as usize], "seek({k})");
        assert_eq!(s.position(), k + 1);
    }
}

fn two_sources(root: &Path, w: (f64, f64)) -> DataConfig {
    write_corpus(&root.join("a"), 100, 60);
    write_corpus(&root.join("b"), 30_000, 60);
    DataConfig {
        sources: vec![
            SourceConfig {
                dir: root.join("a"),
                weight: w.0,
            },
            SourceConfig {
                dir: root.join("b"),
                weight: w.1,
            },
        ],
        seq_len: 8,
        batch_size: 10,
        seed: 5,
        ..DataConfig::default()
    }
}

#[test]
fn seek_resumes_exactly_for_every_source() {
    let tmp = tempfile::tempdir().unwrap();
    write_corpus(tmp.path(), 100, 50);
    let mut c = cfg(tmp.path(), 16, 4);
    c.shuffle = true;
    c.validation_fraction = 0.2;
    for mode in [DataMode::Packed, DataMode::DocAligned] {
        c.mode = mode;
        assert_resumes(&|| lm_batches(&c, DataSplit::Train).unwrap());
        assert_resumes(&|| lm_batches(&c, DataSplit::Validation).unwrap());
    }
    let mix = two_sources(&tmp.path().join("mix"), (2.0, 1.0));
    assert_resumes(&|| lm_batches(&mix, DataSplit::Train).unwrap());

    let mut n = cfg(tmp.path(), 32, 6);
    n.nsp.boundary_ids = vec![DOT];
    let sp = NspSpecials {
        cls: CLS,
        sep: SEP,
        pad: PAD,
    };
    let mut fresh = pair_batches(&n, DataSplit::Train, sp).unwrap();
    let batches: Vec<_> = (0..8).map(|_| fresh.next_batch()).collect();
    for k in [0u64, 3, 7] {
        let mut s = pair_batches(&n, DataSplit::Train, sp).unwrap();
        s.seek(k);
        assert_eq!(s.next_batch(), batches[k as usize]);
        assert_eq!(s.position(), k + 1);
    }
}

#[test]
fn mixing_follows_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    for (wa, wb) in [(0.7, 0.3), (1.0, 4.0)] {
        let c = two_sources(&tmp.path().join(format!("{wa}")), (wa, wb));
        let mut src = lm_batches(&c, DataSplit::Train).unwrap();
        let (mut from_a, mut n) = (0usize, 0usize);
        for _ in 0..500 {
            let b = src.next_batch();
            for row in rows(&b) {
                let a = row
                    .iter()
                    .any(|&t| doc_of(100, t).is_some_and(|d| d < 1000) && t < 30_000);
                let bb = row.iter().any(|&t| t >= 30_000 && t != i64::from(EOS));
                assert!(a != bb, "a row comes from exactly one source: {row:?}");
                from_a += usize::from(a);
                n += 1;
            }
        }
        assert_eq!(n, 5000);
        let share = from_a as f64 / n as f64;
        let want = wa / (wa + wb);
        assert!((share - want).abs() < 0.02, "share {share}, weight {want}");
    }
}

#[test]
fn nsp_pairs_follow_the_bert_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    write_corpus(tmp.path(), 100, 80);
    let ds = TokenDataset::open(tmp.path()).unwrap();
    let t = 32;
    let mut c = cfg(tmp.path(), t, 100);
    c.nsp.boundary_ids = vec![DOT];
    let sp = NspSpecials {
        cls: CLS,
        sep: SEP,
        pad: PAD,
    };
    let mut src = pair_batches(&c, DataSplit::Train, sp).unwrap();
    let (mut random, mut n) = (0i64, 0i64);
    for _ in 0..100 {
        let b = src.next_batch();
        for r in 0..b.batch_size {
            let ids = &b.input_ids[r * t..(r + 1) * t];
            let types = &b.token_type_ids[r * t..(r + 1) * t];
            let mask = &b.attention_mask[r * t..(r + 1) * t];
            let label = b.is_random_next[r];
            random += label;
            n += 1;
            assert_eq!(ids[0], i64::from(CLS));
            let seps: Vec<usize> = (0..t).filter(|&i| ids[i] == i64::from(SEP)).collect();
            assert_eq!(seps.len(), 2, "{ids:?}");
            let (s1, s2) = (seps[0], seps[1]);
            assert!(s1 >= 2 && s2 > s1 + 1, "A and B are non-empty: {ids:?}");
            let real = s2 + 1;
            assert!(mask[..real].iter().all(|&m| m == 1) && mask[real..].iter().all(|&m| m == 0));
            assert!(ids[real..].iter().all(|&x| x == i64::from(PAD)));
            assert!(types[..=s1].iter().all(|&x| x == 0));
            assert!(types[s1 + 1..real].iter().all(|&x| x == 1));
            assert!(types[real..].iter().all(|&x| x == 0));
            // Documents of A and B (boundary tokens carry no document).
            let docs = |xs: &[i64]| -> BTreeSet<u32> {
                xs.iter().filter_map(|&x| doc_of(100, x)).collect()
            };
            let (da, db) = (docs(&ids[1..s1]), docs(&ids[s1 + 1..s2]));
            assert!(da.len() <= 1 && db.len() <= 1, "one document per side");
            if let (Some(a), Some(bd)) = (da.first(), db.first()) {
                assert_eq!(
                    label == 1,
                    a != bd,
                    "label {label}: A in doc {a}, B in doc {bd}"
                );
            }
        }
    }
    let rate = random as f64 / n as f64;
    assert_eq!(n, 10_000);
    assert!((rate - 0.5).abs() < 0.02, "random-next rate {rate}");

    // Provenance: true B starts where A ends in the same document; random B is elsewhere.
    let c2 = {
        let mut x = c.clone();
        x.batch_size = 1;
        x
    };
    let table = std::sync::Arc::new(
        refinery_train::data::DocTable::build(
            std::sync::Arc::new(TokenDataset::open(tmp.path()).unwrap()),
            tmp.path(),
            DataSplit::Train,
            0.0,
            0,
        )
        .unwrap(),
    );
    let pairs = refinery_train::data::NspPairs::new(
        table,
        sp,
        &refinery_train::data::nsp::NspOptions {
            boundary_ids: vec![DOT],
            max_segment_tokens: 64,
            short_seq_prob: 0.1,
        },
        t,
        1,
        c2.seed,
    )
    .unwrap();
    let mut by_builder = pair_batches(&c2, DataSplit::Train, sp).unwrap();
    for g in 0..500 {
        let p = pairs.pair(g);
        let len = (p.a.end - p.a.start) + (p.b.end - p.b.start);
        assert!(len <= (t - 3) as u64 && p.a.start < p.a.end && p.b.start < p.b.end);
        if p.is_random_next {
            assert_ne!(p.doc_a, p.doc_b);
        } else {
            assert_eq!(p.doc_a, p.doc_b);
            assert_eq!(p.a.end, p.b.start);
        }
        // The batch holds exactly these token ranges.
        let mut want = vec![CLS];
        ds.read_into(p.a.clone(), &mut want);
        want.push(SEP);
        ds.read_into(p.b.clone(), &mut want);
        want.push(SEP);
        let b = by_builder.next_batch();
        let got: Vec<u32> = b.input_ids[..want.len()]
            .iter()
            .map(|&x| x as u32)
            .collect();
        assert_eq!(got, want);
        assert_eq!(b.is_random_next[0], i64::from(p.is_random_next));
    }
}

#[test]
fn bad_shard_directories_are_named_in_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let e = lm_batches(&cfg(&missing, 8, 2), DataSplit::Train)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = lm_batches(&cfg(&empty, 8, 2), DataSplit::Train)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&empty.display().to_string()), "{e}");

    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("00000_00000.tok"),
        b"not a shard at all, just some bytes .......................................",
    )
    .unwrap();
    let e = lm_batches(&cfg(&bad, 8, 2), DataSplit::Train)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&bad.join("00000_00000.tok").display().to_string()),
        "{e}"
    );

    // A row longer than the whole corpus.
    let small = tmp.path().join("small");
    write_corpus(&small, 100, 2);
    let e = lm_batches(&cfg(&small, 4096, 2), DataSplit::Train)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&small.display().to_string()), "{e}");
    // No validation split configured.
    assert!(validation_set(&cfg(&small, 8, 2)).is_err());
}

#[test]
fn config_defaults_and_validation() {
    let c: DataConfig =
        serde_json::from_str(r#"{"sources": [{"dir": "tok"}], "seq_len": 64}"#).unwrap();
    assert_eq!(c.sources[0].weight, 1.0);
    assert_eq!((c.seq_len, c.batch_size, c.mode), (64, 8, DataMode::Packed));
    assert!(c.shuffle && c.nsp.short_seq_prob == 0.1);
    let checked = c.validate().unwrap();
    assert_eq!(checked.weights(), &[1.0]);
    assert!(serde_json::from_str::<DataConfig>(r#"{"sources": [], "seq_lenn": 3}"#).is_err());

    let mut bad = c.clone();
    bad.sources[0].weight = -1.0;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("sources[0].weight"));
    let mut bad = c.clone();
    bad.validation_fraction = 1.0;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("validation_fraction"));
    let mut bad = c;
    bad.sources.clear();
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("data.sources"));
}

/// tinyshakespeare, byte-tokenized on the fly (one document per speech, i.e. per blank-line
/// separated block): packed rows are slices of the text and true NSP pairs are contiguous.
#[test]
fn tinyshakespeare_bytes_pack_and_pair() {
    let path = Path::new("/work/shared/data/lm/tinyshakespeare.txt");
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("skipping: {} is absent", path.display());
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sep = 0u32; // NUL never occurs in the text
    let mut w = ShardWriter::create(&tmp.path().join("00000_00000.tok"), 256, Some(sep)).unwrap();
    let speeches: Vec<&str> = text.split("\n\n").filter(|s| !s.is_empty()).collect();
    for s in &speeches {
        let ids: Vec<u32> = s.bytes().map(u32::from).collect();
        w.push_doc(&ids).unwrap();
    }
    w.finish().unwrap();
    let mut c = cfg(tmp.path(), 64, 16);
    c.shuffle = true;
    c.validation_fraction = 0.05;
    let decode = |ids: &[i64]| -> String { ids.iter().map(|&b| b as u8 as char).collect() };
    let mut src = lm_batches(&c, DataSplit::Train).unwrap();
    for _ in 0..20 {
        for row in rows(&src.next_batch()) {
            for piece in decode(&row).split('\0').filter(|p| !p.is_empty()) {
                assert!(text.contains(piece), "{piece:?}");
            }
        }
    }
    let v = validation_set(&c).unwrap();
    let held = v.num_rows() as f64 * 64.0 / text.len() as f64;
    assert!(held > 0.02 && held < 0.08, "validation share {held}");

    c.nsp.boundary_ids = vec![u32::from(b'\n'), u32::from(b'.')];
    c.seq_len = 128;
    let mut pairs = pair_batches(
        &c,
        DataSplit::Train,
        NspSpecials {
            cls: 1,
            sep: 2,
            pad: 3,
        },
    )
    .unwrap();
    for _ in 0..10 {
        let b = pairs.next_batch();
        for r in 0..b.batch_size {
            let ids = &b.input_ids[r * 128..(r + 1) * 128];
            let seps: Vec<usize> = (0..128).filter(|&i| ids[i] == 2).collect();
            let (a, bb) = (decode(&ids[1..seps[0]]), decode(&ids[seps[0] + 1..seps[1]]));
            if b.is_random_next[r] == 0 {
                assert!(text.contains(&format!("{a}{bb}")), "{a:?} | {bb:?}");
            }
        }
    }
}

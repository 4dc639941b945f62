//! Token shards end to end: tokenize files, read back with every reader
//! API, determinism across workers, and checks on corrupt files.

mod common;

use std::path::Path;

use refinery_corpus::input::discover;
use refinery_corpus::readers::ReaderOptions;
use refinery_tokenize::job::{self, TokenStats, TokenizeJob, TokenizeProgress};
use refinery_tokenize::train::{self, ModelKind, TrainConfig};
use refinery_tokenize::{TokenDataset, TokenShard, Tokenizer};

fn corpus(dir: &Path) -> Vec<String> {
    let docs: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "Document {i}: {} 第{i}篇 ✨\n",
                "the quick brown fox ".repeat(i % 17 + 1)
            )
        })
        .collect();
    let mut a = String::new();
    let mut b = String::new();
    for (i, d) in docs.iter().enumerate() {
        let line = serde_json::json!({"id": i.to_string(), "text": d}).to_string() + "\n";
        if i % 3 == 0 {
            b.push_str(&line)
        } else {
            a.push_str(&line)
        }
    }
    std::fs::write(dir.join("a.jsonl"), a).unwrap();
    std::fs::write(dir.join("b.jsonl"), b).unwrap();
    docs
}

fn tokenize(input: &Path, out: &Path, tok: &Tokenizer, tasks: usize, workers: usize) -> TokenStats {
    let job = TokenizeJob {
        inputs: discover(&[input.to_path_buf()]).unwrap(),
        reader: ReaderOptions::default(),
        output: out.to_path_buf(),
        tasks,
        workers,
        separator: tok.default_eos().map(|e| e.1),
        max_shard_tokens: 2000,
        overwrite: false,
    };
    job::run(&job, tok, &TokenizeProgress::default()).unwrap()
}

#[test]
fn tokenize_read_back_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let docs = corpus(&input);
    let tok = train::train(
        &TrainConfig::new(ModelKind::Bpe, 400),
        docs.clone().into_iter(),
    )
    .unwrap();
    let eos = tok.token_to_id("<|endoftext|>").unwrap();

    let s1 = tokenize(&input, &tmp.path().join("o1"), &tok, 2, 1);
    let s2 = tokenize(&input, &tmp.path().join("o2"), &tok, 2, 2);
    assert_eq!(s1.docs, 300);
    assert_eq!(s1.shards, s2.shards);
    assert!(s1.shards.len() > 2, "shards rotate at 2000 tokens");
    assert_eq!(s1.sources.len(), 2);
    assert!(s1.total.tokens_per_byte > 0.0 && s1.total.tokens_per_byte < 1.0);
    assert_eq!(
        s1.tokens,
        s1.total.tokens + s1.docs,
        "one separator per document"
    );
    for sh in &s1.shards {
        let a = std::fs::read(tmp.path().join("o1").join(&sh.file)).unwrap();
        let b = std::fs::read(tmp.path().join("o2").join(&sh.file)).unwrap();
        assert_eq!(a, b, "{} differs with 2 workers", sh.file);
    }
    // A second run into the same directory is refused.
    let job = TokenizeJob {
        inputs: discover(std::slice::from_ref(&input)).unwrap(),
        reader: ReaderOptions::default(),
        output: tmp.path().join("o1"),
        tasks: 1,
        workers: 1,
        separator: None,
        max_shard_tokens: 1 << 20,
        overwrite: false,
    };
    assert!(job::run(&job, &tok, &TokenizeProgress::default())
        .unwrap_err()
        .to_string()
        .contains("--overwrite"));

    let ds = TokenDataset::open(&tmp.path().join("o1")).unwrap();
    assert_eq!(ds.num_docs(), 300);
    assert_eq!(ds.num_tokens(), s1.tokens);
    // Every document decodes to its text + separator; all texts are there.
    let saved = Tokenizer::load(&tmp.path().join("o1").join(&s1.tokenizer_file)).unwrap();
    let mut seen = Vec::new();
    for batch in ds.doc_batches(1 << 20) {
        for d in batch {
            assert_eq!(*d.last().unwrap(), eos);
            seen.push(saved.decode(&d[..d.len() - 1]).unwrap());
        }
    }
    seen.sort();
    let mut want = docs.clone();
    want.sort();
    assert_eq!(seen, want);

    // Packed sequences of T+1 step by T and cover the stream.
    let all: Vec<u32> = {
        let mut v = Vec::new();
        ds.read_into(0..ds.num_tokens(), &mut v);
        v
    };
    let t = 64u64;
    let seqs: Vec<Vec<u32>> = ds.sequences(t).collect();
    assert_eq!(seqs.len() as u64, (ds.num_tokens() - 1) / t);
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(s.len() as u64, t + 1);
        assert_eq!(
            &s[..],
            &all[i * t as usize..i * t as usize + t as usize + 1]
        );
    }
    // Random windows: deterministic per seed, inside the stream.
    let w1: Vec<Vec<u32>> = ds.random_windows(33, 7).unwrap().take(20).collect();
    let w2: Vec<Vec<u32>> = ds.random_windows(33, 7).unwrap().take(20).collect();
    assert_eq!(w1, w2);
    assert!(w1.iter().all(|w| w.len() == 33));
    assert!(ds.random_windows(1 << 40, 0).is_err());
    // Document batches respect the budget; long documents are cut.
    for batch in ds.doc_batches(50) {
        assert!(batch.iter().map(Vec::len).sum::<usize>() <= 50);
    }
}

#[test]
fn corrupt_shards_are_errors_with_hints() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.tok");
    let mut w = refinery_tokenize::ShardWriter::create(&p, 1000, Some(0)).unwrap();
    w.push_doc(&[1, 2, 3, 4, 5]).unwrap();
    w.finish().unwrap();
    let good = std::fs::read(&p).unwrap();
    let check = |bytes: &[u8], needle: &str| {
        std::fs::write(&p, bytes).unwrap();
        let e = TokenShard::open(&p).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains("HINT") && e.contains("x.tok"),
            "{e}"
        );
    };
    check(&good[..good.len() - 1], "bytes");
    check(&good[..10], "shorter");
    check(&[], "shorter");
    let mut b = good.clone();
    b[0] = b'X';
    check(&b, "magic");
    let mut b = good.clone();
    b[8] = 9;
    check(&b, "version");
    let mut b = good.clone();
    b[12] = 3;
    check(&b, "dtype");
    let mut b = good.clone();
    b[24] = 200; // token count
    check(&b, "index offset");
    let mut b = good.clone();
    let n = b.len();
    b[n - 8] = 4; // last index entry != token count
    check(&b, "index");
    let mut b = good.clone();
    b[64] = 0xff;
    b[65] = 0xff; // token 65535 ≥ vocab 1000
    std::fs::write(&p, &b).unwrap();
    let s = TokenShard::open(&p).unwrap();
    assert!(s.verify_tokens().unwrap_err().to_string().contains("vocab"));
    assert!(TokenDataset::open(tmp.path().join("none").as_path()).is_err());
}

#[test]
fn separator_outside_the_vocabulary_is_a_corrupt_header() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.tok");
    let mut w = refinery_tokenize::ShardWriter::create(&p, 1000, Some(0)).unwrap();
    w.push_doc(&[1, 2, 3]).unwrap();
    w.finish().unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // Separator 70000: beyond the vocabulary and the u16 tokens.
    b[48..52].copy_from_slice(&70_000u32.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let e = TokenShard::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("separator id 70000") && e.contains("x.tok"),
        "{e}"
    );
}

#[test]
fn token_ids_are_checked_against_a_model_vocabulary() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("00000_00000.tok");
    let mut w = refinery_tokenize::ShardWriter::create(&p, 1000, Some(0)).unwrap();
    w.push_doc(&[1, 2, 3]).unwrap();
    w.push_doc(&[]).unwrap();
    w.push_doc(&[4, 999, 5]).unwrap();
    w.finish().unwrap();
    let ds = TokenDataset::open(tmp.path()).unwrap();
    assert_eq!(ds.max_id(), Some(999));
    ds.check_ids_below(1000).unwrap();
    // A model with a smaller vocabulary: shard, position and document named.
    let e = ds.check_ids_below(500).unwrap_err().to_string();
    assert!(
        e.contains("00000_00000.tok")
            && e.contains("token 999 at position 6 (document 2)")
            && e.contains("re-tokenize"),
        "{e}"
    );
}

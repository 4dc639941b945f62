//! Token ids identical to Python `tokenizers` and `tiktoken` on the fixture
//! texts (tests/fixtures/parity_texts.jsonl; ids from make_reference.py).

mod common;

use common::{ids, reference, shared, texts};
use refinery_tokenize::Tokenizer;

fn check(tok: &Tokenizer, key: &str, encode: impl Fn(&Tokenizer, &str) -> Vec<u32>) {
    let want = ids(&reference(), key);
    let texts = texts();
    assert_eq!(want.len(), texts.len());
    for (t, w) in texts.iter().zip(&want) {
        assert_eq!(&encode(tok, t), w, "{key}: {t:?}");
    }
}

#[test]
fn gpt2_from_vocab_and_merges_matches_hf_python() {
    let Some(s) = shared() else { return };
    let fx = s.join("data/lm/bpe-fixtures");
    let tok = Tokenizer::from_gpt2_files(&fx.join("gpt2_vocab.json"), &fx.join("gpt2_merges.txt"))
        .unwrap();
    assert_eq!(tok.vocab_size(), 50257);
    assert_eq!(tok.default_eos(), Some(("<|endoftext|>", 50256)));
    check(&tok, "gpt2", |t, s| t.encode(s).unwrap());
    // Byte-level BPE round-trips exactly.
    for t in texts() {
        assert_eq!(tok.decode(&tok.encode(&t).unwrap()).unwrap(), t);
    }
}

#[test]
fn minilm_wordpiece_matches_hf_python() {
    let Some(s) = shared() else { return };
    let tok = Tokenizer::load(&s.join("data/models/all-MiniLM-L6-v2-tokenizer")).unwrap();
    assert_eq!(tok.kind(), "hf:WordPiece");
    check(&tok, "minilm", |t, s| t.encode(s).unwrap());
    check(&tok, "minilm_special", |t, s| {
        t.encode_with_special(s).unwrap()
    });
    let want: Vec<String> = serde_json::from_value(reference()["minilm_decoded"].clone()).unwrap();
    for (t, w) in texts().iter().zip(&want) {
        assert_eq!(&tok.decode(&tok.encode(t).unwrap()).unwrap(), w);
    }
}

#[test]
fn cl100k_matches_tiktoken() {
    let Some(s) = shared() else { return };
    let tok = Tokenizer::load(&s.join("data/models/tiktoken/cl100k_base.tiktoken")).unwrap();
    assert_eq!(tok.kind(), "tiktoken:cl100k_base");
    assert_eq!(tok.vocab_size(), 100277);
    check(&tok, "cl100k", |t, s| t.encode(s).unwrap());
    check(&tok, "cl100k_special", |t, s| {
        t.encode_with_special(s).unwrap()
    });
    for t in texts() {
        assert_eq!(tok.decode(&tok.encode(&t).unwrap()).unwrap(), t);
    }
}

#[test]
fn bad_tokenizer_files_are_errors_with_hints() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tokenizer.json");
    std::fs::write(&p, b"{\"not\": \"a tokenizer\"}").unwrap();
    let e = Tokenizer::load(&p).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json") && e.contains("HINT"), "{e}");
    let p = dir.path().join("cl100k_base.tiktoken");
    std::fs::write(&p, b"IQ== 0\nnot base64 at all\n").unwrap();
    let e = Tokenizer::load(&p).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("HINT"), "{e}");
    let e = Tokenizer::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("HINT"), "{e}");
    std::fs::remove_file(&p).unwrap();
    let e = Tokenizer::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("HINT"), "{e}");
}

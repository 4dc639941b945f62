//! Token ids identical to Python `tokenizers` and `tiktoken` on the fixture
//! texts (tests/fixtures/parity_texts.jsonl; ids from make_reference.py).

mod common;

use common::{ids, reference, shared, texts};
use refinery_tokenize::{Tokenizer, ENGINE_HF, ENGINE_TIKTOKEN};

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
    // The fast path (tiktoken-style engine) serves GPT-2.
    assert_eq!(tok.engine(), ENGINE_TIKTOKEN);
    check(&tok, "gpt2", |t, s| t.encode(s).unwrap());
    check(&tok, "gpt2", |t, s| t.encode_with_special(s).unwrap());
    // And the HF crate path gives the same reference ids.
    let hf = Tokenizer::from_gpt2_files(&fx.join("gpt2_vocab.json"), &fx.join("gpt2_merges.txt"))
        .unwrap()
        .with_hf_engine();
    assert_eq!(hf.engine(), ENGINE_HF);
    check(&hf, "gpt2", |t, s| t.encode(s).unwrap());
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
    assert_eq!(tok.engine(), ENGINE_HF);
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
    assert_eq!(tok.engine(), ENGINE_TIKTOKEN);
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

/// A small seeded generator (xorshift64*), so the texts are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Texts mixing pieces of the fixture texts (changed in case, spacing and
/// digits) with random code points from many scripts and classes.
fn generated_texts(seed: u64, count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "'s",
        "'t",
        "'re",
        "'ve",
        "'m",
        "'ll",
        "'d",
        "'S",
        "''",
        " '",
        "\t",
        "\n\n",
        "\r\n",
        "   ",
        " \u{a0}",
        "\u{3000}",
        "<|endoftext|>",
        "<|endoftext",
        "|>",
        "  \n ",
        "123456",
        " 42",
        "\u{200d}",
        "\u{fe0f}",
        "🏳️‍🌈",
        "👩‍👩‍👧",
        "e\u{301}",
        "ﬁ",
        "Ⅻ",
        "١٢٣",
        "\u{0}",
        "\u{7f}",
        "\u{fffd}",
        "\u{ffff}",
        "\u{10ffff}",
        "中文分词",
        "東京都",
        "한국어",
        "def f(x):\n    return x",
        "</div>",
        "http://example.com/a?b=c",
        "....",
        "!!!",
        "—",
        "…",
        " Hello",
        "WORLD",
        "ing",
    ];
    const RANGES: &[(u32, u32)] = &[
        (0x20, 0x7e),
        (0x20, 0x7e),
        (0x20, 0x7e),
        (0x0, 0x20),
        (0x80, 0x2ff),
        (0x300, 0x36f),
        (0x370, 0x52f),
        (0x590, 0x6ff),
        (0x900, 0x97f),
        (0xe00, 0xe7f),
        (0x2000, 0x206f),
        (0x3000, 0x30ff),
        (0x4e00, 0x9fff),
        (0xac00, 0xd7a3),
        (0xff00, 0xffef),
        (0x1f300, 0x1faff),
        (0x10000, 0x10ffff),
    ];
    let fixture = texts();
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..1 + rng.below(40) {
                match rng.below(4) {
                    0 => {
                        let t = &fixture[rng.below(fixture.len())];
                        let chars: Vec<char> = t.chars().collect();
                        let a = rng.below(chars.len() + 1);
                        let b = a + rng.below(chars.len() + 1 - a);
                        let mut part: String = chars[a..b].iter().collect();
                        match rng.below(4) {
                            0 => part = part.to_uppercase(),
                            1 => part = part.replace(' ', "  "),
                            2 => part = part.replace('e', " 7"),
                            _ => {}
                        }
                        s.push_str(&part);
                    }
                    1 => s.push_str(PIECES[rng.below(PIECES.len())]),
                    _ => {
                        let (lo, hi) = RANGES[rng.below(RANGES.len())];
                        for _ in 0..1 + rng.below(12) {
                            let c = lo + rng.below((hi - lo + 1) as usize) as u32;
                            s.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                        }
                    }
                }
                if rng.below(3) == 0 {
                    s.push(' ');
                }
            }
            s
        })
        .collect()
}

#[test]
fn gpt2_fast_path_equals_hf_on_generated_text() {
    let Some(s) = shared() else { return };
    let fx = s.join("data/lm/bpe-fixtures");
    let load = || {
        Tokenizer::from_gpt2_files(&fx.join("gpt2_vocab.json"), &fx.join("gpt2_merges.txt"))
            .unwrap()
    };
    let fast = load();
    let hf = load().with_hf_engine();
    assert_eq!((fast.engine(), hf.engine()), (ENGINE_TIKTOKEN, ENGINE_HF));

    // A tokenizer.json written by the HF crate takes the fast path too.
    let dir = tempfile::tempdir().unwrap();
    let json = Tokenizer::load(&fast.save_to_dir(dir.path()).unwrap()).unwrap();
    assert_eq!(json.engine(), ENGINE_TIKTOKEN);

    // REFINERY_PARITY_TEXTS=N checks more (the default keeps the test quick).
    let count = std::env::var("REFINERY_PARITY_TEXTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let texts = generated_texts(0x5eed_0005, count);
    let bytes: usize = texts.iter().map(String::len).sum();
    assert!(bytes > 300_000, "{bytes}");
    let want = hf.encode_batch(&texts).unwrap();
    assert_eq!(fast.encode_batch(&texts).unwrap(), want);
    assert_eq!(json.encode_batch(&texts).unwrap(), want);
    let n_ids: usize = want.iter().map(Vec::len).sum();
    eprintln!(
        "{} texts, {bytes} bytes, {n_ids} ids: identical",
        texts.len()
    );
    assert!(n_ids > 100_000, "{n_ids}");
    for (t, ids) in texts.iter().zip(&want) {
        assert_eq!(&fast.decode(ids).unwrap(), t);
    }
    // Decoding any ids (partial UTF-8, special ids) agrees with HF too.
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let ids: Vec<u32> = (0..rng.below(20))
            .map(|_| rng.below(fast.vocab_size()) as u32)
            .collect();
        assert_eq!(
            fast.decode(&ids).unwrap(),
            hf.decode(&ids).unwrap(),
            "{ids:?}"
        );
    }
}

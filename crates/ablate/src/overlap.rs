//! Eval/train overlap: which of an eval set's word 13-grams occur, exactly, in the training
//! documents (the GPT-3 contamination check's unit). Words are whitespace-separated and
//! compared exactly (case and punctuation kept); n-grams never span two documents. Each
//! n-gram is a 64-bit hash of its words (xxh3), so a false hit needs a hash collision.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use refinery_corpus::input::discover;
use refinery_corpus::readers::{self, Item, ReaderOptions};
use xxhash_rust::xxh3::xxh3_64;

use crate::Result;

/// Words per n-gram.
pub const N: usize = 13;

/// How the overlap is counted, as the results state it.
pub const UNIT: &str =
    "distinct word 13-grams (whitespace-separated, exact) of the eval text found in the variant's refined training documents";

/// Calls `f` with the hash of every word `N`-gram of `text`.
pub fn for_each_ngram(text: &str, mut f: impl FnMut(u64)) {
    let words: Vec<u64> = text
        .split_whitespace()
        .map(|w| xxh3_64(w.as_bytes()))
        .collect();
    let mut buf = [0u8; N * 8];
    for w in words.windows(N) {
        for (i, h) in w.iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&h.to_le_bytes());
        }
        f(xxh3_64(&buf));
    }
}

/// The distinct n-grams of a text.
pub fn ngrams(text: &str) -> HashSet<u64> {
    let mut s = HashSet::new();
    for_each_ngram(text, |h| {
        s.insert(h);
    });
    s
}

/// For each eval set (its n-grams), how many of them occur in the documents under `data`.
pub fn hits(data: &Path, sets: &[HashSet<u64>]) -> Result<Vec<u64>> {
    let mut found: Vec<HashSet<u64>> = vec![HashSet::new(); sets.len()];
    let bytes = Arc::new(AtomicU64::new(0));
    for file in discover(&[data.to_path_buf()])? {
        for item in readers::open(
            &file.path,
            &file.source,
            &ReaderOptions::default(),
            bytes.clone(),
        ) {
            if let Item::Doc(d) = item {
                for_each_ngram(&d.text, |h| {
                    for (set, f) in sets.iter().zip(found.iter_mut()) {
                        if set.contains(&h) {
                            f.insert(h);
                        }
                    }
                });
            }
        }
    }
    Ok(found.iter().map(|f| f.len() as u64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirteen_words_make_one_ngram() {
        let t12 = "a b c d e f g h i j k l";
        assert!(ngrams(t12).is_empty());
        let t13 = "a b c d e f g h i j k l m";
        assert_eq!(ngrams(t13).len(), 1);
        // Whitespace of any kind separates words; the words must match exactly.
        assert_eq!(ngrams("a  b\tc d e f g h i j k l\nm"), ngrams(t13));
        assert_ne!(ngrams("A b c d e f g h i j k l m"), ngrams(t13));
        // 15 words: 3 n-grams, distinct here.
        assert_eq!(ngrams("a b c d e f g h i j k l m n o").len(), 3);
    }

    #[test]
    fn hits_count_distinct_eval_ngrams_found_in_documents() {
        let dir = tempfile::tempdir().unwrap();
        let eval =
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        // The first document holds the first 13 words of the eval text; the second only the
        // last 12, which is no hit; n-grams across the boundary of two documents are no hits.
        let docs = [
            "intro one two three four five six seven eight nine ten eleven twelve thirteen outro",
            "two three four five six seven eight nine ten eleven twelve thirteen",
            "fourteen",
        ];
        let mut jsonl = String::new();
        for (i, d) in docs.iter().enumerate() {
            jsonl.push_str(&format!("{{\"id\":\"{i}\",\"text\":\"{d}\"}}\n"));
        }
        std::fs::write(dir.path().join("a.jsonl"), jsonl).unwrap();
        let sets = vec![
            ngrams(eval),
            ngrams("nothing of this is there at all in any one of them"),
        ];
        assert_eq!(sets[0].len(), 2);
        assert_eq!(hits(dir.path(), &sets).unwrap(), vec![1, 0]);
    }
}

//! Evaluates [`refinery_langid::detect`] (the built-in whatlang model), or a
//! fastText model with `--model`, on the whole lingua dev set: accuracy per
//! language and kind (sentences, word-pairs, single-words), overall, and
//! throughput.
//!
//! ```text
//! cargo run --release -p refinery-langid --example langid_eval [-- [--model MODEL] [PATH]]
//! ```
//!
//! PATH defaults to `$REFINERY_SHARED/data/langid/lingua-dev.tsv.gz`, or
//! `../shared/data/langid/lingua-dev.tsv.gz` from the workspace root. With a
//! fastText model, each line is predicted as fastText's `predict(text)` does
//! (top label); the model's `no` (Norwegian, in practice Bokmål) counts as
//! lingua's `nb`.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use refinery_langid::{codes, detect, FastText, DEFAULT_MAX_CHARS};

const KINDS: [&str; 3] = ["sentences", "word-pairs", "single-words"];

#[derive(Default, Clone, Copy)]
struct Count {
    ok: u64,
    n: u64,
}

impl Count {
    fn add(&mut self, hit: bool) {
        self.n += 1;
        self.ok += hit as u64;
    }
    fn pct(self) -> String {
        if self.n == 0 {
            "-".into()
        } else {
            format!("{:.1}", 100.0 * self.ok as f64 / self.n as f64)
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let model = match args.iter().position(|a| a == "--model") {
        Some(i) => {
            let p = args.get(i + 1).ok_or("--model needs a path")?.clone();
            args.drain(i..i + 2);
            Some(FastText::load(PathBuf::from(p))?)
        }
        None => None,
    };
    let path = match args.first() {
        Some(p) => PathBuf::from(p),
        None => {
            let shared = match std::env::var_os("REFINERY_SHARED") {
                Some(p) => PathBuf::from(p),
                None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
            };
            shared.join("data/langid/lingua-dev.tsv.gz")
        }
    };
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));

    let mut rows: Vec<(String, usize, String)> = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let mut parts = line.splitn(3, '\t');
        let (Some(lang), Some(kind), Some(text)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("malformed line: {line:?}").into());
        };
        let Some(k) = KINDS.iter().position(|&x| x == kind) else {
            return Err(format!("unknown kind {kind:?}").into());
        };
        rows.push((lang.to_string(), k, text.to_string()));
    }

    let supported: HashSet<&str> = match &model {
        None => whatlang::Lang::all()
            .iter()
            .map(|&l| codes::label(l))
            .collect(),
        Some(m) => m
            .labels()
            .iter()
            .map(|l| if l == "no" { "nb" } else { l.as_str() })
            .collect(),
    };
    let label = |text: &str| -> Option<&str> {
        match &model {
            None => detect(text, DEFAULT_MAX_CHARS).map(|(l, _)| l),
            Some(m) => m
                .predict(text, 1, 0.0)
                .first()
                .map(|&(l, _)| if l == "no" { "nb" } else { l }),
        }
    };
    let mut per_lang: BTreeMap<&str, [Count; 3]> = BTreeMap::new();
    let mut total = [Count::default(); 3];
    let mut total_sup = [Count::default(); 3];
    let mut chars = 0u64;
    let start = Instant::now();
    for (lang, kind, text) in &rows {
        let hit = label(text).is_some_and(|got| got == lang);
        per_lang.entry(lang.as_str()).or_default()[*kind].add(hit);
        total[*kind].add(hit);
        if supported.contains(lang.as_str()) {
            total_sup[*kind].add(hit);
        }
        chars += text.chars().count() as u64;
    }
    let secs = start.elapsed().as_secs_f64();

    println!(
        "{:<6} {:>9} {:>10} {:>10} {:>12}",
        "lang", "supported", "sentences", "word-pairs", "single-words"
    );
    for (lang, c) in &per_lang {
        let sup = if supported.contains(lang) {
            "yes"
        } else {
            "no"
        };
        println!(
            "{lang:<6} {sup:>9} {:>10} {:>10} {:>12}",
            c[0].pct(),
            c[1].pct(),
            c[2].pct()
        );
    }
    let sum = |cs: &[Count; 3]| {
        cs.iter().fold(Count::default(), |a, c| Count {
            ok: a.ok + c.ok,
            n: a.n + c.n,
        })
    };
    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>8}",
        "accuracy %", "sentences", "word-pairs", "single-words", "all"
    );
    for (name, t) in [
        ("all 75 languages", &total),
        ("model-supported languages", &total_sup),
    ] {
        println!(
            "{name:<28} {:>10} {:>10} {:>12} {:>8}",
            t[0].pct(),
            t[1].pct(),
            t[2].pct(),
            sum(t).pct()
        );
    }
    let n = rows.len() as f64;
    println!();
    println!(
        "{} docs, {} chars in {secs:.2} s: {:.0} docs/s, {:.1} M chars/s ({}, {} of the languages supported)",
        rows.len(),
        chars,
        n / secs,
        chars as f64 / secs / 1e6,
        match &model {
            None => format!("whatlang, max_chars {DEFAULT_MAX_CHARS}"),
            Some(_) => "fastText, whole line".to_string(),
        },
        per_lang.keys().filter(|l| supported.contains(*l)).count(),
    );
    Ok(())
}

//! MinHash-LSH quality against exact Jaccard similarity.
//!
//! A generated corpus (families of near-duplicates with edit rates spread
//! from 0 to `max_rate`, paragraphs sometimes shuffled) is compared pair by
//! pair: the exact Jaccard similarity J of the 5-gram shingle sets against
//! whether LSH makes the pair a candidate (shares a bucket in ≥ 1 band).
//!
//! Definition (as datatrove/NeMo evaluate an S-curve): with a lower bound
//! `lo` and an upper bound `hi` around the LSH threshold t = `(1/b)^(1/r)`,
//! * must-find: J ≥ hi; recall = found must-find pairs / must-find pairs;
//! * must-not-find: J ≤ lo; precision = found pairs that are not
//!   must-not-find / found pairs. Pairs in (lo, hi) count for neither
//!   side: the S-curve is not a step.
//!
//! `lo` and `hi` are where the preset's own S-curve crosses 5 % and 95 %:
//! FineWeb 14 × 8: 0.496 and 0.814; RefinedWeb 450 × 20: 0.634 and 0.778.
//! The fixed margin t ± 0.05 is printed too but not asserted: FineWeb's
//! curve is soft (P(J = t − 0.05) ≈ 0.44), so there the precision depends
//! on how many pairs the corpus has just below t (0.76 on this corpus).
//! Both tests also check that the candidate rate in each J bin matches the
//! theoretical `1 − (1 − J^r)^b` within sampling error: the LSH does what
//! the math says.

mod common;

use refinery_dedup::minhash::{jaccard, shingle_hashes, simplify, MinHasher, MinhashConfig};

struct Eval {
    precision: f64,
    recall: f64,
    must_find: usize,
    found: usize,
    false_positives: usize,
}

/// J where the S-curve crosses probability `p` (bisection).
fn crossing(config: &MinhashConfig, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if config.probability(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn evaluate(texts: &[String], config: &MinhashConfig, lo: f64, hi: f64) -> Eval {
    let mut hasher = MinHasher::new(config);
    let mut shingles = Vec::new();
    let mut bands = Vec::new();
    for t in texts {
        let mut s = Vec::new();
        shingle_hashes(&simplify(t), config.ngram, &mut s);
        shingles.push(s);
        let mut b = Vec::new();
        hasher.band_hashes(t, &mut b);
        bands.push(b);
    }
    let t = config.threshold();
    let mut pairs = Vec::new();
    let (mut must_find, mut found_must, mut found, mut fp) = (0, 0, 0, 0);
    let mut bins = [[0usize; 2]; 10];
    let mut expected = [0f64; 10];
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            let jac = jaccard(&shingles[i], &shingles[j]);
            let cand = bands[i].iter().zip(&bands[j]).any(|(a, b)| a == b);
            let bin = ((jac * 10.0) as usize).min(9);
            bins[bin][0] += 1;
            bins[bin][1] += cand as usize;
            expected[bin] += config.probability(jac);
            pairs.push((jac, cand));
            if jac >= hi {
                must_find += 1;
                found_must += cand as usize;
            }
            if cand {
                found += 1;
                if jac <= lo {
                    fp += 1;
                }
            }
        }
    }
    eprintln!(
        "{}x{} t={t:.3} lo={lo:.3} hi={hi:.3}: J bin / pairs / candidate rate / theory",
        config.bands, config.rows
    );
    for (k, [n, c]) in bins.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let (obs, exp) = (*c as f64 / *n as f64, expected[k] / *n as f64);
        eprintln!(
            "  [{:.1},{:.1}) {n:6} {obs:.3} {exp:.3}",
            k as f64 / 10.0,
            (k + 1) as f64 / 10.0,
        );
        // Candidates are independent-ish Bernoulli draws: 4 sigma + slack.
        let sigma = (exp * (1.0 - exp) / *n as f64).sqrt();
        assert!(
            (obs - exp).abs() <= 4.0 * sigma + 0.03,
            "bin {k}: candidate rate {obs:.3} vs theory {exp:.3} over {n} pairs"
        );
    }
    let at = |m: f64| {
        let mf: Vec<_> = pairs.iter().filter(|p| p.0 >= t + m).collect();
        let found: Vec<_> = pairs.iter().filter(|p| p.1).collect();
        let fp = found.iter().filter(|p| p.0 <= t - m).count();
        (
            (found.len() - fp) as f64 / found.len().max(1) as f64,
            mf.iter().filter(|p| p.1).count() as f64 / mf.len().max(1) as f64,
        )
    };
    let (p05, r05) = at(0.05);
    eprintln!("  at t ± 0.05: precision {p05:.3} recall {r05:.3}");
    Eval {
        precision: if found == 0 {
            1.0
        } else {
            (found - fp) as f64 / found as f64
        },
        recall: if must_find == 0 {
            1.0
        } else {
            found_must as f64 / must_find as f64
        },
        must_find,
        found,
        false_positives: fp,
    }
}

#[test]
fn fineweb_precision_and_recall_at_threshold() {
    // 60 families x (1 + 4 variants) = 300 docs of ~200 words: 44,850 pairs.
    let texts = common::corpus(42, 60, 4, 200, 0.12);
    let c = MinhashConfig::fineweb();
    let e = evaluate(&texts, &c, crossing(&c, 0.05), crossing(&c, 0.95));
    eprintln!(
        "fineweb: precision {:.3} recall {:.3} (must-find {}, found {}, false positives {})",
        e.precision, e.recall, e.must_find, e.found, e.false_positives
    );
    assert!(
        e.must_find >= 50,
        "corpus too easy: {} must-find pairs",
        e.must_find
    );
    assert!(e.precision >= 0.95, "precision {:.3}", e.precision);
    assert!(e.recall >= 0.95, "recall {:.3}", e.recall);
}

#[test]
fn refinedweb_precision_and_recall_at_threshold() {
    // 9,000 hashes per shingle: a smaller corpus keeps the debug test fast.
    let texts = common::corpus(7, 24, 4, 120, 0.08);
    let c = MinhashConfig::refinedweb();
    let e = evaluate(&texts, &c, crossing(&c, 0.05), crossing(&c, 0.95));
    eprintln!(
        "refinedweb 450x20: precision {:.3} recall {:.3} (must-find {}, found {}, false positives {})",
        e.precision, e.recall, e.must_find, e.found, e.false_positives
    );
    assert!(
        e.must_find >= 20,
        "corpus too easy: {} must-find pairs",
        e.must_find
    );
    assert!(e.precision >= 0.95, "precision {:.3}", e.precision);
    assert!(e.recall >= 0.95, "recall {:.3}", e.recall);
}

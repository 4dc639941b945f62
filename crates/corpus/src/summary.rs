//! Compact, mergeable summaries of documents for the stats: length
//! histograms, language counts, a language-score histogram and the top
//! domains. They are what `refinery report` plots.
//!
//! All of them are small whatever the corpus size (tens of numbers, at most
//! [`TOP_DOMAINS`] domains), add up across tasks, and load as empty from
//! `stats.json` files written before they existed (serde defaults).
//!
//! * [`LengthHistogram`]: document lengths in characters in logarithmic
//!   bins, four per octave. Bin 0 holds empty documents; bin `b ≥ 1` holds
//!   lengths `n` with `2^((b-1)/4) ≤ n < 2^(b/4)`, computed with integers
//!   (exact, the same on every machine).
//! * [`ScoreHistogram`]: `lang_score` in 20 bins of width 0.05 (a score of
//!   exactly 1 is in the last bin).
//! * [`TopCounts`]: the most frequent keys (domains) with their counts. Each
//!   task keeps its top [`TOP_DOMAINS`]; the merge sums them and keeps the
//!   top again. A listed count can be lower than the true count, by at most
//!   `error_bound` (the sum, over truncations, of the largest count that was
//!   cut); `other` counts the documents of the keys that were cut.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::Document;

/// Bins per doubling of the length.
pub const BINS_PER_OCTAVE: u32 = 4;
/// Bins of the language-score histogram.
pub const SCORE_BINS: usize = 20;
/// Domains kept per summary.
pub const TOP_DOMAINS: usize = 100;

/// Document lengths (characters) in logarithmic bins; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LengthHistogram(pub Vec<u64>);

impl LengthHistogram {
    /// The bin of a length: 0 for 0, else `floor(4·log2(n)) + 1`.
    pub fn bin(n: u64) -> usize {
        if n == 0 {
            return 0;
        }
        // Lengths beyond 2^31 share the last bins' arithmetic bound.
        let n = n.min(1 << 31) as u128;
        let m = 127 - n.leading_zeros(); // floor(log2 n)
        let n4 = n * n * n * n;
        // j = how many of 2^(m + 1/4), 2^(m + 2/4), 2^(m + 3/4) are ≤ n,
        // i.e. n^4 ≥ 2^(4m + j).
        let j = (1..BINS_PER_OCTAVE)
            .filter(|j| n4 >= 1u128 << (BINS_PER_OCTAVE * m + j))
            .count() as u32;
        (BINS_PER_OCTAVE * m + j + 1) as usize
    }

    /// The smallest length in bin `b` (`ceil(2^((b-1)/4))`; 0 for bin 0).
    pub fn lower_bound(b: usize) -> u64 {
        if b == 0 {
            return 0;
        }
        // Lengths are clamped at 2^31 (see `bin`): no bin lies beyond its bin.
        let b = b.min(Self::bin(1 << 31));
        // The smallest n whose bin is b lies in [2^m, 2^(m+1)], m = floor((b-1)/4):
        // binary search.
        let m = (b as u32 - 1) / BINS_PER_OCTAVE;
        let (mut lo, mut hi) = (1u64 << m, 1u64 << (m + 1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if Self::bin(mid) >= b {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    pub fn add(&mut self, len: u64) {
        let b = Self::bin(len);
        if self.0.len() <= b {
            self.0.resize(b + 1, 0);
        }
        self.0[b] += 1;
    }

    pub fn merge(&mut self, other: &LengthHistogram) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&c| c == 0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// `lang_score` in [`SCORE_BINS`] equal bins over [0, 1].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScoreHistogram(pub Vec<u64>);

impl ScoreHistogram {
    pub fn bin(score: f64) -> usize {
        let b = (score.clamp(0.0, 1.0) * SCORE_BINS as f64).floor() as usize;
        b.min(SCORE_BINS - 1)
    }

    pub fn add(&mut self, score: f64) {
        if !score.is_finite() {
            return;
        }
        if self.0.len() < SCORE_BINS {
            self.0.resize(SCORE_BINS, 0);
        }
        self.0[Self::bin(score)] += 1;
    }

    pub fn merge(&mut self, other: &ScoreHistogram) {
        if other.0.is_empty() {
            return;
        }
        if self.0.len() < SCORE_BINS {
            self.0.resize(SCORE_BINS, 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&c| c == 0)
    }
}

/// The most frequent keys with their counts; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopCounts {
    pub top: BTreeMap<String, u64>,
    /// Documents of keys that are not listed.
    pub other: u64,
    /// A listed count may be this much below the true count.
    pub error_bound: u64,
}

impl TopCounts {
    /// Keeps the `k` largest counts (ties: the smaller key), moving the rest
    /// into `other` and raising `error_bound` by the largest count cut.
    fn from_counts(
        counts: impl IntoIterator<Item = (String, u64)>,
        k: usize,
        base: (u64, u64),
    ) -> Self {
        let mut all: Vec<(String, u64)> = counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let cut = all.get(k).map_or(0, |(_, n)| *n);
        let other: u64 = all.iter().skip(k).map(|(_, n)| n).sum();
        all.truncate(k);
        TopCounts {
            top: all.into_iter().collect(),
            other: base.0 + other,
            error_bound: base.1 + cut,
        }
    }

    pub fn merge(&mut self, other: &TopCounts) {
        let mut sum = std::mem::take(&mut self.top);
        for (k, v) in &other.top {
            *sum.entry(k.clone()).or_default() += v;
        }
        *self = TopCounts::from_counts(
            sum,
            TOP_DOMAINS,
            (
                self.other + other.other,
                self.error_bound + other.error_bound,
            ),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.top.is_empty() && self.other == 0
    }

    /// Sorted by count (descending), then key.
    pub fn sorted(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.top.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v
    }
}

/// What a writer wrote, summarised: lengths, languages, scores, domains.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContentStats {
    /// Text lengths in characters.
    #[serde(skip_serializing_if = "LengthHistogram::is_empty")]
    pub lengths: LengthHistogram,
    /// Documents per `metadata.lang` (documents without one are not counted).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub langs: BTreeMap<String, u64>,
    /// `metadata.lang_score` of the documents that have one.
    #[serde(skip_serializing_if = "ScoreHistogram::is_empty")]
    pub lang_score: ScoreHistogram,
    /// Host names of `metadata.url` (without `www.`).
    #[serde(skip_serializing_if = "TopCounts::is_empty")]
    pub domains: TopCounts,
}

impl ContentStats {
    pub fn merge(&mut self, o: &ContentStats) {
        self.lengths.merge(&o.lengths);
        for (k, v) in &o.langs {
            *self.langs.entry(k.clone()).or_default() += v;
        }
        self.lang_score.merge(&o.lang_score);
        self.domains.merge(&o.domains);
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
            && self.langs.is_empty()
            && self.lang_score.is_empty()
            && self.domains.is_empty()
    }
}

/// Builds a [`ContentStats`] document by document (exact domain counts
/// until [`ContentCounter::finish`] keeps the top ones).
#[derive(Debug, Default)]
pub struct ContentCounter {
    stats: ContentStats,
    domains: HashMap<String, u64>,
}

impl ContentCounter {
    /// Counts one document whose text has `chars` characters.
    pub fn add(&mut self, doc: &Document, chars: u64) {
        self.stats.lengths.add(chars);
        if let Some(lang) = &doc.metadata.lang {
            match self.stats.langs.get_mut(lang.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.stats.langs.insert(lang.clone(), 1);
                }
            }
        }
        if let Some(s) = doc.metadata.lang_score {
            self.stats.lang_score.add(s);
        }
        if let Some(host) = doc.metadata.url.as_deref().and_then(domain) {
            match self.domains.get_mut(host) {
                Some(n) => *n += 1,
                None => {
                    self.domains.insert(host.to_string(), 1);
                }
            }
        }
    }

    pub fn finish(self) -> ContentStats {
        let mut stats = self.stats;
        stats.domains = TopCounts::from_counts(self.domains, TOP_DOMAINS, (0, 0));
        stats
    }
}

/// The host of a URL, lowercase ASCII expected, without a `www.` prefix,
/// user info or port: `https://www.Example.com:8080/x` → `Example.com`.
/// `None` when there is no `scheme://host`.
pub fn domain(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut host = &rest[..end];
    if let Some(at) = host.rfind('@') {
        host = &host[at + 1..];
    }
    if host.starts_with('[') {
        if let Some(close) = host.find(']') {
            host = &host[..=close];
        }
    } else if let Some(colon) = host.find(':') {
        host = &host[..colon];
    }
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bins_are_exact_quarter_octaves() {
        // Reference: floor(4·log2(n)) + 1, checked with f64 away from the
        // bin edges, and exactly at the edges 2^(k/4).
        for n in 1..5000u64 {
            let f = 4.0 * (n as f64).log2();
            if (f - f.round()).abs() > 1e-9 {
                assert_eq!(LengthHistogram::bin(n), f.floor() as usize + 1, "n={n}");
            }
        }
        assert_eq!(LengthHistogram::bin(0), 0);
        assert_eq!(LengthHistogram::bin(1), 1);
        assert_eq!(LengthHistogram::bin(2), 5);
        assert_eq!(LengthHistogram::bin(16), 17);
        assert_eq!(LengthHistogram::bin(1 << 20), 81);
        // ceil(2^(k/4)) starts bin k + 1: 2^(1/4) = 1.189 → 2 is in bin 5, not 2.
        for b in 1..100 {
            let lo = LengthHistogram::lower_bound(b);
            assert!(LengthHistogram::bin(lo) >= b, "b={b} lo={lo}");
            if lo > 1 {
                assert!(LengthHistogram::bin(lo - 1) < b, "b={b} lo={lo}");
            }
        }
        assert_eq!(LengthHistogram::lower_bound(41), 1024);
        assert_eq!(LengthHistogram::lower_bound(42), 1218); // ceil(1024 · 2^0.25) = ceil(1217.75)
        assert_eq!(
            LengthHistogram::lower_bound(1000),
            1 << 31,
            "bins beyond the clamp end"
        );
    }

    #[test]
    fn histograms_merge_and_serialize_compactly() {
        let mut a = LengthHistogram::default();
        a.add(0);
        a.add(100);
        let mut b = LengthHistogram::default();
        b.add(5000);
        a.merge(&b);
        assert_eq!(a.total(), 3);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.starts_with("[1,0,"), "{json}");
        let mut s = ScoreHistogram::default();
        for x in [0.0, 0.049, 0.05, 0.999, 1.0, f64::NAN] {
            s.add(x);
        }
        assert_eq!((s.0[0], s.0[1], s.0[19]), (2, 1, 2));
        assert_eq!(s.0.iter().sum::<u64>(), 5);
    }

    #[test]
    fn top_counts_keep_the_largest_and_bound_the_error() {
        let mut t1 = TopCounts::from_counts(
            (0..150).map(|i| (format!("d{i:03}"), 200 - i as u64)),
            TOP_DOMAINS,
            (0, 0),
        );
        assert_eq!(t1.top.len(), 100);
        assert_eq!(t1.top["d000"], 200);
        assert_eq!(t1.error_bound, 100, "the largest count cut: d100 = 100");
        assert_eq!(t1.other, (51..=100).sum::<u64>());
        let t2 = TopCounts::from_counts([("d149".to_string(), 500)], TOP_DOMAINS, (0, 0));
        t1.merge(&t2);
        // d149 was cut from t1 (true total 551) but listed from t2: low by
        // 51 ≤ error_bound.
        assert_eq!(t1.top["d149"], 500);
        assert!(551 - 500 <= t1.error_bound);
        assert_eq!(t1.sorted()[0], ("d149", 500));
    }

    #[test]
    fn domains_of_urls() {
        assert_eq!(domain("https://www.example.com/a?b"), Some("example.com"));
        assert_eq!(domain("http://user@host.org:8080"), Some("host.org"));
        assert_eq!(domain("http://[::1]:80/x"), Some("[::1]"));
        assert_eq!(domain("example.com/x"), None);
        assert_eq!(domain("https:///path"), None);
    }
}

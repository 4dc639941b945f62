//! Text → normalized words → word n-gram shingles → MinHash signature →
//! one 64-bit hash per band.
//!
//! Everything here is a pure function of the text and the
//! [`MinhashConfig`], so signatures are identical on every machine and for
//! every task/worker count.

use xxhash_rust::xxh3::xxh3_64;

use super::MinhashConfig;

/// The Mersenne prime 2^61 − 1 of the universal hash family.
pub const MERSENNE_P: u64 = (1 << 61) - 1;

/// Normalizes text for shingling, following datatrove's `simplify_text`
/// (default `TextNormConfig`) char by char:
///
/// 1. lowercase (`char::to_lowercase`, not locale-aware);
/// 2. every run of numeric chars, optionally followed by `.` and more
///    numeric chars (datatrove: `\d+(\.\d+)?`), becomes `0`
///    (`3.14` → `0`, `1,000` → `0 0`);
/// 3. combining diacritical marks U+0300–U+036F are removed (datatrove
///    strips every `Mn` char after NFD; precomposed letters such as `é`
///    are kept here: no Unicode-normalization tables are linked);
/// 4. every other char that is neither alphanumeric nor whitespace
///    (punctuation, symbols, emoji, control chars) becomes a space
///    (datatrove uses a fixed list of ~100 punctuation chars);
/// 5. whitespace runs become one ASCII space; both ends are trimmed.
///
/// Words are then the space-separated tokens of the result (datatrove runs
/// NLTK's word tokenizer, which on punctuation-free text splits the same
/// way except for a few contractions such as `cannot`).
pub fn simplify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut chars = text.chars().flat_map(char::to_lowercase).peekable();
    while let Some(ch) = chars.next() {
        let emit = if ch.is_numeric() {
            while chars.peek().is_some_and(|c| c.is_numeric()) {
                chars.next();
            }
            // `\.\d+`: a dot followed by at least one digit. Needs a
            // two-char lookahead, so clone the (cheap) iterator.
            let mut ahead = chars.clone();
            if ahead.next() == Some('.') && ahead.next().is_some_and(|c| c.is_numeric()) {
                chars.next();
                while chars.peek().is_some_and(|c| c.is_numeric()) {
                    chars.next();
                }
            }
            Some('0')
        } else if ('\u{300}'..='\u{36f}').contains(&ch) {
            None
        } else if ch.is_alphanumeric() {
            Some(ch)
        } else {
            // Whitespace and punctuation alike separate words.
            pending_space = !out.is_empty();
            None
        };
        if let Some(c) = emit {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Hashes of the word `n`-grams of `simplified` (output of [`simplify`])
/// into `out` (cleared first): xxh3-64 of the UTF-8 bytes of the `n` words
/// joined by single spaces. Texts with fewer than `n` words have no
/// shingles (as in datatrove). `out` is sorted and deduplicated: it is the
/// shingle *set*.
pub fn shingle_hashes(simplified: &str, n: usize, out: &mut Vec<u64>) {
    out.clear();
    if n == 0 || simplified.is_empty() {
        return;
    }
    // Byte offsets of word starts; words are separated by exactly one space.
    let bytes = simplified.as_bytes();
    let mut starts = Vec::with_capacity(bytes.len() / 4 + 1);
    starts.push(0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            starts.push(i + 1);
        }
    }
    if starts.len() < n {
        return;
    }
    for w in 0..=starts.len() - n {
        let begin = starts[w];
        let end = if w + n < starts.len() {
            starts[w + n] - 1
        } else {
            bytes.len()
        };
        out.push(xxh3_64(&bytes[begin..end]));
    }
    out.sort_unstable();
    out.dedup();
}

/// `x mod p` for the Mersenne prime p = 2^61 − 1, for any `x < 2^125`.
#[inline]
fn mod_p(x: u128) -> u64 {
    let folded = (x as u64 & MERSENNE_P) as u128 + (x >> 61);
    let r = (folded as u64 & MERSENNE_P) + (folded >> 61) as u64;
    if r >= MERSENNE_P {
        r - MERSENNE_P
    } else {
        r
    }
}

const LO32: u64 = 0xFFFF_FFFF;
const LO29: u64 = (1 << 29) - 1;

/// Permutations per block of the signature loop: the block's `a`, `b` and
/// signature values (16 KiB) stay in the L1 cache over all shingles.
pub const LANE_BLOCK: usize = 512;

/// `sig[j] = min(sig[j], (a_j·x + b_j) mod p)` for every lane `j` and every
/// shingle `x` of `xs` (given as `(x mod 2^32, x >> 32)`, `x < p`), exact.
///
/// With `a = a_hi·2^32 + a_lo` and `x = x_hi·2^32 + x_lo` (`a_hi, x_hi <
/// 2^29`), `a·x = p11·2^64 + mid·2^32 + p00` with `p11 = a_hi·x_hi`, `mid =
/// a_hi·x_lo + a_lo·x_hi < 2^62`, `p00 = a_lo·x_lo`: four 32×32→64-bit
/// products, which vector units have (`vpmuludq`) and 64×64→128 has not.
/// Mod p = 2^61 − 1, 2^61 ≡ 1 and 2^64 ≡ 8, so
/// `a·x + b ≡ 8·p11 + (mid >> 29) + (mid mod 2^29)·2^32 + (p00 mod 2^61) +
/// (p00 >> 61) + b`, a sum of terms below 2^61 (and one below 2^33) that
/// cannot overflow 64 bits; one fold and one conditional subtraction give
/// the canonical residue, the same value as [`mod_p`] of the 128-bit
/// product (checked against it in the tests).
#[inline(always)]
fn min_lanes_generic(sig: &mut [u64], a_lo: &[u32], a_hi: &[u32], b: &[u64], xs: &[(u64, u64)]) {
    let n = sig.len().min(a_lo.len()).min(a_hi.len()).min(b.len());
    let (sig, a_lo, a_hi, b) = (&mut sig[..n], &a_lo[..n], &a_hi[..n], &b[..n]);
    // Four shingles per pass over the lanes: each lane's `a`, `b` and
    // minimum are loaded and stored once for four residues.
    let mut quads = xs.chunks_exact(4);
    for q in &mut quads {
        let x = [q[0], q[1], q[2], q[3]].map(|(lo, hi)| (lo & LO32, hi & LO32));
        for (((s, &al), &ah), &bj) in sig.iter_mut().zip(a_lo).zip(a_hi).zip(b) {
            let (al, ah) = (u64::from(al), u64::from(ah));
            let mut m = *s;
            for &(x_lo, x_hi) in &x {
                m = m.min(residue(al, ah, bj, x_lo, x_hi));
            }
            *s = m;
        }
    }
    for &(x_lo, x_hi) in quads.remainder() {
        let (x_lo, x_hi) = (x_lo & LO32, x_hi & LO32);
        for (((s, &al), &ah), &bj) in sig.iter_mut().zip(a_lo).zip(a_hi).zip(b) {
            *s = (*s).min(residue(u64::from(al), u64::from(ah), bj, x_lo, x_hi));
        }
    }
}

/// `(a·x + b) mod p` from the 32-bit halves of `a` and `x` (see
/// [`min_lanes_generic`]).
#[inline(always)]
fn residue(al: u64, ah: u64, b: u64, x_lo: u64, x_hi: u64) -> u64 {
    let p00 = al * x_lo;
    let mid = al * x_hi + ah * x_lo;
    let p11 = ah * x_hi;
    let t = (p11 << 3) + (mid >> 29) + ((mid & LO29) << 32) + (p00 & MERSENNE_P) + (p00 >> 61) + b;
    let r = (t & MERSENNE_P) + (t >> 61);
    // r < 2p: subtract p once when r ≥ p (the wrapped difference is larger
    // than r exactly when r < p).
    r.min(r.wrapping_sub(MERSENNE_P))
}

/// The widest vector instruction set of this CPU for [`min_lanes_generic`],
/// detected once per [`MinHasher`]. Every level computes the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    /// Whatever the compile target allows (SSE2 on x86-64).
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Baseline
    }

    fn min_lanes(self, sig: &mut [u64], a_lo: &[u32], a_hi: &[u32], b: &[u64], xs: &[(u64, u64)]) {
        match self {
            Simd::Baseline => min_lanes_generic(sig, a_lo, a_hi, b, xs),
            // SAFETY: `detect` returned these levels only after
            // `is_x86_feature_detected!` confirmed the CPU features that
            // the functions are compiled for.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { min_lanes_avx2(sig, a_lo, a_hi, b, xs) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { min_lanes_avx512(sig, a_lo, a_hi, b, xs) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_lanes_avx2(
    sig: &mut [u64],
    a_lo: &[u32],
    a_hi: &[u32],
    b: &[u64],
    xs: &[(u64, u64)],
) {
    min_lanes_generic(sig, a_lo, a_hi, b, xs);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn min_lanes_avx512(
    sig: &mut [u64],
    a_lo: &[u32],
    a_hi: &[u32],
    b: &[u64],
    xs: &[(u64, u64)],
) {
    min_lanes_generic(sig, a_lo, a_hi, b, xs);
}

/// SplitMix64: the seeded generator of the permutation parameters.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_14EB);
    z ^ (z >> 31)
}

/// Computes MinHash signatures and band hashes.
///
/// Permutation `i` is `h ↦ (a_i·h + b_i) mod p` with p = 2^61 − 1, exact
/// 128-bit arithmetic (datatrove computes `a·h + b` in `uint64` and lets it
/// wrap before the `mod`), `a_i ∈ [1, p)` and `b_i ∈ [0, p)` drawn from
/// SplitMix64 seeded with `config.seed` by rejection sampling. The band
/// hash of band `j` is xxh3-64 over the little-endian bytes of signature
/// values `j·rows .. (j+1)·rows`: two documents share a bucket in band `j`
/// exactly when those `rows` minimums agree (up to a 2^-64 collision).
///
/// The signature loop is [`min_lanes`]: the same exact values, computed with
/// 32×32→64-bit multiplies only, so that it runs over 4 (AVX2) or 8
/// (AVX-512) permutations per instruction, in blocks of [`LANE_BLOCK`]
/// permutations that stay in the L1 cache while every shingle goes by.
#[derive(Clone, Debug)]
pub struct MinHasher {
    ngram: usize,
    bands: usize,
    rows: usize,
    /// Low and high 32 bits of every `a_i` (`a_hi < 2^29`).
    a_lo: Vec<u32>,
    a_hi: Vec<u32>,
    b: Vec<u64>,
    shingles: Vec<u64>,
    /// `mod_p` of every shingle hash, split as (low 32, high 29 bits).
    xs: Vec<(u64, u64)>,
    sig: Vec<u64>,
    band_bytes: Vec<u8>,
    simd: Simd,
}

impl MinHasher {
    pub fn new(config: &MinhashConfig) -> Self {
        let k = config.bands * config.rows;
        let mut state = config.seed;
        let mut draw = |lo: u64| loop {
            // 61 random bits, rejected outside [lo, p).
            let v = splitmix64(&mut state) >> 3;
            if v >= lo && v < MERSENNE_P {
                return v;
            }
        };
        let mut a_lo = Vec::with_capacity(k);
        let mut a_hi = Vec::with_capacity(k);
        let mut b = Vec::with_capacity(k);
        for _ in 0..k {
            let a = draw(1);
            a_lo.push(a as u32);
            a_hi.push((a >> 32) as u32);
            b.push(draw(0));
        }
        MinHasher {
            ngram: config.ngram,
            bands: config.bands,
            rows: config.rows,
            a_lo,
            a_hi,
            b,
            shingles: Vec::new(),
            xs: Vec::new(),
            sig: vec![0; k],
            band_bytes: Vec::with_capacity(config.rows * 8),
            simd: Simd::detect(),
        }
    }

    /// The MinHash signature (`bands·rows` values) of `text`, or `None`
    /// when it has fewer than `ngram` words after [`simplify`].
    pub fn signature(&mut self, text: &str) -> Option<&[u64]> {
        let simplified = simplify(text);
        shingle_hashes(&simplified, self.ngram, &mut self.shingles);
        if self.shingles.is_empty() {
            return None;
        }
        self.xs.clear();
        self.xs.extend(self.shingles.iter().map(|&h| {
            let x = mod_p(h as u128);
            (x & LO32, x >> 32)
        }));
        self.sig.fill(u64::MAX);
        let chunks = self
            .sig
            .chunks_mut(LANE_BLOCK)
            .zip(self.a_lo.chunks(LANE_BLOCK))
            .zip(self.a_hi.chunks(LANE_BLOCK))
            .zip(self.b.chunks(LANE_BLOCK));
        for (((sig, a_lo), a_hi), b) in chunks {
            self.simd.min_lanes(sig, a_lo, a_hi, b, &self.xs);
        }
        Some(&self.sig)
    }

    /// One hash per band into `out` (cleared first); false (and `out`
    /// empty) when the text has no shingles.
    pub fn band_hashes(&mut self, text: &str, out: &mut Vec<u64>) -> bool {
        out.clear();
        if self.signature(text).is_none() {
            return false;
        }
        for band in self.sig.chunks_exact(self.rows).take(self.bands) {
            self.band_bytes.clear();
            for v in band {
                self.band_bytes.extend_from_slice(&v.to_le_bytes());
            }
            out.push(xxh3_64(&self.band_bytes));
        }
        true
    }
}

/// Exact Jaccard similarity of two shingle sets (sorted, deduplicated, as
/// returned by [`shingle_hashes`]); 0 when both are empty.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_follows_datatrove_rules() {
        assert_eq!(simplify("  Hello,   WORLD!\n\tBye."), "hello world bye");
        assert_eq!(simplify("pi is 3.14, not 3."), "pi is 0 not 0");
        assert_eq!(simplify("1,000 and 2024-05-01"), "0 0 and 0 0 0");
        assert_eq!(simplify("e-mail don't"), "e mail don t");
        assert_eq!(simplify("cafe\u{301} café"), "cafe café");
        assert_eq!(simplify("日本語、テスト。"), "日本語 テスト");
        assert_eq!(simplify("?!"), "");
        assert_eq!(simplify(""), "");
        assert_eq!(simplify("x²"), "x0");
    }

    #[test]
    fn shingles_are_word_ngrams() {
        let mut out = Vec::new();
        shingle_hashes("a b c d", 2, &mut out);
        let mut want = vec![xxh3_64(b"a b"), xxh3_64(b"b c"), xxh3_64(b"c d")];
        want.sort_unstable();
        assert_eq!(out, want);
        shingle_hashes("a b c d", 4, &mut out);
        assert_eq!(out, vec![xxh3_64(b"a b c d")]);
        shingle_hashes("a b c d", 5, &mut out);
        assert!(out.is_empty());
        shingle_hashes("a b a b a", 2, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn mod_p_is_exact() {
        for x in [
            0u128,
            1,
            MERSENNE_P as u128 - 1,
            MERSENNE_P as u128,
            u64::MAX as u128,
        ] {
            assert_eq!(mod_p(x) as u128, x % MERSENNE_P as u128);
        }
        let big = (MERSENNE_P as u128 - 1) * (MERSENNE_P as u128 - 1) + MERSENNE_P as u128 - 1;
        assert_eq!(mod_p(big) as u128, big % MERSENNE_P as u128);
    }

    /// Every SIMD level available on this CPU gives exactly the 128-bit
    /// `mod_p` values, on random and on extreme inputs.
    #[test]
    fn lane_kernel_is_exact_mod_p() {
        let mut state = 99u64;
        let mut a: Vec<u64> = (0..LANE_BLOCK + 37)
            .map(|_| (splitmix64(&mut state) >> 3) % (MERSENNE_P - 1) + 1)
            .collect();
        let mut b: Vec<u64> = (0..a.len())
            .map(|_| (splitmix64(&mut state) >> 3) % MERSENNE_P)
            .collect();
        a[..4].copy_from_slice(&[1, MERSENNE_P - 1, MERSENNE_P - 1, (1 << 32) - 1]);
        b[..4].copy_from_slice(&[0, MERSENNE_P - 1, 0, MERSENNE_P - 1]);
        let mut xs: Vec<u64> = (0..200)
            .map(|_| mod_p(splitmix64(&mut state) as u128))
            .collect();
        xs.extend([0, 1, MERSENNE_P - 1, (1 << 32) - 1, 1 << 32]);
        let a_lo: Vec<u32> = a.iter().map(|&v| v as u32).collect();
        let a_hi: Vec<u32> = a.iter().map(|&v| (v >> 32) as u32).collect();
        let split: Vec<(u64, u64)> = xs.iter().map(|&x| (x & LO32, x >> 32)).collect();
        let mut levels = vec![Simd::Baseline, Simd::detect()];
        levels.dedup();
        for level in levels {
            // One shingle at a time: every single value, not only the minimum.
            for (&x, &xsplit) in xs.iter().zip(&split) {
                let mut sig = vec![u64::MAX; a.len()];
                level.min_lanes(&mut sig, &a_lo, &a_hi, &b, &[xsplit]);
                for j in 0..a.len() {
                    let want = mod_p(a[j] as u128 * x as u128 + b[j] as u128);
                    assert_eq!(sig[j], want, "{level:?} a={} b={} x={x}", a[j], b[j]);
                }
            }
            let mut sig = vec![u64::MAX; a.len()];
            level.min_lanes(&mut sig, &a_lo, &a_hi, &b, &split);
            for j in 0..a.len() {
                let want = xs
                    .iter()
                    .map(|&x| mod_p(a[j] as u128 * x as u128 + b[j] as u128))
                    .min()
                    .unwrap();
                assert_eq!(sig[j], want, "{level:?} lane {j}");
            }
        }
    }

    /// The blocked, vectorized signature equals the straightforward
    /// definition (every shingle through every permutation, 128-bit
    /// `mod_p`) at the RefinedWeb preset's 9,000 hashes.
    #[test]
    fn signature_matches_scalar_definition() {
        let cfg = MinhashConfig::refinedweb();
        let mut h = MinHasher::new(&cfg);
        let text: String = (0..300)
            .map(|i| format!("w{} ", (i * 7919) % 257))
            .collect();
        let got = h.signature(&text).unwrap().to_vec();
        let mut shingles = Vec::new();
        shingle_hashes(&simplify(&text), cfg.ngram, &mut shingles);
        let a: Vec<u64> = h
            .a_lo
            .iter()
            .zip(&h.a_hi)
            .map(|(&lo, &hi)| u64::from(lo) | u64::from(hi) << 32)
            .collect();
        let mut want = vec![u64::MAX; cfg.bands * cfg.rows];
        for &s in &shingles {
            let x = mod_p(s as u128) as u128;
            for ((w, &a), &b) in want.iter_mut().zip(&a).zip(&h.b) {
                *w = (*w).min(mod_p(a as u128 * x + b as u128));
            }
        }
        assert_eq!(got.len(), 9000);
        assert_eq!(got, want);
    }

    #[test]
    fn signatures_are_deterministic_and_estimate_jaccard() {
        let cfg = MinhashConfig {
            ngram: 2,
            bands: 64,
            rows: 4,
            seed: 7,
        };
        let mut h1 = MinHasher::new(&cfg);
        let mut h2 = MinHasher::new(&cfg);
        let text_a: String = (0..400).map(|i| format!("w{i} ")).collect();
        let text_b: String = (0..400)
            .map(|i| format!("w{} ", if i % 10 == 0 { 9999 + i } else { i }))
            .collect();
        let sa = h1.signature(&text_a).unwrap().to_vec();
        assert_eq!(sa, h2.signature(&text_a).unwrap().to_vec());
        let sb = h1.signature(&text_b).unwrap().to_vec();
        let est = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        shingle_hashes(&simplify(&text_a), 2, &mut a);
        shingle_hashes(&simplify(&text_b), 2, &mut b);
        let j = jaccard(&a, &b);
        assert!((est - j).abs() < 0.1, "estimate {est} vs exact {j}");
        assert!(h1.signature("too short").is_some());
        assert!(h1.signature("short").is_none());
        let mut bands = Vec::new();
        assert!(h1.band_hashes(&text_a, &mut bands));
        assert_eq!(bands.len(), 64);
    }
}

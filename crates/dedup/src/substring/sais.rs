//! Suffix array by induced sorting (SA-IS, Nong, Zhang & Chan 2009) over an
//! integer alphabet, in pure Rust with 32-bit indices.
//!
//! A port of the AtCoder Library's `sa_is` (CC0). The alphabet is
//! `0..=upper`, so a shard can give every document its own separator symbol
//! (`upper` grows with the document count). Peak memory is about
//! `4n` (text, the caller's) + `4n` (the array) + `n` (types) + `4n` (LMS map)
//! + `≈ 4n` (LMS lists) + the recursion on at most `n/2` symbols, i.e.
//!   about 17–21 bytes per symbol including the text.

const NONE: u32 = u32::MAX;

/// The suffix array of `s`, whose symbols are all `<= upper`.
///
/// `s.len()` must be below `u32::MAX` (the caller bounds shard sizes).
pub fn suffix_array(s: &[u32], upper: u32) -> Vec<u32> {
    debug_assert!(s.len() < NONE as usize);
    sa_is(s, upper as usize)
}

fn sa_naive(s: &[u32]) -> Vec<u32> {
    let mut sa: Vec<u32> = (0..s.len() as u32).collect();
    sa.sort_unstable_by(|&a, &b| s[a as usize..].cmp(&s[b as usize..]));
    sa
}

fn sa_is(s: &[u32], upper: usize) -> Vec<u32> {
    let n = s.len();
    match n {
        0 => return Vec::new(),
        1 => return vec![0],
        2 => return if s[0] < s[1] { vec![0, 1] } else { vec![1, 0] },
        _ if n < 40 => return sa_naive(s),
        _ => {}
    }
    let mut sa = vec![NONE; n];
    // ls[i]: suffix i is S-type (smaller than suffix i+1).
    let mut ls = vec![false; n];
    for i in (0..n - 1).rev() {
        ls[i] = if s[i] == s[i + 1] {
            ls[i + 1]
        } else {
            s[i] < s[i + 1]
        };
    }
    // Bucket starts: sum_l[c] where the L-type suffixes of c start,
    // sum_s[c] where the S-type ones start.
    let mut sum_l = vec![0u32; upper + 2];
    let mut sum_s = vec![0u32; upper + 2];
    for i in 0..n {
        if !ls[i] {
            sum_s[s[i] as usize] += 1;
        } else {
            sum_l[s[i] as usize + 1] += 1;
        }
    }
    for i in 0..=upper {
        sum_s[i] += sum_l[i];
        if i < upper {
            sum_l[i + 1] += sum_s[i];
        }
    }

    let induce = |sa: &mut [u32], lms: &[u32]| {
        sa.fill(NONE);
        let mut buf = sum_s.clone();
        for &d in lms {
            let d = d as usize;
            if d == n {
                continue;
            }
            let c = s[d] as usize;
            sa[buf[c] as usize] = d as u32;
            buf[c] += 1;
        }
        buf.copy_from_slice(&sum_l);
        let c = s[n - 1] as usize;
        sa[buf[c] as usize] = (n - 1) as u32;
        buf[c] += 1;
        for i in 0..n {
            let v = sa[i];
            if v != NONE && v >= 1 && !ls[v as usize - 1] {
                let c = s[v as usize - 1] as usize;
                sa[buf[c] as usize] = v - 1;
                buf[c] += 1;
            }
        }
        buf.copy_from_slice(&sum_l);
        for i in (0..n).rev() {
            let v = sa[i];
            if v != NONE && v >= 1 && ls[v as usize - 1] {
                let c = s[v as usize - 1] as usize + 1;
                buf[c] -= 1;
                sa[buf[c] as usize] = v - 1;
            }
        }
    };

    let mut lms_map = vec![NONE; n + 1];
    let mut lms: Vec<u32> = Vec::new();
    for i in 1..n {
        if !ls[i - 1] && ls[i] {
            lms_map[i] = lms.len() as u32;
            lms.push(i as u32);
        }
    }
    let m = lms.len();
    induce(&mut sa, &lms);

    if m > 0 {
        let mut sorted_lms: Vec<u32> = Vec::with_capacity(m);
        for &v in &sa {
            if v != NONE && lms_map[v as usize] != NONE {
                sorted_lms.push(v);
            }
        }
        let mut rec_s = vec![0u32; m];
        let mut rec_upper = 0u32;
        rec_s[lms_map[sorted_lms[0] as usize] as usize] = 0;
        for i in 1..m {
            let mut l = sorted_lms[i - 1] as usize;
            let mut r = sorted_lms[i] as usize;
            let next = |x: usize| {
                let k = lms_map[x] as usize + 1;
                if k < m {
                    lms[k] as usize
                } else {
                    n
                }
            };
            let (end_l, end_r) = (next(l), next(r));
            let mut same = true;
            if end_l - l != end_r - r {
                same = false;
            } else {
                while l < end_l {
                    if s[l] != s[r] {
                        break;
                    }
                    l += 1;
                    r += 1;
                }
                // The last LMS substring runs into the virtual sentinel: unique.
                if l == n || r == n || s[l] != s[r] {
                    same = false;
                }
            }
            if !same {
                rec_upper += 1;
            }
            rec_s[lms_map[sorted_lms[i] as usize] as usize] = rec_upper;
        }
        drop(lms_map);
        let rec_sa = sa_is(&rec_s, rec_upper as usize);
        drop(rec_s);
        for (slot, &r) in sorted_lms.iter_mut().zip(&rec_sa) {
            *slot = lms[r as usize];
        }
        drop(rec_sa);
        induce(&mut sa, &sorted_lms);
    }
    sa
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn matches_naive_sort_on_random_and_repetitive_inputs() {
        let mut st = 7u64;
        for case in 0..400 {
            let n = (lcg(&mut st) % 300) as usize;
            let upper = [1u64, 2, 3, 25, 300][case % 5];
            let mut s: Vec<u32> = (0..n)
                .map(|_| (lcg(&mut st) % (upper + 1)) as u32)
                .collect();
            if case % 7 == 0 {
                // Periodic text: deep recursion.
                let p = 1 + (lcg(&mut st) % 5) as usize;
                for i in p..n {
                    s[i] = s[i - p];
                }
            }
            assert_eq!(
                suffix_array(&s, upper as u32),
                sa_naive(&s),
                "case {case}: {s:?}"
            );
        }
        assert_eq!(
            suffix_array(&[0; 100], 0),
            (0..100).rev().collect::<Vec<u32>>()
        );
        assert!(suffix_array(&[], 0).is_empty());
    }
}

//! Suffix arrays with 32-bit indices through libsais (Ilya Grebnov's SA-IS,
//! Apache-2.0), built from the C source bundled in the `libsais-sys` crate
//! with `cc` (no OpenMP, no network).
//!
//! It replaced our own pure-Rust SA-IS (a port of the AtCoder Library's):
//! on 99.6 MB of IMDb text (medians of 3, shared 2-core machine), libsais
//! takes 7.8 s for bytes against 66 s for the port (73 s with the port's
//! per-document separators), ahead of divsufsort (22 s), cdivsufsort
//! (20 s) and `suffix` (48 s); docs/dedup.md has the table. It needs 5
//! bytes per symbol (text + array) instead of 17–21.
//!
//! Two alphabets: bytes (`libsais`), and integers `0..alphabet`
//! (`libsais_int`) for token ranks. Both take at most `i32::MAX` symbols;
//! the caller bounds shard sizes.

use libsais_sys::libsais;

/// Why libsais refused an input.
#[derive(Debug, thiserror::Error)]
#[error("suffix array of {len} symbols: {message}")]
pub struct SaError {
    pub len: usize,
    pub message: String,
}

fn check_len(len: usize) -> Result<i32, SaError> {
    i32::try_from(len).map_err(|_| SaError {
        len,
        message: "more than 2^31 - 1 symbols".into(),
    })
}

fn to_u32(sa: Vec<i32>, code: i32, len: usize) -> Result<Vec<u32>, SaError> {
    if code != 0 {
        return Err(SaError {
            len,
            message: format!("libsais returned {code}"),
        });
    }
    // Same size and alignment: collected in place, no second allocation.
    Ok(sa.into_iter().map(|x| x as u32).collect())
}

/// The suffix array of the bytes `text`.
pub fn suffix_array_bytes(text: &[u8]) -> Result<Vec<u32>, SaError> {
    let n = check_len(text.len())?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut sa = vec![0i32; text.len()];
    // SAFETY: `text` holds `n` bytes and `sa` `n` slots (`fs` = 0 extra);
    // `freq` may be null. libsais only reads `text` and writes `sa`.
    let code =
        unsafe { libsais::libsais(text.as_ptr(), sa.as_mut_ptr(), n, 0, std::ptr::null_mut()) };
    to_u32(sa, code, text.len())
}

/// The suffix array of `text`, whose symbols must all be `< alphabet`.
/// libsais permutes `text` while it works and restores it before returning.
pub fn suffix_array_ints(text: &mut [i32], alphabet: u32) -> Result<Vec<u32>, SaError> {
    let n = check_len(text.len())?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let k = i32::try_from(alphabet.max(1)).map_err(|_| SaError {
        len: text.len(),
        message: format!("alphabet of {alphabet} symbols"),
    })?;
    if let Some(&bad) = text.iter().find(|&&c| c < 0 || c >= k) {
        return Err(SaError {
            len: text.len(),
            message: format!("symbol {bad} outside the alphabet 0..{k}"),
        });
    }
    let mut sa = vec![0i32; text.len()];
    // SAFETY: `text` holds `n` symbols in `0..k` (checked above) and `sa`
    // `n` slots (`fs` = 0). libsais restores `text` before returning.
    let code = unsafe { libsais::libsais_int(text.as_mut_ptr(), sa.as_mut_ptr(), n, k, 0) };
    to_u32(sa, code, text.len())
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

    fn naive<T: Ord>(s: &[T]) -> Vec<u32> {
        let mut sa: Vec<u32> = (0..s.len() as u32).collect();
        sa.sort_unstable_by(|&a, &b| s[a as usize..].cmp(&s[b as usize..]));
        sa
    }

    #[test]
    fn matches_naive_sort_on_random_and_repetitive_inputs() {
        let mut st = 7u64;
        for case in 0..400 {
            let n = (lcg(&mut st) % 300) as usize;
            let upper = [1u64, 2, 3, 25, 255][case % 5];
            let mut s: Vec<i32> = (0..n)
                .map(|_| (lcg(&mut st) % (upper + 1)) as i32)
                .collect();
            if case % 7 == 0 {
                // Periodic text: deep recursion.
                let p = 1 + (lcg(&mut st) % 5) as usize;
                for i in p..n {
                    s[i] = s[i - p];
                }
            }
            let want = naive(&s);
            let bytes: Vec<u8> = s.iter().map(|&c| c as u8).collect();
            assert_eq!(suffix_array_bytes(&bytes).unwrap(), want, "case {case}");
            let before = s.clone();
            assert_eq!(
                suffix_array_ints(&mut s, upper as u32 + 1).unwrap(),
                want,
                "case {case}: {s:?}"
            );
            assert_eq!(s, before, "libsais must restore the text");
        }
        assert_eq!(
            suffix_array_bytes(&[7; 100]).unwrap(),
            (0..100).rev().collect::<Vec<u32>>()
        );
        assert!(suffix_array_bytes(&[]).unwrap().is_empty());
        assert_eq!(suffix_array_bytes(&[3]).unwrap(), vec![0]);
    }

    #[test]
    fn large_alphabet_and_out_of_range_symbols() {
        let mut st = 11u64;
        let mut s: Vec<i32> = (0..5000).map(|_| (lcg(&mut st) % 70_000) as i32).collect();
        let want = naive(&s);
        assert_eq!(suffix_array_ints(&mut s, 70_000).unwrap(), want);
        let e = suffix_array_ints(&mut [0, 5, 1], 5).unwrap_err();
        assert!(e.to_string().contains("outside the alphabet"), "{e}");
    }
}

//! Mean ± std over seeds, and when a difference from the base is more than noise.
//!
//! For a variant `v` and the base `b` on one eval set, with seed values `x_1 … x_n`:
//!
//! * `mean = Σ x / n`, `s = sqrt(Σ (x - mean)² / (n - 1))` (sample std);
//! * `diff = mean_v - mean_b`, `se = sqrt(s_v² / n_v + s_b² / n_b)` (the standard error of a
//!   difference of two independent means);
//! * significant when `|diff| > 2 se` (about a 95% two-sided test under normal noise; with
//!   2 or 3 seeds the standard errors are themselves rough, which is why this is a smoke
//!   test of the method).

pub use refinery_report::ablation::SIGNIFICANCE_RULE;

/// `(mean, sample std)`; the std is NaN for fewer than 2 values.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    if x.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `(diff, se, significant)` of `v` against `base` (values per seed).
pub fn compare(v: &[f64], base: &[f64]) -> (f64, f64, bool) {
    let (mv, sv) = mean_std(v);
    let (mb, sb) = mean_std(base);
    let diff = mv - mb;
    let se = (sv * sv / v.len() as f64 + sb * sb / base.len() as f64).sqrt();
    let significant = diff.is_finite() && se.is_finite() && diff.abs() > 2.0 * se;
    (diff, se, significant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        // numpy: np.mean([1, 2, 4]) = 2.3333333333, np.std([1, 2, 4], ddof=1) = 1.5275252317
        let (m, s) = mean_std(&[1.0, 2.0, 4.0]);
        assert!((m - 2.333_333_333_3).abs() < 1e-9);
        assert!((s - 1.527_525_231_7).abs() < 1e-9);
        assert!(mean_std(&[1.0]).1.is_nan());
    }

    #[test]
    fn significance_is_two_standard_errors() {
        // base 1.00, 1.02 (mean 1.01, s 0.0141421); variant 1.10, 1.12 (mean 1.11, same s):
        // se = sqrt(2 * 0.0002 / 2) = 0.0141421, diff 0.1 > 0.0283: significant.
        let (d, se, sig) = compare(&[1.10, 1.12], &[1.00, 1.02]);
        assert!((d - 0.1).abs() < 1e-12);
        assert!((se - 0.014_142_135_6).abs() < 1e-9);
        assert!(sig);
        // A difference of 0.02 against the same noise is not.
        let (_, _, sig) = compare(&[1.02, 1.04], &[1.00, 1.02]);
        assert!(!sig);
        // The base against itself: 0 difference, never significant.
        let (d, _, sig) = compare(&[1.0, 1.02], &[1.0, 1.02]);
        assert_eq!(d, 0.0);
        assert!(!sig);
    }
}

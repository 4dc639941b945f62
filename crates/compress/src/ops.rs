//! f32 element-wise and row operations of the inference engine: LayerNorm, GELU, softmax,
//! tanh, and a small f32 matmul wrapper over the `gemm` crate.
//!
//! `exp` and `erf` are written out (not `f32::exp`/`libm::erff`) so that the loops over them
//! vectorise: a per-element libm call in softmax and GELU would cost about as much as the int8
//! GEMMs themselves (MiniLM at batch 32 × 64: 9.4 M `exp` and 3.5 M `erf` per forward).

/// The widest vector extension the element-wise loops are compiled for (detected once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/BW.
    V4,
    /// AVX2 + FMA.
    V3,
    /// Baseline x86-64 (SSE2) or another architecture.
    Base,
}

/// The detected [`Isa`].
pub fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                return Isa::V4;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::V3;
            }
        }
        Isa::Base
    })
}

/// `$vis fn $name(args)` calling the `#[inline(always)]` function `$body` compiled for the
/// detected [`Isa`]: the same Rust loop, auto-vectorised 16, 8 or 4 lanes wide. Rust does not
/// contract `a * b + c` into FMA, so every width computes bit-identical results.
#[macro_export]
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? => $body:path) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw")]
                unsafe fn v4($($a: $t),*) $(-> $r)? {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($a: $t),*) $(-> $r)? {
                    $body($($a),*)
                }
                match $crate::ops::isa() {
                    // SAFETY: `isa()` detected these features on this CPU.
                    $crate::ops::Isa::V4 => return unsafe { v4($($a),*) },
                    // SAFETY: as above.
                    $crate::ops::Isa::V3 => return unsafe { v3($($a),*) },
                    $crate::ops::Isa::Base => {}
                }
            }
            $body($($a),*)
        }
    };
}

/// `e^x` for f32: `2^n · e^r` with `n = round(x·log₂e)` and `r = x − n·ln2` (ln 2 split in
/// two parts, Cody–Waite, so `r` stays exact for large `|x|`), `e^r` by a degree-6 Taylor
/// polynomial on `|r| ≤ ln2/2`; clamped to `[-87, 88]` (no inf/NaN). Relative error < 4e-7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Round-to-nearest by the 1.5·2^23 trick: pure adds, so the loop vectorises on SSE2.
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375: few mantissa bits, so n·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// `erf(x)` by Abramowitz & Stegun 7.1.26 (formula error ≤ 1.5e-7; with f32 rounding the
/// absolute error stays below 1e-6).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let r = 1.0 - poly * exp(-a * a);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

simd_dispatch! {
    /// GELU (erf form, HF `"gelu"`) in place.
    pub fn gelu(x: &mut [f32]) => gelu_body
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

simd_dispatch! {
    /// GELU, tanh approximation (HF `"gelu_new"`, GPT-2) in place:
    /// `0.5·x·(1 + tanh(z)) = x·sigmoid(2z) = x / (1 + e^(−2z))`, `z = √(2/π)·(x + 0.044715·x³)`.
    pub fn gelu_new(x: &mut [f32]) => gelu_new_body
}

#[inline(always)]
fn gelu_new_body(x: &mut [f32]) {
    const C: f32 = 2.0 * 0.797_884_6; // 2·√(2/π)
    for v in x {
        let u = *v;
        *v = u / (1.0 + exp(-(C * (u + 0.044_715 * u * u * u))));
    }
}

/// `tanh` in place (the BERT pooler; a few values per row).
pub fn tanh(x: &mut [f32]) {
    for v in x {
        *v = v.tanh();
    }
}

/// The index of the largest value (the first on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |m, (i, &v)| if v > m.1 { (i, v) } else { m },
        )
        .0
}

/// A sum in 8 lanes (vectorises; the order differs from a left fold by rounding only).
#[inline(always)]
fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

simd_dispatch! {
    /// `y[j] = x · w[j]` for every `x.len()`-wide row `w[j]` of `w` (`[n, k]`, `y`: `[n]`): the
    /// matrix-vector product of one activation row with contiguous weight rows (16 lanes).
    pub fn gemv(x: &[f32], w: &[f32], y: &mut [f32]) => gemv_body
}

#[inline(always)]
fn gemv_body(x: &[f32], w: &[f32], y: &mut [f32]) {
    // Fixed-size chunks (arrays, not slices) so that the 16 lanes vectorise.
    let (xc, xr) = x.as_chunks::<16>();
    for (o, row) in y.iter_mut().zip(w.chunks_exact(x.len().max(1))) {
        let (wc, wr) = row.as_chunks::<16>();
        let mut acc = [0f32; 16];
        for (a, b) in xc.iter().zip(wc) {
            for i in 0..16 {
                acc[i] += a[i] * b[i];
            }
        }
        let rest: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
        *o = acc.iter().sum::<f32>() + rest;
    }
}

simd_dispatch! {
    /// LayerNorm over each row of `x` (`[rows, d]`), in place: `(x − μ)/√(σ² + eps)·γ + β`
    /// (biased variance, as PyTorch).
    pub fn layer_norm(x: &mut [f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_body
}

#[inline(always)]
fn layer_norm_body(x: &mut [f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(d) {
        let mean = sum8(row) / d as f32;
        for v in row.iter_mut() {
            *v -= mean;
        }
        let mut sq = [0f32; 8];
        let chunks = row.chunks_exact(8);
        let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
        for c in chunks {
            for i in 0..8 {
                sq[i] += c[i] * c[i];
            }
        }
        let var = (sq.iter().sum::<f32>() + rest) / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inv * g + b;
        }
    }
}

simd_dispatch! {
    /// Softmax of each `t`-wide row of `rows` over its first `live` values, in place; the
    /// rest (padding keys) becomes 0.
    pub fn softmax_rows(rows: &mut [f32], t: usize, live: usize) => softmax_rows_body
}

#[inline(always)]
fn softmax_rows_body(rows: &mut [f32], t: usize, live: usize) {
    for row in rows.chunks_exact_mut(t) {
        softmax_prefix(row, live);
    }
}

/// Softmax of `row[..live]` in place; `row[live..]` (padding keys) becomes 0.
#[inline(always)]
pub fn softmax_prefix(row: &mut [f32], live: usize) {
    let (head, tail) = row.split_at_mut(live.min(row.len()));
    tail.fill(0.0);
    let max = head.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in head.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum8(head);
    for v in head.iter_mut() {
        *v *= inv;
    }
}

/// A strided f32 matrix view for [`matmul`]: element `(i, j)` at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// `dst[m, n] = alpha · lhs[m, k] · rhs[k, n]` (`dst` overwritten; rows `dst_rs` apart).
///
/// # Safety
/// Every element the views address for `m × k`, `k × n` and `m × n` must lie inside live
/// allocations, and `dst` must not overlap the inputs.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    lhs: View,
    rhs: View,
    alpha: f32,
    threads: usize,
) {
    let par = if threads > 1 && m * n * k >= 1 << 20 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m, n, k, dst, 1, dst_rs, false, lhs.ptr, lhs.cs, lhs.rs, rhs.ptr, rhs.cs, rhs.rs, 0.0,
            alpha, false, false, false, par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_4e7_relative_of_std() {
        let mut worst = 0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_is_within_1e6_of_libm() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((f64::from(erf(x)) - libm::erf(f64::from(x))).abs());
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
    }

    #[test]
    fn gemv_matches_a_plain_dot_product() {
        let (n, k) = (5, 19);
        let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.7).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.31).cos()).collect();
        let mut y = vec![0f32; n];
        gemv(&x, &w, &mut y);
        for j in 0..n {
            let want: f64 = (0..k)
                .map(|i| f64::from(x[i]) * f64::from(w[j * k + i]))
                .sum();
            assert!(
                (f64::from(y[j]) - want).abs() < 1e-5,
                "{j}: {} vs {want}",
                y[j]
            );
        }
    }

    #[test]
    fn gelu_new_matches_the_tanh_formula() {
        let x: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).collect();
        let mut y = x.clone();
        gelu_new(&mut y);
        for (&v, &g) in x.iter().zip(&y) {
            let v = f64::from(v);
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let want = 0.5 * v * (1.0 + (c * (v + 0.044715 * v.powi(3))).tanh());
            assert!(
                (f64::from(g) - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{v}: {g} vs {want}"
            );
        }
    }

    #[test]
    fn layer_norm_and_softmax_match_plain_formulas() {
        let d = 13;
        let x: Vec<f32> = (0..2 * d).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let g: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..d).map(|i| i as f32 * -0.05).collect();
        let mut y = x.clone();
        layer_norm(&mut y, d, &g, &b, 1e-12);
        for r in 0..2 {
            let row: Vec<f64> = x[r * d..(r + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            for j in 0..d {
                let want =
                    (row[j] - mean) / (var + 1e-12).sqrt() * f64::from(g[j]) + f64::from(b[j]);
                assert!((f64::from(y[r * d + j]) - want).abs() < 1e-5);
            }
        }
        let mut s = vec![1.0, 2.0, 3.0, 99.0];
        softmax_prefix(&mut s, 3);
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        for (i, v) in [1.0f64, 2.0, 3.0].iter().enumerate() {
            assert!((f64::from(s[i]) - v.exp() / z).abs() < 1e-6);
        }
        assert_eq!(s[3], 0.0);
    }
}

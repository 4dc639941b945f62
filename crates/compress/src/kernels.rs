//! int8 × int8 → i32 GEMM for dynamic and static quantization, with run-time dispatch.
//!
//! `y[m, n] = (Σ_k a[m, k] · w[n, k]) · sa[m] · sw[n] + bias[n]`: `a` is the activations
//! quantized per row (token) or per tensor, `w` the weights quantized per output channel
//! (HF `nn.Linear` layout `[out, in]`), products accumulate exactly in i32.
//!
//! **Why our own kernels** (issue 13 compared the candidates): burn 0.22's quantized matmul
//! dequantizes both operands and runs the f32 matmul (no speed); candle's Q8_0 `QMatMul` takes
//! its fast path only when K is a multiple of 256 (MiniLM's K = 384 measured 0.2–0.3x of f32);
//! tract-linalg's int8 kernels sit behind a low-level packing API we would wrap anyway. A
//! 4-row × 64-column register-blocked VNNI tile is ~100 lines; `bench/quantize_vs_peers.sh`
//! measures the whole model against PyTorch's and ONNX Runtime's dynamic int8.
//!
//! | path | instruction | activations | per 4-k step of a 4 × 64 tile |
//! |---|---|---|---|
//! | [`KernelPath::Avx512Vnni`] | `vpdpbusd` (u8 × s8 → i32) | `q + 128` as u8, corrected by `128 · Σ_k w[n, k]` | 4 loads, 4 broadcasts, 16 `vpdpbusd` |
//! | [`KernelPath::Avx2`] | `vpmaddubsw` + `vpmaddwd` (sign trick: `|a| · sign(w, a)`) | s8 in `[-127, 127]` | (4 × 16 tile) 2 loads, 4 broadcasts, 8 × 4 ops |
//! | [`KernelPath::Portable`] | scalar i32 | s8 | — |
//!
//! The AVX2 pair sum `|a|·w' + |a|·w'` is at most `2 · 127 · 127 = 32,258`, so `vpmaddubsw`
//! never saturates: quantized values stay in `[-127, 127]` (never −128) on every path.
//!
//! **Layout.** Weights are packed once into panels of 16 output columns: panel `p`, step
//! `k4` holds `w[16p + c, 4·k4 + j]` at `((p · kp/4 + k4) · 16 + c) · 4 + j` (`kp`: K
//! rounded up to 4, padding zero). One 64-byte load is then 16 columns × 4 k. Activation rows
//! are padded to `kp` and their count to a multiple of 4 (rows of zeros), so the tiles have
//! no scalar edges in K or M; the last column panel is stored with a mask.
//!
//! **Dispatch.** [`KernelPath::detect`] picks the best path the CPU has
//! (`is_x86_feature_detected!`); [`Int8Gemm::new`] refuses a path the CPU lacks, so a VNNI
//! kernel can never run without VNNI. `REFINERY_INT8_KERNEL=vnni|avx2|portable` forces one.

use rayon::prelude::*;
use serde::Serialize;

use crate::error::CompressError;

/// Output columns per panel (one 512-bit vector of i32).
pub const PANEL: usize = 16;
/// Activation rows per tile (rows are padded to a multiple of this).
pub const MR: usize = 4;
/// GEMMs below this many multiply-adds run on one thread: waking rayon's workers costs more
/// than it saves at batch 1 (MiniLM at ~25 tokens: 11–15 M per layer, measured slower on two
/// threads than on one).
const PARALLEL_MIN_MACS: usize = 1 << 24;
/// Element-wise passes below this many values run on one thread.
pub const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// An int8 GEMM code path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelPath {
    /// AVX-512 F + BW + VNNI (`vpdpbusd`), 4 × 64 tiles.
    Avx512Vnni,
    /// AVX2 (`vpmaddubsw`/`vpmaddwd`), 4 × 16 tiles.
    Avx2,
    /// Plain Rust: any CPU.
    Portable,
}

impl KernelPath {
    /// Every path, best first.
    pub const ALL: [KernelPath; 3] = [
        KernelPath::Avx512Vnni,
        KernelPath::Avx2,
        KernelPath::Portable,
    ];

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512Vnni => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            KernelPath::Avx512Vnni | KernelPath::Avx2 => false,
            KernelPath::Portable => true,
        }
    }

    /// The paths this CPU can run, best first.
    pub fn available() -> Vec<KernelPath> {
        Self::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    /// The best path this CPU has.
    pub fn detect() -> KernelPath {
        Self::ALL
            .into_iter()
            .find(|p| p.is_available())
            .unwrap_or(KernelPath::Portable)
    }

    /// `REFINERY_INT8_KERNEL` if set (an error if the CPU lacks it), else [`Self::detect`].
    pub fn from_env() -> Result<KernelPath, CompressError> {
        match std::env::var("REFINERY_INT8_KERNEL") {
            Ok(v) if !v.is_empty() => {
                let path = Self::parse(&v).ok_or_else(|| {
                    CompressError::Invalid(format!(
                        "REFINERY_INT8_KERNEL={v}: expected vnni, avx2 or portable"
                    ))
                })?;
                path.check()?;
                Ok(path)
            }
            _ => Ok(Self::detect()),
        }
    }

    /// `vnni`, `avx2`, `portable`.
    pub fn parse(s: &str) -> Option<KernelPath> {
        match s {
            "vnni" | "avx512-vnni" => Some(KernelPath::Avx512Vnni),
            "avx2" => Some(KernelPath::Avx2),
            "portable" => Some(KernelPath::Portable),
            _ => None,
        }
    }

    /// The short name (`vnni`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Avx512Vnni => "vnni",
            KernelPath::Avx2 => "avx2",
            KernelPath::Portable => "portable",
        }
    }

    /// An error unless this CPU can run the path.
    pub fn check(self) -> Result<(), CompressError> {
        if self.is_available() {
            Ok(())
        } else {
            Err(CompressError::Invalid(format!(
                "the {} int8 kernel needs CPU features this machine lacks (it has: {})",
                self.name(),
                Self::available()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Whether activations are stored offset by +128 (u8) for this path.
    fn unsigned_activations(self) -> bool {
        self == KernelPath::Avx512Vnni
    }
}

/// Rounds `x` up to a multiple of `m`.
pub fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// Symmetric int8 weights `[n, k]` (row = output channel) packed for one kernel path.
#[derive(Debug, Clone)]
pub struct Int8Gemm {
    path: KernelPath,
    n: usize,
    k: usize,
    kp: usize,
    /// `[panels][kp / 4][16][4]`.
    packed: Vec<i8>,
    /// `Σ_k w[n, k]` per output column (the VNNI path's +128 correction).
    col_sums: Vec<i32>,
}

impl Int8Gemm {
    /// Packs `w` (`[n, k]` row-major, values in `[-127, 127]`) for `path`.
    pub fn new(w: &[i8], n: usize, k: usize, path: KernelPath) -> Result<Self, CompressError> {
        path.check()?;
        let len = n.checked_mul(k).ok_or_else(|| {
            CompressError::Invalid(format!("int8 weight shape [{n}, {k}] overflows"))
        })?;
        if w.len() != len || n == 0 || k == 0 {
            return Err(CompressError::Invalid(format!(
                "int8 weight: {} values for shape [{n}, {k}]",
                w.len()
            )));
        }
        if let Some(bad) = w.iter().position(|&v| v == i8::MIN) {
            return Err(CompressError::Invalid(format!(
                "int8 weight: value -128 at index {bad} (symmetric weights stay in [-127, 127])"
            )));
        }
        let kp = round_up(k, 4);
        let panels = n.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * kp * PANEL];
        for (col, row) in w.chunks_exact(k).enumerate() {
            let (p, c) = (col / PANEL, col % PANEL);
            for (kk, &v) in row.iter().enumerate() {
                packed[((p * (kp / 4) + kk / 4) * PANEL + c) * 4 + kk % 4] = v;
            }
        }
        let col_sums = w
            .chunks_exact(k)
            .map(|row| row.iter().map(|&v| i32::from(v)).sum())
            .collect();
        Ok(Int8Gemm {
            path,
            n,
            k,
            kp,
            packed,
            col_sums,
        })
    }

    pub fn path(&self) -> KernelPath {
        self.path
    }

    /// An activation buffer for `m` rows of this layer's input.
    pub fn activations(&self, m: usize) -> QuantizedRows {
        QuantizedRows::new(m, self.k, self.path)
    }

    /// `y[m, n] = (acc[m, n] − corr[m] · Σ_k w[n, k]) · scale[m] · w_scales[n] + bias[n]`, `y` row-major `[m, n]`.
    pub fn run(
        &self,
        a: &QuantizedRows,
        w_scales: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) -> Result<(), CompressError> {
        let m = a.m;
        if a.k != self.k || a.path != self.path {
            return Err(CompressError::Invalid(format!(
                "int8 gemm: activations of width {} ({}) for weights of width {} ({})",
                a.k,
                a.path.name(),
                self.k,
                self.path.name()
            )));
        }
        if w_scales.len() != self.n
            || bias.is_some_and(|b| b.len() != self.n)
            || y.len() != m * self.n
        {
            return Err(CompressError::Invalid(format!(
                "int8 gemm: {} scales, {:?} biases, {} outputs for [{m}, {}]",
                w_scales.len(),
                bias.map(<[f32]>::len),
                y.len(),
                self.n
            )));
        }
        if m == 0 {
            return Ok(());
        }
        let epi = Epilogue {
            w_scales,
            bias,
            col_sums: &self.col_sums,
            n: self.n,
        };
        let threads = rayon::current_num_threads();
        let macs = m * self.n * self.k;
        let blocks = a.rows_padded() / MR;
        if threads > 1 && macs >= PARALLEL_MIN_MACS && blocks > 1 {
            let per = blocks.div_ceil(threads);
            y.par_chunks_mut(per * MR * self.n)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let first = i * per;
                    let rows = chunk.len() / self.n;
                    self.run_rows(a, first * MR, rows, &epi, chunk);
                });
        } else {
            self.run_rows(a, 0, m, &epi, y);
        }
        Ok(())
    }

    /// Rows `row0 .. row0 + rows` of the output into `y` (`[rows, n]`); `row0 % MR == 0`.
    fn run_rows(&self, a: &QuantizedRows, row0: usize, rows: usize, epi: &Epilogue, y: &mut [f32]) {
        match self.path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Int8Gemm::new` checked that the CPU has AVX-512 F/BW/VNNI.
            KernelPath::Avx512Vnni => unsafe { x86::run_vnni(self, a, row0, rows, epi, y) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Int8Gemm::new` checked that the CPU has AVX2.
            KernelPath::Avx2 => unsafe { x86::run_avx2(self, a, row0, rows, epi, y) },
            _ => run_portable(self, a, row0, rows, epi, y),
        }
    }
}

/// What turns i32 sums into f32 outputs.
struct Epilogue<'a> {
    w_scales: &'a [f32],
    bias: Option<&'a [f32]>,
    col_sums: &'a [i32],
    n: usize,
}

impl Epilogue<'_> {
    /// `(acc − corr · Σ_k w[col, k]) · a_scale · w_scale[col] + bias[col]`.
    #[inline]
    fn scalar(&self, acc: i32, corr: i32, a_scale: f32, col: usize) -> f32 {
        let acc = acc - corr * self.col_sums[col];
        acc as f32 * a_scale * self.w_scales[col] + self.bias.map_or(0.0, |b| b[col])
    }
}

/// How the activation rows of one GEMM get their scales and zero points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowScale {
    /// Each row its own: symmetric (`max|x| / 127`, zero point 0) or asymmetric
    /// (`(max − min) / 255` over the row's range widened to include 0, u8 zero point).
    PerRow { asymmetric: bool },
    /// One scale and zero point for all rows (per tensor, or calibrated static);
    /// `zero_point` is the u8 code of 0.0 (128 for symmetric).
    Fixed { scale: f32, zero_point: i32 },
}

/// The scale and u8 zero point for values in `[lo, hi]`: symmetric (`max(|lo|, |hi|) / 127`,
/// zero point 128) or asymmetric (`(hi − lo) / 255` with the range widened to include 0).
pub fn range_params(lo: f32, hi: f32, asymmetric: bool) -> (f32, i32) {
    if asymmetric {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let s = (hi - lo) / 255.0;
        if !(s > 0.0 && s.is_finite()) {
            return (1.0, 128);
        }
        let zp = (-lo / s).round().clamp(0.0, 255.0) as i32;
        (s, zp)
    } else {
        let amax = lo.abs().max(hi.abs());
        if amax > 0.0 && amax.is_finite() {
            (amax / 127.0, 128)
        } else {
            (1.0, 128)
        }
    }
}

/// Quantized activation rows: `[m (padded to 4), kp]` bytes plus one scale and one
/// correction per row.
///
/// Each value is a u8 code `a = round(x / scale) + zp`. The VNNI path stores `a` (u8 × s8),
/// the other paths `a − 128` as s8 (for the sign trick; `|−128|` is 128 as an unsigned
/// byte, and `2 · 128 · 127` still fits `vpmaddubsw`'s i16). Either way the exact sum is
/// `acc − corr · Σ_k w` with `corr = zp` (VNNI) or `zp − 128` (others).
#[derive(Debug, Clone)]
pub struct QuantizedRows {
    path: KernelPath,
    m: usize,
    k: usize,
    kp: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
    corr: Vec<i32>,
}

impl QuantizedRows {
    fn new(m: usize, k: usize, path: KernelPath) -> Self {
        let kp = round_up(k, 4);
        QuantizedRows {
            path,
            m,
            k,
            kp,
            // Padding columns and rows are never multiplied by a non-zero weight (padded
            // columns) or never stored (padded rows); any byte serves.
            data: vec![0; round_up(m.max(1), MR) * kp],
            scales: vec![0.0; m],
            corr: vec![0; m],
        }
    }

    fn rows_padded(&self) -> usize {
        round_up(self.m.max(1), MR)
    }

    /// Quantizes `x` (`[m, k]` row-major) as `how` says.
    pub fn quantize(&mut self, x: &[f32], how: RowScale) -> Result<(), CompressError> {
        if x.len() != self.m * self.k {
            return Err(CompressError::Invalid(format!(
                "quantize: {} values for [{}, {}]",
                x.len(),
                self.m,
                self.k
            )));
        }
        let flip: u8 = if self.path.unsigned_activations() {
            0
        } else {
            0x80
        };
        let shift = if self.path.unsigned_activations() {
            0
        } else {
            128
        };
        let (k, kp) = (self.k.max(1), self.kp);
        let one = |row: &[f32], out: &mut [u8], s: &mut f32, c: &mut i32| {
            let (scale, zp) = match how {
                RowScale::Fixed { scale, zero_point } => (scale, zero_point),
                RowScale::PerRow { asymmetric } => {
                    let (lo, hi) = min_max(row);
                    range_params(lo, hi, asymmetric)
                }
            };
            *s = scale;
            *c = zp - shift;
            quantize_row(row, 1.0 / scale, zp, flip, &mut out[..k]);
        };
        if rayon::current_num_threads() > 1 && x.len() >= PARALLEL_MIN_VALUES {
            x.par_chunks_exact(k)
                .zip(self.data.par_chunks_exact_mut(kp))
                .zip(self.scales.par_iter_mut())
                .zip(self.corr.par_iter_mut())
                .for_each(|(((row, out), s), c)| one(row, out, s, c));
        } else {
            x.chunks_exact(k)
                .zip(self.data.chunks_exact_mut(kp))
                .zip(self.scales.iter_mut())
                .zip(self.corr.iter_mut())
                .for_each(|(((row, out), s), c)| one(row, out, s, c));
        }
        Ok(())
    }
}

crate::simd_dispatch! {
    /// `out[j] = (quantize_code(row[j], inv, zp)) ^ flip`.
    fn quantize_row(row: &[f32], inv: f32, zp: i32, flip: u8, out: &mut [u8]) => quantize_row_body
}

#[inline(always)]
fn quantize_row_body(row: &[f32], inv: f32, zp: i32, flip: u8, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = quantize_code(v, inv, zp) ^ flip;
    }
}

crate::simd_dispatch! {
    /// The smallest and largest value of `x` (`(0, 0)` when empty or all non-finite).
    pub fn min_max(x: &[f32]) -> (f32, f32) => min_max_body
}

#[inline(always)]
fn min_max_body(x: &[f32]) -> (f32, f32) {
    let mut lo = [0f32; 8];
    let mut hi = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..8 {
            lo[j] = lo[j].min(c[j]);
            hi[j] = hi[j].max(c[j]);
        }
    }
    let lo = rest.iter().chain(&lo).fold(0f32, |a, &v| a.min(v));
    let hi = rest.iter().chain(&hi).fold(0f32, |a, &v| a.max(v));
    (lo, hi)
}

/// `max|x| / 127`, or 1 for an all-zero (or non-finite) row: the symmetric int8 scale.
pub fn scale_of(x: &[f32]) -> f32 {
    let (lo, hi) = min_max(x);
    range_params(lo, hi, false).0
}

/// The u8 code `clamp(round(v · inv) + zp, 0, 255)`, rounding half to even by the 1.5·2^23
/// trick: after `x + 1.5·2^23` the integer sits in the low mantissa bits, so it is read from
/// the bit pattern — no libm `round` (baseline x86-64), no saturating float → int cast, and
/// the loop vectorises. Symmetric codes (`zp = 128`) stay in `[1, 255]` (±127). A NaN input
/// gives some code, never a panic.
#[inline(always)]
pub fn quantize_code(v: f32, inv: f32, zp: i32) -> u8 {
    const MAGIC: f32 = 12_582_912.0;
    let lo = if zp == 128 { -127.0 } else { -zp as f32 };
    let x = (v * inv).clamp(lo, (255 - zp) as f32);
    (((x + MAGIC).to_bits() as i32 - 0x4B40_0000) + zp).clamp(0, 255) as u8
}

/// The portable path: plain i32 loops over the packed layout.
fn run_portable(
    g: &Int8Gemm,
    a: &QuantizedRows,
    row0: usize,
    rows: usize,
    epi: &Epilogue,
    y: &mut [f32],
) {
    let unsigned = g.path.unsigned_activations();
    let steps = g.kp / 4;
    let mut acc = [0i32; PANEL];
    for r in 0..rows {
        let arow = &a.data[(row0 + r) * g.kp..(row0 + r + 1) * g.kp];
        let sa = a.scales[row0 + r];
        for p in 0..g.n.div_ceil(PANEL) {
            acc.fill(0);
            let panel = &g.packed[p * steps * PANEL * 4..(p + 1) * steps * PANEL * 4];
            for (k4, block) in panel.chunks_exact(PANEL * 4).enumerate() {
                let x = &arow[k4 * 4..k4 * 4 + 4];
                let xv: [i32; 4] = if unsigned {
                    [0, 1, 2, 3].map(|j| i32::from(x[j]))
                } else {
                    [0, 1, 2, 3].map(|j| i32::from(x[j] as i8))
                };
                for (c, w) in block.chunks_exact(4).enumerate() {
                    acc[c] += xv[0] * i32::from(w[0])
                        + xv[1] * i32::from(w[1])
                        + xv[2] * i32::from(w[2])
                        + xv[3] * i32::from(w[3]);
                }
            }
            for (c, &v) in acc.iter().enumerate() {
                let col = p * PANEL + c;
                if col < g.n {
                    y[r * g.n + col] = epi.scalar(v, a.corr[row0 + r], sa, col);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Epilogue, Int8Gemm, QuantizedRows, MR, PANEL};

    /// Panels per VNNI tile (64 columns: 16 accumulators for 4 rows).
    const NP: usize = 4;

    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `row0 % MR == 0`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn run_vnni(
        g: &Int8Gemm,
        a: &QuantizedRows,
        row0: usize,
        rows: usize,
        epi: &Epilogue,
        y: &mut [f32],
    ) {
        let panels = g.n.div_ceil(PANEL);
        let mut p = 0;
        while p < panels {
            let np = (panels - p).min(NP);
            let mut r = 0;
            while r < rows {
                match np {
                    4 => tile_vnni::<4>(g, a, row0, r, rows, p, epi, y),
                    3 => tile_vnni::<3>(g, a, row0, r, rows, p, epi, y),
                    2 => tile_vnni::<2>(g, a, row0, r, rows, p, epi, y),
                    _ => tile_vnni::<1>(g, a, row0, r, rows, p, epi, y),
                }
                r += MR;
            }
            p += np;
        }
    }

    /// Output rows `r .. r + 4` (of the chunk starting at `row0`), panels `p .. p + P`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_vnni<const P: usize>(
        g: &Int8Gemm,
        a: &QuantizedRows,
        row0: usize,
        r: usize,
        rows: usize,
        p: usize,
        epi: &Epilogue,
        y: &mut [f32],
    ) {
        let steps = g.kp / 4;
        let mut acc = [[_mm512_setzero_si512(); P]; MR];
        // SAFETY (all pointer reads below): activation rows `row0 + r .. + MR` exist (rows
        // are padded to MR), each `kp` long; panels `p .. p + P` exist, each `steps · 64`.
        let xa = a.data.as_ptr().add((row0 + r) * g.kp);
        let wp = g.packed.as_ptr().add(p * steps * PANEL * 4);
        for k4 in 0..steps {
            let mut w = [_mm512_setzero_si512(); P];
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = _mm512_loadu_si512(wp.add((j * steps + k4) * PANEL * 4) as *const _);
            }
            for (i, acc_i) in acc.iter_mut().enumerate() {
                let x = (xa.add(i * g.kp + k4 * 4) as *const i32).read_unaligned();
                let xb = _mm512_set1_epi32(x);
                for j in 0..P {
                    acc_i[j] = _mm512_dpbusd_epi32(acc_i[j], xb, w[j]);
                }
            }
        }
        let live = (rows - r).min(MR);
        for (i, acc_i) in acc.iter().enumerate().take(live) {
            let sa = _mm512_set1_ps(a.scales[row0 + r + i]);
            let corr = _mm512_set1_epi32(a.corr[row0 + r + i]);
            let out = y.as_mut_ptr().add((r + i) * epi.n);
            for (j, &acc_ij) in acc_i.iter().enumerate() {
                let col = (p + j) * PANEL;
                let left = epi.n - col;
                let mask: __mmask16 = if left >= PANEL {
                    0xffff
                } else {
                    ((1u32 << left) - 1) as __mmask16
                };
                let cs = _mm512_maskz_loadu_epi32(mask, epi.col_sums.as_ptr().add(col));
                let v = _mm512_sub_epi32(acc_ij, _mm512_mullo_epi32(corr, cs));
                let ws = _mm512_maskz_loadu_ps(mask, epi.w_scales.as_ptr().add(col));
                let mut f = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), sa), ws);
                if let Some(b) = epi.bias {
                    f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col)));
                }
                _mm512_mask_storeu_ps(out.add(col), mask, f);
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2; `row0 % MR == 0`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run_avx2(
        g: &Int8Gemm,
        a: &QuantizedRows,
        row0: usize,
        rows: usize,
        epi: &Epilogue,
        y: &mut [f32],
    ) {
        let steps = g.kp / 4;
        let ones = _mm256_set1_epi16(1);
        for p in 0..g.n.div_ceil(PANEL) {
            // SAFETY: panel `p` holds `steps · 64` bytes; activation rows are padded to MR.
            let wp = g.packed.as_ptr().add(p * steps * PANEL * 4);
            let mut r = 0;
            while r < rows {
                let xa = a.data.as_ptr().add((row0 + r) * g.kp);
                let mut acc = [[_mm256_setzero_si256(); 2]; MR];
                for k4 in 0..steps {
                    let w0 = _mm256_loadu_si256(wp.add(k4 * 64) as *const __m256i);
                    let w1 = _mm256_loadu_si256(wp.add(k4 * 64 + 32) as *const __m256i);
                    for (i, acc_i) in acc.iter_mut().enumerate() {
                        let x = (xa.add(i * g.kp + k4 * 4) as *const i32).read_unaligned();
                        let xb = _mm256_set1_epi32(x);
                        let ax = _mm256_abs_epi8(xb);
                        let t0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xb));
                        let t1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xb));
                        acc_i[0] = _mm256_add_epi32(acc_i[0], _mm256_madd_epi16(t0, ones));
                        acc_i[1] = _mm256_add_epi32(acc_i[1], _mm256_madd_epi16(t1, ones));
                    }
                }
                let live = (rows - r).min(MR);
                for (i, acc_i) in acc.iter().enumerate().take(live) {
                    let sa = a.scales[row0 + r + i];
                    let mut sums = [0i32; PANEL];
                    _mm256_storeu_si256(sums.as_mut_ptr() as *mut __m256i, acc_i[0]);
                    _mm256_storeu_si256(sums.as_mut_ptr().add(8) as *mut __m256i, acc_i[1]);
                    let col0 = p * PANEL;
                    let width = (epi.n - col0).min(PANEL);
                    let out = &mut y[(r + i) * epi.n + col0..(r + i) * epi.n + col0 + width];
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = epi.scalar(sums[c], a.corr[row0 + r + i], sa, col0 + c);
                    }
                }
                r += MR;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream (xorshift).
    fn stream(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed.max(1);
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 20001) as f32 / 10000.0 - 1.0
        }
    }

    /// The exact integer result every path must reproduce.
    fn reference(x: &[i32], w: &[i8], m: usize, n: usize, k: usize) -> Vec<i64> {
        let mut out = vec![0i64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|t| i64::from(x[i * k + t]) * i64::from(w[j * k + t]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn every_available_path_is_exact_on_odd_shapes() {
        let shapes = [
            (1, 1, 1),
            (1, 16, 4),
            (3, 17, 5),
            (4, 64, 384),
            (5, 65, 383),
            (9, 130, 7),
            (13, 48, 1536),
            (2, 3, 2),
        ];
        let mut rnd = stream(7);
        for path in KernelPath::available() {
            for &(m, n, k) in &shapes {
                // Extremes included: ±127 everywhere stresses vpmaddubsw saturation.
                let w: Vec<i8> = (0..n * k)
                    .map(|i| {
                        if i % 11 == 0 {
                            127
                        } else if i % 13 == 0 {
                            -127
                        } else {
                            (rnd() * 127.0) as i8
                        }
                    })
                    .collect();
                let xf: Vec<f32> = (0..m * k)
                    .map(|i| if i % 7 == 0 { -3.0 } else { rnd() * 3.0 })
                    .collect();
                let g = Int8Gemm::new(&w, n, k, path).unwrap();
                // Symmetric (zero point 128) and an asymmetric zero point (codes 0..255).
                for zp in [128, 37] {
                    let scale = 3.0f32 / 127.0;
                    let mut a = g.activations(m);
                    a.quantize(
                        &xf,
                        RowScale::Fixed {
                            scale,
                            zero_point: zp,
                        },
                    )
                    .unwrap();
                    let xq: Vec<i32> = xf
                        .iter()
                        .map(|&v| i32::from(quantize_code(v, 1.0 / scale, zp)) - zp)
                        .collect();
                    let want = reference(&xq, &w, m, n, k);
                    let mut y = vec![f32::NAN; m * n];
                    let ones = vec![1.0f32; n];
                    g.run(&a, &ones, None, &mut y).unwrap();
                    for (i, (&got, &exact)) in y.iter().zip(&want).enumerate() {
                        let want = exact as f64 * f64::from(scale);
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{path:?} zp {zp} [{m},{n},{k}] at {i}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dynamic_quantization_is_within_its_error_bound_of_f32() {
        let (m, n, k) = (7, 40, 96);
        let mut rnd = stream(3);
        let wf: Vec<f32> = (0..n * k).map(|_| rnd() * 0.2).collect();
        let bias: Vec<f32> = (0..n).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rnd() * 4.0).collect();
        // Per-channel weights.
        let mut w = vec![0i8; n * k];
        let mut ws = vec![0f32; n];
        for j in 0..n {
            let row = &wf[j * k..(j + 1) * k];
            let s = row.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            ws[j] = s;
            for t in 0..k {
                w[j * k + t] = (row[t] / s).round() as i8;
            }
        }
        for (path, asymmetric) in KernelPath::available()
            .into_iter()
            .flat_map(|p| [(p, false), (p, true)])
        {
            let g = Int8Gemm::new(&w, n, k, path).unwrap();
            let mut a = g.activations(m);
            a.quantize(&x, RowScale::PerRow { asymmetric }).unwrap();
            let mut y = vec![0f32; m * n];
            g.run(&a, &ws, Some(&bias), &mut y).unwrap();
            for i in 0..m {
                let xr = &x[i * k..(i + 1) * k];
                // The activation step: |x̂ − x| ≤ sx / 2.
                let sx = if asymmetric {
                    let lo = xr.iter().fold(0f32, |a, &v| a.min(v));
                    let hi = xr.iter().fold(0f32, |a, &v| a.max(v));
                    (hi - lo) / 255.0
                } else {
                    xr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0
                };
                for j in 0..n {
                    let wr = &wf[j * k..(j + 1) * k];
                    let exact: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + bias[j];
                    // |x·w − x̂·ŵ| ≤ Σ |x||ŵ−w| + |ŵ||x̂−x| ≤ (Σ|x|)·sw/2 + (Σ|ŵ|)·sx/2.
                    let bound: f32 = xr.iter().map(|v| v.abs()).sum::<f32>() * ws[j] / 2.0
                        + wr.iter().map(|v| v.abs() + ws[j] / 2.0).sum::<f32>() * sx / 2.0;
                    let got = y[i * n + j];
                    assert!(
                        (got - exact).abs() <= bound * 1.001 + 1e-5,
                        "{path:?} asymmetric {asymmetric} ({i},{j}): {got} vs {exact}, bound {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn threaded_and_single_threaded_runs_agree_bit_for_bit() {
        let (m, n, k) = (70, 100, 384);
        let mut rnd = stream(11);
        let w: Vec<i8> = (0..n * k).map(|_| (rnd() * 127.0) as i8).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
        let ws = vec![0.01f32; n];
        let path = KernelPath::detect();
        let g = Int8Gemm::new(&w, n, k, path).unwrap();
        let mut a = g.activations(m);
        a.quantize(&x, RowScale::PerRow { asymmetric: true })
            .unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut y = vec![0f32; m * n];
            pool.install(|| g.run(&a, &ws, None, &mut y)).unwrap();
            y
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn asymmetric_ranges_cover_zero_and_use_all_codes() {
        let (s, zp) = range_params(-0.2, 3.0, true);
        assert!((s - 3.2 / 255.0).abs() < 1e-7);
        assert_eq!(zp, 16); // 0.2 / s = 15.94
        assert_eq!(quantize_code(3.0, 1.0 / s, zp), 255);
        assert_eq!(quantize_code(-0.2, 1.0 / s, zp), 0);
        assert_eq!(quantize_code(0.0, 1.0 / s, zp), 16);
        // All-positive values: the range is widened to include 0 (zero point 0).
        assert_eq!(range_params(1.0, 2.0, true).1, 0);
        assert_eq!(range_params(0.0, 0.0, true), (1.0, 128));
        assert_eq!(range_params(-1.0, 0.5, false), (1.0 / 127.0, 128));
        assert_eq!(quantize_code(-5.0, 127.0, 128), 1); // symmetric stays in ±127
        assert_eq!(min_max(&[3.0, -1.0, 2.0]), (-1.0, 3.0));
    }

    #[test]
    fn dispatch_never_offers_a_path_the_cpu_lacks() {
        let available = KernelPath::available();
        assert!(available.contains(&KernelPath::Portable));
        assert_eq!(KernelPath::detect(), available[0]);
        for path in KernelPath::ALL {
            let w = [1i8; 16];
            let made = Int8Gemm::new(&w, 4, 4, path);
            assert_eq!(made.is_ok(), path.is_available(), "{path:?}");
            if let Err(e) = made {
                assert!(e.to_string().contains("lacks"), "{e}");
            }
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            KernelPath::Avx512Vnni.is_available(),
            std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512bw")
        );
    }

    #[test]
    fn malformed_weights_and_buffers_are_errors() {
        let p = KernelPath::Portable;
        assert!(Int8Gemm::new(&[1, 2, 3], 2, 2, p).is_err());
        assert!(Int8Gemm::new(&[1, -128, 3, 4], 2, 2, p).is_err());
        assert!(Int8Gemm::new(&[], 0, 0, p).is_err());
        let g = Int8Gemm::new(&[1, 2, 3, 4], 2, 2, p).unwrap();
        let mut a = g.activations(1);
        let per_row = RowScale::PerRow { asymmetric: false };
        assert!(a.quantize(&[1.0], per_row).is_err());
        a.quantize(&[1.0, 2.0], per_row).unwrap();
        let mut y = vec![0f32; 2];
        assert!(g.run(&a, &[1.0], None, &mut y).is_err());
        assert!(g.run(&a, &[1.0, 1.0], Some(&[0.0]), &mut y).is_err());
        let mut short = vec![0f32; 1];
        assert!(g.run(&a, &[1.0, 1.0], None, &mut short).is_err());
        let other = Int8Gemm::new(&[1, 2, 3], 1, 3, p).unwrap();
        assert!(other.run(&a, &[1.0], None, &mut short).is_err());
    }
}

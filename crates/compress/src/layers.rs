//! The pieces the inference engines share ([`crate::bert`], [`crate::gpt`]): a Linear layer
//! f32 or int8, an embedding table f32 or int8 per row, LayerNorm parameters, and the
//! checkpoint [`Loader`] that reads them from `model.safetensors` with every name, shape,
//! dtype and scale checked (an int8 checkpoint is untrusted input: errors, no panics).

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::CompressError;
use crate::kernels::{min_max, range_params, Int8Gemm, KernelPath, RowScale, PARALLEL_MIN_VALUES};
use crate::ops::{self, View};
use crate::quant::{f32_values, Calibration, Granularity, QuantConfig, Scheme, SCALE_SUFFIX};

/// Weights of one Linear layer (`[n, k]`, HF `[out, in]`).
pub(crate) enum Weights {
    /// Shared with a tied embedding table (GPT-2's `wte`).
    F32(Arc<Vec<f32>>),
    Int8 {
        gemm: Int8Gemm,
        scales: Vec<f32>,
        /// Static scheme: the calibrated input scale.
        input_scale: Option<f32>,
        per_tensor: bool,
        /// Dynamic scheme: u8 codes with a zero point over each row's (tensor's) range.
        asymmetric: bool,
    },
}

/// Up to this many rows, an f32 Linear runs as matrix-vector products ([`ops::gemv`]).
const GEMV_MAX_ROWS: usize = 2;

/// A Linear layer: `y = x · Wᵀ + b` (no bias when `bias` is empty).
pub(crate) struct Linear {
    /// The weight prefix (`bert.encoder.layer.0.attention.self.query`; the fused QKV uses the
    /// query's), the key of static scales and calibration.
    pub(crate) name: String,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) w: Weights,
    pub(crate) bias: Vec<f32>,
}

/// Something that watches each Linear's input (calibration).
pub type Observer<'a> = &'a mut dyn FnMut(&str, &[f32]);

impl Linear {
    /// `x`: `[m, k]` → `[m, n]`.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        m: usize,
        threads: usize,
        observe: &mut Option<Observer>,
    ) -> Result<Vec<f32>, CompressError> {
        if let Some(f) = observe.as_mut() {
            f(&self.name, x);
        }
        let mut y = vec![0f32; m * self.n];
        let bias = (!self.bias.is_empty()).then_some(self.bias.as_slice());
        match &self.w {
            Weights::F32(w) if m <= GEMV_MAX_ROWS => {
                // A decode step (one or a few rows): dot products over the weight rows as
                // stored; a GEMM would repack all of W for them.
                let chunk = (self.n / threads.max(1)).max(64);
                for (xr, yr) in x.chunks_exact(self.k).zip(y.chunks_exact_mut(self.n)) {
                    if threads > 1 && self.n * self.k >= 1 << 20 {
                        yr.par_chunks_mut(chunk)
                            .zip(w.par_chunks(chunk * self.k))
                            .for_each(|(yc, wc)| ops::gemv(xr, wc, yc));
                    } else {
                        ops::gemv(xr, w, yr);
                    }
                }
                if let Some(bias) = bias {
                    for row in y.chunks_exact_mut(self.n) {
                        for (v, b) in row.iter_mut().zip(bias) {
                            *v += b;
                        }
                    }
                }
            }
            Weights::F32(w) => {
                // SAFETY: x is [m, k], w is [n, k] read as its transpose [k, n], y is [m, n].
                unsafe {
                    ops::matmul(
                        m,
                        self.n,
                        self.k,
                        y.as_mut_ptr(),
                        self.n as isize,
                        View {
                            ptr: x.as_ptr(),
                            rs: self.k as isize,
                            cs: 1,
                        },
                        View {
                            ptr: w.as_ptr(),
                            rs: 1,
                            cs: self.k as isize,
                        },
                        1.0,
                        threads,
                    );
                }
                if let Some(bias) = bias {
                    for row in y.chunks_exact_mut(self.n) {
                        for (v, b) in row.iter_mut().zip(bias) {
                            *v += b;
                        }
                    }
                }
            }
            Weights::Int8 {
                gemm,
                scales,
                input_scale,
                per_tensor,
                asymmetric,
            } => {
                let mut a = gemm.activations(m);
                let how = match input_scale {
                    Some(s) => RowScale::Fixed {
                        scale: *s,
                        zero_point: 128,
                    },
                    None if *per_tensor => {
                        let (lo, hi) = min_max(x);
                        let (scale, zero_point) = range_params(lo, hi, *asymmetric);
                        RowScale::Fixed { scale, zero_point }
                    }
                    None => RowScale::PerRow {
                        asymmetric: *asymmetric,
                    },
                };
                a.quantize(x, how)?;
                gemm.run(&a, scales, bias, &mut y)?;
            }
        }
        Ok(y)
    }

    pub(crate) fn kernel(&self) -> &'static str {
        match &self.w {
            Weights::F32(_) => "f32-gemm",
            Weights::Int8 { gemm, .. } => gemm.path().name(),
        }
    }

    /// Parameters (weights and biases).
    pub(crate) fn parameters(&self) -> usize {
        self.n * self.k + self.bias.len()
    }
}

/// An embedding table, f32 or int8 per row.
pub(crate) enum Embedding {
    F32 {
        w: Arc<Vec<f32>>,
        d: usize,
    },
    Int8 {
        q: Vec<i8>,
        scales: Vec<f32>,
        d: usize,
    },
}

impl Embedding {
    pub(crate) fn rows(&self) -> usize {
        match self {
            Embedding::F32 { w, d } => w.len() / d,
            Embedding::Int8 { scales, .. } => scales.len(),
        }
    }

    /// `out += table[row]` (the caller checked `row < rows`).
    pub(crate) fn add_row(&self, row: usize, out: &mut [f32]) {
        match self {
            Embedding::F32 { w, d } => {
                for (o, v) in out.iter_mut().zip(&w[row * d..(row + 1) * d]) {
                    *o += v;
                }
            }
            Embedding::Int8 { q, scales, d } => {
                let s = scales[row];
                for (o, &v) in out.iter_mut().zip(&q[row * d..(row + 1) * d]) {
                    *o += f32::from(v) * s;
                }
            }
        }
    }

    /// Values held (parameters).
    pub(crate) fn parameters(&self) -> usize {
        match self {
            Embedding::F32 { w, .. } => w.len(),
            Embedding::Int8 { q, .. } => q.len(),
        }
    }
}

/// LayerNorm parameters.
pub(crate) struct LayerNorm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

impl LayerNorm {
    /// LayerNorm of every `d`-wide row of `x`, in place (row blocks on rayon when large).
    pub(crate) fn forward(&self, x: &mut [f32], d: usize, eps: f32, threads: usize) {
        if threads > 1 && x.len() >= PARALLEL_MIN_VALUES {
            x.par_chunks_mut(d * 16)
                .for_each(|rows| ops::layer_norm(rows, d, &self.gamma, &self.beta, eps));
        } else {
            ops::layer_norm(x, d, &self.gamma, &self.beta, eps);
        }
    }
}

/// Which kernel each layer shape runs (`refinery quantize` and `compare` print it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelUse {
    pub layers: String,
    /// `[out, in]`.
    pub shape: [usize; 2],
    pub kernel: String,
}

/// Collects [`KernelUse`]s, one per distinct (layers, shape).
#[derive(Default)]
pub(crate) struct KernelTable(pub(crate) Vec<KernelUse>);

impl KernelTable {
    pub(crate) fn add(&mut self, what: &str, l: &Linear) {
        let k = KernelUse {
            layers: what.to_string(),
            shape: [l.n, l.k],
            kernel: l.kernel().to_string(),
        };
        if !self
            .0
            .iter()
            .any(|o| o.layers == k.layers && o.shape == k.shape)
        {
            self.0.push(k);
        }
    }
}

/// How a weight is laid out in the source checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[out, in]` (`nn.Linear`).
    OutIn,
    /// `[in, out]` (GPT-2's `Conv1D`); its int8 form is stored `[out, in]` and listed in
    /// [`QuantConfig::transposed`].
    InOut,
}

/// Reads layers from one mmapped `model.safetensors`.
pub(crate) struct Loader<'a> {
    pub(crate) path: &'a Path,
    pub(crate) st: &'a SafeTensors<'a>,
    pub(crate) kernel: KernelPath,
    pub(crate) quant: Option<&'a QuantConfig>,
}

/// A weight matrix as read, `[rows, k]`.
pub(crate) enum Matrix {
    F32(Vec<f32>),
    Int8(Vec<i8>, Vec<f32>),
}

impl Loader<'_> {
    pub(crate) fn err(&self, msg: String) -> CompressError {
        CompressError::checkpoint(self.path, msg)
    }

    pub(crate) fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, CompressError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.err(format!("missing tensor {name}")))?;
        if t.shape() != shape {
            return Err(self.err(format!(
                "tensor {name}: shape {:?}, expected {shape:?}",
                t.shape()
            )));
        }
        f32_values(self.path, name, &t)
    }

    pub(crate) fn layer_norm(&self, prefix: &str, d: usize) -> Result<LayerNorm, CompressError> {
        Ok(LayerNorm {
            gamma: self.f32(&format!("{prefix}.weight"), &[d])?,
            beta: self.f32(&format!("{prefix}.bias"), &[d])?,
        })
    }

    /// `(rows, weights as i8 + scales or f32)` of `<prefix>.weight` with `k` columns, as
    /// `[rows, k]` (an f32 `[in, out]` weight is transposed; an int8 one must be stored
    /// `[out, in]` and listed as transposed).
    pub(crate) fn matrix(
        &self,
        name: &str,
        k: usize,
        layout: Layout,
    ) -> Result<(usize, Matrix), CompressError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.err(format!("missing tensor {name}")))?;
        let shape = t.shape().to_vec();
        let listed = self.quant.is_some_and(|q| q.is_transposed(name));
        let in_out = layout == Layout::InOut && t.dtype() == Dtype::F32;
        let (rows, cols) = match shape.as_slice() {
            [a, b] if in_out => (*b, *a),
            [a, b] => (*a, *b),
            _ => (0, 0),
        };
        if cols != k || rows == 0 {
            let want = if in_out {
                format!("[{k}, cols]")
            } else {
                format!("[rows, {k}]")
            };
            return Err(self.err(format!("tensor {name}: shape {shape:?}, expected {want}")));
        }
        match t.dtype() {
            Dtype::F32 => {
                let w = f32_values(self.path, name, &t)?;
                let w = if in_out {
                    crate::quant::transpose(&w, cols, rows)
                } else {
                    w
                };
                Ok((rows, Matrix::F32(w)))
            }
            Dtype::I8 => {
                if (layout == Layout::InOut) != listed {
                    return Err(self.err(format!(
                        "int8 tensor {name}: {} in refinery_quantization.transposed, but its \
                         source layout is {}",
                        if listed { "listed" } else { "not listed" },
                        if layout == Layout::InOut {
                            "[in, out] (stored [out, in] when int8)"
                        } else {
                            "[out, in]"
                        }
                    )));
                }
                let scale_name = format!("{name}{SCALE_SUFFIX}");
                let scales = self
                    .st
                    .tensor(&scale_name)
                    .map_err(|_| self.err(format!("int8 tensor {name} has no {scale_name}")))?;
                if scales.shape() != [rows] {
                    return Err(self.err(format!(
                        "tensor {scale_name}: shape {:?}, expected [{rows}]",
                        scales.shape(),
                    )));
                }
                let scales = f32_values(self.path, &scale_name, &scales)?;
                if let Some(i) = scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(self.err(format!(
                        "tensor {scale_name}[{i}]: {} is not a positive scale",
                        scales[i]
                    )));
                }
                let q: Vec<i8> = t.data().iter().map(|&b| b as i8).collect();
                if let Some(i) = q.iter().position(|&v| v == i8::MIN) {
                    return Err(self.err(format!(
                        "tensor {name}[{i}]: -128 (symmetric int8 stays in [-127, 127])"
                    )));
                }
                Ok((rows, Matrix::Int8(q, scales)))
            }
            other => Err(self.err(format!(
                "tensor {name}: dtype {other:?}, expected F32 or I8"
            ))),
        }
    }

    /// The weights of a Linear named `name` (`[n, k]`, f32 or int8 codes + scales).
    pub(crate) fn weights(
        &self,
        name: &str,
        n: usize,
        k: usize,
        m: Matrix,
    ) -> Result<Weights, CompressError> {
        Ok(match m {
            Matrix::F32(w) => Weights::F32(Arc::new(w)),
            Matrix::Int8(q, scales) => {
                let input_scale = match self.quant {
                    Some(q) if q.scheme == Scheme::Static => {
                        Some(*q.activation_scales.get(name).ok_or_else(|| {
                            self.err(format!(
                                "static scheme: no activation scale for {name} in config.json"
                            ))
                        })?)
                    }
                    _ => None,
                };
                Weights::Int8 {
                    gemm: Int8Gemm::new(&q, n, k, self.kernel)?,
                    scales,
                    input_scale,
                    per_tensor: self
                        .quant
                        .is_some_and(|q| q.activations == Granularity::PerTensor),
                    asymmetric: self.quant.is_some_and(|q| q.asymmetric),
                }
            }
        })
    }

    /// A Linear from one or more prefixes stacked by rows (the fused QKV).
    pub(crate) fn linear(
        &self,
        prefixes: &[String],
        k: usize,
        layout: Layout,
    ) -> Result<Linear, CompressError> {
        let mut f32s = Vec::new();
        let mut i8s = Vec::new();
        let mut scales = Vec::new();
        let mut bias = Vec::new();
        let mut n = 0;
        for p in prefixes {
            let (rows, m) = self.matrix(&format!("{p}.weight"), k, layout)?;
            match m {
                Matrix::F32(w) => f32s.extend(w),
                Matrix::Int8(q, s) => {
                    i8s.extend(q);
                    scales.extend(s);
                }
            }
            bias.extend(self.f32(&format!("{p}.bias"), &[rows])?);
            n += rows;
        }
        let name = prefixes.first().cloned().unwrap_or_default();
        let m = match (f32s.is_empty(), i8s.is_empty()) {
            (false, true) => Matrix::F32(f32s),
            (true, false) => Matrix::Int8(i8s, scales),
            _ => {
                return Err(self.err(format!(
                    "{}: mixed int8 and f32 weights in one fused layer",
                    prefixes.join(", ")
                )))
            }
        };
        let w = self.weights(&name, n, k, m)?;
        Ok(Linear {
            name,
            n,
            k,
            w,
            bias,
        })
    }

    pub(crate) fn embedding(&self, name: &str, d: usize) -> Result<Embedding, CompressError> {
        let (_, m) = self.matrix(name, d, Layout::OutIn)?;
        Ok(match m {
            Matrix::F32(w) => Embedding::F32 { w: Arc::new(w), d },
            Matrix::Int8(q, scales) => Embedding::Int8 { q, scales, d },
        })
    }

    /// An embedding table `name` (`[rows, d]`) and the Linear tied to it (`x · tableᵀ`, no
    /// bias; the LM head): one f32 table shared by both, or the int8 codes packed for the
    /// kernel beside the rows the lookup reads.
    pub(crate) fn tied(&self, name: &str, d: usize) -> Result<(Embedding, Linear), CompressError> {
        let (rows, m) = self.matrix(name, d, Layout::OutIn)?;
        let prefix = name.strip_suffix(".weight").unwrap_or(name).to_string();
        let (emb, w) = match m {
            Matrix::F32(w) => {
                let w = Arc::new(w);
                (
                    Embedding::F32 {
                        w: Arc::clone(&w),
                        d,
                    },
                    Weights::F32(w),
                )
            }
            Matrix::Int8(q, scales) => {
                let w = self.weights(&prefix, rows, d, Matrix::Int8(q.clone(), scales.clone()))?;
                (Embedding::Int8 { q, scales, d }, w)
            }
        };
        Ok((
            emb,
            Linear {
                name: prefix,
                n: rows,
                k: d,
                w,
                bias: Vec::new(),
            },
        ))
    }
}

/// Calibrates static input scales: `run` runs the calibration data through an f32 engine,
/// handing every forward the observer, and returns the rows it ran. One scale per Linear (by
/// weight prefix): `max|x| / 127` or the `p`-th percentile of `|x|` (over up to 1 M sampled
/// values per layer) / 127.
pub(crate) fn calibrate_scales(
    method: Calibration,
    run: impl FnOnce(&mut dyn FnMut(&str, &[f32])) -> Result<usize, CompressError>,
) -> Result<BTreeMap<String, f32>, CompressError> {
    const SAMPLE_CAP: usize = 1 << 20;
    let mut maxes: BTreeMap<String, f32> = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut watch = |name: &str, x: &[f32]| {
        let m = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let e = maxes.entry(name.to_string()).or_insert(0.0);
        *e = e.max(m);
        if let Calibration::Percentile { .. } = method {
            let s = samples.entry(name.to_string()).or_default();
            let step = (x.len() / 4096).max(1);
            for v in x.iter().step_by(step) {
                if s.len() < SAMPLE_CAP {
                    s.push(v.abs());
                }
            }
        }
    };
    let rows = run(&mut watch)?;
    if rows == 0 {
        return Err(CompressError::Invalid(
            "calibration: no usable rows".to_string(),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, max) in maxes {
        let amax = match method {
            Calibration::MinMax => max,
            Calibration::Percentile { p } => {
                let mut s = samples.remove(&name).unwrap_or_default();
                s.sort_by(f32::total_cmp);
                let i = ((p / 100.0) * (s.len().saturating_sub(1)) as f64).round() as usize;
                s.get(i).copied().unwrap_or(max)
            }
        };
        out.insert(name, if amax > 0.0 { amax / 127.0 } else { 1.0 });
    }
    Ok(out)
}

//! fastText's matrices: dense (`DenseMatrix`) and product-quantized
//! (`QuantMatrix`, optionally with quantized row norms).
//!
//! Arithmetic follows fastText's order of operations in `f32`, so sums come
//! out bit for bit the same as the C++ code compiled without FMA.

use std::io::Read;

use super::reader::Reader;
use super::FastTextError;

/// Centroids per sub-quantizer: fastText always uses 8-bit codes.
const KSUB: usize = 256;

#[derive(Clone, Debug)]
pub(crate) enum Matrix {
    /// Row-major `rows × cols`.
    Dense {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    },
    Quant(QuantMatrix),
}

#[derive(Clone, Debug)]
pub(crate) struct QuantMatrix {
    rows: usize,
    /// One code per sub-quantizer per row: `rows × pq.nsubq`.
    codes: Vec<u8>,
    pq: ProductQuantizer,
    /// Row norms, quantized by a 1-d quantizer (`qnorm`).
    norms: Option<(Vec<u8>, ProductQuantizer)>,
}

/// `ProductQuantizer`: `nsubq` sub-vectors of `dsub` values (the last one
/// `lastdsub`), each coded by one of 256 centroids.
#[derive(Clone, Debug)]
struct ProductQuantizer {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    /// `dim × 256` floats, laid out as fastText's `get_centroids` expects.
    centroids: Vec<f32>,
}

impl ProductQuantizer {
    fn load<R: Read>(r: &mut Reader<R>, field: &str) -> Result<Self, FastTextError> {
        let f = |name: &str| format!("{field}.{name}");
        let dim = r.i32(&f("dim"))?;
        let nsubq = r.i32(&f("nsubq"))?;
        let dsub = r.i32(&f("dsub"))?;
        let lastdsub = r.i32(&f("lastdsub"))?;
        for (name, v) in [
            ("dim", dim),
            ("nsubq", nsubq),
            ("dsub", dsub),
            ("lastdsub", lastdsub),
        ] {
            if v < 1 {
                return Err(r.error(&f(name), format!("= {v}: must be at least 1")));
            }
        }
        let (dim, nsubq, dsub, lastdsub) = (
            dim as usize,
            nsubq as usize,
            dsub as usize,
            lastdsub as usize,
        );
        if lastdsub > dsub || (nsubq - 1) * dsub + lastdsub != dim {
            return Err(r.error(
                field,
                format!("inconsistent shape: dim {dim}, nsubq {nsubq}, dsub {dsub}, lastdsub {lastdsub}"),
            ));
        }
        let n = r.count(&f("centroids"), (dim as i64) * KSUB as i64, 4)?;
        let centroids = r.f32s(&f("centroids"), n)?;
        Ok(ProductQuantizer {
            nsubq,
            dsub,
            lastdsub,
            centroids,
        })
    }

    fn dim(&self) -> usize {
        (self.nsubq - 1) * self.dsub + self.lastdsub
    }

    /// `get_centroids(m, i)`: the centroid of sub-quantizer `m` for code `i`.
    fn centroid(&self, m: usize, i: u8) -> &[f32] {
        let i = i as usize;
        let (start, len) = if m == self.nsubq - 1 {
            (m * KSUB * self.dsub + i * self.lastdsub, self.lastdsub)
        } else {
            ((m * KSUB + i) * self.dsub, self.dsub)
        };
        self.centroids.get(start..start + len).unwrap_or(&[])
    }

    /// `addcode`: `x += alpha * decode(codes)`.
    fn add_code(&self, x: &mut [f32], code: &[u8], alpha: f32) {
        for (m, &c) in code.iter().enumerate() {
            let off = m * self.dsub;
            let c = self.centroid(m, c);
            for (xv, cv) in x.iter_mut().skip(off).zip(c) {
                *xv += alpha * cv;
            }
        }
    }

    /// `mulcode`: `alpha * <x, decode(codes)>`.
    fn mul_code(&self, x: &[f32], code: &[u8], alpha: f32) -> f32 {
        let mut res = 0.0f32;
        for (m, &c) in code.iter().enumerate() {
            let off = m * self.dsub;
            let c = self.centroid(m, c);
            for (xv, cv) in x.iter().skip(off).zip(c) {
                res += xv * cv;
            }
        }
        res * alpha
    }
}

impl Matrix {
    /// `DenseMatrix::load`: `i64 rows, i64 cols, rows × cols f32`.
    pub(crate) fn load_dense<R: Read>(
        r: &mut Reader<R>,
        field: &str,
    ) -> Result<Self, FastTextError> {
        let rows = r.i64(&format!("{field}.rows"))?;
        let cols = r.i64(&format!("{field}.cols"))?;
        let rows = r.count(&format!("{field}.rows"), rows, 0)?;
        let cols = r.count(&format!("{field}.cols"), cols, 0)?;
        let n = rows
            .checked_mul(cols)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| r.error(field, format!("{rows} × {cols} is too large")))?;
        let n = r
            .count(&format!("{field} ({rows} × {cols} floats)"), n, 4)
            .map_err(|_| r.error(field, format!("{rows} × {cols} floats exceed file size")))?;
        let data = r.f32s(field, n)?;
        Ok(Matrix::Dense { rows, cols, data })
    }

    /// `QuantMatrix::load`: `bool qnorm, i64 rows, i64 cols, i32 codesize,
    /// codes, pq[, norm codes, norm pq]`.
    pub(crate) fn load_quant<R: Read>(
        r: &mut Reader<R>,
        field: &str,
    ) -> Result<Self, FastTextError> {
        let f = |name: &str| format!("{field}.{name}");
        let qnorm = r.bool(&f("qnorm"))?;
        let rows = r.i64(&f("rows"))?;
        let cols = r.i64(&f("cols"))?;
        let codesize = r.i32(&f("codesize"))?;
        let rows = r.count(&f("rows"), rows, 0)?;
        let cols = r.count(&f("cols"), cols, 0)?;
        let codesize = r.count(&f("codesize"), codesize as i64, 1)?;
        let codes = r.bytes(&f("codes"), codesize)?;
        let pq = ProductQuantizer::load(r, &f("pq"))?;
        if pq.dim() != cols {
            return Err(r.error(
                &f("pq.dim"),
                format!("= {}: does not match the matrix's {cols} columns", pq.dim()),
            ));
        }
        if rows.checked_mul(pq.nsubq) != Some(codesize) {
            return Err(r.error(
                &f("codesize"),
                format!(
                    "= {codesize}: expected rows × nsubq = {rows} × {}",
                    pq.nsubq
                ),
            ));
        }
        let norms = if qnorm {
            let norm_codes = r.bytes(&f("norm_codes"), rows)?;
            let npq = ProductQuantizer::load(r, &f("npq"))?;
            if npq.dim() != 1 || npq.nsubq != 1 {
                return Err(r.error(
                    &f("npq"),
                    format!(
                        "norm quantizer must be 1-dimensional, got dim {} nsubq {}",
                        npq.dim(),
                        npq.nsubq
                    ),
                ));
            }
            Some((norm_codes, npq))
        } else {
            None
        };
        Ok(Matrix::Quant(QuantMatrix {
            rows,
            codes,
            pq,
            norms,
        }))
    }

    pub(crate) fn rows(&self) -> usize {
        match self {
            Matrix::Dense { rows, .. } => *rows,
            Matrix::Quant(q) => q.rows,
        }
    }

    pub(crate) fn cols(&self) -> usize {
        match self {
            Matrix::Dense { cols, .. } => *cols,
            Matrix::Quant(q) => q.pq.dim(),
        }
    }

    /// `addRowToVector`: `x += row i`. Rows out of range add nothing (the
    /// loader makes sure they cannot occur).
    pub(crate) fn add_row(&self, x: &mut [f32], i: usize) {
        match self {
            Matrix::Dense { cols, data, .. } => {
                let row = data.get(i * cols..(i + 1) * cols).unwrap_or(&[]);
                for (xv, rv) in x.iter_mut().zip(row) {
                    *xv += rv;
                }
            }
            Matrix::Quant(q) => {
                let Some(code) = q.code(i) else { return };
                q.pq.add_code(x, code, q.norm(i));
            }
        }
    }

    /// `dotRow`: `<x, row i>`.
    pub(crate) fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense { cols, data, .. } => {
                let row = data.get(i * cols..(i + 1) * cols).unwrap_or(&[]);
                let mut d = 0.0f32;
                for (rv, xv) in row.iter().zip(x) {
                    d += rv * xv;
                }
                d
            }
            Matrix::Quant(q) => match q.code(i) {
                Some(code) => q.pq.mul_code(x, code, q.norm(i)),
                None => 0.0,
            },
        }
    }
}

impl QuantMatrix {
    fn code(&self, i: usize) -> Option<&[u8]> {
        let n = self.pq.nsubq;
        self.codes.get(i * n..(i + 1) * n)
    }

    fn norm(&self, i: usize) -> f32 {
        match &self.norms {
            None => 1.0,
            Some((codes, npq)) => codes
                .get(i)
                .and_then(|&c| npq.centroid(0, c).first().copied())
                .unwrap_or(1.0),
        }
    }
}

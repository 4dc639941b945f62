//! The int8 checkpoint format and post-training quantization of a checkpoint directory.
//!
//! **Format** (an HF-style directory; `refinery quantize` writes it, [`crate::bert::Engine`]
//! runs it, `scripts/dequantize.py` turns it back into f32 safetensors for transformers):
//!
//! | file | content |
//! |---|---|
//! | `model.safetensors` | every Linear weight `<prefix>.weight` as **I8** `[out, in]` plus `<prefix>.weight_scale` **F32** `[out]` (symmetric, one scale per output channel: `w ≈ q · scale`); embeddings `*_embeddings.weight` as I8 `[rows, D]` plus `.weight_scale` F32 `[rows]` (per row) unless kept f32; biases, LayerNorm and everything else F32 as before |
//! | `config.json` | the source config plus `"refinery_quantization"`: [`QuantConfig`] (format version, scheme, weight code, activation granularity, static activation scales, transposed weights) |
//! | the rest | copied unchanged (`tokenizer.json`, `task.json`, …) |
//!
//! **GPT-2** (`model_type` `"gpt2"`): its `Conv1D` weights (`attn.c_attn`, `attn.c_proj`,
//! `mlp.c_fc`, `mlp.c_proj`) are stored `[in, out]` in HF's layout. Their int8 form is
//! transposed to `[out, in]`, like every Linear, so that the one scale per row is one scale
//! per output channel; [`QuantConfig::transposed`] lists each such tensor by name, and
//! `scripts/dequantize.py` transposes them back. The token and position tables `wte`/`wpe`
//! are embeddings (int8 per row unless kept f32). `wte` is also the tied LM head
//! (`logits = ln_f(x) · wteᵀ`): its rows are the head's output channels, so the per-row
//! scales are per output channel there too, and the engine runs the head on the int8 kernel
//! from the same codes (f32 when the embeddings are kept f32). A stored `lm_head.weight`
//! (tied, equal to `wte`) is not written.
//!
//! Weight codes: `linear` (`q = round(w / s)`, `s = max|w| / 127`) or `log2` (power-of-two
//! levels `q ∈ {0, ±1, ±2, …, ±64}`, `s = max|w| / 64`, rounding in the log domain; the
//! seed's logarithmic quantization). Both run on the same int8 kernels.
//!
//! Activations are quantized at run time per token (dynamic, default), per tensor (dynamic) —
//! symmetric ±127 or, with `asymmetric`, u8 codes with a zero point over the range — or
//! with one calibrated scale per layer input (static: min-max or a percentile of `|x|` over N
//! calibration batches).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CompressError;
use crate::outdir;

/// The `config.json` key of a quantized checkpoint.
pub const CONFIG_KEY: &str = "refinery_quantization";
/// The suffix of a scale tensor: `<prefix>.weight` → `<prefix>.weight_scale`.
pub const SCALE_SUFFIX: &str = "_scale";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The weights file of a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The config file of a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// Dynamic (activation scales at run time) or static (calibrated) quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Dynamic,
    Static,
}

/// How weights map to int8 levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightCode {
    /// Uniform levels `-127..=127`.
    Linear,
    /// Power-of-two levels `0, ±1, ±2, …, ±64`.
    Log2,
}

/// One activation scale per row (token) or per tensor (dynamic scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    PerToken,
    PerTensor,
}

/// How static activation scales are calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum Calibration {
    /// `max |x|` over the calibration data.
    MinMax,
    /// The `p`-th percentile of `|x|` (e.g. 99.99), clipping rare outliers.
    Percentile { p: f64 },
}

/// The `"refinery_quantization"` entry of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    pub format_version: u32,
    pub scheme: Scheme,
    pub weights: WeightCode,
    pub activations: Granularity,
    /// Dynamic scheme: u8 activation codes with a zero point over the row's (tensor's)
    /// range instead of symmetric ±127 (absent = false).
    #[serde(default)]
    pub asymmetric: bool,
    /// Whether embedding tables are int8 (per row).
    pub int8_embeddings: bool,
    /// Static scheme: the input scale of each quantized Linear (by weight prefix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub activation_scales: BTreeMap<String, f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationRecord>,
    /// Int8 weights stored as the transpose of the source layout (GPT-2's `Conv1D`,
    /// `[in, out]` in HF, `[out, in]` here), by tensor name; absent = none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transposed: Vec<String>,
}

impl QuantConfig {
    /// Whether the int8 tensor `name` is stored transposed (see [`QuantConfig::transposed`]).
    pub fn is_transposed(&self, name: &str) -> bool {
        self.transposed.iter().any(|t| t == name)
    }
}

/// What static scales were calibrated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub method: Calibration,
    pub file: String,
    pub rows: usize,
}

/// What to quantize and how.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantOptions {
    pub weights: WeightCode,
    pub activations: Granularity,
    /// Asymmetric (u8 + zero point) dynamic activations.
    pub asymmetric: bool,
    pub int8_embeddings: bool,
}

impl Default for QuantOptions {
    fn default() -> Self {
        QuantOptions {
            weights: WeightCode::Linear,
            activations: Granularity::PerToken,
            asymmetric: true,
            int8_embeddings: true,
        }
    }
}

/// Reads `config.json` as JSON (names the file on error).
pub fn read_config_json(dir: &Path) -> Result<Value, CompressError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|e| CompressError::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CompressError::checkpoint(&path, format!("invalid JSON: {e}")))
}

/// The quantization entry of a checkpoint's `config.json`, if it has one (checked).
pub fn read_quant_config(dir: &Path) -> Result<Option<QuantConfig>, CompressError> {
    quant_config_of(dir, &read_config_json(dir)?)
}

fn quant_config_of(dir: &Path, v: &Value) -> Result<Option<QuantConfig>, CompressError> {
    let Some(q) = v.get(CONFIG_KEY) else {
        return Ok(None);
    };
    let path = dir.join(CONFIG_FILE);
    let q: QuantConfig = serde_json::from_value(q.clone())
        .map_err(|e| CompressError::checkpoint(&path, format!("key {CONFIG_KEY}: {e}")))?;
    if q.format_version != FORMAT_VERSION {
        return Err(CompressError::checkpoint(
            &path,
            format!(
                "key {CONFIG_KEY}.format_version: {} (this build reads {FORMAT_VERSION})",
                q.format_version
            ),
        ));
    }
    if let Some((name, s)) = q
        .activation_scales
        .iter()
        .find(|(_, s)| !(s.is_finite() && **s > 0.0))
    {
        return Err(CompressError::checkpoint(
            &path,
            format!("key {CONFIG_KEY}.activation_scales.{name}: {s} is not a positive scale"),
        ));
    }
    if q.scheme == Scheme::Static && q.activation_scales.is_empty() {
        return Err(CompressError::checkpoint(
            &path,
            format!("key {CONFIG_KEY}: static scheme without activation_scales"),
        ));
    }
    Ok(Some(q))
}

/// Int8 codes and per-row scales of a `[rows, cols]` f32 matrix (row = output channel or
/// embedding row).
pub fn quantize_rows(w: &[f32], cols: usize, code: WeightCode) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; w.len()];
    let mut scales = Vec::with_capacity(w.len() / cols.max(1));
    for (row, out) in w.chunks_exact(cols).zip(q.chunks_exact_mut(cols)) {
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let top = match code {
            WeightCode::Linear => 127.0,
            WeightCode::Log2 => 64.0,
        };
        let s = if amax > 0.0 && amax.is_finite() {
            amax / top
        } else {
            1.0
        };
        scales.push(s);
        for (o, &v) in out.iter_mut().zip(row) {
            let x = v / s;
            *o = match code {
                WeightCode::Linear => x.round().clamp(-127.0, 127.0) as i8,
                WeightCode::Log2 => log2_level(x),
            };
        }
    }
    (q, scales)
}

/// The power-of-two level nearest to `x` in the log domain (`|x| < 2^-0.5` → 0).
fn log2_level(x: f32) -> i8 {
    let a = x.abs();
    if a < std::f32::consts::FRAC_1_SQRT_2 || !a.is_finite() {
        return 0;
    }
    let e = a.log2().round().clamp(0.0, 6.0) as i32;
    let v = 1i8 << e;
    if x < 0.0 {
        -v
    } else {
        v
    }
}

/// Whether a tensor is an embedding table (BERT `*_embeddings.weight`; GPT-2 `wte`, `wpe`).
pub fn is_embedding(name: &str) -> bool {
    name.ends_with("_embeddings.weight")
        || name == "wte.weight"
        || name == "wpe.weight"
        || name.ends_with(".wte.weight")
        || name.ends_with(".wpe.weight")
}

/// Whether `name` is a GPT-2 `Conv1D` weight (`[in, out]`): `attn.c_attn`, `attn.c_proj`,
/// `mlp.c_fc`, `mlp.c_proj`.
pub fn is_conv1d(name: &str) -> bool {
    [
        ".attn.c_attn.weight",
        ".attn.c_proj.weight",
        ".mlp.c_fc.weight",
        ".mlp.c_proj.weight",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// The transpose of a row-major `[rows, cols]` matrix.
pub fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for (r, row) in w.chunks_exact(cols).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// What [`quantize_dir`] did, per tensor and in total.
#[derive(Debug, Clone, Serialize)]
pub struct QuantReport {
    pub source: PathBuf,
    pub out: PathBuf,
    pub config: QuantConfig,
    /// `(name, shape, kind)` of every int8 tensor (`linear` or `embedding`).
    pub quantized: Vec<(String, Vec<usize>, &'static str)>,
    pub f32_bytes: u64,
    pub int8_bytes: u64,
}

/// Reads `dir/model.safetensors` (mmap) and hands it to `f`.
pub fn with_tensors<T>(
    dir: &Path,
    f: impl FnOnce(&Path, &SafeTensors) -> Result<T, CompressError>,
) -> Result<T, CompressError> {
    let path = dir.join(WEIGHTS_FILE);
    let file = std::fs::File::open(&path).map_err(|e| CompressError::io(&path, e))?;
    // SAFETY: the file is opened read-only; a concurrent writer is outside our contract (the
    // same as every mmap-based safetensors reader).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CompressError::io(&path, e))?;
    let st = SafeTensors::deserialize(&map)
        .map_err(|e| CompressError::checkpoint(&path, format!("not a safetensors file: {e}")))?;
    f(&path, &st)
}

/// Little-endian f32 values of a tensor (checked dtype).
pub fn f32_values(path: &Path, name: &str, t: &TensorView) -> Result<Vec<f32>, CompressError> {
    if t.dtype() != Dtype::F32 {
        return Err(CompressError::checkpoint(
            path,
            format!("tensor {name}: dtype {:?}, expected F32", t.dtype()),
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Quantizes the checkpoint in `src` into `out` (a new or empty directory, not inside `src`;
/// built aside and renamed when complete, [`crate::outdir`]); `static_scales`:
/// calibrated input scales for the static scheme (from [`crate::bert::calibrate`]).
pub fn quantize_dir(
    src: &Path,
    out: &Path,
    options: &QuantOptions,
    static_scales: Option<(BTreeMap<String, f32>, CalibrationRecord)>,
) -> Result<QuantReport, CompressError> {
    let mut config = read_config_json(src)?;
    if quant_config_of(src, &config)?.is_some() {
        return Err(CompressError::Invalid(format!(
            "{}: already quantized ({CONFIG_KEY} in config.json); quantize the f32 model",
            src.display()
        )));
    }
    outdir::check(src, out)?;
    if options.asymmetric && static_scales.is_some() {
        return Err(CompressError::Invalid(
            "asymmetric activations are a dynamic-scheme option (static scales are symmetric)"
                .to_string(),
        ));
    }
    let (scheme, activation_scales, calibration) = match static_scales {
        Some((s, rec)) => (Scheme::Static, s, Some(rec)),
        None => (Scheme::Dynamic, BTreeMap::new(), None),
    };
    let qc = QuantConfig {
        format_version: FORMAT_VERSION,
        scheme,
        weights: options.weights,
        activations: options.activations,
        asymmetric: options.asymmetric,
        int8_embeddings: options.int8_embeddings,
        activation_scales,
        calibration,
        transposed: Vec::new(),
    };
    let gpt2 = config.get("model_type").and_then(Value::as_str) == Some("gpt2");
    let mut transposed = Vec::new();
    let (tensors, quantized, f32_bytes, int8_bytes) = with_tensors(src, |path, st| {
        let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
        names.sort();
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut quantized = Vec::new();
        let (mut f32_bytes, mut int8_bytes) = (0u64, 0u64);
        for name in names {
            let t = st
                .tensor(&name)
                .map_err(|e| CompressError::checkpoint(path, format!("tensor {name}: {e}")))?;
            let mut shape = t.shape().to_vec();
            if gpt2 && name == "lm_head.weight" {
                // Tied to wte (the GPT-2 loader checks that they are equal): not written.
                continue;
            }
            let linear = name.ends_with(".weight") && shape.len() == 2 && !is_embedding(&name);
            let embedding = is_embedding(&name) && shape.len() == 2 && options.int8_embeddings;
            if (linear || embedding) && t.dtype() == Dtype::F32 && shape[0] > 0 && shape[1] > 0 {
                let mut w = f32_values(path, &name, &t)?;
                if gpt2 && is_conv1d(&name) {
                    // [in, out] → [out, in]: one scale per output channel.
                    w = transpose(&w, shape[0], shape[1]);
                    shape.swap(0, 1);
                    transposed.push(name.clone());
                }
                let code = if linear {
                    options.weights
                } else {
                    WeightCode::Linear
                };
                let (q, s) = quantize_rows(&w, shape[1], code);
                f32_bytes += 4 * w.len() as u64;
                int8_bytes += q.len() as u64 + 4 * s.len() as u64;
                tensors.push((
                    format!("{name}{SCALE_SUFFIX}"),
                    Dtype::F32,
                    vec![shape[0]],
                    s.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ));
                tensors.push((
                    name.clone(),
                    Dtype::I8,
                    shape.clone(),
                    q.iter().map(|&v| v as u8).collect(),
                ));
                quantized.push((name, shape, if linear { "linear" } else { "embedding" }));
            } else {
                let bytes = t.data().to_vec();
                f32_bytes += bytes.len() as u64;
                int8_bytes += bytes.len() as u64;
                tensors.push((name, t.dtype(), shape, bytes));
            }
        }
        Ok((tensors, quantized, f32_bytes, int8_bytes))
    })?;
    if quantized.is_empty() {
        return Err(CompressError::Invalid(format!(
            "{}: no f32 Linear or embedding weights to quantize",
            src.display()
        )));
    }
    let qc = QuantConfig { transposed, ..qc };
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| CompressError::Invalid(format!("tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let staged = outdir::Staged::create(out, "quantize")?;
    let weights = staged.path().join(WEIGHTS_FILE);
    safetensors::serialize_to_file(views, None, &weights)
        .map_err(|e| CompressError::checkpoint(&weights, e.to_string()))?;
    if let Some(o) = config.as_object_mut() {
        o.insert(
            CONFIG_KEY.into(),
            serde_json::to_value(&qc).map_err(|e| CompressError::Invalid(e.to_string()))?,
        );
    }
    outdir::write_json(&staged.path().join(CONFIG_FILE), &config)?;
    outdir::copy_rest(src, staged.path(), &[WEIGHTS_FILE, CONFIG_FILE])?;
    staged.publish()?;
    Ok(QuantReport {
        source: src.to_path_buf(),
        out: out.to_path_buf(),
        config: qc,
        quantized,
        f32_bytes,
        int8_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_codes_round_and_keep_the_row_max() {
        let w = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0];
        let (q, s) = quantize_rows(&w, 3, WeightCode::Linear);
        assert_eq!(q[1], -127);
        assert_eq!(q[0], 64); // 0.5 / (1/127) = 63.5 → 64 (round half away from zero)
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(&q[3..], &[0, 0, 0]);
        assert_eq!(s[1], 1.0);
    }

    #[test]
    fn log2_codes_are_powers_of_two() {
        let w: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 10.0).collect();
        let (q, s) = quantize_rows(&w, 64, WeightCode::Log2);
        assert!((s[0] - 3.15 / 64.0).abs() < 1e-6);
        for (&v, &x) in q.iter().zip(&w) {
            let a = v.unsigned_abs();
            assert!(a == 0 || a.is_power_of_two(), "{v}");
            assert!(a <= 64);
            if a > 0 {
                assert_eq!(v.signum() as f32, x.signum());
                // In the log domain the level is within half an octave of |x|/s.
                let r = (x.abs() / s[0]).log2() - f32::from(a).log2();
                assert!(r.abs() <= 0.5 + 1e-4 || a == 64 || a == 1, "{x} → {v}");
            }
        }
        assert_eq!(log2_level(0.7), 0);
        assert_eq!(log2_level(0.71), 1);
        assert_eq!(log2_level(-3.0), -4); // log2(3) = 1.58 → 2
        assert_eq!(log2_level(1000.0), 64);
    }
}

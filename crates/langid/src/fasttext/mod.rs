//! A pure-Rust reader and predictor for supervised fastText models
//! (`.bin` and quantized `.ftz`), reproducing official fastText 0.9's
//! `predict`, e.g. with the `lid.176` language-ID model.
//!
//! The file format is fastText's `FastText::loadModel`: magic `793712314`,
//! version (≤ 12), `Args`, `Dictionary` (entries, `pruneidx`), the input
//! matrix (dense, or product-quantized with optional norm quantization),
//! the `qout` flag and the output matrix (dense or quantized). Models are
//! untrusted input: every count is checked against the bytes left in the
//! file before anything is allocated, and errors name the file and field.
//!
//! Prediction follows fastText step by step: `readWord` tokenization with
//! the `</s>` token at the newline, character n-grams hashed with fastText's
//! FNV-1a variant (bytes sign-extended through `int8_t`), word n-grams,
//! `pruneidx` remapping, the average of the input rows, then the output
//! layer: hierarchical softmax (a DFS over the Huffman tree of the label
//! counts, pruned by log-probability), softmax, or one-vs-all sigmoids. The
//! arithmetic is `f32` in fastText's order, with the exact `exp`/`log`
//! fastText 0.9 uses for prediction.

mod detector;
pub use detector::resolve_model_path;
mod dict;
mod loss;
mod matrix;
mod reader;

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) use detector::Detector;
use dict::{DictArgs, Dictionary, LABEL_PREFIX};
use loss::{Loss, Tree};
use matrix::Matrix;
use reader::Reader;

/// `FASTTEXT_FILEFORMAT_MAGIC_INT32`.
pub const MAGIC: i32 = 793_712_314;
/// The newest file format version fastText writes (and we read).
pub const VERSION: i32 = 12;

/// A model file that cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum FastTextError {
    /// The file cannot be opened or read.
    #[error("{file}: {error}")]
    Io { file: String, error: std::io::Error },
    /// The content is not a valid (supported) fastText model.
    #[error("{file}: {field} {message}")]
    Format {
        file: String,
        /// The field being read, e.g. `dictionary.nwords` or `input.codes`.
        field: String,
        message: String,
    },
}

/// The output layer a model was trained with (`-loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    HierarchicalSoftmax,
    NegativeSampling,
    Softmax,
    OneVsAll,
}

/// A supervised fastText model, ready to predict. Immutable, so one
/// instance can be shared between threads (`Arc<FastText>`).
#[derive(Clone, Debug)]
pub struct FastText {
    dim: usize,
    loss_kind: LossKind,
    dict: Dictionary,
    /// Labels without the `__label__` prefix.
    labels: Vec<String>,
    input: Matrix,
    output: Matrix,
    loss: Loss,
    quantized: bool,
}

impl FastText {
    /// Loads a `.bin` or `.ftz` model file.
    pub fn load(path: impl AsRef<Path>) -> Result<FastText, FastTextError> {
        let path = path.as_ref();
        let file_name = path.display().to_string();
        let io = |error| FastTextError::Io {
            file: file_name.clone(),
            error,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Self::parse(BufReader::new(file), len, file_name.clone())
    }

    /// Reads a model from memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<FastText, FastTextError> {
        Self::parse(bytes, bytes.len() as u64, name.to_string())
    }

    fn parse<R: Read>(inner: R, len: u64, name: String) -> Result<FastText, FastTextError> {
        let mut r = Reader::new(inner, len, name);
        let magic = r.i32("magic")?;
        if magic != MAGIC {
            return Err(r.error(
                "magic",
                format!("= {magic}: not a fastText model (expected {MAGIC})"),
            ));
        }
        let version = r.i32("version")?;
        if !(1..=VERSION).contains(&version) {
            return Err(r.error(
                "version",
                format!("= {version}: unsupported (this reader knows 1..={VERSION})"),
            ));
        }
        // Args::load
        let dim = r.i32("args.dim")?;
        let _ws = r.i32("args.ws")?;
        let _epoch = r.i32("args.epoch")?;
        let _min_count = r.i32("args.minCount")?;
        let _neg = r.i32("args.neg")?;
        let word_ngrams = r.i32("args.wordNgrams")?;
        let loss = r.i32("args.loss")?;
        let model = r.i32("args.model")?;
        let bucket = r.i32("args.bucket")?;
        let minn = r.i32("args.minn")?;
        let mut maxn = r.i32("args.maxn")?;
        let _lr_update_rate = r.i32("args.lrUpdateRate")?;
        let _t = r.f64("args.t")?;
        if !(1..=1 << 20).contains(&dim) {
            return Err(r.error("args.dim", format!("= {dim}: must be within 1..=1048576")));
        }
        let loss_kind = match loss {
            1 => LossKind::HierarchicalSoftmax,
            2 => LossKind::NegativeSampling,
            3 => LossKind::Softmax,
            4 => LossKind::OneVsAll,
            _ => return Err(r.error("args.loss", format!("= {loss}: unknown loss"))),
        };
        if model != 3 {
            return Err(r.error(
                "args.model",
                format!("= {model}: only supervised models (3) can predict labels"),
            ));
        }
        if bucket < 0 {
            return Err(r.error("args.bucket", format!("= {bucket}: must not be negative")));
        }
        if version == 11 {
            // fastText: "old supervised models do not use char ngrams".
            maxn = 0;
        }
        let dict = Dictionary::load(
            &mut r,
            DictArgs {
                minn,
                maxn,
                bucket,
                word_ngrams,
            },
        )?;
        let quant_input = r.bool("quant_input")?;
        let input = if quant_input {
            Matrix::load_quant(&mut r, "input")?
        } else {
            Matrix::load_dense(&mut r, "input")?
        };
        if !quant_input && dict.pruneidx.is_some() {
            return Err(r.error(
                "dictionary.pruneidx_size",
                "is set, but the input matrix is not quantized (invalid model file)",
            ));
        }
        let qout = r.bool("qout")?;
        let output = if quant_input && qout {
            Matrix::load_quant(&mut r, "output")?
        } else {
            Matrix::load_dense(&mut r, "output")?
        };

        for (field, m) in [("input", &input), ("output", &output)] {
            if m.cols() != dim as usize {
                return Err(r.error(
                    &format!("{field}.cols"),
                    format!("= {}: does not match args.dim = {dim}", m.cols()),
                ));
            }
        }
        let need = dict.input_rows_needed();
        if input.rows() < need {
            return Err(r.error(
                "input.rows",
                format!(
                    "= {}: the dictionary needs {need} (nwords + buckets)",
                    input.rows()
                ),
            ));
        }
        let nlabels = dict.labels.len();
        if output.rows() != nlabels {
            return Err(r.error(
                "output.rows",
                format!(
                    "= {}: expected one row per label ({nlabels})",
                    output.rows()
                ),
            ));
        }
        let loss = match loss_kind {
            LossKind::HierarchicalSoftmax => Loss::Hs(Tree::build(&dict.label_counts)),
            LossKind::Softmax => Loss::Softmax,
            LossKind::NegativeSampling | LossKind::OneVsAll => Loss::binary(),
        };
        let labels = dict
            .labels
            .iter()
            .map(|l| {
                let l = l.strip_prefix(LABEL_PREFIX).unwrap_or(l);
                String::from_utf8_lossy(l).into_owned()
            })
            .collect();
        Ok(FastText {
            dim: dim as usize,
            loss_kind,
            dict,
            labels,
            input,
            output,
            loss,
            quantized: quant_input,
        })
    }

    /// The `k` most likely labels of the first line of `text` (fastText
    /// reads `text + "\n"`, like its Python `predict`; text after a newline
    /// is ignored, as is text after a literal `</s>` token), best first,
    /// with probabilities of at least `threshold`. Labels are returned
    /// without their `__label__` prefix. `k = usize::MAX` returns every
    /// label above the threshold; `k = 0` returns nothing.
    ///
    /// Matches `fasttext.load_model(path).predict(text, k, threshold)`.
    pub fn predict(&self, text: &str, k: usize, threshold: f32) -> Vec<(&str, f32)> {
        self.predict_impl(text, false, k, threshold)
    }

    /// Like [`FastText::predict`], but reads newlines as spaces, so the
    /// whole text is one line: datatrove's `FT176LID` (FineWeb) and CCNet
    /// predict on `text.replace("\n", " ")`; this gives the same result
    /// without the copy.
    pub fn predict_document(&self, text: &str, k: usize, threshold: f32) -> Vec<(&str, f32)> {
        self.predict_impl(text, true, k, threshold)
    }

    fn predict_impl(
        &self,
        text: &str,
        newline_is_space: bool,
        k: usize,
        threshold: f32,
    ) -> Vec<(&str, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let mut ids = Vec::new();
        let mut hashes = Vec::new();
        let mut scratch = Vec::new();
        self.dict
            .line(text, newline_is_space, &mut ids, &mut hashes, &mut scratch);
        if ids.is_empty() {
            return Vec::new();
        }
        // Model::computeHidden
        let mut hidden = vec![0.0f32; self.dim];
        for &id in &ids {
            self.input.add_row(&mut hidden, id as usize);
        }
        let scale = (1.0f64 / ids.len() as f64) as f32;
        for h in &mut hidden {
            *h *= scale;
        }
        let k = k.min(self.labels.len());
        self.loss
            .predict(k, threshold, &hidden, &self.output, self.labels.len())
            .into_iter()
            .filter_map(|(score, i)| Some((self.labels.get(i)?.as_str(), score.exp())))
            .collect()
    }

    /// The labels, without `__label__`, in the model's order (by decreasing
    /// training frequency).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The dimension of the embeddings.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of words in the dictionary.
    pub fn nwords(&self) -> usize {
        self.dict.nwords
    }

    /// The output layer the model was trained with.
    pub fn loss(&self) -> LossKind {
        self.loss_kind
    }

    /// Whether the input matrix is product-quantized (an `.ftz` model).
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }
}

/// Loads a model once per process and path: pipeline stages are built per
/// task, and all of them share the model.
pub fn load_shared(path: &Path) -> Result<Arc<FastText>, FastTextError> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<FastText>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let model = Arc::new(FastText::load(path)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, Arc::clone(&model));
    }
    Ok(model)
}

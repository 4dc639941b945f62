//! One tokenizer type over HF `tokenizer.json` files, GPT-2 style
//! `vocab.json` + `merges.txt` pairs and tiktoken `.tiktoken` rank files.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use crate::tiktoken::TiktokenBpe;
use crate::{Result, TokenizeError};

/// Special tokens tried, in order, as the default document separator.
pub const EOS_CANDIDATES: &[&str] = &["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]"];

enum Inner {
    /// An HF tokenizer, with the tiktoken-style engine that encodes and
    /// decodes for it when it is a plain GPT-2 shaped byte-level BPE.
    Hf {
        tk: Box<tokenizers::Tokenizer>,
        fast: Option<Box<TiktokenBpe>>,
    },
    Tiktoken(Box<TiktokenBpe>),
}

/// [`Tokenizer::engine`] for the HF `tokenizers` crate.
pub const ENGINE_HF: &str = "hf-tokenizers";
/// [`Tokenizer::engine`] for refinery's tiktoken-compatible byte-level BPE.
pub const ENGINE_TIKTOKEN: &str = "tiktoken-bpe";

/// A loaded tokenizer. Encoding never adds special tokens unless asked
/// ([`Tokenizer::encode_with_special`]), so a document's ids are its text's.
pub struct Tokenizer {
    inner: Inner,
    /// Where it was loaded from (a file or a directory).
    path: PathBuf,
    vocab_size: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind())
            .field("engine", &self.engine())
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

const JSON_HINT: &str = "pass a HF tokenizer.json, a .tiktoken rank file, or a directory holding tokenizer.json or vocab.json + merges.txt";

impl Tokenizer {
    /// Loads `path`: a `tokenizer.json`, a `.tiktoken` rank file, or a
    /// directory with `tokenizer.json` or GPT-2 style `vocab.json` + `merges.txt`.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| TokenizeError::load(path, format!("cannot read: {e}"), JSON_HINT))?;
        if meta.is_dir() {
            let json = path.join("tokenizer.json");
            if json.is_file() {
                return Self::from_json_file(&json);
            }
            let (v, m) = (path.join("vocab.json"), path.join("merges.txt"));
            if v.is_file() && m.is_file() {
                return Self::from_gpt2_files(&v, &m);
            }
            let tk = std::fs::read_dir(path)
                .map_err(|e| TokenizeError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "tiktoken"));
            if let Some(tk) = tk {
                return Self::from_tiktoken_file(&tk);
            }
            return Err(TokenizeError::load(
                path,
                "directory has no tokenizer.json, vocab.json + merges.txt, or *.tiktoken",
                JSON_HINT,
            ));
        }
        if path.extension().is_some_and(|x| x == "tiktoken") {
            Self::from_tiktoken_file(path)
        } else {
            Self::from_json_file(path)
        }
    }

    /// Loads a HF `tokenizer.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| TokenizeError::io(path, e))?;
        let mut tk = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
            let hint = if bytes.first() == Some(&b'{') {
                "the JSON does not describe a HF tokenizer (models, normalizers and pre-tokenizers must be ones HF tokenizers 0.23 knows)"
            } else {
                JSON_HINT
            };
            TokenizeError::load(path, e.to_string(), hint)
        })?;
        // Padding and truncation are model-input settings (MiniLM pads and
        // truncates to 128): a document's tokens must be all of its text.
        tk.with_padding(None);
        tk.with_truncation(None)
            .map_err(|e| TokenizeError::load(path, e.to_string(), JSON_HINT))?;
        Ok(Self::from_hf(tk, path))
    }

    /// Builds the GPT-2 tokenizer (byte-level BPE, `<|endoftext|>` special)
    /// from a `vocab.json` and a `merges.txt`, as HF's GPT-2 tokenizer.json does.
    pub fn from_gpt2_files(vocab: &Path, merges: &Path) -> Result<Self> {
        let as_str = |p: &Path| p.to_string_lossy().into_owned();
        let bpe = BPE::from_file(&as_str(vocab), &as_str(merges))
            .build()
            .map_err(|e| {
                TokenizeError::load(
                    vocab,
                    format!("with {}: {e}", merges.display()),
                    "vocab.json maps byte-level tokens to ids; merges.txt has one `a b` pair per line after an optional #version line",
                )
            })?;
        let mut tk = tokenizers::Tokenizer::new(bpe);
        tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tk.with_post_processor(Some(ByteLevel::new(false, true, true)));
        tk.with_decoder(Some(ByteLevel::new(false, true, true)));
        if tk.token_to_id("<|endoftext|>").is_some() {
            tk.add_special_tokens([AddedToken::from("<|endoftext|>", true)])
                .map_err(|e| TokenizeError::load(vocab, e.to_string(), "check vocab.json"))?;
        }
        let dir = vocab.parent().unwrap_or(Path::new("."));
        Ok(Self::from_hf(tk, dir))
    }

    /// Loads a tiktoken rank file (see [`TiktokenBpe::open`]).
    pub fn from_tiktoken_file(path: &Path) -> Result<Self> {
        let t = TiktokenBpe::open(path)?;
        Ok(Tokenizer {
            vocab_size: t.vocab_size(),
            inner: Inner::Tiktoken(Box::new(t)),
            path: path.to_path_buf(),
        })
    }

    /// Wraps an HF tokenizer (e.g. one just trained). A plain byte-level
    /// BPE of the GPT-2 shape (see [`crate::fastbpe`]) encodes and decodes
    /// with the tiktoken-style engine; anything else with the HF crate.
    pub fn from_hf(tk: tokenizers::Tokenizer, path: &Path) -> Self {
        let vocab_size = tk
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as usize + 1);
        let fast = crate::fastbpe::byte_level_engine(&tk).ok().map(Box::new);
        Tokenizer {
            inner: Inner::Hf {
                tk: Box::new(tk),
                fast,
            },
            path: path.to_path_buf(),
            vocab_size,
        }
    }

    /// The same tokenizer, always encoding and decoding with the HF crate
    /// (for comparisons with the fast engine).
    pub fn with_hf_engine(mut self) -> Self {
        if let Inner::Hf { fast, .. } = &mut self.inner {
            *fast = None;
        }
        self
    }

    /// The HF tokenizer inside, if this is one.
    pub fn as_hf(&self) -> Option<&tokenizers::Tokenizer> {
        match &self.inner {
            Inner::Hf { tk, .. } => Some(tk),
            Inner::Tiktoken(_) => None,
        }
    }

    /// What encodes and decodes: [`ENGINE_TIKTOKEN`] (`.tiktoken` files, and
    /// HF byte-level BPEs of the GPT-2 shape) or [`ENGINE_HF`].
    pub fn engine(&self) -> &'static str {
        match &self.inner {
            Inner::Hf { fast: None, .. } => ENGINE_HF,
            Inner::Hf { fast: Some(_), .. } | Inner::Tiktoken(_) => ENGINE_TIKTOKEN,
        }
    }

    /// `hf:<model>` or `tiktoken:<encoding>`.
    pub fn kind(&self) -> String {
        match &self.inner {
            Inner::Hf { tk: t, .. } => {
                let model = serde_json::to_value(t.get_model())
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "?".into());
                format!("hf:{model}")
            }
            Inner::Tiktoken(t) => format!("tiktoken:{}", t.name()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One more than the largest id, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a token string (vocabulary or added/special token).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Inner::Hf { tk: t, .. } => t.token_to_id(token),
            Inner::Tiktoken(t) => t.token_to_id(token),
        }
    }

    /// The first of [`EOS_CANDIDATES`] the vocabulary has.
    pub fn default_eos(&self) -> Option<(&'static str, u32)> {
        EOS_CANDIDATES
            .iter()
            .find_map(|s| self.token_to_id(s).map(|id| (*s, id)))
    }

    /// Encodes `text` without adding special tokens (no `[CLS]`/`[SEP]`).
    /// HF tokenizers still match added tokens written in the text (as
    /// Python's `encode(..., add_special_tokens=False)` does); tiktoken
    /// encodings treat such text as ordinary (`encode_ordinary`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            // HF matches added tokens written in the text: so does the fast engine.
            Inner::Hf { fast: Some(f), .. } => Ok(f.encode_with_specials(text)),
            Inner::Hf { tk: t, .. } => t
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| TokenizeError::Encode(e.to_string())),
            Inner::Tiktoken(t) => Ok(t.encode_ordinary(text)),
        }
    }

    /// Encodes with the tokenizer's post-processor (`[CLS] … [SEP]` for
    /// BERT); for tiktoken, special-token text becomes special ids.
    pub fn encode_with_special(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            // The fast engine requires no post-processor beyond ByteLevel's,
            // which adds no tokens.
            Inner::Hf { fast: Some(f), .. } => Ok(f.encode_with_specials(text)),
            Inner::Hf { tk: t, .. } => t
                .encode_fast(text, true)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| TokenizeError::Encode(e.to_string())),
            Inner::Tiktoken(t) => Ok(t.encode_with_specials(text)),
        }
    }

    /// Encodes many texts in parallel on the current rayon pool; the output
    /// order is the input order.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts.par_iter().map(|t| self.encode(t.as_ref())).collect()
    }

    /// Decodes ids to text, keeping special tokens. Ids outside the
    /// vocabulary are an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.vocab_size) {
            return Err(TokenizeError::Encode(format!(
                "id {bad} is outside the vocabulary (size {})",
                self.vocab_size
            )));
        }
        match &self.inner {
            Inner::Hf { fast: Some(f), .. } => f.decode(ids),
            Inner::Hf { tk: t, .. } => t
                .decode(ids, false)
                .map_err(|e| TokenizeError::Encode(e.to_string())),
            Inner::Tiktoken(t) => t.decode(ids),
        }
    }

    /// Writes a copy that [`Tokenizer::load`] reads back into `dir`
    /// (`tokenizer.json`, or the `.tiktoken` file under its own name) and
    /// returns its path.
    pub fn save_to_dir(&self, dir: &Path) -> Result<PathBuf> {
        match &self.inner {
            Inner::Hf { tk: t, .. } => {
                let out = dir.join("tokenizer.json");
                t.save(&out, false)
                    .map_err(|e| TokenizeError::Invalid(format!("{}: {e}", out.display())))?;
                Ok(out)
            }
            Inner::Tiktoken(_) => {
                let name = self
                    .path
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_else(|| "tokenizer.tiktoken".into());
                let out = dir.join(name);
                std::fs::copy(&self.path, &out).map_err(|e| TokenizeError::io(&out, e))?;
                Ok(out)
            }
        }
    }
}

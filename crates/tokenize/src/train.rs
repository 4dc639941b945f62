//! Training BPE (byte-level, GPT-2 style), WordPiece (BERT style) and
//! Unigram tokenizers with the HF `tokenizers` crate, fed from a stream of
//! texts.
//!
//! Memory is bounded by what the trainer keeps, not by the input: texts are
//! streamed (never held together) and the trainers keep only word counts.
//! [`TextLimits`] caps the input further (`--sample-bytes`, `--max-docs`):
//! each of N input files contributes its first `sample_bytes / N` bytes of
//! text, so the sample covers every file.
//!
//! Special tokens are cut out of the texts before counting, so no merge
//! spans `<|endoftext|>` (as in the cs336 reference trainer).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use refinery_corpus::input::InputFile;
use refinery_corpus::readers::{self, Item, ReaderOptions};
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::{
    BertNormalizer, Lowercase, NormalizerWrapper, Sequence as NormSeq, StripAccents, NFC, NFD, NFKC,
};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreSeq;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::{Result, TokenizeError, Tokenizer};

/// The model to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Byte-level BPE, GPT-2 style: every byte is in the vocabulary, so any
    /// text round-trips.
    Bpe,
    /// BERT-style WordPiece with `[PAD] [UNK] [CLS] [SEP] [MASK]`.
    WordPiece,
    /// SentencePiece-style Unigram over `▁`-marked words.
    Unigram,
}

impl ModelKind {
    /// The special tokens used when none are given.
    pub fn default_specials(self) -> Vec<String> {
        let v: &[&str] = match self {
            ModelKind::Bpe => &["<|endoftext|>"],
            ModelKind::WordPiece => &["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            ModelKind::Unigram => &["<unk>", "<s>", "</s>"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }
}

/// How CJK ideographs are pre-tokenized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CjkMode {
    /// Each ideograph is its own pre-token (BERT's `tokenize_chinese_chars`):
    /// no token spans two characters.
    Split,
    /// Runs of ideographs stay one pre-token, so merges can learn words.
    Keep,
}

/// BERT's `_is_chinese_char` ranges, as a regex class.
pub const CJK_CLASS: &str = r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]";

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    /// Final vocabulary size, special tokens included.
    pub vocab_size: usize,
    pub min_frequency: u64,
    /// Special tokens, placed first (ids 0, 1, …).
    pub special_tokens: Vec<String>,
    pub lowercase: bool,
    pub nfkc: bool,
    pub strip_accents: bool,
    pub cjk: CjkMode,
}

impl TrainConfig {
    /// Defaults for `model`: its special tokens, CJK split for WordPiece and
    /// kept runs otherwise, no normalization.
    pub fn new(model: ModelKind, vocab_size: usize) -> Self {
        TrainConfig {
            model,
            vocab_size,
            min_frequency: 2,
            special_tokens: model.default_specials(),
            lowercase: false,
            nfkc: false,
            strip_accents: false,
            cjk: if model == ModelKind::WordPiece {
                CjkMode::Split
            } else {
                CjkMode::Keep
            },
        }
    }
}

fn normalizer(cfg: &TrainConfig) -> Option<NormalizerWrapper> {
    let mut v: Vec<NormalizerWrapper> = Vec::new();
    if cfg.nfkc {
        v.push(NFKC.into());
    }
    if cfg.model == ModelKind::WordPiece {
        // BERT's BasicTokenizer: clean control chars, space out CJK.
        v.push(
            BertNormalizer::new(
                true,
                cfg.cjk == CjkMode::Split,
                Some(cfg.strip_accents),
                cfg.lowercase,
            )
            .into(),
        );
    } else {
        if cfg.strip_accents {
            v.extend([NFD.into(), StripAccents.into(), NFC.into()]);
        }
        if cfg.lowercase {
            v.push(Lowercase.into());
        }
    }
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(NormSeq::new(v).into()),
    }
}

fn cjk_split() -> Result<PreTokenizerWrapper> {
    Split::new(
        SplitPattern::Regex(CJK_CLASS.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map(Into::into)
    .map_err(|e| TokenizeError::Train(e.to_string()))
}

fn specials(cfg: &TrainConfig) -> Vec<AddedToken> {
    cfg.special_tokens
        .iter()
        .map(|s| AddedToken::from(s.clone(), true))
        .collect()
}

/// Trains a tokenizer on `texts`.
pub fn train<I>(cfg: &TrainConfig, texts: I) -> Result<Tokenizer>
where
    I: Iterator<Item = String> + Send,
{
    if cfg.vocab_size <= cfg.special_tokens.len() {
        return Err(TokenizeError::Invalid(format!(
            "--vocab-size {} leaves no room beyond the {} special tokens",
            cfg.vocab_size,
            cfg.special_tokens.len()
        )));
    }
    let err = |e: tokenizers::Error| TokenizeError::Train(e.to_string());
    let sp = specials(cfg);
    let (mut tk, mut trainer): (tokenizers::Tokenizer, TrainerWrapper) = match cfg.model {
        ModelKind::Bpe => {
            let mut tk = tokenizers::Tokenizer::new(BPE::default());
            let bl = ByteLevel::new(false, true, true);
            let pre: PreTokenizerWrapper = match cfg.cjk {
                CjkMode::Keep => bl.into(),
                CjkMode::Split => PreSeq::new(vec![cjk_split()?, bl.into()]).into(),
            };
            tk.with_pre_tokenizer(Some(pre));
            tk.with_post_processor(Some(bl));
            tk.with_decoder(Some(bl));
            let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
            let trainer = BpeTrainer::builder()
                .vocab_size(cfg.vocab_size)
                .min_frequency(cfg.min_frequency)
                .special_tokens(sp.clone())
                .initial_alphabet(alphabet)
                .show_progress(false)
                .build();
            (tk, trainer.into())
        }
        ModelKind::WordPiece => {
            let unk = cfg
                .special_tokens
                .iter()
                .find(|s| s.contains("UNK") || s.contains("unk"))
                .cloned()
                .unwrap_or_else(|| "[UNK]".into());
            let model = WordPiece::builder().unk_token(unk).build().map_err(err)?;
            let mut tk = tokenizers::Tokenizer::new(model);
            tk.with_pre_tokenizer(Some(BertPreTokenizer));
            tk.with_decoder(Some(tokenizers::decoders::wordpiece::WordPiece::default()));
            let trainer = WordPieceTrainer::builder()
                .vocab_size(cfg.vocab_size)
                .min_frequency(cfg.min_frequency)
                .special_tokens(sp.clone())
                .show_progress(false)
                .build();
            (tk, trainer.into())
        }
        ModelKind::Unigram => {
            let mut tk = tokenizers::Tokenizer::new(Unigram::default());
            let ms = Metaspace::new('▁', PrependScheme::Always, true);
            let pre: PreTokenizerWrapper = match cfg.cjk {
                CjkMode::Keep => ms.clone().into(),
                CjkMode::Split => PreSeq::new(vec![cjk_split()?, ms.clone().into()]).into(),
            };
            tk.with_pre_tokenizer(Some(pre));
            tk.with_decoder(Some(ms));
            let unk = cfg
                .special_tokens
                .iter()
                .find(|s| s.to_lowercase().contains("unk"))
                .cloned();
            let trainer = UnigramTrainer::builder()
                .vocab_size(cfg.vocab_size as u32)
                .special_tokens(sp.clone())
                .unk_token(unk)
                .show_progress(false)
                .build()
                .map_err(|e| TokenizeError::Train(e.to_string()))?;
            (tk, trainer.into())
        }
    };
    tk.with_normalizer(normalizer(cfg)).map_err(err)?;
    let cut = cfg.special_tokens.clone();
    let mut pieces = texts.flat_map(move |t| split_on_specials(t, &cut));
    // Up to the first piece with text: none is an error (the trainers would
    // return an empty vocabulary, or panic inside, on no input).
    let mut head = Vec::new();
    loop {
        let Some(p) = pieces.next() else {
            return Err(TokenizeError::Invalid(
                "no documents to train the tokenizer on: the inputs gave no text (every record \
                 was dropped or failed, the files are empty, or --max-docs/--sample-bytes is 0)"
                    .into(),
            ));
        };
        let blank = p.trim().is_empty();
        head.push(p);
        if !blank {
            break;
        }
    }
    tk.train(&mut trainer, head.into_iter().chain(pieces))
        .map_err(err)?;
    tk.add_special_tokens(sp).map_err(err)?;
    if cfg.model == ModelKind::WordPiece {
        if let (Some(sep), Some(cls)) = (tk.token_to_id("[SEP]"), tk.token_to_id("[CLS]")) {
            tk.with_post_processor(Some(BertProcessing::new(
                ("[SEP]".into(), sep),
                ("[CLS]".into(), cls),
            )));
        }
    }
    Ok(Tokenizer::from_hf(tk, Path::new("<trained>")))
}

/// Cuts `text` at every occurrence of a special token, dropping the tokens.
fn split_on_specials(text: String, specials: &[String]) -> Vec<String> {
    if !specials
        .iter()
        .any(|s| !s.is_empty() && text.contains(s.as_str()))
    {
        return vec![text];
    }
    let mut parts = vec![text];
    for s in specials.iter().filter(|s| !s.is_empty()) {
        parts = parts
            .into_iter()
            .flat_map(|p| p.split(s.as_str()).map(str::to_owned).collect::<Vec<_>>())
            .collect();
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Caps on the training input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TextLimits {
    /// Stop after this many documents in all (`None`: no cap).
    pub max_docs: Option<u64>,
    /// At most this many text bytes in all, split evenly across the files.
    pub sample_bytes: Option<u64>,
}

/// Streams document texts from `inputs` with the corpus readers, within
/// `limits`. Records the readers drop or fail are skipped.
pub fn texts(
    inputs: Vec<InputFile>,
    reader: ReaderOptions,
    limits: TextLimits,
    bytes_read: Arc<AtomicU64>,
) -> impl Iterator<Item = String> + Send {
    let n = inputs.len().max(1) as u64;
    let per_file = limits.sample_bytes.map(|b| (b / n).max(1));
    let docs = inputs.into_iter().flat_map(move |f| {
        let stream = readers::open(&f.path, &f.source, &reader, bytes_read.clone());
        let mut used = 0u64;
        stream
            .filter_map(|item| match item {
                Item::Doc(d) => Some(d.text),
                _ => None,
            })
            .take_while(move |t| {
                let ok = per_file.is_none_or(|cap| used < cap);
                used += t.len() as u64;
                ok
            })
    });
    let max = limits.max_docs.unwrap_or(u64::MAX);
    docs.take(usize::try_from(max).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_on_no_documents_is_an_error() {
        for model in [ModelKind::Bpe, ModelKind::WordPiece, ModelKind::Unigram] {
            let cfg = TrainConfig::new(model, 300);
            let e = train(&cfg, Vec::<String>::new().into_iter())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("no documents"), "{model:?}: {e}");
            let blank = vec!["  \n".to_string()];
            assert!(train(&cfg, blank.into_iter()).is_err(), "{model:?}");
        }
    }

    #[test]
    fn specials_are_cut_out() {
        let s = vec!["<|endoftext|>".to_string()];
        assert_eq!(
            split_on_specials("a<|endoftext|>b<|endoftext|>".into(), &s),
            vec!["a", "b"]
        );
        assert_eq!(split_on_specials("plain".into(), &s), vec!["plain"]);
    }
}

//! `cloze`: prompt-based (PET-style) classification with a masked LM.
//!
//! A template turns each example into a cloze question, `"{text} It was [MASK]."`, and a
//! verbaliser maps every label to a word (`positive → great`, `negative → terrible`). The
//! score of a label is the mean log-probability the MLM head gives to its word's tokens at
//! the mask positions; the scores are the classifier's logits, so zero-shot classification is
//! an evaluation of the pretrained MLM, and few-shot training (`data.few_shot = k`) minimises
//! the cross-entropy of those scores (PET's loss for single-token verbalisers).
//!
//! Multi-token words: the template gets as many `[MASK]`s as the longest word has tokens; a
//! word of `n` tokens is scored on the first `n` masks (mean of its token log-probabilities),
//! so words of different lengths compete on a per-token scale.
//!
//! Needs a checkpoint with an MLM head (`BertForPreTraining`, e.g. `refinery pretrain
//! --preset bert-tiny`); all-MiniLM-L6-v2 has none. The text (and `{text_pair}`) is truncated
//! to fit `max_len` with the template kept whole; a literal mask token in the text is
//! replaced by `[UNK]`, so the only masks are the template's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::hf::{load_bert, read_bert_config, save_bert};
use refinery_model::{BertConfig, BertForPreTraining, OutputOptions};
use refinery_tokenize::Tokenizer;
use serde::{Deserialize, Serialize};

use super::classify::{classification_summary, labelled_split, TASK_FILE, TOKENIZER_FILE};
use super::{int_tensor, Loss, Outputs, Task, TaskSpec};
use crate::config::{bad, init_paths, training_labels, CheckContext, ModelSection};
use crate::data::labelled::{ClassBatch, ClassSource, Encoded, Fields, LabelSet, LabelledFile};
use crate::data::{BatchSource, DataConfig, DataSplit};
use crate::error::TrainError;
use crate::metrics::MetricSums;
use crate::objectives::classify::Confusion;

/// The mask placeholder in templates.
pub const MASK: &str = "[MASK]";

/// `[task]` of `cloze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClozeSection {
    pub kind: String,
    /// With `{text}` (and optionally `{text_pair}`) and one `[MASK]`.
    pub template: String,
    /// Label → word.
    pub verbalizer: BTreeMap<String, String>,
    /// Label order (default: the training file's).
    pub labels: Option<Vec<String>>,
    pub max_len: Option<usize>,
}

impl Default for ClozeSection {
    fn default() -> Self {
        Self {
            kind: ClozeSpec::KIND.into(),
            template: "{text} It was [MASK].".into(),
            verbalizer: BTreeMap::new(),
            labels: None,
            max_len: None,
        }
    }
}

impl ClozeSection {
    pub(crate) fn check(
        &self,
        file: &str,
        m: &ModelSection,
        d: &DataConfig,
        ctx: &CheckContext,
    ) -> Result<super::AnyTaskSpec, TrainError> {
        let (init, tokenizer) = init_paths(file, m, ctx)?;
        let fields = d.fields();
        let labels = training_labels(file, self.labels.as_ref(), d, &fields)?;
        let model = read_bert_config(&init).map_err(|e| bad(file, "model.init", e))?;
        let verbalizer = labels
            .iter()
            .map(|l| {
                self.verbalizer.get(l).cloned().ok_or_else(|| {
                    bad(
                        file,
                        "task.verbalizer",
                        format!("no word for label {l:?} (labels: {})", labels.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ClozeSpec {
            max_len: self
                .max_len
                .unwrap_or(128)
                .min(model.max_position_embeddings),
            model,
            init: Some(init),
            tokenizer,
            labels,
            template: self.template.clone(),
            verbalizer,
            fields,
        };
        spec.build(None).map_err(|e| bad(file, "task", e))?;
        Ok(super::AnyTaskSpec::Cloze(spec))
    }
}

/// Cloze classification settings (saved in `trainer_state.json` and `task.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeSpec {
    pub model: BertConfig,
    #[serde(default)]
    pub init: Option<PathBuf>,
    pub tokenizer: PathBuf,
    /// Label names in id order.
    pub labels: Vec<String>,
    pub template: String,
    /// The word of each label (same order as `labels`).
    pub verbalizer: Vec<String>,
    pub max_len: usize,
    #[serde(default)]
    pub fields: Fields,
}

impl TaskSpec for ClozeSpec {
    const KIND: &'static str = "cloze";
    type Task = ClozeTask;

    fn build(&self, checkpoint: Option<&Path>) -> Result<ClozeTask, TrainError> {
        self.model.validate()?;
        let err = |m: String| TrainError::InvalidConfig(format!("cloze: {m}"));
        if self.labels.len() < 2 || self.labels.len() != self.verbalizer.len() {
            return Err(err(format!(
                "{} labels and {} verbaliser words (need ≥ 2, one word per label)",
                self.labels.len(),
                self.verbalizer.len()
            )));
        }
        if self.template.matches(MASK).count() != 1 || !self.template.contains("{text}") {
            return Err(err(format!(
                "the template {:?} needs {{text}} and exactly one {MASK}",
                self.template
            )));
        }
        let path = match checkpoint.map(|d| d.join(TOKENIZER_FILE)) {
            Some(p) if p.is_file() => p,
            _ => self.tokenizer.clone(),
        };
        let tok = Tokenizer::load(&path)?;
        if tok.vocab_size() > self.model.vocab_size {
            return Err(err(format!(
                "{}: the tokenizer has {} ids, the model's embeddings {}",
                path.display(),
                tok.vocab_size(),
                self.model.vocab_size
            )));
        }
        let id = |name: &str| {
            tok.token_to_id(name)
                .ok_or_else(|| err(format!("{}: no {name} token", path.display())))
        };
        let (cls, sep, mask, unk) = (id("[CLS]")?, id("[SEP]")?, id(MASK)?, id("[UNK]")?);
        let words = self
            .verbalizer
            .iter()
            .map(|w| {
                let ids = tok
                    .encode(w)
                    .map_err(|e| err(format!("verbaliser word {w:?}: {e}")))?;
                if ids.is_empty() {
                    return Err(err(format!("verbaliser word {w:?} has no tokens")));
                }
                Ok(ids)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let masks = words.iter().map(Vec::len).max().unwrap_or(1);
        Ok(ClozeTask {
            spec: self.clone(),
            tokenizer: Arc::new(tok),
            tokenizer_json: Arc::new(super::classify::read_tokenizer_bytes(&path)?),
            cls,
            sep,
            mask,
            unk,
            words,
            masks,
        })
    }
}

/// The runtime of [`ClozeSpec`].
#[derive(Debug, Clone)]
pub struct ClozeTask {
    pub spec: ClozeSpec,
    tokenizer: Arc<Tokenizer>,
    /// The tokenizer file's bytes, written into every saved model as `tokenizer.json`.
    tokenizer_json: Arc<Vec<u8>>,
    cls: u32,
    sep: u32,
    mask: u32,
    unk: u32,
    /// Token ids of each label's word.
    pub words: Vec<Vec<u32>>,
    /// `[MASK]`s in the template (the longest word's tokens).
    pub masks: usize,
}

/// A batch and the flat positions (`row · T + t`) of its masks, `masks` per row.
pub struct ClozeInput {
    pub batch: ClassBatch,
    pub mask_positions: Vec<i64>,
}

impl ClozeTask {
    fn encode_piece(&self, text: &str) -> Result<Vec<u32>, TrainError> {
        let ids = self
            .tokenizer
            .encode(text)
            .map_err(|e| TrainError::InvalidConfig(format!("tokenizer: {e}")))?;
        Ok(ids
            .into_iter()
            .map(|t| if t == self.mask { self.unk } else { t })
            .collect())
    }

    /// `[CLS] template(text, pair) [SEP]` with `masks` mask tokens, the text truncated.
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        label: i64,
    ) -> Result<Encoded, TrainError> {
        // The template as pieces: literal text, {text}, {text_pair}, [MASK].
        enum Piece {
            Lit(Vec<u32>),
            Text,
            Pair,
            Mask,
        }
        let mut pieces = Vec::new();
        let mut rest = self.spec.template.as_str();
        while !rest.is_empty() {
            let next = ["{text}", "{text_pair}", MASK]
                .iter()
                .filter_map(|m| rest.find(m).map(|i| (i, *m)))
                .min();
            match next {
                Some((i, m)) => {
                    if i > 0 {
                        pieces.push(Piece::Lit(self.encode_piece(&rest[..i])?));
                    }
                    pieces.push(match m {
                        "{text}" => Piece::Text,
                        "{text_pair}" => Piece::Pair,
                        _ => Piece::Mask,
                    });
                    rest = &rest[i + m.len()..];
                }
                None => {
                    pieces.push(Piece::Lit(self.encode_piece(rest)?));
                    rest = "";
                }
            }
        }
        let fixed: usize = 2
            + self.masks
            + pieces
                .iter()
                .map(|p| match p {
                    Piece::Lit(v) => v.len(),
                    _ => 0,
                })
                .sum::<usize>();
        let room = self.spec.max_len.saturating_sub(fixed);
        let mut a = self.encode_piece(text)?;
        let mut b = match pair {
            Some(p) => self.encode_piece(p)?,
            None => Vec::new(),
        };
        if a.len() + b.len() > room {
            // Longest first, as the plain classifier truncates pairs.
            while a.len() + b.len() > room {
                if a.len() >= b.len() {
                    a.pop();
                } else {
                    b.pop();
                }
            }
        }
        let mut ids = vec![self.cls];
        for p in &pieces {
            match p {
                Piece::Lit(v) => ids.extend(v),
                Piece::Text => ids.extend(&a),
                Piece::Pair => ids.extend(&b),
                Piece::Mask => ids.extend(std::iter::repeat_n(self.mask, self.masks)),
            }
        }
        ids.push(self.sep);
        let n = ids.len();
        Ok(Encoded {
            ids,
            type_ids: vec![0; n],
            label,
        })
    }

    fn encode_file(&self, file: &LabelledFile, ids: &[usize]) -> Result<Vec<Encoded>, TrainError> {
        file.examples
            .iter()
            .zip(ids)
            .map(|(e, &l)| {
                self.encode(&e.text, e.text_pair.as_deref(), l as i64)
                    .map_err(|err| TrainError::Data {
                        path: file.path.clone(),
                        message: format!("line {}: {err}", e.line),
                    })
            })
            .collect()
    }

    /// `[masks, C]` token ids and weights (`1/n` on a word's `n` masks, 0 after).
    fn word_table(&self) -> (Vec<i64>, Vec<f32>) {
        let c = self.words.len();
        let mut ids = vec![0i64; self.masks * c];
        let mut w = vec![0f32; self.masks * c];
        for (label, word) in self.words.iter().enumerate() {
            for (i, &t) in word.iter().enumerate() {
                ids[i * c + label] = i64::from(t);
                w[i * c + label] = 1.0 / word.len() as f32;
            }
        }
        (ids, w)
    }
}

impl Task for ClozeTask {
    type Spec = ClozeSpec;
    type Model = BertForPreTraining;
    type Batch = ClassBatch;
    type Input = ClozeInput;

    fn spec(&self) -> &ClozeSpec {
        &self.spec
    }

    fn init_model(&self, device: &Device) -> Result<BertForPreTraining, TrainError> {
        match &self.spec.init {
            Some(init) => {
                let (config, model) = load_bert(init, device)?;
                super::check_same_config(init, &config, &self.spec.model)?;
                Ok(model)
            }
            None => Ok(self.spec.model.init(device)?),
        }
    }

    fn save_model(&self, model: &BertForPreTraining, dir: &Path) -> Result<(), TrainError> {
        save_bert(model, &self.spec.model, dir)?;
        super::classify::write_tokenizer(dir, &self.tokenizer_json)?;
        let path = dir.join(TASK_FILE);
        let text = serde_json::to_string_pretty(&self.spec).map_err(|source| TrainError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| TrainError::Io { path, source })
    }

    fn load_model(&self, dir: &Path, device: &Device) -> Result<BertForPreTraining, TrainError> {
        let (config, model) = load_bert(dir, device)?;
        super::check_same_config(dir, &config, &self.spec.model)?;
        Ok(model)
    }

    fn prepare(&self, batch: ClassBatch, _seed: u64) -> Result<ClozeInput, TrainError> {
        let mask = i64::from(self.mask);
        let mask_positions: Vec<i64> = batch
            .input_ids
            .iter()
            .enumerate()
            .filter(|(_, &t)| t == mask)
            .map(|(i, _)| i as i64)
            .collect();
        if mask_positions.len() != batch.batch_size * self.masks {
            return Err(TrainError::InvalidConfig(format!(
                "cloze: {} mask tokens in a batch of {} rows (expected {} per row)",
                mask_positions.len(),
                batch.batch_size,
                self.masks
            )));
        }
        Ok(ClozeInput {
            batch,
            mask_positions,
        })
    }
    fn num_tokens(&self, input: &ClozeInput) -> usize {
        input.batch.num_tokens()
    }

    fn forward(
        &self,
        model: &BertForPreTraining,
        input: &ClozeInput,
        device: &Device,
        opts: OutputOptions,
    ) -> Result<Outputs, TrainError> {
        let (ids, types, mask) = input.batch.tensors(device); // [B, T] each
        let out = model.bert.forward(ids, Some(types), Some(mask), opts);
        let [n, t, d] = out.last_hidden_state.dims();
        let (m, c) = (self.masks, self.words.len());
        let k = input.mask_positions.len();
        let at_masks = out
            .last_hidden_state
            .reshape([n * t, d])
            .select(0, int_tensor(input.mask_positions.clone(), [k], device))
            .reshape([1, k, d]); // [1, B·M, D]
        let logp = log_softmax(
            model.mlm_logits(at_masks).reshape([k, model_vocab(model)]),
            1,
        ); // [B·M, V]
        let (ids, w) = self.word_table();
        // index[b·M + i, c] = token i of word c; weight 1/n on a word's n masks.
        let index = Tensor::<2, Int>::from_data(TensorData::new(ids, [m, c]), device)
            .reshape([1, m, c])
            .repeat_dim(0, n)
            .reshape([k, c]);
        let weight = Tensor::<2>::from_data(TensorData::new(w, [m, c]), device)
            .reshape([1, m, c])
            .repeat_dim(0, n); // [B, M, C]
        let scores = (logp.gather(1, index).reshape([n, m, c]) * weight)
            .sum_dim(1)
            .reshape([n, 1, c]); // [B, 1, C]
        Ok(Outputs {
            logits: scores,
            aux: Vec::new(),
            hidden_states: out.hidden_states,
            attentions: out.attentions,
        })
    }

    fn loss(
        &self,
        input: &ClozeInput,
        out: &Outputs,
        device: &Device,
        metrics: bool,
    ) -> Result<Loss, TrainError> {
        super::classify::classifier_loss(&out.logits, &input.batch.labels, None, device, metrics)
    }

    fn summarize(&self, sums: &MetricSums) -> BTreeMap<String, f64> {
        classification_summary(sums, &self.spec.labels)
    }

    fn details(&self, sums: &MetricSums) -> Option<serde_json::Value> {
        serde_json::to_value(Confusion::from_sums(sums, &self.spec.labels)).ok()
    }

    fn open_source(
        &self,
        data: &DataConfig,
        split: DataSplit,
    ) -> Result<Box<dyn BatchSource<ClassBatch> + Send>, TrainError> {
        let labels = LabelSet {
            labels: self.spec.labels.clone(),
        };
        let (file, ids, chosen) = labelled_split(data, &self.spec.fields, &labels, split)?;
        let all = self.encode_file(&file, &ids)?;
        let rows: Vec<Encoded> = chosen.iter().map(|&i| all[i].clone()).collect();
        let seed = (split == DataSplit::Train).then_some(data.seed);
        let pad = self.spec.model.pad_token_id.unwrap_or(0);
        Ok(Box::new(ClassSource::new(
            Arc::new(rows),
            data.batch_size,
            pad,
            0,
            seed,
        )?))
    }
}

fn model_vocab(model: &BertForPreTraining) -> usize {
    let [v, _] = model.bert.word_embeddings.weight.val().dims();
    v
}

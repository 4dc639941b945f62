//! The language annotator.

use std::path::PathBuf;

use refinery_corpus::{Annotator, Document};
use serde::{Deserialize, Serialize};

use crate::fasttext::Detector;
use crate::{round4, ConfigError, DEFAULT_MAX_CHARS};

/// The `metadata.lang` of a document in which no language was detected
/// (empty text, digits and punctuation only, an unsupported script); its
/// `lang_score` is `0.0`.
///
/// Every annotated document thus carries a label: per-language counts
/// partition the corpus, "annotated but undetectable" stays distinct from
/// "never annotated" (`lang` absent), and a [`crate::LangFilter`] with
/// `languages` set drops such documents as `langid:other_language` (unless
/// `"unknown"` is listed) while one with `min_score > 0` drops them as
/// `langid:low_score`.
pub const UNKNOWN: &str = "unknown";

/// Configuration of [`LangIdAnnotator`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LangIdConfig {
    /// Characters of the text that detection looks at. Default
    /// [`DEFAULT_MAX_CHARS`] (2000); must be at least 1.
    pub max_chars: usize,
    /// A fastText model file (`.bin` or `.ftz`, e.g. `lid.176.ftz`) to use
    /// instead of the built-in whatlang model; loaded once per process.
    /// Labels are then the model's (`__label__` stripped) and the score is
    /// the top label's probability. Unset (the default): built-in model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
}

impl Default for LangIdConfig {
    fn default() -> Self {
        LangIdConfig {
            max_chars: DEFAULT_MAX_CHARS,
            model: None,
        }
    }
}

impl LangIdConfig {
    /// Checks the config and builds the annotator.
    pub fn validate(self) -> Result<LangIdAnnotator, ConfigError> {
        if self.max_chars == 0 {
            return Err(ConfigError::new("max_chars", "must be at least 1"));
        }
        Ok(LangIdAnnotator {
            max_chars: self.max_chars,
            detector: Detector::new(self.model.as_deref())?,
        })
    }
}

/// Sets `metadata.lang` (ISO 639-1 where one exists, else ISO 639-3; or
/// [`UNKNOWN`]) and `metadata.lang_score` (whatlang's confidence rounded to 4
/// decimals; `0.0` for [`UNKNOWN`]). Overwrites earlier values. Stateless, so
/// one instance per task costs nothing.
///
/// With [`LangIdConfig::model`] set, the label is the fastText model's (e.g.
/// lid.176's `en`, `zh`, `no`, `als`) and the score its probability, on the
/// first `max_chars` characters with newlines read as spaces (as datatrove's
/// `FT176LID`); blank text is still [`UNKNOWN`]. The model is shared by
/// every instance.
#[derive(Clone, Debug)]
pub struct LangIdAnnotator {
    max_chars: usize,
    detector: Detector,
}

impl LangIdAnnotator {
    /// Same as [`LangIdConfig::validate`].
    pub fn new(config: LangIdConfig) -> Result<Self, ConfigError> {
        config.validate()
    }
}

impl Annotator for LangIdAnnotator {
    fn annotate(&mut self, doc: &mut Document) {
        let (lang, score) = self.detector.detect(&doc.text, self.max_chars);
        doc.metadata.lang = Some(lang.to_string());
        doc.metadata.lang_score = Some(round4(score));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(text: &str) -> Document {
        let mut a = LangIdAnnotator::new(LangIdConfig::default()).unwrap();
        let mut d = Document::new("1", text, "mem");
        a.annotate(&mut d);
        d
    }

    #[test]
    fn sets_lang_and_rounded_score() {
        let d = annotated(
            "Le gouvernement a annoncé hier une nouvelle série de mesures pour les entreprises.",
        );
        assert_eq!(d.metadata.lang.as_deref(), Some("fr"));
        let s = d.metadata.lang_score.unwrap();
        assert!((0.0..=1.0).contains(&s));
        assert_eq!(s, round4(s));
    }

    #[test]
    fn scores_are_rounded_to_four_decimals() {
        // A short, ambiguous text gets a confidence strictly between 0 and 1.
        let d = annotated("Nie wiem");
        let s = d.metadata.lang_score.unwrap();
        assert_eq!(s, round4(s));
        assert!(format!("{s}").len() <= 6, "{s}");
    }

    #[test]
    fn undetectable_text_is_unknown_with_zero_score() {
        for text in ["", "   ", "1234 5678 !!!"] {
            let d = annotated(text);
            assert_eq!(d.metadata.lang.as_deref(), Some(UNKNOWN), "{text:?}");
            assert_eq!(d.metadata.lang_score, Some(0.0));
        }
    }

    #[test]
    fn text_is_not_changed() {
        let text = "Die Stadtverwaltung hat beschlossen, die alte Brücke zu erneuern.";
        assert_eq!(annotated(text).text, text);
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: LangIdConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, LangIdConfig::default());
        assert_eq!(c.max_chars, 2000);
        let err = LangIdConfig {
            max_chars: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "max_chars");
        assert!(err.to_string().starts_with("max_chars:"), "{err}");
        assert!(serde_json::from_str::<LangIdConfig>(r#"{"max_char": 5}"#).is_err());
    }
}

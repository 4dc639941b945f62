//! The language filter.

use std::path::PathBuf;

use refinery_corpus::{Document, Filter, Verdict};
use serde::{Deserialize, Serialize};

use crate::fasttext::Detector;
use crate::{codes, round4, ConfigError, DEFAULT_MAX_CHARS, UNKNOWN};

/// Drop reason: the document's language is not in `languages`.
pub const REASON_OTHER_LANGUAGE: &str = "langid:other_language";
/// Drop reason: the language is allowed but its score is below `min_score`.
pub const REASON_LOW_SCORE: &str = "langid:low_score";

/// Configuration of [`LangFilter`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LangFilterConfig {
    /// Languages to keep, as labels like those in `metadata.lang`: ISO 639-1
    /// where one exists (`en`, `zh`), else ISO 639-3; `"unknown"` keeps
    /// documents with no detectable language. Empty (the default) keeps any
    /// language.
    pub languages: Vec<String>,
    /// Minimum language score (whatlang confidence, rounded to 4 decimals)
    /// to keep a document, in `[0, 1]`. Default `0.0`: no score check.
    ///
    /// Whatlang's confidence is not a calibrated probability. On the lingua
    /// dev sentences, 80% of correct labels score 1.0 and 91% score ≥ 0.5,
    /// while wrong labels (mostly languages whatlang does not know) spread
    /// over the whole range: 28% score 1.0, 47% ≥ 0.5. So `0.5` removes
    /// about half the errors for 9% of the good documents; higher values
    /// mostly drop short or mixed-language texts.
    pub min_score: f64,
    /// Characters looked at when the filter has to detect the language
    /// itself; default 2000, at least 1.
    pub max_chars: usize,
    /// The fastText model the filter detects with when the document has no
    /// `lang`/`lang_score` yet (see [`crate::LangIdConfig::model`]); unset:
    /// the built-in model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
}

impl Default for LangFilterConfig {
    fn default() -> Self {
        LangFilterConfig {
            languages: Vec::new(),
            min_score: 0.0,
            max_chars: DEFAULT_MAX_CHARS,
            model: None,
        }
    }
}

impl LangFilterConfig {
    /// Checks the config and builds the filter.
    ///
    /// Rejects: `min_score` outside `[0, 1]` or NaN; `max_chars == 0`; a
    /// language that is not `"unknown"` or 2–3 lowercase ASCII letters; and
    /// an ISO 639-3 code that has an ISO 639-1 label (`eng`: labels use `en`,
    /// so it would never match).
    pub fn validate(self) -> Result<LangFilter, ConfigError> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(ConfigError::new(
                "min_score",
                format!("must be within [0, 1], got {}", self.min_score),
            ));
        }
        if self.max_chars == 0 {
            return Err(ConfigError::new("max_chars", "must be at least 1"));
        }
        for (i, l) in self.languages.iter().enumerate() {
            let field = format!("languages[{i}]");
            if l == UNKNOWN {
                continue;
            }
            if !(2..=3).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(ConfigError::new(
                    field,
                    format!("{l:?} is not a language label: expected 2 or 3 lowercase letters (ISO 639-1 or 639-3) or \"unknown\""),
                ));
            }
            if l.len() == 3 {
                if let Some(short) = whatlang::Lang::from_code(l.as_str()).and_then(codes::iso639_1)
                {
                    return Err(ConfigError::new(
                        field,
                        format!("{l:?} is ISO 639-3; labels are ISO 639-1 where one exists: use {short:?}"),
                    ));
                }
            }
        }
        Ok(LangFilter {
            detector: Detector::new(self.model.as_deref())?,
            languages: self.languages,
            min_score: self.min_score,
            max_chars: self.max_chars,
        })
    }
}

/// Keeps documents whose language is in `languages` (any, if empty) with a
/// score of at least `min_score`.
///
/// The language comes from `metadata.lang` and `metadata.lang_score` when
/// both are set (e.g. by a [`crate::LangIdAnnotator`] earlier in the
/// pipeline); otherwise the filter detects it, exactly as the annotator
/// would, but cannot record it (filters see the document read-only). Put
/// the annotator first to keep the labels.
///
/// Checks, in order: language ([`REASON_OTHER_LANGUAGE`]), then score
/// ([`REASON_LOW_SCORE`]).
#[derive(Clone, Debug)]
pub struct LangFilter {
    detector: Detector,
    languages: Vec<String>,
    min_score: f64,
    max_chars: usize,
}

impl LangFilter {
    /// Same as [`LangFilterConfig::validate`].
    pub fn new(config: LangFilterConfig) -> Result<Self, ConfigError> {
        config.validate()
    }
}

impl Filter for LangFilter {
    fn filter(&mut self, doc: &Document) -> Verdict {
        let (lang, score) = match (&doc.metadata.lang, doc.metadata.lang_score) {
            (Some(lang), Some(score)) => (lang.as_str(), score),
            _ => {
                let (lang, score) = self.detector.detect(&doc.text, self.max_chars);
                (lang, round4(score))
            }
        };
        if !self.languages.is_empty() && !self.languages.iter().any(|l| l == lang) {
            return Verdict::drop(REASON_OTHER_LANGUAGE);
        }
        if score < self.min_score {
            return Verdict::drop(REASON_LOW_SCORE);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_corpus::Annotator;

    const EN: &str =
        "The committee will publish its final report on the state of public libraries next month.";
    const DE: &str = "Die Stadtverwaltung hat beschlossen, die alte Brücke über den Fluss im nächsten Jahr zu erneuern.";

    fn filter(languages: &[&str], min_score: f64) -> LangFilter {
        LangFilterConfig {
            languages: languages.iter().map(|s| s.to_string()).collect(),
            min_score,
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    fn doc(text: &str) -> Document {
        Document::new("1", text, "mem")
    }

    fn labelled(lang: &str, score: f64) -> Document {
        let mut d = doc(EN);
        d.metadata.lang = Some(lang.into());
        d.metadata.lang_score = Some(score);
        d
    }

    #[test]
    fn other_language_is_dropped() {
        let mut f = filter(&["en", "fr"], 0.0);
        assert_eq!(f.filter(&doc(EN)), Verdict::Keep);
        assert_eq!(f.filter(&doc(DE)), Verdict::drop(REASON_OTHER_LANGUAGE));
        assert_eq!(REASON_OTHER_LANGUAGE, "langid:other_language");
    }

    #[test]
    fn low_score_is_dropped() {
        let mut f = filter(&[], 0.5);
        assert_eq!(
            f.filter(&labelled("en", 0.4999)),
            Verdict::drop(REASON_LOW_SCORE)
        );
        assert_eq!(f.filter(&labelled("en", 0.5)), Verdict::Keep);
        // Undetectable text scores 0.
        assert_eq!(f.filter(&doc("1234 !!!")), Verdict::drop(REASON_LOW_SCORE));
        assert_eq!(REASON_LOW_SCORE, "langid:low_score");
    }

    #[test]
    fn language_is_checked_before_score() {
        let mut f = filter(&["de"], 0.9);
        assert_eq!(
            f.filter(&labelled("en", 0.1)),
            Verdict::drop(REASON_OTHER_LANGUAGE)
        );
    }

    #[test]
    fn empty_languages_keep_any_language() {
        let mut f = filter(&[], 0.0);
        for t in [EN, DE, "", "!!!"] {
            assert_eq!(f.filter(&doc(t)), Verdict::Keep);
        }
    }

    #[test]
    fn metadata_is_used_when_present() {
        // The text is English, but the metadata says German: metadata wins.
        let mut f = filter(&["de"], 0.0);
        assert_eq!(f.filter(&labelled("de", 1.0)), Verdict::Keep);
        // lang without score: detect instead.
        let mut d = doc(EN);
        d.metadata.lang = Some("de".into());
        assert_eq!(f.filter(&d), Verdict::drop(REASON_OTHER_LANGUAGE));
    }

    #[test]
    fn unknown_can_be_allowed_explicitly() {
        let mut f = filter(&["en", "unknown"], 0.0);
        assert_eq!(f.filter(&doc("1234 !!!")), Verdict::Keep);
        let mut f = filter(&["en"], 0.0);
        assert_eq!(
            f.filter(&doc("1234 !!!")),
            Verdict::drop(REASON_OTHER_LANGUAGE)
        );
    }

    #[test]
    fn detecting_and_reading_the_annotation_agree() {
        let mut a = crate::LangIdAnnotator::new(crate::LangIdConfig::default()).unwrap();
        for text in [EN, DE, "Nie wiem", "ok", "", "Вчера вечером мы гуляли"] {
            for min_score in [0.0, 0.3, 0.7, 1.0] {
                let mut f = filter(&["en", "de", "pl"], min_score);
                let plain = doc(text);
                let mut annotated = doc(text);
                a.annotate(&mut annotated);
                assert_eq!(
                    f.filter(&plain),
                    f.filter(&annotated),
                    "{text:?} {min_score}"
                );
            }
        }
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: LangFilterConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, LangFilterConfig::default());
        assert!(c.languages.is_empty());
        assert_eq!(c.min_score, 0.0);
        assert_eq!(c.max_chars, 2000);
        assert!(serde_json::from_str::<LangFilterConfig>(r#"{"language": ["en"]}"#).is_err());

        let bad = |c: LangFilterConfig| c.validate().unwrap_err();
        for s in [-0.1, 1.1, f64::NAN] {
            let e = bad(LangFilterConfig {
                min_score: s,
                ..Default::default()
            });
            assert_eq!(e.field, "min_score");
        }
        let e = bad(LangFilterConfig {
            max_chars: 0,
            ..Default::default()
        });
        assert_eq!(e.field, "max_chars");
        for (l, hint) in [
            ("EN", "lowercase"),
            ("english", "lowercase"),
            ("", "lowercase"),
            ("eng", "\"en\""),
            ("cmn", "\"zh\""),
        ] {
            let e = bad(LangFilterConfig {
                languages: vec!["fr".into(), l.into()],
                ..Default::default()
            });
            assert_eq!(e.field, "languages[1]", "{l}");
            assert!(e.message.contains(hint), "{l}: {e}");
        }
        // 639-3 codes without a 639-1 code, and "unknown", are fine.
        LangFilterConfig {
            languages: vec!["als".into(), "unknown".into(), "en".into()],
            min_score: 1.0,
            ..Default::default()
        }
        .validate()
        .unwrap();
    }
}

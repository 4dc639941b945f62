//! # refinery-langid
//!
//! Language identification with a built-in model that needs no external
//! files: a thin, deterministic wrapper around [`whatlang`] (trigram
//! profiles for 70 languages compiled into the binary).
//!
//! * [`detect`]: the label (ISO 639-1 where one exists, else ISO 639-3) and
//!   confidence of a text, looking at its first `max_chars` characters.
//! * [`LangIdAnnotator`]: sets `metadata.lang` and `metadata.lang_score`.
//! * [`LangFilter`]: keeps documents in an allowed set of languages with a
//!   minimum score.
//! * [`FastText`]: a pure-Rust reader and predictor for supervised fastText
//!   models (`.bin`, quantized `.ftz`) that reproduces official fastText,
//!   e.g. on `lid.176.ftz`; set `model` in [`LangIdConfig`] or
//!   [`LangFilterConfig`] to use one instead of the built-in model.
//!
//! ```
//! use refinery_corpus::{Annotator, Document, Filter, Verdict};
//! use refinery_langid::{detect, LangFilterConfig, LangIdAnnotator, LangIdConfig};
//!
//! let text = "The quick brown fox jumps over the lazy dog while the farmer watches.";
//! assert_eq!(detect(text, 2000).map(|(lang, _)| lang), Some("en"));
//!
//! let mut annotate = LangIdAnnotator::new(LangIdConfig::default())?;
//! let mut doc = Document::new("1", text, "mem");
//! annotate.annotate(&mut doc);
//! assert_eq!(doc.metadata.lang.as_deref(), Some("en"));
//!
//! let mut only_fr = LangFilterConfig { languages: vec!["fr".into()], ..Default::default() }.validate()?;
//! assert_eq!(only_fr.filter(&doc), Verdict::drop(refinery_langid::REASON_OTHER_LANGUAGE));
//! # Ok::<(), refinery_langid::ConfigError>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod annotator;
pub mod codes;
pub mod fasttext;
mod filter;

pub use annotator::{LangIdAnnotator, LangIdConfig, UNKNOWN};
pub use fasttext::{FastText, FastTextError};
pub use filter::{LangFilter, LangFilterConfig, REASON_LOW_SCORE, REASON_OTHER_LANGUAGE};

/// How many characters [`detect`] looks at by default.
///
/// Whatlang's cost is linear in the text it is given, while its accuracy
/// saturates after a few hundred characters of running text. 2000 chars (a
/// few paragraphs) bounds the cost on megabyte-sized pages and is still long
/// enough to get past a navigation menu or cookie banner at the top of an
/// extracted web page.
pub const DEFAULT_MAX_CHARS: usize = 2000;

/// A configuration value that makes no sense; `field` names it (shared by the stage crates).
pub use refinery_corpus::ConfigError;

/// Detects the language of the first `max_chars` characters of `text`.
///
/// Returns the label (ISO 639-1 where one exists, e.g. `en`, `zh`, `ja`; else
/// the ISO 639-3 code) and whatlang's confidence in `[0, 1]`, or `None` when
/// no language can be detected (empty text, digits and punctuation only, an
/// unsupported script, or `max_chars == 0`). The cut is on a char boundary.
pub fn detect(text: &str, max_chars: usize) -> Option<(&'static str, f64)> {
    let head = match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    let info = whatlang::detect(head)?;
    Some((codes::label(info.lang()), info.confidence()))
}

/// Rounds a score to 4 decimals, so written metadata is stable and filters
/// compare the same number whether they detect or read `lang_score`.
pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &[(&str, &str)] = &[
        ("en", "The committee will publish its final report on the state of public libraries next month."),
        ("fr", "Le gouvernement a annoncé hier une nouvelle série de mesures pour soutenir les petites entreprises."),
        ("de", "Die Stadtverwaltung hat beschlossen, die alte Brücke über den Fluss im nächsten Jahr zu erneuern."),
        ("es", "El ayuntamiento ha decidido ampliar el horario de las bibliotecas durante los meses de verano."),
        ("zh", "今天天气很好，我们一起去公园散步，然后在湖边的小餐馆吃午饭。"),
        ("ja", "今日はとても良い天気なので、友達と一緒に公園を散歩してから昼ご飯を食べました。"),
        ("ru", "Вчера вечером мы долго гуляли по старому городу и разговаривали о новых книгах."),
    ];

    #[test]
    fn detects_hand_written_sentences() {
        for &(want, text) in SAMPLES {
            let (got, score) =
                detect(text, DEFAULT_MAX_CHARS).unwrap_or_else(|| panic!("no language for {want}"));
            assert_eq!(got, want, "{text}");
            assert!((0.0..=1.0).contains(&score), "{score}");
            assert!(score > 0.5, "{want}: low score {score}");
        }
    }

    #[test]
    fn undetectable_text_is_none() {
        assert_eq!(detect("", DEFAULT_MAX_CHARS), None);
        assert_eq!(detect("12345 !!! ... 678", DEFAULT_MAX_CHARS), None);
        assert_eq!(detect(SAMPLES[0].1, 0), None);
    }

    #[test]
    fn max_chars_cuts_on_a_char_boundary() {
        // Multi-byte chars everywhere: a byte cut would panic.
        let text = "Вчера вечером мы долго гуляли по старому городу. The rest is English, a lot of English text here.";
        let (lang, _) = detect(text, 48).unwrap_or_else(|| panic!("nothing detected"));
        assert_eq!(lang, "ru");
        for n in 0..text.chars().count() + 2 {
            let _ = detect(text, n);
        }
        let (lang, _) = detect(text, usize::MAX).unwrap_or_else(|| panic!("nothing detected"));
        assert!(lang == "ru" || lang == "en");
    }

    #[test]
    fn round4_rounds_to_four_decimals() {
        assert_eq!(round4(0.123_456), 0.1235);
        assert_eq!(round4(1.0), 1.0);
        assert_eq!(round4(0.0), 0.0);
    }
}

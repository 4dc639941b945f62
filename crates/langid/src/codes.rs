//! Language labels: whatlang's ISO 639-3 codes mapped to ISO 639-1.

use whatlang::Lang;

/// The ISO 639-1 code of a whatlang language, if it has one.
///
/// The match is exhaustive over whatlang 0.18's 70 languages (all of which
/// happen to have a 639-1 code), so a whatlang upgrade that adds a language
/// fails to compile here instead of silently mislabelling it.
pub fn iso639_1(lang: Lang) -> Option<&'static str> {
    let code = match lang {
        Lang::Afr => "af",
        Lang::Aka => "ak",
        Lang::Amh => "am",
        Lang::Ara => "ar",
        Lang::Aze => "az",
        Lang::Bel => "be",
        Lang::Ben => "bn",
        Lang::Bul => "bg",
        Lang::Cat => "ca",
        Lang::Ces => "cs",
        // Mandarin: labelled `zh` like every other LID model's Chinese.
        Lang::Cmn => "zh",
        Lang::Cym => "cy",
        Lang::Dan => "da",
        Lang::Deu => "de",
        Lang::Ell => "el",
        Lang::Eng => "en",
        Lang::Epo => "eo",
        Lang::Est => "et",
        Lang::Fin => "fi",
        Lang::Fra => "fr",
        Lang::Guj => "gu",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Hrv => "hr",
        Lang::Hun => "hu",
        Lang::Hye => "hy",
        Lang::Ind => "id",
        Lang::Ita => "it",
        Lang::Jav => "jv",
        Lang::Jpn => "ja",
        Lang::Kan => "kn",
        Lang::Kat => "ka",
        Lang::Khm => "km",
        Lang::Kor => "ko",
        Lang::Lat => "la",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Mal => "ml",
        Lang::Mar => "mr",
        Lang::Mkd => "mk",
        Lang::Mya => "my",
        // Norwegian Bokmål (not the macrolanguage `no`).
        Lang::Nob => "nb",
        Lang::Nep => "ne",
        Lang::Nld => "nl",
        Lang::Ori => "or",
        Lang::Pan => "pa",
        // Iranian Persian: `fa` is the 639-1 code of the Persian macrolanguage.
        Lang::Pes => "fa",
        Lang::Pol => "pl",
        Lang::Por => "pt",
        Lang::Ron => "ro",
        Lang::Rus => "ru",
        Lang::Sin => "si",
        Lang::Slk => "sk",
        Lang::Slv => "sl",
        Lang::Sna => "sn",
        Lang::Spa => "es",
        Lang::Srp => "sr",
        Lang::Swe => "sv",
        Lang::Tam => "ta",
        Lang::Tel => "te",
        Lang::Tgl => "tl",
        Lang::Tha => "th",
        Lang::Tuk => "tk",
        Lang::Tur => "tr",
        Lang::Ukr => "uk",
        Lang::Urd => "ur",
        Lang::Uzb => "uz",
        Lang::Vie => "vi",
        Lang::Yid => "yi",
        Lang::Zul => "zu",
    };
    Some(code)
}

/// The label written to `metadata.lang`: ISO 639-1 where one exists, else
/// whatlang's ISO 639-3 code.
pub fn label(lang: Lang) -> &'static str {
    iso639_1(lang).unwrap_or_else(|| lang.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_whatlang_language_has_a_distinct_two_letter_label() {
        let mut seen = std::collections::BTreeSet::new();
        for &lang in Lang::all() {
            let l = label(lang);
            assert_eq!(l.len(), 2, "{lang:?} -> {l}");
            assert!(l.bytes().all(|b| b.is_ascii_lowercase()), "{l}");
            assert!(seen.insert(l), "duplicate label {l}");
        }
        assert_eq!(seen.len(), 70);
    }

    #[test]
    fn well_known_codes() {
        assert_eq!(label(Lang::Cmn), "zh");
        assert_eq!(label(Lang::Eng), "en");
        assert_eq!(label(Lang::Jpn), "ja");
        assert_eq!(label(Lang::Pes), "fa");
        assert_eq!(label(Lang::Nob), "nb");
        assert_eq!(label(Lang::Ell), "el");
    }
}

//! [`PiiModifier`]: replaces detected PII with placeholders and counts it.

use refinery_corpus::{Document, Modifier, Verdict};
use serde::{Deserialize, Serialize};

use crate::detect::{Detector, PiiKind, PiiMatch};
use crate::ConfigError;

/// The `metadata` key that receives the counts: `{"email": 2, "ip": 1}`.
pub const METADATA_KEY: &str = "pii";

/// Configuration of [`PiiModifier`]. The defaults follow FineWeb (e-mails
/// and public IPs anonymized, phone numbers not: too many false positives)
/// and add checksum-validated credit cards and IBANs.
///
/// Default placeholders look like the data they replace, as datatrove's
/// `PIIFormatter` does, but use reserved values: `email@example.com`
/// (RFC 2606), `192.0.2.1` and `2001:db8::1` (documentation ranges). The
/// detector ignores all of these, so running the stage twice changes
/// nothing. Cards, IBANs and phones become tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// Replace e-mail addresses (default true).
    pub emails: bool,
    /// Replace public IPv4 and IPv6 addresses (default true).
    pub ips: bool,
    /// Replace phone numbers (default false, as FineWeb).
    pub phones: bool,
    /// Replace Luhn-valid card numbers (default true).
    pub credit_cards: bool,
    /// Replace checksum-valid IBANs (default true).
    pub ibans: bool,
    /// Default `email@example.com`.
    pub email_placeholder: String,
    /// Default `192.0.2.1`.
    pub ipv4_placeholder: String,
    /// Default `2001:db8::1`.
    pub ipv6_placeholder: String,
    /// Default `<PHONE_NUMBER>`.
    pub phone_placeholder: String,
    /// Default `<CREDIT_CARD>`.
    pub credit_card_placeholder: String,
    /// Default `<IBAN>`.
    pub iban_placeholder: String,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            emails: true,
            ips: true,
            phones: false,
            credit_cards: true,
            ibans: true,
            email_placeholder: "email@example.com".into(),
            ipv4_placeholder: "192.0.2.1".into(),
            ipv6_placeholder: "2001:db8::1".into(),
            phone_placeholder: "<PHONE_NUMBER>".into(),
            credit_card_placeholder: "<CREDIT_CARD>".into(),
            iban_placeholder: "<IBAN>".into(),
        }
    }
}

impl PiiConfig {
    /// The enabled kinds.
    pub fn kinds(&self) -> Vec<PiiKind> {
        let on = [
            (PiiKind::Email, self.emails),
            (PiiKind::Ip, self.ips),
            (PiiKind::Phone, self.phones),
            (PiiKind::CreditCard, self.credit_cards),
            (PiiKind::Iban, self.ibans),
        ];
        on.into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect()
    }

    /// Checks the config and builds the modifier. Placeholders may be any
    /// string, including empty (the PII is then deleted), but not contain
    /// a newline, which would change the document's line structure.
    pub fn validate(self) -> Result<PiiModifier, ConfigError> {
        for (field, p) in [
            ("email_placeholder", &self.email_placeholder),
            ("ipv4_placeholder", &self.ipv4_placeholder),
            ("ipv6_placeholder", &self.ipv6_placeholder),
            ("phone_placeholder", &self.phone_placeholder),
            ("credit_card_placeholder", &self.credit_card_placeholder),
            ("iban_placeholder", &self.iban_placeholder),
        ] {
            if p.contains(['\n', '\r']) {
                return Err(ConfigError::new(field, "must not contain a line break"));
            }
        }
        let detector = Detector::new(&self.kinds()).map_err(|e| ConfigError::new("", e))?;
        Ok(PiiModifier {
            config: self,
            detector,
        })
    }
}

/// Replaces PII in `text` and adds the counts per kind to `metadata.pii`
/// (only non-zero counts; added to counts already there). Never drops.
#[derive(Clone, Debug)]
pub struct PiiModifier {
    config: PiiConfig,
    detector: Detector,
}

impl PiiModifier {
    /// Same as [`PiiConfig::validate`].
    pub fn new(config: PiiConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &PiiConfig {
        &self.config
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    fn placeholder(&self, m: &PiiMatch) -> &str {
        let c = &self.config;
        match m.kind {
            PiiKind::Email => &c.email_placeholder,
            PiiKind::Ip if m.v6 => &c.ipv6_placeholder,
            PiiKind::Ip => &c.ipv4_placeholder,
            PiiKind::Phone => &c.phone_placeholder,
            PiiKind::CreditCard => &c.credit_card_placeholder,
            PiiKind::Iban => &c.iban_placeholder,
        }
    }

    /// `text` with every hit replaced, and the counts per kind.
    pub fn anonymize(&self, text: &str) -> Option<(String, Vec<(PiiKind, u64)>)> {
        let hits = self.detector.find(text);
        if hits.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut counts: Vec<(PiiKind, u64)> = Vec::new();
        let mut last = 0;
        for m in &hits {
            out.push_str(&text[last..m.start]);
            out.push_str(self.placeholder(m));
            last = m.end;
            match counts.iter_mut().find(|(k, _)| *k == m.kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((m.kind, 1)),
            }
        }
        out.push_str(&text[last..]);
        counts.sort();
        Some((out, counts))
    }
}

impl Modifier for PiiModifier {
    fn modify(&mut self, doc: &mut Document) -> Verdict {
        let Some((text, counts)) = self.anonymize(&doc.text) else {
            return Verdict::Keep;
        };
        doc.text = text;
        let mut map = match doc.metadata.extra.remove(METADATA_KEY) {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for (kind, n) in counts {
            let prev = map.get(kind.key()).and_then(|v| v.as_u64()).unwrap_or(0);
            map.insert(kind.key().to_string(), (prev + n).into());
        }
        doc.metadata
            .set(METADATA_KEY, serde_json::Value::Object(map));
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: PiiConfig, text: &str) -> Document {
        let mut d = Document::new("1", text, "mem");
        assert_eq!(c.validate().unwrap().modify(&mut d), Verdict::Keep);
        d
    }

    #[test]
    fn defaults_replace_emails_ips_cards_ibans_but_not_phones() {
        let d = run(
            PiiConfig::default(),
            "Mail jo@host.de or ann@host.de from 8.8.8.8 / 2001:4860::8888, card 4111 1111 1111 1111, \
             IBAN DE89 3704 0044 0532 0130 00, call +1-984-182-0190.",
        );
        assert_eq!(
            d.text,
            "Mail email@example.com or email@example.com from 192.0.2.1 / 2001:db8::1, card <CREDIT_CARD>, \
             IBAN <IBAN>, call +1-984-182-0190."
        );
        assert_eq!(
            d.metadata.get(METADATA_KEY),
            Some(&serde_json::json!({"credit_card": 1, "email": 2, "iban": 1, "ip": 2}))
        );
    }

    #[test]
    fn a_second_pass_finds_nothing() {
        let once = run(PiiConfig::default(), "jo@host.de 8.8.8.8 2001:4860::8888");
        let mut twice = once.clone();
        PiiConfig::default().validate().unwrap().modify(&mut twice);
        assert_eq!(twice, once);
    }

    #[test]
    fn phones_and_placeholders_are_configurable_and_counts_add_up() {
        let c = PiiConfig {
            phones: true,
            emails: false,
            phone_placeholder: "[tel]".into(),
            ..Default::default()
        };
        let mut d = Document::new("1", "call (579)888-3058 or jo@host.de", "mem");
        d.metadata
            .set(METADATA_KEY, serde_json::json!({"phone": 2, "other": "x"}));
        c.validate().unwrap().modify(&mut d);
        assert_eq!(d.text, "call [tel] or jo@host.de");
        assert_eq!(
            d.metadata.get(METADATA_KEY),
            Some(&serde_json::json!({"phone": 3, "other": "x"}))
        );
    }

    #[test]
    fn documents_without_pii_are_untouched() {
        let d = run(
            PiiConfig::default(),
            "nothing to see, version 1.2.3.4.5, 10.0.0.1",
        );
        assert_eq!(d.text, "nothing to see, version 1.2.3.4.5, 10.0.0.1");
        assert!(d.metadata.get(METADATA_KEY).is_none());
    }

    #[test]
    fn config_from_json_and_validation() {
        let c: PiiConfig =
            serde_json::from_str(r#"{"phones": true, "iban_placeholder": ""}"#).unwrap();
        assert!(c.phones && c.emails);
        assert_eq!(c.iban_placeholder, "");
        assert_eq!(
            serde_json::from_str::<PiiConfig>("{}").unwrap(),
            PiiConfig::default()
        );
        assert!(serde_json::from_str::<PiiConfig>(r#"{"phone": true}"#).is_err());
        let e = PiiConfig {
            email_placeholder: "a\nb".into(),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "email_placeholder");
        let none = PiiConfig {
            emails: false,
            ips: false,
            credit_cards: false,
            ibans: false,
            ..Default::default()
        };
        let d = run(none, "jo@host.de 8.8.8.8");
        assert_eq!(d.text, "jo@host.de 8.8.8.8");
    }
}

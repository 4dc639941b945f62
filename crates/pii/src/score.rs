//! Span-level precision and recall against labelled sentences in the
//! format of presidio-research's synthetic data sets: a JSON array of
//! `{"full_text": …, "spans": [{"entity_type", "start_position",
//! "end_position"}, …]}`, with offsets in Unicode scalar values.
//!
//! Two criteria are reported per kind:
//!
//! * **exact**: a predicted span counts only if it has the same kind and the
//!   same start and end as a labelled span;
//! * **overlap**: it counts if it overlaps a labelled span of the same kind
//!   (each labelled span is matched at most once).
//!
//! Precision is matched predictions over predictions, recall is matched
//! labelled spans over labelled spans.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

use crate::detect::{Detector, PiiKind};

/// The kind of a presidio entity label, for the labels we detect.
pub fn presidio_kind(label: &str) -> Option<PiiKind> {
    Some(match label {
        "EMAIL_ADDRESS" => PiiKind::Email,
        "IP_ADDRESS" => PiiKind::Ip,
        "PHONE_NUMBER" => PiiKind::Phone,
        "CREDIT_CARD" => PiiKind::CreditCard,
        "IBAN_CODE" => PiiKind::Iban,
        _ => return None,
    })
}

/// One labelled sentence, offsets converted to bytes; only spans of kinds
/// we detect.
#[derive(Clone, Debug)]
pub struct Sample {
    pub text: String,
    pub spans: Vec<(PiiKind, usize, usize)>,
}

#[derive(Deserialize)]
struct RawSample {
    full_text: String,
    #[serde(default)]
    spans: Vec<RawSpan>,
}

#[derive(Deserialize)]
struct RawSpan {
    entity_type: String,
    start_position: usize,
    end_position: usize,
}

/// Parses a presidio data set. Spans whose offsets fall outside the text
/// are skipped.
pub fn load_presidio(json: &str) -> Result<Vec<Sample>, serde_json::Error> {
    let raw: Vec<RawSample> = serde_json::from_str(json)?;
    Ok(raw
        .into_iter()
        .map(|r| {
            // Byte offset of every char index, plus the end.
            let mut at: Vec<usize> = r.full_text.char_indices().map(|(i, _)| i).collect();
            at.push(r.full_text.len());
            let spans = r
                .spans
                .iter()
                .filter_map(|s| {
                    let kind = presidio_kind(&s.entity_type)?;
                    let (start, end) = (*at.get(s.start_position)?, *at.get(s.end_position)?);
                    (start < end).then_some((kind, start, end))
                })
                .collect();
            Sample {
                text: r.full_text,
                spans,
            }
        })
        .collect())
}

/// Counts of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Labelled spans.
    pub gold: usize,
    /// Predicted spans.
    pub predicted: usize,
    /// Predictions equal to a labelled span.
    pub exact: usize,
    /// Predictions overlapping a labelled span (one-to-one).
    pub overlap: usize,
}

impl Counts {
    fn ratio(n: usize, d: usize) -> f64 {
        if d == 0 {
            f64::NAN
        } else {
            n as f64 / d as f64
        }
    }
    /// Exact precision (NaN without predictions).
    pub fn precision(&self) -> f64 {
        Self::ratio(self.exact, self.predicted)
    }
    /// Exact recall (NaN without labelled spans).
    pub fn recall(&self) -> f64 {
        Self::ratio(self.exact, self.gold)
    }
    /// Overlap precision.
    pub fn overlap_precision(&self) -> f64 {
        Self::ratio(self.overlap, self.predicted)
    }
    /// Overlap recall.
    pub fn overlap_recall(&self) -> f64 {
        Self::ratio(self.overlap, self.gold)
    }
}

/// Runs `detector` on every sample and counts per kind (every kind the
/// detector has, even with no labelled spans).
pub fn score(detector: &Detector, samples: &[Sample]) -> BTreeMap<PiiKind, Counts> {
    let mut out: BTreeMap<PiiKind, Counts> = detector
        .kinds()
        .iter()
        .map(|&k| (k, Counts::default()))
        .collect();
    for s in samples {
        let pred = detector.find(&s.text);
        for (&kind, c) in out.iter_mut() {
            let gold: Vec<(usize, usize)> = s
                .spans
                .iter()
                .filter(|g| g.0 == kind)
                .map(|g| (g.1, g.2))
                .collect();
            let pred: Vec<(usize, usize)> = pred
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| (p.start, p.end))
                .collect();
            c.gold += gold.len();
            c.predicted += pred.len();
            c.exact += pred.iter().filter(|p| gold.contains(p)).count();
            let mut used = vec![false; gold.len()];
            for p in &pred {
                if let Some(i) =
                    (0..gold.len()).find(|&i| !used[i] && gold[i].0 < p.1 && p.0 < gold[i].1)
                {
                    used[i] = true;
                    c.overlap += 1;
                }
            }
        }
    }
    out
}

/// A Markdown table of the counts.
pub fn table(counts: &BTreeMap<PiiKind, Counts>) -> String {
    let mut s = String::from(
        "| kind | labelled | predicted | precision | recall | overlap precision | overlap recall |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let f = |x: f64| {
        if x.is_nan() {
            "–".to_string()
        } else {
            format!("{x:.3}")
        }
    };
    for (k, c) in counts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            k.key(),
            c.gold,
            c.predicted,
            f(c.precision()),
            f(c.recall()),
            f(c.overlap_precision()),
            f(c.overlap_recall())
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_become_byte_offsets_and_spans_are_scored() {
        let json = r#"[{"full_text": "Ünï mail jo@host.de, ip 8.8.8.8", "spans": [
            {"entity_type": "EMAIL_ADDRESS", "entity_value": "jo@host.de", "start_position": 9, "end_position": 19},
            {"entity_type": "IP_ADDRESS", "entity_value": "8.8.8", "start_position": 24, "end_position": 29},
            {"entity_type": "PERSON", "entity_value": "Ünï", "start_position": 0, "end_position": 3}]}]"#;
        let samples = load_presidio(json).unwrap();
        assert_eq!(samples[0].spans.len(), 2);
        let (_, s, e) = samples[0].spans[0];
        assert_eq!(&samples[0].text[s..e], "jo@host.de");
        let d = Detector::new(&[PiiKind::Email, PiiKind::Ip]).unwrap();
        let c = score(&d, &samples);
        assert_eq!(
            c[&PiiKind::Email],
            Counts {
                gold: 1,
                predicted: 1,
                exact: 1,
                overlap: 1
            }
        );
        assert_eq!(
            c[&PiiKind::Ip],
            Counts {
                gold: 1,
                predicted: 1,
                exact: 0,
                overlap: 1
            }
        );
        assert!(table(&c).contains("| email | 1 | 1 | 1.000 | 1.000 | 1.000 | 1.000 |"));
    }
}

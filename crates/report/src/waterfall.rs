//! The removal waterfall (RefinedWeb, Fig. 2): what is left of a run's
//! input after each step, in documents and in characters. One computation
//! for the terminal table (`refinery stats`) and the HTML report.
//!
//! Rows, in order:
//!
//! * `read`: the records the readers turned into documents (the rest were
//!   skipped or failed: non-HTML records, requests, truncated records);
//! * one row per stage: its `docs_out` and `chars_out`;
//! * one row per corpus-wide dedup step (`dedup/NN-type/`): the documents
//!   and characters it wrote.
//!
//! "Left" is a share of the run's input: documents over the records read,
//! characters over the characters that entered the first stage (a run
//! without stages uses the characters written). "Removed" is a share of
//! the step's own input. A step whose characters were not counted (stats
//! written before `writer.chars` existed, and no stage rows) has none.

use refinery_corpus::stats::RunStats;

use crate::load::DedupStep;

/// One step of the waterfall.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub step: String,
    pub kind: RowKind,
    /// Documents left after the step.
    pub docs: u64,
    /// Percent of the step's input documents it removed.
    pub docs_removed_pct: f64,
    /// Percent of the run's input records left.
    pub docs_left_pct: f64,
    /// Characters left after the step, when counted.
    pub chars: Option<u64>,
    pub chars_removed_pct: Option<f64>,
    pub chars_left_pct: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Read,
    Stage,
    Dedup,
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Characters a dedup step wrote: its writer's count, else its last stage
/// row's output.
fn step_chars(s: &RunStats) -> Option<u64> {
    if s.writer.chars > 0 || s.writer.docs == 0 {
        return Some(s.writer.chars);
    }
    s.stages.last().map(|st| st.chars_out)
}

/// The waterfall of a run and its dedup steps (see the module docs).
pub fn rows(run: &RunStats, dedup: &[DedupStep]) -> Vec<Row> {
    let records = run.input_docs;
    let first = run.stages.first();
    let base_chars = first.map_or(run.writer.chars, |s| s.chars_in);
    let read_docs = first.map_or(run.kept_docs, |s| s.docs_in);
    let mut out = vec![Row {
        step: "read".into(),
        kind: RowKind::Read,
        docs: read_docs,
        docs_removed_pct: pct(records.saturating_sub(read_docs), records),
        docs_left_pct: pct(read_docs, records),
        chars: Some(base_chars),
        chars_removed_pct: None,
        chars_left_pct: Some(100.0),
    }];
    for st in &run.stages {
        out.push(Row {
            step: st.name.clone(),
            kind: RowKind::Stage,
            docs: st.docs_out,
            docs_removed_pct: pct(st.docs_in.saturating_sub(st.docs_out), st.docs_in),
            docs_left_pct: pct(st.docs_out, records),
            chars: Some(st.chars_out),
            chars_removed_pct: Some(pct(st.chars_in.saturating_sub(st.chars_out), st.chars_in)),
            chars_left_pct: Some(pct(st.chars_out, base_chars)),
        });
    }
    for d in dedup {
        let prev_chars = out.last().and_then(|r| r.chars);
        let docs = d.stats.kept_docs;
        let input = d.stats.input_docs.max(docs);
        let chars = step_chars(&d.stats);
        out.push(Row {
            step: format!("dedup {}", d.name),
            kind: RowKind::Dedup,
            docs,
            docs_removed_pct: pct(input - docs, input),
            docs_left_pct: pct(docs, records),
            chars,
            chars_removed_pct: match (chars, prev_chars) {
                (Some(c), Some(p)) => Some(pct(p.saturating_sub(c), p)),
                _ => None,
            },
            chars_left_pct: chars.map(|c| pct(c, base_chars)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use refinery_corpus::stage::StageStats;
    use refinery_corpus::writers::WriterStats;

    fn stage(name: &str, di: u64, d_o: u64, ci: u64, co: u64) -> StageStats {
        StageStats {
            name: name.into(),
            kind: "filter".into(),
            docs_in: di,
            docs_out: d_o,
            chars_in: ci,
            chars_out: co,
            ..Default::default()
        }
    }

    #[test]
    fn rows_follow_the_stats() {
        let run = RunStats {
            input_docs: 200,
            kept_docs: 40,
            stages: vec![
                stage("extract", 100, 80, 10_000, 4_000),
                stage("length_filter", 80, 40, 4_000, 3_000),
            ],
            ..Default::default()
        };
        let dedup = vec![DedupStep {
            name: "00-minhash".into(),
            stats: RunStats {
                input_docs: 40,
                kept_docs: 30,
                writer: WriterStats {
                    docs: 30,
                    chars: 2_400,
                    ..Default::default()
                },
                ..Default::default()
            },
        }];
        let r = rows(&run, &dedup);
        let steps: Vec<&str> = r.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(
            steps,
            ["read", "extract", "length_filter", "dedup 00-minhash"]
        );
        assert_eq!(
            (r[0].docs, r[0].docs_left_pct, r[0].docs_removed_pct),
            (100, 50.0, 50.0)
        );
        assert_eq!((r[1].docs_removed_pct, r[1].docs_left_pct), (20.0, 40.0));
        assert_eq!(
            (r[1].chars_removed_pct, r[1].chars_left_pct),
            (Some(60.0), Some(40.0))
        );
        assert_eq!(
            (r[2].docs_left_pct, r[2].chars_left_pct),
            (20.0, Some(30.0))
        );
        assert_eq!(
            (r[3].docs, r[3].docs_removed_pct, r[3].docs_left_pct),
            (30, 25.0, 15.0)
        );
        assert_eq!(
            (r[3].chars_removed_pct, r[3].chars_left_pct),
            (Some(20.0), Some(24.0))
        );
    }

    #[test]
    fn old_dedup_stats_without_chars_have_none() {
        let run = RunStats {
            input_docs: 10,
            kept_docs: 10,
            stages: vec![stage("s", 10, 10, 100, 100)],
            ..Default::default()
        };
        let dedup = vec![DedupStep {
            name: "00-exact".into(),
            stats: RunStats {
                input_docs: 10,
                kept_docs: 8,
                writer: WriterStats {
                    docs: 8,
                    ..Default::default()
                },
                ..Default::default()
            },
        }];
        let r = rows(&run, &dedup);
        assert_eq!(r[2].chars, None);
        assert_eq!(r[2].chars_left_pct, None);
        assert_eq!(r[2].docs_left_pct, 80.0);
    }
}

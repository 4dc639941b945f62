//! # refinery-report
//!
//! A run directory as one self-contained HTML file: `refinery report RUN -o
//! report.html`. The plots are inline SVG drawn here ([`svg`]), with no
//! script, font, stylesheet or image fetched from anywhere, so the file
//! opens offline and stays small (tens of KB for a corpus run; a long
//! training run's curves are thinned to [`MAX_POINTS`] points per series).
//!
//! * **Corpus runs** (`stats.json`, or `stats/` of an unfinished run): the
//!   removal waterfall over stages and dedup steps ([`waterfall`]), drops per
//!   reason per step, document lengths before and after, languages and
//!   language scores, MinHash cluster sizes, top domains kept and removed,
//!   failures per reason and throughput per stage.
//! * **Model runs** (`metrics.jsonl`): loss (train and held-out), learning
//!   rate, every other numeric metric (every `eval_*` key has its plot), and
//!   with a `confusion.json` the confusion matrix and per-class metrics
//!   ([`load::read_confusion`] documents the file).
//! * **Ablations** (`ablation.json` of `refinery ablate`): the table of bits per byte per
//!   variant and eval set (mean ± std over seeds, difference from base, significance), a
//!   plot per eval set with error bars, and the eval/train overlap ([`ablation`]).
//! * **Several runs** are shown side by side, after overlays of what they
//!   share (the waterfalls, or the curves).
//!
//! Every plot is an `<svg data-plot="NAME">` whose marks carry their numbers
//! in `data-*` attributes (and every plot without data is a `<figure
//! data-plot="NAME" data-empty="why">`), so a test can read them back from
//! the DOM of a real browser (`scripts/report-check.sh`). docs/report.md
//! lists the plots and what they count.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::path::PathBuf;

pub mod ablation;
pub mod html;
pub mod load;
pub mod svg;
pub mod waterfall;

pub use load::{load, Run};

/// Points per line series, at most (longer series are thinned evenly).
pub const MAX_POINTS: usize = 600;

/// Errors of the report; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: {message} (see docs/report.md for the format)")]
    Confusion { path: PathBuf, message: String },
    #[error(
        "{path}: not a run directory: no metrics.jsonl (model run), stats.json or stats/ (corpus run), ablation.json (ablation)"
    )]
    NotARun { path: PathBuf },
    #[error("MinHash clusters: {0}")]
    Dedup(String),
    #[error(transparent)]
    Corpus(#[from] refinery_corpus::CorpusError),
}

/// Reads the run directories and renders the report.
pub fn report(dirs: &[PathBuf]) -> Result<String, ReportError> {
    let runs = dirs
        .iter()
        .map(|d| load(d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(html::render(&runs))
}

//! The pipeline stage.

use refinery_corpus::{Document, Modifier, Verdict};

use crate::{try_extract, ExtractOptions};

/// HTML → main text as a pipeline [`Modifier`].
///
/// Documents that are not HTML (`!doc.is_html`: WET, JSONL, plain text) pass
/// through unchanged, so the same pipeline runs on any input. HTML documents
/// get their text replaced by the extracted main text, `is_html` cleared and
/// the title stored in `metadata.title`; a document left with fewer than
/// [`ExtractOptions::min_text_chars`] chars is dropped as `extract:empty`,
/// and a page over the depth, node or time limit as `extract:too_deep`,
/// `extract:too_many_nodes` or `extract:timeout`.
#[derive(Clone, Debug, Default)]
pub struct ExtractStage {
    opts: ExtractOptions,
}

impl ExtractStage {
    pub fn new(opts: ExtractOptions) -> Self {
        ExtractStage { opts }
    }

    pub fn options(&self) -> &ExtractOptions {
        &self.opts
    }
}

impl Modifier for ExtractStage {
    fn modify(&mut self, doc: &mut Document) -> Verdict {
        if !doc.is_html {
            return Verdict::Keep;
        }
        let out = match try_extract(&doc.text, &self.opts) {
            Ok(out) => out,
            Err(e) => return Verdict::drop(e.reason()),
        };
        doc.text = out.text;
        doc.is_html = false;
        if let Some(title) = out.title {
            doc.metadata.set("title", title);
        }
        if doc.text.chars().count() < self.opts.min_text_chars {
            return Verdict::drop("extract:empty");
        }
        Verdict::Keep
    }
}

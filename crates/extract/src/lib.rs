//! refinery-extract: HTML to main text: boilerplate removal, title, paragraphs.
//!
//! [`extract`] turns one HTML page into its main text and its title:
//!
//! 1. The page is parsed once with html5ever (through `dom_query`).
//! 2. The title comes from `<title>`, else `og:title`, else the first `<h1>`.
//! 3. Main-content containers are looked up by rules, after trafilatura's
//!    `BODY_XPATH`: elements whose `class`/`id`/`itemprop` mark an article
//!    body (`entry-content`, `post-body`, `articleBody`, …), then the first
//!    `<article>`, then story and generic content wrappers (`#content`,
//!    `main`). The first one with enough text after boilerplate stripping
//!    (see 4.) is the rule-based candidate; when it holds at least 750 chars
//!    of `<p>` text, loose text outside paragraphs, lists, quotes, tables and
//!    headings (bylines, dates, widget labels) is left out.
//! 4. [`dom_smoothie`]'s port of Mozilla Readability runs too, unless the
//!    candidate is long and made of paragraphs. As in trafilatura's
//!    `compare_extraction`, Readability's pick replaces the candidate when it
//!    is 1.5 times longer, or when the candidate has no paragraphs (or more
//!    tables than paragraphs). Without a candidate, Readability's pick is
//!    used, unless it is short and a boilerplate stripper run over the whole
//!    page finds twice as much (listings, home pages, forums, product pages).
//!    The stripper drops `script`/`style`/`nav`/`footer`/`aside`/`form`/…
//!    elements, hidden elements, elements whose `class`/`id` look like
//!    boilerplate (cookie banners, menus, share buttons, comments, ads, …)
//!    and link-dense blocks (menus, tag clouds); it also runs inside the
//!    candidate and inside Readability's pick. In a chosen container,
//!    `<header>`s (title, lead) are kept, `<figure>`s (captions, credits) and
//!    trailing headings ("Related articles" over a stripped list) dropped.
//! 5. The chosen subtree is rendered as plain text: headings and paragraphs are
//!    separated by a blank line, list items and table rows are one per line
//!    (cells tab-separated), `<br>` is a newline, whitespace inside lines is
//!    collapsed, and at most [`ExtractOptions::max_newlines`] consecutive
//!    newlines are kept.
//!
//! [`ExtractStage`] wraps it as a pipeline [`Modifier`]: HTML documents get
//! their text replaced (title in `metadata.title`), other documents pass
//! through unchanged.
//!
//! [`extract`] never panics, whatever the input (empty, malformed, binary).
//!
//! ```
//! use refinery_extract::{extract, ExtractOptions};
//!
//! let html = r#"<html><head><title> My  page </title></head><body>
//!   <nav><a href="/">Home</a> <a href="/about">About</a></nav>
//!   <p>First paragraph of the <b>main</b> text.</p>
//!   <ul><li>one</li><li>two</li></ul>
//!   <footer>Copyright 2024</footer>
//! </body></html>"#;
//! let out = extract(html, &ExtractOptions::default());
//! assert_eq!(out.title.as_deref(), Some("My page"));
//! assert_eq!(out.text, "First paragraph of the main text.\n\none\ntwo");
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod parse;
mod render;
mod rules;
mod stage;
mod text;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dom_query::{Document, NodeId};
use serde::{Deserialize, Serialize};

pub use stage::ExtractStage;

/// Options of [`extract`] and [`ExtractStage`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractOptions {
    /// Put the title as the first paragraph of the text. By default the title
    /// only goes to [`Extracted::title`] (the stage puts it in metadata).
    pub include_title: bool,
    /// Remove `http(s)://…` and `www.…` URLs from the text.
    pub strip_urls: bool,
    /// At most this many consecutive newlines (2: paragraphs are separated by
    /// one blank line; 1: no blank lines; 0: everything on one line).
    pub max_newlines: usize,
    /// [`ExtractStage`] drops documents whose extracted text has fewer chars
    /// than this (reason `extract:empty`).
    pub min_text_chars: usize,
    /// Run Readability as well (on by default). When off, the rule-based
    /// content container is used, else the boilerplate stripper over the
    /// whole page: faster, worse precision and recall.
    pub readability: bool,
    /// Readability is skipped (the boilerplate stripper alone runs) on pages
    /// with more elements than this, as it is superlinear on huge pages; 0
    /// means no limit. It is also always skipped on pages nested more than
    /// 400 levels deep.
    pub max_readability_elements: usize,
    /// Pages whose DOM is nested deeper than this are not extracted
    /// ([`ExtractError::TooDeep`], dropped as `extract:too_deep` by the
    /// stage); 0 means no limit. html5ever's work per tag grows with the
    /// depth, so without a limit a page of 100k unclosed tags takes a
    /// minute. Real pages stay under a few hundred levels.
    pub max_depth: usize,
    /// Pages with more DOM nodes than this are not extracted
    /// ([`ExtractError::TooManyNodes`], `extract:too_many_nodes`); 0 means
    /// no limit. A node takes about 400 bytes, so the default bounds a
    /// page's tree to about 200 MB.
    pub max_nodes: usize,
    /// Wall-clock budget per page in milliseconds, checked while parsing
    /// (every 8 KiB) and between the extraction passes
    /// ([`ExtractError::Timeout`], `extract:timeout`); 0 means none. A
    /// safety net: the depth and node limits already bound the work, and a
    /// page normally takes a few milliseconds, so it only fires on a
    /// machine that is stalled.
    pub timeout_ms: u64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            include_title: false,
            strip_urls: false,
            max_newlines: 2,
            min_text_chars: 1,
            readability: true,
            max_readability_elements: 50_000,
            max_depth: 2_000,
            max_nodes: 500_000,
            timeout_ms: 10_000,
        }
    }
}

/// What [`extract`] found in a page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The page title (whitespace-collapsed), when there is one.
    pub title: Option<String>,
    /// The main text.
    pub text: String,
}

/// Why [`try_extract`] gave up on a page (the pipeline stage drops it with
/// [`ExtractError::reason`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    #[error("the page is nested deeper than {limit} elements")]
    TooDeep { limit: usize },
    #[error("the page has more than {limit} DOM nodes")]
    TooManyNodes { limit: usize },
    #[error("extraction took longer than {limit_ms} ms")]
    Timeout { limit_ms: u64 },
}

impl ExtractError {
    /// The drop reason: `extract:too_deep`, `extract:too_many_nodes` or
    /// `extract:timeout`.
    pub fn reason(&self) -> &'static str {
        match self {
            ExtractError::TooDeep { .. } => "extract:too_deep",
            ExtractError::TooManyNodes { .. } => "extract:too_many_nodes",
            ExtractError::Timeout { .. } => "extract:timeout",
        }
    }
}

/// Without a rule-based candidate, Readability's result is kept unless it has
/// fewer than this many chars and the fallback finds [`FALLBACK_RATIO`] times
/// more.
const READABILITY_TRUST_CHARS: usize = 2000;
const FALLBACK_RATIO: usize = 2;

/// Readability is not run when the rule-based container gives at least this
/// many chars, mostly in paragraphs: it would only win when it finds 1.5 times
/// more, which is rare on such pages, and it is half of the running time.
const TRUSTED_PICK_CHARS: usize = 500;

/// Readability is skipped on pages nested deeper than this (real pages stay
/// well under 100 levels; its scoring is quadratic in depth).
const READABILITY_MAX_DEPTH: usize = 400;

/// Extracts the title and the main text of an HTML page. Never panics; a
/// page over a limit of [`ExtractOptions`] (depth, nodes, time) gives an
/// empty result: [`try_extract`] tells why.
pub fn extract(html: &str, opts: &ExtractOptions) -> Extracted {
    try_extract(html, opts).unwrap_or_default()
}

/// Extracts the title and the main text of an HTML page, or says which limit
/// of [`ExtractOptions`] the page exceeds. Never panics. The time taken is
/// linear in the size of the page: parsing stops at the first 8 KiB chunk
/// past the depth or node limit.
pub fn try_extract(html: &str, opts: &ExtractOptions) -> Result<Extracted, ExtractError> {
    if html.trim().is_empty() {
        return Ok(Extracted::default());
    }
    // Parsing and walking are our own code and html5ever's, both panic-free
    // by design; Readability is a large third-party heuristic, so it runs
    // behind `catch_unwind` as well (see `readability_text`). The outer guard
    // keeps the promise for everything else.
    catch_unwind(AssertUnwindSafe(|| extract_inner(html, opts))).unwrap_or(Ok(Extracted::default()))
}

fn extract_inner(html: &str, opts: &ExtractOptions) -> Result<Extracted, ExtractError> {
    let limits = parse::Limits {
        max_depth: opts.max_depth,
        max_nodes: opts.max_nodes,
        deadline: (opts.timeout_ms > 0)
            .then(|| (Instant::now(), Duration::from_millis(opts.timeout_ms))),
    };
    let doc = parse::parse(html, &limits)?;
    let title = render::title(&doc);

    // Everything that reads our DOM runs first, so that Readability (which
    // rewrites the DOM) can take it without a copy.
    let (pick, fallback) = {
        let page = render::Page::new(&doc);
        let pick = page.rules_pick();
        // The fallback is only needed when no container was found.
        let fallback = pick.is_none().then(|| page.fallback_text());
        (pick, fallback)
    };
    limits.check_time()?;
    let run_readability = opts.readability
        && pick.as_ref().is_none_or(|p| {
            p.table_heavy
                || p.p_chars < render::BLOCKS_ONLY_P_CHARS
                || p.text.chars().count() < TRUSTED_PICK_CHARS
        })
        && (opts.max_readability_elements == 0 || doc.tree.len() <= opts.max_readability_elements)
        && !render::deeper_than(&doc.tree, READABILITY_MAX_DEPTH);
    let readable = if run_readability {
        readability_text(doc)
    } else {
        None
    };
    let body = match (pick, readable, fallback) {
        (Some(pick), r, _) => choose(pick, r),
        (None, Some(r), Some(f)) => {
            let len_r = r.chars().count();
            if len_r < READABILITY_TRUST_CHARS && f.chars().count() > FALLBACK_RATIO * len_r.max(1)
            {
                f
            } else {
                r
            }
        }
        (None, None, Some(f)) => f,
        (None, Some(r), None) => r,
        (None, None, None) => String::new(),
    };

    let mut out = String::with_capacity(body.len() + 64);
    if opts.include_title {
        if let Some(t) = &title {
            out.push_str(t);
            out.push_str("\n\n");
        }
    }
    out.push_str(&body);
    let mut text = if opts.strip_urls {
        text::strip_urls(&out)
    } else {
        out
    };
    text = text::normalize(&text, opts.max_newlines);
    limits.check_time()?;
    Ok(Extracted { title, text })
}

/// Chooses between the rule-based container and Readability's pick, as
/// trafilatura's `compare_extraction` does: the container wins unless
/// Readability finds more than 1.5 times as much text, or the container holds no
/// paragraphs (or more tables than paragraphs) and Readability a fair amount.
fn choose(pick: render::Pick, readable: Option<String>) -> String {
    let Some(r) = readable else {
        return pick.text;
    };
    let (len_p, len_r) = (pick.text.chars().count(), r.chars().count());
    if len_r == 0 || len_p > 2 * len_r {
        return pick.text;
    }
    if 2 * len_r > 3 * len_p
        || ((pick.p_chars == 0 || pick.table_heavy) && len_r > 2 * render::MIN_CANDIDATE_CHARS)
    {
        return r;
    }
    pick.text
}

/// Runs Readability on `doc` and renders the article it finds; `None` when it
/// fails, panics or finds nothing.
fn readability_text(doc: Document) -> Option<String> {
    catch_unwind(AssertUnwindSafe(move || {
        let cfg = dom_smoothie::Config {
            // The text is rendered by us from the article's DOM.
            text_mode: dom_smoothie::TextMode::Raw,
            // Class names are kept so that boilerplate left inside the
            // article (share bars, captions, related links) can be stripped.
            keep_classes: true,
            ..dom_smoothie::Config::default()
        };
        let mut r = dom_smoothie::Readability::with_document(doc, None, Some(cfg)).ok()?;
        r.parse().ok()?;
        let root: NodeId = r
            .doc
            .select_single("#readability-page-1")
            .nodes()
            .first()?
            .id;
        let text = render::article_text(&r.doc.tree, root);
        let text = text::normalize(&text, 2);
        (!text.is_empty()).then_some(text)
    }))
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests;

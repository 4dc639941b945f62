//! DOM → text rendering, the boilerplate stripper and title lookup.
//!
//! Everything here walks the tree with explicit stacks (no recursion), so a
//! page with a million nested `<div>`s cannot overflow the stack.

use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use dom_query::{Document, NodeData, NodeId, Tree, TreeNode};

use crate::text::collapse_ws;

/// How an element takes part in the text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// Not rendered at all (scripts, navigation, forms, media, …).
    Skip,
    /// Paragraph-level block: a blank line before and after.
    Para,
    /// Line-level block: starts and ends a line (list items, divs, rows).
    Line,
    /// Table cell: a tab after it.
    Cell,
    /// `<br>`: a newline.
    Br,
    /// `<pre>`: whitespace kept.
    Pre,
    /// Everything else: text flows through.
    Inline,
}

fn kind_of(name: &str) -> Kind {
    match name {
        // Never text, or not main text.
        "script" | "style" | "noscript" | "template" | "head" | "title" | "meta" | "link"
        | "nav" | "header" | "footer" | "aside" | "form" | "iframe" | "frame" | "frameset"
        | "svg" | "math" | "canvas" | "object" | "embed" | "applet" | "audio" | "video"
        | "picture" | "source" | "track" | "map" | "area" | "img" | "button" | "input"
        | "select" | "option" | "optgroup" | "textarea" | "label" | "menu" | "dialog"
        | "datalist" | "output" | "progress" | "meter" => Kind::Skip,
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "table" | "ul" | "ol"
        | "dl" | "article" | "section" | "main" | "figure" | "hr" | "address" | "center"
        | "details" | "fieldset" | "hgroup" => Kind::Para,
        "div" | "li" | "tr" | "dt" | "dd" | "figcaption" | "summary" | "caption" | "legend"
        | "thead" | "tbody" | "tfoot" | "body" | "html" => Kind::Line,
        "td" | "th" => Kind::Cell,
        "br" => Kind::Br,
        "pre" | "listing" | "xmp" | "plaintext" => Kind::Pre,
        _ => Kind::Inline,
    }
}

/// Element facts the renderer needs, read once per element.
#[derive(Clone, Copy)]
pub(crate) struct ElemInfo {
    pub(crate) kind: Kind,
    pub(crate) hidden: bool,
    pub(crate) boilerplate_attr: Attr,
    is_link: bool,
    is_structural: bool,
    /// Paragraph-like element whose text counts in `blocks_only` rendering.
    text_block: bool,
    /// `<noscript>` or `<form>`: skipped, unless it holds a page's worth of
    /// text (ASP.NET pages sit in one big form; some pages in a noscript).
    pub(crate) noscript: u32,
    /// `<header>`: skipped at page level, kept inside an `<article>` or a
    /// picked content container (title, lead paragraph).
    header: bool,
    article: bool,
    /// `<h1>`…`<h6>`: dropped when nothing follows it (a "Related" heading
    /// whose list was stripped).
    heading: bool,
    /// `<figure>`/`<figcaption>`: image credits and captions.
    figure: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Attr {
    Clean,
    /// Looks like boilerplate, unless it also looks like content.
    Unlikely,
    /// Boilerplate whatever else it says (cookie banners, share bars, comments).
    Strong,
}

pub(crate) fn elem_info(node: &TreeNode) -> Option<ElemInfo> {
    let NodeData::Element(el) = &node.data else {
        return None;
    };
    let name: &str = &el.name.local;
    // Reused buffers: no allocation per element.
    let (hidden, role_boiler, is_link, boilerplate_attr) =
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut bufs) => {
                let (classes, lower) = &mut *bufs;
                read_attrs(el, classes, lower)
            }
            Err(_) => read_attrs(el, &mut String::new(), &mut String::new()),
        });
    let mut kind = kind_of(name);
    if role_boiler {
        kind = Kind::Skip;
    }
    let is_structural = matches!(name, "html" | "body" | "main" | "article");
    let text_block = matches!(
        name,
        "p" | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "li"
            | "dt"
            | "dd"
            | "blockquote"
            | "pre"
            | "code"
            | "q"
            | "td"
            | "th"
            | "caption"
            | "b"
            | "strong"
            | "i"
            | "em"
            | "u"
            | "listing"
            | "xmp"
            | "plaintext"
    );
    Some(ElemInfo {
        kind,
        hidden,
        boilerplate_attr,
        is_link,
        is_structural,
        text_block,
        noscript: match name {
            "noscript" => BIG_NOSCRIPT_CHARS,
            "form" => BIG_FORM_CHARS,
            _ => 0,
        },
        header: name == "header",
        article: name == "article",
        heading: matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6"),
        figure: matches!(name, "figure" | "figcaption"),
    })
}

/// ARIA roles of boilerplate (compared case-insensitively, trimmed).
const BOILER_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "dialog",
    "alertdialog",
    "menu",
    "menubar",
    "search",
    "toolbar",
];

thread_local! {
    /// [`elem_info`]'s buffers: the class/id list and a lowercased copy.
    static SCRATCH: std::cell::RefCell<(String, String)> =
        const { std::cell::RefCell::new((String::new(), String::new())) };
}

/// Reads an element's attributes: (hidden, boilerplate role, `<a href>`,
/// class/id classification). `classes` and `lower` are scratch buffers.
fn read_attrs(
    el: &dom_query::Element,
    classes: &mut String,
    lower: &mut String,
) -> (bool, bool, bool, Attr) {
    let (mut hidden, mut role_boiler, mut is_link) = (false, false, false);
    classes.clear();
    for a in &el.attrs {
        let key: &str = &a.name.local;
        let val: &str = &a.value;
        match key {
            "hidden" => hidden = true,
            "aria-hidden" => hidden |= val.trim().eq_ignore_ascii_case("true"),
            "style" if val.len() >= 10 => {
                // Lowercased, whitespace removed, into `lower`.
                lower.clear();
                lower.extend(
                    val.chars()
                        .filter(|c| !c.is_whitespace())
                        .map(|c| c.to_ascii_lowercase()),
                );
                hidden |= lower.contains("display:none") || lower.contains("visibility:hidden");
            }
            "role" => {
                let v = val.trim();
                role_boiler |= BOILER_ROLES.iter().any(|r| v.eq_ignore_ascii_case(r));
            }
            "class" | "id" => {
                classes.push(' ');
                classes.push_str(val);
            }
            "href" => is_link = &*el.name.local == "a",
            _ => {}
        }
    }
    let attr = classify_attr(classes, lower);
    (hidden, role_boiler, is_link, attr)
}

/// Class/id words that mark boilerplate whatever else the element says.
const STRONG: &[&str] = &[
    "cookie",
    "consent",
    "gdpr",
    "banner",
    "social",
    "share",
    "sharing",
    "shariff",
    "comment",
    "disqus",
    "newsletter",
    "subscribe",
    "advert",
    "sponsor",
    "breadcrumb",
    "sidebar",
    "footer",
    "navbar",
    "navigation",
    "menu",
    "skiplink",
    "skip-link",
    "popup",
    "modal",
    "outbrain",
    "taboola",
    "paywall",
    "related",
    "recommend",
    "pagination",
    "pager",
    "toolbar",
    "masthead",
    "copyright",
    "signup",
    "login",
    "tagcloud",
    "print-only",
    "screen-reader",
    "sr-only",
    "visually-hidden",
    "visuallyhidden",
];

/// Substrings that mark boilerplate unless a [`CONTENT`] word is present too.
const UNLIKELY: &[&str] = &[
    "header",
    "combx",
    "community",
    "extra",
    "remark",
    "replies",
    "rss",
    "shoutbox",
    "skyscraper",
    "supplemental",
    "promo",
    "teaser",
    "meta",
    "byline",
    "author",
    "date",
    "info",
    "tools",
    "util",
    "hidden",
    "overlay",
];

/// Whole words (split at `-`, `_`, space) that mark boilerplate.
const UNLIKELY_WORDS: &[&str] = &[
    "ad", "ads", "nav", "tags", "tag", "share", "social", "links", "more",
];

/// Words that say "this is the content".
const CONTENT: &[&str] = &[
    "article", "content", "main", "body", "post", "entry", "text", "story", "column",
];

/// One automaton per word list: a class/id list is scanned once per list
/// instead of once per word (the `contains` loops were ~15% of the time).
struct Lists {
    strong: AhoCorasick,
    unlikely: AhoCorasick,
    content: AhoCorasick,
}

static LISTS: LazyLock<Option<Lists>> = LazyLock::new(|| {
    Some(Lists {
        strong: AhoCorasick::new(STRONG).ok()?,
        unlikely: AhoCorasick::new(UNLIKELY).ok()?,
        content: AhoCorasick::new(CONTENT).ok()?,
    })
});

/// Whether any word of `list` occurs in `hay` (`which` picks the automaton).
fn any_in(list: &[&str], which: fn(&Lists) -> &AhoCorasick, hay: &str) -> bool {
    match LISTS.as_ref() {
        Some(l) => which(l).is_match(hay),
        None => list.iter().any(|w| hay.contains(w)),
    }
}

/// Classifies a class/id list; `lower` is a scratch buffer (overwritten
/// with the list in ASCII lowercase).
fn classify_attr(classes: &str, lower: &mut String) -> Attr {
    if classes.trim().is_empty() {
        return Attr::Clean;
    }
    lower.clear();
    lower.push_str(classes);
    lower.make_ascii_lowercase();
    let lower = lower.as_str();
    if strong_match(classes, lower) {
        return Attr::Strong;
    }
    let unlikely = any_in(UNLIKELY, |l| &l.unlikely, lower)
        || lower
            .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
            .any(|w| UNLIKELY_WORDS.contains(&w));
    if unlikely && !any_in(CONTENT, |l| &l.content, lower) {
        Attr::Unlikely
    } else {
        Attr::Clean
    }
}

/// Whether a [`STRONG`] word starts or ends a word of the class/id list:
/// words are split at non-alphanumerics and camelCase humps, so `site-footer`,
/// `commentList` and `sharebar` match but `APageRoot` (pager) does not.
/// Words with a `-` in them match as substrings. `widget` only matches at the
/// start of a class (`widget_text`, `widget-area`), not inside page-builder
/// names (`elementor-widget-text-editor`).
fn strong_match(classes: &str, lower: &str) -> bool {
    if lower.split_whitespace().any(|t| t.starts_with("widget")) {
        return true;
    }
    // Fast path: no STRONG word anywhere (most class lists). A hit on a
    // word with a `-` in it decides at once.
    let mut any = false;
    match LISTS.as_ref() {
        Some(l) => {
            for m in l.strong.find_overlapping_iter(lower) {
                if STRONG[m.pattern().as_usize()].contains('-') {
                    return true;
                }
                any = true;
            }
        }
        None => {
            for w in STRONG {
                if lower.contains(w) {
                    if w.contains('-') {
                        return true;
                    }
                    any = true;
                }
            }
        }
    }
    if !any {
        return false;
    }
    let mut word = String::new();
    let mut prev_lower = false;
    let check = |word: &mut String| {
        let hit = !word.is_empty()
            && STRONG
                .iter()
                .any(|w| !w.contains('-') && (word.starts_with(w) || word.ends_with(w)));
        word.clear();
        hit
    };
    for c in classes.chars() {
        if !c.is_ascii_alphanumeric() {
            if check(&mut word) {
                return true;
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && check(&mut word) {
            return true;
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    check(&mut word)
}

/// The index of a node in its tree's node array. `NodeId` keeps it private
/// but hashes as that index + 1 (a `NonZeroU32`): read it back through a
/// hasher. Out-of-range values (should `dom_query` change) only make the
/// stats lookups miss, never panic.
pub(crate) fn index(id: NodeId) -> usize {
    #[derive(Default)]
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            // Not reached for a `NonZeroU32`; keeps the value distinct anyway.
            for &b in bytes {
                self.0 = (self.0 << 8) | u64::from(b);
            }
        }
        fn write_u32(&mut self, n: u32) {
            self.0 = u64::from(n);
        }
    }
    let mut h = Capture::default();
    id.hash(&mut h);
    (h.0 as usize).wrapping_sub(1)
}

/// Chars of `s` that are not whitespace (`char::is_whitespace`), with a
/// vectorizable path for ASCII text.
fn non_ws_chars(s: &str) -> u32 {
    let n = if s.is_ascii() {
        // The ASCII chars `char::is_whitespace` accepts (incl. VT, FF).
        s.bytes()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
            .count()
    } else {
        s.chars().filter(|c| !c.is_whitespace()).count()
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Visible-text sizes per node, for the boilerplate stripper: non-whitespace
/// chars of visible text under each element, and how many of them are inside
/// `<a href>`; indexed by [`index`].
pub(crate) struct Stats {
    sizes: Vec<(u32, u32)>,
    /// [`elem_info`] of every element reached, read once.
    infos: Vec<Option<ElemInfo>>,
}

impl Stats {
    pub(crate) fn compute(tree: &Tree, root: NodeId) -> Stats {
        let mut sizes: Vec<(u32, u32)> = vec![(0, 0); tree.len()];
        let mut infos: Vec<Option<ElemInfo>> = vec![None; tree.len()];
        // Pre-order list of (node, parent, own text, is link); processed in
        // reverse, every node's children are summed before the node itself is
        // added to its parent.
        let mut order: Vec<(NodeId, Option<NodeId>, u32, bool)> = Vec::new();
        let mut stack = vec![(root, None)];
        while let Some((id, parent)) = stack.pop() {
            let (skip, count, is_link) = tree
                .query_node(&id, |node| match &node.data {
                    NodeData::Text { contents } => (false, non_ws_chars(contents), false),
                    NodeData::Element(el) => {
                        let name: &str = &el.name.local;
                        let skip = matches!(name, "script" | "style" | "template" | "head" | "svg");
                        if !skip {
                            if let Some(slot) = infos.get_mut(index(id)) {
                                *slot = elem_info(node);
                            }
                        }
                        (skip, 0, name == "a")
                    }
                    NodeData::Document | NodeData::Fragment => (false, 0, false),
                    _ => (true, 0, false),
                })
                .unwrap_or((true, 0, false));
            if skip {
                continue;
            }
            order.push((id, parent, count, is_link));
            for child in tree.child_ids_of_it(&id, true) {
                stack.push((child, Some(id)));
            }
        }
        for &(id, parent, own, is_link) in order.iter().rev() {
            let Some(&(t, l)) = sizes.get(index(id)) else {
                continue;
            };
            let t = t.saturating_add(own);
            let l = if is_link { t } else { l };
            sizes[index(id)] = (t, l);
            if let Some(e) = parent.and_then(|p| sizes.get_mut(index(p))) {
                e.0 = e.0.saturating_add(t);
                e.1 = e.1.saturating_add(l);
            }
        }
        Stats { sizes, infos }
    }

    pub(crate) fn text(&self, id: NodeId) -> u32 {
        self.sizes.get(index(id)).map_or(0, |s| s.0)
    }

    fn link(&self, id: NodeId) -> u32 {
        self.sizes.get(index(id)).map_or(0, |s| s.1)
    }

    /// The cached [`elem_info`] of an element.
    pub(crate) fn info(&self, id: NodeId) -> Option<ElemInfo> {
        self.infos.get(index(id)).copied().flatten()
    }
}

/// A `<noscript>` or `<form>` with at least this much text is rendered like
/// a `<div>`: some pages wrap their whole content in one (ASP.NET pages sit in
/// a page-wide form, some blogs repeat the article in a noscript).
const BIG_NOSCRIPT_CHARS: u32 = 200;
const BIG_FORM_CHARS: u32 = 500;

/// Context of the boilerplate stripper: the text sizes and the total.
pub(crate) struct Strip<'s> {
    pub(crate) stats: &'s Stats,
    pub(crate) total: u32,
    /// Also drop link-dense blocks.
    pub(crate) link_dense: bool,
}

impl Strip<'_> {
    /// Whether an element is boilerplate to drop with all it holds.
    pub(crate) fn drop(&self, id: NodeId, info: &ElemInfo) -> bool {
        if info.is_structural {
            return false;
        }
        let text = self.stats.text(id);
        // Never drop a wrapper that holds most of the page's text because of
        // its name: `<div id="page-with-sidebar">` around everything.
        let wrapper = text > 200 && text * 2 > self.total;
        if info.boilerplate_attr != Attr::Clean && !wrapper {
            return true;
        }
        if text == 0 {
            return false;
        }
        // Link-dense blocks: menus, tag clouds, "more articles" lists.
        let link = self.stats.link(id);
        let block = matches!(info.kind, Kind::Para | Kind::Line | Kind::Cell);
        self.link_dense && block && !info.is_link && !wrapper && link * 10 > text * 6
    }
}

/// Text being rendered: block boundaries are pending newlines merged by
/// `max`, so nested or adjacent blocks do not stack blank lines; `<br>`s add up.
struct Out {
    s: String,
    pending: usize,
}

impl Out {
    fn block(&mut self, n: usize) {
        self.pending = self.pending.max(n);
    }

    fn br(&mut self) {
        self.pending += 1;
    }

    fn text(&mut self, text: &str, pre: bool) {
        for c in text.chars() {
            if pre && c == '\n' {
                self.br();
            } else if c.is_whitespace() {
                if self.pending == 0 {
                    self.s.push(' ');
                }
            } else {
                if self.pending > 0 {
                    if !self.s.is_empty() {
                        for _ in 0..self.pending {
                            self.s.push('\n');
                        }
                    }
                    self.pending = 0;
                }
                self.s.push(c);
            }
        }
    }
}

/// Renders the subtree at `root` as text (not yet normalized: see
/// [`crate::text::normalize`]). With `strip`, boilerplate subtrees are left out.
/// With `blocks_only`, only text inside paragraph-like elements (`p`, headings,
/// list items, quotes, code, table cells, emphasis) or right after a `<br>` is
/// kept: loose text in `div`s (bylines, dates, widget labels) is not.
/// `candidate` marks an already chosen content container: its `<figure>`s
/// (captions, image credits) are dropped, and so are headings with nothing
/// after them. `<header>`s (title, lead) are kept inside an `<article>`, and
/// anywhere with `keep_headers` (a rule-based container).
pub(crate) fn render(
    tree: &Tree,
    root: NodeId,
    strip: Option<&Strip<'_>>,
    blocks_only: bool,
    candidate: bool,
    keep_headers: bool,
) -> String {
    enum Step {
        Enter(NodeId),
        Exit(Kind, bool, bool),
        HeadingEnd(usize),
    }
    let mut out = Out {
        s: String::new(),
        pending: 0,
    };
    let mut pre_depth = 0usize;
    let mut block_depth = 0usize;
    let mut br_tail = false;
    let mut article_depth = 0usize;
    // (start, end) of each rendered heading in `out.s`.
    let mut headings: Vec<(usize, usize)> = Vec::new();
    let mut stack = vec![Step::Enter(root)];
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Exit(kind, text_block, article) => {
                if text_block {
                    block_depth = block_depth.saturating_sub(1);
                }
                if article {
                    article_depth = article_depth.saturating_sub(1);
                }
                br_tail = false;
                match kind {
                    Kind::Para => out.block(2),
                    Kind::Pre => {
                        out.block(2);
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                    Kind::Line => out.block(1),
                    Kind::Br => {
                        out.br();
                        br_tail = true;
                    }
                    Kind::Cell => {
                        if out.pending == 0 {
                            out.s.push('\t');
                        }
                    }
                    Kind::Skip | Kind::Inline => {}
                }
                continue;
            }
            Step::HeadingEnd(start) => {
                headings.push((start, out.s.len()));
                continue;
            }
            Step::Enter(id) => id,
        };
        let keep_text = !blocks_only || block_depth > 0 || br_tail;
        let cached = strip.and_then(|s| s.stats.info(id));
        let info = tree
            .query_node(&id, |node| match &node.data {
                NodeData::Text { contents } => {
                    if keep_text {
                        out.text(contents, pre_depth > 0);
                    }
                    None
                }
                NodeData::Element(_) => cached.or_else(|| elem_info(node)),
                NodeData::Document | NodeData::Fragment => Some(ElemInfo {
                    kind: Kind::Line,
                    hidden: false,
                    boilerplate_attr: Attr::Clean,
                    is_link: false,
                    is_structural: true,
                    text_block: false,
                    noscript: 0,
                    header: false,
                    article: false,
                    heading: false,
                    figure: false,
                }),
                _ => None,
            })
            .flatten();
        let Some(mut info) = info else { continue };
        br_tail = false;
        if info.noscript > 0 && strip.is_some_and(|s| s.stats.text(id) >= info.noscript) {
            info.kind = Kind::Line;
        }
        if info.header && (keep_headers || article_depth > 0) {
            info.kind = Kind::Line;
        }
        if info.kind == Kind::Skip || info.hidden {
            continue;
        }
        if info.figure && candidate {
            continue;
        }
        if let Some(s) = strip {
            if s.drop(id, &info) {
                continue;
            }
        }
        match info.kind {
            Kind::Para => out.block(2),
            Kind::Pre => {
                out.block(2);
                pre_depth += 1;
            }
            Kind::Line => out.block(1),
            _ => {}
        }
        if info.text_block {
            block_depth += 1;
        }
        if info.article {
            article_depth += 1;
        }
        if info.heading {
            stack.push(Step::HeadingEnd(out.s.len()));
        }
        stack.push(Step::Exit(info.kind, info.text_block, info.article));
        for child in tree.child_ids_of_it(&id, true) {
            stack.push(Step::Enter(child));
        }
    }
    // Headings with nothing after them (trafilatura: `NOT_AT_THE_END`).
    if candidate {
        while let Some((start, end)) = headings.pop() {
            if out.s[end..].trim().is_empty() {
                out.s.truncate(start);
            } else {
                break;
            }
        }
    }
    out.s
}

/// Below this many chars a rule-based candidate is not trusted (trafilatura's
/// `MIN_EXTRACTED_SIZE`).
pub(crate) const MIN_CANDIDATE_CHARS: usize = 250;

/// With at least this many chars inside `<p>`s, a candidate is rendered
/// with `blocks_only` (trafilatura: 3 × `MIN_EXTRACTED_SIZE`).
pub(crate) const BLOCKS_ONLY_P_CHARS: u32 = 750;

/// The page body and its text sizes, shared by the rule-based candidates and
/// the fallback.
pub(crate) struct Page<'d> {
    doc: &'d Document,
    root: NodeId,
    stats: Stats,
}

/// A rule-based candidate, rendered.
pub(crate) struct Pick {
    pub(crate) text: String,
    /// Chars (non-whitespace) of text inside `<p>` elements.
    pub(crate) p_chars: u32,
    /// More `<table>`s than `<p>`s.
    pub(crate) table_heavy: bool,
}

impl<'d> Page<'d> {
    pub(crate) fn new(doc: &'d Document) -> Self {
        let tree = &doc.tree;
        let root = tree.body().map(|b| b.id).unwrap_or_else(|| tree.root().id);
        let stats = Stats::compute(tree, root);
        Page { doc, root, stats }
    }

    /// Text of the page with boilerplate stripped: the whole `<body>`, or its
    /// `<main>`/single `<article>` when that holds a fair share of the text.
    pub(crate) fn fallback_text(&self) -> String {
        let total = self.stats.text(self.root);
        let root = content_root(self.doc, &self.stats, total).unwrap_or(self.root);
        let strip = Strip {
            stats: &self.stats,
            total: self.stats.text(root),
            link_dense: true,
        };
        crate::text::normalize(
            &render(&self.doc.tree, root, Some(&strip), false, false, false),
            2,
        )
    }

    /// The first rule-based content container (see [`crate::rules`]) whose
    /// stripped text reaches [`MIN_CANDIDATE_CHARS`], rendered.
    pub(crate) fn rules_pick(&self) -> Option<Pick> {
        let tree = &self.doc.tree;
        let search = Strip {
            stats: &self.stats,
            total: self.stats.text(self.root),
            link_dense: false,
        };
        let found = crate::rules::find(tree, self.root, &search);
        let mut tried: Vec<NodeId> = Vec::new();
        for id in found.into_iter().flatten() {
            if tried.contains(&id) {
                continue;
            }
            tried.push(id);
            if (self.stats.text(id) as usize) < MIN_CANDIDATE_CHARS {
                continue;
            }
            let (p_chars, ps, tables) = paragraphs(tree, &self.stats, id);
            let strip = Strip {
                stats: &self.stats,
                total: self.stats.text(id),
                link_dense: true,
            };
            let blocks_only = p_chars >= BLOCKS_ONLY_P_CHARS;
            let text =
                crate::text::normalize(&render(tree, id, Some(&strip), blocks_only, true, true), 2);
            if text.chars().count() >= MIN_CANDIDATE_CHARS {
                return Some(Pick {
                    text,
                    p_chars,
                    table_heavy: tables > ps,
                });
            }
        }
        None
    }
}

/// Text in `<p>`s under `root`, the number of `<p>`s and of `<table>`s.
fn paragraphs(tree: &Tree, stats: &Stats, root: NodeId) -> (u32, usize, usize) {
    let (mut chars, mut ps, mut tables) = (0u32, 0usize, 0usize);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let name = tree.query_node(&id, |n| match &n.data {
            NodeData::Element(el) => match &*el.name.local {
                "p" => 1u8,
                "table" => 2,
                _ => 3,
            },
            _ => 0,
        });
        match name {
            Some(1) => {
                ps += 1;
                chars = chars.saturating_add(stats.text(id));
                continue;
            }
            Some(2) => tables += 1,
            Some(3) => {}
            _ => continue,
        }
        stack.extend(tree.child_ids_of_it(&id, false));
    }
    (chars, ps, tables)
}

/// Text of an article subtree (Readability's pick), stripped of the
/// boilerplate it still holds.
pub(crate) fn article_text(tree: &Tree, root: NodeId) -> String {
    let stats = Stats::compute(tree, root);
    let strip = Strip {
        stats: &stats,
        total: stats.text(root),
        link_dense: true,
    };
    let (p_chars, _, _) = paragraphs(tree, &stats, root);
    let blocks_only = p_chars >= BLOCKS_ONLY_P_CHARS;
    crate::text::normalize(
        &render(tree, root, Some(&strip), blocks_only, true, false),
        2,
    )
}

/// Whether the tree is nested deeper than `limit` (Readability's scoring walks
/// ancestors, quadratic in depth: a 20 000-deep page takes a minute).
pub(crate) fn deeper_than(tree: &Tree, limit: usize) -> bool {
    let mut stack = vec![(tree.root().id, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        for child in tree.child_ids_of_it(&id, false) {
            stack.push((child, depth + 1));
        }
    }
    false
}

/// A `<main>`, `[role=main]` or lone `<article>` holding at least a quarter of
/// the page's text (and 200 chars), if there is one.
fn content_root(doc: &Document, stats: &Stats, total: u32) -> Option<NodeId> {
    let good = |id: NodeId| {
        let t = stats.text(id);
        t >= 200 && t * 4 >= total
    };
    let articles = doc.select("article");
    let nodes = articles.nodes();
    if let [only] = nodes {
        if good(only.id) {
            return Some(only.id);
        }
    }
    let mains = doc.select("main, [role=main]");
    mains.nodes().iter().map(|n| n.id).find(|&id| good(id))
}

/// The page title: `<title>`, else `og:title`, else the first `<h1>`.
pub(crate) fn title(doc: &Document) -> Option<String> {
    let from = |s: &str| {
        let t = collapse_ws(s);
        (!t.is_empty()).then_some(t)
    };
    let titles = doc.select("title");
    if let Some(t) = titles.nodes().first().and_then(|n| from(&n.text())) {
        return Some(t);
    }
    let og = doc
        .select(r#"meta[property="og:title"], meta[name="og:title"], meta[name="twitter:title"]"#);
    for n in og.nodes() {
        if let Some(t) = n.attr("content").and_then(|c| from(&c)) {
            return Some(t);
        }
    }
    let h1 = doc.select("h1");
    h1.nodes().first().and_then(|n| from(&n.text()))
}

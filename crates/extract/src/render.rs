//! DOM → text rendering, the boilerplate stripper and title lookup.
//!
//! Everything here walks the tree with explicit stacks (no recursion), so a
//! page with a million nested `<div>`s cannot overflow the stack.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use dom_query::{Document, NodeData, NodeId, Tree, TreeNode};

use crate::text::collapse_ws;

/// How an element takes part in the text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
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
struct ElemInfo {
    kind: Kind,
    hidden: bool,
    boilerplate_attr: Attr,
    is_link: bool,
    is_structural: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attr {
    Clean,
    /// Looks like boilerplate, unless it also looks like content.
    Unlikely,
    /// Boilerplate whatever else it says (cookie banners, share bars, comments).
    Strong,
}

fn elem_info(node: &TreeNode) -> Option<ElemInfo> {
    let NodeData::Element(el) = &node.data else {
        return None;
    };
    let name: &str = &el.name.local;
    let mut kind = kind_of(name);
    let mut hidden = false;
    let mut role_boiler = false;
    let mut classes = String::new();
    let mut is_link = false;
    for a in &el.attrs {
        let key: &str = &a.name.local;
        let val: &str = &a.value;
        match key {
            "hidden" => hidden = true,
            "aria-hidden" => hidden |= val.trim().eq_ignore_ascii_case("true"),
            "style" => {
                let v = val.to_ascii_lowercase();
                let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                hidden |= v.contains("display:none") || v.contains("visibility:hidden");
            }
            "role" => {
                let v = val.trim().to_ascii_lowercase();
                role_boiler |= matches!(
                    v.as_str(),
                    "navigation"
                        | "banner"
                        | "contentinfo"
                        | "complementary"
                        | "dialog"
                        | "alertdialog"
                        | "menu"
                        | "menubar"
                        | "search"
                        | "toolbar"
                );
            }
            "class" | "id" => {
                classes.push(' ');
                classes.push_str(val);
            }
            "href" => is_link = name == "a",
            _ => {}
        }
    }
    if role_boiler {
        kind = Kind::Skip;
    }
    let is_structural = matches!(name, "html" | "body" | "main" | "article");
    Some(ElemInfo {
        kind,
        hidden,
        boilerplate_attr: classify_attr(&classes),
        is_link,
        is_structural,
    })
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
    "widget",
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
    "ad", "ads", "nav", "tags", "tag", "share", "social", "top", "bottom", "links", "more",
];

/// Words that say "this is the content".
const CONTENT: &[&str] = &[
    "article", "content", "main", "body", "post", "entry", "text", "story", "column",
];

fn classify_attr(classes: &str) -> Attr {
    if classes.trim().is_empty() {
        return Attr::Clean;
    }
    let lower = classes.to_ascii_lowercase();
    if STRONG.iter().any(|w| lower.contains(w)) {
        return Attr::Strong;
    }
    let unlikely = UNLIKELY.iter().any(|w| lower.contains(w))
        || lower
            .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
            .any(|w| UNLIKELY_WORDS.contains(&w));
    if unlikely && !CONTENT.iter().any(|w| lower.contains(w)) {
        Attr::Unlikely
    } else {
        Attr::Clean
    }
}

/// Hashes a [`NodeId`] (one `u32`) by multiplication: ids are dense indices.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Visible-text sizes per node, for the boilerplate stripper: non-whitespace
/// chars of visible text under each element, and how many of them are inside
/// `<a href>`.
pub(crate) struct Stats {
    sizes: HashMap<NodeId, (u32, u32), BuildHasherDefault<IdHasher>>,
}

impl Stats {
    fn compute(tree: &Tree, root: NodeId) -> Stats {
        let mut sizes: HashMap<NodeId, (u32, u32), BuildHasherDefault<IdHasher>> =
            HashMap::default();
        // Pre-order list of (node, parent, own text, is link); processed in
        // reverse, every node's children are summed before the node itself is
        // added to its parent.
        let mut order: Vec<(NodeId, Option<NodeId>, u32, bool)> = Vec::new();
        let mut stack = vec![(root, None)];
        while let Some((id, parent)) = stack.pop() {
            let (skip, count, is_link) = tree
                .query_node(&id, |node| match &node.data {
                    NodeData::Text { contents } => (
                        false,
                        contents.chars().filter(|c| !c.is_whitespace()).count() as u32,
                        false,
                    ),
                    NodeData::Element(el) => {
                        let name: &str = &el.name.local;
                        (
                            matches!(
                                name,
                                "script" | "style" | "noscript" | "template" | "head" | "svg"
                            ),
                            0,
                            name == "a",
                        )
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
        sizes.reserve(order.len());
        for &(id, parent, own, is_link) in order.iter().rev() {
            let (t, l) = sizes.get(&id).copied().unwrap_or((0, 0));
            let t = t.saturating_add(own);
            let l = if is_link { t } else { l };
            sizes.insert(id, (t, l));
            if let Some(p) = parent {
                let e = sizes.entry(p).or_insert((0, 0));
                e.0 = e.0.saturating_add(t);
                e.1 = e.1.saturating_add(l);
            }
        }
        Stats { sizes }
    }

    fn text(&self, id: NodeId) -> u32 {
        self.sizes.get(&id).map_or(0, |s| s.0)
    }

    fn link(&self, id: NodeId) -> u32 {
        self.sizes.get(&id).map_or(0, |s| s.1)
    }
}

/// Context of the boilerplate stripper: the text sizes and the total.
pub(crate) struct Strip<'s> {
    stats: &'s Stats,
    total: u32,
    /// Also drop link-dense blocks.
    link_dense: bool,
}

impl Strip<'_> {
    /// Whether an element is boilerplate to drop with all it holds.
    fn drop(&self, id: NodeId, info: &ElemInfo) -> bool {
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
pub(crate) fn render(tree: &Tree, root: NodeId, strip: Option<&Strip<'_>>) -> String {
    enum Step {
        Enter(NodeId),
        Exit(Kind),
    }
    let mut out = Out {
        s: String::new(),
        pending: 0,
    };
    let mut pre_depth = 0usize;
    let mut stack = vec![Step::Enter(root)];
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Exit(kind) => {
                match kind {
                    Kind::Para => out.block(2),
                    Kind::Pre => {
                        out.block(2);
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                    Kind::Line => out.block(1),
                    Kind::Br => out.br(),
                    Kind::Cell => {
                        if out.pending == 0 {
                            out.s.push('\t');
                        }
                    }
                    Kind::Skip | Kind::Inline => {}
                }
                continue;
            }
            Step::Enter(id) => id,
        };
        let info = tree
            .query_node(&id, |node| match &node.data {
                NodeData::Text { contents } => {
                    out.text(contents, pre_depth > 0);
                    None
                }
                NodeData::Element(_) => elem_info(node),
                NodeData::Document | NodeData::Fragment => Some(ElemInfo {
                    kind: Kind::Line,
                    hidden: false,
                    boilerplate_attr: Attr::Clean,
                    is_link: false,
                    is_structural: true,
                }),
                _ => None,
            })
            .flatten();
        let Some(info) = info else { continue };
        if info.kind == Kind::Skip || info.hidden {
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
        stack.push(Step::Exit(info.kind));
        for child in tree.child_ids_of_it(&id, true) {
            stack.push(Step::Enter(child));
        }
    }
    out.s
}

/// Text of the page with boilerplate stripped: the whole `<body>`, or its
/// `<main>`/single `<article>` when that holds a fair share of the text.
pub(crate) fn fallback_text(doc: &Document) -> String {
    let tree = &doc.tree;
    let page_root = tree.body().map(|b| b.id).unwrap_or_else(|| tree.root().id);
    let stats = Stats::compute(tree, page_root);
    let total = stats.text(page_root);
    let root = content_root(doc, &stats, total).unwrap_or(page_root);
    let strip = Strip {
        stats: &stats,
        total: stats.text(root),
        link_dense: true,
    };
    crate::text::normalize(&render(tree, root, Some(&strip)), 2)
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
    crate::text::normalize(&render(tree, root, Some(&strip)), 2)
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

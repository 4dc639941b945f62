//! Rule-based main-content containers, after trafilatura's `BODY_XPATH`.
//!
//! Most sites built with a CMS wrap the article in an element whose `class`/
//! `id` says so (`entry-content`, `post-body`, `itemprop=articleBody`,
//! `article__body`, …). [`find`] looks for such containers in five rule
//! groups, from the most to the least specific, and returns the first match
//! of each group in document order; the caller tries them in that order.
//! Subtrees the boilerplate stripper would drop (navigation, hidden elements,
//! comments, sidebars, …) are not searched.

use dom_query::{NodeData, NodeId, Tree};

use crate::render::{elem_info, Kind, Strip};

/// Number of rule groups.
pub(crate) const GROUPS: usize = 5;

/// Group 1 (ids, case-sensitive substrings): article bodies.
const G1_ID: &[&str] = &[
    "entry-content",
    "article-content",
    "art-content",
    "article__content",
    "article-body",
    "article__body",
    "articlebody",
    "articleBody",
    "body-text",
];

/// Group 1 (classes, case-sensitive substrings).
const G1_CLASS: &[&str] = &[
    "post-text",
    "post_text",
    "post-body",
    "post-entry",
    "postentry",
    "post-content",
    "post_content",
    "postcontent",
    "postContent",
    "post_inner_wrapper",
    "article-text",
    "articletext",
    "articleText",
    "entry-content",
    "page-content",
    "text-content",
    "article-content",
    "art-content",
    "article__content",
    "article-body",
    "article__body",
    "articlebody",
    "articleBody",
    "ArticleContent",
    "body-text",
    "article__container",
];

/// Group 3 (classes, substrings): story containers.
const G3_CLASS: &[&str] = &[
    "post-bodycopy",
    "story-content",
    "storycontent",
    "theme-content",
    "blog-content",
    "section-content",
    "single-content",
    "single-post",
    "main-column",
    "wpb_text_column",
    "story-body",
    "field-body",
];

/// Group 4 (ids and classes, substrings): generic main-content wrappers.
const G4_ID: &[&str] = &["content-main", "content-body", "contentBody"];
const G4_CLASS: &[&str] = &[
    "content-main",
    "content_main",
    "content-body",
    "content__body",
];

/// Bit set of the groups an element matches.
fn groups_of(name: &str, class: &str, id: &str, role: &str, itemprop: &str) -> u8 {
    let container = matches!(name, "article" | "div" | "main" | "section");
    let any = |hay: &str, pats: &[&str]| !hay.is_empty() && pats.iter().any(|p| hay.contains(p));
    let mut g = 0u8;
    if container
        && (class == "post"
            || class == "entry"
            || itemprop == "articleBody"
            || id == "articleContent"
            || any(id, G1_ID)
            || any(class, G1_CLASS))
    {
        g |= 1;
    }
    if name == "article" {
        g |= 1 << 1;
    }
    if container
        && (role == "article"
            || id == "article"
            || id == "story"
            || matches!(
                class,
                "postarea" | "art-postcontent" | "text" | "cell" | "story"
            )
            || id.starts_with("primary")
            || id.contains("story-body")
            || class.to_ascii_lowercase().contains("fulltext")
            || class.starts_with("article ")
            || any(class, G3_CLASS))
    {
        g |= 1 << 2;
    }
    if container
        && (id == "content"
            || class == "content"
            || any(id, G4_ID)
            || any(class, G4_CLASS)
            || id.to_ascii_lowercase().contains("main-content")
            || class.to_ascii_lowercase().contains("main-content")
            || class.to_ascii_lowercase().contains("page-content"))
    {
        g |= 1 << 3;
    }
    if (matches!(name, "article" | "div" | "section")
        && (class.starts_with("main") || id.starts_with("main") || role.starts_with("main")))
        || name == "main"
    {
        g |= 1 << 4;
    }
    g
}

/// The first element of each rule group (document order) under `root`,
/// outside the subtrees `strip` drops.
pub(crate) fn find(tree: &Tree, root: NodeId, strip: &Strip<'_>) -> [Option<NodeId>; GROUPS] {
    let mut found = [None; GROUPS];
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let hit = tree
            .query_node(&id, |node| {
                let NodeData::Element(el) = &node.data else {
                    return None;
                };
                let mut info = strip.stats.info(id).or_else(|| elem_info(node))?;
                if info.noscript > 0 && strip.stats.text(id) >= info.noscript {
                    info.kind = Kind::Line;
                }
                if info.kind == Kind::Skip || info.hidden || strip.drop(id, &info) {
                    return None;
                }
                let (mut class, mut eid, mut role, mut itemprop) = ("", "", "", "");
                for a in &el.attrs {
                    let v: &str = &a.value;
                    match &*a.name.local {
                        "class" => class = v.trim(),
                        "id" => eid = v.trim(),
                        "role" => role = v.trim(),
                        "itemprop" => itemprop = v.trim(),
                        _ => {}
                    }
                }
                Some(groups_of(&el.name.local, class, eid, role, itemprop))
            })
            .flatten();
        let Some(groups) = hit else { continue };
        for (g, slot) in found.iter_mut().enumerate() {
            if groups & (1 << g) != 0 && slot.is_none() {
                *slot = Some(id);
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
        for child in tree.child_ids_of_it(&id, true) {
            stack.push(child);
        }
    }
    found
}

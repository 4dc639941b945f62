//! Parsing with limits: html5ever builds `dom_query`'s tree as
//! `Document::from` does (scripting off), but the page is fed in chunks of
//! [`CHUNK_BYTES`] and, between chunks, the DOM depth, the node count and the
//! elapsed time are checked against [`Limits`].
//!
//! html5ever's tree builder does work proportional to the depth of the stack
//! of open elements for every tag, so a page of 100k unclosed `<div><span>`
//! takes a minute and a page of millions of elements takes gigabytes. Stopping
//! at the first chunk boundary past a limit keeps the cost of any page
//! linear in its size: at most one chunk (a few thousand tags) is parsed
//! beyond a limit.
//!
//! html5ever is a streaming parser: the tree is the same whatever the chunk
//! boundaries (`Document::from` feeds the page in one piece; the dev set and
//! the WARC samples give byte-identical text either way).

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::time::{Duration, Instant};

use dom_query::{Document, NodeId};
use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::TreeBuilderOpts;
use html5ever::{Attribute, ParseOpts, QualName};

use crate::render::index;
use crate::ExtractError;

/// Bytes of HTML given to the parser at a time. With the smallest tags
/// (`<b>`, 3 bytes), a chunk adds at most ~2,700 levels past the depth limit.
pub(crate) const CHUNK_BYTES: usize = 8 * 1024;

/// Limits of one parse; 0 (or `None`) means no limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_depth: usize,
    pub(crate) max_nodes: usize,
    pub(crate) deadline: Option<(Instant, Duration)>,
}

impl Limits {
    /// `Err(Timeout)` once the deadline has passed.
    pub(crate) fn check_time(&self) -> Result<(), ExtractError> {
        match self.deadline {
            Some((start, budget)) if start.elapsed() > budget => Err(ExtractError::Timeout {
                limit_ms: budget.as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }
}

/// Parses `html` into a `dom_query` document, or stops at the first chunk
/// boundary where a limit is exceeded.
pub(crate) fn parse(html: &str, limits: &Limits) -> Result<Document, ExtractError> {
    let opts = ParseOpts {
        tree_builder: TreeBuilderOpts {
            scripting_enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut parser = html5ever::parse_document(Capped::default(), opts);
    let mut start = 0;
    while start < html.len() {
        let mut end = (start + CHUNK_BYTES).min(html.len());
        while !html.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&html[start..end]));
        start = end;
        let sink = &parser.tokenizer.sink.sink;
        let depth = sink.max_depth.get() as usize;
        if limits.max_depth > 0 && depth > limits.max_depth {
            return Err(ExtractError::TooDeep {
                limit: limits.max_depth,
            });
        }
        let nodes = sink.doc.tree.len();
        if limits.max_nodes > 0 && nodes > limits.max_nodes {
            return Err(ExtractError::TooManyNodes {
                limit: limits.max_nodes,
            });
        }
        limits.check_time()?;
    }
    Ok(parser.finish().doc)
}

/// `dom_query`'s tree sink, plus the depth at which each node was inserted.
/// Depths are those at insertion: a node moved later (adoption agency,
/// foster parenting) keeps its first depth, which only matters for the limit.
#[derive(Default)]
struct Capped {
    doc: Document,
    depths: RefCell<Vec<u32>>,
    max_depth: Cell<u32>,
}

impl Capped {
    fn depth(&self, id: &NodeId) -> u32 {
        self.depths.borrow().get(index(*id)).copied().unwrap_or(0)
    }

    fn set_depth(&self, id: &NodeId, depth: u32) {
        let i = index(*id);
        // Node ids are dense indexes; anything else is ignored.
        if i > self.doc.tree.len() {
            return;
        }
        let mut depths = self.depths.borrow_mut();
        if depths.len() <= i {
            depths.resize(i + 1, 0);
        }
        depths[i] = depth;
        if depth > self.max_depth.get() {
            self.max_depth.set(depth);
        }
    }
}

impl TreeSink for Capped {
    type Handle = NodeId;
    type Output = Self;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Self {
        self
    }

    // Parse errors are not used: not collected (dom_query keeps a list).
    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> NodeId {
        self.doc.get_document()
    }

    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.doc.get_template_contents(target)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.doc.set_quirks_mode(mode)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.doc.same_node(x, y)
    }

    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Ref<'a, QualName> {
        self.doc.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        self.doc.create_element(name, attrs, flags)
    }

    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.doc.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.doc.create_pi(target, data)
    }

    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        if let NodeOrText::AppendNode(id) = &child {
            self.set_depth(id, self.depth(parent).saturating_add(1));
        }
        self.doc.append(parent, child)
    }

    fn append_before_sibling(&self, sibling: &NodeId, child: NodeOrText<NodeId>) {
        if let NodeOrText::AppendNode(id) = &child {
            self.set_depth(id, self.depth(sibling));
        }
        self.doc.append_before_sibling(sibling, child)
    }

    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        if let NodeOrText::AppendNode(id) = &child {
            let depth = self
                .depth(element)
                .max(self.depth(prev_element).saturating_add(1));
            self.set_depth(id, depth);
        }
        self.doc
            .append_based_on_parent_node(element, prev_element, child)
    }

    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.doc
            .append_doctype_to_document(name, public_id, system_id)
    }

    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.doc.add_attrs_if_missing(target, attrs)
    }

    fn remove_from_parent(&self, target: &NodeId) {
        self.doc.remove_from_parent(target)
    }

    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.doc.reparent_children(node, new_parent)
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.doc.is_mathml_annotation_xml_integration_point(handle)
    }
}

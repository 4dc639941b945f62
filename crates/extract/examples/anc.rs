//! TEMP: ancestors of the text node containing ARG2 in file ARG1.
use dom_query::{Document, NodeData};
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let raw = std::fs::read(&a[0]).unwrap();
    let doc = Document::from(String::from_utf8_lossy(&raw).as_ref());
    let tree = &doc.tree;
    for id in tree.descendant_ids_of_it(&tree.root().id) {
        let hit = tree.query_node(&id, |n| match &n.data {
            NodeData::Text { contents } => contents.contains(a[1].as_str()),
            _ => false,
        });
        if hit == Some(true) {
            for anc in tree.ancestors_of(&id, None).iter().rev() {
                let d = anc.query(|n| match &n.data {
                    NodeData::Element(el) => format!(
                        "{} {:?}",
                        &*el.name.local,
                        el.attrs
                            .iter()
                            .filter(|x| matches!(
                                &*x.name.local,
                                "class" | "id" | "style" | "role" | "hidden" | "aria-hidden"
                            ))
                            .map(|x| format!(
                                "{}={}",
                                &*x.name.local,
                                &x.value[..x.value.len().min(60)]
                            ))
                            .collect::<Vec<_>>()
                    ),
                    _ => String::new(),
                });
                println!("{}", d.unwrap_or_default());
            }
            break;
        }
    }
}

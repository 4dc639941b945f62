//! `explain`: why a document was (or was not) removed.

use std::path::Path;

use serde::Serialize;

use super::clusters::removals_path;
use super::format::{Kind, RecordReader};
use super::signatures::ids_path;
use super::{load_params, DocKey, MinhashError, Result};

/// The answer of [`explain`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub id: String,
    pub source: String,
    /// Index of the document in its input file.
    pub doc: u32,
    pub removed: bool,
    /// The cluster the document is in (removed, or kept as its representative).
    pub cluster: Option<u32>,
    /// The kept representative of the cluster (for a removed document).
    pub kept_id: Option<String>,
    pub kept_source: Option<String>,
    pub kept_doc: Option<u32>,
    /// For a kept representative: how many documents of its cluster were removed.
    pub removed_duplicates: u64,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} doc {}): ", self.id, self.source, self.doc)?;
        match (&self.cluster, &self.kept_id) {
            (Some(c), Some(k)) if self.removed => write!(
                f,
                "removed as a near-duplicate (minhash:duplicate) in cluster {c}; kept representative {k} ({} doc {})",
                self.kept_source.as_deref().unwrap_or("?"),
                self.kept_doc.unwrap_or(0)
            ),
            (Some(c), _) => write!(
                f,
                "kept: representative of cluster {c}, {} near-duplicate(s) removed",
                self.removed_duplicates
            ),
            _ => write!(f, "kept: no near-duplicate found"),
        }
    }
}

/// Finds document `id` in a MinHash dedup output directory and explains
/// its fate. Scans the id lists of the signatures step (linear in the
/// corpus' document count) and the removal lists.
pub fn explain(dir: &Path, id: &str) -> Result<Explanation> {
    let params = load_params(dir)?;
    let sources: Vec<String> = params
        .get("inputs")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|f| {
                    f.get("source")
                        .and_then(|s| s.as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = None;
    'files: for file in 0..sources.len() {
        let path = ids_path(dir, file);
        let mut r = RecordReader::open(&path, Kind::Ids)?;
        let mut doc = 0u32;
        while let Some(x) = r.next_id()? {
            if x == id {
                found = Some(DocKey {
                    file: file as u32,
                    doc,
                });
                break 'files;
            }
            doc += 1;
        }
    }
    let key = found.ok_or_else(|| {
        MinhashError::NotFound(format!(
            "no document with id {id:?} in {} (looked in the signatures step's id lists)",
            dir.display()
        ))
    })?;
    let source = |f: u32| sources.get(f as usize).cloned().unwrap_or_default();
    let mut e = Explanation {
        id: id.to_string(),
        source: source(key.file),
        doc: key.doc,
        removed: false,
        cluster: None,
        kept_id: None,
        kept_source: None,
        kept_doc: None,
        removed_duplicates: 0,
    };
    let own = RecordReader::read_removals(&removals_path(dir, key.file as usize))?;
    if let Some(r) = own.iter().find(|r| r.doc == key.doc) {
        let kept = DocKey::unpack(r.kept);
        e.removed = true;
        e.cluster = Some(r.cluster);
        e.kept_id = Some(r.kept_id.clone());
        e.kept_source = Some(source(kept.file));
        e.kept_doc = Some(kept.doc);
        return Ok(e);
    }
    // Kept: is it the representative of a cluster?
    for file in 0..sources.len() {
        for r in RecordReader::read_removals(&removals_path(dir, file))? {
            if r.kept == key.pack() {
                e.cluster = Some(r.cluster);
                e.removed_duplicates += 1;
            }
        }
    }
    Ok(e)
}

//! The held-out validation split and the per-split document table.
//!
//! A document belongs to the validation split when a hash of its global index (its position
//! across the directory's shards in name order) and the split seed falls below the validation
//! fraction. The split depends only on `(split_seed, document index, fraction)`, never on the
//! shuffle seed, the sequence length or the mode, so a validation document never reaches a
//! training row however the rows are cut.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use refinery_tokenize::TokenDataset;

use super::splitmix64;
use crate::TrainError;

/// Which side of the held-out split a source draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSplit {
    Train,
    Validation,
}

/// Whether global document `doc` is held out for validation.
pub fn is_validation_doc(split_seed: u64, doc: u64, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let h = splitmix64(split_seed ^ splitmix64(doc ^ 0x5A17_D0C5));
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// The non-empty documents of one split of a shard directory: 24 bytes per document, built
/// from the shards' document indexes (the tokens themselves stay memory-mapped).
///
/// A document's *content* is its token range without the shard's separator.
#[derive(Debug)]
pub struct DocTable {
    ds: Arc<TokenDataset>,
    dir: PathBuf,
    ids: Vec<u64>,
    starts: Vec<u64>,
    lens: Vec<u64>,
}

impl DocTable {
    /// Collects the documents of `split`. Errors (naming `dir`) when the split is empty.
    pub fn build(
        ds: Arc<TokenDataset>,
        dir: &Path,
        split: DataSplit,
        validation_fraction: f64,
        split_seed: u64,
    ) -> Result<Self, TrainError> {
        let mut ids = Vec::new();
        let mut starts = Vec::new();
        let mut lens = Vec::new();
        let mut global_doc = 0u64;
        let mut shard_start = 0u64;
        for shard in ds.shards() {
            let sep = shard.header().separator;
            for k in 0..shard.num_docs() {
                let doc = global_doc;
                global_doc += 1;
                let Some(r) = shard.doc_range(k) else { break };
                let mut end = r.end;
                if let Some(s) = sep {
                    if end > r.start && shard.token(end - 1) == Some(s) {
                        end -= 1;
                    }
                }
                if end == r.start {
                    continue;
                }
                let held_out = is_validation_doc(split_seed, doc, validation_fraction);
                if held_out == (split == DataSplit::Validation) {
                    ids.push(doc);
                    starts.push(shard_start + r.start);
                    lens.push(end - r.start);
                }
            }
            shard_start += shard.len();
        }
        if ids.is_empty() {
            let which = match split {
                DataSplit::Train => "training",
                DataSplit::Validation => "validation",
            };
            return Err(TrainError::Data {
                path: dir.to_path_buf(),
                message: format!(
                    "no non-empty {which} documents among its {global_doc} documents \
                     (validation_fraction {validation_fraction})"
                ),
            });
        }
        Ok(DocTable {
            ds,
            dir: dir.to_path_buf(),
            ids,
            starts,
            lens,
        })
    }

    pub fn dataset(&self) -> &TokenDataset {
        &self.ds
    }

    /// The shard directory (for error messages).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of documents in the split.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Global document index (across the directory's shards) of the `i`-th split document.
    pub fn doc_id(&self, i: usize) -> u64 {
        self.ids[i]
    }

    /// Global token range of the `i`-th split document's content.
    pub fn content(&self, i: usize) -> std::ops::Range<u64> {
        self.starts[i]..self.starts[i] + self.lens[i]
    }

    /// Content length of the `i`-th split document.
    pub fn content_len(&self, i: usize) -> u64 {
        self.lens[i]
    }

    /// Total content tokens of the split.
    pub fn num_tokens(&self) -> u64 {
        self.lens.iter().sum()
    }

    /// Appends global tokens `range` to `out`.
    pub fn read_into(&self, range: std::ops::Range<u64>, out: &mut Vec<u32>) {
        self.ds.read_into(range, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_fraction_is_respected() {
        let n = 100_000u64;
        let held = (0..n).filter(|&d| is_validation_doc(7, d, 0.1)).count() as f64;
        assert!((held / n as f64 - 0.1).abs() < 0.005, "{held}");
        assert!(!(0..1000).any(|d| is_validation_doc(7, d, 0.0)));
    }
}

//! Pass 1: count every source (documents, UTF-8 text bytes, reader drops and
//! failures) and build, per source, a histogram of text bytes over the
//! documents' selection hashes. The histogram lets the plan pick the sample
//! of a fractional epoch to within one bin without keeping any per-document
//! state.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use refinery_corpus::executor::run_pool;
use refinery_corpus::input::{discover, InputFile};
use refinery_corpus::readers::{self, Item, ReaderOptions};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::Mixture;
use crate::{MixError, Result};

/// Bins of the selection histogram (top 16 bits of the selection hash).
pub const BINS: usize = 1 << 16;

/// Counts of one source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceScan {
    pub files: Vec<InputFile>,
    /// Records the reader produced (documents + dropped + failed).
    pub records: u64,
    pub docs: u64,
    /// UTF-8 bytes of document text.
    pub bytes: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Per selection bin: (documents, text bytes).
    pub hist: Vec<(u64, u64)>,
}

impl SourceScan {
    pub fn new(files: Vec<InputFile>) -> Self {
        SourceScan {
            files,
            records: 0,
            docs: 0,
            bytes: 0,
            dropped: 0,
            failed: 0,
            hist: vec![(0, 0); BINS],
        }
    }

    /// Adds one document of `bytes` text bytes in selection bin `bin`.
    pub fn add_doc(&mut self, bin: usize, bytes: u64) {
        self.records += 1;
        self.docs += 1;
        self.bytes += bytes;
        if let Some(h) = self.hist.get_mut(bin) {
            h.0 += 1;
            h.1 += bytes;
        }
    }

    fn merge(&mut self, o: &SourceScan) {
        self.records += o.records;
        self.docs += o.docs;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.failed += o.failed;
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }
}

/// Where a document sits: its source, file (index in the source's sorted
/// file list) and ordinal among the documents of that file. Together with
/// the seed this is all the shuffle depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocPos {
    pub source: u32,
    pub file: u32,
    pub ordinal: u64,
}

fn key_hash(seed: u64, name: &str, pos: DocPos, tag: u8, epoch: u32) -> u64 {
    let mut buf = Vec::with_capacity(name.len() + 18);
    buf.extend_from_slice(name.as_bytes());
    buf.push(0xff);
    buf.extend_from_slice(&pos.file.to_le_bytes());
    buf.extend_from_slice(&pos.ordinal.to_le_bytes());
    buf.push(tag);
    buf.extend_from_slice(&epoch.to_le_bytes());
    xxh3_64_with_seed(&buf, seed)
}

/// The selection bin of a document: fractional epochs take the documents
/// of the lowest bins.
pub fn selection_bin(seed: u64, name: &str, pos: DocPos) -> usize {
    (key_hash(seed, name, pos, b's', 0) >> 48) as usize
}

/// The position of one copy (epoch, 1-based) of a document in the output order.
pub fn order_hash(seed: u64, name: &str, pos: DocPos, epoch: u32) -> u64 {
    key_hash(seed, name, pos, b'o', epoch)
}

/// A (source, file) pair: the unit of work of both passes.
#[derive(Clone, Copy, Debug)]
pub struct Unit {
    pub source: usize,
    pub file: usize,
}

/// All (source, file) pairs, source by source in file order.
pub fn units(scans: &[SourceScan]) -> Vec<Unit> {
    scans
        .iter()
        .enumerate()
        .flat_map(|(s, sc)| (0..sc.files.len()).map(move |f| Unit { source: s, file: f }))
        .collect()
}

/// Streams the documents of one file: `f(ordinal, doc)` for each document,
/// and the reader's dropped/failed counts at the end.
pub fn for_each_doc(
    file: &InputFile,
    reader: &ReaderOptions,
    mut f: impl FnMut(u64, refinery_corpus::Document) -> Result<()>,
) -> Result<(u64, u64)> {
    let (mut dropped, mut failed, mut ordinal) = (0, 0, 0u64);
    let counter = Arc::new(AtomicU64::new(0));
    for item in readers::open(&file.path, &file.source, reader, counter) {
        match item {
            Item::Doc(d) => {
                f(ordinal, d)?;
                ordinal += 1;
            }
            Item::Dropped { .. } => dropped += 1,
            Item::Failed(_) => failed += 1,
            Item::Warning(_) => {}
        }
    }
    Ok((dropped, failed))
}

/// Discovers each source's files (errors name the source) and scans them on
/// `workers` threads. The result does not depend on `workers`.
pub fn scan(mix: &Mixture, workers: usize) -> Result<Vec<SourceScan>> {
    let mut scans = Vec::with_capacity(mix.sources.len());
    for s in &mix.sources {
        let files = discover(&s.paths).map_err(|e| MixError::Plan {
            source_name: s.name.clone(),
            message: e.to_string(),
        })?;
        scans.push(SourceScan::new(files));
    }
    let units = units(&scans);
    let acc: Vec<Mutex<SourceScan>> = (0..scans.len())
        .map(|_| Mutex::new(SourceScan::new(Vec::new())))
        .collect();
    pool(units.len(), workers, |k| {
        let u = units[k];
        let src = &mix.sources[u.source];
        let file = &scans[u.source].files[u.file];
        let mut local = SourceScan::new(Vec::new());
        let (dropped, failed) = for_each_doc(file, &src.reader, |ordinal, doc| {
            let pos = DocPos {
                source: u.source as u32,
                file: u.file as u32,
                ordinal,
            };
            local.add_doc(
                selection_bin(mix.seed, &src.name, pos),
                doc.text.len() as u64,
            );
            Ok(())
        })?;
        local.records += dropped + failed;
        local.dropped += dropped;
        local.failed += failed;
        if let Ok(mut a) = acc[u.source].lock() {
            a.merge(&local);
        }
        Ok(())
    })?;
    for (scan, a) in scans.iter_mut().zip(acc) {
        let a = a.into_inner().map_err(|_| MixError::Output {
            path: Path::new(&mix.file).to_path_buf(),
            message: "a scan worker panicked".into(),
        })?;
        scan.merge(&a);
    }
    Ok(scans)
}

/// Runs `f(0..n)` on `workers` threads (the executor's pool); on failure,
/// returns the error of the lowest failed item.
pub(crate) fn pool(n: usize, workers: usize, f: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let cancel = AtomicBool::new(false);
    let idx: Vec<usize> = (0..n).collect();
    let errors: Mutex<Vec<(usize, MixError)>> = Mutex::new(Vec::new());
    let res = run_pool(&idx, workers.max(1), &cancel, |k| {
        f(k).map_err(|e| {
            let message = e.to_string();
            if let Ok(mut errs) = errors.lock() {
                errs.push((k, e));
            }
            refinery_corpus::CorpusError::Task { task: k, message }
        })
    });
    match res {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut errs = errors.into_inner().unwrap_or_default();
            errs.sort_by_key(|(k, _)| *k);
            match errs.into_iter().next() {
                Some((_, first)) => Err(first),
                None => Err(MixError::Corpus(e)),
            }
        }
    }
}

//! Step 2: per band, merge the sorted runs of every task and emit, for each
//! bucket (a run of equal band hashes), the pairs (first key, other key).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;

use super::format::{Kind, RecordReader, RecordWriter};
use super::signatures::band_dir;
use super::{cancelled, MinhashError, MinhashJob, Result};

pub(super) const STEP: &str = "buckets";

/// `buckets/band_BBB.bin`.
pub(super) fn pairs_path(job: &MinhashJob, band: usize) -> PathBuf {
    job.step_dir(STEP).join(format!("band_{band:03}.bin"))
}

/// The run files of a band (`TTTTT_RRRR.bin`), sorted by name.
fn run_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(MinhashError::Io {
                path: dir.to_path_buf(),
                source: e,
            })
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| MinhashError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".bin") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

pub(super) fn run_task(job: &MinhashJob, band: usize, cancel: &AtomicBool) -> Result<()> {
    let mut readers = Vec::new();
    for path in run_files(&band_dir(job, band))? {
        readers.push((RecordReader::open(&path, Kind::Signatures)?, path));
    }
    // Min-heap of (hash, key, reader index): a streaming k-way merge.
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, (r, _)) in readers.iter_mut().enumerate() {
        if let Some((h, k)) = r.next_pair()? {
            heap.push(Reverse((h, k, i)));
        }
    }
    let mut out = RecordWriter::create(&pairs_path(job, band), Kind::Pairs)?;
    let mut prev: Option<(u64, u64)> = None; // (hash, first key of its bucket)
    let mut last: Option<(u64, u64)> = None;
    let mut n: u64 = 0;
    while let Some(Reverse((h, k, i))) = heap.pop() {
        n += 1;
        if n % 65536 == 0 {
            cancelled(cancel)?;
        }
        if last.is_some_and(|l| l >= (h, k)) {
            let path = &readers[i].1;
            return Err(MinhashError::Corrupt {
                path: path.clone(),
                message: "records are not sorted by (hash, key), or a document appears twice"
                    .into(),
            });
        }
        last = Some((h, k));
        match prev {
            Some((ph, first)) if ph == h => out.push_pair(first, k)?,
            _ => prev = Some((h, k)),
        }
        let (r, _) = &mut readers[i];
        if let Some((h2, k2)) = r.next_pair()? {
            heap.push(Reverse((h2, k2, i)));
        }
    }
    out.finish()?;
    Ok(mark_step_complete(&job.step_dir(STEP), band)?)
}

//! Step 2: per shard, the suffix array of its documents (back to back),
//! keeping the suffixes with at least `min_len` units left in their
//! document.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;

use super::format::{self, io, Kind, RecordWriter, HEADER_LEN};
use super::{
    cancelled, remove_with_tmp, sais, Plan, Result, SubstringError, SubstringJob, Unit, STEPS,
};

pub(super) fn shard_path(job: &SubstringJob, shard: usize) -> std::path::PathBuf {
    job.step_dir(STEPS[1]).join(format!("shard_{shard:05}.bin"))
}

/// The shard's symbols, documents back to back with no separator, and the
/// documents' unit counts.
///
/// No separator is needed: only suffixes with at least `min_len` units left
/// in their document are kept, and the order of whole suffixes implies the
/// order of their first `min_len` units, which is all the merge compares.
enum ShardText {
    /// Bytes as they are.
    Bytes(Vec<u8>),
    /// Tokens as the ranks of their hashes within the shard (ranks keep the
    /// numeric order, which is the big-endian byte order the merge
    /// compares), and the number of distinct hashes.
    Ranks(Vec<i32>, u32),
}

fn shard_text(job: &SubstringJob, plan: &Plan, shard: usize) -> Result<(ShardText, Vec<u64>)> {
    let s = plan.shards[shard];
    let width = job.unit_kind().record_len();
    let total = (s.g1 - s.g0) as usize;
    let mut raw: Vec<u8> = Vec::with_capacity(total * width);
    let mut lens: Vec<u64> = Vec::new();
    for f in s.first.0..=s.end.0.min(plan.bases.len().saturating_sub(2)) {
        let doc_lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let from = if f == s.first.0 { s.first.1 } else { 0 };
        let to = if f == s.end.0 {
            s.end.1
        } else {
            doc_lens.len()
        };
        if from >= to {
            continue;
        }
        let skip: u64 = doc_lens[..from].iter().sum();
        let take: u64 = doc_lens[from..to].iter().sum();
        lens.extend_from_slice(&doc_lens[from..to]);
        let path = job.units_path(f);
        let (file, count) = format::open(&path, job.unit_kind())?;
        if skip + take > count {
            return Err(format::corrupt(
                &path,
                format!(
                    "{count} units, but the docs file says at least {}",
                    skip + take
                ),
            ));
        }
        let mut input = BufReader::new(file);
        input
            .seek(SeekFrom::Start(HEADER_LEN + skip * width as u64))
            .map_err(|e| io(&path, e))?;
        let at = raw.len();
        raw.resize(at + (take as usize) * width, 0);
        input.read_exact(&mut raw[at..]).map_err(|e| io(&path, e))?;
    }
    if raw.len() != total * width {
        return Err(format::corrupt(
            &job.docs_path(s.first.0),
            "document lengths changed since the plan was made",
        ));
    }
    let text = match job.config.unit {
        Unit::Bytes => ShardText::Bytes(raw),
        Unit::Tokens => {
            let hashes: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_be_bytes(b)
                })
                .collect();
            drop(raw);
            let mut distinct = hashes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let ranks: Vec<i32> = hashes
                .iter()
                .map(|h| distinct.partition_point(|x| x < h) as i32)
                .collect();
            ShardText::Ranks(ranks, distinct.len() as u32)
        }
    };
    Ok((text, lens))
}

pub(super) fn run_task(
    job: &SubstringJob,
    plan: &Plan,
    shard: usize,
    cancel: &AtomicBool,
) -> Result<()> {
    let path = shard_path(job, shard);
    remove_with_tmp(&path)?;
    let (text, lens) = shard_text(job, plan, shard)?;
    cancelled(cancel)?;
    let sa = match text {
        ShardText::Bytes(b) => sais::suffix_array_bytes(&b),
        ShardText::Ranks(mut r, alphabet) => sais::suffix_array_ints(&mut r, alphabet),
    }
    .map_err(|e| SubstringError::SuffixArray {
        path: path.clone(),
        message: e.to_string(),
    })?;
    cancelled(cancel)?;
    // eligible[i]: suffix i has at least `min_len` units left in its document.
    let min_len = job.config.min_len as u64;
    let mut eligible = vec![false; sa.len()];
    let mut at = 0usize;
    for &len in &lens {
        if len >= min_len {
            let n = (len - min_len + 1) as usize;
            eligible[at..at + n].fill(true);
        }
        at += len as usize;
    }
    let mut w = RecordWriter::create(&path, Kind::Suffixes)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for &i in &sa {
        if !eligible[i as usize] {
            continue;
        }
        buf.extend_from_slice(&i.to_le_bytes());
        if buf.len() >= 1 << 16 {
            w.push(&buf)?;
            buf.clear();
        }
    }
    w.push(&buf)?;
    w.finish()?;
    Ok(mark_step_complete(&job.step_dir(STEPS[1]), shard)?)
}
